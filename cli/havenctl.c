/*
 * havenctl: the operator's command. Parses the global options, finds the
 * command in the table by its words ("disk create"), parses the rest of
 * the command line against the command's spec (args.c) and hands the
 * command the result. Also the small output helpers every command shares.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "common.h"
#include "storage.h"

static const struct cmd_entry *cmd_table[] = {
	&cmd_status_entry,
	&cmd_status_login_entry,
	&cmd_events_entry,
	&cmd_role_grant_entry,
	&cmd_role_revoke_entry,
	&cmd_role_list_entry,
	&cmd_disk_format_entry,
	&cmd_disk_create_entry,
	&cmd_disk_info_entry,
	&cmd_disk_check_entry,
	&cmd_disk_import_entry,
	&cmd_disk_export_entry,
	&cmd_disk_serve_entry,
	&cmd_disk_wipe_entry,
	&cmd_pr_keys_entry,
	&cmd_pr_register_entry,
	&cmd_pr_reserve_entry,
	&cmd_pr_preempt_entry,
	&cmd_pool_add_entry,
	&cmd_pool_list_entry,
	&cmd_pool_remove_entry,
	&cmd_volume_add_entry,
	&cmd_volume_list_entry,
	&cmd_volume_remove_entry,
	&cmd_vm_create_entry,
	&cmd_vm_import_entry,
	&cmd_vm_set_entry,
	&cmd_vm_list_entry,
	&cmd_vm_show_entry,
	&cmd_vm_console_entry,
	&cmd_vm_vnc_entry,
	&cmd_vm_migrate_entry,
	&cmd_vm_start_entry,
	&cmd_vm_stop_entry,
	&cmd_vm_delete_entry,
	&cmd_node_list_entry,
	&cmd_node_fence_entry,
	&cmd_node_drain_entry,
	&cmd_node_resume_entry,
	&cmd_node_remove_entry,
	&cmd_fence_history_entry,
	&cmd_cluster_corosync_conf_entry,
	&cmd_cluster_init_entry,
	&cmd_cluster_join_entry,
	&cmd_cluster_token_entry,
	&cmd_cluster_set_entry,
	&cmd_cluster_show_entry,
	&cmd_fence_agents_entry,
	&cmd_fence_metadata_entry,
	&cmd_fence_validate_entry,
	&cmd_validate_entry,
	&cmd_debug_log_entry,
};
#define CMD_COUNT	(sizeof cmd_table / sizeof cmd_table[0])

static void
usage(FILE *out)
{
	size_t	i;

	fprintf(out, "usage: havenctl [--json] [-q] [-v] [--key KEY] COMMAND "
	    "[ARGS...]\n\n"
	    "  --key KEY  register KEY and claim an iSCSI LUN's reservation "
	    "before\n"
	    "             writing to it (0xHEX or CLUSTER:NODE_ID)\n\n"
	    "commands:\n");
	for (i = 0; i < CMD_COUNT; i++)
		fprintf(out, "  %-16s %s\n", cmd_table[i]->name,
		    cmd_table[i]->summary);
	fprintf(out, "\n'havenctl COMMAND --help' shows a command's arguments; "
	    "havenctl(8) has the details.\n");
}

void
cli_error(struct cli *cli, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "havenctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cli_usage_error(struct cli *cli, const struct cmd_entry *cmd,
    const char *fmt, ...)
{
	va_list	ap;

	if (fmt != NULL) {
		fprintf(stderr, "havenctl %s: ", cmd->name);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "usage: havenctl %s %s\n", cmd->name, cmd->usage);
}

/* Print one JSON document on stdout and free it. */
int
cli_json_print(struct cli *cli, struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return fflush(stdout) == 0 ? 0 : -1;
}

void
cli_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char	*units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double			 v = (double)bytes;
	int			 u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* A progress bar on stderr when it is a terminal; nothing otherwise. */
