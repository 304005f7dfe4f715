/*
 * The host-local configuration, /etc/haven/haven.conf: node name, NICs by
 * role, watchdog, [vm] (DESIGN §1, §7); the [fence:NAME] sections are
 * config_fence.c's. inih splits the lines; this file feeds it one line at a
 * time to know line numbers, checks every value and collects every error,
 * never a secret.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "common.h"
#include "config.h"
#include "corosync.h"
#include "parse.h"

#define CONFIG_FILE_MAX		(1024 * 1024)

static const char *const section_names[] = {
	[SECTION_NODE] = "node",
	[SECTION_INTERFACES] = "interfaces",
	[SECTION_WATCHDOG] = "watchdog",
	[SECTION_CLUSTER] = "cluster",
	[SECTION_CONTROL] = "control",
	[SECTION_VM] = "vm",
	[SECTION_STORAGE] = "storage",
	[SECTION_ALERT] = "alert",
	[SECTION_METRICS] = "metrics",
};

static const struct key_info {
	enum section	 section;
	const char	*name;
} keys[KEY_COUNT] = {
	[KEY_NODE_NAME] = { SECTION_NODE, "name" },
	[KEY_IF_MANAGEMENT] = { SECTION_INTERFACES, "management" },
	[KEY_IF_STORAGE] = { SECTION_INTERFACES, "storage" },
	[KEY_IF_MIGRATION] = { SECTION_INTERFACES, "migration" },
	[KEY_IF_VM] = { SECTION_INTERFACES, "vm" },
	[KEY_WATCHDOG_DEVICE] = { SECTION_WATCHDOG, "device" },
	[KEY_WATCHDOG_TIMEOUT] = { SECTION_WATCHDOG, "timeout_s" },
	[KEY_CLUSTER_NAME] = { SECTION_CLUSTER, "name" },
	[KEY_TOKEN_MS] = { SECTION_CLUSTER, "token_ms" },
	[KEY_STATE_DIR] = { SECTION_CLUSTER, "state_dir" },
	[KEY_CONTROL_SOCKET] = { SECTION_CONTROL, "socket" },
	[KEY_AUDIT_LOG] = { SECTION_CONTROL, "audit_log" },
	[KEY_VM_WORKER] = { SECTION_VM, "worker" },
	[KEY_VM_ACCEL] = { SECTION_VM, "accel" },
	[KEY_VM_UID_BASE] = { SECTION_VM, "uid_base" },
	[KEY_VM_RUN_DIR] = { SECTION_VM, "run_dir" },
	[KEY_VM_LOG_DIR] = { SECTION_VM, "log_dir" },
	[KEY_VM_ADOPT_TIMEOUT] = { SECTION_VM, "adopt_timeout_s" },
	[KEY_VM_INITIATOR] = { SECTION_VM, "initiator" },
	[KEY_VM_QEMU] = { SECTION_VM, "qemu" },
	[KEY_VM_SHUTDOWN] = { SECTION_VM, "shutdown" },
	[KEY_VM_LOG_MAX] = { SECTION_VM, "log_max_mb" },
	[KEY_STORAGE_CHAP_FILE] = { SECTION_STORAGE, "chap_file" },
	[KEY_STORAGE_KEY_FILE] = { SECTION_STORAGE, "key_secret_file" },
	[KEY_ALERT_PROGRAM] = { SECTION_ALERT, "program" },
	[KEY_ALERT_EVENTS] = { SECTION_ALERT, "events" },
	[KEY_ALERT_TIMEOUT] = { SECTION_ALERT, "timeout_s" },
	[KEY_METRICS_LISTEN] = { SECTION_METRICS, "listen" },
	[KEY_METRICS_STATUS_AUTH] = { SECTION_METRICS, "status_auth" },
};

static const char *const alert_kind_names[CONFIG_ALERT_NKINDS] = {
	[CONFIG_ALERT_HOST_LOST] = "host-lost",
	[CONFIG_ALERT_FENCED] = "fenced",
	[CONFIG_ALERT_FENCE_FAILED] = "fence-failed",
	[CONFIG_ALERT_VM_FAILED] = "vm-failed",
	[CONFIG_ALERT_FAILOVER_DONE] = "failover-done",
};

const char *
config_alert_kind_name(enum config_alert_kind k)
{
	return (unsigned)k < CONFIG_ALERT_NKINDS ? alert_kind_names[k] : "?";
}

void
config_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

void
config_add_error(struct parse *p, unsigned line, const char *section,
    const char *key, const char *fmt, ...)
{
	struct config_error	*e;
	va_list			 ap;

	if (p->nerrs++ >= p->max_errs || p->errs == NULL)
		return;
	e = &p->errs[p->nerrs - 1];
	e->line = line;
	config_copy(e->section, sizeof e->section, section != NULL ? section : "");
	config_copy(e->key, sizeof e->key, key != NULL ? key : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

int
config_parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long	 v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -1;
	}
	if (v < min)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Letters, digits and the given punctuation only. */
