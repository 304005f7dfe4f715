/*
 * The coordinator's reconcile step (DESIGN §5, §6): desired against actual
 * state, as a list of decisions to multicast. Level-triggered and pure: it
 * reads the state and the quorate membership only, so running it twice gives
 * the same decisions, and once they are applied it gives none.
 *
 * Placement (for now): VMs by priority (highest first), then name; a VM goes
 * to its first eligible preferred owner in the order listed, else to the
 * eligible host with the least memory in use (then the lowest node id).
 * Eligible: a member in the state and the membership, not in maintenance, not
 * being fenced, with room for the VM's memory, every bridge its NICs are on
 * and no VM of its anti-affinity class. Preferred owners are a preference,
 * not a restriction. Planned moves (migrate, drain, failback) are planned by
 * migrate/plan.c on this placement.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"
#include "moves.h"

/* What a host carries during one reconcile pass, decisions included. */
struct load {
	uint32_t	 node_id;
	uint64_t	 used_mib;
	int		 eligible;
};

/* One reconcile pass: its input, the hosts' loads, the VMs in placement
 * order with where this pass placed them, and the decisions so far. */
struct pass {
	const struct cluster	*st;
	const uint32_t		*members;
	size_t			 n;
	const uint32_t		*present;
	size_t			 npresent;
	uint32_t		 origin;
	struct load		*loads;		/* one per host of the state */
	size_t			 nloads;
	const Haven__Vm		**order;
	uint32_t		*placed_on;	/* per order[i]; 0: not placed */
	struct plan_hosts	 hosts;		/* placement, lent to the plan */
	struct plan		*plan;
	struct coordinator_decisions *out;
};

uint32_t
coordinator_of(const uint32_t *members, size_t n)
{
	uint32_t	 lowest = 0;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (members[i] != 0 && (lowest == 0 || members[i] < lowest))
			lowest = members[i];
	return lowest;
}

static int
is_member(const uint32_t *members, size_t n, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (members[i] == id)
			return 1;
	return 0;
}



static Haven__Change *
decision_new(const struct cluster *st, uint32_t origin,
    struct coordinator_decisions *out)
{
	Haven__Change	*c, **grown;

	grown = realloc(out->changes, (out->n + 1) * sizeof *grown);
	if (grown == NULL)
		log_fatal("coordinator: out of memory");
	out->changes = grown;
	c = xcalloc(1, sizeof *c);
	haven__change__init(c);
	c->epoch = st->cs->epoch;
	c->origin = origin;
	out->changes[out->n++] = c;
	return c;
}

static void
decide_host(const struct cluster *st, uint32_t origin, uint32_t id, int lost,
    struct coordinator_decisions *out)
{
	Haven__Change	*c = decision_new(st, origin, out);

	if (lost) {
		c->kind_case = HAVEN__CHANGE__KIND_HOST_LOST;
		c->host_lost = xcalloc(1, sizeof *c->host_lost);
		haven__host_lost__init(c->host_lost);
		c->host_lost->node_id = id;
	} else {
		c->kind_case = HAVEN__CHANGE__KIND_HOST_JOIN;
		c->host_join = xcalloc(1, sizeof *c->host_join);
		haven__host_join__init(c->host_join);
		c->host_join->node_id = id;
	}
}

static void
decide_assign(const struct cluster *st, uint32_t origin, const Haven__Vm *vm,
    uint32_t owner, Haven__VmPhase phase, struct coordinator_decisions *out)
{
	Haven__Change	*c = decision_new(st, origin, out);

	c->kind_case = HAVEN__CHANGE__KIND_VM_ASSIGN;
	c->vm_assign = xcalloc(1, sizeof *c->vm_assign);
	haven__vm_assign__init(c->vm_assign);
	c->vm_assign->name = xstrdup(vm->config->name);
	c->vm_assign->generation = vm->runtime->generation;
	c->vm_assign->owner = owner;
	c->vm_assign->phase = phase;
}

