/*
 * Fencing lost hosts, the coordinator's job (DESIGN §4): which hosts are
 * lost (a host up in corosync whose havend restarts gets a grace), running
 * this host's fence levels on them (fencer.c) and recording the outcome;
 * in a two-node race (two_node, no witness), who goes first, and leaving
 * when the other side won.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "havend.h"

/* --- fencing lost hosts (the coordinator's job, DESIGN §4) --------------- */

/* The volumes of the cluster, as the URLs the fence levels preempt on:
 * every one of them, however many (free with havend_volume_urls_free). */
static char **
havend_volume_urls(struct havend *h, size_t *np)
{
	const struct cluster	*st = replica_state(h->replica);
	char			**urls;
	size_t			 i, n = 0;

	if ((urls = calloc(st->cs->n_volumes + 1, sizeof *urls)) == NULL)
		return NULL;
	for (i = 0; i < st->cs->n_volumes; i++) {
		const Haven__VolumeConfig	*v = st->cs->volumes[i];
		const Haven__PoolConfig		*p = cluster_pool(st, v->pool);

		if (p == NULL)
			continue;
		if (asprintf(&urls[n], "iscsi://%s/%s/%u",
		    havend_pool_portal(h, p), p->target, v->lun) == -1) {
			urls[n] = NULL;
			while (n > 0)
				free(urls[--n]);
			free(urls);
			return NULL;
		}
		n++;
	}
	*np = n;
	return urls;
}

static void
havend_volume_urls_free(char **urls, size_t n)
{
	while (urls != NULL && n > 0)
		free(urls[--n]);
	free(urls);
}

/* VMs the state gives to node that run or move. */
static size_t
havend_active_vms(const struct cluster *st, uint32_t node)
{
	size_t	i, n = 0;

	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = st->cs->vms[i]->runtime;

		if (rt->owner == node &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
			n++;
	}
	return n;
}

/*
 * Whether fencing victim is a two-node race: corosync keeps both halves
 * of a two_node cluster quorate after a link cut, and no witness voted.
 * Then both sides fence; the one that runs more VMs (else the lower node
 * id) goes first, so a split moves no VM (fencer.c has the argument).
 */
static int
havend_fence_race(struct havend *h, uint32_t victim)
{
	const struct cluster	*st = replica_state(h->replica);
	struct membership_quorum q;
	size_t			 mine, theirs, n;

	(void)replica_members(h->replica, &n);
	if (membership_quorum_info(h->membership, &q) == -1 || !q.two_node ||
	    q.witness_vote || n * 2 > st->cs->n_hosts)
		return FENCER_RACE_NONE;
	mine = havend_active_vms(st, h->node_id);
	theirs = havend_active_vms(st, victim);
	if (mine != theirs)
		return mine > theirs ? FENCER_RACE_FAVOURED : FENCER_RACE_OTHER;
	return h->node_id < victim ? FENCER_RACE_FAVOURED : FENCER_RACE_OTHER;
}

void
havend_fence_retry_cb(void *arg)
{
	havend_reconcile(arg);
}

/* Start fencing every lost host that is not fenced yet. */
void
havend_fence_lost(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	char			**urls;
	uint64_t		 now = ev_now_ms();
	size_t			 i, j, n;

	for (i = 0; i < st->cs->n_hosts; i++) {
		const Haven__Host	*host = st->cs->hosts[i];
		Haven__FenceStatus	 fs = host->runtime->fence;

		if (host->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST ||
		    (fs != HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING &&
		    fs != HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED) ||
		    fencer_busy(h->fencer, host->config->node_id))
			continue;
		for (j = 0; j < h->nfence_failed; j++)
			if (h->fence_failed[j].node_id == host->config->node_id)
				break;
		if (j < h->nfence_failed && now - h->fence_failed[j].at_ms <
		    HAVEND_FENCE_RETRY_MS) {
			ev_timer_arm(h->fence_retry_timer, HAVEND_FENCE_RETRY_MS -
			    (now - h->fence_failed[j].at_ms));
			continue;
		}
		n = 0;
		if ((urls = havend_volume_urls(h, &n)) == NULL ||
		    fencer_start(h->fencer, h->node_id, host->config->node_id,
		    host->config->name, host->runtime->lost_at_us,
		    (const char *const *)urls, n,
		    havend_fence_race(h, host->config->node_id)) == -1)
			log_warn("cannot fence node %u now: %s",
			    host->config->node_id, strerror(errno));
		havend_volume_urls_free(urls, n);
	}
}

