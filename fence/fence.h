/*
 * fence/: how one host makes sure another cannot touch shared storage any
 * more (DESIGN §4). Each piece declares its API here under its own heading.
 */
#ifndef HAVEN_FENCE_H
#define HAVEN_FENCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* level_storage.c: the storage level. On every volume (an iscsi:// URL), register
 * key on a new nexus and preempt (and abort) victim's registrations and
 * reservation, then verify victim is gone; in parallel, bounded by
 * FENCE_STORAGE_TIMEOUT_MS. cb runs once, from the loop: result 0 and a
 * summary, or a negative errno and which volume and step failed. */
struct fence_storage;
typedef void (*fence_storage_cb)(int result, const char *detail, void *arg);
struct fence_storage *fence_storage_start(struct event_base *,
		     const char *initiator, uint64_t key, uint64_t victim,
		     const char *const *urls, size_t n, fence_storage_cb,
		     void *arg);
/* After the callback, or to abandon it (no callback then). */
void		 fence_storage_free(struct fence_storage *);

/* watchdog.c */
/*
 * The host's watchdog, Linux watchdog API. Opening a real watchdog arms it;
 * from then on the host resets unless watchdog_pet runs at least once per
 * timeout. The lab's stand-in is a FIFO: accepted, petted by writes.
 */
struct watchdog;

/* Opens path (a watchdog character device or a FIFO) and sets timeout_s.
 * NULL with errno and a sentence in err (missing device, busy, not a
 * watchdog, a driver that only grants a longer timeout). */
struct watchdog	*watchdog_open(const char *path, unsigned timeout_s, char *err,
		     size_t errlen);
/* WDIOC_KEEPALIVE, or a one-byte write where the ioctl is missing. 0 / -1
 * with errno. */
int		 watchdog_pet(struct watchdog *);
/* What the driver granted (the requested timeout for a FIFO). */
unsigned	 watchdog_timeout_s(const struct watchdog *);
/* disarm: the magic 'V' before close (a clean stop of havend); else the
 * timer keeps running after close. */
void		 watchdog_close(struct watchdog *, int disarm);

/* agent.c */
/*
 * Runs one program of the fence-agents package (fence_ipmilan...) the
 * standard way: the options go to its stdin as key=value lines, starting
 * with action=ACTION; exit 0 means done. Asynchronous on the caller's
 * base; nothing blocks the loop.
 *
 * Option values may hold {host} (the victim's host name) and {node} (its
 * node id), substituted before sending, so one [fence:NAME] section serves
 * every victim ("ip = 10.77.1.10{node}"). Values of keys containing
 * "passw" or "secret" are sent verbatim, never logged, and scrubbed from
 * the detail sentence should the agent echo them.
 *
 * The callback runs once, from the loop (never from inside a call into
 * this API), after the agent process has been reaped: result
 * FENCE_AGENT_OK and "fence_ipmilan off succeeded: Success: Powered OFF",
 * or a failure code and a sentence ("fence_ipmilan exited 1: Failed:
 * Unable to obtain correct plug status", "fence_ipmilan timed out after
 * 60 s"). The run is freed when the callback returns.
 *
 * Children and SIGCHLD. The agent runs in its own session (process group =
 * its pid). The runner detects its end by EOF on its stdout/stderr plus
 * waitpid(pid, WNOHANG) retried on a short timer; it installs no SIGCHLD
 * handler. A process that reaps children itself with waitpid(-1) (havend)
 * must, for every pid it reaps, first offer the status to
 * fence_agent_reaped(pid, status): 1 means it was a fence agent's and has
 * been taken, 0 means it is the caller's own. A status that neither reaches
 * the runner nor is handed to it ends the run with FENCE_AGENT_LOST after
 * a second: unknown, never a success. On timeout: SIGTERM to the agent's
 * process group, SIGKILL FENCE_AGENT_KILL_GRACE_MS later, callback once it
 * is reaped.
 */
#define FENCE_AGENT_DIR			"/usr/sbin"
#define FENCE_AGENT_KILL_GRACE_MS	2000
#define FENCE_AGENT_OUTPUT_MAX		(16 * 1024)	/* kept of each stream */
#define FENCE_AGENT_DETAIL_MAX		512
enum fence_agent_result {
	FENCE_AGENT_OK = 0,
	FENCE_AGENT_FAILED,	/* exit status not 0, or killed by a signal */
	FENCE_AGENT_TIMEOUT,	/* killed by us after timeout_ms */
	FENCE_AGENT_LOST,	/* its exit status was reaped elsewhere */
};
struct fence_agent_run;
typedef void (*fence_agent_cb)(int result, const char *detail, void *arg);
/* agent: an absolute path, or a name looked up in FENCE_AGENT_DIR. keys and
 * values: n options in order (an option named action is dropped: the
 * action argument wins). NULL with errno when nothing was started (ENOENT,
 * EACCES: no such agent; EINVAL: a newline in an option, a bad name,
 * {host}/{node} substitution too long); the callback never runs then. */
