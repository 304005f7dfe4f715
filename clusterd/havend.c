/*
 * havend: Haven's daemon, one per host (DESIGN §2, §5). Today it reads the
 * host's configuration, joins the cluster through corosync (CPG group and
 * votequorum; no heartbeat of its own) and answers havenctl on the control
 * socket with the membership and quorum it sees. The replicated state, the
 * coordinator and worker supervision build on this loop.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"
#include "storage.h"
#include "fence.h"
#include "timeline.h"

#define HAVEND_MAX_MEMBERS	64
#define HAVEND_MAX_PENDING	128
#define HAVEND_MAX_LOCAL	256	/* this host's proposals in flight */
/* A live migration step in the table of proposals: beside the phases. */
#define HAVEND_LIVE_STEP(s)	(100 + (int)(s))
#define HAVEND_STOP_MS		30000	/* ACPI power-down, then quit */
#define HAVEND_CONSOLE_MAX	65536
/* How long a host may be up without its havend before it counts as lost:
 * longer than a restart of havend, shorter than [vm] adopt_timeout_s. */
#define HAVEND_DAEMON_GRACE_MS	30000
/* A host whose every fence level failed is tried again after this. */
#define HAVEND_FENCE_RETRY_MS	15000
/* A clean shutdown with [vm] shutdown = migrate waits this long at most
 * for the host's VMs to leave. */
#define HAVEND_SHUTDOWN_DRAIN_MS	300000

/* A request waiting for its change to come back applied. */
struct havend_pending {
	uint64_t	request_id;
	uint64_t	client_id;	/* 0: the coordinator's own decision */
};

struct havend {
	struct event_base	*base;
	struct config		 config;
	struct membership	*membership;
	struct control_server	*control;
	struct replica		*replica;
	uint32_t		 node_id;
	int			 quorate;
	uint32_t		 members[HAVEND_MAX_MEMBERS];
	size_t			 nmembers;
	struct havend_pending	 pending[HAVEND_MAX_PENDING];
	size_t			 npending;
	size_t			 decisions_in_flight;
	struct supervisor	*supervisor;
	/* Transitions this host proposed for its VMs, not yet applied. */
	struct {
		char		 uuid[37];
		uint64_t	 generation;
		Haven__VmPhase	 phase;
	}			 local[HAVEND_MAX_LOCAL];
	size_t			 nlocal;
	int			 synced;	/* a sync has completed */
	/* Nodes up in corosync whose havend is not in the group. */
	struct {
		uint32_t	 node_id;
		uint64_t	 since_ms;
	}			 absent[HAVEND_MAX_MEMBERS];
	size_t			 nabsent;
	struct ev_timer		*grace_timer;
	struct fencer		*fencer;
	char			 initiator[224];
	/* When fencing of a host last failed here (retry after a while). */
	struct {
		uint32_t	 node_id;
		uint64_t	 at_ms;
	}			 fence_failed[HAVEND_MAX_MEMBERS];
	size_t			 nfence_failed;
	struct ev_timer		*fence_retry_timer;
	struct watchdog		*watchdog;
	struct ev_timer		*watchdog_timer;
	int			 corosync_up;
	int			 exit_code;
	int			 draining;	/* SIGTERM with shutdown = migrate */
	uint64_t		 drain_started_ms;
	struct ev_timer		*drain_timer;
};

static void	havend_reconcile(struct havend *);
static void	havend_local(struct havend *);
static void	havend_isolate(struct havend *);

static void
havend_connected(struct membership *m, uint32_t node_id, void *arg)
{
	struct havend	*h = arg;

	h->node_id = node_id;
	h->corosync_up = 1;
	log_info("joined the cluster as node %u", node_id);
}

static void
havend_disconnected(struct membership *m, void *arg)
{
	struct havend	*h = arg;

	if (h->quorate)
		havend_isolate(h);
	h->quorate = 0;
	h->nmembers = 0;
	h->corosync_up = 0;
	log_warn("lost corosync; not quorate until it is back (the watchdog "
	    "is not petted meanwhile)");
}

static void
havend_changed(struct membership *m, const uint32_t *members, size_t n,
    const uint32_t *joined, size_t njoined, const uint32_t *left,
    size_t nleft, void *arg)
{
	size_t	i;

	struct havend	*h = arg;

	for (i = 0; i < njoined; i++)
		log_info("node %u joined", joined[i]);
	for (i = 0; i < nleft; i++)
		log_info("node %u left", left[i]);
	/* Decisions of the old configuration may never come back. */
	h->decisions_in_flight = 0;
	h->nlocal = 0;
	replica_on_changed(h->replica, members, n);
}

static int
havend_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Quorum lost: each VM of this host gets its isolation response at once,
 * well within FENCE_ISOLATION_BOUND_MS (timeline.h): the quorate side will
 * fence this host and start the VMs after FENCE_TAKEOVER_DELAY_MS.
 * stop (the default): the worker is told to die, and kills QEMU on its way;
 * save: the worker saves the VM's state to its volume and quits (a fence
 * that lands first makes that save incomplete, never wrong);
 * leave-running: nothing (the storage fence will stop its writes).
 */
static void
havend_isolate(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	struct vmworker		*w, *next;
	size_t			 i;

	for (w = supervisor_first(h->supervisor); w != NULL; w = next) {
		const Haven__Vm	*vm = NULL;

		next = supervisor_next(w);
		if (!vmworker_alive(w))
			continue;
		for (i = 0; i < st->cs->n_vms; i++)
			if (strcmp(st->cs->vms[i]->config->uuid,
			    vmworker_uuid(w)) == 0)
				vm = st->cs->vms[i];
		switch (vm != NULL ? vm->config->isolation_response :
		    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP) {
		case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING:
			log_warn("isolated: leaving VM %s running (its isolation "
			    "response)", vm->config->name);
			break;
		case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE:
			log_warn("isolated: saving VM %s to its volume",
			    vm->config->name);
			if (supervisor_command(h->supervisor, vmworker_uuid(w),
			    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE, 0) == 0)
				break;
			/* not in a state to save: stop it */
			/* FALLTHROUGH */
		default:
			log_warn("isolated: stopping VM %s now",
			    vm != NULL ? vm->config->name : vmworker_uuid(w));
			supervisor_kill(h->supervisor, vmworker_uuid(w));
			break;
		}
	}
}

static void
havend_quorum(struct membership *m, int quorate, const uint32_t *members,
    size_t n, void *arg)
{
	struct havend	*h = arg;

	if (quorate != h->quorate)
		log_info("%s with %zu members", quorate ? "quorate" :
		    "NOT quorate", n);
	if (h->quorate && !quorate)
		havend_isolate(h);
	h->quorate = quorate;
	h->nmembers = n < HAVEND_MAX_MEMBERS ? n : HAVEND_MAX_MEMBERS;
	memcpy(h->members, members, h->nmembers * sizeof *members);
	qsort(h->members, h->nmembers, sizeof *h->members, havend_cmp_u32);
	/* The CPG change may have come first, with the old node list: a
	 * host that is gone from corosync too is lost now, not after the
	 * restart grace. */
	havend_reconcile(h);
}

static void
havend_message(struct membership *m, uint32_t node_id, uint32_t pid,
    const void *data, size_t len, void *arg)
{
	struct havend	*h = arg;

	replica_on_message(h->replica, node_id, data, len);
}

static const struct membership_callbacks havend_membership_callbacks = {
	.connected = havend_connected,
	.disconnected = havend_disconnected,
	.changed = havend_changed,
	.quorum = havend_quorum,
	.message = havend_message,
};

static void
havend_status(struct control_client *c, ProtobufCMessage *req, void *arg)
{
	struct havend		*h = arg;
	Haven__StatusReply	 r = HAVEN__STATUS_REPLY__INIT;

	r.node_name = h->config.node_name;
	r.node_id = h->node_id;
	r.quorate = h->quorate;
	r.members = h->members;
	r.n_members = h->nmembers;
	r.version = HAVEN_VERSION;
	control_reply(c, FRAME_STATUS_REPLY, &r.base);
}

static int
havend_error_code(int result)
{
	switch (result) {
	case CLUSTER_E_NOT_QUORATE:
		return HAVEN__ERROR_CODE__ERROR_CODE_NOT_QUORATE;
	case CLUSTER_E_NOT_FOUND:
		return HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND;
	case CLUSTER_E_EXISTS:
	case CLUSTER_E_CONFLICT:
	case CLUSTER_E_STALE:
		return HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT;
	case CLUSTER_E_INVALID:
		return HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
	default:
		return HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL;
	}
}

/* Send a change for a client: it is answered once applied everywhere. */
static void
havend_propose_for(struct havend *h, struct control_client *c,
    Haven__Change *change)
{
	char		err[256];
	uint64_t	id;

	if (h->npending == HAVEND_MAX_PENDING) {
		message_free(&change->base);
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "too many requests in flight; try again");
		return;
	}
	if (replica_propose(h->replica, change, &id, err, sizeof err) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_QUORATE,
		    "%s", err);
		return;
	}
	h->pending[h->npending].request_id = id;
	h->pending[h->npending].client_id = c ? control_client_id(c) : 0;
	h->npending++;
}

