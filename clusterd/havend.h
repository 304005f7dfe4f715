/*
 * havend's own parts, shared by its files (clusterd/havend.c and the files
 * below); the libraries it is built on are declared in clusterd.h.
 *
 *	havend.c	main, corosync and replica callbacks, proposals,
 *			the coordinator's reconcile, shutdown
 *	requests.c	the control socket's requests and who may send them
 *	console.c	interactive consoles (serial, VNC) of this host's VMs
 *	local.c		this host's VMs against their workers (DESIGN §6)
 *	local_move.c	this host's part in a VM's move, live or quick
 *	fencing.c	fencing lost hosts, when this host coordinates (§4)
 *	storage_move.c	moving a VM whose host alone lost its storage
 *			(issue 20), when this host coordinates
 *	storage_fence.c	fencing the coordinator off its VM's volumes on
 *			its order, when this host reaches the pool it lost
 */
#ifndef HAVEN_HAVEND_H
#define HAVEN_HAVEND_H

#include <stddef.h>
#include <stdint.h>

#include "clusterd.h"
#include "proto.h"

#define HAVEND_MAX_MEMBERS	64
#define HAVEND_MAX_PENDING	128
/* A proposal not back by then is given up (its client told so): a
 * configuration change may have dropped it. */
#define HAVEND_PENDING_TIMEOUT_MS	30000
#define HAVEND_MAX_LOCAL	256	/* this host's proposals in flight */
/* A live migration step in the table of proposals: beside the phases. */
#define HAVEND_LIVE_STEP(s)	(100 + (int)(s))
#define HAVEND_STOP_MS		30000	/* ACPI power-down, then quit */
#define HAVEND_CONSOLE_MAX	65536
/* How long a host may be up without its havend before it counts as lost:
 * longer than a restart of havend, shorter than [vm] adopt_timeout_s. */
#define HAVEND_DAEMON_GRACE_MS	30000
/* A host whose every fence level failed is tried again after this. */
#define HAVEND_FENCE_RETRY_MS	15000
/* VMs being fenced off a host that lost their storage, at once. */
#define HAVEND_MAX_STORAGE_MOVES	64
/* A VM's volumes fenced at most (the first ones: a VM has a few). */
#define HAVEND_STORAGE_URLS	8
/* SCHED_RR priority: below corosync's own (99), above every guest. */
#define HAVEND_RT_PRIORITY	10
/* A clean shutdown with [vm] shutdown = migrate waits this long at most
 * for the host's VMs to leave. */
#define HAVEND_SHUTDOWN_DRAIN_MS	300000

/* A request waiting for its change to come back applied. */
struct havend_pending {
	uint64_t	request_id;
	uint64_t	client_id;	/* 0: the coordinator's own decision */
	uint64_t	since_ms;
};

struct alert;
struct metrics;

/* What this host's QEMU offers (qemu_probe.c), asked once at start. */
struct havend_qemu {
	char			 version[32];
	char			 pc[MACHINE_NAME_MAX + 1];	/* "pc-i440fx-7.2" */
	struct machine_list	 machines;
	struct machine_list	 cpus;
};

struct havend {
	struct event_base	*base;
	struct config		 config;
	struct membership	*membership;
	struct control_server	*control;
	struct replica		*replica;
	uint32_t		 node_id;
	int			 quorate;
	uint32_t		 members[HAVEND_MAX_MEMBERS];
	size_t			 nmembers;
	struct havend_pending	 pending[HAVEND_MAX_PENDING];
	size_t			 npending;
	size_t			 decisions_in_flight;
	struct supervisor	*supervisor;
	struct alert		*alert;		/* [alert] program */
	struct metrics		*metrics;	/* [metrics] listen */
	/* Transitions this host proposed for its VMs, not yet applied. */
	struct {
		char		 uuid[37];
		uint64_t	 generation;
		Haven__VmPhase	 phase;
	}			 local[HAVEND_MAX_LOCAL];
	size_t			 nlocal;
	int			 synced;	/* a sync has completed */
	/* Nodes up in corosync whose havend is not in the group. */
	struct {
		uint32_t	 node_id;
		uint64_t	 since_ms;
	}			 absent[HAVEND_MAX_MEMBERS];
	size_t			 nabsent;
	struct ev_timer		*grace_timer;
	struct fencer		*fencer;
	struct health		*health;	/* this host's storage health */
	struct havend_storage_move *storage_moves[HAVEND_MAX_STORAGE_MOVES];
	size_t			 nstorage_moves;
	struct ev_timer		*storage_timer;
	/* Orders to this host to fence the coordinator (storage_fence.c). */
	struct havend_storage_fence *storage_fences[HAVEND_MAX_STORAGE_MOVES];
	size_t			 nstorage_fences;
	struct ev_timer		*storage_fence_timer;
	char			 initiator[224];
	/* When fencing of a host last failed here (retry after a while). */
	struct {
		uint32_t	 node_id;
		uint64_t	 at_ms;
	}			 fence_failed[HAVEND_MAX_MEMBERS];
	size_t			 nfence_failed;
	struct ev_timer		*fence_retry_timer;
	struct watchdog		*watchdog;
	struct ev_timer		*watchdog_timer;
	int			 corosync_up;
	int			 watchdog_starved;	/* not petted, said so */
	int			 exit_code;
	int			 draining;	/* SIGTERM with shutdown = migrate */
	uint64_t		 drain_started_ms;
	struct ev_timer		*drain_timer;
	struct havend_qemu	 qemu;
};

