/*
 * An iSCSI LUN as a block device: libiscsi, fully asynchronous on the
 * process's libevent base. Commands are pipelined up to a queue depth; unit
 * attentions are retried, except those that say we were fenced; a
 * reconnect is a new nexus, so I/O is held until the owner grants a new
 * registration (DESIGN §4). Once fenced, the device fails all I/O for good.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common.h"
#include "storage.h"

#define ISCSI_RETRIES		8	/* per command, for UAs and BUSY */
#define ISCSI_TICK_MS		1000	/* drives libiscsi timeouts, reconnects */
#define ISCSI_BACKOFF_MS	100	/* while libiscsi waits to reconnect */
#define ISCSI_ZERO_CHUNK	(1U << 20)	/* per zeroing command */

/* Unit attention ASC/ASCQ values that matter (platform.md §4.4). */
#define ASCQ_POWER_ON_RESET		0x2900
#define ASCQ_RESERVATIONS_PREEMPTED	0x2a03
#define ASCQ_REGISTRATIONS_PREEMPTED	0x2a05

enum iscsi_cmd_kind {
	ISCSI_CMD_READ,
	ISCSI_CMD_WRITE,
	ISCSI_CMD_FLUSH,
	ISCSI_CMD_ZERO,
	ISCSI_CMD_RAW,
};

struct iscsi_cmd {
	TAILQ_ENTRY(iscsi_cmd)	 entry;
	struct iscsi_dev	*dev;
	enum iscsi_cmd_kind	 kind;
	uint64_t		 offset;
	void			*buf;
	size_t			 len;
	unsigned		 flags;
	struct scsi_iovec	 iov;
	int			 retries;
	int			 zero_fallback;	/* WRITE SAME refused */
	blockdev_cb		 cb;
	void			*arg;
	iscsi_raw_submit	 raw_submit;
	iscsi_raw_done		 raw_done;
	void			*raw_arg;
};
TAILQ_HEAD(iscsi_cmd_list, iscsi_cmd);

struct iscsi_dev {
	struct blockdev		 dev;
	struct iscsi_context	*ctx;
	int			 lun;
	char			 portal[256];
	struct event		*fd_event;
	int			 fd_events;	/* what fd_event waits for */
	int			 fd;
	struct ev_timer		*tick;
	struct ev_timer		*retry_timer;
	struct iscsi_cmd_list	 pending;	/* not yet submitted */
	struct iscsi_cmd_list	 held;		/* wait for re-registration */
	struct iscsi_cmd_list	 retry;		/* wait for back-off */
	unsigned		 in_flight;
	unsigned		 queue_depth;
	int			 connected;
	int			 in_service;	/* inside iscsi_service() */
	int			 closing;	/* close once service returns */
	int			 fenced;	/* latched: all I/O fails */
	int			 nexus_reset;	/* 29/00 seen since register */
	int			 registering;
	uint64_t		 key;
	iscsi_register_ask	 ask;
	void			*ask_arg;
	iscsi_fenced_cb		 fenced_cb;
	void			*fenced_arg;
	uint8_t			*zero_block;
	/* open */
	iscsi_open_cb		 open_cb;
	void			*open_arg;
	struct ev_timer		*open_timer;
	int			 login_done;
	/* Where a login, a lost session or a failed command is logged:
	 * warnings, or debug for a prober that reports them itself. */
	enum log_level		 link_level;
};

static void	iscsi_dev_update_events(struct iscsi_dev *);
static void	iscsi_cmd_done(struct iscsi_cmd *, int result,
		    struct scsi_task *);
static void	iscsi_dev_kick(struct iscsi_dev *);

/* --- the event loop side ------------------------------------------------ */

/* Latch: from now on every command fails. Tell the owner once. */
static void
iscsi_dev_fence(struct iscsi_dev *d, int why)
{
	if (d->fenced)
		return;
	d->fenced = 1;
	log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
	    "fenced: %s; all further I/O fails", storage_strerror(why));
	if (d->fenced_cb != NULL)
		d->fenced_cb(&d->dev, why, d->fenced_arg);
}

static void	iscsi_destroy(struct iscsi_dev *);

