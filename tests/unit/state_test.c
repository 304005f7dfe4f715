/*
 * Unit tests of saved VM state on real files: streams of many sizes fed
 * through a pipe in random-sized pieces, saved and restored byte for byte;
 * every refusal leaves the extent untouched; an interrupted save never
 * leaves a state marked complete; and a throughput figure to watch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <zlib.h>

#include "common.h"
#include "storage.h"
#include "migrate.h"

#define MiB		(UINT64_C(1) << 20)
#define EXTENT_OFFSET	MiB		/* the extent sits inside a file */
#define GUARD		MiB		/* and a zeroed guard after it */
#define SCRATCH		(256 * 1024)

static const char	*uuid_a = "0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c";
static const char	*uuid_b = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

struct fixture {
	struct event_base	*base;
	char			 path[64];
	struct blockdev		*file;
	struct blockdev		*extent;
	uint64_t		 extent_size;
};

/* The stream: byte i of stream `seed` is a fixed function of (seed, i). */
static uint64_t
mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void
pattern(uint8_t *p, uint64_t offset, size_t len, uint64_t seed)
{
	uint64_t	word;
	size_t		k, take, j;

	while (len > 0) {
		word = mix(seed * 0x100000001b3ULL ^ (offset >> 3));
		k = offset & 7;
		take = 8 - k < len ? 8 - k : len;
		for (j = 0; j < take; j++)
			p[j] = (uint8_t)(word >> (8 * (k + j)));
		p += take;
		offset += take;
		len -= take;
	}
}

/* Writes stream `seed` of `total` bytes into a pipe in random pieces, as
 * QEMU would, then closes it (EOF). Stops early at stop_at if set. */
struct feeder {
	struct event	*event;
	int		 fd;
	uint64_t	 total;
	uint64_t	 sent;
	uint64_t	 seed;
	uint64_t	 rng;
	int		 done;
	int		 error;
	uint8_t		 scratch[SCRATCH];
};

static void
feeder_stop(struct feeder *f, int error)
{
	f->error = error;
	f->done = 1;
	event_free(f->event);
	close(f->fd);
}

static void
feeder_cb(evutil_socket_t fd, short events, void *arg)
{
	struct feeder	*f = arg;
	size_t		 chunk;
	ssize_t		 n;

	while (f->sent < f->total) {
		f->rng = mix(f->rng);
		chunk = 1 + (size_t)(f->rng % SCRATCH);
		if (chunk > f->total - f->sent)
			chunk = (size_t)(f->total - f->sent);
		pattern(f->scratch, f->sent, chunk, f->seed);
		n = write(f->fd, f->scratch, chunk);
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1) {
			feeder_stop(f, -errno);
			return;
		}
		f->sent += (uint64_t)n;
	}
	feeder_stop(f, 0);
}

static struct feeder *
feeder_new(struct event_base *base, int fd, uint64_t total, uint64_t seed)
{
	struct feeder	*f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->fd = fd;
	f->total = total;
	f->seed = seed;
	f->rng = seed ^ 0x5eed;
	f->event = event_new(base, fd, EV_WRITE | EV_PERSIST, feeder_cb, f);
	assert_non_null(f->event);
	assert_int_equal(event_add(f->event, NULL), 0);
	return f;
}

/* Reads a pipe in random pieces and compares with stream `seed`. */
struct drainer {
	struct event	*event;
	int		 fd;
	uint64_t	 received;
	uint64_t	 seed;
	uint64_t	 rng;
	uint64_t	 close_at;	/* close early (QEMU went away) */
	int		 mismatch;
	int		 done;
	uint8_t		 scratch[SCRATCH];
	uint8_t		 expect[SCRATCH];
};

static void
drainer_stop(struct drainer *d)
{
	d->done = 1;
	event_free(d->event);
	close(d->fd);
}

static void
drainer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct drainer	*d = arg;
	size_t		 chunk;
	ssize_t		 n;

	for (;;) {
		d->rng = mix(d->rng);
		chunk = 1 + (size_t)(d->rng % SCRATCH);
		n = read(d->fd, d->scratch, chunk);
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drainer_stop(d);
			return;
		}
		pattern(d->expect, d->received, (size_t)n, d->seed);
		if (memcmp(d->scratch, d->expect, (size_t)n) != 0)
			d->mismatch = 1;
		d->received += (uint64_t)n;
		if (d->close_at != 0 && d->received >= d->close_at) {
			drainer_stop(d);
			return;
		}
	}
}

