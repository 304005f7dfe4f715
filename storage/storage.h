/*
 * storage/: the path from a VM's disk to the shared LUN (DESIGN §3, §4).
 * Everything is a block device with one small asynchronous ops table: a
 * local file (tests, import/export), an iSCSI LUN (libiscsi on the event
 * loop), a window onto one extent of a Haven volume, and a VHD image on top
 * of any of those. The NBD server exports any block device to QEMU.
 */
#ifndef HAVEN_STORAGE_H
#define HAVEN_STORAGE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/*
 * Errors. Functions and completions report 0 on success, else a negative
 * value: -errno for system errors, or one of these named domain errors. Use
 * storage_strerror() for the operator-facing sentence.
 */
#define STORAGE_ERROR_BASE	4096
enum storage_error {
	/* The target refused a write: our key is not registered or was
	 * preempted. This host is fenced. */
	STORAGE_E_RESERVATION = -(STORAGE_ERROR_BASE + 1),
	/* Unit attention 2A/03: our reservation was preempted. */
	STORAGE_E_PREEMPTED = -(STORAGE_ERROR_BASE + 2),
	/* On-disk structure fails validation (bad magic, checksum, bounds). */
	STORAGE_E_CORRUPT = -(STORAGE_ERROR_BASE + 3),
	/* A valid structure of a kind Haven does not handle (differencing
	 * VHD, newer volume version, 4 KiB-native LUN). */
	STORAGE_E_UNSUPPORTED = -(STORAGE_ERROR_BASE + 4),
	/* The target did not answer in time. */
	STORAGE_E_TIMEOUT = -(STORAGE_ERROR_BASE + 5),
	/* Login to the iSCSI target failed. */
	STORAGE_E_LOGIN = -(STORAGE_ERROR_BASE + 6),
	/* A SCSI command failed with sense data we do not map further. */
	STORAGE_E_SCSI = -(STORAGE_ERROR_BASE + 7),
	/* Not a Haven volume (no label). */
	STORAGE_E_NOT_VOLUME = -(STORAGE_ERROR_BASE + 8),
	/* The volume's lease is held at a newer generation: another host
	 * owns the VM now. */
	STORAGE_E_LEASE_NEWER = -(STORAGE_ERROR_BASE + 9),
	/* The target refused the login's CHAP credentials (none, or wrong). */
	STORAGE_E_AUTH = -(STORAGE_ERROR_BASE + 10),
	/* The target does not admit this initiator name (its ACL), or there
	 * is no such target: tgt answers both alike. */
	STORAGE_E_DENIED = -(STORAGE_ERROR_BASE + 11),
};

/* errors.c */
const char	*storage_strerror(int error);
int		 storage_wait(struct event_base *, const int *done);

/*
 * A block device. Requests complete through their callback, always from the
 * event loop and never from inside the submitting call, with 0 or a negative
 * error. Offsets and lengths are multiples of block_size. Buffers stay the
 * caller's and must live until the callback.
 */
struct blockdev;
typedef void (*blockdev_cb)(int result, void *arg);

#define BLOCKDEV_FUA	0x1	/* durable before completion */

struct blockdev_ops {
	const char	*kind;
	void		(*read)(struct blockdev *, uint64_t offset, void *buf,
			    size_t len, blockdev_cb, void *);
	void		(*write)(struct blockdev *, uint64_t offset,
			    const void *buf, size_t len, unsigned flags,
			    blockdev_cb, void *);
	/* Durable: everything completed before the flush was submitted. */
	void		(*flush)(struct blockdev *, blockdev_cb, void *);
	/* Write zeroes over a range (may deallocate where reads stay 0). */
	void		(*zero)(struct blockdev *, uint64_t offset, uint64_t len,
			    unsigned flags, blockdev_cb, void *);
	void		(*close)(struct blockdev *);
};