static Haven__VmTransition *
decide_transition(const struct cluster *st, uint32_t origin, const Haven__Vm *vm,
    Haven__VmPhase phase, struct coordinator_decisions *out)
{
	Haven__Change	*c = decision_new(st, origin, out);

	c->kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c->vm_transition = xcalloc(1, sizeof *c->vm_transition);
	haven__vm_transition__init(c->vm_transition);
	c->vm_transition->name = xstrdup(vm->config->name);
	c->vm_transition->generation = vm->runtime->generation;
	c->vm_transition->phase = phase;
	return c->vm_transition;
}

/* Placement order: priority descending, then name. */
static int
vm_order(const void *a, const void *b)
{
	const Haven__Vm	*x = *(const Haven__Vm *const *)a;
	const Haven__Vm	*y = *(const Haven__Vm *const *)b;

	if (x->config->priority != y->config->priority)
		return x->config->priority > y->config->priority ? -1 : 1;
	return strcmp(x->config->name, y->config->name);
}

/* Whether a VM of class already sits on host (or is being placed there). */
static int
class_on(const struct pass *p, const char *class, uint32_t host)
{
	size_t	 i;

	if (class == NULL || *class == '\0')
		return 0;
	for (i = 0; i < p->st->cs->n_vms; i++) {
		const Haven__Vm	*vm = p->order[i];
		uint32_t	 on = p->placed_on[i] ? p->placed_on[i] :
		    tree_phase_occupies(vm->runtime->phase) ?
		    vm->runtime->owner : 0;

		if (on == host && strcmp(vm->config->anti_affinity, class) == 0)
			return 1;
	}
	return 0;
}

static struct load *
load_of(const struct pass *p, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < p->nloads; i++)
		if (p->loads[i].node_id == id)
			return &p->loads[i];
	return NULL;
}

/* The configuration a VM is placed by: one that runs, or a restore, has
 * the machine it runs or was saved with; a cold start takes what `vm set`
 * left for it. */
static const Haven__VmConfig *
placed_config(const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;

	if (tree_phase_occupies(rt->phase) ||
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED || rt->saved_state)
		return vm->config;
	return tree_vm_next_config(vm);
}

/* Whether host can take vm now: eligible, with room for its memory, the
 * bridges of its NICs, its pools reachable from there (as the host last
 * reported, issue 20), and (anti_affinity) no VM of its class there. */
static int
host_fits(const struct pass *p, const Haven__Vm *vm, uint32_t host,
    int anti_affinity)
{
	const struct load	*l = load_of(p, host);
	const Haven__VmConfig	*vc = placed_config(vm);
	const Haven__Host	*h;

	return l != NULL && l->eligible &&
	    (h = cluster_host(p->st, host)) != NULL &&
	    h->config->memory_mib >= l->used_mib &&
	    h->config->memory_mib - l->used_mib >= vc->memory_mib &&
	    nic_bridges_offered(h->config, vc, NULL, 0) &&
	    machine_host_runs(p->st->cs, h->config, vm, vc, NULL, 0) &&
	    tree_storage_lost(p->st->cs, h, vc) == NULL &&
	    (!anti_affinity || !class_on(p, vc->anti_affinity, host));
}

/*
 * When no eligible host offers every bridge of vm's NICs, and carries their
 * VLANs (whatever their load), the sentence that says which is missing; 0
 * when some host does,
 * and the VM only waits for room.
 */
