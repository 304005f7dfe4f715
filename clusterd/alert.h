/*
 * alert.c: havend's [alert] program, run on the events an operator is
 * woken for, with the event as JSON on its stdin.
 */
#ifndef HAVEN_ALERT_H
#define HAVEN_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

struct event_base;

#define ALERT_QUEUE_MAX		64	/* events waiting for the program */
#define ALERT_TRACK_MAX		256	/* VMs recovering at once */
#define ALERT_EVENTS_PER_CHANGE	4

/* One event, as alert_classify finds it in an applied change. */
struct alert_event {
	enum config_alert_kind	 kind;
	uint64_t		 seq;		/* the change's */
	uint64_t		 timestamp_us;	/* the proposer's clock */
	uint32_t		 origin;	/* the proposer */
	char			 subject[96];	/* "host 3", "vm web1" */
	char			 text[256];	/* what the event log says */
	uint32_t		 node_id;	/* the host it concerns */
	char			 host[64];
	char			 vm[64];
	char			 level[64];	/* fenced: by which level */
	uint32_t		 from;		/* failover-done: the lost host */
	uint64_t		 duration_ms;	/* failover-done: since lost */
};

/* The VMs a lost host left, until they run elsewhere: the same on every
 * member (the same changes), whoever reports the failover done. */
struct alert_recovering {
	char		 name[64];
	uint64_t	 lost_at_us;
	uint32_t	 from;
};
struct alert_track {
	struct alert_recovering	 vms[ALERT_TRACK_MAX];
	size_t			 n;
};

/* The events in change c, applied: cs is the state after it. Updates the
 * tracking; returns how many events went to out (at most max). */
size_t		 alert_classify(struct alert_track *,
		     const Haven__ClusterState *cs, const Haven__Change *c,
		     struct alert_event *out, size_t max);
/* The event's JSON document (malloc'ed), as the program reads it. */
char		*alert_json(const struct alert_event *, const char *cluster,
		     const char *reporter);

struct alert	*alert_new(struct event_base *, const struct config *);
/* Every applied change, on every member: the proposer (self) runs the
 * program for the chosen events in it. */
void		 alert_applied(struct alert *, const Haven__ClusterState *,
		     const Haven__Change *, uint32_t self, const char *self_name);
void		 alert_free(struct alert *);

#endif
