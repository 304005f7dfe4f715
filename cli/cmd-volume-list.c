/*
 * havenctl volume list: the cluster's volumes, the pool and LUN each lives
 * on, and its recorded size.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"

static int
cmd_volume_list_exec(struct cli *cli, struct args *args)
{
	Haven__StorageListRequest	 req =
					    HAVEN__STORAGE_LIST_REQUEST__INIT;
	Haven__StorageListReply		*r;
	const Haven__VolumeConfig	*v;
	struct json_object		*a, *o;
	char				 size[32];
	size_t				 i, len;
	int				 rc, name_w = 4, pool_w = 4;

	r = (Haven__StorageListReply *)client_call(cli, FRAME_STORAGE_LIST,
	    &req.base, FRAME_STORAGE_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		a = json_object_new_array();
		for (i = 0; i < r->n_volumes; i++) {
			v = r->volumes[i];
			o = json_object_new_object();
			json_object_object_add(o, "name",
			    json_object_new_string(v->name));
			json_object_object_add(o, "pool",
			    json_object_new_string(v->pool));
			json_object_object_add(o, "lun",
			    json_object_new_int64(v->lun));
			json_object_object_add(o, "size_bytes",
			    json_object_new_uint64(v->size_bytes));
			json_object_array_add(a, o);
		}
		if (cli_json_print(cli, a) == -1)
			rc = CLI_EXIT_FAILURE;
		message_free(&r->base);
		return rc;
	}
	if (r->n_volumes == 0) {
		if (!cli->quiet)
			printf("no volumes; 'havenctl volume add' adds one\n");
		message_free(&r->base);
		return rc;
	}
	for (i = 0; i < r->n_volumes; i++) {
		if ((len = strlen(r->volumes[i]->name)) > (size_t)name_w)
			name_w = (int)len;
		if ((len = strlen(r->volumes[i]->pool)) > (size_t)pool_w)
			pool_w = (int)len;
	}
	printf("%-*s %-*s %5s %10s\n", name_w, "NAME", pool_w, "POOL", "LUN",
	    "SIZE");
	for (i = 0; i < r->n_volumes; i++) {
		v = r->volumes[i];
		if (v->size_bytes != 0)
			cli_format_size(v->size_bytes, size, sizeof size);
		else
			snprintf(size, sizeof size, "-");
		printf("%-*s %-*s %5" PRIu32 " %10s\n", name_w, v->name, pool_w,
		    v->pool, v->lun, size);
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_volume_list_entry = {
	.name = "volume list",
	.usage = "[--json]",
	.summary = "the cluster's volumes: pool, LUN, size",
	.exec = cmd_volume_list_exec,
};
