/*
 * havend's [alert] program (haven.conf(5)), Pacemaker's alert agents for
 * Haven: on the events an operator is woken for -- a host lost, fenced or
 * not, a VM failed, a failover done -- havend runs the program with the
 * event as one JSON document on its stdin, one at a time and in the order
 * the cluster applied them, each within [alert] timeout_s.
 *
 * Every member applies every change, so every member would see every
 * event: the member that proposed the change runs the program, and only
 * it, so that an event wakes somebody once. A failover is one member's
 * event (the new owner reports the VM running) that began with another's
 * (the coordinator marked the host lost): every member keeps the VMs a
 * lost host left recovering, from the same changes, so whichever reports
 * the VM running knows when its host was lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "alert.h"
#include "common.h"
#include "fence.h"
#include "tree.h"

struct alert {
	struct event_base	*base;
	const struct config	*config;
	struct alert_track	 track;
	/* JSON documents waiting for the program, oldest first. */
	char			*queue[ALERT_QUEUE_MAX];
	size_t			 nqueue;
	struct fence_agent_run	*run;	/* the one running, or NULL */
	char			 running_kind[32];
};

static const char *
alert_host_name(const Haven__ClusterState *cs, uint32_t id)
{
	const Haven__Host	*h = tree_host(cs, id);

	return h != NULL && h->config != NULL ? h->config->name : "";
}

/* The text this change logged for subject (the last such event). */
static void
alert_text(const Haven__ClusterState *cs, const char *subject, char *out,
    size_t len)
{
	size_t	i;

	*out = '\0';
	for (i = cs->n_events; i > 0; i--) {
		const Haven__Event	*e = cs->events[i - 1];

		if (e->seq != cs->seq)
			break;
		if (strcmp(e->subject, subject) == 0) {
			snprintf(out, len, "%s", e->text);
			return;
		}
	}
}

static struct alert_event *
alert_add(struct alert_event *out, size_t *n, size_t max,
    enum config_alert_kind kind, const Haven__ClusterState *cs,
    const Haven__Change *c, const char *subject)
{
	struct alert_event	*e;

	if (*n == max)
		return NULL;
	e = &out[(*n)++];
	memset(e, 0, sizeof *e);
	e->kind = kind;
	e->seq = cs->seq;
	e->timestamp_us = c->timestamp_us;
	e->origin = c->origin;
	snprintf(e->subject, sizeof e->subject, "%s", subject);
	alert_text(cs, subject, e->text, sizeof e->text);
	return e;
}

static void
track_forget(struct alert_track *t, const char *vm)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->vms[i].name, vm) == 0) {
			t->vms[i] = t->vms[--t->n];
			return;
		}
}

static struct alert_recovering *
track_find(struct alert_track *t, const char *vm)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->vms[i].name, vm) == 0)
			return &t->vms[i];
	return NULL;
}

