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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "common.h"
#include "migrate.h"
#include "proto.h"
#include "storage.h"

#define WORKER_PARENT_FD	3
#define WORKER_MAX_VOLUMES	4
#define WORKER_LEASE_CHECK_MS	1000
#define WORKER_STOP_TIMEOUT_MS	30000
#define WORKER_STATE_FD_NAME	"haven-state"
#define WORKER_LIVE_FD_NAME	"haven-live"
#define WORKER_LIVE_TOKEN	32	/* hex digits */
#define WORKER_LIVE_POLL_MS	1000	/* progress, and the converge budget */
#define WORKER_STATE_POLL_MS	500	/* a quick save's or restore's progress */
/* The source: from the last pass's go to the handover (or QEMU's end). */
#define WORKER_LIVE_SWITCH_MS	10000
/* A stream that sends nothing this long is dead (a cut link, a frozen
 * target): call it off without waiting out the converge budget. */
#define WORKER_LIVE_STALL_MS	10000

struct worker_volume {
	struct worker		*w;
	const Haven__VolumeRef	*ref;
	struct blockdev		*dev;
	struct volume		*volume;
	struct blockdev		*vhd;
	int			 asking;	/* a RegisterRequest is unanswered */
};

enum worker_op {
	WORKER_OP_NONE,
	WORKER_OP_START,
	WORKER_OP_STOP,
	WORKER_OP_SAVE,
	WORKER_OP_RESTORE,
	WORKER_OP_INCOMING,	/* live migration, the target: receiving */
	WORKER_OP_LIVE,		/* live migration, the source: sending */
	WORKER_OP_SWITCH,	/* the target takes over */
};

/* The target: a connection that has not shown the token yet. A few at
 * once, so a stranger on the migration network who connects and says
 * nothing cannot keep the real sender out. */
#define WORKER_LIVE_SENDERS	4
struct worker_sender {
	struct worker		*w;
	int			 fd;
	struct event		*ev;
	char			 got[WORKER_LIVE_TOKEN];
	size_t			 n;
	uint64_t		 since_us;
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
	uint64_t		 op_start_us;
	uint64_t		 state_generation;
	struct state_save	*save;
	struct state_restore	*restore;
	int			 stream_done;	/* our side of the stream */
	int			 migration_done; /* QEMU's side */
	uint64_t		 stream_bytes;
	int			 expect_exit;	/* we asked QEMU to quit */
	int			 kill_requested;	/* havend asked for a hard stop */
	Haven__VmPhase		 exit_phase;	/* phase to report on exit */
	struct ev_timer		*lease_timer;
	struct ev_timer		*stop_timer;
	struct ev_timer		*exit_timer;
	int			 lease_reading;
	int			 exiting;

	/* Live migration. The target listens on live_listen (bound before
	 * the seccomp filter) and accepts one sender that presents the
	 * token; the source connects to the target's endpoint. */
	char			 live_endpoint[80];
	char			 live_token[WORKER_LIVE_TOKEN + 1];
	int			 live_listen;
	struct event		*live_accept;
	int			 live_fd;	/* the source: connecting */
	struct event		*live_io;
	struct worker_sender	 senders[WORKER_LIVE_SENDERS];
	struct ev_timer		*live_timer;
	uint64_t		 live_start_us;
	uint32_t		 live_converge_ms;
	uint32_t		 live_downtime_ms;
	uint64_t		 live_bandwidth;
	int			 live_completed;
	int			 live_stopped;
	struct ev_timer		*switch_timer;
	int			 switch_stalled;
	char			 live_why[200];	/* why it was cancelled */
	uint64_t		 live_remaining;	/* progress: live, save, */
	uint64_t		 live_total;		/* restore */
	uint64_t		 restore_length;	/* the state's, from its header */
	uint64_t		 live_sent;	/* ram.transferred, last seen */
	uint64_t		 live_sent_us;	/* when it last grew */
	size_t			 switch_next;

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
static int	worker_live_listen(struct worker *);
static void	worker_live_incoming_ready(struct worker *);
static void	worker_live_resume(struct worker *);
static void	worker_live_event(struct worker *, const char *,
		    struct json_object *);

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
	if (w->op == WORKER_OP_SAVE || w->op == WORKER_OP_RESTORE) {
		ev.state_bytes = w->stream_bytes;
		ev.duration_us = ev.timestamp_us - w->op_start_us;
	}
	/* Live migration: where the target listens; what happened. */
	if (w->op == WORKER_OP_INCOMING && *w->live_endpoint != '\0' &&
	    w->live_listen != -1) {
		ev.endpoint = w->live_endpoint;
		ev.token = w->live_token;
	}
	ev.received = received;
	ev.stopped_at_us = stopped_at_us;
	if (w->op == WORKER_OP_LIVE || w->op == WORKER_OP_SAVE ||
	    w->op == WORKER_OP_RESTORE) {
		ev.live_remaining = w->live_remaining;
		ev.live_total = w->live_total;
	}
	ev.switch_stalled = w->op == WORKER_OP_LIVE && w->switch_stalled;
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

/* --- volumes: open, claim, lease ---------------------------------------- */

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
	if (w->op == WORKER_OP_INCOMING && worker_live_listen(w) == -1)
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
	c.paused = w->op == WORKER_OP_INCOMING;
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
worker_consumed(int result, const struct state_header *h, void *arg)
{
	struct worker	*w = arg;

	if (result != 0)
		log_warn("marking the saved state consumed: %s",
		    migrate_strerror(result));
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0,
	    "restored and running");
	w->op = WORKER_OP_NONE;
}

