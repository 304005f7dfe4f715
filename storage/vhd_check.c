/*
 * Check and repair of a VHD on its backing (havenctl disk check): find
 * damage to the footers, the dynamic header and the BAT and, with repair,
 * fix what is safely fixable (checksums, one footer from the other).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "storage.h"

static void
vhd_check_note(struct vhd_check_report *rep, int repaired,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
vhd_check_note(struct vhd_check_report *rep, int repaired,
    const char *fmt, ...)
{
	char	text[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	rep->problems++;
	if (repaired)
		rep->repaired++;
	if (rep->problem != NULL)
		rep->problem(text, repaired, rep->arg);
}

/* A footer whose only fault is its checksum: fix it in raw and say so. */
static int
vhd_check_fixable_footer(uint8_t *raw, struct vhd_info *info)
{
	uint8_t		 fixed[VHD_FOOTER_SIZE];
	const char	*why;

	if (memcmp(raw, "conectix", 8) != 0)
		return 0;
	memcpy(fixed, raw, sizeof fixed);
	vhd_set_checksum(fixed, sizeof fixed, VHD_F_CHECKSUM);
	if (vhd_footer_parse(fixed, info, &why) != 0)
		return 0;
	memcpy(raw, fixed, sizeof fixed);
	return 1;
}

static int
vhd_check_fixed(struct blockdev *b, int repair, struct vhd_check_report *rep)
{
	uint8_t		 tail[VHD_FOOTER_SIZE], at[VHD_FOOTER_SIZE];
	struct vhd_info	 info;
	const char	*why;
	uint64_t	 end = b->size - VHD_FOOTER_SIZE;
	int		 error, bad_sum = 0;

	if ((error = blockdev_read_sync(b, end, tail, sizeof tail)) != 0)
		return error;
	error = vhd_footer_parse(tail, &info, &why);
	if (error != 0 && vhd_check_fixable_footer(tail, &info)) {
		bad_sum = 1;
		error = 0;
	}
	if (error != 0) {
		vhd_check_note(rep, 0, "%s", memcmp(tail, "conectix", 8) != 0 ?
		    "no VHD here: no footer at offset 0 or at the end" : why);
		return 0;
	}
	rep->type = info.type;
	if (info.type != VHD_TYPE_FIXED) {
		vhd_check_note(rep, 0, "dynamic VHD footer at the end, but no "
		    "footer copy at offset 0");
		return 0;
	}
	if (info.virtual_size > end) {
		vhd_check_note(rep, 0, "fixed VHD of %llu bytes does not fit "
		    "its backing (image has been truncated)",
		    (unsigned long long)info.virtual_size);
		return 0;
	}
	if (bad_sum) {
		error = repair ? blockdev_write_sync(b, end, tail, sizeof tail,
		    0) : 0;
		if (error != 0)
			return error;
		vhd_check_note(rep, repair, "footer checksum mismatch%s",
		    repair ? ": checksum rewritten" : "");
	}
	if (info.virtual_size == end)
		return 0;
	/* On a larger backing the real footer is at the virtual size. */
	if ((error = blockdev_read_sync(b, info.virtual_size, at,
	    sizeof at)) != 0)
		return error;
	if (memcmp(at, tail, sizeof at) != 0) {
		error = repair ? blockdev_write_sync(b, info.virtual_size,
		    tail, sizeof tail, 0) : 0;
		if (error != 0)
			return error;
		vhd_check_note(rep, repair, "footer at the end of the virtual "
		    "disk (offset %llu) is missing or differs from the copy at "
		    "the end of the backing%s",
		    (unsigned long long)info.virtual_size,
		    repair ? ": rewritten" : "");
	}
	return 0;
}

/*
 * A dynamic image, checked in the order a reader comes to trust its bytes:
 * the footer copy at 0, the dynamic header, the BAT, the footer at the end.
 * Kept in one function (a little over 120 lines) because each step feeds
 * the next its layout and buffers and every finding goes to one report.
 */
static int
vhd_check_dynamic(struct blockdev *b, uint8_t *copy, int repair,
    struct vhd_check_report *rep)
{
	uint8_t			 hdr[VHD_HEADER_SIZE], tail[VHD_FOOTER_SIZE];
	uint8_t			*batbuf = NULL;
	uint32_t		*bat = NULL, i;
	struct vhd_info		 info, tinfo;
	struct vhd_layout	 l;
	struct vhd_scan		 scan;
	const char		*why;
	uint64_t		 data_offset;
	int			 error, copy_ok, tail_ok, fixed_copy = 0;

