/*
 * havend: Haven's daemon, one per host (DESIGN §2, §5). It reads the host's
 * configuration, joins the cluster through corosync (CPG group and
 * votequorum; no heartbeat of its own), keeps this host's replica of the
 * cluster state, runs the coordinator when it is the lowest node id of a
 * quorate membership, supervises this host's VM workers and reports its
 * storage health (health.c). This file has the loop and its callbacks;
 * havend.h lists the files for the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include <systemd/sd-daemon.h>

#include "alert.h"
#include "metrics.h"
#include "havend.h"
#include "common.h"
#include "fence.h"
#include "migrate.h"
#include "storage.h"
#include "timeline.h"

static void	havend_pending_expire(struct havend *, int);
static void	havend_leave_lost(struct havend *, const char *);

static void
havend_connected(struct membership *m, uint32_t node_id, void *arg)
{
	struct havend	*h = arg;

	h->node_id = node_id;
	h->corosync_up = 1;
	log_info("joined the cluster as node %u", node_id);
}

static void
havend_disconnected(struct membership *m, void *arg)
{
	struct havend	*h = arg;

	if (h->quorate)
		havend_isolate(h);
	h->quorate = 0;
	h->nmembers = 0;
	h->corosync_up = 0;
	log_warn("lost corosync; not quorate until it is back (the watchdog "
	    "is not petted meanwhile)");
}

static void
havend_changed(struct membership *m, const uint32_t *members, size_t n,
    const uint32_t *joined, size_t njoined, const uint32_t *left,
    size_t nleft, void *arg)
{
	size_t	i;

	struct havend	*h = arg;

	for (i = 0; i < njoined; i++)
		log_info("node %u joined", joined[i]);
	for (i = 0; i < nleft; i++)
		log_info("node %u left", left[i]);
	/* Decisions of the old configuration may never come back. */
	h->decisions_in_flight = 0;
	havend_pending_expire(h, 1);
	h->nlocal = 0;
	replica_on_changed(h->replica, members, n);
}

static int
havend_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
havend_quorum(struct membership *m, int quorate, const uint32_t *members,
    size_t n, void *arg)
{
	struct havend	*h = arg;

	if (quorate != h->quorate)
		log_info("%s with %zu members", quorate ? "quorate" :
		    "NOT quorate", n);
	if (h->quorate && !quorate)
		havend_isolate(h);
	h->quorate = quorate;
	h->nmembers = n < HAVEND_MAX_MEMBERS ? n : HAVEND_MAX_MEMBERS;
	memcpy(h->members, members, h->nmembers * sizeof *members);
	qsort(h->members, h->nmembers, sizeof *h->members, havend_cmp_u32);
	replica_on_quorum(h->replica, quorate);
	/* The CPG change may have come first, with the old node list: a
	 * host that is gone from corosync too is lost now, not after the
	 * restart grace. */
	havend_reconcile(h);
}

static void
havend_message(struct membership *m, uint32_t node_id, uint32_t pid,
    const void *data, size_t len, void *arg)
{
	struct havend	*h = arg;

	replica_on_message(h->replica, node_id, data, len);
}

static const struct membership_callbacks havend_membership_callbacks = {
	.connected = havend_connected,
	.disconnected = havend_disconnected,
	.changed = havend_changed,
	.quorum = havend_quorum,
	.message = havend_message,
};

static int
havend_error_code(int result)
{
	switch (result) {
	case CLUSTER_E_NOT_QUORATE:
		return HAVEN__ERROR_CODE__ERROR_CODE_NOT_QUORATE;
	case CLUSTER_E_NOT_FOUND:
		return HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND;
	case CLUSTER_E_EXISTS:
	case CLUSTER_E_CONFLICT:
	case CLUSTER_E_STALE:
		return HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT;
	case CLUSTER_E_INVALID:
		return HAVEN__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
	default:
		return HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL;
	}
}

/*
 * Forget the proposals that will not come back: with decisions set, the
 * coordinator's own (a configuration change makes them moot); and any
 * older than HAVEND_PENDING_TIMEOUT_MS, whose client hears so. The table
 * therefore cannot fill up with lost proposals.
 */
