/*
 * havenctl pool add NAME --portal HOST[:PORT] --target IQN: add an iSCSI
 * target every host reaches to the cluster's configuration; its LUNs then
 * become volumes with 'volume add'. CHAP secrets stay in haven.conf.
 */
#include <getopt.h>
#include <stdio.h>

#include "request.h"

static int
cmd_pool_add_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "portal", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_entry	*cmd = &cmd_pool_add_entry;
	Haven__PoolAdd	 req = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 config = HAVEN__POOL_CONFIG__INIT;
	char			 done[128];
	int			 c;

	config.portal = NULL;
	config.target = NULL;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_portal_valid(optarg)) {
				cli_usage_error(cli, cmd, "bad --portal '%s': "
				    "HOST or HOST:PORT, HOST a DNS name or an "
				    "IPv4 address, PORT 1 to 65535 (default "
				    "3260)", optarg);
				return CLI_EXIT_USAGE;
			}
			config.portal = optarg;
			break;
		case 't':
			if (!cli_iscsi_name_valid(optarg)) {
				cli_usage_error(cli, cmd, "bad --target '%s': "
				    "an iSCSI target name, iqn.YYYY-MM.DOMAIN"
				    "[:NAME], eui.<16 hex digits> or "
				    "naa.<16 or 32 hex digits>", optarg);
				return CLI_EXIT_USAGE;
			}
			config.target = optarg;
			break;
		case 'j':
			cli->json = 1;
			break;
		default:
			cli_usage_error(cli, cmd, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_usage_error(cli, cmd, optind == argc ? "a pool name is "
		    "required" : "one pool name expected");
		return CLI_EXIT_USAGE;
	}
	config.name = argv[optind];
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
	.usage = "NAME --portal HOST[:PORT] --target IQN [--json]",
	.summary = "add an iSCSI target (a pool of volumes) to the cluster",
	.exec = cmd_pool_add_exec,
};
