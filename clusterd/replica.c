/*
 * This host's replica of the cluster state (DESIGN §5), driven by CPG: on
 * every configuration change the members exchange (seq, digest,
 * last-quorate epoch, learner, corosync's quorum), all pick the same source,
 * and members that differ adopt its snapshot; changes are multicast in
 * agreed order, applied by every member, persisted, and only then answered.
 * A member silent in a sync is left out; a member that cannot persist
 * leaves the group until it can. docs/design-notes.md has the argument.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

#define REPLICA_MAX_MEMBERS	64
#define REPLICA_MAX_QUEUED	256
/* A member's SyncState, or the chosen source's snapshot, later than this
 * after the round began: the member is silent and the round goes on
 * without it. Well above a sync's few round trips, well below the 30 s a
 * host whose havend is away keeps its VMs. */
#define REPLICA_SYNC_TIMEOUT_MS	5000
/* A member that could not persist tries again this often, out of the
 * group, and joins again once it can. */
#define REPLICA_PERSIST_RETRY_MS	2000

struct replica {
	struct membership	*membership;
	struct cluster		*st;
	char			 dir[256];
	const struct replica_callbacks *cb;
	void			*arg;
	uint32_t		 me;

	/* The sync round: its members (without the silent), their states. */
	uint32_t		 members[REPLICA_MAX_MEMBERS];
	size_t			 nmembers;
	uint32_t		 attempt;	/* resyncs since the CPG change */
	int			 syncing;
	int			 decided;	/* every state in, source chosen */
	struct sync_member	 got[REPLICA_MAX_MEMBERS];
	uint8_t			 have[REPLICA_MAX_MEMBERS];
	uint64_t		 prev_epoch_max;
	uint64_t		 round_epoch;	/* the epoch the round ends with */
	int			 awaiting_snapshot;
	uint32_t		 source;	/* node id of the chosen source */
	int			 sent_vq_quorate;
	int			 resync_asked;
	struct ev_timer		*sync_timer;
	int			 quorate;	/* of the configuration, at sync */
	uint32_t		 protocol;	/* the lowest announced, at sync */

	/* Cannot persist: out of the group until a save succeeds. */
	int			 broken;
	struct ev_timer		*persist_timer;

	/* Changes delivered after the decision, while this member waits for
	 * its snapshot: applied on top of it, as the others applied them. */
	Haven__Change		*held[REPLICA_MAX_QUEUED];
	size_t			 nheld;

	uint64_t		 next_request;
	Haven__Change		*queued[REPLICA_MAX_QUEUED];
	size_t			 nqueued;
};

static void	replica_start_round(struct replica *);
static void	replica_apply(struct replica *, uint32_t, Haven__Change *);

static int
replica_send(struct replica *r, uint16_t type, const ProtobufCMessage *m)
{
	uint8_t	*payload, *buf;
	size_t	 len;
	int	 rc;

	if ((payload = message_pack(m, &len)) == NULL)
		return -1;
	if ((buf = malloc(FRAME_HEADER_SIZE + len)) == NULL) {
		free(payload);
		return -1;
	}
	frame_encode_header(buf, type, (uint32_t)len, 0);
	memcpy(buf + FRAME_HEADER_SIZE, payload, len);
	rc = membership_send(r->membership, buf, FRAME_HEADER_SIZE + len);
	free(payload);
	free(buf);
	return rc;
}

/* A decoded change lives as long as its message: keep a copy. */
static Haven__Change *
replica_copy_change(const Haven__Change *c)
{
	Haven__Change	*copy;
	uint8_t		*buf;
	size_t		 len;

	if ((buf = message_pack(&c->base, &len)) == NULL)
		abort();
	copy = (Haven__Change *)protobuf_c_message_unpack(
	    &haven__change__descriptor, NULL, len, buf);
	free(buf);
	if (copy == NULL)
		abort();
	return copy;
}

/*
 * This member cannot persist the state: it must not acknowledge a change
 * the disk does not hold, nor go on with a history that a restart would
 * lose. It leaves the group (the others go on without it; its host is
 * treated like one whose havend is away) and tries again every few
 * seconds; once a save succeeds it joins again and syncs.
 */
