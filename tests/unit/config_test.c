/*
 * Unit tests of haven.conf parsing: a complete file, the defaults, every
 * class of error with its line, section, key and sentence, many errors at
 * once, secrets kept out of messages and password_file permissions, and
 * the bridges for guests checked against a fake /sys.
 */
#include <errno.h>
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

#include "config.h"

#define MAX_ERRS	32
#define SECRET		"Hunter2-s3cr3t"

static struct config		 config;
static struct config_error	 errs[MAX_ERRS];
static size_t			 nerrs;
static char			 tmpdir[] = "/tmp/haven-config-test-XXXXXX";

static const char *const minimal =
    "[node]\nname = h1\n[interfaces]\nmanagement = eth0\nstorage = eth1\n";

static int
parse(const char *text)
{
	memset(errs, 0, sizeof errs);
	nerrs = 0;
	return config_parse_string(text, &config, errs, MAX_ERRS, &nerrs);
}

/* The error at line (any if 0) naming section and key, whose message
 * contains words. */
static void
expect_error(unsigned line, const char *section, const char *key,
    const char *words)
{
	size_t	 i;
	char	 text[512];

	for (i = 0; i < nerrs && i < MAX_ERRS; i++) {
		if ((line == 0 || errs[i].line == line) &&
		    strcmp(errs[i].section, section) == 0 &&
		    strcmp(errs[i].key, key) == 0 &&
		    strstr(errs[i].message, words) != NULL)
			return;
	}
	for (i = 0; i < nerrs && i < MAX_ERRS; i++) {
		config_error_format(&errs[i], NULL, text, sizeof text);
		print_message("  got: %s\n", text);
	}
	fail_msg("no error at line %u [%s] %s: ...%s...", line, section, key,
	    words);
}

static char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char	 path[4][256];
	static int	 next;
	char		*p = path[next++ % 4];
	int		 fd;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return p;
}

static void
test_complete(void **state)
{
	char		 text[2048];
	const char	*pwfile;
	const struct config_fence *f;

	pwfile = write_file("ipmi.pw", SECRET "\n", 0600);
	snprintf(text, sizeof text,
	    "; a complete file\n"
	    "[node]\n"
	    "name = host-1.example\n"
	    "\n"
	    "[interfaces]\n"
	    "  management = mgmt0   ; indented, with a comment\n"
	    "  storage = san0\n"
	    "  migration = eth2.100\n"
	    "[watchdog]\n"
	    "device = /dev/watchdog1\n"
	    "timeout_s = 20\n"
	    "[cluster]\n"
	    "name = prod\n"
	    "token_ms = 1000\n"
	    "state_dir = /srv/haven\n"
	    "[control]\n"
	    "socket = /run/h.sock\n"
	    "audit_log = /srv/audit.log\n"
	    "[fence:ipmi]\n"
	    "agent = fence_ipmilan\n"
	    "level = 2\n"
	    "ip = 10.0.0.21\n"
	    "username = admin\n"
	    "password_file = %s\n"
	    "lanplus = 1\n"
	    "[fence:pr]\n"
	    "agent = storage\n"
	    "level = 1\n"
	    "[fence:wd]\n"
	    "agent = watchdog\n"
	    "level = 3\n", pwfile);
	assert_int_equal(parse(text), 0);
	assert_int_equal(nerrs, 0);
	assert_string_equal(config.node_name, "host-1.example");
	assert_string_equal(config.if_management, "mgmt0");
	assert_string_equal(config.if_storage, "san0");
	assert_string_equal(config.if_migration, "eth2.100");
	assert_string_equal(config.watchdog_device, "/dev/watchdog1");
	assert_int_equal(config.watchdog_timeout_s, 20);
	assert_string_equal(config.cluster_name, "prod");
	assert_int_equal(config.token_ms, 1000);
	assert_string_equal(config.state_dir, "/srv/haven");
	assert_string_equal(config.control_socket, "/run/h.sock");
	assert_string_equal(config.audit_log, "/srv/audit.log");
	assert_int_equal(config.nfences, 3);
	/* Sorted by level. */
	assert_string_equal(config.fences[0].name, "pr");
	assert_int_equal(config.fences[0].kind, CONFIG_FENCE_STORAGE);
	assert_int_equal(config.fences[0].noptions, 0);
	f = &config.fences[1];
	assert_string_equal(f->name, "ipmi");
	assert_string_equal(f->agent, "fence_ipmilan");
	assert_int_equal(f->kind, CONFIG_FENCE_AGENT);
	assert_int_equal(f->level, 2);
	assert_int_equal(f->noptions, 4);
	assert_string_equal(config_fence_option(f, "ip"), "10.0.0.21");
	assert_string_equal(config_fence_option(f, "username"), "admin");
	assert_string_equal(config_fence_option(f, "password"), SECRET);
	assert_string_equal(config_fence_option(f, "lanplus"), "1");
	assert_null(config_fence_option(f, "password_file"));
	assert_int_equal(config.fences[2].kind, CONFIG_FENCE_WATCHDOG);
	config_wipe(&config);
	assert_int_equal(config.fences[1].options[3].value[0], 0);
}

