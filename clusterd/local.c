/*
 * This host's VMs (DESIGN §6), level-triggered: after every applied change,
 * sync and worker report, each VM the state gives this host is held against
 * its worker, and what the worker did is reported back as a transition.
 * Workers of VMs that are not this host's are stopped: never twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "common.h"
#include "havend.h"
#include "moves.h"
#include "storage.h"

/*
 * Quorum lost: each VM of this host gets its isolation response at once,
 * well within FENCE_ISOLATION_BOUND_MS (timeline.h): the quorate side will
 * fence this host and start the VMs after FENCE_TAKEOVER_DELAY_MS.
 * stop (the default): the worker is told to die, and kills QEMU on its way;
 * save: the worker saves the VM's state to its volume and quits (a fence
 * that lands first makes that save incomplete, never wrong);
 * leave-running: nothing (the storage fence will stop its writes).
 */
void
havend_isolate(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	struct vmworker		*w, *next;

	for (w = supervisor_first(h->supervisor); w != NULL; w = next) {
		const Haven__Vm	*vm;

		next = supervisor_next(w);
		if (!vmworker_alive(w))
			continue;
		vm = tree_vm_by_uuid(st->cs, vmworker_uuid(w));
		switch (vm != NULL ? vm->config->isolation_response :
		    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP) {
		case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING:
			log_warn("isolated: leaving VM %s running (its isolation "
			    "response)", vm->config->name);
			break;
		case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE:
			log_warn("isolated: saving VM %s to its volume",
			    vm->config->name);
			if (supervisor_command(h->supervisor, vmworker_uuid(w),
			    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE, 0) == 0)
				break;
			/* not in a state to save: stop it */
			/* FALLTHROUGH */
		default:
			log_warn("isolated: stopping VM %s now",
			    vm != NULL ? vm->config->name : vmworker_uuid(w));
			supervisor_kill(h->supervisor, vmworker_uuid(w));
			break;
		}
	}
}


/*
 * Whether a worker still runs a VM that quorum loss should have stopped
 * (every isolation response but leave-running): then a host without quorum
 * is not healthy, and its watchdog is left to reset it.
 */
int
havend_isolation_pending(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__Vm		*vm;
	struct vmworker		*w;

	for (w = supervisor_first(h->supervisor); w != NULL;
	    w = supervisor_next(w)) {
		if (!vmworker_alive(w))
			continue;
		vm = tree_vm_by_uuid(st->cs, vmworker_uuid(w));
		if (vm == NULL || vm->config->isolation_response !=
		    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING)
			return 1;
	}
	return 0;
}

/* --- this host's VMs (DESIGN §6): the state against our workers ---------- */

int
havend_local_pending(struct havend *h, const char *uuid, uint64_t generation,
    Haven__VmPhase phase)
{
	size_t	 i;

	for (i = 0; i < h->nlocal; i++)
		if (strcmp(h->local[i].uuid, uuid) == 0 &&
		    h->local[i].generation == generation &&
		    h->local[i].phase == phase)
			return 1;
	return 0;
}

/* Report what our worker did; once per (VM, generation, phase) until the
 * change is applied or the configuration changes. */
static void
havend_transition_ex(struct havend *h, const Haven__Vm *vm,
    Haven__VmPhase phase, const char *detail, int state_refused)
{
	Haven__Change		*c;
	Haven__VmTransition	*t;
	char			 err[256];
	uint64_t		 id;

	if (vm->runtime->phase == phase || havend_local_pending(h,
	    vm->config->uuid, vm->runtime->generation, phase) ||
	    h->nlocal == HAVEND_MAX_LOCAL)
		return;
	c = havend_change_new();
	t = calloc(1, sizeof *t);
	if (t == NULL)
		abort();
	haven__vm_transition__init(t);
	t->name = strdup(vm->config->name);
	t->generation = vm->runtime->generation;
	t->phase = phase;
	t->detail = strdup(detail != NULL ? detail : "");
	t->state_refused = state_refused != 0;
	c->kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c->vm_transition = t;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("reporting %s %s: %s", vm->config->name,
		    tree_phase_name(phase), err);
		return;
	}
	snprintf(h->local[h->nlocal].uuid, sizeof h->local[0].uuid, "%s",
	    vm->config->uuid);
	h->local[h->nlocal].generation = vm->runtime->generation;
	h->local[h->nlocal].phase = phase;
	h->nlocal++;
}

