/*
 * libFuzzer harness for the UEFI variable store's header (storage/vars.c):
 * arbitrary bytes as the start of a volume's vars region, served by an
 * in-memory block device, opened as a live migration's target (never made)
 * and as a first start (made from a template when there is none).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "storage.h"

#define REGION_SIZE	(768U << 10)	/* volume.c's vars region */
#define TEMPLATE_SIZE	(528U << 10)	/* OVMF_VARS_4M.fd */

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
	(void)flags;
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
	(void)flags;
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

struct opened {
	int		 done;
	struct blockdev	*store;
};

static void
opened(int result, struct blockdev *store, void *arg)
{
	struct opened	*o = arg;

	o->done = 1;
	o->store = result == 0 ? store : NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base	*base;
	static uint8_t			*template;
	struct blockdev			 mem;
	struct opened			 o;
	uint8_t				*bytes, buf[4096];
	int				 create;

	if (base == NULL && (base = event_base_new()) == NULL)
		abort();
	if (template == NULL && (template = calloc(1, TEMPLATE_SIZE)) == NULL)
		abort();
	if ((bytes = calloc(1, REGION_SIZE)) == NULL)
		return 0;
	memcpy(bytes, data, size < REGION_SIZE ? size : REGION_SIZE);
	memset(&mem, 0, sizeof mem);
	if (blockdev_init(&mem, &mem_ops, base, "fuzz") == -1) {
		free(bytes);
		return 0;
	}
	mem.impl = bytes;
	mem.size = REGION_SIZE;
	mem.block_size = 512;
	for (create = 0; create <= 1; create++) {
		memset(&o, 0, sizeof o);
		vars_open(&mem, create ? template : NULL, TEMPLATE_SIZE, create,
		    opened, &o);
		if (storage_wait(base, &o.done) == -1)
			abort();
		if (o.store != NULL) {
			/* Every byte of the store is inside the region. */
			if (blockdev_read_sync(o.store, TEMPLATE_SIZE - 4096,
			    buf, sizeof buf) != 0)
				abort();
			blockdev_close(o.store);
		}
	}
	mem_close(&mem);
	free(bytes);
	return 0;
}
