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
#define METRICS_MOVES		256	/* moves under way followed at once */

/* What happened, counted from the applied changes. */
struct metrics_counts {
	uint64_t	 hosts_lost;
	uint64_t	 vm_failures;
	uint64_t	 failovers;
	/* The whole failover and its phases: [0] host lost to the VM
	 * running, [1] lost to fenced, [2] fenced to running. */
	double		 failover_sum_s[3];
	uint64_t	 failover_buckets[3][METRICS_BUCKETS];
	struct {
		char		 level[64];
		uint64_t	 fenced, failed;
	}		 fences[METRICS_LEVELS];
	size_t		 nfences;
	/* Planned moves by kind (0 live, 1 quick) that ended: done (on
	 * their target), abandoned (running on where they were) or failed;
	 * the done ones' downtime. */
	uint64_t	 moves_done[2], moves_abandoned[2], moves_failed[2];
	double		 downtime_sum_s[2];
	uint64_t	 downtime_buckets[2][METRICS_BUCKETS];
};

/* The moves under way, as the applied changes show them. */
struct metrics_moves {
	struct {
		char		 name[64];
		uint32_t	 to;
		int		 quick;
		uint64_t	 since_us;	/* the guest stopped; 0: not yet */
	}		 vms[METRICS_MOVES];
	size_t		 n;
};
/* A change applied (cs after it): follows its VM's move, counts its end. */
void		 metrics_move(struct metrics_moves *, struct metrics_counts *,
		     const Haven__ClusterState *, const Haven__Change *);

#define METRICS_PATHS		64	/* iSCSI paths shown: every pool's portals */

/* One iSCSI path (a pool through one portal) as this host's storage
 * heartbeat (health.c) sees it: its verdict and the READs' round trips. */
struct metrics_path {
	char		 pool[64];
	char		 portal[128];
	int		 up;		/* 1 reachable, 0 not, -1 not judged yet */
	uint64_t	 answered, failed;	/* probes since the path began */
	double		 latency_sum_s;	/* of the answered ones */
	uint64_t	 latency_buckets[METRICS_BUCKETS];
};
/* metrics_path.c: an answered probe's round trip, in seconds; the
 * histogram's bounds. */
void		 metrics_path_observe(struct metrics_path *, double seconds);
extern const double metrics_path_buckets[METRICS_BUCKETS];

/* This host's workers' quick-migration saves and restores that finished:
 * bytes of QEMU's stream and the time they took (supervise.c counts). */
struct metrics_transfers {
	uint64_t	 saves, save_bytes, save_us;
	uint64_t	 restores, restore_bytes, restore_us;
};

/* What is, at a scrape: havend fills it. */
struct metrics_view {
	const char			*node_name;
	int				 quorate;
	size_t				 nmembers;
	const Haven__ClusterState	*cs;	/* NULL: none yet */
	struct metrics_path		 paths[METRICS_PATHS];
	size_t				 npaths;
	struct metrics_transfers	 transfers;
};
typedef void (*metrics_view_fn)(struct metrics_view *, void *arg);

void		 metrics_count(struct metrics_counts *,
		     const struct alert_event *);
void		 metrics_render(struct evbuffer *, const struct metrics_counts *,
		     const struct metrics_view *);

/* listen "" counts without serving, as does an address it cannot bind
 * (a warning). NULL with err on a malformed address. */
struct metrics	*metrics_new(struct event_base *, const char *listen,
		     metrics_view_fn, void *arg, const char *key_path,
		     int auth_always, char *err, size_t errlen);
/* A status page login for uid with role (ROLE_VIEWER or more): the URL
 * with a code valid METRICS_LOGIN_S seconds, once; -1 with err. */
int		 metrics_login(struct metrics *, uint32_t uid, int role,
		     const char *node, char *url, size_t len, char *err,
		     size_t errlen);
/* Every applied change, on every member. */
void		 metrics_applied(struct metrics *,
		     const Haven__ClusterState *, const Haven__Change *);
void		 metrics_free(struct metrics *);

/* status.c: the status page, and the JSON it polls. */
extern const char status_page[];
void		 status_json(struct evbuffer *, const struct metrics_view *);

#endif
