/*
 * QEMU's life in the worker: export the disks over NBD, listen for QMP,
 * spawn QEMU and lock down with seccomp; then QMP's readiness and events
 * (a move's go to migrate/), a stop's timeout, and QEMU's exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "worker_int.h"
#include "storage.h"

static void	worker_qmp_ready(struct qmp *, int, void *);
static void	worker_qmp_event(struct qmp *, const char *,
		    struct json_object *, void *);
static void	worker_qmp_closed(struct qmp *, int, void *);

static const struct qmp_callbacks worker_qmp_callbacks = {
	.ready = worker_qmp_ready,
	.event = worker_qmp_event,
	.closed = worker_qmp_closed,
};

static void
worker_qmp_accept(evutil_socket_t fd, short events, void *arg)
{
	struct worker	*w = arg;
	int		 c;

	if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1)
		return;
	if (w->qmp != NULL) {
		close(c);
		return;
	}
	event_del(w->qmp_accept);
	if ((w->qmp = qmp_new(w->base, c, &worker_qmp_callbacks, w)) == NULL) {
		close(c);
		worker_fail(w, -ENOMEM,
		    "QMP");
	}
}

/* Export the (open) VHDs and UEFI's store, listen for QMP, spawn QEMU, and from then on run
 * under the seccomp allowlist. */
int
worker_spawn(struct worker *w, int incoming)
{
	struct qemu_config	c;
	struct qemu_nic		nics[QEMU_MAX_NICS];
	char			qmp_path[256], nbd_path[256], name[16];
	enum boot_device	order[BOOT_NDEVICES];
	size_t			i;
	int			error, n;

	snprintf(qmp_path, sizeof qmp_path, "%s/qmp.sock", w->spec->run_dir);
	snprintf(nbd_path, sizeof nbd_path, "%s/nbd.sock", w->spec->run_dir);
	unlink(nbd_path);
	if ((w->nbd = nbd_server_new(w->base, nbd_path, &error)) == NULL)
		return error;
	/* QEMU connects (group QEMU's, run directory setgid); nothing
	 * else of the worker's is writable by it. */
	if (chmod(nbd_path, 0770) == -1)
		return -errno;
	for (i = 0; i < w->nvolumes; i++) {
		snprintf(name, sizeof name, "disk%zu", i);
		if (nbd_server_add_export(w->nbd, name, w->volumes[i].vhd, 0)
		    == -1)
			return -errno;
	}
	if (w->vars != NULL &&
	    nbd_server_add_export(w->nbd, "vars", w->vars, 0) == -1)
		return -errno;
	if ((w->qmp_listen = worker_listen(qmp_path)) == -1 ||
	    chmod(qmp_path, 0770) == -1)
		return -errno;
	w->qmp_accept = event_new(w->base, w->qmp_listen, EV_READ | EV_PERSIST,
	    worker_qmp_accept, w);
	event_add(w->qmp_accept, NULL);
	/* bind and listen are not in the seccomp allowlist: bind it now. */
	if (worker_adopt_listen(w) == -1)
		return -errno;
	if (transfer_kind(w->transfer) == TRANSFER_INCOMING &&
	    live_listen(w->transfer) == -1)
		return -errno;
	/* No open after the filter either: a live migration's key file. */
	if (live_tls_prepare(w->transfer, w->spec->run_dir) == -1)
		return -errno;

	memset(&c, 0, sizeof c);
	c.binary = *w->spec->qemu_binary ? w->spec->qemu_binary : NULL;
	c.name = w->spec->name;
	c.uuid = w->spec->uuid;
	c.memory_mib = w->spec->memory_mib;
	c.vcpus = w->spec->vcpus;
	c.kvm = w->spec->accel == HAVEN__ACCEL__ACCEL_KVM;
	c.qmp_path = qmp_path;
	c.nbd_path = nbd_path;
	c.ndisks = w->nvolumes;
	c.serial_fd = w->serial_fd;
	c.log_fd = w->log_fd;
	/* The serial port on a socket pair for havenctl's console. */
	if ((c.console_fd = console_socket(w)) == -1)
		return -errno;
	c.console = 1;
	c.kernel = w->spec->kernel;
	c.append = w->spec->kernel_append;
	c.initrd = w->spec->initrd;
	c.disk_bus = w->spec->disk_bus;
	c.machine = w->spec->machine_type;
	c.cpu_model = w->spec->cpu_model;
	if (w->vars != NULL)
		c.firmware_code = w->spec->firmware_code;
	c.cdrom = w->cdrom_fd != -1;
	c.cdrom_fd = w->cdrom_fd;
	n = boot_order_parse(w->spec->boot_order, order);
	for (i = 0; n > 0 && i < (size_t)n; i++) {
		if (order[i] == BOOT_DISK)
			c.disk_bootindex = (int)i + 1;
		else if (order[i] == BOOT_CDROM)
			c.cdrom_bootindex = (int)i + 1;
	}
	/* Every NIC has its tap: worker_nics_missing refused the spec else. */
	for (i = 0; i < w->spec->n_nics && i < w->ntaps; i++) {
		nics[i].mac = w->spec->nics[i]->mac;
		nics[i].e1000 = w->spec->nics[i]->model ==
		    HAVEN__NIC_MODEL__NIC_MODEL_E1000;
		nics[i].tap_fd = w->tap_fds[i];
	}
	c.nics = nics;
	c.nnics = i;
	c.incoming = incoming;
	c.paused = transfer_kind(w->transfer) == TRANSFER_INCOMING;
	c.uid = w->qemu_uid;
	c.gid = w->qemu_gid;
	c.worker_uid = getuid();
	c.worker_gid = getgid();
	w->qemu_pid = qemu_spawn(&c);
	error = errno;
	close(c.console_fd);	/* QEMU's now */
	if (w->qemu_pid == -1)
		return -error;
	worker_log(w, LOG_LEVEL_INFO, "QEMU pid %ld (uid %lu)",
	    (long)w->qemu_pid, (unsigned long)c.uid);
	/* Nothing is exec'd or forked from here on. */
	if (sandbox_seccomp_worker(w->qemu_pid) == -1)
		return -errno;
	return 0;
}

