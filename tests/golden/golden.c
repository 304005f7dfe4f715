/*
 * haven-golden: runs a scenario file against the replicated state, the
 * coordinator and the sync decision, with no corosync (STYLE: golden files,
 * as Pacemaker's scheduler tests and Proxmox's HA simulator). Each line is a
 * command or an expectation; a mismatch prints what was expected beside what
 * came, and the run exits 1. The format is described in README.md here.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"
#include "common.h"
#include "clusterd.h"
#include "proto.h"

#define MAX_TOKENS	64
#define MAX_LIST	32
#define MAX_MEMBERS	64
#define MAX_SLOTS	8
#define LINE_MAX_LEN	1024

struct slot {
	char				 name[32];
	struct coordinator_decisions	 d;
};

struct run {
	const char		*file;
	int			 line;
	int			 failures;
	struct cluster		*st;
	uint32_t		 members[MAX_MEMBERS];
	size_t			 nmembers;
	/* Hosts up in corosync though not in the group ("present"). */
	uint32_t		 present[MAX_MEMBERS];
	size_t			 npresent;
	int			 quorate;
	uint64_t		 clock_us;
	/* The last change or apply: unchecked refusals fail the run. */
	int			 last_result;
	char			 last_error[256];
	int			 last_unchecked;
	int			 last_line;
	/* Results of the last `apply decisions`. */
	char			 results[512];
	struct slot		 slots[MAX_SLOTS];
	size_t			 nslots;
	/* The last sync. */
	struct sync_member	 sync[MAX_MEMBERS];
	uint8_t			 needs[MAX_MEMBERS];
	size_t			 nsync;
	struct sync_decision	 decision;
	int			 synced;
	/* Remembered digests. */
	char			 dnames[MAX_SLOTS][32];
	uint8_t			 digests[MAX_SLOTS][CLUSTER_DIGEST_SIZE];
	size_t			 ndigests;
};

