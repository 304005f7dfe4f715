/*
 * VHD interop with qemu-img and qemu-io, a real independent implementation,
 * both ways: images QEMU makes and writes are imported by Haven and read
 * back byte for byte; images Haven creates, writes and exports pass
 * `qemu-img check` and `qemu-img compare` and take further writes by QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "storage.h"

#define MiB	(1ULL << 20)

extern char	**environ;

static char	dir[64];

/* Run a command, stdout to out (or /dev/null); its exit status. */
static int
run(const char *out, const char *const *argv)
{
	posix_spawn_file_actions_t	fa;
	pid_t				pid;
	int				status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out != NULL ? out :
	    "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
	    environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
file_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static int
setup(void **state)
{
	const char	*probe[] = { "qemu-img", "--version", NULL };

	if (run(NULL, probe) != 0)
		return 0;	/* each test skips */
	snprintf(dir, sizeof dir, "/tmp/haven-interop-%ld", (long)getpid());
	mkdir(dir, 0700);
	*state = event_base_new();
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	if (*state == NULL)
		return 0;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return -1;
	event_base_free(*state);
	return 0;
}

/* qemu-img check; QEMU 7.2's vpc driver has no check and says so with
 * exit status 63, which counts as passing (it still opened the image). */
static int
qemu_check(const char *const *argv)
{
	int	status = run(NULL, argv);

	return status == 0 || status == 63;
}

/* qemu-img's idea of an image's virtual size. */
static uint64_t
qemu_virtual_size(const char *image)
{
	char		 out[128], line[256];
	const char	*argv[] = { "qemu-img", "info", "-f", "vpc", "--output",
	    "json", image, NULL };
	uint64_t	 size = 0;
	FILE		*fp;

	file_in(out, sizeof out, "info.json");
	assert_int_equal(run(out, argv), 0);
	fp = fopen(out, "r");
	while (fgets(line, sizeof line, fp) != NULL) {
		if (sscanf(line, " \"virtual-size\": %" SCNu64, &size) == 1)
			break;
	}
	fclose(fp);
	return size;
}

/* Compare a VHD device with a raw file, every byte. */
static void
compare_raw(struct blockdev *v, const char *raw)
{
	uint8_t		*a = malloc(4 * MiB), *b = malloc(4 * MiB);
	FILE		*fp = fopen(raw, "rb");
	uint64_t	 off, len;

	assert_non_null(fp);
	for (off = 0; off < v->size; off += len) {
		len = v->size - off < 4 * MiB ? v->size - off : 4 * MiB;
		assert_int_equal(blockdev_read_sync(v, off, a, len), 0);
		assert_int_equal(fread(b, 1, len, fp), len);
		if (memcmp(a, b, len) != 0)
			fail_msg("%s differs from Haven's read in the 4 MiB "
			    "at %" PRIu64, raw, off);
	}
	assert_int_equal(fread(b, 1, 1, fp), 0);	/* same length */
	fclose(fp);
	free(a);
	free(b);
}

/*
 * One round trip: QEMU makes and writes an image; Haven imports it onto a
 * window of a larger file (as onto a volume's disk extent, converting the
 * type if asked) and reads it back; Haven exports it to a new .vhd that
 * QEMU checks, compares, writes into, and Haven reads again.
 */
static void
round_trip(struct event_base *base, const char *subformat, const char *size,
    enum vhd_type import_type, enum vhd_type export_type)
{
	char			 src[128], raw[128], vol[128], out[128];
	char			 raw2[128], opt[64], at[32];
	const char		*qcreate[] = { "qemu-img", "create", "-q", "-f",
	    "vpc", "-o", opt, src, size, NULL };
	const char		*qwrite[] = { "qemu-io", "-f", "vpc", "-c",
	    "write -P 0xab 0 64k", "-c", at, "-c", "write -P 0x5c 1m 4k",
	    src, NULL };
	const char		*qconvert[] = { "qemu-img", "convert", "-f",
	    "vpc", "-O", "raw", src, raw, NULL };
	const char		*qcheck[] = { "qemu-img", "check", "-f", "vpc",
	    out, NULL };
	const char		*qcompare[] = { "qemu-img", "compare", "-f",
	    "vpc", "-F", "raw", out, raw, NULL };
	/* Against the original itself (the size is checked by info). */
	const char		*qsame[] = { "qemu-img", "compare", "-f",
	    "vpc", "-F", "vpc", src, out, NULL };
	const char		*qwrite2[] = { "qemu-io", "-f", "vpc", "-c",
	    "write -P 0x99 16k 8k", out, NULL };
	const char		*qconvert2[] = { "qemu-img", "convert", "-f",
	    "vpc", "-O", "raw", out, raw2, NULL };
	struct blockdev		*sf, *sv, *vf, *ext, *dv, *of, *ov;
	struct vhd_info		 info;
	uint64_t		 vsize, need;
	int			 error;

	file_in(src, sizeof src, "src.vhd");
	file_in(raw, sizeof raw, "src.raw");
	file_in(vol, sizeof vol, "volume");
	file_in(out, sizeof out, "out.vhd");
	file_in(raw2, sizeof raw2, "out.raw");
	unlink(src), unlink(raw), unlink(vol), unlink(out), unlink(raw2);
	snprintf(opt, sizeof opt, "subformat=%s", subformat);
	assert_int_equal(run(NULL, qcreate), 0);
	vsize = qemu_virtual_size(src);
	if (strstr(subformat, "force_size") != NULL)
		assert_int_equal(vsize, strtoull(size, NULL, 10));
	/* A pattern across the last sector, wherever that is. */
	snprintf(at, sizeof at, "write -P 0xcd %" PRIu64 " 1k", vsize - 1024);
	assert_int_equal(run(NULL, qwrite), 0);
	assert_int_equal(run(NULL, qconvert), 0);

	/* Import: file_open + vhd_open, onto a VHD in a 1 MiB-offset window. */
	sf = file_open(base, src, 0, &error);
	assert_non_null(sf);
	assert_int_equal(vhd_open_sync(sf, 0, &sv), 0);
	assert_int_equal(sv->size, vsize);
	compare_raw(sv, raw);
	need = vhd_max_backing_size(import_type, sv->size, VHD_SIZE_EXACT);
	vf = file_create(base, vol, need + 2 * MiB, &error);
	assert_non_null(vf);
	ext = extent_open(vf, MiB, need, "disk");
	assert_int_equal(vhd_create_sync(ext, import_type, sv->size,
	    VHD_SIZE_EXACT), 0);
	assert_int_equal(vhd_open_sync(ext, 1, &dv), 0);
	assert_int_equal(dv->size, vsize);	/* the exact size, kept */
	assert_int_equal(vhd_copy_sync(sv, dv, NULL, NULL), 0);
	blockdev_close(sv);
	blockdev_close(sf);
	blockdev_close(dv);
	assert_int_equal(vhd_open_sync(ext, 0, &dv), 0);
	compare_raw(dv, raw);

	/* Export: a new file, big enough, then cut to the end of data. */
	of = file_create(base, out, vhd_max_backing_size(export_type,
	    dv->size, VHD_SIZE_EXACT), &error);
	assert_non_null(of);
	assert_int_equal(vhd_create_sync(of, export_type, dv->size,
	    VHD_SIZE_EXACT), 0);
	assert_int_equal(vhd_open_sync(of, 1, &ov), 0);
	assert_int_equal(vhd_copy_sync(dv, ov, NULL, NULL), 0);
	assert_int_equal(vhd_get_info(ov, &info), 0);
	blockdev_close(ov);
	assert_int_equal(file_truncate(of, info.end_offset), 0);
	blockdev_close(of);
	blockdev_close(dv);
	blockdev_close(ext);
	blockdev_close(vf);
	assert_true(qemu_check(qcheck));
	assert_int_equal(qemu_virtual_size(out), vsize);
	assert_int_equal(run(NULL, qcompare), 0);
	assert_int_equal(run(NULL, qsame), 0);

	/* QEMU writes into Haven's image; Haven reads what QEMU sees. */
	assert_int_equal(run(NULL, qwrite2), 0);
	assert_true(qemu_check(qcheck));
	assert_int_equal(run(NULL, qconvert2), 0);
	of = file_open(base, out, 0, &error);
	assert_int_equal(vhd_open_sync(of, 0, &ov), 0);
	compare_raw(ov, raw2);
	blockdev_close(ov);
	blockdev_close(of);
}

#define NEED_QEMU()	do { if (*state == NULL) skip(); } while (0)

static void
test_dynamic_sizes(void **state)
{
	NEED_QEMU();
	round_trip(*state, "dynamic", "1M", VHD_TYPE_DYNAMIC,
	    VHD_TYPE_DYNAMIC);
	round_trip(*state, "dynamic", "10000000", VHD_TYPE_DYNAMIC,
	    VHD_TYPE_DYNAMIC);
	round_trip(*state, "dynamic", "1G", VHD_TYPE_DYNAMIC,
	    VHD_TYPE_DYNAMIC);
}

static void
test_fixed_sizes(void **state)
{
	NEED_QEMU();
	round_trip(*state, "fixed", "1M", VHD_TYPE_FIXED, VHD_TYPE_FIXED);
	round_trip(*state, "fixed", "10000000", VHD_TYPE_FIXED,
	    VHD_TYPE_FIXED);
	round_trip(*state, "fixed", "1G", VHD_TYPE_FIXED, VHD_TYPE_FIXED);
}

/*
 * Images made as Hyper-V makes them, at a size off every CHS boundary
 * (qemu-img's force_size: creator "qem2", exact current_size). Import and
 * export once rounded them up to the next geometry; they must keep their
 * size byte for byte, fixed and dynamic, and across a type change.
 */
static void
test_force_size(void **state)
{
	NEED_QEMU();
	round_trip(*state, "dynamic,force_size=on", "9999872",
	    VHD_TYPE_DYNAMIC, VHD_TYPE_DYNAMIC);
	round_trip(*state, "fixed,force_size=on", "9999872",
	    VHD_TYPE_FIXED, VHD_TYPE_FIXED);
	round_trip(*state, "dynamic,force_size=on", "123456512",
	    VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC);
	round_trip(*state, "fixed,force_size=on", "1073741824",
	    VHD_TYPE_DYNAMIC, VHD_TYPE_FIXED);
}

static void
test_convert_types(void **state)
{
	NEED_QEMU();
	round_trip(*state, "dynamic", "10000000", VHD_TYPE_FIXED,
	    VHD_TYPE_DYNAMIC);
	round_trip(*state, "fixed", "10000000", VHD_TYPE_DYNAMIC,
	    VHD_TYPE_FIXED);
}

/* Haven writes scattered patterns (across block edges) into a dynamic
 * image it made; qemu-img sees exactly the reference bytes. */
static void
test_haven_writes(void **state)
{
	char			 img[128], raw[128];
	const char		*qcheck[] = { "qemu-img", "check", "-f", "vpc",
	    img, NULL };
	const char		*qcompare[] = { "qemu-img", "compare", "-f",
	    "vpc", "-F", "raw", img, raw, NULL };
	struct event_base	*base = *state;
	struct blockdev		*f, *v;
	struct vhd_info		 info;
	uint8_t			*ref, *buf;
	uint64_t		 off, len, x = 0x1234567;
	FILE			*fp;
	int			 i, error;

	NEED_QEMU();
	file_in(img, sizeof img, "haven.vhd");
	file_in(raw, sizeof raw, "haven.raw");
	f = file_create(base, img, vhd_max_backing_size(VHD_TYPE_DYNAMIC,
	    100 * MiB,
	    VHD_SIZE_ROUNDED), &error);
	assert_int_equal(vhd_create_sync(f, VHD_TYPE_DYNAMIC, 100 * MiB,
	    VHD_SIZE_ROUNDED), 0);
	assert_int_equal(vhd_open_sync(f, 1, &v), 0);
	ref = calloc(1, v->size);
	buf = malloc(3 * MiB);
	for (i = 0; i < 30; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		len = ((x >> 20) % (3 * MiB / 512) + 1) * 512;
		off = (x >> 40) % ((v->size - len) / 512 + 1) * 512;
		memset(buf, (int)(x >> 56) | 1, len);
		memcpy(ref + off, buf, len);
		assert_int_equal(blockdev_write_sync(v, off, buf, len, 0), 0);
	}
	assert_int_equal(blockdev_flush_sync(v), 0);
	assert_int_equal(vhd_get_info(v, &info), 0);
	blockdev_close(v);
	assert_int_equal(file_truncate(f, info.end_offset), 0);
	blockdev_close(f);
	fp = fopen(raw, "wb");
	assert_int_equal(fwrite(ref, 1, info.virtual_size, fp),
	    info.virtual_size);
	fclose(fp);
	assert_true(qemu_check(qcheck));
	assert_int_equal(qemu_virtual_size(img), info.virtual_size);
	assert_int_equal(run(NULL, qcompare), 0);
	/* And the test can fail: one changed byte is noticed. */
	fp = fopen(raw, "r+b");
	fseek(fp, (long)(info.virtual_size / 2), SEEK_SET);
	fputc(ref[info.virtual_size / 2] ^ 0xff, fp);
	fclose(fp);
	assert_int_not_equal(run(NULL, qcompare), 0);
	free(ref);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dynamic_sizes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fixed_sizes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_force_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_convert_types, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_haven_writes, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
