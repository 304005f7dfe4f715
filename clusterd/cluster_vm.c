/*
 * Applying the changes that make, change and remove a VM's configuration
 * (cluster_apply's, DESIGN §5): vm create, vm set and vm delete. A
 * configuration is checked whole, the same way for a new VM and a changed
 * one. While a VM runs, `vm set` changes what placement and failure
 * handling read at once, and keeps what its QEMU is made of (memory, vCPUs,
 * volumes, NICs, kernel, disk bus) as the VM's pending configuration,
 * which becomes its configuration at its next cold start
 * (cluster_vm_cold_start): a saved state or a move always meets the
 * machine it was made from. Also
 * volume remove and pool remove, refused while in use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

/* Whether some host of the state offers bridge to guests. */
/* Whether some host can carry nic (1), only offers its bridge without
 * its VLAN (2: neither filtering nor the per-VLAN bridge), or not even
 * that (0). */
static int
nic_anywhere(const Haven__ClusterState *cs, const Haven__Nic *nic)
{
	const Haven__HostConfig	*hc;
	size_t			 i, j;
	int			 bridge = 0;

	for (i = 0; i < cs->n_hosts; i++) {
		hc = cs->hosts[i]->config;
		if (nic_offered(hc, nic, NULL, 0))
			return 1;
		for (j = 0; j < hc->n_vm_bridges; j++)
			if (strcmp(hc->vm_bridges[j], nic->bridge) == 0)
				bridge = 2;
	}
	return bridge;
}

/*
 * A VM's NICs: each as proto/nic.c wants it, its MACs unique in the
 * cluster (havend chose the missing ones; an operator's may collide), and
 * one host at least that offers all its bridges, so that a typo is refused
 * here rather than found when the VM is placed.
 */
static int
vm_config_nics(const Haven__ClusterState *cs, const Haven__VmConfig *vc,
    char *err, size_t errlen)
{
	const Haven__Vm	*other;
	uint8_t		 mac[NET_MAC_BYTES];
	size_t		 i, nic;

	if (nic_config_check(vc, err, errlen) == -1)
		return CLUSTER_E_INVALID;
	for (i = 0; i < vc->n_nics; i++) {
		(void)net_mac_parse(vc->nics[i]->mac, mac);
		if ((other = nic_mac_user(cs, mac, vc->name, &nic)) != NULL)
			REFUSE(CLUSTER_E_CONFLICT, "VM %s: MAC %s is NIC %zu of "
			    "VM %s already; give another mac=, or leave it out "
			    "to have one chosen", vc->name, vc->nics[i]->mac,
			    nic, other->config->name);
	}
	if (vc->n_nics == 0)
		return CLUSTER_OK;
	for (i = 0; i < cs->n_hosts; i++)
		if (nic_bridges_offered(cs->hosts[i]->config, vc, NULL, 0))
			return CLUSTER_OK;
	for (i = 0; i < vc->n_nics; i++)
		switch (nic_anywhere(cs, vc->nics[i])) {
		case 0:
			REFUSE(CLUSTER_E_NOT_FOUND, "VM %s: no host offers bridge "
			    "%s to guests; list it under [interfaces] vm in "
			    "haven.conf of the hosts that have it ('havenctl "
			    "node list' shows what each offers)", vc->name,
			    vc->nics[i]->bridge);
		case 2:
			REFUSE(CLUSTER_E_NOT_FOUND, "VM %s: no host carries VLAN "
			    "%u of bridge %s: none filters VLANs on it (ip link "
			    "set %s type bridge vlan_filtering 1) nor offers its "
			    "per-VLAN bridge %sv%u ([interfaces] vm); 'havenctl "
			    "node list' shows what each offers", vc->name,
			    vc->nics[i]->vlan, vc->nics[i]->bridge,
			    vc->nics[i]->bridge, vc->nics[i]->bridge,
			    vc->nics[i]->vlan);
		default:
			break;
		}
	REFUSE(CLUSTER_E_NOT_FOUND, "VM %s: no host offers all of its NICs' "
	    "bridges together; 'havenctl node list' shows what each offers",
	    vc->name);
}

