/*
 * The agent fence level's runner (DESIGN §4): one program of the
 * fence-agents package, fed its options on stdin, watched from the caller's
 * loop and bounded by a timeout; also any blocking function run the same
 * way in a forked child. fence.h has the contract, SIGCHLD included.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "fence.h"

#define AGENT_POLL_MS		250	/* waitpid while its pipes are open */
#define AGENT_POLL_EOF_MS	10	/* ... once both are at EOF */
#define AGENT_LOST_GRACE_MS	1000	/* ECHILD: wait for a hand-off */
#define AGENT_REAP_GRACE_MS	5000	/* SIGKILL sent: then give up */
#define AGENT_VALUE_MAX		1024	/* one value after substitution */

struct agent_output {
	char	 buf[FENCE_AGENT_OUTPUT_MAX];
	size_t	 len;
	int	 fd;
	struct event *event;
};

enum agent_stage {
	AGENT_RUNNING,
	AGENT_TERM_SENT,	/* timed out: SIGTERM to the group */
	AGENT_KILL_SENT,
	AGENT_ORPHAN,		/* no callback left; reap and free */
};

struct fence_agent_run {
	struct event_base	*base;
	char			 label[64];	/* "fence_ipmilan", "pacemaker" */
	char			 action[32];
	int			 child_mode;	/* fence_agent_start_child */
	pid_t			 pid;
	int			 reaped;
	int			 status;
	enum agent_stage	 stage;
	uint64_t		 started_ms;
	uint64_t		 echild_ms;	/* first ECHILD, 0: none */
	unsigned		 timeout_ms;

	int			 in_fd;
	struct event		*in_event;
	char			*input;		/* the stdin text */
	size_t			 input_len;
	size_t			 input_off;
	struct agent_output	 out;
	struct agent_output	 err;
	char			**secrets;	/* scrubbed from the detail */
	size_t			 nsecrets;

	struct ev_timer		*deadline;	/* timeout, then kill stages */
	struct ev_timer		*poll;		/* waitpid retries */
	fence_agent_cb		 cb;
	void			*arg;
	struct fence_agent_run	*next;
};

/* Every run with a child not yet reaped (fence_agent_reaped). */
static struct fence_agent_run	*agent_runs;

static void	agent_check(void *);

/* To its process group; before the child's setsid() there is none yet. */
static void
signal_agent(const struct fence_agent_run *run, int sig)
{
	if (kill(-run->pid, sig) == -1 && errno == ESRCH)
		(void)kill(run->pid, sig);
}

int
fence_agent_is_secret(const char *key)
{
	return strstr(key, "passw") != NULL || strstr(key, "secret") != NULL;
}

