/*
 * Applying a change to the replicated state (DESIGN §5): one function per
 * change kind, each checking everything before it touches anything, so that
 * every member turns the same changes into the same state. The move phases
 * (migrate, live steps, a transition's effect on a move) are migrate/'s
 * (moves.h); the helpers on the message tree are proto/'s (tree.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"
#include "moves.h"

/*
 * One function per kind. Each checks everything first and returns an error
 * before touching anything; with commit = 0 it only checks.
 */
#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

#define HOST_BRIDGES_MAX	64

/* A host's bridges for guests: valid names, sorted, each once (the state
 * is compared by its encoding, so every member must hold the same list). */
static int
bridges_check(uint32_t id, char *const *bridges, size_t n, char *err,
    size_t errlen)
{
	size_t	 i;

	if (n > HOST_BRIDGES_MAX)
		REFUSE(CLUSTER_E_INVALID, "host %u offers %zu bridges; at most %d",
		    id, n, HOST_BRIDGES_MAX);
	for (i = 0; i < n; i++) {
		if (!net_ifname_valid(bridges[i]))
			REFUSE(CLUSTER_E_INVALID, "host %u: '%.32s' is not a "
			    "bridge name", id, bridges[i] != NULL ? bridges[i] :
			    "");
		if (i > 0 && strcmp(bridges[i - 1], bridges[i]) >= 0)
			REFUSE(CLUSTER_E_INVALID, "host %u: its bridges must be "
			    "sorted, each once", id);
	}
	return CLUSTER_OK;
}

/* Those of them that filter VLANs: sorted, each once, each offered. */
static int
filtering_check(uint32_t id, char *const *bridges, size_t n,
    char *const *filtering, size_t nfiltering, char *err, size_t errlen)
{
	size_t	 i, j = 0;

	for (i = 0; i < nfiltering; i++) {
		if (filtering[i] == NULL || (i > 0 &&
		    strcmp(filtering[i - 1], filtering[i]) >= 0))
			REFUSE(CLUSTER_E_INVALID, "host %u: its VLAN-filtering "
			    "bridges must be sorted, each once", id);
		while (j < n && strcmp(bridges[j], filtering[i]) < 0)
			j++;
		if (j == n || strcmp(bridges[j], filtering[i]) != 0)
			REFUSE(CLUSTER_E_INVALID, "host %u: '%.32s' filters VLANs "
			    "but is not among its bridges", id, filtering[i]);
	}
	return CLUSTER_OK;
}

/* A list of strings, copied (NULL-terminated). */
char **
cluster_strings_dup(char *const *list, size_t n)
{
	char	**copy = xcalloc(n + 1, sizeof *copy);
	size_t	  i;

	for (i = 0; i < n; i++)
		copy[i] = xstrdup(list[i]);
	return copy;
}