int
cluster_vm_strings(const Haven__VmConfig *vc, char *err, size_t errlen)
{
	if (!tree_name_valid(vc->name))
		REFUSE(CLUSTER_E_INVALID, "VM name '%.64s' is not a name "
		    "(letters, digits, '.', '_', '-'; at most %d, a letter or "
		    "digit first)", tree_printable(vc->name), TREE_NAME_MAX);
	if (!tree_empty(vc->uuid) && !uuid_valid(vc->uuid))
		REFUSE(CLUSTER_E_INVALID, "VM %s: '%.40s' is not a UUID",
		    vc->name, tree_printable(vc->uuid));
	if (!tree_empty(vc->anti_affinity) &&
	    !tree_name_valid(vc->anti_affinity))
		REFUSE(CLUSTER_E_INVALID, "VM %s: anti-affinity class '%.64s' "
		    "is not a name", vc->name,
		    tree_printable(vc->anti_affinity));
	if ((!tree_empty(vc->kernel) && !tree_path_valid(vc->kernel)) ||
	    (!tree_empty(vc->initrd) && !tree_path_valid(vc->initrd)))
		REFUSE(CLUSTER_E_INVALID, "VM %s: the kernel and initrd must be "
		    "absolute paths without '..' or control characters",
		    vc->name);
	if (!tree_text_valid(vc->kernel_append, 4096))
		REFUSE(CLUSTER_E_INVALID, "VM %s: the kernel command line has "
		    "control characters or is over 4096 bytes", vc->name);
	if (boot_config_check(vc, err, errlen) == -1)
		return CLUSTER_E_INVALID;
	return CLUSTER_OK;
}

/* The VM other than vc's own that lists volume in its configuration or its
 * pending one, or NULL: one VM per volume, the volume is the failover unit. */
static const Haven__Vm *
volume_user(const Haven__ClusterState *cs, const char *volume,
    const char *except)
{
	const Haven__VmConfig	*o;
	size_t			 i, k, v;

	for (i = 0; i < cs->n_vms; i++) {
		for (k = 0; k < 2; k++) {
			o = k == 0 ? cs->vms[i]->config : cs->vms[i]->pending;
			if (o == NULL || strcmp(o->name, except) == 0)
				continue;
			for (v = 0; v < o->n_volumes; v++)
				if (strcmp(o->volumes[v], volume) == 0)
					return cs->vms[i];
		}
	}
	return NULL;
}

/* A VM's whole configuration, new or changed: what it may be on its own,
 * and against the rest of the state (volumes, MACs, bridges). */
