/*
 * Unit tests of Haven volumes on real files: format and reopen, extents in
 * place and inside the device, and every kind of bad label refused with its
 * own error and without a single byte written.
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

static char	path[64];

static int
setup(void **state)
{
	snprintf(path, sizeof path, "/tmp/haven-volume-%ld", (long)getpid());
	unlink(path);
	*state = event_base_new();
	return 0;
}

static int
teardown(void **state)
{
	unlink(path);
	event_base_free(*state);
	return 0;
}

static struct blockdev *
fresh(struct event_base *base, uint64_t size)
{
	int	error;

	unlink(path);
	return file_create(base, path, size, &error);
}

static void
test_format_open(void **state)
{
	struct event_base	*base = *state;
	struct volume_params	 params = { .cluster_name = "lab" };
	struct volume_info	 a, b;
	struct volume		*v;
	struct blockdev		*dev = fresh(base, 256 << 20), *disk;
	uint8_t			 buf[512];

	assert_int_equal(volume_format_sync(dev, &params, &v), 0);
	volume_get_info(v, &a);
	assert_string_equal(a.cluster_name, "lab");
	assert_int_equal(a.extent_offset[VOLUME_EXTENT_LEASE], 1 << 20);
	assert_int_equal(a.extent_size[VOLUME_EXTENT_STATE], 64 << 20);
	assert_int_equal(a.extent_offset[VOLUME_EXTENT_DISK] +
	    a.extent_size[VOLUME_EXTENT_DISK], 256 << 20);
	disk = volume_extent(v, VOLUME_EXTENT_DISK);
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(blockdev_write_sync(disk, 0, buf, sizeof buf, 0), 0);
	volume_close(v);

	/* A second format is refused; the volume is untouched. */
	assert_int_equal(volume_format_sync(dev, &params, &v), -EEXIST);
	assert_int_equal(volume_open_sync(dev, &v), 0);
	volume_get_info(v, &b);
	assert_string_equal(a.uuid, b.uuid);
	assert_int_equal(strlen(b.uuid), 36);
	assert_memory_equal(a.extent_offset, b.extent_offset,
	    sizeof a.extent_offset);
	disk = volume_extent(v, VOLUME_EXTENT_DISK);
	memset(buf, 0, sizeof buf);
	assert_int_equal(blockdev_read_sync(disk, 0, buf, sizeof buf), 0);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(disk->size, b.extent_size[VOLUME_EXTENT_DISK]);
	volume_close(v);
	blockdev_close(dev);
}

static void
test_state_size(void **state)
{
	struct event_base	*base = *state;
	struct volume_params	 params = { "lab", 100 << 20 };
	struct volume_info	 info;
	struct volume		*v;
	struct blockdev		*dev = fresh(base, 256 << 20);

	assert_int_equal(volume_format_sync(dev, &params, &v), 0);
	volume_get_info(v, &info);
	assert_int_equal(info.extent_size[VOLUME_EXTENT_STATE], 100 << 20);
	volume_close(v);
	blockdev_close(dev);

	/* Too small for the state it asks for. */
	dev = fresh(base, 64 << 20);
	assert_int_equal(volume_format_sync(dev, &params, &v), -ENOSPC);
	blockdev_close(dev);
}

/* Rewrite one label byte (and optionally fix the CRC), then expect
 * `want` from open and the file unchanged by the attempt. */
static void
expect_bad_label(struct event_base *base, size_t off, uint8_t value,
    int fix_crc, int want)
{
	struct volume_params	 params = { .cluster_name = "lab" };
	struct blockdev		*dev = fresh(base, 64 << 20);
	struct volume		*v;
	uint8_t			 label[512], after[512];
	uint32_t		 crc;

	assert_int_equal(volume_format_sync(dev, &params, &v), 0);
	volume_close(v);
	blockdev_read_sync(dev, 0, label, sizeof label);
	label[off] = value;
	if (fix_crc) {
		crc = (uint32_t)crc32(0, label, 508);
		label[508] = (uint8_t)crc;
		label[509] = (uint8_t)(crc >> 8);
		label[510] = (uint8_t)(crc >> 16);
		label[511] = (uint8_t)(crc >> 24);
	}
	blockdev_write_sync(dev, 0, label, sizeof label, 0);
	assert_int_equal(volume_open_sync(dev, &v), want);
	assert_null(v);
	blockdev_read_sync(dev, 0, after, sizeof after);
	assert_memory_equal(label, after, sizeof label);
	blockdev_close(dev);
}

