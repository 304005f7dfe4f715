/*
 * Unit tests of the QMP client against a scripted fake QEMU on a socketpair
 * in the same process: negotiation, replies matched by id in any order,
 * errors, events, split and merged reads, garbage, EOF, descriptor passing
 * and qmp_free from inside callbacks. tests/worker/ runs it against QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "common.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, " \
	"\"minor\": 2, \"major\": 7}, \"package\": \"\"}, " \
	"\"capabilities\": [\"oob\"]}}\r\n"

struct reply {
	struct test	*t;
	int		 called;
	int		 order;
	char		 result[256];
	char		 class[64];
	char		 desc[128];
	int		 free_qmp;	/* qmp_free from inside the callback */
};

struct test {
	struct event_base	*base;
	struct qmp		*q;
	int			 peer;
	char			 pbuf[1 << 16];
	size_t			 plen;
	int			 peer_fd;	/* last descriptor the peer got */
	int			 ready;		/* 1 + ok */
	int			 ready_calls;
	int			 closed;
	int			 closed_err;
	int			 events;
	char			 last_event[64];
	char			 last_data[256];
	int			 replies;
	int			 free_in_closed;
	int			 free_in_ready;
};

static void
test_ready(struct qmp *q, int ok, void *arg)
{
	struct test	*t = arg;

	t->ready = 1 + ok;
	t->ready_calls++;
	if (t->free_in_ready) {
		qmp_free(q);
		t->q = NULL;
	}
}

