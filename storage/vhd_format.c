/*
 * The VHD byte layout (platform.md §1): geometry and size rules, checksums,
 * the footer and the dynamic header parsed from untrusted bytes and built
 * anew, the BAT's sanity scan, and writing a new image (vhd_create). The
 * image as a block device is in vhd.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common.h"
#include "storage.h"

/* §1.2: one's complement of the byte sum, the checksum field as zero. */
static uint32_t
vhd_checksum(const uint8_t *p, size_t len, size_t field)
{
	uint32_t	sum = 0;
	size_t		i;

	for (i = 0; i < len; i++) {
		if (i >= field && i < field + 4)
			continue;
		sum += p[i];
	}
	return ~sum;
}

void
vhd_set_checksum(uint8_t *p, size_t len, size_t field)
{
	be32_put(p + field, vhd_checksum(p, len, field));
}

/* The spec's CHS algorithm (§1.3), as QEMU's calculate_geometry(). */
static void
vhd_geometry(uint64_t ts, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t	spt, heads, cth;

	if (ts > VHD_CHS_MAX)
		ts = VHD_CHS_MAX;
	if (ts >= 65535ULL * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = ts / spt;
	} else {
		spt = 17;
		cth = ts / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cth = ts / spt;
		}
		if (cth >= heads * 1024) {
			spt = 63;
			heads = 16;
			cth = ts / spt;
		}
	}
	*c = (uint16_t)(cth / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}

/*
 * qemu-img's calculate_rounded_image_size(): round the size up until the
 * geometry covers it and make the size exactly C*H*S*512, so that every
 * reader (QEMU 7.2 by CHS, Hyper-V and newer QEMU by current_size) agrees.
 * Past the largest geometry the size is exact and the geometry maximal.
 * Returns the virtual size, or 0 if it is 0 or above 2040 GiB.
 */
uint64_t
vhd_round_size(uint64_t requested, uint16_t *cylinders, uint8_t *heads,
    uint8_t *sectors_per_track)
{
	uint64_t	sectors, want, i;
	uint16_t	c = 0;
	uint8_t		h = 0, s = 0;

	if (requested == 0 || requested > VHD_MAX_SECTORS * VHD_SECTOR)
		return 0;
	sectors = vhd_round_up(requested, VHD_SECTOR) / VHD_SECTOR;
	want = sectors < VHD_CHS_MAX ? sectors : VHD_CHS_MAX;
	for (i = 0; want > (uint64_t)c * h * s; i++)
		vhd_geometry(want + i, &c, &h, &s);
	*cylinders = c;
	*heads = h;
	*sectors_per_track = s;
	if ((uint64_t)c * h * s == VHD_CHS_MAX)
		return sectors * VHD_SECTOR;
	return (uint64_t)c * h * s * VHD_SECTOR;
}

/*
 * The exact size in whole sectors. Its geometry is the rounded one when the
 * size falls on it (an image qemu-img made without force_size keeps its
 * footer); otherwise the maximal geometry, which QEMU 7.2 reads as "use
 * current_size" whatever the creator, as newer QEMU and Hyper-V always do:
 * every reader then agrees on the exact size. The spec's CHS of a size below
 * it (Hyper-V's choice, with its creator "win ") would make QEMU 7.2 read
 * our creator's image short. Returns 0 as vhd_round_size does.
 */
uint64_t
vhd_exact_size(uint64_t requested, uint16_t *cylinders, uint8_t *heads,
    uint8_t *sectors_per_track)
{
	uint64_t	size;

	if ((size = vhd_round_size(requested, cylinders, heads,
	    sectors_per_track)) == 0)
		return 0;
	requested = vhd_round_up(requested, VHD_SECTOR);
	if (size == requested)
		return size;
	*cylinders = 65535;
	*heads = 16;
	*sectors_per_track = 255;
	return requested;
}

static uint64_t
vhd_size_for(uint64_t requested, enum vhd_size_rule rule, uint16_t *c,
    uint8_t *h, uint8_t *s)
{
	if (rule == VHD_SIZE_EXACT)
		return vhd_exact_size(requested, c, h, s);
	return vhd_round_size(requested, c, h, s);
}