/* fencing.c */
void	havend_fence_retry_cb(void *arg);
void	havend_fence_lost(struct havend *h);
void	havend_fenced(struct fencer *f, uint32_t victim, int fenced, const char *level,
    const char *detail, void *arg);
size_t	havend_present(struct havend *h, const uint32_t *members, size_t n,
    uint32_t *present);
void	havend_grace_cb(void *arg);

/* storage_move.c */
void	havend_storage_moves(struct havend *h);
void	havend_storage_moves_cancel(struct havend *h);
void	havend_storage_timer_cb(void *arg);
const char	*havend_pool_portal(struct havend *, const Haven__PoolConfig *);
size_t	havend_storage_urls(struct havend *h, const Haven__Vm *vm, char **urls,
    size_t max);

/* storage_fence.c */
void	havend_storage_fences(struct havend *h);
void	havend_storage_fences_cancel(struct havend *h);
void	havend_storage_fence_timer_cb(void *arg);
int	havend_storage_fence_standing(struct havend *h, const Haven__Vm *vm);
int	havend_storage_given_up_here(struct havend *h, const Haven__Vm *vm);

/* qemu_probe.c */
void	havend_qemu_probe(struct havend *h);
void	havend_qemu_publish(struct havend *h, const Haven__Host *me);

/* havend.c */
void	havend_propose_for(struct havend *h, struct control_client *c,
    Haven__Change *change);
Haven__Change *	havend_change_new(void);
ProtobufCMessage *	havend_copy(const ProtobufCMessage *m);
void	havend_reconcile(struct havend *h);

/* local.c */
int	havend_isolation_pending(struct havend *h);
void	havend_isolate(struct havend *h);
int	havend_local_pending(struct havend *h, const char *uuid, uint64_t generation,
    Haven__VmPhase phase);
void	havend_transition(struct havend *h, const Haven__Vm *vm, Haven__VmPhase phase,
    const char *detail);
int	havend_spawn(struct havend *h, const Haven__Vm *vm, Haven__WorkerAction action,
    const char *listen, char *err, size_t errlen);
void	havend_local(struct havend *h);
extern const struct supervisor_callbacks havend_supervisor_callbacks;

/* local_move.c */
void	havend_state_progress(struct havend *h, const Haven__Vm *vm,
    const struct vmworker *w);
void	havend_live_target(struct havend *h, const Haven__Vm *vm);
void	havend_live_source(struct havend *h, const Haven__Vm *vm, struct vmworker *w);
int	havend_live_called_off(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp);

/* console.c */
void		 havend_vm_console_attach(struct control_client *,
		     ProtobufCMessage *, void *);
const char	*havend_target_console_attach(ProtobufCMessage *);

/* requests.c */
extern const struct control_route havend_routes[];
extern const size_t havend_nroutes;
int	havend_authorize(const struct identity *who, enum request_class class,
    const char *vm, enum role *granted, void *arg);

/* corosync_sync.c: the state's corosync.conf onto this host, reloaded
 * where it differs: after a change that sets it, and after each sync (a
 * member that was down while the nodelist changed). */
void	corosync_sync_applied(const Haven__ClusterState *,
    const Haven__Change *);
void	corosync_sync_state(const Haven__ClusterState *);

#endif
