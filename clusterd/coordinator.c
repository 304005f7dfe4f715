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
 * being fenced, with room for the VM's memory and no VM of its anti-affinity
 * class. Preferred owners are a preference, not a restriction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

/* What a host carries during one reconcile pass, decisions included. */
struct load {
	uint32_t	 node_id;
	uint64_t	 used_mib;
	int		 eligible;
	unsigned	 moving;	/* moves away from it in flight */
};

/* Planned moves (drain, migrate, failback) at once from one host. */
#define COORDINATOR_MOVES_PER_HOST	2

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

static void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n, size)) == NULL)
		log_fatal("coordinator: out of memory");
	return p;
}

static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		log_fatal("coordinator: out of memory");
	return p;
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

static void
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
class_on(const struct cluster *st, const char *class, uint32_t host,
    const uint32_t *placed_on, const Haven__Vm *const *order)
{
	size_t	 i;

	if (class == NULL || *class == '\0')
		return 0;
	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__Vm	*vm = order[i];
		uint32_t	 on = placed_on[i] ? placed_on[i] :
		    tree_phase_occupies(vm->runtime->phase) ? vm->runtime->owner : 0;

		if (on == host && strcmp(vm->config->anti_affinity, class) == 0)
			return 1;
	}
	return 0;
}

static struct load *
load_of(struct load *loads, size_t n, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (loads[i].node_id == id)
			return &loads[i];
	return NULL;
}

/* The host for vm, or 0 when none is eligible; never `avoid`. */
static uint32_t
place(const struct cluster *st, const Haven__Vm *vm, struct load *loads,
    size_t nloads, const uint32_t *placed_on, const Haven__Vm *const *order,
    uint32_t avoid)
{
	const Haven__VmConfig	*vc = vm->config;
	const Haven__Host	*h;
	struct load		*l, *best = NULL;
	size_t			 i;

#define FITS(l) ((l)->eligible && (l)->node_id != avoid &&			\
	(h = cluster_host(st, (l)->node_id)) != NULL &&				\
	h->config->memory_mib >= (l)->used_mib &&				\
	h->config->memory_mib - (l)->used_mib >= vc->memory_mib &&		\
	!class_on(st, vc->anti_affinity, (l)->node_id, placed_on, order))
	for (i = 0; i < vc->n_preferred_owners; i++) {
		l = load_of(loads, nloads, vc->preferred_owners[i]);
		if (l != NULL && FITS(l))
			return l->node_id;
	}
	for (i = 0; i < nloads; i++) {
		l = &loads[i];
		if (!FITS(l))
			continue;
		/* loads are in node id order: ties keep the lowest id. */
		if (best == NULL || l->used_mib < best->used_mib)
			best = l;
	}
#undef FITS
	return best == NULL ? 0 : best->node_id;
}

/* A preferred owner ranked before vm's current one, eligible and with room,
 * or 0. */
static uint32_t
failback_target(const struct cluster *st, const Haven__Vm *vm,
    struct load *loads, size_t nloads, const uint32_t *placed_on,
    const Haven__Vm *const *order)
{
	const Haven__VmConfig	*vc = vm->config;
	const Haven__Host	*h;
	struct load		*l;
	size_t			 i;

	for (i = 0; i < vc->n_preferred_owners; i++) {
		if (vc->preferred_owners[i] == vm->runtime->owner)
			return 0;	/* already on the best one there is */
		l = load_of(loads, nloads, vc->preferred_owners[i]);
		if (l != NULL && l->eligible &&
		    (h = cluster_host(st, l->node_id)) != NULL &&
		    h->config->memory_mib >= l->used_mib &&
		    h->config->memory_mib - l->used_mib >= vc->memory_mib &&
		    !class_on(st, vc->anti_affinity, l->node_id, placed_on,
		    order))
			return l->node_id;
	}
	return 0;
}

/* A drained VM whose host resumed with failback, and takes VMs again. */
static int
going_home(const struct cluster *st, const Haven__VmRuntime *rt)
{
	const Haven__Host	*home;

	return rt->home != 0 && rt->home != rt->owner &&
	    (home = cluster_host(st, rt->home)) != NULL &&
	    !home->runtime->maintenance && home->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
}

/* Where a moving VM goes: the host asked for (or its home after a drain), if
 * it can take it; else a
 * preferred owner (failback) or wherever placement says, never back onto
 * the host it leaves. 0: nowhere. */
static uint32_t
move_target(const struct cluster *st, const Haven__Vm *vm, struct load *loads,
    size_t nloads, const uint32_t *placed_on, const Haven__Vm *const *order)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	uint32_t		 from = rt->migrate_from ? rt->migrate_from :
				    rt->owner;
	uint32_t		 want = rt->migrate_to ? rt->migrate_to : rt->home;
	struct load		*l;
	const Haven__Host	*h;

	if (want != 0 && want != from &&
	    (l = load_of(loads, nloads, want)) != NULL &&
	    l->eligible && (h = cluster_host(st, l->node_id)) != NULL &&
	    h->config->memory_mib >= l->used_mib &&
	    h->config->memory_mib - l->used_mib >= vm->config->memory_mib)
		return want;
	return place(st, vm, loads, nloads, placed_on, order, from);
}

