/*
 * clusterd/: havend, the per-host daemon (DESIGN §2, §5): roles and the
 * control socket, the corosync client, the replicated state and its sync,
 * the coordinator, host fencing, worker supervision and this host's
 * storage health.
 */
#ifndef HAVEN_CLUSTERD_H
#define HAVEN_CLUSTERD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "config.h"

struct event_base;
struct json_object;

/* roles.c: who may do what (DESIGN §7). */
#define CONTROL_MAX_GROUPS	64
enum role {
	ROLE_NONE,
	ROLE_VIEWER,
	ROLE_OPERATOR,
	ROLE_ADMIN,
};
enum request_class {
	REQUEST_READ,		/* status, lists, events: viewer and up */
	REQUEST_VM,		/* start, stop, migrate a VM: operator (scoped) */
	REQUEST_ADMIN,		/* config, roles, fencing: admin */
};
struct identity {
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	gid_t		 groups[CONTROL_MAX_GROUPS];
	size_t		 ngroups;
};
struct role_binding {
	enum role	 role;
	int		 is_group;	/* id is a gid, else a uid */
	uint32_t	 id;
	const char	*patterns[8];	/* operator scope: VM name globs */
	size_t		 npatterns;
};
const char	*roles_name(enum role);
int		 roles_parse(const char *, enum role *);
const char	*roles_class_name(enum request_class);
int		 roles_allow(const struct role_binding *, size_t,
		     const struct identity *, enum request_class,
		     const char *vm_name, enum role *granted);

/* status_token.c: the status page's login tokens (see there). */
#define STATUS_KEY_BYTES	32
#define STATUS_TOKEN_MAX	128	/* its text, at most */
#define STATUS_TOKEN_LOGIN	'l'	/* from havenctl status login */
#define STATUS_TOKEN_SESSION	's'	/* the page's cookie */
#define STATUS_COOKIE		"haven_status"
struct status_token {
	char		 kind;
	uint32_t	 uid;
	enum role	 role;
	uint64_t	 expiry_s;	/* CLOCK_REALTIME */
};
enum status_token_result {
	STATUS_TOKEN_OK,
	STATUS_TOKEN_MALFORMED,
	STATUS_TOKEN_BAD_MAC,
	STATUS_TOKEN_WRONG_KIND,
	STATUS_TOKEN_EXPIRED,
};
int		 status_token_make(const uint8_t key[STATUS_KEY_BYTES],
		     const struct status_token *, char *out, size_t len);
enum status_token_result status_token_check(const uint8_t key[STATUS_KEY_BYTES],
		     const char *, size_t len, char kind, uint64_t now_s,
		     struct status_token *);
const char	*status_token_strerror(enum status_token_result);
const char	*status_token_cookie(const char *header, size_t *len);
int		 status_token_key(const char *path,
		     uint8_t key[STATUS_KEY_BYTES], char *err, size_t errlen);

/* control.c: the control socket. */
struct control_server;
struct control_client;
struct ProtobufCMessage;
typedef void (*control_handler)(struct control_client *,
    struct ProtobufCMessage *, void *arg);
typedef int (*control_authorize_cb)(const struct identity *,
    enum request_class, const char *vm_name, enum role *granted, void *arg);
struct control_route {
	uint16_t	 type;		/* frame type of the request */
	enum request_class class;
	int		 mutating;	/* audited */
	/* The VM a request targets, for scoped operators; may be NULL. */
	const char	*(*target)(struct ProtobufCMessage *);
	control_handler	 handler;
};
struct control_server *control_new(struct event_base *, const char *path,
		     const struct control_route *, size_t,
		     control_authorize_cb, const char *audit_path, void *arg,
		     int *error);
void		 control_free(struct control_server *);
int		 control_reply(struct control_client *, uint16_t type,
		     const struct ProtobufCMessage *);
int		 control_reply_fds(struct control_client *, uint16_t type,
		     const struct ProtobufCMessage *, const int *fds,
		     size_t nfds);
