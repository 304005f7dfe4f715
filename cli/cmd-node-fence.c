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

#include "request.h"

static int
cmd_node_fence_exec(struct cli *cli, struct args *args)
{
	Haven__HostLost	 req = HAVEN__HOST_LOST__INIT;
	char		 done[160];

	if (request_node_id(cli, args_positional(args, 0), &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	snprintf(done, sizeof done, "node %u marked lost: the coordinator "
	    "fences it ('havenctl fence history' shows the outcome)",
	    req.node_id);
	return request_ok(cli, FRAME_NODE_FENCE, &req.base, done);
}

const struct cmd_entry cmd_node_fence_entry = {
	.name = "node fence",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "one node (id or name) expected",
	},
	.usage = "[--json] NODE",
	.summary = "fence a host by hand; its VMs recover elsewhere",
	.exec = cmd_node_fence_exec,
};
