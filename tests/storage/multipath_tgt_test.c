/*
 * Multipath against a real tgtd with two portals (run under
 * tests/storage/with-tgtd: 127.0.0.1 and 127.0.0.2, one target): the key is
 * registered on each path's nexus after the claim; I/O goes over both; a
 * dropped connection on one path is a new nexus, registered again once the
 * owner grants it, with no error for the caller; one PREEMPT by another
 * host removes the key from every nexus, and a write on either path is
 * refused from then on (tgt's semantics the storage fence relies on).
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

#include "common.h"
#include "storage.h"

#define KEY_A	0x2222222200000001ULL
#define KEY_B	0x2222222200000002ULL
#define KEY_C	0x2222222200000003ULL

static const char	*urls[2];
static const char	*control;

static struct blockdev *
login(struct event_base *base, const char *u, const char *initiator)
{
	struct iscsi_options	 opts = { .initiator = initiator,
				     .queue_depth = 8, .timeout_s = 5 };
	struct blockdev		*dev = NULL;

	assert_int_equal(iscsi_open_sync(base, u, &opts, &dev), 0);
	assert_non_null(dev);
	return dev;
}

struct opened {
	int		 done;
	int		 result;
	struct blockdev	*dev;
};

static void
opened_cb(int result, struct blockdev *dev, void *arg)
{
	struct opened	*o = arg;

	o->result = result;
	o->dev = dev;
	o->done = 1;
}

static struct blockdev *
login_paths(struct event_base *base, const char *initiator)
{
	struct iscsi_options	 opts = { .initiator = initiator,
				     .queue_depth = 8, .timeout_s = 5 };
	struct opened		 o = { 0, 0, NULL };

	mpath_iscsi_open(base, urls, 2, &opts, opened_cb, &o);
	assert_int_equal(storage_wait(base, &o.done), 0);
	assert_int_equal(o.result, 0);
	assert_true(mpath_is(o.dev));
	return o.dev;
}

static size_t
key_count(const struct pr_status *s, uint64_t key)
{
	size_t	i, n = 0;

	for (i = 0; i < s->nkeys; i++)
		n += s->keys[i] == key;
	return n;
}

static int	asked;

static void
grant_ask(struct blockdev *dev, void *arg)
{
	(void)arg;
	asked++;
	iscsi_register_answer(dev, 1);
}

static void
drop_one_connection(const char *initiator)
{
	char	cmd[1024];

	snprintf(cmd, sizeof cmd,
	    "sid=$(tgtadm -C %s --lld iscsi --op show --mode target | "
	    "awk '/I_T nexus:/ { sid = $3 } /Initiator: %s / { print sid }' | "
	    "head -1); [ -n \"$sid\" ] && tgtadm -C %s --lld iscsi --op delete "
	    "--mode conn --tid 1 --sid $sid --cid 0", control, initiator,
	    control);
	assert_int_equal(system(cmd), 0);
}

static void
test_paths_registered_and_fenced(void **state)
{
	struct event_base	*base = event_base_new();
	struct blockdev		*m, *b;
	struct mpath_path_info	 info[2];
	struct pr_status	 s;
	uint8_t			 buf[65536], back[65536];
	int			 i, r, aborted;

	(void)state;
	m = login_paths(base, "iqn.2026-11.test.haven:mp");
	assert_int_equal(mpath_paths(m, info, 2), 2);
	assert_true(info[0].up && info[1].up);
	iscsi_set_registration(m, KEY_A, grant_ask, NULL);
	assert_int_equal(pr_claim_sync(m, KEY_A), 0);
	b = login(base, urls[0], "iqn.2026-11.test.haven:mpb");
	assert_int_equal(pr_read_sync(b, &s), 0);
	/* One registration per path's nexus, the reservation held once. */
	assert_int_equal(key_count(&s, KEY_A), 2);
	assert_true(s.reserved);
	assert_int_equal(s.holder, KEY_A);

	/* Writes over both paths (round robin), read back. */
	for (i = 0; i < 8; i++) {
		memset(buf, 0x40 + i, sizeof buf);
		assert_int_equal(blockdev_write_sync(m, (uint64_t)i * sizeof buf,
		    buf, sizeof buf, 0), 0);
	}
	assert_int_equal(blockdev_flush_sync(m), 0);
	for (i = 0; i < 8; i++) {
		memset(buf, 0x40 + i, sizeof buf);
		assert_int_equal(blockdev_read_sync(m, (uint64_t)i * sizeof buf,
		    back, sizeof back), 0);
		assert_memory_equal(buf, back, sizeof back);
	}

	/* One path's connection dropped: no error for the caller; the new
	 * nexus is registered after the owner's grant. */
	drop_one_connection("iqn.2026-11.test.haven:mp");
	for (i = 0; i < 8; i++) {
		memset(buf, 0x60 + i, sizeof buf);
		assert_int_equal(blockdev_write_sync(m, (uint64_t)i * sizeof buf,
		    buf, sizeof buf, 0), 0);
	}
	assert_false(iscsi_is_fenced(m));
	/* Asked once, unless the path was taken down and is still logging
	 * in again when the writes are done. */
	assert_true(asked <= 1);
	assert_int_equal(blockdev_read_sync(m, 7 * sizeof buf, back,
	    sizeof back), 0);
	assert_memory_equal(buf, back, sizeof back);

	/* Another host preempts the key: gone from every nexus. */
	assert_int_equal(pr_register_sync(b, 0, KEY_B, 1), 0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_int_equal(pr_preempt_sync(b, KEY_B, KEY_A, s.type, 1, &aborted),
	    0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_int_equal(key_count(&s, KEY_A), 0);
	for (i = 0; i < 4; i++) {
		r = blockdev_write_sync(m, 0, buf, 4096, 0);
		assert_true(r == STORAGE_E_PREEMPTED ||
		    r == STORAGE_E_RESERVATION);
	}
	assert_true(iscsi_is_fenced(m));
	blockdev_close(m);
	/* Clear for the next test: B holds it; B unregisters. */
	assert_int_equal(pr_register_sync(b, KEY_B, 0, 0), 0);
	blockdev_close(b);
	event_base_free(base);
}

/* tgt's own semantics, path by path: a host registered on a nexus per
 * portal is fenced on both by one PREEMPT. */
static void
test_preempt_fences_every_nexus(void **state)
{
	struct event_base	*base = event_base_new();
	struct blockdev		*c1, *c2, *b;
	struct pr_status	 s;
	uint8_t			 buf[4096];
	int			 r, aborted;

	(void)state;
	memset(buf, 0x5c, sizeof buf);
	c1 = login(base, urls[0], "iqn.2026-11.test.haven:c");
	c2 = login(base, urls[1], "iqn.2026-11.test.haven:c");
	b = login(base, urls[0], "iqn.2026-11.test.haven:cb");
	assert_int_equal(pr_claim_sync(c1, KEY_C), 0);
	assert_int_equal(pr_register_sync(c2, 0, KEY_C, 1), 0);
	/* Under Registrants Only each registered nexus writes. */
	assert_int_equal(blockdev_write_sync(c1, 0, buf, sizeof buf, 0), 0);
	assert_int_equal(blockdev_write_sync(c2, 0, buf, sizeof buf, 0), 0);
	assert_int_equal(pr_register_sync(b, 0, KEY_B, 1), 0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_int_equal(key_count(&s, KEY_C), 2);
	assert_int_equal(pr_preempt_sync(b, KEY_B, KEY_C, s.type, 1, &aborted),
	    0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_int_equal(key_count(&s, KEY_C), 0);
	r = blockdev_write_sync(c1, 0, buf, sizeof buf, 0);
	assert_true(r == STORAGE_E_PREEMPTED || r == STORAGE_E_RESERVATION);
	r = blockdev_write_sync(c2, 0, buf, sizeof buf, 0);
	assert_true(r == STORAGE_E_PREEMPTED || r == STORAGE_E_RESERVATION);
	blockdev_close(c1);
	blockdev_close(c2);
	blockdev_close(b);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_registered_and_fenced),
		cmocka_unit_test(test_preempt_fences_every_nexus),
	};

	urls[0] = getenv("HAVEN_TEST_ISCSI_URL");
	urls[1] = getenv("HAVEN_TEST_ISCSI_URL2");
	control = getenv("HAVEN_TEST_TGT_CONTROL");
	if (urls[0] == NULL || urls[1] == NULL || control == NULL) {
		fprintf(stderr, "run under tests/storage/with-tgtd\n");
		return 77;
	}
	log_init("multipath_tgt_test", LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
