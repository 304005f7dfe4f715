/*
 * havenctl role list: who holds which role in the cluster.
 */
#include <stdio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "request.h"

static const char *
role_name(Haven__Role r)
{
	switch (r) {
	case HAVEN__ROLE__ROLE_ADMIN:
		return "admin";
	case HAVEN__ROLE__ROLE_OPERATOR:
		return "operator";
	case HAVEN__ROLE__ROLE_VIEWER:
		return "viewer";
	default:
		return "none";
	}
}

static int
cmd_role_list_exec(struct cli *cli, struct args *args)
{
	Haven__RoleListRequest	 req = HAVEN__ROLE_LIST_REQUEST__INIT;
	Haven__RoleListReply	*r;
	struct json_object	*arr, *o, *pats;
	uint16_t		 type;
	size_t			 i, j;
	int			 fd, code = 0;

	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	r = (Haven__RoleListReply *)client_request_code(cli, fd,
	    FRAME_ROLE_LIST, &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return client_error_exit(type, code);
	if (cli->json) {
		arr = json_object_new_array();
		for (i = 0; i < r->n_roles; i++) {
			o = json_object_new_object();
			json_object_object_add(o, "principal",
			    json_object_new_string(r->roles[i]->principal));
			json_object_object_add(o, "role", json_object_new_string(
			    role_name(r->roles[i]->role)));
			pats = json_object_new_array();
			for (j = 0; j < r->roles[i]->n_vm_patterns; j++)
				json_object_array_add(pats, json_object_new_string(
				    r->roles[i]->vm_patterns[j]));
			json_object_object_add(o, "vm_patterns", pats);
			json_object_array_add(arr, o);
		}
		cli_json_print(cli, arr);
	} else {
		printf("%-24s %-9s %s\n", "PRINCIPAL", "ROLE", "VMS");
		for (i = 0; i < r->n_roles; i++) {
			printf("%-24s %-9s", r->roles[i]->principal,
			    role_name(r->roles[i]->role));
			if (r->roles[i]->n_vm_patterns == 0)
				printf(" %s", r->roles[i]->role ==
				    HAVEN__ROLE__ROLE_OPERATOR ? "all" : "-");
			for (j = 0; j < r->roles[i]->n_vm_patterns; j++)
				printf(" %s", r->roles[i]->vm_patterns[j]);
			printf("\n");
		}
		printf("(root is always an admin)\n");
	}
	message_free(&r->base);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_role_list_entry = {
	.name = "role list",
	.usage = "[--json]",
	.summary = "who holds which role in the cluster",
	.exec = cmd_role_list_exec,
};