static struct drainer *
drainer_new(struct event_base *base, int fd, uint64_t seed)
{
	struct drainer	*d = calloc(1, sizeof *d);

	assert_non_null(d);
	d->fd = fd;
	d->seed = seed;
	d->rng = seed ^ 0xd7a1;
	d->event = event_new(base, fd, EV_READ | EV_PERSIST, drainer_cb, d);
	assert_non_null(d->event);
	assert_int_equal(event_add(d->event, NULL), 0);
	return d;
}

/* What a pipeline reported. */
struct outcome {
	int			 done;
	int			 result;
	int			 have_header;
	struct state_header	 header;
	uint64_t		 progress;
	uint64_t		 abort_at;	/* abort from progress */
	struct state_save	*save;
};

static void
outcome_done(int result, const struct state_header *h, void *arg)
{
	struct outcome	*o = arg;

	assert_int_equal(o->done, 0);
	o->done = 1;
	o->result = result;
	o->have_header = h != NULL;
	if (h != NULL)
		o->header = *h;
}

static void
outcome_progress(uint64_t bytes, void *arg)
{
	struct outcome	*o = arg;

	assert_true(bytes >= o->progress);
	o->progress = bytes;
	if (o->abort_at != 0 && bytes >= o->abort_at && o->save != NULL) {
		state_save_abort(o->save);
		o->save = NULL;
	}
}

static void
run_until(struct event_base *base, const int *a, const int *b)
{
	while (!*a || (b != NULL && !*b))
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
}

static void
make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static struct state_header
ident(const char *uuid, uint64_t generation, uint64_t config_hash)
{
	struct state_header	h;

	memset(&h, 0, sizeof h);
	snprintf(h.vm_uuid, sizeof h.vm_uuid, "%s", uuid);
	h.generation = generation;
	h.config_hash = config_hash;
	return h;
}

/* Save `len` bytes of stream `seed`; abort_at != 0 aborts from progress. */
static int
save(struct fixture *fx, const struct state_header *id, uint64_t len,
    uint64_t seed, uint64_t abort_at, struct outcome *o)
{
	struct feeder	*f;
	int		 fds[2];

	memset(o, 0, sizeof *o);
	o->abort_at = abort_at;
	make_pipe(fds);
	f = feeder_new(fx->base, fds[1], len, seed);
	o->save = state_save_start(fx->base, fx->extent, fds[0], id,
	    outcome_progress, outcome_done, o);
	assert_non_null(o->save);
	assert_int_equal(o->done, 0);	/* never from inside start */
	run_until(fx->base, &o->done, &f->done);
	o->save = NULL;
	free(f);
	return o->result;
}

static int
restore(struct fixture *fx, const struct state_expect *expect, uint64_t seed,
    uint64_t close_at, struct outcome *o, uint64_t *received, int *mismatch)
{
	struct drainer	*d;
	int		 fds[2];

	memset(o, 0, sizeof *o);
	make_pipe(fds);
	d = drainer_new(fx->base, fds[0], seed);
	d->close_at = close_at;
	assert_non_null(state_restore_start(fx->base, fx->extent, fds[1],
	    expect, outcome_progress, outcome_done, o));
	assert_int_equal(o->done, 0);
	/* The drainer sees EOF: restore closes its end in every case. */
	run_until(fx->base, &o->done, &d->done);
	*received = d->received;
	*mismatch = d->mismatch;
	free(d);
	return o->result;
}

static int
header_read(struct fixture *fx, struct state_header *h)
{
	struct outcome	o;

	memset(&o, 0, sizeof o);
	state_header_read(fx->extent, outcome_done, &o);
	run_until(fx->base, &o.done, NULL);
	if (o.have_header)
		*h = o.header;
	return o.result;
}

static int
mark_consumed(struct fixture *fx)
{
	struct outcome	o;

	memset(&o, 0, sizeof o);
	state_mark_consumed(fx->extent, outcome_done, &o);
	run_until(fx->base, &o.done, NULL);
	return o.result;
}

