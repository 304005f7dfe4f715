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
 * Killing the worker is not enough: writes queued in its sockets may still
 * reach the target after the VM started elsewhere.
 *
 * The fence is ordered through the replicated state (VmStorageFence,
 * cluster_storage_fence.c), whoever the owner is: the order names a member
 * that reaches the pool (the coordinator itself when it does) and an
 * attempt number; that member runs the fence level and reports fenced or
 * failed for that attempt (storage_fence.c); once the state says fenced,
 * the coordinator fails the VM as above. While an order stands, the
 * owner's havend grants its worker no new nexus (havend_may_register): a
 * reconnect once its storage is back cannot undo the fence in the moment
 * before the VM is recorded failed. The owner may be the coordinator: it
 * cannot fence itself through the pool it lost, and the order goes to a
 * member. An order whose member left the membership, failed, or stayed
 * silent past STORAGE_ORDER_TIMEOUT_MS is replaced by the next attempt, to
 * another member where there is one; a report for any other attempt is
 * stale. If the owner reaches the pool again before the fence is
 * reported, an order that failed or went silent is called off (cancel) and
 * the VM may resume in place; an order under way is left to finish (a
 * preempt may be in flight, and one that landed is a fence: the VM then
 * moves). Handing the coordinator's role to a member instead would mean a
 * second rule for choosing it (today: the lowest node id of the quorate
 * membership) that flips with every storage report; an order is one VM's
 * business only.
 *
 * When no member reaches the pool, nothing moves: the VM stays paused and
 * resumes by itself when its storage answers. After storage_giveup_s of
 * that (cluster_storage_giveup.c decides when), the coordinator gives it
 * up (VmStorageFence step giveup): the VM is stopped, its host kills its
 * worker (local.c), and it stays stopped until `vm start`. Writes of the
 * paused VM may still sit in its host's sockets and reach the target once
 * it answers (a frozen tgtd reads them when it thaws; a cut link delivers
 * them when it heals), so the giveup leaves the host's key marked in the
 * state: the VM does not start again, anywhere, before a member that
 * reaches the pool has fenced that host off its volumes, by order as
 * above, which the coordinator gives as soon as such a member reports the
 * pool reachable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fence.h"
#include "havend.h"
#include "storage.h"
#include "timeline.h"

struct havend_storage_move {
	struct havend		*h;
	char			 vm[64];
	uint64_t		 generation;
	uint32_t		 host;		/* the owner that lost it */
	uint32_t		 witness;	/* a member that reaches it */
	char			 pool[64];
	uint64_t		 lost_for_s;
	uint64_t		 proposed_ms;	/* the VM's failure proposed */
	/* Its orders (see the top). */
	uint32_t		 order_proposed;	/* attempt proposed */
	Haven__StorageFenceStep	 order_proposed_step;
	uint64_t		 order_proposed_ms;
	uint32_t		 seen_attempt;	/* the standing order as seen */
	Haven__StorageFenceStep	 seen_step;
	uint64_t		 seen_ms;	/* ... first, here */
	int			 given_up;	/* its fence follows a giveup */
	uint64_t		 giveup_proposed_ms;
};

/* A proposal of the VM's failure not applied by then goes out again (a
 * configuration change may have dropped it). */
#define STORAGE_MOVE_RESEND_MS	5000
/* A host that reaches the pool again after an outage is a witness against
 * another that does not only after this: longer than the others need to
 * see the pool back (reach.c: two answers, 1-2 s). */
#define STORAGE_WITNESS_MS	15000
/* An order to fence the owner that has brought no report by then is given
 * to another member: the fence level's own bound, plus time for its report
 * to be sent again after a configuration change. */
#define STORAGE_ORDER_TIMEOUT_MS \
	(FENCE_STORAGE_TIMEOUT_MS + 2 * STORAGE_MOVE_RESEND_MS)

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
 * Another than avoid (an order to it failed) where there is one.
 * The end of an outage of the whole SAN is seen by the hosts a second or
 * two apart: the first to see it back is no witness against the others,
 * whose reports follow (lab.san-freeze moved a VM before this rule).
 */
