/*
 * A VM's saved state on its volume's state extent (DESIGN §3, §6): the 4 KiB
 * header, and the pipelines that move QEMU's migration stream from a pipe
 * onto the extent (save) and from the extent back into a pipe (restore),
 * with a running CRC-32 and up to STATE_QUEUE_DEPTH requests in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
/* CRC-32 as zlib and gzip compute it, by ISA-L: the stream's checksum runs
 * on every byte of a save and a restore, on the worker's one thread, and
 * ISA-L's carry-less multiply is about 14 times zlib's table on x86. */
#include <isa-l/crc.h>

#include "common.h"
#include "storage.h"
#include "migrate.h"

#define STATE_MAGIC		"HVNSTATE"
#define STATE_VERSION		1
#define STATE_BUFFER_SIZE	(1U << 20)
#define STATE_QUEUE_DEPTH	8
#define STATE_PIPE_SIZE		(1 << 20)	/* fewer wakeups per MiB */
#define STATE_FLAGS_KNOWN	(STATE_FLAG_COMPLETE | STATE_FLAG_CONSUMED)

/* Header field offsets; migrate.h has the table. */
#define OFFSET_MAGIC		0
#define OFFSET_VERSION		8
#define OFFSET_FLAGS		12
#define OFFSET_UUID		16
#define UUID_FIELD_SIZE		40
#define OFFSET_GENERATION	56
#define OFFSET_CONFIG		64
#define OFFSET_LENGTH		72
#define OFFSET_SAVED_AT		80
#define OFFSET_CHECKSUM		88
#define OFFSET_HEADER_CRC	92
#define HEADER_USED		96

enum state_buffer_state {
	BUFFER_FREE,
	BUFFER_FILLING,		/* save: receiving from the pipe */
	BUFFER_READY,		/* save: full, waiting for the header */
				/* restore: read, waiting for the pipe */
	BUFFER_BUSY,		/* a request in flight */
};

struct state_buffer {
	void			*owner;
	uint8_t			*data;	/* STATE_BUFFER_SIZE, 4 KiB aligned */
	size_t			 len;	/* stream bytes in data */
	uint64_t		 offset;	/* in the stream */
	enum state_buffer_state	 state;
};

enum state_save_phase {
	SAVE_MARK,		/* incomplete header being written */
	SAVE_STREAM,
	SAVE_COMMIT,		/* complete header being written */
	SAVE_COMMIT_FLUSH,	/* stream and header made durable at once */
};

struct state_save {
	struct blockdev		*extent;
	int			 fd;
	struct event		*readable;
	int			 reading;	/* readable is added */
	enum state_save_phase	 phase;
	struct state_header	 header;
	uint8_t			*block;		/* the header's */
	struct state_buffer	 buffers[STATE_QUEUE_DEPTH];
	struct state_buffer	*filling;
	uint64_t		 capacity;	/* stream bytes that fit */
	uint64_t		 received;	/* from the pipe */
	uint64_t		 written;	/* onto the extent */
	uint64_t		 queued;	/* stream offset of the next buffer */
	uint32_t		 crc;
	unsigned		 in_flight;	/* requests not completed */
	int			 eof;
	int			 error;
	state_progress_cb	 progress;
	state_done_cb		 done;
	void			*arg;
	/* When each step ended, in ms from the start (logged). */
	uint64_t		 start_us;
	uint64_t		 marked_ms, eof_ms, committed_ms;
};

struct state_restore {
	struct blockdev		*extent;
	int			 fd;
	struct event		*writable;
	char			 expect_uuid[37];
	struct state_expect	 expect;
	struct state_header	 header;
	int			 have_header;	/* decoded */
	uint8_t			*block;
	struct state_buffer	 buffers[STATE_QUEUE_DEPTH];
	uint64_t		 chunks;	/* buffers' worth of stream */
	uint64_t		 next_read;	/* chunk to read next */
	uint64_t		 next_write;	/* chunk going into the pipe */
	size_t			 write_pos;	/* in that chunk */
	uint64_t		 written;	/* into the pipe */
	uint32_t		 crc;
	unsigned		 in_flight;
	int			 error;
	state_progress_cb	 progress;
	state_done_cb		 done;
	void			*arg;
};