static Haven__Change *
havend_change_new(void)
{
	Haven__Change	*c = calloc(1, sizeof *c);

	if (c == NULL)
		abort();
	haven__change__init(c);
	return c;
}

/* A deep copy of a request's part, for a change that outlives the
 * request (pack and unpack: the copy is freed like any decoded message). */
static ProtobufCMessage *
havend_copy(const ProtobufCMessage *m)
{
	ProtobufCMessage	*copy;
	uint8_t			*buf;
	size_t			 len;

	if ((buf = message_pack(m, &len)) == NULL)
		abort();
	copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	if (copy == NULL)
		abort();
	return copy;
}

/* A fresh RFC 4122 version 4 UUID for a new VM. */
static void
havend_uuid(char *out)
{
	uint8_t	u[16];
	FILE	*fp = fopen("/dev/urandom", "r");

	if (fp == NULL || fread(u, 1, sizeof u, fp) != sizeof u)
		memset(u, 0, sizeof u);
	if (fp != NULL)
		fclose(fp);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* vm create: the change carries its own copy of the configuration. */
static void
havend_vm_create(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__VmCreateRequest	*req = (Haven__VmCreateRequest *)m;
	Haven__Change		*change;
	Haven__VmCreate		*vc;
	char			 uuid[37], *given;

	if (req->config == NULL || *req->config->name == '\0') {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "vm create needs a name and a configuration");
		return;
	}
	/* A new VM gets a UUID here, once, so every member stores the same. */
	given = req->config->uuid;
	if (*given == '\0') {
		havend_uuid(uuid);
		req->config->uuid = uuid;
	}
	change = havend_change_new();
	vc = calloc(1, sizeof *vc);
	haven__vm_create__init(vc);
	vc->config = (Haven__VmConfig *)havend_copy(&req->config->base);
	req->config->uuid = given;	/* the request frees what it had */
	change->kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	change->vm_create = vc;
	havend_propose_for(h, c, change);
}

static void
havend_vm_desired(struct control_client *c, ProtobufCMessage *m,
    struct havend *h, Haven__DesiredState desired)
{
	Haven__VmNameRequest	*req = (Haven__VmNameRequest *)m;
	Haven__Change		*change = havend_change_new();
	Haven__VmSetDesired	*d = calloc(1, sizeof *d);

	haven__vm_set_desired__init(d);
	d->name = strdup(req->name);
	d->desired = desired;
	change->kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
	change->vm_set_desired = d;
	havend_propose_for(h, c, change);
}

static void
havend_vm_start(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	havend_vm_desired(c, m, arg, HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING);
}

static void
havend_vm_stop(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	havend_vm_desired(c, m, arg, HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED);
}

static void
havend_vm_delete(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	Haven__VmNameRequest	*req = (Haven__VmNameRequest *)m;
	Haven__Change		*change = havend_change_new();
	Haven__VmDelete		*d = calloc(1, sizeof *d);

	haven__vm_delete__init(d);
	d->name = strdup(req->name);
	change->kind_case = HAVEN__CHANGE__KIND_VM_DELETE;
	change->vm_delete = d;
	havend_propose_for(arg, c, change);
}

/* VMs for a client: never a live migration's token (a viewer could use
 * it to feed the target a guest of its own making). */
static void
havend_vm_reply(struct control_client *c, Haven__Vm **vms, size_t n)
{
	Haven__VmListReply	 r = HAVEN__VM_LIST_REPLY__INIT;
	char			**tokens;
	size_t			 i;

	if ((tokens = calloc(n + 1, sizeof *tokens)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (vms[i]->runtime == NULL)
			continue;
		tokens[i] = vms[i]->runtime->live_token;
		vms[i]->runtime->live_token = (char *)protobuf_c_empty_string;
	}
	r.vms = vms;
	r.n_vms = n;
	control_reply(c, FRAME_VM_LIST_REPLY, &r.base);
	for (i = 0; i < n; i++)
		if (vms[i]->runtime != NULL)
			vms[i]->runtime->live_token = tokens[i];
	free(tokens);
}

static void
havend_vm_list(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);

	havend_vm_reply(c, st->cs->vms, st->cs->n_vms);
}

static void
havend_vm_show(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__VmNameRequest	*req = (Haven__VmNameRequest *)m;
	Haven__Vm		*vm = cluster_vm(replica_state(h->replica),
				    req->name);

	if (vm == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no VM named '%s'; 'havenctl vm list' shows them", req->name);
		return;
	}
	havend_vm_reply(c, &vm, 1);
}

static void
havend_node_list(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__NodeListReply	 r = HAVEN__NODE_LIST_REPLY__INIT;

	r.hosts = st->cs->hosts;
	r.n_hosts = st->cs->n_hosts;
	r.members = h->members;
	r.n_members = h->nmembers;
	r.quorate = replica_is_quorate(h->replica);
	control_reply(c, FRAME_NODE_LIST_REPLY, &r.base);
}

static void
havend_role_list(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__RoleListReply	 r = HAVEN__ROLE_LIST_REPLY__INIT;

	r.roles = st->cs->roles;
	r.n_roles = st->cs->n_roles;
	control_reply(c, FRAME_ROLE_LIST_REPLY, &r.base);
}

static void
havend_events(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__EventsRequest	*req = (Haven__EventsRequest *)m;
	const struct cluster	*st = replica_state(h->replica);
	Haven__EventsReply	 r = HAVEN__EVENTS_REPLY__INIT;
	size_t			 i = 0;

	/* The log is in seq order: skip what the caller has seen. */
	while (i < st->cs->n_events && st->cs->events[i]->seq <= req->after_seq)
		i++;
	r.events = st->cs->events + i;
	r.n_events = st->cs->n_events - i;
	control_reply(c, FRAME_EVENTS_REPLY, &r.base);
}

/*
 * Requests that are the change itself (pool add, volume add, cluster set,
 * vm migrate, node drain/resume, role grant/revoke): the frame carries the Change's own part,
 * so it is proposed as a copy; cluster_apply checks it like any change.
 */
static void
havend_propose_request(struct havend *h, struct control_client *c,
    ProtobufCMessage *m, Haven__Change__KindCase kind)
{
	const ProtobufCFieldDescriptor	*f;
	Haven__Change			*change;

	f = protobuf_c_message_descriptor_get_field(&haven__change__descriptor,
	    (unsigned)kind);
	if (f == NULL || f->descriptor != m->descriptor)
		abort();	/* a route that names the wrong kind */
	change = havend_change_new();
	*(ProtobufCMessage **)((char *)change + f->offset) = havend_copy(m);
	change->kind_case = kind;
	havend_propose_for(h, c, change);
}

#define HAVEND_CHANGE_ROUTE(fn, kind)					\
static void								\
fn(struct control_client *c, ProtobufCMessage *m, void *arg)		\
{									\
	havend_propose_request(arg, c, m, HAVEN__CHANGE__KIND_##kind);	\
}
HAVEND_CHANGE_ROUTE(havend_pool_add, POOL_ADD)
HAVEND_CHANGE_ROUTE(havend_volume_add, VOLUME_ADD)
HAVEND_CHANGE_ROUTE(havend_settings_set, SETTINGS_SET)
HAVEND_CHANGE_ROUTE(havend_vm_migrate, VM_MIGRATE)
HAVEND_CHANGE_ROUTE(havend_node_maintenance, HOST_MAINTENANCE)
HAVEND_CHANGE_ROUTE(havend_role_grant, ROLE_GRANT)
HAVEND_CHANGE_ROUTE(havend_role_revoke, ROLE_REVOKE)

static void
havend_storage_list(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__StorageListReply	 r = HAVEN__STORAGE_LIST_REPLY__INIT;

	r.pools = st->cs->pools;
	r.n_pools = st->cs->n_pools;
	r.volumes = st->cs->volumes;
	r.n_volumes = st->cs->n_volumes;
	control_reply(c, FRAME_STORAGE_LIST_REPLY, &r.base);
}

/* The serial log of a VM this host runs, read-only. */
static void
havend_vm_console(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__ConsoleRequest	*req = (Haven__ConsoleRequest *)m;
	const struct cluster	*st = replica_state(h->replica);
	const Haven__Vm		*vm = cluster_vm(st, req->name);
	const Haven__Host	*owner;
	Haven__ConsoleReply	 r = HAVEN__CONSOLE_REPLY__INIT;
	struct stat		 sb;
	uint8_t			*buf;
	char			 path[512];
	size_t			 max;
	ssize_t			 n;
	off_t			 from;
	int			 fd;

	if (vm == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no VM named '%s'; 'havenctl vm list' shows them", req->name);
		return;
	}
	if (vm->runtime->owner != h->node_id) {
		owner = vm->runtime->owner ? cluster_host(st,
		    vm->runtime->owner) : NULL;
		if (owner != NULL)
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND, "VM %s runs "
			    "on %s (node %u): run 'havenctl vm console %s' there",
			    req->name, owner->config->name, owner->config->node_id,
			    req->name);
		else
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND, "VM %s is %s "
			    "and runs nowhere: it has no console now", req->name,
			    cluster_phase_name(vm->runtime->phase));
		return;
	}
	snprintf(path, sizeof path, "%s/%s.serial", h->config.vm_log_dir,
	    vm->config->name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(fd, &sb) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "VM %s has no serial log yet (%s: %s)", req->name, path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	max = req->max_bytes == 0 || req->max_bytes > HAVEND_CONSOLE_MAX ?
	    HAVEND_CONSOLE_MAX : req->max_bytes;
	from = (off_t)req->offset;
	if (req->tail > 0)
		from = sb.st_size > req->tail ? sb.st_size - req->tail : 0;
	if (from > sb.st_size)
		from = 0;	/* the log was cut or replaced: from its start */
	if ((buf = malloc(max)) == NULL)
		abort();
	if ((n = pread(fd, buf, max, from)) < 0)
		n = 0;
	close(fd);
	r.data.data = buf;
	r.data.len = (size_t)n;
	r.offset = (uint64_t)from;
	r.next = (uint64_t)from + (uint64_t)n;
	r.owner = h->node_id;
	control_reply(c, FRAME_VM_CONSOLE_REPLY, &r.base);
	free(buf);
}