/* Rewrite the header as h, with a valid header CRC. */
static void
header_write(struct fixture *fx, const struct state_header *h)
{
	uint8_t	block[STATE_HEADER_SIZE];

	state_header_encode(h, block);
	assert_int_equal(blockdev_write_sync(fx->extent, 0, block,
	    sizeof block, 0), 0);
}

/* A CRC of the whole backing file: "unchanged" means the same value. */
static uint32_t
file_digest(struct fixture *fx)
{
	uint8_t		*buf = malloc(MiB);
	uint64_t	 offset;
	uLong		 crc = crc32(0, NULL, 0);

	assert_non_null(buf);
	for (offset = 0; offset < fx->file->size; offset += MiB) {
		assert_int_equal(blockdev_read_sync(fx->file, offset, buf,
		    MiB), 0);
		crc = crc32(crc, buf, (uInt)MiB);
	}
	free(buf);
	return (uint32_t)crc;
}

/* The file around the extent is never written. */
static void
assert_guards_zero(struct fixture *fx)
{
	uint8_t		*buf = malloc(MiB), *zero = calloc(1, MiB);

	assert_non_null(buf);
	assert_non_null(zero);
	assert_int_equal(blockdev_read_sync(fx->file, 0, buf, MiB), 0);
	assert_memory_equal(buf, zero, MiB);
	assert_int_equal(blockdev_read_sync(fx->file,
	    EXTENT_OFFSET + fx->extent_size, buf, MiB), 0);
	assert_memory_equal(buf, zero, MiB);
	free(buf);
	free(zero);
}

static void
fixture_open(struct fixture *fx, uint64_t extent_size)
{
	int	error;

	fx->extent_size = extent_size;
	unlink(fx->path);
	fx->file = file_create(fx->base, fx->path,
	    EXTENT_OFFSET + extent_size + GUARD, &error);
	assert_non_null(fx->file);
	fx->extent = extent_open(fx->file, EXTENT_OFFSET, extent_size,
	    "state");
	assert_non_null(fx->extent);
}

static void
fixture_close(struct fixture *fx)
{
	blockdev_close(fx->extent);
	blockdev_close(fx->file);
	fx->extent = fx->file = NULL;
	unlink(fx->path);
}

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof *fx);

	if (fx == NULL || (fx->base = ev_base_new()) == NULL)
		return -1;
	snprintf(fx->path, sizeof fx->path, "/tmp/haven-state-%ld",
	    (long)getpid());
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	if (fx->extent != NULL)
		fixture_close(fx);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static void
test_round_trip(void **state)
{
	static const uint64_t	 sizes[] = { 0, 1, 511, 512, 513, MiB,
	    4 * MiB + 3, 64 * MiB };
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 7, 0xc0ffee), h;
	struct state_expect	 expect = { uuid_a, 7, 0xc0ffee };
	struct outcome		 o;
	uint64_t		 received;
	size_t			 i;
	int			 mismatch;

	fixture_open(fx, 64 * MiB + STATE_HEADER_SIZE);
	/* A fresh (zeroed) extent holds no state. */
	assert_int_equal(header_read(fx, &h), MIGRATE_E_NO_STATE);
	assert_int_equal(restore(fx, &expect, 0, 0, &o, &received,
	    &mismatch), MIGRATE_E_NO_STATE);
	assert_false(o.have_header);
	assert_int_equal(received, 0);

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		assert_int_equal(save(fx, &id, sizes[i], i + 1, 0, &o), 0);
		assert_true(o.have_header);
		assert_int_equal(o.header.length, sizes[i]);
		assert_int_equal(o.header.flags, STATE_FLAG_COMPLETE);
		assert_int_equal(o.progress, sizes[i]);
		assert_int_equal(header_read(fx, &h), 0);
		assert_memory_equal(&h, &o.header, sizeof h);
		assert_string_equal(h.vm_uuid, uuid_a);
		assert_int_equal(h.generation, 7);
		assert_int_equal(h.config_hash, 0xc0ffee);
		assert_int_equal(state_header_check(&h, &expect), 0);

		assert_int_equal(restore(fx, &expect, i + 1, 0, &o, &received,
		    &mismatch), 0);
		assert_int_equal(received, sizes[i]);
		assert_false(mismatch);
		assert_int_equal(o.progress, sizes[i]);
		assert_int_equal(o.header.checksum, h.checksum);
	}
	assert_guards_zero(fx);
}

