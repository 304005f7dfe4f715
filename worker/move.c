/*
 * What the worker does for a move (migrate/transfer.h): QMP commands whose
 * replies go back to migrate/, its reports and failures, QEMU started for
 * an incoming stream or asked to quit, the volumes taken over, the lease
 * watched.
 */
#include <sys/resource.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "worker.h"
#include "worker_int.h"

static void
worker_call_reply(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker_call	 *c = arg;
	transfer_reply_cb	  cb = c->cb;
	void			 *cb_arg = c->arg;

	TAILQ_REMOVE(&c->w->calls, c, entry);
	free(c);
	cb(result, class, desc, cb_arg);
}

static int
worker_move_qmp(void *arg, const char *execute, struct json_object *arguments,
    int fd, transfer_reply_cb reply, void *reply_arg)
{
	struct worker		*w = arg;
	struct worker_call	*c;

	if (w->qmp == NULL) {
		json_object_put(arguments);
		errno = EPIPE;
		return -1;
	}
	if (reply == NULL)
		return qmp_command(w->qmp, execute, arguments, fd,
		    worker_reply_ignore, w);
	if ((c = calloc(1, sizeof *c)) == NULL) {
		json_object_put(arguments);
		return -1;
	}
	c->w = w;
	c->cb = reply;
	c->arg = reply_arg;
	TAILQ_INSERT_TAIL(&w->calls, c, entry);
	if (qmp_command(w->qmp, execute, arguments, fd, worker_call_reply,
	    c) == -1) {
		TAILQ_REMOVE(&w->calls, c, entry);
		free(c);
		return -1;
	}
	return 0;
}

static void
worker_move_report(void *arg, Haven__VmPhase phase, int error,
    const char *detail, int received, uint64_t stopped_at_us)
{
	worker_report_ex(arg, phase, error, detail, received, stopped_at_us);
}

static void
worker_move_fail(void *arg, int error, const char *detail)
{
	worker_fail(arg, error, detail);
}

static void
worker_move_start_qemu(void *arg)
{
	struct worker	*w = arg;

	w->opening = 0;
	worker_open_vhds(w);
}

static void
worker_move_quit(void *arg, Haven__VmPhase phase)
{
	struct worker	*w = arg;

	w->expect_exit = 1;
	w->exit_phase = phase;
	/*
	 * A completed save: the stream is durable and QEMU sits in
	 * postmigrate with its vCPUs stopped and its disks flushed and
	 * inactive; nothing but our "cont" would run it again, and we never
	 * send one now. Say SAVED at once, so the restore need not wait for
	 * QEMU to tear down its RAM (hundreds of ms for a large guest).
	 */
	if (phase == HAVEN__VM_PHASE__VM_PHASE_SAVED) {
		worker_report(w, phase, 0, "QEMU stopped, quitting");
		w->exit_reported = 1;
		/* Its teardown must not slow the restore, here or beside. */
		if (w->qemu_pid > 0 && setpriority(PRIO_PROCESS,
		    (id_t)w->qemu_pid, 19) == -1)
			worker_log(w, LOG_LEVEL_DEBUG, "renicing QEMU: %s",
			    strerror(errno));
	}
	qmp_command(w->qmp, "quit", NULL, -1, worker_reply_ignore, w);
}

static void
worker_move_idle(void *arg)
{
	struct worker	*w = arg;

	w->op = WORKER_OP_NONE;
}

static void
worker_move_watch_lease(void *arg)
{
	struct worker	*w = arg;

	ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
}

static void
worker_move_take_over(void *arg, transfer_done_cb done, void *done_arg)
{
	worker_switch_volumes(arg, done, done_arg);
}

const struct transfer_ops worker_transfer_ops = {
	.qmp = worker_move_qmp,
	.report = worker_move_report,
	.fail = worker_move_fail,
	.start_qemu = worker_move_start_qemu,
	.quit = worker_move_quit,
	.take_over = worker_move_take_over,
	.watch_lease = worker_move_watch_lease,
	.idle = worker_move_idle,
};

/* At exit, after qmp_free: the replies that never came. */
void
worker_calls_free(struct worker *w)
{
	struct worker_call	*c;

	while ((c = TAILQ_FIRST(&w->calls)) != NULL) {
		TAILQ_REMOVE(&w->calls, c, entry);
		free(c);
	}
}