static void
worker_restore_resumed(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker	*w = arg;

	if (result == NULL) {
		worker_fail(w, -EIO,
		    "cont after restore failed");
		return;
	}
	/* Running again: the state is used up. */
	state_mark_consumed(volume_extent(w->volumes[0].volume,
	    VOLUME_EXTENT_STATE), worker_consumed, w);
}

/* Both sides of a restore finished: our stream (checksum verified) and
 * QEMU's load. Only then the vCPUs run. */
static void
worker_restore_maybe_done(struct worker *w)
{
	if (!w->stream_done || !w->migration_done)
		return;
	qmp_command(w->qmp, "cont", NULL, -1, worker_restore_resumed, w);
}

static void
worker_save_quit(struct worker *w)
{
	w->expect_exit = 1;
	w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_SAVED;
	qmp_command(w->qmp, "quit", NULL, -1, worker_reply_ignore, w);
}

static void
worker_save_maybe_done(struct worker *w)
{
	if (!w->stream_done || !w->migration_done)
		return;
	worker_save_quit(w);
}

static void
worker_save_done(int result, const struct state_header *h, void *arg)
{
	struct worker	*w = arg;

	w->save = NULL;
	if (result != 0) {
		/* The save failed: exactly one runnable copy stays, here. */
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, result,
		    "save failed; resuming the VM here");
		qmp_command(w->qmp, "migrate_cancel", NULL, -1,
		    worker_reply_ignore, w);
		qmp_command(w->qmp, "cont", NULL, -1, worker_reply_ignore, w);
		w->op = WORKER_OP_NONE;
		return;
	}
	w->stream_bytes = h->length;
	w->stream_done = 1;
	worker_save_maybe_done(w);
}

static void
worker_restore_done(int result, const struct state_header *h, void *arg)
{
	struct worker	*w = arg;

	w->restore = NULL;
	if (result != 0) {
		worker_kill_qemu(w);
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, result,
		    "restore failed; the saved state is left as it was");
		worker_exit(w, 1);
		return;
	}
	w->stream_bytes = h->length;
	w->stream_done = 1;
	worker_restore_maybe_done(w);
}

static void
worker_state_progress(uint64_t bytes, void *arg)
{
	struct worker	*w = arg;

	w->stream_bytes = bytes;
}

/* QEMU's migration, both ways: events on, our pipe end handed over with
 * getfd (the fd travels with the command; ours is closed), and the
 * migrate or migrate-incoming command pointing at it. */
static void
worker_migration_cap(struct json_object *caps, const char *name, int on)
{
	struct json_object	*cap = json_object_new_object();

	json_object_object_add(cap, "capability",
	    json_object_new_string(name));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	json_object_array_add(caps, cap);
}

/*
 * A live migration's source stops at 'pre-switchover' (the vCPUs stopped,
 * the last pass not sent) until the worker says go: a cancel (budget,
 * stall, the cluster) can then never cross the last pass, after which the
 * target may hold the whole VM while the source resumes it too. Every
 * other migration (a quick save) runs straight through; capabilities
 * outlive a migration, so each one sets it.
 */
static void
worker_migration_events(struct worker *w)
{
	struct json_object	*caps = json_object_new_array();
	struct json_object	*params = json_object_new_object();

	worker_migration_cap(caps, "events", 1);
	worker_migration_cap(caps, "pause-before-switchover",
	    w->op == WORKER_OP_LIVE);
	json_object_object_add(params, "capabilities", caps);
	qmp_command(w->qmp, "migrate-set-capabilities", params, -1,
	    worker_reply_ignore, w);
}

static void
worker_hand_fd_named(struct worker *w, int fd, const char *name)
{
	struct json_object	*params = json_object_new_object();

	json_object_object_add(params, "fdname",
	    json_object_new_string(name));
	qmp_command(w->qmp, "getfd", params, fd, worker_reply_ignore, w);
	close(fd);
}

static void
worker_hand_fd(struct worker *w, int fd)
{
	worker_hand_fd_named(w, fd, WORKER_STATE_FD_NAME);
}

static void
worker_migrate_fd_named(struct worker *w, const char *command,
    const char *name)
{
	struct json_object	*params = json_object_new_object();
	char			 uri[64];

	snprintf(uri, sizeof uri, "fd:%s", name);
	json_object_object_add(params, "uri", json_object_new_string(uri));
	qmp_command(w->qmp, command, params, -1, worker_reply_ignore, w);
}

