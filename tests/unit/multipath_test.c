/*
 * Unit tests of multipath.c's path logic over fake paths (a real test is
 * lab.multipath on tgt): round robin, a flush on every path that carried
 * writes, a request moved off a path that hangs or fails, a fence that is
 * never moved, and requests that wait with no path, then resume on a path
 * that logged in again once the owner granted its registration.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "storage.h"

#define LUN_SIZE	(64 * 1024)

enum fake_mode {
	FAKE_OK,
	FAKE_HANG,		/* nothing comes back */
	FAKE_FAIL,		/* every command fails with fail */
};

struct fake_req {
	TAILQ_ENTRY(fake_req)	 entry;
	blockdev_cb		 cb;
	void			*arg;
};

struct fake_path {
	enum fake_mode		 mode;
	int			 fail;
	int			 openable;
	struct blockdev		*dev;		/* the open one */
	TAILQ_HEAD(, fake_req)	 held;
	unsigned		 opens, writes, reads, flushes, registers,
				 discards;
};

static struct event_base	*base;
static uint8_t			 lun[LUN_SIZE];
static struct fake_path		 paths[2];
static unsigned			 asks;
static unsigned			 reopen_ms = 100000;
static struct blockdev		*mdev;

static struct fake_path *
fake_of(struct blockdev *dev)
{
	return dev->impl;
}

/* Complete by the fake's mode: now (later, from the loop), never, or
 * with its error. */
static int
fake_complete(struct fake_path *f, blockdev_cb cb, void *arg)
{
	struct fake_req	*r;

	if (f->mode == FAKE_HANG) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			abort();
		r->cb = cb;
		r->arg = arg;
		TAILQ_INSERT_TAIL(&f->held, r, entry);
		return 0;
	}
	blockdev_complete_later(f->dev, cb, arg, f->mode == FAKE_FAIL ?
	    f->fail : 0);
	return f->mode == FAKE_OK;
}

static void
fake_read(struct blockdev *dev, uint64_t off, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	fake_of(dev)->reads++;
	if (fake_complete(fake_of(dev), cb, arg))
		memcpy(buf, lun + off, len);
}

static void
fake_write(struct blockdev *dev, uint64_t off, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	(void)flags;
	fake_of(dev)->writes++;
	if (fake_complete(fake_of(dev), cb, arg))
		memcpy(lun + off, buf, len);
}

static void
fake_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	fake_of(dev)->flushes++;
	fake_complete(fake_of(dev), cb, arg);
}

static void
fake_zero(struct blockdev *dev, uint64_t off, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	(void)flags;
	if (fake_complete(fake_of(dev), cb, arg))
		memset(lun + off, 0, len);
}

/* Like iscsi.c: what is held fails at once with -ECANCELED. */
static void
fake_close(struct blockdev *dev)
{
	struct fake_path	*f = fake_of(dev);
	struct fake_req		*r;

	while ((r = TAILQ_FIRST(&f->held)) != NULL) {
		TAILQ_REMOVE(&f->held, r, entry);
		r->cb(-ECANCELED, r->arg);
		free(r);
	}
	f->discards++;
	f->dev = NULL;
	blockdev_fini(dev);
	free(dev);
}

static const struct blockdev_ops fake_ops = {
	.kind = "fake",
	.read = fake_read,
	.write = fake_write,
	.flush = fake_flush,
	.zero = fake_zero,
	.close = fake_close,
};

struct fake_open {
	unsigned	 index;
	iscsi_open_cb	 cb;
	void		*arg;
};

static void
fake_open_now(evutil_socket_t fd, short what, void *arg)
{
	struct fake_open	*o = arg;
	struct fake_path	*f = &paths[o->index];
	struct blockdev		*dev;

	(void)fd;
	(void)what;
	f->opens++;
	if (!f->openable) {
		o->cb(STORAGE_E_LOGIN, NULL, o->arg);
		free(o);
		return;
	}
	if ((dev = calloc(1, sizeof *dev)) == NULL)
		abort();
	dev->impl = f;
	dev->size = LUN_SIZE;
	dev->block_size = 512;
	assert_int_equal(blockdev_init(dev, &fake_ops, base, "fake"), 0);
	f->dev = dev;
	o->cb(0, dev, o->arg);
	free(o);
}