int
fence_agent_path(const char *agent, char *out, size_t outlen)
{
	int	n;

	if (agent == NULL || *agent == '\0' || strcmp(agent, ".") == 0 ||
	    strcmp(agent, "..") == 0 || (strchr(agent, '/') != NULL &&
	    agent[0] != '/')) {
		errno = EINVAL;
		return -1;
	}
	if (agent[0] == '/')
		n = snprintf(out, outlen, "%s", agent);
	else
		n = snprintf(out, outlen, "%s/%s", FENCE_AGENT_DIR, agent);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
fence_agent_substitute(const char *value, const char *victim_name,
    uint32_t victim_node, char *out, size_t outlen)
{
	char		 node[16];
	const char	*p = value, *with;
	size_t		 len = 0, wlen, skip;

	snprintf(node, sizeof node, "%u", victim_node);
	while (*p != '\0') {
		if (strncmp(p, "{host}", 6) == 0) {
			with = victim_name != NULL ? victim_name : "";
			skip = 6;
		} else if (strncmp(p, "{node}", 6) == 0) {
			with = node;
			skip = 6;
		} else {
			with = p;
			skip = 1;
		}
		wlen = skip == 1 ? 1 : strlen(with);
		if (len + wlen >= outlen) {
			errno = EINVAL;
			return -1;
		}
		memcpy(out + len, with, wlen);
		len += wlen;
		p += skip;
	}
	if (outlen == 0) {
		errno = EINVAL;
		return -1;
	}
	out[len] = '\0';
	return 0;
}

/* ---------------------------------------------------------- the detail -- */

/* Python's warnings ("x.py:5: DeprecationWarning: ...", then the source
 * line, indented) and the agents' usage hint say nothing about the
 * outcome. */
static int
line_is_noise(const char *s, size_t len)
{
	static const char	*noise[] = { "Warning: ", "Please use '-h'",
				    "validate-all failed" };
	size_t			 i, n;

	if (len > 0 && (s[0] == ' ' || s[0] == '\t'))
		return 1;
	for (i = 0; i < sizeof noise / sizeof noise[0]; i++) {
		n = strlen(noise[i]);
		if (len >= n && memmem(s, len, noise[i], n) != NULL)
			return 1;
	}
	return 0;
}

/* "2026-11-26 05:06:25,636 ERROR: Failed: x" -> "Failed: x" */
static void
strip_log_prefix(const char **s, size_t *len)
{
	static const char	*prefixes[] = { "ERROR:root:", "ERROR: ",
				    "WARNING:root:", "WARNING: " };
	size_t			 i, n;

	if (*len > 24 && (*s)[4] == '-' && (*s)[7] == '-' && (*s)[10] == ' ' &&
	    (*s)[13] == ':' && (*s)[16] == ':' && (*s)[23] == ' ') {
		*s += 24;
		*len -= 24;
	}
	for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		n = strlen(prefixes[i]);
		if (*len > n && strncmp(*s, prefixes[i], n) == 0) {
			*s += n;
			*len -= n;
			break;
		}
	}
}

/* The last line of o that says something, into out ("" if none). */
static void
last_line(const struct agent_output *o, char *out, size_t outlen)
{
	const char	*end = o->buf + o->len, *start, *s;
	size_t		 len;

	out[0] = '\0';
	while (end > o->buf) {
		start = end;
		while (start > o->buf && start[-1] != '\n')
			start--;
		s = start;
		len = (size_t)(end - start);
		while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
		    s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		end = start > o->buf ? start - 1 : o->buf;
		if (len == 0 || line_is_noise(s, len))
			continue;
		strip_log_prefix(&s, &len);
		if (len >= outlen)
			len = outlen - 1;
		memcpy(out, s, len);
		out[len] = '\0';
		return;
	}
}

/*
 * Replaces every occurrence of secret in s[0..*len) by "***", and a piece
 * of it cut off at either end of the text (the kept output drops its
 * oldest bytes, the detail is truncated). Secrets shorter than 4 bytes are
 * left alone: masking them would garble the text.
 */
static void
mask_secret(char *s, size_t *len, const char *secret)
{
	size_t	 slen = strlen(secret), off = 0, k;
	char	*hit;

	if (slen < 4)
		return;
	while (off < *len && (hit = memmem(s + off, *len - off, secret,
	    slen)) != NULL) {
		memcpy(hit, "***", 3);
		memmove(hit + 3, hit + slen, *len - (size_t)(hit - s) - slen);
		*len -= slen - 3;
		off = (size_t)(hit - s) + 3;
	}
	for (k = slen - 1; k >= 4; k--)
		if (*len >= k && memcmp(s + *len - k, secret, k) == 0) {
			memcpy(s + *len - k, "***", 3);
			*len -= k - 3;
			break;
		}
	for (k = slen - 1; k >= 4; k--)
		if (*len >= k && memcmp(s, secret + slen - k, k) == 0) {
			memcpy(s, "***", 3);
			memmove(s + 3, s + k, *len - k);
			*len -= k - 3;
			break;
		}
}

static void
mask_output(const struct fence_agent_run *run, struct agent_output *o)
{
	size_t	i;

	for (i = 0; i < run->nsecrets; i++)
		mask_secret(o->buf, &o->len, run->secrets[i]);
}

