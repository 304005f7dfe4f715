/*
 * The storage policy's decisions (clusterd/cluster_storage_giveup.c): a
 * VM's own storage timeout over the cluster's, and when a VM paused for its
 * storage is given up: not before storage_giveup_s, never when it is 0,
 * never while another member reaches the pool (it moves), never for a
 * pause by hand, and not while it is about to resume.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clusterd.h"
#include "proto.h"

#define T0	UINT64_C(1700000000000000)
#define SEC	UINT64_C(1000000)

static const uint32_t	 members[] = { 1, 2, 3 };

static void
apply_at(struct cluster *st, Haven__Change *c, uint32_t origin, uint64_t at)
{
	char	err[256];

	c->origin = origin;
	c->timestamp_us = at;
	assert_int_equal(cluster_apply(st, c, 1, err, sizeof err), CLUSTER_OK);
}

static void
host_storage(struct cluster *st, uint32_t id, int reachable, uint64_t at)
{
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostStorage	 hs = HAVEN__HOST_STORAGE__INIT;
	Haven__PoolHealth	 ph = HAVEN__POOL_HEALTH__INIT, *pph = &ph;

	ph.pool = (char *)"san";
	ph.reachable = reachable;
	ph.since_us = at;
	hs.node_id = id;
	hs.pools = &pph;
	hs.n_pools = 1;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_STORAGE;
	c.host_storage = &hs;
	apply_at(st, &c, id, at);
}

static void
transition(struct cluster *st, Haven__VmPhase phase, const char *detail,
    uint64_t at)
{
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__VmTransition	 t = HAVEN__VM_TRANSITION__INIT;

	t.name = (char *)"web1";
	t.generation = 1;
	t.phase = phase;
	t.detail = (char *)detail;
	c.kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c.vm_transition = &t;
	apply_at(st, &c, 2, at);
}

static void
giveup_setting(struct cluster *st, uint32_t secs)
{
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__SettingsSet	 ss = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	 s = HAVEN__CLUSTER_SETTINGS__INIT;
	char			*field = (char *)"storage_giveup_s";

	s.storage_giveup_s = secs;
	ss.settings = &s;
	ss.fields = &field;
	ss.n_fields = 1;
	c.kind_case = HAVEN__CHANGE__KIND_SETTINGS_SET;
	c.settings_set = &ss;
	apply_at(st, &c, 1, T0);
}

/* Three hosts reaching san, giveup 15 s, web1 running on host 2 at T0. */
static struct cluster *
cluster_running(void)
{
	struct cluster		*st = cluster_new();
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostAdd		 ha = HAVEN__HOST_ADD__INIT;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__PoolAdd		 pa = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 pc = HAVEN__POOL_CONFIG__INIT;
	Haven__VolumeAdd	 va = HAVEN__VOLUME_ADD__INIT;
	Haven__VolumeConfig	 vc = HAVEN__VOLUME_CONFIG__INIT;
	Haven__VmCreate		 vmc = HAVEN__VM_CREATE__INIT;
	Haven__VmConfig		 cfg = HAVEN__VM_CONFIG__INIT;
	Haven__VmSetDesired	 sd = HAVEN__VM_SET_DESIRED__INIT;
	Haven__VmAssign		 as = HAVEN__VM_ASSIGN__INIT;
	char			*vols[] = { (char *)"web1-disk" };
	static const char	*names[] = { "h1", "h2", "h3" };
	uint32_t		 i;

	for (i = 1; i <= 3; i++) {
		hc.node_id = i;
		hc.name = (char *)names[i - 1];
		hc.memory_mib = 4096;
		ha.config = &hc;
		c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c.host_add = &ha;
		apply_at(st, &c, 1, T0);
	}
	pc.name = (char *)"san";
	pc.portal = (char *)"10.0.0.1:3260";
	pc.target = (char *)"iqn.2026-11.test:san";
	pa.config = &pc;
	c.kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
	c.pool_add = &pa;
	apply_at(st, &c, 1, T0);
	vc.name = (char *)"web1-disk";
	vc.pool = (char *)"san";
	vc.size_bytes = 1 << 30;
	vc.lun = 1;
	va.config = &vc;
	c.kind_case = HAVEN__CHANGE__KIND_VOLUME_ADD;
	c.volume_add = &va;
	apply_at(st, &c, 1, T0);
	cfg.name = (char *)"web1";
	cfg.memory_mib = 512;
	cfg.vcpus = 1;
	cfg.volumes = vols;
	cfg.n_volumes = 1;
	vmc.config = &cfg;
	c.kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	c.vm_create = &vmc;
	apply_at(st, &c, 1, T0);
	/* The membership makes them members (HostJoin). */
	for (i = 1; i <= 3; i++) {
		Haven__HostJoin	 hj = HAVEN__HOST_JOIN__INIT;

		hj.node_id = i;
		c.kind_case = HAVEN__CHANGE__KIND_HOST_JOIN;
		c.host_join = &hj;
		apply_at(st, &c, 1, T0);
		host_storage(st, i, 1, T0);
	}
	sd.name = (char *)"web1";
	sd.desired = HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
	c.kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
	c.vm_set_desired = &sd;
	apply_at(st, &c, 1, T0);
	as.name = (char *)"web1";
	as.generation = 0;
	as.owner = 2;
	as.phase = HAVEN__VM_PHASE__VM_PHASE_STARTING;
	c.kind_case = HAVEN__CHANGE__KIND_VM_ASSIGN;
	c.vm_assign = &as;
	apply_at(st, &c, 1, T0);
	transition(st, HAVEN__VM_PHASE__VM_PHASE_RUNNING, "booted", T0);
	giveup_setting(st, 15);
	return st;
}

