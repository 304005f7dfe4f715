/*
 * havenctl vm delete NAME: remove a VM from the cluster.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_delete_exec(struct cli *cli, int argc, char **argv)
{
	return request_vm_change(cli, &cmd_vm_delete_entry, argc, argv,
	    FRAME_VM_DELETE, "deleted");
}

const struct cmd_entry cmd_vm_delete_entry = {
	.name = "vm delete",
	.usage = "[--json] NAME",
	.summary = "remove a VM from the cluster",
	.exec = cmd_vm_delete_exec,
};
