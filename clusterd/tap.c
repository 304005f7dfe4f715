/*
 * A guest NIC's host side (issue 13): a tap on the NIC's bridge, in its
 * VLAN (the bridge's VLAN filtering, else the per-VLAN bridge BRvN of a
 * bridge that does not filter, as Proxmox VE's vmbr0v10), up, whose
 * descriptor havend passes to the VM's worker for QEMU. The
 * tap is not persistent: it vanishes when the last descriptor closes, that
 * is when QEMU exits, so neither a stop, a move nor a havend restart (the
 * worker and QEMU go on, adopted) leaves one behind or needs to remove one.
 * Root's work: the worker and QEMU only ever hold the open descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

/* What the bridge is, as RTM_GETLINK tells it. */
struct tap_bridge {
	uint32_t	 ifindex;
	uint32_t	 mtu;
	int		 is_bridge;
	int		 vlan_filtering;
	uint16_t	 default_pvid;
};

/* One request, its acknowledgement or its error (errno). For RTM_GETLINK,
 * the answer goes through cb. */
static int
tap_netlink(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb,
    void *arg)
{
	char		 buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t	 seq, portid = mnl_socket_get_portid(nl);
	ssize_t		 n;
	int		 rc;

	nlh->nlmsg_seq = seq = (uint32_t)time(NULL);
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) == -1)
		return -1;
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof buf)) > 0) {
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, cb, arg);
		if (rc <= MNL_CB_STOP)
			return rc == MNL_CB_ERROR ? -1 : 0;
	}
	return -1;
}

static int
tap_bridge_data_cb(const struct nlattr *a, void *arg)
{
	struct tap_bridge	*br = arg;

	if (mnl_attr_get_type(a) == IFLA_BR_VLAN_FILTERING &&
	    mnl_attr_validate(a, MNL_TYPE_U8) == 0)
		br->vlan_filtering = mnl_attr_get_u8(a) != 0;
	else if (mnl_attr_get_type(a) == IFLA_BR_VLAN_DEFAULT_PVID &&
	    mnl_attr_validate(a, MNL_TYPE_U16) == 0)
		br->default_pvid = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int
tap_linkinfo_cb(const struct nlattr *a, void *arg)
{
	struct tap_bridge	*br = arg;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND &&
	    mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		br->is_bridge = strcmp(mnl_attr_get_str(a), "bridge") == 0;
	else if (mnl_attr_get_type(a) == IFLA_INFO_DATA)
		mnl_attr_parse_nested(a, tap_bridge_data_cb, br);
	return MNL_CB_OK;
}

static int
tap_link_attr_cb(const struct nlattr *a, void *arg)
{
	struct tap_bridge	*br = arg;

	if (mnl_attr_get_type(a) == IFLA_MTU &&
	    mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		br->mtu = mnl_attr_get_u32(a);
	else if (mnl_attr_get_type(a) == IFLA_LINKINFO)
		mnl_attr_parse_nested(a, tap_linkinfo_cb, br);
	return MNL_CB_OK;
}

static int
tap_link_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct ifinfomsg	*ifi = mnl_nlmsg_get_payload(nlh);
	struct tap_bridge	*br = arg;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	br->ifindex = (uint32_t)ifi->ifi_index;
	br->default_pvid = 1;	/* the kernel's, if it does not say */
	mnl_attr_parse(nlh, sizeof *ifi, tap_link_attr_cb, br);
	return MNL_CB_OK;
}

static struct nlmsghdr *
tap_link_msg(char *buf, uint16_t type, uint16_t flags, uint8_t family,
    uint32_t ifindex)
{
	struct nlmsghdr		*nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg	*ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
	ifi->ifi_family = family;
	ifi->ifi_index = (int)ifindex;
	return nlh;
}

static int
tap_bridge_query(struct mnl_socket *nl, const char *name,
    struct tap_bridge *br)
{
	char		 buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr	*nlh;

	memset(br, 0, sizeof *br);
	nlh = tap_link_msg(buf, RTM_GETLINK, 0, AF_UNSPEC, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return tap_netlink(nl, nlh, tap_link_cb, br);
}

/* The port's VLAN: vid alone, its PVID and untagged (add), or vid gone
 * (delete): RTM_SETLINK / RTM_DELLINK of family AF_BRIDGE. */
static int
tap_port_vlan(struct mnl_socket *nl, uint32_t ifindex, uint16_t type,
    uint16_t vid)
{
	char				 buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr			*nlh;
	struct nlattr			*spec;
	struct bridge_vlan_info		 info = { .vid = vid };

	if (type == RTM_SETLINK)
		info.flags = BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED;
	nlh = tap_link_msg(buf, type, 0, AF_BRIDGE, ifindex);
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof info, &info);
	mnl_attr_nest_end(nlh, spec);
	return tap_netlink(nl, nlh, NULL, NULL);
}

/* Attach (master), size (MTU) or bring up one link. */
static int
tap_link_set(struct mnl_socket *nl, uint32_t ifindex, uint32_t master,
    uint32_t mtu, int up)
{
	char			 buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr		*nlh;
	struct ifinfomsg	*ifi;

	nlh = tap_link_msg(buf, RTM_NEWLINK, 0, AF_UNSPEC, ifindex);
	ifi = mnl_nlmsg_get_payload(nlh);
	if (master != 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, master);
	if (mtu != 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (up) {
		ifi->ifi_flags = IFF_UP;
		ifi->ifi_change = IFF_UP;
	}
	return tap_netlink(nl, nlh, NULL, NULL);
}

/*
 * A new tap, not persistent, named after the VM and the NIC when it can
 * be (hv<uuid's first 8>-<index>: `ip link` says whose it is), else by
 * the kernel: the same name is busy while an earlier QEMU of this VM on
 * this host still holds its tap, for the moment it takes to exit.
 */
static int
tap_create(const char *uuid, size_t index, int vnet_hdr, char *name,
    size_t namelen)
{
	struct ifreq	 ifr;
	int		 fd, attempt;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1)
		return -1;
	for (attempt = 0; attempt < 2; attempt++) {
		memset(&ifr, 0, sizeof ifr);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI |
		    (vnet_hdr ? IFF_VNET_HDR : 0);
		if (attempt == 0)
			snprintf(ifr.ifr_name, sizeof ifr.ifr_name,
			    "hv%.8s-%zu", uuid, index);
		else
			snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "hvtap%%d");
		if (ioctl(fd, TUNSETIFF, &ifr) == 0) {
			snprintf(name, namelen, "%s", ifr.ifr_name);
			return fd;
		}
		if (errno != EBUSY && errno != EEXIST)
			break;
	}
	close(fd);
	return -1;
}

