/*
 * Planned moves for the coordinator's reconcile pass (DESIGN §6): which
 * running VMs move (an operator's migrate, a drain of their host, a failback
 * to their home or to a preferred host that is back), where to, live when the
 * VM's priority reaches the cluster's drain_live_priority (or an operator
 * asked for live), and at most PLAN_MOVES_PER_HOST at a time from one host.
 * Placement itself stays the coordinator's; it lends it as struct plan_hosts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "proto.h"
#include "tree.h"
#include "moves.h"

struct plan {
	const Haven__ClusterState *cs;
	const struct plan_hosts	*hosts;
	unsigned		*moving;	/* per cs->hosts[i]: moves away */
};

struct plan *
plan_new(const Haven__ClusterState *cs, const struct plan_hosts *hosts)
{
	struct plan	*p;
	size_t		 i;
	long		 hi;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	if ((p->moving = calloc(cs->n_hosts + 1, sizeof *p->moving)) == NULL) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->cs = cs;
	p->hosts = hosts;
	/* The moves under way: from the save (or the start of a live
	 * migration) until the VM runs on its target. */
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = cs->vms[i]->runtime;

		if ((rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING) &&
		    tree_move(rt)->from != 0 &&
		    (hi = tree_host_find(cs, tree_move(rt)->from, NULL)) >= 0)
			p->moving[hi]++;
	}
	return p;
}

void
plan_free(struct plan *p)
{
	if (p == NULL)
		return;
	free(p->moving);
	free(p);
}

/* A preferred owner ranked before vm's current one that can take it, or
 * 0. */
static uint32_t
plan_failback_target(const struct plan *p, const Haven__Vm *vm)
{
	const Haven__VmConfig	*vc = vm->config;
	size_t			 i;

	for (i = 0; i < vc->n_preferred_owners; i++) {
		if (vc->preferred_owners[i] == vm->runtime->owner)
			return 0;	/* already on the best one there is */
		if (p->hosts->fits(p->hosts->arg, vm, vc->preferred_owners[i],
		    1))
			return vc->preferred_owners[i];
	}
	return 0;
}

/* An operator's move to a named host that is briefly out of the membership
 * (its havend restarting: still a member in the state, in no maintenance):
 * the move waits for it rather than go where placement says. A target
 * marked lost or put in maintenance meanwhile is not waited for. */
static int
plan_target_back_soon(const struct plan *p, const Haven__VmRuntime *rt)
{
	uint32_t		 to = tree_move(rt)->to;
	const Haven__Host	*h;

	if (to == 0 || to == rt->owner || p->hosts->member(p->hosts->arg, to))
		return 0;
	return (h = tree_host(p->cs, to)) != NULL &&
	    !h->runtime->maintenance && h->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
}

/* A drained VM whose host resumed with failback, and takes VMs again. */
static int
plan_going_home(const struct plan *p, const Haven__VmRuntime *rt)
{
	const Haven__Host	*home;

	return rt->home != 0 && rt->home != rt->owner &&
	    (home = tree_host(p->cs, rt->home)) != NULL &&
	    !home->runtime->maintenance && home->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
}

uint32_t
plan_target(struct plan *p, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	uint32_t		 from = tree_move(rt)->from ? tree_move(rt)->from :
				    rt->owner;
	uint32_t		 want = tree_move(rt)->to ? tree_move(rt)->to : rt->home;

	if (want != 0 && want != from &&
	    p->hosts->fits(p->hosts->arg, vm, want, 0))
		return want;
	return p->hosts->place(p->hosts->arg, vm, from);
}

/* Whether a planned move goes live: an operator's move unless it asked for
 * (or fell back to) quick migration; a drain or failback when the VM's
 * priority reaches the cluster's drain_live_priority. */
static int
plan_live(const struct plan *p, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;

	if (tree_move(rt)->quick)
		return 0;
	if (tree_move(rt)->to != 0)
		return 1;
	return vm->config->priority >=
	    CLUSTER_DRAIN_LIVE_PRIORITY(p->cs->settings);
}

int
plan_move(struct plan *p, const Haven__Vm *vm, uint32_t *to, int *live)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	const Haven__Host	*owner = tree_host(p->cs, rt->owner);
	long			 hi;

	if (tree_move(rt)->to == 0 && !(owner != NULL &&
	    owner->runtime->maintenance) && !plan_going_home(p, rt) &&
	    !(vm->config->failback && plan_failback_target(p, vm) != 0))
		return 0;
	if ((hi = tree_host_find(p->cs, rt->owner, NULL)) < 0 ||
	    p->moving[hi] >= PLAN_MOVES_PER_HOST)
		return 0;
	if (plan_target_back_soon(p, rt))
		return 0;	/* level-triggered: planned again once back */
	if ((*to = plan_target(p, vm)) == 0)
		return 0;	/* nowhere to go: stay */
	p->moving[hi]++;
	*live = plan_live(p, vm);
	return 1;
}

int
plan_call_off(struct plan *p, const Haven__Vm *vm, char *why, size_t len)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	int			 running = rt->desired ==
				    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;

	/* Live, to a host that left the membership (lost, or its havend
	 * restarting), or of a VM an operator stopped meanwhile: it runs on
	 * where it is (and then stops), rather than wait out the converge
	 * budget. */
	if (!p->hosts->member(p->hosts->arg, rt->owner) ||
	    (p->hosts->member(p->hosts->arg, tree_move(rt)->to) && running))
		return 0;
	if (!running)
		snprintf(why, len, "called off: the VM is to stop");
	else
		snprintf(why, len, "its target host %u left the membership",
		    tree_move(rt)->to);
	return 1;
}
