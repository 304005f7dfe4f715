/*
 * Each VM's processes in a cgroup of their own (issue 15, DESIGN §7): the
 * worker joins it between fork and exec, so QEMU and anything QEMU starts
 * are in it too, and none of them can leave it (its files are root's).
 * When the worker is gone, havend kills whatever is left in it -- a child
 * QEMU forked, one that cleared its parent-death signal -- and removes it;
 * a worker uid is handed out again only when its cgroup is empty.
 *
 * Its memory is bounded (vmcg_limit_memory: the VM's memory plus
 * QEMU's and the worker's own, supervise.c says how much), and its CPU
 * weighted by its vCPUs (vmcg_weight_cpu).
 *
 * The cgroup is named after the worker's uid, under havend's own cgroup
 * in each hierarchy: with cgroup v2 (cgroup.controllers at the root) one
 * directory, killed at once through cgroup.kill where the kernel has it;
 * with v1 (this kind of machine mounts no unified hierarchy) one per
 * controller among freezer, pids, memory and cpu, killed by freezing it, then
 * SIGKILL to every process the kernel lists, then thawing (nothing forks
 * while frozen). The pids are the kernel's, never a message's.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "vmcg.h"

#define VMCG_PIDS_MAX		"4096"	/* QEMU's threads count too */
#define VMCG_FREEZE_TRIES	100	/* x 10 ms */
#define VMCG_KILL_ROUNDS	20

static const char *const vmcg_v1[] = { "freezer", "pids", "memory", "cpu" };

struct vmcg_dirs {
	char	path[4][PATH_MAX];	/* v2: [0] only */
	int	n;
	int	v2;
	int	freezer;		/* v1: [0] is the freezer */
};

static int
vmcg_write(const char *dir, const char *file, const char *value)
{
	char	path[PATH_MAX + 32];
	int	fd, rc = 0;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		rc = -1;
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

static int
vmcg_read(const char *dir, const char *file, char *buf, size_t len)
{
	char	path[PATH_MAX + 32];
	ssize_t	n;
	int	fd;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, len - 1);
	(void)close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Whether the comma-separated list holds word. */
static int
vmcg_listed(const char *list, const char *word)
{
	size_t	n = strlen(word);

	while (list != NULL && *list != '\0') {
		if (strncmp(list, word, n) == 0 &&
		    (list[n] == ',' || list[n] == '\0'))
			return 1;
		if ((list = strchr(list, ',')) != NULL)
			list++;
	}
	return 0;
}

/* havend's own cgroup in hierarchy ctrl ("" for v2), from /proc. */
static int
vmcg_self(const char *ctrl, char *out, size_t len)
{
	char	 line[512], *p, *list, *path;
	FILE	*f = fopen("/proc/self/cgroup", "re");
	int	 found = -1;

	if (f == NULL)
		return -1;
	while (found == -1 && fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* id:controllers:path */
		if ((p = strchr(line, ':')) == NULL)
			continue;
		list = p + 1;
		if ((path = strchr(list, ':')) == NULL)
			continue;
		*path++ = '\0';
		if (*ctrl == '\0' ? *list == '\0' : vmcg_listed(list, ctrl))
			found = snprintf(out, len, "%s", path) < (int)len ?
			    0 : -1;
	}
	(void)fclose(f);
	return found;
}

static void
vmcg_dirs(const char *root, const char *node, uint32_t uid,
    struct vmcg_dirs *d)
{
	char		probe[PATH_MAX], self[PATH_MAX / 2];
	struct stat	st;
	size_t		i;

	memset(d, 0, sizeof *d);
	snprintf(probe, sizeof probe, "%s/cgroup.controllers", root);
	if (access(probe, F_OK) == 0) {
		if (vmcg_self("", self, sizeof self) == -1)
			snprintf(self, sizeof self, "/");
		snprintf(d->path[0], sizeof d->path[0], "%s%s/haven.%s.vm-%u",
		    root, strcmp(self, "/") == 0 ? "" : self, node, uid);
		d->n = 1;
		d->v2 = 1;
		return;
	}
	for (i = 0; i < sizeof vmcg_v1 / sizeof vmcg_v1[0]; i++) {
		snprintf(probe, sizeof probe, "%s/%s", root, vmcg_v1[i]);
		if (stat(probe, &st) == -1 || !S_ISDIR(st.st_mode))
			continue;
		if (vmcg_self(vmcg_v1[i], self, sizeof self) == -1)
			snprintf(self, sizeof self, "/");
		if (i == 0)
			d->freezer = 1;
		snprintf(d->path[d->n++], sizeof d->path[0],
		    "%s/%s%s/haven.%s.vm-%u", root, vmcg_v1[i],
		    strcmp(self, "/") == 0 ? "" : self, node, uid);
	}
}

int
vmcg_prepare(const char *root, const char *node, uint32_t uid, char *err,
    size_t errlen)
{
	struct vmcg_dirs	d;
	int			i;

	vmcg_dirs(root, node, uid, &d);
	if (d.n == 0) {
		snprintf(err, errlen, "no cgroup hierarchy under %s", root);
		return -1;
	}
	for (i = 0; i < d.n; i++) {
		if (mkdir(d.path[i], 0755) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", d.path[i],
			    strerror(errno));
			return -1;
		}
		if (strstr(d.path[i], "/pids/") != NULL || d.v2)
			(void)vmcg_write(d.path[i], "pids.max", VMCG_PIDS_MAX);
	}
	return 0;
}

