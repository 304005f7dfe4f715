/*
 * havenctl status: this host's havend, its membership and quorum, as
 * corosync tells havend, and every host's storage health, pool by pool, as
 * the replicated state holds it (issue 20).
 */
#include <stdio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "proto.h"

/* "storage": one entry per host, its pools with their verdicts. */
static struct json_object *
status_storage_json(const Haven__StatusReply *r)
{
	struct json_object	*a = json_object_new_array(), *n, *pools, *p;
	const Haven__PoolHealth	*ph;
	size_t			 i, j;

	for (i = 0; i < r->n_hosts; i++) {
		const Haven__Host	*h = r->hosts[i];

		if (h->config == NULL || h->runtime == NULL)
			continue;
		n = json_object_new_object();
		json_object_object_add(n, "node_id",
		    json_object_new_int64(h->config->node_id));
		json_object_object_add(n, "name",
		    json_object_new_string(h->config->name));
		pools = json_object_new_array();
		for (j = 0; j < h->runtime->n_storage; j++) {
			ph = h->runtime->storage[j];
			p = json_object_new_object();
			json_object_object_add(p, "pool",
			    json_object_new_string(ph->pool));
			json_object_object_add(p, "reachable",
			    json_object_new_boolean(ph->reachable));
			json_object_object_add(p, "since_us",
			    json_object_new_uint64(ph->since_us));
			json_object_object_add(p, "for_s", json_object_new_uint64(
			    r->now_us > ph->since_us ? (r->now_us -
			    ph->since_us) / 1000000 : 0));
			cli_pool_paths_json(p, ph);
			json_object_array_add(pools, p);
		}
		json_object_object_add(n, "pools", pools);
		json_object_array_add(a, n);
	}
	return a;
}

/* Multipath (issue 17): how many of a pool's paths answer from a host. */
size_t
cli_pool_paths_up(const Haven__PoolHealth *ph)
{
	size_t	i, n = 0;

	for (i = 0; i < ph->n_path_reachable; i++)
		n += ph->path_reachable[i] != 0;
	return n;
}

/* "paths": [{"portal": ..., "reachable": ...}], for a multipath pool. */
void
cli_pool_paths_json(struct json_object *o, const Haven__PoolHealth *ph)
{
	struct json_object	*a, *p;
	size_t			 i;

	if (ph->n_paths == 0 || ph->n_paths != ph->n_path_reachable)
		return;
	a = json_object_new_array();
	for (i = 0; i < ph->n_paths; i++) {
		p = json_object_new_object();
		json_object_object_add(p, "portal",
		    json_object_new_string(ph->paths[i]));
		json_object_object_add(p, "reachable",
		    json_object_new_boolean(ph->path_reachable[i]));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "paths", a);
}

/* " (paths: 10.77.2.2:3260 up, 10.77.5.2:3260 DOWN)" for status. */
void
cli_pool_paths_text(const Haven__PoolHealth *ph)
{
	size_t	i;

	if (ph->n_paths == 0 || ph->n_paths != ph->n_path_reachable)
		return;
	printf(" (paths:");
	for (i = 0; i < ph->n_paths; i++)
		printf("%s %s %s", i ? "," : "", ph->paths[i],
		    ph->path_reachable[i] ? "up" : "DOWN");
	printf(")");
}

/* "storage:" then a line per host: "  haven-h2 (2): san: reachable". */
static void
status_storage_text(const Haven__StatusReply *r)
{
	const Haven__PoolHealth	*ph;
	char			 line[256];
	size_t			 i, j;

	if (r->n_hosts == 0)
		return;
	printf("storage:\n");
	for (i = 0; i < r->n_hosts; i++) {
		const Haven__Host	*h = r->hosts[i];

		if (h->config == NULL || h->runtime == NULL)
			continue;
		printf("  %s (%u):", h->config->name, h->config->node_id);
		if (h->runtime->n_storage == 0)
			printf(" no pool probed yet");
		for (j = 0; j < h->runtime->n_storage; j++) {
			ph = h->runtime->storage[j];
			cli_pool_health(ph->pool, ph->reachable, ph->since_us,
			    r->now_us, line, sizeof line);
			printf("%s %s", j ? "," : "", line);
			cli_pool_paths_text(ph);
		}
		printf("\n");
	}
}

static int
cmd_status_exec(struct cli *cli, struct args *args)
{
	Haven__StatusRequest	 req = HAVEN__STATUS_REQUEST__INIT;
	Haven__StatusReply	*r;
	struct json_object	*obj, *members;
	char			 line[256];
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
		json_object_object_add(obj, "storage", status_storage_json(r));
		/* The storage policy (issue 20); giveup 0: never. */
		json_object_object_add(obj, "storage_timeout_s",
		    json_object_new_int64(CLUSTER_STORAGE_TIMEOUT_S(r->settings)));
		json_object_object_add(obj, "storage_giveup_s",
		    json_object_new_int64(CLUSTER_STORAGE_GIVEUP_S(r->settings)));
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
		status_storage_text(r);
		cli_format_giveup_setting(CLUSTER_STORAGE_GIVEUP_S(r->settings),
		    line, sizeof line);
		printf("storage policy: a VM moves after %u s when only its "
		    "host lost its pool; giveup %s\n",
		    CLUSTER_STORAGE_TIMEOUT_S(r->settings), line);
	}
	message_free(&r->base);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "[--json]",
	.summary = "this host's havend: membership, quorum, storage health",
	.exec = cmd_status_exec,
};
