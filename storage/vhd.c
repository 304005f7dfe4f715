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

/*
 * Allocation (DESIGN §3, platform.md §1.6, docs/design-notes.md "VHD
 * allocation: group commit"). A write into an unallocated block maps it in
 * memory at once, at the end of the data, and goes straight to the
 * backing: nothing is zero-filled and nothing is flushed on its path, so
 * its reply does not wait for metadata. Such a block is "fresh": the BAT
 * on disk does not point at it yet, and it keeps a bitmap of the sectors
 * whose writes have completed; reads of the other sectors return zeroes.
 * A commit makes every fresh block durable at once, in two epochs:
 *   1. each block's head (a footer copy at the previous end, then its
 *      all-ones sector bitmap) and zeroes over every sector not written,
 *      the footer at the new end; SYNCHRONIZE CACHE;
 *   2. the BAT sectors that change, together; SYNCHRONIZE CACHE.
 * A flush (NBD FLUSH, and a FUA write into a fresh block) completes after
 * a commit that began after it; flushes that arrive while one runs share
 * the next (group commit). Without any flush, fresh blocks are committed
 * VHD_COMMIT_AFTER_MS after the first of them, or once VHD_COMMIT_BATCH
 * wait. A crash anywhere leaves the BAT on disk pointing only at blocks
 * whose every byte is data or zeroes, each followed by a footer copy, so
 * whichever BAT sectors landed, qemu-img and vhd_check read a whole VHD;
 * what a flush acknowledged is in it.
 */
#define VHD_COMMIT_AFTER_MS	1000
#define VHD_COMMIT_BATCH	256

enum vhd_fresh_state {
	VHD_FRESH_NEW,		/* written to; in no commit yet */
	VHD_FRESH_INIT,		/* in the commit: its head and zeroes */
	VHD_FRESH_READY,	/* in the commit: whole; BAT entry under way */
};

struct vhd_op;
TAILQ_HEAD(vhd_ops, vhd_op);

/* A block mapped in memory whose BAT entry is not on disk yet. */
struct vhd_fresh {
	TAILQ_ENTRY(vhd_fresh)	 entry;		/* v->fresh or c->blocks */
	uint32_t		 block;
	enum vhd_fresh_state	 state;
	uint64_t		 head;		/* previous end: a footer copy */
	uint64_t		 bitmap;	/* sector bitmap; data after it */
	uint64_t		 end;		/* past its data */
	unsigned		 inflight;	/* tracked writes at the backing */
	struct vhd_ops		 held;		/* wait for the commit's zeroes */
	uint8_t			 valid[];	/* sectors written, MSB first */
};
TAILQ_HEAD(vhd_fresh_list, vhd_fresh);

/* One guest request, split into per-block pieces. */
struct vhd_request {
	struct vhd	*vhd;
	blockdev_cb	 cb;
	void		*arg;
	int		 pending;
	int		 result;
};

/* A write or zeroing piece of a fresh block. */
struct vhd_op {
	TAILQ_ENTRY(vhd_op)	 entry;
	struct vhd		*vhd;
	struct vhd_request	*req;
	struct vhd_fresh	*fresh;	/* while tracked */
	uint64_t		 offset;	/* virtual */
	const uint8_t		*buf;		/* NULL: zeroes */
	size_t			 len;
	unsigned		 flags;
};

/* A flush waiting for a commit. */
struct vhd_waiter {
	TAILQ_ENTRY(vhd_waiter)	 entry;
	blockdev_cb		 cb;
	void			*arg;
};
TAILQ_HEAD(vhd_waiters, vhd_waiter);

struct vhd_commit {
	struct vhd		*vhd;
	struct vhd_fresh_list	 blocks;
	struct vhd_waiters	 waiters;
	unsigned		 busy;		/* blocks with writes in flight */
	int			 waiting;	/* for busy to reach 0 */
	int			 step;
	int			 pending;	/* I/O in flight */
	int			 result;
	uint64_t		 end;		/* the data's end after it */
	uint8_t			*buf;		/* heads, footer, BAT sectors */
};