int		 control_reply_error(struct control_client *, int code,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const struct identity *control_client_identity(const struct control_client *);
uint64_t	 control_client_id(const struct control_client *);
struct control_client *control_client_find(struct control_server *, uint64_t);
/* A change whose client hung up before its answer ended with result:
 * its audit line (who, what, result), written now. */
void		 control_audit_late(struct control_server *, uint64_t client_id,
		     const char *result);

/* membership.c: the corosync client (CPG group + votequorum). */
struct membership;
/* Node id arrays are valid during the call only. Callbacks must not call
 * membership_free. */
struct membership_callbacks {
	/* Connected to corosync and joined the group as node_id; membership
	 * and quorum events follow. Again after every reconnect. */
	void	(*connected)(struct membership *, uint32_t node_id, void *arg);
	/* corosync went away: not quorate, unsent messages dropped; we
	 * reconnect with backoff (100 ms doubling to 5 s) by ourselves. */
	void	(*disconnected)(struct membership *, void *arg);
	/* The group's CPG configuration change: the full member list and
	 * who joined and who left, at the same point of the message stream
	 * on every member. */
	void	(*changed)(struct membership *, const uint32_t *members,
		    size_t nmembers, const uint32_t *joined, size_t njoined,
		    const uint32_t *left, size_t nleft, void *arg);
	/* votequorum's view: quorate or not and its member node ids. */
	void	(*quorum)(struct membership *, int quorate,
		    const uint32_t *members, size_t nmembers, void *arg);
	/* A message delivered in agreed order (ours included). */
	void	(*message)(struct membership *, uint32_t node_id, uint32_t pid,
		    const void *data, size_t len, void *arg);
};
/* Connects from the loop (first attempt right away); NULL with errno. */
struct membership *membership_new(struct event_base *, const char *group,
		     const struct membership_callbacks *, void *arg);
/* Multicasts in agreed order; queued and retried on a timer while corosync
 * pushes back. -1 with ENOTCONN while disconnected, ENOBUFS when the
 * queue is full. */
int		 membership_send(struct membership *, const void *, size_t);
uint32_t	 membership_node_id(const struct membership *);	/* 0: none */
/* corosync's token timeout as it runs (over cmap, at once); -1 when
 * corosync does not answer. */
int		 membership_token_ms(unsigned *);
int		 membership_is_connected(const struct membership *);
int		 membership_is_quorate(const struct membership *);
/* corosync's quorum (votequorum_getinfo) as of now. */
struct membership_quorum {
	int		 quorate;
	int		 two_node;	/* corosync's two_node */
	int		 witness;	/* a qdevice is registered */
	int		 witness_vote;	/* ... and casts its vote for us */
	int		 tie_breaker;	/* two_node, auto_tie_breaker or a qdevice */
	uint32_t	 expected_votes;
	uint32_t	 expected_hosts;	/* expected votes less the qdevice's */
};
int		 membership_quorum_info(struct membership *,
		     struct membership_quorum *);
struct event_base *membership_event_base(const struct membership *);
int		 membership_leave(struct membership *);
int		 membership_join(struct membership *);
void		 membership_restart(struct membership *, const char *why);
void		 membership_free(struct membership *);

/* cluster.c: the replicated cluster state (DESIGN §5). Changes are applied
 * in agreed order by every member; the same changes give the same state and
 * the same digest. The message tree (cluster.proto) is owned by the state;
 * read it through st->cs, change it only with cluster_apply / cluster_adopt.
 * enum cluster_result and the helpers on the tree are in tree.h (proto/),
 * below clusterd/ and migrate/ (moves.h: the cluster's move phases). */
#include "cluster.pb-c.h"
#include "tree.h"

#define CLUSTER_DIGEST_SIZE	SHA256_SIZE
#define CLUSTER_FENCE_HISTORY_MAX 64		/* fence attempts kept */

struct cluster {
	Haven__ClusterState	*cs;
};

struct cluster	*cluster_new(void);
void		 cluster_free(struct cluster *);
/* A deep copy (the coordinator's scratch, a snapshot to send). */
struct cluster	*cluster_clone(const struct cluster *);
/* Sync for configuration `epoch` has ended: record it, and as the newest
 * quorate history held when the configuration is quorate. */
void		 cluster_set_epoch(struct cluster *, uint64_t epoch, int quorate);
/* SHA-256 of the canonical encoding, without the member-local fields
 * (epoch, last_quorate_epoch): equal seq and digest = equal history. */
void		 cluster_digest(const struct cluster *, uint8_t[CLUSTER_DIGEST_SIZE]);
/* Lowercase hex of the first n bytes of the digest ("" for n = 0). */
void		 cluster_digest_hex(const uint8_t[CLUSTER_DIGEST_SIZE], size_t n,
		     char *, size_t);
/* Adopts a snapshot from the sync source: content and seq from it, epoch
 * kept, last_quorate_epoch the newer of both. CLUSTER_E_CORRUPT if the
 * snapshot breaks the invariants (unsorted, duplicates, dangling ids). */
int		 cluster_adopt(struct cluster *, const Haven__ClusterState *,
		     char *err, size_t errlen);
/* Checks the invariants of a state tree (what cluster_load and cluster_adopt
 * refuse). */
int		 cluster_validate(const Haven__ClusterState *, char *err,
		     size_t errlen);
/* Lookups into st->cs; NULL when missing. */
Haven__Vm	*cluster_vm(const struct cluster *, const char *name);
Haven__Host	*cluster_host(const struct cluster *, uint32_t node_id);
Haven__VolumeConfig *cluster_volume(const struct cluster *, const char *name);
Haven__PoolConfig *cluster_pool(const struct cluster *, const char *name);
const char	*cluster_result_name(int);

/* cluster_apply.c: one change applied to the state. */
/* Hosts a saved state may fail to restore on before the VM starts
 * afresh (a state refused outright is not tried again). */
#define CLUSTER_RESTORE_TRIES	2
/* Applies one change. CLUSTER_OK: applied, seq advanced. Anything else: the
 * state is untouched and err (may be NULL) holds a sentence saying why. A
 * non-quorate member refuses every change. */
/* A host's lists of strings (bridges, machine types, CPU models): copied,
 * freed, compared in order. */
char		**cluster_strings_dup(char *const *, size_t);
void		 cluster_strings_free(char **, size_t);
int		 cluster_strings_same(char *const *, size_t, char *const *,
		     size_t);
int		 cluster_apply(struct cluster *, const Haven__Change *, int quorate,
		     char *err, size_t errlen);
/* Whether a change would apply, without applying it. */
int		 cluster_check(const struct cluster *, const Haven__Change *,
		     int quorate, char *err, size_t errlen);

/* cluster_vm.c: the VmCreate, VmSet and VmDelete changes (cluster_apply's;
 * commit = 0 only checks); a cold start's taking up of the configuration
 * `vm set` left for it; and a VM's names and strings as a change or a
 * loaded state must have them. */
int		 cluster_apply_vm_create(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
int		 cluster_apply_vm_set(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
int		 cluster_apply_vm_delete(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
void		 cluster_vm_cold_start(Haven__ClusterState *,
		     const Haven__Change *, Haven__Vm *);
void		 cluster_vm_pending_sync(Haven__ClusterState *,
		     const Haven__Change *);
int		 cluster_vm_strings(const Haven__VmConfig *, char *err,
		     size_t errlen);
/* cluster_machine.c: a VM's machine (issue 16): a host's QEMU report
 * (HostQemu; its lists in HostAdd checked the same way), a VM's machine
 * against the hosts, the cluster's CPU model, a cold start's CPU model. */
int		 cluster_machine_host_check(const Haven__HostConfig *,
		     char *err, size_t errlen);
int		 cluster_apply_host_qemu(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
int		 cluster_machine_vm_check(const Haven__ClusterState *,
		     const Haven__VmConfig *, char *err, size_t errlen);
int		 cluster_machine_settings_check(const Haven__ClusterState *,
		     const char *cpu, char *err, size_t errlen);
void		 cluster_machine_cold_start(Haven__ClusterState *,
		     Haven__Vm *);
void		 cluster_machine_set_string(char **field, const char *);
/* VolumeRemove and PoolRemove: refused while in use, the user named. */
int		 cluster_apply_volume_remove(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
int		 cluster_apply_pool_remove(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);

/* cluster_storage.c: a HostStorage change (cluster_apply's; commit = 0
 * only checks), the host's own report of its pools' reachability. */
int		 cluster_apply_host_storage(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);

/* cluster_storage_fence.c: a VmStorageFence change (cluster_apply's;
 * commit = 0 only checks), the coordinator's order to a member to fence
 * the owner off a VM's volumes and the member's report; and, after every
 * applied change, the orders whose VM has moved on dropped. */
int		 cluster_apply_vm_storage_fence(Haven__ClusterState *,
		     const Haven__Change *, int commit, char *err,
		     size_t errlen);
void		 cluster_storage_fence_sync(Haven__ClusterState *);
/* The giveup's mark on a VM's runtime: host's key still on its volumes. */
void		 cluster_storage_giveup_mark(Haven__VmRuntime *,
		     uint64_t generation, uint32_t host, const char *pool,
		     uint64_t timestamp_us);
/* Whether vm was given up (storage_giveup_s) and its old host is not yet
 * fenced off its volumes: it does not start, nor is it deleted, before. */
int		 cluster_storage_giveup_pending(const Haven__Vm *);

/* cluster_storage_giveup.c: the storage policy's pure decisions (issue
 * 20), from the state, the quorate membership and the time: a VM's
 * storage timeout, and whether a VM paused for its storage is to be
 * given up now (*deadline_us: when it will be, when not yet; *pool: the
 * pool it waits for). */
uint32_t	 cluster_storage_timeout_s(const Haven__ClusterState *,
		     const Haven__VmConfig *);
int		 cluster_storage_giveup_due(const Haven__ClusterState *,
		     const Haven__Vm *, const uint32_t *members, size_t n,
		     uint64_t now_us, uint64_t *deadline_us, const char **pool);

/* cluster_file.c: the state file, one per member. */
#define CLUSTER_FILE		"cluster.state"
#define CLUSTER_FILE_TMP		"cluster.state.tmp"
/* Atomic: dir/CLUSTER_FILE_TMP written, fsynced, renamed over dir/CLUSTER_FILE,
 * dir fsynced. CLUSTER_E_IO with errno set. */
int		 cluster_save(const struct cluster *, const char *dir, char *err,
		     size_t errlen);
/* *out = the state in dir/CLUSTER_FILE. CLUSTER_E_IO (errno ENOENT: none yet),
 * or CLUSTER_E_CORRUPT for a truncated or altered file, left as it is. A
 * leftover dir/CLUSTER_FILE_TMP (a crash mid-save) is ignored. */
int		 cluster_load(const char *dir, struct cluster **out, char *err,
		     size_t errlen);

/* replica.c: this host's replica of the state, kept in step over CPG. */
struct replica;
struct replica_callbacks {
	/* Every delivered change, applied (CLUSTER_OK) or not (err says
	 * why): origin and request_id tell the proposer its answer. */
	void	(*applied)(struct replica *, const Haven__Change *, int result,
		    const char *err, void *arg);
	/* A sync ended: the replica agrees with the configuration. */
	void	(*synced)(struct replica *, void *arg);
};
struct membership;
struct replica	*replica_new(struct membership *, const char *dir,
		     const struct replica_callbacks *, void *arg, char *err,
		     size_t errlen);
void		 replica_free(struct replica *);
void		 replica_on_changed(struct replica *, const uint32_t *members,
		     size_t n);
void		 replica_on_message(struct replica *, uint32_t from,
		     const void *, size_t);
/* votequorum's flag changed on this host: sync again if it differs from
 * what this member said in the current round. */
void		 replica_on_quorum(struct replica *, int quorate);
int		 replica_propose(struct replica *, Haven__Change *,
		     uint64_t *request_id, char *err, size_t errlen);
/* This host lost a two-node fencing race: its history since the split
 * must never be a sync source (last-quorate epoch 0, persisted). */
void		 replica_forget_quorum(struct replica *);
const struct cluster *replica_state(const struct replica *);
int		 replica_is_quorate(const struct replica *);
const uint32_t	*replica_members(const struct replica *, size_t *n);
/* Rolling upgrade (issue 17): the protocol the cluster runs at since the
 * last sync (the lowest its members announced), and what member node_id
 * announced then (0: not a member). */
uint32_t	 replica_protocol(const struct replica *);
uint32_t	 replica_member_protocol(const struct replica *, uint32_t node_id);
/* Whether the running protocol allows c; if not, -1 and a sentence naming
 * the host to upgrade and what c uses in err. */
int		 replica_protocol_check(const struct replica *,
		     const Haven__Change *, char *err, size_t errlen);

/* sync.c: who sends its state on a configuration change (DESIGN §5). */
struct sync_member {
	uint32_t	 node_id;
	uint64_t	 epoch;
	uint64_t	 seq;
	uint8_t		 digest[CLUSTER_DIGEST_SIZE];
	uint64_t	 last_quorate_epoch;
	/* An empty state (a new or reinstalled host): it adopts, and is a
	 * source only when every member is a learner. */
	int		 learner;
	/* corosync's votequorum on that member when it sent its state. */
	int		 vq_quorate;
	uint32_t	 vq_expected_hosts;
	int		 vq_tie_breaker;
	/* The protocol it announced (SyncState.protocol; 0: none, 1). */
	uint32_t	 protocol;
};
struct sync_decision {
	size_t		 source;	/* index into the members */
	/* needs_snapshot[i]: member i differs from the source (seq or
	 * digest) and must adopt its snapshot. */
	uint8_t		*needs_snapshot;
	size_t		 nsnapshots;
	/* Members at equal seq with different digests: a divergence. The
	 * first such pair (indexes) is reported; the rule above resolves it. */
	size_t		 ndivergent;
	size_t		 divergent_a, divergent_b;
};
/* members: every member's SyncState of one configuration, n >= 1. The
 * source is the best non-learner (highest last-quorate epoch, then seq, then
 * lowest node id), a learner only if all are. -1 with
 * EINVAL for an empty list, epochs that differ or a repeated node id.
 * needs_snapshot must hold n bytes. Pure: no I/O, same input same answer. */
int		 sync_decide(const struct sync_member *, size_t n,
		     uint8_t *needs_snapshot, struct sync_decision *);
/* Whether the configuration of these members may change the state, the
 * state knowing the hosts `known` (see sync.c). Pure. */
int		 sync_quorate(const struct sync_member *, size_t n,
		     const uint32_t *known, size_t nknown);
/* The state's SyncState for configuration epoch. */
void		 sync_member_of(const struct cluster *, uint32_t node_id,
		     uint64_t epoch, struct sync_member *);
/* The protocol the members run at: the lowest they announced. Pure. */
uint32_t	 sync_protocol(const struct sync_member *, size_t n);

/* coordinator.c: the reconcile step (DESIGN §5, §6). */
struct coordinator_decisions {
	Haven__Change	**changes;	/* each owned by the list */
	size_t		  n;
};
/* Lowest node id of a quorate membership (0 if empty). */
uint32_t	 coordinator_of(const uint32_t *members, size_t n);
/* Desired against actual, level-triggered: the same state and membership
 * give the same decisions; applying them then reconciling again gives
 * none until something else changes. members: the quorate membership.
 * Decisions carry the state's epoch and the coordinator as origin; the
 * caller stamps timestamp_us before multicasting them. */
int		 coordinator_reconcile(const struct cluster *,
		     const uint32_t *members, size_t n,
		     struct coordinator_decisions *);
/* The same, where present lists the hosts that are still up (in
 * corosync's membership) though their havend is not in the CPG group: a
 * present host is not declared lost (its havend is restarting), but gets
 * no new VMs. */
int		 coordinator_reconcile_present(const struct cluster *,
		     const uint32_t *members, size_t n, const uint32_t *present,
		     size_t npresent, struct coordinator_decisions *);
void		 coordinator_decisions_free(struct coordinator_decisions *);
/* "start web1 on 2 gen 0", "stop web1 on 2 gen 1", "host-lost 3"... */
void		 coordinator_describe(const Haven__Change *, char *, size_t);

/* fencer.c: the coordinator's fencing of lost hosts, level by level. */
struct fencer;
/* fenced: 1 fenced, 0 every level failed, FENCER_LOST: a two-node race
 * that the victim won (it fenced this host): stop every VM and leave. */
#define FENCER_LOST	(-1)
typedef void (*fencer_done_cb)(struct fencer *, uint32_t victim, int fenced,
    const char *level, const char *detail, void *arg);
/* The two-node race (corosync's two_node, no witness vote): none, this
 * host goes first, or the victim does (see fencer.c). */
#define FENCER_RACE_NONE	0
#define FENCER_RACE_FAVOURED	1
#define FENCER_RACE_OTHER	2
struct fencer	*fencer_new(struct event_base *, const struct config *,
		     const char *initiator, fencer_done_cb, void *arg);
/* Fence victim (marked lost at lost_at_us) through this host's levels;
 * urls: every volume of the cluster. A no-op while it runs already. */
int		 fencer_start(struct fencer *, uint32_t my_node, uint32_t victim,
		     const char *victim_name, uint64_t lost_at_us,
		     const char *const *urls, size_t nurls, int race);
int		 fencer_busy(const struct fencer *, uint32_t victim);
int		 fencer_racing(const struct fencer *);
void		 fencer_cancel_all(struct fencer *);
void		 fencer_free(struct fencer *);

/* health.c: this host's storage health (issue 20): a probe per pool that
 * has a volume (storage/probe.c), a verdict each (storage/reach.c), and a
 * HostStorage change whenever a verdict differs from what the state says
 * of this host (never once per probe). Runs on the loop from health_new. */
#define HEALTH_MAX_PATHS	4	/* = POOL_MAX_PORTALS (proto.h) */
struct health_verdict {
	const char	*pool;
	int		 reachable;
	uint64_t	 since_us;
	/* Multipath (issue 17): each portal's own verdict; 0 for one. */
	size_t		 npaths;
	const char	*paths[HEALTH_MAX_PATHS];
	int		 path_reachable[HEALTH_MAX_PATHS];
};
/* Which of n verdicts (sorted by pool) the state does not hold yet for
 * node: their indexes into out (n of room). Pure. */
size_t		 health_changes(const struct cluster *, uint32_t node,
		     const struct health_verdict *, size_t n, size_t *out);
struct health;
struct health	*health_new(struct event_base *, struct membership *,
		     struct replica *, const char *initiator);
void		 health_free(struct health *);
/* Each pool's path as the heartbeat sees it, for the metrics: how many
 * filled in out. */
struct metrics_path;
size_t		 health_paths(const struct health *, struct metrics_path *out,
		     size_t max);

/* tap.c: a guest NIC's tap on its bridge and VLAN, up (issue 13): the
 * VLAN by the bridge's filtering, else on the per-VLAN bridge BRvN. The
 * descriptor is the tap's only hold: close it and the tap is gone. -1 with
 * a sentence in err ("bridge X does not exist on this host"). */
int		 tap_open(const Haven__Nic *, const char *vm_uuid, size_t index,
		     char *err, size_t errlen);

/* logcap.c: a VM log file over max_bytes copied to PATH.1 and emptied in
 * place (its writers append). 1 done, 0 nothing to do, -1 could not. */
int		 logcap_file(const char *path, uint64_t max_bytes);

/* supervise.c: havend's workers, one per VM this host runs (DESIGN §2). */
struct supervisor;
struct vmworker;
struct supervisor_callbacks {
	/* A worker's report: the VM's phase at generation (fenced: its
	 * volume refused our writes), with the worker's sentence. FAILED
	 * also when the worker vanished without a last word. */
	void	(*report)(struct supervisor *, const char *uuid,
		    const char *name, uint64_t generation, Haven__VmPhase,
		    int fenced, const char *detail, void *arg);
	/* A worker left by a previous havend said hello. */
	void	(*adopted)(struct supervisor *, const char *uuid,
		    const char *name, uint64_t generation, Haven__VmPhase,
		    void *arg);
	/* A worker this host stopped is gone, its VM free to start again
	 * here (a child's end comes with SIGCHLD instead). */
	void	(*gone)(struct supervisor *, void *arg);
	/* May this host register a new nexus (after a reconnect)? */
	int	(*may_register)(struct supervisor *, const char *uuid,
		    void *arg);
};
struct supervisor *supervisor_new(struct event_base *, const struct config *,
		     const struct supervisor_callbacks *, void *arg);
void		 supervisor_free(struct supervisor *);
/* The saves and restores its workers finished, for the metrics. */
struct metrics_transfers;
const struct metrics_transfers *supervisor_transfers(const struct supervisor *);
/* Spawn a worker for spec (uid, gid and run_dir are filled in here), with
 * a tap per NIC (tap.c), and have it start, restore or receive once its
 * volumes are open. */
int		 supervisor_start(struct supervisor *, Haven__VmSpec *,
		     Haven__WorkerAction, uint64_t state_generation,
		     const char *listen, char *err, size_t errlen);
int		 supervisor_command(struct supervisor *, const char *uuid,
		     Haven__WorkerAction, uint32_t timeout_ms);
/* A live migration's target, after supervisor_start: the token its
 * worker accepts and the move's TLS key (NULL: in clear), which go with
 * the INCOMING command and are forgotten then. */
int		 supervisor_live_key(struct supervisor *, const char *uuid,
		     const char *token, const uint8_t *key, size_t keylen);
/* A command with its fields (live migration); state_generation is set. */
int		 supervisor_send(struct supervisor *, const char *uuid,
		     Haven__WorkerCommand *);
struct Haven__ConsoleAttach;
/* A console session's socket (a dup goes; the caller keeps fd) to the
 * VM's worker: FRAME_WORKER_CONSOLE. -1 with ENOENT without a worker. */
int		 supervisor_console(struct supervisor *, const char *uuid,
		     const struct Haven__ConsoleAttach *, int fd);
void		 supervisor_kill(struct supervisor *, const char *uuid);
void		 supervisor_forget(struct supervisor *, const char *uuid);
void		 supervisor_reap(struct supervisor *);
size_t		 supervisor_adopt_all(struct supervisor *);
int		 supervisor_settled(struct supervisor *);
struct vmworker	*supervisor_find(struct supervisor *, const char *uuid);
struct vmworker	*supervisor_first(struct supervisor *);
struct vmworker	*supervisor_next(struct vmworker *);
const char	*vmworker_uuid(const struct vmworker *);
uint64_t	 vmworker_generation(const struct vmworker *);
Haven__VmPhase	 vmworker_phase(const struct vmworker *);
int		 vmworker_alive(const struct vmworker *);
pid_t		 vmworker_pid(const struct vmworker *);
Haven__WorkerAction vmworker_last_command(const struct vmworker *);
/* What a worker said of a live migration: the target's endpoint and
 * token, that it has the whole stream; the source's vCPU stop. */
struct vmworker_live {
	char		 endpoint[80];
	char		 token[80];
	int		 received;
	uint64_t	 stopped_at_us;
	uint64_t	 remaining;	/* the source's progress */
	uint64_t	 total;
	int		 switch_stalled; /* the source: no handover in time */
};
const struct vmworker_live *vmworker_live(const struct vmworker *);
const char	*vmworker_detail(const struct vmworker *);
int		 vmworker_adopting(const struct vmworker *);
/* Started as a live migration's target and not switched over yet. */
int		 vmworker_incoming(const struct vmworker *);

#endif
