/*
 * havend's side of its haven-workers (DESIGN §2): one worker per VM this
 * host runs. havend opens what a worker needs (logs, the private run
 * directory), forks and execs it with a socketpair on fd 3, sends the VM's
 * spec, and once the worker has its volumes open and its lease claimed,
 * the command (start, restore or receive). The spec travels with the VM's
 * two logs and a tap per NIC (tap.c), all of which only the worker keeps.
 * The worker's reports come back through supervisor_callbacks.report.
 *
 * Workers outlive havend: when havend stops, each keeps its VM running for
 * [vm] adopt_timeout_s and waits on <run_dir>/<uuid>/worker.sock; a new
 * havend connects there (supervisor_adopt_all) and gets a WorkerHello.
 * Workers are keyed by VM UUID, which is also their run directory's name.
 *
 * havend signals a worker only through a pidfd (pidfd_open, Linux 5.3),
 * never by a pid read from a message: its own child's, opened before it
 * can be reaped, or an adopted worker's, opened on the pid the kernel gave
 * for the peer of worker.sock once that process is seen in the VM's
 * cgroup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clusterd.h"
#include "metrics.h"
#include "common.h"
#include "fence.h"
#include "proto.h"
#include "vmcg.h"

#define SUPERVISE_READY_MS	60000	/* spec sent → volumes open */
#define SUPERVISE_KILL_MS	10000	/* SIGTERM → SIGKILL */
#define SUPERVISE_CG_LEFT	64
#define SUPERVISE_LOGCAP_MS	1000	/* VM logs looked at (logcap.c) */
/*
 * A VM's cgroup holds at most its memory plus: QEMU's own (device models,
 * I/O buffers, page tables: 1/16 of the guest's memory and 256 MiB), the
 * worker's (the save pipeline's 8 MiB in flight, NBD), the pages of its
 * logs; under TCG also QEMU 7.2's translation cache, up to 1 GiB. Past it
 * the kernel reclaims, then kills in the cgroup (QEMU: the VM fails).
 */
#define SUPERVISE_MEM_OVERHEAD_MIB	256
#define SUPERVISE_MEM_TCG_MIB		1024
/* A VM's CPU weight while a quick migration streams its state, in times
 * its running weight (supervise_weigh). */
#define SUPERVISE_MOVE_WEIGHT		8

struct vmworker {
	struct supervisor	*sup;
	char			 uuid[37];
	char			 name[64];
	uint64_t		 generation;
	uint32_t		 uid;		/* uid_base + 2 slot; QEMU's +1 */
	pid_t			 pid;		/* 0 until known (adopted) */
	int			 pidfd;		/* what havend signals; -1: none */
	int			 child;		/* ours: reaped by SIGCHLD */
	struct channel		*channel;
	struct ev_timer		*timer;
	Haven__WorkerAction	 action;	/* to send once ready */
	Haven__WorkerAction	 last_command;
	uint64_t		 state_generation;
	int			 ready;		/* volumes open, lease held */
	int			 adopted;	/* came from a WorkerHello */
	pid_t			 peer_pid;	/* adopted: SO_PEERCRED */
	uid_t			 peer_uid;
	int			 killing;
	Haven__VmPhase		 phase;		/* last reported */
	uint32_t		 vcpus;		/* its cgroup's weight */
	int			 weighed_moving; /* SUPERVISE_MOVE_WEIGHT set */
	char			 detail[256];	/* its last sentence */
	/* Live migration: what the worker said (struct vmworker_live). */
	char			 listen[64];	/* INCOMING: the address */
	char			 token[40];	/* INCOMING: the one-time token */
	uint8_t			 tls_key[32];	/* INCOMING: until sent */
	int			 tls_keyed;
	int			 incoming;	/* a target, not switched yet */
	struct vmworker_live	 live;
	struct vmworker		*next;
};

struct supervisor {
	struct event_base		*base;
	const struct config		*config;
	const struct supervisor_callbacks *cb;
	void				*arg;
	struct vmworker			*workers;
	struct ev_timer			*gone_timer;	/* says cb->gone */
	struct ev_timer			*logcap_timer;	/* every second */
	char				 worker_path[512];
	/* Cgroups of gone workers not removed yet (a killed process still
	 * in one until reaped): tried again every second. */
	uint32_t			 cg_left[SUPERVISE_CG_LEFT];
	size_t				 ncg_left;
	struct metrics_transfers	 transfers;	/* saves, restores done */
};

static void	supervise_channel_cb(struct channel *, struct frame *, int,
		    void *);
static void	supervise_gone_cb(void *);

/* Every second: the cgroups of gone workers removed once empty (vmcg.c);
 * each VM's serial console, QEMU and worker logs within [vm] log_max_mb
 * (logcap.c). */