static void
havend_pending_expire(struct havend *h, int decisions)
{
	struct control_client	*client;
	uint64_t		 now = ev_now_ms();
	size_t			 i = 0;

	while (i < h->npending) {
		struct havend_pending	*p = &h->pending[i];

		if (!(decisions && p->client_id == 0) &&
		    now - p->since_ms < HAVEND_PENDING_TIMEOUT_MS) {
			i++;
			continue;
		}
		if (p->client_id != 0 && (client = control_client_find(
		    h->control, p->client_id)) != NULL)
			control_reply_error(client,
			    HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL, "the cluster "
			    "did not apply this change within %d s (a host "
			    "joined or left meanwhile); see 'havenctl events' "
			    "and try again", HAVEND_PENDING_TIMEOUT_MS / 1000);
		else if (p->client_id != 0)
			control_audit_late(h->control, p->client_id, "error: "
			    "not applied in time");
		*p = h->pending[--h->npending];
	}
}

static void
havend_pending_add(struct havend *h, uint64_t request_id, uint64_t client_id)
{
	h->pending[h->npending].request_id = request_id;
	h->pending[h->npending].client_id = client_id;
	h->pending[h->npending].since_ms = ev_now_ms();
	h->npending++;
}

/* Send a change for a client: it is answered once applied everywhere. */
void
havend_propose_for(struct havend *h, struct control_client *c,
    Haven__Change *change)
{
	char		err[256];
	uint64_t	id;

	havend_pending_expire(h, 0);
	if (h->npending == HAVEND_MAX_PENDING) {
		message_free(&change->base);
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "too many requests in flight; try again");
		return;
	}
	/* A member of an older build could not apply it (issue 17). */
	if (replica_protocol_check(h->replica, change, err, sizeof err) == -1) {
		message_free(&change->base);
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
		    "%s", err);
		return;
	}
	if (replica_propose(h->replica, change, &id, err, sizeof err) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_QUORATE,
		    "%s", err);
		return;
	}
	havend_pending_add(h, id, c ? control_client_id(c) : 0);
}

Haven__Change *
havend_change_new(void)
{
	Haven__Change	*c = calloc(1, sizeof *c);

	if (c == NULL)
		abort();
	haven__change__init(c);
	return c;
}

/* A deep copy of a request's part, for a change that outlives the
 * request (pack and unpack: the copy is freed like any decoded message). */
ProtobufCMessage *
havend_copy(const ProtobufCMessage *m)
{
	ProtobufCMessage	*copy;
	uint8_t			*buf;
	size_t			 len;

	if ((buf = message_pack(m, &len)) == NULL)
		abort();
	copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	if (copy == NULL)
		abort();
	return copy;
}

/* A change came back applied (or refused): answer whoever asked. */
static void
havend_applied(struct replica *r, const Haven__Change *c, int result,
    const char *err, void *arg)
{
	struct havend		*h = arg;
	struct control_client	*client;
	Haven__OkReply		 ok = HAVEN__OK_REPLY__INIT;
	size_t			 i;

	if (result == CLUSTER_OK) {
		alert_applied(h->alert, replica_state(r)->cs, c, h->node_id,
		    h->config.node_name);
		metrics_applied(h->metrics, replica_state(r)->cs, c);
		corosync_sync_applied(replica_state(r)->cs, c);
	}
	if (c->origin == h->node_id) {
		for (i = 0; i < h->npending; i++) {
			if (h->pending[i].request_id == c->request_id)
				break;
		}
		if (i < h->npending) {
			if (h->pending[i].client_id == 0) {
				if (h->decisions_in_flight > 0)
					h->decisions_in_flight--;
			} else if ((client = control_client_find(h->control,
			    h->pending[i].client_id)) != NULL) {
				if (result == CLUSTER_OK) {
					ok.message = "";	/* havenctl words it */
					ok.seq = replica_state(r)->cs->seq;
					control_reply(client, FRAME_OK_REPLY,
					    &ok.base);
				} else {
					control_reply_error(client,
					    havend_error_code(result), "%s",
					    err);
				}
			} else {
				/* Hung up meanwhile: audited all the same. */
				char	text[300];

				snprintf(text, sizeof text, "%s%s", result ==
				    CLUSTER_OK ? "ok" : "error: ", result ==
				    CLUSTER_OK ? "" : err);
				control_audit_late(h->control,
				    h->pending[i].client_id, text);
			}
			h->pending[i] = h->pending[--h->npending];
		}
		/* A refused report of ours is proposed again if still true. */
		if (result != CLUSTER_OK &&
		    (c->kind_case == HAVEN__CHANGE__KIND_VM_TRANSITION ||
		    c->kind_case == HAVEN__CHANGE__KIND_VM_LIVE))
			h->nlocal = 0;
	}
	/* This host declared lost while it runs (`node fence`, or its
	 * havend was away too long): it is being fenced. Stop every VM now
	 * and leave; havend must be restarted to rejoin (and be unfenced). */
	if (result == CLUSTER_OK &&
	    c->kind_case == HAVEN__CHANGE__KIND_HOST_LOST &&
	    c->host_lost->node_id == h->node_id && h->node_id != 0) {
		havend_leave_lost(h, "was declared lost");
		return;
	}
	/* Applied reports leave the table. */
	for (i = 0; i < h->nlocal; ) {
		const Haven__Vm	*vm = NULL;
		size_t		 j;

		for (j = 0; j < replica_state(r)->cs->n_vms; j++)
			if (strcmp(replica_state(r)->cs->vms[j]->config->uuid,
			    h->local[i].uuid) == 0)
				vm = replica_state(r)->cs->vms[j];
		if (vm == NULL || vm->runtime->generation !=
		    h->local[i].generation ||
		    vm->runtime->phase == h->local[i].phase ||
		    (h->local[i].phase >= HAVEND_LIVE_STEP(0) &&
		    vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_MIGRATING))
			h->local[i] = h->local[--h->nlocal];
		else
			i++;
	}
	havend_reconcile(h);
	havend_local(h);
}

