/*
 * timer.c: wall-clock time for the tick loop without interrupts. The TSC is calibrated
 * once against PIT channel 2 (gated through port 0x61, polled, as Linux does), then read
 * directly; no IDT or IRQ is ever set up.
 */
#include "guest.h"

#define TIMER_PIT_HZ		1193182u
#define TIMER_CALIBRATE_MS	20u
#define TIMER_FALLBACK_PER_MS	1000000u	/* assume 1 GHz if the PIT misbehaves */

static uint64_t timer_cycles_per_ms = TIMER_FALLBACK_PER_MS;

void
timer_init(void)
{
	uint32_t count = TIMER_PIT_HZ * TIMER_CALIBRATE_MS / 1000;
	uint64_t start, elapsed;
	uint32_t polls = 0;

	/* Gate channel 2 on, speaker off; mode 0 (one-shot), lobyte/hibyte. */
	outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01));
	outb(0x43, 0xB0);
	outb(0x42, (uint8_t)count);
	outb(0x42, (uint8_t)(count >> 8));
	start = rdtsc();
	/* OUT2 (bit 5) rises at terminal count; bound the wait in case it never does. */
	while ((inb(0x61) & 0x20) == 0 && ++polls < 50000000u)
		;
	elapsed = rdtsc() - start;
	if (elapsed >= 1000u * TIMER_CALIBRATE_MS && polls < 50000000u)
		timer_cycles_per_ms = lib_udivmod64(elapsed, TIMER_CALIBRATE_MS, NULL);
}

uint64_t
timer_now(void)
{
	return rdtsc();
}

uint64_t
timer_ms_to_cycles(uint32_t ms)
{
	return timer_cycles_per_ms * ms;
}
