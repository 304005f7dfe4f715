/*
 * havenctl vm create NAME --memory SIZE ...: add a VM to the cluster's
 * configuration (stopped; 'vm start' runs it), its NICs included (havend
 * chooses the MACs not given). Checked here so mistakes get a usage
 * message; havend checks everything again. The VM options are parsed here
 * for vm set too (cli_vm_config_parse).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "request.h"

#define VM_MAX_VCPUS	1024

/* --volume, repeated: the guest's disks in order, each once. */
static int
vm_volumes(struct cli *cli, const struct cmd_entry *cmd, struct args *args,
    Haven__VmConfig *config)
{
	const char		*arg;
	size_t			 i;
	int			 n;

	for (n = 0; (arg = args_value(args, "volume", n)) != NULL; n++) {
		if (*arg == '\0') {
			cli_usage_error(cli, cmd, "empty --volume");
			return -1;
		}
		if (config->n_volumes == VM_MAX_VOLUMES) {
			cli_usage_error(cli, cmd, "at most %d volumes",
			    VM_MAX_VOLUMES);
			return -1;
		}
		for (i = 0; i < config->n_volumes; i++) {
			if (strcmp(config->volumes[i], arg) == 0) {
				cli_usage_error(cli, cmd, "volume '%s' given "
				    "twice", arg);
				return -1;
			}
		}
		config->volumes[config->n_volumes++] = (char *)arg;
	}
	return 0;
}

/* --prefer, repeated: preferred node ids, most preferred first, each once. */
static int
vm_prefer(struct cli *cli, const struct cmd_entry *cmd, struct args *args,
    Haven__VmConfig *config)
{
	const char		*arg;
	uint64_t		 v;
	size_t			 i;
	int			 n;

	for (n = 0; (arg = args_value(args, "prefer", n)) != NULL; n++) {
		if (cli_parse_uint(arg, 1, UINT32_MAX, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --prefer '%s': a node "
			    "id ('havenctl node list' shows them)", arg);
			return -1;
		}
		if (config->n_preferred_owners == CLI_VM_MAX_LIST) {
			cli_usage_error(cli, cmd, "at most %d preferred nodes",
			    CLI_VM_MAX_LIST);
			return -1;
		}
		for (i = 0; i < config->n_preferred_owners; i++) {
			if (config->preferred_owners[i] == v) {
				cli_usage_error(cli, cmd, "node %s preferred "
				    "twice", arg);
				return -1;
			}
		}
		config->preferred_owners[config->n_preferred_owners++] = (uint32_t)v;
	}
	return 0;
}

/* --nic, repeated: the guest's NICs in order, parsed into b->nics[] whose
 * strings point into b->text[]. */
static int
vm_nics(struct cli *cli, const struct cmd_entry *cmd, struct args *args,
    struct cli_vm_args *b, Haven__VmConfig *config)
{
	const char		*arg;
	char			 err[256];
	size_t			 i, n;

	config->nics = b->nics;
	for (n = 0; (arg = args_value(args, "nic", (int)n)) != NULL; n++) {
		if (n == NIC_MAX) {
			cli_usage_error(cli, cmd, "at most %d NICs", NIC_MAX);
			return -1;
		}
		if (strlen(arg) >= sizeof b->text[n]) {
			cli_usage_error(cli, cmd, "bad --nic '%.40s...': too "
			    "long", arg);
			return -1;
		}
		snprintf(b->text[n], sizeof b->text[n], "%s", arg);
		if (cli_parse_nic(b->text[n], &b->nic[n], b->mac[n], err,
		    sizeof err) == -1) {
			cli_usage_error(cli, cmd, "bad --nic '%s': %s", arg, err);
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (*b->nic[n].mac != '\0' &&
			    strcmp(b->nic[i].mac, b->nic[n].mac) == 0) {
				cli_usage_error(cli, cmd, "MAC %s given to NICs "
				    "%zu and %zu; give each its own",
				    b->nic[n].mac, i, n);
				return -1;
			}
		}
		b->nics[n] = &b->nic[n];
		config->n_nics = n + 1;
	}
	return 0;
}

/*
 * The VM options vm create and vm set share, those given, into config
 * (whose arrays point into b); the caller sets defaults first. -1 after a
 * usage message.
 */

