/*
 * The coordinator's fencing of lost hosts (DESIGN §4, §6): this host's fence
 * levels ([fence:NAME] in haven.conf, by level; the storage level alone when
 * there are none), tried in order until one succeeds. The outcome goes back
 * to havend, which records it in the replicated state; a new coordinator
 * simply starts again from "pending" (every level is idempotent).
 *
 * The waits of fence/timeline.h are counted from the moment the host was
 * marked lost (a timestamp in the state, so a new coordinator keeps them):
 * after the storage level, FENCE_TAKEOVER_DELAY_MS; the watchdog level,
 * the watchdog timeout plus FENCE_WATCHDOG_MARGIN_MS.
 *
 * A two-node race (corosync's two_node, no witness: after a link cut both
 * sides stay quorate and fence each other). Exactly one must win, and the
 * SAN decides: PR registrations outlive a session, a PREEMPT removes every
 * registration of the victim's key, and the last preempter's key is the
 * one left. The favoured side (it runs more VMs; else the lower node id)
 * fences at once. The other first registers its key on every volume (its
 * sentinel), waits FENCER_RACE_DELAY_MS, and reads the keys: if its key is
 * gone it was fenced and has lost (FENCER_LOST): havend stops its VMs and
 * leaves. Both sides, once their storage level succeeded, read the keys
 * again before the VMs may start -- the favoured side only after
 * FENCER_RACE_DELAY_MS + FENCER_RACE_MARGIN_MS, when the other has either
 * given up or preempted it, the other after that plus
 * FENCE_TAKEOVER_DELAY_MS, when a favoured side that lost has stopped its
 * VMs -- and a side whose own key is gone has lost. The last preempter
 * holds its key on every volume; the other does not.
 *
 * Timing: both sides see the split within a token of each other. The
 * favoured side preempts within a few round trips of that, long before the
 * other reads its sentinel (FENCER_RACE_DELAY_MS); should the other's
 * sentinel come after the favoured side's preempt, the other preempts last
 * and wins, and the favoured side finds its key gone at its own check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clusterd.h"
#include "common.h"
#include "fence.h"
#include "storage.h"
#include "timeline.h"

#define FENCER_MAX	16
/* The two-node race (above): how long the side that is not favoured
 * waits before it fences, and how much longer the favoured side waits
 * before it reads its own key back. */
#define FENCER_RACE_DELAY_MS	3000
#define FENCER_RACE_MARGIN_MS	2000

struct fencing;
struct fencer_check {
	struct fencing		*op;
	struct blockdev		*dev;
	size_t			 i;
	int			 done;
};

struct fencing {
	struct fencer		*f;
	int			 active;
	uint32_t		 victim;
	char			 victim_name[64];
	uint64_t		 lost_at_us;
	size_t			 level;		/* index into the levels */
	int			 waiting;	/* the level's wait runs */
	char			**urls;		/* every volume's */
	size_t			 nurls;
	struct fence_storage	*storage;
	struct fence_agent_run	*agent;
	struct ev_timer		*timer;
	char			 failures[768];	/* the levels that failed */
	char			 ok_detail[384];
	uint64_t		 started_ms;
	/* The two-node race: FENCER_RACE_*; the step running (sentinel,
	 * delay, check before the levels, check after them). */
	int			 race;
	int			 race_step;
	struct fencer_check	*checks;
	size_t			 nchecks_done;
	int			 own_key_missing;
	int			 check_failed;
	int			 checked;	/* every volume answered */
};
enum { RACE_SENTINEL = 1, RACE_DELAY, RACE_BEFORE, RACE_AFTER, RACE_LATE };

struct fencer {
	struct event_base	*base;
	const struct config	*config;
	fencer_done_cb		 done;
	void			*arg;
	uint32_t		 node_id;
	char			 initiator[224];
	struct fencing		 ops[FENCER_MAX];
	struct config_fence	 storage_only;
};

static void	fencer_next_level(struct fencing *);
static void	fencer_race_check(struct fencing *, int);
static void	fencer_race_checked(struct fencing *);