static uint32_t
storage_witness(const struct cluster *st, const uint32_t *members, size_t n,
    uint32_t host, const char *pool, uint64_t lost_since_us, uint64_t now,
    uint32_t avoid, uint64_t *qualifies_us)
{
	const Haven__Host	*h;
	const Haven__PoolHealth	*ph;
	size_t			 i, j;
	uint32_t		 avoided = 0;

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
			    ph->since_us + STORAGE_WITNESS_MS * UINT64_C(1000)) {
				if (members[i] != avoid)
					return members[i];
				avoided = avoid;
				continue;
			}
			/* Not yet: it will be then (the caller wakes). */
			if (ph->since_us + STORAGE_WITNESS_MS * UINT64_C(1000) <
			    *qualifies_us)
				*qualifies_us = ph->since_us +
				    STORAGE_WITNESS_MS * UINT64_C(1000);
		}
	}
	return avoided;
}

static void
storage_move_free(struct havend_storage_move *m)
{
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
	if (m->host == m->h->node_id)
		snprintf(text, sizeof text, "host %u (the coordinator) lost "
		    "pool %.48s %llu s ago, host %u reaches it and fenced it "
		    "off its volumes: restarting elsewhere", m->host, m->pool,
		    (unsigned long long)m->lost_for_s, m->witness);
	else
		snprintf(text, sizeof text, "host %u lost pool %.48s %llu s "
		    "ago, host %u reaches it: fenced off its volumes, "
		    "restarting elsewhere", m->host, m->pool,
		    (unsigned long long)m->lost_for_s, m->witness);
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

/*
 * The portal of pool p this host reaches (multipath, issue 17): the first
 * whose probe answers, by this host's report in the state; the pool's
 * portal when it has one, or none answers. A fence preempts through it:
 * one nexus of ours is enough, PREEMPT removes the victim's key from all
 * of its nexuses.
 */
const char *
havend_pool_portal(struct havend *h, const Haven__PoolConfig *p)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__Host	*me = cluster_host(st, h->node_id);
	const Haven__PoolHealth	*ph;
	size_t			 i, k;

	if (p->n_portals <= 1 || me == NULL || me->runtime == NULL)
		return p->portal;
	for (i = 0; i < me->runtime->n_storage; i++) {
		ph = me->runtime->storage[i];
		if (strcmp(ph->pool, p->name) != 0 ||
		    ph->n_paths != ph->n_path_reachable)
			continue;
		for (k = 0; k < ph->n_paths; k++)
			if (ph->path_reachable[k])
				return ph->paths[k];
	}
	return p->portal;
}

/* The URLs of vm's volumes, as havend_spawn makes them (free each). */
size_t
havend_storage_urls(struct havend *h, const Haven__Vm *vm, char **urls,
    size_t max)
{
	const struct cluster	*st = replica_state(h->replica);
	size_t			 i, n = 0;

	for (i = 0; i < vm->config->n_volumes && n < max; i++) {
		const Haven__VolumeConfig	*v = cluster_volume(st,
						    vm->config->volumes[i]);
		const Haven__PoolConfig		*p = v != NULL ?
						    cluster_pool(st, v->pool) : NULL;

		if (p != NULL && asprintf(&urls[n], "iscsi://%s/%s/%u",
		    havend_pool_portal(h, p), p->target, v->lun) != -1)
			n++;
	}
	return n;
}

/* Whether vm should leave its owner now (see the top); when not yet, the
 * moment it will into *deadline_us. Fills m's host, witness, pool. */
