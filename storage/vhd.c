/*
 * VHD images (fixed and dynamic) on any block device, served as the raw
 * virtual disk through the blockdev ops. Byte layout, size rules and the
 * corruption pitfalls we avoid are in platform.md §1; every byte read from
 * the backing is untrusted and validated before use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>

#include "common.h"
#include "storage.h"

#define VHD_HEADER_OFFSET	512
#define VHD_BAT_OFFSET		1536
#define VHD_BLOCK_SIZE		(2U << 20)
#define VHD_MAX_BLOCK_SIZE	(256U << 20)
#define VHD_MAX_BAT_BYTES	(64U << 20)
#define VHD_UNALLOCATED		0xffffffffU
#define VHD_MAX_SECTORS		0xff000000ULL		/* 2040 GiB */
#define VHD_CHS_MAX		(65535ULL * 16 * 255)
#define VHD_DATA_ALIGN		4096			/* §1.6.6 */
#define VHD_TIMESTAMP_BASE	946684800
#define VHD_CREATOR		"hvn "
#define VHD_CREATOR_VERSION	0x00010000U
#define VHD_FIXED_DATA_OFFSET	0xffffffffffffffffULL

/* A guest write piece waiting for its block to be allocated. */
struct vhd_piece {
	TAILQ_ENTRY(vhd_piece)	 entry;
	struct vhd_request	*req;
	uint64_t		 offset;	/* virtual */
	const uint8_t		*buf;
	size_t			 len;
	unsigned		 flags;
};
TAILQ_HEAD(vhd_pieces, vhd_piece);

/* One guest request, split into per-block pieces. */
struct vhd_request {
	struct vhd	*vhd;
	blockdev_cb	 cb;
	void		*arg;
	int		 pending;
	int		 result;
};

/* Allocation of one dynamic block; one runs at a time (§1.6.3). */
struct vhd_alloc {
	TAILQ_ENTRY(vhd_alloc)	 entry;
	struct vhd		*vhd;
	uint32_t		 block;
	uint64_t		 bitmap_offset;
	uint64_t		 new_end;
	int			 step;
	int			 pending;
	int			 result;
	struct vhd_pieces	 written;	/* data went with the block */
	struct vhd_pieces	 waiting;	/* joined late: reissued */
	uint8_t			 sector[VHD_SECTOR];
};

struct vhd {
	struct blockdev		 dev;
	struct blockdev		*backing;
	int			 writable;
	struct vhd_info		 info;
	uint8_t			 footer[VHD_FOOTER_SIZE];
	uint64_t		 data_offset;	/* of the dynamic header */
	uint64_t		 table_offset;
	uint32_t		 bitmap_size;
	uint32_t		*bat;		/* host order */
	uint64_t		 free_offset;	/* end of data = footer */
	uint8_t			*ones;		/* an all-ones bitmap */
	TAILQ_HEAD(, vhd_alloc)	 allocs;	/* first is running */
};

static const struct blockdev_ops vhd_fixed_ops;
static const struct blockdev_ops vhd_dynamic_ops;

static uint64_t
vhd_round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

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
 * Write a new, empty VHD of at least size bytes (rounded as qemu-img does)
 * over the start of backing. Dynamic: footer copy at 0, header at 512, BAT
 * at 1536, footer at the end of the BAT. Fixed: zeroed data and the footer
 * at the virtual size (plus a copy at the end of a larger backing).
 */
void
vhd_create(struct blockdev *backing, enum vhd_type type, uint64_t size,
    blockdev_cb cb, void *arg)
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
	vsize = vhd_round_size(size, &c, &h, &s);
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

/* ---- open ------------------------------------------------------------- */

struct vhd_opener {
	struct vhd	*vhd;
	vhd_open_cb	 cb;
	void		*arg;
	int		 step;
	uint8_t		 buf[VHD_HEADER_SIZE];
	uint8_t		 first_buf[8];	/* offset 0's cookie */
	int		 first_error;
	const char	*first_why;
	int		 not_vhd;	/* no footer anywhere */
	uint8_t		*batbuf;
	struct vhd_layout layout;
};

static void
vhd_free(struct vhd *v)
{
	free(v->bat);
	free(v->ones);
	free(v);
}

