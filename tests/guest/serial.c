/*
 * serial.c: polled output on COM1 (0x3F8, 115200 8N1). Every line the guest prints starts
 * with "HAVEN-GUEST boot=<16 hex digits> " (serial_begin_line) so tests can pick the
 * guest's lines out of a log and tell boots apart.
 */
#include "guest.h"

#define SERIAL_PORT		0x3F8
#define SERIAL_LSR_THR_EMPTY	0x20

static uint64_t serial_boot_id;

void
serial_init(void)
{
	outb(SERIAL_PORT + 1, 0x00);	/* no interrupts */
	outb(SERIAL_PORT + 3, 0x80);	/* DLAB on */
	outb(SERIAL_PORT + 0, 0x01);	/* divisor 1: 115200 baud */
	outb(SERIAL_PORT + 1, 0x00);
	outb(SERIAL_PORT + 3, 0x03);	/* 8N1, DLAB off */
	outb(SERIAL_PORT + 2, 0xC7);	/* FIFO on and cleared */
	outb(SERIAL_PORT + 4, 0x03);	/* DTR, RTS */
}

void
serial_set_boot_id(uint64_t boot_id)
{
	serial_boot_id = boot_id;
}

static void
serial_putc(char c)
{
	/* Bounded wait: a missing UART must not hang the guest. */
	for (int spins = 0; spins < 100000; spins++)
		if (inb(SERIAL_PORT + 5) & SERIAL_LSR_THR_EMPTY)
			break;
	outb(SERIAL_PORT, (uint8_t)c);
}

void
serial_puts(const char *s)
{
	while (*s != '\0')
		serial_putc(*s++);
}

void
serial_put_dec(uint64_t value)
{
	char digits[21];
	int n = 0;
	uint64_t rest;

	do {
		value = lib_udivmod64(value, 10, &rest);
		digits[n++] = (char)('0' + rest);
	} while (value != 0);
	while (n > 0)
		serial_putc(digits[--n]);
}

/* Lowercase hex, exactly width digits. */
void
serial_put_hex(uint64_t value, int width)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = width - 1; i >= 0; i--)
		serial_putc(hex[(value >> (4 * i)) & 0xF]);
}

void
serial_begin_line(void)
{
	serial_puts("HAVEN-GUEST boot=");
	serial_put_hex(serial_boot_id, 16);
	serial_putc(' ');
}

void
serial_end_line(void)
{
	serial_putc('\n');
}
