/*
 * Unit tests of the status page's login tokens (clusterd/status_token.c):
 * made and checked, expired, altered, under another key, of the wrong
 * kind, for no role; the cookie found in a Cookie header; the key file
 * made 0600 and read back, refused when others may read it. The lab's
 * status test logs in through a browser.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clusterd.h"
#include "common.h"

static const uint8_t key[STATUS_KEY_BYTES] = { 1, 2, 3, 4 };

static enum status_token_result
check(const uint8_t *k, const char *s, char kind, uint64_t now,
    struct status_token *t)
{
	return status_token_check(k, s, strlen(s), kind, now, t);
}

static void
test_make_and_check(void **state)
{
	struct status_token	t = { STATUS_TOKEN_LOGIN, 1000, ROLE_VIEWER,
	    5000 }, got;
	uint8_t			other[STATUS_KEY_BYTES] = { 9 };
	char			s[STATUS_TOKEN_MAX + 1], bad[STATUS_TOKEN_MAX + 1];
	size_t			i;

	assert_int_equal(status_token_make(key, &t, s, sizeof s), 0);
	assert_true(strncmp(s, "l.1000.viewer.5000.", 19) == 0);
	assert_int_equal(check(key, s, STATUS_TOKEN_LOGIN, 4999, &got),
	    STATUS_TOKEN_OK);
	assert_int_equal(got.uid, 1000);
	assert_int_equal(got.role, ROLE_VIEWER);
	assert_int_equal(got.expiry_s, 5000);
	/* Expired at its second. */
	assert_int_equal(check(key, s, STATUS_TOKEN_LOGIN, 5000, &got),
	    STATUS_TOKEN_EXPIRED);
	/* A login code is no session, nor the reverse. */
	assert_int_equal(check(key, s, STATUS_TOKEN_SESSION, 10, &got),
	    STATUS_TOKEN_WRONG_KIND);
	/* Another host's key. */
	assert_int_equal(check(other, s, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_BAD_MAC);
	/* Altered: a longer life, a stronger role, another uid, the MAC. */
	snprintf(bad, sizeof bad, "l.1000.viewer.9000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_BAD_MAC);
	snprintf(bad, sizeof bad, "l.1000.admin.5000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_BAD_MAC);
	snprintf(bad, sizeof bad, "l.0.viewer.5000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_BAD_MAC);
	snprintf(bad, sizeof bad, "%s", s);
	i = strlen(bad) - 1;
	bad[i] = bad[i] == '0' ? '1' : '0';
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_BAD_MAC);
	/* Malformed. */
	assert_int_equal(check(key, "", STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_MALFORMED);
	assert_int_equal(check(key, "l.1000.viewer.5000.", STATUS_TOKEN_LOGIN,
	    10, &got), STATUS_TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "l.1000.root.5000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "l.01000.viewer.5000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "l.99999999999.viewer.5000%s", s + 18);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "%s", s);
	for (i = 19; bad[i] != '\0'; i++)
		bad[i] = (char)(bad[i] >= 'a' ? bad[i] - 'a' + 'A' : bad[i]);
	assert_int_equal(check(key, bad, STATUS_TOKEN_LOGIN, 10, &got),
	    STATUS_TOKEN_MALFORMED);
	assert_int_equal(status_token_check(key, s, strlen(s) - 1,
	    STATUS_TOKEN_LOGIN, 10, &got), STATUS_TOKEN_MALFORMED);
	/* No token for no role. */
	t.role = ROLE_NONE;
	assert_int_equal(status_token_make(key, &t, s, sizeof s), -1);
	t.role = ROLE_VIEWER;
	assert_int_equal(status_token_make(key, &t, s, 40), -1);
}

/* A session for an admin checks as such. */
static void
test_session(void **state)
{
	struct status_token	t = { STATUS_TOKEN_SESSION, 0, ROLE_ADMIN,
	    UINT64_C(4102444800) }, got;
	char			s[STATUS_TOKEN_MAX + 1];

	assert_int_equal(status_token_make(key, &t, s, sizeof s), 0);
	assert_int_equal(check(key, s, STATUS_TOKEN_SESSION, 1, &got),
	    STATUS_TOKEN_OK);
	assert_int_equal(got.role, ROLE_ADMIN);
	assert_int_equal(got.uid, 0);
}

static void
test_cookie(void **state)
{
	const char	*v;
	size_t		 len;

	v = status_token_cookie("haven_status=abc", &len);
	assert_non_null(v);
	assert_int_equal(len, 3);
	v = status_token_cookie("x=1; haven_status=s.1.viewer.2.ff; y=2", &len);
	assert_non_null(v);
	assert_true(len == 15 && strncmp(v, "s.1.viewer.2.ff", len) == 0);
	assert_null(status_token_cookie("xhaven_status=abc", &len));
	assert_null(status_token_cookie("haven_statusx=abc; a=b", &len));
	assert_null(status_token_cookie("", &len));
	v = status_token_cookie("haven_status=", &len);
	assert_non_null(v);
	assert_int_equal(len, 0);
}

static void
test_key_file(void **state)
{
	char		dir[] = "/tmp/status-key-XXXXXX", path[64], err[256];
	uint8_t		a[STATUS_KEY_BYTES], b[STATUS_KEY_BYTES];
	struct stat	st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/status.key", dir);
	assert_int_equal(status_token_key(path, a, err, sizeof err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, STATUS_KEY_BYTES);
	assert_int_equal(status_token_key(path, b, err, sizeof err), 0);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(status_token_key(path, b, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable by root alone"));
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_and_check),
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