static int
vm_config_check(const Haven__ClusterState *cs, const Haven__VmConfig *vc,
    char *err, size_t errlen)
{
	const Haven__Vm	*other;
	size_t		 i, j;
	int		 r;

	if ((r = cluster_vm_strings(vc, err, errlen)) != CLUSTER_OK)
		return r;
	if (vc->memory_mib == 0 || vc->vcpus == 0)
		REFUSE(CLUSTER_E_INVALID, "VM %s needs memory and vcpus > 0",
		    vc->name);
	if ((r = cluster_machine_vm_check(cs, vc, err, errlen)) != CLUSTER_OK)
		return r;
	if (vc->storage_timeout_s > 86400)
		REFUSE(CLUSTER_E_INVALID, "VM %s: the storage timeout is at "
		    "most 86400 s (0: the cluster's)", vc->name);
	if (vc->isolation_response < 0 || vc->isolation_response >
	    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE)
		REFUSE(CLUSTER_E_INVALID, "VM %s has an unknown isolation response",
		    vc->name);
	for (i = 0; i < vc->n_volumes; i++) {
		if (tree_volume_find(cs, vc->volumes[i], NULL) < 0)
			REFUSE(CLUSTER_E_NOT_FOUND, "VM %s: volume %s does not "
			    "exist", vc->name, vc->volumes[i]);
		for (j = 0; j < i; j++)
			if (strcmp(vc->volumes[i], vc->volumes[j]) == 0)
				REFUSE(CLUSTER_E_INVALID, "VM %s lists volume %s "
				    "twice", vc->name, vc->volumes[i]);
		if ((other = volume_user(cs, vc->volumes[i], vc->name)) != NULL)
			REFUSE(CLUSTER_E_CONFLICT, "volume %s belongs to VM %s",
			    vc->volumes[i], other->config->name);
	}
	for (i = 0; i < vc->n_preferred_owners; i++) {
		if (vc->preferred_owners[i] == 0)
			REFUSE(CLUSTER_E_INVALID, "VM %s: preferred owner 0 is not "
			    "a node id", vc->name);
		for (j = 0; j < i; j++)
			if (vc->preferred_owners[i] == vc->preferred_owners[j])
				REFUSE(CLUSTER_E_INVALID, "VM %s lists preferred "
				    "owner %u twice", vc->name,
				    vc->preferred_owners[i]);
	}
	return vm_config_nics(cs, vc, err, errlen);
}

int
cluster_apply_vm_create(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__VmConfig	*vc = c->vm_create->config;
	Haven__Vm		*vm;
	size_t			 at;
	char			 subject[64];
	int			 r;

	if (vc == NULL || tree_empty(vc->name))
		REFUSE(CLUSTER_E_INVALID, "vm_create needs a name");
	if ((r = cluster_vm_strings(vc, err, errlen)) != CLUSTER_OK)
		return r;
	if (tree_vm_find(cs, vc->name, &at) >= 0)
		REFUSE(CLUSTER_E_EXISTS, "VM %s exists already", vc->name);
	if ((r = vm_config_check(cs, vc, err, errlen)) != CLUSTER_OK)
		return r;
	if (!commit)
		return CLUSTER_OK;
	vm = xcalloc(1, sizeof *vm);
	haven__vm__init(vm);
	vm->config = tree_xclone(&vc->base);
	vm->runtime = xcalloc(1, sizeof *vm->runtime);
	haven__vm_runtime__init(vm->runtime);
	vm->runtime->desired = HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED;
	vm->runtime->phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
	tree_array_insert((void ***)&cs->vms, &cs->n_vms, at, vm);
	snprintf(subject, sizeof subject, "vm %.48s", vc->name);
	tree_event_log(cs, c, subject, "created");
	return CLUSTER_OK;
}

