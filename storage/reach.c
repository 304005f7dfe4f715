/*
 * A pool's reachability from this host, judged from its probes' outcomes
 * (issue 20): pure, no I/O, so that the transitions are tested alone. The
 * timing argument is in the REACH_* constants (storage.h); probe.c sends
 * the probes and clusterd/health.c reports the transitions.
 */
#include "storage.h"

void
reach_init(struct reach *r, uint64_t now_us)
{
	r->state = REACH_UNKNOWN;
	r->since_us = 0;
	r->last_answer_us = now_us;	/* a fresh start counts as an answer */
	r->failing_since_us = 0;
	r->answers = 0;
	r->failures = 0;
	r->row_since_us = 0;
}

/*
 * One probe's outcome: sent at started_us, over at now_us. Reachable on
 * the first answer after a start, or after REACH_UP_ANSWERS answers in a
 * row once unreachable (a link that flaps is not good again at its first
 * answer). Unreachable once no probe has been answered for REACH_DOWN_MS
 * and at least REACH_DOWN_FAILURES failed in a row (one slow probe after
 * havend itself stalled is not an outage); since the first of them was
 * sent, the last moment the pool was not known to be answering.
 */
int
reach_observe(struct reach *r, int answered, uint64_t started_us,
    uint64_t now_us)
{
	if (answered) {
		if (r->answers++ == 0)
			r->row_since_us = now_us;
		r->failures = 0;
		r->failing_since_us = 0;
		r->last_answer_us = now_us;
		if (r->state == REACH_REACHABLE || (r->state ==
		    REACH_UNREACHABLE && r->answers < REACH_UP_ANSWERS))
			return 0;
		r->state = REACH_REACHABLE;
		r->since_us = r->row_since_us;
		return 1;
	}
	r->answers = 0;
	if (r->failures++ == 0)
		r->failing_since_us = started_us;
	if (r->state == REACH_UNREACHABLE || r->failures < REACH_DOWN_FAILURES ||
	    now_us < r->last_answer_us + REACH_DOWN_MS * UINT64_C(1000))
		return 0;
	r->state = REACH_UNREACHABLE;
	r->since_us = r->failing_since_us;
	return 1;
}