int
config_only_chars(const char *s, const char *punct)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) || (unsigned char)*s > 127)
			if (strchr(punct, *s) == NULL)
				return 0;
	return 1;
}

int
config_valid_name(const char *s, size_t size)
{
	size_t	 n = strlen(s);

	return n > 0 && n < size && isalnum((unsigned char)*s) &&
	    config_only_chars(s, "._-");
}

int
config_valid_path(const char *s, size_t size)
{
	const unsigned char *c;

	if (s[0] != '/' || strlen(s) >= size)
		return 0;
	for (c = (const unsigned char *)s; *c != '\0'; c++)
		if (*c < 0x20 || *c == 0x7f)
			return 0;
	return 1;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	config_copy(c->cluster_name, sizeof c->cluster_name, "haven");
	config_copy(c->watchdog_device, sizeof c->watchdog_device, "/dev/watchdog");
	c->watchdog_timeout_s = 0;	/* auto: from token_ms, check_whole */
	c->token_ms = COROSYNC_TOKEN_MS;
	config_copy(c->state_dir, sizeof c->state_dir, "/var/lib/haven");
	config_copy(c->control_socket, sizeof c->control_socket,
	    "/run/haven/havend.sock");
	config_copy(c->audit_log, sizeof c->audit_log, "/var/log/haven/audit.log");
	config_copy(c->vm_accel, sizeof c->vm_accel, "auto");
	c->vm_uid_base = 61000;
	config_copy(c->vm_run_dir, sizeof c->vm_run_dir, "/run/haven/vm");
	config_copy(c->vm_log_dir, sizeof c->vm_log_dir, "/var/log/haven");
	c->vm_adopt_timeout_s = 60;
	c->vm_log_max_mb = 16;
	c->alert_events = CONFIG_ALERT_ALL;
	c->alert_timeout_s = CONFIG_ALERT_TIMEOUT_S;
	config_copy(c->metrics_listen, sizeof c->metrics_listen,
	    CONFIG_METRICS_LISTEN);
	config_copy(c->storage_chap_file, sizeof c->storage_chap_file,
	    CONFIG_CHAP_FILE);
	config_copy(c->storage_key_file, sizeof c->storage_key_file,
	    CONFIG_KEY_SECRET_FILE);
}

void
config_initiator(const struct config *c, char *buf, size_t size)
{
	if (*c->vm_initiator != '\0')
		snprintf(buf, size, "%s", c->vm_initiator);
	else
		snprintf(buf, size, "iqn.2026-11.io.haven:%s", c->node_name);
}

void
config_wipe(struct config *c)
{
	explicit_bzero(c, sizeof *c);
}

