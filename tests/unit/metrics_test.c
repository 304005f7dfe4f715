/*
 * Unit tests of havend's metrics (clusterd/metrics.c): the counts from
 * alert events (fences by level, the failover histogram), the text
 * rendered for a state (label values escaped), and [metrics] listen. The
 * lab's failover test scrapes a running havend and runs promtool on it.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "alert.h"
#include "clusterd.h"
#include "common.h"
#include "config.h"
#include "metrics.h"
#include "proto.h"

static char *
render(const struct metrics_counts *m, const struct metrics_view *v)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 n;
	char		*s;

	metrics_render(b, m, v);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_counts_and_text(void **state)
{
	struct metrics_counts	 m;
	struct metrics_view	 v = { .node_name = "h\"1", .quorate = 1,
	    .nmembers = 3 };
	struct alert_event	 e;
	Haven__ClusterState	 cs = HAVEN__CLUSTER_STATE__INIT;
	Haven__Host		 host = HAVEN__HOST__INIT, *hp = &host;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__HostRuntime	 hr = HAVEN__HOST_RUNTIME__INIT;
	Haven__PoolHealth	 ph = HAVEN__POOL_HEALTH__INIT, *php = &ph;
	Haven__Vm		 vm = HAVEN__VM__INIT, *vmp = &vm;
	Haven__VmConfig		 vc = HAVEN__VM_CONFIG__INIT;
	Haven__VmRuntime	 vr = HAVEN__VM_RUNTIME__INIT;
	char			*s;

	memset(&m, 0, sizeof m);
	memset(&e, 0, sizeof e);
	e.kind = CONFIG_ALERT_HOST_LOST;
	metrics_count(&m, &e);
	e.kind = CONFIG_ALERT_FENCED;
	snprintf(e.level, sizeof e.level, "storage");
	metrics_count(&m, &e);
	e.kind = CONFIG_ALERT_FENCE_FAILED;
	snprintf(e.level, sizeof e.level, "ipmi");
	metrics_count(&m, &e);
	e.kind = CONFIG_ALERT_FAILOVER_DONE;
	e.duration_ms = 4500;
	e.fence_ms = 200;
	e.restart_ms = 4300;
	metrics_count(&m, &e);
	e.duration_ms = 700;
	e.fence_ms = 300;
	e.restart_ms = 400;
	metrics_count(&m, &e);

	hc.node_id = 2;
	hc.name = "h2";
	hr.membership = HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST;
	ph.pool = "san";
	ph.reachable = 1;
	hr.storage = &php;
	hr.n_storage = 1;
	host.config = &hc;
	host.runtime = &hr;
	cs.hosts = &hp;
	cs.n_hosts = 1;
	vc.name = "web\\1";
	vr.owner = 3;
	vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	vm.config = &vc;
	vm.runtime = &vr;
	cs.vms = &vmp;
	cs.n_vms = 1;
	cs.seq = 42;
	v.cs = &cs;

	s = render(&m, &v);
	assert_non_null(strstr(s, "haven_up{node=\"h\\\"1\"} 1\n"));
	assert_non_null(strstr(s, "haven_quorate 1\n"));
	assert_non_null(strstr(s, "haven_members 3\n"));
	assert_non_null(strstr(s, "# TYPE haven_state_changes_total counter\n"
	    "haven_state_changes_total 42\n"));
	assert_non_null(strstr(s, "haven_host_member{host=\"h2\",node_id=\"2\","
	    "state=\"lost\"} 1\n"));
	assert_non_null(strstr(s, "haven_pool_reachable{host=\"h2\","
	    "pool=\"san\"} 1\n"));
	assert_non_null(strstr(s, "haven_vm_phase{vm=\"web\\\\1\","
	    "phase=\"running\"} 1\n"));
	assert_non_null(strstr(s, "haven_vm_owner{vm=\"web\\\\1\"} 3\n"));
	assert_non_null(strstr(s, "haven_hosts_lost_total 1\n"));
	assert_non_null(strstr(s, "haven_fences_total{level=\"storage\","
	    "outcome=\"fenced\"} 1\n"));
	assert_non_null(strstr(s, "haven_fences_total{level=\"ipmi\","
	    "outcome=\"failed\"} 1\n"));
	/* 0.7 s and 4.5 s: one in le=1, both from le=5 on. */
	assert_non_null(strstr(s, "haven_failover_duration_seconds_bucket"
	    "{le=\"1\"} 1\n"));
	assert_non_null(strstr(s, "haven_failover_duration_seconds_bucket"
	    "{le=\"3\"} 1\n"));
	assert_non_null(strstr(s, "haven_failover_duration_seconds_bucket"
	    "{le=\"5\"} 2\n"));
	assert_non_null(strstr(s, "haven_failover_duration_seconds_bucket"
	    "{le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(s, "haven_failover_duration_seconds_sum 5.200\n"));
	assert_non_null(strstr(s, "haven_failover_duration_seconds_count 2\n"));
	/* Its phases: both fences within 1 s, one restart within 1 s. */
	assert_non_null(strstr(s, "haven_failover_phase_seconds_bucket"
	    "{phase=\"fence\",le=\"1\"} 2\n"));
	assert_non_null(strstr(s, "haven_failover_phase_seconds_bucket"
	    "{phase=\"restart\",le=\"1\"} 1\n"));
	assert_non_null(strstr(s, "haven_failover_phase_seconds_sum"
	    "{phase=\"restart\"} 4.700\n"));
	assert_non_null(strstr(s, "haven_failover_phase_seconds_count"
	    "{phase=\"fence\"} 2\n"));
	free(s);

	/* No state yet: the gauges of havend alone. */
	v.cs = NULL;
	s = render(&m, &v);
	assert_null(strstr(s, "haven_vm_phase{"));
	assert_non_null(strstr(s, "haven_state_changes_total 0\n"));
	free(s);
}

/* What the status page polls: hosts, VMs with their owner's name and move,
 * the newest events; and the page itself asks for it. */
static void
test_status_json(void **state)
{
	struct metrics_view	 v = { .node_name = "h1", .quorate = 1,
	    .nmembers = 2 };
	Haven__ClusterState	 cs = HAVEN__CLUSTER_STATE__INIT;
	Haven__Host		 host = HAVEN__HOST__INIT, *hp = &host;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__HostRuntime	 hr = HAVEN__HOST_RUNTIME__INIT;
	Haven__Vm		 vm = HAVEN__VM__INIT, *vmp = &vm;
	Haven__VmConfig		 vc = HAVEN__VM_CONFIG__INIT;
	Haven__VmRuntime	 vr = HAVEN__VM_RUNTIME__INIT;
	Haven__Move		 mv = HAVEN__MOVE__INIT;
	Haven__Event		 ev[80], *evp[80];
	struct evbuffer		*b = evbuffer_new();
	struct json_object	*o, *a, *x;
	char			*s, subj[80][16];
	size_t			 i, n;

	hc.node_id = 2;
	hc.name = "h2";
	hr.membership = HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER;
	host.config = &hc;
	host.runtime = &hr;
	cs.hosts = &hp;
	cs.n_hosts = 1;
	vc.name = "web1";
	vc.memory_mib = 96;
	vr.owner = 2;
	vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	mv.to = 3;
	mv.total_bytes = 100;
	mv.remaining_bytes = 25;
	vr.move = &mv;
	vm.config = &vc;
	vm.runtime = &vr;
	cs.vms = &vmp;
	cs.n_vms = 1;
	for (i = 0; i < 80; i++) {
		haven__event__init(&ev[i]);
		snprintf(subj[i], sizeof subj[i], "vm e%zu", i);
		ev[i].seq = i + 1;
		ev[i].subject = subj[i];
		ev[i].text = "x";
		evp[i] = &ev[i];
	}
	cs.events = evp;
	cs.n_events = 80;
	cs.seq = 80;
	v.cs = &cs;
	status_json(b, &v);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	assert_non_null(o = json_tokener_parse(s));
	assert_true(json_object_get_boolean(json_object_object_get(o,
	    "quorate")));
	a = json_object_object_get(o, "hosts");
	assert_int_equal(json_object_array_length(a), 1);
	x = json_object_array_get_idx(a, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(x,
	    "membership")), "member");
	a = json_object_object_get(o, "vms");
	x = json_object_array_get_idx(a, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(x,
	    "owner_name")), "h2");
	assert_string_equal(json_object_get_string(json_object_object_get(x,
	    "phase")), "running");
	x = json_object_object_get(x, "move");
	assert_int_equal(json_object_get_int64(json_object_object_get(x,
	    "to")), 3);
	/* The newest 60 events, oldest first. */
	a = json_object_object_get(o, "events");
	assert_int_equal(json_object_array_length(a), 60);
	assert_int_equal(json_object_get_int64(json_object_object_get(
	    json_object_array_get_idx(a, 0), "seq")), 21);
	json_object_put(o);
	free(s);
	evbuffer_free(b);
	assert_non_null(strstr(status_page, "fetch('/api/status'"));
}

