/*
 * This host's part in a VM's move (DESIGN §6): as a live migration's
 * source or target, the worker's steps proposed as VmLive changes, the
 * move's token and TLS key for this host's worker, and the progress of a
 * save or restore. The move's phases themselves are applied by migrate/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include "common.h"
#include "havend.h"
#include "migrate.h"

/* This host's address on its migration interface ([interfaces]
 * migration, else management): where a live migration's target listens. */
static int
havend_migration_address(struct havend *h, char *buf, size_t len)
{
	struct ifaddrs	*ifa, *a;
	const char	*ifname = *h->config.if_migration ?
			    h->config.if_migration : h->config.if_management;
	int		 found = -1;

	if (getifaddrs(&ifa) == -1)
		return -1;
	for (a = ifa; a != NULL && found == -1; a = a->ifa_next) {
		if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET ||
		    strcmp(a->ifa_name, ifname) != 0)
			continue;
		if (inet_ntop(AF_INET, &((struct sockaddr_in *)
		    (void *)a->ifa_addr)->sin_addr, buf, (socklen_t)len) != NULL)
			found = 0;
	}
	freeifaddrs(ifa);
	if (found == -1)
		errno = EADDRNOTAVAIL;
	return found;
}

/*
 * The move's TLS key (migrate/live_key.c), which this havend derives for
 * its own worker from the cluster's secret; the peer's havend derives the
 * same one. 1 with key filled, 0 for a stream in clear (the failpoint
 * live-cleartext, lab.live-tls's control), -1 with why when this host
 * cannot key it: without the secret a live migration would put the guest's
 * RAM on the migration network in clear, so the move falls back to quick
 * migration over the SAN instead.
 */
static int
havend_live_key(const Haven__Vm *vm, const char *token,
    uint8_t key[LIVE_KEY_SIZE], char *why, size_t whylen)
{
	if (failpoint("live-cleartext"))
		return 0;
	if (live_key_derive(vm->config->uuid, vm->runtime->generation, token,
	    key) == 0)
		return 1;
	snprintf(why, whylen, errno == ENOKEY ? "this host has no cluster "
	    "secret ([storage] key_secret_file) to key the stream with: a "
	    "live migration would cross the migration network in clear" :
	    "the live migration's token is malformed");
	return -1;
}

/* Propose a step of a live migration of vm (at its generation); once per
 * (VM, generation, step) until applied or refused. */
static void
havend_live_step(struct havend *h, const Haven__Vm *vm, Haven__LiveStep step,
    uint64_t generation, const char *endpoint, const char *token,
    uint64_t at_us, const char *detail)
{
	Haven__Change	*c;
	Haven__VmLive	*l;
	char		 err[256];
	uint64_t	 id;

	if (havend_local_pending(h, vm->config->uuid, generation,
	    (Haven__VmPhase)HAVEND_LIVE_STEP(step)) ||
	    h->nlocal == HAVEND_MAX_LOCAL)
		return;
	c = havend_change_new();
	if ((l = calloc(1, sizeof *l)) == NULL)
		abort();
	haven__vm_live__init(l);
	l->name = strdup(vm->config->name);
	l->generation = generation;
	l->step = step;
	l->endpoint = strdup(endpoint != NULL ? endpoint : "");
	l->token = strdup(token != NULL ? token : "");
	l->at_us = at_us;
	l->detail = strdup(detail != NULL ? detail : "");
	c->kind_case = HAVEN__CHANGE__KIND_VM_LIVE;
	c->vm_live = l;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("live migration of %s: %s", vm->config->name, err);
		return;
	}
	snprintf(h->local[h->nlocal].uuid, sizeof h->local[0].uuid, "%s",
	    vm->config->uuid);
	h->local[h->nlocal].generation = generation;
	h->local[h->nlocal].phase = (Haven__VmPhase)HAVEND_LIVE_STEP(step);
	h->nlocal++;
	/* lab.live: havend gone between its 'received' and the switch. */
	if (step == HAVEN__LIVE_STEP__LIVE_STEP_RECEIVED &&
	    failpoint("havend-exit-after-received")) {
		log_warn("failpoint havend-exit-after-received: exiting");
		_exit(3);
	}
}

