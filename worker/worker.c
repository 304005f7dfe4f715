/*
 * haven-worker: the per-VM process (DESIGN §2). havend starts it with a
 * socketpair on fd 3 and sends the VM's spec with its log descriptors; the
 * worker drops privileges, logs in to the VM's volumes, claims their lease,
 * then starts or restores QEMU, serves its disks over NBD, saves its state
 * on request, and stops the VM the moment it is fenced or loses the lease.
 * It exits when its parent's socket closes, unless its spec lets the VM
 * outlive havend for a while: then it waits for a new havend to adopt it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "common.h"
#include "migrate.h"
#include "proto.h"
#include "storage.h"
#include "transfer.h"

#define WORKER_PARENT_FD	3
#define WORKER_MAX_VOLUMES	4
#define WORKER_LEASE_CHECK_MS	1000
#define WORKER_STOP_TIMEOUT_MS	30000

struct worker_volume {
	struct worker		*w;
	const Haven__VolumeRef	*ref;
	struct blockdev		*dev;
	struct volume		*volume;
	struct blockdev		*vhd;
	int			 asking;	/* a RegisterRequest is unanswered */
};

/* What the worker does with QEMU besides a move (transfer.h); a move and
 * these exclude each other. */
enum worker_op {
	WORKER_OP_NONE,
	WORKER_OP_START,
	WORKER_OP_STOP,
};

/* A QMP command sent for a move: its reply goes to migrate/. */
struct worker_call {
	TAILQ_ENTRY(worker_call) entry;
	struct worker		*w;
	transfer_reply_cb	 cb;
	void			*arg;
};

struct worker {
	struct event_base	*base;
	struct channel		*parent;
	Haven__VmSpec		*spec;
	int			 serial_fd;
	int			 log_fd;
	struct worker_volume	 volumes[WORKER_MAX_VOLUMES];
	size_t			 nvolumes;
	size_t			 opening;	/* volume being opened */
	int			 ready;		/* volumes open, lease held */
	Haven__WorkerCommand	*queued;	/* arrived before ready */

	struct nbd_server	*nbd;
	int			 qmp_listen;
	struct event		*qmp_accept;
	struct qmp		*qmp;
	pid_t			 qemu_pid;
	Haven__VmPhase		 phase;

	enum worker_op		 op;
	int			 expect_exit;	/* we asked QEMU to quit */
	int			 kill_requested;	/* havend asked for a hard stop */
	Haven__VmPhase		 exit_phase;	/* phase to report on exit */
	struct ev_timer		*lease_timer;
	struct ev_timer		*stop_timer;
	struct ev_timer		*exit_timer;
	int			 lease_reading;
	int			 exiting;

	/* Moves (migrate/transfer.h), and their QMP commands in flight. */
	struct transfer		*transfer;
	TAILQ_HEAD(, worker_call) calls;
	/* The switchover: leases, then disks, one after the other. */
	size_t			 switch_next;
	transfer_done_cb	 switch_done;
	void			*switch_arg;

	/* Adoption: RUN_DIR/worker.sock, served only while no havend is
	 * attached (spec.adopt_timeout_ms > 0). */
	int			 adopt_listen;
	char			 adopt_path[256];
	struct event		*adopt_accept;
	struct ev_timer		*adopt_timer;
	uint64_t		 adopt_since;	/* ms, when havend went */
};

static void	worker_exit(struct worker *, int code);
static void	worker_kill_qemu(struct worker *);
static void	worker_command(struct worker *, Haven__WorkerCommand *);
static void	worker_open_vhds(struct worker *);
static int	worker_adopt_listen(struct worker *);

static uint64_t
worker_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const char *
worker_phase_name(Haven__VmPhase phase)
{
	const ProtobufCEnumValue	*v;

	v = protobuf_c_enum_descriptor_get_value(&haven__vm_phase__descriptor,
	    phase);
	return v != NULL ? v->name + strlen("VM_PHASE_") : "?";
}

static const char *
worker_strerror(int error)
{
	if (error <= -MIGRATE_ERROR_BASE)
		return migrate_strerror(error);
	return storage_strerror(error);
}

