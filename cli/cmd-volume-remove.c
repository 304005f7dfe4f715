/*
 * havenctl volume remove NAME: take a volume out of the cluster's
 * configuration. Refused while it is in use (havend names the user);
 * nothing on the SAN changes.
 */
#include <stdio.h>

#include "request.h"

static int
cmd_volume_remove_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_volume_remove_entry;
	Haven__VolumeRemove	 req = HAVEN__VOLUME_REMOVE__INIT;
	char			 done[128];

	req.name = (char *)args_positional(args, 0);
	if (!cli_vm_name_valid(req.name)) {
		cli_usage_error(cli, cmd, "bad volume name '%s'", req.name);
		return CLI_EXIT_USAGE;
	}
	snprintf(done, sizeof done, "volume %s removed", req.name);
	return request_ok(cli, FRAME_VOLUME_REMOVE, &req.base, done);
}

const struct cmd_entry cmd_volume_remove_entry = {
	.name = "volume remove",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "a volume name is required",
		.too_many = "one volume name expected",
	},
	.usage = "NAME [--json]",
	.summary = "take a volume out of the cluster (refused while in use)",
	.exec = cmd_volume_remove_exec,
};
