/*
 * The move phases as the replicated state applies them (DESIGN §6): an
 * operator's migrate, the steps of a live migration (ready, progress, the
 * source's stop, the handover, failure and the fall back to quick migration),
 * and what transitions, a cold start or a lost host do to a move. The only
 * code of havend's state that reads or writes a VM's move fields; moves.h
 * lists them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "proto.h"
#include "tree.h"
#include "moves.h"

#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

int
moves_apply_migrate(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__VmMigrate	*m = c->vm_migrate;
	Haven__VmRuntime	*rt;
	const Haven__Host	*h;
	char			 missing[NIC_BRIDGE_PER_VLAN_MAX], why[160];
	long			 i, hi;
	char			 subject[64];

	if ((i = tree_vm_find(cs, m->name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", m->name);
	rt = cs->vms[i]->runtime;
	if (rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING)
		REFUSE(CLUSTER_E_CONFLICT, "VM %s is %s; only a running VM moves",
		    m->name, tree_phase_name(rt->phase));
	if (tree_move(rt)->to != 0)
		REFUSE(CLUSTER_E_CONFLICT, "VM %s is moving to host %u already",
		    m->name, tree_move(rt)->to);
	if (m->target != 0) {
		if ((hi = tree_host_find(cs, m->target, NULL)) < 0)
			REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist",
			    m->target);
		h = cs->hosts[hi];
		if (m->target == rt->owner)
			REFUSE(CLUSTER_E_CONFLICT, "VM %s runs on host %u already",
			    m->name, m->target);
		if (h->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER ||
		    h->runtime->maintenance)
			REFUSE(CLUSTER_E_CONFLICT, "host %u is %s; it takes no VMs",
			    m->target, h->runtime->maintenance ?
			    "in maintenance" : "not a member");
		if (!nic_bridges_offered(h->config, cs->vms[i]->config,
		    missing, sizeof missing))
			REFUSE(CLUSTER_E_CONFLICT, "host %u does not offer bridge "
			    "%s to guests, which a NIC of VM %s is on; pick "
			    "another host, or list the bridge under "
			    "[interfaces] vm in its haven.conf", m->target,
			    missing, m->name);
		if (!machine_host_runs(cs, h->config, cs->vms[i],
		    cs->vms[i]->config, why, sizeof why))
			REFUSE(CLUSTER_E_CONFLICT, "VM %s cannot move to host "
			    "%u: %s; pick another host, or give it that QEMU",
			    m->name, m->target, why);
	}
	if (!commit)
		return CLUSTER_OK;
	/* 0 would read as "no move": a move "anywhere" names no host yet
	 * and is marked with the owner itself, which the coordinator reads
	 * as "wherever placement says". */
	tree_move_mut(rt)->to = m->target != 0 ? m->target : rt->owner;
	tree_move_mut(rt)->quick = m->quick;
	snprintf(subject, sizeof subject, "vm %.48s", m->name);
	if (m->target != 0)
		tree_event_log(cs, c, subject, "moving from host %u to host %u "
		    "(%s migration)", rt->owner, m->target, m->quick ? "quick" :
		    "live");
	else
		tree_event_log(cs, c, subject, "moving away from host %u (%s "
		    "migration)", rt->owner, m->quick ? "quick" : "live");
	return CLUSTER_OK;
}

