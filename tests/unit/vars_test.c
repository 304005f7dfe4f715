/*
 * Unit tests of the UEFI variable store on a volume (storage/vars.c), on a
 * real file: made from the template at the first open and kept after,
 * beside the label and apart from the lease; never overwritten by a
 * template of another size; not made where it may not be.
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

#define TEMPLATE_LEN	(528 << 10)	/* OVMF_VARS_4M.fd */

static char	path[64];

struct vars_wait {
	int		 done;
	int		 result;
	struct blockdev	*store;
};

static void
vars_done(int result, struct blockdev *store, void *arg)
{
	struct vars_wait	*w = arg;

	w->done = 1;
	w->result = result;
	w->store = store;
}

static int
vars_open_sync(struct blockdev *region, const void *template, size_t len,
    int may_create, struct blockdev **store)
{
	struct vars_wait	w = { 0, 0, NULL };

	vars_open(region, template, len, may_create, vars_done, &w);
	assert_int_equal(storage_wait(region->base, &w.done), 0);
	*store = w.store;
	return w.result;
}

static int
setup(void **state)
{
	snprintf(path, sizeof path, "/tmp/haven-vars-%ld", (long)getpid());
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
test_made_then_kept(void **state)
{
	struct event_base	*base = *state;
	struct volume_params	 params = { .cluster_name = "lab" };
	struct volume		*v;
	struct blockdev		*dev, *store;
	uint8_t			*template = malloc(TEMPLATE_LEN);
	uint8_t			*buf = malloc(TEMPLATE_LEN);
	uint8_t			 label[512], label2[512];
	int			 error;

	memset(template, 0xa5, TEMPLATE_LEN);
	dev = file_create(base, path, 64 << 20, &error);
	assert_non_null(dev);
	assert_int_equal(volume_format_sync(dev, &params, &v), 0);
	assert_int_equal(blockdev_read_sync(dev, 0, label, sizeof label), 0);
	assert_true(vars_capacity(volume_vars_region(v)) >= TEMPLATE_LEN);

	/* Not there, and may not be made (a live migration's target). */
	assert_int_equal(vars_open_sync(volume_vars_region(v), NULL,
	    TEMPLATE_LEN, 0, &store), -ENOENT);
	/* The first start makes it from the template. */
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    TEMPLATE_LEN, 1, &store), 0);
	assert_int_equal(store->size, TEMPLATE_LEN);
	assert_int_equal(blockdev_read_sync(store, 0, buf, TEMPLATE_LEN), 0);
	assert_memory_equal(buf, template, TEMPLATE_LEN);
	/* The firmware writes a variable. */
	memset(buf, 0x3c, 4096);
	assert_int_equal(blockdev_write_sync(store, 8192, buf, 4096, 0), 0);
	blockdev_close(store);
	volume_close(v);

	/* Another host opens the volume: the store is kept as written, the
	 * label and the lease extent untouched. */
	assert_int_equal(volume_open_sync(dev, &v), 0);
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    TEMPLATE_LEN, 1, &store), 0);
	assert_int_equal(blockdev_read_sync(store, 8192, buf, 4096), 0);
	assert_int_equal(buf[0], 0x3c);
	assert_int_equal(buf[4095], 0x3c);
	blockdev_close(store);
	assert_int_equal(vars_open_sync(volume_vars_region(v), NULL,
	    TEMPLATE_LEN, 0, &store), 0);
	blockdev_close(store);
	assert_int_equal(blockdev_read_sync(dev, 0, label2, sizeof label2), 0);
	assert_memory_equal(label, label2, sizeof label);
	assert_true(volume_vars_region(v)->size + (256 << 10) <= 1 << 20);

	/* A firmware with another vars size: refused, nothing written. */
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    128 << 10, 1, &store), -EMSGSIZE);
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    TEMPLATE_LEN, 1, &store), 0);
	assert_int_equal(blockdev_read_sync(store, 8192, buf, 4096), 0);
	assert_int_equal(buf[0], 0x3c);
	blockdev_close(store);
	/* Bigger than the region, or not in whole blocks. */
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    1 << 20, 1, &store), -EINVAL);
	assert_int_equal(vars_open_sync(volume_vars_region(v), template,
	    1000, 1, &store), -EINVAL);
	volume_close(v);
	blockdev_close(dev);
	free(template);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_made_then_kept, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