void
worker_reply_ignore(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	if (result == NULL && class != NULL)
		log_warn("QMP: %s: %s", class, desc ? desc : "");
}

static void
worker_qmp_ready(struct qmp *q, int ok, void *arg)
{
	struct worker	*w = arg;

	if (!ok) {
		worker_fail(w, -EPROTO,
		    "QMP handshake failed");
		return;
	}
	if (transfer_qemu_ready(w->transfer))
		return;
	w->op = WORKER_OP_NONE;
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0, "booted");
}

static void
worker_qmp_event(struct qmp *q, const char *name, struct json_object *data,
    void *arg)
{
	struct worker		*w = arg;

	log_debug("QMP event %s", name);
	if (transfer_event(w->transfer, name, data))
		return;
	if (strcmp(name, "BLOCK_IO_ERROR") == 0) {
		w->io_error = 1;
		if (!worker_busy(w) && (w->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_RUNNING || w->io_paused))
			worker_outage_io_error(w);
	} else if (strcmp(name, "STOP") == 0 && !worker_busy(w) &&
	    w->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING) {
		/* Paused for the storage (outage.c), or by hand. */
		if (w->io_paused)
			worker_outage_paused(w);
		else
			worker_report(w, HAVEN__VM_PHASE__VM_PHASE_PAUSED, 0,
			    "its vCPUs were stopped, not for its storage (by "
			    "hand over QMP, or by QEMU itself)");
	} else if (strcmp(name, "STOP") == 0 && w->io_paused) {
		/* After a cont: failed or hung again; the probe starts
		 * over (outage.c). */
		w->cont_us = 0;
	} else if (strcmp(name, "RESUME") == 0) {
		/* Running again: an I/O error paused it only if one follows.
		 * After an outage, outage.c says when it runs for good. */
		w->io_error = 0;
		if (w->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
		    !w->io_paused)
			worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0,
			    "resumed");
	} else if (strcmp(name, "SHUTDOWN") == 0 && !w->expect_exit) {
		w->expect_exit = 1;
		w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
	}
}

static void
worker_qmp_closed(struct qmp *q, int err, void *arg)
{
	/* QEMU is exiting; SIGCHLD tells how. */
}

void
worker_stop_timeout(void *arg)
{
	struct worker	*w = arg;

	log_info("the guest did not power off in time; quitting QEMU");
	qmp_command(w->qmp, "quit", NULL, -1, worker_reply_ignore, w);
}

/* QEMU exited: say how, then leave. */
void
worker_sigchld(int signo, void *arg)
{
	struct worker	*w = arg;
	char		 how[96];
	int		 status;
	pid_t		 pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != w->qemu_pid)
			continue;
		w->qemu_pid = -1;
		if (WIFSIGNALED(status))
			snprintf(how, sizeof how, "QEMU killed by signal %d",
			    WTERMSIG(status));
		else
			snprintf(how, sizeof how, "QEMU exited with status %d",
			    WEXITSTATUS(status));
		if (w->exiting)
			continue;
		if (w->exit_reported) {
			worker_log(w, LOG_LEVEL_INFO, "%s", how);
			worker_exit(w, 0);
			continue;
		}
		if (w->expect_exit && (w->exit_phase !=
		    HAVEN__VM_PHASE__VM_PHASE_STOPPED || WIFEXITED(status) ||
		    w->kill_requested))
			worker_report(w, w->exit_phase, 0, how);
		else
			worker_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, -EIO,
			    how);
		worker_exit(w, 0);
	}
}
