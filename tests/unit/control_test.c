/*
 * The control socket on a real UNIX socket: requests from root and from a
 * real unprivileged uid (a forked child that drops to it), refusals with
 * clear errors, the audit log, and hostile peers (garbage, oversized
 * frames, unknown types, truncated frames, a flood of requests whose
 * answers are never read, one uid holding connections) that never disturb
 * the server; a change whose client hung up is audited all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

#define TEST_UID	60301

static char	sock_path[108], audit_path[108];

static void
status_handler(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	Haven__StatusReply	r = HAVEN__STATUS_REPLY__INIT;

	r.node_name = "test";
	r.node_id = 7;
	r.quorate = 1;
	control_reply(c, FRAME_STATUS_REPLY, &r.base);
}

/* A stand-in mutating request: the VM spec frame, targeting its name. */
static const char *
spec_target(ProtobufCMessage *m)
{
	return ((Haven__VmSpec *)m)->name;
}

static void
spec_handler(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	Haven__StatusReply	r = HAVEN__STATUS_REPLY__INIT;

	r.node_name = "changed";
	control_reply(c, FRAME_STATUS_REPLY, &r.base);
}

/* A mutating request answered later (as a replicated change is): the
 * client id is kept, the answer never comes in the test. */
static uint64_t	async_client;

static const char *
name_target(ProtobufCMessage *m)
{
	return ((Haven__VmNameRequest *)m)->name;
}

static void
async_handler(struct control_client *c, ProtobufCMessage *m, void *arg)
{
	async_client = control_client_id(c);
}

static const struct control_route routes[] = {
	{ FRAME_STATUS_REQUEST, REQUEST_READ, 0, NULL, status_handler },
	{ FRAME_VM_SPEC, REQUEST_VM, 1, spec_target, spec_handler },
	{ FRAME_VM_START, REQUEST_VM, 1, name_target, async_handler },
};

/* TEST_UID is an operator of "web-*"; everyone else only reads. */
static int
authorize(const struct identity *who, enum request_class class,
    const char *vm, enum role *granted, void *arg)
{
	static const struct role_binding b[] = {
		{ ROLE_OPERATOR, 0, TEST_UID, { "web-*" }, 1 },
	};

	if (roles_allow(b, 1, who, class, vm, granted))
		return 1;
	return class == REQUEST_READ;
}

