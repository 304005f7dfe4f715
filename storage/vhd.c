/*
 * VHD images (fixed and dynamic) on any block device, served as the raw
 * virtual disk through the blockdev ops: opening (every byte read from the
 * backing is untrusted and validated before use), reads, writes and the
 * allocation of dynamic blocks. The byte layout is in vhd_format.c; the
 * pitfalls we avoid are in platform.md §1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>

#include "common.h"
#include "storage.h"

/* A guest write piece waiting for its block to be allocated. */
struct vhd_piece {
	TAILQ_ENTRY(vhd_piece)	 entry;
	struct vhd_request	*req;
	uint64_t		 offset;	/* virtual */
	const uint8_t		*buf;
	size_t			 len;
	unsigned		 flags;
};
TAILQ_HEAD(vhd_pieces, vhd_piece);

/* One guest request, split into per-block pieces. */
struct vhd_request {
	struct vhd	*vhd;
	blockdev_cb	 cb;
	void		*arg;
	int		 pending;
	int		 result;
};

/* Allocation of one dynamic block; one runs at a time (§1.6.3). */
struct vhd_alloc {
	TAILQ_ENTRY(vhd_alloc)	 entry;
	struct vhd		*vhd;
	uint32_t		 block;
	uint64_t		 bitmap_offset;
	uint64_t		 new_end;
	int			 step;
	int			 pending;
	int			 result;
	struct vhd_pieces	 written;	/* data went with the block */
	struct vhd_pieces	 waiting;	/* joined late: reissued */
	uint8_t			 sector[VHD_SECTOR];
};

struct vhd {
	struct blockdev		 dev;
	struct blockdev		*backing;
	int			 writable;
	struct vhd_info		 info;
	uint8_t			 footer[VHD_FOOTER_SIZE];
	uint64_t		 data_offset;	/* of the dynamic header */
	uint64_t		 table_offset;
	uint32_t		 bitmap_size;
	uint32_t		*bat;		/* host order */
	uint64_t		 free_offset;	/* end of data = footer */
	uint8_t			*ones;		/* an all-ones bitmap */
	TAILQ_HEAD(, vhd_alloc)	 allocs;	/* first is running */
};

static const struct blockdev_ops vhd_fixed_ops;
static const struct blockdev_ops vhd_dynamic_ops;

/* ---- open ------------------------------------------------------------- */

struct vhd_opener {
	struct vhd	*vhd;
	vhd_open_cb	 cb;
	void		*arg;
	int		 step;
	uint8_t		 buf[VHD_HEADER_SIZE];
	uint8_t		 first_buf[8];	/* offset 0's cookie */
	int		 first_error;
	const char	*first_why;
	int		 not_vhd;	/* no footer anywhere */
	uint8_t		*batbuf;
	struct vhd_layout layout;
};

static void
vhd_free(struct vhd *v)
{
	free(v->bat);
	free(v->ones);
	free(v);
}

static void
vhd_open_finish(struct vhd_opener *o, int result, const char *why)
{
	struct vhd	*v = o->vhd;

	if (result != 0) {
		/* No VHD at all is an answer (disk create asks), not a
		 * warning; anything else is. */
		if (why != NULL && o->not_vhd)
			log_debug("%s: %s", v->backing->name, why);
		else if (why != NULL)
			log_warn("%s: %s", v->backing->name, why);
		vhd_free(v);
		v = NULL;
	}
	free(o->batbuf);
	o->cb(result, v != NULL ? &v->dev : NULL, o->arg);
	free(o);
}

static int
vhd_open_dev(struct vhd *v)
{
	const struct blockdev_ops *ops = v->info.type == VHD_TYPE_FIXED ?
	    &vhd_fixed_ops : &vhd_dynamic_ops;

	if (blockdev_init(&v->dev, ops, v->backing->base, v->backing->name) ==
	    -1)
		return -ENOMEM;
	v->dev.impl = v;
	v->dev.size = v->info.virtual_size;
	v->dev.block_size = v->backing->block_size;
	return 0;
}

