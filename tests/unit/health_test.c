/*
 * havend's storage health reports (clusterd/health.c): which verdicts the
 * replicated state does not hold yet. A steady host proposes nothing; a
 * transition proposes exactly the pool that changed; pools the state does
 * not know are left out; and what is proposed is applied as it was meant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clusterd.h"

#define NODE	2

static void
apply_ok(struct cluster *st, Haven__Change *c, uint32_t origin)
{
	char	err[256];

	c->origin = origin;
	c->timestamp_us = UINT64_C(1700000000000000) + st->cs->seq;
	assert_int_equal(cluster_apply(st, c, 1, err, sizeof err), CLUSTER_OK);
}

static struct cluster *
cluster_with_pools(void)
{
	struct cluster		*st = cluster_new();
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostAdd		 ha = HAVEN__HOST_ADD__INIT;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__PoolAdd		 pa = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 pc = HAVEN__POOL_CONFIG__INIT;
	static const char	*pools[] = { "san", "tank" };
	size_t			 i;

	hc.node_id = NODE;
	hc.name = (char *)"h2";
	ha.config = &hc;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
	c.host_add = &ha;
	apply_ok(st, &c, NODE);
	for (i = 0; i < 2; i++) {
		pc.name = (char *)pools[i];
		pc.portal = (char *)"10.0.0.1:3260";
		pc.target = (char *)"iqn.2026-11.test:san";
		pa.config = &pc;
		c.kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
		c.pool_add = &pa;
		apply_ok(st, &c, NODE);
	}
	return st;
}

/* Propose what health_changes says, as health.c does, and apply it. */
static size_t
report(struct cluster *st, const struct health_verdict *v, size_t n)
{
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostStorage	 hs = HAVEN__HOST_STORAGE__INIT;
	Haven__PoolHealth	 ph[8], *pph[8];
	protobuf_c_boolean	 pr[8][HEALTH_MAX_PATHS];
	size_t			 idx[8], i, j, nchanged;

	nchanged = health_changes(st, NODE, v, n, idx);
	if (nchanged == 0)
		return 0;
	for (i = 0; i < nchanged; i++) {
		haven__pool_health__init(&ph[i]);
		ph[i].pool = (char *)v[idx[i]].pool;
		ph[i].reachable = v[idx[i]].reachable;
		ph[i].since_us = v[idx[i]].since_us;
		ph[i].paths = (char **)v[idx[i]].paths;
		ph[i].n_paths = v[idx[i]].npaths;
		ph[i].path_reachable = pr[i];
		ph[i].n_path_reachable = v[idx[i]].npaths;
		for (j = 0; j < v[idx[i]].npaths; j++)
			pr[i][j] = v[idx[i]].path_reachable[j];
		pph[i] = &ph[i];
	}
	hs.node_id = NODE;
	hs.pools = pph;
	hs.n_pools = nchanged;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_STORAGE;
	c.host_storage = &hs;
	apply_ok(st, &c, NODE);
	return nchanged;
}

static void
test_steady_proposes_nothing(void **state)
{
	struct cluster		*st = cluster_with_pools();
	struct health_verdict	 v[2] = {
		{ .pool = "san", .reachable = 1, .since_us = 100 },
		{ .pool = "tank", .reachable = 1, .since_us = 100 },
	};
	uint64_t		 seq;
	int			 i;

	(void)state;
	assert_int_equal(report(st, v, 2), 2);		/* first verdicts */
	seq = st->cs->seq;
	for (i = 0; i < 50; i++)			/* 50 probes later */
		assert_int_equal(report(st, v, 2), 0);
	assert_true(st->cs->seq == seq);
	/* A new since with the same verdict is no transition either. */
	v[0].since_us = 900;
	assert_int_equal(report(st, v, 2), 0);
	cluster_free(st);
}

static void
test_transition_proposes_that_pool(void **state)
{
	struct cluster		*st = cluster_with_pools();
	struct health_verdict	 v[2] = {
		{ .pool = "san", .reachable = 1, .since_us = 100 },
		{ .pool = "tank", .reachable = 1, .since_us = 100 },
	};
	size_t			 idx[2];
	const Haven__HostRuntime *rt;

	(void)state;
	assert_int_equal(report(st, v, 2), 2);
	v[0].reachable = 0;
	v[0].since_us = 5000;
	assert_int_equal(health_changes(st, NODE, v, 2, idx), 1);
	assert_int_equal(idx[0], 0);
	assert_int_equal(report(st, v, 2), 1);
	rt = cluster_host(st, NODE)->runtime;
	assert_int_equal(rt->n_storage, 2);
	assert_string_equal(rt->storage[0]->pool, "san");
	assert_false(rt->storage[0]->reachable);
	assert_true(rt->storage[0]->since_us == 5000);
	assert_true(rt->storage[1]->reachable);
	assert_int_equal(report(st, v, 2), 0);
	v[0].reachable = 1;
	assert_int_equal(report(st, v, 2), 1);
	assert_true(cluster_host(st, NODE)->runtime->storage[0]->reachable);
	cluster_free(st);
}

