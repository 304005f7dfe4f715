/*
 * proto/: Haven's wire messages and how they travel. Every channel (havenctl
 * to havend, havend to a worker) carries length-prefixed frames whose payload
 * is one protobuf-c message; file descriptors travel beside a frame with
 * SCM_RIGHTS.
 */
#ifndef HAVEN_PROTO_H
#define HAVEN_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "cluster.pb-c.h"
#include "common.pb-c.h"
#include "control.pb-c.h"
#include "worker.pb-c.h"

struct event_base;

/*
 * Frame header, 12 bytes, big-endian:
 *   magic "HV" (2) | version (1) | number of fds (1) | type (2) | flags (2) |
 *   payload length (4)
 * Bump FRAME_VERSION when a change breaks older peers. Flags must be zero.
 */
#define FRAME_MAGIC		0x4856
#define FRAME_VERSION		1
#define FRAME_HEADER_SIZE	12
#define FRAME_MAX_FDS		16
/* Default payload cap; channels may choose a smaller or larger one. */
#define FRAME_DEFAULT_MAX	(1U << 20)

/*
 * Message types. Numbers are explicit and grouped; a retired number stays in
 * the list as a comment and is never reused.
 */
enum frame_type {
	FRAME_ERROR = 1,		/* haven.Error */

	FRAME_STATUS_REQUEST = 100,	/* haven.StatusRequest */
	FRAME_STATUS_REPLY = 101,	/* haven.StatusReply */
	FRAME_OK_REPLY = 102,		/* haven.OkReply */

	FRAME_VM_CREATE = 110,		/* haven.VmCreateRequest */
	FRAME_VM_START = 111,		/* haven.VmNameRequest */
	FRAME_VM_STOP = 112,		/* haven.VmNameRequest */
	FRAME_VM_DELETE = 113,		/* haven.VmNameRequest */
	FRAME_VM_SHOW = 114,		/* haven.VmNameRequest -> VM_LIST_REPLY */
	FRAME_VM_LIST = 115,		/* haven.VmListRequest */
	FRAME_VM_LIST_REPLY = 116,	/* haven.VmListReply */
	FRAME_NODE_LIST = 117,		/* haven.NodeListRequest */
	FRAME_NODE_LIST_REPLY = 118,	/* haven.NodeListReply */
	FRAME_ROLE_GRANT = 120,		/* haven.RoleGrant */
	FRAME_ROLE_REVOKE = 121,	/* haven.RoleRevoke */
	FRAME_ROLE_LIST = 122,		/* haven.RoleListRequest */
	FRAME_ROLE_LIST_REPLY = 123,	/* haven.RoleListReply */
	FRAME_EVENTS = 124,		/* haven.EventsRequest */
	FRAME_EVENTS_REPLY = 125,	/* haven.EventsReply */
	FRAME_POOL_ADD = 126,		/* haven.PoolAdd (the change) */
	FRAME_VOLUME_ADD = 127,		/* haven.VolumeAdd */
	FRAME_STORAGE_LIST = 128,	/* haven.StorageListRequest */
	FRAME_STORAGE_LIST_REPLY = 129,	/* haven.StorageListReply */
	FRAME_VM_CONSOLE = 130,		/* haven.ConsoleRequest */
	FRAME_VM_CONSOLE_REPLY = 131,	/* haven.ConsoleReply */
	FRAME_SETTINGS_SET = 132,	/* haven.SettingsSet */
	FRAME_SETTINGS_GET = 133,	/* haven.SettingsGetRequest */
	FRAME_SETTINGS_REPLY = 134,	/* haven.ClusterSettings */
	FRAME_NODE_FENCE = 135,		/* haven.HostLost */
	FRAME_FENCE_HISTORY = 136,	/* haven.FenceHistoryRequest */
	FRAME_FENCE_HISTORY_REPLY = 137, /* haven.FenceHistoryReply */
	FRAME_VM_MIGRATE = 138,		/* haven.VmMigrate */
	FRAME_NODE_MAINTENANCE = 139,	/* haven.HostMaintenance */
	FRAME_DEBUG_LOG = 140,		/* haven.DebugLogRequest */
	FRAME_DEBUG_LOG_REPLY = 141,	/* haven.DebugLogReply */
	FRAME_VM_SET = 142,		/* haven.VmSetRequest */
	FRAME_VOLUME_REMOVE = 143,	/* haven.VolumeRemove (the change) */
	FRAME_POOL_REMOVE = 144,	/* haven.PoolRemove */
	FRAME_VM_CONSOLE_ATTACH = 145,	/* haven.ConsoleAttach */
	FRAME_VM_CONSOLE_ATTACHED = 146, /* haven.ConsoleAttached + 1 fd */
	FRAME_WORKER_CONSOLE = 147,	/* haven.ConsoleAttach + 1 fd, havend
					 * to the VM's worker */
	FRAME_NODE_REMOVE = 148,	/* haven.HostRemove */
	FRAME_STATUS_LOGIN = 152,	/* haven.StatusLoginRequest */
	FRAME_STATUS_LOGIN_REPLY = 153,	/* haven.StatusLoginReply */