static int
storage_move_due(struct havend *h, const Haven__Vm *vm,
    const uint32_t *members, size_t n, uint64_t now, uint32_t avoid,
    struct havend_storage_move *m, uint64_t *deadline_us)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__VmRuntime	*rt = vm->runtime;
	const Haven__Host	*owner;
	const Haven__PoolHealth	*ph;
	uint64_t		 timeout = (uint64_t)cluster_storage_timeout_s(
				    st->cs, vm->config) * 1000000;

	if (rt->desired != HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING ||
	    (rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STARTING) ||
	    !storage_is_member(members, n, rt->owner) ||
	    (owner = cluster_host(st, rt->owner)) == NULL ||
	    (ph = tree_storage_lost(st->cs, owner, vm->config)) == NULL)
		return 0;
	/* Every member lost it: nowhere better; it waits (deliverable 3). */
	if ((m->witness = storage_witness(st, members, n, rt->owner,
	    ph->pool, ph->since_us, now, avoid, deadline_us)) == 0)
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
 * back on storage; a VM given up is kept until its old host is fenced. */
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
		    (vm->runtime->owner == m->host ||
		    (cluster_storage_giveup_pending(vm) &&
		    vm->runtime->storage_fence->host == m->host))) {
			i++;
			continue;
		}
		storage_move_free(m);
		h->storage_moves[i] = h->storage_moves[--h->nstorage_moves];
	}
}

/* vm's move under way, or a new one (NULL: the table is full). */
static struct havend_storage_move *
storage_move_get(struct havend *h, const Haven__Vm *vm)
{
	struct havend_storage_move	*m;
	size_t				 j;

	for (j = 0; j < h->nstorage_moves; j++)
		if (strcmp(h->storage_moves[j]->vm, vm->config->name) == 0)
			return h->storage_moves[j];
	if (h->nstorage_moves == HAVEND_MAX_STORAGE_MOVES)
		return NULL;
	m = xcalloc(1, sizeof *m);
	m->h = h;
	snprintf(m->vm, sizeof m->vm, "%s", vm->config->name);
	m->generation = vm->runtime->generation;
	m->host = vm->runtime->owner;
	h->storage_moves[h->nstorage_moves++] = m;
	return m;
}

/* A step of an order to fence m's owner off its VM's volumes; the same
 * step and attempt go out again only after STORAGE_MOVE_RESEND_MS (a
 * configuration change may have dropped it). The ms until the next look. */
static uint64_t
storage_move_order_send(struct havend_storage_move *m,
    Haven__StorageFenceStep step, uint32_t by, uint32_t attempt)
{
	Haven__Change		*c;
	Haven__VmStorageFence	*f;
	uint64_t		 id, now_ms = ev_now_ms();
	char			 err[256];

	if (m->order_proposed == attempt && m->order_proposed_step == step &&
	    now_ms - m->order_proposed_ms < STORAGE_MOVE_RESEND_MS)
		return STORAGE_MOVE_RESEND_MS - (now_ms - m->order_proposed_ms);
	c = havend_change_new();
	f = xcalloc(1, sizeof *f);
	haven__vm_storage_fence__init(f);
	f->name = xstrdup(m->vm);
	f->generation = m->generation;
	f->step = step;
	f->host = m->host;
	f->by = by;
	f->attempt = attempt;
	f->pool = xstrdup(m->pool);
	f->detail = xstrdup("");
	c->kind_case = HAVEN__CHANGE__KIND_VM_STORAGE_FENCE;
	c->vm_storage_fence = f;
	m->order_proposed = attempt;
	m->order_proposed_step = step;
	m->order_proposed_ms = now_ms;
	if (step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER &&
	    m->given_up)
		log_warn("storage: VM %s, given up while host %u held its "
		    "volumes: host %u reaches pool %s; ordering it to fence "
		    "host %u off them (attempt %u)", m->vm, m->host, by, m->pool,
		    m->host, attempt);
	else if (step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER)
		log_warn("storage: VM %s: host %u lost pool %s %llu s ago "
		    "while host %u reaches it; ordering host %u to fence it "
		    "off the VM's volumes (attempt %u)", m->vm, m->host,
		    m->pool, (unsigned long long)m->lost_for_s, by, by,
		    attempt);
	else
		log_warn("storage: VM %s: calling off storage fence order %u "
		    "(host %u reaches pool %s again)", m->vm, attempt,
		    m->host, m->pool);
	if (replica_propose(m->h->replica, c, &id, err, sizeof err) == -1)
		log_warn("storage: VM %s: %s", m->vm, err);
	return STORAGE_MOVE_RESEND_MS;	/* not applied by then: again */
}

