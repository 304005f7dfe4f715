/*
 * havenctl vm start NAME: start a VM: the cluster places it on a host and boots it.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_start_exec(struct cli *cli, struct args *args)
{
	return request_vm_change(cli, &cmd_vm_start_entry, args,
	    FRAME_VM_START, "started");
}

const struct cmd_entry cmd_vm_start_entry = {
	.name = "vm start",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "[--json] NAME",
	.summary = "start a VM: the cluster places it on a host and boots it",
	.exec = cmd_vm_start_exec,
};
