/*
 * Live migration, the worker's side (DESIGN §6). The target's worker opens
 * the volumes without the lease, starts QEMU with -incoming defer -S and
 * listens on its migration address; the cluster carries its endpoint and a
 * one-time token to the source. The source's worker connects, presents the
 * token and hands the socket to QEMU (`migrate fd:`); both QEMUs speak TLS
 * over it with the move's key (live_tls.c), so the guest's RAM never
 * crosses the migration network in clear. Pre-copy runs over
 * the migration network under the downtime limit and bandwidth; if it has
 * not converged within its budget the worker cancels it and the VM runs on
 * (the cluster falls back to quick migration). The target reports the
 * whole stream in; once the cluster has given it the VM (generation + 1)
 * it claims the lease, opens the disks' metadata again (the source wrote
 * them until it stopped: a dynamic VHD's block table moved on) and runs the
 * vCPUs. The source keeps its stopped QEMU until then: a target that fails
 * before the handover leaves the VM to resume where it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common.h"
#include "transfer_int.h"

static void	live_incoming_refused(struct json_object *, const char *,
		    const char *, void *);
static void	live_send_refused(struct json_object *, const char *,
		    const char *, void *);

void
live_init(struct transfer *t)
{
	size_t	i;

	t->live.listen_fd = t->live.fd = t->live.tls_fd = -1;
	for (i = 0; i < LIVE_SENDERS; i++)
		t->live.senders[i].fd = -1;
}

static void
live_close(struct transfer *t)
{
	if (t->live.io != NULL) {
		event_free(t->live.io);
		t->live.io = NULL;
	}
	if (t->live.fd != -1) {
		close(t->live.fd);
		t->live.fd = -1;
	}
}

static void
live_stop_listening(struct transfer *t)
{
	if (t->live.accept != NULL) {
		event_free(t->live.accept);
		t->live.accept = NULL;
	}
	if (t->live.listen_fd != -1) {
		close(t->live.listen_fd);
		t->live.listen_fd = -1;
	}
}

static void
live_sender_close(struct live_sender *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->fd != -1)
		close(p->fd);
	p->ev = NULL;
	p->fd = -1;
}

void
live_close_all(struct transfer *t)
{
	size_t	i;

	live_close(t);
	for (i = 0; i < LIVE_SENDERS; i++)
		live_sender_close(&t->live.senders[i]);
	live_stop_listening(t);
}

/* --- the target ---------------------------------------------------------- */

/* havend's token: LIVE_TOKEN hex digits (the key derives from it). */
static int
live_token_valid(const char *token)
{
	size_t	i;

	if (token == NULL || strlen(token) != LIVE_TOKEN)
		return 0;
	for (i = 0; i < LIVE_TOKEN; i++)
		if (hex_digit(token[i]) == -1)
			return 0;
	return 1;
}

void
live_incoming(struct transfer *t, const Haven__WorkerCommand *cmd)
{
	t->kind = TRANSFER_INCOMING;
	t->start_us = now_us();
	snprintf(t->live.endpoint, sizeof t->live.endpoint, "%s",
	    cmd->endpoint);
	t->live.token[0] = '\0';
	if (cmd->token != NULL && *cmd->token != '\0') {
		if (!live_token_valid(cmd->token)) {
			t->ops->fail(t->arg, -EINVAL, "live migration: a "
			    "malformed token");
			return;
		}
		snprintf(t->live.token, sizeof t->live.token, "%s",
		    cmd->token);
	}
	if (live_tls_key(t, cmd) == -1) {
		t->ops->fail(t->arg, -EINVAL, "live migration: a malformed "
		    "TLS key");
		return;
	}
	t->ops->start_qemu(t->arg);
}

