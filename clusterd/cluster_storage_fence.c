/*
 * Applying a storage fence by order (issue 20) to the replicated state:
 * cluster_apply's kind VM_STORAGE_FENCE, and the rule that an order holds
 * only while its VM stays where it was ordered. The coordinator orders a
 * member that reaches a VM's pool to fence the VM's host off the VM's
 * volumes (clusterd/storage_move.c); that member reports back
 * (clusterd/storage_fence.c). The giveup (storage_giveup_s) stops a VM
 * whose storage nobody reaches and keeps its host's key marked for such a
 * fence: the VM starts again only after it. Checks everything before it
 * touches anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"

#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

/* The phases an order holds in: the VM occupies its owner's storage. */
static int
storage_fence_phase(Haven__VmPhase p)
{
	return p == HAVEN__VM_PHASE__VM_PHASE_STARTING ||
	    p == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
	    p == HAVEN__VM_PHASE__VM_PHASE_PAUSED;
}

static const char *
storage_fence_step_name(Haven__StorageFenceStep s)
{
	switch (s) {
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER:
		return "order";
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED:
		return "fenced";
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED:
		return "failed";
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL:
		return "cancel";
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP:
		return "giveup";
	default:
		return "none";
	}
}

/* A giveup's mark at the VM's generation: its host is still to be fenced
 * off the VM's volumes. */
static int
storage_fence_given_up(const Haven__VmRuntime *rt)
{
	return rt != NULL && rt->storage_fence != NULL &&
	    rt->storage_fence->giveup_us != 0 &&
	    rt->storage_fence->generation == rt->generation;
}

int
cluster_storage_giveup_pending(const Haven__Vm *vm)
{
	return storage_fence_given_up(vm->runtime);
}

/* The checks of every step: the VM at the change's generation, on host,
 * in a phase an order holds in; or, given up, host the one it left (in
 * whatever phase). A giveup needs the VM paused and meant to run. */
