/*
 * libFuzzer harness for the bytes a peer controls on every Haven channel:
 * the frame reader (fed in two pieces at a fuzzer-chosen cut) and the
 * protobuf decoder of each frame it yields.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader	*r;
	struct frame		 f;
	ProtobufCMessage	*m;
	size_t			 cut;

	if (size < 1)
		return 0;
	cut = data[0] % size;
	data++;
	size--;
	if ((r = frame_reader_new(64 * 1024)) == NULL)
		return 0;
	if (cut > size)
		cut = size;
	frame_reader_feed(r, data, cut);
	while (frame_reader_next(r, &f) == 1) {
		m = message_decode(&f);
		message_free(m);
		frame_release(&f);
	}
	frame_reader_feed(r, data + cut, size - cut);
	while (frame_reader_next(r, &f) == 1) {
		m = message_decode(&f);
		message_free(m);
		frame_release(&f);
	}
	frame_reader_free(r);
	return 0;
}
