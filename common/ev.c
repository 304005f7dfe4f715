/*
 * Small helpers around a process's one libevent base: create it with
 * libevent's own messages routed into our log, turn signals into callbacks,
 * and one-shot or repeating millisecond timers. Modules take the base;
 * only main dispatches.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "common.h"

#define EV_MAX_SIGNALS	8

struct ev_signal {
	struct event	*event;
	void		(*fn)(int, void *);
	void		*arg;
};

static struct ev_signal	ev_signals[EV_MAX_SIGNALS];
static size_t		ev_nsignals;

struct ev_timer {
	struct event	*event;
	void		(*fn)(void *);
	void		*arg;
};

static void
ev_log_cb(int severity, const char *msg)
{
	enum log_level	level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = LOG_LEVEL_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = LOG_LEVEL_INFO;
		break;
	case EVENT_LOG_WARN:
		level = LOG_LEVEL_WARN;
		break;
	default:
		level = LOG_LEVEL_ERROR;
		break;
	}
	log_write(level, "libevent", "%s", msg);
}

static void
ev_fatal_cb(int err)
{
	log_fatal("libevent: fatal error %d", err);
}

/* The process's event base. SIGPIPE is ignored: writes report EPIPE. */
struct event_base *
ev_base_new(void)
{
	event_set_log_callback(ev_log_cb);
	event_set_fatal_callback(ev_fatal_cb);
	signal(SIGPIPE, SIG_IGN);
	return event_base_new();
}

static void
ev_signal_cb(evutil_socket_t signo, short events, void *arg)
{
	struct ev_signal	*s = arg;

	s->fn((int)signo, s->arg);
}

/* Deliver each of the signals to fn on the loop. */
int
ev_on_signals(struct event_base *base, const int *signals, size_t nsignals,
    void (*fn)(int, void *), void *arg)
{
	struct ev_signal	*s;
	size_t			 i;

	for (i = 0; i < nsignals; i++) {
		if (ev_nsignals == EV_MAX_SIGNALS) {
			errno = ENOSPC;
			return -1;
		}
		s = &ev_signals[ev_nsignals];
		s->fn = fn;
		s->arg = arg;
		s->event = evsignal_new(base, signals[i], ev_signal_cb, s);
		if (s->event == NULL || event_add(s->event, NULL) == -1) {
			if (s->event != NULL)
				event_free(s->event);
			return -1;
		}
		ev_nsignals++;
	}
	return 0;
}

void
ev_signals_free(void)
{
	while (ev_nsignals > 0)
		event_free(ev_signals[--ev_nsignals].event);
}

static void
ev_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ev_timer	*t = arg;

	t->fn(t->arg);
}

static struct timeval
ev_ms_to_tv(uint64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	return tv;
}

/*
 * A timer that calls fn(arg) after ms, and every ms if repeat; ms == 0 makes
 * it unarmed until ev_timer_arm().
 */
struct ev_timer *
ev_timer_new(struct event_base *base, uint64_t ms, int repeat,
    void (*fn)(void *), void *arg)
{
	struct ev_timer	*t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->event = event_new(base, -1, repeat ? EV_PERSIST : 0, ev_timer_cb, t);
	if (t->event == NULL || (ms > 0 && ev_timer_arm(t, ms) == -1)) {
		ev_timer_free(t);
		return NULL;
	}
	return t;
}

int
ev_timer_arm(struct ev_timer *t, uint64_t ms)
{
	struct timeval	tv = ev_ms_to_tv(ms);

	return event_add(t->event, &tv);
}

void
ev_timer_cancel(struct ev_timer *t)
{
	event_del(t->event);
}

void
ev_timer_free(struct ev_timer *t)
{
	if (t == NULL)
		return;
	if (t->event != NULL)
		event_free(t->event);
	free(t);
}

int
ev_set_nonblock(int fd)
{
	int	flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Monotonic milliseconds, for timeouts and durations. */
uint64_t
ev_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