static void
vhd_open_step(int result, void *arg)
{
	struct vhd_opener	*o = arg;
	struct vhd		*v = o->vhd;
	struct blockdev		*b = v->backing;
	struct vhd_layout	*l = &o->layout;
	struct vhd_scan		 scan;
	const char		*why = NULL;
	uint32_t		 i;

	if (result != 0) {
		vhd_open_finish(o, result, o->step == 99 ?
		    "backing is too small for a VHD or has sectors larger "
		    "than 512 bytes" : "cannot read the VHD metadata");
		return;
	}
	switch (o->step++) {
	case 0:
		/* Offset 0: the footer copy of a dynamic image, or data of
		 * a fixed one (which may look like anything). */
		o->first_error = vhd_footer_parse(o->buf, &v->info,
		    &o->first_why);
		if (o->first_error == 0 &&
		    v->info.type != VHD_TYPE_DYNAMIC) {
			o->first_error = STORAGE_E_CORRUPT;
			o->first_why = "footer copy at offset 0 is not a "
			    "dynamic disk";
		}
		if (memcmp(o->buf, "conectix", 8) != 0 ||
		    o->first_error != 0) {
			memcpy(o->first_buf, o->buf, 8);
			o->step = 10;
			blockdev_read(b, b->size - VHD_FOOTER_SIZE, o->buf,
			    VHD_FOOTER_SIZE, vhd_open_step, o);
			return;
		}
		memcpy(v->footer, o->buf, VHD_FOOTER_SIZE);
		v->data_offset = be64_get(o->buf + VHD_F_DATA_OFFSET);
		if (v->data_offset % VHD_SECTOR != 0 ||
		    v->data_offset < VHD_FOOTER_SIZE ||
		    v->data_offset > b->size ||
		    b->size - v->data_offset < VHD_HEADER_SIZE) {
			why = "dynamic header offset lies outside the image";
			result = STORAGE_E_CORRUPT;
			break;
		}
		blockdev_read(b, v->data_offset, o->buf, VHD_HEADER_SIZE,
		    vhd_open_step, o);
		return;
	case 1:
		result = vhd_header_parse(o->buf, &v->info, v->data_offset,
		    b->size, l, &why);
		if (result != 0)
			break;
		if ((o->batbuf = malloc(l->bat_bytes)) == NULL ||
		    (v->bat = calloc(l->entries, sizeof *v->bat)) == NULL ||
		    (v->ones = malloc(l->bitmap_size)) == NULL) {
			result = -ENOMEM;
			break;
		}
		blockdev_read(b, l->table_offset, o->batbuf, l->bat_bytes,
		    vhd_open_step, o);
		return;
	case 2:
		for (i = 0; i < l->entries; i++)
			v->bat[i] = be32_get(o->batbuf + (size_t)i * 4);
		if ((result = vhd_bat_scan(v->bat, l, b->size, &scan)) != 0)
			break;
		if (scan.out_of_range > 0) {
			why = "BAT points beyond the image or into its "
			    "metadata (image has been truncated?)";
			result = STORAGE_E_CORRUPT;
			break;
		}
		if (scan.overlaps > 0) {
			why = "BAT maps overlapping blocks";
			result = STORAGE_E_CORRUPT;
			break;
		}
		memset(v->ones, 0xff, l->bitmap_size);
		v->table_offset = l->table_offset;
		v->bitmap_size = l->bitmap_size;
		v->free_offset = scan.end;
		v->info.block_size = l->block_size;
		v->info.max_table_entries = l->entries;
		v->info.allocated_blocks = scan.allocated;
		v->info.end_offset = scan.end + VHD_FOOTER_SIZE;
		result = vhd_open_dev(v);
		break;
	case 10:
		/* The footer at the end: a fixed image. If that fails too,
		 * a footer-looking offset 0 was the better clue. */
		result = vhd_footer_parse(o->buf, &v->info, &why);
		if (result == 0 && v->info.type != VHD_TYPE_FIXED) {
			why = "dynamic VHD without its footer copy at offset 0";
			result = STORAGE_E_CORRUPT;
		}
		o->not_vhd = memcmp(o->buf, "conectix", 8) != 0 &&
		    memcmp(o->first_buf, "conectix", 8) != 0;
		if (result != 0 && o->first_error != 0 &&
		    memcmp(o->first_buf, "conectix", 8) == 0) {
			result = o->first_error;
			why = o->first_why;
		}
		if (result == 0 && v->info.virtual_size >
		    b->size - VHD_FOOTER_SIZE) {
			why = "fixed VHD is larger than its backing (image has "
			    "been truncated?)";
			result = STORAGE_E_CORRUPT;
		}
		if (result != 0)
			break;
		memcpy(v->footer, o->buf, VHD_FOOTER_SIZE);
		v->info.end_offset = v->info.virtual_size + VHD_FOOTER_SIZE;
		result = vhd_open_dev(v);
		break;
	}
	vhd_open_finish(o, result, why);
}

/*
 * Open the VHD on backing; cb gets a block device serving the virtual disk
 * (close it with blockdev_close; the backing stays open and must outlive
 * it). Never writes. Corrupt metadata gives STORAGE_E_CORRUPT, a
 * differencing disk STORAGE_E_UNSUPPORTED; the reason is logged.
 */