/* Every refusal: the right error, nothing delivered to QEMU, the extent
 * unchanged. */
static void
expect_refused(struct fixture *fx, const struct state_expect *expect,
    int error)
{
	struct outcome	o;
	uint64_t	received;
	uint32_t	before = file_digest(fx);
	int		mismatch;

	assert_int_equal(restore(fx, expect, 1, 0, &o, &received, &mismatch),
	    error);
	assert_int_equal(received, 0);
	assert_int_equal(file_digest(fx), before);
}

static void
test_refusals(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 5, 0x1234), h, good;
	struct state_expect	 expect = { uuid_a, 5, 0x1234 }, other;
	struct outcome		 o;
	uint64_t		 received, len = 3 * MiB + 5;
	uint32_t		 before;
	uint8_t			 block[STATE_HEADER_SIZE], byte;
	char			 text[256];
	int			 mismatch;

	fixture_open(fx, 8 * MiB);
	assert_int_equal(save(fx, &id, len, 42, 0, &o), 0);
	good = o.header;

	other = expect;
	other.vm_uuid = uuid_b;
	expect_refused(fx, &other, MIGRATE_E_WRONG_VM);
	state_explain(text, sizeof text, MIGRATE_E_WRONG_VM, &good, &other);
	assert_non_null(strstr(text, "another VM"));
	assert_non_null(strstr(text, uuid_a));

	other = expect;
	other.generation = 6;
	expect_refused(fx, &other, MIGRATE_E_GENERATION);
	state_explain(text, sizeof text, MIGRATE_E_GENERATION, &good, &other);
	assert_string_equal(text, "saved state is from generation 5 but "
	    "generation 6 was expected: refusing an older state");
	other.generation = 4;
	expect_refused(fx, &other, MIGRATE_E_GENERATION);
	state_explain(text, sizeof text, MIGRATE_E_GENERATION, &good, &other);
	assert_non_null(strstr(text, "refusing a newer state"));

	other = expect;
	other.config_hash = 0x1235;
	expect_refused(fx, &other, MIGRATE_E_CONFIG);

	/* The uuid compares case-insensitively (RFC 4122). */
	other = expect;
	other.vm_uuid = "0B7E1C2A-5D3F-4E8A-9C1B-2F3E4D5A6B7C";
	assert_int_equal(restore(fx, &other, 42, 0, &o, &received, &mismatch),
	    0);

	/* Incomplete. */
	h = good;
	h.flags = 0;
	header_write(fx, &h);
	expect_refused(fx, &expect, MIGRATE_E_INCOMPLETE);

	/* Consumed: only once, and idempotent. */
	header_write(fx, &good);
	assert_int_equal(restore(fx, &expect, 42, 0, &o, &received,
	    &mismatch), 0);
	assert_int_equal(mark_consumed(fx), 0);
	before = file_digest(fx);
	assert_int_equal(mark_consumed(fx), 0);
	assert_int_equal(file_digest(fx), before);
	expect_refused(fx, &expect, MIGRATE_E_CONSUMED);
	assert_int_equal(header_read(fx, &h), 0);
	assert_int_equal(h.flags, STATE_FLAG_COMPLETE | STATE_FLAG_CONSUMED);

	/* Length beyond what was written but inside the extent: the bytes
	 * go to QEMU, the checksum fails at the end. */
	h = good;
	h.length = len + MiB;
	header_write(fx, &h);
	before = file_digest(fx);
	assert_int_equal(restore(fx, &expect, 42, 0, &o, &received,
	    &mismatch), MIGRATE_E_CHECKSUM);
	assert_int_equal(received, len + MiB);
	assert_int_equal(file_digest(fx), before);
	/* Shorter than written: same. */
	h.length = len - 1;
	header_write(fx, &h);
	assert_int_equal(restore(fx, &expect, 42, 0, &o, &received,
	    &mismatch), MIGRATE_E_CHECKSUM);
	/* Beyond the extent: refused before a byte goes out. */
	h.length = fx->extent_size - STATE_HEADER_SIZE + 1;
	header_write(fx, &h);
	expect_refused(fx, &expect, MIGRATE_E_SIZE);
	h.length = fx->extent_size - STATE_HEADER_SIZE;
	header_write(fx, &h);
	assert_int_equal(restore(fx, &expect, 42, 0, &o, &received,
	    &mismatch), MIGRATE_E_CHECKSUM);

	/* One flipped stream byte: every byte delivered, then refused. */
	header_write(fx, &good);
	assert_int_equal(blockdev_read_sync(fx->extent, STATE_HEADER_SIZE +
	    2 * MiB, block, 512), 0);
	block[77] ^= 0x10;
	assert_int_equal(blockdev_write_sync(fx->extent, STATE_HEADER_SIZE +
	    2 * MiB, block, 512, 0), 0);
	before = file_digest(fx);
	assert_int_equal(restore(fx, &expect, 42, 0, &o, &received,
	    &mismatch), MIGRATE_E_CHECKSUM);
	assert_int_equal(received, len);
	assert_true(mismatch);
	assert_int_equal(file_digest(fx), before);
	state_explain(text, sizeof text, MIGRATE_E_CHECKSUM, &o.header,
	    &expect);
	assert_string_equal(text, "saved state fails its checksum: refusing "
	    "to resume a corrupt VM");

	/* A damaged header: flipped byte, unknown version, zeroed. */
	state_header_encode(&good, block);
	block[60] ^= 1;
	assert_int_equal(blockdev_write_sync(fx->extent, 0, block,
	    sizeof block, 0), 0);
	expect_refused(fx, &expect, MIGRATE_E_HEADER);
	state_header_encode(&good, block);
	byte = block[8];
	block[8] = 2;
	assert_int_equal(state_header_decode(block, fx->extent_size, &h),
	    MIGRATE_E_VERSION);
	block[8] = byte;
	assert_int_equal(state_header_decode(block, fx->extent_size, &h), 0);
	assert_int_equal(state_header_decode(block, STATE_HEADER_SIZE - 512,
	    &h), MIGRATE_E_SIZE);
	memset(block, 0, sizeof block);
	assert_int_equal(blockdev_write_sync(fx->extent, 0, block,
	    sizeof block, 0), 0);
	expect_refused(fx, &expect, MIGRATE_E_NO_STATE);
	assert_int_equal(mark_consumed(fx), MIGRATE_E_NO_STATE);
	assert_guards_zero(fx);
}

