/*
 * Unit tests of the frame reader and writer: whole frames, frames cut at
 * every byte, truncated streams, oversized and garbage frames, and
 * descriptors travelling beside frames.
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

#include "proto.h"

static size_t
make_frame(uint8_t *buf, uint16_t type, const char *payload)
{
	size_t	len = strlen(payload);

	frame_encode_header(buf, type, (uint32_t)len, 0);
	memcpy(buf + FRAME_HEADER_SIZE, payload, len);
	return FRAME_HEADER_SIZE + len;
}

static void
test_whole_frames(void **state)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;
	uint8_t			 buf[256];
	size_t			 n;

	n = make_frame(buf, 100, "hello");
	n += make_frame(buf + n, 101, "");
	assert_int_equal(frame_reader_feed(r, buf, n), 0);
	assert_int_equal(frame_reader_next(r, &f), 1);
	assert_int_equal(f.type, 100);
	assert_int_equal(f.length, 5);
	assert_memory_equal(f.payload, "hello", 5);
	assert_int_equal(f.nfds, 0);
	frame_release(&f);
	assert_int_equal(frame_reader_next(r, &f), 1);
	assert_int_equal(f.type, 101);
	assert_int_equal(f.length, 0);
	frame_release(&f);
	assert_int_equal(frame_reader_next(r, &f), 0);
	assert_int_equal(frame_reader_buffered(r), 0);
	frame_reader_free(r);
}

/* A frame split at every possible byte boundary still comes out whole. */
static void
test_split_everywhere(void **state)
{
	struct frame_reader	*r;
	struct frame		 f;
	uint8_t			 buf[256];
	size_t			 n, cut;

	n = make_frame(buf, 200, "a frame that arrives in pieces");
	for (cut = 0; cut <= n; cut++) {
		r = frame_reader_new(1024);
		frame_reader_feed(r, buf, cut);
		if (cut < n)
			assert_int_equal(frame_reader_next(r, &f), 0);
		frame_reader_feed(r, buf + cut, n - cut);
		assert_int_equal(frame_reader_next(r, &f), 1);
		assert_int_equal(f.type, 200);
		assert_memory_equal(f.payload, buf + FRAME_HEADER_SIZE,
		    n - FRAME_HEADER_SIZE);
		frame_release(&f);
		frame_reader_free(r);
	}
}

/* A truncated frame is never delivered; it stays "need more". */
static void
test_truncated(void **state)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;
	uint8_t			 buf[256];
	size_t			 n;

	n = make_frame(buf, 100, "truncated payload");
	frame_reader_feed(r, buf, n - 1);
	assert_int_equal(frame_reader_next(r, &f), 0);
	assert_null(f.payload);
	assert_int_equal(frame_reader_buffered(r), n - 1);
	frame_reader_free(r);
}

static void
test_oversized(void **state)
{
	struct frame_reader	*r = frame_reader_new(16);
	struct frame		 f;
	uint8_t			 h[FRAME_HEADER_SIZE];

	/* Only the header has arrived: the cap is enforced before the
	 * payload is buffered, so a peer cannot make us allocate it. */
	frame_encode_header(h, 100, 17, 0);
	frame_reader_feed(r, h, sizeof h);
	assert_int_equal(frame_reader_next(r, &f), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* The reader stays failed. */
	assert_int_equal(frame_reader_next(r, &f), -1);
	assert_int_equal(frame_reader_feed(r, h, sizeof h), -1);
	frame_reader_free(r);

	r = frame_reader_new(16);
	frame_encode_header(h, 100, UINT32_MAX, 0);
	frame_reader_feed(r, h, sizeof h);
	assert_int_equal(frame_reader_next(r, &f), -1);
	assert_int_equal(errno, EMSGSIZE);
	frame_reader_free(r);

	/* Exactly at the cap is fine. */
	r = frame_reader_new(16);
	frame_encode_header(h, 100, 16, 0);
	frame_reader_feed(r, h, sizeof h);
	frame_reader_feed(r, "0123456789abcdef", 16);
	assert_int_equal(frame_reader_next(r, &f), 1);
	frame_release(&f);
	frame_reader_free(r);
}

static void
expect_garbage(const void *bytes, size_t len)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;

	frame_reader_feed(r, bytes, len);
	assert_int_equal(frame_reader_next(r, &f), -1);
	assert_int_equal(errno, EPROTO);
	assert_null(f.payload);
	frame_reader_free(r);
}

