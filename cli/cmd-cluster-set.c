/*
 * havenctl cluster set: cluster-wide settings; only those named change.
 * --host-failures-to-tolerate N: with N > 0, starting a VM is refused when
 * the VMs meant to run would not fit on the hosts left after the N largest
 * fail. --live-*: live migration's downtime limit, bandwidth, and how long
 * it may take to converge before Haven falls back to quick migration.
 * --drain-live-priority: the lowest priority a drain or failback moves
 * live (the others go by quick migration). --storage-timeout-s: how long a
 * VM's host may lose its pool, while another host reaches it, before the
 * VM is fenced there and restarted elsewhere. --storage-giveup-s: how long
 * a VM stays paused for storage that no host reaches before it is stopped
 * (0 or never: for ever). --cpu-model: the CPU model VMs start with (at
 * their next cold start; the same on every host, so VMs move between them).
 */
#include <stdio.h>
#include <string.h>

#include "request.h"

static int
cmd_cluster_set_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_cluster_set_entry;
	Haven__SettingsSet	 req = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	 s = HAVEN__CLUSTER_SETTINGS__INIT;
	char			*fields[9];
	const char		*option, *arg;
	uint64_t		 v;
	uint32_t		 prio;
	char			 done[256];
	size_t			 len = 0, i;
	int			 next = 0;

	/* In the order given: the fields sent, and the message, follow it. */
	while ((option = args_next(args, &next, &arg)) != NULL) {
		if (strcmp(option, "host-failures-to-tolerate") == 0) {
			if (cli_parse_uint(arg, 0, 63, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--host-failures-to-tolerate '%s': a "
				    "number from 0 (off) to 63", arg);
				return CLI_EXIT_USAGE;
			}
			s.host_failures_to_tolerate = (uint32_t)v;
			fields[req.n_fields++] = "host_failures_to_tolerate";
		} else if (strcmp(option, "live-downtime-ms") == 0) {
			if (cli_parse_uint(arg, 1, 60000, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--live-downtime-ms '%s': 1 to 60000", arg);
				return CLI_EXIT_USAGE;
			}
			s.live_downtime_ms = (uint32_t)v;
			fields[req.n_fields++] = "live_downtime_ms";
		} else if (strcmp(option, "live-bandwidth-mib") == 0) {
			if (cli_parse_uint(arg, 0, 1000000, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--live-bandwidth-mib '%s': MiB/s, 0 for "
				    "unlimited", arg);
				return CLI_EXIT_USAGE;
			}
			s.live_bandwidth_mib = (uint32_t)v;
			fields[req.n_fields++] = "live_bandwidth_mib";
		} else if (strcmp(option, "live-converge-s") == 0) {
			if (cli_parse_uint(arg, 1, 86400, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--live-converge-s '%s': 1 to 86400", arg);
				return CLI_EXIT_USAGE;
			}
			s.live_converge_s = (uint32_t)v;
			fields[req.n_fields++] = "live_converge_s";
		} else if (strcmp(option, "drain-live-priority") == 0) {
			if (strcmp(arg, "none") == 0)
				prio = CLUSTER_DRAIN_LIVE_NONE;
			else if (cli_parse_priority(arg, &prio) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--drain-live-priority '%s': high, medium, "
				    "low, a number, or none", arg);
				return CLI_EXIT_USAGE;
			}
			s.drain_live_priority = prio;
			fields[req.n_fields++] = "drain_live_priority";
		} else if (strcmp(option, "storage-timeout-s") == 0) {
			if (cli_parse_uint(arg, 1, 86400, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--storage-timeout-s '%s': 1 to 86400", arg);
				return CLI_EXIT_USAGE;
			}
			s.storage_timeout_s = (uint32_t)v;
			fields[req.n_fields++] = "storage_timeout_s";
		} else if (strcmp(option, "storage-giveup-s") == 0) {
			if (strcmp(arg, "never") == 0)
				v = 0;
			else if (cli_parse_uint(arg, 0,
			    CLUSTER_STORAGE_SECS_MAX, &v) == -1) {
				cli_usage_error(cli, cmd, "bad "
				    "--storage-giveup-s '%s': seconds from 1 "
				    "to %u, or 0 or never (VMs wait for their "
				    "storage for ever)", arg,
				    CLUSTER_STORAGE_SECS_MAX);
				return CLI_EXIT_USAGE;
			}
			s.storage_giveup_s = (uint32_t)v;
			fields[req.n_fields++] = "storage_giveup_s";
		} else if (strcmp(option, "cpu-model") == 0) {
			if (!machine_name_valid(arg)) {
				cli_usage_error(cli, cmd, "bad --cpu-model '%s': "
				    "a model of 'qemu-system-x86_64 -cpu help' "
				    "(the default: %s)", arg,
				    MACHINE_CPU_MODEL_DEFAULT);
				return CLI_EXIT_USAGE;
			}
			s.cpu_model = (char *)arg;
			fields[req.n_fields++] = "cpu_model";
		} else
			continue;	/* --json */
		if (req.n_fields == sizeof fields / sizeof fields[0]) {
			cli_usage_error(cli, cmd, "too many settings at once");
			return CLI_EXIT_USAGE;
		}
	}
	if (req.n_fields == 0) {
		cli_usage_error(cli, cmd,
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
	.args = {
		.options = (const struct args_option[]) {
			{ "host-failures-to-tolerate", 0, ARGS_VALUE },
			{ "live-downtime-ms", 0, ARGS_VALUE },
			{ "live-bandwidth-mib", 0, ARGS_VALUE },
			{ "live-converge-s", 0, ARGS_VALUE },
			{ "drain-live-priority", 0, ARGS_VALUE },
			{ "storage-timeout-s", 0, ARGS_VALUE },
			{ "storage-giveup-s", 0, ARGS_VALUE },
			{ "cpu-model", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.too_many = "name at least one setting to change",
	},
	.usage = "[--host-failures-to-tolerate N] [--live-downtime-ms MS] "
	    "[--live-bandwidth-mib MIB] [--live-converge-s S] "
	    "[--drain-live-priority high|medium|low|N|none] "
	    "[--storage-timeout-s S] [--storage-giveup-s S|never] "
	    "[--cpu-model MODEL] [--json]",
	.summary = "cluster-wide settings: admission control, live migration, "
	    "storage timeout and giveup, CPU model",
	.exec = cmd_cluster_set_exec,
};