static void
worker_migrate_fd(struct worker *w, const char *command)
{
	worker_migrate_fd_named(w, command, WORKER_STATE_FD_NAME);
}

/* Save: QEMU writes its migration stream into a pipe we drain onto the
 * volume's state extent. */
static void
worker_save_begin(struct worker *w)
{
	struct state_header	 ident;
	struct json_object	*params;
	int			 p[2];

	memset(&ident, 0, sizeof ident);
	snprintf(ident.vm_uuid, sizeof ident.vm_uuid, "%s", w->spec->uuid);
	ident.generation = w->spec->generation;
	ident.config_hash = w->spec->config_hash;
	if (pipe2(p, O_CLOEXEC) == -1 || ev_set_nonblock(p[0]) == -1) {
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, -errno,
		    "save: pipe");
		return;
	}
	w->op = WORKER_OP_SAVE;
	w->op_start_us = worker_now_us();
	w->stream_done = w->migration_done = 0;
	w->stream_bytes = 0;
	w->live_remaining = w->live_total = 0;
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_SAVING, 0, NULL);
	ev_timer_arm(w->live_timer, WORKER_STATE_POLL_MS);

	qmp_command(w->qmp, "stop", NULL, -1, worker_reply_ignore, w);
	worker_migration_events(w);
	params = json_object_new_object();
	json_object_object_add(params, "max-bandwidth",
	    json_object_new_int64(INT64_MAX / 2));
	qmp_command(w->qmp, "migrate-set-parameters", params, -1,
	    worker_reply_ignore, w);
	worker_hand_fd(w, p[1]);
	w->save = state_save_start(w->base, volume_extent(w->volumes[0].volume,
	    VOLUME_EXTENT_STATE), p[0], &ident, worker_state_progress,
	    worker_save_done, w);
	worker_migrate_fd(w, "migrate");
}

/* Restore, once QEMU (started with -incoming defer) answers QMP. */
static void
worker_restore_begin(struct worker *w)
{
	struct state_expect	 expect;
	int			 p[2];

	if (pipe2(p, O_CLOEXEC) == -1 || ev_set_nonblock(p[1]) == -1) {
		worker_fail(w, -errno, "restore: pipe");
		return;
	}
	worker_migration_events(w);
	worker_hand_fd(w, p[0]);
	worker_migrate_fd(w, "migrate-incoming");
	expect.vm_uuid = w->spec->uuid;
	expect.generation = w->state_generation;
	expect.config_hash = w->spec->config_hash;
	w->restore = state_restore_start(w->base,
	    volume_extent(w->volumes[0].volume, VOLUME_EXTENT_STATE), p[1],
	    &expect, worker_state_progress, worker_restore_done, w);
	w->live_remaining = w->live_total = 0;
	ev_timer_arm(w->live_timer, WORKER_STATE_POLL_MS);
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
	if (w->op == WORKER_OP_RESTORE) {
		worker_restore_begin(w);
		return;
	}
	if (w->op == WORKER_OP_INCOMING) {
		worker_live_incoming_ready(w);
		return;
	}
	w->op = WORKER_OP_NONE;
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0, "booted");
}

