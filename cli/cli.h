/*
 * cli/: havenctl. One file per command, each exporting one descriptor
 * (tmux's cmd-*.c model), listed in the table in havenctl.c.
 */
#ifndef HAVEN_CLI_H
#define HAVEN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct json_object;
struct event_base;
struct Haven__Nic;
struct blockdev;
struct volume;

/* Exit codes, documented in havenctl(8). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,	/* the operation failed */
	CLI_EXIT_USAGE = 2,	/* bad command line */
	CLI_EXIT_PROBLEMS = 3,	/* a check found problems */
	CLI_EXIT_DENIED = 4,	/* not allowed (role, reservation) */
};

struct cli {
	int		 json;		/* --json: one JSON document on stdout */
	int		 quiet;
	int		 tty;		/* stderr is a terminal: progress bars */
	uint64_t	 key;		/* --key: claim iSCSI LUNs before writing */
	const char	*program;
};

/*
 * args.c: what a command takes, as data on its entry (tmux's args_parse
 * model), and the command line parsed against it once, in havenctl.c, so
 * a command only reads values. Every command also takes --json, which is
 * not listed; --help and -h are answered before parsing.
 */
#define ARGS_VALUE	0x1		/* the option takes a value */

struct args_option {
	const char	*name;		/* "size" for --size */
	int		 letter;	/* 's' for -s, or 0 */
	int		 flags;		/* ARGS_VALUE */
};

struct args_spec {
	const struct args_option *options;	/* ends with a NULL name */
	int		 lower;		/* operands, at least */
	int		 upper;		/* at most; -1 for no limit */
	const char	*too_few;	/* said when fewer than lower */
	const char	*too_many;	/* NULL: too_few, or generic */
};

struct args;
int		 args_wants_help(int argc, char **argv);
struct args	*args_parse(const struct args_spec *, int argc, char **argv,
		     const char **cause);
void		 args_free(struct args *);
int		 args_has(const struct args *, const char *option);
const char	*args_get(const struct args *, const char *option);
const char	*args_value(const struct args *, const char *option, int);
const char	*args_next(const struct args *, int *, const char **value);
int		 args_count(const struct args *);
const char	*args_positional(const struct args *, int);

struct cmd_entry {
	const char	*name;		/* "disk create" */
	struct args_spec args;		/* its options and operands */
	const char	*usage;		/* arguments after the name */
	const char	*summary;	/* one line for the command list */
	int		 (*exec)(struct cli *, struct args *);
};

/*
 * join.c: bootstrap (cluster init, token, join; node remove): the files a
 * host of the cluster has, the member's one-time join tokens and the join
 * service (a child of init or token) with its client. Paths are under
 * $HAVEN_ROOT when set (tests of the files alone).
 */
#define COROSYNC_CONF		"/etc/corosync/corosync.conf"
#define COROSYNC_AUTHKEY	"/etc/corosync/authkey"
#define HAVEN_CONF		"/etc/haven/haven.conf"
#define HAVEN_CHAP		"/etc/haven/chap"
#define JOIN_TOKENS		"/var/lib/haven/join-tokens"
#define JOIN_LOG		"/var/log/haven/join.log"
#define JOIN_TTL_S		3600	/* a token admits one host within */
#define JOIN_IO_TIMEOUT_S	15
struct join_token;
struct join_msg;
struct corosync_conf;
const char	*join_path(const char *);
int		 join_read_file(const char *, char **, size_t *);
int		 join_write_file(const char *, const void *, size_t,
		     unsigned mode);
char		*join_conf_text(const struct corosync_conf *, char *err,
		     size_t errlen);
int		 join_parse_links(const char *, char buf[2][46],
		     const char **addr, const char **addr2);
int		 join_token_new(const char *addr, uint16_t port,
		     struct join_token *);
int		 join_service_start(struct cli *, const char *addr,
		     uint16_t port);
int		 join_fetch(struct cli *, const struct join_token *,
		     const char *name, const char *links, struct join_msg *);
