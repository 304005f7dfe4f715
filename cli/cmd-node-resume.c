/*
 * havenctl node resume NODE [--failback]: end maintenance. The host takes
 * VMs again; with --failback the VMs drained from it move back.
 */
#include <stdio.h>
#include <string.h>

#include "cluster.h"

static int
cmd_node_resume_exec(struct cli *cli, int argc, char **argv)
{
	Haven__NodeMaintenanceRequest	 req =
	    HAVEN__NODE_MAINTENANCE_REQUEST__INIT;
	const char			*node = NULL;
	char				 done[160];
	int				 i, n = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (strcmp(argv[i], "--failback") == 0)
			req.failback = 1;
		else if (argv[i][0] == '-') {
			cli_usage_error(cli, &cmd_node_resume_entry,
			    "unknown option %s", argv[i]);
			return CLI_EXIT_USAGE;
		} else {
			node = argv[i];
			n++;
		}
	}
	if (n != 1) {
		cli_usage_error(cli, &cmd_node_resume_entry,
		    "one node (id or name) expected");
		return CLI_EXIT_USAGE;
	}
	if (cluster_node_id(cli, node, &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	snprintf(done, sizeof done, "node %u resumed%s", req.node_id,
	    req.failback ? ": the VMs drained from it come back" : "");
	return cluster_ok_request(cli, FRAME_NODE_MAINTENANCE, &req.base, done);
}

const struct cmd_entry cmd_node_resume_entry = {
	.name = "node resume",
	.usage = "[--failback] [--json] NODE",
	.summary = "end maintenance; --failback brings its VMs back",
	.exec = cmd_node_resume_exec,
};
