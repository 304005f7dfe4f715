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
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

#define HAVEND_MAX_MEMBERS	64
#define HAVEND_MAX_PENDING	128

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
};

static void	havend_reconcile(struct havend *);

static void
havend_connected(struct membership *m, uint32_t node_id, void *arg)
{
	struct havend	*h = arg;

	h->node_id = node_id;
	log_info("joined the cluster as node %u", node_id);
}

static void
havend_disconnected(struct membership *m, void *arg)
{
	struct havend	*h = arg;

	h->quorate = 0;
	h->nmembers = 0;
	log_warn("lost corosync; not quorate until it is back");
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
	replica_on_changed(h->replica, members, n);
}

static int
havend_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
havend_quorum(struct membership *m, int quorate, const uint32_t *members,
    size_t n, void *arg)
{
	struct havend	*h = arg;

	if (quorate != h->quorate)
		log_info("%s with %zu members", quorate ? "quorate" :
		    "NOT quorate", n);
	h->quorate = quorate;
	h->nmembers = n < HAVEND_MAX_MEMBERS ? n : HAVEND_MAX_MEMBERS;
	memcpy(h->members, members, h->nmembers * sizeof *members);
	qsort(h->members, h->nmembers, sizeof *h->members, havend_cmp_u32);
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

static void
havend_vm_list(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	const struct cluster	*st = replica_state(h->replica);
	Haven__VmListReply	 r = HAVEN__VM_LIST_REPLY__INIT;

	r.vms = st->cs->vms;
	r.n_vms = st->cs->n_vms;
	control_reply(c, FRAME_VM_LIST_REPLY, &r.base);
}

static void
havend_vm_show(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__VmNameRequest	*req = (Haven__VmNameRequest *)m;
	Haven__Vm		*vm = cluster_vm(replica_state(h->replica),
				    req->name);
	Haven__VmListReply	 r = HAVEN__VM_LIST_REPLY__INIT;

	if (vm == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no VM named '%s'; 'havenctl vm list' shows them", req->name);
		return;
	}
	r.vms = &vm;
	r.n_vms = 1;
	control_reply(c, FRAME_VM_LIST_REPLY, &r.base);
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
havend_role_grant(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	Haven__RoleGrantRequest	*req = (Haven__RoleGrantRequest *)m;
	Haven__Change		*change;
	Haven__RoleGrant	*g;

	if (req->binding == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "role grant needs a binding");
		return;
	}
	change = havend_change_new();
	g = calloc(1, sizeof *g);
	haven__role_grant__init(g);
	g->binding = (Haven__RoleBinding *)havend_copy(&req->binding->base);
	change->kind_case = HAVEN__CHANGE__KIND_ROLE_GRANT;
	change->role_grant = g;
	havend_propose_for(arg, c, change);
}

static void
havend_role_revoke(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	Haven__RoleRevokeRequest	*req = (Haven__RoleRevokeRequest *)m;
	Haven__Change			*change = havend_change_new();
	Haven__RoleRevoke		*r = calloc(1, sizeof *r);

	haven__role_revoke__init(r);
	r->principal = strdup(req->principal);
	change->kind_case = HAVEN__CHANGE__KIND_ROLE_REVOKE;
	change->role_revoke = r;
	havend_propose_for(arg, c, change);
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

static const char *
havend_target_name(ProtobufCMessage *m)
{
	return ((Haven__VmNameRequest *)m)->name;
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
	}
	havend_reconcile(h);
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

	if (!replica_is_quorate(h->replica) || h->decisions_in_flight > 0)
		return;
	members = replica_members(h->replica, &n);
	if (coordinator_of(members, n) != h->node_id)
		return;
	if (coordinator_reconcile(replica_state(h->replica), members, n, &d)
	    != 0)
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

static void
havend_signal(int signo, void *arg)
{
	struct havend	*h = arg;

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
	static const int	 signals[] = { SIGTERM, SIGINT };
	struct havend		 h;
	const char		*path = CONFIG_PATH;
	char			 errbuf[256];
	int			 c, check = 0, error = 0;

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
	if (ev_on_signals(h.base, signals, 2, havend_signal, &h) == -1)
		log_fatal("signals: %s", strerror(errno));
	log_info("node %s: serving %s", h.config.node_name,
	    h.config.control_socket);

	event_base_dispatch(h.base);

	membership_free(h.membership);
	replica_free(h.replica);
	control_free(h.control);
	ev_signals_free();
	event_base_free(h.base);
	return 0;
}