static void
fake_open(unsigned index, int first, void *ctx, iscsi_open_cb cb, void *arg)
{
	struct fake_open	*o;

	(void)first;
	(void)ctx;
	if ((o = calloc(1, sizeof *o)) == NULL)
		abort();
	o->index = index;
	o->cb = cb;
	o->arg = arg;
	event_base_once(base, -1, EV_TIMEOUT, fake_open_now, o, NULL);
}

static void
fake_ping(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	fake_complete(fake_of(dev), cb, arg);
}

static void
fake_register(struct blockdev *dev, uint64_t key, blockdev_cb cb, void *arg)
{
	(void)key;
	fake_of(dev)->registers++;
	fake_complete(fake_of(dev), cb, arg);
}

static void
fake_attach(struct blockdev *dev, uint64_t key, iscsi_register_ask ask,
    iscsi_fenced_cb fenced, void *arg)
{
	(void)dev;
	(void)key;
	(void)ask;
	(void)fenced;
	(void)arg;
}

static void
fake_answer(struct blockdev *dev, int granted)
{
	(void)dev;
	(void)granted;
}

static const struct mpath_ops fake_mpath_ops = {
	.open = fake_open,
	.ping = fake_ping,
	.register_key = fake_register,
	.raw = NULL,
	.attach = fake_attach,
	.answer = fake_answer,
	.discard = fake_close,
};

static void
opened_cb(int result, struct blockdev *dev, void *arg)
{
	*(int *)arg = result == 0 ? 1 : -1;
	mdev = dev;
}

static void
ask_cb(struct blockdev *dev, void *arg)
{
	(void)dev;
	(void)arg;
	asks++;
}

struct done {
	int	 n;
	int	 result;
};

static void
done_cb(int result, void *arg)
{
	struct done	*d = arg;

	d->n++;
	if (result != 0)
		d->result = result;
}