struct blockdev {
	const struct blockdev_ops *ops;
	struct event_base	*base;
	uint64_t		 size;		/* bytes */
	uint32_t		 block_size;	/* bytes, a power of 2 */
	char			 name[128];	/* for messages: path or URL */
	void			*impl;		/* the implementation's state */
	struct blockdev_defer	*defer;		/* completions in flight */
};

/* blockdev.c */
void		 blockdev_read(struct blockdev *, uint64_t, void *, size_t,
		     blockdev_cb, void *);
void		 blockdev_write(struct blockdev *, uint64_t, const void *, size_t,
		     unsigned, blockdev_cb, void *);
void		 blockdev_flush(struct blockdev *, blockdev_cb, void *);
void		 blockdev_zero(struct blockdev *, uint64_t, uint64_t, unsigned,
		     blockdev_cb, void *);
void		 blockdev_close(struct blockdev *);
int		 blockdev_check_range(const struct blockdev *, uint64_t,
		     uint64_t);
void		 blockdev_complete_later(struct blockdev *, blockdev_cb, void *,
		     int result);
int		 blockdev_init(struct blockdev *, const struct blockdev_ops *,
		     struct event_base *, const char *name);
void		 blockdev_fini(struct blockdev *);
/* Synchronous wrappers that run the loop until done (CLI and tests only). */
int		 blockdev_read_sync(struct blockdev *, uint64_t, void *, size_t);
int		 blockdev_write_sync(struct blockdev *, uint64_t, const void *,
		     size_t, unsigned);
int		 blockdev_flush_sync(struct blockdev *);
int		 blockdev_zero_sync(struct blockdev *, uint64_t, uint64_t);

/* file.c */
struct blockdev	*file_open(struct event_base *, const char *path, int writable,
		     int *error);
struct blockdev	*file_create(struct event_base *, const char *path,
		     uint64_t size, int *error);
int		 file_truncate(struct blockdev *, uint64_t size);

/* extent.c */
struct blockdev	*extent_open(struct blockdev *parent, uint64_t offset,
		     uint64_t size, const char *label);

/* iscsi.c: a LUN over libiscsi, asynchronous on the event loop. */
struct iscsi_context;
struct scsi_task;
struct iscsi_options {
	const char	*initiator;	/* IQN; NULL = a default */
	/* CHAP for this login; NULL: the URL's user%password, else the
	 * account chap_install() holds for the URL's target, else none. */
	const char	*chap_user;
	const char	*chap_secret;
	/* 0 = 64: as deep as a guest's NBD queue (64 per client) goes;
	 * libiscsi still keeps within the target's command window. */
	unsigned	 queue_depth;
	int		 timeout_s;	/* per command and for login; 0 = 10 */
	/* Login failures, lost sessions and failed commands at debug level
	 * (storage/probe.c: its owner logs the verdict, not every probe). */
	int		 quiet;
};
typedef void (*iscsi_open_cb)(int result, struct blockdev *, void *arg);
typedef void (*iscsi_register_ask)(struct blockdev *, void *arg);
typedef void (*iscsi_fenced_cb)(struct blockdev *, int why, void *arg);
typedef struct scsi_task *(*iscsi_raw_submit)(struct iscsi_context *,
		     int lun, void (*cb)(struct iscsi_context *, int, void *,
		     void *), void *priv, void *arg);
typedef void (*iscsi_raw_done)(int result, struct scsi_task *, void *arg);
void		 iscsi_open(struct event_base *, const char *url,
		     const struct iscsi_options *, iscsi_open_cb, void *);
int		 iscsi_open_sync(struct event_base *, const char *url,
		     const struct iscsi_options *, struct blockdev **);
void		 iscsi_raw(struct blockdev *, iscsi_raw_submit, iscsi_raw_done,
		     void *);
int		 iscsi_is_iscsi(const struct blockdev *);
int		 iscsi_is_fenced(const struct blockdev *);
void		 iscsi_set_registration(struct blockdev *, uint64_t key,
		     iscsi_register_ask, void *);
void		 iscsi_register_answer(struct blockdev *, int granted);
void		 iscsi_set_fenced_cb(struct blockdev *, iscsi_fenced_cb, void *);

