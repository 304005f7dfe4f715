/*
 * havenctl pr register: register a reservation key on a LUN (REGISTER AND
 * IGNORE EXISTING KEY), or remove one with --unregister. Each havenctl run
 * is its own I_T nexus; targets like tgt keep its registration after it
 * logs out.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_register_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "unregister", no_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct target	t;
	uint64_t	key = 0;
	int		c, rc, error, unregister = 0, have_key = 0;

	while ((c = getopt_long(argc, argv, "k:u", options, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (target_parse_key(optarg, &key) == -1 || key == 0) {
				cli_usage_error(cli, &cmd_pr_register_entry,
				    "bad key '%s' (0xHEX or CLUSTER:NODE_ID)",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			have_key = 1;
			break;
		case 'u':
			unregister = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_pr_register_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !have_key) {
		cli_usage_error(cli, &cmd_pr_register_entry,
		    "expected --key KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open_lun(cli, argv[optind], &t)) != 0)
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
	.usage = "--key KEY [--unregister] URL",
	.summary = "register (or remove) a reservation key on a LUN",
	.exec = cmd_pr_register_exec,
};
