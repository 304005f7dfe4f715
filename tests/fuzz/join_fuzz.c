/*
 * libFuzzer harness for the join protocol's messages and tokens
 * (config/join.c): arbitrary bytes from the network are parsed; a message
 * that parses formats back to bytes that parse to the same values, and an
 * error is one line that never quotes the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct join_msg		 m, again;
	struct join_token	 t;
	char			 err[256], token[JOIN_TOKEN_MAX + 1], *text, *s;
	size_t			 len, k;

	err[0] = '\0';
	if (join_msg_parse((const char *)data, size, &m, err, sizeof err) ==
	    -1) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL)
			__builtin_trap();
		for (k = 0; k < JOIN_NKEYS; k++)
			if (m.value[k] != NULL)
				__builtin_trap();
	} else {
		text = join_msg_format(&m, &len);
		if (join_msg_parse(text, len, &again, err, sizeof err) == -1)
			__builtin_trap();
		for (k = 0; k < JOIN_NKEYS; k++)
			if ((m.value[k] == NULL) != (again.value[k] == NULL) ||
			    (m.value[k] != NULL && (m.len[k] != again.len[k] ||
			    memcmp(m.value[k], again.value[k], m.len[k]) != 0)))
				__builtin_trap();
		free(text);
		join_msg_clear(&m);
		join_msg_clear(&again);
	}
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (join_token_parse(s, &t) == 0) {
		join_token_format(&t, token, sizeof token);
		if (strcmp(token, s) != 0)
			__builtin_trap();
	}
	free(s);
	return 0;
}