/* Tell havend: a phase, with an error (0 = none) and details. */
static void
worker_report_ex(struct worker *w, Haven__VmPhase phase, int error,
    const char *detail, int received, uint64_t stopped_at_us)
{
	Haven__WorkerEvent	 ev = HAVEN__WORKER_EVENT__INIT;
	Haven__Error		 err = HAVEN__ERROR__INIT;
	char			 text[512];

	w->phase = phase;
	ev.vm_uuid = w->spec != NULL ? w->spec->uuid : "";
	ev.generation = w->spec != NULL ? w->spec->generation : 0;
	ev.phase = phase;
	ev.timestamp_us = worker_now_us();
	ev.detail = (char *)(detail != NULL ? detail : "");
	ev.qemu_pid = w->qemu_pid > 0 ? (uint32_t)w->qemu_pid : 0;
	transfer_fill(w->transfer, &ev);
	/* Live migration: what happened. */
	ev.received = received;
	ev.stopped_at_us = stopped_at_us;
	if (error != 0) {
		snprintf(text, sizeof text, "%s%s%s", worker_strerror(error),
		    detail != NULL && *detail != '\0' ? ": " : "",
		    detail != NULL ? detail : "");
		err.code = HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL;
		err.message = text;
		ev.error = &err;
		ev.fenced = error == STORAGE_E_RESERVATION ||
		    error == STORAGE_E_PREEMPTED;
		log_scoped(LOG_LEVEL_WARN, "vm", ev.vm_uuid, "%s: %s",
		    worker_phase_name(phase), text);
	} else {
		log_scoped(LOG_LEVEL_INFO, "vm", ev.vm_uuid, "%s%s%s",
		    worker_phase_name(phase), detail ? ": " : "",
		    detail ? detail : "");
	}
	if (w->parent != NULL)
		channel_send_message(w->parent, FRAME_WORKER_EVENT, &ev.base,
		    NULL, 0);
}

static void
worker_report(struct worker *w, Haven__VmPhase phase, int error,
    const char *detail)
{
	worker_report_ex(w, phase, error, detail, 0, 0);
}

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

static void
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

static void
worker_kill_qemu(struct worker *w)
{
	if (w->qemu_pid > 0)
		kill(w->qemu_pid, SIGKILL);
}

/* Something went wrong for good: QEMU goes, havend hears why, we leave. */
static void
worker_fail(struct worker *w, int error, const char *detail)
{
	worker_kill_qemu(w);
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, error, detail);
	worker_exit(w, 1);
}

/* Is QEMU busy with a start, a stop or a move? */
static int
worker_busy(const struct worker *w)
{
	return w->op != WORKER_OP_NONE ||
	    transfer_kind(w->transfer) != TRANSFER_NONE;
}

/* --- volumes: open, claim, lease ---------------------------------------- */

/* What migrate/ needs of the VM for a move; the state is on volume 0. */
static void
worker_transfer_vm(struct worker *w)
{
	struct transfer_vm	vm = {
		.uuid = w->spec->uuid,
		.generation = w->spec->generation,
		.config_hash = w->spec->config_hash,
		.memory_mib = w->spec->memory_mib,
		.state = volume_extent(w->volumes[0].volume,
		    VOLUME_EXTENT_STATE),
	};

	transfer_set_vm(w->transfer, &vm);
}

static void	worker_open_next(struct worker *);

static void
worker_lease_claimed(int result, const struct lease_record *rec, void *arg)
{
	struct worker_volume	*v = arg;
	struct worker		*w = v->w;

	if (result != 0) {
		worker_fail(w, result,
		    "claiming the lease");
		return;
	}
	w->opening++;
	worker_open_next(w);
}

static void
worker_claim_lease(struct worker_volume *v)
{
	struct lease_record	mine;

	memset(&mine, 0, sizeof mine);
	snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", v->w->spec->uuid);
	snprintf(mine.owner, sizeof mine.owner, "%s", v->w->spec->host_name);
	mine.node_id = v->w->spec->node_id;
	mine.generation = v->w->spec->generation;
	mine.time_us = worker_now_us();
	lease_claim(volume_extent(v->volume, VOLUME_EXTENT_LEASE), &mine,
	    worker_lease_claimed, v);
}