static void
mismatch(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mismatch(struct run *r, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "%s:%d: ", r->file, r->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	r->failures++;
}

/* --- key=value arguments ------------------------------------------------- */

struct args {
	char	*key[MAX_TOKENS];
	char	*value[MAX_TOKENS];
	size_t	 n;
};

static const char *
arg(const struct args *a, const char *key)
{
	size_t	 i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->value[i];
	return NULL;
}

static const char *
arg_str(const struct args *a, const char *key)
{
	const char	*v = arg(a, key);

	return v == NULL ? "" : v;
}

static uint64_t
arg_u64(struct run *r, const struct args *a, const char *key)
{
	const char	*v = arg(a, key);
	char		*end;
	uint64_t	 n;

	if (v == NULL)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		mismatch(r, "%s=%s is not a number", key, v);
	return n;
}

static int
arg_bool(const struct args *a, const char *key)
{
	const char	*v = arg(a, key);

	return v != NULL && (strcmp(v, "yes") == 0 || strcmp(v, "1") == 0 ||
	    strcmp(v, "true") == 0 || strcmp(v, "on") == 0);
}

/* Splits "a,b,c" in place. */
static size_t
split_list(char *s, char **out, size_t max)
{
	size_t	 n = 0;
	char	*tok, *save = NULL;

	if (s == NULL)
		return 0;
	for (tok = strtok_r(s, ",", &save); tok != NULL && n < max;
	    tok = strtok_r(NULL, ",", &save))
		out[n++] = tok;
	return n;
}

static int
phase_parse(const char *s)
{
	int	 p;

	for (p = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
	    p <= HAVEN__VM_PHASE__VM_PHASE_PAUSED; p++)
		if (strcmp(s, tree_phase_name((Haven__VmPhase)p)) == 0)
			return p;
	return 0;
}

/* --- change ... ----------------------------------------------------------- */

/* Everything a Change points at, on the stack of cmd_change. */
struct change_buf {
	Haven__Change		 c;
	Haven__HostAdd		 host_add;
	Haven__HostConfig	 host_config;
	Haven__HostRemove	 host_remove;
	Haven__HostLost		 host_lost;
	Haven__HostJoin		 host_join;
	Haven__HostMaintenance	 host_maintenance;
	Haven__HostFence	 host_fence;
	Haven__HostBridges	 host_bridges;
	Haven__HostStorage	 host_storage;
	Haven__HostQemu		 host_qemu;
	char			*machines[MAX_LIST];
	char			*cpus[MAX_LIST];
	Haven__PoolHealth	 health[MAX_LIST];
	Haven__PoolHealth	*healths[MAX_LIST];
	char			*bridges[MAX_LIST];
	char			*filtering[MAX_LIST];
	Haven__Nic		 nic[MAX_LIST];
	Haven__Nic		*nics[MAX_LIST];
	char			 macs[MAX_LIST][18];
	Haven__PoolAdd		 pool_add;
	Haven__PoolConfig	 pool_config;
	Haven__VolumeAdd	 volume_add;
	Haven__VolumeRemove	 volume_remove;
	Haven__PoolRemove	 pool_remove;
	Haven__VolumeConfig	 volume_config;
	Haven__VmCreate		 vm_create;
	Haven__VmConfig		 vm_config;
	Haven__VmDelete		 vm_delete;
	Haven__VmSet		 vm_set;
	Haven__VmSetDesired	 vm_set_desired;
	Haven__VmTransition	 vm_transition;
	Haven__VmAssign		 vm_assign;
	Haven__VmMigrate	 vm_migrate;
	Haven__VmLive		 vm_live;
	Haven__VmStorageFence	 vm_storage_fence;
	Haven__RoleGrant	 role_grant;
	Haven__RoleBinding	 binding;
	Haven__RoleRevoke	 role_revoke;
	Haven__SettingsSet	 settings_set;
	Haven__ClusterSettings	 settings;
	char			*fields[4];
	char			*volumes[MAX_LIST];
	uint32_t		 preferred[MAX_LIST];
	char			*patterns[MAX_LIST];
};

/* nics=BRIDGE[/MAC[/VLAN[/MODEL]]],...: NICs without a MAC get one as
 * havend chooses it (from uuid=, or "" when not given). */
static void
change_nics(struct run *r, struct args *a, struct change_buf *b,
    Haven__VmConfig *vc)
{
	char		*list[MAX_LIST], *f, *save;
	const char	*field;
	Haven__NicModel	 model;
	size_t		 i, n;

	n = split_list((char *)arg(a, "nics"), list, MAX_LIST);
	for (i = 0; i < n; i++) {
		haven__nic__init(&b->nic[i]);
		save = NULL;
		b->nic[i].bridge = strtok_r(list[i], "/", &save);
		if ((f = strtok_r(NULL, "/", &save)) != NULL &&
		    strcmp(f, "-") != 0)
			b->nic[i].mac = f;
		if ((f = strtok_r(NULL, "/", &save)) != NULL)
			b->nic[i].vlan = (uint32_t)strtoul(f, NULL, 10);
		if ((field = strtok_r(NULL, "/", &save)) != NULL) {
			if (nic_model_parse(field, &model) == -1)
				b->nic[i].model = 99;	/* refused by apply */
			else
				b->nic[i].model = model;
		}
		b->nics[i] = &b->nic[i];
	}
	vc->nics = b->nics;
	vc->n_nics = n;
	if (nic_mac_fill(r->st->cs, vc, b->macs) == -1)
		mismatch(r, "no MAC left to choose");
}

static char *
underscores_to_spaces(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (*p == '_')
			*p = ' ';
	return s;
}

static int
change_build(struct run *r, const char *kind, struct args *a,
    struct change_buf *b)
{
	Haven__Change	*c = &b->c;
	char		*list[MAX_LIST];
	size_t		 i, n;
	const char	*v;

	haven__change__init(c);
	c->epoch = r->st->cs->epoch;
	c->timestamp_us = r->clock_us;
	if (strcmp(kind, "host_add") == 0) {
		haven__host_add__init(&b->host_add);
		haven__host_config__init(&b->host_config);
		b->host_config.node_id = (uint32_t)arg_u64(r, a, "id");
		b->host_config.name = (char *)arg_str(a, "name");
		b->host_config.memory_mib = arg_u64(r, a, "memory");
		b->host_config.vcpus = (uint32_t)arg_u64(r, a, "vcpus");
		b->host_config.n_vm_bridges = split_list((char *)arg(a,
		    "bridges"), b->bridges, MAX_LIST);
		b->host_config.vm_bridges = b->bridges;
		b->host_config.n_vlan_filtering = split_list((char *)arg(a,
		    "vlan_filtering"), b->filtering, MAX_LIST);
		b->host_config.vlan_filtering = b->filtering;
		b->host_config.n_machine_types = split_list((char *)arg(a,
		    "machines"), b->machines, MAX_LIST);
		b->host_config.machine_types = b->machines;
		b->host_config.n_cpu_models = split_list((char *)arg(a,
		    "cpus"), b->cpus, MAX_LIST);
		b->host_config.cpu_models = b->cpus;
		b->host_add.config = &b->host_config;
		c->kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c->host_add = &b->host_add;
	} else if (strcmp(kind, "host_remove") == 0) {
		haven__host_remove__init(&b->host_remove);
		b->host_remove.node_id = (uint32_t)arg_u64(r, a, "id");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_REMOVE;
		c->host_remove = &b->host_remove;
	} else if (strcmp(kind, "host_lost") == 0) {
		haven__host_lost__init(&b->host_lost);
		b->host_lost.node_id = (uint32_t)arg_u64(r, a, "id");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_LOST;
		c->host_lost = &b->host_lost;
	} else if (strcmp(kind, "host_join") == 0) {
		haven__host_join__init(&b->host_join);
		b->host_join.node_id = (uint32_t)arg_u64(r, a, "id");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_JOIN;
		c->host_join = &b->host_join;
	} else if (strcmp(kind, "host_maintenance") == 0) {
		haven__host_maintenance__init(&b->host_maintenance);
		b->host_maintenance.node_id = (uint32_t)arg_u64(r, a, "id");
		b->host_maintenance.maintenance = arg_bool(a, "on");
		b->host_maintenance.failback = arg_bool(a, "failback");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_MAINTENANCE;
		c->host_maintenance = &b->host_maintenance;
	} else if (strcmp(kind, "host_bridges") == 0) {
		haven__host_bridges__init(&b->host_bridges);
		b->host_bridges.node_id = (uint32_t)arg_u64(r, a, "id");
		b->host_bridges.n_bridges = split_list((char *)arg(a,
		    "bridges"), b->bridges, MAX_LIST);
		b->host_bridges.bridges = b->bridges;
		b->host_bridges.n_vlan_filtering = split_list((char *)arg(a,
		    "vlan_filtering"), b->filtering, MAX_LIST);
		b->host_bridges.vlan_filtering = b->filtering;
		c->kind_case = HAVEN__CHANGE__KIND_HOST_BRIDGES;
		c->host_bridges = &b->host_bridges;
	} else if (strcmp(kind, "host_qemu") == 0) {
		/* What its QEMU offers: machines=a,b cpus=x,y version=V. */
		haven__host_qemu__init(&b->host_qemu);
		b->host_qemu.node_id = (uint32_t)arg_u64(r, a, "id");
		b->host_qemu.n_machine_types = split_list((char *)arg(a,
		    "machines"), b->machines, MAX_LIST);
		b->host_qemu.machine_types = b->machines;
		b->host_qemu.n_cpu_models = split_list((char *)arg(a, "cpus"),
		    b->cpus, MAX_LIST);
		b->host_qemu.cpu_models = b->cpus;
		b->host_qemu.qemu_version = (char *)arg_str(a, "version");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_QEMU;
		c->host_qemu = &b->host_qemu;
	} else if (strcmp(kind, "host_storage") == 0) {
		/* pools=NAME:yes|no[:SINCE_US],...; since defaults to now. */
		haven__host_storage__init(&b->host_storage);
		b->host_storage.node_id = (uint32_t)arg_u64(r, a, "id");
		n = split_list((char *)arg(a, "pools"), list, MAX_LIST);
		for (i = 0; i < n; i++) {
			char	*rest = list[i], *f;

			haven__pool_health__init(&b->health[i]);
			b->health[i].pool = strsep(&rest, ":");
			f = strsep(&rest, ":");
			b->health[i].reachable = f != NULL &&
			    strcmp(f, "yes") == 0;
			f = strsep(&rest, ":");
			b->health[i].since_us = f != NULL ?
			    strtoull(f, NULL, 10) : r->clock_us;
			b->healths[i] = &b->health[i];
		}
		b->host_storage.pools = b->healths;
		b->host_storage.n_pools = n;
		c->kind_case = HAVEN__CHANGE__KIND_HOST_STORAGE;
		c->host_storage = &b->host_storage;
	} else if (strcmp(kind, "host_fence") == 0) {
		haven__host_fence__init(&b->host_fence);
		b->host_fence.node_id = (uint32_t)arg_u64(r, a, "id");
		v = arg_str(a, "status");
		b->host_fence.status = strcmp(v, "pending") == 0 ?
		    HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING :
		    strcmp(v, "fenced") == 0 ?
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED :
		    strcmp(v, "failed") == 0 ?
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED :
		    HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
		c->kind_case = HAVEN__CHANGE__KIND_HOST_FENCE;
		c->host_fence = &b->host_fence;
	} else if (strcmp(kind, "pool_add") == 0) {
		haven__pool_add__init(&b->pool_add);
		haven__pool_config__init(&b->pool_config);
		b->pool_config.name = (char *)arg_str(a, "name");
		b->pool_config.portal = (char *)arg_str(a, "portal");
		b->pool_config.target = (char *)arg_str(a, "target");
		b->pool_add.config = &b->pool_config;
		c->kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
		c->pool_add = &b->pool_add;
	} else if (strcmp(kind, "volume_add") == 0) {
		haven__volume_add__init(&b->volume_add);
		haven__volume_config__init(&b->volume_config);
		b->volume_config.name = (char *)arg_str(a, "name");
		b->volume_config.pool = (char *)arg_str(a, "pool");
		b->volume_config.size_bytes = arg_u64(r, a, "size");
		b->volume_config.lun = (uint32_t)arg_u64(r, a, "lun");
		b->volume_add.config = &b->volume_config;
		c->kind_case = HAVEN__CHANGE__KIND_VOLUME_ADD;
		c->volume_add = &b->volume_add;
	} else if (strcmp(kind, "volume_remove") == 0) {
		haven__volume_remove__init(&b->volume_remove);
		b->volume_remove.name = (char *)arg_str(a, "name");
		c->kind_case = HAVEN__CHANGE__KIND_VOLUME_REMOVE;
		c->volume_remove = &b->volume_remove;
	} else if (strcmp(kind, "pool_remove") == 0) {
		haven__pool_remove__init(&b->pool_remove);
		b->pool_remove.name = (char *)arg_str(a, "name");
		c->kind_case = HAVEN__CHANGE__KIND_POOL_REMOVE;
		c->pool_remove = &b->pool_remove;
	} else if (strcmp(kind, "vm_create") == 0) {
		Haven__VmConfig	*vc = &b->vm_config;

		haven__vm_create__init(&b->vm_create);
		haven__vm_config__init(vc);
		vc->name = (char *)arg_str(a, "name");
		vc->uuid = (char *)arg_str(a, "uuid");
		vc->memory_mib = arg_u64(r, a, "memory");
		vc->vcpus = (uint32_t)(arg(a, "vcpus") ? arg_u64(r, a, "vcpus") : 1);
		vc->n_volumes = split_list((char *)arg(a, "volumes"), b->volumes,
		    MAX_LIST);
		vc->volumes = b->volumes;
		vc->priority = (uint32_t)arg_u64(r, a, "priority");
		n = split_list((char *)arg(a, "preferred"), list, MAX_LIST);
		for (i = 0; i < n; i++)
			b->preferred[i] = (uint32_t)strtoul(list[i], NULL, 10);
		vc->n_preferred_owners = n;
		vc->preferred_owners = b->preferred;
		vc->anti_affinity = (char *)arg_str(a, "anti");
		vc->failback = arg_bool(a, "failback");
		vc->max_restarts = (uint32_t)arg_u64(r, a, "max_restarts");
		vc->storage_timeout_s = (uint32_t)arg_u64(r, a,
		    "storage_timeout");
		vc->kernel = (char *)arg_str(a, "kernel");
		vc->initrd = (char *)arg_str(a, "initrd");
		/* disk_bus=ide|virtio|scsi (none: 0, a VM from before);
		 * machine=TYPE as havend pins it. */
		if (arg(a, "disk_bus") != NULL &&
		    machine_disk_bus_parse(arg(a, "disk_bus"),
		    &vc->disk_bus) == -1)
			vc->disk_bus = 99;	/* refused by apply */
		vc->machine_type = (char *)arg_str(a, "machine");
		vc->firmware = (char *)arg_str(a, "firmware");
		vc->cdrom = (char *)arg_str(a, "cdrom");
		vc->boot_order = (char *)arg_str(a, "boot");
		change_nics(r, a, b, vc);
		b->vm_create.config = vc;
		c->kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
		c->vm_create = &b->vm_create;
	} else if (strcmp(kind, "vm_set") == 0) {
		/* vm set as havend proposes it: the VM's next configuration
		 * with the given fields changed; base=0 stands for a change
		 * made meanwhile. */
		Haven__VmConfig		*vc = &b->vm_config;
		const Haven__Vm		*vm = cluster_vm(r->st, arg_str(a, "name"));

		haven__vm_set__init(&b->vm_set);
		if (vm == NULL)
			haven__vm_config__init(vc);
		else
			*vc = *tree_vm_next_config(vm);
		vc->name = (char *)arg_str(a, "name");
		if (arg(a, "memory"))
			vc->memory_mib = arg_u64(r, a, "memory");
		if (arg(a, "vcpus"))
			vc->vcpus = (uint32_t)arg_u64(r, a, "vcpus");
		if (arg(a, "priority"))
			vc->priority = (uint32_t)arg_u64(r, a, "priority");
		if (arg(a, "volumes")) {
			vc->n_volumes = split_list((char *)arg(a, "volumes"),
			    b->volumes, MAX_LIST);
			vc->volumes = b->volumes;
		}
		if (arg(a, "nics"))
			change_nics(r, a, b, vc);
		if (arg(a, "disk_bus") != NULL &&
		    machine_disk_bus_parse(arg(a, "disk_bus"),
		    &vc->disk_bus) == -1)
			vc->disk_bus = 99;
		if (arg(a, "uuid"))
			vc->uuid = (char *)arg_str(a, "uuid");
		if (arg(a, "firmware"))
			vc->firmware = (char *)arg_str(a, "firmware");
		if (arg(a, "cdrom"))
			vc->cdrom = (char *)arg_str(a, "cdrom");
		if (arg(a, "boot"))
			vc->boot_order = (char *)arg_str(a, "boot");
		b->vm_set.name = vc->name;
		b->vm_set.config = vc;
		b->vm_set.base_digest = vm == NULL || (arg(a, "base") &&
		    arg_u64(r, a, "base") == 0) ? 0 :
		    tree_config_digest(tree_vm_next_config(vm));
		c->kind_case = HAVEN__CHANGE__KIND_VM_SET;
		c->vm_set = &b->vm_set;
	} else if (strcmp(kind, "vm_delete") == 0) {
		haven__vm_delete__init(&b->vm_delete);
		b->vm_delete.name = (char *)arg_str(a, "name");
		c->kind_case = HAVEN__CHANGE__KIND_VM_DELETE;
		c->vm_delete = &b->vm_delete;
	} else if (strcmp(kind, "vm_set_desired") == 0) {
		haven__vm_set_desired__init(&b->vm_set_desired);
		b->vm_set_desired.name = (char *)arg_str(a, "name");
		v = arg_str(a, "desired");
		b->vm_set_desired.desired = strcmp(v, "running") == 0 ?
		    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING :
		    strcmp(v, "stopped") == 0 ?
		    HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED :
		    HAVEN__DESIRED_STATE__DESIRED_STATE_UNSPECIFIED;
		c->kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
		c->vm_set_desired = &b->vm_set_desired;
	} else if (strcmp(kind, "vm_transition") == 0) {
		haven__vm_transition__init(&b->vm_transition);
		b->vm_transition.name = (char *)arg_str(a, "name");
		b->vm_transition.generation = arg_u64(r, a, "gen");
		b->vm_transition.phase = phase_parse(arg_str(a, "phase"));
		b->vm_transition.target = (uint32_t)arg_u64(r, a, "target");
		b->vm_transition.state_refused = arg_bool(a, "refused");
		/* One token: underscores read as spaces, as the worker
		 * writes it ("storage lost at ..."). */
		b->vm_transition.detail = underscores_to_spaces(
		    (char *)arg_str(a, "detail"));
		c->kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
		c->vm_transition = &b->vm_transition;
	} else if (strcmp(kind, "vm_migrate") == 0) {
		haven__vm_migrate__init(&b->vm_migrate);
		b->vm_migrate.name = (char *)arg_str(a, "name");
		b->vm_migrate.target = (uint32_t)arg_u64(r, a, "to");
		b->vm_migrate.quick = arg_bool(a, "quick");
		c->kind_case = HAVEN__CHANGE__KIND_VM_MIGRATE;
		c->vm_migrate = &b->vm_migrate;
	} else if (strcmp(kind, "vm_live") == 0) {
		haven__vm_live__init(&b->vm_live);
		b->vm_live.name = (char *)arg_str(a, "name");
		b->vm_live.generation = arg_u64(r, a, "gen");
		v = arg_str(a, "step");
		b->vm_live.step = strcmp(v, "ready") == 0 ?
		    HAVEN__LIVE_STEP__LIVE_STEP_READY :
		    strcmp(v, "stopped") == 0 ?
		    HAVEN__LIVE_STEP__LIVE_STEP_STOPPED :
		    strcmp(v, "received") == 0 ?
		    HAVEN__LIVE_STEP__LIVE_STEP_RECEIVED :
		    strcmp(v, "failed") == 0 ?
		    HAVEN__LIVE_STEP__LIVE_STEP_FAILED :
		    strcmp(v, "progress") == 0 ?
		    HAVEN__LIVE_STEP__LIVE_STEP_PROGRESS :
		    HAVEN__LIVE_STEP__LIVE_STEP_UNSPECIFIED;
		b->vm_live.remaining_bytes = arg_u64(r, a, "remaining");
		b->vm_live.total_bytes = arg_u64(r, a, "total");
		b->vm_live.endpoint = (char *)arg_str(a, "endpoint");
		b->vm_live.token = (char *)arg_str(a, "token");
		b->vm_live.at_us = arg_u64(r, a, "at");
		b->vm_live.detail = (char *)arg_str(a, "detail");
		c->kind_case = HAVEN__CHANGE__KIND_VM_LIVE;
		c->vm_live = &b->vm_live;
	} else if (strcmp(kind, "vm_storage_fence") == 0) {
		haven__vm_storage_fence__init(&b->vm_storage_fence);
		b->vm_storage_fence.name = (char *)arg_str(a, "name");
		b->vm_storage_fence.generation = arg_u64(r, a, "gen");
		v = arg_str(a, "step");
		b->vm_storage_fence.step = strcmp(v, "order") == 0 ?
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER :
		    strcmp(v, "fenced") == 0 ?
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED :
		    strcmp(v, "failed") == 0 ?
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED :
		    strcmp(v, "cancel") == 0 ?
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL :
		    strcmp(v, "giveup") == 0 ?
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP :
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_UNSPECIFIED;
		b->vm_storage_fence.host = (uint32_t)arg_u64(r, a, "host");
		b->vm_storage_fence.by = (uint32_t)arg_u64(r, a, "by");
		b->vm_storage_fence.attempt = (uint32_t)arg_u64(r, a, "attempt");
		b->vm_storage_fence.pool = (char *)arg_str(a, "pool");
		b->vm_storage_fence.detail = (char *)arg_str(a, "detail");
		c->kind_case = HAVEN__CHANGE__KIND_VM_STORAGE_FENCE;
		c->vm_storage_fence = &b->vm_storage_fence;
	} else if (strcmp(kind, "vm_assign") == 0) {
		haven__vm_assign__init(&b->vm_assign);
		b->vm_assign.name = (char *)arg_str(a, "name");
		b->vm_assign.generation = arg_u64(r, a, "gen");
		b->vm_assign.owner = (uint32_t)arg_u64(r, a, "owner");
		b->vm_assign.phase = phase_parse(arg(a, "phase") ?
		    arg(a, "phase") : "starting");
		c->kind_case = HAVEN__CHANGE__KIND_VM_ASSIGN;
		c->vm_assign = &b->vm_assign;
	} else if (strcmp(kind, "role_grant") == 0) {
		haven__role_grant__init(&b->role_grant);
		haven__role_binding__init(&b->binding);
		b->binding.principal = (char *)arg_str(a, "principal");
		v = arg_str(a, "role");
		b->binding.role = strcmp(v, "admin") == 0 ? HAVEN__ROLE__ROLE_ADMIN :
		    strcmp(v, "operator") == 0 ? HAVEN__ROLE__ROLE_OPERATOR :
		    strcmp(v, "viewer") == 0 ? HAVEN__ROLE__ROLE_VIEWER :
		    HAVEN__ROLE__ROLE_UNSPECIFIED;
		b->binding.n_vm_patterns = split_list((char *)arg(a, "patterns"),
		    b->patterns, MAX_LIST);
		b->binding.vm_patterns = b->patterns;
		b->role_grant.binding = &b->binding;
		c->kind_case = HAVEN__CHANGE__KIND_ROLE_GRANT;
		c->role_grant = &b->role_grant;
	} else if (strcmp(kind, "settings_set") == 0) {
		haven__settings_set__init(&b->settings_set);
		haven__cluster_settings__init(&b->settings);
		b->settings.host_failures_to_tolerate =
		    (uint32_t)arg_u64(r, a, "failures_to_tolerate");
		/* storage_timeout=/storage_giveup=: only those named change */
		if (arg(a, "storage_timeout") != NULL) {
			b->settings.storage_timeout_s =
			    (uint32_t)arg_u64(r, a, "storage_timeout");
			b->fields[b->settings_set.n_fields++] =
			    (char *)"storage_timeout_s";
		}
		if (arg(a, "storage_giveup") != NULL) {
			b->settings.storage_giveup_s =
			    (uint32_t)arg_u64(r, a, "storage_giveup");
			b->fields[b->settings_set.n_fields++] =
			    (char *)"storage_giveup_s";
		}
		if (arg(a, "cpu_model") != NULL) {
			b->settings.cpu_model = (char *)arg_str(a, "cpu_model");
			b->fields[b->settings_set.n_fields++] =
			    (char *)"cpu_model";
		}
		b->settings_set.fields = b->fields;
		b->settings_set.settings = &b->settings;
		c->kind_case = HAVEN__CHANGE__KIND_SETTINGS_SET;
		c->settings_set = &b->settings_set;
	} else if (strcmp(kind, "role_revoke") == 0) {
		haven__role_revoke__init(&b->role_revoke);
		b->role_revoke.principal = (char *)arg_str(a, "principal");
		c->kind_case = HAVEN__CHANGE__KIND_ROLE_REVOKE;
		c->role_revoke = &b->role_revoke;
	} else {
		mismatch(r, "unknown change kind %s", kind);
		return -1;
	}
	/* from=N: the member that proposed it (live steps check it). */
	c->origin = (uint32_t)arg_u64(r, a, "from");
	return 0;
}

/* -1: a sync input sync_decide refused. */
static const char *
result_name(int result)
{
	return result < 0 ? "refused" : cluster_result_name(result);
}

static void
record(struct run *r, int result, const char *err)
{
	r->last_result = result;
	snprintf(r->last_error, sizeof r->last_error, "%s", err);
	r->last_unchecked = result != CLUSTER_OK;
	r->last_line = r->line;
}

static void
cmd_change(struct run *r, char **tok, size_t ntok)
{
	struct change_buf	 b;
	struct args		 a = { .n = 0 };
	char			 err[256] = "";
	size_t			 i;
	char			*eq;

	if (ntok < 2) {
		mismatch(r, "change needs a kind");
		return;
	}
	for (i = 2; i < ntok; i++) {
		if ((eq = strchr(tok[i], '=')) == NULL) {
			mismatch(r, "argument %s is not key=value", tok[i]);
			return;
		}
		*eq = '\0';
		a.key[a.n] = tok[i];
		a.value[a.n++] = eq + 1;
	}
	if (change_build(r, tok[1], &a, &b) < 0)
		return;
	r->clock_us += 1000000;
	record(r, cluster_apply(r->st, &b.c, r->quorate, err, sizeof err), err);
}

/* --- decisions ------------------------------------------------------------ */

static struct slot *
slot_get(struct run *r, const char *name, int create)
{
	size_t	 i;

	for (i = 0; i < r->nslots; i++)
		if (strcmp(r->slots[i].name, name) == 0)
			return &r->slots[i];
	if (!create || r->nslots == MAX_SLOTS)
		return NULL;
	snprintf(r->slots[r->nslots].name, sizeof r->slots[0].name, "%s", name);
	return &r->slots[r->nslots++];
}

static void
cmd_reconcile(struct run *r)
{
	struct slot	*s = slot_get(r, "last", 1);

	coordinator_decisions_free(&s->d);
	uint32_t	 up[2 * MAX_MEMBERS];
	size_t		 nup = 0, i;

	/* Present: the members plus hosts up whose havend is away. */
	for (i = 0; i < r->nmembers; i++)
		up[nup++] = r->members[i];
	for (i = 0; i < r->npresent; i++)
		up[nup++] = r->present[i];
	if (coordinator_reconcile_present(r->st, r->members, r->nmembers, up,
	    nup, &s->d) < 0)
		mismatch(r, "reconcile failed: %s", strerror(errno));
}

static void
describe_all(const struct coordinator_decisions *d, char *buf, size_t len)
{
	char	 one[160];
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < d->n; i++) {
		coordinator_describe(d->changes[i], one, sizeof one);
		snprintf(buf + strlen(buf), len - strlen(buf), "    %s\n", one);
	}
	if (d->n == 0)
		snprintf(buf, len, "    (none)\n");
}

