/*
 * journal.c: the guest's write-ahead journal of acknowledged records. A record is acked on
 * serial only after WRITE SECTORS and FLUSH CACHE both completed, so every "ack=<seq>" line
 * promises a durable record that haven-journal-check can later look for on the disk.
 */
#include "guest.h"
#include "journal_format.h"

#define JOURNAL_SCAN_CHUNK	64	/* sectors per READ SECTORS during the boot scan */

static struct {
	int		enabled;
	uint64_t	boot_id;
	uint64_t	next_seq;
} journal;

static uint8_t journal_scan_buffer[JOURNAL_SCAN_CHUNK * JOURNAL_FORMAT_SECTOR_SIZE];
static uint8_t journal_record[JOURNAL_FORMAT_SECTOR_SIZE];

int
journal_enabled(void)
{
	return journal.enabled;
}

static void
journal_print_error(const char *what, uint64_t seq)
{
	serial_begin_line();
	serial_puts("journal error seq=");
	serial_put_dec(seq);
	serial_puts(" status=0x");
	serial_put_hex(ata_last_status(), 2);
	serial_puts(" error=0x");
	serial_put_hex(ata_last_error(), 2);
	serial_puts(" op=");
	serial_puts(what);
	serial_end_line();
}

/*
 * Scan all slots for the highest valid seq from earlier boots and continue after it, so a
 * cold restart (perhaps on another host) never overwrites recent acknowledged records.
 * Returns 0 if the journal is usable.
 */
int
journal_init(uint64_t boot_id)
{
	uint64_t highest = 0, seq;

	journal.boot_id = boot_id;
	for (uint32_t slot = 0; slot < JOURNAL_FORMAT_SLOTS; slot += JOURNAL_SCAN_CHUNK) {
		if (ata_read(JOURNAL_FORMAT_START_LBA + slot, JOURNAL_SCAN_CHUNK,
		    journal_scan_buffer) != 0) {
			journal_print_error("scan", 0);
			return -1;
		}
		for (uint32_t i = 0; i < JOURNAL_SCAN_CHUNK; i++) {
			if (journal_format_check(journal_scan_buffer +
			    i * JOURNAL_FORMAT_SECTOR_SIZE, slot + i, NULL, &seq,
			    NULL) == JOURNAL_FORMAT_VALID && seq > highest)
				highest = seq;
		}
	}
	journal.next_seq = highest + 1;
	journal.enabled = 1;
	serial_begin_line();
	serial_puts("journal resume seq=");
	serial_put_dec(journal.next_seq);
	serial_end_line();
	return 0;
}

/* Write, flush, then acknowledge one record; any ATA error stops journaling for good. */
void
journal_append(uint64_t tick)
{
	uint64_t seq = journal.next_seq;

	if (!journal.enabled)
		return;
	journal_format_fill(journal_record, journal.boot_id, seq, tick);
	if (ata_write(JOURNAL_FORMAT_START_LBA + journal_format_slot(seq),
	    journal_record) != 0) {
		journal_print_error("write", seq);
		journal.enabled = 0;
		return;
	}
	if (ata_flush() != 0) {
		journal_print_error("flush", seq);
		journal.enabled = 0;
		return;
	}
	journal.next_seq = seq + 1;
	serial_begin_line();
	serial_puts("ack=");
	serial_put_dec(seq);
	serial_end_line();
}
