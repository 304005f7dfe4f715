/*
 * Pure helpers for havenctl's command lines and output: sizes, VM names,
 * priorities, isolation responses, a VM's NICs, iSCSI portals and names,
 * the names of cluster enums and console text, vm vnc's --listen and the
 * console's escape byte. No I/O, so tests/unit/cli_parse_test.c
 * links this file alone.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cli.h"
#include "common.h"
#include "proto.h"
#include "tree.h"

/* "64M", "1G", "4096", "1.5G" is refused: sizes are whole units. */
int
cli_parse_size(const char *s, uint64_t *out)
{
	char		*end;
	uint64_t	 v, mult = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1ULL << 10;
		break;
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'G':
		mult = 1ULL << 30;
		break;
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return -1;
	}
	if (*end != '\0') {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end != '\0')
			return -1;
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* A VM's memory: a size of at least CLI_VM_MIN_MEMORY_MIB whole MiB. */
int
cli_parse_memory_mib(const char *s, uint64_t *mib)
{
	uint64_t	bytes;

	if (cli_parse_size(s, &bytes) == -1 || bytes % (1ULL << 20) != 0 ||
	    bytes < (uint64_t)CLI_VM_MIN_MEMORY_MIB << 20)
		return -1;
	*mib = bytes >> 20;
	return 0;
}

/* [a-zA-Z0-9][a-zA-Z0-9._-]{0,62}: the rule havend applies (proto/tree.c). */
_Static_assert(CLI_VM_NAME_MAX == TREE_NAME_MAX, "one name rule");
_Static_assert(CLI_ISCSI_NAME_MAX == TREE_ISCSI_NAME_MAX, "one IQN rule");
int
cli_vm_name_valid(const char *name)
{
	return tree_name_valid(name);
}

/*
 * --nic bridge=BRIDGE[,mac=MAC][,vlan=ID][,model=virtio|e1000], parsed in
 * place with getsubopt(3): nic's strings point into s, a given MAC is
 * written in lowercase into mac. -1 with what is wrong (a phrase that
 * follows "bad --nic '...': ") in err. havend checks it all again.
 */
int
cli_parse_nic(char *s, struct Haven__Nic *nic, char mac[NET_MAC_STRLEN + 1],
    char *err, size_t errlen)
{
	enum { KEY_BRIDGE, KEY_MAC, KEY_VLAN, KEY_MODEL, KEY_COUNT };
	static char *const	 keys[] = { "bridge", "mac", "vlan", "model",
				    NULL };
	uint8_t			 addr[NET_MAC_BYTES];
	Haven__NicModel		 model;
	const char		*problem;
	char			*value;
	uint64_t		 vlan;
	int			 k, seen = 0;

	haven__nic__init(nic);
	while (*s != '\0') {
		if (*s == ',') {
			snprintf(err, errlen, "an empty field between commas");
			return -1;
		}
		if ((k = getsubopt(&s, keys, &value)) == -1) {
			snprintf(err, errlen, "unknown field '%.32s': bridge=, "
			    "mac=, vlan= or model=", value);
			return -1;
		}
		if (seen & (1 << k)) {
			snprintf(err, errlen, "%s= given twice", keys[k]);
			return -1;
		}
		seen |= 1 << k;
		if (value == NULL || *value == '\0') {
			snprintf(err, errlen, "%s= needs a value", keys[k]);
			return -1;
		}
		switch (k) {
		case KEY_BRIDGE:
			if (!net_ifname_valid(value)) {
				snprintf(err, errlen, "'%.32s' is not a bridge "
				    "name (1 to 15 letters, digits or "
				    "'._-@+='; see ip link)", value);
				return -1;
			}
			nic->bridge = value;
			break;
		case KEY_MAC:
			if (net_mac_parse(value, addr) == -1) {
				snprintf(err, errlen, "'%.32s' is not a MAC "
				    "address; write six pairs of hex digits "
				    "such as 0a:1b:2c:3d:4e:5f, or leave mac= "
				    "out to have one chosen", value);
				return -1;
			}
			if ((problem = net_mac_problem(addr)) != NULL) {
				snprintf(err, errlen, "MAC %s %s; give a unicast "
				    "MAC, or leave mac= out to have one chosen",
				    value, problem);
				return -1;
			}
			net_mac_format(addr, mac);
			nic->mac = mac;
			break;
		case KEY_VLAN:
			if (cli_parse_uint(value, 0, NIC_VLAN_MAX, &vlan) ==
			    -1) {
				snprintf(err, errlen, "VLAN '%.32s' is out of "
				    "range: 0 (untagged) or 1 to %d", value,
				    NIC_VLAN_MAX);
				return -1;
			}
			nic->vlan = (uint32_t)vlan;
			break;
		case KEY_MODEL:
			if (nic_model_parse(value, &model) == -1) {
				snprintf(err, errlen, "unknown model '%.32s': "
				    "virtio or e1000", value);
				return -1;
			}
			nic->model = model;
			break;
		}
	}
	if (!(seen & (1 << KEY_BRIDGE))) {
		snprintf(err, errlen, "bridge= is required: the host bridge "
		    "the NIC is on");
		return -1;
	}
	if (!(seen & (1 << KEY_MODEL)))
		nic->model = HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO;
	return 0;
}

