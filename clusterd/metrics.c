/*
 * havend's HTTP listener ([metrics] listen), served by libevent's evhttp on
 * havend's loop, read-only: Prometheus' text format (exposition format
 * 0.0.4) at /metrics, for whoever the address lets reach it (localhost by
 * default, or the management network), and the status page (status.c) at
 * / and /api/status: anonymous for loopback clients, behind a login for
 * the others ([metrics] status_auth always: for every client). The login
 * (/login?code=) trades a code from havenctl status login for a session
 * cookie, both signed tokens (status_token.c).
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
#include "clusterd.h"
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
	size_t	i, p;
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
		m->failovers++;
		for (p = 0; p < 3; p++) {
			s = (double)(p == 0 ? e->duration_ms : p == 1 ?
			    e->fence_ms : e->restart_ms) / 1000;
			m->failover_sum_s[p] += s;
			for (i = 0; i < METRICS_BUCKETS; i++)
				if (s <= metrics_buckets[i])
					m->failover_buckets[p][i]++;
		}
		break;
	default:
		break;
	}
}

/* A move's downtime, seconds. */
static const double metrics_downtime_buckets[METRICS_BUCKETS] = {
	0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30,
};

static const char *
metrics_change_vm(const Haven__Change *c)
{
	switch (c->kind_case) {
	case HAVEN__CHANGE__KIND_VM_TRANSITION:
		return c->vm_transition->name;
	case HAVEN__CHANGE__KIND_VM_LIVE:
		return c->vm_live->name;
	case HAVEN__CHANGE__KIND_VM_ASSIGN:
		return c->vm_assign->name;
	case HAVEN__CHANGE__KIND_VM_MIGRATE:
		return c->vm_migrate->name;
	default:
		return NULL;
	}
}

void
metrics_move(struct metrics_moves *t, struct metrics_counts *m,
    const Haven__ClusterState *cs, const Haven__Change *c)
{
	const Haven__Vm		*vm;
	const Haven__Move	*mv;
	const char		*name;
	size_t			 i, j;
	double			 s;
	int			 k;

	if ((name = metrics_change_vm(c)) == NULL ||
	    (vm = tree_vm(cs, name)) == NULL)
		return;
	mv = vm->runtime->move;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->vms[i].name, name) == 0)
			break;
	if (mv != NULL && mv->to != 0) {
		if (i == t->n) {
			if (t->n == METRICS_MOVES)
				return;
			t->n++;
			memset(&t->vms[i], 0, sizeof t->vms[i]);
			snprintf(t->vms[i].name, sizeof t->vms[i].name, "%s",
			    name);
		}
		t->vms[i].to = mv->to;
		t->vms[i].quick = mv->quick;
		if (mv->downtime_since_us != 0)
			t->vms[i].since_us = mv->downtime_since_us;
		return;
	}
	if (i == t->n)
		return;
	/* The move is over: where is the VM? */
	k = t->vms[i].quick ? 1 : 0;
	if (vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    vm->runtime->owner == t->vms[i].to) {
		m->moves_done[k]++;
		if (t->vms[i].since_us != 0 &&
		    c->timestamp_us >= t->vms[i].since_us) {
			s = (double)(c->timestamp_us - t->vms[i].since_us) / 1e6;
			m->downtime_sum_s[k] += s;
			for (j = 0; j < METRICS_BUCKETS; j++)
				if (s <= metrics_downtime_buckets[j])
					m->downtime_buckets[k][j]++;
		}
	} else if (vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING)
		m->moves_abandoned[k]++;
	else
		m->moves_failed[k]++;
	t->vms[i] = t->vms[--t->n];
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

/* One histogram's series with labels (escaped already, "" for none). */
static void
metrics_histogram_labels(struct evbuffer *b, const char *name,
    const char *labels, const double *bounds, const uint64_t *buckets,
    double sum, uint64_t count, int precision)
{
	const char	*sep = *labels != '\0' ? "," : "";
	size_t		 i;

	for (i = 0; i < METRICS_BUCKETS; i++)
		evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n",
		    name, labels, sep, bounds[i], buckets[i]);
	evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n",
	    name, labels, sep, count);
	if (*labels != '\0')
		evbuffer_add_printf(b, "%s_sum{%s} %.*f\n%s_count{%s} %" PRIu64
		    "\n", name, labels, precision, sum, name, labels, count);
	else
		evbuffer_add_printf(b, "%s_sum %.*f\n%s_count %" PRIu64 "\n",
		    name, precision, sum, name, count);
}