/* --firmware, --cdrom, --boot: how the VM boots (proto/boot.c). */
static int
vm_boot(struct cli *cli, const struct cmd_entry *cmd, struct args *args,
    Haven__VmConfig *config)
{
	enum boot_device	 order[BOOT_NDEVICES];
	const char		*arg;

	if ((arg = args_get(args, "firmware")) != NULL) {
		if (*arg == '\0' || !boot_firmware_valid(arg)) {
			cli_usage_error(cli, cmd, "bad --firmware '%s': bios or "
			    "uefi", arg);
			return -1;
		}
		config->firmware = (char *)arg;
	}
	if ((arg = args_get(args, "cdrom")) != NULL) {
		/* Read on whichever host runs the VM. */
		if (*arg != '/') {
			cli_usage_error(cli, cmd, "bad --cdrom '%s': an "
			    "absolute path to an ISO, the same on every host "
			    "that may run the VM", arg);
			return -1;
		}
		config->cdrom = (char *)arg;
	}
	if ((arg = args_get(args, "boot")) != NULL) {
		if (*arg == '\0' || boot_order_parse(arg, order) == -1) {
			cli_usage_error(cli, cmd, "bad --boot '%s': disk and "
			    "cdrom in the order they are tried, each at most "
			    "once (e.g. disk,cdrom)", arg);
			return -1;
		}
		config->boot_order = (char *)arg;
	}
	return 0;
}
int
cli_vm_config_parse(struct cli *cli, const struct cmd_entry *cmd,
    struct args *args, struct cli_vm_args *b, Haven__VmConfig *config)
{
	const char		*arg;
	uint64_t		 v;
	int			 isolation;

	config->volumes = b->volumes;
	config->preferred_owners = b->prefer;
	if ((arg = args_get(args, "memory")) != NULL &&
	    cli_parse_memory_mib(arg, &config->memory_mib) == -1) {
		cli_usage_error(cli, cmd, "bad --memory '%s': a size in whole "
		    "MiB (512M, 4G), at least %d MiB", arg,
		    CLI_VM_MIN_MEMORY_MIB);
		return -1;
	}
	if ((arg = args_get(args, "vcpus")) != NULL) {
		if (cli_parse_uint(arg, 1, VM_MAX_VCPUS, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --vcpus '%s': a number "
			    "from 1 to %d", arg, VM_MAX_VCPUS);
			return -1;
		}
		config->vcpus = (uint32_t)v;
	}
	if (vm_volumes(cli, cmd, args, config) == -1)
		return -1;
	if ((arg = args_get(args, "priority")) != NULL &&
	    cli_parse_priority(arg, &config->priority) == -1) {
		cli_usage_error(cli, cmd, "bad --priority '%s': high, medium "
		    "or low", arg);
		return -1;
	}
	if (vm_prefer(cli, cmd, args, config) == -1)
		return -1;
	if ((arg = args_get(args, "anti-affinity")) != NULL) {
		if (*arg == '\0') {
			cli_usage_error(cli, cmd, "empty --anti-affinity");
			return -1;
		}
		config->anti_affinity = (char *)arg;
	}
	if (args_has(args, "failback") > 0)
		config->failback = 1;
	if ((arg = args_get(args, "isolation")) != NULL) {
		if (cli_parse_isolation(arg, &isolation) == -1) {
			cli_usage_error(cli, cmd, "bad --isolation '%s': stop, "
			    "save or leave-running", arg);
			return -1;
		}
		config->isolation_response = (Haven__IsolationResponse)isolation;
	}
	if ((arg = args_get(args, "kernel")) != NULL) {
		/* Read on whichever host runs the VM. */
		if (*arg != '/') {
			cli_usage_error(cli, cmd, "bad --kernel '%s': an "
			    "absolute path, the same on every host that may "
			    "run the VM", arg);
			return -1;
		}
		config->kernel = (char *)arg;
	}
	if ((arg = args_get(args, "initrd")) != NULL) {
		if (*arg != '/') {
			cli_usage_error(cli, cmd, "bad --initrd '%s': an "
			    "absolute path, the same on every host that may "
			    "run the VM", arg);
			return -1;
		}
		config->initrd = (char *)arg;
	}
	if (vm_nics(cli, cmd, args, b, config) == -1)
		return -1;
	if ((arg = args_get(args, "disk-bus")) != NULL &&
	    machine_disk_bus_parse(arg, &config->disk_bus) == -1) {
		cli_usage_error(cli, cmd, "bad --disk-bus '%s': virtio, scsi or "
		    "ide", arg);
		return -1;
	}
	if ((arg = args_get(args, "append")) != NULL) {
		if (*arg == '\0') {
			cli_usage_error(cli, cmd, "empty --append");
			return -1;
		}
		config->kernel_append = (char *)arg;
	}
	if ((arg = args_get(args, "stop-timeout")) != NULL) {
		if (cli_parse_uint(arg, 1, 3600, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --stop-timeout '%s': "
			    "seconds from 1 to 3600", arg);
			return -1;
		}
		config->stop_timeout_s = (uint32_t)v;
	}
	if ((arg = args_get(args, "max-restarts")) != NULL) {
		if (cli_parse_uint(arg, 0, 100, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --max-restarts '%s': a "
			    "number from 0 to 100", arg);
			return -1;
		}
		config->max_restarts = (uint32_t)v;
	}
	if ((arg = args_get(args, "storage-timeout-s")) != NULL) {
		if (cli_parse_uint(arg, 1, 86400, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --storage-timeout-s '%s': "
			    "seconds from 1 to 86400 (without it, the "
			    "cluster's)", arg);
			return -1;
		}
		config->storage_timeout_s = (uint32_t)v;
	}
	if (vm_boot(cli, cmd, args, config) == -1)
		return -1;
	return 0;
}