/* A window onto the extent whose stream writes fail after a number of
 * them succeeded: a LUN that goes away in the middle of a save. */
struct fault_dev {
	struct blockdev	 dev;
	struct blockdev	*parent;
	unsigned	 good_writes;	/* stream writes that succeed */
	unsigned	 writes;
	char		 trace[128];	/* submissions upper, completions lower */
	size_t		 ntrace;
};

/* Header writes: M incomplete and C complete with FUA, H incomplete and
 * K complete without; D: stream, F: flush. */
struct fault_op {
	struct fault_dev	*f;
	char			 kind;
	blockdev_cb		 cb;
	void			*arg;
};

static void
fault_note(struct fault_dev *f, char c)
{
	if (f->ntrace + 1 < sizeof f->trace)
		f->trace[f->ntrace++] = c;
}

static void
fault_op_cb(int result, void *arg)
{
	struct fault_op	*op = arg;

	fault_note(op->f, (char)(op->kind - 'A' + 'a'));
	op->cb(result, op->arg);
	free(op);
}

static struct fault_op *
fault_op_new(struct fault_dev *f, char kind, blockdev_cb cb, void *arg)
{
	struct fault_op	*op = malloc(sizeof *op);

	assert_non_null(op);
	op->f = f;
	op->kind = kind;
	op->cb = cb;
	op->arg = arg;
	fault_note(f, kind);
	return op;
}

static void
fault_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct fault_dev	*f = dev->impl;

	blockdev_read(f->parent, offset, buf, len, cb, arg);
}

