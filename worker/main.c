/*
 * haven-worker: the per-VM process (DESIGN §2). havend starts it with a
 * socketpair on fd 3 and sends the VM's spec; the worker drops privileges
 * and opens the VM's volumes (volumes.c), runs QEMU (vm.c), moves its state
 * (move.c, migrate/), answers havend (parent.c) or waits for a new one
 * (adopt.c). This file: main, signals, the spec, and leaving.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "worker.h"
#include "worker_int.h"
#include "storage.h"


/* --- leaving ------------------------------------------------------------ */

static void
worker_exit_check(void *arg)
{
	struct worker	*w = arg;

	/* Leave once our last words reached havend (or it is gone). */
	if (w->parent == NULL || channel_pending(w->parent) == 0)
		event_base_loopbreak(w->base);
	else
		ev_timer_arm(w->exit_timer, 10);
}

void
worker_exit(struct worker *w, int code)
{
	if (w->exiting)
		return;
	w->exiting = 1 + code;
	worker_kill_qemu(w);
	if (w->nbd != NULL) {
		nbd_server_free(w->nbd);
		w->nbd = NULL;
	}
	ev_timer_arm(w->exit_timer, 1);
}

void
worker_kill_qemu(struct worker *w)
{
	if (w->qemu_pid > 0)
		kill(w->qemu_pid, SIGKILL);
}

/* Something went wrong for good: QEMU goes, havend hears why, we leave. */
void
worker_fail(struct worker *w, int error, const char *detail)
{
	worker_kill_qemu(w);
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, error, detail);
	worker_exit(w, 1);
}

/* Is QEMU busy with a start, a stop or a move? */
int
worker_busy(const struct worker *w)
{
	return w->op != WORKER_OP_NONE ||
	    transfer_kind(w->transfer) != TRANSFER_NONE;
}

/* --- the spec, sockets, signals ------------------------------------------ */

int
worker_take_spec(struct worker *w, struct frame *f)
{
	Haven__VmSpec	*spec;
	size_t		 i;

	if ((spec = (Haven__VmSpec *)message_decode(f)) == NULL)
		return -EBADMSG;
	/* The two logs, then at most one tap per NIC. */
	if (f->nfds < 2 || spec->n_nics > QEMU_MAX_NICS ||
	    f->nfds > 2 + spec->n_nics || spec->n_volumes == 0 ||
	    machine_volumes_check(spec->name, spec->n_volumes,
	    spec->disk_bus, NULL, 0) == -1 || *spec->uuid == '\0' ||
	    *spec->run_dir == '\0' || spec->memory_mib == 0) {
		message_free(&spec->base);
		return -EINVAL;
	}
	w->spec = spec;
	w->serial_fd = f->fds[0];
	w->log_fd = f->fds[1];
	f->fds[0] = f->fds[1] = -1;
	for (i = 2; i < f->nfds; i++) {
		w->tap_fds[w->ntaps++] = f->fds[i];
		f->fds[i] = -1;
	}
	w->nvolumes = spec->n_volumes;
	for (i = 0; i < w->nvolumes; i++) {
		w->volumes[i].w = w;
		w->volumes[i].ref = spec->volumes[i];
	}
	return 0;
}

/*
 * A NIC havend passed no tap for: the sentence that says so, and 1. The
 * worker then refuses to run the VM rather than run it without its
 * network (a guest that boots unreachable looks up to everyone else).
 */
int
worker_nics_missing(const struct worker *w, char *detail, size_t len)
{
	const Haven__Nic	*nic;
	char			 vlan[16] = "";

	if (w->ntaps >= w->spec->n_nics)
		return 0;
	nic = w->spec->nics[w->ntaps];
	if (nic->vlan != 0)
		snprintf(vlan, sizeof vlan, ", VLAN %u", nic->vlan);
	snprintf(detail, len, "this host offers no tap for NIC %zu (bridge "
	    "%s%s); not starting the VM without its network", w->ntaps,
	    nic->bridge, vlan);
	return 1;
}

int
worker_listen(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    listen(fd, 4) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
worker_signal(int signo, void *arg)
{
	struct worker	*w = arg;

	if (signo == SIGCHLD) {
		worker_sigchld(signo, w);
		return;
	}
	log_info("signal %d: stopping", signo);
	worker_exit(w, 1);
}

int
main(int argc, char **argv)
{
	static const int	 signals[] = { SIGCHLD, SIGTERM, SIGINT };
	struct worker		 w;
	size_t			 i;

	memset(&w, 0, sizeof w);
	w.qemu_pid = -1;
	w.qemu_uid = getuid();	/* a worker not started as root */
	w.qemu_gid = getgid();
	/* What it creates in its run directory (group QEMU's, setgid) is
	 * QEMU's to read at most; the sockets QEMU connects to are made
	 * group-writable one by one (vm.c). */
	umask(027);
	w.qmp_listen = -1;
	w.adopt_listen = -1;
	TAILQ_INIT(&w.calls);
	w.serial_fd = w.log_fd = -1;
	w.cdrom_fd = -1;
	log_init("haven-worker", LOG_LEVEL_INFO);
	if (getenv("HAVEN_WORKER_DEBUG") != NULL)
		log_set_level(LOG_LEVEL_DEBUG);
	tzset();
	if (fcntl(WORKER_PARENT_FD, F_GETFD) == -1) {
		fprintf(stderr, "haven-worker: started by havend with its "
		    "channel on fd %d; not meant to be run by hand\n",
		    WORKER_PARENT_FD);
		return 2;
	}
	if ((w.base = ev_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	w.parent = channel_new(w.base, WORKER_PARENT_FD, FRAME_DEFAULT_MAX,
	    worker_parent_cb, &w);
	w.lease_timer = ev_timer_new(w.base, 0, 0, worker_lease_timer, &w);
	w.stop_timer = ev_timer_new(w.base, 0, 0, worker_stop_timeout, &w);
	w.outage_timer = ev_timer_new(w.base, 0, 0, worker_outage_tick, &w);
	w.exit_timer = ev_timer_new(w.base, 0, 0, worker_exit_check, &w);
	w.adopt_timer = ev_timer_new(w.base, 0, 0, worker_adopt_timeout, &w);
	w.transfer = transfer_new(w.base, &worker_transfer_ops, &w);
	if (w.parent == NULL || w.lease_timer == NULL || w.stop_timer == NULL ||
	    w.outage_timer == NULL ||
	    w.exit_timer == NULL || w.adopt_timer == NULL ||
	    w.transfer == NULL ||
	    ev_on_signals(w.base, signals, 3, worker_signal, &w) == -1)
		log_fatal("cannot set up the event loop");
	ev_timer_arm(w.outage_timer, WORKER_OUTAGE_TICK_MS);

	event_base_dispatch(w.base);

	worker_kill_qemu(&w);
	if (w.adopt_accept != NULL)
		event_free(w.adopt_accept);
	if (w.adopt_listen != -1) {
		/* No havend can adopt this worker any more. */
		close(w.adopt_listen);
		unlink(w.adopt_path);
	}
	if (w.qmp != NULL)
		qmp_free(w.qmp);	/* no reply runs now */
	console_free(&w);
	worker_calls_free(&w);
	if (w.nbd != NULL)
		nbd_server_free(w.nbd);
	for (i = 0; i < w.nvolumes; i++) {
		if (w.volumes[i].vhd != NULL)
			blockdev_close(w.volumes[i].vhd);
		if (w.volumes[i].volume != NULL)
			volume_close(w.volumes[i].volume);
	}
	transfer_free(w.transfer);
	return w.exiting > 1 ? 1 : 0;
}
