/*
 * havend's control socket (DESIGN §7): one handler per request, the route
 * table that says which role may send it, and the roles from the replicated
 * state. A request that changes the cluster is proposed as a change and
 * answered once applied (havend_applied).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "havend.h"
#include "metrics.h"
#include "proto.h"
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

/*
 * Rolling upgrade (issue 17): the state's hosts for a reply, each with the
 * protocol its havend announced at the last sync (0: not a member), which
 * the replicated state does not hold. Shallow copies into *hosts and
 * *runtimes (free both, not what they point to).
 */
static Haven__Host **
havend_hosts_with_protocol(struct havend *h, Haven__Host **hosts_out,
    Haven__HostRuntime **runtimes_out)
{
	const Haven__ClusterState	*cs = replica_state(h->replica)->cs;
	Haven__Host			**list, *hosts;
	Haven__HostRuntime		*runtimes;
	size_t				 i;

	list = xcalloc(cs->n_hosts + 1, sizeof *list);
	hosts = xcalloc(cs->n_hosts + 1, sizeof *hosts);
	runtimes = xcalloc(cs->n_hosts + 1, sizeof *runtimes);
	for (i = 0; i < cs->n_hosts; i++) {
		hosts[i] = *cs->hosts[i];
		if (cs->hosts[i]->runtime != NULL) {
			runtimes[i] = *cs->hosts[i]->runtime;
			runtimes[i].protocol = replica_member_protocol(
			    h->replica, cs->hosts[i]->config->node_id);
			hosts[i].runtime = &runtimes[i];
		}
		list[i] = &hosts[i];
	}
	*hosts_out = hosts;
	*runtimes_out = runtimes;
	return list;
}

static void
havend_status(struct control_client *c, ProtobufCMessage *req, void *arg)
{
	struct havend		*h = arg;
	Haven__StatusReply	 r = HAVEN__STATUS_REPLY__INIT;
	Haven__ClusterSettings	 settings = HAVEN__CLUSTER_SETTINGS__INIT;
	Haven__Host		**list, *hosts;
	Haven__HostRuntime	*runtimes;

	r.node_name = h->config.node_name;
	r.node_id = h->node_id;
	r.quorate = h->quorate;
	r.members = h->members;
	r.n_members = h->nmembers;
	r.version = HAVEN_VERSION;
	list = havend_hosts_with_protocol(h, &hosts, &runtimes);
	r.hosts = list;
	r.n_hosts = replica_state(h->replica)->cs->n_hosts;
	r.now_us = now_us();
	if (replica_state(h->replica)->cs->settings != NULL)
		settings = *replica_state(h->replica)->cs->settings;
	settings.protocol = replica_protocol(h->replica);
	r.settings = &settings;
	control_reply(c, FRAME_STATUS_REPLY, &r.base);
	free(list);
	free(hosts);
	free(runtimes);
}

/*
 * A new VM's NICs: a MAC for each that has none, chosen here, once, so every
 * member applies the same (proto/nic.c: from the UUID, skipping MACs in use;
 * the apply step still refuses a duplicate), and the given ones written in
 * lowercase. The strings go into macs; *was keeps what the request had.
 */
static int
havend_vm_macs(struct havend *h, Haven__VmConfig *vc,
    char macs[NIC_MAX][NET_MAC_STRLEN + 1], char *was[NIC_MAX])
{
	uint8_t		 mac[NET_MAC_BYTES];
	size_t		 i;

	for (i = 0; i < vc->n_nics && i < NIC_MAX; i++) {
		was[i] = vc->nics[i]->mac;
		if (vc->nics[i]->mac != NULL &&
		    net_mac_parse(vc->nics[i]->mac, mac) == 0) {
			net_mac_format(mac, macs[i]);
			vc->nics[i]->mac = macs[i];
		}
	}
	return nic_mac_fill(replica_state(h->replica)->cs, vc, macs);
}

