/*
 * Adoption: a new havend takes over a running VM's worker after a havend
 * restart, through RUN_DIR/worker.sock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "worker_int.h"
#include "storage.h"

/*
 * havend may restart without stopping its VMs (spec.adopt_timeout_ms > 0).
 * When the parent channel closes while QEMU runs, the worker keeps the VM
 * going and waits on RUN_DIR/worker.sock for a new havend, at most that
 * long; then QEMU is killed. Meanwhile the worker decides nothing havend
 * would: events are only logged, and a reconnect that needs a new
 * registration is refused (the volume is fenced for good), as is any
 * question havend left unanswered. The lease check and the fence still
 * stop the VM on their own. Only uid 0 may adopt: QEMU runs under our uid
 * and reaches the socket too. A save or restore in flight goes on, but the
 * deadline holds all the same.
 */

static void	worker_adopt_accept(evutil_socket_t, short, void *);

static double
worker_adopt_seconds(const struct worker *w)
{
	return w->spec->adopt_timeout_ms / 1000.0;
}

/* Called before seccomp (no bind, no listen after it). Not accepting yet. */
int
worker_adopt_listen(struct worker *w)
{
	if (w->spec->adopt_timeout_ms == 0 || w->adopt_listen != -1)
		return 0;
	snprintf(w->adopt_path, sizeof w->adopt_path, "%s/worker.sock",
	    w->spec->run_dir);
	if ((w->adopt_listen = worker_listen(w->adopt_path)) == -1)
		return -1;
	if ((w->adopt_accept = event_new(w->base, w->adopt_listen,
	    EV_READ | EV_PERSIST, worker_adopt_accept, w)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* May the VM wait for a new havend instead of stopping with this one? */
int
worker_adopt_possible(const struct worker *w)
{
	return w->spec != NULL && w->spec->adopt_timeout_ms > 0 &&
	    w->adopt_accept != NULL && w->qemu_pid > 0 && !w->exiting;
}

void
worker_adopt_wait(struct worker *w)
{
	worker_log(w, LOG_LEVEL_WARN, "havend is gone; keeping VM %s running for "
	    "%g s until a havend adopts it", w->spec->name,
	    worker_adopt_seconds(w));
	w->adopt_since = ev_now_ms();
	ev_timer_arm(w->adopt_timer, w->spec->adopt_timeout_ms);
	event_add(w->adopt_accept, NULL);
}

void
worker_adopt_timeout(void *arg)
{
	struct worker	*w = arg;
	char		 why[200];

	if (w->parent != NULL || w->exiting)
		return;
	snprintf(why, sizeof why, "no havend adopted VM %s within %g s; "
	    "QEMU killed", w->spec->name, worker_adopt_seconds(w));
	worker_fail(w, -ETIMEDOUT, why);
}

/* A root peer on worker.sock: from now on it is our parent. */
static void
worker_adopt(struct worker *w, int fd, const struct ucred *peer)
{
	Haven__WorkerHello	hello = HAVEN__WORKER_HELLO__INIT;

	/* channel_new closes fd when it fails past taking it. */
	if ((w->parent = channel_new(w->base, fd, FRAME_DEFAULT_MAX,
	    worker_parent_cb, w)) == NULL) {
		log_warn("worker.sock: cannot set up the channel");
		return;
	}
	ev_timer_cancel(w->adopt_timer);
	event_del(w->adopt_accept);
	worker_log(w, LOG_LEVEL_INFO, "adopted by pid %ld after %" PRIu64 " ms "
	    "without havend; VM %s is %s", (long)peer->pid,
	    ev_now_ms() - w->adopt_since, w->spec->name,
	    worker_phase_name(w->phase));
	hello.spec = w->spec;
	hello.phase = w->phase;
	hello.qemu_pid = w->qemu_pid > 0 ? (uint32_t)w->qemu_pid : 0;
	hello.worker_pid = (uint32_t)getpid();
	hello.generation = w->spec->generation;
	hello.last_action = w->last_action;
	hello.received = w->live_received != 0;
	hello.stopped_at_us = w->live_stopped_at_us;
	channel_send_message(w->parent, FRAME_WORKER_HELLO, &hello.base, NULL,
	    0);
}

static void
worker_adopt_accept(evutil_socket_t fd, short events, void *arg)
{
	struct worker	*w = arg;
	struct ucred	 peer;
	socklen_t	 len;
	int		 c;

	while (w->parent == NULL && !w->exiting) {
		if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC |
		    SOCK_NONBLOCK)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		len = sizeof peer;
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &peer, &len) == -1) {
			log_warn("worker.sock: SO_PEERCRED: %s; closed",
			    strerror(errno));
			close(c);
			continue;
		}
		if (peer.uid != 0) {
			log_warn("worker.sock: refused uid %ld (pid %ld): only "
			    "havend (uid 0) may adopt this VM", (long)peer.uid,
			    (long)peer.pid);
			close(c);
			continue;
		}
		worker_adopt(w, c, &peer);
	}
}

/* havend went with questions unanswered: nobody grants them now. */
void
worker_adopt_refuse_asked(struct worker *w)
{
	size_t	i;

	for (i = 0; i < w->nvolumes; i++) {
		if (!w->volumes[i].asking)
			continue;
		w->volumes[i].asking = 0;
		iscsi_register_answer(w->volumes[i].dev, 0);
	}
}
