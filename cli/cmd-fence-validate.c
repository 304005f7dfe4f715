/*
 * havenctl fence validate: reads haven.conf and has each agent of its
 * [fence:NAME] sections (or the one named) check its options with its own
 * validate-all, through libstonithd, {host} and {node} filled in for a
 * sample victim. The storage, pacemaker and watchdog levels are built in:
 * always valid. Exit 0 when all are valid, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "fence.h"

#define VALIDATE_SAMPLE_HOST	"example"
#define VALIDATE_SAMPLE_NODE	1
#define VALIDATE_MAX_ERRORS	16

/* 0 valid, 1 invalid, -1 not asked; detail says what the agent said. */
static int
validate_one(const struct config_fence *f, char *detail, size_t len)
{
	const char	*keys[CONFIG_MAX_OPTIONS];
	const char	*values[CONFIG_MAX_OPTIONS];
	char		 filled[CONFIG_MAX_OPTIONS][1024];
	size_t		 i;
	int		 rc;

	if (f->kind != CONFIG_FENCE_AGENT) {
		snprintf(detail, len, "built in");
		return 0;
	}
	for (i = 0; i < f->noptions; i++) {
		keys[i] = f->options[i].key;
		if (fence_agent_is_secret(keys[i]))
			values[i] = f->options[i].value;
		else if (fence_agent_substitute(f->options[i].value,
		    VALIDATE_SAMPLE_HOST, VALIDATE_SAMPLE_NODE, filled[i],
		    sizeof filled[i]) == -1) {
			snprintf(detail, len, "%s: too long once {host} and "
			    "{node} are filled in", keys[i]);
			return 1;
		} else
			values[i] = filled[i];
	}
	rc = fence_stonith_validate(f->agent, keys, values, f->noptions,
	    detail, len);
	explicit_bzero(filled, sizeof filled);
	return rc;
}

static int
cmd_fence_validate_exec(struct cli *cli, struct args *args)
{
	struct config_error	 errs[VALIDATE_MAX_ERRORS];
	struct json_object	*arr = NULL, *o;
	struct config		*c;
	const struct config_fence *f;
	const char		*path, *name;
	char			 line[512], detail[FENCE_AGENT_DETAIL_MAX];
	size_t			 nerrs, i, checked = 0;
	int			 rc, failed = 0;

	if ((path = args_get(args, "config")) == NULL)
		path = CONFIG_PATH;
	name = args_positional(args, 0);
	if ((c = calloc(1, sizeof *c)) == NULL)
		return CLI_EXIT_FAILURE;
	if (config_parse_file(path, c, errs, VALIDATE_MAX_ERRORS, &nerrs) ==
	    -1) {
		for (i = 0; i < nerrs && i < VALIDATE_MAX_ERRORS; i++) {
			config_error_format(&errs[i], path, line, sizeof line);
			cli_error(cli, "%s", line);
		}
		config_wipe(c);
		free(c);
		return CLI_EXIT_FAILURE;
	}
	if (cli->json)
		arr = json_object_new_array();
	for (i = 0; i < c->nfences; i++) {
		f = &c->fences[i];
		if (name != NULL && strcmp(f->name, name) != 0)
			continue;
		checked++;
		rc = validate_one(f, detail, sizeof detail);
		if (rc != 0)
			failed++;
		if (arr != NULL) {
			o = json_object_new_object();
			json_object_object_add(o, "name",
			    json_object_new_string(f->name));
			json_object_object_add(o, "level",
			    json_object_new_int((int)f->level));
			json_object_object_add(o, "agent",
			    json_object_new_string(f->agent));
			json_object_object_add(o, "builtin",
			    json_object_new_boolean(f->kind !=
			    CONFIG_FENCE_AGENT));
			json_object_object_add(o, "valid",
			    json_object_new_boolean(rc == 0));
			json_object_object_add(o, "detail",
			    json_object_new_string(detail));
			json_object_array_add(arr, o);
			continue;
		}
		snprintf(line, sizeof line, "[fence:%s]", f->name);
		if (rc == 0 && f->kind != CONFIG_FENCE_AGENT)
			printf("%-20s level %-2u %-16s ok (built in)\n", line,
			    f->level, f->agent);
		else if (rc == 0)
			printf("%-20s level %-2u %-16s ok%s%s\n", line,
			    f->level, f->agent, detail[0] != '\0' ?
			    "; warning: " : "", detail);
		else
			printf("%-20s level %-2u %-16s %s: %s\n", line,
			    f->level, f->agent, rc == 1 ? "invalid" :
			    "not checked", detail);
	}
	if (name != NULL && checked == 0) {
		if (arr != NULL)
			json_object_put(arr);
		cli_error(cli, "%s has no [fence:%s] section", path, name);
		config_wipe(c);
		free(c);
		return CLI_EXIT_FAILURE;
	}
	if (arr != NULL)
		cli_json_print(cli, arr);
	config_wipe(c);
	free(c);
	return failed == 0 ? CLI_EXIT_OK : CLI_EXIT_PROBLEMS;
}

const struct cmd_entry cmd_fence_validate_entry = {
	.name = "fence validate",
	.args = {
		.options = (const struct args_option[]) {
			{ "config", 'c', ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 1,
		.too_many = "at most one NAME",
	},
	.usage = "[-c CONFIG] [NAME] [--json]",
	.summary = "check haven.conf's fence sections with their agents",
	.exec = cmd_fence_validate_exec,
};