/* "HOST:PORT" or "[V6]:PORT" split; -1 when it is neither. */
int
config_listen_parse(const char *s, char *host, size_t hostlen,
    unsigned *port)
{
	const char	*colon;
	char		*end;
	unsigned long	 p;
	size_t		 n;

	if (*s == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return -1;
		n = (size_t)(colon - s - 1);
		s++;
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    strchr(s, ':') != colon)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || errno != 0 || p == 0 ||
	    p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

/* The next blank-separated word of *s into out (cut to fit); 0 at the end. */
static int
config_word(const char **s, char *out, size_t size)
{
	size_t	len;

	while (isspace((unsigned char)**s))
		(*s)++;
	if (**s == '\0')
		return 0;
	len = strcspn(*s, " \t\r\n\v\f");
	snprintf(out, size, "%.*s", (int)len, *s);
	*s += len;
	return 1;
}

/* [alert] events = KIND [KIND...] | all. */
static void
alert_events_key(struct parse *p, const char *value)
{
	struct config	*c = p->config;
	const char	*s = value;
	char		 name[32];
	unsigned	 k, bits = 0;

	while (config_word(&s, name, sizeof name)) {
		if (strcmp(name, "all") == 0) {
			bits |= CONFIG_ALERT_ALL;
			continue;
		}
		for (k = 0; k < CONFIG_ALERT_NKINDS; k++)
			if (strcmp(name, alert_kind_names[k]) == 0)
				break;
		if (k == CONFIG_ALERT_NKINDS) {
			config_add_error(p, p->line, p->section_name, "events",
			    "'%.31s' is not an event: host-lost, fenced, "
			    "fence-failed, vm-failed, failover-done or all", name);
			continue;
		}
		bits |= 1u << k;
	}
	c->alert_events = bits;
}

/* The [alert] and [metrics] keys: what havend tells, and how. */
static void
alert_key(struct parse *p, enum key k, const char *value)
{
	struct config	*c = p->config;
	const char	*sn = p->section_name, *key = keys[k].name;

	switch (k) {
	case KEY_ALERT_PROGRAM:
		if (!config_valid_path(value, sizeof c->alert_program))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters",
			    sizeof c->alert_program - 1);
		else
			config_copy(c->alert_program, sizeof c->alert_program,
			    value);
		break;
	case KEY_ALERT_EVENTS:
		alert_events_key(p, value);
		break;
	case KEY_ALERT_TIMEOUT:
		if (config_parse_unsigned(value, 1, 600,
		    &c->alert_timeout_s) == -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of seconds from 1 to 600", value);
		break;
	case KEY_METRICS_LISTEN: {
		char		host[64];
		unsigned	port;

		if (strcmp(value, "none") == 0)
			*c->metrics_listen = '\0';
		else if (strlen(value) >= sizeof c->metrics_listen ||
		    config_listen_parse(value, host, sizeof host, &port) == -1)
			config_add_error(p, p->line, sn, key, "'%.64s' is not "
			    "ADDRESS:PORT ([V6]:PORT for IPv6) or none", value);
		else
			config_copy(c->metrics_listen, sizeof c->metrics_listen,
			    value);
		break;
	}
	case KEY_METRICS_STATUS_AUTH:
		if (strcmp(value, "remote") == 0)
			c->metrics_status_auth_always = 0;
		else if (strcmp(value, "always") == 0)
			c->metrics_status_auth_always = 1;
		else
			config_add_error(p, p->line, sn, key, "'%.32s' is not "
			    "remote (a login for clients not on this host) or "
			    "always", value);
		break;
	default:
		break;
	}
}

/* The [vm] keys: how this host runs its VMs' workers. */
static void
vm_key(struct parse *p, enum key k, const char *value)
{
	struct config	*c = p->config;
	const char	*sn = p->section_name, *key = keys[k].name;

	switch (k) {
	case KEY_VM_WORKER:
	case KEY_VM_QEMU:
		if (!config_valid_path(value, sizeof c->vm_worker))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters",
			    sizeof c->vm_worker - 1);
		else
			config_copy(k == KEY_VM_WORKER ? c->vm_worker : c->vm_qemu,
			    sizeof c->vm_worker, value);
		break;
	case KEY_VM_ACCEL:
		if (strcmp(value, "auto") != 0 && strcmp(value, "kvm") != 0 &&
		    strcmp(value, "tcg") != 0)
			config_add_error(p, p->line, sn, key, "'%.32s' is not auto, "
			    "kvm or tcg", value);
		else
			config_copy(c->vm_accel, sizeof c->vm_accel, value);
		break;
	case KEY_VM_UID_BASE:
		if (config_parse_unsigned(value, 1000, 4000000000U,
		    &c->vm_uid_base) == -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a uid "
			    "from 1000 up (VM n runs as uid_base + 2n, its QEMU as "
			    "uid_base + 2n + 1)", value);
		break;
	case KEY_VM_RUN_DIR:
	case KEY_VM_LOG_DIR:
		/* run_dir/<uuid>/qmp.sock must fit a socket address. */
		if (!config_valid_path(value, k == KEY_VM_RUN_DIR ? 48 :
		    sizeof c->vm_log_dir))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %d characters", k ==
			    KEY_VM_RUN_DIR ? 47 : (int)sizeof c->vm_log_dir - 1);
		else
			config_copy(k == KEY_VM_RUN_DIR ? c->vm_run_dir : c->vm_log_dir,
			    sizeof c->vm_log_dir, value);
		break;
	case KEY_VM_ADOPT_TIMEOUT:
		if (config_parse_unsigned(value, 0, 3600, &c->vm_adopt_timeout_s) ==
		    -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of seconds from 0 to 3600", value);
		break;
	case KEY_VM_LOG_MAX:
		if (config_parse_unsigned(value, 1, 65536, &c->vm_log_max_mb) == -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a size "
			    "in MiB from 1 to 65536", value);
		break;
	case KEY_VM_SHUTDOWN:
		if (strcmp(value, "leave") != 0 && strcmp(value, "migrate") != 0)
			config_add_error(p, p->line, sn, key, "'%.32s' is not leave "
			    "(the VMs keep running for the next havend) or "
			    "migrate (drain the host first)", value);
		else
			c->vm_shutdown_migrate = strcmp(value, "migrate") == 0;
		break;
	case KEY_VM_INITIATOR:
		if (strncmp(value, "iqn.", 4) != 0 || strlen(value) >=
		    sizeof c->vm_initiator || strpbrk(value, " \t/") != NULL)
			config_add_error(p, p->line, sn, key, "'%.64s' is not an "
			    "iSCSI initiator name (iqn.YYYY-MM.domain:name)",
			    value);
		else
			config_copy(c->vm_initiator, sizeof c->vm_initiator, value);
		break;
	default:
		break;
	}
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* [interfaces] vm = BRIDGE [BRIDGE...]: the bridges for guests' NICs,
 * kept sorted; that none is another role's NIC needs the whole file. */
static void
vm_bridges_key(struct parse *p, const char *value)
{
	struct config	*c = p->config;
	const char	*sn = p->section_name, *s = value;
	char		 name[64];
	size_t		 i;

	c->if_vm_line = p->line;
	while (config_word(&s, name, sizeof name)) {
		if (!net_ifname_valid(name)) {
			config_add_error(p, p->line, sn, "vm", "'%.32s' is not a "
			    "bridge name (1 to 15 characters, no '/', ':' or "
			    "spaces); see ip link", name);
			continue;
		}
		for (i = 0; i < c->nif_vm; i++)
			if (strcmp(c->if_vm[i], name) == 0)
				break;
		if (i < c->nif_vm) {
			config_add_error(p, p->line, sn, "vm", "%s is listed twice; "
			    "list each bridge once", name);
			continue;
		}
		if (c->nif_vm == CONFIG_MAX_VM_BRIDGES) {
			config_add_error(p, p->line, sn, "vm", "more than %d bridges",
			    CONFIG_MAX_VM_BRIDGES);
			return;
		}
		config_copy(c->if_vm[c->nif_vm++], sizeof c->if_vm[0], name);
	}
	qsort(c->if_vm, c->nif_vm, sizeof c->if_vm[0], by_name);
}

static void
fixed_key(struct parse *p, enum key k, const char *value)
{
	struct config	*c = p->config;
	const char	*sn = p->section_name, *key = keys[k].name;

	if (p->seen_line[k] != 0) {
		config_add_error(p, p->line, sn, key, "given twice (first at line "
		    "%u); keep one", p->seen_line[k]);
		return;
	}
	p->seen_line[k] = p->line;
	switch (k) {
	case KEY_NODE_NAME:
		if (!config_valid_name(value, sizeof c->node_name))
			config_add_error(p, p->line, sn, key, "'%.64s' is not a host "
			    "name: letters, digits, '.', '_' and '-', up to "
			    "63 characters", value);
		else
			config_copy(c->node_name, sizeof c->node_name, value);
		break;
	case KEY_CLUSTER_NAME:
		if (!config_valid_name(value, sizeof c->cluster_name))
			config_add_error(p, p->line, sn, key, "'%.64s' is not a "
			    "cluster name: letters, digits, '.', '_' and '-',"
			    " up to 63 characters", value);
		else
			config_copy(c->cluster_name, sizeof c->cluster_name, value);
		break;
	case KEY_IF_MANAGEMENT:
	case KEY_IF_STORAGE:
	case KEY_IF_MIGRATION:
		if (!net_ifname_valid(value)) {
			config_add_error(p, p->line, sn, key, "'%.64s' is not a "
			    "network interface name (1 to 15 characters, no "
			    "'/', ':' or spaces); see ip link", value);
			break;
		}
		config_copy(k == KEY_IF_MANAGEMENT ? c->if_management :
		    k == KEY_IF_STORAGE ? c->if_storage : c->if_migration,
		    sizeof c->if_storage, value);
		break;
	case KEY_IF_VM:
		vm_bridges_key(p, value);
		break;
	case KEY_WATCHDOG_DEVICE:
		if (strcmp(value, "none") == 0)
			c->watchdog_device[0] = '\0';
		else if (!config_valid_path(value, sizeof c->watchdog_device))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "device path such as /dev/watchdog, or none");
		else
			config_copy(c->watchdog_device, sizeof c->watchdog_device,
			    value);
		break;
	case KEY_WATCHDOG_TIMEOUT:
		if (config_parse_unsigned(value, 2, 255, &c->watchdog_timeout_s) ==
		    -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of seconds from 2 to 255 (havend pets "
			    "every second)", value);
		break;
	case KEY_TOKEN_MS:
		if (config_parse_unsigned(value, 100, 120000, &c->token_ms) == -1)
			config_add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of milliseconds from 100 to 120000",
			    value);
		break;
	case KEY_STATE_DIR:
	case KEY_AUDIT_LOG:
		if (!config_valid_path(value, sizeof c->state_dir))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters",
			    sizeof c->state_dir - 1);
		else
			config_copy(k == KEY_STATE_DIR ? c->state_dir : c->audit_log,
			    sizeof c->state_dir, value);
		break;
	case KEY_STORAGE_CHAP_FILE:
	case KEY_STORAGE_KEY_FILE:
		/* Read (and their modes checked) by havend at start. */
		if (!config_valid_path(value, sizeof c->storage_chap_file))
			config_add_error(p, p->line, sn, key, "must be an "
			    "absolute path of at most %zu characters",
			    sizeof c->storage_chap_file - 1);
		else if (k == KEY_STORAGE_CHAP_FILE) {
			config_copy(c->storage_chap_file,
			    sizeof c->storage_chap_file, value);
			c->storage_chap_line = p->line;
		} else {
			config_copy(c->storage_key_file,
			    sizeof c->storage_key_file, value);
			c->storage_key_line = p->line;
		}
		break;
	case KEY_CONTROL_SOCKET:
		if (!config_valid_path(value, sizeof c->control_socket))
			config_add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters (a UNIX socket "
			    "address)", sizeof c->control_socket - 1);
		else
			config_copy(c->control_socket, sizeof c->control_socket,
			    value);
		break;
	case KEY_ALERT_PROGRAM:
	case KEY_ALERT_EVENTS:
	case KEY_ALERT_TIMEOUT:
	case KEY_METRICS_LISTEN:
	case KEY_METRICS_STATUS_AUTH:
		alert_key(p, k, value);
		break;
	default:
		vm_key(p, k, value);
		break;
	}
}

