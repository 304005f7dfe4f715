/*
 * havenctl volume add NAME --pool POOL --lun N [--size SIZE]: make a LUN of
 * a pool a volume of the cluster, for one VM to use ('vm create --volume').
 * Format the LUN first with 'havenctl disk format'.
 */
#include <getopt.h>
#include <stdio.h>

#include "request.h"

#define VOLUME_MAX_LUN	16383	/* SAM-5 flat space addressing */

static int
cmd_volume_add_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "lun", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_entry	*cmd = &cmd_volume_add_entry;
	Haven__VolumeAdd	 req = HAVEN__VOLUME_ADD__INIT;
	Haven__VolumeConfig	 config = HAVEN__VOLUME_CONFIG__INIT;
	char			 done[192];
	uint64_t		 v;
	int			 c, have_lun = 0;

	config.pool = NULL;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_vm_name_valid(optarg)) {
				cli_usage_error(cli, cmd, "bad --pool '%s': a "
				    "pool name ('havenctl pool list' shows "
				    "them)", optarg);
				return CLI_EXIT_USAGE;
			}
			config.pool = optarg;
			break;
		case 'l':
			if (cli_parse_uint(optarg, 0, VOLUME_MAX_LUN, &v) ==
			    -1) {
				cli_usage_error(cli, cmd, "bad --lun '%s': a "
				    "number from 0 to %d", optarg,
				    VOLUME_MAX_LUN);
				return CLI_EXIT_USAGE;
			}
			config.lun = (uint32_t)v;
			have_lun = 1;
			break;
		case 's':
			if (cli_parse_size(optarg, &config.size_bytes) == -1 ||
			    config.size_bytes == 0) {
				cli_usage_error(cli, cmd, "bad --size '%s' "
				    "(use e.g. 20G)", optarg);
				return CLI_EXIT_USAGE;
			}
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
		cli_usage_error(cli, cmd, optind == argc ? "a volume name is "
		    "required" : "one volume name expected");
		return CLI_EXIT_USAGE;
	}
	config.name = argv[optind];
	if (!cli_vm_name_valid(config.name)) {
		cli_usage_error(cli, cmd, "bad volume name '%s': 1 to %d "
		    "letters, digits, '.', '_' or '-', starting with a letter "
		    "or digit", config.name, CLI_VM_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (config.pool == NULL) {
		cli_usage_error(cli, cmd, "--pool is required");
		return CLI_EXIT_USAGE;
	}
	if (!have_lun) {
		cli_usage_error(cli, cmd, "--lun is required");
		return CLI_EXIT_USAGE;
	}
	req.config = &config;
	snprintf(done, sizeof done, "volume %s added (pool %s, LUN %u)",
	    config.name, config.pool, config.lun);
	return request_ok(cli, FRAME_VOLUME_ADD, &req.base, done);
}

const struct cmd_entry cmd_volume_add_entry = {
	.name = "volume add",
	.usage = "NAME --pool POOL --lun N [--size SIZE] [--json]",
	.summary = "make a pool's LUN a volume of the cluster",
	.exec = cmd_volume_add_exec,
};
