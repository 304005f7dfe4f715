/*
 * havenctl vm set NAME OPTION...: change a VM's configuration, keeping its
 * UUID. Only the options given change (vm create's, plus --no-... to clear
 * a list or a flag); havend merges them into the VM's configuration. While
 * the VM runs, what its QEMU is made of (memory, vCPUs, volumes, NICs,
 * kernel, disk bus, firmware, cdrom, boot order) takes effect at its next
 * start, and the answer says so.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "request.h"
#include "tree.h"

/* --no-X clears field X: a list (prefer, nic), a class, a flag. */
static const struct {
	const char	*option;
	const char	*field;
} vm_set_clears[] = {
	{ "no-prefer", "prefer" }, { "no-nics", "nic" },
	{ "no-anti-affinity", "anti-affinity" }, { "no-failback", "failback" },
	{ "no-cdrom", "cdrom" },
};
#define VM_SET_NCLEARS	(sizeof vm_set_clears / sizeof vm_set_clears[0])

static int
cmd_vm_set_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_vm_set_entry;
	Haven__VmSetRequest	 req = HAVEN__VM_SET_REQUEST__INIT;
	Haven__VmConfig		 config = HAVEN__VM_CONFIG__INIT;
	struct cli_vm_args	 b;
	char			*fields[TREE_VM_NFIELDS], done[160];
	size_t			 i, j, n = 0;

	config.name = (char *)args_positional(args, 0);
	if (!cli_vm_name_valid(config.name)) {
		cli_usage_error(cli, cmd, "bad VM name '%s'", config.name);
		return CLI_EXIT_USAGE;
	}
	if (cli_vm_config_parse(cli, cmd, args, &b, &config) == -1)
		return CLI_EXIT_USAGE;
	/* The fields are vm create's option names (proto/tree.h). */
	for (i = 0; i < TREE_VM_NFIELDS; i++)
		if (args_has(args, tree_vm_field_names[i]) > 0)
			fields[n++] = (char *)tree_vm_field_names[i];
	for (i = 0; i < VM_SET_NCLEARS; i++) {
		if (args_has(args, vm_set_clears[i].option) == 0)
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(fields[j], vm_set_clears[i].field) == 0)
				break;
		if (j < n) {
			cli_usage_error(cli, cmd, "--%s and --%s together",
			    vm_set_clears[i].option, vm_set_clears[i].field);
			return CLI_EXIT_USAGE;
		}
		/* The field given empty: config holds none of it. */
		fields[n++] = (char *)vm_set_clears[i].field;
	}
	if (n == 0) {
		cli_usage_error(cli, cmd, "nothing to change: give an option "
		    "such as --memory");
		return CLI_EXIT_USAGE;
	}
	req.config = &config;
	req.fields = fields;
	req.n_fields = n;
	snprintf(done, sizeof done, "changed VM %s ('havenctl vm show %s' "
	    "says what waits for its next start)", config.name, config.name);
	return request_ok(cli, FRAME_VM_SET, &req.base, done);
}

const struct cmd_entry cmd_vm_set_entry = {
	.name = "vm set",
	.args = {
		.options = (const struct args_option[]) {
			{ "memory", 0, ARGS_VALUE },
			{ "vcpus", 0, ARGS_VALUE },
			{ "volume", 0, ARGS_VALUE },
			{ "priority", 0, ARGS_VALUE },
			{ "prefer", 0, ARGS_VALUE },
			{ "no-prefer", 0, 0 },
			{ "anti-affinity", 0, ARGS_VALUE },
			{ "no-anti-affinity", 0, 0 },
			{ "failback", 0, 0 },
			{ "no-failback", 0, 0 },
			{ "isolation", 0, ARGS_VALUE },
			{ "kernel", 0, ARGS_VALUE },
			{ "append", 0, ARGS_VALUE },
			{ "initrd", 0, ARGS_VALUE },
			{ "nic", 0, ARGS_VALUE },
			{ "no-nics", 0, 0 },
			{ "stop-timeout", 0, ARGS_VALUE },
			{ "max-restarts", 0, ARGS_VALUE },
			{ "storage-timeout-s", 0, ARGS_VALUE },
			{ "disk-bus", 0, ARGS_VALUE },
			{ "firmware", 0, ARGS_VALUE },
			{ "cdrom", 0, ARGS_VALUE },
			{ "no-cdrom", 0, 0 },
			{ "boot", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	/* Wrapped for 80 columns under "usage: havenctl ". */
	.usage = "NAME [--memory SIZE] [--vcpus N] [--volume VOL]...\n"
	    "         [--priority high|medium|low] [--prefer NODE_ID]... "
	    "[--no-prefer]\n"
	    "         [--anti-affinity CLASS | --no-anti-affinity]\n"
	    "         [--failback | --no-failback]\n"
	    "         [--isolation stop|save|leave-running] [--stop-timeout S]\n"
	    "         [--max-restarts N] [--nic bridge=BRIDGE[,mac=MAC]"
	    "[,vlan=ID][,model=M]]...\n"
	    "         [--no-nics] [--kernel PATH] [--append STRING] "
	    "[--initrd PATH]\n"
	    "         [--storage-timeout-s S] [--firmware bios|uefi]\n"
	    "         [--cdrom ISO | --no-cdrom] [--boot disk,cdrom]\n"
	    "         [--disk-bus virtio|scsi|ide] [--json]",
	.summary = "change a VM's configuration (its machine: at its next "
	    "start)",
	.exec = cmd_vm_set_exec,
};
