/*
 * fence/agent.c, the fence agent runner, against small shell scripts posing
 * as agents: results and sentences, the stdin protocol with {host}/{node},
 * timeouts, secrets kept out of the detail, and the SIGCHLD hand-off.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "fence.h"

static char	tmpdir[64];

struct outcome {
	int		 done;
	int		 result;
	char		 detail[FENCE_AGENT_DETAIL_MAX];
	uint64_t	 ms;
};

static void
done_cb(int result, const char *detail, void *arg)
{
	struct outcome	*o = arg;

	o->done++;
	o->result = result;
	snprintf(o->detail, sizeof o->detail, "%s", detail);
	o->ms = ev_now_ms();
}

/* Runs the loop until o is done or limit_ms pass. */
static void
run_until(struct event_base *base, struct outcome *o, uint64_t limit_ms)
{
	uint64_t	start = ev_now_ms();

	while (!o->done && ev_now_ms() - start < limit_ms)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Writes an executable script; returns its path (static buffer per name). */
static const char *
agent_script(const char *name, const char *body)
{
	static char	path[8][128];
	static int	next;
	char		*p = path[next++ % 8];
	FILE		*f;

	snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(p, "w"));
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
	return p;
}

/* No such process, or a zombie waiting for its (new) parent. */
static int
gone(pid_t pid)
{
	char	path[64], buf[256], *p;
	FILE	*f;
	size_t	 n;

	if (kill(pid, 0) == -1)
		return 1;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

static char *
slurp(const char *path)
{
	static char	buf[4096];
	FILE		*f;
	size_t		 n;

	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/haven-fence-agent-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	*state = ev_base_new();
	return *state == NULL;
}

static int
teardown(void **state)
{
	char	cmd[128];

	event_base_free(*state);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) != 0;
}

static void
test_success(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	const char		*agent;
	struct fence_agent_run	*run;

	agent = agent_script("fence_ok", "cat >/dev/null\n"
	    "echo 'x.py:5: DeprecationWarning: old' >&2\n"
	    "echo 'Success: Powered OFF'");
	run = fence_agent_start(base, agent, "off", NULL, NULL, 0, "haven-h1",
	    1, 5000, done_cb, &o);
	assert_non_null(run);
	assert_true(fence_agent_pid(run) > 0);
	assert_int_equal(o.done, 0);	/* never from inside start */
	run_until(base, &o, 5000);
	assert_int_equal(o.done, 1);
	assert_int_equal(o.result, FENCE_AGENT_OK);
	assert_string_equal(o.detail,
	    "fence_ok off succeeded: Success: Powered OFF");
}