/*
 * An order reported fenced (whoever coordinated when it was given): the
 * VM fails at its generation, whether or not its owner reaches the pool
 * again -- its key is gone, and it cannot write there any more.
 */
static void
storage_move_order_fenced(struct havend *h, const Haven__Vm *vm, uint64_t now,
    uint64_t *next_us)
{
	const Haven__StorageFence	*f = vm->runtime->storage_fence;
	const Haven__Host		*owner;
	const Haven__PoolHealth		*ph;
	struct havend_storage_move	*m;
	uint64_t			 now_ms = ev_now_ms(), wait_ms;

	if ((m = storage_move_get(h, vm)) == NULL)
		return;
	m->host = vm->runtime->owner;
	m->witness = f->by;
	snprintf(m->pool, sizeof m->pool, "%s", f->pool);
	if ((owner = cluster_host(replica_state(h->replica), m->host)) != NULL &&
	    (ph = tree_storage_lost(replica_state(h->replica)->cs, owner,
	    vm->config)) != NULL && now > ph->since_us)
		m->lost_for_s = (now - ph->since_us) / 1000000;
	if (m->proposed_ms != 0 && now_ms - m->proposed_ms <
	    STORAGE_MOVE_RESEND_MS) {
		wait_ms = STORAGE_MOVE_RESEND_MS - (now_ms - m->proposed_ms);
		if (now + wait_ms * 1000 < *next_us)
			*next_us = now + wait_ms * 1000;
		return;
	}
	if (m->proposed_ms == 0)
		log_warn("storage: VM %s: host %u fenced host %u off its "
		    "volumes (%s); restarting it elsewhere", m->vm, f->by,
		    m->host, f->detail);
	storage_move_fail_vm(m, f->detail);
	if (now + STORAGE_MOVE_RESEND_MS * UINT64_C(1000) < *next_us)
		*next_us = now + STORAGE_MOVE_RESEND_MS * UINT64_C(1000);
}

/*
 * A VM whose owner lost its pool (see the top): order a member that
 * reaches the pool to fence the owner once the move is due; replace an
 * order whose member left, failed or stayed silent; call one off that
 * failed or went silent once the move is no longer due. *next_us: when to
 * look again.
 */
static void
storage_move_order(struct havend *h, const Haven__Vm *vm,
    const uint32_t *members, size_t n, uint64_t now, uint64_t *next_us)
{
	const Haven__StorageFence	*f = vm->runtime->storage_fence;
	struct havend_storage_move	 due, *m;
	uint64_t			 now_ms = ev_now_ms(), d = UINT64_MAX;
	uint64_t			 wait_ms = 0;
	int				 is_due;

	if (f != NULL && f->generation != vm->runtime->generation)
		f = NULL;	/* (the state drops those) */
	memset(&due, 0, sizeof due);
	is_due = storage_move_due(h, vm, members, n, now, f != NULL ? f->by :
	    0, &due, &d);
	if (d < *next_us)
		*next_us = d;
	if ((f == NULL && !is_due) || (m = storage_move_get(h, vm)) == NULL)
		return;
	if (f != NULL && (m->seen_attempt != f->attempt ||
	    m->seen_step != f->step)) {
		m->seen_attempt = f->attempt;
		m->seen_step = f->step;
		m->seen_ms = now_ms;
	}
	if (is_due) {
		m->witness = due.witness;
		m->lost_for_s = due.lost_for_s;
		snprintf(m->pool, sizeof m->pool, "%s", due.pool);
	} else
		snprintf(m->pool, sizeof m->pool, "%s", f->pool);
	if (f != NULL && f->step ==
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER) {
		/* Under way: left to finish, whether or not still due. */
		if (storage_is_member(members, n, f->by) && now_ms -
		    m->seen_ms < STORAGE_ORDER_TIMEOUT_MS) {
			wait_ms = STORAGE_ORDER_TIMEOUT_MS - (now_ms -
			    m->seen_ms);
			goto wake;
		}
		if (m->order_proposed_step !=
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL &&
		    m->order_proposed <= f->attempt)
			log_warn("storage: VM %s: host %u, ordered to fence "
			    "host %u off its volumes, %s", m->vm, f->by, m->host,
			    storage_is_member(members, n, f->by) ?
			    "has not reported back" : "left the membership");
	}
	if (!is_due) {
		/* The pool is back (or nobody reaches it): an order that
		 * failed or went silent is called off; the VM may resume. */
		if (f->step != HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL)
			wait_ms = storage_move_order_send(m,
			    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_CANCEL,
			    f->by, f->attempt);
		goto wake;
	}
	/* The only member that reaches the pool failed a moment ago: it
	 * tries again after a while, like any fence that failed. */
	if (f != NULL && f->step ==
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED &&
	    due.witness == f->by && now_ms - m->seen_ms < HAVEND_FENCE_RETRY_MS) {
		wait_ms = HAVEND_FENCE_RETRY_MS - (now_ms - m->seen_ms);
		goto wake;
	}
	wait_ms = storage_move_order_send(m,
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER, due.witness,
	    f != NULL ? f->attempt + 1 : 1);
wake:
	if (wait_ms > 0 && now + wait_ms * 1000 < *next_us)
		*next_us = now + wait_ms * 1000;
}

