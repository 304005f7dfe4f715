/*
 * Unit tests of the host watchdog module against a FIFO (the lab's
 * stand-in): pets arrive as bytes, a clean close sends the magic 'V', an
 * unclean one does not, and every refusal says what to do. The machine's
 * real /dev/watchdog is never opened: that would arm a real reset.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fence.h"
#include "timeline.h"

struct fixture {
	char	 dir[64];
	char	 fifo[96];
	int	 reader;
};

static int
setup(void **state)
{
	struct fixture	*f;

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/haven-wd-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->fifo, sizeof f->fifo, "%s/h1", f->dir);
	assert_int_equal(mkfifo(f->fifo, 0600), 0);
	/* The reader comes first, as the stand-in does: a FIFO without one
	 * is refused. */
	f->reader = open(f->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(f->reader >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	if (f->reader >= 0)
		close(f->reader);
	unlink(f->fifo);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_fifo_pet_and_disarm(void **state)
{
	struct fixture	*f = *state;
	struct watchdog	*wd;
	char		 err[256], buf[16];

	wd = watchdog_open(f->fifo, 10, err, sizeof err);
	assert_non_null(wd);
	assert_string_equal(err, "");
	/* A FIFO has no driver: the timeout is the one asked for. */
	assert_int_equal(watchdog_timeout_s(wd), 10);
	/* Nothing written by the open itself. */
	assert_int_equal(read(f->reader, buf, sizeof buf), -1);
	assert_int_equal(errno, EAGAIN);

	assert_int_equal(watchdog_pet(wd), 0);
	assert_int_equal(read(f->reader, buf, sizeof buf), 1);
	assert_true(buf[0] != 'V');
	assert_int_equal(watchdog_pet(wd), 0);
	assert_int_equal(watchdog_pet(wd), 0);
	assert_int_equal(read(f->reader, buf, sizeof buf), 2);
	assert_true(buf[0] != 'V' && buf[1] != 'V');

	/* A clean stop: 'V', then EOF. */
	watchdog_close(wd, 1);
	assert_int_equal(read(f->reader, buf, sizeof buf), 1);
	assert_int_equal(buf[0], 'V');
	assert_int_equal(read(f->reader, buf, sizeof buf), 0);
}

static void
test_fifo_close_without_disarm(void **state)
{
	struct fixture	*f = *state;
	struct watchdog	*wd;
	char		 err[256], buf[16];

	wd = watchdog_open(f->fifo, 30, err, sizeof err);
	assert_non_null(wd);
	assert_int_equal(watchdog_pet(wd), 0);
	/* havend dying or hanging: no 'V', the timer keeps running. */
	watchdog_close(wd, 0);
	assert_int_equal(read(f->reader, buf, sizeof buf), 1);
	assert_true(buf[0] != 'V');
	assert_int_equal(read(f->reader, buf, sizeof buf), 0);

	/* A next havend opens it again and pets. */
	wd = watchdog_open(f->fifo, 30, err, sizeof err);
	assert_non_null(wd);
	assert_int_equal(watchdog_pet(wd), 0);
	assert_int_equal(read(f->reader, buf, sizeof buf), 1);
	watchdog_close(wd, 1);
	assert_int_equal(read(f->reader, buf, sizeof buf), 1);
	assert_int_equal(buf[0], 'V');
}

static void
test_full_fifo_and_gone_reader(void **state)
{
	struct fixture	*f = *state;
	struct watchdog	*wd;
	char		 err[256], buf[4096];
	int		 i, size;

	wd = watchdog_open(f->fifo, 10, err, sizeof err);
	assert_non_null(wd);
	/* A reader that lags: the pipe fills, and a pet still never blocks
	 * (the pets already queued will re-arm the reader). */
	size = fcntl(f->reader, F_SETPIPE_SZ, 4096);
	assert_true(size >= 4096);
	for (i = 0; i < size + 10; i++)
		assert_int_equal(watchdog_pet(wd), 0);
	while (read(f->reader, buf, sizeof buf) > 0)
		;
	/* The reader gone (the stand-in died): EPIPE, not a hang. */
	close(f->reader);
	f->reader = -1;
	assert_int_equal(watchdog_pet(wd), -1);
	assert_int_equal(errno, EPIPE);
	watchdog_close(wd, 0);
}

static void
test_refusals(void **state)
{
	struct fixture	*f = *state;
	char		 err[256], path[128], buf[8];
	int		 fd;

	/* No device: say how to get one, or how to run without. */
	snprintf(path, sizeof path, "%s/watchdog", f->dir);
	assert_null(watchdog_open(path, 10, err, sizeof err));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "modprobe softdog"));
	assert_non_null(strstr(err, "[watchdog] device = none"));

	/* A FIFO nobody reads: refused at once instead of blocking. */
	close(f->reader);
	f->reader = -1;
	assert_null(watchdog_open(f->fifo, 10, err, sizeof err));
	assert_int_equal(errno, ENXIO);
	assert_non_null(strstr(err, "no reader"));

	/* A regular file (a typo in haven.conf) is never written to. */
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_null(watchdog_open(path, 10, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "not a character device"));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, buf, sizeof buf), 4);
	assert_memory_equal(buf, "keep", 4);
	close(fd);
	unlink(path);

	/* A character device that is no watchdog. */
	assert_null(watchdog_open("/dev/null", 10, err, sizeof err));
	assert_int_equal(errno, ENOTTY);
	assert_non_null(strstr(err, "not a watchdog"));

	/* A timeout havend's pets (every FENCE_WATCHDOG_PET_MS) cannot keep. */
	assert_null(watchdog_open(f->fifo, 1, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "too short"));

	/* err may be NULL. */
	assert_null(watchdog_open("/nonexistent/watchdog", 10, NULL, 0));
	assert_int_equal(errno, ENOENT);
}

