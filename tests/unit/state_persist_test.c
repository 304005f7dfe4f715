/*
 * Unit tests of the cluster state's persistence: an atomic save/load round
 * trip; a truncated file and a flipped byte are refused and left as they
 * were; a temp file left by a crash mid-save is ignored; a version 2 file
 * (the move fields loose in VmRuntime) loads with them in its Move.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "clusterd.h"

struct fixture {
	char		 dir[64];
	char		 path[128];
	char		 tmp[128];
	struct cluster	*st;
};

static void
apply_ok(struct cluster *st, Haven__Change *c)
{
	char	 err[256];
	int	 r = cluster_apply(st, c, 1, err, sizeof err);

	if (r != CLUSTER_OK)
		fail_msg("apply: %s: %s", cluster_result_name(r), err);
}

/* A small state: two hosts, a pool, a volume, a VM, a role. */
static struct cluster *
sample_state(void)
{
	struct cluster		*st = cluster_new();
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostAdd		 ha = HAVEN__HOST_ADD__INIT;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__PoolAdd		 pa = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	 pc = HAVEN__POOL_CONFIG__INIT;
	Haven__VolumeAdd	 va = HAVEN__VOLUME_ADD__INIT;
	Haven__VolumeConfig	 vc = HAVEN__VOLUME_CONFIG__INIT;
	Haven__VmCreate		 vmc = HAVEN__VM_CREATE__INIT;
	Haven__VmConfig		 cfg = HAVEN__VM_CONFIG__INIT;
	Haven__RoleGrant	 rg = HAVEN__ROLE_GRANT__INIT;
	Haven__RoleBinding	 rb = HAVEN__ROLE_BINDING__INIT;
	char			*volumes[] = { "disk0" };
	uint32_t		 preferred[] = { 2, 1 };

	cluster_set_epoch(st, 4, 1);
	ha.config = &hc;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
	c.host_add = &ha;
	hc.node_id = 2;
	hc.name = "h2";
	hc.memory_mib = 8192;
	apply_ok(st, &c);
	hc.node_id = 1;
	hc.name = "h1";
	apply_ok(st, &c);

	pc.name = "san";
	pc.portal = "10.77.2.2:3260";
	pc.target = "iqn.2026-11.lab.haven:san";
	pa.config = &pc;
	c.kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
	c.pool_add = &pa;
	apply_ok(st, &c);
	vc.name = "disk0";
	vc.pool = "san";
	vc.size_bytes = 1 << 30;
	va.config = &vc;
	c.kind_case = HAVEN__CHANGE__KIND_VOLUME_ADD;
	c.volume_add = &va;
	apply_ok(st, &c);

	cfg.name = "web1";
	cfg.memory_mib = 1024;
	cfg.vcpus = 2;
	cfg.n_volumes = 1;
	cfg.volumes = volumes;
	cfg.n_preferred_owners = 2;
	cfg.preferred_owners = preferred;
	cfg.anti_affinity = "web";
	vmc.config = &cfg;
	c.kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	c.vm_create = &vmc;
	apply_ok(st, &c);

	rb.principal = "user:alice";
	rb.role = HAVEN__ROLE__ROLE_ADMIN;
	rg.binding = &rb;
	c.kind_case = HAVEN__CHANGE__KIND_ROLE_GRANT;
	c.role_grant = &rg;
	apply_ok(st, &c);
	return st;
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/haven-state-test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/%s", f->dir, CLUSTER_FILE);
	snprintf(f->tmp, sizeof f->tmp, "%s/%s", f->dir, CLUSTER_FILE_TMP);
	f->st = sample_state();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	unlink(f->path);
	unlink(f->tmp);
	rmdir(f->dir);
	cluster_free(f->st);
	free(f);
	return 0;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	uint8_t		*buf;
	int		 fd;

	assert_int_equal(stat(path, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static void
spit(const char *path, const uint8_t *buf, size_t len)
{
	int	 fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void
test_roundtrip(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*back = NULL;
	uint8_t		 a[CLUSTER_DIGEST_SIZE], b[CLUSTER_DIGEST_SIZE];
	char		 err[256];
	struct stat	 sb;

	assert_int_equal(cluster_save(f->st, f->dir, err, sizeof err), CLUSTER_OK);
	assert_int_equal(stat(f->tmp, &sb), -1);	/* renamed away */
	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err), CLUSTER_OK);
	assert_non_null(back);
	cluster_digest(f->st, a);
	cluster_digest(back, b);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(back->cs->seq, f->st->cs->seq);
	assert_int_equal(back->cs->epoch, 4);
	assert_int_equal(back->cs->last_quorate_epoch, 4);
	assert_int_equal(back->cs->n_hosts, 2);
	assert_int_equal(back->cs->hosts[0]->config->node_id, 1);
	assert_non_null(cluster_vm(back, "web1"));
	assert_int_equal(cluster_vm(back, "web1")->config->preferred_owners[0], 2);
	/* Saving again replaces the file atomically. */
	assert_int_equal(cluster_save(back, f->dir, err, sizeof err), CLUSTER_OK);
	cluster_free(back);
}

static void
test_missing(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*back = (struct cluster *)1;
	char		 err[256];

	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err),
	    CLUSTER_E_IO);
	assert_int_equal(errno, ENOENT);
	assert_null(back);
}

