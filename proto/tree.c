/*
 * Helpers on the replicated state's message tree, shared by clusterd/'s apply
 * and coordinator and by migrate/'s move phases (tree.h says why they live
 * here). Repeated fields of the tree stay sorted, hosts by node id and the
 * rest by name, so that equal states pack to equal bytes.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "tree.h"

int
tree_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

void *
tree_clone(const ProtobufCMessage *m)
{
	uint8_t			*buf;
	size_t			 len;
	ProtobufCMessage	*copy;

	len = protobuf_c_message_get_packed_size(m);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return copy;
}


void *
tree_xclone(const ProtobufCMessage *m)
{
	void	*copy;

	if ((copy = tree_clone(m)) == NULL)
		log_fatal("state: out of memory");
	return copy;
}



int
tree_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

int
tree_name_valid(const char *name)
{
	size_t	i;

	if (name == NULL || !isalnum((unsigned char)name[0]))
		return 0;
	for (i = 1; name[i] != '\0'; i++) {
		if (i >= TREE_NAME_MAX)
			return 0;
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return 0;
	}
	return 1;
}

int
tree_text_valid(const char *s, size_t max)
{
	size_t	i;

	if (s == NULL)
		return 1;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

const char *
tree_printable(const char *s)
{
	return tree_text_valid(s, 256) ? s : "(with control characters)";
}

uint64_t
tree_config_digest(const Haven__VmConfig *vc)
{
	uint64_t	 hash = 14695981039346656037ULL;
	uint8_t		*buf;
	size_t		 i, len;

	len = protobuf_c_message_get_packed_size(&vc->base);
	buf = xmalloc(len > 0 ? len : 1);
	(void)protobuf_c_message_pack(&vc->base, buf);
	for (i = 0; i < len; i++) {
		hash ^= buf[i];
		hash *= 1099511628211ULL;
	}
	free(buf);
	return hash;
}

const char *const tree_vm_field_names[TREE_VM_NFIELDS] = {
	[TREE_VM_MEMORY] = "memory",
	[TREE_VM_VCPUS] = "vcpus",
	[TREE_VM_VOLUME] = "volume",
	[TREE_VM_NIC] = "nic",
	[TREE_VM_PRIORITY] = "priority",
	[TREE_VM_PREFER] = "prefer",
	[TREE_VM_ANTI_AFFINITY] = "anti-affinity",
	[TREE_VM_FAILBACK] = "failback",
	[TREE_VM_ISOLATION] = "isolation",
	[TREE_VM_STOP_TIMEOUT] = "stop-timeout",
	[TREE_VM_MAX_RESTARTS] = "max-restarts",
	[TREE_VM_KERNEL] = "kernel",
	[TREE_VM_APPEND] = "append",
	[TREE_VM_INITRD] = "initrd",
	[TREE_VM_STORAGE_TIMEOUT] = "storage-timeout-s",
	[TREE_VM_DISK_BUS] = "disk-bus",
	[TREE_VM_FIRMWARE] = "firmware",
	[TREE_VM_CDROM] = "cdrom",
	[TREE_VM_BOOT] = "boot",
};

int
tree_vm_field_find(const char *name)
{
	int	 i;

	for (i = 0; i < TREE_VM_NFIELDS; i++)
		if (name != NULL && strcmp(name, tree_vm_field_names[i]) == 0)
			return i;
	return -1;
}

const Haven__VmConfig *
tree_vm_next_config(const Haven__Vm *vm)
{
	return vm->pending != NULL ? vm->pending : vm->config;
}

int
tree_path_valid(const char *s)
{
	return s != NULL && s[0] == '/' && tree_text_valid(s, 4095) &&
	    strstr(s, "/../") == NULL && (strlen(s) < 3 ||
	    strcmp(s + strlen(s) - 3, "/..") != 0);
}

int
tree_iscsi_name_valid(const char *name)
{
	size_t	i, len = name != NULL ? strlen(name) : 0;

	if (len <= 4 || len > TREE_ISCSI_NAME_MAX)
		return 0;
	if (strncmp(name, "eui.", 4) == 0 || strncmp(name, "naa.", 4) == 0) {
		for (i = 4; i < len; i++) {
			if (!isxdigit((unsigned char)name[i]))
				return 0;
		}
		return len - 4 == 16 || (name[0] == 'n' && len - 4 == 32);
	}
	if (strncmp(name, "iqn.", 4) != 0)
		return 0;
	for (i = 4; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '.' && name[i] != ':')
			return 0;
	}
	return 1;
}

void
tree_array_insert(void ***array, size_t *n, size_t at, void *item)
{
	void	**grown;

	if ((grown = realloc(*array, (*n + 1) * sizeof *grown)) == NULL)
		log_fatal("state: out of memory");
	memmove(grown + at + 1, grown + at, (*n - at) * sizeof *grown);
	grown[at] = item;
	*array = grown;
	(*n)++;
}

void
tree_array_remove(void **array, size_t *n, size_t at)
{
	memmove(array + at, array + at + 1, (*n - at - 1) * sizeof *array);
	(*n)--;
}

long
tree_host_find(const Haven__ClusterState *cs, uint32_t id, size_t *at)
{
	size_t	 i;

	for (i = 0; i < cs->n_hosts; i++) {
		if (cs->hosts[i]->config->node_id == id) {
			if (at != NULL)
				*at = i;
			return (long)i;
		}
		if (cs->hosts[i]->config->node_id > id)
			break;
	}
	if (at != NULL)
		*at = i;
	return -1;
}

/* The arrays kept sorted by name. */
#define NAME_FIND(fn, array, count, namefield)			\
long									\
fn(const Haven__ClusterState *cs, const char *name, size_t *at)	\
{									\
	size_t	 i;							\
	int	 c;							\
									\
	for (i = 0; i < cs->count; i++) {				\
		c = strcmp(cs->array[i]->namefield, name);		\
		if (c == 0) {						\
			if (at != NULL)					\
				*at = i;				\
			return (long)i;					\
		}							\
		if (c > 0)						\
			break;						\
	}								\
	if (at != NULL)							\
		*at = i;						\
	return -1;							\
}
NAME_FIND(tree_pool_find, pools, n_pools, name)
NAME_FIND(tree_volume_find, volumes, n_volumes, name)
NAME_FIND(tree_vm_find, vms, n_vms, config->name)
NAME_FIND(tree_role_find, roles, n_roles, principal)
#undef NAME_FIND

