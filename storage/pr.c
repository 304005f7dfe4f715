/*
 * SCSI-3 persistent reservations on an iSCSI LUN (DESIGN §4, the fence_scsi
 * model): read keys and reservation, register, reserve, preempt (with the
 * abort variant where the target has it), and the claim a host makes on a
 * volume after each login. Keys are 4 bytes of the cluster name's hash and
 * the 4-byte node id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <zlib.h>

#include "common.h"
#include "storage.h"

#define PR_IN_LENGTH	(8 + 8 * PR_MAX_KEYS)

enum pr_step {
	PR_STEP_READ_KEYS,
	PR_STEP_READ_RESERVATION,
	PR_STEP_OUT,
	PR_STEP_OUT_FALLBACK,		/* PREEMPT after PREEMPT AND ABORT */
	PR_STEP_CLAIM_REGISTER,
	PR_STEP_CLAIM_READ,
	PR_STEP_CLAIM_TAKE,
	PR_STEP_CLAIM_VERIFY,
};

struct pr_op {
	struct blockdev		*dev;
	enum pr_step		 step;
	int			 sa;		/* PR OUT service action */
	int			 type;
	struct scsi_persistent_reserve_out_basic params;
	uint64_t		 key;
	struct pr_status	 status;
	int			 aborted;	/* PREEMPT AND ABORT worked */
	blockdev_cb		 cb;
	pr_status_cb		 status_cb;
	void			*arg;
};

static void	pr_op_next(int result, struct scsi_task *, void *);

/*
 * Reservation keys (DESIGN §4): the low 32 bits are the node id (tests and
 * operators read a key's host from its tail), the high 32 bits a tag. With
 * the cluster's secret installed (pr_key_load: corosync's authkey, root-only
 * and the same on every member) the tag is HMAC-SHA256(secret, "haven-pr"
 * cluster node), different per node and not computable outside the cluster,
 * so a key cannot be guessed to register, or preempt a host's key with
 * (issue 15). Without it, the tag is the CRC-32 of the cluster name, as
 * before, which anyone who knows the name can compute.
 */
static uint8_t	 pr_secret[SHA256_SIZE];
static int	 pr_secret_set;

uint64_t
pr_key(const char *cluster_name, uint32_t node_id)
{
	uint8_t		 msg[128], mac[SHA256_SIZE];
	size_t		 n = strnlen(cluster_name, 64);
	uint32_t	 h;

	if (!pr_secret_set) {
		h = (uint32_t)crc32(0, (const Bytef *)cluster_name, (uInt)n);
		return (uint64_t)h << 32 | node_id;
	}
	memcpy(msg, "haven-pr", 9);
	memcpy(msg + 9, cluster_name, n);
	msg[9 + n] = '\0';
	be32_put(msg + 10 + n, node_id);
	sha256_hmac(pr_secret, sizeof pr_secret, msg, 14 + n, mac);
	h = be32_get(mac);
	explicit_bzero(mac, sizeof mac);
	return (uint64_t)h << 32 | node_id;
}

int
pr_key_secret_installed(void)
{
	return pr_secret_set;
}

/* The secret is the SHA-256 of the cluster's secret file
 * (secret_file_hash). */
int
pr_key_load(const char *path, char *err, size_t errlen)
{
	if (secret_file_hash(path, pr_secret, err, errlen) == -1)
		return -1;
	pr_secret_set = 1;
	return 0;
}

static struct scsi_task *
pr_submit_in(struct iscsi_context *ctx, int lun,
    void (*cb)(struct iscsi_context *, int, void *, void *), void *priv,
    void *arg)
{
	struct pr_op	*op = arg;

	return iscsi_persistent_reserve_in_task(ctx, lun,
	    op->step == PR_STEP_READ_KEYS || op->step == PR_STEP_CLAIM_VERIFY ?
	    SCSI_PERSISTENT_RESERVE_READ_KEYS :
	    SCSI_PERSISTENT_RESERVE_READ_RESERVATION, PR_IN_LENGTH, cb, priv);
}

