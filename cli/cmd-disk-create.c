/*
 * havenctl disk create: write a new, empty VHD (dynamic by default) onto a
 * Haven volume's disk extent, its size rounded up to a CHS geometry as
 * qemu-img does, or exact with --exact (qemu-img's force_size). Refuses a
 * disk that already holds a VHD unless --force is given.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

static int
cmd_disk_create_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_disk_create_entry;
	int			 type = VHD_TYPE_DYNAMIC;
	enum vhd_size_rule	 rule = VHD_SIZE_ROUNDED;
	struct blockdev		*old = NULL;
	struct vhd_info		 info;
	struct json_object	*obj;
	struct target		 t;
	const char		*arg;
	uint64_t		 size = 0;
	char			 human[32];
	int			 error, rc = CLI_EXIT_FAILURE;

	if ((arg = args_get(args, "size")) != NULL &&
	    (cli_parse_size(arg, &size) == -1 || size == 0)) {
		cli_usage_error(cli, cmd, "bad size '%s' (use e.g. 20G)", arg);
		return CLI_EXIT_USAGE;
	}
	if (target_type_arg(cli, cmd, args, &type) == -1)
		return CLI_EXIT_USAGE;
	if (size == 0) {
		cli_usage_error(cli, cmd, "expected one TARGET and --size");
		return CLI_EXIT_USAGE;
	}
	if (args_has(args, "exact"))
		rule = VHD_SIZE_EXACT;
	if (vhd_max_backing_size(type, size, rule) == 0) {
		cli_error(cli, "a VHD holds at most 2040 GiB");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open(cli, args_positional(args, 0), TARGET_WRITABLE |
	    TARGET_VOLUME, &t)) != 0)
		return rc;
	rc = CLI_EXIT_FAILURE;
	if (vhd_open_sync(t.disk, 0, &old) == 0) {
		blockdev_close(old);
		if (!args_has(args, "force")) {
			cli_error(cli, "%s already holds a VHD; add --force to "
			    "replace it (its data is lost)", t.spec);
			goto out;
		}
	}
	if ((error = vhd_create_sync(t.disk, type, size, rule)) != 0) {
		if (error == -ENOSPC)
			cli_error(cli, "%s: the volume's disk extent (%llu "
			    "bytes) is too small for that VHD", t.spec,
			    (unsigned long long)t.disk->size);
		else
			cli_error(cli, "%s: %s", t.spec,
			    storage_strerror(error));
		goto out;
	}
	if ((error = vhd_open_sync(t.disk, 0, &old)) != 0) {
		cli_error(cli, "%s: the new VHD does not open: %s", t.spec,
		    storage_strerror(error));
		goto out;
	}
	vhd_get_info(old, &info);
	blockdev_close(old);
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "target",
		    json_object_new_string(t.spec));
		json_object_object_add(obj, "type", json_object_new_string(
		    type == VHD_TYPE_FIXED ? "fixed" : "dynamic"));
		json_object_object_add(obj, "virtual_size",
		    json_object_new_uint64(info.virtual_size));
		cli_json_print(cli, obj);
	} else if (!cli->quiet) {
		cli_format_size(info.virtual_size, human, sizeof human);
		printf("%s: created a %s VHD of %s (%llu bytes)\n", t.spec,
		    type == VHD_TYPE_FIXED ? "fixed" : "dynamic", human,
		    (unsigned long long)info.virtual_size);
	}
	rc = CLI_EXIT_OK;
out:
	target_close(&t);
	return rc;
}

const struct cmd_entry cmd_disk_create_entry = {
	.name = "disk create",
	.args = {
		.options = (const struct args_option[]) {
			{ "size", 's', ARGS_VALUE },
			{ "type", 't', ARGS_VALUE },
			{ "force", 'f', 0 },
			{ "exact", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected one TARGET and --size",
	},
	.usage = "TARGET --size SIZE [--type fixed|dynamic] [--exact] [--force]",
	.summary = "create an empty VHD on a volume's disk (size rounded up "
	    "as qemu-img does, or --exact)",
	.exec = cmd_disk_create_exec,
};