	FRAME_VM_SPEC = 200,		/* haven.VmSpec (+ fds) */
	FRAME_WORKER_EVENT = 201,	/* haven.WorkerEvent */
	FRAME_WORKER_COMMAND = 202,	/* haven.WorkerCommand */
	FRAME_REGISTER_REQUEST = 203,	/* haven.RegisterRequest */
	FRAME_REGISTER_GRANT = 204,	/* haven.RegisterGrant */
	FRAME_WORKER_HELLO = 205,	/* haven.WorkerHello */

	/* Between havends, over CPG (clusterd/replica.c). */
	FRAME_CHANGE = 300,		/* haven.Change */
	FRAME_SYNC_STATE = 301,		/* haven.SyncState */
	FRAME_SNAPSHOT = 302,		/* haven.Snapshot */
};

/* A received frame. The payload and any fds are owned by the frame until
 * frame_release(); a consumer that keeps an fd sets its slot to -1. */
struct frame {
	uint16_t	 type;
	uint16_t	 flags;
	uint32_t	 length;
	uint8_t		*payload;
	int		 fds[FRAME_MAX_FDS];
	size_t		 nfds;
};

/* frame.c */
struct frame_reader;
struct frame_reader *frame_reader_new(size_t max_payload);
void		 frame_reader_free(struct frame_reader *);
ssize_t		 frame_reader_fill(struct frame_reader *, int fd);
int		 frame_reader_feed(struct frame_reader *, const void *, size_t);
int		 frame_reader_next(struct frame_reader *, struct frame *);
size_t		 frame_reader_buffered(const struct frame_reader *);
void		 frame_release(struct frame *);
int		 frame_encode_header(uint8_t *, uint16_t type, uint32_t length,
		     size_t nfds);
int		 frame_send(int fd, uint16_t type, const void *payload,
		     size_t length, const int *fds, size_t nfds);
const char	*frame_strerror(int);

/* message.c */
const ProtobufCMessageDescriptor *message_descriptor(uint16_t type);
const char	*message_type_name(uint16_t type);
ProtobufCMessage *message_decode(const struct frame *);
void		 message_free(ProtobufCMessage *);
uint8_t		*message_pack(const ProtobufCMessage *, size_t *);

/* channel.c */
struct channel;
/* Called with each complete frame, and once with frame == NULL when the
 * channel closes: err is 0 for an orderly EOF, else an errno value
 * (EMSGSIZE oversized, EPROTO garbage, ...). After the close call the channel
 * must only be freed. */
typedef void (*channel_cb)(struct channel *, struct frame *, int err,
    void *arg);