/* iscsi.c: close at once, dropping what the socket has not sent (a path
 * taken down by multipath.c must not deliver a stale write later). */
void		 iscsi_close_abort(struct blockdev *);

/*
 * multipath.c: one LUN over several paths (issue 17), as one block device.
 * The iscsi_* calls above (raw, registration, fenced) work on it too. The
 * path layer is a table so that the logic is tested without a target.
 */
#define MPATH_MAX_PATHS		4
#define MPATH_DEAD_MS		1500	/* no answer while busy: path down */
#define MPATH_PING_MS		500	/* heartbeat (TEST UNIT READY) */
#define MPATH_REOPEN_MS		1000	/* between logins of a path down */
#define MPATH_LOGIN_S		3	/* a background login's timeout */
struct mpath_ops {
	/* Log in to path `index` (first: the device's own open). */
	void	(*open)(unsigned index, int first, void *ctx, iscsi_open_cb,
		    void *);
	void	(*ping)(struct blockdev *, blockdev_cb, void *);
	void	(*register_key)(struct blockdev *, uint64_t key, blockdev_cb,
		    void *);
	void	(*raw)(struct blockdev *, iscsi_raw_submit, iscsi_raw_done,
		    void *);
	/* The path's own session asks before registering a new nexus, and
	 * says when it is fenced. */
	void	(*attach)(struct blockdev *, uint64_t key, iscsi_register_ask,
		    iscsi_fenced_cb, void *);
	void	(*answer)(struct blockdev *, int granted);
	void	(*discard)(struct blockdev *);
	void	(*release)(void *ctx);		/* may be NULL */
};
struct mpath_options {
	unsigned	 dead_ms, ping_ms, reopen_ms;	/* 0: the defaults */
};
struct mpath_path_info {
	int		 up;		/* logged in and carrying I/O */
	uint64_t	 since_us;	/* last went down (0: never) */
	char		 why[96];	/* why it is down */
};
void		 mpath_open(struct event_base *, unsigned npaths,
		     const char *name, const struct mpath_ops *, void *ctx,
		     const struct mpath_options *, iscsi_open_cb, void *);
/* The LUN through each URL (same target and LUN, one per portal). */
void		 mpath_iscsi_open(struct event_base *, const char *const *urls,
		     unsigned n, const struct iscsi_options *, iscsi_open_cb,
		     void *);
int		 mpath_is(const struct blockdev *);
void		 mpath_raw(struct blockdev *, iscsi_raw_submit, iscsi_raw_done,
		     void *);
void		 mpath_set_registration(struct blockdev *, uint64_t key,
		     iscsi_register_ask, void *);
void		 mpath_register_answer(struct blockdev *, int granted);
void		 mpath_set_fenced_cb(struct blockdev *, iscsi_fenced_cb, void *);
int		 mpath_is_fenced(const struct blockdev *);
/* After the owner's claim: the key on every other path up now. */
void		 mpath_claimed(struct blockdev *, blockdev_cb, void *);
unsigned	 mpath_paths(const struct blockdev *, struct mpath_path_info *,
		     unsigned max);

/* chap.c: the host's CHAP accounts, "TARGET USER SECRET" per line of a
 * root-only file, one per pool (issue 15). A process installs its accounts
 * once; from then on every iscsi_open without credentials of its own logs
 * in with the account of its URL's target. Errors are one line, "PATH:LINE:
 * what", and never quote a secret. */
#define CHAP_MAX_ACCOUNTS	64
#define CHAP_TARGET_MAX		224
#define CHAP_FIELD_MAX		256
#define CHAP_SECRET_MIN		12	/* RFC 3720 §8.2.1 */
#define CHAP_FILE_MAX		65536
#define CHAP_PATH		"/etc/haven/chap"
struct chap;
int		 chap_parse(const char *text, size_t len, const char *name,
		     struct chap **, char *err, size_t errlen);
/* Refuses a file group or others may read or write, or not root's. */
int		 chap_load(const char *path, struct chap **, char *err,
		     size_t errlen);
