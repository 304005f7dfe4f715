/*
 * Quick migration, the worker's side (DESIGN §6): a save stops the vCPUs
 * and drains QEMU's migration stream through a pipe onto the volume's state
 * extent (state.c), then QEMU quits; a restore checks the saved header,
 * starts QEMU with -incoming defer, feeds it the stream, runs the vCPUs and
 * marks the state consumed so it is never restored twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"
#include "migrate.h"
#include "transfer_int.h"

/* This process's CPU (user and system) in µs. */
static uint64_t
quick_cpu_us(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
quick_state_progress(uint64_t bytes, void *arg)
{
	struct transfer	*t = arg;

	t->stream_bytes = bytes;
}

/* --- save ---------------------------------------------------------------- */

static void
quick_save_maybe_done(struct transfer *t)
{
	if (!t->stream_done || !t->migration_done)
		return;
	t->ops->quit(t->arg, HAVEN__VM_PHASE__VM_PHASE_SAVED);
}

static void
quick_save_done(int result, const struct state_header *h, void *arg)
{
	struct transfer	*t = arg;

	t->save = NULL;
	/* Ended already (QEMU failed or refused it, or a stop took over):
	 * said once, there. */
	if (t->kind != TRANSFER_SAVE)
		return;
	if (result != 0) {
		/* The save failed: exactly one runnable copy stays, here. */
		transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RUNNING, result,
		    "save failed; resuming the VM here");
		transfer_qmp(t, "migrate_cancel", NULL, -1, NULL, NULL);
		transfer_qmp(t, "cont", NULL, -1, NULL, NULL);
		transfer_end(t);
		return;
	}
	t->stream_bytes = h->length;
	t->stream_done = 1;
	quick_save_maybe_done(t);
}

/* QEMU gave up on the save (or never began it): exactly one runnable
 * copy stays, here; the state on the volume stays incomplete. */
static void
quick_save_failed(struct transfer *t, const char *why)
{
	if (t->save != NULL) {
		state_save_abort(t->save);
		t->save = NULL;
	}
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RUNNING, -EIO, why);
	transfer_qmp(t, "cont", NULL, -1, NULL, NULL);
	transfer_end(t);
}

/* migrate refused (bad fd, a migration already running...): no MIGRATION
 * event follows, so without this the VM would stay stopped for good. */
static void
quick_save_refused(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	char		 why[256];

	if (result != NULL || t->kind != TRANSFER_SAVE)
		return;
	snprintf(why, sizeof why, "QEMU refused the save (%s); resuming here",
	    desc != NULL ? desc : class != NULL ? class : "no reason");
	quick_save_failed(t, why);
}

static void
quick_restore_refused(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	char		 why[256];

	if (result != NULL || t->kind != TRANSFER_RESTORE)
		return;
	snprintf(why, sizeof why, "QEMU refused to load the saved state (%s)",
	    desc != NULL ? desc : class != NULL ? class : "no reason");
	t->ops->fail(t->arg, -EIO, why);
}

/* Save: QEMU writes its migration stream into a pipe we drain onto the
 * volume's state extent. */
void
quick_save(struct transfer *t)
{
	struct state_header	 ident;
	struct json_object	*params;
	int			 p[2];

	memset(&ident, 0, sizeof ident);
	snprintf(ident.vm_uuid, sizeof ident.vm_uuid, "%s", t->vm.uuid);
	ident.generation = t->vm.generation;
	ident.config_hash = t->vm.config_hash;
	if (pipe2(p, O_CLOEXEC) == -1 || ev_set_nonblock(p[0]) == -1) {
		transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RUNNING, -errno,
		    "save: pipe");
		return;
	}
	t->kind = TRANSFER_SAVE;
	t->start_us = now_us();
	t->start_cpu_us = quick_cpu_us();
	t->stream_done = t->migration_done = 0;
	t->stream_bytes = 0;
	t->remaining = t->total = 0;
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_SAVING, 0, NULL);
	ev_timer_arm(t->progress_timer, QUICK_POLL_MS);

	transfer_qmp(t, "stop", NULL, -1, NULL, NULL);
	transfer_migration_events(t);
	params = json_object_new_object();
	json_object_object_add(params, "max-bandwidth",
	    json_object_new_int64(INT64_MAX / 2));
	transfer_qmp(t, "migrate-set-parameters", params, -1, NULL, NULL);
	transfer_hand_fd(t, p[1], TRANSFER_STATE_FD_NAME);
	t->save = state_save_start(t->base, t->vm.state, p[0], &ident,
	    quick_state_progress, quick_save_done, t);
	transfer_migrate_fd(t, "migrate", TRANSFER_STATE_FD_NAME,
	    quick_save_refused);
}

