/*
 * Unit tests of the worker sandbox, as root: a child drops to an unused uid
 * and gid, loads the seccomp allowlist, then runs a worker-like workload
 * (event loop, signals, iSCSI-style reconnect, fd passing, reaping "QEMU");
 * other children try what the allowlist forbids and must die of SIGSYS.
 * Runs under ASan and UBSan too (their runtimes fit the allowlist).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "worker.h"

#define TEST_UID	64000
#define TEST_GID	64001
#define TEST_QEMU_UID	64002
#define TEST_QEMU_GID	64003

/* In children: report the failed line and exit 1 (cmocka stays in the
 * parent). */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: child check failed: %s (%s)\n",	\
		    __FILE__, __LINE__, #cond, strerror(errno));	\
		_exit(1);						\
	}								\
} while (0)

/* Fork, run body in the child (which _exits with its result), wait. */
static int
run_child(int (*body)(void))
{
	pid_t	pid;
	int	status;

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0)
		_exit(body());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
assert_exited_ok(int status)
{
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
assert_killed_by_sigsys(int status)
{
	if (!WIFSIGNALED(status))
		fprintf(stderr, "not signalled: exit %d\n",
		    WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

/* The value of one "Name:\t..." line of /proc/self/status, read through an
 * fd opened before the filter. */
static void
status_field(int fd, const char *name, char *out, size_t size)
{
	char	buf[8192], *p, *end;
	ssize_t	n;
	size_t	len = strlen(name);

	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK((n = read(fd, buf, sizeof buf - 1)) > 0);
	buf[n] = '\0';
	for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, name, len) == 0 && p[len] == ':') {
			p += len + 1;
			p += strspn(p, "\t ");
			end = strchr(p, '\n');
			snprintf(out, size, "%.*s", end ? (int)(end - p) :
			    (int)strlen(p), p);
			return;
		}
	}
	CHECK(!"status field missing");
}

static void
check_status(int fd, const char *name, const char *want)
{
	char	got[256];

	status_field(fd, name, got, sizeof got);
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "/proc/self/status %s: got '%s', want '%s'\n",
		    name, got, want);
		_exit(1);
	}
}

static void
check_dropped(int fd)
{
	char	ids[64];

	snprintf(ids, sizeof ids, "%d\t%d\t%d\t%d", TEST_UID, TEST_UID,
	    TEST_UID, TEST_UID);
	check_status(fd, "Uid", ids);
	snprintf(ids, sizeof ids, "%d\t%d\t%d\t%d", TEST_GID, TEST_GID,
	    TEST_GID, TEST_GID);
	check_status(fd, "Gid", ids);
	check_status(fd, "Groups", "");
	check_status(fd, "CapInh", "0000000000000000");
	check_status(fd, "CapPrm", "0000000000000000");
	check_status(fd, "CapEff", "0000000000000000");
	check_status(fd, "CapBnd", "0000000000000000");
	check_status(fd, "CapAmb", "0000000000000000");
	check_status(fd, "NoNewPrivs", "1");
}

/* --- the worker-like workload ------------------------------------------ */

struct workload {
	struct event_base	*base;
	int			 pipe[2];
	int			 got_byte;
	int			 timer_fired;
	pid_t			 qemu;
	int			 qemu_reaped;
};

static void
workload_timer(void *arg)
{
	struct workload	*w = arg;

	w->timer_fired = 1;
	CHECK(write(w->pipe[1], "x", 1) == 1);
}

static void
workload_readable(evutil_socket_t fd, short events, void *arg)
{
	struct workload	*w = arg;
	char		 c;

	CHECK(read(fd, &c, 1) == 1 && c == 'x');
	w->got_byte = 1;
	event_base_loopbreak(w->base);
}

static void
workload_signal(int signo, void *arg)
{
	struct workload	*w = arg;
	int		 status;

	CHECK(signo == SIGCHLD);
	if (waitpid(w->qemu, &status, WNOHANG) == w->qemu) {
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		w->qemu_reaped = 1;
		event_base_loopbreak(w->base);
	}
}

static int
wait_fd(int fd, short events)
{
	struct pollfd	pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, 5000) == 1 ? 0 : -1;
}