/* Control characters out, secrets masked: the detail goes to logs and
 * to the cluster's event log. */
static void
clean_detail(const struct fence_agent_run *run, char *detail)
{
	size_t	 i, len;
	char	*p;

	for (p = detail; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	len = strlen(detail);
	for (i = 0; i < run->nsecrets; i++)
		mask_secret(detail, &len, run->secrets[i]);
	detail[len] = '\0';
}

static void
format_duration(unsigned ms, char *out, size_t outlen)
{
	if (ms % 1000 == 0)
		snprintf(out, outlen, "%u s", ms / 1000);
	else
		snprintf(out, outlen, "%.1f s", ms / 1000.0);
}

static int
agent_detail(struct fence_agent_run *run, char *detail, size_t size)
{
	char	line[FENCE_AGENT_DETAIL_MAX], took[32];
	int	result;

	mask_output(run, &run->out);
	mask_output(run, &run->err);

	if (run->stage == AGENT_TERM_SENT || run->stage == AGENT_KILL_SENT) {
		format_duration(run->timeout_ms, took, sizeof took);
		snprintf(detail, size, "%s timed out after %s%s", run->label,
		    took, run->reaped ? "" : " and did not exit after SIGKILL");
		result = FENCE_AGENT_TIMEOUT;
	} else if (!run->reaped) {
		snprintf(detail, size, "%s ended, but its exit status was "
		    "collected elsewhere (not handed to fence_agent_reaped): "
		    "its result is unknown", run->label);
		result = FENCE_AGENT_LOST;
	} else if (WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0) {
		last_line(&run->out, line, sizeof line);
		if (run->child_mode)
			snprintf(detail, size, "%s", line[0] != '\0' ? line :
			    "succeeded");
		else
			snprintf(detail, size, "%s %s succeeded%s%s",
			    run->label, run->action, line[0] != '\0' ? ": " :
			    "", line);
		result = FENCE_AGENT_OK;
	} else {
		last_line(&run->err, line, sizeof line);
		if (line[0] == '\0')
			last_line(&run->out, line, sizeof line);
		if (run->child_mode && line[0] != '\0')
			snprintf(detail, size, "%s", line);
		else if (WIFEXITED(run->status))
			snprintf(detail, size, "%s exited %d%s%s", run->label,
			    WEXITSTATUS(run->status), line[0] != '\0' ? ": " :
			    " (no output)", line);
		else
			snprintf(detail, size, "%s was killed by signal %d "
			    "(%s)%s%s", run->label, WTERMSIG(run->status),
			    strsignal(WTERMSIG(run->status)), line[0] != '\0' ?
			    ": " : "", line);
		result = FENCE_AGENT_FAILED;
	}
	clean_detail(run, detail);
	return result;
}

/* ------------------------------------------------------------- the run -- */

static void
output_close(struct agent_output *o)
{
	if (o->event != NULL) {
		event_free(o->event);
		o->event = NULL;
	}
	if (o->fd != -1) {
		close(o->fd);
		o->fd = -1;
	}
}

static void
input_close(struct fence_agent_run *run)
{
	if (run->in_event != NULL) {
		event_free(run->in_event);
		run->in_event = NULL;
	}
	if (run->in_fd != -1) {
		close(run->in_fd);
		run->in_fd = -1;
	}
	if (run->input != NULL) {
		explicit_bzero(run->input, run->input_len);
		free(run->input);
		run->input = NULL;
	}
}

static void
agent_unlink(struct fence_agent_run *run)
{
	struct fence_agent_run	**pp;

	for (pp = &agent_runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == run) {
			*pp = run->next;
			return;
		}
}

static void
agent_free(struct fence_agent_run *run)
{
	size_t	i;

	agent_unlink(run);
	input_close(run);
	output_close(&run->out);
	output_close(&run->err);
	ev_timer_free(run->deadline);
	ev_timer_free(run->poll);
	for (i = 0; i < run->nsecrets; i++) {
		explicit_bzero(run->secrets[i], strlen(run->secrets[i]));
		free(run->secrets[i]);
	}
	free(run->secrets);
	explicit_bzero(run, sizeof *run);
	free(run);
}

/* Nobody waits for this run any more; reap it from the loop, then free. */
static void
agent_orphan(struct fence_agent_run *run)
{
	run->cb = NULL;
	run->stage = AGENT_ORPHAN;
	input_close(run);
	output_close(&run->out);
	output_close(&run->err);
	ev_timer_cancel(run->deadline);
	ev_timer_arm(run->poll, AGENT_POLL_EOF_MS);
}

static void
agent_finish(struct fence_agent_run *run)
{
	char		 detail[FENCE_AGENT_DETAIL_MAX];
	fence_agent_cb	 cb = run->cb;
	void		*arg = run->arg;
	int		 result;

	result = agent_detail(run, detail, sizeof detail);
	log_scoped(result == FENCE_AGENT_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
	    "fence", run->label, "%s after %.2f s", detail,
	    (ev_now_ms() - run->started_ms) / 1000.0);
	if (run->reaped)
		agent_free(run);
	else
		agent_orphan(run);
	if (cb != NULL)
		cb(result, detail, arg);
}

/* Read what is there; EOF closes the stream. Keeps the last bytes. */
static void
output_drain(struct fence_agent_run *run, struct agent_output *o)
{
	char	buf[4096];
	ssize_t	n;
	size_t	drop;

	while (o->fd != -1) {
		n = read(o->fd, buf, sizeof buf);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			output_close(o);
			break;
		}
		if ((size_t)n > sizeof o->buf)
			n = sizeof o->buf;	/* never: buf is larger */
		if (o->len + (size_t)n > sizeof o->buf) {
			drop = o->len + (size_t)n - sizeof o->buf;
			memmove(o->buf, o->buf + drop, o->len - drop);
			o->len -= drop;
		}
		memcpy(o->buf + o->len, buf, (size_t)n);
		o->len += (size_t)n;
	}
	if (run->out.fd == -1 && run->err.fd == -1 && run->stage !=
	    AGENT_ORPHAN)
		ev_timer_arm(run->poll, 0);	/* it has probably exited */
}

