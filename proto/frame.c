/*
 * Length-prefixed frames over a stream socket, with file descriptors beside
 * them (SCM_RIGHTS). The reader is incremental and never trusts the peer: a
 * bad magic, version, flag, fd count or a payload over the cap poisons the
 * reader, and the caller closes the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "proto.h"

/* How many received fds may wait for their frame to complete. */
#define FRAME_FD_QUEUE	(4 * FRAME_MAX_FDS)

struct frame_reader {
	size_t	 max_payload;
	uint8_t	*buf;
	size_t	 len;		/* bytes held in buf */
	size_t	 size;		/* allocated size of buf */
	int	 fds[FRAME_FD_QUEUE];
	size_t	 nfds;
	int	 error;		/* sticky errno once the stream is bad */
};

struct frame_reader *
frame_reader_new(size_t max_payload)
{
	struct frame_reader	*r;

	if (max_payload == 0 || max_payload > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	r->max_payload = max_payload;
	return r;
}

static void
frame_reader_close_fds(struct frame_reader *r)
{
	size_t	i;

	for (i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	r->nfds = 0;
}

void
frame_reader_free(struct frame_reader *r)
{
	if (r == NULL)
		return;
	frame_reader_close_fds(r);
	free(r->buf);
	free(r);
}

size_t
frame_reader_buffered(const struct frame_reader *r)
{
	return r->len;
}

static int
frame_reader_fail(struct frame_reader *r, int error)
{
	r->error = error;
	frame_reader_close_fds(r);
	errno = error;
	return -1;
}

/* Make room for at least `want` more bytes, never beyond one whole frame. */
static int
frame_reader_reserve(struct frame_reader *r, size_t want)
{
	size_t	 need = r->len + want, size;
	uint8_t	*p;

	if (need <= r->size)
		return 0;
	size = r->size ? r->size : 4096;
	while (size < need)
		size *= 2;
	if ((p = realloc(r->buf, size)) == NULL)
		return -1;
	r->buf = p;
	r->size = size;
	return 0;
}

int
frame_reader_feed(struct frame_reader *r, const void *data, size_t len)
{
	if (r->error != 0) {
		errno = r->error;
		return -1;
	}
	if (len == 0)
		return 0;
	if (frame_reader_reserve(r, len) == -1)
		return -1;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

/*
 * One recvmsg(). Returns the number of bytes read, 0 at EOF, -1 with errno
 * (EAGAIN when nothing is there on a non-blocking socket). Descriptors that
 * arrive are queued until the frame that names them is complete.
 */
ssize_t
frame_reader_fill(struct frame_reader *r, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * FRAME_MAX_FDS)];
	} control;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	ssize_t		 n;
	size_t		 i, count;
	int		*fds;

	if (r->error != 0) {
		errno = r->error;
		return -1;
	}
	if (frame_reader_reserve(r, 65536) == -1)
		return -1;
	iov.iov_base = r->buf + r->len;
	iov.iov_len = r->size - r->len;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;

	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cmsg);
		for (i = 0; i < count; i++) {
			if (r->nfds == FRAME_FD_QUEUE) {
				close(fds[i]);
				r->error = EPROTO;
				continue;
			}
			r->fds[r->nfds++] = fds[i];
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		r->error = EPROTO;
	if (r->error != 0)
		return frame_reader_fail(r, r->error);
	r->len += (size_t)n;
	return n;
}

/*
 * Take the next complete frame. Returns 1 and fills *f, 0 when more bytes are
 * needed, -1 with errno EPROTO (not a Haven frame: bad magic, version, flags,
 * or fds missing) or EMSGSIZE (payload over the cap). After -1 the reader
 * stays failed: the stream cannot be resynchronised.
 */