/* A run of zeroes over a fresh block's unwritten sectors. */
struct vhd_zero_run {
	struct vhd_commit	*commit;
	struct vhd_fresh	*fresh;
	uint32_t		 first;		/* sector in the block */
	uint32_t		 count;
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
	uint32_t		*bat;		/* host order, as mapped in memory */
	uint64_t		 free_offset;	/* end of data, fresh included */
	struct vhd_fresh	**fresh_map;	/* by block; NULL: not fresh */
	struct vhd_fresh_list	 fresh;		/* NEW, in allocation order */
	unsigned		 nfresh;
	struct vhd_commit	*commit;	/* the one running */
	struct vhd_waiters	 flushes;	/* for the next commit */
	struct ev_timer		*timer;		/* commit without a flush */
	int			 closing;	/* freed when the commit ends */
};

static const struct blockdev_ops vhd_fixed_ops;
static const struct blockdev_ops vhd_dynamic_ops;
static void	vhd_commit_timer(void *);

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
	struct vhd_fresh	*f;

	while ((f = TAILQ_FIRST(&v->fresh)) != NULL) {
		TAILQ_REMOVE(&v->fresh, f, entry);
		free(f);
	}
	ev_timer_free(v->timer);
	free(v->fresh_map);
	free(v->bat);
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
	if (v->info.type == VHD_TYPE_DYNAMIC && v->writable &&
	    ((v->fresh_map = calloc(v->info.max_table_entries,
	    sizeof *v->fresh_map)) == NULL ||
	    (v->timer = ev_timer_new(v->backing->base, 0, 0, vhd_commit_timer,
	    v)) == NULL)) {
		blockdev_fini(&v->dev);
		return -ENOMEM;
	}
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
		    (v->bat = calloc(l->entries, sizeof *v->bat)) == NULL) {
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
	TAILQ_INIT(&v->fresh);
	TAILQ_INIT(&v->flushes);
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

static void
vhd_fixed_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	blockdev_flush(v->backing, cb, arg);
}

/*
 * Close when nothing of the owner's is in flight, after a flush: fresh
 * blocks are committed by a flush, and whatever was written into them
 * since the last one is lost here (as a disk's write cache is at a power
 * loss). A commit of our own still under way frees the VHD when it ends.
 */
static void
vhd_close(struct blockdev *dev)
{
	struct vhd	*v = dev->impl;

	if (v->nfresh > 0)
		log_warn("%s: closed with %u new block%s never flushed; the "
		    "writes into %s are lost", v->backing->name, v->nfresh,
		    v->nfresh == 1 ? "" : "s", v->nfresh == 1 ? "it" : "them");
	if (v->timer != NULL)
		ev_timer_cancel(v->timer);
	if (v->commit != NULL) {
		v->closing = 1;
		return;
	}
	blockdev_fini(dev);
	vhd_free(v);
}

