/*
 * cli/validate.c: havenctl validate's verdict, subnets, route tables, and
 * the reservation round against a LUN stand-in with tgt's semantics
 * (registrations per session, orphans kept) and against stand-ins for a
 * LUN without reservations: one that refuses PR commands, one that accepts
 * them and keeps nothing, one whose PREEMPT removes nothing. The real
 * target is lab.validate's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "proto.h"
#include "storage.h"

static void
test_verdict(void **state)
{
	static struct validate_report	rep;

	(void)state;
	memset(&rep, 0, sizeof rep);
	assert_int_equal(validate_verdict(&rep), VALIDATE_PASS);
	validate_add(&rep, "kvm", VALIDATE_PASS, "usable");
	validate_add(&rep, "clock", VALIDATE_WARN, "not synchronised: %s",
	    "install chrony");
	assert_int_equal(validate_verdict(&rep), VALIDATE_WARN);
	validate_add(&rep, "storage-network", VALIDATE_FAIL, "shared");
	assert_int_equal(validate_verdict(&rep), VALIDATE_FAIL);
	assert_string_equal(rep.checks[1].detail,
	    "not synchronised: install chrony");
	assert_string_equal(validate_result_name(VALIDATE_WARN), "warn");
	while (rep.n < VALIDATE_MAX_CHECKS)
		validate_add(&rep, "x", VALIDATE_PASS, "ok");
	validate_add(&rep, "y", VALIDATE_PASS, "ok");
	assert_int_equal(rep.n, VALIDATE_MAX_CHECKS);
	assert_string_equal(rep.checks[VALIDATE_MAX_CHECKS - 1].name,
	    "validate");
}

#define IP(a, b, c, d)	((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

static void
test_subnets(void **state)
{
	struct validate_net	mgmt = { IP(10, 77, 1, 11), 24 };
	struct validate_net	stor = { IP(10, 77, 2, 11), 24 };
	struct validate_net	wide = { IP(10, 77, 0, 1), 16 };
	struct validate_net	host = { IP(10, 77, 1, 50), 32 };
	char			buf[32];

	(void)state;
	assert_false(validate_nets_overlap(&mgmt, &stor));
	assert_true(validate_nets_overlap(&mgmt, &wide));
	assert_true(validate_nets_overlap(&wide, &stor));
	assert_true(validate_nets_overlap(&host, &mgmt));
	assert_true(validate_net_contains(&mgmt, IP(10, 77, 1, 200)));
	assert_false(validate_net_contains(&mgmt, IP(10, 77, 2, 200)));
	validate_net_format(&mgmt, buf, sizeof buf);
	assert_string_equal(buf, "10.77.1.11/24");
}

static const char route_none[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask"
    "\t\tMTU\tWindow\tIRTT\n"
    "mgmt0\t00014D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "stor0\t00024D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
static const char route_default[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask"
    "\t\tMTU\tWindow\tIRTT\n"
    "stor0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "stor0\t00024D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0";

static void
test_routes(void **state)
{
	(void)state;
	assert_int_equal(validate_route_default(route_none, "stor0"), 0);
	assert_int_equal(validate_route_default(route_default, "stor0"), 1);
	assert_int_equal(validate_route_default(route_default, "mgmt0"), 0);
	assert_int_equal(validate_route_default("Iface\n", "stor0"), 0);
	assert_int_equal(validate_route_default("Iface\nstor0 junk\n",
	    "stor0"), -1);
	assert_int_equal(validate_route6_default(
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 00 "
	    "fe800000000000000000000000000001 00000400 00000001 00000000 "
	    "00000003    stor0\n"
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 ffffffff 00000001 00000000 "
	    "00200200       lo\n", "stor0"), 1);
	assert_int_equal(validate_route6_default(
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 ffffffff 00000001 00000000 "
	    "00200200       lo\n", "lo"), 0);
	assert_int_equal(validate_route6_default(
	    "fe800000000000000000000000000000 40 "
	    "00000000000000000000000000000000 00 "
	    "00000000000000000000000000000000 00000100 00000001 00000000 "
	    "00000001    stor0\n", "stor0"), 0);
}

/*
 * A LUN as tgt keeps it: a list of (session, key) registrations that
 * survive their session, and a reservation. mode picks a broken target.
 */
