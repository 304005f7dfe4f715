/*
 * havenctl disk serve: export a disk over NBD on a UNIX socket until
 * SIGINT or SIGTERM. A Haven volume serves its disk extent as the VHD's
 * virtual disk; --raw serves the LUN or file itself, byte for byte.
 */
#include <getopt.h>
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
cmd_disk_serve_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "export", required_argument, NULL, 'e' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "raw", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static const int	 signals[] = { SIGINT, SIGTERM };
	struct target		 t;
	struct nbd_server	*server = NULL;
	struct blockdev		*dev, *vhd = NULL;
	const char		*socket_path = NULL, *export = "disk";
	char			 size[32];
	int			 c, read_only = 0, raw = 0, error = 0;
	int			 result = CLI_EXIT_FAILURE;

	/* optind 0: glibc starts afresh (havenctl parsed its own options
	 * with "+"), so options may follow TARGET. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:e:rR", options, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'e':
			export = optarg;
			break;
		case 'r':
			read_only = 1;
			break;
		case 'R':
			raw = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_disk_serve_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || socket_path == NULL) {
		cli_usage_error(cli, &cmd_disk_serve_entry, optind >= argc ?
		    "TARGET is required" : socket_path == NULL ?
		    "--socket is required" : "too many arguments");
		return CLI_EXIT_USAGE;
	}
	if ((c = target_open(cli, argv[optind], read_only ? 0 : TARGET_WRITABLE,
	    &t)) != 0)
		return c;
	dev = t.dev;
	if (!raw && t.disk != NULL) {
		error = vhd_open_sync(t.disk, !read_only, &vhd);
		if (error != 0) {
			cli_error(cli, "%s: disk image: %s", argv[optind],
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
	/* Completions of requests still at the device, then close it. */
	event_base_loop(t.base, 0);
	if (vhd != NULL)
		blockdev_close(vhd);
	target_close(&t);
	return result;
}

const struct cmd_entry cmd_disk_serve_entry = {
	.name = "disk serve",
	.usage = "TARGET --socket PATH [--export NAME] [--read-only] [--raw]",
	.summary = "serve a disk over NBD on a UNIX socket until interrupted",
	.exec = cmd_disk_serve_exec,
};