static const struct blockdev_ops vhd_fixed_ops = {
	.kind = "vhd-fixed",
	.read = vhd_fixed_read,
	.write = vhd_fixed_write,
	.flush = vhd_fixed_flush,
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

/* A piece that fails (or succeeds) without I/O, from the loop. */
static void
vhd_request_piece_later(struct vhd_request *r, int result)
{
	r->pending++;
	blockdev_complete_later(&r->vhd->dev, vhd_request_piece_cb, r, result);
}

/* Backing offset of a virtual offset in a mapped block. */
static uint64_t
vhd_data_offset(const struct vhd *v, uint64_t offset)
{
	uint32_t	block = (uint32_t)(offset / v->info.block_size);

	return (uint64_t)v->bat[block] * VHD_SECTOR + v->bitmap_size +
	    offset % v->info.block_size;
}

static struct vhd_fresh *
vhd_fresh_of(const struct vhd *v, uint32_t block)
{
	return v->fresh_map != NULL ? v->fresh_map[block] : NULL;
}

static int
vhd_valid_test(const struct vhd_fresh *f, uint32_t sector)
{
	return (f->valid[sector >> 3] & (0x80 >> (sector & 7))) != 0;
}

static void
vhd_valid_set(struct vhd_fresh *f, uint32_t first, uint32_t count, int on)
{
	uint32_t	i;

	for (i = first; i < first + count; i++) {
		if (on)
			f->valid[i >> 3] |= (uint8_t)(0x80 >> (i & 7));
		else
			f->valid[i >> 3] &= (uint8_t)~(0x80 >> (i & 7));
	}
}

/* The length of the run of sectors from first that are all valid (or all
 * not), at most max. */
static uint32_t
vhd_valid_run(const struct vhd_fresh *f, uint32_t first, uint32_t max,
    int valid)
{
	uint32_t	n = 0;

	while (n < max && vhd_valid_test(f, first + n) == valid)
		n++;
	return n;
}

static void
vhd_dynamic_read(struct blockdev *dev, uint64_t offset, void *buf,
    size_t len, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r = vhd_request_new(v, cb, arg);
	struct vhd_fresh	*f;
	uint8_t			*p = buf;
	size_t			 chunk;
	uint32_t		 bs = v->info.block_size, sector, n;

	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		f = vhd_fresh_of(v, (uint32_t)(offset / bs));
		if (v->bat[offset / bs] == VHD_UNALLOCATED) {
			memset(p, 0, chunk);
		} else if (f != NULL && f->state != VHD_FRESH_READY) {
			/* Only what was written; the rest is zeroes until
			 * the commit writes them. */
			sector = (uint32_t)(offset % bs / VHD_SECTOR);
			n = vhd_valid_run(f, sector, (uint32_t)(chunk /
			    VHD_SECTOR), vhd_valid_test(f, sector));
			chunk = (size_t)n * VHD_SECTOR;
			if (!vhd_valid_test(f, sector)) {
				memset(p, 0, chunk);
			} else {
				r->pending++;
				blockdev_read(v->backing, vhd_data_offset(v,
				    offset), p, chunk, vhd_request_piece_cb, r);
			}
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

/* ---- commit ----------------------------------------------------------- */

static void	vhd_commit_next(struct vhd_commit *);
static void	vhd_commit_start(struct vhd *);
static void	vhd_op_issue(struct vhd_op *);
static void	vhd_flush_wait(struct vhd *, blockdev_cb, void *);

static void
vhd_commit_io_cb(int result, void *arg)
{
	struct vhd_commit	*c = arg;

	if (result != 0 && c->result == 0)
		c->result = result;
	if (--c->pending == 0)
		vhd_commit_next(c);
}

static void
vhd_zero_run_cb(int result, void *arg)
{
	struct vhd_zero_run	*z = arg;
	struct vhd_commit	*c = z->commit;

	if (result == 0)
		vhd_valid_set(z->fresh, z->first, z->count, 1);
	free(z);
	vhd_commit_io_cb(result, c);
}

/* Nothing of the VHD's runs any more: start the next commit if flushes
 * wait or fresh blocks pile up (not right after a failed one: then the
 * timer paces the retries), else make sure the timer will. */
static void
vhd_commit_idle(struct vhd *v, int failed)
{
	if (!TAILQ_EMPTY(&v->flushes) ||
	    (v->nfresh >= VHD_COMMIT_BATCH && !failed))
		vhd_commit_start(v);
	else if (v->nfresh > 0 && v->timer != NULL)
		ev_timer_arm(v->timer, VHD_COMMIT_AFTER_MS);
}

static void
vhd_commit_timer(void *arg)
{
	struct vhd	*v = arg;

	if (v->commit == NULL && v->nfresh > 0)
		vhd_commit_start(v);
}

/* Let the writes held for the commit's zeroes go: to a whole block now,
 * or, if the commit failed before it was whole, tracked again. */
static void
vhd_fresh_release(struct vhd_fresh *f)
{
	struct vhd_op	*op;
	struct vhd_ops	 held;

	TAILQ_INIT(&held);
	TAILQ_CONCAT(&held, &f->held, entry);
	while ((op = TAILQ_FIRST(&held)) != NULL) {
		TAILQ_REMOVE(&held, op, entry);
		vhd_op_issue(op);
	}
}

/* The end: every block committed (or, after an error, fresh again for the
 * next commit), every waiting flush told. */
static void
vhd_commit_done(struct vhd_commit *c)
{
	struct vhd		*v = c->vhd;
	struct vhd_fresh	*f;
	struct vhd_waiter	*w;
	int			 result = c->result;

	v->commit = NULL;
	while ((f = TAILQ_LAST(&c->blocks, vhd_fresh_list)) != NULL) {
		TAILQ_REMOVE(&c->blocks, f, entry);
		if (c->result == 0 && !v->closing) {
			v->fresh_map[f->block] = NULL;
			free(f);
			continue;
		}
		/* Still fresh, at the head of the list, in order. */
		if (f->state == VHD_FRESH_READY)
			vhd_valid_set(f, 0, v->info.block_size / VHD_SECTOR, 1);
		f->state = VHD_FRESH_NEW;
		TAILQ_INSERT_HEAD(&v->fresh, f, entry);
		v->nfresh++;
		if (!v->closing)
			vhd_fresh_release(f);
	}
	if (c->result != 0)
		log_warn("%s: committing new blocks failed: %s",
		    v->backing->name, storage_strerror(c->result));
	while ((w = TAILQ_FIRST(&c->waiters)) != NULL) {
		TAILQ_REMOVE(&c->waiters, w, entry);
		if (!v->closing)
			w->cb(c->result, w->arg);
		free(w);
	}
	free(c->buf);
	free(c);
	if (v->closing) {
		while ((w = TAILQ_FIRST(&v->flushes)) != NULL) {
			TAILQ_REMOVE(&v->flushes, w, entry);
			free(w);
		}
		blockdev_fini(&v->dev);
		vhd_free(v);
		return;
	}
	vhd_commit_idle(v, result != 0);
}

/* A footer copy at head, zeroes, then the block's all-ones bitmap. */
static size_t
vhd_head_fill(const struct vhd *v, const struct vhd_fresh *f, uint8_t *p)
{
	size_t	len = (size_t)(f->bitmap + v->bitmap_size - f->head);

	memset(p, 0, len);
	memcpy(p, v->footer, VHD_FOOTER_SIZE);
	memset(p + (f->bitmap - f->head), 0xff, v->bitmap_size);
	return len;
}

/* Epoch 1: heads, zeroes over what was not written, the footer at the new
 * end; the flush follows when all of it completed. */
static void
vhd_commit_blocks(struct vhd_commit *c)
{
	struct vhd		*v = c->vhd;
	struct blockdev		*b = v->backing;
	struct vhd_fresh	*f;
	struct vhd_zero_run	*z;
	uint8_t			*p;
	size_t			 total = VHD_FOOTER_SIZE, len;
	uint32_t		 spb = v->info.block_size / VHD_SECTOR, s, n;

	TAILQ_FOREACH(f, &c->blocks, entry)
		total += (size_t)(f->bitmap + v->bitmap_size - f->head);
	if ((c->buf = malloc(total)) == NULL)
		abort();
	p = c->buf;
	c->pending = 1;
	TAILQ_FOREACH(f, &c->blocks, entry) {
		len = vhd_head_fill(v, f, p);
		c->pending++;
		blockdev_write(b, f->head, p, len, 0, vhd_commit_io_cb, c);
		p += len;
		for (s = 0; s < spb; s += n) {
			n = vhd_valid_run(f, s, spb - s, vhd_valid_test(f, s));
			if (vhd_valid_test(f, s))
				continue;
			if ((z = malloc(sizeof *z)) == NULL)
				abort();
			z->commit = c;
			z->fresh = f;
			z->first = s;
			z->count = n;
			c->pending++;
			blockdev_zero(b, f->bitmap + v->bitmap_size +
			    (uint64_t)s * VHD_SECTOR, (uint64_t)n * VHD_SECTOR,
			    0, vhd_zero_run_cb, z);
		}
	}
	memcpy(p, v->footer, VHD_FOOTER_SIZE);
	c->pending++;
	blockdev_write(b, c->end, p, VHD_FOOTER_SIZE, 0, vhd_commit_io_cb, c);
	vhd_commit_io_cb(0, c);
}

static int
vhd_u32_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Epoch 2: the BAT sectors of the commit's blocks, each run of adjacent
 * sectors in one write. An entry of a block still fresh and in no commit
 * stays unallocated on disk. */
static void
vhd_commit_bat(struct vhd_commit *c)
{
	struct vhd		*v = c->vhd;
	struct vhd_fresh	*f;
	uint32_t		*sectors, per = VHD_SECTOR / 4, n = 0, i, j, k;
	uint32_t		 e, entry;
	uint8_t			*p;

	TAILQ_FOREACH(f, &c->blocks, entry)
		n++;
	if ((sectors = malloc((size_t)n * sizeof *sectors)) == NULL)
		abort();
	n = 0;
	TAILQ_FOREACH(f, &c->blocks, entry)
		sectors[n++] = f->block / per;
	qsort(sectors, n, sizeof *sectors, vhd_u32_cmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || sectors[j - 1] != sectors[i])
			sectors[j++] = sectors[i];
	n = j;
	free(c->buf);
	if ((c->buf = malloc((size_t)n * VHD_SECTOR)) == NULL)
		abort();
	c->pending = 1;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && sectors[j] == sectors[j - 1] + 1; j++)
			;
		p = c->buf + (size_t)i * VHD_SECTOR;
		for (k = 0; k < (j - i) * per; k++) {
			e = sectors[i] * per + k;
			entry = e < v->info.max_table_entries ? v->bat[e] :
			    VHD_UNALLOCATED;
			f = e < v->info.max_table_entries ? v->fresh_map[e] :
			    NULL;
			if (f != NULL && f->state == VHD_FRESH_NEW)
				entry = VHD_UNALLOCATED;
			be32_put(p + (size_t)k * 4, entry);
		}
		c->pending++;
		blockdev_write(v->backing, v->table_offset + (uint64_t)sectors[i] *
		    VHD_SECTOR, p, (size_t)(j - i) * VHD_SECTOR, 0,
		    vhd_commit_io_cb, c);
	}
	free(sectors);
	vhd_commit_io_cb(0, c);
}

/*
 * The commit's steps: (0) wait for the writes in flight into its blocks;
 * (1) heads, zeroes, footer; (2) flush; the blocks are whole: held writes
 * go; (3) BAT sectors; (4) flush; done. A commit without blocks is one
 * flush.
 */
static void
vhd_commit_next(struct vhd_commit *c)
{
	struct vhd		*v = c->vhd;
	struct vhd_fresh	*f;

	if (c->result != 0) {
		vhd_commit_done(c);
		return;
	}
	switch (c->step++) {
	case 0:
		if (c->busy > 0) {
			c->waiting = 1;		/* vhd_op_done goes on */
			c->step = 0;
			return;
		}
		if (TAILQ_EMPTY(&c->blocks)) {
			c->step = 4;
			c->pending = 1;
			blockdev_flush(v->backing, vhd_commit_io_cb, c);
			return;
		}
		vhd_commit_blocks(c);
		return;
	case 1:
		c->pending = 1;
		blockdev_flush(v->backing, vhd_commit_io_cb, c);
		return;
	case 2:
		TAILQ_FOREACH(f, &c->blocks, entry) {
			f->state = VHD_FRESH_READY;
			if (!v->closing)
				vhd_fresh_release(f);
		}
		vhd_commit_bat(c);
		return;
	case 3:
		c->pending = 1;
		blockdev_flush(v->backing, vhd_commit_io_cb, c);
		return;
	default:
		vhd_commit_done(c);
		return;
	}
}

/* Take every fresh block and every waiting flush into a new commit. */
static void
vhd_commit_start(struct vhd *v)
{
	struct vhd_commit	*c;
	struct vhd_fresh	*f;

	if (v->commit != NULL)
		return;
	if (v->timer != NULL)
		ev_timer_cancel(v->timer);
	if ((c = calloc(1, sizeof *c)) == NULL)
		abort();
	c->vhd = v;
	TAILQ_INIT(&c->blocks);
	TAILQ_INIT(&c->waiters);
	TAILQ_CONCAT(&c->blocks, &v->fresh, entry);
	TAILQ_CONCAT(&c->waiters, &v->flushes, entry);
	v->nfresh = 0;
	c->end = v->free_offset;
	TAILQ_FOREACH(f, &c->blocks, entry) {
		f->state = VHD_FRESH_INIT;
		if (f->inflight > 0)
			c->busy++;
		c->end = f->end;
	}
	v->commit = c;
	/* Steps run from the loop, never inside a caller. */
	c->pending = 1;
	blockdev_complete_later(&v->dev, vhd_commit_io_cb, c, 0);
}

/* cb once a commit that starts from now on has ended. */
static void
vhd_flush_wait(struct vhd *v, blockdev_cb cb, void *arg)
{
	struct vhd_waiter	*w;

	if ((w = malloc(sizeof *w)) == NULL)
		abort();
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&v->flushes, w, entry);
	if (v->commit == NULL)
		vhd_commit_start(v);
}