static void
worker_pr_claimed(int result, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    "registering on the volume");
		return;
	}
	/* A live migration's target takes the lease at the switchover. */
	if (v->w->spec->incoming) {
		v->w->opening++;
		worker_open_next(v->w);
		return;
	}
	worker_claim_lease(v);
}

static void
worker_volume_opened(int result, struct volume *volume, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    v->ref->url);
		return;
	}
	v->volume = volume;
	if (iscsi_is_iscsi(v->dev))
		pr_claim(v->dev, v->ref->reservation_key, worker_pr_claimed, v);
	else if (v->w->spec->incoming)
		worker_pr_claimed(0, v);
	else
		worker_claim_lease(v);
}

/* After a reconnect: ask havend before registering the new nexus. */
static void
worker_register_ask(struct blockdev *dev, void *arg)
{
	struct worker_volume	*v = arg;
	Haven__RegisterRequest	 req = HAVEN__REGISTER_REQUEST__INIT;

	req.volume_uuid = (char *)v->ref->uuid;
	if (v->w->parent == NULL ||
	    channel_send_message(v->w->parent, FRAME_REGISTER_REQUEST,
	    &req.base, NULL, 0) == -1) {
		/* No havend, no grant: the volume is fenced for good. */
		iscsi_register_answer(dev, 0);
		return;
	}
	v->asking = 1;
}

/* Fenced: stop the VM at once; never register again on our own. */
static void
worker_fenced(struct blockdev *dev, int why, void *arg)
{
	struct worker_volume	*v = arg;
	struct worker		*w = v->w;

	worker_fail(w, why,
	    "fenced: QEMU killed, I/O stopped");
}

static void
worker_iscsi_opened(int result, struct blockdev *dev, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    v->ref->url);
		return;
	}
	v->dev = dev;
	iscsi_set_registration(dev, v->ref->reservation_key,
	    worker_register_ask, v);
	iscsi_set_fenced_cb(dev, worker_fenced, v);
	volume_open(dev, worker_volume_opened, v);
}

static void
worker_open_next(struct worker *w)
{
	struct worker_volume	*v;
	struct iscsi_options	 opts = { 0 };
	int			 error = 0;

	if (w->opening == w->nvolumes) {
		w->ready = 1;
		worker_transfer_vm(w);
		if (!w->spec->incoming)
			ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STOPPED, 0,
		    w->spec->incoming ? "volumes open (the lease comes at the "
		    "switchover)" : "volumes open, lease held");
		if (w->queued != NULL) {
			Haven__WorkerCommand	*cmd = w->queued;

			w->queued = NULL;
			worker_command(w, cmd);
			message_free(&cmd->base);
		}
		return;
	}
	v = &w->volumes[w->opening];
	if (strncmp(v->ref->url, "iscsi://", 8) == 0) {
		opts.initiator = *w->spec->initiator ? w->spec->initiator :
		    NULL;
		iscsi_open(w->base, v->ref->url, &opts, worker_iscsi_opened, v);
		return;
	}
	/* A volume on a plain file: tests and single-host use. */
	if ((v->dev = file_open(w->base, v->ref->url, 1, &error)) == NULL) {
		worker_fail(w, error,
		    v->ref->url);
		return;
	}
	volume_open(v->dev, worker_volume_opened, v);
}

/* The lease, re-read while the VM runs: another host may have taken it. */
static void
worker_lease_checked(int result, const struct lease_record *rec, void *arg)
{
	struct worker	*w = arg;
	char		 why[200];

	w->lease_reading = 0;
	if (w->exiting)
		return;
	if (result == 0 && (rec->generation > w->spec->generation ||
	    (rec->generation == w->spec->generation &&
	    strcmp(rec->owner, w->spec->host_name) != 0))) {
		snprintf(why, sizeof why, "lease lost: %s holds generation %"
		    PRIu64, rec->owner, rec->generation);
		worker_fail(w,
		    STORAGE_E_LEASE_NEWER, why);
		return;
	}
	ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
}

