/*
 * havenctl volume add NAME --pool POOL --lun N [--size SIZE]: make a LUN of
 * a pool a volume of the cluster, for one VM to use ('vm create --volume').
 * Format the LUN first with 'havenctl disk format'.
 */
#include <stdio.h>

#include "request.h"

#define VOLUME_MAX_LUN	16383	/* SAM-5 flat space addressing */

static int
cmd_volume_add_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_volume_add_entry;
	Haven__VolumeAdd	 req = HAVEN__VOLUME_ADD__INIT;
	Haven__VolumeConfig	 config = HAVEN__VOLUME_CONFIG__INIT;
	const char		*lun, *size;
	char			 done[192];
	uint64_t		 v;

	config.pool = (char *)args_get(args, "pool");
	if (config.pool != NULL && !cli_vm_name_valid(config.pool)) {
		cli_usage_error(cli, cmd, "bad --pool '%s': a pool name "
		    "('havenctl pool list' shows them)", config.pool);
		return CLI_EXIT_USAGE;
	}
	if ((lun = args_get(args, "lun")) != NULL) {
		if (cli_parse_uint(lun, 0, VOLUME_MAX_LUN, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --lun '%s': a number "
			    "from 0 to %d", lun, VOLUME_MAX_LUN);
			return CLI_EXIT_USAGE;
		}
		config.lun = (uint32_t)v;
	}
	if ((size = args_get(args, "size")) != NULL &&
	    (cli_parse_size(size, &config.size_bytes) == -1 ||
	    config.size_bytes == 0)) {
		cli_usage_error(cli, cmd, "bad --size '%s' (use e.g. 20G)",
		    size);
		return CLI_EXIT_USAGE;
	}
	config.name = (char *)args_positional(args, 0);
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
	if (lun == NULL) {
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
	.args = {
		.options = (const struct args_option[]) {
			{ "pool", 0, ARGS_VALUE },
			{ "lun", 0, ARGS_VALUE },
			{ "size", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a volume name is required",
		.too_many = "one volume name expected",
	},
	.usage = "NAME --pool POOL --lun N [--size SIZE] [--json]",
	.summary = "make a pool's LUN a volume of the cluster",
	.exec = cmd_volume_add_exec,
};
