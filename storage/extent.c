/*
 * A window onto part of another block device: one extent (lease, state,
 * disk) of a Haven volume. Requests are checked against the window and
 * shifted by its offset; flush goes to the whole parent.
 */
#include <stdio.h>
#include <stdlib.h>

#include "storage.h"

struct extent_dev {
	struct blockdev	 dev;
	struct blockdev	*parent;
	uint64_t	 offset;
};

static void
extent_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct extent_dev	*e = dev->impl;

	blockdev_read(e->parent, e->offset + offset, buf, len, cb, arg);
}

static void
extent_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct extent_dev	*e = dev->impl;

	blockdev_write(e->parent, e->offset + offset, buf, len, flags, cb, arg);
}

static void
extent_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct extent_dev	*e = dev->impl;

	blockdev_flush(e->parent, cb, arg);
}

static void
extent_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct extent_dev	*e = dev->impl;

	blockdev_zero(e->parent, e->offset + offset, len, flags, cb, arg);
}

/* Closes the window only; the parent stays open. */
static void
extent_close(struct blockdev *dev)
{
	blockdev_fini(dev);
	free(dev->impl);
}

static const struct blockdev_ops extent_ops = {
	.kind = "extent",
	.read = extent_read,
	.write = extent_write,
	.flush = extent_flush,
	.zero = extent_zero,
	.close = extent_close,
};

/* A window [offset, offset+size) of parent; NULL if it does not fit or is
 * not block-aligned. */
struct blockdev *
extent_open(struct blockdev *parent, uint64_t offset, uint64_t size,
    const char *label)
{
	struct extent_dev	*e;
	char			 name[160];

	if (blockdev_check_range(parent, offset, size) != 0)
		return NULL;
	if ((e = calloc(1, sizeof *e)) == NULL)
		return NULL;
	snprintf(name, sizeof name, "%s[%s]", parent->name, label);
	if (blockdev_init(&e->dev, &extent_ops, parent->base, name) == -1) {
		free(e);
		return NULL;
	}
	e->parent = parent;
	e->offset = offset;
	e->dev.impl = e;
	e->dev.size = size;
	e->dev.block_size = parent->block_size;
	return &e->dev;
}