/* Durable: every write completed before it, fresh blocks committed. */
static void
vhd_dynamic_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	vhd_flush_wait(dev->impl, cb, arg);
}

/* ---- writes ------------------------------------------------------------ */

/* Map block at the end of the data: a footer copy's room after the last
 * block, the bitmap right before 4 KiB-aligned data (§1.6.6); it must fit
 * with the footer after it and never wrap (§1.6.5). */
static struct vhd_fresh *
vhd_allocate(struct vhd *v, uint32_t block)
{
	struct vhd_fresh	*f;
	uint64_t		 data;

	data = vhd_round_up(v->free_offset + VHD_FOOTER_SIZE + v->bitmap_size,
	    VHD_DATA_ALIGN);
	if (data + v->info.block_size + VHD_FOOTER_SIZE > v->backing->size ||
	    (data - v->bitmap_size) / VHD_SECTOR >= VHD_UNALLOCATED)
		return NULL;
	if ((f = calloc(1, sizeof *f + (v->info.block_size / VHD_SECTOR + 7) /
	    8)) == NULL)
		abort();
	f->block = block;
	f->state = VHD_FRESH_NEW;
	f->head = v->free_offset;
	f->bitmap = data - v->bitmap_size;
	f->end = data + v->info.block_size;
	TAILQ_INIT(&f->held);
	v->bat[block] = (uint32_t)(f->bitmap / VHD_SECTOR);
	v->fresh_map[block] = f;
	v->free_offset = f->end;
	v->info.allocated_blocks++;
	TAILQ_INSERT_TAIL(&v->fresh, f, entry);
	if (++v->nfresh == 1 && v->commit == NULL)
		ev_timer_arm(v->timer, VHD_COMMIT_AFTER_MS);
	else if (v->nfresh >= VHD_COMMIT_BATCH && v->commit == NULL)
		vhd_commit_start(v);
	return f;
}

