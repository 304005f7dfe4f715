/*
 * An iSCSI path's latency histogram, kept by this host's storage heartbeat
 * (health.c) and rendered by the metrics (metrics.c): apart from both so
 * that the heartbeat's library needs no HTTP listener.
 */
#include "metrics.h"

/* A probe's round trip, seconds: a READ of one sector on a LAN. */
const double metrics_path_buckets[METRICS_BUCKETS] = {
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1,
};

void
metrics_path_observe(struct metrics_path *p, double s)
{
	size_t	i;

	p->answered++;
	p->latency_sum_s += s;
	for (i = 0; i < METRICS_BUCKETS; i++)
		if (s <= metrics_path_buckets[i])
			p->latency_buckets[i]++;
}

