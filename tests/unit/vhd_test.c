/*
 * Unit tests of the VHD layer on real files: qemu-img's size rounding,
 * create and open, a seeded random differential test against a raw
 * reference, concurrent allocation, group commit of new blocks, corrupt
 * images refused without a byte written, ENOSPC on a full backing, and
 * check/repair.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "storage.h"

#define MiB	(1ULL << 20)

static char	path[64];

static int
setup(void **state)
{
	snprintf(path, sizeof path, "/tmp/haven-vhd-%ld", (long)getpid());
	unlink(path);
	*state = event_base_new();
	return 0;
}

static int
teardown(void **state)
{
	unlink(path);
	event_base_free(*state);
	return 0;
}

static uint8_t *
slurp(size_t *len)
{
	FILE	*fp = fopen(path, "rb");
	uint8_t	*buf;
	long	 n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void
spit(const uint8_t *buf, size_t len)
{
	FILE	*fp = fopen(path, "wb");

	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/* Recompute a footer (512 bytes, field at 64) or header checksum. */
static void
fix_checksum(uint8_t *p, size_t len, size_t field)
{
	uint32_t	sum = 0;
	size_t		i;

	memset(p + field, 0, 4);
	for (i = 0; i < len; i++)
		sum += p[i];
	sum = ~sum;
	p[field] = (uint8_t)(sum >> 24);
	p[field + 1] = (uint8_t)(sum >> 16);
	p[field + 2] = (uint8_t)(sum >> 8);
	p[field + 3] = (uint8_t)sum;
}

static void
test_round_size(void **state)
{
	static const struct {
		uint64_t	requested, size;
		uint16_t	c;
		uint8_t		h, s;
	} rows[] = {
		{ 1ULL << 30, 1073995776ULL, 2081, 16, 63 },
		{ 10ULL << 30, 10737893376ULL, 20806, 16, 63 },
		{ 32ULL << 30, 34361303040ULL, 16449, 16, 255 },
		{ 100ULL << 30, 107374632960ULL, 51401, 16, 255 },
		{ 127ULL << 30, 136365219840ULL, 65279, 16, 255 },
		{ 130ULL << 30, 130ULL << 30, 65535, 16, 255 },
		{ 2040ULL << 30, 2040ULL << 30, 65535, 16, 255 },
		{ 10000000, 10027008, 0, 0, 0 },	/* as qemu-img */
		{ 1 << 20, 1079296, 0, 0, 0 },
	};
	uint16_t	c;
	uint8_t		h, s;
	size_t		i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_int_equal(vhd_round_size(rows[i].requested, &c, &h, &s),
		    rows[i].size);
		assert_int_equal((uint64_t)c * h * s * 512 == rows[i].size ||
		    (c == 65535 && h == 16 && s == 255), 1);
		if (rows[i].c != 0) {
			assert_int_equal(c, rows[i].c);
			assert_int_equal(h, rows[i].h);
			assert_int_equal(s, rows[i].s);
		}
	}
	assert_int_equal(vhd_round_size(0, &c, &h, &s), 0);
	assert_int_equal(vhd_round_size((2040ULL << 30) + 512, &c, &h, &s), 0);
}

/* Exact sizes: a size on a geometry keeps it; any other gets the maximal
 * geometry, which every reader takes as "use current_size". */
static void
test_exact_size(void **state)
{
	uint16_t	c;
	uint8_t		h, s;

	(void)state;
	assert_int_equal(vhd_exact_size(1073995776ULL, &c, &h, &s),
	    1073995776ULL);
	assert_int_equal(c, 2081);
	assert_int_equal(h, 16);
	assert_int_equal(s, 63);
	assert_int_equal(vhd_exact_size(1ULL << 30, &c, &h, &s), 1ULL << 30);
	assert_int_equal((uint64_t)c * h * s, 65535ULL * 16 * 255);
	assert_int_equal(vhd_exact_size(9999873, &c, &h, &s), 10000384);
	assert_int_equal(c, 65535);
	assert_int_equal(vhd_exact_size(0, &c, &h, &s), 0);
	assert_int_equal(vhd_exact_size((2040ULL << 30) + 512, &c, &h, &s),
	    0);
}

