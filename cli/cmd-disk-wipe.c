/*
 * havenctl disk wipe --vm UUID TARGET: forget VM UUID on a Haven volume
 * (its lease and saved state; the VHD stays), for a volume whose VM was
 * deleted without --wipe. Refused when the lease names another VM. On a
 * LUN, claimed with this host's key (from havend) unless --key gives one.
 */
#include <errno.h>
#include <stdio.h>

#include <json-c/json.h>

#include "common.h"
#include "request.h"
#include "storage.h"

static int
cmd_disk_wipe_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_disk_wipe_entry;
	struct lease_record	 was;
	struct json_object	*obj;
	struct target		 t;
	const char		*uuid;
	int			 error, rc;

	if ((uuid = args_get(args, "vm")) == NULL || !uuid_valid(uuid)) {
		cli_usage_error(cli, cmd, "--vm UUID is required: the UUID of "
		    "the deleted VM the volume's lease names (a new VM's "
		    "failure says it)");
		return CLI_EXIT_USAGE;
	}
	/* A LUN a VM used is reserved: claim it as havend here would. */
	if (target_is_iscsi(args_positional(args, 0)) &&
	    (rc = vm_storage_host_key(cli)) != CLI_EXIT_OK)
		return rc;
	if ((rc = target_open(cli, args_positional(args, 0), TARGET_WRITABLE |
	    TARGET_VOLUME, &t)) != 0)
		return rc;
	error = volume_wipe_sync(t.volume, uuid, &was);
	if (error == -EEXIST) {
		cli_error(cli, "%s: its lease names VM %s, not %s; nothing was "
		    "changed", t.spec, was.vm_uuid, uuid);
		rc = CLI_EXIT_FAILURE;
	} else if (error != 0) {
		cli_error(cli, "%s: %s%s", t.spec, storage_strerror(error),
		    error == STORAGE_E_CORRUPT ? " (a damaged lease: 'havenctl "
		    "disk check', or export the VHD and format the volume)" :
		    "");
		rc = CLI_EXIT_FAILURE;
	} else if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "target",
		    json_object_new_string(t.spec));
		json_object_object_add(obj, "vm", json_object_new_string(uuid));
		json_object_object_add(obj, "wiped",
		    json_object_new_boolean(1));
		cli_json_print(cli, obj);
	} else if (!cli->quiet)
		printf("%s: lease and saved state of VM %s cleared; the VHD is "
		    "kept\n", t.spec, uuid);
	target_close(&t);
	return rc;
}

const struct cmd_entry cmd_disk_wipe_entry = {
	.name = "disk wipe",
	.args = {
		.options = (const struct args_option[]) {
			{ "vm", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected one TARGET",
	},
	.usage = "--vm UUID TARGET",
	.summary = "free a volume a deleted VM left (its lease and saved "
	    "state; the VHD stays)",
	.exec = cmd_disk_wipe_exec,
};
