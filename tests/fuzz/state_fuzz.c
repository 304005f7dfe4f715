/*
 * libFuzzer harness for the state header parser: arbitrary bytes (zero
 * padded to a header block; the first 8 also choose the extent size) are
 * decoded, checked and explained; what decodes must encode back to the
 * same block.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "migrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t		 block[STATE_HEADER_SIZE], again[STATE_HEADER_SIZE];
	struct state_header	 h, back;
	struct state_expect	 expect = {
		"0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c", 5, 0x1234 };
	uint64_t		 extent_size = UINT64_C(64) << 20;
	char			 text[256];
	size_t			 n = size < sizeof block ? size : sizeof block;
	int			 error;

	memset(block, 0, sizeof block);
	memcpy(block, data, n);
	if (size > sizeof block + 8)
		memcpy(&extent_size, data + sizeof block, 8);
	error = state_header_decode(block, extent_size, &h);
	if (error == 0) {
		if (strlen(h.vm_uuid) != 36 || h.length > extent_size)
			__builtin_trap();
		error = state_header_check(&h, &expect);
		state_header_encode(&h, again);
		if (memcmp(block, again, sizeof block) != 0 ||
		    state_header_decode(again, extent_size, &back) != 0 ||
		    memcmp(&h, &back, sizeof h) != 0)
			__builtin_trap();
	}
	state_explain(text, sizeof text, error, error == 0 ? &h : NULL,
	    &expect);
	if (strlen(text) == 0)
		__builtin_trap();
	return 0;
}