static void
test_garbage(void **state)
{
	uint8_t	h[FRAME_HEADER_SIZE];

	/* Not even our magic: refused from the first byte. */
	expect_garbage("G", 1);
	expect_garbage("GET / HTTP/1.1\r\n\r\n", 18);
	/* Wrong version. */
	frame_encode_header(h, 1, 0, 0);
	h[2] = FRAME_VERSION + 1;
	expect_garbage(h, 3);
	/* More fds than a frame may carry. */
	frame_encode_header(h, 1, 0, 0);
	h[3] = FRAME_MAX_FDS + 1;
	expect_garbage(h, 4);
	/* Flags must be zero. */
	frame_encode_header(h, 1, 0, 0);
	h[7] = 1;
	expect_garbage(h, sizeof h);
	/* Claims fds that never came. */
	frame_encode_header(h, 1, 0, 2);
	expect_garbage(h, sizeof h);
}

static void
test_first_byte_ok(void **state)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;

	frame_reader_feed(r, "H", 1);
	assert_int_equal(frame_reader_next(r, &f), 0);
	frame_reader_free(r);
}

/* Descriptors travel beside frames over a socketpair, in order. */
static void
test_fds_over_socketpair(void **state)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;
	struct stat		 a, b;
	int			 sv[2], fds[2], got = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fds[0] = open("/dev/null", O_RDONLY);
	fds[1] = open("/", O_RDONLY | O_DIRECTORY);
	assert_int_equal(frame_send(sv[0], 200, "x", 1, fds, 2), 0);
	assert_int_equal(frame_send(sv[0], 201, "yy", 2, NULL, 0), 0);
	close(sv[0]);
	for (;;) {
		int rc = frame_reader_next(r, &f);
		if (rc == 1) {
			if (got == 0) {
				assert_int_equal(f.type, 200);
				assert_int_equal(f.nfds, 2);
				fstat(f.fds[0], &a);
				fstat(fds[0], &b);
				assert_int_equal(a.st_ino, b.st_ino);
				fstat(f.fds[1], &a);
				fstat(fds[1], &b);
				assert_int_equal(a.st_ino, b.st_ino);
				/* Received fds are close-on-exec. */
				assert_true(fcntl(f.fds[0], F_GETFD) &
				    FD_CLOEXEC);
			} else {
				assert_int_equal(f.type, 201);
				assert_int_equal(f.nfds, 0);
			}
			frame_release(&f);
			got++;
			continue;
		}
		assert_int_equal(rc, 0);
		if (frame_reader_fill(r, sv[1]) <= 0)
			break;
	}
	assert_int_equal(got, 2);
	close(fds[0]);
	close(fds[1]);
	close(sv[1]);
	frame_reader_free(r);
}

/* Unclaimed fds of a frame are closed by frame_release. */
static void
test_release_closes(void **state)
{
	struct frame_reader	*r = frame_reader_new(1024);
	struct frame		 f;
	int			 sv[2], fd, kept;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fd = open("/dev/null", O_RDONLY);
	frame_send(sv[0], 1, NULL, 0, &fd, 1);
	assert_true(frame_reader_fill(r, sv[1]) > 0);
	assert_int_equal(frame_reader_next(r, &f), 1);
	kept = f.fds[0];
	frame_release(&f);
	assert_int_equal(fcntl(kept, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	frame_reader_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_frames),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_first_byte_ok),
		cmocka_unit_test(test_fds_over_socketpair),
		cmocka_unit_test(test_release_closes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
