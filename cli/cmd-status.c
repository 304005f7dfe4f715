/*
 * havenctl status: this host's havend, its membership and quorum, as
 * corosync tells havend.
 */
#include <stdio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "proto.h"

static int
cmd_status_exec(struct cli *cli, struct args *args)
{
	Haven__StatusRequest	 req = HAVEN__STATUS_REQUEST__INIT;
	Haven__StatusReply	*r;
	struct json_object	*obj, *members;
	uint16_t		 type;
	size_t			 i;
	int			 fd;

	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	r = (Haven__StatusReply *)client_request(cli, fd, FRAME_STATUS_REQUEST,
	    &req.base, &type);
	close(fd);
	if (r == NULL)
		return type == FRAME_ERROR ? CLI_EXIT_DENIED : CLI_EXIT_FAILURE;
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "node",
		    json_object_new_string(r->node_name));
		json_object_object_add(obj, "node_id",
		    json_object_new_int64(r->node_id));
		json_object_object_add(obj, "quorate",
		    json_object_new_boolean(r->quorate));
		members = json_object_new_array();
		for (i = 0; i < r->n_members; i++)
			json_object_array_add(members,
			    json_object_new_int64(r->members[i]));
		json_object_object_add(obj, "members", members);
		json_object_object_add(obj, "version",
		    json_object_new_string(r->version));
		cli_json_print(cli, obj);
	} else {
		printf("node %s (id %u), havend %s\n", r->node_name,
		    r->node_id, r->version);
		printf("cluster: %s, %zu member%s:", r->quorate ? "quorate" :
		    "NOT quorate (changes are refused)", r->n_members,
		    r->n_members == 1 ? "" : "s");
		for (i = 0; i < r->n_members; i++)
			printf(" %u", r->members[i]);
		printf("\n");
	}
	message_free(&r->base);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "[--json]",
	.summary = "this host's havend: membership and quorum",
	.exec = cmd_status_exec,
};