void
havend_transition(struct havend *h, const Haven__Vm *vm, Haven__VmPhase phase,
    const char *detail)
{
	havend_transition_ex(h, vm, phase, detail, 0);
}

/* Ties a saved state to the VM's machine: what QEMU's stream depends on.
 * NICs are devices of the machine: a VM that has some hashes them too (one
 * without hashes as it always did, so its saved states stay valid). */
static uint64_t
havend_config_hash(const Haven__VmConfig *vc)
{
	char		 buf[128 + NIC_MAX * 32 + 160];
	uint64_t	 hash = 14695981039346656037ULL;	/* FNV-1a */
	const char	*p;
	size_t		 i, len;

	len = (size_t)snprintf(buf, sizeof buf, "%s/%llu/%u/%zu", vc->uuid,
	    (unsigned long long)vc->memory_mib, vc->vcpus, vc->n_volumes);
	for (i = 0; i < vc->n_nics && i < NIC_MAX && len < sizeof buf; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "/%s/%s",
		    nic_model_name(vc->nics[i]->model), vc->nics[i]->mac);
	/* The machine (issue 16): a VM created before it hashes as before. */
	if (len < sizeof buf && (vc->disk_bus != 0 ||
	    !tree_empty(vc->machine_type) || !tree_empty(vc->cpu_model)))
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		    "/%s/%.63s/%.63s", machine_disk_bus_name(vc->disk_bus),
		    vc->machine_type, vc->cpu_model);
	/* The firmware and a cdrom are devices of the machine too (only
	 * when there, so BIOS VMs keep their hash). */
	if (boot_firmware_uefi(vc->firmware) && len < sizeof buf)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "/uefi");
	if (!tree_empty(vc->cdrom) && len < sizeof buf)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "/cdrom");
	for (p = buf; *p != '\0'; p++) {
		hash ^= (uint8_t)*p;
		hash *= 1099511628211ULL;
	}
	return hash;
}

