/*
 * The timing argument of fencing and failover, written once (DESIGN §4;
 * like sanlock's timeouts.h). The code uses these constants; change them
 * here and re-check the argument.
 *
 * Names: T = corosync token (haven.conf [cluster] token_ms, 1500 ms by
 * default and in the lab; havend follows the one corosync runs with),
 * D = detection = T + consensus (1.2 T) = 2.2 T at any number of hosts,
 * since Haven's corosync.conf has no token_coefficient (config/corosync.h;
 * corosync's default adds 650 ms per host beyond two). With T = 1500,
 * D = 3.3 s.
 *
 *   t = 0      host H fails: power loss, cut off from the management
 *              network, or hung (SIGSTOP, a stuck kernel).
 *   t = D      the survivors' corosync forms a membership without H. An
 *              isolated H, alive, forms its own membership at about the
 *              same time (it runs the same token and consensus timers) and
 *              loses quorum.
 *   H, isolated: within FENCE_ISOLATION_BOUND_MS of losing quorum it
 *              applies each VM's isolation response (default: SIGKILL of
 *              QEMU via its worker, which takes milliseconds). A hung H
 *              does nothing -- its VMs are frozen with it -- and stops
 *              petting its watchdog, which resets it after the watchdog
 *              timeout W ([watchdog] timeout_s).
 *   survivors: the coordinator marks H lost (VMs "recovering") and runs
 *              H's fence levels in order:
 *              storage  PREEMPT AND ABORT of H's key on every volume, then
 *                       read the keys back: from then on H cannot write,
 *                       whatever it does (milliseconds). Alive but cut off,
 *                       H may still run QEMU until its isolation response;
 *                       so the VMs start no earlier than
 *                       FENCE_TAKEOVER_DELAY_MS after H was marked lost,
 *                       which is longer than FENCE_ISOLATION_BOUND_MS plus
 *                       the skew between the two sides' detection (well
 *                       under a token). Hung, H would run its QEMUs again
 *                       the moment it resumes; its watchdog W must have
 *                       reset it first. H froze at t0 and was last petted
 *                       no later, so it is reset by t0 + W; the survivors
 *                       cannot mark it lost before t0 + 2T (a token lost,
 *                       then consensus, 1.2 T by default). The VMs
 *                       therefore also wait until W +
 *                       FENCE_WATCHDOG_RESET_MARGIN_MS - 2T after H was
 *                       marked lost (fence_takeover_wait_ms); haven.conf's
 *                       default W keeps that under FENCE_TAKEOVER_DELAY_MS.
 *              agent    a fence agent (fence_ipmilan...) reports H powered
 *                       off: nothing of H runs; no further wait.
 *              watchdog wait W + FENCE_WATCHDOG_MARGIN_MS after H was
 *                       marked lost: its watchdog must have fired.
 *   t = D + takeover delay + start: the VMs run on the survivors.
 *              Target (issue 14): total <= D + 0.5 s.
 *
 * Why the takeover delay and not just the PR fence: a fenced H cannot
 * write, so no acknowledged write is lost either way; the delay keeps a VM
 * from *running* on two hosts at once (the auditor's rule) while an
 * isolated H has not yet killed its QEMU. A resumed, formerly hung H finds
 * itself fenced: its workers' next write gets RESERVATION CONFLICT, their
 * lease check sees a newer generation, and its havend kills every worker
 * whose VM the state gives to another host.
 */
#ifndef HAVEN_FENCE_TIMELINE_H
#define HAVEN_FENCE_TIMELINE_H

/* Quorum lost -> this host's VMs have had their isolation response
 * (havend runs SCHED_RR with its memory locked: votequorum's callback to
 * SIGKILL of QEMU takes a few ms; measured in lab.failover's cut). */
#define FENCE_ISOLATION_BOUND_MS	100
/* Host marked lost -> its VMs may start elsewhere (storage level): the
 * bound above plus the skew between the two sides' detection (the same
 * token and consensus timers on both; well under 100 ms in the lab). */
#define FENCE_TAKEOVER_DELAY_MS		200
/* How often havend pets the watchdog while healthy (W is 2 s or more). */
#define FENCE_WATCHDOG_PET_MS		500
/* A watchdog's expiry -> nothing of its host runs any more. */
#define FENCE_WATCHDOG_RESET_MARGIN_MS	300
/* Beyond the victim's watchdog timeout before the watchdog level says
 * "fenced". */
#define FENCE_WATCHDOG_MARGIN_MS	2000
/* A fence agent that has not answered by then has failed. */
#define FENCE_AGENT_TIMEOUT_MS		60000
/* The storage level (log in, preempt every volume, verify). */
#define FENCE_STORAGE_TIMEOUT_MS	15000

/*
 * How long after a host was marked lost its VMs wait once the storage level
 * fenced it: the isolation response of a host cut off, and the watchdog
 * (watchdog_s, 0 for none) of a host frozen, whatever came later. token_ms
 * is the corosync token T.
 */
static inline unsigned
fence_takeover_wait_ms(unsigned watchdog_s, unsigned token_ms)
{
	unsigned	reset = watchdog_s * 1000U + FENCE_WATCHDOG_RESET_MARGIN_MS;

	if (watchdog_s == 0 || reset <= 2 * token_ms ||
	    reset - 2 * token_ms < FENCE_TAKEOVER_DELAY_MS)
		return FENCE_TAKEOVER_DELAY_MS;
	return reset - 2 * token_ms;
}

#endif
