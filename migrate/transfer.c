/*
 * The move a worker makes with its VM's state (transfer.h): which one runs,
 * its progress timer, its figures in the worker's events, QEMU's readiness
 * and events routed to the quick (quick.c) or live (live.c) side, and the
 * QEMU migration commands both sides share.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"
#include "transfer_int.h"

static void	transfer_progress_timer(void *);

struct transfer *
transfer_new(struct event_base *base, const struct transfer_ops *ops,
    void *arg)
{
	struct transfer	*t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->base = base;
	t->ops = ops;
	t->arg = arg;
	t->restore_fd = -1;
	live_init(t);
	t->progress_timer = ev_timer_new(base, 0, 0, transfer_progress_timer,
	    t);
	t->live.switch_timer = ev_timer_new(base, 0, 0, live_switch_timeout,
	    t);
	if (t->progress_timer == NULL || t->live.switch_timer == NULL) {
		transfer_free(t);
		return NULL;
	}
	return t;
}

void
transfer_set_vm(struct transfer *t, const struct transfer_vm *vm)
{
	t->vm = *vm;
}

void
transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	live_close_all(t);
	live_tls_close(t);
	if (t->restore_fd != -1)
		close(t->restore_fd);
	ev_timer_free(t->progress_timer);
	ev_timer_free(t->live.switch_timer);
	free(t);
}

enum transfer_kind
transfer_kind(const struct transfer *t)
{
	return t->kind;
}

void
transfer_fill(struct transfer *t, Haven__WorkerEvent *ev)
{
	if (t->kind == TRANSFER_SAVE || t->kind == TRANSFER_RESTORE) {
		ev->state_bytes = t->stream_bytes;
		ev->duration_us = ev->timestamp_us - t->start_us;
	}
	/* Live migration: where the target listens. */
	if (t->kind == TRANSFER_INCOMING && *t->live.endpoint != '\0' &&
	    t->live.listen_fd != -1) {
		ev->endpoint = t->live.endpoint;
		ev->token = t->live.token;
	}
	if (t->kind == TRANSFER_LIVE || t->kind == TRANSFER_SAVE ||
	    t->kind == TRANSFER_RESTORE) {
		ev->remaining_bytes = t->remaining;
		ev->total_bytes = t->total;
	}
	ev->switch_stalled = t->kind == TRANSFER_LIVE &&
	    t->live.switch_stalled;
}

int
transfer_qemu_ready(struct transfer *t)
{
	switch (t->kind) {
	case TRANSFER_RESTORE:
		quick_restore_begin(t);
		return 1;
	case TRANSFER_INCOMING:
		live_incoming_ready(t);
		return 1;
	default:
		return 0;
	}
}

int
transfer_event(struct transfer *t, const char *name, struct json_object *data)
{
	if (t->kind == TRANSFER_INCOMING || t->kind == TRANSFER_LIVE) {
		live_event(t, name, data);
		return 1;
	}
	return quick_event(t, name, data);
}

void
transfer_abandon(struct transfer *t)
{
	t->kind = TRANSFER_NONE;
}

/* Progress: every LIVE_POLL_MS for a live source, QUICK_POLL_MS for a
 * save or restore, each re-arming it while it goes on. */
static void
transfer_progress_timer(void *arg)
{
	struct transfer	*t = arg;

	if (t->kind == TRANSFER_LIVE)
		live_progress(t);
	else
		quick_progress(t);
}


int
transfer_qmp(struct transfer *t, const char *execute,
    struct json_object *arguments, int fd, transfer_reply_cb reply, void *arg)
{
	return t->ops->qmp(t->arg, execute, arguments, fd, reply, arg);
}

/* The move is over, either way. */
void
transfer_end(struct transfer *t)
{
	if (t->restore_fd != -1) {
		close(t->restore_fd);
		t->restore_fd = -1;
	}
	t->kind = TRANSFER_NONE;
	t->ops->idle(t->arg);
}