/* 0 with the target's account, -1 if it has none. */
int		 chap_find(const struct chap *, const char *target,
		     const char **user, const char **secret);
size_t		 chap_count(const struct chap *);
void		 chap_free(struct chap *);
/* Takes ownership (frees the one installed before); NULL for none. */
void		 chap_install(struct chap *);
const struct chap *chap_installed(void);
/* Both of a host's SAN secrets (haven.conf [storage]): the chap file
 * installed and the reservation key secret loaded; a missing file is none
 * unless required. -1 with one line in err, and nothing installed. */
int		 chap_setup(const char *chap_file, int chap_required,
		     const char *key_file, int key_required, char *err,
		     size_t errlen);

/* reach.c: a pool's reachability from this host, judged from probes. The
 * timing (issue 20): a probe every REACH_PROBE_INTERVAL_MS, answered within
 * REACH_PROBE_TIMEOUT_MS or failed; unreachable after REACH_DOWN_MS without
 * an answer (so 5-7 s after a cut), reachable again after two answers in a
 * row (1-2 s after it heals). A frozen SAN that answers again within 5 s is
 * never reported; one of 8 s is, on every host alike, which moves nothing. */
#define REACH_PROBE_INTERVAL_MS	1000
#define REACH_PROBE_TIMEOUT_MS	2000
#define REACH_DOWN_MS		5000
#define REACH_DOWN_FAILURES	2
#define REACH_UP_ANSWERS	2
enum reach_state {
	REACH_UNKNOWN,			/* no verdict yet (just started) */
	REACH_REACHABLE,
	REACH_UNREACHABLE,
};
struct reach {
	enum reach_state state;
	uint64_t	 since_us;	/* when the state began */
	uint64_t	 last_answer_us;	/* or the start */
	uint64_t	 failing_since_us;	/* first failed probe sent */
	uint64_t	 row_since_us;	/* first answer of the row */
	unsigned	 answers;	/* in a row */
	unsigned	 failures;	/* in a row */
};
void		 reach_init(struct reach *, uint64_t now_us);
/* 1 when the state changed (state and since_us are the new ones). */
int		 reach_observe(struct reach *, int answered,
		     uint64_t started_us, uint64_t now_us);

/* probe.c: one pool's heartbeat: a READ of the first sector of one of its
 * LUNs over an unregistered session (reads are allowed under Haven's Write
 * Exclusive - Registrants Only reservation), kept open between probes and
 * opened afresh after a failure. cb runs exactly once per probe_run, from
 * the loop, within the timeout (plus a tick): 0, or the storage error
 * (STORAGE_E_TIMEOUT when nothing answered in time). */
struct probe;
typedef void (*probe_cb)(int result, void *arg);
struct probe	*probe_new(struct event_base *, const char *url,
		     const char *initiator, unsigned timeout_ms, probe_cb,
		     void *arg);
/* -1 with EBUSY while the previous probe runs. */
int		 probe_run(struct probe *);
int		 probe_busy(const struct probe *);
const char	*probe_url(const struct probe *);
/* cb is not called after this, not even for a probe under way. */
void		 probe_free(struct probe *);

/* pr.c: SCSI-3 persistent reservations (DESIGN §4, fence_scsi model). */
#define PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY	5
#define PR_MAX_KEYS	64
struct pr_status {
	uint32_t	 generation;
	size_t		 nkeys;
	uint64_t	 keys[PR_MAX_KEYS];
	int		 reserved;		/* a reservation exists */
	uint64_t	 holder;		/* its key */
	uint8_t		 type;
};
typedef void (*pr_status_cb)(int result, const struct pr_status *, void *);
uint64_t	 pr_key(const char *cluster_name, uint32_t node_id);
/* Key tags from the cluster's secret from now on (see pr.c). */
#define PR_KEY_SECRET_PATH	"/etc/corosync/authkey"
int		 pr_key_load(const char *path, char *err, size_t errlen);
int		 pr_key_secret_installed(void);
void		 pr_read(struct blockdev *, pr_status_cb, void *);
void		 pr_register(struct blockdev *, uint64_t old_key,
		     uint64_t new_key, int ignore_existing, blockdev_cb, void *);
