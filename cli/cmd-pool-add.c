/*
 * havenctl pool add NAME --portal HOST[:PORT] [--portal ...] --target IQN:
 * add an iSCSI target every host reaches to the cluster's configuration;
 * its LUNs then become volumes with 'volume add'. CHAP secrets stay in
 * haven.conf. Several portals are paths to the same target (multipath,
 * issue 17): a worker keeps a session on each.
 */
#include <stdio.h>
#include <string.h>

#include "request.h"

static int
cmd_pool_add_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_pool_add_entry;
	Haven__PoolAdd		 req = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 config = HAVEN__POOL_CONFIG__INIT;
	char			 done[128], *portals[POOL_MAX_PORTALS];
	int			 i, j, n = args_has(args, "portal");

	if (n > POOL_MAX_PORTALS) {
		cli_usage_error(cli, cmd, "at most %d --portal (paths to one "
		    "target)", POOL_MAX_PORTALS);
		return CLI_EXIT_USAGE;
	}
	for (i = 0; i < n; i++) {
		portals[i] = (char *)args_value(args, "portal", i);
		if (!cli_portal_valid(portals[i])) {
			cli_usage_error(cli, cmd, "bad --portal '%s': HOST or "
			    "HOST:PORT, HOST a DNS name or an IPv4 address, "
			    "PORT 1 to 65535 (default 3260)", portals[i]);
			return CLI_EXIT_USAGE;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(portals[i], portals[j]) == 0) {
				cli_usage_error(cli, cmd, "--portal %s is "
				    "given twice", portals[i]);
				return CLI_EXIT_USAGE;
			}
		}
	}
	config.portal = n > 0 ? portals[0] : NULL;
	/* The list only with several: one portal is stored as before. */
	if (n > 1) {
		config.portals = portals;
		config.n_portals = (size_t)n;
	}
	config.target = (char *)args_get(args, "target");
	if (config.target != NULL && !cli_iscsi_name_valid(config.target)) {
		cli_usage_error(cli, cmd, "bad --target '%s': an iSCSI target "
		    "name, iqn.YYYY-MM.DOMAIN[:NAME], eui.<16 hex digits> or "
		    "naa.<16 or 32 hex digits>", config.target);
		return CLI_EXIT_USAGE;
	}
	config.name = (char *)args_positional(args, 0);
	if (!cli_vm_name_valid(config.name)) {
		cli_usage_error(cli, cmd, "bad pool name '%s': 1 to %d "
		    "letters, digits, '.', '_' or '-', starting with a letter "
		    "or digit", config.name, CLI_VM_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (config.portal == NULL) {
		cli_usage_error(cli, cmd, "--portal is required");
		return CLI_EXIT_USAGE;
	}
	if (config.target == NULL) {
		cli_usage_error(cli, cmd, "--target is required");
		return CLI_EXIT_USAGE;
	}
	req.config = &config;
	snprintf(done, sizeof done, "pool %s added", config.name);
	return request_ok(cli, FRAME_POOL_ADD, &req.base, done);
}

const struct cmd_entry cmd_pool_add_entry = {
	.name = "pool add",
	.args = {
		.options = (const struct args_option[]) {
			{ "portal", 0, ARGS_VALUE },
			{ "target", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a pool name is required",
		.too_many = "one pool name expected",
	},
	.usage = "NAME --portal HOST[:PORT] [--portal HOST[:PORT]...] "
	    "--target IQN [--json]",
	.summary = "add an iSCSI target (a pool of volumes) to the cluster",
	.exec = cmd_pool_add_exec,
};
