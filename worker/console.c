/*
 * The VM's consoles for havenctl (issue 16): QEMU's serial port is one end
 * of a socket pair whose other end the worker holds. QEMU writes the serial
 * log itself (the chardev's logfile, on the fd set havend opened), so the
 * worker only drains the port, always, and copies it to the one attached
 * session (up to 1 MiB behind, then it drops what the session misses);
 * what the session types goes to QEMU. A second attach takes the
 * console over: the first session is told who took it and closed. VNC
 * viewers are handed to QEMU one socket at a time (getfd, add_client).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "worker.h"
#include "worker_int.h"

#define CONSOLE_BUF	4096
/* What a session may fall behind the guest, at most; beyond it the guest's
 * output is dropped for that session (the serial log keeps it), so that a
 * stalled session never stalls the guest. */
#define CONSOLE_OUT_MAX	(1024 * 1024)
#define CONSOLE_CLOSED	"\r\n[haven: the VM's serial port closed]\r\n"

struct console {
	struct worker	*w;
	int		 qemu_fd;	/* the worker's end of the serial port */
	struct event	*qemu_read;
	struct event	*qemu_write;	/* armed while typed bytes wait */
	int		 user_fd;	/* the attached session, -1: none */
	struct event	*user_read;
	struct event	*user_write;	/* armed while output waits */
	uint8_t		 typed[CONSOLE_BUF];	/* session to QEMU, unsent */
	size_t		 ntyped;
	uint8_t		*out;		/* QEMU to the session, unsent */
	size_t		 nout;
	uint64_t	 dropped;	/* bytes a slow session missed */
	char		 who[128];
};

static void
console_nonblock(int fd)
{
	int	flags;

	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Best effort, never blocking: a session that does not read loses text
 * (the serial log has all of it). */
static void
console_say(int fd, const void *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf = (const uint8_t *)buf + n;
		len -= (size_t)n;
	}
}

static void
console_detach(struct console *c, const char *why)
{
	if (c->user_fd == -1)
		return;
	worker_log(c->w, LOG_LEVEL_INFO, "serial console: %s detached (%s)",
	    c->who, why);
	event_free(c->user_read);
	event_free(c->user_write);
	c->user_read = c->user_write = NULL;
	close(c->user_fd);
	c->user_fd = -1;
	c->ntyped = 0;
	c->nout = 0;
	c->dropped = 0;
	if (c->qemu_write != NULL)
		event_del(c->qemu_write);
}

/* Typed bytes to QEMU; reading the session waits while some are unsent. */
static void
console_flush(struct console *c)
{
	ssize_t	n;

	while (c->ntyped > 0) {
		n = send(c->qemu_fd, c->typed, c->ntyped, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->ntyped = 0;	/* QEMU is going: its EOF follows */
			break;
		}
		memmove(c->typed, c->typed + n, c->ntyped - (size_t)n);
		c->ntyped -= (size_t)n;
	}
	if (c->ntyped > 0) {
		event_add(c->qemu_write, NULL);
		if (c->user_read != NULL)
			event_del(c->user_read);
	} else if (c->user_read != NULL)
		event_add(c->user_read, NULL);
}

static void
console_qemu_write_cb(evutil_socket_t fd, short events, void *arg)
{
	console_flush(arg);
}

static void
console_user_cb(evutil_socket_t fd, short events, void *arg)
{
	struct console	*c = arg;
	ssize_t		 n;

	n = read(fd, c->typed + c->ntyped, sizeof c->typed - c->ntyped);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		console_detach(c, n == 0 ? "it hung up" : strerror(errno));
		return;
	}
	c->ntyped += (size_t)n;
	console_flush(c);
}

/* Output to the session, as much as its socket takes; the rest waits in
 * out, up to CONSOLE_OUT_MAX. */
static void
console_send(struct console *c, const uint8_t *buf, size_t len)
{
	char	note[128];
	ssize_t	n;
	int	k;

	if (c->nout == 0 && c->dropped > 0) {
		k = snprintf(note, sizeof note, "\r\n[haven: %llu bytes of "
		    "output dropped: this session read too slowly; the serial "
		    "log has them]\r\n", (unsigned long long)c->dropped);
		c->dropped = 0;
		console_send(c, (const uint8_t *)note, (size_t)k);
	}
	while (c->nout == 0 && len > 0) {
		n = send(c->user_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return;		/* gone: its read sees the end */
		buf += n;
		len -= (size_t)n;
	}
	if (len == 0)
		return;
	if (c->nout + len > CONSOLE_OUT_MAX) {
		c->dropped += len;
		return;
	}
	if (c->out == NULL && (c->out = malloc(CONSOLE_OUT_MAX)) == NULL)
		abort();
	memcpy(c->out + c->nout, buf, len);
	c->nout += len;
	event_add(c->user_write, NULL);
}

static void
console_user_write_cb(evutil_socket_t fd, short events, void *arg)
{
	struct console	*c = arg;
	ssize_t		 n;

	n = send(fd, c->out, c->nout, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0) {
		memmove(c->out, c->out + n, c->nout - (size_t)n);
		c->nout -= (size_t)n;
	} else if (n == -1 && errno != EINTR && errno != EAGAIN)
		c->nout = 0;		/* gone: its read sees the end */
	if (c->nout > 0)
		event_add(c->user_write, NULL);
	else if (c->dropped > 0)
		console_send(c, (const uint8_t *)"", 0);
}

/* What the guest wrote: drained whether or not anyone watches, so that
 * the guest never waits for a session; the log is QEMU's. */
static void
console_qemu_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct console	*c = arg;
	uint8_t		 buf[CONSOLE_BUF];
	ssize_t		 n;

	n = read(fd, buf, sizeof buf);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* QEMU closed its end: it is exiting (SIGCHLD says how). */
		if (c->user_fd != -1)
			console_say(c->user_fd, CONSOLE_CLOSED,
			    sizeof CONSOLE_CLOSED - 1);
		console_detach(c, "QEMU closed the port");
		event_del(c->qemu_read);
		return;
	}
	if (c->user_fd != -1)
		console_send(c, buf, (size_t)n);
}