/* A save's progress: the RAM QEMU has left to write. */
static void
quick_save_progress(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer		*t = arg;
	struct json_object	*ram, *v;

	if (t->kind != TRANSFER_SAVE || t->stream_done)
		return;
	if (result != NULL && json_object_object_get_ex(result, "ram", &ram) &&
	    json_object_object_get_ex(ram, "total", &v)) {
		t->total = (uint64_t)json_object_get_int64(v);
		t->remaining = json_object_object_get_ex(ram, "remaining",
		    &v) ? (uint64_t)json_object_get_int64(v) : 0;
		if (t->remaining > t->total)
			t->remaining = t->total;
		transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_SAVING, 0, NULL);
	}
	ev_timer_arm(t->progress_timer, QUICK_POLL_MS);
}

/* --- restore ------------------------------------------------------------- */

static void
quick_consumed(int result, const struct state_header *h, void *arg)
{
	struct transfer	*t = arg;

	if (result != 0)
		log_warn("marking the saved state consumed: %s",
		    migrate_strerror(result));
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0,
	    "restored and running");
	transfer_end(t);
}

static void
quick_restore_resumed(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;

	if (result == NULL) {
		t->ops->fail(t->arg, -EIO, "cont after restore failed");
		return;
	}
	transfer_announce(t);
	/* Running again: the state is used up. */
	state_mark_consumed(t->vm.state, quick_consumed, t);
}

/* Both sides of a restore finished: our stream (checksum verified) and
 * QEMU's load. Only then the vCPUs run. */
static void
quick_restore_maybe_done(struct transfer *t)
{
	if (!t->stream_done || !t->migration_done)
		return;
	transfer_qmp(t, "cont", NULL, -1, quick_restore_resumed, t);
}

static void
quick_restore_done(int result, const struct state_header *h, void *arg)
{
	struct transfer	*t = arg;

	t->restore = NULL;
	if (result != 0) {
		t->ops->fail(t->arg, result,
		    "restore failed; the saved state is left as it was");
		return;
	}
	t->stream_bytes = h->length;
	t->stream_done = 1;
	quick_restore_maybe_done(t);
}

static void
quick_restore_checked(int result, const struct state_header *h, void *arg)
{
	struct transfer			*t = arg;
	const struct state_expect	 expect = {
		.vm_uuid = t->vm.uuid,
		.generation = t->state_generation,
		.config_hash = t->vm.config_hash,
	};
	int				 p[2];

	if (result != 0) {
		/* This host cannot read it: another host may. */
		t->ops->fail(t->arg, result,
		    "cannot read the saved state's header");
		return;
	}
	result = state_header_check(h, &expect);
	if (result == 0)
		t->restore_length = h->length;
	if (result != 0) {
		/* Refused before QEMU starts; the state stays as it was. */
		transfer_end(t);
		transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_STOPPED, result,
		    "restore refused");
		return;
	}
	t->stream_done = t->migration_done = 0;
	/* The stream starts filling its pipe while QEMU starts. */
	if (pipe2(p, O_CLOEXEC) == -1 || ev_set_nonblock(p[1]) == -1) {
		t->ops->fail(t->arg, -errno, "restore: pipe");
		return;
	}
	t->restore = state_restore_start(t->base, t->vm.state, p[1], &expect,
	    quick_state_progress, quick_restore_done, t);
	if (t->restore == NULL) {
		close(p[0]);
		t->ops->fail(t->arg, -errno, "restore: cannot start");
		return;
	}
	t->restore_fd = p[0];
	t->remaining = t->total = 0;
	log_info("restore: header checked at %" PRIu64 " ms; starting QEMU",
	    (now_us() - t->start_us) / 1000);
	t->ops->start_qemu(t->arg);
}

