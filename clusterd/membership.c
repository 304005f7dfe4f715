/*
 * havend's corosync client (DESIGN §5): one CPG group and votequorum on the
 * event loop. Membership and quorum changes and delivered messages come out
 * as callbacks; when corosync goes away the handles are dropped and we
 * reconnect with exponential backoff. Haven has no heartbeat of its own.
 */
#include <sys/queue.h>
#include <sys/uio.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <event2/event.h>

#include "common.h"
#include "clusterd.h"

#define MEMBERSHIP_BACKOFF_MIN_MS	100
#define MEMBERSHIP_BACKOFF_MAX_MS	5000
#define MEMBERSHIP_RETRY_SEND_MS	10
#define MEMBERSHIP_QUEUE_MAX		4096

struct membership_message {
	TAILQ_ENTRY(membership_message)	 entry;
	size_t				 len;
	unsigned char			 data[];
};
TAILQ_HEAD(membership_queue, membership_message);

struct membership {
	struct event_base		*base;
	struct membership_callbacks	 cb;
	void				*arg;
	struct cpg_name			 group;

	/* Valid while connected. */
	int				 connected;
	cpg_handle_t			 cpg;
	votequorum_handle_t		 votequorum;
	struct event			*cpg_event;
	struct event			*votequorum_event;
	uint32_t			 node_id;
	int				 quorate;

	/* Set while a dispatch runs: a failure found inside a callback
	 * (membership_send) is handled after the dispatch returns. */
	int				 in_dispatch;
	int				 lost;

	uint64_t			 backoff_ms;
	struct ev_timer			*reconnect_timer;
	struct ev_timer			*send_timer;
	struct ev_timer			*lost_timer;

	struct membership_queue		 queue;
	size_t				 queued;
};

static void	membership_connect(void *);
static void	membership_lost(struct membership *, const char *, cs_error_t);

static struct membership *
membership_from_cpg(cpg_handle_t handle)
{
	void	*context = NULL;

	if (cpg_context_get(handle, &context) != CS_OK)
		return NULL;
	return context;
}

static struct membership *
membership_from_votequorum(votequorum_handle_t handle)
{
	void	*context = NULL;

	if (votequorum_context_get(handle, &context) != CS_OK)
		return NULL;
	return context;
}

