/*
 * wq.c: one write queue for stream sockets that carry descriptors (QMP, the
 * Haven channel). Bytes are queued as messages; a message's descriptors go
 * with its first byte (SCM_RIGHTS in the same sendmsg), so the peer finds
 * them beside the message they belong to, never beside a neighbour.
 */
#ifndef HAVEN_WQ_H
#define HAVEN_WQ_H

#include <stddef.h>
#include <sys/uio.h>

#define WQ_MAX_FDS	16	/* per message */

enum wq_status {
	WQ_ERROR = -1,		/* errno: EPIPE, ECONNRESET, ... */
	WQ_DONE = 0,		/* everything written */
	WQ_AGAIN = 1,		/* the socket is full: wait for EV_WRITE */
};

struct wq;
struct wq	*wq_new(void);
/*
 * Queue one message: the bytes of iov[0..iovcnt) back to back (copied), and
 * dups of fds (the caller keeps its own). A message has at least one byte.
 * -1 with EINVAL (no bytes, more than WQ_MAX_FDS fds), ENOMEM or EMFILE;
 * nothing is queued then.
 */
int		 wq_pushv(struct wq *, const struct iovec *iov, int iovcnt,
		     const int *fds, size_t nfds);
int		 wq_push(struct wq *, const void *bytes, size_t len,
		     const int *fds, size_t nfds);
/*
 * Write what the socket takes (sendmsg with MSG_NOSIGNAL, EINTR retried).
 * A message's dups are closed as soon as its first byte is out: the peer has
 * its copies. After WQ_ERROR the queue keeps what was not written; free it.
 */
enum wq_status	 wq_flush(struct wq *, int sockfd);
/* Bytes queued and not yet written. */
size_t		 wq_pending(const struct wq *);
/* Frees every message and closes the dups not sent. NULL is fine. */
void		 wq_free(struct wq *);

#endif
