/*
 * common/util.c: UUIDs as text both ways, and the lab's failpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"

static void
test_uuid_round_trip(void **state)
{
	uint8_t	 raw[UUID_BYTES], again[UUID_BYTES];
	char	 text[UUID_STRLEN + 1];

	(void)state;
	assert_int_equal(uuid_parse("0B7E1C2A-5D3F-4E8A-9C1B-2F3E4D5A6B7C",
	    raw), 0);
	uuid_format(raw, text);
	assert_string_equal(text, "0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c");
	assert_true(uuid_valid(text));
	assert_int_equal(uuid_generate(raw), 0);
	uuid_format(raw, text);
	assert_int_equal(uuid_parse(text, again), 0);
	assert_memory_equal(raw, again, UUID_BYTES);
	assert_int_equal(text[14], '4');	/* version 4 */
	assert_false(uuid_valid("0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7"));
	assert_false(uuid_valid("0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7cc"));
	assert_false(uuid_valid("0b7e1c2a+5d3f-4e8a-9c1b-2f3e4d5a6b7c"));
	assert_false(uuid_valid("0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7g"));
	assert_false(uuid_valid(""));
}

static void
test_failpoint(void **state)
{
	(void)state;
	unsetenv("HAVEN_FAILPOINTS");
	assert_false(failpoint("a"));
	setenv("HAVEN_FAILPOINTS", "", 1);
	assert_false(failpoint("a"));
	setenv("HAVEN_FAILPOINTS", "alpha,beta", 1);
	assert_true(failpoint("alpha"));
	assert_true(failpoint("beta"));
	assert_false(failpoint("alph"));
	assert_false(failpoint("alphabet"));
	assert_false(failpoint("gamma"));
	setenv("HAVEN_FAILPOINTS", ",,beta,", 1);
	assert_true(failpoint("beta"));
	assert_false(failpoint(""));
	unsetenv("HAVEN_FAILPOINTS");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_round_trip),
		cmocka_unit_test(test_failpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