static void
vhd_open_finish(struct vhd_opener *o, int result, const char *why)
{
	struct vhd	*v = o->vhd;

	if (result != 0) {
		/* No VHD at all is an answer (disk create asks), not a
		 * warning; anything else is. */
		if (why != NULL && o->not_vhd)
			log_debug("%s: %s", v->backing->name, why);
		else if (why != NULL)
			log_warn("%s: %s", v->backing->name, why);
		vhd_free(v);
		v = NULL;
	}
	free(o->batbuf);
	o->cb(result, v != NULL ? &v->dev : NULL, o->arg);
	free(o);
}

static int
vhd_open_dev(struct vhd *v)
{
	const struct blockdev_ops *ops = v->info.type == VHD_TYPE_FIXED ?
	    &vhd_fixed_ops : &vhd_dynamic_ops;

	if (blockdev_init(&v->dev, ops, v->backing->base, v->backing->name) ==
	    -1)
		return -ENOMEM;
	v->dev.impl = v;
	v->dev.size = v->info.virtual_size;
	v->dev.block_size = v->backing->block_size;
	return 0;
}

static void
vhd_open_step(int result, void *arg)
{
	struct vhd_opener	*o = arg;
	struct vhd		*v = o->vhd;
	struct blockdev		*b = v->backing;
	struct vhd_layout	*l = &o->layout;
	struct vhd_scan		 scan;
	const char		*why = NULL;
	uint32_t		 i;

	if (result != 0) {
		vhd_open_finish(o, result, o->step == 99 ?
		    "backing is too small for a VHD or has sectors larger "
		    "than 512 bytes" : "cannot read the VHD metadata");
		return;
	}
	switch (o->step++) {
	case 0:
		/* Offset 0: the footer copy of a dynamic image, or data of
		 * a fixed one (which may look like anything). */
		o->first_error = vhd_footer_parse(o->buf, &v->info,
		    &o->first_why);
		if (o->first_error == 0 &&
		    v->info.type != VHD_TYPE_DYNAMIC) {
			o->first_error = STORAGE_E_CORRUPT;
			o->first_why = "footer copy at offset 0 is not a "
			    "dynamic disk";
		}
		if (memcmp(o->buf, "conectix", 8) != 0 ||
		    o->first_error != 0) {
			memcpy(o->first_buf, o->buf, 8);
			o->step = 10;
			blockdev_read(b, b->size - VHD_FOOTER_SIZE, o->buf,
			    VHD_FOOTER_SIZE, vhd_open_step, o);
			return;
		}
		memcpy(v->footer, o->buf, VHD_FOOTER_SIZE);
		v->data_offset = be64_get(o->buf + VHD_F_DATA_OFFSET);
		if (v->data_offset % VHD_SECTOR != 0 ||
		    v->data_offset < VHD_FOOTER_SIZE ||
		    v->data_offset > b->size ||
		    b->size - v->data_offset < VHD_HEADER_SIZE) {
			why = "dynamic header offset lies outside the image";
			result = STORAGE_E_CORRUPT;
			break;
		}
		blockdev_read(b, v->data_offset, o->buf, VHD_HEADER_SIZE,
		    vhd_open_step, o);
		return;
	case 1:
		result = vhd_header_parse(o->buf, &v->info, v->data_offset,
		    b->size, l, &why);
		if (result != 0)
			break;
		if ((o->batbuf = malloc(l->bat_bytes)) == NULL ||
		    (v->bat = calloc(l->entries, sizeof *v->bat)) == NULL ||
		    (v->ones = malloc(l->bitmap_size)) == NULL) {
			result = -ENOMEM;
			break;
		}
		blockdev_read(b, l->table_offset, o->batbuf, l->bat_bytes,
		    vhd_open_step, o);
		return;
	case 2:
		for (i = 0; i < l->entries; i++)
			v->bat[i] = be32_get(o->batbuf + (size_t)i * 4);
		if ((result = vhd_bat_scan(v->bat, l, b->size, &scan)) != 0)
			break;
		if (scan.out_of_range > 0) {
			why = "BAT points beyond the image or into its "
			    "metadata (image has been truncated?)";
			result = STORAGE_E_CORRUPT;
			break;
		}
		if (scan.overlaps > 0) {
			why = "BAT maps overlapping blocks";
			result = STORAGE_E_CORRUPT;
			break;
		}
		memset(v->ones, 0xff, l->bitmap_size);
		v->table_offset = l->table_offset;
		v->bitmap_size = l->bitmap_size;
		v->free_offset = scan.end;
		v->info.block_size = l->block_size;
		v->info.max_table_entries = l->entries;
		v->info.allocated_blocks = scan.allocated;
		v->info.end_offset = scan.end + VHD_FOOTER_SIZE;
		result = vhd_open_dev(v);
		break;
	case 10:
		/* The footer at the end: a fixed image. If that fails too,
		 * a footer-looking offset 0 was the better clue. */
		result = vhd_footer_parse(o->buf, &v->info, &why);
		if (result == 0 && v->info.type != VHD_TYPE_FIXED) {
			why = "dynamic VHD without its footer copy at offset 0";
			result = STORAGE_E_CORRUPT;
		}
		o->not_vhd = memcmp(o->buf, "conectix", 8) != 0 &&
		    memcmp(o->first_buf, "conectix", 8) != 0;
		if (result != 0 && o->first_error != 0 &&
		    memcmp(o->first_buf, "conectix", 8) == 0) {
			result = o->first_error;
			why = o->first_why;
		}
		if (result == 0 && v->info.virtual_size >
		    b->size - VHD_FOOTER_SIZE) {
			why = "fixed VHD is larger than its backing (image has "
			    "been truncated?)";
			result = STORAGE_E_CORRUPT;
		}
		if (result != 0)
			break;
		memcpy(v->footer, o->buf, VHD_FOOTER_SIZE);
		v->info.end_offset = v->info.virtual_size + VHD_FOOTER_SIZE;
		result = vhd_open_dev(v);
		break;
	}
	vhd_open_finish(o, result, why);
}

