/*
 * The NBD server (fixed newstyle, simple replies) that gives QEMU its disk:
 * every client is a small state machine on the caller's event loop, reading
 * the handshake, options and requests from a non-blocking socket and
 * answering from a block device, out of order, matched by cookie.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common.h"
#include "storage.h"

/* Wire constants (the NBD protocol document). */
#define NBD_MAGIC		0x4e42444d41474943ULL	/* "NBDMAGIC" */
#define NBD_OPTS_MAGIC		0x49484156454F5054ULL	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC	0x25609513U
#define NBD_REPLY_MAGIC		0x67446698U

#define NBD_FLAG_FIXED_NEWSTYLE	0x1
#define NBD_FLAG_NO_ZEROES	0x2

#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7

#define NBD_REP_ACK		1
#define NBD_REP_SERVER		2
#define NBD_REP_INFO		3
#define NBD_REP_ERR_UNSUP	0x80000001U
#define NBD_REP_ERR_INVALID	0x80000003U
#define NBD_REP_ERR_UNKNOWN	0x80000006U

#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_BLOCK_SIZE	3

#define NBD_TFLAG_HAS_FLAGS	0x1
#define NBD_TFLAG_READ_ONLY	0x2
#define NBD_TFLAG_SEND_FLUSH	0x4
#define NBD_TFLAG_SEND_FUA	0x8
#define NBD_TFLAG_SEND_TRIM	0x20
#define NBD_TFLAG_SEND_WRITE_ZEROES 0x40
#define NBD_TFLAG_CAN_MULTI_CONN 0x100

#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_WRITE_ZEROES	6

#define NBD_CMD_FLAG_FUA	0x1
#define NBD_CMD_FLAG_NO_HOLE	0x2

#define NBD_EPERM		1
#define NBD_EIO			5
#define NBD_ENOMEM		12
#define NBD_EINVAL		22
#define NBD_ENOSPC		28
#define NBD_EOVERFLOW		75
#define NBD_ENOTSUP		95
#define NBD_ESHUTDOWN		108

/* Our limits. */
#define NBD_MIN_BLOCK		512
#define NBD_PREFERRED_BLOCK	4096
#define NBD_MAX_PAYLOAD		(32U << 20)	/* QEMU's NBD_MAX_BUFFER_SIZE */
#define NBD_MAX_OPTION		4096		/* longer options: drop */
#define NBD_MAX_NAME		255
#define NBD_CLIENT_REQUESTS	64		/* in flight per client */
#define NBD_CLIENT_BYTES	(64U << 20)	/* buffers + unsent output */
#define NBD_READ_CHUNK		(256U << 10)
#define NBD_DIRECT_MIN		(64U << 10)	/* payloads read in place */
#define NBD_SNDBUF		(4 << 20)	/* replies in flight to a client */

#define NBD_OPTION_HEADER	16
#define NBD_REQUEST_HEADER	28

struct nbd_export {
	TAILQ_ENTRY(nbd_export) entry;
	char			 name[NBD_MAX_NAME + 1];
	struct blockdev		*dev;
	int			 read_only;
	uint32_t		 min_block;
};

enum nbd_state {
	NBD_STATE_CLIENT_FLAGS,		/* u32 client flags */
	NBD_STATE_OPTION,		/* 16-byte option header */
	NBD_STATE_OPTION_DATA,		/* its data */
	NBD_STATE_REQUEST,		/* 28-byte request header */
	NBD_STATE_WRITE_DATA,		/* a WRITE's payload */
	NBD_STATE_DISCARD,		/* payload of a refused WRITE */
	NBD_STATE_CLOSING,		/* ABORT or DISC: reply, drain, close */
};

struct nbd_request {
	TAILQ_ENTRY(nbd_request) entry;	/* client's writes or flushes */
	TAILQ_ENTRY(nbd_request) live;	/* client's inflight, while there */
	uint64_t		 submitted_us;	/* now_us(); 0: not submitted */
	struct nbd_client	*client;
	uint64_t		 cookie;
	uint64_t		 offset;
	uint32_t		 len;
	uint16_t		 type;
	uint16_t		 flags;
	uint64_t		 seq;	/* write: its number; flush: waits for */
	uint8_t			*buf;
};
TAILQ_HEAD(nbd_requests, nbd_request);