/* The source's progress, for `vm migrate`'s bar: level-triggered (sent
 * while the state differs from what the worker said), not remembered. */
static void
havend_live_progress(struct havend *h, const Haven__Vm *vm,
    uint64_t remaining, uint64_t total)
{
	Haven__Change	*c = havend_change_new();
	Haven__VmLive	*l;
	char		 err[256];
	uint64_t	 id;

	if ((l = calloc(1, sizeof *l)) == NULL)
		abort();
	haven__vm_live__init(l);
	l->name = strdup(vm->config->name);
	l->generation = vm->runtime->generation;
	l->step = HAVEN__LIVE_STEP__LIVE_STEP_PROGRESS;
	l->remaining_bytes = remaining;
	l->total_bytes = total;
	c->kind_case = HAVEN__CHANGE__KIND_VM_LIVE;
	c->vm_live = l;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_debug("live migration progress of %s: %s", vm->config->name,
		    err);
}

/* A quick save's or restore's progress into the state (no event), for
 * vm migrate's bar on any host. */
void
havend_state_progress(struct havend *h, const Haven__Vm *vm,
    const struct vmworker *w)
{
	const struct vmworker_live	*l = vmworker_live(w);

	if (l->total != 0 && (l->remaining != tree_move(vm->runtime)->remaining_bytes ||
	    l->total != tree_move(vm->runtime)->total_bytes))
		havend_live_progress(h, vm, l->remaining, l->total);
}

/* A VM migrating live to this host: a worker waits for the stream; the
 * cluster hears where it listens, that the stream is in, or that it
 * failed. The handover itself makes the VM ours (havend_local_vm). */
void
havend_live_target(struct havend *h, const Haven__Vm *vm)
{
	const Haven__VmRuntime		*rt = vm->runtime;
	struct vmworker			*w = supervisor_find(h->supervisor,
					    vm->config->uuid);
	const struct vmworker_live	*l;
	uint8_t				 raw[LIVE_KEY_TOKEN / 2];
	uint8_t				 key[LIVE_KEY_SIZE];
	char				 addr[64], err[256];
	char				 token[LIVE_KEY_TOKEN + 1];
	size_t				 i;
	int				 keyed;

	if (w != NULL && vmworker_generation(w) != rt->generation + 1) {
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	if (w == NULL) {
		if (havend_migration_address(h, addr, sizeof addr) == -1) {
			snprintf(err, sizeof err, "no IPv4 address on the "
			    "migration interface %s", *h->config.if_migration ?
			    h->config.if_migration : h->config.if_management);
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, err);
			return;
		}
		/* The one-time token is ours to choose: the key derives
		 * from it, and the worker accepts the sender showing it. */
		if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, "no randomness for "
			    "the live migration's token");
			return;
		}
		for (i = 0; i < sizeof raw; i++)
			snprintf(token + 2 * i, 3, "%02x", raw[i]);
		if ((keyed = havend_live_key(vm, token, key, err,
		    sizeof err)) == -1) {
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, err);
			return;
		}
		if (havend_spawn(h, vm, HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING,
		    addr, err, sizeof err) == -1)
			havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
			    rt->generation, NULL, NULL, 0, err);
		else if (supervisor_live_key(h->supervisor, vm->config->uuid,
		    token, keyed ? key : NULL, sizeof key) == -1)
			log_warn("live migration of %s: the worker's key: %s",
			    vm->config->name, strerror(errno));
		explicit_bzero(key, sizeof key);
		return;
	}
	l = vmworker_live(w);
	if (tree_phase_final(vmworker_phase(w)) || !vmworker_alive(w)) {
		/* Once the source sends, it learns of a broken stream itself
		 * and says why (a cancel here is its doing); only before
		 * that, or when it stopped to hand over, is it ours to say. */
		if (tree_move(rt)->live_endpoint == NULL || *tree_move(rt)->live_endpoint == '\0' ||
		    tree_move(rt)->downtime_since_us != 0)
			havend_live_step(h, vm,
			    HAVEN__LIVE_STEP__LIVE_STEP_FAILED, rt->generation,
			    NULL, NULL, 0, *vmworker_detail(w) ?
			    vmworker_detail(w) : "the target's worker stopped");
		return;
	}
	if (l->received)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_RECEIVED,
		    rt->generation, NULL, NULL, 0, NULL);
	else if (*l->endpoint != '\0' && (tree_move(rt)->live_endpoint == NULL ||
	    *tree_move(rt)->live_endpoint == '\0'))
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_READY,
		    rt->generation, l->endpoint, l->token, 0, NULL);
}

