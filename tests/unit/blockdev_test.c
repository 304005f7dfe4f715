/*
 * Unit tests of the block device layer on real files: reads and writes
 * through a file and an extent window, range and alignment checks, zeroing,
 * and completions that never run inside their submitter.
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

#include "storage.h"

static char	path[64];

static int
setup(void **state)
{
	snprintf(path, sizeof path, "/tmp/haven-blockdev-%ld", (long)getpid());
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

static void
test_file_and_extent(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f, *e;
	uint8_t			 buf[4096], back[4096];
	int			 error = 0;

	f = file_create(base, path, 1 << 20, &error);
	assert_non_null(f);
	assert_int_equal(f->size, 1 << 20);
	assert_int_equal(f->block_size, 512);
	/* Creating it again is refused: never overwrite. */
	assert_null(file_create(base, path, 1 << 20, &error));
	assert_int_equal(error, -EEXIST);

	memset(buf, 0xab, sizeof buf);
	assert_int_equal(blockdev_write_sync(f, 8192, buf, sizeof buf,
	    BLOCKDEV_FUA), 0);
	e = extent_open(f, 4096, 65536, "disk");
	assert_non_null(e);
	assert_int_equal(blockdev_read_sync(e, 4096, back, sizeof back), 0);
	assert_memory_equal(buf, back, sizeof buf);
	/* The window's edges hold. */
	assert_int_equal(blockdev_write_sync(e, 65536, buf, 512, 0), -ENOSPC);
	assert_int_equal(blockdev_read_sync(e, 65536 - 512, back, 1024),
	    -EINVAL);
	assert_int_equal(blockdev_read_sync(e, 100, back, 512), -EINVAL);
	assert_null(extent_open(f, 1 << 20, 512, "past-end"));
	/* Zeroing through the window reaches the file. */
	assert_int_equal(blockdev_zero_sync(e, 4096, 4096), 0);
	assert_int_equal(blockdev_flush_sync(e), 0);
	assert_int_equal(blockdev_read_sync(f, 8192, back, sizeof back), 0);
	memset(buf, 0, sizeof buf);
	assert_memory_equal(buf, back, sizeof back);
	blockdev_close(e);
	blockdev_close(f);

	/* Reopen read-only: data persisted, writes refused by the OS. */
	f = file_open(base, path, 0, &error);
	assert_non_null(f);
	assert_int_equal(blockdev_write_sync(f, 0, buf, 512, 0), -EBADF);
	blockdev_close(f);
}

struct order {
	int	 submitting;
	int	 ran_inside;
	int	 count;
};

static void
order_cb(int result, void *arg)
{
	struct order	*o = arg;

	if (o->submitting)
		o->ran_inside = 1;
	o->count++;
}

static void
test_completions_deferred(void **state)
{
	struct event_base	*base = *state;
	struct blockdev		*f;
	struct order		 o = { 0, 0, 0 };
	uint8_t			 buf[512] = { 0 };
	int			 error, i;

	f = file_create(base, path, 65536, &error);
	o.submitting = 1;
	for (i = 0; i < 10; i++)
		blockdev_write(f, 0, buf, sizeof buf, 0, order_cb, &o);
	blockdev_read(f, 1 << 20, buf, sizeof buf, order_cb, &o);
	o.submitting = 0;
	assert_int_equal(o.count, 0);
	while (o.count < 11 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(o.count, 11);
	assert_false(o.ran_inside);
	blockdev_close(f);
}

static void
test_odd_file_refused(void **state)
{
	struct event_base	*base = *state;
	FILE			*fp = fopen(path, "w");
	int			 error = 0;

	fputs("not sectors", fp);
	fclose(fp);
	assert_null(file_open(base, path, 1, &error));
	assert_int_equal(error, STORAGE_E_CORRUPT);
	assert_non_null(strstr(storage_strerror(STORAGE_E_RESERVATION),
	    "fenced"));
	assert_string_equal(storage_strerror(-ENOENT),
	    "No such file or directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_and_extent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_completions_deferred,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_file_refused, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
