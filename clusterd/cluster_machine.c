/*
 * Applying what concerns a VM's machine (issue 16): a host's report of what
 * its QEMU offers (HostQemu, and the same lists in HostAdd), the cluster's
 * CPU model (SettingsSet's cpu_model), a VM's machine type and CPU model
 * against the hosts that could run it, and the CPU model a VM takes at a
 * cold start. Placement and moves ask proto/machine.c's machine_host_runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clusterd.h"
#include "proto.h"

#define REFUSE(code, ...)	return tree_fail(code, err, errlen, __VA_ARGS__)

/* A list as the state holds it: names QEMU takes, sorted, each once. */
static int
machine_list_check(uint32_t id, const char *what, char *const *list,
    size_t n, char *err, size_t errlen)
{
	size_t	 i;

	if (n > MACHINE_LIST_MAX)
		REFUSE(CLUSTER_E_INVALID, "host %u reports %zu %s; at most %d",
		    id, n, what, MACHINE_LIST_MAX);
	for (i = 0; i < n; i++) {
		if (!machine_name_valid(list[i]))
			REFUSE(CLUSTER_E_INVALID, "host %u: '%.64s' is not a "
			    "QEMU name (%s)", id, tree_printable(list[i]),
			    what);
		if (i > 0 && strcmp(list[i - 1], list[i]) >= 0)
			REFUSE(CLUSTER_E_INVALID, "host %u: its %s must be "
			    "sorted, each once", id, what);
	}
	return CLUSTER_OK;
}

int
cluster_machine_host_check(const Haven__HostConfig *hc, char *err,
    size_t errlen)
{
	int	 r;

	if ((r = machine_list_check(hc->node_id, "machine types",
	    hc->machine_types, hc->n_machine_types, err, errlen)) != CLUSTER_OK ||
	    (r = machine_list_check(hc->node_id, "CPU models", hc->cpu_models,
	    hc->n_cpu_models, err, errlen)) != CLUSTER_OK)
		return r;
	if (!tree_empty(hc->qemu_version) &&
	    !machine_name_valid(hc->qemu_version))
		REFUSE(CLUSTER_E_INVALID, "host %u: '%.32s' is not a QEMU "
		    "version", hc->node_id, tree_printable(hc->qemu_version));
	return CLUSTER_OK;
}

/* A string field of the state set to a copy of s (the old one freed unless
 * it is protobuf-c's shared empty string). */
void
cluster_machine_set_string(char **field, const char *s)
{
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = xstrdup(s);
}

int
cluster_apply_host_qemu(Haven__ClusterState *cs, const Haven__Change *c,
    int commit, char *err, size_t errlen)
{
	const Haven__HostQemu	*q = c->host_qemu;
	Haven__HostConfig	 probe = HAVEN__HOST_CONFIG__INIT;
	Haven__HostConfig	*hc;
	char			 subject[32];
	long			 hi;
	int			 r;

	if ((hi = tree_host_find(cs, q->node_id, NULL)) < 0)
		REFUSE(CLUSTER_E_NOT_FOUND, "host %u does not exist", q->node_id);
	probe.node_id = q->node_id;
	probe.machine_types = q->machine_types;
	probe.n_machine_types = q->n_machine_types;
	probe.cpu_models = q->cpu_models;
	probe.n_cpu_models = q->n_cpu_models;
	probe.qemu_version = q->qemu_version;
	if ((r = cluster_machine_host_check(&probe, err, errlen)) != CLUSTER_OK)
		return r;
	hc = cs->hosts[hi]->config;
	if (cluster_strings_same(hc->machine_types, hc->n_machine_types,
	    q->machine_types, q->n_machine_types) &&
	    cluster_strings_same(hc->cpu_models, hc->n_cpu_models,
	    q->cpu_models, q->n_cpu_models) &&
	    strcmp(hc->qemu_version, q->qemu_version) == 0)
		REFUSE(CLUSTER_E_STALE, "host %u reported this QEMU already",
		    q->node_id);
	if (!commit)
		return CLUSTER_OK;
	cluster_strings_free(hc->machine_types, hc->n_machine_types);
	hc->machine_types = cluster_strings_dup(q->machine_types,
	    q->n_machine_types);
	hc->n_machine_types = q->n_machine_types;
	cluster_strings_free(hc->cpu_models, hc->n_cpu_models);
	hc->cpu_models = cluster_strings_dup(q->cpu_models, q->n_cpu_models);
	hc->n_cpu_models = q->n_cpu_models;
	cluster_machine_set_string(&hc->qemu_version, q->qemu_version);
	snprintf(subject, sizeof subject, "host %u", q->node_id);
	tree_event_log(cs, c, subject, "QEMU %s: %zu machine types, %zu CPU "
	    "models", tree_empty(q->qemu_version) ? "?" : q->qemu_version,
	    q->n_machine_types, q->n_cpu_models);
	return CLUSTER_OK;
}

