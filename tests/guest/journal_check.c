/*
 * journal_check.c: haven-journal-check, the host-side auditor of the test guest's disk
 * journal. It counts valid, empty and corrupt records in a raw image (or stdin) and, given
 * the guest's serial log, checks that every acknowledged record that could still be on
 * disk is there intact: the "no acknowledged guest write is lost" check of the lab tests.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* getline, fseeko, getopt_long; the top level defines it too */
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "journal_format.h"

#define JOURNAL_CHECK_REGION_OFFSET \
	((uint64_t)JOURNAL_FORMAT_START_LBA * JOURNAL_FORMAT_SECTOR_SIZE)
#define JOURNAL_CHECK_REGION_SIZE \
	((size_t)JOURNAL_FORMAT_SLOTS * JOURNAL_FORMAT_SECTOR_SIZE)

enum journal_check_exit {
	JOURNAL_CHECK_CLEAN = 0,
	JOURNAL_CHECK_PROBLEMS = 1,
	JOURNAL_CHECK_USAGE = 2,
};

struct journal_check_slot {
	enum journal_format_status	status;
	int				readable;	/* inside the image */
	uint64_t			boot_id;
	uint64_t			seq;
	uint64_t			tick;
};

struct journal_check_ack {
	uint64_t	boot_id;
	uint64_t	seq;
};

struct journal_check {
	const char			*image_name;
	uint64_t			 offset;
	struct journal_check_slot	 slots[JOURNAL_FORMAT_SLOTS];
	uint32_t			 slots_read;
	uint32_t			 valid, empty, corrupt;
	uint64_t			 max_seq;
	uint64_t			 max_seq_boot_id;

	struct journal_check_ack	*acks;
	size_t				 acks_count, acks_alloc;
	size_t				 acks_checked, acks_missing, acks_overwritten;

	json_object			*problems;	/* array of problem objects */
};

static const char *
journal_check_status_name(enum journal_format_status status)
{
	switch (status) {
	case JOURNAL_FORMAT_VALID:
		return "valid";
	case JOURNAL_FORMAT_EMPTY:
		return "empty";
	case JOURNAL_FORMAT_BAD_MAGIC:
		return "not zero and no HVNJRNL1 magic";
	case JOURNAL_FORMAT_BAD_CRC:
		return "CRC mismatch";
	case JOURNAL_FORMAT_BAD_SEQ:
		return "sequence number does not belong in this slot";
	case JOURNAL_FORMAT_BAD_PAYLOAD:
		return "payload pattern mismatch";
	}
	return "unknown";
}

static void
journal_check_usage(FILE *out)
{
	fprintf(out, "usage: haven-journal-check [--json] [--expect SERIAL_LOG] "
	    "[--offset BYTES] IMAGE|-\n");
}

static void
journal_check_add_problem(struct journal_check *check, json_object *problem)
{
	json_object_array_add(check->problems, problem);
}

/* Read up to size bytes; returns bytes read (short only at EOF) or -1 on error. */
static ssize_t
journal_check_read_full(FILE *in, void *buffer, size_t size)
{
	size_t done = 0, n;

	while (done < size) {
		n = fread((char *)buffer + done, 1, size - done, in);
		if (n == 0)
			return ferror(in) ? -1 : (ssize_t)done;
		done += n;
	}
	return (ssize_t)done;
}

/* Move to byte position target: seek where possible, otherwise read and discard. */
static int
journal_check_skip(FILE *in, uint64_t target, uint64_t *position)
{
	char discard[65536];
	size_t want;
	ssize_t got;

	if (fseeko(in, (off_t)target, SEEK_SET) == 0) {
		*position = target;
		return 0;
	}
	clearerr(in);
	while (*position < target) {
		want = target - *position < sizeof discard ?
		    (size_t)(target - *position) : sizeof discard;
		got = journal_check_read_full(in, discard, want);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		*position += (uint64_t)got;
	}
	return 0;
}