/* One histogram's series (its head when help is given), with a phase
 * label when phase is. */
static void
metrics_histogram(struct evbuffer *b, const char *name, const char *help,
    const char *label_name, const char *phase, const double *bounds,
    const uint64_t *buckets, double sum, uint64_t count)
{
	char	label[48] = "";

	if (help != NULL)
		metrics_head(b, name, "histogram", help);
	if (phase != NULL)
		snprintf(label, sizeof label, "%s=\"%s\"", label_name, phase);
	metrics_histogram_labels(b, name, label, bounds, buckets, sum, count,
	    3);
}

/* A label value escaped into a string (truncated at len). */
static void
metrics_label_string(char *out, size_t len, const char *s)
{
	size_t	n = 0;

	for (; *s != '\0' && n + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			out[n++] = '\\';
		out[n++] = *s == '\n' ? 'n' : *s;
	}
	out[n] = '\0';
}

/* This host's iSCSI paths, from its storage heartbeat. */
static void
metrics_render_paths(struct evbuffer *b, const struct metrics_view *v)
{
	char	labels[512], pool[160], portal[300];
	size_t	i;

	metrics_head(b, "haven_iscsi_path_up", "gauge",
	    "1 while this host reaches a pool through a portal (its storage "
	    "heartbeat's verdict), 0 when it does not.");
	for (i = 0; i < v->npaths; i++) {
		if (v->paths[i].up < 0)
			continue;
		metrics_label_string(pool, sizeof pool, v->paths[i].pool);
		metrics_label_string(portal, sizeof portal, v->paths[i].portal);
		evbuffer_add_printf(b, "haven_iscsi_path_up{pool=\"%s\","
		    "portal=\"%s\"} %d\n", pool, portal, v->paths[i].up);
	}
	metrics_head(b, "haven_iscsi_path_probe_failures_total", "counter",
	    "This host's storage heartbeat READs through a portal that got "
	    "no answer in time, since the path was first probed.");
	for (i = 0; i < v->npaths; i++) {
		metrics_label_string(pool, sizeof pool, v->paths[i].pool);
		metrics_label_string(portal, sizeof portal, v->paths[i].portal);
		evbuffer_add_printf(b, "haven_iscsi_path_probe_failures_total{"
		    "pool=\"%s\",portal=\"%s\"} %" PRIu64 "\n", pool, portal,
		    v->paths[i].failed);
	}
	metrics_head(b, "haven_iscsi_path_latency_seconds", "histogram",
	    "Round trips of this host's storage heartbeat: a READ of one "
	    "sector of the pool's LUN through the portal, answered.");
	for (i = 0; i < v->npaths; i++) {
		metrics_label_string(pool, sizeof pool, v->paths[i].pool);
		metrics_label_string(portal, sizeof portal, v->paths[i].portal);
		snprintf(labels, sizeof labels, "pool=\"%s\",portal=\"%s\"",
		    pool, portal);
		metrics_histogram_labels(b, "haven_iscsi_path_latency_seconds",
		    labels, metrics_path_buckets, v->paths[i].latency_buckets,
		    v->paths[i].latency_sum_s, v->paths[i].answered, 6);
	}
}

/* This host's quick-migration saves and restores: rate(bytes) over
 * rate(seconds) is their throughput. */
