/*
 * proto/nic.c: the rules a VM's NICs are checked against when a member
 * applies vm_create, the MACs havend chooses, and which hosts offer a VM's
 * bridges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "proto.h"

#define UUID_A	"0b7e1c2a-5d3f-4e8a-9c1b-2f3e4d5a6b7c"

/* A config with n NICs on br0, MACs as given (NULL: none yet). */
struct vm_fixture {
	Haven__VmConfig	 vc;
	Haven__Nic	 nic[NIC_MAX + 2];
	Haven__Nic	*nics[NIC_MAX + 2];
};

static void
fixture(struct vm_fixture *f, const char *name, size_t n,
    const char *const *macs)
{
	size_t	 i;

	memset(f, 0, sizeof *f);
	haven__vm_config__init(&f->vc);
	f->vc.name = (char *)name;
	f->vc.uuid = (char *)UUID_A;
	for (i = 0; i < n; i++) {
		haven__nic__init(&f->nic[i]);
		f->nic[i].bridge = (char *)"br0";
		f->nic[i].mac = (char *)(macs != NULL && macs[i] != NULL ?
		    macs[i] : "");
		f->nics[i] = &f->nic[i];
	}
	f->vc.nics = f->nics;
	f->vc.n_nics = n;
}

static void
test_model(void **state)
{
	Haven__NicModel	 m;

	(void)state;
	assert_int_equal(nic_model_parse("virtio", &m), 0);
	assert_int_equal(m, HAVEN__NIC_MODEL__NIC_MODEL_VIRTIO);
	assert_int_equal(nic_model_parse("e1000", &m), 0);
	assert_int_equal(m, HAVEN__NIC_MODEL__NIC_MODEL_E1000);
	assert_int_equal(nic_model_parse("rtl8139", &m), -1);
	assert_int_equal(nic_model_parse("", &m), -1);
	assert_string_equal(nic_model_name(0), "virtio");
	assert_string_equal(nic_model_name(2), "e1000");
}

static void
test_check(void **state)
{
	static const char *const ok[] = { "0a:00:00:00:00:01",
	    "0a:00:00:00:00:02" };
	struct vm_fixture	 f;
	char			 err[256];

	(void)state;
	fixture(&f, "web", 2, ok);
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), 0);
	f.nic[1].vlan = 4094;
	f.nic[1].model = HAVEN__NIC_MODEL__NIC_MODEL_E1000;
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), 0);

	f.nic[1].vlan = 4095;
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "VLAN 4095 is out of range"));
	f.nic[1].vlan = 0;
	f.nic[1].model = 7;
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "virtio or e1000"));
	f.nic[1].model = 0;

	f.nic[0].bridge = (char *)"";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "is not a bridge name"));
	f.nic[0].bridge = (char *)"a-bridge-name-too-long";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	f.nic[0].bridge = (char *)"br0";

	f.nic[0].mac = (char *)"01:00:5e:00:00:01";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "multicast"));
	f.nic[0].mac = (char *)"00:00:00:00:00:00";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "all zeros"));
	f.nic[0].mac = (char *)"0a:00:00:00:00";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "is not a MAC address"));
	f.nic[0].mac = (char *)"";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "has no MAC"));

	/* The same MAC twice, in another case. */
	f.nic[0].mac = (char *)"0A:00:00:00:00:02";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "NICs 0 and 1 have the same MAC"));
}

static void
test_limits(void **state)
{
	static const char *const macs[] = { "0a:00:00:00:00:01",
	    "0a:00:00:00:00:02", "0a:00:00:00:00:03", "0a:00:00:00:00:04",
	    "0a:00:00:00:00:05", "0a:00:00:00:00:06", "0a:00:00:00:00:07",
	    "0a:00:00:00:00:08", "0a:00:00:00:00:09" };
	struct vm_fixture	 f;
	char			 err[256];

	(void)state;
	fixture(&f, "web", NIC_MAX, macs);
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), 0);
	fixture(&f, "web", NIC_MAX + 1, macs);
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "at most 8"));

	/* An initrd is loaded with a kernel only. */
	fixture(&f, "web", 0, NULL);
	f.vc.initrd = (char *)"/boot/initrd.img";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), -1);
	assert_non_null(strstr(err, "--kernel"));
	f.vc.kernel = (char *)"/boot/vmlinuz";
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), 0);
}

static void
test_derive(void **state)
{
	uint8_t	 a[NET_MAC_BYTES], b[NET_MAC_BYTES];

	(void)state;
	nic_mac_derive(UUID_A, 0, 0, a);
	nic_mac_derive(UUID_A, 0, 0, b);
	assert_memory_equal(a, b, NET_MAC_BYTES);	/* deterministic */
	assert_int_equal(a[0], NIC_MAC_PREFIX);
	assert_true(a[0] & NET_MAC_LOCAL);
	assert_false(a[0] & NET_MAC_MULTICAST);
	assert_null(net_mac_problem(a));
	nic_mac_derive(UUID_A, 1, 0, b);
	assert_memory_not_equal(a, b, NET_MAC_BYTES);
	nic_mac_derive(UUID_A, 0, 1, b);
	assert_memory_not_equal(a, b, NET_MAC_BYTES);
}

