/*
 * The cluster's secret: a root-only file that every member holds alike
 * (corosync's authkey by default), reduced to its SHA-256. Keys that only
 * members may compute derive from it: a live migration's TLS key
 * (migrate/live_key.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* At least 16 bytes (corosync's authkey is 128 to 4096), at most 8 KiB
 * read; a regular file of root's (or of the caller's), mode 0600 or 0400. */
int
secret_file_hash(const char *path, uint8_t out[SHA256_SIZE], char *err,
    size_t errlen)
{
	uint8_t		 buf[8192];
	struct stat	 st;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		snprintf(err, errlen, "%s: must be a regular file of root's, "
		    "mode 0600 or 0400 (it is %04o)", path,
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	while (len < sizeof buf) {
		n = read(fd, buf + len, sizeof buf - len);
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
	if (len < 16) {
		snprintf(err, errlen, "%s: shorter than 16 bytes", path);
		goto out;
	}
	sha256(buf, len, out);
	rc = 0;
out:
	explicit_bzero(buf, sizeof buf);
	if (fd != -1)
		close(fd);
	return rc;
}
