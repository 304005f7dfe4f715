/*
 * Moving a VM whose host alone lost its storage (issue 20, deliverable 2),
 * the coordinator's job: when a VM's owner has reported one of the VM's
 * pools unreachable for storage_timeout_s (clusterd/health.c) while another
 * member reaches it, fence the owner off the VM's volumes (its PR key
 * preempted there, fence/level_storage.c, the storage fence level on those
 * volumes only), then record the VM failed there; the reconcile restarts
 * it on a host that reaches the pool (coordinator.c) with generation + 1
 * and the lease, as after any failure, and the owner's havend stops its
 * worker. When no member reaches the pool, nothing moves.
 *
 * Why the fence first: the owner's worker is paused on its failed I/O and
 * may resume when its storage returns (worker/); with its key preempted it
 * cannot write, whatever its havend does, before the VM starts elsewhere.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fence.h"
#include "havend.h"
#include "storage.h"

struct havend_storage_move {
	struct havend		*h;
	char			 vm[64];
	uint64_t		 generation;
	uint32_t		 host;		/* the owner that lost it */
	uint32_t		 witness;	/* a member that reaches it */
	char			 pool[64];
	uint64_t		 lost_for_s;
	struct fence_storage	*fs;
	int			 finished;	/* the fence reported */
	int			 fenced;	/* ... and succeeded */
	uint64_t		 failed_ms;	/* when it failed (retry) */
	uint64_t		 proposed_ms;	/* the VM's failure proposed */
	char			 detail[256];	/* the fence's summary */
};

/* A proposal of the VM's failure not applied by then goes out again (a
 * configuration change may have dropped it). */
#define STORAGE_MOVE_RESEND_MS	5000
/* A host that reaches the pool again after an outage is a witness against
 * another that does not only after this: longer than the others need to
 * see the pool back (reach.c: two answers, 1-2 s). */
#define STORAGE_WITNESS_MS	15000

static int
storage_is_member(const uint32_t *members, size_t n, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (members[i] == id)
			return 1;
	return 0;
}

/*
 * A quorate member other than host that reaches pool, and has since before
 * host lost it (lost_since_us) or for STORAGE_WITNESS_MS at least; 0: none.
 * The end of an outage of the whole SAN is seen by the hosts a second or
 * two apart: the first to see it back is no witness against the others,
 * whose reports follow (lab.san-freeze moved a VM before this rule).
 */
static uint32_t
storage_witness(const struct cluster *st, const uint32_t *members, size_t n,
    uint32_t host, const char *pool, uint64_t lost_since_us, uint64_t now,
    uint64_t *qualifies_us)
{
	const Haven__Host	*h;
	const Haven__PoolHealth	*ph;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		if (members[i] == host ||
		    (h = cluster_host(st, members[i])) == NULL ||
		    h->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER)
			continue;
		for (j = 0; j < h->runtime->n_storage; j++) {
			ph = h->runtime->storage[j];
			if (!ph->reachable || strcmp(ph->pool, pool) != 0)
				continue;
			if (ph->since_us <= lost_since_us || now >=
			    ph->since_us + STORAGE_WITNESS_MS * UINT64_C(1000))
				return members[i];
			/* Not yet: it will be then (the caller wakes). */
			if (ph->since_us + STORAGE_WITNESS_MS * UINT64_C(1000) <
			    *qualifies_us)
				*qualifies_us = ph->since_us +
				    STORAGE_WITNESS_MS * UINT64_C(1000);
		}
	}
	return 0;
}

static void
storage_move_free(struct havend_storage_move *m)
{
	fence_storage_free(m->fs);
	free(m);
}

