/*
 * havend: Haven's daemon, one per host (DESIGN §2, §5). Today it reads the
 * host's configuration, joins the cluster through corosync (CPG group and
 * votequorum; no heartbeat of its own) and answers havenctl on the control
 * socket with the membership and quorum it sees. The replicated state, the
 * coordinator and worker supervision build on this loop.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

#define HAVEND_MAX_MEMBERS	64

struct havend {
	struct event_base	*base;
	struct config		 config;
	struct membership	*membership;
	struct control_server	*control;
	uint32_t		 node_id;
	int			 quorate;
	uint32_t		 members[HAVEND_MAX_MEMBERS];
	size_t			 nmembers;
};

static void
havend_connected(struct membership *m, uint32_t node_id, void *arg)
{
	struct havend	*h = arg;

	h->node_id = node_id;
	log_info("joined the cluster as node %u", node_id);
}

static void
havend_disconnected(struct membership *m, void *arg)
{
	struct havend	*h = arg;

	h->quorate = 0;
	h->nmembers = 0;
	log_warn("lost corosync; not quorate until it is back");
}

static void
havend_changed(struct membership *m, const uint32_t *members, size_t n,
    const uint32_t *joined, size_t njoined, const uint32_t *left,
    size_t nleft, void *arg)
{
	size_t	i;

	for (i = 0; i < njoined; i++)
		log_info("node %u joined", joined[i]);
	for (i = 0; i < nleft; i++)
		log_info("node %u left", left[i]);
}

static int
havend_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
havend_quorum(struct membership *m, int quorate, const uint32_t *members,
    size_t n, void *arg)
{
	struct havend	*h = arg;

	if (quorate != h->quorate)
		log_info("%s with %zu members", quorate ? "quorate" :
		    "NOT quorate", n);
	h->quorate = quorate;
	h->nmembers = n < HAVEND_MAX_MEMBERS ? n : HAVEND_MAX_MEMBERS;
	memcpy(h->members, members, h->nmembers * sizeof *members);
	qsort(h->members, h->nmembers, sizeof *h->members, havend_cmp_u32);
}

static void
havend_message(struct membership *m, uint32_t node_id, uint32_t pid,
    const void *data, size_t len, void *arg)
{
	log_debug("message of %zu bytes from node %u", len, node_id);
}

static const struct membership_callbacks havend_membership_callbacks = {
	.connected = havend_connected,
	.disconnected = havend_disconnected,
	.changed = havend_changed,
	.quorum = havend_quorum,
	.message = havend_message,
};

static void
havend_status(struct control_client *c, ProtobufCMessage *req, void *arg)
{
	struct havend		*h = arg;
	Haven__StatusReply	 r = HAVEN__STATUS_REPLY__INIT;

	r.node_name = h->config.node_name;
	r.node_id = h->node_id;
	r.quorate = h->quorate;
	r.members = h->members;
	r.n_members = h->nmembers;
	r.version = HAVEN_VERSION;
	control_reply(c, FRAME_STATUS_REPLY, &r.base);
}

static const struct control_route havend_routes[] = {
	{ FRAME_STATUS_REQUEST, REQUEST_READ, 0, NULL, havend_status },
};

/*
 * Roles live in the replicated state (to come); until then root is the
 * only administrator and nobody else may do anything.
 */
static int
havend_authorize(const struct identity *who, enum request_class class,
    const char *vm, enum role *granted, void *arg)
{
	return roles_allow(NULL, 0, who, class, vm, granted);
}

static int
havend_check_config(const char *path, struct config *config, int quiet)
{
	struct config_error	errs[32];
	char			line[512];
	size_t			n = 0, i;

	if (config_parse_file(path, config, errs, 32, &n) == 0) {
		if (!quiet)
			printf("%s: ok (node %s, cluster %s, %zu fence "
			    "level%s)\n", path, config->node_name,
			    config->cluster_name, config->nfences,
			    config->nfences == 1 ? "" : "s");
		return 0;
	}
	for (i = 0; i < n && i < 32; i++) {
		config_error_format(&errs[i], path, line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	if (n > 32)
		fprintf(stderr, "%s: and %zu more errors\n", path, n - 32);
	return -1;
}

/* mkdir -p for the parent of path, mode 0755. */
static void
havend_make_parent(const char *path)
{
	char	copy[512], *p;

	snprintf(copy, sizeof copy, "%s", path);
	p = dirname(copy);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

static void
havend_signal(int signo, void *arg)
{
	struct havend	*h = arg;

	log_info("signal %d: stopping", signo);
	event_base_loopbreak(h->base);
}

static void
usage(void)
{
	fprintf(stderr, "usage: havend [-d] [-c CONFIG] [--check-config]\n"
	    "  -c, --config FILE   host configuration (default %s)\n"
	    "  --check-config      report every error in it, with its line, "
	    "and exit\n"
	    "  -d, --debug         log debug messages\n", CONFIG_PATH);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int	 signals[] = { SIGTERM, SIGINT };
	struct havend		 h;
	const char		*path = CONFIG_PATH;
	int			 c, check = 0, error = 0;

	memset(&h, 0, sizeof h);
	log_init("havend", LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "c:dh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'd':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (havend_check_config(path, &h.config, !check) == -1)
		return 1;
	if (check)
		return 0;

	tzset();
	if ((h.base = ev_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	havend_make_parent(h.config.control_socket);
	if (*h.config.audit_log != '\0')
		havend_make_parent(h.config.audit_log);
	h.control = control_new(h.base, h.config.control_socket,
	    havend_routes, sizeof havend_routes / sizeof havend_routes[0],
	    havend_authorize, *h.config.audit_log ? h.config.audit_log : NULL,
	    &h, &error);
	if (h.control == NULL)
		log_fatal("control socket %s: %s%s", h.config.control_socket,
		    strerror(-error), error == -EADDRINUSE ?
		    " (another havend is running)" : "");
	if ((h.membership = membership_new(h.base, "haven",
	    &havend_membership_callbacks, &h)) == NULL)
		log_fatal("corosync client: %s", strerror(errno));
	if (ev_on_signals(h.base, signals, 2, havend_signal, &h) == -1)
		log_fatal("signals: %s", strerror(errno));
	log_info("node %s: serving %s", h.config.node_name,
	    h.config.control_socket);

	event_base_dispatch(h.base);

	membership_free(h.membership);
	control_free(h.control);
	ev_signals_free();
	event_base_free(h.base);
	return 0;
}
