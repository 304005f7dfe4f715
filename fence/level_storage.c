/*
 * The storage fence level (DESIGN §4, the fence_scsi model): on every
 * volume, register our own key on a fresh nexus, read the registrations,
 * and if the victim's key is there, PREEMPT AND ABORT it (PREEMPT where the
 * target lacks the abort variant), taking over its reservation with the
 * same type; then read the keys back and check the victim is gone. Up to
 * FENCE_STORAGE_PARALLEL volumes are fenced at once (each holds an iSCSI
 * session, so a cluster of thousands of volumes does not open thousands
 * of sockets); the level succeeds only if every volume says so. A volume
 * where the victim holds no registration is already fenced. Nothing here
 * blocks the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fence.h"
#include "storage.h"
#include "timeline.h"

/* Volumes fenced at once: iSCSI sessions open at a time. */
#define FENCE_STORAGE_PARALLEL	64

struct fence_storage_volume {
	struct fence_storage	*fs;
	char			*url;
	struct blockdev		*dev;
	int			 started;	/* its open was issued */
	int			 done;
	int			 result;
	int			 preempted;	/* the victim was registered */
	const char		*step;		/* for the error */
};

struct fence_storage {
	struct event_base		*base;
	char				 initiator[224];
	uint64_t			 key, victim;
	struct fence_storage_volume	*vols;
	size_t				 nvols, ndone, nstarted;
	struct ev_timer			*timer;
	struct ev_timer			*pump;		/* the next volumes */
	struct iscsi_options		 opts;
	fence_storage_cb		 cb;
	void				*arg;
	uint64_t			 started_ms;
	int				 finished;
	int				 all_done;	/* report from the timer */
};

static void	fs_read_after(int, const struct pr_status *, void *);
static void	fs_opened(int, struct blockdev *, void *);

/* Close the volumes that are done and open more, up to the window. From
 * the loop (or start), never from inside a device's callback. */
static void
fs_pump(void *arg)
{
	struct fence_storage	*fs = arg;
	size_t			 i;

	for (i = 0; i < fs->nstarted; i++) {
		if (fs->vols[i].done && fs->vols[i].dev != NULL) {
			blockdev_close(fs->vols[i].dev);
			fs->vols[i].dev = NULL;
		}
	}
	while (!fs->finished && fs->nstarted < fs->nvols &&
	    fs->nstarted - fs->ndone < FENCE_STORAGE_PARALLEL) {
		struct fence_storage_volume	*v = &fs->vols[fs->nstarted++];

		v->started = 1;
		iscsi_open(fs->base, v->url, &fs->opts, fs_opened, v);
	}
}

static void
fs_finish(struct fence_storage *fs, int result, const char *detail)
{
	fence_storage_cb	 cb = fs->cb;
	void			*arg = fs->arg;

	if (fs->finished)
		return;
	fs->finished = 1;
	fs->cb = NULL;
	cb(result, detail, arg);
}

/* A volume's outcome. Devices are closed and the caller told from the
 * timer, never from inside a device's own callback. */
static void
fs_volume_done(struct fence_storage_volume *v, int result)
{
	struct fence_storage	*fs = v->fs;

	if (v->done)
		return;
	v->done = 1;
	v->result = result;
	if (++fs->ndone < fs->nvols) {
		ev_timer_arm(fs->pump, 0);
		return;
	}
	fs->all_done = 1;
	ev_timer_arm(fs->timer, 0);
}

static void
fs_report(struct fence_storage *fs)
{
	char			 detail[512];
	size_t			 i, preempted = 0, failed = 0;
	const struct fence_storage_volume *bad = NULL;

	for (i = 0; i < fs->nvols; i++) {
		if (fs->vols[i].dev != NULL)
			blockdev_close(fs->vols[i].dev);
		fs->vols[i].dev = NULL;
	}
	for (i = 0; i < fs->nvols; i++) {
		if (fs->vols[i].result != 0) {
			failed++;
			if (bad == NULL)
				bad = &fs->vols[i];
		}
		if (fs->vols[i].preempted)
			preempted++;
	}
	if (failed > 0) {
		snprintf(detail, sizeof detail, "%zu of %zu volumes not fenced; "
		    "%s: %s: %s", failed, fs->nvols, bad->url, bad->step,
		    storage_strerror(bad->result));
		fs_finish(fs, bad->result, detail);
		return;
	}
	snprintf(detail, sizeof detail, "key 0x%016" PRIx64 " preempted on "
	    "%zu of %zu volumes (absent from the others) in %llu ms",
	    fs->victim, preempted, fs->nvols,
	    (unsigned long long)(ev_now_ms() - fs->started_ms));
	fs_finish(fs, 0, detail);
}

static void
fs_verified(int result, const struct pr_status *s, void *arg)
{
	struct fence_storage_volume	*v = arg;
	size_t				 i;

	v->step = "reading the keys back";
	if (result == 0) {
		for (i = 0; i < s->nkeys; i++)
			if (s->keys[i] == v->fs->victim) {
				v->step = "verifying";
				result = -EEXIST;	/* still registered */
			}
	}
	fs_volume_done(v, result);
}

