/*
 * Applying a host's storage health report (issue 20) to the replicated
 * state: cluster_apply's kind HOST_STORAGE, in a file of its own so that
 * cluster_apply.c keeps one concept per function and room to grow. Like
 * every apply function it checks everything before it touches anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

/* A host's storage health, pool by pool (issue 20): the entries of
 * pools, as its runtime keeps them, sorted by pool name and each once. */
static int
storage_check(const Haven__ClusterState *cs, uint32_t id,
    Haven__PoolHealth *const *pools, size_t n, char *err, size_t errlen)
{
	size_t	 i, j;

	if (n == 0)
		REFUSE(CLUSTER_E_INVALID, "host %u: a storage report needs at "
		    "least one pool", id);
	for (i = 0; i < n; i++) {
		if (pools[i] == NULL || tree_empty(pools[i]->pool))
			REFUSE(CLUSTER_E_INVALID, "host %u: a storage report "
			    "names a pool with an empty name", id);
		if (tree_pool_find(cs, pools[i]->pool, NULL) < 0)
			REFUSE(CLUSTER_E_NOT_FOUND, "host %u reports on pool "
			    "%.64s, which does not exist", id, pools[i]->pool);
		if (pools[i]->since_us == 0)
			REFUSE(CLUSTER_E_INVALID, "host %u: pool %.64s has no "
			    "time its state began (since_us)", id,
			    pools[i]->pool);
		if (pools[i]->n_paths != pools[i]->n_path_reachable ||
		    pools[i]->n_paths > POOL_MAX_PORTALS)
			REFUSE(CLUSTER_E_INVALID, "host %u: pool %.64s: %zu "
			    "paths and %zu path states (at most %d)", id,
			    pools[i]->pool, pools[i]->n_paths,
			    pools[i]->n_path_reachable, POOL_MAX_PORTALS);
		for (j = 0; j < pools[i]->n_paths; j++)
			if (tree_empty(pools[i]->paths[j]) ||
			    !tree_text_valid(pools[i]->paths[j], 255))
				REFUSE(CLUSTER_E_INVALID, "host %u: pool %.64s "
				    "has a path with no portal", id,
				    pools[i]->pool);
		if (i > 0 && strcmp(pools[i - 1]->pool, pools[i]->pool) >= 0)
			REFUSE(CLUSTER_E_INVALID, "host %u: the pools of a "
			    "storage report must be sorted, each once", id);
	}
	return CLUSTER_OK;
}

/* Where pool is (or would go) in a host's sorted storage entries. */
static long
storage_find(const Haven__HostRuntime *rt, const char *pool, size_t *at)
{
	size_t	 lo = 0, hi = rt->n_storage, mid;
	int	 c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if ((c = strcmp(rt->storage[mid]->pool, pool)) == 0) {
			if (at != NULL)
				*at = mid;
			return (long)mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at != NULL)
		*at = lo;
	return -1;
}

/* Whether a report's paths (multipath, issue 17) differ from the state's. */
static int
storage_paths_differ(const Haven__PoolHealth *a, const Haven__PoolHealth *b)
{
	size_t	i;

	if (a->n_paths != b->n_paths || a->n_path_reachable !=
	    b->n_path_reachable)
		return 1;
	for (i = 0; i < a->n_paths; i++)
		if (strcmp(a->paths[i], b->paths[i]) != 0)
			return 1;
	for (i = 0; i < a->n_path_reachable; i++)
		if (!a->path_reachable[i] != !b->path_reachable[i])
			return 1;
	return 0;
}

static size_t
storage_paths_up(const Haven__PoolHealth *ph)
{
	size_t	i, n = 0;

	for (i = 0; i < ph->n_path_reachable; i++)
		n += ph->path_reachable[i] != 0;
	return n;
}

/* The report's paths into the state's entry. */
static void
storage_paths_copy(Haven__PoolHealth *ph, const Haven__PoolHealth *from)
{
	size_t	i;

	for (i = 0; i < ph->n_paths; i++)
		free(ph->paths[i]);
	free(ph->paths);
	free(ph->path_reachable);
	ph->paths = NULL;
	ph->path_reachable = NULL;
	ph->n_paths = ph->n_path_reachable = 0;
	if (from->n_paths > 0) {
		ph->paths = xcalloc(from->n_paths, sizeof *ph->paths);
		for (i = 0; i < from->n_paths; i++)
			ph->paths[i] = xstrdup(from->paths[i]);
		ph->n_paths = from->n_paths;
	}
	if (from->n_path_reachable > 0) {
		ph->path_reachable = xcalloc(from->n_path_reachable,
		    sizeof *ph->path_reachable);
		memcpy(ph->path_reachable, from->path_reachable,
		    from->n_path_reachable * sizeof *ph->path_reachable);
		ph->n_path_reachable = from->n_path_reachable;
	}
}

/*
 * A host's report of its storage health: only from the host itself (its
 * probes, clusterd/health.c), only for pools that exist, and only when a
 * pool's state changes, so that the log holds transitions, never probes.
 */
int
cluster_apply_host_storage(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__HostStorage	*hs = c->host_storage;
	Haven__HostRuntime		*rt;
	Haven__PoolHealth		*ph;
	char				 subject[32];
	size_t				 i, at, changed = 0;
	long				 hi, k;
	int				 r;

	if ((hi = tree_host_find(cs, hs->node_id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist",
		    hs->node_id);
	if (c->origin != hs->node_id)
		REFUSE(CLUSTER_E_INVALID, "host %u reports only its own storage "
		    "health (this report came from host %u)", hs->node_id,
		    c->origin);
	if ((r = storage_check(cs, hs->node_id, hs->pools, hs->n_pools, err,
	    errlen)) != CLUSTER_OK)
		return r;
	rt = cs->hosts[hi]->runtime;
	for (i = 0; i < hs->n_pools; i++) {
		k = storage_find(rt, hs->pools[i]->pool, NULL);
		if (k < 0 || rt->storage[k]->reachable !=
		    hs->pools[i]->reachable ||
		    storage_paths_differ(rt->storage[k], hs->pools[i]))
			changed++;
	}
	if (changed == 0)
		REFUSE(CLUSTER_E_STALE, "host %u reports this storage health "
		    "already", hs->node_id);
	if (!commit)
		return CLUSTER_OK;
	snprintf(subject, sizeof subject, "host %u", hs->node_id);
	for (i = 0; i < hs->n_pools; i++) {
		if ((k = storage_find(rt, hs->pools[i]->pool, &at)) >= 0) {
			ph = rt->storage[k];
			if (ph->reachable == hs->pools[i]->reachable) {
				/* Only its paths changed (multipath). */
				if (!storage_paths_differ(ph, hs->pools[i]))
					continue;
				storage_paths_copy(ph, hs->pools[i]);
				tree_event_log(cs, c, subject, "storage: pool "
				    "%.64s reachable through %zu of %zu paths",
				    ph->pool, storage_paths_up(ph),
				    ph->n_path_reachable);
				continue;
			}
		} else {
			ph = xcalloc(1, sizeof *ph);
			haven__pool_health__init(ph);
			ph->pool = xstrdup(hs->pools[i]->pool);
			tree_array_insert((void ***)&rt->storage, &rt->n_storage,
			    at, ph);
		}
		ph->reachable = hs->pools[i]->reachable;
		ph->since_us = hs->pools[i]->since_us;
		storage_paths_copy(ph, hs->pools[i]);
		tree_event_log(cs, c, subject, "storage: pool %.64s %s",
		    ph->pool, ph->reachable ? "reachable" : "UNREACHABLE from "
		    "this host");
	}
	return CLUSTER_OK;
}