static int
bridges_missing(const struct pass *p, const Haven__Vm *vm, char *why,
    size_t len)
{
	const Haven__VmConfig	*vc = placed_config(vm);
	const Haven__Nic	*nic;
	const Haven__Host	*h;
	char			 missing[NIC_BRIDGE_PER_VLAN_MAX];
	size_t			 i, j;
	int			 bridge;

	if (vc->n_nics == 0)
		return 0;
	for (i = 0; i < p->nloads; i++)
		if (p->loads[i].eligible && (h = cluster_host(p->st,
		    p->loads[i].node_id)) != NULL &&
		    nic_bridges_offered(h->config, vc, NULL, 0))
			return 0;
	/* Name a NIC no eligible host carries (its bridge, or its VLAN
	 * there), else say they are apart. */
	for (i = 0; i < vc->n_nics; i++) {
		nic = vc->nics[i];
		bridge = 0;
		for (j = 0; j < p->nloads; j++) {
			if (!p->loads[j].eligible || (h = cluster_host(p->st,
			    p->loads[j].node_id)) == NULL)
				continue;
			if (nic_offered(h->config, nic, missing, sizeof missing))
				break;
			bridge |= strcmp(missing, nic->bridge) != 0;
		}
		if (j < p->nloads)
			continue;
		if (bridge)
			snprintf(why, len, "no host that takes VMs carries VLAN "
			    "%u of bridge %s (NIC %zu): none filters VLANs on it "
			    "nor offers its per-VLAN bridge %sv%u; it starts once "
			    "one does ([interfaces] vm in haven.conf)", nic->vlan,
			    nic->bridge, i, nic->bridge, nic->vlan);
		else
			snprintf(why, len, "no host that takes VMs offers bridge "
			    "%s (NIC %zu); it starts once one does ([interfaces] "
			    "vm in haven.conf)", nic->bridge, i);
		return 1;
	}
	snprintf(why, len, "no host that takes VMs offers all of its NICs' "
	    "bridges together; it starts once one does");
	return 1;
}

/*
 * When no eligible host's QEMU offers vm's machine type and CPU model
 * (issue 16), the sentence that says why for the first of them; 0 when
 * some host does, and the VM only waits for room.
 */
static int
machine_missing(const struct pass *p, const Haven__Vm *vm, char *why,
    size_t len)
{
	const Haven__VmConfig	*vc = placed_config(vm);
	const Haven__Host	*h;
	char			 first[160] = "";
	size_t			 i;

	for (i = 0; i < p->nloads; i++) {
		if (!p->loads[i].eligible || (h = cluster_host(p->st,
		    p->loads[i].node_id)) == NULL)
			continue;
		if (machine_host_runs(p->st->cs, h->config, vm, vc, why, len))
			return 0;
		if (*first == '\0')
			snprintf(first, sizeof first, "%s", why);
	}
	if (*first == '\0')
		return 0;
	snprintf(why, len, "no host that takes VMs can run its machine (%s); "
	    "it starts once one can", first);
	return 1;
}

/* The host for vm, or 0 when none is eligible; never `avoid`. */
static uint32_t
place(const struct pass *p, const Haven__Vm *vm, uint32_t avoid)
{
	const Haven__VmConfig	*vc = placed_config(vm);
	struct load		*l, *best = NULL;
	size_t			 i;

	for (i = 0; i < vc->n_preferred_owners; i++) {
		l = load_of(p, vc->preferred_owners[i]);
		if (l != NULL && l->node_id != avoid &&
		    host_fits(p, vm, l->node_id, 1))
			return l->node_id;
	}
	for (i = 0; i < p->nloads; i++) {
		l = &p->loads[i];
		if (l->node_id == avoid || !host_fits(p, vm, l->node_id, 1))
			continue;
		/* loads are in node id order: ties keep the lowest id. */
		if (best == NULL || l->used_mib < best->used_mib)
			best = l;
	}
	return best == NULL ? 0 : best->node_id;
}

/* Placement as migrate/plan.c asks for it. */
static int
pass_member(void *arg, uint32_t host)
{
	const struct pass	*p = arg;

	return is_member(p->members, p->n, host);
}

static int
pass_fits(void *arg, const Haven__Vm *vm, uint32_t host, int anti_affinity)
{
	return host_fits(arg, vm, host, anti_affinity);
}

static uint32_t
pass_place(void *arg, const Haven__Vm *vm, uint32_t avoid)
{
	return place(arg, vm, avoid);
}

/* vm (order[i]) goes to host in this pass: its memory counts there. */
static void
pass_place_on(struct pass *p, size_t i, uint32_t host)
{
	p->placed_on[i] = host;
	load_of(p, host)->used_mib += placed_config(p->order[i])->memory_mib;
}

