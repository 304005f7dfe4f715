#!/bin/bash
# rejoining-coordinator-fences-itself.sh — found by ctest lab.chaos (seed 14
# --skip lun-offline,cut-storage-long, fault 5: majority-loss h1): h2 and h3
# powered off (h1 alone, not quorate, stops its VMs), then powered on. h2
# and h3 form a quorate membership a few hundred ms before h1 merges; h2,
# their coordinator, declares host 1 lost and starts fencing it; h1 joins
# before that fencing reports, becomes the coordinator (lowest node id),
# adopts h2's state and tries to fence node 1 — itself — every 15 s:
# "fencing node 1: level 1 (storage) failed: 3 of 3 volumes not fenced;
# ...: verifying: File exists". Node 1 stays member=true membership=lost
# fence=failed, and h1's VMs stay "recovering" for good; vm stop + vm start
# does not help. A race: the fault passed once in two runs.
# This runs that fault (keeping h1, the future coordinator) up to 6 times
# with the chaos runner and stops at the first that does not converge.
# Exit 0 if all converged (not reproduced), 1 if one got stuck; 77 when not
# root. Run under `flock /run/haven-lab.lock`; evidence in /tmp/haven-chaos.*.
set -uo pipefail
plan=majority-loss:h1
for _ in 2 3 4 5 6; do plan+=,majority-loss:h1; done
exec "$(dirname "$0")/../run" --plan "$plan" --converge-s 45 "$@"