struct nbd_client {
	TAILQ_ENTRY(nbd_client)	 entry;
	struct nbd_server	*server;	/* NULL once detached */
	struct nbd_export	*export;	/* set in transmission */
	int			 fd;		/* -1 once closed */
	unsigned		 id;
	struct event		*read_event;
	struct event		*write_event;
	struct evbuffer		*in;
	struct evbuffer		*out;
	enum nbd_state		 state;
	int			 no_zeroes;
	uint32_t		 option;	/* option being read */
	uint32_t		 option_len;
	struct nbd_request	*pending;	/* WRITE waiting for data */
	uint32_t		 got;		/* of its payload, in its buffer */
	uint64_t		 discard_left;
	uint64_t		 discard_cookie;
	uint32_t		 discard_error;
	unsigned		 requests;	/* accepted, not yet replied */
	size_t			 bytes;		/* request buffers held */
	uint64_t		 write_seq;	/* last write submitted */
	struct nbd_requests	 writes;	/* submitted, in order */
	struct nbd_requests	 flushes;	/* waiting for writes */
	struct nbd_requests	 inflight;	/* submitted, oldest first */
};

struct nbd_server {
	struct event_base	*base;
	int			 fd;		/* listening, or -1 */
	struct event		*accept_event;
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned		 next_id;
	TAILQ_HEAD(, nbd_export) exports;
	TAILQ_HEAD(, nbd_client) clients;
};

#define log_nbd(level, c, ...)						\
	log_scoped(level, "nbd", (c)->export != NULL ?			\
	    (c)->export->name : "-", __VA_ARGS__)

static void	nbd_client_pump(struct nbd_client *);
static void	nbd_client_drop(struct nbd_client *);

/* A block device error as the NBD error the client sees. */
static uint32_t
nbd_error(int error)
{
	switch (error) {
	case 0:
		return 0;
	case -EPERM:
		return NBD_EPERM;
	case -ENOMEM:
		return NBD_ENOMEM;
	case -EINVAL:
		return NBD_EINVAL;
	case -ENOSPC:
		return NBD_ENOSPC;
	case -EOVERFLOW:
		return NBD_EOVERFLOW;
	case -ENOTSUP:
		return NBD_ENOTSUP;
	case -ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		/* Fenced, timed out, SCSI errors: the guest sees an I/O
		 * error (and QEMU with werror=stop pauses the VM). */
		return NBD_EIO;
	}
}

static uint16_t
nbd_export_flags(const struct nbd_export *e)
{
	/* Every client of an export shares its one block device, and a
	 * flush covers every write completed on any connection (the VHD's
	 * commit and SYNCHRONIZE CACHE are the device's): multi-conn is
	 * safe, and libnbd clients (nbdcopy) then open several. */
	uint16_t	flags = NBD_TFLAG_HAS_FLAGS | NBD_TFLAG_SEND_FLUSH |
	    NBD_TFLAG_SEND_FUA | NBD_TFLAG_SEND_TRIM |
	    NBD_TFLAG_SEND_WRITE_ZEROES | NBD_TFLAG_CAN_MULTI_CONN;

	if (e->read_only)
		flags |= NBD_TFLAG_READ_ONLY;
	return flags;
}

/* An empty name picks the first export (the server's default). */
static struct nbd_export *
nbd_export_find(struct nbd_server *s, const char *name, size_t len)
{
	struct nbd_export	*e;

	if (s == NULL)
		return NULL;
	if (len == 0)
		return TAILQ_FIRST(&s->exports);
	TAILQ_FOREACH(e, &s->exports, entry) {
		if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
			return e;
	}
	return NULL;
}

/* Bytes the current state needs before it can take a step. */
static size_t
nbd_client_need(const struct nbd_client *c)
{
	switch (c->state) {
	case NBD_STATE_CLIENT_FLAGS:
		return 4;
	case NBD_STATE_OPTION:
		return NBD_OPTION_HEADER;
	case NBD_STATE_OPTION_DATA:
		return c->option_len;
	case NBD_STATE_REQUEST:
		return NBD_REQUEST_HEADER;
	case NBD_STATE_WRITE_DATA:
		return c->pending->len - c->got;
	case NBD_STATE_DISCARD:
		return 1;
	default:
		return 0;
	}
}

/* Under the per-client bounds: may accept another request. */
static int
nbd_client_may_take(const struct nbd_client *c)
{
	return c->requests < NBD_CLIENT_REQUESTS &&
	    c->bytes + evbuffer_get_length(c->out) < NBD_CLIENT_BYTES;
}

/* May read and take the next step: a request's payload always (it was
 * accepted already), anything else only under the bounds. */
static int
nbd_client_may_read(const struct nbd_client *c)
{
	if (c->state == NBD_STATE_CLOSING)
		return 0;
	if (c->state == NBD_STATE_WRITE_DATA || c->state == NBD_STATE_DISCARD)
		return 1;
	return nbd_client_may_take(c);
}

static void
nbd_opt_reply(struct nbd_client *c, uint32_t type, const void *data,
    uint32_t len)
{
	uint8_t	h[20];

	be64_put(h, NBD_REP_MAGIC);
	be32_put(h + 8, c->option);
	be32_put(h + 12, type);
	be32_put(h + 16, len);
	evbuffer_add(c->out, h, sizeof h);
	if (len > 0)
		evbuffer_add(c->out, data, len);
}