/* A TCP listener on the migration address, any port. */
int
live_listen(struct transfer *t)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	uint8_t			raw[LIVE_TOKEN / 2];
	char			addr[64];
	size_t			i;
	int			fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	if (strlen(t->live.endpoint) >= sizeof addr) {
		errno = EINVAL;
		return -1;
	}
	memcpy(addr, t->live.endpoint, strlen(t->live.endpoint) + 1);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	/* havend chose the token (the key derives from it); an older
	 * havend's command has none: one of our own. */
	if (t->live.token[0] == '\0') {
		if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
			return -1;
		for (i = 0; i < sizeof raw; i++)
			snprintf(t->live.token + 2 * i, 3, "%02x", raw[i]);
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	t->live.listen_fd = fd;
	snprintf(t->live.endpoint, sizeof t->live.endpoint, "%s:%u", addr,
	    (unsigned)ntohs(sin.sin_port));
	return 0;
}

/* The sender's token, then the socket goes to QEMU. */
static void
live_token_read(evutil_socket_t fd, short events, void *arg)
{
	struct live_sender	*p = arg;
	struct transfer		*t = p->t;
	ssize_t			 n;
	size_t			 i;
	int			 flags;

	if (events & EV_TIMEOUT) {
		log_warn("live migration: a sender showed no token within "
		    "%d ms; closed", LIVE_TOKEN_MS);
		live_sender_close(p);
		return;
	}
	n = read(fd, p->got + p->n, sizeof p->got - p->n);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_warn("live migration: a sender left before its token");
		live_sender_close(p);
		return;
	}
	p->n += (size_t)n;
	if (p->n < sizeof p->got)
		return;
	if (memcmp(p->got, t->live.token, sizeof p->got) != 0) {
		log_warn("live migration: a sender with a wrong token; "
		    "closed");
		live_sender_close(p);
		return;
	}
	/* The sender: nobody else from now on. */
	event_free(p->ev);
	p->ev = NULL;
	p->fd = -1;
	for (i = 0; i < LIVE_SENDERS; i++)
		live_sender_close(&t->live.senders[i]);
	live_stop_listening(t);
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	transfer_hand_fd(t, fd, TRANSFER_LIVE_FD_NAME);
	transfer_migrate_fd(t, "migrate-incoming", TRANSFER_LIVE_FD_NAME,
	    live_incoming_refused);
	t->live.start_us = now_us();
	log_info("live migration: receiving");
}

static void
live_accept(evutil_socket_t fd, short events, void *arg)
{
	struct transfer		*t = arg;
	struct live_sender	*p = NULL;
	struct timeval		 tv = { LIVE_TOKEN_MS / 1000,
				    LIVE_TOKEN_MS % 1000 * 1000 };
	size_t			 i;
	int			 c;

	if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1)
		return;
	/* A free slot, else the one that has kept silent longest. */
	for (i = 0; i < LIVE_SENDERS; i++) {
		if (t->live.senders[i].fd == -1) {
			p = &t->live.senders[i];
			break;
		}
		if (p == NULL || t->live.senders[i].since_us < p->since_us)
			p = &t->live.senders[i];
	}
	if (p->fd != -1) {
		log_warn("live migration: %d senders have not shown a token; "
		    "dropping the oldest", LIVE_SENDERS);
		live_sender_close(p);
	}
	p->t = t;
	p->fd = c;
	p->n = 0;
	p->since_us = now_us();
	if ((p->ev = event_new(t->base, c, EV_READ | EV_PERSIST,
	    live_token_read, p)) == NULL ||
	    event_add(p->ev, &tv) == -1)
		live_sender_close(p);
}

/* The target's QEMU answers QMP: wait for the sender. */
void
live_incoming_ready(struct transfer *t)
{
	transfer_migration_events(t);
	/* Credentials and tls-creds before any migrate-incoming. */
	if (live_tls_begin(t, 1) == -1) {
		t->ops->fail(t->arg, -errno, "live migration: writing the "
		    "TLS key");
		return;
	}
	t->live.accept = event_new(t->base, t->live.listen_fd,
	    EV_READ | EV_PERSIST, live_accept, t);
	if (t->live.accept == NULL || event_add(t->live.accept, NULL) == -1) {
		t->ops->fail(t->arg, -ENOMEM, "live migration: listening");
		return;
	}
	t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
	    "waiting for the live migration", 0, 0);
}