/* inih's callback: one key = value of the current line. */
static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse	*p = user;
	const char	*sn = p->section_name;
	int		 k;

	(void)section;	/* ours, parsed in read_line, knows bad headers */
	p->handler_called = 1;
	if (p->section == SECTION_SKIP)
		return 1;
	if (p->section == SECTION_NONE) {
		config_add_error(p, p->line, "", key, "comes before any section; put "
		    "it under [node], [interfaces], ...");
		return 1;
	}
	if (*key == '\0') {
		config_add_error(p, p->line, sn, "", "a line with no key before '='");
		return 1;
	}
	if (strlen(key) >= 64) {
		config_add_error(p, p->line, sn, "", "a key longer than 63 "
		    "characters");
		return 1;
	}
	if (*value == '\0') {
		config_add_error(p, p->line, sn, key, "has no value; give one or "
		    "remove the line to get the default");
		return 1;
	}
	if (p->section == SECTION_FENCE) {
		config_fence_key(p, key, value);
		return 1;
	}
	for (k = 0; k < KEY_COUNT; k++)
		if (keys[k].section == p->section &&
		    strcmp(keys[k].name, key) == 0) {
			fixed_key(p, (enum key)k, value);
			return 1;
		}
	config_add_error(p, p->line, sn, key, "unknown key in [%s]; see haven.conf(5)",
	    sn);
	return 1;
}