static void
worker_qmp_event(struct qmp *q, const char *name, struct json_object *data,
    void *arg)
{
	struct worker		*w = arg;
	struct json_object	*status;
	const char		*s;

	log_debug("QMP event %s", name);
	if (w->op == WORKER_OP_INCOMING || w->op == WORKER_OP_LIVE) {
		worker_live_event(w, name, data);
		return;
	}
	if (strcmp(name, "MIGRATION") == 0 &&
	    json_object_object_get_ex(data, "status", &status)) {
		s = json_object_get_string(status);
		if (strcmp(s, "completed") == 0) {
			w->migration_done = 1;
			if (w->op == WORKER_OP_SAVE)
				worker_save_maybe_done(w);
			else if (w->op == WORKER_OP_RESTORE)
				worker_restore_maybe_done(w);
		} else if (strcmp(s, "failed") == 0) {
			if (w->op == WORKER_OP_SAVE) {
				if (w->save != NULL) {
					state_save_abort(w->save);
					w->save = NULL;
				}
				worker_report(w,
				    HAVEN__VM_PHASE__VM_PHASE_RUNNING, -EIO,
				    "QEMU's migration failed; resuming here");
				qmp_command(w->qmp, "cont", NULL, -1,
				    worker_reply_ignore, w);
				w->op = WORKER_OP_NONE;
			} else if (w->op == WORKER_OP_RESTORE) {
				worker_fail(w,
				    -EIO, "QEMU could not load the saved "
				    "state");
			}
		}
	} else if (strcmp(name, "STOP") == 0 && w->op == WORKER_OP_NONE &&
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
	int		 incoming = w->op == WORKER_OP_RESTORE ||
			    w->op == WORKER_OP_INCOMING;

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

/* --- live migration ------------------------------------------------------ */

/*
 * DESIGN §6. The target's worker opens the volumes without the lease,
 * starts QEMU with -incoming defer -S and listens on its migration
 * address; the cluster carries its endpoint and a one-time token to the
 * source. The source's worker connects, presents the token and hands the
 * socket to QEMU (`migrate fd:`): pre-copy runs over the migration network
 * under the downtime limit and bandwidth; if it has not converged within
 * its budget the worker cancels it and the VM runs on (the cluster falls
 * back to quick migration). The target reports the whole stream in; once
 * the cluster has given it the VM (generation + 1) it claims the lease,
 * opens the disks' metadata again (the source wrote them until it
 * stopped: a dynamic VHD's block table moved on) and runs the vCPUs. The
 * source keeps its stopped QEMU until then: a target that fails before
 * the handover leaves the VM to resume where it was.
 */

static void
worker_live_close(struct worker *w)
{
	if (w->live_io != NULL) {
		event_free(w->live_io);
		w->live_io = NULL;
	}
	if (w->live_fd != -1) {
		close(w->live_fd);
		w->live_fd = -1;
	}
}

static void
worker_live_stop_listening(struct worker *w)
{
	if (w->live_accept != NULL) {
		event_free(w->live_accept);
		w->live_accept = NULL;
	}
	if (w->live_listen != -1) {
		close(w->live_listen);
		w->live_listen = -1;
	}
}

/* The target: a TCP listener on the migration address, any port. */
static int
worker_live_listen(struct worker *w)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	uint8_t			raw[WORKER_LIVE_TOKEN / 2];
	char			addr[64];
	size_t			i;
	int			fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	if (strlen(w->live_endpoint) >= sizeof addr) {
		errno = EINVAL;
		return -1;
	}
	memcpy(addr, w->live_endpoint, strlen(w->live_endpoint) + 1);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return -1;
	for (i = 0; i < sizeof raw; i++)
		snprintf(w->live_token + 2 * i, 3, "%02x", raw[i]);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	w->live_listen = fd;
	snprintf(w->live_endpoint, sizeof w->live_endpoint, "%s:%u", addr,
	    (unsigned)ntohs(sin.sin_port));
	return 0;
}

static void
worker_sender_close(struct worker_sender *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->fd != -1)
		close(p->fd);
	p->ev = NULL;
	p->fd = -1;
}

/* The target: the sender's token, then the socket goes to QEMU. */
static void
worker_live_token_read(evutil_socket_t fd, short events, void *arg)
{
	struct worker_sender	*p = arg;
	struct worker		*w = p->w;
	ssize_t			 n;
	size_t			 i;
	int			 flags;

	n = read(fd, p->got + p->n, sizeof p->got - p->n);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_warn("live migration: a sender left before its token");
		worker_sender_close(p);
		return;
	}
	p->n += (size_t)n;
	if (p->n < sizeof p->got)
		return;
	if (memcmp(p->got, w->live_token, sizeof p->got) != 0) {
		log_warn("live migration: a sender with a wrong token; "
		    "closed");
		worker_sender_close(p);
		return;
	}
	/* The sender: nobody else from now on. */
	event_free(p->ev);
	p->ev = NULL;
	p->fd = -1;
	for (i = 0; i < WORKER_LIVE_SENDERS; i++)
		worker_sender_close(&w->senders[i]);
	worker_live_stop_listening(w);
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	worker_hand_fd_named(w, fd, WORKER_LIVE_FD_NAME);
	worker_migrate_fd_named(w, "migrate-incoming", WORKER_LIVE_FD_NAME);
	w->live_start_us = worker_now_us();
	log_info("live migration: receiving");
}

static void
worker_live_accept(evutil_socket_t fd, short events, void *arg)
{
	struct worker		*w = arg;
	struct worker_sender	*p = NULL;
	size_t			 i;
	int			 c;

	if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1)
		return;
	/* A free slot, else the one that has kept silent longest. */
	for (i = 0; i < WORKER_LIVE_SENDERS; i++) {
		if (w->senders[i].fd == -1) {
			p = &w->senders[i];
			break;
		}
		if (p == NULL || w->senders[i].since_us < p->since_us)
			p = &w->senders[i];
	}
	if (p->fd != -1) {
		log_warn("live migration: %d senders have not shown a token; "
		    "dropping the oldest", WORKER_LIVE_SENDERS);
		worker_sender_close(p);
	}
	p->w = w;
	p->fd = c;
	p->n = 0;
	p->since_us = worker_now_us();
	if ((p->ev = event_new(w->base, c, EV_READ | EV_PERSIST,
	    worker_live_token_read, p)) == NULL ||
	    event_add(p->ev, NULL) == -1)
		worker_sender_close(p);
}

/* The target's QEMU answers QMP: wait for the sender. */
static void
worker_live_incoming_ready(struct worker *w)
{
	worker_migration_events(w);
	w->live_accept = event_new(w->base, w->live_listen,
	    EV_READ | EV_PERSIST, worker_live_accept, w);
	if (w->live_accept == NULL || event_add(w->live_accept, NULL) == -1) {
		worker_fail(w, -ENOMEM, "live migration: listening");
		return;
	}
	worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
	    "waiting for the live migration", 0, 0);
}