static void
metrics_render_transfers(struct evbuffer *b, const struct metrics_transfers *t)
{
	metrics_head(b, "haven_vm_saves_total", "counter",
	    "Quick-migration saves of a VM's state this host's workers "
	    "finished, since this havend started.");
	evbuffer_add_printf(b, "haven_vm_saves_total %" PRIu64 "\n", t->saves);
	metrics_head(b, "haven_vm_save_bytes_total", "counter",
	    "Bytes of QEMU's state those saves wrote to the VM's volume.");
	evbuffer_add_printf(b, "haven_vm_save_bytes_total %" PRIu64 "\n",
	    t->save_bytes);
	metrics_head(b, "haven_vm_save_seconds_total", "counter",
	    "Time those saves took, from the save's start to the state on "
	    "the volume.");
	evbuffer_add_printf(b, "haven_vm_save_seconds_total %.6f\n",
	    (double)t->save_us / 1e6);
	metrics_head(b, "haven_vm_restores_total", "counter",
	    "Quick-migration restores of a VM's saved state this host's "
	    "workers finished (the VM running), since this havend started.");
	evbuffer_add_printf(b, "haven_vm_restores_total %" PRIu64 "\n",
	    t->restores);
	metrics_head(b, "haven_vm_restore_bytes_total", "counter",
	    "Bytes of saved state those restores read into QEMU.");
	evbuffer_add_printf(b, "haven_vm_restore_bytes_total %" PRIu64 "\n",
	    t->restore_bytes);
	metrics_head(b, "haven_vm_restore_seconds_total", "counter",
	    "Time those restores took, from reading the saved state to the "
	    "VM running.");
	evbuffer_add_printf(b, "haven_vm_restore_seconds_total %.6f\n",
	    (double)t->restore_us / 1e6);
}

/* What is: read from the state at each scrape. */
static void
metrics_render_state(struct evbuffer *b, const struct metrics_view *v)
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
			    tree_membership_name(h->runtime->membership));
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
}

/* What happened since havend started: counted from the changes. */
static void
metrics_render_counts(struct evbuffer *b, const struct metrics_counts *m)
{
	size_t	i;

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
	metrics_histogram(b, "haven_failover_duration_seconds",
	    "Failovers, from the cluster marking a host lost to its VM "
	    "running elsewhere, since this havend started.", NULL, NULL,
	    metrics_buckets, m->failover_buckets[0], m->failover_sum_s[0],
	    m->failovers);
	metrics_head(b, "haven_failover_phase_seconds", "histogram",
	    "The failovers' timeline in phases: fence (the host marked lost "
	    "to fenced) and restart (fenced to the VM running).");
	metrics_histogram(b, "haven_failover_phase_seconds", NULL, "phase",
	    "fence", metrics_buckets, m->failover_buckets[1],
	    m->failover_sum_s[1], m->failovers);
	metrics_histogram(b, "haven_failover_phase_seconds", NULL, "phase",
	    "restart", metrics_buckets, m->failover_buckets[2],
	    m->failover_sum_s[2], m->failovers);
	metrics_head(b, "haven_migrations_total", "counter",
	    "Planned moves (vm migrate, drain, failback) that ended, by kind "
	    "and outcome, since this havend started.");
	for (i = 0; i < 2; i++) {
		const char	*kind = i ? "quick" : "live";

		evbuffer_add_printf(b, "haven_migrations_total{kind=\"%s\","
		    "outcome=\"done\"} %" PRIu64 "\n", kind, m->moves_done[i]);
		evbuffer_add_printf(b, "haven_migrations_total{kind=\"%s\","
		    "outcome=\"abandoned\"} %" PRIu64 "\n", kind,
		    m->moves_abandoned[i]);
		evbuffer_add_printf(b, "haven_migrations_total{kind=\"%s\","
		    "outcome=\"failed\"} %" PRIu64 "\n", kind,
		    m->moves_failed[i]);
	}
	metrics_head(b, "haven_migration_downtime_seconds", "histogram",
	    "The guest's downtime in the moves done: from its vCPUs stopping "
	    "(live) or its save beginning (quick) to running on the target.");
	for (i = 0; i < 2; i++)
		metrics_histogram(b, "haven_migration_downtime_seconds", NULL,
		    "kind", i ? "quick" : "live", metrics_downtime_buckets,
		    m->downtime_buckets[i], m->downtime_sum_s[i],
		    m->moves_done[i]);
}

void
metrics_render(struct evbuffer *b, const struct metrics_counts *m,
    const struct metrics_view *v)
{
	metrics_render_state(b, v);
	metrics_render_paths(b, v);
	metrics_render_transfers(b, &v->transfers);
	metrics_render_counts(b, m);
}

#define METRICS_LOGIN_S		120	/* a login code's life */
#define METRICS_SESSION_S	(8 * 3600)	/* a session cookie's */
#define METRICS_USED_CODES	32	/* login codes remembered as used */