void
havend_fenced(struct fencer *f, uint32_t victim, int fenced, const char *level,
    const char *detail, void *arg)
{
	struct havend	*h = arg;
	Haven__Change	*c = havend_change_new();
	Haven__HostFence *hf = calloc(1, sizeof *hf);
	char		 err[256];
	uint64_t	 id;
	size_t		 j;

	if (hf == NULL)
		abort();
	if (fenced == FENCER_LOST) {
		struct vmworker	*w;

		free(hf);
		message_free(&c->base);
		log_warn("this host (node %u) lost the two-node fencing race "
		    "(%s): stopping its VMs and havend; node %u runs the "
		    "cluster. Restart havend once the link is back to rejoin",
		    h->node_id, detail, victim);
		for (w = supervisor_first(h->supervisor); w != NULL;
		    w = supervisor_next(w))
			if (vmworker_alive(w))
				supervisor_kill(h->supervisor, vmworker_uuid(w));
		replica_forget_quorum(h->replica);
		h->exit_code = 1;
		event_base_loopbreak(h->base);
		return;
	}
	if (fenced)
		log_info("node %u fenced by level %s: %s", victim, level, detail);
	else
		log_warn("node %u NOT fenced, every level failed: %s", victim,
		    detail);
	haven__host_fence__init(hf);
	hf->node_id = victim;
	hf->status = fenced ? HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED :
	    HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED;
	hf->level = strdup(level);
	hf->detail = strdup(detail);
	c->kind_case = HAVEN__CHANGE__KIND_HOST_FENCE;
	c->host_fence = hf;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_warn("recording the fencing of node %u: %s", victim, err);
	for (j = 0; j < h->nfence_failed; j++)
		if (h->fence_failed[j].node_id == victim)
			break;
	if (fenced) {
		if (j < h->nfence_failed)
			h->fence_failed[j] = h->fence_failed[--h->nfence_failed];
		return;
	}
	if (j == h->nfence_failed && j < HAVEND_MAX_MEMBERS)
		h->nfence_failed++;
	if (j < HAVEND_MAX_MEMBERS) {
		h->fence_failed[j].node_id = victim;
		h->fence_failed[j].at_ms = ev_now_ms();
	}
	ev_timer_arm(h->fence_retry_timer, HAVEND_FENCE_RETRY_MS);
}

/* Hosts up in corosync though their havend left the CPG group (it
 * restarts): present for HAVEND_DAEMON_GRACE_MS, then lost like any other.
 * A timer runs the reconcile again when the grace ends. */
size_t
havend_present(struct havend *h, const uint32_t *members, size_t n,
    uint32_t *present)
{
	uint64_t	 now = ev_now_ms();
	size_t		 i, j, np = 0, na = 0;
	int		 in_cpg;

	for (i = 0; i < h->nmembers; i++) {
		in_cpg = 0;
		for (j = 0; j < n; j++)
			if (members[j] == h->members[i])
				in_cpg = 1;
		if (in_cpg) {
			present[np++] = h->members[i];
			continue;
		}
		for (j = 0; j < h->nabsent; j++)
			if (h->absent[j].node_id == h->members[i])
				break;
		if (j == h->nabsent) {
			h->absent[j].node_id = h->members[i];
			h->absent[j].since_ms = now;
			log_info("node %u is up but its havend is not in the "
			    "group; waiting %d s before declaring it lost",
			    h->members[i], HAVEND_DAEMON_GRACE_MS / 1000);
			ev_timer_arm(h->grace_timer, HAVEND_DAEMON_GRACE_MS);
		}
		if (now - h->absent[j].since_ms < HAVEND_DAEMON_GRACE_MS)
			present[np++] = h->members[i];
		h->absent[na++] = h->absent[j];
	}
	h->nabsent = na;	/* nodes back in the group or gone are dropped */
	return np;
}

void
havend_grace_cb(void *arg)
{
	havend_reconcile(arg);
}
