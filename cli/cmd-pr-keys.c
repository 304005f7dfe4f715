/*
 * havenctl pr keys: the registered reservation keys of a LUN and who holds
 * its reservation. Read-only: it registers nothing.
 */
#include <inttypes.h>
#include <stdio.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

static const char *
pr_type_name(uint8_t type)
{
	switch (type) {
	case 1:
		return "write-exclusive";
	case 3:
		return "exclusive-access";
	case 5:
		return "write-exclusive-registrants-only";
	case 6:
		return "exclusive-access-registrants-only";
	case 7:
		return "write-exclusive-all-registrants";
	case 8:
		return "exclusive-access-all-registrants";
	default:
		return "unknown";
	}
}

static int
cmd_pr_keys_exec(struct cli *cli, struct args *args)
{
	struct pr_status	 s;
	struct target		 t;
	struct json_object	*obj, *keys;
	char			 hex[24];
	size_t			 i;
	int			 rc, error;

	if ((rc = target_open_lun(cli, args_positional(args, 0), &t)) != 0)
		return rc;
	if ((error = pr_read_sync(t.dev, &s)) != 0) {
		rc = cli_pr_error(cli, "reading keys", error);
		target_close(&t);
		return rc;
	}
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "generation",
		    json_object_new_int64(s.generation));
		keys = json_object_new_array();
		for (i = 0; i < s.nkeys; i++) {
			snprintf(hex, sizeof hex, "0x%016" PRIx64, s.keys[i]);
			json_object_array_add(keys, json_object_new_string(hex));
		}
		json_object_object_add(obj, "keys", keys);
		if (s.reserved) {
			snprintf(hex, sizeof hex, "0x%016" PRIx64, s.holder);
			json_object_object_add(obj, "holder",
			    json_object_new_string(hex));
			json_object_object_add(obj, "type",
			    json_object_new_string(pr_type_name(s.type)));
		} else {
			json_object_object_add(obj, "holder", NULL);
			json_object_object_add(obj, "type", NULL);
		}
		cli_json_print(cli, obj);
	} else {
		printf("generation %" PRIu32 ", %zu key%s registered\n",
		    s.generation, s.nkeys, s.nkeys == 1 ? "" : "s");
		for (i = 0; i < s.nkeys; i++)
			printf("  0x%016" PRIx64 "%s\n", s.keys[i],
			    s.reserved && s.keys[i] == s.holder ?
			    "  (holder)" : "");
		if (s.reserved)
			printf("reservation: %s, held by 0x%016" PRIx64 "\n",
			    pr_type_name(s.type), s.holder);
		else
			printf("reservation: none\n");
	}
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_pr_keys_entry = {
	.name = "pr keys",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "expected one LUN URL",
	},
	.usage = "[--json] URL",
	.summary = "show a LUN's reservation keys and holder",
	.exec = cmd_pr_keys_exec,
};
