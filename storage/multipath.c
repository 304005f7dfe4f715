/*
 * iSCSI multipath (issue 17): one LUN reached over several portals, one
 * session per path, as one block device. Requests go round robin to the
 * usable paths; a path that stops answering (nothing back for dead_ms while
 * something is outstanding; a heartbeat keeps something outstanding) or
 * that fails a command with a transport error is taken down: its session
 * is reset (unsent data discarded, so no stale write lands later), its
 * requests are issued again on another path, and it is logged in afresh in
 * the background. The caller never sees a path's failure; with no usable
 * path, requests wait for one (the worker's stall tick pauses the guest,
 * DESIGN §4, issue 20).
 *
 * Reservations (tgt registers each I_T nexus on its own, platform.md §5.2):
 * the owner's claim runs on one path (raw commands go to the first usable
 * path); mpath_claimed() then registers the key on every other live path.
 * A path that logs in later, or whose session libiscsi re-established, is a
 * new nexus: it carries no I/O until the owner grants a registration again
 * (the same question a single session asks, one at a time). Under Write
 * Exclusive - Registrants Only every registered nexus may write, so the
 * reservation itself is held once. A fence (2A/03, or a conflict) on any
 * path fences the whole device, for good.
 *
 * A flush goes to every path that carried a write since its last flush:
 * SYNCHRONIZE CACHE is for the whole LU, but a path's own queue is only
 * drained by a command on that path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common.h"
#include "storage.h"

#define MPATH_TICK_MS		250
#define MPATH_RETRIES		32	/* moves of one request */

enum mpath_kind {
	MPATH_READ,
	MPATH_WRITE,
	MPATH_FLUSH,
	MPATH_ZERO,
	MPATH_RAW,
};

struct mpath_dev;

struct mpath_req {
	TAILQ_ENTRY(mpath_req)	 entry;
	struct mpath_dev	*m;
	enum mpath_kind		 kind;
	uint64_t		 offset;
	uint64_t		 len;
	void			*buf;
	unsigned		 flags;
	unsigned		 moves;
	int			 pinned;	/* flush part: its path only */
	unsigned		 path;		/* with pinned */
	blockdev_cb		 cb;
	void			*arg;
	iscsi_raw_submit	 raw_submit;
	iscsi_raw_done		 raw_done;
	void			*raw_arg;
};
TAILQ_HEAD(mpath_req_list, mpath_req);

/* One command on one path; detached (req NULL) when its path went down. */
struct mpath_claim;
struct mpath_try {
	LIST_ENTRY(mpath_try)	 entry;
	struct mpath_req	*req;
	struct mpath_claim	*claim;	/* a registration of mpath_claimed */
	iscsi_raw_submit	 raw_submit;	/* the request's, kept even if */
	void			*raw_arg;	/* it moves meanwhile */
	struct mpath_path	*p;
	uint64_t		 sent_us;
};

enum mpath_path_state {
	MPATH_PATH_DOWN,	/* waiting to log in again */
	MPATH_PATH_OPENING,
	MPATH_PATH_UP,
};

struct mpath_path {
	struct mpath_dev	*m;
	unsigned		 index;
	enum mpath_path_state	 state;
	struct blockdev		*dev;
	struct blockdev		*dying;		/* taken down, closed soon */
	unsigned		 gen;		/* per open, for stale callbacks */
	int			 registered;	/* our key on this nexus */
	int			 want_grant;	/* fresh nexus, needs a grant */
	int			 dev_asking;	/* its session asked (iscsi.c) */
	int			 registering;
	int			 dirty;		/* writes since its last flush */
	int			 pinging;
	uint64_t		 last_answer_us;
	uint64_t		 next_open_us;
	uint64_t		 ping_sent_us;
	unsigned		 outstanding;
	LIST_HEAD(, mpath_try)	 tries;
	uint64_t		 down_since_us;
	char			 why[96];	/* why it went down */
};

