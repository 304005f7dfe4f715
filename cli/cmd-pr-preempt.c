/*
 * havenctl pr preempt: fence by hand. Registers KEY on this nexus, then
 * preempts VICTIM's registrations (and its reservation, if it holds it),
 * with PREEMPT AND ABORT where the target has it and PREEMPT otherwise,
 * and verifies VICTIM is gone.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_preempt_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_pr_preempt_entry;
	struct pr_status	 s;
	struct target		 t;
	uint64_t		 key = 0, victim = 0;
	size_t			 i;
	int			 rc, error, abort_tasks, aborted = 0;

	if (target_key_arg(cli, cmd, args, "key", &key) == -1)
		return CLI_EXIT_USAGE;
	if (target_key_arg(cli, cmd, args, "victim", &victim) == -1)
		return CLI_EXIT_USAGE;
	if (key == 0 || victim == 0) {
		cli_usage_error(cli, cmd,
		    "expected --key KEY --victim KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	if (key == victim) {
		cli_usage_error(cli, cmd, "--key and --victim must differ");
		return CLI_EXIT_USAGE;
	}
	abort_tasks = args_has(args, "abort");
	if ((rc = target_open_lun(cli, args_positional(args, 0), &t)) != 0)
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
	.args = {
		.options = (const struct args_option[]) {
			{ "key", 'k', ARGS_VALUE },
			{ "victim", 'v', ARGS_VALUE },
			{ "abort", 'a', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected --key KEY --victim KEY and one LUN URL",
	},
	.usage = "--key KEY --victim KEY [--abort] URL",
	.summary = "fence a key: remove its registrations from a LUN",
	.exec = cmd_pr_preempt_exec,
};
