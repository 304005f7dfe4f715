/*
 * havenctl node fence NODE: fence a host by hand (a host that is hung but
 * still in corosync's membership, say). It is marked lost, the coordinator
 * fences it with its fence levels, and its VMs recover on the others; a
 * running havend there stops its VMs and itself. `fence history` shows how
 * it went. NODE is a node id or a host name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static int
cmd_node_fence_exec(struct cli *cli, int argc, char **argv)
{
	Haven__NodeFenceRequest	 req = HAVEN__NODE_FENCE_REQUEST__INIT;
	char			 done[160];
	int			 i, n = 0;
	const char		*node = NULL;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (argv[i][0] == '-') {
			cli_usage_error(cli, &cmd_node_fence_entry,
			    "unknown option %s", argv[i]);
			return CLI_EXIT_USAGE;
		} else {
			node = argv[i];
			n++;
		}
	}
	if (n != 1) {
		cli_usage_error(cli, &cmd_node_fence_entry,
		    "one node (id or name) expected");
		return CLI_EXIT_USAGE;
	}
	if (cluster_node_id(cli, node, &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	snprintf(done, sizeof done, "node %u marked lost: the coordinator "
	    "fences it ('havenctl fence history' shows the outcome)",
	    req.node_id);
	return cluster_ok_request(cli, FRAME_NODE_FENCE, &req.base, done);
}

const struct cmd_entry cmd_node_fence_entry = {
	.name = "node fence",
	.usage = "[--json] NODE",
	.summary = "fence a host by hand; its VMs recover elsewhere",
	.exec = cmd_node_fence_exec,
};