/* state_header_read and state_mark_consumed. */
struct state_op {
	struct blockdev		*extent;
	uint8_t			*block;
	int			 mark;		/* then set CONSUMED */
	struct state_header	 header;
	state_done_cb		 done;
	void			*arg;
};

static void	save_advance(struct state_save *);
static void	save_step_cb(int, void *);
static void	restore_pump(struct state_restore *);

static uint32_t
state_header_crc(const uint8_t *block)
{
	static const uint8_t	zero[4];
	uint32_t		crc;

	crc = crc32_gzip_refl(0, block, OFFSET_HEADER_CRC);
	crc = crc32_gzip_refl(crc, zero, sizeof zero);
	return crc32_gzip_refl(crc, block + OFFSET_HEADER_CRC + 4,
	    STATE_HEADER_SIZE - OFFSET_HEADER_CRC - 4);
}


void
state_header_encode(const struct state_header *h, uint8_t *block)
{
	memset(block, 0, STATE_HEADER_SIZE);
	memcpy(block + OFFSET_MAGIC, STATE_MAGIC, 8);
	le32_put(block + OFFSET_VERSION, STATE_VERSION);
	le32_put(block + OFFSET_FLAGS, h->flags);
	memcpy(block + OFFSET_UUID, h->vm_uuid, strnlen(h->vm_uuid, 36));
	le64_put(block + OFFSET_GENERATION, h->generation);
	le64_put(block + OFFSET_CONFIG, h->config_hash);
	le64_put(block + OFFSET_LENGTH, h->length);
	le64_put(block + OFFSET_SAVED_AT, h->saved_at_us);
	le32_put(block + OFFSET_CHECKSUM, h->checksum);
	le32_put(block + OFFSET_HEADER_CRC, state_header_crc(block));
}

int
state_header_decode(const uint8_t *block, uint64_t extent_size,
    struct state_header *h)
{
	const char	*uuid = (const char *)block + OFFSET_UUID;
	size_t		 i;

	memset(h, 0, sizeof *h);
	if (memcmp(block + OFFSET_MAGIC, STATE_MAGIC, 8) != 0)
		return MIGRATE_E_NO_STATE;
	if (le32_get(block + OFFSET_VERSION) != STATE_VERSION)
		return MIGRATE_E_VERSION;
	if (le32_get(block + OFFSET_HEADER_CRC) != state_header_crc(block))
		return MIGRATE_E_HEADER;
	if ((le32_get(block + OFFSET_FLAGS) & ~(uint32_t)STATE_FLAGS_KNOWN) != 0)
		return MIGRATE_E_HEADER;
	if (!uuid_valid(uuid))
		return MIGRATE_E_HEADER;
	for (i = HEADER_USED; i < STATE_HEADER_SIZE; i++) {
		if (block[i] != 0)
			return MIGRATE_E_HEADER;
	}
	memcpy(h->vm_uuid, uuid, 36);
	h->vm_uuid[36] = '\0';
	h->flags = le32_get(block + OFFSET_FLAGS);
	h->generation = le64_get(block + OFFSET_GENERATION);
	h->config_hash = le64_get(block + OFFSET_CONFIG);
	h->length = le64_get(block + OFFSET_LENGTH);
	h->saved_at_us = le64_get(block + OFFSET_SAVED_AT);
	h->checksum = le32_get(block + OFFSET_CHECKSUM);
	if (extent_size < STATE_HEADER_SIZE ||
	    h->length > extent_size - STATE_HEADER_SIZE)
		return MIGRATE_E_SIZE;
	return 0;
}

int
state_header_check(const struct state_header *h,
    const struct state_expect *expect)
{
	if (strcasecmp(h->vm_uuid, expect->vm_uuid) != 0)
		return MIGRATE_E_WRONG_VM;
	if (h->generation != expect->generation)
		return MIGRATE_E_GENERATION;
	if (h->config_hash != expect->config_hash)
		return MIGRATE_E_CONFIG;
	if (!(h->flags & STATE_FLAG_COMPLETE))
		return MIGRATE_E_INCOMPLETE;
	if (h->flags & STATE_FLAG_CONSUMED)
		return MIGRATE_E_CONSUMED;
	return 0;
}

