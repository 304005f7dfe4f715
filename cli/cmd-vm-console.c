/*
 * havenctl vm console NAME [--follow] [--tail BYTES]: what a VM wrote to its
 * serial console, read from its serial log on the host that runs it, a
 * read-only view. With --attach: the serial port itself, read and write,
 * the terminal raw until Ctrl-] (or the end of input) and restored on
 * every way out.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
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

/* The terminal as it was before --attach made it raw; restored by every
 * way out (return, exit, the signals that end a session). */
static struct {
	int		saved;
	struct termios	termios;
} console_tty;
static volatile sig_atomic_t console_signal;

static void
console_tty_restore(void)
{
	if (console_tty.saved) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_tty.termios);
		console_tty.saved = 0;
	}
}

static void
console_on_signal(int signo)
{
	console_signal = signo;
}

static int
console_tty_raw(struct cli *cli)
{
	struct termios	raw;

	if (!isatty(STDIN_FILENO))
		return 0;
	if (tcgetattr(STDIN_FILENO, &console_tty.termios) == -1) {
		cli_error(cli, "tcgetattr: %s", strerror(errno));
		return -1;
	}
	console_tty.saved = 1;
	atexit(console_tty_restore);
	raw = console_tty.termios;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == -1) {
		cli_error(cli, "tcsetattr: %s", strerror(errno));
		console_tty.saved = 0;
		return -1;
	}
	return 0;
}

static int
console_write_all(int fd, const uint8_t *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Between this terminal and the VM's serial port until Ctrl-], the end of
 * input, the port closing (the VM stopped, or another session took it
 * over: the worker says which before it closes) or a signal.
 */
static int
console_attach(struct cli *cli, const char *name)
{
	struct sigaction	 sa;
	struct pollfd		 pfd[2];
	uint8_t			 buf[4096];
	const char		*why = NULL;
	size_t			 keep;
	ssize_t			 n;
	int			 sock, rc, i;
	static const int	 signals[] = { SIGINT, SIGTERM, SIGHUP,
				     SIGQUIT };

	if ((rc = request_console(cli, name,
	    HAVEN__CONSOLE_KIND__CONSOLE_KIND_SERIAL, &sock)) != CLI_EXIT_OK)
		return rc;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = console_on_signal;
	for (i = 0; i < (int)(sizeof signals / sizeof signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (console_tty_raw(cli) == -1) {
		close(sock);
		return CLI_EXIT_FAILURE;
	}
	if (!cli->quiet)
		fprintf(stderr, "havenctl: connected to %s's serial console; "
		    "Ctrl-] leaves\r\n", name);
	rc = CLI_EXIT_OK;
	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[1].fd = sock;
	pfd[1].events = POLLIN;
	while (why == NULL) {
		if (console_signal != 0) {
			why = strsignal(console_signal);
			rc = CLI_EXIT_FAILURE;
			break;
		}
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			why = strerror(errno);
			rc = CLI_EXIT_FAILURE;
			break;
		}
		if (pfd[1].revents != 0) {
			n = read(sock, buf, sizeof buf);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				why = "the console closed (the VM stopped, or "
				    "another session took it over)";
				rc = CLI_EXIT_FAILURE;
				break;
			}
			if (console_write_all(STDOUT_FILENO, buf, (size_t)n)
			    == -1) {
				why = "cannot write to the terminal";
				rc = CLI_EXIT_FAILURE;
				break;
			}
		}
		if (pfd[0].revents != 0) {
			n = read(STDIN_FILENO, buf, sizeof buf);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				why = "end of input";
				break;
			}
			keep = cli_console_escape(buf, (size_t)n);
			if (console_write_all(sock, buf, keep) == -1) {
				why = "the console closed";
				rc = CLI_EXIT_FAILURE;
				break;
			}
			if (keep < (size_t)n)
				why = "Ctrl-]";
		}
	}
	close(sock);
	console_tty_restore();
	if (!cli->quiet)
		fprintf(stderr, "\nhavenctl: left %s's serial console: %s\n",
		    name, why);
	return rc;
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
	if (args_has(args, "attach")) {
		if (follow || args_get(args, "tail") != NULL || cli->json) {
			cli_usage_error(cli, cmd, "--attach is the console "
			    "itself: it goes with neither --follow, --tail "
			    "nor --json");
			return CLI_EXIT_USAGE;
		}
		if (request_vm_name(cli, cmd, args, &arg) == -1)
			return CLI_EXIT_USAGE;
		return console_attach(cli, arg);
	}
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
			{ "attach", 'a', 0 },
			{ "tail", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "NAME [--follow] [--tail BYTES] [--json] | NAME --attach",
	.summary = "a VM's serial console: its log (--follow for more), or "
	    "the port itself with --attach (Ctrl-] leaves)",
	.exec = cmd_vm_console_exec,
};