struct metrics {
	struct evhttp		*http;
	char			 listen[64];
	int			 auth_always;	/* [metrics] status_auth */
	int			 have_key;	/* else: loopback only */
	uint8_t			 key[STATUS_KEY_BYTES];
	/* Login codes already traded for a session: each works once. */
	char			 used[METRICS_USED_CODES][STATUS_TOKEN_MAX + 1];
	uint64_t		 used_until_s[METRICS_USED_CODES];
	size_t			 nused;
	struct metrics_counts	 counts;
	struct alert_track	 track;
	struct metrics_moves	 moves;
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

static const char *
metrics_peer(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	char				*addr = NULL;
	ev_uint16_t			 port;

	if ((conn = evhttp_request_get_connection(req)) != NULL)
		evhttp_connection_get_peer(conn, &addr, &port);
	return addr != NULL ? addr : "?";
}

/* 401 with a page that says how to log in. */
static void
metrics_refuse(struct evhttp_request *req, const char *why)
{
	struct evbuffer	*b;

	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><title>Haven: log in</title></head>"
	    "<body id=\"login-needed\"><h1>Log in to see this host's status"
	    "</h1><p>%s.</p><p>On a host of the cluster, as a user with at "
	    "least the viewer role, run <code>havenctl status login</code> "
	    "and open the address it prints within %d seconds.</p></body>"
	    "</html>\n", why, METRICS_LOGIN_S);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 401, "Unauthorized", b);
	evbuffer_free(b);
}

/* The session cookie's token checked: 0 and its holder, or -1 with why. */
static int
metrics_session(struct metrics *m, struct evhttp_request *req,
    struct status_token *t, const char **why)
{
	const char			*cookie, *v;
	size_t				 len;
	enum status_token_result	 r;

	cookie = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Cookie");
	if (cookie == NULL || (v = status_token_cookie(cookie, &len)) == NULL) {
		*why = "You are not logged in";
		return -1;
	}
	r = status_token_check(m->key, v, len, STATUS_TOKEN_SESSION,
	    now_us() / 1000000, t);
	if (r == STATUS_TOKEN_OK && t->role >= ROLE_VIEWER)
		return 0;
	*why = r == STATUS_TOKEN_EXPIRED ? "Your session has expired" :
	    "Your session cookie is not valid here";
	return -1;
}

/* /login?code=CODE: a login code from havenctl status login, once, for a
 * session cookie. */
static void
metrics_login_page(struct metrics *m, struct evhttp_request *req,
    const char *code)
{
	struct status_token		 t, s;
	enum status_token_result	 r;
	char				 token[STATUS_TOKEN_MAX + 1];
	char				 cookie[STATUS_TOKEN_MAX + 96];
	size_t				 i, len = strlen(code);

	r = status_token_check(m->key, code, len, STATUS_TOKEN_LOGIN,
	    now_us() / 1000000, &t);
	for (i = 0; r == STATUS_TOKEN_OK && i < m->nused; i++)
		if (strcmp(m->used[i], code) == 0)
			r = STATUS_TOKEN_EXPIRED;	/* used: as good as */
	if (r != STATUS_TOKEN_OK || t.role < ROLE_VIEWER) {
		log_warn("status page: login refused from %s: the code is %s",
		    metrics_peer(req), r == STATUS_TOKEN_OK ? "for no role" :
		    status_token_strerror(r));
		metrics_refuse(req, r == STATUS_TOKEN_EXPIRED ? "That login "
		    "code has expired or was used already" : "That login code "
		    "is not valid here");
		return;
	}
	/* A used code is forgotten only once it has expired: with the ring
	 * full of live ones, this login waits rather than let one of them
	 * work again. */
	if (m->nused >= METRICS_USED_CODES &&
	    m->used_until_s[m->nused % METRICS_USED_CODES] >=
	    now_us() / 1000000) {
		log_warn("status page: login from %s turned away: %d logins "
		    "in the last %d s", metrics_peer(req), METRICS_USED_CODES,
		    METRICS_LOGIN_S);
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Too many logins in "
		    "the last two minutes; try again shortly");
		return;
	}
	snprintf(m->used[m->nused % METRICS_USED_CODES],
	    sizeof m->used[0], "%s", code);
	m->used_until_s[m->nused % METRICS_USED_CODES] = t.expiry_s;
	m->nused++;
	if (m->nused == 2 * METRICS_USED_CODES)
		m->nused = METRICS_USED_CODES;	/* the ring's index wraps */
	s = t;
	s.kind = STATUS_TOKEN_SESSION;
	s.expiry_s = now_us() / 1000000 + METRICS_SESSION_S;
	if (status_token_make(m->key, &s, token, sizeof token) == -1) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Max-Age=%d; HttpOnly; "
	    "SameSite=Strict", STATUS_COOKIE, token, METRICS_SESSION_S);
	log_info("status page: uid %u (%s) logged in from %s", t.uid,
	    roles_name(t.role), metrics_peer(req));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Set-Cookie", cookie);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Location", "/");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 303, "See Other", NULL);
}

