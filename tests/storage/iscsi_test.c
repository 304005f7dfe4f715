/*
 * iSCSI and persistent reservations against a real tgtd (run under
 * tests/storage/with-tgtd): pipelined I/O with data checks, a fence by
 * preemption that stops every later write, an unregistered writer refused,
 * a dropped connection that comes back as a new nexus and is registered
 * again only when the owner grants it, and clear errors for bad portals.
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

#define KEY_A	0x1111111100000001ULL
#define KEY_B	0x1111111100000002ULL

static const char	*url;
static const char	*control;

static struct blockdev *
login(struct event_base *base, const char *initiator)
{
	struct iscsi_options	 opts = { .initiator = initiator,
				     .queue_depth = 8, .timeout_s = 5 };
	struct blockdev		*dev = NULL;

	assert_int_equal(iscsi_open_sync(base, url, &opts, &dev), 0);
	assert_non_null(dev);
	return dev;
}

struct counter {
	int	done;
	int	failed;
	int	last;
};

static void
count_cb(int result, void *arg)
{
	struct counter	*c = arg;

	c->done++;
	if (result != 0) {
		c->failed++;
		c->last = result;
	}
}

static void
test_pipelined_io(void **state)
{
	struct event_base	*base = event_base_new();
	struct blockdev		*dev = login(base, "iqn.2026-11.test.haven:io");
	struct counter		 c = { 0, 0, 0 };
	enum { N = 64, SIZE = 64 * 1024 };
	uint8_t			*data = malloc(N * SIZE), *back = malloc(N * SIZE);
	int			 i;

	assert_int_equal(dev->size, 256 << 20);
	assert_int_equal(dev->block_size, 512);
	srandom(7);
	for (i = 0; i < N * SIZE; i++)
		data[i] = (uint8_t)random();
	/* All 64 writes in flight at once; the device keeps to its QD. */
	for (i = 0; i < N; i++)
		blockdev_write(dev, (uint64_t)i * SIZE * 3, data + i * SIZE,
		    SIZE, i % 7 == 0 ? BLOCKDEV_FUA : 0, count_cb, &c);
	while (c.done < N)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(c.failed, 0);
	assert_int_equal(blockdev_flush_sync(dev), 0);
	memset(back, 0, N * SIZE);
	c.done = 0;
	for (i = 0; i < N; i++)
		blockdev_read(dev, (uint64_t)i * SIZE * 3, back + i * SIZE,
		    SIZE, count_cb, &c);
	while (c.done < N)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(c.failed, 0);
	assert_memory_equal(data, back, N * SIZE);

	/* Zeroing (WRITE SAME) reads back as zeroes. */
	assert_int_equal(blockdev_zero_sync(dev, SIZE * 3, 3 << 20), 0);
	assert_int_equal(blockdev_read_sync(dev, SIZE * 3, back, SIZE), 0);
	memset(data, 0, SIZE);
	assert_memory_equal(data, back, SIZE);
	/* Past the end: refused before it reaches the target. */
	assert_int_equal(blockdev_write_sync(dev, dev->size, back, 512, 0),
	    -ENOSPC);
	blockdev_close(dev);
	event_base_free(base);
	free(data);
	free(back);
}