/* A file holding a new VHD; returns the open VHD device. */
static struct blockdev *
make_vhd(struct event_base *base, enum vhd_type type, uint64_t size,
    uint64_t backing_size, struct blockdev **file)
{
	struct blockdev	*vhd;
	int		 error;

	if (backing_size == 0)
		backing_size = vhd_max_backing_size(type, size,
		    VHD_SIZE_ROUNDED);
	*file = file_create(base, path, backing_size, &error);
	assert_non_null(*file);
	assert_int_equal(vhd_create_sync(*file, type, size,
	    VHD_SIZE_ROUNDED), 0);
	assert_int_equal(vhd_open_sync(*file, 1, &vhd), 0);
	return vhd;
}

static void
test_create_open(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v, *e;
	struct vhd_info		 info;
	uint8_t			 buf[4096], back[4096];
	int			 error;

	/* Fixed, exactly sized: data then the footer. */
	v = make_vhd(base, VHD_TYPE_FIXED, 10000000, 0, &f);
	assert_int_equal(f->size, 10027008 + 512);
	assert_int_equal(v->size, 10027008);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_FIXED);
	assert_string_equal(info.creator, "hvn ");
	assert_int_equal(info.current_size, 10027008);
	assert_int_equal(vhd_get_info(f, &info), -EINVAL);
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, v->size - 4096, buf, 4096, 0),
	    0);
	assert_int_equal(blockdev_write_sync(v, v->size, buf, 512, 0), -ENOSPC);
	blockdev_close(v);
	blockdev_close(f);
	unlink(path);

	/* Dynamic: 4608 bytes of metadata for 1 GiB, like qemu-img. */
	v = make_vhd(base, VHD_TYPE_DYNAMIC, 1ULL << 30, 0, &f);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(info.virtual_size, 1073995776);
	assert_int_equal(info.block_size, 2 * MiB);
	assert_int_equal(info.max_table_entries, 513);
	assert_int_equal(info.allocated_blocks, 0);
	assert_int_equal(info.end_offset, 4608);
	assert_int_equal(blockdev_read_sync(v, 0, back, sizeof back), 0);
	memset(buf, 0, sizeof buf);
	assert_memory_equal(buf, back, sizeof back);
	memset(buf, 0xab, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, 5 * MiB, buf, 512, 0), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(info.allocated_blocks, 1);
	/* Data 4 KiB aligned: bitmap at 0x1e00, data 0x2000..0x202000. */
	assert_int_equal(info.end_offset, 0x202000 + 512);
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	/* Read-only open refuses writes. */
	assert_int_equal(vhd_open_sync(f, 0, &v), 0);
	assert_int_equal(blockdev_read_sync(v, 5 * MiB, back, 512), 0);
	assert_memory_equal(buf, back, 512);
	assert_int_equal(blockdev_write_sync(v, 0, buf, 512, 0), -EROFS);
	blockdev_close(v);
	blockdev_close(f);
	unlink(path);

	/* Fixed inside a larger extent: found by its copy at the end. */
	f = file_create(base, path, 64 * MiB, &error);
	e = extent_open(f, MiB, 32 * MiB, "disk");
	assert_int_equal(vhd_create_sync(e, VHD_TYPE_FIXED, 8 * MiB,
	    VHD_SIZE_ROUNDED), 0);
	assert_int_equal(vhd_open_sync(e, 1, &v), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_FIXED);
	assert_true(v->size >= 8 * MiB);
	blockdev_close(v);
	/* Too small a backing: refused. */
	assert_int_equal(vhd_create_sync(e, VHD_TYPE_FIXED, 32 * MiB,
	    VHD_SIZE_ROUNDED),
	    -ENOSPC);
	assert_int_equal(vhd_create_sync(e, VHD_TYPE_DYNAMIC, 3ULL << 40,
	    VHD_SIZE_ROUNDED),
	    -EINVAL);
	blockdev_close(e);
	blockdev_close(f);
}

struct pending {
	int	count;
	int	errors;
	int	submitting;
	int	ran_inside;
};

static void
pending_cb(int result, void *arg)
{
	struct pending	*p = arg;

	if (p->submitting)
		p->ran_inside = 1;
	if (result != 0)
		p->errors++;
	p->count--;
}