enum lun_mode {
	LUN_TGT,
	LUN_NO_PR,		/* PR OUT and IN: ILLEGAL REQUEST */
	LUN_FORGETS,		/* GOOD, but keeps no registration */
	LUN_NO_PREEMPT,		/* PREEMPT answers GOOD and removes nothing */
};
struct lun {
	enum lun_mode	 mode;
	size_t		 n;
	struct {
		int		 session;
		uint64_t	 key;
	}		 regs[16];
	int		 reserved;
	uint64_t	 holder;
	int		 calls;
};
struct session {
	struct lun	*lun;
	int		 id;
};

static int
lun_read(void *arg, struct pr_status *s)
{
	struct session	*ss = arg;
	struct lun	*l = ss->lun;
	size_t		 i;

	l->calls++;
	memset(s, 0, sizeof *s);
	if (l->mode == LUN_NO_PR)
		return STORAGE_E_SCSI;
	for (i = 0; i < l->n; i++)
		s->keys[s->nkeys++] = l->regs[i].key;
	s->reserved = l->reserved;
	s->holder = l->holder;
	s->type = l->reserved ? 5 : 0;
	return 0;
}

static int
lun_register(void *arg, uint64_t old_key, uint64_t new_key, int ignore)
{
	struct session	*ss = arg;
	struct lun	*l = ss->lun;
	size_t		 i;

	l->calls++;
	if (l->mode == LUN_NO_PR)
		return STORAGE_E_SCSI;
	if (l->mode == LUN_FORGETS)
		return 0;
	for (i = 0; i < l->n; i++) {
		if (l->regs[i].session != ss->id)
			continue;
		if (!ignore && l->regs[i].key != old_key)
			return STORAGE_E_RESERVATION;
		if (new_key == 0) {
			l->regs[i] = l->regs[--l->n];
			return 0;
		}
		l->regs[i].key = new_key;
		return 0;
	}
	if (!ignore && old_key != 0)
		return STORAGE_E_RESERVATION;
	if (new_key != 0) {
		l->regs[l->n].session = ss->id;
		l->regs[l->n++].key = new_key;
	}
	return 0;
}

static int
lun_preempt(void *arg, uint64_t key, uint64_t victim, int type)
{
	struct session	*ss = arg;
	struct lun	*l = ss->lun;
	size_t		 i, found = 0, mine = 0;

	(void)type;
	l->calls++;
	if (l->mode == LUN_NO_PR)
		return STORAGE_E_SCSI;
	for (i = 0; i < l->n; i++)
		if (l->regs[i].session == ss->id && l->regs[i].key == key)
			mine = 1;
	if (!mine)
		return STORAGE_E_RESERVATION;
	if (l->mode == LUN_NO_PREEMPT)
		return 0;
	for (i = 0; i < l->n; ) {
		if (l->regs[i].key == victim) {
			l->regs[i] = l->regs[--l->n];
			found = 1;
		} else
			i++;
	}
	if (l->reserved && l->holder == victim)
		l->holder = key;
	return found ? 0 : STORAGE_E_RESERVATION;
}

static const char *
lun_strerror(int error)
{
	return error == STORAGE_E_SCSI ? "ILLEGAL REQUEST" : "CONFLICT";
}

static const struct validate_pr_ops lun_ops = {
	lun_read, lun_register, lun_preempt, lun_strerror,
};

/* A LUN a node of the cluster holds, with two nodes registered. */
static void
lun_in_use(struct lun *l, enum lun_mode mode)
{
	memset(l, 0, sizeof *l);
	l->mode = mode;
	l->regs[0].session = 100;
	l->regs[0].key = 0x1234567800000001ULL;
	l->regs[1].session = 200;
	l->regs[1].key = 0x9abcdef000000002ULL;
	l->n = 2;
	l->reserved = 1;
	l->holder = 0x1234567800000001ULL;
}