/* The target, handed the VM: lease, the disks again, then the vCPUs. */
static void
live_switch_resumed(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;

	if (result == NULL) {
		t->ops->fail(t->arg, -EIO,
		    "cont after the live migration failed");
		return;
	}
	transfer_announce(t);
	transfer_end(t);
	t->ops->watch_lease(t->arg);
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_RUNNING, 0,
	    "migrated live and running");
}

static void
live_taken_over(int result, const char *what, void *arg)
{
	struct transfer	*t = arg;

	if (result != 0) {
		t->ops->fail(t->arg, result, what);
		return;
	}
	transfer_qmp(t, "cont", NULL, -1, live_switch_resumed, t);
}

void
live_switch(struct transfer *t)
{
	t->kind = TRANSFER_SWITCH;
	t->ops->take_over(t->arg, live_taken_over, t);
}

/* --- the source ---------------------------------------------------------- */

/* The migration is over without a handover; the VM runs on. */
static void
live_ended(struct transfer *t, int error, const char *why)
{
	ev_timer_cancel(t->progress_timer);
	ev_timer_cancel(t->live.switch_timer);
	live_close(t);
	live_tls_end(t);
	transfer_end(t);
	t->live.completed = 0;
	t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_RUNNING, error, why,
	    0, 0);
}

/* QEMU refused to start sending or receiving: no MIGRATION event follows. */
static void
live_send_refused(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	char		 why[256];

	if (result != NULL || t->kind != TRANSFER_LIVE)
		return;
	snprintf(why, sizeof why, "QEMU refused to send (%s); it runs on here",
	    desc != NULL ? desc : class != NULL ? class : "no reason");
	live_ended(t, -EIO, why);
}

static void
live_incoming_refused(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	char		 why[256];

	if (result != NULL || t->kind != TRANSFER_INCOMING)
		return;
	snprintf(why, sizeof why, "QEMU refused the incoming stream (%s)",
	    desc != NULL ? desc : class != NULL ? class : "no reason");
	t->ops->fail(t->arg, -EIO, why);
}

static void
live_figures(struct json_object *result, double *remaining_mib,
    double *dirty_mib_s, double *mbps, int64_t *passes, uint64_t *sent)
{
	struct json_object	*ram, *v;

	*remaining_mib = *dirty_mib_s = *mbps = 0;
	*passes = 0;
	*sent = 0;
	if (result == NULL || !json_object_object_get_ex(result, "ram", &ram))
		return;
	if (json_object_object_get_ex(ram, "transferred", &v))
		*sent = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(ram, "remaining", &v))
		*remaining_mib = json_object_get_int64(v) / 1048576.0;
	if (json_object_object_get_ex(ram, "dirty-pages-rate", &v))
		*dirty_mib_s = json_object_get_int64(v) * 4096.0 / 1048576.0;
	if (json_object_object_get_ex(ram, "mbps", &v))
		*mbps = json_object_get_double(v);
	if (json_object_object_get_ex(ram, "dirty-sync-count", &v))
		*passes = json_object_get_int64(v);
}

/* Call it off (QEMU keeps the VM running); why says why, for the end. */
static void
live_cancel(struct transfer *t)
{
	log_warn("live migration: %s; cancelling", t->live.why);
	transfer_qmp(t, "migrate_cancel", NULL, -1, NULL, NULL);
}