struct mpath_dev {
	struct blockdev		 dev;
	const struct mpath_ops	*ops;
	void			*ctx;
	struct mpath_options	 opt;
	unsigned		 npaths;
	struct mpath_path	 paths[MPATH_MAX_PATHS];
	struct mpath_req_list	 waiting;
	struct ev_timer		*tick;
	struct ev_timer		*reap;		/* closes paths taken down */
	unsigned		 next;		/* round robin */
	int			 opened;
	int			 closing;
	int			 fenced;
	int			 claimed;
	int			 asking;	/* the owner's grant asked */
	uint64_t		 key;
	iscsi_register_ask	 ask;
	void			*ask_arg;
	iscsi_fenced_cb		 fenced_cb;
	void			*fenced_arg;
	iscsi_open_cb		 open_cb;
	void			*open_arg;
	int			 open_error;
	unsigned		 open_left;
	unsigned		 logins;	/* paths logging in now */
};

static const struct blockdev_ops mpath_blockdev_ops;
static void	mpath_kick(struct mpath_dev *);
static void	mpath_path_open(struct mpath_path *);
static void	mpath_grant_next(struct mpath_dev *);
static void	mpath_free(struct mpath_dev *);

int
mpath_is(const struct blockdev *dev)
{
	return dev != NULL && dev->ops == &mpath_blockdev_ops;
}

/* A transport failure: the path is suspect, the request may go elsewhere.
 * Anything else is the LU's answer and the caller's to hear. */
static int
mpath_path_error(int result)
{
	return result == STORAGE_E_TIMEOUT || result == STORAGE_E_LOGIN ||
	    result == -EIO || result == -ECANCELED || result == -EBUSY ||
	    result == -ENOMEM || result == -ECONNRESET || result == -ENOTCONN;
}

static int
mpath_usable(const struct mpath_path *p)
{
	return p->state == MPATH_PATH_UP && !p->dev_asking &&
	    (!p->m->claimed || p->registered);
}

static void
mpath_fence(struct mpath_dev *m, int why)
{
	struct mpath_req	*r;

	if (m->fenced)
		return;
	m->fenced = 1;
	log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
	    "fenced: %s; all further I/O fails", storage_strerror(why));
	while ((r = TAILQ_FIRST(&m->waiting)) != NULL) {
		TAILQ_REMOVE(&m->waiting, r, entry);
		if (r->kind == MPATH_RAW)
			r->raw_done(STORAGE_E_RESERVATION, NULL, r->raw_arg);
		else
			r->cb(STORAGE_E_RESERVATION, r->arg);
		free(r);
	}
	if (m->fenced_cb != NULL)
		m->fenced_cb(&m->dev, why, m->fenced_arg);
}

/* --- paths going down and coming up ------------------------------------- */

/* Take a path down: its commands go to another path, its session is
 * reset, and it logs in again after reopen_ms. */
static void
mpath_path_down(struct mpath_path *p, const char *why)
{
	struct mpath_dev	*m = p->m;
	struct mpath_try	*t;
	struct mpath_req_list	 again;
	struct blockdev		*dev = p->dev;
	unsigned		 moved = 0;

	if (p->state != MPATH_PATH_UP)
		return;
	TAILQ_INIT(&again);
	while ((t = LIST_FIRST(&p->tries)) != NULL) {
		LIST_REMOVE(t, entry);
		if (t->req != NULL) {
			p->outstanding--;
			t->req->pinned = 0;
			TAILQ_INSERT_TAIL(&again, t->req, entry);
			moved++;
		}
		t->req = NULL;
		t->p = NULL;
	}
	p->state = MPATH_PATH_DOWN;
	p->dev = NULL;
	p->gen++;
	p->registered = 0;
	p->want_grant = 0;
	p->dev_asking = 0;
	p->registering = 0;
	p->pinging = 0;
	p->outstanding = 0;
	p->dirty = 0;
	p->down_since_us = now_us();
	p->next_open_us = p->down_since_us + (uint64_t)m->opt.reopen_ms * 1000;
	snprintf(p->why, sizeof p->why, "%s", why);
	log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
	    "path %u down (%s); %u request(s) moved to another path", p->index,
	    why, moved);
	TAILQ_CONCAT(&again, &m->waiting, entry);
	TAILQ_CONCAT(&m->waiting, &again, entry);
	/* Closed from the loop: this may run inside one of its callbacks. */
	if (p->dying != NULL)
		m->ops->discard(p->dying);
	p->dying = dev;
	ev_timer_arm(m->reap, 0);
	mpath_kick(m);
}