void		 pr_reserve(struct blockdev *, uint64_t key, int type,
		     blockdev_cb, void *);
void		 pr_preempt(struct blockdev *, uint64_t key, uint64_t victim,
		     int type, int abort_tasks, blockdev_cb, void *);
void		 pr_claim(struct blockdev *, uint64_t key, blockdev_cb, void *);
int		 pr_read_sync(struct blockdev *, struct pr_status *);
int		 pr_register_sync(struct blockdev *, uint64_t, uint64_t, int);
int		 pr_reserve_sync(struct blockdev *, uint64_t, int);
int		 pr_preempt_sync(struct blockdev *, uint64_t, uint64_t, int, int,
		     int *aborted);
int		 pr_claim_sync(struct blockdev *, uint64_t);

/* volume.c: Haven's label and extents on a LUN or file (DESIGN §3). */
enum volume_extent_kind {
	VOLUME_EXTENT_LEASE,
	VOLUME_EXTENT_STATE,
	VOLUME_EXTENT_DISK,
	VOLUME_EXTENT_COUNT,
};
struct volume_params {
	const char	*cluster_name;
	uint64_t	 state_size;	/* bytes; 0 = default */
};
struct volume_info {
	char		 uuid[37];
	char		 cluster_name[64];
	uint32_t	 version;
	uint64_t	 size;
	uint64_t	 extent_offset[VOLUME_EXTENT_COUNT];
	uint64_t	 extent_size[VOLUME_EXTENT_COUNT];
};
struct volume;
typedef void (*volume_cb)(int result, struct volume *, void *arg);
void		 volume_format(struct blockdev *, const struct volume_params *,
		     volume_cb, void *);
void		 volume_open(struct blockdev *, volume_cb, void *);
int		 volume_format_sync(struct blockdev *,
		     const struct volume_params *, struct volume **);
int		 volume_open_sync(struct blockdev *, struct volume **);
struct blockdev	*volume_extent(struct volume *, enum volume_extent_kind);
/* The UEFI variable store's region (vars.c) in the first MiB. */
struct blockdev	*volume_vars_region(struct volume *);
void		 volume_get_info(const struct volume *, struct volume_info *);
const char	*volume_extent_name(enum volume_extent_kind);
void		 volume_close(struct volume *);

/* vars.c: a VM's UEFI variable store in its volume's vars region. */
typedef void (*vars_cb)(int result, struct blockdev *store, void *arg);
void		 vars_open(struct blockdev *region, const void *template,
		     size_t len, int may_create, vars_cb, void *);
uint64_t	 vars_capacity(const struct blockdev *region);

/* lease.c: the ownership record in a volume's lease extent (DESIGN §3). */
struct lease_record {
	char		 vm_uuid[37];
	char		 owner[64];	/* host name */
	uint32_t	 node_id;
	uint64_t	 generation;
	uint64_t	 time_us;	/* CLOCK_REALTIME when claimed */
};
/* The callback's record: the one read, the one written by a claim, or the
 * stored one that refused a claim; NULL when there is none (errors). */
typedef void (*lease_cb)(int result, const struct lease_record *, void *);
/* Read: 0 with the record, 0 with generation 0 if never claimed, or
 * STORAGE_E_CORRUPT for a damaged record. */
void		 lease_read(struct blockdev *extent, lease_cb, void *);
/* Claim for mine (generation > 0; time_us is stamped here): refuses, and
 * writes nothing, with STORAGE_E_LEASE_NEWER if the record holds a newer
 * generation or the same one for another owner (host name or node id),
 * -EEXIST if it belongs to another VM UUID, STORAGE_E_CORRUPT if damaged,
 * -EINVAL for a bad mine; else writes mine with FUA and flushes. Re-claiming
 * our own generation is fine. */
