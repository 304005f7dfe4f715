/*
 * havenctl cluster show: the cluster-wide settings.
 */
#include <stdio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster.h"

static int
cmd_cluster_show_exec(struct cli *cli, int argc, char **argv)
{
	Haven__SettingsGetRequest	 req = HAVEN__SETTINGS_GET_REQUEST__INIT;
	Haven__ClusterSettings		*r;
	struct json_object		*o;
	uint16_t			 type;
	int				 fd, code = 0;

	if (argc > 1 && !(argc == 2 && cli->json)) {
		cli_usage_error(cli, &cmd_cluster_show_entry,
		    "no arguments expected");
		return CLI_EXIT_USAGE;
	}
	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	r = (Haven__ClusterSettings *)client_request_code(cli, fd,
	    FRAME_SETTINGS_GET, &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return client_error_exit(type, code);
	if (cli->json) {
		o = json_object_new_object();
		json_object_object_add(o, "host_failures_to_tolerate",
		    json_object_new_int64(r->host_failures_to_tolerate));
		cli_json_print(cli, o);
	} else if (r->host_failures_to_tolerate == 0) {
		printf("host failures to tolerate: 0 (admission control off)\n");
	} else {
		printf("host failures to tolerate: %u (a VM may start only if "
		    "the VMs meant to run fit after that many hosts fail)\n",
		    r->host_failures_to_tolerate);
	}
	message_free(&r->base);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_cluster_show_entry = {
	.name = "cluster show",
	.usage = "[--json]",
	.summary = "the cluster-wide settings",
	.exec = cmd_cluster_show_exec,
};
