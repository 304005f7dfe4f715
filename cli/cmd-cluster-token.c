/*
 * havenctl cluster token: a new one-time join token on this member, and
 * its join service started if it does not run (join.c). The service
 * listens on this host's first link, as corosync.conf names it for the
 * [node] name of haven.conf, unless --listen says where.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "corosync.h"

/* This host's ring0 address in corosync.conf, for haven.conf's name. */
static int
token_own_addr(struct cli *cli, char *addr, size_t len)
{
	struct config_error	 errs[4];
	struct corosync_parsed	*p = xcalloc(1, sizeof *p);
	struct config		*c = xcalloc(1, sizeof *c);
	char			*text = NULL, err[256];
	size_t			 nerrs, i;
	int			 rc = -1;

	if (config_parse_file(join_path(HAVEN_CONF), c, errs, 4, &nerrs) ==
	    -1) {
		cli_error(cli, "cannot read %s: this host's name is in it "
		    "(or give --listen ADDR)", HAVEN_CONF);
		goto out;
	}
	if (join_read_file(COROSYNC_CONF, &text, NULL) == -1 ||
	    corosync_conf_parse(text, p, err, sizeof err) == -1) {
		cli_error(cli, "cannot read this member's %s (or give --listen "
		    "ADDR)", COROSYNC_CONF);
		goto out;
	}
	for (i = 0; i < p->conf.nnodes; i++) {
		if (strcmp(p->nodes[i].name, c->node_name) == 0) {
			snprintf(addr, len, "%s", p->nodes[i].addr);
			rc = 0;
		}
	}
	if (rc == -1)
		cli_error(cli, "%s has no node named %s, this host's name",
		    COROSYNC_CONF, c->node_name);
out:
	config_wipe(c);
	free(c);
	free(p);
	free(text);
	return rc;
}

static int
cmd_cluster_token_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_cluster_token_entry;
	struct join_token	 t;
	char			 addr[46], token[JOIN_TOKEN_MAX + 1];
	char			 buf[2][46];
	const char		*arg, *a1, *a2;
	uint64_t		 v;
	uint16_t		 port = JOIN_PORT;

	if ((arg = args_get(args, "join-port")) != NULL) {
		if (cli_parse_uint(arg, 1, 65535, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --join-port '%s'", arg);
			return CLI_EXIT_USAGE;
		}
		port = (uint16_t)v;
	}
	if ((arg = args_get(args, "listen")) != NULL) {
		if (join_parse_links(arg, buf, &a1, &a2) == -1 || a2 != NULL) {
			cli_usage_error(cli, cmd, "bad --listen '%s': an IPv4 "
			    "address of this host", arg);
			return CLI_EXIT_USAGE;
		}
		snprintf(addr, sizeof addr, "%s", a1);
	} else if (token_own_addr(cli, addr, sizeof addr) == -1)
		return CLI_EXIT_FAILURE;
	if (join_token_new(addr, port, &t) == -1) {
		cli_error(cli, "cannot keep a join token in %s: %s", JOIN_TOKENS,
		    strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	if (join_service_start(cli, addr, port) == -1)
		return CLI_EXIT_FAILURE;
	join_token_format(&t, token, sizeof token);
	explicit_bzero(&t, sizeof t);
	printf("%s\n", token);
	explicit_bzero(token, sizeof token);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_cluster_token_entry = {
	.name = "cluster token",
	.args = {
		.options = (const struct args_option[]) {
			{ "listen", 0, ARGS_VALUE },
			{ "join-port", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 0,
	},
	.usage = "[--listen ADDR] [--join-port PORT]",
	.summary = "print a new one-time join token for cluster join",
	.exec = cmd_cluster_token_exec,
};
