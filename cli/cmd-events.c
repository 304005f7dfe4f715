/*
 * havenctl events [--follow]: the cluster's event log, oldest first (what
 * happened to which VM and host, as the replicated state recorded it);
 * --follow keeps printing new events until interrupted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "request.h"

static void
print_event(struct cli *cli, const Haven__Event *e)
{
	struct json_object	*o;
	char			 when[32];
	time_t			 secs = (time_t)(e->timestamp_us / 1000000);
	struct tm		 tm;

	if (cli->json) {
		/* One JSON object per line, so --follow can stream. */
		o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_uint64(e->seq));
		json_object_object_add(o, "time_us",
		    json_object_new_uint64(e->timestamp_us));
		json_object_object_add(o, "subject",
		    json_object_new_string(e->subject));
		json_object_object_add(o, "text", json_object_new_string(e->text));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		gmtime_r(&secs, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
		printf("%s.%03uZ  %-12s %s\n", when,
		    (unsigned)(e->timestamp_us / 1000 % 1000), e->subject,
		    e->text);
	}
}

static int
cmd_events_exec(struct cli *cli, struct args *args)
{
	Haven__EventsRequest	 req = HAVEN__EVENTS_REQUEST__INIT;
	Haven__EventsReply	*r;
	uint16_t		 type;
	size_t			 i;
	int			 fd, follow, code = 0;

	follow = args_has(args, "follow");
	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	for (;;) {
		r = (Haven__EventsReply *)client_request_code(cli, fd,
		    FRAME_EVENTS, &req.base, &type, &code);
		if (r == NULL) {
			close(fd);
			return client_error_exit(type, code);
		}
		for (i = 0; i < r->n_events; i++) {
			print_event(cli, r->events[i]);
			req.after_seq = r->events[i]->seq;
		}
		message_free(&r->base);
		fflush(stdout);
		if (!follow)
			break;
		sleep(1);
	}
	close(fd);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_events_entry = {
	.name = "events",
	.args = {
		.options = (const struct args_option[]) {
			{ "follow", 'f', 0 },
			{ NULL, 0, 0 },
		},
	},
	.usage = "[--follow] [--json]",
	.summary = "the cluster's event log; --follow for new events",
	.exec = cmd_events_exec,
};