static void
havend_settings_get(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__ClusterSettings	 none = HAVEN__CLUSTER_SETTINGS__INIT;

	control_reply(c, FRAME_SETTINGS_REPLY, st->cs->settings != NULL ?
	    &st->cs->settings->base : &none.base);
}

static void
havend_node_fence(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend	*h = arg;

	if (((Haven__HostLost *)m)->node_id == h->node_id) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "node %u is this host: fence it from another host",
		    h->node_id);
		return;
	}
	havend_propose_request(h, c, m, HAVEN__CHANGE__KIND_HOST_LOST);
}

static void
havend_fence_history(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__FenceHistoryReply r = HAVEN__FENCE_HISTORY_REPLY__INIT;

	r.records = st->cs->fence_history;
	r.n_records = st->cs->n_fence_history;
	r.hosts = st->cs->hosts;
	r.n_hosts = st->cs->n_hosts;
	control_reply(c, FRAME_FENCE_HISTORY_REPLY, &r.base);
}

struct havend_log_dump {
	Haven__DebugLogLine	*lines;
	Haven__DebugLogLine	**ptrs;
	size_t			 n;
	size_t			 max;
};

static void
havend_log_line(const struct log_line *line, void *arg)
{
	struct havend_log_dump	*d = arg;
	Haven__DebugLogLine	*l;

	if (d->n == d->max)
		return;
	l = &d->lines[d->n];
	haven__debug_log_line__init(l);
	l->time_us = line->time_us;
	l->level = (char *)log_level_name(line->level);
	l->text = (char *)line->text;
	d->ptrs[d->n++] = l;
}

/* The log ring, oldest first; the lines are only borrowed during the
 * reply (nothing logs while it is packed). */
static void
havend_debug_log(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	static Haven__DebugLogLine	 lines[LOG_RING_LINES];
	static Haven__DebugLogLine	*ptrs[LOG_RING_LINES];
	struct havend_log_dump		 d = { lines, ptrs, 0, LOG_RING_LINES };
	Haven__DebugLogReply		 r = HAVEN__DEBUG_LOG_REPLY__INIT;

	log_ring_foreach(havend_log_line, &d);
	r.lines = d.ptrs;
	r.n_lines = d.n;
	control_reply(c, FRAME_DEBUG_LOG_REPLY, &r.base);
}

static const char *
havend_target_migrate(ProtobufCMessage *m)
{
	return ((Haven__VmMigrate *)m)->name;
}

static const char *
havend_target_name(ProtobufCMessage *m)
{
	return ((Haven__VmNameRequest *)m)->name;
}

static const char *
havend_target_console(ProtobufCMessage *m)
{
	return ((Haven__ConsoleRequest *)m)->name;
}

static const char *
havend_target_create(ProtobufCMessage *m)
{
	Haven__VmCreateRequest	*req = (Haven__VmCreateRequest *)m;

	return req->config != NULL ? req->config->name : NULL;
}

static const struct control_route havend_routes[] = {
	{ FRAME_STATUS_REQUEST, REQUEST_READ, 0, NULL, havend_status },
	{ FRAME_VM_LIST, REQUEST_READ, 0, NULL, havend_vm_list },
	{ FRAME_VM_SHOW, REQUEST_READ, 0, havend_target_name, havend_vm_show },
	{ FRAME_NODE_LIST, REQUEST_READ, 0, NULL, havend_node_list },
	{ FRAME_VM_CREATE, REQUEST_ADMIN, 1, havend_target_create,
	    havend_vm_create },
	{ FRAME_VM_DELETE, REQUEST_ADMIN, 1, havend_target_name,
	    havend_vm_delete },
	{ FRAME_VM_START, REQUEST_VM, 1, havend_target_name, havend_vm_start },
	{ FRAME_VM_STOP, REQUEST_VM, 1, havend_target_name, havend_vm_stop },
	{ FRAME_ROLE_LIST, REQUEST_READ, 0, NULL, havend_role_list },
	{ FRAME_EVENTS, REQUEST_READ, 0, NULL, havend_events },
	{ FRAME_ROLE_GRANT, REQUEST_ADMIN, 1, NULL, havend_role_grant },
	{ FRAME_ROLE_REVOKE, REQUEST_ADMIN, 1, NULL, havend_role_revoke },
	{ FRAME_POOL_ADD, REQUEST_ADMIN, 1, NULL, havend_pool_add },
	{ FRAME_VOLUME_ADD, REQUEST_ADMIN, 1, NULL, havend_volume_add },
	{ FRAME_STORAGE_LIST, REQUEST_READ, 0, NULL, havend_storage_list },
	{ FRAME_VM_CONSOLE, REQUEST_VM, 0, havend_target_console,
	    havend_vm_console },
	{ FRAME_SETTINGS_SET, REQUEST_ADMIN, 1, NULL, havend_settings_set },
	{ FRAME_SETTINGS_GET, REQUEST_READ, 0, NULL, havend_settings_get },
	{ FRAME_NODE_FENCE, REQUEST_ADMIN, 1, NULL, havend_node_fence },
	{ FRAME_FENCE_HISTORY, REQUEST_READ, 0, NULL, havend_fence_history },
	{ FRAME_VM_MIGRATE, REQUEST_VM, 1, havend_target_migrate,
	    havend_vm_migrate },
	{ FRAME_NODE_MAINTENANCE, REQUEST_ADMIN, 1, NULL,
	    havend_node_maintenance },
	{ FRAME_DEBUG_LOG, REQUEST_ADMIN, 0, NULL, havend_debug_log },
};

/* A change came back applied (or refused): answer whoever asked. */
static void
havend_applied(struct replica *r, const Haven__Change *c, int result,
    const char *err, void *arg)
{
	struct havend		*h = arg;
	struct control_client	*client;
	Haven__OkReply		 ok = HAVEN__OK_REPLY__INIT;
	size_t			 i;

	if (c->origin == h->node_id) {
		for (i = 0; i < h->npending; i++) {
			if (h->pending[i].request_id == c->request_id)
				break;
		}
		if (i < h->npending) {
			if (h->pending[i].client_id == 0) {
				if (h->decisions_in_flight > 0)
					h->decisions_in_flight--;
			} else if ((client = control_client_find(h->control,
			    h->pending[i].client_id)) != NULL) {
				if (result == CLUSTER_OK) {
					ok.message = "";	/* havenctl words it */
					ok.seq = replica_state(r)->cs->seq;
					control_reply(client, FRAME_OK_REPLY,
					    &ok.base);
				} else {
					control_reply_error(client,
					    havend_error_code(result), "%s",
					    err);
				}
			}
			h->pending[i] = h->pending[--h->npending];
		}
		/* A refused report of ours is proposed again if still true. */
		if (result != CLUSTER_OK &&
		    (c->kind_case == HAVEN__CHANGE__KIND_VM_TRANSITION ||
		    c->kind_case == HAVEN__CHANGE__KIND_VM_LIVE))
			h->nlocal = 0;
	}
	/* This host declared lost while it runs (`node fence`, or its
	 * havend was away too long): it is being fenced. Stop every VM now
	 * and leave; havend must be restarted to rejoin (and be unfenced). */
	if (result == CLUSTER_OK &&
	    c->kind_case == HAVEN__CHANGE__KIND_HOST_LOST &&
	    c->host_lost->node_id == h->node_id && h->node_id != 0) {
		struct vmworker	*w;

		log_warn("this host (node %u) was declared lost and is being "
		    "fenced: stopping its VMs and havend; restart havend to "
		    "rejoin", h->node_id);
		for (w = supervisor_first(h->supervisor); w != NULL;
		    w = supervisor_next(w))
			if (vmworker_alive(w))
				supervisor_kill(h->supervisor, vmworker_uuid(w));
		h->exit_code = 1;
		event_base_loopbreak(h->base);
		return;
	}
	/* Applied reports leave the table. */
	for (i = 0; i < h->nlocal; ) {
		const Haven__Vm	*vm = NULL;
		size_t		 j;

		for (j = 0; j < replica_state(r)->cs->n_vms; j++)
			if (strcmp(replica_state(r)->cs->vms[j]->config->uuid,
			    h->local[i].uuid) == 0)
				vm = replica_state(r)->cs->vms[j];
		if (vm == NULL || vm->runtime->generation !=
		    h->local[i].generation ||
		    vm->runtime->phase == h->local[i].phase ||
		    (h->local[i].phase >= HAVEND_LIVE_STEP(0) &&
		    vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING))
			h->local[i] = h->local[--h->nlocal];
		else
			i++;
	}
	havend_reconcile(h);
	havend_local(h);
}

