/*
 * The join token and the messages of the join protocol (havenctl cluster
 * init, token, join; cli/join.c has the protocol itself): what is parsed
 * from the network or the operator is parsed here, small and fuzzed
 * (tests/fuzz/join_fuzz.c). A message is lines "KEY HEX\n", each known key
 * at most once, every value hex-encoded (a corosync.conf, an authkey).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"

static const char *const join_key_names[JOIN_NKEYS] = {
	[JOIN_NAME] = "name",
	[JOIN_LINKS] = "links",
	[JOIN_CLUSTER] = "cluster",
	[JOIN_NODE_ID] = "node_id",
	[JOIN_COROSYNC_CONF] = "corosync_conf",
	[JOIN_AUTHKEY] = "authkey",
	[JOIN_CHAP] = "chap",
	[JOIN_ERROR] = "error",
};

/* A lowercase hex digit's value, else -1 (tokens have one spelling). */
static int
join_hex(char c)
{
	return c >= 'A' && c <= 'F' ? -1 : hex_digit(c);
}

static int
join_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

int
join_token_parse(const char *text, struct join_token *t)
{
	char		 buf[JOIN_TOKEN_MAX + 1], *f[5], *p, *end;
	struct in_addr	 a;
	unsigned long	 port;
	size_t		 i;

	memset(t, 0, sizeof *t);
	if (strlen(text) > JOIN_TOKEN_MAX)
		return -1;
	snprintf(buf, sizeof buf, "%s", text);
	p = buf;
	for (i = 0; i < 5; i++) {
		f[i] = p;
		if (i < 4) {
			if ((p = strchr(p, ':')) == NULL)
				return -1;
			*p++ = '\0';
		}
	}
	if (strcmp(f[0], "haven1") != 0 || inet_pton(AF_INET, f[1], &a) != 1)
		return -1;
	port = strtoul(f[2], &end, 10);
	if (*f[2] < '1' || *f[2] > '9' || *end != '\0' || port > 65535 ||
	    strspn(f[2], "0123456789") != strlen(f[2]))
		return -1;
	if (strlen(f[3]) != JOIN_ID_HEX || strlen(f[4]) != 2 * JOIN_SECRET)
		return -1;
	for (i = 0; i < JOIN_ID_HEX; i++)
		if (join_hex(f[3][i]) == -1)
			return -1;
	for (i = 0; i < JOIN_SECRET; i++) {
		int	 hi = join_hex(f[4][2 * i]), lo = join_hex(f[4][2 * i + 1]);

		if (hi == -1 || lo == -1)
			return -1;
		t->secret[i] = (uint8_t)(hi << 4 | lo);
	}
	snprintf(t->addr, sizeof t->addr, "%s", f[1]);
	t->port = (uint16_t)port;
	memcpy(t->id, f[3], JOIN_ID_HEX + 1);
	return 0;
}

void
join_token_format(const struct join_token *t, char *out, size_t len)
{
	char	 secret[2 * JOIN_SECRET + 1];
	size_t	 i;

	for (i = 0; i < JOIN_SECRET; i++)
		snprintf(secret + 2 * i, 3, "%02x", t->secret[i]);
	snprintf(out, len, "haven1:%s:%u:%s:%s", t->addr, t->port, t->id,
	    secret);
	explicit_bzero(secret, sizeof secret);
}

void
join_msg_clear(struct join_msg *m)
{
	size_t	 i;

	for (i = 0; i < JOIN_NKEYS; i++) {
		if (m->value[i] != NULL) {
			explicit_bzero(m->value[i], m->len[i]);
			free(m->value[i]);
		}
		m->value[i] = NULL;
		m->len[i] = 0;
	}
}

int
join_msg_set(struct join_msg *m, enum join_key k, const void *v, size_t len)
{
	if (m->value[k] != NULL) {
		explicit_bzero(m->value[k], m->len[k]);
		free(m->value[k]);
	}
	m->value[k] = xmalloc(len + 1);
	memcpy(m->value[k], v, len);
	m->value[k][len] = '\0';
	m->len[k] = len;
	return 0;
}

int
join_msg_parse(const char *buf, size_t len, struct join_msg *m, char *err,
    size_t errlen)
{
	const char	*p = buf, *end = buf + len, *nl, *sp;
	size_t		 k, klen, vlen, i;
	char		*v;

	memset(m, 0, sizeof *m);
	if (len > JOIN_MSG_MAX)
		return join_fail(err, errlen, "the message is too long");
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			join_msg_clear(m);
			return join_fail(err, errlen, "the message does not "
			    "end with a newline");
		}
		if ((sp = memchr(p, ' ', (size_t)(nl - p))) == NULL) {
			join_msg_clear(m);
			return join_fail(err, errlen, "a line without a value");
		}
		klen = (size_t)(sp - p);
		for (k = 0; k < JOIN_NKEYS; k++)
			if (strlen(join_key_names[k]) == klen &&
			    memcmp(join_key_names[k], p, klen) == 0)
				break;
		if (k == JOIN_NKEYS || m->value[k] != NULL) {
			join_msg_clear(m);
			return join_fail(err, errlen, "an unknown or repeated "
			    "key");
		}
		vlen = (size_t)(nl - sp - 1);
		if (vlen % 2 != 0) {
			join_msg_clear(m);
			return join_fail(err, errlen, "a value of odd length");
		}
		v = xmalloc(vlen / 2 + 1);
		for (i = 0; i < vlen / 2; i++) {
			int	 hi = hex_digit(sp[1 + 2 * i]);
			int	 lo = hex_digit(sp[2 + 2 * i]);

			if (hi == -1 || lo == -1) {
				free(v);
				join_msg_clear(m);
				return join_fail(err, errlen, "a value that is "
				    "not hex");
			}
			v[i] = (char)(hi << 4 | lo);
		}
		v[vlen / 2] = '\0';
		m->value[k] = v;
		m->len[k] = vlen / 2;
		p = nl + 1;
	}
	return 0;
}

char *
join_msg_format(const struct join_msg *m, size_t *len)
{
	size_t	 k, i, n = 0, need = 1;
	char	*out;

	for (k = 0; k < JOIN_NKEYS; k++)
		if (m->value[k] != NULL)
			need += strlen(join_key_names[k]) + 2 + 2 * m->len[k];
	out = xmalloc(need);
	for (k = 0; k < JOIN_NKEYS; k++) {
		if (m->value[k] == NULL)
			continue;
		n += (size_t)sprintf(out + n, "%s ", join_key_names[k]);
		for (i = 0; i < m->len[k]; i++)
			n += (size_t)sprintf(out + n, "%02x",
			    (unsigned char)m->value[k][i]);
		out[n++] = '\n';
	}
	out[n] = '\0';
	*len = n;
	return out;
}