struct fencer *
fencer_new(struct event_base *base, const struct config *config,
    const char *initiator, fencer_done_cb done, void *arg)
{
	struct fencer	*f;
	size_t		 i;

	if ((f = calloc(1, sizeof *f)) == NULL)
		return NULL;
	f->base = base;
	f->config = config;
	f->done = done;
	f->arg = arg;
	snprintf(f->initiator, sizeof f->initiator, "%s", initiator);
	snprintf(f->storage_only.name, sizeof f->storage_only.name, "storage");
	snprintf(f->storage_only.agent, sizeof f->storage_only.agent,
	    "storage");
	f->storage_only.kind = CONFIG_FENCE_STORAGE;
	f->storage_only.level = 1;
	for (i = 0; i < FENCER_MAX; i++) {
		f->ops[i].f = f;
		if ((f->ops[i].timer = ev_timer_new(base, 0, 0,
		    (void (*)(void *))fencer_next_level, &f->ops[i])) == NULL) {
			fencer_free(f);
			return NULL;
		}
	}
	return f;
}

static size_t
fencer_nlevels(const struct fencer *f)
{
	return f->config->nfences > 0 ? f->config->nfences : 1;
}

static const struct config_fence *
fencer_level(const struct fencer *f, size_t i)
{
	return f->config->nfences > 0 ? &f->config->fences[i] :
	    &f->storage_only;
}

/* Devices of a running check are closed; an open still in flight finds its
 * check dropped (op NULL) and closes what it got. */
static void
fencer_checks_drop(struct fencing *op)
{
	size_t	i;

	struct fencer_check	*checks = op->checks;

	if (checks == NULL)
		return;
	op->checks = NULL;
	for (i = 0; i < op->nurls; i++) {
		if (checks[i].dev != NULL)
			blockdev_close(checks[i].dev);
		checks[i].dev = NULL;
		checks[i].op = NULL;
	}
	for (i = 0; i < op->nurls; i++)
		if (!checks[i].done)
			return;		/* leaked: an open calls back */
	free(checks);
}

static void
fencer_clear(struct fencing *op)
{
	size_t	 i;

	if (op->storage != NULL)
		fence_storage_free(op->storage);
	op->storage = NULL;
	if (op->agent != NULL)
		fence_agent_cancel(op->agent);
	op->agent = NULL;
	ev_timer_cancel(op->timer);
	fencer_checks_drop(op);
	for (i = 0; i < op->nurls; i++)
		free(op->urls[i]);
	free(op->urls);
	op->urls = NULL;
	op->nurls = 0;
	op->active = 0;
}

static void
fencer_finish(struct fencing *op, int fenced, const char *level,
    const char *detail)
{
	struct fencer	*f = op->f;
	uint32_t	 victim = op->victim;
	char		 lvl[64], text[1024];

	snprintf(lvl, sizeof lvl, "%s", level);
	snprintf(text, sizeof text, "%s", detail);
	fencer_clear(op);
	f->done(f, victim, fenced, lvl, text, f->arg);
}

/* A level's outcome: done, or the next level. */
static void
fencer_level_result(struct fencing *op, int ok, const char *detail)
{
	struct fencer			*f = op->f;
	const struct config_fence	*l = fencer_level(f, op->level);
	uint64_t			 now = now_us(), until = 0;

	if (!ok) {
		log_warn("fencing node %u: level %u (%s) failed: %s", op->victim,
		    l->level, l->name, detail);
		snprintf(op->failures + strlen(op->failures),
		    sizeof op->failures - strlen(op->failures), "%s%s: %s",
		    *op->failures ? "; " : "", l->name, detail);
		op->level++;
		if (op->level == fencer_nlevels(op->f)) {
			fencer_finish(op, 0, l->name, op->failures);
			return;
		}
		fencer_next_level(op);
		return;
	}
	/* The storage level fences I/O at once; the VMs wait out the
	 * isolated host's isolation response (timeline.h). */
	if (l->kind == CONFIG_FENCE_STORAGE)
		until = op->lost_at_us + fence_takeover_wait_ms(
		    *f->config->watchdog_device != '\0' ?
		    f->config->watchdog_timeout_s : 0,
		    f->config->token_ms) * 1000ULL;
	/* A race: our key must still be there once the other side has
	 * had its turn. */
	if (l->kind == CONFIG_FENCE_STORAGE && op->race == FENCER_RACE_FAVOURED)
		until = op->lost_at_us + (FENCER_RACE_DELAY_MS +
		    FENCER_RACE_MARGIN_MS) * 1000ULL;
	/* The other side won only by preempting the favoured one late; the
	 * favoured side sees that at its own check and stops its VMs. */
	if (l->kind == CONFIG_FENCE_STORAGE && op->race == FENCER_RACE_OTHER)
		until = op->lost_at_us + (FENCER_RACE_DELAY_MS +
		    FENCER_RACE_MARGIN_MS + FENCE_TAKEOVER_DELAY_MS) * 1000ULL;
	if (l->kind == CONFIG_FENCE_STORAGE && op->race != FENCER_RACE_NONE)
		op->race_step = RACE_AFTER;
	/* Say which levels failed first, if any. */
	snprintf(op->ok_detail, sizeof op->ok_detail, "%s%s%.200s%s", detail,
	    *op->failures ? " (after " : "", op->failures,
	    *op->failures ? ")" : "");
	if (until > now) {
		op->waiting = 1;
		ev_timer_arm(op->timer, (until - now + 999) / 1000);
		return;
	}
	if (op->race_step == RACE_AFTER) {
		fencer_race_check(op, 0);
		return;
	}
	fencer_finish(op, 1, l->name, op->ok_detail);
}