static uint64_t
havend_memory_mib(void)
{
	FILE		*fp = fopen("/proc/meminfo", "r");
	unsigned long	 kib = 0;

	if (fp != NULL) {
		if (fscanf(fp, "MemTotal: %lu kB", &kib) != 1)
			kib = 0;
		fclose(fp);
	}
	return kib / 1024;
}

/* After a sync: make sure this host is in the state, then reconcile. */
static void
havend_synced(struct replica *r, void *arg)
{
	struct havend	*h = arg;
	Haven__Change	*c;
	Haven__HostAdd	*add;
	char		 err[256];
	uint64_t	 id;

	h->node_id = membership_node_id(h->membership);
	h->synced = 1;
	if (replica_is_quorate(r) && cluster_host(replica_state(r),
	    h->node_id) == NULL) {
		c = havend_change_new();
		add = calloc(1, sizeof *add);
		haven__host_add__init(add);
		add->config = calloc(1, sizeof *add->config);
		haven__host_config__init(add->config);
		add->config->node_id = h->node_id;
		add->config->name = strdup(h->config.node_name);
		add->config->memory_mib = havend_memory_mib();
		add->config->vcpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
		c->kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c->host_add = add;
		if (replica_propose(r, c, &id, err, sizeof err) == -1)
			log_warn("adding this host to the cluster: %s", err);
		else
			log_info("adding this host (%s, node %u) to the cluster",
			    h->config.node_name, h->node_id);
	}
	havend_reconcile(h);
	havend_local(h);
}

/* --- fencing lost hosts (the coordinator's job, DESIGN §4) --------------- */

/* The volumes of the cluster, as the URLs the fence levels preempt on. */
static size_t
havend_volume_urls(struct havend *h, char (*urls)[384], const char **ptrs,
    size_t max)
{
	const struct cluster	*st = replica_state(h->replica);
	size_t			 i, n = 0;

	for (i = 0; i < st->cs->n_volumes && n < max; i++) {
		const Haven__VolumeConfig	*v = st->cs->volumes[i];
		const Haven__PoolConfig		*p = cluster_pool(st, v->pool);

		if (p == NULL)
			continue;
		snprintf(urls[n], sizeof urls[n], "iscsi://%s/%s/%u", p->portal,
		    p->target, v->lun);
		ptrs[n] = urls[n];
		n++;
	}
	return n;
}

static void
havend_fence_retry_cb(void *arg)
{
	havend_reconcile(arg);
}

/* Start fencing every lost host that is not fenced yet. */
static void
havend_fence_lost(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	static char		 urls[256][384];
	const char		*ptrs[256];
	uint64_t		 now = ev_now_ms();
	size_t			 i, j, n;

	for (i = 0; i < st->cs->n_hosts; i++) {
		const Haven__Host	*host = st->cs->hosts[i];
		Haven__FenceStatus	 fs = host->runtime->fence;

		if (host->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST ||
		    (fs != HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING &&
		    fs != HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED) ||
		    fencer_busy(h->fencer, host->config->node_id))
			continue;
		for (j = 0; j < h->nfence_failed; j++)
			if (h->fence_failed[j].node_id == host->config->node_id)
				break;
		if (j < h->nfence_failed && now - h->fence_failed[j].at_ms <
		    HAVEND_FENCE_RETRY_MS) {
			ev_timer_arm(h->fence_retry_timer, HAVEND_FENCE_RETRY_MS -
			    (now - h->fence_failed[j].at_ms));
			continue;
		}
		n = havend_volume_urls(h, urls, ptrs, 256);
		if (fencer_start(h->fencer, h->node_id, host->config->node_id,
		    host->config->name, host->runtime->lost_at_us, ptrs, n) == -1)
			log_warn("cannot fence node %u now: %s",
			    host->config->node_id, strerror(errno));
	}
}

static void
havend_fenced(struct fencer *f, uint32_t victim, int fenced, const char *level,
    const char *detail, void *arg)
{
	struct havend	*h = arg;
	Haven__Change	*c = havend_change_new();
	Haven__HostFence *hf = calloc(1, sizeof *hf);
	char		 err[256];
	uint64_t	 id;
	size_t		 j;

	if (hf == NULL)
		abort();
	if (fenced)
		log_info("node %u fenced by level %s: %s", victim, level, detail);
	else
		log_warn("node %u NOT fenced, every level failed: %s", victim,
		    detail);
	haven__host_fence__init(hf);
	hf->node_id = victim;
	hf->status = fenced ? HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED :
	    HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED;
	hf->level = strdup(level);
	hf->detail = strdup(detail);
	c->kind_case = HAVEN__CHANGE__KIND_HOST_FENCE;
	c->host_fence = hf;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_warn("recording the fencing of node %u: %s", victim, err);
	for (j = 0; j < h->nfence_failed; j++)
		if (h->fence_failed[j].node_id == victim)
			break;
	if (fenced) {
		if (j < h->nfence_failed)
			h->fence_failed[j] = h->fence_failed[--h->nfence_failed];
		return;
	}
	if (j == h->nfence_failed && j < HAVEND_MAX_MEMBERS)
		h->nfence_failed++;
	if (j < HAVEND_MAX_MEMBERS) {
		h->fence_failed[j].node_id = victim;
		h->fence_failed[j].at_ms = ev_now_ms();
	}
	ev_timer_arm(h->fence_retry_timer, HAVEND_FENCE_RETRY_MS);
}

/* Hosts up in corosync though their havend left the CPG group (it
 * restarts): present for HAVEND_DAEMON_GRACE_MS, then lost like any other.
 * A timer runs the reconcile again when the grace ends. */
static size_t
havend_present(struct havend *h, const uint32_t *members, size_t n,
    uint32_t *present)
{
	uint64_t	 now = ev_now_ms();
	size_t		 i, j, np = 0, na = 0;
	int		 in_cpg;

	for (i = 0; i < h->nmembers; i++) {
		in_cpg = 0;
		for (j = 0; j < n; j++)
			if (members[j] == h->members[i])
				in_cpg = 1;
		if (in_cpg) {
			present[np++] = h->members[i];
			continue;
		}
		for (j = 0; j < h->nabsent; j++)
			if (h->absent[j].node_id == h->members[i])
				break;
		if (j == h->nabsent) {
			h->absent[j].node_id = h->members[i];
			h->absent[j].since_ms = now;
			log_info("node %u is up but its havend is not in the "
			    "group; waiting %d s before declaring it lost",
			    h->members[i], HAVEND_DAEMON_GRACE_MS / 1000);
			ev_timer_arm(h->grace_timer, HAVEND_DAEMON_GRACE_MS);
		}
		if (now - h->absent[j].since_ms < HAVEND_DAEMON_GRACE_MS)
			present[np++] = h->members[i];
		h->absent[na++] = h->absent[j];
	}
	h->nabsent = na;	/* nodes back in the group or gone are dropped */
	return np;
}

/* Pet the watchdog only while healthy: this loop runs (or the timer would
 * not fire) and corosync is connected. A hung havend or a lost corosync
 * lets the host reset (DESIGN §4). */
static void
havend_watchdog_cb(void *arg)
{
	struct havend	*h = arg;

	if (h->corosync_up && watchdog_pet(h->watchdog) == -1)
		log_warn("petting the watchdog: %s", strerror(errno));
}

static void
havend_grace_cb(void *arg)
{
	havend_reconcile(arg);
}

/* The coordinator (lowest node id of the quorate membership) turns desired
 * into decisions; everyone else waits. */