/*
 * Callbacks run inside iscsi_service(); a close requested there (by a
 * failed login or an owner reacting to a fence) waits until it returns,
 * since libiscsi still uses its context.
 */
static int
iscsi_dev_service(struct iscsi_dev *d, int revents)
{
	int	r;

	d->in_service++;
	r = iscsi_service(d->ctx, revents);
	d->in_service--;
	if (d->closing) {
		iscsi_destroy(d);
		return -1;
	}
	if (r < 0) {
		log_scoped(d->link_level, "iscsi", d->dev.name,
		    "session error: %s", iscsi_get_error(d->ctx));
	}
	iscsi_dev_update_events(d);
	return 0;
}

static void
iscsi_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct iscsi_dev	*d = arg;
	int			 revents = 0;

	if (what & EV_READ)
		revents |= POLLIN;
	if (what & EV_WRITE)
		revents |= POLLOUT;
	iscsi_dev_service(d, revents);
}

/*
 * Re-arm the fd event after every service or submit: libiscsi wants
 * POLLOUT only while it has something to send, and after a reconnect the
 * fd number stays but the socket under it changes.
 */
static void
iscsi_dev_update_events(struct iscsi_dev *d)
{
	int	want = iscsi_which_events(d->ctx), fd = iscsi_get_fd(d->ctx);
	short	what = 0;

	if (want & POLLIN)
		what |= EV_READ;
	if (want & POLLOUT)
		what |= EV_WRITE;
	if (fd == d->fd && what == d->fd_events && d->fd_event != NULL)
		return;
	if (d->fd_event != NULL) {
		event_free(d->fd_event);
		d->fd_event = NULL;
	}
	d->fd = fd;
	d->fd_events = what;
	if (fd < 0 || what == 0) {
		/* Reconnect back-off: poll again soon. */
		ev_timer_arm(d->tick, ISCSI_BACKOFF_MS);
		return;
	}
	d->fd_event = event_new(d->dev.base, fd, what | EV_PERSIST,
	    iscsi_fd_cb, d);
	if (d->fd_event != NULL)
		event_add(d->fd_event, NULL);
}

static void
iscsi_tick_cb(void *arg)
{
	struct iscsi_dev	*d = arg;

	if (iscsi_dev_service(d, 0) == 0)
		ev_timer_arm(d->tick, ISCSI_TICK_MS);
}

/* --- commands ------------------------------------------------------------ */

