/*
 * What havenctl validate decides without touching the host
 * (tests/unit/validate_test.c): the report and its verdict, IPv4 subnets,
 * the kernel's route tables as text, and the persistent reservation round
 * with scratch keys, run through a small interface to the LUN.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"
#include "storage.h"

const char *
validate_result_name(enum validate_result r)
{
	switch (r) {
	case VALIDATE_PASS:
		return "pass";
	case VALIDATE_WARN:
		return "warn";
	default:
		return "fail";
	}
}

/* One more check; past VALIDATE_MAX_CHECKS the last one says so. */
void
validate_add(struct validate_report *rep, const char *name,
    enum validate_result result, const char *fmt, ...)
{
	struct validate_check	*c;
	va_list			 ap;

	if (rep->n == VALIDATE_MAX_CHECKS) {
		c = &rep->checks[VALIDATE_MAX_CHECKS - 1];
		snprintf(c->name, sizeof c->name, "validate");
		c->result = VALIDATE_FAIL;
		snprintf(c->detail, sizeof c->detail, "more than %d checks; "
		    "some were not reported", VALIDATE_MAX_CHECKS);
		return;
	}
	c = &rep->checks[rep->n++];
	snprintf(c->name, sizeof c->name, "%s", name);
	c->result = result;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
}

/* The worst result; pass for an empty report. */
enum validate_result
validate_verdict(const struct validate_report *rep)
{
	enum validate_result	 worst = VALIDATE_PASS;
	size_t			 i;

	for (i = 0; i < rep->n; i++)
		if (rep->checks[i].result > worst)
			worst = rep->checks[i].result;
	return worst;
}

static uint32_t
validate_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffU :
	    ~((1U << (32 - prefix)) - 1);
}

int
validate_net_contains(const struct validate_net *n, uint32_t addr)
{
	uint32_t	m = validate_mask(n->prefix);

	return (n->addr & m) == (addr & m);
}

/* Two subnets overlap when the shorter prefix holds the other's address. */
int
validate_nets_overlap(const struct validate_net *a,
    const struct validate_net *b)
{
	const struct validate_net	*wide = a->prefix <= b->prefix ? a : b;
	const struct validate_net	*narrow = wide == a ? b : a;

	return validate_net_contains(wide, narrow->addr);
}

/* "10.77.1.11/24" for a detail sentence. */
void
validate_net_format(const struct validate_net *n, char *buf, size_t len)
{
	struct in_addr	in = { .s_addr = htonl(n->addr) };
	char		a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &in, a, sizeof a);
	snprintf(buf, len, "%s/%u", a, n->prefix);
}

/*
 * /proc/net/route: a header line, then "Iface Destination Gateway Flags
 * RefCnt Use Metric Mask ..." with addresses in hex. 1 when iface has a
 * default route (destination and mask 0, route up), 0 when not, -1 when a
 * line cannot be read.
 */
int
validate_route_default(const char *text, const char *iface)
{
	const char	*line = text, *nl;
	char		 buf[256], name[32];
	unsigned	 dest, gw, flags, refcnt, use, metric, mask;
	int		 first = 1;

	for (; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			nl = line + strlen(line) - 1;
		if (first) {
			first = 0;
			continue;
		}
		if ((size_t)(nl - line) >= sizeof buf)
			return -1;
		memcpy(buf, line, (size_t)(nl - line) + 1);
		buf[nl - line + 1] = '\0';
		if (buf[0] == '\n' || buf[0] == '\0')
			continue;
		if (sscanf(buf, "%31s %x %x %x %u %u %u %x", name, &dest, &gw,
		    &flags, &refcnt, &use, &metric, &mask) != 8)
			return -1;
		if (strcmp(name, iface) == 0 && dest == 0 && mask == 0 &&
		    (flags & 0x1))	/* RTF_UP */
			return 1;
	}
	return 0;
}

/*
 * /proc/net/ipv6_route: "DEST DESTLEN SRC SRCLEN NEXTHOP METRIC REFCNT USE
 * FLAGS IFACE" per line, no header. A default route has destination ::/0;
 * the kernel lists "unreachable" entries on lo, which are not routes out.
 */