static void
pending_wait(struct event_base *base, struct pending *p)
{
	while (p->count > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(p->count, 0);
	assert_int_equal(p->errors, 0);
	assert_false(p->ran_inside);
}

static uint64_t	rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
compare_all(struct blockdev *v, const uint8_t *ref, uint64_t size)
{
	uint8_t		*buf = malloc(4 * MiB);
	uint64_t	 off, len;

	for (off = 0; off < size; off += len) {
		len = size - off < 4 * MiB ? size - off : 4 * MiB;
		assert_int_equal(blockdev_read_sync(v, off, buf, len), 0);
		assert_memory_equal(buf, ref + off, len);
	}
	free(buf);
}

/*
 * Batches of random writes (512 B..4 MiB, sector-aligned, not overlapping
 * within a batch so the result is defined) in flight at once, random reads
 * compared against the reference, then a full compare before and after
 * close and reopen.
 */
static void
differential(struct event_base *base, enum vhd_type type, uint64_t seed)
{
	const uint64_t		 want = 48 * MiB;
	struct blockdev		*f, *v;
	struct vhd_check_report	 rep = { 0 };
	struct pending		 p = { 0 };
	uint8_t			*ref, *bufs[8], *back;
	uint64_t		 size, offs[8], lens[8], off, len;
	int			 round, i, j, n, overlap;

	rng_state = seed;
	v = make_vhd(base, type, want, 0, &f);
	size = v->size;
	ref = calloc(1, size);
	back = malloc(4 * MiB);
	for (i = 0; i < 8; i++)
		bufs[i] = malloc(4 * MiB);
	for (round = 0; round < 40; round++) {
		n = 0;
		for (i = 0; i < 8; i++) {
			len = (rng() % 3 == 0 ? rng() % (4 * MiB / 512) :
			    rng() % 64) * 512 + 512;
			if (len > 4 * MiB)
				len = 4 * MiB;
			off = rng() % ((size - len) / 512 + 1) * 512;
			for (overlap = 0, j = 0; j < n; j++)
				overlap |= off < offs[j] + lens[j] &&
				    offs[j] < off + len;
			if (overlap)
				continue;
			offs[n] = off;
			lens[n] = len;
			memset(bufs[n], (int)(rng() & 0xff), len);
			bufs[n][0] = (uint8_t)round;	/* not all one byte */
			memcpy(ref + off, bufs[n], len);
			n++;
		}
		p.submitting = 1;
		for (i = 0; i < n; i++) {
			p.count++;
			blockdev_write(v, offs[i], bufs[i], lens[i],
			    rng() % 4 == 0 ? BLOCKDEV_FUA : 0, pending_cb, &p);
		}
		p.submitting = 0;
		pending_wait(base, &p);
		for (i = 0; i < 4; i++) {
			len = (rng() % (4 * MiB / 512)) * 512 + 512;
			if (len > 4 * MiB)
				len = 4 * MiB;
			off = rng() % ((size - len) / 512 + 1) * 512;
			assert_int_equal(blockdev_read_sync(v, off, back, len),
			    0);
			assert_memory_equal(back, ref + off, len);
		}
		if (round % 10 == 9)
			assert_int_equal(blockdev_flush_sync(v), 0);
	}
	compare_all(v, ref, size);
	blockdev_close(v);
	blockdev_close(f);
	f = file_open(base, path, 1, &n);
	assert_non_null(f);
	assert_int_equal(vhd_open_sync(f, 1, &v), 0);
	assert_int_equal(v->size, size);
	compare_all(v, ref, size);
	blockdev_close(v);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	blockdev_close(f);
	unlink(path);
	for (i = 0; i < 8; i++)
		free(bufs[i]);
	free(back);
	free(ref);
}

static uint64_t
test_seed(void)
{
	const char	*s = getenv("HAVEN_TEST_SEED");
	uint64_t	 seed = s != NULL ? strtoull(s, NULL, 0) : 0x5eed1234ULL;

	print_message("vhd differential seed 0x%llx (HAVEN_TEST_SEED)\n",
	    (unsigned long long)seed);
	return seed | 1;
}

static void
test_differential_fixed(void **state)
{
	differential(*state, VHD_TYPE_FIXED, test_seed());
}

static void
test_differential_dynamic(void **state)
{
	differential(*state, VHD_TYPE_DYNAMIC, test_seed());
}

/* Many writes into the same unallocated blocks at once, plus one spanning
 * three blocks: one allocation each, every byte where it belongs. */
static void
test_concurrent_allocation(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	struct vhd_info		 info;
	struct pending		 p = { 0 };
	uint8_t			*ref, *span, sectors[16][512];
	uint64_t		 size;
	int			 i;

	v = make_vhd(base, VHD_TYPE_DYNAMIC, 16 * MiB, 0, &f);
	size = v->size;
	ref = calloc(1, size);
	span = malloc(5 * MiB);
	memset(span, 0x77, 5 * MiB);
	p.submitting = 1;
	for (i = 0; i < 16; i++) {
		memset(sectors[i], i + 1, 512);
		memcpy(ref + (uint64_t)i * 8192 + 512, sectors[i], 512);
		p.count++;
		blockdev_write(v, (uint64_t)i * 8192 + 512, sectors[i], 512, 0,
		    pending_cb, &p);
	}
	/* From the middle of block 3 to the end of block 5. */
	memcpy(ref + 7 * MiB, span, 5 * MiB);
	p.count++;
	blockdev_write(v, 7 * MiB, span, 5 * MiB, 0, pending_cb, &p);
	/* And a second write into block 0 after all of that. */
	memset(sectors[0], 0xee, 512);
	memcpy(ref + 512, sectors[0], 512);
	p.submitting = 0;
	pending_wait(base, &p);
	assert_int_equal(blockdev_write_sync(v, 512, sectors[0], 512, 0), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(info.allocated_blocks, 4);	/* 0, 3, 4, 5 */
	compare_all(v, ref, size);
	/* Zeroing a mapped range reads back zero. */
	assert_int_equal(blockdev_zero_sync(v, 7 * MiB, MiB), 0);
	memset(ref + 7 * MiB, 0, MiB);
	compare_all(v, ref, size);
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	blockdev_close(f);
	free(span);
	free(ref);
}

/* Stale data on the backing (a reused LUN) never shows through a newly
 * allocated block: the parts not written read zero (§1.6.1). */
static void
test_stale_backing(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	uint8_t			*junk, *back, buf[512];
	uint64_t		 size = vhd_max_backing_size(VHD_TYPE_DYNAMIC,
	    8 * MiB, VHD_SIZE_ROUNDED);
	size_t			 i;
	int			 error;

	f = file_create(base, path, size, &error);
	junk = malloc(size);
	memset(junk, 0xee, size);
	assert_int_equal(blockdev_write_sync(f, 0, junk, size, 0), 0);
	assert_int_equal(vhd_create_sync(f, VHD_TYPE_DYNAMIC, 8 * MiB,
	    VHD_SIZE_ROUNDED), 0);
	assert_int_equal(vhd_open_sync(f, 1, &v), 0);
	memset(buf, 0x33, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, MiB, buf, 512, 0), 0);
	back = junk;
	assert_int_equal(blockdev_read_sync(v, 0, back, 4 * MiB), 0);
	for (i = 0; i < 4 * MiB; i++)
		assert_int_equal(back[i], i >= MiB && i < MiB + 512 ? 0x33 : 0);
	/* And once committed, as read back from the backing itself. */
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	assert_int_equal(vhd_open_sync(f, 0, &v), 0);
	memset(back, 0xee, 4 * MiB);
	assert_int_equal(blockdev_read_sync(v, 0, back, 4 * MiB), 0);
	for (i = 0; i < 4 * MiB; i++)
		assert_int_equal(back[i], i >= MiB && i < MiB + 512 ? 0x33 : 0);
	blockdev_close(v);
	blockdev_close(f);
	free(junk);
}

/* A dynamic VHD on a backing with room for two blocks: the third fails
 * with ENOSPC and nothing wraps or breaks the first two. */
static void
test_enospc(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	uint8_t			 buf[512], back[512];

	v = make_vhd(base, VHD_TYPE_DYNAMIC, 64 * MiB, 0x2000 + 2 * MiB +
	    0x1000 + 2 * MiB + 512, &f);
	memset(buf, 0x42, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, 0, buf, 512, 0), 0);
	assert_int_equal(blockdev_write_sync(v, 10 * MiB, buf, 512, 0), 0);
	assert_int_equal(blockdev_write_sync(v, 20 * MiB, buf, 512, 0),
	    -ENOSPC);
	assert_int_equal(blockdev_write_sync(v, 10 * MiB + 512, buf, 512, 0),
	    0);
	assert_int_equal(blockdev_read_sync(v, 20 * MiB, back, 512), 0);
	memset(buf, 0, sizeof buf);
	assert_memory_equal(back, buf, 512);
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	assert_int_equal(vhd_open_sync(f, 1, &v), 0);
	assert_int_equal(blockdev_read_sync(v, 10 * MiB, back, 512), 0);
	assert_int_equal(back[0], 0x42);
	blockdev_close(v);
	blockdev_close(f);
}

