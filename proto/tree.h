/*
 * Helpers on the replicated state's message tree (tree.c): cluster.proto's
 * ClusterState as protobuf-c generates it. Both clusterd/ (apply, the
 * coordinator) and migrate/ (the cluster's move phases and their planning)
 * change or read that tree; what both need lives here, below both, and works
 * on the generated types only: the refusal sentence, cloning that cannot
 * fail, the sorted arrays and their lookups, the bounded event log, and one
 * definition of each VM phase predicate and of the phase names.
 */
#ifndef HAVEN_TREE_H
#define HAVEN_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cluster.pb-c.h"

#define CLUSTER_EVENTS_MAX	256		/* the bounded event log */

/* What applying a change gives (clusterd's cluster_apply, migrate's move
 * phases), and loading or saving the state; 0 is success. */
enum cluster_result {
	CLUSTER_OK = 0,
	CLUSTER_E_NOT_QUORATE = 1,	/* refused: this partition is not quorate */
	CLUSTER_E_INVALID = 2,		/* refused: the change is malformed */
	CLUSTER_E_NOT_FOUND = 3,		/* refused: names a missing object */
	CLUSTER_E_EXISTS = 4,		/* refused: the object exists already */
	CLUSTER_E_CONFLICT = 5,		/* refused: not allowed in this state */
	CLUSTER_E_STALE = 6,		/* ignored: the generation moved on */
	CLUSTER_E_CORRUPT = 7,		/* load: the file is not a valid state */
	CLUSTER_E_IO = 8,			/* save/load: see errno */
};

/* Writes the sentence into err (may be NULL) and returns code: refusals
 * read `return tree_fail(CODE, err, errlen, "...", ...)`. */
int		 tree_fail(int code, char *err, size_t errlen, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

/* A deep copy through the wire encoding, every piece malloc'ed as
 * protobuf_c_message_free_unpacked(, NULL) expects; NULL when the message
 * does not re-encode (or out of memory). */
void		*tree_clone(const ProtobufCMessage *);
/* The same; out of memory is fatal (as for common.h's x* allocators). */
void		*tree_xclone(const ProtobufCMessage *);
/* A string field that is unset or "". */
int		 tree_empty(const char *);

/*
 * What names and strings in the state may be, checked by havend when a
 * change is applied (so at request time and on every member alike) and by
 * havenctl before it asks: names (VMs, hosts, pools, volumes, anti-affinity
 * classes, fence principals' patterns aside) are
 * [a-zA-Z0-9][a-zA-Z0-9._-]{0,62} -- they become file names under the VM
 * log and run directories; text has no control characters and fits in max
 * bytes; a path is absolute text; an iSCSI name follows RFC 3720 3.2.6.
 */
#define TREE_NAME_MAX		63
#define TREE_ISCSI_NAME_MAX	223
int		 tree_name_valid(const char *);
int		 tree_text_valid(const char *, size_t max);
int		 tree_path_valid(const char *);
int		 tree_iscsi_name_valid(const char *);
/* s as a refusal may quote it: never its control characters (the sentence
 * goes to the client, the log and events). */
const char	*tree_printable(const char *s);

/* FNV-1a of a VM configuration's encoding: `vm set` names the configuration
 * it changed with it, so that two changes made at once cannot undo each
 * other's fields. */
uint64_t	 tree_config_digest(const Haven__VmConfig *);
/* vm set's fields, as VmSetRequest.fields names them (havenctl's option
 * names): one list for havenctl, which sends the ones given, and havend,
 * which merges them (a bit each: 1 << the field). */
enum tree_vm_field {
	TREE_VM_MEMORY, TREE_VM_VCPUS, TREE_VM_VOLUME, TREE_VM_NIC,
	TREE_VM_PRIORITY, TREE_VM_PREFER, TREE_VM_ANTI_AFFINITY,
	TREE_VM_FAILBACK, TREE_VM_ISOLATION, TREE_VM_STOP_TIMEOUT,
	TREE_VM_MAX_RESTARTS, TREE_VM_KERNEL, TREE_VM_APPEND, TREE_VM_INITRD,
	TREE_VM_STORAGE_TIMEOUT, TREE_VM_DISK_BUS,
	TREE_VM_FIRMWARE, TREE_VM_CDROM, TREE_VM_BOOT,
	TREE_VM_NFIELDS
};
extern const char *const tree_vm_field_names[TREE_VM_NFIELDS];
/* The field of that name, or -1. */
int		 tree_vm_field_find(const char *);
/* The configuration a VM's next cold start uses: `vm set`'s pending one if
 * there is one, else the one it runs with. */
const Haven__VmConfig *tree_vm_next_config(const Haven__Vm *);

/* Inserts item at index at of a malloc'ed pointer array / removes it. */
void		 tree_array_insert(void ***array, size_t *n, size_t at,
		     void *item);
void		 tree_array_remove(void **array, size_t *n, size_t at);

/* Index in the sorted arrays (hosts by node id, the rest by name), or -1;
 * *at (may be NULL) gets where it is or would be inserted. */
long		 tree_host_find(const Haven__ClusterState *, uint32_t node_id,
		     size_t *at);
long		 tree_pool_find(const Haven__ClusterState *, const char *,
		     size_t *at);
long		 tree_volume_find(const Haven__ClusterState *, const char *,
		     size_t *at);
long		 tree_vm_find(const Haven__ClusterState *, const char *,
		     size_t *at);
long		 tree_role_find(const Haven__ClusterState *, const char *,
		     size_t *at);
/* The same as pointers; NULL when missing. */
Haven__Host	*tree_host(const Haven__ClusterState *, uint32_t node_id);
Haven__Vm	*tree_vm(const Haven__ClusterState *, const char *name);
/* By its UUID (a linear search: the arrays are sorted by name). */
Haven__Vm	*tree_vm_by_uuid(const Haven__ClusterState *, const char *uuid);

/* Appends to the bounded event log (CLUSTER_EVENTS_MAX, the oldest goes),
 * stamped with the seq the change being applied will get and the change's
 * timestamp. */
void		 tree_event_log(Haven__ClusterState *, const Haven__Change *,
		     const char *subject, const char *fmt, ...)
		     __attribute__((format(printf, 4, 5)));

/* The first pool of vm's volumes that host reports unreachable (its
 * storage health, issue 20), or NULL when it reaches all it has reported. */
const Haven__PoolHealth *tree_storage_lost(const Haven__ClusterState *,
		     const Haven__Host *, const Haven__VmConfig *);

/* VM phases. valid: one the state may hold. occupies: the VM holds its
 * owner (its memory counts there, no second start elsewhere). final: a
 * worker that reports it has nothing more to do (stopped, saved, failed). */
int		 tree_phase_valid(int);
int		 tree_phase_occupies(Haven__VmPhase);
int		 tree_phase_final(Haven__VmPhase);
/* "stopped", "running"...; "invalid" out of range. */
const char	*tree_phase_name(Haven__VmPhase);
const char	*tree_membership_name(int);	/* HostMembership */
const char	*tree_fence_name(int);		/* FenceStatus */

/* A VM's move (cluster.proto's Move): tree_move reads it (all zero when
 * absent); tree_move_mut gives it for writing, made on first use. */
const Haven__Move *tree_move(const Haven__VmRuntime *);
Haven__Move	*tree_move_mut(Haven__VmRuntime *);
/* Moves the legacy_* move fields of every VM (state file version 2, an
 * older member's snapshot) into its Move and clears them; how many VMs had
 * any. Deterministic: every member turns the same state into the same. */
size_t		 tree_move_upgrade(Haven__ClusterState *);

#endif