/*
 * Which bridge carries the NIC, into *br (and its name into name): BR
 * itself, with the port's VLAN set by the caller, when BR filters VLANs or
 * the NIC has none; else BR's per-VLAN bridge BRvN, on which the tap goes
 * untagged (the operator's network config gives BRvN its uplink, a VLAN
 * subinterface of BR's). -1 with the sentence in err.
 */
static int
tap_bridge_pick(struct mnl_socket *nl, const Haven__Nic *nic, size_t index,
    struct tap_bridge *br, char *name, size_t namelen, char *err,
    size_t errlen)
{
	char	 per_vlan[64];

	if (tap_bridge_query(nl, nic->bridge, br) == -1) {
		if (errno == ENODEV)
			snprintf(err, errlen, "bridge %s does not exist on "
			    "this host (NIC %zu)", nic->bridge, index);
		else
			snprintf(err, errlen, "bridge %s: %s", nic->bridge,
			    strerror(errno));
		return -1;
	}
	if (!br->is_bridge) {
		snprintf(err, errlen, "%s is not a bridge on this host "
		    "(NIC %zu)", nic->bridge, index);
		return -1;
	}
	snprintf(name, namelen, "%s", nic->bridge);
	if (nic->vlan == 0 || br->vlan_filtering)
		return 0;
	/* Without filtering a VLAN set on the port would silently not be
	 * kept: only a bridge of the VLAN's own isolates it. The messages
	 * fit an event's 160 characters for names of 8 and 11. */
	snprintf(per_vlan, sizeof per_vlan, "%sv%u", nic->bridge, nic->vlan);
	if (strlen(per_vlan) >= IFNAMSIZ) {
		snprintf(err, errlen, "%s filters no VLANs and %s is over %d "
		    "characters (NIC %zu): ip link set %s type bridge "
		    "vlan_filtering 1, or a shorter bridge name", nic->bridge,
		    per_vlan, IFNAMSIZ - 1, index, nic->bridge);
		return -1;
	}
	if (tap_bridge_query(nl, per_vlan, br) == -1 || !br->is_bridge) {
		snprintf(err, errlen, "%s filters no VLANs, no %s here (NIC "
		    "%zu): ip link set %s type bridge vlan_filtering 1, or "
		    "create %s with VLAN %u of the uplink", nic->bridge,
		    per_vlan, index, nic->bridge, per_vlan, nic->vlan);
		return -1;
	}
	br->vlan_filtering = 0;	/* the tap goes on it untagged */
	snprintf(name, namelen, "%s", per_vlan);
	return 0;
}

