/*
 * Rolling upgrade (issue 17): which replicated protocol a change needs. A
 * member of an older build keeps a field it does not know as an unknown
 * field but acts as if it were unset, and refuses a change of a kind it does
 * not know while the others apply it; so while such a member is in the
 * cluster, nobody proposes either (docs/design-notes.md, "Rolling upgrade").
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

uint32_t
protocol_of(uint32_t announced)
{
	return announced == 0 ? HAVEN_PROTOCOL_OLDEST : announced;
}

uint32_t
protocol_running(const uint32_t *announced, size_t n)
{
	uint32_t	 p = HAVEN_PROTOCOL;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (protocol_of(announced[i]) < p)
			p = protocol_of(announced[i]);
	return p;
}

/*
 * The table: what came with each protocol, in the order it is looked at.
 * A row says that c uses it (and writes how an operator names it into
 * what). New rows go at the end, under the protocol that brings them; a
 * field is "used" only when it is set to other than what an older member
 * means by its absence.
 */
struct protocol_feature {
	uint32_t	 protocol;
	int		(*used)(const Haven__Change *, char *, size_t);
};

/* The VM configuration a change carries (vm create, vm set), or NULL. */
static const Haven__VmConfig *
change_vm_config(const Haven__Change *c)
{
	if (c->kind_case == HAVEN__CHANGE__KIND_VM_CREATE &&
	    c->vm_create != NULL)
		return c->vm_create->config;
	if (c->kind_case == HAVEN__CHANGE__KIND_VM_SET && c->vm_set != NULL)
		return c->vm_set->config;
	return NULL;
}

#define SAY(...)	(snprintf(what, len, __VA_ARGS__), 1)

/* Protocol 2: issue 16, the VM's machine, its firmware and media. */
static int
used_host_qemu(const Haven__Change *c, char *what, size_t len)
{
	return c->kind_case == HAVEN__CHANGE__KIND_HOST_QEMU &&
	    SAY("a report of its QEMU's machine types and CPU models");
}

static int
used_host_add_qemu(const Haven__Change *c, char *what, size_t len)
{
	const Haven__HostConfig	*hc;

	if (c->kind_case != HAVEN__CHANGE__KIND_HOST_ADD ||
	    c->host_add == NULL || (hc = c->host_add->config) == NULL)
		return 0;
	return (hc->n_machine_types > 0 || hc->n_cpu_models > 0 ||
	    (hc->qemu_version != NULL && *hc->qemu_version != '\0')) &&
	    SAY("its QEMU's machine types and CPU models");
}

static int
used_disk_bus(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = change_vm_config(c);

	/* An older member runs every VM's disks on IDE. */
	return vc != NULL && !machine_disk_bus_ide(vc->disk_bus) &&
	    SAY("--disk-bus %s (meanwhile, give --disk-bus ide)",
	    machine_disk_bus_name(vc->disk_bus));
}

/*
 * A VM's machine type and CPU model are not the operator's to set with vm
 * set: a VmSet carries what the VM has (its CPU model is set by the apply
 * step at a cold start, on every member alike), so only a new VM counts.
 */
static int
used_machine_type(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = c->kind_case ==
				    HAVEN__CHANGE__KIND_VM_CREATE ?
				    change_vm_config(c) : NULL;

	return vc != NULL && vc->machine_type != NULL &&
	    *vc->machine_type != '\0' &&
	    SAY("a VM pinned to machine type %.64s", vc->machine_type);
}

static int
used_vm_cpu_model(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = c->kind_case ==
				    HAVEN__CHANGE__KIND_VM_CREATE ?
				    change_vm_config(c) : NULL;

	return vc != NULL && vc->cpu_model != NULL && *vc->cpu_model != '\0' &&
	    SAY("a VM's CPU model %.64s", vc->cpu_model);
}

static int
used_firmware(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = change_vm_config(c);

	return vc != NULL && vc->firmware != NULL && *vc->firmware != '\0' &&
	    strcmp(vc->firmware, "bios") != 0 &&
	    SAY("--firmware %.16s", vc->firmware);
}

static int
used_cdrom(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = change_vm_config(c);

	return vc != NULL && vc->cdrom != NULL && *vc->cdrom != '\0' &&
	    SAY("--cdrom");
}

static int
used_boot_order(const Haven__Change *c, char *what, size_t len)
{
	const Haven__VmConfig	*vc = change_vm_config(c);

	return vc != NULL && vc->boot_order != NULL &&
	    *vc->boot_order != '\0' && SAY("--boot %.32s", vc->boot_order);
}