/* Without timeout_s the watchdog fires before the earliest detection of a
 * frozen host (two tokens) by at least half a second; never below 2 s. */
static void
test_watchdog_auto(void **state)
{
	static const struct { unsigned token_ms, timeout_s; } cases[] = {
		{ 100, 2 }, { 1000, 2 }, { 1499, 2 }, { 1500, 2 },
		{ 2000, 3 }, { 3000, 5 }, { 10000, 19 },
	};
	char	text[256];
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "%s[cluster]\ntoken_ms = %u\n",
		    minimal, cases[i].token_ms);
		assert_int_equal(parse(text), 0);
		assert_int_equal(config.watchdog_timeout_s,
		    cases[i].timeout_s);
		assert_true(config.watchdog_timeout_s * 1000 + 500 <=
		    2 * cases[i].token_ms || config.watchdog_timeout_s == 2);
	}
	snprintf(text, sizeof text, "%s[cluster]\ntoken_ms = 1000\n"
	    "[watchdog]\ntimeout_s = 9\n", minimal);
	assert_int_equal(parse(text), 0);
	assert_int_equal(config.watchdog_timeout_s, 9);
}

static void
test_defaults(void **state)
{
	assert_int_equal(parse(minimal), 0);
	assert_string_equal(config.node_name, "h1");
	assert_string_equal(config.cluster_name, "haven");
	assert_string_equal(config.if_migration, "eth0");
	assert_string_equal(config.watchdog_device, "/dev/watchdog");
	/* Below the earliest detection, 2 x 1500 ms, by half a second. */
	assert_int_equal(config.watchdog_timeout_s, 2);
	assert_int_equal(config.watchdog_timeout_auto, 1);
	assert_int_equal(config.token_ms, 1500);
	assert_string_equal(config.state_dir, "/var/lib/haven");
	assert_string_equal(config.control_socket, "/run/haven/havend.sock");
	assert_string_equal(config.audit_log, "/var/log/haven/audit.log");
	assert_int_equal(config.vm_log_max_mb, 16);
	/* No fence section: PR preemption alone. */
	assert_int_equal(config.nfences, 1);
	assert_string_equal(config.fences[0].agent, "storage");
	assert_int_equal(config.fences[0].level, 1);

	/* Watchdog off; fence levels default to file order. */
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\nmanagement=a\n"
	    "storage=b\n[watchdog]\ndevice = none\n[fence:x]\nagent=storage\n"
	    "[fence:y]\nagent=fence_scsi\n"), 0);
	assert_string_equal(config.watchdog_device, "");
	assert_int_equal(config.fences[0].level, 1);
	assert_int_equal(config.fences[1].level, 2);
	/* A BOM, CRLF and ':' separators are fine. */
	assert_int_equal(parse("\xef\xbb\xbf[node]\r\nname: h2\r\n"
	    "[interfaces]\r\nmanagement=a\r\nstorage=b\r\n"), 0);
	assert_string_equal(config.node_name, "h2");
}

