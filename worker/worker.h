/*
 * worker/: haven-worker, one per VM (DESIGN §2). This header: the QMP
 * client, the QEMU command line and the privilege drop, which tests use on
 * their own; the process's files (main.c, parent.c, ...) share
 * worker_int.h. It links no corosync and no configuration parser: havend
 * hands it everything it needs over the channel (worker.proto).
 */
#ifndef HAVEN_WORKER_H
#define HAVEN_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct json_object;

/* qmp.c: a QMP client on the event loop. */
struct qmp;
/* A command's reply: result on success (owned by the QMP client, valid
 * during the call), else NULL with QMP's error class and description, or
 * class "Disconnected" if QEMU went away first. */
typedef void (*qmp_reply_cb)(struct qmp *, struct json_object *result,
    const char *error_class, const char *error_desc, void *arg);
struct qmp_callbacks {
	/* Greeting read and qmp_capabilities accepted (ok = 1), or the
	 * connection failed first (ok = 0, closed() follows). Called once. */
	void	(*ready)(struct qmp *, int ok, void *arg);
	/* An asynchronous event: "STOP", "RESUME", "SHUTDOWN", "MIGRATION"...
	 * data is NULL when QEMU sends none. */
	void	(*event)(struct qmp *, const char *name,
		    struct json_object *data, void *arg);
	/* The connection closed: err 0 for EOF, else an errno value (EPROTO
	 * for garbage). Every unanswered command got "Disconnected" first. */
	void	(*closed)(struct qmp *, int err, void *arg);
};
/* Owns fd (a connected socket) from then on; qmp_free closes it. Any
 * callback may call qmp_free. */
struct qmp	*qmp_new(struct event_base *, int fd,
		     const struct qmp_callbacks *, void *arg);
/* Takes ownership of arguments (may be NULL). Queued until ready. With
 * fd >= 0 a dup of fd goes in the same sendmsg as the command's first byte
 * (SCM_RIGHTS), as getfd and add-fd need; the caller keeps fd. -1 with
 * EPIPE once closed. */
int		 qmp_command(struct qmp *, const char *execute,
		     struct json_object *arguments, int fd, qmp_reply_cb,
		     void *arg);
/* Frees everything, closes the socket; no callbacks run. */
void		 qmp_free(struct qmp *);

/* qemu.c: the QEMU command line and its spawn. */
/* A guest NIC: a tap havend opened on the NIC's bridge and VLAN, which the
 * worker holds (tap_fd) and QEMU inherits as QEMU_TAP_FD(i). */
#define QEMU_MAX_NICS		8
#define QEMU_TAP_FD(i)		(4 + (int)(i))	/* after the serial log, 3 */
#define QEMU_CDROM_FD		QEMU_TAP_FD(QEMU_MAX_NICS)
/* QEMU's end of the worker's serial socket pair (console.c), after the
 * cdrom's number. */
#define QEMU_CONSOLE_FD		(QEMU_CDROM_FD + 1)
struct qemu_nic {
	const char	*mac;		/* "0a:1b:2c:3d:4e:5f" */
	int		 e1000;		/* else virtio-net-pci */
	int		 tap_fd;
};
struct qemu_config {
	const char	*binary;	/* NULL: qemu-system-x86_64 */
	const char	*name;
	const char	*uuid;
	uint64_t	 memory_mib;
	uint32_t	 vcpus;
	int		 kvm;
	const char	*qmp_path;	/* the worker listens, QEMU connects */
	const char	*nbd_path;	/* exports disk0, disk1, ... */
	size_t		 ndisks;
	int		 serial_fd;
	int		 log_fd;
	/* The serial port on console_fd (a socket, the log beside it) and
	 * VNC for add_client; 0: the port writes only the log. */
	int		 console;
	int		 console_fd;
	const char	*kernel;	/* optional -kernel, -append, -initrd */
	const char	*append;
	const char	*initrd;
	/* UEFI: OVMF's code (read-only, by path: a host file anyone may
	 * read) and its variable store, the NBD export "vars"; NULL: BIOS. */
	const char	*firmware_code;
	/* The cdrom's ISO, read-only, inherited at QEMU_CDROM_FD (-add-fd);
	 * on the last IDE slot (ide.1 unit 1). */
	int		 cdrom;
	int		 cdrom_fd;
	/* bootindex of disk0 and of the cdrom; 0: none (QEMU's order). */
	int		 disk_bootindex;
	int		 cdrom_bootindex;
	const struct qemu_nic *nics;	/* in the guest's order */
	size_t		 nnics;
	int		 incoming;	/* -incoming defer (restore) */
	int		 paused;	/* -S: vCPUs wait for cont */
	/* The machine (issue 16): the disks' bus (a Haven__DiskBus; 0 is
	 * IDE), the versioned machine type (NULL or "": pc), the CPU model
	 * (NULL or "": host under KVM, max under TCG). */
	int		 disk_bus;
	const char	*machine;
	const char	*cpu_model;
	/* QEMU's ids, and the worker's (qemu_spawn switches when they
	 * differ: sandbox_drop_qemu kept QEMU's as the saved ones). */
	uid_t		 uid;
	gid_t		 gid;
	uid_t		 worker_uid;
	gid_t		 worker_gid;
};
char		**qemu_argv(const struct qemu_config *);
void		 qemu_argv_free(char **);
pid_t		 qemu_spawn(const struct qemu_config *);

/* sandbox.c: dropping privileges (vmd's order). */
int		 sandbox_drop(uid_t, gid_t);
int		 sandbox_drop_qemu(uid_t, gid_t, uid_t qemu_uid, gid_t qemu_gid);
int		 sandbox_qemu_child(uid_t qemu_uid, gid_t qemu_gid);
int		 sandbox_qemu_spawned(uid_t, gid_t, uid_t qemu_uid);
int		 sandbox_seccomp_worker(pid_t qemu);
int		 sandbox_no_new_privs(void);

#endif
