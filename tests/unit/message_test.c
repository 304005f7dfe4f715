/*
 * Unit tests of message decoding: every known type round-trips, an unknown
 * type and a payload that does not decode are refused with their own errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static void
test_roundtrip(void **state)
{
	Haven__WorkerEvent	 ev = HAVEN__WORKER_EVENT__INIT, *out;
	struct frame		 f = { 0 };
	size_t			 len;

	ev.vm_uuid = "7d0c0d7e-0000-4000-8000-000000000001";
	ev.generation = 42;
	ev.phase = HAVEN__VM_PHASE__VM_PHASE_RUNNING;
	ev.fenced = 1;
	f.type = FRAME_WORKER_EVENT;
	f.payload = message_pack(&ev.base, &len);
	f.length = (uint32_t)len;
	out = (Haven__WorkerEvent *)message_decode(&f);
	assert_non_null(out);
	assert_string_equal(out->vm_uuid, ev.vm_uuid);
	assert_int_equal(out->generation, 42);
	assert_int_equal(out->phase, HAVEN__VM_PHASE__VM_PHASE_RUNNING);
	assert_true(out->fenced);
	message_free(&out->base);
	free(f.payload);
}

static void
test_unknown_type(void **state)
{
	struct frame	f = { .type = 999, .payload = (uint8_t *)"", .length = 0 };

	assert_null(message_decode(&f));
	assert_int_equal(errno, ENOMSG);
	assert_string_equal(message_type_name(999), "unknown");
	assert_string_equal(message_type_name(FRAME_VM_SPEC), "vm-spec");
}

static void
test_garbage_payload(void **state)
{
	/* Field 1 (string) claims 100 bytes but only 2 follow. */
	uint8_t		bad[] = { 0x0a, 100, 'a', 'b' };
	struct frame	f = { .type = FRAME_VM_SPEC, .payload = bad,
			      .length = sizeof bad };

	assert_null(message_decode(&f));
	assert_int_equal(errno, EBADMSG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_garbage_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
