/*
 * multipath.c's paths as iSCSI sessions: one libiscsi session per portal,
 * a TEST UNIT READY as the heartbeat, REGISTER AND IGNORE EXISTING KEY for
 * a new nexus, and a reset (not a logout) for a path taken down.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common.h"
#include "storage.h"

struct mpath_iscsi {
	struct event_base	*base;
	unsigned		 n;
	char			*urls[MPATH_MAX_PATHS];
	char			*initiator, *chap_user, *chap_secret;
	struct iscsi_options	 opts;
};

static char *
mpath_iscsi_dup(const char *s)
{
	char	*d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		abort();
	return d;
}

static void
mpath_iscsi_open_path(unsigned index, int first, void *ctx, iscsi_open_cb cb,
    void *arg)
{
	struct mpath_iscsi	*c = ctx;
	struct iscsi_options	 opts = c->opts;

	/* In the background a dead portal costs only its own login. */
	if (!first)
		opts.timeout_s = MPATH_LOGIN_S;
	opts.quiet = !first;
	iscsi_open(c->base, c->urls[index], &opts, cb, arg);
}

static struct scsi_task *
mpath_iscsi_tur_submit(struct iscsi_context *ctx, int lun,
    void (*cb)(struct iscsi_context *, int, void *, void *), void *priv,
    void *arg)
{
	(void)arg;
	return iscsi_testunitready_task(ctx, lun, cb, priv);
}

struct mpath_iscsi_ping {
	blockdev_cb	 cb;
	void		*arg;
};

static void
mpath_iscsi_tur_done(int result, struct scsi_task *task, void *arg)
{
	struct mpath_iscsi_ping	*p = arg;

	(void)task;
	p->cb(result, p->arg);
	free(p);
}

static void
mpath_iscsi_ping(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct mpath_iscsi_ping	*p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		abort();
	p->cb = cb;
	p->arg = arg;
	iscsi_raw(dev, mpath_iscsi_tur_submit, mpath_iscsi_tur_done, p);
}

static void
mpath_iscsi_register(struct blockdev *dev, uint64_t key, blockdev_cb cb,
    void *arg)
{
	pr_register(dev, 0, key, 1, cb, arg);
}

static void
mpath_iscsi_attach(struct blockdev *dev, uint64_t key, iscsi_register_ask ask,
    iscsi_fenced_cb fenced, void *arg)
{
	iscsi_set_registration(dev, key, ask, arg);
	iscsi_set_fenced_cb(dev, fenced, arg);
}

static void
mpath_iscsi_release(void *ctx)
{
	struct mpath_iscsi	*c = ctx;
	unsigned		 i;

	for (i = 0; i < c->n; i++)
		free(c->urls[i]);
	free(c->initiator);
	free(c->chap_user);
	if (c->chap_secret != NULL) {
		explicit_bzero(c->chap_secret, strlen(c->chap_secret));
		free(c->chap_secret);
	}
	free(c);
}

static const struct mpath_ops mpath_iscsi_ops = {
	.open = mpath_iscsi_open_path,
	.ping = mpath_iscsi_ping,
	.register_key = mpath_iscsi_register,
	.raw = iscsi_raw,
	.attach = mpath_iscsi_attach,
	.answer = iscsi_register_answer,
	.discard = iscsi_close_abort,
	.release = mpath_iscsi_release,
};

void
mpath_iscsi_open(struct event_base *base, const char *const *urls, unsigned n,
    const struct iscsi_options *opts, iscsi_open_cb cb, void *arg)
{
	struct mpath_iscsi	*c;
	struct mpath_options	 mo = { 0, 0, 0 };
	unsigned		 i;

	if ((c = calloc(1, sizeof *c)) == NULL)
		abort();
	c->base = base;
	c->n = n < MPATH_MAX_PATHS ? n : MPATH_MAX_PATHS;
	for (i = 0; i < c->n; i++)
		c->urls[i] = mpath_iscsi_dup(urls[i]);
	c->opts = *opts;
	c->opts.initiator = c->initiator = mpath_iscsi_dup(opts->initiator);
	c->opts.chap_user = c->chap_user = mpath_iscsi_dup(opts->chap_user);
	c->opts.chap_secret = c->chap_secret =
	    mpath_iscsi_dup(opts->chap_secret);
	mpath_open(base, c->n, urls[0], &mpath_iscsi_ops, c, &mo, cb, arg);
}
