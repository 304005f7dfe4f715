/*
 * journal.c: the Linux guest's journal of acknowledged records on its disk, byte for byte
 * the toy guest's (../journal_format.h) and with its rules: resume after the highest valid
 * seq of any earlier boot, print "ack=<seq>" only once the record's write and a cache flush
 * both succeeded, and stop journaling for good at the first error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_format.h"
#include "service.h"

#define JOURNAL_ALIGN		4096	/* O_DIRECT buffers: any logical block size up to 4 KiB */
#define JOURNAL_REGION_BYTES	(JOURNAL_FORMAT_SLOTS * JOURNAL_FORMAT_SECTOR_SIZE)
#define JOURNAL_MIN_SECTORS	(JOURNAL_FORMAT_START_LBA + JOURNAL_FORMAT_SLOTS)
/*
 * How long to wait for the disk to appear. libata probes and sd attaches asynchronously
 * after insmod, so the disk may come a little after /init starts the service; a guest
 * without any disk pays this once per boot unless journal=off or haven.disk=none.
 */
#define JOURNAL_DISK_WAIT_MS	5000
#define JOURNAL_DISK_POLL_MS	50

static struct {
	int		 fd;
	int		 enabled;
	uint64_t	 boot_id;
	uint64_t	 next_seq;
	uint8_t		*record;	/* one sector, aligned for O_DIRECT */
	char		 device[SERVICE_DEVICE_MAX];
} journal = { .fd = -1 };

static void
journal_print_error(const char *op, uint64_t seq, int error)
{
	console_line("journal error seq=%llu op=%s errno=%d (%s)", (unsigned long long)seq, op,
	    error, strerror(error));
}

static void
journal_sleep_ms(unsigned ms)
{
	struct timespec delay = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&delay, &delay) == -1 && errno == EINTR)
		;
}

/* The first virtio (vd*) disk, else the first SCSI/ATA (sd*) one; 0 if one was found. */
static int
journal_find_disk(char *device, size_t size)
{
	static const char *const prefixes[] = { "vd", "sd" };
	char best[SERVICE_DEVICE_MAX] = "";
	struct dirent *entry;
	DIR *block;

	for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0] && best[0] == '\0'; p++) {
		block = opendir("/sys/block");
		if (block == NULL)
			return -1;
		while ((entry = readdir(block)) != NULL) {
			if (strncmp(entry->d_name, prefixes[p], 2) != 0 ||
			    strlen(entry->d_name) >= sizeof best - 5)
				continue;
			if (best[0] == '\0' || strcmp(entry->d_name, best) < 0)
				strcpy(best, entry->d_name);
		}
		closedir(block);
	}
	if (best[0] == '\0')
		return -1;
	snprintf(device, size, "/dev/%s", best);
	return access(device, F_OK);
}

/* Wait (bounded) for the configured disk; 0 with its path in journal.device if found. */
static int
journal_wait_disk(const char *wanted)
{
	for (unsigned waited = 0;; waited += JOURNAL_DISK_POLL_MS) {
		if (strcmp(wanted, "auto") == 0) {
			if (journal_find_disk(journal.device, sizeof journal.device) == 0)
				return 0;
		} else if (access(wanted, F_OK) == 0) {
			snprintf(journal.device, sizeof journal.device, "%s", wanted);
			return 0;
		}
		if (waited >= JOURNAL_DISK_WAIT_MS)
			return -1;
		journal_sleep_ms(JOURNAL_DISK_POLL_MS);
	}
}

/*
 * Find and open the disk. Prints the toy guest's "journal unavailable" lines when there
 * is none or it is too small. Returns 0 if the journal can start (journal_resume next).
 */