static int
storage_fence_vm_check(const Haven__ClusterState *cs,
    const Haven__VmStorageFence *f, Haven__Vm **vm, char *err, size_t errlen)
{
	const Haven__VmRuntime	*rt;
	long			 i;

	if (f->step < HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER ||
	    f->step > HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP)
		REFUSE(CLUSTER_E_INVALID, "vm_storage_fence needs step order, "
		    "fenced, failed, cancel or giveup");
	if ((i = tree_vm_find(cs, f->name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", f->name);
	rt = cs->vms[i]->runtime;
	if (f->generation != rt->generation)
		REFUSE(CLUSTER_E_STALE, "VM %s is at generation %llu, the storage "
		    "fence is for %llu", f->name,
		    (unsigned long long)rt->generation,
		    (unsigned long long)f->generation);
	*vm = cs->vms[i];
	if (storage_fence_given_up(rt)) {
		if (f->host != rt->storage_fence->host)
			REFUSE(CLUSTER_E_STALE, "VM %s was given up on host "
			    "%u, not host %u", f->name,
			    rt->storage_fence->host, f->host);
		return CLUSTER_OK;
	}
	if (f->host == 0 || rt->owner != f->host)
		REFUSE(CLUSTER_E_STALE, "VM %s is on host %u, not host %u",
		    f->name, rt->owner, f->host);
	if (!storage_fence_phase(rt->phase))
		REFUSE(CLUSTER_E_STALE, "VM %s is %s: no storage fence for it",
		    f->name, tree_phase_name(rt->phase));
	if (f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP &&
	    (rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED || rt->desired !=
	    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING))
		REFUSE(CLUSTER_E_STALE, "VM %s is %s%s: nothing to give up",
		    f->name, tree_phase_name(rt->phase), rt->desired ==
		    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ? "" :
		    " and meant to stop");
	return CLUSTER_OK;
}

/*
 * The giveup: the VM, paused for its storage at its generation on host,
 * is stopped (desired stopped, phase stopping: its host kills its worker,
 * local.c) and the order slot marks host's key as still on its volumes.
 * Its attempts go on from the standing order's (a late report of one is
 * stale). The event says why and what to do.
 */
/*
 * The giveup's mark: host's key is still on vm's volumes at generation (a
 * VM stopped while paused on storage that does not answer); the VM neither
 * starts nor is deleted until a member that reaches pool has fenced host
 * off them by order.
 */
void
cluster_storage_giveup_mark(Haven__VmRuntime *rt, uint64_t generation,
    uint32_t host, const char *pool, uint64_t timestamp_us)
{
	Haven__StorageFence	*sf = rt->storage_fence;

	if (sf == NULL) {
		sf = xcalloc(1, sizeof *sf);
		haven__storage_fence__init(sf);
		rt->storage_fence = sf;
	} else {
		if (sf->pool != protobuf_c_empty_string)
			free(sf->pool);
		if (sf->detail != protobuf_c_empty_string)
			free(sf->detail);
	}
	sf->generation = generation;
	sf->host = host;
	sf->by = 0;
	sf->pool = xstrdup(tree_empty(pool) ? "" : pool);
	sf->step = HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP;
	sf->detail = xstrdup("");
	sf->ordered_us = 0;
	sf->giveup_us = timestamp_us != 0 ? timestamp_us : 1;
}

static void
storage_fence_giveup(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm)
{
	const Haven__VmStorageFence	*f = c->vm_storage_fence;
	Haven__VmRuntime		*rt = vm->runtime;
	uint64_t			 paused_s = 0;
	char				 subject[64];

	if (rt->paused_since_us != 0 && c->timestamp_us > rt->paused_since_us)
		paused_s = (c->timestamp_us - rt->paused_since_us) / 1000000;
	cluster_storage_giveup_mark(rt, f->generation, f->host, f->pool,
	    c->timestamp_us);
	rt->desired = HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED;
	rt->phase = HAVEN__VM_PHASE__VM_PHASE_STOPPING;
	snprintf(subject, sizeof subject, "vm %.48s", f->name);
	tree_event_log(cs, c, subject, "storage lost for %llu s (pool %.48s, "
	    "host %u): stopped by storage_giveup_s; start it with 'havenctl "
	    "vm start %.48s' when the SAN is back", (unsigned long long)paused_s,
	    rt->storage_fence->pool, f->host, f->name);
}

/*
 * An order, or a report on one. An order needs a member other than the
 * owner, and an attempt one more than the standing order's (a resent or
 * crossed order is stale); none after the owner was fenced. A report comes
 * from the member ordered, for the standing attempt, once. A cancel ends
 * an order that is not fenced; it stays in the state, marked off, so that
 * attempts never repeat within a generation. A giveup stops a paused VM
 * meant to run, unless its host is being fenced (it moves then); its mark
 * takes orders and reports as above but no cancel, and goes once fenced.
 * The state cannot know who coordinates; the coordinator alone sends
 * orders, cancels and giveups (storage_move.c).
 */
int
cluster_apply_vm_storage_fence(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__VmStorageFence	*f = c->vm_storage_fence;
	Haven__StorageFence		*sf;
	Haven__Vm			*vm = NULL;
	uint64_t			 giveup_us;
	long				 hi;
	char				 subject[64];
	int				 r;

	if ((r = storage_fence_vm_check(cs, f, &vm, err, errlen)) != CLUSTER_OK)
		return r;
	sf = vm->runtime->storage_fence;
	switch (f->step) {
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER:
		if (f->by == f->host)
			REFUSE(CLUSTER_E_INVALID, "VM %s: host %u cannot fence "
			    "itself off its volumes", f->name, f->host);
		if ((hi = tree_host_find(cs, f->by, NULL)) < 0)
			REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist",
			    f->by);
		if (cs->hosts[hi]->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
			REFUSE(CLUSTER_E_CONFLICT, "host %u is not a member",
			    f->by);
		if (sf != NULL && sf->step ==
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED)
			REFUSE(CLUSTER_E_STALE, "VM %s: host %u is fenced off "
			    "its volumes already", f->name, f->host);
		if (f->attempt != (sf != NULL ? sf->attempt : 0) + 1)
			REFUSE(CLUSTER_E_STALE, "VM %s: storage fence order %u "
			    "stands, this is attempt %u", f->name, sf != NULL ?
			    sf->attempt : 0, f->attempt);
		break;
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED:
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED:
		if (sf == NULL || sf->attempt != f->attempt ||
		    sf->by != f->by || sf->host != f->host)
			REFUSE(CLUSTER_E_STALE, "VM %s: no storage fence order "
			    "%u to host %u stands", f->name, f->attempt, f->by);
		if (c->origin != f->by)
			REFUSE(CLUSTER_E_INVALID, "VM %s: only host %u reports "
			    "on its storage fence (this came from host %u)",
			    f->name, f->by, c->origin);
		if (sf->step != HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER)
			REFUSE(CLUSTER_E_STALE, "VM %s: storage fence order %u "
			    "was reported on already (%s)", f->name, f->attempt,
			    storage_fence_step_name(sf->step));
		break;
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP:
		if (sf != NULL && sf->giveup_us != 0)
			REFUSE(CLUSTER_E_STALE, "VM %s was given up already",
			    f->name);
		if (sf != NULL && (sf->step ==
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER ||
		    sf->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED))
			REFUSE(CLUSTER_E_CONFLICT, "VM %s: host %u is being "
			    "fenced off its volumes; it moves", f->name,
			    f->host);
		break;
	default:	/* cancel */
		if (sf != NULL && sf->giveup_us != 0)
			REFUSE(CLUSTER_E_CONFLICT, "VM %s was given up on host "
			    "%u: its key is to be fenced off the VM's volumes "
			    "before it starts again", f->name, f->host);
		if (sf == NULL || sf->attempt != f->attempt)
			REFUSE(CLUSTER_E_STALE, "VM %s: no storage fence order "
			    "%u stands", f->name, f->attempt);
		if (sf->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED)
			REFUSE(CLUSTER_E_CONFLICT, "VM %s: host %u is fenced off "
			    "its volumes; the VM moves", f->name, f->host);
		if (sf->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL)
			REFUSE(CLUSTER_E_STALE, "VM %s: storage fence order %u "
			    "is off already", f->name, f->attempt);
		break;
	}
	if (!commit)
		return CLUSTER_OK;
	snprintf(subject, sizeof subject, "vm %.48s", f->name);
	switch (f->step) {
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER:
		giveup_us = sf != NULL ? sf->giveup_us : 0;
		if (sf != NULL)
			protobuf_c_message_free_unpacked(&sf->base, NULL);
		sf = xcalloc(1, sizeof *sf);
		haven__storage_fence__init(sf);
		sf->giveup_us = giveup_us;
		sf->generation = f->generation;
		sf->host = f->host;
		sf->by = f->by;
		sf->attempt = f->attempt;
		sf->pool = xstrdup(tree_empty(f->pool) ? "" : f->pool);
		sf->step = f->step;
		sf->detail = xstrdup("");
		sf->ordered_us = c->timestamp_us;
		vm->runtime->storage_fence = sf;
		tree_event_log(cs, c, subject, "host %u lost pool %.48s: host %u "
		    "ordered to fence it off the VM's volumes (attempt %u)",
		    f->host, sf->pool, f->by, f->attempt);
		break;
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED:
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED:
		sf->step = f->step;
		/* Read from a state file, an empty string is protobuf-c's. */
		if (sf->detail != protobuf_c_empty_string)
			free(sf->detail);
		sf->detail = xstrdup(tree_empty(f->detail) ? "" : f->detail);
		tree_event_log(cs, c, subject, "host %u %s host %u off the VM's "
		    "volumes%s%.120s", f->by, f->step ==
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED ?
		    "fenced" : "could not fence", f->host,
		    tree_empty(f->detail) ? "" : ": ",
		    tree_empty(f->detail) ? "" : f->detail);
		/* Given up, now fenced: nothing holds it back any more
		 * (cluster_storage_fence_sync drops the mark). */
		if (sf->giveup_us != 0 && f->step ==
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED)
			tree_event_log(cs, c, subject, "host %u's key is off "
			    "its volumes: it may start again%s", f->host,
			    vm->runtime->desired ==
			    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ?
			    " (meant to run: it starts now)" : "");
		break;
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP:
		storage_fence_giveup(cs, c, vm);
		break;
	default:
		/* Kept, with its attempt: a report of it that comes late, or
		 * an order crossing this cancel, is stale (the next order is
		 * attempt + 1), never taken for a later order's. */
		sf->step = f->step;
		tree_event_log(cs, c, subject, "storage fence order %u off%s"
		    "%.120s", f->attempt, tree_empty(f->detail) ? "" : ": ",
		    tree_empty(f->detail) ? "" : f->detail);
		break;
	}
	return CLUSTER_OK;
}

/*
 * After every change: an order holds only while its VM is at the order's
 * generation on the host it fences, in phase starting, running or paused.
 * Once the VM failed, stopped, moved or was lost with its host, the order
 * is moot and goes (deterministically, on every member alike). A giveup's
 * mark holds at its generation, whatever the phase, until its host is
 * fenced (the VM cannot leave that generation before: no start).
 */
void
cluster_storage_fence_sync(Haven__ClusterState *cs)
{
	Haven__VmRuntime	*rt;
	size_t			 i;

	for (i = 0; i < cs->n_vms; i++) {
		rt = cs->vms[i]->runtime;
		if (rt == NULL || rt->storage_fence == NULL)
			continue;
		if (storage_fence_given_up(rt) && rt->storage_fence->step !=
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED)
			continue;
		if (rt->storage_fence->giveup_us == 0 &&
		    rt->storage_fence->generation == rt->generation &&
		    rt->storage_fence->host == rt->owner &&
		    storage_fence_phase(rt->phase))
			continue;
		protobuf_c_message_free_unpacked(&rt->storage_fence->base,
		    NULL);
		rt->storage_fence = NULL;
	}
}