size_t
alert_classify(struct alert_track *t, const Haven__ClusterState *cs,
    const Haven__Change *c, struct alert_event *out, size_t max)
{
	struct alert_recovering	*r;
	struct alert_event	*e;
	const Haven__Vm		*vm;
	char			 subject[96];
	size_t			 n = 0, i;
	uint32_t		 id;

	switch (c->kind_case) {
	case HAVEN__CHANGE__KIND_HOST_LOST:
		id = c->host_lost->node_id;
		snprintf(subject, sizeof subject, "host %u", id);
		if ((e = alert_add(out, &n, max, CONFIG_ALERT_HOST_LOST, cs, c,
		    subject)) != NULL) {
			e->node_id = id;
			snprintf(e->host, sizeof e->host, "%s",
			    alert_host_name(cs, id));
		}
		/* The VMs it left: recovering until running elsewhere. */
		for (i = 0; i < cs->n_vms; i++) {
			vm = cs->vms[i];
			if (vm->runtime->owner != id || vm->runtime->phase !=
			    HAVEN__VM_PHASE__VM_PHASE_RECOVERING ||
			    track_find(t, vm->config->name) != NULL ||
			    t->n == ALERT_TRACK_MAX)
				continue;
			r = &t->vms[t->n++];
			snprintf(r->name, sizeof r->name, "%s",
			    vm->config->name);
			r->lost_at_us = c->timestamp_us;
			r->from = id;
		}
		break;
	case HAVEN__CHANGE__KIND_HOST_FENCE:
		id = c->host_fence->node_id;
		if (c->host_fence->status !=
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED &&
		    c->host_fence->status !=
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED)
			break;
		snprintf(subject, sizeof subject, "host %u", id);
		if ((e = alert_add(out, &n, max, c->host_fence->status ==
		    HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED ?
		    CONFIG_ALERT_FENCED : CONFIG_ALERT_FENCE_FAILED, cs, c,
		    subject)) != NULL) {
			e->node_id = id;
			snprintf(e->host, sizeof e->host, "%s",
			    alert_host_name(cs, id));
			snprintf(e->level, sizeof e->level, "%s",
			    c->host_fence->level);
		}
		break;
	case HAVEN__CHANGE__KIND_VM_TRANSITION:
		if ((vm = tree_vm(cs, c->vm_transition->name)) == NULL)
			break;
		snprintf(subject, sizeof subject, "vm %s", vm->config->name);
		switch (c->vm_transition->phase) {
		case HAVEN__VM_PHASE__VM_PHASE_FAILED:
			if ((e = alert_add(out, &n, max,
			    CONFIG_ALERT_VM_FAILED, cs, c, subject)) != NULL) {
				snprintf(e->vm, sizeof e->vm, "%s",
				    vm->config->name);
				e->node_id = vm->runtime->owner;
				snprintf(e->host, sizeof e->host, "%s",
				    alert_host_name(cs, e->node_id));
			}
			break;
		case HAVEN__VM_PHASE__VM_PHASE_RUNNING:
			if ((r = track_find(t, vm->config->name)) == NULL)
				break;
			if ((e = alert_add(out, &n, max,
			    CONFIG_ALERT_FAILOVER_DONE, cs, c, subject)) !=
			    NULL) {
				snprintf(e->vm, sizeof e->vm, "%s",
				    vm->config->name);
				e->node_id = vm->runtime->owner;
				snprintf(e->host, sizeof e->host, "%s",
				    alert_host_name(cs, e->node_id));
				e->from = r->from;
				e->duration_ms = c->timestamp_us > r->lost_at_us ?
				    (c->timestamp_us - r->lost_at_us) / 1000 : 0;
			}
			track_forget(t, vm->config->name);
			break;
		case HAVEN__VM_PHASE__VM_PHASE_STOPPED:
			track_forget(t, vm->config->name);
			break;
		default:
			break;
		}
		break;
	case HAVEN__CHANGE__KIND_VM_DELETE:
		track_forget(t, c->vm_delete->name);
		break;
	default:
		break;
	}
	return n;
}

