/*
 * haven-iscsi-bench: what the LUN itself gives, through Haven's own iSCSI
 * layer and nothing above it: sequential pipelined WRITE16 then READ16 of
 * SIZE bytes at OFFSET (1 MiB requests, queue depth 8 or --depth, a flush
 * after the writes, counted; the region written once before it is timed, so
 * the target's backing is allocated), and with --random SECONDS also 4 KiB
 * requests at random 4 KiB-aligned offsets of the same region, read then
 * write, at queue depth 1 and 32, SECONDS each (no flush). One JSON line.
 * The raw column of tests/bench/storage, and the limit tests/bench/
 * saverestore and migrate measure a save and restore against.
 *
 *   haven-iscsi-bench [--key KEY] [--depth N] [--random SECONDS]
 *       [--no-prefill] URL OFFSET SIZE
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "storage.h"

#define BENCH_CHUNK	(1U << 20)
#define BENCH_DEPTH	8
#define BENCH_SMALL	4096U
#define BENCH_MAX_DEPTH	256

struct bench {
	struct blockdev	*dev;
	uint8_t		*buf;
	uint64_t	 offset;
	uint64_t	 size;
	uint64_t	 next;		/* next byte to submit */
	uint64_t	 done;		/* bytes completed */
	unsigned	 depth;
	unsigned	 in_flight;
	int		 writing;
	int		 error;
	/* random */
	int		 random;
	uint64_t	 ops;		/* completed */
	uint64_t	 deadline_ms;
	uint64_t	 seed;
	int		 stop;
};

static void	bench_submit(struct bench *);

static void
bench_cb(int result, void *arg)
{
	struct bench	*b = arg;

	if (result != 0 && b->error == 0)
		b->error = result;
	b->in_flight--;
	if (b->random) {
		b->ops++;
		if (ev_now_ms() >= b->deadline_ms)
			b->stop = 1;
	} else
		b->done += BENCH_CHUNK;
	bench_submit(b);
}

static uint64_t
bench_rand(struct bench *b)
{
	b->seed ^= b->seed << 13;
	b->seed ^= b->seed >> 7;
	b->seed ^= b->seed << 17;
	return b->seed;
}

static void
bench_submit(struct bench *b)
{
	uint64_t	off;

	if (b->random) {
		while (b->error == 0 && !b->stop && b->in_flight < b->depth) {
			off = b->offset + bench_rand(b) % (b->size /
			    BENCH_SMALL) * BENCH_SMALL;
			b->in_flight++;
			if (b->writing)
				blockdev_write(b->dev, off, b->buf +
				    (b->in_flight - 1) * BENCH_SMALL,
				    BENCH_SMALL, 0, bench_cb, b);
			else
				blockdev_read(b->dev, off, b->buf +
				    (b->in_flight - 1) * BENCH_SMALL,
				    BENCH_SMALL, bench_cb, b);
		}
		return;
	}
	while (b->error == 0 && b->next < b->size &&
	    b->next - b->done < (uint64_t)b->depth * BENCH_CHUNK) {
		b->in_flight++;
		if (b->writing)
			blockdev_write(b->dev, b->offset + b->next, b->buf,
			    BENCH_CHUNK, 0, bench_cb, b);
		else
			blockdev_read(b->dev, b->offset + b->next, b->buf,
			    BENCH_CHUNK, bench_cb, b);
		b->next += BENCH_CHUNK;
	}
}

static double
bench_run(struct bench *b, int writing)
{
	uint64_t	start = ev_now_ms();

	b->random = 0;
	b->writing = writing;
	b->next = b->done = 0;
	bench_submit(b);
	while (b->error == 0 && b->done < b->size)
		event_base_loop(b->dev->base, EVLOOP_ONCE);
	if (writing && b->error == 0)
		b->error = blockdev_flush_sync(b->dev);
	return (double)(ev_now_ms() - start) / 1000.0;
}

/* Random 4 KiB requests at depth for seconds: IOPS. */
static double
bench_random(struct bench *b, int writing, unsigned depth, unsigned seconds)
{
	unsigned	saved = b->depth;
	uint64_t	start = ev_now_ms();

	b->random = 1;
	b->writing = writing;
	b->depth = depth;
	b->ops = 0;
	b->stop = 0;
	b->seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)depth ^
	    ((uint64_t)writing << 32);
	b->deadline_ms = start + (uint64_t)seconds * 1000;
	bench_submit(b);
	while (b->error == 0 && (b->in_flight > 0 || !b->stop))
		event_base_loop(b->dev->base, EVLOOP_ONCE);
	b->depth = saved;
	b->random = 0;
	return (double)b->ops * 1000.0 / (double)(ev_now_ms() - start);
}

