/*
 * The QMP client against a real QEMU 7.2 booting the test guest: status,
 * stop/cont with their events, errors, a save through getfd + migrate fd:
 * into a pipe we drain, and quit. Each test kills the QEMU it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "common.h"

#define STEP_MS		20000	/* every wait is bounded by this */
#define QMP_CHILD_FD	3	/* where the fd form puts QEMU's end */

struct reply {
	int			 called;
	struct json_object	*result;	/* our reference */
	char			 class[64];
	char			 desc[256];
};

struct vm {
	struct event_base	*base;
	struct qmp		*q;
	pid_t			 pid;
	char			 dir[64];
	char			 sock[96];
	char			 serial[128];
	char			 err[128];
	int			 ready;		/* 1 + ok */
	int			 closed;
	int			 closed_err;
	int			 stop, resume, shutdown;
	int			 migration_completed, migration_failed;
	char			 statuses[256];	/* MIGRATION statuses, in order */
	/* the migration stream we drain from the pipe */
	int			 pipe_rd;
	struct event		*pipe_ev;
	uint64_t		 stream_bytes;
	int			 stream_eof;
};

static void
vm_ready(struct qmp *q, int ok, void *arg)
{
	((struct vm *)arg)->ready = 1 + ok;
}

static void
vm_event(struct qmp *q, const char *name, struct json_object *data,
    void *arg)
{
	struct vm		*vm = arg;
	struct json_object	*status;
	const char		*s;

	if (strcmp(name, "STOP") == 0)
		vm->stop++;
	else if (strcmp(name, "RESUME") == 0)
		vm->resume++;
	else if (strcmp(name, "SHUTDOWN") == 0)
		vm->shutdown++;
	else if (strcmp(name, "MIGRATION") == 0 &&
	    json_object_object_get_ex(data, "status", &status)) {
		s = json_object_get_string(status);
		if (strlen(vm->statuses) + strlen(s) + 2 < sizeof vm->statuses) {
			strcat(vm->statuses, s);
			strcat(vm->statuses, " ");
		}
		if (strcmp(s, "completed") == 0)
			vm->migration_completed = 1;
		if (strcmp(s, "failed") == 0)
			vm->migration_failed = 1;
	}
}

static void
vm_closed(struct qmp *q, int err, void *arg)
{
	struct vm	*vm = arg;

	vm->closed = 1;
	vm->closed_err = err;
}

static const struct qmp_callbacks vm_callbacks = {
	vm_ready, vm_event, vm_closed
};

static void
reply_cb(struct qmp *q, struct json_object *result, const char *error_class,
    const char *error_desc, void *arg)
{
	struct reply	*r = arg;

	r->called++;
	if (result != NULL)
		r->result = json_object_get(result);
	else {
		snprintf(r->class, sizeof r->class, "%s", error_class);
		snprintf(r->desc, sizeof r->desc, "%s", error_desc);
	}
}

static void
reply_clear(struct reply *r)
{
	json_object_put(r->result);
	memset(r, 0, sizeof *r);
}

/* Run the loop until *flag is set; fail the test after STEP_MS. */
static void
vm_wait(struct vm *vm, const int *flag, const char *what)
{
	struct timeval	tv = { 0, 20000 };
	uint64_t	deadline = ev_now_ms() + STEP_MS;

	while (!*flag) {
		if (ev_now_ms() > deadline)
			fail_msg("timed out waiting for %s", what);
		event_base_loopexit(vm->base, &tv);
		event_base_dispatch(vm->base);
	}
}

/* Send a command and wait for its reply. */
static void
vm_command(struct vm *vm, const char *execute, struct json_object *args,
    int fd, struct reply *r)
{
	reply_clear(r);
	assert_int_equal(qmp_command(vm->q, execute, args, fd, reply_cb, r), 0);
	vm_wait(vm, &r->called, execute);
	if (r->result == NULL)
		print_message("%s: %s: %s\n", execute, r->class, r->desc);
}

static void
vm_expect_status(struct vm *vm, const char *status)
{
	struct reply		 r = { 0 };
	struct json_object	*v;

	vm_command(vm, "query-status", NULL, -1, &r);
	assert_non_null(r.result);
	assert_true(json_object_object_get_ex(r.result, "status", &v));
	assert_string_equal(json_object_get_string(v), status);
	reply_clear(&r);
}

