/*
 * A VM whose storage stops answering (issue 20): paused, then resumed by
 * itself once the storage answers again, on the same host.
 *
 * Two ways in. QEMU stops the VM on a failed request (werror=stop,
 * rerror=stop: BLOCK_IO_ERROR, then STOP) and keeps the request to issue
 * again at cont. And a request that has not come back at all -- a SAN
 * frozen, a controller failing over -- would let the guest's own driver
 * time out (10 s for the lab's guest, 30 s for Linux's ATA) and see an
 * error: the tick below stops the vCPUs once the oldest request at the
 * NBD server is WORKER_STALL_PAUSE_MS old. A stopped guest's clock stands
 * still, so it sees a stall, never an error.
 *
 * Out again: the lease, re-read every second on the first volume's
 * session (volumes.c), is the probe. Once a read begun after the outage
 * began has answered, cont; QEMU issues its failed requests again. The VM
 * is said to run again only when every request older than the cont has
 * come back with no new error; one that fails or hangs again pauses it
 * again, and the probe starts over. havend hears PAUSED (why, from when)
 * once, and RUNNING once, with the outage's length. A VM that stays paused
 * past the cluster's storage_giveup_s is stopped by havend (a kill).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "worker.h"
#include "worker_int.h"
#include "storage.h"

/* "13:05:06.982" (UTC) of a now_us() time. */
static void
outage_clock(uint64_t us, char *buf, size_t size)
{
	time_t		t = (time_t)(us / 1000000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (unsigned)(us / 1000 % 1000));
}

/* The storage stopped answering at `since` (why: NULL when already
 * paused for it): stop the vCPUs (the STOP event says PAUSED, vm.c). */
static void
outage_pause(struct worker *w, uint64_t since, const char *why)
{
	if (!w->io_paused && why != NULL) {
		w->io_paused = 1;
		w->outage_since_us = since;
		snprintf(w->outage_why, sizeof w->outage_why, "%s", why);
	}
	w->cont_us = 0;
	qmp_command(w->qmp, "stop", NULL, -1, worker_reply_ignore, w);
}

/* QEMU stopped the VM on a failed request (vm.c: BLOCK_IO_ERROR, STOP). */
void
worker_outage_io_error(struct worker *w)
{
	if (!w->io_paused) {
		w->io_paused = 1;
		w->outage_since_us = now_us();
		snprintf(w->outage_why, sizeof w->outage_why, "a disk request "
		    "failed");
	}
	/* After a cont: it failed again; wait for the probe once more. */
	w->cont_us = 0;
}

/* The PAUSED report's sentence. */
void
worker_outage_paused(struct worker *w)
{
	char	at[16], text[256];

	outage_clock(w->outage_since_us, at, sizeof at);
	/* The prefix tells havend's storage giveup that the pause is for
	 * the storage (clusterd/cluster_storage_giveup.c). */
	snprintf(text, sizeof text, VM_PAUSED_FOR_STORAGE "%s UTC: %s; the VM "
	    "resumes here once the storage answers again", at, w->outage_why);
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_PAUSED, 0, text);
}

/* The lease read that began at `began` answered (volumes.c). */
void
worker_outage_probe_ok(struct worker *w, uint64_t began)
{
	if (began > w->probe_ok_us)
		w->probe_ok_us = began;
}

static void
outage_resumed(struct worker *w)
{
	char	lost[16], back[16], text[256];

	outage_clock(w->outage_since_us, lost, sizeof lost);
	outage_clock(w->cont_us, back, sizeof back);
	snprintf(text, sizeof text, "resumed: storage lost at %s UTC, "
	    "answered again at %s UTC, paused for %.1f s", lost, back,
	    (double)(w->cont_us - w->outage_since_us) / 1e6);
	w->io_paused = 0;
	w->cont_us = 0;
	w->outage_since_us = 0;
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0, text);
}

/* Paused for the storage: cont once it answers, then judge the cont. */
static void
outage_paused_tick(struct worker *w, uint64_t now, uint64_t oldest)
{
	uint64_t	age = oldest != 0 ? now - oldest : 0;

	if (w->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED || worker_busy(w)) {
		/* Moved, stopped or resumed by hand: not ours any more. */
		w->io_paused = 0;
		w->cont_us = 0;
		return;
	}
	if (w->cont_us == 0) {
		if (w->probe_ok_us < w->outage_since_us ||
		    age >= WORKER_STALL_PAUSE_MS * 1000ULL)
			return;
		w->io_error = 0;
		w->cont_us = now;
		worker_log(w, LOG_LEVEL_INFO, "the storage answers again; "
		    "running the VM's failed requests again");
		qmp_command(w->qmp, "cont", NULL, -1, worker_reply_ignore, w);
		return;
	}
	if (w->io_error)
		return;		/* failed again: the STOP resets cont_us */
	if (oldest == 0 || oldest >= w->cont_us)
		outage_resumed(w);
	else if (age >= WORKER_STALL_PAUSE_MS * 1000ULL)
		outage_pause(w, 0, NULL);
}

void
worker_outage_tick(void *arg)
{
	struct worker	*w = arg;
	uint64_t	 now = now_us(), oldest;

	ev_timer_arm(w->outage_timer, WORKER_OUTAGE_TICK_MS);
	if (w->qmp == NULL || w->nbd == NULL || w->exiting)
		return;
	oldest = nbd_server_oldest(w->nbd);
	if (w->io_paused) {
		outage_paused_tick(w, now, oldest);
		return;
	}
	if (w->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING && !worker_busy(w) &&
	    oldest != 0 && now - oldest >= WORKER_STALL_PAUSE_MS * 1000ULL) {
		char	why[96];

		snprintf(why, sizeof why, "a disk request unanswered for "
		    "%u s", WORKER_STALL_PAUSE_MS / 1000);
		worker_log(w, LOG_LEVEL_WARN, "%s; pausing the VM before its "
		    "guest gives up on it", why);
		outage_pause(w, oldest, why);
	}
}
