/*
 * havenctl vm migrate VM [--to HOST] [--quick|--live] [--no-wait]: move a
 * running VM to another host, live by default (pre-copy between the two
 * workers; when it fails or does not converge, the cluster falls back to
 * quick migration by itself), or by quick migration (saving on the
 * source, saved, restoring on the target, running). The coordinator
 * orchestrates it through replicated phases; this command follows them,
 * prints each with its time (a progress line on a TTY), and ends with the
 * downtime the cluster recorded. Without --to the placement rules pick
 * the host.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tree.h"
#include "request.h"

#define MIGRATE_WAIT_S	600

static Haven__Vm *
migrate_show(struct cli *cli, const char *name)
{
	Haven__VmNameRequest	 req = HAVEN__VM_NAME_REQUEST__INIT;
	Haven__VmListReply	*r;
	Haven__Vm		*vm = NULL;
	uint16_t		 type;
	int			 fd, code = 0;

	req.name = (char *)name;
	if ((fd = client_connect(cli)) == -1)
		return NULL;
	r = (Haven__VmListReply *)client_request_code(cli, fd, FRAME_VM_SHOW,
	    &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return NULL;
	if (r->n_vms == 1) {
		vm = r->vms[0];
		r->vms[0] = NULL;
		r->n_vms = 0;
	}
	message_free(&r->base);
	return vm;
}

static double
migrate_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The VM's events after seq: printed (or added to arr), and the downtime
 * of the move if one was recorded. */
static long
migrate_events(struct cli *cli, const char *name, uint64_t after,
    struct json_object *arr)
{
	Haven__EventsRequest	 req = HAVEN__EVENTS_REQUEST__INIT;
	Haven__EventsReply	*r;
	char			 subject[80];
	const char		*p;
	uint16_t		 type;
	size_t			 i;
	long			 downtime = -1;
	int			 fd, code = 0;

	req.after_seq = after;
	snprintf(subject, sizeof subject, "vm %s", name);
	if ((fd = client_connect(cli)) == -1)
		return -1;
	r = (Haven__EventsReply *)client_request_code(cli, fd, FRAME_EVENTS,
	    &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->n_events; i++) {
		const Haven__Event	*e = r->events[i];
		struct json_object	*o;

		if (strcmp(e->subject, subject) != 0)
			continue;
		if ((p = strstr(e->text, "downtime ")) != NULL)
			downtime = strtol(p + 9, NULL, 10);
		if (arr != NULL) {
			o = json_object_new_object();
			json_object_object_add(o, "time_us",
			    json_object_new_uint64(e->timestamp_us));
			json_object_object_add(o, "text",
			    json_object_new_string(e->text));
			json_object_array_add(arr, o);
		} else if (!cli->quiet) {
			time_t		t = (time_t)(e->timestamp_us / 1000000);
			struct tm	tm;
			char		when[32];

			localtime_r(&t, &tm);
			strftime(when, sizeof when, "%H:%M:%S", &tm);
			printf("  %s.%03u  %s\n", when,
			    (unsigned)(e->timestamp_us / 1000 % 1000), e->text);
		}
	}
	message_free(&r->base);
	return downtime;
}

/* How far a live pass, a quick save or a restore is, as a bar. */
static void
migrate_bar(double elapsed, const Haven__VmRuntime *rt)
{
	const char	*what;
	uint32_t	 host;

	char	 bar[33];
	double	 done = tree_move(rt)->total_bytes > tree_move(rt)->remaining_bytes ?
		    (double)(tree_move(rt)->total_bytes - tree_move(rt)->remaining_bytes) /
		    tree_move(rt)->total_bytes : 0;
	int	 i, n = (int)(done * (sizeof bar - 1));

	for (i = 0; i < (int)sizeof bar - 1; i++)
		bar[i] = i < n ? '#' : '-';
	bar[sizeof bar - 1] = '\0';
	switch (rt->phase) {
	case HAVEN__VM_PHASE__VM_PHASE_SAVING:
		what = "saving on host";
		host = rt->owner;
		break;
	case HAVEN__VM_PHASE__VM_PHASE_RESTORING:
		what = "restoring on host";
		host = rt->owner;
		break;
	default:
		what = "migrating live to host";
		host = tree_move(rt)->to;
		break;
	}
	printf("\r  %6.0f ms  %s %u [%s] %3.0f%% (%.0f MiB left)   ",
	    elapsed * 1000, what, host, bar, done * 100,
	    (double)tree_move(rt)->remaining_bytes / (1024 * 1024));
	fflush(stdout);
}

