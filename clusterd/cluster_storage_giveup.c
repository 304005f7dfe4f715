/*
 * The storage policy's decisions that need only the replicated state, the
 * quorate membership and the time (issue 20), so that unit tests see what
 * the coordinator decides (clusterd/storage_move.c acts on them): a VM's
 * storage timeout, and when a VM paused for its storage is given up.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

/* A VM still paused this long after its host saw the pool back is not
 * about to resume (its own LUN may be the one missing): the giveup may
 * stop it. The worker resumes within 1-2 s of its storage answering. */
#define GIVEUP_GRACE_US	(UINT64_C(10) * 1000000)

uint32_t
cluster_storage_timeout_s(const Haven__ClusterState *cs,
    const Haven__VmConfig *vc)
{
	if (vc != NULL && vc->storage_timeout_s != 0)
		return vc->storage_timeout_s;
	return CLUSTER_STORAGE_TIMEOUT_S(cs->settings);
}

static int
giveup_is_member(const uint32_t *members, size_t n, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (members[i] == id)
			return 1;
	return 0;
}

/* Whether a quorate member other than owner reports pool reachable: then
 * the VM can move (storage_move.c), and is not given up. */
static int
giveup_reached_elsewhere(const Haven__ClusterState *cs,
    const uint32_t *members, size_t n, uint32_t owner, const char *pool)
{
	const Haven__HostRuntime	*hr;
	long				 k;
	size_t				 i, j;

	for (i = 0; i < n; i++) {
		if (members[i] == owner ||
		    (k = tree_host_find(cs, members[i], NULL)) < 0)
			continue;
		hr = cs->hosts[k]->runtime;
		if (hr == NULL || hr->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
			continue;
		for (j = 0; j < hr->n_storage; j++)
			if (hr->storage[j]->reachable &&
			    strcmp(hr->storage[j]->pool, pool) == 0)
				return 1;
	}
	return 0;
}

/*
 * The owner's report of vm's pools: the first it lost (NULL: none), and
 * the latest moment one of them came back after the pause began (0: none;
 * the VM is then about to resume).
 */
static const Haven__PoolHealth *
giveup_owner_storage(const Haven__ClusterState *cs, const Haven__Host *owner,
    const Haven__Vm *vm, uint64_t *back_us)
{
	const Haven__HostRuntime	*hr = owner->runtime;
	const Haven__VolumeConfig	*v;
	long				 k;
	size_t				 i, j;

	*back_us = 0;
	for (i = 0; hr != NULL && i < vm->config->n_volumes; i++) {
		if ((k = tree_volume_find(cs, vm->config->volumes[i],
		    NULL)) < 0)
			continue;
		v = cs->volumes[k];
		for (j = 0; j < hr->n_storage; j++)
			if (hr->storage[j]->reachable &&
			    strcmp(hr->storage[j]->pool, v->pool) == 0 &&
			    hr->storage[j]->since_us >
			    vm->runtime->paused_since_us &&
			    hr->storage[j]->since_us > *back_us)
				*back_us = hr->storage[j]->since_us;
	}
	return tree_storage_lost(cs, owner, vm->config);
}

/*
 * Whether vm, paused because its storage does not answer where no other
 * member reaches it either, is to be stopped now: storage_giveup_s set,
 * the VM meant to run, paused (by its worker for its storage, or while
 * its owner, a quorate member, reports one of its pools lost) for that
 * long, no storage fence order under way, and no member but the owner
 * reaching the pool (then it moves instead). A pause that began before
 * the owner saw the pool back gets GIVEUP_GRACE_US to end by itself.
 */
int
cluster_storage_giveup_due(const Haven__ClusterState *cs, const Haven__Vm *vm,
    const uint32_t *members, size_t n, uint64_t now_us, uint64_t *deadline_us,
    const char **pool)
{
	const Haven__VmRuntime		*rt = vm->runtime;
	const Haven__StorageFence	*f = rt->storage_fence;
	const Haven__PoolHealth		*lost;
	const Haven__Host		*owner;
	uint64_t			 giveup, due, back;
	long				 k;

	giveup = (uint64_t)CLUSTER_STORAGE_GIVEUP_S(cs->settings) * 1000000;
	if (giveup == 0 || rt->desired !=
	    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ||
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED ||
	    rt->paused_since_us == 0 || vm->config->n_volumes == 0 ||
	    !giveup_is_member(members, n, rt->owner) ||
	    (k = tree_host_find(cs, rt->owner, NULL)) < 0)
		return 0;
	owner = cs->hosts[k];
	if (f != NULL && f->generation == rt->generation && (f->giveup_us != 0 ||
	    f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER ||
	    f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED))
		return 0;	/* fenced off there, or being: it moves */
	lost = giveup_owner_storage(cs, owner, vm, &back);
	if (lost == NULL && strncmp(rt->paused_why, VM_PAUSED_FOR_STORAGE,
	    strlen(VM_PAUSED_FOR_STORAGE)) != 0)
		return 0;	/* paused by hand, not for its storage */
	if (lost != NULL && giveup_reached_elsewhere(cs, members, n, rt->owner,
	    lost->pool))
		return 0;	/* another member reaches it: it moves */
	if (lost != NULL)
		*pool = lost->pool;
	else if ((k = tree_volume_find(cs, vm->config->volumes[0], NULL)) >= 0)
		*pool = cs->volumes[k]->pool;
	else
		*pool = "";
	due = rt->paused_since_us + giveup;
	if (lost == NULL && back != 0 && back + GIVEUP_GRACE_US > due)
		due = back + GIVEUP_GRACE_US;
	if (now_us >= due)
		return 1;
	if (due < *deadline_us)
		*deadline_us = due;
	return 0;
}
