/*
 * havenctl's pure parsing helpers (cli/parse.c): sizes, VM memory, VM
 * names, numbers, priorities, isolation responses, enum names, iSCSI
 * portals and target names, console text made valid UTF-8, --nic, a
 * pool's storage health as status says it, vm vnc's --listen and the
 * console's escape byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "cli.h"
#include "proto.h"

static void
test_size(void **state)
{
	uint64_t	v;

	(void)state;
	assert_int_equal(cli_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(cli_parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(cli_parse_size("2tb", &v), 0);
	assert_int_equal(v, 2ULL << 40);
	assert_int_equal(cli_parse_size("1.5G", &v), -1);
	assert_int_equal(cli_parse_size("", &v), -1);
	assert_int_equal(cli_parse_size("-1", &v), -1);
	assert_int_equal(cli_parse_size("1X", &v), -1);
	assert_int_equal(cli_parse_size("1GX", &v), -1);
	assert_int_equal(cli_parse_size("99999999999T", &v), -1);
}

static void
test_memory(void **state)
{
	uint64_t	mib;

	(void)state;
	assert_int_equal(cli_parse_memory_mib("16M", &mib), 0);
	assert_int_equal(mib, 16);
	assert_int_equal(cli_parse_memory_mib("4G", &mib), 0);
	assert_int_equal(mib, 4096);
	assert_int_equal(cli_parse_memory_mib("16777216", &mib), 0);
	assert_int_equal(mib, 16);
	assert_int_equal(cli_parse_memory_mib("15M", &mib), -1);
	assert_int_equal(cli_parse_memory_mib("0", &mib), -1);
	assert_int_equal(cli_parse_memory_mib("16385K", &mib), -1);
	assert_int_equal(cli_parse_memory_mib("1G5", &mib), -1);
}

static void
test_name(void **state)
{
	char	name[80];

	(void)state;
	assert_true(cli_vm_name_valid("web1"));
	assert_true(cli_vm_name_valid("a"));
	assert_true(cli_vm_name_valid("9.db_primary-2"));
	assert_false(cli_vm_name_valid(""));
	assert_false(cli_vm_name_valid("-web"));
	assert_false(cli_vm_name_valid(".web"));
	assert_false(cli_vm_name_valid("web 1"));
	assert_false(cli_vm_name_valid("web/1"));
	assert_false(cli_vm_name_valid("wéb"));
	memset(name, 'a', 63);
	name[63] = '\0';
	assert_true(cli_vm_name_valid(name));
	name[63] = 'a';
	name[64] = '\0';
	assert_false(cli_vm_name_valid(name));
}

static void
test_uint(void **state)
{
	uint64_t	v;

	(void)state;
	assert_int_equal(cli_parse_uint("1", 1, 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cli_parse_uint("10", 1, 10, &v), 0);
	assert_int_equal(cli_parse_uint("0", 1, 10, &v), -1);
	assert_int_equal(cli_parse_uint("11", 1, 10, &v), -1);
	assert_int_equal(cli_parse_uint("1x", 1, 10, &v), -1);
	assert_int_equal(cli_parse_uint("-1", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint(" 1", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("4294967296", 1, UINT32_MAX, &v), -1);
}

static void
test_priority(void **state)
{
	uint32_t	p;
	char		buf[16];

	(void)state;
	assert_int_equal(cli_parse_priority("high", &p), 0);
	assert_int_equal(p, 300);
	assert_int_equal(cli_parse_priority("Medium", &p), 0);
	assert_int_equal(p, 200);
	assert_int_equal(cli_parse_priority("low", &p), 0);
	assert_int_equal(p, 100);
	assert_int_equal(cli_parse_priority("urgent", &p), -1);
	assert_int_equal(cli_parse_priority("300", &p), -1);
	assert_string_equal(cli_priority_name(300, buf, sizeof buf), "high");
	assert_string_equal(cli_priority_name(100, buf, sizeof buf), "low");
	assert_string_equal(cli_priority_name(250, buf, sizeof buf), "250");
	assert_string_equal(cli_priority_name(0, buf, sizeof buf), "0");
}

static void
test_isolation(void **state)
{
	int	v;

	(void)state;
	assert_int_equal(cli_parse_isolation("stop", &v), 0);
	assert_int_equal(v, HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP);
	assert_int_equal(cli_parse_isolation("save", &v), 0);
	assert_int_equal(v, HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE);
	assert_int_equal(cli_parse_isolation("leave-running", &v), 0);
	assert_int_equal(v,
	    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING);
	assert_int_equal(cli_parse_isolation("none", &v), 0);
	assert_int_equal(v,
	    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING);
	assert_int_equal(cli_parse_isolation("kill", &v), -1);
	assert_string_equal(cli_isolation_name(0), "stop");
	assert_string_equal(cli_isolation_name(2), "leave-running");
	assert_string_equal(cli_isolation_name(3), "save");
	assert_string_equal(cli_isolation_name(99), "unknown");
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(cli_desired_name(0), "stopped");
	assert_string_equal(cli_desired_name(2), "running");
	assert_string_equal(cli_phase_name(0), "stopped");
	assert_string_equal(cli_phase_name(HAVEN__VM_PHASE__VM_PHASE_RECOVERING),
	    "recovering");
	assert_string_equal(cli_phase_name(HAVEN__VM_PHASE__VM_PHASE_PAUSED),
	    "paused");
	assert_string_equal(cli_phase_name(-1), "unknown");
	assert_string_equal(cli_phase_name(1000), "unknown");
	assert_string_equal(cli_membership_name(0), "never-seen");
	assert_string_equal(cli_membership_name(2), "lost");
	assert_string_equal(cli_fence_name(0), "none");
	assert_string_equal(cli_fence_name(2), "fenced");
	assert_string_equal(cli_fence_name(7), "unknown");
}

static void
test_format_mib(void **state)
{
	char	buf[32];

	(void)state;
	cli_format_mib(512, buf, sizeof buf);
	assert_string_equal(buf, "512 MiB");
	cli_format_mib(4096, buf, sizeof buf);
	assert_string_equal(buf, "4 GiB");
	cli_format_mib(1536, buf, sizeof buf);
	assert_string_equal(buf, "1536 MiB");
	cli_format_mib(2 * 1024 * 1024, buf, sizeof buf);
	assert_string_equal(buf, "2 TiB");
	cli_format_mib(0, buf, sizeof buf);
	assert_string_equal(buf, "0 MiB");
}

static void
test_portal(void **state)
{
	(void)state;
	assert_true(cli_portal_valid("10.0.2.2"));
	assert_true(cli_portal_valid("10.0.2.2:3260"));
	assert_true(cli_portal_valid("san"));
	assert_true(cli_portal_valid("san-1.example.com:65535"));
	assert_true(cli_portal_valid("san:1"));
	assert_true(cli_portal_valid("1san.example"));
	assert_false(cli_portal_valid(""));
	assert_false(cli_portal_valid(":3260"));
	assert_false(cli_portal_valid("san:"));
	assert_false(cli_portal_valid("san:0"));
	assert_false(cli_portal_valid("san:65536"));
	assert_false(cli_portal_valid("san:32x"));
	assert_false(cli_portal_valid("san:3260:1"));
	assert_false(cli_portal_valid("10.0.2.256"));
	assert_false(cli_portal_valid("10.0.2"));
	assert_false(cli_portal_valid("-san"));
	assert_false(cli_portal_valid("san-"));
	assert_false(cli_portal_valid("san..example"));
	assert_false(cli_portal_valid("san.example."));
	assert_false(cli_portal_valid("san_1"));
	assert_false(cli_portal_valid("san example"));
	assert_false(cli_portal_valid("[::1]:3260"));
	assert_false(cli_portal_valid("iscsi://san"));
}

static void
test_iscsi_name(void **state)
{
	char	name[CLI_ISCSI_NAME_MAX + 2];

	(void)state;
	assert_true(cli_iscsi_name_valid("iqn.2026-11.san:vm1"));
	assert_true(cli_iscsi_name_valid(
	    "iqn.2001-04.com.example:storage.disk2"));
	assert_true(cli_iscsi_name_valid("eui.0123456789ABCDEF"));
	assert_true(cli_iscsi_name_valid("naa.52004567BA64678D"));
	assert_true(cli_iscsi_name_valid(
	    "naa.6001405f0a2b3c4d5e6f708192a3b4c5"));
	assert_false(cli_iscsi_name_valid(""));
	assert_false(cli_iscsi_name_valid("iqn."));
	assert_false(cli_iscsi_name_valid("IQN.2026-11.san:vm1"));
	assert_false(cli_iscsi_name_valid("2026-11.san:vm1"));
	assert_false(cli_iscsi_name_valid("iqn.2026-11.san/vm1"));
	assert_false(cli_iscsi_name_valid("iqn.2026-11.san vm1"));
	assert_false(cli_iscsi_name_valid("eui.0123456789abcde"));
	assert_false(cli_iscsi_name_valid("eui.0123456789abcdeg"));
	assert_false(cli_iscsi_name_valid(
	    "eui.0123456789abcdef0123456789abcdef"));
	assert_false(cli_iscsi_name_valid("naa.0123"));
	memset(name, 'a', sizeof name);
	memcpy(name, "iqn.", 4);
	name[CLI_ISCSI_NAME_MAX] = '\0';
	assert_true(cli_iscsi_name_valid(name));
	name[CLI_ISCSI_NAME_MAX] = 'a';
	name[CLI_ISCSI_NAME_MAX + 1] = '\0';
	assert_false(cli_iscsi_name_valid(name));
}

/* cli_utf8_clean of a C string, as a C string. */
static const char *
clean(const char *in, char *out)
{
	out[cli_utf8_clean((const uint8_t *)in, strlen(in), out)] = '\0';
	return out;
}

