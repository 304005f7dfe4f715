/*
 * This host's replica of the cluster state (DESIGN §5), driven by CPG: on
 * every configuration change the members exchange (seq, digest,
 * last-quorate epoch), all pick the same source, and members that differ
 * adopt its snapshot; changes are multicast in agreed order, applied by
 * every member, persisted, and only then answered.
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

struct replica {
	struct membership	*membership;
	struct cluster		*st;
	char			 dir[256];
	const struct replica_callbacks *cb;
	void			*arg;
	uint32_t		 me;

	uint32_t		 members[REPLICA_MAX_MEMBERS];
	size_t			 nmembers;
	int			 syncing;
	struct sync_member	 got[REPLICA_MAX_MEMBERS];
	uint8_t			 have[REPLICA_MAX_MEMBERS];
	uint64_t		 prev_epoch_max;
	int			 awaiting_snapshot;
	int			 quorate;	/* of the configuration, at sync */

	uint64_t		 next_request;
	Haven__Change		*queued[REPLICA_MAX_QUEUED];
	size_t			 nqueued;
};


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

static void
replica_persist(struct replica *r)
{
	char	err[256];

	if (cluster_save(r->st, r->dir, err, sizeof err) != CLUSTER_OK)
		log_error("persisting the cluster state: %s", err);
}

/*
 * Whether the configuration may change the state. Every member decides
 * the same from the same state and member list (votequorum's own flag can
 * reach members at different points of the message stream): a strict
 * majority of the hosts the state knows, or of the members if it knows
 * fewer.
 */
static int
replica_config_quorate(const struct replica *r)
{
	size_t	hosts = r->st->cs->n_hosts;

	if (hosts < r->nmembers)
		hosts = r->nmembers;
	return r->nmembers * 2 > hosts;
}

