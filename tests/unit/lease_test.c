/*
 * Unit tests of the volume lease on a real file: an empty lease, claim and
 * read back, the generation and owner rules, and damaged records refused
 * without a byte written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <zlib.h>

#include "storage.h"

#define LEASE_EXTENT_OFFSET	(1 << 20)
#define LEASE_EXTENT_SIZE	(1 << 20)

#define UUID_A	"3f2a0c1e-9b7d-4e21-8a55-0123456789ab"
#define UUID_B	"7c4d2e10-1111-4222-8333-444455556666"

struct fixture {
	struct event_base	*base;
	struct blockdev		*file;
	struct blockdev		*lease;
	char			 path[64];
};

static int
setup(void **state)
{
	struct fixture	*f;
	int		 error;

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/haven-lease-%ld",
	    (long)getpid());
	unlink(f->path);
	f->base = event_base_new();
	f->file = file_create(f->base, f->path, 4 << 20, &error);
	assert_non_null(f->file);
	f->lease = extent_open(f->file, LEASE_EXTENT_OFFSET, LEASE_EXTENT_SIZE,
	    "lease");
	assert_non_null(f->lease);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	blockdev_close(f->lease);
	blockdev_close(f->file);
	unlink(f->path);
	event_base_free(f->base);
	free(f);
	return 0;
}

static struct lease_record
record(const char *uuid, const char *owner, uint32_t node_id,
    uint64_t generation)
{
	struct lease_record	r;

	memset(&r, 0, sizeof r);
	snprintf(r.vm_uuid, sizeof r.vm_uuid, "%s", uuid);
	snprintf(r.owner, sizeof r.owner, "%s", owner);
	r.node_id = node_id;
	r.generation = generation;
	return r;
}

static void
read_sector(struct fixture *f, uint8_t *buf)
{
	assert_int_equal(blockdev_read_sync(f->lease, 0, buf, 512), 0);
}

static void
test_empty(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 r;

	memset(&r, 0xaa, sizeof r);
	assert_int_equal(lease_read_sync(f->lease, &r), 0);
	assert_int_equal(r.generation, 0);
	assert_string_equal(r.owner, "");
	assert_string_equal(r.vm_uuid, "");
}

static void
test_claim_read_back(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 mine = record(UUID_A, "host-a", 1, 7), r;
	uint8_t			 buf[512];

	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	assert_int_equal(lease_read_sync(f->lease, &r), 0);
	assert_string_equal(r.vm_uuid, UUID_A);
	assert_string_equal(r.owner, "host-a");
	assert_int_equal(r.node_id, 1);
	assert_int_equal(r.generation, 7);
	assert_true(r.time_us > 1600000000ULL * 1000000);

	/* At offset 0 of the extent, magic first; upper-case UUIDs match. */
	read_sector(f, buf);
	assert_memory_equal(buf, "HVNLEASE", 8);
	mine = record("3F2A0C1E-9B7D-4E21-8A55-0123456789AB", "host-a", 1, 8);
	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	assert_int_equal(lease_read_sync(f->lease, &r), 0);
	assert_string_equal(r.vm_uuid, UUID_A);
	assert_int_equal(r.generation, 8);
}

struct claim_result {
	int			 done;
	int			 result;
	struct lease_record	 record;
	int			 have_record;
};

static void
claim_cb(int result, const struct lease_record *r, void *arg)
{
	struct claim_result	*c = arg;

	c->done = 1;
	c->result = result;
	c->have_record = r != NULL;
	if (r != NULL)
		c->record = *r;
}

static void
test_newer_refuses_older(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 newer = record(UUID_A, "host-b", 2, 10);
	struct lease_record	 older = record(UUID_A, "host-a", 1, 9);
	struct claim_result	 c = { 0 };
	uint8_t			 before[512], after[512];

	assert_int_equal(lease_claim_sync(f->lease, &newer), 0);
	read_sector(f, before);
	lease_claim(f->lease, &older, claim_cb, &c);
	assert_int_equal(c.done, 0);	/* never from inside the call */
	assert_int_equal(storage_wait(f->base, &c.done), 0);
	assert_int_equal(c.result, STORAGE_E_LEASE_NEWER);
	/* The refusal says who holds it. */
	assert_true(c.have_record);
	assert_string_equal(c.record.owner, "host-b");
	assert_int_equal(c.record.generation, 10);
	read_sector(f, after);
	assert_memory_equal(before, after, 512);

	/* The newer holder may move on; an older one never comes back. */
	newer.generation = 11;
	assert_int_equal(lease_claim_sync(f->lease, &newer), 0);
	older.generation = 10;
	assert_int_equal(lease_claim_sync(f->lease, &older),
	    STORAGE_E_LEASE_NEWER);
}

