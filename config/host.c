/*
 * What haven.conf names that must exist on this host, checked against the
 * host itself rather than the file: the bridges [interfaces] vm offers to
 * guests, and which of them filter VLANs. Looked up under a sysfs root so a
 * test can point it at a fake tree; havend --check-config reports them,
 * havend offers only those found.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"

/* A bridge that filters VLANs: ROOT/class/net/NAME/bridge/vlan_filtering
 * says 1 (a kernel without CONFIG_BRIDGE_VLAN_FILTERING has no such file). */
int
config_bridge_filters_vlans(const char *sysfs_root, const char *name)
{
	char	 path[512], value[8] = "";
	FILE	*f;

	snprintf(path, sizeof path, "%s/class/net/%s/bridge/vlan_filtering",
	    sysfs_root, name);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(value, sizeof value, f) == NULL)
		value[0] = '\0';
	fclose(f);
	return value[0] == '1';
}

/* A bridge: ROOT/class/net/NAME/bridge is a directory (a plain NIC, a
 * bond or a missing name has none). */
int
config_bridge_exists(const char *sysfs_root, const char *name)
{
	struct stat	 st;
	char		 path[512];

	snprintf(path, sizeof path, "%s/class/net/%s/bridge", sysfs_root, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

size_t
config_check_bridges(const struct config *c, const char *sysfs_root,
    struct config_error *errs, size_t max_errs)
{
	struct config_error	*e;
	struct stat		 st;
	char			 path[512];
	size_t			 i, n = 0;

	for (i = 0; i < c->nif_vm; i++) {
		if (config_bridge_exists(sysfs_root, c->if_vm[i]))
			continue;
		if (n++ >= max_errs || errs == NULL)
			continue;
		e = &errs[n - 1];
		e->line = c->if_vm_line;
		snprintf(e->section, sizeof e->section, "interfaces");
		snprintf(e->key, sizeof e->key, "vm");
		snprintf(path, sizeof path, "%s/class/net/%s", sysfs_root,
		    c->if_vm[i]);
		if (stat(path, &st) == 0)
			snprintf(e->message, sizeof e->message, "%s is a network "
			    "interface but not a bridge; put it in a bridge "
			    "(ip link add br0 type bridge; ip link set %s "
			    "master br0) and list the bridge", c->if_vm[i],
			    c->if_vm[i]);
		else
			snprintf(e->message, sizeof e->message, "no bridge %s on "
			    "this host; create it (ip link add %s type bridge) "
			    "or remove it from the list", c->if_vm[i],
			    c->if_vm[i]);
	}
	return n;
}
