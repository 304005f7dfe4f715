/*
 * console.c: the service's serial lines, "HAVEN-GUEST boot=<16 hex> <event>\n" on COM1
 * exactly as the toy guest prints them, so the chaos runner and haven-journal-check read
 * either guest. Each line is one write() to a raw tty: no "\r" is added, none is torn.
 * It also reads commands typed on COM1 (havenctl vm console --attach), one a line ended
 * by "\r" or "\n": "echo TEXT" answers "console echo TEXT", "flood LINES" writes that
 * many 150-byte lines then "console flood done LINES" (a serial log's cap in the lab),
 * anything else "console unknown ...".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "service.h"

#define CONSOLE_LINE_MAX	512
#define CONSOLE_COMMAND_MAX	256
#define CONSOLE_FLOOD_MAX	1000000

static int	 console_fd = STDOUT_FILENO;
static uint64_t	 console_boot_id;
static char	 console_command[CONSOLE_COMMAND_MAX];
static size_t	 console_command_len;
static int	 console_command_long;	/* dropping a line too long until its end */

/*
 * COM1 is /dev/ttyS0 whatever console= says; /dev/console is the fallback. The tty is made
 * raw so that ONLCR does not turn "\n" into "\r\n", which the readers' patterns reject.
 */
void
console_open(uint64_t boot_id)
{
	static const char *const paths[] = { "/dev/ttyS0", "/dev/console" };
	struct termios termios;
	int fd;

	console_boot_id = boot_id;
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		fd = open(paths[i], O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (tcgetattr(fd, &termios) == 0) {
			cfmakeraw(&termios);
			cfsetispeed(&termios, B115200);
			cfsetospeed(&termios, B115200);
			tcsetattr(fd, TCSANOW, &termios);
		}
		console_fd = fd;
		return;
	}
}

void
console_line(const char *format, ...)
{
	char line[CONSOLE_LINE_MAX];
	size_t length, done = 0;
	va_list ap;
	ssize_t n;
	int used;

	used = snprintf(line, sizeof line, "HAVEN-GUEST boot=%016llx ",
	    (unsigned long long)console_boot_id);
	va_start(ap, format);
	vsnprintf(line + used, sizeof line - (size_t)used - 1, format, ap);
	va_end(ap);
	length = strlen(line);
	line[length++] = '\n';
	while (done < length) {
		n = write(console_fd, line + done, length - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

/* The serial port to poll for typed commands; -1 (poll skips it) if COM1 is not open. */
void
console_poll_fd(struct pollfd *pfd)
{
	pfd->fd = console_fd == STDOUT_FILENO ? -1 : console_fd;
	pfd->events = POLLIN;
	pfd->revents = 0;
}

static void
console_command_run(void)
{
	unsigned long lines;
	char *end;

	console_command[console_command_len] = '\0';
	if (console_command_len == 0)
		return;
	if (strncmp(console_command, "echo ", 5) == 0)
		console_line("console echo %s", console_command + 5);
	else if (strncmp(console_command, "flood ", 6) == 0 &&
	    (lines = strtoul(console_command + 6, &end, 10)) > 0 && *end == '\0' &&
	    lines <= CONSOLE_FLOOD_MAX) {
		for (unsigned long i = 1; i <= lines; i++)
			console_line("console flood %lu/%lu %.*s", i, lines, 100,
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		console_line("console flood done %lu", lines);
	} else
		console_line("console unknown %s (try: echo TEXT, flood LINES)",
		    console_command);
}

/* What was typed: complete lines are run, the rest kept for the next read. */
void
console_read(void)
{
	char buf[256];
	ssize_t n;

	n = read(console_fd, buf, sizeof buf);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\r' || buf[i] == '\n') {
			if (!console_command_long)
				console_command_run();
			console_command_len = 0;
			console_command_long = 0;
		} else if (console_command_len + 1 >= sizeof console_command) {
			if (!console_command_long)
				console_line("console line over %zu bytes dropped",
				    sizeof console_command - 1);
			console_command_long = 1;
		} else if (!console_command_long)
			console_command[console_command_len++] = buf[i];
	}
}