/*
 * Open the VHD on backing; cb gets a block device serving the virtual disk
 * (close it with blockdev_close; the backing stays open and must outlive
 * it). Never writes. Corrupt metadata gives STORAGE_E_CORRUPT, a
 * differencing disk STORAGE_E_UNSUPPORTED; the reason is logged.
 */
void
vhd_open(struct blockdev *backing, int writable, vhd_open_cb cb, void *arg)
{
	struct vhd_opener	*o;
	struct vhd		*v;

	if ((o = calloc(1, sizeof *o)) == NULL ||
	    (v = calloc(1, sizeof *v)) == NULL)
		abort();
	o->vhd = v;
	o->cb = cb;
	o->arg = arg;
	v->backing = backing;
	v->writable = writable;
	TAILQ_INIT(&v->allocs);
	if (backing->size < VHD_FOOTER_SIZE || backing->block_size >
	    VHD_SECTOR) {
		/* Too small to hold a footer, or a 4 KiB-native LUN. */
		o->step = 99;
		blockdev_complete_later(backing, vhd_open_step, o,
		    backing->size < VHD_FOOTER_SIZE ? STORAGE_E_CORRUPT :
		    STORAGE_E_UNSUPPORTED);
		return;
	}
	blockdev_read(backing, 0, o->buf, VHD_FOOTER_SIZE, vhd_open_step, o);
}

int
vhd_get_info(struct blockdev *dev, struct vhd_info *info)
{
	struct vhd	*v;

	if (dev->ops != &vhd_fixed_ops && dev->ops != &vhd_dynamic_ops)
		return -EINVAL;
	v = dev->impl;
	*info = v->info;
	if (v->info.type == VHD_TYPE_DYNAMIC)
		info->end_offset = v->free_offset + VHD_FOOTER_SIZE;
	return 0;
}

/* ---- fixed I/O: the data is the first virtual_size bytes -------------- */

static void
vhd_fixed_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	blockdev_read(v->backing, offset, buf, len, cb, arg);
}

static void
vhd_fixed_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	blockdev_write(v->backing, offset, buf, len, flags, cb, arg);
}

static void
vhd_fixed_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	blockdev_zero(v->backing, offset, len, flags, cb, arg);
}

/* Every completed write is already mapped (allocations finish before their
 * writes complete), so a flush is the backing's flush. */
static void
vhd_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct vhd	*v = dev->impl;

	blockdev_flush(v->backing, cb, arg);
}

