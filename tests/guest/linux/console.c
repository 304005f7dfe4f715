/*
 * console.c: the service's serial lines, "HAVEN-GUEST boot=<16 hex> <event>\n" on COM1
 * exactly as the toy guest prints them, so the chaos runner and haven-journal-check read
 * either guest. Each line is one write() to a raw tty: no "\r" is added, none is torn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "service.h"

#define CONSOLE_LINE_MAX	512

static int	 console_fd = STDOUT_FILENO;
static uint64_t	 console_boot_id;

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
		fd = open(paths[i], O_WRONLY | O_NOCTTY | O_CLOEXEC);
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