static void
live_progress_reply(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	double		 left, dirty, mbps;
	int64_t		 passes;
	uint64_t	 ms, now, sent, still_ms;
	char		 rate[64], line[160];

	if (t->kind != TRANSFER_LIVE || t->live.completed || t->live.stopped)
		return;
	live_figures(result, &left, &dirty, &mbps, &passes, &sent);
	now = now_us();
	ms = (now - t->live.start_us) / 1000;
	if (sent > t->live.sent || t->live.sent_us == 0) {
		t->live.sent = sent;
		t->live.sent_us = now;
	}
	still_ms = (now - t->live.sent_us) / 1000;
	snprintf(line, sizeof line, "%" PRIu64 " ms, pass %" PRId64 ", %.1f "
	    "MiB left, dirtying %.1f MiB/s, sending %.0f Mbit/s", ms, passes,
	    left, dirty, mbps);
	t->remaining = (uint64_t)(left * 1048576.0);
	t->total = t->vm.memory_mib << 20;
	if (t->remaining > t->total)
		t->remaining = t->total;
	transfer_report(t, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, line);
	if (still_ms >= LIVE_STALL_MS) {
		snprintf(t->live.why, sizeof t->live.why, "the stream to %s "
		    "stalled: nothing sent for %" PRIu64 " s (pass %" PRId64
		    ", %.1f MiB left)", t->live.endpoint, still_ms / 1000,
		    passes, left);
		live_cancel(t);
		return;
	}
	if (ms < t->live.converge_ms) {
		ev_timer_arm(t->progress_timer, LIVE_POLL_MS);
		return;
	}
	/* Over budget: call it off; QEMU keeps the VM running. */
	rate[0] = '\0';
	if (dirty > 0)	/* QEMU knows it after the first pass */
		snprintf(rate, sizeof rate, ", the guest dirties %.1f MiB/s",
		    dirty);
	snprintf(t->live.why, sizeof t->live.why, "it did not converge "
	    "within %u s (pass %" PRId64 ", %.1f MiB left, %.0f Mbit/s "
	    "sent%s)", t->live.converge_ms / 1000, passes, left, mbps, rate);
	live_cancel(t);
}

/* The progress timer while the source sends. */
void
live_progress(struct transfer *t)
{
	transfer_qmp(t, "query-migrate", NULL, -1, live_progress_reply, t);
}

/* Connected to the target: the token, then QEMU sends. */
static void
live_connected(evutil_socket_t fd, short events, void *arg)
{
	struct transfer		*t = arg;
	struct json_object	*params;
	socklen_t		 len = sizeof(int);
	int			 error = 0, flags;
	char			 why[160];

	event_free(t->live.io);
	t->live.io = NULL;
	if (events & EV_TIMEOUT)
		error = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error == 0 && write(fd, t->live.token, LIVE_TOKEN) != LIVE_TOKEN)
		error = errno != 0 ? errno : EIO;
	if (error != 0) {
		snprintf(why, sizeof why, "cannot reach the target at %s: %s",
		    t->live.endpoint, strerror(error));
		live_ended(t, -error, why);
		return;
	}
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	t->live.fd = -1;
	transfer_migration_events(t);
	params = json_object_new_object();
	json_object_object_add(params, "downtime-limit",
	    json_object_new_int64(t->live.downtime_ms));
	json_object_object_add(params, "max-bandwidth",
	    json_object_new_int64(t->live.bandwidth ?
	    (int64_t)t->live.bandwidth : INT64_MAX / 2));
	transfer_qmp(t, "migrate-set-parameters", params, -1, NULL, NULL);
	transfer_hand_fd(t, fd, TRANSFER_LIVE_FD_NAME);
	transfer_migrate_fd(t, "migrate", TRANSFER_LIVE_FD_NAME,
	    live_send_refused);
	ev_timer_arm(t->progress_timer, LIVE_POLL_MS);
}

