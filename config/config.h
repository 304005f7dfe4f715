/*
 * config/: the host-local configuration, /etc/haven/haven.conf, shared by
 * havend (which runs on it) and havenctl (fence validate reads it).
 */
#ifndef HAVEN_CONFIG_H
#define HAVEN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* config.c: the host-local configuration, /etc/haven/haven.conf (INI, read
 * with inih; haven.conf(5) lists every key and default). Secrets (fence
 * passwords) stay here and never appear in an error message. */
#define CONFIG_PATH		"/etc/haven/haven.conf"
#define CONFIG_MAX_FENCES	8
#define CONFIG_MAX_OPTIONS	32
#define CONFIG_MAX_VM_BRIDGES	16
#define CONFIG_CHAP_FILE	"/etc/haven/chap"
#define CONFIG_KEY_SECRET_FILE	"/etc/corosync/authkey"
enum config_fence_kind {
	CONFIG_FENCE_STORAGE,	/* agent = storage: PR preempt (DESIGN §4) */
	CONFIG_FENCE_AGENT,	/* agent = fence_*: a fence-agents program */
	CONFIG_FENCE_PACEMAKER,	/* agent = pacemaker: libstonithd */
	CONFIG_FENCE_WATCHDOG,	/* agent = watchdog: wait for it to fire */
};
struct config_option {
	char	 key[64];
	char	 value[256];
};
/* One [fence:NAME] section: a fence level, tried in ascending level. */
struct config_fence {
	char			 name[64];
	char			 agent[64];	/* "fence_ipmilan", "storage"... */
	enum config_fence_kind	 kind;
	unsigned		 level;		/* 1..99, unique per host */
	size_t			 noptions;	/* for the agent's stdin */
	struct config_option	 options[CONFIG_MAX_OPTIONS];
	/* password_file is read at parse time into option "password". */
};
/* [alert]: the events havend hands its alert program (clusterd/alert.c),
 * one bit each in config.alert_events; names in config_alert_kind_name. */
enum config_alert_kind {
	CONFIG_ALERT_HOST_LOST,		/* "host-lost" */
	CONFIG_ALERT_FENCED,		/* "fenced" */
	CONFIG_ALERT_FENCE_FAILED,	/* "fence-failed" */
	CONFIG_ALERT_VM_FAILED,		/* "vm-failed" */
	CONFIG_ALERT_FAILOVER_DONE,	/* "failover-done" */
	CONFIG_ALERT_NKINDS,
};
#define CONFIG_ALERT_ALL	((1u << CONFIG_ALERT_NKINDS) - 1)
#define CONFIG_ALERT_TIMEOUT_S	30
const char	*config_alert_kind_name(enum config_alert_kind);
/* [metrics] listen's default: havend's Prometheus metrics on this host. */
#define CONFIG_METRICS_LISTEN	"127.0.0.1:9731"
/* "HOST:PORT" or "[V6]:PORT" split (the port 1..65535); -1 otherwise. */
int		 config_listen_parse(const char *, char *host, size_t hostlen,
		     unsigned *port);

struct config {
	char			 node_name[64];
	char			 cluster_name[64];
	char			 if_management[16];
	char			 if_storage[16];
	char			 if_migration[16];	/* default: management */
	/* [interfaces] vm: the bridges this host offers to guests' NICs,
	 * sorted, each once; none of them a management, storage or
	 * migration interface. */
	char			 if_vm[CONFIG_MAX_VM_BRIDGES][16];
	size_t			 nif_vm;
	unsigned		 if_vm_line;
	char			 watchdog_device[128];	/* "" for device = none */
	unsigned		 watchdog_timeout_s;
	unsigned		 token_ms;
	int			 watchdog_timeout_auto;	/* from token_ms */
	char			 state_dir[256];
	char			 control_socket[108];
	char			 audit_log[256];
	/* [vm]: how this host runs its VMs' workers. */
	char			 vm_worker[256];	/* "": beside havend */
	char			 vm_qemu[256];		/* "": from PATH */
	char			 vm_accel[8];		/* auto, kvm, tcg */
	unsigned		 vm_uid_base;		/* VM slot n: +n */
	char			 vm_run_dir[64];
	char			 vm_log_dir[256];
	unsigned		 vm_log_max_mb;		/* each VM log's cap */
	unsigned		 vm_adopt_timeout_s;
	char			 vm_initiator[224];	/* "": from node */
	int			 vm_shutdown_migrate;	/* SIGTERM drains */
	/* [storage]: the root-only files of the SAN's secrets (issue 15).
	 * A default path that does not exist means none; a path given
	 * (line != 0) must exist. */
	char			 storage_chap_file[256];
	unsigned		 storage_chap_line;
	char			 storage_key_file[256];
	unsigned		 storage_key_line;
	/* [alert]: a program run with each chosen event as JSON on its
	 * stdin; "" for none. */
	char			 alert_program[256];
	unsigned		 alert_events;		/* CONFIG_ALERT_* bits */
	unsigned		 alert_timeout_s;
	/* [metrics] listen: where havend serves /metrics; "" for none. */
	char			 metrics_listen[64];
	/* [metrics] status_auth: the status page wants a login from every
	 * client (always), or from clients not on this host (remote). */
	int			 metrics_status_auth_always;
	size_t			 nfences;		/* sorted by level */
	struct config_fence	 fences[CONFIG_MAX_FENCES];
};
/* line 0: the whole file (it cannot be read, a required key is missing
 * and its section too). section without brackets, key may be "". */