void
state_explain(char *buf, size_t size, int error, const struct state_header *h,
    const struct state_expect *expect)
{
	if (h == NULL || expect == NULL) {
		snprintf(buf, size, "%s", migrate_strerror(error));
		return;
	}
	switch (error) {
	case MIGRATE_E_WRONG_VM:
		snprintf(buf, size, "saved state belongs to another VM (%s, "
		    "not %s)", h->vm_uuid, expect->vm_uuid);
		break;
	case MIGRATE_E_GENERATION:
		snprintf(buf, size, "saved state is from generation %" PRIu64
		    " but generation %" PRIu64 " was expected: refusing %s",
		    h->generation, expect->generation,
		    h->generation < expect->generation ? "an older state" :
		    "a newer state (another host may own this VM now)");
		break;
	case MIGRATE_E_CONFIG:
		snprintf(buf, size, "saved state was made with another VM "
		    "configuration (hash %016" PRIx64 ", this one is %016"
		    PRIx64 "): QEMU would refuse or misload it",
		    h->config_hash, expect->config_hash);
		break;
	default:
		snprintf(buf, size, "%s", migrate_strerror(error));
		break;
	}
}

static int
state_buffers_alloc(struct state_buffer *buffers, void *owner)
{
	size_t	i;

	for (i = 0; i < STATE_QUEUE_DEPTH; i++) {
		buffers[i].owner = owner;
		if (posix_memalign((void **)&buffers[i].data, 4096,
		    STATE_BUFFER_SIZE) != 0)
			return -1;
	}
	return 0;
}

static void
state_buffers_free(struct state_buffer *buffers)
{
	size_t	i;

	for (i = 0; i < STATE_QUEUE_DEPTH; i++)
		free(buffers[i].data);
}

/* Shared checks of *_start; 0 or an errno. */
static int
state_extent_usable(const struct blockdev *extent)
{
	if (extent->block_size == 0 || extent->block_size > STATE_HEADER_SIZE ||
	    STATE_HEADER_SIZE % extent->block_size != 0 ||
	    extent->size < STATE_HEADER_SIZE)
		return EINVAL;
	return 0;
}

static void
state_pipe_prepare(int fd)
{
	ev_set_nonblock(fd);
	/* Best effort: a larger pipe means fewer wakeups per MiB. */
	(void)fcntl(fd, F_SETPIPE_SZ, STATE_PIPE_SIZE);
}


/* Save. */

static void
save_free(struct state_save *s)
{
	if (s->readable != NULL)
		event_free(s->readable);
	if (s->fd != -1)
		close(s->fd);
	state_buffers_free(s->buffers);
	free(s->block);
	free(s);
}

/* Nothing in flight: free everything, then report. */
static void
save_finish(struct state_save *s)
{
	struct state_header	 header = s->header;
	state_done_cb		 done = s->done;
	void			*arg = s->arg;
	int			 error = s->error;

	if (error == 0)
		log_info("save: %.1f MiB; header marked at %" PRIu64 " ms, "
		    "stream in at %" PRIu64 " ms, header written at %" PRIu64
		    " ms, durable at %" PRIu64 " ms", (double)s->received /
		    (1 << 20), s->marked_ms, s->eof_ms, s->committed_ms,
		    (now_us() - s->start_us) / 1000);
	save_free(s);
	done(error, &header, arg);
}

static void
save_fail(struct state_save *s, int error)
{
	if (s->error == 0)
		s->error = error;
	if (s->reading) {
		event_del(s->readable);
		s->reading = 0;
	}
}

static void
save_write_cb(int result, void *arg)
{
	struct state_buffer	*b = arg;
	struct state_save	*s = b->owner;

	s->in_flight--;
	b->state = BUFFER_FREE;
	if (result != 0) {
		save_fail(s, result);
	} else {
		s->written += b->len;
		if (s->progress != NULL && s->error == 0)
			s->progress(s->written, s->arg);
	}
	b->len = 0;
	save_advance(s);
}