/* The source: the migration is over without a handover; the VM runs on. */
static void
worker_live_ended(struct worker *w, int error, const char *why)
{
	ev_timer_cancel(w->live_timer);
	ev_timer_cancel(w->switch_timer);
	worker_live_close(w);
	w->op = WORKER_OP_NONE;
	w->live_completed = 0;
	worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, error, why,
	    0, 0);
}

static void
worker_live_figures(struct json_object *result, double *remaining_mib,
    double *dirty_mib_s, double *mbps, int64_t *passes, uint64_t *sent)
{
	struct json_object	*ram, *v;

	*remaining_mib = *dirty_mib_s = *mbps = 0;
	*passes = 0;
	*sent = 0;
	if (result == NULL || !json_object_object_get_ex(result, "ram", &ram))
		return;
	if (json_object_object_get_ex(ram, "transferred", &v))
		*sent = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(ram, "remaining", &v))
		*remaining_mib = json_object_get_int64(v) / 1048576.0;
	if (json_object_object_get_ex(ram, "dirty-pages-rate", &v))
		*dirty_mib_s = json_object_get_int64(v) * 4096.0 / 1048576.0;
	if (json_object_object_get_ex(ram, "mbps", &v))
		*mbps = json_object_get_double(v);
	if (json_object_object_get_ex(ram, "dirty-sync-count", &v))
		*passes = json_object_get_int64(v);
}

static void
worker_live_progress(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker	*w = arg;
	double		 left, dirty, mbps;
	int64_t		 passes;
	uint64_t	 ms, now, sent, still_ms;
	char		 rate[64], line[160];

	if (w->op != WORKER_OP_LIVE || w->live_completed || w->live_stopped)
		return;
	worker_live_figures(result, &left, &dirty, &mbps, &passes, &sent);
	now = worker_now_us();
	ms = (now - w->live_start_us) / 1000;
	if (sent > w->live_sent || w->live_sent_us == 0) {
		w->live_sent = sent;
		w->live_sent_us = now;
	}
	still_ms = (now - w->live_sent_us) / 1000;
	snprintf(line, sizeof line, "%" PRIu64 " ms, pass %" PRId64 ", %.1f "
	    "MiB left, dirtying %.1f MiB/s, sending %.0f Mbit/s", ms, passes,
	    left, dirty, mbps);
	w->live_remaining = (uint64_t)(left * 1048576.0);
	w->live_total = w->spec->memory_mib << 20;
	if (w->live_remaining > w->live_total)
		w->live_remaining = w->live_total;
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, line);
	if (still_ms >= WORKER_LIVE_STALL_MS) {
		snprintf(w->live_why, sizeof w->live_why, "the stream to %s "
		    "stalled: nothing sent for %" PRIu64 " s (pass %" PRId64
		    ", %.1f MiB left)", w->live_endpoint, still_ms / 1000,
		    passes, left);
		log_warn("live migration: %s; cancelling", w->live_why);
		qmp_command(w->qmp, "migrate_cancel", NULL, -1,
		    worker_reply_ignore, w);
		return;
	}
	if (ms < w->live_converge_ms) {
		ev_timer_arm(w->live_timer, WORKER_LIVE_POLL_MS);
		return;
	}
	/* Over budget: call it off; QEMU keeps the VM running. */
	rate[0] = '\0';
	if (dirty > 0)	/* QEMU knows it after the first pass */
		snprintf(rate, sizeof rate, ", the guest dirties %.1f MiB/s",
		    dirty);
	snprintf(w->live_why, sizeof w->live_why, "it did not converge within "
	    "%u s (pass %" PRId64 ", %.1f MiB left, %.0f Mbit/s sent%s)",
	    w->live_converge_ms / 1000, passes, left, mbps, rate);
	log_warn("live migration: %s; cancelling", w->live_why);
	qmp_command(w->qmp, "migrate_cancel", NULL, -1, worker_reply_ignore,
	    w);
}

/* A quick save's progress: the RAM QEMU has left to write. */
static void
worker_save_progress(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker		*w = arg;
	struct json_object	*ram, *v;

	if (w->op != WORKER_OP_SAVE || w->stream_done)
		return;
	if (result != NULL && json_object_object_get_ex(result, "ram", &ram) &&
	    json_object_object_get_ex(ram, "total", &v)) {
		w->live_total = (uint64_t)json_object_get_int64(v);
		w->live_remaining = json_object_object_get_ex(ram, "remaining",
		    &v) ? (uint64_t)json_object_get_int64(v) : 0;
		if (w->live_remaining > w->live_total)
			w->live_remaining = w->live_total;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_SAVING, 0, NULL);
	}
	ev_timer_arm(w->live_timer, WORKER_STATE_POLL_MS);
}