/* expect decisions none | expect decisions: block until `end` | expect
 * decision TEXT (one of them). */
static void
cmd_expect_decisions(struct run *r, FILE *f, char *rest, int one)
{
	struct slot	*s = slot_get(r, "last", 1);
	char		 want[4096] = "", got[4096], line[LINE_MAX_LEN], text[160];
	size_t		 i;
	int		 found = 0;
	char		*p;

	if (one) {
		for (i = 0; i < s->d.n; i++) {
			coordinator_describe(s->d.changes[i], text, sizeof text);
			if (strcmp(text, rest) == 0)
				found = 1;
		}
		if (!found) {
			describe_all(&s->d, got, sizeof got);
			mismatch(r, "expected decision \"%s\" among:\n%s", rest,
			    got);
		}
		return;
	}
	if (strcmp(rest, "none") == 0) {
		snprintf(want, sizeof want, "    (none)\n");
	} else {
		while (fgets(line, sizeof line, f) != NULL) {
			r->line++;
			line[strcspn(line, "\n")] = '\0';
			for (p = line; isspace((unsigned char)*p); p++)
				;
			if (*p == '#' || *p == '\0')
				continue;
			if (strcmp(p, "end") == 0)
				break;
			snprintf(want + strlen(want), sizeof want - strlen(want),
			    "    %s\n", p);
		}
		if (want[0] == '\0')
			snprintf(want, sizeof want, "    (none)\n");
	}
	describe_all(&s->d, got, sizeof got);
	if (strcmp(want, got) != 0)
		mismatch(r, "decisions differ\n  expected:\n%s  got:\n%s", want,
		    got);
}

