/*
 * libFuzzer harness for replicated changes: arbitrary bytes are decoded as
 * a Change (they come off CPG from peers) and applied to a small state,
 * quorate and not; the state must keep its invariants whatever is applied,
 * a refusal must leave it untouched, and a reconcile over it must not crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clusterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct cluster *
small_state(void)
{
	static const char *const names[] = { "h1", "h2", "h3" };
	struct cluster		*st = cluster_new();
	Haven__Change		 c = HAVEN__CHANGE__INIT;
	Haven__HostAdd		 ha = HAVEN__HOST_ADD__INIT;
	Haven__HostConfig	 hc = HAVEN__HOST_CONFIG__INIT;
	Haven__HostJoin		 hj = HAVEN__HOST_JOIN__INIT;
	Haven__VmCreate		 vmc = HAVEN__VM_CREATE__INIT;
	Haven__VmConfig		 vc = HAVEN__VM_CONFIG__INIT;
	Haven__VmSetDesired	 sd = HAVEN__VM_SET_DESIRED__INIT;
	uint32_t		 i;

	cluster_set_epoch(st, 1, 1);
	for (i = 0; i < 3; i++) {
		hc.node_id = i + 1;
		hc.name = (char *)names[i];
		hc.memory_mib = 4096;
		ha.config = &hc;
		c.kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c.host_add = &ha;
		cluster_apply(st, &c, 1, NULL, 0);
		hj.node_id = i + 1;
		c.kind_case = HAVEN__CHANGE__KIND_HOST_JOIN;
		c.host_join = &hj;
		cluster_apply(st, &c, 1, NULL, 0);
	}
	vc.name = "web1";
	vc.memory_mib = 1024;
	vc.vcpus = 1;
	vmc.config = &vc;
	c.kind_case = HAVEN__CHANGE__KIND_VM_CREATE;
	c.vm_create = &vmc;
	cluster_apply(st, &c, 1, NULL, 0);
	sd.name = "web1";
	sd.desired = HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING;
	c.kind_case = HAVEN__CHANGE__KIND_VM_SET_DESIRED;
	c.vm_set_desired = &sd;
	cluster_apply(st, &c, 1, NULL, 0);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t		 members[] = { 1, 2 };
	struct cluster			*st;
	Haven__Change			*c;
	struct coordinator_decisions	 d;
	uint8_t				 before[CLUSTER_DIGEST_SIZE],
					 after[CLUSTER_DIGEST_SIZE];
	char				 err[256];
	size_t				 i;
	int				 r;

	c = haven__change__unpack(NULL, size, data);
	if (c == NULL)
		return 0;
	st = small_state();
	cluster_digest(st, before);

	/* Not quorate: always refused, nothing changes. */
	if (cluster_apply(st, c, 0, err, sizeof err) != CLUSTER_E_NOT_QUORATE)
		abort();
	r = cluster_apply(st, c, 1, err, sizeof err);
	cluster_digest(st, after);
	if (r != CLUSTER_OK && memcmp(before, after, sizeof before) != 0)
		abort();
	if (cluster_validate(st->cs, err, sizeof err) != CLUSTER_OK)
		abort();

	/* Whatever the change did, reconcile and apply the decisions. */
	if (coordinator_reconcile(st, members, 2, &d) == 0) {
		for (i = 0; i < d.n; i++)
			cluster_apply(st, d.changes[i], 1, err, sizeof err);
		coordinator_decisions_free(&d);
	}
	if (cluster_validate(st->cs, err, sizeof err) != CLUSTER_OK)
		abort();
	cluster_free(st);
	haven__change__free_unpacked(c, NULL);
	return 0;
}