char *
alert_json(const struct alert_event *e, const char *cluster,
    const char *reporter)
{
	struct json_object	*o;
	struct tm		 tm;
	time_t			 secs = (time_t)(e->timestamp_us / 1000000);
	char			 stamp[40], *s;

	gmtime_r(&secs, &tm);
	snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (unsigned)(e->timestamp_us / 1000 % 1000));
	o = json_object_new_object();
	json_object_object_add(o, "kind",
	    json_object_new_string(config_alert_kind_name(e->kind)));
	json_object_object_add(o, "cluster", json_object_new_string(cluster));
	json_object_object_add(o, "seq", json_object_new_uint64(e->seq));
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "timestamp_us",
	    json_object_new_uint64(e->timestamp_us));
	json_object_object_add(o, "reporter", json_object_new_string(reporter));
	json_object_object_add(o, "subject", json_object_new_string(e->subject));
	json_object_object_add(o, "text", json_object_new_string(e->text));
	if (e->node_id != 0) {
		json_object_object_add(o, "node_id",
		    json_object_new_int64(e->node_id));
		json_object_object_add(o, "host", json_object_new_string(e->host));
	}
	if (*e->vm != '\0')
		json_object_object_add(o, "vm", json_object_new_string(e->vm));
	if (*e->level != '\0')
		json_object_object_add(o, "fence_level",
		    json_object_new_string(e->level));
	if (e->kind == CONFIG_ALERT_FAILOVER_DONE) {
		json_object_object_add(o, "from_node_id",
		    json_object_new_int64(e->from));
		json_object_object_add(o, "duration_ms",
		    json_object_new_uint64(e->duration_ms));
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

struct alert *
alert_new(struct event_base *base, const struct config *config)
{
	struct alert	*a;

	if ((a = calloc(1, sizeof *a)) == NULL)
		return NULL;
	a->base = base;
	a->config = config;
	if (*config->alert_program != '\0') {
		char		kinds[128] = "";
		unsigned	k;

		for (k = 0; k < CONFIG_ALERT_NKINDS; k++)
			if (config->alert_events & (1u << k))
				snprintf(kinds + strlen(kinds), sizeof kinds -
				    strlen(kinds), "%s%s", *kinds ? " " : "",
				    config_alert_kind_name(k));
		log_info("alerts: %s on %s, within %u s",
		    config->alert_program, *kinds ? kinds : "no event",
		    config->alert_timeout_s);
	}
	return a;
}

static void alert_next(struct alert *);

static void
alert_done(int result, const char *detail, void *arg)
{
	struct alert	*a = arg;

	a->run = NULL;
	if (result == FENCE_AGENT_OK)
		log_debug("alerts: %s event handed over", a->running_kind);
	else
		log_warn("alerts: %s for a %s event %s: %s",
		    a->config->alert_program, a->running_kind,
		    result == FENCE_AGENT_TIMEOUT ? "timed out" : "failed",
		    detail != NULL && *detail != '\0' ? detail : "no detail");
	alert_next(a);
}

/* The oldest waiting event to the program, if none runs. */
static void
alert_next(struct alert *a)
{
	struct json_object	*o;
	char			*doc;

	while (a->run == NULL && a->nqueue > 0) {
		doc = a->queue[0];
		memmove(a->queue, a->queue + 1, --a->nqueue * sizeof *a->queue);
		snprintf(a->running_kind, sizeof a->running_kind, "?");
		if ((o = json_tokener_parse(doc)) != NULL) {
			snprintf(a->running_kind, sizeof a->running_kind, "%s",
			    json_object_get_string(json_object_object_get(o,
			    "kind")));
			json_object_put(o);
		}
		a->run = fence_agent_start_program(a->base, "haven-alert",
		    a->config->alert_program, doc,
		    a->config->alert_timeout_s * 1000, alert_done, a);
		if (a->run == NULL)
			log_warn("alerts: cannot run %s: %s",
			    a->config->alert_program, strerror(errno));
		free(doc);
	}
}

void
alert_applied(struct alert *a, const Haven__ClusterState *cs,
    const Haven__Change *c, uint32_t self, const char *self_name)
{
	struct alert_event	 ev[ALERT_EVENTS_PER_CHANGE];
	size_t			 n, i;
	char			*doc;

	if (a == NULL)
		return;
	n = alert_classify(&a->track, cs, c, ev, ALERT_EVENTS_PER_CHANGE);
	if (*a->config->alert_program == '\0' || c->origin != self)
		return;
	for (i = 0; i < n; i++) {
		if ((a->config->alert_events & (1u << ev[i].kind)) == 0)
			continue;
		if ((doc = alert_json(&ev[i], a->config->cluster_name,
		    self_name)) == NULL)
			continue;
		if (a->nqueue == ALERT_QUEUE_MAX) {
			log_warn("alerts: %zu events wait for %s already; the "
			    "oldest is dropped", a->nqueue,
			    a->config->alert_program);
			free(a->queue[0]);
			memmove(a->queue, a->queue + 1,
			    --a->nqueue * sizeof *a->queue);
		}
		a->queue[a->nqueue++] = doc;
	}
	alert_next(a);
}

void
alert_free(struct alert *a)
{
	size_t	i;

	if (a == NULL)
		return;
	if (a->run != NULL)
		fence_agent_cancel(a->run);
	for (i = 0; i < a->nqueue; i++)
		free(a->queue[i]);
	free(a);
}