/* vm create: the change carries its own copy of the configuration. */
static void
havend_vm_create(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__VmCreateRequest	*req = (Haven__VmCreateRequest *)m;
	Haven__VmConfig		*config = req->config;
	Haven__Change		*change;
	Haven__VmCreate		*vc = NULL;
	char			 uuid[UUID_STRLEN + 1], *given, *machine, *cpu;
	char			 macs[NIC_MAX][NET_MAC_STRLEN + 1];
	char			*was[NIC_MAX];
	uint8_t			 u[UUID_BYTES];
	size_t			 i;
	int			 error, chosen;

	if (config == NULL || *config->name == '\0') {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "vm create needs a name and a configuration");
		return;
	}
	for (i = 0; i < config->n_nics; i++) {
		if (config->nics[i] == NULL) {
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "vm create: NIC %zu is empty", i);
			return;
		}
	}
	/* A new VM gets a UUID here, once, so every member stores the same. */
	given = config->uuid;
	if (*given == '\0') {
		if ((error = uuid_generate(u)) != 0) {
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
			    "cannot make a UUID for the VM: %s",
			    strerror(-error));
			return;
		}
		uuid_format(u, uuid);
		config->uuid = uuid;
	}
	/* The machine (issue 16): a new VM's disks on virtio unless asked
	 * otherwise (0 stays IDE for the VMs from before); its machine type
	 * pinned to what this host's QEMU runs for "pc", so that a QEMU of
	 * another version elsewhere runs the same machine or refuses it; its
	 * CPU model is the cluster's, taken at each cold start. */
	if (config->disk_bus == HAVEN__DISK_BUS__DISK_BUS_UNSPECIFIED)
		config->disk_bus = HAVEN__DISK_BUS__DISK_BUS_VIRTIO;
	machine = config->machine_type;
	/* Not pinned while a member of an older build is in the cluster
	 * (protocol 1 knows no machine type): "pc" as before. */
	if (tree_empty(machine) && replica_protocol(h->replica) >= 2)
		config->machine_type = h->qemu.pc;
	cpu = config->cpu_model;
	config->cpu_model = (char *)"";
	memset(macs, 0, sizeof macs);
	chosen = havend_vm_macs(h, config, macs, was);
	if (chosen == 0) {
		vc = calloc(1, sizeof *vc);
		haven__vm_create__init(vc);
		vc->config = (Haven__VmConfig *)havend_copy(&config->base);
	}
	/* The request frees what it had. */
	config->uuid = given;
	config->machine_type = machine;
	config->cpu_model = cpu;
	for (i = 0; i < config->n_nics && i < NIC_MAX; i++)
		config->nics[i]->mac = was[i];
	if (chosen == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "cannot choose a MAC for VM %s that no VM has; give each "
		    "NIC one with --nic ...,mac=", config->name);
		return;
	}
	change = havend_change_new();
	change->kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	change->vm_create = vc;
	havend_propose_for(h, c, change);
}

#define SET(f)	(1UL << TREE_VM_##f)

/* The request's fields as bits; -1 names one that is not a field. */
static long
vm_set_mask(const Haven__VmSetRequest *req, const char **bad)
{
	unsigned long	 mask = 0;
	size_t		 i;
	int		 f;

	for (i = 0; i < req->n_fields; i++) {
		if ((f = tree_vm_field_find(req->fields[i])) == -1) {
			*bad = req->fields[i];
			return -1;
		}
		mask |= 1UL << f;
	}
	return (long)mask;
}

/* m (a shallow copy of the VM's next configuration) with the request's
 * fields taken from given; its pointers are into both. */
static void
vm_set_merge(Haven__VmConfig *m, const Haven__VmConfig *given,
    unsigned long mask)
{
#define TAKE(bit, field) do { if (mask & (bit)) m->field = given->field; } while (0)
	TAKE(SET(MEMORY), memory_mib);
	TAKE(SET(VCPUS), vcpus);
	TAKE(SET(PRIORITY), priority);
	TAKE(SET(ANTI_AFFINITY), anti_affinity);
	TAKE(SET(FAILBACK), failback);
	TAKE(SET(ISOLATION), isolation_response);
	TAKE(SET(STOP_TIMEOUT), stop_timeout_s);
	TAKE(SET(MAX_RESTARTS), max_restarts);
	TAKE(SET(KERNEL), kernel);
	TAKE(SET(APPEND), kernel_append);
	TAKE(SET(INITRD), initrd);
	TAKE(SET(STORAGE_TIMEOUT), storage_timeout_s);
	TAKE(SET(DISK_BUS), disk_bus);
	TAKE(SET(FIRMWARE), firmware);
	TAKE(SET(CDROM), cdrom);
	TAKE(SET(BOOT), boot_order);
#undef TAKE
	if (mask & SET(VOLUME)) {
		m->n_volumes = given->n_volumes;
		m->volumes = given->volumes;
	}
	if (mask & SET(PREFER)) {
		m->n_preferred_owners = given->n_preferred_owners;
		m->preferred_owners = given->preferred_owners;
	}
	if (mask & SET(NIC)) {
		m->n_nics = given->n_nics;
		m->nics = given->nics;
	}
}

