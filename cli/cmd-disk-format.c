/*
 * havenctl disk format: write Haven's volume label and extents (lease,
 * state, disk) onto a LUN or file. Refuses a device that already holds a
 * Haven volume unless --force is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

static int
cmd_disk_format_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_disk_format_entry;
	struct volume_params	 params = { .cluster_name = "haven" };
	struct volume_info	 info;
	struct volume		*v = NULL;
	struct target		 t;
	struct json_object	*obj, *extents, *e;
	const char		*arg;
	uint8_t			 zero[512] = { 0 };
	char			 size[32];
	int			 error, rc, i;

	if ((arg = args_get(args, "cluster")) != NULL)
		params.cluster_name = arg;
	if ((arg = args_get(args, "state-size")) != NULL &&
	    cli_parse_size(arg, &params.state_size) == -1) {
		cli_usage_error(cli, cmd, "bad size '%s' (use e.g. 512M, 4G)",
		    arg);
		return CLI_EXIT_USAGE;
	}
	if (strlen(params.cluster_name) == 0 ||
	    strlen(params.cluster_name) > 63) {
		cli_usage_error(cli, cmd,
		    "the cluster name must be 1 to 63 characters");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open(cli, args_positional(args, 0), TARGET_WRITABLE,
	    &t)) != 0)
		return rc;
	if (t.volume != NULL && !args_has(args, "force")) {
		volume_get_info(t.volume, &info);
		cli_error(cli, "%s already holds Haven volume %s (cluster %s); "
		    "add --force to erase it and everything on it", t.spec,
		    info.uuid, info.cluster_name);
		target_close(&t);
		return CLI_EXIT_FAILURE;
	}
	if (t.volume != NULL) {
		volume_close(t.volume);
		t.volume = NULL;
		if ((error = blockdev_write_sync(t.dev, 0, zero, sizeof zero,
		    BLOCKDEV_FUA)) != 0) {
			cli_error(cli, "%s: erasing the old label: %s", t.spec,
			    storage_strerror(error));
			target_close(&t);
			return CLI_EXIT_FAILURE;
		}
	}
	error = volume_format_sync(t.dev, &params, &v);
	if (error != 0) {
		if (error == -ENOSPC)
			cli_error(cli, "%s: too small for a Haven volume with "
			    "that state extent (use a larger LUN or a smaller "
			    "--state-size)", t.spec);
		else
			cli_error(cli, "%s: %s", t.spec,
			    storage_strerror(error));
		target_close(&t);
		return CLI_EXIT_FAILURE;
	}
	volume_get_info(v, &info);
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "target",
		    json_object_new_string(t.spec));
		json_object_object_add(obj, "uuid",
		    json_object_new_string(info.uuid));
		json_object_object_add(obj, "cluster",
		    json_object_new_string(info.cluster_name));
		json_object_object_add(obj, "size",
		    json_object_new_uint64(info.size));
		extents = json_object_new_object();
		for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
			e = json_object_new_object();
			json_object_object_add(e, "offset",
			    json_object_new_uint64(info.extent_offset[i]));
			json_object_object_add(e, "size",
			    json_object_new_uint64(info.extent_size[i]));
			json_object_object_add(extents, volume_extent_name(i),
			    e);
		}
		json_object_object_add(obj, "extents", extents);
		cli_json_print(cli, obj);
	} else if (!cli->quiet) {
		cli_format_size(info.size, size, sizeof size);
		printf("formatted %s: volume %s, cluster %s, %s\n", t.spec,
		    info.uuid, info.cluster_name, size);
		for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
			cli_format_size(info.extent_size[i], size, sizeof size);
			printf("  %-6s at %" PRIu64 ", %s\n",
			    volume_extent_name(i), info.extent_offset[i], size);
		}
	}
	volume_close(v);
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_disk_format_entry = {
	.name = "disk format",
	.args = {
		.options = (const struct args_option[]) {
			{ "cluster", 'c', ARGS_VALUE },
			{ "state-size", 's', ARGS_VALUE },
			{ "force", 'f', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected one TARGET",
	},
	.usage = "[--cluster NAME] [--state-size SIZE] [--force] [--json] "
	    "TARGET",
	.summary = "format a LUN or file as a Haven volume",
	.exec = cmd_disk_format_exec,
};
