/*
 * haven-lun-stream: the "file on the LUN" for QEMU's own save and load in
 * tests/bench/migrate. It copies a byte stream between a pipe and a raw
 * region of an iSCSI LUN with plain libiscsi (no Haven code: no header, no
 * checksum, no reservation), 1 MiB requests, 8 in flight, as Haven's save.
 *
 *   haven-lun-stream put URL OFFSET          stdin to the LUN, then SYNC CACHE
 *   haven-lun-stream get URL OFFSET LENGTH   the LUN to stdout, after "go" on stdin
 *
 * It logs in first and says "ready" on stderr; at the end it prints
 * {"bytes":N} on stderr. Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define LUN_STREAM_CHUNK	(1U << 20)
#define LUN_STREAM_DEPTH	8
#define LUN_STREAM_BLOCK	512
#define LUN_STREAM_PIPE_SIZE	(1 << 20)	/* as Haven's pipe */

enum chunk_state {
	CHUNK_FREE,
	CHUNK_FILLING,		/* put: receiving from stdin */
	CHUNK_BUSY,		/* a request in flight */
	CHUNK_READY,		/* get: read, waiting for stdout */
};

struct chunk {
	struct lun_stream	*owner;
	uint8_t			*data;
	size_t			 len;
	struct scsi_iovec	 iov;
	enum chunk_state	 state;
};

struct lun_stream {
	struct iscsi_context	*ctx;
	int			 lun;
	uint64_t		 offset;	/* of the stream on the LUN */
	uint64_t		 length;	/* get: bytes to send */
	struct chunk		 chunks[LUN_STREAM_DEPTH];
	struct chunk		*filling;	/* put */
	uint64_t		 submitted;	/* stream bytes sent to the LUN */
	uint64_t		 next_read;	/* get: chunk index to read */
	uint64_t		 next_write;	/* get: chunk index for stdout */
	size_t			 write_pos;	/* in that chunk */
	uint64_t		 bytes;		/* through the pipe */
	unsigned		 in_flight;
	int			 eof;
	int			 failed;
};

static void __attribute__((noreturn))
lun_stream_fatal(const char *what, const char *why)
{
	fprintf(stderr, "haven-lun-stream: %s: %s\n", what, why);
	exit(1);
}

static void
lun_stream_task_cb(struct iscsi_context *ctx, int status, void *data,
    void *arg)
{
	struct chunk		*c = arg;
	struct lun_stream	*s = c->owner;

	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "haven-lun-stream: I/O failed: %s\n",
		    iscsi_get_error(ctx));
		s->failed = 1;
	}
	scsi_free_scsi_task(data);
	s->in_flight--;
	c->state = s->length == 0 ? CHUNK_FREE : CHUNK_READY;
}

/* put: a full chunk (or the tail, padded with zeros) to the LUN. */
static void
lun_stream_submit_write(struct lun_stream *s, struct chunk *c)
{
	size_t	padded = (c->len + LUN_STREAM_BLOCK - 1) &
	    ~(size_t)(LUN_STREAM_BLOCK - 1);

	memset(c->data + c->len, 0, padded - c->len);
	c->iov.iov_base = c->data;
	c->iov.iov_len = padded;
	c->state = CHUNK_BUSY;
	if (iscsi_write16_iov_task(s->ctx, s->lun,
	    (s->offset + s->submitted) / LUN_STREAM_BLOCK, NULL,
	    (uint32_t)padded, LUN_STREAM_BLOCK, 0, 0, 0, 0, 0,
	    lun_stream_task_cb, c, &c->iov, 1) == NULL)
		lun_stream_fatal("WRITE16", iscsi_get_error(s->ctx));
	s->in_flight++;
	s->submitted += c->len;
}

/* get: keep up to LUN_STREAM_DEPTH chunks read ahead of stdout; chunk i
 * lives in chunks[i % depth], so stdout empties them in order. */