static void
vm_spawn(struct vm *vm, int child_fd)
{
	const char	*kernel = getenv("HAVEN_GUEST_KERNEL");
	char		 serial[160], qmp[160], chardev[64];
	int		 fd;

	snprintf(serial, sizeof serial, "file:%s", vm->serial);
	snprintf(qmp, sizeof qmp, "unix:%s,server=on,wait=off", vm->sock);
	snprintf(chardev, sizeof chardev, "socket,id=qmp,fd=%d", QMP_CHILD_FD);
	if ((vm->pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (vm->pid > 0)
		return;

	/* The child: QEMU's stdout and stderr go to a file, fd 3 is QMP. */
	if ((fd = open(vm->err, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		_exit(127);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (child_fd != -1)
		dup2(child_fd, QMP_CHILD_FD);	/* dup2 clears FD_CLOEXEC */
	if (child_fd != -1)
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-nodefaults",
		    "-no-user-config", "-machine", "pc", "-accel", "tcg",
		    "-cpu", "max", "-m", "64", "-display", "none",
		    "-kernel", kernel, "-append", "dirty=8 tick_ms=50",
		    "-serial", serial, "-chardev", chardev,
		    "-mon", "chardev=qmp,mode=control", (char *)NULL);
	else
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-nodefaults",
		    "-no-user-config", "-machine", "pc", "-accel", "tcg",
		    "-cpu", "max", "-m", "64", "-display", "none",
		    "-kernel", kernel, "-append", "dirty=8 tick_ms=50",
		    "-serial", serial, "-qmp", qmp, (char *)NULL);
	_exit(127);
}

/* Connect to QEMU's QMP socket, polling until it listens (bounded). */
static int
vm_connect(struct vm *vm)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	uint64_t		 deadline = ev_now_ms() + STEP_MS;
	struct timespec		 ts = { 0, 10 * 1000 * 1000 };
	int			 fd, status;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", vm->sock);
	while (ev_now_ms() < deadline) {
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			vm->pid = -1;
			fail_msg("QEMU exited early (status %d), see %s",
			    status, vm->err);
		}
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			fail_msg("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
			return fd;
		close(fd);
		nanosleep(&ts, NULL);
	}
	fail_msg("QEMU's QMP socket never appeared");
	return -1;
}

/* Start QEMU and a QMP client on it; fd_form passes a socketpair end. */
static void
vm_start(struct vm *vm, int fd_form)
{
	int	sv[2], fd;

	if (fd_form) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0, sv), 0);
		vm_spawn(vm, sv[1]);
		close(sv[1]);
		fd = sv[0];
	} else {
		vm_spawn(vm, -1);
		fd = vm_connect(vm);
	}
	vm->q = qmp_new(vm->base, fd, &vm_callbacks, vm);
	assert_non_null(vm->q);
	vm_wait(vm, &vm->ready, "QMP ready");
	assert_int_equal(vm->ready, 2);
}

static int
setup(void **state)
{
	struct vm	*vm;

	if ((vm = calloc(1, sizeof *vm)) == NULL)
		return -1;
	vm->pid = -1;
	vm->pipe_rd = -1;
	vm->base = ev_base_new();
	snprintf(vm->dir, sizeof vm->dir, "/tmp/haven-qmp-XXXXXX");
	if (mkdtemp(vm->dir) == NULL) {
		free(vm);
		return -1;
	}
	snprintf(vm->sock, sizeof vm->sock, "%s/qmp.sock", vm->dir);
	snprintf(vm->serial, sizeof vm->serial, "%s/serial.log", vm->dir);
	snprintf(vm->err, sizeof vm->err, "%s/qemu.err", vm->dir);
	*state = vm;
	return 0;
}

/* Runs after a failed test too: kill our QEMU and remove its files. */
static int
teardown(void **state)
{
	struct vm	*vm = *state;
	char		 line[256];
	FILE		*f;

	qmp_free(vm->q);
	if (vm->pipe_ev != NULL)
		event_free(vm->pipe_ev);
	if (vm->pipe_rd != -1)
		close(vm->pipe_rd);
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
	}
	if ((f = fopen(vm->err, "r")) != NULL) {
		while (fgets(line, sizeof line, f) != NULL)
			print_message("qemu: %s", line);
		fclose(f);
	}
	unlink(vm->sock);
	unlink(vm->serial);
	unlink(vm->err);
	rmdir(vm->dir);
	event_base_free(vm->base);
	free(vm);
	return 0;
}