static void
vhd_close(struct blockdev *dev)
{
	struct vhd	*v = dev->impl;

	blockdev_fini(dev);
	vhd_free(v);
}

static const struct blockdev_ops vhd_fixed_ops = {
	.kind = "vhd-fixed",
	.read = vhd_fixed_read,
	.write = vhd_fixed_write,
	.flush = vhd_flush,
	.zero = vhd_fixed_zero,
	.close = vhd_close,
};

/* ---- dynamic I/O ------------------------------------------------------ */

static struct vhd_request *
vhd_request_new(struct vhd *v, blockdev_cb cb, void *arg)
{
	struct vhd_request	*r;

	if ((r = malloc(sizeof *r)) == NULL)
		abort();
	r->vhd = v;
	r->cb = cb;
	r->arg = arg;
	r->pending = 1;		/* the submitter's own reference */
	r->result = 0;
	return r;
}

/* A piece finished, from the loop. */
static void
vhd_request_piece_cb(int result, void *arg)
{
	struct vhd_request	*r = arg;

	if (result != 0 && r->result == 0)
		r->result = result;
	if (--r->pending == 0) {
		r->cb(r->result, r->arg);
		free(r);
	}
}

/* The submitter is done splitting: drop its reference, and if every piece
 * already finished, complete from the loop, never inside the submitter. */
static void
vhd_request_submitted(struct vhd_request *r)
{
	if (--r->pending == 0) {
		blockdev_complete_later(&r->vhd->dev, r->cb, r->arg, r->result);
		free(r);
	}
}

/* Backing offset of a virtual offset in an allocated block. */
static uint64_t
vhd_data_offset(const struct vhd *v, uint64_t offset)
{
	uint32_t	block = (uint32_t)(offset / v->info.block_size);

	return (uint64_t)v->bat[block] * VHD_SECTOR + v->bitmap_size +
	    offset % v->info.block_size;
}