static void
fault_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct fault_dev	*f = dev->impl;
	struct fault_op		*op;
	const uint8_t		*p = buf;
	char			 kind = 'D';

	if (offset == 0)
		kind = (p[12] & STATE_FLAG_COMPLETE) ?
		    ((flags & BLOCKDEV_FUA) ? 'C' : 'K') :
		    ((flags & BLOCKDEV_FUA) ? 'M' : 'H');
	op = fault_op_new(f, kind, cb, arg);
	if (offset >= STATE_HEADER_SIZE && ++f->writes > f->good_writes) {
		blockdev_complete_later(dev, fault_op_cb, op, -EIO);
		return;
	}
	blockdev_write(f->parent, offset, buf, len, flags, fault_op_cb, op);
}

static void
fault_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct fault_dev	*f = dev->impl;

	blockdev_flush(f->parent, fault_op_cb, fault_op_new(f, 'F', cb, arg));
}

static void
fault_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct fault_dev	*f = dev->impl;

	blockdev_zero(f->parent, offset, len, flags, cb, arg);
}

static void
fault_close(struct blockdev *dev)
{
	blockdev_fini(dev);
}

static const struct blockdev_ops fault_ops = {
	.kind = "fault",
	.read = fault_read,
	.write = fault_write,
	.flush = fault_flush,
	.zero = fault_zero,
	.close = fault_close,
};

static void
assert_incomplete(struct fixture *fx, const struct state_expect *expect)
{
	struct state_header	h;

	assert_int_equal(header_read(fx, &h), 0);
	assert_int_equal(h.flags & STATE_FLAG_COMPLETE, 0);
	assert_int_equal(state_header_check(&h, expect), MIGRATE_E_INCOMPLETE);
}

static void
test_interrupted_save(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 3, 99);
	struct state_expect	 expect = { uuid_a, 3, 99 };
	struct fault_dev	 fault;
	struct blockdev		*extent;
	struct outcome		 o;
	uint64_t		 received;
	int			 mismatch;

	fixture_open(fx, 32 * MiB);

	/* A complete state, then a save aborted half-way: the old state
	 * is not complete any more, the new one never was. */
	assert_int_equal(save(fx, &id, 20 * MiB, 1, 0, &o), 0);
	assert_int_equal(save(fx, &id, 20 * MiB, 2, 10 * MiB, &o),
	    -ECANCELED);
	assert_true(o.progress >= 10 * MiB && o.progress < 20 * MiB);
	assert_incomplete(fx, &expect);
	assert_int_equal(restore(fx, &expect, 2, 0, &o, &received,
	    &mismatch), MIGRATE_E_INCOMPLETE);

	/* The LUN fails under a save: the error, and incomplete. */
	assert_int_equal(save(fx, &id, 20 * MiB, 1, 0, &o), 0);
	memset(&fault, 0, sizeof fault);
	assert_int_equal(blockdev_init(&fault.dev, &fault_ops, fx->base,
	    "fault"), 0);
	fault.parent = fx->extent;
	fault.dev.impl = &fault;
	fault.dev.size = fx->extent->size;
	fault.dev.block_size = fx->extent->block_size;
	fault.good_writes = 5;
	extent = fx->extent;
	fx->extent = &fault.dev;
	assert_int_equal(save(fx, &id, 20 * MiB, 3, 0, &o), -EIO);
	fx->extent = extent;
	blockdev_close(&fault.dev);
	assert_incomplete(fx, &expect);

	assert_memory_equal(fault.trace, "Mm", 2);
	assert_null(strchr(fault.trace, 'C'));
	assert_null(strchr(fault.trace, 'K'));

	/* A LUN that fails the very first stream write. */
	assert_int_equal(blockdev_init(&fault.dev, &fault_ops, fx->base,
	    "fault"), 0);
	fault.good_writes = fault.writes = 0;
	fault.ntrace = 0;
	memset(fault.trace, 0, sizeof fault.trace);
	fx->extent = &fault.dev;
	assert_int_equal(save(fx, &id, 3 * MiB, 3, 0, &o), -EIO);
	fx->extent = extent;
	blockdev_close(&fault.dev);
	assert_incomplete(fx, &expect);
	assert_guards_zero(fx);
}

