/*
 * guest.c: entry and main loop of the test guest: reads the multiboot command line, picks
 * a fresh random boot id, finds the disk, then ticks forever, journaling and dirtying RAM.
 * All state lives in RAM, so after a save/restore the same boot id simply carries on.
 */
#include "guest.h"
#include "journal_format.h"

#define MULTIBOOT_BOOTLOADER_MAGIC	0x2BADB002u
#define MULTIBOOT_INFO_MEMORY		0x001u
#define MULTIBOOT_INFO_CMDLINE		0x004u

struct multiboot_info {
	uint32_t	flags;
	uint32_t	mem_lower;	/* KiB below 1 MiB */
	uint32_t	mem_upper;	/* KiB above 1 MiB */
	uint32_t	boot_device;
	uint32_t	cmdline;	/* physical address of a NUL-terminated string */
};

struct guest_config {
	uint32_t	tick_ms;
	uint32_t	dirty_mib;
	uint32_t	dirty_pages_per_tick;
	uint32_t	journal_every;
	int		journal;	/* -1 auto (on if a disk is found), 0 off, 1 on */
	uint32_t	flood;		/* filler lines per tick (log caps) */
	uint32_t	marker_kib;	/* RAM filled with a text marker */
};

/*
 * marker=N: N KiB of RAM from 8 MiB (below the dirty region) hold the line
 * "HAVEN-RAM-MARKER boot=<id>\n" over and over, written once at start: text
 * a test can look for in a capture of the migration network (lab.live-tls:
 * found when the stream is in clear, absent when it is encrypted).
 */
#define MARKER_BASE	(8u << 20)
#define MARKER_MAX_KIB	(8u << 10)

static uint32_t
guest_marker(uint64_t boot_id, uint32_t kib, uint32_t mem_top)
{
	static const char prefix[] = "HAVEN-RAM-MARKER boot=";
	static const char digits[] = "0123456789abcdef";
	volatile char *p = (volatile char *)MARKER_BASE;
	char line[sizeof prefix - 1 + 16 + 1];
	uint32_t i, bytes;

	if (kib > MARKER_MAX_KIB)
		kib = MARKER_MAX_KIB;
	if (mem_top < MARKER_BASE + (kib << 10))
		kib = mem_top > MARKER_BASE ? (mem_top - MARKER_BASE) >> 10 : 0;
	memcpy(line, prefix, sizeof prefix - 1);
	for (i = 0; i < 16; i++)
		line[sizeof prefix - 1 + i] = digits[(boot_id >> (60 - 4 * i)) & 0xf];
	line[sizeof line - 1] = '\n';
	bytes = kib << 10;
	for (i = 0; i < bytes; i++)
		p[i] = line[i % sizeof line];
	return kib;
}

void	guest_main(uint32_t, const struct multiboot_info *);

static int
guest_key_is(const char *token, uint32_t key_length, const char *key)
{
	uint32_t i;

	for (i = 0; i < key_length && key[i] != '\0'; i++)
		if (token[i] != key[i])
			return 0;
	return i == key_length && key[i] == '\0';
}

/* Parse "N" (decimal) ending at a space or NUL; returns 0 on success. */
static int
guest_parse_u32(const char *s, uint32_t *out)
{
	uint32_t value = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		value = value * 10 + (uint32_t)(*s - '0');
	if (*s != ' ' && *s != '\0')
		return -1;
	*out = value;
	return 0;
}

static void
guest_warn_parameter(const char *token)
{
	serial_begin_line();
	serial_puts("warning bad parameter ");
	while (*token != ' ' && *token != '\0') {
		char one[2] = { *token++, '\0' };
		serial_puts(one);
	}
	serial_end_line();
}

/* Space-separated key=value pairs; tokens without '=' (QEMU puts the kernel path first) are skipped. */
static void
guest_parse_cmdline(const char *cmdline, struct guest_config *config)
{
	const char *token = cmdline, *value;
	uint32_t key_length, number;
	int ok;

	while (*token != '\0') {
		while (*token == ' ')
			token++;
		if (*token == '\0')
			break;
		for (value = token; *value != ' ' && *value != '\0' && *value != '='; value++)
			;
		if (*value == '=') {
			key_length = (uint32_t)(value - token);
			value++;
			ok = 1;
			if (guest_key_is(token, key_length, "journal")) {
				if (guest_key_is(value, 2, "on") && (value[2] == ' ' || value[2] == '\0'))
					config->journal = 1;
				else if (guest_key_is(value, 3, "off") && (value[3] == ' ' || value[3] == '\0'))
					config->journal = 0;
				else
					ok = 0;
			} else if (guest_parse_u32(value, &number) != 0)
				ok = 0;
			else if (guest_key_is(token, key_length, "tick_ms"))
				config->tick_ms = number ? number : 1;
			else if (guest_key_is(token, key_length, "dirty"))
				config->dirty_mib = number;
			else if (guest_key_is(token, key_length, "dirty_pages_per_tick"))
				config->dirty_pages_per_tick = number ? number : 1;
			else if (guest_key_is(token, key_length, "journal_every"))
				config->journal_every = number ? number : 1;
			else if (guest_key_is(token, key_length, "flood"))
				config->flood = number;
			else if (guest_key_is(token, key_length, "marker"))
				config->marker_kib = number;
			else
				ok = 0;
			if (!ok)
				guest_warn_parameter(token);
		}
		while (*token != ' ' && *token != '\0')
			token++;
	}
}