static void
supervise_logcap_cb(void *arg)
{
	static const char *const suffixes[] = { ".serial", ".qemu.log",
	    ".worker.log" };
	struct supervisor	*s = arg;
	struct vmworker		*w;
	uint64_t		 max = (uint64_t)s->config->vm_log_max_mb << 20;
	char			 path[512];
	size_t			 i;

	for (i = 0; i < s->ncg_left; ) {
		/* A uid handed out again is its new worker's: never kill. */
		for (w = s->workers; w != NULL; w = w->next)
			if (w->uid == s->cg_left[i])
				break;
		if (w != NULL || vmcg_release(VMCG_ROOT,
		    s->config->node_name, s->cg_left[i]) == 0)
			s->cg_left[i] = s->cg_left[--s->ncg_left];
		else
			i++;
	}
	for (w = s->workers; w != NULL; w = w->next) {
		for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
			snprintf(path, sizeof path, "%s/%s%s",
			    s->config->vm_log_dir, w->name, suffixes[i]);
			if (logcap_file(path, max) == 1)
				log_vm(LOG_LEVEL_INFO, w->name, "%s over %u MiB: "
				    "the older part is in %s.1", path,
				    s->config->vm_log_max_mb, path);
		}
	}
}

struct supervisor *
supervisor_new(struct event_base *base, const struct config *config,
    const struct supervisor_callbacks *cb, void *arg)
{
	struct supervisor	*s;
	char			 self[512];
	const char		*dir;
	ssize_t			 n;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->base = base;
	s->config = config;
	s->cb = cb;
	s->arg = arg;
	if ((s->gone_timer = ev_timer_new(base, 0, 0, supervise_gone_cb,
	    s)) == NULL || (s->logcap_timer = ev_timer_new(base,
	    SUPERVISE_LOGCAP_MS, 1, supervise_logcap_cb, s)) == NULL) {
		ev_timer_free(s->gone_timer);
		free(s);
		return NULL;
	}
	ev_timer_arm(s->logcap_timer, SUPERVISE_LOGCAP_MS);
	if (*config->vm_worker != '\0') {
		snprintf(s->worker_path, sizeof s->worker_path, "%s",
		    config->vm_worker);
	} else if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) >
	    0) {
		/*
		 * The build tree first (clusterd/ and worker/ are siblings
		 * there, and a haven-worker left in clusterd/ by an older
		 * layout must not shadow the new one), then installed side
		 * by side.
		 */
		self[n] = '\0';
		dir = dirname(self);
		if (snprintf(s->worker_path, sizeof s->worker_path,
		    "%s/../worker/haven-worker", dir) >=
		    (int)sizeof s->worker_path ||
		    access(s->worker_path, X_OK) == -1)
			snprintf(s->worker_path, sizeof s->worker_path,
			    "%s/haven-worker", dir);
	}
	if (access(s->worker_path, X_OK) == -1)
		snprintf(s->worker_path, sizeof s->worker_path,
		    "/usr/libexec/haven/haven-worker");
	log_info("VM workers run %s", s->worker_path);
	(void)mkdir(config->vm_run_dir, 0755);
	(void)mkdir(config->vm_log_dir, 0755);
	return s;
}

struct vmworker *
supervisor_find(struct supervisor *s, const char *uuid)
{
	struct vmworker	*w;

	for (w = s->workers; w != NULL; w = w->next)
		if (strcmp(w->uuid, uuid) == 0)
			return w;
	return NULL;
}

struct vmworker *
supervisor_first(struct supervisor *s)
{
	return s->workers;
}

struct vmworker *
supervisor_next(struct vmworker *w)
{
	return w->next;
}

const char *
vmworker_uuid(const struct vmworker *w)
{
	return w->uuid;
}

uint64_t
vmworker_generation(const struct vmworker *w)
{
	return w->generation;
}

Haven__VmPhase
vmworker_phase(const struct vmworker *w)
{
	return w->phase;
}

int
vmworker_alive(const struct vmworker *w)
{
	return w->channel != NULL;
}

Haven__WorkerAction
vmworker_last_command(const struct vmworker *w)
{
	return w->last_command;
}

pid_t
vmworker_pid(const struct vmworker *w)
{
	return w->pid;
}

/* A signal to the worker through its pidfd; none without one. */
static void
supervise_signal(struct vmworker *w, int signo)
{
	if (w->pidfd != -1 && pidfd_send_signal(w->pidfd, signo, NULL, 0) ==
	    -1 && errno != ESRCH)
		log_vm(LOG_LEVEL_WARN, w->name, "signal %d to its worker: %s",
		    signo, strerror(errno));
}

static void
supervise_close_pidfd(struct vmworker *w)
{
	if (w->pidfd != -1)
		close(w->pidfd);
	w->pidfd = -1;
}

static void
supervise_remove(struct vmworker *w)
{
	struct vmworker	**p;

	/* The worker is gone: so is everything it left in its cgroup. */
	if (vmcg_release(VMCG_ROOT, w->sup->config->node_name, w->uid) == -1 &&
	    w->sup->ncg_left < SUPERVISE_CG_LEFT)
		w->sup->cg_left[w->sup->ncg_left++] = w->uid;

	for (p = &w->sup->workers; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	if (w->channel != NULL)
		channel_free(w->channel);
	ev_timer_free(w->timer);
	supervise_close_pidfd(w);
	explicit_bzero(w->tls_key, sizeof w->tls_key);
	free(w);
}

static void
supervise_gone_cb(void *arg)
{
	struct supervisor	*s = arg;

	if (s->cb->gone != NULL)
		s->cb->gone(s, s->arg);
}

/* A stopped worker that no SIGCHLD will report (not our child) is gone:
 * forget it, and say so from the loop, not from inside the caller. */
static void
supervise_gone(struct vmworker *w)
{
	struct supervisor	*s = w->sup;

	supervise_remove(w);
	ev_timer_arm(s->gone_timer, 0);
}

/* Forget a worker whose end the caller has recorded. */
void
supervisor_forget(struct supervisor *s, const char *uuid)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w != NULL && w->channel == NULL)
		supervise_remove(w);
}

