/*
 * havenctl node resume NODE [--failback]: end maintenance. The host takes
 * VMs again; with --failback the VMs drained from it move back.
 */
#include <stdio.h>
#include <string.h>

#include "request.h"

static int
cmd_node_resume_exec(struct cli *cli, struct args *args)
{
	Haven__HostMaintenance	 req = HAVEN__HOST_MAINTENANCE__INIT;
	char			 done[160];

	if (request_node_id(cli, args_positional(args, 0), &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	req.failback = args_has(args, "failback") > 0;
	snprintf(done, sizeof done, "node %u resumed%s", req.node_id,
	    req.failback ? ": the VMs drained from it come back" : "");
	return request_ok(cli, FRAME_NODE_MAINTENANCE, &req.base, done);
}

const struct cmd_entry cmd_node_resume_entry = {
	.name = "node resume",
	.args = {
		.options = (const struct args_option[]) {
			{ "failback", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "one node (id or name) expected",
	},
	.usage = "[--failback] [--json] NODE",
	.summary = "end maintenance; --failback brings its VMs back",
	.exec = cmd_node_resume_exec,
};
