/*
 * havenctl cluster set --host-failures-to-tolerate N: admission control.
 * With N > 0, starting a VM is refused when the VMs meant to run would
 * not fit on the hosts left after the N largest fail.
 */
#include <getopt.h>
#include <stdio.h>

#include "cluster.h"

static int
cmd_cluster_set_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "host-failures-to-tolerate", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	Haven__SettingsSet	 req = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings		 s = HAVEN__CLUSTER_SETTINGS__INIT;
	uint64_t			 v;
	char				 done[128];
	int				 c, have = 0;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (cli_parse_uint(optarg, 0, 63, &v) == -1) {
				cli_usage_error(cli, &cmd_cluster_set_entry,
				    "bad --host-failures-to-tolerate '%s': a "
				    "number from 0 (off) to 63", optarg);
				return CLI_EXIT_USAGE;
			}
			s.host_failures_to_tolerate = (uint32_t)v;
			have = 1;
			break;
		case 'j':
			cli->json = 1;
			break;
		default:
			cli_usage_error(cli, &cmd_cluster_set_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (!have || optind != argc) {
		cli_usage_error(cli, &cmd_cluster_set_entry,
		    "--host-failures-to-tolerate N is required");
		return CLI_EXIT_USAGE;
	}
	req.settings = &s;
	snprintf(done, sizeof done, "host failures to tolerate: %u%s",
	    s.host_failures_to_tolerate, s.host_failures_to_tolerate == 0 ?
	    " (admission control off)" : "");
	return cluster_ok_request(cli, FRAME_SETTINGS_SET, &req.base, done);
}

const struct cmd_entry cmd_cluster_set_entry = {
	.name = "cluster set",
	.usage = "--host-failures-to-tolerate N [--json]",
	.summary = "cluster-wide settings: admission control",
	.exec = cmd_cluster_set_exec,
};