void
vhd_open(struct blockdev *backing, int writable, vhd_open_cb cb, void *arg)
{
	struct vhd_opener	*o;
	struct vhd		*v;

	if ((o = calloc(1, sizeof *o)) == NULL ||
	    (v = calloc(1, sizeof *v)) == NULL)
		abort();
	o->vhd = v;
	o->cb = cb;
	o->arg = arg;
	v->backing = backing;
	v->writable = writable;
	TAILQ_INIT(&v->allocs);
	if (backing->size < VHD_FOOTER_SIZE || backing->block_size >
	    VHD_SECTOR) {
		/* Too small to hold a footer, or a 4 KiB-native LUN. */
		o->step = 99;
		blockdev_complete_later(backing, vhd_open_step, o,
		    backing->size < VHD_FOOTER_SIZE ? STORAGE_E_CORRUPT :
		    STORAGE_E_UNSUPPORTED);
		return;
	}
	blockdev_read(backing, 0, o->buf, VHD_FOOTER_SIZE, vhd_open_step, o);
}

int
vhd_get_info(struct blockdev *dev, struct vhd_info *info)
{
	struct vhd	*v;

	if (dev->ops != &vhd_fixed_ops && dev->ops != &vhd_dynamic_ops)
		return -EINVAL;
	v = dev->impl;
	*info = v->info;
	if (v->info.type == VHD_TYPE_DYNAMIC)
		info->end_offset = v->free_offset + VHD_FOOTER_SIZE;
	return 0;
}

/* ---- fixed I/O: the data is the first virtual_size bytes -------------- */

static void
vhd_fixed_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	blockdev_read(v->backing, offset, buf, len, cb, arg);
}

static void
vhd_fixed_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	blockdev_write(v->backing, offset, buf, len, flags, cb, arg);
}

static void
vhd_fixed_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	blockdev_zero(v->backing, offset, len, flags, cb, arg);
}

/* Every completed write is already mapped (allocations finish before their
 * writes complete), so a flush is the backing's flush. */
static void
vhd_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	blockdev_flush(v->backing, cb, arg);
}

static void
vhd_close(struct blockdev *dev)
{
	struct vhd	*v = dev->impl;

	blockdev_fini(dev);
	vhd_free(v);
}

static const struct blockdev_ops vhd_fixed_ops = {
	.kind = "vhd-fixed",
	.read = vhd_fixed_read,
	.write = vhd_fixed_write,
	.flush = vhd_flush,
	.zero = vhd_fixed_zero,
	.close = vhd_close,
};

/* ---- dynamic I/O ------------------------------------------------------ */

static struct vhd_request *
vhd_request_new(struct vhd *v, blockdev_cb cb, void *arg)
{
	struct vhd_request	*r;

	if ((r = malloc(sizeof *r)) == NULL)
		abort();
	r->vhd = v;
	r->cb = cb;
	r->arg = arg;
	r->pending = 1;		/* the submitter's own reference */
	r->result = 0;
	return r;
}

/* A piece finished, from the loop. */
static void
vhd_request_piece_cb(int result, void *arg)
{
	struct vhd_request	*r = arg;

	if (result != 0 && r->result == 0)
		r->result = result;
	if (--r->pending == 0) {
		r->cb(r->result, r->arg);
		free(r);
	}
}

/* The submitter is done splitting: drop its reference, and if every piece
 * already finished, complete from the loop, never inside the submitter. */
static void
vhd_request_submitted(struct vhd_request *r)
{
	if (--r->pending == 0) {
		blockdev_complete_later(&r->vhd->dev, r->cb, r->arg, r->result);
		free(r);
	}
}

/* Backing offset of a virtual offset in an allocated block. */
static uint64_t
vhd_data_offset(const struct vhd *v, uint64_t offset)
{
	uint32_t	block = (uint32_t)(offset / v->info.block_size);

	return (uint64_t)v->bat[block] * VHD_SECTOR + v->bitmap_size +
	    offset % v->info.block_size;
}