static void
test_event(struct qmp *q, const char *name, struct json_object *data,
    void *arg)
{
	struct test	*t = arg;

	t->events++;
	snprintf(t->last_event, sizeof t->last_event, "%s", name);
	snprintf(t->last_data, sizeof t->last_data, "%s", data == NULL ? "" :
	    json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
}

static void
test_closed(struct qmp *q, int err, void *arg)
{
	struct test	*t = arg;

	t->closed++;
	t->closed_err = err;
	if (t->free_in_closed) {
		qmp_free(q);
		t->q = NULL;
	}
}

static const struct qmp_callbacks test_callbacks = {
	test_ready, test_event, test_closed
};

static void
reply_cb(struct qmp *q, struct json_object *result, const char *error_class,
    const char *error_desc, void *arg)
{
	struct reply	*r = arg;

	r->called++;
	r->order = ++r->t->replies;
	if (result != NULL)
		snprintf(r->result, sizeof r->result, "%s",
		    json_object_to_json_string_ext(result,
		    JSON_C_TO_STRING_PLAIN));
	else {
		assert_non_null(error_class);
		snprintf(r->class, sizeof r->class, "%s", error_class);
		snprintf(r->desc, sizeof r->desc, "%s", error_desc);
	}
	if (r->free_qmp) {
		qmp_free(q);
		r->t->q = NULL;
	}
}

/*
 * Run the loop until *flag reaches want (in 5 ms slices, 2 s at most), or
 * with flag NULL, until what is ready now has been handled.
 */
static void
pump_until(struct test *t, const int *flag, int want)
{
	struct timeval	tv = { 0, 5000 };
	int		i;

	if (flag == NULL) {
		for (i = 0; i < 4; i++)
			event_base_loop(t->base, EVLOOP_NONBLOCK);
		return;
	}
	for (i = 0; i < 400 && *flag < want; i++) {
		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
}

static struct test *
peer_new(void)
{
	struct test	*t = calloc(1, sizeof *t);
	int		 sv[2];

	assert_non_null(t);
	t->base = ev_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t->peer = sv[1];
	t->peer_fd = -1;
	assert_int_equal(ev_set_nonblock(t->peer), 0);
	t->q = qmp_new(t->base, sv[0], &test_callbacks, t);
	assert_non_null(t->q);
	return t;
}

static void
peer_free(struct test *t)
{
	qmp_free(t->q);
	close(t->peer);
	if (t->peer_fd != -1)
		close(t->peer_fd);
	event_base_free(t->base);
	free(t);
}

static void
peer_send_n(struct test *t, const char *s, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = write(t->peer, s, len);
		if (n == -1 && errno == EAGAIN) {
			pump_until(t, NULL, 0);
			continue;
		}
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

static void
peer_send(struct test *t, const char *s)
{
	peer_send_n(t, s, strlen(s));
}

/* Take one message from what the client sent (objects back to back). */
static struct json_object *
peer_take_message(struct test *t)
{
	struct json_tokener	*tok;
	struct json_object	*msg;
	size_t			 end;

	if (t->plen == 0)
		return NULL;
	tok = json_tokener_new();
	msg = json_tokener_parse_ex(tok, t->pbuf, (int)t->plen);
	end = json_tokener_get_parse_end(tok);
	if (msg == NULL)
		assert_int_equal(json_tokener_get_error(tok),
		    json_tokener_continue);
	json_tokener_free(tok);
	if (msg == NULL)
		return NULL;
	memmove(t->pbuf, t->pbuf + end, t->plen - end);
	t->plen -= end;
	return msg;
}

static struct json_object *
peer_recv(struct test *t)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct json_object	*msg;
	struct msghdr		 m;
	struct iovec		 iov;
	struct cmsghdr		*cmsg;
	ssize_t			 n;
	int			 i;

	for (i = 0; i < 400; i++) {
		if ((msg = peer_take_message(t)) != NULL)
			return msg;
		memset(&m, 0, sizeof m);
		iov.iov_base = t->pbuf + t->plen;
		iov.iov_len = sizeof t->pbuf - t->plen;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = control.buf;
		m.msg_controllen = sizeof control.buf;
		n = recvmsg(t->peer, &m, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EAGAIN) {
			pump_until(t, NULL, 0);
			continue;
		}
		assert_true(n > 0);
		t->plen += (size_t)n;
		cmsg = CMSG_FIRSTHDR(&m);
		if (cmsg != NULL && cmsg->cmsg_type == SCM_RIGHTS) {
			if (t->peer_fd != -1)
				close(t->peer_fd);
			memcpy(&t->peer_fd, CMSG_DATA(cmsg), sizeof(int));
		}
	}
	fail_msg("client sent nothing");
	return NULL;
}

/* Receive one command; check its name and return its id. */
static int64_t
peer_expect(struct test *t, const char *execute)
{
	struct json_object	*msg, *v;
	int64_t			 id;

	msg = peer_recv(t);
	assert_true(json_object_object_get_ex(msg, "execute", &v));
	assert_string_equal(json_object_get_string(v), execute);
	assert_true(json_object_object_get_ex(msg, "id", &v));
	id = json_object_get_int64(v);
	json_object_put(msg);
	return id;
}

static void
peer_nothing_sent(struct test *t)
{
	char	c;

	pump_until(t, NULL, 0);
	assert_int_equal(t->plen, 0);
	assert_int_equal(recv(t->peer, &c, 1, MSG_PEEK), -1);
	assert_int_equal(errno, EAGAIN);
}

static void
peer_reply(struct test *t, int64_t id, const char *ret)
{
	char	line[512];

	snprintf(line, sizeof line, "{\"return\": %s, \"id\": %lld}\r\n", ret,
	    (long long)id);
	peer_send(t, line);
}

static void
handshake(struct test *t)
{
	peer_send(t, GREETING);
	peer_reply(t, peer_expect(t, "qmp_capabilities"), "{}");
	pump_until(t, &t->ready, 1);
	assert_int_equal(t->ready, 2);
}

static struct test *
peer_new_ready(void)
{
	struct test	*t = peer_new();

	handshake(t);
	return t;
}

static void
test_greeting_and_queueing(void **state)
{
	struct test	*t = peer_new();
	struct reply	 r = { .t = t };

	/* Issued before the greeting: held until capabilities are accepted. */
	assert_int_equal(qmp_command(t->q, "query-status", NULL, -1, reply_cb,
	    &r), 0);
	peer_nothing_sent(t);
	peer_send(t, GREETING);
	int64_t id = peer_expect(t, "qmp_capabilities");
	peer_nothing_sent(t);
	assert_int_equal(t->ready, 0);
	peer_reply(t, id, "{}");
	id = peer_expect(t, "query-status");
	assert_int_equal(t->ready, 2);
	assert_int_equal(t->ready_calls, 1);
	peer_reply(t, id, "{\"status\": \"running\", \"running\": true}");
	pump_until(t, &r.called, 1);
	assert_string_equal(r.result, "{\"status\":\"running\",\"running\":true}");
	peer_free(t);
}

static void
test_out_of_order(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t }, b = { .t = t };
	int64_t		 ida, idb;

	assert_int_equal(qmp_command(t->q, "stop", NULL, -1, reply_cb, &a), 0);
	assert_int_equal(qmp_command(t->q, "query-status", NULL, -1, reply_cb,
	    &b), 0);
	ida = peer_expect(t, "stop");
	idb = peer_expect(t, "query-status");
	assert_true(ida != idb);
	peer_reply(t, idb, "{\"status\": \"paused\"}");
	peer_reply(t, ida, "{}");
	pump_until(t, &a.called, 1);
	assert_int_equal(b.order, 1);
	assert_int_equal(a.order, 2);
	assert_string_equal(a.result, "{}");
	assert_string_equal(b.result, "{\"status\":\"paused\"}");
	/* A reply to an id we never used is ignored. */
	peer_reply(t, 9999, "{}");
	pump_until(t, NULL, 0);
	assert_int_equal(t->closed, 0);
	assert_int_equal(a.called + b.called, 2);
	peer_free(t);
}

static void
test_error_reply(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 r = { .t = t };
	char		 line[256];
	int64_t		 id;

	assert_int_equal(qmp_command(t->q, "no-such", json_object_new_object(),
	    -1, reply_cb, &r), 0);
	id = peer_expect(t, "no-such");
	snprintf(line, sizeof line, "{\"id\": %lld, \"error\": {\"class\": "
	    "\"CommandNotFound\", \"desc\": \"The command no-such has not "
	    "been found\"}}\r\n", (long long)id);
	peer_send(t, line);
	pump_until(t, &r.called, 1);
	assert_string_equal(r.result, "");
	assert_string_equal(r.class, "CommandNotFound");
	assert_string_equal(r.desc, "The command no-such has not been found");
	peer_free(t);
}

static void
test_event_between_replies(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t }, b = { .t = t };
	int64_t		 ida, idb;

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	qmp_command(t->q, "cont", NULL, -1, reply_cb, &b);
	ida = peer_expect(t, "stop");
	idb = peer_expect(t, "cont");
	peer_reply(t, ida, "{}");
	peer_send(t, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
	    "\"event\": \"STOP\"}\r\n");
	peer_send(t, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 3}, "
	    "\"event\": \"MIGRATION\", \"data\": {\"status\": \"setup\"}}\r\n");
	pump_until(t, &t->events, 2);
	assert_string_equal(t->last_event, "MIGRATION");
	assert_string_equal(t->last_data, "{\"status\":\"setup\"}");
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 0);
	peer_reply(t, idb, "{}");
	pump_until(t, &b.called, 1);
	assert_int_equal(t->events, 2);
	peer_free(t);
}

