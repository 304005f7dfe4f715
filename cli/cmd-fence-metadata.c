/*
 * havenctl fence metadata AGENT: the options a fence agent takes (its
 * metadata through libstonithd): name, whether required, type and default,
 * description. --xml prints the agent's metadata as it gave it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cli.h"
#include "fence.h"

static int
cmd_fence_metadata_exec(struct cli *cli, struct args *args)
{
	struct fence_agent_param	*p, *params;
	struct json_object		*arr, *o;
	const char			*agent;
	char				 err[256], desc[256], *xml;
	size_t				 n, i;
	int				 want_xml;

	agent = args_positional(args, 0);
	want_xml = args_has(args, "xml");
	if (want_xml && cli->json) {
		cli_usage_error(cli, &cmd_fence_metadata_entry,
		    "--xml and --json exclude each other");
		return CLI_EXIT_USAGE;
	}
	if (fence_stonith_metadata(agent, &xml, err, sizeof err) == -1) {
		cli_error(cli, "%s", err);
		return CLI_EXIT_FAILURE;
	}
	if (want_xml) {
		fputs(xml, stdout);
		free(xml);
		return CLI_EXIT_OK;
	}
	if (fence_stonith_params(xml, &params, &n, desc, sizeof desc, err,
	    sizeof err) == -1) {
		cli_error(cli, "%s: %s", agent, err);
		free(xml);
		return CLI_EXIT_FAILURE;
	}
	free(xml);
	if (cli->json) {
		arr = json_object_new_array();
		for (i = 0; i < n; i++) {
			p = &params[i];
			o = json_object_new_object();
			json_object_object_add(o, "name",
			    json_object_new_string(p->name));
			json_object_object_add(o, "required",
			    json_object_new_boolean(p->required));
			json_object_object_add(o, "deprecated",
			    json_object_new_boolean(p->deprecated));
			json_object_object_add(o, "type",
			    json_object_new_string(p->type));
			json_object_object_add(o, "default", p->default_value[0]
			    != '\0' ? json_object_new_string(p->default_value) :
			    NULL);
			json_object_object_add(o, "description",
			    json_object_new_string(p->description));
			json_object_array_add(arr, o);
		}
		cli_json_print(cli, arr);
	} else {
		printf("%s: %s\n", agent, desc);
		printf("%-26s %-8s %-8s %-12s %s\n", "OPTION", "REQUIRED",
		    "TYPE", "DEFAULT", "DESCRIPTION");
		for (i = 0; i < n; i++) {
			p = &params[i];
			if (p->deprecated)
				continue;
			printf("%-26s %-8s %-8s %-12s %s\n", p->name,
			    p->required ? "yes" : "no", p->type[0] != '\0' ?
			    p->type : "-", p->default_value[0] != '\0' ?
			    p->default_value : "-", p->description);
		}
		printf("(deprecated options not shown; --json lists them; "
		    "haven.conf(5) [fence:NAME] takes these as keys)\n");
	}
	free(params);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_fence_metadata_entry = {
	.name = "fence metadata",
	.args = {
		.options = (const struct args_option[]) {
			{ "xml", 'x', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected one AGENT (see 'havenctl fence agents')",
	},
	.usage = "AGENT [--xml | --json]",
	.summary = "the options a fence agent takes",
	.exec = cmd_fence_metadata_exec,
};
