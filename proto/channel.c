/*
 * A framed channel on the process's libevent base: reads frames as they
 * complete and hands them to one callback, queues outgoing frames (with their
 * descriptors, common/wq.c) and writes them when the socket is writable. A
 * peer that sends garbage or an oversized frame gets the channel closed,
 * never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto.h"
#include "wq.h"

_Static_assert(FRAME_MAX_FDS <= WQ_MAX_FDS, "a frame's fds in one message");

struct channel {
	int			 fd;
	struct frame_reader	*reader;
	struct event		*read_ev;
	struct event		*write_ev;
	struct wq		*out;
	channel_cb		 cb;
	void			*arg;
	int			 closed;
	int			*alive;	/* cleared by channel_free in a callback */
};

static void	channel_read_cb(evutil_socket_t, short, void *);
static void	channel_write_cb(evutil_socket_t, short, void *);

struct channel *
channel_new(struct event_base *base, int fd, size_t max_payload,
    channel_cb cb, void *arg)
{
	struct channel	*c;
	int		 flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return NULL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->fd = fd;
	c->cb = cb;
	c->arg = arg;
	if ((c->out = wq_new()) == NULL)
		goto fail;
	if ((c->reader = frame_reader_new(max_payload)) == NULL)
		goto fail;
	c->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, channel_read_cb,
	    c);
	c->write_ev = event_new(base, fd, EV_WRITE, channel_write_cb, c);
	if (c->read_ev == NULL || c->write_ev == NULL ||
	    event_add(c->read_ev, NULL) == -1)
		goto fail;
	return c;
fail:
	channel_free(c);
	return NULL;
}

/* Frees the channel and closes its fd. */
void
channel_free(struct channel *c)
{
	if (c == NULL)
		return;
	if (c->alive != NULL)
		*c->alive = 0;
	if (c->read_ev != NULL)
		event_free(c->read_ev);
	if (c->write_ev != NULL)
		event_free(c->write_ev);
	wq_free(c->out);
	frame_reader_free(c->reader);
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

int
channel_fd(const struct channel *c)
{
	return c->fd;
}

size_t
channel_pending(const struct channel *c)
{
	return wq_pending(c->out);
}

/* Stop all I/O and tell the owner once. */
static void
channel_close(struct channel *c, int err)
{
	if (c->closed)
		return;
	c->closed = 1;
	event_del(c->read_ev);
	event_del(c->write_ev);
	c->cb(c, NULL, err, c->arg);
}

static void
channel_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct channel	*c = arg;
	struct frame	 f;
	ssize_t		 n;
	int		 alive = 1, r;

	n = frame_reader_fill(c->reader, fd);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == -1 && errno != EPROTO) {
		channel_close(c, errno);
		return;
	}
	/* Deliver every complete frame; the callback may free the channel. */
	c->alive = &alive;
	while (alive && !c->closed) {
		r = frame_reader_next(c->reader, &f);
		if (r == 0)
			break;
		if (r == -1) {
			channel_close(c, errno);
			break;
		}
		c->cb(c, &f, 0, c->arg);
		frame_release(&f);
	}
	if (!alive)
		return;
	c->alive = NULL;
	if (n == 0 && !c->closed)
		channel_close(c, frame_reader_buffered(c->reader) ? EPROTO : 0);
}

static void
channel_write_cb(evutil_socket_t fd, short events, void *arg)
{
	struct channel	*c = arg;

	switch (wq_flush(c->out, fd)) {
	case WQ_ERROR:
		channel_close(c, errno);
		break;
	case WQ_AGAIN:
		event_add(c->write_ev, NULL);
		break;
	case WQ_DONE:
		break;
	}
}

/* Queue one frame. The caller keeps its fds: the channel sends dups. */
int
channel_send(struct channel *c, uint16_t type, const void *payload,
    size_t length, const int *fds, size_t nfds)
{
	uint8_t		header[FRAME_HEADER_SIZE];
	struct iovec	iov[2];

	if (c->closed) {
		errno = EPIPE;
		return -1;
	}
	if (nfds > FRAME_MAX_FDS || length > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	frame_encode_header(header, type, (uint32_t)length, nfds);
	iov[0].iov_base = header;
	iov[0].iov_len = sizeof header;
	iov[1].iov_base = (void *)payload;
	iov[1].iov_len = length;
	if (wq_pushv(c->out, iov, 2, fds, nfds) == -1)
		return -1;
	if (event_add(c->write_ev, NULL) == -1)
		return -1;
	return 0;
}

int
channel_send_message(struct channel *c, uint16_t type,
    const ProtobufCMessage *m, const int *fds, size_t nfds)
{
	uint8_t	*buf;
	size_t	 len;
	int	 r;

	if ((buf = message_pack(m, &len)) == NULL)
		return -1;
	r = channel_send(c, type, buf, len, fds, nfds);
	free(buf);
	return r;
}

int
channel_send_error(struct channel *c, Haven__ErrorCode code,
    const char *fmt, ...)
{
	Haven__Error	 e = HAVEN__ERROR__INIT;
	char		 text[512];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	e.code = code;
	e.message = text;
	return channel_send_message(c, FRAME_ERROR, &e.base, NULL, 0);
}