static void
test_pr_tgt(void **state)
{
	struct lun	l;
	struct session	a = { &l, 1 }, b = { &l, 2 };
	char		detail[512];

	(void)state;
	lun_in_use(&l, LUN_TGT);
	assert_int_equal(validate_pr(&lun_ops, &a, &b, detail,
	    sizeof detail), VALIDATE_PASS);
	/* The nodes' keys and the reservation, as they were. */
	assert_int_equal(l.n, 2);
	assert_true(l.regs[0].key == 0x1234567800000001ULL ||
	    l.regs[1].key == 0x1234567800000001ULL);
	assert_true(l.regs[0].key == 0x9abcdef000000002ULL ||
	    l.regs[1].key == 0x9abcdef000000002ULL);
	assert_int_equal(l.reserved, 1);
	assert_true(l.holder == 0x1234567800000001ULL);
	assert_non_null(strstr(detail, "work"));
}

/* An interrupted earlier run left both scratch keys on dead sessions. */
static void
test_pr_leftovers(void **state)
{
	struct lun	l;
	struct session	a = { &l, 3 }, b = { &l, 4 };
	char		detail[512];

	(void)state;
	lun_in_use(&l, LUN_TGT);
	l.regs[2].session = 50;
	l.regs[2].key = VALIDATE_KEY_A;
	l.regs[3].session = 51;
	l.regs[3].key = VALIDATE_KEY_B;
	l.n = 4;
	assert_int_equal(validate_pr(&lun_ops, &a, &b, detail,
	    sizeof detail), VALIDATE_PASS);
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(detail, "earlier run"));
}

static void
test_pr_unsupported(void **state)
{
	struct lun	l;
	struct session	a = { &l, 1 }, b = { &l, 2 };
	char		detail[512];

	(void)state;
	lun_in_use(&l, LUN_NO_PR);
	l.n = 0;
	l.reserved = 0;
	assert_int_equal(validate_pr(&lun_ops, &a, &b, detail,
	    sizeof detail), VALIDATE_FAIL);
	assert_non_null(strstr(detail, "READ KEYS failed: ILLEGAL REQUEST"));
	assert_non_null(strstr(detail, "persistent reservations"));

	lun_in_use(&l, LUN_FORGETS);
	assert_int_equal(validate_pr(&lun_ops, &a, &b, detail,
	    sizeof detail), VALIDATE_FAIL);
	assert_non_null(strstr(detail, "does not list it"));
	assert_int_equal(l.n, 2);

	lun_in_use(&l, LUN_NO_PREEMPT);
	assert_int_equal(validate_pr(&lun_ops, &a, &b, detail,
	    sizeof detail), VALIDATE_FAIL);
	assert_non_null(strstr(detail, "still registered"));
	/* It cleaned up after itself: only the nodes' keys are left. */
	assert_int_equal(l.n, 2);
	assert_true(l.holder == 0x1234567800000001ULL);
}

/* A host of the node list, its QEMU offering types (NULL-terminated). */
static Haven__Host *
machine_host(Haven__Host *h, Haven__HostConfig *hc, const char *name,
    const char *version, char **types)
{
	size_t	n = 0;

	haven__host__init(h);
	haven__host_config__init(hc);
	hc->name = (char *)name;
	hc->qemu_version = (char *)version;
	while (types != NULL && types[n] != NULL)
		n++;
	hc->machine_types = types;
	hc->n_machine_types = n;
	h->config = hc;
	return h;
}

