/*
 * The host's CHAP accounts, one per pool: a root-only file (haven.conf's
 * [storage] chap_file) of "TARGET USER SECRET" lines, TARGET the pool's
 * iSCSI target name. Parsed here, held in memory only, and installed once
 * per process so that every login iscsi.c makes to a pool uses its account.
 * Secrets never reach a message: errors name the line, never its text.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "storage.h"

struct chap_account {
	char	 target[CHAP_TARGET_MAX];
	char	 user[CHAP_FIELD_MAX];
	char	 secret[CHAP_FIELD_MAX];
};

struct chap {
	size_t			 n;
	struct chap_account	 accounts[CHAP_MAX_ACCOUNTS];
};

static struct chap	*chap_current;

/* iqn.*, eui.* or naa.*, printable, no blanks (RFC 3720 §3.2.6). */
static int
chap_target_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len < 5 || len >= CHAP_TARGET_MAX || (strncmp(s, "iqn.", 4) != 0 &&
	    strncmp(s, "eui.", 4) != 0 && strncmp(s, "naa.", 4) != 0))
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int
chap_field_valid(const char *s, size_t len, size_t min)
{
	size_t	 i;

	if (len < min || len >= CHAP_FIELD_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* The next blank-separated field of [*s, end): its start and length. */
static const char *
chap_field(const char **s, const char *end, size_t *len)
{
	const char	*start;

	while (*s < end && (**s == ' ' || **s == '\t'))
		(*s)++;
	start = *s;
	while (*s < end && **s != ' ' && **s != '\t')
		(*s)++;
	*len = (size_t)(*s - start);
	return *len > 0 ? start : NULL;
}

int
chap_parse(const char *text, size_t len, const char *name, struct chap **out,
    char *err, size_t errlen)
{
	struct chap		*c;
	struct chap_account	*a;
	const char		*line = text, *end = text + len, *nl, *s;
	const char		*f[4];
	size_t			 flen[4], i;
	unsigned		 lineno = 0;

	*out = NULL;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	for (; line < end; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		s = line;
		while (s < nl && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s == nl || *s == '#')
			continue;
		if (memchr(s, '\0', (size_t)(nl - s)) != NULL) {
			snprintf(err, errlen, "%s:%u: a NUL byte in the line",
			    name, lineno);
			goto fail;
		}
		{
			const char	*e = nl;

			while (e > s && e[-1] == '\r')
				e--;
			for (i = 0; i < 4; i++)
				f[i] = chap_field(&s, e, &flen[i]);
		}
		if (f[2] == NULL || f[3] != NULL) {
			snprintf(err, errlen, "%s:%u: expected 'TARGET USER "
			    "SECRET' (three fields)", name, lineno);
			goto fail;
		}
		if (!chap_target_valid(f[0], flen[0])) {
			snprintf(err, errlen, "%s:%u: the first field is not "
			    "an iSCSI target name (iqn., eui. or naa., at most "
			    "%d characters)", name, lineno, CHAP_TARGET_MAX - 1);
			goto fail;
		}
		if (!chap_field_valid(f[1], flen[1], 1)) {
			snprintf(err, errlen, "%s:%u: the user name is not 1 "
			    "to %d printable characters", name, lineno,
			    CHAP_FIELD_MAX - 1);
			goto fail;
		}
		if (!chap_field_valid(f[2], flen[2], CHAP_SECRET_MIN)) {
			snprintf(err, errlen, "%s:%u: the secret is not %d to "
			    "%d printable characters without blanks", name,
			    lineno, CHAP_SECRET_MIN, CHAP_FIELD_MAX - 1);
			goto fail;
		}
		for (i = 0; i < c->n; i++)
			if (strlen(c->accounts[i].target) == flen[0] &&
			    memcmp(c->accounts[i].target, f[0], flen[0]) == 0)
				break;
		if (i < c->n) {
			snprintf(err, errlen, "%s:%u: a second account for "
			    "the same target; keep one", name, lineno);
			goto fail;
		}
		if (c->n == CHAP_MAX_ACCOUNTS) {
			snprintf(err, errlen, "%s:%u: more than %d accounts",
			    name, lineno, CHAP_MAX_ACCOUNTS);
			goto fail;
		}
		a = &c->accounts[c->n++];
		memcpy(a->target, f[0], flen[0]);
		memcpy(a->user, f[1], flen[1]);
		memcpy(a->secret, f[2], flen[2]);
		if (nl == end)
			break;
	}
	*out = c;
	return 0;
fail:
	chap_free(c);
	return -1;
}

/* Read (a root-only secret file: secret_file_read) and parse a chap
 * file. */
int
chap_load(const char *path, struct chap **out, char *err, size_t errlen)
{
	uint8_t	*text;
	size_t	 len;
	int	 rc;

	*out = NULL;
	if (secret_file_read(path, CHAP_FILE_MAX, &text, &len, err,
	    errlen) == -1)
		return -1;
	rc = chap_parse((const char *)text, len, path, out, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

int
chap_find(const struct chap *c, const char *target, const char **user,
    const char **secret)
{
	size_t	 i;

	for (i = 0; c != NULL && i < c->n; i++)
		if (strcmp(c->accounts[i].target, target) == 0) {
			*user = c->accounts[i].user;
			*secret = c->accounts[i].secret;
			return 0;
		}
	return -1;
}

size_t
chap_count(const struct chap *c)
{
	return c != NULL ? c->n : 0;
}

void
chap_free(struct chap *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c, sizeof *c);
	free(c);
}

void
chap_install(struct chap *c)
{
	if (chap_current != c)
		chap_free(chap_current);
	chap_current = c;
}

const struct chap *
chap_installed(void)
{
	return chap_current;
}

/*
 * A process's SAN secrets at start: the chap file's accounts installed and
 * the key secret loaded (pr.c). A file at its default path that does not
 * exist means none; one named in haven.conf must be there. Nothing is
 * installed unless both load.
 */
int
chap_setup(const char *chap_file, int chap_required, const char *key_file,
    int key_required, char *err, size_t errlen)
{
	struct chap	*c = NULL;

	if ((chap_required || access(chap_file, F_OK) == 0) &&
	    chap_load(chap_file, &c, err, errlen) == -1)
		return -1;
	if ((key_required || access(key_file, F_OK) == 0) &&
	    pr_key_load(key_file, err, errlen) == -1) {
		chap_free(c);
		return -1;
	}
	if (c != NULL)
		chap_install(c);
	return 0;
}
