/*
 * journal_format.h: the on-disk layout of the test guest's journal records, shared by the
 * guest kernel and the host-side haven-journal-check so both agree byte for byte.
 * Header-only and freestanding-safe: needs only <stdint.h>, no 64-bit division.
 */
#ifndef HAVEN_JOURNAL_FORMAT_H
#define HAVEN_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_FORMAT_MAGIC		"HVNJRNL1"
#define JOURNAL_FORMAT_MAGIC_LEN	8
#define JOURNAL_FORMAT_START_LBA	2048	/* 1 MiB into the disk */
#define JOURNAL_FORMAT_SLOTS		1024	/* one record per sector */
#define JOURNAL_FORMAT_SECTOR_SIZE	512

/* Byte offsets inside a record; all integers are little-endian. */
#define JOURNAL_FORMAT_OFF_MAGIC	0
#define JOURNAL_FORMAT_OFF_BOOT_ID	8
#define JOURNAL_FORMAT_OFF_SEQ		16
#define JOURNAL_FORMAT_OFF_TICK		24
#define JOURNAL_FORMAT_OFF_PAYLOAD	32
#define JOURNAL_FORMAT_OFF_CRC		508
#define JOURNAL_FORMAT_PAYLOAD_WORDS	119	/* (508 - 32) / 4 */

enum journal_format_status {
	JOURNAL_FORMAT_VALID = 0,
	JOURNAL_FORMAT_EMPTY,		/* all 512 bytes zero */
	JOURNAL_FORMAT_BAD_MAGIC,	/* not zero, but no magic */
	JOURNAL_FORMAT_BAD_CRC,
	JOURNAL_FORMAT_BAD_SEQ,		/* seq 0, or seq that belongs in another slot */
	JOURNAL_FORMAT_BAD_PAYLOAD,	/* CRC fine but pattern does not match (boot id, seq) */
};

/* Slot (0..1023) that record number seq (>= 1) is written to. */
static inline uint32_t
journal_format_slot(uint64_t seq)
{
	return (uint32_t)((seq - 1) & (JOURNAL_FORMAT_SLOTS - 1));
}

static inline uint64_t
journal_format_get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint32_t
journal_format_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline void
journal_format_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void
journal_format_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()); bitwise, no table needed. */
static inline uint32_t
journal_format_crc32(const uint8_t *data, uint32_t len)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (uint32_t i = 0; i < len; i++) {
		crc ^= data[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return crc ^ 0xFFFFFFFFu;
}

/* Payload word i of record (boot_id, seq): a splitmix64-style mix of the three. */
static inline uint32_t
journal_format_pattern(uint64_t boot_id, uint64_t seq, uint32_t index)
{
	uint64_t x = boot_id ^ (seq * 0x9E3779B97F4A7C15ull) ^
	    ((uint64_t)index << 32 | index);

	x ^= x >> 33;
	x *= 0xFF51AFD7ED558CCDull;
	x ^= x >> 33;
	x *= 0xC4CEB9FE1A85EC53ull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Fill a whole 512-byte record. */
static inline void
journal_format_fill(uint8_t *record, uint64_t boot_id, uint64_t seq, uint64_t tick)
{
	const char *magic = JOURNAL_FORMAT_MAGIC;

	for (int i = 0; i < JOURNAL_FORMAT_MAGIC_LEN; i++)
		record[JOURNAL_FORMAT_OFF_MAGIC + i] = (uint8_t)magic[i];
	journal_format_put_u64(record + JOURNAL_FORMAT_OFF_BOOT_ID, boot_id);
	journal_format_put_u64(record + JOURNAL_FORMAT_OFF_SEQ, seq);
	journal_format_put_u64(record + JOURNAL_FORMAT_OFF_TICK, tick);
	for (uint32_t i = 0; i < JOURNAL_FORMAT_PAYLOAD_WORDS; i++)
		journal_format_put_u32(record + JOURNAL_FORMAT_OFF_PAYLOAD + 4 * i,
		    journal_format_pattern(boot_id, seq, i));
	journal_format_put_u32(record + JOURNAL_FORMAT_OFF_CRC,
	    journal_format_crc32(record, JOURNAL_FORMAT_OFF_CRC));
}

/*
 * Classify the record found in slot (0..1023). On JOURNAL_FORMAT_VALID the header fields
 * are returned through boot_id, seq and tick (any may be NULL).
 */
static inline enum journal_format_status
journal_format_check(const uint8_t *record, uint32_t slot, uint64_t *boot_id,
    uint64_t *seq, uint64_t *tick)
{
	const char *magic = JOURNAL_FORMAT_MAGIC;
	uint64_t record_boot_id, record_seq;
	int nonzero = 0;

	for (int i = 0; i < JOURNAL_FORMAT_SECTOR_SIZE; i++)
		nonzero |= record[i];
	if (!nonzero)
		return JOURNAL_FORMAT_EMPTY;
	for (int i = 0; i < JOURNAL_FORMAT_MAGIC_LEN; i++)
		if (record[JOURNAL_FORMAT_OFF_MAGIC + i] != (uint8_t)magic[i])
			return JOURNAL_FORMAT_BAD_MAGIC;
	if (journal_format_crc32(record, JOURNAL_FORMAT_OFF_CRC) !=
	    journal_format_get_u32(record + JOURNAL_FORMAT_OFF_CRC))
		return JOURNAL_FORMAT_BAD_CRC;
	record_boot_id = journal_format_get_u64(record + JOURNAL_FORMAT_OFF_BOOT_ID);
	record_seq = journal_format_get_u64(record + JOURNAL_FORMAT_OFF_SEQ);
	if (record_seq == 0 || journal_format_slot(record_seq) != slot)
		return JOURNAL_FORMAT_BAD_SEQ;
	for (uint32_t i = 0; i < JOURNAL_FORMAT_PAYLOAD_WORDS; i++)
		if (journal_format_get_u32(record + JOURNAL_FORMAT_OFF_PAYLOAD + 4 * i) !=
		    journal_format_pattern(record_boot_id, record_seq, i))
			return JOURNAL_FORMAT_BAD_PAYLOAD;
	if (boot_id != NULL)
		*boot_id = record_boot_id;
	if (seq != NULL)
		*seq = record_seq;
	if (tick != NULL)
		*tick = journal_format_get_u64(record + JOURNAL_FORMAT_OFF_TICK);
	return JOURNAL_FORMAT_VALID;
}

#endif /* HAVEN_JOURNAL_FORMAT_H */
