/*
 * The per-VM worker's privilege budget (DESIGN §2): drop from root to the
 * VM's own uid and gid with no capabilities and no way back, hand QEMU a
 * uid of its own, then, once QEMU has been spawned, confine the worker to a
 * seccomp allowlist.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <seccomp.h>

#include "common.h"
#include "worker.h"

static int
sandbox_fail(const char *step)
{
	int	saved_errno = errno;

	log_error("sandbox: %s: %s", step, strerror(saved_errno));
	errno = saved_errno;
	return -1;
}

static int
sandbox_capget(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct	hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};

	return (int)syscall(SYS_capget, &hdr, data);
}

static int
sandbox_capset_none(void)
{
	struct __user_cap_header_struct	hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};
	struct __user_cap_data_struct	data[2];

	memset(data, 0, sizeof data);
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Check the drop took: no capabilities, every id ours (the saved ones
 * QEMU's), no way back. */
static int
sandbox_verify(uid_t uid, gid_t gid, uid_t saved_uid, gid_t saved_gid)
{
	struct __user_cap_data_struct	data[2];
	uid_t				ruid, euid, suid;
	gid_t				rgid, egid, sgid;
	int				i;

	if (sandbox_capget(data) == -1)
		return sandbox_fail("verify: capget");
	for (i = 0; i < 2; i++) {
		if (data[i].effective || data[i].permitted ||
		    data[i].inheritable) {
			errno = EPERM;
			return sandbox_fail("verify: capabilities remain");
		}
	}
	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1)
		return sandbox_fail("verify: getresuid");
	if (ruid != uid || euid != uid || suid != saved_uid || rgid != gid ||
	    egid != gid || sgid != saved_gid) {
		errno = EPERM;
		return sandbox_fail("verify: ids do not match");
	}
	if (getgroups(0, NULL) != 0) {
		errno = EPERM;
		return sandbox_fail("verify: supplementary groups remain");
	}
	if (setuid(0) != -1) {
		errno = EPERM;
		return sandbox_fail("verify: setuid(0) succeeded");
	}
	return 0;
}

/*
 * Drop root for good, in the house order: groups, gid, uid, no_new_privs,
 * capabilities. The capability bounding set and the ambient set go before
 * the uid, because dropping the bounding set needs CAP_SETPCAP, which the
 * uid change takes away; the uid change clears the permitted and effective
 * sets (keepcaps off), and an explicit capset clears them again in case a
 * securebit kept them. Refuses uid 0 and gid 0.
 *
 * QEMU's uid and gid (issue 15) stay as the saved ones: the only ids the
 * worker may still take, without a capability, and only QEMU's child does
 * (sandbox_qemu_child); the worker gives them up as soon as QEMU is forked
 * (sandbox_qemu_spawned). No QEMU process exists before then to make use
 * of a saved id that matches its own (kill and ptrace look at it).
 */
