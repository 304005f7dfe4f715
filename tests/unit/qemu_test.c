/*
 * worker/qemu.c's command line: what a VM without NICs has always had,
 * NICs on the taps the worker holds (-netdev tap,fd= at QEMU_TAP_FD(i) and
 * the device with the configured MAC), -initrd with its kernel, the disks on
 * each bus with discard passed through, the machine type and CPU model
 * (issue 16), and every spec it must refuse rather than start QEMU wrongly.
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
	return c;
}

/* The whole command line as one string, words split by spaces. */
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
test_no_nics(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	line = joined(&c);
	assert_non_null(line);
	assert_non_null(strstr(line, "qemu-system-x86_64 -nodefaults "));
	assert_null(strstr(line, "-netdev"));
	assert_null(strstr(line, "-device virtio-net"));
	assert_null(strstr(line, "-initrd"));
}

static void
test_nics(void **state)
{
	struct qemu_nic		 nics[2] = {
		{ "0a:00:00:00:00:01", 0, 17 },
		{ "0a:00:00:00:00:02", 1, 9 },
	};
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	c.nics = nics;
	c.nnics = 2;
	line = joined(&c);
	assert_non_null(line);
	/* The worker's fd numbers never show: QEMU's own from 4 on. */
	assert_non_null(strstr(line, " -netdev tap,id=net0,fd=4 -device "
	    "virtio-net-pci,id=nic0,netdev=net0,mac=0a:00:00:00:00:01 "));
	assert_non_null(strstr(line, " -netdev tap,id=net1,fd=5 -device "
	    "e1000,id=nic1,netdev=net1,mac=0a:00:00:00:00:02"));
	assert_null(strstr(line, "fd=17"));
	assert_int_equal(QEMU_TAP_FD(0), 4);
}

static void
test_initrd(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	c.kernel = "/boot/vmlinuz";
	c.append = "console=ttyS0";
	c.initrd = "/boot/initrd.img";
	line = joined(&c);
	assert_non_null(line);
	assert_non_null(strstr(line, " -kernel /boot/vmlinuz -append "
	    "console=ttyS0 -initrd /boot/initrd.img"));
	c.initrd = "";
	line = joined(&c);
	assert_null(strstr(line, "-initrd"));
}

static void
test_refused(void **state)
{
	struct qemu_nic		 nic = { "0a:00:00:00:00:01", 0, 5 };
	struct qemu_nic		 many[QEMU_MAX_NICS + 1];
	struct qemu_config	 c;
	size_t			 i;

	(void)state;
	/* An initrd without a kernel, or one QEMU would split. */
	c = base_config();
	c.initrd = "/boot/initrd.img";
	errno = 0;
	assert_null(qemu_argv(&c));
	assert_int_equal(errno, EINVAL);
	c.kernel = "/boot/vmlinuz";
	c.initrd = "/boot/initrd,file=x";
	assert_null(qemu_argv(&c));

	/* A NIC without its tap, or with a MAC QEMU must not get. */
	c = base_config();
	c.nics = &nic;
	c.nnics = 1;
	nic.tap_fd = -1;
	assert_null(qemu_argv(&c));
	nic.tap_fd = 5;
	nic.mac = "0a:00:00:00:00:01,romfile=/etc/passwd";
	assert_null(qemu_argv(&c));
	nic.mac = "01:00:5e:00:00:01";
	assert_null(qemu_argv(&c));
	nic.mac = "0a:00:00:00:00:01";
	assert_non_null(joined(&c));

	for (i = 0; i < QEMU_MAX_NICS + 1; i++)
		many[i] = nic;
	c.nics = many;
	c.nnics = QEMU_MAX_NICS;
	assert_non_null(joined(&c));
	c.nnics = QEMU_MAX_NICS + 1;
	assert_null(qemu_argv(&c));
}