static void
lun_stream_submit_reads(struct lun_stream *s)
{
	uint64_t	 nchunks = (s->length + LUN_STREAM_CHUNK - 1) /
	    LUN_STREAM_CHUNK;
	uint64_t	 at;
	struct chunk	*c;
	size_t		 padded;

	while (s->next_read < nchunks &&
	    s->next_read < s->next_write + LUN_STREAM_DEPTH) {
		c = &s->chunks[s->next_read % LUN_STREAM_DEPTH];
		at = s->next_read * LUN_STREAM_CHUNK;
		c->len = s->length - at < LUN_STREAM_CHUNK ?
		    (size_t)(s->length - at) : LUN_STREAM_CHUNK;
		padded = (c->len + LUN_STREAM_BLOCK - 1) &
		    ~(size_t)(LUN_STREAM_BLOCK - 1);
		c->iov.iov_base = c->data;
		c->iov.iov_len = padded;
		c->state = CHUNK_BUSY;
		if (iscsi_read16_iov_task(s->ctx, s->lun,
		    (s->offset + at) / LUN_STREAM_BLOCK, (uint32_t)padded,
		    LUN_STREAM_BLOCK, 0, 0, 0, 0, 0, lun_stream_task_cb, c,
		    &c->iov, 1) == NULL)
			lun_stream_fatal("READ16", iscsi_get_error(s->ctx));
		s->in_flight++;
		s->next_read++;
	}
}

static struct chunk *
lun_stream_free_chunk(struct lun_stream *s)
{
	size_t	i;

	for (i = 0; i < LUN_STREAM_DEPTH; i++) {
		if (s->chunks[i].state == CHUNK_FREE) {
			s->chunks[i].state = CHUNK_FILLING;
			s->chunks[i].len = 0;
			return &s->chunks[i];
		}
	}
	return NULL;
}

/* put: drain stdin while a chunk is free. */
static void
lun_stream_read_stdin(struct lun_stream *s)
{
	struct chunk	*c;
	ssize_t		 n;

	for (;;) {
		if (s->filling == NULL &&
		    (s->filling = lun_stream_free_chunk(s)) == NULL)
			return;
		c = s->filling;
		n = read(0, c->data + c->len, LUN_STREAM_CHUNK - c->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1)
			lun_stream_fatal("stdin", strerror(errno));
		if (n == 0) {
			s->eof = 1;
			s->filling = NULL;
			if (c->len > 0)
				lun_stream_submit_write(s, c);
			else
				c->state = CHUNK_FREE;
			return;
		}
		s->bytes += (uint64_t)n;
		c->len += (size_t)n;
		if (c->len == LUN_STREAM_CHUNK) {
			s->filling = NULL;
			lun_stream_submit_write(s, c);
		}
	}
}

/* get: write what is ready to stdout, in order. */
static void
lun_stream_write_stdout(struct lun_stream *s)
{
	struct chunk	*c;
	ssize_t		 n;

	for (;;) {
		c = &s->chunks[s->next_write % LUN_STREAM_DEPTH];
		if (s->bytes == s->length || c->state != CHUNK_READY)
			return;
		n = write(1, c->data + s->write_pos, c->len - s->write_pos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1)
			lun_stream_fatal("stdout", strerror(errno));
		s->write_pos += (size_t)n;
		s->bytes += (uint64_t)n;
		if (s->write_pos == c->len) {
			c->state = CHUNK_FREE;
			s->write_pos = 0;
			s->next_write++;
			lun_stream_submit_reads(s);
		}
	}
}

static int
lun_stream_done(const struct lun_stream *s)
{
	if (s->length == 0)
		return s->eof && s->in_flight == 0;
	return s->bytes == s->length;
}

/* One poll over the session and the pipe until the stream is through. */
static void
lun_stream_run(struct lun_stream *s, int pipe_fd, short pipe_events)
{
	struct pollfd	pfd[2];
	int		n;

	while (!s->failed && !lun_stream_done(s)) {
		pfd[0].fd = iscsi_get_fd(s->ctx);
		pfd[0].events = (short)iscsi_which_events(s->ctx);
		pfd[1].fd = pipe_fd;
		pfd[1].events = pipe_events;
		/* put: stop reading while every chunk is busy. */
		if (s->length == 0 && (s->eof || (s->filling == NULL &&
		    s->in_flight == LUN_STREAM_DEPTH)))
			pfd[1].fd = -1;
		if ((n = poll(pfd, 2, 1000)) == -1 && errno != EINTR)
			lun_stream_fatal("poll", strerror(errno));
		if (n <= 0) {
			iscsi_service(s->ctx, 0);	/* timeouts */
			continue;
		}
		if (pfd[0].revents != 0 &&
		    iscsi_service(s->ctx, pfd[0].revents) != 0)
			lun_stream_fatal("session", iscsi_get_error(s->ctx));
		if (s->length == 0)
			lun_stream_read_stdin(s);
		else
			lun_stream_write_stdout(s);
	}
	if (s->failed)
		exit(1);
}

