/*
 * A QMP client on the event loop: reads QEMU's greeting, negotiates
 * capabilities, then sends commands (with a descriptor when getfd needs one,
 * through common/wq.c), matches replies to them by id and hands events to the
 * owner. A peer that sends garbage or an oversized line gets the connection
 * closed with EPROTO.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common.h"
#include "worker.h"
#include "wq.h"

/* QEMU sends one JSON message per line; anything longer is not QEMU. */
#define QMP_MESSAGE_MAX	(1024 * 1024)
#define QMP_READ_SIZE	65536
#define QMP_JSON_DEPTH	64

#define log_qmp(q, level, ...)	log_scoped(level, "qmp", (q)->name, __VA_ARGS__)

struct qmp_cmd {
	TAILQ_ENTRY(qmp_cmd) entry;
	uint64_t	 id;
	char		*buf;		/* the command's JSON, no newline */
	size_t		 len;
	int		 fd;		/* our dup until queued, or -1 */
	int		 has_fd;	/* sent with a descriptor */
	qmp_reply_cb	 cb;
	void		*arg;
};
TAILQ_HEAD(qmp_cmds, qmp_cmd);

struct qmp {
	int			 fd;
	char			 name[32];
	struct event		*read_ev;
	struct event		*write_ev;
	struct qmp_callbacks	 cbs;
	void			*arg;

	char			*in;
	size_t			 in_len;
	size_t			 in_cap;
	size_t			 in_scanned;	/* no '\n' before this */

	struct qmp_cmds		 out;		/* held back, not queued yet */
	struct qmp_cmds		 waiting;	/* queued, awaiting reply */
	struct wq		*wq;		/* bytes on their way */
	uint64_t		 next_id;
	int			 fds_in_flight;
	int			 greeted;
	int			 ready;
	int			 ready_told;
	int			 closed;
	int			*alive;	/* cleared by qmp_free in a callback */
};

static void	qmp_read_cb(evutil_socket_t, short, void *);
static void	qmp_write_cb(evutil_socket_t, short, void *);
static void	qmp_close(struct qmp *, int);

/*
 * Takes the connected socket and owns it from now on: qmp_free closes it.
 * Nothing is sent before QEMU's greeting; commands issued earlier wait until
 * capabilities are negotiated.
 */
struct qmp *
qmp_new(struct event_base *base, int fd, const struct qmp_callbacks *cbs,
    void *arg)
{
	struct qmp	*q;

	if (ev_set_nonblock(fd) == -1)
		return NULL;
	if ((q = calloc(1, sizeof *q)) == NULL)
		return NULL;
	q->fd = fd;
	snprintf(q->name, sizeof q->name, "fd%d", fd);
	q->cbs = *cbs;
	q->arg = arg;
	q->next_id = 1;
	TAILQ_INIT(&q->out);
	TAILQ_INIT(&q->waiting);
	q->wq = wq_new();
	q->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, qmp_read_cb, q);
	q->write_ev = event_new(base, fd, EV_WRITE, qmp_write_cb, q);
	if (q->wq == NULL || q->read_ev == NULL || q->write_ev == NULL ||
	    event_add(q->read_ev, NULL) == -1) {
		q->fd = -1;	/* the caller still owns it on failure */
		qmp_free(q);
		return NULL;
	}
	return q;
}

static void
qmp_cmd_free(struct qmp_cmd *c)
{
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
	free(c);
}

/* Frees everything and closes the socket. No callbacks run. */
void
qmp_free(struct qmp *q)
{
	struct qmp_cmd	*c;

	if (q == NULL)
		return;
	if (q->alive != NULL)
		*q->alive = 0;
	if (q->read_ev != NULL)
		event_free(q->read_ev);
	if (q->write_ev != NULL)
		event_free(q->write_ev);
	while ((c = TAILQ_FIRST(&q->out)) != NULL) {
		TAILQ_REMOVE(&q->out, c, entry);
		qmp_cmd_free(c);
	}
	while ((c = TAILQ_FIRST(&q->waiting)) != NULL) {
		TAILQ_REMOVE(&q->waiting, c, entry);
		qmp_cmd_free(c);
	}
	wq_free(q->wq);
	free(q->in);
	if (q->fd != -1)
		close(q->fd);
	free(q);
}