static void
cmd_apply_decisions(struct run *r, const char *name)
{
	struct slot	*s = slot_get(r, name, 0);
	char		 err[256];
	size_t		 i;
	int		 result;

	r->results[0] = '\0';
	if (s == NULL) {
		mismatch(r, "no decisions named %s", name);
		return;
	}
	for (i = 0; i < s->d.n; i++) {
		result = cluster_apply(r->st, s->d.changes[i], r->quorate, err,
		    sizeof err);
		snprintf(r->results + strlen(r->results),
		    sizeof r->results - strlen(r->results), "%s%s",
		    i ? " " : "", cluster_result_name(result));
		/* Refusals other than stale are not expected of decisions. */
		if (result != CLUSTER_OK && result != CLUSTER_E_STALE)
			record(r, result, err);
	}
	if (s->d.n == 0)
		snprintf(r->results, sizeof r->results, "none");
}

static void
cmd_save_decisions(struct run *r, const char *name)
{
	struct slot	*from = slot_get(r, "last", 1), *to;

	if ((to = slot_get(r, name, 1)) == NULL || to == from) {
		mismatch(r, "cannot save decisions as %s", name);
		return;
	}
	coordinator_decisions_free(&to->d);
	to->d = from->d;
	memset(&from->d, 0, sizeof from->d);
}