/* A quick move followed through its changes to its end on the target,
 * with its downtime; a live one that ends where it began. */
static void
test_moves(void **state)
{
	struct metrics_moves	 t = { .n = 0 };
	struct metrics_counts	 m;
	struct metrics_view	 v = { .node_name = "h1" };
	Haven__ClusterState	 cs = HAVEN__CLUSTER_STATE__INIT;
	Haven__Vm		 vm = HAVEN__VM__INIT, *vmp = &vm;
	Haven__VmConfig		 vc = HAVEN__VM_CONFIG__INIT;
	Haven__VmRuntime	 vr = HAVEN__VM_RUNTIME__INIT;
	Haven__Move		 mv = HAVEN__MOVE__INIT;
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__VmTransition	 tr = HAVEN__VM_TRANSITION__INIT;
	Haven__VmMigrate	 mg = HAVEN__VM_MIGRATE__INIT;
	struct evbuffer		*b = evbuffer_new();
	char			*s;
	size_t			 n;

	memset(&m, 0, sizeof m);
	vc.name = "web1";
	vm.config = &vc;
	vm.runtime = &vr;
	cs.vms = &vmp;
	cs.n_vms = 1;
	vr.owner = 1;
	vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	mg.name = "web1";
	tr.name = "web1";
	/* vm migrate --quick to 2 */
	mv.to = 2;
	mv.quick = 1;
	vr.move = &mv;
	c.kind_case = HAVEN__CHANGE__KIND_VM_MIGRATE;
	c.vm_migrate = &mg;
	c.timestamp_us = 10000000;
	metrics_move(&t, &m, &cs, &c);
	assert_int_equal(t.n, 1);
	/* saving: the guest stops */
	vr.phase = HAVEN__VM_PHASE__VM_PHASE_SAVING;
	mv.downtime_since_us = 10100000;
	c.kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c.vm_transition = &tr;
	metrics_move(&t, &m, &cs, &c);
	/* restored on 2, 400 ms later: the move is over */
	vr.move = NULL;
	vr.owner = 2;
	vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	c.timestamp_us = 10500000;
	metrics_move(&t, &m, &cs, &c);
	assert_int_equal(t.n, 0);
	assert_int_equal(m.moves_done[1], 1);
	/* A change of another kind or without a move: nothing. */
	metrics_move(&t, &m, &cs, &c);
	assert_int_equal(m.moves_done[1], 1);
	/* A live move to 3 that ends running on 2 again. */
	mv.to = 3;
	mv.quick = 0;
	mv.downtime_since_us = 0;
	vr.move = &mv;
	metrics_move(&t, &m, &cs, &c);
	vr.move = NULL;
	metrics_move(&t, &m, &cs, &c);
	assert_int_equal(m.moves_abandoned[0], 1);
	assert_int_equal(m.moves_done[0], 0);

	metrics_render(b, &m, &v);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	assert_non_null(strstr(s, "haven_migrations_total{kind=\"quick\","
	    "outcome=\"done\"} 1\n"));
	assert_non_null(strstr(s, "haven_migrations_total{kind=\"live\","
	    "outcome=\"abandoned\"} 1\n"));
	assert_non_null(strstr(s, "haven_migration_downtime_seconds_bucket"
	    "{kind=\"quick\",le=\"0.3\"} 0\n"));
	assert_non_null(strstr(s, "haven_migration_downtime_seconds_bucket"
	    "{kind=\"quick\",le=\"0.5\"} 1\n"));
	assert_non_null(strstr(s, "haven_migration_downtime_seconds_sum"
	    "{kind=\"quick\"} 0.400\n"));
	free(s);
	evbuffer_free(b);
}