/* What libiscsi does to (re)connect: getaddrinfo with no hints, a
 * nonblocking TCP connect, socket options, FIONREAD, dup2 onto the old fd. */
static void
workload_iscsi(int listener, uint16_t port, int old_fd)
{
	struct addrinfo	*ai;
	char		 service[8], buf[4];
	int		 fd, server, one = 1, err, avail;
	socklen_t	 len = sizeof err;

	snprintf(service, sizeof service, "%u", port);
	CHECK(getaddrinfo("127.0.0.1", service, NULL, &ai) == 0);
	CHECK((fd = socket(ai->ai_family, SOCK_STREAM, 0)) != -1);
	CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) ==
	    0);
	CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ==
	    0);
	CHECK(connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
	    errno == EINPROGRESS);
	freeaddrinfo(ai);
	CHECK(dup2(fd, old_fd) == old_fd);
	close(fd);
	fd = old_fd;
	CHECK(wait_fd(listener, POLLIN) == 0);
	CHECK((server = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) != -1);
	CHECK(wait_fd(fd, POLLOUT) == 0);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err == 0);
	CHECK(write(fd, "scsi", 4) == 4);
	CHECK(wait_fd(server, POLLIN) == 0);
	CHECK(ioctl(server, FIONREAD, &avail) == 0 && avail == 4);
	CHECK(read(server, buf, 4) == 4 && memcmp(buf, "scsi", 4) == 0);
	CHECK(shutdown(fd, SHUT_RDWR) == 0);
	close(server);
	close(fd);
}

/* An fd to QEMU over QMP's Unix socket (getfd / add-fd). */
static void
workload_pass_fd(int unix_listener, int client, const struct sockaddr_un *sun)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	align;
	} control;
	int		 server, p[2], got;
	char		 c = 'q';

	/* QEMU's end, made before the filter: the worker makes no new Unix
	 * socket under it. */
	CHECK(connect(client, (const struct sockaddr *)sun, sizeof *sun) ==
	    0);
	CHECK((server = accept4(unix_listener, NULL, NULL,
	    SOCK_CLOEXEC | SOCK_NONBLOCK)) != -1);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	memset(&msg, 0, sizeof msg);
	memset(&control, 0, sizeof control);
	iov.iov_base = &c;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &p[0], sizeof(int));
	CHECK(sendmsg(client, &msg, 0) == 1);
	CHECK(wait_fd(server, POLLIN) == 0);
	memset(&control, 0, sizeof control);
	msg.msg_controllen = sizeof control.buf;
	CHECK(recvmsg(server, &msg, MSG_CMSG_CLOEXEC) == 1);
	cmsg = CMSG_FIRSTHDR(&msg);
	CHECK(cmsg != NULL && cmsg->cmsg_type == SCM_RIGHTS);
	memcpy(&got, CMSG_DATA(cmsg), sizeof(int));
	CHECK(write(p[1], "m", 1) == 1);
	CHECK(read(got, &c, 1) == 1 && c == 'm');
	close(got);
	close(p[0]);
	close(p[1]);
	close(client);
	close(server);
}

