/*
 * common/: what every Haven process uses: logging with an in-memory ring of
 * recent lines, and small helpers around the process's libevent base.
 */
#ifndef HAVEN_COMMON_H
#define HAVEN_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

/* log.c */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
};

/* One remembered line, as log_ring_foreach hands it out. */
struct log_line {
	uint64_t	 time_us;	/* CLOCK_REALTIME */
	enum log_level	 level;
	const char	*text;		/* "scope: message", no newline */
};

#define LOG_RING_LINES	1024
#define LOG_LINE_MAX	512

void		 log_init(const char *program, enum log_level stderr_level);
void		 log_set_level(enum log_level);
enum log_level	 log_get_level(void);
int		 log_level_parse(const char *, enum log_level *);
const char	*log_level_name(enum log_level);
void		 log_set_sink(int fd);
void		 log_vwrite(enum log_level, const char *scope, const char *fmt,
		     va_list) __attribute__((format(printf, 3, 0)));
void		 log_write(enum log_level, const char *scope, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
void		 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_fatal(const char *, ...)
		     __attribute__((format(printf, 1, 2), noreturn));
size_t		 log_ring_foreach(void (*)(const struct log_line *, void *),
		     void *);
int		 log_ring_dump(int fd);
void		 log_ring_clear(void);

/*
 * Object-scoped lines: "vm web1: ...", "volume 3f2a...: ...". Modules wrap
 * these in their own helpers (log_vm(vm, ...)) once their structs exist.
 */
#define log_scoped(level, kind, name, ...) do {				\
	char log_scope_[128];						\
	log_scope_format(log_scope_, sizeof log_scope_, kind, name);	\
	log_write(level, log_scope_, __VA_ARGS__);			\
} while (0)
void		 log_scope_format(char *, size_t, const char *kind,
		     const char *name);

/* ev.c */
struct event_base *ev_base_new(void);
int		 ev_on_signals(struct event_base *, const int *signals,
		     size_t nsignals, void (*)(int, void *), void *);
void		 ev_signals_free(void);
struct ev_timer;
struct ev_timer	*ev_timer_new(struct event_base *, uint64_t ms, int repeat,
		     void (*)(void *), void *);
int		 ev_timer_arm(struct ev_timer *, uint64_t ms);
void		 ev_timer_cancel(struct ev_timer *);
void		 ev_timer_free(struct ev_timer *);
int		 ev_set_nonblock(int fd);
uint64_t	 ev_now_ms(void);

#endif
