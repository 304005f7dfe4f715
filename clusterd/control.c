/*
 * The control socket (DESIGN §7): havenctl's requests as framed protobuf
 * messages on a UNIX socket. Each peer is identified by SO_PEERCRED, each
 * request authorised by role before its handler runs, and every mutating
 * request written to the audit log with who, what, when and the result.
 * Garbage, oversized frames and unknown types get an error, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "clusterd.h"
#include "common.h"
#include "proto.h"

#define CONTROL_MAX_FRAME	(256U * 1024)
/* Connections: at most this many in all, the last CONTROL_ROOT_RESERVE of
 * them for root only, and CONTROL_MAX_PER_UID for any other uid -- so one
 * account cannot hold every slot and root can always get in. */
#define CONTROL_MAX_CLIENTS	64
#define CONTROL_ROOT_RESERVE	8
#define CONTROL_MAX_PER_UID	16
/* Replies a client has not read: past this, it is hung up on. */
#define CONTROL_MAX_QUEUED	(4U << 20)
/* Changes whose client hung up before the answer, kept for their audit
 * line (who, what) until the cluster says how they ended. */
#define CONTROL_MAX_ORPHANS	64

struct control_client {
	struct control_server	*server;
	uint64_t		 id;		/* never reused: async replies */
	struct channel		*channel;
	struct identity		 who;
	char			 user[64];
	/* The mutating request being answered, for its audit line. */
	const struct control_route *audit_route;
	char			 audit_target[128];
	struct control_client	*next;
};

/* A mutating request still in flight when its client hung up. */
struct control_orphan {
	uint64_t			 id;	/* the client's; 0: free */
	struct identity			 who;
	char				 user[64];
	const struct control_route	*route;
	char				 target[128];
};

struct control_server {
	struct event_base		*base;
	int				 listen_fd;
	struct event			*accept_event;
	char				 path[108];
	const struct control_route	*routes;
	size_t				 nroutes;
	control_authorize_cb		 authorize;
	void				*arg;
	int				 audit_fd;
	struct control_client		*clients;
	size_t				 nclients;
	uint64_t			 next_id;
	struct control_orphan		 orphans[CONTROL_MAX_ORPHANS];
	size_t				 next_orphan;	/* round robin */
};

static void	control_client_free(struct control_client *);

static int
control_proc_groups(pid_t pid, struct identity *who)
{
	char		 path[64], line[1024], *p, *end;
	unsigned long	 g;
	FILE		*fp;
	int		 found = -1;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, fp) != NULL) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		who->ngroups = 0;
		for (p = line + 7; who->ngroups < CONTROL_MAX_GROUPS; p = end) {
			g = strtoul(p, &end, 10);
			if (end == p)
				break;
			who->groups[who->ngroups++] = (gid_t)g;
		}
		found = 0;
		break;
	}
	fclose(fp);
	return found;
}

static void
control_identity(struct control_client *c, int fd)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;
	struct passwd	 pw, *pwp = NULL;
	char		 buf[4096];
	gid_t		 groups[CONTROL_MAX_GROUPS];
	int		 n = CONTROL_MAX_GROUPS;

	memset(&c->who, 0, sizeof c->who);
	c->who.uid = (uid_t)-1;
	c->who.gid = (gid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return;
	c->who.uid = cred.uid;
	c->who.gid = cred.gid;
	c->who.pid = cred.pid;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &pwp) == 0 &&
	    pwp != NULL)
		snprintf(c->user, sizeof c->user, "%s", pw.pw_name);
	else
		snprintf(c->user, sizeof c->user, "uid %u", (unsigned)cred.uid);
	/* The groups the peer process really holds; the account database
	 * when /proc cannot tell (then the peer had gone already). */
	if (control_proc_groups(cred.pid, &c->who) == -1 && pwp != NULL &&
	    getgrouplist(pw.pw_name, cred.gid, groups, &n) >= 0) {
		c->who.ngroups = (size_t)n;
		memcpy(c->who.groups, groups, (size_t)n * sizeof(gid_t));
	}
}

