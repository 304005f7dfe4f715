/*
 * A live migration over TLS, the worker's side (DESIGN §6, §7): QEMU's
 * TLS migration with a pre-shared key. havend hands the move's key to the
 * worker (migrate/live_key.c); the worker writes it as keys.psk into its
 * run directory for QEMU's tls-creds-psk object, and blanks the file as
 * soon as QEMU has read it: the source's QEMU reads it when the object is
 * made, the target's (GnuTLS) at the handshake, so the target blanks it
 * once the stream is under way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"
#include "transfer_int.h"

#define LIVE_TLS_ID	"haven-live-tls"	/* QEMU's object */
#define LIVE_TLS_USER	"haven"			/* the PSK identity */
/* "haven:" 64 hex digits, newline: every key line has this length, so a
 * line of newlines blanks it with one pwrite (no ftruncate under the
 * seccomp filter). */
#define LIVE_TLS_LINE	(sizeof LIVE_TLS_USER + 2 * LIVE_KEY_SIZE + 1)

/*
 * RFC 7919's ffdhe2048 group as PKCS#3 parameters: public, fixed. Without
 * a dh-params.pem QEMU makes DH parameters when the target's credentials
 * object is made, 0.2-0.9 s on a lab host (measured); TLS 1.3 with a PSK
 * uses ECDHE anyway.
 */
static const char live_tls_dh_params[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
    "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
    "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
    "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
    "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
    "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/* A new file in dir, ours alone; an old one (another worker's, or
 * anything planted there) is removed first. */
static int
live_tls_create(const char *dir, const char *name, mode_t mode)
{
	char	path[300];

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
}

/*
 * Before the seccomp filter (no open after it): the key file, empty and
 * held open for the moves to come, and the DH parameters beside it, in the
 * run directory (the worker's, group QEMU's and setgid: QEMU, under a uid
 * of its own, reads both, 0640, and can write neither).
 */
