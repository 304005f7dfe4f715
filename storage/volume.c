/*
 * A Haven volume: a LUN (or a file, in tests) with Haven's label in its
 * first sector and three extents: the lease, the saved VM state and the
 * disk (a VHD). Opening validates magic, version, CRC and every bound, and
 * never writes; formatting refuses to overwrite an existing volume; a wipe
 * forgets the VM that used it (its lease and saved state).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "common.h"
#include "storage.h"

/*
 * Label, little-endian, in the first 512 bytes of the volume:
 *   0  magic "HAVENVOL"         8
 *   8  version (1)              4
 *  12  label size (512)         4
 *  16  volume UUID             16
 *  32  cluster name (NUL-padded) 64
 *  96  volume size in bytes     8
 * 104  created, Unix seconds    8
 * 112  extent count (3)         4
 * 116  reserved                 4
 * 120  extents: 3 x { kind u32, reserved u32, offset u64, size u64 }
 * 192  reserved (zero) ...
 * 508  CRC32 (zlib) of bytes 0..507
 * The rest of the first MiB is reserved; extents start at 1 MiB. Its last
 * 768 KiB, from VOLUME_VARS_OFFSET, hold the UEFI variable store (vars.c),
 * which has its own header: volumes formatted before it came have none.
 */
#define VOLUME_MAGIC		"HAVENVOL"
#define VOLUME_VERSION		1
#define VOLUME_LABEL_SIZE	512
#define VOLUME_ALIGN		(1ULL << 20)
#define VOLUME_LEASE_SIZE	(1ULL << 20)
#define VOLUME_STATE_DEFAULT_MAX	(2ULL << 30)
#define VOLUME_MIN_DISK		(4ULL << 20)
#define VOLUME_VARS_OFFSET	(256ULL << 10)
#define VOLUME_CLEAR_SIZE	65536	/* zeroed at the start of lease, state */

struct volume {
	struct blockdev		*dev;
	struct volume_info	 info;
	struct blockdev		*extents[VOLUME_EXTENT_COUNT];
	struct blockdev		*vars;		/* the vars region */
};

/* An asynchronous open or format in progress. */
struct volume_op {
	struct blockdev		*dev;
	volume_cb		 cb;
	void			*arg;
	uint8_t			*buf;
	struct volume		*volume;
	int			 step;
	uint8_t			 uuid[16];	/* format: the new UUID */
};

static const char *volume_extent_names[VOLUME_EXTENT_COUNT] = {
	[VOLUME_EXTENT_LEASE] = "lease",
	[VOLUME_EXTENT_STATE] = "state",
	[VOLUME_EXTENT_DISK] = "disk",
};

const char *
volume_extent_name(enum volume_extent_kind kind)
{
	if ((unsigned)kind >= VOLUME_EXTENT_COUNT)
		return "?";
	return volume_extent_names[kind];
}



/* Where the extents go on a device of `size` bytes. */
static int
volume_layout(uint64_t size, uint64_t state_size, struct volume_info *info)
{
	uint64_t	usable = size & ~(VOLUME_ALIGN - 1), disk_start;

	if (state_size == 0) {
		state_size = (usable / 4) & ~(VOLUME_ALIGN - 1);
		if (state_size > VOLUME_STATE_DEFAULT_MAX)
			state_size = VOLUME_STATE_DEFAULT_MAX;
	}
	state_size = (state_size + VOLUME_ALIGN - 1) & ~(VOLUME_ALIGN - 1);
	info->extent_offset[VOLUME_EXTENT_LEASE] = VOLUME_ALIGN;
	info->extent_size[VOLUME_EXTENT_LEASE] = VOLUME_LEASE_SIZE;
	info->extent_offset[VOLUME_EXTENT_STATE] = VOLUME_ALIGN +
	    VOLUME_LEASE_SIZE;
	info->extent_size[VOLUME_EXTENT_STATE] = state_size;
	disk_start = info->extent_offset[VOLUME_EXTENT_STATE] + state_size;
	if (disk_start > usable || usable - disk_start < VOLUME_MIN_DISK)
		return -ENOSPC;
	info->extent_offset[VOLUME_EXTENT_DISK] = disk_start;
	info->extent_size[VOLUME_EXTENT_DISK] = usable - disk_start;
	return 0;
}

