/*
 * This host's part when a VM's host lost a pool that this host reaches, or
 * a VM was given up while its host held its volumes (issue 20): the
 * coordinator orders us to fence that host off the VM's volumes (a
 * VmStorageFence order in the VM's runtime, storage_move.c); we run the
 * storage fence level on those volumes (fence/level_storage.c) and report
 * fenced or failed for that order's attempt, again until the state holds
 * the report. An order that goes, or is replaced, is abandoned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fence.h"
#include "havend.h"
#include "storage.h"

/* A report of ours not in the state by then goes out again. */
#define STORAGE_FENCE_RESEND_MS	5000

struct havend_storage_fence {
	struct havend		*h;
	char			 vm[64];
	uint64_t		 generation;
	uint32_t		 host;		/* the VM's host, fenced */
	uint32_t		 attempt;
	struct fence_storage	*fs;
	int			 done;		/* the fence reported */
	int			 result;	/* ... 0: fenced */
	char			 detail[256];
	uint64_t		 reported_ms;	/* 0: not yet */
};

/* The order standing in vm's runtime for this host to act on, or NULL. */
static const Haven__StorageFence *
storage_fence_order(const struct havend *h, const Haven__Vm *vm)
{
	const Haven__StorageFence	*f = vm->runtime->storage_fence;

	if (f == NULL || f->by != h->node_id ||
	    f->generation != vm->runtime->generation ||
	    f->step != HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER)
		return NULL;
	return f;
}

static void
storage_fence_free(struct havend_storage_fence *o)
{
	fence_storage_free(o->fs);	/* abandons one under way */
	free(o);
}

static void
storage_fence_report(struct havend_storage_fence *o)
{
	Haven__Change		*c = havend_change_new();
	Haven__VmStorageFence	*f = xcalloc(1, sizeof *f);
	char			 err[256];
	uint64_t		 id;

	haven__vm_storage_fence__init(f);
	f->name = xstrdup(o->vm);
	f->generation = o->generation;
	f->step = o->result == 0 ?
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED :
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED;
	f->host = o->host;
	f->by = o->h->node_id;
	f->attempt = o->attempt;
	f->pool = xstrdup("");
	f->detail = xstrdup(o->detail);
	c->kind_case = HAVEN__CHANGE__KIND_VM_STORAGE_FENCE;
	c->vm_storage_fence = f;
	o->reported_ms = ev_now_ms();
	if (replica_propose(o->h->replica, c, &id, err, sizeof err) == -1)
		log_warn("storage: VM %s: reporting on its storage fence: %s",
		    o->vm, err);
	ev_timer_arm(o->h->storage_fence_timer, STORAGE_FENCE_RESEND_MS);
}

static void
storage_fence_done(int result, const char *detail, void *arg)
{
	struct havend_storage_fence	*o = arg;

	o->done = 1;
	o->result = result;
	/* The event log keeps 120 bytes of it; the whole is in our log. */
	snprintf(o->detail, sizeof o->detail, "%s", detail);
	if (result == 0)
		log_warn("storage: VM %s: fenced host %u off its volumes on the "
		    "coordinator's order %u: %s", o->vm, o->host, o->attempt,
		    detail);
	else
		log_warn("storage: VM %s: could not fence host %u off its "
		    "volumes (order %u): %s", o->vm, o->host, o->attempt,
		    detail);
	storage_fence_report(o);
}

static void
storage_fence_start(struct havend *h, struct havend_storage_fence *o,
    const Haven__Vm *vm)
{
	char	*urls[HAVEND_STORAGE_URLS];
	size_t	 n;

	n = havend_storage_urls(h, vm, urls, HAVEND_STORAGE_URLS);
	o->fs = n == 0 ? NULL : fence_storage_start(h->base, h->initiator,
	    pr_key(h->config.cluster_name, h->node_id),
	    pr_key(h->config.cluster_name, o->host), (const char *const *)urls,
	    n, storage_fence_done, o);
	while (n > 0)
		free(urls[--n]);
	if (o->fs == NULL) {
		/* Reported failed: the coordinator orders again. */
		o->done = 1;
		o->result = -ENOMEM;
		snprintf(o->detail, sizeof o->detail, "cannot start fencing "
		    "here: %s", errno != 0 ? strerror(errno) :
		    "the VM has no volumes");
		storage_fence_report(o);
		return;
	}
	log_warn("storage: VM %s: the coordinator orders this host to fence "
	    "host %u off the VM's volumes (order %u)", o->vm, o->host,
	    o->attempt);
}