/* QEMU 7.2's rule for the virtual size (§1.3): these creators and the
 * maximal geometry mean current_size, everything else C*H*S. */
static uint64_t
vhd_virtual_size(const struct vhd_info *info)
{
	static const char by_size[][4] = { "win ", "qem2", "d2v ", "CTXS",
	    { 't', 'a', 'p', '\0' } };
	uint64_t	chs;
	size_t		i;

	chs = (uint64_t)info->cylinders * info->heads * info->sectors_per_track;
	for (i = 0; i < sizeof by_size / sizeof by_size[0]; i++) {
		if (memcmp(info->creator, by_size[i], 4) == 0)
			chs = VHD_CHS_MAX;
	}
	if (chs == VHD_CHS_MAX)
		return info->current_size / VHD_SECTOR * VHD_SECTOR;
	return chs * VHD_SECTOR;
}

int
vhd_size_agrees(const struct vhd_info *info, uint64_t *other)
{
	uint64_t	by_current = info->current_size / VHD_SECTOR * VHD_SECTOR;

	*other = by_current;
	return info->virtual_size == by_current;
}

/*
 * Parse and validate a footer. 0, STORAGE_E_CORRUPT with *why set, or
 * STORAGE_E_UNSUPPORTED for a valid differencing footer.
 */
int
vhd_footer_parse(const uint8_t *raw, struct vhd_info *info, const char **why)
{
	uint32_t	type;

	memset(info, 0, sizeof *info);
	if (memcmp(raw + VHD_F_COOKIE, "conectix", 8) != 0) {
		*why = "no VHD footer (cookie 'conectix' missing)";
		return STORAGE_E_CORRUPT;
	}
	if (be32_get(raw + VHD_F_CHECKSUM) != vhd_checksum(raw, VHD_FOOTER_SIZE,
	    VHD_F_CHECKSUM)) {
		*why = "footer checksum mismatch";
		return STORAGE_E_CORRUPT;
	}
	type = be32_get(raw + VHD_F_TYPE);
	if (type == 4) {
		*why = "differencing VHDs are not supported; merge it with "
		    "'qemu-img convert -O vpc' first";
		return STORAGE_E_UNSUPPORTED;
	}
	if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC) {
		*why = "footer has an unknown disk type";
		return STORAGE_E_CORRUPT;
	}
	info->type = (enum vhd_type)type;
	info->current_size = be64_get(raw + VHD_F_CUR_SIZE);
	info->cylinders = (uint16_t)(raw[VHD_F_GEOMETRY] << 8 |
	    raw[VHD_F_GEOMETRY + 1]);
	info->heads = raw[VHD_F_GEOMETRY + 2];
	info->sectors_per_track = raw[VHD_F_GEOMETRY + 3];
	memcpy(info->creator, raw + VHD_F_CREATOR, 4);
	info->creator[4] = '\0';
	memcpy(info->uuid, raw + VHD_F_UUID, 16);
	info->virtual_size = vhd_virtual_size(info);
	if (info->virtual_size == 0) {
		*why = "footer geometry and size describe an empty disk";
		return STORAGE_E_CORRUPT;
	}
	if (info->virtual_size > VHD_MAX_SECTORS * VHD_SECTOR) {
		*why = "footer size is above the VHD limit of 2040 GiB";
		return STORAGE_E_CORRUPT;
	}
	return 0;
}