static void
mpath_reap_cb(void *arg)
{
	struct mpath_dev	*m = arg;
	struct blockdev		*dev;
	unsigned		 i;

	for (i = 0; i < m->npaths; i++) {
		if ((dev = m->paths[i].dying) != NULL) {
			m->paths[i].dying = NULL;
			m->ops->discard(dev);
		}
	}
}

static void
mpath_answered(struct mpath_path *p)
{
	p->last_answer_us = now_us();
}

static void
mpath_ping_done(int result, void *arg)
{
	struct mpath_try	*t = arg;
	struct mpath_path	*p = t->p;

	if (p != NULL) {
		LIST_REMOVE(t, entry);
		p->pinging = 0;
		mpath_answered(p);
		if (result != 0 && mpath_path_error(result))
			mpath_path_down(p, storage_strerror(result));
	}
	free(t);
}

/* A ping or a registration sent on path p, in its list until answered. */
static struct mpath_try *
mpath_try_new(struct mpath_path *p)
{
	struct mpath_try	*t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->p = p;
	t->sent_us = now_us();
	LIST_INSERT_HEAD(&p->tries, t, entry);
	return t;
}

static void
mpath_ping(struct mpath_path *p)
{
	struct mpath_try	*t = mpath_try_new(p);

	p->pinging = 1;
	p->ping_sent_us = t->sent_us;
	p->m->ops->ping(p->dev, mpath_ping_done, t);
}

/* The loop's watch: dead paths, heartbeats, logins due. */
static void
mpath_tick_cb(void *arg)
{
	struct mpath_dev	*m = arg;
	struct mpath_path	*p;
	uint64_t		 now = now_us(), dead = (uint64_t)m->opt.dead_ms *
				     1000;
	unsigned		 i;
	char			 why[64];

	for (i = 0; i < m->npaths; i++) {
		p = &m->paths[i];
		/* Taking one path down dispatches on the others. */
		now = now_us();
		switch (p->state) {
		case MPATH_PATH_UP:
			if (!LIST_EMPTY(&p->tries) && now > p->last_answer_us &&
			    now - p->last_answer_us > dead) {
				snprintf(why, sizeof why, "no answer for %u ms",
				    (unsigned)((now - p->last_answer_us) /
				    1000));
				mpath_path_down(p, why);
				break;
			}
			if (!p->pinging && now >= p->ping_sent_us &&
			    now - p->ping_sent_us >=
			    (uint64_t)m->opt.ping_ms * 1000) {
				if (LIST_EMPTY(&p->tries))
					p->last_answer_us = now;
				mpath_ping(p);
			}
			break;
		case MPATH_PATH_DOWN:
			if (!m->closing && !m->fenced && now >= p->next_open_us)
				mpath_path_open(p);
			break;
		case MPATH_PATH_OPENING:
			break;
		}
	}
	ev_timer_arm(m->tick, MPATH_TICK_MS);
}

/* --- the owner's grant for a new nexus ---------------------------------- */

static void
mpath_registered(int result, void *arg)
{
	struct mpath_try	*t = arg;
	struct mpath_path	*p = t->p;
	struct mpath_dev	*m;

	if (p == NULL) {
		free(t);
		return;
	}
	m = p->m;
	LIST_REMOVE(t, entry);
	free(t);
	mpath_answered(p);
	p->registering = 0;
	if (result != 0) {
		if (mpath_path_error(result)) {
			mpath_path_down(p, "registering failed");
			return;
		}
		log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
		    "path %u: registering failed: %s", p->index,
		    storage_strerror(result));
		mpath_fence(m, STORAGE_E_RESERVATION);
		return;
	}
	p->registered = 1;
	log_scoped(LOG_LEVEL_INFO, "mpath", m->dev.name,
	    "path %u registered; carrying I/O", p->index);
	mpath_kick(m);
}

static void
mpath_register_path(struct mpath_path *p)
{
	struct mpath_try	*t = mpath_try_new(p);

	p->registering = 1;
	p->want_grant = 0;
	p->m->ops->register_key(p->dev, p->m->key, mpath_registered, t);
}

