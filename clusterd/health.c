/*
 * This host's storage health (issue 20, DESIGN §3): one heartbeat per pool
 * that has a volume (storage/probe.c: a READ of one sector of the pool's
 * first volume's LUN, over the storage network, every second), a verdict
 * per pool (storage/reach.c), and a HostStorage change proposed when a
 * verdict differs from what the replicated state says of this host. The
 * comparison is level-triggered, so a steady host proposes nothing, and a
 * report lost in a configuration change is sent again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "metrics.h"
#include "proto.h"
#include "storage.h"

#define HEALTH_MAX_POOLS	64
/* A report not in the state by then is proposed again. */
#define HEALTH_RESEND_MS	5000

/* One portal of a pool (multipath, issue 17: a probe per portal). */
struct health_path {
	struct health_pool *pool;
	char		 portal[256];
	struct probe	*probe;
	struct reach	 reach;
	uint64_t	 started_us;	/* the probe under way was sent */
	uint64_t	 started_ms;	/* the same on the loop's clock */
	int		 last_result;
	struct metrics_path metrics;	/* its probes, for the metrics */
};

struct health_pool {
	struct health	*health;
	char		 name[64];
	struct health_path paths[POOL_MAX_PORTALS];
	size_t		 npaths;	/* 1 unless multipath */
	/* The pool's verdict: reachable while any path is. */
	struct reach	 reach;
	int		 seen;		/* still in the state (sweep) */
};

struct health {
	struct event_base	*base;
	struct membership	*membership;
	struct replica		*replica;
	char			 initiator[224];
	struct ev_timer		*tick;
	struct health_pool	*pools[HEALTH_MAX_POOLS];
	size_t			 npools;
	uint64_t		 proposed_ms;	/* last report sent; 0: none */
};

/* Whether the state's paths of a pool differ from a verdict's. */
static int
health_paths_differ(const Haven__PoolHealth *ph, const struct health_verdict *v)
{
	size_t	i;

	if (ph->n_paths != v->npaths || ph->n_path_reachable != v->npaths)
		return 1;
	for (i = 0; i < v->npaths; i++)
		if (strcmp(ph->paths[i], v->paths[i]) != 0 ||
		    !ph->path_reachable[i] != !v->path_reachable[i])
			return 1;
	return 0;
}

/*
 * Which verdicts the state does not hold yet for this node: their indexes
 * into out, in the order given (sorted by pool). Pools the state does not
 * know are left out (a report on them would be refused).
 */
size_t
health_changes(const struct cluster *st, uint32_t node,
    const struct health_verdict *v, size_t n, size_t *out)
{
	const Haven__Host	*me = cluster_host(st, node);
	size_t			 i, j, nout = 0;

	if (me == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (cluster_pool(st, v[i].pool) == NULL)
			continue;
		for (j = 0; j < me->runtime->n_storage; j++)
			if (strcmp(me->runtime->storage[j]->pool,
			    v[i].pool) == 0)
				break;
		if (j == me->runtime->n_storage ||
		    me->runtime->storage[j]->reachable != v[i].reachable ||
		    health_paths_differ(me->runtime->storage[j], &v[i]))
			out[nout++] = i;
	}
	return nout;
}

/* The probe's target through a portal: the LUN of the pool's first
 * volume (by name). */
static int
health_url(const struct cluster *st, const Haven__PoolConfig *pool,
    const char *portal, char *url, size_t len)
{
	size_t	 i;

	for (i = 0; i < st->cs->n_volumes; i++) {
		const Haven__VolumeConfig	*v = st->cs->volumes[i];

		if (strcmp(v->pool, pool->name) == 0) {
			snprintf(url, len, "iscsi://%s/%s/%u", portal,
			    pool->target, v->lun);
			return 0;
		}
	}
	return -1;
}

static void
health_pool_free(struct health_pool *hp)
{
	size_t	i;

	for (i = 0; i < hp->npaths; i++)
		probe_free(hp->paths[i].probe);
	free(hp);
}

/* Propose what the state does not hold yet, unless a report is on its
 * way. Only a quorate member proposes. */
