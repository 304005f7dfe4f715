/*
 * havenctl node drain NODE [--wait]: maintenance mode. The host gets no new
 * VMs and its running VMs move away (live or by quick migration), by
 * priority, a few at a time; `node resume` ends it. With --wait, follow
 * until the host runs no VM, or say which VMs have nowhere to go.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "request.h"

#define DRAIN_WAIT_S	900

/* Once no VM of the host has moved for this long, those left have nowhere
 * to go (no room, anti-affinity, every other host in maintenance). */
#define DRAIN_STUCK_S	15

struct drain_view {
	int	 left;		/* VMs the state still gives to the node */
	int	 moving;	/* of those, in a move right now */
	char	 names[200];	/* the ones not moving */
};

/* What the state says of node's VMs; -1 on error. */
static int
drain_look(struct cli *cli, uint32_t node, struct drain_view *v)
{
	Haven__VmListRequest	 req = HAVEN__VM_LIST_REQUEST__INIT;
	Haven__VmListReply	*r;
	uint16_t		 type;
	size_t			 i, len;
	int			 fd, code = 0;

	memset(v, 0, sizeof *v);
	if ((fd = client_connect(cli)) == -1)
		return -1;
	r = (Haven__VmListReply *)client_request_code(cli, fd, FRAME_VM_LIST,
	    &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->n_vms; i++) {
		const Haven__VmRuntime	*rt = r->vms[i]->runtime;

		if (rt == NULL || rt->owner != node ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED ||
		    rt->phase == HAVEN__VM_PHASE__VM_PHASE_FAILED)
			continue;
		v->left++;
		if (rt->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
			v->moving++;
			continue;
		}
		len = strlen(v->names);
		if (len + 4 < sizeof v->names)
			snprintf(v->names + len, sizeof v->names - len, "%s%s",
			    len ? ", " : "", r->vms[i]->config->name);
	}
	message_free(&r->base);
	return 0;
}

static int
cmd_node_drain_exec(struct cli *cli, struct args *args)
{
	Haven__HostMaintenance	 req = HAVEN__HOST_MAINTENANCE__INIT;
	const char		*node;
	char			 done[160];
	struct drain_view	 v;
	time_t			 t0, still;
	int			 wait, rc, last = -1;

	node = args_positional(args, 0);
	if (request_node_id(cli, node, &req.node_id) == -1)
		return CLI_EXIT_FAILURE;
	wait = args_has(args, "wait");
	req.maintenance = 1;
	snprintf(done, sizeof done, "node %u draining: no new VMs; its VMs "
	    "move away ('havenctl node resume %s' ends it)", req.node_id, node);
	if ((rc = request_ok(cli, FRAME_NODE_MAINTENANCE, &req.base,
	    done)) != CLI_EXIT_OK || !wait)
		return rc;
	t0 = still = time(NULL);
	for (;;) {
		if (drain_look(cli, req.node_id, &v) == -1)
			return CLI_EXIT_FAILURE;
		if (v.left == 0)
			break;
		if (v.left != last || v.moving > 0)
			still = time(NULL);
		if (v.left != last && !cli->json && !cli->quiet)
			printf("  %ld s: %d VM%s still on node %u\n",
			    (long)(time(NULL) - t0), v.left, v.left == 1 ? "" :
			    "s", req.node_id);
		last = v.left;
		if (time(NULL) - still >= DRAIN_STUCK_S) {
			cli_error(cli, "node %u cannot be drained: %s ha%s "
			    "nowhere to go (no other host has room for it or "
			    "allows it: memory, anti-affinity, maintenance); "
			    "it keeps running there and leaves once a host can "
			    "take it (add a host, or stop or move other VMs). "
			    "'havenctl node resume %s' ends the maintenance",
			    req.node_id, v.names, v.left == 1 ? "s" : "ve",
			    node);
			return CLI_EXIT_FAILURE;
		}
		if (time(NULL) - t0 > DRAIN_WAIT_S) {
			cli_error(cli, "node %u still runs %d VMs after %d s; "
			    "'havenctl vm list' shows them", req.node_id,
			    v.left, DRAIN_WAIT_S);
			return CLI_EXIT_FAILURE;
		}
		usleep(200000);
	}
	if (!cli->json && !cli->quiet)
		printf("node %u is drained: it runs no VM\n", req.node_id);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_node_drain_entry = {
	.name = "node drain",
	.args = {
		.options = (const struct args_option[]) {
			{ "wait", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "one node (id or name) expected",
	},
	.usage = "[--wait] [--json] NODE",
	.summary = "maintenance: no new VMs; move the host's VMs away",
	.exec = cmd_node_drain_exec,
};