static void
replica_break(struct replica *r, const char *err)
{
	if (!r->broken)
		log_error("cannot persist the cluster state in %s: %s; this "
		    "host leaves the cluster until it can (check the disk, its "
		    "free space and permissions; havend retries every %d s)",
		    r->dir, err, REPLICA_PERSIST_RETRY_MS / 1000);
	r->broken = 1;
	r->syncing = 1;
	r->quorate = 0;
	ev_timer_cancel(r->sync_timer);
	if (membership_leave(r->membership) == -1 &&
	    membership_is_connected(r->membership))
		membership_restart(r->membership, "cannot persist");
	ev_timer_arm(r->persist_timer, REPLICA_PERSIST_RETRY_MS);
}

static void
replica_persist_retry(void *arg)
{
	struct replica	*r = arg;
	char		 err[256];

	if (!r->broken)
		return;
	if (cluster_save(r->st, r->dir, err, sizeof err) != CLUSTER_OK) {
		log_warn("still cannot persist the cluster state: %s", err);
		ev_timer_arm(r->persist_timer, REPLICA_PERSIST_RETRY_MS);
		return;
	}
	log_info("the cluster state persists again: joining the cluster");
	r->broken = 0;
	if (membership_join(r->membership) == -1)
		membership_restart(r->membership, "joining after a persist "
		    "failure");
}

/* 0, or -1 after replica_break (err: why). */
static int
replica_persist(struct replica *r, char *err, size_t errlen)
{
	if (cluster_save(r->st, r->dir, err, errlen) == CLUSTER_OK)
		return 0;
	replica_break(r, err);
	return -1;
}

/* The hosts the state knows, for the quorum rule. */
static size_t
replica_known_hosts(const struct replica *r, uint32_t *known, size_t max)
{
	size_t	i, n = 0;

	for (i = 0; i < r->st->cs->n_hosts && n < max; i++)
		known[n++] = r->st->cs->hosts[i]->config->node_id;
	return n;
}

static void
replica_sync_done(struct replica *r)
{
	uint32_t	known[REPLICA_MAX_MEMBERS * 4];
	char		err[256];
	size_t		i, nknown;

	r->syncing = 0;
	r->decided = 0;
	ev_timer_cancel(r->sync_timer);
	nknown = replica_known_hosts(r, known, sizeof known / sizeof *known);
	r->quorate = sync_quorate(r->got, r->nmembers, known, nknown);
	if (sync_protocol(r->got, r->nmembers) != r->protocol)
		log_info("sync: the cluster runs at protocol %u (this build "
		    "speaks %u)", sync_protocol(r->got, r->nmembers),
		    HAVEN_PROTOCOL);
	r->protocol = sync_protocol(r->got, r->nmembers);
	cluster_set_epoch(r->st, r->round_epoch, r->quorate);
	if (replica_persist(r, err, sizeof err) == -1)
		return;
	log_info("synced: epoch %llu, seq %llu, %s with %zu members",
	    (unsigned long long)r->st->cs->epoch,
	    (unsigned long long)r->st->cs->seq,
	    r->quorate ? "quorate" : "NOT quorate", r->nmembers);
	/* Changes the others applied while we waited for the snapshot. */
	for (i = 0; i < r->nheld; i++) {
		if (!r->broken)
			replica_apply(r, r->held[i]->origin, r->held[i]);
		message_free(&r->held[i]->base);
	}
	r->nheld = 0;
	if (r->broken)
		return;
	/* Requests made during the sync go out now, those the protocol
	 * still allows (a member of an older build may have joined). */
	for (i = 0; i < r->nqueued; i++) {
		if (replica_protocol_check(r, r->queued[i], err,
		    sizeof err) == -1) {
			log_warn("a change made during the sync is dropped: "
			    "%s", err);
			message_free(&r->queued[i]->base);
			continue;
		}
		r->queued[i]->epoch = r->st->cs->epoch;
		if (replica_send(r, FRAME_CHANGE, &r->queued[i]->base) == -1)
			log_warn("a queued change could not be sent: %s",
			    strerror(errno));
		message_free(&r->queued[i]->base);
	}
	r->nqueued = 0;
	if (r->cb->synced != NULL)
		r->cb->synced(r, r->arg);
}