static void
health_publish(struct health *hl)
{
	const struct cluster	*st = replica_state(hl->replica);
	struct health_verdict	 v[HEALTH_MAX_POOLS];
	size_t			 idx[HEALTH_MAX_POOLS], i, j, n = 0, nchanged;
	uint32_t		 node = membership_node_id(hl->membership);
	Haven__Change		*c;
	Haven__HostStorage	*hs;
	char			 err[256];

	if (!replica_is_quorate(hl->replica) || node == 0 ||
	    (hl->proposed_ms != 0 &&
	    ev_now_ms() - hl->proposed_ms < HEALTH_RESEND_MS))
		return;
	/* The pools are kept sorted by name (health_sync). */
	for (i = 0; i < hl->npools; i++) {
		if (hl->pools[i]->reach.state == REACH_UNKNOWN)
			continue;
		v[n].pool = hl->pools[i]->name;
		v[n].reachable = hl->pools[i]->reach.state == REACH_REACHABLE;
		v[n].since_us = hl->pools[i]->reach.since_us;
		/* Per path only once every member understands it (protocol
		 * 3): an older one refuses a report whose paths alone
		 * changed, and it would be sent again every 5 s. */
		v[n].npaths = hl->pools[i]->npaths > 1 &&
		    replica_protocol(hl->replica) >= 3 ?
		    hl->pools[i]->npaths : 0;
		for (j = 0; j < v[n].npaths; j++) {
			v[n].paths[j] = hl->pools[i]->paths[j].portal;
			v[n].path_reachable[j] =
			    hl->pools[i]->paths[j].reach.state ==
			    REACH_REACHABLE;
		}
		n++;
	}
	if ((nchanged = health_changes(st, node, v, n, idx)) == 0) {
		hl->proposed_ms = 0;
		return;
	}
	c = calloc(1, sizeof *c);
	hs = calloc(1, sizeof *hs);
	if (c == NULL || hs == NULL)
		abort();
	haven__change__init(c);
	haven__host_storage__init(hs);
	hs->node_id = node;
	hs->pools = xcalloc(nchanged, sizeof *hs->pools);
	for (i = 0; i < nchanged; i++) {
		hs->pools[i] = xcalloc(1, sizeof *hs->pools[i]);
		haven__pool_health__init(hs->pools[i]);
		hs->pools[i]->pool = xstrdup(v[idx[i]].pool);
		hs->pools[i]->reachable = v[idx[i]].reachable;
		hs->pools[i]->since_us = v[idx[i]].since_us;
		if (v[idx[i]].npaths > 0) {
			hs->pools[i]->n_paths = v[idx[i]].npaths;
			hs->pools[i]->n_path_reachable = v[idx[i]].npaths;
			hs->pools[i]->paths = xcalloc(v[idx[i]].npaths,
			    sizeof *hs->pools[i]->paths);
			hs->pools[i]->path_reachable = xcalloc(v[idx[i]].npaths,
			    sizeof *hs->pools[i]->path_reachable);
			for (j = 0; j < v[idx[i]].npaths; j++) {
				hs->pools[i]->paths[j] =
				    xstrdup(v[idx[i]].paths[j]);
				hs->pools[i]->path_reachable[j] =
				    v[idx[i]].path_reachable[j];
			}
		}
	}
	hs->n_pools = nchanged;
	c->kind_case = HAVEN__CHANGE__KIND_HOST_STORAGE;
	c->host_storage = hs;
	if (replica_propose(hl->replica, c, NULL, err, sizeof err) == -1) {
		log_warn("storage: reporting this host's storage health: %s",
		    err);
		return;
	}
	hl->proposed_ms = ev_now_ms();
}

/*
 * A path's probe answered or failed. Each path has its own verdict; the
 * pool's is reachable while any path is, unreachable once every path is,
 * and changes at the moment the last path went or the first came back.
 */
static void
health_probed(int result, void *arg)
{
	struct health_path	*hpath = arg;
	struct health_pool	*hp = hpath->pool;
	uint64_t		 now = now_us();
	enum reach_state	 pool;
	size_t			 i, up = 0, down = 0;

	hpath->last_result = result;
	if (result == 0)
		metrics_path_observe(&hpath->metrics, now > hpath->started_us ?
		    (double)(now - hpath->started_us) / 1e6 : 0);
	else
		hpath->metrics.failed++;
	if (!reach_observe(&hpath->reach, result == 0, hpath->started_us, now))
		return;
	for (i = 0; i < hp->npaths; i++) {
		up += hp->paths[i].reach.state == REACH_REACHABLE;
		down += hp->paths[i].reach.state == REACH_UNREACHABLE;
	}
	pool = up > 0 ? REACH_REACHABLE : down == hp->npaths ?
	    REACH_UNREACHABLE : REACH_UNKNOWN;
	if (hp->npaths > 1)
		log_scoped(hpath->reach.state == REACH_REACHABLE ?
		    LOG_LEVEL_INFO : LOG_LEVEL_WARN, "storage", hp->name,
		    "path %s %s; %zu of %zu paths reachable", hpath->portal,
		    hpath->reach.state == REACH_REACHABLE ? "reachable" :
		    "UNREACHABLE", up, hp->npaths);
	if (pool != hp->reach.state && pool != REACH_UNKNOWN) {
		hp->reach.state = pool;
		hp->reach.since_us = hpath->reach.since_us;
		if (pool == REACH_REACHABLE)
			log_info("storage: pool %s reachable from this host "
			    "(%s)", hp->name, probe_url(hpath->probe));
		else
			log_warn("storage: pool %s UNREACHABLE from this host: "
			    "no answer from %s for %.1f s (%s)", hp->name,
			    probe_url(hpath->probe), (double)(now -
			    hpath->reach.since_us) / 1e6,
			    storage_strerror(result));
	}
	hp->health->proposed_ms = 0;	/* a new verdict goes out now */
	health_publish(hp->health);
}

/*
 * The pools to probe, from the state: each pool with a volume, in the
 * state's order (sorted by name). A pool whose first volume changed gets a
 * new probe; the verdict starts afresh with it.
 */