/* A SettingsSet change, or NULL. */
static const Haven__SettingsSet *
change_settings(const Haven__Change *c)
{
	return c->kind_case == HAVEN__CHANGE__KIND_SETTINGS_SET ?
	    c->settings_set : NULL;
}

/*
 * Whether s sets field (to value): named in its field list, or, with no
 * list (every field), set to other than empty. An older member refuses a
 * field name it does not know.
 */
static int
settings_names(const Haven__SettingsSet *s, const char *field,
    const char *value)
{
	size_t	i;

	for (i = 0; i < s->n_fields; i++)
		if (strcmp(s->fields[i], field) == 0)
			return 1;
	return s->n_fields == 0 && value != NULL && *value != '\0';
}

static int
used_settings_cpu_model(const Haven__Change *c, char *what, size_t len)
{
	const Haven__SettingsSet	*s = change_settings(c);

	return s != NULL && settings_names(s, "cpu_model", s->settings !=
	    NULL ? s->settings->cpu_model : NULL) && SAY("--cpu-model");
}

/* Protocol 3: the cluster's corosync.conf in the state (issue 17:
 * cluster join, node remove), iSCSI multipath (issue 17). */
static int
used_settings_corosync_conf(const Haven__Change *c, char *what, size_t len)
{
	const Haven__SettingsSet	*s = change_settings(c);

	return s != NULL && settings_names(s, "corosync_conf", s->settings !=
	    NULL ? s->settings->corosync_conf : NULL) &&
	    SAY("cluster join or node remove (the cluster's corosync.conf)");
}

static int
used_pool_portals(const Haven__Change *c, char *what, size_t len)
{
	/* An older member's workers would use the first portal only. */
	return c->kind_case == HAVEN__CHANGE__KIND_POOL_ADD &&
	    c->pool_add != NULL && c->pool_add->config != NULL &&
	    c->pool_add->config->n_portals > 1 &&
	    SAY("a pool on %zu portals (--portal more than once)",
	    c->pool_add->config->n_portals);
}

static int
used_storage_paths(const Haven__Change *c, char *what, size_t len)
{
	const Haven__HostStorage	*hs;
	size_t				 i;

	/* An older member sees a report whose paths alone changed as one
	 * it has already, and refuses it. */
	if (c->kind_case != HAVEN__CHANGE__KIND_HOST_STORAGE ||
	    (hs = c->host_storage) == NULL)
		return 0;
	for (i = 0; i < hs->n_pools; i++)
		if (hs->pools[i]->n_paths > 0 ||
		    hs->pools[i]->n_path_reachable > 0)
			return SAY("a storage report per path");
	return 0;
}

#undef SAY

static const struct protocol_feature protocol_features[] = {
	/* 2: issue 16 (HostQemu, Change kind 18; HostConfig 7-9; VmConfig
	 * 19-23 and 25; ClusterSettings 8). */
	{ 2, used_host_qemu },
	{ 2, used_host_add_qemu },
	{ 2, used_disk_bus },
	{ 2, used_machine_type },
	{ 2, used_vm_cpu_model },
	{ 2, used_firmware },
	{ 2, used_cdrom },
	{ 2, used_boot_order },
	{ 2, used_settings_cpu_model },
	/* 3: bootstrap (ClusterSettings 12), iSCSI multipath (PoolConfig 4;
	 * PoolHealth 4-5). VolumeRef 6 goes only to this host's own
	 * workers. */
	{ 3, used_settings_corosync_conf },
	{ 3, used_pool_portals },
	{ 3, used_storage_paths },
	/* 4: the next protocol's rows here, with HAVEN_PROTOCOL raised in
	 * proto.h. */
};

uint32_t
protocol_change_needs(const Haven__Change *c, char *what, size_t whatlen)
{
	char		 buf[128];
	uint32_t	 need = HAVEN_PROTOCOL_OLDEST;
	size_t		 i;

	if (what != NULL && whatlen > 0)
		what[0] = '\0';
	if (c == NULL)
		return need;
	for (i = 0; i < sizeof protocol_features / sizeof *protocol_features;
	    i++) {
		if (protocol_features[i].protocol <= need ||
		    !protocol_features[i].used(c, buf, sizeof buf))
			continue;
		need = protocol_features[i].protocol;
		if (what != NULL && whatlen > 0)
			snprintf(what, whatlen, "%s", buf);
	}
	return need;
}
