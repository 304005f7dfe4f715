/*
 * haven-fence-run: runs one [fence:NAME] section of a haven.conf against a
 * victim through fence/agent.c on an event loop, as havend's agent level
 * will, and prints the outcome with the elapsed time. A test tool for the
 * lab (tests/lab/test-lab-bmc.sh), not installed.
 *
 *   haven-fence-run [-c haven.conf] [-o ACTION] [-t TIMEOUT_S] NAME VICTIM NODE
 *   result=ok elapsed=2.21 detail=fence_ipmilan off succeeded: ...
 *
 * Exit 0 on success, 1 on failure, 2 on usage or configuration errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "common.h"
#include "fence.h"
#include "timeline.h"

struct outcome {
	int		 done;
	int		 result;
	char		 detail[FENCE_AGENT_DETAIL_MAX];
	uint64_t	 end_ms;
};

static const char *
result_name(int r)
{
	switch (r) {
	case FENCE_AGENT_OK:
		return "ok";
	case FENCE_AGENT_FAILED:
		return "failed";
	case FENCE_AGENT_TIMEOUT:
		return "timeout";
	default:
		return "lost";
	}
}

static void
done_cb(int result, const char *detail, void *arg)
{
	struct outcome	*o = arg;

	o->done = 1;
	o->result = result;
	o->end_ms = ev_now_ms();
	snprintf(o->detail, sizeof o->detail, "%s", detail);
}

static void
usage(void)
{
	fprintf(stderr, "usage: haven-fence-run [-c haven.conf] [-o ACTION] "
	    "[-t TIMEOUT_S] NAME VICTIM NODE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char		*path = CONFIG_PATH, *action = "off";
	const char		*keys[CONFIG_MAX_OPTIONS];
	const char		*values[CONFIG_MAX_OPTIONS];
	struct config_error	 errs[8];
	struct config		*c;
	struct config_fence	*f = NULL;
	struct fence_agent_run	*run;
	struct event_base	*base;
	struct outcome		 o = { 0 };
	char			 line[512];
	unsigned long		 node, timeout_s;
	uint64_t		 start;
	size_t			 nerrs, i;
	int			 ch;

	timeout_s = FENCE_AGENT_TIMEOUT_MS / 1000;
	while ((ch = getopt(argc, argv, "c:o:t:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			action = optarg;
			break;
		case 't':
			timeout_s = strtoul(optarg, NULL, 10);
			if (timeout_s == 0 || timeout_s > 3600)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		usage();
	node = strtoul(argv[2], NULL, 10);
	if (node == 0 || node > UINT32_MAX)
		usage();
	log_init("haven-fence-run", LOG_LEVEL_WARN);

	if ((c = malloc(sizeof *c)) == NULL)
		return 2;
	if (config_parse_file(path, c, errs, 8, &nerrs) == -1) {
		for (i = 0; i < nerrs && i < 8; i++) {
			config_error_format(&errs[i], path, line, sizeof line);
			fprintf(stderr, "haven-fence-run: %s\n", line);
		}
		return 2;
	}
	for (i = 0; i < c->nfences; i++)
		if (strcmp(c->fences[i].name, argv[0]) == 0)
			f = &c->fences[i];
	if (f == NULL || (f->kind != CONFIG_FENCE_AGENT &&
	    f->kind != CONFIG_FENCE_PACEMAKER)) {
		fprintf(stderr, "haven-fence-run: %s has no [fence:%s] section "
		    "with a fence_* agent or pacemaker\n", path, argv[0]);
		return 2;
	}
	for (i = 0; i < f->noptions; i++) {
		keys[i] = f->options[i].key;
		values[i] = f->options[i].value;
	}

	base = ev_base_new();
	start = ev_now_ms();
	if (f->kind == CONFIG_FENCE_PACEMAKER)
		run = fence_pacemaker_start(base, argv[1], (uint32_t)node,
		    (unsigned)timeout_s * 1000, done_cb, &o);
	else
		run = fence_agent_start(base, f->agent, action, keys, values,
		    f->noptions, argv[1], (uint32_t)node,
		    (unsigned)timeout_s * 1000, done_cb, &o);
	if (run == NULL) {
		fprintf(stderr, "haven-fence-run: cannot start %s: %s\n",
		    f->agent, strerror(errno));
		return 1;
	}
	while (!o.done)
		event_base_loop(base, EVLOOP_ONCE);
	printf("result=%s elapsed=%.2f detail=%s\n", result_name(o.result),
	    (o.end_ms - start) / 1000.0, o.detail);
	event_base_free(base);
	config_wipe(c);
	free(c);
	return o.result == FENCE_AGENT_OK ? 0 : 1;
}
