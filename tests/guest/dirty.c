/*
 * dirty.c: keeps a region of guest RAM (from 16 MiB) changing so migrations have real
 * work, and checks it survives them. A cursor rewrites a few pages per tick; before
 * rewriting a page in pass k it verifies the page still holds pass k-1's pattern.
 */
#include "guest.h"

#define DIRTY_BASE		(16u << 20)
#define DIRTY_PAGE_SIZE		4096u
#define DIRTY_PAGE_WORDS	(DIRTY_PAGE_SIZE / 4)
#define DIRTY_WORD_STEP		0x9E3779B1u

/* Lives in .bss like everything else, so it is migrated along with the region itself. */
static struct {
	volatile uint32_t	*base;
	uint32_t		 pages;
	uint32_t		 pages_per_tick;
	uint32_t		 cursor;	/* next page to rewrite */
	uint32_t		 pass;		/* pass being written; 0 is the initial fill */
	int			 failed;	/* a mismatch was reported in this pass */
	uint32_t		 boot_salt;
} dirty;

/* Word w of page p in pass k is seed(p, k) + w * DIRTY_WORD_STEP: cheap to check. */
static uint32_t
dirty_seed(uint32_t page, uint32_t pass)
{
	return lib_mix32(page * 0x85EBCA77u ^ lib_mix32(pass ^ dirty.boot_salt));
}

/*
 * Set up a region of want_mib MiB, clamped to RAM below mem_top (a byte address).
 * Returns the MiB actually used.
 */
uint32_t
dirty_init(uint64_t boot_id, uint32_t want_mib, uint32_t mem_top, uint32_t pages_per_tick)
{
	uint32_t fit_mib = 0;

	if (mem_top > DIRTY_BASE)
		fit_mib = (mem_top - DIRTY_BASE) >> 20;
	if (want_mib > fit_mib) {
		serial_begin_line();
		serial_puts("dirty error requested=");
		serial_put_dec(want_mib);
		serial_puts(" available=");
		serial_put_dec(fit_mib);
		serial_end_line();
		want_mib = fit_mib;
	}
	dirty.base = (volatile uint32_t *)DIRTY_BASE;
	dirty.pages = want_mib * (1u << 20) / DIRTY_PAGE_SIZE;
	dirty.pages_per_tick = pages_per_tick ? pages_per_tick : 1;
	dirty.boot_salt = lib_mix32((uint32_t)boot_id) ^ (uint32_t)(boot_id >> 32);
	return want_mib;
}

/* Verify (from pass 1 on) and rewrite one page; returns the first bad word or -1. */
static int
dirty_rewrite_page(uint32_t page)
{
	volatile uint32_t *words = dirty.base + page * DIRTY_PAGE_WORDS;
	uint32_t next = dirty_seed(page, dirty.pass);
	uint32_t expected = dirty.pass > 0 ? dirty_seed(page, dirty.pass - 1) : 0;
	int bad_word = -1;

	for (uint32_t w = 0; w < DIRTY_PAGE_WORDS; w++) {
		if (dirty.pass > 0 && bad_word < 0 && words[w] != expected)
			bad_word = (int)w;
		words[w] = next;
		expected += DIRTY_WORD_STEP;
		next += DIRTY_WORD_STEP;
	}
	return bad_word;
}

void
dirty_step(void)
{
	int bad_word;

	for (uint32_t i = 0; i < dirty.pages_per_tick && dirty.pages > 0; i++) {
		bad_word = dirty_rewrite_page(dirty.cursor);
		if (bad_word >= 0 && !dirty.failed) {
			dirty.failed = 1;
			serial_begin_line();
			serial_puts("dirty FAIL pass=");
			serial_put_dec(dirty.pass);
			serial_puts(" page=");
			serial_put_dec(dirty.cursor);
			serial_puts(" word=");
			serial_put_dec((uint32_t)bad_word);
			serial_end_line();
		}
		if (++dirty.cursor < dirty.pages)
			continue;
		if (dirty.pass > 0 && !dirty.failed) {
			serial_begin_line();
			serial_puts("dirty pass=");
			serial_put_dec(dirty.pass);
			serial_puts(" ok");
			serial_end_line();
		}
		dirty.cursor = 0;
		dirty.pass++;
		dirty.failed = 0;
	}
}