static uint32_t *
membership_node_ids(const struct cpg_address *list, size_t n)
{
	uint32_t	*ids;
	size_t		 i;

	if ((ids = calloc(n == 0 ? 1 : n, sizeof *ids)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		ids[i] = list[i].nodeid;
	return ids;
}

static void
membership_deliver_cb(cpg_handle_t handle, const struct cpg_name *group,
    uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct membership	*m = membership_from_cpg(handle);

	if (m == NULL || m->cb.message == NULL)
		return;
	m->cb.message(m, nodeid, pid, msg, len, m->arg);
}

static void
membership_confchg_cb(cpg_handle_t handle, const struct cpg_name *group,
    const struct cpg_address *members, size_t nmembers,
    const struct cpg_address *left, size_t nleft,
    const struct cpg_address *joined, size_t njoined)
{
	struct membership	*m = membership_from_cpg(handle);
	uint32_t		*member_ids, *left_ids, *joined_ids;

	if (m == NULL || m->cb.changed == NULL)
		return;
	member_ids = membership_node_ids(members, nmembers);
	left_ids = membership_node_ids(left, nleft);
	joined_ids = membership_node_ids(joined, njoined);
	if (member_ids == NULL || left_ids == NULL || joined_ids == NULL)
		log_fatal("membership: out of memory");
	log_info("membership: %zu members, %zu joined, %zu left", nmembers,
	    njoined, nleft);
	m->cb.changed(m, member_ids, nmembers, joined_ids, njoined, left_ids,
	    nleft, m->arg);
	free(member_ids);
	free(left_ids);
	free(joined_ids);
}

static void
membership_quorum_cb(votequorum_handle_t handle, uint64_t context,
    uint32_t quorate, uint32_t nnodes, votequorum_node_t nodes[])
{
	struct membership	*m = membership_from_votequorum(handle);
	uint32_t		*ids;
	size_t			 i, n = 0;

	if (m == NULL)
		return;
	if ((ids = calloc(nnodes == 0 ? 1 : nnodes, sizeof *ids)) == NULL)
		log_fatal("membership: out of memory");
	for (i = 0; i < nnodes; i++) {
		if (nodes[i].state == VOTEQUORUM_NODESTATE_MEMBER)
			ids[n++] = nodes[i].nodeid;
	}
	m->quorate = quorate != 0;
	log_info("membership: %s with %zu members",
	    m->quorate ? "quorate" : "not quorate", n);
	if (m->cb.quorum != NULL)
		m->cb.quorum(m, m->quorate, ids, n, m->arg);
	free(ids);
}

static void
membership_queue_clear(struct membership *m)
{
	struct membership_message	*msg;

	while ((msg = TAILQ_FIRST(&m->queue)) != NULL) {
		TAILQ_REMOVE(&m->queue, msg, entry);
		free(msg);
	}
	m->queued = 0;
}

/* Drops both handles. Safe on a half-made connection. */
static void
membership_teardown(struct membership *m)
{
	if (m->cpg_event != NULL) {
		event_free(m->cpg_event);
		m->cpg_event = NULL;
	}
	if (m->votequorum_event != NULL) {
		event_free(m->votequorum_event);
		m->votequorum_event = NULL;
	}
	if (m->cpg != 0) {
		cpg_finalize(m->cpg);
		m->cpg = 0;
	}
	if (m->votequorum != 0) {
		votequorum_finalize(m->votequorum);
		m->votequorum = 0;
	}
	if (m->send_timer != NULL)
		ev_timer_cancel(m->send_timer);
	if (m->lost_timer != NULL)
		ev_timer_cancel(m->lost_timer);
}

static void
membership_schedule_reconnect(struct membership *m)
{
	uint64_t	delay = m->backoff_ms;

	m->backoff_ms *= 2;
	if (m->backoff_ms > MEMBERSHIP_BACKOFF_MAX_MS)
		m->backoff_ms = MEMBERSHIP_BACKOFF_MAX_MS;
	ev_timer_arm(m->reconnect_timer, delay);
}

/* corosync went away: forget the handles, tell the user once, retry. */
static void
membership_lost(struct membership *m, const char *what, cs_error_t err)
{
	int	was_connected = m->connected;

	if (m->in_dispatch) {
		/* Finalizing a handle inside its own dispatch is not allowed. */
		m->lost = 1;
		ev_timer_arm(m->lost_timer, 0);
		return;
	}
	m->lost = 0;
	if (was_connected)
		log_warn("membership: lost corosync (%s: error %d); "
		    "reconnecting", what, (int)err);
	membership_teardown(m);
	if (m->queued > 0)
		log_warn("membership: dropping %zu unsent messages", m->queued);
	membership_queue_clear(m);
	m->connected = 0;
	m->quorate = 0;
	m->node_id = 0;
	membership_schedule_reconnect(m);
	if (was_connected && m->cb.disconnected != NULL)
		m->cb.disconnected(m, m->arg);
}

static void
membership_lost_cb(void *arg)
{
	struct membership	*m = arg;

	if (m->lost)
		membership_lost(m, "deferred", CS_ERR_LIBRARY);
}

static void
membership_cpg_event_cb(evutil_socket_t fd, short events, void *arg)
{
	struct membership	*m = arg;
	cs_error_t		 err;

	m->in_dispatch = 1;
	err = cpg_dispatch(m->cpg, CS_DISPATCH_ALL);
	m->in_dispatch = 0;
	if (err != CS_OK && err != CS_ERR_TRY_AGAIN)
		membership_lost(m, "cpg_dispatch", err);
	else if (m->lost)
		membership_lost(m, "cpg", CS_ERR_LIBRARY);
}

static void
membership_votequorum_event_cb(evutil_socket_t fd, short events, void *arg)
{
	struct membership	*m = arg;
	cs_error_t		 err;

	m->in_dispatch = 1;
	err = votequorum_dispatch(m->votequorum, CS_DISPATCH_ALL);
	m->in_dispatch = 0;
	if (err != CS_OK && err != CS_ERR_TRY_AGAIN)
		membership_lost(m, "votequorum_dispatch", err);
	else if (m->lost)
		membership_lost(m, "votequorum", CS_ERR_LIBRARY);
}

/* Sends queued messages in order until corosync pushes back again. */
static int
membership_flush(struct membership *m)
{
	struct membership_message	*msg;
	struct iovec			 iov;
	cs_error_t			 err;

	while ((msg = TAILQ_FIRST(&m->queue)) != NULL) {
		iov.iov_base = msg->data;
		iov.iov_len = msg->len;
		err = cpg_mcast_joined(m->cpg, CPG_TYPE_AGREED, &iov, 1);
		if (err == CS_ERR_TRY_AGAIN) {
			ev_timer_arm(m->send_timer, MEMBERSHIP_RETRY_SEND_MS);
			return 0;
		}
		if (err != CS_OK) {
			membership_lost(m, "cpg_mcast_joined", err);
			errno = ENOTCONN;
			return -1;
		}
		TAILQ_REMOVE(&m->queue, msg, entry);
		m->queued--;
		free(msg);
	}
	return 0;
}

static void
membership_send_cb(void *arg)
{
	struct membership	*m = arg;

	if (m->connected)
		membership_flush(m);
}

static void
membership_connect(void *arg)
{
	struct membership	*m = arg;
	cpg_model_v1_data_t	 model;
	votequorum_callbacks_t	 vq_callbacks;
	const char		*what;
	cs_error_t		 err;
	int			 cpg_fd, vq_fd;

	memset(&model, 0, sizeof model);
	model.model = CPG_MODEL_V1;
	model.cpg_deliver_fn = membership_deliver_cb;
	model.cpg_confchg_fn = membership_confchg_cb;
	memset(&vq_callbacks, 0, sizeof vq_callbacks);
	vq_callbacks.votequorum_quorum_notify_fn = membership_quorum_cb;

	what = "cpg_model_initialize";
	if ((err = cpg_model_initialize(&m->cpg, CPG_MODEL_V1,
	    (cpg_model_data_t *)&model, m)) != CS_OK) {
		m->cpg = 0;
		goto fail;
	}
	what = "cpg_join";
	if ((err = cpg_join(m->cpg, &m->group)) != CS_OK)
		goto fail;
	what = "cpg_local_get";
	if ((err = cpg_local_get(m->cpg, &m->node_id)) != CS_OK)
		goto fail;
	what = "cpg_fd_get";
	if ((err = cpg_fd_get(m->cpg, &cpg_fd)) != CS_OK)
		goto fail;
	what = "votequorum_initialize";
	if ((err = votequorum_initialize(&m->votequorum, &vq_callbacks)) !=
	    CS_OK) {
		m->votequorum = 0;
		goto fail;
	}
	what = "votequorum_context_set";
	if ((err = votequorum_context_set(m->votequorum, m)) != CS_OK)
		goto fail;
	what = "votequorum_trackstart";
	if ((err = votequorum_trackstart(m->votequorum, 0,
	    CS_TRACK_CURRENT | CS_TRACK_CHANGES)) != CS_OK)
		goto fail;
	what = "votequorum_fd_get";
	if ((err = votequorum_fd_get(m->votequorum, &vq_fd)) != CS_OK)
		goto fail;

	m->cpg_event = event_new(m->base, cpg_fd, EV_READ | EV_PERSIST,
	    membership_cpg_event_cb, m);
	m->votequorum_event = event_new(m->base, vq_fd, EV_READ | EV_PERSIST,
	    membership_votequorum_event_cb, m);
	if (m->cpg_event == NULL || m->votequorum_event == NULL ||
	    event_add(m->cpg_event, NULL) == -1 ||
	    event_add(m->votequorum_event, NULL) == -1)
		log_fatal("membership: cannot add corosync events");

	m->connected = 1;
	m->quorate = 0;
	m->backoff_ms = MEMBERSHIP_BACKOFF_MIN_MS;
	log_info("membership: connected to corosync as node %" PRIu32
	    ", joined group %.*s", m->node_id, (int)m->group.length,
	    m->group.value);
	if (m->cb.connected != NULL)
		m->cb.connected(m, m->node_id, m->arg);
	return;

fail:
	/* Quietly at first: corosync may just be starting. */
	if (m->backoff_ms >= MEMBERSHIP_BACKOFF_MAX_MS)
		log_warn("membership: %s failed (error %d); retrying in %"
		    PRIu64 " ms", what, (int)err, m->backoff_ms);
	else
		log_debug("membership: %s failed (error %d); retrying in %"
		    PRIu64 " ms", what, (int)err, m->backoff_ms);
	membership_teardown(m);
	m->node_id = 0;
	membership_schedule_reconnect(m);
}

struct membership *
membership_new(struct event_base *base, const char *group,
    const struct membership_callbacks *cb, void *arg)
{
	struct membership	*m;
	size_t			 len = strlen(group);

	if (len == 0 || len > CPG_MAX_NAME_LENGTH) {
		errno = EINVAL;
		return NULL;
	}
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->base = base;
	m->cb = *cb;
	m->arg = arg;
	memcpy(m->group.value, group, len);
	m->group.length = (uint32_t)len;
	m->backoff_ms = MEMBERSHIP_BACKOFF_MIN_MS;
	TAILQ_INIT(&m->queue);
	m->reconnect_timer = ev_timer_new(base, 0, 0, membership_connect, m);
	m->send_timer = ev_timer_new(base, 0, 0, membership_send_cb, m);
	m->lost_timer = ev_timer_new(base, 0, 0, membership_lost_cb, m);
	if (m->reconnect_timer == NULL || m->send_timer == NULL ||
	    m->lost_timer == NULL) {
		membership_free(m);
		errno = ENOMEM;
		return NULL;
	}
	/* The first attempt runs from the loop, so callbacks never fire
	 * before membership_new has returned. */
	ev_timer_arm(m->reconnect_timer, 0);
	return m;
}

int
membership_send(struct membership *m, const void *data, size_t len)
{
	struct membership_message	*msg;

	if (!m->connected || m->lost) {
		errno = ENOTCONN;
		return -1;
	}
	if (m->queued >= MEMBERSHIP_QUEUE_MAX) {
		errno = ENOBUFS;
		return -1;
	}
	if ((msg = malloc(sizeof *msg + len)) == NULL)
		return -1;
	msg->len = len;
	memcpy(msg->data, data, len);
	TAILQ_INSERT_TAIL(&m->queue, msg, entry);
	m->queued++;
	/* Behind earlier queued messages: wait for the retry timer. */
	if (m->queued > 1)
		return 0;
	return membership_flush(m);
}

uint32_t
membership_node_id(const struct membership *m)
{
	return m->node_id;
}

int
membership_is_connected(const struct membership *m)
{
	return m->connected;
}

int
membership_is_quorate(const struct membership *m)
{
	return m->connected && m->quorate;
}

/*
 * corosync's own quorum as votequorum has it now (a synchronous call to the
 * local corosync): -1 while disconnected. The sync of the replicated state
 * carries it, so every member decides from the same verdicts.
 */
int
membership_quorum_info(struct membership *m, struct membership_quorum *q)
{
	struct votequorum_info	info;
	cs_error_t		err;

	memset(q, 0, sizeof *q);
	if (!m->connected || m->lost) {
		errno = ENOTCONN;
		return -1;
	}
	memset(&info, 0, sizeof info);
	if ((err = votequorum_getinfo(m->votequorum, m->node_id, &info)) !=
	    CS_OK) {
		log_warn("membership: votequorum_getinfo failed (error %d)",
		    (int)err);
		errno = EIO;
		return -1;
	}
	q->quorate = (info.flags & VOTEQUORUM_INFO_QUORATE) != 0;
	q->two_node = (info.flags & VOTEQUORUM_INFO_TWONODE) != 0;
	q->witness = (info.flags & VOTEQUORUM_INFO_QDEVICE_REGISTERED) != 0;
	q->witness_vote = (info.flags & VOTEQUORUM_INFO_QDEVICE_CAST_VOTE) != 0;
	q->tie_breaker = q->two_node || q->witness ||
	    (info.flags & VOTEQUORUM_INFO_AUTO_TIE_BREAKER) != 0;
	q->expected_votes = info.node_expected_votes;
	q->expected_hosts = info.node_expected_votes > info.qdevice_votes &&
	    q->witness ? info.node_expected_votes - info.qdevice_votes :
	    info.node_expected_votes;
	/* Our own quorum flag too: the callback's may lag the call. */
	m->quorate = q->quorate;
	return 0;
}

struct event_base *
membership_event_base(const struct membership *m)
{
	return m->base;
}

/* Leave the CPG group (corosync and votequorum stay): the others see this
 * member go. membership_join puts it back. */
int
membership_leave(struct membership *m)
{
	cs_error_t	err;

	if (!m->connected || m->lost) {
		errno = ENOTCONN;
		return -1;
	}
	if ((err = cpg_leave(m->cpg, &m->group)) != CS_OK) {
		log_warn("membership: cpg_leave failed (error %d)", (int)err);
		errno = EIO;
		return -1;
	}
	return 0;
}

int
membership_join(struct membership *m)
{
	cs_error_t	err;

	if (!m->connected || m->lost) {
		errno = ENOTCONN;
		return -1;
	}
	if ((err = cpg_join(m->cpg, &m->group)) != CS_OK) {
		log_warn("membership: cpg_join failed (error %d)", (int)err);
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Drop the connection and connect again (from the loop): the group sees
 * this member leave and come back, which starts a new sync. */
void
membership_restart(struct membership *m, const char *why)
{
	if (!m->connected)
		return;
	log_warn("membership: leaving the group and joining again: %s", why);
	m->lost = 1;
	ev_timer_arm(m->lost_timer, 0);
}

void
membership_free(struct membership *m)
{
	if (m == NULL)
		return;
	membership_teardown(m);
	membership_queue_clear(m);
	ev_timer_free(m->reconnect_timer);
	ev_timer_free(m->send_timer);
	ev_timer_free(m->lost_timer);
	free(m);
}

/*
 * corosync's token timeout as it runs (runtime.config.totem.token: the
 * configured token stretched by token_coefficient, if any), read once over
 * cmap. -1 when corosync does not answer.
 */
int
membership_token_ms(unsigned *ms)
{
	cmap_handle_t	 cmap;
	uint32_t	 v;
	cs_error_t	 e;

	if (cmap_initialize(&cmap) != CS_OK)
		return -1;
	e = cmap_get_uint32(cmap, "runtime.config.totem.token", &v);
	cmap_finalize(cmap);
	if (e != CS_OK || v == 0)
		return -1;
	*ms = v;
	return 0;
}
