/*
 * haven-worker-driver: plays havend's side of the spawn contract so the
 * worker can be tested without havend. It opens the logs, starts
 * haven-worker with its channel on fd 3, sends the VM spec (from a JSON
 * file, "nics" included, for which it passes no taps) with the log
 * descriptors, runs a script of actions, and prints
 * every worker event as one JSON line.
 *
 *   haven-worker-driver --worker PATH --spec SPEC.json --serial-log FILE
 *       --qemu-log FILE [--worker-log FILE] [--grant yes|no]
 *       [--pid-file FILE] ACTION...
 *   haven-worker-driver --adopt RUN_DIR [--serial-log FILE] [--grant yes|no]
 *       ACTION...
 *
 * Actions: start, stop[:MS], kill, pause, resume, save, restore:GEN,
 * wait:PHASE[:SECONDS], wait-serial:TEXT[:SECONDS], sleep:MS,
 * expect-error:TEXT, close, hangup (close the channel and exit 0 at once,
 * leaving the worker running: a havend restart).
 * --adopt plays a restarted havend: it spawns nothing, connects to
 * RUN_DIR/worker.sock, prints the worker's WorkerHello as a JSON line, then
 * runs the actions.
 * Exit 0 when the script ran to its end, 1 when a wait timed out or the
 * worker failed unexpectedly, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common.h"
#include "proto.h"
#include "storage.h"

struct driver {
	struct event_base	*base;
	struct channel		*channel;
	char			**actions;
	int			 nactions;
	int			 next;
	const char		*wait_phase;	/* NULL: not waiting */
	struct ev_timer		*timer;		/* wait timeout or sleep */
	int			 grant;
	int			 result;
	int			 done;
	char			 last_error[512];
	char			 last_phase[32];
	pid_t			 worker;
	/* Phases seen since the last command: a wait is satisfied by an
	 * event that came after the command it waits on. */
	int			 since[16];
	int			 nsince;
	int			 started;	/* the worker said it is ready */
	const char		*serial_path;
	const char		*wait_serial;	/* text awaited in the serial log */
	uint64_t		 wait_until;	/* ms, for wait_serial */
	int			 adopting;	/* --adopt: a hello comes first */
	int			 hangup;	/* leave without waiting */
};

static void	driver_step(struct driver *);

static void
driver_done(struct driver *d, int result)
{
	d->result = result;
	d->done = 1;
	event_base_loopbreak(d->base);
}

static const char *
driver_phase_name(int phase)
{
	const ProtobufCEnumValue	*v;

	v = protobuf_c_enum_descriptor_get_value(&haven__vm_phase__descriptor,
	    phase);
	return v != NULL ? v->name + strlen("VM_PHASE_") : "UNKNOWN";
}

static const char	*driver_phase_name(int);

static int
driver_seen(struct driver *d, const char *phase)
{
	int	i;

	for (i = 0; i < d->nsince; i++) {
		if (strcmp(driver_phase_name(d->since[i]), phase) == 0)
			return 1;
	}
	return 0;
}

static void
driver_print_event(const Haven__WorkerEvent *ev)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "phase",
	    json_object_new_string(driver_phase_name(ev->phase)));
	json_object_object_add(o, "vm", json_object_new_string(ev->vm_uuid));
	json_object_object_add(o, "generation",
	    json_object_new_uint64(ev->generation));
	if (ev->error != NULL)
		json_object_object_add(o, "error",
		    json_object_new_string(ev->error->message));
	json_object_object_add(o, "fenced",
	    json_object_new_boolean(ev->fenced));
	json_object_object_add(o, "detail", json_object_new_string(ev->detail));
	json_object_object_add(o, "state_bytes",
	    json_object_new_uint64(ev->state_bytes));
	json_object_object_add(o, "duration_us",
	    json_object_new_uint64(ev->duration_us));
	json_object_object_add(o, "qemu_pid",
	    json_object_new_int64(ev->qemu_pid));
	json_object_object_add(o, "time_us",
	    json_object_new_uint64(ev->timestamp_us));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static void
