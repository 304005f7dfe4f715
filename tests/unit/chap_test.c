/*
 * storage/chap.c: the chap file's lines, its refusals (one line, naming the
 * line and never the secret), its mode and owner checks, seeded garbage,
 * and the reservation keys derived from a cluster secret (storage/pr.c).
 */
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

#include "storage.h"

#define SAN	"iqn.2026-11.lab.haven:san"

static struct chap *
parse_ok(const char *text)
{
	struct chap	*c = NULL;
	char		 err[512] = "";

	if (chap_parse(text, strlen(text), "chap", &c, err, sizeof err) != 0)
		fail_msg("refused: %s", err);
	return c;
}

/* Refused with a message that contains want and quotes no secret. */
static void
parse_bad(const char *text, const char *want)
{
	struct chap	*c = (struct chap *)1;
	char		 err[512] = "";

	assert_int_equal(chap_parse(text, strlen(text), "chap", &c, err,
	    sizeof err), -1);
	assert_null(c);
	if (strstr(err, want) == NULL)
		fail_msg("'%s' lacks '%s'", err, want);
	assert_null(strchr(err, '\n'));
	assert_null(strstr(err, "topsecret"));
}

static void
test_accounts(void **state)
{
	struct chap	*c;
	const char	*user, *secret;

	(void)state;
	c = parse_ok("# the lab's pools\n\n  " SAN " haven-h1 topsecret1234\r\n"
	    "iqn.2026-11.lab.haven:other\tu2\tanothersecret99");
	assert_int_equal(chap_count(c), 2);
	assert_int_equal(chap_find(c, SAN, &user, &secret), 0);
	assert_string_equal(user, "haven-h1");
	assert_string_equal(secret, "topsecret1234");
	assert_int_equal(chap_find(c, "iqn.2026-11.lab.haven:other", &user,
	    &secret), 0);
	assert_string_equal(secret, "anothersecret99");
	assert_int_equal(chap_find(c, "iqn.2026-11.lab.haven:none", &user,
	    &secret), -1);
	assert_int_equal(chap_find(NULL, SAN, &user, &secret), -1);
	chap_free(c);
	c = parse_ok("");
	assert_int_equal(chap_count(c), 0);
	chap_free(c);
}

static void
test_refusals(void **state)
{
	char	 nul[] = SAN " u topsecret1234\n" SAN "x\0y u topsecret1234\n";
	struct chap *c = (struct chap *)1;
	char	 err[256];

	(void)state;
	parse_bad(SAN " u\n", "chap:1: expected 'TARGET USER SECRET'");
	parse_bad("\n" SAN " u topsecret1234 extra\n", "chap:2: expected");
	parse_bad("pool-san u topsecret1234\n", "chap:1: the first field is "
	    "not an iSCSI target name");
	parse_bad(SAN " u topsecret\n", "chap:1: the secret is not 12");
	parse_bad(SAN " u topsecret1234\n" SAN " v topsecret5678\n",
	    "chap:2: a second account for the same target");
	parse_bad(SAN " u\x01 topsecret1234\n", "chap:1: the user name");
	assert_int_equal(chap_parse(nul, sizeof nul - 1, "chap", &c, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "chap:2: a NUL byte"));
}

/* Seeded garbage, and garbage spliced into a good file: never a crash,
 * and every refusal is one line that names the file. */
static void
test_garbage(void **state)
{
	static const char good[] = SAN " haven-h1 topsecret1234\n";
	char		 buf[1024], err[512];
	struct chap	*c;
	unsigned	 seed = 15, i, j, len;

	(void)state;
	for (i = 0; i < 20000; i++) {
		len = (unsigned)(rand_r(&seed) % sizeof buf);
		for (j = 0; j < len; j++) {
			unsigned r = (unsigned)rand_r(&seed);

			buf[j] = (i & 1) ? (char)r : (r % 8 == 0 ? '\n' :
			    r % 8 == 1 ? ' ' : good[r % (sizeof good - 1)]);
		}
		err[0] = '\0';
		if (chap_parse(buf, len, "chap", &c, err, sizeof err) == 0) {
			assert_non_null(c);
			assert_true(chap_count(c) <= CHAP_MAX_ACCOUNTS);
			chap_free(c);
		} else {
			assert_null(c);
			assert_int_equal(strncmp(err, "chap:", 5), 0);
			assert_null(strchr(err, '\n'));
		}
	}
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_file_mode(void **state)
{
	char		 dir[] = "/tmp/chap_test.XXXXXX", path[128], err[512];
	struct chap	*c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/chap", dir);
	write_file(path, SAN " haven-h1 topsecret1234\n", 0644);
	assert_int_equal(chap_load(path, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable or writable by group or others "
	    "(mode 0644); run chmod 600"));
	assert_int_equal(chap_setup(path, 1, "/nonexistent", 0, err,
	    sizeof err), -1);
	assert_null(chap_installed());
	write_file(path, SAN " haven-h1 topsecret1234\n", 0600);
	assert_int_equal(chap_load(path, &c, err, sizeof err), 0);
	assert_int_equal(chap_count(c), 1);
	chap_free(c);
	/* Missing: none at a default path, an error when named. */
	assert_int_equal(chap_setup("/nonexistent/chap", 0, "/nonexistent", 0,
	    err, sizeof err), 0);
	assert_int_equal(chap_setup("/nonexistent/chap", 1, "/nonexistent", 0,
	    err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/chap: cannot read"));
	assert_int_equal(chap_setup(path, 1, "/nonexistent", 0, err,
	    sizeof err), 0);
	assert_int_equal(chap_count(chap_installed()), 1);
	chap_install(NULL);
	unlink(path);
	rmdir(dir);
}

/* Keys keep the node id in their low half; with a secret the high half is
 * the secret's, different per node and per secret. */
static void
test_keys(void **state)
{
	char		 dir[] = "/tmp/chap_test.XXXXXX", path[128], err[512];
	uint64_t	 plain1, plain2, k1, k2, k1b;

	(void)state;
	plain1 = pr_key("haven-lab", 1);
	plain2 = pr_key("haven-lab", 2);
	assert_int_equal(plain1 >> 32, plain2 >> 32);
	assert_int_equal(plain1 & 0xffffffff, 1);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/authkey", dir);
	write_file(path, "short", 0600);
	assert_int_equal(pr_key_load(path, err, sizeof err), -1);
	write_file(path, "0123456789abcdef-the-cluster-secret", 0644);
	assert_int_equal(pr_key_load(path, err, sizeof err), -1);
	assert_false(pr_key_secret_installed());
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(pr_key_load(path, err, sizeof err), 0);
	k1 = pr_key("haven-lab", 1);
	k2 = pr_key("haven-lab", 2);
	assert_int_equal(k1 & 0xffffffff, 1);
	assert_int_equal(k2 & 0xffffffff, 2);
	assert_int_not_equal(k1, plain1);
	assert_int_not_equal(k1 >> 32, k2 >> 32);
	assert_int_equal(pr_key("haven-lab", 1), k1);
	assert_int_equal(chmod(path, 0600), 0);
	write_file(path, "another cluster's secret, 32 bytes", 0600);
	assert_int_equal(pr_key_load(path, err, sizeof err), 0);
	k1b = pr_key("haven-lab", 1);
	assert_int_not_equal(k1b, k1);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accounts),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_file_mode),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
