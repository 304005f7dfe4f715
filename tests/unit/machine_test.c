/*
 * proto/machine.c: QEMU's own lists as havend reads them (`-machine help`
 * and `-cpu help` of QEMU 7.2, excerpts), what "pc" resolves to, the one
 * volume limit per bus, and whether a host's QEMU runs a VM's machine, with
 * the sentence placement and moves give when it does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static const char machines_72[] =
    "Supported machines are:\n"
    "microvm              microvm (i386)\n"
    "pc                   Standard PC (i440FX + PIIX, 1996) (alias of "
    "pc-i440fx-7.2)\n"
    "pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n"
    "pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)\n"
    "q35                  Standard PC (Q35 + ICH9, 2009) (alias of "
    "pc-q35-7.2)\n"
    "pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n"
    "isapc                ISA-only PC\n"
    "none                 empty machine\n";

static const char cpus_72[] =
    "Available CPUs:\n"
    "x86 486                   (alias configured by machine type)\n"
    "x86 Westmere              (alias configured by machine type)\n"
    "x86 Westmere-IBRS         (alias of Westmere-v2)\n"
    "x86 Westmere-v1           Westmere E56xx/L56xx/X56xx (Nehalem-C)\n"
    "x86 base                  base CPU model type with no features enabled\n"
    "x86 host                  processor with all supported host features \n"
    "x86 max                   Enables all features supported by the "
    "accelerator in the current host\n"
    "\n"
    "Recognized CPUID flags:\n"
    "  3dnow 3dnowext 3dnowprefetch abm ace2 aes\n";

static int
listed(const struct machine_list *l, const char *name)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return 1;
	return 0;
}

static void
test_parse_machines(void **state)
{
	struct machine_list	 l = { .n = 0 };
	char			 pc[64];
	size_t			 i;

	(void)state;
	assert_int_equal(machine_parse_machines(machines_72, &l, pc,
	    sizeof pc), 0);
	assert_string_equal(pc, "pc-i440fx-7.2");
	assert_int_equal(l.n, 8);
	assert_true(listed(&l, "pc-i440fx-7.2"));
	assert_true(listed(&l, "pc"));
	assert_true(listed(&l, "none"));
	assert_false(listed(&l, "Supported"));
	for (i = 1; i < l.n; i++)
		assert_true(strcmp(l.names[i - 1], l.names[i]) < 0);
	machine_list_free(&l);
	/* A QEMU without the alias line: nothing resolved, no guess. */
	assert_int_equal(machine_parse_machines("pc-i440fx-6.2   x\n", &l, pc,
	    sizeof pc), 0);
	assert_string_equal(pc, "");
	assert_int_equal(l.n, 1);
	machine_list_free(&l);
}

static void
test_parse_cpus(void **state)
{
	struct machine_list	 l = { .n = 0 };

	(void)state;
	assert_int_equal(machine_parse_cpus(cpus_72, 0, &l), 0);
	assert_int_equal(l.n, 6);
	assert_true(listed(&l, "Westmere-v1"));
	assert_true(listed(&l, "max"));
	assert_false(listed(&l, "host"));	/* no KVM here */
	assert_false(listed(&l, "3dnow"));
	machine_list_free(&l);
	assert_int_equal(machine_parse_cpus(cpus_72, 1, &l), 0);
	assert_true(listed(&l, "host"));
	machine_list_free(&l);
}

static void
test_volumes(void **state)
{
	char	 err[200];

	(void)state;
	assert_int_equal(machine_volumes_check("a", 4, 0, err, sizeof err), 0);
	assert_int_equal(machine_volumes_check("a", 5, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "IDE bus, which takes 4"));
	assert_int_equal(machine_volumes_check("a", 5,
	    HAVEN__DISK_BUS__DISK_BUS_IDE, err, sizeof err), -1);
	assert_int_equal(machine_volumes_check("a", VM_MAX_VOLUMES,
	    HAVEN__DISK_BUS__DISK_BUS_VIRTIO, err, sizeof err), 0);
	assert_int_equal(machine_volumes_check("a", VM_MAX_VOLUMES,
	    HAVEN__DISK_BUS__DISK_BUS_SCSI, err, sizeof err), 0);
	assert_int_equal(machine_volumes_check("a", VM_MAX_VOLUMES + 1,
	    HAVEN__DISK_BUS__DISK_BUS_SCSI, err, sizeof err), -1);
	assert_string_equal(err, "VM a has 9 volumes; at most 8");
	assert_int_equal(machine_volumes_check("a", 1, 4, err, sizeof err), -1);
	assert_string_equal(machine_disk_bus_name(0), "ide");
	assert_string_equal(machine_disk_bus_name(2), "virtio");
}

static void
test_host_offers(void **state)
{
	char			*types[] = { "pc", "pc-i440fx-7.1" };
	char			*cpus[] = { "Westmere-v1", "max" };
	Haven__HostConfig	 h = HAVEN__HOST_CONFIG__INIT;
	char			 why[160];

	(void)state;
	h.name = "h3";
	/* Not reported (an older havend): not checked. */
	assert_true(machine_host_offers(&h, "pc-i440fx-7.2", "Westmere-v1",
	    why, sizeof why));
	h.machine_types = types;
	h.n_machine_types = 2;
	h.cpu_models = cpus;
	h.n_cpu_models = 2;
	assert_false(machine_host_offers(&h, "pc-i440fx-7.2", "Westmere-v1",
	    why, sizeof why));
	assert_string_equal(why, "h3's QEMU has no machine type pc-i440fx-7.2");
	assert_true(machine_host_offers(&h, "pc-i440fx-7.1", "Westmere-v1",
	    why, sizeof why));
	assert_false(machine_host_offers(&h, "", "Haswell-v4", why,
	    sizeof why));
	assert_string_equal(why, "h3's QEMU has no CPU model Haswell-v4");
	assert_false(machine_host_offers(&h, NULL, "host", why, sizeof why));
	assert_non_null(strstr(why, "KVM"));
	/* A VM from before (unpinned, no model yet) goes anywhere. */
	assert_true(machine_host_offers(&h, "", "", why, sizeof why));
	assert_string_equal(machine_cpu_model(NULL), MACHINE_CPU_MODEL_DEFAULT);
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(machine_name_valid("pc-i440fx-7.2"));
	assert_true(machine_name_valid("Westmere-v1"));
	assert_false(machine_name_valid(""));
	assert_false(machine_name_valid("Westmere,+vmx"));
	assert_false(machine_name_valid("pc accel=kvm"));
	assert_false(machine_name_valid("a=b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_machines),
		cmocka_unit_test(test_parse_cpus),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_host_offers),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