int
cluster_apply_vm_delete(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const char	*name = c->vm_delete->name;
	Haven__Vm	*vm;
	long		 i;
	char		 subject[64];

	if ((i = tree_vm_find(cs, name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", name);
	vm = cs->vms[i];
	if (vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
		REFUSE(CLUSTER_E_CONFLICT, "VM %s is %s; stop it before deleting",
		    name, tree_phase_name(vm->runtime->phase));
	if (cluster_storage_giveup_pending(vm))
		REFUSE(CLUSTER_E_CONFLICT, "VM %s was stopped while host %u held "
		    "its volumes and its storage did not answer; it can be "
		    "deleted once a host that reaches them has fenced host %u off "
		    "them (by itself, when the SAN answers)", name,
		    vm->runtime->storage_fence->host,
		    vm->runtime->storage_fence->host);
	if (!commit)
		return CLUSTER_OK;
	snprintf(subject, sizeof subject, "vm %.48s", name);
	tree_event_log(cs, c, subject, "deleted");
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	tree_array_remove((void **)cs->vms, &cs->n_vms, (size_t)i);
	return CLUSTER_OK;
}

/* --- vm set ---------------------------------------------------------------- */

static int
strings_differ(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t	i;

	if (na != nb)
		return 1;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 1;
	return 0;
}

static int
nics_differ(const Haven__VmConfig *a, const Haven__VmConfig *b)
{
	size_t	i;

	if (a->n_nics != b->n_nics)
		return 1;
	for (i = 0; i < a->n_nics; i++)
		if (strcmp(a->nics[i]->bridge, b->nics[i]->bridge) != 0 ||
		    strcmp(a->nics[i]->mac, b->nics[i]->mac) != 0 ||
		    a->nics[i]->vlan != b->nics[i]->vlan ||
		    a->nics[i]->model != b->nics[i]->model)
			return 1;
	return 0;
}

/*
 * What differs between two configurations of a VM, as a list for the event
 * ("memory 128 -> 256 MiB, NICs"), the fields QEMU's machine is made of
 * (cold) apart from the rest; returns whether any cold one differs.
 */
static int
vm_config_diff(const Haven__VmConfig *a, const Haven__VmConfig *b,
    char *cold, char *hot, size_t len)
{
	size_t	cn = 0, hn = 0;

	*cold = *hot = '\0';
#define ADD(buf, n, ...) do {						\
	int w_ = snprintf(buf + n, len - n, "%s", n > 0 ? ", " : "");	\
	if (w_ > 0 && n + (size_t)w_ < len)				\
		n += (size_t)w_;					\
	w_ = snprintf(buf + n, len - n, __VA_ARGS__);			\
	if (w_ > 0 && n + (size_t)w_ < len)				\
		n += (size_t)w_;					\
} while (0)
	if (a->memory_mib != b->memory_mib)
		ADD(cold, cn, "memory %llu -> %llu MiB",
		    (unsigned long long)a->memory_mib,
		    (unsigned long long)b->memory_mib);
	if (a->vcpus != b->vcpus)
		ADD(cold, cn, "vcpus %u -> %u", a->vcpus, b->vcpus);
	if (strings_differ(a->volumes, a->n_volumes, b->volumes, b->n_volumes))
		ADD(cold, cn, "volumes");
	if (nics_differ(a, b))
		ADD(cold, cn, "NICs");
	if (strcmp(a->kernel, b->kernel) != 0 ||
	    strcmp(a->kernel_append, b->kernel_append) != 0 ||
	    strcmp(a->initrd, b->initrd) != 0)
		ADD(cold, cn, "kernel");
	if (a->disk_bus != b->disk_bus)
		ADD(cold, cn, "disk bus %s -> %s",
		    machine_disk_bus_name(a->disk_bus),
		    machine_disk_bus_name(b->disk_bus));
	if (strcmp(a->machine_type, b->machine_type) != 0)
		ADD(cold, cn, "machine type");
	if (strcmp(boot_firmware_name(a->firmware),
	    boot_firmware_name(b->firmware)) != 0)
		ADD(cold, cn, "firmware %s -> %s", boot_firmware_name(a->firmware),
		    boot_firmware_name(b->firmware));
	if (strcmp(a->cdrom, b->cdrom) != 0)
		ADD(cold, cn, "cdrom %s", *b->cdrom != '\0' ? b->cdrom : "none");
	if (strcmp(a->boot_order, b->boot_order) != 0)
		ADD(cold, cn, "boot order");
	if (a->priority != b->priority)
		ADD(hot, hn, "priority %u -> %u", a->priority, b->priority);
	if (a->n_preferred_owners != b->n_preferred_owners ||
	    (a->n_preferred_owners > 0 && memcmp(a->preferred_owners,
	    b->preferred_owners, a->n_preferred_owners *
	    sizeof *a->preferred_owners) != 0))
		ADD(hot, hn, "preferred owners");
	if (strcmp(a->anti_affinity, b->anti_affinity) != 0)
		ADD(hot, hn, "anti-affinity");
	if (a->failback != b->failback)
		ADD(hot, hn, "failback %s", b->failback ? "on" : "off");
	if (a->isolation_response != b->isolation_response)
		ADD(hot, hn, "isolation response");
	if (a->max_restarts != b->max_restarts)
		ADD(hot, hn, "max restarts %u -> %u", a->max_restarts,
		    b->max_restarts);
	if (a->stop_timeout_s != b->stop_timeout_s)
		ADD(hot, hn, "stop timeout");
	if (a->storage_timeout_s != b->storage_timeout_s)
		ADD(hot, hn, "storage timeout");
#undef ADD
	return cn > 0;
}

/* Swaps the fields QEMU's machine is made of between a and b (both are
 * whole trees of their own, so each frees what it holds after). */
static void
vm_config_swap_cold(Haven__VmConfig *a, Haven__VmConfig *b)
{
#define SWAP(f) do {							\
	__typeof__(a->f) t_ = a->f;					\
	a->f = b->f;							\
	b->f = t_;							\
} while (0)
	SWAP(memory_mib);
	SWAP(vcpus);
	SWAP(n_volumes);
	SWAP(volumes);
	SWAP(n_nics);
	SWAP(nics);
	SWAP(kernel);
	SWAP(kernel_append);
	SWAP(initrd);
	SWAP(disk_bus);
	SWAP(machine_type);
	SWAP(cpu_model);
	SWAP(firmware);
	SWAP(cdrom);
	SWAP(boot_order);
#undef SWAP
}

/* Whether the VM runs nowhere and no saved state waits for its machine:
 * its next start is cold, so a change may take effect at once. */
static int
vm_idle(const Haven__VmRuntime *rt)
{
	return (rt->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED ||
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_FAILED) && !rt->saved_state;
}

int
cluster_apply_vm_set(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__VmSet	*s = c->vm_set;
	const Haven__VmConfig	*vc = s->config;
	Haven__VmConfig		*next, *pending;
	Haven__Vm		*vm;
	char			 subject[64], cold[256], hot[256];
	int			 r, idle, later;

	if (vc == NULL || tree_empty(s->name))
		REFUSE(CLUSTER_E_INVALID, "vm_set needs a name and a "
		    "configuration");
	if ((vm = tree_vm(cs, s->name)) == NULL)
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s does not exist", s->name);
	if (tree_empty(vc->name) || strcmp(vc->name, vm->config->name) != 0 ||
	    strcmp(vc->uuid, vm->config->uuid) != 0)
		REFUSE(CLUSTER_E_INVALID, "VM %s: vm set keeps the VM's name "
		    "and UUID", s->name);
	if (s->base_digest != tree_config_digest(tree_vm_next_config(vm)))
		REFUSE(CLUSTER_E_CONFLICT, "VM %s was changed meanwhile; run "
		    "'havenctl vm set' again", s->name);
	if ((r = vm_config_check(cs, vc, err, errlen)) != CLUSTER_OK)
		return r;
	if (!commit)
		return CLUSTER_OK;
	idle = vm_idle(vm->runtime);
	later = vm_config_diff(vm->config, vc, cold, hot, sizeof cold) &&
	    !idle;
	/* Copies first: vc may share strings with what is freed below. */
	pending = later ? tree_xclone(&vc->base) : NULL;
	next = tree_xclone(&vc->base);
	if (vm->pending != NULL)
		protobuf_c_message_free_unpacked(&vm->pending->base, NULL);
	vm->pending = pending;
	/* What placement and failure handling read changes at once; the
	 * machine only when nothing runs it. */
	if (!idle)
		vm_config_swap_cold(next, vm->config);
	protobuf_c_message_free_unpacked(&vm->config->base, NULL);
	vm->config = next;
	snprintf(subject, sizeof subject, "vm %.48s", s->name);
	if (later && *hot != '\0')
		tree_event_log(cs, c, subject, "changed: %s; at its next start: "
		    "%s", hot, cold);
	else if (later)
		tree_event_log(cs, c, subject, "changed at its next start: %s",
		    cold);
	else
		tree_event_log(cs, c, subject, "changed: %s%s%s", cold,
		    *cold != '\0' && *hot != '\0' ? ", " : "", hot);
	return CLUSTER_OK;
}

/* A cold start (cluster_apply's vm_assign, phase starting), or a VM that
 * runs nowhere any more (cluster_vm_pending_sync): the pending
 * configuration `vm set` left while the VM ran becomes its configuration. */
void
cluster_vm_cold_start(Haven__ClusterState *cs, const Haven__Change *c,
    Haven__Vm *vm)
{
	char	 subject[64], cold[256], hot[256];

	if (vm->pending == NULL)
		return;
	(void)vm_config_diff(vm->config, vm->pending, cold, hot, sizeof cold);
	protobuf_c_message_free_unpacked(&vm->config->base, NULL);
	vm->config = vm->pending;
	vm->pending = NULL;
	snprintf(subject, sizeof subject, "vm %.48s", vm->config->name);
	tree_event_log(cs, c, subject, "takes its changed configuration"
	    "%s%s", *cold != '\0' ? ": " : "", cold);
}

/* After every applied change: a VM whose machine no longer runs anywhere
 * (stopped, or failed without a saved state) takes its pending
 * configuration, so what it no longer uses (a volume, a MAC) is free. */
void
cluster_vm_pending_sync(Haven__ClusterState *cs, const Haven__Change *c)
{
	size_t	 i;

	for (i = 0; i < cs->n_vms; i++)
		if (cs->vms[i]->pending != NULL &&
		    vm_idle(cs->vms[i]->runtime))
			cluster_vm_cold_start(cs, c, cs->vms[i]);
}

/* --- volume remove, pool remove -------------------------------------------- */

int
cluster_apply_volume_remove(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const char	*name = c->volume_remove->name;
	const Haven__Vm	*user;
	long		 i;
	char		 subject[64];

	if ((i = tree_volume_find(cs, name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "volume %.64s does not exist",
		    tree_printable(name));
	if ((user = volume_user(cs, name, "")) != NULL)
		REFUSE(CLUSTER_E_CONFLICT, "volume %s is in use by VM %s; "
		    "delete the VM, or move it to other volumes with 'havenctl "
		    "vm set %s --volume ...' first", name, user->config->name,
		    user->config->name);
	if (!commit)
		return CLUSTER_OK;
	snprintf(subject, sizeof subject, "volume %.48s", name);
	tree_event_log(cs, c, subject, "removed (its LUN is left as it is)");
	protobuf_c_message_free_unpacked(&cs->volumes[i]->base, NULL);
	tree_array_remove((void **)cs->volumes, &cs->n_volumes, (size_t)i);
	return CLUSTER_OK;
}

int
cluster_apply_pool_remove(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const char	*name = c->pool_remove->name;
	size_t		 j, n = 0;
	long		 i;
	char		 subject[64], first[TREE_NAME_MAX + 1] = "";

	if ((i = tree_pool_find(cs, name, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "pool %.64s does not exist",
		    tree_printable(name));
	for (j = 0; j < cs->n_volumes; j++) {
		if (strcmp(cs->volumes[j]->pool, name) != 0)
			continue;
		if (n++ == 0)
			snprintf(first, sizeof first, "%s", cs->volumes[j]->name);
	}
	if (n > 0)
		REFUSE(CLUSTER_E_CONFLICT, "pool %s holds %zu volume%s (%s%s); "
		    "remove them first ('havenctl volume remove')", name, n,
		    n == 1 ? "" : "s", first, n > 1 ? ", ..." : "");
	if (!commit)
		return CLUSTER_OK;
	snprintf(subject, sizeof subject, "pool %.48s", name);
	tree_event_log(cs, c, subject, "removed");
	protobuf_c_message_free_unpacked(&cs->pools[i]->base, NULL);
	tree_array_remove((void **)cs->pools, &cs->n_pools, (size_t)i);
	return CLUSTER_OK;
}
