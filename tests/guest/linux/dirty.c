/*
 * dirty.c: keeps `dirty` MiB of the guest's RAM changing, as the toy guest's dirty.c does,
 * so a live migration of a busy guest has pages to send again. A child process rewrites
 * dirty_pages_per_tick pages per tick and, from pass 1 on, checks each page still holds the
 * previous pass's pattern; the service itself keeps answering TCP undisturbed.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "service.h"

#define DIRTY_PAGE_SIZE		4096u
#define DIRTY_PAGE_WORDS	(DIRTY_PAGE_SIZE / 4)
#define DIRTY_WORD_STEP		0x9E3779B1u
/* Left free for the kernel, the page cache and the service when the region is sized. */
#define DIRTY_RESERVE_MIB	32u

/* The toy guest's mixing function: a cheap, well-spread 32-bit hash. */
static uint32_t
dirty_mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return x;
}

/* Word w of page p in pass k is seed(p, k) + w * DIRTY_WORD_STEP: cheap to check. */
static uint32_t
dirty_seed(uint32_t salt, uint32_t page, uint32_t pass)
{
	return dirty_mix32(page * 0x85EBCA77u ^ dirty_mix32(pass ^ salt));
}

/* Verify (from pass 1 on) and rewrite one page; returns the first bad word or -1. */
static int
dirty_rewrite_page(uint32_t *words, uint32_t salt, uint32_t page, uint32_t pass)
{
	uint32_t next = dirty_seed(salt, page, pass);
	uint32_t expected = pass > 0 ? dirty_seed(salt, page, pass - 1) : 0;
	int bad_word = -1;

	for (uint32_t w = 0; w < DIRTY_PAGE_WORDS; w++) {
		if (pass > 0 && bad_word < 0 && words[w] != expected)
			bad_word = (int)w;
		words[w] = next;
		expected += DIRTY_WORD_STEP;
		next += DIRTY_WORD_STEP;
	}
	return bad_word;
}

/* The child's loop: never returns. */
static void __attribute__((noreturn))
dirty_run(uint32_t *base, uint32_t pages, const struct service_config *config, uint32_t salt)
{
	uint32_t cursor = 0, pass = 0;
	struct timespec deadline;
	int bad_word, failed = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	for (;;) {
		for (uint32_t i = 0; i < config->dirty_pages_per_tick; i++) {
			bad_word = dirty_rewrite_page(base + (size_t)cursor * DIRTY_PAGE_WORDS, salt,
			    cursor, pass);
			if (bad_word >= 0 && !failed) {
				failed = 1;
				console_line("dirty FAIL pass=%u page=%u word=%d", pass, cursor,
				    bad_word);
			}
			if (++cursor < pages)
				continue;
			if (pass > 0 && !failed)
				console_line("dirty pass=%u ok", pass);
			cursor = 0;
			pass++;
			failed = 0;
		}
		/* Absolute deadlines: a slow pass (TCG, a migration) does not drift the rate. */
		deadline.tv_nsec += (long)(config->tick_ms % 1000) * 1000000L;
		deadline.tv_sec += config->tick_ms / 1000 + deadline.tv_nsec / 1000000000L;
		deadline.tv_nsec %= 1000000000L;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
			;
	}
}

/*
 * Start the dirtying child for config->dirty_mib MiB, clamped to the free RAM less a
 * reserve (with a "dirty error" line, as the toy guest says it). Returns the MiB used; 0
 * when there is nothing to dirty or the child cannot be started (said on the console).
 */
unsigned
dirty_start(const struct service_config *config, uint64_t boot_id)
{
	unsigned want = config->dirty_mib, fit = 0;
	struct sysinfo info;
	uint32_t *base;
	pid_t pid;

	if (want == 0)
		return 0;
	if (sysinfo(&info) == 0) {
		fit = (unsigned)((unsigned long long)info.freeram * info.mem_unit >> 20);
		fit = fit > DIRTY_RESERVE_MIB ? fit - DIRTY_RESERVE_MIB : 0;
	}
	if (want > fit) {
		console_line("dirty error requested=%u available=%u", want, fit);
		want = fit;
		if (want == 0)
			return 0;
	}
	/* The parent maps nothing: the region lives only in the child. */
	pid = fork();
	if (pid == -1) {
		console_line("dirty error fork: %s", strerror(errno));
		return 0;
	}
	if (pid > 0)
		return want;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	base = mmap(NULL, (size_t)want << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (base == MAP_FAILED) {
		console_line("dirty error mmap %u MiB: %s", want, strerror(errno));
		_exit(1);
	}
	dirty_run(base, want * (1u << 20) / DIRTY_PAGE_SIZE, config,
	    dirty_mix32((uint32_t)boot_id) ^ (uint32_t)(boot_id >> 32));
}