/* This host's iSCSI paths and its workers' saves and restores; the whole
 * text is promtool-clean (when promtool is installed). */
static void
test_paths_and_transfers(void **state)
{
	struct metrics_counts	 m;
	struct metrics_view	 v;
	char			*s, cmd[] = "promtool check metrics >/dev/null 2>&1";
	FILE			*f;

	memset(&m, 0, sizeof m);
	memset(&v, 0, sizeof v);
	v.node_name = "h1";
	snprintf(v.paths[0].pool, sizeof v.paths[0].pool, "san");
	snprintf(v.paths[0].portal, sizeof v.paths[0].portal,
	    "10.0.1.10:3260");
	v.paths[0].up = 1;
	metrics_path_observe(&v.paths[0], 0.0004);
	metrics_path_observe(&v.paths[0], 0.003);
	metrics_path_observe(&v.paths[0], 0.3);
	v.paths[0].failed = 2;
	snprintf(v.paths[1].pool, sizeof v.paths[1].pool, "s\"2");
	snprintf(v.paths[1].portal, sizeof v.paths[1].portal, "[fd00::1]:3260");
	v.paths[1].up = 0;
	snprintf(v.paths[2].pool, sizeof v.paths[2].pool, "new");
	v.paths[2].up = -1;	/* not judged yet: no up series */
	v.npaths = 3;
	v.transfers.saves = 2;
	v.transfers.save_bytes = 3 << 20;
	v.transfers.save_us = 1500000;
	v.transfers.restores = 1;
	v.transfers.restore_bytes = 1 << 20;
	v.transfers.restore_us = 250000;

	s = render(&m, &v);
	assert_non_null(strstr(s, "haven_iscsi_path_up{pool=\"san\","
	    "portal=\"10.0.1.10:3260\"} 1\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_up{pool=\"s\\\"2\","
	    "portal=\"[fd00::1]:3260\"} 0\n"));
	assert_null(strstr(s, "haven_iscsi_path_up{pool=\"new\""));
	assert_non_null(strstr(s, "haven_iscsi_path_probe_failures_total{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\"} 2\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_latency_seconds_bucket{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_latency_seconds_bucket{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_latency_seconds_bucket{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\",le=\"0.5\"} 3\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_latency_seconds_count{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\"} 3\n"));
	assert_non_null(strstr(s, "haven_iscsi_path_latency_seconds_sum{"
	    "pool=\"san\",portal=\"10.0.1.10:3260\"} 0.303400\n"));
	assert_non_null(strstr(s, "# TYPE haven_vm_save_bytes_total counter\n"
	    "haven_vm_save_bytes_total 3145728\n"));
	assert_non_null(strstr(s, "haven_vm_save_seconds_total 1.500000\n"));
	assert_non_null(strstr(s, "haven_vm_saves_total 2\n"));
	assert_non_null(strstr(s, "haven_vm_restore_bytes_total 1048576\n"));
	assert_non_null(strstr(s, "haven_vm_restore_seconds_total 0.250000\n"));
	assert_non_null(strstr(s, "haven_vm_restores_total 1\n"));
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		assert_non_null(f = popen(cmd, "w"));
		fputs(s, f);
		assert_int_equal(pclose(f), 0);
	}
	free(s);
}