static void
test_byte_by_byte(void **state)
{
	struct test	*t = peer_new();
	struct reply	 r = { .t = t };
	char		 line[256];
	size_t		 i;
	int64_t		 id;

	for (i = 0; i < strlen(GREETING); i++) {
		peer_send_n(t, &GREETING[i], 1);
		pump_until(t, NULL, 0);
	}
	peer_reply(t, peer_expect(t, "qmp_capabilities"), "{}");
	pump_until(t, &t->ready, 1);
	qmp_command(t->q, "query-status", NULL, -1, reply_cb, &r);
	id = peer_expect(t, "query-status");
	snprintf(line, sizeof line, "{\"event\": \"STOP\"}\r\n"
	    "{\"return\": {\"status\": \"paused\", \"text\": \"a\\\"}\\n\"}, "
	    "\"id\": %lld}\r\n", (long long)id);
	for (i = 0; i < strlen(line); i++) {
		assert_int_equal(r.called, 0);
		peer_send_n(t, line + i, 1);
		pump_until(t, NULL, 0);
	}
	pump_until(t, &r.called, 1);
	assert_int_equal(t->events, 1);
	assert_string_equal(r.result,
	    "{\"status\":\"paused\",\"text\":\"a\\\"}\\n\"}");
	assert_int_equal(t->closed, 0);
	peer_free(t);
}

static void
test_several_in_one_read(void **state)
{
	struct test	*t = peer_new();
	struct reply	 a = { .t = t }, b = { .t = t };
	char		 line[512];
	int64_t		 ida, idb;

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	qmp_command(t->q, "cont", NULL, -1, reply_cb, &b);
	handshake(t);
	ida = peer_expect(t, "stop");
	idb = peer_expect(t, "cont");
	snprintf(line, sizeof line, "{\"return\": {}, \"id\": %lld}\r\n"
	    "{\"event\": \"STOP\", \"data\": {}}\r\n\r\n"
	    "{\"event\": \"RESUME\"}\r\n"
	    "{\"return\": {}, \"id\": %lld}\r\n", (long long)ida,
	    (long long)idb);
	peer_send(t, line);
	pump_until(t, &b.called, 1);
	assert_int_equal(a.called, 1);
	assert_int_equal(t->events, 2);
	assert_string_equal(t->last_event, "RESUME");
	assert_string_equal(t->last_data, "");
	peer_free(t);
}