int
validate_route6_default(const char *text, const char *iface)
{
	const char	*line = text, *nl;
	char		 buf[256], dest[40], src[40], hop[40], name[32];
	unsigned	 dlen, slen, metric, refcnt, use, flags;

	for (; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			nl = line + strlen(line) - 1;
		if ((size_t)(nl - line) >= sizeof buf)
			return -1;
		memcpy(buf, line, (size_t)(nl - line) + 1);
		buf[nl - line + 1] = '\0';
		if (buf[0] == '\n' || buf[0] == '\0')
			continue;
		if (sscanf(buf, "%39s %x %39s %x %39s %x %x %x %x %31s", dest,
		    &dlen, src, &slen, hop, &metric, &refcnt, &use, &flags,
		    name) != 10)
			return -1;
		if (strcmp(name, iface) == 0 && dlen == 0 &&
		    strspn(dest, "0") == strlen(dest) && (flags & 0x1) &&
		    !(flags & 0x200))	/* RTF_UP, not RTF_REJECT */
			return 1;
	}
	return 0;
}

static int
validate_pr_has(const struct pr_status *s, uint64_t key)
{
	size_t	i;

	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i] == key)
			return 1;
	return 0;
}

/*
 * The reservation round, as two hosts would do it: session a registers
 * scratch key A, READ KEYS lists it; session b registers B and preempts A;
 * A is gone; b unregisters B. Scratch keys have the low 32 bits 0, which no
 * node's key has (pr_key: the node id, > 0), so the round cannot touch a
 * node's registration, and it never reserves or releases: the reservation
 * (if a host holds one) is the same before and after, which it checks.
 * Leftovers of an interrupted run are removed first: tgt keeps a session's
 * registration after the session ends (notes/platform.md 5.2), so they can
 * only be preempted, never unregistered.
 */
enum validate_result
validate_pr(const struct validate_pr_ops *ops, void *a, void *b, char *detail,
    size_t len)
{
	struct pr_status	 before, s;
	const char		*step;
	char			 cleanup[96] = "";
	int			 error, a_registered = 0, b_registered = 0, type;
	enum validate_result	 r = VALIDATE_FAIL;

	step = "READ KEYS";
	if ((error = ops->read(a, &before)) != 0)
		goto refused;
	type = before.reserved ? before.type :
	    PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY;
	step = "REGISTER";
	if ((error = ops->register_key(a, 0, VALIDATE_KEY_A, 1)) != 0)
		goto refused;
	a_registered = 1;
	if (validate_pr_has(&before, VALIDATE_KEY_B)) {
		step = "PREEMPT (of an earlier run's scratch key)";
		if ((error = ops->preempt(a, VALIDATE_KEY_A, VALIDATE_KEY_B,
		    type)) != 0)
			goto refused;
		snprintf(cleanup, sizeof cleanup, "; removed an earlier run's "
		    "scratch key");
	}
	step = "READ KEYS";
	if ((error = ops->read(a, &s)) != 0)
		goto refused;
	if (!validate_pr_has(&s, VALIDATE_KEY_A)) {
		snprintf(detail, len, "REGISTER of scratch key 0x%016" PRIx64
		    " succeeded but READ KEYS does not list it: the target "
		    "does not keep registrations; use a target with SCSI-3 "
		    "persistent reservations", VALIDATE_KEY_A);
		goto out;
	}
	step = "REGISTER";
	if ((error = ops->register_key(b, 0, VALIDATE_KEY_B, 1)) != 0)
		goto refused;
	b_registered = 1;
	step = "PREEMPT";
	if ((error = ops->preempt(b, VALIDATE_KEY_B, VALIDATE_KEY_A,
	    type)) != 0)
		goto refused;
	a_registered = 0;
	step = "READ KEYS";
	if ((error = ops->read(b, &s)) != 0)
		goto refused;
	if (validate_pr_has(&s, VALIDATE_KEY_A)) {
		snprintf(detail, len, "PREEMPT succeeded but scratch key "
		    "0x%016" PRIx64 " is still registered: this target cannot "
		    "fence a host; use one whose PREEMPT removes the victim's "
		    "registrations", VALIDATE_KEY_A);
		a_registered = 1;
		goto out;
	}
	if (s.reserved != before.reserved || (before.reserved &&
	    s.holder != before.holder)) {
		snprintf(detail, len, "the reservation changed during the "
		    "round (a host reserved or was fenced meanwhile?); run "
		    "validate again");
		goto out;
	}
	step = "REGISTER (unregister)";
	if ((error = ops->register_key(b, VALIDATE_KEY_B, 0, 0)) != 0)
		goto refused;
	b_registered = 0;
	snprintf(detail, len, "register, read keys, preempt and unregister "
	    "work (scratch keys 0x%016" PRIx64 ", 0x%016" PRIx64 ")%s",
	    VALIDATE_KEY_A, VALIDATE_KEY_B, cleanup);
	r = VALIDATE_PASS;
	goto out;
refused:
	snprintf(detail, len, "%s failed: %s: the LUN does not honour SCSI-3 "
	    "persistent reservations, which fencing needs (turn them on at "
	    "the target)", step, ops->strerror(error));
out:
	/* Best effort: what is left the next run preempts. */
	if (a_registered)
		(void)ops->register_key(a, VALIDATE_KEY_A, 0, 0);
	if (b_registered)
		(void)ops->register_key(b, VALIDATE_KEY_B, 0, 0);
	return r;
}