static void
volume_label_encode(const struct volume_info *info, const uint8_t *uuid,
    uint8_t *p)
{
	int	i;

	memset(p, 0, VOLUME_LABEL_SIZE);
	memcpy(p, VOLUME_MAGIC, 8);
	le32_put(p + 8, VOLUME_VERSION);
	le32_put(p + 12, VOLUME_LABEL_SIZE);
	memcpy(p + 16, uuid, 16);
	memcpy(p + 32, info->cluster_name, strnlen(info->cluster_name, 63));
	le64_put(p + 96, info->size);
	le64_put(p + 104, (uint64_t)time(NULL));
	le32_put(p + 112, VOLUME_EXTENT_COUNT);
	for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
		le32_put(p + 120 + i * 24, (uint32_t)i);
		le64_put(p + 120 + i * 24 + 8, info->extent_offset[i]);
		le64_put(p + 120 + i * 24 + 16, info->extent_size[i]);
	}
	le32_put(p + 508, (uint32_t)crc32(0, p, 508));
}

/*
 * Validate a label read from a device of dev_size bytes. These bytes are
 * untrusted: every field is checked before it is used.
 */
static int
volume_label_decode(const uint8_t *p, uint64_t dev_size,
    struct volume_info *info)
{
	uint64_t	prev_end = VOLUME_ALIGN, off, size;
	int		i;

	memset(info, 0, sizeof *info);
	if (memcmp(p, VOLUME_MAGIC, 8) != 0)
		return STORAGE_E_NOT_VOLUME;
	if (le32_get(p + 508) != (uint32_t)crc32(0, p, 508))
		return STORAGE_E_CORRUPT;
	info->version = le32_get(p + 8);
	if (info->version != VOLUME_VERSION)
		return STORAGE_E_UNSUPPORTED;
	if (le32_get(p + 12) != VOLUME_LABEL_SIZE ||
	    le32_get(p + 112) != VOLUME_EXTENT_COUNT)
		return STORAGE_E_CORRUPT;
	uuid_format(p + 16, info->uuid);
	if (memchr(p + 32, '\0', 64) == NULL)
		return STORAGE_E_CORRUPT;
	snprintf(info->cluster_name, sizeof info->cluster_name, "%s",
	    (const char *)(p + 32));
	info->size = le64_get(p + 96);
	/* A LUN may grow, never shrink below what was formatted. */
	if (info->size > dev_size)
		return STORAGE_E_CORRUPT;
	for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
		if (le32_get(p + 120 + i * 24) != (uint32_t)i)
			return STORAGE_E_CORRUPT;
		off = le64_get(p + 120 + i * 24 + 8);
		size = le64_get(p + 120 + i * 24 + 16);
		/* In order, aligned, not overlapping, inside the volume. */
		if (off < prev_end || off % 4096 != 0 || size % 4096 != 0 ||
		    size == 0 || off > info->size || size > info->size - off)
			return STORAGE_E_CORRUPT;
		info->extent_offset[i] = off;
		info->extent_size[i] = size;
		prev_end = off + size;
	}
	return 0;
}

static struct volume *
volume_new(struct blockdev *dev, const struct volume_info *info)
{
	struct volume	*v;
	int		 i;

	if ((v = calloc(1, sizeof *v)) == NULL)
		return NULL;
	v->dev = dev;
	v->info = *info;
	for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
		v->extents[i] = extent_open(dev, info->extent_offset[i],
		    info->extent_size[i], volume_extent_names[i]);
		if (v->extents[i] == NULL) {
			volume_close(v);
			return NULL;
		}
	}
	if ((v->vars = extent_open(dev, VOLUME_VARS_OFFSET, VOLUME_ALIGN -
	    VOLUME_VARS_OFFSET, "vars")) == NULL) {
		volume_close(v);
		return NULL;
	}
	return v;
}

/* Closes the extents; the device stays open (it is the caller's). */
void
volume_close(struct volume *v)
{
	int	i;

	if (v == NULL)
		return;
	for (i = 0; i < VOLUME_EXTENT_COUNT; i++) {
		if (v->extents[i] != NULL)
			blockdev_close(v->extents[i]);
	}
	if (v->vars != NULL)
		blockdev_close(v->vars);
	free(v);
}

