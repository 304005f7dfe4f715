/*
 * The lease: one ownership record at the start of a volume's lease extent
 * (DESIGN §3). A host claims it at a generation handed out by the cluster
 * state before it starts the VM; a worker that reads a newer one stops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "common.h"
#include "storage.h"

/*
 * Record, little-endian, in the first 512 bytes of the lease extent:
 *   0  magic "HVNLEASE"                 8
 *   8  version (1)                      4
 *  12  record size (512)                4
 *  16  VM UUID, binary                 16
 *  32  owner host name (NUL-padded)    64
 *  96  owner node id                    4
 * 100  reserved (zero)                  4
 * 104  generation (> 0)                 8
 * 112  time claimed, CLOCK_REALTIME us  8
 * 120  reserved (zero) ...
 * 508  CRC32 (zlib) of bytes 0..507
 * A sector of zeroes means "never claimed" (volume_format clears it). Any
 * other content must pass every check or it is STORAGE_E_CORRUPT: the bytes
 * come from a shared LUN and are untrusted.
 *
 * Claim rule. The stored record wins, and nothing is written, when:
 *   - it names another VM (-EEXIST: one VM per volume; reformat to reuse);
 *   - its generation is newer than ours (STORAGE_E_LEASE_NEWER);
 *   - its generation equals ours but another owner (host name or node id)
 *     holds it (STORAGE_E_LEASE_NEWER too: two hosts never share a
 *     generation, so whoever wrote it first keeps it and we must not run).
 * Otherwise (empty, older, or ours at the same generation: an idempotent
 * re-claim) ours is written with FUA and then flushed.
 * Read-then-write is not atomic between hosts. It need not be: generations
 * come from the replicated cluster state and writes are gated by SCSI-3
 * reservations (DESIGN §4); the lease is the defence in depth behind them.
 */
#define LEASE_MAGIC		"HVNLEASE"
#define LEASE_VERSION		1
#define LEASE_RECORD_SIZE	512
#define LEASE_CRC_OFFSET	508
#define LEASE_MAX_BLOCK		4096	/* larger sectors are refused */

struct lease_op {
	struct blockdev		*dev;
	lease_cb		 cb;
	void			*arg;
	uint8_t			*buf;
	size_t			 len;		/* one sector, >= 512 */
	int			 claim;		/* else just read */
	int			 step;
	int			 have_record;	/* record is valid */
	struct lease_record	 record;	/* read, then what we wrote */
	struct lease_record	 mine;
	uint8_t			 mine_uuid[16];
};

static int
all_zero(const uint8_t *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (p[i] != 0)
			return 0;
	}
	return 1;
}




/* An owner name: non-empty and fits the field with its NUL. */
static int
lease_owner_valid(const char *owner)
{
	size_t	len = strnlen(owner, sizeof ((struct lease_record *)0)->owner);

	return len > 0 && len < sizeof ((struct lease_record *)0)->owner;
}

static void
lease_encode(const struct lease_record *r, const uint8_t *uuid, uint8_t *p)
{
	memset(p, 0, LEASE_RECORD_SIZE);
	memcpy(p, LEASE_MAGIC, 8);
	le32_put(p + 8, LEASE_VERSION);
	le32_put(p + 12, LEASE_RECORD_SIZE);
	memcpy(p + 16, uuid, 16);
	memcpy(p + 32, r->owner, strnlen(r->owner, 63));
	le32_put(p + 96, r->node_id);
	le64_put(p + 104, r->generation);
	le64_put(p + 112, r->time_us);
	le32_put(p + LEASE_CRC_OFFSET, (uint32_t)crc32(0, p, LEASE_CRC_OFFSET));
}

/* Decode and validate every field; an all-zero record is "never claimed". */
static int
lease_decode(const uint8_t *p, struct lease_record *r, uint8_t *uuid)
{
	const uint8_t	*owner = p + 32, *nul;

	memset(r, 0, sizeof *r);
	memset(uuid, 0, 16);
	if (all_zero(p, LEASE_RECORD_SIZE))
		return 0;
	if (memcmp(p, LEASE_MAGIC, 8) != 0)
		return STORAGE_E_CORRUPT;
	if (le32_get(p + LEASE_CRC_OFFSET) !=
	    (uint32_t)crc32(0, p, LEASE_CRC_OFFSET))
		return STORAGE_E_CORRUPT;
	if (le32_get(p + 8) != LEASE_VERSION ||
	    le32_get(p + 12) != LEASE_RECORD_SIZE)
		return STORAGE_E_CORRUPT;
	/* Owner: non-empty, NUL-terminated, zero after the NUL. */
	if ((nul = memchr(owner, '\0', 64)) == NULL || nul == owner ||
	    !all_zero(nul, (size_t)(owner + 64 - nul)))
		return STORAGE_E_CORRUPT;
	if (le32_get(p + 100) != 0 || !all_zero(p + 120, LEASE_CRC_OFFSET - 120))
		return STORAGE_E_CORRUPT;
	if (le64_get(p + 104) == 0)
		return STORAGE_E_CORRUPT;
	memcpy(uuid, p + 16, 16);
	uuid_format(uuid, r->vm_uuid);
	memcpy(r->owner, owner, (size_t)(nul - owner));
	r->node_id = le32_get(p + 96);
	r->generation = le64_get(p + 104);
	r->time_us = le64_get(p + 112);
	return 0;
}