static void
usage(void)
{
	fprintf(stderr, "usage: haven-iscsi-bench [--key HEX] [--depth N] "
	    "[--random SECONDS] [--no-prefill] URL OFFSET SIZE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct iscsi_options	 opts = { .queue_depth = BENCH_DEPTH };
	struct event_base	*base;
	struct bench		 b;
	uint64_t		 key = 0;
	double			 wsec, rsec, mib, iops[4] = { 0, 0, 0, 0 };
	unsigned		 seconds = 0;
	int			 i = 1, error, prefill = 1;
	char			 err[320];

	memset(&b, 0, sizeof b);
	b.depth = BENCH_DEPTH;
	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key = strtoull(argv[i + 1], NULL, 16);
		else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc)
			b.depth = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--random") == 0 && i + 1 < argc)
			seconds = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--no-prefill") == 0) {
			prefill = 0;
			i++;
			continue;
		} else
			usage();
		i += 2;
	}
	if (argc - i != 3 || b.depth == 0 || b.depth > BENCH_MAX_DEPTH)
		usage();
	b.offset = strtoull(argv[i + 1], NULL, 0);
	b.size = strtoull(argv[i + 2], NULL, 0) & ~(uint64_t)(BENCH_CHUNK - 1);
	log_init("haven-iscsi-bench", LOG_LEVEL_WARN);
	opts.initiator = getenv("HAVEN_INITIATOR");
	/* The iSCSI queue as deep as the deepest request stream. */
	opts.queue_depth = b.depth > 32 ? b.depth : 32;
	if (seconds == 0)
		opts.queue_depth = b.depth;
	/* The host's CHAP accounts, as havend logs in (issue 15). */
	if (chap_setup(CHAP_PATH, 0, PR_KEY_SECRET_PATH, 0, err,
	    sizeof err) == -1) {
		fprintf(stderr, "haven-iscsi-bench: %s\n", err);
		return 1;
	}
	base = event_base_new();
	if ((error = iscsi_open_sync(base, argv[i], &opts, &b.dev)) != 0) {
		fprintf(stderr, "haven-iscsi-bench: %s: %s\n", argv[i],
		    storage_strerror(error));
		return 1;
	}
	if (key != 0 && (error = pr_claim_sync(b.dev, key)) != 0) {
		fprintf(stderr, "haven-iscsi-bench: claim: %s\n",
		    storage_strerror(error));
		return 1;
	}
	if ((b.buf = malloc(BENCH_CHUNK)) == NULL)
		return 1;
	for (uint32_t j = 0; j < BENCH_CHUNK; j++)
		b.buf[j] = (uint8_t)(j * 2654435761U >> 24);
	/* The first pass allocates the LUN's backing file: the save that
	 * follows writes blocks that already exist, so measure the second. */
	if (prefill)
		bench_run(&b, 1);
	wsec = bench_run(&b, 1);
	rsec = bench_run(&b, 0);
	if (seconds > 0 && b.error == 0) {
		iops[0] = bench_random(&b, 0, 1, seconds);
		iops[1] = bench_random(&b, 0, 32, seconds);
		iops[2] = bench_random(&b, 1, 1, seconds);
		iops[3] = bench_random(&b, 1, 32, seconds);
	}
	if (b.error != 0) {
		fprintf(stderr, "haven-iscsi-bench: %s\n",
		    storage_strerror(b.error));
		return 1;
	}
	mib = (double)b.size / (1 << 20);
	printf("{\"bytes\":%" PRIu64 ",\"depth\":%u,\"write_mib_s\":%.1f,"
	    "\"read_mib_s\":%.1f", b.size, b.depth, mib / wsec, mib / rsec);
	if (seconds > 0)
		printf(",\"randread_qd1_iops\":%.0f,\"randread_qd32_iops\":%.0f,"
		    "\"randwrite_qd1_iops\":%.0f,\"randwrite_qd32_iops\":%.0f",
		    iops[0], iops[1], iops[2], iops[3]);
	printf("}\n");
	blockdev_close(b.dev);
	event_base_free(base);
	free(b.buf);
	return 0;
}
