/*
 * Inside the worker's side of a move (transfer.c, quick.c, live.c): the
 * state of the move and the helpers the three share. The worker uses
 * transfer.h only.
 */
#ifndef HAVEN_TRANSFER_INT_H
#define HAVEN_TRANSFER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "migrate.h"
#include "transfer.h"

struct event;
struct ev_timer;
struct state_restore;
struct state_save;

#define TRANSFER_STATE_FD_NAME	"haven-state"
#define TRANSFER_LIVE_FD_NAME	"haven-live"
#define QUICK_POLL_MS		500	/* a save's or restore's progress */
#define LIVE_TOKEN		32	/* hex digits */
#define LIVE_POLL_MS		1000	/* progress, and the converge budget */
/* The source: from the last pass's go to the handover (or QEMU's end). */
#define LIVE_SWITCH_MS		10000
/* A stream that sends nothing this long is dead (a cut link, a frozen
 * target): call it off without waiting out the converge budget. */
#define LIVE_STALL_MS		10000
/* The source's connect to the target (a target gone dark drops the SYN:
 * the kernel alone would wait minutes), and a sender's token at the
 * target: both come within milliseconds on a migration network. */
#define LIVE_CONNECT_MS		10000
#define LIVE_TOKEN_MS		5000

/* The target: a connection that has not shown the token yet. A few at
 * once, so a stranger on the migration network who connects and says
 * nothing cannot keep the real sender out. */
#define LIVE_SENDERS		4
struct live_sender {
	struct transfer		*t;
	int			 fd;
	struct event		*ev;
	char			 got[LIVE_TOKEN];
	size_t			 n;
	uint64_t		 since_us;
};

/* A live migration, either side. The target listens on listen_fd (bound
 * before the seccomp filter) and accepts one sender that presents the
 * token; the source connects to the target's endpoint. */
struct live {
	char			 endpoint[80];
	char			 token[LIVE_TOKEN + 1];
	int			 listen_fd;
	struct event		*accept;
	int			 fd;		/* the source: connecting */
	struct event		*io;
	struct live_sender	 senders[LIVE_SENDERS];
	struct ev_timer		*switch_timer;
	uint64_t		 start_us;
	uint32_t		 converge_ms;
	uint32_t		 downtime_ms;
	uint64_t		 bandwidth;
	int			 completed;
	int			 stopped;
	int			 switch_stalled;
	char			 why[200];	/* why it was cancelled */
	uint64_t		 sent;		/* ram.transferred, last seen */
	uint64_t		 sent_us;	/* when it last grew */
	/* TLS (live_tls.c): the move's key until it is in keys.psk, held
	 * open (tls_fd) since before the seccomp filter. */
	char			 tls_dir[256];	/* the run directory */
	int			 tls_fd;
	uint8_t			 key[LIVE_KEY_SIZE];
	int			 keyed;		/* key holds this move's */
	int			 tls_written;	/* keys.psk holds it */
	int			 tls_server;	/* the target's credentials */
	int			 tls_object;	/* QEMU has the object */
};

struct transfer {
	struct event_base		*base;
	const struct transfer_ops	*ops;
	void				*arg;
	struct transfer_vm		 vm;

	enum transfer_kind		 kind;
	uint64_t			 start_us;
	uint64_t			 start_cpu_us;	/* the worker's CPU, at start */
	struct ev_timer			*progress_timer;
	uint64_t			 remaining;	/* progress: live, save, */
	uint64_t			 total;		/* restore */

	/* Quick save and restore. */
	uint64_t			 state_generation;
	struct state_save		*save;
	struct state_restore		*restore;
	int				 stream_done;	/* our side */
	int				 migration_done; /* QEMU's side */
	uint64_t			 stream_bytes;
	uint64_t			 restore_length; /* from its header */
	int				 restore_fd;	/* the pipe's end for QEMU */

	struct live			 live;
};

/* transfer.c */
int		 transfer_qmp(struct transfer *, const char *execute,
		     struct json_object *arguments, int fd, transfer_reply_cb,
		     void *);
void		 transfer_end(struct transfer *);
void		 transfer_report(struct transfer *, Haven__VmPhase, int,
		     const char *detail);
void		 transfer_migration_events(struct transfer *);
void		 transfer_hand_fd(struct transfer *, int fd, const char *);
void		 transfer_migrate_fd(struct transfer *, const char *command,
		     const char *name, transfer_reply_cb refused);
void		 transfer_announce(struct transfer *);

/* quick.c */
void		 quick_restore_begin(struct transfer *);
int		 quick_event(struct transfer *, const char *,
		     struct json_object *);
void		 quick_progress(struct transfer *);

/* live.c */
void		 live_init(struct transfer *);
void		 live_close_all(struct transfer *);
void		 live_incoming_ready(struct transfer *);
void		 live_event(struct transfer *, const char *,
		     struct json_object *);
void		 live_progress(struct transfer *);
void		 live_switch_timeout(void *);

/* live_tls.c */
int		 live_tls_key(struct transfer *, const Haven__WorkerCommand *);
int		 live_tls_begin(struct transfer *, int server);
void		 live_tls_forget(struct transfer *);
void		 live_tls_end(struct transfer *);
void		 live_tls_close(struct transfer *);

#endif
