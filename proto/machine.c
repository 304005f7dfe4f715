/*
 * A VM's machine as the cluster knows it (issue 16): the bus of its disks
 * and how many it may have, the QEMU machine type and CPU model it needs,
 * whether a host's QEMU offers them (placement and every move ask), and
 * reading QEMU's own lists (`-machine help`, `-cpu help`) that havend
 * publishes for its host.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tree.h"

static const char *const machine_bus_names[] = {
	[HAVEN__DISK_BUS__DISK_BUS_UNSPECIFIED] = "ide",
	[HAVEN__DISK_BUS__DISK_BUS_IDE] = "ide",
	[HAVEN__DISK_BUS__DISK_BUS_VIRTIO] = "virtio",
	[HAVEN__DISK_BUS__DISK_BUS_SCSI] = "scsi",
};

const char *
machine_disk_bus_name(int bus)
{
	if (bus < 0 || bus > HAVEN__DISK_BUS__DISK_BUS_SCSI)
		return "invalid";
	return machine_bus_names[bus];
}

int
machine_disk_bus_parse(const char *s, Haven__DiskBus *bus)
{
	if (strcmp(s, "ide") == 0)
		*bus = HAVEN__DISK_BUS__DISK_BUS_IDE;
	else if (strcmp(s, "virtio") == 0)
		*bus = HAVEN__DISK_BUS__DISK_BUS_VIRTIO;
	else if (strcmp(s, "scsi") == 0)
		*bus = HAVEN__DISK_BUS__DISK_BUS_SCSI;
	else
		return -1;
	return 0;
}

int
machine_disk_bus_ide(int bus)
{
	return bus == HAVEN__DISK_BUS__DISK_BUS_UNSPECIFIED ||
	    bus == HAVEN__DISK_BUS__DISK_BUS_IDE;
}

/* The one limit havenctl, havend and the worker apply. */
int
machine_volumes_check(const char *vm, size_t n, int bus, char *err,
    size_t errlen)
{
	if (bus < 0 || bus > HAVEN__DISK_BUS__DISK_BUS_SCSI) {
		snprintf(err, errlen, "VM %s: unknown disk bus %d", vm, bus);
		return -1;
	}
	if (n > VM_MAX_VOLUMES) {
		snprintf(err, errlen, "VM %s has %zu volumes; at most %d",
		    vm, n, VM_MAX_VOLUMES);
		return -1;
	}
	if (machine_disk_bus_ide(bus) && n > VM_IDE_MAX_VOLUMES) {
		snprintf(err, errlen, "VM %s has %zu volumes on the IDE bus, "
		    "which takes %d (two controllers of two); use --disk-bus "
		    "virtio or scsi for more", vm, n, VM_IDE_MAX_VOLUMES);
		return -1;
	}
	return 0;
}

const char *
machine_cpu_model(const Haven__ClusterSettings *s)
{
	return s != NULL && !tree_empty(s->cpu_model) ? s->cpu_model :
	    MACHINE_CPU_MODEL_DEFAULT;
}

/* A QEMU option value: a name without ',', '=' or spaces. */
int
machine_name_valid(const char *s)
{
	size_t	 i;

	if (s == NULL || *s == '\0' || strlen(s) > MACHINE_NAME_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-", s[i]) ==
		    NULL)
			return 0;
	return 1;
}

