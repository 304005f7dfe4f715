/*
 * havenctl pr preempt: fence by hand. Registers KEY on this nexus, then
 * preempts VICTIM's registrations (and its reservation, if it holds it),
 * with PREEMPT AND ABORT where the target has it and PREEMPT otherwise,
 * and verifies VICTIM is gone.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_preempt_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "victim", required_argument, NULL, 'v' },
		{ "abort", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct pr_status	s;
	struct target		t;
	uint64_t		key = 0, victim = 0, *want;
	size_t			i;
	int			c, rc, error, abort_tasks = 0, aborted = 0;

	while ((c = getopt_long(argc, argv, "k:v:a", options, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'v':
			want = c == 'k' ? &key : &victim;
			if (target_parse_key(optarg, want) == -1 || *want == 0) {
				cli_usage_error(cli, &cmd_pr_preempt_entry,
				    "bad key '%s' (0xHEX or CLUSTER:NODE_ID)",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'a':
			abort_tasks = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_pr_preempt_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || key == 0 || victim == 0) {
		cli_usage_error(cli, &cmd_pr_preempt_entry,
		    "expected --key KEY --victim KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	if (key == victim) {
		cli_usage_error(cli, &cmd_pr_preempt_entry,
		    "--key and --victim must differ");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open_lun(cli, argv[optind], &t)) != 0)
		return rc;
	error = pr_register_sync(t.dev, 0, key, 1);
	if (error == 0)
		error = pr_read_sync(t.dev, &s);
	if (error == 0)
		error = pr_preempt_sync(t.dev, key, victim, s.reserved ?
		    s.type : PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
		    abort_tasks, &aborted);
	if (error == 0)
		error = pr_read_sync(t.dev, &s);
	if (error != 0) {
		rc = cli_pr_error(cli, "preempting", error);
		target_close(&t);
		return rc;
	}
	for (i = 0; i < s.nkeys; i++) {
		if (s.keys[i] == victim) {
			cli_error(cli, "0x%016" PRIx64 " is still registered "
			    "after the preempt; the target did not remove it",
			    victim);
			target_close(&t);
			return CLI_EXIT_FAILURE;
		}
	}
	if (cli->json)
		printf("{\"victim\":\"0x%016" PRIx64 "\",\"preempted\":true,"
		    "\"aborted\":%s}\n", victim, aborted ? "true" : "false");
	else if (!cli->quiet)
		printf("preempted 0x%016" PRIx64 " (%s)\n", victim, aborted ?
		    "its outstanding commands aborted" :
		    "PREEMPT without abort: wait out the I/O timeout before "
		    "writing");
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_pr_preempt_entry = {
	.name = "pr preempt",
	.usage = "--key KEY --victim KEY [--abort] URL",
	.summary = "fence a key: remove its registrations from a LUN",
	.exec = cmd_pr_preempt_exec,
};
