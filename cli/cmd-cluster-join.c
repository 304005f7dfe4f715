/*
 * havenctl cluster join --token TOKEN --link ADDR[,ADDR2]: this host into
 * the cluster of the member that printed TOKEN. Fetches the cluster over
 * the join service's TLS session keyed by the token (join.c): the
 * corosync.conf every member now runs with this host in it, the authkey,
 * the pool's CHAP file; writes them and haven.conf, starts the services.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "corosync.h"

static int
cmd_cluster_join_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_cluster_join_entry;
	struct corosync_parsed	*p = NULL;
	struct join_token	 t;
	struct join_msg		 reply;
	const char		*links, *name, *a1, *a2, *tok;
	char			 addrs[2][46], host[64], err[256], *check;
	char			 line[JOIN_TOKEN_MAX + 2];
	int			 rc = CLI_EXIT_FAILURE;

	memset(&reply, 0, sizeof reply);
	tok = args_get(args, "token");
	links = args_get(args, "link");
	/* "-": the token from stdin, out of the process list. */
	if (tok != NULL && strcmp(tok, "-") == 0) {
		if (fgets(line, sizeof line, stdin) == NULL)
			line[0] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		tok = line;
	}
	if (tok == NULL || links == NULL) {
		cli_usage_error(cli, cmd, "--token and --link are required");
		return CLI_EXIT_USAGE;
	}
	if (join_token_parse(tok, &t) == -1) {
		cli_usage_error(cli, cmd, "--token is not a join token "
		    "(haven1:ADDR:PORT:ID:SECRET, as cluster init or cluster "
		    "token print it)");
		return CLI_EXIT_USAGE;
	}
	if (join_parse_links(links, addrs, &a1, &a2) == -1) {
		cli_usage_error(cli, cmd, "bad --link '%s': ADDR[,ADDR2], this "
		    "host's IPv4 address on each management network", links);
		return CLI_EXIT_USAGE;
	}
	if ((name = init_node_name(args_get(args, "node-name"), host,
	    sizeof host)) == NULL)
		return CLI_EXIT_FAILURE;
	if (init_check_fresh(cli) == -1)
		return CLI_EXIT_FAILURE;
	/* The host's haven.conf is checked before the cluster changes. */
	if ((check = init_haven_conf(cli, name, "check", COROSYNC_TOKEN_MS,
	    args_get(args, "host-conf"))) == NULL)
		return CLI_EXIT_FAILURE;
	free(check);
	check = NULL;
	if (join_fetch(cli, &t, name, links, &reply) == -1)
		goto out;
	p = xcalloc(1, sizeof *p);
	check = xstrdup(reply.value[JOIN_COROSYNC_CONF]);
	if (corosync_conf_parse(check, p, err, sizeof err) == -1) {
		cli_error(cli, "the member sent a corosync.conf Haven cannot "
		    "read: %s", err);
		goto out;
	}
	mkdir(join_path("/etc/corosync"), 0755);
	mkdir(join_path("/etc/haven"), 0755);
	if (join_write_file(COROSYNC_AUTHKEY, reply.value[JOIN_AUTHKEY],
	    reply.len[JOIN_AUTHKEY], 0400) == -1 ||
	    join_write_file(COROSYNC_CONF, reply.value[JOIN_COROSYNC_CONF],
	    reply.len[JOIN_COROSYNC_CONF], 0644) == -1) {
		cli_error(cli, "cannot write corosync's files: %s",
		    strerror(errno));
		goto out;
	}
	if (reply.value[JOIN_CHAP] != NULL &&
	    access(join_path(HAVEN_CHAP), F_OK) == -1 &&
	    join_write_file(HAVEN_CHAP, reply.value[JOIN_CHAP],
	    reply.len[JOIN_CHAP], 0600) == -1) {
		cli_error(cli, "cannot write %s: %s", HAVEN_CHAP,
		    strerror(errno));
		goto out;
	}
	if (join_install(cli, name, p->conf.cluster, p->conf.token_ms,
	    args_get(args, "host-conf"), args_has(args, "no-start")) == -1)
		goto out;
	if (!cli->quiet)
		fprintf(stderr, "joined cluster %s as node %s (%s), %zu hosts"
		    "%s\n", p->conf.cluster, reply.value[JOIN_NODE_ID], name,
		    p->conf.nnodes, args_has(args, "no-start") ? "; start "
		    "corosync and havend" : "");
	rc = CLI_EXIT_OK;
out:
	explicit_bzero(&t, sizeof t);
	explicit_bzero(line, sizeof line);
	join_msg_clear(&reply);
	free(check);
	free(p);
	return rc;
}

const struct cmd_entry cmd_cluster_join_entry = {
	.name = "cluster join",
	.args = {
		.options = (const struct args_option[]) {
			{ "token", 0, ARGS_VALUE },
			{ "link", 0, ARGS_VALUE },
			{ "node-name", 0, ARGS_VALUE },
			{ "host-conf", 0, ARGS_VALUE },
			{ "no-start", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 0,
	},
	.usage = "--token TOKEN|- --link ADDR[,ADDR2] [--node-name NAME]\n"
	    "         [--host-conf FILE] [--no-start]",
	.summary = "join this host to a cluster with a token a member printed",
	.exec = cmd_cluster_join_exec,
};
