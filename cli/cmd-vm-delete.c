/*
 * havenctl vm delete NAME: remove a VM from the cluster.
 * Answered once the change is applied by the cluster.
 */
#include "request.h"

static int
cmd_vm_delete_exec(struct cli *cli, struct args *args)
{
	return request_vm_change(cli, &cmd_vm_delete_entry, args,
	    FRAME_VM_DELETE, "deleted");
}

const struct cmd_entry cmd_vm_delete_entry = {
	.name = "vm delete",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "[--json] NAME",
	.summary = "remove a VM from the cluster",
	.exec = cmd_vm_delete_exec,
};
