/*
 * havenctl validate: the cluster validation wizard (DESIGN §1), run on one
 * host. Checks this host from its haven.conf (NICs and their roles, guest
 * bridges, the watchdog, the clock, KVM, QEMU, corosync's addresses and
 * links) and, with the state the local havend gives (hosts, pools,
 * volumes), each pool's portal route, CHAP and reservations and each fence
 * level against every other host. One verdict per check: pass, warn or
 * fail, and what to do; exit 3 when any failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <corosync/cmap.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "fence.h"
#include "request.h"
#include "storage.h"
#include "timeline.h"

#define VALIDATE_MAX_ERRORS	8
#define VALIDATE_MAX_ADDRS	16
/* One agent's monitor: it asks the BMC for the power state and succeeds
 * whether on or off (status would fail for a host powered off). */
#define VALIDATE_FENCE_TIMEOUT_MS	30000
#define VALIDATE_ISCSI_TIMEOUT_S	10
#define VALIDATE_QEMU_OUTPUT_MAX	(64 * 1024)

extern char **environ;

/* What validate knows of the cluster: from havend, or nothing. */
struct validate_state {
	Haven__NodeListReply	*nodes;		/* NULL: havend did not answer */
	Haven__StorageListReply	*storage;
};

/* One NIC as this host sees it. */
struct validate_nic {
	const char		*name;
	int			 exists;
	int			 up;		/* IFF_UP */
	int			 carrier;	/* IFF_RUNNING */
	size_t			 naddrs;
	struct validate_net	 addrs[VALIDATE_MAX_ADDRS];
};

static void
validate_nic_read(const char *name, struct validate_nic *nic)
{
	struct ifaddrs		*ifa, *p;
	struct ifreq		 ifr;
	struct sockaddr_in	*sin, *mask;
	uint32_t		 m;
	int			 fd;

	memset(nic, 0, sizeof *nic);
	nic->name = name;
	if (name[0] == '\0' || if_nametoindex(name) == 0)
		return;
	nic->exists = 1;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) != -1) {
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
			nic->up = (ifr.ifr_flags & IFF_UP) != 0;
			nic->carrier = (ifr.ifr_flags & IFF_RUNNING) != 0;
		}
		close(fd);
	}
	if (getifaddrs(&ifa) == -1)
		return;
	for (p = ifa; p != NULL; p = p->ifa_next) {
		if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET ||
		    strcmp(p->ifa_name, name) != 0 ||
		    nic->naddrs == VALIDATE_MAX_ADDRS)
			continue;
		sin = (struct sockaddr_in *)(void *)p->ifa_addr;
		mask = (struct sockaddr_in *)(void *)p->ifa_netmask;
		nic->addrs[nic->naddrs].addr = ntohl(sin->sin_addr.s_addr);
		m = mask != NULL ? ntohl(mask->sin_addr.s_addr) : 0xffffffffU;
		nic->addrs[nic->naddrs].prefix = (unsigned)__builtin_popcount(m);
		nic->naddrs++;
	}
	freeifaddrs(ifa);
}

/* "" when the NIC is fine, else why not and what to do. */
static const char *
validate_nic_problem(const struct validate_nic *nic, char *buf, size_t len)
{
	if (!nic->exists)
		snprintf(buf, len, "%s does not exist on this host: fix "
		    "[interfaces] in haven.conf or create it", nic->name);
	else if (!nic->up)
		snprintf(buf, len, "%s is down: ip link set %s up", nic->name,
		    nic->name);
	else if (!nic->carrier)
		snprintf(buf, len, "%s has no carrier: check its cable and "
		    "switch port", nic->name);
	else
		buf[0] = '\0';
	return buf;
}