static struct scsi_task *
pr_submit_out(struct iscsi_context *ctx, int lun,
    void (*cb)(struct iscsi_context *, int, void *, void *), void *priv,
    void *arg)
{
	struct pr_op	*op = arg;

	return iscsi_persistent_reserve_out_task(ctx, lun, op->sa,
	    SCSI_PERSISTENT_RESERVE_SCOPE_LU, op->type, &op->params, cb, priv);
}

static struct pr_op *
pr_op_new(struct blockdev *dev, void *arg)
{
	struct pr_op	*op;

	if ((op = calloc(1, sizeof *op)) == NULL)
		abort();
	op->dev = dev;
	op->arg = arg;
	return op;
}

/* Start op at a PR OUT with the given action and keys. */
static void
pr_op_out(struct pr_op *op, int sa, int type, uint64_t key, uint64_t sa_key)
{
	op->sa = sa;
	op->type = type;
	memset(&op->params, 0, sizeof op->params);
	op->params.reservation_key = key;
	op->params.service_action_reservation_key = sa_key;
	iscsi_raw(op->dev, pr_submit_out, pr_op_next, op);
}

static void
pr_op_finish(struct pr_op *op, int result)
{
	if (op->status_cb != NULL)
		op->status_cb(result, result == 0 ? &op->status : NULL,
		    op->arg);
	else
		op->cb(result, op->arg);
	free(op);
}

/*
 * Parse PERSISTENT RESERVE IN data ourselves (SPC-4 6.16): it comes from
 * the target, so every length is checked against what arrived.
 */
static int
pr_status_add(struct pr_op *op, struct scsi_task *task)
{
	const uint8_t	*p;
	size_t		 size, i;
	uint32_t	 length;

	if (task == NULL || task->datain.size < 8)
		return STORAGE_E_SCSI;
	p = task->datain.data;
	size = (size_t)task->datain.size;
	op->status.generation = be32_get(p);
	length = be32_get(p + 4);
	if (op->step == PR_STEP_READ_KEYS ||
	    op->step == PR_STEP_CLAIM_VERIFY) {
		op->status.nkeys = 0;
		for (i = 0; i < length / 8 && 8 + i * 8 + 8 <= size &&
		    i < PR_MAX_KEYS; i++)
			op->status.keys[op->status.nkeys++] =
			    be64_get(p + 8 + i * 8);
		return 0;
	}
	/* Additional length 0: registrations may exist, no reservation. */
	op->status.reserved = length >= 16 && size >= 22;
	op->status.holder = op->status.reserved ? be64_get(p + 8) : 0;
	op->status.type = op->status.reserved ? p[21] & 0x0f : 0;
	return 0;
}

static int
pr_status_has_key(const struct pr_status *s, uint64_t key)
{
	size_t	i;

	for (i = 0; i < s->nkeys; i++) {
		if (s->keys[i] == key)
			return 1;
	}
	return 0;
}