static void
save_submit(struct state_save *s, struct state_buffer *b)
{
	uint32_t	mask = s->extent->block_size - 1;
	size_t		padded = (b->len + mask) & ~(size_t)mask;

	memset(b->data + b->len, 0, padded - b->len);
	b->state = BUFFER_BUSY;
	s->in_flight++;
	blockdev_write(s->extent, STATE_HEADER_SIZE + b->offset, b->data,
	    padded, 0, save_write_cb, b);
}

/* A buffer is full (or holds the stream's tail): write it once the
 * incomplete header is durable, never before. */
static void
save_queue(struct state_save *s, struct state_buffer *b)
{
	b->offset = s->queued;
	s->queued += STATE_BUFFER_SIZE;
	b->state = BUFFER_READY;
	if (s->phase != SAVE_MARK)
		save_submit(s, b);
}

static struct state_buffer *
save_take_buffer(struct state_save *s)
{
	size_t	i;

	for (i = 0; i < STATE_QUEUE_DEPTH; i++) {
		if (s->buffers[i].state == BUFFER_FREE) {
			s->buffers[i].state = BUFFER_FILLING;
			s->buffers[i].len = 0;
			return &s->buffers[i];
		}
	}
	return NULL;
}

/* Drain the pipe into free buffers until it is empty, at EOF, or every
 * buffer is busy (then stop listening until a write completes). */
static void
save_read(struct state_save *s)
{
	struct state_buffer	*b;
	ssize_t			 n;

	while (s->error == 0 && !s->eof) {
		if (s->filling == NULL &&
		    (s->filling = save_take_buffer(s)) == NULL) {
			event_del(s->readable);
			s->reading = 0;
			return;
		}
		b = s->filling;
		n = read(s->fd, b->data + b->len, STATE_BUFFER_SIZE - b->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1) {
			save_fail(s, -errno);
			break;
		}
		if (n == 0) {
			s->eof = 1;
			s->eof_ms = (now_us() - s->start_us) / 1000;
			event_del(s->readable);
			s->reading = 0;
			s->filling = NULL;
			if (b->len > 0)
				save_queue(s, b);
			else
				b->state = BUFFER_FREE;
			break;
		}
		if ((uint64_t)n > s->capacity - s->received) {
			save_fail(s, MIGRATE_E_TOO_BIG);
			break;
		}
		s->crc = crc32_gzip_refl(s->crc, b->data + b->len, (uint64_t)n);
		s->received += (uint64_t)n;
		b->len += (size_t)n;
		if (b->len == STATE_BUFFER_SIZE) {
			s->filling = NULL;
			save_queue(s, b);
		}
	}
	save_advance(s);
}

static void
save_readable_cb(evutil_socket_t fd, short events, void *arg)
{
	save_read(arg);
}

/*
 * Every stream write has completed: the complete header goes after them,
 * and one SYNCHRONIZE CACHE makes both durable. Completed writes are what
 * any initiator reads, so the header never points at a stream not yet
 * there; the flush only covers the SAN's own power loss, and nothing says
 * SAVED (nor quits QEMU) before it returns -- a save whose flush fails
 * resumes the VM here, whatever the header on the LUN says (a restore is
 * only ordered for a save the cluster committed, and it checks the CRC).
 * One flush, not one before the header and one after: each is an
 * fdatasync on the SAN, on the downtime's path.
 */
static void
save_commit(struct state_save *s)
{
	s->header.length = s->received;
	s->header.checksum = s->crc;
	s->header.flags = STATE_FLAG_COMPLETE;
	s->header.saved_at_us = now_us();
	state_header_encode(&s->header, s->block);
	s->phase = SAVE_COMMIT;
	s->in_flight++;
	blockdev_write(s->extent, 0, s->block, STATE_HEADER_SIZE, 0,
	    save_step_cb, s);
}