struct blockdev *
volume_extent(struct volume *v, enum volume_extent_kind kind)
{
	if ((unsigned)kind >= VOLUME_EXTENT_COUNT)
		return NULL;
	return v->extents[kind];
}

struct blockdev *
volume_vars_region(struct volume *v)
{
	return v->vars;
}

void
volume_get_info(const struct volume *v, struct volume_info *info)
{
	*info = v->info;
}

static void
volume_op_finish(struct volume_op *op, int result)
{
	struct volume	*v = result == 0 ? op->volume : NULL;

	if (result != 0)
		volume_close(op->volume);
	op->cb(result, v, op->arg);
	free(op->buf);
	free(op);
}

static struct volume_op *
volume_op_new(struct blockdev *dev, volume_cb cb, void *arg)
{
	struct volume_op	*op;

	if ((op = calloc(1, sizeof *op)) == NULL)
		return NULL;
	if ((op->buf = calloc(1, VOLUME_CLEAR_SIZE)) == NULL) {
		free(op);
		return NULL;
	}
	op->dev = dev;
	op->cb = cb;
	op->arg = arg;
	return op;
}

static void
volume_open_read_cb(int result, void *arg)
{
	struct volume_op	*op = arg;
	struct volume_info	 info;

	if (result == 0)
		result = volume_label_decode(op->buf, op->dev->size, &info);
	if (result == 0 && (op->volume = volume_new(op->dev, &info)) == NULL)
		result = -ENOMEM;
	volume_op_finish(op, result);
}

/* Deliver an early failure from the loop, like every other completion. */
static void
volume_op_fail_cb(int result, void *arg)
{
	volume_op_finish(arg, result);
}

void
volume_open(struct blockdev *dev, volume_cb cb, void *arg)
{
	struct volume_op	*op;

	if ((op = volume_op_new(dev, cb, arg)) == NULL)
		abort();
	if (dev->block_size > VOLUME_LABEL_SIZE) {
		blockdev_complete_later(dev, volume_op_fail_cb, op,
		    STORAGE_E_UNSUPPORTED);
		return;
	}
	if (dev->size < VOLUME_LABEL_SIZE) {
		blockdev_complete_later(dev, volume_op_fail_cb, op,
		    STORAGE_E_NOT_VOLUME);
		return;
	}
	blockdev_read(dev, 0, op->buf, VOLUME_LABEL_SIZE, volume_open_read_cb,
	    op);
}

/*
 * Format: check the device holds no volume yet, clear the start of the
 * lease and state extents, flush, then write the label and flush. The label
 * goes last so that a crash leaves either no volume or a complete one.
 */
static void
volume_format_step(int result, void *arg)
{
	struct volume_op	*op = arg;
	struct volume		*v = op->volume;

	if (result != 0) {
		volume_op_finish(op, result);
		return;
	}
	switch (op->step++) {
	case 0:
		/* The existing label has been read. */
		if (memcmp(op->buf, VOLUME_MAGIC, 8) == 0) {
			volume_op_finish(op, -EEXIST);
			return;
		}
		memset(op->buf, 0, VOLUME_CLEAR_SIZE);
		blockdev_write(op->dev, v->info.extent_offset[
		    VOLUME_EXTENT_LEASE], op->buf, VOLUME_CLEAR_SIZE, 0,
		    volume_format_step, op);
		break;
	case 1:
		blockdev_write(op->dev, v->info.extent_offset[
		    VOLUME_EXTENT_STATE], op->buf, VOLUME_CLEAR_SIZE, 0,
		    volume_format_step, op);
		break;
	case 2:
		blockdev_flush(op->dev, volume_format_step, op);
		break;
	case 3:
		volume_label_encode(&v->info, op->uuid, op->buf);
		blockdev_write(op->dev, 0, op->buf, VOLUME_LABEL_SIZE,
		    BLOCKDEV_FUA, volume_format_step, op);
		break;
	case 4:
		blockdev_flush(op->dev, volume_format_step, op);
		break;
	default:
		volume_op_finish(op, 0);
		break;
	}
}

/*
 * Format dev as a Haven volume. Fails with -EEXIST if it already is one
 * (erase the label first to reformat), -ENOSPC if it is too small.
 */