/* Ask the owner once for every path that waits for a grant. */
static void
mpath_grant_next(struct mpath_dev *m)
{
	unsigned	i;

	if (m->asking || m->fenced || m->closing)
		return;
	for (i = 0; i < m->npaths; i++) {
		if (m->paths[i].state == MPATH_PATH_UP &&
		    (m->paths[i].want_grant || m->paths[i].dev_asking))
			break;
	}
	if (i == m->npaths)
		return;
	if (m->ask == NULL) {
		mpath_fence(m, STORAGE_E_RESERVATION);
		return;
	}
	m->asking = 1;
	log_scoped(LOG_LEVEL_INFO, "mpath", m->dev.name,
	    "path %u is a new nexus; asking to register it", i);
	m->ask(&m->dev, m->ask_arg);
}

/* A path's own session reconnected (iscsi.c holds its I/O and asks). */
static void
mpath_path_ask(struct blockdev *dev, void *arg)
{
	struct mpath_path	*p = arg;

	(void)dev;
	p->dev_asking = 1;
	mpath_grant_next(p->m);
}

static void
mpath_path_fenced(struct blockdev *dev, int why, void *arg)
{
	struct mpath_path	*p = arg;

	(void)dev;
	mpath_fence(p->m, why);
}

/* The owner's answer: register every path that waited, or fence. */
void
mpath_register_answer(struct blockdev *dev, int granted)
{
	struct mpath_dev	*m = dev->impl;
	struct mpath_path	*p;
	unsigned		 i;

	m->asking = 0;
	if (!granted) {
		log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
		    "registration refused");
		for (i = 0; i < m->npaths; i++) {
			p = &m->paths[i];
			if (p->state == MPATH_PATH_UP && p->dev_asking)
				m->ops->answer(p->dev, 0);
		}
		mpath_fence(m, STORAGE_E_RESERVATION);
		return;
	}
	for (i = 0; i < m->npaths; i++) {
		p = &m->paths[i];
		if (p->state != MPATH_PATH_UP)
			continue;
		if (p->dev_asking) {
			p->dev_asking = 0;
			m->ops->answer(p->dev, 1);
		}
		if (p->want_grant)
			mpath_register_path(p);
	}
	mpath_kick(m);
}

/* --- open ----------------------------------------------------------------- */

static void
mpath_open_finish(struct mpath_dev *m)
{
	iscsi_open_cb	 cb = m->open_cb;
	void		*arg = m->open_arg;
	unsigned	 i, up = 0;
	int		 result;

	for (i = 0; i < m->npaths; i++)
		up += m->paths[i].state == MPATH_PATH_UP;
	m->open_cb = NULL;
	if (up == 0) {
		log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
		    "no path logged in");
		result = m->open_error ? m->open_error : STORAGE_E_LOGIN;
		mpath_free(m);
		cb(result, NULL, arg);
		return;
	}
	m->opened = 1;
	log_scoped(LOG_LEVEL_INFO, "mpath", m->dev.name,
	    "%u of %u paths up", up, m->npaths);
	ev_timer_arm(m->tick, MPATH_TICK_MS);
	cb(0, &m->dev, arg);
}

static void
mpath_path_opened(int result, struct blockdev *dev, void *arg)
{
	struct mpath_try	*t = arg;
	struct mpath_path	*p = t->p;
	struct mpath_dev	*m = p->m;
	int			 first = !m->opened;

	free(t);
	m->logins--;
	if (m->closing) {
		if (dev != NULL)
			m->ops->discard(dev);
		if (m->logins == 0 && m->opened)
			mpath_free(m);
		return;
	}
	if (result == 0 && m->dev.size != 0 && (dev->size != m->dev.size ||
	    dev->block_size != m->dev.block_size)) {
		log_scoped(LOG_LEVEL_WARN, "mpath", m->dev.name,
		    "path %u reaches a LUN of another size; not used",
		    p->index);
		m->ops->discard(dev);
		result = STORAGE_E_UNSUPPORTED;
	}
	if (result != 0) {
		p->state = MPATH_PATH_DOWN;
		p->next_open_us = now_us() + (uint64_t)m->opt.reopen_ms * 1000;
		snprintf(p->why, sizeof p->why, "%s", storage_strerror(result));
		if (first && m->open_error == 0)
			m->open_error = result;
		if (!first)
			log_scoped(LOG_LEVEL_DEBUG, "mpath", m->dev.name,
			    "path %u: login failed: %s", p->index, p->why);
	} else {
		if (m->dev.size == 0) {
			m->dev.size = dev->size;
			m->dev.block_size = dev->block_size;
		}
		p->state = MPATH_PATH_UP;
		p->dev = dev;
		p->dev_asking = 0;
		p->last_answer_us = now_us();
		p->ping_sent_us = p->last_answer_us;
		p->why[0] = '\0';
		m->ops->attach(dev, m->key, mpath_path_ask, mpath_path_fenced,
		    p);
		if (m->claimed && !m->fenced) {
			/* A new nexus while we own the LU: the owner says. */
			p->want_grant = 1;
			log_scoped(LOG_LEVEL_INFO, "mpath", m->dev.name,
			    "path %u up again", p->index);
			mpath_grant_next(m);
		}
	}
	if (first) {
		if (--m->open_left == 0)
			mpath_open_finish(m);
		return;
	}
	mpath_kick(m);
}

