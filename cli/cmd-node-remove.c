/*
 * havenctl node remove HOST: a host retired from the cluster everywhere:
 * its node dropped from the corosync.conf every member runs (through the
 * replicated state: each havend writes it and corosync reloads, so quorum
 * counts one vote less), and the host from the state (HostRemove). A host
 * that is a member and up is refused unless --force: power it off first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "corosync.h"
#include "request.h"

/* Whether the state knows node id, and as an up member. */
static int
remove_host_state(struct cli *cli, uint32_t id, int *known, int *up)
{
	Haven__NodeListRequest	 req = HAVEN__NODE_LIST_REQUEST__INIT;
	Haven__NodeListReply	*r;
	size_t			 i;
	int			 code;

	*known = *up = 0;
	if ((r = (Haven__NodeListReply *)client_call(cli, FRAME_NODE_LIST,
	    &req.base, FRAME_NODE_LIST_REPLY, &code)) == NULL)
		return -1;
	for (i = 0; i < r->n_hosts; i++) {
		if (r->hosts[i]->config == NULL ||
		    r->hosts[i]->config->node_id != id)
			continue;
		*known = 1;
		*up = r->hosts[i]->runtime != NULL &&
		    r->hosts[i]->runtime->membership ==
		    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
	}
	message_free(&r->base);
	return 0;
}

static int
cmd_node_remove_exec(struct cli *cli, struct args *args)
{
	Haven__SettingsSet	 set = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	 s = HAVEN__CLUSTER_SETTINGS__INIT;
	Haven__HostRemove	 hr = HAVEN__HOST_REMOVE__INIT;
	struct corosync_parsed	*p = xcalloc(1, sizeof *p);
	ProtobufCMessage	*reply;
	const char		*arg = args_positional(args, 0);
	char			*fields[1] = { "corosync_conf" };
	char			*text = NULL, *conf = NULL, err[256], done[200];
	size_t			 i, k;
	uint32_t		 id = 0;
	int			 known, up, code, rc = CLI_EXIT_FAILURE;

	if (join_read_file(COROSYNC_CONF, &text, NULL) == -1 ||
	    corosync_conf_parse(text, p, err, sizeof err) == -1) {
		cli_error(cli, "cannot read this member's %s: %s",
		    COROSYNC_CONF, errno != 0 ? strerror(errno) : err);
		goto out;
	}
	for (i = 0; i < p->conf.nnodes; i++)
		if (strcmp(p->nodes[i].name, arg) == 0)
			id = p->nodes[i].id;
	if (id == 0 && request_node_id(cli, arg, &id) == -1)
		goto out;
	for (k = 0; k < p->conf.nnodes; k++)
		if (p->nodes[k].id == id)
			break;
	if (remove_host_state(cli, id, &known, &up) == -1)
		goto out;
	if (k == p->conf.nnodes && !known) {
		cli_error(cli, "no host %s in corosync.conf or the cluster's "
		    "state", arg);
		goto out;
	}
	if (up && !args_has(args, "force")) {
		cli_error(cli, "node %u is a member and up: power it off (or "
		    "stop corosync and havend there) first, or give --force",
		    id);
		rc = CLI_EXIT_DENIED;
		goto out;
	}
	if (k < p->conf.nnodes && p->conf.nnodes == 1) {
		cli_error(cli, "node %u is the cluster's last host", id);
		goto out;
	}
	/* The state first: it refuses a host that still owns VMs. */
	if (known) {
		hr.node_id = id;
		if ((reply = client_call(cli, FRAME_NODE_REMOVE, &hr.base,
		    FRAME_OK_REPLY, &code)) == NULL) {
			rc = code;
			goto out;
		}
		message_free(reply);
	}
	if (k < p->conf.nnodes) {
		memmove(&p->nodes[k], &p->nodes[k + 1],
		    (p->conf.nnodes - k - 1) * sizeof p->nodes[0]);
		p->conf.nnodes--;
		if ((conf = join_conf_text(&p->conf, err, sizeof err)) ==
		    NULL) {
			cli_error(cli, "%s", err);
			goto out;
		}
		s.corosync_conf = conf;
		set.settings = &s;
		set.fields = fields;
		set.n_fields = 1;
		if ((reply = client_call(cli, FRAME_SETTINGS_SET, &set.base,
		    FRAME_OK_REPLY, &code)) == NULL) {
			rc = code;
			goto out;
		}
		message_free(reply);
	}
	snprintf(done, sizeof done, "node %u removed: %zu hosts in "
	    "corosync.conf on every member, which reloads it", id,
	    p->conf.nnodes);
	if (!cli->quiet && !cli->json)
		printf("%s\n", done);
	rc = CLI_EXIT_OK;
out:
	free(text);
	free(conf);
	free(p);
	return rc;
}

const struct cmd_entry cmd_node_remove_entry = {
	.name = "node remove",
	.args = {
		.options = (const struct args_option[]) {
			{ "force", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "one host (name or node id) expected",
	},
	.usage = "[--force] HOST",
	.summary = "retire a host: out of corosync.conf everywhere and out of "
	    "the state",
	.exec = cmd_node_remove_exec,
};