/* Host A holds the volume; host B fences it by preempting A's key. */
static void
test_fence_by_preempt(void **state)
{
	struct event_base	*base = event_base_new();
	struct blockdev		*a = login(base, "iqn.2026-11.test.haven:a");
	struct blockdev		*b = login(base, "iqn.2026-11.test.haven:b");
	struct pr_status	 s;
	uint8_t			 mine[4096], theirs[4096], back[4096];
	int			 aborted = -1, r;

	memset(mine, 0xa1, sizeof mine);
	memset(theirs, 0xb2, sizeof theirs);
	assert_int_equal(pr_claim_sync(a, KEY_A), 0);
	assert_int_equal(blockdev_write_sync(a, 1 << 20, mine, sizeof mine,
	    BLOCKDEV_FUA), 0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_true(s.reserved);
	assert_int_equal(s.type, PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY);

	/* B is not registered yet: its write is refused. */
	r = blockdev_write_sync(b, 1 << 20, theirs, sizeof theirs, 0);
	assert_int_equal(r, STORAGE_E_RESERVATION);
	blockdev_close(b);

	/* B logs in again, registers and preempts A. */
	b = login(base, "iqn.2026-11.test.haven:b");
	assert_int_equal(pr_register_sync(b, 0, KEY_B, 1), 0);
	assert_int_equal(pr_read_sync(b, &s), 0);
	assert_int_equal(pr_preempt_sync(b, KEY_B, KEY_A, s.type, 1, &aborted),
	    0);
	assert_int_equal(aborted, 0);	/* tgt has no PREEMPT AND ABORT */
	assert_int_equal(pr_read_sync(b, &s), 0);
	for (size_t i = 0; i < s.nkeys; i++)
		assert_true(s.keys[i] != KEY_A);
	assert_int_equal(s.holder, KEY_B);

	/* A is fenced: its write fails, with no effect on the LUN, and
	 * every later write fails at once. */
	r = blockdev_write_sync(a, 1 << 20, theirs, sizeof theirs, 0);
	assert_true(r == STORAGE_E_PREEMPTED || r == STORAGE_E_RESERVATION);
	assert_true(iscsi_is_fenced(a));
	assert_int_equal(blockdev_write_sync(a, 2 << 20, theirs, sizeof theirs,
	    0), STORAGE_E_RESERVATION);
	assert_int_equal(blockdev_read_sync(b, 1 << 20, back, sizeof back), 0);
	assert_memory_equal(mine, back, sizeof back);
	assert_int_equal(blockdev_read_sync(b, 2 << 20, back, sizeof back), 0);
	assert_true(back[0] != 0xb2);
	/* B, the registrant, writes. */
	assert_int_equal(blockdev_write_sync(b, 1 << 20, theirs, sizeof theirs,
	    0), 0);
	blockdev_close(a);
	blockdev_close(b);
	event_base_free(base);
}

struct grant {
	int	asked;
	int	answer;
};

static void
grant_ask(struct blockdev *dev, void *arg)
{
	struct grant	*g = arg;

	g->asked++;
	iscsi_register_answer(dev, g->answer);
}

/* Kill the target side of the session of `initiator`, as a network
 * blip would: libiscsi reconnects, which is a new nexus. */
static void
drop_connection(const char *initiator)
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
reconnect(int grant_it)
{
	struct event_base	*base = event_base_new();
	struct blockdev		*a = login(base, "iqn.2026-11.test.haven:r");
	struct grant		 g = { 0, grant_it };
	uint8_t			 buf[4096], back[4096];
	int			 r;

	memset(buf, grant_it ? 0x77 : 0x66, sizeof buf);
	iscsi_set_registration(a, KEY_A, grant_ask, &g);
	assert_int_equal(pr_claim_sync(a, KEY_A), 0);
	assert_int_equal(blockdev_write_sync(a, 8 << 20, buf, 512, 0), 0);
	drop_connection("iqn.2026-11.test.haven:r");
	r = blockdev_write_sync(a, 8 << 20, buf, sizeof buf, 0);
	assert_int_equal(g.asked, 1);
	if (grant_it) {
		assert_int_equal(r, 0);
		assert_false(iscsi_is_fenced(a));
		assert_int_equal(blockdev_read_sync(a, 8 << 20, back,
		    sizeof back), 0);
		assert_memory_equal(buf, back, sizeof back);
	} else {
		assert_int_equal(r, STORAGE_E_RESERVATION);
		assert_true(iscsi_is_fenced(a));
	}
	blockdev_close(a);
	event_base_free(base);
}

static void
test_reconnect_granted(void **state)
{
	reconnect(1);
}

static void
test_reconnect_refused(void **state)
{
	reconnect(0);
}

/* CHAP: refused without the secret or with a wrong one (STORAGE_E_AUTH, so
 * havenctl can say so), admitted with it from the URL, the options or the
 * installed chap file accounts (issue 15). */
static void
test_chap(void **state)
{
	struct event_base	*base = event_base_new();
	struct iscsi_options	 opts = { .timeout_s = 3 };
	struct blockdev		*dev = NULL;
	struct chap		*chap;
	const char		*plain = getenv("HAVEN_TEST_ISCSI_CHAP_URL");
	const char		*creds = getenv("HAVEN_TEST_CHAP_CREDENTIALS");
	const char		*lines = "iqn.2026-11.test.haven:chap havenuser "
				    "havensecret1\n";
	char			 with[512], wrong[512], err[256];
	uint8_t			 buf[512];

	assert_non_null(plain);
	assert_non_null(creds);
	assert_int_equal(iscsi_open_sync(base, plain, &opts, &dev),
	    STORAGE_E_AUTH);
	snprintf(wrong, sizeof wrong, "iscsi://havenuser%%wrongsecret1@%s",
	    plain + 8);
	assert_int_equal(iscsi_open_sync(base, wrong, &opts, &dev),
	    STORAGE_E_AUTH);
	opts.chap_user = "havenuser";
	opts.chap_secret = "wrongsecret1";
	assert_int_equal(iscsi_open_sync(base, plain, &opts, &dev),
	    STORAGE_E_AUTH);
	snprintf(with, sizeof with, "iscsi://%s@%s", creds, plain + 8);
	opts.chap_user = opts.chap_secret = NULL;
	assert_int_equal(iscsi_open_sync(base, with, &opts, &dev), 0);
	/* The secret never shows in the device's name (it is logged). */
	assert_null(strstr(dev->name, "havensecret1"));
	assert_int_equal(blockdev_read_sync(dev, 0, buf, sizeof buf), 0);
	blockdev_close(dev);
	/* The installed accounts: the plain URL logs in. */
	assert_int_equal(chap_parse(lines, strlen(lines), "chap", &chap, err,
	    sizeof err), 0);
	chap_install(chap);
	assert_int_equal(iscsi_open_sync(base, plain, &opts, &dev), 0);
	assert_int_equal(blockdev_read_sync(dev, 0, buf, sizeof buf), 0);
	blockdev_close(dev);
	/* A target that wants no CHAP ignores an account it is offered. */
	chap_install(NULL);
	event_base_free(base);
}

/* A target's ACL: the listed initiator name logs in, another is refused
 * with STORAGE_E_DENIED (not the CHAP error). */
static void
test_acl(void **state)
{
	struct event_base	*base = event_base_new();
	struct iscsi_options	 opts = { .timeout_s = 3,
				     .initiator = "iqn.2026-11.test.haven:other" };
	struct blockdev		*dev = NULL;
	const char		*acl = getenv("HAVEN_TEST_ISCSI_ACL_URL");

	(void)state;
	assert_non_null(acl);
	assert_int_equal(iscsi_open_sync(base, acl, &opts, &dev),
	    STORAGE_E_DENIED);
	opts.initiator = "iqn.2026-11.test.haven:allowed";
	assert_int_equal(iscsi_open_sync(base, acl, &opts, &dev), 0);
	blockdev_close(dev);
	event_base_free(base);
}

/* A target that stops answering: the command fails with a timeout, in
 * bounded time, instead of hanging the loop. */
static void
test_timeout(void **state)
{
	struct event_base	*base = event_base_new();
	struct iscsi_options	 opts = { .initiator = "iqn.2026-11.test.haven:t",
				     .timeout_s = 2 };
	struct blockdev		*dev = NULL;
	const char		*pid = getenv("HAVEN_TEST_TGTD_PID");
	uint8_t			 buf[4096];
	uint64_t		 start;
	int			 r;
	char			 cmd[64];

	assert_non_null(pid);
	assert_int_equal(iscsi_open_sync(base, url, &opts, &dev), 0);
	snprintf(cmd, sizeof cmd, "kill -STOP %s", pid);
	assert_int_equal(system(cmd), 0);
	start = ev_now_ms();
	r = blockdev_read_sync(dev, 0, buf, sizeof buf);
	snprintf(cmd, sizeof cmd, "kill -CONT %s", pid);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(r, STORAGE_E_TIMEOUT);
	assert_true(ev_now_ms() - start < 6000);
	assert_non_null(strstr(storage_strerror(r), "did not answer"));
	blockdev_close(dev);
	event_base_free(base);
}

static void
test_bad_portals(void **state)
{
	struct event_base	*base = event_base_new();
	struct iscsi_options	 opts = { .timeout_s = 3 };
	struct blockdev		*dev = NULL;
	uint64_t		 start = ev_now_ms();

	assert_int_equal(iscsi_open_sync(base, "iscsi://127.0.0.1:1/iqn.x/1",
	    &opts, &dev), STORAGE_E_LOGIN);
	assert_null(dev);
	assert_int_equal(iscsi_open_sync(base, "not-a-url", &opts, &dev),
	    -EINVAL);
	assert_true(ev_now_ms() - start < 4000);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_io),
		cmocka_unit_test(test_fence_by_preempt),
		cmocka_unit_test(test_reconnect_granted),
		cmocka_unit_test(test_reconnect_refused),
		cmocka_unit_test(test_chap),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_portals),
	};

	url = getenv("HAVEN_TEST_ISCSI_URL");
	control = getenv("HAVEN_TEST_TGT_CONTROL");
	if (url == NULL || control == NULL) {
		fprintf(stderr, "run under tests/storage/with-tgtd\n");
		return 77;
	}
	log_init("iscsi_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