/* One state machine for every PR operation; each step is one command. */
static void
pr_op_next(int result, struct scsi_task *task, void *arg)
{
	struct pr_op	*op = arg;

	log_scoped(LOG_LEVEL_DEBUG, "pr", op->dev->name, "step %d: %s",
	    op->step, storage_strerror(result));
	switch (op->step) {
	case PR_STEP_READ_KEYS:
		if (result == 0)
			result = pr_status_add(op, task);
		if (result != 0)
			break;
		op->step = PR_STEP_READ_RESERVATION;
		iscsi_raw(op->dev, pr_submit_in, pr_op_next, op);
		return;
	case PR_STEP_READ_RESERVATION:
		if (result == 0)
			result = pr_status_add(op, task);
		break;
	case PR_STEP_OUT:
		if (result == -EINVAL &&
		    op->sa == SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT) {
			/* tgt lacks the abort variant: plain PREEMPT, and the
			 * caller waits out the grace before writing. */
			log_scoped(LOG_LEVEL_INFO, "pr", op->dev->name,
			    "PREEMPT AND ABORT refused; using PREEMPT");
			op->step = PR_STEP_OUT_FALLBACK;
			pr_op_out(op, SCSI_PERSISTENT_RESERVE_PREEMPT, op->type,
			    op->params.reservation_key,
			    op->params.service_action_reservation_key);
			return;
		}
		op->aborted = op->sa ==
		    SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT && result == 0;
		break;
	case PR_STEP_OUT_FALLBACK:
		break;
	case PR_STEP_CLAIM_REGISTER:
		if (result != 0)
			break;
		op->step = PR_STEP_CLAIM_READ;
		iscsi_raw(op->dev, pr_submit_in, pr_op_next, op);
		return;
	case PR_STEP_CLAIM_READ:
		if (result == 0)
			result = pr_status_add(op, task);
		if (result != 0)
			break;
		op->step = PR_STEP_CLAIM_TAKE;
		if (!op->status.reserved) {
			pr_op_out(op, SCSI_PERSISTENT_RESERVE_RESERVE,
			    PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY, op->key, 0);
			return;
		}
		if (op->status.holder == op->key) {
			/* Held under our key, maybe by an old nexus of ours:
			 * take it over, which drops our stale registrations
			 * (tgt keeps them after a logout). */
			pr_op_out(op, SCSI_PERSISTENT_RESERVE_PREEMPT,
			    op->status.type, op->key, op->key);
			return;
		}
		/* Another host's key holds it: as a registrant under
		 * Registrants Only we may write; nothing to take. */
		pr_op_next(0, NULL, op);
		return;
	case PR_STEP_CLAIM_TAKE:
		if (result != 0)
			break;
		op->step = PR_STEP_CLAIM_VERIFY;
		iscsi_raw(op->dev, pr_submit_in, pr_op_next, op);
		return;
	case PR_STEP_CLAIM_VERIFY:
		if (result == 0)
			result = pr_status_add(op, task);
		if (result == 0 && !pr_status_has_key(&op->status, op->key))
			result = STORAGE_E_RESERVATION;
		break;
	}
	pr_op_finish(op, result);
}

void
pr_read(struct blockdev *dev, pr_status_cb cb, void *arg)
{
	struct pr_op	*op = pr_op_new(dev, arg);

	op->status_cb = cb;
	op->step = PR_STEP_READ_KEYS;
	iscsi_raw(dev, pr_submit_in, pr_op_next, op);
}

/* REGISTER old → new (new 0 unregisters), or REGISTER AND IGNORE EXISTING
 * KEY, which works from a fresh nexus whatever is registered. */
void
pr_register(struct blockdev *dev, uint64_t old_key, uint64_t new_key,
    int ignore_existing, blockdev_cb cb, void *arg)
{
	struct pr_op	*op = pr_op_new(dev, arg);

	op->cb = cb;
	op->step = PR_STEP_OUT;
	pr_op_out(op, ignore_existing ?
	    SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY :
	    SCSI_PERSISTENT_RESERVE_REGISTER, 0, old_key, new_key);
}

void
pr_reserve(struct blockdev *dev, uint64_t key, int type, blockdev_cb cb,
    void *arg)
{
	struct pr_op	*op = pr_op_new(dev, arg);

	op->cb = cb;
	op->step = PR_STEP_OUT;
	pr_op_out(op, SCSI_PERSISTENT_RESERVE_RESERVE, type, key, 0);
}

/*
 * Remove victim's registrations (and take its reservation if it holds
 * one). With abort_tasks, PREEMPT AND ABORT first, falling back to PREEMPT
 * where the target refuses it (tgt); pr_preempt_sync says which it was.
 */
static struct pr_op *
pr_preempt_op(struct blockdev *dev, uint64_t key, uint64_t victim, int type,
    int abort_tasks, blockdev_cb cb, void *arg)
{
	struct pr_op	*op = pr_op_new(dev, arg);

	op->cb = cb;
	op->step = PR_STEP_OUT;
	pr_op_out(op, abort_tasks ? SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT :
	    SCSI_PERSISTENT_RESERVE_PREEMPT, type, key, victim);
	return op;
}

void
pr_preempt(struct blockdev *dev, uint64_t key, uint64_t victim, int type,
    int abort_tasks, blockdev_cb cb, void *arg)
{
	pr_preempt_op(dev, key, victim, type, abort_tasks, cb, arg);
}