int
moves_apply_live(Haven__ClusterState *cs, const Haven__Change *c, int commit,
    char *err, size_t errlen)
{
	const Haven__VmLive	*l = c->vm_live;
	Haven__VmRuntime	*rt;
	long			 i;
	char			 subject[64], paused[64];

	if ((i = tree_vm_find(cs, l->name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", l->name);
	rt = cs->vms[i]->runtime;
	snprintf(subject, sizeof subject, "vm %.48s", l->name);
	/* The source's stop may come after the handover: still its time. */
	if (l->step == HAVEN__LIVE_STEP__LIVE_STEP_STOPPED &&
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING &&
	    l->generation + 1 == rt->generation && tree_move(rt)->downtime_since_us == 0 &&
	    c->origin == tree_move(rt)->from && !rt->saved_state) {
		if (commit)
			tree_move_mut(rt)->downtime_since_us = l->at_us;
		return CLUSTER_OK;
	}
	/* Progress also comes from a quick save or restore. */
	if (l->generation != rt->generation ||
	    (rt->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING &&
	    !(l->step == HAVEN__LIVE_STEP__LIVE_STEP_PROGRESS &&
	    (rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING ||
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING))))
		REFUSE(CLUSTER_E_STALE, "VM %s is %s at generation %llu; the "
		    "live migration step is for generation %llu", l->name,
		    tree_phase_name(rt->phase),
		    (unsigned long long)rt->generation,
		    (unsigned long long)l->generation);
	switch (l->step) {
	case HAVEN__LIVE_STEP__LIVE_STEP_READY:
		if (c->origin != tree_move(rt)->to || tree_empty(l->endpoint) ||
		    tree_empty(l->token))
			REFUSE(CLUSTER_E_INVALID, "a ready step comes from the "
			    "target with its endpoint and token");
		if (!tree_empty(tree_move(rt)->live_endpoint))
			REFUSE(CLUSTER_E_STALE, "VM %s: the target is ready "
			    "already", l->name);
		if (!commit)
			return CLUSTER_OK;
		moves_live_clear(rt);
		tree_move_mut(rt)->live_endpoint = xstrdup(l->endpoint);
		tree_move_mut(rt)->live_token = xstrdup(l->token);
		tree_event_log(cs, c, subject, "host %u waits for the live "
		    "migration at %.64s", tree_move(rt)->to, l->endpoint);
		return CLUSTER_OK;
	case HAVEN__LIVE_STEP__LIVE_STEP_PROGRESS:
		if (c->origin != rt->owner || l->remaining_bytes > l->total_bytes)
			REFUSE(CLUSTER_E_INVALID, "a progress step comes from the "
			    "owner, with remaining <= total");
		if (commit) {
			tree_move_mut(rt)->remaining_bytes = l->remaining_bytes;
			tree_move_mut(rt)->total_bytes = l->total_bytes;
		}
		return CLUSTER_OK;
	case HAVEN__LIVE_STEP__LIVE_STEP_STOPPED:
		if (c->origin != rt->owner)
			REFUSE(CLUSTER_E_INVALID, "a stopped step comes from the "
			    "source");
		if (!commit)
			return CLUSTER_OK;
		tree_move_mut(rt)->downtime_since_us = l->at_us;
		tree_event_log(cs, c, subject, "vCPUs stopped on host %u for "
		    "the switchover", rt->owner);
		return CLUSTER_OK;
	case HAVEN__LIVE_STEP__LIVE_STEP_RECEIVED:
		if (c->origin != tree_move(rt)->to ||
		    tree_empty(tree_move(rt)->live_endpoint))
			REFUSE(CLUSTER_E_INVALID, "a received step comes from the "
			    "ready target");
		if (!commit)
			return CLUSTER_OK;
		/* The handover: the target owns it from here, one generation
		 * on; its worker claims the lease and runs the vCPUs. */
		rt->owner = tree_move(rt)->to;
		rt->generation++;
		rt->phase = HAVEN__VM_PHASE__VM_PHASE_RESTORING;
		rt->restarts = 0;
		rt->saved_state = 0;
		moves_live_clear(rt);
		tree_event_log(cs, c, subject, "handed over live from host %u "
		    "to host %u (generation %llu)", tree_move(rt)->from, rt->owner,
		    (unsigned long long)rt->generation);
		return CLUSTER_OK;
	case HAVEN__LIVE_STEP__LIVE_STEP_FAILED:
		if (c->origin != tree_move(rt)->to && c->origin != rt->owner)
			REFUSE(CLUSTER_E_INVALID, "a failed step comes from the "
			    "source or the target");
		if (!commit)
			return CLUSTER_OK;
		/* Failed after the vCPUs stopped: the guest was paused all
		 * that time, which the quick migration's downtime will not
		 * show; say it here. */
		paused[0] = '\0';
		if (tree_move(rt)->downtime_since_us != 0 && c->timestamp_us > tree_move(rt)->downtime_since_us)
			snprintf(paused, sizeof paused, " (its vCPUs stopped "
			    "%llu ms before)", (unsigned long long)
			    (c->timestamp_us - tree_move(rt)->downtime_since_us) / 1000);
		rt->phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
		tree_move_mut(rt)->quick = 1;
		tree_move_mut(rt)->downtime_since_us = 0;
		moves_live_clear(rt);
		tree_event_log(cs, c, subject, "live migration to host %u "
		    "failed on host %u%s%.160s; it runs on at host %u%s and moves "
		    "by quick migration", tree_move(rt)->to, c->origin,
		    tree_empty(l->detail) ? "" : ": ",
		    tree_empty(l->detail) ? "" : l->detail, rt->owner, paused);
		return CLUSTER_OK;
	default:
		REFUSE(CLUSTER_E_INVALID, "unknown live migration step %d",
		    (int)l->step);
	}
}

int
moves_live_check(const Haven__ClusterState *cs, const Haven__Vm *vm,
    const Haven__VmTransition *t, char *err, size_t errlen)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	long			 ti = tree_host_find(cs, t->target, NULL);

	if (rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING)
		REFUSE(CLUSTER_E_CONFLICT, "VM %s is %s; only a running VM "
		    "migrates live", t->name, tree_phase_name(rt->phase));
	if (ti < 0 || t->target == rt->owner ||
	    cs->hosts[ti]->runtime->membership !=
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
		REFUSE(CLUSTER_E_CONFLICT, "a live migration of VM %s needs a "
		    "member host other than %u as its target", t->name,
		    rt->owner);
	return CLUSTER_OK;
}

#undef REFUSE

void
moves_live_begin(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm)
{
	const Haven__VmTransition	*t = c->vm_transition;
	Haven__VmRuntime		*rt = vm->runtime;
	const Haven__Host		*h = tree_host(cs, rt->owner);
	char				 subject[64];

	tree_move_mut(rt)->to = t->target;
	tree_move_mut(rt)->from = rt->owner;
	tree_move_mut(rt)->downtime_since_us = 0;
	moves_live_clear(rt);
	/* A drain: remember where it came from, for resume. */
	if (h != NULL && h->runtime->maintenance)
		rt->home = rt->owner;
	snprintf(subject, sizeof subject, "vm %.48s", t->name);
	tree_event_log(cs, c, subject, "migrating live from host %u to host %u",
	    rt->owner, t->target);
}

int
moves_live_end(Haven__ClusterState *cs, const Haven__Change *c, Haven__Vm *vm)
{
	const Haven__VmTransition	*t = c->vm_transition;
	Haven__VmRuntime		*rt = vm->runtime;
	char				 subject[64];

	moves_live_clear(rt);
	tree_move_mut(rt)->downtime_since_us = 0;
	if (t->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    t->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED)
		return 0;
	/* Live failed: it runs on here; quick migration next (unless it is
	 * to stop: then the move is off). */
	snprintf(subject, sizeof subject, "vm %.48s", t->name);
	if (rt->desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING) {
		tree_event_log(cs, c, subject, "live migration to host %u %s; "
		    "it stops at host %u", tree_move(rt)->to,
		    tree_empty(t->detail) ? "ended" : t->detail, rt->owner);
		tree_move_mut(rt)->to = 0;
		tree_move_mut(rt)->from = 0;
		rt->home = 0;
		return 1;
	}
	tree_move_mut(rt)->quick = 1;
	tree_event_log(cs, c, subject, "live migration to host %u "
	    "failed%s%.160s; it runs on at host %u and moves by quick "
	    "migration",
	    tree_move(rt)->to, tree_empty(t->detail) ? "" : ": ",
	    tree_empty(t->detail) ? "" : t->detail, rt->owner);
	return 1;
}

void
moves_save_begin(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm)
{
	Haven__VmRuntime	*rt = vm->runtime;
	const Haven__Host	*h = tree_host(cs, rt->owner);

	tree_move_mut(rt)->downtime_since_us = c->timestamp_us;
	tree_move_mut(rt)->from = rt->owner;
	/* A drain: remember where it came from, for resume. */
	if (h != NULL && h->runtime->maintenance)
		rt->home = rt->owner;
}

void
moves_save_failed(Haven__VmRuntime *rt)
{
	tree_move_mut(rt)->to = 0;
	tree_move_mut(rt)->downtime_since_us = 0;
	rt->home = 0;
	tree_move_mut(rt)->quick = 0;
}

void
moves_restored(Haven__ClusterState *cs, const Haven__Change *c, Haven__Vm *vm)
{
	Haven__VmRuntime	*rt = vm->runtime;
	char			 subject[64];

	snprintf(subject, sizeof subject, "vm %.48s", vm->config->name);
	if (tree_move(rt)->downtime_since_us != 0 && c->timestamp_us > tree_move(rt)->downtime_since_us &&
	    tree_move(rt)->from == rt->owner) {
		/* Its target could not restore it; back where it was. */
		tree_event_log(cs, c, subject, "restored on host %u, where it "
		    "was saved: the move did not happen; downtime %llu ms",
		    rt->owner, (unsigned long long)(c->timestamp_us -
		    tree_move(rt)->downtime_since_us) / 1000);
	} else if (tree_move(rt)->downtime_since_us != 0 &&
	    c->timestamp_us > tree_move(rt)->downtime_since_us) {
		tree_event_log(cs, c, subject, "moved from host %u to host %u "
		    "(%s migration): downtime %llu ms", tree_move(rt)->from,
		    rt->owner, rt->saved_state ? "quick" : "live",
		    (unsigned long long)(c->timestamp_us -
		    tree_move(rt)->downtime_since_us) / 1000);
	}
	tree_move_mut(rt)->quick = 0;
	moves_live_clear(rt);
	tree_move_mut(rt)->to = 0;
	tree_move_mut(rt)->downtime_since_us = 0;
	tree_move_mut(rt)->from = 0;
	if (rt->home == rt->owner)
		rt->home = 0;	/* back home: the failback is done */
}

void
moves_cold_start(Haven__VmRuntime *rt)
{
	tree_move_mut(rt)->to = 0;
	tree_move_mut(rt)->downtime_since_us = 0;
	tree_move_mut(rt)->quick = 0;
	moves_live_clear(rt);
}

void
moves_progress_clear(Haven__VmRuntime *rt)
{
	tree_move_mut(rt)->remaining_bytes = tree_move_mut(rt)->total_bytes = 0;
}

void
moves_live_clear(Haven__VmRuntime *rt)
{
	if (tree_move(rt)->live_endpoint != NULL && tree_move(rt)->live_endpoint !=
	    protobuf_c_empty_string)
		free(tree_move(rt)->live_endpoint);
	if (tree_move(rt)->live_token != NULL && tree_move(rt)->live_token !=
	    protobuf_c_empty_string)
		free(tree_move(rt)->live_token);
	tree_move_mut(rt)->live_endpoint = (char *)protobuf_c_empty_string;
	tree_move_mut(rt)->live_token = (char *)protobuf_c_empty_string;
	moves_progress_clear(rt);
}

int
moves_target_lost(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm, uint32_t lost)
{
	Haven__VmRuntime	*rt = vm->runtime;
	char			 subject[32];

	if (!moves_live_to(rt, lost))
		return 0;
	rt->phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	tree_move_mut(rt)->quick = 1;
	tree_move_mut(rt)->downtime_since_us = 0;
	moves_live_clear(rt);
	snprintf(subject, sizeof subject, "vm %.24s", vm->config->name);
	tree_event_log(cs, c, subject, "live migration failed: its target host "
	    "%u is lost; it runs on at host %u and moves by quick migration",
	    lost, rt->owner);
	return 1;
}

void
moves_forget_home(Haven__ClusterState *cs, uint32_t node_id)
{
	size_t	 i;

	for (i = 0; i < cs->n_vms; i++)
		if (cs->vms[i]->runtime->home == node_id)
			cs->vms[i]->runtime->home = 0;
}

uint32_t
moves_live_target(const Haven__VmRuntime *rt)
{
	return rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING ?
	    tree_move(rt)->to : 0;
}

int
moves_live_to(const Haven__VmRuntime *rt, uint32_t host)
{
	return rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING &&
	    tree_move(rt)->to == host && rt->owner != host;
}
