/*
 * Unit tests of logging: the level filter on the sink, the ring that keeps
 * every line (debug included) and wraps, scoped lines, and level parsing;
 * the journal: a sink that $JOURNAL_STREAM names gets native journal
 * messages with the priority and HAVEN_VM, a socket in a private mount
 * namespace standing in for journald (root only), and a sink it does not
 * name gets the plain lines.
 */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <sched.h>
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

/* JOURNAL_STREAM naming fd (as systemd sets it for a service's stderr). */
static void
name_journal_stream(int fd)
{
	struct stat	st;
	char		env[64];

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof env, "%ju:%ju", (uintmax_t)st.st_dev,
	    (uintmax_t)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", env, 1), 0);
}

static void
test_journal_stream_named(void **state)
{
	int	p[2], q[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	name_journal_stream(p[1]);
	assert_true(log_fd_is_journal(p[1]));
	assert_false(log_fd_is_journal(q[1]));
	assert_int_equal(setenv("JOURNAL_STREAM", "12:x", 1), 0);
	assert_false(log_fd_is_journal(p[1]));
	assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
	assert_false(log_fd_is_journal(p[1]));
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/*
 * In a child with its own mount namespace and an empty /run: journald's
 * socket is ours. Exits 0 when the journal got the message with its
 * fields and the stream nothing; 2 when the namespace cannot be made.
 */
static int
journal_child(void)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	char			 msg[4096], *text;
	ssize_t			 n;
	int			 s, p[2];

	if (unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "size=1m") == -1 ||
	    mkdir("/run/systemd", 0755) == -1 ||
	    mkdir("/run/systemd/journal", 0755) == -1)
		return 2;
	snprintf(sun.sun_path, sizeof sun.sun_path,
	    "/run/systemd/journal/socket");
	if ((s = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sun, sizeof sun) == -1 || pipe(p) == -1)
		return 2;
	name_journal_stream(p[1]);
	log_set_sink(p[1]);
	log_init("havend", LOG_LEVEL_INFO);
	log_vm(LOG_LEVEL_WARN, "web1", "storage lost after %d s", 3);
	log_debug("below the level: not sent");
	n = recv(s, msg, sizeof msg - 1, MSG_DONTWAIT);
	if (n <= 0)
		return 3;
	msg[n] = '\0';
	if (strstr(msg, "MESSAGE=vm web1: storage lost after 3 s\n") == NULL ||
	    strstr(msg, "PRIORITY=4\n") == NULL ||
	    strstr(msg, "SYSLOG_IDENTIFIER=havend\n") == NULL ||
	    strstr(msg, "HAVEN_VM=web1\n") == NULL ||
	    strstr(msg, "HAVEN_SCOPE=vm web1\n") == NULL)
		return 4;
	if (recv(s, msg, sizeof msg, MSG_DONTWAIT) != -1)
		return 5;	/* the debug line went out */
	/* Nothing on the stream itself. */
	close(p[1]);
	log_set_sink(2);
	text = read_pipe(p[0]);
	return *text == '\0' ? 0 : 6;
}

static void
test_journal_native(void **state)
{
	pid_t	pid;
	int	status;

	if (geteuid() != 0)
		skip();
	if ((pid = fork()) == 0)
		_exit(journal_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		skip();		/* no mount namespace here */
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A stream that is not the journal's gets plain lines, JOURNAL_STREAM or not. */
static void
test_journal_other_stream(void **state)
{
	int	 p[2], other[2];
	char	*text;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(other), 0);
	name_journal_stream(other[1]);
	log_set_sink(p[1]);
	log_init("havend", LOG_LEVEL_INFO);
	log_vm(LOG_LEVEL_WARN, "web1", "plain");
	close(p[1]);
	log_set_sink(2);
	text = read_pipe(p[0]);
	assert_non_null(strstr(text, "havend["));
	assert_non_null(strstr(text, "warn: vm web1: plain\n"));
	unsetenv("JOURNAL_STREAM");
	close(p[0]);
	close(other[0]);
	close(other[1]);
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
		cmocka_unit_test(test_journal_stream_named),
		cmocka_unit_test(test_journal_native),
		cmocka_unit_test(test_journal_other_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
