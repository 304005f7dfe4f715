/*
 * QEMU for one VM: the command line built from the VM's spec, and the
 * spawn. QEMU runs already unprivileged, under a uid and gid of its own
 * that its child takes before exec (sandbox.c; -runas dies under the
 * sandbox in QEMU 7.2), under QEMU's own seccomp sandbox, and never opens
 * the disk, the LUN, a tap or an ISO itself: it sees the worker's NBD
 * exports (the disks, on the VM's bus: IDE, virtio-blk or virtio-scsi;
 * UEFI's variable store) over a socket only its group may reach, and
 * inherits the tap of each NIC that havend opened and the cdrom's ISO that
 * the worker opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "worker.h"
#include "common.h"
#include "proto.h"

/* The serial log's descriptor number inside QEMU (passed with -add-fd). */
#define QEMU_SERIAL_FD	3

struct qemu_argv {
	char	**v;
	size_t	  n;
	size_t	  size;
};

static void
qemu_argv_add(struct qemu_argv *a, const char *fmt, ...)
{
	va_list	ap;
	char	*s;

	if (a->n + 2 > a->size) {
		a->size = a->size ? a->size * 2 : 32;
		if ((a->v = realloc(a->v, a->size * sizeof *a->v)) == NULL)
			abort();
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* Appends ",bootindex=N" to the last argument (a -device). */
static void
qemu_argv_bootindex(struct qemu_argv *a, int index)
{
	char	*s;

	if (asprintf(&s, "%s,bootindex=%d", a->v[a->n - 1], index) == -1)
		abort();
	free(a->v[a->n - 1]);
	a->v[a->n - 1] = s;
}

void
qemu_argv_free(char **argv)
{
	char	**p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/* Names and paths go inside QEMU's comma-separated options. */
static int
qemu_safe(const char *s)
{
	return s != NULL && strpbrk(s, ",\n=") == NULL;
}

/* Every NIC with its tap and a usable MAC; at most QEMU_MAX_NICS. */
static int
qemu_nics_valid(const struct qemu_config *c)
{
	uint8_t	 mac[NET_MAC_BYTES];
	size_t	 i;

	if (c->nnics > QEMU_MAX_NICS)
		return 0;
	for (i = 0; i < c->nnics; i++)
		if (c->nics[i].tap_fd < 0 ||
		    net_mac_parse(c->nics[i].mac, mac) == -1 ||
		    net_mac_problem(mac) != NULL)
			return 0;
	return 1;
}

/* The -cpu value: the model, which KVM must give whole (enforce: a host CPU
 * short of a feature refuses to start rather than run a VM that could not
 * move back); TCG warns of a feature it lacks and runs on. */
static int
qemu_cpu(struct qemu_argv *a, const struct qemu_config *c)
{
	const char	*m = c->cpu_model;

	if (m == NULL || *m == '\0') {
		qemu_argv_add(a, "%s", c->kvm ? "host" : "max");
		return 0;
	}
	if (!qemu_safe(m) || (strcmp(m, "host") == 0 && !c->kvm))
		return -1;
	if (c->kvm && strcmp(m, "host") != 0 && strcmp(m, "max") != 0)
		qemu_argv_add(a, "%s,enforce", m);
	else
		qemu_argv_add(a, "%s", m);
	return 0;
}

/*
 * Disks: the worker's NBD exports, disk i as export disk<i>, on the VM's
 * bus; a refused write (fenced) stops the VM instead of failing the guest's
 * I/O. The guest's discards reach the NBD server (discard=unmap), which
 * takes them as the hint TRIM is; a flush goes through as before.
 */
static void
qemu_disks(struct qemu_argv *a, const struct qemu_config *c)
{
	size_t	 i;

	if (c->disk_bus == HAVEN__DISK_BUS__DISK_BUS_SCSI && c->ndisks > 0) {
		qemu_argv_add(a, "-device");
		qemu_argv_add(a, "virtio-scsi-pci,id=scsi0");
	}
	for (i = 0; i < c->ndisks; i++) {
		qemu_argv_add(a, "-blockdev");
		qemu_argv_add(a, "driver=nbd,node-name=disk%zu,"
		    "server.type=unix,server.path=%s,export=disk%zu,"
		    "cache.direct=off,discard=unmap", i, c->nbd_path, i);
		qemu_argv_add(a, "-device");
		switch (c->disk_bus) {
		case HAVEN__DISK_BUS__DISK_BUS_VIRTIO:
			qemu_argv_add(a, "virtio-blk-pci,drive=disk%zu,"
			    "id=vd%zu,discard=on,werror=stop,rerror=stop", i,
			    i);
			break;
		case HAVEN__DISK_BUS__DISK_BUS_SCSI:
			qemu_argv_add(a, "scsi-hd,drive=disk%zu,id=sd%zu,"
			    "bus=scsi0.0,channel=0,scsi-id=%zu,lun=0,"
			    "werror=stop,rerror=stop", i, i, i);
			break;
		default:
			qemu_argv_add(a, "ide-hd,drive=disk%zu,bus=ide.%zu,"
			    "unit=%zu,werror=stop,rerror=stop", i, i / 2,
			    i % 2);
			break;
		}
		if (i == 0 && c->disk_bootindex > 0)
			qemu_argv_bootindex(a, c->disk_bootindex);
	}
}

/* The command line, NULL-terminated; free with qemu_argv_free(). */
char **
qemu_argv(const struct qemu_config *c)
{
	struct qemu_argv	a = { NULL, 0, 0 };
	size_t			i;

	if (!qemu_safe(c->qmp_path) || !qemu_safe(c->nbd_path) ||
	    (c->kernel != NULL && !qemu_safe(c->kernel)) ||
	    (c->initrd != NULL && *c->initrd != '\0' &&
	    (!qemu_safe(c->initrd) || c->kernel == NULL ||
	    *c->kernel == '\0')) ||
	    (c->name != NULL && strpbrk(c->name, ",\n") != NULL) ||
	    !qemu_nics_valid(c) ||
	    (c->machine != NULL && *c->machine != '\0' &&
	    !qemu_safe(c->machine)) ||
	    machine_volumes_check("", c->ndisks, c->disk_bus, NULL, 0) == -1 ||
	    (c->firmware_code != NULL && !qemu_safe(c->firmware_code)) ||
	    (c->cdrom && (c->cdrom_fd < 0 || (machine_disk_bus_ide(c->disk_bus) &&
	    c->ndisks > 3)))) {
		errno = EINVAL;
		return NULL;
	}
	qemu_argv_add(&a, "%s", c->binary ? c->binary : "qemu-system-x86_64");
	qemu_argv_add(&a, "-nodefaults");
	qemu_argv_add(&a, "-no-user-config");
	qemu_argv_add(&a, "-name");
	qemu_argv_add(&a, "guest=%s,debug-threads=on", c->name);
	qemu_argv_add(&a, "-uuid");
	qemu_argv_add(&a, "%s", c->uuid);
	qemu_argv_add(&a, "-machine");
	/* UEFI: OVMF's code and the VM's variable store as the two
	 * pflash chips (the store is on its volume: it moves with it). */
	qemu_argv_add(&a, "%s,accel=%s%s", c->machine != NULL &&
	    *c->machine != '\0' ? c->machine : "pc", c->kvm ? "kvm" : "tcg",
	    c->firmware_code != NULL ? ",pflash0=fwcode,pflash1=fwvars" : "");
	qemu_argv_add(&a, "-cpu");
	if (qemu_cpu(&a, c) == -1) {
		qemu_argv_free(a.v);
		errno = EINVAL;
		return NULL;
	}
	qemu_argv_add(&a, "-m");
	qemu_argv_add(&a, "%" PRIu64, c->memory_mib);
	qemu_argv_add(&a, "-smp");
	qemu_argv_add(&a, "%u", c->vcpus ? c->vcpus : 1);
	qemu_argv_add(&a, "-display");
	qemu_argv_add(&a, "none");
	qemu_argv_add(&a, "-sandbox");
	qemu_argv_add(&a, "on,obsolete=deny,elevateprivileges=deny,"
	    "spawn=deny,resourcecontrol=deny");
	/* QMP: QEMU connects to the worker's listening socket. */
	qemu_argv_add(&a, "-chardev");
	qemu_argv_add(&a, "socket,id=qmp,path=%s,server=off", c->qmp_path);
	qemu_argv_add(&a, "-mon");
	qemu_argv_add(&a, "chardev=qmp,mode=control");
	/* Serial: the log the worker holds, passed as an fd set; with a
	 * console, the port is the worker's socket pair (console.c) and QEMU
	 * writes the log beside it. VNC: no listener at all, the worker hands
	 * each viewer's socket over QMP (add_client). */
	qemu_argv_add(&a, "-add-fd");
	qemu_argv_add(&a, "fd=%d,set=1", QEMU_SERIAL_FD);
	qemu_argv_add(&a, "-chardev");
	if (c->console)
		qemu_argv_add(&a, "socket,id=serial0,fd=%d,"
		    "logfile=/dev/fdset/1,logappend=on", QEMU_CONSOLE_FD);
	else
		qemu_argv_add(&a, "file,id=serial0,path=/dev/fdset/1,"
		    "append=on");
	qemu_argv_add(&a, "-serial");
	qemu_argv_add(&a, "chardev:serial0");
	if (c->console) {
		qemu_argv_add(&a, "-vnc");
		qemu_argv_add(&a, "none");
	}
	qemu_disks(&a, c);
	if (c->firmware_code != NULL) {
		qemu_argv_add(&a, "-blockdev");
		qemu_argv_add(&a, "driver=file,node-name=fwcode,filename=%s,"
		    "read-only=on", c->firmware_code);
		qemu_argv_add(&a, "-blockdev");
		qemu_argv_add(&a, "driver=nbd,node-name=fwvars,"
		    "server.type=unix,server.path=%s,export=vars,"
		    "cache.direct=off", c->nbd_path);
	}
	/* The cdrom: the ISO the worker opened, never a path of QEMU's. On
	 * IDE, after the disks (with IDE disks: at most 3 of them). */
	if (c->cdrom) {
		qemu_argv_add(&a, "-add-fd");
		qemu_argv_add(&a, "fd=%d,set=2", QEMU_CDROM_FD);
		qemu_argv_add(&a, "-blockdev");
		qemu_argv_add(&a, "driver=file,node-name=cdrom,"
		    "filename=/dev/fdset/2,read-only=on");
		qemu_argv_add(&a, "-device");
		qemu_argv_add(&a, "ide-cd,drive=cdrom,bus=ide.1,unit=1");
		if (c->cdrom_bootindex > 0)
			qemu_argv_bootindex(&a, c->cdrom_bootindex);
	}
	/* NICs: each on the tap the worker holds, at a fixed number in
	 * QEMU (qemu_spawn puts it there), with the configured MAC. */
	for (i = 0; i < c->nnics; i++) {
		qemu_argv_add(&a, "-netdev");
		qemu_argv_add(&a, "tap,id=net%zu,fd=%d", i, QEMU_TAP_FD(i));
		qemu_argv_add(&a, "-device");
		qemu_argv_add(&a, "%s,id=nic%zu,netdev=net%zu,mac=%s",
		    c->nics[i].e1000 ? "e1000" : "virtio-net-pci", i, i,
		    c->nics[i].mac);
	}
	if (c->kernel != NULL && *c->kernel != '\0') {
		qemu_argv_add(&a, "-kernel");
		qemu_argv_add(&a, "%s", c->kernel);
		if (c->append != NULL && *c->append != '\0') {
			qemu_argv_add(&a, "-append");
			qemu_argv_add(&a, "%s", c->append);
		}
		if (c->initrd != NULL && *c->initrd != '\0') {
			qemu_argv_add(&a, "-initrd");
			qemu_argv_add(&a, "%s", c->initrd);
		}
	}
	if (c->incoming) {
		qemu_argv_add(&a, "-incoming");
		qemu_argv_add(&a, "defer");
	}
	if (c->paused)
		qemu_argv_add(&a, "-S");
	return a.v;
}

/*
 * Start QEMU as a child of this (already unprivileged) process: stdin
 * /dev/null, stdout and stderr to QEMU's log, the serial log at fd 3, NIC
 * i's tap at QEMU_TAP_FD(i), the cdrom at QEMU_CDROM_FD, the console's
 * socket at QEMU_CONSOLE_FD, nothing else inherited, under QEMU's uid and
 * gid when they are not the worker's. The child waits for the worker to
 * have given up QEMU's ids (sandbox_qemu_spawned) before it execs: until
 * then QEMU could signal the worker. Returns its pid, or -1.
 */
pid_t
qemu_spawn(const struct qemu_config *c)
{
	char	**argv;
	pid_t	  pid;
	int	  devnull, taps[QEMU_MAX_NICS], go[2] = { -1, -1 };
	int	  cdrom = -1, console = -1;
	int	  own = c->uid != 0 && c->uid != c->worker_uid;
	size_t	  i;
	char	  byte;

	if ((argv = qemu_argv(c)) == NULL)
		return -1;
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		qemu_argv_free(argv);
		return -1;
	}
	if (own && pipe2(go, O_CLOEXEC) == -1) {
		close(devnull);
		qemu_argv_free(argv);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		/* The child: only async-signal-safe calls until exec. QEMU's
		 * ids first, then the go (no number below is clobbered). */
		if (own) {
			close(go[1]);
			if (sandbox_qemu_child(c->uid, c->gid) == -1 ||
			    read(go[0], &byte, 1) != 1)
				_exit(127);
		}
		if (dup2(devnull, 0) == -1 || dup2(c->log_fd, 1) == -1 ||
		    dup2(c->log_fd, 2) == -1 ||
		    dup2(c->serial_fd, QEMU_SERIAL_FD) == -1)
			_exit(127);
		/* The cdrom above every target too, placed last. */
		if (c->cdrom && (cdrom = fcntl(c->cdrom_fd, F_DUPFD_CLOEXEC,
		    QEMU_CONSOLE_FD + 1)) == -1)
			_exit(127);
		/* Above every target first, so that placing one tap never
		 * closes another that happens to sit at its number. */
		for (i = 0; i < c->nnics; i++)
			if ((taps[i] = fcntl(c->nics[i].tap_fd, F_DUPFD_CLOEXEC,
			    QEMU_CONSOLE_FD + 1)) == -1)
				_exit(127);
		if (c->console && (console = fcntl(c->console_fd,
		    F_DUPFD_CLOEXEC, QEMU_CONSOLE_FD + 1)) == -1)
			_exit(127);
		for (i = 0; i < c->nnics; i++)
			if (dup2(taps[i], QEMU_TAP_FD(i)) == -1)
				_exit(127);
		if (c->cdrom && dup2(cdrom, QEMU_CDROM_FD) == -1)
			_exit(127);
		if (c->console && dup2(console, QEMU_CONSOLE_FD) == -1)
			_exit(127);
		if (QEMU_TAP_FD(c->nnics) < QEMU_CDROM_FD)
			close_range(QEMU_TAP_FD(c->nnics), QEMU_CDROM_FD - 1,
			    0);
		if (!c->cdrom)
			close(QEMU_CDROM_FD);
		if (!c->console)
			close(QEMU_CONSOLE_FD);
		close_range(QEMU_CONSOLE_FD + 1, ~0U, 0);
		/* The worker dies: QEMU must not outlive it. After the ids:
		 * a change of ids clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(devnull);
	qemu_argv_free(argv);
	if (!own)
		return pid;
	close(go[0]);
	if (pid == -1 || sandbox_qemu_spawned(c->worker_uid, c->worker_gid,
	    c->uid) == -1 || write(go[1], "g", 1) != 1) {
		/* No go: the child exits by itself (reaped on SIGCHLD). */
		close(go[1]);
		return -1;
	}
	close(go[1]);
	return pid;
}