/* Read the journal region and classify every slot. Returns 0, or -1 with a message. */
static int
journal_check_load(struct journal_check *check, const char *path)
{
	static uint8_t region[JOURNAL_CHECK_REGION_SIZE];
	char discard[65536];
	uint64_t position = 0;
	struct stat st;
	ssize_t got;
	FILE *in;
	int from_stdin = strcmp(path, "-") == 0, regular_file;

	in = from_stdin ? stdin : fopen(path, "rb");
	if (in == NULL) {
		fprintf(stderr, "haven-journal-check: %s: %s\n", path, strerror(errno));
		return -1;
	}
	regular_file = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode);
	if (journal_check_skip(in, check->offset + JOURNAL_CHECK_REGION_OFFSET, &position) != 0)
		goto read_error;
	got = journal_check_read_full(in, region, sizeof region);
	if (got < 0)
		goto read_error;
	/* Drain a pipe so the writer (nbdcopy ... -) does not die of SIGPIPE. */
	if (!regular_file)
		while (fread(discard, 1, sizeof discard, in) > 0)
			;
	if (!from_stdin)
		fclose(in);

	check->slots_read = (uint32_t)((size_t)got / JOURNAL_FORMAT_SECTOR_SIZE);
	if (check->slots_read == 0) {
		fprintf(stderr, "haven-journal-check: %s: image too small: the journal "
		    "starts at byte %" PRIu64 " and nothing of it could be read\n", path,
		    check->offset + JOURNAL_CHECK_REGION_OFFSET);
		return -1;
	}
	for (uint32_t slot = 0; slot < check->slots_read; slot++) {
		struct journal_check_slot *s = &check->slots[slot];
		json_object *problem;

		s->readable = 1;
		s->status = journal_format_check(region + (size_t)slot *
		    JOURNAL_FORMAT_SECTOR_SIZE, slot, &s->boot_id, &s->seq, &s->tick);
		switch (s->status) {
		case JOURNAL_FORMAT_VALID:
			check->valid++;
			if (s->seq > check->max_seq) {
				check->max_seq = s->seq;
				check->max_seq_boot_id = s->boot_id;
			}
			break;
		case JOURNAL_FORMAT_EMPTY:
			check->empty++;
			break;
		default:
			check->corrupt++;
			problem = json_object_new_object();
			json_object_object_add(problem, "kind", json_object_new_string("corrupt"));
			json_object_object_add(problem, "slot", json_object_new_int64(slot));
			json_object_object_add(problem, "lba", json_object_new_int64(
			    JOURNAL_FORMAT_START_LBA + slot));
			json_object_object_add(problem, "reason", json_object_new_string(
			    journal_check_status_name(s->status)));
			journal_check_add_problem(check, problem);
			break;
		}
	}
	if (check->slots_read < JOURNAL_FORMAT_SLOTS) {
		json_object *problem = json_object_new_object();

		json_object_object_add(problem, "kind", json_object_new_string("truncated"));
		json_object_object_add(problem, "slots_read",
		    json_object_new_int64(check->slots_read));
		json_object_object_add(problem, "reason", json_object_new_string(
		    "image ends inside the journal region"));
		journal_check_add_problem(check, problem);
	}
	return 0;

read_error:
	fprintf(stderr, "haven-journal-check: %s: read error: %s\n", path, strerror(errno));
	if (!from_stdin)
		fclose(in);
	return -1;
}