/* The worker's spec from the state: iscsi://portal/target/lun per volume. */
int
havend_spawn(struct havend *h, const Haven__Vm *vm, Haven__WorkerAction action,
    const char *listen, char *err, size_t errlen)
{
	const struct cluster	*st = replica_state(h->replica);
	const Haven__VmConfig	*vc = vm->config;
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	Haven__VolumeRef	 refs[VM_MAX_VOLUMES], *prefs[VM_MAX_VOLUMES];
	char			 urls[VM_MAX_VOLUMES][384], initiator[256];
	char			 paths[VM_MAX_VOLUMES][POOL_MAX_PORTALS][384];
	char			*ppaths[VM_MAX_VOLUMES][POOL_MAX_PORTALS];
	const char		*chap_user, *chap_secret;
	size_t			 i, j;

	if (vc->n_volumes == 0) {
		snprintf(err, errlen, "a VM needs a volume to run");
		return -1;
	}
	if (machine_volumes_check(vc->name, vc->n_volumes, vc->disk_bus, err,
	    errlen) == -1)
		return -1;
	/* What this host must have to boot it: said before QEMU starts. */
	if (boot_firmware_uefi(vc->firmware) && (access(BOOT_OVMF_CODE,
	    R_OK) == -1 || access(BOOT_OVMF_VARS, R_OK) == -1)) {
		snprintf(err, errlen, "VM %s has UEFI firmware and this host "
		    "has no OVMF (%s, %s): apt-get install ovmf", vc->name,
		    BOOT_OVMF_CODE, BOOT_OVMF_VARS);
		return -1;
	}
	if (!tree_empty(vc->cdrom) && access(vc->cdrom, R_OK) == -1) {
		snprintf(err, errlen, "VM %s: its cdrom %s cannot be read on "
		    "this host (%s); put the ISO at the same path on every "
		    "host, or remove it (vm set --cdrom none)", vc->name,
		    vc->cdrom, strerror(errno));
		return -1;
	}
	for (i = 0; i < vc->n_volumes; i++) {
		const Haven__VolumeConfig	*v = cluster_volume(st,
						    vc->volumes[i]);
		const Haven__PoolConfig		*p = v != NULL ?
						    cluster_pool(st, v->pool) : NULL;

		if (p == NULL) {
			snprintf(err, errlen, "volume %s or its pool is not "
			    "defined", vc->volumes[i]);
			return -1;
		}
		haven__volume_ref__init(&refs[i]);
		snprintf(urls[i], sizeof urls[i], "iscsi://%s/%s/%u", p->portal,
		    p->target, v->lun);
		refs[i].uuid = v->name;
		refs[i].url = urls[i];
		/* Multipath (issue 17): the LUN through every portal. */
		for (j = 0; p->n_portals > 1 && j < p->n_portals &&
		    j < POOL_MAX_PORTALS; j++) {
			snprintf(paths[i][j], sizeof paths[i][j],
			    "iscsi://%s/%s/%u", p->portals[j], p->target,
			    v->lun);
			ppaths[i][j] = paths[i][j];
			refs[i].urls = ppaths[i];
			refs[i].n_urls = j + 1;
		}
		refs[i].reservation_key = pr_key(h->config.cluster_name,
		    h->node_id);
		/* The pool's CHAP account goes to the worker with its spec,
		 * over the channel only (the worker cannot read the file). */
		if (chap_find(chap_installed(), p->target, &chap_user,
		    &chap_secret) == 0) {
			refs[i].chap_user = (char *)chap_user;
			refs[i].chap_secret = (char *)chap_secret;
		}
		prefs[i] = &refs[i];
	}
	config_initiator(&h->config, initiator, sizeof initiator);
	spec.uuid = vc->uuid;
	spec.name = vc->name;
	spec.memory_mib = vc->memory_mib;
	spec.vcpus = vc->vcpus;
	spec.volumes = prefs;
	spec.n_volumes = vc->n_volumes;
	spec.generation = vm->runtime->generation;
	/* A live migration's target runs the next generation, and claims
	 * its lease only at the switchover. */
	if (action == HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING) {
		spec.generation++;
		spec.incoming = 1;
	}
	spec.accel = strcmp(h->config.vm_accel, "kvm") == 0 ||
	    (strcmp(h->config.vm_accel, "auto") == 0 &&
	    access("/dev/kvm", R_OK | W_OK) == 0) ?
	    HAVEN__ACCEL__ACCEL_KVM : HAVEN__ACCEL__ACCEL_TCG;
	spec.serial_log = (char *)"serial";
	spec.qemu_log = (char *)"qemu";
	spec.host_name = h->config.node_name;
	spec.node_id = h->node_id;
	spec.initiator = initiator;
	spec.kernel = vc->kernel;
	spec.kernel_append = vc->kernel_append;
	spec.initrd = vc->initrd;
	if (boot_firmware_uefi(vc->firmware)) {
		spec.firmware_code = (char *)BOOT_OVMF_CODE;
		spec.firmware_vars = (char *)BOOT_OVMF_VARS;
	}
	spec.cdrom = vc->cdrom;
	spec.boot_order = vc->boot_order;
	/* supervisor_start opens a tap per NIC on its bridge and VLAN
	 * (tap.c) and passes them after the two logs, in NIC order; a
	 * worker short of one refuses to run the VM off the network. */
	spec.nics = vc->nics;
	spec.n_nics = vc->n_nics;
	spec.disk_bus = vc->disk_bus;
	spec.machine_type = vc->machine_type;
	spec.cpu_model = vc->cpu_model;
	spec.config_hash = havend_config_hash(vc);
	spec.qemu_binary = h->config.vm_qemu;
	spec.adopt_timeout_ms = h->config.vm_adopt_timeout_s * 1000;
	return supervisor_start(h->supervisor, &spec, action,
	    vm->runtime->saved_generation, listen, err, errlen);
}


