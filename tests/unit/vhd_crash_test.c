/*
 * Crash simulation of dynamic VHD allocation (issue 19): a seeded workload
 * of allocating writes (sequential 1 MiB runs and scattered small writes,
 * some FUA), flushes and reads runs against a simulated SAN that completes
 * requests in random order; at a random completion the "crash" freezes
 * what would be on the LUN, and that image must open, check clean, read
 * zeroes wherever no write went (the backing starts as junk, as a reused
 * LUN does), and hold every acknowledged write: one whose FUA completed,
 * or that completed before a flush that completed.
 *
 * Two failure models, alternating by seed:
 *   kill   the host dies (Haven's failover case): every completed write
 *          is on the LUN, and any subset of those in flight;
 *   power  the SAN also loses its volatile cache: only what a completed
 *          flush covered is certain; of the writes completed after the
 *          last such flush any subset survives (in completion order), and
 *          of those in flight any subset.
 * Block sizes alternate too: the 2 MiB Haven makes, and 64 KiB (a foreign
 * image's, and hundreds of blocks: BAT writes over several sectors). A
 * write that did not complete may land in part, sector by sector. Each
 * seed crashes at a dozen points (at random and right after flushes and
 * metadata writes) while the run itself goes on.
 * HAVEN_TEST_SEED picks one seed; HAVEN_CRASH_SEEDS how many (default 32).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "storage.h"

#define MiB		(1ULL << 20)
#define DISK_SIZE	(40 * MiB)
#define PAGE		4096U
#define QD		8

/* ---- the simulated SAN ------------------------------------------------ */

enum sim_kind { SIM_WRITE, SIM_ZERO, SIM_FLUSH };

struct sim_op {
	TAILQ_ENTRY(sim_op)	 entry;
	enum sim_kind		 kind;
	uint64_t		 offset;
	size_t			 len;
	uint8_t			*data;		/* a copy (NULL: zeroes) */
	uint64_t		 seq;		/* completion order */
	uint64_t		 covers;	/* flush: completions before it */
	int			 fua;
	blockdev_cb		 cb;
	void			*arg;
};
TAILQ_HEAD(sim_ops, sim_op);

struct sim {
	struct blockdev	 dev;
	uint8_t		*view;		/* every completed write applied */
	uint8_t		*durable;	/* what completed flushes covered */
	struct sim_ops	 inflight;
	unsigned	 ninflight;
	struct sim_ops	 volatile_ops;	/* completed, not yet covered */
	uint64_t	 completed;	/* completions so far */
	uint64_t	 meta_end;	/* header and BAT end here */
	int		 interesting;	/* a flush or metadata write just
					 * completed */
	struct event	*tick;
	uint64_t	 rng;
	int		 manual;	/* the test calls sim_step itself */
};

static uint64_t
xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
sim_apply(uint8_t *media, const struct sim_op *op)
{
	if (op->kind == SIM_WRITE)
		memcpy(media + op->offset, op->data, op->len);
	else if (op->kind == SIM_ZERO)
		memset(media + op->offset, 0, op->len);
}

static void
sim_arm(struct sim *s)
{
	if (s->ninflight > 0 && !s->manual)
		event_active(s->tick, EV_TIMEOUT, 0);
}

/* Complete one request in flight, picked at random. */
static void
sim_step(struct sim *s)
{
	struct sim_op	*op, *v;
	unsigned	 pick;

	if (s->ninflight == 0)
		return;
	pick = (unsigned)(xs(&s->rng) % s->ninflight);
	TAILQ_FOREACH(op, &s->inflight, entry)
		if (pick-- == 0)
			break;
	TAILQ_REMOVE(&s->inflight, op, entry);
	s->ninflight--;
	op->seq = ++s->completed;
	if (op->kind == SIM_FLUSH || op->offset < s->meta_end)
		s->interesting = 1;
	if (op->kind == SIM_FLUSH) {
		/* Everything completed before it was submitted is durable. */
		while ((v = TAILQ_FIRST(&s->volatile_ops)) != NULL &&
		    v->seq <= op->covers) {
			TAILQ_REMOVE(&s->volatile_ops, v, entry);
			sim_apply(s->durable, v);
			free(v->data);
			free(v);
		}
	} else {
		sim_apply(s->view, op);
		if (op->fua)
			sim_apply(s->durable, op);
	}
	op->cb(0, op->arg);
	if (op->kind == SIM_FLUSH) {
		free(op);
	} else {
		TAILQ_INSERT_TAIL(&s->volatile_ops, op, entry);
	}
	sim_arm(s);
}