static ssize_t
replica_member_index(const struct replica *r, uint32_t node)
{
	size_t	i;

	for (i = 0; i < r->nmembers; i++) {
		if (r->members[i] == node)
			return (ssize_t)i;
	}
	return -1;
}

static void
replica_send_snapshot(struct replica *r)
{
	Haven__Snapshot		snap = HAVEN__SNAPSHOT__INIT;
	uint8_t			digest[CLUSTER_DIGEST_SIZE];

	cluster_digest(r->st, digest);
	snap.source = r->me;
	snap.epoch = r->round_epoch;
	snap.state = r->st->cs;
	snap.digest.data = digest;
	snap.digest.len = sizeof digest;
	if (replica_send(r, FRAME_SNAPSHOT, &snap.base) == -1)
		log_error("sync: sending our snapshot: %s", strerror(errno));
}

static void
replica_sync_decide(struct replica *r)
{
	struct sync_decision	d;
	uint8_t			need[REPLICA_MAX_MEMBERS];
	size_t			i;
	ssize_t			mine;

	for (i = 0; i < r->nmembers; i++) {
		if (!r->have[i])
			return;
	}
	r->decided = 1;
	r->round_epoch = r->prev_epoch_max + 1;
	if (sync_decide(r->got, r->nmembers, need, &d) == -1) {
		log_error("sync: cannot decide (%s); keeping our state",
		    strerror(errno));
		replica_sync_done(r);
		return;
	}
	r->source = r->got[d.source].node_id;
	if (d.ndivergent > 0)
		log_error("sync: DIVERGENCE: nodes %u and %u hold different "
		    "states at the same seq; node %u's history wins",
		    r->got[d.divergent_a].node_id,
		    r->got[d.divergent_b].node_id, r->source);
	for (i = 0; i < r->nmembers; i++)
		if (r->got[i].learner && need[i])
			log_info("sync: node %u has an empty state and joins as "
			    "a learner", r->got[i].node_id);
	mine = replica_member_index(r, r->me);
	if (r->source == r->me && d.nsnapshots > 0)
		replica_send_snapshot(r);
	if (mine >= 0 && need[mine]) {
		r->awaiting_snapshot = 1;
		log_info("sync: node %u has the newest state; waiting for its "
		    "snapshot", r->source);
		return;
	}
	replica_sync_done(r);
}

/* A request to sync again: corosync's quorum changed on a member, or some
 * members were silent. Same point of the stream everywhere. */
static void
replica_take_resync(struct replica *r, uint32_t from,
    const Haven__SyncState *s)
{
	size_t	i, j, n = 0;

	if (r->broken || s->n_round != r->nmembers || s->attempt != r->attempt)
		return;
	for (i = 0; i < s->n_round; i++)
		if (replica_member_index(r, s->round[i]) < 0)
			return;		/* another round's request */
	for (i = 0; i < s->n_silent; i++)
		if (s->silent[i] == r->me) {
			membership_restart(r->membership, "this host was "
			    "silent in a sync and was left out");
			r->syncing = 1;
			r->quorate = 0;
			return;
		}
	for (i = 0; i < r->nmembers; i++) {
		for (j = 0; j < s->n_silent; j++)
			if (s->silent[j] == r->members[i])
				break;
		if (j < s->n_silent) {
			log_warn("sync: node %u sent nothing for %d s: going on "
			    "without it (node %u asked)", r->members[i],
			    REPLICA_SYNC_TIMEOUT_MS / 1000, from);
			continue;
		}
		r->members[n++] = r->members[i];
	}
	r->nmembers = n;
	r->attempt++;
	replica_start_round(r);
}