static int
connect_to(void)
{
	struct sockaddr_un	sun;
	int			fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read one reply frame: its type, and the error text if it is one. */
static int
read_reply(int fd, char *error, size_t size)
{
	struct frame_reader	*r = frame_reader_new(1 << 20);
	struct frame		 f;
	Haven__Error		*e;
	int			 type = -1, rc;

	error[0] = '\0';
	for (;;) {
		rc = frame_reader_next(r, &f);
		if (rc == 1)
			break;
		if (rc == -1 || frame_reader_fill(r, fd) <= 0) {
			frame_reader_free(r);
			return -1;
		}
	}
	type = f.type;
	if (type == FRAME_ERROR &&
	    (e = (Haven__Error *)message_decode(&f)) != NULL) {
		snprintf(error, size, "%s", e->message);
		message_free(&e->base);
	}
	frame_release(&f);
	frame_reader_free(r);
	return type;
}

static int
request(int fd, uint16_t type, const ProtobufCMessage *m)
{
	uint8_t	*buf;
	size_t	 len;
	int	 rc;

	buf = message_pack(m, &len);
	rc = frame_send(fd, type, buf, len, NULL, 0);
	free(buf);
	return rc;
}

/* Status requests, never reading the answers, until the server hangs up
 * (a write fails) -- well before the client has sent 64 MiB. */
static int
flood(int fd)
{
	Haven__StatusRequest	 sreq = HAVEN__STATUS_REQUEST__INIT;
	uint8_t			 *buf, frame[64];
	size_t			 len, i;

	buf = message_pack(&sreq.base, &len);
	frame_encode_header(frame, FRAME_STATUS_REQUEST, (uint32_t)len, 0);
	memcpy(frame + FRAME_HEADER_SIZE, buf, len);
	free(buf);
	for (i = 0; i < (64U << 20) / (FRAME_HEADER_SIZE + len + 1); i++) {
		if (send(fd, frame, FRAME_HEADER_SIZE + len, MSG_NOSIGNAL) <
		    0)
			return errno == EPIPE || errno == ECONNRESET ? 0 : 20;
	}
	return 21;
}

/*
 * A grandchild as TEST_UID opens connections until one is refused (it must
 * be the 17th); while it holds them, root still connects and is answered.
 */
static int
hog(void)
{
	Haven__StatusRequest	sreq = HAVEN__STATUS_REQUEST__INIT;
	char			err[512], c;
	int			p[2], fds[32], n, fd, rc = 0, status;
	pid_t			pid;

	if (pipe(p) == -1)
		return 30;
	if ((pid = fork()) == 0) {
		close(p[0]);
		if (setgroups(0, NULL) == -1 ||
		    setresgid(TEST_UID, TEST_UID, TEST_UID) == -1 ||
		    setresuid(TEST_UID, TEST_UID, TEST_UID) == -1)
			_exit(31);
		for (n = 0; n < 32; n++) {
			if ((fds[n] = connect_to()) == -1)
				_exit(32);
			request(fds[n], FRAME_STATUS_REQUEST, &sreq.base);
			if (read_reply(fds[n], err, sizeof err) !=
			    FRAME_STATUS_REPLY)
				break;
		}
		c = (char)n;
		if (write(p[1], &c, 1) != 1)
			_exit(33);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		rc = 34;
	else if (c != 16)
		rc = 35;	/* the 17th must be the one refused */
	else if ((fd = connect_to()) == -1)
		rc = 36;
	else {
		request(fd, FRAME_STATUS_REQUEST, &sreq.base);
		if (read_reply(fd, err, sizeof err) != FRAME_STATUS_REPLY)
			rc = 37;
		close(fd);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return rc;
}

/*
 * The client side of each case runs in a child process (so it can take a
 * real unprivileged uid) while the server runs in this one.
 */
static int
client_case(int which)
{
	Haven__StatusRequest	sreq = HAVEN__STATUS_REQUEST__INIT;
	Haven__VmSpec		spec = HAVEN__VM_SPEC__INIT;
	Haven__VmNameRequest	vreq = HAVEN__VM_NAME_REQUEST__INIT;
	char			err[512];
	uint8_t			h[FRAME_HEADER_SIZE];
	int			fd, t;

	if (which >= 10 && (setgroups(0, NULL) == -1 ||
	    setresgid(TEST_UID, TEST_UID, TEST_UID) == -1 ||
	    setresuid(TEST_UID, TEST_UID, TEST_UID) == -1))
		return 90;
	if ((fd = connect_to()) == -1)
		return 91;
	switch (which % 10) {
	case 0:		/* a read: allowed for everyone */
		request(fd, FRAME_STATUS_REQUEST, &sreq.base);
		return read_reply(fd, err, sizeof err) == FRAME_STATUS_REPLY ?
		    0 : 1;
	case 1:		/* a VM request on web-1 */
		spec.name = "web-1";
		request(fd, FRAME_VM_SPEC, &spec.base);
		t = read_reply(fd, err, sizeof err);
		if (which >= 10)	/* the operator: allowed */
			return t == FRAME_STATUS_REPLY ? 0 : 2;
		return t == FRAME_STATUS_REPLY ? 0 : 3;	/* root */
	case 2:		/* a VM request outside the operator's scope */
		spec.name = "db-1";
		request(fd, FRAME_VM_SPEC, &spec.base);
		t = read_reply(fd, err, sizeof err);
		if (which < 10)
			return t == FRAME_STATUS_REPLY ? 0 : 4;
		return t == FRAME_ERROR && strstr(err, "may not") != NULL &&
		    strstr(err, "db-1") != NULL ? 0 : 5;
	case 3:		/* garbage: an error, then the server hangs up */
		if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18)
			return 6;
		t = read_reply(fd, err, sizeof err);
		return t == FRAME_ERROR && strstr(err, "not a Haven frame") ?
		    0 : 7;
	case 4:		/* oversized */
		frame_encode_header(h, FRAME_STATUS_REQUEST, 64U << 20, 0);
		if (write(fd, h, sizeof h) != (ssize_t)sizeof h)
			return 8;
		t = read_reply(fd, err, sizeof err);
		return t == FRAME_ERROR && strstr(err, "size cap") ? 0 : 9;
	case 5:		/* unknown type: an error, and the connection stays */
		frame_send(fd, 999, "x", 1, NULL, 0);
		t = read_reply(fd, err, sizeof err);
		if (t != FRAME_ERROR || strstr(err, "unknown request type") ==
		    NULL)
			return 10;
		request(fd, FRAME_STATUS_REQUEST, &sreq.base);
		return read_reply(fd, err, sizeof err) == FRAME_STATUS_REPLY ?
		    0 : 11;
	case 6:		/* truncated: half a frame, then hang up */
		frame_encode_header(h, FRAME_STATUS_REQUEST, 100, 0);
		if (write(fd, h, sizeof h) != (ssize_t)sizeof h)
			return 12;
		close(fd);
		return 0;
	case 7:		/* asking without reading: hung up on */
		return flood(fd);
	case 8:		/* a change in flight, then hang up */
		vreq.name = "web-1";
		request(fd, FRAME_VM_START, &vreq.base);
		close(fd);
		return 0;
	case 9:		/* one uid holding connections; root still gets in */
		close(fd);
		return hog();
	}
	return 99;
}

struct run {
	struct event_base	*base;
	pid_t			 child;
	int			 status;
	int			 done;
};

static void
reap_cb(void *arg)
{
	struct run	*r = arg;

	if (waitpid(r->child, &r->status, WNOHANG) == r->child) {
		r->done = 1;
		event_base_loopbreak(r->base);
	}
}

static int
run_case(struct event_base *base, int which)
{
	struct run	 r = { base, 0, 0, 0 };
	struct ev_timer	*t;
	uint64_t	 deadline;

	r.child = fork();
	if (r.child == 0)
		_exit(client_case(which));
	t = ev_timer_new(base, 10, 1, reap_cb, &r);
	/* Bounded in time, not in loop turns: a flood takes many turns. */
	deadline = ev_now_ms() + 30000;
	while (!r.done && ev_now_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	ev_timer_free(t);
	assert_true(r.done);
	assert_true(WIFEXITED(r.status));
	return WEXITSTATUS(r.status);
}

static void
test_control(void **state)
{
	struct event_base	*base = ev_base_new();
	struct control_server	*s;
	char			 line[4096];
	FILE			*fp;
	int			 error = 0, i, denied = 0, ok = 0, late = 0;

	snprintf(sock_path, sizeof sock_path, "/tmp/haven-control-%ld.sock",
	    (long)getpid());
	snprintf(audit_path, sizeof audit_path, "/tmp/haven-audit-%ld.log",
	    (long)getpid());
	unlink(audit_path);
	s = control_new(base, sock_path, routes, 3, authorize, audit_path,
	    NULL, &error);
	assert_non_null(s);
	/* A second server on the same socket is refused. */
	assert_null(control_new(base, sock_path, routes, 3, authorize, NULL,
	    NULL, &error));
	assert_int_equal(error, -EADDRINUSE);

	for (i = 0; i <= 6; i++)
		assert_int_equal(run_case(base, i), 0);
	for (i = 10; i <= 12; i++)
		assert_int_equal(run_case(base, i), 0);
	/* Abuse: a flood without reading, one uid's many connections. */
	assert_int_equal(run_case(base, 7), 0);
	assert_int_equal(run_case(base, 9), 0);
	/* A change whose client hung up: audited when it ends. */
	async_client = 0;
	assert_int_equal(run_case(base, 8), 0);
	for (i = 0; i < 100 && control_client_find(s, async_client) != NULL;
	    i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_true(async_client != 0);
	assert_null(control_client_find(s, async_client));
	control_audit_late(s, async_client, "ok");
	/* After all that, the server still serves. */
	assert_int_equal(run_case(base, 0), 0);

	/* The audit log: every VM request, with who and the result. */
	fp = fopen(audit_path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof line, fp) != NULL) {
		if (strstr(line, "\"request\":\"vm-start\"") != NULL) {
			assert_non_null(strstr(line, "\"target\":\"web-1\""));
			assert_non_null(strstr(line,
			    "\"result\":\"ok (the client had hung up)\""));
			late++;
			continue;
		}
		assert_non_null(strstr(line, "\"request\":\"vm-spec\""));
		if (strstr(line, "\"result\":\"denied\"") != NULL) {
			assert_non_null(strstr(line, "\"uid\":60301"));
			assert_non_null(strstr(line, "\"target\":\"db-1\""));
			denied++;
		} else if (strstr(line, "\"result\":\"ok\"") != NULL) {
			ok++;
		}
	}
	fclose(fp);
	assert_int_equal(denied, 1);
	assert_int_equal(ok, 3);
	assert_int_equal(late, 1);
	control_free(s);
	assert_int_equal(access(sock_path, F_OK), -1);
	unlink(audit_path);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "control_test needs root (real uids)\n");
		return 77;
	}
	log_init("control_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