static void
test_same_generation(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 mine = record(UUID_A, "host-a", 1, 5), r;
	struct lease_record	 other = record(UUID_A, "host-b", 2, 5);
	struct lease_record	 renamed = record(UUID_A, "host-a", 3, 5);
	uint8_t			 before[512], after[512];

	/* Re-claiming our own generation is idempotent. */
	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	assert_int_equal(lease_read_sync(f->lease, &r), 0);
	assert_string_equal(r.owner, "host-a");
	assert_int_equal(r.generation, 5);

	/* Another owner at the same generation (name or node id) is not. */
	read_sector(f, before);
	assert_int_equal(lease_claim_sync(f->lease, &other),
	    STORAGE_E_LEASE_NEWER);
	assert_int_equal(lease_claim_sync(f->lease, &renamed),
	    STORAGE_E_LEASE_NEWER);
	read_sector(f, after);
	assert_memory_equal(before, after, 512);
}

static void
test_other_vm(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 a = record(UUID_A, "host-a", 1, 5);
	struct lease_record	 b = record(UUID_B, "host-a", 1, 6);
	uint8_t			 before[512], after[512];

	assert_int_equal(lease_claim_sync(f->lease, &a), 0);
	read_sector(f, before);
	assert_int_equal(lease_claim_sync(f->lease, &b), -EEXIST);
	read_sector(f, after);
	assert_memory_equal(before, after, 512);
}

static void
test_bad_mine(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 r;
	uint8_t			 buf[512];
	static const char	*bad_uuids[] = {
		"", "3f2a0c1e-9b7d-4e21-8a55-0123456789a",
		"3f2a0c1e-9b7d-4e21-8a55-0123456789ag",
		"3f2a0c1e+9b7d-4e21-8a55-0123456789ab",
	};
	size_t			 i;

	r = record(UUID_A, "host-a", 1, 0);
	assert_int_equal(lease_claim_sync(f->lease, &r), -EINVAL);
	r = record(UUID_A, "", 1, 1);
	assert_int_equal(lease_claim_sync(f->lease, &r), -EINVAL);
	r = record(UUID_A, "host-a", 1, 1);
	memset(r.owner, 'x', sizeof r.owner);	/* no NUL */
	assert_int_equal(lease_claim_sync(f->lease, &r), -EINVAL);
	for (i = 0; i < sizeof bad_uuids / sizeof bad_uuids[0]; i++) {
		r = record(bad_uuids[i], "host-a", 1, 1);
		assert_int_equal(lease_claim_sync(f->lease, &r), -EINVAL);
	}
	read_sector(f, buf);
	for (i = 0; i < sizeof buf; i++)
		assert_int_equal(buf[i], 0);
}

/* Every byte of the record is covered: flip each, one at a time. */
static void
test_corrupt(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 mine = record(UUID_A, "host-a", 1, 3), r;
	struct lease_record	 next = record(UUID_A, "host-a", 1, 4);
	uint8_t			 good[512], bad[512], after[512];
	size_t			 i;

	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	read_sector(f, good);
	for (i = 0; i < sizeof good; i++) {
		memcpy(bad, good, sizeof bad);
		bad[i] ^= 0x01;
		assert_int_equal(blockdev_write_sync(f->lease, 0, bad, 512, 0),
		    0);
		assert_int_equal(lease_read_sync(f->lease, &r),
		    STORAGE_E_CORRUPT);
		assert_int_equal(lease_claim_sync(f->lease, &next),
		    STORAGE_E_CORRUPT);
		read_sector(f, after);
		assert_memory_equal(bad, after, 512);
	}

	/* Garbage that is not a lease at all. */
	memset(bad, 0, sizeof bad);
	memcpy(bad, "HAVENVOL", 8);
	assert_int_equal(blockdev_write_sync(f->lease, 0, bad, 512, 0), 0);
	assert_int_equal(lease_read_sync(f->lease, &r), STORAGE_E_CORRUPT);
	assert_int_equal(lease_claim_sync(f->lease, &next), STORAGE_E_CORRUPT);
}

/* A record whose CRC is right but whose fields are not is still corrupt. */
static void
test_corrupt_with_good_crc(void **state)
{
	struct fixture		*f = *state;
	struct lease_record	 mine = record(UUID_A, "host-a", 1, 3), r;
	uint8_t			 good[512], bad[512];
	struct {
		size_t	 offset;
		uint8_t	 value;
	} cases[] = {
		{ 8, 2 },		/* version */
		{ 13, 0 },		/* record size (512, byte 1) */
		{ 32, 0 },		/* empty owner */
		{ 40, 'x' },		/* byte after the owner's NUL */
		{ 100, 1 },		/* reserved */
		{ 300, 1 },		/* reserved */
		{ 104, 0 },		/* generation 0 */
	};
	size_t			 i;

	assert_int_equal(lease_claim_sync(f->lease, &mine), 0);
	read_sector(f, good);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t	crc;

		memcpy(bad, good, sizeof bad);
		bad[cases[i].offset] = cases[i].value;
		crc = (uint32_t)crc32(0, bad, 508);
		bad[508] = (uint8_t)crc;
		bad[509] = (uint8_t)(crc >> 8);
		bad[510] = (uint8_t)(crc >> 16);
		bad[511] = (uint8_t)(crc >> 24);
		assert_int_equal(blockdev_write_sync(f->lease, 0, bad, 512, 0),
		    0);
		assert_int_equal(lease_read_sync(f->lease, &r),
		    STORAGE_E_CORRUPT);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_read_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_newer_refuses_older, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_same_generation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_mine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_with_good_crc,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