/* Pull every "HAVEN-GUEST boot=<16 hex> ... ack=<seq>" out of a serial log. */
static int
journal_check_load_acks(struct journal_check *check, const char *path)
{
	static const char prefix[] = "HAVEN-GUEST boot=";
	char *line = NULL, *at, *end, *ack;
	size_t line_size = 0;
	FILE *in;

	in = fopen(path, "r");
	if (in == NULL) {
		fprintf(stderr, "haven-journal-check: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &line_size, in) != -1) {
		/* Other text may precede the guest's output on the same line. */
		for (at = strstr(line, prefix); at != NULL; at = strstr(at, prefix)) {
			uint64_t boot_id, seq;

			at += sizeof prefix - 1;
			boot_id = strtoull(at, &end, 16);
			if (end - at != 16 || *end != ' ')
				continue;
			ack = end + 1;
			if (strncmp(ack, "ack=", 4) != 0 || ack[4] < '0' || ack[4] > '9')
				continue;
			seq = strtoull(ack + 4, &end, 10);
			if (check->acks_count == check->acks_alloc) {
				size_t alloc = check->acks_alloc ? 2 * check->acks_alloc : 256;
				void *grown = realloc(check->acks, alloc * sizeof *check->acks);

				if (grown == NULL) {
					fprintf(stderr, "haven-journal-check: out of memory\n");
					free(line);
					fclose(in);
					return -1;
				}
				check->acks = grown;
				check->acks_alloc = alloc;
			}
			check->acks[check->acks_count].boot_id = boot_id;
			check->acks[check->acks_count].seq = seq;
			check->acks_count++;
		}
	}
	free(line);
	if (ferror(in)) {
		fprintf(stderr, "haven-journal-check: %s: read error\n", path);
		fclose(in);
		return -1;
	}
	fclose(in);
	return 0;
}

/*
 * An acked record can only legitimately be gone if a later seq reused its slot, i.e. if
 * seq <= max_seq - 1024. Everything newer must be on disk exactly as acknowledged.
 */
static void
journal_check_acks(struct journal_check *check)
{
	char boot_hex[17], found[160];

	for (size_t i = 0; i < check->acks_count; i++) {
		const struct journal_check_ack *ack = &check->acks[i];
		const struct journal_check_slot *slot;
		json_object *problem;

		if (ack->seq == 0)
			continue;
		if (check->max_seq >= JOURNAL_FORMAT_SLOTS &&
		    ack->seq <= check->max_seq - JOURNAL_FORMAT_SLOTS) {
			check->acks_overwritten++;
			continue;
		}
		check->acks_checked++;
		slot = &check->slots[journal_format_slot(ack->seq)];
		if (slot->readable && slot->status == JOURNAL_FORMAT_VALID &&
		    slot->seq == ack->seq && slot->boot_id == ack->boot_id)
			continue;

		check->acks_missing++;
		if (!slot->readable)
			snprintf(found, sizeof found, "slot is beyond the end of the image");
		else if (slot->status == JOURNAL_FORMAT_VALID)
			snprintf(found, sizeof found, "slot holds seq %" PRIu64 " of boot %016"
			    PRIx64, slot->seq, slot->boot_id);
		else
			snprintf(found, sizeof found, "slot is %s%s",
			    slot->status == JOURNAL_FORMAT_EMPTY ? "" : "corrupt: ",
			    journal_check_status_name(slot->status));
		snprintf(boot_hex, sizeof boot_hex, "%016" PRIx64, ack->boot_id);
		problem = json_object_new_object();
		json_object_object_add(problem, "kind", json_object_new_string("missing"));
		json_object_object_add(problem, "boot", json_object_new_string(boot_hex));
		json_object_object_add(problem, "seq", json_object_new_int64((int64_t)ack->seq));
		json_object_object_add(problem, "slot",
		    json_object_new_int64(journal_format_slot(ack->seq)));
		json_object_object_add(problem, "reason", json_object_new_string(found));
		journal_check_add_problem(check, problem);
	}
}

static void
journal_check_print_human(const struct journal_check *check, int expect, int clean)
{
	size_t count = json_object_array_length(check->problems);

	printf("%s: %u/%u slots read, %u valid, %u empty, %u corrupt, max seq %" PRIu64,
	    check->image_name, check->slots_read, JOURNAL_FORMAT_SLOTS, check->valid,
	    check->empty, check->corrupt, check->max_seq);
	if (expect)
		printf("; %zu acks, %zu checked, %zu missing, %zu overwritten",
		    check->acks_count, check->acks_checked, check->acks_missing,
		    check->acks_overwritten);
	printf(": %s\n", clean ? "OK" : "PROBLEMS");
	for (size_t i = 0; i < count; i++) {
		json_object *problem = json_object_array_get_idx(check->problems, i);
		json_object *field;
		const char *kind = "";

		if (json_object_object_get_ex(problem, "kind", &field))
			kind = json_object_get_string(field);
		if (strcmp(kind, "corrupt") == 0) {
			json_object_object_get_ex(problem, "slot", &field);
			printf("corrupt: slot %d (LBA %d): ", json_object_get_int(field),
			    JOURNAL_FORMAT_START_LBA + json_object_get_int(field));
		} else if (strcmp(kind, "missing") == 0) {
			json_object *boot, *seq;

			json_object_object_get_ex(problem, "boot", &boot);
			json_object_object_get_ex(problem, "seq", &seq);
			printf("missing: acknowledged record boot=%s seq=%" PRId64 ": ",
			    json_object_get_string(boot), json_object_get_int64(seq));
		} else
			printf("%s: ", kind);
		json_object_object_get_ex(problem, "reason", &field);
		printf("%s\n", json_object_get_string(field));
	}
}

static void
journal_check_print_json(struct journal_check *check, int expect, int clean)
{
	json_object *root = json_object_new_object();
	char boot_hex[17];

	snprintf(boot_hex, sizeof boot_hex, "%016" PRIx64, check->max_seq_boot_id);
	json_object_object_add(root, "image", json_object_new_string(check->image_name));
	json_object_object_add(root, "offset", json_object_new_int64((int64_t)check->offset));
	json_object_object_add(root, "slots", json_object_new_int(JOURNAL_FORMAT_SLOTS));
	json_object_object_add(root, "slots_read", json_object_new_int64(check->slots_read));
	json_object_object_add(root, "valid", json_object_new_int64(check->valid));
	json_object_object_add(root, "empty", json_object_new_int64(check->empty));
	json_object_object_add(root, "corrupt", json_object_new_int64(check->corrupt));
	json_object_object_add(root, "max_seq", json_object_new_int64((int64_t)check->max_seq));
	json_object_object_add(root, "max_seq_boot",
	    check->max_seq ? json_object_new_string(boot_hex) : NULL);
	if (expect) {
		json_object_object_add(root, "acks",
		    json_object_new_int64((int64_t)check->acks_count));
		json_object_object_add(root, "acks_checked",
		    json_object_new_int64((int64_t)check->acks_checked));
		json_object_object_add(root, "acks_missing",
		    json_object_new_int64((int64_t)check->acks_missing));
		json_object_object_add(root, "acks_overwritten",
		    json_object_new_int64((int64_t)check->acks_overwritten));
	}
	json_object_object_add(root, "problems", json_object_get(check->problems));
	json_object_object_add(root, "ok", json_object_new_boolean(clean));
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "expect", required_argument, NULL, 'e' },
		{ "offset", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct journal_check check;
	const char *expect_path = NULL;
	char *end;
	int json = 0, option, clean;

	while ((option = getopt_long(argc, argv, "je:o:h", options, NULL)) != -1) {
		switch (option) {
		case 'j':
			json = 1;
			break;
		case 'e':
			expect_path = optarg;
			break;
		case 'o':
			errno = 0;
			check.offset = strtoull(optarg, &end, 0);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-') {
				fprintf(stderr, "haven-journal-check: bad --offset '%s'\n", optarg);
				return JOURNAL_CHECK_USAGE;
			}
			break;
		case 'h':
			journal_check_usage(stdout);
			return JOURNAL_CHECK_CLEAN;
		default:
			journal_check_usage(stderr);
			return JOURNAL_CHECK_USAGE;
		}
	}
	if (argc - optind != 1) {
		journal_check_usage(stderr);
		return JOURNAL_CHECK_USAGE;
	}
	check.image_name = argv[optind];
	check.problems = json_object_new_array();
	if (journal_check_load(&check, check.image_name) != 0)
		return JOURNAL_CHECK_USAGE;
	if (expect_path != NULL) {
		if (journal_check_load_acks(&check, expect_path) != 0)
			return JOURNAL_CHECK_USAGE;
		journal_check_acks(&check);
	}
	clean = json_object_array_length(check.problems) == 0;
	if (json)
		journal_check_print_json(&check, expect_path != NULL, clean);
	else
		journal_check_print_human(&check, expect_path != NULL, clean);
	json_object_put(check.problems);
	free(check.acks);
	return clean ? JOURNAL_CHECK_CLEAN : JOURNAL_CHECK_PROBLEMS;
}