/* Run what is due now (a path taken down is closed from the loop). */
static void
settle(void)
{
	int	i;

	for (i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void
run_until(const int *flag, int want)
{
	while (*flag < want && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
}

/* Two paths up, registered (the claim done), the LUN zeroed. */
static int
setup(void **state)
{
	struct mpath_options	 mo = { 100, 50, reopen_ms };
	int			 opened = 0;
	struct done		 d = { 0, 0 };
	unsigned		 i;

	(void)state;
	base = event_base_new();
	memset(lun, 0, sizeof lun);
	memset(paths, 0, sizeof paths);
	for (i = 0; i < 2; i++) {
		paths[i].openable = 1;
		TAILQ_INIT(&paths[i].held);
	}
	asks = 0;
	mpath_open(base, 2, "mp", &fake_mpath_ops, NULL, &mo, opened_cb,
	    &opened);
	run_until(&opened, 1);
	assert_int_equal(opened, 1);
	mpath_set_registration(mdev, 0xabcd, ask_cb, NULL);
	mpath_claimed(mdev, done_cb, &d);
	run_until(&d.n, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(paths[0].registers, 1);
	assert_int_equal(paths[1].registers, 1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	blockdev_close(mdev);
	event_base_free(base);
	return 0;
}

static void
test_round_robin_and_flush(void **state)
{
	uint8_t		buf[512], back[512];
	struct done	d = { 0, 0 };
	int		i;

	(void)state;
	for (i = 0; i < 4; i++) {
		memset(buf, 0x10 + i, sizeof buf);
		assert_int_equal(blockdev_write_sync(mdev, (uint64_t)i * 512,
		    buf, sizeof buf, 0), 0);
	}
	assert_int_equal(paths[0].writes, 2);
	assert_int_equal(paths[1].writes, 2);
	/* A flush drains every path that carried writes. */
	blockdev_flush(mdev, done_cb, &d);
	run_until(&d.n, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(paths[0].flushes, 1);
	assert_int_equal(paths[1].flushes, 1);
	/* Nothing written since: one path is enough. */
	assert_int_equal(blockdev_flush_sync(mdev), 0);
	assert_int_equal(paths[0].flushes + paths[1].flushes, 3);
	assert_int_equal(blockdev_read_sync(mdev, 3 * 512, back, sizeof back),
	    0);
	memset(buf, 0x13, sizeof buf);
	assert_memory_equal(buf, back, sizeof back);
}

static void
test_hung_path_moves(void **state)
{
	struct mpath_path_info	 info[2];
	uint8_t			 buf[512];
	uint64_t		 t0 = now_us();

	(void)state;
	paths[0].mode = FAKE_HANG;
	memset(buf, 0x5a, sizeof buf);
	/* Round robin starts at path 0, which never answers. */
	assert_int_equal(blockdev_write_sync(mdev, 1024, buf, sizeof buf, 0),
	    0);
	assert_true(now_us() - t0 >= 100 * 1000);
	assert_int_equal(paths[0].writes, 1);
	assert_int_equal(paths[1].writes, 1);
	assert_memory_equal(lun + 1024, buf, sizeof buf);
	settle();
	assert_int_equal(paths[0].discards, 1);
	assert_int_equal(mpath_paths(mdev, info, 2), 2);
	assert_false(info[0].up);
	assert_true(info[1].up);
	assert_non_null(strstr(info[0].why, "no answer"));
	/* Everything from now on goes to path 1. */
	assert_int_equal(blockdev_write_sync(mdev, 0, buf, sizeof buf, 0), 0);
	assert_int_equal(blockdev_flush_sync(mdev), 0);
	assert_int_equal(paths[1].writes, 2);
	assert_int_equal(paths[1].flushes, 1);
}

static void
test_error_moves(void **state)
{
	uint8_t		buf[512];

	(void)state;
	paths[0].mode = FAKE_FAIL;
	paths[0].fail = STORAGE_E_TIMEOUT;
	memset(buf, 0x77, sizeof buf);
	assert_int_equal(blockdev_write_sync(mdev, 2048, buf, sizeof buf, 0),
	    0);
	assert_memory_equal(lun + 2048, buf, sizeof buf);
	settle();
	assert_int_equal(paths[0].discards, 1);
}

static void
test_fence_not_moved(void **state)
{
	uint8_t		buf[512];

	(void)state;
	paths[0].mode = FAKE_FAIL;
	paths[0].fail = STORAGE_E_RESERVATION;
	memset(buf, 0x33, sizeof buf);
	assert_int_equal(blockdev_write_sync(mdev, 0, buf, sizeof buf, 0),
	    STORAGE_E_RESERVATION);
	assert_int_equal(paths[1].writes, 0);
	assert_int_equal(paths[0].discards, 0);
}

static void
test_no_path_waits(void **state)
{
	struct done	d = { 0, 0 };
	uint8_t		buf[512];
	uint64_t	t0;

	(void)state;
	paths[0].mode = FAKE_HANG;
	paths[1].mode = FAKE_HANG;
	paths[0].openable = 0;
	paths[1].openable = 0;
	memset(buf, 0x99, sizeof buf);
	blockdev_write(mdev, 4096, buf, sizeof buf, 0, done_cb, &d);
	/* Both paths go down; the write waits (the guest stalls). */
	t0 = now_us();
	while (now_us() - t0 < 800 * 1000)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(d.n, 0);
	assert_int_equal(paths[0].discards, 1);
	assert_int_equal(paths[1].discards, 1);
	assert_int_equal(asks, 0);
	/* Path 1 heals: it logs in, the owner is asked, it registers and
	 * carries the write. */
	paths[1].mode = FAKE_OK;
	paths[1].openable = 1;
	while (asks == 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(d.n, 0);
	mpath_register_answer(mdev, 1);
	run_until(&d.n, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(paths[1].registers, 2);
	assert_memory_equal(lun + 4096, buf, sizeof buf);
}

static int
setup_reopen(void **state)
{
	int	r;

	/* Log in again soon after a path goes down. */
	reopen_ms = 50;
	r = setup(state);
	reopen_ms = 100000;
	return r;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_robin_and_flush,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_path_moves, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_error_moves, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fence_not_moved, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_path_waits,
		    setup_reopen, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