/* The text of a /proc file, NUL-terminated (free()); NULL on error. */
static char *
validate_read_text(const char *path)
{
	char	*buf;
	size_t	 len = 0, size = 16384;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(size)) == NULL)
		goto fail;
	while ((n = read(fd, buf + len, size - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == size) {
			char	*nb;

			if (size >= 4 * 1024 * 1024 ||
			    (nb = realloc(buf, size * 2)) == NULL)
				goto fail;
			buf = nb;
			size *= 2;
		}
	}
	if (n == -1)
		goto fail;
	buf[len] = '\0';
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* At least two NICs: management and storage exist, are up, differ. */
static void
check_interfaces(struct validate_report *rep, const struct config *c,
    const struct validate_nic *mgmt, const struct validate_nic *stor)
{
	char	buf[256];

	if (c->if_management[0] == '\0' || c->if_storage[0] == '\0') {
		validate_add(rep, "interfaces", VALIDATE_FAIL, "haven.conf "
		    "names no %s NIC: set [interfaces] management and storage",
		    c->if_management[0] == '\0' ? "management" : "storage");
		return;
	}
	if (*validate_nic_problem(mgmt, buf, sizeof buf) != '\0') {
		validate_add(rep, "interfaces", VALIDATE_FAIL, "management "
		    "NIC %s", buf);
		return;
	}
	if (strcmp(c->if_management, c->if_storage) == 0) {
		validate_add(rep, "interfaces", VALIDATE_FAIL, "one NIC, %s, "
		    "for management and storage: a host needs at least two "
		    "(haven.conf(5), NETWORK ROLES)", c->if_management);
		return;
	}
	if (*validate_nic_problem(stor, buf, sizeof buf) != '\0') {
		validate_add(rep, "interfaces", VALIDATE_FAIL, "storage NIC "
		    "%s", buf);
		return;
	}
	validate_add(rep, "interfaces", VALIDATE_PASS, "management %s and "
	    "storage %s: two NICs, both up", c->if_management, c->if_storage);
}

/* The management NIC carries only the cluster's own traffic (haven.conf's
 * parser already refuses a guest bridge on it). */
static void
check_management(struct validate_report *rep, const struct config *c,
    const struct validate_nic *mgmt)
{
	if (!mgmt->exists)
		return;
	if (mgmt->naddrs == 0) {
		validate_add(rep, "management-network", VALIDATE_FAIL, "%s has "
		    "no IPv4 address: corosync and havenctl need one",
		    c->if_management);
		return;
	}
	if (strcmp(c->if_management, c->if_storage) == 0) {
		validate_add(rep, "management-network", VALIDATE_FAIL, "%s is "
		    "the storage NIC too: a storm of iSCSI traffic would delay "
		    "corosync's token and split the cluster", mgmt->name);
		return;
	}
	validate_add(rep, "management-network", VALIDATE_PASS, "%s "
	    "dedicated: no storage or guest traffic%s", mgmt->name,
	    strcmp(c->if_migration, c->if_management) == 0 ? " (migration "
	    "shares it)" : "");
}

/* The storage NIC: its own, not in a management subnet, no default
 * route (iSCSI must never leave through a router or the management NIC). */
static void
check_storage(struct validate_report *rep, const struct config *c,
    const struct validate_nic *mgmt, const struct validate_nic *stor)
{
	char	*text;
	char	 a[32], b[32];
	size_t	 i, j;
	int	 r4 = 0, r6 = 0;

	if (c->if_storage[0] == '\0')
		return;
	if (strcmp(c->if_management, c->if_storage) == 0) {
		validate_add(rep, "storage-network", VALIDATE_FAIL, "storage "
		    "is %s, the management NIC: iSCSI needs a NIC of its own, "
		    "not the management network (set [interfaces] storage)",
		    c->if_storage);
		return;
	}
	if (!stor->exists)
		return;		/* interfaces said so */
	for (i = 0; i < stor->naddrs; i++) {
		for (j = 0; j < mgmt->naddrs; j++) {
			if (!validate_nets_overlap(&stor->addrs[i],
			    &mgmt->addrs[j]))
				continue;
			validate_net_format(&stor->addrs[i], a, sizeof a);
			validate_net_format(&mgmt->addrs[j], b, sizeof b);
			validate_add(rep, "storage-network", VALIDATE_FAIL,
			    "%s's address %s is in the management subnet "
			    "(%s's %s): the storage network must be a subnet "
			    "of its own, or iSCSI may go over the management "
			    "NIC", c->if_storage, a, c->if_management, b);
			return;
		}
	}
	if ((text = validate_read_text("/proc/net/route")) != NULL) {
		r4 = validate_route_default(text, c->if_storage);
		free(text);
	}
	if ((text = validate_read_text("/proc/net/ipv6_route")) != NULL) {
		r6 = validate_route6_default(text, c->if_storage);
		free(text);
	}
	if (r4 == 1 || r6 == 1) {
		validate_add(rep, "storage-network", VALIDATE_FAIL, "%s "
		    "carries a default route (%s): the storage network must "
		    "reach only the SAN; remove it (ip route del default dev "
		    "%s)", c->if_storage, r4 == 1 ? "IPv4" : "IPv6",
		    c->if_storage);
		return;
	}
	if (stor->naddrs == 0) {
		validate_add(rep, "storage-network", VALIDATE_WARN, "%s has no "
		    "IPv4 address: give it one on the SAN's subnet",
		    c->if_storage);
		return;
	}
	validate_net_format(&stor->addrs[0], a, sizeof a);
	validate_add(rep, "storage-network", VALIDATE_PASS, "%s (%s) "
	    "dedicated: not the management NIC or subnet, no default route",
	    c->if_storage, a);
}

static void
check_migration(struct validate_report *rep, const struct config *c)
{
	struct validate_nic	nic;
	char			buf[256];

	if (c->if_migration[0] == '\0' ||
	    strcmp(c->if_migration, c->if_management) == 0) {
		validate_add(rep, "migration-network", VALIDATE_WARN, "no "
		    "migration NIC: memory streams share the management NIC "
		    "with corosync; set [interfaces] migration to a NIC of "
		    "its own");
		return;
	}
	validate_nic_read(c->if_migration, &nic);
	if (*validate_nic_problem(&nic, buf, sizeof buf) != '\0') {
		validate_add(rep, "migration-network", VALIDATE_FAIL, "%s",
		    buf);
		return;
	}
	validate_add(rep, "migration-network", VALIDATE_PASS, "%s, up",
	    c->if_migration);
}

/* Guest bridges enslave none of the host's own NICs (DESIGN §1). */
static void
check_guest_bridges(struct validate_report *rep, const struct config *c)
{
	struct config_error	 err;
	const char		*own[3] = { c->if_management, c->if_storage,
				    c->if_migration };
	char			 path[512], list[256] = "";
	size_t			 i, j, len = 0;
	struct stat		 st;

	if (c->nif_vm == 0) {
		validate_add(rep, "guest-bridges", VALIDATE_WARN, "no "
		    "[interfaces] vm bridges: this host's VMs have no "
		    "network; list the bridges it offers to guests");
		return;
	}
	if (config_check_bridges(c, CONFIG_SYSFS, &err, 1) > 0) {
		validate_add(rep, "guest-bridges", VALIDATE_FAIL, "%s",
		    err.message);
		return;
	}
	for (i = 0; i < c->nif_vm; i++) {
		for (j = 0; j < 3; j++) {
			if (own[j][0] == '\0')
				continue;
			snprintf(path, sizeof path, "%s/class/net/%s/brif/%s",
			    CONFIG_SYSFS, c->if_vm[i], own[j]);
			if (stat(path, &st) == -1)
				continue;
			validate_add(rep, "guest-bridges", VALIDATE_FAIL, "guest "
			    "bridge %s enslaves %s, the %s NIC: guests would "
			    "share the host's own network; give the bridge "
			    "another uplink (ip link set %s nomaster)",
			    c->if_vm[i], own[j], j == 0 ? "management" :
			    j == 1 ? "storage" : "migration", own[j]);
			return;
		}
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len,
			    "%s%s", i ? ", " : "", c->if_vm[i]);
	}
	validate_add(rep, "guest-bridges", VALIDATE_PASS, "%s: none enslaves "
	    "a management, storage or migration NIC", list);
}