static void
fencer_storage_done(int result, const char *detail, void *arg)
{
	struct fencing	*op = arg;

	fence_storage_free(op->storage);
	op->storage = NULL;
	fencer_level_result(op, result == 0, detail);
}

static void
fencer_agent_done(int result, const char *detail, void *arg)
{
	struct fencing	*op = arg;

	op->agent = NULL;	/* the runner frees itself after the callback */
	fencer_level_result(op, result == 0, detail);
}

/* Run the current level (also the timer's callback: the end of a wait). */
static void
fencer_next_level(struct fencing *op)
{
	struct fencer			*f = op->f;
	const struct config_fence	*l;
	const char			*keys[CONFIG_MAX_OPTIONS];
	const char			*values[CONFIG_MAX_OPTIONS];
	uint64_t			 now = now_us(), until;
	char				 detail[256];
	size_t				 i;

	if (!op->active)
		return;
	if (op->race_step == RACE_LATE) {	/* the lab's late sentinel */
		fencer_race_check(op, 1);
		return;
	}
	if (op->checked) {			/* a race check answered */
		op->checked = 0;
		fencer_race_checked(op);
		return;
	}
	if (op->race_step == RACE_DELAY) {	/* the race's delay ended */
		fencer_race_check(op, 0);
		return;
	}
	if (op->waiting) {			/* a wait has ended */
		op->waiting = 0;
		if (op->race_step == RACE_AFTER) {
			fencer_race_check(op, 0);
			return;
		}
		l = fencer_level(f, op->level);
		if (l->kind == CONFIG_FENCE_WATCHDOG) {
			snprintf(detail, sizeof detail, "node %u's watchdog "
			    "(%u s) must have reset it", op->victim,
			    f->config->watchdog_timeout_s);
			fencer_finish(op, 1, l->name, detail);
		} else {
			fencer_finish(op, 1, l->name, op->ok_detail);
		}
		return;
	}
	l = fencer_level(f, op->level);
	log_info("fencing node %u (%s): level %u, %s", op->victim,
	    op->victim_name, l->level, l->name);
	switch (l->kind) {
	case CONFIG_FENCE_STORAGE:
		op->storage = fence_storage_start(f->base, f->initiator,
		    pr_key(f->config->cluster_name, f->node_id),
		    pr_key(f->config->cluster_name, op->victim),
		    (const char *const *)op->urls, op->nurls,
		    fencer_storage_done, op);
		if (op->storage == NULL)
			fencer_level_result(op, 0, "out of memory");
		return;
	case CONFIG_FENCE_AGENT:
		for (i = 0; i < l->noptions; i++) {
			keys[i] = l->options[i].key;
			values[i] = l->options[i].value;
		}
		op->agent = fence_agent_start(f->base, l->agent, "off", keys,
		    values, l->noptions, op->victim_name, op->victim,
		    FENCE_AGENT_TIMEOUT_MS, fencer_agent_done, op);
		if (op->agent == NULL)
			fencer_level_result(op, 0, "could not run the agent");
		return;
	case CONFIG_FENCE_PACEMAKER:
		op->agent = fence_pacemaker_start(f->base, op->victim_name,
		    op->victim, FENCE_AGENT_TIMEOUT_MS, fencer_agent_done, op);
		if (op->agent == NULL)
			fencer_level_result(op, 0, "could not ask Pacemaker");
		return;
	case CONFIG_FENCE_WATCHDOG:
		/* The victim's watchdog: every host is configured alike, so
		 * this host's [watchdog] timeout_s is the victim's too. */
		until = op->lost_at_us + (uint64_t)f->config->watchdog_timeout_s *
		    1000000ULL + FENCE_WATCHDOG_MARGIN_MS * 1000ULL;
		op->waiting = 1;
		ev_timer_arm(op->timer, until > now ? (until - now + 999) / 1000 :
		    0);
		return;
	}
}