static void
test_required(void **state)
{
	assert_int_equal(parse("[node]\n"), -1);
	assert_int_equal(nerrs, 3);
	expect_error(1, "node", "name", "is required");
	expect_error(0, "interfaces", "management", "is required");
	expect_error(0, "interfaces", "storage", "is required");
	assert_int_equal(errs[0].line, 1);	/* line order, ... */
	assert_int_equal(errs[1].line, 0);	/* no [interfaces] at all */
	assert_int_equal(parse(""), -1);
	assert_int_equal(nerrs, 3);
}

static void
test_interfaces(void **state)
{
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth0\n"), -1);
	assert_int_equal(nerrs, 1);
	expect_error(5, "interfaces", "storage", "management interface too");

	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\nmigration = eth1\n"), -1);
	expect_error(6, "interfaces", "migration", "storage interface");

	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = averyveryverylongname\nstorage = a/b\n"
	    "migration = ..\n"), -1);
	expect_error(4, "interfaces", "management", "not a network interface");
	expect_error(5, "interfaces", "storage", "not a network interface");
	expect_error(6, "interfaces", "migration", "not a network interface");
}

/* [interfaces] vm: bridges for guests, sorted, each once, none of them a
 * management, storage or migration NIC. */
static void
test_vm_bridges(void **state)
{
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\nvm = br1  br0\tvlan.10\n"),
	    0);
	assert_int_equal(config.nif_vm, 3);
	assert_string_equal(config.if_vm[0], "br0");
	assert_string_equal(config.if_vm[1], "br1");
	assert_string_equal(config.if_vm[2], "vlan.10");
	assert_int_equal(config.if_vm_line, 6);

	assert_int_equal(parse(minimal), 0);
	assert_int_equal(config.nif_vm, 0);

	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\nmigration = eth2\n"
	    "vm = br0 eth0 eth1 eth2 br0 a/b averyveryverylongname\n"), -1);
	expect_error(7, "interfaces", "vm", "eth0 is the management interface");
	expect_error(7, "interfaces", "vm", "eth1 is the storage interface");
	expect_error(7, "interfaces", "vm", "eth2 is the migration interface");
	expect_error(7, "interfaces", "vm", "br0 is listed twice");
	expect_error(7, "interfaces", "vm", "'a/b' is not a bridge name");
	expect_error(7, "interfaces", "vm", "'averyveryverylongname' is not");
	assert_int_equal(nerrs, 6);
	assert_int_equal(config.nif_vm, 1);

	/* Migration defaults to the management NIC, which it then is too. */
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "vm = eth0\nmanagement = eth0\nstorage = eth1\n"), -1);
	expect_error(4, "interfaces", "vm", "eth0 is the management interface");
	assert_int_equal(nerrs, 1);
}