static uint64_t
havend_memory_mib(void)
{
	FILE		*fp = fopen("/proc/meminfo", "r");
	unsigned long	 kib = 0;

	if (fp != NULL) {
		if (fscanf(fp, "MemTotal: %lu kB", &kib) != 1)
			kib = 0;
		fclose(fp);
	}
	return kib / 1024;
}

/*
 * This host is lost in the cluster's eyes while it runs (`node fence`, its
 * havend away too long, or a state adopted while the others were fencing
 * it): it is being fenced, and must never fence itself as coordinator.
 * Stop every VM now and leave; havend must be restarted to rejoin (once
 * the others have fenced it, it is unfenced as it joins).
 */
static void
havend_leave_lost(struct havend *h, const char *how)
{
	struct vmworker	*w;

	log_warn("this host (node %u) %s and is being fenced: stopping its VMs "
	    "and havend; restart havend to rejoin", h->node_id, how);
	for (w = supervisor_first(h->supervisor); w != NULL;
	    w = supervisor_next(w))
		if (vmworker_alive(w))
			supervisor_kill(h->supervisor, vmworker_uuid(w));
	h->exit_code = 1;
	event_base_loopbreak(h->base);
}

/*
 * The bridges this host offers to guests: those of [interfaces] vm that are
 * bridges here (sorted, as the configuration keeps them), and into
 * filtering (*nfiltering of them) those that filter VLANs. A missing one is
 * a warning at start and an error for --check-config.
 */
static size_t
havend_vm_bridges(const struct havend *h, char *out[CONFIG_MAX_VM_BRIDGES],
    char *filtering[CONFIG_MAX_VM_BRIDGES], size_t *nfiltering)
{
	size_t	 i, n = 0;

	*nfiltering = 0;
	for (i = 0; i < h->config.nif_vm; i++) {
		if (!config_bridge_exists(CONFIG_SYSFS, h->config.if_vm[i]))
			continue;
		out[n++] = (char *)h->config.if_vm[i];
		if (config_bridge_filters_vlans(CONFIG_SYSFS,
		    h->config.if_vm[i]))
			filtering[(*nfiltering)++] = (char *)h->config.if_vm[i];
	}
	return n;
}

/* A copy of list[0..n), NULL-terminated, for a change. */
static char **
havend_strings(char *const *list, size_t n)
{
	char	**copy = calloc(n + 1, sizeof *copy);
	size_t	  i;

	for (i = 0; copy != NULL && i < n; i++)
		copy[i] = strdup(list[i]);
	return copy;
}

/* Whether list[0..n) and have[0..nhave) name the same strings in order. */
static int
havend_same_strings(char *const *list, size_t n, char *const *have,
    size_t nhave)
{
	size_t	 i;

	if (n != nhave)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(list[i], have[i]) != 0)
			return 0;
	return 1;
}

/* This host in the state offers other bridges than it has: say so. */
static void
havend_publish_bridges(struct havend *h, const Haven__Host *me)
{
	char			*bridges[CONFIG_MAX_VM_BRIDGES], err[256];
	char			*filtering[CONFIG_MAX_VM_BRIDGES];
	Haven__Change		*c;
	Haven__HostBridges	*b;
	size_t			 n, nfiltering;
	uint64_t		 id;

	n = havend_vm_bridges(h, bridges, filtering, &nfiltering);
	if (havend_same_strings(bridges, n, me->config->vm_bridges,
	    me->config->n_vm_bridges) && havend_same_strings(filtering,
	    nfiltering, me->config->vlan_filtering,
	    me->config->n_vlan_filtering))
		return;
	c = havend_change_new();
	b = calloc(1, sizeof *b);
	haven__host_bridges__init(b);
	b->node_id = h->node_id;
	b->bridges = havend_strings(bridges, n);
	b->n_bridges = n;
	b->vlan_filtering = havend_strings(filtering, nfiltering);
	b->n_vlan_filtering = nfiltering;
	c->kind_case = HAVEN__CHANGE__KIND_HOST_BRIDGES;
	c->host_bridges = b;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1)
		log_warn("publishing this host's bridges for guests: %s", err);
	else
		log_info("offering %zu bridge%s to guests", n, n == 1 ? "" : "s");
}