static void
test_unknown_pool_and_host(void **state)
{
	struct cluster		*st = cluster_with_pools();
	struct health_verdict	 v[2] = {
		{ .pool = "nas", .reachable = 0, .since_us = 100 },
		{ .pool = "san", .reachable = 1, .since_us = 100 },
	};
	size_t			 idx[2];

	(void)state;
	/* A pool the state does not know (yet) is not reported. */
	assert_int_equal(health_changes(st, NODE, v, 2, idx), 1);
	assert_int_equal(idx[0], 1);
	/* A host that is not in the state yet reports nothing. */
	assert_int_equal(health_changes(st, 7, v, 2, idx), 0);
	cluster_free(st);
}

/* Multipath (issue 17): a path's verdict changing is a report even while
 * the pool stays reachable; the state keeps each path's. */
static void
test_paths(void **state)
{
	struct cluster		*st = cluster_with_pools();
	struct health_verdict	 v = {
		.pool = "san", .reachable = 1, .since_us = 100, .npaths = 2,
		.paths = { "10.0.0.1:3260", "10.0.1.1:3260" },
		.path_reachable = { 1, 1 },
	};
	const Haven__PoolHealth	*ph;
	size_t			 idx[1];
	uint64_t		 seq;

	(void)state;
	assert_int_equal(report(st, &v, 1), 1);
	assert_int_equal(health_changes(st, NODE, &v, 1, idx), 0);
	v.path_reachable[0] = 0;
	seq = st->cs->seq;
	assert_int_equal(report(st, &v, 1), 1);
	assert_true(st->cs->seq > seq);
	ph = cluster_host(st, NODE)->runtime->storage[0];
	assert_true(ph->reachable);
	assert_int_equal(ph->n_paths, 2);
	assert_false(ph->path_reachable[0]);
	assert_true(ph->path_reachable[1]);
	assert_string_equal(ph->paths[1], "10.0.1.1:3260");
	assert_int_equal(health_changes(st, NODE, &v, 1, idx), 0);
	cluster_free(st);
}

/* A pool's portals: the first is its portal, each once, at most 4. */
static void
test_pool_portals(void **state)
{
	struct cluster		*st = cluster_new();
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__PoolAdd		 pa = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 pc = HAVEN__POOL_CONFIG__INIT;
	char			*portals[5] = { "a:3260", "b:3260", "a:3260",
				    "c", "d" }, err[256];

	(void)state;
	pc.name = (char *)"san";
	pc.portal = (char *)"b:3260";
	pc.target = (char *)"iqn.2026-11.test:san";
	pc.portals = portals;
	pc.n_portals = 2;
	pa.config = &pc;
	c.kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
	c.pool_add = &pa;
	c.origin = NODE;
	assert_int_equal(cluster_apply(st, &c, 1, err, sizeof err),
	    CLUSTER_E_INVALID);
	assert_non_null(strstr(err, "first of its portals"));
	pc.portal = (char *)"a:3260";
	pc.n_portals = 3;
	assert_int_equal(cluster_apply(st, &c, 1, err, sizeof err),
	    CLUSTER_E_INVALID);
	assert_non_null(strstr(err, "twice"));
	pc.n_portals = 5;
	assert_int_equal(cluster_apply(st, &c, 1, err, sizeof err),
	    CLUSTER_E_INVALID);
	assert_int_equal(st->cs->n_pools, 0);
	pc.n_portals = 2;
	assert_int_equal(cluster_apply(st, &c, 1, err, sizeof err),
	    CLUSTER_OK);
	assert_int_equal(st->cs->pools[0]->n_portals, 2);
	assert_string_equal(st->cs->pools[0]->portals[1], "b:3260");
	cluster_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_proposes_nothing),
		cmocka_unit_test(test_transition_proposes_that_pool),
		cmocka_unit_test(test_unknown_pool_and_host),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_pool_portals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
