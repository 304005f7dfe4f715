/*
 * migrate/transfer.h: the worker's side of a VM's moves (DESIGN §6): a
 * quick save or restore through the volume's state extent (quick.c, on the
 * pipelines of state.c) and a live migration between two workers (live.c).
 * migrate/ sees neither the worker nor its QMP client: the worker hands in a
 * transfer_ops table and feeds QEMU's readiness and events back in.
 */
#ifndef HAVEN_TRANSFER_H
#define HAVEN_TRANSFER_H

#include <stdint.h>

#include "proto.h"

struct blockdev;
struct event_base;
struct json_object;

/* A worker makes at most one move at a time. */
enum transfer_kind {
	TRANSFER_NONE,
	TRANSFER_SAVE,		/* quick: QEMU's state onto the volume */
	TRANSFER_RESTORE,	/* quick: from the volume into a new QEMU */
	TRANSFER_INCOMING,	/* live, the target: receiving */
	TRANSFER_LIVE,		/* live, the source: sending */
	TRANSFER_SWITCH,	/* live, the target takes over */
};

/* A QMP reply: result (valid during the call), or NULL with QMP's error
 * class and description ("Disconnected" if QEMU went away first). */
typedef void (*transfer_reply_cb)(struct json_object *result,
    const char *error_class, const char *error_desc, void *arg);
/* 0, or an error and what failed. */
typedef void (*transfer_done_cb)(int result, const char *what, void *arg);

/*
 * What the worker does for a move; each gets the arg of transfer_new. They
 * are called from transfer_* calls and from the event loop.
 */
struct transfer_ops {
	/* Send a QMP command; it takes arguments (may be NULL). With fd >= 0
	 * a dup of fd travels with the command (SCM_RIGHTS); the caller
	 * keeps fd. A NULL reply only logs an error. Unless -1 is returned,
	 * reply runs exactly once. */
	int	(*qmp)(void *arg, const char *execute,
		    struct json_object *arguments, int fd, transfer_reply_cb,
		    void *reply_arg);
	/* Tell havend a phase, an error (0 none; storage, migrate or
	 * -errno) and a detail. received: the live target has the whole
	 * stream; stopped_at_us: the live source stopped the vCPUs (0:
	 * neither). The worker adds the move's figures: transfer_fill. */
	void	(*report)(void *arg, Haven__VmPhase, int error,
		    const char *detail, int received, uint64_t stopped_at_us);
	/* For good: QEMU killed, FAILED reported, the worker exits. */
	void	(*fail)(void *arg, int error, const char *detail);
	/* Open the disks and start QEMU waiting for a stream (-incoming
	 * defer, and -S for a live target); transfer_qemu_ready follows once
	 * QEMU answers QMP, or the worker fails. */
	void	(*start_qemu)(void *arg);
	/* Ask QEMU to quit; its exit is reported as phase. */
	void	(*quit)(void *arg, Haven__VmPhase phase);
	/* The switchover: claim each volume's lease at the VM's generation,
	 * read each disk image again and serve it in place of the old one;
	 * then done once. */
	void	(*take_over)(void *arg, transfer_done_cb, void *done_arg);
	/* The VM runs here under its lease now: re-read it from now on. */
	void	(*watch_lease)(void *arg);
	/* The move is over, either way: QEMU takes the worker's commands
	 * again, also after a stop that came in meanwhile. */
	void	(*idle)(void *arg);
};

/* The VM whose state moves; its strings outlive the transfer. */
struct transfer_vm {
	const char	*uuid;
	uint64_t	 generation;
	uint64_t	 config_hash;
	uint64_t	 memory_mib;
	struct blockdev	*state;		/* the state extent */
	size_t		 nics;		/* announced where it resumes */
};

/* transfer.c */
struct transfer;
struct transfer	*transfer_new(struct event_base *,
		     const struct transfer_ops *, void *arg);
/* Once the volumes are open, before any move. */
void		 transfer_set_vm(struct transfer *,
		     const struct transfer_vm *);
/* Closes the live sockets; a save or restore pipeline is left to exit. */
void		 transfer_free(struct transfer *);
enum transfer_kind transfer_kind(const struct transfer *);
/* The move's figures in an event for havend: state bytes and duration, the
 * live target's endpoint and token, progress, a stalled switchover. */
void		 transfer_fill(struct transfer *, Haven__WorkerEvent *);
/* QEMU answers QMP: 1 if it was started for a move (restore, live target)
 * and the move goes on, else 0. */
int		 transfer_qemu_ready(struct transfer *);
/* A QMP event: 1 if the move took it, 0 if it is the worker's. */
int		 transfer_event(struct transfer *, const char *name,
		     struct json_object *data);
/* The VM is being stopped: the move is no longer followed (its timers and
 * QEMU's events do nothing); what is in flight ends by itself, and idle
 * still comes when it does. */
void		 transfer_abandon(struct transfer *);

/* quick.c: the VM's state through the volume's state extent. */
/* Stop the vCPUs and stream QEMU's state onto the extent; QEMU quits once
 * it is durable (SAVED). A failure resumes the VM here (RUNNING). */
void		 quick_save(struct transfer *);
/* Check the header of the state saved at generation, start QEMU
 * (start_qemu), feed it the stream and run the vCPUs; then the state is
 * marked consumed. */
void		 quick_restore(struct transfer *, uint64_t generation);

/* live.c: live migration, QEMU's pre-copy between two workers. */
/* The target: listen on the command's address (endpoint) for a sender
 * with its token, and receive (over TLS with its key). */
void		 live_incoming(struct transfer *, const Haven__WorkerCommand *);
/* The target's listener, bound before the seccomp filter (no bind after
 * it): 0, or -1 with errno. */
int		 live_listen(struct transfer *);
/* The source: connect to the command's endpoint and send (over TLS with
 * its key). */
void		 live_send(struct transfer *, const Haven__WorkerCommand *);
/* live_tls.c: before the seccomp filter, for every VM (any may become a
 * live source): keys.psk, empty and held open, and dh-params.pem in the
 * run directory. 0, or -1 with errno. */
int		 live_tls_prepare(struct transfer *, const char *run_dir);
/* The target, handed the VM: the lease, the disks again, the vCPUs. */
void		 live_switch(struct transfer *);
/* The source: the cluster called the move off; the VM runs here. */
void		 live_resume(struct transfer *);

#endif