/* After a sync: make sure this host is in the state, then reconcile. */
static void
havend_synced(struct replica *r, void *arg)
{
	struct havend		*h = arg;
	const Haven__Host	*me;
	Haven__Change		*c;
	Haven__HostAdd		*add;
	char			 err[256], *bridges[CONFIG_MAX_VM_BRIDGES];
	char			*filtering[CONFIG_MAX_VM_BRIDGES];
	uint64_t		 id;
	size_t			 n, nfiltering;

	h->node_id = membership_node_id(h->membership);
	h->synced = 1;
	corosync_sync_state(replica_state(r)->cs);
	/* Rejoined while the others were still fencing us. */
	if (replica_is_quorate(r) && (me = cluster_host(replica_state(r),
	    h->node_id)) != NULL && me->runtime->membership ==
	    HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST &&
	    me->runtime->fence != HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED) {
		havend_leave_lost(h, "was found lost and not yet fenced after a "
		    "sync");
		return;
	}
	if (replica_is_quorate(r) && cluster_host(replica_state(r),
	    h->node_id) == NULL) {
		c = havend_change_new();
		add = calloc(1, sizeof *add);
		haven__host_add__init(add);
		add->config = calloc(1, sizeof *add->config);
		haven__host_config__init(add->config);
		add->config->node_id = h->node_id;
		add->config->name = strdup(h->config.node_name);
		add->config->memory_mib = havend_memory_mib();
		add->config->vcpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
		n = havend_vm_bridges(h, bridges, filtering, &nfiltering);
		add->config->vm_bridges = havend_strings(bridges, n);
		add->config->n_vm_bridges = n;
		add->config->vlan_filtering = havend_strings(filtering,
		    nfiltering);
		add->config->n_vlan_filtering = nfiltering;
		/* Its QEMU (protocol 2) once every member knows it: until
		 * then HostQemu waits (havend_qemu_publish). */
		if (replica_protocol(r) >= 2) {
			add->config->machine_types = havend_strings(
			    h->qemu.machines.names, h->qemu.machines.n);
			add->config->n_machine_types = h->qemu.machines.n;
			add->config->cpu_models = havend_strings(
			    h->qemu.cpus.names, h->qemu.cpus.n);
			add->config->n_cpu_models = h->qemu.cpus.n;
			add->config->qemu_version = strdup(h->qemu.version);
		} else
			add->config->qemu_version = strdup("");
		c->kind_case = HAVEN__CHANGE__KIND_HOST_ADD;
		c->host_add = add;
		if (replica_propose(r, c, &id, err, sizeof err) == -1)
			log_warn("adding this host to the cluster: %s", err);
		else
			log_info("adding this host (%s, node %u) to the cluster",
			    h->config.node_name, h->node_id);
	} else if (replica_is_quorate(r) && (me = cluster_host(replica_state(r),
	    h->node_id)) != NULL) {
		havend_publish_bridges(h, me);
		havend_qemu_publish(h, me);
	}
	havend_reconcile(h);
	havend_local(h);
}

/*
 * The isolation response and the watchdog's pets are bounded in time
 * (fence/timeline.h): havend's memory stays resident and it runs ahead of
 * the guests, as corosync does. Workers, QEMU and fence agents start as
 * ordinary processes again (SCHED_RESET_ON_FORK; memory locks are not
 * inherited). Failing either is a warning: the bounds then hold only on
 * an idle host.
 */
static void
havend_realtime(void)
{
	struct sched_param	sp = { .sched_priority = HAVEND_RT_PRIORITY };

#if defined(__SANITIZE_ADDRESS__) || defined(HAVEN_ASAN)
	/* AddressSanitizer's shadow is terabytes of address space. */
	log_info("built with AddressSanitizer: havend's memory is not locked");
#else
	if (mlockall(MCL_CURRENT | MCL_FUTURE) == -1)
		log_warn("cannot lock havend's memory (%s): under memory "
		    "pressure its isolation response may be late",
		    strerror(errno));
#endif
	if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp) == -1)
		log_warn("cannot run havend ahead of the guests (SCHED_RR: %s): "
		    "on a busy host its isolation response may be late",
		    strerror(errno));
}