static void
start_section(struct parse *p, const char *name)
{
	int			 s;

	config_copy(p->section_name, sizeof p->section_name, name);
	p->section = SECTION_SKIP;
	if (strlen(name) >= sizeof p->section_name) {
		config_add_error(p, p->line, "", "", "a section name longer than 63 "
		    "characters");
		return;
	}
	if (strncmp(name, "fence:", 6) == 0) {
		config_fence_section(p, name);
		return;
	}
	for (s = SECTION_NODE; s < SECTION_FENCE; s++)
		if (strcmp(name, section_names[s]) == 0)
			break;
	if (s == SECTION_FENCE) {
		config_add_error(p, p->line, name, "", "unknown section; the sections "
		    "are node, interfaces, watchdog, cluster, control, vm, "
		    "storage, alert, metrics and fence:NAME");
		return;
	}
	if (p->section_line[s] != 0) {
		config_add_error(p, p->line, name, "", "appears twice (first at line "
		    "%u); merge them", p->section_line[s]);
		return;
	}
	p->section_line[s] = p->line;
	p->section = (enum section)s;
}

/* A "[name]" line (leading blanks gone): 0, or -1 for a syntax error. */
static int
section_header(struct parse *p, const char *line, size_t len)
{
	char		 name[128];
	const char	*end = memchr(line, ']', len);
	size_t		 n;

	if (end == NULL) {
		config_add_error(p, p->line, "", "", "a section header without its "
		    "closing ']'");
		return -1;
	}
	line++;
	while (line < end && isspace((unsigned char)*line))
		line++;
	n = (size_t)(end - line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n >= sizeof name)
		n = sizeof name - 1;
	memcpy(name, line, n);
	name[n] = '\0';
	if (n == 0) {
		config_add_error(p, p->line, "", "", "an empty section name '[]'");
		return -1;
	}
	start_section(p, name);
	return 0;
}

