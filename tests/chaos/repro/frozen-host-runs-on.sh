#!/bin/bash
# frozen-host-runs-on.sh — found by tests/chaos/run (seed 2, fault 29:
# freeze-long h3, held 6.3 s, with vm1, vm2, vm3 all on h3): h3 frozen
# (lab pause) past the failover, the VMs started on h1 and h2, then h3
# resumed: vm1's old QEMU on h3 executed in the same 50 ms auditor sample as
# the new copy on h1, for the ~20-40 ms until h3's worker found its
# reservation preempted and killed it ("fenced: QEMU killed, I/O stopped").
# Its writes are refused (fenced), but the guest ran on two hosts at once:
# issue 14's "Twice", item 3. The auditor logs it as a near miss (it
# confirms violations over 150 ms, for migration handovers); the chaos
# runner counts a near miss outside a migration as a double run.
# This freezes each host in turn past the failover, 9 times; exit 1 if any
# resumed host's QEMU ran beside the survivor's copy, 0 if none did (a race:
# 1 of the 5 freeze-long faults of seeds 1-4). Needs root; run under
# `flock /run/haven-lab.lock`; evidence in the directory it prints.
set -uo pipefail
exec "$(dirname "$0")/../run" --converge-s 45 \
	--plan 'freeze-long:h3,freeze-long:h1,freeze-long:h2,freeze-long:h3,freeze-long:h1,freeze-long:h2,freeze-long:h3,freeze-long:h1,freeze-long:h2' "$@"