/* Every prefix of the file is refused, and the file stays as it was. */
static void
test_truncated(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*back;
	uint8_t		*full, *now;
	size_t		 len, cut, nowlen;
	char		 err[256];

	assert_int_equal(cluster_save(f->st, f->dir, err, sizeof err), CLUSTER_OK);
	full = slurp(f->path, &len);
	for (cut = 0; cut < len; cut++) {
		spit(f->path, full, cut);
		err[0] = '\0';
		assert_int_equal(cluster_load(f->dir, &back, err, sizeof err),
		    CLUSTER_E_CORRUPT);
		assert_null(back);
		assert_true(strlen(err) > 0);
		now = slurp(f->path, &nowlen);
		assert_int_equal(nowlen, cut);
		assert_memory_equal(now, full, cut);
		free(now);
	}
	free(full);
}

/* Flipping any single byte is caught (header fields or checksum). */
static void
test_flipped_byte(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*back;
	uint8_t		*full, *bad, *now;
	size_t		 len, i, nowlen;
	char		 err[256];

	assert_int_equal(cluster_save(f->st, f->dir, err, sizeof err), CLUSTER_OK);
	full = slurp(f->path, &len);
	bad = malloc(len);
	for (i = 0; i < len; i++) {
		memcpy(bad, full, len);
		bad[i] ^= 0x20;
		spit(f->path, bad, len);
		assert_int_equal(cluster_load(f->dir, &back, err, sizeof err),
		    CLUSTER_E_CORRUPT);
		assert_null(back);
		now = slurp(f->path, &nowlen);
		assert_int_equal(nowlen, len);
		assert_memory_equal(now, bad, len);
		free(now);
	}
	if (strstr(err, "checksum") == NULL)
		fail_msg("a flipped payload byte: %s", err);
	free(bad);
	free(full);
}

/* A crash between writing the temp file and the rename leaves the old
 * state in place: load ignores the temp file, the next save replaces it. */
static void
test_crash_leaves_temp(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*back = NULL, *newer;
	uint8_t		 a[CLUSTER_DIGEST_SIZE], b[CLUSTER_DIGEST_SIZE];
	char		 err[256];
	struct stat	 sb;
	Haven__Change	 c = HAVEN__CHANGE__INIT;
	Haven__VmSetDesired d = HAVEN__VM_SET_DESIRED__INIT;

	assert_int_equal(cluster_save(f->st, f->dir, err, sizeof err), CLUSTER_OK);
	/* The newer state got as far as a half-written temp file. */
	spit(f->tmp, (const uint8_t *)"HVCS\1\0\0\0garbage", 16);
	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err), CLUSTER_OK);
	cluster_digest(f->st, a);
	cluster_digest(back, b);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(stat(f->tmp, &sb), 0);

	newer = cluster_clone(back);
	d.name = "web1";
	d.desired = HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
	c.kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
	c.vm_set_desired = &d;
	apply_ok(newer, &c);
	assert_int_equal(cluster_save(newer, f->dir, err, sizeof err), CLUSTER_OK);
	assert_int_equal(stat(f->tmp, &sb), -1);
	cluster_free(back);
	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err), CLUSTER_OK);
	assert_int_equal(back->cs->seq, newer->cs->seq);
	assert_int_equal(cluster_vm(back, "web1")->runtime->desired,
	    HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING);
	cluster_free(back);
	cluster_free(newer);
}

