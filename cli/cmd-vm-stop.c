/*
 * havenctl vm stop NAME: stop a VM: the host that runs it shuts it down.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_stop_exec(struct cli *cli, int argc, char **argv)
{
	return request_vm_change(cli, &cmd_vm_stop_entry, argc, argv,
	    FRAME_VM_STOP, "stopped");
}

const struct cmd_entry cmd_vm_stop_entry = {
	.name = "vm stop",
	.usage = "[--json] NAME",
	.summary = "stop a VM: the host that runs it shuts it down",
	.exec = cmd_vm_stop_exec,
};