/* --- state expectations --------------------------------------------------- */

static void
check_field(struct run *r, const char *what, const char *key, const char *want,
    const char *got)
{
	if (strcmp(want, got) != 0)
		mismatch(r, "%s %s: expected %s, got %s", what, key, want, got);
}

static void
cmd_expect_vm(struct run *r, char **tok, size_t ntok)
{
	Haven__Vm	*vm;
	char		 got[512], what[80];
	size_t		 i;
	char		*eq;

	if (ntok < 3) {
		mismatch(r, "expect vm NAME key=value...");
		return;
	}
	vm = cluster_vm(r->st, tok[2]);
	if (ntok == 4 && strcmp(tok[3], "absent") == 0) {
		if (vm != NULL)
			mismatch(r, "vm %s: expected absent, it exists", tok[2]);
		return;
	}
	if (vm == NULL) {
		mismatch(r, "vm %s: expected to exist, it does not", tok[2]);
		return;
	}
	snprintf(what, sizeof what, "vm %s", tok[2]);
	for (i = 3; i < ntok; i++) {
		if ((eq = strchr(tok[i], '=')) == NULL) {
			mismatch(r, "%s is not key=value", tok[i]);
			continue;
		}
		*eq++ = '\0';
		if (strcmp(tok[i], "phase") == 0)
			snprintf(got, sizeof got, "%s",
			    tree_phase_name(vm->runtime->phase));
		else if (strcmp(tok[i], "owner") == 0)
			snprintf(got, sizeof got, "%u", vm->runtime->owner);
		else if (strcmp(tok[i], "gen") == 0)
			snprintf(got, sizeof got, "%llu",
			    (unsigned long long)vm->runtime->generation);
		else if (strcmp(tok[i], "progress") == 0)
			snprintf(got, sizeof got, "%llu/%llu",
			    (unsigned long long)tree_move(vm->runtime)->remaining_bytes,
			    (unsigned long long)tree_move(vm->runtime)->total_bytes);
		else if (strcmp(tok[i], "paused") == 0) {
			/* One token: spaces read as underscores. */
			char	*sp;

			snprintf(got, sizeof got, "%s",
			    tree_empty(vm->runtime->paused_why) ? "-" :
			    vm->runtime->paused_why);
			while ((sp = strchr(got, ' ')) != NULL)
				*sp = '_';
		} else if (strcmp(tok[i], "storage_fence") == 0) {
			/* BY/ATTEMPT/STEP, or - when no order stands */
			const Haven__StorageFence *f =
			    vm->runtime->storage_fence;
			static const char *const steps[] = { "none", "order",
			    "fenced", "failed", "cancel", "giveup" };

			if (f == NULL)
				snprintf(got, sizeof got, "-");
			else
				snprintf(got, sizeof got, "%u/%u/%s", f->by,
				    f->attempt, f->step < 6 ? steps[f->step] :
				    "?");
		} else if (strcmp(tok[i], "giveup") == 0) {
			/* the host a giveup left to be fenced, - when none */
			if (cluster_storage_giveup_pending(vm))
				snprintf(got, sizeof got, "%u",
				    vm->runtime->storage_fence->host);
			else
				snprintf(got, sizeof got, "-");
		} else if (strcmp(tok[i], "paused_since") == 0)
			snprintf(got, sizeof got, "%llu", (unsigned long long)
			    (vm->runtime->paused_since_us / 1000000));
		else if (strcmp(tok[i], "memory") == 0)
			snprintf(got, sizeof got, "%llu",
			    (unsigned long long)vm->config->memory_mib);
		else if (strcmp(tok[i], "priority") == 0)
			snprintf(got, sizeof got, "%u", vm->config->priority);
		else if (strcmp(tok[i], "volumes") == 0) {
			size_t	 j, len = 0;

			got[0] = '\0';
			for (j = 0; j < vm->config->n_volumes &&
			    len < sizeof got; j++)
				len += (size_t)snprintf(got + len, sizeof got -
				    len, "%s%s", j ? "," : "",
				    vm->config->volumes[j]);
		} else if (strcmp(tok[i], "disk_bus") == 0) {
			snprintf(got, sizeof got, "%s",
			    machine_disk_bus_name(vm->config->disk_bus));
		} else if (strcmp(tok[i], "machine") == 0) {
			snprintf(got, sizeof got, "%s", vm->config->machine_type);
		} else if (strcmp(tok[i], "cpu") == 0) {
			snprintf(got, sizeof got, "%s", vm->config->cpu_model);
		} else if (strcmp(tok[i], "pending") == 0) {
			/* the memory vm set left for the next start, or - */
			if (vm->pending == NULL)
				snprintf(got, sizeof got, "-");
			else
				snprintf(got, sizeof got, "%llu",
				    (unsigned long long)vm->pending->memory_mib);
		} else if (strcmp(tok[i], "desired") == 0)
			snprintf(got, sizeof got, "%s", vm->runtime->desired ==
			    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ?
			    "running" : "stopped");
		else if (strcmp(tok[i], "nics") == 0) {
			/* BRIDGE/MAC/VLAN/MODEL,... as vm_create takes them */
			size_t	 j, len = 0;

			got[0] = '\0';
			for (j = 0; j < vm->config->n_nics &&
			    len < sizeof got; j++)
				len += (size_t)snprintf(got + len, sizeof got -
				    len, "%s%s/%s/%u/%s", j ? "," : "",
				    vm->config->nics[j]->bridge,
				    vm->config->nics[j]->mac,
				    vm->config->nics[j]->vlan,
				    nic_model_name(vm->config->nics[j]->model));
		} else {
			mismatch(r, "unknown vm field %s", tok[i]);
			continue;
		}
		check_field(r, what, tok[i], eq, got);
	}
}

