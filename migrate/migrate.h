/*
 * migrate/: a VM's state between QEMU and its volume's state extent
 * (DESIGN §3, §6): the state header, and the save and restore pipelines
 * that stream QEMU's migration stream through a pipe to and from the LUN.
 */
#ifndef HAVEN_MIGRATE_H
#define HAVEN_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct blockdev;

/*
 * Errors (negative, beyond storage's range; storage errors and -errno pass
 * through). migrate_strerror() gives the operator's sentence.
 */
#define MIGRATE_ERROR_BASE	8192
enum migrate_error {
	MIGRATE_E_NO_STATE = -(MIGRATE_ERROR_BASE + 1),	/* no header */
	MIGRATE_E_WRONG_VM = -(MIGRATE_ERROR_BASE + 2),
	MIGRATE_E_GENERATION = -(MIGRATE_ERROR_BASE + 3),
	MIGRATE_E_INCOMPLETE = -(MIGRATE_ERROR_BASE + 4),
	MIGRATE_E_SIZE = -(MIGRATE_ERROR_BASE + 5),	/* bad length */
	MIGRATE_E_CHECKSUM = -(MIGRATE_ERROR_BASE + 6),
	MIGRATE_E_CONFIG = -(MIGRATE_ERROR_BASE + 7),	/* config hash */
	MIGRATE_E_CONSUMED = -(MIGRATE_ERROR_BASE + 8),	/* already used */
	MIGRATE_E_TOO_BIG = -(MIGRATE_ERROR_BASE + 9),	/* extent full */
	MIGRATE_E_HEADER = -(MIGRATE_ERROR_BASE + 10),	/* header corrupt */
	MIGRATE_E_VERSION = -(MIGRATE_ERROR_BASE + 11),	/* unknown version */
};

/* migrate.c */
const char	*migrate_strerror(int);

/*
 * live_key.c: a live migration's TLS pre-shared key, which each havend
 * derives from the cluster's secret (secret_file_hash of [storage]
 * key_secret_file) and the move's public identity: the VM's UUID, its
 * generation before the move and the target's one-time token.
 */
#define LIVE_KEY_SIZE		32
#define LIVE_KEY_TOKEN		32	/* hex digits */
int		 live_key_load(const char *path, char *err, size_t errlen);
int		 live_key_installed(void);
/* -1: ENOKEY without the secret, EINVAL for a malformed token. */
int		 live_key_derive(const char *vm_uuid, uint64_t generation,
		     const char *token, uint8_t key[LIVE_KEY_SIZE]);
/* The derivation itself, for tests. */
void		 live_key_compute(const uint8_t secret[32],
		     const char *vm_uuid, uint64_t generation,
		     const char *token, uint8_t key[LIVE_KEY_SIZE]);

/*
 * state.c
 *
 * The state extent holds one STATE_HEADER_SIZE header at offset 0 and
 * QEMU's stream from STATE_HEADER_SIZE on (the last block zero-padded).
 * Header, little-endian; every byte not listed is zero:
 *
 *	  0  8  magic "HVNSTATE"
 *	  8  4  version (1)
 *	 12  4  flags (STATE_FLAG_*)
 *	 16 40  VM UUID: 36 characters 8-4-4-4-12 hex, then 4 NULs
 *	 56  8  generation
 *	 64  8  config hash
 *	 72  8  stream length in bytes
 *	 80  8  saved at, microseconds since the epoch
 *	 88  4  CRC-32 (zlib's and gzip's) of the stream bytes (not the padding)
 *	 92  4  CRC-32 of all 4096 header bytes with this field zero
 *
 * A zeroed extent has no magic: MIGRATE_E_NO_STATE.
 */
#define STATE_HEADER_SIZE	4096	/* the stream starts after it */
#define STATE_FLAG_COMPLETE	0x1	/* stream and header durable */
#define STATE_FLAG_CONSUMED	0x2	/* restored once, never again */
struct state_header {
	char		 vm_uuid[37];
	uint64_t	 generation;
	uint64_t	 config_hash;
	uint64_t	 length;	/* bytes of stream */
	uint32_t	 checksum;	/* CRC-32 of the stream */
	uint32_t	 flags;
	uint64_t	 saved_at_us;	/* CLOCK_REALTIME */
};
/* What a restore expects the state to be. */
struct state_expect {
	const char	*vm_uuid;
	uint64_t	 generation;
	uint64_t	 config_hash;
};
/* The header is a copy valid during the call only; NULL when none could
 * be decoded. */
