/*
 * haven-iscsi-bench: the physical limit a save or restore is measured
 * against: sequential pipelined WRITE16 then READ16 of SIZE bytes at OFFSET
 * of a LUN, through Haven's own iSCSI layer (1 MiB requests, queue depth 8,
 * a flush after the writes; the region written once before it is timed),
 * as one JSON line with MiB/s.
 *
 *   haven-iscsi-bench [--key KEY] URL OFFSET SIZE
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

struct bench {
	struct blockdev	*dev;
	uint8_t		*buf;
	uint64_t	 offset;
	uint64_t	 size;
	uint64_t	 next;		/* next byte to submit */
	uint64_t	 done;		/* bytes completed */
	int		 writing;
	int		 error;
};

static void	bench_submit(struct bench *);

static void
bench_cb(int result, void *arg)
{
	struct bench	*b = arg;

	if (result != 0 && b->error == 0)
		b->error = result;
	b->done += BENCH_CHUNK;
	bench_submit(b);
}

static void
bench_submit(struct bench *b)
{
	while (b->error == 0 && b->next < b->size &&
	    b->next - b->done < (uint64_t)BENCH_DEPTH * BENCH_CHUNK) {
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

	b->writing = writing;
	b->next = b->done = 0;
	bench_submit(b);
	while (b->error == 0 && b->done < b->size)
		event_base_loop(b->dev->base, EVLOOP_ONCE);
	if (writing && b->error == 0)
		b->error = blockdev_flush_sync(b->dev);
	return (double)(ev_now_ms() - start) / 1000.0;
}

int
main(int argc, char **argv)
{
	struct iscsi_options	 opts = { .queue_depth = BENCH_DEPTH };
	struct event_base	*base;
	struct bench		 b;
	uint64_t		 key = 0;
	double			 wsec, rsec, mib;
	int			 i = 1, error;
	char			 err[320];

	if (argc > 2 && strcmp(argv[1], "--key") == 0) {
		key = strtoull(argv[2], NULL, 16);
		i = 3;
	}
	if (argc - i != 3) {
		fprintf(stderr, "usage: haven-iscsi-bench [--key HEX] URL OFFSET "
		    "SIZE\n");
		return 2;
	}
	memset(&b, 0, sizeof b);
	b.offset = strtoull(argv[i + 1], NULL, 0);
	b.size = strtoull(argv[i + 2], NULL, 0) & ~(uint64_t)(BENCH_CHUNK - 1);
	log_init("haven-iscsi-bench", LOG_LEVEL_WARN);
	opts.initiator = getenv("HAVEN_INITIATOR");
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
	bench_run(&b, 1);
	wsec = bench_run(&b, 1);
	rsec = bench_run(&b, 0);
	if (b.error != 0) {
		fprintf(stderr, "haven-iscsi-bench: %s\n",
		    storage_strerror(b.error));
		return 1;
	}
	mib = (double)b.size / (1 << 20);
	printf("{\"bytes\":%" PRIu64 ",\"write_mib_s\":%.1f,\"read_mib_s\":"
	    "%.1f}\n", b.size, mib / wsec, mib / rsec);
	blockdev_close(b.dev);
	event_base_free(base);
	free(b.buf);
	return 0;
}