/*
 * Pet the watchdog only while healthy: this loop runs (or the timer would
 * not fire), corosync is connected, and either this host is quorate or no
 * VM that quorum loss must stop still runs here. A hung havend, a lost
 * corosync or an isolation response that did not happen lets the host
 * reset (DESIGN §4, fence/timeline.h).
 */
static void
havend_watchdog_cb(void *arg)
{
	struct havend	*h = arg;
	int		 healthy;

	healthy = h->corosync_up && (h->quorate || !havend_isolation_pending(h));
	if (!healthy) {
		if (!h->watchdog_starved)
			log_warn("not petting the watchdog: %s", !h->corosync_up ?
			    "corosync is lost" : "not quorate while VMs still "
			    "run here");
		h->watchdog_starved = 1;
		return;
	}
	if (h->watchdog_starved)
		log_info("petting the watchdog again");
	h->watchdog_starved = 0;
	if (watchdog_pet(h->watchdog) == -1)
		log_warn("petting the watchdog: %s", strerror(errno));
}

/* The coordinator (lowest node id of the quorate membership) turns desired
 * into decisions; everyone else waits (but for a storage fence it was
 * ordered to run, storage_fence.c). */
void
havend_reconcile(struct havend *h)
{
	struct coordinator_decisions	 d = { NULL, 0 };
	const uint32_t			*members;
	char				 err[256], what[128];
	size_t				 n, i;
	uint64_t			 id;

	uint32_t			 present[HAVEND_MAX_MEMBERS];
	size_t				 npresent;

	/* Any member's part: fencing the coordinator on its order. */
	havend_storage_fences(h);
	if (!replica_is_quorate(h->replica)) {
		fencer_cancel_all(h->fencer);
		havend_storage_moves_cancel(h);
		return;
	}
	members = replica_members(h->replica, &n);
	if (coordinator_of(members, n) != h->node_id) {
		fencer_cancel_all(h->fencer);
		havend_storage_moves_cancel(h);
		return;
	}
	havend_fence_lost(h);
	havend_storage_moves(h);
	/* A two-node race undecided: this host may have lost; it starts
	 * nothing until it knows (fencer.c). */
	if (h->decisions_in_flight > 0 || fencer_racing(h->fencer))
		return;
	npresent = havend_present(h, members, n, present);
	if (coordinator_reconcile_present(replica_state(h->replica), members, n,
	    present, npresent, &d) != 0)
		return;
	for (i = 0; i < d.n; i++) {
		coordinator_describe(d.changes[i], what, sizeof what);
		log_info("coordinator: %s", what);
		havend_pending_expire(h, 0);
		if (replica_propose(h->replica, d.changes[i], &id, err,
		    sizeof err) == 0 && h->npending < HAVEND_MAX_PENDING) {
			havend_pending_add(h, id, 0);
			h->decisions_in_flight++;
		}
		d.changes[i] = NULL;	/* the replica owns it now */
	}
	coordinator_decisions_free(&d);
}

static const struct replica_callbacks havend_replica_callbacks = {
	.applied = havend_applied,
	.synced = havend_synced,
};

/*
 * The configuration, read and checked; --check-config (quiet = 0) also
 * checks the host against it (bridges for guests), which at start is only
 * a warning: havend then offers the bridges that exist.
 */
