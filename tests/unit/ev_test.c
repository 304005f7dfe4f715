/*
 * Unit tests of the libevent helpers: timers fire once or repeatedly,
 * signals arrive as callbacks on the loop.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"

struct counter {
	struct event_base	*base;
	int			 n;
	int			 stop_at;
};

static void
count_cb(void *arg)
{
	struct counter	*c = arg;

	if (++c->n == c->stop_at)
		event_base_loopbreak(c->base);
}

static void
test_timers(void **state)
{
	struct event_base	*base = ev_base_new();
	struct counter		 once = { base, 0, 0 }, rep = { base, 0, 3 };
	struct ev_timer		*t1, *t2;
	uint64_t		 start;

	/* Timers count from the loop's cached time: refresh it first, or
	 * they count from whenever the base last looked at the clock. */
	event_base_update_cache_time(base);
	start = ev_now_ms();

	t1 = ev_timer_new(base, 5, 0, count_cb, &once);
	t2 = ev_timer_new(base, 10, 1, count_cb, &rep);
	event_base_dispatch(base);
	assert_int_equal(once.n, 1);
	assert_int_equal(rep.n, 3);
	/* Three 10 ms periods; 1 ms of slack for rounding to milliseconds. */
	assert_true(ev_now_ms() - start >= 29);
	ev_timer_free(t1);
	ev_timer_free(t2);
	event_base_free(base);
}

static void
signal_cb(int signo, void *arg)
{
	struct counter	*c = arg;

	c->n = signo;
	event_base_loopbreak(c->base);
}

static void
raise_cb(void *arg)
{
	raise(SIGUSR1);
}

static void
test_signals(void **state)
{
	struct event_base	*base = ev_base_new();
	struct counter		 c = { base, 0, 0 };
	int			 sigs[] = { SIGUSR1, SIGUSR2 };
	struct ev_timer		*t;

	assert_int_equal(ev_on_signals(base, sigs, 2, signal_cb, &c), 0);
	t = ev_timer_new(base, 1, 0, raise_cb, NULL);
	event_base_dispatch(base);
	assert_int_equal(c.n, SIGUSR1);
	ev_timer_free(t);
	ev_signals_free();
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_signals),
	};

	log_init("ev_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
