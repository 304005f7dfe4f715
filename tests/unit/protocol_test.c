/*
 * Rolling upgrade (issue 17): the gating table (which change needs which
 * protocol, and how the refusal names it), the running protocol of a set of
 * members, and what a member does with what a newer build adds (a field it
 * does not know stays in its state and digest; a change of a kind it does
 * not know is refused, so its seq falls behind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clusterd.h"
#include "proto.h"

static uint32_t
needs(const Haven__Change *c, const char *what_expected)
{
	char		 what[128];
	uint32_t	 p = protocol_change_needs(c, what, sizeof what);

	assert_string_equal(what, what_expected);
	return p;
}

static void
kinds(void **unused)
{
	Haven__Change		c = HAVEN__CHANGE__INIT;
	Haven__HostQemu		q = HAVEN__HOST_QEMU__INIT;
	Haven__VmMigrate	m = HAVEN__VM_MIGRATE__INIT;
	Haven__HostAdd		add = HAVEN__HOST_ADD__INIT;
	Haven__HostConfig	hc = HAVEN__HOST_CONFIG__INIT;
	char			*types[] = { (char *)"pc-i440fx-7.2" };

	(void)unused;
	c.kind_case = HAVEN__CHANGE__KIND_HOST_QEMU;
	c.host_qemu = &q;
	assert_int_equal(needs(&c, "a report of its QEMU's machine types and "
	    "CPU models"), 2);
	c.kind_case = HAVEN__CHANGE__KIND_VM_MIGRATE;
	c.vm_migrate = &m;
	assert_int_equal(needs(&c, ""), 1);
	/* A host added without its QEMU's lists: protocol 1; with them: 2. */
	c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
	c.host_add = &add;
	add.config = &hc;
	hc.node_id = 3;
	hc.name = (char *)"h3";
	assert_int_equal(needs(&c, ""), 1);
	hc.machine_types = types;
	hc.n_machine_types = 1;
	assert_int_equal(needs(&c, "its QEMU's machine types and CPU models"),
	    2);
	assert_int_equal(protocol_change_needs(NULL, NULL, 0), 1);
}

static void
vm_fields(void **unused)
{
	Haven__Change		c = HAVEN__CHANGE__INIT;
	Haven__VmCreate		vc = HAVEN__VM_CREATE__INIT;
	Haven__VmSet		vs = HAVEN__VM_SET__INIT;
	Haven__VmConfig		config = HAVEN__VM_CONFIG__INIT;

	(void)unused;
	c.kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	c.vm_create = &vc;
	vc.config = &config;
	config.name = (char *)"web1";
	assert_int_equal(needs(&c, ""), 1);
	/* IDE, named or not, is what an older member runs anyway. */
	config.disk_bus = HAVEN__DISK_BUS__DISK_BUS_IDE;
	assert_int_equal(needs(&c, ""), 1);
	config.disk_bus = HAVEN__DISK_BUS__DISK_BUS_VIRTIO;
	assert_int_equal(needs(&c,
	    "--disk-bus virtio (meanwhile, give --disk-bus ide)"), 2);
	config.disk_bus = HAVEN__DISK_BUS__DISK_BUS_UNSPECIFIED;
	config.firmware = (char *)"bios";
	assert_int_equal(needs(&c, ""), 1);
	config.firmware = (char *)"uefi";
	assert_int_equal(needs(&c, "--firmware uefi"), 2);
	config.firmware = (char *)"";
	config.cdrom = (char *)"/srv/iso/debian.iso";
	assert_int_equal(needs(&c, "--cdrom"), 2);
	config.cdrom = (char *)"";
	config.boot_order = (char *)"cdrom,disk";
	assert_int_equal(needs(&c, "--boot cdrom,disk"), 2);
	config.boot_order = (char *)"";
	config.machine_type = (char *)"pc-i440fx-7.2";
	assert_int_equal(needs(&c, "a VM pinned to machine type "
	    "pc-i440fx-7.2"), 2);
	config.machine_type = (char *)"";
	config.cpu_model = (char *)"qemu64";
	assert_int_equal(needs(&c, "a VM's CPU model qemu64"), 2);
	/* vm set carries the whole configuration: what the VM has of its
	 * machine type and CPU model (set on every member alike) does not
	 * count; what the operator sets does. */
	c.kind_case = HAVEN__CHANGE__KIND_VM_SET;
	c.vm_set = &vs;
	vs.config = &config;
	config.machine_type = (char *)"pc-i440fx-7.2";
	assert_int_equal(needs(&c, ""), 1);
	config.firmware = (char *)"uefi";
	assert_int_equal(needs(&c, "--firmware uefi"), 2);
}

