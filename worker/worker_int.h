/*
 * Inside haven-worker (main.c, parent.c, adopt.c, volumes.c, vm.c, move.c,
 * console.c):
 * struct worker, the one per-VM process's state, and what its files call in
 * each other. worker.h is the public header of the QMP client, the QEMU
 * command line and the sandbox.
 */
#ifndef HAVEN_WORKER_INT_H
#define HAVEN_WORKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common.h"
#include "proto.h"
#include "transfer.h"
#include "worker.h"

struct blockdev;
struct channel;
struct console;
struct ev_timer;
struct event;
struct event_base;
struct json_object;
struct nbd_server;
struct qmp;
struct volume;

#define WORKER_PARENT_FD	3
#define WORKER_MAX_VOLUMES	VM_MAX_VOLUMES	/* proto.h: one limit */
#define WORKER_LEASE_CHECK_MS	1000
#define WORKER_STOP_TIMEOUT_MS	30000
/* Storage outages (outage.c): how often the VM's requests are looked at,
 * and how old the oldest may grow before the vCPUs stop -- well inside a
 * guest's own disk timeout (30 s for Linux's ATA, 10 s for the lab's). */
#define WORKER_OUTAGE_TICK_MS		500
#define WORKER_STALL_PAUSE_MS		3000

struct worker_volume {
	struct worker		*w;
	const Haven__VolumeRef	*ref;
	struct blockdev		*dev;
	struct volume		*volume;
	struct blockdev		*vhd;
	int			 asking;	/* a RegisterRequest is unanswered */
};

/* What the worker does with QEMU besides a move (transfer.h); a move and
 * these exclude each other. */
enum worker_op {
	WORKER_OP_NONE,
	WORKER_OP_START,
	WORKER_OP_STOP,
};

/* A QMP command sent for a move: its reply goes to migrate/. */
struct worker_call {
	TAILQ_ENTRY(worker_call) entry;
	struct worker		*w;
	transfer_reply_cb	 cb;
	void			*arg;
};

struct worker {
	struct event_base	*base;
	struct channel		*parent;
	Haven__VmSpec		*spec;
	int			 serial_fd;
	int			 log_fd;
	/* The taps havend opened for the NICs, in NIC order (spec->nics);
	 * fewer than NICs: this host has not opened them, QEMU never runs. */
	int			 tap_fds[QEMU_MAX_NICS];
	size_t			 ntaps;
	struct worker_volume	 volumes[WORKER_MAX_VOLUMES];
	size_t			 nvolumes;
	size_t			 opening;	/* volume being opened */
	int			 ready;		/* volumes open, lease held */
	Haven__WorkerCommand	*queued;	/* arrived before ready */

	struct nbd_server	*nbd;
	struct blockdev		*vars;		/* UEFI's store (firmware.c) */
	int			 cdrom_fd;	/* the ISO, read-only; -1 */
	int			 qmp_listen;
	struct event		*qmp_accept;
	struct qmp		*qmp;
	struct console		*console;	/* the serial port (console.c) */
	pid_t			 qemu_pid;
	uid_t			 qemu_uid;	/* QEMU's ids (parent.c) */
	gid_t			 qemu_gid;
	Haven__VmPhase		 phase;

	enum worker_op		 op;
	int			 expect_exit;	/* we asked QEMU to quit */
	int			 kill_requested;	/* havend asked for a hard stop */
	Haven__VmPhase		 exit_phase;	/* phase to report on exit */
	int			 exit_reported;	/* said before QEMU exited */
	/* For a new havend's hello (adopt.c). */
	Haven__WorkerAction	 last_action;
	int			 live_received;
	uint64_t		 live_stopped_at_us;
	struct ev_timer		*lease_timer;
	struct ev_timer		*stop_timer;
	struct ev_timer		*exit_timer;
	/* Paused because the storage failed or stopped answering; resumed
	 * once it answers again (outage.c). Times are now_us(). */
	struct ev_timer		*outage_timer;	/* the outage tick */
	int			 io_error;	/* BLOCK_IO_ERROR since the last run */
	int			 io_paused;	/* stopped for the storage */
	uint64_t		 outage_since_us;	/* lost then */
	char			 outage_why[96];
	uint64_t		 cont_us;	/* cont sent, not yet judged */
	uint64_t		 probe_ok_us;	/* a lease read begun then answered */
	uint64_t		 lease_began_us;
	int			 lease_reading;
	int			 exiting;

	/* Moves (migrate/transfer.h), and their QMP commands in flight. */
	struct transfer		*transfer;
	TAILQ_HEAD(, worker_call) calls;
	/* The switchover: leases, then disks, one after the other. */
	size_t			 switch_next;
	transfer_done_cb	 switch_done;
	void			*switch_arg;

	/* Adoption: RUN_DIR/worker.sock, served only while no havend is
	 * attached (spec.adopt_timeout_ms > 0). */
	int			 adopt_listen;
	char			 adopt_path[256];
	struct event		*adopt_accept;
	struct ev_timer		*adopt_timer;
	uint64_t		 adopt_since;	/* ms, when havend went */
};

/* A line about this worker's VM: "vm UUID: ...". */
#define worker_log(w, level, ...)					\
	log_vm(level, (w)->spec != NULL ? (w)->spec->uuid : "", __VA_ARGS__)

/* console.c */
int		 console_socket(struct worker *);
void		 console_attach(struct worker *, struct frame *);
void		 console_free(struct worker *);

/* outage.c */
void		 worker_outage_tick(void *);
void		 worker_outage_io_error(struct worker *);
void		 worker_outage_paused(struct worker *);
void		 worker_outage_probe_ok(struct worker *, uint64_t began);

/* main.c */
int		 worker_busy(const struct worker *);
void		 worker_exit(struct worker *, int code);
void		 worker_kill_qemu(struct worker *);
void		 worker_fail(struct worker *, int error, const char *);
int		 worker_listen(const char *path);
int		 worker_take_spec(struct worker *, struct frame *);
int		 worker_nics_missing(const struct worker *, char *, size_t);

/* parent.c */
const char	*worker_phase_name(Haven__VmPhase);
void		 worker_report_ex(struct worker *, Haven__VmPhase, int,
		     const char *detail, int received, uint64_t stopped_at_us);
void		 worker_report(struct worker *, Haven__VmPhase, int error,
		     const char *detail);
void		 worker_command(struct worker *, Haven__WorkerCommand *);
void		 worker_parent_cb(struct channel *, struct frame *, int err,
		     void *);

/* adopt.c */
int		 worker_adopt_listen(struct worker *);
int		 worker_adopt_possible(const struct worker *);
void		 worker_adopt_wait(struct worker *);
void		 worker_adopt_timeout(void *);
void		 worker_adopt_refuse_asked(struct worker *);

/* volumes.c */
void		 worker_open_next(struct worker *);
void		 worker_lease_timer(void *);
void		 worker_open_vhds(struct worker *);
void		 worker_switch_volumes(struct worker *, transfer_done_cb,
		     void *);

/* vm.c */
int		 worker_spawn(struct worker *, int incoming);
/* firmware.c */
void		 worker_firmware_open(struct worker *);
void		 worker_reply_ignore(struct qmp *, struct json_object *,
		     const char *, const char *, void *);
void		 worker_stop_timeout(void *);
void		 worker_sigchld(int, void *);

/* move.c */
extern const struct transfer_ops worker_transfer_ops;
void		 worker_calls_free(struct worker *);

#endif