static void
vhd_dynamic_read(struct blockdev *dev, uint64_t offset, void *buf,
    size_t len, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r = vhd_request_new(v, cb, arg);
	uint8_t			*p = buf;
	size_t			 chunk;
	uint32_t		 bs = v->info.block_size;

	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		if (v->bat[offset / bs] == VHD_UNALLOCATED) {
			memset(p, 0, chunk);
		} else {
			r->pending++;
			blockdev_read(v->backing, vhd_data_offset(v, offset), p,
			    chunk, vhd_request_piece_cb, r);
		}
		offset += chunk;
		p += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

static void vhd_alloc_next(struct vhd_alloc *);

static void
vhd_alloc_cb(int result, void *arg)
{
	struct vhd_alloc	*a = arg;

	if (result != 0 && a->result == 0)
		a->result = result;
	if (--a->pending == 0)
		vhd_alloc_next(a);
}

static void
vhd_alloc_start(struct vhd *v)
{
	struct vhd_alloc	*a = TAILQ_FIRST(&v->allocs);
	struct blockdev		*b = v->backing;
	uint64_t		 data;

	if (a == NULL)
		return;
	/* Data 4 KiB aligned, bitmap right before it (§1.6.6); the block
	 * must fit with the footer after it, and never wrap (§1.6.5). */
	data = vhd_round_up(v->free_offset + v->bitmap_size, VHD_DATA_ALIGN);
	a->bitmap_offset = data - v->bitmap_size;
	a->new_end = data + v->info.block_size;
	if (a->new_end + VHD_FOOTER_SIZE > b->size ||
	    a->bitmap_offset / VHD_SECTOR >= VHD_UNALLOCATED) {
		a->result = -ENOSPC;
		a->step = -1;
	}
	vhd_alloc_next(a);
}

static void vhd_write_piece(struct vhd *, struct vhd_request *, uint64_t,
    const uint8_t *, size_t, unsigned);

static void
vhd_alloc_done(struct vhd_alloc *a)
{
	struct vhd		*v = a->vhd;
	struct vhd_piece	*p;

	TAILQ_REMOVE(&v->allocs, a, entry);
	if (a->result == 0) {
		v->bat[a->block] = (uint32_t)(a->bitmap_offset / VHD_SECTOR);
		v->free_offset = a->new_end;
		v->info.allocated_blocks++;
	}
	while ((p = TAILQ_FIRST(&a->written)) != NULL) {
		TAILQ_REMOVE(&a->written, p, entry);
		vhd_request_piece_cb(a->result, p->req);
		free(p);
	}
	while ((p = TAILQ_FIRST(&a->waiting)) != NULL) {
		TAILQ_REMOVE(&a->waiting, p, entry);
		if (a->result != 0) {
			vhd_request_piece_cb(a->result, p->req);
		} else {
			/* Now mapped: an ordinary write, which takes its
			 * own reference before the piece drops its one. */
			vhd_write_piece(v, p->req, p->offset, p->buf, p->len,
			    p->flags);
			vhd_request_piece_cb(0, p->req);
		}
		free(p);
	}
	free(a);
	vhd_alloc_start(v);
}

/*
 * The allocation steps, in the order §1.6.1-2 and DESIGN §3 require: the
 * zeroed block, its data and its all-ones bitmap; flush; the footer at the
 * new end; the BAT sector; flush. Only then do the writes complete.
 */
static void
vhd_alloc_next(struct vhd_alloc *a)
{
	struct vhd		*v = a->vhd;
	struct blockdev		*b = v->backing;
	struct vhd_piece	*p;
	uint64_t		 data = a->bitmap_offset + v->bitmap_size;
	uint32_t		 first, i, entry;

	if (a->result != 0)
		a->step = -1;
	switch (a->step++) {
	case 0:
		a->pending = 2;
		blockdev_zero(b, data, v->info.block_size, 0, vhd_alloc_cb, a);
		blockdev_write(b, a->bitmap_offset, v->ones, v->bitmap_size, 0,
		    vhd_alloc_cb, a);
		return;
	case 1:
		/* After the zeroes, so the data lands on top of them. */
		TAILQ_CONCAT(&a->written, &a->waiting, entry);
		a->pending = 1;
		TAILQ_FOREACH(p, &a->written, entry) {
			a->pending++;
			blockdev_write(b, data + p->offset % v->info.block_size,
			    p->buf, p->len, 0, vhd_alloc_cb, a);
		}
		vhd_alloc_cb(0, a);
		return;
	case 2:
	case 5:
		a->pending = 1;
		blockdev_flush(b, vhd_alloc_cb, a);
		return;
	case 3:
		a->pending = 1;
		blockdev_write(b, a->new_end, v->footer, VHD_FOOTER_SIZE, 0,
		    vhd_alloc_cb, a);
		return;
	case 4:
		/* Read-modify-write of the BAT sector from memory; only
		 * this allocation runs, so the sector is ours. */
		first = a->block / (VHD_SECTOR / 4) * (VHD_SECTOR / 4);
		for (i = 0; i < VHD_SECTOR / 4; i++) {
			entry = first + i < v->info.max_table_entries ?
			    v->bat[first + i] : VHD_UNALLOCATED;
			if (first + i == a->block)
				entry = (uint32_t)(a->bitmap_offset /
				    VHD_SECTOR);
			be32_put(a->sector + i * 4, entry);
		}
		a->pending = 1;
		blockdev_write(b, v->table_offset + (uint64_t)first * 4,
		    a->sector, VHD_SECTOR, 0, vhd_alloc_cb, a);
		return;
	default:
		vhd_alloc_done(a);
		return;
	}
}

/* Write one piece inside one block: straight through if the block is
 * mapped, else with (or after) its allocation. */
static void
vhd_write_piece(struct vhd *v, struct vhd_request *r, uint64_t offset,
    const uint8_t *buf, size_t len, unsigned flags)
{
	uint32_t		 block = (uint32_t)(offset / v->info.block_size);
	struct vhd_alloc	*a;
	struct vhd_piece	*p;
	int			 idle;

	if (v->bat[block] != VHD_UNALLOCATED) {
		r->pending++;
		blockdev_write(v->backing, vhd_data_offset(v, offset), buf, len,
		    flags, vhd_request_piece_cb, r);
		return;
	}
	if ((p = calloc(1, sizeof *p)) == NULL)
		abort();
	p->req = r;
	p->offset = offset;
	p->buf = buf;
	p->len = len;
	p->flags = flags;
	r->pending++;
	TAILQ_FOREACH(a, &v->allocs, entry) {
		if (a->block == block) {
			TAILQ_INSERT_TAIL(&a->waiting, p, entry);
			return;
		}
	}
	if ((a = calloc(1, sizeof *a)) == NULL)
		abort();
	a->vhd = v;
	a->block = block;
	TAILQ_INIT(&a->written);
	TAILQ_INIT(&a->waiting);
	TAILQ_INSERT_TAIL(&a->waiting, p, entry);
	idle = TAILQ_EMPTY(&v->allocs);
	TAILQ_INSERT_TAIL(&v->allocs, a, entry);
	if (idle)
		vhd_alloc_start(v);
}

static void
vhd_dynamic_write(struct blockdev *dev, uint64_t offset, const void *buf,
    size_t len, unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r;
	const uint8_t		*p = buf;
	size_t			 chunk;
	uint32_t		 bs = v->info.block_size;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	r = vhd_request_new(v, cb, arg);
	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		vhd_write_piece(v, r, offset, p, chunk, flags);
		offset += chunk;
		p += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

/* Zeroes: unmapped blocks already read zero; mapped ones are zeroed in
 * place (the block stays mapped). */
static void
vhd_dynamic_zero(struct blockdev *dev, uint64_t offset, uint64_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct vhd		*v = dev->impl;
	struct vhd_request	*r;
	uint64_t		 chunk;
	uint32_t		 bs = v->info.block_size;

	if (!v->writable) {
		blockdev_complete_later(dev, cb, arg, -EROFS);
		return;
	}
	r = vhd_request_new(v, cb, arg);
	while (len > 0) {
		chunk = bs - offset % bs;
		if (chunk > len)
			chunk = len;
		if (v->bat[offset / bs] != VHD_UNALLOCATED) {
			r->pending++;
			blockdev_zero(v->backing, vhd_data_offset(v, offset),
			    chunk, flags, vhd_request_piece_cb, r);
		}
		offset += chunk;
		len -= chunk;
	}
	vhd_request_submitted(r);
}

static const struct blockdev_ops vhd_dynamic_ops = {
	.kind = "vhd-dynamic",
	.read = vhd_dynamic_read,
	.write = vhd_dynamic_write,
	.flush = vhd_flush,
	.zero = vhd_dynamic_zero,
	.close = vhd_close,
};

/* ---- synchronous wrappers (CLI and tests) ----------------------------- */

struct vhd_sync {
	int		 done;
	int		 result;
	struct blockdev	*dev;
};

static void
vhd_sync_cb(int result, void *arg)
{
	struct vhd_sync	*s = arg;

	s->result = result;
	s->done = 1;
}

static void
vhd_sync_open_cb(int result, struct blockdev *dev, void *arg)
{
	struct vhd_sync	*s = arg;

	s->result = result;
	s->dev = dev;
	s->done = 1;
}

int
vhd_create_sync(struct blockdev *backing, enum vhd_type type, uint64_t size)
{
	struct vhd_sync	s = { 0, 0, NULL };

	vhd_create(backing, type, size, vhd_sync_cb, &s);
	if (storage_wait(backing->base, &s.done) == -1)
		return -EIO;
	return s.result;
}

int
vhd_open_sync(struct blockdev *backing, int writable, struct blockdev **out)
{
	struct vhd_sync	s = { 0, 0, NULL };

	*out = NULL;
	vhd_open(backing, writable, vhd_sync_open_cb, &s);
	if (storage_wait(backing->base, &s.done) == -1)
		return -EIO;
	*out = s.dev;
	return s.result;
}

uint64_t
vhd_max_backing_size(enum vhd_type type, uint64_t size)
{
	uint64_t	vsize, entries;
	uint16_t	c;
	uint8_t		h, s;

	if ((vsize = vhd_round_size(size, &c, &h, &s)) == 0)
		return 0;
	if (type == VHD_TYPE_FIXED)
		return vsize + VHD_FOOTER_SIZE;
	entries = (vsize + VHD_BLOCK_SIZE - 1) / VHD_BLOCK_SIZE;
	return VHD_BAT_OFFSET + vhd_round_up(entries * 4, VHD_SECTOR) +
	    entries * (VHD_DATA_ALIGN + VHD_BLOCK_SIZE) + VHD_DATA_ALIGN +
	    VHD_FOOTER_SIZE;
}
