/*
 * A local file as a block device: for tests, for `havenctl disk` on plain
 * files, and for import and export of .vhd files. I/O is synchronous
 * pread/pwrite (local files are fast and the callers are tools or tests);
 * completions are still delivered from the loop like every other device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

#define FILE_BLOCK_SIZE	512

struct file_dev {
	struct blockdev	dev;
	int		fd;
};

static int
file_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)offset);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static void
file_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct file_dev	*f = dev->impl;
	uint8_t		*p = buf;
	ssize_t		 n;
	int		 result = 0;

	while (len > 0) {
		n = pread(f->fd, p, len, (off_t)offset);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			result = -errno;
			break;
		}
		if (n == 0) {
			/* The file shrank under us: past EOF reads zero. */
			memset(p, 0, len);
			break;
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	blockdev_complete_later(dev, cb, arg, result);
}

static void
file_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct file_dev	*f = dev->impl;
	int		 result;

	result = file_pwrite_all(f->fd, buf, len, offset);
	if (result == 0 && (flags & BLOCKDEV_FUA) && fdatasync(f->fd) == -1)
		result = -errno;
	blockdev_complete_later(dev, cb, arg, result);
}

static void
file_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct file_dev	*f = dev->impl;

	blockdev_complete_later(dev, cb, arg,
	    fdatasync(f->fd) == -1 ? -errno : 0);
}

static void
file_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	static const uint8_t	 zeroes[65536];
	struct file_dev		*f = dev->impl;
	size_t			 chunk;
	int			 result = 0;

	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)offset, (off_t)len) == -1) {
		while (len > 0 && result == 0) {
			chunk = len < sizeof zeroes ? len : sizeof zeroes;
			result = file_pwrite_all(f->fd, zeroes, chunk, offset);
			offset += chunk;
			len -= chunk;
		}
	}
	if (result == 0 && (flags & BLOCKDEV_FUA) && fdatasync(f->fd) == -1)
		result = -errno;
	blockdev_complete_later(dev, cb, arg, result);
}

static void
file_close(struct blockdev *dev)
{
	struct file_dev	*f = dev->impl;

	blockdev_fini(dev);
	close(f->fd);
	free(f);
}

static const struct blockdev_ops file_ops = {
	.kind = "file",
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.zero = file_zero,
	.close = file_close,
};

static struct blockdev *
file_wrap(struct event_base *base, const char *path, int fd, int *error)
{
	struct file_dev	*f;
	struct stat	 st;

	if (fstat(fd, &st) == -1) {
		*error = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*error = -EINVAL;
		goto fail;
	}
	if ((uint64_t)st.st_size % FILE_BLOCK_SIZE != 0) {
		/* A disk image is whole sectors; anything else is not one. */
		*error = STORAGE_E_CORRUPT;
		goto fail;
	}
	if ((f = calloc(1, sizeof *f)) == NULL) {
		*error = -errno;
		goto fail;
	}
	if (blockdev_init(&f->dev, &file_ops, base, path) == -1) {
		*error = -ENOMEM;
		free(f);
		goto fail;
	}
	f->fd = fd;
	f->dev.impl = f;
	f->dev.size = (uint64_t)st.st_size;
	f->dev.block_size = FILE_BLOCK_SIZE;
	return &f->dev;
fail:
	close(fd);
	return NULL;
}

/* Open an existing file. NULL with *error set (negative). */
struct blockdev *
file_open(struct event_base *base, const char *path, int writable,
    int *error)
{
	int	fd;

	if ((fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)) ==
	    -1) {
		*error = -errno;
		return NULL;
	}
	return file_wrap(base, path, fd, error);
}

/* Create a new sparse file of size bytes (a multiple of 512); refuses to
 * overwrite an existing file. */
struct blockdev *
file_create(struct event_base *base, const char *path, uint64_t size,
    int *error)
{
	int	fd;

	if (size % FILE_BLOCK_SIZE != 0) {
		*error = -EINVAL;
		return NULL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd == -1) {
		*error = -errno;
		return NULL;
	}
	if (ftruncate(fd, (off_t)size) == -1) {
		*error = -errno;
		close(fd);
		unlink(path);
		return NULL;
	}
	return file_wrap(base, path, fd, error);
}

/* Set a file device's size (a multiple of 512), e.g. to cut an exported
 * dynamic VHD back to its end of data. 0 or a negative errno. */
int
file_truncate(struct blockdev *dev, uint64_t size)
{
	struct file_dev	*f = dev->impl;

	if (dev->ops != &file_ops || size % FILE_BLOCK_SIZE != 0)
		return -EINVAL;
	if (ftruncate(f->fd, (off_t)size) == -1)
		return -errno;
	dev->size = size;
	return 0;
}
