/*
 * The sync decision on a CPG configuration change (DESIGN §5): from every
 * member's (seq, digest, last-quorate epoch, learner), pick the one source
 * all members agree on and say who must adopt its snapshot; and whether the
 * configuration may change the state (corosync's quorum, as every member
 * reported it, and the hosts the state knows). Pure: no I/O.
 */
#include <errno.h>
#include <string.h>

#include "clusterd.h"
#include "proto.h"

/* Whether a is a better source than b: highest last-quorate epoch, then
 * highest seq, then lowest node id. */
static int
better(const struct sync_member *a, const struct sync_member *b)
{
	if (a->last_quorate_epoch != b->last_quorate_epoch)
		return a->last_quorate_epoch > b->last_quorate_epoch;
	if (a->seq != b->seq)
		return a->seq > b->seq;
	return a->node_id < b->node_id;
}

int
sync_decide(const struct sync_member *m, size_t n, uint8_t *needs_snapshot,
    struct sync_decision *d)
{
	size_t	 i, j, source = 0;

	memset(d, 0, sizeof *d);
	if (n == 0 || m == NULL || needs_snapshot == NULL) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (m[i].node_id == 0 || m[i].epoch != m[0].epoch) {
			errno = EINVAL;
			return -1;
		}
		for (j = 0; j < i; j++)
			if (m[j].node_id == m[i].node_id) {
				errno = EINVAL;
				return -1;
			}
	}
	/* A learner (empty state) is a source only among learners: a host
	 * that lost its state never overwrites a populated cluster. */
	for (i = 0; i < n; i++)
		if (!m[i].learner) {
			source = i;
			break;
		}
	for (i = 0; i < n; i++)
		if (m[i].learner == m[source].learner &&
		    better(&m[i], &m[source]))
			source = i;
	d->source = source;
	d->needs_snapshot = needs_snapshot;
	for (i = 0; i < n; i++) {
		needs_snapshot[i] = i != source && (m[i].seq != m[source].seq ||
		    memcmp(m[i].digest, m[source].digest,
		    CLUSTER_DIGEST_SIZE) != 0);
		if (needs_snapshot[i])
			d->nsnapshots++;
		for (j = 0; j < i; j++) {
			if (m[i].seq != m[j].seq || memcmp(m[i].digest,
			    m[j].digest, CLUSTER_DIGEST_SIZE) == 0)
				continue;
			if (d->ndivergent++ == 0) {
				d->divergent_a = j;
				d->divergent_b = i;
			}
		}
	}
	return 0;
}

/*
 * Whether the configuration may change the state. Every member decides it
 * alike from what it received: the members' SyncStates and the hosts the
 * state knows once the sync has ended (the source's).
 *  - corosync must say quorate on every member (votequorum: votes,
 *    two_node, a qdevice witness, auto_tie_breaker);
 *  - of the hosts the state knows, the members must be a strict majority,
 *    or exactly half where corosync breaks ties (two_node, a witness,
 *    auto_tie_breaker): hosts the cluster never knew make no majority;
 *  - a state that knows no host yet (a new cluster) needs a strict
 *    majority of corosync's expected hosts, so one empty host alone never
 *    starts a history of its own.
 */
int
sync_quorate(const struct sync_member *m, size_t n, const uint32_t *known,
    size_t nknown)
{
	size_t		i, j, k = 0;
	uint32_t	expected = 0;
	int		tie = 1;

	if (n == 0 || m == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (!m[i].vq_quorate)
			return 0;
		if (!m[i].vq_tie_breaker)
			tie = 0;
		if (m[i].vq_expected_hosts > expected)
			expected = m[i].vq_expected_hosts;
	}
	if (nknown == 0)
		return n * 2 > expected;
	for (i = 0; i < n; i++)
		for (j = 0; j < nknown; j++)
			if (m[i].node_id == known[j]) {
				k++;
				break;
			}
	if (k * 2 > nknown)
		return 1;
	return tie && k > 0 && k * 2 == nknown;
}

void
sync_member_of(const struct cluster *st, uint32_t node_id, uint64_t epoch,
    struct sync_member *m)
{
	memset(m, 0, sizeof *m);
	m->node_id = node_id;
	m->epoch = epoch;
	m->seq = st->cs->seq;
	m->last_quorate_epoch = st->cs->last_quorate_epoch;
	m->learner = st->cs->seq == 0;
	m->protocol = HAVEN_PROTOCOL;
	cluster_digest(st, m->digest);
}

uint32_t
sync_protocol(const struct sync_member *m, size_t n)
{
	uint32_t	 p = HAVEN_PROTOCOL;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (protocol_of(m[i].protocol) < p)
			p = protocol_of(m[i].protocol);
	return p;
}