int
sandbox_drop_qemu(uid_t uid, gid_t gid, uid_t qemu_uid, gid_t qemu_gid)
{
	unsigned long	cap;

	if (uid == 0 || gid == 0 || qemu_uid == 0 || qemu_gid == 0) {
		errno = EINVAL;
		return sandbox_fail("refusing to drop to uid or gid 0");
	}
	if (setgroups(0, NULL) == -1)
		return sandbox_fail("setgroups");
	if (setresgid(gid, gid, qemu_gid) == -1)
		return sandbox_fail("setresgid");
	/* Every capability the running kernel knows, even past our headers'
	 * CAP_LAST_CAP: PR_CAPBSET_READ fails with EINVAL after the last. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			return sandbox_fail("dropping the bounding set");
	}
	if (errno != EINVAL || cap == 0)
		return sandbox_fail("reading the bounding set");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1)
		return sandbox_fail("clearing ambient capabilities");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		return sandbox_fail("clearing keepcaps");
	if (setresuid(uid, uid, qemu_uid) == -1)
		return sandbox_fail("setresuid");
	if (sandbox_no_new_privs() == -1)
		return -1;
	if (sandbox_capset_none() == -1)
		return sandbox_fail("capset");
	return sandbox_verify(uid, gid, qemu_uid, qemu_gid);
}

/* The drop with QEMU under the worker's own ids (tests, and the driver). */
int
sandbox_drop(uid_t uid, gid_t gid)
{
	return sandbox_drop_qemu(uid, gid, uid, gid);
}

/* In QEMU's child, before exec: QEMU's ids, the worker's saved ones, for
 * good. Raw system calls: async-signal-safe. */
int
sandbox_qemu_child(uid_t qemu_uid, gid_t qemu_gid)
{
	if (syscall(SYS_setresgid, qemu_gid, qemu_gid, qemu_gid) == -1 ||
	    syscall(SYS_setresuid, qemu_uid, qemu_uid, qemu_uid) == -1)
		return -1;
	return 0;
}

/*
 * In the worker once QEMU is forked (before QEMU's child may exec): give up
 * QEMU's ids, except as the effective uid. kill(2) lets a process signal
 * one whose real or saved uid is its own real or effective uid, ptrace
 * wants all three of the target's: with real and saved uid the worker's,
 * QEMU (all three its own) can neither signal nor trace the worker, while
 * the worker, effective uid QEMU's, may signal and renice QEMU. Files go
 * by the filesystem uid, which stays the worker's: its sockets and files
 * are its own, and what it creates too.
 */
int
sandbox_qemu_spawned(uid_t uid, gid_t gid, uid_t qemu_uid)
{
	uid_t	ruid, euid, suid;
	gid_t	rgid, egid, sgid;

	if (qemu_uid == uid)
		return 0;
	if (setresgid(gid, gid, gid) == -1)
		return sandbox_fail("setresgid after QEMU's fork");
	if (setresuid(uid, qemu_uid, uid) == -1)
		return sandbox_fail("setresuid after QEMU's fork");
	(void)setfsuid(uid);
	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1)
		return sandbox_fail("getresuid after QEMU's fork");
	if (ruid != uid || euid != qemu_uid || suid != uid || rgid != gid ||
	    egid != gid || sgid != gid || (uid_t)setfsuid((uid_t)-1) != uid) {
		errno = EPERM;
		return sandbox_fail("ids after QEMU's fork do not match");
	}
	return 0;
}

/* For QEMU's child before exec, and for a worker not started as root. */
int
sandbox_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return sandbox_fail("no_new_privs");
	return 0;
}

/*
 * What the worker may do once QEMU runs: serve its event loop over the fds
 * it already holds, reconnect iSCSI, reap and kill QEMU, exit. Nothing may
 * exec, fork, open a path or change identity. Measured with strace -f over
 * the worker-like workload in tests/unit/sandbox_test.c, plus the calls
 * read off libiscsi's reconnect path (ioctl FIONREAD, dup2).
 */