static void
nbd_opt_error(struct nbd_client *c, uint32_t type, const char *message)
{
	nbd_opt_reply(c, type, message, (uint32_t)strlen(message));
}

static void
nbd_opt_list(struct nbd_client *c)
{
	struct nbd_export	*e;
	uint8_t			 buf[4 + NBD_MAX_NAME];
	size_t			 len;

	if (c->option_len != 0) {
		nbd_opt_error(c, NBD_REP_ERR_INVALID, "LIST takes no data");
		return;
	}
	TAILQ_FOREACH(e, &c->server->exports, entry) {
		len = strlen(e->name);
		be32_put(buf, (uint32_t)len);
		memcpy(buf + 4, e->name, len);
		nbd_opt_reply(c, NBD_REP_SERVER, buf, (uint32_t)(4 + len));
	}
	nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* INFO and GO: u32 namelen, name, u16 n, u16 info[n]. 1 = go on to
 * transmission. */
static int
nbd_opt_info(struct nbd_client *c, const uint8_t *data)
{
	struct nbd_export	*e;
	uint8_t			 buf[4 + NBD_MAX_NAME];
	uint32_t		 namelen, i, n;
	int			 want_name = 0;

	if (c->option_len < 6 ||
	    (namelen = be32_get(data)) > c->option_len - 6 ||
	    (n = be16_get(data + 4 + namelen)) * 2U !=
	    c->option_len - 6 - namelen) {
		nbd_opt_error(c, NBD_REP_ERR_INVALID, "malformed request");
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (be16_get(data + 6 + namelen + 2 * i) == NBD_INFO_NAME)
			want_name = 1;
	}
	if ((e = nbd_export_find(c->server, (const char *)data + 4,
	    namelen)) == NULL) {
		nbd_opt_error(c, NBD_REP_ERR_UNKNOWN, "no such export");
		return 0;
	}
	/* EXPORT first: QEMU checks BLOCK_SIZE against the size. */
	be16_put(buf, NBD_INFO_EXPORT);
	be64_put(buf + 2, e->dev->size);
	be16_put(buf + 10, nbd_export_flags(e));
	nbd_opt_reply(c, NBD_REP_INFO, buf, 12);
	if (want_name) {
		be16_put(buf, NBD_INFO_NAME);
		memcpy(buf + 2, e->name, strlen(e->name));
		nbd_opt_reply(c, NBD_REP_INFO, buf,
		    (uint32_t)(2 + strlen(e->name)));
	}
	be16_put(buf, NBD_INFO_BLOCK_SIZE);
	be32_put(buf + 2, e->min_block);
	be32_put(buf + 6, e->min_block > NBD_PREFERRED_BLOCK ?
	    e->min_block : NBD_PREFERRED_BLOCK);
	be32_put(buf + 10, NBD_MAX_PAYLOAD);
	nbd_opt_reply(c, NBD_REP_INFO, buf, 14);
	nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
	if (c->option != NBD_OPT_GO)
		return 0;
	c->export = e;
	return 1;
}

static void
nbd_client_start(struct nbd_client *c)
{
	c->state = NBD_STATE_REQUEST;
	log_nbd(LOG_LEVEL_INFO, c, "client %u connected (%s%s)", c->id,
	    c->export->dev->name, c->export->read_only ? ", read-only" : "");
}

/* One option with its data. -1 = drop the client. */
static int
nbd_client_option(struct nbd_client *c)
{
	uint8_t			 data[NBD_MAX_OPTION], reply[8 + 2 + 124];
	struct nbd_export	*e;

	evbuffer_remove(c->in, data, c->option_len);
	c->state = NBD_STATE_OPTION;
	switch (c->option) {
	case NBD_OPT_EXPORT_NAME:
		e = nbd_export_find(c->server, (const char *)data,
		    c->option_len);
		if (e == NULL) {
			/* This option has no way to refuse but hanging up. */
			log_scoped(LOG_LEVEL_WARN, "nbd", "-", "client %u "
			    "asked for an unknown export", c->id);
			return -1;
		}
		memset(reply, 0, sizeof reply);
		be64_put(reply, e->dev->size);
		be16_put(reply + 8, nbd_export_flags(e));
		evbuffer_add(c->out, reply, c->no_zeroes ? 10 : sizeof reply);
		c->export = e;
		nbd_client_start(c);
		break;
	case NBD_OPT_ABORT:
		nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
		c->state = NBD_STATE_CLOSING;
		break;
	case NBD_OPT_LIST:
		nbd_opt_list(c);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		if (nbd_opt_info(c, data) == 1)
			nbd_client_start(c);
		break;
	default:
		/* STRUCTURED_REPLY, META_CONTEXT, STARTTLS and the rest:
		 * QEMU treats any error as "not supported" and carries on. */
		nbd_opt_error(c, NBD_REP_ERR_UNSUP, "not supported");
		break;
	}
	return 0;
}

static void
nbd_client_reply(struct nbd_client *c, uint64_t cookie, uint32_t error)
{
	uint8_t	h[16];

	be32_put(h, NBD_REPLY_MAGIC);
	be32_put(h + 4, error);
	be64_put(h + 8, cookie);
	evbuffer_add(c->out, h, sizeof h);
}

static void
nbd_free_data(const void *data, size_t len, void *arg)
{
	nbd_buf_put((void *)data, len);
}

static void
nbd_request_free(struct nbd_request *r)
{
	struct nbd_client	*c = r->client;

	if (r->submitted_us != 0)
		TAILQ_REMOVE(&c->inflight, r, live);
	c->requests--;
	c->bytes -= r->buf != NULL ? r->len : 0;
	nbd_buf_put(r->buf, r->len);
	free(r);
}

/* The client is gone: free it once nothing refers to it. */
static void
nbd_client_release(struct nbd_client *c)
{
	if (c->fd != -1 || c->requests > 0)
		return;
	if (c->server != NULL)
		TAILQ_REMOVE(&c->server->clients, c, entry);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	free(c->pending);
	free(c);
}

static void
nbd_request_done(int result, void *arg);

static void
nbd_flush_ready(struct nbd_client *c)
{
	struct nbd_request	*f, *oldest;

	/* Flushes wait for the writes submitted before them. */
	while ((f = TAILQ_FIRST(&c->flushes)) != NULL) {
		oldest = TAILQ_FIRST(&c->writes);
		if (oldest != NULL && oldest->seq <= f->seq)
			break;
		TAILQ_REMOVE(&c->flushes, f, entry);
		blockdev_flush(c->export->dev, nbd_request_done, f);
	}
}

/* A block device completion: reply, then let the client go on. */
static void
nbd_request_done(int result, void *arg)
{
	struct nbd_request	*r = arg;
	struct nbd_client	*c = r->client;

	if (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES)
		TAILQ_REMOVE(&c->writes, r, entry);
	if (c->fd == -1) {
		nbd_request_free(r);
		nbd_client_release(c);
		return;
	}
	if (result != 0)
		log_nbd(LOG_LEVEL_WARN, c, "client %u: request type %u at %llu "
		    "failed: %s", c->id, r->type,
		    (unsigned long long)r->offset, storage_strerror(result));
	nbd_client_reply(c, r->cookie, nbd_error(result));
	if (r->type == NBD_CMD_READ && result == 0) {
		/* The data was read in full before the header went out. */
		if (evbuffer_add_reference(c->out, r->buf, r->len,
		    nbd_free_data, NULL) == 0) {
			c->bytes -= r->len;
			r->buf = NULL;
		}
	}
	nbd_request_free(r);
	nbd_flush_ready(c);
	nbd_client_pump(c);
}

/* The status a request gets before it reaches the device; 0 = valid. */
static uint32_t
nbd_request_check(const struct nbd_export *e, uint16_t type, uint16_t flags,
    uint64_t offset, uint32_t len)
{
	uint16_t	allowed = NBD_CMD_FLAG_FUA;
	int		writes = type != NBD_CMD_READ && type != NBD_CMD_FLUSH;

	if (type == NBD_CMD_WRITE_ZEROES)
		allowed |= NBD_CMD_FLAG_NO_HOLE;
	if ((flags & ~allowed) != 0)
		return NBD_EINVAL;
	if (writes && e->read_only)
		return NBD_EPERM;
	if (type == NBD_CMD_FLUSH)
		return 0;
	if (len == 0 || offset % e->min_block != 0 || len % e->min_block != 0)
		return NBD_EINVAL;
	if ((type == NBD_CMD_READ || type == NBD_CMD_WRITE) &&
	    len > NBD_MAX_PAYLOAD)
		return NBD_EINVAL;
	if (offset > e->dev->size || len > e->dev->size - offset)
		return type == NBD_CMD_WRITE ||
		    type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
	return 0;
}

static void
nbd_request_submit(struct nbd_client *c, struct nbd_request *r)
{
	struct blockdev	*dev = c->export->dev;
	unsigned	 fua = r->flags & NBD_CMD_FLAG_FUA ? BLOCKDEV_FUA : 0;

	r->submitted_us = now_us();
	TAILQ_INSERT_TAIL(&c->inflight, r, live);
	if (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES) {
		r->seq = ++c->write_seq;
		TAILQ_INSERT_TAIL(&c->writes, r, entry);
	}
	switch (r->type) {
	case NBD_CMD_READ:
		blockdev_read(dev, r->offset, r->buf, r->len, nbd_request_done,
		    r);
		break;
	case NBD_CMD_WRITE:
		blockdev_write(dev, r->offset, r->buf, r->len, fua,
		    nbd_request_done, r);
		break;
	case NBD_CMD_WRITE_ZEROES:
		blockdev_zero(dev, r->offset, r->len, fua, nbd_request_done,
		    r);
		break;
	case NBD_CMD_FLUSH:
		r->seq = c->write_seq;
		TAILQ_INSERT_TAIL(&c->flushes, r, entry);
		nbd_flush_ready(c);
		break;
	default:
		/* TRIM is advisory. Zeroing instead would write real zeroes
		 * over iSCSI, so it succeeds without touching the disk. */
		blockdev_complete_later(dev, nbd_request_done, r, 0);
		break;
	}
}

/* One request header. -1 = protocol violation: drop the client. */
static int
nbd_client_request(struct nbd_client *c)
{
	uint8_t			 h[NBD_REQUEST_HEADER];
	struct nbd_request	*r;
	uint32_t		 error;

	evbuffer_remove(c->in, h, sizeof h);
	if (be32_get(h) != NBD_REQUEST_MAGIC) {
		log_nbd(LOG_LEVEL_WARN, c, "client %u sent a bad request "
		    "magic; dropping it", c->id);
		return -1;
	}
	if ((r = calloc(1, sizeof *r)) == NULL)
		return -1;
	r->client = c;
	r->flags = be16_get(h + 4);
	r->type = be16_get(h + 6);
	r->cookie = be64_get(h + 8);
	r->offset = be64_get(h + 16);
	r->len = be32_get(h + 24);
	c->requests++;
	switch (r->type) {
	case NBD_CMD_DISC:
		nbd_request_free(r);
		c->state = NBD_STATE_CLOSING;
		return 0;
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
	case NBD_CMD_FLUSH:
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		error = nbd_request_check(c->export, r->type, r->flags,
		    r->offset, r->len);
		break;
	default:
		error = NBD_EINVAL;
		break;
	}
	if (error != 0 && r->type == NBD_CMD_WRITE) {
		/* Read past the payload; answer once it is consumed. */
		c->discard_left = r->len;
		c->discard_cookie = r->cookie;
		c->discard_error = error;
		c->state = NBD_STATE_DISCARD;
		nbd_request_free(r);
		if (c->discard_left == 0) {
			nbd_client_reply(c, c->discard_cookie,
			    c->discard_error);
			c->state = NBD_STATE_REQUEST;
		}
		return 0;
	}
	if (error != 0) {
		nbd_client_reply(c, r->cookie, error);
		nbd_request_free(r);
		return 0;
	}
	if (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) {
		if ((r->buf = nbd_buf_get(r->len)) == NULL) {
			nbd_request_free(r);
			return -1;
		}
		c->bytes += r->len;
	}
	if (r->type == NBD_CMD_WRITE) {
		c->pending = r;
		c->got = 0;
		c->state = NBD_STATE_WRITE_DATA;
		return 0;
	}
	nbd_request_submit(c, r);
	return 0;
}

/* Consume what the current state needs (it is buffered). -1 = drop. */
static int
nbd_client_step(struct nbd_client *c)
{
	uint8_t		buf[NBD_OPTION_HEADER];
	uint32_t	flags;
	size_t		n;

	switch (c->state) {
	case NBD_STATE_CLIENT_FLAGS:
		evbuffer_remove(c->in, buf, 4);
		flags = be32_get(buf);
		if ((flags & ~(uint32_t)(NBD_FLAG_FIXED_NEWSTYLE |
		    NBD_FLAG_NO_ZEROES)) != 0) {
			log_scoped(LOG_LEVEL_WARN, "nbd", "-", "client %u sent "
			    "unknown flags %#x", c->id, flags);
			return -1;
		}
		c->no_zeroes = (flags & NBD_FLAG_NO_ZEROES) != 0;
		c->state = NBD_STATE_OPTION;
		return 0;
	case NBD_STATE_OPTION:
		evbuffer_remove(c->in, buf, NBD_OPTION_HEADER);
		c->option = be32_get(buf + 8);
		c->option_len = be32_get(buf + 12);
		if (be64_get(buf) != NBD_OPTS_MAGIC ||
		    c->option_len > NBD_MAX_OPTION) {
			log_scoped(LOG_LEVEL_WARN, "nbd", "-", "client %u sent "
			    "a bad option header (option %u, %u bytes)", c->id,
			    c->option, c->option_len);
			return -1;
		}
		c->state = NBD_STATE_OPTION_DATA;
		return 0;
	case NBD_STATE_OPTION_DATA:
		return nbd_client_option(c);
	case NBD_STATE_REQUEST:
		return nbd_client_request(c);
	case NBD_STATE_WRITE_DATA:
		evbuffer_remove(c->in, c->pending->buf + c->got,
		    c->pending->len - c->got);
		nbd_request_submit(c, c->pending);
		c->pending = NULL;
		c->state = NBD_STATE_REQUEST;
		return 0;
	case NBD_STATE_DISCARD:
		n = evbuffer_get_length(c->in);
		n = n < c->discard_left ? n : (size_t)c->discard_left;
		evbuffer_drain(c->in, n);
		c->discard_left -= n;
		if (c->discard_left == 0) {
			nbd_client_reply(c, c->discard_cookie,
			    c->discard_error);
			c->state = NBD_STATE_REQUEST;
		}
		return 0;
	default:
		return 0;
	}
}

/*
 * Take every buffered step the bounds allow, then (re)arm the events: read
 * only while under the bounds, write while output is queued. May free c.
 */
static void
nbd_client_pump(struct nbd_client *c)
{
	while (nbd_client_may_read(c) &&
	    evbuffer_get_length(c->in) >= nbd_client_need(c)) {
		if (nbd_client_step(c) == -1) {
			nbd_client_drop(c);
			return;
		}
	}
	if (c->state == NBD_STATE_CLOSING && c->requests == 0 &&
	    evbuffer_get_length(c->out) == 0) {
		if (c->export != NULL)
			log_nbd(LOG_LEVEL_INFO, c, "client %u disconnected",
			    c->id);
		nbd_client_drop(c);
		return;
	}
	if (nbd_client_may_read(c))
		event_add(c->read_event, NULL);
	else
		event_del(c->read_event);
	if (evbuffer_get_length(c->out) > 0)
		event_add(c->write_event, NULL);
	else
		event_del(c->write_event);
}

/*
 * A large WRITE's payload goes from the socket straight into its buffer,
 * after what the input buffer already holds of it: one copy fewer. 1 when
 * it is complete (and submitted), 0 for more later, -1 at EOF or an error.
 */
static int
nbd_client_read_payload(struct nbd_client *c)
{
	struct nbd_request	*r = c->pending;
	ssize_t			 n;
	int			 m;

	if ((m = evbuffer_remove(c->in, r->buf + c->got, r->len - c->got)) > 0)
		c->got += (uint32_t)m;
	while (c->got < r->len) {
		n = read(c->fd, r->buf + c->got, r->len - c->got);
		if (n > 0) {
			c->got += (uint32_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return -1;
	}
	nbd_request_submit(c, r);
	c->pending = NULL;
	c->state = NBD_STATE_REQUEST;
	return 1;
}

static void
nbd_client_hung_up(struct nbd_client *c)
{
	if (c->export != NULL)
		log_nbd(c->requests > 0 || c->state != NBD_STATE_REQUEST ?
		    LOG_LEVEL_WARN : LOG_LEVEL_INFO, c, "client %u hung up%s",
		    c->id, c->requests > 0 ? " with requests in flight" : "");
	else
		log_scoped(LOG_LEVEL_INFO, "nbd", "-", "client %u hung up "
		    "during the handshake", c->id);
	nbd_client_drop(c);
}

static void
nbd_client_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct nbd_client	*c = arg;
	size_t			 have = evbuffer_get_length(c->in);
	size_t			 want = nbd_client_need(c);
	int			 n;

	if (c->state == NBD_STATE_WRITE_DATA && want > have &&
	    want - have >= NBD_DIRECT_MIN) {
		if (nbd_client_read_payload(c) == -1)
			nbd_client_hung_up(c);
		else
			nbd_client_pump(c);
		return;
	}
	want = want > have ? want - have : 0;
	if (want < NBD_READ_CHUNK)
		want = NBD_READ_CHUNK;
	n = evbuffer_read(c->in, fd, (int)want);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		nbd_client_hung_up(c);
		return;
	}
	nbd_client_pump(c);
}

/* Send what the socket takes; MSG_NOSIGNAL: a hung-up client is EPIPE,
 * never SIGPIPE, whatever the process does with signals. */
static int
nbd_client_send(struct nbd_client *c)
{
	struct evbuffer_iovec	vec[16];
	struct msghdr		msg;
	ssize_t			n;
	int			i;

	memset(&msg, 0, sizeof msg);
	msg.msg_iov = (struct iovec *)vec;
	i = evbuffer_peek(c->out, -1, NULL, vec, 16);
	msg.msg_iovlen = (size_t)(i < 16 ? i : 16);
	if ((n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)) == -1)
		return -1;
	evbuffer_drain(c->out, (size_t)n);
	return 0;
}

