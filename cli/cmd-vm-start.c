/*
 * havenctl vm start NAME: start a VM: the cluster places it on a host and boots it.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_start_exec(struct cli *cli, int argc, char **argv)
{
	return request_vm_change(cli, &cmd_vm_start_entry, argc, argv,
	    FRAME_VM_START, "started");
}

const struct cmd_entry cmd_vm_start_entry = {
	.name = "vm start",
	.usage = "[--json] NAME",
	.summary = "start a VM: the cluster places it on a host and boots it",
	.exec = cmd_vm_start_exec,
};