const struct vmworker_live *
vmworker_live(const struct vmworker *w)
{
	return &w->live;
}

int
vmworker_incoming(const struct vmworker *w)
{
	return w->incoming;
}

const char *
vmworker_detail(const struct vmworker *w)
{
	return w->detail;
}

/*
 * The VM's cgroup's CPU weight: its vCPUs' while it runs, and
 * SUPERVISE_MOVE_WEIGHT times that while a quick migration's save or
 * restore streams its state (the guest is stopped; what runs is the
 * stream, whose time is the downtime: docs/design-notes.md).
 */
static void
supervise_weigh(struct vmworker *w, int moving)
{
	moving = moving != 0;
	if (w->vcpus == 0 || (w->weighed_moving == moving && !moving))
		return;
	if (vmcg_weight_cpu(VMCG_ROOT, w->sup->config->node_name, w->uid,
	    moving ? w->vcpus * SUPERVISE_MOVE_WEIGHT : w->vcpus) == -1)
		return;
	if (moving || w->weighed_moving == 1)
		log_vm(LOG_LEVEL_INFO, w->name, moving ? "its cgroup weighs "
		    "%u vCPUs while its state streams" : "its cgroup weighs "
		    "its %u vCPUs again", moving ? w->vcpus *
		    SUPERVISE_MOVE_WEIGHT : w->vcpus);
	w->weighed_moving = moving;
}

static void
supervise_report(struct vmworker *w, Haven__VmPhase phase, int fenced,
    const char *detail)
{
	w->phase = phase;
	if (phase != HAVEN__VM_PHASE__VM_PHASE_SAVING &&
	    phase != HAVEN__VM_PHASE__VM_PHASE_RESTORING)
		supervise_weigh(w, 0);
	snprintf(w->detail, sizeof w->detail, "%s", detail);
	w->sup->cb->report(w->sup, w->uuid, w->name, w->generation, phase,
	    fenced, detail, w->sup->arg);
}

/* The channel is gone: the worker exited (or will: it has no parent). */
static void
supervise_lost(struct vmworker *w, const char *why)
{
	channel_free(w->channel);
	w->channel = NULL;
	if (w->killing) {
		if (!w->child) {	/* reaped already, or not ours */
			/* An adopted worker ends without a SIGCHLD: without
			 * a word its VM waited for the next change. */
			supervise_gone(w);
		}
		return;
	}
	ev_timer_cancel(w->timer);
	if (!tree_phase_final(w->phase)) {
		log_vm(LOG_LEVEL_WARN, w->name,
		    "worker gone without a last word (%s)", why);
		supervise_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, 0,
		    "its worker exited unexpectedly");
	}
}

static void
supervise_timer(void *arg)
{
	struct vmworker	*w = arg;

	if (w->killing) {
		supervise_signal(w, SIGKILL);
		return;
	}
	if (vmworker_adopting(w)) {
		log_vm(LOG_LEVEL_WARN, w->name, "the worker left by the "
		    "previous havend did not say who it is within %d s",
		    SUPERVISE_READY_MS / 1000);
		supervise_lost(w, "no hello");
		return;
	}
	log_vm(LOG_LEVEL_WARN, w->name, "the worker did not open "
	    "its volumes within %d s; stopping it", SUPERVISE_READY_MS / 1000);
	supervisor_kill(w->sup, w->uuid);
	supervise_report(w, HAVEN__VM_PHASE__VM_PHASE_FAILED, 0,
	    "its worker did not open the volumes in time");
}

static int
supervise_send(struct vmworker *w, Haven__WorkerCommand *cmd)
{
	Haven__WorkerAction	action = cmd->action;
	int			rc;

	cmd->state_generation = w->state_generation;
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING &&
	    (cmd->endpoint == NULL || *cmd->endpoint == '\0')) {
		cmd->endpoint = w->listen;
		if (*w->token != '\0')
			cmd->token = w->token;
		if (w->tls_keyed) {
			cmd->tls_key.data = w->tls_key;
			cmd->tls_key.len = sizeof w->tls_key;
		}
	}
	if (w->channel == NULL)
		return -1;
	w->last_command = action;
	/* From now on a RUNNING report means the live migration ended
	 * without a handover. */
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH)
		w->incoming = 0;
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE) {
		w->live.stopped_at_us = 0;
		w->live.remaining = w->live.total = 0;
		w->live.switch_stalled = 0;
		w->phase = HAVEN__VM_PHASE__VM_PHASE_MIGRATING;
	}
	/* From now on a RUNNING report means the save failed. */
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE) {
		w->phase = HAVEN__VM_PHASE__VM_PHASE_SAVING;
		supervise_weigh(w, 1);
	}
	rc = channel_send_message(w->channel, FRAME_WORKER_COMMAND,
	    &cmd->base, NULL, 0);
	/* The key is the worker's now (the frame is encoded and queued). */
	if (cmd->tls_key.data == w->tls_key) {
		explicit_bzero(w->tls_key, sizeof w->tls_key);
		w->tls_keyed = 0;
	}
	return rc;
}