/* cmd-cluster-init.c: what init and join share once the cluster's files
 * are known: haven.conf written, the services started unless no_start. */
int		 join_install(struct cli *, const char *name,
		     const char *cluster, unsigned token_ms,
		     const char *host_conf, int no_start);
const char	*init_node_name(const char *arg, char *, size_t);
int		 init_check_fresh(struct cli *);
/* The haven.conf init and join write, checked (caller frees); NULL after
 * the errors. */
char		*init_haven_conf(struct cli *, const char *name,
		     const char *cluster, unsigned token_ms,
		     const char *host_conf);

/* havenctl.c */
void		 cli_usage_error(struct cli *, const struct cmd_entry *,
		     const char *, ...) __attribute__((format(printf, 3, 4)));
void		 cli_error(struct cli *, const char *, ...)
		     __attribute__((format(printf, 2, 3)));
int		 cli_json_print(struct cli *, struct json_object *);
void		 cli_format_size(uint64_t, char *, size_t);
void		 cli_progress(struct cli *, const char *what, uint64_t done,
		     uint64_t total);

/* parse.c: pure helpers (tests/unit/cli_parse_test.c). */
#define CLI_VM_NAME_MAX		63
#define CLI_VM_MIN_MEMORY_MIB	16
#define CLI_PRIORITY_HIGH	300	/* --priority names, VmConfig.priority */
#define CLI_PRIORITY_MEDIUM	200
#define CLI_PRIORITY_LOW	100
#define CLI_ISCSI_NAME_MAX	223	/* RFC 3720 3.2.6.1 */
int		 cli_parse_size(const char *, uint64_t *);
int		 cli_parse_memory_mib(const char *, uint64_t *);
int		 cli_parse_uint(const char *, uint64_t min, uint64_t max,
		     uint64_t *);
int		 cli_vm_name_valid(const char *);
int		 cli_parse_nic(char *, struct Haven__Nic *, char mac[18],
		     char *err, size_t errlen);
int		 cli_parse_priority(const char *, uint32_t *);
#define CLI_CONSOLE_ESCAPE	0x1d	/* Ctrl-] leaves vm console --attach */
struct sockaddr_storage;
int		 cli_parse_listen(const char *, struct sockaddr_storage *,
		     socklen_t *, char *err, size_t errlen);
size_t		 cli_console_escape(const uint8_t *, size_t);
const char	*cli_priority_name(uint32_t, char *, size_t);
int		 cli_parse_isolation(const char *, int *);
const char	*cli_isolation_name(int);
const char	*cli_desired_name(int);
const char	*cli_phase_name(int);
const char	*cli_membership_name(int);
const char	*cli_fence_name(int);
void		 cli_format_mib(uint64_t, char *, size_t);
void		 cli_format_time(uint64_t us, char *, size_t);
struct Haven__VmRuntime;
void		 cli_format_paused(const struct Haven__VmRuntime *, char *,
		     size_t);
void		 cli_format_giveup(const struct Haven__VmRuntime *, char *,
		     size_t);
void		 cli_format_giveup_setting(uint32_t secs, char *, size_t);
void		 cli_pool_health(const char *pool, int reachable,
		     uint64_t since_us, uint64_t now_us, char *, size_t);
struct Haven__PoolHealth;
size_t		 cli_pool_paths_up(const struct Haven__PoolHealth *);
void		 cli_pool_paths_json(struct json_object *,
		     const struct Haven__PoolHealth *);
void		 cli_pool_paths_text(const struct Haven__PoolHealth *);
int		 cli_portal_valid(const char *);
int		 cli_iscsi_name_valid(const char *);
size_t		 cli_utf8_clean(const uint8_t *, size_t, char *);

