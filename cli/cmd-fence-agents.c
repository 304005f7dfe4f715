/*
 * havenctl fence agents: the fence agents installed on this host, as
 * Pacemaker's libstonithd finds them (DESIGN §4); --long adds each one's
 * description from its metadata (it runs every agent once: seconds).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cli.h"
#include "fence.h"

static int
cmd_fence_agents_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct fence_agent_param	*params;
	struct json_object		*arr = NULL, *o;
	char				**names, err[256], desc[256], *xml;
	size_t				 n, nparams, i;
	int				 c, want_long = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "l", options, NULL)) != -1) {
		switch (c) {
		case 'l':
			want_long = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_fence_agents_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_usage_error(cli, &cmd_fence_agents_entry,
		    "no arguments expected");
		return CLI_EXIT_USAGE;
	}
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
	.usage = "[--long] [--json]",
	.summary = "the fence agents installed on this host",
	.exec = cmd_fence_agents_exec,
};
