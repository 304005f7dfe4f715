/*
 * Bootstrap (issue 17): the files a cluster host needs, the one-time join
 * tokens a member keeps, and the join service and its client. The service
 * is a child of `cluster init` or `cluster token` on a member, listening on
 * its management address while a token is less than JOIN_TTL_S old; a
 * joiner names its token's ID in clear, then both prove the token's secret
 * as the pre-shared key of a TLS 1.3 session (GnuTLS) over which the
 * joiner sends its name and links and gets the cluster: its corosync.conf
 * (with the joiner added, through havend's replicated state, which every
 * member writes and reloads), the authkey and the pool's CHAP file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "corosync.h"
#include "request.h"

#define JOIN_TLS_PRIORITY	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:" \
				"+ECDHE-PSK:+DHE-PSK"
#define JOIN_HELLO		"HAVEN-JOIN 1 "

const char *
join_path(const char *path)
{
	static char	 buf[4][512];
	static int	 n;
	const char	*root = getenv("HAVEN_ROOT");

	/* HAVEN_ROOT: a tree instead of /, for tests of these files alone. */
	if (root == NULL || *root == '\0')
		return path;
	n = (n + 1) % 4;
	snprintf(buf[n], sizeof buf[n], "%s%s", root, path);
	return buf[n];
}

/* ------------------------------------------------------------ files ---- */

/* The whole file, NUL-terminated, in *text (caller frees); -1 with errno. */
int
join_read_file(const char *path, char **text, size_t *len)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(join_path(path), "re")) == NULL)
		return -1;
	buf = xmalloc(JOIN_MSG_MAX + 1);
	n = fread(buf, 1, JOIN_MSG_MAX, f);
	fclose(f);
	buf[n] = '\0';
	*text = buf;
	if (len != NULL)
		*len = n;
	return 0;
}

/* Written whole under a temporary name, then renamed, with mode. */
int
join_write_file(const char *path, const void *data, size_t len,
    unsigned mode)
{
	char	 tmp[600];
	int	 fd, rc = -1;

	snprintf(tmp, sizeof tmp, "%s.haven-new", join_path(path));
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) == -1)
		return -1;
	if (fchmod(fd, (mode_t)mode) == 0 && write(fd, data, len) == (ssize_t)len &&
	    fsync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0 && rename(tmp, join_path(path)) == -1)
		rc = -1;
	if (rc == -1)
		unlink(tmp);
	return rc;
}

