/*
 * corosync's timing, chosen by Haven (issue 21), and the corosync.conf
 * Haven writes with it (corosync.c): `havenctl cluster corosync-conf`
 * prints it, the lab writes every host's from it. The argument, written
 * once like fence/timeline.h's (which builds on it):
 *
 * Detection of a lost host D = the token timeout T' + consensus C: a token
 * not back within T' starts a new membership round, which ends after at
 * most C. corosync's default stretches the token with the cluster,
 * T' = token + (n - 2) * token_coefficient (650 ms), for rings whose token
 * takes long to go round. Measured in the lab with T = 1000 ms: 4.66 s at 3
 * hosts, 7.58 s at 5, 11.96 s at 8, from power loss to the VM running
 * elsewhere -- detection grows by about 1.5 s per host, and failover in
 * seconds is lost at the sizes operators run (8 to 32 hosts).
 *
 * Haven's ring is small and on a dedicated management network: a token
 * goes round 32 hosts in well under a millisecond per hop, so the time a
 * host may go silent (a CPU stall, a busy link) is what T must cover, and
 * that does not grow with n. So:
 *   token_coefficient = 0      T' = T at every size: detection stays flat.
 *   token = T                  haven.conf [cluster] token_ms (default
 *                              COROSYNC_TOKEN_MS); havend reads corosync's
 *                              effective token at start and uses that one
 *                              for the watchdog and takeover timing.
 *   consensus = 1.2 T          corosync's own ratio, written out.
 *   knet ping interval = T / 4, ping timeout = T / 2, pong count 2
 *                              (corosync's defaults for T, written out): a
 *                              link is down half a token after its last
 *                              pong, so knet gives up a dead link well
 *                              before the token is lost.
 * D = 2.2 T: 3.3 s with the default T of 1500 ms, at 3 hosts or 32. A
 * host silent for less than T (a stall, a flapping link's short cut) is
 * not declared lost; one silent for longer is, and is fenced before its
 * VMs start elsewhere (fence/timeline.h): never twice.
 */
#ifndef HAVEN_CONFIG_COROSYNC_H
#define HAVEN_CONFIG_COROSYNC_H

#include <stddef.h>
#include <stdio.h>

#define COROSYNC_TOKEN_MS		1500	/* haven.conf's default T */
#define COROSYNC_TOKEN_COEFFICIENT_MS	0
#define COROSYNC_CONSENSUS_PERMILLE	1200	/* of T */
#define COROSYNC_KNET_PONG_COUNT	2
#define COROSYNC_MAX_NODES		64
#define COROSYNC_QDEVICE_PORT		5403

struct corosync_timing {
	unsigned	 token_ms;
	unsigned	 token_coefficient_ms;
	unsigned	 consensus_ms;
	unsigned	 knet_ping_interval_ms;
	unsigned	 knet_ping_timeout_ms;
	unsigned	 knet_pong_count;
};

/* The timing for a token of token_ms (the argument above). */
void		 corosync_timing(unsigned token_ms, struct corosync_timing *);

struct corosync_node {
	unsigned	 id;		/* corosync's nodeid, > 0 */
	const char	*name;		/* the host's name (haven.conf [node]) */
	const char	*addr;		/* its management address (ring0) */
	const char	*addr2;		/* a second link's (ring1); NULL: one */
};

struct corosync_conf {
	const char			*cluster;	/* cluster_name */
	unsigned			 token_ms;
	const struct corosync_node	*nodes;
	size_t				 nnodes;
	const char			*qdevice_host;	/* NULL: no witness */
	unsigned			 qdevice_port;
	int				 qdevice_tls;	/* off: a lab only */
	const char			*logfile;	/* NULL: syslog */
};

/* Writes corosync.conf; -1 with a sentence in err when conf is not one
 * (names, addresses, ids, sizes). */
int		 corosync_conf_write(FILE *, const struct corosync_conf *,
		     char *err, size_t errlen);

/*
 * A corosync.conf Haven wrote, read back (cluster init, join and node
 * remove change the nodelist of the one every member runs): the strings of
 * conf point into the struct corosync_parsed. -1 with a sentence in err
 * when text is not one Haven writes (only its keys are read).
 */
struct corosync_parsed {
	struct corosync_conf	 conf;
	struct corosync_node	 nodes[COROSYNC_MAX_NODES];
	char			 cluster[64];
	char			 name[COROSYNC_MAX_NODES][64];
	char			 addr[COROSYNC_MAX_NODES][2][46];
	char			 qdevice_host[46];
	char			 logfile[256];
};
int		 corosync_conf_parse(const char *text, struct corosync_parsed *,
		     char *err, size_t errlen);

#endif