typedef void (*state_done_cb)(int result, const struct state_header *,
    void *arg);
typedef void (*state_progress_cb)(uint64_t bytes, void *arg);

/* Encode into / decode from a STATE_HEADER_SIZE block. Decode trusts
 * nothing: MIGRATE_E_NO_STATE (no magic), MIGRATE_E_VERSION,
 * MIGRATE_E_HEADER (checksum or a field out of range), MIGRATE_E_SIZE
 * (stream longer than an extent of extent_size bytes can hold). */
void		 state_header_encode(const struct state_header *,
		     uint8_t *block);
int		 state_header_decode(const uint8_t *block, uint64_t extent_size,
		     struct state_header *);
void		 state_header_read(struct blockdev *extent, state_done_cb,
		     void *);
/* 0, or MIGRATE_E_WRONG_VM, _GENERATION, _CONFIG, _INCOMPLETE, _CONSUMED
 * (checked in that order). */
int		 state_header_check(const struct state_header *,
		     const struct state_expect *);
/* The operator's sentence for a refusal, with the values that differ
 * ("saved state is from generation 4 but generation 5 was expected:
 * refusing an older state"); header may be NULL. */
void		 state_explain(char *buf, size_t size, int error,
		     const struct state_header *, const struct state_expect *);

/*
 * Both pipelines take ownership of pipe_fd from the call on, in every case:
 * they make it non-blocking, and close it before done is called (or before
 * a NULL return). Closing it is what tells QEMU the stream ended (restore)
 * or broke (save: QEMU's writes fail with EPIPE, so it never blocks on a
 * pipe nobody reads). The process must ignore SIGPIPE (ev_base_new does).
 *
 * done is called exactly once, always from the event loop, never from
 * inside the *_start or *_abort call. The handle is freed just before done
 * runs: do not use it in or after done. Keep the loop running and the
 * extent open until done has been called, also after an abort.
 *
 * NULL returns (errno set, pipe_fd closed, done never called): EINVAL for a
 * malformed UUID or an extent with no room or a block size above 4096,
 * ENOMEM.
 */

/*
 * Save: first write ident's header with COMPLETE clear (FUA), so no crash
 * can leave an older complete header describing newer bytes; then read
 * QEMU's stream from pipe_fd until EOF into 1 MiB buffers written with up
 * to 8 in flight and a running CRC; once every stream write completed,
 * write the complete header, then one flush (SYNCHRONIZE CACHE) for both;
 * then done(0, header). ident gives the UUID, generation and config hash;
 * the rest is filled in.
 *
 * On an error (MIGRATE_E_TOO_BIG when the stream outgrows the extent, a
 * storage error, -errno from the pipe, -ECANCELED after abort) the header
 * stays incomplete, except when the error hits the final header write or
 * the flush after it: then the state is indeterminate. Either way, a caller
 * that gives up on the save and resumes the VM on this host must make the
 * state unrestorable first with state_mark_consumed. An abort that comes
 * after the final header write was issued reports that write's result:
 * done(0) means the state is complete on disk.
 */
struct state_save;
struct state_save *state_save_start(struct event_base *, struct blockdev *extent,
		     int pipe_fd, const struct state_header *ident,
		     state_progress_cb, state_done_cb, void *arg);
void		 state_save_abort(struct state_save *);

/*
 * Restore: read the header and check it against expect; a refusal writes
 * nothing anywhere (pipe_fd is closed with nothing written, done gets the
 * refusal and the header when it decoded). Then read the stream with up to
 * 8 reads in flight and write it in order into pipe_fd, with a running CRC;
 * at the end, close pipe_fd and report 0 or MIGRATE_E_CHECKSUM (QEMU has
 * then loaded a corrupt stream: kill it, never `cont`). -EPIPE if QEMU went
 * away; -ECANCELED after abort. The extent is only ever read.
 */
struct state_restore;
struct state_restore *state_restore_start(struct event_base *,
		     struct blockdev *extent, int pipe_fd,
		     const struct state_expect *, state_progress_cb,
		     state_done_cb, void *arg);
void		 state_restore_abort(struct state_restore *);

/* Set CONSUMED (FUA) so the state is never restored again: once the
 * restored VM runs, or to void an abandoned save. Works on any decodable
 * header, complete or not; already consumed is 0 with nothing written. */
void		 state_mark_consumed(struct blockdev *extent, state_done_cb,
		     void *);

#endif