/* Its memory bound: memory.max (v2) or memory.limit_in_bytes (v1's
 * memory hierarchy). */
int
vmcg_limit_memory(const char *root, const char *node, uint32_t uid,
    uint64_t bytes)
{
	struct vmcg_dirs	d;
	char			value[32];
	int			i;

	vmcg_dirs(root, node, uid, &d);
	snprintf(value, sizeof value, "%llu", (unsigned long long)bytes);
	if (d.v2)
		return vmcg_write(d.path[0], "memory.max", value);
	for (i = 0; i < d.n; i++)
		if (strstr(d.path[i], "/memory/") != NULL)
			return vmcg_write(d.path[i], "memory.limit_in_bytes",
			    value);
	errno = ENOENT;
	return -1;
}

/*
 * Its CPU weight, from its vCPUs: cpu.weight (v2, 100 a vCPU) or
 * cpu.shares (v1, 1024 a vCPU, the default of one process group). A share
 * of the host under contention, never a cap: a quick migration's save runs
 * QEMU's migration thread and the worker's stream in the same cgroup, and
 * a cap of its vCPUs would slow it.
 */
int
vmcg_weight_cpu(const char *root, const char *node, uint32_t uid,
    uint32_t vcpus)
{
	struct vmcg_dirs	d;
	char			value[32];
	int			i;

	if (vcpus == 0)
		vcpus = 1;
	vmcg_dirs(root, node, uid, &d);
	if (d.v2) {
		snprintf(value, sizeof value, "%u", vcpus > 100 ? 10000 :
		    vcpus * 100);
		return vmcg_write(d.path[0], "cpu.weight", value);
	}
	snprintf(value, sizeof value, "%u", vcpus > 256 ? 262144 :
	    vcpus * 1024);
	for (i = 0; i < d.n; i++)
		if (strstr(d.path[i], "/cpu/") != NULL)
			return vmcg_write(d.path[i], "cpu.shares", value);
	errno = ENOENT;
	return -1;
}

uint64_t
vmcg_memory_limit(const char *root, const char *node, uint32_t uid)
{
	struct vmcg_dirs	d;
	char			buf[32];
	int			i;

	vmcg_dirs(root, node, uid, &d);
	for (i = 0; i < d.n; i++) {
		if ((d.v2 && vmcg_read(d.path[i], "memory.max", buf,
		    sizeof buf) == 0) || (!d.v2 &&
		    strstr(d.path[i], "/memory/") != NULL &&
		    vmcg_read(d.path[i], "memory.limit_in_bytes", buf,
		    sizeof buf) == 0))
			return strtoull(buf, NULL, 10);
	}
	return 0;
}