/* Whether some host that reported its QEMU offers machine/cpu (1), none
 * reported (1), or none of those that did offers it (0, why: the first
 * refusal's sentence). */
static int
machine_anywhere(const Haven__ClusterState *cs, const char *machine,
    const char *cpu, char *why, size_t len)
{
	const Haven__HostConfig	*hc;
	size_t			 i;
	int			 reported = 0;

	*why = '\0';
	for (i = 0; i < cs->n_hosts; i++) {
		hc = cs->hosts[i]->config;
		if (hc->n_machine_types == 0 && hc->n_cpu_models == 0)
			continue;
		reported = 1;
		if (machine_host_offers(hc, machine, cpu, why, len))
			return 1;
	}
	return !reported;
}

int
cluster_machine_vm_check(const Haven__ClusterState *cs,
    const Haven__VmConfig *vc, char *err, size_t errlen)
{
	char	 why[160];

	if (vc->disk_bus < 0 || vc->disk_bus > HAVEN__DISK_BUS__DISK_BUS_SCSI)
		REFUSE(CLUSTER_E_INVALID, "VM %s: unknown disk bus %d", vc->name,
		    (int)vc->disk_bus);
	if (machine_volumes_check(vc->name, vc->n_volumes, vc->disk_bus, err,
	    errlen) == -1)
		return CLUSTER_E_INVALID;
	if (machine_disk_bus_ide(vc->disk_bus) && !tree_empty(vc->cdrom) &&
	    vc->n_volumes >= VM_IDE_MAX_VOLUMES)
		REFUSE(CLUSTER_E_INVALID, "VM %s has %zu volumes on the IDE bus "
		    "and a cdrom, which takes IDE's fourth place; at most %d "
		    "volumes with it, or use --disk-bus virtio or scsi",
		    vc->name, vc->n_volumes, VM_IDE_MAX_VOLUMES - 1);
	if ((!tree_empty(vc->machine_type) &&
	    !machine_name_valid(vc->machine_type)) ||
	    (!tree_empty(vc->cpu_model) && !machine_name_valid(vc->cpu_model)))
		REFUSE(CLUSTER_E_INVALID, "VM %s: the machine type and CPU "
		    "model are QEMU names (letters, digits, '.', '_', '-')",
		    vc->name);
	if (!tree_empty(vc->machine_type) &&
	    !machine_anywhere(cs, vc->machine_type, NULL, why, sizeof why))
		REFUSE(CLUSTER_E_NOT_FOUND, "VM %s: no host's QEMU offers "
		    "machine type %s (%s)", vc->name, vc->machine_type, why);
	return CLUSTER_OK;
}

int
cluster_machine_settings_check(const Haven__ClusterState *cs,
    const char *cpu, char *err, size_t errlen)
{
	char	 why[160];

	if (tree_empty(cpu))
		return CLUSTER_OK;
	if (!machine_name_valid(cpu))
		REFUSE(CLUSTER_E_INVALID, "'%.64s' is not a CPU model name (one "
		    "of 'qemu-system-x86_64 -cpu help')", tree_printable(cpu));
	if (!machine_anywhere(cs, NULL, cpu, why, sizeof why))
		REFUSE(CLUSTER_E_NOT_FOUND, "no host can run CPU model %s (%s); "
		    "'havenctl node list --json' shows what each QEMU offers",
		    cpu, why);
	return CLUSTER_OK;
}

/* A cold start: the VM's machine takes the cluster's CPU model. */
void
cluster_machine_cold_start(Haven__ClusterState *cs, Haven__Vm *vm)
{
	const char	*cpu = machine_cpu_model(cs->settings);

	if (strcmp(vm->config->cpu_model, cpu) == 0)
		return;
	cluster_machine_set_string(&vm->config->cpu_model, cpu);
}