/* A well-formed file whose content breaks the invariants is refused. */
static void
test_invalid_content(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*bad = cluster_clone(f->st), *back;
	Haven__Host	*h;
	char		 err[256];

	/* Unsorted hosts. */
	h = bad->cs->hosts[0];
	bad->cs->hosts[0] = bad->cs->hosts[1];
	bad->cs->hosts[1] = h;
	assert_int_equal(cluster_save(bad, f->dir, err, sizeof err), CLUSTER_OK);
	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err),
	    CLUSTER_E_CORRUPT);
	assert_non_null(strstr(err, "sorted"));
	assert_int_equal(cluster_adopt(f->st, bad->cs, err, sizeof err),
	    CLUSTER_E_CORRUPT);
	cluster_free(bad);
}

/*
 * A state file as a version 2 havend wrote it: web1 in a live migration
 * from node 1 to node 2, its fields loose in VmRuntime. Loaded, they are
 * in web1's Move and the loose ones are gone; saved again, it is version 3
 * and loads to the same digest.
 */
static void
test_version2_moves(void **state)
{
	struct fixture		*f = *state;
	struct cluster		*back = NULL, *again = NULL;
	Haven__VmRuntime	*rt = cluster_vm(f->st, "web1")->runtime;
	const Haven__Move	*m;
	uint8_t			*file, a[CLUSTER_DIGEST_SIZE], b[CLUSTER_DIGEST_SIZE];
	size_t			 len;
	char			 err[256];

	rt->legacy_migrate_to = 2;
	rt->legacy_migrate_from = 1;
	rt->legacy_saving_at_us = 1796600000000000ULL;
	rt->legacy_live_endpoint = strdup("10.77.3.12:41000");
	rt->legacy_live_token = strdup("0123abcd");
	rt->legacy_live_remaining = 4096;
	rt->legacy_live_total = 65536;
	len = haven__cluster_state__get_packed_size(f->st->cs);
	file = calloc(1, 48 + len);
	memcpy(file, "HVCS", 4);
	file[4] = 2;					/* version 2 */
	file[8] = (uint8_t)len;
	file[9] = (uint8_t)(len >> 8);
	file[10] = (uint8_t)(len >> 16);
	haven__cluster_state__pack(f->st->cs, file + 48);
	{
		uint32_t crc = (uint32_t)crc32(0, file + 48, (uInt)len);

		file[16] = (uint8_t)crc;
		file[17] = (uint8_t)(crc >> 8);
		file[18] = (uint8_t)(crc >> 16);
		file[19] = (uint8_t)(crc >> 24);
	}
	spit(f->path, file, 48 + len);
	free(file);

	assert_int_equal(cluster_load(f->dir, &back, err, sizeof err), CLUSTER_OK);
	rt = cluster_vm(back, "web1")->runtime;
	m = tree_move(rt);
	assert_int_equal(m->to, 2);
	assert_int_equal(m->from, 1);
	assert_int_equal(m->downtime_since_us, 1796600000000000ULL);
	assert_string_equal(m->live_endpoint, "10.77.3.12:41000");
	assert_string_equal(m->live_token, "0123abcd");
	assert_int_equal(m->remaining_bytes, 4096);
	assert_int_equal(m->total_bytes, 65536);
	assert_int_equal(rt->legacy_migrate_to, 0);
	assert_string_equal(rt->legacy_live_token, "");

	assert_int_equal(cluster_save(back, f->dir, err, sizeof err), CLUSTER_OK);
	file = slurp(f->path, &len);
	assert_int_equal(file[4], 3);
	free(file);
	assert_int_equal(cluster_load(f->dir, &again, err, sizeof err),
	    CLUSTER_OK);
	cluster_digest(back, a);
	cluster_digest(again, b);
	assert_memory_equal(a, b, sizeof a);
	assert_string_equal(tree_move(cluster_vm(again, "web1")->runtime)->
	    live_endpoint, "10.77.3.12:41000");
	cluster_free(back);
	cluster_free(again);
}

/* Adopting a snapshot keeps the member-local epoch and the digest. */
static void
test_adopt(void **state)
{
	struct fixture	*f = *state;
	struct cluster	*st = cluster_new();
	uint8_t		 a[CLUSTER_DIGEST_SIZE], b[CLUSTER_DIGEST_SIZE];
	char		 err[256];

	cluster_set_epoch(st, 9, 0);
	assert_int_equal(cluster_adopt(st, f->st->cs, err, sizeof err), CLUSTER_OK);
	assert_int_equal(st->cs->epoch, 9);
	assert_int_equal(st->cs->last_quorate_epoch, 4);
	assert_int_equal(st->cs->seq, f->st->cs->seq);
	cluster_digest(f->st, a);
	cluster_digest(st, b);
	assert_memory_equal(a, b, sizeof a);
	cluster_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_leaves_temp, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid_content, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version2_moves, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
