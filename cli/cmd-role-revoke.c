/*
 * havenctl role revoke PRINCIPAL: take a user's or group's role away.
 */
#include <stdio.h>

#include "request.h"

static int
cmd_role_revoke_exec(struct cli *cli, struct args *args)
{
	Haven__RoleRevoke	req = HAVEN__ROLE_REVOKE__INIT;

	req.principal = (char *)args_positional(args, 0);
	return request_ok(cli, FRAME_ROLE_REVOKE, &req.base, "revoked");
}

const struct cmd_entry cmd_role_revoke_entry = {
	.name = "role revoke",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "expected one PRINCIPAL",
	},
	.usage = "[--json] PRINCIPAL",
	.summary = "take a user's or group's role away",
	.exec = cmd_role_revoke_exec,
};
