/*
 * Unit tests of vmcg.c on this machine's own cgroup hierarchies (root
 * only; skipped otherwise): a process that joined a VM's cgroup and a
 * child it detached (its own session, its parent gone, as a hostile QEMU
 * would leave one) are both killed by vmcg_kill; the cgroup then reads
 * empty and vmcg_release removes it; a cgroup that never existed is empty
 * and releases cleanly. Its memory bound reads back as set.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmcg.h"

#define UID	4000000000U	/* no real worker's */

static char	node[32];

/* The VM's "worker": joins the cgroup, detaches a grandchild that sleeps
 * in its own session, tells its pid through p, and sleeps itself. */
static pid_t
spawn_vm(int p[2])
{
	pid_t	pid, grandchild;

	if ((pid = fork()) != 0)
		return pid;
	if (vmcg_join(VMCG_ROOT, node, UID) == -1)
		_exit(2);
	if ((grandchild = fork()) == 0) {
		(void)setsid();
		for (;;)
			pause();
	}
	if (write(p[1], &grandchild, sizeof grandchild) !=
	    (ssize_t)sizeof grandchild)
		_exit(3);
	for (;;)
		pause();
}

/* The VM cgroup's CPU weight as the kernel shows it (v2 cpu.weight, v1
 * cpu.shares of the cpu hierarchy), found under this process's cgroups. */
static long
cpu_weight(void)
{
	char	 cmd[512], buf[64];
	FILE	*f;
	long	 v = -1;

	snprintf(cmd, sizeof cmd, "cat $(find %s -maxdepth 6 -path '*haven.%s.vm-%u/cpu.weight' "
	    "-o -path '*/cpu*/*haven.%s.vm-%u/cpu.shares' 2>/dev/null | head -1)",
	    VMCG_ROOT, node, (unsigned)UID, node, (unsigned)UID);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) != NULL)
		v = strtol(buf, NULL, 10);
	(void)pclose(f);
	return v;
}

static void
test_kill_and_release(void **state)
{
	char		 err[256];
	pid_t		 worker, escapee = 0;
	int		 p[2], status, i;

	(void)state;
	if (geteuid() != 0 || vmcg_prepare(VMCG_ROOT, node, UID, err,
	    sizeof err) == -1) {
		print_message("skipped: %s\n", geteuid() != 0 ? "not root" :
		    err);
		skip();
	}
	assert_true(vmcg_empty(VMCG_ROOT, node, UID));
	/* Its memory bound, where the host has a memory controller. */
	if (vmcg_limit_memory(VMCG_ROOT, node, UID, 300ULL << 20) == 0)
		assert_int_equal(vmcg_memory_limit(VMCG_ROOT, node, UID),
		    300ULL << 20);
	else
		print_message("no memory controller: %s\n", strerror(errno));
	/* Its CPU weight, where the host has a cpu controller: 2 vCPUs. */
	if (vmcg_weight_cpu(VMCG_ROOT, node, UID, 2) == 0)
		assert_int_equal(cpu_weight(), access(VMCG_ROOT
		    "/cgroup.controllers", F_OK) == 0 ? 200 : 2048);
	else
		print_message("no cpu controller: %s\n", strerror(errno));
	assert_int_equal(pipe(p), 0);
	worker = spawn_vm(p);
	assert_int_equal(read(p[0], &escapee, sizeof escapee),
	    (ssize_t)sizeof escapee);
	assert_true(escapee > 0);
	assert_false(vmcg_empty(VMCG_ROOT, node, UID));
	assert_int_equal(vmcg_holds(VMCG_ROOT, node, UID, worker), 1);
	assert_int_equal(vmcg_holds(VMCG_ROOT, node, UID, getpid()), 0);
	/* Both, whatever session or parent: at least the two. */
	assert_true(vmcg_kill(VMCG_ROOT, node, UID) >= 2);
	assert_int_equal(waitpid(worker, &status, 0), worker);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* The escapee is not our child: it leaves the cgroup as it dies. */
	for (i = 0; i < 200 && !vmcg_empty(VMCG_ROOT, node, UID); i++)
		usleep(10000);
	assert_true(vmcg_empty(VMCG_ROOT, node, UID));
	assert_int_equal(vmcg_release(VMCG_ROOT, node, UID), 0);
	close(p[0]);
	close(p[1]);
}

static void
test_absent(void **state)
{
	(void)state;
	assert_true(vmcg_empty(VMCG_ROOT, node, UID + 1));
	assert_int_equal(vmcg_release(VMCG_ROOT, node, UID + 1), 0);
	assert_int_equal(vmcg_kill(VMCG_ROOT, node, UID + 1), 0);
	assert_int_equal(vmcg_holds(VMCG_ROOT, node, UID + 1, getpid()), -1);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_kill_and_release),
		cmocka_unit_test(test_absent),
	};

	snprintf(node, sizeof node, "unit%ld", (long)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
