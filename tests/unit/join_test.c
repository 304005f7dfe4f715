/*
 * Unit tests of config/join.c: a join token reads back as it was written
 * and anything else is refused; a message carries binary values (an
 * authkey) and multi-line ones (a corosync.conf) through, and a bad one is
 * refused whole, with nothing left allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void
test_token(void **state)
{
	struct join_token	 t, back;
	char			 text[JOIN_TOKEN_MAX + 1], bad[JOIN_TOKEN_MAX + 8];
	size_t			 i;

	(void)state;
	memset(&t, 0, sizeof t);
	snprintf(t.addr, sizeof t.addr, "10.77.1.11");
	t.port = 5408;
	snprintf(t.id, sizeof t.id, "0123456789abcdef");
	for (i = 0; i < JOIN_SECRET; i++)
		t.secret[i] = (uint8_t)(i * 7 + 1);
	join_token_format(&t, text, sizeof text);
	assert_int_equal(strncmp(text, "haven1:10.77.1.11:5408:0123456789abcdef:",
	    40), 0);
	assert_int_equal(join_token_parse(text, &back), 0);
	assert_memory_equal(&t, &back, sizeof t);
	/* one hex digit short, uppercase, a bad address or port, a prefix */
	snprintf(bad, sizeof bad, "%.*s", (int)strlen(text) - 1, text);
	assert_int_equal(join_token_parse(bad, &back), -1);
	snprintf(bad, sizeof bad, "%s", text);
	bad[strlen(bad) - 1] = 'A';
	assert_int_equal(join_token_parse(bad, &back), -1);
	assert_int_equal(join_token_parse("haven1:10.77.1:5408:0123456789abcdef:"
	    "00", &back), -1);
	snprintf(bad, sizeof bad, "haven1:10.77.1.11:0%s", text + 22);
	assert_int_equal(join_token_parse(bad, &back), -1);
	snprintf(bad, sizeof bad, "haven2%s", text + 6);
	assert_int_equal(join_token_parse(bad, &back), -1);
	assert_int_equal(join_token_parse("", &back), -1);
}

static void
test_message(void **state)
{
	struct join_msg	 m, back;
	const char	 key[4] = { 0, '\n', (char)0xff, ' ' };
	const char	*conf = "totem {\n\tversion: 2\n}\n";
	char		 err[128], *text;
	size_t		 len;

	(void)state;
	memset(&m, 0, sizeof m);
	join_msg_set(&m, JOIN_AUTHKEY, key, sizeof key);
	join_msg_set(&m, JOIN_COROSYNC_CONF, conf, strlen(conf));
	join_msg_set(&m, JOIN_NAME, "haven-h2", 8);
	text = join_msg_format(&m, &len);
	assert_non_null(strstr(text, "authkey 000aff20\n"));
	assert_int_equal(join_msg_parse(text, len, &back, err, sizeof err), 0);
	assert_int_equal(back.len[JOIN_AUTHKEY], 4);
	assert_memory_equal(back.value[JOIN_AUTHKEY], key, 4);
	assert_string_equal(back.value[JOIN_COROSYNC_CONF], conf);
	assert_string_equal(back.value[JOIN_NAME], "haven-h2");
	assert_null(back.value[JOIN_ERROR]);
	free(text);
	join_msg_clear(&back);
	join_msg_clear(&m);

	assert_int_equal(join_msg_parse("name 41\nname 42\n", 16, &back, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "repeated"));
	assert_null(back.value[JOIN_NAME]);
	assert_int_equal(join_msg_parse("secret 41\n", 10, &back, err,
	    sizeof err), -1);
	assert_int_equal(join_msg_parse("name 4\n", 7, &back, err,
	    sizeof err), -1);
	assert_int_equal(join_msg_parse("name 4g\n", 8, &back, err,
	    sizeof err), -1);
	assert_int_equal(join_msg_parse("name 41", 7, &back, err,
	    sizeof err), -1);
	assert_int_equal(join_msg_parse("", 0, &back, err, sizeof err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