/*
 * inih's reader: the next line, with its number in p->line. Leading blanks
 * go, so no line continues the previous one (an indented key would
 * otherwise become part of the previous value). Lines inih would split or
 * cut (too long, NUL bytes) become blank after an error here; so do bad
 * section headers, whose keys are then skipped.
 */
static char *
read_line(char *out, int size, void *stream)
{
	struct parse	*p = stream;
	const char	*line, *nl;
	size_t		 len;

	if (p->key_line_pending && !p->handler_called)
		config_add_error(p, p->line, p->section == SECTION_SKIP ? "" :
		    p->section_name, "", "expected 'key = value'");
	p->key_line_pending = 0;
	if (p->pos >= p->len)
		return NULL;
	line = p->text + p->pos;
	nl = memchr(line, '\n', p->len - p->pos);
	len = nl != NULL ? (size_t)(nl - line) : p->len - p->pos;
	p->pos += len + (nl != NULL);
	p->line++;
	if (p->line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	while (len > 0 && isspace((unsigned char)*line)) {
		line++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)line[len - 1]))
		len--;
	if (memchr(line, '\0', len) != NULL) {
		config_add_error(p, p->line, "", "", "a NUL byte in the line");
		len = 0;
	} else if (size < 2 || len > (size_t)size - 2) {
		config_add_error(p, p->line, "", "", "a line longer than %d "
		    "characters", size - 2);
		len = 0;
	} else if (len > 0 && *line == '[') {
		if (section_header(p, line, len) == -1) {
			p->section = SECTION_SKIP;
			len = 0;
		}
	} else if (len > 0 && *line != ';' && *line != '#') {
		p->key_line_pending = 1;
		p->handler_called = 0;
	}
	memcpy(out, line, len);
	out[len] = '\n';
	out[len + 1] = '\0';
	return out;
}