static void
replica_take_sync_state(struct replica *r, uint32_t from,
    const Haven__SyncState *s)
{
	ssize_t	i = replica_member_index(r, from);

	if (s->resync) {
		replica_take_resync(r, from, s);
		return;
	}
	if (!r->syncing || r->decided || i < 0 || s->attempt != r->attempt ||
	    s->digest.len != CLUSTER_DIGEST_SIZE)
		return;
	r->got[i].node_id = from;
	r->got[i].epoch = 0;	/* one configuration: compare like with like */
	r->got[i].seq = s->seq;
	memcpy(r->got[i].digest, s->digest.data, CLUSTER_DIGEST_SIZE);
	r->got[i].last_quorate_epoch = s->last_quorate_epoch;
	r->got[i].learner = s->learner;
	r->got[i].vq_quorate = s->vq_quorate;
	r->got[i].vq_expected_hosts = s->vq_expected_hosts;
	r->got[i].vq_tie_breaker = s->vq_tie_breaker;
	r->got[i].protocol = s->protocol;
	if (s->epoch > r->prev_epoch_max)
		r->prev_epoch_max = s->epoch;
	r->have[i] = 1;
	replica_sync_decide(r);
}

/* Only the chosen source's snapshot of this round is adopted. */
static void
replica_take_snapshot(struct replica *r, uint32_t from,
    const Haven__Snapshot *s)
{
	uint8_t	digest[CLUSTER_DIGEST_SIZE];
	char	err[256];

	if (!r->awaiting_snapshot || s->state == NULL)
		return;
	if (from != r->source || (s->epoch != r->round_epoch && s->epoch != 0)) {
		log_warn("sync: ignoring a snapshot from node %u (epoch %llu): "
		    "waiting for node %u's of epoch %llu", from,
		    (unsigned long long)s->epoch, r->source,
		    (unsigned long long)r->round_epoch);
		return;
	}
	if (cluster_adopt(r->st, s->state, err, sizeof err) != CLUSTER_OK) {
		log_error("sync: node %u's snapshot refused: %s; leaving the "
		    "group to sync again", from, err);
		membership_restart(r->membership, "a refused snapshot");
		return;
	}
	cluster_digest(r->st, digest);
	if (s->digest.len != sizeof digest ||
	    memcmp(s->digest.data, digest, sizeof digest) != 0)
		log_error("sync: node %u's snapshot does not match its digest "
		    "(a member of another version?); adopted anyway", from);
	r->awaiting_snapshot = 0;
	log_info("sync: adopted node %u's state (seq %llu)", from,
	    (unsigned long long)r->st->cs->seq);
	replica_sync_done(r);
}

/* Apply a change in agreed order, persist it, and only then answer. */
static void
replica_apply(struct replica *r, uint32_t from, Haven__Change *c)
{
	char	err[256] = "", perr[256];
	int	result;

	result = cluster_apply(r->st, c, r->quorate, err, sizeof err);
	if (result == CLUSTER_OK &&
	    replica_persist(r, perr, sizeof perr) == -1) {
		result = CLUSTER_E_IO;
		snprintf(err, sizeof err, "this host could not persist the "
		    "change (%s) and leaves the cluster until it can", perr);
	} else if (result != CLUSTER_OK && result != CLUSTER_E_STALE)
		log_info("change from node %u refused: %s", from, err);
	if (r->cb->applied != NULL)
		r->cb->applied(r, c, result, err, r->arg);
}

static void
replica_take_change(struct replica *r, uint32_t from, Haven__Change *c)
{
	if (r->broken)
		return;
	if (r->syncing && r->decided) {
		/* Waiting for the snapshot: the others apply this on top
		 * of the state we are about to adopt, and so do we. */
		if (r->nheld == REPLICA_MAX_QUEUED) {
			membership_restart(r->membership, "too many changes "
			    "while waiting for the snapshot");
			return;
		}
		r->held[r->nheld++] = replica_copy_change(c);
		return;
	}
	if (r->syncing) {
		/* Sent in an earlier configuration, delivered before every
		 * state is in: every member drops it alike, and its origin
		 * sends it again once the sync ends. */
		if (c->origin == r->me && r->me != 0 &&
		    r->nqueued < REPLICA_MAX_QUEUED) {
			r->queued[r->nqueued++] = replica_copy_change(c);
			log_info("sync: our change %llu came during the sync; "
			    "sending it again after", (unsigned long long)
			    c->request_id);
		} else
			log_warn("dropping a change from node %u delivered "
			    "during sync (its origin sends it again)", from);
		return;
	}
	replica_apply(r, from, c);
}