static void
settings(void **unused)
{
	Haven__Change		c = HAVEN__CHANGE__INIT;
	Haven__SettingsSet	ss = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	s = HAVEN__CLUSTER_SETTINGS__INIT;
	char			*timeout[] = { (char *)"storage_timeout_s" };
	char			*cpu[] = { (char *)"cpu_model" };

	(void)unused;
	c.kind_case = HAVEN__CHANGE__KIND_SETTINGS_SET;
	c.settings_set = &ss;
	ss.settings = &s;
	s.storage_timeout_s = 20;
	ss.fields = timeout;
	ss.n_fields = 1;
	assert_int_equal(needs(&c, ""), 1);
	/* Named, even to clear it: an older member refuses the name. */
	ss.fields = cpu;
	assert_int_equal(needs(&c, "--cpu-model"), 2);
	/* All fields: only a CPU model set needs it. */
	ss.n_fields = 0;
	assert_int_equal(needs(&c, ""), 1);
	s.cpu_model = (char *)"qemu64";
	assert_int_equal(needs(&c, "--cpu-model"), 2);
}

static void
running(void **unused)
{
	uint32_t		 mixed[] = { 2, 0, 2 }, new[] = { 2, 2 };
	struct sync_member	 m[3];

	(void)unused;
	assert_int_equal(protocol_of(0), 1);
	assert_int_equal(protocol_of(2), 2);
	assert_int_equal(protocol_running(mixed, 3), 1);
	assert_int_equal(protocol_running(new, 2), 2);
	assert_int_equal(protocol_running(NULL, 0), HAVEN_PROTOCOL);
	/* The sync's view: the same members, the same protocol, whatever
	 * their order. */
	memset(m, 0, sizeof m);
	m[0].node_id = 1;
	m[0].protocol = HAVEN_PROTOCOL;
	m[1].node_id = 2;
	m[1].protocol = HAVEN_PROTOCOL;
	m[2].node_id = 3;
	m[2].protocol = 0;		/* a build before the field */
	assert_int_equal(sync_protocol(m, 3), 1);
	assert_int_equal(sync_protocol(m + 2, 1), 1);
	assert_int_equal(sync_protocol(m, 2), HAVEN_PROTOCOL);
	m[2].protocol = HAVEN_PROTOCOL;	/* h3 upgraded */
	assert_int_equal(sync_protocol(m, 3), HAVEN_PROTOCOL);
}

/* A varint field (wire type 0) with number f and a one-byte value. */
static size_t
varint_field(uint8_t *p, unsigned f, uint8_t v)
{
	p[0] = (uint8_t)(f << 3);
	p[1] = v;
	return 2;
}

/*
 * What an older member does with what it does not know, shown on this
 * build with field numbers nobody uses: a Change of an unknown kind
 * decodes with no kind and is refused (its seq then falls behind the
 * others'); a state with an unknown field keeps it through adopt, its
 * digest and a save (packed after the known fields).
 */
static void
unknown_to_an_older_member(void **unused)
{
	Haven__Change		*c;
	struct cluster		*st;
	Haven__ClusterState	*snap;
	uint8_t			 buf[64], d1[CLUSTER_DIGEST_SIZE];
	uint8_t			 d2[CLUSTER_DIGEST_SIZE], *packed;
	char			 err[256];
	size_t			 n = 0, len;

	(void)unused;
	/* Change { origin = 2; <kind 99> = { 1: 3 } } */
	n += varint_field(buf + n, 2, 2);
	buf[n++] = (uint8_t)((99 << 3) | 2) | 0x80;
	buf[n++] = (uint8_t)(((99 << 3) | 2) >> 7);
	buf[n++] = 2;
	n += varint_field(buf + n, 1, 3);
	c = (Haven__Change *)protobuf_c_message_unpack(
	    &haven__change__descriptor, NULL, n, buf);
	assert_non_null(c);
	assert_int_equal(c->kind_case, HAVEN__CHANGE__KIND__NOT_SET);
	assert_int_equal(c->base.n_unknown_fields, 1);
	st = cluster_new();
	assert_int_equal(cluster_check(st, c, 1, err, sizeof err),
	    CLUSTER_E_INVALID);
	assert_non_null(strstr(err, "unknown kind"));
	assert_int_equal(st->cs->seq, 0);
	protobuf_c_message_free_unpacked(&c->base, NULL);

	/* A state whose host carries HostConfig field 99 = 7, as from a
	 * newer member's snapshot. */
	packed = malloc(64);
	{
		/* Re-encode by hand: state { seq = 5; hosts = { config =
		 * { node_id = 1; name = "h1"; 99: 7 }; runtime = {} } } */
		uint8_t	cfg[16], hst[32], state[48];
		size_t	nc = 0, nh = 0, ns = 0;

		nc += varint_field(cfg + nc, 1, 1);
		cfg[nc++] = (2 << 3) | 2;
		cfg[nc++] = 2;
		cfg[nc++] = 'h';
		cfg[nc++] = '1';
		cfg[nc++] = (uint8_t)((99 << 3) | 0) | 0x80;
		cfg[nc++] = (uint8_t)(((99 << 3) | 0) >> 7);
		cfg[nc++] = 7;
		hst[nh++] = (1 << 3) | 2;
		hst[nh++] = (uint8_t)nc;
		memcpy(hst + nh, cfg, nc);
		nh += nc;
		hst[nh++] = (2 << 3) | 2;
		hst[nh++] = 0;
		ns += varint_field(state + ns, 2, 5);
		state[ns++] = (4 << 3) | 2;
		state[ns++] = (uint8_t)nh;
		memcpy(state + ns, hst, nh);
		ns += nh;
		snap = (Haven__ClusterState *)protobuf_c_message_unpack(
		    &haven__cluster_state__descriptor, NULL, ns, state);
		assert_non_null(snap);
		assert_int_equal(
		    snap->hosts[0]->config->base.n_unknown_fields, 1);
		assert_int_equal(cluster_adopt(st, snap, err, sizeof err),
		    CLUSTER_OK);
		/* Kept, and in the digest: the same bytes as the source's. */
		assert_int_equal(
		    st->cs->hosts[0]->config->base.n_unknown_fields, 1);
		cluster_digest(st, d1);
		len = protobuf_c_message_get_packed_size(&st->cs->base);
		assert_int_equal(len, ns);
		protobuf_c_message_pack(&st->cs->base, packed);
		assert_memory_equal(packed, state, ns);
		cluster_digest(st, d2);
		assert_memory_equal(d1, d2, sizeof d1);
		protobuf_c_message_free_unpacked(&snap->base, NULL);
	}
	free(packed);
	cluster_free(st);
}

