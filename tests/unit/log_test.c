/*
 * Unit tests of logging: the level filter on the sink, the ring that keeps
 * every line (debug included) and wraps, scoped lines, and level parsing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"

static char *
read_pipe(int fd)
{
	static char	buf[65536];
	ssize_t		n;

	n = read(fd, buf, sizeof buf - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void
collect(const struct log_line *line, void *arg)
{
	char	*out = arg;

	strcat(out, line->text);
	strcat(out, "\n");
}

static void
test_levels_and_ring(void **state)
{
	static char	all[LOG_RING_LINES * 64];
	int		p[2];
	char		*sink;

	assert_int_equal(pipe(p), 0);
	log_ring_clear();
	log_init("log_test", LOG_LEVEL_INFO);
	log_set_sink(p[1]);
	log_debug("quiet %d", 1);
	log_info("loud %d", 2);
	log_scoped(LOG_LEVEL_WARN, "vm", "web1", "lease lost to %s", "h2");
	close(p[1]);
	sink = read_pipe(p[0]);
	close(p[0]);
	/* The sink got info and above only, with time, program and level. */
	assert_null(strstr(sink, "quiet"));
	assert_non_null(strstr(sink, "log_test["));
	assert_non_null(strstr(sink, "]: info: loud 2\n"));
	assert_non_null(strstr(sink, ": warn: vm web1: lease lost to h2\n"));
	/* The ring has all three, debug included, oldest first. */
	all[0] = '\0';
	assert_int_equal(log_ring_foreach(collect, all), 3);
	assert_string_equal(all,
	    "quiet 1\nloud 2\nvm web1: lease lost to h2\n");
	log_set_sink(-1);
}

static void
test_ring_wraps(void **state)
{
	static char	all[LOG_RING_LINES * 64];
	int		i;

	log_set_sink(-1);
	log_ring_clear();
	for (i = 0; i < LOG_RING_LINES + 10; i++)
		log_debug("line %d", i);
	all[0] = '\0';
	assert_int_equal(log_ring_foreach(collect, all), LOG_RING_LINES);
	/* The oldest ten fell out. */
	assert_true(strncmp(all, "line 10\n", 8) == 0);
	assert_non_null(strstr(all, "line 1033\n"));
}

static void
test_long_line_truncated(void **state)
{
	static char	big[4096], all[LOG_RING_LINES * 64];

	memset(big, 'x', sizeof big - 1);
	log_set_sink(-1);
	log_ring_clear();
	log_info("%s", big);
	all[0] = '\0';
	log_ring_foreach(collect, all);
	assert_int_equal(strlen(all), LOG_LINE_MAX - 1 + 1);
}

static void
test_dump(void **state)
{
	int	p[2];
	char	*out;

	log_set_sink(-1);
	log_ring_clear();
	log_debug("kept for later");
	assert_int_equal(pipe(p), 0);
	log_ring_dump(p[1]);
	close(p[1]);
	out = read_pipe(p[0]);
	close(p[0]);
	assert_non_null(strstr(out, ": debug: kept for later\n"));
}

static void
test_parse(void **state)
{
	enum log_level	l;

	assert_int_equal(log_level_parse("WARN", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("loud", &l), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(log_level_name(LOG_LEVEL_DEBUG), "debug");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_and_ring),
		cmocka_unit_test(test_ring_wraps),
		cmocka_unit_test(test_long_line_truncated),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
