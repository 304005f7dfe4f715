/*
 * A root-only secret file (a chap file, the key secret): a regular file,
 * root's (or the caller's, for tests), neither readable nor writable by
 * group or others -- a secret any local account can read opens the SAN to
 * it (issue 15) -- and at most max bytes, read whole.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int
secret_file_read(const char *path, size_t max, uint8_t **out, size_t *outlen,
    char *err, size_t errlen)
{
	struct stat	 st;
	uint8_t		*buf = NULL;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc = -1;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: readable or writable by group or "
		    "others (mode %04o); run chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: belongs to uid %u; it must belong "
		    "to root", path, (unsigned)st.st_uid);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

/* The cluster's secret (corosync's authkey by default), reduced to its
 * SHA-256: keys only members may compute derive from it (reservation
 * keys, storage/pr.c; a live migration's TLS key, migrate/live_key.c).
 * Corosync's authkey is 128 to 4096 bytes. */
#define SECRET_CLUSTER_MAX	8192

int
secret_file_hash(const char *path, uint8_t out[SHA256_SIZE], char *err,
    size_t errlen)
{
	uint8_t	*buf;
	size_t	 len;
	int	 rc = -1;

	if (secret_file_read(path, SECRET_CLUSTER_MAX, &buf, &len, err,
	    errlen) == -1)
		return -1;
	if (len < 16) {
		snprintf(err, errlen, "%s: shorter than 16 bytes", path);
	} else {
		sha256(buf, len, out);
		rc = 0;
	}
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}