static int
supervise_send_command(struct vmworker *w, Haven__WorkerAction action,
    uint32_t timeout_ms)
{
	Haven__WorkerCommand	cmd = HAVEN__WORKER_COMMAND__INIT;

	cmd.action = action;
	cmd.timeout_ms = timeout_ms;
	return supervise_send(w, &cmd);
}

static void
supervise_event(struct vmworker *w, const Haven__WorkerEvent *ev)
{
	const char	*detail = ev->detail != NULL ? ev->detail : "";
	char		 buf[256];

	if (ev->qemu_pid != 0)
		log_vm(LOG_LEVEL_DEBUG, w->name, "QEMU pid %u", ev->qemu_pid);
	if (ev->error != NULL && ev->error->message != NULL &&
	    *ev->error->message != '\0') {
		/* The worker's message carries its sentence already. */
		if (*detail != '\0' && strstr(ev->error->message, detail) !=
		    NULL)
			snprintf(buf, sizeof buf, "%s", ev->error->message);
		else
			snprintf(buf, sizeof buf, "%s: %s", detail,
			    ev->error->message);
		detail = buf;
	} else if (ev->state_bytes != 0) {
		snprintf(buf, sizeof buf, "%s (%.1f MiB in %llu ms)", detail,
		    (double)ev->state_bytes / (1024 * 1024),
		    (unsigned long long)ev->duration_us / 1000);
		detail = buf;
	}
	/* A save ends in SAVED, a restore in RUNNING with its stream's
	 * bytes, both without an error: counted for the metrics. */
	if (ev->error == NULL && ev->state_bytes != 0) {
		struct metrics_transfers	*t = &w->sup->transfers;

		if (ev->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED) {
			t->saves++;
			t->save_bytes += ev->state_bytes;
			t->save_us += ev->duration_us;
		} else if (ev->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING) {
			t->restores++;
			t->restore_bytes += ev->state_bytes;
			t->restore_us += ev->duration_us;
		}
	}
	/* The first STOPPED is "volumes open, lease held": send the command. */
	if (!w->ready && !w->adopted &&
	    ev->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED && ev->error == NULL) {
		w->ready = 1;
		ev_timer_cancel(w->timer);
		if (supervise_send_command(w, w->action, 0) == -1)
			supervise_lost(w, "sending the command");
		return;
	}
	if (ev->endpoint != NULL && *ev->endpoint != '\0') {
		snprintf(w->live.endpoint, sizeof w->live.endpoint, "%s",
		    ev->endpoint);
		snprintf(w->live.token, sizeof w->live.token, "%s",
		    ev->token != NULL ? ev->token : "");
	}
	if (ev->received)
		w->live.received = 1;
	if (ev->stopped_at_us != 0)
		w->live.stopped_at_us = ev->stopped_at_us;
	if (ev->switch_stalled)
		w->live.switch_stalled = 1;
	if (ev->total_bytes != 0) {
		w->live.remaining = ev->remaining_bytes;
		w->live.total = ev->total_bytes;
	}
	supervise_report(w, ev->phase, ev->fenced, detail);
}

static int
supervise_grant(struct vmworker *w, const Haven__RegisterRequest *req)
{
	Haven__RegisterGrant	g = HAVEN__REGISTER_GRANT__INIT;

	g.volume_uuid = req->volume_uuid;
	g.granted = w->sup->cb->may_register(w->sup, w->uuid, w->sup->arg);
	log_vm(LOG_LEVEL_INFO, w->name, "re-registration on %s %s",
	    req->volume_uuid, g.granted ? "granted" : "refused");
	return channel_send_message(w->channel, FRAME_REGISTER_GRANT, &g.base,
	    NULL, 0);
}

/*
 * The adopted worker's pidfd, on the pid the kernel gave for the peer of
 * worker.sock: only once that process is seen in the VM's cgroup (the
 * worker's uid names it; nothing leaves it) after the pidfd holds it, and
 * still alive then, so that the pid was not reused in between. A host
 * without cgroups gives the VM none: the peer's uid was checked already.
 */
static int
supervise_adopt_pidfd(struct vmworker *w, uint32_t uid)
{
	int	fd, in;

	if (w->peer_pid <= 0 || (fd = pidfd_open(w->peer_pid, 0)) == -1) {
		log_warn("worker at %s/%s: no pidfd for pid %ld: %s",
		    w->sup->config->vm_run_dir, w->uuid, (long)w->peer_pid,
		    strerror(errno));
		return -1;
	}
	in = vmcg_holds(VMCG_ROOT, w->sup->config->node_name, uid,
	    w->peer_pid);
	if (in == 0 || pidfd_send_signal(fd, 0, NULL, 0) == -1) {
		log_warn("worker at %s/%s: pid %ld is not in cgroup "
		    "haven.%s.vm-%u (or is gone); not adopting it",
		    w->sup->config->vm_run_dir, w->uuid, (long)w->peer_pid,
		    w->sup->config->node_name, uid);
		close(fd);
		return -1;
	}
	w->pidfd = fd;
	return 0;
}

