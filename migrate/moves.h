/*
 * The cluster's side of every move (DESIGN §6), on the replicated state's
 * message tree: moves.c applies the move phases (an operator's migrate, the
 * steps of a live migration, and what a transition, a handover or a lost
 * host does to a move); plan.c decides for the coordinator which VMs a drain
 * or a failback moves, where, live or quick, and how many at once per host.
 * havend's state and coordinator read and write a VM's move fields
 * (VmRuntime's migrate_to, migrate_from, saving_at_us, home, quick, live_*)
 * only through here. clusterd/ calls in; nothing here knows clusterd/
 * (placement comes in as struct plan_hosts). migrate.h has the worker's side.
 */
#ifndef HAVEN_MOVES_H
#define HAVEN_MOVES_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.pb-c.h"

/*
 * moves.c
 *
 * The apply functions follow clusterd's rule for every change kind: check
 * everything first and return a refusal (enum cluster_result, tree.h; err
 * says why) before touching anything; with commit = 0 only check. The steps
 * below them run from clusterd's apply of a change that was checked already.
 */
int		 moves_apply_migrate(Haven__ClusterState *, const Haven__Change *,
		     int commit, char *err, size_t errlen);
int		 moves_apply_live(Haven__ClusterState *, const Haven__Change *,
		     int commit, char *err, size_t errlen);
/* A VmTransition to migrating (a coordinator's decision): the VM runs and
 * its target is another member host. */
int		 moves_live_check(const Haven__ClusterState *, const Haven__Vm *,
		     const Haven__VmTransition *, char *err, size_t errlen);
/* The transition to migrating is applied: the live migration begins. */
void		 moves_live_begin(Haven__ClusterState *, const Haven__Change *,
		     Haven__Vm *);
/* A transition out of migrating: the live fields go; back to running or
 * paused it runs on at the source, to move by quick migration (or to stop:
 * then the move is off). 1 when that was all the transition does. */
int		 moves_live_end(Haven__ClusterState *, const Haven__Change *,
		     Haven__Vm *);
/* Transitions of a quick migration: the save begins (its downtime with
 * it); the save failed and the VM runs on (the move is off); the restore
 * ended and the VM runs (the move ends, with its downtime in the log). */
void		 moves_save_begin(Haven__ClusterState *, const Haven__Change *,
		     Haven__Vm *);
void		 moves_save_failed(Haven__VmRuntime *);
void		 moves_restored(Haven__ClusterState *, const Haven__Change *,
		     Haven__Vm *);
/* A cold start ends a move for good. */
void		 moves_cold_start(Haven__VmRuntime *);
/* Progress belongs to one save, restore or pass: gone at a new phase. */
void		 moves_progress_clear(Haven__VmRuntime *);
/* A live migration's own fields (endpoint, token, progress): gone once it
 * ends or falls back. */
void		 moves_live_clear(Haven__VmRuntime *);
/* Host lost was marked lost: if vm migrated live to it, it runs on where
 * it is and moves by quick migration instead (1), else nothing (0). */
int		 moves_target_lost(Haven__ClusterState *, const Haven__Change *,
		     Haven__Vm *, uint32_t lost);
/* A host resumed without failback: the VMs drained from it stay where
 * they are, and forget it as their home. */
void		 moves_forget_home(Haven__ClusterState *, uint32_t node_id);
/* The target of a live migration in progress (its memory is held there
 * too), else 0. */
uint32_t	 moves_live_target(const Haven__VmRuntime *);
/* Whether the VM migrates live to host, from another host. */
int		 moves_live_to(const Haven__VmRuntime *, uint32_t host);

/*
 * plan.c
 *
 * One reconcile pass's planned moves. The coordinator keeps placement
 * (which hosts are eligible, their load, anti-affinity) and lends it here;
 * the planner adds which VMs move, where to, live or quick, and at most
 * PLAN_MOVES_PER_HOST moves away from one host at a time (counting the moves
 * under way in the state and those planned in this pass).
 */
#define PLAN_MOVES_PER_HOST	2
struct plan_hosts {
	/* The host is in the quorate membership. */
	int		 (*member)(void *arg, uint32_t host);
	/* The host can take the VM now: eligible, with room for its memory,
	 * and (anti_affinity set) no VM of its anti-affinity class there. */
	int		 (*fits)(void *arg, const Haven__Vm *, uint32_t host,
			    int anti_affinity);
	/* The host placement chooses for the VM, never avoid; 0: none. */
	uint32_t	 (*place)(void *arg, const Haven__Vm *, uint32_t avoid);
	void		*arg;
};
struct plan;
/* NULL with errno ENOMEM. The state and hosts must outlive the plan. */
struct plan	*plan_new(const Haven__ClusterState *,
		     const struct plan_hosts *);
void		 plan_free(struct plan *);
/* Where a moving VM goes (a running VM about to move, a saved one between
 * save and restore): the host asked for, or its home after a drain, if it
 * can take it; else a preferred owner (failback) or wherever placement
 * says, never back onto the host it leaves. 0: nowhere yet. */
uint32_t	 plan_target(struct plan *, const Haven__Vm *);
/* A running VM, meant to run, on a member host: whether a planned move of
 * it (an operator's migrate, a drain of its host, a failback to its home or
 * a preferred host) starts now, to *to, and *live or by quick migration. 1
 * counts the move against its host's limit. A move to a named host waits
 * while that host is out of the membership but not lost (its havend
 * restarting). */
int		 plan_move(struct plan *, const Haven__Vm *, uint32_t *to,
		     int *live);
/* A VM migrating live: whether to call it off (its target left the
 * membership, or the VM is to stop) while its source is a member, with the
 * reason in why. */
int		 plan_call_off(struct plan *, const Haven__Vm *, char *why,
		     size_t len);

#endif