/* The race's outcome after a check: go on, or this host has lost. */
static void
fencer_race_checked(struct fencing *op)
{
	uint64_t	now = now_us(), until;
	char		detail[256];
	int		step = op->race_step;

	fencer_checks_drop(op);
	if (op->check_failed) {
		fencer_level_result(op, 0, "the two-node race: cannot reach "
		    "every volume to register or read our key");
		return;
	}
	if (op->own_key_missing && step != RACE_SENTINEL) {
		snprintf(detail, sizeof detail, "node %u fenced this host "
		    "first: our key is gone from the volumes", op->victim);
		fencer_finish(op, FENCER_LOST, "storage", detail);
		return;
	}
	switch (step) {
	case RACE_SENTINEL:
		op->race_step = RACE_DELAY;
		until = op->lost_at_us + FENCER_RACE_DELAY_MS * 1000ULL;
		ev_timer_arm(op->timer, until > now ? (until - now + 999) /
		    1000 : 0);
		return;
	case RACE_DELAY:
		op->race_step = RACE_BEFORE;
		fencer_next_level(op);
		return;
	default:
		fencer_finish(op, 1, fencer_level(op->f, op->level)->name,
		    op->ok_detail);
		return;
	}
}

/* Devices are closed and the outcome taken from the timer, never from
 * inside a device's own callback. */
static void
fencer_check_one_done(struct fencer_check *c, int failed, int missing)
{
	struct fencing	*op = c->op;

	c->done = 1;
	if (op == NULL)
		return;
	op->check_failed |= failed;
	op->own_key_missing |= missing;
	if (++op->nchecks_done == op->nurls) {
		op->checked = 1;
		ev_timer_arm(op->timer, 0);
	}
}

static void
fencer_check_read(int result, const struct pr_status *s, void *arg)
{
	struct fencer_check	*c = arg;
	uint64_t		 key;
	size_t			 i;
	int			 found = 0;

	if (c->op == NULL || result != 0) {
		fencer_check_one_done(c, result != 0, 0);
		return;
	}
	key = pr_key(c->op->f->config->cluster_name, c->op->f->node_id);
	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i] == key)
			found = 1;
	fencer_check_one_done(c, 0, !found);
}

static void
fencer_check_registered(int result, void *arg)
{
	struct fencer_check	*c = arg;

	if (c->op == NULL || result != 0) {
		fencer_check_one_done(c, result != 0, 0);
		return;
	}
	pr_read(c->dev, fencer_check_read, c);
}

static void
fencer_check_opened(int result, struct blockdev *dev, void *arg)
{
	struct fencer_check	*c = arg;

	if (c->op == NULL) {	/* dropped meanwhile */
		if (dev != NULL)
			blockdev_close(dev);
		c->done = 1;
		return;
	}
	if (result != 0) {
		fencer_check_one_done(c, 1, 0);
		return;
	}
	c->dev = dev;
	if (c->op->race_step == RACE_SENTINEL)
		pr_register(dev, 0, pr_key(c->op->f->config->cluster_name,
		    c->op->f->node_id), 1, fencer_check_registered, c);
	else
		pr_read(dev, fencer_check_read, c);
}

/* Register our key on every volume (sentinel), or read whether it is
 * still there; fencer_race_checked runs when every volume answered. */
