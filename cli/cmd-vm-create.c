/*
 * havenctl vm create NAME --memory SIZE ...: add a VM to the cluster's
 * configuration (stopped; 'vm start' runs it). Checked here so mistakes get
 * a usage message; havend checks everything again.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

#define VM_MAX_VCPUS	1024
#define VM_MAX_LIST	64	/* --volume, --prefer */

static int
cmd_vm_create_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "volume", required_argument, NULL, 'd' },
		{ "priority", required_argument, NULL, 'p' },
		{ "prefer", required_argument, NULL, 'o' },
		{ "anti-affinity", required_argument, NULL, 'a' },
		{ "failback", no_argument, NULL, 'f' },
		{ "isolation", required_argument, NULL, 'i' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "append", required_argument, NULL, 'A' },
		{ "stop-timeout", required_argument, NULL, 's' },
		{ "max-restarts", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_entry	*cmd = &cmd_vm_create_entry;
	Haven__VmCreateRequest	 req = HAVEN__VM_CREATE_REQUEST__INIT;
	Haven__VmConfig		 config = HAVEN__VM_CONFIG__INIT;
	char			*volumes[VM_MAX_LIST], done[128];
	uint32_t		 prefer[VM_MAX_LIST];
	uint64_t		 v;
	size_t			 i;
	int			 c, isolation, have_memory = 0;

	config.vcpus = 1;
	config.max_restarts = 1;
	config.priority = CLI_PRIORITY_MEDIUM;
	config.volumes = volumes;
	config.preferred_owners = prefer;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (cli_parse_memory_mib(optarg,
			    &config.memory_mib) == -1) {
				cli_usage_error(cli, cmd, "bad --memory '%s': "
				    "a size in whole MiB (512M, 4G), at least "
				    "%d MiB", optarg, CLI_VM_MIN_MEMORY_MIB);
				return CLI_EXIT_USAGE;
			}
			have_memory = 1;
			break;
		case 'c':
			if (cli_parse_uint(optarg, 1, VM_MAX_VCPUS, &v) == -1) {
				cli_usage_error(cli, cmd, "bad --vcpus '%s': a "
				    "number from 1 to %d", optarg,
				    VM_MAX_VCPUS);
				return CLI_EXIT_USAGE;
			}
			config.vcpus = (uint32_t)v;
			break;
		case 'd':
			if (*optarg == '\0') {
				cli_usage_error(cli, cmd, "empty --volume");
				return CLI_EXIT_USAGE;
			}
			if (config.n_volumes == VM_MAX_LIST) {
				cli_usage_error(cli, cmd, "at most %d volumes",
				    VM_MAX_LIST);
				return CLI_EXIT_USAGE;
			}
			for (i = 0; i < config.n_volumes; i++) {
				if (strcmp(volumes[i], optarg) == 0) {
					cli_usage_error(cli, cmd, "volume '%s' "
					    "given twice", optarg);
					return CLI_EXIT_USAGE;
				}
			}
			volumes[config.n_volumes++] = optarg;
			break;
		case 'p':
			if (cli_parse_priority(optarg, &config.priority) ==
			    -1) {
				cli_usage_error(cli, cmd, "bad --priority "
				    "'%s': high, medium or low", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'o':
			if (cli_parse_uint(optarg, 1, UINT32_MAX, &v) == -1) {
				cli_usage_error(cli, cmd, "bad --prefer '%s': "
				    "a node id ('havenctl node list' shows "
				    "them)", optarg);
				return CLI_EXIT_USAGE;
			}
			if (config.n_preferred_owners == VM_MAX_LIST) {
				cli_usage_error(cli, cmd, "at most %d "
				    "preferred nodes", VM_MAX_LIST);
				return CLI_EXIT_USAGE;
			}
			for (i = 0; i < config.n_preferred_owners; i++) {
				if (prefer[i] == v) {
					cli_usage_error(cli, cmd, "node %s "
					    "preferred twice", optarg);
					return CLI_EXIT_USAGE;
				}
			}
			prefer[config.n_preferred_owners++] = (uint32_t)v;
			break;
		case 'a':
			if (*optarg == '\0') {
				cli_usage_error(cli, cmd,
				    "empty --anti-affinity");
				return CLI_EXIT_USAGE;
			}
			config.anti_affinity = optarg;
			break;
		case 'f':
			config.failback = 1;
			break;
		case 'i':
			if (cli_parse_isolation(optarg, &isolation) == -1) {
				cli_usage_error(cli, cmd, "bad --isolation "
				    "'%s': stop, save or leave-running",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			config.isolation_response =
			    (Haven__IsolationResponse)isolation;
			break;
		case 'k':
			/* Read on whichever host runs the VM. */
			if (*optarg != '/') {
				cli_usage_error(cli, cmd, "bad --kernel '%s': "
				    "an absolute path, the same on every host "
				    "that may run the VM", optarg);
				return CLI_EXIT_USAGE;
			}
			config.kernel = optarg;
			break;
		case 'A':
			if (*optarg == '\0') {
				cli_usage_error(cli, cmd, "empty --append");
				return CLI_EXIT_USAGE;
			}
			config.kernel_append = optarg;
			break;
		case 's':
			if (cli_parse_uint(optarg, 1, 3600, &v) == -1) {
				cli_usage_error(cli, cmd, "bad --stop-timeout "
				    "'%s': seconds from 1 to 3600", optarg);
				return CLI_EXIT_USAGE;
			}
			config.stop_timeout_s = (uint32_t)v;
			break;
		case 'r':
			if (cli_parse_uint(optarg, 0, 100, &v) == -1) {
				cli_usage_error(cli, cmd, "bad --max-restarts "
				    "'%s': a number from 0 to 100", optarg);
				return CLI_EXIT_USAGE;
			}
			config.max_restarts = (uint32_t)v;
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
		cli_usage_error(cli, cmd, optind == argc ? "a VM name is "
		    "required" : "one VM name expected");
		return CLI_EXIT_USAGE;
	}
	config.name = argv[optind];
	if (!cli_vm_name_valid(config.name)) {
		cli_usage_error(cli, cmd, "bad VM name '%s': 1 to %d letters, "
		    "digits, '.', '_' or '-', starting with a letter or digit",
		    config.name, CLI_VM_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (!have_memory) {
		cli_usage_error(cli, cmd, "--memory is required");
		return CLI_EXIT_USAGE;
	}
	if (*config.kernel_append != '\0' && *config.kernel == '\0') {
		cli_usage_error(cli, cmd, "--append is the kernel's command "
		    "line and needs --kernel");
		return CLI_EXIT_USAGE;
	}
	req.config = &config;
	snprintf(done, sizeof done, "created VM %s", config.name);
	return request_ok(cli, FRAME_VM_CREATE, &req.base, done);
}

const struct cmd_entry cmd_vm_create_entry = {
	.name = "vm create",
	/* Wrapped for 80 columns under "usage: havenctl ". */
	.usage = "NAME --memory SIZE [--vcpus N] [--volume VOL]...\n"
	    "         [--priority high|medium|low] [--prefer NODE_ID]...\n"
	    "         [--anti-affinity CLASS] [--failback]\n"
	    "         [--isolation stop|save|leave-running] [--stop-timeout S]\n"
	    "         [--max-restarts N]\n"
	    "         [--kernel PATH [--append STRING]] [--json]",
	.summary = "add a VM to the cluster (stopped; 'vm start' runs it)",
	.exec = cmd_vm_create_exec,
};
