/*
 * havenctl debug log: the last lines havend logged, oldest first, from the
 * ring it keeps in memory at every level (sanlock's model), to look back at
 * an incident without having raised the log level beforehand. Admin only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "request.h"

/* 2026-12-07T05:01:02.123456Z: UTC, to the microsecond the ring keeps. */
static void
debug_log_time(uint64_t time_us, char *buf, size_t len)
{
	time_t		secs = (time_t)(time_us / 1000000);
	struct tm	tm;
	char		when[32];

	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06" PRIu64 "Z", when, time_us % 1000000);
}

/* The text as a JSON string. havend cuts a long line at a byte count,
 * which can split a UTF-8 sequence: that part becomes U+FFFD. */
static struct json_object *
debug_log_text(const char *text)
{
	struct json_object	*s;
	size_t			 len = strlen(text), n;
	char			*clean;

	if ((clean = malloc(len * 3 + 1)) == NULL)
		return NULL;
	n = cli_utf8_clean((const uint8_t *)text, len, clean);
	s = json_object_new_string_len(clean, (int)n);
	free(clean);
	return s;
}

static int
cmd_debug_log_exec(struct cli *cli, struct args *args)
{
	Haven__DebugLogRequest	 req = HAVEN__DEBUG_LOG_REQUEST__INIT;
	Haven__DebugLogReply	*r;
	const Haven__DebugLogLine *l;
	struct json_object	*arr, *o;
	char			 when[48];
	size_t			 i;
	int			 rc;

	r = (Haven__DebugLogReply *)client_call(cli, FRAME_DEBUG_LOG,
	    &req.base, FRAME_DEBUG_LOG_REPLY, &rc);
	if (r == NULL)
		return rc;
	if (cli->json) {
		arr = json_object_new_array();
		for (i = 0; i < r->n_lines; i++) {
			l = r->lines[i];
			debug_log_time(l->time_us, when, sizeof when);
			o = json_object_new_object();
			json_object_object_add(o, "time_us",
			    json_object_new_uint64(l->time_us));
			json_object_object_add(o, "time",
			    json_object_new_string(when));
			json_object_object_add(o, "level",
			    json_object_new_string(l->level));
			json_object_object_add(o, "text",
			    debug_log_text(l->text));
			json_object_array_add(arr, o);
		}
		if (cli_json_print(cli, arr) == -1)
			rc = CLI_EXIT_FAILURE;
	} else {
		for (i = 0; i < r->n_lines; i++) {
			l = r->lines[i];
			debug_log_time(l->time_us, when, sizeof when);
			printf("%s %-5s %s\n", when, l->level, l->text);
		}
		if (fflush(stdout) != 0)
			rc = CLI_EXIT_FAILURE;
	}
	message_free(&r->base);
	return rc;
}

const struct cmd_entry cmd_debug_log_entry = {
	.name = "debug log",
	.usage = "[--json]",
	.summary = "havend's last log lines, every level (admin only)",
	.exec = cmd_debug_log_exec,
};
