/*
 * The status page's login (issue 18): a token is "KIND.UID.ROLE.EXPIRY.MAC",
 * the MAC an HMAC-SHA256 of the rest under a random key kept in havend's
 * state directory (status.key, 0600). havenctl status login gets a
 * short-lived login token (kind l) over the control socket for a user with
 * at least the viewer role; the page's /login trades it for a session
 * token (kind s) in a cookie. Tokens are parsed strictly and their MAC
 * compared in constant time: they come from whoever reaches the listener.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "clusterd.h"

static void
status_token_mac(const uint8_t key[STATUS_KEY_BYTES], const char *msg,
    size_t len, char hex[2 * SHA256_SIZE + 1])
{
	uint8_t	mac[SHA256_SIZE];
	size_t	i;

	sha256_hmac(key, STATUS_KEY_BYTES, (const uint8_t *)msg, len, mac);
	for (i = 0; i < SHA256_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

int
status_token_make(const uint8_t key[STATUS_KEY_BYTES],
    const struct status_token *t, char *out, size_t len)
{
	char	hex[2 * SHA256_SIZE + 1];
	int	n;

	if ((t->kind != STATUS_TOKEN_LOGIN && t->kind != STATUS_TOKEN_SESSION) ||
	    t->role < ROLE_VIEWER || t->role > ROLE_ADMIN)
		return -1;
	n = snprintf(out, len, "%c.%" PRIu32 ".%s.%" PRIu64, t->kind, t->uid,
	    roles_name(t->role), t->expiry_s);
	if (n < 0 || (size_t)n + 1 + sizeof hex > len)
		return -1;
	status_token_mac(key, out, (size_t)n, hex);
	snprintf(out + n, len - (size_t)n, ".%s", hex);
	return 0;
}

/* A decimal number of at most maxdigits digits, up to the next '.'. */
static const char *
status_token_number(const char *p, size_t maxdigits, uint64_t *v)
{
	size_t	n = 0;

	*v = 0;
	if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++, n++) {
		if (n == maxdigits)
			return NULL;
		*v = *v * 10 + (uint64_t)(*p - '0');
	}
	return *p == '.' ? p + 1 : NULL;
}

enum status_token_result
status_token_check(const uint8_t key[STATUS_KEY_BYTES], const char *s,
    size_t len, char kind, uint64_t now_s, struct status_token *t)
{
	char		 text[STATUS_TOKEN_MAX + 1], hex[2 * SHA256_SIZE + 1];
	const char	*p, *dot;
	uint64_t	 v;
	size_t		 i, signed_len;
	unsigned char	 diff = 0;
	char		 role[16];

	memset(t, 0, sizeof *t);
	if (len == 0 || len > STATUS_TOKEN_MAX || memchr(s, '\0', len) != NULL)
		return STATUS_TOKEN_MALFORMED;
	memcpy(text, s, len);
	text[len] = '\0';
	if ((text[0] != STATUS_TOKEN_LOGIN && text[0] != STATUS_TOKEN_SESSION) ||
	    text[1] != '.')
		return STATUS_TOKEN_MALFORMED;
	t->kind = text[0];
	if ((p = status_token_number(text + 2, 10, &v)) == NULL ||
	    v > UINT32_MAX)
		return STATUS_TOKEN_MALFORMED;
	t->uid = (uint32_t)v;
	if ((dot = strchr(p, '.')) == NULL || (size_t)(dot - p) >= sizeof role)
		return STATUS_TOKEN_MALFORMED;
	memcpy(role, p, (size_t)(dot - p));
	role[dot - p] = '\0';
	if (roles_parse(role, &t->role) == -1)
		return STATUS_TOKEN_MALFORMED;
	if ((p = status_token_number(dot + 1, 19, &t->expiry_s)) == NULL)
		return STATUS_TOKEN_MALFORMED;
	signed_len = (size_t)(p - 1 - text);
	if (strlen(p) != 2 * SHA256_SIZE)
		return STATUS_TOKEN_MALFORMED;
	for (i = 0; i < 2 * SHA256_SIZE; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' &&
		    p[i] <= 'f')))
			return STATUS_TOKEN_MALFORMED;
	/* Constant time: the MAC's bytes all compared whatever differs. */
	status_token_mac(key, text, signed_len, hex);
	for (i = 0; i < 2 * SHA256_SIZE; i++)
		diff |= (unsigned char)(hex[i] ^ p[i]);
	explicit_bzero(hex, sizeof hex);
	if (diff != 0)
		return STATUS_TOKEN_BAD_MAC;
	if (t->kind != kind)
		return STATUS_TOKEN_WRONG_KIND;
	if (now_s >= t->expiry_s)
		return STATUS_TOKEN_EXPIRED;
	return STATUS_TOKEN_OK;
}

const char *
status_token_strerror(enum status_token_result r)
{
	switch (r) {
	case STATUS_TOKEN_OK:
		return "valid";
	case STATUS_TOKEN_MALFORMED:
		return "not a status token";
	case STATUS_TOKEN_BAD_MAC:
		return "not signed by this host (or altered)";
	case STATUS_TOKEN_WRONG_KIND:
		return "a login code where a session is expected, or the "
		    "reverse";
	case STATUS_TOKEN_EXPIRED:
		return "expired";
	}
	return "?";
}

/*
 * The session cookie's value in a Cookie header ("a=b; haven_status=V"),
 * its length in *len; NULL if there is none.
 */
const char *
status_token_cookie(const char *header, size_t *len)
{
	const char	*p = header;
	size_t		 name = strlen(STATUS_COOKIE);

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, STATUS_COOKIE, name) == 0 && p[name] == '=') {
			p += name + 1;
			*len = strcspn(p, "; \t");
			return p;
		}
		if ((p = strchr(p, ';')) != NULL)
			p++;
	}
	return NULL;
}

/*
 * The key: read from path, or made (random) and written there 0600 when
 * there is none. A key file of another size, or readable by others, is
 * refused with a sentence: the tokens' worth is the key's secrecy.
 */
int
status_token_key(const char *path, uint8_t key[STATUS_KEY_BYTES], char *err,
    size_t errlen)
{
	struct stat	st;
	ssize_t		n;
	int		fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		if (fstat(fd, &st) == -1 || (st.st_mode & 077) != 0 ||
		    st.st_size != STATUS_KEY_BYTES ||
		    read(fd, key, STATUS_KEY_BYTES) != STATUS_KEY_BYTES) {
			snprintf(err, errlen, "%s: not a %d-byte file readable "
			    "by root alone; remove it (havend makes a new one, "
			    "and every status page login ends)", path,
			    STATUS_KEY_BYTES);
			close(fd);
			return -1;
		}
		close(fd);
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (getrandom(key, STATUS_KEY_BYTES, 0) != STATUS_KEY_BYTES) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1 || (n = write(fd, key, STATUS_KEY_BYTES)) != STATUS_KEY_BYTES ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	close(fd);
	return 0;
}