/* A member (or its snapshot) that never came: name them in a resync. */
static void
replica_sync_timeout(void *arg)
{
	struct replica		*r = arg;
	Haven__SyncState	 s = HAVEN__SYNC_STATE__INIT;
	uint32_t		 silent[REPLICA_MAX_MEMBERS];
	size_t			 i, n = 0;

	if (!r->syncing || r->broken)
		return;
	if (r->awaiting_snapshot)
		silent[n++] = r->source;
	else if (!r->decided)
		for (i = 0; i < r->nmembers; i++)
			if (!r->have[i])
				silent[n++] = r->members[i];
	if (n == 0)
		return;
	s.resync = 1;
	s.node_id = r->me;
	s.attempt = r->attempt;
	s.round = r->members;
	s.n_round = r->nmembers;
	s.silent = silent;
	s.n_silent = n;
	if (replica_send(r, FRAME_SYNC_STATE, &s.base) == -1)
		log_warn("sync: asking to go on without silent members: %s",
		    strerror(errno));
	ev_timer_arm(r->sync_timer, REPLICA_SYNC_TIMEOUT_MS);
}

/* A message delivered in agreed order: sync traffic or a change. */
void
replica_on_message(struct replica *r, uint32_t from, const void *data,
    size_t len)
{
	struct frame_reader	*fr = frame_reader_new(64U << 20);
	struct frame		 f;
	ProtobufCMessage	*m;

	if (fr == NULL)
		return;
	if (frame_reader_feed(fr, data, len) == -1 ||
	    frame_reader_next(fr, &f) != 1) {
		log_warn("undecodable message of %zu bytes from node %u", len,
		    from);
		frame_reader_free(fr);
		return;
	}
	if ((m = message_decode(&f)) == NULL) {
		log_warn("message type %u from node %u does not decode",
		    f.type, from);
	} else {
		switch (f.type) {
		case FRAME_SYNC_STATE:
			replica_take_sync_state(r, from,
			    (Haven__SyncState *)m);
			break;
		case FRAME_SNAPSHOT:
			replica_take_snapshot(r, from, (Haven__Snapshot *)m);
			break;
		case FRAME_CHANGE:
			replica_take_change(r, from, (Haven__Change *)m);
			break;
		default:
			log_warn("unexpected message %s from node %u",
			    message_type_name(f.type), from);
			break;
		}
		message_free(m);
	}
	frame_release(&f);
	frame_reader_free(fr);
}

/* Send our SyncState for the round, with corosync's quorum as of now. */
static void
replica_start_round(struct replica *r)
{
	Haven__SyncState	 s = HAVEN__SYNC_STATE__INIT;
	struct membership_quorum q;
	struct sync_member	 mine;

	memset(r->have, 0, sizeof r->have);
	r->syncing = 1;
	r->decided = 0;
	r->awaiting_snapshot = 0;
	r->resync_asked = 0;
	r->prev_epoch_max = 0;
	for (; r->nheld > 0; r->nheld--)
		message_free(&r->held[r->nheld - 1]->base);
	if (membership_quorum_info(r->membership, &q) == -1)
		memset(&q, 0, sizeof q);	/* not quorate */
	sync_member_of(r->st, r->me, r->st->cs->epoch, &mine);
	s.node_id = r->me;
	s.epoch = r->st->cs->epoch;
	s.seq = mine.seq;
	s.digest.data = mine.digest;
	s.digest.len = sizeof mine.digest;
	s.last_quorate_epoch = mine.last_quorate_epoch;
	s.learner = mine.learner;
	s.vq_quorate = q.quorate;
	s.vq_expected_hosts = q.expected_hosts;
	s.vq_tie_breaker = q.tie_breaker;
	s.attempt = r->attempt;
	s.protocol = mine.protocol;
	r->sent_vq_quorate = q.quorate;
	ev_timer_arm(r->sync_timer, REPLICA_SYNC_TIMEOUT_MS);
	if (replica_send(r, FRAME_SYNC_STATE, &s.base) == -1)
		log_warn("sync: sending our state: %s", strerror(errno));
}