Haven__Host *
tree_host(const Haven__ClusterState *cs, uint32_t node_id)
{
	long	 i = tree_host_find(cs, node_id, NULL);

	return i < 0 ? NULL : cs->hosts[i];
}

Haven__Vm *
tree_vm(const Haven__ClusterState *cs, const char *name)
{
	long	 i = tree_vm_find(cs, name, NULL);

	return i < 0 ? NULL : cs->vms[i];
}

Haven__Vm *
tree_vm_by_uuid(const Haven__ClusterState *cs, const char *uuid)
{
	size_t	i;

	for (i = 0; i < cs->n_vms; i++)
		if (strcmp(cs->vms[i]->config->uuid, uuid) == 0)
			return cs->vms[i];
	return NULL;
}

const Haven__PoolHealth *
tree_storage_lost(const Haven__ClusterState *cs, const Haven__Host *host,
    const Haven__VmConfig *vc)
{
	const Haven__HostRuntime	*rt = host->runtime;
	const Haven__VolumeConfig	*v;
	long				 k;
	size_t				 i, j;

	for (i = 0; i < vc->n_volumes; i++) {
		if ((k = tree_volume_find(cs, vc->volumes[i], NULL)) < 0)
			continue;
		v = cs->volumes[k];
		for (j = 0; rt != NULL && j < rt->n_storage; j++)
			if (!rt->storage[j]->reachable &&
			    strcmp(rt->storage[j]->pool, v->pool) == 0)
				return rt->storage[j];
	}
	return NULL;
}

void
tree_event_log(Haven__ClusterState *cs, const Haven__Change *c,
    const char *subject, const char *fmt, ...)
{
	Haven__Event	*ev;
	char		 text[256];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	ev = xcalloc(1, sizeof *ev);
	haven__event__init(ev);
	ev->seq = cs->seq + 1;
	ev->timestamp_us = c->timestamp_us;
	ev->subject = xstrdup(subject);
	ev->text = xstrdup(text);
	if (cs->n_events >= CLUSTER_EVENTS_MAX) {
		protobuf_c_message_free_unpacked(&cs->events[0]->base, NULL);
		tree_array_remove((void **)cs->events, &cs->n_events, 0);
	}
	tree_array_insert((void ***)&cs->events, &cs->n_events, cs->n_events,
	    ev);
}

