/*
 * clusterd/supervise.c: a worker adopted from a previous havend is not
 * havend's child, so no SIGCHLD reports its end. Once havend has stopped
 * it, the supervisor must still say that it is gone (cb->gone, from the
 * event loop), whether its channel closes after the stop or had closed
 * before it: without that word its VM waited, `starting` with no QEMU,
 * for the next change of the state (chaos seed 3). The fake worker here
 * listens on <run_dir>/<uuid>/worker.sock and says hello as a real one
 * does; lab.vm kills the QEMU of a really adopted worker.
 *
 * A hello whose pid is its peer's is adopted only when that process is
 * in the VM's cgroup (havend signals it through a pidfd then).
 *
 * A VM's taps (clusterd/tap.c, replaced here by a stub): a NIC whose tap
 * cannot be made fails the start with tap.c's sentence, before any worker
 * is forked, and the taps already opened are closed (gone with them).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "config.h"
#include "vmcg.h"
#include "proto.h"

#define UUID	"5aaec77f-abed-4b1c-bedc-0cd256550928"

struct fixture {
	struct event_base	*base;
	struct config		 config;
	struct supervisor	*sup;
	char			 dir[64];
	int			 listener;
	int			 peer;		/* the fake worker's end */
	int			 adopted;
	int			 gone;
	int			 reports;
	Haven__VmPhase		 last_phase;
};

static void
cb_report(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, int fenced,
    const char *detail, void *arg)
{
	struct fixture	*f = arg;

	f->reports++;
	f->last_phase = phase;
}

static void
cb_adopted(struct supervisor *s, const char *uuid, const char *name,
    uint64_t generation, Haven__VmPhase phase, void *arg)
{
	struct fixture	*f = arg;

	f->adopted++;
}

static void
cb_gone(struct supervisor *s, void *arg)
{
	struct fixture	*f = arg;

	f->gone++;
}

static int
cb_may_register(struct supervisor *s, const char *uuid, void *arg)
{
	return 0;
}

/* tap.c's stand-in: NIC 0 gets the write end of a pipe (the test holds
 * the read end, which sees EOF once every copy is closed); any other NIC's
 * bridge is missing. */
static int	 stub_tap_reader = -1;
static size_t	 stub_taps_opened;

