/*
 * The corosync.conf Haven writes (corosync.h has the timing argument): one
 * knet link on the management network, encrypted with the cluster's
 * authkey, votequorum with two_node for two hosts or a qdevice witness
 * (ffsplit) when one is given.
 */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "common.h"
#include "config.h"
#include "parse.h"
#include "corosync.h"

void
corosync_timing(unsigned token_ms, struct corosync_timing *t)
{
	t->token_ms = token_ms;
	t->token_coefficient_ms = COROSYNC_TOKEN_COEFFICIENT_MS;
	t->consensus_ms = (unsigned)((unsigned long long)token_ms *
	    COROSYNC_CONSENSUS_PERMILLE / 1000);
	t->knet_ping_interval_ms = token_ms / 4;
	t->knet_ping_timeout_ms = token_ms / 2;
	t->knet_pong_count = COROSYNC_KNET_PONG_COUNT;
}

static int
conf_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

/* A name corosync.conf can hold as it is, and a host or cluster may have. */
static int
conf_name_ok(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) < 64 &&
	    config_only_chars(s, "._-");
}

static int
conf_check(const struct corosync_conf *c, char *err, size_t errlen)
{
	struct in_addr	 a;
	size_t		 i, j;

	if (!conf_name_ok(c->cluster))
		return conf_fail(err, errlen, "the cluster name must be 1 to 63 "
		    "letters, digits, '.', '_' or '-'");
	if (c->token_ms < 100 || c->token_ms > 120000)
		return conf_fail(err, errlen, "the token must be 100 to 120000 "
		    "ms");
	if (c->nnodes == 0 || c->nnodes > COROSYNC_MAX_NODES)
		return conf_fail(err, errlen, "give 1 to 64 nodes");
	for (i = 0; i < c->nnodes; i++) {
		if (c->nodes[i].id == 0 || !conf_name_ok(c->nodes[i].name) ||
		    c->nodes[i].addr == NULL ||
		    inet_pton(AF_INET, c->nodes[i].addr, &a) != 1) {
			snprintf(err, errlen, "node %zu: an id > 0, a name and "
			    "an IPv4 address are needed", i + 1);
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (c->nodes[j].id == c->nodes[i].id ||
			    strcmp(c->nodes[j].name, c->nodes[i].name) == 0 ||
			    strcmp(c->nodes[j].addr, c->nodes[i].addr) == 0) {
				snprintf(err, errlen, "nodes %zu and %zu share "
				    "an id, a name or an address", j + 1,
				    i + 1);
				return -1;
			}
		}
	}
	if (c->qdevice_host != NULL && inet_pton(AF_INET, c->qdevice_host,
	    &a) != 1)
		return conf_fail(err, errlen, "the witness must be an IPv4 "
		    "address");
	if (c->logfile != NULL && (*c->logfile != '/' ||
	    strpbrk(c->logfile, " \t\n{}") != NULL))
		return conf_fail(err, errlen, "the log file must be an absolute "
		    "path without blanks or braces");
	return 0;
}

int
corosync_conf_write(FILE *f, const struct corosync_conf *c, char *err,
    size_t errlen)
{
	struct corosync_timing	 t;
	size_t			 i;

	if (conf_check(c, err, errlen) == -1)
		return -1;
	corosync_timing(c->token_ms, &t);
	fprintf(f, "# written by Haven (havenctl cluster corosync-conf); the "
	    "timing: config/corosync.h\n"
	    "totem {\n\tversion: 2\n\tcluster_name: %s\n"
	    "\ttransport: knet\n\tip_version: ipv4\n"
	    "\ttoken: %u\n\ttoken_coefficient: %u\n\tconsensus: %u\n"
	    "\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n"
	    "\tkeyfile: /etc/corosync/authkey\n"
	    "\tinterface {\n\t\tlinknumber: 0\n"
	    "\t\tknet_ping_interval: %u\n\t\tknet_ping_timeout: %u\n"
	    "\t\tknet_pong_count: %u\n\t}\n}\n\nnodelist {\n",
	    c->cluster, t.token_ms, t.token_coefficient_ms, t.consensus_ms,
	    t.knet_ping_interval_ms, t.knet_ping_timeout_ms,
	    t.knet_pong_count);
	for (i = 0; i < c->nnodes; i++)
		fprintf(f, "\tnode {\n\t\tring0_addr: %s\n\t\tnodeid: %u\n"
		    "\t\tname: %s\n\t}\n", c->nodes[i].addr, c->nodes[i].id,
		    c->nodes[i].name);
	fprintf(f, "}\n\nquorum {\n\tprovider: corosync_votequorum\n");
	if (c->qdevice_host != NULL)
		/* One more vote, given by qnetd to exactly one side of an even
		 * split; two_node does not go with it. */
		fprintf(f, "\tdevice {\n\t\tmodel: net\n\t\tvotes: 1\n"
		    "\t\tnet {\n\t\t\thost: %s\n\t\t\tport: %u\n"
		    "\t\t\talgorithm: ffsplit\n\t\t\ttls: %s\n\t\t}\n\t}\n",
		    c->qdevice_host, c->qdevice_port ? c->qdevice_port :
		    COROSYNC_QDEVICE_PORT, c->qdevice_tls ? "on" : "off");
	else if (c->nnodes == 2)
		fprintf(f, "\ttwo_node: 1\n");
	fprintf(f, "}\n\nlogging {\n");
	if (c->logfile != NULL)
		fprintf(f, "\tto_logfile: yes\n\tlogfile: %s\n"
		    "\tto_syslog: no\n", c->logfile);
	else
		fprintf(f, "\tto_syslog: yes\n");
	fprintf(f, "\tto_stderr: no\n\ttimestamp: hires\n}\n\n"
	    "system {\n\tstate_dir: /var/lib/corosync\n}\n");
	return ferror(f) ? conf_fail(err, errlen, "write error") : 0;
}
