/*
 * ata.c: polled ATA PIO on the primary IDE channel (0x1F0-0x1F7, control 0x3F6), master
 * drive, LBA28: IDENTIFY, READ SECTORS, WRITE SECTORS and FLUSH CACHE. Every wait is
 * bounded by the TSC so a wedged disk turns into an error, never a hung guest.
 */
#include "guest.h"

#define ATA_DATA	0x1F0
#define ATA_ERROR	0x1F1
#define ATA_COUNT	0x1F2
#define ATA_LBA_LOW	0x1F3
#define ATA_LBA_MID	0x1F4
#define ATA_LBA_HIGH	0x1F5
#define ATA_DRIVE	0x1F6
#define ATA_STATUS	0x1F7	/* read */
#define ATA_COMMAND	0x1F7	/* write */
#define ATA_CONTROL	0x3F6	/* write; reads give the alternate status */

#define ATA_STATUS_BSY	0x80
#define ATA_STATUS_DF	0x20
#define ATA_STATUS_DRQ	0x08
#define ATA_STATUS_ERR	0x01

#define ATA_CMD_READ_SECTORS	0x20
#define ATA_CMD_WRITE_SECTORS	0x30
#define ATA_CMD_FLUSH_CACHE	0xE7
#define ATA_CMD_IDENTIFY	0xEC

#define ATA_TIMEOUT_MS		10000

static uint8_t ata_status, ata_error;

uint8_t
ata_last_status(void)
{
	return ata_status;
}

uint8_t
ata_last_error(void)
{
	return ata_error;
}

/* The drive needs ~400 ns after a command before its status is meaningful. */
static void
ata_delay(void)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ATA_CONTROL);
}

/*
 * Wait for BSY to clear, then record status (and error if ERR/DF). Returns 0 if the
 * drive is idle without error and DRQ is as wanted (want_drq < 0: don't care).
 */
static int
ata_wait(int want_drq)
{
	uint64_t deadline = timer_now() + timer_ms_to_cycles(ATA_TIMEOUT_MS);

	ata_error = 0;
	for (;;) {
		ata_status = inb(ATA_STATUS);
		if ((ata_status & ATA_STATUS_BSY) == 0)
			break;
		if (timer_now() > deadline)
			return -1;
	}
	if (ata_status & (ATA_STATUS_ERR | ATA_STATUS_DF)) {
		ata_error = inb(ATA_ERROR);
		return -1;
	}
	if (want_drq >= 0 && !!(ata_status & ATA_STATUS_DRQ) != want_drq)
		return -1;
	return 0;
}

static void
ata_select_lba(uint32_t lba, uint8_t count)
{
	outb(ATA_DRIVE, (uint8_t)(0xE0 | ((lba >> 24) & 0x0F)));
	ata_delay();
	outb(ATA_COUNT, count);
	outb(ATA_LBA_LOW, (uint8_t)lba);
	outb(ATA_LBA_MID, (uint8_t)(lba >> 8));
	outb(ATA_LBA_HIGH, (uint8_t)(lba >> 16));
}

/* Is there an ATA (not ATAPI) master? On success *sectors is its LBA28 size. */
int
ata_identify(uint32_t *sectors)
{
	uint32_t identify[128];

	outb(ATA_CONTROL, 0x02);	/* nIEN: we poll, no interrupts */
	outb(ATA_DRIVE, 0xA0);		/* the BIOS may have left the slave selected */
	ata_delay();
	ata_status = inb(ATA_STATUS);
	if (ata_status == 0xFF || ata_status == 0x00)
		return -1;		/* floating bus, or controller with no drive */
	outb(ATA_COUNT, 0);
	outb(ATA_LBA_LOW, 0);
	outb(ATA_LBA_MID, 0);
	outb(ATA_LBA_HIGH, 0);
	outb(ATA_COMMAND, ATA_CMD_IDENTIFY);
	ata_delay();
	if (inb(ATA_STATUS) == 0)
		return -1;
	if (ata_wait(-1) != 0)
		return -1;		/* ATAPI aborts IDENTIFY with ERR */
	if (inb(ATA_LBA_MID) != 0 || inb(ATA_LBA_HIGH) != 0)
		return -1;
	if ((ata_status & ATA_STATUS_DRQ) == 0)
		return -1;
	insl(ATA_DATA, identify, 128);
	*sectors = identify[30];	/* words 60-61: LBA28 addressable sectors */
	return 0;
}

/* Read count (1..256) sectors starting at lba into buffer. */
int
ata_read(uint32_t lba, uint32_t count, void *buffer)
{
	uint8_t *out = buffer;

	if (ata_wait(-1) != 0)
		return -1;
	ata_select_lba(lba, (uint8_t)count);	/* 256 is sent as 0 */
	outb(ATA_COMMAND, ATA_CMD_READ_SECTORS);
	for (uint32_t i = 0; i < count; i++, out += 512) {
		ata_delay();
		if (ata_wait(1) != 0)
			return -1;
		insl(ATA_DATA, out, 128);
	}
	return 0;
}

/* Write one sector and wait until the drive has taken it (not necessarily flushed). */
int
ata_write(uint32_t lba, const void *buffer)
{
	if (ata_wait(-1) != 0)
		return -1;
	ata_select_lba(lba, 1);
	outb(ATA_COMMAND, ATA_CMD_WRITE_SECTORS);
	ata_delay();
	if (ata_wait(1) != 0)
		return -1;
	outsl(ATA_DATA, buffer, 128);
	ata_delay();
	return ata_wait(0);
}

/* FLUSH CACHE: returns 0 once everything written so far is on stable storage. */
int
ata_flush(void)
{
	if (ata_wait(-1) != 0)
		return -1;
	outb(ATA_DRIVE, 0xE0);
	ata_delay();
	outb(ATA_COMMAND, ATA_CMD_FLUSH_CACHE);
	ata_delay();
	return ata_wait(0);
}