static void
cmd_expect_host(struct run *r, char **tok, size_t ntok)
{
	Haven__Host	*h;
	char		 got[256], what[80];
	size_t		 i;
	char		*eq;

	if (ntok < 3) {
		mismatch(r, "expect host ID key=value...");
		return;
	}
	h = cluster_host(r->st, (uint32_t)strtoul(tok[2], NULL, 10));
	if (ntok == 4 && strcmp(tok[3], "absent") == 0) {
		if (h != NULL)
			mismatch(r, "host %s: expected absent, it exists", tok[2]);
		return;
	}
	if (h == NULL) {
		mismatch(r, "host %s: expected to exist, it does not", tok[2]);
		return;
	}
	snprintf(what, sizeof what, "host %s", tok[2]);
	for (i = 3; i < ntok; i++) {
		if ((eq = strchr(tok[i], '=')) == NULL) {
			mismatch(r, "%s is not key=value", tok[i]);
			continue;
		}
		*eq++ = '\0';
		if (strcmp(tok[i], "membership") == 0)
			snprintf(got, sizeof got, "%s", h->runtime->membership ==
			    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER ?
			    "member" : h->runtime->membership ==
			    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST ?
			    "lost" : "unknown");
		else if (strcmp(tok[i], "fence") == 0)
			snprintf(got, sizeof got, "%s", h->runtime->fence ==
			    HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING ?
			    "pending" : h->runtime->fence ==
			    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED ?
			    "fenced" : h->runtime->fence ==
			    HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED ?
			    "failed" : "none");
		else if (strcmp(tok[i], "maintenance") == 0)
			snprintf(got, sizeof got, "%s",
			    h->runtime->maintenance ? "yes" : "no");
		else if (strcmp(tok[i], "bridges") == 0) {
			size_t	 j, len = 0;

			got[0] = '\0';
			for (j = 0; j < h->config->n_vm_bridges &&
			    len < sizeof got; j++)
				len += (size_t)snprintf(got + len, sizeof got -
				    len, "%s%s", j ? "," : "",
				    h->config->vm_bridges[j]);
		} else if (strcmp(tok[i], "storage") == 0) {
			size_t	 j, len = 0;

			got[0] = '\0';
			for (j = 0; j < h->runtime->n_storage &&
			    len < sizeof got; j++)
				len += (size_t)snprintf(got + len, sizeof got -
				    len, "%s%s:%s", j ? "," : "",
				    h->runtime->storage[j]->pool,
				    h->runtime->storage[j]->reachable ? "yes" :
				    "no");
		} else {
			mismatch(r, "unknown host field %s", tok[i]);
			continue;
		}
		check_field(r, what, tok[i], eq, got);
	}
}

