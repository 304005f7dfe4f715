/*
 * A VM's NICs in its replicated configuration (issue 13): the rules every
 * member checks a NIC against when it applies a vm_create, the MAC havend
 * chooses for a NIC given none, and whether a host offers a VM's bridges.
 * Pure functions of the message tree, shared by havenctl, havend's apply
 * step and its coordinator.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "proto.h"

const char *
nic_model_name(int model)
{
	switch (model) {
	case HAVEN__NIC_MODEL__NIC_MODEL_UNSPECIFIED:
	case HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO:
		return "virtio";
	case HAVEN__NIC_MODEL__NIC_MODEL_E1000:
		return "e1000";
	default:
		return "unknown";
	}
}

int
nic_model_parse(const char *s, Haven__NicModel *model)
{
	if (strcmp(s, "virtio") == 0)
		*model = HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO;
	else if (strcmp(s, "e1000") == 0)
		*model = HAVEN__NIC_MODEL__NIC_MODEL_E1000;
	else
		return -1;
	return 0;
}

static int
nic_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
nic_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * One NIC on its own: a bridge name Linux takes, a usable MAC (present:
 * havend fills in the ones not given before it proposes), a VLAN in range
 * and a known model. -1 with the sentence in err.
 */
int
nic_check(const char *vm, size_t i, const Haven__Nic *nic, char *err,
    size_t errlen)
{
	uint8_t		 mac[NET_MAC_BYTES];
	const char	*problem;

	if (!net_ifname_valid(nic->bridge))
		return nic_fail(err, errlen, "VM %s: NIC %zu: '%.32s' is not a "
		    "bridge name (1 to 15 letters, digits or '._-@+='; see ip "
		    "link)", vm, i, nic->bridge != NULL ? nic->bridge : "");
	if (nic->mac == NULL || *nic->mac == '\0')
		return nic_fail(err, errlen, "VM %s: NIC %zu has no MAC; havend "
		    "chooses one before it proposes a VM", vm, i);
	if (net_mac_parse(nic->mac, mac) == -1)
		return nic_fail(err, errlen, "VM %s: NIC %zu: '%.32s' is not a "
		    "MAC address; write six pairs of hex digits such as "
		    "0a:1b:2c:3d:4e:5f, or leave mac= out to have one chosen",
		    vm, i, nic->mac);
	if ((problem = net_mac_problem(mac)) != NULL)
		return nic_fail(err, errlen, "VM %s: NIC %zu: MAC %s %s; give "
		    "a unicast MAC, or leave mac= out to have one chosen", vm,
		    i, nic->mac, problem);
	if (nic->vlan > NIC_VLAN_MAX)
		return nic_fail(err, errlen, "VM %s: NIC %zu: VLAN %u is out of "
		    "range: 0 (untagged) or 1 to %d", vm, i, nic->vlan,
		    NIC_VLAN_MAX);
	if (nic->model != HAVEN__NIC_MODEL__NIC_MODEL_UNSPECIFIED &&
	    nic->model != HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO &&
	    nic->model != HAVEN__NIC_MODEL__NIC_MODEL_E1000)
		return nic_fail(err, errlen, "VM %s: NIC %zu: unknown model %d; "
		    "virtio or e1000", vm, i, (int)nic->model);
	return 0;
}

/* Two MACs in their text form are the same address (any case). */
static int
nic_mac_same(const char *a, const uint8_t mac[NET_MAC_BYTES])
{
	uint8_t	 b[NET_MAC_BYTES];

	return net_mac_parse(a, b) == 0 && memcmp(b, mac, NET_MAC_BYTES) == 0;
}

/*
 * A VM's NICs and its boot files, on their own: at most NIC_MAX NICs, each
 * as nic_check wants it, no MAC twice, and an initrd only with a kernel.
 */
int
nic_config_check(const Haven__VmConfig *vc, char *err, size_t errlen)
{
	uint8_t		 mac[NET_MAC_BYTES];
	size_t		 i, j;

	if (vc->n_nics > NIC_MAX)
		return nic_fail(err, errlen, "VM %s has %zu NICs; at most %d",
		    vc->name, vc->n_nics, NIC_MAX);
	for (i = 0; i < vc->n_nics; i++) {
		if (vc->nics[i] == NULL)
			return nic_fail(err, errlen, "VM %s: NIC %zu is empty",
			    vc->name, i);
		if (nic_check(vc->name, i, vc->nics[i], err, errlen) == -1)
			return -1;
		(void)net_mac_parse(vc->nics[i]->mac, mac);
		for (j = 0; j < i; j++)
			if (nic_mac_same(vc->nics[j]->mac, mac))
				return nic_fail(err, errlen, "VM %s: NICs %zu "
				    "and %zu have the same MAC %s; give each its "
				    "own", vc->name, j, i, vc->nics[i]->mac);
	}
	if (vc->initrd != NULL && *vc->initrd != '\0' &&
	    (vc->kernel == NULL || *vc->kernel == '\0'))
		return nic_fail(err, errlen, "VM %s: an initrd is loaded with a "
		    "kernel; give the kernel too (--kernel)", vc->name);
	return 0;
}