/* corosync.conf rendered into a string (caller frees); NULL and err. */
char *
join_conf_text(const struct corosync_conf *c, char *err, size_t errlen)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*f;

	if ((f = open_memstream(&text, &len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (corosync_conf_write(f, c, err, errlen) == -1) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	return text;
}

/* ADDR[,ADDR2] into addr and addr2 (NULL when one). */
int
join_parse_links(const char *arg, char buf[2][46], const char **addr,
    const char **addr2)
{
	struct in_addr	 a;
	const char	*comma = strchr(arg, ',');
	size_t		 n = comma != NULL ? (size_t)(comma - arg) : strlen(arg);

	if (n >= sizeof buf[0] || (comma != NULL && strlen(comma + 1) >=
	    sizeof buf[1]))
		return -1;
	memcpy(buf[0], arg, n);
	buf[0][n] = '\0';
	*addr = buf[0];
	*addr2 = NULL;
	if (inet_pton(AF_INET, buf[0], &a) != 1)
		return -1;
	if (comma != NULL) {
		snprintf(buf[1], sizeof buf[1], "%s", comma + 1);
		if (inet_pton(AF_INET, buf[1], &a) != 1 ||
		    strcmp(buf[0], buf[1]) == 0)
			return -1;
		*addr2 = buf[1];
	}
	return 0;
}

/* ----------------------------------------------------------- tokens ---- */

/*
 * The member's tokens, JOIN_TOKENS: lines "ID SECRET CREATED used|open",
 * 0600, read and rewritten under flock. A token older than JOIN_TTL_S is
 * expired; lines older than that go at the next rewrite.
 */
struct join_entry {
	char		 id[JOIN_ID_HEX + 1];
	char		 secret[2 * JOIN_SECRET + 1];
	long long	 created;
	int		 used;
};
#define JOIN_MAX_ENTRIES	256

static int
join_store_lock(void)
{
	int	 fd;

	if ((fd = open(join_path(JOIN_TOKENS), O_RDWR | O_CREAT | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (flock(fd, LOCK_EX) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static size_t
join_store_read(int fd, struct join_entry *e)
{
	char	 line[256], used[8];
	FILE	*f;
	size_t	 n = 0;
	int	 dup;

	if ((dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return 0;
	lseek(dup, 0, SEEK_SET);
	if ((f = fdopen(dup, "r")) == NULL) {
		close(dup);
		return 0;
	}
	while (n < JOIN_MAX_ENTRIES && fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "%16s %64s %lld %7s", e[n].id, e[n].secret,
		    &e[n].created, used) == 4) {
			e[n].used = strcmp(used, "used") == 0;
			n++;
		}
	}
	explicit_bzero(line, sizeof line);
	fclose(f);
	return n;
}

static int
join_store_write(int fd, const struct join_entry *e, size_t n)
{
	long long	 now = (long long)time(NULL);
	char		 line[256];
	size_t		 i;
	int		 len;

	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (now - e[i].created > JOIN_TTL_S)
			continue;
		len = snprintf(line, sizeof line, "%s %s %lld %s\n", e[i].id,
		    e[i].secret, e[i].created, e[i].used ? "used" : "open");
		if (write(fd, line, (size_t)len) != len)
			return -1;
	}
	explicit_bzero(line, sizeof line);
	return fsync(fd);
}

/* A new token for the join service at addr:port, kept; -1 with errno. */
int
join_token_new(const char *addr, uint16_t port, struct join_token *t)
{
	struct join_entry	*e;
	uint8_t			 id[JOIN_ID_HEX / 2];
	size_t			 n, i;
	int			 fd, rc = -1;

	memset(t, 0, sizeof *t);
	if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id ||
	    getrandom(t->secret, sizeof t->secret, 0) !=
	    (ssize_t)sizeof t->secret)
		return -1;
	for (i = 0; i < sizeof id; i++)
		snprintf(t->id + 2 * i, 3, "%02x", id[i]);
	snprintf(t->addr, sizeof t->addr, "%s", addr);
	t->port = port;
	if ((fd = join_store_lock()) == -1)
		return -1;
	e = xcalloc(JOIN_MAX_ENTRIES + 1, sizeof *e);
	n = join_store_read(fd, e);
	if (n == JOIN_MAX_ENTRIES) {
		errno = ENOSPC;
		goto out;
	}
	memcpy(e[n].id, t->id, sizeof e[n].id);
	for (i = 0; i < JOIN_SECRET; i++)
		snprintf(e[n].secret + 2 * i, 3, "%02x", t->secret[i]);
	e[n].created = (long long)time(NULL);
	e[n].used = 0;
	rc = join_store_write(fd, e, n + 1);
out:
	explicit_bzero(e, (JOIN_MAX_ENTRIES + 1) * sizeof *e);
	free(e);
	close(fd);
	return rc;
}

enum join_state { JOIN_UNKNOWN, JOIN_OPEN, JOIN_USED, JOIN_EXPIRED };

/* What the store says of token id; its secret when open. With mark_used,
 * an open token becomes used. live: how many tokens are not expired. */
static enum join_state
join_store_find(const char *id, uint8_t secret[JOIN_SECRET], int mark_used,
    size_t *live)
{
	struct join_entry	*e;
	enum join_state		 st = JOIN_UNKNOWN;
	long long		 now = (long long)time(NULL);
	size_t			 n, i, j;
	int			 fd;

	if (live != NULL)
		*live = 0;
	if ((fd = join_store_lock()) == -1)
		return JOIN_UNKNOWN;
	e = xcalloc(JOIN_MAX_ENTRIES, sizeof *e);
	n = join_store_read(fd, e);
	for (i = 0; i < n; i++) {
		if (live != NULL && now - e[i].created <= JOIN_TTL_S)
			(*live)++;
		if (id == NULL || strcmp(e[i].id, id) != 0)
			continue;
		if (now - e[i].created > JOIN_TTL_S)
			st = JOIN_EXPIRED;
		else if (e[i].used)
			st = JOIN_USED;
		else {
			st = JOIN_OPEN;
			for (j = 0; secret != NULL && j < JOIN_SECRET; j++)
				secret[j] = (uint8_t)(hex_digit(
				    e[i].secret[2 * j]) << 4 |
				    hex_digit(e[i].secret[2 * j + 1]));
			if (mark_used) {
				e[i].used = 1;
				if (join_store_write(fd, e, n) == -1)
					st = JOIN_UNKNOWN;
			}
		}
	}
	explicit_bzero(e, JOIN_MAX_ENTRIES * sizeof *e);
	free(e);
	close(fd);
	return st;
}

/* ---------------------------------------------------- wire, both ends ---- */

static int
join_send_all(gnutls_session_t s, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = gnutls_record_send(s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
join_recv_all(gnutls_session_t s, void *buf, size_t len)
{
	char	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		n = gnutls_record_recv(s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One message: a 4-byte big-endian length, then join_msg_format's text. */
static int
join_send_msg(gnutls_session_t s, const struct join_msg *m)
{
	uint8_t	 hdr[4];
	size_t	 len;
	char	*text = join_msg_format(m, &len);
	int	 rc;

	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	rc = join_send_all(s, hdr, 4) == 0 && join_send_all(s, text, len) == 0 ?
	    0 : -1;
	explicit_bzero(text, len);
	free(text);
	return rc;
}

static int
join_recv_msg(gnutls_session_t s, struct join_msg *m, char *err,
    size_t errlen)
{
	uint8_t	 hdr[4];
	size_t	 len;
	char	*buf;
	int	 rc;

	if (join_recv_all(s, hdr, 4) == -1) {
		snprintf(err, errlen, "the connection closed");
		return -1;
	}
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
	    (size_t)hdr[2] << 8 | hdr[3];
	if (len > JOIN_MSG_MAX) {
		snprintf(err, errlen, "a message over %u bytes", JOIN_MSG_MAX);
		return -1;
	}
	buf = xmalloc(len + 1);
	if (join_recv_all(s, buf, len) == -1) {
		free(buf);
		snprintf(err, errlen, "the connection closed");
		return -1;
	}
	rc = join_msg_parse(buf, len, m, err, errlen);
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* A line of at most len - 1 bytes, without its newline, from a socket. */
static int
join_read_line(int fd, char *line, size_t len)
{
	size_t	 n = 0;
	char	 c;

	while (n + 1 < len) {
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n') {
			line[n] = '\0';
			return 0;
		}
		line[n++] = c;
	}
	return -1;
}

static void
join_timeouts(int fd)
{
	struct timeval	 tv = { JOIN_IO_TIMEOUT_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ---------------------------------------------------------- service ---- */

/* The secret of the one connection the service handles at a time. */
static uint8_t	 join_service_secret[JOIN_SECRET];
static char	 join_service_id[JOIN_ID_HEX + 1];

static int
join_service_psk(gnutls_session_t s, const char *username,
    gnutls_datum_t *key)
{
	(void)s;
	if (strcmp(username, join_service_id) != 0)
		return -1;
	if ((key->data = gnutls_malloc(JOIN_SECRET)) == NULL)
		return -1;
	memcpy(key->data, join_service_secret, JOIN_SECRET);
	key->size = JOIN_SECRET;
	return 0;
}

static void
join_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
join_log(const char *fmt, ...)
{
	va_list		 ap;
	char		 when[32];
	time_t		 now = time(NULL);
	struct tm	 tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s join: ", when);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/*
 * The cluster with the joiner added: the new corosync.conf in the state
 * (every member writes it and reloads), the joiner's node id in *id.
 * -1 with a sentence for the joiner in err.
 */
static char *
join_admit(struct cli *cli, const char *name, const char *links,
    unsigned *id, char *err, size_t errlen)
{
	Haven__SettingsSet	 req = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	 s = HAVEN__CLUSTER_SETTINGS__INIT;
	struct corosync_parsed	*p = xcalloc(1, sizeof *p);
	struct corosync_node	*node;
	ProtobufCMessage	*reply;
	char			 addrs[2][46], *conf = NULL, *text = NULL;
	char			*fields[1] = { "corosync_conf" };
	size_t			 i;
	int			 code;

	if (join_read_file(COROSYNC_CONF, &conf, NULL) == -1) {
		snprintf(err, errlen, "the member cannot read its %s: %s",
		    COROSYNC_CONF, strerror(errno));
		goto out;
	}
	if (corosync_conf_parse(conf, p, err, errlen) == -1)
		goto out;
	if (p->conf.nnodes == COROSYNC_MAX_NODES) {
		snprintf(err, errlen, "the cluster has %d hosts already",
		    COROSYNC_MAX_NODES);
		goto out;
	}
	node = &p->nodes[p->conf.nnodes];
	if (join_parse_links(links, addrs, &node->addr, &node->addr2) == -1) {
		snprintf(err, errlen, "bad links: ADDR[,ADDR2], IPv4");
		goto out;
	}
	node->name = name;
	*id = 0;
	for (i = 0; i < p->conf.nnodes; i++) {
		if (strcmp(p->nodes[i].name, name) == 0) {
			snprintf(err, errlen, "the cluster has a host named %s "
			    "already (node %u); 'havenctl node remove %s' "
			    "first, or give another --name", name,
			    p->nodes[i].id, name);
			goto out;
		}
		if (p->nodes[i].id > *id)
			*id = p->nodes[i].id;
	}
	node->id = ++*id;
	p->conf.nnodes++;
	if ((text = join_conf_text(&p->conf, err, errlen)) == NULL)
		goto out;
	s.corosync_conf = text;
	req.settings = &s;
	req.fields = fields;
	req.n_fields = 1;
	if ((reply = client_call(cli, FRAME_SETTINGS_SET, &req.base,
	    FRAME_OK_REPLY, &code)) == NULL) {
		snprintf(err, errlen, "the member's havend did not take the new "
		    "host into the cluster (its %s says why)", JOIN_LOG);
		free(text);
		text = NULL;
		goto out;
	}
	message_free(reply);
out:
	free(conf);
	free(p);
	return text;
}

static void
join_service_handle(struct cli *cli, int fd)
{
	gnutls_psk_server_credentials_t	 cred = NULL;
	gnutls_session_t		 s = NULL;
	struct join_msg			 req, reply;
	enum join_state			 st;
	char				 line[128], err[512], num[16];
	char				*conf = NULL, *file;
	const char			*why;
	unsigned			 id;
	size_t				 len;
	int				 r;

	memset(&req, 0, sizeof req);
	memset(&reply, 0, sizeof reply);
	join_timeouts(fd);
	if (join_read_line(fd, line, sizeof line) == -1 ||
	    strncmp(line, JOIN_HELLO, strlen(JOIN_HELLO)) != 0 ||
	    strlen(line + strlen(JOIN_HELLO)) != JOIN_ID_HEX) {
		join_log("a connection without a join hello: closed");
		return;
	}
	snprintf(join_service_id, sizeof join_service_id, "%s",
	    line + strlen(JOIN_HELLO));
	st = join_store_find(join_service_id, join_service_secret, 0, NULL);
	why = st == JOIN_USED ? "used" : st == JOIN_EXPIRED ? "expired" :
	    st == JOIN_UNKNOWN ? "unknown" : NULL;
	if (why != NULL) {
		join_log("token %.4s...: refused, %s", join_service_id, why);
		dprintf(fd, "ERR %s\n", why);
		return;
	}
	if (dprintf(fd, "OK\n") < 0)
		return;
	if (gnutls_psk_allocate_server_credentials(&cred) < 0 ||
	    gnutls_init(&s, GNUTLS_SERVER) < 0)
		goto out;
	gnutls_psk_set_server_credentials_function(cred, join_service_psk);
	if (gnutls_priority_set_direct(s, JOIN_TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_PSK, cred) < 0)
		goto out;
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, JOIN_IO_TIMEOUT_S * 1000);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		join_log("token %.4s...: the TLS handshake failed (a wrong "
		    "secret?): %s", join_service_id, gnutls_strerror(r));
		goto out;
	}
	if (join_recv_msg(s, &req, err, sizeof err) == -1) {
		join_log("token %.4s...: a bad request: %s", join_service_id,
		    err);
		goto out;
	}
	if (req.value[JOIN_NAME] == NULL || req.value[JOIN_LINKS] == NULL ||
	    req.len[JOIN_NAME] != strlen(req.value[JOIN_NAME]) ||
	    req.len[JOIN_LINKS] != strlen(req.value[JOIN_LINKS])) {
		why = "the request needs a host name and its links";
		join_msg_set(&reply, JOIN_ERROR, why, strlen(why));
		join_send_msg(s, &reply);
		goto out;
	}
	/* Taken before the cluster changes: a second joiner with the same
	 * token finds it used, even if this join then fails. */
	if (join_store_find(join_service_id, NULL, 1, NULL) != JOIN_OPEN) {
		why = "the token was used meanwhile";
		join_msg_set(&reply, JOIN_ERROR, why, strlen(why));
		join_send_msg(s, &reply);
		goto out;
	}
	if ((conf = join_admit(cli, req.value[JOIN_NAME],
	    req.value[JOIN_LINKS], &id, err, sizeof err)) == NULL) {
		join_log("token %.4s...: %s not admitted: %s", join_service_id,
		    req.value[JOIN_NAME], err);
		join_msg_set(&reply, JOIN_ERROR, err, strlen(err));
		join_send_msg(s, &reply);
		goto out;
	}
	join_msg_set(&reply, JOIN_COROSYNC_CONF, conf, strlen(conf));
	snprintf(num, sizeof num, "%u", id);
	join_msg_set(&reply, JOIN_NODE_ID, num, strlen(num));
	if (join_read_file(COROSYNC_AUTHKEY, &file, &len) == 0) {
		join_msg_set(&reply, JOIN_AUTHKEY, file, len);
		explicit_bzero(file, len);
		free(file);
	}
	if (join_read_file(HAVEN_CHAP, &file, &len) == 0) {
		join_msg_set(&reply, JOIN_CHAP, file, len);
		explicit_bzero(file, len);
		free(file);
	}
	if (join_send_msg(s, &reply) == 0)
		join_log("token %.4s...: %s joined as node %u",
		    join_service_id, req.value[JOIN_NAME], id);
	gnutls_bye(s, GNUTLS_SHUT_WR);
out:
	free(conf);
	join_msg_clear(&req);
	join_msg_clear(&reply);
	explicit_bzero(join_service_secret, sizeof join_service_secret);
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_psk_free_server_credentials(cred);
}

/* The child's loop: one connection at a time, until no token is live. */
static void
join_service_loop(struct cli *cli, int lfd)
{
	struct pollfd	 pfd = { .fd = lfd, .events = POLLIN };
	size_t		 live;
	int		 fd;

	join_log("listening (pid %ld)", (long)getpid());
	for (;;) {
		join_store_find(NULL, NULL, 0, &live);
		if (live == 0)
			break;
		if (poll(&pfd, 1, 5000) <= 0)
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		join_service_handle(cli, fd);
		close(fd);
	}
	join_log("no token is live: stopped");
}

int
join_service_start(struct cli *cli, const char *addr, uint16_t port)
{
	struct sockaddr_in	 sin;
	pid_t			 pid;
	int			 lfd, one = 1, log;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -1;
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		close(lfd);
		if (errno == EADDRINUSE)
			return 0;	/* it runs already: it reads the store */
		cli_error(cli, "cannot listen on %s:%u for joins: %s", addr,
		    port, strerror(errno));
		return -1;
	}
	if (listen(lfd, 8) == -1) {
		close(lfd);
		return -1;
	}
	if ((pid = fork()) == -1) {
		close(lfd);
		return -1;
	}
	if (pid > 0) {
		close(lfd);
		return 0;
	}
	setsid();
	signal(SIGPIPE, SIG_IGN);
	mkdir(join_path("/var/log/haven"), 0750);
	if ((log = open(join_path(JOIN_LOG), O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0640)) == -1)
		log = open("/dev/null", O_WRONLY);
	dup2(log, 2);
	if ((one = open("/dev/null", O_RDWR)) != -1) {
		dup2(one, 0);
		dup2(one, 1);
	}
	cli->quiet = 1;
	join_service_loop(cli, lfd);
	_exit(0);
}

/* ----------------------------------------------------------- joiner ---- */

int
join_fetch(struct cli *cli, const struct join_token *t, const char *name,
    const char *links, struct join_msg *reply)
{
	gnutls_psk_client_credentials_t	 cred = NULL;
	gnutls_session_t		 s = NULL;
	gnutls_datum_t			 key;
	struct sockaddr_in		 sin;
	struct join_msg			 req;
	char				 line[128], err[256];
	int				 fd, r, rc = -1;

	memset(&req, 0, sizeof req);
	memset(reply, 0, sizeof *reply);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(t->port);
	inet_pton(AF_INET, t->addr, &sin.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	join_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		cli_error(cli, "no join service answers at %s:%u (%s): the "
		    "token expired or the member restarted; print a new one "
		    "with 'havenctl cluster token' on a member", t->addr,
		    t->port, strerror(errno));
		goto out;
	}
	if (dprintf(fd, "%s%s\n", JOIN_HELLO, t->id) < 0 ||
	    join_read_line(fd, line, sizeof line) == -1) {
		cli_error(cli, "the join service at %s:%u did not answer",
		    t->addr, t->port);
		goto out;
	}
	if (strcmp(line, "OK") != 0) {
		cli_error(cli, "the join token is refused by %s:%u: %s; print "
		    "a new one with 'havenctl cluster token' on a member "
		    "(a token admits one host, for %d minutes)", t->addr,
		    t->port, strcmp(line, "ERR used") == 0 ? "it was used "
		    "already" : strcmp(line, "ERR expired") == 0 ? "it "
		    "expired" : "it is not one of its tokens", JOIN_TTL_S / 60);
		goto out;
	}
	key.data = (unsigned char *)t->secret;
	key.size = JOIN_SECRET;
	if (gnutls_psk_allocate_client_credentials(&cred) < 0 ||
	    gnutls_psk_set_client_credentials(cred, t->id, &key,
	    GNUTLS_PSK_KEY_RAW) < 0 || gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(s, JOIN_TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_PSK, cred) < 0) {
		cli_error(cli, "cannot set up TLS for the join");
		goto out;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, JOIN_IO_TIMEOUT_S * 1000);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		cli_error(cli, "the join token is refused by %s:%u: its secret "
		    "does not match (TLS: %s); copy the whole token again",
		    t->addr, t->port, gnutls_strerror(r));
		goto out;
	}
	join_msg_set(&req, JOIN_NAME, name, strlen(name));
	join_msg_set(&req, JOIN_LINKS, links, strlen(links));
	if (join_send_msg(s, &req) == -1 ||
	    join_recv_msg(s, reply, err, sizeof err) == -1) {
		cli_error(cli, "the join with %s:%u failed: %s", t->addr,
		    t->port, err);
		goto out;
	}
	if (reply->value[JOIN_ERROR] != NULL) {
		cli_error(cli, "%s:%u refused the join: %.300s", t->addr,
		    t->port, reply->value[JOIN_ERROR]);
		join_msg_clear(reply);
		goto out;
	}
	if (reply->value[JOIN_COROSYNC_CONF] == NULL ||
	    reply->value[JOIN_AUTHKEY] == NULL ||
	    reply->value[JOIN_NODE_ID] == NULL) {
		cli_error(cli, "%s:%u sent an incomplete answer (no "
		    "corosync.conf, authkey or node id)", t->addr, t->port);
		join_msg_clear(reply);
		goto out;
	}
	gnutls_bye(s, GNUTLS_SHUT_RDWR);
	rc = 0;
out:
	join_msg_clear(&req);
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_psk_free_client_credentials(cred);
	close(fd);
	return rc;
}