/* Chosen MACs avoid every MAC of the state and of the VM itself. */
static void
test_fill(void **state)
{
	Haven__ClusterState	 cs = HAVEN__CLUSTER_STATE__INIT;
	struct vm_fixture	 other, f;
	Haven__Vm		 vm = HAVEN__VM__INIT, *vms[1] = { &vm };
	uint8_t			 first[NET_MAC_BYTES], mac[NET_MAC_BYTES];
	char			 taken[NET_MAC_STRLEN + 1], given[NET_MAC_STRLEN + 1];
	char			 macs[NIC_MAX][NET_MAC_STRLEN + 1], err[256];
	const char		*by_hand[3];
	size_t			 nic;

	(void)state;
	/* Another VM holds what NIC 0 would get first. */
	nic_mac_derive(UUID_A, 0, 0, first);
	net_mac_format(first, taken);
	by_hand[0] = taken;
	fixture(&other, "db", 1, by_hand);
	other.vc.uuid = (char *)"11111111-2222-4333-8444-555555555555";
	vm.config = &other.vc;
	cs.vms = vms;
	cs.n_vms = 1;
	assert_ptr_equal(nic_mac_user(&cs, first, NULL, &nic), &vm);
	assert_int_equal(nic, 0);

	/* NIC 2 is given what NIC 1 would get first. */
	nic_mac_derive(UUID_A, 1, 1, mac);
	net_mac_format(mac, given);
	by_hand[0] = by_hand[1] = NULL;
	by_hand[2] = given;
	fixture(&f, "web", 3, by_hand);
	memset(macs, 0, sizeof macs);
	assert_int_equal(nic_mac_fill(&cs, &f.vc, macs), 0);
	assert_string_not_equal(f.nic[0].mac, taken);
	assert_string_equal(f.nic[2].mac, given);
	assert_string_not_equal(f.nic[1].mac, given);
	assert_int_equal(nic_config_check(&f.vc, err, sizeof err), 0);
	assert_int_equal(net_mac_parse(f.nic[0].mac, mac), 0);
	assert_null(nic_mac_user(&cs, mac, NULL, NULL));
	assert_int_equal(mac[0], NIC_MAC_PREFIX);
}

static void
test_bridges(void **state)
{
	Haven__HostConfig	 h = HAVEN__HOST_CONFIG__INIT;
	char			*offered[2] = { (char *)"br0", (char *)"br1" };
	struct vm_fixture	 f;
	char			 missing[NIC_BRIDGE_PER_VLAN_MAX];

	(void)state;
	fixture(&f, "web", 2, NULL);
	f.nic[1].bridge = (char *)"br1";
	assert_false(nic_bridges_offered(&h, &f.vc, missing, sizeof missing));
	assert_string_equal(missing, "br0");
	h.vm_bridges = offered;
	h.n_vm_bridges = 1;
	assert_false(nic_bridges_offered(&h, &f.vc, missing, sizeof missing));
	assert_string_equal(missing, "br1");
	h.n_vm_bridges = 2;
	assert_true(nic_bridges_offered(&h, &f.vc, NULL, 0));
	/* A VM without NICs fits every host, bridges or not. */
	fixture(&f, "plain", 0, NULL);
	h.n_vm_bridges = 0;
	assert_true(nic_bridges_offered(&h, &f.vc, NULL, 0));
}

/* A NIC on VLAN 10 of br0: a host whose br0 filters VLANs, or that offers
 * br0v10, carries it; a host with a plain br0 alone does not, and the
 * bridge it lacks is br0v10. */
static void
test_bridges_vlan(void **state)
{
	Haven__HostConfig	 h = HAVEN__HOST_CONFIG__INIT;
	char			*offered[2] = { (char *)"br0", (char *)"br0v10" };
	char			*filtering[1] = { (char *)"br0" };
	char			 missing[NIC_BRIDGE_PER_VLAN_MAX];
	struct vm_fixture	 f;

	(void)state;
	fixture(&f, "web", 1, NULL);
	f.nic[0].vlan = 10;
	h.vm_bridges = offered;
	h.n_vm_bridges = 1;
	assert_false(nic_bridges_offered(&h, &f.vc, missing, sizeof missing));
	assert_string_equal(missing, "br0v10");
	h.vlan_filtering = filtering;
	h.n_vlan_filtering = 1;
	assert_true(nic_bridges_offered(&h, &f.vc, NULL, 0));
	h.n_vlan_filtering = 0;
	h.n_vm_bridges = 2;
	assert_true(nic_bridges_offered(&h, &f.vc, NULL, 0));
	/* VLAN 20 is neither. */
	f.nic[0].vlan = 20;
	assert_false(nic_bridges_offered(&h, &f.vc, missing, sizeof missing));
	assert_string_equal(missing, "br0v20");
	/* Untagged: br0 is enough. */
	f.nic[0].vlan = 0;
	assert_true(nic_bridges_offered(&h, &f.vc, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_bridges),
		cmocka_unit_test(test_bridges_vlan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