static struct qmp_cmd *
qmp_cmd_new(struct qmp *q, const char *execute, struct json_object *arguments,
    int fd, qmp_reply_cb cb, void *arg)
{
	struct json_object	*msg;
	struct qmp_cmd		*c;
	const char		*text;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		json_object_put(arguments);
		return NULL;
	}
	c->fd = -1;
	c->id = q->next_id++;
	c->cb = cb;
	c->arg = arg;
	if ((msg = json_object_new_object()) == NULL) {
		json_object_put(arguments);
		goto fail;
	}
	json_object_object_add(msg, "execute",
	    json_object_new_string(execute));
	if (arguments != NULL)
		json_object_object_add(msg, "arguments", arguments);
	json_object_object_add(msg, "id", json_object_new_int64((int64_t)c->id));
	/*
	 * No newline after the object: QEMU 7.2 reads QMP one byte at a time
	 * and acts at the closing brace, so a newline after "quit" would still
	 * be unread when it exits, and its socket would reset ours.
	 */
	text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	if (text == NULL || (c->buf = strdup(text)) == NULL) {
		json_object_put(msg);
		errno = ENOMEM;
		goto fail;
	}
	json_object_put(msg);
	c->len = strlen(c->buf);
	if (fd >= 0) {
		if ((c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
			goto fail;
		c->has_fd = 1;
	}
	return c;
fail:
	qmp_cmd_free(c);
	return NULL;
}

/*
 * Hand a command's bytes (and its fd) to the write queue; from then on it
 * waits for its reply. The capabilities go before anything else, the other
 * commands in order once QEMU may take them (qmp_pump).
 */
static int
qmp_cmd_queue(struct qmp *q, struct qmp_cmd *c)
{
	if (wq_push(q->wq, c->buf, c->len, &c->fd, c->fd != -1 ? 1 : 0) == -1)
		return -1;
	log_qmp(q, LOG_LEVEL_DEBUG, "-> %s%s", c->buf,
	    c->has_fd ? " (with fd)" : "");
	if (c->fd != -1) {
		close(c->fd);	/* the queue has its own dup */
		c->fd = -1;
		q->fds_in_flight++;
	}
	TAILQ_INSERT_TAIL(&q->waiting, c, entry);
	return 0;
}

/*
 * Queue a command. The caller keeps its fd: a dup of it goes out in the same
 * sendmsg as the command's first byte. QEMU 7.2 keeps only the descriptors
 * of its latest read, so a command carrying one is held back (with every
 * command after it) until every earlier such command has its reply.
 */
int
qmp_command(struct qmp *q, const char *execute, struct json_object *arguments,
    int fd, qmp_reply_cb cb, void *arg)
{
	struct qmp_cmd	*c;

	if (q->closed) {
		json_object_put(arguments);
		errno = EPIPE;
		return -1;
	}
	if ((c = qmp_cmd_new(q, execute, arguments, fd, cb, arg)) == NULL)
		return -1;
	if (q->ready && event_add(q->write_ev, NULL) == -1) {
		/* Not queued: -1 means the reply never comes. */
		qmp_cmd_free(c);
		return -1;
	}
	TAILQ_INSERT_TAIL(&q->out, c, entry);
	return 0;
}

static void
qmp_capabilities_cb(struct qmp *q, struct json_object *result,
    const char *error_class, const char *error_desc, void *arg)
{
	if (result == NULL) {
		if (q->closed)
			return;		/* qmp_close tells the owner */
		log_qmp(q, LOG_LEVEL_WARN, "qmp_capabilities failed: %s: %s",
		    error_class, error_desc);
		qmp_close(q, EPROTO);
		return;
	}
	q->ready = 1;
	q->ready_told = 1;
	if (!TAILQ_EMPTY(&q->out))
		event_add(q->write_ev, NULL);
	if (q->cbs.ready != NULL)
		q->cbs.ready(q, 1, q->arg);
}

/* Call cb with "Disconnected"; return 0 if the callback freed q. */
static int
qmp_cmd_disconnect(struct qmp *q, struct qmp_cmd *c, int *alive)
{
	if (c->cb != NULL)
		c->cb(q, NULL, "Disconnected", "QMP connection closed", c->arg);
	qmp_cmd_free(c);
	return *alive;
}

/*
 * Stop all I/O and tell the owner once: ready(0) if it never became ready,
 * "Disconnected" to every command not answered, then closed(err). Any of
 * those callbacks may free q.
 */
static void
qmp_close(struct qmp *q, int err)
{
	struct qmp_cmd	*c;
	int		 alive = 1, *outer = q->alive;

	if (q->closed)
		return;
	q->closed = 1;
	event_del(q->read_ev);
	event_del(q->write_ev);
	if (err != 0)
		log_qmp(q, LOG_LEVEL_WARN, "closed: %s", strerror(err));
	else
		log_qmp(q, LOG_LEVEL_DEBUG, "closed by peer");
	q->alive = &alive;
	if (!q->ready_told) {
		q->ready_told = 1;
		if (q->cbs.ready != NULL)
			q->cbs.ready(q, 0, q->arg);
		if (!alive)
			goto freed;
	}
	for (;;) {
		if ((c = TAILQ_FIRST(&q->waiting)) != NULL)
			TAILQ_REMOVE(&q->waiting, c, entry);
		else if ((c = TAILQ_FIRST(&q->out)) != NULL)
			TAILQ_REMOVE(&q->out, c, entry);
		else
			break;
		if (!qmp_cmd_disconnect(q, c, &alive))
			goto freed;
	}
	if (q->cbs.closed != NULL)
		q->cbs.closed(q, err, q->arg);
	if (!alive)
		goto freed;
	q->alive = outer;
	return;
freed:
	if (outer != NULL)
		*outer = 0;
}

static void
qmp_handle_reply(struct qmp *q, struct json_object *msg)
{
	struct json_object	*id, *ret, *error, *v;
	struct qmp_cmd		*c;
	const char		*class = "GenericError", *desc = "";

	if (!json_object_object_get_ex(msg, "id", &id) ||
	    !json_object_is_type(id, json_type_int)) {
		log_qmp(q, LOG_LEVEL_WARN, "reply without our id: %s",
		    json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
		return;
	}
	TAILQ_FOREACH(c, &q->waiting, entry) {
		if ((int64_t)c->id == json_object_get_int64(id))
			break;
	}
	if (c == NULL) {
		log_qmp(q, LOG_LEVEL_WARN, "reply to unknown id %lld",
		    (long long)json_object_get_int64(id));
		return;
	}
	TAILQ_REMOVE(&q->waiting, c, entry);
	if (c->has_fd && --q->fds_in_flight == 0 && !TAILQ_EMPTY(&q->out))
		event_add(q->write_ev, NULL);
	if (json_object_object_get_ex(msg, "return", &ret)) {
		if (c->cb != NULL)
			c->cb(q, ret, NULL, NULL, c->arg);
	} else {
		json_object_object_get_ex(msg, "error", &error);
		if (json_object_object_get_ex(error, "class", &v) &&
		    json_object_is_type(v, json_type_string))
			class = json_object_get_string(v);
		if (json_object_object_get_ex(error, "desc", &v) &&
		    json_object_is_type(v, json_type_string))
			desc = json_object_get_string(v);
		if (c->cb != NULL)
			c->cb(q, NULL, class, desc, c->arg);
	}
	qmp_cmd_free(c);
}

/* One complete message; callbacks may free q or close it. */
static void
qmp_handle(struct qmp *q, struct json_object *msg)
{
	struct json_object	*v, *data;
	struct qmp_cmd		*c;

	if (!q->greeted) {
		if (!json_object_object_get_ex(msg, "QMP", &v)) {
			log_qmp(q, LOG_LEVEL_WARN, "no QMP greeting");
			qmp_close(q, EPROTO);
			return;
		}
		q->greeted = 1;
		c = qmp_cmd_new(q, "qmp_capabilities", NULL, -1,
		    qmp_capabilities_cb, NULL);
		if (c == NULL) {
			qmp_close(q, errno);
			return;
		}
		if (qmp_cmd_queue(q, c) == -1) {
			qmp_cmd_free(c);
			qmp_close(q, errno);
			return;
		}
		event_add(q->write_ev, NULL);
		return;
	}
	if (json_object_object_get_ex(msg, "event", &v) &&
	    json_object_is_type(v, json_type_string)) {
		if (!json_object_object_get_ex(msg, "data", &data))
			data = NULL;
		if (q->cbs.event != NULL)
			q->cbs.event(q, json_object_get_string(v), data, q->arg);
		return;
	}
	if (json_object_object_get_ex(msg, "return", NULL) ||
	    json_object_object_get_ex(msg, "error", NULL)) {
		qmp_handle_reply(q, msg);
		return;
	}
	log_qmp(q, LOG_LEVEL_WARN, "ignoring unknown message: %.200s",
	    json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
}

/* Parse one line; -1 if it is not a JSON object. */
static int
qmp_parse_line(struct qmp *q, char *line, size_t len,
    struct json_object **msgp)
{
	struct json_tokener	*tok;
	struct json_object	*msg;
	size_t			 end;

	*msgp = NULL;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
	    line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;	/* blank line */
	if ((tok = json_tokener_new_ex(QMP_JSON_DEPTH)) == NULL)
		return -1;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	msg = json_tokener_parse_ex(tok, line, (int)len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (msg == NULL || end != len ||
	    !json_object_is_type(msg, json_type_object)) {
		json_object_put(msg);
		log_qmp(q, LOG_LEVEL_WARN, "unparsable line: %.100s", line);
		return -1;
	}
	*msgp = msg;
	return 0;
}

/* Deliver every complete line in the buffer; 0 if q was freed or closed. */
static int
qmp_drain(struct qmp *q)
{
	struct json_object	*msg;
	char			*nl, *line;
	size_t			 start = 0, len;
	int			 alive = 1, *outer = q->alive;

	q->alive = &alive;
	while (alive && !q->closed && start < q->in_len) {
		nl = memchr(q->in + q->in_scanned, '\n',
		    q->in_len - q->in_scanned);
		if (nl == NULL) {
			q->in_scanned = q->in_len;
			break;
		}
		line = q->in + start;
		len = (size_t)(nl - line);
		*nl = '\0';
		if (len > QMP_MESSAGE_MAX ||
		    qmp_parse_line(q, line, len, &msg) == -1) {
			qmp_close(q, EPROTO);
			break;
		}
		start += len + 1;
		q->in_scanned = start;
		if (msg == NULL)
			continue;
		log_qmp(q, LOG_LEVEL_DEBUG, "<- %s", line);
		qmp_handle(q, msg);
		json_object_put(msg);
	}
	if (!alive) {
		if (outer != NULL)
			*outer = 0;
		return 0;
	}
	q->alive = outer;
	if (q->closed)
		return 0;
	memmove(q->in, q->in + start, q->in_len - start);
	q->in_len -= start;
	q->in_scanned -= start;
	if (q->in_len > QMP_MESSAGE_MAX) {
		log_qmp(q, LOG_LEVEL_WARN, "line longer than %d bytes",
		    QMP_MESSAGE_MAX);
		qmp_close(q, EPROTO);
		return 0;
	}
	return 1;
}

static void
qmp_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct qmp	*q = arg;
	size_t		 cap;
	ssize_t		 n;
	char		*in;

	if (q->in_cap - q->in_len < QMP_READ_SIZE &&
	    q->in_cap < QMP_MESSAGE_MAX + 1) {
		cap = q->in_len + QMP_READ_SIZE;
		if (cap > QMP_MESSAGE_MAX + 1)
			cap = QMP_MESSAGE_MAX + 1;
		if ((in = realloc(q->in, cap)) == NULL) {
			qmp_close(q, ENOMEM);
			return;
		}
		q->in = in;
		q->in_cap = cap;
	}
	n = read(fd, q->in + q->in_len, q->in_cap - q->in_len);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n == -1) {
		qmp_close(q, errno);
		return;
	}
	if (n == 0) {
		/* A partial last line is a broken peer, not a clean EOF. */
		while (q->in_len > 0 && (q->in[q->in_len - 1] == '\r' ||
		    q->in[q->in_len - 1] == ' '))
			q->in_len--;
		qmp_close(q, q->in_len > 0 ? EPROTO : 0);
		return;
	}
	q->in_len += (size_t)n;
	qmp_drain(q);
}

/* Let held-back commands go to the write queue while QEMU can take them. */
static int
qmp_pump(struct qmp *q)
{
	struct qmp_cmd	*c;

	while (q->ready && (c = TAILQ_FIRST(&q->out)) != NULL) {
		if (c->has_fd && q->fds_in_flight > 0)
			break;		/* qmp_handle_reply resumes us */
		TAILQ_REMOVE(&q->out, c, entry);
		if (qmp_cmd_queue(q, c) == -1) {
			TAILQ_INSERT_HEAD(&q->out, c, entry);
			return -1;
		}
	}
	return 0;
}

static void
qmp_write_cb(evutil_socket_t fd, short events, void *arg)
{
	struct qmp	*q = arg;

	if (qmp_pump(q) == -1) {
		qmp_close(q, errno);
		return;
	}
	switch (wq_flush(q->wq, fd)) {
	case WQ_ERROR:
		qmp_close(q, errno);
		break;
	case WQ_AGAIN:
		event_add(q->write_ev, NULL);
		break;
	case WQ_DONE:
		break;
	}
}
