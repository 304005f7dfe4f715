/*
 * havenctl cluster set: cluster-wide settings; only those named change.
 * --host-failures-to-tolerate N: with N > 0, starting a VM is refused when
 * the VMs meant to run would not fit on the hosts left after the N largest
 * fail. --live-*: live migration's downtime limit, bandwidth, and how long
 * it may take to converge before Haven falls back to quick migration.
 * --drain-live-priority: the lowest priority a drain or failback moves
 * live (the others go by quick migration).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "request.h"

static int
cmd_cluster_set_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "host-failures-to-tolerate", required_argument, NULL, 'f' },
		{ "live-downtime-ms", required_argument, NULL, 'd' },
		{ "live-bandwidth-mib", required_argument, NULL, 'b' },
		{ "live-converge-s", required_argument, NULL, 'c' },
		{ "drain-live-priority", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	Haven__SettingsSet	 req = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	 s = HAVEN__CLUSTER_SETTINGS__INIT;
	char			*fields[8];
	uint64_t		 v;
	uint32_t		 prio;
	char			 done[256];
	size_t			 len = 0, i;
	int			 c;

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
			fields[req.n_fields++] = "host_failures_to_tolerate";
			break;
		case 'd':
			if (cli_parse_uint(optarg, 1, 60000, &v) == -1) {
				cli_usage_error(cli, &cmd_cluster_set_entry,
				    "bad --live-downtime-ms '%s': 1 to 60000",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			s.live_downtime_ms = (uint32_t)v;
			fields[req.n_fields++] = "live_downtime_ms";
			break;
		case 'b':
			if (cli_parse_uint(optarg, 0, 1000000, &v) == -1) {
				cli_usage_error(cli, &cmd_cluster_set_entry,
				    "bad --live-bandwidth-mib '%s': MiB/s, 0 "
				    "for unlimited", optarg);
				return CLI_EXIT_USAGE;
			}
			s.live_bandwidth_mib = (uint32_t)v;
			fields[req.n_fields++] = "live_bandwidth_mib";
			break;
		case 'c':
			if (cli_parse_uint(optarg, 1, 86400, &v) == -1) {
				cli_usage_error(cli, &cmd_cluster_set_entry,
				    "bad --live-converge-s '%s': 1 to 86400",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			s.live_converge_s = (uint32_t)v;
			fields[req.n_fields++] = "live_converge_s";
			break;
		case 'p':
			if (strcmp(optarg, "none") == 0)
				prio = CLUSTER_DRAIN_LIVE_NONE;
			else if (cli_parse_priority(optarg, &prio) == -1) {
				cli_usage_error(cli, &cmd_cluster_set_entry,
				    "bad --drain-live-priority '%s': high, "
				    "medium, low, a number, or none", optarg);
				return CLI_EXIT_USAGE;
			}
			s.drain_live_priority = prio;
			fields[req.n_fields++] = "drain_live_priority";
			break;
		case 'j':
			cli->json = 1;
			break;
		default:
			cli_usage_error(cli, &cmd_cluster_set_entry, NULL);
			return CLI_EXIT_USAGE;
		}
		if (req.n_fields == sizeof fields / sizeof fields[0]) {
			cli_usage_error(cli, &cmd_cluster_set_entry,
			    "too many settings at once");
			return CLI_EXIT_USAGE;
		}
	}
	if (req.n_fields == 0 || optind != argc) {
		cli_usage_error(cli, &cmd_cluster_set_entry,
		    "name at least one setting to change");
		return CLI_EXIT_USAGE;
	}
	req.settings = &s;
	req.fields = fields;
	done[0] = '\0';
	for (i = 0; i < req.n_fields && len < sizeof done; i++)
		len += (size_t)snprintf(done + len, sizeof done - len, "%s%s",
		    i ? ", " : "set ", fields[i]);
	return request_ok(cli, FRAME_SETTINGS_SET, &req.base, done);
}

const struct cmd_entry cmd_cluster_set_entry = {
	.name = "cluster set",
	.usage = "[--host-failures-to-tolerate N] [--live-downtime-ms MS] "
	    "[--live-bandwidth-mib MIB] [--live-converge-s S] "
	    "[--drain-live-priority high|medium|low|N|none] [--json]",
	.summary = "cluster-wide settings: admission control, live migration",
	.exec = cmd_cluster_set_exec,
};