/*
 * /metrics for whoever reaches the listener; / (the status page) and
 * /api/status (what it shows) for loopback clients, and for others (for
 * every client with status_auth always) with a session cookie from
 * /login.
 */
static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct metrics		*m = arg;
	struct metrics_view	 v;
	struct status_token	 t;
	struct evbuffer		*b;
	const char		*path = evhttp_request_get_uri(req), *type;
	const char		*why;
	int			 page;

	if (strcmp(path, "/metrics") == 0)
		page = 0;
	else if (strcmp(path, "/") == 0)
		page = 1;
	else if (strcmp(path, "/api/status") == 0)
		page = 2;
	else if (strncmp(path, "/login?code=", 12) == 0)
		page = 3;
	else {
		evhttp_send_error(req, HTTP_NOTFOUND, "see /metrics or /");
		return;
	}
	if (page != 0 && (m->auth_always || !metrics_peer_loopback(req))) {
		if (!m->have_key) {
			evhttp_send_error(req, 403, "the status page answers "
			    "this host only (no login key: see havend's log): "
			    "ssh -L 9731:127.0.0.1:9731 to it");
			return;
		}
		if (page == 3) {
			metrics_login_page(m, req, path + 12);
			return;
		}
		if (metrics_session(m, req, &t, &why) == -1) {
			metrics_refuse(req, why);
			return;
		}
	} else if (page == 3) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Location", "/");
		evhttp_send_reply(req, 303, "See Other", NULL);
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

int
metrics_login(struct metrics *m, uint32_t uid, int role, const char *node,
    char *url, size_t len, char *err, size_t errlen)
{
	struct status_token	t = { .kind = STATUS_TOKEN_LOGIN, .uid = uid,
	    .role = (enum role)role };
	char			token[STATUS_TOKEN_MAX + 1], host[64];
	unsigned		port;

	if (m == NULL || m->http == NULL) {
		snprintf(err, errlen, "this havend serves no status page: set "
		    "[metrics] listen");
		return -1;
	}
	if (!m->have_key) {
		snprintf(err, errlen, "this havend has no login key (see its "
		    "log): its status page answers this host only");
		return -1;
	}
	t.expiry_s = now_us() / 1000000 + METRICS_LOGIN_S;
	if (status_token_make(m->key, &t, token, sizeof token) == -1 ||
	    config_listen_parse(m->listen, host, sizeof host, &port) == -1) {
		snprintf(err, errlen, "no login for role %s",
		    roles_name(t.role));
		return -1;
	}
	/* A wildcard address: the host's name stands for it. */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
		snprintf(url, len, "http://%s:%u/login?code=%s", node, port,
		    token);
	else if (strchr(host, ':') != NULL)
		snprintf(url, len, "http://[%s]:%u/login?code=%s", host, port,
		    token);
	else
		snprintf(url, len, "http://%s:%u/login?code=%s", host, port,
		    token);
	return 0;
}

struct metrics *
metrics_new(struct event_base *base, const char *listen, metrics_view_fn view,
    void *arg, const char *key_path, int auth_always, char *err, size_t errlen)
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
	snprintf(m->listen, sizeof m->listen, "%s", listen);
	m->auth_always = auth_always;
	if (status_token_key(key_path, m->key, err, errlen) == 0)
		m->have_key = 1;
	else
		log_warn("metrics: no status page login: %s; the page answers "
		    "this host's clients only", err);
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
	metrics_move(&m->moves, &m->counts, cs, c);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	explicit_bzero(m->key, sizeof m->key);
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m);
}