int
journal_open(const struct service_config *config, uint64_t boot_id)
{
	uint64_t bytes;
	void *record;

	journal.boot_id = boot_id;
	if (config->journal == 0)
		return -1;
	if (strcmp(config->disk, "none") == 0 || journal_wait_disk(config->disk) != 0) {
		if (config->journal == 1)
			console_line("journal unavailable reason=no-disk");
		return -1;
	}
	/* O_DIRECT: the record goes to the disk, not to the page cache; fdatasync flushes. */
	journal.fd = open(journal.device, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (journal.fd == -1) {
		journal_print_error("open", 0, errno);
		return -1;
	}
	if (ioctl(journal.fd, BLKGETSIZE64, &bytes) == -1) {
		journal_print_error("open", 0, errno);
		goto fail;
	}
	if (bytes / JOURNAL_FORMAT_SECTOR_SIZE < JOURNAL_MIN_SECTORS) {
		console_line("journal unavailable reason=disk-too-small sectors=%llu",
		    (unsigned long long)(bytes / JOURNAL_FORMAT_SECTOR_SIZE));
		goto fail;
	}
	if (posix_memalign(&record, JOURNAL_ALIGN, JOURNAL_FORMAT_SECTOR_SIZE) != 0) {
		journal_print_error("open", 0, ENOMEM);
		goto fail;
	}
	journal.record = record;
	return 0;

fail:
	close(journal.fd);
	journal.fd = -1;
	return -1;
}

const char *
journal_device(void)
{
	return journal.fd == -1 ? "none" : journal.device;
}

/*
 * Scan all slots for the highest valid seq from earlier boots and continue after it, so a
 * cold restart (perhaps on another host) never overwrites recent acknowledged records.
 */
int
journal_resume(void)
{
	uint64_t highest = 0, seq;
	uint8_t *region;
	ssize_t n;

	if (journal.fd == -1)
		return -1;
	if (posix_memalign((void **)&region, JOURNAL_ALIGN, JOURNAL_REGION_BYTES) != 0) {
		journal_print_error("scan", 0, ENOMEM);
		return -1;
	}
	n = pread(journal.fd, region, JOURNAL_REGION_BYTES,
	    (off_t)JOURNAL_FORMAT_START_LBA * JOURNAL_FORMAT_SECTOR_SIZE);
	if (n != JOURNAL_REGION_BYTES) {
		journal_print_error("scan", 0, n == -1 ? errno : EIO);
		free(region);
		return -1;
	}
	for (uint32_t slot = 0; slot < JOURNAL_FORMAT_SLOTS; slot++) {
		if (journal_format_check(region + slot * JOURNAL_FORMAT_SECTOR_SIZE, slot, NULL,
		    &seq, NULL) == JOURNAL_FORMAT_VALID && seq > highest)
			highest = seq;
	}
	free(region);
	journal.next_seq = highest + 1;
	journal.enabled = 1;
	console_line("journal resume seq=%llu", (unsigned long long)journal.next_seq);
	return 0;
}

/* Write, flush, then acknowledge one record; any error stops journaling for good. */
void
journal_append(uint64_t tick)
{
	uint64_t seq = journal.next_seq;
	ssize_t n;

	if (!journal.enabled)
		return;
	journal_format_fill(journal.record, journal.boot_id, seq, tick);
	do
		n = pwrite(journal.fd, journal.record, JOURNAL_FORMAT_SECTOR_SIZE,
		    (off_t)(JOURNAL_FORMAT_START_LBA + journal_format_slot(seq)) *
		    JOURNAL_FORMAT_SECTOR_SIZE);
	while (n == -1 && errno == EINTR);
	if (n != JOURNAL_FORMAT_SECTOR_SIZE) {
		journal_print_error("write", seq, n == -1 ? errno : EIO);
		journal.enabled = 0;
		return;
	}
	if (fdatasync(journal.fd) == -1) {
		journal_print_error("flush", seq, errno);
		journal.enabled = 0;
		return;
	}
	journal.next_seq = seq + 1;
	console_line("ack=%llu", (unsigned long long)seq);
}
