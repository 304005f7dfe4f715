/*
 * A VM's UEFI variable store on its volume (0): a fixed region in the
 * reserved part of the volume's first MiB, so the variables move with the
 * volume (quick and live migration, failover). A header block says whether
 * the region holds a store; the first start fills it from the host's
 * OVMF_VARS template. QEMU sees the store as its second pflash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common.h"
#include "storage.h"

/*
 * Header, little-endian, in the first 512 bytes of the region (its first
 * VARS_HEADER_SIZE bytes are the header block):
 *   0  magic "HAVENEFI"         8
 *   8  version (1)              4
 *  12  reserved                 4
 *  16  data offset in the region 8 (VARS_DATA_OFFSET)
 *  24  data length in bytes     8
 *  32  reserved (zero) ...
 * 508  CRC32 (zlib) of bytes 0..507
 * Written (FUA) only after the data is flushed: a region with a valid
 * header always holds a whole store.
 */
#define VARS_MAGIC		"HAVENEFI"
#define VARS_VERSION		1
#define VARS_HEADER_SIZE	4096
#define VARS_DATA_OFFSET	65536

struct vars_op {
	struct blockdev	*region;
	uint8_t		*header;
	uint8_t		*data;
	size_t		 len;
	int		 may_create;
	int		 step;
	vars_cb		 cb;
	void		*arg;
};

/* The largest store the region holds. */
uint64_t
vars_capacity(const struct blockdev *region)
{
	return region->size > VARS_DATA_OFFSET ?
	    region->size - VARS_DATA_OFFSET : 0;
}

/* The length a valid header gives, 0 for none, or STORAGE_E_CORRUPT. */
static int64_t
vars_header_decode(const uint8_t *p, uint64_t capacity)
{
	uint64_t	len;

	if (memcmp(p, VARS_MAGIC, 8) != 0 ||
	    le32_get(p + 508) != (uint32_t)crc32(0, p, 508))
		return 0;
	if (le32_get(p + 8) != VARS_VERSION)
		return STORAGE_E_UNSUPPORTED;
	len = le64_get(p + 24);
	if (le64_get(p + 16) != VARS_DATA_OFFSET || len == 0 ||
	    len > capacity || len % VARS_HEADER_SIZE != 0)
		return STORAGE_E_CORRUPT;
	return (int64_t)len;
}

static void
vars_header_encode(uint8_t *p, uint64_t len)
{
	memset(p, 0, VARS_HEADER_SIZE);
	memcpy(p, VARS_MAGIC, 8);
	le32_put(p + 8, VARS_VERSION);
	le64_put(p + 16, VARS_DATA_OFFSET);
	le64_put(p + 24, len);
	le32_put(p + 508, (uint32_t)crc32(0, p, 508));
}

static void
vars_finish(struct vars_op *op, int result)
{
	struct blockdev	*store = NULL;

	if (result == 0 && (store = extent_open(op->region, VARS_DATA_OFFSET,
	    op->len, "vars")) == NULL)
		result = -ENOMEM;
	op->cb(result, store, op->arg);
	free(op->header);
	free(op->data);
	free(op);
}

static void
vars_step(int result, void *arg)
{
	struct vars_op	*op = arg;
	int64_t		 have;

	if (result != 0) {
		vars_finish(op, result);
		return;
	}
	switch (op->step++) {
	case 0:		/* the header is read */
		have = vars_header_decode(op->header,
		    vars_capacity(op->region));
		if (have < 0) {
			vars_finish(op, (int)have);
			return;
		}
		if (have > 0) {
			/* The store is there: its size is the firmware's. */
			vars_finish(op, (uint64_t)have == op->len ? 0 :
			    -EMSGSIZE);
			return;
		}
		if (!op->may_create || op->data == NULL) {
			vars_finish(op, -ENOENT);
			return;
		}
		blockdev_write(op->region, VARS_DATA_OFFSET, op->data, op->len,
		    0, vars_step, op);
		return;
	case 1:		/* the template is written */
		blockdev_flush(op->region, vars_step, op);
		return;
	case 2:		/* ... and durable: now the header */
		vars_header_encode(op->header, op->len);
		blockdev_write(op->region, 0, op->header, VARS_HEADER_SIZE,
		    BLOCKDEV_FUA, vars_step, op);
		return;
	default:
		vars_finish(op, 0);
		return;
	}
}

/*
 * The store in region, as a block device of len bytes (the firmware's
 * vars size), to cb. With none there yet and may_create, it is made from
 * template (len bytes) first; without may_create (a live migration's
 * target: the source owns the volume) that is -ENOENT. A store of another
 * size (another firmware build) is -EMSGSIZE and is never overwritten.
 */
void
vars_open(struct blockdev *region, const void *template, size_t len,
    int may_create, vars_cb cb, void *arg)
{
	struct vars_op	*op;

	if ((op = calloc(1, sizeof *op)) == NULL) {
		cb(-ENOMEM, NULL, arg);
		return;
	}
	op->region = region;
	op->len = len;
	op->may_create = may_create;
	op->cb = cb;
	op->arg = arg;
	if (len == 0 || len % VARS_HEADER_SIZE != 0 ||
	    len > vars_capacity(region) || region->block_size == 0 ||
	    VARS_HEADER_SIZE % region->block_size != 0) {
		blockdev_complete_later(region, vars_step, op, -EINVAL);
		return;
	}
	if ((op->header = aligned_alloc(VARS_HEADER_SIZE,
	    VARS_HEADER_SIZE)) == NULL || (template != NULL &&
	    (op->data = aligned_alloc(VARS_HEADER_SIZE, len)) == NULL)) {
		blockdev_complete_later(region, vars_step, op, -ENOMEM);
		return;
	}
	if (template != NULL)
		memcpy(op->data, template, len);
	blockdev_read(region, 0, op->header, VARS_HEADER_SIZE, vars_step, op);
}
