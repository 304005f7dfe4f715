/*
 * Unit tests of the framed channel on a real libevent base: messages and
 * descriptors in both directions, a peer that sends garbage, an oversized
 * frame, or hangs up mid-frame, and a large frame that needs many writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "proto.h"

struct seen {
	struct event_base	*base;
	int			 frames;
	int			 closed;
	int			 err;
	uint16_t		 last_type;
	size_t			 last_length;
	int			 kept_fd;
	char			 vm_name[64];
};

static void
seen_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct seen		*s = arg;
	ProtobufCMessage	*m;

	if (f == NULL) {
		s->closed = 1;
		s->err = err;
		event_base_loopbreak(s->base);
		return;
	}
	s->frames++;
	s->last_type = f->type;
	s->last_length = f->length;
	if (f->nfds > 0) {
		s->kept_fd = f->fds[0];
		f->fds[0] = -1;		/* take it */
	}
	if (f->type == FRAME_VM_SPEC && (m = message_decode(f)) != NULL) {
		snprintf(s->vm_name, sizeof s->vm_name, "%s",
		    ((Haven__VmSpec *)m)->name);
		message_free(m);
	}
}

static void
run_until(struct event_base *base, struct seen *s, int frames)
{
	struct timeval	tv = { 0, 20000 };
	int		i;

	for (i = 0; i < 250 && s->frames < frames && !s->closed; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static void
test_message_with_fd(void **state)
{
	struct event_base	*base = ev_base_new();
	struct seen		 s = { .base = base, .kept_fd = -1 };
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	struct channel		*a, *b;
	struct stat		 st1, st2;
	int			 sv[2], fd;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a = channel_new(base, sv[0], FRAME_DEFAULT_MAX, seen_cb, &s);
	b = channel_new(base, sv[1], FRAME_DEFAULT_MAX, seen_cb, &s);
	assert_non_null(a);
	assert_non_null(b);
	spec.name = "web1";
	spec.memory_mib = 256;
	fd = open("/dev/null", O_RDONLY);
	assert_int_equal(channel_send_message(a, FRAME_VM_SPEC, &spec.base,
	    &fd, 1), 0);
	run_until(base, &s, 1);
	assert_int_equal(s.frames, 1);
	assert_int_equal(s.last_type, FRAME_VM_SPEC);
	assert_string_equal(s.vm_name, "web1");
	assert_true(s.kept_fd >= 0);
	fstat(fd, &st1);
	fstat(s.kept_fd, &st2);
	assert_int_equal(st1.st_ino, st2.st_ino);
	close(s.kept_fd);
	close(fd);
	assert_int_equal(channel_pending(a), 0);

	/* The peer hangs up: an orderly close, err 0. */
	channel_free(a);
	run_until(base, &s, 2);
	assert_true(s.closed);
	assert_int_equal(s.err, 0);
	channel_free(b);
	event_base_free(base);
}

static void
test_large_frame(void **state)
{
	struct event_base	*base = ev_base_new();
	struct seen		 s = { .base = base, .kept_fd = -1 };
	struct channel		*a, *b;
	size_t			 len = 900 * 1024;
	uint8_t			*big = calloc(1, len);
	int			 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a = channel_new(base, sv[0], FRAME_DEFAULT_MAX, seen_cb, &s);
	b = channel_new(base, sv[1], FRAME_DEFAULT_MAX, seen_cb, &s);
	assert_int_equal(channel_send(a, FRAME_STATUS_REPLY, big, len, NULL,
	    0), 0);
	assert_int_equal(channel_send(a, FRAME_STATUS_REPLY, big, 1, NULL,
	    0), 0);
	run_until(base, &s, 2);
	assert_int_equal(s.frames, 2);
	assert_int_equal(s.last_length, 1);
	assert_false(s.closed);
	channel_free(a);
	channel_free(b);
	event_base_free(base);
	free(big);
}

/* What a hostile or broken peer can do: each closes the channel with the
 * right reason and nothing is delivered. */
static void
expect_close(const void *bytes, size_t len, int hangup, size_t cap,
    int want_err)
{
	struct event_base	*base = ev_base_new();
	struct seen		 s = { .base = base, .kept_fd = -1 };
	struct channel		*b;
	int			 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	b = channel_new(base, sv[1], cap, seen_cb, &s);
	assert_int_equal(write(sv[0], bytes, len), (ssize_t)len);
	if (hangup)
		close(sv[0]);
	run_until(base, &s, 1);
	assert_int_equal(s.frames, 0);
	assert_true(s.closed);
	assert_int_equal(s.err, want_err);
	/* Sending on a closed channel fails cleanly. */
	assert_int_equal(channel_send(b, FRAME_ERROR, NULL, 0, NULL, 0), -1);
	channel_free(b);
	if (!hangup)
		close(sv[0]);
	event_base_free(base);
}

static void
test_bad_peers(void **state)
{
	uint8_t	h[FRAME_HEADER_SIZE + 4];

	expect_close("garbage that is not a frame", 27, 0, 1024, EPROTO);
	frame_encode_header(h, FRAME_STATUS_REQUEST, 4096, 0);
	expect_close(h, FRAME_HEADER_SIZE, 0, 1024, EMSGSIZE);
	/* Hangs up in the middle of a frame: truncated. */
	frame_encode_header(h, FRAME_STATUS_REQUEST, 100, 0);
	memcpy(h + FRAME_HEADER_SIZE, "abcd", 4);
	expect_close(h, sizeof h, 1, 1024, EPROTO);
}

static void
error_reply_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct seen		*s = arg;
	Haven__Error		*e;

	if (f == NULL)
		return;
	assert_int_equal(f->type, FRAME_ERROR);
	e = (Haven__Error *)message_decode(f);
	assert_non_null(e);
	assert_int_equal(e->code, HAVEN__ERROR_CODE__ERROR_CODE_UNKNOWN_TYPE);
	assert_string_equal(e->message, "unknown message type 999");
	message_free(&e->base);
	s->frames++;
}

static void
test_error_reply(void **state)
{
	struct event_base	*base = ev_base_new();
	struct seen		 s = { .base = base };
	struct channel		*a, *b;
	int			 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a = channel_new(base, sv[0], 1024, error_reply_cb, &s);
	b = channel_new(base, sv[1], 1024, error_reply_cb, &s);
	channel_send_error(b, HAVEN__ERROR_CODE__ERROR_CODE_UNKNOWN_TYPE,
	    "unknown message type %d", 999);
	run_until(base, &s, 1);
	assert_int_equal(s.frames, 1);
	channel_free(a);
	channel_free(b);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_with_fd),
		cmocka_unit_test(test_large_frame),
		cmocka_unit_test(test_bad_peers),
		cmocka_unit_test(test_error_reply),
	};

	log_init("channel_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