static void
test_utf8_clean(void **state)
{
	char	out[64];

	(void)state;
	assert_string_equal(clean("boot ok\r\n\x1b[0m", out),
	    "boot ok\r\n\x1b[0m");
	assert_string_equal(
	    clean("\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", out),
	    "\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
	/* Stray, truncated, overlong, surrogate and out-of-range bytes. */
	assert_string_equal(clean("a\xff" "b", out), "a\xef\xbf\xbd" "b");
	assert_string_equal(clean("\x80", out), "\xef\xbf\xbd");
	assert_string_equal(clean("\xc3(", out), "\xef\xbf\xbd(");
	assert_string_equal(clean("\xe2\x9c", out),
	    "\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(clean("\xc0\xaf", out),
	    "\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(clean("\xe0\x80\xaf", out),
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(clean("\xed\xa0\x80", out),
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(clean("\xf4\x90\x80\x80", out),
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(cli_utf8_clean((const uint8_t *)"", 0, out), 0);
}

/* --nic: parsed in place; err is set on every refusal. */
static int
nic(const char *arg, Haven__Nic *out, char *mac, char *err)
{
	static char	 buf[256];

	snprintf(buf, sizeof buf, "%s", arg);
	err[0] = '\0';
	return cli_parse_nic(buf, out, mac, err, 256);
}

static void
test_nic(void **state)
{
	Haven__Nic	 n;
	char		 mac[18], err[256];

	(void)state;
	assert_int_equal(nic("bridge=br0", &n, mac, err), 0);
	assert_string_equal(n.bridge, "br0");
	assert_string_equal(n.mac, "");
	assert_int_equal(n.vlan, 0);
	assert_int_equal(n.model, HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO);

	assert_int_equal(nic("model=e1000,vlan=4094,mac=0A:1B:2C:3D:4E:5F,"
	    "bridge=haven-vm", &n, mac, err), 0);
	assert_string_equal(n.bridge, "haven-vm");
	assert_string_equal(n.mac, "0a:1b:2c:3d:4e:5f");	/* lowercase */
	assert_int_equal(n.vlan, 4094);
	assert_int_equal(n.model, HAVEN__NIC_MODEL__NIC_MODEL_E1000);
	assert_int_equal(nic("bridge=br0,vlan=0,", &n, mac, err), 0);

	assert_int_equal(nic("", &n, mac, err), -1);
	assert_non_null(strstr(err, "bridge= is required"));
	assert_int_equal(nic("mac=0a:00:00:00:00:01", &n, mac, err), -1);
	assert_non_null(strstr(err, "bridge= is required"));
	assert_int_equal(nic("bridge=", &n, mac, err), -1);
	assert_non_null(strstr(err, "bridge= needs a value"));
	assert_int_equal(nic("bridge", &n, mac, err), -1);
	assert_int_equal(nic("bridge=br0,bridge=br1", &n, mac, err), -1);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(nic("bridge=br0,,vlan=1", &n, mac, err), -1);
	assert_non_null(strstr(err, "empty field"));
	assert_int_equal(nic("bridge=br0,speed=10", &n, mac, err), -1);
	assert_non_null(strstr(err, "unknown field 'speed=10'"));
	assert_int_equal(nic("bridge=a-very-long-bridge", &n, mac, err), -1);
	assert_non_null(strstr(err, "not a bridge name"));
	assert_int_equal(nic("bridge=br/0", &n, mac, err), -1);
	assert_int_equal(nic("bridge=br0,vlan=4095", &n, mac, err), -1);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(nic("bridge=br0,vlan=-1", &n, mac, err), -1);
	assert_int_equal(nic("bridge=br0,vlan=ten", &n, mac, err), -1);
	assert_int_equal(nic("bridge=br0,model=rtl8139", &n, mac, err), -1);
	assert_non_null(strstr(err, "virtio or e1000"));
	assert_int_equal(nic("bridge=br0,mac=0a:1b:2c", &n, mac, err), -1);
	assert_non_null(strstr(err, "not a MAC address"));
	assert_int_equal(nic("bridge=br0,mac=01:00:5e:00:00:01", &n, mac, err),
	    -1);
	assert_non_null(strstr(err, "multicast"));
	assert_int_equal(nic("bridge=br0,mac=00:00:00:00:00:00", &n, mac, err),
	    -1);
	assert_non_null(strstr(err, "all zeros"));
}

/* havenctl status's words for a host's pool (issue 20). */
static void
test_pool_health(void **state)
{
	const uint64_t	now = UINT64_C(1700000100000000);
	char		buf[64];

	(void)state;
	cli_pool_health("san", 1, now - 5000000, now, buf, sizeof buf);
	assert_string_equal(buf, "san: reachable");
	cli_pool_health("san", 0, now - 42500000, now, buf, sizeof buf);
	assert_string_equal(buf, "san: unreachable for 42 s");
	cli_pool_health("san", 0, now - 119999999, now, buf, sizeof buf);
	assert_string_equal(buf, "san: unreachable for 119 s");
	cli_pool_health("san", 0, now - 185000000, now, buf, sizeof buf);
	assert_string_equal(buf, "san: unreachable for 3 min");
	cli_pool_health("tank", 0, now - UINT64_C(9000000000), now, buf,
	    sizeof buf);
	assert_string_equal(buf, "tank: unreachable for 2 h");
	/* A clock behind the report's (another host's since): 0 s. */
	cli_pool_health("san", 0, now + 3000000, now, buf, sizeof buf);
	assert_string_equal(buf, "san: unreachable for 0 s");
}

/* vm vnc --listen: loopback only, HOST:PORT (issue 16). */
static void
test_listen(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	char			 err[320];
	static const char *const bad[] = { "", ":5900", "127.0.0.1",
	    "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:59x",
	    "0.0.0.0:5900", "10.0.0.1:5900", "[::]:5900", "::1:5900",
	    "[::1:5900", "example.org:5900", "[]:1", "128.0.0.1:1",
	    "127.0.0.1.5:1", "[::ffff:127.0.0.1]:1" };
	size_t			 i;

	(void)state;
	assert_int_equal(cli_parse_listen("127.0.0.1:5901", &ss, &len, err,
	    sizeof err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof *sin);
	assert_int_equal(ntohs(sin->sin_port), 5901);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(cli_parse_listen("127.8.9.10:0", &ss, &len, err,
	    sizeof err), 0);
	assert_int_equal(ntohs(sin->sin_port), 0);
	assert_int_equal(cli_parse_listen("localhost:65535", &ss, &len, err,
	    sizeof err), 0);
	assert_int_equal(ntohs(sin->sin_port), 65535);
	assert_int_equal(cli_parse_listen("[::1]:5902", &ss, &len, err,
	    sizeof err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof *sin6);
	assert_int_equal(ntohs(sin6->sin6_port), 5902);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(cli_parse_listen(bad[i], &ss, &len, err,
		    sizeof err), -1);
		assert_true(err[0] != '\0');
	}
	assert_non_null(strstr(err, "loopback"));
}

/* vm console --attach: where Ctrl-] cuts what was typed. */
static void
test_console_escape(void **state)
{
	(void)state;
	assert_int_equal(cli_console_escape((const uint8_t *)"ls\r", 3), 3);
	assert_int_equal(cli_console_escape((const uint8_t *)"ab\x1d" "cd",
	    5), 2);
	assert_int_equal(cli_console_escape((const uint8_t *)"\x1d", 1), 0);
	assert_int_equal(cli_console_escape((const uint8_t *)"", 0), 0);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_priority),
		cmocka_unit_test(test_isolation),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_format_mib),
		cmocka_unit_test(test_portal),
		cmocka_unit_test(test_iscsi_name),
		cmocka_unit_test(test_utf8_clean),
		cmocka_unit_test(test_nic),
		cmocka_unit_test(test_pool_health),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_console_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