static void
supervise_hello(struct vmworker *w, const Haven__WorkerHello *h)
{
	if (h->spec == NULL || strcmp(h->spec->uuid, w->uuid) != 0) {
		log_warn("worker at %s/%s answered for another VM; leaving it",
		    w->sup->config->vm_run_dir, w->uuid);
		supervise_lost(w, "wrong hello");
		return;
	}
	/* What it says of itself must be what the kernel says of the peer:
	 * the pid havend will signal is the process at the other end (or
	 * none: 0), and it runs under a worker uid, never root or another
	 * account. */
	if ((h->worker_pid != 0 && (pid_t)h->worker_pid != w->peer_pid) ||
	    (uid_t)h->spec->uid != w->peer_uid ||
	    w->peer_uid < w->sup->config->vm_uid_base ||
	    (w->peer_uid - w->sup->config->vm_uid_base) % 2 != 0) {
		log_warn("worker at %s/%s says it is pid %u uid %u, but the "
		    "peer is pid %ld uid %lu; not adopting it",
		    w->sup->config->vm_run_dir, w->uuid, h->worker_pid,
		    h->spec->uid, (long)w->peer_pid,
		    (unsigned long)w->peer_uid);
		supervise_lost(w, "a hello that does not match its peer");
		return;
	}
	/* Its uid, and so its cgroup (killed when it goes), only once it is
	 * adopted. */
	if (h->worker_pid != 0 && supervise_adopt_pidfd(w, h->spec->uid) ==
	    -1) {
		supervise_lost(w, "a peer outside the VM's cgroup");
		return;
	}
	w->uid = h->spec->uid;
	snprintf(w->name, sizeof w->name, "%s", h->spec->name);
	w->generation = h->generation;
	w->pid = (pid_t)h->worker_pid;
	w->phase = h->phase;
	w->vcpus = h->spec->vcpus != 0 ? h->spec->vcpus : 1;
	w->weighed_moving = -1;	/* a havend gone mid-move may have left it */
	supervise_weigh(w, h->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING ||
	    h->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING);
	/* A move under way goes on where it stood (local_move.c). */
	w->last_command = h->last_action;
	w->incoming = h->last_action ==
	    HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING;
	w->live.received = h->received;
	w->live.stopped_at_us = h->stopped_at_us;
	w->ready = 1;
	ev_timer_cancel(w->timer);
	log_vm(LOG_LEVEL_INFO, w->name, "adopted its worker (pid %u, "
	    "QEMU pid %u, %s, generation %llu)", h->worker_pid, h->qemu_pid,
	    tree_phase_name(h->phase), (unsigned long long)h->generation);
	w->sup->cb->adopted(w->sup, w->uuid, w->name, w->generation, w->phase,
	    w->sup->arg);
}

static void
supervise_channel_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct vmworker		*w = arg;
	ProtobufCMessage	*m;

	if (f == NULL) {
		supervise_lost(w, frame_strerror(err));
		return;
	}
	if (f->type == FRAME_ERROR) {
		Haven__Error	*e = (Haven__Error *)message_decode(f);

		log_vm(LOG_LEVEL_WARN, w->name, "worker: %s",
		    e != NULL ? e->message : "an error that does not decode");
		if (e != NULL)
			message_free(&e->base);
		return;
	}
	if ((m = message_decode(f)) == NULL) {
		log_vm(LOG_LEVEL_WARN, w->name, "worker sent a frame "
		    "of type %u that does not decode", f->type);
		return;
	}
	switch (f->type) {
	case FRAME_WORKER_EVENT:
		supervise_event(w, (Haven__WorkerEvent *)m);
		break;
	case FRAME_REGISTER_REQUEST:
		if (supervise_grant(w, (Haven__RegisterRequest *)m) == -1)
			log_warn("answering %s's worker: %s", w->name,
			    strerror(errno));
		break;
	case FRAME_WORKER_HELLO:
		supervise_hello(w, (Haven__WorkerHello *)m);
		break;
	default:
		log_vm(LOG_LEVEL_WARN, w->name, "worker sent "
		    "unexpected frame type %u", f->type);
		break;
	}
	message_free(m);
}

static int
supervise_open_log(const char *dir, const char *name, const char *suffix,
    uid_t uid, gid_t gid)
{
	char	path[512];
	int	fd;

	snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1)
		log_warn("%s: %s", path, strerror(errno));
	(void)uid;
	(void)gid;
	return fd;
}

/* The lowest uid_base + 2n no worker of ours uses; its QEMU gets the uid
 * after it (a pair per VM, so a QEMU uid is never a worker's). */
static uint32_t
supervise_uid(struct supervisor *s)
{
	struct vmworker	*w;
	uint32_t	 uid = s->config->vm_uid_base;
	size_t		 i;

again:
	for (w = s->workers; w != NULL; w = w->next) {
		if (w->uid == uid) {
			uid += 2;
			goto again;
		}
	}
	/* Not while a process is in its cgroup: one of a VM gone, killed
	 * and not reaped yet (the list below removes it), or of a worker
	 * left by the previous havend that has not said hello yet (its uid
	 * is not known until then). Either would share the new VM's uid;
	 * nothing is killed here. */
	if (!vmcg_empty(VMCG_ROOT, s->config->node_name, uid)) {
		uid += 2;
		goto again;
	}
	/* Its cgroup is the new worker's now: off the list to remove. */
	for (i = 0; i < s->ncg_left; ) {
		if (s->cg_left[i] == uid)
			s->cg_left[i] = s->cg_left[--s->ncg_left];
		else
			i++;
	}
	return uid;
}