static void
vhd_op_fua_cb(int result, void *arg)
{
	struct vhd_op	*op = arg;

	vhd_request_piece_cb(result, op->req);
	free(op);
}

static void
vhd_op_done(int result, void *arg)
{
	struct vhd_op		*op = arg;
	struct vhd		*v = op->vhd;
	struct vhd_fresh	*f = op->fresh;
	uint32_t		 bs = v->info.block_size;

	if (f != NULL) {
		if (result == 0)
			vhd_valid_set(f, (uint32_t)(op->offset % bs /
			    VHD_SECTOR), (uint32_t)(op->len / VHD_SECTOR), 1);
		if (--f->inflight == 0 && f->state == VHD_FRESH_INIT &&
		    --v->commit->busy == 0 && v->commit->waiting) {
			v->commit->waiting = 0;
			vhd_commit_next(v->commit);
		}
	}
	/* FUA into a block not yet in the BAT on disk: durable once a
	 * commit that starts now has ended. */
	if (result == 0 && (op->flags & BLOCKDEV_FUA)) {
		vhd_flush_wait(v, vhd_op_fua_cb, op);
		return;
	}
	vhd_request_piece_cb(result, op->req);
	free(op);
}

/* Send a fresh block's piece to the backing: tracked while the block is
 * in no commit, plain once it is whole. */