void
cli_progress(struct cli *cli, const char *what, uint64_t done, uint64_t total)
{
	int	width = 30, filled;

	if (!cli->tty || cli->quiet || total == 0)
		return;
	filled = (int)((double)done / (double)total * width);
	fprintf(stderr, "\r%s [%.*s%*s] %3d%%", what, filled,
	    "==============================", width - filled, "",
	    (int)((double)done * 100 / (double)total));
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* A failed reservation command, said plainly; returns its exit code. */
int
cli_pr_error(struct cli *cli, const char *what, int error)
{
	cli_error(cli, "%s: %s", what, storage_strerror(error));
	return error == STORAGE_E_RESERVATION ? CLI_EXIT_DENIED :
	    CLI_EXIT_FAILURE;
}

static const struct cmd_entry *
find_command(int argc, char **argv, int *words)
{
	char	name[64];
	size_t	i;

	if (argc >= 2) {
		snprintf(name, sizeof name, "%s %s", argv[0], argv[1]);
		for (i = 0; i < CMD_COUNT; i++) {
			if (strcmp(cmd_table[i]->name, name) == 0) {
				*words = 2;
				return cmd_table[i];
			}
		}
	}
	for (i = 0; i < CMD_COUNT; i++) {
		if (strcmp(cmd_table[i]->name, argv[0]) == 0) {
			*words = 1;
			return cmd_table[i];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli		 cli = { .program = "havenctl" };
	const struct cmd_entry	*cmd;
	struct args		*args;
	enum log_level		 level = LOG_LEVEL_WARN;
	const char		*cause;
	int			 c, words, i, sub_argc;
	char			**sub_argv;

	log_init("havenctl", LOG_LEVEL_WARN);
	/* Global options come before the command words ("+": stop at the
	 * first non-option). */
	while ((c = getopt_long(argc, argv, "+jqvhVk:", options, NULL)) !=
	    -1) {
		switch (c) {
		case 'k':
			if (target_parse_key(optarg, &cli.key) == -1 &&
			    errno == EACCES) {
				cli_error(&cli, "cannot derive the key %s: %s "
				    "(keys derive from the cluster's secret; "
				    "run as root)", optarg, target_key_error());
				return CLI_EXIT_FAILURE;
			}
			if (target_parse_key(optarg, &cli.key) == -1 ||
			    cli.key == 0) {
				cli_error(&cli, "bad key '%s' (0xHEX or "
				    "CLUSTER:NODE_ID)", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'j':
			cli.json = 1;
			break;
		case 'q':
			cli.quiet = 1;
			break;
		case 'v':
			level = LOG_LEVEL_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("havenctl %s\n", HAVEN_VERSION);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	log_set_level(level);
	cli.tty = isatty(2);
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((cmd = find_command(argc, argv, &words)) == NULL) {
		cli_error(&cli, "unknown command '%s'; 'havenctl --help' lists "
		    "them", argv[0]);
		return CLI_EXIT_USAGE;
	}
	/* The command's words become one argv[0] (getopt's messages name the
	 * command by it), followed by the command's own arguments. */
	sub_argc = argc - words + 1;
	sub_argv = calloc((size_t)sub_argc + 1, sizeof *sub_argv);
	if (sub_argv == NULL)
		return CLI_EXIT_FAILURE;
	sub_argv[0] = (char *)cmd->name;
	for (i = 1; i < sub_argc; i++)
		sub_argv[i] = argv[words + i - 1];
	if (args_wants_help(sub_argc, sub_argv)) {
		printf("usage: havenctl %s %s\n%s\n", cmd->name, cmd->usage,
		    cmd->summary);
		free(sub_argv);
		return CLI_EXIT_OK;
	}
	if ((args = args_parse(&cmd->args, sub_argc, sub_argv, &cause)) ==
	    NULL) {
		if (cause != NULL)
			cli_usage_error(&cli, cmd, "%s", cause);
		else
			cli_usage_error(&cli, cmd, NULL);
		free(sub_argv);
		return CLI_EXIT_USAGE;
	}
	/* --json counts after the command words too. */
	if (args_has(args, "json"))
		cli.json = 1;
	c = cmd->exec(&cli, args);
	args_free(args);
	free(sub_argv);
	return c;
}