/* Parse and validate the dynamic header against the footer and backing. */
int
vhd_header_parse(const uint8_t *raw, const struct vhd_info *info,
    uint64_t data_offset, uint64_t backing_size, struct vhd_layout *l,
    const char **why)
{
	memset(l, 0, sizeof *l);
	if (memcmp(raw + VHD_H_COOKIE, "cxsparse", 8) != 0) {
		*why = "dynamic header cookie 'cxsparse' missing";
		return STORAGE_E_CORRUPT;
	}
	if (be32_get(raw + VHD_H_CHECKSUM) != vhd_checksum(raw, VHD_HEADER_SIZE,
	    VHD_H_CHECKSUM)) {
		*why = "dynamic header checksum mismatch";
		return STORAGE_E_CORRUPT;
	}
	l->data_offset = data_offset;
	l->table_offset = be64_get(raw + VHD_H_TABLE_OFFSET);
	l->entries = be32_get(raw + VHD_H_MAX_ENTRIES);
	l->block_size = be32_get(raw + VHD_H_BLOCK_SIZE);
	if (l->block_size < VHD_SECTOR || l->block_size > VHD_MAX_BLOCK_SIZE ||
	    (l->block_size & (l->block_size - 1)) != 0) {
		*why = "dynamic header block size is not a power of 2 between "
		    "512 B and 256 MiB";
		return STORAGE_E_CORRUPT;
	}
	if ((uint64_t)l->entries * l->block_size < info->virtual_size) {
		*why = "BAT has too few entries for the disk size";
		return STORAGE_E_CORRUPT;
	}
	l->bitmap_size = (uint32_t)vhd_round_up(l->block_size / VHD_SECTOR /
	    8, VHD_SECTOR);
	l->bat_bytes = vhd_round_up((uint64_t)l->entries * 4, VHD_SECTOR);
	if (l->bat_bytes > VHD_MAX_BAT_BYTES) {
		*why = "BAT is implausibly large (over 64 MiB)";
		return STORAGE_E_CORRUPT;
	}
	if (l->table_offset % VHD_SECTOR != 0 ||
	    l->table_offset < VHD_FOOTER_SIZE ||
	    l->table_offset > backing_size ||
	    l->bat_bytes > backing_size - l->table_offset) {
		*why = "BAT lies outside the image";
		return STORAGE_E_CORRUPT;
	}
	if (l->table_offset < data_offset + VHD_HEADER_SIZE &&
	    data_offset < l->table_offset + l->bat_bytes) {
		*why = "BAT overlaps the dynamic header";
		return STORAGE_E_CORRUPT;
	}
	l->meta_end = l->table_offset + l->bat_bytes;
	if (data_offset + VHD_HEADER_SIZE > l->meta_end)
		l->meta_end = data_offset + VHD_HEADER_SIZE;
	return 0;
}

