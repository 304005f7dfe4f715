/*
 * havenctl disk create: write a new, empty VHD (dynamic by default) onto a
 * Haven volume's disk extent. Refuses a disk that already holds a VHD
 * unless --force is given.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

static int
cmd_disk_create_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "size", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	enum vhd_type		 type = VHD_TYPE_DYNAMIC;
	struct blockdev		*old = NULL;
	struct vhd_info		 info;
	struct json_object	*obj;
	struct target		 t;
	uint64_t		 size = 0;
	char			 human[32];
	int			 c, force = 0, error, rc = CLI_EXIT_FAILURE;

	/* Full re-initialisation of glibc getopt (havenctl parsed its own
	 * options with "+"), so options may also follow the operands. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:t:f", options, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_size(optarg, &size) == -1 || size == 0) {
				cli_usage_error(cli, &cmd_disk_create_entry,
				    "bad size '%s' (use e.g. 20G)", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 't':
			if (strcmp(optarg, "fixed") == 0)
				type = VHD_TYPE_FIXED;
			else if (strcmp(optarg, "dynamic") == 0)
				type = VHD_TYPE_DYNAMIC;
			else {
				cli_usage_error(cli, &cmd_disk_create_entry,
				    "--type is fixed or dynamic");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'f':
			force = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_disk_create_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || size == 0) {
		cli_usage_error(cli, &cmd_disk_create_entry,
		    "expected one TARGET and --size");
		return CLI_EXIT_USAGE;
	}
	if (vhd_max_backing_size(type, size) == 0) {
		cli_error(cli, "a VHD holds at most 2040 GiB");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open(cli, argv[optind], TARGET_WRITABLE |
	    TARGET_VOLUME, &t)) != 0)
		return rc;
	rc = CLI_EXIT_FAILURE;
	if (vhd_open_sync(t.disk, 0, &old) == 0) {
		blockdev_close(old);
		if (!force) {
			cli_error(cli, "%s already holds a VHD; add --force to "
			    "replace it (its data is lost)", t.spec);
			goto out;
		}
	}
	if ((error = vhd_create_sync(t.disk, type, size)) != 0) {
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
	.usage = "TARGET --size SIZE [--type fixed|dynamic] [--force]",
	.summary = "create an empty VHD on a volume's disk (size rounded up "
	    "as qemu-img does)",
	.exec = cmd_disk_create_exec,
};