/* quit: SHUTDOWN, then the connection closes and QEMU exits. */
static void
vm_quit(struct vm *vm)
{
	struct reply	r = { 0 };
	uint64_t	deadline;
	int		status;

	assert_int_equal(qmp_command(vm->q, "quit", NULL, -1, reply_cb, &r), 0);
	vm_wait(vm, &vm->closed, "QMP close after quit");
	assert_int_equal(vm->closed_err, 0);
	assert_int_equal(vm->shutdown, 1);
	assert_int_equal(r.called, 1);
	reply_clear(&r);
	errno = 0;
	assert_int_equal(qmp_command(vm->q, "query-status", NULL, -1, reply_cb,
	    &r), -1);
	assert_int_equal(errno, EPIPE);
	for (deadline = ev_now_ms() + STEP_MS; ev_now_ms() < deadline;) {
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			vm->pid = -1;
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
			return;
		}
		usleep(10000);
	}
	fail_msg("QEMU did not exit after quit");
}

static void
pipe_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct vm	*vm = arg;
	char		 buf[65536];
	ssize_t		 n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		vm->stream_bytes += (uint64_t)n;
	if (n == 0) {
		vm->stream_eof = 1;
		event_del(vm->pipe_ev);
	}
}

static struct json_object *
args_new(const char *key, struct json_object *value)
{
	struct json_object	*args = json_object_new_object();

	json_object_object_add(args, key, value);
	return args;
}

/* Everything the worker needs from QMP, on a started QEMU. */
static void
vm_exercise(struct vm *vm)
{
	struct reply		 r = { 0 };
	struct json_object	*cap, *caps;
	int			 p[2];

	vm_expect_status(vm, "running");

	vm_command(vm, "stop", NULL, -1, &r);
	assert_non_null(r.result);
	vm_wait(vm, &vm->stop, "STOP");
	vm_expect_status(vm, "paused");
	vm_command(vm, "cont", NULL, -1, &r);
	assert_non_null(r.result);
	vm_wait(vm, &vm->resume, "RESUME");
	vm_expect_status(vm, "running");

	vm_command(vm, "no-such-command", NULL, -1, &r);
	assert_null(r.result);
	assert_string_equal(r.class, "CommandNotFound");

	/* Save: events on, stop, getfd with a pipe, migrate fd:, drain it. */
	cap = json_object_new_object();
	json_object_object_add(cap, "capability",
	    json_object_new_string("events"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	caps = json_object_new_array();
	json_object_array_add(caps, cap);
	vm_command(vm, "migrate-set-capabilities",
	    args_new("capabilities", caps), -1, &r);
	assert_non_null(r.result);
	vm_command(vm, "migrate-set-parameters", args_new("max-bandwidth",
	    json_object_new_int64(INT64_C(1) << 40)), -1, &r);
	assert_non_null(r.result);
	vm_command(vm, "stop", NULL, -1, &r);
	vm_wait(vm, &vm->stop, "STOP");

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	vm->pipe_rd = p[0];
	assert_int_equal(ev_set_nonblock(p[0]), 0);
	vm->pipe_ev = event_new(vm->base, p[0], EV_READ | EV_PERSIST,
	    pipe_read_cb, vm);
	event_add(vm->pipe_ev, NULL);
	vm_command(vm, "getfd", args_new("fdname",
	    json_object_new_string("save0")), p[1], &r);
	close(p[1]);	/* QEMU holds the write end now */
	assert_non_null(r.result);
	vm_command(vm, "migrate", args_new("uri",
	    json_object_new_string("fd:save0")), -1, &r);
	assert_non_null(r.result);
	vm_wait(vm, &vm->migration_completed, "MIGRATION completed");
	vm_wait(vm, &vm->stream_eof, "end of the migration stream");
	print_message("MIGRATION statuses: %s; stream %llu bytes\n",
	    vm->statuses, (unsigned long long)vm->stream_bytes);
	assert_false(vm->migration_failed);
	assert_non_null(strstr(vm->statuses, "setup"));
	assert_true(vm->stream_bytes > 100 * 1024);
	vm_expect_status(vm, "postmigrate");
	reply_clear(&r);

	vm_quit(vm);
}

static void
test_qemu_unix_socket(void **state)
{
	struct vm	*vm = *state;

	vm_start(vm, 0);
	vm_exercise(vm);
}

/*
 * QMP on a socketpair handed to QEMU as -chardev socket,fd=N (no path to
 * create or clean up). QEMU 7.2.22 accepts descriptors (getfd) on it too.
 */
static void
test_qemu_fd_chardev(void **state)
{
	struct vm	*vm = *state;

	vm_start(vm, 1);
	vm_exercise(vm);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(test_qemu_unix_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_qemu_fd_chardev, setup,
		    teardown),
	};
	const char		*kernel = getenv("HAVEN_GUEST_KERNEL");

	if (kernel == NULL || access(kernel, R_OK) == -1) {
		fprintf(stderr, "skipped: HAVEN_GUEST_KERNEL not set\n");
		return 77;
	}
	log_init("qmp_qemu_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