static void
output_cb(evutil_socket_t fd, short events, void *arg)
{
	struct fence_agent_run	*run = arg;

	output_drain(run, fd == run->out.fd ? &run->out : &run->err);
}

static void
input_cb(evutil_socket_t fd, short events, void *arg)
{
	struct fence_agent_run	*run = arg;
	ssize_t			 n;

	while (run->input_off < run->input_len) {
		n = send(run->in_fd, run->input + run->input_off,
		    run->input_len - run->input_off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1)
			break;	/* it closed its stdin: its exit tells */
		run->input_off += (size_t)n;
	}
	input_close(run);	/* EOF on its stdin */
}

/* Exited? Reap it (after killing what is left of its group, while the
 * zombie still holds the group's id) and finish. */
static void
agent_check(void *arg)
{
	struct fence_agent_run	*run = arg;
	siginfo_t		 si;
	int			 status, rc;

	if (!run->reaped) {
		memset(&si, 0, sizeof si);
		rc = waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT);
		if (rc == 0 && si.si_pid == run->pid) {
			(void)kill(-run->pid, SIGKILL);
			if (waitpid(run->pid, &status, WNOHANG) == run->pid) {
				run->reaped = 1;
				run->status = status;
			}
		} else if (rc == -1 && errno == ECHILD) {
			if (run->echild_ms == 0)
				run->echild_ms = ev_now_ms();
			if (run->stage == AGENT_ORPHAN) {
				agent_free(run);
				return;
			}
			if (ev_now_ms() - run->echild_ms >=
			    AGENT_LOST_GRACE_MS) {
				output_drain(run, &run->out);
				output_drain(run, &run->err);
				agent_finish(run);
				return;
			}
		}
	}
	if (run->reaped) {
		if (run->stage == AGENT_ORPHAN) {
			agent_free(run);
			return;
		}
		/* Whatever it wrote is in the pipes; a grandchild holding
		 * them open does not delay the result. */
		output_drain(run, &run->out);
		output_drain(run, &run->err);
		agent_finish(run);
		return;
	}
	/* Often right after EOF or ECHILD; an orphan stuck in the kernel
	 * only now and then. */
	ev_timer_arm(run->poll, run->stage != AGENT_ORPHAN &&
	    ((run->out.fd == -1 && run->err.fd == -1) || run->echild_ms != 0) ?
	    AGENT_POLL_EOF_MS : AGENT_POLL_MS);
}