static void
mpath_path_open(struct mpath_path *p)
{
	struct mpath_try	*t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->p = p;
	p->state = MPATH_PATH_OPENING;
	p->m->logins++;
	p->m->ops->open(p->index, !p->m->opened, p->m->ctx, mpath_path_opened,
	    t);
}

void
mpath_open(struct event_base *base, unsigned npaths, const char *name,
    const struct mpath_ops *ops, void *ctx, const struct mpath_options *opt,
    iscsi_open_cb cb, void *arg)
{
	struct mpath_dev	*m;
	unsigned		 i;

	if ((m = calloc(1, sizeof *m)) == NULL)
		abort();
	if (npaths > MPATH_MAX_PATHS)
		npaths = MPATH_MAX_PATHS;
	m->ops = ops;
	m->ctx = ctx;
	m->opt = *opt;
	if (m->opt.dead_ms == 0)
		m->opt.dead_ms = MPATH_DEAD_MS;
	if (m->opt.ping_ms == 0)
		m->opt.ping_ms = MPATH_PING_MS;
	if (m->opt.reopen_ms == 0)
		m->opt.reopen_ms = MPATH_REOPEN_MS;
	m->npaths = npaths;
	m->open_cb = cb;
	m->open_arg = arg;
	m->open_left = npaths;
	TAILQ_INIT(&m->waiting);
	m->dev.impl = m;
	m->dev.block_size = 512;
	if (blockdev_init(&m->dev, &mpath_blockdev_ops, base, name) == -1)
		abort();
	if ((m->tick = ev_timer_new(base, 0, 0, mpath_tick_cb, m)) == NULL ||
	    (m->reap = ev_timer_new(base, 0, 0, mpath_reap_cb, m)) == NULL)
		abort();
	for (i = 0; i < npaths; i++) {
		m->paths[i].m = m;
		m->paths[i].index = i;
		LIST_INIT(&m->paths[i].tries);
	}
	for (i = 0; i < npaths; i++)
		mpath_path_open(&m->paths[i]);
}

/* --- requests ------------------------------------------------------------- */

static void	mpath_dispatch(struct mpath_req *, struct mpath_path *);

static void
mpath_req_finish(struct mpath_req *r, int result, struct scsi_task *task)
{
	if (r->kind == MPATH_RAW)
		r->raw_done(result, task, r->raw_arg);
	else
		r->cb(result, r->arg);
	free(r);
}

static void
mpath_try_end(struct mpath_try *t, int result, struct scsi_task *task)
{
	struct mpath_req	*r = t->req;
	struct mpath_path	*p = t->p;
	struct mpath_dev	*m;

	if (r == NULL) {		/* its path went down: moved */
		free(t);
		return;
	}
	m = r->m;
	LIST_REMOVE(t, entry);
	free(t);
	p->outstanding--;
	mpath_answered(p);
	if (result != 0 && mpath_path_error(result) && !m->fenced &&
	    r->moves < MPATH_RETRIES) {
		/* Again elsewhere; the path goes down first, so the request
		 * waits at the head of the queue for the next usable path. */
		r->moves++;
		r->pinned = 0;
		TAILQ_INSERT_HEAD(&m->waiting, r, entry);
		mpath_path_down(p, storage_strerror(result));
		mpath_kick(m);
		return;
	}
	if (result == 0 && (r->kind == MPATH_WRITE || r->kind == MPATH_ZERO))
		p->dirty = 1;
	mpath_req_finish(r, result, task);
	mpath_kick(m);
}