/*
 * The watchdog must fire before a frozen host's VMs may start elsewhere
 * (fence/timeline.h): no later than the survivors' earliest detection,
 * twice the token, less half a second for the reset.
 */
unsigned
config_watchdog_auto_s(unsigned token_ms)
{
	return token_ms * 2 >= 3000 ? (token_ms * 2 - 500) / 1000 : 2;
}

/* What needs the whole file: required keys, roles, fence levels. */
static void
check_whole(struct parse *p)
{
	struct config		*c = p->config;
	size_t			 i;

	if (c->watchdog_timeout_s == 0) {
		c->watchdog_timeout_auto = 1;
		c->watchdog_timeout_s = config_watchdog_auto_s(c->token_ms);
	}
	if (p->seen_line[KEY_NODE_NAME] == 0)
		config_add_error(p, p->section_line[SECTION_NODE], "node", "name",
		    "is required: this host's name as the cluster knows it");
	if (p->seen_line[KEY_IF_MANAGEMENT] == 0)
		config_add_error(p, p->section_line[SECTION_INTERFACES], "interfaces",
		    "management", "is required: the NIC for corosync, "
		    "havenctl and fence traffic");
	if (p->seen_line[KEY_IF_STORAGE] == 0)
		config_add_error(p, p->section_line[SECTION_INTERFACES], "interfaces",
		    "storage", "is required: the NIC for iSCSI and nothing "
		    "else");
	if (c->if_management[0] != '\0' &&
	    strcmp(c->if_management, c->if_storage) == 0)
		config_add_error(p, p->seen_line[KEY_IF_STORAGE], "interfaces",
		    "storage", "is the management interface too; iSCSI needs "
		    "its own NIC (haven.conf(5), NETWORK ROLES)");
	if (c->if_storage[0] != '\0' &&
	    strcmp(c->if_migration, c->if_storage) == 0)
		config_add_error(p, p->seen_line[KEY_IF_MIGRATION], "interfaces",
		    "migration", "is the storage interface; migration streams "
		    "go over management or a NIC of their own");
	if (p->seen_line[KEY_IF_MIGRATION] == 0)
		config_copy(c->if_migration, sizeof c->if_migration,
		    c->if_management);
	/* Guests never share a NIC with the host's own traffic (DESIGN §1). */
	for (i = 0; i < c->nif_vm; ) {
		const char	*role = strcmp(c->if_vm[i], c->if_management) == 0 ?
				    "management" : strcmp(c->if_vm[i],
				    c->if_storage) == 0 ? "storage" :
				    strcmp(c->if_vm[i], c->if_migration) == 0 ?
				    "migration" : NULL;

		if (role == NULL) {
			i++;
			continue;
		}
		config_add_error(p, c->if_vm_line, "interfaces", "vm", "%s is the %s "
		    "interface; guests get bridges of their own (haven.conf(5), "
		    "NETWORK ROLES)", c->if_vm[i], role);
		memmove(c->if_vm[i], c->if_vm[i + 1], (c->nif_vm - i - 1) *
		    sizeof c->if_vm[0]);
		c->nif_vm--;
	}

	config_fence_check(p);
}