/*
 * What a host does after each login to a volume it may write: register
 * its key on this nexus, make sure a Registrants Only reservation exists
 * (taking it over from our own stale nexus if need be), and verify.
 */
/* Over several paths (multipath.c): the claim on one, then the key on
 * every other path's nexus. */
struct pr_mpath_claim {
	struct blockdev	*dev;
	blockdev_cb	 cb;
	void		*arg;
};

static void
pr_mpath_claimed(int result, void *arg)
{
	struct pr_mpath_claim	*c = arg;

	if (result != 0)
		c->cb(result, c->arg);
	else
		mpath_claimed(c->dev, c->cb, c->arg);
	free(c);
}

void
pr_claim(struct blockdev *dev, uint64_t key, blockdev_cb cb, void *arg)
{
	struct pr_op		*op;
	struct pr_mpath_claim	*c;

	if (mpath_is(dev)) {
		if ((c = calloc(1, sizeof *c)) == NULL)
			abort();
		c->dev = dev;
		c->cb = cb;
		c->arg = arg;
		cb = pr_mpath_claimed;
		arg = c;
	}
	op = pr_op_new(dev, arg);

	op->cb = cb;
	op->key = key;
	op->step = PR_STEP_CLAIM_REGISTER;
	pr_op_out(op, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
	    0, 0, key);
}

/* --- synchronous wrappers (havenctl, tests) ------------------------------ */

struct pr_sync {
	int			 done;
	int			 result;
	struct pr_status	*status;
};

static void
pr_sync_cb(int result, void *arg)
{
	struct pr_sync	*s = arg;

	s->result = result;
	s->done = 1;
}

static void
pr_sync_status_cb(int result, const struct pr_status *status, void *arg)
{
	struct pr_sync	*s = arg;

	if (status != NULL)
		*s->status = *status;
	s->result = result;
	s->done = 1;
}

static int
pr_sync_wait(struct blockdev *dev, struct pr_sync *s)
{
	if (storage_wait(dev->base, &s->done) == -1)
		return -EIO;
	return s->result;
}

int
pr_read_sync(struct blockdev *dev, struct pr_status *status)
{
	struct pr_sync	s = { 0, 0, status };

	memset(status, 0, sizeof *status);
	pr_read(dev, pr_sync_status_cb, &s);
	return pr_sync_wait(dev, &s);
}

int
pr_register_sync(struct blockdev *dev, uint64_t old_key, uint64_t new_key,
    int ignore_existing)
{
	struct pr_sync	s = { 0, 0, NULL };

	pr_register(dev, old_key, new_key, ignore_existing, pr_sync_cb, &s);
	return pr_sync_wait(dev, &s);
}

int
pr_reserve_sync(struct blockdev *dev, uint64_t key, int type)
{
	struct pr_sync	s = { 0, 0, NULL };

	pr_reserve(dev, key, type, pr_sync_cb, &s);
	return pr_sync_wait(dev, &s);
}

struct pr_preempt_sync {
	struct pr_sync	 sync;
	struct pr_op	*op;
	int		 aborted;
};

static void
pr_preempt_sync_cb(int result, void *arg)
{
	struct pr_preempt_sync	*p = arg;

	/* The op is freed after this returns; read what we need now. */
	p->aborted = p->op->aborted;
	pr_sync_cb(result, &p->sync);
}

int
pr_preempt_sync(struct blockdev *dev, uint64_t key, uint64_t victim,
    int type, int abort_tasks, int *aborted)
{
	struct pr_preempt_sync	p = { { 0, 0, NULL }, NULL, 0 };

	p.op = pr_preempt_op(dev, key, victim, type, abort_tasks,
	    pr_preempt_sync_cb, &p);
	if (pr_sync_wait(dev, &p.sync) == 0 && aborted != NULL)
		*aborted = p.aborted;
	return p.sync.result;
}

int
pr_claim_sync(struct blockdev *dev, uint64_t key)
{
	struct pr_sync	s = { 0, 0, NULL };

	pr_claim(dev, key, pr_sync_cb, &s);
	return pr_sync_wait(dev, &s);
}