static void
mpath_try_cb(int result, void *arg)
{
	mpath_try_end(arg, result, NULL);
}

static void
mpath_try_raw_cb(int result, struct scsi_task *task, void *arg)
{
	mpath_try_end(arg, result, task);
}

/* The caller's submit gets the caller's argument, not the try. */
static struct scsi_task *
mpath_try_raw_submit(struct iscsi_context *ctx, int lun,
    void (*cb)(struct iscsi_context *, int, void *, void *), void *priv,
    void *arg)
{
	struct mpath_try	*t = arg;

	return t->raw_submit(ctx, lun, cb, priv, t->raw_arg);
}

static void
mpath_dispatch(struct mpath_req *r, struct mpath_path *p)
{
	struct mpath_try	*t;
	struct blockdev		*dev = p->dev;

	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->req = r;
	t->p = p;
	t->sent_us = now_us();
	if (LIST_EMPTY(&p->tries))
		p->last_answer_us = t->sent_us;
	LIST_INSERT_HEAD(&p->tries, t, entry);
	p->outstanding++;
	switch (r->kind) {
	case MPATH_READ:
		blockdev_read(dev, r->offset, r->buf, (size_t)r->len,
		    mpath_try_cb, t);
		break;
	case MPATH_WRITE:
		blockdev_write(dev, r->offset, r->buf, (size_t)r->len, r->flags,
		    mpath_try_cb, t);
		break;
	case MPATH_FLUSH:
		p->dirty = 0;
		blockdev_flush(dev, mpath_try_cb, t);
		break;
	case MPATH_ZERO:
		blockdev_zero(dev, r->offset, r->len, r->flags, mpath_try_cb, t);
		break;
	case MPATH_RAW:
		t->raw_submit = r->raw_submit;
		t->raw_arg = r->raw_arg;
		p->m->ops->raw(dev, mpath_try_raw_submit, mpath_try_raw_cb, t);
		break;
	}
}

/* The path for a request: raw ones (reservations) on the first usable
 * path, so that a claim's steps share a nexus; the rest round robin. */
static struct mpath_path *
mpath_pick(struct mpath_dev *m, struct mpath_req *r)
{
	unsigned	i, k;

	if (r->pinned)
		return mpath_usable(&m->paths[r->path]) ? &m->paths[r->path] :
		    NULL;
	for (i = 0; i < m->npaths; i++) {
		k = r->kind == MPATH_RAW ? i : (m->next + i) % m->npaths;
		if (mpath_usable(&m->paths[k])) {
			if (r->kind != MPATH_RAW)
				m->next = (k + 1) % m->npaths;
			return &m->paths[k];
		}
	}
	return NULL;
}

static void
mpath_kick(struct mpath_dev *m)
{
	struct mpath_req	*r, *next;
	struct mpath_path	*p;

	if (!m->opened || m->closing)
		return;
	for (r = TAILQ_FIRST(&m->waiting); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (m->fenced) {
			/* From the loop: this may be inside a submit. */
			TAILQ_REMOVE(&m->waiting, r, entry);
			if (r->kind == MPATH_RAW)
				mpath_req_finish(r, STORAGE_E_RESERVATION, NULL);
			else {
				blockdev_complete_later(&m->dev, r->cb, r->arg,
				    STORAGE_E_RESERVATION);
				free(r);
			}
			continue;
		}
		if (r->pinned && m->paths[r->path].state != MPATH_PATH_UP)
			r->pinned = 0;	/* its path's writes are the LU's */
		if ((p = mpath_pick(m, r)) == NULL)
			continue;
		TAILQ_REMOVE(&m->waiting, r, entry);
		mpath_dispatch(r, p);
		/* A dispatch may take a path down and change the queue. */
		next = TAILQ_FIRST(&m->waiting);
	}
}

