/*
 * havenctl node resume NODE [--failback]: end maintenance. The host takes
 * VMs again; with --failback the VMs drained from it move back.
 */
#include <stdio.h>
#include <string.h>

#include "request.h"

static int
cmd_node_resume_exec(struct cli *cli, int argc, char **argv)
{
	Haven__HostMaintenance	 req =
	    HAVEN__HOST_MAINTENANCE__INIT;
	static const char *const	 flags[] = { "--failback" };
	const char			*node;
	char				 done[160];
	int				 set[1] = { 0 }, rc;

	if ((rc = request_node_args(cli, &cmd_node_resume_entry, argc, argv,
	    flags, set, 1, &req.node_id, &node)) != CLI_EXIT_OK)
		return rc;
	req.failback = set[0];
	snprintf(done, sizeof done, "node %u resumed%s", req.node_id,
	    req.failback ? ": the VMs drained from it come back" : "");
	return request_ok(cli, FRAME_NODE_MAINTENANCE, &req.base, done);
}

const struct cmd_entry cmd_node_resume_entry = {
	.name = "node resume",
	.usage = "[--failback] [--json] NODE",
	.summary = "end maintenance; --failback brings its VMs back",
	.exec = cmd_node_resume_exec,
};