/* The VM, failed at its generation: the reconcile places it elsewhere. */
static void
storage_move_fail_vm(struct havend_storage_move *m, const char *detail)
{
	Haven__Change		*c = havend_change_new();
	Haven__VmTransition	*t = calloc(1, sizeof *t);
	char			 err[256], text[400];
	uint64_t		 id;

	if (t == NULL)
		abort();
	haven__vm_transition__init(t);
	/* The event keeps 160 bytes: the fence's own words are in the log. */
	(void)detail;
	snprintf(text, sizeof text, "host %u lost pool %.48s %llu s ago, host "
	    "%u reaches it: fenced off its volumes, restarting elsewhere",
	    m->host, m->pool, (unsigned long long)m->lost_for_s, m->witness);
	t->name = strdup(m->vm);
	t->generation = m->generation;
	t->phase = HAVEN__VM_PHASE__VM_PHASE_FAILED;
	t->detail = strdup(text);
	c->kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c->vm_transition = t;
	m->proposed_ms = ev_now_ms();
	if (replica_propose(m->h->replica, c, &id, err, sizeof err) == -1)
		log_warn("storage: VM %s: %s", m->vm, err);
	ev_timer_arm(m->h->storage_timer, STORAGE_MOVE_RESEND_MS);
}

static void
storage_move_fenced(int result, const char *detail, void *arg)
{
	struct havend_storage_move	*m = arg;

	m->finished = 1;
	if (result != 0) {
		m->failed_ms = ev_now_ms();
		log_warn("storage: VM %s: fencing host %u off its volumes "
		    "failed: %s; trying again in %d s", m->vm, m->host, detail,
		    HAVEND_FENCE_RETRY_MS / 1000);
		ev_timer_arm(m->h->storage_timer, HAVEND_FENCE_RETRY_MS);
		return;
	}
	m->fenced = 1;
	snprintf(m->detail, sizeof m->detail, "%s", detail);
	log_warn("storage: VM %s: host %u fenced off its volumes (%s); "
	    "restarting it elsewhere", m->vm, m->host, detail);
	storage_move_fail_vm(m, detail);
}

/* Fence m->host off vm's volumes (their URLs, as havend_spawn makes them). */
static int
storage_move_start(struct havend *h, struct havend_storage_move *m,
    const Haven__Vm *vm)
{
	const struct cluster	*st = replica_state(h->replica);
	char			*urls[8];
	size_t			 i, n = 0;

	for (i = 0; i < vm->config->n_volumes && n < 8; i++) {
		const Haven__VolumeConfig	*v = cluster_volume(st,
						    vm->config->volumes[i]);
		const Haven__PoolConfig		*p = v != NULL ?
						    cluster_pool(st, v->pool) : NULL;

		if (p != NULL && asprintf(&urls[n], "iscsi://%s/%s/%u",
		    p->portal, p->target, v->lun) != -1)
			n++;
	}
	fence_storage_free(m->fs);
	m->finished = m->fenced = 0;
	m->fs = n == 0 ? NULL : fence_storage_start(h->base, h->initiator,
	    pr_key(h->config.cluster_name, h->node_id),
	    pr_key(h->config.cluster_name, m->host), (const char *const *)urls,
	    n, storage_move_fenced, m);
	while (n > 0)
		free(urls[--n]);
	if (m->fs == NULL) {
		log_warn("storage: VM %s: cannot fence host %u off its volumes "
		    "now: %s", m->vm, m->host, strerror(errno));
		return -1;
	}
	log_warn("storage: VM %s: host %u lost pool %s %llu s ago while host "
	    "%u reaches it; fencing host %u off the VM's volumes", m->vm,
	    m->host, m->pool, (unsigned long long)m->lost_for_s, m->witness,
	    m->host);
	return 0;
}

/* Whether vm should leave its owner now (see the top); when not yet, the
 * moment it will into *deadline_us. Fills m's host, witness, pool. */
static int
storage_move_due(struct havend *h, const Haven__Vm *vm,
    const uint32_t *members, size_t n, uint64_t now,
    struct havend_storage_move *m, uint64_t *deadline_us)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__VmRuntime	*rt = vm->runtime;
	const Haven__Host	*owner;
	const Haven__PoolHealth	*ph;
	uint64_t		 timeout = (uint64_t)CLUSTER_STORAGE_TIMEOUT_S(
				    st->cs->settings) * 1000000;

	if (rt->desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ||
	    (rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STARTING) ||
	    !storage_is_member(members, n, rt->owner) ||
	    /* The coordinator cannot fence itself through a pool it lost
	     * (havend.8 says so); its VMs wait for another coordinator. */
	    rt->owner == h->node_id ||
	    (owner = cluster_host(st, rt->owner)) == NULL ||
	    (ph = tree_storage_lost(st->cs, owner, vm->config)) == NULL)
		return 0;
	/* Every member lost it: nowhere better; it waits (deliverable 3). */
	if ((m->witness = storage_witness(st, members, n, rt->owner,
	    ph->pool, ph->since_us, now, deadline_us)) == 0)
		return 0;	/* *deadline_us: when a witness qualifies */
	if (now < ph->since_us + timeout) {
		*deadline_us = ph->since_us + timeout;
		return 0;
	}
	m->host = rt->owner;
	m->lost_for_s = (now - ph->since_us) / 1000000;
	snprintf(m->pool, sizeof m->pool, "%s", ph->pool);
	return 1;
}