/* A VM in flight here (saving, migrating) whose worker is gone: say how
 * it ended. 1 if there is no worker to ask. */
static int
havend_no_worker(struct havend *h, const Haven__Vm *vm, struct vmworker *w,
    Haven__VmPhase wp, const char *why)
{
	if (w != NULL && vmworker_alive(w))
		return 0;
	if (w != NULL && tree_phase_final(wp))
		havend_transition(h, vm, wp, NULL);
	else if (w == NULL && supervisor_settled(h->supervisor))
		havend_transition(h, vm, HAVEN__VM_PHASE__VM_PHASE_FAILED, why);
	return 1;
}

/* Starting or restoring here: spawn the worker, run a live handover's
 * last step, and report how the start or restore ended. */
static void
havend_local_starting(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	char			 err[256];

	if (w == NULL) {
		if (havend_spawn(h, vm, rt->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_RESTORING ?
		    HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE :
		    HAVEN__WORKER_ACTION__WORKER_ACTION_START, NULL, err,
		    sizeof err) == -1) {
			log_vm(LOG_LEVEL_WARN, vm->config->name,
			    "cannot start: %s", err);
			havend_transition(h, vm,
			    HAVEN__VM_PHASE__VM_PHASE_FAILED, err);
		}
		return;
	}
	/* Handed over live: the lease, the disks, the vCPUs. */
	if (vmworker_last_command(w) ==
	    HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING &&
	    vmworker_live(w)->received && rt->phase ==
	    HAVEN__VM_PHASE__VM_PHASE_RESTORING) {
		if (supervisor_command(h->supervisor, vm->config->uuid,
		    HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH, 0) == 0)
			log_vm(LOG_LEVEL_INFO, vm->config->name,
			    "live migration received: running it here");
		return;
	}
	/* The worker refused the saved state (not its own fault): no host
	 * is to try it again. */
	if (wp == HAVEN__VM_PHASE__VM_PHASE_STOPPED && rt->phase ==
	    HAVEN__VM_PHASE__VM_PHASE_RESTORING) {
		havend_transition_ex(h, vm, HAVEN__VM_PHASE__VM_PHASE_FAILED,
		    vmworker_detail(w), 1);
		return;
	}
	if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
	    wp == HAVEN__VM_PHASE__VM_PHASE_PAUSED || tree_phase_final(wp))
		havend_transition(h, vm, wp, NULL);
	else if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING)
		havend_state_progress(h, vm, w);
}

/* Stopping here: ACPI power-down, quit after the VM's stop timeout. */
static void
havend_local_stopping(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp)
{
	uint32_t	stop_ms = vm->config->stop_timeout_s ?
			    vm->config->stop_timeout_s * 1000 : HAVEND_STOP_MS;

	if (w == NULL || !vmworker_alive(w)) {
		havend_transition(h, vm, w != NULL && tree_phase_final(wp) ?
		    wp : HAVEN__VM_PHASE__VM_PHASE_STOPPED, NULL);
		return;
	}
	if (tree_phase_final(wp)) {
		havend_transition(h, vm, wp, NULL);
		return;
	}
	/* Given up while paused on storage that does not answer (issue 20):
	 * no guest to power down; killed now (storage_move.c). */
	if (havend_storage_given_up_here(h, vm)) {
		supervisor_kill(h->supervisor, vm->config->uuid);
		return;
	}
	if (vmworker_last_command(w) !=
	    HAVEN__WORKER_ACTION__WORKER_ACTION_STOP &&
	    supervisor_command(h->supervisor, vm->config->uuid,
	    HAVEN__WORKER_ACTION__WORKER_ACTION_STOP, stop_ms) == 0)
		log_vm(LOG_LEVEL_INFO, vm->config->name,
		    "stopping (ACPI power-down, quit after %u s)",
		    stop_ms / 1000);
}

/* A planned move: save here; the coordinator restores it on the target.
 * A RUNNING report after the save command means the save failed and the
 * VM runs on here. */