/* The order on the wire: incomplete header durable before any stream
 * write, all stream writes done before the complete header is written,
 * and one flush after it (that makes both durable). */
static void
test_save_order(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 3, 99);
	struct state_expect	 expect = { uuid_a, 3, 99 };
	struct fault_dev	 trace;
	struct blockdev		*extent;
	struct outcome		 o;
	uint64_t		 received;
	size_t			 n, i, d = 0, dd = 0;
	int			 mismatch;

	fixture_open(fx, 32 * MiB);
	memset(&trace, 0, sizeof trace);
	assert_int_equal(blockdev_init(&trace.dev, &fault_ops, fx->base,
	    "trace"), 0);
	trace.parent = fx->extent;
	trace.dev.impl = &trace;
	trace.dev.size = fx->extent->size;
	trace.dev.block_size = fx->extent->block_size;
	trace.good_writes = UINT32_MAX;
	extent = fx->extent;
	fx->extent = &trace.dev;
	assert_int_equal(save(fx, &id, 10 * MiB + 1, 4, 0, &o), 0);
	fx->extent = extent;
	blockdev_close(&trace.dev);

	n = strlen(trace.trace);
	assert_true(n > 8);
	assert_memory_equal(trace.trace, "Mm", 2);
	assert_string_equal(trace.trace + n - 4, "KkFf");
	for (i = 2; i < n - 4; i++) {
		assert_true(trace.trace[i] == 'D' || trace.trace[i] == 'd');
		d += trace.trace[i] == 'D';
		dd += trace.trace[i] == 'd';
	}
	assert_int_equal(d, 11);
	assert_int_equal(dd, 11);
	assert_int_equal(restore(fx, &expect, 4, 0, &o, &received,
	    &mismatch), 0);
	assert_int_equal(received, 10 * MiB + 1);
	assert_false(mismatch);
	assert_guards_zero(fx);
}

static void
test_abort_idle(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 1, 1);
	struct state_save	*s;
	struct outcome		 o;
	int			 fds[2], i;

	fixture_open(fx, 4 * MiB);
	/* QEMU sends nothing; the save waits on the pipe, then is aborted
	 * with nothing in flight: done still comes from the loop. */
	memset(&o, 0, sizeof o);
	make_pipe(fds);
	s = state_save_start(fx->base, fx->extent, fds[0], &id, NULL,
	    outcome_done, &o);
	assert_non_null(s);
	for (i = 0; i < 5; i++)
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(o.done, 0);
	state_save_abort(s);
	assert_int_equal(o.done, 0);
	run_until(fx->base, &o.done, NULL);
	assert_int_equal(o.result, -ECANCELED);
	/* The read end is closed: QEMU's writes fail instead of blocking. */
	assert_int_equal(write(fds[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(fds[1]);

	/* Aborted right away, with the header write in flight. */
	memset(&o, 0, sizeof o);
	make_pipe(fds);
	s = state_save_start(fx->base, fx->extent, fds[0], &id, NULL,
	    outcome_done, &o);
	assert_non_null(s);
	state_save_abort(s);
	run_until(fx->base, &o.done, NULL);
	assert_int_equal(o.result, -ECANCELED);
	close(fds[1]);
	assert_incomplete(fx, &(struct state_expect){ uuid_a, 1, 1 });

	/* A malformed UUID is refused at once, and the pipe is closed. */
	make_pipe(fds);
	id = ident("not-a-uuid", 1, 1);
	assert_null(state_save_start(fx->base, fx->extent, fds[0], &id, NULL,
	    outcome_done, &o));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(write(fds[1], "x", 1), -1);
	close(fds[1]);
}

static void
test_too_big(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 2, 2);
	struct state_expect	 expect = { uuid_a, 2, 2 };
	struct outcome		 o;
	uint64_t		 received;
	int			 mismatch;

	fixture_open(fx, 2 * MiB + STATE_HEADER_SIZE);
	/* Exactly full fits. */
	assert_int_equal(save(fx, &id, 2 * MiB, 5, 0, &o), 0);
	assert_int_equal(restore(fx, &expect, 5, 0, &o, &received,
	    &mismatch), 0);
	assert_int_equal(received, 2 * MiB);
	/* One byte more does not, and leaves no complete state. */
	assert_int_equal(save(fx, &id, 2 * MiB + 1, 5, 0, &o),
	    MIGRATE_E_TOO_BIG);
	assert_incomplete(fx, &expect);
	assert_int_equal(save(fx, &id, 5 * MiB, 6, 0, &o), MIGRATE_E_TOO_BIG);
	assert_incomplete(fx, &expect);
	assert_guards_zero(fx);
}

static void
test_qemu_gone(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 2, 2);
	struct state_expect	 expect = { uuid_a, 2, 2 };
	struct outcome		 o;
	uint64_t		 received;
	int			 mismatch;

	fixture_open(fx, 16 * MiB);
	assert_int_equal(save(fx, &id, 12 * MiB, 8, 0, &o), 0);
	assert_int_equal(restore(fx, &expect, 8, 3 * MiB, &o, &received,
	    &mismatch), -EPIPE);
	assert_false(mismatch);
	/* The state stays restorable. */
	assert_int_equal(restore(fx, &expect, 8, 0, &o, &received,
	    &mismatch), 0);
	assert_int_equal(received, 12 * MiB);
}

