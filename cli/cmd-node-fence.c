/*
 * havenctl node fence NODE: fence a host by hand (a host that is hung but
 * still in corosync's membership, say). It is marked lost, the coordinator
 * fences it with its fence levels, and its VMs recover on the others; a
 * running havend there stops its VMs and itself. `fence history` shows how
 * it went. NODE is a node id or a host name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

/* A node id, or the id of the host named so in the state. */
static int
node_id_of(struct cli *cli, const char *arg, uint32_t *id)
{
	Haven__NodeListRequest	 req = HAVEN__NODE_LIST_REQUEST__INIT;
	Haven__NodeListReply	*r;
	uint64_t		 v;
	uint16_t		 type;
	size_t			 i;
	int			 fd, code = 0, found = 0;

	if (cli_parse_uint(arg, 1, UINT32_MAX, &v) == 0) {
		*id = (uint32_t)v;
		return 0;
	}
	if ((fd = client_connect(cli)) == -1)
		return -1;
	r = (Haven__NodeListReply *)client_request_code(cli, fd,
	    FRAME_NODE_LIST, &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->n_hosts; i++) {
		if (r->hosts[i]->config != NULL &&
		    strcmp(r->hosts[i]->config->name, arg) == 0) {
			*id = r->hosts[i]->config->node_id;
			found = 1;
		}
	}
	message_free(&r->base);
	if (!found)
		cli_error(cli, "no host named '%s'; 'havenctl node list' shows "
		    "them", arg);
	return found ? 0 : -1;
}

static int
cmd_node_fence_exec(struct cli *cli, int argc, char **argv)
{
	Haven__NodeFenceRequest	 req = HAVEN__NODE_FENCE_REQUEST__INIT;
	char			 done[160];
	int			 i, n = 0;
	const char		*node = NULL;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (argv[i][0] == '-') {
			cli_usage_error(cli, &cmd_node_fence_entry,
			    "unknown option %s", argv[i]);
			return CLI_EXIT_USAGE;
		} else {
			node = argv[i];
			n++;
		}
	}
	if (n != 1) {
		cli_usage_error(cli, &cmd_node_fence_entry,
		    "one node (id or name) expected");
		return CLI_EXIT_USAGE;
	}
	if (node_id_of(cli, node, &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	snprintf(done, sizeof done, "node %u marked lost: the coordinator "
	    "fences it ('havenctl fence history' shows the outcome)",
	    req.node_id);
	return cluster_ok_request(cli, FRAME_NODE_FENCE, &req.base, done);
}

const struct cmd_entry cmd_node_fence_entry = {
	.name = "node fence",
	.usage = "[--json] NODE",
	.summary = "fence a host by hand; its VMs recover elsewhere",
	.exec = cmd_node_fence_exec,
};