static void
view_none(struct metrics_view *v, void *arg)
{
	v->node_name = "h1";
}

/* One HTTP/1.0 exchange with the listener on port, the loop run until the
 * reply is whole; the reply's text (static). */
static const char *
http_get(struct event_base *base, unsigned port, const char *path,
    const char *cookie)
{
	static char		 reply[16384];
	struct sockaddr_in	 sin;
	char			 req[1024];
	size_t			 n = 0;
	ssize_t			 r;
	int			 fd, i;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n%s%s%s\r\n", path,
	    cookie != NULL ? "Cookie: " : "", cookie != NULL ? cookie : "",
	    cookie != NULL ? "\r\n" : "");
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (i = 0; i < 2000; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		r = read(fd, reply + n, sizeof reply - 1 - n);
		if (r == 0)
			break;
		if (r > 0)
			n += (size_t)r;
		else if (errno == EAGAIN)
			usleep(1000);
		else
			break;
	}
	close(fd);
	reply[n] = '\0';
	return reply;
}

/* The status page behind its login (status_auth always, so that this
 * loopback client must log in): refused, a code traded once for a cookie,
 * the page with it; /metrics open. */
static void
test_login(void **state)
{
	struct event_base	*base = event_base_new();
	struct metrics		*m;
	char			 dir[] = "/tmp/metrics-login-XXXXXX", key[64];
	char			 err[256], url[512], cookie[256], listen[32];
	char			 first[512];
	const char		*r, *c, *code;
	unsigned		 port;
	uint32_t		 uid;
	size_t			 len;

	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof key, "%s/status.key", dir);
	for (port = 39731, m = NULL; port < 39831; port++) {
		snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
		m = metrics_new(base, listen, view_none, NULL, key, 1, err,
		    sizeof err);
		assert_non_null(m);
		if (metrics_login(m, 1000, ROLE_VIEWER, "h1", url, sizeof url,
		    err, sizeof err) == 0)
			break;
		metrics_free(m);	/* that port was taken */
		m = NULL;
	}
	assert_non_null(m);
	assert_non_null(code = strstr(url, "/login?code=l.1000.viewer."));
	snprintf(first, sizeof first, "%s", code);
	code = first;
	r = http_get(base, port, "/metrics", NULL);
	assert_non_null(strstr(r, " 200 "));
	r = http_get(base, port, "/", NULL);
	assert_non_null(strstr(r, " 401 "));
	assert_non_null(strstr(r, "havenctl status login"));
	r = http_get(base, port, "/api/status", "haven_status=s.1000.viewer."
	    "99999999999.0000000000000000000000000000000000000000000000000000"
	    "000000000000");
	assert_non_null(strstr(r, " 401 "));
	r = http_get(base, port, code, NULL);
	assert_non_null(strstr(r, " 303 "));
	assert_non_null(c = strstr(r, "Set-Cookie: haven_status="));
	assert_non_null(strstr(c, "HttpOnly; SameSite=Strict"));
	len = strcspn(c + 12, ";");
	snprintf(cookie, sizeof cookie, "%.*s", (int)len, c + 12);
	r = http_get(base, port, "/api/status", cookie);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\"node\":\"h1\""));
	/* Once only. */
	r = http_get(base, port, code, NULL);
	assert_non_null(strstr(r, " 401 "));
	/* A tampered login code. */
	snprintf(url, sizeof url, "%s", code);
	url[strlen(url) - 1] = url[strlen(url) - 1] == '0' ? '1' : '0';
	r = http_get(base, port, url, NULL);
	assert_non_null(strstr(r, " 401 "));
	/* Used codes are kept until they expire: 31 more logins fill the
	 * ring, the next waits, and the first code still does not work. */
	for (uid = 1001; uid <= 1032; uid++) {
		assert_int_equal(metrics_login(m, uid, ROLE_VIEWER, "h1", url,
		    sizeof url, err, sizeof err), 0);
		r = http_get(base, port, strstr(url, "/login?code="), NULL);
		assert_non_null(strstr(r, uid < 1032 ? " 303 " : " 503 "));
	}
	assert_non_null(strstr(r, "Too many logins"));
	r = http_get(base, port, code, NULL);
	assert_non_null(strstr(r, " 401 "));
	metrics_free(m);
	event_base_free(base);
	unlink(key);
	rmdir(dir);
}