static void
agent_deadline(void *arg)
{
	struct fence_agent_run	*run = arg;
	siginfo_t		 si;

	memset(&si, 0, sizeof si);
	if (run->reaped || (waitid(P_PID, (id_t)run->pid, &si, WEXITED |
	    WNOHANG | WNOWAIT) == 0 && si.si_pid == run->pid)) {
		/* It made it after all: the poll finishes it. */
		ev_timer_arm(run->poll, 0);
		return;
	}
	switch (run->stage) {
	case AGENT_RUNNING:
		log_scoped(LOG_LEVEL_WARN, "fence", run->label, "no answer "
		    "after %u ms: SIGTERM", run->timeout_ms);
		signal_agent(run, SIGTERM);
		run->stage = AGENT_TERM_SENT;
		ev_timer_arm(run->deadline, FENCE_AGENT_KILL_GRACE_MS);
		break;
	case AGENT_TERM_SENT:
		signal_agent(run, SIGKILL);
		run->stage = AGENT_KILL_SENT;
		ev_timer_arm(run->deadline, AGENT_REAP_GRACE_MS);
		break;
	case AGENT_KILL_SENT:
		/* Stuck in the kernel: report, keep reaping in the back. */
		agent_finish(run);
		break;
	case AGENT_ORPHAN:
		break;
	}
}

int
fence_agent_reaped(pid_t pid, int status)
{
	struct fence_agent_run	*run;

	for (run = agent_runs; run != NULL; run = run->next)
		if (run->pid == pid && !run->reaped) {
			run->reaped = 1;
			run->status = status;
			ev_timer_arm(run->poll, 0);
			return 1;
		}
	return 0;
}

pid_t
fence_agent_pid(const struct fence_agent_run *run)
{
	return run->pid;
}

void
fence_agent_cancel(struct fence_agent_run *run)
{
	if (run == NULL)
		return;
	if (!run->reaped)
		signal_agent(run, SIGKILL);
	log_scoped(LOG_LEVEL_INFO, "fence", run->label, "cancelled");
	agent_orphan(run);
	if (run->reaped)
		agent_free(run);
}

/* In the child: default signal handling, nothing of the parent's. */
static void
child_setup(int in, int out, int err)
{
	struct sigaction	sa;
	sigset_t		set;
	int			i;

	(void)setsid();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		(void)sigaction(i, &sa, NULL);
	sigemptyset(&set);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
		_exit(127);
	/* Nothing else of the parent's: a corosync IPC socket held open
	 * here would hide havend's death from the cluster. */
	(void)close_range(3, ~0U, 0);
}

/*
 * Creates the run, forks; the child execs path (argv0 = label) or calls
 * child(child_arg). Takes input (the stdin text) and secrets.
 */