static int
due(struct cluster *st, uint64_t now, uint64_t *deadline)
{
	const char	*pool = NULL;
	int		 r;

	*deadline = UINT64_MAX;
	r = cluster_storage_giveup_due(st->cs, cluster_vm(st, "web1"),
	    members, 3, now, deadline, &pool);
	if (r)
		assert_string_equal(pool, "san");
	return r;
}

/* The SAN lost by every host: given up at paused + 15 s, not before. */
static void
test_giveup_after_the_setting(void **state)
{
	struct cluster	*st = cluster_running();
	uint64_t	 d;
	uint32_t	 i;

	(void)state;
	transition(st, HAVEN__VM_PHASE__VM_PHASE_PAUSED, VM_PAUSED_FOR_STORAGE
	    "12:00:00.000 UTC: a disk request unanswered for 3 s", T0 + 10 * SEC);
	for (i = 1; i <= 3; i++)
		host_storage(st, i, 0, T0 + 12 * SEC);
	assert_false(due(st, T0 + 11 * SEC, &d));
	assert_true(d == T0 + 25 * SEC);
	assert_false(due(st, T0 + 25 * SEC - 1, &d));
	assert_true(due(st, T0 + 25 * SEC, &d));
	assert_true(due(st, T0 + 3600 * SEC, &d));
	/* 0: never. */
	giveup_setting(st, 0);
	assert_false(due(st, T0 + 3600 * SEC, &d));
	assert_true(d == UINT64_MAX);
	cluster_free(st);
}

/* Another member reaches the pool: the VM moves instead (storage_move.c). */
static void
test_no_giveup_when_it_can_move(void **state)
{
	struct cluster	*st = cluster_running();
	uint64_t	 d;

	(void)state;
	transition(st, HAVEN__VM_PHASE__VM_PHASE_PAUSED, VM_PAUSED_FOR_STORAGE
	    "12:00:00.000 UTC: a disk request failed", T0 + 10 * SEC);
	host_storage(st, 2, 0, T0 + 12 * SEC);
	assert_false(due(st, T0 + 60 * SEC, &d));
	/* Not if that member is not in the quorate membership. */
	host_storage(st, 1, 0, T0 + 13 * SEC);
	assert_false(due(st, T0 + 60 * SEC, &d));
	{
		static const uint32_t	two[] = { 1, 2 };
		const char		*pool;

		d = UINT64_MAX;
		assert_true(cluster_storage_giveup_due(st->cs,
		    cluster_vm(st, "web1"), two, 2, T0 + 60 * SEC, &d, &pool));
	}
	cluster_free(st);
}

/* Paused by hand (not the worker's outage sentence, pools reachable):
 * never given up; a storage pause whose pool the owner sees back gets a
 * grace to resume by itself. */
static void
test_pause_by_hand_and_grace(void **state)
{
	struct cluster	*st = cluster_running();
	uint64_t	 d;
	uint32_t	 i;

	(void)state;
	transition(st, HAVEN__VM_PHASE__VM_PHASE_PAUSED, "its vCPUs were "
	    "stopped, not for its storage", T0 + 10 * SEC);
	assert_false(due(st, T0 + 3600 * SEC, &d));
	transition(st, HAVEN__VM_PHASE__VM_PHASE_RUNNING, "resumed",
	    T0 + 20 * SEC);
	/* A LUN offline: the pool's probe still answers everywhere. */
	transition(st, HAVEN__VM_PHASE__VM_PHASE_PAUSED, VM_PAUSED_FOR_STORAGE
	    "12:00:00.000 UTC: a disk request failed", T0 + 30 * SEC);
	assert_true(due(st, T0 + 45 * SEC, &d));
	/* The SAN was lost and seen back by the owner at 44 s: it has until
	 * 54 s to resume before it is given up. */
	for (i = 1; i <= 3; i++)
		host_storage(st, i, 0, T0 + 32 * SEC);
	host_storage(st, 2, 1, T0 + 44 * SEC);
	assert_false(due(st, T0 + 45 * SEC, &d));
	assert_true(d == T0 + 54 * SEC);
	assert_true(due(st, T0 + 54 * SEC, &d));
	cluster_free(st);
}

/* A VM's own storage timeout comes before the cluster's. */
static void
test_storage_timeout(void **state)
{
	struct cluster		*st = cluster_running();
	Haven__VmConfig		 vc = HAVEN__VM_CONFIG__INIT;

	(void)state;
	assert_int_equal(cluster_storage_timeout_s(st->cs, &vc), 30);
	vc.storage_timeout_s = 90;
	assert_int_equal(cluster_storage_timeout_s(st->cs, &vc), 90);
	cluster_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_giveup_after_the_setting),
		cmocka_unit_test(test_no_giveup_when_it_can_move),
		cmocka_unit_test(test_pause_by_hand_and_grace),
		cmocka_unit_test(test_storage_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
