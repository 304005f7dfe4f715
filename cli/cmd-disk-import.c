/*
 * havenctl disk import: copy a .vhd file (fixed or dynamic) onto a Haven
 * volume's disk as a new VHD of the same type (or --type), skipping zero
 * chunks so that a dynamic disk stays sparse.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "storage.h"

static void
cmd_disk_import_progress(uint64_t done, uint64_t total, void *arg)
{
	cli_progress(arg, "importing", done, total);
}

static int
cmd_disk_import_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_disk_import_entry;
	struct blockdev		*file = NULL, *src = NULL, *dst = NULL;
	struct vhd_info		 info;
	struct target		 t;
	int			 type = 0;
	const char		*from;
	int			 error, rc;

	if (target_type_arg(cli, cmd, args, &type) == -1)
		return CLI_EXIT_USAGE;
	from = args_positional(args, 0);
	if ((rc = target_open(cli, args_positional(args, 1), TARGET_WRITABLE |
	    TARGET_VOLUME, &t)) != 0)
		return rc;
	rc = CLI_EXIT_FAILURE;
	if ((file = file_open(t.base, from, 0, &error)) == NULL) {
		cli_error(cli, "%s: %s", from, storage_strerror(error));
		goto out;
	}
	if ((error = vhd_open_sync(file, 0, &src)) != 0) {
		cli_error(cli, "%s: %s", from, error == STORAGE_E_UNSUPPORTED ?
		    "differencing VHDs are not supported; merge it with "
		    "'qemu-img convert -O vpc' first" : storage_strerror(error));
		goto out;
	}
	vhd_get_info(src, &info);
	if (type == 0)
		type = info.type;
	if (vhd_open_sync(t.disk, 0, &dst) == 0) {
		blockdev_close(dst);
		dst = NULL;
		if (!args_has(args, "force")) {
			cli_error(cli, "%s already holds a VHD; add --force to "
			    "replace it (its data is lost)", t.spec);
			goto out;
		}
	}
	if ((error = vhd_create_sync(t.disk, type, src->size,
	    VHD_SIZE_EXACT)) != 0 ||
	    (error = vhd_open_sync(t.disk, 1, &dst)) != 0) {
		cli_error(cli, "%s: %s", t.spec, error == -ENOSPC ?
		    "the volume's disk extent is too small for this VHD" :
		    storage_strerror(error));
		goto out;
	}
	if ((error = vhd_copy_sync(src, dst, cmd_disk_import_progress,
	    cli)) != 0) {
		cli_error(cli, "%s: copy failed: %s%s", t.spec,
		    storage_strerror(error), error == -ENOSPC ?
		    " (the volume's disk extent is full)" : "");
		goto out;
	}
	if (!cli->quiet && !cli->json)
		printf("%s: imported %s as a %s VHD of %llu bytes\n", t.spec,
		    from, type == VHD_TYPE_FIXED ? "fixed" : "dynamic",
		    (unsigned long long)dst->size);
	rc = CLI_EXIT_OK;
out:
	blockdev_close(dst);
	blockdev_close(src);
	blockdev_close(file);
	target_close(&t);
	return rc;
}

const struct cmd_entry cmd_disk_import_entry = {
	.name = "disk import",
	.args = {
		.options = (const struct args_option[]) {
			{ "type", 't', ARGS_VALUE },
			{ "force", 'f', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 2, .upper = 2,
		.too_few = "expected FILE.vhd and TARGET",
	},
	.usage = "FILE.vhd TARGET [--type fixed|dynamic] [--force]",
	.summary = "copy a .vhd file onto a volume's disk",
	.exec = cmd_disk_import_exec,
};
