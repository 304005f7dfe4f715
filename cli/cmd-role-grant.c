/*
 * havenctl role grant ROLE PRINCIPAL: give a user or group a role
 * (admin, operator, viewer) in the cluster; an operator may be limited to
 * VMs whose names match --vm patterns. Granting again replaces it.
 */
#include <stdio.h>
#include <string.h>

#include "request.h"

/* "user:alice", "group:ops", "uid:1000", "gid:1000". */
static int
principal_valid(const char *p)
{
	return (strncmp(p, "user:", 5) == 0 && p[5] != '\0') ||
	    (strncmp(p, "group:", 6) == 0 && p[6] != '\0') ||
	    (strncmp(p, "uid:", 4) == 0 && p[4] >= '0' && p[4] <= '9') ||
	    (strncmp(p, "gid:", 4) == 0 && p[4] >= '0' && p[4] <= '9');
}

static int
cmd_role_grant_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_role_grant_entry;
	Haven__RoleGrant	 req = HAVEN__ROLE_GRANT__INIT;
	Haven__RoleBinding	 b = HAVEN__ROLE_BINDING__INIT;
	const char		*role, *principal;
	char			*patterns[8];
	int			 npatterns, i;

	if ((npatterns = args_has(args, "vm")) > 8) {
		cli_usage_error(cli, cmd, "at most 8 --vm patterns");
		return CLI_EXIT_USAGE;
	}
	for (i = 0; i < npatterns; i++)
		patterns[i] = (char *)args_value(args, "vm", i);
	role = args_positional(args, 0);
	principal = args_positional(args, 1);
	if (strcmp(role, "admin") == 0)
		b.role = HAVEN__ROLE__ROLE_ADMIN;
	else if (strcmp(role, "operator") == 0)
		b.role = HAVEN__ROLE__ROLE_OPERATOR;
	else if (strcmp(role, "viewer") == 0)
		b.role = HAVEN__ROLE__ROLE_VIEWER;
	else {
		cli_usage_error(cli, cmd, "unknown role '%s' (admin, operator "
		    "or viewer)", role);
		return CLI_EXIT_USAGE;
	}
	if (!principal_valid(principal)) {
		cli_usage_error(cli, cmd, "bad principal '%s' (user:NAME, "
		    "group:NAME, uid:N or gid:N)", principal);
		return CLI_EXIT_USAGE;
	}
	if (npatterns > 0 && b.role != HAVEN__ROLE__ROLE_OPERATOR) {
		cli_usage_error(cli, cmd, "--vm limits operators only");
		return CLI_EXIT_USAGE;
	}
	b.principal = (char *)principal;
	b.vm_patterns = patterns;
	b.n_vm_patterns = (size_t)npatterns;
	req.binding = &b;
	return request_ok(cli, FRAME_ROLE_GRANT, &req.base, "granted");
}

const struct cmd_entry cmd_role_grant_entry = {
	.name = "role grant",
	.args = {
		.options = (const struct args_option[]) {
			{ "vm", 'v', ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 2, .upper = 2,
		.too_few = "expected ROLE and PRINCIPAL",
	},
	.usage = "[--vm PATTERN]... admin|operator|viewer "
	    "user:NAME|group:NAME|uid:N|gid:N",
	.summary = "give a user or group a role in the cluster",
	.exec = cmd_role_grant_exec,
};
