/*
 * efivar.c: under UEFI, one variable of the guest's own (HavenBoot) that
 * each boot reads and then sets to its boot id, with one console line
 * ("efivar was=<id of an earlier boot, or none> now=<this boot's>"), so a
 * test sees that the firmware's variables outlived a move of the VM. Under
 * BIOS (no /sys/firmware/efi) it says nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "service.h"

#define EFIVAR_DIR	"/sys/firmware/efi/efivars"
#define EFIVAR_PATH	EFIVAR_DIR "/HavenBoot-5b2d8c1e-7a4f-4e0b-9c3d-6f1a2b3c4d5e"
/* Non-volatile, boot service and runtime access. */
#define EFIVAR_ATTRIBUTES	0x7

void
efivar_boot(uint64_t boot_id)
{
	char		was[64] = "none", buf[4 + 64];
	uint32_t	attributes = EFIVAR_ATTRIBUTES;
	ssize_t		n;
	int		fd, flags;

	if (access("/sys/firmware/efi", F_OK) == -1)
		return;
	if (mount("efivarfs", EFIVAR_DIR, "efivarfs", 0, NULL) == -1 &&
	    errno != EBUSY) {
		console_line("efivar error mount: %s", strerror(errno));
		return;
	}
	if ((fd = open(EFIVAR_PATH, O_RDONLY)) != -1) {
		n = read(fd, buf, sizeof buf - 1);
		if (n > 4) {
			buf[n] = '\0';
			snprintf(was, sizeof was, "%s", buf + 4);
		}
		/* efivarfs files are immutable: clear that to rewrite. */
		if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
			flags &= ~FS_IMMUTABLE_FL;
			(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
		}
		close(fd);
	}
	/* Attributes and data in one write, as efivarfs wants them. */
	memcpy(buf, &attributes, 4);
	n = snprintf(buf + 4, sizeof buf - 4, "%016llx", (unsigned long long)boot_id);
	if ((fd = open(EFIVAR_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, buf, 4 + (size_t)n) != 4 + n) {
		console_line("efivar error write: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	close(fd);
	console_line("efivar was=%s now=%016llx", was, (unsigned long long)boot_id);
}