static void
replica_sync_done(struct replica *r)
{
	size_t	i;

	r->syncing = 0;
	r->quorate = replica_config_quorate(r);
	cluster_set_epoch(r->st, r->prev_epoch_max + 1, r->quorate);
	replica_persist(r);
	log_info("synced: epoch %llu, seq %llu, %s with %zu members",
	    (unsigned long long)r->st->cs->epoch,
	    (unsigned long long)r->st->cs->seq,
	    r->quorate ? "quorate" : "NOT quorate", r->nmembers);
	/* Requests made during the sync go out now. */
	for (i = 0; i < r->nqueued; i++) {
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
replica_sync_decide(struct replica *r)
{
	struct sync_decision	d;
	uint8_t			need[REPLICA_MAX_MEMBERS];
	Haven__Snapshot		snap = HAVEN__SNAPSHOT__INIT;
	uint8_t			digest[CLUSTER_DIGEST_SIZE];
	size_t			i;
	ssize_t			mine;

	for (i = 0; i < r->nmembers; i++) {
		if (!r->have[i])
			return;
	}
	if (sync_decide(r->got, r->nmembers, need, &d) == -1) {
		log_error("sync: cannot decide (%s); keeping our state",
		    strerror(errno));
		replica_sync_done(r);
		return;
	}
	if (d.ndivergent > 0)
		log_error("sync: DIVERGENCE: nodes %u and %u hold different "
		    "states at the same seq; node %u's history wins",
		    r->got[d.divergent_a].node_id,
		    r->got[d.divergent_b].node_id, r->got[d.source].node_id);
	mine = replica_member_index(r, r->me);
	if (r->got[d.source].node_id == r->me && d.nsnapshots > 0) {
		cluster_digest(r->st, digest);
		snap.source = r->me;
		snap.state = r->st->cs;
		snap.digest.data = digest;
		snap.digest.len = sizeof digest;
		if (replica_send(r, FRAME_SNAPSHOT, &snap.base) == -1)
			log_error("sync: sending our snapshot: %s",
			    strerror(errno));
	}
	if (mine >= 0 && need[mine]) {
		r->awaiting_snapshot = 1;
		log_info("sync: node %u has the newest state; waiting for its "
		    "snapshot", r->got[d.source].node_id);
		return;
	}
	replica_sync_done(r);
}

static void
replica_take_sync_state(struct replica *r, uint32_t from,
    const Haven__SyncState *s)
{
	ssize_t	i = replica_member_index(r, from);

	if (!r->syncing || i < 0 || s->digest.len != CLUSTER_DIGEST_SIZE)
		return;
	r->got[i].node_id = from;
	r->got[i].epoch = 0;	/* one configuration: compare like with like */
	r->got[i].seq = s->seq;
	memcpy(r->got[i].digest, s->digest.data, CLUSTER_DIGEST_SIZE);
	r->got[i].last_quorate_epoch = s->last_quorate_epoch;
	if (s->epoch > r->prev_epoch_max)
		r->prev_epoch_max = s->epoch;
	r->have[i] = 1;
	replica_sync_decide(r);
}

static void
replica_take_snapshot(struct replica *r, const Haven__Snapshot *s)
{
	char	err[256];

	if (!r->awaiting_snapshot || s->state == NULL)
		return;
	if (cluster_adopt(r->st, s->state, err, sizeof err) != CLUSTER_OK) {
		log_error("sync: node %u's snapshot refused: %s", s->source, err);
		return;
	}
	r->awaiting_snapshot = 0;
	log_info("sync: adopted node %u's state (seq %llu)", s->source,
	    (unsigned long long)r->st->cs->seq);
	replica_sync_done(r);
}

static void
replica_take_change(struct replica *r, uint32_t from, Haven__Change *c)
{
	char	err[256] = "";
	int	result;

	if (r->syncing) {
		/* Sent in an earlier configuration; everyone drops it alike. */
		log_warn("dropping a change from node %u delivered during sync",
		    from);
		return;
	}
	result = cluster_apply(r->st, c, r->quorate, err, sizeof err);
	if (result == CLUSTER_OK)
		replica_persist(r);
	else if (result != CLUSTER_E_STALE)
		log_info("change from node %u refused: %s", from, err);
	if (r->cb->applied != NULL)
		r->cb->applied(r, c, result, err, r->arg);
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
			replica_take_snapshot(r, (Haven__Snapshot *)m);
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

/* A CPG configuration change: every member starts a sync here, at the
 * same point of the message stream. */
void
replica_on_changed(struct replica *r, const uint32_t *members, size_t n)
{
	Haven__SyncState	s = HAVEN__SYNC_STATE__INIT;
	struct sync_member	mine;

	r->nmembers = n < REPLICA_MAX_MEMBERS ? n : REPLICA_MAX_MEMBERS;
	memcpy(r->members, members, r->nmembers * sizeof *members);
	memset(r->have, 0, sizeof r->have);
	r->syncing = 1;
	r->awaiting_snapshot = 0;
	r->prev_epoch_max = 0;
	r->me = membership_node_id(r->membership);
	sync_member_of(r->st, r->me, r->st->cs->epoch, &mine);
	s.node_id = r->me;
	s.epoch = r->st->cs->epoch;
	s.seq = mine.seq;
	s.digest.data = mine.digest;
	s.digest.len = sizeof mine.digest;
	s.last_quorate_epoch = mine.last_quorate_epoch;
	if (replica_send(r, FRAME_SYNC_STATE, &s.base) == -1)
		log_warn("sync: sending our state: %s", strerror(errno));
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
	if (!r->syncing && !r->quorate) {
		snprintf(err, errlen, "this host's partition is not quorate: "
		    "changes are refused until it rejoins a majority");
		goto refuse;
	}
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
	snprintf(r->dir, sizeof r->dir, "%s", dir);
	rc = cluster_load(dir, &r->st, err, errlen);
	if (rc == CLUSTER_E_IO && errno == ENOENT) {
		r->st = cluster_new();
		log_info("no cluster state in %s yet: starting empty", dir);
	} else if (rc != CLUSTER_OK) {
		free(r);
		return NULL;
	}
	if (r->st == NULL) {
		snprintf(err, errlen, "out of memory");
		free(r);
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
	cluster_free(r->st);
	free(r);
}