static void
fs_preempted(int result, void *arg)
{
	struct fence_storage_volume	*v = arg;

	if (result != 0) {
		v->step = "preempting the victim's key";
		fs_volume_done(v, result);
		return;
	}
	v->preempted = 1;
	pr_read(v->dev, fs_verified, v);
}

static void
fs_read_after(int result, const struct pr_status *s, void *arg)
{
	struct fence_storage_volume	*v = arg;
	size_t				 i;
	int				 present = 0;

	if (result != 0) {
		v->step = "reading the registrations";
		fs_volume_done(v, result);
		return;
	}
	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i] == v->fs->victim)
			present = 1;
	if (!present) {
		fs_volume_done(v, 0);	/* nothing of the victim's here */
		return;
	}
	pr_preempt(v->dev, v->fs->key, v->fs->victim, s->reserved ? s->type :
	    PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY, 1, fs_preempted, v);
}

static void
fs_registered(int result, void *arg)
{
	struct fence_storage_volume	*v = arg;

	if (result != 0) {
		v->step = "registering our key";
		fs_volume_done(v, result);
		return;
	}
	pr_read(v->dev, fs_read_after, v);
}

static void
fs_opened(int result, struct blockdev *dev, void *arg)
{
	struct fence_storage_volume	*v = arg;

	if (v->fs->finished) {		/* timed out meanwhile */
		if (dev != NULL)
			blockdev_close(dev);
		return;
	}
	if (result != 0) {
		v->step = "logging in";
		fs_volume_done(v, result);
		return;
	}
	v->dev = dev;
	pr_register(dev, 0, v->fs->key, 1, fs_registered, v);
}

static void
fs_timeout(void *arg)
{
	struct fence_storage	*fs = arg;
	char			 detail[256];

	if (fs->all_done) {
		fs_report(fs);
		return;
	}
	if (fs->nvols == 0) {
		fs_finish(fs, 0, "no volumes in the cluster: nothing to fence");
		return;
	}
	snprintf(detail, sizeof detail, "the storage did not answer within "
	    "%u s (%zu of %zu volumes done)", FENCE_STORAGE_TIMEOUT_MS / 1000,
	    fs->ndone, fs->nvols);
	fs_finish(fs, -ETIMEDOUT, detail);
}

struct fence_storage *
fence_storage_start(struct event_base *base, const char *initiator,
    uint64_t key, uint64_t victim, const char *const *urls, size_t n,
    fence_storage_cb cb, void *arg)
{
	struct fence_storage	*fs;
	size_t			 i;

	if ((fs = calloc(1, sizeof *fs)) == NULL ||
	    (fs->vols = calloc(n + 1, sizeof *fs->vols)) == NULL ||
	    (fs->timer = ev_timer_new(base, 0, 0, fs_timeout, fs)) == NULL ||
	    (fs->pump = ev_timer_new(base, 0, 0, fs_pump, fs)) == NULL) {
		if (fs != NULL) {
			ev_timer_free(fs->timer);
			free(fs->vols);
		}
		free(fs);
		return NULL;
	}
	fs->base = base;
	snprintf(fs->initiator, sizeof fs->initiator, "%s", initiator);
	fs->key = key;
	fs->victim = victim;
	fs->nvols = n;
	fs->cb = cb;
	fs->arg = arg;
	fs->started_ms = ev_now_ms();
	if (n == 0) {
		/* Called back from the loop, never from inside start. */
		ev_timer_arm(fs->timer, 0);
		fs->nvols = 0;
		return fs;
	}
	ev_timer_arm(fs->timer, FENCE_STORAGE_TIMEOUT_MS);
	fs->opts.initiator = fs->initiator;
	fs->opts.timeout_s = 5;
	for (i = 0; i < n; i++) {
		fs->vols[i].fs = fs;
		fs->vols[i].result = -EINPROGRESS;
		fs->vols[i].step = "waiting for its turn";
		if ((fs->vols[i].url = strdup(urls[i])) == NULL)
			abort();
	}
	fs_pump(fs);
	return fs;
}

/* No callback after this. An open still in flight closes its device when
 * it completes (fs_opened sees finished) -- so the struct lives on until
 * then: freed here only when no open is pending. */
void
fence_storage_free(struct fence_storage *fs)
{
	size_t	 i;

	if (fs == NULL)
		return;
	fs->finished = 1;
	fs->cb = NULL;
	ev_timer_free(fs->timer);
	fs->timer = NULL;
	ev_timer_free(fs->pump);
	fs->pump = NULL;
	for (i = 0; i < fs->nvols; i++) {
		if (fs->vols[i].dev != NULL)
			blockdev_close(fs->vols[i].dev);
		fs->vols[i].dev = NULL;
	}
	/* Leaked on purpose if an open may still call back into it. */
	for (i = 0; i < fs->nvols; i++)
		if (fs->vols[i].started && !fs->vols[i].done &&
		    fs->vols[i].dev == NULL)
			return;
	for (i = 0; i < fs->nvols; i++)
		free(fs->vols[i].url);
	free(fs->vols);
	free(fs);
}
