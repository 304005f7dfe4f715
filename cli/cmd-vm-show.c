/*
 * havenctl vm show NAME: every field of one VM, its configuration (NICs
 * included) and what the cluster is doing with it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "tree.h"
#include "request.h"

/* What vm set changed in the machine, for the VM's next start. */
static void
show_next_start(const Haven__VmConfig *c, const Haven__VmConfig *p)
{
	char	 buf[32];
	size_t	 i;

	cli_format_mib(p->memory_mib, buf, sizeof buf);
	printf("at next start:    memory %s, vcpus %" PRIu32 ", volumes",
	    buf, p->vcpus);
	for (i = 0; i < p->n_volumes; i++)
		printf(" %s", p->volumes[i]);
	printf("%s, %zu NIC%s", p->n_volumes == 0 ? " -" : "", p->n_nics,
	    p->n_nics == 1 ? "" : "s");
	for (i = 0; i < p->n_nics; i++)
		printf("%s%s/%s", i == 0 ? " (" : ", ", p->nics[i]->bridge,
		    p->nics[i]->mac);
	printf("%s", p->n_nics > 0 ? ")" : "");
	if (strcmp(c->kernel, p->kernel) != 0 ||
	    strcmp(c->kernel_append, p->kernel_append) != 0 ||
	    strcmp(c->initrd, p->initrd) != 0)
		printf(", kernel %s", *p->kernel != '\0' ? p->kernel : "-");
	if (c->disk_bus != p->disk_bus)
		printf(", disk bus %s", machine_disk_bus_name(p->disk_bus));
	if (strcmp(boot_firmware_name(c->firmware),
	    boot_firmware_name(p->firmware)) != 0)
		printf(", firmware %s", boot_firmware_name(p->firmware));
	if (strcmp(c->cdrom, p->cdrom) != 0)
		printf(", cdrom %s", *p->cdrom != '\0' ? p->cdrom : "-");
	if (strcmp(c->boot_order, p->boot_order) != 0)
		printf(", boot %s", *p->boot_order != '\0' ? p->boot_order :
		    "-");
	printf("\n");
}