struct config_error {
	unsigned	 line;
	char		 section[64];
	char		 key[64];
	char		 message[256];
};
void		 config_defaults(struct config *);
/* 0 when valid; else -1 with every error found: the first max_errs are in
 * errs in line order (line 0 last), *nerrs counts them all (it may exceed
 * max_errs). */
int		 config_parse_file(const char *path, struct config *,
		     struct config_error *, size_t max_errs, size_t *nerrs);
int		 config_parse_string(const char *text, struct config *,
		     struct config_error *, size_t max_errs, size_t *nerrs);
int		 config_parse_buffer(const char *, size_t, struct config *,
		     struct config_error *, size_t max_errs, size_t *nerrs);
/* "haven.conf:12: [interfaces] storage: message" (path NULL: haven.conf). */
void		 config_error_format(const struct config_error *,
		     const char *path, char *, size_t);
/* The fence's option named key, or NULL. */
const char	*config_fence_option(const struct config_fence *,
		     const char *key);
/* This host's one iSCSI initiator name: [vm] initiator, else
 * iqn.2026-11.io.haven:NODE. */
void		 config_initiator(const struct config *, char *, size_t);
/* Zeroes the whole struct, secrets included (explicit_bzero). */
void		 config_wipe(struct config *);

/* host.c: what haven.conf names that must exist on this host, looked up
 * under sysfs_root ("/sys", or a fake tree in tests). */
#define CONFIG_SYSFS		"/sys"
int		 config_bridge_exists(const char *sysfs_root, const char *name);
int		 config_bridge_filters_vlans(const char *sysfs_root,
		     const char *name);
/* [watchdog] timeout_s when not given, for a corosync token of token_ms. */
unsigned	 config_watchdog_auto_s(unsigned token_ms);
/* [interfaces] vm bridges that are not bridges here, as errors (as
 * config_parse_file gives them); returns how many. */
size_t		 config_check_bridges(const struct config *,
		     const char *sysfs_root, struct config_error *,
		     size_t max_errs);

/* join.c: the join token and the join protocol's messages (cluster init,
 * token, join). A token: haven1:ADDR:PORT:ID:SECRET, where ADDR:PORT is
 * a member's join service, ID 16 lowercase hex digits naming the token
 * there and SECRET 64 hex digits, the TLS pre-shared key. */
#define JOIN_ID_HEX	16
#define JOIN_SECRET	32		/* bytes */
#define JOIN_TOKEN_MAX	160
#define JOIN_MSG_MAX	(256 * 1024)
#define JOIN_PORT	5408		/* the join service's default */
struct join_token {
	char		 addr[46];
	uint16_t	 port;
	char		 id[JOIN_ID_HEX + 1];
	uint8_t		 secret[JOIN_SECRET];
};
int		 join_token_parse(const char *, struct join_token *);
void		 join_token_format(const struct join_token *, char *, size_t);
enum join_key {
	JOIN_NAME,		/* the joiner's [node] name */
	JOIN_LINKS,		/* its link addresses, ADDR[,ADDR2] */
	JOIN_CLUSTER,		/* the cluster's name */
	JOIN_NODE_ID,		/* the joiner's corosync node id */
	JOIN_COROSYNC_CONF,	/* the file every member runs */
	JOIN_AUTHKEY,		/* /etc/corosync/authkey */
	JOIN_CHAP,		/* /etc/haven/chap, when the member has one */
	JOIN_ERROR,		/* the join refused, why */
	JOIN_NKEYS
};
struct join_msg {
	char		*value[JOIN_NKEYS];	/* NUL-terminated; NULL: none */
	size_t		 len[JOIN_NKEYS];
};
/* -1 with a sentence in err (never quoting the input); m is then empty. */
int		 join_msg_parse(const char *, size_t, struct join_msg *,
		     char *err, size_t errlen);
int		 join_msg_set(struct join_msg *, enum join_key, const void *,
		     size_t);
char		*join_msg_format(const struct join_msg *, size_t *len);
/* Frees the values, wiped first. */
void		 join_msg_clear(struct join_msg *);

#endif
