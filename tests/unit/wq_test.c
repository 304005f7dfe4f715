/*
 * Unit tests of the write queue (common/wq.c) on a real socketpair: partial
 * writes resumed in order, descriptors that arrive with their message's
 * first byte and no other, a full socket (EAGAIN), a peer that is gone
 * (EPIPE), and descriptors closed once sent or when the queue is freed.
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

#include "wq.h"

static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
}

/* Is the write end of this pipe still open somewhere (in the queue)? */
static int
writer_open(int read_end)
{
	char	c;

	assert_int_equal(fcntl(read_end, F_SETFL, O_NONBLOCK), 0);
	if (read(read_end, &c, 1) == -1 && errno == EAGAIN)
		return 1;
	return 0;	/* EOF: every write end is closed */
}

/* One byte with whatever descriptors came with it; returns how many. */
static size_t
recv_byte(int fd, uint8_t *byte, int *fds, size_t max)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * WQ_MAX_FDS)];
	} control;
	struct msghdr	 msg;
	struct iovec	 iov = { .iov_base = byte, .iov_len = 1 };
	struct cmsghdr	*cmsg;
	size_t		 n = 0;

	memset(&msg, 0, sizeof msg);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;
	assert_int_equal(recvmsg(fd, &msg, MSG_CMSG_CLOEXEC), 1);
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		assert_true(n <= max);
		memcpy(fds, CMSG_DATA(cmsg), n * sizeof(int));
	}
	return n;
}

static void
assert_same_file(int a, int b)
{
	struct stat	sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_true(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

static void
test_fds_with_first_byte(void **state)
{
	struct wq	*q = wq_new();
	int		 sv[2], p[2], two[2], fds[WQ_MAX_FDS];
	uint8_t		 byte;
	size_t		 i, n;

	pair(sv);
	assert_int_equal(pipe(p), 0);
	two[0] = p[0];
	two[1] = p[1];
	assert_non_null(q);
	assert_int_equal(wq_push(q, "aaaa", 4, NULL, 0), 0);
	assert_int_equal(wq_push(q, "bbb", 3, &p[1], 1), 0);
	assert_int_equal(wq_push(q, "cc", 2, two, 2), 0);
	assert_int_equal(wq_pending(q), 9);
	assert_int_equal(wq_flush(q, sv[0]), WQ_DONE);
	assert_int_equal(wq_pending(q), 0);

	/* Read one byte at a time: fds come with "b" and the first "c". */
	for (i = 0; i < 9; i++) {
		n = recv_byte(sv[1], &byte, fds, WQ_MAX_FDS);
		assert_int_equal(byte, "aaaabbbcc"[i]);
		if (i == 4) {
			assert_int_equal(n, 1);
			assert_same_file(fds[0], p[1]);
			assert_true(fds[0] != p[1]);
			close(fds[0]);
		} else if (i == 7) {
			assert_int_equal(n, 2);
			assert_same_file(fds[0], p[0]);
			assert_same_file(fds[1], p[1]);
			close(fds[0]);
			close(fds[1]);
		} else {
			assert_int_equal(n, 0);
		}
	}
	/* The queue closed its dups once they were sent. */
	close(p[1]);
	assert_false(writer_open(p[0]));
	close(p[0]);
	wq_free(q);
	close(sv[0]);
	close(sv[1]);
}

static void
test_partial_writes_and_again(void **state)
{
	struct wq	*q = wq_new();
	size_t		 len = 4 * 1024 * 1024, got = 0, i;
	uint8_t		*big = malloc(len), *in = malloc(len + 1);
	int		 sv[2], p[2], fds[WQ_MAX_FDS], sndbuf = 4096;
	int		 again = 0;
	ssize_t		 n;
	uint8_t		 byte;

	assert_non_null(big);
	assert_non_null(in);
	for (i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7 + i / 4096);
	pair(sv);
	assert_int_equal(pipe(p), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	assert_int_equal(wq_push(q, big, len, NULL, 0), 0);
	assert_int_equal(wq_push(q, "z", 1, &p[1], 1), 0);
	close(p[1]);

	/* The socket cannot take 4 MiB: EAGAIN, and the rest stays. */
	while (got < len) {
		if (wq_flush(q, sv[0]) == WQ_AGAIN) {
			again++;
			assert_true(wq_pending(q) > 0);
		}
		/* The last message's fd is still ours until its byte goes. */
		if (wq_pending(q) > 0)
			assert_true(writer_open(p[0]));
		n = read(sv[1], in + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else
			assert_true(n == -1 && errno == EAGAIN);
	}
	assert_true(again > 0);
	assert_memory_equal(in, big, len);
	assert_int_equal(wq_flush(q, sv[0]), WQ_DONE);
	assert_int_equal(recv_byte(sv[1], &byte, fds, WQ_MAX_FDS), 1);
	assert_int_equal(byte, 'z');
	close(fds[0]);
	assert_false(writer_open(p[0]));
	close(p[0]);
	wq_free(q);
	close(sv[0]);
	close(sv[1]);
	free(big);
	free(in);
}

static void
test_epipe_and_free_closes(void **state)
{
	struct wq	*q = wq_new();
	int		 sv[2], p[2];

	pair(sv);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(wq_push(q, "hello", 5, &p[1], 1), 0);
	close(p[1]);			/* the queue's dup keeps it open */
	assert_true(writer_open(p[0]));
	close(sv[1]);
	/* MSG_NOSIGNAL: an error, not SIGPIPE. */
	errno = 0;
	assert_int_equal(wq_flush(q, sv[0]), WQ_ERROR);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(wq_pending(q), 5);	/* nothing was written */
	assert_true(writer_open(p[0]));
	wq_free(q);			/* closes the dup never sent */
	assert_false(writer_open(p[0]));
	close(p[0]);
	close(sv[0]);
	wq_free(NULL);
}

static void
test_refused(void **state)
{
	struct wq	*q = wq_new();
	int		 fds[WQ_MAX_FDS + 1], bad = 1000;
	size_t		 i;

	for (i = 0; i < WQ_MAX_FDS + 1; i++)
		fds[i] = 0;
	assert_int_equal(wq_push(q, "", 0, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(wq_push(q, "x", 1, fds, WQ_MAX_FDS + 1), -1);
	assert_int_equal(errno, EINVAL);
	/* A descriptor that is not open: EBADF, nothing queued. */
	assert_int_equal(wq_push(q, "x", 1, &bad, 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(wq_pending(q), 0);
	wq_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fds_with_first_byte),
		cmocka_unit_test(test_partial_writes_and_again),
		cmocka_unit_test(test_epipe_and_free_closes),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
