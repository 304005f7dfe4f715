/*
 * migrate/live_key.c: a live migration's TLS key from the cluster's secret
 * (a known vector computed independently with Python's hmac, and every
 * input changes the key), and common/secret.c's checks of the secret file.
 */
#include <errno.h>
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

#include "common.h"
#include "migrate.h"

#define UUID	"6f1c3a2e-9b4d-4c8e-a1f0-2d7e5b9c3a41"
#define TOKEN	"00112233445566778899aabbccddeeff"
#define TEXT	"haven-lab test secret, 32 bytes!"

static void
hex(const uint8_t *b, size_t n, char *out)
{
	size_t	i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/*
 * python3: s = hashlib.sha256(TEXT).digest(); hmac.new(s,
 * b"haven-live-tls\0" + UUID + b"\0" + struct.pack(">Q", 7) + TOKEN,
 * hashlib.sha256).hexdigest()
 */
static void
test_vector(void **state)
{
	uint8_t	 secret[SHA256_SIZE], key[LIVE_KEY_SIZE];
	char	 h[2 * LIVE_KEY_SIZE + 1];

	(void)state;
	sha256((const uint8_t *)TEXT, strlen(TEXT), secret);
	hex(secret, sizeof secret, h);
	assert_string_equal(h, "d64590e61a4de12a914263e4c11d5943"
	    "4fc99bf6c45d94faee0d97d95e5bef3e");
	live_key_compute(secret, UUID, 7, TOKEN, key);
	hex(key, sizeof key, h);
	assert_string_equal(h, "7e2dc2adc09d3bf682614630b815a6e5"
	    "199dd7ec7f898d8c2c33a85159228942");
}

/* Another VM, generation, token or secret: another key. */
static void
test_inputs(void **state)
{
	uint8_t	 secret[SHA256_SIZE], other[SHA256_SIZE];
	uint8_t	 base[LIVE_KEY_SIZE], k[LIVE_KEY_SIZE];

	(void)state;
	sha256((const uint8_t *)TEXT, strlen(TEXT), secret);
	sha256((const uint8_t *)"another cluster", 15, other);
	live_key_compute(secret, UUID, 7, TOKEN, base);
	live_key_compute(secret, UUID, 7, TOKEN, k);
	assert_memory_equal(base, k, sizeof k);
	live_key_compute(secret, "6f1c3a2e-9b4d-4c8e-a1f0-2d7e5b9c3a42", 7,
	    TOKEN, k);
	assert_memory_not_equal(base, k, sizeof k);
	live_key_compute(secret, UUID, 8, TOKEN, k);
	assert_memory_not_equal(base, k, sizeof k);
	live_key_compute(secret, UUID, 7, "00112233445566778899aabbccddeef0",
	    k);
	assert_memory_not_equal(base, k, sizeof k);
	live_key_compute(other, UUID, 7, TOKEN, k);
	assert_memory_not_equal(base, k, sizeof k);
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

/* No secret, no key; a secret file others may read is refused. */
static void
test_secret_file(void **state)
{
	char	 dir[] = "/tmp/live-key-XXXXXX", path[64], err[256];
	uint8_t	 key[LIVE_KEY_SIZE], want[LIVE_KEY_SIZE];
	uint8_t	 secret[SHA256_SIZE];

	(void)state;
	assert_int_equal(live_key_derive(UUID, 7, TOKEN, key), -1);
	assert_int_equal(errno, ENOKEY);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/authkey", dir);
	write_file(path, "short", 0600);
	assert_int_equal(live_key_load(path, err, sizeof err), -1);
	assert_non_null(strstr(err, "shorter than 16 bytes"));
	write_file(path, TEXT, 0644);
	assert_int_equal(live_key_load(path, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable or writable by group or others"));
	assert_false(live_key_installed());
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(live_key_load(path, err, sizeof err), 0);
	assert_true(live_key_installed());
	assert_int_equal(live_key_derive(UUID, 7, "short", key), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(live_key_derive(UUID, 7, TOKEN, key), 0);
	sha256((const uint8_t *)TEXT, strlen(TEXT), secret);
	live_key_compute(secret, UUID, 7, TOKEN, want);
	assert_memory_equal(key, want, sizeof key);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_inputs),
		cmocka_unit_test(test_secret_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