/*
 * Level-triggered, on every change applied and on our timer: act on the
 * orders to this host that stand, drop the ones that no longer do, report
 * again what the state does not hold yet. Only a synced member of the
 * quorate partition acts: a stale state's order is no order.
 */
void
havend_storage_fences(struct havend *h)
{
	const struct cluster		*st = replica_state(h->replica);
	const Haven__StorageFence	*f;
	struct havend_storage_fence	*o;
	const Haven__Vm			*vm;
	size_t				 i, j;
	int				 resend = 0;

	if (!h->synced || !replica_is_quorate(h->replica)) {
		havend_storage_fences_cancel(h);
		return;
	}
	for (i = 0; i < h->nstorage_fences; ) {
		o = h->storage_fences[i];
		if ((vm = cluster_vm(st, o->vm)) != NULL &&
		    (f = storage_fence_order(h, vm)) != NULL &&
		    f->generation == o->generation && f->host == o->host &&
		    f->attempt == o->attempt) {
			i++;
			continue;
		}
		storage_fence_free(o);
		h->storage_fences[i] = h->storage_fences[--h->nstorage_fences];
	}
	for (i = 0; i < st->cs->n_vms; i++) {
		vm = st->cs->vms[i];
		if ((f = storage_fence_order(h, vm)) == NULL)
			continue;
		for (j = 0; j < h->nstorage_fences; j++)
			if (strcmp(h->storage_fences[j]->vm,
			    vm->config->name) == 0)
				break;
		if (j < h->nstorage_fences) {
			o = h->storage_fences[j];
			if (o->done && ev_now_ms() - o->reported_ms >=
			    STORAGE_FENCE_RESEND_MS)
				storage_fence_report(o);
			resend |= o->done;
			continue;
		}
		if (h->nstorage_fences == HAVEND_MAX_STORAGE_MOVES)
			continue;
		o = xcalloc(1, sizeof *o);
		o->h = h;
		snprintf(o->vm, sizeof o->vm, "%s", vm->config->name);
		o->generation = f->generation;
		o->host = f->host;
		o->attempt = f->attempt;
		h->storage_fences[h->nstorage_fences++] = o;
		storage_fence_start(h, o, vm);
	}
	if (resend)
		ev_timer_arm(h->storage_fence_timer, STORAGE_FENCE_RESEND_MS);
}

/* Not quorate, or shutting down: abandon every order under way. */
void
havend_storage_fences_cancel(struct havend *h)
{
	while (h->nstorage_fences > 0)
		storage_fence_free(h->storage_fences[--h->nstorage_fences]);
}

void
havend_storage_fence_timer_cb(void *arg)
{
	havend_storage_fences(arg);
}

/*
 * Whether an order to fence this host off vm's volumes stands, under way
 * or done, or vm was given up here: this host then registers no new nexus
 * for vm (its worker's reconnect after the pool came back), lest it undo
 * the fence before the VM starts elsewhere. An order that failed or was
 * called off does not hold the VM back: it may resume in place.
 */
int
havend_storage_fence_standing(struct havend *h, const Haven__Vm *vm)
{
	const Haven__StorageFence	*f = vm->runtime->storage_fence;

	return f != NULL && f->host == h->node_id &&
	    f->generation == vm->runtime->generation &&
	    (f->giveup_us != 0 ||
	    f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER ||
	    f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FENCED);
}

/* Whether vm was given up on this host (storage_giveup_s): its worker is
 * killed at once rather than powered down (local.c), the guest being
 * paused on storage that does not answer. */
int
havend_storage_given_up_here(struct havend *h, const Haven__Vm *vm)
{
	return cluster_storage_giveup_pending(vm) &&
	    vm->runtime->storage_fence->host == h->node_id;
}