static void
mkdirs(const char *root, const char *sub)
{
	char	 path[512], *p;

	snprintf(path, sizeof path, "%s/%s", root, sub);
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(path, 0755);
		*p = '/';
	}
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void
sysfs_write(const char *root, const char *sub, const char *text)
{
	char	 path[400];
	FILE	*f;

	snprintf(path, sizeof path, "%s/%s", root, sub);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* The bridges checked against a fake /sys: br0 a bridge, eth3 a NIC that
 * is not one, br9 nowhere. */
static void
test_bridges_on_host(void **state)
{
	char		 sysfs[300], line[600];
	size_t		 n;

	snprintf(sysfs, sizeof sysfs, "%s/sys", tmpdir);
	mkdirs(sysfs, "class/net/br0/bridge");
	mkdirs(sysfs, "class/net/eth3");
	assert_true(config_bridge_exists(sysfs, "br0"));
	assert_false(config_bridge_exists(sysfs, "eth3"));
	assert_false(config_bridge_exists(sysfs, "br9"));
	/* VLAN filtering: br1's file says 1, br0 has none (a kernel without
	 * it), br2's says 0. */
	mkdirs(sysfs, "class/net/br1/bridge");
	mkdirs(sysfs, "class/net/br2/bridge");
	sysfs_write(sysfs, "class/net/br1/bridge/vlan_filtering", "1\n");
	sysfs_write(sysfs, "class/net/br2/bridge/vlan_filtering", "0\n");
	assert_true(config_bridge_filters_vlans(sysfs, "br1"));
	assert_false(config_bridge_filters_vlans(sysfs, "br0"));
	assert_false(config_bridge_filters_vlans(sysfs, "br2"));
	assert_false(config_bridge_filters_vlans(sysfs, "br9"));

	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\nvm = br0 br9 eth3\n"), 0);
	memset(errs, 0, sizeof errs);
	n = config_check_bridges(&config, sysfs, errs, MAX_ERRS);
	nerrs = n;
	assert_int_equal(n, 2);
	expect_error(6, "interfaces", "vm", "no bridge br9 on this host");
	expect_error(6, "interfaces", "vm", "eth3 is a network interface but "
	    "not a bridge");
	config_error_format(&errs[0], "haven.conf", line, sizeof line);
	assert_string_equal(line, "haven.conf:6: [interfaces] vm: no bridge "
	    "br9 on this host; create it (ip link add br9 type bridge) or "
	    "remove it from the list");
	/* Only what fits is written; all are counted. */
	assert_int_equal(config_check_bridges(&config, sysfs, errs, 1), 2);

	assert_int_equal(parse(minimal), 0);
	assert_int_equal(config_check_bridges(&config, sysfs, errs, MAX_ERRS),
	    0);
}

static void
test_unknown_and_duplicates(void **state)
{
	assert_int_equal(parse("[node]\nname=h1\nnmae=h2\nname=h3\n"
	    "[interfaces]\nmanagement=a\nstorage=b\n[interface]\nx=1\n"
	    "[node]\nname=h4\n"), -1);
	expect_error(3, "node", "nmae", "unknown key in [node]");
	expect_error(4, "node", "name", "given twice (first at line 2)");
	expect_error(8, "interface", "", "unknown section");
	expect_error(10, "node", "", "appears twice (first at line 1)");
	/* Keys under an unknown section are not reported again. */
	assert_int_equal(nerrs, 4);
	assert_int_equal(errs[0].line, 3);
	assert_int_equal(errs[3].line, 10);
}

static void
test_syntax(void **state)
{
	char	 text[1024], longline[300];

	memset(longline, 'x', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	snprintf(text, sizeof text, "early = 1\n%s\n[node\nname=h1\n[]\n"
	    "[node]\nname h1\n= v\nname =\n%s\n[interfaces]\nmanagement=a\n"
	    "storage=b\n", "junk", longline);
	assert_int_equal(parse(text), -1);
	expect_error(1, "", "early", "before any section");
	expect_error(2, "", "", "expected 'key = value'");
	expect_error(3, "", "", "without its closing ']'");
	expect_error(5, "", "", "empty section name");
	expect_error(7, "node", "", "expected 'key = value'");
	expect_error(8, "node", "", "no key before '='");
	expect_error(9, "node", "name", "has no value");
	expect_error(10, "", "", "longer than 198 characters");
	/* Line 4 sits under the bad header: skipped, not a second error. */
	expect_error(0, "node", "name", "is required");
}

static void
test_numbers_and_paths(void **state)
{
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\nmanagement=a\n"
	    "storage=b\n[watchdog]\ntimeout_s=0\ndevice=watchdog\n[cluster]\n"
	    "token_ms=99999999999999999999\nstate_dir=relative\nname=a b\n"
	    "[control]\nsocket=/run/" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
	    "audit_log=-1\n"), -1);
	assert_int_equal(nerrs, 7);
	expect_error(7, "watchdog", "timeout_s", "from 2 to 255");
	expect_error(8, "watchdog", "device", "absolute device path");
	expect_error(10, "cluster", "token_ms", "from 100 to 120000");
	expect_error(11, "cluster", "state_dir", "absolute path");
	expect_error(12, "cluster", "name", "not a cluster name");
	expect_error(14, "control", "socket", "UNIX socket");
	expect_error(15, "control", "audit_log", "absolute path");

	/* Each VM log's cap: 1 to 65536 MiB. */
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\nmanagement=a\n"
	    "storage=b\n[vm]\nlog_max_mb=0\n"), -1);
	expect_error(7, "vm", "log_max_mb", "from 1 to 65536");
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\nmanagement=a\n"
	    "storage=b\n[vm]\nlog_max_mb=2\n"), 0);
	assert_int_equal(config.vm_log_max_mb, 2);
}

