/*
 * The VM's volumes: log in (iSCSI, or a plain file), claim the reservation
 * and the lease, re-read the lease while the VM runs, ask havend before a
 * reconnected session registers again, stop at once when fenced; open the
 * VHDs for QEMU, and take the volumes over at a live switchover.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "worker.h"
#include "worker_int.h"
#include "storage.h"

/* What migrate/ needs of the VM for a move; the state is on volume 0. */
static void
worker_transfer_vm(struct worker *w)
{
	struct transfer_vm	vm = {
		.uuid = w->spec->uuid,
		.generation = w->spec->generation,
		.config_hash = w->spec->config_hash,
		.memory_mib = w->spec->memory_mib,
		.nics = w->spec->n_nics,
		.state = volume_extent(w->volumes[0].volume,
		    VOLUME_EXTENT_STATE),
	};

	transfer_set_vm(w->transfer, &vm);
}

static void
worker_lease_claimed(int result, const struct lease_record *rec, void *arg)
{
	struct worker_volume	*v = arg;
	struct worker		*w = v->w;
	char			 why[240];

	if (result == -EEXIST && rec != NULL) {
		/* The volume served another VM (issue 16): say what to do,
		 * short enough for an event's detail (160 bytes with the
		 * error's name). */
		snprintf(why, sizeof why, "VM %s holds the volume's lease: "
		    "'havenctl vm delete --wipe' it, or once deleted, "
		    "'havenctl disk wipe --vm' it", rec->vm_uuid);
		worker_fail(w, result, why);
		return;
	}
	if (result != 0) {
		worker_fail(w, result,
		    "claiming the lease");
		return;
	}
	w->opening++;
	worker_open_next(w);
}

static void
worker_claim_lease(struct worker_volume *v)
{
	struct lease_record	mine;

	memset(&mine, 0, sizeof mine);
	snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", v->w->spec->uuid);
	snprintf(mine.owner, sizeof mine.owner, "%s", v->w->spec->host_name);
	mine.node_id = v->w->spec->node_id;
	mine.generation = v->w->spec->generation;
	mine.time_us = now_us();
	lease_claim(volume_extent(v->volume, VOLUME_EXTENT_LEASE), &mine,
	    worker_lease_claimed, v);
}

static void
worker_pr_claimed(int result, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    "registering on the volume");
		return;
	}
	/* A live migration's target takes the lease at the switchover. */
	if (v->w->spec->incoming) {
		v->w->opening++;
		worker_open_next(v->w);
		return;
	}
	worker_claim_lease(v);
}

static void
worker_volume_opened(int result, struct volume *volume, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    v->ref->url);
		return;
	}
	v->volume = volume;
	if (iscsi_is_iscsi(v->dev))
		pr_claim(v->dev, v->ref->reservation_key, worker_pr_claimed, v);
	else if (v->w->spec->incoming)
		worker_pr_claimed(0, v);
	else
		worker_claim_lease(v);
}

/* After a reconnect: ask havend before registering the new nexus. */
static void
worker_register_ask(struct blockdev *dev, void *arg)
{
	struct worker_volume	*v = arg;
	Haven__RegisterRequest	 req = HAVEN__REGISTER_REQUEST__INIT;

	req.volume_uuid = (char *)v->ref->uuid;
	if (v->w->parent == NULL ||
	    channel_send_message(v->w->parent, FRAME_REGISTER_REQUEST,
	    &req.base, NULL, 0) == -1) {
		/* No havend, no grant: the volume is fenced for good. */
		iscsi_register_answer(dev, 0);
		return;
	}
	v->asking = 1;
}

/* Fenced: stop the VM at once; never register again on our own. */
static void
worker_fenced(struct blockdev *dev, int why, void *arg)
{
	struct worker_volume	*v = arg;
	struct worker		*w = v->w;

	worker_fail(w, why,
	    "fenced: QEMU killed, I/O stopped");
}

static void
worker_iscsi_opened(int result, struct blockdev *dev, void *arg)
{
	struct worker_volume	*v = arg;

	if (result != 0) {
		worker_fail(v->w, result,
		    v->ref->url);
		return;
	}
	v->dev = dev;
	iscsi_set_registration(dev, v->ref->reservation_key,
	    worker_register_ask, v);
	iscsi_set_fenced_cb(dev, worker_fenced, v);
	volume_open(dev, worker_volume_opened, v);
}

void
worker_open_next(struct worker *w)
{
	struct worker_volume	*v;
	struct iscsi_options	 opts = { 0 };
	int			 error = 0;

	if (w->opening == w->nvolumes) {
		w->ready = 1;
		worker_transfer_vm(w);
		if (!w->spec->incoming)
			ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STOPPED, 0,
		    w->spec->incoming ? "volumes open (the lease comes at the "
		    "switchover)" : "volumes open, lease held");
		if (w->queued != NULL) {
			Haven__WorkerCommand	*cmd = w->queued;

			w->queued = NULL;
			worker_command(w, cmd);
			message_free(&cmd->base);
		}
		return;
	}
	v = &w->volumes[w->opening];
	if (strncmp(v->ref->url, "iscsi://", 8) == 0) {
		opts.initiator = *w->spec->initiator ? w->spec->initiator :
		    NULL;
		if (v->ref->chap_user != NULL && *v->ref->chap_user != '\0') {
			opts.chap_user = v->ref->chap_user;
			opts.chap_secret = v->ref->chap_secret;
		}
		/* Several portals: one session per path (issue 17). */
		if (v->ref->n_urls > 1) {
			mpath_iscsi_open(w->base,
			    (const char *const *)v->ref->urls,
			    (unsigned)v->ref->n_urls, &opts,
			    worker_iscsi_opened, v);
			return;
		}
		iscsi_open(w->base, v->ref->url, &opts, worker_iscsi_opened, v);
		return;
	}
	/* A volume on a plain file: tests and single-host use. */
	if ((v->dev = file_open(w->base, v->ref->url, 1, &error)) == NULL) {
		worker_fail(w, error,
		    v->ref->url);
		return;
	}
	volume_open(v->dev, worker_volume_opened, v);
}

