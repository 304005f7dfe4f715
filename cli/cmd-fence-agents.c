/*
 * havenctl fence agents: the fence agents installed on this host, as
 * Pacemaker's libstonithd finds them (DESIGN §4); --long adds each one's
 * description from its metadata (it runs every agent once: seconds).
 */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cli.h"
#include "fence.h"

static int
cmd_fence_agents_exec(struct cli *cli, struct args *args)
{
	struct fence_agent_param	*params;
	struct json_object		*arr = NULL, *o;
	char				**names, err[256], desc[256], *xml;
	size_t				 n, nparams, i;
	int				 want_long;

	want_long = args_has(args, "long");
	if (fence_stonith_agents(&names, &n, err, sizeof err) == -1) {
		cli_error(cli, "%s", err);
		return CLI_EXIT_FAILURE;
	}
	if (cli->json)
		arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		desc[0] = '\0';
		if (want_long && fence_stonith_metadata(names[i], &xml, err,
		    sizeof err) == 0) {
			if (fence_stonith_params(xml, &params, &nparams, desc,
			    sizeof desc, err, sizeof err) == 0)
				free(params);
			free(xml);
		}
		if (arr != NULL) {
			o = json_object_new_object();
			json_object_object_add(o, "name",
			    json_object_new_string(names[i]));
			if (want_long)
				json_object_object_add(o, "description",
				    json_object_new_string(desc));
			json_object_array_add(arr, o);
		} else if (want_long)
			printf("%-24s %s\n", names[i], desc);
		else
			printf("%s\n", names[i]);
	}
	fence_stonith_free_names(names, n);
	if (arr != NULL)
		cli_json_print(cli, arr);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_fence_agents_entry = {
	.name = "fence agents",
	.args = {
		.options = (const struct args_option[]) {
			{ "long", 'l', 0 },
			{ NULL, 0, 0 },
		},
	},
	.usage = "[--long] [--json]",
	.summary = "the fence agents installed on this host",
	.exec = cmd_fence_agents_exec,
};
