/*
 * What this host's QEMU ([vm] qemu) offers (issue 16), asked once at start:
 * its version, its machine types (`-machine help`, and what "pc" resolves
 * to, which vm create pins a new VM to) and its CPU models (`-cpu help`;
 * "host" only where VMs run under KVM here). havend publishes them in the
 * replicated state (HostQemu) so that placement and moves skip a host whose
 * QEMU could not run a VM's machine. A QEMU that does not answer within a
 * few seconds leaves the lists empty: the host is then not checked.
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clusterd.h"
#include "common.h"
#include "havend.h"
#include "proto.h"

#define QEMU_PROBE_TIMEOUT_MS	5000
#define QEMU_PROBE_MAX		(256 * 1024)
#define QEMU_PROBE_ID		65534	/* nobody, nogroup */

/* argv[0] with argument `arg`, its stdout into a malloc'ed string; NULL
 * when it cannot run, fails or takes too long. Runs before the loop. */
static char *
qemu_probe_run(const char *binary, const char *opt, const char *arg)
{
	char		*out = NULL;
	size_t		 len = 0;
	ssize_t		 r;
	pid_t		 pid;
	int		 p[2], status, devnull;
	uint64_t	 deadline = ev_now_ms() + QEMU_PROBE_TIMEOUT_MS;
	struct pollfd	 pfd;

	if (pipe2(p, O_CLOEXEC) == -1)
		return NULL;
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		if (devnull == -1 || dup2(devnull, 0) == -1 ||
		    dup2(p[1], 1) == -1 || dup2(devnull, 2) == -1)
			_exit(127);
		/* A QEMU that only lists what it offers needs no privilege:
		 * never run [vm] qemu as root (nobody, no groups). */
		if (geteuid() == 0 && (setgroups(0, NULL) == -1 ||
		    setresgid(QEMU_PROBE_ID, QEMU_PROBE_ID, QEMU_PROBE_ID) == -1 ||
		    setresuid(QEMU_PROBE_ID, QEMU_PROBE_ID, QEMU_PROBE_ID) == -1))
			_exit(127);
		execlp(binary, binary, opt, arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	out = xcalloc(1, QEMU_PROBE_MAX + 1);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		uint64_t	 now = ev_now_ms();

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		r = read(p[0], out + len, QEMU_PROBE_MAX - len);
		if (r <= 0 || (len += (size_t)r) == QEMU_PROBE_MAX)
			break;
	}
	close(p[0]);
	kill(pid, SIGKILL);	/* ours, and gone already when it answered */
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (len == 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

void
havend_qemu_probe(struct havend *h)
{
	struct havend_qemu	*q = &h->qemu;
	const char		*binary = *h->config.vm_qemu != '\0' ?
				    h->config.vm_qemu : "qemu-system-x86_64";
	char			*text, *v;
	size_t			 n;
	int			 kvm;

	kvm = strcmp(h->config.vm_accel, "kvm") == 0 ||
	    (strcmp(h->config.vm_accel, "auto") == 0 &&
	    access("/dev/kvm", R_OK | W_OK) == 0);
	if ((text = qemu_probe_run(binary, "-version", NULL)) != NULL &&
	    (v = strstr(text, "version ")) != NULL) {
		v += 8;
		n = strcspn(v, " \n(");
		if (n < sizeof q->version) {
			memcpy(q->version, v, n);
			q->version[n] = '\0';
		}
	}
	free(text);
	if ((text = qemu_probe_run(binary, "-machine", "help")) == NULL ||
	    machine_parse_machines(text, &q->machines, q->pc,
	    sizeof q->pc) == -1)
		log_warn("%s -machine help did not answer: this host's machine "
		    "types stay unknown to placement, and new VMs are not "
		    "pinned to a versioned machine type", binary);
	free(text);
	if ((text = qemu_probe_run(binary, "-cpu", "help")) == NULL ||
	    machine_parse_cpus(text, kvm, &q->cpus) == -1)
		log_warn("%s -cpu help did not answer: this host's CPU models "
		    "stay unknown to placement", binary);
	free(text);
	log_info("QEMU %s: %zu machine types (pc is %s), %zu CPU models "
	    "(%s)", *q->version ? q->version : "?", q->machines.n,
	    *q->pc ? q->pc : "unknown", q->cpus.n, kvm ? "KVM" : "TCG");
}

/* This host in the state reports another QEMU than it has: say so. */
void
havend_qemu_publish(struct havend *h, const Haven__Host *me)
{
	struct havend_qemu	*q = &h->qemu;
	const Haven__HostConfig	*hc = me->config;
	Haven__HostQemu		*hq;
	Haven__Change		*c;
	char			 err[256];
	uint64_t		 id;
	size_t			 i;
	int			 same;

	if (q->machines.n == 0 && q->cpus.n == 0)
		return;
	same = hc->n_machine_types == q->machines.n &&
	    hc->n_cpu_models == q->cpus.n &&
	    strcmp(hc->qemu_version, q->version) == 0;
	for (i = 0; same && i < q->machines.n; i++)
		same = strcmp(hc->machine_types[i], q->machines.names[i]) == 0;
	for (i = 0; same && i < q->cpus.n; i++)
		same = strcmp(hc->cpu_models[i], q->cpus.names[i]) == 0;
	if (same)
		return;
	c = havend_change_new();
	hq = xcalloc(1, sizeof *hq);
	haven__host_qemu__init(hq);
	hq->node_id = h->node_id;
	hq->machine_types = xcalloc(q->machines.n + 1, sizeof (char *));
	for (i = 0; i < q->machines.n; i++)
		hq->machine_types[i] = xstrdup(q->machines.names[i]);
	hq->n_machine_types = q->machines.n;
	hq->cpu_models = xcalloc(q->cpus.n + 1, sizeof (char *));
	for (i = 0; i < q->cpus.n; i++)
		hq->cpu_models[i] = xstrdup(q->cpus.names[i]);
	hq->n_cpu_models = q->cpus.n;
	hq->qemu_version = xstrdup(q->version);
	c->kind_case = HAVEN__CHANGE__KIND_HOST_QEMU;
	c->host_qemu = hq;
	/* A member of an older build would refuse it: after the sync that
	 * finds every member new enough (issue 17). */
	if (replica_protocol_check(h->replica, c, err, sizeof err) == -1) {
		log_info("this host's QEMU report waits: %s", err);
		message_free(&c->base);
		return;
	}
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_warn("publishing this host's QEMU: %s", err);
}