/* A decimal number in [min, max], nothing else. */
int
cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char		*end;
	uint64_t	 v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const struct {
	const char	*name;
	uint32_t	 value;
} priorities[] = {
	{ "high", CLI_PRIORITY_HIGH },
	{ "medium", CLI_PRIORITY_MEDIUM },
	{ "low", CLI_PRIORITY_LOW },
};

int
cli_parse_priority(const char *s, uint32_t *out)
{
	size_t	i;

	for (i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
		if (strcasecmp(s, priorities[i].name) == 0) {
			*out = priorities[i].value;
			return 0;
		}
	}
	return -1;
}

/* "high", "medium", "low", or the number for any other value. */
const char *
cli_priority_name(uint32_t priority, char *buf, size_t size)
{
	size_t	i;

	for (i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
		if (priorities[i].value == priority)
			return priorities[i].name;
	}
	snprintf(buf, size, "%" PRIu32, priority);
	return buf;
}

int
cli_parse_isolation(const char *s, int *out)
{
	if (strcasecmp(s, "stop") == 0)
		*out = HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP;
	else if (strcasecmp(s, "save") == 0)
		*out = HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE;
	else if (strcasecmp(s, "leave-running") == 0 ||
	    strcasecmp(s, "none") == 0)
		*out =
		    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING;
	else
		return -1;
	return 0;
}

const char *
cli_isolation_name(int v)
{
	switch (v) {
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_UNSPECIFIED:
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP:
		return "stop";
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING:
		return "leave-running";
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE:
		return "save";
	default:
		return "unknown";
	}
}

const char *
cli_desired_name(int v)
{
	switch (v) {
	case HAVEN__DESIRED_STATE__DESIRED_STATE_UNSPECIFIED:
	case HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED:
		return "stopped";
	case HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING:
		return "running";
	default:
		return "unknown";
	}
}

const char *
cli_phase_name(int v)
{
	static const char	*names[] = {
		[HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED] = "stopped",
		[HAVEN__VM_PHASE__VM_PHASE_STOPPED] = "stopped",
		[HAVEN__VM_PHASE__VM_PHASE_STARTING] = "starting",
		[HAVEN__VM_PHASE__VM_PHASE_RUNNING] = "running",
		[HAVEN__VM_PHASE__VM_PHASE_STOPPING] = "stopping",
		[HAVEN__VM_PHASE__VM_PHASE_SAVING] = "saving",
		[HAVEN__VM_PHASE__VM_PHASE_SAVED] = "saved",
		[HAVEN__VM_PHASE__VM_PHASE_RESTORING] = "restoring",
		[HAVEN__VM_PHASE__VM_PHASE_MIGRATING] = "migrating",
		[HAVEN__VM_PHASE__VM_PHASE_RECOVERING] = "recovering",
		[HAVEN__VM_PHASE__VM_PHASE_FAILED] = "failed",
		[HAVEN__VM_PHASE__VM_PHASE_PAUSED] = "paused",
	};

	if (v < 0 || (size_t)v >= sizeof names / sizeof names[0] ||
	    names[v] == NULL)
		return "unknown";
	return names[v];
}

const char *
cli_membership_name(int v)
{
	switch (v) {
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_UNSPECIFIED:
		return "never-seen";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER:
		return "member";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST:
		return "lost";
	default:
		return "unknown";
	}
}

