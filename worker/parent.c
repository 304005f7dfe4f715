/*
 * The worker's channel to havend (fd 3, or an adopting havend's socket):
 * the VM spec and commands in, register grants answered, events out. A
 * command that comes before the volumes are open waits for them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"
#include "worker_int.h"
#include "migrate.h"
#include "storage.h"

const char *
worker_phase_name(Haven__VmPhase phase)
{
	const ProtobufCEnumValue	*v;

	v = protobuf_c_enum_descriptor_get_value(&haven__vm_phase__descriptor,
	    phase);
	return v != NULL ? v->name + strlen("VM_PHASE_") : "?";
}

static const char *
worker_strerror(int error)
{
	if (error <= -MIGRATE_ERROR_BASE)
		return migrate_strerror(error);
	return storage_strerror(error);
}

/* Tell havend: a phase, with an error (0 = none) and details. */
void
worker_report_ex(struct worker *w, Haven__VmPhase phase, int error,
    const char *detail, int received, uint64_t stopped_at_us)
{
	Haven__WorkerEvent	 ev = HAVEN__WORKER_EVENT__INIT;
	Haven__Error		 err = HAVEN__ERROR__INIT;
	char			 text[512];

	if (w->exit_reported) {
		/* Our last word was said (a save): nothing after it counts. */
		worker_log(w, LOG_LEVEL_DEBUG, "not reported after %s: %s",
		    worker_phase_name(w->phase), detail != NULL ? detail : "");
		return;
	}
	w->phase = phase;
	if (received)
		w->live_received = 1;
	if (stopped_at_us != 0)
		w->live_stopped_at_us = stopped_at_us;
	ev.vm_uuid = w->spec != NULL ? w->spec->uuid : "";
	ev.generation = w->spec != NULL ? w->spec->generation : 0;
	ev.phase = phase;
	ev.timestamp_us = now_us();
	ev.detail = (char *)(detail != NULL ? detail : "");
	ev.qemu_pid = w->qemu_pid > 0 ? (uint32_t)w->qemu_pid : 0;
	transfer_fill(w->transfer, &ev);
	/* Live migration: what happened. */
	ev.received = received;
	ev.stopped_at_us = stopped_at_us;
	if (error != 0) {
		snprintf(text, sizeof text, "%s%s%s", worker_strerror(error),
		    detail != NULL && *detail != '\0' ? ": " : "",
		    detail != NULL ? detail : "");
		err.code = HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL;
		err.message = text;
		ev.error = &err;
		ev.fenced = error == STORAGE_E_RESERVATION ||
		    error == STORAGE_E_PREEMPTED;
		worker_log(w, LOG_LEVEL_WARN, "%s: %s", worker_phase_name(phase),
		    text);
	} else {
		worker_log(w, LOG_LEVEL_INFO, "%s%s%s", worker_phase_name(phase),
		    detail ? ": " : "", detail ? detail : "");
	}
	if (w->parent != NULL)
		channel_send_message(w->parent, FRAME_WORKER_EVENT, &ev.base,
		    NULL, 0);
}

void
worker_report(struct worker *w, Haven__VmPhase phase, int error,
    const char *detail)
{
	worker_report_ex(w, phase, error, detail, 0, 0);
}

/*
 * From root to the spec's uid and gid, keeping QEMU's (issue 15) for its
 * child to take (sandbox.c). A spec without QEMU ids (a test's driver)
 * runs QEMU under the worker's, as a worker not started as root does.
 */
static int
worker_drop(struct worker *w)
{
	const Haven__VmSpec	*spec = w->spec;

	w->qemu_uid = spec->qemu_uid != 0 && spec->qemu_gid != 0 ?
	    spec->qemu_uid : spec->uid;
	w->qemu_gid = spec->qemu_uid != 0 && spec->qemu_gid != 0 ?
	    spec->qemu_gid : spec->gid;
	if (w->qemu_uid == spec->uid)
		worker_log(w, LOG_LEVEL_WARN, "QEMU shares the worker's uid %u "
		    "(the spec names none of its own)", spec->uid);
	return sandbox_drop_qemu(spec->uid, spec->gid, w->qemu_uid,
	    w->qemu_gid);
}

/* --- commands from havend ------------------------------------------------ */