void		 lease_claim(struct blockdev *extent,
		     const struct lease_record *mine, lease_cb, void *);
int		 lease_read_sync(struct blockdev *, struct lease_record *);
int		 lease_claim_sync(struct blockdev *, const struct lease_record *);
/* volume.c (it needs lease.c): clear the lease and the state header if the
 * lease names vm_uuid or no VM; -EEXIST, with *was, if another VM. */
int		 volume_wipe_sync(struct volume *, const char *vm_uuid,
		     struct lease_record *was);

/* vhd.c: VHD images, fixed and dynamic, on any block device. */
enum vhd_type {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
};
struct vhd_info {
	enum vhd_type	 type;
	uint64_t	 virtual_size;	/* what the guest sees */
	uint64_t	 current_size;	/* the footer's field */
	uint16_t	 cylinders;
	uint8_t		 heads;
	uint8_t		 sectors_per_track;
	char		 creator[5];
	uint8_t		 uuid[16];
	uint32_t	 block_size;	/* dynamic only */
	uint32_t	 max_table_entries;
	uint32_t	 allocated_blocks;
	uint64_t	 end_offset;	/* bytes of the backing in use */
};
/*
 * How a new VHD's size is chosen. ROUNDED: up to the next CHS geometry, as
 * qemu-img does by default. EXACT: the size itself (in whole sectors), as
 * qemu-img's force_size and Hyper-V keep it; used by import and export so
 * that an image keeps its size byte for byte (platform.md §1.3).
 */
enum vhd_size_rule {
	VHD_SIZE_ROUNDED,
	VHD_SIZE_EXACT,
};
uint64_t	 vhd_round_size(uint64_t requested, uint16_t *cylinders,
		     uint8_t *heads, uint8_t *sectors_per_track);
uint64_t	 vhd_exact_size(uint64_t requested, uint16_t *cylinders,
		     uint8_t *heads, uint8_t *sectors_per_track);
/* Whether every reader (QEMU 7.2 by its creator rule, newer QEMU and
 * Hyper-V by current_size) sees the same size; else what the others see. */
int		 vhd_size_agrees(const struct vhd_info *, uint64_t *other);
typedef void (*vhd_open_cb)(int result, struct blockdev *vhd, void *arg);
void		 vhd_create(struct blockdev *backing, enum vhd_type,
		     uint64_t size, enum vhd_size_rule, blockdev_cb, void *);
void		 vhd_open(struct blockdev *backing, int writable, vhd_open_cb,
		     void *);
int		 vhd_create_sync(struct blockdev *, enum vhd_type, uint64_t,
		     enum vhd_size_rule);
int		 vhd_open_sync(struct blockdev *, int writable,
		     struct blockdev **);
int		 vhd_get_info(struct blockdev *vhd, struct vhd_info *);
/* The most backing bytes a VHD of this size can ever use. */
uint64_t	 vhd_max_backing_size(enum vhd_type, uint64_t size,
		     enum vhd_size_rule);

/* vhd.c and vhd_format.c: shared with vhd_check.c, not for other modules. */
#define VHD_HEADER_OFFSET	512
#define VHD_BAT_OFFSET		1536
#define VHD_BLOCK_SIZE		(2U << 20)
#define VHD_MAX_BLOCK_SIZE	(256U << 20)
#define VHD_MAX_BAT_BYTES	(64U << 20)
#define VHD_UNALLOCATED		0xffffffffU
#define VHD_MAX_SECTORS		0xff000000ULL		/* 2040 GiB */
#define VHD_CHS_MAX		(65535ULL * 16 * 255)
#define VHD_DATA_ALIGN		4096			/* §1.6.6 */
#define VHD_TIMESTAMP_BASE	946684800
#define VHD_CREATOR		"hvn "
#define VHD_CREATOR_VERSION	0x00010000U
#define VHD_FIXED_DATA_OFFSET	0xffffffffffffffffULL

static inline uint64_t
vhd_round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