static struct mpath_req *
mpath_req_new(struct blockdev *dev, enum mpath_kind kind, blockdev_cb cb,
    void *arg)
{
	struct mpath_req	*r;

	if ((r = calloc(1, sizeof *r)) == NULL)
		abort();
	r->m = dev->impl;
	r->kind = kind;
	r->cb = cb;
	r->arg = arg;
	return r;
}

static void
mpath_queue(struct mpath_req *r)
{
	TAILQ_INSERT_TAIL(&r->m->waiting, r, entry);
	mpath_kick(r->m);
}

static void
mpath_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct mpath_req	*r = mpath_req_new(dev, MPATH_READ, cb, arg);

	r->offset = offset;
	r->buf = buf;
	r->len = len;
	mpath_queue(r);
}

static void
mpath_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct mpath_req	*r = mpath_req_new(dev, MPATH_WRITE, cb, arg);

	r->offset = offset;
	r->buf = (void *)(uintptr_t)buf;
	r->len = len;
	r->flags = flags;
	mpath_queue(r);
}

static void
mpath_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct mpath_req	*r = mpath_req_new(dev, MPATH_ZERO, cb, arg);

	r->offset = offset;
	r->len = len;
	r->flags = flags;
	mpath_queue(r);
}

/* A flush: one SYNCHRONIZE CACHE per path that carried writes (at least
 * one), completing the caller's once all have. */
struct mpath_flush {
	blockdev_cb	 cb;
	void		*arg;
	unsigned	 left;
	int		 result;
};

static void
mpath_flush_part_cb(int result, void *arg)
{
	struct mpath_flush	*f = arg;

	if (result != 0 && f->result == 0)
		f->result = result;
	if (--f->left > 0)
		return;
	f->cb(f->result, f->arg);
	free(f);
}

static void
mpath_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct mpath_dev	*m = dev->impl;
	struct mpath_flush	*f;
	struct mpath_req	*r;
	unsigned		 i, n = 0;
	int			 pin[MPATH_MAX_PATHS];

	for (i = 0; i < m->npaths; i++) {
		pin[i] = m->paths[i].state == MPATH_PATH_UP &&
		    m->paths[i].dirty;
		n += pin[i];
	}
	if ((f = calloc(1, sizeof *f)) == NULL)
		abort();
	f->cb = cb;
	f->arg = arg;
	f->left = n > 0 ? n : 1;
	if (n == 0) {
		mpath_queue(mpath_req_new(dev, MPATH_FLUSH, mpath_flush_part_cb,
		    f));
		return;
	}
	for (i = 0; i < m->npaths; i++) {
		if (!pin[i])
			continue;
		r = mpath_req_new(dev, MPATH_FLUSH, mpath_flush_part_cb, f);
		r->pinned = 1;
		r->path = i;
		TAILQ_INSERT_TAIL(&m->waiting, r, entry);
	}
	mpath_kick(m);
}

void
mpath_raw(struct blockdev *dev, iscsi_raw_submit submit, iscsi_raw_done done,
    void *arg)
{
	struct mpath_req	*r = mpath_req_new(dev, MPATH_RAW, NULL, NULL);

	r->raw_submit = submit;
	r->raw_done = done;
	r->raw_arg = arg;
	mpath_queue(r);
}

static void
mpath_free(struct mpath_dev *m)
{
	ev_timer_free(m->reap);
	mpath_reap_cb(m);
	ev_timer_free(m->tick);
	blockdev_fini(&m->dev);
	if (m->ops->release != NULL)
		m->ops->release(m->ctx);
	free(m);
}

/* Close: requests not yet done complete with -ECANCELED. A path still
 * logging in is discarded when it answers; the last one frees. */
static void
mpath_close(struct blockdev *dev)
{
	struct mpath_dev	*m = dev->impl;
	struct mpath_path	*p;
	struct mpath_try	*t;
	struct mpath_req	*r;
	unsigned		 i;

	m->closing = 1;
	ev_timer_cancel(m->tick);
	while ((r = TAILQ_FIRST(&m->waiting)) != NULL) {
		TAILQ_REMOVE(&m->waiting, r, entry);
		mpath_req_finish(r, -ECANCELED, NULL);
	}
	for (i = 0; i < m->npaths; i++) {
		p = &m->paths[i];
		while ((t = LIST_FIRST(&p->tries)) != NULL) {
			LIST_REMOVE(t, entry);
			if (t->req != NULL)
				mpath_req_finish(t->req, -ECANCELED, NULL);
			t->req = NULL;
			t->p = NULL;
		}
		if (p->state == MPATH_PATH_UP) {
			p->state = MPATH_PATH_DOWN;
			blockdev_close(p->dev);
			p->dev = NULL;
		}
	}
	if (m->logins == 0)
		mpath_free(m);
}