static int
cmd_vm_migrate_exec(struct cli *cli, struct args *args)
{
	Haven__VmMigrate	 req = HAVEN__VM_MIGRATE__INIT;
	Haven__OkReply		*ok;
	Haven__Vm		*vm;
	struct json_object	*o, *arr;
	const char		*to = NULL, *name;
	Haven__VmPhase		 last = HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED;
	uint32_t		 from;
	uint64_t		 seq;
	double			 t0;
	long			 downtime;
	int			 quick, wait, code = 0, tty;

	/* Live is the default; --live says so, and excludes --quick. */
	quick = args_has(args, "quick");
	wait = !args_has(args, "no-wait");
	if (quick && args_has(args, "live")) {
		cli_usage_error(cli, &cmd_vm_migrate_entry,
		    "--quick and --live exclude each other");
		return CLI_EXIT_USAGE;
	}
	name = args_positional(args, 0);
	if (!cli_vm_name_valid(name)) {
		cli_usage_error(cli, &cmd_vm_migrate_entry, "bad VM name '%s'",
		    name);
		return CLI_EXIT_USAGE;
	}
	to = args_get(args, "to");
	if (to != NULL && request_node_id(cli, to, &req.target) == -1)
		return CLI_EXIT_FAILURE;
	req.quick = quick;
	if ((vm = migrate_show(cli, name)) == NULL)
		return CLI_EXIT_FAILURE;
	from = vm->runtime != NULL ? vm->runtime->owner : 0;
	message_free(&vm->base);
	req.name = (char *)name;
	ok = (Haven__OkReply *)client_call(cli, FRAME_VM_MIGRATE, &req.base,
	    FRAME_OK_REPLY, &code);
	if (ok == NULL)
		return code;
	seq = ok->seq > 0 ? ok->seq - 1 : 0;
	message_free(&ok->base);
	if (!wait) {
		if (!cli->json && !cli->quiet)
			printf("moving VM %s from host %u ('havenctl events' "
			    "shows how it goes)\n", name, from);
		return CLI_EXIT_OK;
	}
	tty = isatty(STDOUT_FILENO) && !cli->json;
	t0 = migrate_now();
	for (;;) {
		if ((vm = migrate_show(cli, name)) == NULL)
			return CLI_EXIT_FAILURE;
		if (tty && (vm->runtime->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_MIGRATING ||
		    vm->runtime->phase == HAVEN__VM_PHASE__VM_PHASE_SAVING ||
		    vm->runtime->phase ==
		    HAVEN__VM_PHASE__VM_PHASE_RESTORING) &&
		    tree_move(vm->runtime)->total_bytes != 0)
			migrate_bar(migrate_now() - t0, vm->runtime);
		else if (vm->runtime->phase != last && tty) {
			printf("\r  %6.0f ms  %-10s on host %u   ",
			    (migrate_now() - t0) * 1000,
			    cli_phase_name(vm->runtime->phase),
			    vm->runtime->owner);
			fflush(stdout);
		}
		last = vm->runtime->phase;
		if (tree_move(vm->runtime)->to == 0 &&
		    (last == HAVEN__VM_PHASE__VM_PHASE_RUNNING ||
		    last == HAVEN__VM_PHASE__VM_PHASE_FAILED ||
		    last == HAVEN__VM_PHASE__VM_PHASE_STOPPED))
			break;
		message_free(&vm->base);
		if (migrate_now() - t0 > MIGRATE_WAIT_S) {
			cli_error(cli, "VM %s has not finished moving after %d s; "
			    "'havenctl events' shows where it is", name,
			    MIGRATE_WAIT_S);
			return CLI_EXIT_FAILURE;
		}
		usleep(50000);
	}
	if (tty)
		printf("\n");
	arr = cli->json ? json_object_new_array() : NULL;
	if (!cli->json && !cli->quiet)
		printf("timeline of VM %s:\n", name);
	downtime = migrate_events(cli, name, seq, arr);
	if (cli->json) {
		o = json_object_new_object();
		json_object_object_add(o, "vm", json_object_new_string(name));
		json_object_object_add(o, "from", json_object_new_int64(from));
		json_object_object_add(o, "to",
		    json_object_new_int64(vm->runtime->owner));
		json_object_object_add(o, "phase", json_object_new_string(
		    cli_phase_name(vm->runtime->phase)));
		json_object_object_add(o, "downtime_ms", downtime >= 0 ?
		    json_object_new_int64(downtime) : NULL);
		json_object_object_add(o, "events", arr);
		cli_json_print(cli, o);
	} else if (vm->runtime->owner != from &&
	    last == HAVEN__VM_PHASE__VM_PHASE_RUNNING) {
		printf("VM %s moved from host %u to host %u", name, from,
		    vm->runtime->owner);
		if (downtime >= 0)
			printf(": downtime %ld ms", downtime);
		printf("\n");
	} else {
		printf("VM %s did not move: it is %s on host %u (see the "
		    "timeline above)\n", name, cli_phase_name(last),
		    vm->runtime->owner);
	}
	code = vm->runtime->owner != from &&
	    last == HAVEN__VM_PHASE__VM_PHASE_RUNNING ? CLI_EXIT_OK :
	    CLI_EXIT_FAILURE;
	message_free(&vm->base);
	return code;
}

const struct cmd_entry cmd_vm_migrate_entry = {
	.name = "vm migrate",
	.args = {
		.options = (const struct args_option[]) {
			{ "to", 0, ARGS_VALUE },
			{ "quick", 0, 0 },
			{ "live", 0, 0 },
			{ "no-wait", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "one VM name expected",
	},
	.usage = "NAME [--to HOST] [--quick|--live] [--no-wait] [--json]",
	.summary = "move a running VM to another host (live, or quick)",
	.exec = cmd_vm_migrate_exec,
};