static int
havend_check_config(const char *path, struct config *config, int quiet)
{
	struct config_error	errs[32];
	char			line[512];
	size_t			n = 0, i;

	if (config_parse_file(path, config, errs, 32, &n) == 0) {
		n = config_check_bridges(config, CONFIG_SYSFS, errs, 32);
		if (n != 0 && quiet) {
			for (i = 0; i < n && i < 32; i++) {
				config_error_format(&errs[i], path, line,
				    sizeof line);
				log_warn("%s (not offered to guests)", line);
			}
			n = 0;	/* on to the secrets: they are needed */
		}
	}
	/* The SAN's secrets (issue 15): a chap file others may read, or
	 * one that does not parse, stops havend here, before it logs in. */
	if (n == 0 && chap_setup(config->storage_chap_file,
	    config->storage_chap_line != 0, config->storage_key_file,
	    config->storage_key_line != 0, line, sizeof line) == -1) {
		fprintf(stderr, "havend: %s\n", line);
		return -1;
	}
	if (n == 0 && *config->alert_program != '\0' &&
	    access(config->alert_program, X_OK) == -1) {
		fprintf(stderr, "havend: %s: [alert] program %s: %s; make it an "
		    "executable file or remove the key\n", path,
		    config->alert_program, strerror(errno));
		return -1;
	}
	if (n == 0) {
		if (!quiet)
			printf("%s: ok (node %s, cluster %s, %zu fence "
			    "level%s)\n", path, config->node_name,
			    config->cluster_name, config->nfences,
			    config->nfences == 1 ? "" : "s");
		return 0;
	}
	for (i = 0; i < n && i < 32; i++) {
		config_error_format(&errs[i], path, line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	if (n > 32)
		fprintf(stderr, "%s: and %zu more errors\n", path, n - 32);
	return -1;
}

/* mkdir -p for the parent of path, mode 0755. */
static void
havend_make_parent(const char *path)
{
	char	copy[512], *p;

	snprintf(copy, sizeof copy, "%s", path);
	p = dirname(copy);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

/* VMs the state gives to this host that still run or move. */
static size_t
havend_my_active_vms(struct havend *h)
{
	const struct cluster	*st = replica_state(h->replica);
	size_t			 i, n = 0;

	for (i = 0; i < st->cs->n_vms; i++) {
		const Haven__VmRuntime	*rt = st->cs->vms[i]->runtime;

		if (rt->owner == h->node_id &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
		    rt->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED)
			n++;
	}
	return n;
}

static void
havend_drain_check(void *arg)
{
	struct havend	*h = arg;
	size_t		 n = havend_my_active_vms(h);

	if (n == 0 || !replica_is_quorate(h->replica) ||
	    ev_now_ms() - h->drain_started_ms > HAVEND_SHUTDOWN_DRAIN_MS) {
		if (n > 0)
			log_warn("shutdown: %zu VMs are still here; stopping "
			    "anyway", n);
		else
			log_info("shutdown: this host is drained");
		event_base_loopbreak(h->base);
		return;
	}
	ev_timer_arm(h->drain_timer, 500);
}

/* SIGTERM with [vm] shutdown = migrate: drain this host, then stop. */
static int
havend_shutdown_drain(struct havend *h)
{
	Haven__Change		*c;
	Haven__HostMaintenance	*hm;
	char			 err[256];
	uint64_t		 id;
	size_t			 n;

	if (!h->config.vm_shutdown_migrate || h->draining ||
	    !replica_is_quorate(h->replica) ||
	    (n = havend_my_active_vms(h)) == 0)
		return 0;
	c = havend_change_new();
	if ((hm = calloc(1, sizeof *hm)) == NULL)
		abort();
	haven__host_maintenance__init(hm);
	hm->node_id = h->node_id;
	hm->maintenance = 1;
	c->kind_case = HAVEN__CHANGE__KIND_HOST_MAINTENANCE;
	c->host_maintenance = hm;
	if (replica_propose(h->replica, c, &id, err, sizeof err) == -1) {
		log_warn("shutdown: cannot drain this host: %s", err);
		return 0;
	}
	h->draining = 1;
	h->drain_started_ms = ev_now_ms();
	h->drain_timer = ev_timer_new(h->base, 0, 0, havend_drain_check, h);
	ev_timer_arm(h->drain_timer, 500);
	log_info("shutdown: draining this host first (%zu VMs; signal again "
	    "to stop at once)", n);
	(void)sd_notifyf(0, "STOPPING=1\nSTATUS=draining %zu VMs off this "
	    "host before stopping", n);
	return 1;
}

static void
havend_signal(int signo, void *arg)
{
	struct havend	*h = arg;

	if (signo == SIGCHLD) {
		supervisor_reap(h->supervisor);
		havend_local(h);
		return;
	}
	if (signo == SIGTERM && havend_shutdown_drain(h))
		return;
	log_info("signal %d: stopping", signo);
	(void)sd_notify(0, "STOPPING=1");
	event_base_loopbreak(h->base);
}

/* What the metrics show at a scrape (metrics.c). */
static void
havend_metrics_view(struct metrics_view *v, void *arg)
{
	struct havend	*h = arg;

	v->node_name = h->config.node_name;
	v->quorate = h->quorate;
	v->nmembers = h->nmembers;
	v->cs = h->replica != NULL ? replica_state(h->replica)->cs : NULL;
	v->npaths = health_paths(h->health, v->paths, METRICS_PATHS);
	if (h->supervisor != NULL)
		v->transfers = *supervisor_transfers(h->supervisor);
}

static void
usage(void)
{
	fprintf(stderr, "usage: havend [-d] [-c CONFIG] [--check-config]\n"
	    "  -c, --config FILE   host configuration (default %s)\n"
	    "  --check-config      report every error in it, with its line, "
	    "and exit\n"
	    "  -d, --debug         log debug messages\n", CONFIG_PATH);
}

/*
 * The fence timing (fence/timeline.h) rests on corosync's token: read the
 * one corosync runs with, and use it where haven.conf's token_ms says
 * otherwise (corosync's default token_coefficient stretches it with every
 * host; havenctl cluster corosync-conf writes a corosync.conf that does
 * not, config/corosync.h).
 */
static void
havend_corosync_token(struct havend *h)
{
	unsigned	 token;

	if (membership_token_ms(&token) == -1) {
		log_info("corosync's token not read (corosync not up yet): "
		    "timing by [cluster] token_ms = %u", h->config.token_ms);
		return;
	}
	if (token == h->config.token_ms)
		return;
	log_warn("corosync runs with a token of %u ms, haven.conf's [cluster] "
	    "token_ms is %u: fence and watchdog timing follow corosync; make "
	    "them agree (havenctl cluster corosync-conf --token-ms %u writes "
	    "a corosync.conf whose token does not grow with the hosts)",
	    token, h->config.token_ms, h->config.token_ms);
	h->config.token_ms = token;
	if (h->config.watchdog_timeout_auto)
		h->config.watchdog_timeout_s = config_watchdog_auto_s(token);
}

/* The watchdog, armed now and petted while this host is healthy; or the
 * warning of what its absence costs. */
static void
havend_watchdog_open(struct havend *h)
{
	char	errbuf[256];

	if (*h->config.watchdog_device != '\0') {
		if ((h->watchdog = watchdog_open(h->config.watchdog_device,
		    h->config.watchdog_timeout_s, errbuf, sizeof errbuf)) == NULL)
			log_fatal("watchdog: %s", errbuf);
		h->watchdog_timer = ev_timer_new(h->base, FENCE_WATCHDOG_PET_MS, 1,
		    havend_watchdog_cb, h);
		ev_timer_arm(h->watchdog_timer, FENCE_WATCHDOG_PET_MS);
		log_info("watchdog %s armed (%u s), petted every %d ms while "
		    "healthy", h->config.watchdog_device,
		    watchdog_timeout_s(h->watchdog), FENCE_WATCHDOG_PET_MS);
		if (watchdog_timeout_s(h->watchdog) > h->config.watchdog_timeout_s)
			log_warn("the watchdog took %u s instead of [watchdog] "
			    "timeout_s = %u: set timeout_s = %u on every host, "
			    "or the others may start this host's VMs before it "
			    "resets", watchdog_timeout_s(h->watchdog),
			    h->config.watchdog_timeout_s,
			    watchdog_timeout_s(h->watchdog));
	} else {
		log_warn("no watchdog ([watchdog] device = none): if this host "
		    "freezes past failover and resumes, its VMs run for a few "
		    "milliseconds beside their new copies before they see "
		    "themselves fenced");
	}
}

/*
 * Longer than most: havend's start, one part after another in the order
 * they need each other (configuration, control socket, corosync, state,
 * watchdog, secrets, fencing, health, workers, alerts and metrics), and its
 * stop in reverse. Each part is one call; split, it would only move the
 * list elsewhere.
 */
int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int	 signals[] = { SIGTERM, SIGINT, SIGCHLD };
	struct havend		 h;
	const char		*path = CONFIG_PATH;
	char			 errbuf[256], keypath[300];
	int			 c, check = 0, error = 0;
	size_t			 n;

	memset(&h, 0, sizeof h);
	log_init("havend", LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "c:dh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'd':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (havend_check_config(path, &h.config, !check) == -1)
		return 1;
	if (check)
		return 0;

	tzset();
	havend_realtime();
	if ((h.base = ev_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	havend_make_parent(h.config.control_socket);
	if (*h.config.audit_log != '\0')
		havend_make_parent(h.config.audit_log);
	h.control = control_new(h.base, h.config.control_socket,
	    havend_routes, havend_nroutes,
	    havend_authorize, *h.config.audit_log ? h.config.audit_log : NULL,
	    &h, &error);
	if (h.control == NULL)
		log_fatal("control socket %s: %s%s", h.config.control_socket,
		    strerror(-error), error == -EADDRINUSE ?
		    " (another havend is running)" : "");
	if ((h.membership = membership_new(h.base, "haven",
	    &havend_membership_callbacks, &h)) == NULL)
		log_fatal("corosync client: %s", strerror(errno));
	havend_corosync_token(&h);
	mkdir(h.config.state_dir, 0700);
	if ((h.replica = replica_new(h.membership, h.config.state_dir,
	    &havend_replica_callbacks, &h, errbuf, sizeof errbuf)) == NULL)
		log_fatal("cluster state in %s: %s (move the file aside to "
		    "receive the state from the other hosts)",
		    h.config.state_dir, errbuf);
	if (ev_on_signals(h.base, signals, 3, havend_signal, &h) == -1)
		log_fatal("signals: %s", strerror(errno));
	h.grace_timer = ev_timer_new(h.base, 0, 0, havend_grace_cb, &h);
	havend_watchdog_open(&h);
	h.fence_retry_timer = ev_timer_new(h.base, 0, 0, havend_fence_retry_cb,
	    &h);
	h.storage_timer = ev_timer_new(h.base, 0, 0, havend_storage_timer_cb,
	    &h);
	h.storage_fence_timer = ev_timer_new(h.base, 0, 0,
	    havend_storage_fence_timer_cb, &h);
	config_initiator(&h.config, h.initiator, sizeof h.initiator);
	if (!pr_key_secret_installed())
		log_warn("no %s: reservation keys derive from the cluster "
		    "name alone, which anyone can compute; give every host "
		    "the same root-only [storage] key_secret_file",
		    h.config.storage_key_file);
	/* The same secret keys live migrations (migrate/live_key.c);
	 * chap_setup above has checked the file. */
	if (access(h.config.storage_key_file, F_OK) == 0 &&
	    live_key_load(h.config.storage_key_file, errbuf, sizeof errbuf) == -1)
		log_warn("%s", errbuf);
	if (!live_key_installed())
		log_warn("no cluster secret: VMs move by quick migration only "
		    "(a live migration would cross the migration network in "
		    "clear)");
	log_info("iSCSI initiator %s, CHAP accounts for %zu pool%s",
	    h.initiator, chap_count(chap_installed()),
	    chap_count(chap_installed()) == 1 ? "" : "s");
	if ((h.alert = alert_new(h.base, &h.config)) == NULL)
		log_fatal("alerts: %s", strerror(errno));
	snprintf(keypath, sizeof keypath, "%s/status.key", h.config.state_dir);
	if ((h.metrics = metrics_new(h.base, h.config.metrics_listen,
	    havend_metrics_view, &h, keypath, h.config.metrics_status_auth_always,
	    errbuf, sizeof errbuf)) == NULL)
		log_fatal("%s", errbuf);
	if ((h.fencer = fencer_new(h.base, &h.config, h.initiator,
	    havend_fenced, &h)) == NULL)
		log_fatal("fencing: %s", strerror(errno));
	if ((h.health = health_new(h.base, h.membership, h.replica,
	    h.initiator)) == NULL)
		log_fatal("storage health: %s", strerror(errno));
	if ((h.supervisor = supervisor_new(h.base, &h.config,
	    &havend_supervisor_callbacks, &h)) == NULL)
		log_fatal("worker supervision: %s", strerror(errno));
	if ((n = supervisor_adopt_all(h.supervisor)) > 0)
		log_info("adopting %zu running VM%s left by the previous havend",
		    n, n == 1 ? "" : "s");
	/* What this host's QEMU offers: a second or two of children, after
	 * the watchdog is armed and corosync joined, before the loop needs
	 * it (a start, a HostQemu proposal). */
	havend_qemu_probe(&h);
	log_info("node %s: serving %s", h.config.node_name,
	    h.config.control_socket);
	/* systemd (Type=notify): the control socket answers, the workers
	 * left running are being adopted. Nothing when not a service. */
	(void)sd_notifyf(0, "READY=1\nSTATUS=node %s: serving %s",
	    h.config.node_name, h.config.control_socket);

	event_base_dispatch(h.base);

	ev_timer_free(h.drain_timer);
	/* The workers keep their VMs running for the next havend. */
	if (h.watchdog != NULL) {
		ev_timer_free(h.watchdog_timer);
		watchdog_close(h.watchdog, 1);	/* a clean stop disarms */
	}
	fencer_free(h.fencer);
	alert_free(h.alert);
	metrics_free(h.metrics);
	havend_storage_moves_cancel(&h);
	havend_storage_fences_cancel(&h);
	health_free(h.health);
	supervisor_free(h.supervisor);
	membership_free(h.membership);
	replica_free(h.replica);
	control_free(h.control);
	ev_signals_free();
	event_base_free(h.base);
	return h.exit_code;
}