/*
 * A quorate member other than host that reaches every pool of vm (pool
 * among them, as it reported), for a given-up VM's fence; another than
 * avoid (its order failed) where there is one; 0: none yet.
 */
static uint32_t
storage_giveup_witness(const struct cluster *st, const uint32_t *members,
    size_t n, uint32_t host, const Haven__Vm *vm, const char *pool,
    uint32_t avoid)
{
	const Haven__Host	*h;
	uint32_t		 avoided = 0;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		if (members[i] == host ||
		    (h = cluster_host(st, members[i])) == NULL ||
		    h->runtime->membership !=
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER ||
		    tree_storage_lost(st->cs, h, vm->config) != NULL)
			continue;
		for (j = 0; j < h->runtime->n_storage; j++)
			if (h->runtime->storage[j]->reachable &&
			    strcmp(h->runtime->storage[j]->pool, pool) == 0)
				break;
		if (j == h->runtime->n_storage)
			continue;
		if (members[i] != avoid)
			return members[i];
		avoided = avoid;
	}
	return avoided;
}

/*
 * A VM given up while host held its volumes (see the top): order a member
 * that reaches its pool to fence host off them, as soon as there is one;
 * replace an order whose member left, failed or stayed silent. No cancel:
 * the fence is needed whatever happens to the storage.
 */
static void
storage_giveup_fence(struct havend *h, const Haven__Vm *vm,
    const uint32_t *members, size_t n, uint64_t now, uint64_t *next_us)
{
	const Haven__StorageFence	*f = vm->runtime->storage_fence;
	struct havend_storage_move	*m;
	uint64_t			 now_ms = ev_now_ms(), wait_ms = 0;
	uint32_t			 by;

	if ((m = storage_move_get(h, vm)) == NULL)
		return;
	m->host = f->host;
	m->given_up = 1;
	snprintf(m->pool, sizeof m->pool, "%s", f->pool);
	if (m->seen_attempt != f->attempt || m->seen_step != f->step) {
		m->seen_attempt = f->attempt;
		m->seen_step = f->step;
		m->seen_ms = now_ms;
	}
	if (f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER) {
		if (storage_is_member(members, n, f->by) && now_ms -
		    m->seen_ms < STORAGE_ORDER_TIMEOUT_MS) {
			wait_ms = STORAGE_ORDER_TIMEOUT_MS - (now_ms -
			    m->seen_ms);
			goto wake;
		}
		if (m->order_proposed <= f->attempt)
			log_warn("storage: VM %s: host %u, ordered to fence "
			    "host %u off its volumes, %s", m->vm, f->by,
			    m->host, storage_is_member(members, n, f->by) ?
			    "has not reported back" : "left the membership");
	}
	by = storage_giveup_witness(replica_state(h->replica), members, n,
	    f->host, vm, f->pool, f->step ==
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP ? 0 : f->by);
	if (by == 0)
		return;		/* nobody reaches it: a report wakes us */
	if (f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED &&
	    by == f->by && now_ms - m->seen_ms < HAVEND_FENCE_RETRY_MS) {
		wait_ms = HAVEND_FENCE_RETRY_MS - (now_ms - m->seen_ms);
		goto wake;
	}
	wait_ms = storage_move_order_send(m,
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER, by,
	    f->attempt + 1);
wake:
	if (wait_ms > 0 && now + wait_ms * 1000 < *next_us)
		*next_us = now + wait_ms * 1000;
}

