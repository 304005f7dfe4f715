/*
 * havenctl node drain NODE [--wait]: maintenance mode. The host gets no new
 * VMs and its running VMs move away by quick migration, by priority, a few
 * at a time; `node resume` ends it. With --wait, follow until the host
 * runs no VM.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

#define DRAIN_WAIT_S	900

/* How many VMs the state still gives to node; -1 on error. */
static int
drain_left(struct cli *cli, uint32_t node)
{
	Haven__VmListRequest	 req = HAVEN__VM_LIST_REQUEST__INIT;
	Haven__VmListReply	*r;
	uint16_t		 type;
	size_t			 i;
	int			 fd, code = 0, n = 0;

	if ((fd = client_connect(cli)) == -1)
		return -1;
	r = (Haven__VmListReply *)client_request_code(cli, fd, FRAME_VM_LIST,
	    &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->n_vms; i++) {
		const Haven__VmRuntime	*rt = r->vms[i]->runtime;

		if (rt != NULL && rt->owner == node &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
			n++;
	}
	message_free(&r->base);
	return n;
}

static int
cmd_node_drain_exec(struct cli *cli, int argc, char **argv)
{
	Haven__HostMaintenance	 req =
	    HAVEN__HOST_MAINTENANCE__INIT;
	static const char *const	 flags[] = { "--wait" };
	const char			*node;
	char				 done[160];
	time_t				 t0;
	int				 set[1] = { 0 }, wait, left, rc, last = -1;

	if ((rc = cluster_node_args(cli, &cmd_node_drain_entry, argc, argv,
	    flags, set, 1, &req.node_id, &node)) != CLI_EXIT_OK)
		return rc;
	wait = set[0];
	req.maintenance = 1;
	snprintf(done, sizeof done, "node %u draining: no new VMs; its VMs "
	    "move away ('havenctl node resume %s' ends it)", req.node_id, node);
	if ((rc = cluster_ok_request(cli, FRAME_NODE_MAINTENANCE, &req.base,
	    done)) != CLI_EXIT_OK || !wait)
		return rc;
	t0 = time(NULL);
	while ((left = drain_left(cli, req.node_id)) > 0) {
		if (left != last && !cli->json && !cli->quiet)
			printf("  %ld s: %d VM%s still on node %u\n",
			    (long)(time(NULL) - t0), left, left == 1 ? "" : "s",
			    req.node_id);
		last = left;
		if (time(NULL) - t0 > DRAIN_WAIT_S) {
			cli_error(cli, "node %u still runs %d VMs after %d s; "
			    "'havenctl vm list' shows them", req.node_id, left,
			    DRAIN_WAIT_S);
			return CLI_EXIT_FAILURE;
		}
		usleep(200000);
	}
	if (left < 0)
		return CLI_EXIT_FAILURE;
	if (!cli->json && !cli->quiet)
		printf("node %u is drained: it runs no VM\n", req.node_id);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_node_drain_entry = {
	.name = "node drain",
	.usage = "[--wait] [--json] NODE",
	.summary = "maintenance: no new VMs; move the host's VMs away",
	.exec = cmd_node_drain_exec,
};
