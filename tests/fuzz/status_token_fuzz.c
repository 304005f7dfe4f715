/*
 * libFuzzer harness for the status page's login tokens and its cookie
 * (clusterd/status_token.c): whoever reaches the listener sends these
 * bytes. Arbitrary bytes as a token are refused, never trusted, unless
 * they are exactly what status_token_make gives for what they claim; as a
 * Cookie header, the value found lies inside the header.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clusterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const uint8_t key[STATUS_KEY_BYTES] = { 7 };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct status_token	 t;
	char			 again[STATUS_TOKEN_MAX + 1], *header;
	const char		*v;
	size_t			 len;
	int			 kind;

	for (kind = 0; kind < 2; kind++) {
		if (status_token_check(key, (const char *)data, size,
		    kind ? STATUS_TOKEN_SESSION : STATUS_TOKEN_LOGIN, 0, &t) !=
		    STATUS_TOKEN_OK)
			continue;
		/* Valid: it must be the very token made for what it says. */
		if (status_token_make(key, &t, again, sizeof again) == -1 ||
		    strlen(again) != size || memcmp(again, data, size) != 0)
			__builtin_trap();
	}
	if ((header = malloc(size + 1)) == NULL)
		return 0;
	memcpy(header, data, size);
	header[size] = '\0';
	if ((v = status_token_cookie(header, &len)) != NULL &&
	    (v < header || v + len > header + strlen(header)))
		__builtin_trap();
	free(header);
	return 0;
}
