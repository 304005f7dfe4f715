/*
 * havenctl role grant ROLE PRINCIPAL: give a user or group a role
 * (admin, operator, viewer) in the cluster; an operator may be limited to
 * VMs whose names match --vm patterns. Granting again replaces it.
 */
#include <getopt.h>
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
cmd_role_grant_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "vm", required_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	Haven__RoleGrant	 req = HAVEN__ROLE_GRANT__INIT;
	Haven__RoleBinding	 b = HAVEN__ROLE_BINDING__INIT;
	char			*patterns[8];
	size_t			 npatterns = 0;
	int			 c;

	while ((c = getopt_long(argc, argv, "v:", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (npatterns == 8) {
				cli_usage_error(cli, &cmd_role_grant_entry,
				    "at most 8 --vm patterns");
				return CLI_EXIT_USAGE;
			}
			patterns[npatterns++] = optarg;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_role_grant_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		cli_usage_error(cli, &cmd_role_grant_entry,
		    "expected ROLE and PRINCIPAL");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "admin") == 0)
		b.role = HAVEN__ROLE__ROLE_ADMIN;
	else if (strcmp(argv[optind], "operator") == 0)
		b.role = HAVEN__ROLE__ROLE_OPERATOR;
	else if (strcmp(argv[optind], "viewer") == 0)
		b.role = HAVEN__ROLE__ROLE_VIEWER;
	else {
		cli_usage_error(cli, &cmd_role_grant_entry,
		    "unknown role '%s' (admin, operator or viewer)",
		    argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!principal_valid(argv[optind + 1])) {
		cli_usage_error(cli, &cmd_role_grant_entry, "bad principal "
		    "'%s' (user:NAME, group:NAME, uid:N or gid:N)",
		    argv[optind + 1]);
		return CLI_EXIT_USAGE;
	}
	if (npatterns > 0 && b.role != HAVEN__ROLE__ROLE_OPERATOR) {
		cli_usage_error(cli, &cmd_role_grant_entry,
		    "--vm limits operators only");
		return CLI_EXIT_USAGE;
	}
	b.principal = argv[optind + 1];
	b.vm_patterns = patterns;
	b.n_vm_patterns = npatterns;
	req.binding = &b;
	return request_ok(cli, FRAME_ROLE_GRANT, &req.base, "granted");
}

const struct cmd_entry cmd_role_grant_entry = {
	.name = "role grant",
	.usage = "[--vm PATTERN]... admin|operator|viewer "
	    "user:NAME|group:NAME|uid:N|gid:N",
	.summary = "give a user or group a role in the cluster",
	.exec = cmd_role_grant_exec,
};