void
live_send(struct transfer *t, const Haven__WorkerCommand *cmd)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { LIVE_CONNECT_MS / 1000,
				    LIVE_CONNECT_MS % 1000 * 1000 };
	char			 host[64], why[160];
	const char		*colon;
	unsigned long		 port;
	int			 fd, error;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	colon = cmd->endpoint != NULL ? strrchr(cmd->endpoint, ':') : NULL;
	if (colon == NULL || (size_t)(colon - cmd->endpoint) >= sizeof host ||
	    cmd->token == NULL || strlen(cmd->token) != LIVE_TOKEN) {
		t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_RUNNING,
		    -EINVAL, "live migration: bad endpoint or token", 0, 0);
		return;
	}
	memcpy(host, cmd->endpoint, (size_t)(colon - cmd->endpoint));
	host[colon - cmd->endpoint] = '\0';
	port = strtoul(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port == 0 ||
	    port > 65535) {
		t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_RUNNING,
		    -EINVAL, "live migration: bad endpoint", 0, 0);
		return;
	}
	sin.sin_port = htons((uint16_t)port);
	t->kind = TRANSFER_LIVE;
	t->start_us = t->live.start_us = now_us();
	t->live.completed = t->live.stopped = 0;
	t->live.switch_stalled = 0;
	t->live.sent = t->live.sent_us = 0;
	t->live.why[0] = '\0';
	t->live.converge_ms = cmd->converge_ms ? cmd->converge_ms : 60000;
	t->live.downtime_ms = cmd->downtime_ms ? cmd->downtime_ms : 300;
	t->live.bandwidth = cmd->bandwidth;
	snprintf(t->live.endpoint, sizeof t->live.endpoint, "%s",
	    cmd->endpoint);
	snprintf(t->live.token, sizeof t->live.token, "%s", cmd->token);
	snprintf(why, sizeof why, "sending to %s%s", cmd->endpoint,
	    cmd->tls_key.len != 0 ? " over TLS" : " in clear");
	t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, why, 0,
	    0);
	/* The credentials before the connect: QEMU has them by the time
	 * the socket is handed over (QMP runs commands in order). */
	if (live_tls_key(t, cmd) == -1 || live_tls_begin(t, 0) == -1) {
		error = errno;
		snprintf(why, sizeof why, "live migration: the TLS key: %s",
		    strerror(error));
		live_ended(t, -error, why);
		return;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1 || (connect(fd, (struct sockaddr *)&sin, sizeof sin) ==
	    -1 && errno != EINPROGRESS)) {
		error = errno;
		snprintf(why, sizeof why, "cannot reach the target at %s: %s",
		    cmd->endpoint, strerror(error));
		if (fd != -1)
			close(fd);
		live_ended(t, -error, why);
		return;
	}
	t->live.fd = fd;
	if ((t->live.io = event_new(t->base, fd, EV_WRITE, live_connected,
	    t)) == NULL || event_add(t->live.io, &tv) == -1)
		live_ended(t, -ENOMEM, "live migration: event");
}

/* QEMU's own reason for a failed live migration. */
static void
live_failed(struct json_object *result, const char *class, const char *desc,
    void *arg)
{
	struct transfer		*t = arg;
	struct json_object	*v;
	char			 why[256];

	if (t->kind != TRANSFER_LIVE)
		return;
	if (result != NULL && json_object_object_get_ex(result, "error-desc",
	    &v))
		snprintf(why, sizeof why, "QEMU: %s", json_object_get_string(v));
	else
		snprintf(why, sizeof why, "QEMU's live migration failed");
	live_ended(t, -EIO, why);
}

/* The target's MIGRATION status. */
static void
live_incoming_status(struct transfer *t, const char *s)
{
	char	why[256];

	/* Past the TLS handshake: keys.psk has served (GnuTLS reads it at
	 * the handshake). */
	if (strcmp(s, "setup") != 0)
		live_tls_forget(t);
	if (strcmp(s, "completed") == 0) {
		/* This QEMU may send the VM on later (live, or a quick save
		 * into a pipe): no server credentials left set. */
		live_tls_end(t);
		snprintf(why, sizeof why, "live migration received in %" PRIu64
		    " ms", (now_us() - t->live.start_us) / 1000);
		t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
		    why, 1, 0);
	} else if (strcmp(s, "failed") == 0) {
		t->ops->fail(t->arg, -EIO, "the live migration stream broke "
		    "off");
	}
}