static void
test_garbage(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t }, b = { .t = t };

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	peer_expect(t, "stop");
	/* b may or may not be written yet: it fails the same way. */
	qmp_command(t->q, "cont", NULL, -1, reply_cb, &b);
	peer_send(t, "{\"event\": \"STOP\"}\r\n{\"return\": {}, \"id\": \r\n");
	pump_until(t, &t->closed, 1);
	assert_int_equal(t->closed, 1);
	assert_int_equal(t->closed_err, EPROTO);
	assert_int_equal(t->events, 1);
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 1);
	assert_string_equal(a.class, "Disconnected");
	assert_string_equal(b.class, "Disconnected");
	errno = 0;
	assert_int_equal(qmp_command(t->q, "cont", json_object_new_object(), -1,
	    reply_cb, &b), -1);
	assert_int_equal(errno, EPIPE);
	pump_until(t, NULL, 0);
	assert_int_equal(b.called, 1);
	assert_int_equal(t->closed, 1);
	peer_free(t);
}

static void
test_not_an_object(void **state)
{
	struct test	*t = peer_new_ready();

	peer_send(t, "[1, 2, 3]\n");
	pump_until(t, &t->closed, 1);
	assert_int_equal(t->closed_err, EPROTO);
	peer_free(t);
}

static void
test_no_greeting(void **state)
{
	struct test	*t = peer_new();
	struct reply	 r = { .t = t };

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &r);
	peer_send(t, "{\"return\": {}}\n");
	pump_until(t, &t->closed, 1);
	assert_int_equal(t->closed_err, EPROTO);
	assert_int_equal(t->ready, 1);		/* ready(0) */
	assert_int_equal(r.called, 1);
	assert_string_equal(r.class, "Disconnected");
	peer_free(t);
}

static void
test_oversized(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 r = { .t = t };
	char		*big;
	size_t		 len = 1024 * 1024 + 100, off;

	qmp_command(t->q, "query-qmp-schema", NULL, -1, reply_cb, &r);
	peer_expect(t, "query-qmp-schema");
	big = malloc(len);
	assert_non_null(big);
	memcpy(big, "{\"return\": \"", 12);
	memset(big + 12, 'x', len - 12);
	/* The client gives up before the peer gets to a newline. */
	for (off = 0; off < len && !t->closed; off += 4096) {
		if (write(t->peer, big + off, len - off < 4096 ? len - off :
		    4096) == -1 && errno != EAGAIN)
			break;
		pump_until(t, NULL, 0);
	}
	pump_until(t, &t->closed, 1);
	free(big);
	assert_int_equal(t->closed_err, EPROTO);
	assert_int_equal(r.called, 1);
	assert_string_equal(r.class, "Disconnected");
	peer_free(t);
}

static void
test_peer_eof(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t }, b = { .t = t };

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	qmp_command(t->q, "quit", NULL, -1, reply_cb, &b);
	peer_expect(t, "stop");
	peer_expect(t, "quit");
	peer_send(t, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}}\n");
	shutdown(t->peer, SHUT_WR);
	pump_until(t, &t->closed, 1);
	assert_int_equal(t->closed, 1);
	assert_int_equal(t->closed_err, 0);
	assert_string_equal(t->last_event, "SHUTDOWN");
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 1);
	assert_string_equal(a.class, "Disconnected");
	assert_string_equal(b.class, "Disconnected");
	pump_until(t, NULL, 0);
	assert_int_equal(a.called + b.called + t->closed, 3);
	peer_free(t);
}

static void
test_partial_line_at_eof(void **state)
{
	struct test	*t = peer_new_ready();

	peer_send(t, "{\"event\": \"STO");
	shutdown(t->peer, SHUT_WR);
	pump_until(t, &t->closed, 1);
	assert_int_equal(t->closed_err, EPROTO);
	peer_free(t);
}

