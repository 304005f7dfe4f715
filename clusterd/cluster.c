/*
 * The replicated cluster state (DESIGN §5): its life cycle, lookups, the
 * invariants a whole tree must keep (load, adopt), and the canonical digest
 * members compare on sync. Applying changes is cluster_apply.c's, the file
 * format cluster_file.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

const char *
cluster_result_name(int r)
{
	switch (r) {
	case CLUSTER_OK:			return "ok";
	case CLUSTER_E_NOT_QUORATE:	return "not-quorate";
	case CLUSTER_E_INVALID:		return "invalid";
	case CLUSTER_E_NOT_FOUND:		return "not-found";
	case CLUSTER_E_EXISTS:		return "exists";
	case CLUSTER_E_CONFLICT:		return "conflict";
	case CLUSTER_E_STALE:		return "stale";
	case CLUSTER_E_CORRUPT:		return "corrupt";
	case CLUSTER_E_IO:		return "io";
	default:			return "unknown";
	}
}


/* --- Life cycle ---------------------------------------------------------- */

struct cluster *
cluster_new(void)
{
	struct cluster	*st;

	st = xcalloc(1, sizeof *st);
	st->cs = xcalloc(1, sizeof *st->cs);
	haven__cluster_state__init(st->cs);
	return st;
}

void
cluster_free(struct cluster *st)
{
	if (st == NULL)
		return;
	protobuf_c_message_free_unpacked(&st->cs->base, NULL);
	free(st);
}

struct cluster *
cluster_clone(const struct cluster *st)
{
	struct cluster	*copy;

	copy = xcalloc(1, sizeof *copy);
	copy->cs = tree_xclone(&st->cs->base);
	return copy;
}

Haven__Vm *
cluster_vm(const struct cluster *st, const char *name)
{
	return tree_vm(st->cs, name);
}

Haven__VolumeConfig *
cluster_volume(const struct cluster *st, const char *name)
{
	long	 i = tree_volume_find(st->cs, name, NULL);

	return i < 0 ? NULL : st->cs->volumes[i];
}

Haven__PoolConfig *
cluster_pool(const struct cluster *st, const char *name)
{
	long	 i = tree_pool_find(st->cs, name, NULL);

	return i < 0 ? NULL : st->cs->pools[i];
}

Haven__Host *
cluster_host(const struct cluster *st, uint32_t node_id)
{
	return tree_host(st->cs, node_id);
}

void
cluster_set_epoch(struct cluster *st, uint64_t epoch, int quorate)
{
	st->cs->epoch = epoch;
	if (quorate && epoch > st->cs->last_quorate_epoch)
		st->cs->last_quorate_epoch = epoch;
}

void
cluster_digest(const struct cluster *st, uint8_t digest[CLUSTER_DIGEST_SIZE])
{
	Haven__ClusterState	 canonical = *st->cs;
	uint8_t			*buf;
	size_t			 len;

	/* Member-local bookkeeping is not history. */
	canonical.epoch = 0;
	canonical.last_quorate_epoch = 0;
	len = protobuf_c_message_get_packed_size(&canonical.base);
	buf = xcalloc(1, len);
	protobuf_c_message_pack(&canonical.base, buf);
	sha256(buf, len, digest);
	free(buf);
}