/* The blocks the BAT on disk maps, as a second reader sees them now. */
static uint32_t
on_disk_blocks(struct event_base *base)
{
	struct blockdev	*f, *v;
	struct vhd_info	 info;
	int		 error;

	f = file_open(base, path, 0, &error);
	assert_non_null(f);
	assert_int_equal(vhd_open_sync(f, 0, &v), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	blockdev_close(v);
	blockdev_close(f);
	return info.allocated_blocks;
}

static void
run_for_ms(struct event_base *base, long ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/*
 * Group commit: a write into a new block completes before the BAT on disk
 * maps it; reads see it and zeroes elsewhere; a flush (or a FUA write, or
 * the commit timer) puts it in the BAT, with the unwritten sectors zeroed
 * over stale backing bytes; writes into a block during its commit wait
 * for its zeroes and land; the image checks clean throughout.
 */
static void
test_group_commit(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	struct vhd_check_report	 rep = { 0 };
	struct pending		 p = { 0 };
	uint64_t		 size = vhd_max_backing_size(VHD_TYPE_DYNAMIC,
	    32 * MiB, VHD_SIZE_ROUNDED);
	uint8_t			*junk, *ref, a[4096], b[4096], cs[8][512];
	int			 error, i;

	f = file_create(base, path, size, &error);
	junk = malloc(size);
	memset(junk, 0xee, size);
	assert_int_equal(blockdev_write_sync(f, 0, junk, size, 0), 0);
	free(junk);
	assert_int_equal(vhd_create_sync(f, VHD_TYPE_DYNAMIC, 32 * MiB,
	    VHD_SIZE_ROUNDED), 0);
	assert_int_equal(vhd_open_sync(f, 1, &v), 0);
	ref = calloc(1, v->size);

	/* Two new blocks written: readable, not yet in the BAT on disk. */
	memset(a, 0xa1, sizeof a);
	memset(b, 0xb2, sizeof b);
	assert_int_equal(blockdev_write_sync(v, MiB, a, 512, 0), 0);
	assert_int_equal(blockdev_write_sync(v, 5 * MiB, b, 4096, 0), 0);
	memcpy(ref + MiB, a, 512);
	memcpy(ref + 5 * MiB, b, 4096);
	compare_all(v, ref, v->size);
	assert_int_equal(on_disk_blocks(base), 0);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(blockdev_flush_sync(v), 0);
	assert_int_equal(on_disk_blocks(base), 2);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	compare_all(v, ref, v->size);

	/* FUA into a new block: mapped on disk when it completes. */
	assert_int_equal(blockdev_write_sync(v, 7 * MiB, a, 4096,
	    BLOCKDEV_FUA), 0);
	memcpy(ref + 7 * MiB, a, 4096);
	assert_int_equal(on_disk_blocks(base), 3);

	/* No flush at all: the timer commits within a second or so. */
	assert_int_equal(blockdev_write_sync(v, 9 * MiB, b, 512, 0), 0);
	memcpy(ref + 9 * MiB, b, 512);
	assert_int_equal(on_disk_blocks(base), 3);
	run_for_ms(base, 1500);
	assert_int_equal(on_disk_blocks(base), 4);

	/* A block's writes while a flush commits it: half written before,
	 * then the flush and writes over both halves at once. */
	memset(a, 0xa1, sizeof a);
	assert_int_equal(blockdev_write_sync(v, 12 * MiB, a, 4096, 0), 0);
	memcpy(ref + 12 * MiB, a, 4096);
	p.submitting = 1;
	p.count++;
	blockdev_flush(v, pending_cb, &p);
	p.submitting = 0;
	for (i = 0; i < 8; i++) {
		memset(cs[i], 0x40 + i, 512);
		p.submitting = 1;
		p.count++;
		blockdev_write(v, 12 * MiB + (uint64_t)i * 131072 + 512, cs[i],
		    512, i % 3 == 0 ? BLOCKDEV_FUA : 0, pending_cb, &p);
		p.count++;
		blockdev_write(v, 13 * MiB + (uint64_t)i * 4096, cs[i], 512, 0,
		    pending_cb, &p);
		p.submitting = 0;
		memcpy(ref + 12 * MiB + (uint64_t)i * 131072 + 512, cs[i], 512);
		memcpy(ref + 13 * MiB + (uint64_t)i * 4096, cs[i], 512);
		/* Reads in between: a sector in flight may read either way,
		 * the rest as the reference. */
		assert_int_equal(blockdev_read_sync(v, 12 * MiB, a, 4096), 0);
		assert_memory_equal(a, ref + 12 * MiB, 512);
	}
	pending_wait(base, &p);
	compare_all(v, ref, v->size);
	assert_int_equal(blockdev_flush_sync(v), 0);
	assert_int_equal(on_disk_blocks(base), 5);
	blockdev_close(v);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(vhd_open_sync(f, 0, &v), 0);
	compare_all(v, ref, v->size);
	blockdev_close(v);
	blockdev_close(f);
	free(ref);
}

/* Open the file as a VHD, writable; returns the result and checks that
 * not one byte of the file changed. */
static int
open_untouched(struct event_base *base)
{
	struct blockdev	*f, *v = NULL;
	uint8_t		*before, *after;
	size_t		 n1, n2;
	int		 error;

	before = slurp(&n1);
	f = file_open(base, path, 1, &error);
	assert_non_null(f);
	error = vhd_open_sync(f, 1, &v);
	if (v != NULL)
		blockdev_close(v);
	blockdev_close(f);
	after = slurp(&n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);
	return error;
}

static void
test_corrupt(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	struct vhd_info		 info;
	uint8_t			*good, *img, buf[512];
	size_t			 len, bat;
	int			 error;

	v = make_vhd(base, VHD_TYPE_DYNAMIC, 8 * MiB, 0, &f);
	memset(buf, 0x11, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, 4 * MiB, buf, 512, 0), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	/* 5 BAT entries: BAT ends at 0x800, block at 0x1000-512. */
	assert_int_equal(info.end_offset, 0x1000 + 2 * MiB + 512);
	assert_int_equal(file_truncate(f, info.end_offset), 0);
	blockdev_close(f);
	good = slurp(&len);
	assert_int_equal(len, info.end_offset);
	img = malloc(len);
	assert_int_equal(open_untouched(base), 0);
	bat = 1536 + 2 * 4;	/* entry of block 2 */

	/* Bad footer checksum at 0 (and the fixed-image fallback fails). */
	memcpy(img, good, len);
	img[40] ^= 1;
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Bad header checksum. */
	memcpy(img, good, len);
	img[512 + 100] ^= 1;
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Block size not a power of two, checksum fixed. */
	memcpy(img, good, len);
	img[512 + 32 + 3] = 1;
	fix_checksum(img + 512, 1024, 36);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Too few BAT entries for the size. */
	memcpy(img, good, len);
	img[512 + 28 + 3] = 1;
	fix_checksum(img + 512, 1024, 36);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* BAT entry beyond the end. */
	memcpy(img, good, len);
	img[bat] = 0x00;
	img[bat + 1] = 0x10;
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Two entries mapping the same block. */
	memcpy(img, good, len);
	memcpy(img + 1536, img + bat, 4);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Truncated: the data block is cut off. */
	spit(good, len - 4096);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Differencing: valid but unsupported. */
	memcpy(img, good, len);
	img[63] = 4;
	fix_checksum(img, 512, 64);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_UNSUPPORTED);
	/* Size beyond 2040 GiB with max geometry. */
	memcpy(img, good, len);
	memset(img + 48, 0xff, 8);
	img[56] = 0xff;
	img[57] = 0xff;
	img[58] = 16;
	img[59] = 255;
	fix_checksum(img, 512, 64);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Not a VHD at all. */
	memset(img, 0, len);
	spit(img, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Fixed with a bad checksum. */
	unlink(path);
	v = make_vhd(base, VHD_TYPE_FIXED, MiB, 0, &f);
	blockdev_close(v);
	blockdev_close(f);
	free(good);
	good = slurp(&len);
	good[len - 512 + 40] ^= 1;
	spit(good, len);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	/* Fixed, truncated by a sector: no footer found. */
	good[len - 512 + 40] ^= 1;
	spit(good, len - 512);
	assert_int_equal(open_untouched(base), STORAGE_E_CORRUPT);
	(void)error;
	free(img);
	free(good);
}

struct findings {
	int	count;
	char	last[256];
};

static void
finding_cb(const char *text, int repaired, void *arg)
{
	struct findings	*fi = arg;

	fi->count++;
	snprintf(fi->last, sizeof fi->last, "%s", text);
}

static void
test_check_repair(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	struct findings		 fi = { 0 };
	struct vhd_check_report	 rep = { .problem = finding_cb, .arg = &fi };
	uint8_t			 buf[1024];
	int			 error;

	v = make_vhd(base, VHD_TYPE_DYNAMIC, 8 * MiB, 0, &f);
	memset(buf, 0x11, sizeof buf);
	assert_int_equal(blockdev_write_sync(v, 0, buf, 512, 0), 0);
	assert_int_equal(blockdev_flush_sync(v), 0);
	blockdev_close(v);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.type, VHD_TYPE_DYNAMIC);

	/* Trailing footer destroyed: found, repaired from the copy. */
	memset(buf, 0, 512);
	assert_int_equal(blockdev_write_sync(f, 0x1000 + 2 * MiB, buf, 512, 0),
	    0);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 1);
	assert_int_equal(rep.repaired, 0);
	assert_non_null(strstr(fi.last, "trailing footer"));
	assert_int_equal(vhd_check_sync(f, 1, &rep), 0);
	assert_int_equal(rep.repaired, 1);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);

	/* Header checksum off: fixed; footer copy destroyed: restored. */
	assert_int_equal(blockdev_read_sync(f, 512, buf, 1024), 0);
	buf[36] ^= 0x10;
	assert_int_equal(blockdev_write_sync(f, 512, buf, 1024, 0), 0);
	assert_int_equal(vhd_open_sync(f, 0, &v), STORAGE_E_CORRUPT);
	assert_int_equal(blockdev_read_sync(f, 0, buf, 512), 0);
	buf[100] ^= 1;
	assert_int_equal(blockdev_write_sync(f, 0, buf, 512, 0), 0);
	assert_int_equal(vhd_check_sync(f, 1, &rep), 0);
	assert_int_equal(rep.problems, 2);
	assert_int_equal(rep.repaired, 2);
	assert_int_equal(vhd_check_sync(f, 0, &rep), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(vhd_open_sync(f, 0, &v), 0);
	assert_int_equal(blockdev_read_sync(v, 0, buf, 512), 0);
	assert_int_equal(buf[0], 0x11);
	blockdev_close(v);

	/* A BAT entry beyond the end is reported and left alone. */
	assert_int_equal(blockdev_read_sync(f, 1536, buf, 512), 0);
	buf[4] = 0x10;
	buf[5] = 0;
	buf[6] = 0;
	buf[7] = 0;
	assert_int_equal(blockdev_write_sync(f, 1536, buf, 512, 0), 0);
	assert_int_equal(vhd_check_sync(f, 1, &rep), 0);
	assert_true(rep.problems >= 1);
	assert_true(rep.repaired < rep.problems);
	blockdev_close(f);

	/* Not a VHD. */
	unlink(path);
	f = file_create(base, path, MiB, &error);
	assert_int_equal(vhd_check_sync(f, 1, &rep), 0);
	assert_int_equal(rep.problems, 1);
	assert_int_equal(rep.type, 0);
	blockdev_close(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_size),
		cmocka_unit_test(test_exact_size),
		cmocka_unit_test_setup_teardown(test_create_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_differential_fixed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_differential_dynamic,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_allocation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_backing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_repair, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