	copy_ok = (error = vhd_footer_parse(copy, &info, &why)) == 0 &&
	    info.type == VHD_TYPE_DYNAMIC;
	if (error == STORAGE_E_UNSUPPORTED) {
		vhd_check_note(rep, 0, "%s", why);
		return 0;
	}
	if (!copy_ok && error != 0 && vhd_check_fixable_footer(copy, &info) &&
	    info.type == VHD_TYPE_DYNAMIC)
		fixed_copy = 1;
	if (!copy_ok && !fixed_copy) {
		vhd_check_note(rep, 0, "footer copy at offset 0: %s",
		    error != 0 ? why : "not a dynamic disk");
		/* Still try the header with its data offset, to find the
		 * trailing footer and say more. */
	}
	rep->type = VHD_TYPE_DYNAMIC;
	data_offset = be64_get(copy + VHD_F_DATA_OFFSET);
	if (data_offset % VHD_SECTOR != 0 || data_offset < VHD_FOOTER_SIZE ||
	    data_offset > b->size || b->size - data_offset < VHD_HEADER_SIZE) {
		vhd_check_note(rep, 0, "dynamic header offset %llu lies outside "
		    "the image", (unsigned long long)data_offset);
		return 0;
	}
	if ((error = blockdev_read_sync(b, data_offset, hdr, sizeof hdr)) != 0)
		return error;
	if (!copy_ok && !fixed_copy)
		info.virtual_size = 0;	/* unknown: skip the size test */
	error = vhd_header_parse(hdr, &info, data_offset, b->size, &l, &why);
	if (error != 0 && memcmp(hdr, "cxsparse", 8) == 0) {
		vhd_set_checksum(hdr, sizeof hdr, VHD_H_CHECKSUM);
		if (vhd_header_parse(hdr, &info, data_offset, b->size, &l,
		    &why) == 0) {
			error = repair ? blockdev_write_sync(b, data_offset,
			    hdr, sizeof hdr, 0) : 0;
			if (error != 0)
				return error;
			vhd_check_note(rep, repair, "dynamic header checksum "
			    "mismatch%s", repair ? ": checksum rewritten" : "");
		}
	}
	if (error != 0) {
		vhd_check_note(rep, 0, "%s", why);
		return 0;
	}
	if ((batbuf = malloc(l.bat_bytes)) == NULL ||
	    (bat = calloc(l.entries, sizeof *bat)) == NULL) {
		error = -ENOMEM;
		goto out;
	}
	if ((error = blockdev_read_sync(b, l.table_offset, batbuf,
	    l.bat_bytes)) != 0)
		goto out;
	for (i = 0; i < l.entries; i++)
		bat[i] = be32_get(batbuf + (size_t)i * 4);
	if ((error = vhd_bat_scan(bat, &l, b->size, &scan)) != 0)
		goto out;
	if (scan.out_of_range > 0)
		vhd_check_note(rep, 0, "%u BAT entries point beyond the image or "
		    "into its metadata (first: block %u; image has been "
		    "truncated?)", scan.out_of_range, scan.first_bad);
	if (scan.overlaps > 0)
		vhd_check_note(rep, 0, "%u blocks overlap other blocks",
		    scan.overlaps);

	/* The trailing footer, at the end of data (QEMU's convention). */
	tail_ok = 0;
	if (scan.end + VHD_FOOTER_SIZE <= b->size) {
		if ((error = blockdev_read_sync(b, scan.end, tail,
		    sizeof tail)) != 0)
			goto out;
		tail_ok = vhd_footer_parse(tail, &tinfo, &why) == 0 &&
		    tinfo.type == VHD_TYPE_DYNAMIC;
	}
	error = 0;
	if (!copy_ok && tail_ok) {
		error = repair ? blockdev_write_sync(b, 0, tail, sizeof tail, 0)
		    : 0;
		vhd_check_note(rep, repair, "footer copy at offset 0 is "
		    "damaged%s", repair ? ": rewritten from the trailing "
		    "footer" : "");
	} else if (!copy_ok && fixed_copy) {
		error = repair ? blockdev_write_sync(b, 0, copy, VHD_FOOTER_SIZE,
		    0) : 0;
		vhd_check_note(rep, repair, "footer checksum mismatch%s",
		    repair ? ": checksum rewritten" : "");
		copy_ok = repair;
	}
	if (error != 0)
		goto out;
	if (copy_ok && (!tail_ok || memcmp(copy, tail, sizeof tail) != 0)) {
		if (scan.end + VHD_FOOTER_SIZE > b->size) {
			vhd_check_note(rep, 0, "trailing footer missing and no "
			    "room for it after the data at offset %llu",
			    (unsigned long long)scan.end);
		} else {
			error = repair ? blockdev_write_sync(b, scan.end, copy,
			    VHD_FOOTER_SIZE, 0) : 0;
			vhd_check_note(rep, repair, "trailing footer at offset "
			    "%llu is %s%s", (unsigned long long)scan.end,
			    tail_ok ? "different from the copy at offset 0" :
			    "missing or invalid",
			    repair ? ": rewritten from the copy" : "");
		}
	}
out:
	free(batbuf);
	free(bat);
	return error;
}

/*
 * Check the VHD on backing and, with repair, fix what is safely fixable:
 * checksums of otherwise valid structures, a damaged footer copy or
 * trailing footer from the other one. Every finding goes to rep->problem.
 * 0 when the check ran (see rep), or a negative error if it could not.
 */
int
vhd_check_sync(struct blockdev *backing, int repair,
    struct vhd_check_report *rep)
{
	uint8_t	copy[VHD_FOOTER_SIZE];
	int	error;

	rep->problems = rep->repaired = 0;
	rep->type = 0;
	if (backing->size < 2 * VHD_FOOTER_SIZE) {
		vhd_check_note(rep, 0, "too small to hold a VHD");
		return 0;
	}
	if ((error = blockdev_read_sync(backing, 0, copy, sizeof copy)) != 0)
		return error;
	if (memcmp(copy, "conectix", 8) == 0 &&
	    be32_get(copy + VHD_F_TYPE) != VHD_TYPE_FIXED)
		error = vhd_check_dynamic(backing, copy, repair, rep);
	else
		error = vhd_check_fixed(backing, repair, rep);
	if (error == 0 && rep->repaired > 0)
		error = blockdev_flush_sync(backing);
	return error;
}