static int
cmd_vm_create_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_vm_create_entry;
	Haven__VmCreateRequest	 req = HAVEN__VM_CREATE_REQUEST__INIT;
	Haven__VmConfig		 config = HAVEN__VM_CONFIG__INIT;
	struct cli_vm_args	 b;
	char			 done[128], err[160];

	config.vcpus = 1;
	config.max_restarts = 1;
	config.priority = CLI_PRIORITY_MEDIUM;
	if (cli_vm_config_parse(cli, cmd, args, &b, &config) == -1)
		return CLI_EXIT_USAGE;
	config.name = (char *)args_positional(args, 0);
	if (!cli_vm_name_valid(config.name)) {
		cli_usage_error(cli, cmd, "bad VM name '%s': 1 to %d letters, "
		    "digits, '.', '_' or '-', starting with a letter or digit",
		    config.name, CLI_VM_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (args_get(args, "memory") == NULL) {
		cli_usage_error(cli, cmd, "--memory is required");
		return CLI_EXIT_USAGE;
	}
	if (*config.kernel_append != '\0' && *config.kernel == '\0') {
		cli_usage_error(cli, cmd, "--append is the kernel's command "
		    "line and needs --kernel");
		return CLI_EXIT_USAGE;
	}
	if (*config.initrd != '\0' && *config.kernel == '\0') {
		cli_usage_error(cli, cmd, "--initrd is loaded with a kernel "
		    "and needs --kernel");
		return CLI_EXIT_USAGE;
	}
	/* A new VM's disks are on virtio unless told otherwise (0 is IDE:
	 * what a VM created before the option has). */
	if (config.disk_bus == HAVEN__DISK_BUS__DISK_BUS_UNSPECIFIED)
		config.disk_bus = HAVEN__DISK_BUS__DISK_BUS_VIRTIO;
	if (machine_volumes_check(config.name, config.n_volumes,
	    config.disk_bus, err, sizeof err) == -1) {
		cli_usage_error(cli, cmd, "%s", err);
		return CLI_EXIT_USAGE;
	}
	req.config = &config;
	snprintf(done, sizeof done, "created VM %s", config.name);
	return request_ok(cli, FRAME_VM_CREATE, &req.base, done);
}

const struct cmd_entry cmd_vm_create_entry = {
	.name = "vm create",
	.args = {
		.options = (const struct args_option[]) {
			{ "memory", 0, ARGS_VALUE },
			{ "vcpus", 0, ARGS_VALUE },
			{ "volume", 0, ARGS_VALUE },
			{ "priority", 0, ARGS_VALUE },
			{ "prefer", 0, ARGS_VALUE },
			{ "anti-affinity", 0, ARGS_VALUE },
			{ "failback", 0, 0 },
			{ "isolation", 0, ARGS_VALUE },
			{ "kernel", 0, ARGS_VALUE },
			{ "append", 0, ARGS_VALUE },
			{ "initrd", 0, ARGS_VALUE },
			{ "nic", 0, ARGS_VALUE },
			{ "stop-timeout", 0, ARGS_VALUE },
			{ "max-restarts", 0, ARGS_VALUE },
			{ "storage-timeout-s", 0, ARGS_VALUE },
			{ "disk-bus", 0, ARGS_VALUE },
			{ "firmware", 0, ARGS_VALUE },
			{ "cdrom", 0, ARGS_VALUE },
			{ "boot", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	/* Wrapped for 80 columns under "usage: havenctl ". */
	.usage = "NAME --memory SIZE [--vcpus N] [--volume VOL]...\n"
	    "         [--priority high|medium|low] [--prefer NODE_ID]...\n"
	    "         [--anti-affinity CLASS] [--failback]\n"
	    "         [--isolation stop|save|leave-running] [--stop-timeout S]\n"
	    "         [--max-restarts N] [--storage-timeout-s S]\n"
	    "         [--disk-bus virtio|scsi|ide]\n"
	    "         [--nic bridge=BRIDGE[,mac=MAC][,vlan=ID]"
	    "[,model=virtio|e1000]]...\n"
	    "         [--kernel PATH [--append STRING] [--initrd PATH]]\n"
	    "         [--firmware bios|uefi] [--cdrom ISO] [--boot disk,cdrom]"
	    " [--json]",
	.summary = "add a VM to the cluster (stopped; 'vm start' runs it)",
	.exec = cmd_vm_create_exec,
};