static double
seconds(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not asserted: a figure to watch. Feeder and drainer share the loop with
 * the pipeline here, so this is a single-core lower bound. */
static void
test_throughput(void **state)
{
	struct fixture		*fx = *state;
	struct state_header	 id = ident(uuid_a, 1, 1);
	struct state_expect	 expect = { uuid_a, 1, 1 };
	struct outcome		 o;
	uint64_t		 len = 256 * MiB, received;
	double			 t0, t1, t2;
	int			 mismatch;

	fixture_open(fx, len + STATE_HEADER_SIZE);
	t0 = seconds();
	assert_int_equal(save(fx, &id, len, 77, 0, &o), 0);
	t1 = seconds();
	assert_int_equal(restore(fx, &expect, 77, 0, &o, &received,
	    &mismatch), 0);
	t2 = seconds();
	assert_int_equal(received, len);
	assert_false(mismatch);
	printf("state: 256 MiB save %.0f MiB/s (%.2f s), restore %.0f MiB/s "
	    "(%.2f s)\n", 256 / (t1 - t0), t1 - t0, 256 / (t2 - t1), t2 - t1);
}

/* The header codec on its own. */
static void
test_header_codec(void **state)
{
	struct state_header	h = ident(uuid_b, UINT64_MAX, 0x0123456789abcdef),
				back;
	uint8_t			block[STATE_HEADER_SIZE];
	char			text[256];

	h.length = 12345;
	h.checksum = 0xdeadbeef;
	h.flags = STATE_FLAG_COMPLETE;
	h.saved_at_us = 1700000000000000ULL;
	state_header_encode(&h, block);
	assert_memory_equal(block, "HVNSTATE\1\0\0\0\1\0\0\0", 16);
	assert_memory_equal(block + 16, uuid_b, 36);
	assert_int_equal(state_header_decode(block, 1 << 20, &back), 0);
	assert_memory_equal(&h, &back, sizeof h);
	/* Unknown flags and reserved bytes are corruption, even with a
	 * matching CRC. */
	h.flags = 0x4;
	state_header_encode(&h, block);
	assert_int_equal(state_header_decode(block, 1 << 20, &back),
	    MIGRATE_E_HEADER);
	h.flags = 0;
	memcpy(h.vm_uuid, "0b7e1c2a-5d3f-4e8a-9c1b_2f3e4d5a6b7c", 37);
	state_header_encode(&h, block);
	assert_int_equal(state_header_decode(block, 1 << 20, &back),
	    MIGRATE_E_HEADER);
	state_explain(text, sizeof text, MIGRATE_E_INCOMPLETE, NULL, NULL);
	assert_string_equal(text,
	    "saved state is incomplete (the save did not finish)");
	assert_string_equal(migrate_strerror(STORAGE_E_CORRUPT),
	    storage_strerror(STORAGE_E_CORRUPT));
	assert_string_equal(migrate_strerror(-EIO), strerror(EIO));
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_header_codec),
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_save, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_save_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort_idle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_qemu_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_throughput, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
