/*
 * havenctl pr register: register a reservation key on a LUN (REGISTER AND
 * IGNORE EXISTING KEY), or remove one with --unregister. Each havenctl run
 * is its own I_T nexus; targets like tgt keep its registration after it
 * logs out.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_register_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_pr_register_entry;
	struct target		 t;
	uint64_t		 key = 0;
	int			 rc, error, unregister;

	if (target_key_arg(cli, cmd, args, "key", &key) == -1)
		return CLI_EXIT_USAGE;
	if (key == 0) {
		cli_usage_error(cli, cmd, "expected --key KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	unregister = args_has(args, "unregister");
	if ((rc = target_open_lun(cli, args_positional(args, 0), &t)) != 0)
		return rc;
	/* Unregistering: register on this nexus, then change to 0. */
	error = pr_register_sync(t.dev, 0, key, 1);
	if (error == 0 && unregister)
		error = pr_register_sync(t.dev, key, 0, 0);
	if (error != 0) {
		rc = cli_pr_error(cli, unregister ? "unregistering" :
		    "registering", error);
		target_close(&t);
		return rc;
	}
	if (cli->json)
		printf("{\"key\":\"0x%016" PRIx64 "\",\"registered\":%s}\n",
		    key, unregister ? "false" : "true");
	else if (!cli->quiet)
		printf("%s 0x%016" PRIx64 "\n", unregister ? "unregistered" :
		    "registered", key);
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_pr_register_entry = {
	.name = "pr register",
	.args = {
		.options = (const struct args_option[]) {
			{ "key", 'k', ARGS_VALUE },
			{ "unregister", 'u', 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "expected --key KEY and one LUN URL",
	},
	.usage = "--key KEY [--unregister] URL",
	.summary = "register (or remove) a reservation key on a LUN",
	.exec = cmd_pr_register_exec,
};