static void
iscsi_task_cb(struct iscsi_context *ctx, int status, void *data, void *arg)
{
	struct iscsi_cmd	*cmd = arg;
	struct iscsi_dev	*d = cmd->dev;
	struct scsi_task	*task = data;
	int			 ascq, result = 0;

	d->in_flight--;
	if (d->closing) {
		/* The device is going away: the owner asked for it. */
		if (task != NULL)
			scsi_free_scsi_task(task);
		if (cmd->kind == ISCSI_CMD_RAW)
			cmd->raw_done(-ECANCELED, NULL, cmd->raw_arg);
		else
			cmd->cb(-ECANCELED, cmd->arg);
		free(cmd);
		return;
	}
	switch (status) {
	case SCSI_STATUS_GOOD:
		break;
	case SCSI_STATUS_CHECK_CONDITION:
		ascq = task->sense.ascq;
		if (task->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
			if (ascq == ASCQ_RESERVATIONS_PREEMPTED ||
			    ascq == ASCQ_REGISTRATIONS_PREEMPTED) {
				result = STORAGE_E_PREEMPTED;
				break;
			}
			if ((ascq & 0xff00) == ASCQ_POWER_ON_RESET)
				d->nexus_reset = 1;
			if (cmd->retries++ < ISCSI_RETRIES) {
				scsi_free_scsi_task(task);
				TAILQ_INSERT_HEAD(&d->pending, cmd, entry);
				iscsi_dev_kick(d);
				return;
			}
			result = STORAGE_E_SCSI;
			break;
		}
		if (task->sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
		    cmd->kind == ISCSI_CMD_ZERO && !cmd->zero_fallback) {
			/* No WRITE SAME here: write zero buffers instead. */
			cmd->zero_fallback = 1;
			scsi_free_scsi_task(task);
			TAILQ_INSERT_HEAD(&d->pending, cmd, entry);
			iscsi_dev_kick(d);
			return;
		}
		if (ascq == 0x2400 || ascq == 0x2600 || ascq == 0x2000)
			result = -EINVAL;
		else if (ascq == 0x2100)
			result = -ENOSPC;
		else if (task->sense.key == SCSI_SENSE_MEDIUM_ERROR)
			result = -EIO;
		else
			result = STORAGE_E_SCSI;
		log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
		    "check condition: sense key 0x%x, ASC/ASCQ 0x%04x",
		    task->sense.key, ascq);
		break;
	case SCSI_STATUS_RESERVATION_CONFLICT:
		result = STORAGE_E_RESERVATION;
		break;
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
	case SCSI_STATUS_CANCELLED:
		if (task != NULL)
			scsi_free_scsi_task(task);
		if (cmd->retries++ < ISCSI_RETRIES) {
			TAILQ_INSERT_TAIL(&d->retry, cmd, entry);
			ev_timer_arm(d->retry_timer, 10U << cmd->retries);
			return;
		}
		iscsi_cmd_done(cmd, status == SCSI_STATUS_CANCELLED ? -EIO :
		    -EBUSY, NULL);
		return;
	case SCSI_STATUS_TIMEOUT:
		result = STORAGE_E_TIMEOUT;
		break;
	default:
		log_scoped(d->link_level, "iscsi", d->dev.name,
		    "command failed: %s", iscsi_get_error(ctx));
		result = -EIO;
		break;
	}

	/*
	 * A conflict right after a new nexus (29/00) is not a fence: the
	 * reconnect lost our registration. Hold the command and ask the
	 * owner for a new grant. Anything else is a fence, for good.
	 */
	if (result == STORAGE_E_RESERVATION && cmd->kind != ISCSI_CMD_RAW &&
	    d->nexus_reset && d->ask != NULL && !d->fenced) {
		scsi_free_scsi_task(task);
		TAILQ_INSERT_TAIL(&d->held, cmd, entry);
		if (!d->registering) {
			d->registering = 1;
			log_scoped(LOG_LEVEL_INFO, "iscsi", d->dev.name,
			    "new nexus after reconnect; asking to register "
			    "again");
			d->ask(&d->dev, d->ask_arg);
		}
		return;
	}
	if ((result == STORAGE_E_RESERVATION || result == STORAGE_E_PREEMPTED)
	    && cmd->kind != ISCSI_CMD_RAW)
		iscsi_dev_fence(d, result);
	iscsi_cmd_done(cmd, result, task);
}

static void
iscsi_cmd_done(struct iscsi_cmd *cmd, int result, struct scsi_task *task)
{
	struct iscsi_dev	*d = cmd->dev;

	if (cmd->kind == ISCSI_CMD_RAW)
		cmd->raw_done(result, task, cmd->raw_arg);
	else
		cmd->cb(result, cmd->arg);
	if (task != NULL)
		scsi_free_scsi_task(task);
	free(cmd);
	iscsi_dev_kick(d);
}

static struct scsi_task *
iscsi_cmd_task(struct iscsi_cmd *cmd)
{
	struct iscsi_dev	*d = cmd->dev;
	uint32_t		 bs = d->dev.block_size, blocks;
	uint64_t		 lba = cmd->offset / bs;

	switch (cmd->kind) {
	case ISCSI_CMD_READ:
		cmd->iov.iov_base = cmd->buf;
		cmd->iov.iov_len = cmd->len;
		return iscsi_read16_iov_task(d->ctx, d->lun, lba,
		    (uint32_t)cmd->len, (int)bs, 0, 0, 0, 0, 0, iscsi_task_cb,
		    cmd, &cmd->iov, 1);
	case ISCSI_CMD_WRITE:
		cmd->iov.iov_base = cmd->buf;
		cmd->iov.iov_len = cmd->len;
		return iscsi_write16_iov_task(d->ctx, d->lun, lba, NULL,
		    (uint32_t)cmd->len, (int)bs, 0, 0,
		    (cmd->flags & BLOCKDEV_FUA) ? 1 : 0, 0, 0, iscsi_task_cb,
		    cmd, &cmd->iov, 1);
	case ISCSI_CMD_FLUSH:
		return iscsi_synchronizecache16_task(d->ctx, d->lun, 0, 0, 0,
		    0, iscsi_task_cb, cmd);
	case ISCSI_CMD_ZERO:
		blocks = (uint32_t)(cmd->len / bs);
		if (cmd->zero_fallback) {
			return iscsi_write16_task(d->ctx, d->lun, lba,
			    d->zero_block, (uint32_t)cmd->len, (int)bs, 0, 0,
			    (cmd->flags & BLOCKDEV_FUA) ? 1 : 0, 0, 0,
			    iscsi_task_cb, cmd);
		}
		return iscsi_writesame16_task(d->ctx, d->lun, lba,
		    d->zero_block, bs, blocks, 0, 1, 0, 0, iscsi_task_cb, cmd);
	case ISCSI_CMD_RAW:
		return cmd->raw_submit(d->ctx, d->lun, iscsi_task_cb, cmd,
		    cmd->raw_arg);
	}
	return NULL;
}

