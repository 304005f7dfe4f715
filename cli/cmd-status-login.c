/*
 * havenctl status login: the address of this host's status page with a
 * login code for the caller (viewer or more), to open in a browser within
 * two minutes; the page trades it for a session cookie. Needed where the
 * page is reached from another host ([metrics] listen on a management
 * address) or [metrics] status_auth is always.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "request.h"

static int
cmd_status_login_exec(struct cli *cli, struct args *args)
{
	Haven__StatusLoginRequest	 req = HAVEN__STATUS_LOGIN_REQUEST__INIT;
	Haven__StatusLoginReply		*r;
	struct json_object		*o;
	int				 rc;

	r = (Haven__StatusLoginReply *)client_call(cli, FRAME_STATUS_LOGIN,
	    &req.base, FRAME_STATUS_LOGIN_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		o = json_object_new_object();
		json_object_object_add(o, "url", json_object_new_string(r->url));
		json_object_object_add(o, "role",
		    json_object_new_string(r->role));
		json_object_object_add(o, "valid_s",
		    json_object_new_int64(r->valid_s));
		if (cli_json_print(cli, o) == -1)
			rc = CLI_EXIT_FAILURE;
	} else {
		printf("%s\n", r->url);
		if (!cli->quiet)
			fprintf(stderr, "open it within %u s (once); the page "
			    "then knows you as %s for 8 hours\n", r->valid_s,
			    r->role);
		if (fflush(stdout) != 0)
			rc = CLI_EXIT_FAILURE;
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_status_login_entry = {
	.name = "status login",
	.usage = "[--json]",
	.summary = "a one-time address of this host's status page (viewer)",
	.exec = cmd_status_login_exec,
};