struct fence_agent_run *fence_agent_start(struct event_base *,
		     const char *agent, const char *action,
		     const char *const *keys, const char *const *values,
		     size_t n, const char *victim_name, uint32_t victim_node,
		     unsigned timeout_ms, fence_agent_cb, void *arg);
/* The same contract for any program (an absolute path, run with no
 * arguments, argv[0] label) with input as its stdin: havend's [alert]
 * program (clusterd/alert.c). */
struct fence_agent_run *fence_agent_start_program(struct event_base *,
		     const char *label, const char *path, const char *input,
		     unsigned timeout_ms, fence_agent_cb, void *arg);
/* The same contract for a function run in a forked child (no exec) whose
 * return value is its exit status: for blocking library calls (the
 * pacemaker level). Its last stdout line is the detail on success, its last
 * stderr line on failure; label names it in sentences. */
struct fence_agent_run *fence_agent_start_child(struct event_base *,
		     const char *label, int (*child)(void *), void *child_arg,
		     unsigned timeout_ms, fence_agent_cb, void *arg);
/* Before the callback: no callback then; the agent's group is SIGKILLed
 * and reaped later from the loop (or through fence_agent_reaped). */
void		 fence_agent_cancel(struct fence_agent_run *);
/* See "Children and SIGCHLD" above. */
int		 fence_agent_reaped(pid_t, int status);
pid_t		 fence_agent_pid(const struct fence_agent_run *);
/* {host} and {node} in value; -1 with EINVAL if out is too small. */
int		 fence_agent_substitute(const char *value,
		     const char *victim_name, uint32_t victim_node, char *out,
		     size_t outlen);
/* Keys whose values are never logged or shown: "passw" or "secret". */
int		 fence_agent_is_secret(const char *key);
/* The agent's program: agent itself if absolute, else FENCE_AGENT_DIR/
 * agent. -1 with EINVAL (relative path, bad name) or ENAMETOOLONG. */
int		 fence_agent_path(const char *agent, char *out, size_t outlen);

/* stonith.c */
/*
 * Pacemaker's libstonithd (DESIGN §4): agent discovery, metadata and
 * validation, for havenctl, and the pacemaker fence level. Every call
 * blocks (libstonithd runs agents and talks to the fencer synchronously):
 * call them from havenctl or a child, never on havend's loop --
 * fence_pacemaker_start does the forking. (Prefix fence_stonith_, not
 * stonith_: that is libstonithd's own namespace.)
 */
#define FENCE_STONITH_TIMEOUT_S		20	/* metadata, validate */
struct fence_agent_param {
	char	 name[64];
	int	 required;
	int	 deprecated;	/* kept for old configurations only */
	char	 type[16];	/* string, integer, boolean, select, second */
	char	 default_value[64];
	char	 description[256];
};
/* Installed agents, sorted. 0, or -1 and a sentence in err. */
int		 fence_stonith_agents(char ***names, size_t *n, char *err,
		     size_t errlen);
void		 fence_stonith_free_names(char **, size_t);
/* The agent's metadata XML (free()). -1 and a sentence if none. */
int		 fence_stonith_metadata(const char *agent, char **xml, char *err,
		     size_t errlen);
/* The parameters in that XML, in its order (free()), and the agent's
 * one-line description. -1 and a sentence if it cannot be parsed. */
int		 fence_stonith_params(const char *xml,
		     struct fence_agent_param **params, size_t *n, char *desc,
		     size_t desclen, char *err, size_t errlen);
/* The agent's own validate-all on these options. 0: valid (detail: its
 * warnings, e.g. an unknown option, or ""); 1: invalid (detail: its
 * complaint); -1: it could not be asked (detail says why). */
int		 fence_stonith_validate(const char *agent,
		     const char *const *keys, const char *const *values,
		     size_t n, char *detail, size_t detaillen);
/* Asks the local Pacemaker fencer to power victim off (by name if given,
 * else by node id) and waits up to timeout_s. 0 and "fenced" or -1 and a
 * sentence ("no Pacemaker fencer is running on this host"). Blocks. */
int		 fence_pacemaker_kick(const char *victim_name,
		     uint32_t victim_node, unsigned timeout_s, char *detail,
		     size_t detaillen);
/* fence_pacemaker_kick in a child, under fence_agent_start_child's
 * contract (label "pacemaker"). */
struct fence_agent_run *fence_pacemaker_start(struct event_base *,
		     const char *victim_name, uint32_t victim_node,
		     unsigned timeout_ms, fence_agent_cb, void *arg);

#endif