/* Drop the moves the state has left behind: the VM gone, moved on, or
 * back on storage. */
static void
storage_moves_sweep(struct havend *h)
{
	const struct cluster		*st = replica_state(h->replica);
	struct havend_storage_move	*m;
	const Haven__Vm			*vm;
	size_t				 i = 0;

	while (i < h->nstorage_moves) {
		m = h->storage_moves[i];
		vm = cluster_vm(st, m->vm);
		if (vm != NULL && vm->runtime->generation == m->generation &&
		    vm->runtime->owner == m->host) {
			i++;
			continue;
		}
		storage_move_free(m);
		h->storage_moves[i] = h->storage_moves[--h->nstorage_moves];
	}
}

/*
 * The coordinator's pass, from havend_reconcile: start fencing the owners
 * of the VMs that are due, and wake again when the next one will be.
 */
void
havend_storage_moves(struct havend *h)
{
	const struct cluster		*st = replica_state(h->replica);
	const uint32_t			*members;
	struct havend_storage_move	 due, *m;
	uint64_t			 now = now_us(), next = UINT64_MAX, d;
	size_t				 i, j, n;

	storage_moves_sweep(h);
	members = replica_members(h->replica, &n);
	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__Vm	*vm = st->cs->vms[i];

		memset(&due, 0, sizeof due);
		d = UINT64_MAX;
		if (!storage_move_due(h, vm, members, n, now, &due, &d)) {
			if (d < next)
				next = d;
			continue;
		}
		for (j = 0; j < h->nstorage_moves; j++)
			if (strcmp(h->storage_moves[j]->vm,
			    vm->config->name) == 0)
				break;
		if (j < h->nstorage_moves) {
			m = h->storage_moves[j];
			/* Fenced, its failure not in the state yet: again. */
			if (m->fenced && ev_now_ms() - m->proposed_ms >=
			    STORAGE_MOVE_RESEND_MS)
				storage_move_fail_vm(m, m->detail);
			/* Under way, done, or failed a moment ago. */
			if (!m->finished || m->fenced)
				continue;
			if (ev_now_ms() - m->failed_ms < HAVEND_FENCE_RETRY_MS) {
				d = (HAVEND_FENCE_RETRY_MS - (ev_now_ms() -
				    m->failed_ms)) * UINT64_C(1000) + now;
				if (d < next)
					next = d;
				continue;
			}
		} else if (h->nstorage_moves == HAVEND_MAX_STORAGE_MOVES) {
			continue;
		} else {
			m = xcalloc(1, sizeof *m);
			m->h = h;
			snprintf(m->vm, sizeof m->vm, "%s", vm->config->name);
			m->generation = vm->runtime->generation;
			h->storage_moves[h->nstorage_moves++] = m;
		}
		m->host = due.host;
		m->witness = due.witness;
		m->lost_for_s = due.lost_for_s;
		snprintf(m->pool, sizeof m->pool, "%s", due.pool);
		if (storage_move_start(h, m, vm) == -1) {
			m->finished = 1;
			m->failed_ms = ev_now_ms();
		}
	}
	if (next != UINT64_MAX)
		ev_timer_arm(h->storage_timer, (next - now) / 1000 + 1);
}

/* Not the coordinator (any more): abandon every move under way. */
void
havend_storage_moves_cancel(struct havend *h)
{
	while (h->nstorage_moves > 0)
		storage_move_free(h->storage_moves[--h->nstorage_moves]);
}

void
havend_storage_timer_cb(void *arg)
{
	havend_reconcile(arg);
}