static void
test_exit_1_stderr_line(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	const char		*agent;

	agent = agent_script("fence_fail", "cat >/dev/null\n"
	    "echo 'Connecting' >&2\n"
	    "echo '2026-11-26 05:06:25,636 ERROR: Failed: Unable to obtain "
	    "correct plug status' >&2\n"
	    "echo '' >&2\n"
	    "echo \"2026-11-26 05:06:25,637 ERROR: Please use '-h' for usage\" "
	    ">&2\n"
	    "exit 1");
	assert_non_null(fence_agent_start(base, agent, "off", NULL, NULL, 0,
	    "haven-h1", 1, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.done, 1);
	assert_int_equal(o.result, FENCE_AGENT_FAILED);
	assert_string_equal(o.detail, "fence_fail exited 1: Failed: Unable to "
	    "obtain correct plug status");

	memset(&o, 0, sizeof o);
	agent = agent_script("fence_silent", "exit 3");
	assert_non_null(fence_agent_start(base, agent, "off", NULL, NULL, 0,
	    "haven-h1", 1, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_FAILED);
	assert_string_equal(o.detail, "fence_silent exited 3 (no output)");

	memset(&o, 0, sizeof o);
	agent = agent_script("fence_signal", "echo dying >&2; kill -9 $$");
	assert_non_null(fence_agent_start(base, agent, "off", NULL, NULL, 0,
	    "haven-h1", 1, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_FAILED);
	assert_string_equal(o.detail, "fence_signal was killed by signal 9 "
	    "(Killed): dying");
}

static void
test_stdin_protocol(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	char			 body[256], out[160];
	const char		*agent;
	const char *const	 keys[] = { "ip", "ipport", "username",
				    "password", "action", "plug", "lanplus" };
	const char *const	 values[] = { "10.77.1.10{node}", "623",
				    "haven", "pa{host}ss word=1", "reboot",
				    "{host}-{node}", "1" };

	snprintf(out, sizeof out, "%s/stdin.txt", tmpdir);
	snprintf(body, sizeof body, "cat >'%s'", out);
	agent = agent_script("fence_stdin", body);
	assert_non_null(fence_agent_start(base, agent, "off", keys, values, 7,
	    "haven-h1", 1, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_OK);
	/* action first, "action" of the options dropped, placeholders
	 * substituted except in the secret. */
	assert_string_equal(slurp(out),
	    "action=off\n"
	    "ip=10.77.1.101\n"
	    "ipport=623\n"
	    "username=haven\n"
	    "password=pa{host}ss word=1\n"
	    "plug=haven-h1-1\n"
	    "lanplus=1\n");
}

static void
test_secret_not_in_detail(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	const char		*agent;
	const char *const	 keys[] = { "ip", "passwd", "snmp_secret" };
	const char *const	 values[] = { "10.0.0.1", "Hunter2Hunter2",
				    "OtherSecretValue" };

	/* An agent that echoes its whole stdin, as a verbose one might. */
	agent = agent_script("fence_echo", "while read -r l; do "
	    "echo \"got $l\" >&2; done\necho 'failed for Hunter2Hunter2, "
	    "OtherSecretValue' >&2\nexit 1");
	assert_non_null(fence_agent_start(base, agent, "off", keys, values, 3,
	    "haven-h2", 2, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_FAILED);
	assert_null(strstr(o.detail, "Hunter2"));
	assert_null(strstr(o.detail, "OtherSecret"));
	assert_string_equal(o.detail, "fence_echo exited 1: failed for ***, "
	    "***");

	/* Only the beginning of it, the line cut at the detail's end. */
	memset(&o, 0, sizeof o);
	agent = agent_script("fence_echo2", "cat >/dev/null\n"
	    "printf 'password was Hunter2Hu' >&2\nexit 1");
	assert_non_null(fence_agent_start(base, agent, "off", keys, values, 3,
	    "haven-h2", 2, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_null(strstr(o.detail, "Hunter2"));
	assert_string_equal(o.detail, "fence_echo2 exited 1: password was ***");
}

static void
test_timeout_killed(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	struct fence_agent_run	*run;
	char			 body[256], pidfile[128];
	const char		*agent;
	uint64_t		 start;
	pid_t			 pid, grandchild;

	/* A child of the agent (ipmitool under fence_ipmilan) goes too. */
	snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", tmpdir);
	snprintf(body, sizeof body, "sleep 30 &\necho $! >'%s'\nwait",
	    pidfile);
	agent = agent_script("fence_hang", body);
	start = ev_now_ms();
	run = fence_agent_start(base, agent, "off", NULL, NULL, 0, "haven-h1",
	    1, 300, done_cb, &o);
	assert_non_null(run);
	pid = fence_agent_pid(run);
	run_until(base, &o, 5000);
	assert_int_equal(o.done, 1);
	assert_int_equal(o.result, FENCE_AGENT_TIMEOUT);
	assert_string_equal(o.detail, "fence_hang timed out after 0.3 s");
	assert_true(o.ms - start >= 290);	/* libevent's coarse clock */
	assert_true(o.ms - start < 2000);	/* SIGTERM was enough */
	assert_int_equal(kill(pid, 0), -1);	/* reaped: no zombie */
	assert_int_equal(errno, ESRCH);
	grandchild = atoi(slurp(pidfile));
	assert_true(grandchild > 0);
	start = ev_now_ms();
	while (!gone(grandchild) && ev_now_ms() - start < 2000)
		usleep(10000);
	assert_true(gone(grandchild));

	/* One that ignores SIGTERM gets SIGKILL after the grace. */
	memset(&o, 0, sizeof o);
	agent = agent_script("fence_stubborn", "trap '' TERM\n"
	    "while :; do sleep 0.05; done");
	start = ev_now_ms();
	run = fence_agent_start(base, agent, "off", NULL, NULL, 0, "haven-h1",
	    1, 1000, done_cb, &o);
	assert_non_null(run);
	pid = fence_agent_pid(run);
	run_until(base, &o, 10000);
	assert_int_equal(o.result, FENCE_AGENT_TIMEOUT);
	assert_string_equal(o.detail, "fence_stubborn timed out after 1 s");
	assert_true(o.ms - start >= 1000 + FENCE_AGENT_KILL_GRACE_MS - 20);
	assert_int_equal(kill(pid, 0), -1);
}

/* Blocks until pid has exited, without reaping it. */
static void
wait_exited(pid_t pid)
{
	siginfo_t	si;

	memset(&si, 0, sizeof si);
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(si.si_pid, pid);
}

static void
test_reaped_elsewhere(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	struct fence_agent_run	*run;
	const char		*agent;
	int			 status;
	pid_t			 pid;

	/* havend's SIGCHLD handler gets there first and hands it over. */
	agent = agent_script("fence_quick", "echo done");
	run = fence_agent_start(base, agent, "status", NULL, NULL, 0,
	    "haven-h1", 1, 5000, done_cb, &o);
	assert_non_null(run);
	pid = fence_agent_pid(run);
	assert_int_equal(fence_agent_reaped(pid + 100000, 0), 0);
	wait_exited(pid);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(fence_agent_reaped(pid, status), 1);
	assert_int_equal(fence_agent_reaped(pid, status), 0);
	assert_int_equal(o.done, 0);	/* from the loop, not from here */
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_OK);
	assert_string_equal(o.detail, "fence_quick status succeeded: done");

	/* Reaped and not handed over: unknown, never a success. */
	memset(&o, 0, sizeof o);
	run = fence_agent_start(base, agent, "off", NULL, NULL, 0, "haven-h1",
	    1, 5000, done_cb, &o);
	assert_non_null(run);
	pid = fence_agent_pid(run);
	wait_exited(pid);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	run_until(base, &o, 5000);
	assert_int_equal(o.done, 1);
	assert_int_equal(o.result, FENCE_AGENT_LOST);
	assert_non_null(strstr(o.detail, "result is unknown"));
}

static void
test_cancel(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	struct fence_agent_run	*run;
	const char		*agent;
	uint64_t		 start;
	pid_t			 pid;

	agent = agent_script("fence_slow", "exec sleep 30");
	run = fence_agent_start(base, agent, "off", NULL, NULL, 0, "haven-h1",
	    1, 60000, done_cb, &o);
	assert_non_null(run);
	pid = fence_agent_pid(run);
	fence_agent_cancel(run);
	/* Reaped from the loop; no callback. */
	start = ev_now_ms();
	while (kill(pid, 0) == 0 && ev_now_ms() - start < 3000)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(o.done, 0);
}

static int
child_ok(void *arg)
{
	printf("noise\nfenced %s\n", (const char *)arg);
	return 0;
}

static int
child_fail(void *arg)
{
	fprintf(stderr, "no Pacemaker fencer is running on this host\n");
	return 1;
}

static void
test_child_mode(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	char			 victim[] = "haven-h3";

	assert_non_null(fence_agent_start_child(base, "pacemaker", child_ok,
	    victim, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_OK);
	assert_string_equal(o.detail, "fenced haven-h3");

	memset(&o, 0, sizeof o);
	assert_non_null(fence_agent_start_child(base, "pacemaker", child_fail,
	    NULL, 5000, done_cb, &o));
	run_until(base, &o, 5000);
	assert_int_equal(o.result, FENCE_AGENT_FAILED);
	assert_string_equal(o.detail,
	    "no Pacemaker fencer is running on this host");
}

static void
test_refused(void **state)
{
	struct event_base	*base = *state;
	struct outcome		 o = { 0 };
	const char		*agent;
	const char *const	 bad_value[] = { "a\nport=2" };
	const char *const	 bad_key[] = { "a=b" };
	const char *const	 ok_key[] = { "ip" };

	errno = 0;
	assert_null(fence_agent_start(base, "fence_haven_none", "off", NULL,
	    NULL, 0, "h", 1, 1000, done_cb, &o));
	assert_int_equal(errno, ENOENT);
	assert_null(fence_agent_start(base, "bin/fence_x", "off", NULL, NULL,
	    0, "h", 1, 1000, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	agent = agent_script("fence_never", "exit 0");
	assert_null(fence_agent_start(base, agent, "off", ok_key, bad_value, 1,
	    "h", 1, 1000, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(fence_agent_start(base, agent, "off", bad_key, bad_value,
	    1, "h", 1, 1000, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(fence_agent_start(base, agent, "of\nf", NULL, NULL, 0, "h",
	    1, 1000, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(o.done, 0);
}

static void
test_helpers(void **state)
{
	char	out[32], path[64];

	assert_int_equal(fence_agent_substitute("10.77.1.10{node}", "h", 7,
	    out, sizeof out), 0);
	assert_string_equal(out, "10.77.1.107");
	assert_int_equal(fence_agent_substitute("{host}.bmc:{x}", "haven-h2", 2,
	    out, sizeof out), 0);
	assert_string_equal(out, "haven-h2.bmc:{x}");
	assert_int_equal(fence_agent_substitute("{host}{host}{host}",
	    "0123456789ab", 1, out, sizeof out), -1);
	assert_int_equal(fence_agent_substitute("", "h", 1, out, 1), 0);
	assert_string_equal(out, "");

	assert_true(fence_agent_is_secret("password"));
	assert_true(fence_agent_is_secret("passwd_script"));
	assert_true(fence_agent_is_secret("snmp_priv_secret"));
	assert_false(fence_agent_is_secret("username"));

	assert_int_equal(fence_agent_path("fence_ipmilan", path, sizeof path),
	    0);
	assert_string_equal(path, FENCE_AGENT_DIR "/fence_ipmilan");
	assert_int_equal(fence_agent_path("/opt/fence_x", path, sizeof path),
	    0);
	assert_string_equal(path, "/opt/fence_x");
	assert_int_equal(fence_agent_path("..", path, sizeof path), -1);
	assert_int_equal(fence_agent_path("a/b", path, sizeof path), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test_setup_teardown(test_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_1_stderr_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stdin_protocol, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_secret_not_in_detail,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_killed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reaped_elsewhere, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	log_init("fence_agent_test", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
