/*
 * Small helpers every process needs once: the wall clock, RFC 4122 UUIDs in
 * their 36-character form, and allocations that cannot fail quietly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One hexadecimal digit's value, either case; -1 for any other character. */
int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
uuid_parse(const char *s, uint8_t u[UUID_BYTES])
{
	int	i, n = 0, hi, lo;

	if (strnlen(s, UUID_STRLEN + 1) != UUID_STRLEN)
		return -1;
	for (i = 0; i < UUID_STRLEN; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		if ((hi = hex_digit(s[i])) == -1 ||
		    (lo = hex_digit(s[i + 1])) == -1)
			return -1;
		u[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

int
uuid_valid(const char *s)
{
	uint8_t	u[UUID_BYTES];

	return uuid_parse(s, u) == 0;
}

void
uuid_format(const uint8_t u[UUID_BYTES], char out[UUID_STRLEN + 1])
{
	snprintf(out, UUID_STRLEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
	    u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
	    u[15]);
}

int
uuid_generate(uint8_t u[UUID_BYTES])
{
	ssize_t	n;

	do {
		n = getrandom(u, UUID_BYTES, 0);
	} while (n == -1 && errno == EINTR);
	if (n != UUID_BYTES)
		return n == -1 ? -errno : -EIO;
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);	/* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	return 0;
}

static void
x_fail(void)
{
	/* Nothing sensible runs on without memory: a daemon restarts and
	 * adopts its workers, a worker's VM is failed over. */
	log_fatal("out of memory");
}

void *
xmalloc(size_t size)
{
	void	*p;

	if ((p = malloc(size != 0 ? size : 1)) == NULL)
		x_fail();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n != 0 ? n : 1, size != 0 ? size : 1)) == NULL)
		x_fail();
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s != NULL ? s : "")) == NULL)
		x_fail();
	return p;
}

int
failpoint(const char *name)
{
	const char	*list = getenv("HAVEN_FAILPOINTS"), *p;
	size_t		 len = strlen(name);

	if (len == 0)
		return 0;
	for (p = list; p != NULL && *p != '\0'; p += strcspn(p, ",")) {
		p += strspn(p, ",");
		if (strncmp(p, name, len) == 0 && (p[len] == ',' ||
		    p[len] == '\0'))
			return 1;
	}
	return 0;
}