/* What a VM's cgroup may hold (SUPERVISE_MEM_*), in bytes. */
static uint64_t
supervise_memory_max(const Haven__VmSpec *spec)
{
	uint64_t	mib = spec->memory_mib + spec->memory_mib / 16 +
			    SUPERVISE_MEM_OVERHEAD_MIB;

	if (spec->accel != HAVEN__ACCEL__ACCEL_KVM)
		mib += SUPERVISE_MEM_TCG_MIB;
	return mib << 20;
}

static void
supervise_close_fds(int *fds, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

/* In the child: the channel on fd 3, the worker's log on 1 and 2. */
static void __attribute__((noreturn))
supervise_exec(const struct supervisor *s, int channel, int log, uint32_t uid)
{
	/* Its own session: a signal to havend's group spares it. */
	(void)setsid();
	/* Its cgroup, before it runs anything: QEMU is born in it. */
	(void)vmcg_join(VMCG_ROOT, s->config->node_name, uid);
	if (dup2(channel, 3) == -1 || dup2(log, 1) == -1 || dup2(log, 2) == -1)
		_exit(127);
	/* Nothing else of havend's: a corosync IPC socket held open here
	 * would hide havend's death from the cluster. */
	(void)close_range(4, ~0U, 0);
	execl(s->worker_path, "haven-worker", (char *)NULL);
	dprintf(2, "haven-worker: exec %s: %s\n", s->worker_path,
	    strerror(errno));
	_exit(127);
}

int
supervisor_start(struct supervisor *s, Haven__VmSpec *spec,
    Haven__WorkerAction action, uint64_t state_generation,
    const char *listen, char *err, size_t errlen)
{
	struct vmworker	*w;
	char		 run_dir[128], why[256];
	int		 sv[2] = { -1, -1 }, fds[2 + NIC_MAX], wlog = -1;
	size_t		 i, nfds = 2;
	pid_t		 pid;

	for (i = 0; i < 2 + NIC_MAX; i++)
		fds[i] = -1;
	if (spec->n_nics > NIC_MAX) {
		snprintf(err, errlen, "%zu NICs; at most %d", spec->n_nics,
		    NIC_MAX);
		return -1;
	}

	if (supervisor_find(s, spec->uuid) != NULL) {
		snprintf(err, errlen, "a worker for this VM exists already");
		return -1;
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->sup = s;
	w->pidfd = -1;
	snprintf(w->uuid, sizeof w->uuid, "%s", spec->uuid);
	snprintf(w->name, sizeof w->name, "%s", spec->name);
	w->generation = spec->generation;
	w->action = action;
	w->state_generation = state_generation;
	w->uid = supervise_uid(s);
	w->phase = action == HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE ?
	    HAVEN__VM_PHASE__VM_PHASE_RESTORING :
	    action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING ?
	    HAVEN__VM_PHASE__VM_PHASE_MIGRATING :
	    HAVEN__VM_PHASE__VM_PHASE_STARTING;
	if (listen != NULL)
		snprintf(w->listen, sizeof w->listen, "%s", listen);
	w->incoming = action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING;
	spec->uid = spec->gid = w->uid;
	spec->qemu_uid = spec->qemu_gid = w->uid + 1;
	if (vmcg_prepare(VMCG_ROOT, s->config->node_name, w->uid, why,
	    sizeof why) == -1)
		log_vm(LOG_LEVEL_WARN, w->name, "no cgroup of its own (%s): "
		    "a process its QEMU leaves behind outlives the VM", why);
	else if (vmcg_limit_memory(VMCG_ROOT, s->config->node_name, w->uid,
	    supervise_memory_max(spec)) == -1)
		log_vm(LOG_LEVEL_WARN, w->name, "its cgroup's memory is not "
		    "bounded: %s", strerror(errno));
	else if (vmcg_weight_cpu(VMCG_ROOT, s->config->node_name, w->uid,
	    spec->vcpus) == -1)
		log_vm(LOG_LEVEL_INFO, w->name, "its cgroup has no CPU weight "
		    "(%s): it shares the host's CPUs like any process",
		    strerror(errno));
	else {
		w->vcpus = spec->vcpus != 0 ? spec->vcpus : 1;
		/* A restore streams from the start. */
		supervise_weigh(w, action ==
		    HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE);
	}

	/* The run directory is the worker's: its uid, QEMU's group, 02750.
	 * QEMU reads in it (its key file) and connects to the two sockets
	 * the worker makes group-writable (QMP, NBD), but can neither
	 * create, remove nor replace anything there (worker.sock). setgid:
	 * what the worker creates there is in QEMU's group. */
	snprintf(run_dir, sizeof run_dir, "%s/%s", s->config->vm_run_dir,
	    spec->uuid);
	if ((mkdir(run_dir, 0700) == -1 && errno != EEXIST) ||
	    chown(run_dir, w->uid, spec->qemu_gid) == -1 ||
	    chmod(run_dir, 02750) == -1) {
		snprintf(err, errlen, "%s: %s", run_dir, strerror(errno));
		goto fail;
	}
	spec->run_dir = run_dir;
	if ((fds[0] = supervise_open_log(s->config->vm_log_dir, spec->name,
	    ".serial", w->uid, w->uid)) == -1 ||
	    (fds[1] = supervise_open_log(s->config->vm_log_dir, spec->name,
	    ".qemu.log", w->uid, w->uid)) == -1 ||
	    (wlog = supervise_open_log(s->config->vm_log_dir, spec->name,
	    ".worker.log", w->uid, w->uid)) == -1) {
		snprintf(err, errlen, "cannot open the VM's logs in %s",
		    s->config->vm_log_dir);
		goto fail;
	}
	/* A tap per NIC, in NIC order after the logs: a live migration's
	 * target has them before the stream arrives, like any start. */
	for (i = 0; i < spec->n_nics; i++, nfds++) {
		if ((fds[nfds] = tap_open(spec->nics[i], spec->uuid, i, why,
		    sizeof why)) == -1) {
			snprintf(err, errlen, "%s", why);
			goto fail;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		supervise_exec(s, sv[1], wlog, w->uid);
	/* Not reaped before the loop runs: the pid is still our child's. */
	if ((w->pidfd = pidfd_open(pid, 0)) == -1)
		log_vm(LOG_LEVEL_WARN, w->name, "pidfd_open: %s (Linux 5.3 or "
		    "later): havend cannot signal its worker", strerror(errno));
	close(sv[1]);
	close(wlog);
	w->pid = pid;
	w->child = 1;
	w->channel = channel_new(s->base, sv[0], FRAME_DEFAULT_MAX,
	    supervise_channel_cb, w);
	w->timer = ev_timer_new(s->base, 0, 0, supervise_timer, w);
	if (w->channel == NULL || w->timer == NULL ||
	    channel_send_message(w->channel, FRAME_VM_SPEC, &spec->base, fds,
	    nfds) == -1) {
		snprintf(err, errlen, "sending the spec: %s", strerror(errno));
		supervise_signal(w, SIGKILL);
		if (w->channel == NULL)
			close(sv[0]);
		supervise_close_fds(fds, nfds);
		w->next = s->workers;
		s->workers = w;
		supervise_remove(w);
		return -1;
	}
	/* The worker holds them now; our copies would keep the taps. */
	supervise_close_fds(fds, nfds);
	ev_timer_arm(w->timer, SUPERVISE_READY_MS);
	w->next = s->workers;
	s->workers = w;
	log_vm(LOG_LEVEL_INFO, w->name, "worker pid %ld (uid %u, QEMU's "
	    "%u) to %s generation %llu", (long)pid, w->uid, w->uid + 1,
	    action == HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE ? "restore" :
	    action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING ?
	    "receive a live migration" : "start",
	    (unsigned long long)w->generation);
	return 0;
fail:
	supervise_close_fds(fds, nfds);
	if (wlog != -1)
		close(wlog);
	if (sv[0] != -1) {
		close(sv[0]);
		close(sv[1]);
	}
	free(w);
	return -1;
}

int
supervisor_command(struct supervisor *s, const char *uuid,
    Haven__WorkerAction action, uint32_t timeout_ms)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w == NULL || w->channel == NULL || !w->ready) {
		errno = ENOENT;
		return -1;
	}
	/* A save's progress is its own, not a live attempt's before it. */
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE)
		w->live.remaining = w->live.total = 0;
	return supervise_send_command(w, action, timeout_ms);
}

int
supervisor_send(struct supervisor *s, const char *uuid,
    Haven__WorkerCommand *cmd)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w == NULL || w->channel == NULL || !w->ready) {
		errno = ENOENT;
		return -1;
	}
	return supervise_send(w, cmd);
}