static void
worker_lease_timer(void *arg)
{
	struct worker	*w = arg;

	if (w->lease_reading || w->nvolumes == 0 || w->exiting)
		return;
	w->lease_reading = 1;
	lease_read(volume_extent(w->volumes[0].volume, VOLUME_EXTENT_LEASE),
	    worker_lease_checked, w);
}

/* --- QEMU ---------------------------------------------------------------- */

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

static int
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

/* Export the (open) VHDs, listen for QMP, spawn QEMU, and from then on run
 * under the seccomp allowlist. */
static int
worker_spawn(struct worker *w, int incoming)
{
	struct qemu_config	c;
	char			qmp_path[256], nbd_path[256], name[16];
	size_t			i;
	int			error;

	snprintf(qmp_path, sizeof qmp_path, "%s/qmp.sock", w->spec->run_dir);
	snprintf(nbd_path, sizeof nbd_path, "%s/nbd.sock", w->spec->run_dir);
	unlink(nbd_path);
	if ((w->nbd = nbd_server_new(w->base, nbd_path, &error)) == NULL)
		return error;
	for (i = 0; i < w->nvolumes; i++) {
		snprintf(name, sizeof name, "disk%zu", i);
		if (nbd_server_add_export(w->nbd, name, w->volumes[i].vhd, 0)
		    == -1)
			return -errno;
	}
	if ((w->qmp_listen = worker_listen(qmp_path)) == -1)
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
	c.kernel = w->spec->kernel;
	c.append = w->spec->kernel_append;
	c.incoming = incoming;
	c.paused = transfer_kind(w->transfer) == TRANSFER_INCOMING;
	if ((w->qemu_pid = qemu_spawn(&c)) == -1)
		return -errno;
	log_scoped(LOG_LEVEL_INFO, "vm", w->spec->uuid, "QEMU pid %ld",
	    (long)w->qemu_pid);
	/* Nothing is exec'd or forked from here on. */
	if (sandbox_seccomp_worker() == -1)
		return -errno;
	return 0;
}