/* A CPG configuration change: every member starts a sync here, at the
 * same point of the message stream. */
void
replica_on_changed(struct replica *r, const uint32_t *members, size_t n)
{
	if (r->broken)
		return;		/* out of the group until it can persist */
	r->nmembers = n < REPLICA_MAX_MEMBERS ? n : REPLICA_MAX_MEMBERS;
	memcpy(r->members, members, r->nmembers * sizeof *members);
	r->me = membership_node_id(r->membership);
	r->attempt = 0;
	if (replica_member_index(r, r->me) < 0) {
		r->syncing = 1;	/* we left: wait to be a member again */
		r->quorate = 0;
		ev_timer_cancel(r->sync_timer);
		return;
	}
	replica_start_round(r);
}

/*
 * corosync's quorum changed on this host (votequorum's callback). If it
 * differs from what this member said in the current round (a witness's
 * vote came or went after the CPG change), every member syncs again, so
 * all decide from the same verdicts.
 */
void
replica_on_quorum(struct replica *r, int quorate)
{
	Haven__SyncState	s = HAVEN__SYNC_STATE__INIT;

	if (r->broken || r->resync_asked || r->nmembers == 0 ||
	    replica_member_index(r, r->me) < 0 ||
	    !membership_is_connected(r->membership) ||
	    (quorate != 0) == (r->sent_vq_quorate != 0))
		return;
	s.resync = 1;
	s.node_id = r->me;
	s.attempt = r->attempt;
	s.round = r->members;
	s.n_round = r->nmembers;
	if (replica_send(r, FRAME_SYNC_STATE, &s.base) == -1)
		log_warn("sync: asking for a new sync: %s", strerror(errno));
	else
		r->resync_asked = 1;
}

/*
 * Propose a change: multicast now, or after the running sync. The caller
 * gives up ownership of c. *request_id identifies the answer in the
 * applied callback. -1 with a sentence in err if refused here.
 */
int
replica_propose(struct replica *r, Haven__Change *c, uint64_t *request_id,
    char *err, size_t errlen)
{
	if (!membership_is_connected(r->membership)) {
		snprintf(err, errlen, "this host is not connected to corosync; "
		    "check 'corosync-quorumtool -s'");
		goto refuse;
	}
	if (r->broken) {
		snprintf(err, errlen, "this host cannot persist the cluster "
		    "state and is out of the cluster; see havend's log");
		goto refuse;
	}
	if (!r->syncing && !r->quorate) {
		snprintf(err, errlen, "this host's partition is not quorate: "
		    "changes are refused until it rejoins a majority");
		goto refuse;
	}
	if (replica_protocol_check(r, c, err, errlen) == -1)
		goto refuse;
	c->origin = membership_node_id(r->membership);
	c->request_id = ++r->next_request;
	c->timestamp_us = now_us();
	if (request_id != NULL)
		*request_id = c->request_id;
	if (r->syncing) {
		if (r->nqueued == REPLICA_MAX_QUEUED) {
			snprintf(err, errlen, "too many requests waiting for "
			    "the cluster to settle; try again");
			goto refuse;
		}
		r->queued[r->nqueued++] = c;
		return 0;
	}
	c->epoch = r->st->cs->epoch;
	if (replica_send(r, FRAME_CHANGE, &c->base) == -1) {
		snprintf(err, errlen, "multicast failed: %s", strerror(errno));
		goto refuse;
	}
	message_free(&c->base);
	return 0;
refuse:
	message_free(&c->base);
	return -1;
}

/*
 * This host lost a two-node fencing race: what its side changed since the
 * split must never win a sync. Its last-quorate epoch drops to 0, so the
 * winner's history (quorate more recently) is the source when they meet.
 */
