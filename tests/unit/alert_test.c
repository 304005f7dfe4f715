/*
 * Unit tests of havend's alerts (clusterd/alert.c): which events an
 * applied change holds (host lost, fenced or not, a VM failed, a failover
 * done with its duration since the host was lost), the JSON a program
 * reads, [alert] in haven.conf, and the program run for real: one event
 * at a time in order, only on the proposer, only the chosen kinds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "alert.h"
#include "common.h"
#include "config.h"
#include "proto.h"
#include "tree.h"

/* A state of three hosts and web1 on host 3, at seq. */
struct fixture {
	Haven__ClusterState	 cs;
	Haven__Host		 hosts[3], *hostp[3];
	Haven__HostConfig	 hc[3];
	Haven__HostRuntime	 hr[3];
	Haven__Vm		 vm, *vmp[1];
	Haven__VmConfig		 vc;
	Haven__VmRuntime	 vr;
	Haven__Event		 ev[2], *evp[2];
	char			 names[3][8];
};

static void
fixture_init(struct fixture *f)
{
	size_t	i;

	memset(f, 0, sizeof *f);
	haven__cluster_state__init(&f->cs);
	for (i = 0; i < 3; i++) {
		haven__host__init(&f->hosts[i]);
		haven__host_config__init(&f->hc[i]);
		haven__host_runtime__init(&f->hr[i]);
		snprintf(f->names[i], sizeof f->names[i], "h%zu", i + 1);
		f->hc[i].node_id = (uint32_t)i + 1;
		f->hc[i].name = f->names[i];
		f->hosts[i].config = &f->hc[i];
		f->hosts[i].runtime = &f->hr[i];
		f->hostp[i] = &f->hosts[i];
	}
	f->cs.hosts = f->hostp;
	f->cs.n_hosts = 3;
	haven__vm__init(&f->vm);
	haven__vm_config__init(&f->vc);
	haven__vm_runtime__init(&f->vr);
	f->vc.name = "web1";
	f->vm.config = &f->vc;
	f->vm.runtime = &f->vr;
	f->vmp[0] = &f->vm;
	f->cs.vms = f->vmp;
	f->cs.n_vms = 1;
	for (i = 0; i < 2; i++) {
		haven__event__init(&f->ev[i]);
		f->evp[i] = &f->ev[i];
	}
	f->cs.events = f->evp;
}

/* The event log of the last change: one line for subject. */
static void
fixture_event(struct fixture *f, uint64_t seq, const char *subject,
    const char *text)
{
	f->cs.seq = seq;
	f->ev[0].seq = seq - 1;
	f->ev[0].subject = "host 9";
	f->ev[0].text = "older";
	f->ev[1].seq = seq;
	f->ev[1].subject = (char *)subject;
	f->ev[1].text = (char *)text;
	f->cs.n_events = 2;
}

static void
test_failover_events(void **state)
{
	struct fixture		 f;
	struct alert_track	 t = { .n = 0 };
	struct alert_event	 out[4];
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostLost		 lost = HAVEN__HOST_LOST__INIT;
	Haven__HostFence	 fence = HAVEN__HOST_FENCE__INIT;
	Haven__VmTransition	 tr = HAVEN__VM_TRANSITION__INIT;

	fixture_init(&f);
	/* Host 3 lost: its VM recovering. */
	f.vr.owner = 3;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_RECOVERING;
	fixture_event(&f, 10, "host 3", "lost; fencing pending");
	lost.node_id = 3;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_LOST;
	c.host_lost = &lost;
	c.origin = 1;
	c.timestamp_us = 1000000000;
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(out[0].kind, CONFIG_ALERT_HOST_LOST);
	assert_int_equal(out[0].node_id, 3);
	assert_string_equal(out[0].host, "h3");
	assert_string_equal(out[0].subject, "host 3");
	assert_string_equal(out[0].text, "lost; fencing pending");
	assert_int_equal(out[0].seq, 10);
	assert_int_equal(t.n, 1);

	/* A pending fence is nothing; fenced is. */
	fence.node_id = 3;
	fence.status = HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_FENCE;
	c.host_fence = &fence;
	fixture_event(&f, 11, "host 3", "fencing");
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 0);
	fence.status = HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED;
	fence.level = "storage";
	fixture_event(&f, 12, "host 3", "fenced by storage");
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(out[0].kind, CONFIG_ALERT_FENCED);
	assert_string_equal(out[0].level, "storage");
	fence.status = HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED;
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(out[0].kind, CONFIG_ALERT_FENCE_FAILED);

	/* Starting on host 2 is nothing yet; running there is the
	 * failover done, 4.5 s after the loss, reported once. */
	f.vr.owner = 2;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_STARTING;
	tr.name = "web1";
	tr.phase = HAVEN__VM_PHASE__VM_PHASE_STARTING;
	c.kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c.vm_transition = &tr;
	c.origin = 2;
	c.timestamp_us = 1004500000;
	fixture_event(&f, 13, "vm web1", "starting (generation 2)");
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 0);
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	tr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	fixture_event(&f, 14, "vm web1", "running (generation 2)");
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(out[0].kind, CONFIG_ALERT_FAILOVER_DONE);
	assert_string_equal(out[0].vm, "web1");
	assert_string_equal(out[0].host, "h2");
	assert_int_equal(out[0].from, 3);
	assert_int_equal(out[0].duration_ms, 4500);
	assert_int_equal(out[0].origin, 2);
	assert_int_equal(t.n, 0);
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 0);

	/* A failure is an event of its own. */
	tr.phase = HAVEN__VM_PHASE__VM_PHASE_FAILED;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_FAILED;
	fixture_event(&f, 15, "vm web1", "failed: QEMU exited");
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(out[0].kind, CONFIG_ALERT_VM_FAILED);
	assert_string_equal(out[0].text, "failed: QEMU exited");
}