static void
test_bad_labels(void **state)
{
	struct event_base	*base = *state;

	expect_bad_label(base, 0, 'X', 0, STORAGE_E_NOT_VOLUME);
	expect_bad_label(base, 40, 'Z', 0, STORAGE_E_CORRUPT);	/* CRC */
	expect_bad_label(base, 8, 2, 1, STORAGE_E_UNSUPPORTED);	/* version */
	/* Volume size beyond the device. */
	expect_bad_label(base, 100, 0x10, 1, STORAGE_E_CORRUPT);
	/* Disk extent offset moved into the state extent. */
	expect_bad_label(base, 120 + 2 * 24 + 8 + 2, 0x01, 1,
	    STORAGE_E_CORRUPT);
	/* Cluster name with no terminator. */
	{
		struct volume_params	 params = { .cluster_name = "lab" };
		struct blockdev		*dev = fresh(base, 64 << 20);
		struct volume		*v;
		uint8_t			 label[512];
		uint32_t		 crc;

		volume_format_sync(dev, &params, &v);
		volume_close(v);
		blockdev_read_sync(dev, 0, label, sizeof label);
		memset(label + 32, 'n', 64);
		crc = (uint32_t)crc32(0, label, 508);
		memcpy(label + 508, &crc, 4);	/* little-endian host */
		blockdev_write_sync(dev, 0, label, sizeof label, 0);
		assert_int_equal(volume_open_sync(dev, &v),
		    STORAGE_E_CORRUPT);
		blockdev_close(dev);
	}
}

static void
test_blank_and_tiny(void **state)
{
	struct event_base	*base = *state;
	struct volume_params	 params = { .cluster_name = "lab" };
	struct blockdev		*dev = fresh(base, 64 << 20);
	struct volume		*v;

	assert_int_equal(volume_open_sync(dev, &v), STORAGE_E_NOT_VOLUME);
	blockdev_close(dev);
	dev = fresh(base, 1 << 20);
	assert_int_equal(volume_format_sync(dev, &params, &v), -ENOSPC);
	assert_int_equal(volume_open_sync(dev, &v), STORAGE_E_NOT_VOLUME);
	blockdev_close(dev);
}

/*
 * vm delete --wipe: a lease naming another VM refuses the wipe and nothing
 * changes; the VM's own wipe clears its lease and state header, keeps the
 * disk, and lets a new VM (another UUID) claim the volume.
 */
static void
test_wipe(void **state)
{
	static const char	 old_vm[] = "11111111-2222-4333-8444-555555555555";
	static const char	 new_vm[] = "66666666-7777-4888-8999-aaaaaaaaaaaa";
	struct event_base	*base = *state;
	struct volume_params	 params = { .cluster_name = "lab" };
	struct lease_record	 mine, was;
	struct volume		*v;
	struct blockdev		*dev = fresh(base, 256 << 20), *lease, *st, *disk;
	uint8_t			 buf[512];

	assert_int_equal(volume_format_sync(dev, &params, &v), 0);
	lease = volume_extent(v, VOLUME_EXTENT_LEASE);
	st = volume_extent(v, VOLUME_EXTENT_STATE);
	disk = volume_extent(v, VOLUME_EXTENT_DISK);
	/* Never used: a wipe is a no-op that succeeds. */
	assert_int_equal(volume_wipe_sync(v, old_vm, NULL), 0);
	memset(&mine, 0, sizeof mine);
	snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", old_vm);
	snprintf(mine.owner, sizeof mine.owner, "h1");
	mine.node_id = 1;
	mine.generation = 7;
	assert_int_equal(lease_claim_sync(lease, &mine), 0);
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(blockdev_write_sync(st, 0, buf, sizeof buf, 0), 0);
	assert_int_equal(blockdev_write_sync(disk, 0, buf, sizeof buf, 0), 0);

	/* Today's refusal: a new VM cannot claim it. */
	snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", new_vm);
	mine.generation = 1;
	assert_int_equal(lease_claim_sync(lease, &mine), -EEXIST);
	/* Another VM's wipe is refused and names the holder. */
	assert_int_equal(volume_wipe_sync(v, new_vm, &was), -EEXIST);
	assert_string_equal(was.vm_uuid, old_vm);
	assert_int_equal(blockdev_read_sync(st, 0, buf, sizeof buf), 0);
	assert_int_equal(buf[0], 0x5a);

	/* The old VM's wipe (its UUID in any case) clears lease and state. */
	assert_int_equal(volume_wipe_sync(v, "11111111-2222-4333-8444-"
	    "555555555555", &was), 0);
	assert_int_equal(lease_read_sync(lease, &was), 0);
	assert_int_equal(was.generation, 0);
	assert_int_equal(blockdev_read_sync(st, 0, buf, sizeof buf), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(blockdev_read_sync(disk, 0, buf, sizeof buf), 0);
	assert_int_equal(buf[0], 0x5a);		/* the guest's data stays */
	assert_int_equal(lease_claim_sync(lease, &mine), 0);
	volume_close(v);
	blockdev_close(dev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_labels, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blank_and_tiny, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wipe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
