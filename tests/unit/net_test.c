/*
 * common/net.c: interface names as Linux takes them, MAC addresses both
 * ways, and which MACs a guest's NIC may not have.
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
test_ifname(void **state)
{
	(void)state;
	assert_true(net_ifname_valid("br0"));
	assert_true(net_ifname_valid("haven-vm"));
	assert_true(net_ifname_valid("vlan.10"));
	assert_true(net_ifname_valid("abcdefghijklmno"));	/* 15 */
	assert_false(net_ifname_valid("abcdefghijklmnop"));	/* 16 */
	assert_false(net_ifname_valid(""));
	assert_false(net_ifname_valid(NULL));
	assert_false(net_ifname_valid("."));
	assert_false(net_ifname_valid(".."));
	assert_false(net_ifname_valid("br/0"));
	assert_false(net_ifname_valid("br:0"));
	assert_false(net_ifname_valid("br 0"));
	assert_false(net_ifname_valid("br,0"));
	assert_false(net_ifname_valid("br\n"));
	assert_false(net_ifname_valid("br\xc3\xa9"));
}

static void
test_mac_round_trip(void **state)
{
	uint8_t	 mac[NET_MAC_BYTES];
	char	 text[NET_MAC_STRLEN + 1];

	(void)state;
	assert_int_equal(net_mac_parse("0A:1b:2C:3d:4E:5f", mac), 0);
	net_mac_format(mac, text);
	assert_string_equal(text, "0a:1b:2c:3d:4e:5f");
	assert_null(net_mac_problem(mac));
	assert_int_equal(net_mac_parse("0a:1b:2c:3d:4e", mac), -1);
	assert_int_equal(net_mac_parse("0a:1b:2c:3d:4e:5f:", mac), -1);
	assert_int_equal(net_mac_parse("0a-1b-2c-3d-4e-5f", mac), -1);
	assert_int_equal(net_mac_parse("0a:1b:2c:3d:4e:5g", mac), -1);
	assert_int_equal(net_mac_parse("0a:1b:2c:3d:4e5:f", mac), -1);
	assert_int_equal(net_mac_parse("a:b:c:d:e:f", mac), -1);
	assert_int_equal(net_mac_parse("", mac), -1);
	assert_int_equal(net_mac_parse(NULL, mac), -1);
}

static void
test_mac_problem(void **state)
{
	uint8_t	 mac[NET_MAC_BYTES];

	(void)state;
	assert_int_equal(net_mac_parse("00:00:00:00:00:00", mac), 0);
	assert_non_null(net_mac_problem(mac));
	assert_int_equal(net_mac_parse("ff:ff:ff:ff:ff:ff", mac), 0);
	assert_non_null(net_mac_problem(mac));
	assert_int_equal(net_mac_parse("01:00:5e:00:00:01", mac), 0);
	assert_non_null(net_mac_problem(mac));
	/* A vendor's (universally administered) address is an operator's
	 * choice to make. */
	assert_int_equal(net_mac_parse("00:16:3e:12:34:56", mac), 0);
	assert_null(net_mac_problem(mac));
	assert_false(mac[0] & NET_MAC_LOCAL);
	/* QEMU's default prefix is locally administered (0x52 = 0101 0010). */
	assert_int_equal(net_mac_parse("52:54:00:12:34:56", mac), 0);
	assert_true(mac[0] & NET_MAC_LOCAL);
	assert_int_equal(net_mac_parse("0a:00:00:00:00:01", mac), 0);
	assert_null(net_mac_problem(mac));
	assert_true(mac[0] & NET_MAC_LOCAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ifname),
		cmocka_unit_test(test_mac_round_trip),
		cmocka_unit_test(test_mac_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