static void
fencer_race_check(struct fencing *op, int sentinel)
{
	struct iscsi_options	opts = { 0 };
	size_t			i;

	if (sentinel)
		op->race_step = RACE_SENTINEL;
	op->nchecks_done = 0;
	op->own_key_missing = 0;
	op->check_failed = 0;
	op->checked = 0;
	if ((op->checks = calloc(op->nurls, sizeof *op->checks)) == NULL) {
		fencer_level_result(op, 0, "out of memory");
		return;
	}
	memset(&opts, 0, sizeof opts);
	opts.initiator = op->f->initiator;
	opts.timeout_s = 5;
	for (i = 0; i < op->nurls; i++) {
		op->checks[i].op = op;
		op->checks[i].i = i;
	}
	for (i = 0; i < op->nurls && op->checks != NULL; i++)
		iscsi_open(op->f->base, op->urls[i], &opts, fencer_check_opened,
		    &op->checks[i]);
}

/* Whether a two-node race is still undecided here: until it is, this host
 * may have lost without knowing, so it starts nothing and registers no
 * key (a new worker's registration would hide the preempt that tells the
 * favoured side it lost). */
int
fencer_racing(const struct fencer *f)
{
	size_t	 i;

	for (i = 0; i < FENCER_MAX; i++)
		if (f->ops[i].active && f->ops[i].race != FENCER_RACE_NONE)
			return 1;
	return 0;
}

int
fencer_busy(const struct fencer *f, uint32_t victim)
{
	size_t	 i;

	for (i = 0; i < FENCER_MAX; i++)
		if (f->ops[i].active && f->ops[i].victim == victim)
			return 1;
	return 0;
}

int
fencer_start(struct fencer *f, uint32_t my_node, uint32_t victim,
    const char *victim_name, uint64_t lost_at_us, const char *const *urls,
    size_t nurls, int race)
{
	struct fencing	*op = NULL;
	size_t		 i;

	if (fencer_busy(f, victim))
		return 0;
	for (i = 0; i < FENCER_MAX && op == NULL; i++)
		if (!f->ops[i].active)
			op = &f->ops[i];
	if (op == NULL) {
		errno = ENOSPC;
		return -1;
	}
	if ((op->urls = calloc(nurls + 1, sizeof *op->urls)) == NULL)
		return -1;
	f->node_id = my_node;
	op->active = 1;
	op->victim = victim;
	snprintf(op->victim_name, sizeof op->victim_name, "%s", victim_name);
	op->lost_at_us = lost_at_us;
	op->level = 0;
	op->waiting = 0;
	op->failures[0] = '\0';
	op->started_ms = ev_now_ms();
	for (i = 0; i < nurls; i++)
		if ((op->urls[i] = strdup(urls[i])) == NULL)
			abort();
	op->nurls = nurls;
	op->race = nurls > 0 ? race : FENCER_RACE_NONE;
	op->race_step = 0;
	if (op->race == FENCER_RACE_OTHER) {
		log_warn("fencing node %u: a two-node race (no witness): node "
		    "%u goes first; registering our key and waiting %d ms",
		    victim, victim, FENCER_RACE_DELAY_MS);
		/* The lab's way to the order that makes the favoured side
		 * lose: our sentinel after its preempt (lab.quorum). */
		if (failpoint("fencer-sentinel-late")) {
			log_warn("failpoint fencer-sentinel-late: registering "
			    "our key 1 s late");
			op->race_step = RACE_LATE;
			ev_timer_arm(op->timer, 1000);
			return 0;
		}
		fencer_race_check(op, 1);
		return 0;
	}
	if (op->race == FENCER_RACE_FAVOURED)
		log_warn("fencing node %u: a two-node race (no witness): this "
		    "host goes first", victim);
	fencer_next_level(op);
	return 0;
}

/* This host is no longer the coordinator: the next one starts over. */
void
fencer_cancel_all(struct fencer *f)
{
	size_t	 i;

	for (i = 0; i < FENCER_MAX; i++)
		if (f->ops[i].active)
			fencer_clear(&f->ops[i]);
}

void
fencer_free(struct fencer *f)
{
	size_t	 i;

	if (f == NULL)
		return;
	for (i = 0; i < FENCER_MAX; i++) {
		if (f->ops[i].active)
			fencer_clear(&f->ops[i]);
		ev_timer_free(f->ops[i].timer);
	}
	free(f);
}