static void
vhd_dynamic_read(struct blockdev *dev, uint64_t offset, void *buf,
    size_t len, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r = vhd_request_new(v, cb, arg);
	uint8_t			*p = buf;
	size_t			 chunk;
	uint32_t		 bs = v->info.block_size;

	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		if (v->bat[offset / bs] == VHD_UNALLOCATED) {
			memset(p, 0, chunk);
		} else {
			r->pending++;
			blockdev_read(v->backing, vhd_data_offset(v, offset), p,
			    chunk, vhd_request_piece_cb, r);
		}
		offset += chunk;
		p += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

static void vhd_alloc_next(struct vhd_alloc *);

static void
vhd_alloc_cb(int result, void *arg)
{
	struct vhd_alloc	*a = arg;

	if (result != 0 && a->result == 0)
		a->result = result;
	if (--a->pending == 0)
		vhd_alloc_next(a);
}

static void
vhd_alloc_start(struct vhd *v)
{
	struct vhd_alloc	*a = TAILQ_FIRST(&v->allocs);
	struct blockdev		*b = v->backing;
	uint64_t		 data;

	if (a == NULL)
		return;
	/* Data 4 KiB aligned, bitmap right before it (§1.6.6); the block
	 * must fit with the footer after it, and never wrap (§1.6.5). */
	data = vhd_round_up(v->free_offset + v->bitmap_size, VHD_DATA_ALIGN);
	a->bitmap_offset = data - v->bitmap_size;
	a->new_end = data + v->info.block_size;
	if (a->new_end + VHD_FOOTER_SIZE > b->size ||
	    a->bitmap_offset / VHD_SECTOR >= VHD_UNALLOCATED) {
		a->result = -ENOSPC;
		a->step = -1;
	}
	vhd_alloc_next(a);
}

static void vhd_write_piece(struct vhd *, struct vhd_request *, uint64_t,
    const uint8_t *, size_t, unsigned);

static void
vhd_alloc_done(struct vhd_alloc *a)
{
	struct vhd		*v = a->vhd;
	struct vhd_piece	*p;

	TAILQ_REMOVE(&v->allocs, a, entry);
	if (a->result == 0) {
		v->bat[a->block] = (uint32_t)(a->bitmap_offset / VHD_SECTOR);
		v->free_offset = a->new_end;
		v->info.allocated_blocks++;
	}
	while ((p = TAILQ_FIRST(&a->written)) != NULL) {
		TAILQ_REMOVE(&a->written, p, entry);
		vhd_request_piece_cb(a->result, p->req);
		free(p);
	}
	while ((p = TAILQ_FIRST(&a->waiting)) != NULL) {
		TAILQ_REMOVE(&a->waiting, p, entry);
		if (a->result != 0) {
			vhd_request_piece_cb(a->result, p->req);
		} else {
			/* Now mapped: an ordinary write, which takes its
			 * own reference before the piece drops its one. */
			vhd_write_piece(v, p->req, p->offset, p->buf, p->len,
			    p->flags);
			vhd_request_piece_cb(0, p->req);
		}
		free(p);
	}
	free(a);
	vhd_alloc_start(v);
}

/*
 * The allocation steps, in the order §1.6.1-2 and DESIGN §3 require: the
 * zeroed block, its data and its all-ones bitmap; flush; the footer at the
 * new end; the BAT sector; flush. Only then do the writes complete.
 */
static void
vhd_alloc_next(struct vhd_alloc *a)
{
	struct vhd		*v = a->vhd;
	struct blockdev		*b = v->backing;
	struct vhd_piece	*p;
	uint64_t		 data = a->bitmap_offset + v->bitmap_size;
	uint32_t		 first, i, entry;

	if (a->result != 0)
		a->step = -1;
	switch (a->step++) {
	case 0:
		a->pending = 2;
		blockdev_zero(b, data, v->info.block_size, 0, vhd_alloc_cb, a);
		blockdev_write(b, a->bitmap_offset, v->ones, v->bitmap_size, 0,
		    vhd_alloc_cb, a);
		return;
	case 1:
		/* After the zeroes, so the data lands on top of them. */
		TAILQ_CONCAT(&a->written, &a->waiting, entry);
		a->pending = 1;
		TAILQ_FOREACH(p, &a->written, entry) {
			a->pending++;
			blockdev_write(b, data + p->offset % v->info.block_size,
			    p->buf, p->len, 0, vhd_alloc_cb, a);
		}
		vhd_alloc_cb(0, a);
		return;
	case 2:
	case 5:
		a->pending = 1;
		blockdev_flush(b, vhd_alloc_cb, a);
		return;
	case 3:
		a->pending = 1;
		blockdev_write(b, a->new_end, v->footer, VHD_FOOTER_SIZE, 0,
		    vhd_alloc_cb, a);
		return;
	case 4:
		/* Read-modify-write of the BAT sector from memory; only
		 * this allocation runs, so the sector is ours. */
		first = a->block / (VHD_SECTOR / 4) * (VHD_SECTOR / 4);
		for (i = 0; i < VHD_SECTOR / 4; i++) {
			entry = first + i < v->info.max_table_entries ?
			    v->bat[first + i] : VHD_UNALLOCATED;
			if (first + i == a->block)
				entry = (uint32_t)(a->bitmap_offset /
				    VHD_SECTOR);
			be32_put(a->sector + i * 4, entry);
		}
		a->pending = 1;
		blockdev_write(b, v->table_offset + (uint64_t)first * 4,
		    a->sector, VHD_SECTOR, 0, vhd_alloc_cb, a);
		return;
	default:
		vhd_alloc_done(a);
		return;
	}
}

/* Write one piece inside one block: straight through if the block is
 * mapped, else with (or after) its allocation. */
static void
vhd_write_piece(struct vhd *v, struct vhd_request *r, uint64_t offset,
    const uint8_t *buf, size_t len, unsigned flags)
{
	uint32_t		 block = (uint32_t)(offset / v->info.block_size);
	struct vhd_alloc	*a;
	struct vhd_piece	*p;
	int			 idle;

	if (v->bat[block] != VHD_UNALLOCATED) {
		r->pending++;
		blockdev_write(v->backing, vhd_data_offset(v, offset), buf, len,
		    flags, vhd_request_piece_cb, r);
		return;
	}
	if ((p = calloc(1, sizeof *p)) == NULL)
		abort();
	p->req = r;
	p->offset = offset;
	p->buf = buf;
	p->len = len;
	p->flags = flags;
	r->pending++;
	TAILQ_FOREACH(a, &v->allocs, entry) {
		if (a->block == block) {
			TAILQ_INSERT_TAIL(&a->waiting, p, entry);
			return;
		}
	}
	if ((a = calloc(1, sizeof *a)) == NULL)
		abort();
	a->vhd = v;
	a->block = block;
	TAILQ_INIT(&a->written);
	TAILQ_INIT(&a->waiting);
	TAILQ_INSERT_TAIL(&a->waiting, p, entry);
	idle = TAILQ_EMPTY(&v->allocs);
	TAILQ_INSERT_TAIL(&v->allocs, a, entry);
	if (idle)
		vhd_alloc_start(v);
}

static void
vhd_dynamic_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r;
	const uint8_t		*p = buf;
	size_t			 chunk;
	uint32_t		 bs = v->info.block_size;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	r = vhd_request_new(v, cb, arg);
	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		vhd_write_piece(v, r, offset, p, chunk, flags);
		offset += chunk;
		p += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

/* Zeroes: unmapped blocks already read zero; mapped ones are zeroed in
 * place (the block stays mapped). */
static void
vhd_dynamic_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r;
	uint64_t		 chunk;
	uint32_t		 bs = v->info.block_size;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	r = vhd_request_new(v, cb, arg);
	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		if (v->bat[offset / bs] != VHD_UNALLOCATED) {
			r->pending++;
			blockdev_zero(v->backing, vhd_data_offset(v, offset),
			    chunk, flags, vhd_request_piece_cb, r);
		}
		offset += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

static const struct blockdev_ops vhd_dynamic_ops = {
	.kind = "vhd-dynamic",
	.read = vhd_dynamic_read,
	.write = vhd_dynamic_write,
	.flush = vhd_flush,
	.zero = vhd_dynamic_zero,
	.close = vhd_close,
};

/* ---- synchronous wrappers (CLI and tests) ----------------------------- */

struct vhd_sync {
	int		 done;
	int		 result;
	struct blockdev	*dev;
};

static void
vhd_sync_cb(int result, void *arg)
{
	struct vhd_sync	*s = arg;

	s->result = result;
	s->done = 1;
}

static void
vhd_sync_open_cb(int result, struct blockdev *dev, void *arg)
{
	struct vhd_sync	*s = arg;

	s->result = result;
	s->dev = dev;
	s->done = 1;
}

int
vhd_create_sync(struct blockdev *backing, enum vhd_type type, uint64_t size)
{
	struct vhd_sync	s = { 0, 0, NULL };

	vhd_create(backing, type, size, vhd_sync_cb, &s);
	if (storage_wait(backing->base, &s.done) == -1)
		return -EIO;
	return s.result;
}

int
vhd_open_sync(struct blockdev *backing, int writable, struct blockdev **out)
{
	struct vhd_sync	s = { 0, 0, NULL };

	*out = NULL;
	vhd_open(backing, writable, vhd_sync_open_cb, &s);
	if (storage_wait(backing->base, &s.done) == -1)
		return -EIO;
	*out = s.dev;
	return s.result;
}