/*
 * havenctl fence history: every recorded attempt to fence a host (bounded,
 * oldest first): when, which host, by which coordinator, the level that
 * decided and what it said.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "request.h"

static const char *
host_name(const Haven__FenceHistoryReply *r, uint32_t id)
{
	size_t	 i;

	for (i = 0; i < r->n_hosts; i++)
		if (r->hosts[i]->config != NULL &&
		    r->hosts[i]->config->node_id == id)
			return r->hosts[i]->config->name;
	return "?";
}

static int
cmd_fence_history_exec(struct cli *cli, struct args *args)
{
	Haven__FenceHistoryRequest	 req = HAVEN__FENCE_HISTORY_REQUEST__INIT;
	Haven__FenceHistoryReply	*r;
	struct json_object		*arr, *o;
	char				 when[64];
	uint16_t			 type;
	size_t				 i;
	time_t				 t;
	int				 fd, code = 0;

	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	r = (Haven__FenceHistoryReply *)client_request_code(cli, fd,
	    FRAME_FENCE_HISTORY, &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return client_error_exit(type, code);
	if (cli->json) {
		arr = json_object_new_array();
		for (i = 0; i < r->n_records; i++) {
			const Haven__FenceRecord	*f = r->records[i];

			o = json_object_new_object();
			json_object_object_add(o, "time_us",
			    json_object_new_uint64(f->timestamp_us));
			json_object_object_add(o, "node_id",
			    json_object_new_int64(f->node_id));
			json_object_object_add(o, "host", json_object_new_string(
			    host_name(r, f->node_id)));
			json_object_object_add(o, "result", json_object_new_string(
			    cli_fence_name(f->status)));
			json_object_object_add(o, "level",
			    json_object_new_string(f->level));
			json_object_object_add(o, "by",
			    json_object_new_int64(f->by));
			json_object_object_add(o, "detail",
			    json_object_new_string(f->detail));
			json_object_array_add(arr, o);
		}
		cli_json_print(cli, arr);
	} else {
		printf("%-24s %-12s %-7s %-10s %-3s %s\n", "TIME", "HOST",
		    "RESULT", "LEVEL", "BY", "DETAIL");
		for (i = 0; i < r->n_records; i++) {
			const Haven__FenceRecord	*f = r->records[i];
			struct tm			 tm;

			t = (time_t)(f->timestamp_us / 1000000);
			localtime_r(&t, &tm);
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			printf("%s.%03u  %-12s %-7s %-10s %-3u %s\n", when,
			    (unsigned)(f->timestamp_us / 1000 % 1000),
			    host_name(r, f->node_id), cli_fence_name(f->status),
			    f->level, f->by, f->detail);
		}
		if (r->n_records == 0)
			printf("(no host has been fenced)\n");
	}
	message_free(&r->base);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_fence_history_entry = {
	.name = "fence history",
	.usage = "[--json]",
	.summary = "every recorded fencing: when, whom, which level, outcome",
	.exec = cmd_fence_history_exec,
};