/* Errors in line order, stable; whole-file ones (line 0) last. */
static void
sort_errors(struct parse *p)
{
	struct config_error	 e;
	size_t			 n = p->nerrs < p->max_errs ? p->nerrs :
				     p->max_errs, i, j;

	if (p->errs == NULL)
		return;
	for (i = 1; i < n; i++) {
		e = p->errs[i];
		for (j = i; j > 0 && (p->errs[j - 1].line == 0 ? UINT32_MAX :
		    p->errs[j - 1].line) > (e.line == 0 ? UINT32_MAX : e.line);
		    j--)
			p->errs[j] = p->errs[j - 1];
		p->errs[j] = e;
	}
}

static int
parse(struct parse *p, const char *text, size_t len, struct config *c,
    struct config_error *errs, size_t max_errs, size_t *nerrs)
{
	memset(p, 0, sizeof *p);
	p->text = text;
	p->len = len;
	p->config = c;
	p->errs = errs;
	p->max_errs = max_errs;
	config_defaults(c);
	/* Syntax errors are ours (read_line); ignore inih's count. */
	(void)ini_parse_stream(read_line, p, handler, p);
	check_whole(p);
	if (nerrs != NULL)
		*nerrs = p->nerrs;
	return p->nerrs == 0 ? 0 : -1;
}

int
config_parse_buffer(const char *text, size_t len, struct config *c,
    struct config_error *errs, size_t max_errs, size_t *nerrs)
{
	struct parse	 p;
	int		 rc;

	rc = parse(&p, text, len, c, errs, max_errs, nerrs);
	sort_errors(&p);
	explicit_bzero(&p, sizeof p);
	return rc;
}

int
config_parse_string(const char *text, struct config *c,
    struct config_error *errs, size_t max_errs, size_t *nerrs)
{
	return config_parse_buffer(text, strlen(text), c, errs, max_errs,
	    nerrs);
}

int
config_parse_file(const char *path, struct config *c,
    struct config_error *errs, size_t max_errs, size_t *nerrs)
{
	struct parse	 p;
	struct stat	 st;
	char		*text = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, rc = -1;

	memset(&p, 0, sizeof p);
	p.errs = errs;
	p.max_errs = max_errs;
	config_defaults(c);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		config_add_error(&p, 0, "", "", "cannot open: %s%s", strerror(errno),
		    errno == ENOENT ? "; create it (see haven.conf(5))" : "");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		config_add_error(&p, 0, "", "", "not a regular file");
		goto out;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		config_add_error(&p, 0, "", "", "larger than %d bytes",
		    CONFIG_FILE_MAX);
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		config_add_error(&p, 0, "", "", "out of memory");
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, text + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			config_add_error(&p, 0, "", "", "cannot read: %s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = parse(&p, text, len, c, errs, max_errs, NULL);
	if (p.inline_secret && (st.st_mode & 077) != 0) {
		config_add_error(&p, 0, "", "", "holds a password but is readable or "
		    "writable by group or others (mode %04o); run chmod 600 "
		    "on it or move the password to a password_file",
		    (unsigned)(st.st_mode & 07777));
		rc = -1;
	}
out:
	sort_errors(&p);
	if (fd != -1)
		close(fd);
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	if (nerrs != NULL)
		*nerrs = p.nerrs;
	explicit_bzero(&p, sizeof p);
	return rc;
}

void
config_error_format(const struct config_error *e, const char *path,
    char *buf, size_t size)
{
	char	 where[160] = "";

	if (e->section[0] != '\0' && e->key[0] != '\0')
		snprintf(where, sizeof where, " [%s] %s:", e->section, e->key);
	else if (e->section[0] != '\0')
		snprintf(where, sizeof where, " [%s]:", e->section);
	else if (e->key[0] != '\0')
		snprintf(where, sizeof where, " %s:", e->key);
	if (path == NULL)
		path = "haven.conf";
	if (e->line != 0)
		snprintf(buf, size, "%s:%u:%s %s", path, e->line, where,
		    e->message);
	else
		snprintf(buf, size, "%s:%s %s", path, where, e->message);
}