static void
guest_cpuid(uint32_t leaf, uint32_t *ecx)
{
	uint32_t eax = leaf, ebx, edx;

	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(*ecx), "=d"(edx) : "c"(0));
}

static int
guest_rdrand32(uint32_t *out)
{
	uint8_t ok;

	for (int tries = 0; tries < 10; tries++) {
		__asm__ volatile("rdrand %0; setc %1" : "=r"(*out), "=qm"(ok));
		if (ok)
			return 0;
	}
	return -1;
}

static uint8_t
guest_cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

/* A fresh 64-bit id per cold boot: RDRAND if the CPU has it, else TSC mixed with the RTC. */
static uint64_t
guest_boot_id(void)
{
	uint32_t ecx, high, low;
	uint64_t tsc = rdtsc();

	guest_cpuid(1, &ecx);
	if ((ecx & (1u << 30)) && guest_rdrand32(&high) == 0 && guest_rdrand32(&low) == 0)
		return ((uint64_t)high << 32 | low) ^ tsc;
	high = lib_mix32((uint32_t)(tsc >> 32) ^ guest_cmos(0x00) ^
	    (uint32_t)guest_cmos(0x02) << 8 ^ (uint32_t)guest_cmos(0x04) << 16 ^
	    (uint32_t)guest_cmos(0x07) << 24);
	low = lib_mix32((uint32_t)tsc ^ lib_mix32(high));
	return (uint64_t)high << 32 | low;
}

void
guest_main(uint32_t magic, const struct multiboot_info *info)
{
	struct guest_config config = { 100, 0, 256, 1, -1, 0, 0 };
	uint32_t mem_top = 0, sectors = 0, disk = 0, dirty_mib, since_journal = 0;
	uint64_t boot_id, tick = 0, period, deadline, now, last;

	serial_init();
	boot_id = guest_boot_id();
	serial_set_boot_id(boot_id);
	if (magic == MULTIBOOT_BOOTLOADER_MAGIC) {
		if (info->flags & MULTIBOOT_INFO_MEMORY)
			mem_top = (1u << 20) + info->mem_upper * 1024u;
		if ((info->flags & MULTIBOOT_INFO_CMDLINE) && info->cmdline != 0)
			guest_parse_cmdline((const char *)info->cmdline, &config);
	}
	timer_init();

	if (config.journal != 0 && ata_identify(&sectors) == 0) {
		if (sectors >= JOURNAL_FORMAT_START_LBA + JOURNAL_FORMAT_SLOTS)
			disk = 1;
		else {
			serial_begin_line();
			serial_puts("journal unavailable reason=disk-too-small sectors=");
			serial_put_dec(sectors);
			serial_end_line();
		}
	} else if (config.journal == 1) {
		serial_begin_line();
		serial_puts("journal unavailable reason=no-disk");
		serial_end_line();
	}
	dirty_mib = dirty_init(boot_id, config.dirty_mib, mem_top, config.dirty_pages_per_tick);

	serial_begin_line();
	serial_puts("start mem=");
	serial_put_dec(mem_top >> 20);
	serial_puts(" dirty=");
	serial_put_dec(dirty_mib);
	serial_puts(disk ? " journal=on" : " journal=off");
	serial_end_line();
	serial_begin_line();
	serial_puts("config tick_ms=");
	serial_put_dec(config.tick_ms);
	serial_puts(" journal_every=");
	serial_put_dec(config.journal_every);
	serial_puts(" dirty_pages_per_tick=");
	serial_put_dec(config.dirty_pages_per_tick);
	serial_end_line();
	if (config.marker_kib != 0) {
		serial_begin_line();
		serial_puts("marker kib=");
		serial_put_dec(guest_marker(boot_id, config.marker_kib, mem_top));
		serial_end_line();
	}
	if (disk)
		journal_init(boot_id);

	/*
	 * Deadlines are TSC values. If the TSC jumps (a restore on another host), restart the
	 * schedule from now rather than firing a burst of catch-up ticks or stalling.
	 */
	period = timer_ms_to_cycles(config.tick_ms);
	last = timer_now();
	deadline = last + period;
	for (;;) {
		now = timer_now();
		if (now < last || now > deadline + 10 * period)
			deadline = now;
		last = now;
		if (now < deadline)
			continue;
		deadline += period;
		tick++;
		serial_begin_line();
		serial_puts("tick=");
		serial_put_dec(tick);
		serial_end_line();
		for (uint32_t i = 0; i < config.flood; i++) {
			serial_begin_line();
			serial_puts("flood ................................................"
			    "..........................");
			serial_end_line();
		}
		dirty_step();
		if (++since_journal >= config.journal_every) {
			since_journal = 0;
			journal_append(tick);
		}
	}
}