driver_print_hello(const Haven__WorkerHello *h)
{
	struct json_object	*o = json_object_new_object();
	const char		*phase = driver_phase_name(h->phase);

	json_object_object_add(o, "hello", json_object_new_boolean(1));
	json_object_object_add(o, "phase", json_object_new_string(phase));
	json_object_object_add(o, "vm", json_object_new_string(
	    h->spec != NULL ? h->spec->uuid : ""));
	json_object_object_add(o, "name", json_object_new_string(
	    h->spec != NULL ? h->spec->name : ""));
	json_object_object_add(o, "generation",
	    json_object_new_uint64(h->generation));
	json_object_object_add(o, "qemu_pid",
	    json_object_new_int64(h->qemu_pid));
	json_object_object_add(o, "worker_pid",
	    json_object_new_int64(h->worker_pid));
	json_object_object_add(o, "adopt_timeout_ms", json_object_new_int64(
	    h->spec != NULL ? h->spec->adopt_timeout_ms : 0));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
	fprintf(stderr, "driver: hello phase=%s qemu_pid=%u worker_pid=%u "
	    "generation=%" PRIu64 "\n", phase, h->qemu_pid, h->worker_pid,
	    h->generation);
}

static void
driver_channel_cb(struct channel *c, struct frame *f, int err, void *arg)
{
	struct driver		*d = arg;
	ProtobufCMessage	*m;
	Haven__WorkerEvent	*ev;
	Haven__RegisterGrant	 grant = HAVEN__REGISTER_GRANT__INIT;
	const char		*phase;

	if (f == NULL) {
		fprintf(stderr, "driver: the worker closed its channel (%s)\n",
		    frame_strerror(err));
		channel_free(d->channel);
		d->channel = NULL;
		/* Waiting for the end is fine; anything else is a failure. */
		driver_done(d, d->wait_phase != NULL &&
		    strcmp(d->wait_phase, "EXIT") == 0 ? 0 :
		    d->next >= d->nactions && d->wait_phase == NULL ? 0 : 1);
		return;
	}
	if ((m = message_decode(f)) == NULL) {
		fprintf(stderr, "driver: undecodable frame type %u\n", f->type);
		return;
	}
	if (d->adopting && !d->started && f->type != FRAME_WORKER_HELLO) {
		fprintf(stderr, "driver: expected a worker-hello first, got %s\n",
		    message_type_name(f->type));
		message_free(m);
		driver_done(d, 1);
		return;
	}
	switch (f->type) {
	case FRAME_WORKER_HELLO:
		if (!d->adopting || d->started) {
			fprintf(stderr, "driver: unexpected worker-hello\n");
			break;
		}
		driver_print_hello((Haven__WorkerHello *)m);
		d->started = 1;
		d->nsince = 0;
		d->wait_phase = NULL;
		ev_timer_cancel(d->timer);
		driver_step(d);
		break;
	case FRAME_WORKER_EVENT:
		ev = (Haven__WorkerEvent *)m;
		driver_print_event(ev);
		phase = driver_phase_name(ev->phase);
		snprintf(d->last_phase, sizeof d->last_phase, "%s", phase);
		snprintf(d->last_error, sizeof d->last_error, "%s",
		    ev->error != NULL ? ev->error->message : "");
		if (d->nsince < 16)
			d->since[d->nsince++] = ev->phase;
		if (!d->started) {
			/* The script starts once the worker is ready: its
			 * volumes open and the lease held. */
			if (ev->phase == HAVEN__VM_PHASE__VM_PHASE_STOPPED) {
				d->started = 1;
				d->nsince = 0;
				d->wait_phase = NULL;
				ev_timer_cancel(d->timer);
				driver_step(d);
			} else if (ev->phase ==
			    HAVEN__VM_PHASE__VM_PHASE_FAILED) {
				fprintf(stderr, "driver: the worker failed to "
				    "get ready: %s\n", d->last_error);
				driver_done(d, 1);
			}
			break;
		}
		if (d->started && d->wait_phase != NULL &&
		    strcmp(d->wait_phase, phase) == 0) {
			d->wait_phase = NULL;
			ev_timer_cancel(d->timer);
			driver_step(d);
		} else if (d->started && d->wait_phase != NULL &&
		    strcmp(d->wait_phase, "EXIT") != 0 &&
		    ev->phase == HAVEN__VM_PHASE__VM_PHASE_FAILED) {
			fprintf(stderr, "driver: the worker failed while we "
			    "waited for %s: %s\n", d->wait_phase,
			    d->last_error);
			driver_done(d, 1);
		}
		break;
	case FRAME_REGISTER_REQUEST:
		grant.volume_uuid = ((Haven__RegisterRequest *)m)->volume_uuid;
		grant.granted = d->grant;
		fprintf(stderr, "driver: registration request for %s: %s\n",
		    grant.volume_uuid, d->grant ? "granted" : "refused");
		channel_send_message(c, FRAME_REGISTER_GRANT, &grant.base, NULL,
		    0);
		break;
	case FRAME_ERROR:
		fprintf(stderr, "driver: worker error: %s\n",
		    ((Haven__Error *)m)->message);
		break;
	default:
		break;
	}
	message_free(m);
}