/* A VM stopped while it recovered is no failover. */
static void
test_stopped_forgets(void **state)
{
	struct fixture		 f;
	struct alert_track	 t = { .n = 0 };
	struct alert_event	 out[4];
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostLost		 lost = HAVEN__HOST_LOST__INIT;
	Haven__VmTransition	 tr = HAVEN__VM_TRANSITION__INIT;

	fixture_init(&f);
	f.vr.owner = 3;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_RECOVERING;
	fixture_event(&f, 10, "host 3", "lost");
	lost.node_id = 3;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_LOST;
	c.host_lost = &lost;
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 1);
	assert_int_equal(t.n, 1);
	tr.name = "web1";
	tr.phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_STOPPED;
	c.kind_case = HAVEN__CHANGE__KIND_VM_TRANSITION;
	c.vm_transition = &tr;
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 0);
	assert_int_equal(t.n, 0);
	tr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	f.vr.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	assert_int_equal(alert_classify(&t, &f.cs, &c, out, 4), 0);
}

static void
test_json(void **state)
{
	struct alert_event	 e;
	struct json_object	*o;
	char			*s;

	memset(&e, 0, sizeof e);
	e.kind = CONFIG_ALERT_FAILOVER_DONE;
	e.seq = 14;
	e.timestamp_us = 1004500000;
	snprintf(e.subject, sizeof e.subject, "vm web1");
	snprintf(e.text, sizeof e.text, "running \"quoted\"\n");
	e.node_id = 2;
	snprintf(e.host, sizeof e.host, "h2");
	snprintf(e.vm, sizeof e.vm, "web1");
	e.from = 3;
	e.duration_ms = 4500;
	assert_non_null(s = alert_json(&e, "prod", "h2"));
	assert_null(strchr(s, '\n'));	/* one line, the newline escaped */
	assert_non_null(o = json_tokener_parse(s));
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "kind")), "failover-done");
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "cluster")), "prod");
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "time")), "1970-01-01T00:16:44.500Z");
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "text")), "running \"quoted\"\n");
	assert_int_equal(json_object_get_int64(json_object_object_get(o,
	    "duration_ms")), 4500);
	assert_int_equal(json_object_get_int64(json_object_object_get(o,
	    "from_node_id")), 3);
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "vm")), "web1");
	json_object_put(o);
	free(s);
}

static void
test_config(void **state)
{
	struct config		c;
	struct config_error	errs[8];
	size_t			n;
	const char		*base = "[node]\nname = h1\n[interfaces]\n"
	    "management = eth0\nstorage = eth1\n";
	char			text[512];

	snprintf(text, sizeof text, "%s[alert]\nprogram = /bin/true\n"
	    "events = host-lost failover-done\ntimeout_s = 5\n", base);
	assert_int_equal(config_parse_string(text, &c, errs, 8, &n), 0);
	assert_string_equal(c.alert_program, "/bin/true");
	assert_int_equal(c.alert_events, (1u << CONFIG_ALERT_HOST_LOST) |
	    (1u << CONFIG_ALERT_FAILOVER_DONE));
	assert_int_equal(c.alert_timeout_s, 5);

	/* Defaults: no program, every event, 30 s. */
	assert_int_equal(config_parse_string(base, &c, errs, 8, &n), 0);
	assert_string_equal(c.alert_program, "");
	assert_int_equal(c.alert_events, CONFIG_ALERT_ALL);
	assert_int_equal(c.alert_timeout_s, CONFIG_ALERT_TIMEOUT_S);

	snprintf(text, sizeof text, "%s[alert]\nprogram = relative\n"
	    "events = host-lost burnt\ntimeout_s = 0\n", base);
	assert_int_equal(config_parse_string(text, &c, errs, 8, &n), -1);
	assert_int_equal(n, 3);
	assert_non_null(strstr(errs[0].message, "absolute"));
	assert_non_null(strstr(errs[1].message, "'burnt' is not an event"));
	assert_non_null(strstr(errs[2].message, "seconds from 1 to 600"));
}