static const int sandbox_worker_syscalls[] = {
	/* Event loop: libevent's epoll backend (a base may be re-created). */
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* I/O on held fds: sockets, pipes, the log, the parent channel. */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(lseek),
	/* fd housekeeping; dup2: libiscsi keeps its fd number on reconnect. */
	SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(dup),
	SCMP_SYS(dup2), SCMP_SYS(dup3),
	/* New anonymous fds: migration pipes to QEMU, libevent notification. */
	SCMP_SYS(pipe2), SCMP_SYS(eventfd2),
	/* Durability on held files (the file block device in the lab). */
	SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(fallocate),
	/* Messages: QMP with SCM_RIGHTS, NBD, iSCSI, libevent's signal pipe. */
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(recvfrom),
	/* Sockets: iSCSI reconnects (nonblocking connect), NBD/QMP accepts. */
	SCMP_SYS(connect), SCMP_SYS(accept4), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(shutdown),
	/* Time: the vDSO falls back to these on an unstable clocksource. */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	/* Memory: malloc and libevent (mmap, mprotect are checked below). */
	SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
	/* Signals: libevent's handlers, and restarting interrupted calls. */
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(signalfd4), SCMP_SYS(restart_syscall),
	/* The signal stack: ASan's runtime tears its own down at exit. */
	SCMP_SYS(sigaltstack),
	/* QEMU: reap it (kill: only its pid, below). */
	SCMP_SYS(wait4), SCMP_SYS(waitid),
	/* abort() (log_fatal, assertions) ends in SIGABRT, not SIGSYS:
	 * tgkill of this process only, below. */
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	/* Contended locks (log ring mutex); randomness for UUIDs. */
	SCMP_SYS(futex), SCMP_SYS(getrandom),
	/* Leaving. */
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* One argument comparison (libseccomp's SCMP_A* leave datum_b implicit). */
static struct scmp_arg_cmp
sandbox_arg(unsigned arg, enum scmp_compare op, scmp_datum_t a,
    scmp_datum_t b)
{
	struct scmp_arg_cmp	cmp = {
		.arg = arg, .op = op, .datum_a = a, .datum_b = b,
	};

	return cmp;
}

/*
 * Load the allowlist; anything else kills the whole worker (SIGSYS), which
 * havend sees and reports. Call after QEMU has been spawned: the filter
 * forbids execve and clone. It covers the calling thread only (the worker
 * has one). Lazy glibc state that would open files later (the time zone)
 * is initialised here first.
 */
int
sandbox_seccomp_worker(pid_t qemu)
{
	scmp_filter_ctx	ctx;
	size_t		i;
	int		rc;

	tzset();
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		errno = ENOMEM;
		return sandbox_fail("seccomp_init");
	}
	for (i = 0; i < sizeof sandbox_worker_syscalls /
	    sizeof sandbox_worker_syscalls[0]; i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    sandbox_worker_syscalls[i], 0);
		if (rc != 0)
			goto fail;
	}
	/* Sockets: TCP/IP for iSCSI reconnects and live migration; no raw,
	 * packet, netlink or crypto sockets. No new Unix socket either (the
	 * QMP, NBD and adoption listeners exist before the filter): nothing
	 * here may reach havend's control socket or another VM's. It fails
	 * softly: glibc's getaddrinfo tries nscd's socket first. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
	    SCMP_SYS(socket), 1, sandbox_arg(0, SCMP_CMP_EQ, AF_UNIX, 0))) !=
	    0 || (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    sandbox_arg(0, SCMP_CMP_EQ, AF_INET, 0))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    sandbox_arg(0, SCMP_CMP_EQ, AF_INET6, 0))) != 0)
		goto fail;
	/* Netlink fails softly: getaddrinfo (libiscsi, no hints, so
	 * AI_ADDRCONFIG) probes interfaces with it and, refused, assumes both
	 * IPv4 and IPv6 are configured. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
	    SCMP_SYS(socket), 1, sandbox_arg(0, SCMP_CMP_EQ, AF_NETLINK,
	    0))) != 0)
		goto fail;
	/* Signals to QEMU's pid only (our effective uid is QEMU's: kill(-1)
	 * would reach every process of it), and to this process for
	 * abort(). */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
	    sandbox_arg(0, SCMP_CMP_EQ, (scmp_datum_t)qemu, 0))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	    sandbox_arg(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0))) != 0)
		goto fail;
	/* setpriority of QEMU (lowered for its teardown after a save):
	 * without CAP_SYS_NICE it can only be lowered. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority),
	    2, sandbox_arg(0, SCMP_CMP_EQ, PRIO_PROCESS, 0),
	    sandbox_arg(1, SCMP_CMP_EQ, (scmp_datum_t)qemu, 0))) != 0)
		goto fail;
	/* unlink: its own sockets on the way out (worker.sock, nbd.sock).
	 * seccomp cannot look at the path; DAC keeps it to what the VM's
	 * uid may write. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unlink),
	    0)) != 0)
		goto fail;
	/* ioctl: FIONREAD only (libiscsi sizes its reads with it). */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    sandbox_arg(1, SCMP_CMP_EQ, FIONREAD, 0))) != 0)
		goto fail;
	/* Memory mappings, never executable: no new code after the drop. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    sandbox_arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    sandbox_arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != 0)
		goto fail;
	/* fstat on a held fd (glibc's fstat is newfstatat(fd, "", ...,
	 * AT_EMPTY_PATH)); stat by path stays forbidden. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
	    sandbox_arg(3, SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH,
	    AT_EMPTY_PATH))) != 0)
		goto fail;
	if ((rc = seccomp_load(ctx)) != 0)
		goto fail;
	seccomp_release(ctx);
	return 0;
fail:
	seccomp_release(ctx);
	errno = -rc;
	return sandbox_fail("loading the seccomp allowlist");
}