/* The NIC that holds the local IPv4 address addr (host order), or "". */
static void
validate_nic_of(uint32_t addr, char *name, size_t len)
{
	struct ifaddrs		*ifa, *p;
	struct sockaddr_in	*sin;

	name[0] = '\0';
	if (getifaddrs(&ifa) == -1)
		return;
	for (p = ifa; p != NULL; p = p->ifa_next) {
		if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET)
			continue;
		sin = (struct sockaddr_in *)(void *)p->ifa_addr;
		if (ntohl(sin->sin_addr.s_addr) == addr) {
			snprintf(name, len, "%s", p->ifa_name);
			break;
		}
	}
	freeifaddrs(ifa);
}

/*
 * The route to a pool's portal leaves through the storage NIC: the kernel's
 * choice of source address for it, found by connecting a UDP socket (a
 * route lookup; nothing is sent).
 */
static void
check_portal_route(struct validate_report *rep, const struct config *c,
    const char *pool, const char *portal)
{
	struct addrinfo		 hints, *ai = NULL;
	struct sockaddr_in	 src;
	socklen_t		 slen = sizeof src;
	char			 host[256], name[96], nic[IF_NAMESIZE] = "";
	char			 a[INET_ADDRSTRLEN];
	const char		*colon;
	int			 fd = -1, gai;

	snprintf(name, sizeof name, "portal-route:%s", pool);
	snprintf(host, sizeof host, "%s", portal);
	if ((colon = strrchr(host, ':')) != NULL && strchr(host, ':') == colon)
		host[colon - host] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	if ((gai = getaddrinfo(host, "3260", &hints, &ai)) != 0) {
		validate_add(rep, name, VALIDATE_WARN, "portal %s: %s (an IPv4 "
		    "portal is checked; this one is not)", portal,
		    gai_strerror(gai));
		return;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&src, &slen) == -1) {
		validate_add(rep, name, VALIDATE_FAIL, "no route to portal %s "
		    "(%s): give %s an address on the SAN's subnet", portal,
		    strerror(errno), c->if_storage);
		goto out;
	}
	validate_nic_of(ntohl(src.sin_addr.s_addr), nic, sizeof nic);
	inet_ntop(AF_INET, &src.sin_addr, a, sizeof a);
	if (strcmp(nic, c->if_storage) != 0)
		validate_add(rep, name, VALIDATE_FAIL, "portal %s is reached "
		    "from %s on %s, not through the storage NIC %s: fix the "
		    "routes (ip route get %s) so iSCSI leaves through %s",
		    portal, a, nic[0] != '\0' ? nic : "another NIC",
		    c->if_storage, host, c->if_storage);
	else
		validate_add(rep, name, VALIDATE_PASS, "portal %s is reached "
		    "through %s (from %s)", portal, nic, a);
out:
	if (fd != -1)
		close(fd);
	freeaddrinfo(ai);
}