static void
nbd_client_write_cb(evutil_socket_t fd, short events, void *arg)
{
	struct nbd_client	*c = arg;

	if (nbd_client_send(c) == -1 && errno != EAGAIN && errno != EINTR) {
		log_nbd(LOG_LEVEL_WARN, c, "client %u: %s", c->id,
		    strerror(errno));
		nbd_client_drop(c);
		return;
	}
	nbd_client_pump(c);
}

/* Close the socket now; the client itself goes when its requests have
 * completed (the block device still holds pointers to them). */
static void
nbd_client_drop(struct nbd_client *c)
{
	struct nbd_request	*f;

	if (c->fd == -1)
		return;
	event_free(c->read_event);
	event_free(c->write_event);
	close(c->fd);
	c->fd = -1;
	while ((f = TAILQ_FIRST(&c->flushes)) != NULL) {
		TAILQ_REMOVE(&c->flushes, f, entry);
		nbd_request_free(f);
	}
	if (c->pending != NULL) {
		nbd_request_free(c->pending);
		c->pending = NULL;
	}
	nbd_client_release(c);
}

/* Serve one connected socket; the server owns fd from here on. */
int
nbd_server_add_client(struct nbd_server *s, int fd)
{
	struct nbd_client	*c;
	uint8_t			 greeting[18];
	int			 sndbuf = NBD_SNDBUF;

	/*
	 * Large read replies in one send: with the default buffer (208 KiB)
	 * a 1 MiB reply went out in four sends, each after the client had
	 * drained the last, and the replies behind it waited. The kernel
	 * caps it at net.core.wmem_max; a smaller buffer only costs sends.
	 */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	if (ev_set_nonblock(fd) == -1 || (c = calloc(1, sizeof *c)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->server = s;
	c->fd = fd;
	c->id = ++s->next_id;
	TAILQ_INIT(&c->writes);
	TAILQ_INIT(&c->flushes);
	TAILQ_INIT(&c->inflight);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->read_event = event_new(s->base, fd, EV_READ | EV_PERSIST,
	    nbd_client_read_cb, c);
	c->write_event = event_new(s->base, fd, EV_WRITE | EV_PERSIST,
	    nbd_client_write_cb, c);
	TAILQ_INSERT_TAIL(&s->clients, c, entry);
	if (c->in == NULL || c->out == NULL || c->read_event == NULL ||
	    c->write_event == NULL) {
		if (c->read_event != NULL)
			event_free(c->read_event);
		if (c->write_event != NULL)
			event_free(c->write_event);
		c->read_event = c->write_event = NULL;
		close(fd);
		c->fd = -1;
		if (c->in != NULL)
			evbuffer_free(c->in);
		if (c->out != NULL)
			evbuffer_free(c->out);
		TAILQ_REMOVE(&s->clients, c, entry);
		free(c);
		return -ENOMEM;
	}
	be64_put(greeting, NBD_MAGIC);
	be64_put(greeting + 8, NBD_OPTS_MAGIC);
	be16_put(greeting + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	evbuffer_add(c->out, greeting, sizeof greeting);
	nbd_client_pump(c);
	return 0;
}

static void
nbd_server_accept_cb(evutil_socket_t fd, short events, void *arg)
{
	struct nbd_server	*s = arg;
	int			 client;

	for (;;) {
		client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (client == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_scoped(LOG_LEVEL_WARN, "nbd", s->path,
				    "accept: %s", strerror(errno));
			return;
		}
		nbd_server_add_client(s, client);
	}
}

/* Serve on an already-listening socket (the worker gets one from its
 * parent), or with fd -1 only on sockets given to nbd_server_add_client. */
struct nbd_server *
nbd_server_new_fd(struct event_base *base, int fd, int *error)
{
	struct nbd_server	*s;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		*error = -errno;
		return NULL;
	}
	s->base = base;
	s->fd = fd;
	TAILQ_INIT(&s->exports);
	TAILQ_INIT(&s->clients);
	if (fd == -1)
		return s;
	if (ev_set_nonblock(fd) == -1) {
		*error = -errno;
		goto fail;
	}
	s->accept_event = event_new(base, fd, EV_READ | EV_PERSIST,
	    nbd_server_accept_cb, s);
	if (s->accept_event == NULL || event_add(s->accept_event, NULL) == -1) {
		*error = -ENOMEM;
		goto fail;
	}
	return s;
fail:
	if (s->accept_event != NULL)
		event_free(s->accept_event);
	free(s);
	return NULL;
}

/* 0 if something answers on path (a live server: leave it alone). */
static int
nbd_server_probe(const struct sockaddr_un *sun)
{
	int	fd, result;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	result = connect(fd, (const struct sockaddr *)sun, sizeof *sun);
	close(fd);
	return result;
}

/* Listen on a new UNIX socket at path, mode 0600. A stale socket file is
 * replaced; a live one is an error (-EADDRINUSE). */
struct nbd_server *
nbd_server_new(struct event_base *base, const char *path, int *error)
{
	struct nbd_server	*s = NULL;
	struct sockaddr_un	 sun;
	struct stat		 st;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		*error = -ENAMETOOLONG;
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*error = -errno;
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		if (errno != EADDRINUSE) {
			*error = -errno;
			goto fail;
		}
		/* Replace only a socket nobody answers on. */
		if (lstat(path, &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    nbd_server_probe(&sun) == 0 || errno != ECONNREFUSED) {
			*error = -EADDRINUSE;
			goto fail;
		}
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
			*error = -errno;
			goto fail;
		}
	}
	/* No one can connect before listen(): set the mode first. */
	if (chmod(path, 0600) == -1 || listen(fd, 16) == -1) {
		*error = -errno;
		unlink(path);
		goto fail;
	}
	if ((s = nbd_server_new_fd(base, fd, error)) == NULL) {
		unlink(path);
		return NULL;
	}
	snprintf(s->path, sizeof s->path, "%s", path);
	return s;
fail:
	close(fd);
	return NULL;
}

/* Export dev under name; the device stays the caller's and must outlive
 * the server (and any request still in flight after nbd_server_free). */
int
nbd_server_add_export(struct nbd_server *s, const char *name,
    struct blockdev *dev, int read_only)
{
	struct nbd_export	*e;

	if (strlen(name) > NBD_MAX_NAME || dev->size % NBD_MIN_BLOCK != 0)
		return -EINVAL;
	if (nbd_export_find(s, name, strlen(name)) != NULL && *name != '\0')
		return -EEXIST;
	if ((e = calloc(1, sizeof *e)) == NULL)
		return -ENOMEM;
	snprintf(e->name, sizeof e->name, "%s", name);
	e->dev = dev;
	e->read_only = read_only;
	e->min_block = dev->block_size > NBD_MIN_BLOCK ? dev->block_size :
	    NBD_MIN_BLOCK;
	TAILQ_INSERT_TAIL(&s->exports, e, entry);
	return 0;
}

/*
 * Serve export name from dev from now on; the old device is returned for
 * the caller to close. Only while no request is in flight (a live
 * migration's target re-reads the disk's metadata before its guest runs).
 */
int
nbd_server_replace_export(struct nbd_server *s, const char *name,
    struct blockdev *dev, struct blockdev **old)
{
	struct nbd_export	*e;

	if ((e = nbd_export_find(s, name, strlen(name))) == NULL)
		return -ENOENT;
	if (dev->size != e->dev->size)
		return -EINVAL;
	if (nbd_server_busy(s) > 0)
		return -EBUSY;
	*old = e->dev;
	e->dev = dev;
	return 0;
}

/* Requests accepted and not yet answered, over all clients. */
unsigned
nbd_server_busy(const struct nbd_server *s)
{
	const struct nbd_client	*c;
	unsigned		 n = 0;

	TAILQ_FOREACH(c, &s->clients, entry)
		n += c->requests;
	return n;
}

/*
 * When the oldest request still at a block device was submitted (now_us()),
 * over all clients; 0 when none is. A storage that stops answering shows
 * here long before its requests time out.
 */
uint64_t
nbd_server_oldest(const struct nbd_server *s)
{
	const struct nbd_client		*c;
	const struct nbd_request	*r;
	uint64_t			 oldest = 0;

	TAILQ_FOREACH(c, &s->clients, entry) {
		r = TAILQ_FIRST(&c->inflight);
		if (r != NULL && (oldest == 0 || r->submitted_us < oldest))
			oldest = r->submitted_us;
	}
	return oldest;
}

/*
 * Stop listening (unlinking the socket) and hang up on every client.
 * Requests already at a block device complete later from the loop and free
 * their client then: run the loop until they have (event_base_loop with no
 * other events left) before closing the devices.
 */
void
nbd_server_free(struct nbd_server *s)
{
	struct nbd_client	*c;
	struct nbd_export	*e;

	if (s == NULL)
		return;
	while ((c = TAILQ_FIRST(&s->clients)) != NULL) {
		TAILQ_REMOVE(&s->clients, c, entry);
		c->server = NULL;
		if (c->fd != -1 && c->export != NULL)
			log_nbd(LOG_LEVEL_INFO, c, "client %u: server "
			    "shutting down", c->id);
		/* The export goes now; late completions do not need it. */
		c->export = NULL;
		nbd_client_drop(c);
	}
	while ((e = TAILQ_FIRST(&s->exports)) != NULL) {
		TAILQ_REMOVE(&s->exports, e, entry);
		free(e);
	}
	if (s->accept_event != NULL)
		event_free(s->accept_event);
	if (s->fd != -1)
		close(s->fd);
	if (s->path[0] != '\0')
		unlink(s->path);
	free(s);
}