/*
 * The storage level's takeover wait (fence/timeline.h): a frozen host
 * froze at t0, was marked lost at t0 + 2T at the earliest, and its
 * watchdog has reset it by t0 + W; the VMs must start after that.
 */
static void
test_takeover_wait(void **state)
{
	static const unsigned	 watchdogs[] = { 0, 2, 3, 5, 10, 30, 255 };
	static const unsigned	 tokens[] = { 100, 1000, 1500, 3000, 10000 };
	size_t			 i, j;
	unsigned		 wait;

	(void)state;
	for (i = 0; i < sizeof watchdogs / sizeof watchdogs[0]; i++) {
		for (j = 0; j < sizeof tokens / sizeof tokens[0]; j++) {
			wait = fence_takeover_wait_ms(watchdogs[i], tokens[j]);
			/* Never less than the isolation response needs. */
			assert_true(wait >= FENCE_TAKEOVER_DELAY_MS);
			/* Start (>= 2T + wait after t0) comes after the reset
			 * (<= W after t0) with the margin to spare. */
			if (watchdogs[i] != 0)
				assert_true(2ULL * tokens[j] + wait >=
				    watchdogs[i] * 1000ULL +
				    FENCE_WATCHDOG_RESET_MARGIN_MS);
		}
	}
	/* The lab: W = 2 s, T = 1 s: the reset margin past 2T. */
	assert_int_equal(fence_takeover_wait_ms(2, 1000),
	    FENCE_WATCHDOG_RESET_MARGIN_MS);
	/* No watchdog, or haven.conf's default W: the delay alone. */
	assert_int_equal(fence_takeover_wait_ms(0, 1000), FENCE_TAKEOVER_DELAY_MS);
	assert_int_equal(fence_takeover_wait_ms(5, 3000), FENCE_TAKEOVER_DELAY_MS);
	/* The old default W = 30 s with the default token: 30.3 - 6 s. */
	assert_int_equal(fence_takeover_wait_ms(30, 3000), 24300);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fifo_pet_and_disarm,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_close_without_disarm,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_fifo_and_gone_reader,
		    setup, teardown),
		cmocka_unit_test(test_takeover_wait),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
	};

	/* As in every Haven process (ev.c): a write to a FIFO without a
	 * reader reports EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