struct channel	*channel_new(struct event_base *, int fd, size_t max_payload,
		     channel_cb, void *arg);
void		 channel_free(struct channel *);
int		 channel_fd(const struct channel *);
int		 channel_send(struct channel *, uint16_t type, const void *payload,
		     size_t length, const int *fds, size_t nfds);
int		 channel_send_message(struct channel *, uint16_t type,
		     const ProtobufCMessage *, const int *fds, size_t nfds);
int		 channel_send_error(struct channel *, Haven__ErrorCode,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t		 channel_pending(const struct channel *);

/* boot.c: how a VM boots (VmConfig.firmware, cdrom, boot_order). */
/* Debian's ovmf package: the 4 MiB flash pair (code read-only, vars the
 * template each UEFI VM's store on its volume starts from). */
#define BOOT_OVMF_CODE	"/usr/share/OVMF/OVMF_CODE_4M.fd"
#define BOOT_OVMF_VARS	"/usr/share/OVMF/OVMF_VARS_4M.fd"
enum boot_device { BOOT_DISK, BOOT_CDROM, BOOT_NDEVICES };
int		 boot_firmware_valid(const char *);
int		 boot_firmware_uefi(const char *);
const char	*boot_firmware_name(const char *);	/* "bios", "uefi" */
int		 boot_order_parse(const char *, enum boot_device[BOOT_NDEVICES]);
int		 boot_config_check(const Haven__VmConfig *, char *err,
		     size_t errlen);

/* nic.c: a VM's NICs (VmConfig.nics): the rules apply checks, the MACs
 * havend chooses, the bridges a host must offer. -1 refusals carry a
 * sentence for the operator in err. */
#define NIC_MAX			8	/* per VM */
#define NIC_VLAN_MAX		4094	/* 0: untagged */
#define NIC_MAC_PREFIX		0x0a	/* chosen MACs: locally administered */
#define NIC_MAC_TRIES		64
const char	*nic_model_name(int);	/* "virtio", "e1000" */
int		 nic_model_parse(const char *, Haven__NicModel *);
int		 nic_check(const char *vm, size_t, const Haven__Nic *,
		     char *err, size_t errlen);
int		 nic_config_check(const Haven__VmConfig *, char *err,
		     size_t errlen);
const Haven__Vm	*nic_mac_user(const Haven__ClusterState *,
		     const uint8_t[6], const char *except, size_t *nic);
void		 nic_mac_derive(const char *uuid, size_t, unsigned attempt,
		     uint8_t[6]);
int		 nic_mac_fill(const Haven__ClusterState *, Haven__VmConfig *,
		     char macs[][18]);
/* "BRvN": a bridge name (15) + "v" + a VLAN (4), when it fits IFNAMSIZ. */
#define NIC_BRIDGE_PER_VLAN_MAX	24
int		 nic_offered(const Haven__HostConfig *, const Haven__Nic *,
		     char *missing, size_t missinglen);
int		 nic_bridges_offered(const Haven__HostConfig *,
		     const Haven__VmConfig *, char *missing,
		     size_t missinglen);

/* machine.c: a VM's machine (issue 16): its disks' bus and how many it may
 * have (one limit for havenctl, havend and the worker), the machine type
 * and CPU model it needs, whether a host's QEMU offers them, and QEMU's
 * own lists of both. -1 refusals carry a sentence in err/why. */
#define POOL_MAX_PORTALS	4	/* paths to a pool's target (issue 17) */
#define VM_MAX_VOLUMES		8	/* every bus; NBD exports disk0..7 */
#define VM_IDE_MAX_VOLUMES	4	/* PIIX: two controllers of two */
/* x86-64-v2 with AES (QEMU 8's x86-64-v2-AES), a model QEMU 4.1 on offers,
 * that TCG runs without a missing feature and KVM on any Intel or AMD CPU
 * since 2010. */
#define MACHINE_CPU_MODEL_DEFAULT	"Westmere-v1"
#define MACHINE_NAME_MAX	63
#define MACHINE_LIST_MAX	256
struct machine_list {
	char	*names[MACHINE_LIST_MAX];
	size_t	 n;
};
const char	*machine_disk_bus_name(int);	/* "ide", "virtio", "scsi" */
int		 machine_disk_bus_parse(const char *, Haven__DiskBus *);
int		 machine_disk_bus_ide(int);
int		 machine_volumes_check(const char *vm, size_t, int bus,
		     char *err, size_t errlen);
const char	*machine_cpu_model(const Haven__ClusterSettings *);
int		 machine_name_valid(const char *);
int		 machine_host_offers(const Haven__HostConfig *,
		     const char *machine, const char *cpu, char *why,
		     size_t len);
const char	*machine_vm_cpu(const Haven__ClusterState *, const Haven__Vm *);
int		 machine_host_runs(const Haven__ClusterState *,
		     const Haven__HostConfig *, const Haven__Vm *,
		     const Haven__VmConfig *, char *why, size_t len);
int		 machine_parse_machines(const char *, struct machine_list *,
		     char *pc, size_t pclen);
int		 machine_parse_cpus(const char *, int kvm,
		     struct machine_list *);
void		 machine_list_free(struct machine_list *);

/* protocol.c: rolling upgrade (issue 17). Each member announces the
 * replicated protocol its build speaks; the cluster runs at the lowest of
 * its current members', and no member proposes a change (a kind, or a
 * field set to other than its default) that a lower protocol cannot apply. */
#define HAVEN_PROTOCOL		3	/* this build's */
#define HAVEN_PROTOCOL_OLDEST	1	/* a build that announces none */
/* What a member announced (0: nothing, a build before the field) as a
 * protocol. */
uint32_t	 protocol_of(uint32_t announced);
/* The lowest of n announced protocols; this build's when n is 0. */
uint32_t	 protocol_running(const uint32_t *announced, size_t n);
/* The lowest protocol that can apply c, and (when above the oldest) in
 * what, as an operator names it ("--firmware uefi"), the first thing of c
 * that needs it. */
uint32_t	 protocol_change_needs(const Haven__Change *, char *what,
		     size_t whatlen);

/* Cluster settings with their defaults (a Haven__ClusterSettings, may be
 * NULL): live migration, the lowest priority a drain moves live, and how
 * long a host may lose a VM's pool before the VM moves. */
#define CLUSTER_LIVE_DOWNTIME_MS(s) \
	((s) != NULL && (s)->live_downtime_ms ? (s)->live_downtime_ms : 300)
#define CLUSTER_LIVE_CONVERGE_S(s) \
	((s) != NULL && (s)->live_converge_s ? (s)->live_converge_s : 60)
#define CLUSTER_DRAIN_LIVE_PRIORITY(s) \
	((s) != NULL && (s)->drain_live_priority ? (s)->drain_live_priority : 200)
#define CLUSTER_DRAIN_LIVE_NONE	UINT32_MAX	/* no drain moves live */
#define CLUSTER_STORAGE_TIMEOUT_S(s) \
	((s) != NULL && (s)->storage_timeout_s ? (s)->storage_timeout_s : 30)
/* How long a VM paused for its storage, which no member reaches, waits
 * before it is stopped; 0: for ever (issue 20). */
#define CLUSTER_STORAGE_GIVEUP_S(s) \
	((s) != NULL ? (s)->storage_giveup_s : 0)
#define CLUSTER_STORAGE_SECS_MAX	604800	/* a week: both settings' limit */
/* The worker's sentence for a VM it paused because its storage stopped
 * answering begins so (worker/outage.c); the storage giveup counts only
 * such pauses (clusterd/cluster_storage_giveup.c). */
#define VM_PAUSED_FOR_STORAGE	"storage lost at "

#endif