int
tree_phase_valid(int phase)
{
	return phase >= HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    phase <= HAVEN__VM_PHASE__VM_PHASE_PAUSED;
}

int
tree_phase_occupies(Haven__VmPhase phase)
{
	switch (phase) {
	case HAVEN__VM_PHASE__VM_PHASE_STARTING:
	case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
	case HAVEN__VM_PHASE__VM_PHASE_STOPPING:
	case HAVEN__VM_PHASE__VM_PHASE_SAVING:
	case HAVEN__VM_PHASE__VM_PHASE_RESTORING:
	case HAVEN__VM_PHASE__VM_PHASE_MIGRATING:
	case HAVEN__VM_PHASE__VM_PHASE_PAUSED:
		return 1;
	default:
		return 0;
	}
}

int
tree_phase_final(Haven__VmPhase phase)
{
	return phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED ||
	    phase == HAVEN__VM_PHASE__VM_PHASE_SAVED ||
	    phase == HAVEN__VM_PHASE__VM_PHASE_FAILED;
}

const char *
tree_phase_name(Haven__VmPhase phase)
{
	static const char *const names[] = { "unspecified", "stopped",
	    "starting", "running", "stopping", "saving", "saved", "restoring",
	    "migrating", "recovering", "failed", "paused" };

	if ((int)phase < 0 || (size_t)phase >= sizeof names / sizeof names[0])
		return "invalid";
	return names[phase];
}

const Haven__Move *
tree_move(const Haven__VmRuntime *rt)
{
	static const Haven__Move	none = HAVEN__MOVE__INIT;

	return rt != NULL && rt->move != NULL ? rt->move : &none;
}

Haven__Move *
tree_move_mut(Haven__VmRuntime *rt)
{
	if (rt->move == NULL) {
		rt->move = xcalloc(1, sizeof *rt->move);
		haven__move__init(rt->move);
	}
	return rt->move;
}

/* A legacy string field handed over to the Move, or "" left behind. */
static char *
tree_take_string(char **field)
{
	char	*s = *field;

	*field = (char *)protobuf_c_empty_string;
	return s != NULL ? s : (char *)protobuf_c_empty_string;
}

/* The one reader of the legacy fields (tests/layout/check-layout refuses
 * them anywhere else). */
size_t
tree_move_upgrade(Haven__ClusterState *cs)
{
	Haven__VmRuntime	*rt;
	Haven__Move		*m;
	size_t			 i, n = 0;

	for (i = 0; cs != NULL && i < cs->n_vms; i++) {
		if ((rt = cs->vms[i]->runtime) == NULL)
			continue;
		if (rt->legacy_migrate_to == 0 && rt->legacy_migrate_from == 0 &&
		    rt->legacy_saving_at_us == 0 && !rt->legacy_quick &&
		    tree_empty(rt->legacy_live_endpoint) &&
		    tree_empty(rt->legacy_live_token) &&
		    rt->legacy_live_remaining == 0 && rt->legacy_live_total == 0)
			continue;
		m = tree_move_mut(rt);
		m->to = rt->legacy_migrate_to;
		m->from = rt->legacy_migrate_from;
		m->quick = rt->legacy_quick;
		m->downtime_since_us = rt->legacy_saving_at_us;
		if (m->live_endpoint != protobuf_c_empty_string)
			free(m->live_endpoint);
		m->live_endpoint = tree_take_string(&rt->legacy_live_endpoint);
		if (m->live_token != protobuf_c_empty_string)
			free(m->live_token);
		m->live_token = tree_take_string(&rt->legacy_live_token);
		m->remaining_bytes = rt->legacy_live_remaining;
		m->total_bytes = rt->legacy_live_total;
		rt->legacy_migrate_to = rt->legacy_migrate_from = 0;
		rt->legacy_quick = 0;
		rt->legacy_saving_at_us = 0;
		rt->legacy_live_remaining = rt->legacy_live_total = 0;
		n++;
	}
	return n;
}

/* The names havenctl, the metrics and the status page give them. */
const char *
tree_membership_name(int v)
{
	switch (v) {
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_UNSPECIFIED:
		return "never-seen";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER:
		return "member";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST:
		return "lost";
	default:
		return "unknown";
	}
}

const char *
tree_fence_name(int v)
{
	switch (v) {
	case HAVEN__FENCE_STATUS__FENCE_STATUS_NONE:
		return "none";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING:
		return "pending";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED:
		return "fenced";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}