static void
save_step_cb(int result, void *arg)
{
	struct state_save	*s = arg;
	size_t			 i;

	s->in_flight--;
	switch (s->phase) {
	case SAVE_MARK:
		if (result != 0)
			save_fail(s, result);
		s->marked_ms = (now_us() - s->start_us) / 1000;
		s->phase = SAVE_STREAM;
		for (i = 0; i < STATE_QUEUE_DEPTH && s->error == 0; i++) {
			if (s->buffers[i].state == BUFFER_READY)
				save_submit(s, &s->buffers[i]);
		}
		break;
	case SAVE_COMMIT:
		/* From here the result is what the disk says, whatever an
		 * abort said meanwhile (migrate.h). */
		s->error = result;
		if (result != 0)
			break;
		s->committed_ms = (now_us() - s->start_us) / 1000;
		s->phase = SAVE_COMMIT_FLUSH;
		s->in_flight++;
		blockdev_flush(s->extent, save_step_cb, s);
		return;
	case SAVE_COMMIT_FLUSH:
		s->error = result;
		save_finish(s);
		return;
	case SAVE_STREAM:
		/* The wakeup after an abort with nothing in flight. */
		break;
	}
	save_advance(s);
}

static int
save_has_room(const struct state_save *s)
{
	size_t	i;

	if (s->filling != NULL)
		return 1;
	for (i = 0; i < STATE_QUEUE_DEPTH; i++) {
		if (s->buffers[i].state == BUFFER_FREE)
			return 1;
	}
	return 0;
}

/* What comes next, after any event. */
static void
save_advance(struct state_save *s)
{
	if (s->error != 0) {
		if (s->in_flight == 0)
			save_finish(s);
		return;
	}
	if (s->phase != SAVE_STREAM)
		return;
	if (!s->eof) {
		if (!s->reading && save_has_room(s)) {
			event_add(s->readable, NULL);
			s->reading = 1;
		}
		return;
	}
	if (s->in_flight == 0)
		save_commit(s);
}

struct state_save *
state_save_start(struct event_base *base, struct blockdev *extent,
    int pipe_fd, const struct state_header *ident, state_progress_cb progress,
    state_done_cb done, void *arg)
{
	struct state_save	*s;
	int			 error;

	if ((error = state_extent_usable(extent)) != 0 ||
	    !uuid_valid(ident->vm_uuid)) {
		close(pipe_fd);
		errno = error != 0 ? error : EINVAL;
		return NULL;
	}
	if ((s = calloc(1, sizeof *s)) == NULL) {
		close(pipe_fd);
		errno = ENOMEM;
		return NULL;
	}
	s->extent = extent;
	s->fd = pipe_fd;
	s->progress = progress;
	s->done = done;
	s->arg = arg;
	s->start_us = now_us();
	s->capacity = (extent->size - STATE_HEADER_SIZE) &
	    ~(uint64_t)(extent->block_size - 1);
	s->crc = 0;
	memcpy(s->header.vm_uuid, ident->vm_uuid, 37);
	s->header.generation = ident->generation;
	s->header.config_hash = ident->config_hash;
	s->header.saved_at_us = now_us();
	s->readable = event_new(base, pipe_fd, EV_READ | EV_PERSIST,
	    save_readable_cb, s);
	if (s->readable == NULL || state_buffers_alloc(s->buffers, s) == -1 ||
	    posix_memalign((void **)&s->block, 4096, STATE_HEADER_SIZE) != 0) {
		save_free(s);
		errno = ENOMEM;
		return NULL;
	}
	state_pipe_prepare(pipe_fd);

	/* The old state stops being complete before any byte of the new
	 * one can overwrite it. */
	s->phase = SAVE_MARK;
	state_header_encode(&s->header, s->block);
	s->in_flight++;
	blockdev_write(extent, 0, s->block, STATE_HEADER_SIZE, BLOCKDEV_FUA,
	    save_step_cb, s);
	/* Meanwhile fill buffers, so QEMU does not stall on a full pipe. */
	event_add(s->readable, NULL);
	s->reading = 1;
	return s;
}

/* Stop; done(-ECANCELED) follows once nothing is in flight (migrate.h). */
void
state_save_abort(struct state_save *s)
{
	save_fail(s, -ECANCELED);
	if (s->in_flight == 0) {
		/* done must come from the loop, never from here. */
		s->in_flight++;
		blockdev_complete_later(s->extent, save_step_cb, s, 0);
	}
}

/* Restore. */

