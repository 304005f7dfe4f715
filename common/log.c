/*
 * Logging for every Haven process: lines at or above the chosen level go to
 * stderr (or another sink), and every line, debug included, goes into an
 * in-memory ring that can be dumped after an incident (sanlock's model).
 * When stderr is the systemd journal (a service: $JOURNAL_STREAM names it)
 * lines go to the journal instead, with their priority and the VM or host
 * they concern as fields (HAVEN_VM=web1): `journalctl -u havend -p warning`,
 * `journalctl HAVEN_VM=web1`.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "common.h"

struct log_slot {
	uint64_t	time_us;
	enum log_level	level;
	char		text[LOG_LINE_MAX];
};

static struct {
	pthread_mutex_t	 lock;
	const char	*program;
	enum log_level	 level;
	int		 sink;
	int		 journal;	/* the sink is the journal's stream */
	struct log_slot	 ring[LOG_RING_LINES];
	size_t		 next;		/* slot the next line goes to */
	size_t		 count;		/* lines held, at most LOG_RING_LINES */
} log_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.program = "haven",
	.level = LOG_LEVEL_INFO,
	.sink = 2,
};

static const char *log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_FATAL] = "fatal",
};

/*
 * Is fd the stream systemd connected to the journal? $JOURNAL_STREAM holds
 * its "device:inode" (systemd.exec(5)); a descriptor redirected since, to a
 * file or another program, is not.
 */
int
log_fd_is_journal(int fd)
{
	const char	*env = getenv("JOURNAL_STREAM");
	struct stat	 st;
	uintmax_t	 dev, ino;
	char		 end;

	if (env == NULL || sscanf(env, "%ju:%ju%c", &dev, &ino, &end) != 2 ||
	    fstat(fd, &st) == -1)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void
log_init(const char *program, enum log_level level)
{
	log_state.program = program;
	log_state.level = level;
	log_state.journal = log_fd_is_journal(log_state.sink);
}

void
log_set_level(enum log_level level)
{
	log_state.level = level;
}

enum log_level
log_get_level(void)
{
	return log_state.level;
}

void
log_set_sink(int fd)
{
	log_state.sink = fd;
	log_state.journal = fd >= 0 && log_fd_is_journal(fd);
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level > LOG_LEVEL_FATAL)
		return "?";
	return log_level_names[level];
}