/* Hosts: corosync's membership against the state's (lost, joined), and
 * which of them take VMs in this pass. */
static void
pass_hosts(struct pass *p)
{
	const Haven__ClusterState	*cs = p->st->cs;
	size_t				 i;
	int				 member;

	for (i = 0; i < cs->n_hosts; i++) {
		const Haven__Host	*h = cs->hosts[i];
		Haven__HostMembership	 was = h->runtime->membership;

		member = is_member(p->members, p->n, h->config->node_id);
		/* A host whose havend restarts is still up: not lost. */
		if (was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
		    !member && !is_member(p->present, p->npresent,
		    h->config->node_id))
			decide_host(p->st, p->origin, h->config->node_id, 1,
			    p->out);
		else if (member && (was ==
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_UNSPECIFIED ||
		    (was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST &&
		    h->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED)))
			decide_host(p->st, p->origin, h->config->node_id, 0,
			    p->out);
		p->loads[i].node_id = h->config->node_id;
		p->loads[i].eligible = member &&
		    was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
		    !h->runtime->maintenance &&
		    h->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
	}
	/* Memory in use: where VMs run, and a live migration's target. */
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = cs->vms[i]->runtime;
		struct load		*l;

		if (tree_phase_occupies(rt->phase) &&
		    (l = load_of(p, rt->owner)) != NULL)
			l->used_mib += cs->vms[i]->config->memory_mib;
		if ((l = load_of(p, moves_live_target(rt))) != NULL)
			l->used_mib += cs->vms[i]->config->memory_mib;
	}
}

/* Stopped, saved or recovering: placed (started, or restored where a saved
 * state exists) while meant to run; a recovering VM only once its host is
 * fenced, and stopped for good if not meant to run. */
static void
reconcile_placed(struct pass *p, size_t i)
{
	const Haven__Vm		*vm = p->order[i];
	const Haven__VmRuntime	*rt = vm->runtime;
	const Haven__Host	*owner = rt->owner ?
				    cluster_host(p->st, rt->owner) : NULL;
	uint32_t		 to = 0;
	char			 why[160];

	if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_RECOVERING &&
	    !(owner != NULL && owner->runtime->fence ==
	    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED))
		return;
	if (rt->desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING) {
		if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_RECOVERING)
			decide_transition(p->st, p->origin, vm,
			    HAVEN__VM_PHASE__VM_PHASE_STOPPED, p->out);
		return;
	}
	/* Given up while its storage was lost: not before its old host is
	 * fenced off its volumes (storage_move.c orders that). */
	if (cluster_storage_giveup_pending(vm))
		return;
	if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED)
		to = plan_target(p->plan, vm);
	if (to == 0)
		to = place(p, vm, 0);
	if (to == 0) {
		/* Nowhere to go: level-triggered retry, once it fits. A VM
		 * whose bridges no host offers says so, once: failed, with
		 * the bridge named, until a host offers it. */
		if (bridges_missing(p, vm, why, sizeof why) ||
		    machine_missing(p, vm, why, sizeof why))
			decide_transition(p->st, p->origin, vm,
			    HAVEN__VM_PHASE__VM_PHASE_FAILED, p->out)->detail =
			    xstrdup(why);
		return;
	}
	pass_place_on(p, i, to);
	/* A complete saved state is restored, wherever the VM goes (a move,
	 * or its target lost meanwhile). */
	decide_assign(p->st, p->origin, vm, to,
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED || rt->saved_state ?
	    HAVEN__VM_PHASE__VM_PHASE_RESTORING :
	    HAVEN__VM_PHASE__VM_PHASE_STARTING, p->out);
}

/* Starting, running or paused: its owner stops it when it is not meant to
 * run; a running VM may start a planned move (migrate/plan.c), live or by
 * quick migration (save here, restore there). */
