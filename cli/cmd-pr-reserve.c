/*
 * havenctl pr reserve: register KEY on this nexus and take the LUN's
 * Write Exclusive - Registrants Only reservation, as Haven does for every
 * volume (pr_claim): a reservation our own key already holds from an old
 * nexus is taken over; one held by another key is left alone.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_reserve_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_pr_reserve_entry;
	struct pr_status	 s;
	struct target		 t;
	uint64_t		 key = 0;
	int			 rc, error;

	if (target_key_arg(cli, cmd, args, "key", &key) == -1)
		return CLI_EXIT_USAGE;
	if (key == 0) {
		cli_usage_error(cli, cmd, "expected --key KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open_lun(cli, args_positional(args, 0), &t)) != 0)
		return rc;
	if ((error = pr_claim_sync(t.dev, key)) != 0 ||
	    (error = pr_read_sync(t.dev, &s)) != 0) {
		rc = cli_pr_error(cli, "reserving", error);
		target_close(&t);
		return rc;
	}
	if (cli->json)
		printf("{\"key\":\"0x%016" PRIx64 "\",\"holder\":\"0x%016"
		    PRIx64 "\",\"type\":%u}\n", key, s.holder, s.type);
	else if (!cli->quiet)
		printf("registered 0x%016" PRIx64 "; reservation held by "
		    "0x%016" PRIx64 "%s\n", key, s.holder, s.holder == key ?
		    " (this key)" : " (another key: writes allowed as a "
		    "registrant)");
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_pr_reserve_entry = {
	.name = "pr reserve",
	.args = {
		.options = (const struct args_option[]) {
			{ "key", 'k', ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected --key KEY and one LUN URL",
	},
	.usage = "--key KEY URL",
	.summary = "register KEY and make sure the LUN is reserved "
	    "(Registrants Only)",
	.exec = cmd_pr_reserve_exec,
};