static int
tcp_listener(uint16_t *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(listen(fd, 4) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Drop, check, filter, check, then work as a worker does. */
static int
body_worker(void)
{
	static const int	 signals[] = { SIGCHLD };
	struct workload		 w;
	struct sockaddr_un	 sun;
	struct event		*rd;
	struct ev_timer		*timer;
	struct stat		 st;
	struct timespec		 ts;
	uint8_t			 random[8];
	uint16_t		 port;
	int			 status_fd, listener, unix_listener, old_fd;
	int			 unix_client;
	void			*p;

	memset(&w, 0, sizeof w);
	CHECK(sandbox_drop(TEST_UID, TEST_GID) == 0);
	CHECK((status_fd = open("/proc/self/status", O_RDONLY)) != -1);
	check_dropped(status_fd);
	check_status(status_fd, "Seccomp", "0");

	/* Before the filter, as the worker: its base, signals, listeners,
	 * and QEMU (here a child that waits to be killed). */
	CHECK((w.base = ev_base_new()) != NULL);
	CHECK(ev_on_signals(w.base, signals, 1, workload_signal, &w) == 0);
	listener = tcp_listener(&port);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path,
	    "/tmp/haven-sandbox-%ld.sock", (long)getpid());
	CHECK((unix_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) != -1);
	CHECK(bind(unix_listener, (struct sockaddr *)&sun, sizeof sun) == 0);
	CHECK(listen(unix_listener, 4) == 0);
	CHECK((old_fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	CHECK((unix_client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) !=
	    -1);
	CHECK((w.qemu = fork()) != -1);
	if (w.qemu == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (;;)
			pause();
	}

	CHECK(sandbox_seccomp_worker(w.qemu) == 0);
	check_dropped(status_fd);
	check_status(status_fd, "Seccomp", "2");

	/* The event loop: a timer writes into a pipe, its reader stops. */
	CHECK(pipe2(w.pipe, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK((rd = event_new(w.base, w.pipe[0], EV_READ, workload_readable,
	    &w)) != NULL);
	CHECK(event_add(rd, NULL) == 0);
	CHECK((timer = ev_timer_new(w.base, 10, 0, workload_timer, &w)) !=
	    NULL);
	CHECK(event_base_dispatch(w.base) == 0);
	CHECK(w.timer_fired && w.got_byte);
	event_free(rd);
	ev_timer_free(timer);

	workload_iscsi(listener, port, old_fd);
	workload_pass_fd(unix_listener, unix_client, &sun);

	/* Held files, time, memory, randomness. */
	CHECK(fstat(status_fd, &st) == 0);
	CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
	CHECK(getrandom(random, sizeof random, 0) == sizeof random);
	CHECK((p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED);
	CHECK(munmap(p, 1 << 20) == 0);
	free(malloc(8 << 20));
	log_info("sandbox_test: logging still works under the filter");

	/* Kill "QEMU" and reap it from its SIGCHLD on the loop. */
	CHECK(kill(w.qemu, SIGKILL) == 0);
	CHECK(event_base_dispatch(w.base) == 0);
	CHECK(w.qemu_reaped);

	/* A new Unix socket fails softly (glibc's nscd probe). */
	CHECK(socket(AF_UNIX, SOCK_STREAM, 0) == -1 && errno == EACCES);
	/* As nbd_server_free does on the way out. */
	CHECK(unlink(sun.sun_path) == 0);
	return 0;
}

static int
enter_filter(void)
{
	CHECK(sandbox_drop(TEST_UID, TEST_GID) == 0);
	/* "QEMU": a pid that is not init's nor ours. */
	CHECK(sandbox_seccomp_worker(getppid()) == 0);
	return 0;
}

static int
body_kill_other(void)
{
	enter_filter();
	kill(1, 0);		/* any pid but QEMU's */
	return 2;
}

static int
body_kill_all(void)
{
	enter_filter();
	kill(-1, SIGKILL);	/* every process of our uid */
	return 2;
}

static int
body_execve(void)
{
	char	*argv[] = { (char *)"true", NULL }, *envp[] = { NULL };

	enter_filter();
	execve("/bin/true", argv, envp);
	return 2;
}

static int
body_fork(void)
{
	pid_t	pid;

	enter_filter();
	if ((pid = fork()) == 0)
		_exit(3);
	return 2;
}

static int
body_open(void)
{
	enter_filter();
	open("/etc/hostname", O_RDONLY);
	return 2;
}

static int
body_packet_socket(void)
{
	enter_filter();
	socket(AF_PACKET, SOCK_RAW, 0);
	return 2;
}

static int
body_exec_mapping(void)
{
	enter_filter();
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	return 2;
}

static int
body_setuid(void)
{
	enter_filter();
	setuid(TEST_UID);	/* even a no-op identity change */
	return 2;
}

static int
body_drop_only(void)
{
	int	fd;

	CHECK(sandbox_drop(TEST_UID, TEST_GID) == 0);
	CHECK((fd = open("/proc/self/status", O_RDONLY)) != -1);
	check_dropped(fd);
	/* A second drop fails: setgroups needs the capability we gave up. */
	CHECK(sandbox_drop(TEST_UID, TEST_GID) == -1 && errno == EPERM);
	return 0;
}

/*
 * QEMU under its own uid (issue 15): the worker drops keeping QEMU's ids as
 * its saved ones, its child takes them, the worker gives them up. Then
 * "QEMU" can neither signal nor trace the worker, nor write a file of the
 * worker's; the worker still signals it, and still owns what it creates.
 */
static int
body_qemu_uid(void)
{
	int		go[2], back[2], status;
	uid_t		r, e, s;
	struct stat	st;
	char		byte, path[] = "/tmp/haven-sandbox-qemu-uid.XXXXXX";
	pid_t		qemu, me = getpid();
	int		fd;

	CHECK(sandbox_drop_qemu(TEST_UID, TEST_GID, TEST_QEMU_UID,
	    TEST_QEMU_GID) == 0);
	CHECK(getresuid(&r, &e, &s) == 0 && r == TEST_UID && e == TEST_UID &&
	    s == TEST_QEMU_UID);
	CHECK(pipe(go) == 0 && pipe(back) == 0);
	CHECK((qemu = fork()) != -1);
	if (qemu == 0) {
		close(go[1]);
		if (sandbox_qemu_child(TEST_QEMU_UID, TEST_QEMU_GID) == -1 ||
		    read(go[0], &byte, 1) != 1)
			_exit(10);
		/* "QEMU": its ids, no way to the worker's. */
		if (getresuid(&r, &e, &s) == -1 || r != TEST_QEMU_UID ||
		    e != TEST_QEMU_UID || s != TEST_QEMU_UID)
			_exit(11);
		if (setresuid(TEST_UID, TEST_UID, TEST_UID) != -1)
			_exit(12);
		if (kill(me, 0) != -1 || errno != EPERM)
			_exit(13);
		if (syscall(SYS_ptrace, PTRACE_ATTACH, me, 0, 0) != -1)
			_exit(15);
		byte = 'k';
		if (write(back[1], &byte, 1) != 1)
			_exit(16);
		pause();	/* the worker kills it */
		_exit(17);
	}
	close(go[0]);
	CHECK(sandbox_qemu_spawned(TEST_UID, TEST_GID, TEST_QEMU_UID) == 0);
	CHECK(getresuid(&r, &e, &s) == 0 && r == TEST_UID &&
	    e == TEST_QEMU_UID && s == TEST_UID);
	/* The worker's files are still its own. */
	CHECK((fd = mkstemp(path)) != -1);
	CHECK(fstat(fd, &st) == 0 && st.st_uid == TEST_UID);
	close(fd);
	unlink(path);
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(read(back[0], &byte, 1) == 1 && byte == 'k');
	CHECK(kill(qemu, SIGKILL) == 0);
	CHECK(waitpid(qemu, &status, 0) == qemu && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL);
	return 0;
}

static void
test_qemu_uid(void **state)
{
	assert_exited_ok(run_child(body_qemu_uid));
}

static void
test_refuses_root(void **state)
{
	errno = 0;
	assert_int_equal(sandbox_drop(0, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(sandbox_drop(TEST_UID, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(sandbox_drop(0, TEST_GID), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(getuid(), 0);
}

static void
test_drop(void **state)
{
	assert_exited_ok(run_child(body_drop_only));
}

static void
test_worker_workload(void **state)
{
	assert_exited_ok(run_child(body_worker));
}

static void
test_forbidden(void **state)
{
	assert_killed_by_sigsys(run_child(body_execve));
	assert_killed_by_sigsys(run_child(body_fork));
	assert_killed_by_sigsys(run_child(body_open));
	assert_killed_by_sigsys(run_child(body_packet_socket));
	assert_killed_by_sigsys(run_child(body_exec_mapping));
	assert_killed_by_sigsys(run_child(body_setuid));
	assert_killed_by_sigsys(run_child(body_kill_other));
	assert_killed_by_sigsys(run_child(body_kill_all));
}

static void
test_no_new_privs(void **state)
{
	assert_exited_ok(run_child(sandbox_no_new_privs));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_root),
		cmocka_unit_test(test_no_new_privs),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_qemu_uid),
		cmocka_unit_test(test_worker_workload),
		cmocka_unit_test(test_forbidden),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "sandbox_test: skipped: needs root to drop "
		    "privileges\n");
		return 77;
	}
	log_init("sandbox_test", LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