const char *
cli_fence_name(int v)
{
	switch (v) {
	case HAVEN__FENCE_STATUS__FENCE_STATUS_NONE:
		return "none";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING:
		return "pending";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED:
		return "fenced";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

/* "512 MiB", "4 GiB", "1536 MiB": whole units, as typed on the command line. */
void
cli_format_mib(uint64_t mib, char *buf, size_t size)
{
	if (mib != 0 && mib % (1024ULL * 1024) == 0)
		snprintf(buf, size, "%" PRIu64 " TiB", (uint64_t)(mib / (1024ULL * 1024)));
	else if (mib != 0 && mib % 1024 == 0)
		snprintf(buf, size, "%" PRIu64 " GiB", mib / 1024);
	else
		snprintf(buf, size, "%" PRIu64 " MiB", mib);
}

/* "2026-12-07T13:05:06Z" of a CLOCK_REALTIME time in microseconds. */
void
cli_format_time(uint64_t us, char *buf, size_t size)
{
	time_t		secs = (time_t)(us / 1000000);
	struct tm	tm;

	gmtime_r(&secs, &tm);
	if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && size > 0)
		buf[0] = '\0';
}

/* Why a VM is paused and for how long, for vm list and vm show:
 * "41 s, since 2026-12-07T13:05:06Z: WHY"; "" when it is not paused. */
void
cli_format_paused(const Haven__VmRuntime *rt, char *buf, size_t size)
{
	char		when[32];
	uint64_t	now = now_us();

	if (rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
		snprintf(buf, size, "%s", "");
		return;
	}
	if (rt->paused_since_us == 0) {
		snprintf(buf, size, "%s", rt->paused_why != NULL &&
		    *rt->paused_why != '\0' ? rt->paused_why : "no reason given");
		return;
	}
	cli_format_time(rt->paused_since_us, when, sizeof when);
	snprintf(buf, size, "%" PRIu64 " s, since %s: %s", now >
	    rt->paused_since_us ? (now - rt->paused_since_us) / 1000000 : 0,
	    when, rt->paused_why != NULL && *rt->paused_why != '\0' ?
	    rt->paused_why : "no reason given");
}

/*
 * A VM given up for its storage (storage_giveup_s, issue 20) whose old
 * host is not yet fenced off its volumes: since when, and how the fence
 * stands; "" for any other VM.
 */
void
cli_format_giveup(const Haven__VmRuntime *rt, char *buf, size_t size)
{
	const Haven__StorageFence	*f = rt->storage_fence;
	char				 when[32], how[200];

	if (f == NULL || f->giveup_us == 0 || f->generation != rt->generation) {
		snprintf(buf, size, "%s", "");
		return;
	}
	cli_format_time(f->giveup_us, when, sizeof when);
	switch (f->step) {
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER:
		snprintf(how, sizeof how, "host %u is fencing it (attempt %u)",
		    f->by, f->attempt);
		break;
	case HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED:
		snprintf(how, sizeof how, "host %u could not (attempt %u: "
		    "%.100s); again shortly", f->by, f->attempt,
		    f->detail != NULL ? f->detail : "");
		break;
	default:
		snprintf(how, sizeof how, "no host reaches pool %s yet",
		    f->pool);
		break;
	}
	snprintf(buf, size, "at %s, its storage lost on host %u (pool %s); "
	    "it starts again only once host %u is fenced off its volumes "
	    "(by itself when the SAN answers): %s", when, f->host, f->pool,
	    f->host, how);
}

/* The cluster's storage_giveup_s in words. */
void
cli_format_giveup_setting(uint32_t secs, char *buf, size_t size)
{
	if (secs == 0)
		snprintf(buf, size, "never (a VM paused because no host "
		    "reaches its storage waits for it, however long)");
	else
		snprintf(buf, size, "after %u s (a VM paused that long because "
		    "no host reaches its storage is stopped; it stays stopped "
		    "until 'vm start')", secs);
}

/*
 * An iSCSI portal as a pool records it: HOST[:PORT], HOST a DNS name or a
 * dotted IPv4 address, PORT 1 to 65535 (3260 when left out). IPv6 portals
 * are not accepted.
 */
int
cli_portal_valid(const char *portal)
{
	struct in_addr	 addr;
	const char	*colon;
	char		 host[254];
	size_t		 len, i, label = 0;
	uint64_t	 port;
	int		 numeric = 1;

	colon = strchr(portal, ':');
	len = colon != NULL ? (size_t)(colon - portal) : strlen(portal);
	if (len == 0 || len >= sizeof host)
		return 0;
	if (colon != NULL && cli_parse_uint(colon + 1, 1, 65535, &port) == -1)
		return 0;
	memcpy(host, portal, len);
	host[len] = '\0';
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)host[i]) && host[i] != '.')
			numeric = 0;
	}
	/* All digits and dots: an IPv4 address or nothing ("10.0.2"). */
	if (numeric)
		return inet_pton(AF_INET, host, &addr) == 1;
	/* Labels of 1 to 63 letters, digits and '-', not at either end. */
	for (i = 0; i <= len; i++) {
		if (host[i] == '.' || host[i] == '\0') {
			if (label == 0 || host[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)host[i]) ||
		    (host[i] == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return 1;
}

/* An iSCSI target name (RFC 3720 3.2.6), as havend checks it. */
int
cli_iscsi_name_valid(const char *name)
{
	return tree_iscsi_name_valid(name);
}

/*
 * Copy bytes that should be UTF-8 text (a serial console's output) into out,
 * replacing each byte that does not start a well-formed sequence with U+FFFD,
 * so a JSON string made of it is valid. out must hold 3 * len bytes; returns
 * how many were written.
 */
size_t
cli_utf8_clean(const uint8_t *in, size_t len, char *out)
{
	size_t	i = 0, o = 0, n, k;
	uint8_t	b, lo, hi;

	while (i < len) {
		b = in[i];
		lo = 0x80;
		hi = 0xbf;
		if (b < 0x80)
			n = 1;
		else if (b >= 0xc2 && b <= 0xdf)
			n = 2;
		else if (b >= 0xe0 && b <= 0xef) {
			n = 3;
			if (b == 0xe0)
				lo = 0xa0;	/* no overlong forms */
			else if (b == 0xed)
				hi = 0x9f;	/* no surrogates */
		} else if (b >= 0xf0 && b <= 0xf4) {
			n = 4;
			if (b == 0xf0)
				lo = 0x90;
			else if (b == 0xf4)
				hi = 0x8f;	/* nothing past U+10FFFF */
		} else
			n = 0;
		for (k = 1; n > 1 && k < n; k++) {
			if (i + k >= len || in[i + k] < (k == 1 ? lo : 0x80) ||
			    in[i + k] > (k == 1 ? hi : 0xbf)) {
				n = 0;
				break;
			}
		}
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
		}
	}
	return o;
}

/*
 * One pool of a host's storage health, as havenctl status says it: "san:
 * reachable", "san: unreachable for 42 s" (for 3 min, for 2 h past those),
 * now_us being havend's clock.
 */
void
cli_pool_health(const char *pool, int reachable, uint64_t since_us,
    uint64_t now_us, char *buf, size_t len)
{
	uint64_t	s = now_us > since_us ? (now_us - since_us) / 1000000 : 0;

	if (reachable)
		snprintf(buf, len, "%s: reachable", pool);
	else if (s < 120)
		snprintf(buf, len, "%s: unreachable for %llu s", pool,
		    (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%s: unreachable for %llu min", pool,
		    (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "%s: unreachable for %llu h", pool,
		    (unsigned long long)(s / 3600));
}

/*
 * vm vnc --listen: "HOST:PORT" with HOST a loopback address (127.0.0.0/8,
 * "localhost", "[::1]") and PORT 0-65535 (0: the kernel picks one). Fills
 * *sa (an IPv4 or IPv6 address) and *len; -1 with the reason in err.
 */
int
cli_parse_listen(const char *spec, struct sockaddr_storage *sa,
    socklen_t *len, char *err, size_t errlen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)sa;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)sa;
	const char		*colon = strrchr(spec, ':');
	char			 host[64];
	uint64_t		 port;
	size_t			 hostlen;

	memset(sa, 0, sizeof *sa);
	if (colon == NULL || colon == spec ||
	    cli_parse_uint(colon + 1, 0, 65535, &port) == -1) {
		snprintf(err, errlen, "--listen '%s' is not HOST:PORT (127.0.0.1:5901; "
		    "port 0 lets the kernel choose)", spec);
		return -1;
	}
	hostlen = (size_t)(colon - spec);
	if (hostlen >= sizeof host) {
		snprintf(err, errlen, "--listen '%s': the host is too long",
		    spec);
		return -1;
	}
	memcpy(host, spec, hostlen);
	host[hostlen] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (host[0] == '[' && hostlen > 2 && host[hostlen - 1] == ']') {
		host[hostlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			*len = sizeof *sin6;
			return 0;
		}
	} else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1 &&
	    (ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof *sin;
		return 0;
	}
	memset(sa, 0, sizeof *sa);
	snprintf(err, errlen, "--listen '%s': a loopback address is needed "
	    "(127.0.0.1:PORT, localhost:PORT or [::1]:PORT): the VM's display "
	    "has no password, so it is served to this host only (reach it "
	    "from elsewhere with 'ssh -L')", spec);
	return -1;
}

/* Where the console's escape byte (Ctrl-]) is in buf, or len if not. */
size_t
cli_console_escape(const uint8_t *buf, size_t len)
{
	const uint8_t	*p = memchr(buf, CLI_CONSOLE_ESCAPE, len);

	return p != NULL ? (size_t)(p - buf) : len;
}