/* The source of a live migration: send once the target listens; tell the
 * cluster when the vCPUs stopped, and when it failed (it runs on here). */
void
havend_live_source(struct havend *h, const Haven__Vm *vm, struct vmworker *w)
{
	const Haven__VmRuntime		*rt = vm->runtime;
	const struct cluster		*st = replica_state(h->replica);
	const Haven__ClusterSettings	*set = st->cs->settings;
	const struct vmworker_live	*l = vmworker_live(w);
	Haven__WorkerCommand		 cmd = HAVEN__WORKER_COMMAND__INIT;
	Haven__VmPhase			 wp = vmworker_phase(w);
	uint8_t				 key[LIVE_KEY_SIZE];
	char				 why[256];
	int				 keyed;

	if (vmworker_last_command(w) != HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE) {
		if (tree_move(rt)->live_endpoint == NULL || *tree_move(rt)->live_endpoint == '\0')
			return;		/* the target is not ready yet */
		if ((keyed = havend_live_key(vm, tree_move(rt)->live_token, key,
		    why, sizeof why)) == -1) {
			havend_live_step(h, vm,
			    HAVEN__LIVE_STEP__LIVE_STEP_FAILED, rt->generation,
			    NULL, NULL, 0, why);
			return;
		}
		cmd.action = HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE;
		if (keyed) {
			cmd.tls_key.data = key;
			cmd.tls_key.len = sizeof key;
		}
		cmd.endpoint = tree_move(rt)->live_endpoint;
		cmd.token = tree_move(rt)->live_token;
		cmd.downtime_ms = CLUSTER_LIVE_DOWNTIME_MS(set);
		cmd.bandwidth = set != NULL ? (uint64_t)set->live_bandwidth_mib
		    << 20 : 0;
		cmd.converge_ms = CLUSTER_LIVE_CONVERGE_S(set) * 1000;
		if (supervisor_send(h->supervisor, vm->config->uuid, &cmd) == 0)
			log_vm(LOG_LEVEL_INFO, vm->config->name,
			    "migrating live to host %u at %s (downtime limit "
			    "%u ms, %s)", tree_move(rt)->to,
			    tree_move(rt)->live_endpoint, cmd.downtime_ms,
			    keyed ? "over TLS" : "in clear");
		explicit_bzero(key, sizeof key);
		return;
	}
	if (l->stopped_at_us != 0 && tree_move(rt)->downtime_since_us == 0)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_STOPPED,
		    rt->generation, NULL, NULL, l->stopped_at_us, NULL);
	else if (l->total != 0 && tree_move(rt)->downtime_since_us == 0 &&
	    (l->remaining != tree_move(rt)->remaining_bytes || l->total != tree_move(rt)->total_bytes))
		havend_live_progress(h, vm, l->remaining, l->total);
	/* Still running, or stuck in the switchover: the cluster calls it
	 * off (the target's 'received' is stale from then on), and only
	 * then does the worker run the vCPUs here again. */
	if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING || l->switch_stalled)
		havend_live_step(h, vm, HAVEN__LIVE_STEP__LIVE_STEP_FAILED,
		    rt->generation, NULL, NULL, 0, vmworker_detail(w));
	else if (tree_phase_final(wp))
		havend_transition(h, vm, wp, vmworker_detail(w));
}

/* A live migration the cluster called off (it failed, or its target went)
 * while this worker still sends or waits after sending: it runs the vCPUs
 * again first. 1 while it winds down. */
int
havend_live_called_off(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp)
{
	if (wp != HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
		return 0;
	if (vmworker_last_command(w) !=
	    HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME &&
	    supervisor_command(h->supervisor, vm->config->uuid,
	    HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME, 0) == 0)
		log_vm(LOG_LEVEL_INFO, vm->config->name,
		    "live migration called off: it runs on here");
	return 1;
}