int
live_tls_prepare(struct transfer *t, const char *run_dir)
{
	size_t	len = sizeof live_tls_dh_params - 1;
	int	fd;

	if (strlen(run_dir) >= sizeof t->live.tls_dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(t->live.tls_dir, sizeof t->live.tls_dir, "%s", run_dir);
	if ((fd = live_tls_create(run_dir, "dh-params.pem", 0640)) == -1)
		return -1;
	if (write(fd, live_tls_dh_params, len) != (ssize_t)len) {
		close(fd);
		errno = errno ? errno : EIO;
		return -1;
	}
	close(fd);
	if ((t->live.tls_fd = live_tls_create(run_dir, "keys.psk", 0640)) ==
	    -1)
		return -1;
	return 0;
}

/* The key out of the file (a line of newlines, which names nobody). */
void
live_tls_forget(struct transfer *t)
{
	char	blank[LIVE_TLS_LINE];

	if (t->live.tls_fd == -1 || !t->live.tls_written)
		return;
	memset(blank, '\n', sizeof blank);
	if (pwrite(t->live.tls_fd, blank, sizeof blank, 0) !=
	    (ssize_t)sizeof blank)
		log_warn("live migration: cannot blank keys.psk: %s",
		    strerror(errno));
	t->live.tls_written = 0;
}

/* At the worker's exit: blank, close and remove both files. */
void
live_tls_close(struct transfer *t)
{
	char	path[300];

	live_tls_forget(t);
	explicit_bzero(t->live.key, sizeof t->live.key);
	if (t->live.tls_fd == -1)
		return;
	close(t->live.tls_fd);
	t->live.tls_fd = -1;
	snprintf(path, sizeof path, "%s/keys.psk", t->live.tls_dir);
	(void)unlink(path);
	snprintf(path, sizeof path, "%s/dh-params.pem", t->live.tls_dir);
	(void)unlink(path);
}

/* The move's key from havend's command: 0, or -1 if it has none (the
 * stream then goes in clear) or a malformed one. */
int
live_tls_key(struct transfer *t, const Haven__WorkerCommand *cmd)
{
	t->live.keyed = 0;
	if (cmd->tls_key.len == 0)
		return 0;
	if (cmd->tls_key.len != LIVE_KEY_SIZE) {
		errno = EINVAL;
		return -1;
	}
	memcpy(t->live.key, cmd->tls_key.data, LIVE_KEY_SIZE);
	t->live.keyed = 1;
	return 0;
}

static void
live_tls_made(struct json_object *result, const char *class,
    const char *desc, void *arg)
{
	struct transfer	*t = arg;
	char		 why[256];

	/* The client read its key from the file when the object was made. */
	if (t->live.tls_server == 0)
		live_tls_forget(t);
	if (result != NULL)
		return;
	snprintf(why, sizeof why, "QEMU refused the migration's TLS "
	    "credentials (%s)", desc != NULL ? desc : class != NULL ? class :
	    "no reason");
	log_warn("live migration: %s", why);
	/* The target cannot receive; the source's migrate fails by itself
	 * (no credentials) and says why. */
	if (t->kind == TRANSFER_INCOMING)
		t->ops->fail(t->arg, -EIO, why);
}

/*
 * The key into keys.psk, QEMU's credentials object made from it, and the
 * migration pointed at the object (both sides: migrate-set-parameters
 * tls-creds before migrate or migrate-incoming). The key leaves our memory
 * here. 0, or -1 with errno if the file could not be written.
 */
int
live_tls_begin(struct transfer *t, int server)
{
	struct json_object	*params;
	char			 line[LIVE_TLS_LINE + 1];
	size_t			 i;

	if (!t->live.keyed)
		return 0;
	if (t->live.tls_fd == -1) {
		errno = EBADF;
		return -1;
	}
	memcpy(line, LIVE_TLS_USER ":", sizeof LIVE_TLS_USER);
	for (i = 0; i < LIVE_KEY_SIZE; i++)
		snprintf(line + sizeof LIVE_TLS_USER + 2 * i, 3, "%02x",
		    t->live.key[i]);
	line[LIVE_TLS_LINE - 1] = '\n';
	explicit_bzero(t->live.key, sizeof t->live.key);
	t->live.keyed = 0;
	t->live.tls_written = 1;
	if (pwrite(t->live.tls_fd, line, LIVE_TLS_LINE, 0) !=
	    (ssize_t)LIVE_TLS_LINE) {
		explicit_bzero(line, sizeof line);
		live_tls_forget(t);
		errno = errno ? errno : EIO;
		return -1;
	}
	explicit_bzero(line, sizeof line);
	t->live.tls_server = server;
	params = json_object_new_object();
	json_object_object_add(params, "qom-type",
	    json_object_new_string("tls-creds-psk"));
	json_object_object_add(params, "id",
	    json_object_new_string(LIVE_TLS_ID));
	json_object_object_add(params, "dir",
	    json_object_new_string(t->live.tls_dir));
	json_object_object_add(params, "endpoint",
	    json_object_new_string(server ? "server" : "client"));
	if (!server)
		json_object_object_add(params, "username",
		    json_object_new_string(LIVE_TLS_USER));
	transfer_qmp(t, "object-add", params, -1, live_tls_made, t);
	t->live.tls_object = 1;
	params = json_object_new_object();
	json_object_object_add(params, "tls-creds",
	    json_object_new_string(LIVE_TLS_ID));
	transfer_qmp(t, "migrate-set-parameters", params, -1, NULL, NULL);
	return 0;
}

/*
 * The move is over and this QEMU runs on (the source after a failure, the
 * target once the stream is in): no TLS for what comes next (a quick save
 * into a pipe must stay plain; parameters outlive a migration), and the
 * object gone so the next live migration can make its own.
 */
void
live_tls_end(struct transfer *t)
{
	struct json_object	*params;

	live_tls_forget(t);
	if (!t->live.tls_object)
		return;
	t->live.tls_object = 0;
	params = json_object_new_object();
	json_object_object_add(params, "tls-creds",
	    json_object_new_string(""));
	transfer_qmp(t, "migrate-set-parameters", params, -1, NULL, NULL);
	params = json_object_new_object();
	json_object_object_add(params, "id",
	    json_object_new_string(LIVE_TLS_ID));
	transfer_qmp(t, "object-del", params, -1, NULL, NULL);
}