static void
test_fences(void **state)
{
	assert_int_equal(parse("[node]\nname=h1\n[interfaces]\nmanagement=a\n"
	    "storage=b\n[watchdog]\ndevice=none\n"
	    "[fence:a]\nip=1.2.3.4\n"			/* 8 */
	    "[fence:b]\nagent=fence-ipmi\nlevel=100\n"	/* 10 */
	    "[fence:c]\nagent=watchdog\nlevel=5\n"		/* 13 */
	    "[fence:d]\nagent=storage\nlevel=5\nip=x\n"	/* 16 */
	    "[fence:d]\n"					/* 20 */
	    "[fence:bad name]\n"				/* 21 */
	    "[fence:e]\nagent=fence_x\nIP=1\nagent=fence_y\n"	/* 22 */
	    "[fence:f]\nagent=fence_x\nlevel=7\nip=1.2.3.4\x1b[2J\n"	/* 26 */
	    "password=a\tb\n"					/* 30 */
	    ), -1);
	expect_error(8, "fence:a", "agent", "is required");
	expect_error(11, "fence:b", "agent", "not a fence level");
	expect_error(12, "fence:b", "level", "from 1 to 99");
	expect_error(18, "fence:d", "level", "also the level of [fence:c]");
	expect_error(19, "fence:d", "ip", "only fence_* agents take options");
	expect_error(20, "fence:d", "", "appears twice (first at line 16)");
	expect_error(21, "fence:bad name", "", "[fence:NAME]");
	expect_error(24, "fence:e", "IP", "not a fence agent option name");
	expect_error(25, "fence:e", "agent", "given twice");
	expect_error(29, "fence:f", "ip", "control character");
	expect_error(30, "fence:f", "password", "control character");
	assert_int_equal(nerrs, 11);
	/* Whole-file checks come after the parse but sort into place. */
	for (size_t i = 1; i < nerrs; i++)
		assert_true(errs[i - 1].line <= errs[i].line);
}

static void
test_many_errors_capped(void **state)
{
	struct config_error	 few[2];
	size_t			 n = 0;

	assert_int_equal(config_parse_string("[a]\n[b]\n[c]\n[d]\n", &config,
	    few, 2, &n), -1);
	assert_int_equal(n, 7);	/* 4 sections + 3 required keys */
	assert_int_equal(few[0].line, 1);
	assert_int_equal(few[1].line, 2);
}

static int
any_message_has(const char *s)
{
	size_t	 i;
	char	 text[512];

	for (i = 0; i < nerrs && i < MAX_ERRS; i++) {
		config_error_format(&errs[i], "/etc/haven/haven.conf", text,
		    sizeof text);
		if (strstr(text, s) != NULL)
			return 1;
	}
	return 0;
}

static void
test_secret_not_in_messages(void **state)
{
	char	 text[4096], big[300];

	memset(big, 'S', 250);
	big[250] = '\0';
	snprintf(text, sizeof text, "%s[fence:x]\nagent=fence_ipmilan\n"
	    "password=" SECRET "\npassword=" SECRET "\n"
	    "password_file=" SECRET "\npassword " SECRET "\n"
	    "passwd:" SECRET "\npasswd=" SECRET "\n"
	    "[watchdog]\npassword = " SECRET "\n[fence:y]\nagent=fence_x\n"
	    "password=%.190s\n[fence:z]\nagent=storage\npassword=" SECRET "\n",
	    minimal, big);
	assert_int_equal(parse(text), -1);
	assert_true(nerrs >= 6);
	assert_false(any_message_has(SECRET));
	assert_false(any_message_has("SSSSSSSSSS"));
	expect_error(9, "fence:x", "password", "given twice");
	expect_error(10, "fence:x", "password_file", "not both");
	expect_error(11, "fence:x", "", "expected 'key = value'");
	expect_error(13, "fence:x", "passwd", "given twice");
	expect_error(15, "watchdog", "password", "unknown key");
}