static struct fence_agent_run *
agent_spawn(struct event_base *base, const char *label, const char *action,
    const char *path, int (*child)(void *), void *child_arg, char *input,
    size_t input_len, char **secrets, size_t nsecrets, unsigned timeout_ms,
    fence_agent_cb cb, void *arg)
{
	struct fence_agent_run	*run;
	int			 in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int			 err[2] = { -1, -1 }, saved, rc;
	pid_t			 pid;

	if ((run = calloc(1, sizeof *run)) == NULL)
		goto fail;
	run->base = base;
	snprintf(run->label, sizeof run->label, "%s", label);
	snprintf(run->action, sizeof run->action, "%s", action);
	run->child_mode = child != NULL;
	run->timeout_ms = timeout_ms;
	run->in_fd = run->out.fd = run->err.fd = -1;
	run->input = input;
	run->input_len = input_len;
	run->secrets = secrets;
	run->nsecrets = nsecrets;
	input = NULL;
	secrets = NULL;
	run->cb = cb;
	run->arg = arg;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) == -1 ||
	    pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1)
		goto fail;
	run->deadline = ev_timer_new(base, 0, 0, agent_deadline, run);
	run->poll = ev_timer_new(base, 0, 0, agent_check, run);
	if (run->deadline == NULL || run->poll == NULL)
		goto fail;

	fflush(NULL);	/* no buffered output written twice */
	if ((pid = fork()) == -1)
		goto fail;
	if (pid == 0) {
		child_setup(in[1], out[1], err[1]);
		if (child != NULL) {
			rc = child(child_arg);
			fflush(NULL);
			_exit(rc & 0xff);
		}
		execl(path, label, (char *)NULL);
		dprintf(2, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	run->pid = pid;
	run->started_ms = ev_now_ms();
	run->next = agent_runs;
	agent_runs = run;
	close(in[1]);
	close(out[1]);
	close(err[1]);
	run->in_fd = in[0];
	run->out.fd = out[0];
	run->err.fd = err[0];
	in[0] = out[0] = err[0] = -1;
	if (ev_set_nonblock(run->in_fd) == -1 ||
	    ev_set_nonblock(run->out.fd) == -1 ||
	    ev_set_nonblock(run->err.fd) == -1 ||
	    (run->in_event = event_new(base, run->in_fd, EV_WRITE |
	    EV_PERSIST, input_cb, run)) == NULL ||
	    (run->out.event = event_new(base, run->out.fd, EV_READ |
	    EV_PERSIST, output_cb, run)) == NULL ||
	    (run->err.event = event_new(base, run->err.fd, EV_READ |
	    EV_PERSIST, output_cb, run)) == NULL ||
	    event_add(run->in_event, NULL) == -1 ||
	    event_add(run->out.event, NULL) == -1 ||
	    event_add(run->err.event, NULL) == -1 ||
	    ev_timer_arm(run->deadline, timeout_ms) == -1 ||
	    ev_timer_arm(run->poll, AGENT_POLL_MS) == -1) {
		saved = errno;
		signal_agent(run, SIGKILL);
		agent_orphan(run);
		errno = saved;
		return NULL;
	}
	return run;
fail:
	saved = errno;
	if (input != NULL) {
		explicit_bzero(input, input_len);
		free(input);
	}
	while (secrets != NULL && nsecrets > 0)
		free(secrets[--nsecrets]);
	free(secrets);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
	close(err[0]);
	close(err[1]);
	if (run != NULL)
		agent_free(run);
	errno = saved;
	return NULL;
}

static int
valid_text(const char *s, int is_key)
{
	if (s == NULL || (is_key && (*s == '\0' || strchr(s, '=') != NULL)))
		return 0;
	return strchr(s, '\n') == NULL && strchr(s, '\r') == NULL;
}

struct fence_agent_run *
fence_agent_start(struct event_base *base, const char *agent,
    const char *action, const char *const *keys, const char *const *values,
    size_t n, const char *victim_name, uint32_t victim_node,
    unsigned timeout_ms, fence_agent_cb cb, void *arg)
{
	struct fence_agent_run	*run;
	char			 path[512], value[AGENT_VALUE_MAX];
	char			 shown[1024], *input = NULL, **secrets = NULL;
	const char		*label;
	size_t			 cap, len, i, nsecrets = 0, slen = 0;
	int			 saved, w;

	if (fence_agent_path(agent, path, sizeof path) == -1)
		return NULL;
	if (!valid_text(action, 1) || *action == '\0' || strlen(action) >= 32) {
		errno = EINVAL;
		return NULL;
	}
	if (access(path, X_OK) == -1)
		return NULL;
	label = strrchr(path, '/') + 1;

	cap = strlen(action) + 16;
	for (i = 0; i < n; i++) {
		if (!valid_text(keys[i], 1) || !valid_text(values[i], 0)) {
			errno = EINVAL;
			return NULL;
		}
		cap += strlen(keys[i]) + sizeof value + 2;
	}
	if ((input = malloc(cap)) == NULL ||
	    (n > 0 && (secrets = calloc(n, sizeof *secrets)) == NULL))
		goto fail;
	len = (size_t)snprintf(input, cap, "action=%s\n", action);
	shown[0] = '\0';
	for (i = 0; i < n; i++) {
		if (strcmp(keys[i], "action") == 0)
			continue;
		if (fence_agent_is_secret(keys[i])) {
			/* Sent as written: no placeholder is expanded in a
			 * secret. */
			if (strlen(values[i]) >= sizeof value) {
				errno = EINVAL;
				goto fail;
			}
			snprintf(value, sizeof value, "%s", values[i]);
			if ((secrets[nsecrets] = strdup(value)) == NULL)
				goto fail;
			nsecrets++;
		} else if (fence_agent_substitute(values[i], victim_name,
		    victim_node, value, sizeof value) == -1)
			goto fail;
		len += (size_t)snprintf(input + len, cap - len, "%s=%s\n",
		    keys[i], value);
		w = snprintf(shown + slen, sizeof shown - slen, " %s=%s",
		    keys[i], fence_agent_is_secret(keys[i]) ? "(secret)" :
		    value);
		if (w > 0 && slen + (size_t)w < sizeof shown)
			slen += (size_t)w;
	}
	explicit_bzero(value, sizeof value);
	log_scoped(LOG_LEVEL_INFO, "fence", label, "%s %s (node %u), %u ms:%s",
	    action, victim_name != NULL ? victim_name : "-", victim_node,
	    timeout_ms, shown);
	run = agent_spawn(base, label, action, path, NULL, NULL, input, len,
	    secrets, nsecrets, timeout_ms, cb, arg);
	return run;
fail:
	saved = errno;
	explicit_bzero(value, sizeof value);
	if (input != NULL) {
		explicit_bzero(input, cap);
		free(input);
	}
	while (nsecrets > 0) {
		nsecrets--;
		explicit_bzero(secrets[nsecrets], strlen(secrets[nsecrets]));
		free(secrets[nsecrets]);
	}
	free(secrets);
	errno = saved;
	return NULL;
}

struct fence_agent_run *
fence_agent_start_program(struct event_base *base, const char *label,
    const char *path, const char *input, unsigned timeout_ms,
    fence_agent_cb cb, void *arg)
{
	char	*copy;

	if (path == NULL || *path != '/' || label == NULL || *label == '\0' ||
	    input == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (access(path, X_OK) == -1)
		return NULL;
	if ((copy = strdup(input)) == NULL)
		return NULL;
	return agent_spawn(base, label, "run", path, NULL, NULL, copy,
	    strlen(copy), NULL, 0, timeout_ms, cb, arg);
}

struct fence_agent_run *
fence_agent_start_child(struct event_base *base, const char *label,
    int (*child)(void *), void *child_arg, unsigned timeout_ms,
    fence_agent_cb cb, void *arg)
{
	char	*input;

	if (child == NULL || label == NULL || *label == '\0') {
		errno = EINVAL;
		return NULL;
	}
	/* Its stdin: EOF at once. */
	if ((input = strdup("")) == NULL)
		return NULL;
	log_scoped(LOG_LEVEL_INFO, "fence", label, "started, %u ms",
	    timeout_ms);
	return agent_spawn(base, label, "run", NULL, child, child_arg, input, 0,
	    NULL, 0, timeout_ms, cb, arg);
}