static void
reconcile_running(struct pass *p, size_t i)
{
	const Haven__Vm		*vm = p->order[i];
	const Haven__VmRuntime	*rt = vm->runtime;
	int			 running = rt->desired ==
				    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
	int			 live;
	uint32_t		 to;

	/* The owner stops it; a lost owner is handled above. */
	if (!running && is_member(p->members, p->n, rt->owner)) {
		decide_transition(p->st, p->origin, vm,
		    HAVEN__VM_PHASE__VM_PHASE_STOPPING, p->out);
		return;
	}
	if (!running || rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
	    !is_member(p->members, p->n, rt->owner))
		return;
	if (!plan_move(p->plan, vm, &to, &live))
		return;
	if (live) {
		pass_place_on(p, i, to);
		decide_transition(p->st, p->origin, vm,
		    HAVEN__VM_PHASE__VM_PHASE_MIGRATING, p->out)->target = to;
	} else
		decide_transition(p->st, p->origin, vm,
		    HAVEN__VM_PHASE__VM_PHASE_SAVING, p->out);
}

/* Failed: stopped if not meant to run; else restarted in place up to
 * max_restarts times, then elsewhere; given up (until `vm stop`, `vm
 * start`) once it failed to start on every host that many times in a row. */
static void
reconcile_failed(struct pass *p, size_t i)
{
	const Haven__Vm		*vm = p->order[i];
	const Haven__VmRuntime	*rt = vm->runtime;
	const struct load	*l;
	uint32_t		 to = 0;
	int			 in_place;

	if (rt->desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING) {
		decide_transition(p->st, p->origin, vm,
		    HAVEN__VM_PHASE__VM_PHASE_STOPPED, p->out);
		return;
	}
	if (cluster_storage_giveup_pending(vm))
		return;		/* as in reconcile_placed */
	if (rt->failures > (vm->config->max_restarts + 1) * p->st->cs->n_hosts)
		return;
	/* A saved state whose restore failed on its host is restored on
	 * another host (the same one only when no other can take it);
	 * anything else restarts in place first. */
	in_place = (l = load_of(p, rt->owner)) != NULL &&
	    cluster_host(p->st, rt->owner) != NULL && l->eligible &&
	    tree_storage_lost(p->st->cs, cluster_host(p->st, rt->owner),
	    vm->config) == NULL &&
	    machine_host_runs(p->st->cs, cluster_host(p->st, rt->owner)->config,
	    vm, vm->config, NULL, 0);
	if (!rt->saved_state && in_place &&
	    rt->restarts < vm->config->max_restarts)
		to = rt->owner;
	if (to == 0)
		to = place(p, vm, rt->owner);
	if (to == 0 && rt->saved_state && in_place)
		to = rt->owner;
	if (to == 0)
		return;
	pass_place_on(p, i, to);
	decide_assign(p->st, p->origin, vm, to, rt->saved_state ?
	    HAVEN__VM_PHASE__VM_PHASE_RESTORING :
	    HAVEN__VM_PHASE__VM_PHASE_STARTING, p->out);
}

/* Migrating live: called off (it runs on where it is) when the plan says
 * so; else its hosts report how it ends. */
static void
reconcile_migrating(struct pass *p, size_t i)
{
	const Haven__Vm	*vm = p->order[i];
	char		 why[80];

	if (plan_call_off(p->plan, vm, why, sizeof why))
		decide_transition(p->st, p->origin, vm,
		    HAVEN__VM_PHASE__VM_PHASE_RUNNING, p->out)->detail =
		    xstrdup(why);
}

static void
reconcile_vm(struct pass *p, size_t i)
{
	switch (p->order[i]->runtime->phase) {
	case HAVEN__VM_PHASE__VM_PHASE_STOPPED:
	case HAVEN__VM_PHASE__VM_PHASE_SAVED:
	case HAVEN__VM_PHASE__VM_PHASE_RECOVERING:
		reconcile_placed(p, i);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_STARTING:
	case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
	case HAVEN__VM_PHASE__VM_PHASE_PAUSED:
		reconcile_running(p, i);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_FAILED:
		reconcile_failed(p, i);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_MIGRATING:
		reconcile_migrating(p, i);
		break;
	default:
		/* In flight (stopping, saving, restoring): the owner
		 * reports the outcome. */
		break;
	}
}

