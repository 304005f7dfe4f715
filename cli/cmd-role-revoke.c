/*
 * havenctl role revoke PRINCIPAL: take a user's or group's role away.
 */
#include <getopt.h>
#include <stdio.h>

#include "request.h"

static int
cmd_role_revoke_exec(struct cli *cli, int argc, char **argv)
{
	Haven__RoleRevoke	req = HAVEN__ROLE_REVOKE__INIT;
	int				i, n = 0;
	const char			*principal = NULL;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;	/* --json, handled by havenctl */
		principal = argv[i];
		n++;
	}
	if (n != 1) {
		cli_usage_error(cli, &cmd_role_revoke_entry,
		    "expected one PRINCIPAL");
		return CLI_EXIT_USAGE;
	}
	req.principal = (char *)principal;
	return request_ok(cli, FRAME_ROLE_REVOKE, &req.base, "revoked");
}

const struct cmd_entry cmd_role_revoke_entry = {
	.name = "role revoke",
	.usage = "[--json] PRINCIPAL",
	.summary = "take a user's or group's role away",
	.exec = cmd_role_revoke_exec,
};
