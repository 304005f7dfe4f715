/*
 * libFuzzer harness for the VHD parser and I/O paths: arbitrary bytes,
 * followed by 4 MiB of zeroes so small inputs can still map blocks, are
 * served by an in-memory block device, opened as a VHD, read, written and
 * checked with repair.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "storage.h"

#define MEM_TAIL	(4U << 20)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
mem_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	memcpy(buf, (uint8_t *)dev->impl + offset, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
mem_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	memcpy((uint8_t *)dev->impl + offset, buf, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
mem_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
mem_zero(struct blockdev *dev, uint64_t offset, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	memset((uint8_t *)dev->impl + offset, 0, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
mem_close(struct blockdev *dev)
{
	blockdev_fini(dev);
}

static const struct blockdev_ops mem_ops = {
	.kind = "memory",
	.read = mem_read,
	.write = mem_write,
	.flush = mem_flush,
	.zero = mem_zero,
	.close = mem_close,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base	*base;
	struct vhd_check_report		 rep = { 0 };
	struct blockdev			 mem, *vhd;
	uint8_t				*bytes, buf[4096];
	size_t				 len = (size + 511) / 512 * 512 + MEM_TAIL;
	uint64_t			 at;

	if (base == NULL && (base = event_base_new()) == NULL)
		abort();
	if ((bytes = calloc(1, len)) == NULL)
		return 0;
	memcpy(bytes, data, size);
	memset(&mem, 0, sizeof mem);
	if (blockdev_init(&mem, &mem_ops, base, "fuzz") == -1)
		abort();
	mem.impl = bytes;
	mem.size = len;
	mem.block_size = 512;
	if (vhd_open_sync(&mem, 1, &vhd) == 0) {
		if (vhd->size < 512)
			abort();
		/* The first sectors, the last, and one the input picks. */
		blockdev_read_sync(vhd, 0, buf, vhd->size < sizeof buf ?
		    512 : sizeof buf);
		blockdev_read_sync(vhd, vhd->size - 512, buf, 512);
		at = size >= 8 ? (uint64_t)data[size - 1] << 24 |
		    (uint64_t)data[size - 2] << 16 : 0;
		at = at % (vhd->size / 512) * 512;
		blockdev_read_sync(vhd, at, buf, 512);
		memset(buf, 0xa5, 512);
		if (blockdev_write_sync(vhd, at, buf, 512, 0) == 0) {
			/* An acknowledged write reads back. */
			memset(buf, 0, 512);
			blockdev_read_sync(vhd, at, buf, 512);
			if (buf[0] != 0xa5 || buf[511] != 0xa5)
				abort();
			/* And commits, with whatever the image's layout. */
			blockdev_flush_sync(vhd);
		}
		blockdev_close(vhd);
	}
	vhd_check_sync(&mem, 1, &rep);
	if (vhd_open_sync(&mem, 0, &vhd) == 0)
		blockdev_close(vhd);
	blockdev_close(&mem);
	free(bytes);
	return 0;
}