/* The lease, re-read while the VM runs: another host may have taken it. */
static void
worker_lease_checked(int result, const struct lease_record *rec, void *arg)
{
	struct worker	*w = arg;
	char		 why[200];

	w->lease_reading = 0;
	if (w->exiting)
		return;
	if (result == 0)
		worker_outage_probe_ok(w, w->lease_began_us);
	if (result == 0 && (rec->generation > w->spec->generation ||
	    (rec->generation == w->spec->generation &&
	    strcmp(rec->owner, w->spec->host_name) != 0))) {
		snprintf(why, sizeof why, "lease lost: %s holds generation %"
		    PRIu64, rec->owner, rec->generation);
		worker_fail(w,
		    STORAGE_E_LEASE_NEWER, why);
		return;
	}
	ev_timer_arm(w->lease_timer, WORKER_LEASE_CHECK_MS);
}

void
worker_lease_timer(void *arg)
{
	struct worker	*w = arg;

	if (w->lease_reading || w->nvolumes == 0 || w->exiting)
		return;
	w->lease_reading = 1;
	w->lease_began_us = now_us();
	lease_read(volume_extent(w->volumes[0].volume, VOLUME_EXTENT_LEASE),
	    worker_lease_checked, w);
}

/* --- the disk images ---------------------------------------------------- */

/* Open each volume's VHD (asynchronously, one after the other), then
 * the firmware's store and the cdrom (firmware.c), which spawns QEMU: cold
 * (start) or waiting for the stream (restore). */
static void
worker_vhd_opened(int result, struct blockdev *vhd, void *arg)
{
	struct worker	*w = arg;

	if (w->exiting) {		/* stopped while it opened */
		if (result == 0)
			blockdev_close(vhd);
		return;
	}
	if (result != 0) {
		worker_fail(w, result,
		    "opening the disk image");
		return;
	}
	w->volumes[w->opening++].vhd = vhd;
	if (w->opening < w->nvolumes) {
		worker_open_vhds(w);
		return;
	}
	worker_firmware_open(w);
}

void
worker_open_vhds(struct worker *w)
{
	struct worker_volume	*v = &w->volumes[w->opening];

	if (v->vhd != NULL) {
		worker_vhd_opened(0, v->vhd, w);
		return;
	}
	vhd_open(volume_extent(v->volume, VOLUME_EXTENT_DISK), 1,
	    worker_vhd_opened, w);
}

/* --- the switchover: each volume's lease, then each disk again ---------- */

static void	worker_switch_next(struct worker *);

static void
worker_switch_claimed(int result, const struct lease_record *rec, void *arg)
{
	struct worker	*w = arg;

	if (result != 0) {
		w->switch_done(result, "claiming the lease at the switchover",
		    w->switch_arg);
		return;
	}
	w->switch_next++;
	worker_switch_next(w);
}

static void
worker_switch_opened(int result, struct blockdev *vhd, void *arg)
{
	struct worker	*w = arg;
	struct blockdev	*old = NULL;
	size_t		 i = w->switch_next - w->nvolumes;
	char		 name[16];

	if (result != 0) {
		w->switch_done(result, "re-reading the disk image at the "
		    "switchover", w->switch_arg);
		return;
	}
	snprintf(name, sizeof name, "disk%zu", i);
	if ((result = nbd_server_replace_export(w->nbd, name, vhd, &old)) !=
	    0) {
		blockdev_close(vhd);
		w->switch_done(result, "serving the re-read disk image",
		    w->switch_arg);
		return;
	}
	blockdev_close(old);
	w->volumes[i].vhd = vhd;
	w->switch_next++;
	worker_switch_next(w);
}

static void
worker_switch_next(struct worker *w)
{
	struct lease_record	 mine;
	struct worker_volume	*v;

	if (w->switch_next < w->nvolumes) {
		v = &w->volumes[w->switch_next];
		memset(&mine, 0, sizeof mine);
		snprintf(mine.vm_uuid, sizeof mine.vm_uuid, "%s", w->spec->uuid);
		snprintf(mine.owner, sizeof mine.owner, "%s",
		    w->spec->host_name);
		mine.node_id = w->spec->node_id;
		mine.generation = w->spec->generation;
		mine.time_us = now_us();
		lease_claim(volume_extent(v->volume, VOLUME_EXTENT_LEASE), &mine,
		    worker_switch_claimed, w);
		return;
	}
	if (w->switch_next < 2 * w->nvolumes) {
		v = &w->volumes[w->switch_next - w->nvolumes];
		vhd_open(volume_extent(v->volume, VOLUME_EXTENT_DISK), 1,
		    worker_switch_opened, w);
		return;
	}
	w->spec->incoming = 0;
	w->switch_done(0, NULL, w->switch_arg);
}

/* The live target, handed the VM; done once, with what failed. */
void
worker_switch_volumes(struct worker *w, transfer_done_cb done, void *done_arg)
{
	w->switch_next = 0;
	w->switch_done = done;
	w->switch_arg = done_arg;
	worker_switch_next(w);
}