/* The target's CHAP account from the host's /etc/haven/chap ("TARGET USER
 * SECRET" lines), read here without Haven's parser: this tool is the
 * baseline with libiscsi alone. No file or no line: no CHAP. */
static void
lun_stream_chap(struct iscsi_context *ctx, const char *target)
{
	char	 line[1024], t[256], user[256], secret[256];
	FILE	*f = fopen("/etc/haven/chap", "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "%255s %255s %255s", t, user, secret) == 3 &&
		    strcmp(t, target) == 0) {
			iscsi_set_initiator_username_pwd(ctx, user, secret);
			break;
		}
	explicit_bzero(line, sizeof line);
	explicit_bzero(secret, sizeof secret);
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct lun_stream	 s;
	struct iscsi_url	*u;
	struct scsi_task	*task;
	struct rusage		 ru;
	char			 go[8];
	int			 put, i;

	put = argc == 4 && strcmp(argv[1], "put") == 0;
	if (!put && !(argc == 5 && strcmp(argv[1], "get") == 0)) {
		fprintf(stderr, "usage: haven-lun-stream put URL OFFSET\n"
		    "       haven-lun-stream get URL OFFSET LENGTH\n");
		return 2;
	}
	memset(&s, 0, sizeof s);
	s.offset = strtoull(argv[3], NULL, 0);
	if (!put && (s.length = strtoull(argv[4], NULL, 0)) == 0)
		lun_stream_fatal(argv[4], "bad length");
	if (s.offset % LUN_STREAM_BLOCK != 0)
		lun_stream_fatal(argv[3], "offset not a multiple of 512");
	for (i = 0; i < LUN_STREAM_DEPTH; i++) {
		s.chunks[i].owner = &s;
		if (posix_memalign((void **)&s.chunks[i].data, 4096,
		    LUN_STREAM_CHUNK) != 0)
			lun_stream_fatal("memory", strerror(ENOMEM));
	}
	s.ctx = iscsi_create_context(getenv("HAVEN_INITIATOR") ?
	    getenv("HAVEN_INITIATOR") : "iqn.2026-11.org.haven:lun-stream");
	if (s.ctx == NULL)
		lun_stream_fatal("iscsi_create_context", strerror(ENOMEM));
	if ((u = iscsi_parse_full_url(s.ctx, argv[2])) == NULL)
		lun_stream_fatal(argv[2], iscsi_get_error(s.ctx));
	s.lun = u->lun;
	/* Haven's session settings (storage/iscsi.c). */
	iscsi_set_targetname(s.ctx, u->target);
	iscsi_set_session_type(s.ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(s.ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_timeout(s.ctx, 10);
	lun_stream_chap(s.ctx, u->target);
	if (iscsi_full_connect_sync(s.ctx, u->portal, u->lun) != 0)
		lun_stream_fatal("login", iscsi_get_error(s.ctx));
	iscsi_destroy_url(u);

	fcntl(put ? 0 : 1, F_SETPIPE_SZ, LUN_STREAM_PIPE_SIZE);
	fcntl(put ? 0 : 1, F_SETFL, O_NONBLOCK);
	fprintf(stderr, "ready\n");
	if (put) {
		lun_stream_run(&s, 0, POLLIN);
		task = iscsi_synchronizecache16_sync(s.ctx, s.lun, 0, 0, 0, 0);
		if (task == NULL || task->status != SCSI_STATUS_GOOD)
			lun_stream_fatal("SYNCHRONIZE CACHE",
			    iscsi_get_error(s.ctx));
		scsi_free_scsi_task(task);
	} else {
		/* The clock of the load starts with QEMU; wait for it. */
		if (read(0, go, sizeof go) <= 0)
			lun_stream_fatal("stdin", "closed before go");
		lun_stream_submit_reads(&s);
		lun_stream_run(&s, 1, POLLOUT);
		close(1);
	}
	(void)getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "{\"bytes\":%" PRIu64 ",\"cpu_ms\":%ld}\n", s.bytes,
	    ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
	    ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000);
	iscsi_logout_sync(s.ctx);
	iscsi_destroy_context(s.ctx);
	return 0;
}
