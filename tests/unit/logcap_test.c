/*
 * Unit tests of logcap.c: a VM log over its cap is copied to FILE.1 and
 * emptied in place, and a writer holding it with O_APPEND goes on at the
 * new end; a file within its cap, an absent one and a symbolic link are
 * left as they are.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clusterd.h"

static char	dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof dir, "/tmp/haven-logcap.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static off_t
size_of(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void
test_over_cap(void **state)
{
	char	path[128], old[140], buf[4096], back[8];
	int	fd, i;

	snprintf(path, sizeof path, "%s/web1.serial", dir);
	snprintf(old, sizeof old, "%s.1", path);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0640);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof buf);
	for (i = 0; i < 3; i++)
		assert_int_equal(write(fd, buf, sizeof buf), sizeof buf);
	/* Within the cap: nothing. */
	assert_int_equal(logcap_file(path, 16384), 0);
	assert_int_equal(size_of(path), 12288);
	assert_int_equal(size_of(old), -1);
	/* Over it: the old part in .1, the file empty. */
	assert_int_equal(logcap_file(path, 8192), 1);
	assert_int_equal(size_of(path), 0);
	assert_int_equal(size_of(old), 12288);
	/* The writer goes on at the start, no hole before it. */
	assert_int_equal(write(fd, "tick=1\n", 7), 7);
	close(fd);
	assert_int_equal(size_of(path), 7);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, back, 7), 7);
	close(fd);
	assert_memory_equal(back, "tick=1\n", 7);
	/* A second rotation replaces .1. */
	fd = open(path, O_WRONLY | O_APPEND);
	for (i = 0; i < 3; i++)
		assert_int_equal(write(fd, buf, 1000), 1000);
	close(fd);
	assert_int_equal(logcap_file(path, 2048), 1);
	assert_int_equal(size_of(old), 3007);
}

static void
test_left_alone(void **state)
{
	char	path[128], link[128], old[140];
	int	fd;

	snprintf(path, sizeof path, "%s/absent.serial", dir);
	assert_int_equal(logcap_file(path, 1), 0);
	/* A symbolic link in the log directory is never followed. */
	snprintf(path, sizeof path, "%s/target", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	snprintf(link, sizeof link, "%s/web2.serial", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(logcap_file(link, 1), -1);
	assert_int_equal(size_of(path), 10);
	snprintf(old, sizeof old, "%s.1", link);
	assert_int_equal(size_of(old), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_over_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_left_alone, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