static void
havend_reconcile(struct havend *h)
{
	struct coordinator_decisions	 d = { NULL, 0 };
	const uint32_t			*members;
	char				 err[256], what[128];
	size_t				 n, i;
	uint64_t			 id;

	uint32_t			 present[HAVEND_MAX_MEMBERS];
	size_t				 npresent;

	if (!replica_is_quorate(h->replica)) {
		fencer_cancel_all(h->fencer);
		return;
	}
	members = replica_members(h->replica, &n);
	if (coordinator_of(members, n) != h->node_id) {
		fencer_cancel_all(h->fencer);
		return;
	}
	havend_fence_lost(h);
	if (h->decisions_in_flight > 0)
		return;
	npresent = havend_present(h, members, n, present);
	if (coordinator_reconcile_present(replica_state(h->replica), members, n,
	    present, npresent, &d) != 0)
		return;
	for (i = 0; i < d.n; i++) {
		coordinator_describe(d.changes[i], what, sizeof what);
		log_info("coordinator: %s", what);
		if (replica_propose(h->replica, d.changes[i], &id, err,
		    sizeof err) == 0 && h->npending < HAVEND_MAX_PENDING) {
			h->pending[h->npending].request_id = id;
			h->pending[h->npending].client_id = 0;
			h->npending++;
			h->decisions_in_flight++;
		}
		d.changes[i] = NULL;	/* the replica owns it now */
	}
	coordinator_decisions_free(&d);
}


/* --- this host's VMs (DESIGN §6): the state against our workers ---------- */

static int
havend_local_pending(struct havend *h, const char *uuid, uint64_t generation,
    Haven__VmPhase phase)
{
	size_t	 i;

	for (i = 0; i < h->nlocal; i++)
		if (strcmp(h->local[i].uuid, uuid) == 0 &&
		    h->local[i].generation == generation &&
		    h->local[i].phase == phase)
			return 1;
	return 0;
}

/* Report what our worker did; once per (VM, generation, phase) until the
 * change is applied or the configuration changes. */
static void
havend_transition_ex(struct havend *h, const Haven__Vm *vm,
    Haven__VmPhase phase, const char *detail, int state_refused)
{
	Haven__Change		*c;
	Haven__VmTransition	*t;
	char			 err[256];
	uint64_t		 id;

	if (vm->runtime->phase == phase || havend_local_pending(h,
	    vm->config->uuid, vm->runtime->generation, phase) ||
	    h->nlocal == HAVEND_MAX_LOCAL)
		return;
	c = havend_change_new();
	t = calloc(1, sizeof *t);
	if (t == NULL)
		abort();
	haven__vm_transition__init(t);
	t->name = strdup(vm->config->name);
	t->generation = vm->runtime->generation;
	t->phase = phase;
	t->detail = strdup(detail != NULL ? detail : "");
	t->state_refused = state_refused != 0;
	c->kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c->vm_transition = t;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("reporting %s %s: %s", vm->config->name,
		    cluster_phase_name(phase), err);
		return;
	}
	snprintf(h->local[h->nlocal].uuid, sizeof h->local[0].uuid, "%s",
	    vm->config->uuid);
	h->local[h->nlocal].generation = vm->runtime->generation;
	h->local[h->nlocal].phase = phase;
	h->nlocal++;
}

static void
havend_transition(struct havend *h, const Haven__Vm *vm, Haven__VmPhase phase,
    const char *detail)
{
	havend_transition_ex(h, vm, phase, detail, 0);
}

/* Ties a saved state to the VM's machine: what QEMU's stream depends on. */
static uint64_t
havend_config_hash(const Haven__VmConfig *vc)
{
	char		 buf[128];
	uint64_t	 hash = 14695981039346656037ULL;	/* FNV-1a */
	const char	*p;

	snprintf(buf, sizeof buf, "%s/%llu/%u/%zu", vc->uuid,
	    (unsigned long long)vc->memory_mib, vc->vcpus, vc->n_volumes);
	for (p = buf; *p != '\0'; p++) {
		hash ^= (uint8_t)*p;
		hash *= 1099511628211ULL;
	}
	return hash;
}

/* The worker's spec from the state: iscsi://portal/target/lun per volume. */
static int
havend_spawn(struct havend *h, const Haven__Vm *vm, Haven__WorkerAction action,
    const char *listen, char *err, size_t errlen)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__VmConfig	*vc = vm->config;
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	Haven__VolumeRef	 refs[8], *prefs[8];
	char			 urls[8][384], initiator[256];
	size_t			 i;

	if (vc->n_volumes == 0 || vc->n_volumes > 8) {
		snprintf(err, errlen, "a VM needs 1 to 8 volumes to run (it has "
		    "%zu)", vc->n_volumes);
		return -1;
	}
	for (i = 0; i < vc->n_volumes; i++) {
		const Haven__VolumeConfig	*v = cluster_volume(st,
						    vc->volumes[i]);
		const Haven__PoolConfig		*p = v != NULL ?
						    cluster_pool(st, v->pool) : NULL;

		if (p == NULL) {
			snprintf(err, errlen, "volume %s or its pool is not "
			    "defined", vc->volumes[i]);
			return -1;
		}
		haven__volume_ref__init(&refs[i]);
		snprintf(urls[i], sizeof urls[i], "iscsi://%s/%s/%u", p->portal,
		    p->target, v->lun);
		refs[i].uuid = v->name;
		refs[i].url = urls[i];
		refs[i].reservation_key = pr_key(h->config.cluster_name,
		    h->node_id);
		prefs[i] = &refs[i];
	}
	if (*h->config.vm_initiator != '\0')
		snprintf(initiator, sizeof initiator, "%s",
		    h->config.vm_initiator);
	else
		snprintf(initiator, sizeof initiator, "iqn.2026-11.io.haven:%s",
		    h->config.node_name);
	spec.uuid = vc->uuid;
	spec.name = vc->name;
	spec.memory_mib = vc->memory_mib;
	spec.vcpus = vc->vcpus;
	spec.volumes = prefs;
	spec.n_volumes = vc->n_volumes;
	spec.generation = vm->runtime->generation;
	/* A live migration's target runs the next generation, and claims
	 * its lease only at the switchover. */
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING) {
		spec.generation++;
		spec.incoming = 1;
	}
	spec.accel = strcmp(h->config.vm_accel, "kvm") == 0 ||
	    (strcmp(h->config.vm_accel, "auto") == 0 &&
	    access("/dev/kvm", R_OK | W_OK) == 0) ?
	    HAVEN__ACCEL__ACCEL_KVM : HAVEN__ACCEL__ACCEL_TCG;
	spec.serial_log = (char *)"serial";
	spec.qemu_log = (char *)"qemu";
	spec.host_name = h->config.node_name;
	spec.node_id = h->node_id;
	spec.initiator = initiator;
	spec.kernel = vc->kernel;
	spec.kernel_append = vc->kernel_append;
	spec.config_hash = havend_config_hash(vc);
	spec.qemu_binary = h->config.vm_qemu;
	spec.adopt_timeout_ms = h->config.vm_adopt_timeout_s * 1000;
	return supervisor_start(h->supervisor, &spec, action,
	    vm->runtime->saved_generation, listen, err, errlen);
}

static int	havend_final(Haven__VmPhase);

/* This host's address on its migration interface ([interfaces]
 * migration, else management): where a live migration's target listens. */
static int
havend_migration_address(struct havend *h, char *buf, size_t len)
{
	struct ifaddrs	*ifa, *a;
	const char	*ifname = *h->config.if_migration ?
			    h->config.if_migration : h->config.if_management;
	int		 found = -1;

	if (getifaddrs(&ifa) == -1)
		return -1;
	for (a = ifa; a != NULL && found == -1; a = a->ifa_next) {
		if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET ||
		    strcmp(a->ifa_name, ifname) != 0)
			continue;
		if (inet_ntop(AF_INET, &((struct sockaddr_in *)
		    (void *)a->ifa_addr)->sin_addr, buf, (socklen_t)len) != NULL)
			found = 0;
	}
	freeifaddrs(ifa);
	if (found == -1)
		errno = EADDRNOTAVAIL;
	return found;
}

/* Propose a step of a live migration of vm (at its generation); once per
 * (VM, generation, step) until applied or refused. */
static void
havend_live_step(struct havend *h, const Haven__Vm *vm, Haven__LiveStep step,
    uint64_t generation, const char *endpoint, const char *token,
    uint64_t at_us, const char *detail)
{
	Haven__Change	*c;
	Haven__VmLive	*l;
	char		 err[256];
	uint64_t	 id;

	if (havend_local_pending(h, vm->config->uuid, generation,
	    (Haven__VmPhase)HAVEND_LIVE_STEP(step)) ||
	    h->nlocal == HAVEND_MAX_LOCAL)
		return;
	c = havend_change_new();
	if ((l = calloc(1, sizeof *l)) == NULL)
		abort();
	haven__vm_live__init(l);
	l->name = strdup(vm->config->name);
	l->generation = generation;
	l->step = step;
	l->endpoint = strdup(endpoint != NULL ? endpoint : "");
	l->token = strdup(token != NULL ? token : "");
	l->at_us = at_us;
	l->detail = strdup(detail != NULL ? detail : "");
	c->kind_case = HAVEN__CHANGE__KIND_VM_LIVE;
	c->vm_live = l;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("live migration of %s: %s", vm->config->name, err);
		return;
	}
	snprintf(h->local[h->nlocal].uuid, sizeof h->local[0].uuid, "%s",
	    vm->config->uuid);
	h->local[h->nlocal].generation = generation;
	h->local[h->nlocal].phase = (Haven__VmPhase)HAVEND_LIVE_STEP(step);
	h->nlocal++;
}