/* Never opened: opening a watchdog arms it. */
static void
check_watchdog(struct validate_report *rep, const struct config *c)
{
	struct stat	st;
	unsigned	wait, token = c->token_ms;

	if (c->watchdog_device[0] == '\0') {
		validate_add(rep, "watchdog", VALIDATE_WARN, "device = none: "
		    "a hung host is fenced only by the storage and agent "
		    "levels, and resumes with its VMs; modprobe softdog (or "
		    "the board's driver) and set [watchdog] device");
		return;
	}
	errno = 0;
	if (stat(c->watchdog_device, &st) == -1 || !(S_ISCHR(st.st_mode) ||
	    S_ISFIFO(st.st_mode))) {
		validate_add(rep, "watchdog", VALIDATE_FAIL, "%s: %s: "
		    "modprobe softdog or set [watchdog] device = none",
		    c->watchdog_device, errno == 0 ? "not a device" :
		    strerror(errno));
		return;
	}
	wait = fence_takeover_wait_ms(c->watchdog_timeout_s, token);
	if (wait > FENCE_TAKEOVER_DELAY_MS) {
		validate_add(rep, "watchdog", VALIDATE_WARN, "%s: timeout_s "
		    "%u is long for token %u ms: after the storage fence, "
		    "failover waits %u ms for a hung host's watchdog; %u s "
		    "(the default) keeps it at %u ms", c->watchdog_device,
		    c->watchdog_timeout_s, token, wait,
		    config_watchdog_auto_s(token), FENCE_TAKEOVER_DELAY_MS);
		return;
	}
	validate_add(rep, "watchdog", VALIDATE_PASS, "%s present (not "
	    "opened); timeout_s %u fits token %u ms: it fires before the "
	    "survivors can detect the host lost", c->watchdog_device,
	    c->watchdog_timeout_s, token);
}

static void
check_clock(struct validate_report *rep)
{
	struct timex	tx;
	int		rc;

	memset(&tx, 0, sizeof tx);
	if ((rc = adjtimex(&tx)) == -1) {
		validate_add(rep, "clock", VALIDATE_WARN, "adjtimex: %s",
		    strerror(errno));
		return;
	}
	if (rc == TIME_ERROR || (tx.status & STA_UNSYNC)) {
		validate_add(rep, "clock", VALIDATE_WARN, "not synchronised: "
		    "install chrony (or start systemd-timesyncd) so the "
		    "hosts' logs and events line up");
		return;
	}
	validate_add(rep, "clock", VALIDATE_PASS, "synchronised (estimated "
	    "error %ld us)", (long)tx.esterror);
}

static void
check_kvm(struct validate_report *rep, const struct config *c)
{
	int	fd;

	if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) != -1) {
		close(fd);
		validate_add(rep, "kvm", VALIDATE_PASS, "/dev/kvm usable");
		return;
	}
	validate_add(rep, "kvm", strcmp(c->vm_accel, "kvm") == 0 ?
	    VALIDATE_FAIL : VALIDATE_WARN, "/dev/kvm: %s: VMs %s; enable "
	    "virtualisation in the firmware and load kvm_intel or kvm_amd",
	    strerror(errno), strcmp(c->vm_accel, "kvm") == 0 ?
	    "cannot start ([vm] accel = kvm)" : "run under TCG, many times "
	    "slower");
}

/*
 * Machine types without havend: this host's QEMU answers `-machine help`.
 * With havend, validate_machine_types compares every host's list as the
 * hosts published them.
 */
static void
check_machine_types(struct validate_report *rep, const struct config *c)
{
	const char	*qemu = c->vm_qemu[0] != '\0' ? c->vm_qemu :
			    "qemu-system-x86_64";
	char		*argv[] = { (char *)qemu, (char *)"-machine",
			    (char *)"help", NULL };
	posix_spawn_file_actions_t fa;
	char		*out, *line, *save, deflt[64] = "";
	size_t		 len = 0, count = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], status = 0, rc;

	if (pipe2(p, O_CLOEXEC) == -1)
		return;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, qemu, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		validate_add(rep, "machine-types", VALIDATE_FAIL, "%s: %s: "
		    "install qemu-system-x86 or set [vm] qemu", qemu,
		    strerror(rc));
		return;
	}
	if ((out = malloc(VALIDATE_QEMU_OUTPUT_MAX)) == NULL)
		abort();
	while (len < VALIDATE_QEMU_OUTPUT_MAX - 1 && (n = read(p[0], out + len,
	    VALIDATE_QEMU_OUTPUT_MAX - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "Supported machines", 18) == 0)
			continue;
		count++;
		if (strstr(line, "(default)") != NULL)
			sscanf(line, "%63s", deflt);
	}
	free(out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || count == 0) {
		validate_add(rep, "machine-types", VALIDATE_FAIL, "%s -machine "
		    "help failed: check the QEMU installation", qemu);
		return;
	}
	validate_add(rep, "machine-types", VALIDATE_WARN, "this host's QEMU "
	    "offers %zu machine types (default %s); the other hosts' were not "
	    "compared: start havend", count, deflt[0] != '\0' ? deflt :
	    "none");
}

/* The name of node id in the state, or "node N". */
static const char *
validate_node_name(const struct validate_state *st, uint32_t id, char *buf,
    size_t len)
{
	size_t	i;

	snprintf(buf, len, "node %" PRIu32, id);
	for (i = 0; st->nodes != NULL && i < st->nodes->n_hosts; i++) {
		const Haven__HostConfig	*hc = st->nodes->hosts[i]->config;

		if (hc != NULL && hc->node_id == id)
			snprintf(buf, len, "%s", hc->name);
	}
	return buf;
}

/* corosync binds only management addresses: this node's ringN_addr in
 * its nodelist are addresses of the management NIC (DESIGN §1). */
