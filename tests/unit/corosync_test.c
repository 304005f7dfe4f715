/*
 * Unit tests of config/corosync.c: the corosync.conf Haven writes has a
 * token that does not grow with the hosts (token_coefficient 0, consensus
 * 1.2 T, corosync's knet defaults for T written out), two_node for two
 * hosts and a witness instead of it when one is given; a bad node list is
 * refused before anything is written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "corosync.h"

static const struct corosync_node three[] = {
	{ 1, "h1", "10.0.0.11", NULL }, { 2, "h2", "10.0.0.12", NULL },
	{ 3, "h3", "10.0.0.13", NULL },
};

/* The text conf writes, in a static buffer; NULL and err when refused. */
static char *
write_conf(const struct corosync_conf *c, char *err, size_t errlen)
{
	static char	 buf[8192];
	FILE		*f;
	int		 r;

	memset(buf, 0, sizeof buf);
	assert_non_null(f = fmemopen(buf, sizeof buf, "w"));
	r = corosync_conf_write(f, c, err, errlen);
	fclose(f);
	if (r == -1) {
		assert_int_equal(strlen(buf), 0);	/* nothing written */
		return NULL;
	}
	return buf;
}

static void
test_timing(void **state)
{
	struct corosync_timing	 t;

	corosync_timing(1500, &t);
	assert_int_equal(t.token_ms, 1500);
	assert_int_equal(t.token_coefficient_ms, 0);
	assert_int_equal(t.consensus_ms, 1800);
	assert_int_equal(t.knet_ping_interval_ms, 375);
	assert_int_equal(t.knet_ping_timeout_ms, 750);
	assert_int_equal(t.knet_pong_count, 2);
}

static void
test_three_hosts(void **state)
{
	struct corosync_conf	 c = { .cluster = "haven", .token_ms = 1500,
				    .nodes = three, .nnodes = 3 };
	char			 err[256], *s;

	assert_non_null(s = write_conf(&c, err, sizeof err));
	assert_non_null(strstr(s, "\ttoken: 1500\n\ttoken_coefficient: 0\n"
	    "\tconsensus: 1800\n"));
	assert_non_null(strstr(s, "\t\tring0_addr: 10.0.0.13\n\t\tnodeid: 3\n"
	    "\t\tname: h3\n"));
	assert_null(strstr(s, "two_node"));
	assert_null(strstr(s, "device {"));
	assert_non_null(strstr(s, "to_syslog: yes"));
}

static void
test_two_hosts_and_witness(void **state)
{
	struct corosync_conf	 c = { .cluster = "haven", .token_ms = 1000,
				    .nodes = three, .nnodes = 2 };
	char			 err[256], *s;

	assert_non_null(s = write_conf(&c, err, sizeof err));
	assert_non_null(strstr(s, "two_node: 1"));
	c.qdevice_host = "10.0.0.200";
	c.qdevice_tls = 1;
	assert_non_null(s = write_conf(&c, err, sizeof err));
	assert_null(strstr(s, "two_node"));
	assert_non_null(strstr(s, "host: 10.0.0.200\n\t\t\tport: 5403\n"
	    "\t\t\talgorithm: ffsplit\n\t\t\ttls: on\n"));
}

static void
test_refused(void **state)
{
	struct corosync_node	 dup[] = { { 1, "h1", "10.0.0.11", NULL },
				    { 2, "h1", "10.0.0.12", NULL } };
	struct corosync_node	 bad[] = { { 1, "h1", "10.0.0", NULL } };
	struct corosync_node	 evil[] = { { 1, "h1}\nx {", "10.0.0.1",
				    NULL } };
	struct corosync_conf	 c = { .cluster = "haven", .token_ms = 1500,
				    .nodes = dup, .nnodes = 2 };
	char			 err[256];

	assert_null(write_conf(&c, err, sizeof err));
	assert_non_null(strstr(err, "share"));
	c.nodes = bad;
	c.nnodes = 1;
	assert_null(write_conf(&c, err, sizeof err));
	assert_non_null(strstr(err, "IPv4"));
	c.nodes = evil;
	assert_null(write_conf(&c, err, sizeof err));
	c.nodes = three;
	c.nnodes = 3;
	c.cluster = "a b";
	assert_null(write_conf(&c, err, sizeof err));
	c.cluster = "haven";
	c.token_ms = 50;
	assert_null(write_conf(&c, err, sizeof err));
	c.token_ms = 1500;
	c.logfile = "relative.log";
	assert_null(write_conf(&c, err, sizeof err));
}

/* Two links, written and read back (cluster join and node remove edit the
 * nodelist of the file every member runs), and one link more or less on
 * one node refused. */
static void
test_two_links_parsed(void **state)
{
	struct corosync_node	 two[] = {
		{ 1, "h1", "10.0.0.11", "10.1.0.11" },
		{ 7, "h2", "10.0.0.12", "10.1.0.12" } };
	struct corosync_conf	 c = { .cluster = "haven", .token_ms = 2000,
				    .nodes = two, .nnodes = 2,
				    .logfile = "/var/log/corosync.log" };
	struct corosync_parsed	*p = malloc(sizeof *p);
	char			 err[256], *text, copy[8192];

	(void)state;
	assert_non_null(text = write_conf(&c, err, sizeof err));
	assert_non_null(strstr(text, "linknumber: 1"));
	assert_non_null(strstr(text, "ring1_addr: 10.1.0.12"));
	snprintf(copy, sizeof copy, "%s", text);
	assert_int_equal(corosync_conf_parse(copy, p, err, sizeof err), 0);
	assert_string_equal(p->conf.cluster, "haven");
	assert_int_equal(p->conf.token_ms, 2000);
	assert_int_equal(p->conf.nnodes, 2);
	assert_int_equal(p->nodes[1].id, 7);
	assert_string_equal(p->nodes[1].name, "h2");
	assert_string_equal(p->nodes[1].addr2, "10.1.0.12");
	assert_string_equal(p->conf.logfile, "/var/log/corosync.log");
	/* the same text again */
	assert_string_equal(write_conf(&p->conf, err, sizeof err), copy);
	two[1].addr2 = NULL;
	assert_null(write_conf(&c, err, sizeof err));
	assert_non_null(strstr(err, "links"));
	assert_int_equal(corosync_conf_parse("nodelist {\n\tnode {\n"
	    "\t\tnodeid: 0\n\t}\n}\n", p, err, sizeof err), -1);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timing),
		cmocka_unit_test(test_three_hosts),
		cmocka_unit_test(test_two_hosts_and_witness),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_two_links_parsed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
