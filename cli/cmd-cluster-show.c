/*
 * havenctl cluster show: the cluster-wide settings (with their defaults).
 */
#include <stdio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "request.h"
#include "tree.h"

static int
cmd_cluster_show_exec(struct cli *cli, struct args *args)
{
	Haven__SettingsGetRequest	 req = HAVEN__SETTINGS_GET_REQUEST__INIT;
	Haven__ClusterSettings		*r;
	struct json_object		*o;
	char				 line[256];
	uint16_t			 type;
	int				 fd, code = 0;

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
		json_object_object_add(o, "live_downtime_ms",
		    json_object_new_int64(CLUSTER_LIVE_DOWNTIME_MS(r)));
		json_object_object_add(o, "live_bandwidth_mib",
		    json_object_new_int64(r->live_bandwidth_mib));
		json_object_object_add(o, "live_converge_s",
		    json_object_new_int64(CLUSTER_LIVE_CONVERGE_S(r)));
		json_object_object_add(o, "drain_live_priority",
		    CLUSTER_DRAIN_LIVE_PRIORITY(r) == CLUSTER_DRAIN_LIVE_NONE ?
		    NULL : json_object_new_int64(CLUSTER_DRAIN_LIVE_PRIORITY(r)));
		json_object_object_add(o, "storage_timeout_s",
		    json_object_new_int64(CLUSTER_STORAGE_TIMEOUT_S(r)));
		/* 0: never */
		json_object_object_add(o, "storage_giveup_s",
		    json_object_new_int64(CLUSTER_STORAGE_GIVEUP_S(r)));
		json_object_object_add(o, "cpu_model",
		    json_object_new_string(machine_cpu_model(r)));
		/* 0: a havend that does not say (before issue 17) */
		json_object_object_add(o, "protocol",
		    json_object_new_int64(r->protocol));
		cli_json_print(cli, o);
	} else {
		if (r->host_failures_to_tolerate == 0)
			printf("host failures to tolerate: 0 (admission control "
			    "off)\n");
		else
			printf("host failures to tolerate: %u (a VM may start "
			    "only if the VMs meant to run fit after that many "
			    "hosts fail)\n", r->host_failures_to_tolerate);
		printf("live migration: downtime limit %u ms, bandwidth %s%.0u%s, "
		    "falls back to quick migration after %u s\n",
		    CLUSTER_LIVE_DOWNTIME_MS(r), r->live_bandwidth_mib ? "" :
		    "unlimited", r->live_bandwidth_mib,
		    r->live_bandwidth_mib ? " MiB/s" : "",
		    CLUSTER_LIVE_CONVERGE_S(r));
		if (CLUSTER_DRAIN_LIVE_PRIORITY(r) == CLUSTER_DRAIN_LIVE_NONE)
			printf("drains move every VM by quick migration\n");
		else
			printf("drains move VMs of priority %u and up live, the "
			    "others by quick migration\n",
			    CLUSTER_DRAIN_LIVE_PRIORITY(r));
		printf("storage timeout: %u s (a VM whose host lost its pool "
		    "that long, while another host reaches it, moves)\n",
		    CLUSTER_STORAGE_TIMEOUT_S(r));
		cli_format_giveup_setting(CLUSTER_STORAGE_GIVEUP_S(r), line,
		    sizeof line);
		printf("storage giveup: %s\n", line);
		printf("cpu model: %s%s (VMs take it at their next cold "
		    "start)\n", machine_cpu_model(r), tree_empty(r->cpu_model) ?
		    ", Haven's default" : "");
		/* 0: a havend from before the announcement (issue 17) */
		if (r->protocol != 0)
			printf("protocol: %u (the lowest its members' havends "
			    "speak; this havenctl's is %u)\n", r->protocol,
			    HAVEN_PROTOCOL);
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