/* --- sync ----------------------------------------------------------------- */

/* sync ID:lqe=N,seq=N,digest=TEXT ...; the digest is TEXT's bytes, so two
 * members with the same TEXT have the same digest. */
static void
cmd_sync(struct run *r, char **tok, size_t ntok)
{
	struct sync_member	*m;
	char			*fields[8], *colon, *eq;
	size_t			 i, j, n;

	r->nsync = 0;
	r->synced = 0;
	for (i = 1; i < ntok && r->nsync < MAX_MEMBERS; i++) {
		m = &r->sync[r->nsync++];
		memset(m, 0, sizeof *m);
		m->epoch = r->st->cs->epoch;
		if ((colon = strchr(tok[i], ':')) == NULL) {
			mismatch(r, "sync member %s is not ID:key=value,...",
			    tok[i]);
			return;
		}
		*colon = '\0';
		m->node_id = (uint32_t)strtoul(tok[i], NULL, 10);
		n = split_list(colon + 1, fields, 8);
		for (j = 0; j < n; j++) {
			if ((eq = strchr(fields[j], '=')) == NULL)
				continue;
			*eq++ = '\0';
			if (strcmp(fields[j], "lqe") == 0)
				m->last_quorate_epoch = strtoull(eq, NULL, 10);
			else if (strcmp(fields[j], "seq") == 0)
				m->seq = strtoull(eq, NULL, 10);
			else if (strcmp(fields[j], "epoch") == 0)
				m->epoch = strtoull(eq, NULL, 10);
			else if (strcmp(fields[j], "digest") == 0)
				strncpy((char *)m->digest, eq,
				    CLUSTER_DIGEST_SIZE);
			else
				mismatch(r, "unknown sync field %s", fields[j]);
		}
	}
	if (sync_decide(r->sync, r->nsync, r->needs, &r->decision) < 0) {
		r->last_result = -1;
		snprintf(r->last_error, sizeof r->last_error, "%s",
		    strerror(errno));
		r->last_unchecked = 1;
		r->last_line = r->line;
		return;
	}
	r->synced = 1;
}

static void
cmd_expect_sync(struct run *r, char **tok, size_t ntok)
{
	char	 want[256] = "", got[256] = "";
	size_t	 i;

	if (!r->synced) {
		mismatch(r, "no sync decision to check");
		return;
	}
	for (i = 2; i < ntok; i++)
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s",
		    i > 2 ? " " : "", tok[i]);
	if (strcmp(tok[1], "source") == 0) {
		snprintf(got, sizeof got, "%u",
		    r->sync[r->decision.source].node_id);
	} else if (strcmp(tok[1], "send-to") == 0) {
		for (i = 0; i < r->nsync; i++)
			if (r->needs[i])
				snprintf(got + strlen(got), sizeof got -
				    strlen(got), "%s%u", got[0] ? " " : "",
				    r->sync[i].node_id);
		if (got[0] == '\0')
			snprintf(got, sizeof got, "none");
	} else if (strcmp(tok[1], "divergence") == 0) {
		if (r->decision.ndivergent == 0)
			snprintf(got, sizeof got, "none");
		else
			snprintf(got, sizeof got, "%u %u",
			    r->sync[r->decision.divergent_a].node_id,
			    r->sync[r->decision.divergent_b].node_id);
	}
	if (strcmp(want, got) != 0)
		mismatch(r, "sync %s: expected %s, got %s", tok[1], want, got);
}

/* --- the loop ------------------------------------------------------------- */

static void
dump(struct run *r)
{
	const Haven__ClusterState	*cs = r->st->cs;
	size_t				 i;

	printf("%s:%d: seq %llu epoch %llu\n", r->file, r->line,
	    (unsigned long long)cs->seq, (unsigned long long)cs->epoch);
	for (i = 0; i < cs->n_hosts; i++)
		printf("  host %u %s membership=%d fence=%d maintenance=%d\n",
		    cs->hosts[i]->config->node_id, cs->hosts[i]->config->name,
		    cs->hosts[i]->runtime->membership,
		    cs->hosts[i]->runtime->fence,
		    cs->hosts[i]->runtime->maintenance);
	for (i = 0; i < cs->n_vms; i++)
		printf("  vm %s phase=%s owner=%u gen=%llu\n",
		    cs->vms[i]->config->name,
		    tree_phase_name(cs->vms[i]->runtime->phase),
		    cs->vms[i]->runtime->owner,
		    (unsigned long long)cs->vms[i]->runtime->generation);
	for (i = 0; i < cs->n_events; i++)
		printf("  event %llu %s: %s\n",
		    (unsigned long long)cs->events[i]->seq,
		    cs->events[i]->subject, cs->events[i]->text);
}

static void
cmd_digest(struct run *r, char **tok, size_t ntok, int expect)
{
	uint8_t	 d[CLUSTER_DIGEST_SIZE];
	char	 a[65], b[65];
	size_t	 i;

	if (ntok != 3) {
		mismatch(r, "%s digest NAME", expect ? "expect" : "remember");
		return;
	}
	cluster_digest(r->st, d);
	for (i = 0; i < r->ndigests; i++)
		if (strcmp(r->dnames[i], tok[2]) == 0)
			break;
	if (!expect) {
		if (i == r->ndigests) {
			if (r->ndigests == MAX_SLOTS) {
				mismatch(r, "too many digests");
				return;
			}
			r->ndigests++;
		}
		snprintf(r->dnames[i], sizeof r->dnames[i], "%s", tok[2]);
		memcpy(r->digests[i], d, sizeof d);
		return;
	}
	if (i == r->ndigests) {
		mismatch(r, "no digest remembered as %s", tok[2]);
		return;
	}
	if (memcmp(r->digests[i], d, sizeof d) != 0) {
		cluster_digest_hex(r->digests[i], 8, a, sizeof a);
		cluster_digest_hex(d, 8, b, sizeof b);
		mismatch(r, "digest: expected %s (%s), got %s", tok[2], a, b);
	}
}

