/*
 * haven-control-bench: the replicated state at scale (issue 5). Applies and
 * persists 10,000 changes (32 hosts, 5,000 VMs created, 4,968 of them set
 * running), against a baseline measured in the same run: writing and
 * fsyncing a file of the same size the same number of times. Then times
 * one placement of 5,000 VMs on 32 hosts, and reports this process's RSS
 * with 5,000 VMs defined (what havend holds for them).
 *
 *   haven-control-bench [DIR]      (default: a temporary directory)
 * Targets: placement < 100 ms; RSS < 32 MiB. Prints; does not fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clusterd.h"
#include "common.h"

#define BENCH_HOSTS	32
#define BENCH_VMS	5000
#define BENCH_CHANGES	10000

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
rss_kib(void)
{
	char	line[256];
	long	kib = -1;
	FILE	*fp = fopen("/proc/self/status", "r");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof line, fp) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(fp);
	return kib;
}

static int
apply(struct cluster *st, Haven__Change *c, const char *dir, int persist)
{
	char	err[256];
	int	r;

	if ((r = cluster_apply(st, c, 1, err, sizeof err)) != CLUSTER_OK) {
		fprintf(stderr, "change refused: %s\n", err);
		exit(1);
	}
	if (persist && cluster_save(st, dir, err, sizeof err) != CLUSTER_OK) {
		fprintf(stderr, "save: %s\n", err);
		exit(1);
	}
	return r;
}

int
main(int argc, char **argv)
{
	struct cluster			*st = cluster_new();
	struct coordinator_decisions	 d = { NULL, 0 };
	Haven__Change			 c;
	Haven__HostAdd			 ha;
	Haven__HostConfig		 hc;
	Haven__VmCreate			 vc;
	Haven__VmConfig			 cfg;
	Haven__VmSetDesired		 sd;
	uint32_t			 members[BENCH_HOSTS];
	char				 dir[256], name[32], uuid[40], host[32];
	char				 path[300], *buf;
	double				 t0, apply_s, base_s, place_s;
	struct stat			 sb;
	int				 i, n = 0, fd;
	long				 rss;

	log_init("haven-control-bench", LOG_LEVEL_WARN);
	if (argc > 1)
		snprintf(dir, sizeof dir, "%s", argv[1]);
	else if (mkdtemp(strcpy(dir, "/tmp/haven-control-bench.XXXXXX")) ==
	    NULL)
		return 1;
	mkdir(dir, 0700);

	t0 = now_s();
	for (i = 1; i <= BENCH_HOSTS; i++, n++) {
		haven__change__init(&c);
		haven__host_add__init(&ha);
		haven__host_config__init(&hc);
		snprintf(host, sizeof host, "host%02d", i);
		hc.node_id = (uint32_t)i;
		hc.name = host;
		hc.memory_mib = 256 * 1024;
		hc.vcpus = 64;
		ha.config = &hc;
		c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c.host_add = &ha;
		apply(st, &c, dir, 1);
		members[i - 1] = (uint32_t)i;
	}
	for (i = 0; i < BENCH_VMS; i++, n++) {
		haven__change__init(&c);
		haven__vm_create__init(&vc);
		haven__vm_config__init(&cfg);
		snprintf(name, sizeof name, "vm%05d", i);
		snprintf(uuid, sizeof uuid, "7d0c0d7e-0000-4000-8000-%012d", i);
		cfg.name = name;
		cfg.uuid = uuid;
		cfg.memory_mib = 1024;
		cfg.vcpus = 1;
		cfg.priority = (uint32_t)(100 * (1 + i % 3));
		vc.config = &cfg;
		c.kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
		c.vm_create = &vc;
		apply(st, &c, dir, 1);
	}
	for (i = 0; n < BENCH_CHANGES; i++, n++) {
		haven__change__init(&c);
		haven__vm_set_desired__init(&sd);
		snprintf(name, sizeof name, "vm%05d", i);
		sd.name = name;
		sd.desired = HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
		c.kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
		c.vm_set_desired = &sd;
		apply(st, &c, dir, 1);
	}
	apply_s = now_s() - t0;

	/* Baseline: the same number of write+fsync+rename of the final
	 * state's size, which is the floor of "persist before acknowledge". */
	snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_FILE);
	if (stat(path, &sb) == -1 || (buf = calloc(1, (size_t)sb.st_size)) ==
	    NULL)
		return 1;
	t0 = now_s();
	for (i = 0; i < BENCH_CHANGES; i++) {
		snprintf(path, sizeof path, "%s/baseline.tmp", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1 || write(fd, buf, (size_t)sb.st_size) !=
		    sb.st_size || fsync(fd) == -1)
			return 1;
		close(fd);
	}
	base_s = now_s() - t0;
	unlink(path);
	free(buf);

	/* The first reconcile makes the hosts members (host-join decisions);
	 * once they are applied the next one places every VM. */
	coordinator_reconcile(st, members, BENCH_HOSTS, &d);
	for (i = 0; (size_t)i < d.n; i++)
		apply(st, d.changes[i], dir, 0);
	coordinator_decisions_free(&d);
	t0 = now_s();
	coordinator_reconcile(st, members, BENCH_HOSTS, &d);
	place_s = now_s() - t0;
	rss = rss_kib();

	printf("state: %d hosts, %d VMs, %zu bytes on disk\n", BENCH_HOSTS,
	    BENCH_VMS, (size_t)sb.st_size);
	printf("apply+persist %d changes: %.2f s (%.0f/s); baseline "
	    "write+fsync of the final size x%d: %.2f s; ratio %.2f\n",
	    BENCH_CHANGES, apply_s, BENCH_CHANGES / apply_s, BENCH_CHANGES,
	    base_s, base_s / apply_s);
	printf("placement of %d VMs on %d hosts: %.1f ms, %zu decisions "
	    "(target < 100 ms)\n", BENCH_VMS, BENCH_HOSTS, place_s * 1000, d.n);
	printf("RSS with %d VMs defined: %.1f MiB (target < 32 MiB)\n",
	    BENCH_VMS, (double)rss / 1024);
	coordinator_decisions_free(&d);
	cluster_free(st);
	/* "keep": leave the state for tests/bench/control's running havend. */
	if (argc > 2 && strcmp(argv[2], "keep") == 0)
		return 0;
	snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_FILE);
	unlink(path);
	if (argc <= 1)
		rmdir(dir);
	return 0;
}
