/*
 * Import and export: copy one virtual disk onto another (a .vhd file onto
 * a volume's disk, or back) in 2 MiB chunks, skipping chunks that are all
 * zeroes so that a dynamic destination stays sparse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

#define VHD_COPY_CHUNK	(2U << 20)

static int
vhd_copy_is_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/*
 * Copy every byte of from onto to, which must be at least as large and
 * read zeroes where it was not written (a freshly created VHD does). The
 * progress callback, if any, runs after every chunk. 0 or a negative error.
 */
int
vhd_copy_sync(struct blockdev *from, struct blockdev *to,
    vhd_progress_cb progress, void *arg)
{
	uint8_t		*buf;
	uint64_t	 offset;
	size_t		 len;
	int		 error = 0;

	if (to->size < from->size)
		return -ENOSPC;
	if ((buf = malloc(VHD_COPY_CHUNK)) == NULL)
		return -ENOMEM;
	for (offset = 0; offset < from->size; offset += len) {
		len = from->size - offset < VHD_COPY_CHUNK ?
		    (size_t)(from->size - offset) : VHD_COPY_CHUNK;
		if ((error = blockdev_read_sync(from, offset, buf, len)) != 0)
			goto out;
		if (!vhd_copy_is_zero(buf, len) &&
		    (error = blockdev_write_sync(to, offset, buf, len, 0)) != 0)
			goto out;
		if (progress != NULL)
			progress(offset + len, from->size, arg);
	}
	error = blockdev_flush_sync(to);
out:
	free(buf);
	return error;
}