static void
command(struct run *r, FILE *f, char *line)
{
	char	*tok[MAX_TOKENS], *save = NULL, *t, rest[LINE_MAX_LEN];
	size_t	 ntok = 0, i;

	snprintf(rest, sizeof rest, "%s", line);
	for (t = strtok_r(line, " \t", &save); t != NULL && ntok < MAX_TOKENS;
	    t = strtok_r(NULL, " \t", &save))
		tok[ntok++] = t;
	if (ntok == 0)
		return;

	/* A refused change must be expected right away. */
	if (r->last_unchecked && !(strcmp(tok[0], "expect") == 0 &&
	    ntok >= 2 && strcmp(tok[1], "result") == 0)) {
		fprintf(stderr, "%s:%d: refused (%s): %s\n", r->file,
		    r->last_line, result_name(r->last_result),
		    r->last_error);
		r->failures++;
		r->last_unchecked = 0;
	}

	if (strcmp(tok[0], "member") == 0 || strcmp(tok[0], "members") == 0) {
		r->nmembers = 0;
		for (i = 1; i < ntok && r->nmembers < MAX_MEMBERS; i++)
			r->members[r->nmembers++] =
			    (uint32_t)strtoul(tok[i], NULL, 10);
	} else if (strcmp(tok[0], "present") == 0) {
		r->npresent = 0;
		for (i = 1; i < ntok && r->npresent < MAX_MEMBERS; i++)
			r->present[r->npresent++] =
			    (uint32_t)strtoul(tok[i], NULL, 10);
	} else if (strcmp(tok[0], "quorate") == 0 && ntok == 2) {
		r->quorate = strcmp(tok[1], "yes") == 0;
	} else if (strcmp(tok[0], "epoch") == 0 && ntok == 2) {
		cluster_set_epoch(r->st, strtoull(tok[1], NULL, 10), r->quorate);
	} else if (strcmp(tok[0], "change") == 0) {
		cmd_change(r, tok, ntok);
	} else if (strcmp(tok[0], "reconcile") == 0) {
		cmd_reconcile(r);
	} else if (strcmp(tok[0], "apply") == 0 && ntok >= 2 &&
	    strcmp(tok[1], "decisions") == 0) {
		cmd_apply_decisions(r, ntok >= 3 ? tok[2] : "last");
	} else if (strcmp(tok[0], "save") == 0 && ntok == 3 &&
	    strcmp(tok[1], "decisions") == 0) {
		cmd_save_decisions(r, tok[2]);
	} else if (strcmp(tok[0], "sync") == 0) {
		cmd_sync(r, tok, ntok);
	} else if (strcmp(tok[0], "remember") == 0 && ntok >= 2 &&
	    strcmp(tok[1], "digest") == 0) {
		cmd_digest(r, tok, ntok, 0);
	} else if (strcmp(tok[0], "dump") == 0) {
		dump(r);
	} else if (strcmp(tok[0], "expect") == 0 && ntok >= 2) {
		const char	*after = strstr(rest, tok[1]) + strlen(tok[1]);

		while (isspace((unsigned char)*after))
			after++;
		if (strcmp(tok[1], "result") == 0 && ntok == 3) {
			if (strcmp(result_name(r->last_result), tok[2]) != 0)
				mismatch(r, "result: expected %s, got %s (%s)",
				    tok[2], result_name(r->last_result),
				    r->last_error[0] ? r->last_error : "applied");
			r->last_unchecked = 0;
		} else if (strcmp(tok[1], "error") == 0) {
			if (strstr(r->last_error, after) == NULL)
				mismatch(r, "error: expected '%s' in '%s'", after,
				    r->last_error);
		} else if (strcmp(tok[1], "event") == 0) {
			for (i = 0; i < r->st->cs->n_events; i++)
				if (strstr(r->st->cs->events[i]->text, after) !=
				    NULL)
					break;
			if (i == r->st->cs->n_events)
				mismatch(r, "no event says '%s'", after);
		} else if (strcmp(tok[1], "decisions") == 0) {
			cmd_expect_decisions(r, f, (char *)after, 0);
		} else if (strcmp(tok[1], "decision") == 0) {
			cmd_expect_decisions(r, f, (char *)after, 1);
		} else if (strcmp(tok[1], "applied") == 0) {
			if (strcmp(after, r->results) != 0)
				mismatch(r, "applied: expected %s, got %s",
				    after, r->results);
		} else if (strcmp(tok[1], "vm") == 0) {
			cmd_expect_vm(r, tok, ntok);
		} else if (strcmp(tok[1], "host") == 0) {
			cmd_expect_host(r, tok, ntok);
		} else if (strcmp(tok[1], "seq") == 0 && ntok == 3) {
			char	 got[32];

			snprintf(got, sizeof got, "%llu",
			    (unsigned long long)r->st->cs->seq);
			check_field(r, "state", "seq", tok[2], got);
		} else if (strcmp(tok[1], "coordinator") == 0 && ntok == 3) {
			char	 got[32];

			snprintf(got, sizeof got, "%u",
			    coordinator_of(r->members, r->nmembers));
			check_field(r, "membership", "coordinator", tok[2], got);
		} else if (strcmp(tok[1], "digest") == 0) {
			cmd_digest(r, tok, ntok, 1);
		} else if (strcmp(tok[1], "source") == 0 ||
		    strcmp(tok[1], "send-to") == 0 ||
		    strcmp(tok[1], "divergence") == 0) {
			cmd_expect_sync(r, tok, ntok);
		} else
			mismatch(r, "unknown expectation: %s", rest);
	} else
		mismatch(r, "unknown command: %s", rest);
}

int
main(int argc, char **argv)
{
	struct run	 r;
	FILE		*f;
	char		 line[LINE_MAX_LEN], *p;
	size_t		 i;

	if (argc != 2) {
		fprintf(stderr, "usage: haven-golden SCENARIO\n");
		return 2;
	}
	if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "haven-golden: %s: %s\n", argv[1],
		    strerror(errno));
		return 2;
	}
	log_init("haven-golden", LOG_LEVEL_WARN);
	memset(&r, 0, sizeof r);
	r.file = argv[1];
	r.st = cluster_new();
	r.quorate = 1;
	r.clock_us = UINT64_C(1700000000000000);
	while (fgets(line, sizeof line, f) != NULL) {
		r.line++;
		line[strcspn(line, "\n")] = '\0';
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line + strlen(line); p > line &&
		    isspace((unsigned char)p[-1]); p--)
			p[-1] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		command(&r, f, p);
	}
	if (r.last_unchecked) {
		fprintf(stderr, "%s:%d: refused (%s): %s\n", r.file, r.last_line,
		    cluster_result_name(r.last_result), r.last_error);
		r.failures++;
	}
	fclose(f);
	for (i = 0; i < r.nslots; i++)
		coordinator_decisions_free(&r.slots[i].d);
	cluster_free(r.st);
	if (r.failures > 0) {
		fprintf(stderr, "%s: %d mismatch%s\n", r.file, r.failures,
		    r.failures == 1 ? "" : "es");
		return 1;
	}
	printf("%s: ok\n", r.file);
	return 0;
}