static void
restore_free(struct state_restore *r)
{
	if (r->writable != NULL)
		event_free(r->writable);
	if (r->fd != -1)
		close(r->fd);
	state_buffers_free(r->buffers);
	free(r->block);
	free(r);
}

static void
restore_finish(struct state_restore *r)
{
	struct state_header	 header = r->header;
	state_done_cb		 done = r->done;
	void			*arg = r->arg;
	int			 error = r->error;
	int			 have_header = r->have_header;

	restore_free(r);
	done(error, have_header ? &header : NULL, arg);
}

static void
restore_fail(struct state_restore *r, int error)
{
	if (r->error == 0)
		r->error = error;
	event_del(r->writable);
}

static void
restore_read_cb(int result, void *arg)
{
	struct state_buffer	*b = arg;
	struct state_restore	*r = b->owner;

	r->in_flight--;
	if (result != 0)
		restore_fail(r, result);
	b->state = BUFFER_READY;
	restore_pump(r);
}

/* Keep up to STATE_QUEUE_DEPTH chunks read ahead of the pipe. Chunk i
 * lives in buffer i % depth, so the pipe empties them in order. */
static void
restore_fill(struct state_restore *r)
{
	struct state_buffer	*b;
	uint32_t		 mask = r->extent->block_size - 1;
	uint64_t		 offset;

	while (r->error == 0 && r->next_read < r->chunks &&
	    r->next_read < r->next_write + STATE_QUEUE_DEPTH) {
		b = &r->buffers[r->next_read % STATE_QUEUE_DEPTH];
		offset = r->next_read * STATE_BUFFER_SIZE;
		b->offset = offset;
		b->len = r->header.length - offset < STATE_BUFFER_SIZE ?
		    (size_t)(r->header.length - offset) : STATE_BUFFER_SIZE;
		b->state = BUFFER_BUSY;
		r->next_read++;
		r->in_flight++;
		blockdev_read(r->extent, STATE_HEADER_SIZE + offset, b->data,
		    (b->len + mask) & ~(size_t)mask, restore_read_cb, b);
	}
}

/* Write what is ready into the pipe, in order; at the end, judge. */
static void
restore_pump(struct state_restore *r)
{
	struct state_buffer	*b;
	ssize_t			 n;

	while (r->error == 0) {
		if (r->next_write == r->chunks) {
			if (r->crc != r->header.checksum)
				r->error = MIGRATE_E_CHECKSUM;
			break;
		}
		b = &r->buffers[r->next_write % STATE_QUEUE_DEPTH];
		if (b->state != BUFFER_READY)
			return;
		n = write(r->fd, b->data + r->write_pos, b->len - r->write_pos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(r->writable, NULL);
			return;
		}
		if (n == -1) {
			restore_fail(r, -errno);
			break;
		}
		r->crc = crc32_gzip_refl(r->crc, b->data + r->write_pos,
		    (uint64_t)n);
		r->write_pos += (size_t)n;
		r->written += (uint64_t)n;
		if (r->write_pos < b->len)
			continue;
		b->state = BUFFER_FREE;
		r->write_pos = 0;
		r->next_write++;
		if (r->progress != NULL)
			r->progress(r->written, r->arg);
		restore_fill(r);
	}
	if (r->in_flight == 0)
		restore_finish(r);
}

static void
restore_writable_cb(evutil_socket_t fd, short events, void *arg)
{
	restore_pump(arg);
}

static void
restore_header_cb(int result, void *arg)
{
	struct state_restore	*r = arg;

	r->in_flight--;
	if (result == 0 && r->error == 0) {
		result = state_header_decode(r->block, r->extent->size,
		    &r->header);
		if (result == 0 || result == MIGRATE_E_SIZE)
			r->have_header = 1;
		if (result == 0)
			result = state_header_check(&r->header, &r->expect);
	}
	if (result != 0)
		restore_fail(r, result);
	if (r->error == 0) {
		r->chunks = (r->header.length + STATE_BUFFER_SIZE - 1) /
		    STATE_BUFFER_SIZE;
		restore_fill(r);
	}
	restore_pump(r);
}