void
cluster_strings_free(char **list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int
cluster_strings_same(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t	 i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

static int
apply_host_add(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__HostConfig	*hc = c->host_add->config;
	Haven__Host		*h;
	size_t			 at, i;
	char			 subject[32];

	if (hc == NULL || hc->node_id == 0 || tree_empty(hc->name))
		REFUSE(CLUSTER_E_INVALID, "host_add needs a node id > 0 and a name");
	if (!tree_name_valid(hc->name))
		REFUSE(CLUSTER_E_INVALID, "host name '%.64s' is not a name "
		    "(letters, digits, '.', '_', '-'; at most %d, a letter or "
		    "digit first)", tree_printable(hc->name), TREE_NAME_MAX);
	if (bridges_check(hc->node_id, hc->vm_bridges, hc->n_vm_bridges, err,
	    errlen) != CLUSTER_OK || filtering_check(hc->node_id,
	    hc->vm_bridges, hc->n_vm_bridges, hc->vlan_filtering,
	    hc->n_vlan_filtering, err, errlen) != CLUSTER_OK ||
	    cluster_machine_host_check(hc, err, errlen) != CLUSTER_OK)
		return CLUSTER_E_INVALID;
	if (tree_host_find(cs, hc->node_id, &at) >= 0)
		REFUSE(CLUSTER_E_EXISTS, "host %u exists already", hc->node_id);
	for (i = 0; i < cs->n_hosts; i++)
		if (strcmp(cs->hosts[i]->config->name, hc->name) == 0)
			REFUSE(CLUSTER_E_EXISTS, "host name %s is host %u already",
			    hc->name, cs->hosts[i]->config->node_id);
	if (!commit)
		return CLUSTER_OK;
	h = xcalloc(1, sizeof *h);
	haven__host__init(h);
	h->config = tree_xclone(&hc->base);
	h->runtime = xcalloc(1, sizeof *h->runtime);
	haven__host_runtime__init(h->runtime);
	tree_array_insert((void ***)&cs->hosts, &cs->n_hosts, at, h);
	snprintf(subject, sizeof subject, "host %u", hc->node_id);
	tree_event_log(cs, c, subject, "added as %s", hc->name);
	return CLUSTER_OK;
}

static int
apply_host_remove(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	uint32_t	 id = c->host_remove->node_id;
	long		 i;
	size_t		 j;
	char		 subject[32];

	if ((i = tree_host_find(cs, id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", id);
	for (j = 0; j < cs->n_vms; j++)
		if (cs->vms[j]->runtime->owner == id)
			REFUSE(CLUSTER_E_CONFLICT, "host %u still owns VM %s; move "
			    "or stop it first", id, cs->vms[j]->config->name);
	if (!commit)
		return CLUSTER_OK;
	protobuf_c_message_free_unpacked(&cs->hosts[i]->base, NULL);
	tree_array_remove((void **)cs->hosts, &cs->n_hosts, (size_t)i);
	snprintf(subject, sizeof subject, "host %u", id);
	tree_event_log(cs, c, subject, "removed");
	return CLUSTER_OK;
}

static int
apply_host_lost(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	uint32_t	 id = c->host_lost->node_id;
	Haven__Host	*h;
	Haven__Vm	*vm;
	long		 i;
	size_t		 j;
	char		 subject[32];

	if ((i = tree_host_find(cs, id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", id);
	h = cs->hosts[i];
	if (h->runtime->membership == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST)
		REFUSE(CLUSTER_E_STALE, "host %u is marked lost already", id);
	if (!commit)
		return CLUSTER_OK;
	h->runtime->membership = HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST;
	h->runtime->fence = HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING;
	h->runtime->lost_at_us = c->timestamp_us;
	snprintf(subject, sizeof subject, "host %u", id);
	tree_event_log(cs, c, subject, "lost; fencing pending");
	for (j = 0; j < cs->n_vms; j++) {
		vm = cs->vms[j];
		/* A live migration to the lost host: it runs on where it
		 * is and moves by quick migration instead. */
		if (moves_target_lost(cs, c, vm, id))
			continue;
		if (vm->runtime->owner != id ||
		    !tree_phase_occupies(vm->runtime->phase))
			continue;
		moves_live_clear(vm->runtime);
		vm->runtime->phase = HAVEN__VM_PHASE__VM_PHASE_RECOVERING;
		snprintf(subject, sizeof subject, "vm %.24s", vm->config->name);
		tree_event_log(cs, c, subject, "recovering: host %u lost", id);
	}
	return CLUSTER_OK;
}

static int
apply_host_join(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	uint32_t	 id = c->host_join->node_id;
	Haven__Host	*h;
	long		 i;
	char		 subject[32];

	if ((i = tree_host_find(cs, id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", id);
	h = cs->hosts[i];
	if (h->runtime->membership == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
		REFUSE(CLUSTER_E_STALE, "host %u is a member already", id);
	if (h->runtime->membership == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST &&
	    h->runtime->fence != HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED)
		REFUSE(CLUSTER_E_CONFLICT, "host %u was lost and is not fenced "
		    "yet; it rejoins only after fencing", id);
	if (!commit)
		return CLUSTER_OK;
	h->runtime->membership = HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
	h->runtime->fence = HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
	snprintf(subject, sizeof subject, "host %u", id);
	tree_event_log(cs, c, subject, "joined");
	return CLUSTER_OK;
}

static int
apply_host_maintenance(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	uint32_t	 id = c->host_maintenance->node_id;
	long		 i;
	char		 subject[32];

	if ((i = tree_host_find(cs, id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", id);
	if (!commit)
		return CLUSTER_OK;
	cs->hosts[i]->runtime->maintenance = c->host_maintenance->maintenance;
	snprintf(subject, sizeof subject, "host %u", id);
	tree_event_log(cs, c, subject, "%s", c->host_maintenance->maintenance ?
	    "draining: maintenance on, its VMs move away" :
	    c->host_maintenance->failback ?
	    "resumed: maintenance off, its VMs come back" :
	    "resumed: maintenance off");
	/* Resume without failback: the VMs drained from it stay where they
	 * are. With failback they keep it as their home, and the coordinator
	 * moves each back once it runs (some may still be on their way out). */
	if (!c->host_maintenance->maintenance &&
	    !c->host_maintenance->failback)
		moves_forget_home(cs, id);
	return CLUSTER_OK;
}

/* The bridges a host offers to guests, as its havend found them. */
static int
apply_host_bridges(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__HostBridges	*b = c->host_bridges;
	Haven__HostConfig		*hc;
	char				 subject[32], list[256];
	size_t				 i, len = 0;
	long				 hi;

	if ((hi = tree_host_find(cs, b->node_id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", b->node_id);
	if (bridges_check(b->node_id, b->bridges, b->n_bridges, err, errlen) !=
	    CLUSTER_OK || filtering_check(b->node_id, b->bridges, b->n_bridges,
	    b->vlan_filtering, b->n_vlan_filtering, err, errlen) != CLUSTER_OK)
		return CLUSTER_E_INVALID;
	hc = cs->hosts[hi]->config;
	if (cluster_strings_same(hc->vm_bridges, hc->n_vm_bridges, b->bridges,
	    b->n_bridges) && cluster_strings_same(hc->vlan_filtering,
	    hc->n_vlan_filtering, b->vlan_filtering, b->n_vlan_filtering))
		REFUSE(CLUSTER_E_STALE, "host %u offers these bridges already",
		    b->node_id);
	if (!commit)
		return CLUSTER_OK;
	cluster_strings_free(hc->vm_bridges, hc->n_vm_bridges);
	hc->vm_bridges = cluster_strings_dup(b->bridges, b->n_bridges);
	hc->n_vm_bridges = b->n_bridges;
	cluster_strings_free(hc->vlan_filtering, hc->n_vlan_filtering);
	hc->vlan_filtering = cluster_strings_dup(b->vlan_filtering,
	    b->n_vlan_filtering);
	hc->n_vlan_filtering = b->n_vlan_filtering;
	list[0] = '\0';
	for (i = 0; i < b->n_bridges; i++) {
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len,
			    " %s", b->bridges[i]);
	}
	for (i = 0; i < b->n_vlan_filtering; i++)
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len,
			    "%s%s", i == 0 ? "; VLAN filtering on " : " ",
			    b->vlan_filtering[i]);
	snprintf(subject, sizeof subject, "host %u", b->node_id);
	tree_event_log(cs, c, subject, "offers %s%s", b->n_bridges == 0 ?
	    "no bridge to guests" : b->n_bridges == 1 ? "bridge" : "bridges",
	    list);
	return CLUSTER_OK;
}

static int
apply_host_fence(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	uint32_t		 id = c->host_fence->node_id;
	Haven__FenceStatus	 status = c->host_fence->status;
	Haven__Host		*h;
	long			 i;
	char			 subject[32];

	if (status < HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING ||
	    status > HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED)
		REFUSE(CLUSTER_E_INVALID, "host_fence needs status pending, fenced "
		    "or failed");
	if ((i = tree_host_find(cs, id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", id);
	h = cs->hosts[i];
	if (h->runtime->membership != HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST)
		REFUSE(CLUSTER_E_CONFLICT, "host %u is not lost; only a lost host "
		    "is fenced", id);
	if (h->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED)
		REFUSE(CLUSTER_E_STALE, "host %u is fenced already", id);
	if (h->runtime->fence == status &&
	    status == HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING)
		REFUSE(CLUSTER_E_STALE, "host %u fence status is that already", id);
	if (!commit)
		return CLUSTER_OK;
	h->runtime->fence = status;
	snprintf(subject, sizeof subject, "host %u", id);
	tree_event_log(cs, c, subject, "%s%s%s%s%.160s",
	    status == HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED ? "fenced" :
	    status == HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED ?
	    "fencing failed" : "fencing pending",
	    tree_empty(c->host_fence->level) ? "" : " by level ",
	    tree_empty(c->host_fence->level) ? "" : c->host_fence->level,
	    tree_empty(c->host_fence->detail) ? "" : ": ",
	    tree_empty(c->host_fence->detail) ? "" : c->host_fence->detail);
	if (status != HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING) {
		Haven__FenceRecord	*r = xcalloc(1, sizeof *r);

		haven__fence_record__init(r);
		r->node_id = id;
		r->status = status;
		r->level = xstrdup(tree_empty(c->host_fence->level) ? "" :
		    c->host_fence->level);
		r->detail = xstrdup(tree_empty(c->host_fence->detail) ?
		    "" : c->host_fence->detail);
		r->timestamp_us = c->timestamp_us;
		r->by = c->origin;
		if (cs->n_fence_history >= CLUSTER_FENCE_HISTORY_MAX) {
			protobuf_c_message_free_unpacked(
			    &cs->fence_history[0]->base, NULL);
			tree_array_remove((void **)cs->fence_history,
			    &cs->n_fence_history, 0);
		}
		tree_array_insert((void ***)&cs->fence_history,
		    &cs->n_fence_history, cs->n_fence_history, r);
	}
	return CLUSTER_OK;
}

static int
apply_pool_add(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__PoolConfig	*pc = c->pool_add->config;
	size_t			 at, i, j;
	char			 subject[64];

	if (pc == NULL || tree_empty(pc->name))
		REFUSE(CLUSTER_E_INVALID, "pool_add needs a name");
	if (!tree_name_valid(pc->name))
		REFUSE(CLUSTER_E_INVALID, "pool name '%.64s' is not a name "
		    "(letters, digits, '.', '_', '-'; at most %d, a letter or "
		    "digit first)", tree_printable(pc->name), TREE_NAME_MAX);
	if (tree_empty(pc->portal) || tree_empty(pc->target))
		REFUSE(CLUSTER_E_INVALID, "pool %s needs a portal and a target "
		    "IQN", pc->name);
	if (!tree_iscsi_name_valid(pc->target) ||
	    !tree_text_valid(pc->portal, 255) || strchr(pc->portal, ' '))
		REFUSE(CLUSTER_E_INVALID, "pool %s: '%.64s' at '%.64s' is not "
		    "an iSCSI target name at a portal", pc->name,
		    tree_printable(pc->target), tree_printable(pc->portal));
	if (pc->n_portals > POOL_MAX_PORTALS)
		REFUSE(CLUSTER_E_INVALID, "pool %s: %zu portals; at most %d",
		    pc->name, pc->n_portals, POOL_MAX_PORTALS);
	for (i = 0; i < pc->n_portals; i++) {
		if (!tree_text_valid(pc->portals[i], 255) ||
		    tree_empty(pc->portals[i]) || strchr(pc->portals[i], ' '))
			REFUSE(CLUSTER_E_INVALID, "pool %s: portal '%.64s' is "
			    "not a portal", pc->name,
			    tree_printable(pc->portals[i]));
		for (j = 0; j < i; j++)
			if (strcmp(pc->portals[i], pc->portals[j]) == 0)
				REFUSE(CLUSTER_E_INVALID, "pool %s: portal "
				    "%.64s twice", pc->name, pc->portals[i]);
	}
	if (pc->n_portals > 0 && strcmp(pc->portals[0], pc->portal) != 0)
		REFUSE(CLUSTER_E_INVALID, "pool %s: the first of its portals "
		    "must be its portal", pc->name);
	if (tree_pool_find(cs, pc->name, &at) >= 0)
		REFUSE(CLUSTER_E_EXISTS, "pool %s exists already", pc->name);
	if (!commit)
		return CLUSTER_OK;
	tree_array_insert((void ***)&cs->pools, &cs->n_pools, at,
	    tree_xclone(&pc->base));
	snprintf(subject, sizeof subject, "pool %.48s", pc->name);
	tree_event_log(cs, c, subject, "added");
	return CLUSTER_OK;
}

static int
apply_volume_add(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__VolumeConfig	*vc = c->volume_add->config;
	size_t				 at, i;
	char				 subject[64];

	if (vc == NULL || tree_empty(vc->name))
		REFUSE(CLUSTER_E_INVALID, "volume_add needs a name");
	if (!tree_name_valid(vc->name))
		REFUSE(CLUSTER_E_INVALID, "volume name '%.64s' is not a name "
		    "(letters, digits, '.', '_', '-'; at most %d, a letter or "
		    "digit first)", tree_printable(vc->name), TREE_NAME_MAX);
	if (tree_pool_find(cs, vc->pool, NULL) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "pool %s does not exist", vc->pool);
	if (tree_volume_find(cs, vc->name, &at) >= 0)
		REFUSE(CLUSTER_E_EXISTS, "volume %s exists already", vc->name);
	for (i = 0; i < cs->n_volumes; i++)
		if (strcmp(cs->volumes[i]->pool, vc->pool) == 0 &&
		    cs->volumes[i]->lun == vc->lun)
			REFUSE(CLUSTER_E_EXISTS, "LUN %u of pool %s is volume %s "
			    "already", vc->lun, vc->pool, cs->volumes[i]->name);
	if (!commit)
		return CLUSTER_OK;
	tree_array_insert((void ***)&cs->volumes, &cs->n_volumes, at,
	    tree_xclone(&vc->base));
	snprintf(subject, sizeof subject, "volume %.48s", vc->name);
	tree_event_log(cs, c, subject, "added in pool %.48s", vc->pool);
	return CLUSTER_OK;
}

static int
apply_settings_set(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__ClusterSettings	*s = c->settings_set->settings;
	static const char *const	 known[] = { "host_failures_to_tolerate",
	    "live_downtime_ms", "live_bandwidth_mib", "live_converge_s",
	    "drain_live_priority", "storage_timeout_s", "storage_giveup_s",
	    "cpu_model", "corosync_conf" };
	const size_t			 n_known = sizeof known / sizeof known[0];
	size_t				 j, k;
	int				 r;

	if (s == NULL)
		REFUSE(CLUSTER_E_INVALID, "settings_set needs settings");
	if (s->host_failures_to_tolerate > 0 &&
	    s->host_failures_to_tolerate >= cs->n_hosts)
		REFUSE(CLUSTER_E_INVALID, "the cluster has %zu hosts: it cannot "
		    "tolerate %u host failures", cs->n_hosts,
		    s->host_failures_to_tolerate);
	if (s->live_downtime_ms > 60000 || s->live_converge_s > 86400)
		REFUSE(CLUSTER_E_INVALID, "live migration downtime is at most "
		    "60000 ms and its convergence time at most 86400 s");
	if (s->storage_timeout_s > 86400)
		REFUSE(CLUSTER_E_INVALID, "the storage timeout is at most "
		    "86400 s (0: 30 s)");
	if (s->storage_giveup_s > CLUSTER_STORAGE_SECS_MAX)
		REFUSE(CLUSTER_E_INVALID, "the storage giveup is at most %u s "
		    "(0: never)", CLUSTER_STORAGE_SECS_MAX);
	if (s->corosync_conf != NULL && strlen(s->corosync_conf) > 65536)
		REFUSE(CLUSTER_E_INVALID, "corosync.conf is at most 64 KiB");
	if ((r = cluster_machine_settings_check(cs, s->cpu_model, err,
	    errlen)) != CLUSTER_OK)
		return r;
	for (j = 0; j < c->settings_set->n_fields; j++) {
		for (k = 0; k < n_known; k++)
			if (strcmp(c->settings_set->fields[j], known[k]) == 0)
				break;
		if (k == n_known)
			REFUSE(CLUSTER_E_INVALID, "unknown setting %.64s",
			    c->settings_set->fields[j]);
	}
	if (!commit)
		return CLUSTER_OK;
	if (c->settings_set->n_fields == 0) {
		if (cs->settings != NULL)
			protobuf_c_message_free_unpacked(&cs->settings->base,
			    NULL);
		cs->settings = tree_xclone(&s->base);
	} else {
		if (cs->settings == NULL) {
			cs->settings = xcalloc(1, sizeof *cs->settings);
			haven__cluster_settings__init(cs->settings);
		}
		for (j = 0; j < c->settings_set->n_fields; j++) {
			const char	*f = c->settings_set->fields[j];

#define SETTING(name) if (strcmp(f, #name) == 0) cs->settings->name = s->name
			SETTING(host_failures_to_tolerate);
			SETTING(live_downtime_ms);
			SETTING(live_bandwidth_mib);
			SETTING(live_converge_s);
			SETTING(drain_live_priority);
			SETTING(storage_timeout_s);
			SETTING(storage_giveup_s);
#undef SETTING
			if (strcmp(f, "cpu_model") == 0) {
				cluster_machine_set_string(
				    &cs->settings->cpu_model, s->cpu_model);
			}
			if (strcmp(f, "corosync_conf") == 0)
				cluster_machine_set_string(
				    &cs->settings->corosync_conf,
				    s->corosync_conf);
		}
	}
	s = cs->settings;
	tree_event_log(cs, c, "cluster", "host failures to tolerate: %u; live "
	    "migration: downtime %u ms, bandwidth %u MiB/s, converge within "
	    "%u s, drains move live from priority %u; storage timeout %u s, "
	    "giveup %s%.0u%s; CPU model %s", s->host_failures_to_tolerate,
	    CLUSTER_LIVE_DOWNTIME_MS(s), s->live_bandwidth_mib,
	    CLUSTER_LIVE_CONVERGE_S(s), CLUSTER_DRAIN_LIVE_PRIORITY(s),
	    CLUSTER_STORAGE_TIMEOUT_S(s), CLUSTER_STORAGE_GIVEUP_S(s) ? "" :
	    "never", CLUSTER_STORAGE_GIVEUP_S(s),
	    CLUSTER_STORAGE_GIVEUP_S(s) ? " s" : "", machine_cpu_model(s));
	return CLUSTER_OK;
}

static int
u64_desc(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Admission control: with vm also running, could the VMs meant to run
 * still be restarted after the N largest hosts fail? Memory only: their
 * sum must fit in what the other hosts offer, and each VM in the largest
 * remaining host. Decided from the state alone, so every member agrees.
 */
static int
admission_check(const Haven__ClusterState *cs, const Haven__Vm *vm, char *err,
    size_t errlen)
{
	uint32_t	 n = cs->settings != NULL ?
			    cs->settings->host_failures_to_tolerate : 0;
	uint64_t	*mem, need = 0, have = 0, biggest_vm = 0;
	size_t		 i, nh = 0;

	if (n == 0)
		return CLUSTER_OK;
	mem = xcalloc(cs->n_hosts + 1, sizeof *mem);
	for (i = 0; i < cs->n_hosts; i++)
		mem[nh++] = cs->hosts[i]->config->memory_mib;
	qsort(mem, nh, sizeof *mem, u64_desc);
	for (i = n; i < nh; i++)
		have += mem[i];
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__Vm	*o = cs->vms[i];

		if (o != vm && o->runtime->desired !=
		    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING)
			continue;
		need += o->config->memory_mib;
		if (o->config->memory_mib > biggest_vm)
			biggest_vm = o->config->memory_mib;
	}
	i = n < nh ? n : nh;
	if (need > have || (i < nh && biggest_vm > mem[i]) || i >= nh) {
		snprintf(err, errlen, "starting VM %s would break admission "
		    "control: after %u host failure%s the remaining hosts offer "
		    "%llu MiB but the VMs meant to run need %llu MiB; stop "
		    "another VM, add a host, or lower host-failures-to-tolerate",
		    vm->config->name, n, n == 1 ? "" : "s",
		    (unsigned long long)have, (unsigned long long)need);
		free(mem);
		return CLUSTER_E_CONFLICT;
	}
	free(mem);
	return CLUSTER_OK;
}

/*
 * vm stop of a VM paused because its storage does not answer (issue 20):
 * its guest cannot power down, and writes it made may still sit in its
 * host's iSCSI sockets, to land when the storage answers. So it is stopped
 * like a giveup: at once (its host kills the worker), with its host's key
 * marked to be fenced off its volumes before it may start again.
 */
static void
stop_storage_paused(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm)
{
	Haven__VmRuntime	*rt = vm->runtime;
	const char		*pool = "";
	char			 subject[64];
	long			 k;

	if (rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED || rt->owner == 0 ||
	    rt->storage_fence != NULL || tree_empty(rt->paused_why) ||
	    strncmp(rt->paused_why, VM_PAUSED_FOR_STORAGE,
	    strlen(VM_PAUSED_FOR_STORAGE)) != 0)
		return;
	/* The pool a member must reach to fence the host (its first
	 * volume's: the pool the worker paused on, as storage_move.c's
	 * orders name it). */
	if (vm->config->n_volumes > 0 && (k = tree_volume_find(cs,
	    vm->config->volumes[0], NULL)) >= 0)
		pool = cs->volumes[k]->pool;
	cluster_storage_giveup_mark(rt, rt->generation, rt->owner, pool,
	    c->timestamp_us);
	rt->phase = HAVEN__VM_PHASE__VM_PHASE_STOPPING;
	snprintf(subject, sizeof subject, "vm %.48s", vm->config->name);
	tree_event_log(cs, c, subject, "stopped while paused for its storage: "
	    "host %u's key stays on its volumes until a host that reaches them "
	    "fences it; then it may start again", rt->owner);
}

static int
apply_vm_set_desired(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const char		*name = c->vm_set_desired->name;
	Haven__DesiredState	 desired = c->vm_set_desired->desired;
	long			 i;
	char			 subject[64];

	if (desired != HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED &&
	    desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING)
		REFUSE(CLUSTER_E_INVALID, "vm_set_desired needs running or stopped");
	if ((i = tree_vm_find(cs, name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", name);
	if (desired == HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING &&
	    cs->vms[i]->runtime->desired != desired &&
	    admission_check(cs, cs->vms[i], err, errlen) != CLUSTER_OK)
		return CLUSTER_E_CONFLICT;
	if (!commit)
		return CLUSTER_OK;
	cs->vms[i]->runtime->desired = desired;
	snprintf(subject, sizeof subject, "vm %.48s", name);
	tree_event_log(cs, c, subject, "desired %s",
	    desired == HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ? "running" :
	    "stopped");
	if (desired == HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED)
		stop_storage_paused(cs, c, cs->vms[i]);
	return CLUSTER_OK;
}

/* A transition's checks: the VM at the change's generation, a new phase,
 * an owner for any phase but stopped and failed, and a live migration's
 * own (migrate/). *vm: the VM. */
static int
transition_check(const Haven__ClusterState *cs, const Haven__VmTransition *t,
    Haven__Vm **vm, char *err, size_t errlen)
{
	const Haven__VmRuntime	*rt;
	long			 i;

	if (!tree_phase_valid(t->phase))
		REFUSE(CLUSTER_E_INVALID, "vm_transition needs a valid phase");
	if ((i = tree_vm_find(cs, t->name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", t->name);
	rt = cs->vms[i]->runtime;
	if (t->generation != rt->generation)
		REFUSE(CLUSTER_E_STALE, "VM %s is at generation %llu, the "
		    "transition is for %llu", t->name,
		    (unsigned long long)rt->generation,
		    (unsigned long long)t->generation);
	if (t->phase == rt->phase)
		REFUSE(CLUSTER_E_STALE, "VM %s is %s already", t->name,
		    tree_phase_name(rt->phase));
	if (rt->owner == 0 && t->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    t->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
		REFUSE(CLUSTER_E_CONFLICT, "VM %s has no owner to be %s",
		    t->name, tree_phase_name(t->phase));
	*vm = cs->vms[i];
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
		return moves_live_check(cs, *vm, t, err, errlen);
	return CLUSTER_OK;
}

/* A restore that failed: the host's fault (its storage, its QEMU) leaves
 * the saved state for another host to restore; a state that was refused,
 * or failed to restore twice, is not tried again. 1: the restore failed. */
static int
transition_restore_failed(Haven__VmRuntime *rt, const Haven__VmTransition *t,
    Haven__VmPhase was)
{
	if (t->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED ||
	    was != HAVEN__VM_PHASE__VM_PHASE_RESTORING || !rt->saved_state)
		return 0;
	if (t->state_refused || rt->failures >= CLUSTER_RESTORE_TRIES)
		rt->saved_state = 0;
	return 1;
}

static void
paused_clear(Haven__VmRuntime *rt)
{
	if (rt->paused_why != NULL && rt->paused_why != protobuf_c_empty_string)
		free(rt->paused_why);
	rt->paused_why = (char *)protobuf_c_empty_string;
	rt->paused_since_us = 0;
}

/* Why a VM is paused and since when (vm list, vm show) holds only while it
 * is: any change that takes it out of phase paused -- a transition, a
 * move, its host lost -- clears it here. */
static void
paused_sync(Haven__ClusterState *cs)
{
	size_t	i;

	for (i = 0; i < cs->n_vms; i++) {
		if (cs->vms[i]->runtime != NULL && cs->vms[i]->runtime->phase !=
		    HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
		    (cs->vms[i]->runtime->paused_since_us != 0 ||
		    !tree_empty(cs->vms[i]->runtime->paused_why)))
			paused_clear(cs->vms[i]->runtime);
	}
}

/* A checked transition other than into or out of a live migration (those
 * are migrate/'s): the new phase's bookkeeping, then the event log. */
static void
transition_commit(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm, Haven__VmPhase was)
{
	const Haven__VmTransition	*t = c->vm_transition;
	Haven__VmRuntime		*rt = vm->runtime;
	int				 restore_failed;
	char				 subject[64];

	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED) {
		rt->owner = 0;
		rt->restarts = rt->failures = 0;
	}
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_FAILED)
		rt->failures++;
	moves_progress_clear(rt);
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING)
		moves_save_begin(cs, c, vm);
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED) {
		rt->saved_state = 1;
		rt->saved_generation = rt->generation;
	}
	restore_failed = transition_restore_failed(rt, t, was);
	/* A save that failed: the VM runs on where it was; the move is off. */
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    was == HAVEN__VM_PHASE__VM_PHASE_SAVING)
		moves_save_failed(rt);
	/* Restored: the state is consumed; a move ends here. */
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    was == HAVEN__VM_PHASE__VM_PHASE_RESTORING) {
		moves_restored(cs, c, vm);
		rt->saved_state = 0;
	}
	if (t->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING)
		rt->failures = 0;
	snprintf(subject, sizeof subject, "vm %.48s", t->name);
	tree_event_log(cs, c, subject, "%s (generation %llu)%s%.160s",
	    tree_phase_name(t->phase), (unsigned long long)rt->generation,
	    tree_empty(t->detail) ? "" : ": ",
	    tree_empty(t->detail) ? "" : t->detail);
	if (restore_failed && rt->saved_state)
		tree_event_log(cs, c, subject, "the restore failed on host %u; "
		    "the saved state is kept for another host", rt->owner);
	else if (restore_failed)
		tree_event_log(cs, c, subject, "the saved state %s; the VM "
		    "starts afresh", t->state_refused ? "was refused" :
		    "failed to restore twice");
}

static int
apply_vm_transition(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	Haven__Vm	*vm = NULL;
	Haven__VmPhase	 was;
	int		 r;

	r = transition_check(cs, c->vm_transition, &vm, err, errlen);
	if (r != CLUSTER_OK || !commit)
		return r;
	was = vm->runtime->phase;
	vm->runtime->phase = c->vm_transition->phase;
	if (vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
		/* Why and since when, for vm list and vm show. */
		paused_clear(vm->runtime);
		vm->runtime->paused_why = xstrdup(tree_empty(
		    c->vm_transition->detail) ? "no reason given" :
		    c->vm_transition->detail);
		vm->runtime->paused_since_us = c->timestamp_us;
	}
	if (vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
		moves_live_begin(cs, c, vm);
	else if (was != HAVEN__VM_PHASE__VM_PHASE_MIGRATING ||
	    !moves_live_end(cs, c, vm))
		transition_commit(cs, c, vm, was);
	return CLUSTER_OK;
}

static int
apply_vm_assign(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__VmAssign	*a = c->vm_assign;
	Haven__VmRuntime	*rt;
	Haven__Host		*h;
	long			 i, hi;
	char			 subject[64];

	if (a->phase != HAVEN__VM_PHASE__VM_PHASE_STARTING &&
	    a->phase != HAVEN__VM_PHASE__VM_PHASE_RESTORING)
		REFUSE(CLUSTER_E_INVALID, "vm_assign needs phase starting or "
		    "restoring");
	if ((i = tree_vm_find(cs, a->name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", a->name);
	rt = cs->vms[i]->runtime;
	if (a->generation != rt->generation)
		REFUSE(CLUSTER_E_STALE, "VM %s is at generation %llu, the decision "
		    "was computed from %llu", a->name,
		    (unsigned long long)rt->generation,
		    (unsigned long long)a->generation);
	if (tree_phase_occupies(rt->phase))
		REFUSE(CLUSTER_E_CONFLICT, "VM %s is %s on host %u", a->name,
		    tree_phase_name(rt->phase), rt->owner);
	/* Given up while host X held its volumes: X's writes may still be
	 * on their way to them until X is fenced off (issue 20). */
	if (cluster_storage_giveup_pending(cs->vms[i]))
		REFUSE(CLUSTER_E_CONFLICT, "VM %s starts once host %u is fenced "
		    "off its volumes", a->name, rt->storage_fence->host);
	if ((hi = tree_host_find(cs, a->owner, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", a->owner);
	h = cs->hosts[hi];
	if (h->runtime->membership != HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
		REFUSE(CLUSTER_E_CONFLICT, "host %u is not a member", a->owner);
	if (!commit)
		return CLUSTER_OK;
	/* Restarted in place after a failure, or placed afresh. */
	if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_FAILED &&
	    rt->owner == a->owner)
		rt->restarts++;
	else
		rt->restarts = 0;
	if (a->phase == HAVEN__VM_PHASE__VM_PHASE_STARTING) {
		rt->saved_state = 0;	/* a cold start: any saved state is moot */
		moves_cold_start(rt);	/* and so is the move */
		cluster_vm_cold_start(cs, c, cs->vms[i]);	/* and vm set's */
		cluster_machine_cold_start(cs, cs->vms[i]);	/* its CPU */
	}
	rt->owner = a->owner;
	rt->phase = a->phase;
	rt->generation++;
	moves_progress_clear(rt);
	snprintf(subject, sizeof subject, "vm %.48s", a->name);
	tree_event_log(cs, c, subject, "%s on host %u (generation %llu)",
	    tree_phase_name(a->phase), a->owner,
	    (unsigned long long)rt->generation);
	return CLUSTER_OK;
}

static int
apply_role_grant(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__RoleBinding	*b = c->role_grant->binding;
	size_t				 at;
	long				 i;
	char				 subject[64];

	if (b == NULL || tree_empty(b->principal))
		REFUSE(CLUSTER_E_INVALID, "role_grant needs a principal");
	if (b->role < HAVEN__ROLE__ROLE_VIEWER || b->role > HAVEN__ROLE__ROLE_ADMIN)
		REFUSE(CLUSTER_E_INVALID, "role_grant needs viewer, operator or "
		    "admin");
	if (!commit)
		return CLUSTER_OK;
	/* A new grant replaces the principal's binding. */
	if ((i = tree_role_find(cs, b->principal, &at)) >= 0) {
		protobuf_c_message_free_unpacked(&cs->roles[i]->base, NULL);
		cs->roles[i] = tree_xclone(&b->base);
	} else
		tree_array_insert((void ***)&cs->roles, &cs->n_roles, at,
		    tree_xclone(&b->base));
	snprintf(subject, sizeof subject, "role %.48s", b->principal);
	tree_event_log(cs, c, subject, "granted %s",
	    b->role == HAVEN__ROLE__ROLE_ADMIN ? "admin" :
	    b->role == HAVEN__ROLE__ROLE_OPERATOR ? "operator" : "viewer");
	return CLUSTER_OK;
}

static int
apply_role_revoke(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const char	*principal = c->role_revoke->principal;
	long		 i;
	char		 subject[64];

	if ((i = tree_role_find(cs, principal, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "%s holds no role", principal);
	if (!commit)
		return CLUSTER_OK;
	protobuf_c_message_free_unpacked(&cs->roles[i]->base, NULL);
	tree_array_remove((void **)cs->roles, &cs->n_roles, (size_t)i);
	snprintf(subject, sizeof subject, "role %.48s", principal);
	tree_event_log(cs, c, subject, "revoked");
	return CLUSTER_OK;
}

static int
apply(Haven__ClusterState *cs, const Haven__Change *c, int quorate, int commit,
    char *err, size_t errlen)
{
	int	 r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!quorate)
		REFUSE(CLUSTER_E_NOT_QUORATE, "this partition is not quorate; "
		    "changes wait for quorum");

	/* What is kept of a change is copied through its encoding; a change
	 * that does not survive that (an odd unknown field) is refused here,
	 * before anything is touched. */
	if (!commit) {
		void	*copy = tree_clone(&c->base);

		if (copy == NULL)
			REFUSE(CLUSTER_E_INVALID, "the change does not re-encode");
		protobuf_c_message_free_unpacked(copy, NULL);
	}

	/* Changes come off the wire: never trust a member to be there. */
#define KIND(kcase, field, fn)						\
	case HAVEN__CHANGE__KIND_##kcase:				\
		if (c->field == NULL)					\
			REFUSE(CLUSTER_E_INVALID, "empty " #field);	\
		r = fn(cs, c, commit, err, errlen);			\
		break
	switch (c->kind_case) {
	KIND(HOST_ADD, host_add, apply_host_add);
	KIND(HOST_REMOVE, host_remove, apply_host_remove);
	KIND(HOST_LOST, host_lost, apply_host_lost);
	KIND(HOST_JOIN, host_join, apply_host_join);
	KIND(HOST_MAINTENANCE, host_maintenance, apply_host_maintenance);
	KIND(HOST_FENCE, host_fence, apply_host_fence);
	KIND(HOST_BRIDGES, host_bridges, apply_host_bridges);
	KIND(HOST_STORAGE, host_storage, cluster_apply_host_storage);
	KIND(HOST_QEMU, host_qemu, cluster_apply_host_qemu);
	KIND(POOL_ADD, pool_add, apply_pool_add);
	KIND(VOLUME_ADD, volume_add, apply_volume_add);
	KIND(VOLUME_REMOVE, volume_remove, cluster_apply_volume_remove);
	KIND(POOL_REMOVE, pool_remove, cluster_apply_pool_remove);
	KIND(VM_CREATE, vm_create, cluster_apply_vm_create);
	KIND(VM_DELETE, vm_delete, cluster_apply_vm_delete);
	KIND(VM_SET, vm_set, cluster_apply_vm_set);
	KIND(VM_SET_DESIRED, vm_set_desired, apply_vm_set_desired);
	KIND(VM_TRANSITION, vm_transition, apply_vm_transition);
	KIND(VM_ASSIGN, vm_assign, apply_vm_assign);
	KIND(VM_MIGRATE, vm_migrate, moves_apply_migrate);
	KIND(VM_LIVE, vm_live, moves_apply_live);
	KIND(VM_STORAGE_FENCE, vm_storage_fence,
	    cluster_apply_vm_storage_fence);
	KIND(ROLE_GRANT, role_grant, apply_role_grant);
	KIND(ROLE_REVOKE, role_revoke, apply_role_revoke);
	KIND(SETTINGS_SET, settings_set, apply_settings_set);
	default:
		REFUSE(CLUSTER_E_INVALID, "change of unknown kind %d",
		    (int)c->kind_case);
	}
#undef KIND
	if (r == CLUSTER_OK && commit) {
		cs->seq++;
		paused_sync(cs);
		cluster_storage_fence_sync(cs);
		cluster_vm_pending_sync(cs, c);
	}
	return r;
}

#undef REFUSE

int
cluster_apply(struct cluster *st, const Haven__Change *c, int quorate, char *err,
    size_t errlen)
{
	int	 r;

	/* Check first so a refusal can never leave half a change behind. */
	if ((r = apply(st->cs, c, quorate, 0, err, errlen)) != CLUSTER_OK)
		return r;
	return apply(st->cs, c, quorate, 1, err, errlen);
}

int
cluster_check(const struct cluster *st, const Haven__Change *c, int quorate,
    char *err, size_t errlen)
{
	return apply(st->cs, c, quorate, 0, err, errlen);
}