static void
worker_live_timer(void *arg)
{
	struct worker	*w = arg;

	if (w->qmp == NULL)
		return;
	if (w->op == WORKER_OP_LIVE)
		qmp_command(w->qmp, "query-migrate", NULL, -1,
		    worker_live_progress, w);
	else if (w->op == WORKER_OP_SAVE && !w->stream_done)
		qmp_command(w->qmp, "query-migrate", NULL, -1,
		    worker_save_progress, w);
	else if (w->op == WORKER_OP_RESTORE && !w->stream_done &&
	    w->restore_length != 0) {
		/* The state read off the volume into QEMU, of its length. */
		w->live_total = w->restore_length;
		w->live_remaining = w->stream_bytes < w->restore_length ?
		    w->restore_length - w->stream_bytes : 0;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RESTORING, 0, NULL);
		ev_timer_arm(w->live_timer, WORKER_STATE_POLL_MS);
	}
}

/* The source: connected to the target; the token, then QEMU sends. */
static void
worker_live_connected(evutil_socket_t fd, short events, void *arg)
{
	struct worker		*w = arg;
	struct json_object	*params;
	socklen_t		 len = sizeof(int);
	int			 error = 0, flags;
	char			 why[160];

	event_free(w->live_io);
	w->live_io = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error == 0 && write(fd, w->live_token, WORKER_LIVE_TOKEN) !=
	    WORKER_LIVE_TOKEN)
		error = errno != 0 ? errno : EIO;
	if (error != 0) {
		snprintf(why, sizeof why, "cannot reach the target at %s: %s",
		    w->live_endpoint, strerror(error));
		worker_live_ended(w, -error, why);
		return;
	}
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	w->live_fd = -1;
	worker_migration_events(w);
	params = json_object_new_object();
	json_object_object_add(params, "downtime-limit",
	    json_object_new_int64(w->live_downtime_ms));
	json_object_object_add(params, "max-bandwidth",
	    json_object_new_int64(w->live_bandwidth ? (int64_t)w->live_bandwidth
	    : INT64_MAX / 2));
	qmp_command(w->qmp, "migrate-set-parameters", params, -1,
	    worker_reply_ignore, w);
	worker_hand_fd_named(w, fd, WORKER_LIVE_FD_NAME);
	worker_migrate_fd_named(w, "migrate", WORKER_LIVE_FD_NAME);
	ev_timer_arm(w->live_timer, WORKER_LIVE_POLL_MS);
}

static void
worker_live_send(struct worker *w, const Haven__WorkerCommand *cmd)
{
	struct sockaddr_in	 sin;
	char			 host[64], why[160];
	const char		*colon;
	unsigned long		 port;
	int			 fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	colon = cmd->endpoint != NULL ? strrchr(cmd->endpoint, ':') : NULL;
	if (colon == NULL || (size_t)(colon - cmd->endpoint) >= sizeof host ||
	    cmd->token == NULL || strlen(cmd->token) != WORKER_LIVE_TOKEN) {
		worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, -EINVAL,
		    "live migration: bad endpoint or token", 0, 0);
		return;
	}
	memcpy(host, cmd->endpoint, (size_t)(colon - cmd->endpoint));
	host[colon - cmd->endpoint] = '\0';
	port = strtoul(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port == 0 ||
	    port > 65535) {
		worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, -EINVAL,
		    "live migration: bad endpoint", 0, 0);
		return;
	}
	sin.sin_port = htons((uint16_t)port);
	w->op = WORKER_OP_LIVE;
	w->op_start_us = w->live_start_us = worker_now_us();
	w->live_completed = w->live_stopped = 0;
	w->switch_stalled = 0;
	w->live_sent = w->live_sent_us = 0;
	w->live_why[0] = '\0';
	w->live_converge_ms = cmd->converge_ms ? cmd->converge_ms : 60000;
	w->live_downtime_ms = cmd->downtime_ms ? cmd->downtime_ms : 300;
	w->live_bandwidth = cmd->bandwidth;
	snprintf(w->live_endpoint, sizeof w->live_endpoint, "%s",
	    cmd->endpoint);
	snprintf(w->live_token, sizeof w->live_token, "%s", cmd->token);
	snprintf(why, sizeof why, "sending to %s", cmd->endpoint);
	worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, why, 0, 0);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1 || (connect(fd, (struct sockaddr *)&sin, sizeof sin) ==
	    -1 && errno != EINPROGRESS)) {
		snprintf(why, sizeof why, "cannot reach the target at %s: %s",
		    cmd->endpoint, strerror(errno));
		if (fd != -1)
			close(fd);
		worker_live_ended(w, -errno, why);
		return;
	}
	w->live_fd = fd;
	if ((w->live_io = event_new(w->base, fd, EV_WRITE,
	    worker_live_connected, w)) == NULL ||
	    event_add(w->live_io, NULL) == -1)
		worker_live_ended(w, -ENOMEM, "live migration: event");
}

/* The source: QEMU's own reason for a failed live migration. */
static void
worker_live_failed(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker		*w = arg;
	struct json_object	*v;
	char			 why[256];

	if (w->op != WORKER_OP_LIVE)
		return;
	if (result != NULL && json_object_object_get_ex(result, "error-desc",
	    &v))
		snprintf(why, sizeof why, "QEMU: %s", json_object_get_string(v));
	else
		snprintf(why, sizeof why, "QEMU's live migration failed");
	worker_live_ended(w, -EIO, why);
}