/* One JSON line per mutating request: who, what, when, the result. */
static void
control_audit_write(struct control_server *s, const struct identity *who,
    const char *user, const struct control_route *r, const char *target,
    const char *result)
{
	struct json_object	*o;
	struct timespec		 ts;
	const char		*line;

	if (s->audit_fd == -1)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	o = json_object_new_object();
	json_object_object_add(o, "time_us", json_object_new_int64(
	    (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000));
	json_object_object_add(o, "uid", json_object_new_int64(who->uid));
	json_object_object_add(o, "user", json_object_new_string(user));
	json_object_object_add(o, "pid", json_object_new_int64(who->pid));
	json_object_object_add(o, "request",
	    json_object_new_string(message_type_name(r->type)));
	if (target != NULL && *target != '\0')
		json_object_object_add(o, "target",
		    json_object_new_string(target));
	json_object_object_add(o, "result", json_object_new_string(result));
	line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	/* One write per line, O_APPEND: lines never interleave. */
	if (dprintf(s->audit_fd, "%s\n", line) < 0)
		log_warn("audit log: %s", strerror(errno));
	json_object_put(o);
}

static void
control_audit(struct control_client *c, const struct control_route *r,
    const char *target, const char *result)
{
	control_audit_write(c->server, &c->who, c->user, r, target, result);
}

/* The client hangs up with a change in flight: keep who and what until
 * the cluster says how it ended (control_audit_late). A full table
 * writes its oldest entry out as undecided. */
static void
control_orphan_keep(struct control_client *c)
{
	struct control_server	*s = c->server;
	struct control_orphan	*o = &s->orphans[s->next_orphan];

	s->next_orphan = (s->next_orphan + 1) % CONTROL_MAX_ORPHANS;
	if (o->id != 0)
		control_audit_write(s, &o->who, o->user, o->route, o->target,
		    "client gone; the outcome came too late to be logged");
	o->id = c->id;
	o->who = c->who;
	snprintf(o->user, sizeof o->user, "%s", c->user);
	o->route = c->audit_route;
	snprintf(o->target, sizeof o->target, "%s", c->audit_target);
}

/*
 * A change whose client (client_id) has hung up has ended with result:
 * its audit line, written now. Nothing when the client was never a
 * mutating one in flight.
 */
void
control_audit_late(struct control_server *s, uint64_t client_id,
    const char *result)
{
	char	text[600];
	size_t	i;

	for (i = 0; i < CONTROL_MAX_ORPHANS; i++) {
		if (s->orphans[i].id != client_id || client_id == 0)
			continue;
		snprintf(text, sizeof text, "%s (the client had hung up)",
		    result);
		control_audit_write(s, &s->orphans[i].who, s->orphans[i].user,
		    s->orphans[i].route, s->orphans[i].target, text);
		s->orphans[i].id = 0;
		return;
	}
}

int
control_reply(struct control_client *c, uint16_t type,
    const ProtobufCMessage *m)
{
	if (c->audit_route != NULL) {
		control_audit(c, c->audit_route, c->audit_target, "ok");
		c->audit_route = NULL;
	}
	return channel_send_message(c->channel, type, m, NULL, 0);
}

/* A reply with descriptors beside it (the channel sends dups: the caller
 * keeps fds). */
int
control_reply_fds(struct control_client *c, uint16_t type,
    const ProtobufCMessage *m, const int *fds, size_t nfds)
{
	if (c->audit_route != NULL) {
		control_audit(c, c->audit_route, c->audit_target, "ok");
		c->audit_route = NULL;
	}
	return channel_send_message(c->channel, type, m, fds, nfds);
}

int
control_reply_error(struct control_client *c, int code, const char *fmt, ...)
{
	char	text[512], result[600];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (c->audit_route != NULL) {
		snprintf(result, sizeof result, "error: %s", text);
		control_audit(c, c->audit_route, c->audit_target, result);
		c->audit_route = NULL;
	}
	return channel_send_error(c->channel, (Haven__ErrorCode)code, "%s",
	    text);
}

const struct identity *
control_client_identity(const struct control_client *c)
{
	return &c->who;
}

/* A handler that answers later keeps the id, not the pointer: the client
 * may hang up meanwhile. */
uint64_t
control_client_id(const struct control_client *c)
{
	return c->id;
}

struct control_client *
control_client_find(struct control_server *s, uint64_t id)
{
	struct control_client	*c;

	for (c = s->clients; c != NULL; c = c->next) {
		if (c->id == id)
			return c;
	}
	return NULL;
}

static const struct control_route *
control_route_find(struct control_server *s, uint16_t type)
{
	size_t	i;

	for (i = 0; i < s->nroutes; i++) {
		if (s->routes[i].type == type)
			return &s->routes[i];
	}
	return NULL;
}

/* Last words to a peer whose stream we cannot parse any more. */
static void
control_goodbye(int fd, int err)
{
	Haven__Error	 e = HAVEN__ERROR__INIT;
	char		 text[160];
	uint8_t		*buf;
	size_t		 len;

	snprintf(text, sizeof text, "%s; closing the connection",
	    frame_strerror(err));
	e.code = HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
	e.message = text;
	if ((buf = message_pack(&e.base, &len)) == NULL)
		return;
	(void)frame_send(fd, FRAME_ERROR, buf, len, NULL, 0);
	free(buf);
}

static void
control_client_cb(struct channel *ch, struct frame *f, int err, void *arg)
{
	struct control_client		*c = arg;
	struct control_server		*s = c->server;
	const struct control_route	*r;
	ProtobufCMessage		*m;
	enum role			 granted = ROLE_NONE;
	const char			*target = NULL;
	char				 why[256];

	if (f == NULL) {
		if (err != 0)
			log_info("control: %s (%s): %s; closing", c->user,
			    "peer", frame_strerror(err));
		/* Tell a peer that sent garbage why, as far as we can. */
		if (err == EPROTO || err == EMSGSIZE)
			control_goodbye(channel_fd(ch), err);
		control_client_free(c);
		return;
	}
	if (channel_pending(ch) > CONTROL_MAX_QUEUED) {
		/* Asking without reading the answers: hang up. */
		log_warn("control: %s (pid %ld) leaves %zu bytes of replies "
		    "unread; closing", c->user, (long)c->who.pid,
		    channel_pending(ch));
		control_client_free(c);
		return;
	}
	if ((r = control_route_find(s, f->type)) == NULL) {
		channel_send_error(ch, HAVEN__ERROR_CODE__ERROR_CODE_UNKNOWN_TYPE,
		    "unknown request type %u (%s); is havenctl newer than "
		    "havend?", f->type, message_type_name(f->type));
		return;
	}
	if ((m = message_decode(f)) == NULL) {
		channel_send_error(ch, HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
		    "request %s does not decode", message_type_name(f->type));
		return;
	}
	if (r->target != NULL)
		target = r->target(m);
	if (!s->authorize(&c->who, r->class, target, &granted, s->arg)) {
		snprintf(why, sizeof why, "%s may not make %s requests%s%s "
		    "(role: %s); ask an admin for 'havenctl role grant'",
		    c->user, roles_class_name(r->class), target ? " on " : "",
		    target ? target : "", roles_name(granted));
		if (r->mutating)
			control_audit(c, r, target, "denied");
		channel_send_error(ch,
		    HAVEN__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED, "%s", why);
		message_free(m);
		return;
	}
	if (r->mutating) {
		c->audit_route = r;
		snprintf(c->audit_target, sizeof c->audit_target, "%s",
		    target ? target : "");
	}
	r->handler(c, m, s->arg);
	message_free(m);
}

/* Whether a new connection from who is one too many (logged). */
static int
control_over_limit(struct control_server *s, const struct identity *who)
{
	struct control_client	*c;
	size_t			 mine = 0;

	if (s->nclients >= CONTROL_MAX_CLIENTS) {
		log_warn("control: %zu clients already; refusing uid %u",
		    s->nclients, (unsigned)who->uid);
		return 1;
	}
	if (who->uid == 0)
		return 0;
	for (c = s->clients; c != NULL; c = c->next)
		mine += c->who.uid == who->uid;
	if (mine >= CONTROL_MAX_PER_UID || s->nclients >=
	    CONTROL_MAX_CLIENTS - CONTROL_ROOT_RESERVE) {
		log_warn("control: uid %u holds %zu of %zu connections; "
		    "refusing another (at most %d per uid, the last %d for "
		    "root)", (unsigned)who->uid, mine, s->nclients,
		    CONTROL_MAX_PER_UID, CONTROL_ROOT_RESERVE);
		return 1;
	}
	return 0;
}

static void
control_accept_cb(evutil_socket_t fd, short events, void *arg)
{
	struct control_server	*s = arg;
	struct control_client	*c;
	int			 cfd;

	if ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) ==
	    -1)
		return;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		close(cfd);
		return;
	}
	c->server = s;
	c->id = ++s->next_id;
	control_identity(c, cfd);
	if (control_over_limit(s, &c->who)) {
		close(cfd);
		free(c);
		return;
	}
	if ((c->channel = channel_new(s->base, cfd, CONTROL_MAX_FRAME,
	    control_client_cb, c)) == NULL) {
		close(cfd);
		free(c);
		return;
	}
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
}

