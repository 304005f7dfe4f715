/*
 * havenctl cluster corosync-conf --cluster NAME --node ID:NAME:ADDR ...:
 * the corosync.conf every host of a Haven cluster runs, with the timing
 * Haven chooses (config/corosync.h: a fixed token, no token_coefficient,
 * so that detecting a lost host takes as long at 32 hosts as at 3). The
 * same file goes to every host, with the cluster's /etc/corosync/authkey.
 * --token-ms defaults to [cluster] token_ms of the haven.conf --config
 * names (its cluster name too), else to config/corosync.h's default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "corosync.h"

/* ID:NAME:ADDR into node, whose strings point into buf. */
static int
parse_node(const char *arg, char *buf, size_t len, struct corosync_node *node)
{
	char		*name, *addr;
	uint64_t	 id;

	if (strlen(arg) >= len)
		return -1;
	snprintf(buf, len, "%s", arg);
	if ((name = strchr(buf, ':')) == NULL ||
	    (addr = strchr(name + 1, ':')) == NULL)
		return -1;
	*name++ = '\0';
	*addr++ = '\0';
	if (cli_parse_uint(buf, 1, UINT32_MAX, &id) == -1)
		return -1;
	node->id = (unsigned)id;
	node->name = name;
	node->addr = addr;
	node->addr2 = NULL;	/* one link: init and join write two */
	return 0;
}

/* --config: the token and the cluster's name from a haven.conf. */
static int
corosync_conf_from(struct cli *cli, const char *path,
    struct corosync_conf *conf, char *cluster, size_t len)
{
	struct config_error	 errs[8];
	struct config		*c;
	char			 line[512];
	size_t			 nerrs, i;
	int			 rc = 0;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	if (config_parse_file(path, c, errs, 8, &nerrs) == -1) {
		for (i = 0; i < nerrs && i < 8; i++) {
			config_error_format(&errs[i], path, line, sizeof line);
			cli_error(cli, "%s", line);
		}
		rc = -1;
	} else {
		conf->token_ms = c->token_ms;
		snprintf(cluster, len, "%s", c->cluster_name);
		if (conf->cluster == NULL)
			conf->cluster = cluster;
	}
	config_wipe(c);
	free(c);
	return rc;
}

static int
cmd_cluster_corosync_conf_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_cluster_corosync_conf_entry;
	static char		 bufs[COROSYNC_MAX_NODES][128];
	struct corosync_node	 nodes[COROSYNC_MAX_NODES];
	struct corosync_conf	 conf;
	const char		*arg;
	char			 err[256], host[64], cluster[64], *colon;
	uint64_t		 v;
	int			 n;

	memset(&conf, 0, sizeof conf);
	conf.cluster = args_get(args, "cluster");
	conf.token_ms = COROSYNC_TOKEN_MS;
	if ((arg = args_get(args, "config")) != NULL &&
	    corosync_conf_from(cli, arg, &conf, cluster,
	    sizeof cluster) == -1)
		return CLI_EXIT_FAILURE;
	if ((arg = args_get(args, "token-ms")) != NULL) {
		if (cli_parse_uint(arg, 100, 120000, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --token-ms '%s': 100 to "
			    "120000", arg);
			return CLI_EXIT_USAGE;
		}
		conf.token_ms = (unsigned)v;
	}
	for (n = 0; (arg = args_value(args, "node", n)) != NULL; n++) {
		if (n == COROSYNC_MAX_NODES) {
			cli_usage_error(cli, cmd, "at most %d nodes",
			    COROSYNC_MAX_NODES);
			return CLI_EXIT_USAGE;
		}
		if (parse_node(arg, bufs[n], sizeof bufs[n], &nodes[n]) == -1) {
			cli_usage_error(cli, cmd, "bad --node '%s': ID:NAME:ADDR,"
			    " e.g. 1:haven-h1:10.0.0.11", arg);
			return CLI_EXIT_USAGE;
		}
	}
	conf.nodes = nodes;
	conf.nnodes = (size_t)n;
	if ((arg = args_get(args, "witness")) != NULL) {
		snprintf(host, sizeof host, "%s", arg);
		if ((colon = strchr(host, ':')) != NULL) {
			*colon++ = '\0';
			if (cli_parse_uint(colon, 1, 65535, &v) == -1) {
				cli_usage_error(cli, cmd, "bad --witness '%s': "
				    "ADDR[:PORT]", arg);
				return CLI_EXIT_USAGE;
			}
			conf.qdevice_port = (unsigned)v;
		}
		conf.qdevice_host = host;
		conf.qdevice_tls = args_has(args, "witness-no-tls") == 0;
	}
	conf.logfile = args_get(args, "logfile");
	if (conf.cluster == NULL) {
		cli_usage_error(cli, cmd, "--cluster is required (or --config "
		    "with a haven.conf that names it)");
		return CLI_EXIT_USAGE;
	}
	if (corosync_conf_write(stdout, &conf, err, sizeof err) == -1) {
		cli_error(cli, "cannot write corosync.conf: %s", err);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_cluster_corosync_conf_entry = {
	.name = "cluster corosync-conf",
	.args = {
		.options = (const struct args_option[]) {
			{ "cluster", 0, ARGS_VALUE },
			{ "node", 0, ARGS_VALUE },
			{ "token-ms", 0, ARGS_VALUE },
			{ "witness", 0, ARGS_VALUE },
			{ "witness-no-tls", 0, 0 },
			{ "logfile", 0, ARGS_VALUE },
			{ "config", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 0,
		.too_many = "no arguments; nodes go in --node",
	},
	.usage = "[--cluster NAME] [--config PATH] --node ID:NAME:ADDR...\n"
	    "         [--token-ms MS] [--witness ADDR[:PORT] "
	    "[--witness-no-tls]] [--logfile PATH]",
	.summary = "print the corosync.conf of a Haven cluster, with Haven's "
	    "timing",
	.exec = cmd_cluster_corosync_conf_exec,
};