/* The source's MIGRATION status. */
static void
live_send_status(struct transfer *t, const char *s)
{
	struct json_object	*params;
	char			 why[256];

	if (strcmp(s, "pre-switchover") == 0) {
		/* Called off already: the cancel wins, the VM runs here. */
		if (*t->live.why != '\0')
			return;
		ev_timer_arm(t->live.switch_timer, LIVE_SWITCH_MS);
		params = json_object_new_object();
		json_object_object_add(params, "state",
		    json_object_new_string("pre-switchover"));
		transfer_qmp(t, "migrate-continue", params, -1, NULL, NULL);
		return;
	}
	if (strcmp(s, "completed") == 0) {
		ev_timer_cancel(t->progress_timer);
		t->live.completed = 1;
		snprintf(why, sizeof why, "live migration sent in %" PRIu64
		    " ms; the target takes over", (now_us() -
		    t->live.start_us) / 1000);
		t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
		    why, 0, 0);
	} else if (strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0) {
		/* QEMU runs the VM again by itself if it had stopped it. */
		if (t->live.stopped)
			transfer_qmp(t, "cont", NULL, -1, NULL, NULL);
		if (*t->live.why == '\0' && strcmp(s, "failed") == 0) {
			/* Ask QEMU why, then end. */
			transfer_qmp(t, "query-migrate", NULL, -1, live_failed,
			    t);
			return;
		}
		snprintf(why, sizeof why, "%s", *t->live.why ? t->live.why :
		    "cancelled");
		live_ended(t, 0, why);
	}
}

/* QMP events while a live migration runs, on either side. */
void
live_event(struct transfer *t, const char *name, struct json_object *data)
{
	struct json_object	*status;

	if (strcmp(name, "STOP") == 0 && t->kind == TRANSFER_LIVE) {
		/* The switchover begins: the downtime starts here. */
		t->live.stopped = 1;
		t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0,
		    "vCPUs stopped for the switchover", 0, now_us());
		return;
	}
	if (strcmp(name, "MIGRATION") != 0 ||
	    !json_object_object_get_ex(data, "status", &status))
		return;
	if (t->kind == TRANSFER_INCOMING)
		live_incoming_status(t, json_object_get_string(status));
	else
		live_send_status(t, json_object_get_string(status));
}

/* The last pass or the handover is stuck (a migration link that died in
 * the last pass, a target that never reports): the worker may not cancel
 * by itself now, so it asks the cluster to call it off. */
void
live_switch_timeout(void *arg)
{
	struct transfer	*t = arg;
	char		 why[160];

	if (t->kind != TRANSFER_LIVE)
		return;
	t->live.switch_stalled = 1;
	snprintf(why, sizeof why, "the switchover did not finish within %d s "
	    "(%s)", LIVE_SWITCH_MS / 1000, t->live.completed ?
	    "the target never took over" : "the last pass is stuck");
	snprintf(t->live.why, sizeof t->live.why, "%s", why);
	log_warn("live migration: %s; asking the cluster to call it off", why);
	t->ops->report(t->arg, HAVEN__VM_PHASE__VM_PHASE_MIGRATING, 0, why, 0,
	    0);
}

/* The cluster called the move off. */
void
live_resume(struct transfer *t)
{
	/* The cluster has decided (a 'received' of the target is stale
	 * now): even a last pass on its way may be cancelled. */
	if (!t->live.completed) {
		snprintf(t->live.why, sizeof t->live.why, "called off by the "
		    "cluster");
		transfer_qmp(t, "migrate_cancel", NULL, -1, NULL, NULL);
		return;
	}
	/* Sent, but the target never took over: run it here again. Its
	 * QEMU announced the VM when the stream completed (QEMU 7.2 does
	 * that while paused): point the network back here. */
	transfer_qmp(t, "cont", NULL, -1, NULL, NULL);
	transfer_announce(t);
	live_ended(t, 0, "the target did not take over; running here again");
}