static const struct blockdev_ops mpath_blockdev_ops = {
	.kind = "multipath",
	.read = mpath_read,
	.write = mpath_write,
	.flush = mpath_flush,
	.zero = mpath_zero,
	.close = mpath_close,
};

/* --- the owner's side ----------------------------------------------------- */

void
mpath_set_registration(struct blockdev *dev, uint64_t key,
    iscsi_register_ask ask, void *arg)
{
	struct mpath_dev	*m = dev->impl;
	unsigned		 i;

	m->key = key;
	m->ask = ask;
	m->ask_arg = arg;
	for (i = 0; i < m->npaths; i++) {
		if (m->paths[i].state == MPATH_PATH_UP)
			m->ops->attach(m->paths[i].dev, key, mpath_path_ask,
			    mpath_path_fenced, &m->paths[i]);
	}
}

void
mpath_set_fenced_cb(struct blockdev *dev, iscsi_fenced_cb cb, void *arg)
{
	struct mpath_dev	*m = dev->impl;

	m->fenced_cb = cb;
	m->fenced_arg = arg;
}

int
mpath_is_fenced(const struct blockdev *dev)
{
	const struct mpath_dev	*m = dev->impl;

	return m->fenced;
}

/* After the owner's claim (on the first usable path): register the key on
 * every path up now; those that come later ask first. */
struct mpath_claim {
	blockdev_cb	 cb;
	void		*arg;
	unsigned	 left;
	int		 result;
};

static void
mpath_claim_part(int result, void *arg)
{
	struct mpath_try	*t = arg;
	struct mpath_claim	*c = t->claim;
	struct mpath_path	*p = t->p;

	if (p != NULL) {
		LIST_REMOVE(t, entry);
		mpath_answered(p);
		p->registering = 0;
		if (result == 0)
			p->registered = 1;
		else if (mpath_path_error(result))
			mpath_path_down(p, "registering failed");
		else if (c->result == 0)
			c->result = result;
	}
	free(t);
	if (--c->left > 0)
		return;
	c->cb(c->result, c->arg);
	free(c);
}

void
mpath_claimed(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct mpath_dev	*m = dev->impl;
	struct mpath_claim	*c;
	struct mpath_try	*t;
	struct mpath_path	*p;
	unsigned		 i;

	if ((c = calloc(1, sizeof *c)) == NULL)
		abort();
	c->cb = cb;
	c->arg = arg;
	c->left = 1;
	m->claimed = 1;
	for (i = 0; i < m->npaths; i++) {
		p = &m->paths[i];
		if (p->state != MPATH_PATH_UP)
			continue;
		if ((t = calloc(1, sizeof *t)) == NULL)
			abort();
		t->claim = c;
		t->p = p;
		t->sent_us = now_us();
		LIST_INSERT_HEAD(&p->tries, t, entry);
		p->registering = 1;
		c->left++;
		m->ops->register_key(p->dev, m->key, mpath_claim_part, t);
	}
	/* The extra count keeps c alive through synchronous answers. */
	if (--c->left == 0) {
		cb(c->result, arg);
		free(c);
	}
}

/* Each path's state, for reports: 1 up and carrying I/O, 0 not. */
unsigned
mpath_paths(const struct blockdev *dev, struct mpath_path_info *info,
    unsigned max)
{
	const struct mpath_dev	*m = dev->impl;
	unsigned		 i;

	for (i = 0; i < m->npaths && i < max; i++) {
		info[i].up = mpath_usable(&m->paths[i]);
		info[i].since_us = m->paths[i].down_since_us;
		snprintf(info[i].why, sizeof info[i].why, "%s",
		    m->paths[i].why);
	}
	return i;
}
