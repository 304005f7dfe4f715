/*
 * havenctl vm list: every VM in the cluster's state, as this host's havend
 * holds it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"

static int
cmd_vm_list_exec(struct cli *cli, struct args *args)
{
	static const Haven__VmConfig	 no_config = HAVEN__VM_CONFIG__INIT;
	static const Haven__VmRuntime	 no_runtime = HAVEN__VM_RUNTIME__INIT;
	Haven__VmListRequest		 req = HAVEN__VM_LIST_REQUEST__INIT;
	Haven__VmListReply		*r;
	const Haven__VmConfig		*vc;
	const Haven__VmRuntime		*rt;
	struct json_object		*a;
	char				 owner[16], mem[32], prio[16], why[400];
	size_t				 i, len;
	int				 rc, width = 4;

	r = (Haven__VmListReply *)client_call(cli, FRAME_VM_LIST, &req.base,
	    FRAME_VM_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		a = json_object_new_array();
		for (i = 0; i < r->n_vms; i++)
			json_object_array_add(a, request_vm_json(r->vms[i]));
		if (cli_json_print(cli, a) == -1)
			rc = CLI_EXIT_FAILURE;
		message_free(&r->base);
		return rc;
	}
	if (r->n_vms == 0) {
		if (!cli->quiet)
			printf("no VMs; 'havenctl vm create' adds one\n");
		message_free(&r->base);
		return rc;
	}
	for (i = 0; i < r->n_vms; i++) {
		vc = r->vms[i]->config != NULL ? r->vms[i]->config : &no_config;
		if ((len = strlen(vc->name)) > (size_t)width)
			width = (int)len;
	}
	printf("%-*s %-7s %-10s %5s %5s %9s %5s %8s\n", width, "NAME",
	    "STATE", "PHASE", "OWNER", "GEN", "MEMORY", "VCPUS", "PRIORITY");
	for (i = 0; i < r->n_vms; i++) {
		vc = r->vms[i]->config != NULL ? r->vms[i]->config : &no_config;
		rt = r->vms[i]->runtime != NULL ? r->vms[i]->runtime :
		    &no_runtime;
		if (rt->owner != 0)
			snprintf(owner, sizeof owner, "%" PRIu32, rt->owner);
		else
			snprintf(owner, sizeof owner, "-");
		cli_format_mib(vc->memory_mib, mem, sizeof mem);
		printf("%-*s %-7s %-10s %5s %5" PRIu64 " %9s %5" PRIu32
		    " %8s\n", width, vc->name, cli_desired_name(rt->desired),
		    cli_phase_name(rt->phase), owner, rt->generation, mem,
		    vc->vcpus, cli_priority_name(vc->priority, prio,
		    sizeof prio));
		/* A paused VM says why under its line. */
		cli_format_paused(rt, why, sizeof why);
		if (*why != '\0')
			printf("%*s  paused %s\n", width, "", why);
		/* A VM given up for its storage says so until it may start. */
		cli_format_giveup(rt, why, sizeof why);
		if (*why != '\0')
			printf("%*s  given up: %s\n", width, "", why);
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_vm_list_entry = {
	.name = "vm list",
	.usage = "[--json]",
	.summary = "the cluster's VMs: desired state, phase, owner",
	.exec = cmd_vm_list_exec,
};
