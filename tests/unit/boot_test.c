/*
 * How a VM boots: proto/boot.c's firmware names and boot order, and the
 * QEMU command line worker/qemu.c makes of them (OVMF's code and the
 * volume's variable store as the two pflash chips, the cdrom from the fd
 * the worker holds, bootindex in the order given), and what it refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "worker.h"

static void
test_order(void **state)
{
	enum boot_device	order[BOOT_NDEVICES];

	(void)state;
	assert_int_equal(boot_order_parse("", order), 0);
	assert_int_equal(boot_order_parse(NULL, order), 0);
	assert_int_equal(boot_order_parse("disk,cdrom", order), 2);
	assert_int_equal(order[0], BOOT_DISK);
	assert_int_equal(order[1], BOOT_CDROM);
	assert_int_equal(boot_order_parse("cdrom", order), 1);
	assert_int_equal(order[0], BOOT_CDROM);
	assert_int_equal(boot_order_parse("disk,disk", order), -1);
	assert_int_equal(boot_order_parse("disk,", order), -1);
	assert_int_equal(boot_order_parse(",disk", order), -1);
	assert_int_equal(boot_order_parse("net", order), -1);
	assert_int_equal(boot_order_parse("diskcdrom", order), -1);
	assert_int_equal(boot_order_parse("disk,cdrom,disk", order), -1);

	assert_true(boot_firmware_valid(""));
	assert_true(boot_firmware_valid("bios"));
	assert_true(boot_firmware_valid("uefi"));
	assert_false(boot_firmware_valid("UEFI"));
	assert_false(boot_firmware_valid("efi"));
	assert_string_equal(boot_firmware_name(""), "bios");
	assert_string_equal(boot_firmware_name("uefi"), "uefi");
}

static void
test_config_check(void **state)
{
	Haven__VmConfig	vc = HAVEN__VM_CONFIG__INIT;
	char		err[256];

	(void)state;
	vc.name = (char *)"web";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), 0);
	vc.firmware = (char *)"uefi";
	vc.cdrom = (char *)"/srv/iso/debian.iso";
	vc.boot_order = (char *)"disk,cdrom";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), 0);
	vc.firmware = (char *)"coreboot";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "neither bios nor uefi"));
	vc.firmware = (char *)"bios";
	vc.cdrom = (char *)"debian.iso";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "absolute path"));
	vc.cdrom = (char *)"/srv/../etc/shadow";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), -1);
	vc.cdrom = (char *)"";
	vc.boot_order = (char *)"floppy";
	assert_int_equal(boot_config_check(&vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "disk,cdrom"));
}

static struct qemu_config
base_config(void)
{
	struct qemu_config	c;

	memset(&c, 0, sizeof c);
	c.name = "web";
	c.uuid = "0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c";
	c.memory_mib = 512;
	c.vcpus = 1;
	c.qmp_path = "/run/haven/vm/x/qmp.sock";
	c.nbd_path = "/run/haven/vm/x/nbd.sock";
	c.ndisks = 1;
	c.serial_fd = c.log_fd = -1;
	c.cdrom_fd = -1;
	return c;
}

static char *
joined(const struct qemu_config *c)
{
	static char	 line[4096];
	char		**argv, **p;
	size_t		 len = 0;

	line[0] = '\0';
	if ((argv = qemu_argv(c)) == NULL)
		return NULL;
	for (p = argv; *p != NULL; p++)
		len += (size_t)snprintf(line + len, sizeof line - len, "%s%s",
		    p == argv ? "" : " ", *p);
	qemu_argv_free(argv);
	return line;
}

static void
test_bios(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	assert_non_null(line = joined(&c));
	assert_null(strstr(line, "pflash"));
	assert_null(strstr(line, "bootindex"));
	assert_null(strstr(line, "ide-cd"));
	assert_non_null(strstr(line, "-machine pc,accel=tcg "));
}

static void
test_uefi(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	c.firmware_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-machine pc,accel=tcg,pflash0=fwcode,"
	    "pflash1=fwvars "));
	assert_non_null(strstr(line, "-blockdev driver=file,node-name=fwcode,"
	    "filename=/usr/share/OVMF/OVMF_CODE_4M.fd,read-only=on "));
	assert_non_null(strstr(line, "-blockdev driver=nbd,node-name=fwvars,"
	    "server.type=unix,server.path=/run/haven/vm/x/nbd.sock,"
	    "export=vars,cache.direct=off"));
	/* A path QEMU would split is refused. */
	c.firmware_code = "/x,file=/etc/shadow";
	assert_null(qemu_argv(&c));
}

static void
test_cdrom_order(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;
	char			 fd[64];

	(void)state;
	c.cdrom = 1;
	c.cdrom_fd = 9;
	c.disk_bootindex = 1;
	c.cdrom_bootindex = 2;
	assert_non_null(line = joined(&c));
	snprintf(fd, sizeof fd, "-add-fd fd=%d,set=2 ", QEMU_CDROM_FD);
	assert_non_null(strstr(line, fd));
	assert_non_null(strstr(line, "-blockdev driver=file,node-name=cdrom,"
	    "filename=/dev/fdset/2,read-only=on -device ide-cd,drive=cdrom,"
	    "bus=ide.1,unit=1,bootindex=2"));
	assert_non_null(strstr(line, "werror=stop,rerror=stop,bootindex=1"));
	/* Only the first disk boots. */
	c.ndisks = 2;
	assert_non_null(line = joined(&c));
	assert_null(strstr(strstr(line, "drive=disk1"), "bootindex=1"));
	/* The cdrom takes the last IDE slot: three disks at most. */
	c.ndisks = 4;
	assert_null(qemu_argv(&c));
	c.ndisks = 3;
	assert_non_null(joined(&c));
	/* No fd, no cdrom. */
	c.cdrom_fd = -1;
	assert_null(qemu_argv(&c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_bios),
		cmocka_unit_test(test_uefi),
		cmocka_unit_test(test_cdrom_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