static void
control_client_free(struct control_client *c)
{
	struct control_server	*s = c->server;
	struct control_client	**p;

	for (p = &s->clients; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	s->nclients--;
	if (c->audit_route != NULL)
		control_orphan_keep(c);
	channel_free(c->channel);
	free(c);
}

/*
 * Listen on path (mode 0666: who may do what is decided per request, by
 * role). An existing socket file is replaced only if nothing answers on
 * it. audit_path may be NULL.
 */
struct control_server *
control_new(struct event_base *base, const char *path,
    const struct control_route *routes, size_t nroutes,
    control_authorize_cb authorize, const char *audit_path, void *arg,
    int *error)
{
	struct control_server	*s;
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		*error = -ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*error = -errno;
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		close(fd);
		*error = -EADDRINUSE;	/* another havend answers there */
		return NULL;
	}
	close(fd);
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    chmod(path, 0666) == -1 || listen(fd, 16) == -1) {
		*error = -errno;
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if ((s = calloc(1, sizeof *s)) == NULL) {
		*error = -ENOMEM;
		close(fd);
		return NULL;
	}
	s->base = base;
	s->listen_fd = fd;
	snprintf(s->path, sizeof s->path, "%s", path);
	s->routes = routes;
	s->nroutes = nroutes;
	s->authorize = authorize;
	s->arg = arg;
	s->audit_fd = -1;
	if (audit_path != NULL && (s->audit_fd = open(audit_path, O_WRONLY |
	    O_CREAT | O_APPEND | O_CLOEXEC, 0600)) == -1) {
		*error = -errno;
		control_free(s);
		return NULL;
	}
	s->accept_event = event_new(base, fd, EV_READ | EV_PERSIST,
	    control_accept_cb, s);
	if (s->accept_event == NULL || event_add(s->accept_event, NULL) == -1) {
		*error = -ENOMEM;
		control_free(s);
		return NULL;
	}
	return s;
}

void
control_free(struct control_server *s)
{
	if (s == NULL)
		return;
	while (s->clients != NULL)
		control_client_free(s->clients);
	if (s->accept_event != NULL)
		event_free(s->accept_event);
	if (s->listen_fd != -1) {
		close(s->listen_fd);
		unlink(s->path);
	}
	if (s->audit_fd != -1)
		close(s->audit_fd);
	free(s);
}