/* The source's progress, for `vm migrate`'s bar: level-triggered (sent
 * while the state differs from what the worker said), not remembered. */
static void
havend_live_progress(struct havend *h, const Haven__Vm *vm,
    uint64_t remaining, uint64_t total)
{
	Haven__Change	*c = havend_change_new();
	Haven__VmLive	*l;
	char		 err[256];
	uint64_t	 id;

	if ((l = calloc(1, sizeof *l)) == NULL)
		abort();
	haven__vm_live__init(l);
	l->name = strdup(vm->config->name);
	l->generation = vm->runtime->generation;
	l->step = HAVEN__LIVE_STEP__LIVE_STEP_PROGRESS;
	l->remaining = remaining;
	l->total = total;
	c->kind_case = HAVEN__CHANGE__KIND_VM_LIVE;
	c->vm_live = l;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_debug("live migration progress of %s: %s", vm->config->name,
		    err);
}

/* A quick save's or restore's progress into the state (no event), for
 * vm migrate's bar on any host. */
static void
havend_state_progress(struct havend *h, const Haven__Vm *vm,
    const struct vmworker *w)
{
	const struct vmworker_live	*l = vmworker_live(w);

	if (l->total != 0 && (l->remaining != vm->runtime->live_remaining ||
	    l->total != vm->runtime->live_total))
		havend_live_progress(h, vm, l->remaining, l->total);
}

/* A VM migrating live to this host: a worker waits for the stream; the
 * cluster hears where it listens, that the stream is in, or that it
 * failed. The handover itself makes the VM ours (havend_local_vm). */
static void
havend_live_target(struct havend *h, const Haven__Vm *vm)
{
	const Haven__VmRuntime		*rt = vm->runtime;
	struct vmworker			*w = supervisor_find(h->supervisor,
					    vm->config->uuid);
	const struct vmworker_live	*l;
	char				 addr[64], err[256];

	if (w != NULL && vmworker_generation(w) != rt->generation + 1) {
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	if (w == NULL) {
		if (havend_migration_address(h, addr, sizeof addr) == -1) {
			snprintf(err, sizeof err, "no IPv4 address on the "
			    "migration interface %s", *h->config.if_migration ?
			    h->config.if_migration : h->config.if_management);
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, err);
			return;
		}
		if (havend_spawn(h, vm, HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING,
		    addr, err, sizeof err) == -1)
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, err);
		return;
	}
	l = vmworker_live(w);
	if (havend_final(vmworker_phase(w)) || !vmworker_alive(w)) {
		/* Once the source sends, it learns of a broken stream itself
		 * and says why (a cancel here is its doing); only before
		 * that, or when it stopped to hand over, is it ours to say. */
		if (rt->live_endpoint == NULL || *rt->live_endpoint == '\0' ||
		    rt->saving_at_us != 0)
			havend_live_step(h, vm,
			    HAVEN__LIVE_STEP__LIVE_STEP_FAILED, rt->generation,
			    NULL, NULL, 0, *vmworker_detail(w) ?
			    vmworker_detail(w) : "the target's worker stopped");
		return;
	}
	if (l->received)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_RECEIVED,
		    rt->generation, NULL, NULL, 0, NULL);
	else if (*l->endpoint != '\0' && (rt->live_endpoint == NULL ||
	    *rt->live_endpoint == '\0'))
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_READY,
		    rt->generation, l->endpoint, l->token, 0, NULL);
}

/* The source of a live migration: send once the target listens; tell the
 * cluster when the vCPUs stopped, and when it failed (it runs on here). */
static void
havend_live_source(struct havend *h, const Haven__Vm *vm, struct vmworker *w)
{
	const Haven__VmRuntime		*rt = vm->runtime;
	const struct cluster		*st = replica_state(h->replica);
	const Haven__ClusterSettings	*set = st->cs->settings;
	const struct vmworker_live	*l = vmworker_live(w);
	Haven__WorkerCommand		 cmd = HAVEN__WORKER_COMMAND__INIT;
	Haven__VmPhase			 wp = vmworker_phase(w);

	if (vmworker_last_command(w) != HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE) {
		if (rt->live_endpoint == NULL || *rt->live_endpoint == '\0')
			return;		/* the target is not ready yet */
		cmd.action = HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE;
		cmd.endpoint = rt->live_endpoint;
		cmd.token = rt->live_token;
		cmd.downtime_ms = CLUSTER_LIVE_DOWNTIME_MS(set);
		cmd.bandwidth = set != NULL ? (uint64_t)set->live_bandwidth_mib
		    << 20 : 0;
		cmd.converge_ms = CLUSTER_LIVE_CONVERGE_S(set) * 1000;
		if (supervisor_send(h->supervisor, vm->config->uuid, &cmd) == 0)
			log_scoped(LOG_LEVEL_INFO, "vm", vm->config->name,
			    "migrating live to host %u at %s (downtime limit "
			    "%u ms)", rt->migrate_to, rt->live_endpoint,
			    cmd.downtime_ms);
		return;
	}
	if (l->stopped_at_us != 0 && rt->saving_at_us == 0)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_STOPPED,
		    rt->generation, NULL, NULL, l->stopped_at_us, NULL);
	else if (l->total != 0 && rt->saving_at_us == 0 &&
	    (l->remaining != rt->live_remaining || l->total != rt->live_total))
		havend_live_progress(h, vm, l->remaining, l->total);
	/* Still running, or stuck in the switchover: the cluster calls it
	 * off (the target's 'received' is stale from then on), and only
	 * then does the worker run the vCPUs here again. */
	if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING || l->switch_stalled)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
		    rt->generation, NULL, NULL, 0, vmworker_detail(w));
	else if (havend_final(wp))
		havend_transition(h, vm, wp, vmworker_detail(w));
}

static int
havend_final(Haven__VmPhase p)
{
	return p == HAVEN__VM_PHASE__VM_PHASE_STOPPED ||
	    p == HAVEN__VM_PHASE__VM_PHASE_SAVED ||
	    p == HAVEN__VM_PHASE__VM_PHASE_FAILED;
}

/* A VM in flight here (saving, migrating) whose worker is gone: say how
 * it ended. 1 if there is no worker to ask. */
static int
havend_no_worker(struct havend *h, const Haven__Vm *vm, struct vmworker *w,
    Haven__VmPhase wp, const char *why)
{
	if (w != NULL && vmworker_alive(w))
		return 0;
	if (w != NULL && havend_final(wp))
		havend_transition(h, vm, wp, NULL);
	else if (w == NULL && supervisor_settled(h->supervisor))
		havend_transition(h, vm, HAVEN__VM_PHASE__VM_PHASE_FAILED, why);
	return 1;
}

/* A live migration the cluster called off (it failed, or its target went)
 * while this worker still sends or waits after sending: it runs the vCPUs
 * again first. 1 while it winds down. */