void
replica_forget_quorum(struct replica *r)
{
	char	err[256];

	r->st->cs->last_quorate_epoch = 0;
	r->quorate = 0;
	if (cluster_save(r->st, r->dir, err, sizeof err) != CLUSTER_OK)
		log_error("persisting the cluster state: %s", err);
}

uint32_t
replica_protocol(const struct replica *r)
{
	return r->protocol;
}

uint32_t
replica_member_protocol(const struct replica *r, uint32_t node_id)
{
	ssize_t	 i = replica_member_index(r, node_id);

	return i < 0 || !r->have[i] ? 0 : protocol_of(r->got[i].protocol);
}

/*
 * Rolling upgrade (issue 17): a change the running protocol does not allow
 * is never proposed; the sentence names the member holding the cluster
 * back (the lowest node id of those below what c needs) and what c uses.
 */
int
replica_protocol_check(const struct replica *r, const Haven__Change *c,
    char *err, size_t errlen)
{
	const Haven__Host	*host;
	char			 what[128], name[80];
	uint32_t		 need;
	size_t			 i;

	if ((need = protocol_change_needs(c, what, sizeof what)) <= r->protocol)
		return 0;
	snprintf(name, sizeof name, "a member");
	for (i = 0; i < r->nmembers; i++) {
		if (protocol_of(r->got[i].protocol) >= need)
			continue;
		if ((host = cluster_host(r->st, r->got[i].node_id)) != NULL)
			snprintf(name, sizeof name, "host %.63s",
			    host->config->name);
		else
			snprintf(name, sizeof name, "node %u",
			    r->got[i].node_id);
		break;
	}
	snprintf(err, errlen, "%s runs protocol %u; upgrade it before using "
	    "%s (it needs protocol %u; 'havenctl node list' shows each "
	    "host's)", name, r->protocol, what, need);
	return -1;
}

const struct cluster *
replica_state(const struct replica *r)
{
	return r->st;
}

int
replica_is_quorate(const struct replica *r)
{
	return !r->syncing && r->quorate;
}

const uint32_t *
replica_members(const struct replica *r, size_t *n)
{
	*n = r->nmembers;
	return r->members;
}

/* Load the persisted state from dir, or start empty. */
struct replica *
replica_new(struct membership *m, const char *dir,
    const struct replica_callbacks *cb, void *arg, char *err, size_t errlen)
{
	struct replica	*r;
	int		 rc;

	if ((r = calloc(1, sizeof *r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->membership = m;
	r->cb = cb;
	r->arg = arg;
	r->syncing = 1;		/* until the first configuration */
	r->protocol = HAVEN_PROTOCOL_OLDEST;	/* until the first sync */
	snprintf(r->dir, sizeof r->dir, "%s", dir);
	r->sync_timer = ev_timer_new(membership_event_base(m), 0, 0,
	    replica_sync_timeout, r);
	r->persist_timer = ev_timer_new(membership_event_base(m), 0, 0,
	    replica_persist_retry, r);
	if (r->sync_timer == NULL || r->persist_timer == NULL) {
		snprintf(err, errlen, "out of memory");
		replica_free(r);
		return NULL;
	}
	rc = cluster_load(dir, &r->st, err, errlen);
	if (rc == CLUSTER_E_IO && errno == ENOENT) {
		r->st = cluster_new();
		log_info("no cluster state in %s yet: starting empty", dir);
	} else if (rc != CLUSTER_OK) {
		replica_free(r);
		return NULL;
	}
	if (r->st == NULL) {
		snprintf(err, errlen, "out of memory");
		replica_free(r);
		return NULL;
	}
	return r;
}

void
replica_free(struct replica *r)
{
	size_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nqueued; i++)
		message_free(&r->queued[i]->base);
	for (i = 0; i < r->nheld; i++)
		message_free(&r->held[i]->base);
	ev_timer_free(r->sync_timer);
	ev_timer_free(r->persist_timer);
	cluster_free(r->st);
	free(r);
}
