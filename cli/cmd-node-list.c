/*
 * havenctl node list: the cluster's hosts, whether each is in this host's
 * quorate membership, their membership, maintenance and fencing state, the
 * replicated protocol each member's havend speaks (rolling upgrade), the
 * bridges each offers to guests and whether each reaches its pools.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"

static int
is_member(const Haven__NodeListReply *r, uint32_t node_id)
{
	size_t	i;

	for (i = 0; i < r->n_members; i++) {
		if (r->members[i] == node_id)
			return 1;
	}
	return 0;
}

/* The BRIDGES column, 15 wide (longer lists push STORAGE right). */
static void
node_list_bridges(const Haven__HostConfig *hc)
{
	char	 list[256];
	size_t	 j, len = 0;

	list[0] = '\0';
	for (j = 0; j < hc->n_vm_bridges && len < sizeof list; j++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
		    j ? "," : "", hc->vm_bridges[j]);
	printf("%-15s ", hc->n_vm_bridges == 0 ? "-" : list);
}

static struct json_object *
node_list_json(const Haven__NodeListReply *r)
{
	static const Haven__HostConfig	 no_config = HAVEN__HOST_CONFIG__INIT;
	static const Haven__HostRuntime	 no_runtime =
					    HAVEN__HOST_RUNTIME__INIT;
	const Haven__HostConfig		*hc;
	const Haven__HostRuntime	*rt;
	struct json_object		*obj, *a, *b, *n;
	size_t				 i, j;

	obj = json_object_new_object();
	json_object_object_add(obj, "quorate",
	    json_object_new_boolean(r->quorate));
	a = json_object_new_array();
	for (i = 0; i < r->n_members; i++)
		json_object_array_add(a, json_object_new_int64(r->members[i]));
	json_object_object_add(obj, "members", a);
	a = json_object_new_array();
	for (i = 0; i < r->n_hosts; i++) {
		hc = r->hosts[i]->config != NULL ? r->hosts[i]->config :
		    &no_config;
		rt = r->hosts[i]->runtime != NULL ? r->hosts[i]->runtime :
		    &no_runtime;
		n = json_object_new_object();
		json_object_object_add(n, "node_id",
		    json_object_new_int64(hc->node_id));
		json_object_object_add(n, "name",
		    json_object_new_string(hc->name));
		json_object_object_add(n, "member",
		    json_object_new_boolean(is_member(r, hc->node_id)));
		json_object_object_add(n, "membership", json_object_new_string(
		    cli_membership_name(rt->membership)));
		json_object_object_add(n, "maintenance",
		    json_object_new_boolean(rt->maintenance));
		json_object_object_add(n, "fence",
		    json_object_new_string(cli_fence_name(rt->fence)));
		/* Rolling upgrade: what its havend announced at the last
		 * sync; 0: not a member (or an answering havend before it). */
		json_object_object_add(n, "protocol",
		    json_object_new_int64(rt->protocol));
		json_object_object_add(n, "memory_mib",
		    json_object_new_uint64(hc->memory_mib));
		json_object_object_add(n, "vcpus",
		    json_object_new_int64(hc->vcpus));
		b = json_object_new_array();
		for (j = 0; j < hc->n_vm_bridges; j++)
			json_object_array_add(b,
			    json_object_new_string(hc->vm_bridges[j]));
		json_object_object_add(n, "vm_bridges", b);
		b = json_object_new_array();
		for (j = 0; j < hc->n_vlan_filtering; j++)
			json_object_array_add(b,
			    json_object_new_string(hc->vlan_filtering[j]));
		json_object_object_add(n, "vlan_filtering", b);
		/* What its QEMU offers (issue 16); empty: not reported. */
		json_object_object_add(n, "qemu_version",
		    json_object_new_string(hc->qemu_version));
		b = json_object_new_array();
		for (j = 0; j < hc->n_machine_types; j++)
			json_object_array_add(b,
			    json_object_new_string(hc->machine_types[j]));
		json_object_object_add(n, "machine_types", b);
		b = json_object_new_array();
		for (j = 0; j < hc->n_cpu_models; j++)
			json_object_array_add(b,
			    json_object_new_string(hc->cpu_models[j]));
		json_object_object_add(n, "cpu_models", b);
		b = json_object_new_array();
		for (j = 0; j < rt->n_storage; j++) {
			struct json_object	*p = json_object_new_object();

			json_object_object_add(p, "pool", json_object_new_string(
			    rt->storage[j]->pool));
			json_object_object_add(p, "reachable",
			    json_object_new_boolean(rt->storage[j]->reachable));
			json_object_object_add(p, "since_us",
			    json_object_new_uint64(rt->storage[j]->since_us));
			cli_pool_paths_json(p, rt->storage[j]);
			json_object_array_add(b, p);
		}
		json_object_object_add(n, "storage", b);
		json_object_array_add(a, n);
	}
	json_object_object_add(obj, "nodes", a);
	return obj;
}