static int
havend_live_called_off(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp)
{
	if (wp != HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
		return 0;
	if (vmworker_last_command(w) !=
	    HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME &&
	    supervisor_command(h->supervisor, vm->config->uuid,
	    HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME, 0) == 0)
		log_scoped(LOG_LEVEL_INFO, "vm", vm->config->name,
		    "live migration called off: it runs on here");
	return 1;
}

/* One VM this host owns: make the worker match the state, and the state
 * hear what the worker did. */
static void
havend_local_vm(struct havend *h, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	struct vmworker		*w = supervisor_find(h->supervisor,
				    vm->config->uuid);
	Haven__VmPhase		 wp;
	char			 err[256];
	uint32_t		 stop_ms = vm->config->stop_timeout_s ?
				    vm->config->stop_timeout_s * 1000 :
				    HAVEND_STOP_MS;

	/* A live migration's target worker serves only its handover: the
	 * same generation after a failover is another incarnation. */
	if (w != NULL && vmworker_incoming(w) &&
	    !(rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING &&
	    vmworker_live(w)->received)) {
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	if (w != NULL && vmworker_generation(w) != rt->generation) {
		/* An older incarnation: never two of them. */
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	wp = w != NULL ? vmworker_phase(w) : HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED;
	switch (rt->phase) {
	case HAVEN__VM_PHASE__VM_PHASE_STARTING:
	case HAVEN__VM_PHASE__VM_PHASE_RESTORING:
		if (w == NULL) {
			if (havend_spawn(h, vm, rt->phase ==
			    HAVEN__VM_PHASE__VM_PHASE_RESTORING ?
			    HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE :
			    HAVEN__WORKER_ACTION__WORKER_ACTION_START, NULL, err,
			    sizeof err) == -1) {
				log_scoped(LOG_LEVEL_WARN, "vm", vm->config->name,
				    "cannot start: %s", err);
				havend_transition(h, vm,
				    HAVEN__VM_PHASE__VM_PHASE_FAILED, err);
			}
			return;
		}
		/* Handed over live: the lease, the disks, the vCPUs. */
		if (vmworker_last_command(w) ==
		    HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING &&
		    vmworker_live(w)->received && rt->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_RESTORING) {
			if (supervisor_command(h->supervisor, vm->config->uuid,
			    HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH, 0) == 0)
				log_scoped(LOG_LEVEL_INFO, "vm", vm->config->name,
				    "live migration received: running it here");
			return;
		}
		/* The worker refused the saved state (not its own fault):
		 * no host is to try it again. */
		if (wp == HAVEN__VM_PHASE__VM_PHASE_STOPPED && rt->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_RESTORING) {
			havend_transition_ex(h, vm,
			    HAVEN__VM_PHASE__VM_PHASE_FAILED,
			    vmworker_detail(w), 1);
			return;
		}
		if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
		    wp == HAVEN__VM_PHASE__VM_PHASE_PAUSED || havend_final(wp))
			havend_transition(h, vm, wp, NULL);
		else if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING)
			havend_state_progress(h, vm, w);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
	case HAVEN__VM_PHASE__VM_PHASE_PAUSED:
		if (w == NULL) {
			if (supervisor_settled(h->supervisor))
				havend_transition(h, vm,
				    HAVEN__VM_PHASE__VM_PHASE_FAILED,
				    "no worker runs it on its host any more");
			return;
		}
		if (havend_live_called_off(h, vm, w, wp))
			return;
		if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
		    wp == HAVEN__VM_PHASE__VM_PHASE_PAUSED || havend_final(wp))
			havend_transition(h, vm, wp, NULL);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_STOPPING:
		if (w == NULL || !vmworker_alive(w)) {
			havend_transition(h, vm, w != NULL && havend_final(wp) ?
			    wp : HAVEN__VM_PHASE__VM_PHASE_STOPPED, NULL);
			return;
		}
		if (havend_final(wp)) {
			havend_transition(h, vm, wp, NULL);
			return;
		}
		if (vmworker_last_command(w) !=
		    HAVEN__WORKER_ACTION__WORKER_ACTION_STOP &&
		    supervisor_command(h->supervisor, vm->config->uuid,
		    HAVEN__WORKER_ACTION__WORKER_ACTION_STOP, stop_ms) == 0)
			log_scoped(LOG_LEVEL_INFO, "vm", vm->config->name,
			    "stopping (ACPI power-down, quit after %u s)",
			    stop_ms / 1000);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_SAVING:
		/* A planned move: save here; the coordinator restores it on
		 * the target. A RUNNING report after the save command means
		 * the save failed and the VM runs on here. */
		if (havend_no_worker(h, vm, w, wp, "no worker to save it") ||
		    havend_live_called_off(h, vm, w, wp))
			return;
		if (vmworker_last_command(w) !=
		    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE) {
			if (supervisor_command(h->supervisor, vm->config->uuid,
			    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE, 0) == 0)
				log_scoped(LOG_LEVEL_INFO, "vm", vm->config->name,
				    "saving its state to its volume (quick "
				    "migration)");
			return;
		}
		if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
		    havend_final(wp))
			havend_transition(h, vm, wp, wp ==
			    HAVEN__VM_PHASE__VM_PHASE_RUNNING ?
			    "the save failed; it runs on here" : NULL);
		else
			havend_state_progress(h, vm, w);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_MIGRATING:
		/* Live, from here. */
		if (havend_no_worker(h, vm, w, wp, "no worker to migrate it"))
			return;
		havend_live_source(h, vm, w);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_STOPPED:
	case HAVEN__VM_PHASE__VM_PHASE_FAILED:
	case HAVEN__VM_PHASE__VM_PHASE_SAVED:
		if (w != NULL && vmworker_alive(w))
			supervisor_kill(h->supervisor, vm->config->uuid);
		else if (w != NULL)
			supervisor_forget(h->supervisor, vm->config->uuid);
		break;
	default:
		/* saving, migrating, recovering: their owners come later. */
		break;
	}
}

static int
havend_live_to_me(const struct havend *h, const Haven__Vm *vm)
{
	return vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING &&
	    vm->runtime->migrate_to == h->node_id &&
	    vm->runtime->owner != h->node_id;
}

/* Level-triggered, after every applied change, sync and worker report. */
static void
havend_local(struct havend *h)
{
	const struct cluster	*st;
	struct vmworker		*w, *next;
	size_t			 i;

	if (!h->synced || !replica_is_quorate(h->replica))
		return;		/* isolation responses come with fencing */
	st = replica_state(h->replica);
	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__Vm	*vm = st->cs->vms[i];

		if (vm->runtime->owner == h->node_id)
			havend_local_vm(h, vm);
		else if (havend_live_to_me(h, vm))
			havend_live_target(h, vm);
	}
	/* Workers for VMs that are not ours (any more): never run twice. */
	for (w = supervisor_first(h->supervisor); w != NULL; w = next) {
		const Haven__Vm	*vm = NULL;

		next = supervisor_next(w);
		for (i = 0; i < st->cs->n_vms; i++)
			if (strcmp(st->cs->vms[i]->config->uuid,
			    vmworker_uuid(w)) == 0)
				vm = st->cs->vms[i];
		if (vm != NULL && (vm->runtime->owner == h->node_id ||
		    havend_live_to_me(h, vm)))
			continue;
		if (vmworker_alive(w)) {
			/* Handed over live from here: expected. */
			log_scoped(vm != NULL && vm->runtime->migrate_from ==
			    h->node_id ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "vm",
			    vm != NULL ? vm->config->name : vmworker_uuid(w),
			    "not this host's (owner %u); stopping its worker",
			    vm != NULL ? vm->runtime->owner : 0);
			supervisor_kill(h->supervisor, vmworker_uuid(w));
		} else {
			supervisor_forget(h->supervisor, vmworker_uuid(w));
		}
	}
}

static void
havend_worker_report(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, int fenced, const char *detail,
    void *arg)
{
	struct havend	*h = arg;
	const Haven__Vm	*vm = cluster_vm(replica_state(h->replica), name);

	log_scoped(fenced || phase == HAVEN__VM_PHASE__VM_PHASE_FAILED ?
	    LOG_LEVEL_WARN : LOG_LEVEL_INFO, "vm", name, "%s%s%s%s",
	    cluster_phase_name(phase), fenced ? " (fenced)" : "",
	    *detail ? ": " : "", detail);
	/* A refused restore leaves the worker stopped: for the cluster the
	 * VM failed, and its saved state is not tried again. */
	if (vm != NULL && phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING)
		phase = HAVEN__VM_PHASE__VM_PHASE_FAILED;
	if (vm != NULL && vm->runtime->owner == h->node_id &&
	    vm->runtime->generation == generation && havend_final(phase))
		havend_transition(h, vm, phase, detail);
	havend_local(h);
}

static void
havend_worker_adopted(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, void *arg)
{
	havend_local(arg);
}

/* DESIGN §4: a new nexus only while this host is a quorate member that
 * has not been fenced since it joined. */
static int
havend_may_register(struct supervisor *s, const char *uuid, void *arg)
{
	struct havend		*h = arg;
	const Haven__Host	*me = cluster_host(replica_state(h->replica),
				    h->node_id);

	return replica_is_quorate(h->replica) && me != NULL &&
	    me->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
	    me->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
}

static const struct supervisor_callbacks havend_supervisor_callbacks = {
	.report = havend_worker_report,
	.adopted = havend_worker_adopted,
	.may_register = havend_may_register,
};

static const struct replica_callbacks havend_replica_callbacks = {
	.applied = havend_applied,
	.synced = havend_synced,
};

/* "user:NAME", "group:NAME", "uid:N", "gid:N" → a binding; -1 if the
 * name is unknown on this host (the binding then matches nobody here). */
static int
havend_principal(const char *p, struct role_binding *b)
{
	struct passwd	*pw;
	struct group	*gr;
	char		*end;
	unsigned long	 id;

	if (strncmp(p, "uid:", 4) == 0 || strncmp(p, "gid:", 4) == 0) {
		id = strtoul(p + 4, &end, 10);
		if (*end != '\0' || end == p + 4)
			return -1;
		b->is_group = p[0] == 'g';
		b->id = (uint32_t)id;
		return 0;
	}
	if (strncmp(p, "user:", 5) == 0 && (pw = getpwnam(p + 5)) != NULL) {
		b->is_group = 0;
		b->id = pw->pw_uid;
		return 0;
	}
	if (strncmp(p, "group:", 6) == 0 && (gr = getgrnam(p + 6)) != NULL) {
		b->is_group = 1;
		b->id = gr->gr_gid;
		return 0;
	}
	return -1;
}