#define VHD_SECTOR		512
#define VHD_FOOTER_SIZE		512
#define VHD_HEADER_SIZE		1024
/* Footer and header field offsets (platform.md §1.1, §1.4). */
#define VHD_F_COOKIE		0
#define VHD_F_FEATURES		8
#define VHD_F_VERSION		12
#define VHD_F_DATA_OFFSET	16
#define VHD_F_TIMESTAMP		24
#define VHD_F_CREATOR		28
#define VHD_F_CREATOR_VER	32
#define VHD_F_CREATOR_OS	36
#define VHD_F_ORIG_SIZE		40
#define VHD_F_CUR_SIZE		48
#define VHD_F_GEOMETRY		56
#define VHD_F_TYPE		60
#define VHD_F_CHECKSUM		64
#define VHD_F_UUID		68
#define VHD_H_COOKIE		0
#define VHD_H_DATA_OFFSET	8
#define VHD_H_TABLE_OFFSET	16
#define VHD_H_VERSION		24
#define VHD_H_MAX_ENTRIES	28
#define VHD_H_BLOCK_SIZE	32
#define VHD_H_CHECKSUM		36
/* The parsed layout of a dynamic image before it becomes a struct vhd. */
struct vhd_layout {
	uint64_t	 data_offset;
	uint64_t	 table_offset;
	uint32_t	 entries;
	uint32_t	 block_size;
	uint32_t	 bitmap_size;
	uint64_t	 bat_bytes;	/* padded to a sector */
	uint64_t	 meta_end;	/* past header and BAT */
};
/* What a scan of the BAT found. */
struct vhd_scan {
	uint64_t	 end;		/* free_data_block_offset */
	uint32_t	 allocated;
	uint32_t	 out_of_range;
	uint32_t	 overlaps;
	uint32_t	 first_bad;	/* entry index, for messages */
};
void		 vhd_set_checksum(uint8_t *, size_t len, size_t field);
int		 vhd_footer_parse(const uint8_t *raw, struct vhd_info *,
		     const char **why);
int		 vhd_header_parse(const uint8_t *raw, const struct vhd_info *,
		     uint64_t data_offset, uint64_t backing_size,
		     struct vhd_layout *, const char **why);
int		 vhd_bat_scan(const uint32_t *bat, const struct vhd_layout *,
		     uint64_t backing_size, struct vhd_scan *);

/* vhd_check.c: check (and with repair fix what is safely fixable); CLI only. */
struct vhd_check_report {
	unsigned	 problems;	/* found */
	unsigned	 repaired;	/* of those, fixed */
	int		 type;		/* enum vhd_type, 0 if none found */
	void		(*problem)(const char *text, int repaired, void *arg);
	void		*arg;
};
int		 vhd_check_sync(struct blockdev *backing, int repair,
		     struct vhd_check_report *);

/* vhd_copy.c: import and export (copy one virtual disk onto another). */
typedef void (*vhd_progress_cb)(uint64_t done, uint64_t total, void *arg);
int		 vhd_copy_sync(struct blockdev *from, struct blockdev *to,
		     vhd_progress_cb, void *arg);

/* nbd_pool.c: nbd.c's request buffers, reused (not for other modules). */
void		*nbd_buf_get(size_t len);
void		 nbd_buf_put(void *, size_t len);

/* nbd.c: an NBD server (fixed newstyle) exporting block devices to QEMU. */
struct nbd_server;
struct nbd_server *nbd_server_new(struct event_base *, const char *path,
		     int *error);
struct nbd_server *nbd_server_new_fd(struct event_base *, int listen_fd,
		     int *error);
int		 nbd_server_add_export(struct nbd_server *, const char *name,
		     struct blockdev *, int read_only);
int		 nbd_server_add_client(struct nbd_server *, int fd);
unsigned	 nbd_server_busy(const struct nbd_server *);
uint64_t	 nbd_server_oldest(const struct nbd_server *);
int		 nbd_server_replace_export(struct nbd_server *, const char *name,
		     struct blockdev *, struct blockdev **old);
void		 nbd_server_free(struct nbd_server *);

#endif