static void
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
	if (strcmp(name, "STOP") == 0 && !worker_busy(w) &&
	    w->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING) {
		/* Paused by an I/O error (werror=stop) or by us. */
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_PAUSED, 0, NULL);
	} else if (strcmp(name, "RESUME") == 0 &&
	    w->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
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

/* QEMU exited: say how, then leave. */
static void
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

/* Open each volume's VHD (asynchronously, one after the other), then
 * spawn QEMU: cold (start) or waiting for the stream (restore). */
static void
worker_vhd_opened(int result, struct blockdev *vhd, void *arg)
{
	struct worker	*w = arg;
	int		 incoming = transfer_kind(w->transfer) ==
			    TRANSFER_RESTORE || transfer_kind(w->transfer) ==
			    TRANSFER_INCOMING;

	if (result != 0) {
		worker_fail(w, result,
		    "opening the disk image");
		return;
	}
	w->volumes[w->opening++].vhd = vhd;
	if (w->opening < w->nvolumes) {
		worker_open_vhds(w);
		return;
	}
	if ((result = worker_spawn(w, incoming)) != 0) {
		worker_fail(w, result,
		    "starting QEMU");
	}
}

static void
worker_open_vhds(struct worker *w)
{
	struct worker_volume	*v = &w->volumes[w->opening];

	if (v->vhd != NULL) {
		worker_vhd_opened(0, v->vhd, w);
		return;
	}
	vhd_open(volume_extent(v->volume, VOLUME_EXTENT_DISK), 1,
	    worker_vhd_opened, w);
}

/* --- moves: what the worker does for migrate/ --------------------------- */

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

/* The target, handed the VM: each volume's lease, then each disk again. */
static void	worker_switch_next(struct worker *);

static void
worker_switch_claimed(int result, const struct lease_record *rec, void *arg)
{
	struct worker	*w = arg;

	if (result != 0) {
		w->switch_done(result, "claiming the lease at the switchover",
		    w->switch_arg);
		return;
	}
	w->switch_next++;
	worker_switch_next(w);
}

static void
worker_switch_opened(int result, struct blockdev *vhd, void *arg)
{
	struct worker	*w = arg;
	struct blockdev	*old = NULL;
	size_t		 i = w->switch_next - w->nvolumes;
	char		 name[16];

	if (result != 0) {
		w->switch_done(result, "re-reading the disk image at the "
		    "switchover", w->switch_arg);
		return;
	}
	snprintf(name, sizeof name, "disk%zu", i);
	if ((result = nbd_server_replace_export(w->nbd, name, vhd, &old)) !=
	    0) {
		blockdev_close(vhd);
		w->switch_done(result, "serving the re-read disk image",
		    w->switch_arg);
		return;
	}
	blockdev_close(old);
	w->volumes[i].vhd = vhd;
	w->switch_next++;
	worker_switch_next(w);
}

static void
worker_switch_next(struct worker *w)
{
	struct lease_record	 mine;
	struct worker_volume	*v;

	if (w->switch_next < w->nvolumes) {
		v = &w->volumes[w->switch_next];
		memset(&mine, 0, sizeof mine);
		snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", w->spec->uuid);
		snprintf(mine.owner, sizeof mine.owner, "%s",
		    w->spec->host_name);
		mine.node_id = w->spec->node_id;
		mine.generation = w->spec->generation;
		mine.time_us = worker_now_us();
		lease_claim(volume_extent(v->volume, VOLUME_EXTENT_LEASE), &mine,
		    worker_switch_claimed, w);
		return;
	}
	if (w->switch_next < 2 * w->nvolumes) {
		v = &w->volumes[w->switch_next - w->nvolumes];
		vhd_open(volume_extent(v->volume, VOLUME_EXTENT_DISK), 1,
		    worker_switch_opened, w);
		return;
	}
	w->spec->incoming = 0;
	w->switch_done(0, NULL, w->switch_arg);
}

static void
worker_move_take_over(void *arg, transfer_done_cb done, void *done_arg)
{
	struct worker	*w = arg;

	w->switch_next = 0;
	w->switch_done = done;
	w->switch_arg = done_arg;
	worker_switch_next(w);
}

static const struct transfer_ops worker_transfer_ops = {
	.qmp = worker_move_qmp,
	.report = worker_move_report,
	.fail = worker_move_fail,
	.start_qemu = worker_move_start_qemu,
	.quit = worker_move_quit,
	.take_over = worker_move_take_over,
	.watch_lease = worker_move_watch_lease,
	.idle = worker_move_idle,
};

/* --- adoption: the VM outlives havend ----------------------------------- */

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

static void	worker_parent_cb(struct channel *, struct frame *, int, void *);

static void	worker_adopt_accept(evutil_socket_t, short, void *);

static double
worker_adopt_seconds(const struct worker *w)
{
	return w->spec->adopt_timeout_ms / 1000.0;
}

/* Called before seccomp (no bind, no listen after it). Not accepting yet. */
static int
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
static int
worker_adopt_possible(const struct worker *w)
{
	return w->spec != NULL && w->spec->adopt_timeout_ms > 0 &&
	    w->adopt_accept != NULL && w->qemu_pid > 0 && !w->exiting;
}

static void
worker_adopt_wait(struct worker *w)
{
	log_scoped(LOG_LEVEL_WARN, "vm", w->spec->uuid, "havend is gone; "
	    "keeping VM %s running for %g s until a havend adopts it",
	    w->spec->name, worker_adopt_seconds(w));
	w->adopt_since = ev_now_ms();
	ev_timer_arm(w->adopt_timer, w->spec->adopt_timeout_ms);
	event_add(w->adopt_accept, NULL);
}

static void
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
	log_scoped(LOG_LEVEL_INFO, "vm", w->spec->uuid, "adopted by pid %ld "
	    "after %" PRIu64 " ms without havend; VM %s is %s", (long)peer->pid,
	    ev_now_ms() - w->adopt_since, w->spec->name,
	    worker_phase_name(w->phase));
	hello.spec = w->spec;
	hello.phase = w->phase;
	hello.qemu_pid = w->qemu_pid > 0 ? (uint32_t)w->qemu_pid : 0;
	hello.worker_pid = (uint32_t)getpid();
	hello.generation = w->spec->generation;
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
static void
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

/* --- commands from havend ------------------------------------------------ */

static void
worker_stop_timeout(void *arg)
{
	struct worker	*w = arg;

	log_info("the guest did not power off in time; quitting QEMU");
	qmp_command(w->qmp, "quit", NULL, -1, worker_reply_ignore, w);
}

static void
worker_command(struct worker *w, Haven__WorkerCommand *cmd)
{
	if (!w->ready) {
		if (w->queued != NULL)
			message_free(&w->queued->base);
		w->queued = cmd;
		return;
	}
	switch (cmd->action) {
	case HAVEN__WORKER_ACTION__WORKER_ACTION_START:
		if (w->qemu_pid > 0 || worker_busy(w))
			goto busy;
		w->op = WORKER_OP_START;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STARTING, 0, NULL);
		w->opening = 0;
		worker_open_vhds(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE:
		if (w->qemu_pid > 0 || worker_busy(w))
			goto busy;
		quick_restore(w->transfer, cmd->state_generation);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE:
		if (w->qmp == NULL || worker_busy(w))
			goto busy;
		quick_save(w->transfer);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_STOP:
		if (w->qmp == NULL)
			goto busy;
		/* Also in the middle of a move, which nobody follows now. */
		transfer_abandon(w->transfer);
		w->op = WORKER_OP_STOP;
		w->expect_exit = 1;
		w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STOPPING, 0, NULL);
		qmp_command(w->qmp, "system_powerdown", NULL, -1,
		    worker_reply_ignore, w);
		ev_timer_arm(w->stop_timer, cmd->timeout_ms ? cmd->timeout_ms :
		    WORKER_STOP_TIMEOUT_MS);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_KILL:
		w->expect_exit = 1;
		w->kill_requested = 1;
		w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
		if (w->qemu_pid > 0)
			kill(w->qemu_pid, SIGKILL);
		else
			worker_exit(w, 0);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING:
		if (!w->spec->incoming || w->qemu_pid > 0 || worker_busy(w) ||
		    cmd->endpoint == NULL || *cmd->endpoint == '\0')
			goto busy;
		live_incoming(w->transfer, cmd->endpoint);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE:
		if (w->qmp == NULL || worker_busy(w) ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING)
			goto busy;
		live_send(w->transfer, cmd);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH:
		if (transfer_kind(w->transfer) != TRANSFER_INCOMING ||
		    w->qmp == NULL ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
			goto busy;
		live_switch(w->transfer);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME:
		if (transfer_kind(w->transfer) == TRANSFER_LIVE) {
			live_resume(w->transfer);
			break;
		}
		/* FALLTHROUGH */
	case HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE:
		if (w->qmp == NULL || worker_busy(w))
			goto busy;
		qmp_command(w->qmp, cmd->action ==
		    HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE ? "stop" : "cont",
		    NULL, -1, worker_reply_ignore, w);
		break;
	default:
		worker_report(w, w->phase, -EINVAL, "unknown action");
		break;
	}
	return;
busy:
	worker_report(w, w->phase, -EBUSY, "the VM is not in a state for "
	    "that command");
}

static int
worker_take_spec(struct worker *w, struct frame *f)
{
	Haven__VmSpec	*spec;
	size_t		 i;

	if ((spec = (Haven__VmSpec *)message_decode(f)) == NULL)
		return -EBADMSG;
	if (f->nfds != 2 || spec->n_volumes == 0 ||
	    spec->n_volumes > WORKER_MAX_VOLUMES || *spec->uuid == '\0' ||
	    *spec->run_dir == '\0' || spec->memory_mib == 0) {
		message_free(&spec->base);
		return -EINVAL;
	}
	w->spec = spec;
	w->serial_fd = f->fds[0];
	w->log_fd = f->fds[1];
	f->fds[0] = f->fds[1] = -1;
	w->nvolumes = spec->n_volumes;
	for (i = 0; i < w->nvolumes; i++) {
		w->volumes[i].w = w;
		w->volumes[i].ref = spec->volumes[i];
	}
	return 0;
}

static void
worker_parent_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct worker		*w = arg;
	ProtobufCMessage	*m;
	size_t			 i;
	int			 error;

	if (f == NULL) {
		channel_free(w->parent);
		w->parent = NULL;
		worker_adopt_refuse_asked(w);
		if (worker_adopt_possible(w)) {
			log_info("parent channel closed (%s)",
			    frame_strerror(err));
			worker_adopt_wait(w);
			return;
		}
		/* havend is gone: so is the VM (DESIGN §2). */
		log_info("parent channel closed (%s); stopping",
		    frame_strerror(err));
		worker_exit(w, err == 0 ? 0 : 1);
		return;
	}
	switch (f->type) {
	case FRAME_VM_SPEC:
		if (w->spec != NULL) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
			    "this worker already runs VM %s", w->spec->uuid);
			return;
		}
		if ((error = worker_take_spec(w, f)) != 0) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "invalid VM spec (needs volumes, run_dir, memory, "
			    "a UUID, and the serial and QEMU log descriptors)");
			worker_exit(w, 1);
			return;
		}
		if (geteuid() == 0 &&
		    sandbox_drop(w->spec->uid, w->spec->gid) == -1) {
			worker_fail(w,
			    -errno, "dropping privileges");
			return;
		}
		if (geteuid() != 0 && sandbox_no_new_privs() == -1) {
			worker_exit(w, 1);
			return;
		}
		worker_open_next(w);
		return;
	case FRAME_WORKER_COMMAND:
		if (w->spec == NULL) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "send the VM spec first");
			return;
		}
		if ((m = message_decode(f)) == NULL)
			break;
		worker_command(w, (Haven__WorkerCommand *)m);
		if (w->queued != (Haven__WorkerCommand *)m)
			message_free(m);
		return;
	case FRAME_REGISTER_GRANT:
		if ((m = message_decode(f)) == NULL)
			break;
		/* An answer only to a question this channel's havend got. */
		for (i = 0; i < w->nvolumes; i++) {
			if (strcmp(w->volumes[i].ref->uuid,
			    ((Haven__RegisterGrant *)m)->volume_uuid) == 0 &&
			    w->volumes[i].asking) {
				w->volumes[i].asking = 0;
				iscsi_register_answer(w->volumes[i].dev,
				    ((Haven__RegisterGrant *)m)->granted);
			}
		}
		message_free(m);
		return;
	default:
		channel_send_error(c, HAVEN__ERROR_CODE__ERROR_CODE_UNKNOWN_TYPE,
		    "unknown message type %u", f->type);
		return;
	}
	channel_send_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
	    "message does not decode");
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
	struct worker_call	*call;
	size_t			 i;

	memset(&w, 0, sizeof w);
	w.qemu_pid = -1;
	w.qmp_listen = -1;
	w.adopt_listen = -1;
	TAILQ_INIT(&w.calls);
	w.serial_fd = w.log_fd = -1;
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
	w.exit_timer = ev_timer_new(w.base, 0, 0, worker_exit_check, &w);
	w.adopt_timer = ev_timer_new(w.base, 0, 0, worker_adopt_timeout, &w);
	w.transfer = transfer_new(w.base, &worker_transfer_ops, &w);
	if (w.parent == NULL || w.lease_timer == NULL || w.stop_timer == NULL ||
	    w.exit_timer == NULL || w.adopt_timer == NULL ||
	    w.transfer == NULL ||
	    ev_on_signals(w.base, signals, 3, worker_signal, &w) == -1)
		log_fatal("cannot set up the event loop");

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
	while ((call = TAILQ_FIRST(&w.calls)) != NULL) {
		TAILQ_REMOVE(&w.calls, call, entry);
		free(call);
	}
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