static void
lease_op_finish(struct lease_op *op, int result)
{
	op->cb(result, op->have_record ? &op->record : NULL, op->arg);
	free(op->buf);
	free(op);
}

/* Whether the stored record (already read into op->record) lets us claim. */
static int
lease_may_claim(const struct lease_op *op, const uint8_t *stored_uuid)
{
	const struct lease_record	*cur = &op->record, *mine = &op->mine;

	if (cur->generation == 0)
		return 0;
	if (memcmp(stored_uuid, op->mine_uuid, 16) != 0)
		return -EEXIST;
	if (cur->generation > mine->generation)
		return STORAGE_E_LEASE_NEWER;
	if (cur->generation == mine->generation &&
	    (cur->node_id != mine->node_id ||
	    strcmp(cur->owner, mine->owner) != 0))
		return STORAGE_E_LEASE_NEWER;
	return 0;
}

/* Claim: 0 read, 1 written with FUA, 2 flushed. */
static void
lease_step(int result, void *arg)
{
	struct lease_op	*op = arg;
	uint8_t		 stored_uuid[16];
	struct timespec	 ts;

	if (result != 0) {
		lease_op_finish(op, result);
		return;
	}
	switch (op->step++) {
	case 0:
		result = lease_decode(op->buf, &op->record, stored_uuid);
		op->have_record = result == 0;
		if (result == 0 && op->claim)
			result = lease_may_claim(op, stored_uuid);
		if (result != 0 || !op->claim) {
			lease_op_finish(op, result);
			return;
		}
		/* From here the record is ours, valid once flushed. */
		op->have_record = 0;
		op->record = op->mine;
		clock_gettime(CLOCK_REALTIME, &ts);
		op->record.time_us = (uint64_t)ts.tv_sec * 1000000 +
		    (uint64_t)ts.tv_nsec / 1000;
		/* The whole sector: the record, then zeroes. */
		memset(op->buf, 0, op->len);
		lease_encode(&op->record, op->mine_uuid, op->buf);
		blockdev_write(op->dev, 0, op->buf, op->len, BLOCKDEV_FUA,
		    lease_step, op);
		break;
	case 1:
		blockdev_flush(op->dev, lease_step, op);
		break;
	default:
		op->have_record = 1;
		lease_op_finish(op, 0);
		break;
	}
}

static void
lease_fail_cb(int result, void *arg)
{
	lease_op_finish(arg, result);
}

static void
lease_start(struct blockdev *dev, const struct lease_record *mine,
    lease_cb cb, void *arg)
{
	struct lease_op	*op;
	int		 error = 0;

	if ((op = calloc(1, sizeof *op)) == NULL)
		abort();
	op->dev = dev;
	op->cb = cb;
	op->arg = arg;
	op->len = dev->block_size > LEASE_RECORD_SIZE ? dev->block_size :
	    LEASE_RECORD_SIZE;
	if ((op->buf = calloc(1, op->len)) == NULL)
		abort();
	if (mine != NULL) {
		op->claim = 1;
		op->mine = *mine;
		/* Generation 0 means "never claimed"; it cannot be claimed. */
		if (mine->generation == 0 || !lease_owner_valid(mine->owner) ||
		    uuid_parse(mine->vm_uuid, op->mine_uuid) == -1)
			error = -EINVAL;
	}
	if (error == 0 && (op->len > LEASE_MAX_BLOCK || dev->size < op->len))
		error = STORAGE_E_UNSUPPORTED;
	if (error != 0) {
		blockdev_complete_later(dev, lease_fail_cb, op, error);
		return;
	}
	blockdev_read(dev, 0, op->buf, op->len, lease_step, op);
}

void
lease_read(struct blockdev *extent, lease_cb cb, void *arg)
{
	lease_start(extent, NULL, cb, arg);
}

void
lease_claim(struct blockdev *extent, const struct lease_record *mine,
    lease_cb cb, void *arg)
{
	lease_start(extent, mine, cb, arg);
}

struct lease_sync {
	int			 done;
	int			 result;
	struct lease_record	*out;
};

static void
lease_sync_cb(int result, const struct lease_record *r, void *arg)
{
	struct lease_sync	*s = arg;

	s->result = result;
	s->done = 1;
	if (result == 0 && s->out != NULL)
		*s->out = *r;
}

static int
lease_sync_wait(struct blockdev *dev, struct lease_sync *s)
{
	if (storage_wait(dev->base, &s->done) == -1)
		return -EIO;
	return s->result;
}

int
lease_read_sync(struct blockdev *dev, struct lease_record *out)
{
	struct lease_sync	s = { 0, 0, out };

	lease_read(dev, lease_sync_cb, &s);
	return lease_sync_wait(dev, &s);
}

int
lease_claim_sync(struct blockdev *dev, const struct lease_record *mine)
{
	struct lease_sync	s = { 0, 0, NULL };

	lease_claim(dev, mine, lease_sync_cb, &s);
	return lease_sync_wait(dev, &s);
}