void
worker_command(struct worker *w, Haven__WorkerCommand *cmd)
{
	if (!w->ready) {
		if (w->queued != NULL)
			message_free(&w->queued->base);
		w->queued = cmd;
		return;
	}
	switch (cmd->action) {
	case HAVEN__WORKER_ACTION__WORKER_ACTION_START:
		if (w->qemu_pid > 0 || worker_busy(w))
			goto busy;
		w->op = WORKER_OP_START;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STARTING, 0, NULL);
		w->opening = 0;
		worker_open_vhds(w);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE:
		if (w->qemu_pid > 0 || worker_busy(w))
			goto busy;
		quick_restore(w->transfer, cmd->state_generation);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE:
		if (w->qmp == NULL || worker_busy(w))
			goto busy;
		quick_save(w->transfer);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_STOP:
		/* Also in the middle of a move, which nobody follows now. */
		transfer_abandon(w->transfer);
		if (w->qmp == NULL) {
			/* Still opening its volumes or starting QEMU: no
			 * guest to power down yet, so it stops at once (a
			 * refusal here left the VM to boot after its stop). */
			w->op = WORKER_OP_STOP;
			w->expect_exit = 1;
			w->kill_requested = 1;
			w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
			worker_log(w, LOG_LEVEL_INFO, "stop before QEMU "
			    "answers: stopping at once");
			if (w->qemu_pid > 0) {
				worker_report(w,
				    HAVEN__VM_PHASE__VM_PHASE_STOPPING, 0, NULL);
				kill(w->qemu_pid, SIGKILL);
			} else {
				worker_report(w,
				    HAVEN__VM_PHASE__VM_PHASE_STOPPED, 0,
				    "stopped before QEMU started");
				worker_exit(w, 0);
			}
			break;
		}
		w->op = WORKER_OP_STOP;
		w->expect_exit = 1;
		w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
		worker_report(w, HAVEN__VM_PHASE__VM_PHASE_STOPPING, 0, NULL);
		qmp_command(w->qmp, "system_powerdown", NULL, -1,
		    worker_reply_ignore, w);
		ev_timer_arm(w->stop_timer, cmd->timeout_ms ? cmd->timeout_ms :
		    WORKER_STOP_TIMEOUT_MS);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_KILL:
		w->expect_exit = 1;
		w->kill_requested = 1;
		w->exit_phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
		if (w->qemu_pid > 0)
			kill(w->qemu_pid, SIGKILL);
		else
			worker_exit(w, 0);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_INCOMING:
		if (!w->spec->incoming || w->qemu_pid > 0 || worker_busy(w) ||
		    cmd->endpoint == NULL || *cmd->endpoint == '\0')
			goto busy;
		live_incoming(w->transfer, cmd);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_MIGRATE:
		if (w->qmp == NULL || worker_busy(w) ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING)
			goto busy;
		live_send(w->transfer, cmd);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_SWITCH:
		if (transfer_kind(w->transfer) != TRANSFER_INCOMING ||
		    w->qmp == NULL ||
		    w->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING)
			goto busy;
		live_switch(w->transfer);
		break;
	case HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME:
		if (transfer_kind(w->transfer) == TRANSFER_LIVE) {
			live_resume(w->transfer);
			break;
		}
		/* FALLTHROUGH */
	case HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE:
		if (w->qmp == NULL || worker_busy(w))
			goto busy;
		qmp_command(w->qmp, cmd->action ==
		    HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE ? "stop" : "cont",
		    NULL, -1, worker_reply_ignore, w);
		break;
	default:
		worker_report(w, w->phase, -EINVAL, "unknown action");
		return;
	}
	w->last_action = cmd->action;
	return;
busy:
	worker_report(w, w->phase, -EBUSY, "the VM is not in a state for "
	    "that command");
}

void
worker_parent_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct worker		*w = arg;
	ProtobufCMessage	*m;
	char			 detail[160];
	size_t			 i;
	int			 error;

	if (f == NULL) {
		channel_free(w->parent);
		w->parent = NULL;
		worker_adopt_refuse_asked(w);
		if (worker_adopt_possible(w)) {
			log_info("parent channel closed (%s)",
			    frame_strerror(err));
			worker_adopt_wait(w);
			return;
		}
		/* havend is gone: so is the VM (DESIGN §2). */
		log_info("parent channel closed (%s); stopping",
		    frame_strerror(err));
		worker_exit(w, err == 0 ? 0 : 1);
		return;
	}
	switch (f->type) {
	case FRAME_VM_SPEC:
		if (w->spec != NULL) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
			    "this worker already runs VM %s", w->spec->uuid);
			return;
		}
		if ((error = worker_take_spec(w, f)) != 0) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "invalid VM spec (needs volumes, run_dir, memory, "
			    "a UUID, and the serial and QEMU log descriptors)");
			worker_exit(w, 1);
			return;
		}
		if (worker_nics_missing(w, detail, sizeof detail)) {
			worker_log(w, LOG_LEVEL_WARN, "%s", detail);
			worker_fail(w, -ENODEV, detail);
			return;
		}
		if (geteuid() == 0 && worker_drop(w) == -1) {
			worker_fail(w,
			    -errno, "dropping privileges");
			return;
		}
		if (geteuid() != 0 && sandbox_no_new_privs() == -1) {
			worker_exit(w, 1);
			return;
		}
		worker_open_next(w);
		return;
	case FRAME_WORKER_COMMAND:
		if (w->spec == NULL) {
			channel_send_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
			    "send the VM spec first");
			return;
		}
		if ((m = message_decode(f)) == NULL)
			break;
		worker_command(w, (Haven__WorkerCommand *)m);
		if (w->queued != (Haven__WorkerCommand *)m)
			message_free(m);
		return;
	case FRAME_WORKER_CONSOLE:
		if (w->spec == NULL)
			return;		/* its socket closes with the frame */
		console_attach(w, f);
		return;
	case FRAME_REGISTER_GRANT:
		if ((m = message_decode(f)) == NULL)
			break;
		/* An answer only to a question this channel's havend got. */
		for (i = 0; i < w->nvolumes; i++) {
			if (strcmp(w->volumes[i].ref->uuid,
			    ((Haven__RegisterGrant *)m)->volume_uuid) == 0 &&
			    w->volumes[i].asking) {
				w->volumes[i].asking = 0;
				iscsi_register_answer(w->volumes[i].dev,
				    ((Haven__RegisterGrant *)m)->granted);
			}
		}
		message_free(m);
		return;
	default:
		channel_send_error(c, HAVEN__ERROR_CODE__ERROR_CODE_UNKNOWN_TYPE,
		    "unknown message type %u", f->type);
		return;
	}
	channel_send_error(c, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
	    "message does not decode");
}