/* Roles come from the replicated state; root is always an admin. */
static int
havend_authorize(const struct identity *who, enum request_class class,
    const char *vm, enum role *granted, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	struct role_binding	 b[64];
	size_t			 n = 0, i, j;

	for (i = 0; i < st->cs->n_roles && n < 64; i++) {
		const Haven__RoleBinding	*rb = st->cs->roles[i];

		memset(&b[n], 0, sizeof b[n]);
		if (havend_principal(rb->principal, &b[n]) == -1)
			continue;
		b[n].role = rb->role == HAVEN__ROLE__ROLE_ADMIN ? ROLE_ADMIN :
		    rb->role == HAVEN__ROLE__ROLE_OPERATOR ? ROLE_OPERATOR :
		    rb->role == HAVEN__ROLE__ROLE_VIEWER ? ROLE_VIEWER :
		    ROLE_NONE;
		for (j = 0; j < rb->n_vm_patterns && j < 8; j++)
			b[n].patterns[j] = rb->vm_patterns[j];
		b[n].npatterns = j;
		n++;
	}
	return roles_allow(b, n, who, class, vm, granted);
}

static int
havend_check_config(const char *path, struct config *config, int quiet)
{
	struct config_error	errs[32];
	char			line[512];
	size_t			n = 0, i;

	if (config_parse_file(path, config, errs, 32, &n) == 0) {
		if (!quiet)
			printf("%s: ok (node %s, cluster %s, %zu fence "
			    "level%s)\n", path, config->node_name,
			    config->cluster_name, config->nfences,
			    config->nfences == 1 ? "" : "s");
		return 0;
	}
	for (i = 0; i < n && i < 32; i++) {
		config_error_format(&errs[i], path, line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	if (n > 32)
		fprintf(stderr, "%s: and %zu more errors\n", path, n - 32);
	return -1;
}

/* mkdir -p for the parent of path, mode 0755. */
static void
havend_make_parent(const char *path)
{
	char	copy[512], *p;

	snprintf(copy, sizeof copy, "%s", path);
	p = dirname(copy);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

/* VMs the state gives to this host that still run or move. */
static size_t
havend_my_active_vms(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	size_t			 i, n = 0;

	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = st->cs->vms[i]->runtime;

		if (rt->owner == h->node_id &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
			n++;
	}
	return n;
}

static void
havend_drain_check(void *arg)
{
	struct havend	*h = arg;
	size_t		 n = havend_my_active_vms(h);

	if (n == 0 || !replica_is_quorate(h->replica) ||
	    ev_now_ms() - h->drain_started_ms > HAVEND_SHUTDOWN_DRAIN_MS) {
		if (n > 0)
			log_warn("shutdown: %zu VMs are still here; stopping "
			    "anyway", n);
		else
			log_info("shutdown: this host is drained");
		event_base_loopbreak(h->base);
		return;
	}
	ev_timer_arm(h->drain_timer, 500);
}

/* SIGTERM with [vm] shutdown = migrate: drain this host, then stop. */
static int
havend_shutdown_drain(struct havend *h)
{
	Haven__Change		*c;
	Haven__HostMaintenance	*hm;
	char			 err[256];
	uint64_t		 id;
	size_t			 n;

	if (!h->config.vm_shutdown_migrate || h->draining ||
	    !replica_is_quorate(h->replica) ||
	    (n = havend_my_active_vms(h)) == 0)
		return 0;
	c = havend_change_new();
	if ((hm = calloc(1, sizeof *hm)) == NULL)
		abort();
	haven__host_maintenance__init(hm);
	hm->node_id = h->node_id;
	hm->maintenance = 1;
	c->kind_case = HAVEN__CHANGE__KIND_HOST_MAINTENANCE;
	c->host_maintenance = hm;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("shutdown: cannot drain this host: %s", err);
		return 0;
	}
	h->draining = 1;
	h->drain_started_ms = ev_now_ms();
	h->drain_timer = ev_timer_new(h->base, 0, 0, havend_drain_check, h);
	ev_timer_arm(h->drain_timer, 500);
	log_info("shutdown: draining this host first (%zu VMs; signal again "
	    "to stop at once)", n);
	return 1;
}

static void
havend_signal(int signo, void *arg)
{
	struct havend	*h = arg;

	if (signo == SIGCHLD) {
		supervisor_reap(h->supervisor);
		havend_local(h);
		return;
	}
	if (signo == SIGTERM && havend_shutdown_drain(h))
		return;
	log_info("signal %d: stopping", signo);
	event_base_loopbreak(h->base);
}

static void
usage(void)
{
	fprintf(stderr, "usage: havend [-d] [-c CONFIG] [--check-config]\n"
	    "  -c, --config FILE   host configuration (default %s)\n"
	    "  --check-config      report every error in it, with its line, "
	    "and exit\n"
	    "  -d, --debug         log debug messages\n", CONFIG_PATH);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int	 signals[] = { SIGTERM, SIGINT, SIGCHLD };
	struct havend		 h;
	const char		*path = CONFIG_PATH;
	char			 errbuf[256];
	int			 c, check = 0, error = 0;
	size_t			 n;

	memset(&h, 0, sizeof h);
	log_init("havend", LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "c:dh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'd':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (havend_check_config(path, &h.config, !check) == -1)
		return 1;
	if (check)
		return 0;

	tzset();
	if ((h.base = ev_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	havend_make_parent(h.config.control_socket);
	if (*h.config.audit_log != '\0')
		havend_make_parent(h.config.audit_log);
	h.control = control_new(h.base, h.config.control_socket,
	    havend_routes, sizeof havend_routes / sizeof havend_routes[0],
	    havend_authorize, *h.config.audit_log ? h.config.audit_log : NULL,
	    &h, &error);
	if (h.control == NULL)
		log_fatal("control socket %s: %s%s", h.config.control_socket,
		    strerror(-error), error == -EADDRINUSE ?
		    " (another havend is running)" : "");
	if ((h.membership = membership_new(h.base, "haven",
	    &havend_membership_callbacks, &h)) == NULL)
		log_fatal("corosync client: %s", strerror(errno));
	mkdir(h.config.state_dir, 0700);
	if ((h.replica = replica_new(h.membership, h.config.state_dir,
	    &havend_replica_callbacks, &h, errbuf, sizeof errbuf)) == NULL)
		log_fatal("cluster state in %s: %s (move the file aside to "
		    "receive the state from the other hosts)",
		    h.config.state_dir, errbuf);
	if (ev_on_signals(h.base, signals, 3, havend_signal, &h) == -1)
		log_fatal("signals: %s", strerror(errno));
	h.grace_timer = ev_timer_new(h.base, 0, 0, havend_grace_cb, &h);
	if (*h.config.watchdog_device != '\0') {
		if ((h.watchdog = watchdog_open(h.config.watchdog_device,
		    h.config.watchdog_timeout_s, errbuf, sizeof errbuf)) == NULL)
			log_fatal("watchdog: %s", errbuf);
		h.watchdog_timer = ev_timer_new(h.base, FENCE_WATCHDOG_PET_MS, 1,
		    havend_watchdog_cb, &h);
		ev_timer_arm(h.watchdog_timer, FENCE_WATCHDOG_PET_MS);
		log_info("watchdog %s armed (%u s), petted every %d ms while "
		    "healthy", h.config.watchdog_device,
		    watchdog_timeout_s(h.watchdog), FENCE_WATCHDOG_PET_MS);
	}
	h.fence_retry_timer = ev_timer_new(h.base, 0, 0, havend_fence_retry_cb,
	    &h);
	if (*h.config.vm_initiator != '\0')
		snprintf(h.initiator, sizeof h.initiator, "%s",
		    h.config.vm_initiator);
	else
		snprintf(h.initiator, sizeof h.initiator,
		    "iqn.2026-11.io.haven:%s", h.config.node_name);
	if ((h.fencer = fencer_new(h.base, &h.config, h.initiator,
	    havend_fenced, &h)) == NULL)
		log_fatal("fencing: %s", strerror(errno));
	if ((h.supervisor = supervisor_new(h.base, &h.config,
	    &havend_supervisor_callbacks, &h)) == NULL)
		log_fatal("worker supervision: %s", strerror(errno));
	if ((n = supervisor_adopt_all(h.supervisor)) > 0)
		log_info("adopting %zu running VM%s left by the previous havend",
		    n, n == 1 ? "" : "s");
	log_info("node %s: serving %s", h.config.node_name,
	    h.config.control_socket);

	event_base_dispatch(h.base);

	ev_timer_free(h.drain_timer);
	/* The workers keep their VMs running for the next havend. */
	if (h.watchdog != NULL) {
		ev_timer_free(h.watchdog_timer);
		watchdog_close(h.watchdog, 1);	/* a clean stop disarms */
	}
	fencer_free(h.fencer);
	supervisor_free(h.supervisor);
	membership_free(h.membership);
	replica_free(h.replica);
	control_free(h.control);
	ev_signals_free();
	event_base_free(h.base);
	return h.exit_code;
}