int
tap_open(const Haven__Nic *nic, const char *vm_uuid, size_t index,
    char *err, size_t errlen)
{
	struct mnl_socket	*nl;
	struct tap_bridge	 br;
	char			 name[IFNAMSIZ], bridge[IFNAMSIZ], vlan[32] = "";
	uint32_t		 ifindex;
	int			 fd = -1, vnet_hdr, port_vlan;

	if (nic->vlan != 0)
		snprintf(vlan, sizeof vlan, ", VLAN %u", nic->vlan);
	if ((nl = mnl_socket_open(NETLINK_ROUTE)) == NULL ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == -1) {
		snprintf(err, errlen, "netlink: %s", strerror(errno));
		goto fail;
	}
	if (tap_bridge_pick(nl, nic, index, &br, bridge, sizeof bridge, err,
	    errlen) == -1)
		goto fail;
	port_vlan = nic->vlan != 0 && br.vlan_filtering;
	/* virtio-net uses the offloads a vnet header brings; e1000 not. */
	vnet_hdr = nic->model != HAVEN__NIC_MODEL__NIC_MODEL_E1000;
	if ((fd = tap_create(vm_uuid, index, vnet_hdr, name, sizeof name)) ==
	    -1) {
		snprintf(err, errlen, "a tap for NIC %zu: %s%s", index,
		    strerror(errno), errno == ENOENT ? " (/dev/net/tun: "
		    "modprobe tun)" : "");
		goto fail;
	}
	if ((ifindex = if_nametoindex(name)) == 0) {
		snprintf(err, errlen, "tap %s: %s", name, strerror(errno));
		goto fail;
	}
	/* Its VLAN before it is up: no frame of the guest's ever reaches
	 * the bridge's default VLAN by mistake. */
	if (tap_link_set(nl, ifindex, br.ifindex, br.mtu, 0) == -1) {
		snprintf(err, errlen, "tap %s onto bridge %s: %s", name, bridge,
		    strerror(errno));
		goto fail;
	}
	if (port_vlan && ((br.default_pvid != 0 &&
	    br.default_pvid != nic->vlan && tap_port_vlan(nl, ifindex,
	    RTM_DELLINK, br.default_pvid) == -1) || tap_port_vlan(nl, ifindex,
	    RTM_SETLINK, (uint16_t)nic->vlan) == -1)) {
		snprintf(err, errlen, "tap %s on bridge %s%s: %s", name,
		    bridge, vlan, strerror(errno));
		goto fail;
	}
	if (tap_link_set(nl, ifindex, 0, 0, 1) == -1) {
		snprintf(err, errlen, "tap %s up: %s", name, strerror(errno));
		goto fail;
	}
	mnl_socket_close(nl);
	log_debug("NIC %zu of %s: tap %s on bridge %s%s%s", index, vm_uuid,
	    name, bridge, vlan, nic->vlan != 0 && !port_vlan ?
	    " (the VLAN's own bridge)" : "");
	return fd;
fail:
	if (fd != -1)
		close(fd);	/* not persistent: the tap goes with it */
	if (nl != NULL)
		mnl_socket_close(nl);
	return -1;
}