static void
test_password_file(void **state)
{
	char		 text[1024];
	const char	*loose, *empty;

	loose = write_file("loose.pw", SECRET "\n", 0640);
	empty = write_file("empty.pw", "\n", 0600);
	snprintf(text, sizeof text, "%s[fence:a]\nagent=fence_a\n"
	    "password_file=%s\n[fence:b]\nagent=fence_b\npassword_file=%s\n"
	    "[fence:c]\nagent=fence_c\npassword_file=%s/missing\n"
	    "[fence:d]\nagent=fence_d\npassword_file=/dev/null\n"
	    "[fence:e]\nagent=fence_e\npassword_file=relative.pw\n",
	    minimal, loose, empty, tmpdir);
	assert_int_equal(parse(text), -1);
	assert_int_equal(nerrs, 5);
	expect_error(8, "fence:a", "password_file", "chmod 600");
	expect_error(8, "fence:a", "password_file", "mode 0640");
	expect_error(11, "fence:b", "password_file", "no password");
	expect_error(14, "fence:c", "password_file", "No such file");
	expect_error(17, "fence:d", "password_file", "not a regular file");
	expect_error(20, "fence:e", "password_file", "absolute path");
	assert_false(any_message_has(SECRET));
}

static void
test_file(void **state)
{
	char		 text[512], line[600];
	const char	*path;

	assert_int_equal(config_parse_file("/nonexistent/haven.conf", &config,
	    errs, MAX_ERRS, &nerrs), -1);
	assert_int_equal(nerrs, 1);
	config_error_format(&errs[0], "/nonexistent/haven.conf", line,
	    sizeof line);
	assert_string_equal(line, "/nonexistent/haven.conf: cannot open: No "
	    "such file or directory; create it (see haven.conf(5))");

	path = write_file("ok.conf", minimal, 0644);
	assert_int_equal(config_parse_file(path, &config, errs, MAX_ERRS,
	    &nerrs), 0);
	assert_string_equal(config.if_storage, "eth1");

	/* An inline password needs a file only root can read. */
	snprintf(text, sizeof text, "%s[fence:a]\nagent=fence_a\npassword="
	    SECRET "\n", minimal);
	path = write_file("secret.conf", text, 0644);
	assert_int_equal(config_parse_file(path, &config, errs, MAX_ERRS,
	    &nerrs), -1);
	assert_int_equal(nerrs, 1);
	config_error_format(&errs[0], "haven.conf", line, sizeof line);
	assert_non_null(strstr(line, "haven.conf: holds a password"));
	assert_null(strstr(line, SECRET));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(config_parse_file(path, &config, errs, MAX_ERRS,
	    &nerrs), 0);
	assert_string_equal(config_fence_option(&config.fences[0], "password"),
	    SECRET);

	assert_int_equal(config_parse_file(tmpdir, &config, errs, MAX_ERRS,
	    &nerrs), -1);
	expect_error(0, "", "", "not a regular file");
}

static void
test_format(void **state)
{
	struct config_error	 e = { 12, "interfaces", "storage", "bad" };
	char			 line[256];

	config_error_format(&e, NULL, line, sizeof line);
	assert_string_equal(line, "haven.conf:12: [interfaces] storage: bad");
	e.key[0] = '\0';
	config_error_format(&e, "/etc/haven/haven.conf", line, sizeof line);
	assert_string_equal(line, "/etc/haven/haven.conf:12: [interfaces]: bad");
	e.section[0] = '\0';
	e.line = 0;
	config_error_format(&e, "x", line, sizeof line);
	assert_string_equal(line, "x: bad");
}

static int
setup(void **state)
{
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	 cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_watchdog_auto),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_interfaces),
		cmocka_unit_test(test_vm_bridges),
		cmocka_unit_test(test_bridges_on_host),
		cmocka_unit_test(test_unknown_and_duplicates),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_numbers_and_paths),
		cmocka_unit_test(test_fences),
		cmocka_unit_test(test_many_errors_capped),
		cmocka_unit_test(test_secret_not_in_messages),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