void
transfer_report(struct transfer *t, Haven__VmPhase phase, int error,
    const char *detail)
{
	t->ops->report(t->arg, phase, error, detail, 0, 0);
}

/* QEMU's migration, both ways: events on, our end of a pipe or socket
 * handed over with getfd (the fd travels with the command; ours is
 * closed), and the migrate or migrate-incoming command pointing at it. */
static void
transfer_migration_cap(struct json_object *caps, const char *name, int on)
{
	struct json_object	*cap = json_object_new_object();

	json_object_object_add(cap, "capability",
	    json_object_new_string(name));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	json_object_array_add(caps, cap);
}

/*
 * A live migration's source stops at 'pre-switchover' (the vCPUs stopped,
 * the last pass not sent) until the worker says go: a cancel (budget,
 * stall, the cluster) can then never cross the last pass, after which the
 * target may hold the whole VM while the source resumes it too. Every
 * other migration (a quick save) runs straight through; capabilities
 * outlive a migration, so each one sets it.
 */
void
transfer_migration_events(struct transfer *t)
{
	struct json_object	*caps = json_object_new_array();
	struct json_object	*params = json_object_new_object();

	transfer_migration_cap(caps, "events", 1);
	transfer_migration_cap(caps, "pause-before-switchover",
	    t->kind == TRANSFER_LIVE);
	json_object_object_add(params, "capabilities", caps);
	transfer_qmp(t, "migrate-set-capabilities", params, -1, NULL, NULL);
}

void
transfer_hand_fd(struct transfer *t, int fd, const char *name)
{
	struct json_object	*params = json_object_new_object();

	json_object_object_add(params, "fdname",
	    json_object_new_string(name));
	transfer_qmp(t, "getfd", params, fd, NULL, NULL);
	close(fd);
}

/*
 * The VM resumed on this host after a move: tell the network where its
 * MACs are now (issue 13). QEMU sends RARPs from every NIC, or a virtio
 * guest that negotiated GUEST_ANNOUNCE sends its own gratuitous ARPs, so
 * bridges and switches move the guest's port at once instead of when the
 * guest next speaks. Rounds at 50, 150, 250, 350 and 450 ms (QEMU 7.2's
 * announce-self: the first after initial, each step longer, capped at max)
 * cover a switch still flushing the old port. Only a reply that never
 * comes would matter: nothing waits on it.
 */
#define TRANSFER_ANNOUNCE_ROUNDS	5
#define TRANSFER_ANNOUNCE_INITIAL_MS	50
#define TRANSFER_ANNOUNCE_STEP_MS	100
#define TRANSFER_ANNOUNCE_MAX_MS	550

void
transfer_announce(struct transfer *t)
{
	struct json_object	*params;

	if (t->vm.nics == 0)
		return;
	params = json_object_new_object();
	json_object_object_add(params, "initial",
	    json_object_new_int(TRANSFER_ANNOUNCE_INITIAL_MS));
	json_object_object_add(params, "max",
	    json_object_new_int(TRANSFER_ANNOUNCE_MAX_MS));
	json_object_object_add(params, "rounds",
	    json_object_new_int(TRANSFER_ANNOUNCE_ROUNDS));
	json_object_object_add(params, "step",
	    json_object_new_int(TRANSFER_ANNOUNCE_STEP_MS));
	transfer_qmp(t, "announce-self", params, -1, NULL, NULL);
}

/* migrate or migrate-incoming on the fd handed over as name; refused is
 * called if QEMU answers with an error (nothing would follow: no event). */
void
transfer_migrate_fd(struct transfer *t, const char *command, const char *name,
    transfer_reply_cb refused)
{
	struct json_object	*params = json_object_new_object();
	char			 uri[64];

	snprintf(uri, sizeof uri, "fd:%s", name);
	json_object_object_add(params, "uri", json_object_new_string(uri));
	transfer_qmp(t, command, params, -1, refused, t);
}