/* Whether a planned move goes live: an operator's move unless it asked for
 * (or fell back to) quick migration; a drain or failback when the VM's
 * priority reaches the cluster's drain_live_priority. */
static int
move_live(const struct cluster *st, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;

	if (rt->quick)
		return 0;
	if (rt->migrate_to != 0)
		return 1;
	return vm->config->priority >=
	    CLUSTER_DRAIN_LIVE_PRIORITY(st->cs->settings);
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
	const Haven__Vm			**order = NULL;
	const Haven__Host		*owner;
	struct load			*loads = NULL, *l;
	uint32_t			*placed_on = NULL, origin, to;
	size_t				 i, j;
	int				 member;

	memset(out, 0, sizeof *out);
	if (n == 0 || members == NULL) {
		errno = EINVAL;
		return -1;
	}
	origin = coordinator_of(members, n);

	/* Hosts: corosync's membership against the state's. */
	loads = xcalloc(cs->n_hosts + 1, sizeof *loads);
	for (i = 0; i < cs->n_hosts; i++) {
		const Haven__Host	*h = cs->hosts[i];
		Haven__HostMembership	 was = h->runtime->membership;

		member = is_member(members, n, h->config->node_id);
		/* A host whose havend restarts is still up: not lost. */
		if (was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
		    !member && !is_member(present, npresent,
		    h->config->node_id))
			decide_host(st, origin, h->config->node_id, 1, out);
		else if (member && (was ==
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_UNSPECIFIED ||
		    (was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST &&
		    h->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED)))
			decide_host(st, origin, h->config->node_id, 0, out);
		loads[i].node_id = h->config->node_id;
		loads[i].eligible = member &&
		    was == HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
		    !h->runtime->maintenance &&
		    h->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
	}
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = cs->vms[i]->runtime;

		if (tree_phase_occupies(rt->phase) &&
		    (l = load_of(loads, cs->n_hosts, rt->owner)) != NULL)
			l->used_mib += cs->vms[i]->config->memory_mib;
		/* A live migration holds memory on its target too. */
		if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING &&
		    (l = load_of(loads, cs->n_hosts, rt->migrate_to)) != NULL)
			l->used_mib += cs->vms[i]->config->memory_mib;
		if ((rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING) &&
		    rt->migrate_from != 0 &&
		    (l = load_of(loads, cs->n_hosts, rt->migrate_from)) != NULL)
			l->moving++;
	}

	/* VMs, in placement order. */
	order = xcalloc(cs->n_vms + 1, sizeof *order);
	placed_on = xcalloc(cs->n_vms + 1, sizeof *placed_on);
	for (i = 0; i < cs->n_vms; i++)
		order[i] = cs->vms[i];
	qsort(order, cs->n_vms, sizeof *order, vm_order);
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__Vm		*vm = order[i];
		const Haven__VmRuntime	*rt = vm->runtime;
		int			 running =
		    rt->desired == HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
		int			 fenced, in_place;

		owner = rt->owner ? cluster_host(st, rt->owner) : NULL;
		fenced = owner != NULL && owner->runtime->fence ==
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED;
		switch (rt->phase) {
		case HAVEN__VM_PHASE__VM_PHASE_STOPPED:
		case HAVEN__VM_PHASE__VM_PHASE_SAVED:
		case HAVEN__VM_PHASE__VM_PHASE_RECOVERING:
			/* A recovering VM moves only once its host is fenced. */
			if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_RECOVERING &&
			    !fenced)
				break;
			if (!running) {
				if (rt->phase ==
				    HAVEN__VM_PHASE__VM_PHASE_RECOVERING)
					decide_transition(st, origin, vm,
					    HAVEN__VM_PHASE__VM_PHASE_STOPPED,
					    out);
				break;
			}
			to = 0;
			if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED)
				to = move_target(st, vm, loads, cs->n_hosts,
				    placed_on, order);
			if (to == 0)
				to = place(st, vm, loads, cs->n_hosts, placed_on,
				    order, 0);
			if (to == 0)
				break;	/* nowhere to go: level-triggered retry */
			placed_on[i] = to;
			load_of(loads, cs->n_hosts, to)->used_mib +=
			    vm->config->memory_mib;
			/* A complete saved state is restored, wherever the
			 * VM goes (a move, or its target lost meanwhile). */
			decide_assign(st, origin, vm, to,
			    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED ||
			    rt->saved_state ?
			    HAVEN__VM_PHASE__VM_PHASE_RESTORING :
			    HAVEN__VM_PHASE__VM_PHASE_STARTING, out);
			break;
		case HAVEN__VM_PHASE__VM_PHASE_STARTING:
		case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
		case HAVEN__VM_PHASE__VM_PHASE_PAUSED:
			/* The owner stops it; a lost owner is handled above. */
			if (!running && is_member(members, n, rt->owner)) {
				decide_transition(st, origin, vm,
				    HAVEN__VM_PHASE__VM_PHASE_STOPPING, out);
				break;
			}
			/* Planned moves by quick migration (save here, restore
			 * there): an operator's migrate, a drain of the host,
			 * a failback to a preferred host that is back. Only
			 * when a target exists, a few at a time per host. */
			if (!running || rt->phase !=
			    HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
			    !is_member(members, n, rt->owner))
				break;
			owner = cluster_host(st, rt->owner);
			if (rt->migrate_to == 0 && !(owner != NULL &&
			    owner->runtime->maintenance) &&
			    !going_home(st, rt) &&
			    !(vm->config->failback && failback_target(st, vm,
			    loads, cs->n_hosts, placed_on, order) != 0))
				break;
			if ((l = load_of(loads, cs->n_hosts, rt->owner)) ==
			    NULL || l->moving >= COORDINATOR_MOVES_PER_HOST)
				break;
			if ((to = move_target(st, vm, loads, cs->n_hosts,
			    placed_on, order)) == 0)
				break;	/* nowhere to go: stay */
			l->moving++;
			if (move_live(st, vm)) {
				placed_on[i] = to;
				load_of(loads, cs->n_hosts, to)->used_mib +=
				    vm->config->memory_mib;
				decide_transition(st, origin, vm,
				    HAVEN__VM_PHASE__VM_PHASE_MIGRATING, out);
				out->changes[out->n - 1]->vm_transition->target =
				    to;
			} else
				decide_transition(st, origin, vm,
				    HAVEN__VM_PHASE__VM_PHASE_SAVING, out);
			break;
		case HAVEN__VM_PHASE__VM_PHASE_FAILED:
			if (!running) {
				decide_transition(st, origin, vm,
				    HAVEN__VM_PHASE__VM_PHASE_STOPPED, out);
				break;
			}
			/* Restart in place up to max_restarts times, then
			 * elsewhere; give up (until `vm stop`, `vm start`)
			 * once it failed to start on every host that many
			 * times in a row. */
			if (rt->failures > (vm->config->max_restarts + 1) *
			    cs->n_hosts)
				break;
			/* A saved state whose restore failed on its host is
			 * restored on another host (the same one only when no
			 * other can take it); anything else restarts in place
			 * first. */
			in_place = load_of(loads, cs->n_hosts, rt->owner) !=
			    NULL && cluster_host(st, rt->owner) != NULL &&
			    load_of(loads, cs->n_hosts, rt->owner)->eligible;
			to = 0;
			if (!rt->saved_state && in_place &&
			    rt->restarts < vm->config->max_restarts)
				to = rt->owner;
			if (to == 0)
				to = place(st, vm, loads, cs->n_hosts, placed_on,
				    order, rt->owner);
			if (to == 0 && rt->saved_state && in_place)
				to = rt->owner;
			if (to == 0)
				break;
			placed_on[i] = to;
			load_of(loads, cs->n_hosts, to)->used_mib +=
			    vm->config->memory_mib;
			decide_assign(st, origin, vm, to, rt->saved_state ?
			    HAVEN__VM_PHASE__VM_PHASE_RESTORING :
			    HAVEN__VM_PHASE__VM_PHASE_STARTING, out);
			break;
		case HAVEN__VM_PHASE__VM_PHASE_MIGRATING:
			/* Live, to a host that left the membership (lost, or
			 * its havend restarting), or of a VM an operator
			 * stopped meanwhile: it runs on where it is (and then
			 * stops), rather than wait out the converge budget. */
			if (is_member(members, n, rt->owner) &&
			    (!is_member(members, n, rt->migrate_to) ||
			    !running)) {
				char	 why[80];

				decide_transition(st, origin, vm,
				    HAVEN__VM_PHASE__VM_PHASE_RUNNING, out);
				if (!running)
					snprintf(why, sizeof why, "called off: "
					    "the VM is to stop");
				else
					snprintf(why, sizeof why, "its target "
					    "host %u left the membership",
					    rt->migrate_to);
				out->changes[out->n - 1]->vm_transition->detail =
				    xstrdup(why);
			}
			break;
		default:
			/* In flight (stopping, saving, restoring): the owner
			 * reports the outcome. */
			break;
		}
	}
	for (j = 0; j < out->n; j++)
		out->changes[j]->origin = origin;
	free(order);
	free(placed_on);
	free(loads);
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
