/*
 * havenctl disk export: copy the VHD on a volume's disk to a new .vhd file
 * that qemu-img and Hyper-V read, of the same type (or --type). A dynamic
 * export is compact: made large, then cut back to its end of data.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "storage.h"

static void
cmd_disk_export_progress(uint64_t done, uint64_t total, void *arg)
{
	cli_progress(arg, "exporting", done, total);
}

static int
cmd_disk_export_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_disk_export_entry;
	struct blockdev		*src = NULL, *file = NULL, *dst = NULL;
	struct vhd_info		 info;
	struct target		 t;
	int			 type = 0;
	const char		*to;
	int			 error, rc, created = 0;

	if (target_type_arg(cli, cmd, args, &type) == -1)
		return CLI_EXIT_USAGE;
	to = args_positional(args, 1);
	if ((rc = target_open(cli, args_positional(args, 0), TARGET_VOLUME,
	    &t)) != 0)
		return rc;
	rc = CLI_EXIT_FAILURE;
	if ((error = vhd_open_sync(t.disk, 0, &src)) != 0) {
		cli_error(cli, "%s: no usable VHD: %s", t.spec,
		    storage_strerror(error));
		goto out;
	}
	vhd_get_info(src, &info);
	if (type == 0)
		type = info.type;
	if (access(to, F_OK) == 0) {
		if (!args_has(args, "force")) {
			cli_error(cli, "%s exists; add --force to overwrite it",
			    to);
			goto out;
		}
		if (unlink(to) == -1) {
			cli_error(cli, "%s: %s", to, strerror(errno));
			goto out;
		}
	}
	file = file_create(t.base, to, vhd_max_backing_size(type, src->size,
	    VHD_SIZE_EXACT),
	    &error);
	if (file == NULL) {
		cli_error(cli, "%s: %s", to, storage_strerror(error));
		goto out;
	}
	created = 1;
	if ((error = vhd_create_sync(file, type, src->size,
	    VHD_SIZE_EXACT)) != 0 ||
	    (error = vhd_open_sync(file, 1, &dst)) != 0 ||
	    (error = vhd_copy_sync(src, dst, cmd_disk_export_progress,
	    cli)) != 0) {
		cli_error(cli, "%s: %s", to, storage_strerror(error));
		goto out;
	}
	vhd_get_info(dst, &info);
	blockdev_close(dst);
	dst = NULL;
	if ((error = file_truncate(file, info.end_offset)) != 0 ||
	    (error = blockdev_flush_sync(file)) != 0) {
		cli_error(cli, "%s: %s", to, storage_strerror(error));
		goto out;
	}
	if (!cli->quiet && !cli->json)
		printf("%s: exported to %s (%s VHD, %llu bytes)\n", t.spec, to,
		    type == VHD_TYPE_FIXED ? "fixed" : "dynamic",
		    (unsigned long long)info.end_offset);
	rc = CLI_EXIT_OK;
out:
	blockdev_close(dst);
	blockdev_close(file);
	if (rc != CLI_EXIT_OK && created)
		unlink(to);
	blockdev_close(src);
	target_close(&t);
	return rc;
}

const struct cmd_entry cmd_disk_export_entry = {
	.name = "disk export",
	.args = {
		.options = (const struct args_option[]) {
			{ "type", 't', ARGS_VALUE },
			{ "force", 'f', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 2, .upper = 2,
		.too_few = "expected TARGET and FILE.vhd",
	},
	.usage = "TARGET FILE.vhd [--type fixed|dynamic] [--force]",
	.summary = "copy a volume's VHD to a .vhd file (qemu-img, Hyper-V)",
	.exec = cmd_disk_export_exec,
};
