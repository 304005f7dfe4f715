/*
 * The write queue of the sockets that pass descriptors (wq.h): messages in
 * order, partial writes resumed where they stopped, and each message's
 * descriptors attached to its first byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wq.h"

struct wq_msg {
	TAILQ_ENTRY(wq_msg) entry;
	size_t		 len;
	size_t		 off;		/* bytes written */
	int		 fds[WQ_MAX_FDS];	/* our dups, -1 once sent */
	size_t		 nfds;
	uint8_t		 data[];
};

struct wq {
	TAILQ_HEAD(, wq_msg) msgs;
	size_t		 pending;
};

struct wq *
wq_new(void)
{
	struct wq	*q;

	if ((q = calloc(1, sizeof *q)) == NULL)
		return NULL;
	TAILQ_INIT(&q->msgs);
	return q;
}

static void
wq_msg_close_fds(struct wq_msg *m)
{
	size_t	i;

	for (i = 0; i < m->nfds; i++) {
		if (m->fds[i] != -1)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
}

int
wq_pushv(struct wq *q, const struct iovec *iov, int iovcnt, const int *fds,
    size_t nfds)
{
	struct wq_msg	*m;
	size_t		 len = 0, off = 0;
	int		 i;

	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - sizeof *m - len) {
			errno = EINVAL;
			return -1;
		}
		len += iov[i].iov_len;
	}
	if (len == 0 || nfds > WQ_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if ((m = malloc(sizeof *m + len)) == NULL)
		return -1;
	m->len = len;
	m->off = 0;
	m->nfds = 0;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > 0)
			memcpy(m->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	for (; m->nfds < nfds; m->nfds++) {
		if ((m->fds[m->nfds] = fcntl(fds[m->nfds], F_DUPFD_CLOEXEC,
		    0)) == -1) {
			wq_msg_close_fds(m);
			free(m);
			return -1;
		}
	}
	TAILQ_INSERT_TAIL(&q->msgs, m, entry);
	q->pending += len;
	return 0;
}

int
wq_push(struct wq *q, const void *bytes, size_t len, const int *fds,
    size_t nfds)
{
	struct iovec	iov = { .iov_base = (void *)bytes, .iov_len = len };

	return wq_pushv(q, &iov, 1, fds, nfds);
}

enum wq_status
wq_flush(struct wq *q, int sockfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * WQ_MAX_FDS)];
	} control;
	struct wq_msg	*m;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	while ((m = TAILQ_FIRST(&q->msgs)) != NULL) {
		memset(&msg, 0, sizeof msg);
		iov.iov_base = m->data + m->off;
		iov.iov_len = m->len - m->off;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (m->off == 0 && m->nfds > 0) {
			memset(&control, 0, sizeof control);
			msg.msg_control = control.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
			memcpy(CMSG_DATA(cmsg), m->fds, sizeof(int) * m->nfds);
		}
		n = sendmsg(sockfd, &msg, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return WQ_AGAIN;
		if (n == -1)
			return WQ_ERROR;
		/* The peer has its copies of the fds now. */
		if (m->off == 0)
			wq_msg_close_fds(m);
		m->off += (size_t)n;
		q->pending -= (size_t)n;
		if (m->off < m->len)
			continue;
		TAILQ_REMOVE(&q->msgs, m, entry);
		free(m);
	}
	return WQ_DONE;
}

size_t
wq_pending(const struct wq *q)
{
	return q->pending;
}

void
wq_free(struct wq *q)
{
	struct wq_msg	*m;

	if (q == NULL)
		return;
	while ((m = TAILQ_FIRST(&q->msgs)) != NULL) {
		TAILQ_REMOVE(&q->msgs, m, entry);
		wq_msg_close_fds(m);
		free(m);
	}
	free(q);
}