/*
 * vm set NAME: the VM's next configuration with the given fields changed,
 * proposed whole (the apply step decides what takes effect now and what at
 * the next start). A NIC given without a MAC keeps the MAC of the NIC it
 * replaces (the same place in the list), so the guest's card stays the
 * same card; one beyond the old list gets a new MAC like at create.
 */
static void
havend_vm_set(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend		*h = arg;
	Haven__VmSetRequest	*req = (Haven__VmSetRequest *)m;
	const Haven__Vm		*vm;
	const Haven__VmConfig	*base;
	Haven__VmConfig		 merged;
	Haven__VmSet		*vs = NULL;
	Haven__Change		*change;
	char			 macs[NIC_MAX][NET_MAC_STRLEN + 1];
	char			*was[NIC_MAX], *given[NIC_MAX];
	const char		*bad = NULL;
	long			 mask;
	size_t			 i;
	int			 chosen;

	if (req->config == NULL || *req->config->name == '\0') {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "vm set needs a VM name");
		return;
	}
	if ((mask = vm_set_mask(req, &bad)) <= 0) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    mask == 0 ? "vm set: nothing to change; give an option "
		    "('havenctl vm set --help')" : "vm set: '%.32s' is not "
		    "something vm set changes", bad != NULL &&
		    tree_text_valid(bad, 32) ? bad : "?");
		return;
	}
	if ((vm = tree_vm(replica_state(h->replica)->cs,
	    req->config->name)) == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "VM %s does not exist", req->config->name);
		return;
	}
	for (i = 0; i < req->config->n_nics; i++) {
		if (req->config->nics[i] == NULL || i >= NIC_MAX) {
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "vm set: NIC %zu is empty or one too many", i);
			return;
		}
	}
	base = tree_vm_next_config(vm);
	merged = *base;
	vm_set_merge(&merged, req->config, (unsigned long)mask);
	/* The MACs of the NICs replaced in place; the request keeps its own
	 * strings (restored below, it frees them). */
	for (i = 0; (mask & SET(NIC)) && i < merged.n_nics; i++) {
		given[i] = merged.nics[i]->mac;
		if ((given[i] == NULL || *given[i] == '\0') &&
		    i < base->n_nics)
			merged.nics[i]->mac = base->nics[i]->mac;
	}
	memset(macs, 0, sizeof macs);
	/* Only the request's own NICs are written to (never the state's). */
	chosen = (mask & SET(NIC)) ? havend_vm_macs(h, &merged, macs, was) : 0;
	if (chosen == 0) {
		vs = calloc(1, sizeof *vs);
		haven__vm_set__init(vs);
		vs->name = strdup(base->name);
		vs->base_digest = tree_config_digest(base);
		vs->config = (Haven__VmConfig *)havend_copy(&merged.base);
	}
	for (i = 0; (mask & SET(NIC)) && i < merged.n_nics; i++)
		merged.nics[i]->mac = given[i];
	if (chosen == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "cannot choose a MAC for VM %s that no VM has; give each "
		    "NIC one with --nic ...,mac=", base->name);
		return;
	}
	change = havend_change_new();
	change->kind_case = HAVEN__CHANGE__KIND_VM_SET;
	change->vm_set = vs;
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
		tokens[i] = tree_move(vms[i]->runtime)->live_token;
		tree_move_mut(vms[i]->runtime)->live_token = (char *)protobuf_c_empty_string;
	}
	r.vms = vms;
	r.n_vms = n;
	control_reply(c, FRAME_VM_LIST_REPLY, &r.base);
	for (i = 0; i < n; i++)
		if (vms[i]->runtime != NULL)
			tree_move_mut(vms[i]->runtime)->live_token = tokens[i];
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
	Haven__Host		**list, *hosts;
	Haven__HostRuntime	*runtimes;

	list = havend_hosts_with_protocol(h, &hosts, &runtimes);
	r.hosts = list;
	r.n_hosts = st->cs->n_hosts;
	r.members = h->members;
	r.n_members = h->nmembers;
	r.quorate = replica_is_quorate(h->replica);
	control_reply(c, FRAME_NODE_LIST_REPLY, &r.base);
	free(list);
	free(hosts);
	free(runtimes);
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
HAVEND_CHANGE_ROUTE(havend_volume_remove, VOLUME_REMOVE)
HAVEND_CHANGE_ROUTE(havend_pool_remove, POOL_REMOVE)
HAVEND_CHANGE_ROUTE(havend_node_remove, HOST_REMOVE)
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
			    tree_phase_name(vm->runtime->phase));
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
	Haven__ClusterSettings	 settings = HAVEN__CLUSTER_SETTINGS__INIT;

	/* With the running protocol, which the state does not hold. */
	if (st->cs->settings != NULL)
		settings = *st->cs->settings;
	settings.protocol = replica_protocol(h->replica);
	control_reply(c, FRAME_SETTINGS_REPLY, &settings.base);
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
havend_target_set(ProtobufCMessage *m)
{
	Haven__VmSetRequest	*req = (Haven__VmSetRequest *)m;

	return req->config != NULL ? req->config->name : NULL;
}