/* target.c: what a disk command works on (an iscsi:// URL or a path). */
struct target {
	struct event_base	*base;
	struct blockdev		*dev;		/* the LUN or file */
	struct volume		*volume;	/* NULL unless a Haven volume */
	struct blockdev		*disk;		/* the volume's disk extent */
	char			 spec[512];
};
#define TARGET_WRITABLE		0x1
#define TARGET_VOLUME		0x2	/* must be a formatted Haven volume */
int		 target_open(struct cli *, const char *spec, int flags,
		     struct target *);
void		 target_close(struct target *);
int		 target_is_iscsi(const char *spec);
int		 target_parse_key(const char *, uint64_t *);
/* Why the reservation key secret could not be read ("" if it was). */
const char	*target_key_error(void);
/* haven.conf's cluster name (its default when unreadable). */
const char	*target_cluster_name(void);
/* A key option (--key, --victim) as target_parse_key reads it, into *key
 * (left alone when the option is absent); -1 after a usage error. */
int		 target_key_arg(struct cli *, const struct cmd_entry *,
		     struct args *, const char *option, uint64_t *key);
/* --type fixed|dynamic into *type (an enum vhd_type; left alone when
 * absent); -1 after a usage error. */
int		 target_type_arg(struct cli *, const struct cmd_entry *,
		     struct args *, int *type);
int		 target_open_lun(struct cli *, const char *spec, struct target *);
int		 cli_pr_error(struct cli *, const char *what, int error);

/* validate.c: havenctl validate's logic that needs no host
 * (tests/unit/validate_test.c); cmd-validate.c runs the checks. */
enum validate_result {
	VALIDATE_PASS,
	VALIDATE_WARN,		/* works, but not as a cluster should */
	VALIDATE_FAIL,		/* failover or fencing would not work */
};
#define VALIDATE_MAX_CHECKS	96
struct validate_check {
	char			 name[64];	/* "storage-network" */
	enum validate_result	 result;
	char			 detail[640];	/* why, and what to do */
};
struct validate_report {
	size_t			 n;
	struct validate_check	 checks[VALIDATE_MAX_CHECKS];
};
const char	*validate_result_name(enum validate_result);
void		 validate_add(struct validate_report *, const char *name,
		     enum validate_result, const char *, ...)
		     __attribute__((format(printf, 4, 5)));
enum validate_result validate_verdict(const struct validate_report *);
struct validate_net {
	uint32_t	 addr;		/* host byte order */
	unsigned	 prefix;
};
int		 validate_net_contains(const struct validate_net *, uint32_t);
int		 validate_nets_overlap(const struct validate_net *,
		     const struct validate_net *);
void		 validate_net_format(const struct validate_net *, char *,
		     size_t);
/* /proc/net/route and /proc/net/ipv6_route as text: 1 when iface has a
 * default route, 0 when not, -1 when the text cannot be read. */
int		 validate_route_default(const char *, const char *iface);
int		 validate_route6_default(const char *, const char *iface);
/* Scratch reservation keys: the low 32 bits 0, which no node's key has. */
#define VALIDATE_KEY_A	UINT64_C(0x68766c6400000000)	/* "hvld" */
#define VALIDATE_KEY_B	UINT64_C(0x68766c6500000000)
struct pr_status;
/* Two sessions to one LUN (lun a, lun b); each call returns 0 or a
 * storage error (pr.c's *_sync). */
struct validate_pr_ops {
	int		 (*read)(void *lun, struct pr_status *);
	int		 (*register_key)(void *lun, uint64_t old_key,
			     uint64_t new_key, int ignore_existing);
	int		 (*preempt)(void *lun, uint64_t key, uint64_t victim,
			     int type);
	const char	*(*strerror)(int);
};
enum validate_result validate_pr(const struct validate_pr_ops *, void *a,
		     void *b, char *detail, size_t);
/* Every host's QEMU machine types (the node list's HostConfig) against
 * the others': fail per host that lacks one another offers. */
struct Haven__Host;
void		 validate_machine_types(struct validate_report *,
		     struct Haven__Host *const *, size_t);