static void
multipath(void **unused)
{
	Haven__Change		c = HAVEN__CHANGE__INIT;
	Haven__PoolAdd		add = HAVEN__POOL_ADD__INIT;
	Haven__PoolConfig	pc = HAVEN__POOL_CONFIG__INIT;
	Haven__HostStorage	hs = HAVEN__HOST_STORAGE__INIT;
	Haven__PoolHealth	ph = HAVEN__POOL_HEALTH__INIT, *phs[] = { &ph };
	char			*portals[] = { (char *)"10.77.2.2",
				    (char *)"10.77.5.2" };
	protobuf_c_boolean	 up[] = { 1, 0 };

	(void)unused;
	/* A pool on one portal: protocol 1; on two: 3. */
	c.kind_case = HAVEN__CHANGE__KIND_POOL_ADD;
	c.pool_add = &add;
	add.config = &pc;
	pc.name = (char *)"san";
	pc.portal = portals[0];
	assert_int_equal(needs(&c, ""), 1);
	pc.portals = portals;
	pc.n_portals = 1;
	assert_int_equal(needs(&c, ""), 1);
	pc.n_portals = 2;
	assert_int_equal(needs(&c, "a pool on 2 portals (--portal more than "
	    "once)"), 3);
	/* A storage report of the pool alone: 1; with its paths: 3. */
	c.kind_case = HAVEN__CHANGE__KIND_HOST_STORAGE;
	c.host_storage = &hs;
	hs.pools = phs;
	hs.n_pools = 1;
	ph.pool = (char *)"san";
	ph.reachable = 1;
	assert_int_equal(needs(&c, ""), 1);
	ph.paths = portals;
	ph.n_paths = 2;
	ph.path_reachable = up;
	ph.n_path_reachable = 2;
	assert_int_equal(needs(&c, "a storage report per path"), 3);
}

static void
corosync_conf(void **unused)
{
	Haven__Change		c = HAVEN__CHANGE__INIT;
	Haven__SettingsSet	set = HAVEN__SETTINGS_SET__INIT;
	Haven__ClusterSettings	cs = HAVEN__CLUSTER_SETTINGS__INIT;
	char			*fields[] = { (char *)"corosync_conf" };

	(void)unused;
	c.kind_case = HAVEN__CHANGE__KIND_SETTINGS_SET;
	c.settings_set = &set;
	set.settings = &cs;
	assert_int_equal(needs(&c, ""), 1);
	cs.corosync_conf = (char *)"totem { }";
	assert_int_equal(needs(&c, "cluster join or node remove (the "
	    "cluster's corosync.conf)"), 3);
	set.fields = fields;
	set.n_fields = 1;
	cs.corosync_conf = (char *)"";
	assert_int_equal(needs(&c, "cluster join or node remove (the "
	    "cluster's corosync.conf)"), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kinds),
		cmocka_unit_test(vm_fields),
		cmocka_unit_test(settings),
		cmocka_unit_test(running),
		cmocka_unit_test(multipath),
		cmocka_unit_test(corosync_conf),
		cmocka_unit_test(unknown_to_an_older_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