static void
test_listen(void **state)
{
	char		host[64];
	unsigned	port;

	assert_int_equal(config_listen_parse("127.0.0.1:9731", host,
	    sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9731);
	assert_int_equal(config_listen_parse("[::1]:80", host, sizeof host,
	    &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(config_listen_parse("10.0.0.1", host, sizeof host,
	    &port), -1);
	assert_int_equal(config_listen_parse("10.0.0.1:0", host, sizeof host,
	    &port), -1);
	assert_int_equal(config_listen_parse("10.0.0.1:65536", host,
	    sizeof host, &port), -1);
	assert_int_equal(config_listen_parse(":80", host, sizeof host, &port),
	    -1);
	assert_int_equal(config_listen_parse("::1:80", host, sizeof host,
	    &port), -1);
	assert_int_equal(config_listen_parse("h:8x", host, sizeof host,
	    &port), -1);
}

static void
test_config(void **state)
{
	struct config		c;
	struct config_error	errs[4];
	size_t			n;
	const char		*base = "[node]\nname = h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\n";
	char			text[256];

	assert_int_equal(config_parse_string(base, &c, errs, 4, &n), 0);
	assert_string_equal(c.metrics_listen, CONFIG_METRICS_LISTEN);
	snprintf(text, sizeof text, "%s[metrics]\nlisten = none\n", base);
	assert_int_equal(config_parse_string(text, &c, errs, 4, &n), 0);
	assert_string_equal(c.metrics_listen, "");
	snprintf(text, sizeof text, "%s[metrics]\nlisten = 10.0.0.5:9100\n",
	    base);
	assert_int_equal(config_parse_string(text, &c, errs, 4, &n), 0);
	assert_string_equal(c.metrics_listen, "10.0.0.5:9100");
	assert_int_equal(c.metrics_status_auth_always, 0);
	snprintf(text, sizeof text, "%s[metrics]\nstatus_auth = always\n",
	    base);
	assert_int_equal(config_parse_string(text, &c, errs, 4, &n), 0);
	assert_int_equal(c.metrics_status_auth_always, 1);
	snprintf(text, sizeof text, "%s[metrics]\nstatus_auth = never\n",
	    base);
	assert_int_equal(config_parse_string(text, &c, errs, 4, &n), -1);
	assert_non_null(strstr(errs[0].message, "always"));
	snprintf(text, sizeof text, "%s[metrics]\nlisten = 9100\n", base);
	assert_int_equal(config_parse_string(text, &c, errs, 4, &n), -1);
	assert_non_null(strstr(errs[0].message, "ADDRESS:PORT"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_text),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_moves),
		cmocka_unit_test(test_paths_and_transfers),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_config),
	};

	log_init("metrics_test", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