void
volume_format(struct blockdev *dev, const struct volume_params *params,
    volume_cb cb, void *arg)
{
	struct volume_op	*op;
	struct volume_info	 info;
	uint8_t			 uuid[16];
	int			 error = 0;

	if ((op = volume_op_new(dev, cb, arg)) == NULL)
		abort();
	memset(&info, 0, sizeof info);
	if (dev->block_size > VOLUME_LABEL_SIZE)
		error = STORAGE_E_UNSUPPORTED;
	else if (params->cluster_name == NULL ||
	    strlen(params->cluster_name) >= sizeof info.cluster_name)
		error = -EINVAL;
	else if ((error = volume_layout(dev->size, params->state_size,
	    &info)) == 0)
		error = uuid_generate(uuid);
	if (error == 0) {
		snprintf(info.cluster_name, sizeof info.cluster_name, "%s",
		    params->cluster_name);
		info.version = VOLUME_VERSION;
		info.size = dev->size & ~(VOLUME_ALIGN - 1);
		uuid_format(uuid, info.uuid);
		if ((op->volume = volume_new(dev, &info)) == NULL)
			error = -ENOMEM;
	}
	if (error != 0) {
		blockdev_complete_later(dev, volume_op_fail_cb, op, error);
		return;
	}
	memcpy(op->uuid, uuid, sizeof op->uuid);
	blockdev_read(dev, 0, op->buf, VOLUME_LABEL_SIZE, volume_format_step,
	    op);
}

struct volume_sync {
	int		 done;
	int		 result;
	struct volume	*volume;
};

static void
volume_sync_cb(int result, struct volume *v, void *arg)
{
	struct volume_sync	*s = arg;

	s->result = result;
	s->volume = v;
	s->done = 1;
}

int
volume_open_sync(struct blockdev *dev, struct volume **out)
{
	struct volume_sync	s = { 0, 0, NULL };

	volume_open(dev, volume_sync_cb, &s);
	if (storage_wait(dev->base, &s.done) == -1)
		return -EIO;
	*out = s.volume;
	return s.result;
}

int
volume_format_sync(struct blockdev *dev, const struct volume_params *params,
    struct volume **out)
{
	struct volume_sync	s = { 0, 0, NULL };

	volume_format(dev, params, volume_sync_cb, &s);
	if (storage_wait(dev->base, &s.done) == -1)
		return -EIO;
	*out = s.volume;
	return s.result;
}

/*
 * Wipe: forget the VM that used the volume, so that another may (`vm delete
 * --wipe`, `disk wipe`). Only when the lease names vm_uuid or no VM (else
 * -EEXIST and *was names the holder; a damaged lease is STORAGE_E_CORRUPT):
 * the start of the state extent (its header: any saved state is gone), then
 * the start of the lease extent, both zeroed as volume_format leaves them,
 * with FUA and a flush. The disk extent (the guest's VHD) is left alone.
 *
 * Reading, then writing, is not atomic between hosts, and need not be: a
 * claim by any other VM is refused while the lease names vm_uuid, and the
 * callers wipe only once the cluster has deleted that VM (no host will run
 * it again). The state goes first: interrupted, the lease still refuses a
 * new VM and a second wipe finishes the job.
 */
int
volume_wipe_sync(struct volume *v, const char *vm_uuid,
    struct lease_record *was)
{
	struct blockdev		*lease = v->extents[VOLUME_EXTENT_LEASE];
	struct blockdev		*state = v->extents[VOLUME_EXTENT_STATE];
	struct lease_record	 record;
	uint8_t			*zero;
	int			 error;

	if (was == NULL)
		was = &record;
	if ((error = lease_read_sync(lease, was)) != 0)
		return error;
	if (was->generation != 0 && strcasecmp(was->vm_uuid, vm_uuid) != 0)
		return -EEXIST;
	if ((zero = calloc(1, VOLUME_CLEAR_SIZE)) == NULL)
		return -ENOMEM;
	if ((error = blockdev_write_sync(state, 0, zero, VOLUME_CLEAR_SIZE,
	    BLOCKDEV_FUA)) == 0 &&
	    (error = blockdev_flush_sync(state)) == 0 &&
	    (error = blockdev_write_sync(lease, 0, zero, VOLUME_CLEAR_SIZE,
	    BLOCKDEV_FUA)) == 0)
		error = blockdev_flush_sync(lease);
	free(zero);
	return error;
}