int
supervisor_console(struct supervisor *s, const char *uuid,
    const struct Haven__ConsoleAttach *m, int fd)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w == NULL || w->channel == NULL || !w->ready) {
		errno = ENOENT;
		return -1;
	}
	return channel_send_message(w->channel, FRAME_WORKER_CONSOLE,
	    &m->base, &fd, 1);
}

/* A live migration's target: the token its worker is to accept and the
 * move's TLS key (NULL: in clear), sent with INCOMING once its volumes are
 * open and forgotten then. */
int
supervisor_live_key(struct supervisor *s, const char *uuid, const char *token,
    const uint8_t *key, size_t keylen)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w == NULL || w->action !=
	    HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING ||
	    strlen(token) >= sizeof w->token ||
	    (key != NULL && keylen != sizeof w->tls_key)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(w->token, sizeof w->token, "%s", token);
	w->tls_keyed = key != NULL;
	if (key != NULL)
		memcpy(w->tls_key, key, sizeof w->tls_key);
	return 0;
}

/* Stop a worker whatever it does: SIGTERM (it kills its QEMU on the way
 * out), SIGKILL if it lingers. Its report is not wanted any more. */
void
supervisor_kill(struct supervisor *s, const char *uuid)
{
	struct vmworker	*w = supervisor_find(s, uuid);

	if (w == NULL || w->killing)
		return;
	w->killing = 1;
	log_vm(LOG_LEVEL_INFO, w->name, "stopping its worker (pid "
	    "%ld)", (long)w->pid);
	(void)supervise_send_command(w,
	    HAVEN__WORKER_ACTION__WORKER_ACTION_KILL, 0);
	supervise_signal(w, SIGTERM);
	ev_timer_arm(w->timer, SUPERVISE_KILL_MS);
	if (!w->child && w->channel == NULL)
		supervise_gone(w);
}

