/*
 * havend's HTTP listener ([metrics] listen), served by libevent's evhttp on
 * havend's loop, read-only: Prometheus' text format (exposition format
 * 0.0.4) at /metrics, for whoever the address lets reach it (localhost by
 * default, or the management network), and the status page (status.c) at
 * / and /api/status for loopback clients.
 *
 * What the state holds -- membership, each host's pools, each VM's phase
 * and owner, the fence history -- is read from it at each scrape. What
 * happened -- hosts lost, fence outcomes, VM failures, failovers and how
 * long they took -- is counted from the applied changes with the alerts'
 * classification (alert.c): every member applies the same changes, so
 * every member counts the same, and any one may be scraped. The counters
 * start at zero with havend, as Prometheus expects of a counter.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "alert.h"
#include "config.h"
#include "common.h"
#include "metrics.h"
#include "tree.h"

/* Failover durations (host marked lost to the VM running), seconds. */
static const double metrics_buckets[METRICS_BUCKETS] = {
	1, 2, 3, 5, 10, 20, 30, 60, 120, 300,
};

void
metrics_count(struct metrics_counts *m, const struct alert_event *e)
{
	size_t	i;
	double	s;

	switch (e->kind) {
	case CONFIG_ALERT_HOST_LOST:
		m->hosts_lost++;
		break;
	case CONFIG_ALERT_FENCED:
	case CONFIG_ALERT_FENCE_FAILED:
		for (i = 0; i < m->nfences; i++)
			if (strcmp(m->fences[i].level, e->level) == 0)
				break;
		if (i == m->nfences) {
			if (m->nfences == METRICS_LEVELS)
				i = METRICS_LEVELS - 1;	/* the last is shared */
			else
				snprintf(m->fences[m->nfences++].level,
				    sizeof m->fences[0].level, "%s", e->level);
		}
		if (e->kind == CONFIG_ALERT_FENCED)
			m->fences[i].fenced++;
		else
			m->fences[i].failed++;
		break;
	case CONFIG_ALERT_VM_FAILED:
		m->vm_failures++;
		break;
	case CONFIG_ALERT_FAILOVER_DONE:
		s = (double)e->duration_ms / 1000;
		m->failovers++;
		m->failover_sum_s += s;
		for (i = 0; i < METRICS_BUCKETS; i++)
			if (s <= metrics_buckets[i])
				m->failover_buckets[i]++;
		break;
	default:
		break;
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void
metrics_label(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (*s == '"')
			evbuffer_add(b, "\\\"", 2);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
}

static void
metrics_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static const char *
metrics_membership(Haven__HostMembership m)
{
	switch (m) {
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER:
		return "member";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST:
		return "lost";
	default:
		return "absent";
	}
}

void
metrics_render(struct evbuffer *b, const struct metrics_counts *m,
    const struct metrics_view *v)
{
	const Haven__ClusterState	*cs = v->cs;
	const Haven__Host		*h;
	const Haven__Vm			*vm;
	size_t				 i, j;
	char				 phase[32];

	metrics_head(b, "haven_up", "gauge", "1 while havend serves.");
	evbuffer_add_printf(b, "haven_up{node=\"");
	metrics_label(b, v->node_name);
	evbuffer_add_printf(b, "\"} 1\n");
	metrics_head(b, "haven_quorate", "gauge",
	    "1 when this host is in the quorate partition.");
	evbuffer_add_printf(b, "haven_quorate %d\n", v->quorate ? 1 : 0);
	metrics_head(b, "haven_members", "gauge",
	    "Hosts in this host's corosync membership.");
	evbuffer_add_printf(b, "haven_members %zu\n", v->nmembers);
	metrics_head(b, "haven_state_changes_total", "counter",
	    "Changes applied to the replicated state since the cluster "
	    "began.");
	evbuffer_add_printf(b, "haven_state_changes_total %" PRIu64 "\n",
	    cs != NULL ? cs->seq : 0);
	if (cs != NULL) {
		metrics_head(b, "haven_host_member", "gauge",
		    "1 for a host's membership state as the cluster sees it.");
		for (i = 0; i < cs->n_hosts; i++) {
			h = cs->hosts[i];
			evbuffer_add_printf(b, "haven_host_member{host=\"");
			metrics_label(b, h->config->name);
			evbuffer_add_printf(b, "\",node_id=\"%u\",state=\"%s\"} 1\n",
			    h->config->node_id,
			    metrics_membership(h->runtime->membership));
		}
		metrics_head(b, "haven_host_maintenance", "gauge",
		    "1 while a host is in maintenance (drained).");
		for (i = 0; i < cs->n_hosts; i++) {
			h = cs->hosts[i];
			evbuffer_add_printf(b, "haven_host_maintenance{host=\"");
			metrics_label(b, h->config->name);
			evbuffer_add_printf(b, "\"} %d\n",
			    h->runtime->maintenance ? 1 : 0);
		}
		metrics_head(b, "haven_pool_reachable", "gauge",
		    "1 when a host reaches a pool over its storage network, "
		    "as it last proved.");
		for (i = 0; i < cs->n_hosts; i++) {
			h = cs->hosts[i];
			for (j = 0; j < h->runtime->n_storage; j++) {
				evbuffer_add_printf(b,
				    "haven_pool_reachable{host=\"");
				metrics_label(b, h->config->name);
				evbuffer_add_printf(b, "\",pool=\"");
				metrics_label(b, h->runtime->storage[j]->pool);
				evbuffer_add_printf(b, "\"} %d\n",
				    h->runtime->storage[j]->reachable ? 1 : 0);
			}
		}
		metrics_head(b, "haven_vm_phase", "gauge",
		    "1 for each VM's current phase.");
		for (i = 0; i < cs->n_vms; i++) {
			vm = cs->vms[i];
			snprintf(phase, sizeof phase, "%s",
			    tree_phase_name(vm->runtime->phase));
			evbuffer_add_printf(b, "haven_vm_phase{vm=\"");
			metrics_label(b, vm->config->name);
			evbuffer_add_printf(b, "\",phase=\"");
			metrics_label(b, phase);
			evbuffer_add_printf(b, "\"} 1\n");
		}
		metrics_head(b, "haven_vm_owner", "gauge",
		    "The node id of the host a VM is on; 0: none.");
		for (i = 0; i < cs->n_vms; i++) {
			vm = cs->vms[i];
			evbuffer_add_printf(b, "haven_vm_owner{vm=\"");
			metrics_label(b, vm->config->name);
			evbuffer_add_printf(b, "\"} %u\n", vm->runtime->owner);
		}
	}
	metrics_head(b, "haven_hosts_lost_total", "counter",
	    "Hosts the cluster marked lost, since this havend started.");
	evbuffer_add_printf(b, "haven_hosts_lost_total %" PRIu64 "\n",
	    m->hosts_lost);
	metrics_head(b, "haven_fences_total", "counter",
	    "Fencing outcomes by the level that decided, since this havend "
	    "started.");
	for (i = 0; i < m->nfences; i++) {
		evbuffer_add_printf(b, "haven_fences_total{level=\"");
		metrics_label(b, m->fences[i].level);
		evbuffer_add_printf(b, "\",outcome=\"fenced\"} %" PRIu64 "\n",
		    m->fences[i].fenced);
		evbuffer_add_printf(b, "haven_fences_total{level=\"");
		metrics_label(b, m->fences[i].level);
		evbuffer_add_printf(b, "\",outcome=\"failed\"} %" PRIu64 "\n",
		    m->fences[i].failed);
	}
	metrics_head(b, "haven_vm_failures_total", "counter",
	    "VM failures where they ran, since this havend started.");
	evbuffer_add_printf(b, "haven_vm_failures_total %" PRIu64 "\n",
	    m->vm_failures);
	metrics_head(b, "haven_failover_duration_seconds", "histogram",
	    "Failovers, from the cluster marking a host lost to its VM "
	    "running elsewhere, since this havend started.");
	for (i = 0; i < METRICS_BUCKETS; i++)
		evbuffer_add_printf(b, "haven_failover_duration_seconds_bucket"
		    "{le=\"%g\"} %" PRIu64 "\n", metrics_buckets[i],
		    m->failover_buckets[i]);
	evbuffer_add_printf(b, "haven_failover_duration_seconds_bucket"
	    "{le=\"+Inf\"} %" PRIu64 "\n", m->failovers);
	evbuffer_add_printf(b, "haven_failover_duration_seconds_sum %.3f\n",
	    m->failover_sum_s);
	evbuffer_add_printf(b, "haven_failover_duration_seconds_count %" PRIu64
	    "\n", m->failovers);
}

struct metrics {
	struct evhttp		*http;
	struct metrics_counts	 counts;
	struct alert_track	 track;
	metrics_view_fn		 view;
	void			*arg;
};

/* The client's address is a loopback one (127.0.0.0/8, ::1). */
static int
metrics_peer_loopback(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	const struct sockaddr		*sa;
	const struct sockaddr_in	*in;
	const struct sockaddr_in6	*in6;

	if ((conn = evhttp_request_get_connection(req)) == NULL ||
	    (sa = evhttp_connection_get_addr(conn)) == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		in6 = (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127);
	}
	return 0;
}

/*
 * /metrics for whoever reaches the listener; / (the status page) and
 * /api/status (what it shows) for loopback clients only.
 */
static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct metrics		*m = arg;
	struct metrics_view	 v;
	struct evbuffer		*b;
	const char		*path = evhttp_request_get_uri(req), *type;
	int			 page;

	if (strcmp(path, "/metrics") == 0)
		page = 0;
	else if (strcmp(path, "/") == 0)
		page = 1;
	else if (strcmp(path, "/api/status") == 0)
		page = 2;
	else {
		evhttp_send_error(req, HTTP_NOTFOUND, "see /metrics or /");
		return;
	}
	if (page != 0 && !metrics_peer_loopback(req)) {
		evhttp_send_error(req, 403, "the status page answers this "
		    "host only: ssh -L 9731:127.0.0.1:9731 to it");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	memset(&v, 0, sizeof v);
	m->view(&v, m->arg);
	switch (page) {
	case 0:
		metrics_render(b, &m->counts, &v);
		type = "text/plain; version=0.0.4; charset=utf-8";
		break;
	case 1:
		evbuffer_add(b, status_page, strlen(status_page));
		type = "text/html; charset=utf-8";
		break;
	default:
		status_json(b, &v);
		type = "application/json";
		break;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

struct metrics *
metrics_new(struct event_base *base, const char *listen, metrics_view_fn view,
    void *arg, char *err, size_t errlen)
{
	struct metrics	*m;
	char		 host[64];
	unsigned	 port;

	if ((m = calloc(1, sizeof *m)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	m->view = view;
	m->arg = arg;
	if (*listen == '\0')
		return m;	/* counts only: nothing listens */
	if (config_listen_parse(listen, host, sizeof host, &port) == -1) {
		snprintf(err, errlen, "[metrics] listen %s: not ADDRESS:PORT",
		    listen);
		free(m);
		return NULL;
	}
	/* Metrics are not worth a VM: an address taken or missing is a
	 * warning, and havend runs on without serving them. */
	if ((m->http = evhttp_new(base)) == NULL ||
	    evhttp_bind_socket(m->http, host, (ev_uint16_t)port) == -1) {
		log_warn("metrics: cannot listen on %s (%s): not served; give "
		    "[metrics] listen a free address of this host, or none",
		    listen, strerror(errno));
		if (m->http != NULL)
			evhttp_free(m->http);
		m->http = NULL;
		return m;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, metrics_request, m);
	log_info("metrics: http://%s/metrics", listen);
	return m;
}

void
metrics_applied(struct metrics *m, const Haven__ClusterState *cs,
    const Haven__Change *c)
{
	struct alert_event	ev[ALERT_EVENTS_PER_CHANGE];
	size_t			n, i;

	if (m == NULL)
		return;
	n = alert_classify(&m->track, cs, c, ev, ALERT_EVENTS_PER_CHANGE);
	for (i = 0; i < n; i++)
		metrics_count(&m->counts, &ev[i]);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m);
}