static void
test_machine_types(void **state)
{
	static struct validate_report	rep;
	static char	*old[] = { "pc-i440fx-7.2", "pc-q35-7.2", NULL };
	static char	*newer[] = { "pc-i440fx-7.2", "pc-q35-7.2",
			    "pc-i440fx-8.0", "pc-q35-8.0", "pc-i440fx-8.1",
			    "pc-q35-8.1", NULL };
	static char	*short_names[] = { "pc", "pc-i440fx-7.2", "pc-q35-7.2",
			    "pc-i440fx-8.0", "pc-q35-8.0", "pc-i440fx-8.1",
			    "pc-q35-8.1", NULL };
	Haven__Host	 h[3], *hosts[3];
	Haven__HostConfig hc[3];

	(void)state;
	/* The same everywhere: one pass. */
	memset(&rep, 0, sizeof rep);
	hosts[0] = machine_host(&h[0], &hc[0], "h1", "7.2.22", old);
	hosts[1] = machine_host(&h[1], &hc[1], "h2", "7.2.22", old);
	hosts[2] = machine_host(&h[2], &hc[2], "h3", "7.2.22", old);
	validate_machine_types(&rep, hosts, 3);
	assert_int_equal(rep.n, 1);
	assert_int_equal(rep.checks[0].result, VALIDATE_PASS);
	assert_string_equal(rep.checks[0].detail, "3 hosts offer the same 2 "
	    "machine types (QEMU 7.2.22)");

	/* h3 newer: h1 and h2 lack four of its types (three named). */
	memset(&rep, 0, sizeof rep);
	hosts[2] = machine_host(&h[2], &hc[2], "h3", "8.1.0", newer);
	validate_machine_types(&rep, hosts, 3);
	assert_int_equal(rep.n, 2);
	assert_int_equal(validate_verdict(&rep), VALIDATE_FAIL);
	assert_string_equal(rep.checks[0].detail, "h1's QEMU 7.2.22 lacks 4 "
	    "machine types other hosts offer (pc-i440fx-8.0, pc-q35-8.0, "
	    "pc-i440fx-8.1, ...): VMs pinned to them cannot run there; "
	    "install the same QEMU version on every host");
	assert_non_null(strstr(rep.checks[1].detail, "h2's QEMU 7.2.22"));

	/* Two newer hosts: h1 lacks each of their four types once, and a
	 * type whose name holds another's ("pc" in "pc-i440fx-7.2") counts. */
	memset(&rep, 0, sizeof rep);
	hosts[1] = machine_host(&h[1], &hc[1], "h2", "8.1.0", newer);
	hosts[2] = machine_host(&h[2], &hc[2], "h3", "8.1.0", newer);
	validate_machine_types(&rep, hosts, 3);
	assert_int_equal(rep.n, 1);
	assert_non_null(strstr(rep.checks[0].detail, "h1's QEMU 7.2.22 lacks "
	    "4 machine types"));
	memset(&rep, 0, sizeof rep);
	hosts[0] = machine_host(&h[0], &hc[0], "h1", "8.1.0", newer);
	hosts[1] = machine_host(&h[1], &hc[1], "h2", "8.1.0", short_names);
	hosts[2] = machine_host(&h[2], &hc[2], "h3", "8.1.0", newer);
	validate_machine_types(&rep, hosts, 3);
	assert_int_equal(rep.n, 2);
	assert_string_equal(rep.checks[0].detail, "h1's QEMU 8.1.0 lacks 1 "
	    "machine type other hosts offer (pc): VMs pinned to it cannot "
	    "run there; install the same QEMU version on every host");
	hosts[0] = machine_host(&h[0], &hc[0], "h1", "7.2.22", old);
	hosts[1] = machine_host(&h[1], &hc[1], "h2", "7.2.22", old);

	/* A host that published nothing is named, not compared. */
	memset(&rep, 0, sizeof rep);
	hosts[2] = machine_host(&h[2], &hc[2], "h3", "", NULL);
	validate_machine_types(&rep, hosts, 3);
	assert_int_equal(rep.n, 2);
	assert_int_equal(rep.checks[0].result, VALIDATE_WARN);
	assert_non_null(strstr(rep.checks[0].detail, "h3 has not published"));
	assert_int_equal(rep.checks[1].result, VALIDATE_PASS);
	assert_string_equal(rep.checks[1].detail, "2 hosts offer the same 2 "
	    "machine types (QEMU 7.2.22)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_subnets),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_pr_tgt),
		cmocka_unit_test(test_pr_leftovers),
		cmocka_unit_test(test_pr_unsupported),
		cmocka_unit_test(test_machine_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