/* SIGCHLD: reap our workers; a killed one is forgotten. */
void
supervisor_reap(struct supervisor *s)
{
	struct vmworker	*w, *next;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (fence_agent_reaped(pid, status))
			continue;	/* a fence agent's: its runner's */
		for (w = s->workers; w != NULL; w = next) {
			next = w->next;
			if (w->pid != pid)
				continue;
			w->pid = 0;
			w->child = 0;
			supervise_close_pidfd(w);
			if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
				log_vm(LOG_LEVEL_INFO, w->name,
				    "worker exited (%s %d)", WIFSIGNALED(status)
				    ? "signal" : "status", WIFSIGNALED(status) ?
				    WTERMSIG(status) : WEXITSTATUS(status));
			if (w->channel != NULL)
				continue;	/* EOF still to come */
			if (w->killing)
				supervise_remove(w);
		}
	}
}

/* A run directory whose worker is gone: its sockets, then itself. */
static void
supervise_clean_run_dir(struct supervisor *s, const char *uuid)
{
	static const char *const socks[] = { "nbd.sock", "qmp.sock",
	    "worker.sock", "keys.psk", "dh-params.pem" };
	char	path[256];
	size_t	i;

	for (i = 0; i < sizeof socks / sizeof socks[0]; i++) {
		snprintf(path, sizeof path, "%s/%.36s/%s",
		    s->config->vm_run_dir, uuid, socks[i]);
		(void)unlink(path);
	}
	snprintf(path, sizeof path, "%s/%.36s", s->config->vm_run_dir, uuid);
	(void)rmdir(path);
}

/* Reattach to the workers a previous havend left running: every
 * <run_dir>/<uuid>/worker.sock that answers. */
size_t
supervisor_adopt_all(struct supervisor *s)
{
	struct sockaddr_un	 sun;
	struct dirent		*de;
	struct vmworker		*w;
	DIR			*dir;
	size_t			 n = 0;
	struct ucred		 cred;
	socklen_t		 cl;
	int			 fd;

	if ((dir = opendir(s->config->vm_run_dir)) == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		if (strlen(de->d_name) != 36 || supervisor_find(s, de->d_name))
			continue;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path,
		    "%s/%s/worker.sock", s->config->vm_run_dir, de->d_name) >=
		    sizeof sun.sun_path)
			continue;
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			continue;
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
			/* Nobody there: a VM that ended while we were away
			 * (a worker killed outright removes nothing). */
			close(fd);
			supervise_clean_run_dir(s, de->d_name);
			continue;
		}
		if ((w = calloc(1, sizeof *w)) == NULL) {
			close(fd);
			break;
		}
		w->sup = s;
		w->pidfd = -1;
		memcpy(w->uuid, de->d_name, 36);
		snprintf(w->name, sizeof w->name, "%.36s", de->d_name);
		w->adopted = 1;
		cl = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			w->peer_pid = cred.pid;
			w->peer_uid = cred.uid;
		}
		w->phase = HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED;
		w->uid = 0;
		w->timer = ev_timer_new(s->base, 0, 0, supervise_timer, w);
		if ((w->channel = channel_new(s->base, fd, FRAME_DEFAULT_MAX,
		    supervise_channel_cb, w)) == NULL || w->timer == NULL) {
			close(fd);
			ev_timer_free(w->timer);
			free(w);
			continue;
		}
		/* Judged only after its hello (vmworker_adopting), which it
		 * sends at once: a worker that stays silent is let go. */
		ev_timer_arm(w->timer, SUPERVISE_READY_MS);
		w->next = s->workers;
		s->workers = w;
		n++;
	}
	closedir(dir);
	return n;
}

/* Adopted from a previous havend and not yet heard from: its generation,
 * phase and pid are unknown until its WorkerHello. */
int
vmworker_adopting(const struct vmworker *w)
{
	return w->adopted && w->channel != NULL && !w->ready;
}

/* Whether every adopted worker has said hello. */
int
supervisor_settled(struct supervisor *s)
{
	struct vmworker	*w;

	for (w = s->workers; w != NULL; w = w->next)
		if (vmworker_adopting(w))
			return 0;
	return 1;
}

/* havend stops: hang up on every worker (they wait to be adopted). */
const struct metrics_transfers *
supervisor_transfers(const struct supervisor *s)
{
	return &s->transfers;
}

void
supervisor_free(struct supervisor *s)
{
	while (s != NULL && s->workers != NULL) {
		struct vmworker	*w = s->workers;

		s->workers = w->next;
		if (w->channel != NULL)
			channel_free(w->channel);
		ev_timer_free(w->timer);
		supervise_close_pidfd(w);
		free(w);
	}
	if (s != NULL) {
		ev_timer_free(s->gone_timer);
		ev_timer_free(s->logcap_timer);
	}
	free(s);
}