/* Whether list (n strings) holds s. */
static int
validate_list_has(char *const *list, size_t n, const char *s)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/* Whether a host before hosts[j] other than hosts[i] offers type t: each
 * type another host offers is counted once. */
static int
validate_offered_before(struct Haven__Host *const *hosts, size_t i, size_t j,
    const char *t)
{
	size_t	x;

	for (x = 0; x < j; x++)
		if (x != i && hosts[x]->config != NULL &&
		    validate_list_has(hosts[x]->config->machine_types,
		    hosts[x]->config->n_machine_types, t))
			return 1;
	return 0;
}

/*
 * The machine types every host's QEMU offers, as each havend published
 * them (HostConfig, probed at its start): a VM is pinned to the versioned
 * type of the host that created it, so a host whose QEMU lacks a type
 * another host offers cannot take the VMs pinned to it. Fails naming each
 * such host and up to three of the types it lacks.
 */
void
validate_machine_types(struct validate_report *rep,
    struct Haven__Host *const *hosts, size_t n)
{
	const Haven__HostConfig	*hc, *oc;
	char			 lacks[200], versions[200] = "";
	size_t			 i, j, k, missing, published = 0, types = 0;
	int			 failed = 0;

	for (i = 0; i < n; i++) {
		if ((hc = hosts[i]->config) == NULL)
			continue;
		if (hc->n_machine_types == 0) {
			validate_add(rep, "machine-types", VALIDATE_WARN, "%s has "
			    "not published its QEMU's machine types (its havend "
			    "is older, or its QEMU probe failed: see its "
			    "journal); it was not compared", hc->name);
			continue;
		}
		published++;
		if (hc->n_machine_types > types)
			types = hc->n_machine_types;
		if (strstr(versions, hc->qemu_version) == NULL &&
		    strlen(versions) + strlen(hc->qemu_version) + 3 <
		    sizeof versions)
			snprintf(versions + strlen(versions), sizeof versions -
			    strlen(versions), "%s%s", versions[0] != '\0' ?
			    ", " : "", hc->qemu_version);
		/* What the others offer that this one lacks. */
		missing = 0;
		lacks[0] = '\0';
		for (j = 0; j < n; j++) {
			if (j == i || (oc = hosts[j]->config) == NULL)
				continue;
			for (k = 0; k < oc->n_machine_types; k++) {
				const char	*t = oc->machine_types[k];

				if (validate_list_has(hc->machine_types,
				    hc->n_machine_types, t) ||
				    validate_offered_before(hosts, i, j, t))
					continue;
				if (++missing <= 3)
					snprintf(lacks + strlen(lacks),
					    sizeof lacks - strlen(lacks),
					    "%s%s", missing > 1 ? ", " : "", t);
			}
		}
		if (missing == 0)
			continue;
		failed = 1;
		validate_add(rep, "machine-types", VALIDATE_FAIL, "%s's QEMU %s "
		    "lacks %zu machine type%s other hosts offer (%s%s): VMs "
		    "pinned to %s cannot run there; install the same QEMU "
		    "version on every host", hc->name, hc->qemu_version,
		    missing, missing == 1 ? "" : "s", lacks, missing > 3 ?
		    ", ..." : "", missing == 1 ? "it" : "them");
	}
	if (!failed && published > 0)
		validate_add(rep, "machine-types", VALIDATE_PASS, "%zu host%s "
		    "offer the same %zu machine types (QEMU %s)", published,
		    published == 1 ? "" : "s", types, versions);
}