/*
 * Before QEMU's spawn (socketpair is not in the seccomp allowlist): the
 * pair, the worker's end kept and watched. Returns QEMU's end, which the
 * caller closes once QEMU has it, or -1 with errno.
 */
int
console_socket(struct worker *w)
{
	struct console	*c;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((c = calloc(1, sizeof *c)) == NULL)
		abort();
	c->w = w;
	c->qemu_fd = sv[0];
	c->user_fd = -1;
	console_nonblock(c->qemu_fd);
	c->qemu_read = event_new(w->base, c->qemu_fd, EV_READ | EV_PERSIST,
	    console_qemu_read_cb, c);
	c->qemu_write = event_new(w->base, c->qemu_fd, EV_WRITE,
	    console_qemu_write_cb, c);
	if (c->qemu_read == NULL || c->qemu_write == NULL)
		abort();
	event_add(c->qemu_read, NULL);
	console_free(w);
	w->console = c;
	return sv[1];
}

void
console_free(struct worker *w)
{
	struct console	*c = w->console;

	if (c == NULL)
		return;
	console_detach(c, "the worker exits");
	event_free(c->qemu_read);
	event_free(c->qemu_write);
	close(c->qemu_fd);
	free(c->out);
	free(c);
	w->console = NULL;
}

static void
console_vnc_cb(struct qmp *q, struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct worker	*w = arg;

	if (result == NULL)
		worker_log(w, LOG_LEVEL_WARN, "VNC viewer refused by QEMU: %s: "
		    "%s", class != NULL ? class : "?", desc != NULL ? desc : "");
}

/* A viewer's socket to QEMU's VNC server, which has no listener. */
static void
console_vnc(struct worker *w, int fd, const char *who)
{
	struct json_object	*args;

	if (w->qmp == NULL) {
		worker_log(w, LOG_LEVEL_INFO, "VNC for %s: QEMU does not "
		    "answer yet", who);
		return;
	}
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("vnc"));
	qmp_command(w->qmp, "getfd", args, fd, console_vnc_cb, w);
	args = json_object_new_object();
	json_object_object_add(args, "protocol", json_object_new_string("vnc"));
	json_object_object_add(args, "fdname", json_object_new_string("vnc"));
	json_object_object_add(args, "skipauth", json_object_new_boolean(0));
	qmp_command(w->qmp, "add_client", args, -1, console_vnc_cb, w);
	worker_log(w, LOG_LEVEL_INFO, "VNC viewer for %s", who);
}

/* FRAME_WORKER_CONSOLE: a session's socket from havend. Whatever cannot
 * be served is closed, which the session sees as the end. */
void
console_attach(struct worker *w, struct frame *f)
{
	Haven__ConsoleAttach	*m;
	struct console		*c = w->console;
	char			 note[256];
	const char		*who;
	int			 fd, n;

	if (f->nfds != 1 || (m = (Haven__ConsoleAttach *)message_decode(f)) ==
	    NULL) {
		worker_log(w, LOG_LEVEL_WARN, "a console frame without its "
		    "socket, or that does not decode");
		return;
	}
	fd = f->fds[0];
	who = m->who != NULL && *m->who != '\0' ? m->who : "someone";
	if (m->kind == HAVEN__CONSOLE_KIND__CONSOLE_KIND_VNC) {
		console_vnc(w, fd, who);
		goto done;
	}
	if (c == NULL || !event_pending(c->qemu_read, EV_READ, NULL)) {
		worker_log(w, LOG_LEVEL_INFO, "serial console for %s: QEMU "
		    "does not run", who);
		goto done;
	}
	if (c->user_fd != -1) {
		n = snprintf(note, sizeof note, "\r\n[haven: this console was "
		    "taken over by %s]\r\n", who);
		console_say(c->user_fd, note, (size_t)n);
		console_detach(c, "taken over");
	}
	f->fds[0] = -1;
	c->user_fd = fd;
	snprintf(c->who, sizeof c->who, "%s", who);
	console_nonblock(fd);
	c->user_read = event_new(w->base, fd, EV_READ | EV_PERSIST,
	    console_user_cb, c);
	c->user_write = event_new(w->base, fd, EV_WRITE, console_user_write_cb,
	    c);
	if (c->user_read == NULL || c->user_write == NULL)
		abort();
	event_add(c->user_read, NULL);
	worker_log(w, LOG_LEVEL_INFO, "serial console: %s attached", who);
done:
	message_free(&m->base);
}
