/*
 * havenctl vm stop NAME: stop a VM: the host that runs it shuts it down.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_stop_exec(struct cli *cli, struct args *args)
{
	return request_vm_change(cli, &cmd_vm_stop_entry, args,
	    FRAME_VM_STOP, "stopped");
}

const struct cmd_entry cmd_vm_stop_entry = {
	.name = "vm stop",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "[--json] NAME",
	.summary = "stop a VM: the host that runs it shuts it down",
	.exec = cmd_vm_stop_exec,
};
