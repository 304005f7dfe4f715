/*
 * Save and restore throughput of the state pipelines against a baseline
 * measured in the same run on the same bytes. On a file: plain sequential
 * 1 MiB pwrite+fdatasync and pread. On a Haven volume's LUN (an iscsi://
 * URL, the state-extent line of tests/bench/storage): 1 MiB WRITE16 at
 * queue depth 8 (the pipelines' own) + SYNCHRONIZE CACHE, and READ16, on
 * the state extent through Haven's iSCSI layer, then the save and restore
 * there. A child process plays QEMU on the pipe.
 * Usage: state_bench [MiB] [path | iscsi://URL] [--key HEX] [--json]
 * (default 1024 MiB in /tmp).
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

#define RAW_DEPTH	8

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

/* The baseline on a block device: 1 MiB requests, RAW_DEPTH in flight. */
struct raw {
	struct blockdev	*dev;
	uint8_t		*buf;
	uint64_t	 bytes, next, done;
	int		 writing, error;
};

static void	raw_submit(struct raw *);

static void
raw_cb(int result, void *arg)
{
	struct raw	*r = arg;

	if (result != 0 && r->error == 0)
		r->error = result;
	r->done += MiB;
	raw_submit(r);
}

static void
raw_submit(struct raw *r)
{
	while (r->error == 0 && r->next < r->bytes &&
	    r->next - r->done < RAW_DEPTH * MiB) {
		if (r->writing)
			blockdev_write(r->dev, STATE_HEADER_SIZE + r->next,
			    r->buf, MiB, 0, raw_cb, r);
		else
			blockdev_read(r->dev, STATE_HEADER_SIZE + r->next,
			    r->buf, MiB, raw_cb, r);
		r->next += MiB;
	}
}

static double
raw_run(struct raw *r, int writing)
{
	double	t0 = now();

	r->writing = writing;
	r->next = r->done = 0;
	raw_submit(r);
	while (r->error == 0 && r->done < r->bytes)
		event_base_loop(r->dev->base, EVLOOP_ONCE);
	if (writing && r->error == 0)
		r->error = blockdev_flush_sync(r->dev);
	return now() - t0;
}

/* The state extent of the Haven volume on an iSCSI LUN. */
static struct blockdev *
open_lun(struct event_base *base, const char *url, uint64_t key,
    struct blockdev **lun, struct volume **vol)
{
	struct iscsi_options	opts = { .queue_depth = 16 };
	char			err[320];
	int			error;

	opts.initiator = getenv("HAVEN_INITIATOR");
	if (chap_setup(CHAP_PATH, 0, PR_KEY_SECRET_PATH, 0, err,
	    sizeof err) == -1) {
		fprintf(stderr, "state_bench: %s\n", err);
		return NULL;
	}
	if ((error = iscsi_open_sync(base, url, &opts, lun)) != 0 ||
	    (key != 0 && (error = pr_claim_sync(*lun, key)) != 0) ||
	    (error = volume_open_sync(*lun, vol)) != 0) {
		fprintf(stderr, "state_bench: %s: %s\n", url,
		    storage_strerror(error));
		return NULL;
	}
	return volume_extent(*vol, VOLUME_EXTENT_STATE);
}

/* One function (about 160 lines): the baseline, the save and the restore
 * run in order on one device and their timings feed one printout. */
int
main(int argc, char **argv)
{
	struct event_base	*base = ev_base_new();
	struct state_header	 id;
	struct state_expect	 expect = { uuid, 1, 1 };
	struct result		 r;
	struct blockdev		*dev, *lun = NULL;
	struct volume		*vol = NULL;
	struct raw		 raw;
	uint64_t		 mib = 1024, bytes, off, key = 0;
	const char		*path = "/tmp/haven-state-bench";
	double			 t0, raw_write, raw_read, save, restore;
	uint8_t			*buf;
	int			 fd = -1, fds[2], status, error, json = 0, i, npos = 0;
	pid_t			 pid;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key = strtoull(argv[++i], NULL, 16);
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (npos++ == 0)
			mib = strtoull(argv[i], NULL, 10);
		else
			path = argv[i];
	}
	bytes = mib * MiB;
	if (posix_memalign((void **)&buf, 4096, MiB) != 0)
		return 1;
	fill(buf, MiB, 1);
	if (strncmp(path, "iscsi://", 8) == 0) {
		log_init("state_bench", LOG_LEVEL_WARN);
		if ((dev = open_lun(base, path, key, &lun, &vol)) == NULL)
			return 1;
		if (dev->size < bytes + STATE_HEADER_SIZE) {
			fprintf(stderr, "state_bench: the state extent holds "
			    "less than %llu MiB\n", (unsigned long long)mib);
			return 1;
		}
		/* Baseline: the same bytes, as the pipelines write them. */
		memset(&raw, 0, sizeof raw);
		raw.dev = dev;
		raw.buf = buf;
		raw.bytes = bytes;
		raw_run(&raw, 1);	/* the target's backing allocated */
		raw_write = raw_run(&raw, 1);
		raw_read = raw_run(&raw, 0);
		if (raw.error != 0) {
			fprintf(stderr, "state_bench: baseline: %s\n",
			    storage_strerror(raw.error));
			return 1;
		}
	} else {
		unlink(path);
		if ((dev = file_create(base, path, bytes + STATE_HEADER_SIZE,
		    &error)) == NULL) {
			fprintf(stderr, "state_bench: %s: %s\n", path,
			    storage_strerror(error));
			return 1;
		}
		if ((fd = open(path, O_RDWR)) == -1)
			return 1;

		/* Baseline: what the same file takes sequentially, same
		 * sizes. */
		t0 = now();
		for (off = 0; off < bytes; off += MiB)
			if (pwrite(fd, buf, MiB, (off_t)(STATE_HEADER_SIZE +
			    off)) != (ssize_t)MiB)
				return 1;
		fdatasync(fd);
		raw_write = now() - t0;
		t0 = now();
		for (off = 0; off < bytes; off += MiB)
			if (pread(fd, buf, MiB, (off_t)(STATE_HEADER_SIZE +
			    off)) != (ssize_t)MiB)
				return 1;
		raw_read = now() - t0;
	}

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

	if (json) {
		printf("{\"mib\":%llu,\"raw_write_mib_s\":%.1f,"
		    "\"save_mib_s\":%.1f,\"raw_read_mib_s\":%.1f,"
		    "\"restore_mib_s\":%.1f}\n", (unsigned long long)mib,
		    mib / raw_write, mib / save, mib / raw_read, mib / restore);
	} else {
		printf("state_bench: %llu MiB on %s\n",
		    (unsigned long long)mib, path);
		printf("  raw write+flush %7.0f MiB/s   save    %7.0f MiB/s   "
		    "ratio %.2f\n", mib / raw_write, mib / save,
		    raw_write / save);
		printf("  raw read        %7.0f MiB/s   restore %7.0f MiB/s   "
		    "ratio %.2f\n", mib / raw_read, mib / restore,
		    raw_read / restore);
	}
	if (vol != NULL) {
		volume_close(vol);
		blockdev_close(lun);
	} else {
		blockdev_close(dev);
		close(fd);
		unlink(path);
	}
	free(buf);
	event_base_free(base);
	return 0;
}