static int
cmd_node_list_exec(struct cli *cli, struct args *args)
{
	static const Haven__HostConfig	 no_config = HAVEN__HOST_CONFIG__INIT;
	static const Haven__HostRuntime	 no_runtime =
					    HAVEN__HOST_RUNTIME__INIT;
	Haven__NodeListRequest		 req = HAVEN__NODE_LIST_REQUEST__INIT;
	Haven__NodeListReply		*r;
	const Haven__HostConfig		*hc;
	const Haven__HostRuntime	*rt;
	char				 mem[32], proto[16];
	size_t				 i, j, len;
	int				 rc, width = 4;

	r = (Haven__NodeListReply *)client_call(cli, FRAME_NODE_LIST,
	    &req.base, FRAME_NODE_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		if (cli_json_print(cli, node_list_json(r)) == -1)
			rc = CLI_EXIT_FAILURE;
		message_free(&r->base);
		return rc;
	}
	printf("quorate: %s\n", r->quorate ? "yes" :
	    "no (changes are refused)");
	if (r->n_hosts == 0) {
		printf("no nodes configured\n");
		message_free(&r->base);
		return rc;
	}
	for (i = 0; i < r->n_hosts; i++) {
		hc = r->hosts[i]->config != NULL ? r->hosts[i]->config :
		    &no_config;
		if ((len = strlen(hc->name)) > (size_t)width)
			width = (int)len;
	}
	printf("%7s %-*s %-6s %-10s %-11s %-7s %5s %9s %-15s %s\n",
	    "NODE ID", width, "NAME", "MEMBER", "MEMBERSHIP", "MAINTENANCE",
	    "FENCE", "PROTO", "MEMORY", "BRIDGES", "STORAGE");
	for (i = 0; i < r->n_hosts; i++) {
		hc = r->hosts[i]->config != NULL ? r->hosts[i]->config :
		    &no_config;
		rt = r->hosts[i]->runtime != NULL ? r->hosts[i]->runtime :
		    &no_runtime;
		cli_format_mib(hc->memory_mib, mem, sizeof mem);
		if (rt->protocol != 0)
			snprintf(proto, sizeof proto, "%u", rt->protocol);
		else
			snprintf(proto, sizeof proto, "-");
		printf("%7" PRIu32 " %-*s %-6s %-10s %-11s %-7s %5s %9s ",
		    hc->node_id, width, hc->name,
		    is_member(r, hc->node_id) ? "yes" : "no",
		    cli_membership_name(rt->membership),
		    rt->maintenance ? "yes" : "no", cli_fence_name(rt->fence),
		    proto, mem);
		/* The bridges it offers to guests' NICs, then its pools. */
		node_list_bridges(hc);
		for (j = 0; j < rt->n_storage; j++) {
			printf("%s%s:%s", j ? "," : "", rt->storage[j]->pool,
			    rt->storage[j]->reachable ? "reachable" :
			    "UNREACHABLE");
			/* Multipath: "(1/2 paths)". */
			if (rt->storage[j]->n_path_reachable > 0)
				printf("(%zu/%zu paths)",
				    cli_pool_paths_up(rt->storage[j]),
				    rt->storage[j]->n_path_reachable);
		}
		printf("%s\n", rt->n_storage == 0 ? "-" : "");
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_node_list_entry = {
	.name = "node list",
	.usage = "[--json]",
	.summary = "the cluster's hosts: membership, maintenance, fencing",
	.exec = cmd_node_list_exec,
};