static void
vhd_op_issue(struct vhd_op *op)
{
	struct vhd		*v = op->vhd;
	struct vhd_fresh	*f = vhd_fresh_of(v, (uint32_t)(op->offset /
	    v->info.block_size));
	uint64_t		 at = vhd_data_offset(v, op->offset);

	op->fresh = NULL;
	if (f != NULL && f->state == VHD_FRESH_INIT) {
		TAILQ_INSERT_TAIL(&f->held, op, entry);
		return;
	}
	if (f != NULL && f->state == VHD_FRESH_NEW) {
		op->fresh = f;
		f->inflight++;
	}
	if (op->buf != NULL)
		blockdev_write(v->backing, at, op->buf, op->len,
		    op->flags & ~BLOCKDEV_FUA, vhd_op_done, op);
	else
		blockdev_zero(v->backing, at, op->len,
		    op->flags & ~BLOCKDEV_FUA, vhd_op_done, op);
}

/* Write (buf) or zero (NULL) one piece inside one block: straight through
 * if the block is on disk, else through its fresh state, mapping it first
 * if nothing is there yet (zeroes need no block). */
static void
vhd_piece(struct vhd *v, struct vhd_request *r, uint64_t offset,
    const uint8_t *buf, size_t len, unsigned flags)
{
	uint32_t		 block = (uint32_t)(offset / v->info.block_size);
	struct vhd_fresh	*f = vhd_fresh_of(v, block);
	struct vhd_op		*op;

	if (v->bat[block] == VHD_UNALLOCATED) {
		if (buf == NULL)
			return;
		if ((f = vhd_allocate(v, block)) == NULL) {
			vhd_request_piece_later(r, -ENOSPC);
			return;
		}
	}
	r->pending++;
	if (f == NULL) {
		if (buf != NULL)
			blockdev_write(v->backing, vhd_data_offset(v, offset),
			    buf, len, flags, vhd_request_piece_cb, r);
		else
			blockdev_zero(v->backing, vhd_data_offset(v, offset),
			    len, flags, vhd_request_piece_cb, r);
		return;
	}
	if ((op = calloc(1, sizeof *op)) == NULL)
		abort();
	op->vhd = v;
	op->req = r;
	op->offset = offset;
	op->buf = buf;
	op->len = len;
	op->flags = flags;
	vhd_op_issue(op);
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
		vhd_piece(v, r, offset, p, chunk, flags);
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
		vhd_piece(v, r, offset, NULL, (size_t)chunk, flags);
		offset += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

static const struct blockdev_ops vhd_dynamic_ops = {
	.kind = "vhd-dynamic",
	.read = vhd_dynamic_read,
	.write = vhd_dynamic_write,
	.flush = vhd_dynamic_flush,
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
vhd_create_sync(struct blockdev *backing, enum vhd_type type, uint64_t size,
    enum vhd_size_rule rule)
{
	struct vhd_sync	s = { 0, 0, NULL };

	vhd_create(backing, type, size, rule, vhd_sync_cb, &s);
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