/*
 * Save and restore throughput of the state pipelines against a baseline
 * measured in the same run on the same file: plain sequential 1 MiB
 * pwrite+fdatasync and pread. A child process plays QEMU on the pipe.
 * Usage: state_bench [MiB] [path]  (default 1024 MiB in /tmp).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "storage.h"
#include "migrate.h"

#define MiB	(UINT64_C(1) << 20)

static const char	*uuid = "0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c";

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t	*w = (uint64_t *)buf;
	size_t		 i;

	for (i = 0; i < len / 8; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		w[i] = seed;
	}
}

/* The child: QEMU writing (or reading) its stream with blocking I/O. */
static pid_t
child(int fd, int other, uint64_t bytes, int writing)
{
	uint8_t	*buf;
	pid_t	 pid;
	uint64_t done = 0;
	ssize_t	 n;

	if ((pid = fork()) != 0)
		return pid;
	close(other);	/* or the reader never sees EOF */
	buf = malloc(MiB);
	fill(buf, MiB, 88172645463325252ULL);
	while (writing ? done < bytes : 1) {
		n = writing ? write(fd, buf, MiB) : read(fd, buf, MiB);
		if (n <= 0)
			break;
		done += (uint64_t)n;
	}
	_exit(done == bytes ? 0 : 1);
}

struct result {
	int	done;
	int	error;
};

static void
on_done(int error, const struct state_header *h, void *arg)
{
	struct result	*r = arg;

	r->done = 1;
	r->error = error;
}

int
main(int argc, char **argv)
{
	struct event_base	*base = ev_base_new();
	struct state_header	 id;
	struct state_expect	 expect = { uuid, 1, 1 };
	struct result		 r;
	struct blockdev		*dev;
	uint64_t		 mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	uint64_t		 bytes = mib * MiB, off;
	const char		*path = argc > 2 ? argv[2] : "/tmp/haven-state-bench";
	double			 t0, raw_write, raw_read, save, restore;
	uint8_t			*buf;
	int			 fd, fds[2], status, error;
	pid_t			 pid;

	unlink(path);
	if ((dev = file_create(base, path, bytes + STATE_HEADER_SIZE,
	    &error)) == NULL) {
		fprintf(stderr, "state_bench: %s: %s\n", path,
		    storage_strerror(error));
		return 1;
	}
	if ((fd = open(path, O_RDWR)) == -1 ||
	    posix_memalign((void **)&buf, 4096, MiB) != 0)
		return 1;
	fill(buf, MiB, 1);

	/* Baseline: what the same file takes sequentially, same sizes. */
	t0 = now();
	for (off = 0; off < bytes; off += MiB)
		if (pwrite(fd, buf, MiB, (off_t)(STATE_HEADER_SIZE + off)) !=
		    (ssize_t)MiB)
			return 1;
	fdatasync(fd);
	raw_write = now() - t0;
	t0 = now();
	for (off = 0; off < bytes; off += MiB)
		if (pread(fd, buf, MiB, (off_t)(STATE_HEADER_SIZE + off)) !=
		    (ssize_t)MiB)
			return 1;
	raw_read = now() - t0;

	memset(&id, 0, sizeof id);
	snprintf(id.vm_uuid, sizeof id.vm_uuid, "%s", uuid);
	id.generation = id.config_hash = 1;

	if (pipe(fds) == -1)
		return 1;
	pid = child(fds[1], fds[0], bytes, 1);
	close(fds[1]);
	memset(&r, 0, sizeof r);
	t0 = now();
	if (state_save_start(base, dev, fds[0], &id, NULL, on_done, &r) ==
	    NULL)
		return 1;
	storage_wait(base, &r.done);
	save = now() - t0;
	waitpid(pid, &status, 0);
	if (r.error != 0 || status != 0) {
		fprintf(stderr, "state_bench: save: %s\n",
		    migrate_strerror(r.error));
		return 1;
	}

	if (pipe(fds) == -1)
		return 1;
	pid = child(fds[0], fds[1], bytes, 0);
	close(fds[0]);
	memset(&r, 0, sizeof r);
	t0 = now();
	if (state_restore_start(base, dev, fds[1], &expect, NULL, on_done,
	    &r) == NULL)
		return 1;
	storage_wait(base, &r.done);
	restore = now() - t0;
	waitpid(pid, &status, 0);
	if (r.error != 0 || status != 0) {
		fprintf(stderr, "state_bench: restore: %s\n",
		    migrate_strerror(r.error));
		return 1;
	}

	printf("state_bench: %llu MiB on %s\n", (unsigned long long)mib, path);
	printf("  raw write+fdatasync %7.0f MiB/s   save    %7.0f MiB/s   "
	    "ratio %.2f\n", mib / raw_write, mib / save, raw_write / save);
	printf("  raw read            %7.0f MiB/s   restore %7.0f MiB/s   "
	    "ratio %.2f\n", mib / raw_read, mib / restore, raw_read / restore);
	blockdev_close(dev);
	close(fd);
	free(buf);
	unlink(path);
	event_base_free(base);
	return 0;
}
