/*
 * havenctl disk check: check the VHD on a volume's disk (or a .vhd file)
 * and, with --repair, fix what is safely fixable. Exit 0 when clean (or
 * everything found was repaired), 3 when problems remain, 1 if it could
 * not check at all.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

struct check_out {
	struct cli		*cli;
	struct json_object	*list;
};

static void
cmd_disk_check_problem(const char *text, int repaired, void *arg)
{
	struct check_out	*o = arg;
	struct json_object	*p;

	if (o->list != NULL) {
		p = json_object_new_object();
		json_object_object_add(p, "problem",
		    json_object_new_string(text));
		json_object_object_add(p, "repaired",
		    json_object_new_boolean(repaired));
		json_object_array_add(o->list, p);
	} else
		printf("%s: %s\n", repaired ? "repaired" : "problem", text);
}

static int
cmd_disk_check_exec(struct cli *cli, struct args *args)
{
	struct check_out	 o = { cli, NULL };
	struct vhd_check_report	 rep = { .problem = cmd_disk_check_problem,
	    .arg = &o };
	struct json_object	*obj;
	struct target		 t;
	int			 repair, error, rc;

	repair = args_has(args, "repair");
	if ((rc = target_open(cli, args_positional(args, 0), repair ?
	    TARGET_WRITABLE : 0, &t)) != 0)
		return rc;
	if (cli->json)
		o.list = json_object_new_array();
	error = vhd_check_sync(t.disk != NULL ? t.disk : t.dev, repair, &rep);
	if (error != 0) {
		cli_error(cli, "%s: could not check: %s", t.spec,
		    storage_strerror(error));
		json_object_put(o.list);
		target_close(&t);
		return CLI_EXIT_FAILURE;
	}
	rc = rep.problems > rep.repaired ? CLI_EXIT_PROBLEMS : CLI_EXIT_OK;
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "target",
		    json_object_new_string(t.spec));
		json_object_object_add(obj, "type", json_object_new_string(
		    rep.type == VHD_TYPE_FIXED ? "fixed" :
		    rep.type == VHD_TYPE_DYNAMIC ? "dynamic" : "none"));
		json_object_object_add(obj, "clean",
		    json_object_new_boolean(rep.problems == 0));
		json_object_object_add(obj, "problems", o.list);
		cli_json_print(cli, obj);
	} else if (!cli->quiet) {
		if (rep.problems == 0)
			printf("%s: VHD is clean\n", t.spec);
		else
			printf("%s: %u problem(s), %u repaired%s\n", t.spec,
			    rep.problems, rep.repaired, rc == CLI_EXIT_OK ? "" :
			    repair ? "" : " (--repair fixes what is safe)");
	}
	target_close(&t);
	return rc;
}

const struct cmd_entry cmd_disk_check_entry = {
	.name = "disk check",
	.args = {
		.options = (const struct args_option[]) {
			{ "repair", 'r', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected one TARGET",
	},
	.usage = "[--json] [--repair] TARGET|FILE.vhd",
	.summary = "check a VHD (exit 3 if problems remain)",
	.exec = cmd_disk_check_exec,
};
