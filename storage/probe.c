/*
 * A pool's heartbeat (issue 20): READ the first sector of one of its LUNs
 * over a session of its own, with a deadline of our own, so that a target
 * that hangs, a link that is down and a login that never ends all come back
 * as one failed probe in bounded time. The session is never registered
 * (reads are allowed under Write Exclusive - Registrants Only), so a probe
 * neither needs nor disturbs the reservation; it is kept between probes and
 * dropped after a failure, so that the next probe proves a fresh login too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "storage.h"

#define PROBE_SECTOR	512

/*
 * One probe under way. Its callbacks (the open's, the read's) may come
 * after the deadline gave up on it, or from inside a close: they find
 * p = NULL then, and only free what is theirs.
 */
struct probe_op {
	struct probe	*p;		/* NULL: abandoned */
	uint8_t		 buf[PROBE_SECTOR];
};

struct probe {
	struct event_base	*base;
	char			*url;
	char			 initiator[224];
	unsigned		 timeout_ms;
	struct blockdev		*dev;		/* the session, between probes */
	struct probe_op		*op;		/* the probe under way */
	struct ev_timer		*deadline;
	struct ev_timer		*report;	/* hands result to cb */
	int			 reporting;
	int			 result;
	probe_cb		 cb;
	void			*arg;
};

/* Close the session, from the loop only (never inside its callbacks). */
static void
probe_drop_session(struct probe *p)
{
	struct blockdev	*dev = p->dev;

	p->dev = NULL;
	if (dev != NULL)
		blockdev_close(dev);
}

static void
probe_finish(struct probe *p, int result)
{
	ev_timer_cancel(p->deadline);
	free(p->op);
	p->op = NULL;
	p->result = result;
	p->reporting = 1;
	ev_timer_arm(p->report, 0);
}

static void
probe_report_cb(void *arg)
{
	struct probe	*p = arg;

	if (p->result != 0)
		probe_drop_session(p);
	p->reporting = 0;
	p->cb(p->result, p->arg);
}

static void
probe_read_done(int result, void *arg)
{
	struct probe_op	*op = arg;

	if (op->p == NULL) {
		free(op);
		return;
	}
	probe_finish(op->p, result);
}

static void
probe_opened(int result, struct blockdev *dev, void *arg)
{
	struct probe_op	*op = arg;
	struct probe	*p = op->p;

	if (p == NULL) {
		/* Too late: the deadline reported this probe failed. */
		if (dev != NULL)
			blockdev_close(dev);
		free(op);
		return;
	}
	if (result != 0) {
		probe_finish(p, result);
		return;
	}
	p->dev = dev;
	blockdev_read(dev, 0, op->buf, PROBE_SECTOR, probe_read_done, op);
}

/* No answer in time: give up on the probe under way. A read in flight is
 * cancelled with its session (its callback, from inside the close, frees
 * the op); an open under way ends by its own timeout and frees it then. */
static void
probe_deadline_cb(void *arg)
{
	struct probe	*p = arg;
	struct probe_op	*op = p->op;

	if (op == NULL)
		return;
	op->p = NULL;
	p->op = NULL;
	probe_drop_session(p);
	probe_finish(p, STORAGE_E_TIMEOUT);
}

struct probe *
probe_new(struct event_base *base, const char *url, const char *initiator,
    unsigned timeout_ms, probe_cb cb, void *arg)
{
	struct probe	*p = xcalloc(1, sizeof *p);

	p->base = base;
	p->url = xstrdup(url);
	snprintf(p->initiator, sizeof p->initiator, "%s", initiator);
	p->timeout_ms = timeout_ms;
	p->cb = cb;
	p->arg = arg;
	p->deadline = ev_timer_new(base, 0, 0, probe_deadline_cb, p);
	p->report = ev_timer_new(base, 0, 0, probe_report_cb, p);
	if (p->deadline == NULL || p->report == NULL) {
		probe_free(p);
		return NULL;
	}
	return p;
}

int
probe_run(struct probe *p)
{
	struct iscsi_options	 opts;

	if (p->op != NULL || p->reporting) {
		errno = EBUSY;
		return -1;
	}
	p->op = xcalloc(1, sizeof *p->op);
	p->op->p = p;
	ev_timer_arm(p->deadline, p->timeout_ms);
	if (p->dev != NULL) {
		blockdev_read(p->dev, 0, p->op->buf, PROBE_SECTOR,
		    probe_read_done, p->op);
		return 0;
	}
	memset(&opts, 0, sizeof opts);
	opts.initiator = p->initiator;
	opts.queue_depth = 1;
	opts.quiet = 1;
	/* libiscsi counts in seconds: its login timeout, rounded up, ends
	 * an abandoned open soon after our deadline. */
	opts.timeout_s = (int)((p->timeout_ms + 999) / 1000);
	iscsi_open(p->base, p->url, &opts, probe_opened, p->op);
	return 0;
}

int
probe_busy(const struct probe *p)
{
	return p->op != NULL || p->reporting;
}

const char *
probe_url(const struct probe *p)
{
	return p->url;
}

void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	if (p->op != NULL) {
		p->op->p = NULL;	/* its callback frees it */
		p->op = NULL;
	}
	probe_drop_session(p);
	ev_timer_free(p->deadline);
	ev_timer_free(p->report);
	free(p->url);
	free(p);
}