static void
test_fd_passing(void **state)
{
	struct test		*t = peer_new_ready();
	struct reply		 a = { .t = t }, b = { .t = t }, c = { .t = t };
	struct json_object	*args;
	struct stat		 st1, st2;
	int			 p[2], first;
	int64_t			 id;

	assert_int_equal(pipe(p), 0);
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	assert_int_equal(qmp_command(t->q, "getfd", args, p[1], reply_cb, &a),
	    0);
	/* A second fd waits until the first getfd is answered. */
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("two"));
	assert_int_equal(qmp_command(t->q, "getfd", args, p[0], reply_cb, &b),
	    0);
	qmp_command(t->q, "query-status", NULL, -1, reply_cb, &c);
	id = peer_expect(t, "getfd");
	assert_true(t->peer_fd >= 0);
	assert_int_equal(fstat(t->peer_fd, &st1), 0);
	assert_int_equal(fstat(p[1], &st2), 0);	/* the caller kept its fd */
	assert_true(st1.st_dev == st2.st_dev && st1.st_ino == st2.st_ino);
	assert_true(t->peer_fd != p[1]);
	assert_true(fcntl(t->peer_fd, F_GETFL) & O_WRONLY);
	first = t->peer_fd;
	peer_nothing_sent(t);
	peer_reply(t, id, "{}");
	id = peer_expect(t, "getfd");
	assert_true(t->peer_fd != first);	/* a new one arrived */
	assert_int_equal(fstat(t->peer_fd, &st1), 0);
	assert_true(st1.st_ino == st2.st_ino);
	assert_false(fcntl(t->peer_fd, F_GETFL) & O_WRONLY);
	peer_expect(t, "query-status");
	peer_reply(t, id, "{}");
	pump_until(t, &b.called, 1);
	assert_int_equal(a.called, 1);
	assert_string_equal(a.result, "{}");
	close(p[0]);
	close(p[1]);
	peer_free(t);
}

static void
test_free_in_reply(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t, .free_qmp = 1 }, b = { .t = t };
	char		 line[256];
	int64_t		 ida, idb;

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	qmp_command(t->q, "cont", NULL, -1, reply_cb, &b);
	ida = peer_expect(t, "stop");
	idb = peer_expect(t, "cont");
	snprintf(line, sizeof line, "{\"return\": {}, \"id\": %lld}\n"
	    "{\"event\": \"STOP\"}\n{\"return\": {}, \"id\": %lld}\n",
	    (long long)ida, (long long)idb);
	peer_send(t, line);
	pump_until(t, &a.called, 1);
	pump_until(t, NULL, 0);
	assert_null(t->q);
	assert_int_equal(b.called, 0);
	assert_int_equal(t->events, 0);
	assert_int_equal(t->closed, 0);
	peer_free(t);
}

static void
test_free_in_disconnected(void **state)
{
	struct test	*t = peer_new_ready();
	struct reply	 a = { .t = t, .free_qmp = 1 }, b = { .t = t };

	qmp_command(t->q, "stop", NULL, -1, reply_cb, &a);
	qmp_command(t->q, "cont", NULL, -1, reply_cb, &b);
	peer_expect(t, "stop");
	peer_expect(t, "cont");
	peer_send(t, "garbage\n");
	pump_until(t, &a.called, 1);
	pump_until(t, NULL, 0);
	assert_null(t->q);
	assert_string_equal(a.class, "Disconnected");
	assert_int_equal(b.called, 0);
	assert_int_equal(t->closed, 0);
	peer_free(t);
}

static void
test_free_in_closed_and_ready(void **state)
{
	struct test	*t = peer_new_ready();

	t->free_in_closed = 1;
	close(t->peer);
	t->peer = socket(AF_UNIX, SOCK_STREAM, 0);	/* for peer_free */
	pump_until(t, &t->closed, 1);
	assert_null(t->q);
	assert_int_equal(t->closed_err, 0);
	peer_free(t);

	t = peer_new();
	t->free_in_ready = 1;
	peer_send(t, "not json\n");
	pump_until(t, &t->ready, 1);
	pump_until(t, NULL, 0);
	assert_null(t->q);
	assert_int_equal(t->ready, 1);
	assert_int_equal(t->closed, 0);
	peer_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_queueing),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_event_between_replies),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_several_in_one_read),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_no_greeting),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_peer_eof),
		cmocka_unit_test(test_partial_line_at_eof),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_free_in_reply),
		cmocka_unit_test(test_free_in_disconnected),
		cmocka_unit_test(test_free_in_closed_and_ready),
	};

	log_init("qmp_test", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