/* Submit pending commands while the queue depth allows. */
static void
iscsi_dev_kick(struct iscsi_dev *d)
{
	struct iscsi_cmd	*cmd;

	while (d->connected && d->in_flight < d->queue_depth &&
	    (cmd = TAILQ_FIRST(&d->pending)) != NULL) {
		TAILQ_REMOVE(&d->pending, cmd, entry);
		if (d->fenced && cmd->kind != ISCSI_CMD_RAW) {
			iscsi_cmd_done(cmd, STORAGE_E_RESERVATION, NULL);
			continue;
		}
		if (iscsi_cmd_task(cmd) == NULL) {
			log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
			    "cannot queue a command: %s",
			    iscsi_get_error(d->ctx));
			iscsi_cmd_done(cmd, -ENOMEM, NULL);
			continue;
		}
		d->in_flight++;
	}
	iscsi_dev_update_events(d);
}

static void
iscsi_retry_cb(void *arg)
{
	struct iscsi_dev	*d = arg;

	TAILQ_CONCAT(&d->pending, &d->retry, entry);
	iscsi_dev_kick(d);
}

static struct iscsi_cmd *
iscsi_cmd_new(struct iscsi_dev *d, enum iscsi_cmd_kind kind)
{
	struct iscsi_cmd	*cmd;

	if ((cmd = calloc(1, sizeof *cmd)) == NULL)
		abort();
	cmd->dev = d;
	cmd->kind = kind;
	return cmd;
}

static void
iscsi_cmd_queue(struct iscsi_cmd *cmd)
{
	TAILQ_INSERT_TAIL(&cmd->dev->pending, cmd, entry);
	iscsi_dev_kick(cmd->dev);
}

static void
iscsi_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct iscsi_cmd	*cmd = iscsi_cmd_new(dev->impl, ISCSI_CMD_READ);

	cmd->offset = offset;
	cmd->buf = buf;
	cmd->len = len;
	cmd->cb = cb;
	cmd->arg = arg;
	iscsi_cmd_queue(cmd);
}

static void
iscsi_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct iscsi_cmd	*cmd = iscsi_cmd_new(dev->impl, ISCSI_CMD_WRITE);

	cmd->offset = offset;
	cmd->buf = (void *)(uintptr_t)buf;
	cmd->len = len;
	cmd->flags = flags;
	cmd->cb = cb;
	cmd->arg = arg;
	iscsi_cmd_queue(cmd);
}

static void
iscsi_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct iscsi_cmd	*cmd = iscsi_cmd_new(dev->impl, ISCSI_CMD_FLUSH);

	cmd->cb = cb;
	cmd->arg = arg;
	iscsi_cmd_queue(cmd);
}

/* Zeroing is split into chunks that complete one parent request. */
struct iscsi_zero {
	blockdev_cb	 cb;
	void		*arg;
	unsigned	 left;
	int		 result;
};

static void
iscsi_zero_part_cb(int result, void *arg)
{
	struct iscsi_zero	*z = arg;

	if (result != 0 && z->result == 0)
		z->result = result;
	if (--z->left > 0)
		return;
	z->cb(z->result, z->arg);
	free(z);
}

