/*
 * How a VM boots (VmConfig.firmware, cdrom, boot_order): the firmware
 * names, the boot order's syntax, and the checks apply makes. Shared by
 * havenctl (its usage errors), havend (apply) and the worker (QEMU's
 * bootindex).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "tree.h"

static const char *const boot_device_names[BOOT_NDEVICES] = {
	[BOOT_DISK] = "disk",
	[BOOT_CDROM] = "cdrom",
};

/* "" (the default) and "bios" are SeaBIOS, "uefi" is OVMF. */
int
boot_firmware_valid(const char *s)
{
	return s == NULL || *s == '\0' || strcmp(s, "bios") == 0 ||
	    strcmp(s, "uefi") == 0;
}

int
boot_firmware_uefi(const char *s)
{
	return s != NULL && strcmp(s, "uefi") == 0;
}

const char *
boot_firmware_name(const char *s)
{
	return boot_firmware_uefi(s) ? "uefi" : "bios";
}

/*
 * "disk,cdrom": order[0..n) gets the devices in the order they are tried;
 * returns n (0 for ""), or -1 for an unknown device or one named twice.
 */
int
boot_order_parse(const char *s, enum boot_device order[BOOT_NDEVICES])
{
	const char	*p = s, *end;
	size_t		 len;
	int		 n = 0, i, seen = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (;;) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < BOOT_NDEVICES; i++)
			if (strlen(boot_device_names[i]) == len &&
			    strncmp(p, boot_device_names[i], len) == 0)
				break;
		if (i == BOOT_NDEVICES || (seen & (1 << i)) || n ==
		    BOOT_NDEVICES)
			return -1;
		seen |= 1 << i;
		order[n++] = (enum boot_device)i;
		if (end == NULL)
			return n;
		p = end + 1;
	}
}

static int
boot_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The three fields on their own; -1 with a sentence for the operator. */
int
boot_config_check(const Haven__VmConfig *vc, char *err, size_t errlen)
{
	enum boot_device	order[BOOT_NDEVICES];

	if (!boot_firmware_valid(vc->firmware))
		return boot_fail(err, errlen, "VM %s: firmware '%.32s' is "
		    "neither bios nor uefi", vc->name,
		    tree_printable(vc->firmware));
	if (vc->cdrom != NULL && *vc->cdrom != '\0' &&
	    !tree_path_valid(vc->cdrom))
		return boot_fail(err, errlen, "VM %s: the cdrom must be an "
		    "absolute path without '..' or control characters",
		    vc->name);
	if (boot_order_parse(vc->boot_order, order) == -1)
		return boot_fail(err, errlen, "VM %s: boot order '%.64s' is "
		    "not a list of disk and cdrom, each at most once (e.g. "
		    "disk,cdrom)", vc->name, tree_printable(vc->boot_order));
	return 0;
}