static const char *
havend_target_create(ProtobufCMessage *m)
{
	Haven__VmCreateRequest	*req = (Haven__VmCreateRequest *)m;

	return req->config != NULL ? req->config->name : NULL;
}

/* A status page login for the caller: the page knows them by uid and the
 * role they hold now (viewer at least, or the route refused them). */
static void
havend_status_login(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	struct havend			*h = arg;
	const struct identity		*who = control_client_identity(c);
	Haven__StatusLoginReply		 r = HAVEN__STATUS_LOGIN_REPLY__INIT;
	enum role			 role = ROLE_NONE;
	char				 url[512], err[256];

	(void)havend_authorize(who, REQUEST_READ, NULL, &role, h);
	if (role < ROLE_VIEWER)
		role = ROLE_VIEWER;	/* root, or a read the route allowed */
	if (metrics_login(h->metrics, who->uid, role, h->config.node_name,
	    url, sizeof url, err, sizeof err) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
		    "%s", err);
		return;
	}
	r.url = url;
	r.role = (char *)roles_name(role);
	r.valid_s = 120;
	control_reply(c, FRAME_STATUS_LOGIN_REPLY, &r.base);
}

const struct control_route havend_routes[] = {
	{ FRAME_STATUS_REQUEST, REQUEST_READ, 0, NULL, havend_status },
	{ FRAME_VM_LIST, REQUEST_READ, 0, NULL, havend_vm_list },
	{ FRAME_VM_SHOW, REQUEST_READ, 0, havend_target_name, havend_vm_show },
	{ FRAME_NODE_LIST, REQUEST_READ, 0, NULL, havend_node_list },
	{ FRAME_VM_CREATE, REQUEST_ADMIN, 1, havend_target_create,
	    havend_vm_create },
	{ FRAME_VM_DELETE, REQUEST_ADMIN, 1, havend_target_name,
	    havend_vm_delete },
	{ FRAME_VM_SET, REQUEST_ADMIN, 1, havend_target_set, havend_vm_set },
	{ FRAME_VM_START, REQUEST_VM, 1, havend_target_name, havend_vm_start },
	{ FRAME_VM_STOP, REQUEST_VM, 1, havend_target_name, havend_vm_stop },
	{ FRAME_ROLE_LIST, REQUEST_READ, 0, NULL, havend_role_list },
	{ FRAME_EVENTS, REQUEST_READ, 0, NULL, havend_events },
	{ FRAME_ROLE_GRANT, REQUEST_ADMIN, 1, NULL, havend_role_grant },
	{ FRAME_ROLE_REVOKE, REQUEST_ADMIN, 1, NULL, havend_role_revoke },
	{ FRAME_POOL_ADD, REQUEST_ADMIN, 1, NULL, havend_pool_add },
	{ FRAME_VOLUME_ADD, REQUEST_ADMIN, 1, NULL, havend_volume_add },
	{ FRAME_VOLUME_REMOVE, REQUEST_ADMIN, 1, NULL, havend_volume_remove },
	{ FRAME_POOL_REMOVE, REQUEST_ADMIN, 1, NULL, havend_pool_remove },
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
	{ FRAME_VM_CONSOLE_ATTACH, REQUEST_VM, 1, havend_target_console_attach,
	    havend_vm_console_attach },
	{ FRAME_STATUS_LOGIN, REQUEST_READ, 1, NULL, havend_status_login },
	{ FRAME_NODE_REMOVE, REQUEST_ADMIN, 1, NULL, havend_node_remove },
};
const size_t havend_nroutes = sizeof havend_routes / sizeof havend_routes[0];

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
int
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