int
tap_open(const Haven__Nic *nic, const char *vm_uuid, size_t index,
    char *err, size_t errlen)
{
	int	 p[2];

	if (index > 0) {
		snprintf(err, errlen, "bridge %s does not exist on this host "
		    "(NIC %zu)", nic->bridge, index);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	stub_tap_reader = p[0];
	stub_taps_opened++;
	return p[1];
}

static const struct supervisor_callbacks callbacks = {
	.report = cb_report,
	.adopted = cb_adopted,
	.gone = cb_gone,
	.may_register = cb_may_register,
};

/* Run the loop until *flag is set (or 2 s pass). */
static void
loop_until(struct fixture *f, const int *flag)
{
	int	i;

	for (i = 0; i < 200 && !*flag; i++) {
		struct timeval	tv = { 0, 10000 };

		event_base_loopexit(f->base, &tv);
		event_base_dispatch(f->base);
	}
}

static int
setup(void **state)
{
	struct fixture		*f;
	struct sockaddr_un	 sun;
	char			 vmdir[128];

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/haven-sup-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(vmdir, sizeof vmdir, "%s/%s", f->dir, UUID);
	assert_int_equal(mkdir(vmdir, 0700), 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/worker.sock", vmdir);
	f->listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listener >= 0);
	assert_int_equal(bind(f->listener, (struct sockaddr *)&sun,
	    sizeof sun), 0);
	assert_int_equal(listen(f->listener, 1), 0);
	f->peer = -1;

	f->base = event_base_new();
	assert_non_null(f->base);
	config_defaults(&f->config);
	snprintf(f->config.vm_run_dir, sizeof f->config.vm_run_dir, "%s",
	    f->dir);
	snprintf(f->config.node_name, sizeof f->config.node_name,
	    "unit-supervise-%ld", (long)getpid());
	f->sup = supervisor_new(f->base, &f->config, &callbacks, f);
	assert_non_null(f->sup);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 path[160];
	uint32_t	 i;

	supervisor_free(f->sup);
	/* The workers' cgroups (vmcg.c), where root could make them. */
	for (i = 0; i < 4; i++)
		(void)vmcg_release(VMCG_ROOT, f->config.node_name,
		    f->config.vm_uid_base + i);
	event_base_free(f->base);
	if (f->peer != -1)
		close(f->peer);
	close(f->listener);
	snprintf(path, sizeof path, "%s/%s/worker.sock", f->dir, UUID);
	unlink(path);
	snprintf(path, sizeof path, "%s/%s", f->dir, UUID);
	rmdir(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
peer_cb(struct channel *c, struct frame *fr, int err, void *arg)
{
}

/* havend adopts the fake worker: it connects, the worker says hello
 * (running, generation 3, pid: none to signal, or another process). */
static void
say_hello(struct fixture *f, uint32_t pid)
{
	Haven__WorkerHello	 hello = HAVEN__WORKER_HELLO__INIT;
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	struct channel		*c;

	/* The fake worker is this process: its uid stands for a worker's. */
	f->config.vm_uid_base = geteuid();
	assert_int_equal(supervisor_adopt_all(f->sup), 1);
	f->peer = accept(f->listener, NULL, NULL);
	assert_true(f->peer >= 0);
	spec.uuid = UUID;
	spec.name = "vm1";
	hello.spec = &spec;
	hello.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	hello.generation = 3;
	hello.worker_pid = pid;
	spec.uid = geteuid();
	c = channel_new(f->base, dup(f->peer), FRAME_DEFAULT_MAX, peer_cb, NULL);
	assert_non_null(c);
	assert_int_equal(channel_send_message(c, FRAME_WORKER_HELLO,
	    &hello.base, NULL, 0), 0);
	if (pid == 0)
		loop_until(f, &f->adopted);
	else
		loop_until(f, &f->reports);
	channel_free(c);
}

static void
adopt(struct fixture *f)
{
	say_hello(f, 0);
	assert_int_equal(f->adopted, 1);
	assert_non_null(supervisor_find(f->sup, UUID));
}

/* A hello that names another process than the peer (pid 1, say: what
 * havend would signal) is not adopted; the VM is reported failed. */
static void
test_hello_not_its_peer(void **state)
{
	struct fixture	*f = *state;

	say_hello(f, 1);
	assert_int_equal(f->adopted, 0);
	assert_int_equal(f->last_phase, HAVEN__VM_PHASE__VM_PHASE_FAILED);
	close(f->peer);
	f->peer = -1;
}

/* Its pid is its peer's own, but that process is not in the VM's cgroup
 * (as root, where this machine has cgroups): no pidfd for it, not adopted,
 * the VM reported failed. */
static void
test_hello_outside_cgroup(void **state)
{
	struct fixture	*f = *state;
	char		 err[256];

	if (geteuid() != 0 || vmcg_prepare(VMCG_ROOT, f->config.node_name,
	    geteuid(), err, sizeof err) == -1)
		skip();
	say_hello(f, (uint32_t)getpid());
	assert_int_equal(f->adopted, 0);
	assert_int_equal(f->last_phase, HAVEN__VM_PHASE__VM_PHASE_FAILED);
	close(f->peer);
	f->peer = -1;
}

/* Stopped while its channel is open; the worker then exits. */
static void
test_gone_after_kill(void **state)
{
	struct fixture	*f = *state;

	adopt(f);
	supervisor_kill(f->sup, UUID);
	assert_non_null(supervisor_find(f->sup, UUID));
	assert_int_equal(f->gone, 0);
	close(f->peer);
	f->peer = -1;
	loop_until(f, &f->gone);
	assert_int_equal(f->gone, 1);
	assert_null(supervisor_find(f->sup, UUID));
	/* A stopped worker's end is no failure to report. */
	assert_int_equal(f->reports, 0);
}

/* Its channel closed first (the VM failed), then havend stops it: gone,
 * said from the loop, never from inside supervisor_kill's caller. */
static void
test_gone_when_closed_before_kill(void **state)
{
	struct fixture	*f = *state;
	int		 reported = 0;

	adopt(f);
	close(f->peer);
	f->peer = -1;
	while (!reported) {
		loop_until(f, &f->reports);
		reported = f->reports;
	}
	assert_int_equal(f->last_phase, HAVEN__VM_PHASE__VM_PHASE_FAILED);
	assert_non_null(supervisor_find(f->sup, UUID));
	supervisor_kill(f->sup, UUID);
	assert_null(supervisor_find(f->sup, UUID));
	assert_int_equal(f->gone, 0);
	loop_until(f, &f->gone);
	assert_int_equal(f->gone, 1);
}

/* NIC 1's bridge is missing: no worker, the sentence, NIC 0's tap closed. */
static void
test_start_without_bridge(void **state)
{
	struct fixture		*f = *state;
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	Haven__Nic		 nic0 = HAVEN__NIC__INIT, nic1 = HAVEN__NIC__INIT;
	Haven__Nic		*nics[2] = { &nic0, &nic1 };
	const char		*suffix[] = { ".serial", ".qemu.log",
				    ".worker.log" };
	char			 err[256], path[160], byte;
	size_t			 i;

	if (geteuid() != 0)
		skip();		/* the run directory is chowned to the VM */
	snprintf(f->config.vm_log_dir, sizeof f->config.vm_log_dir, "%s",
	    f->dir);
	spec.uuid = UUID;
	spec.name = "vm1";
	nic0.bridge = "br-guests";
	nic1.bridge = "br-gone";
	nic0.mac = "52:54:00:00:00:01";
	nic1.mac = "52:54:00:00:00:02";
	spec.nics = nics;
	spec.n_nics = 2;
	assert_int_equal(supervisor_start(f->sup, &spec,
	    HAVEN__WORKER_ACTION__WORKER_ACTION_START, 0, NULL, err,
	    sizeof err), -1);
	assert_string_equal(err, "bridge br-gone does not exist on this host "
	    "(NIC 1)");
	assert_null(supervisor_find(f->sup, UUID));
	assert_int_equal(stub_taps_opened, 1);
	/* NIC 0's tap: every copy closed. */
	assert_int_equal(read(stub_tap_reader, &byte, 1), 0);
	close(stub_tap_reader);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/vm1%s", f->dir, suffix[i]);
		unlink(path);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_not_its_peer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hello_outside_cgroup,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_after_kill, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gone_when_closed_before_kill,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_without_bridge,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
