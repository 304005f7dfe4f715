/*
 * havenctl pr reserve: register KEY on this nexus and take the LUN's
 * Write Exclusive - Registrants Only reservation, as Haven does for every
 * volume (pr_claim): a reservation our own key already holds from an old
 * nexus is taken over; one held by another key is left alone.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static int
cmd_pr_reserve_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct pr_status	s;
	struct target		t;
	uint64_t		key = 0;
	int			c, rc, error, have_key = 0;

	while ((c = getopt_long(argc, argv, "k:", options, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (target_parse_key(optarg, &key) == -1 || key == 0) {
				cli_usage_error(cli, &cmd_pr_reserve_entry,
				    "bad key '%s' (0xHEX or CLUSTER:NODE_ID)",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			have_key = 1;
			break;
		case 'j':
			break;
		default:
			cli_usage_error(cli, &cmd_pr_reserve_entry, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !have_key) {
		cli_usage_error(cli, &cmd_pr_reserve_entry,
		    "expected --key KEY and one LUN URL");
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open_lun(cli, argv[optind], &t)) != 0)
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
	.usage = "--key KEY URL",
	.summary = "register KEY and make sure the LUN is reserved "
	    "(Registrants Only)",
	.exec = cmd_pr_reserve_exec,
};