static void
show_vm(const Haven__Vm *vm)
{
	static const Haven__VmConfig	 no_config = HAVEN__VM_CONFIG__INIT;
	static const Haven__VmRuntime	 no_runtime = HAVEN__VM_RUNTIME__INIT;
	const Haven__VmConfig		*c = vm->config != NULL ? vm->config :
					    &no_config;
	const Haven__VmRuntime		*rt = vm->runtime != NULL ?
					    vm->runtime : &no_runtime;
	const char			*prio;
	char				 buf[32], why[400];
	size_t				 i;

	printf("name:             %s\n", c->name);
	printf("uuid:             %s\n", c->uuid != NULL && *c->uuid != '\0' ?
	    c->uuid : "-");
	printf("state:            %s\n", cli_desired_name(rt->desired));
	printf("phase:            %s\n", cli_phase_name(rt->phase));
	if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
		cli_format_paused(rt, why, sizeof why);
		printf("paused:           %s\n", why);
	}
	if (rt->owner != 0)
		printf("owner:            node %" PRIu32 "\n", rt->owner);
	else
		printf("owner:            -\n");
	if (tree_move(rt)->to != 0)
		printf("moving:           to node %" PRIu32 " (%s migration%s%s)\n",
		    tree_move(rt)->to, rt->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_MIGRATING || (!tree_move(rt)->quick &&
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING) ? "live" :
		    "quick", *tree_move(rt)->live_endpoint ? "; the target listens at " :
		    "", tree_move(rt)->live_endpoint);
	printf("generation:       %" PRIu64 "\n", rt->generation);
	printf("restarts:         %" PRIu32 "\n", rt->restarts);
	cli_format_mib(c->memory_mib, buf, sizeof buf);
	printf("memory:           %s\n", buf);
	printf("vcpus:            %" PRIu32 "\n", c->vcpus);
	prio = cli_priority_name(c->priority, buf, sizeof buf);
	if (prio == buf)
		printf("priority:         %s\n", prio);
	else
		printf("priority:         %s (%" PRIu32 ")\n", prio,
		    c->priority);
	printf("disk bus:         %s%s\n", machine_disk_bus_name(c->disk_bus),
	    c->disk_bus == 0 ? " (created before the choice)" : "");
	printf("machine type:     %s\n", !tree_empty(c->machine_type) ?
	    c->machine_type : "pc (not pinned: created before)");
	printf("cpu model:        %s\n", !tree_empty(c->cpu_model) ?
	    c->cpu_model : "the cluster's at its next cold start");
	printf("volumes:         ");
	for (i = 0; i < c->n_volumes; i++)
		printf(" %s", c->volumes[i]);
	printf("%s\npreferred nodes: ", c->n_volumes == 0 ? " -" : "");
	for (i = 0; i < c->n_preferred_owners; i++)
		printf(" %" PRIu32, c->preferred_owners[i]);
	printf("%s\n", c->n_preferred_owners == 0 ? " -" : "");
	printf("anti-affinity:    %s\n", c->anti_affinity != NULL &&
	    *c->anti_affinity != '\0' ? c->anti_affinity : "-");
	printf("failback:         %s\n", c->failback ? "yes" : "no");
	printf("isolation:        %s\n",
	    cli_isolation_name(c->isolation_response));
	printf("max restarts:     %" PRIu32 " in place, then another host\n",
	    c->max_restarts);
	printf("stop timeout:     %u s\n", c->stop_timeout_s ?
	    c->stop_timeout_s : 30);
	if (c->storage_timeout_s != 0)
		printf("storage timeout:  %u s\n", c->storage_timeout_s);
	else
		printf("storage timeout:  the cluster's (havenctl cluster "
		    "show)\n");
	cli_format_giveup(rt, why, sizeof why);
	if (*why != '\0')
		printf("storage giveup:   %s\n", why);
	if (c->kernel != NULL && *c->kernel != '\0')
		printf("kernel:           %s%s%s\n", c->kernel,
		    *c->kernel_append ? " " : "", c->kernel_append);
	if (c->initrd != NULL && *c->initrd != '\0')
		printf("initrd:           %s\n", c->initrd);
	printf("firmware:         %s\n", boot_firmware_name(c->firmware));
	if (c->cdrom != NULL && *c->cdrom != '\0')
		printf("cdrom:            %s\n", c->cdrom);
	if (c->boot_order != NULL && *c->boot_order != '\0')
		printf("boot order:       %s\n", c->boot_order);
	if (c->n_nics == 0)
		printf("nics:             -\n");
	for (i = 0; i < c->n_nics; i++) {
		const Haven__Nic	*nic = c->nics[i];

		printf("nic %zu:            bridge %s, mac %s, ", i, nic->bridge,
		    nic->mac);
		if (nic->vlan != 0)
			printf("vlan %" PRIu32, nic->vlan);
		else
			printf("untagged");
		printf(", %s\n", nic_model_name(nic->model));
	}
	if (vm->pending != NULL)
		show_next_start(c, vm->pending);
}

static int
cmd_vm_show_exec(struct cli *cli, struct args *args)
{
	Haven__VmNameRequest	 req = HAVEN__VM_NAME_REQUEST__INIT;
	Haven__VmListReply	*r;
	const char		*name;
	int			 rc;

	if (request_vm_name(cli, &cmd_vm_show_entry, args, &name) == -1)
		return CLI_EXIT_USAGE;
	req.name = (char *)name;
	r = (Haven__VmListReply *)client_call(cli, FRAME_VM_SHOW, &req.base,
	    FRAME_VM_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (r->n_vms != 1) {
		cli_error(cli, "havend sent %zu VMs for 'vm show %s', expected "
		    "one", r->n_vms, name);
		rc = CLI_EXIT_FAILURE;
	} else if (cli->json) {
		if (cli_json_print(cli, request_vm_json(r->vms[0])) == -1)
			rc = CLI_EXIT_FAILURE;
	} else
		show_vm(r->vms[0]);
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_vm_show_entry = {
	.name = "vm show",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "[--json] NAME",
	.summary = "every field of one VM",
	.exec = cmd_vm_show_exec,
};