static void
iscsi_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct iscsi_dev	*d = dev->impl;
	struct iscsi_zero	*z;
	struct iscsi_cmd	*cmd;
	uint64_t		 chunk;

	if (len == 0) {
		blockdev_complete_later(dev, cb, arg, 0);
		return;
	}
	if ((z = calloc(1, sizeof *z)) == NULL)
		abort();
	z->cb = cb;
	z->arg = arg;
	z->left = (unsigned)((len + ISCSI_ZERO_CHUNK - 1) / ISCSI_ZERO_CHUNK);
	while (len > 0) {
		/* Chunks fit the zero buffer, in case WRITE SAME is
		 * refused and we fall back to plain writes. */
		chunk = len < ISCSI_ZERO_CHUNK ? len : ISCSI_ZERO_CHUNK;
		cmd = iscsi_cmd_new(d, ISCSI_CMD_ZERO);
		cmd->offset = offset;
		cmd->len = (size_t)chunk;
		cmd->flags = flags;
		cmd->cb = iscsi_zero_part_cb;
		cmd->arg = z;
		TAILQ_INSERT_TAIL(&d->pending, cmd, entry);
		offset += chunk;
		len -= chunk;
	}
	iscsi_dev_kick(d);
}

static void
iscsi_fail_list(struct iscsi_dev *d, struct iscsi_cmd_list *list, int result)
{
	struct iscsi_cmd	*cmd;

	while ((cmd = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, cmd, entry);
		if (cmd->kind == ISCSI_CMD_RAW)
			cmd->raw_done(result, NULL, cmd->raw_arg);
		else
			cmd->cb(result, cmd->arg);
		free(cmd);
	}
}

/*
 * Close: commands not yet at the target and those in flight complete with
 * -ECANCELED (close a device when idle to avoid that).
 */
static void
iscsi_close(struct blockdev *dev)
{
	struct iscsi_dev	*d = dev->impl;

	if (d->closing)
		return;
	d->connected = 0;
	d->closing = 1;
	iscsi_fail_list(d, &d->pending, -ECANCELED);
	iscsi_fail_list(d, &d->held, -ECANCELED);
	iscsi_fail_list(d, &d->retry, -ECANCELED);
	if (!d->in_service)
		iscsi_destroy(d);
}

static void
iscsi_destroy(struct iscsi_dev *d)
{
	if (d->fd_event != NULL)
		event_free(d->fd_event);
	ev_timer_free(d->tick);
	ev_timer_free(d->retry_timer);
	ev_timer_free(d->open_timer);
	if (d->ctx != NULL)
		iscsi_destroy_context(d->ctx);	/* cancels in-flight tasks */
	blockdev_fini(&d->dev);
	free(d->zero_block);
	free(d);
}

static const struct blockdev_ops iscsi_ops = {
	.kind = "iscsi",
	.read = iscsi_read,
	.write = iscsi_write,
	.flush = iscsi_flush,
	.zero = iscsi_zero,
	.close = iscsi_close,
};

/* --- raw commands (persistent reservations, pr.c) ------------------------ */

void
iscsi_raw(struct blockdev *dev, iscsi_raw_submit submit, iscsi_raw_done done,
    void *arg)
{
	struct iscsi_cmd	*cmd;

	if (mpath_is(dev)) {
		mpath_raw(dev, submit, done, arg);
		return;
	}
	cmd = iscsi_cmd_new(dev->impl, ISCSI_CMD_RAW);
	cmd->raw_submit = submit;
	cmd->raw_done = done;
	cmd->raw_arg = arg;
	iscsi_cmd_queue(cmd);
}

int
iscsi_is_iscsi(const struct blockdev *dev)
{
	return dev->ops == &iscsi_ops || mpath_is(dev);
}

int
iscsi_is_fenced(const struct blockdev *dev)
{
	const struct iscsi_dev	*d = dev->impl;

	if (mpath_is(dev))
		return mpath_is_fenced(dev);
	return dev->ops == &iscsi_ops && d->fenced;
}