int
frame_reader_next(struct frame_reader *r, struct frame *f)
{
	const uint8_t	*h = r->buf;
	uint32_t	 length;
	size_t		 nfds, total, i;

	memset(f, 0, sizeof *f);
	for (i = 0; i < FRAME_MAX_FDS; i++)
		f->fds[i] = -1;
	if (r->error != 0) {
		errno = r->error;
		return -1;
	}
	/* Reject garbage as early as its first bytes allow. */
	if (r->len >= 1 && h[0] != (FRAME_MAGIC >> 8))
		return frame_reader_fail(r, EPROTO);
	if (r->len >= 2 && be16_get(h) != FRAME_MAGIC)
		return frame_reader_fail(r, EPROTO);
	if (r->len >= 3 && h[2] != FRAME_VERSION)
		return frame_reader_fail(r, EPROTO);
	if (r->len >= 4 && h[3] > FRAME_MAX_FDS)
		return frame_reader_fail(r, EPROTO);
	if (r->len < FRAME_HEADER_SIZE)
		return 0;
	if (be16_get(h + 6) != 0)
		return frame_reader_fail(r, EPROTO);
	length = be32_get(h + 8);
	if (length > r->max_payload)
		return frame_reader_fail(r, EMSGSIZE);
	total = FRAME_HEADER_SIZE + (size_t)length;
	if (r->len < total)
		return 0;

	nfds = h[3];
	if (nfds > r->nfds)
		return frame_reader_fail(r, EPROTO);

	f->type = be16_get(h + 4);
	f->flags = 0;
	f->length = length;
	if ((f->payload = malloc(length ? length : 1)) == NULL)
		return -1;
	memcpy(f->payload, h + FRAME_HEADER_SIZE, length);
	for (i = 0; i < nfds; i++)
		f->fds[i] = r->fds[i];
	f->nfds = nfds;
	memmove(r->fds, r->fds + nfds, (r->nfds - nfds) * sizeof(int));
	r->nfds -= nfds;
	memmove(r->buf, r->buf + total, r->len - total);
	r->len -= total;
	return 1;
}

void
frame_release(struct frame *f)
{
	size_t	i;

	for (i = 0; i < f->nfds; i++) {
		if (f->fds[i] != -1)
			close(f->fds[i]);
		f->fds[i] = -1;
	}
	f->nfds = 0;
	free(f->payload);
	f->payload = NULL;
}

int
frame_encode_header(uint8_t *h, uint16_t type, uint32_t length, size_t nfds)
{
	if (nfds > FRAME_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	h[0] = FRAME_MAGIC >> 8;
	h[1] = FRAME_MAGIC & 0xff;
	h[2] = FRAME_VERSION;
	h[3] = (uint8_t)nfds;
	h[4] = type >> 8;
	h[5] = type & 0xff;
	h[6] = 0;
	h[7] = 0;
	h[8] = (uint8_t)(length >> 24);
	h[9] = (uint8_t)(length >> 16);
	h[10] = (uint8_t)(length >> 8);
	h[11] = (uint8_t)length;
	return 0;
}

/*
 * Send one whole frame on a blocking socket (clients and tests; daemons use
 * channel_send). The fds go with the first byte of the frame.
 */
int
frame_send(int fd, uint16_t type, const void *payload, size_t length,
    const int *fds, size_t nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * FRAME_MAX_FDS)];
	} control;
	uint8_t		 header[FRAME_HEADER_SIZE];
	struct iovec	 iov[2];
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	size_t		 done = 0, total = FRAME_HEADER_SIZE + length, skip;
	ssize_t		 n;
	int		 first = 1;

	if (length > UINT32_MAX ||
	    frame_encode_header(header, type, (uint32_t)length, nfds) == -1) {
		errno = EINVAL;
		return -1;
	}
	while (done < total) {
		memset(&msg, 0, sizeof msg);
		skip = done;
		msg.msg_iov = iov;
		if (skip < FRAME_HEADER_SIZE) {
			iov[0].iov_base = header + skip;
			iov[0].iov_len = FRAME_HEADER_SIZE - skip;
			iov[1].iov_base = (void *)(uintptr_t)payload;
			iov[1].iov_len = length;
			msg.msg_iovlen = length ? 2 : 1;
		} else {
			iov[0].iov_base = (uint8_t *)(uintptr_t)payload +
			    (skip - FRAME_HEADER_SIZE);
			iov[0].iov_len = total - skip;
			msg.msg_iovlen = 1;
		}
		if (first && nfds > 0) {
			memset(&control, 0, sizeof control);
			msg.msg_control = control.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
		}
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		first = 0;
		done += (size_t)n;
	}
	return 0;
}

const char *
frame_strerror(int error)
{
	switch (error) {
	case 0:
		return "connection closed by peer";
	case EPROTO:
		return "not a Haven frame (bad magic, version, flags or "
		    "descriptor count)";
	case EMSGSIZE:
		return "frame larger than the size cap";
	case EBADMSG:
		return "message does not decode";
	case ENOMSG:
		return "unknown message type";
	default:
		return strerror(error);
	}
}