static void
check_corosync_addresses(struct validate_report *rep, const struct config *c,
    cmap_handle_t h)
{
	struct addrinfo	 hints, *ai;
	char		 key[CMAP_KEYNAME_MAXLEN + 1], nic[IF_NAMESIZE];
	char		 list[256] = "", *addr;
	uint32_t	 pos, ring, a;
	size_t		 len = 0, n = 0;

	if (cmap_get_uint32(h, "nodelist.local_node_pos", &pos) != CS_OK) {
		validate_add(rep, "corosync-addresses", VALIDATE_WARN, "this "
		    "host is not in corosync's nodelist (nodelist.local_node_"
		    "pos): check corosync.conf");
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	for (ring = 0; ring < 8; ring++) {
		snprintf(key, sizeof key, "nodelist.node.%" PRIu32 ".ring%"
		    PRIu32 "_addr", pos, ring);
		if (cmap_get_string(h, key, &addr) != CS_OK)
			continue;
		n++;
		if (getaddrinfo(addr, NULL, &hints, &ai) != 0) {
			validate_add(rep, "corosync-addresses", VALIDATE_WARN,
			    "link %" PRIu32 " address %s is not an IPv4 "
			    "address this check reads", ring, addr);
			free(addr);
			return;
		}
		a = ntohl(((struct sockaddr_in *)(void *)
		    ai->ai_addr)->sin_addr.s_addr);
		freeaddrinfo(ai);
		validate_nic_of(a, nic, sizeof nic);
		if (strcmp(nic, c->if_management) != 0) {
			validate_add(rep, "corosync-addresses", VALIDATE_FAIL,
			    "link %" PRIu32 " binds %s, %s: corosync must "
			    "bind only the management NIC %s's addresses; fix "
			    "ring%" PRIu32 "_addr in corosync.conf", ring, addr,
			    nic[0] != '\0' ? nic : "not an address of this "
			    "host", c->if_management, ring);
			free(addr);
			return;
		}
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len,
			    "%s%s", len ? ", " : "", addr);
		free(addr);
	}
	if (n == 0)
		validate_add(rep, "corosync-addresses", VALIDATE_WARN, "no "
		    "ringN_addr for this host in corosync's nodelist");
	else
		validate_add(rep, "corosync-addresses", VALIDATE_PASS, "binds "
		    "%s, on the management NIC %s", list, c->if_management);
}

/*
 * corosync's links: knet's stats.knet.nodeN.linkM.connected in cmap's
 * stats map, for every other node (this node's own entry is its loopback).
 */
static void
check_corosync(struct validate_report *rep, const struct config *c,
    const struct validate_state *st)
{
	cmap_handle_t		 h, stats;
	cmap_iter_handle_t	 it;
	cmap_value_types_t	 type;
	char			 key[CMAP_KEYNAME_MAXLEN + 1], down[384] = "";
	char			 name[64];
	uint8_t			 v8;
	uint32_t		 self = 0, node, link;
	size_t			 vlen, total = 0, ndown = 0, dlen = 0;

	if (cmap_initialize(&h) != CS_OK) {
		validate_add(rep, "corosync-links", VALIDATE_FAIL, "corosync "
		    "does not answer on this host%s: start it (systemctl start "
		    "corosync)", geteuid() != 0 ? " (it answers root only: "
		    "run validate as root)" : "");
		return;
	}
	(void)cmap_get_uint32(h, "runtime.votequorum.this_node_id", &self);
	check_corosync_addresses(rep, c, h);
	cmap_finalize(h);
	if (cmap_initialize_map(&stats, CMAP_MAP_STATS) != CS_OK) {
		validate_add(rep, "corosync-links", VALIDATE_WARN, "corosync's "
		    "statistics cannot be read (cmap stats map)");
		return;
	}
	if (cmap_iter_init(stats, "stats.knet.node", &it) != CS_OK) {
		cmap_finalize(stats);
		validate_add(rep, "corosync-links", VALIDATE_WARN, "corosync "
		    "has no knet link statistics (not transport knet?)");
		return;
	}
	while (cmap_iter_next(stats, it, key, &vlen, &type) == CS_OK) {
		if (sscanf(key, "stats.knet.node%" SCNu32 ".link%" SCNu32,
		    &node, &link) != 2 || node == self ||
		    strstr(key, ".connected") == NULL ||
		    strcmp(strstr(key, ".connected"), ".connected") != 0)
			continue;
		if (cmap_get_uint8(stats, key, &v8) != CS_OK)
			continue;
		total++;
		if (v8)
			continue;
		ndown++;
		if (dlen < sizeof down)
			dlen += (size_t)snprintf(down + dlen, sizeof down -
			    dlen, "%slink %" PRIu32 " to %s", ndown > 1 ?
			    ", " : "", link, validate_node_name(st, node,
			    name, sizeof name));
	}
	cmap_iter_finalize(stats, it);
	cmap_finalize(stats);
	if (ndown > 0)
		validate_add(rep, "corosync-links", VALIDATE_FAIL, "%s down: "
		    "check that network and the peer's corosync", down);
	else if (total == 0)
		validate_add(rep, "corosync-links", VALIDATE_WARN, "no link to "
		    "another node: a cluster of one, or corosync just started");
	else
		validate_add(rep, "corosync-links", VALIDATE_PASS, "%zu link%s "
		    "to the other nodes, all connected", total, total == 1 ?
		    "" : "s");
}