static void
havend_local_saving(struct havend *h, const Haven__Vm *vm,
    struct vmworker *w, Haven__VmPhase wp)
{
	if (havend_no_worker(h, vm, w, wp, "no worker to save it") ||
	    havend_live_called_off(h, vm, w, wp))
		return;
	if (vmworker_last_command(w) !=
	    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE) {
		if (supervisor_command(h->supervisor, vm->config->uuid,
		    HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE, 0) == 0)
			log_vm(LOG_LEVEL_INFO, vm->config->name,
			    "saving its state to its volume (quick migration)");
		return;
	}
	if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING || tree_phase_final(wp))
		havend_transition(h, vm, wp, wp ==
		    HAVEN__VM_PHASE__VM_PHASE_RUNNING ?
		    "the save failed; it runs on here" : NULL);
	else
		havend_state_progress(h, vm, w);
}

/* One VM this host owns: make the worker match the state, and the state
 * hear what the worker did. */
static void
havend_local_vm(struct havend *h, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;
	struct vmworker		*w = supervisor_find(h->supervisor,
				    vm->config->uuid);
	Haven__VmPhase		 wp;

	/* A worker left by the previous havend is judged once it has said
	 * who it is: until then its generation reads 0, and it would be
	 * stopped as "an older incarnation" of its own VM. */
	if (w != NULL && vmworker_adopting(w))
		return;
	/* A live migration's target worker serves only its handover: the
	 * same generation after a failover is another incarnation. */
	if (w != NULL && vmworker_incoming(w) &&
	    !(rt->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING &&
	    vmworker_live(w)->received)) {
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	if (w != NULL && vmworker_generation(w) != rt->generation) {
		/* An older incarnation: never two of them. */
		supervisor_kill(h->supervisor, vm->config->uuid);
		supervisor_forget(h->supervisor, vm->config->uuid);
		return;
	}
	wp = w != NULL ? vmworker_phase(w) : HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED;
	switch (rt->phase) {
	case HAVEN__VM_PHASE__VM_PHASE_STARTING:
	case HAVEN__VM_PHASE__VM_PHASE_RESTORING:
		havend_local_starting(h, vm, w, wp);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
	case HAVEN__VM_PHASE__VM_PHASE_PAUSED:
		if (w == NULL) {
			if (supervisor_settled(h->supervisor))
				havend_transition(h, vm,
				    HAVEN__VM_PHASE__VM_PHASE_FAILED,
				    "no worker runs it on its host any more");
			return;
		}
		if (havend_live_called_off(h, vm, w, wp))
			return;
		/* The worker's sentence goes along: why it paused, how long
		 * an outage lasted (vm show, the event log). */
		if (wp == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
		    wp == HAVEN__VM_PHASE__VM_PHASE_PAUSED || tree_phase_final(wp))
			havend_transition(h, vm, wp, vmworker_detail(w));
		break;
	case HAVEN__VM_PHASE__VM_PHASE_STOPPING:
		havend_local_stopping(h, vm, w, wp);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_SAVING:
		havend_local_saving(h, vm, w, wp);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_MIGRATING:
		/* Live, from here. */
		if (havend_no_worker(h, vm, w, wp, "no worker to migrate it"))
			return;
		havend_live_source(h, vm, w);
		break;
	case HAVEN__VM_PHASE__VM_PHASE_STOPPED:
	case HAVEN__VM_PHASE__VM_PHASE_FAILED:
	case HAVEN__VM_PHASE__VM_PHASE_SAVED:
		if (w != NULL && vmworker_alive(w))
			supervisor_kill(h->supervisor, vm->config->uuid);
		else if (w != NULL)
			supervisor_forget(h->supervisor, vm->config->uuid);
		break;
	default:
		/* recovering: its owner comes later. */
		break;
	}
}

/* Level-triggered, after every applied change, sync and worker report. */
void
havend_local(struct havend *h)
{
	const struct cluster	*st;
	struct vmworker		*w, *next;
	size_t			 i;

	if (!h->synced || !replica_is_quorate(h->replica))
		return;		/* isolation responses come with fencing */
	st = replica_state(h->replica);
	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__Vm	*vm = st->cs->vms[i];

		if (vm->runtime->owner == h->node_id)
			havend_local_vm(h, vm);
		else if (moves_live_to(vm->runtime, h->node_id))
			havend_live_target(h, vm);
	}
	/* Workers for VMs that are not ours (any more): never run twice. */
	for (w = supervisor_first(h->supervisor); w != NULL; w = next) {
		const Haven__Vm	*vm = NULL;

		next = supervisor_next(w);
		if (vmworker_adopting(w))
			continue;	/* judged after its hello */
		for (i = 0; i < st->cs->n_vms; i++)
			if (strcmp(st->cs->vms[i]->config->uuid,
			    vmworker_uuid(w)) == 0)
				vm = st->cs->vms[i];
		if (vm != NULL && (vm->runtime->owner == h->node_id ||
		    moves_live_to(vm->runtime, h->node_id)))
			continue;
		if (vmworker_alive(w)) {
			/* Handed over live from here: expected. */
			log_vm(vm != NULL && tree_move(vm->runtime)->from ==
			    h->node_id ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
			    vm != NULL ? vm->config->name : vmworker_uuid(w),
			    "not this host's (owner %u); stopping its worker",
			    vm != NULL ? vm->runtime->owner : 0);
			supervisor_kill(h->supervisor, vmworker_uuid(w));
		} else {
			supervisor_forget(h->supervisor, vmworker_uuid(w));
		}
	}
}

