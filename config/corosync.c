/*
 * The corosync.conf Haven writes (corosync.h has the timing argument): one
 * knet link per management network (one or two), encrypted with the
 * cluster's authkey, votequorum with two_node for two hosts or a qdevice
 * witness (ffsplit) when one is given; and the same file read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
		if ((c->nodes[i].addr2 == NULL) != (c->nodes[0].addr2 ==
		    NULL) || (c->nodes[i].addr2 != NULL && (inet_pton(AF_INET,
		    c->nodes[i].addr2, &a) != 1 || strcmp(c->nodes[i].addr2,
		    c->nodes[i].addr) == 0))) {
			snprintf(err, errlen, "node %zu: every node needs the "
			    "same number of links (1 or 2), each a distinct "
			    "IPv4 address", i + 1);
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
	    "\t\tknet_pong_count: %u\n\t}\n",
	    c->cluster, t.token_ms, t.token_coefficient_ms, t.consensus_ms,
	    t.knet_ping_interval_ms, t.knet_ping_timeout_ms,
	    t.knet_pong_count);
	if (c->nodes[0].addr2 != NULL)
		fprintf(f, "\tinterface {\n\t\tlinknumber: 1\n"
		    "\t\tknet_ping_interval: %u\n\t\tknet_ping_timeout: %u\n"
		    "\t\tknet_pong_count: %u\n\t}\n", t.knet_ping_interval_ms,
		    t.knet_ping_timeout_ms, t.knet_pong_count);
	fprintf(f, "}\n\nnodelist {\n");
	for (i = 0; i < c->nnodes; i++) {
		fprintf(f, "\tnode {\n\t\tring0_addr: %s\n",
		    c->nodes[i].addr);
		if (c->nodes[i].addr2 != NULL)
			fprintf(f, "\t\tring1_addr: %s\n", c->nodes[i].addr2);
		fprintf(f, "\t\tnodeid: %u\n\t\tname: %s\n\t}\n",
		    c->nodes[i].id, c->nodes[i].name);
	}
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

/* "key: value" of one line into value (trimmed); 0 if the line is another. */
static int
conf_value(const char *line, const char *key, char *value, size_t len)
{
	size_t	 n = strlen(key), m;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, key, n) != 0 || line[n] != ':')
		return 0;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	m = strcspn(line, " \t\r\n");
	if (m >= len)
		m = len - 1;
	memcpy(value, line, m);
	value[m] = '\0';
	return 1;
}

int
corosync_conf_parse(const char *text, struct corosync_parsed *p, char *err,
    size_t errlen)
{
	const char		*line, *next;
	char			 buf[512], v[256], *end;
	struct corosync_node	*node = NULL;
	size_t			 n = 0, len;
	unsigned long		 u;
	int			 in_nodelist = 0;

	memset(p, 0, sizeof *p);
	p->conf.token_ms = COROSYNC_TOKEN_MS;
	for (line = text; *line != '\0'; line = next) {
		next = line + strcspn(line, "\n");
		len = (size_t)(next - line);
		if (*next == '\n')
			next++;
		if (len >= sizeof buf)
			return conf_fail(err, errlen, "a line is too long");
		memcpy(buf, line, len);
		buf[len] = '\0';
		if (strstr(buf, "nodelist {") != NULL) {
			in_nodelist = 1;
			continue;
		}
		if (in_nodelist && strstr(buf, "node {") != NULL) {
			if (n == COROSYNC_MAX_NODES)
				return conf_fail(err, errlen, "more than 64 "
				    "nodes");
			node = &p->nodes[n++];
			continue;
		}
		if (strchr(buf, '}') != NULL) {
			if (node != NULL)
				node = NULL;
			else
				in_nodelist = 0;
			continue;
		}
		if (node != NULL) {
			size_t	 k = (size_t)(node - p->nodes);

			if (conf_value(buf, "ring0_addr", p->addr[k][0],
			    sizeof p->addr[k][0]))
				node->addr = p->addr[k][0];
			else if (conf_value(buf, "ring1_addr", p->addr[k][1],
			    sizeof p->addr[k][1]))
				node->addr2 = p->addr[k][1];
			else if (conf_value(buf, "name", p->name[k],
			    sizeof p->name[k]))
				node->name = p->name[k];
			else if (conf_value(buf, "nodeid", v, sizeof v)) {
				u = strtoul(v, &end, 10);
				if (*end != '\0' || u == 0 || u > UINT32_MAX)
					return conf_fail(err, errlen, "a bad "
					    "nodeid");
				node->id = (unsigned)u;
			}
		} else if (conf_value(buf, "cluster_name", p->cluster,
		    sizeof p->cluster)) {
			p->conf.cluster = p->cluster;
		} else if (conf_value(buf, "token", v, sizeof v)) {
			u = strtoul(v, &end, 10);
			if (*end != '\0' || u > 120000)
				return conf_fail(err, errlen, "a bad token");
			p->conf.token_ms = (unsigned)u;
		} else if (conf_value(buf, "host", p->qdevice_host,
		    sizeof p->qdevice_host)) {
			p->conf.qdevice_host = p->qdevice_host;
		} else if (conf_value(buf, "port", v, sizeof v)) {
			p->conf.qdevice_port = (unsigned)strtoul(v, NULL, 10);
		} else if (conf_value(buf, "tls", v, sizeof v)) {
			p->conf.qdevice_tls = strcmp(v, "off") != 0;
		} else if (conf_value(buf, "logfile", p->logfile,
		    sizeof p->logfile)) {
			p->conf.logfile = p->logfile;
		}
	}
	p->conf.nodes = p->nodes;
	p->conf.nnodes = n;
	return conf_check(&p->conf, err, errlen);
}
