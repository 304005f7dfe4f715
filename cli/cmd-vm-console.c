/*
 * havenctl vm console NAME [--follow] [--tail BYTES]: what a VM wrote to its
 * serial console, read from its serial log on the host that runs it. A
 * read-only view: nothing typed here reaches the guest.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "request.h"

#define CONSOLE_CHUNK		65536	/* max_bytes: havend's cap */
#define CONSOLE_DEFAULT_TAIL	4096
#define CONSOLE_POLL_MS		250

/* What --json collects: every byte read, and where it lies in the log. */
struct console_text {
	uint8_t		*data;
	size_t		 len;
	uint64_t	 offset;
	uint64_t	 next;
	uint32_t	 owner;
};

/*
 * Wait up to ms for SIGINT or SIGTERM, which --follow keeps blocked so that
 * one arriving mid-request waits here instead of cutting a reply in half.
 * Returns 1 when one came.
 */
static int
console_stopped(const sigset_t *stop, int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	return sigtimedwait(stop, NULL, &ts) > 0;
}

static int
console_append(struct console_text *t, const Haven__ConsoleReply *r)
{
	uint8_t	*p;

	if (t->data == NULL)
		t->offset = r->offset;
	if ((p = realloc(t->data, t->len + r->data.len + 1)) == NULL)
		return -1;
	memcpy(p + t->len, r->data.data, r->data.len);
	t->data = p;
	t->len += r->data.len;
	t->next = r->next;
	t->owner = r->owner;
	return 0;
}

static int
console_json(struct cli *cli, const char *name, const struct console_text *t)
{
	struct json_object	*o;
	char			*clean;
	size_t			 len;

	if ((clean = malloc(t->len * 3 + 1)) == NULL)
		return -1;
	len = cli_utf8_clean(t->data, t->len, clean);
	o = json_object_new_object();
	json_object_object_add(o, "vm", json_object_new_string(name));
	json_object_object_add(o, "owner", json_object_new_int64(t->owner));
	json_object_object_add(o, "offset", json_object_new_uint64(t->offset));
	json_object_object_add(o, "next", json_object_new_uint64(t->next));
	json_object_object_add(o, "data",
	    json_object_new_string_len(clean, (int)len));
	free(clean);
	return cli_json_print(cli, o);
}

static int
cmd_vm_console_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_vm_console_entry;
	Haven__ConsoleRequest	 req = HAVEN__CONSOLE_REQUEST__INIT;
	Haven__ConsoleReply	*r;
	struct console_text	 text = { 0 };
	sigset_t		 stop;
	const char		*arg;
	uint64_t		 tail = CONSOLE_DEFAULT_TAIL, got = 0;
	uint16_t		 type;
	int			 fd, more, follow, code = 0;
	int			 rc = CLI_EXIT_FAILURE;

	follow = args_has(args, "follow");
	if ((arg = args_get(args, "tail")) != NULL &&
	    (cli_parse_size(arg, &tail) == -1 || tail > INT64_MAX)) {
		cli_usage_error(cli, cmd, "bad --tail '%s': a number of bytes "
		    "(4096, 64K); 0 starts at the beginning of the log", arg);
		return CLI_EXIT_USAGE;
	}
	if (request_vm_name(cli, cmd, args, &arg) == -1)
		return CLI_EXIT_USAGE;
	req.name = (char *)arg;
	if (follow && cli->json) {
		cli_usage_error(cli, cmd, "--json prints one object and does "
		    "not go with --follow");
		return CLI_EXIT_USAGE;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (follow && sigprocmask(SIG_BLOCK, &stop, NULL) == -1) {
		cli_error(cli, "sigprocmask: %s", strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	req.tail = (int64_t)tail;
	req.max_bytes = CONSOLE_CHUNK;
	for (;;) {
		r = (Haven__ConsoleReply *)client_request_code(cli, fd,
		    FRAME_VM_CONSOLE, &req.base, &type, &code);
		if (r == NULL) {
			rc = client_error_exit(type, code);
			goto done;
		}
		if (type != FRAME_VM_CONSOLE_REPLY) {
			cli_error(cli, "havend sent an unexpected reply (type "
			    "%u, expected %u); are havenctl and havend the "
			    "same version?", type, FRAME_VM_CONSOLE_REPLY);
			message_free(&r->base);
			goto done;
		}
		/* The log was rotated or cut while we waited: say so. */
		if (req.tail == 0 && r->offset != req.offset && !cli->quiet)
			fprintf(stderr, "\nhavenctl: [the console log was "
			    "rotated or cut; continuing at byte %" PRIu64 "]\n",
			    r->offset);
		if (cli->json) {
			if (console_append(&text, r) == -1) {
				cli_error(cli, "out of memory");
				message_free(&r->base);
				goto done;
			}
		} else if (r->data.len > 0 && (fwrite(r->data.data, 1,
		    r->data.len, stdout) != r->data.len ||
		    fflush(stdout) != 0)) {
			cli_error(cli, "writing the console: %s",
			    strerror(errno));
			message_free(&r->base);
			goto done;
		}
		got += r->data.len;
		/* A full chunk: more is waiting, ask again at once. */
		more = r->data.len >= CONSOLE_CHUNK && r->next > req.offset;
		req.offset = r->next;
		req.tail = 0;
		message_free(&r->base);
		if (!follow && !(more && (tail == 0 || got < tail)))
			break;
		if (follow && console_stopped(&stop, more ? 0 :
		    CONSOLE_POLL_MS))
			break;
	}
	rc = CLI_EXIT_OK;
	if (cli->json && console_json(cli, req.name, &text) == -1)
		rc = CLI_EXIT_FAILURE;
done:
	close(fd);
	free(text.data);
	return rc;
}

const struct cmd_entry cmd_vm_console_entry = {
	.name = "vm console",
	.args = {
		.options = (const struct args_option[]) {
			{ "follow", 'f', 0 },
			{ "tail", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "NAME [--follow] [--tail BYTES] [--json]",
	.summary = "a VM's serial console, read-only (no input); --follow "
	    "for more",
	.exec = cmd_vm_console_exec,
};
