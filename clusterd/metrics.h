/*
 * metrics.c: havend's Prometheus metrics at http://[metrics] listen/metrics.
 */
#ifndef HAVEN_METRICS_H
#define HAVEN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct alert_event;
struct evbuffer;
struct event_base;

#define METRICS_BUCKETS		10	/* the failover histogram's, +Inf aside */
#define METRICS_LEVELS		8	/* fence levels counted apart */

/* What happened, counted from the applied changes. */
struct metrics_counts {
	uint64_t	 hosts_lost;
	uint64_t	 vm_failures;
	uint64_t	 failovers;
	double		 failover_sum_s;
	uint64_t	 failover_buckets[METRICS_BUCKETS];
	struct {
		char		 level[64];
		uint64_t	 fenced, failed;
	}		 fences[METRICS_LEVELS];
	size_t		 nfences;
};

/* What is, at a scrape: havend fills it. */
struct metrics_view {
	const char			*node_name;
	int				 quorate;
	size_t				 nmembers;
	const Haven__ClusterState	*cs;	/* NULL: none yet */
};
typedef void (*metrics_view_fn)(struct metrics_view *, void *arg);

void		 metrics_count(struct metrics_counts *,
		     const struct alert_event *);
void		 metrics_render(struct evbuffer *, const struct metrics_counts *,
		     const struct metrics_view *);

/* listen "" counts without serving, as does an address it cannot bind
 * (a warning). NULL with err on a malformed address. */
struct metrics	*metrics_new(struct event_base *, const char *listen,
		     metrics_view_fn, void *arg, char *err, size_t errlen);
/* Every applied change, on every member. */
void		 metrics_applied(struct metrics *,
		     const Haven__ClusterState *, const Haven__Change *);
void		 metrics_free(struct metrics *);

/* status.c: the status page, and the JSON it polls. */
extern const char status_page[];
void		 status_json(struct evbuffer *, const struct metrics_view *);

#endif