static void
health_sync(struct health *hl)
{
	const struct cluster	*st = replica_state(hl->replica);
	struct health_pool	*next[HEALTH_MAX_POOLS], *hp;
	char			 urls[POOL_MAX_PORTALS][384];
	const char		*portals[POOL_MAX_PORTALS];
	size_t			 i, j, k, n = 0, np;

	for (i = 0; i < st->cs->n_pools && n < HEALTH_MAX_POOLS; i++) {
		const Haven__PoolConfig	*pool = st->cs->pools[i];

		/* Multipath (issue 17): a probe per portal. */
		np = pool->n_portals > 1 ? pool->n_portals : 1;
		if (np > POOL_MAX_PORTALS)
			np = POOL_MAX_PORTALS;
		for (k = 0; k < np; k++) {
			portals[k] = pool->n_portals > 1 ? pool->portals[k] :
			    pool->portal;
			if (health_url(st, pool, portals[k], urls[k],
			    sizeof urls[k]) == -1)
				break;
		}
		if (k < np)
			continue;
		hp = NULL;
		for (j = 0; j < hl->npools; j++) {
			if (hl->pools[j] == NULL || strcmp(hl->pools[j]->name,
			    pool->name) != 0 || hl->pools[j]->npaths != np)
				continue;
			for (k = 0; k < np; k++)
				if (strcmp(probe_url(hl->pools[j]->paths[k].probe),
				    urls[k]) != 0)
					break;
			if (k == np) {
				hp = hl->pools[j];
				hl->pools[j] = NULL;
				break;
			}
		}
		if (hp == NULL) {
			hp = xcalloc(1, sizeof *hp);
			hp->health = hl;
			snprintf(hp->name, sizeof hp->name, "%s", pool->name);
			reach_init(&hp->reach, now_us());
			for (k = 0; k < np; k++) {
				hp->paths[k].pool = hp;
				snprintf(hp->paths[k].portal,
				    sizeof hp->paths[k].portal, "%s",
				    portals[k]);
				reach_init(&hp->paths[k].reach, now_us());
				snprintf(hp->paths[k].metrics.pool,
				    sizeof hp->paths[k].metrics.pool, "%s",
				    pool->name);
				snprintf(hp->paths[k].metrics.portal,
				    sizeof hp->paths[k].metrics.portal, "%s",
				    portals[k]);
				if ((hp->paths[k].probe = probe_new(hl->base,
				    urls[k], hl->initiator,
				    REACH_PROBE_TIMEOUT_MS, health_probed,
				    &hp->paths[k])) == NULL)
					break;
				hp->npaths++;
				log_info("storage: probing pool %s through %s",
				    hp->name, urls[k]);
			}
			if (k < np) {
				health_pool_free(hp);
				continue;
			}
		}
		next[n++] = hp;
	}
	for (j = 0; j < hl->npools; j++)
		if (hl->pools[j] != NULL)
			health_pool_free(hl->pools[j]);
	memcpy(hl->pools, next, n * sizeof *next);
	hl->npools = n;
}

static void
health_tick(void *arg)
{
	struct health		*hl = arg;
	struct health_path	*hp;
	uint64_t		 now = ev_now_ms();
	size_t			 i, k;

	health_sync(hl);
	for (i = 0; i < hl->npools; i++) {
		for (k = 0; k < hl->pools[i]->npaths; k++) {
			hp = &hl->pools[i]->paths[k];
			if (probe_busy(hp->probe) || (hp->started_ms != 0 &&
			    now - hp->started_ms < REACH_PROBE_INTERVAL_MS / 2))
				continue;
			hp->started_us = now_us();
			hp->started_ms = now;
			(void)probe_run(hp->probe);
		}
	}
	health_publish(hl);
}

/* Every pool's paths, each with its own verdict, for the metrics. */
size_t
health_paths(const struct health *hl, struct metrics_path *out, size_t max)
{
	const struct health_path	*hp;
	size_t				 i, k, n = 0;

	for (i = 0; hl != NULL && i < hl->npools; i++)
		for (k = 0; k < hl->pools[i]->npaths && n < max; k++) {
			hp = &hl->pools[i]->paths[k];
			out[n] = hp->metrics;
			out[n++].up = hp->reach.state == REACH_UNKNOWN ? -1 :
			    hp->reach.state == REACH_REACHABLE;
		}
	return n;
}

struct health *
health_new(struct event_base *base, struct membership *membership,
    struct replica *replica, const char *initiator)
{
	struct health	*hl = xcalloc(1, sizeof *hl);

	hl->base = base;
	hl->membership = membership;
	hl->replica = replica;
	snprintf(hl->initiator, sizeof hl->initiator, "%s", initiator);
	if ((hl->tick = ev_timer_new(base, REACH_PROBE_INTERVAL_MS, 1,
	    health_tick, hl)) == NULL) {
		free(hl);
		return NULL;
	}
	return hl;
}

void
health_free(struct health *hl)
{
	size_t	 i;

	if (hl == NULL)
		return;
	ev_timer_free(hl->tick);
	for (i = 0; i < hl->npools; i++)
		health_pool_free(hl->pools[i]);
	free(hl);
}