struct state_restore *
state_restore_start(struct event_base *base, struct blockdev *extent,
    int pipe_fd, const struct state_expect *expect, state_progress_cb progress,
    state_done_cb done, void *arg)
{
	struct state_restore	*r;
	int			 error;

	if ((error = state_extent_usable(extent)) != 0 ||
	    expect->vm_uuid == NULL ||
	    !uuid_valid(expect->vm_uuid)) {
		close(pipe_fd);
		errno = error != 0 ? error : EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof *r)) == NULL) {
		close(pipe_fd);
		errno = ENOMEM;
		return NULL;
	}
	r->extent = extent;
	r->fd = pipe_fd;
	r->progress = progress;
	r->done = done;
	r->arg = arg;
	memcpy(r->expect_uuid, expect->vm_uuid, 37);
	r->expect = *expect;
	r->expect.vm_uuid = r->expect_uuid;
	r->crc = 0;
	r->writable = event_new(base, pipe_fd, EV_WRITE, restore_writable_cb,
	    r);
	if (r->writable == NULL || state_buffers_alloc(r->buffers, r) == -1 ||
	    posix_memalign((void **)&r->block, 4096, STATE_HEADER_SIZE) != 0) {
		restore_free(r);
		errno = ENOMEM;
		return NULL;
	}
	state_pipe_prepare(pipe_fd);
	r->in_flight++;
	blockdev_read(extent, 0, r->block, STATE_HEADER_SIZE, restore_header_cb,
	    r);
	return r;
}

static void
restore_wake_cb(int result, void *arg)
{
	struct state_restore	*r = arg;

	r->in_flight--;
	restore_pump(r);
}

/* Stop; done(-ECANCELED) follows once no read is in flight (migrate.h). */
void
state_restore_abort(struct state_restore *r)
{
	restore_fail(r, -ECANCELED);
	if (r->in_flight == 0) {
		/* done must come from the loop, never from here. */
		r->in_flight++;
		blockdev_complete_later(r->extent, restore_wake_cb, r, 0);
	}
}

/* Header read and mark consumed. */

static void
state_op_finish(struct state_op *op, int result, int have_header)
{
	struct state_header	 header = op->header;
	state_done_cb		 done = op->done;
	void			*arg = op->arg;

	free(op->block);
	free(op);
	done(result, have_header ? &header : NULL, arg);
}

static void
state_op_write_cb(int result, void *arg)
{
	state_op_finish(arg, result, 1);
}

static void
state_op_read_cb(int result, void *arg)
{
	struct state_op	*op = arg;

	if (result != 0) {
		state_op_finish(op, result, 0);
		return;
	}
	result = state_header_decode(op->block, op->extent->size, &op->header);
	if (result != 0 || !op->mark ||
	    (op->header.flags & STATE_FLAG_CONSUMED)) {
		state_op_finish(op, result, result == 0);
		return;
	}
	op->header.flags |= STATE_FLAG_CONSUMED;
	state_header_encode(&op->header, op->block);
	blockdev_write(op->extent, 0, op->block, STATE_HEADER_SIZE,
	    BLOCKDEV_FUA, state_op_write_cb, op);
}

static void
state_op_start(struct blockdev *extent, int mark, state_done_cb done,
    void *arg)
{
	struct state_op	*op;

	if ((op = calloc(1, sizeof *op)) == NULL ||
	    posix_memalign((void **)&op->block, 4096, STATE_HEADER_SIZE) != 0) {
		/* Nothing sane is left (as blockdev_complete_later). */
		abort();
	}
	op->extent = extent;
	op->mark = mark;
	op->done = done;
	op->arg = arg;
	if (state_extent_usable(extent) != 0) {
		blockdev_complete_later(extent, state_op_read_cb, op, -EINVAL);
		return;
	}
	blockdev_read(extent, 0, op->block, STATE_HEADER_SIZE,
	    state_op_read_cb, op);
}

void
state_header_read(struct blockdev *extent, state_done_cb done, void *arg)
{
	state_op_start(extent, 0, done, arg);
}

void
state_mark_consumed(struct blockdev *extent, state_done_cb done, void *arg)
{
	state_op_start(extent, 1, done, arg);
}