void
cluster_digest_hex(const uint8_t digest[CLUSTER_DIGEST_SIZE], size_t n, char *out,
    size_t outlen)
{
	size_t	 i;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < n && i < CLUSTER_DIGEST_SIZE && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* --- Validation of a whole tree (load, adopt) ---------------------------- */

int
cluster_validate(const Haven__ClusterState *cs, char *err, size_t errlen)
{
	size_t	 i, j;

#define BAD(...)	\
	return tree_fail(CLUSTER_E_CORRUPT, err, errlen, __VA_ARGS__)
	for (i = 0; i < cs->n_hosts; i++) {
		const Haven__Host	*h = cs->hosts[i];

		if (h->config == NULL || h->runtime == NULL)
			BAD("host %zu has no config or runtime", i);
		if (h->config->node_id == 0 || tree_empty(h->config->name))
			BAD("host %zu has no node id or name", i);
		/* Names become paths and arguments: the rules of a change. */
		if (!tree_name_valid(h->config->name))
			BAD("host %u's name is not a name", h->config->node_id);
		if (i > 0 && cs->hosts[i - 1]->config->node_id >=
		    h->config->node_id)
			BAD("hosts are not sorted by node id or repeat %u",
			    h->config->node_id);
		for (j = 0; j < h->runtime->n_storage; j++) {
			const Haven__PoolHealth	*ph = h->runtime->storage[j];

			if (ph == NULL || !tree_name_valid(ph->pool))
				BAD("host %u has storage health for a pool "
				    "without a valid name", h->config->node_id);
			if (j > 0 && strcmp(h->runtime->storage[j - 1]->pool,
			    ph->pool) >= 0)
				BAD("host %u's storage health is not sorted "
				    "by pool or repeats %s", h->config->node_id,
				    ph->pool);
		}
	}
	for (i = 0; i < cs->n_pools; i++) {
		if (tree_empty(cs->pools[i]->name))
			BAD("pool %zu has no name", i);
		if (!tree_name_valid(cs->pools[i]->name) ||
		    !tree_iscsi_name_valid(cs->pools[i]->target))
			BAD("pool %zu's name or target is not valid", i);
		if (i > 0 && strcmp(cs->pools[i - 1]->name,
		    cs->pools[i]->name) >= 0)
			BAD("pools are not sorted or repeat %s",
			    cs->pools[i]->name);
	}
	for (i = 0; i < cs->n_volumes; i++) {
		const Haven__VolumeConfig	*v = cs->volumes[i];

		if (tree_empty(v->name))
			BAD("volume %zu has no name", i);
		if (!tree_name_valid(v->name))
			BAD("volume %zu's name is not a name", i);
		if (i > 0 && strcmp(cs->volumes[i - 1]->name, v->name) >= 0)
			BAD("volumes are not sorted or repeat %s", v->name);
		if (tree_pool_find(cs, v->pool, NULL) < 0)
			BAD("volume %s names a missing pool", v->name);
	}
	for (i = 0; i < cs->n_vms; i++) {
		const Haven__Vm		*vm = cs->vms[i];

		if (vm->config == NULL || vm->runtime == NULL)
			BAD("VM %zu has no config or runtime", i);
		if (tree_empty(vm->config->name))
			BAD("VM %zu has no name", i);
		if (!tree_name_valid(vm->config->name) ||
		    (!tree_empty(vm->config->uuid) &&
		    !uuid_valid(vm->config->uuid)) ||
		    (!tree_empty(vm->config->kernel) &&
		    !tree_path_valid(vm->config->kernel)) ||
		    (!tree_empty(vm->config->initrd) &&
		    !tree_path_valid(vm->config->initrd)) ||
		    !tree_text_valid(vm->config->kernel_append, 4096))
			BAD("VM %zu's name, UUID, kernel, initrd or command line "
			    "is not valid", i);
		if (boot_config_check(vm->config, NULL, 0) == -1)
			BAD("VM %s's firmware, cdrom or boot order is not valid",
			    vm->config->name);
		if (i > 0 && strcmp(cs->vms[i - 1]->config->name,
		    vm->config->name) >= 0)
			BAD("VMs are not sorted or repeat %s", vm->config->name);
		if (!tree_phase_valid(vm->runtime->phase))
			BAD("VM %s has an invalid phase", vm->config->name);
		if (vm->runtime->owner != 0 &&
		    tree_host_find(cs, vm->runtime->owner, NULL) < 0)
			BAD("VM %s is owned by unknown host %u",
			    vm->config->name, vm->runtime->owner);
		for (j = 0; j < vm->config->n_volumes; j++)
			if (tree_volume_find(cs, vm->config->volumes[j],
			    NULL) < 0)
				BAD("VM %s uses missing volume %s",
				    vm->config->name, vm->config->volumes[j]);
		if (vm->pending == NULL)
			continue;
		/* vm set's configuration for the next start: the same VM. */
		if (tree_empty(vm->pending->name) ||
		    strcmp(vm->pending->name, vm->config->name) != 0 ||
		    strcmp(vm->pending->uuid, vm->config->uuid) != 0 ||
		    cluster_vm_strings(vm->pending, NULL, 0) != CLUSTER_OK)
			BAD("VM %s's configuration for its next start is not "
			    "valid", vm->config->name);
		for (j = 0; j < vm->pending->n_volumes; j++)
			if (tree_volume_find(cs, vm->pending->volumes[j],
			    NULL) < 0)
				BAD("VM %s's next start uses missing volume %s",
				    vm->config->name, vm->pending->volumes[j]);
	}
	for (i = 0; i < cs->n_roles; i++) {
		if (tree_empty(cs->roles[i]->principal))
			BAD("role binding %zu has no principal", i);
		if (i > 0 && strcmp(cs->roles[i - 1]->principal,
		    cs->roles[i]->principal) >= 0)
			BAD("role bindings are not sorted or repeat %s",
			    cs->roles[i]->principal);
	}
	if (cs->n_fence_history > CLUSTER_FENCE_HISTORY_MAX)
		BAD("the fence history holds %zu entries, more than %d",
		    cs->n_fence_history, CLUSTER_FENCE_HISTORY_MAX);
	if (cs->n_events > CLUSTER_EVENTS_MAX)
		BAD("the event log holds %zu entries, more than %d",
		    cs->n_events, CLUSTER_EVENTS_MAX);
#undef BAD
	return CLUSTER_OK;
}

int
cluster_adopt(struct cluster *st, const Haven__ClusterState *snapshot, char *err,
    size_t errlen)
{
	Haven__ClusterState	*copy;
	int			 r;

	if ((r = cluster_validate(snapshot, err, errlen)) != CLUSTER_OK)
		return r;
	copy = tree_xclone(&snapshot->base);
	/* A member of the previous version sends its moves the old way. */
	(void)tree_move_upgrade(copy);
	copy->epoch = st->cs->epoch;
	if (st->cs->last_quorate_epoch > copy->last_quorate_epoch)
		copy->last_quorate_epoch = st->cs->last_quorate_epoch;
	protobuf_c_message_free_unpacked(&st->cs->base, NULL);
	st->cs = copy;
	return CLUSTER_OK;
}
