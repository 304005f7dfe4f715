/*
 * havenctl disk serve: export a disk over NBD on a UNIX socket until
 * SIGINT or SIGTERM. A Haven volume serves its disk extent as the VHD's
 * virtual disk; --raw serves the LUN or file itself, byte for byte.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "common.h"
#include "storage.h"

static void
cmd_disk_serve_signal(int signo, void *arg)
{
	event_base_loopbreak(arg);
}

static int
cmd_disk_serve_exec(struct cli *cli, struct args *args)
{
	static const int	 signals[] = { SIGINT, SIGTERM };
	struct target		 t;
	struct nbd_server	*server = NULL;
	struct blockdev		*dev, *vhd = NULL;
	const char		*spec, *socket_path, *export;
	char			 size[32];
	int			 c, read_only, raw, error = 0;
	int			 result = CLI_EXIT_FAILURE;

	spec = args_positional(args, 0);
	if ((socket_path = args_get(args, "socket")) == NULL) {
		cli_usage_error(cli, &cmd_disk_serve_entry,
		    "--socket is required");
		return CLI_EXIT_USAGE;
	}
	if ((export = args_get(args, "export")) == NULL)
		export = "disk";
	read_only = args_has(args, "read-only");
	raw = args_has(args, "raw");
	if ((c = target_open(cli, spec, read_only ? 0 : TARGET_WRITABLE,
	    &t)) != 0)
		return c;
	dev = t.dev;
	if (!raw && t.disk != NULL) {
		error = vhd_open_sync(t.disk, !read_only, &vhd);
		if (error != 0) {
			cli_error(cli, "%s: disk image: %s", spec,
			    storage_strerror(error));
			goto out;
		}
		dev = vhd;
	}
	if ((server = nbd_server_new(t.base, socket_path, &error)) == NULL) {
		cli_error(cli, "%s: %s", socket_path, storage_strerror(error));
		goto out;
	}
	if ((error = nbd_server_add_export(server, export, dev, read_only)) !=
	    0) {
		cli_error(cli, "export %s: %s", export, storage_strerror(error));
		goto out;
	}
	if (ev_on_signals(t.base, signals, 2, cmd_disk_serve_signal,
	    t.base) == -1) {
		cli_error(cli, "cannot catch signals");
		goto out;
	}
	cli_format_size(dev->size, size, sizeof size);
	printf("serving %s on %s (%s)\n", export, socket_path, size);
	fflush(stdout);
	event_base_dispatch(t.base);
	result = CLI_EXIT_OK;
out:
	ev_signals_free();
	nbd_server_free(server);
	/* A dynamic VHD's new blocks reach its block table on disk with a
	 * flush (QEMU sends one when it stops); commit what a client left
	 * unflushed rather than lose it. */
	if (vhd != NULL && !read_only && (error = blockdev_flush_sync(vhd)) !=
	    0)
		cli_error(cli, "%s: flushing the disk image: %s", spec,
		    storage_strerror(error));
	/* Completions of requests still at the device, then close it. */
	event_base_loop(t.base, 0);
	if (vhd != NULL)
		blockdev_close(vhd);
	target_close(&t);
	return result;
}

const struct cmd_entry cmd_disk_serve_entry = {
	.name = "disk serve",
	.args = {
		.options = (const struct args_option[]) {
			{ "socket", 's', ARGS_VALUE },
			{ "export", 'e', ARGS_VALUE },
			{ "read-only", 'r', 0 },
			{ "raw", 'R', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "TARGET is required",
		.too_many = "too many arguments",
	},
	.usage = "TARGET --socket PATH [--export NAME] [--read-only] [--raw]",
	.summary = "serve a disk over NBD on a UNIX socket until interrupted",
	.exec = cmd_disk_serve_exec,
};
