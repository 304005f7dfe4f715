/*
 * The state file (DESIGN §5): each member's copy of the replicated state,
 * written atomically (temp file, fsync, rename, fsync of the directory)
 * before the member acknowledges a change, and refused whole on load when it
 * is truncated or altered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "common.h"
#include "clusterd.h"

/*
 * The file: a 48-byte header, then the packed ClusterState.
 *   magic "HVCS" (4) | version (4, LE) | payload length (8, LE) |
 *   CRC-32 of the payload (4, LE; zlib's) | zero (28, checked on load)
 */
#define FILE_MAGIC		"HVCS"
/* 2: CRC-32 instead of SHA-256. 3: a VM's move fields grouped in Move;
 * a version 2 file is read and its legacy fields moved there (saves
 * write 3). */
#define FILE_VERSION		3
#define FILE_VERSION_OLDEST	2
#define FILE_HEADER_SIZE	48
#define FILE_MAX		(UINT64_C(256) << 20)

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
cluster_save(const struct cluster *st, const char *dir, char *err, size_t errlen)
{
	char		 path[4096], tmp[4096];
	uint8_t		*buf = NULL;
	size_t		 len;
	int		 fd = -1, dfd = -1, r = CLUSTER_E_IO, saved;

	if (snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_FILE) >=
	    (int)sizeof path || snprintf(tmp, sizeof tmp, "%s/%s", dir,
	    CLUSTER_FILE_TMP) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return tree_fail(CLUSTER_E_IO, err, errlen, "%s: path too long",
		    dir);
	}
	len = protobuf_c_message_get_packed_size(&st->cs->base);
	buf = xcalloc(1, FILE_HEADER_SIZE + len);
	memcpy(buf, FILE_MAGIC, 4);
	le32_put(buf + 4, FILE_VERSION);
	le64_put(buf + 8, len);
	protobuf_c_message_pack(&st->cs->base, buf + FILE_HEADER_SIZE);
	/* The file's own check is a CRC-32 (zlib: GB/s), enough against
	 * truncation and bit rot; the digest members compare is SHA-256. */
	le32_put(buf + 16, (uint32_t)crc32(0, buf + FILE_HEADER_SIZE,
	    (uInt)len));

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		tree_fail(r, err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, buf, FILE_HEADER_SIZE + len) < 0 || fsync(fd) < 0) {
		tree_fail(r, err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		tree_fail(r, err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		tree_fail(r, err, errlen, "rename %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(dfd) < 0) {
		tree_fail(r, err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	r = CLUSTER_OK;
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(buf);
	errno = saved;
	return r;
}

int
cluster_load(const char *dir, struct cluster **out, char *err, size_t errlen)
{
	char			 path[4096];
	struct stat		 sb;
	uint8_t			*buf = NULL;
	Haven__ClusterState	*cs;
	size_t			 got = 0;
	ssize_t			 n;
	uint64_t		 len;
	uint32_t		 version;
	size_t			 moved;
	int			 fd, r = CLUSTER_E_CORRUPT, saved;

	*out = NULL;
	if (snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_FILE) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return tree_fail(CLUSTER_E_IO, err, errlen, "%s: path too long",
		    dir);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return tree_fail(CLUSTER_E_IO, err, errlen, "%s: %s", path,
		    strerror(errno));
	if (fstat(fd, &sb) < 0) {
		r = tree_fail(CLUSTER_E_IO, err, errlen, "%s: %s", path,
		    strerror(errno));
		goto out;
	}
	if ((uint64_t)sb.st_size < FILE_HEADER_SIZE ||
	    (uint64_t)sb.st_size > FILE_MAX) {
		tree_fail(r, err, errlen, "%s: %lld bytes is not a state file "
		    "(truncated?); left as it is", path, (long long)sb.st_size);
		goto out;
	}
	buf = xcalloc(1, (size_t)sb.st_size);
	while (got < (size_t)sb.st_size) {
		if ((n = read(fd, buf + got, (size_t)sb.st_size - got)) < 0) {
			if (errno == EINTR)
				continue;
			r = tree_fail(CLUSTER_E_IO, err, errlen, "%s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (memcmp(buf, FILE_MAGIC, 4) != 0) {
		tree_fail(r, err, errlen, "%s: bad magic, not a state file; "
		    "left as it is", path);
		goto out;
	}
	version = le32_get(buf + 4);
	if (version < FILE_VERSION_OLDEST || version > FILE_VERSION) {
		tree_fail(r, err, errlen, "%s: version %u, this havend reads "
		    "%u to %u; left as it is", path, version,
		    FILE_VERSION_OLDEST, FILE_VERSION);
		goto out;
	}
	len = le64_get(buf + 8);
	if (len != got - FILE_HEADER_SIZE) {
		tree_fail(r, err, errlen, "%s: header says %llu bytes of state, "
		    "the file holds %zu (truncated?); left as it is", path,
		    (unsigned long long)len, got - FILE_HEADER_SIZE);
		goto out;
	}
	static const uint8_t	zero[FILE_HEADER_SIZE - 20];

	if (le32_get(buf + 16) != (uint32_t)crc32(0, buf + FILE_HEADER_SIZE,
	    (uInt)len) || memcmp(buf + 20, zero, sizeof zero) != 0) {
		tree_fail(r, err, errlen, "%s: checksum mismatch, the file is "
		    "corrupt; left as it is", path);
		goto out;
	}
	cs = haven__cluster_state__unpack(NULL, (size_t)len,
	    buf + FILE_HEADER_SIZE);
	if (cs == NULL) {
		tree_fail(r, err, errlen, "%s: the state does not decode; left "
		    "as it is", path);
		goto out;
	}
	if ((r = cluster_validate(cs, err, errlen)) != CLUSTER_OK) {
		protobuf_c_message_free_unpacked(&cs->base, NULL);
		goto out;
	}
	if (version < 3 && (moved = tree_move_upgrade(cs)) > 0)
		log_info("%s: version %u: the moves of %zu VMs read into their "
		    "Move", path, version, moved);
	*out = xcalloc(1, sizeof **out);
	(*out)->cs = cs;
	r = CLUSTER_OK;
out:
	saved = errno;
	close(fd);
	free(buf);
	errno = saved;
	return r;
}