/* QMP events while a live migration runs, on either side. */
static void
worker_live_event(struct worker *w, const char *name, struct json_object *data)
{
	struct json_object	*status, *params;
	const char		*s;
	char			 why[256];

	if (strcmp(name, "STOP") == 0 && w->op == WORKER_OP_LIVE) {
		/* The switchover begins: the downtime starts here. */
		w->live_stopped = 1;
		worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
		    "vCPUs stopped for the switchover", 0, worker_now_us());
		return;
	}
	if (strcmp(name, "MIGRATION") != 0 ||
	    !json_object_object_get_ex(data, "status", &status))
		return;
	s = json_object_get_string(status);
	if (w->op == WORKER_OP_INCOMING) {
		if (strcmp(s, "completed") == 0) {
			snprintf(why, sizeof why, "live migration received in "
			    "%" PRIu64 " ms", (worker_now_us() -
			    w->live_start_us) / 1000);
			worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING,
			    0, why, 1, 0);
		} else if (strcmp(s, "failed") == 0) {
			worker_fail(w, -EIO, "the live migration stream broke "
			    "off");
		}
		return;
	}
	if (strcmp(s, "pre-switchover") == 0) {
		/* Called off already: the cancel wins, the VM runs here. */
		if (*w->live_why != '\0')
			return;
		ev_timer_arm(w->switch_timer, WORKER_LIVE_SWITCH_MS);
		params = json_object_new_object();
		json_object_object_add(params, "state",
		    json_object_new_string("pre-switchover"));
		qmp_command(w->qmp, "migrate-continue", params, -1,
		    worker_reply_ignore, w);
		return;
	}
	if (strcmp(s, "completed") == 0) {
		ev_timer_cancel(w->live_timer);
		w->live_completed = 1;
		snprintf(why, sizeof why, "live migration sent in %" PRIu64
		    " ms; the target takes over", (worker_now_us() -
		    w->live_start_us) / 1000);
		worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
		    why, 0, 0);
	} else if (strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0) {
		/* QEMU runs the VM again by itself if it had stopped it. */
		if (w->live_stopped)
			qmp_command(w->qmp, "cont", NULL, -1,
			    worker_reply_ignore, w);
		if (*w->live_why == '\0' && strcmp(s, "failed") == 0) {
			/* Ask QEMU why, then end. */
			qmp_command(w->qmp, "query-migrate", NULL, -1,
			    worker_live_failed, w);
			return;
		}
		snprintf(why, sizeof why, "%s", *w->live_why ? w->live_why :
		    "cancelled");
		worker_live_ended(w, 0, why);
	}
}

/* The source: the last pass or the handover is stuck (a migration link
 * that died in the last pass, a target that never reports): the worker
 * may not cancel by itself now, so it asks the cluster to call it off. */
static void
worker_switch_timeout(void *arg)
{
	struct worker	*w = arg;
	char		 why[160];

	if (w->op != WORKER_OP_LIVE)
		return;
	w->switch_stalled = 1;
	snprintf(why, sizeof why, "the switchover did not finish within %d s "
	    "(%s)", WORKER_LIVE_SWITCH_MS / 1000, w->live_completed ?
	    "the target never took over" : "the last pass is stuck");
	snprintf(w->live_why, sizeof w->live_why, "%s", why);
	log_warn("live migration: %s; asking the cluster to call it off", why);
	worker_report_ex(w, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, why, 0, 0);
}

/* The source: the cluster called the move off. */
static void
worker_live_resume(struct worker *w)
{
	/* The cluster has decided (a 'received' of the target is stale
	 * now): even a last pass on its way may be cancelled. */
	if (!w->live_completed) {
		snprintf(w->live_why, sizeof w->live_why, "called off by the "
		    "cluster");
		qmp_command(w->qmp, "migrate_cancel", NULL, -1,
		    worker_reply_ignore, w);
		return;
	}
	/* Sent, but the target never took over: run it here again. */
	qmp_command(w->qmp, "cont", NULL, -1, worker_reply_ignore, w);
	worker_live_ended(w, 0, "the target did not take over; running here "
	    "again");
}

/* The target, handed the VM: lease, the disks again, then the vCPUs. */
static void	worker_switch_next(struct worker *);

static void
worker_switch_resumed(struct qmp *q, struct json_object *result,
    const char *class, const char *desc, void *arg)
{
	struct worker	*w = arg;

	if (result == NULL) {
		worker_fail(w, -EIO, "cont after the live migration failed");
		return;
	}
	w->op = WORKER_OP_NONE;
	ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
	worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0,
	    "migrated live and running");
}

