/*
 * havenctl pool list: the cluster's pools (iSCSI targets) and how many
 * volumes each holds, as this host's havend knows them.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"

/* The wider of width and s, for a table column. */
static int
column_width(int width, const char *s)
{
	size_t	len = strlen(s);

	return len > (size_t)width ? (int)len : width;
}

/* Its portals, "A,B" (multipath), or its one portal. */
static const char *
pool_portals(const Haven__PoolConfig *p, char *buf, size_t size)
{
	size_t	i, len = 0;

	if (p->n_portals <= 1)
		return p->portal;
	buf[0] = '\0';
	for (i = 0; i < p->n_portals && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		    i > 0 ? "," : "", p->portals[i]);
	return buf;
}

static struct json_object *
pool_json(const Haven__StorageListReply *r, const Haven__PoolConfig *p)
{
	struct json_object	*o, *vols, *v, *ps;
	size_t			 i;

	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "portal", json_object_new_string(p->portal));
	if (p->n_portals > 1) {
		ps = json_object_new_array();
		for (i = 0; i < p->n_portals; i++)
			json_object_array_add(ps,
			    json_object_new_string(p->portals[i]));
		json_object_object_add(o, "portals", ps);
	}
	json_object_object_add(o, "target", json_object_new_string(p->target));
	vols = json_object_new_array();
	for (i = 0; i < r->n_volumes; i++) {
		if (strcmp(r->volumes[i]->pool, p->name) != 0)
			continue;
		v = json_object_new_object();
		json_object_object_add(v, "name",
		    json_object_new_string(r->volumes[i]->name));
		json_object_object_add(v, "lun",
		    json_object_new_int64(r->volumes[i]->lun));
		json_object_object_add(v, "size_bytes",
		    json_object_new_uint64(r->volumes[i]->size_bytes));
		json_object_array_add(vols, v);
	}
	json_object_object_add(o, "volumes", vols);
	return o;
}

static int
cmd_pool_list_exec(struct cli *cli, struct args *args)
{
	Haven__StorageListRequest	 req =
					    HAVEN__STORAGE_LIST_REQUEST__INIT;
	Haven__StorageListReply		*r;
	struct json_object		*a;
	size_t				 i, j, count;
	int				 rc, name_w = 4, portal_w = 6,
					 target_w = 6;
	char				 portals[POOL_MAX_PORTALS * 256];

	r = (Haven__StorageListReply *)client_call(cli, FRAME_STORAGE_LIST,
	    &req.base, FRAME_STORAGE_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		a = json_object_new_array();
		for (i = 0; i < r->n_pools; i++)
			json_object_array_add(a, pool_json(r, r->pools[i]));
		if (cli_json_print(cli, a) == -1)
			rc = CLI_EXIT_FAILURE;
		message_free(&r->base);
		return rc;
	}
	if (r->n_pools == 0) {
		if (!cli->quiet)
			printf("no pools; 'havenctl pool add' adds one\n");
		message_free(&r->base);
		return rc;
	}
	for (i = 0; i < r->n_pools; i++) {
		name_w = column_width(name_w, r->pools[i]->name);
		portal_w = column_width(portal_w, pool_portals(r->pools[i],
		    portals, sizeof portals));
		target_w = column_width(target_w, r->pools[i]->target);
	}
	printf("%-*s %-*s %-*s %s\n", name_w, "NAME", portal_w, "PORTAL",
	    target_w, "TARGET", "VOLUMES");
	for (i = 0; i < r->n_pools; i++) {
		for (j = 0, count = 0; j < r->n_volumes; j++) {
			if (strcmp(r->volumes[j]->pool, r->pools[i]->name) == 0)
				count++;
		}
		printf("%-*s %-*s %-*s %7zu\n", name_w, r->pools[i]->name,
		    portal_w, pool_portals(r->pools[i], portals,
		    sizeof portals), target_w,
		    r->pools[i]->target, count);
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_pool_list_entry = {
	.name = "pool list",
	.usage = "[--json]",
	.summary = "the cluster's pools: portal, target, number of volumes",
	.exec = cmd_pool_list_exec,
};