int
coordinator_reconcile(const struct cluster *st, const uint32_t *members,
    size_t n, struct coordinator_decisions *out)
{
	return coordinator_reconcile_present(st, members, n, members, n, out);
}

int
coordinator_reconcile_present(const struct cluster *st,
    const uint32_t *members, size_t n, const uint32_t *present,
    size_t npresent, struct coordinator_decisions *out)
{
	const Haven__ClusterState	*cs = st->cs;
	struct pass			 p;
	size_t				 i;

	memset(out, 0, sizeof *out);
	if (n == 0 || members == NULL) {
		errno = EINVAL;
		return -1;
	}
	memset(&p, 0, sizeof p);
	p.st = st;
	p.members = members;
	p.n = n;
	p.present = present;
	p.npresent = npresent;
	p.origin = coordinator_of(members, n);
	p.out = out;
	p.loads = xcalloc(cs->n_hosts + 1, sizeof *p.loads);
	p.nloads = cs->n_hosts;
	pass_hosts(&p);

	/* VMs, in placement order. */
	p.order = xcalloc(cs->n_vms + 1, sizeof *p.order);
	p.placed_on = xcalloc(cs->n_vms + 1, sizeof *p.placed_on);
	for (i = 0; i < cs->n_vms; i++)
		p.order[i] = cs->vms[i];
	qsort(p.order, cs->n_vms, sizeof *p.order, vm_order);
	p.hosts.member = pass_member;
	p.hosts.fits = pass_fits;
	p.hosts.place = pass_place;
	p.hosts.arg = &p;
	if ((p.plan = plan_new(cs, &p.hosts)) == NULL)
		log_fatal("coordinator: out of memory");
	for (i = 0; i < cs->n_vms; i++)
		reconcile_vm(&p, i);
	for (i = 0; i < out->n; i++)
		out->changes[i]->origin = p.origin;
	plan_free(p.plan);
	free(p.order);
	free(p.placed_on);
	free(p.loads);
	return 0;
}

void
coordinator_decisions_free(struct coordinator_decisions *d)
{
	size_t	 i;

	/* A caller that handed a decision on sets its slot to NULL. */
	for (i = 0; i < d->n; i++) {
		if (d->changes[i] != NULL)
			protobuf_c_message_free_unpacked(&d->changes[i]->base,
			    NULL);
	}
	free(d->changes);
	d->changes = NULL;
	d->n = 0;
}

void
coordinator_describe(const Haven__Change *c, char *buf, size_t len)
{
	switch (c->kind_case) {
	case HAVEN__CHANGE__KIND_VM_ASSIGN:
		snprintf(buf, len, "%s %s on %u gen %llu",
		    c->vm_assign->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING ?
		    "restore" : "start", c->vm_assign->name, c->vm_assign->owner,
		    (unsigned long long)c->vm_assign->generation);
		break;
	case HAVEN__CHANGE__KIND_VM_TRANSITION:
		if (c->vm_transition->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPING)
			snprintf(buf, len, "stop %s gen %llu",
			    c->vm_transition->name, (unsigned long long)
			    c->vm_transition->generation);
		else
			snprintf(buf, len, "phase %s %s gen %llu",
			    c->vm_transition->name,
			    tree_phase_name(c->vm_transition->phase),
			    (unsigned long long)c->vm_transition->generation);
		break;
	case HAVEN__CHANGE__KIND_HOST_LOST:
		snprintf(buf, len, "host-lost %u", c->host_lost->node_id);
		break;
	case HAVEN__CHANGE__KIND_HOST_JOIN:
		snprintf(buf, len, "host-join %u", c->host_join->node_id);
		break;
	default:
		snprintf(buf, len, "change kind %d", (int)c->kind_case);
		break;
	}
}
