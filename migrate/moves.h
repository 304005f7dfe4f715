/*
 * The cluster's side of every move (DESIGN §6), on the replicated state's
 * message tree: moves.c applies the move phases (an operator's migrate, the
 * steps of a live migration, and what a transition, a handover or a lost
 * host does to a move). havend's state reads and writes a VM's move fields
 * (VmRuntime's migrate_to, migrate_from, saving_at_us, home, quick, live_*)
 * only through here. clusterd/ calls in; nothing here knows clusterd/.
 * migrate.h has the worker's side.
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
/* Whether the VM migrates live to host, from another host. */
int		 moves_live_to(const Haven__VmRuntime *, uint32_t host);

#endif