static int
vhd_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Walk the BAT: where data ends (QEMU's free_data_block_offset), entries
 * pointing into the metadata or past the backing, and blocks that overlap.
 */
int
vhd_bat_scan(const uint32_t *bat, const struct vhd_layout *l,
    uint64_t backing_size, struct vhd_scan *s)
{
	uint64_t	 span = (uint64_t)l->bitmap_size + l->block_size;
	uint64_t	 start;
	uint32_t	*sorted, i, n = 0;

	memset(s, 0, sizeof *s);
	s->end = l->meta_end;
	if ((sorted = malloc(((size_t)l->entries + 1) * sizeof *sorted)) ==
	    NULL)
		return -ENOMEM;
	for (i = 0; i < l->entries; i++) {
		if (bat[i] == VHD_UNALLOCATED)
			continue;
		s->allocated++;
		start = (uint64_t)bat[i] * VHD_SECTOR;
		if (start < l->meta_end || start + span > backing_size) {
			if (s->out_of_range++ == 0)
				s->first_bad = i;
			continue;
		}
		if (start + span > s->end)
			s->end = start + span;
		sorted[n++] = bat[i];
	}
	qsort(sorted, n, sizeof *sorted, vhd_cmp_u32);
	for (i = 1; i < n; i++) {
		if ((uint64_t)(sorted[i] - sorted[i - 1]) * VHD_SECTOR < span)
			s->overlaps++;
	}
	free(sorted);
	return 0;
}

/* Build a footer for a new image. */
static void
vhd_footer_build(uint8_t *raw, enum vhd_type type, uint64_t size,
    uint16_t c, uint8_t h, uint8_t s)
{
	time_t	now = time(NULL);

	memset(raw, 0, VHD_FOOTER_SIZE);
	memcpy(raw + VHD_F_COOKIE, "conectix", 8);
	be32_put(raw + VHD_F_FEATURES, 2);
	be32_put(raw + VHD_F_VERSION, 0x00010000);
	be64_put(raw + VHD_F_DATA_OFFSET, type == VHD_TYPE_FIXED ?
	    VHD_FIXED_DATA_OFFSET : VHD_HEADER_OFFSET);
	be32_put(raw + VHD_F_TIMESTAMP, now > VHD_TIMESTAMP_BASE ?
	    (uint32_t)(now - VHD_TIMESTAMP_BASE) : 0);
	memcpy(raw + VHD_F_CREATOR, VHD_CREATOR, 4);
	be32_put(raw + VHD_F_CREATOR_VER, VHD_CREATOR_VERSION);
	memcpy(raw + VHD_F_CREATOR_OS, "Wi2k", 4);
	be64_put(raw + VHD_F_ORIG_SIZE, size);
	be64_put(raw + VHD_F_CUR_SIZE, size);
	raw[VHD_F_GEOMETRY] = (uint8_t)(c >> 8);
	raw[VHD_F_GEOMETRY + 1] = (uint8_t)c;
	raw[VHD_F_GEOMETRY + 2] = h;
	raw[VHD_F_GEOMETRY + 3] = s;
	be32_put(raw + VHD_F_TYPE, type);
	if (getrandom(raw + VHD_F_UUID, 16, 0) != 16) {
		/* Unique enough for a label nobody keys on. */
		be64_put(raw + VHD_F_UUID, (uint64_t)now);
	}
	raw[VHD_F_UUID + 6] = (raw[VHD_F_UUID + 6] & 0x0f) | 0x40;
	raw[VHD_F_UUID + 8] = (raw[VHD_F_UUID + 8] & 0x3f) | 0x80;
	vhd_set_checksum(raw, VHD_FOOTER_SIZE, VHD_F_CHECKSUM);
}

/* ---- create ----------------------------------------------------------- */

struct vhd_creator {
	struct blockdev	*backing;
	blockdev_cb	 cb;
	void		*arg;
	uint8_t		*buf;
	uint64_t	 footer_at;	/* fixed: virtual size */
	int		 step;
	int		 pending;
	int		 result;
};

static void vhd_create_next(struct vhd_creator *);

static void
vhd_create_cb(int result, void *arg)
{
	struct vhd_creator	*cr = arg;

	if (result != 0 && cr->result == 0)
		cr->result = result;
	if (--cr->pending == 0)
		vhd_create_next(cr);
}

static void
vhd_create_next(struct vhd_creator *cr)
{
	struct blockdev	*b = cr->backing;

	if (cr->result != 0)
		cr->step = -1;
	switch (cr->step++) {
	case 0:
		/* Fixed: the data area reads zero, then the footer at its
		 * end; a copy at the end of a larger backing lets open find
		 * it (§1.6.4). */
		cr->pending = 1;
		blockdev_zero(b, 0, cr->footer_at, 0, vhd_create_cb, cr);
		return;
	case 1:
		cr->pending = 1;
		if (cr->footer_at + VHD_FOOTER_SIZE < b->size) {
			cr->pending++;
			blockdev_write(b, b->size - VHD_FOOTER_SIZE, cr->buf,
			    VHD_FOOTER_SIZE, 0, vhd_create_cb, cr);
		}
		blockdev_write(b, cr->footer_at, cr->buf, VHD_FOOTER_SIZE, 0,
		    vhd_create_cb, cr);
		return;
	case 2:
		cr->pending = 1;
		blockdev_flush(b, vhd_create_cb, cr);
		return;
	default:
		cr->cb(cr->result, cr->arg);
		free(cr->buf);
		free(cr);
		return;
	}
}

static void
vhd_create_fail_cb(int result, void *arg)
{
	struct vhd_creator	*cr = arg;

	cr->result = result;
	cr->step = -1;
	vhd_create_next(cr);
}

/*
 * Write a new, empty VHD of at least size bytes (rounded as qemu-img does,
 * or exact: enum vhd_size_rule) over the start of backing. Dynamic: footer copy at 0, header at 512, BAT
 * at 1536, footer at the end of the BAT. Fixed: zeroed data and the footer
 * at the virtual size (plus a copy at the end of a larger backing).
 */
void
vhd_create(struct blockdev *backing, enum vhd_type type, uint64_t size,
    enum vhd_size_rule rule, blockdev_cb cb, void *arg)
{
	struct vhd_creator	*cr;
	uint64_t		 vsize, bat_bytes, total;
	uint32_t		 entries;
	uint16_t		 c;
	uint8_t			 h, s, *hdr;
	int			 error = 0;

	if ((cr = calloc(1, sizeof *cr)) == NULL)
		abort();
	cr->backing = backing;
	cr->cb = cb;
	cr->arg = arg;
	vsize = vhd_size_for(size, rule, &c, &h, &s);
	if (vsize == 0 || (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC)) {
		error = -EINVAL;
		goto fail;
	}
	if (type == VHD_TYPE_FIXED) {
		if (backing->size < VHD_FOOTER_SIZE ||
		    vsize > backing->size - VHD_FOOTER_SIZE) {
			error = -ENOSPC;
			goto fail;
		}
		if ((cr->buf = malloc(VHD_FOOTER_SIZE)) == NULL)
			abort();
		vhd_footer_build(cr->buf, type, vsize, c, h, s);
		cr->footer_at = vsize;
		vhd_create_next(cr);
		return;
	}
	entries = (uint32_t)((vsize + VHD_BLOCK_SIZE - 1) / VHD_BLOCK_SIZE);
	bat_bytes = vhd_round_up((uint64_t)entries * 4, VHD_SECTOR);
	total = VHD_BAT_OFFSET + bat_bytes + VHD_FOOTER_SIZE;
	if (total > backing->size) {
		error = -ENOSPC;
		goto fail;
	}
	if ((cr->buf = malloc(total)) == NULL)
		abort();
	memset(cr->buf, 0, VHD_BAT_OFFSET);
	vhd_footer_build(cr->buf, type, vsize, c, h, s);
	hdr = cr->buf + VHD_HEADER_OFFSET;
	memcpy(hdr + VHD_H_COOKIE, "cxsparse", 8);
	be64_put(hdr + VHD_H_DATA_OFFSET, 0xffffffffffffffffULL);
	be64_put(hdr + VHD_H_TABLE_OFFSET, VHD_BAT_OFFSET);
	be32_put(hdr + VHD_H_VERSION, 0x00010000);
	be32_put(hdr + VHD_H_MAX_ENTRIES, entries);
	be32_put(hdr + VHD_H_BLOCK_SIZE, VHD_BLOCK_SIZE);
	vhd_set_checksum(hdr, VHD_HEADER_SIZE, VHD_H_CHECKSUM);
	memset(cr->buf + VHD_BAT_OFFSET, 0xff, bat_bytes);
	memcpy(cr->buf + total - VHD_FOOTER_SIZE, cr->buf, VHD_FOOTER_SIZE);
	/* One write of all metadata, then the flush (step 2). */
	cr->step = 2;
	cr->pending = 1;
	blockdev_write(backing, 0, cr->buf, total, 0, vhd_create_cb, cr);
	return;
fail:
	blockdev_complete_later(backing, vhd_create_fail_cb, cr, error);
}


uint64_t
vhd_max_backing_size(enum vhd_type type, uint64_t size,
    enum vhd_size_rule rule)
{
	uint64_t	vsize, entries;
	uint16_t	c;
	uint8_t		h, s;

	if ((vsize = vhd_size_for(size, rule, &c, &h, &s)) == 0)
		return 0;
	if (type == VHD_TYPE_FIXED)
		return vsize + VHD_FOOTER_SIZE;
	entries = (vsize + VHD_BLOCK_SIZE - 1) / VHD_BLOCK_SIZE;
	return VHD_BAT_OFFSET + vhd_round_up(entries * 4, VHD_SECTOR) +
	    entries * (VHD_DATA_ALIGN + VHD_BLOCK_SIZE) + VHD_DATA_ALIGN +
	    VHD_FOOTER_SIZE;
}