int
log_level_parse(const char *s, enum log_level *level)
{
	size_t	i;

	for (i = 0; i <= LOG_LEVEL_FATAL; i++) {
		if (strcasecmp(s, log_level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

void
log_scope_format(char *buf, size_t size, const char *kind, const char *name)
{
	snprintf(buf, size, "%s %s", kind, name ? name : "?");
}

static void
log_format_time(uint64_t time_us, char *buf, size_t size)
{
	struct tm	tm;
	time_t		secs = (time_t)(time_us / 1000000);

	gmtime_r(&secs, &tm);
	/* A year past 9999 would be cut, not overflow. */
	if (snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (unsigned)(time_us / 1000 % 1000)) >=
	    (int)size)
		buf[size - 1] = '\0';
}

static void
log_emit(int fd, const struct log_slot *s)
{
	char	stamp[32], line[LOG_LINE_MAX + 128];
	int	n;

	log_format_time(s->time_us, stamp, sizeof stamp);
	n = snprintf(line, sizeof line, "%s %s[%ld]: %s: %s\n", stamp,
	    log_state.program, (long)getpid(), log_level_name(s->level),
	    s->text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	/* A log line that cannot be written is dropped, never retried. */
	if (write(fd, line, (size_t)n) < 0)
		return;
}

static const int log_priorities[] = {
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_WARN] = LOG_WARNING,
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_FATAL] = LOG_CRIT,
};

/*
 * A line to the journal: its priority, and the scope ("vm web1", "host 2")
 * as fields of its own, HAVEN_VM=web1 for a VM's. -1 when the journal did
 * not take it (the caller writes it to the stream instead).
 */
static int
log_journal(const struct log_slot *s, const char *scope)
{
	const char	*vm = "", *sep;
	size_t		 kind = 0;

	if (scope != NULL && (sep = strchr(scope, ' ')) != NULL) {
		kind = (size_t)(sep - scope);
		if (kind == 2 && strncmp(scope, "vm", 2) == 0)
			vm = sep + 1;
	}
	return sd_journal_send("MESSAGE=%s", s->text,
	    "PRIORITY=%d", log_priorities[s->level],
	    "SYSLOG_IDENTIFIER=%s", log_state.program,
	    "HAVEN_SCOPE=%s", scope != NULL ? scope : "",
	    "HAVEN_VM=%s", vm,
	    NULL) < 0 ? -1 : 0;
}

void
log_vwrite(enum log_level level, const char *scope, const char *fmt,
    va_list ap)
{
	struct log_slot	*s;
	struct timespec	 ts;
	size_t		 off = 0;
	int		 saved_errno = errno;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&log_state.lock);
	s = &log_state.ring[log_state.next];
	s->time_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	s->level = level;
	if (scope != NULL && *scope != '\0') {
		snprintf(s->text, sizeof s->text, "%s: ", scope);
		off = strlen(s->text);
	}
	vsnprintf(s->text + off, sizeof s->text - off, fmt, ap);
	log_state.next = (log_state.next + 1) % LOG_RING_LINES;
	if (log_state.count < LOG_RING_LINES)
		log_state.count++;
	if (level >= log_state.level && log_state.sink >= 0 &&
	    (!log_state.journal || log_journal(s, scope) == -1))
		log_emit(log_state.sink, s);
	pthread_mutex_unlock(&log_state.lock);
	errno = saved_errno;
}

void
log_write(enum log_level level, const char *scope, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(level, scope, fmt, ap);
	va_end(ap);
}

#define LOG_LEVEL_FUNCTION(name, level)				\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	ap;							\
									\
	va_start(ap, fmt);						\
	log_vwrite(level, NULL, fmt, ap);				\
	va_end(ap);							\
}
LOG_LEVEL_FUNCTION(log_debug, LOG_LEVEL_DEBUG)
LOG_LEVEL_FUNCTION(log_info, LOG_LEVEL_INFO)
LOG_LEVEL_FUNCTION(log_warn, LOG_LEVEL_WARN)
LOG_LEVEL_FUNCTION(log_error, LOG_LEVEL_ERROR)

void
log_fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_FATAL, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Hand every remembered line to fn, oldest first; returns how many. */
size_t
log_ring_foreach(void (*fn)(const struct log_line *, void *), void *arg)
{
	struct log_line	 line;
	struct log_slot	*s;
	size_t		 i, start, count;

	pthread_mutex_lock(&log_state.lock);
	count = log_state.count;
	start = (log_state.next + LOG_RING_LINES - count) % LOG_RING_LINES;
	for (i = 0; i < count; i++) {
		s = &log_state.ring[(start + i) % LOG_RING_LINES];
		line.time_us = s->time_us;
		line.level = s->level;
		line.text = s->text;
		fn(&line, arg);
	}
	pthread_mutex_unlock(&log_state.lock);
	return count;
}

static void
log_ring_dump_line(const struct log_line *line, void *arg)
{
	struct log_slot	s;

	s.time_us = line->time_us;
	s.level = line->level;
	snprintf(s.text, sizeof s.text, "%s", line->text);
	log_emit(*(int *)arg, &s);
}

/* Write the whole ring to fd, as log lines. */
int
log_ring_dump(int fd)
{
	log_ring_foreach(log_ring_dump_line, &fd);
	return 0;
}

void
log_ring_clear(void)
{
	pthread_mutex_lock(&log_state.lock);
	log_state.next = 0;
	log_state.count = 0;
	pthread_mutex_unlock(&log_state.lock);
}