/* The local havend's answer, quietly: no answer is a warning here. */
static int
validate_havend(struct cli *cli, struct validate_report *rep,
    struct validate_state *st)
{
	Haven__NodeListRequest		 nreq = HAVEN__NODE_LIST_REQUEST__INIT;
	Haven__StorageListRequest	 sreq =
					    HAVEN__STORAGE_LIST_REQUEST__INIT;
	struct sockaddr_un		 sun;
	const char			*path = client_socket_path();
	int				 fd, rc;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		validate_add(rep, "havend", VALIDATE_WARN, "does not answer at "
		    "%s (%s): the pool, reservation, CHAP and fence checks need "
		    "the cluster's state and were skipped; start havend",
		    path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	st->nodes = (Haven__NodeListReply *)client_call(cli, FRAME_NODE_LIST,
	    &nreq.base, FRAME_NODE_LIST_REPLY, &rc);
	if (st->nodes != NULL)
		st->storage = (Haven__StorageListReply *)client_call(cli,
		    FRAME_STORAGE_LIST, &sreq.base, FRAME_STORAGE_LIST_REPLY,
		    &rc);
	if (st->nodes == NULL || st->storage == NULL) {
		validate_add(rep, "havend", VALIDATE_WARN, "answered with an "
		    "error (above): the pool, reservation, CHAP and fence "
		    "checks were skipped");
		return -1;
	}
	validate_add(rep, "havend", st->nodes->quorate ? VALIDATE_PASS :
	    VALIDATE_WARN, "answers: %zu host%s, %zu pool%s, %zu volume%s%s",
	    st->nodes->n_hosts, st->nodes->n_hosts == 1 ? "" : "s",
	    st->storage->n_pools, st->storage->n_pools == 1 ? "" : "s",
	    st->storage->n_volumes, st->storage->n_volumes == 1 ? "" : "s",
	    st->nodes->quorate ? "" : "; not quorate: check corosync");
	return 0;
}

static int
validate_pr_read(void *lun, struct pr_status *s)
{
	return pr_read_sync(lun, s);
}

static int
validate_pr_register(void *lun, uint64_t old_key, uint64_t new_key,
    int ignore_existing)
{
	return pr_register_sync(lun, old_key, new_key, ignore_existing);
}

static int
validate_pr_preempt(void *lun, uint64_t key, uint64_t victim, int type)
{
	return pr_preempt_sync(lun, key, victim, type, 0, NULL);
}

static const struct validate_pr_ops validate_pr_lun = {
	validate_pr_read, validate_pr_register, validate_pr_preempt,
	storage_strerror,
};

/* The reservation round on url over two sessions, as two hosts. */
static void
check_pr(struct validate_report *rep, const struct config *c,
    const char *name, const char *url)
{
	struct iscsi_options	 opts;
	struct event_base	*base;
	struct blockdev		*a = NULL, *b = NULL;
	const char		*env = getenv("HAVEN_INITIATOR");
	char			 initiator[300], detail[512];
	enum validate_result	 r;
	int			 error;

	if (env != NULL && *env != '\0')
		snprintf(initiator, sizeof initiator, "%s", env);
	else
		config_initiator(c, initiator, sizeof initiator);
	memset(&opts, 0, sizeof opts);
	opts.initiator = initiator;
	opts.timeout_s = VALIDATE_ISCSI_TIMEOUT_S;
	opts.quiet = 1;
	if ((base = event_base_new()) == NULL)
		abort();
	if ((error = iscsi_open_sync(base, url, &opts, &a)) != 0 ||
	    (error = iscsi_open_sync(base, url, &opts, &b)) != 0) {
		validate_add(rep, name, VALIDATE_FAIL, "%s: cannot log in as "
		    "%s: %s", url, initiator, storage_strerror(error));
		goto out;
	}
	r = validate_pr(&validate_pr_lun, a, b, detail, sizeof detail);
	validate_add(rep, name, r, "%s: %s", url, detail);
out:
	if (a != NULL)
		blockdev_close(a);
	if (b != NULL)
		blockdev_close(b);
	event_base_free(base);
}

static void
check_pools(struct validate_report *rep, const struct config *c,
    const struct validate_state *st, const struct chap *chap,
    const char *chap_error)
{
	const Haven__PoolConfig		*p;
	const Haven__VolumeConfig	*v;
	const char			*user, *secret;
	char				 name[96], url[512];
	size_t				 i, j;

	if (st->storage->n_pools == 0) {
		validate_add(rep, "pools", VALIDATE_WARN, "the cluster has no "
		    "pool: havenctl pool add");
		return;
	}
	for (i = 0; i < st->storage->n_pools; i++) {
		p = st->storage->pools[i];
		check_portal_route(rep, c, p->name, p->portal);
		snprintf(name, sizeof name, "chap:%s", p->name);
		if (chap == NULL)
			validate_add(rep, name, VALIDATE_WARN, "%s: any "
			    "initiator the target admits logs in without a "
			    "secret; add \"%s USER SECRET\" to the chap file and "
			    "an account at the target", chap_error, p->target);
		else if (chap_find(chap, p->target, &user, &secret) == -1)
			validate_add(rep, name, VALIDATE_WARN, "no CHAP account "
			    "for %s: add \"%s USER SECRET\" to the chap file and "
			    "an account at the target", p->target, p->target);
		else
			validate_add(rep, name, VALIDATE_PASS, "account %s for "
			    "%s", user, p->target);
		snprintf(name, sizeof name, "reservations:%s", p->name);
		for (j = 0, v = NULL; j < st->storage->n_volumes; j++) {
			if (strcmp(st->storage->volumes[j]->pool,
			    p->name) == 0) {
				v = st->storage->volumes[j];
				break;
			}
		}
		if (v == NULL) {
			validate_add(rep, name, VALIDATE_WARN, "pool %s has no "
			    "volume to test on: add one, or name a LUN with "
			    "--lun", p->name);
			continue;
		}
		snprintf(url, sizeof url, "iscsi://%s/%s/%" PRIu32, p->portal,
		    p->target, v->lun);
		check_pr(rep, c, name, url);
	}
}

/* One agent's status run of the fence check. */
/* One agent's monitor run of the fence check; its line in the report is
 * taken when it starts, so the lines keep the levels' and hosts' order. */
struct validate_fence_run {
	struct validate_check	*line;
	char			 victim[64];
	int			*pending;
};

static void
validate_fence_done(int result, const char *detail, void *arg)
{
	struct validate_fence_run	*run = arg;

	run->line->result = result == FENCE_AGENT_OK ? VALIDATE_PASS :
	    VALIDATE_FAIL;
	snprintf(run->line->detail, sizeof run->line->detail, "%s's BMC %s: "
	    "%s", run->victim, result == FENCE_AGENT_OK ? "answers" : "does "
	    "not answer (check the address, credentials and that the BMC's "
	    "network is reachable from here)", detail);
	(*run->pending)--;
	free(run);
}

static void
check_fence(struct validate_report *rep, const struct config *c,
    const struct validate_state *st)
{
	const struct config_fence	*f;
	const Haven__HostConfig		*hc;
	struct validate_fence_run	*run;
	struct event_base		*base;
	const char			*keys[CONFIG_MAX_OPTIONS];
	const char			*values[CONFIG_MAX_OPTIONS];
	char				 name[96];
	size_t				 i, j, k, others = 0;
	int				 pending = 0;

	if (c->nfences == 0) {
		validate_add(rep, "fence", VALIDATE_PASS, "no [fence:NAME] "
		    "sections: the storage level (reservations) fences");
		return;
	}
	for (j = 0; j < st->nodes->n_hosts; j++) {
		hc = st->nodes->hosts[j]->config;
		if (hc != NULL && strcmp(hc->name, c->node_name) != 0)
			others++;
	}
	if ((base = event_base_new()) == NULL)
		abort();
	for (i = 0; i < c->nfences; i++) {
		f = &c->fences[i];
		snprintf(name, sizeof name, "fence:%s", f->name);
		if (f->kind != CONFIG_FENCE_AGENT) {
			validate_add(rep, name, VALIDATE_PASS, "level %u, %s: "
			    "built in%s", f->level, f->agent,
			    f->kind == CONFIG_FENCE_STORAGE ? " (see the "
			    "reservations checks)" : f->kind ==
			    CONFIG_FENCE_WATCHDOG ? " (see the watchdog "
			    "check)" : "; not exercised");
			continue;
		}
		if (others == 0) {
			validate_add(rep, name, VALIDATE_WARN, "no other host "
			    "in the cluster state to ask %s about", f->agent);
			continue;
		}
		for (k = 0; k < f->noptions; k++) {
			keys[k] = f->options[k].key;
			values[k] = f->options[k].value;
		}
		for (j = 0; j < st->nodes->n_hosts; j++) {
			hc = st->nodes->hosts[j]->config;
			if (hc == NULL || strcmp(hc->name, c->node_name) == 0)
				continue;
			if ((run = calloc(1, sizeof *run)) == NULL)
				abort();
			run->pending = &pending;
			snprintf(run->victim, sizeof run->victim, "%s",
			    hc->name);
			snprintf(name, sizeof name, "fence:%s/%s", f->name,
			    hc->name);
			validate_add(rep, name, VALIDATE_FAIL, "%s monitor "
			    "did not finish", f->agent);
			run->line = &rep->checks[rep->n - 1];
			if (fence_agent_start(base, f->agent, "monitor", keys,
			    values, f->noptions, hc->name, hc->node_id,
			    VALIDATE_FENCE_TIMEOUT_MS, validate_fence_done,
			    run) == NULL) {
				snprintf(run->line->detail,
				    sizeof run->line->detail, "%s cannot be "
				    "run: %s (install fence-agents, or fix the "
				    "section)", f->agent, strerror(errno));
				free(run);
				continue;
			}
			pending++;
		}
	}
	while (pending > 0)
		event_base_loop(base, EVLOOP_ONCE);
	event_base_free(base);
}

static void
validate_print(struct cli *cli, const struct validate_report *rep)
{
	struct json_object	*obj, *arr, *o;
	size_t			 i, count[3] = { 0, 0, 0 };

	if (cli->json) {
		obj = json_object_new_object();
		arr = json_object_new_array();
		for (i = 0; i < rep->n; i++) {
			o = json_object_new_object();
			json_object_object_add(o, "check",
			    json_object_new_string(rep->checks[i].name));
			json_object_object_add(o, "result",
			    json_object_new_string(validate_result_name(
			    rep->checks[i].result)));
			json_object_object_add(o, "detail",
			    json_object_new_string(rep->checks[i].detail));
			json_object_array_add(arr, o);
		}
		json_object_object_add(obj, "checks", arr);
		json_object_object_add(obj, "result", json_object_new_string(
		    validate_result_name(validate_verdict(rep))));
		cli_json_print(cli, obj);
		return;
	}
	for (i = 0; i < rep->n; i++) {
		count[rep->checks[i].result]++;
		printf("%-28s %-4s  %s\n", rep->checks[i].name,
		    validate_result_name(rep->checks[i].result),
		    rep->checks[i].detail);
	}
	printf("%s: %zu checks, %zu passed, %zu warned, %zu failed\n",
	    validate_result_name(validate_verdict(rep)), rep->n, count[0],
	    count[1], count[2]);
}

static int
cmd_validate_exec(struct cli *cli, struct args *args)
{
	struct config_error	 errs[VALIDATE_MAX_ERRORS];
	struct validate_report	*rep;
	struct validate_state	 st = { NULL, NULL };
	struct validate_nic	 mgmt, stor;
	struct config		*c;
	struct chap		*chap = NULL;
	const char		*path, *lun;
	char			 line[512], chap_error[320] = "";
	size_t			 nerrs = 0, i;
	int			 rc;

	if ((path = args_get(args, "config")) == NULL)
		path = CONFIG_PATH;
	lun = args_get(args, "lun");
	if (lun != NULL && !target_is_iscsi(lun)) {
		cli_usage_error(cli, &cmd_validate_entry, "--lun takes an "
		    "iSCSI LUN URL (iscsi://portal/iqn/lun)");
		return CLI_EXIT_USAGE;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (rep = calloc(1, sizeof *rep)) == NULL)
		abort();
	/* A broken haven.conf is the first finding, not the end: what it
	 * did say is still checked (config_parse_file fills in what it
	 * read). */
	if (config_parse_file(path, c, errs, VALIDATE_MAX_ERRORS, &nerrs) ==
	    -1) {
		for (i = 0; i < nerrs && i < VALIDATE_MAX_ERRORS; i++) {
			config_error_format(&errs[i], path, line, sizeof line);
			validate_add(rep, "config", VALIDATE_FAIL, "%s", line);
		}
		if (c->node_name[0] == '\0' && c->if_management[0] == '\0') {
			/* Unreadable, or says nothing to check. */
			validate_print(cli, rep);
			rc = CLI_EXIT_PROBLEMS;
			goto out;
		}
	} else
		validate_add(rep, "config", VALIDATE_PASS, "%s parses", path);

	validate_nic_read(c->if_management, &mgmt);
	validate_nic_read(c->if_storage, &stor);
	check_interfaces(rep, c, &mgmt, &stor);
	check_management(rep, c, &mgmt);
	check_storage(rep, c, &mgmt, &stor);
	check_migration(rep, c);
	check_guest_bridges(rep, c);
	check_watchdog(rep, c);
	check_clock(rep);
	check_kvm(rep, c);

	if (c->storage_chap_line != 0 || access(c->storage_chap_file, F_OK) ==
	    0) {
		if (chap_load(c->storage_chap_file, &chap, chap_error,
		    sizeof chap_error) == 0)
			chap_install(chap);	/* the logins use it */
		else
			chap = NULL;
	} else
		snprintf(chap_error, sizeof chap_error, "%s: no such file",
		    c->storage_chap_file);
	if (validate_havend(cli, rep, &st) == 0) {
		validate_machine_types(rep, st.nodes->hosts,
		    st.nodes->n_hosts);
		if (lun == NULL)
			check_pools(rep, c, &st, chap, chap_error);
		check_fence(rep, c, &st);
	} else
		check_machine_types(rep, c);
	check_corosync(rep, c, &st);
	if (lun != NULL)
		check_pr(rep, c, "reservations", lun);
	validate_print(cli, rep);
	rc = validate_verdict(rep) == VALIDATE_FAIL ? CLI_EXIT_PROBLEMS :
	    CLI_EXIT_OK;
out:
	if (st.nodes != NULL)
		message_free(&st.nodes->base);
	if (st.storage != NULL)
		message_free(&st.storage->base);
	chap_install(NULL);
	config_wipe(c);
	free(c);
	free(rep);
	return rc;
}

const struct cmd_entry cmd_validate_entry = {
	.name = "validate",
	.args = {
		.options = (const struct args_option[]) {
			{ "config", 'c', ARGS_VALUE },
			{ "lun", 'l', ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 0,
		.too_many = "no operands",
	},
	.usage = "[-c CONFIG] [--lun URL] [--json]",
	.summary = "check this host and the cluster (the validation wizard)",
	.exec = cmd_validate_exec,
};