static void
worker_switch_claimed(int result, const struct lease_record *rec, void *arg)
{
	struct worker	*w = arg;

	if (result != 0) {
		worker_fail(w, result, "claiming the lease at the switchover");
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
		worker_fail(w, result, "re-reading the disk image at the "
		    "switchover");
		return;
	}
	snprintf(name, sizeof name, "disk%zu", i);
	if ((result = nbd_server_replace_export(w->nbd, name, vhd, &old)) !=
	    0) {
		blockdev_close(vhd);
		worker_fail(w, result, "serving the re-read disk image");
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
	qmp_command(w->qmp, "cont", NULL, -1, worker_switch_resumed, w);
}

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
worker_restore_checked(int result, const struct state_header *h, void *arg)
{
	struct worker			*w = arg;
	const struct state_expect	 expect = {
		.vm_uuid = w->spec->uuid,
		.generation = w->state_generation,
		.config_hash = w->spec->config_hash,
	};

	if (result != 0) {
		/* This host cannot read it: another host may. */
		worker_fail(w, result, "cannot read the saved state's header");
		return;
	}
	result = state_header_check(h, &expect);
	if (result == 0)
		w->restore_length = h->length;
	if (result != 0) {
		/* Refused before QEMU starts; the state stays as it was. */
		w->op = WORKER_OP_NONE;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STOPPED, result,
		    "restore refused");
		return;
	}
	w->stream_done = w->migration_done = 0;
	w->opening = 0;
	worker_open_vhds(w);
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
		if (w->qemu_pid > 0 || w->op != WORKER_OP_NONE)
			goto busy;
		w->op = WORKER_OP_START;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STARTING, 0, NULL);
		w->opening = 0;
		worker_open_vhds(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE:
		if (w->qemu_pid > 0 || w->op != WORKER_OP_NONE)
			goto busy;
		w->op = WORKER_OP_RESTORE;
		w->op_start_us = worker_now_us();
		w->stream_bytes = 0;
		w->state_generation = cmd->state_generation;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_RESTORING, 0, NULL);
		state_header_read(volume_extent(w->volumes[0].volume,
		    VOLUME_EXTENT_STATE), worker_restore_checked, w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE:
		if (w->qmp == NULL || w->op != WORKER_OP_NONE)
			goto busy;
		worker_save_begin(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_STOP:
		if (w->qmp == NULL)
			goto busy;
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
		if (!w->spec->incoming || w->qemu_pid > 0 ||
		    w->op != WORKER_OP_NONE || cmd->endpoint == NULL ||
		    *cmd->endpoint == '\0')
			goto busy;
		w->op = WORKER_OP_INCOMING;
		w->op_start_us = worker_now_us();
		snprintf(w->live_endpoint, sizeof w->live_endpoint, "%s",
		    cmd->endpoint);
		w->opening = 0;
		worker_open_vhds(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE:
		if (w->qmp == NULL || w->op != WORKER_OP_NONE ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING)
			goto busy;
		worker_live_send(w, cmd);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH:
		if (w->op != WORKER_OP_INCOMING || w->qmp == NULL ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
			goto busy;
		w->op = WORKER_OP_SWITCH;
		w->switch_next = 0;
		worker_switch_next(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME:
		if (w->op == WORKER_OP_LIVE) {
			worker_live_resume(w);
			break;
		}
		/* FALLTHROUGH */
	case HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE:
		if (w->qmp == NULL || w->op != WORKER_OP_NONE)
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
	size_t			 i;

	memset(&w, 0, sizeof w);
	w.qemu_pid = -1;
	w.qmp_listen = -1;
	w.adopt_listen = -1;
	w.live_listen = w.live_fd = -1;
	for (i = 0; i < WORKER_LIVE_SENDERS; i++)
		w.senders[i].fd = -1;
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
	w.live_timer = ev_timer_new(w.base, 0, 0, worker_live_timer, &w);
	w.switch_timer = ev_timer_new(w.base, 0, 0, worker_switch_timeout, &w);
	if (w.parent == NULL || w.lease_timer == NULL || w.stop_timer == NULL ||
	    w.exit_timer == NULL || w.adopt_timer == NULL ||
	    w.live_timer == NULL ||
	    ev_on_signals(w.base, signals, 3, worker_signal, &w) == -1)
		log_fatal("cannot set up the event loop");

	event_base_dispatch(w.base);

	worker_kill_qemu(&w);
	worker_live_close(&w);
	for (i = 0; i < WORKER_LIVE_SENDERS; i++)
		worker_sender_close(&w.senders[i]);
	worker_live_stop_listening(&w);
	if (w.adopt_accept != NULL)
		event_free(w.adopt_accept);
	if (w.adopt_listen != -1) {
		/* No havend can adopt this worker any more. */
		close(w.adopt_listen);
		unlink(w.adopt_path);
	}
	if (w.qmp != NULL)
		qmp_free(w.qmp);
	if (w.nbd != NULL)
		nbd_server_free(w.nbd);
	for (i = 0; i < w.nvolumes; i++) {
		if (w.volumes[i].vhd != NULL)
			blockdev_close(w.volumes[i].vhd);
		if (w.volumes[i].volume != NULL)
			volume_close(w.volumes[i].volume);
	}
	return w.exiting > 1 ? 1 : 0;
}