/* In the worker's child, before exec: async-signal-safe calls only. */
int
vmcg_join(const char *root, const char *node, uint32_t uid)
{
	struct vmcg_dirs	d;
	int			i, rc = 0;

	vmcg_dirs(root, node, uid, &d);
	for (i = 0; i < d.n; i++)
		if (vmcg_write(d.path[i], "cgroup.procs", "0") == -1)
			rc = -1;
	return d.n == 0 ? -1 : rc;
}

/* Signal every process listed in dir's cgroup.procs; how many. */
static int
vmcg_kill_listed(const char *dir)
{
	char	buf[8192], *p, *end;
	long	pid;
	int	n = 0;

	if (vmcg_read(dir, "cgroup.procs", buf, sizeof buf) == -1)
		return 0;
	for (p = buf; *p != '\0'; p = end) {
		pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0)
			n++;
		while (*end == '\n')
			end++;
	}
	return n;
}

static int
vmcg_frozen(const char *dir)
{
	char	state[32];

	return vmcg_read(dir, "freezer.state", state, sizeof state) == 0 &&
	    strncmp(state, "FROZEN", 6) == 0;
}

int
vmcg_kill(const char *root, const char *node, uint32_t uid)
{
	struct vmcg_dirs	d;
	int			i, n = 0, tries;

	vmcg_dirs(root, node, uid, &d);
	if (d.n == 0)
		return 0;
	if (d.v2 && vmcg_write(d.path[0], "cgroup.kill", "1") == 0)
		return 0;
	if (d.freezer && vmcg_write(d.path[0], "freezer.state", "FROZEN") ==
	    0) {
		for (tries = 0; tries < VMCG_FREEZE_TRIES &&
		    !vmcg_frozen(d.path[0]); tries++)
			(void)usleep(10000);
		n = vmcg_kill_listed(d.path[0]);
		(void)vmcg_write(d.path[0], "freezer.state", "THAWED");
		return n;
	}
	/* No freezer: a few rounds, in case one forked meanwhile. */
	for (tries = 0; tries < VMCG_KILL_ROUNDS; tries++) {
		for (i = 0; i < d.n; i++)
			n += vmcg_kill_listed(d.path[i]);
		if (vmcg_empty(root, node, uid))
			break;
		(void)usleep(10000);
	}
	return n;
}

int
vmcg_empty(const char *root, const char *node, uint32_t uid)
{
	struct vmcg_dirs	d;
	char			buf[64];
	int			i;

	vmcg_dirs(root, node, uid, &d);
	for (i = 0; i < d.n; i++) {
		if (vmcg_read(d.path[i], "cgroup.procs", buf, sizeof buf) ==
		    0 && buf[0] != '\0')
			return 0;
	}
	return 1;
}

int
vmcg_holds(const char *root, const char *node, uint32_t uid, pid_t pid)
{
	struct vmcg_dirs	d;
	char			buf[8192], *p, *end;
	long			listed;

	vmcg_dirs(root, node, uid, &d);
	if (d.n == 0 || vmcg_read(d.path[0], "cgroup.procs", buf,
	    sizeof buf) == -1)
		return -1;
	for (p = buf; *p != '\0'; p = end) {
		listed = strtol(p, &end, 10);
		if (end == p)
			break;
		if (listed == (long)pid)
			return 1;
		while (*end == '\n')
			end++;
	}
	return 0;
}

/* Kill what is left, then remove the cgroup; -1 if something stayed. */
int
vmcg_release(const char *root, const char *node, uint32_t uid)
{
	struct vmcg_dirs	d;
	int			i, rc = 0;

	vmcg_dirs(root, node, uid, &d);
	(void)vmcg_kill(root, node, uid);
	for (i = 0; i < d.n; i++)
		if (rmdir(d.path[i]) == -1 && errno != ENOENT)
			rc = -1;
	return rc;
}