/* The program for real: it appends what it reads to a file. */
static void
test_program_runs_in_order(void **state)
{
	struct fixture		 f;
	struct config		 c;
	struct event_base	*base;
	struct alert		*a;
	Haven__Change		 c1 = HAVEN__CHANGE__INIT;
	Haven__HostLost		 lost = HAVEN__HOST_LOST__INIT;
	Haven__HostFence	 fence = HAVEN__HOST_FENCE__INIT;
	char			 dir[] = "/tmp/haven-alert-test.XXXXXX";
	char			 prog[128], out[128], line[1024];
	FILE			*fp;
	uint64_t		 start;
	int			 lines = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(prog, sizeof prog, "%s/alert", dir);
	snprintf(out, sizeof out, "%s/out", dir);
	assert_non_null(fp = fopen(prog, "w"));
	fprintf(fp, "#!/bin/sh\nsleep 0.2\ncat >>%s\necho >>%s\n", out, out);
	fclose(fp);
	assert_int_equal(chmod(prog, 0755), 0);

	config_defaults(&c);
	snprintf(c.alert_program, sizeof c.alert_program, "%s", prog);
	c.alert_events = (1u << CONFIG_ALERT_HOST_LOST) |
	    (1u << CONFIG_ALERT_FENCED);
	snprintf(c.cluster_name, sizeof c.cluster_name, "lab");
	assert_non_null(base = ev_base_new());
	assert_non_null(a = alert_new(base, &c));

	fixture_init(&f);
	fixture_event(&f, 10, "host 3", "lost");
	lost.node_id = 3;
	c1.kind_case = HAVEN__CHANGE__KIND_HOST_LOST;
	c1.host_lost = &lost;
	/* Another member proposed it: not ours to run. */
	c1.origin = 2;
	alert_applied(a, &f.cs, &c1, 1, "h1");
	c1.origin = 1;
	alert_applied(a, &f.cs, &c1, 1, "h1");
	/* Failed fencing is not chosen; fenced is, and comes second. */
	fence.node_id = 3;
	fence.status = HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED;
	c1.kind_case = HAVEN__CHANGE__KIND_HOST_FENCE;
	c1.host_fence = &fence;
	fixture_event(&f, 11, "host 3", "fence failed");
	alert_applied(a, &f.cs, &c1, 1, "h1");
	fence.status = HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED;
	fixture_event(&f, 12, "host 3", "fenced");
	alert_applied(a, &f.cs, &c1, 1, "h1");

	start = ev_now_ms();
	while (ev_now_ms() - start < 5000) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		lines = 0;
		if ((fp = fopen(out, "r")) != NULL) {
			while (fgets(line, sizeof line, fp) != NULL)
				if (*line == '{')
					lines++;
			fclose(fp);
		}
		if (lines >= 2)
			break;
		usleep(20000);
	}
	assert_int_equal(lines, 2);
	usleep(300000);	/* nothing more comes */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_non_null(fp = fopen(out, "r"));
	assert_non_null(fgets(line, sizeof line, fp));
	assert_non_null(strstr(line, "\"kind\":\"host-lost\""));
	assert_non_null(strstr(line, "\"seq\":10"));
	assert_non_null(strstr(line, "\"reporter\":\"h1\""));
	assert_non_null(fgets(line, sizeof line, fp));
	assert_non_null(strstr(line, "\"kind\":\"fenced\""));
	assert_non_null(strstr(line, "\"seq\":12"));
	assert_null(fgets(line, sizeof line, fp));
	fclose(fp);
	alert_free(a);
	event_base_free(base);
	unlink(out);
	unlink(prog);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failover_events),
		cmocka_unit_test(test_stopped_forgets),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_program_runs_in_order),
	};

	log_init("alert_test", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