static void
havend_worker_report(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, int fenced, const char *detail,
    void *arg)
{
	struct havend	*h = arg;
	const Haven__Vm	*vm = cluster_vm(replica_state(h->replica), name);

	log_vm(fenced || phase == HAVEN__VM_PHASE__VM_PHASE_FAILED ?
	    LOG_LEVEL_WARN : LOG_LEVEL_INFO, name, "%s%s%s%s",
	    tree_phase_name(phase), fenced ? " (fenced)" : "",
	    *detail ? ": " : "", detail);
	/* A refused restore leaves the worker stopped: for the cluster the
	 * VM failed, and its saved state is not tried again. */
	if (vm != NULL && phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_RESTORING)
		phase = HAVEN__VM_PHASE__VM_PHASE_FAILED;
	if (vm != NULL && vm->runtime->owner == h->node_id &&
	    vm->runtime->generation == generation && tree_phase_final(phase))
		havend_transition(h, vm, phase, detail);
	havend_local(h);
}

static void
havend_worker_adopted(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, void *arg)
{
	havend_local(arg);
}

/* DESIGN §4: a new nexus only while this host is a quorate member that
 * has not been fenced since it joined and is in no undecided two-node
 * race (fencer_racing). */
static int
havend_may_register(struct supervisor *s, const char *uuid, void *arg)
{
	struct havend		*h = arg;
	const Haven__Host	*me = cluster_host(replica_state(h->replica),
				    h->node_id);
	const Haven__Vm		*vm = tree_vm_by_uuid(
				    replica_state(h->replica)->cs, uuid);

	/* Not for a VM the cluster has given to another host meanwhile (its
	 * storage was lost here, and this host fenced off its volumes), nor
	 * while a member fences this host off its volumes on order. */
	return replica_is_quorate(h->replica) && me != NULL && vm != NULL &&
	    (vm->runtime->owner == h->node_id ||
	    moves_live_to(vm->runtime, h->node_id)) &&
	    !havend_storage_fence_standing(h, vm) &&
	    !fencer_racing(h->fencer) &&
	    me->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER &&
	    me->runtime->fence == HAVEN__FENCE_STATUS__FENCE_STATUS_NONE;
}

static void
havend_worker_gone(struct supervisor *s, void *arg)
{
	havend_local(arg);
}

const struct supervisor_callbacks havend_supervisor_callbacks = {
	.report = havend_worker_report,
	.adopted = havend_worker_adopted,
	.gone = havend_worker_gone,
	.may_register = havend_may_register,
};