/* client.c: requests to the local havend. */
struct ProtobufCMessage;
const char	*client_socket_path(void);
int		 client_connect(struct cli *);
struct ProtobufCMessage *client_request(struct cli *, int fd, uint16_t type,
		     const struct ProtobufCMessage *, uint16_t *reply_type);
struct ProtobufCMessage *client_request_code(struct cli *, int fd,
		     uint16_t type, const struct ProtobufCMessage *,
		     uint16_t *reply_type, int *error_code);
struct ProtobufCMessage *client_request_fd(struct cli *, int fd,
		     uint16_t type, const struct ProtobufCMessage *,
		     uint16_t *reply_type, int *error_code, int *passed);
int		 client_error_exit(uint16_t reply_type, int error_code);
struct ProtobufCMessage *client_call(struct cli *, uint16_t type,
		     const struct ProtobufCMessage *, uint16_t want, int *exit_code);

/* request.c: shared by the commands that ask havend; see request.h. */

extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_status_login_entry;
extern const struct cmd_entry cmd_events_entry;
extern const struct cmd_entry cmd_debug_log_entry;
extern const struct cmd_entry cmd_role_grant_entry;
extern const struct cmd_entry cmd_role_revoke_entry;
extern const struct cmd_entry cmd_role_list_entry;
extern const struct cmd_entry cmd_node_fence_entry;
extern const struct cmd_entry cmd_node_drain_entry;
extern const struct cmd_entry cmd_node_resume_entry;
extern const struct cmd_entry cmd_vm_migrate_entry;
extern const struct cmd_entry cmd_fence_history_entry;
extern const struct cmd_entry cmd_cluster_set_entry;
extern const struct cmd_entry cmd_cluster_show_entry;
extern const struct cmd_entry cmd_disk_format_entry;
extern const struct cmd_entry cmd_disk_create_entry;
extern const struct cmd_entry cmd_disk_info_entry;
extern const struct cmd_entry cmd_disk_check_entry;
extern const struct cmd_entry cmd_disk_import_entry;
extern const struct cmd_entry cmd_disk_export_entry;
extern const struct cmd_entry cmd_disk_serve_entry;
extern const struct cmd_entry cmd_disk_wipe_entry;
extern const struct cmd_entry cmd_pr_keys_entry;
extern const struct cmd_entry cmd_pr_register_entry;
extern const struct cmd_entry cmd_pr_reserve_entry;
extern const struct cmd_entry cmd_pr_preempt_entry;
extern const struct cmd_entry cmd_pool_add_entry;
extern const struct cmd_entry cmd_pool_list_entry;
extern const struct cmd_entry cmd_volume_add_entry;
extern const struct cmd_entry cmd_volume_remove_entry;
extern const struct cmd_entry cmd_pool_remove_entry;
extern const struct cmd_entry cmd_volume_list_entry;
extern const struct cmd_entry cmd_vm_create_entry;
extern const struct cmd_entry cmd_vm_import_entry;
extern const struct cmd_entry cmd_cluster_corosync_conf_entry;
extern const struct cmd_entry cmd_cluster_init_entry;
extern const struct cmd_entry cmd_cluster_join_entry;
extern const struct cmd_entry cmd_cluster_token_entry;
extern const struct cmd_entry cmd_node_remove_entry;
extern const struct cmd_entry cmd_vm_set_entry;
extern const struct cmd_entry cmd_vm_list_entry;
extern const struct cmd_entry cmd_vm_show_entry;
extern const struct cmd_entry cmd_vm_console_entry;
extern const struct cmd_entry cmd_vm_vnc_entry;
extern const struct cmd_entry cmd_vm_start_entry;
extern const struct cmd_entry cmd_vm_stop_entry;
extern const struct cmd_entry cmd_vm_delete_entry;
extern const struct cmd_entry cmd_node_list_entry;
extern const struct cmd_entry cmd_fence_agents_entry;
extern const struct cmd_entry cmd_fence_metadata_entry;
extern const struct cmd_entry cmd_fence_validate_entry;
extern const struct cmd_entry cmd_validate_entry;

#endif
