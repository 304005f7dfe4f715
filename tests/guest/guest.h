/*
 * guest.h: shared declarations of the Haven test guest, a tiny 32-bit multiboot kernel
 * that prints ticks on COM1, journals acknowledged records to an ATA disk and keeps RAM
 * dirty, so integration tests can prove a VM survived save/restore/failover intact.
 */
#ifndef HAVEN_GUEST_H
#define HAVEN_GUEST_H

#include <stddef.h>
#include <stdint.h>

/* Port I/O and the few privileged instructions the guest needs. */
static inline void
outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t
inb(uint16_t port)
{
	uint8_t value;

	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline void
insl(uint16_t port, void *buffer, uint32_t count)
{
	__asm__ volatile("cld; rep insl"
	    : "+D"(buffer), "+c"(count) : "d"(port) : "memory");
}

static inline void
outsl(uint16_t port, const void *buffer, uint32_t count)
{
	__asm__ volatile("cld; rep outsl"
	    : "+S"(buffer), "+c"(count) : "d"(port) : "memory");
}

static inline uint64_t
rdtsc(void)
{
	uint32_t low, high;

	__asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
	return (uint64_t)high << 32 | low;
}

/* lib.c */
void		*memset(void *, int, size_t);
void		*memcpy(void *, const void *, size_t);
void		*memmove(void *, const void *, size_t);
int		 memcmp(const void *, const void *, size_t);
uint64_t	 lib_udivmod64(uint64_t, uint64_t, uint64_t *);
uint32_t	 lib_mix32(uint32_t);

/* serial.c */
void		 serial_init(void);
void		 serial_set_boot_id(uint64_t);
void		 serial_puts(const char *);
void		 serial_put_dec(uint64_t);
void		 serial_put_hex(uint64_t, int);
void		 serial_begin_line(void);
void		 serial_end_line(void);

/* timer.c */
void		 timer_init(void);
uint64_t	 timer_now(void);
uint64_t	 timer_ms_to_cycles(uint32_t);

/* ata.c */
int		 ata_identify(uint32_t *);
int		 ata_read(uint32_t, uint32_t, void *);
int		 ata_write(uint32_t, const void *);
int		 ata_flush(void);
uint8_t		 ata_last_status(void);
uint8_t		 ata_last_error(void);

/* journal.c */
int		 journal_init(uint64_t);
void		 journal_append(uint64_t);
int		 journal_enabled(void);

/* dirty.c */
uint32_t	 dirty_init(uint64_t, uint32_t, uint32_t, uint32_t);
void		 dirty_step(void);

#endif /* HAVEN_GUEST_H */