/* Does the guest's serial log hold text yet? */
static int
driver_serial_has(struct driver *d, const char *text)
{
	char	line[1024];
	FILE	*fp;
	int	 found = 0;

	if ((fp = fopen(d->serial_path, "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof line, fp) != NULL)
		found = strstr(line, text) != NULL;
	fclose(fp);
	return found;
}

static void
driver_timer_cb(void *arg)
{
	struct driver	*d = arg;

	if (d->wait_serial != NULL) {
		if (driver_serial_has(d, d->wait_serial)) {
			d->wait_serial = NULL;
			driver_step(d);
		} else if (ev_now_ms() > d->wait_until) {
			fprintf(stderr, "driver: timed out waiting for '%s' on "
			    "the serial console\n", d->wait_serial);
			driver_done(d, 1);
		} else {
			ev_timer_arm(d->timer, 100);
		}
		return;
	}
	if (d->wait_phase != NULL) {
		fprintf(stderr, "driver: timed out waiting for %s (last phase "
		    "%s%s%s)\n", d->wait_phase, d->last_phase,
		    *d->last_error ? ": " : "", d->last_error);
		driver_done(d, 1);
		return;
	}
	driver_step(d);		/* a sleep ended */
}

static void
driver_command(struct driver *d, Haven__WorkerAction action,
    uint32_t timeout_ms, uint64_t generation)
{
	Haven__WorkerCommand	cmd = HAVEN__WORKER_COMMAND__INIT;

	d->nsince = 0;
	cmd.action = action;
	cmd.timeout_ms = timeout_ms;
	cmd.state_generation = generation;
	if (d->channel != NULL)
		channel_send_message(d->channel, FRAME_WORKER_COMMAND,
		    &cmd.base, NULL, 0);
}

/* Run actions until one has to wait. */
static void
driver_step(struct driver *d)
{
	char	*a, *arg;

	while (d->next < d->nactions) {
		a = d->actions[d->next++];
		arg = strchr(a, ':');
		fprintf(stderr, "driver: %s\n", a);
		if (strcmp(a, "start") == 0)
			driver_command(d, HAVEN__WORKER_ACTION__WORKER_ACTION_START,
			    0, 0);
		else if (strncmp(a, "stop", 4) == 0)
			driver_command(d, HAVEN__WORKER_ACTION__WORKER_ACTION_STOP,
			    arg ? (uint32_t)atoi(arg + 1) : 0, 0);
		else if (strcmp(a, "kill") == 0)
			driver_command(d, HAVEN__WORKER_ACTION__WORKER_ACTION_KILL,
			    0, 0);
		else if (strcmp(a, "pause") == 0)
			driver_command(d, HAVEN__WORKER_ACTION__WORKER_ACTION_PAUSE,
			    0, 0);
		else if (strcmp(a, "resume") == 0)
			driver_command(d,
			    HAVEN__WORKER_ACTION__WORKER_ACTION_RESUME, 0, 0);
		else if (strcmp(a, "save") == 0)
			driver_command(d, HAVEN__WORKER_ACTION__WORKER_ACTION_SAVE,
			    0, 0);
		else if (strncmp(a, "restore:", 8) == 0)
			driver_command(d,
			    HAVEN__WORKER_ACTION__WORKER_ACTION_RESTORE, 0,
			    strtoull(a + 8, NULL, 10));
		else if (strncmp(a, "wait:", 5) == 0) {
			static char	phase[32];
			char		*colon;
			int		 secs = 60;

			snprintf(phase, sizeof phase, "%s", a + 5);
			if ((colon = strchr(phase, ':')) != NULL) {
				*colon = '\0';
				secs = atoi(colon + 1);
			}
			if (driver_seen(d, phase))
				continue;	/* it came already */
			d->wait_phase = phase;
			ev_timer_arm(d->timer, (uint64_t)secs * 1000);
			return;
		} else if (strncmp(a, "wait-serial:", 12) == 0) {
			static char	text[256];
			char		*colon;
			int		 secs = 60;

			snprintf(text, sizeof text, "%s", a + 12);
			if ((colon = strrchr(text, ':')) != NULL) {
				*colon = '\0';
				secs = atoi(colon + 1);
			}
			d->wait_serial = text;
			d->wait_until = ev_now_ms() + (uint64_t)secs * 1000;
			ev_timer_arm(d->timer, 100);
			return;
		} else if (strncmp(a, "sleep:", 6) == 0) {
			ev_timer_arm(d->timer, strtoull(a + 6, NULL, 10));
			return;
		} else if (strncmp(a, "expect-error:", 13) == 0) {
			if (strstr(d->last_error, a + 13) == NULL) {
				fprintf(stderr, "driver: expected an error with "
				    "'%s', the last was '%s'\n", a + 13,
				    d->last_error);
				driver_done(d, 1);
				return;
			}
		} else if (strcmp(a, "close") == 0) {
			if (d->channel != NULL) {
				channel_free(d->channel);
				d->channel = NULL;
			}
		} else if (strcmp(a, "hangup") == 0) {
			/* main flushes what we said, closes, and leaves. */
			d->hangup = 1;
			break;
		} else {
			fprintf(stderr, "driver: unknown action '%s'\n", a);
			driver_done(d, 2);
			return;
		}
	}
	driver_done(d, 0);
}

static char *
driver_str(struct json_object *o, const char *key, const char *def)
{
	struct json_object	*v;

	if (json_object_object_get_ex(o, key, &v))
		return (char *)json_object_get_string(v);
	return (char *)def;
}

static uint64_t
driver_u64(struct json_object *o, const char *key, uint64_t def)
{
	struct json_object	*v;
	const char		*s;

	if (!json_object_object_get_ex(o, key, &v))
		return def;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		return strtoull(s, NULL, strncmp(s, "0x", 2) == 0 ? 16 : 10);
	}
	return (uint64_t)json_object_get_int64(v);
}

/* The volume's CHAP account from the host's chap file, as havend hands it
 * over (issue 15); none when there is no file. */
static void
driver_chap(Haven__VolumeRef *ref)
{
	static int	 loaded;
	const char	*user, *secret, *target, *slash;
	char		 err[320], name[256];

	if (!loaded) {
		loaded = 1;
		if (chap_setup(CHAP_PATH, 0, PR_KEY_SECRET_PATH, 0, err,
		    sizeof err) == -1)
			fprintf(stderr, "driver: %s\n", err);
	}
	if (strncmp(ref->url, "iscsi://", 8) != 0 ||
	    (target = strchr(ref->url + 8, '/')) == NULL)
		return;
	target++;
	if ((slash = strchr(target, '/')) == NULL ||
	    (size_t)(slash - target) >= sizeof name)
		return;
	snprintf(name, sizeof name, "%.*s", (int)(slash - target), target);
	if (chap_find(chap_installed(), name, &user, &secret) == 0) {
		ref->chap_user = (char *)user;
		ref->chap_secret = (char *)secret;
	}
}

/* The spec JSON, as havend would build it from the cluster state. */
static int
driver_send_spec(struct driver *d, const char *path, int serial_fd,
    int log_fd)
{
	struct json_object	*o, *vols, *v;
	Haven__VmSpec		 spec = HAVEN__VM_SPEC__INIT;
	Haven__VolumeRef	 refs[4], *prefs[4];
	Haven__Nic		 nics[NIC_MAX], *pnics[NIC_MAX];
	int			 fds[2] = { serial_fd, log_fd };
	size_t			 i, n;
	int			 r;

	if ((o = json_object_from_file(path)) == NULL) {
		fprintf(stderr, "driver: %s: not valid JSON\n", path);
		return -1;
	}
	spec.uuid = driver_str(o, "uuid", "");
	spec.name = driver_str(o, "name", "vm");
	spec.memory_mib = driver_u64(o, "memory_mib", 64);
	spec.vcpus = (uint32_t)driver_u64(o, "vcpus", 1);
	spec.generation = driver_u64(o, "generation", 1);
	spec.accel = strcmp(driver_str(o, "accel", "tcg"), "kvm") == 0 ?
	    HAVEN__ACCEL__ACCEL_KVM : HAVEN__ACCEL__ACCEL_TCG;
	spec.uid = (uint32_t)driver_u64(o, "uid", 0);
	spec.gid = (uint32_t)driver_u64(o, "gid", 0);
	spec.run_dir = driver_str(o, "run_dir", "");
	spec.host_name = driver_str(o, "host_name", "");
	spec.node_id = (uint32_t)driver_u64(o, "node_id", 0);
	spec.initiator = driver_str(o, "initiator", "");
	spec.kernel = driver_str(o, "kernel", "");
	spec.kernel_append = driver_str(o, "kernel_append", "");
	spec.config_hash = driver_u64(o, "config_hash", 0);
	spec.qemu_binary = driver_str(o, "qemu_binary", "");
	spec.adopt_timeout_ms = (uint32_t)driver_u64(o, "adopt_timeout_ms", 0);
	spec.serial_log = driver_str(o, "serial_log", "");
	spec.qemu_log = driver_str(o, "qemu_log", "");
	n = 0;
	if (json_object_object_get_ex(o, "volumes", &vols)) {
		for (i = 0; i < json_object_array_length(vols) && i < 4; i++) {
			v = json_object_array_get_idx(vols, i);
			haven__volume_ref__init(&refs[n]);
			refs[n].uuid = driver_str(v, "uuid", "");
			refs[n].url = driver_str(v, "url", "");
			refs[n].reservation_key = driver_u64(v,
			    "reservation_key", 0);
			driver_chap(&refs[n]);
			prefs[n] = &refs[n];
			n++;
		}
	}
	spec.n_volumes = n;
	spec.volumes = prefs;
	/* NICs, with no taps (havend opens none yet): the worker refuses. */
	n = 0;
	if (json_object_object_get_ex(o, "nics", &vols)) {
		for (i = 0; i < json_object_array_length(vols) && i < NIC_MAX;
		    i++) {
			v = json_object_array_get_idx(vols, i);
			haven__nic__init(&nics[n]);
			nics[n].bridge = driver_str(v, "bridge", "");
			nics[n].mac = driver_str(v, "mac", "");
			nics[n].vlan = (uint32_t)driver_u64(v, "vlan", 0);
			pnics[n] = &nics[n];
			n++;
		}
	}
	spec.n_nics = n;
	spec.nics = pnics;
	spec.initrd = driver_str(o, "initrd", "");
	r = channel_send_message(d->channel, FRAME_VM_SPEC, &spec.base, fds, 2);
	json_object_put(o);
	return r;
}

/* --adopt: connect to the worker's adoption socket, as a new havend does. */
static int
driver_connect(const char *run_dir)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path,
	    "%s/worker.sock", run_dir) >= sizeof sun.sun_path) {
		fprintf(stderr, "driver: %s: path too long\n", run_dir);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		fprintf(stderr, "driver: %s: %s\n", sun.sun_path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

static int
driver_open_log(const char *path)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd == -1)
		fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
	return fd;
}