/*
 * A VM paused for its storage where no other member reaches it: given up
 * once storage_giveup_s has passed (cluster_storage_giveup.c), the
 * proposal sent again after STORAGE_MOVE_RESEND_MS until the state has it.
 */
static void
storage_giveup(struct havend *h, const Haven__Vm *vm, const uint32_t *members,
    size_t n, uint64_t now, uint64_t *next_us)
{
	const struct cluster		*st = replica_state(h->replica);
	struct havend_storage_move	*m;
	Haven__Change			*c;
	Haven__VmStorageFence		*f;
	const char			*pool = "";
	uint64_t			 d = UINT64_MAX, id, now_ms = ev_now_ms();
	char				 err[256];

	if (!cluster_storage_giveup_due(st->cs, vm, members, n, now, &d,
	    &pool)) {
		if (d < *next_us)
			*next_us = d;
		return;
	}
	if ((m = storage_move_get(h, vm)) == NULL)
		return;
	if (m->giveup_proposed_ms != 0 && now_ms - m->giveup_proposed_ms <
	    STORAGE_MOVE_RESEND_MS) {
		d = now + (STORAGE_MOVE_RESEND_MS - (now_ms -
		    m->giveup_proposed_ms)) * 1000;
		if (d < *next_us)
			*next_us = d;
		return;
	}
	c = havend_change_new();
	f = xcalloc(1, sizeof *f);
	haven__vm_storage_fence__init(f);
	f->name = xstrdup(m->vm);
	f->generation = vm->runtime->generation;
	f->step = HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_GIVEUP;
	f->host = vm->runtime->owner;
	f->pool = xstrdup(pool);
	f->detail = xstrdup("");
	c->kind_case = HAVEN__CHANGE__KIND_VM_STORAGE_FENCE;
	c->vm_storage_fence = f;
	m->giveup_proposed_ms = now_ms;
	log_warn("storage: VM %s paused %llu s for its storage, which no other "
	    "member reaches (pool %s): stopping it (storage_giveup_s %u s)",
	    m->vm, (unsigned long long)((now - vm->runtime->paused_since_us) /
	    1000000), pool, CLUSTER_STORAGE_GIVEUP_S(st->cs->settings));
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_warn("storage: VM %s: %s", m->vm, err);
	if (now + STORAGE_MOVE_RESEND_MS * UINT64_C(1000) < *next_us)
		*next_us = now + STORAGE_MOVE_RESEND_MS * UINT64_C(1000);
}

/*
 * The coordinator's pass, from havend_reconcile: order the owners of the
 * VMs that are due fenced, fail those fenced by order, and wake again when
 * the next one will be.
 */
void
havend_storage_moves(struct havend *h)
{
	const struct cluster		*st = replica_state(h->replica);
	const uint32_t			*members;
	uint64_t			 now = now_us(), next = UINT64_MAX;
	size_t				 i, n;

	storage_moves_sweep(h);
	members = replica_members(h->replica, &n);
	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__Vm	*vm = st->cs->vms[i];

		if (cluster_storage_giveup_pending(vm)) {
			storage_giveup_fence(h, vm, members, n, now, &next);
			continue;
		}
		if (vm->runtime->storage_fence != NULL &&
		    vm->runtime->storage_fence->generation ==
		    vm->runtime->generation &&
		    vm->runtime->storage_fence->step ==
		    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED) {
			storage_move_order_fenced(h, vm, now, &next);
			continue;
		}
		storage_move_order(h, vm, members, n, now, &next);
		storage_giveup(h, vm, members, n, now, &next);
	}
	if (next != UINT64_MAX)
		ev_timer_arm(h->storage_timer, next > now ?
		    (next - now) / 1000 + 1 : 1);
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