static int
machine_listed(char *const *list, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Whether host's QEMU offers machine type `machine` and CPU model `cpu`
 * (either NULL or "": not needed); 0 with the sentence in why when not. A
 * host that has not reported its QEMU (an older havend) is not checked.
 */
int
machine_host_offers(const Haven__HostConfig *host, const char *machine,
    const char *cpu, char *why, size_t len)
{
	if (!tree_empty(machine) && host->n_machine_types > 0 &&
	    !machine_listed(host->machine_types, host->n_machine_types,
	    machine)) {
		snprintf(why, len, "%s's QEMU has no machine type %s",
		    host->name, machine);
		return 0;
	}
	if (!tree_empty(cpu) && host->n_cpu_models > 0 &&
	    !machine_listed(host->cpu_models, host->n_cpu_models, cpu)) {
		if (strcmp(cpu, "host") == 0)
			snprintf(why, len, "%s does not run VMs under KVM, "
			    "and CPU model host needs it", host->name);
		else
			snprintf(why, len, "%s's QEMU has no CPU model %s",
			    host->name, cpu);
		return 0;
	}
	return 1;
}

/*
 * The CPU model vm needs where it goes next: the one it runs with while it
 * runs or has a saved state (a move or a restore meets the same machine),
 * else the cluster's (a cold start takes it).
 */
const char *
machine_vm_cpu(const Haven__ClusterState *cs, const Haven__Vm *vm)
{
	const Haven__VmRuntime	*rt = vm->runtime;

	if ((tree_phase_occupies(rt->phase) ||
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_SAVED || rt->saved_state) &&
	    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STARTING)
		return vm->config->cpu_model;
	return machine_cpu_model(cs->settings);
}

int
machine_host_runs(const Haven__ClusterState *cs, const Haven__HostConfig *host,
    const Haven__Vm *vm, const Haven__VmConfig *vc, char *why, size_t len)
{
	return machine_host_offers(host, vc->machine_type,
	    machine_vm_cpu(cs, vm), why, len);
}

/* --- QEMU's lists ----------------------------------------------------------- */

static int
machine_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds name to list (MACHINE_LIST_MAX at most, each once); 0 if it fit. */
static int
machine_list_add(struct machine_list *l, const char *name, size_t len)
{
	size_t	 i;

	if (len == 0 || len > MACHINE_NAME_MAX)
		return 0;
	for (i = 0; i < l->n; i++)
		if (strlen(l->names[i]) == len &&
		    strncmp(l->names[i], name, len) == 0)
			return 0;
	if (l->n == MACHINE_LIST_MAX)
		return -1;
	if ((l->names[l->n] = strndup(name, len)) == NULL)
		return -1;
	if (!machine_name_valid(l->names[l->n])) {
		free(l->names[l->n]);
		return 0;
	}
	l->n++;
	return 0;
}

void
machine_list_free(struct machine_list *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->names[i]);
	l->n = 0;
}

/*
 * `qemu-system-x86_64 -machine help`: "Supported machines are:", then one
 * machine a line, its name first; "pc ... (alias of pc-i440fx-7.2)" names
 * what pc resolves to, into pc (may be NULL). The names sorted into l.
 */
int
machine_parse_machines(const char *text, struct machine_list *l, char *pc,
    size_t pclen)
{
	const char	*line, *end, *alias, *close;
	size_t		 n;

	if (pc != NULL && pclen > 0)
		*pc = '\0';
	for (line = text; *line != '\0'; line = *end ? end + 1 : end) {
		if ((end = strchr(line, '\n')) == NULL)
			end = line + strlen(line);
		if (strncmp(line, "Supported machines", 18) == 0)
			continue;
		for (n = 0; line + n < end && !isspace((unsigned char)line[n]);
		    n++)
			;
		if (machine_list_add(l, line, n) == -1)
			return -1;
		if (pc != NULL && n == 2 && strncmp(line, "pc", 2) == 0 &&
		    (alias = strstr(line, "(alias of ")) != NULL &&
		    alias < end && (close = strchr(alias, ')')) != NULL &&
		    close < end && (size_t)(close - alias - 10) < pclen) {
			memcpy(pc, alias + 10, (size_t)(close - alias - 10));
			pc[close - alias - 10] = '\0';
		}
	}
	qsort(l->names, l->n, sizeof *l->names, machine_cmp);
	return 0;
}

/*
 * `qemu-system-x86_64 -cpu help`: "Available CPUs:", then "x86 NAME  ...",
 * then the CPUID flags after an empty line. The names sorted into l, "host"
 * only with kvm.
 */
int
machine_parse_cpus(const char *text, int kvm, struct machine_list *l)
{
	const char	*line, *end, *name;
	size_t		 n;

	for (line = text; *line != '\0'; line = *end ? end + 1 : end) {
		if ((end = strchr(line, '\n')) == NULL)
			end = line + strlen(line);
		if (end - line < 5 || strncmp(line, "x86 ", 4) != 0)
			continue;
		for (name = line + 4; name < end && *name == ' '; name++)
			;
		for (n = 0; name + n < end && !isspace((unsigned char)name[n]);
		    n++)
			;
		if (n == 4 && strncmp(name, "host", 4) == 0 && !kvm)
			continue;
		if (machine_list_add(l, name, n) == -1)
			return -1;
	}
	qsort(l->names, l->n, sizeof *l->names, machine_cmp);
	return 0;
}