/* Run the script on an adopted worker: a hello first, then as usual. */
static int
driver_adopt(struct driver *d, const char *run_dir)
{
	int	fd;

	if ((fd = driver_connect(run_dir)) == -1)
		return 1;
	d->adopting = 1;
	d->worker = -1;
	d->base = ev_base_new();
	d->channel = channel_new(d->base, fd, FRAME_DEFAULT_MAX,
	    driver_channel_cb, d);
	d->timer = ev_timer_new(d->base, 0, 0, driver_timer_cb, d);
	if (d->base == NULL || d->channel == NULL || d->timer == NULL)
		return 1;
	d->wait_phase = "HELLO";
	ev_timer_arm(d->timer, 10000);
	if (!d->done)
		event_base_dispatch(d->base);
	while (d->channel != NULL && channel_pending(d->channel) > 0 &&
	    event_base_loop(d->base, EVLOOP_ONCE) == 0)
		;
	if (d->channel != NULL)
		channel_free(d->channel);
	ev_timer_free(d->timer);
	event_base_free(d->base);
	return d->result;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "spec", required_argument, NULL, 's' },
		{ "serial-log", required_argument, NULL, 'S' },
		{ "qemu-log", required_argument, NULL, 'Q' },
		{ "worker-log", required_argument, NULL, 'W' },
		{ "grant", required_argument, NULL, 'g' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "adopt", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*worker = NULL, *spec = NULL, *serial = NULL, *qlog = NULL;
	const char	*wlog = NULL, *pidfile = NULL, *adopt = NULL;
	FILE		*fp;
	struct driver	 d;
	int		 c, sv[2], serial_fd, log_fd, wlog_fd = -1, status;

	memset(&d, 0, sizeof d);
	d.grant = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'w': worker = optarg; break;
		case 's': spec = optarg; break;
		case 'S': serial = optarg; break;
		case 'Q': qlog = optarg; break;
		case 'W': wlog = optarg; break;
		case 'g': d.grant = strcmp(optarg, "yes") == 0; break;
		case 'p': pidfile = optarg; break;
		case 'a': adopt = optarg; break;
		default: return 2;
		}
	}
	if (adopt == NULL && (worker == NULL || spec == NULL || serial == NULL ||
	    qlog == NULL)) {
		fprintf(stderr, "usage: haven-worker-driver --worker PATH --spec "
		    "SPEC.json --serial-log FILE --qemu-log FILE [--worker-log "
		    "FILE] [--grant yes|no] ACTION...\n"
		    "       haven-worker-driver --adopt RUN_DIR [--serial-log "
		    "FILE] [--grant yes|no] ACTION...\n");
		return 2;
	}
	d.serial_path = serial != NULL ? serial : "/dev/null";
	d.actions = argv + optind;
	d.nactions = argc - optind;
	log_init("haven-worker-driver", LOG_LEVEL_WARN);
	if (adopt != NULL)
		return driver_adopt(&d, adopt);
	if ((serial_fd = driver_open_log(serial)) == -1 ||
	    (log_fd = driver_open_log(qlog)) == -1 ||
	    (wlog != NULL && (wlog_fd = driver_open_log(wlog)) == -1))
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return 1;
	d.worker = fork();
	if (d.worker == 0) {
		if (dup2(sv[1], 3) == -1)
			_exit(127);
		if (wlog_fd != -1) {
			dup2(wlog_fd, 1);
			dup2(wlog_fd, 2);
		}
		execl(worker, "haven-worker", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	if (pidfile != NULL && (fp = fopen(pidfile, "w")) != NULL) {
		fprintf(fp, "%ld\n", (long)d.worker);
		fclose(fp);
	}
	d.base = ev_base_new();
	d.channel = channel_new(d.base, sv[0], FRAME_DEFAULT_MAX,
	    driver_channel_cb, &d);
	d.timer = ev_timer_new(d.base, 0, 0, driver_timer_cb, &d);
	if (driver_send_spec(&d, spec, serial_fd, log_fd) == -1)
		return 1;
	close(serial_fd);
	close(log_fd);
	d.wait_phase = "READY";		/* volumes open, lease held */
	ev_timer_arm(d.timer, 60000);
	if (!d.done)
		event_base_dispatch(d.base);
	/* What we said must reach the worker before we hang up. */
	while (d.channel != NULL && channel_pending(d.channel) > 0 &&
	    event_base_loop(d.base, EVLOOP_ONCE) == 0)
		;
	/* Hang up: the worker stops the VM and exits (or, after hangup with
	 * adopt_timeout_ms in the spec, waits for --adopt; not for us). */
	if (d.channel != NULL)
		channel_free(d.channel);
	ev_timer_free(d.timer);
	if (!d.hangup && waitpid(d.worker, &status, 0) == d.worker)
		fprintf(stderr, "driver: worker exited (%s %d)\n",
		    WIFEXITED(status) ? "status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	event_base_free(d.base);
	return d.result;
}
