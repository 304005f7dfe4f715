/*
 * The sync decision's rules of issue 14: an empty-state member (a learner)
 * is never the source over a populated one, whatever its epochs say; and
 * whether a configuration may change the state follows corosync's quorum
 * (two_node, a witness) and the hosts the state knows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clusterd.h"

static struct sync_member
member(uint32_t id, uint64_t lqe, uint64_t seq, char digest, int vq)
{
	struct sync_member	m;

	memset(&m, 0, sizeof m);
	m.node_id = id;
	m.last_quorate_epoch = lqe;
	m.seq = seq;
	memset(m.digest, digest, sizeof m.digest);
	m.learner = seq == 0;
	m.vq_quorate = vq;
	m.vq_expected_hosts = 3;
	return m;
}

/* Issue 14's erased cluster: host 3 lost its state and, restarted alone a
 * few times, counts a higher epoch than the others. It must adopt theirs. */
static void
learner_never_source(void **unused)
{
	struct sync_member	m[3];
	struct sync_decision	d;
	uint8_t			need[3];

	m[0] = member(1, 5, 40, 'a', 1);
	m[1] = member(2, 5, 40, 'a', 1);
	m[2] = member(3, 7, 0, 'z', 1);
	assert_int_equal(sync_decide(m, 3, need, &d), 0);
	assert_int_equal(m[d.source].node_id, 1);
	assert_int_equal(d.nsnapshots, 1);
	assert_false(need[0]);
	assert_false(need[1]);
	assert_true(need[2]);

	/* Listed first, with the lowest node id: still not the source. */
	m[0] = member(1, 9, 0, 'z', 1);
	m[1] = member(2, 5, 12, 'b', 1);
	m[2] = member(3, 5, 11, 'c', 1);
	assert_int_equal(sync_decide(m, 3, need, &d), 0);
	assert_int_equal(m[d.source].node_id, 2);
	assert_true(need[0]);
	assert_true(need[2]);
}

/* A new cluster: every member empty and alike; nothing to send. */
static void
all_learners(void **unused)
{
	struct sync_member	m[2];
	struct sync_decision	d;
	uint8_t			need[2];

	m[0] = member(4, 3, 0, 'z', 1);
	m[1] = member(2, 1, 0, 'z', 1);
	assert_int_equal(sync_decide(m, 2, need, &d), 0);
	assert_true(m[d.source].learner);
	assert_int_equal(d.nsnapshots, 0);
}

/* The populated members keep the old order: last-quorate epoch, seq. */
static void
populated_order_kept(void **unused)
{
	struct sync_member	m[3];
	struct sync_decision	d;
	uint8_t			need[3];

	m[0] = member(1, 5, 40, 'a', 1);
	m[1] = member(2, 6, 30, 'b', 1);
	m[2] = member(3, 0, 0, 'z', 1);
	assert_int_equal(sync_decide(m, 3, need, &d), 0);
	assert_int_equal(m[d.source].node_id, 2);
	assert_true(need[0]);
	assert_true(need[2]);
}

static const uint32_t three[] = { 1, 2, 3 };
static const uint32_t two[] = { 1, 2 };

/* Issue 14's two-node cluster: the survivor alone is quorate in corosync
 * (two_node); havend agrees, though 1 of 2 is no strict majority. */
static void
two_node_survivor(void **unused)
{
	struct sync_member	m = member(2, 4, 10, 'a', 1);

	m.vq_expected_hosts = 2;
	m.vq_tie_breaker = 1;
	assert_true(sync_quorate(&m, 1, two, 2));
	/* Without corosync's tie-breaker half is not enough. */
	m.vq_tie_breaker = 0;
	assert_false(sync_quorate(&m, 1, two, 2));
	/* Nor when corosync says no (the witness voted for the other). */
	m.vq_tie_breaker = 1;
	m.vq_quorate = 0;
	assert_false(sync_quorate(&m, 1, two, 2));
}

/* corosync's verdict must be every member's. */
static void
every_member_quorate(void **unused)
{
	struct sync_member	m[2];

	m[0] = member(1, 4, 10, 'a', 1);
	m[1] = member(2, 4, 10, 'a', 0);
	assert_false(sync_quorate(m, 2, three, 3));
	m[1].vq_quorate = 1;
	assert_true(sync_quorate(m, 2, three, 3));
}

/* Hosts the cluster never knew make no majority, whatever corosync says;
 * and a lone empty host never starts a history of its own. */
static void
unknown_hosts_no_majority(void **unused)
{
	struct sync_member	m[3];

	m[0] = member(3, 4, 10, 'a', 1);
	m[1] = member(4, 0, 0, 'z', 1);
	m[2] = member(5, 0, 0, 'z', 1);
	assert_false(sync_quorate(m, 3, three, 3));
	m[0].vq_tie_breaker = m[1].vq_tie_breaker = m[2].vq_tie_breaker = 1;
	assert_false(sync_quorate(m, 3, three, 3));
	/* The lone host with an empty state, even if corosync's flag lags. */
	m[0] = member(3, 7, 0, 'z', 1);
	assert_false(sync_quorate(m, 1, NULL, 0));
	/* A new cluster starts with a majority of corosync's hosts. */
	m[0] = member(1, 0, 0, 'z', 1);
	m[1] = member(2, 0, 0, 'z', 1);
	assert_true(sync_quorate(m, 2, NULL, 0));
	/* A one-host cluster is its own majority. */
	m[0].vq_expected_hosts = 1;
	assert_true(sync_quorate(m, 1, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(learner_never_source),
		cmocka_unit_test(all_learners),
		cmocka_unit_test(populated_order_kept),
		cmocka_unit_test(two_node_survivor),
		cmocka_unit_test(every_member_quorate),
		cmocka_unit_test(unknown_hosts_no_majority),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