static void
sim_tick(evutil_socket_t fd, short what, void *arg)
{
	sim_step(arg);
}

/* Run what the loop has ready, without waiting. */
static void
drain(struct event_base *base)
{
	while (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void
sim_queue(struct sim *s, enum sim_kind kind, uint64_t offset, const void *buf,
    size_t len, blockdev_cb cb, void *arg)
{
	struct sim_op	*op = calloc(1, sizeof *op);

	assert_non_null(op);
	op->kind = kind;
	op->offset = offset;
	op->len = len;
	op->cb = cb;
	op->arg = arg;
	op->covers = s->completed;
	if (kind == SIM_WRITE) {
		op->data = malloc(len);
		memcpy(op->data, buf, len);
	}
	TAILQ_INSERT_TAIL(&s->inflight, op, entry);
	s->ninflight++;
	sim_arm(s);
}

static void
sim_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct sim	*s = dev->impl;

	memcpy(buf, s->view + offset, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
sim_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct sim	*s = dev->impl;

	sim_queue(s, SIM_WRITE, offset, buf, len, cb, arg);
	TAILQ_LAST(&s->inflight, sim_ops)->fua = (flags & BLOCKDEV_FUA) != 0;
}

static void
sim_zero(struct blockdev *dev, uint64_t offset, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	sim_queue(dev->impl, SIM_ZERO, offset, NULL, (size_t)len, cb, arg);
}

static void
sim_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	sim_queue(dev->impl, SIM_FLUSH, 0, NULL, 0, cb, arg);
}

static void
sim_close(struct blockdev *dev)
{
	blockdev_fini(dev);
}

static const struct blockdev_ops sim_ops = {
	.kind = "sim",
	.read = sim_read,
	.write = sim_write,
	.flush = sim_flush,
	.zero = sim_zero,
	.close = sim_close,
};

/* Half of the time all of op, else some of its sectors (only a sector is
 * written atomically). */
static void
sim_apply_some(uint8_t *media, const struct sim_op *op, uint64_t *rng)
{
	struct sim_op	sector = *op;
	size_t		i;

	if (op->kind == SIM_FLUSH)
		return;
	if (op->len <= 512 || xs(rng) % 2 == 0) {
		sim_apply(media, op);
		return;
	}
	sector.len = 512;
	for (i = 0; i < op->len; i += 512) {
		if (xs(rng) % 2 != 0)
			continue;
		sector.offset = op->offset + i;
		sector.data = op->data != NULL ? op->data + i : NULL;
		sim_apply(media, &sector);
	}
}

/* What the LUN holds after a crash now, under the failure model. */
static void
sim_crash_image(struct sim *s, int power, uint64_t *rng, uint8_t *img)
{
	struct sim_op	*op;

	if (power) {
		memcpy(img, s->durable, s->dev.size);
		TAILQ_FOREACH(op, &s->volatile_ops, entry)
			if (xs(rng) % 2 == 0)
				sim_apply_some(img, op, rng);
	} else {
		memcpy(img, s->view, s->dev.size);
	}
	TAILQ_FOREACH(op, &s->inflight, entry)
		if (xs(rng) % 2 == 0)
			sim_apply_some(img, op, rng);
}

static void
sim_init(struct sim *s, struct event_base *base, uint64_t size, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(blockdev_init(&s->dev, &sim_ops, base, "sim"), 0);
	s->dev.impl = s;
	s->dev.size = size;
	s->dev.block_size = 512;
	s->view = malloc(size);
	s->durable = malloc(size);
	memset(s->view, 0xee, size);	/* a reused LUN's junk */
	memset(s->durable, 0xee, size);
	TAILQ_INIT(&s->inflight);
	TAILQ_INIT(&s->volatile_ops);
	s->tick = event_new(base, -1, 0, sim_tick, s);
	s->rng = seed * 0x9e3779b97f4a7c15ULL | 1;
}

static void
sim_fini(struct sim *s)
{
	struct sim_op	*op;

	while ((op = TAILQ_FIRST(&s->volatile_ops)) != NULL) {
		TAILQ_REMOVE(&s->volatile_ops, op, entry);
		free(op->data);
		free(op);
	}
	assert_true(TAILQ_EMPTY(&s->inflight));
	event_free(s->tick);
	blockdev_close(&s->dev);
	free(s->view);
	free(s->durable);
}

/* A plain in-memory device over a crash image, to open it afresh. */
static void
img_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	memcpy(buf, (uint8_t *)dev->impl + offset, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
img_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	memcpy((uint8_t *)dev->impl + offset, buf, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
img_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
img_zero(struct blockdev *dev, uint64_t offset, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	memset((uint8_t *)dev->impl + offset, 0, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static const struct blockdev_ops img_ops = {
	.kind = "image",
	.read = img_read,
	.write = img_write,
	.flush = img_flush,
	.zero = img_zero,
	.close = sim_close,
};

/* ---- the workload ----------------------------------------------------- */

enum wstate { W_PLANNED, W_ISSUED, W_COMPLETED, W_DURABLE };

struct run;

struct wr {
	struct run	*run;
	uint64_t	 offset;
	size_t		 len;
	unsigned	 flags;
	enum wstate	 state;
	enum wstate	 at_crash;	/* the state the crash froze */
	uint64_t	 done_at;	/* completion order among the test's */
	uint8_t		*buf;
};

struct run {
	struct event_base *base;
	struct blockdev	*vhd;
	struct wr	*w;
	size_t		 nw, next;
	unsigned	 inflight;
	uint64_t	 done;		/* the test's completions */
	uint64_t	 seed;
	int		 errors;
	struct flush_req {
		uint64_t covers;	/* the test's completions before it */
		int	 done;
	} flushes[4096];
	unsigned	 nflushes;
	uint64_t	 durable_upto;	/* completions a done flush covered */
	/* For the checks, made once: the disk as written, who wrote each
	 * sector (-1: none), and room for an image and a disk. */
	uint8_t		*exp;
	int		*owner;
	uint8_t		*img;
	uint8_t		*disk;
};

static void
pattern(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset)
{
	uint64_t	*p = (uint64_t *)buf, x;
	size_t		 i;

	for (i = 0; i < len / 8; i++) {
		x = seed ^ ((offset + i * 8) * 0x9e3779b97f4a7c15ULL);
		x ^= x >> 29;
		p[i] = x * 0xbf58476d1ce4e5b9ULL | 1;	/* never all zero */
	}
}

/* Distinct regions only (the result of every sector is defined): a few
 * sequential 1 MiB runs across blocks, and small writes (4-64 KiB)
 * scattered through the others; one in eight FUA. */
static void
plan(struct run *r, uint64_t size)
{
	uint64_t	 rng = r->seed, pages = size / PAGE, cur, at, n, i;
	uint8_t		*used = calloc(1, (size_t)pages);
	size_t		 cap = 512;
	int		 tries;

	r->w = calloc(cap, sizeof *r->w);
	r->nw = 0;
	/* One sequential run through the first third. */
	for (cur = 0; cur + MiB <= size / 3 && r->nw < 64; cur += MiB) {
		r->w[r->nw].offset = cur;
		r->w[r->nw].len = MiB;
		r->nw++;
		memset(used + cur / PAGE, 1, MiB / PAGE);
	}
	for (tries = 0; tries < 4000 && r->nw < cap; tries++) {
		n = 1 + xs(&rng) % 16;
		at = xs(&rng) % (pages - n);
		for (i = 0; i < n && !used[at + i]; i++)
			;
		if (i < n)
			continue;
		memset(used + at, 1, (size_t)n);
		r->w[r->nw].offset = at * PAGE;
		r->w[r->nw].len = (size_t)(n * PAGE);
		r->nw++;
		if (r->nw >= 200)
			break;
	}
	for (i = 0; i < r->nw; i++) {
		r->w[i].flags = xs(&rng) % 8 == 0 ? BLOCKDEV_FUA : 0;
		r->w[i].buf = malloc(r->w[i].len);
		pattern(r->w[i].buf, r->w[i].len, r->seed, r->w[i].offset);
	}
	free(used);
}

static void
write_cb(int result, void *arg)
{
	struct wr	*w = arg;
	struct run	*r = w->run;

	if (result != 0)
		r->errors++;
	r->inflight--;
	w->done_at = ++r->done;
	w->state = (w->flags & BLOCKDEV_FUA) ? W_DURABLE : W_COMPLETED;
}

static void
flush_cb(int result, void *arg)
{
	struct flush_req	*f = arg;

	assert_int_equal(result, 0);
	f->done = 1;
}

/* Mark what completed flushes made durable. */
static void
settle(struct run *r)
{
	unsigned	i;
	size_t		j;

	for (i = 0; i < r->nflushes; i++)
		if (r->flushes[i].done && r->flushes[i].covers >
		    r->durable_upto)
			r->durable_upto = r->flushes[i].covers;
	for (j = 0; j < r->nw; j++)
		if (r->w[j].state == W_COMPLETED &&
		    r->w[j].done_at <= r->durable_upto)
			r->w[j].state = W_DURABLE;
}

/* Issue what the queue depth allows, now and then a flush. */
static void
issue(struct run *r, uint64_t *rng)
{
	struct wr	*w;

	while (r->inflight < QD && r->next < r->nw) {
		w = &r->w[r->next++];
		w->state = W_ISSUED;
		w->run = r;
		r->inflight++;
		blockdev_write(r->vhd, w->offset, w->buf, w->len, w->flags,
		    write_cb, w);
		if (xs(rng) % 6 == 0 && r->nflushes < 4096) {
			r->flushes[r->nflushes].covers = r->done;
			blockdev_flush(r->vhd, flush_cb,
			    &r->flushes[r->nflushes++]);
		}
	}
}

/* Every sector: an acknowledged write's data, a write's data or zeroes if
 * it was not acknowledged, zeroes where nothing was written. */
static void
verify(uint8_t *img, uint64_t backing, struct run *r, const char *what)
{
	struct event_base	*base = event_base_new();
	struct blockdev		 dev, *v;
	struct vhd_check_report	 rep = { 0 };
	uint8_t			 zero[512], *disk = r->disk, *exp = r->exp;
	uint64_t		 at, size;
	size_t			 i;

	memset(zero, 0, sizeof zero);
	memset(&dev, 0, sizeof dev);
	assert_int_equal(blockdev_init(&dev, &img_ops, base, "crash"), 0);
	dev.impl = img;
	dev.size = backing;
	dev.block_size = 512;
	assert_int_equal(vhd_check_sync(&dev, 0, &rep), 0);
	if (rep.problems != 0)
		fail_msg("seed %llu, %s: the image has %u problems",
		    (unsigned long long)r->seed, what, rep.problems);
	if (vhd_open_sync(&dev, 0, &v) != 0)
		fail_msg("seed %llu, %s: the image does not open",
		    (unsigned long long)r->seed, what);
	size = v->size;
	assert_true(size <= DISK_SIZE + 2 * MiB);
	assert_int_equal(blockdev_read_sync(v, 0, disk, size), 0);
	blockdev_close(v);
	blockdev_close(&dev);
	event_base_free(base);
	for (at = 0; at < size; at += 512) {
		if (memcmp(disk + at, exp + at, 512) == 0)
			continue;
		i = (size_t)r->owner[at / 512];
		if (r->owner[at / 512] == -1)
			fail_msg("seed %llu, %s: sector at %llu was never "
			    "written and is not zero (byte 0x%02x)",
			    (unsigned long long)r->seed, what,
			    (unsigned long long)at, disk[at]);
		if (r->w[i].at_crash != W_DURABLE &&
		    memcmp(disk + at, zero, 512) == 0)
			continue;
		fail_msg("seed %llu, %s: sector at %llu of write %zu (at %llu, "
		    "%zu bytes, state %d) holds neither its data nor %s "
		    "(first bytes %02x %02x)", (unsigned long long)r->seed,
		    what, (unsigned long long)at, i,
		    (unsigned long long)r->w[i].offset, r->w[i].len,
		    r->w[i].at_crash, r->w[i].at_crash == W_DURABLE ? "(it "
		    "was acknowledged)" : "zeroes", disk[at], disk[at + 1]);
	}
}

/* Crash now: the image under the failure model, checked at once. */
static void
crash_here(struct sim *sim, struct run *r, uint64_t backing, int power,
    uint64_t *rng, unsigned n)
{
	char	 what[64];
	size_t	 i;

	settle(r);
	for (i = 0; i < r->nw; i++)
		r->w[i].at_crash = r->w[i].state;
	sim_crash_image(sim, power, rng, r->img);
	snprintf(what, sizeof what, "%s crash %u at completion %llu",
	    power ? "power" : "kill", n, (unsigned long long)sim->completed);
	verify(r->img, backing, r, what);
}

/*
 * The image vhd_create made, with blocks of bs bytes instead (a foreign
 * VHD's, and many blocks for a small disk: BAT writes over several
 * sectors): header patched, a larger BAT, the footer after it.
 */
static uint64_t
reblock(struct sim *s, uint32_t bs)
{
	uint8_t		*m = s->view, *hdr = m + 512;
	uint64_t	 vsize = be64_get(m + 48), entries, bat;

	entries = (vsize + bs - 1) / bs;
	bat = (entries * 4 + 511) / 512 * 512;
	be32_put(hdr + 28, (uint32_t)entries);
	be32_put(hdr + 32, bs);
	vhd_set_checksum(hdr, 1024, 36);
	memset(m + 1536, 0xff, bat);
	memcpy(m + 1536 + bat, m, 512);
	memcpy(s->durable, s->view, 1536 + bat + 512);
	return 1536 + bat;
}

static void
crash_one(struct event_base *base, uint64_t seed)
{
	struct sim	 sim;
	struct run	 r;
	uint64_t	 backing, rng = seed * 0xd1b54a32d192ed03ULL | 1;
	uint32_t	 bs = seed & 2 ? 64 * 1024 : 2 * MiB;
	int		 power = (int)(seed & 1);
	unsigned	 crashes = 0, meta = 0, random = 0;
	size_t		 i, j;

	/* Room for every block of the smaller size, heads included. */
	backing = vhd_max_backing_size(VHD_TYPE_DYNAMIC, DISK_SIZE,
	    VHD_SIZE_ROUNDED) +
	    DISK_SIZE / (64 * 1024) * 8192;
	sim_init(&sim, base, backing, seed);
	assert_int_equal(vhd_create_sync(&sim.dev, VHD_TYPE_DYNAMIC, DISK_SIZE,
	    VHD_SIZE_ROUNDED),
	    0);
	assert_int_equal(blockdev_flush_sync(&sim.dev), 0);
	sim.meta_end = bs == 2 * MiB ? 4096 : reblock(&sim, bs);
	memset(&r, 0, sizeof r);
	r.base = base;
	r.seed = seed;
	assert_int_equal(vhd_open_sync(&sim.dev, 1, &r.vhd), 0);
	plan(&r, DISK_SIZE);
	r.exp = calloc(1, DISK_SIZE + 2 * MiB);
	r.disk = malloc(DISK_SIZE + 2 * MiB);
	r.img = malloc(backing);
	r.owner = malloc((DISK_SIZE + 2 * MiB) / 512 * sizeof *r.owner);
	for (i = 0; i < (DISK_SIZE + 2 * MiB) / 512; i++)
		r.owner[i] = -1;
	for (i = 0; i < r.nw; i++) {
		memcpy(r.exp + r.w[i].offset, r.w[i].buf, r.w[i].len);
		for (j = 0; j < r.w[i].len / 512; j++)
			r.owner[r.w[i].offset / 512 + j] = (int)i;
	}
	/* Crashes at random completions and right after flushes and BAT
	 * writes, each image checked; the run itself goes on. */
	sim.manual = 1;
	issue(&r, &rng);
	drain(base);
	while (r.next < r.nw || r.inflight > 0) {
		if (sim.ninflight == 0) {
			event_base_loop(base, EVLOOP_ONCE);
			continue;
		}
		sim.interesting = 0;
		sim_step(&sim);
		drain(base);
		settle(&r);
		issue(&r, &rng);
		drain(base);
		if ((sim.interesting && meta < 16 && xs(&rng) % 2 == 0 &&
		    ++meta) || (xs(&rng) % 48 == 0 && random < 4 && ++random))
			crash_here(&sim, &r, backing, power, &rng, ++crashes);
	}
	sim.manual = 0;
	sim_arm(&sim);
	/* Past the workload: its last flush and the close, as a client
	 * that did not crash would; then one more crash. */
	assert_int_equal(blockdev_flush_sync(r.vhd), 0);
	crash_here(&sim, &r, backing, power, &rng, ++crashes);
	for (i = 0; i < r.nflushes; i++)
		while (!r.flushes[i].done)
			event_base_loop(base, EVLOOP_ONCE);
	blockdev_close(r.vhd);
	while (sim.ninflight > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(r.errors, 0);
	/* The run as it ended (no crash) holds everything. */
	for (i = 0; i < r.nw; i++)
		r.w[i].at_crash = W_DURABLE;
	verify(sim.view, backing, &r, "the end");
	for (i = 0; i < r.nw; i++)
		free(r.w[i].buf);
	free(r.w);
	free(r.exp);
	free(r.disk);
	free(r.img);
	free(r.owner);
	sim_fini(&sim);
}

static void
test_crash(void **state)
{
	struct event_base	*base = *state;
	const char		*one = getenv("HAVEN_TEST_SEED");
	const char		*many = getenv("HAVEN_CRASH_SEEDS");
	uint64_t		 n = many != NULL ? strtoull(many, NULL, 0) : 32;
	uint64_t		 seed;

	if (one != NULL) {
		crash_one(base, strtoull(one, NULL, 0));
		return;
	}
	for (seed = 1; seed <= n; seed++)
		crash_one(base, seed);
	print_message("vhd crash: %llu seeds (HAVEN_TEST_SEED=N for one)\n",
	    (unsigned long long)n);
}

static int
setup(void **state)
{
	*state = event_base_new();
	return 0;
}

static int
teardown(void **state)
{
	event_base_free(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