/* Called once, when the device becomes fenced (the owner stops its VM). */
void
iscsi_set_fenced_cb(struct blockdev *dev, iscsi_fenced_cb cb, void *arg)
{
	struct iscsi_dev	*d = dev->impl;

	if (mpath_is(dev)) {
		mpath_set_fenced_cb(dev, cb, arg);
		return;
	}
	d->fenced_cb = cb;
	d->fenced_arg = arg;
}

/*
 * The owner's key and how to ask for a grant after a reconnect. ask() is
 * called once per new nexus; the owner answers with iscsi_register_answer.
 */
void
iscsi_set_registration(struct blockdev *dev, uint64_t key,
    iscsi_register_ask ask, void *arg)
{
	struct iscsi_dev	*d = dev->impl;

	if (mpath_is(dev)) {
		mpath_set_registration(dev, key, ask, arg);
		return;
	}
	d->key = key;
	d->ask = ask;
	d->ask_arg = arg;
	d->nexus_reset = 0;
}

static struct scsi_task *
iscsi_register_submit(struct iscsi_context *ctx, int lun, iscsi_command_cb cb,
    void *priv, void *arg)
{
	struct iscsi_dev				*d = arg;
	struct scsi_persistent_reserve_out_basic	 params;

	memset(&params, 0, sizeof params);
	params.service_action_reservation_key = d->key;
	return iscsi_persistent_reserve_out_task(ctx, lun,
	    SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
	    SCSI_PERSISTENT_RESERVE_SCOPE_LU, 0, &params, cb, priv);
}

static void
iscsi_register_done(int result, struct scsi_task *task, void *arg)
{
	struct iscsi_dev	*d = arg;

	d->registering = 0;
	if (result != 0) {
		log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
		    "registering again failed: %s", storage_strerror(result));
		iscsi_dev_fence(d, STORAGE_E_RESERVATION);
		iscsi_fail_list(d, &d->held, STORAGE_E_RESERVATION);
		return;
	}
	log_scoped(LOG_LEVEL_INFO, "iscsi", d->dev.name,
	    "registered again; resuming held I/O");
	d->nexus_reset = 0;
	TAILQ_CONCAT(&d->pending, &d->held, entry);
}

/* The owner's answer to ask(): granted → register the new nexus and
 * resume; refused → fenced, held I/O fails. */
void
iscsi_register_answer(struct blockdev *dev, int granted)
{
	struct iscsi_dev	*d = dev->impl;

	if (mpath_is(dev)) {
		mpath_register_answer(dev, granted);
		return;
	}
	if (!granted) {
		d->registering = 0;
		log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
		    "registration refused");
		iscsi_dev_fence(d, STORAGE_E_RESERVATION);
		iscsi_fail_list(d, &d->held, STORAGE_E_RESERVATION);
		return;
	}
	/* The REGISTER goes first: it is queued ahead of held I/O. */
	iscsi_raw(dev, iscsi_register_submit, iscsi_register_done, d);
}

/* A path taken down (multipath.c): reset the connection, so that the
 * kernel drops what it still holds to send instead of delivering a stale
 * write once the path heals, then close. */