/* The VM of the state other than the one named except (may be NULL) that
 * has a NIC with this MAC, in the configuration it runs with or in the one
 * `vm set` left for its next start, and which NIC; NULL when none has. */
const Haven__Vm *
nic_mac_user(const Haven__ClusterState *cs, const uint8_t mac[NET_MAC_BYTES],
    const char *except, size_t *nic)
{
	const Haven__VmConfig	*vc;
	size_t			 i, j, k;

	for (i = 0; i < cs->n_vms; i++) {
		for (k = 0; k < 2; k++) {
			vc = k == 0 ? cs->vms[i]->config : cs->vms[i]->pending;
			if (vc == NULL || (except != NULL && vc->name != NULL &&
			    strcmp(vc->name, except) == 0))
				continue;
			for (j = 0; j < vc->n_nics; j++) {
				if (vc->nics[j] != NULL &&
				    nic_mac_same(vc->nics[j]->mac, mac)) {
					if (nic != NULL)
						*nic = j;
					return cs->vms[i];
				}
			}
		}
	}
	return NULL;
}

/*
 * A MAC for NIC i of a new VM, from its UUID, i and attempt: NIC_MAC_PREFIX
 * (locally administered, unicast) then 40 bits of FNV-1a of the three, so
 * the same VM gets the same MACs wherever it is proposed from.
 */
void
nic_mac_derive(const char *uuid, size_t i, unsigned attempt,
    uint8_t mac[NET_MAC_BYTES])
{
	char		 buf[UUID_STRLEN + 32];
	uint64_t	 hash = 14695981039346656037ULL;
	const char	*p;
	int		 k;

	snprintf(buf, sizeof buf, "%s/%zu/%u", uuid, i, attempt);
	for (p = buf; *p != '\0'; p++) {
		hash ^= (uint8_t)*p;
		hash *= 1099511628211ULL;
	}
	mac[0] = NIC_MAC_PREFIX;
	for (k = 1; k < NET_MAC_BYTES; k++)
		mac[k] = (uint8_t)(hash >> (8 * (k - 1)));
}

/*
 * Fill in a MAC for every NIC of vc that has none (vc->uuid set): one no VM
 * of the state and no other NIC of vc has. The strings go into macs (one
 * slot per NIC), which vc's NICs then point into. -1 when NIC_MAC_TRIES
 * derivations in a row were taken (a state that full is not plausible).
 * The apply step refuses a duplicate anyway: this only makes one unlikely.
 */
int
nic_mac_fill(const Haven__ClusterState *cs, Haven__VmConfig *vc,
    char macs[][NET_MAC_STRLEN + 1])
{
	uint8_t		 mac[NET_MAC_BYTES];
	unsigned	 attempt = 0;
	size_t		 i, j;
	int		 taken;

	for (i = 0; i < vc->n_nics && i < NIC_MAX; i++) {
		if (vc->nics[i]->mac != NULL && *vc->nics[i]->mac != '\0')
			continue;
		for (;; attempt++) {
			if (attempt == NIC_MAC_TRIES)
				return -1;
			nic_mac_derive(vc->uuid, i, attempt, mac);
			taken = nic_mac_user(cs, mac, vc->name, NULL) != NULL;
			for (j = 0; j < vc->n_nics && !taken; j++)
				taken = j != i && vc->nics[j]->mac != NULL &&
				    nic_mac_same(vc->nics[j]->mac, mac);
			if (!taken)
				break;
		}
		net_mac_format(mac, macs[i]);
		vc->nics[i]->mac = macs[i];
	}
	return 0;
}

static int
nic_in(char *const *list, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Whether host can carry nic: it offers the NIC's bridge BR and, for a
 * VLAN, BR filters VLANs there or the host offers BR's per-VLAN bridge
 * BRvN (what clusterd/tap.c then uses). When it cannot, missing (may be
 * NULL) is the bridge to offer: BR, or BRvN.
 */
int
nic_offered(const Haven__HostConfig *host, const Haven__Nic *nic,
    char *missing, size_t missinglen)
{
	char	 per_vlan[NIC_BRIDGE_PER_VLAN_MAX];

	if (!nic_in(host->vm_bridges, host->n_vm_bridges, nic->bridge)) {
		if (missing != NULL)
			snprintf(missing, missinglen, "%s", nic->bridge);
		return 0;
	}
	if (nic->vlan == 0 || nic_in(host->vlan_filtering,
	    host->n_vlan_filtering, nic->bridge))
		return 1;
	snprintf(per_vlan, sizeof per_vlan, "%sv%u", nic->bridge, nic->vlan);
	if (nic_in(host->vm_bridges, host->n_vm_bridges, per_vlan))
		return 1;
	if (missing != NULL)
		snprintf(missing, missinglen, "%s", per_vlan);
	return 0;
}

/* Whether host can carry every NIC of vc; missing as nic_offered's for
 * the first it cannot. */
int
nic_bridges_offered(const Haven__HostConfig *host, const Haven__VmConfig *vc,
    char *missing, size_t missinglen)
{
	size_t	 i;

	for (i = 0; i < vc->n_nics; i++)
		if (!nic_offered(host, vc->nics[i], missing, missinglen))
			return 0;
	return 1;
}