/* A VM from before the bus was chosen (0) keeps IDE, two disks a channel. */
static void
test_disks_ide(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	c.ndisks = 3;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-blockdev driver=nbd,node-name=disk0,"
	    "server.type=unix,server.path=/run/haven/vm/x/nbd.sock,"
	    "export=disk0,cache.direct=off,discard=unmap -device ide-hd,"
	    "drive=disk0,bus=ide.0,unit=0,werror=stop,rerror=stop"));
	assert_non_null(strstr(line, "ide-hd,drive=disk2,bus=ide.1,unit=0,"));
	assert_null(strstr(line, "virtio-blk"));
	c.disk_bus = HAVEN__DISK_BUS__DISK_BUS_IDE;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "ide-hd,drive=disk1,bus=ide.0,unit=1,"));
	/* IDE has four places; more is refused, not half started. */
	c.ndisks = VM_IDE_MAX_VOLUMES + 1;
	assert_null(qemu_argv(&c));
	assert_int_equal(errno, EINVAL);
}

static void
test_disks_virtio(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	c.disk_bus = HAVEN__DISK_BUS__DISK_BUS_VIRTIO;
	c.ndisks = VM_MAX_VOLUMES;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "export=disk0,cache.direct=off,"
	    "discard=unmap -device virtio-blk-pci,drive=disk0,id=vd0,"
	    "discard=on,werror=stop,rerror=stop"));
	assert_non_null(strstr(line, "virtio-blk-pci,drive=disk7,id=vd7,"));
	assert_null(strstr(line, "ide-hd"));
	assert_null(strstr(line, "virtio-scsi"));
	c.ndisks = VM_MAX_VOLUMES + 1;
	assert_null(qemu_argv(&c));
}

static void
test_disks_scsi(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line, *ctl;

	(void)state;
	c.disk_bus = HAVEN__DISK_BUS__DISK_BUS_SCSI;
	c.ndisks = 2;
	assert_non_null(line = joined(&c));
	/* One controller, before its disks. */
	assert_non_null(ctl = strstr(line, "-device virtio-scsi-pci,id=scsi0"));
	assert_null(strstr(ctl + 9, "virtio-scsi-pci"));
	assert_true(ctl < strstr(line, "scsi-hd"));
	assert_non_null(strstr(line, "discard=unmap -device scsi-hd,"
	    "drive=disk0,id=sd0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,"
	    "werror=stop,rerror=stop"));
	assert_non_null(strstr(line, "scsi-hd,drive=disk1,id=sd1,bus=scsi0.0,"
	    "channel=0,scsi-id=1,lun=0,"));
	c.disk_bus = 7;
	assert_null(qemu_argv(&c));
}

static void
test_machine_cpu(void **state)
{
	struct qemu_config	 c = base_config();
	const char		*line;

	(void)state;
	/* Unpinned (a VM from before): pc, host under KVM, max under TCG. */
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-machine pc,accel=tcg -cpu max "));
	c.kvm = 1;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-machine pc,accel=kvm -cpu host "));
	/* Pinned: the versioned type; KVM must give the model whole. */
	c.machine = "pc-i440fx-7.2";
	c.cpu_model = "Westmere-v1";
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-machine pc-i440fx-7.2,accel=kvm "
	    "-cpu Westmere-v1,enforce "));
	c.kvm = 0;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-machine pc-i440fx-7.2,accel=tcg "
	    "-cpu Westmere-v1 "));
	c.cpu_model = "max";
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-cpu max "));
	/* host is KVM's only: under TCG, refused rather than run as max. */
	c.cpu_model = "host";
	assert_null(qemu_argv(&c));
	c.kvm = 1;
	assert_non_null(line = joined(&c));
	assert_non_null(strstr(line, "-cpu host "));
	c.cpu_model = "Westmere,+vmx";
	assert_null(qemu_argv(&c));
	c.cpu_model = "Westmere-v1";
	c.machine = "pc,accel=tcg";
	assert_null(qemu_argv(&c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_nics),
		cmocka_unit_test(test_nics),
		cmocka_unit_test(test_initrd),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_disks_ide),
		cmocka_unit_test(test_disks_virtio),
		cmocka_unit_test(test_disks_scsi),
		cmocka_unit_test(test_machine_cpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