void
iscsi_close_abort(struct blockdev *dev)
{
	struct iscsi_dev	*d = dev->impl;
	struct linger		 l = { 1, 0 };
	int			 fd;

	if (d->ctx != NULL && (fd = iscsi_get_fd(d->ctx)) >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	iscsi_close(dev);
}

/* --- open ----------------------------------------------------------------- */

static void
iscsi_open_finish(struct iscsi_dev *d, int result)
{
	iscsi_open_cb	 cb = d->open_cb;
	void		*arg = d->open_arg;

	d->open_cb = NULL;
	ev_timer_free(d->open_timer);
	d->open_timer = NULL;
	if (result != 0) {
		iscsi_close(&d->dev);
		cb(result, NULL, arg);
		return;
	}
	d->connected = 1;
	iscsi_dev_kick(d);
	cb(0, &d->dev, arg);
}

static void
iscsi_capacity_cb(struct iscsi_context *ctx, int status, void *data,
    void *arg)
{
	struct iscsi_dev		*d = arg;
	struct scsi_task		*task = data;
	struct scsi_readcapacity16	*rc;
	int				 result = 0;

	if (status != SCSI_STATUS_GOOD ||
	    (rc = scsi_datain_unmarshall(task)) == NULL) {
		log_scoped(d->link_level, "iscsi", d->dev.name,
		    "READ CAPACITY failed: %s", iscsi_get_error(ctx));
		result = STORAGE_E_SCSI;
	} else if (rc->block_length != 512) {
		log_scoped(LOG_LEVEL_WARN, "iscsi", d->dev.name,
		    "LUN has %u-byte logical blocks; Haven needs 512",
		    rc->block_length);
		result = STORAGE_E_UNSUPPORTED;
	} else {
		d->dev.block_size = rc->block_length;
		d->dev.size = (rc->returned_lba + 1) * rc->block_length;
	}
	if (task != NULL)
		scsi_free_scsi_task(task);
	iscsi_open_finish(d, result);
}

/*
 * libiscsi 1.19 keeps the login's status class only in its message
 * ("Failed to log in to target. Status: Authentication failure(513)"):
 * 0x0201 is CHAP refused; 0x0202 is the target's ACL, which tgt reports as
 * 0x0203, target not found, hiding the target (RFC 3720 §10.13.5).
 */
static int
iscsi_login_error(const char *message)
{
	if (message == NULL)
		return STORAGE_E_LOGIN;
	if (strstr(message, "Authentication failure") != NULL ||
	    strstr(message, "(513)") != NULL || strstr(message, "CHAP") != NULL)
		return STORAGE_E_AUTH;
	if (strstr(message, "Authorization failure") != NULL ||
	    strstr(message, "(514)") != NULL || strstr(message, "(515)") != NULL)
		return STORAGE_E_DENIED;
	return STORAGE_E_LOGIN;
}

static void
iscsi_connect_cb(struct iscsi_context *ctx, int status, void *data,
    void *arg)
{
	struct iscsi_dev	*d = arg;

	/* libiscsi may call this again when a later connection dies;
	 * reconnects are handled by the command path. */
	if (d->login_done)
		return;
	d->login_done = 1;
	if (status != SCSI_STATUS_GOOD) {
		log_scoped(d->link_level, "iscsi", d->dev.name,
		    "login failed: %s", iscsi_get_error(ctx));
		iscsi_open_finish(d, iscsi_login_error(iscsi_get_error(ctx)));
		return;
	}
	if (iscsi_readcapacity16_task(ctx, d->lun, iscsi_capacity_cb, d) ==
	    NULL) {
		iscsi_open_finish(d, -ENOMEM);
		return;
	}
	iscsi_dev_update_events(d);
}

static void
iscsi_open_timeout_cb(void *arg)
{
	struct iscsi_dev	*d = arg;

	log_scoped(d->link_level, "iscsi", d->dev.name,
	    "no answer from portal %s", d->portal);
	iscsi_open_finish(d, STORAGE_E_TIMEOUT);
}

static void
iscsi_open_fail_cb(int result, void *arg)
{
	iscsi_open_finish(arg, result);
}

/*
 * The LUN as the two bytes libiscsi writes into every PDU, which it takes
 * as given: LUNs 0-255 in the peripheral form every target expects for
 * them, larger ones in the flat space form (SAM-5, 4.7.7.3: 01b in the
 * top two bits). Passed as a bare number, LUN 257 reached LUN 1 of the
 * target (tgt reads a peripheral address's second byte alone).
 */
static int
iscsi_lun_address(int lun)
{
	return lun > 255 ? 0x4000 | lun : lun;
}

/*
 * Log in to iscsi://[user%password@]portal/iqn/lun and read its capacity.
 * cb gets the block device, or an error and NULL.
 */
void
iscsi_open(struct event_base *base, const char *url,
    const struct iscsi_options *opts, iscsi_open_cb cb, void *arg)
{
	struct iscsi_dev	*d;
	struct iscsi_url	*u = NULL;
	const char		*initiator, *chap_user, *chap_secret;
	int			 error = 0;

	if ((d = calloc(1, sizeof *d)) == NULL)
		abort();
	TAILQ_INIT(&d->pending);
	TAILQ_INIT(&d->held);
	TAILQ_INIT(&d->retry);
	d->fd = -1;
	d->open_cb = cb;
	d->open_arg = arg;
	d->queue_depth = opts->queue_depth ? opts->queue_depth : 64;
	d->link_level = opts->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN;
	d->dev.impl = d;
	d->dev.block_size = 512;
	if (blockdev_init(&d->dev, &iscsi_ops, base, url) == -1)
		abort();
	d->tick = ev_timer_new(base, 0, 0, iscsi_tick_cb, d);
	d->retry_timer = ev_timer_new(base, 0, 0, iscsi_retry_cb, d);
	d->open_timer = ev_timer_new(base, 0, 0, iscsi_open_timeout_cb, d);
	d->zero_block = calloc(1, ISCSI_ZERO_CHUNK);
	if (d->tick == NULL || d->retry_timer == NULL ||
	    d->open_timer == NULL || d->zero_block == NULL)
		abort();

	initiator = opts->initiator ? opts->initiator :
	    "iqn.2026-11.org.haven:initiator";
	if ((d->ctx = iscsi_create_context(initiator)) == NULL) {
		error = -ENOMEM;
		goto fail;
	}
	if ((u = iscsi_parse_full_url(d->ctx, url)) == NULL) {
		log_scoped(LOG_LEVEL_WARN, "iscsi", url, "bad URL: %s",
		    iscsi_get_error(d->ctx));
		error = -EINVAL;
		goto fail;
	}
	/* The URL's user%password is CHAP; keep it out of messages. */
	if (u->user[0] != '\0')
		snprintf(d->dev.name, sizeof d->dev.name, "iscsi://%.40s/%.70s/%d",
		    u->portal, u->target, u->lun);
	snprintf(d->portal, sizeof d->portal, "%s", u->portal);
	d->lun = iscsi_lun_address(u->lun);
	iscsi_set_targetname(d->ctx, u->target);
	iscsi_set_session_type(d->ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(d->ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	/* CHAP: the caller's account, the URL's, or the installed one for
	 * this target (chap.c); a target that wants none ignores it. */
	chap_user = opts->chap_user;
	chap_secret = opts->chap_secret;
	if (chap_user == NULL && u->user[0] != '\0') {
		chap_user = u->user;
		chap_secret = u->passwd;
	}
	if (chap_user == NULL && chap_find(chap_installed(), u->target,
	    &chap_user, &chap_secret) == -1)
		chap_user = NULL;
	if (chap_user != NULL && iscsi_set_initiator_username_pwd(d->ctx,
	    chap_user, chap_secret != NULL ? chap_secret : "") != 0) {
		error = -EINVAL;
		goto fail;
	}
	iscsi_set_timeout(d->ctx, opts->timeout_s ? opts->timeout_s : 10);
	if (iscsi_full_connect_async(d->ctx, u->portal, d->lun,
	    iscsi_connect_cb, d) != 0) {
		log_scoped(d->link_level, "iscsi", d->dev.name,
		    "cannot connect: %s", iscsi_get_error(d->ctx));
		error = STORAGE_E_LOGIN;
		goto fail;
	}
	iscsi_destroy_url(u);
	ev_timer_arm(d->open_timer, (uint64_t)(opts->timeout_s ?
	    opts->timeout_s : 10) * 1000);
	ev_timer_arm(d->tick, ISCSI_TICK_MS);
	iscsi_dev_update_events(d);
	return;
fail:
	if (u != NULL)
		iscsi_destroy_url(u);
	blockdev_complete_later(&d->dev, iscsi_open_fail_cb, d, error);
}

struct iscsi_open_sync {
	int		 done;
	int		 result;
	struct blockdev	*dev;
};

static void
iscsi_open_sync_cb(int result, struct blockdev *dev, void *arg)
{
	struct iscsi_open_sync	*s = arg;

	s->result = result;
	s->dev = dev;
	s->done = 1;
}

int
iscsi_open_sync(struct event_base *base, const char *url,
    const struct iscsi_options *opts, struct blockdev **out)
{
	struct iscsi_open_sync	s = { 0, 0, NULL };

	iscsi_open(base, url, opts, iscsi_open_sync_cb, &s);
	if (storage_wait(base, &s.done) == -1)
		return -EIO;
	*out = s.dev;
	return s.result;
}
