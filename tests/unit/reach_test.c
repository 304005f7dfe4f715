/*
 * A pool's reachability from its probes' outcomes (storage/reach.c): the
 * first answer makes it reachable, seconds of failures unreachable (since
 * the first failed probe), two answers in a row reachable again, and
 * nothing changes while the outcomes stay the same or flap briefly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage.h"

#define S	UINT64_C(1000000)	/* a second in µs */
#define T0	(UINT64_C(1700000000) * S)

/* A probe sent at `at` seconds after T0 that took `took` ms. */
static int
probe(struct reach *r, int answered, double at, unsigned took)
{
	uint64_t	start = T0 + (uint64_t)(at * 1e6);

	return reach_observe(r, answered, start, start + took * UINT64_C(1000));
}

static void
test_first_answer(void **state)
{
	struct reach	r;
	int		i;

	(void)state;
	reach_init(&r, T0);
	assert_int_equal(r.state, REACH_UNKNOWN);
	assert_int_equal(probe(&r, 1, 0, 3), 1);
	assert_int_equal(r.state, REACH_REACHABLE);
	assert_true(r.since_us == T0 + 3000);
	/* Steady: no transition, however many probes. */
	for (i = 1; i < 100; i++)
		assert_int_equal(probe(&r, 1, i, 3), 0);
	assert_true(r.since_us == T0 + 3000);
}

static void
test_outage(void **state)
{
	struct reach	r;

	(void)state;
	reach_init(&r, T0);
	assert_int_equal(probe(&r, 1, 0, 1), 1);
	assert_int_equal(probe(&r, 1, 1, 1), 0);	/* last answer: 1.001 */
	/* The link is cut at 1.5: probes time out after 2 s. */
	assert_int_equal(probe(&r, 0, 2, 2000), 0);	/* at 4 */
	assert_int_equal(probe(&r, 0, 4, 2000), 0);	/* at 6: 4.999 s */
	assert_int_equal(r.state, REACH_REACHABLE);
	assert_int_equal(probe(&r, 0, 6, 1), 1);	/* 5.0 s without one */
	assert_int_equal(r.state, REACH_UNREACHABLE);
	assert_true(r.since_us == T0 + 2 * S);	/* the first failed probe */
	assert_int_equal(probe(&r, 0, 7, 1), 0);
	assert_int_equal(probe(&r, 0, 8, 2000), 0);
	/* Healed: one answer is not enough, two in a row are. */
	assert_int_equal(probe(&r, 1, 10, 5), 0);
	assert_int_equal(r.state, REACH_UNREACHABLE);
	assert_int_equal(probe(&r, 1, 11, 5), 1);
	assert_int_equal(r.state, REACH_REACHABLE);
	assert_true(r.since_us == T0 + 10 * S + 5000);	/* the row began */
	assert_int_equal(probe(&r, 1, 12, 5), 0);
}

static void
test_answer_breaks_the_row(void **state)
{
	struct reach	r;

	(void)state;
	reach_init(&r, T0);
	assert_int_equal(probe(&r, 1, 0, 1), 1);
	assert_int_equal(probe(&r, 0, 1, 2000), 0);
	assert_int_equal(probe(&r, 0, 3, 2000), 0);
	assert_int_equal(probe(&r, 0, 5, 2000), 1);
	/* Unreachable: answer, fail, answer... never two in a row. */
	assert_int_equal(probe(&r, 1, 8, 1), 0);
	assert_int_equal(probe(&r, 0, 9, 1), 0);
	assert_int_equal(probe(&r, 1, 10, 1), 0);
	assert_int_equal(r.state, REACH_UNREACHABLE);
	assert_true(r.since_us == T0 + 1 * S);
}

static void
test_flap_shorter_than_down(void **state)
{
	struct reach	r;
	int		i;

	(void)state;
	reach_init(&r, T0);
	assert_int_equal(probe(&r, 1, 0, 1), 1);
	/* Cut for 3 s, healed for 1 s, over and over: still reachable. */
	for (i = 0; i < 20; i++) {
		assert_int_equal(probe(&r, 0, 1 + i * 4, 2000), 0);
		assert_int_equal(probe(&r, 0, 3 + i * 4, 1000), 0);
		assert_int_equal(probe(&r, 1, 4 + i * 4, 1), 0);
	}
	assert_int_equal(r.state, REACH_REACHABLE);
}

static void
test_one_late_failure(void **state)
{
	struct reach	r;

	(void)state;
	reach_init(&r, T0);
	assert_int_equal(probe(&r, 1, 0, 1), 1);
	/* havend itself stalled for 20 s; one probe then fails: not yet. */
	assert_int_equal(probe(&r, 0, 20, 2000), 0);
	assert_int_equal(r.state, REACH_REACHABLE);
	assert_int_equal(probe(&r, 1, 22, 1), 0);
	assert_int_equal(r.state, REACH_REACHABLE);
}

static void
test_down_from_the_start(void **state)
{
	struct reach	r;

	(void)state;
	/* havend starts on a host that never reaches the pool. */
	reach_init(&r, T0);
	assert_int_equal(probe(&r, 0, 0, 2), 0);
	assert_int_equal(probe(&r, 0, 1, 2), 0);
	assert_int_equal(probe(&r, 0, 2, 2000), 0);
	assert_int_equal(r.state, REACH_UNKNOWN);
	assert_int_equal(probe(&r, 0, 4, 1000), 1);
	assert_int_equal(r.state, REACH_UNREACHABLE);
	assert_true(r.since_us == T0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_answer),
		cmocka_unit_test(test_outage),
		cmocka_unit_test(test_answer_breaks_the_row),
		cmocka_unit_test(test_flap_shorter_than_down),
		cmocka_unit_test(test_one_late_failure),
		cmocka_unit_test(test_down_from_the_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
