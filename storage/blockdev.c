/*
 * The block device interface every storage layer implements: range checks
 * in one place, completions deferred to the event loop so that no callback
 * runs inside its submitter, and synchronous wrappers for the CLI and tests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "storage.h"

struct blockdev_done {
	TAILQ_ENTRY(blockdev_done) entry;
	blockdev_cb	 cb;
	void		*arg;
	int		 result;
};

struct blockdev_defer {
	struct event	*event;
	TAILQ_HEAD(, blockdev_done) queue;
};

static void
blockdev_defer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct blockdev_defer	*d = arg;
	struct blockdev_done	*done;
	TAILQ_HEAD(, blockdev_done) now;

	/* Run what is queued now; callbacks may queue more for next time. */
	TAILQ_INIT(&now);
	TAILQ_CONCAT(&now, &d->queue, entry);
	while ((done = TAILQ_FIRST(&now)) != NULL) {
		TAILQ_REMOVE(&now, done, entry);
		done->cb(done->result, done->arg);
		free(done);
	}
}

int
blockdev_init(struct blockdev *dev, const struct blockdev_ops *ops,
    struct event_base *base, const char *name)
{
	dev->ops = ops;
	dev->base = base;
	snprintf(dev->name, sizeof dev->name, "%s", name);
	if ((dev->defer = calloc(1, sizeof *dev->defer)) == NULL)
		return -1;
	TAILQ_INIT(&dev->defer->queue);
	dev->defer->event = event_new(base, -1, 0, blockdev_defer_cb,
	    dev->defer);
	if (dev->defer->event == NULL) {
		free(dev->defer);
		dev->defer = NULL;
		return -1;
	}
	return 0;
}

/* Release what blockdev_init made. Completions not yet delivered are
 * dropped: close a device only when nothing is in flight. */
void
blockdev_fini(struct blockdev *dev)
{
	struct blockdev_done	*done;

	if (dev->defer == NULL)
		return;
	while ((done = TAILQ_FIRST(&dev->defer->queue)) != NULL) {
		TAILQ_REMOVE(&dev->defer->queue, done, entry);
		free(done);
	}
	event_free(dev->defer->event);
	free(dev->defer);
	dev->defer = NULL;
}

/* Deliver a completion from the loop, soon, in submission order. */
void
blockdev_complete_later(struct blockdev *dev, blockdev_cb cb, void *arg,
    int result)
{
	struct blockdev_done	*done;

	if ((done = malloc(sizeof *done)) == NULL) {
		/* Nothing sane is left; better a loud stop than a lost
		 * completion that hangs a guest's I/O forever. */
		abort();
	}
	done->cb = cb;
	done->arg = arg;
	done->result = result;
	TAILQ_INSERT_TAIL(&dev->defer->queue, done, entry);
	event_active(dev->defer->event, EV_TIMEOUT, 0);
}

/* 0 if [offset, offset+len) is inside the device and block-aligned. */
int
blockdev_check_range(const struct blockdev *dev, uint64_t offset,
    uint64_t len)
{
	uint64_t	mask = dev->block_size - 1;

	if ((offset & mask) != 0 || (len & mask) != 0)
		return -EINVAL;
	if (offset > dev->size || len > dev->size - offset)
		return -ENOSPC;
	return 0;
}

void
blockdev_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	int	error;

	if ((error = blockdev_check_range(dev, offset, len)) != 0) {
		blockdev_complete_later(dev, cb, arg, error == -ENOSPC ?
		    -EINVAL : error);
		return;
	}
	dev->ops->read(dev, offset, buf, len, cb, arg);
}

void
blockdev_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	int	error;

	if ((error = blockdev_check_range(dev, offset, len)) != 0) {
		blockdev_complete_later(dev, cb, arg, error);
		return;
	}
	dev->ops->write(dev, offset, buf, len, flags, cb, arg);
}

void
blockdev_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	dev->ops->flush(dev, cb, arg);
}

void
blockdev_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	int	error;

	if ((error = blockdev_check_range(dev, offset, len)) != 0) {
		blockdev_complete_later(dev, cb, arg, error);
		return;
	}
	dev->ops->zero(dev, offset, len, flags, cb, arg);
}

void
blockdev_close(struct blockdev *dev)
{
	if (dev != NULL)
		dev->ops->close(dev);
}

struct blockdev_sync {
	int	done;
	int	result;
};

static void
blockdev_sync_cb(int result, void *arg)
{
	struct blockdev_sync	*s = arg;

	s->result = result;
	s->done = 1;
}

static int
blockdev_sync_wait(struct blockdev *dev, struct blockdev_sync *s)
{
	if (storage_wait(dev->base, &s->done) == -1)
		return -EIO;
	return s->result;
}

int
blockdev_read_sync(struct blockdev *dev, uint64_t offset, void *buf,
    size_t len)
{
	struct blockdev_sync	s = { 0, 0 };

	blockdev_read(dev, offset, buf, len, blockdev_sync_cb, &s);
	return blockdev_sync_wait(dev, &s);
}

int
blockdev_write_sync(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags)
{
	struct blockdev_sync	s = { 0, 0 };

	blockdev_write(dev, offset, buf, len, flags, blockdev_sync_cb, &s);
	return blockdev_sync_wait(dev, &s);
}

int
blockdev_flush_sync(struct blockdev *dev)
{
	struct blockdev_sync	s = { 0, 0 };

	blockdev_flush(dev, blockdev_sync_cb, &s);
	return blockdev_sync_wait(dev, &s);
}

int
blockdev_zero_sync(struct blockdev *dev, uint64_t offset, uint64_t len)
{
	struct blockdev_sync	s = { 0, 0 };

	blockdev_zero(dev, offset, len, 0, blockdev_sync_cb, &s);
	return blockdev_sync_wait(dev, &s);
}
