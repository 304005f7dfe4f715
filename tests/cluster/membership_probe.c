/*
 * haven-membership-probe: runs membership.c against the host's corosync and
 * prints one JSON line per event (connected, disconnected, membership,
 * quorum, message) for the lab test. --send TEXT multicasts TEXT once
 * connected (repeat it for several, sent in order; --send-every MS spaces
 * them out); --exit-after SECONDS ends it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common.h"
#include "clusterd.h"

#define PROBE_SEND_MAX	64

struct probe {
	struct event_base	*base;
	const char		*send_text[PROBE_SEND_MAX];
	size_t			 nsend;
	size_t			 next;		/* the next --send to send */
	uint64_t		 send_every_ms;	/* 0: all at once */
	struct ev_timer		*send_timer;
	struct membership	*membership;
	int			 sent;
};

/* Wall-clock milliseconds, comparable with `date +%s%3N` in the test. */
static int64_t
probe_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
probe_print(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

static struct json_object *
probe_ids(const uint32_t *ids, size_t n)
{
	struct json_object	*a = json_object_new_array();
	size_t			 i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64(ids[i]));
	return a;
}

static struct json_object *
probe_event(const char *name)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(name));
	json_object_object_add(o, "ms", json_object_new_int64(probe_now_ms()));
	return o;
}

static void
probe_connected(struct membership *m, uint32_t node_id, void *arg)
{
	struct probe		*p = arg;
	struct json_object	*o = probe_event("connected");
	size_t			 i;

	json_object_object_add(o, "node_id", json_object_new_int64(node_id));
	probe_print(o);
	if (p->sent)
		return;
	p->sent = 1;
	if (p->send_every_ms > 0) {
		ev_timer_arm(p->send_timer, p->send_every_ms);
		return;
	}
	for (i = 0; i < p->nsend; i++) {
		if (membership_send(m, p->send_text[i],
		    strlen(p->send_text[i])) == -1)
			log_warn("probe: send: %s", strerror(errno));
	}
}

/* --send-every: one message per tick, so senders on two hosts interleave. */
static void
probe_send_tick(void *arg)
{
	struct probe	*p = arg;
	const char	*text;

	if (p->next >= p->nsend)
		return;
	text = p->send_text[p->next++];
	if (membership_send(p->membership, text, strlen(text)) == -1)
		log_warn("probe: send: %s", strerror(errno));
	if (p->next < p->nsend)
		ev_timer_arm(p->send_timer, p->send_every_ms);
}

static void
probe_disconnected(struct membership *m, void *arg)
{
	probe_print(probe_event("disconnected"));
}

static void
probe_changed(struct membership *m, const uint32_t *members, size_t nmembers,
    const uint32_t *joined, size_t njoined, const uint32_t *left, size_t nleft,
    void *arg)
{
	struct json_object	*o = probe_event("membership");

	json_object_object_add(o, "members", probe_ids(members, nmembers));
	json_object_object_add(o, "joined", probe_ids(joined, njoined));
	json_object_object_add(o, "left", probe_ids(left, nleft));
	probe_print(o);
}

static void
probe_quorum(struct membership *m, int quorate, const uint32_t *members,
    size_t n, void *arg)
{
	struct json_object	*o = probe_event("quorum");

	json_object_object_add(o, "quorate", json_object_new_boolean(quorate));
	json_object_object_add(o, "members", probe_ids(members, n));
	probe_print(o);
}

static void
probe_message(struct membership *m, uint32_t node_id, uint32_t pid,
    const void *data, size_t len, void *arg)
{
	struct json_object	*o = probe_event("message");

	json_object_object_add(o, "from", json_object_new_int64(node_id));
	json_object_object_add(o, "pid", json_object_new_int64(pid));
	json_object_object_add(o, "text",
	    json_object_new_string_len(data, (int)len));
	probe_print(o);
}

static void
probe_stop(int sig, void *arg)
{
	struct probe	*p = arg;

	event_base_loopexit(p->base, NULL);
}

static void
probe_timeout(void *arg)
{
	struct probe	*p = arg;

	event_base_loopexit(p->base, NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: haven-membership-probe [--group NAME] "
	    "[--send TEXT]... [--send-every MS]\n"
	    "    [--exit-after SECONDS] [--debug]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "send", required_argument, NULL, 's' },
		{ "send-every", required_argument, NULL, 'e' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ "debug", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct membership_callbacks callbacks = {
		.connected = probe_connected,
		.disconnected = probe_disconnected,
		.changed = probe_changed,
		.quorum = probe_quorum,
		.message = probe_message,
	};
	static const int signals[] = { SIGINT, SIGTERM };
	struct probe		 p;
	struct membership	*m;
	struct ev_timer		*timer = NULL;
	const char		*group = "haven";
	double			 exit_after = 0;
	enum log_level		 level = LOG_LEVEL_INFO;
	char			*end;
	int			 c;

	memset(&p, 0, sizeof p);
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case 's':
			if (p.nsend == PROBE_SEND_MAX)
				usage();
			p.send_text[p.nsend++] = optarg;
			break;
		case 'e':
			p.send_every_ms = strtoull(optarg, &end, 10);
			if (*end != '\0')
				usage();
			break;
		case 'x':
			exit_after = strtod(optarg, &end);
			if (*end != '\0' || exit_after <= 0)
				usage();
			break;
		case 'd':
			level = LOG_LEVEL_DEBUG;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("haven-membership-probe", level);
	signal(SIGPIPE, SIG_IGN);
	if ((p.base = ev_base_new()) == NULL)
		log_fatal("cannot create the event base");
	if (ev_on_signals(p.base, signals, 2, probe_stop, &p) == -1)
		log_fatal("cannot watch signals");
	if (exit_after > 0 && (timer = ev_timer_new(p.base,
	    (uint64_t)(exit_after * 1000), 0, probe_timeout, &p)) == NULL)
		log_fatal("cannot arm the exit timer");
	if ((p.send_timer = ev_timer_new(p.base, 0, 0, probe_send_tick,
	    &p)) == NULL)
		log_fatal("cannot create the send timer");
	if ((m = membership_new(p.base, group, &callbacks, &p)) == NULL)
		log_fatal("membership_new: %s", strerror(errno));
	p.membership = m;
	event_base_dispatch(p.base);
	membership_free(m);
	ev_timer_free(timer);
	ev_timer_free(p.send_timer);
	ev_signals_free();
	event_base_free(p.base);
	return 0;
}