void
quick_restore(struct transfer *t, uint64_t state_generation)
{
	t->kind = TRANSFER_RESTORE;
	t->start_us = now_us();
	t->start_cpu_us = quick_cpu_us();
	t->stream_bytes = 0;
	t->state_generation = state_generation;
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RESTORING, 0, NULL);
	state_header_read(t->vm.state, quick_restore_checked, t);
}

/* Restore, once QEMU (started with -incoming defer) answers QMP: it gets
 * the pipe the stream already fills. */
void
quick_restore_begin(struct transfer *t)
{
	if (t->restore_fd == -1) {
		t->ops->fail(t->arg, -EBADF, "restore: no stream");
		return;
	}
	log_info("restore: QEMU answers QMP at %" PRIu64 " ms",
	    (now_us() - t->start_us) / 1000);
	transfer_migration_events(t);
	transfer_hand_fd(t, t->restore_fd, TRANSFER_STATE_FD_NAME);
	t->restore_fd = -1;
	transfer_migrate_fd(t, "migrate-incoming", TRANSFER_STATE_FD_NAME,
	    quick_restore_refused);
	ev_timer_arm(t->progress_timer, QUICK_POLL_MS);
}

/* --- both ---------------------------------------------------------------- */

/* The worker's own CPU for the stream so far (tests/bench/migrate sets it
 * beside haven-lun-stream's for the same bytes); clock_gettime is what its
 * seccomp filter allows, getrusage is not. */
static void
quick_log_usage(const struct transfer *t)
{
	log_info("%s: worker CPU %" PRIu64 " ms",
	    t->kind == TRANSFER_SAVE ? "save" : "restore",
	    (quick_cpu_us() - t->start_cpu_us) / 1000);
}

/* QEMU's MIGRATION events while no live migration runs. */
int
quick_event(struct transfer *t, const char *name, struct json_object *data)
{
	struct json_object	*status;
	const char		*s;

	if (strcmp(name, "MIGRATION") != 0 ||
	    !json_object_object_get_ex(data, "status", &status))
		return 0;
	s = json_object_get_string(status);
	if (strcmp(s, "completed") == 0) {
		t->migration_done = 1;
		log_info("%s: QEMU's stream complete at %" PRIu64 " ms",
		    t->kind == TRANSFER_SAVE ? "save" : "restore",
		    (now_us() - t->start_us) / 1000);
		quick_log_usage(t);
		if (t->kind == TRANSFER_SAVE)
			quick_save_maybe_done(t);
		else if (t->kind == TRANSFER_RESTORE)
			quick_restore_maybe_done(t);
	} else if (strcmp(s, "failed") == 0) {
		if (t->kind == TRANSFER_SAVE)
			quick_save_failed(t, "QEMU's migration failed; resuming "
			    "here");
		else if (t->kind == TRANSFER_RESTORE)
			t->ops->fail(t->arg, -EIO, "QEMU could not load the "
			    "saved state");
	}
	return 1;
}

/* The progress timer while no live migration runs. */
void
quick_progress(struct transfer *t)
{
	if (t->kind == TRANSFER_SAVE && !t->stream_done) {
		transfer_qmp(t, "query-migrate", NULL, -1, quick_save_progress,
		    t);
	} else if (t->kind == TRANSFER_RESTORE && !t->stream_done &&
	    t->restore_length != 0) {
		/* The state read off the volume into QEMU, of its length. */
		t->total = t->restore_length;
		t->remaining = t->stream_bytes < t->restore_length ?
		    t->restore_length - t->stream_bytes : 0;
		transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RESTORING, 0,
		    NULL);
		ev_timer_arm(t->progress_timer, QUICK_POLL_MS);
	}
}
