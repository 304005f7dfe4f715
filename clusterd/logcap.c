/*
 * A VM's log files kept within bounds (issue 15): a guest writes its serial
 * console as fast as it likes, and QEMU and the worker write what they
 * write, into files under [vm] log_dir that havend opened with O_APPEND.
 * Once a file is over the cap, it is copied to FILE.1 (replacing the last
 * one) and truncated in place: the writers' O_APPEND puts their next line
 * at the new end, so nobody reopens anything. Looked at every second, so a
 * VM's logs take at most two caps plus a second's writing each. Lines
 * written between the copy and the truncation are lost; the cap is
 * generous (16 MiB by default) so that only a flood ever meets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "clusterd.h"

/* Copy what `in` holds into `out`; -1 with errno on failure. */
static int
logcap_copy(int in, int out, off_t size)
{
	off_t	off = 0;
	ssize_t	n;

	while (off < size) {
		n = sendfile(out, in, &off, (size_t)(size - off));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;		/* truncated meanwhile */
	}
	return 0;
}

/* 1: PATH was over max_bytes and is now empty, its content in PATH.1;
 * 0: within the cap, or absent; -1: could not (logged). */
int
logcap_file(const char *path, uint64_t max_bytes)
{
	struct stat	st;
	char		old[PATH_MAX];
	int		fd, out, r = -1;

	if ((fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size <= max_bytes) {
		close(fd);
		return 0;
	}
	if (snprintf(old, sizeof old, "%s.1", path) >= (int)sizeof old) {
		close(fd);
		return -1;
	}
	out = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (out == -1 || logcap_copy(fd, out, st.st_size) == -1)
		log_warn("%s: keeping the old part in %s: %s", path, old,
		    strerror(errno));
	else if (ftruncate(fd, 0) == -1)
		log_warn("%s: truncating: %s", path, strerror(errno));
	else
		r = 1;
	if (out != -1)
		close(out);
	close(fd);
	return r;
}
