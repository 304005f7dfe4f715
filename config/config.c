/*
 * The host-local configuration, /etc/haven/haven.conf: node name, NICs by
 * role, watchdog, fence levels and their secrets (DESIGN §1, §4, §7). inih
 * splits the lines; this file feeds it one line at a time to know line
 * numbers, checks every value and collects every error, never a secret.
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

#define CONFIG_FILE_MAX		(1024 * 1024)
#define PASSWORD_FILE_MAX	4096

enum section {
	SECTION_NONE,		/* before the first header */
	SECTION_SKIP,		/* a bad or unknown header, already reported */
	SECTION_NODE,
	SECTION_INTERFACES,
	SECTION_WATCHDOG,
	SECTION_CLUSTER,
	SECTION_CONTROL,
	SECTION_VM,
	SECTION_FENCE,
};

static const char *const section_names[] = {
	[SECTION_NODE] = "node",
	[SECTION_INTERFACES] = "interfaces",
	[SECTION_WATCHDOG] = "watchdog",
	[SECTION_CLUSTER] = "cluster",
	[SECTION_CONTROL] = "control",
	[SECTION_VM] = "vm",
};

/* The fixed keys; one bit each in parse.seen for duplicates. */
enum key {
	KEY_NODE_NAME,
	KEY_IF_MANAGEMENT,
	KEY_IF_STORAGE,
	KEY_IF_MIGRATION,
	KEY_IF_VM,
	KEY_WATCHDOG_DEVICE,
	KEY_WATCHDOG_TIMEOUT,
	KEY_CLUSTER_NAME,
	KEY_TOKEN_MS,
	KEY_STATE_DIR,
	KEY_CONTROL_SOCKET,
	KEY_AUDIT_LOG,
	KEY_VM_WORKER,
	KEY_VM_ACCEL,
	KEY_VM_UID_BASE,
	KEY_VM_RUN_DIR,
	KEY_VM_LOG_DIR,
	KEY_VM_ADOPT_TIMEOUT,
	KEY_VM_INITIATOR,
	KEY_VM_QEMU,
	KEY_VM_SHUTDOWN,
	KEY_VM_LOG_MAX,
	KEY_COUNT,
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
};

/* What the parse knows of a fence section beyond struct config_fence. */
struct fence_state {
	unsigned	 line;			/* of its header */
	unsigned	 agent_line, level_line;
	unsigned	 password_line, password_file_line;
	unsigned	 option_line[CONFIG_MAX_OPTIONS];
	int		 level_set;
};

struct parse {
	const char		*text;
	size_t			 len, pos;
	unsigned		 line;

	enum section		 section;
	char			 section_name[64];
	unsigned		 section_line[SECTION_FENCE];
	struct config_fence	*fence;
	struct fence_state	*fence_state;
	struct fence_state	 fence_states[CONFIG_MAX_FENCES];

	int			 key_line_pending;	/* handed to inih... */
	int			 handler_called;	/* ...and it called us */
	unsigned		 seen_line[KEY_COUNT];
	int			 inline_secret;

	struct config		*config;
	struct config_error	*errs;
	size_t			 max_errs, nerrs;
};

static void	 add_error(struct parse *, unsigned, const char *,
		     const char *, const char *, ...)
		     __attribute__((format(printf, 5, 6)));

static void
copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

static void
add_error(struct parse *p, unsigned line, const char *section,
    const char *key, const char *fmt, ...)
{
	struct config_error	*e;
	va_list			 ap;

	if (p->nerrs++ >= p->max_errs || p->errs == NULL)
		return;
	e = &p->errs[p->nerrs - 1];
	e->line = line;
	copy(e->section, sizeof e->section, section != NULL ? section : "");
	copy(e->key, sizeof e->key, key != NULL ? key : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* Keys whose values are secrets: never quoted, and the file must be 0600. */
static int
is_secret_key(const char *key)
{
	return strstr(key, "passw") != NULL || strstr(key, "secret") != NULL;
}

static int
parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *out)
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
static int
only_chars(const char *s, const char *punct)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) || (unsigned char)*s > 127)
			if (strchr(punct, *s) == NULL)
				return 0;
	return 1;
}

static int
valid_name(const char *s, size_t size)
{
	size_t	 n = strlen(s);

	return n > 0 && n < size && isalnum((unsigned char)*s) &&
	    only_chars(s, "._-");
}

static int
valid_path(const char *s, size_t size)
{
	const unsigned char *c;

	if (s[0] != '/' || strlen(s) >= size)
		return 0;
	for (c = (const unsigned char *)s; *c != '\0'; c++)
		if (*c < 0x20 || *c == 0x7f)
			return 0;
	return 1;
}

static int
valid_agent_option(const char *s)
{
	return strlen(s) < 64 && islower((unsigned char)*s) &&
	    only_chars(s, "_") && strpbrk(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
	    NULL;
}

/* fence_[a-z0-9_]+ or one of the built-in levels of DESIGN §4. */
static int
agent_kind(const char *s, enum config_fence_kind *kind)
{
	const char	*c;

	if (strcmp(s, "storage") == 0)
		*kind = CONFIG_FENCE_STORAGE;
	else if (strcmp(s, "pacemaker") == 0)
		*kind = CONFIG_FENCE_PACEMAKER;
	else if (strcmp(s, "watchdog") == 0)
		*kind = CONFIG_FENCE_WATCHDOG;
	else {
		if (strncmp(s, "fence_", 6) != 0 || s[6] == '\0' ||
		    strlen(s) >= 64)
			return -1;
		for (c = s + 6; *c != '\0'; c++)
			if (!(islower((unsigned char)*c) ||
			    isdigit((unsigned char)*c) || *c == '_'))
				return -1;
		*kind = CONFIG_FENCE_AGENT;
	}
	return 0;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	copy(c->cluster_name, sizeof c->cluster_name, "haven");
	copy(c->watchdog_device, sizeof c->watchdog_device, "/dev/watchdog");
	c->watchdog_timeout_s = 0;	/* auto: from token_ms, check_whole */
	c->token_ms = 3000;
	copy(c->state_dir, sizeof c->state_dir, "/var/lib/haven");
	copy(c->control_socket, sizeof c->control_socket,
	    "/run/haven/havend.sock");
	copy(c->audit_log, sizeof c->audit_log, "/var/log/haven/audit.log");
	copy(c->vm_accel, sizeof c->vm_accel, "auto");
	c->vm_uid_base = 61000;
	copy(c->vm_run_dir, sizeof c->vm_run_dir, "/run/haven/vm");
	copy(c->vm_log_dir, sizeof c->vm_log_dir, "/var/log/haven");
	c->vm_adopt_timeout_s = 60;
	c->vm_log_max_mb = 16;
}

void
config_wipe(struct config *c)
{
	explicit_bzero(c, sizeof *c);
}

const char *
config_fence_option(const struct config_fence *f, const char *key)
{
	size_t	 i;

	for (i = 0; i < f->noptions; i++)
		if (strcmp(f->options[i].key, key) == 0)
			return f->options[i].value;
	return NULL;
}

/*
 * Reads the first line of a password file into value. It must be a
 * regular file (stat before open: opening /dev/watchdog by mistake would
 * arm it), owned by root or by us, and unreadable by group and others.
 */
static void
read_password_file(struct parse *p, const char *path, char *value,
    size_t size)
{
	const char	*section = p->section_name;
	char		 buf[PASSWORD_FILE_MAX];
	struct stat	 st;
	ssize_t		 n;
	size_t		 len;
	int		 fd = -1;

	if (!valid_path(path, 4096)) {
		add_error(p, p->line, section, "password_file",
		    "must be an absolute path");
		return;
	}
	if (stat(path, &st) == -1) {
		add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		add_error(p, p->line, section, "password_file",
		    "%s is not a regular file", path);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		add_error(p, p->line, section, "password_file",
		    "%s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		add_error(p, p->line, section, "password_file",
		    "%s is readable or writable by group or others (mode %04o);"
		    " run chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		    path);
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		add_error(p, p->line, section, "password_file",
		    "%s belongs to uid %u; it must belong to root",
		    path, (unsigned)st.st_uid);
		goto out;
	}
	n = read(fd, buf, sizeof buf - 1);
	if (n == -1) {
		add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL)
		add_error(p, p->line, section, "password_file",
		    "%s holds no password on its first line", path);
	else if (len >= size)
		add_error(p, p->line, section, "password_file",
		    "the password in %s is longer than %zu characters", path,
		    size - 1);
	else
		memcpy(value, buf, len + 1);
out:
	explicit_bzero(buf, sizeof buf);
	if (fd != -1)
		close(fd);
}

static struct config_option *
fence_add_option(struct parse *p, const char *key)
{
	struct config_fence	*f = p->fence;
	struct config_option	*o;

	if (f->noptions == CONFIG_MAX_OPTIONS) {
		add_error(p, p->line, p->section_name, key,
		    "more than %d options in one fence section",
		    CONFIG_MAX_OPTIONS);
		return NULL;
	}
	p->fence_state->option_line[f->noptions] = p->line;
	o = &f->options[f->noptions++];
	copy(o->key, sizeof o->key, key);
	return o;
}

static void
fence_key(struct parse *p, const char *key, const char *value)
{
	struct config_fence	*f = p->fence;
	struct fence_state	*fs = p->fence_state;
	const char		*sn = p->section_name;
	struct config_option	*o;
	size_t			 i;

	if (strcmp(key, "agent") == 0) {
		if (fs->agent_line != 0)
			goto duplicate;
		fs->agent_line = p->line;
		if (agent_kind(value, &f->kind) == -1) {
			add_error(p, p->line, sn, key, "'%s' is not a fence "
			    "level: use storage, pacemaker, watchdog or a "
			    "fence agent named fence_[a-z0-9_]+", value);
			return;
		}
		copy(f->agent, sizeof f->agent, value);
		return;
	}
	if (strcmp(key, "level") == 0) {
		if (fs->level_line != 0)
			goto duplicate;
		fs->level_line = p->line;
		if (parse_unsigned(value, 1, 99, &f->level) == -1)
			add_error(p, p->line, sn, key, "'%s' is not an order "
			    "from 1 to 99", value);
		else
			fs->level_set = 1;
		return;
	}
	if (strcmp(key, "password_file") == 0 || strcmp(key, "password") == 0) {
		if ((key[8] == '_' ? fs->password_file_line :
		    fs->password_line) != 0)
			goto duplicate;
		if (fs->password_line != 0 || fs->password_file_line != 0) {
			add_error(p, p->line, sn, key, "give either password "
			    "or password_file, not both");
			return;
		}
		if (key[8] == '_')
			fs->password_file_line = p->line;
		else {
			fs->password_line = p->line;
			p->inline_secret = 1;
		}
		if ((o = fence_add_option(p, "password")) == NULL)
			return;
		if (key[8] == '_')
			read_password_file(p, value, o->value, sizeof o->value);
		else if (strlen(value) >= sizeof o->value)
			add_error(p, p->line, sn, key, "longer than %zu "
			    "characters", sizeof o->value - 1);
		else
			copy(o->value, sizeof o->value, value);
		return;
	}
	/* Anything else goes to the agent's stdin as key=value. */
	if (!valid_agent_option(key)) {
		add_error(p, p->line, sn, key, "not a fence agent option name"
		    " (lower case letters, digits and _, starting with a "
		    "letter)");
		return;
	}
	for (i = 0; i < f->noptions; i++)
		if (strcmp(f->options[i].key, key) == 0)
			goto duplicate;
	if (strlen(value) >= sizeof o->value) {
		add_error(p, p->line, sn, key, "longer than %zu characters",
		    sizeof o->value - 1);
		return;
	}
	if (is_secret_key(key))
		p->inline_secret = 1;
	if ((o = fence_add_option(p, key)) != NULL)
		copy(o->value, sizeof o->value, value);
	return;
duplicate:
	add_error(p, p->line, sn, key, "given twice in this section; keep "
	    "one");
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
		if (!valid_path(value, sizeof c->vm_worker))
			add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters",
			    sizeof c->vm_worker - 1);
		else
			copy(k == KEY_VM_WORKER ? c->vm_worker : c->vm_qemu,
			    sizeof c->vm_worker, value);
		break;
	case KEY_VM_ACCEL:
		if (strcmp(value, "auto") != 0 && strcmp(value, "kvm") != 0 &&
		    strcmp(value, "tcg") != 0)
			add_error(p, p->line, sn, key, "'%.32s' is not auto, "
			    "kvm or tcg", value);
		else
			copy(c->vm_accel, sizeof c->vm_accel, value);
		break;
	case KEY_VM_UID_BASE:
		if (parse_unsigned(value, 1000, 4000000000U,
		    &c->vm_uid_base) == -1)
			add_error(p, p->line, sn, key, "'%.32s' is not a uid "
			    "from 1000 up (VM n runs as uid_base + n)", value);
		break;
	case KEY_VM_RUN_DIR:
	case KEY_VM_LOG_DIR:
		/* run_dir/<uuid>/qmp.sock must fit a socket address. */
		if (!valid_path(value, k == KEY_VM_RUN_DIR ? 48 :
		    sizeof c->vm_log_dir))
			add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %d characters", k ==
			    KEY_VM_RUN_DIR ? 47 : (int)sizeof c->vm_log_dir - 1);
		else
			copy(k == KEY_VM_RUN_DIR ? c->vm_run_dir : c->vm_log_dir,
			    sizeof c->vm_log_dir, value);
		break;
	case KEY_VM_ADOPT_TIMEOUT:
		if (parse_unsigned(value, 0, 3600, &c->vm_adopt_timeout_s) ==
		    -1)
			add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of seconds from 0 to 3600", value);
		break;
	case KEY_VM_LOG_MAX:
		if (parse_unsigned(value, 1, 65536, &c->vm_log_max_mb) == -1)
			add_error(p, p->line, sn, key, "'%.32s' is not a size "
			    "in MiB from 1 to 65536", value);
		break;
	case KEY_VM_SHUTDOWN:
		if (strcmp(value, "leave") != 0 && strcmp(value, "migrate") != 0)
			add_error(p, p->line, sn, key, "'%.32s' is not leave "
			    "(the VMs keep running for the next havend) or "
			    "migrate (drain the host first)", value);
		else
			c->vm_shutdown_migrate = strcmp(value, "migrate") == 0;
		break;
	case KEY_VM_INITIATOR:
		if (strncmp(value, "iqn.", 4) != 0 || strlen(value) >=
		    sizeof c->vm_initiator || strpbrk(value, " \t/") != NULL)
			add_error(p, p->line, sn, key, "'%.64s' is not an "
			    "iSCSI initiator name (iqn.YYYY-MM.domain:name)",
			    value);
		else
			copy(c->vm_initiator, sizeof c->vm_initiator, value);
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
	size_t		 len, i;

	c->if_vm_line = p->line;
	while (*s != '\0') {
		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		len = strcspn(s, " \t");
		snprintf(name, sizeof name, "%.*s", (int)len, s);
		s += len;
		if (!net_ifname_valid(name)) {
			add_error(p, p->line, sn, "vm", "'%.32s' is not a "
			    "bridge name (1 to 15 characters, no '/', ':' or "
			    "spaces); see ip link", name);
			continue;
		}
		for (i = 0; i < c->nif_vm; i++)
			if (strcmp(c->if_vm[i], name) == 0)
				break;
		if (i < c->nif_vm) {
			add_error(p, p->line, sn, "vm", "%s is listed twice; "
			    "list each bridge once", name);
			continue;
		}
		if (c->nif_vm == CONFIG_MAX_VM_BRIDGES) {
			add_error(p, p->line, sn, "vm", "more than %d bridges",
			    CONFIG_MAX_VM_BRIDGES);
			return;
		}
		copy(c->if_vm[c->nif_vm++], sizeof c->if_vm[0], name);
	}
	qsort(c->if_vm, c->nif_vm, sizeof c->if_vm[0], by_name);
}

static void
fixed_key(struct parse *p, enum key k, const char *value)
{
	struct config	*c = p->config;
	const char	*sn = p->section_name, *key = keys[k].name;

	if (p->seen_line[k] != 0) {
		add_error(p, p->line, sn, key, "given twice (first at line "
		    "%u); keep one", p->seen_line[k]);
		return;
	}
	p->seen_line[k] = p->line;
	switch (k) {
	case KEY_NODE_NAME:
		if (!valid_name(value, sizeof c->node_name))
			add_error(p, p->line, sn, key, "'%.64s' is not a host "
			    "name: letters, digits, '.', '_' and '-', up to "
			    "63 characters", value);
		else
			copy(c->node_name, sizeof c->node_name, value);
		break;
	case KEY_CLUSTER_NAME:
		if (!valid_name(value, sizeof c->cluster_name))
			add_error(p, p->line, sn, key, "'%.64s' is not a "
			    "cluster name: letters, digits, '.', '_' and '-',"
			    " up to 63 characters", value);
		else
			copy(c->cluster_name, sizeof c->cluster_name, value);
		break;
	case KEY_IF_MANAGEMENT:
	case KEY_IF_STORAGE:
	case KEY_IF_MIGRATION:
		if (!net_ifname_valid(value)) {
			add_error(p, p->line, sn, key, "'%.64s' is not a "
			    "network interface name (1 to 15 characters, no "
			    "'/', ':' or spaces); see ip link", value);
			break;
		}
		copy(k == KEY_IF_MANAGEMENT ? c->if_management :
		    k == KEY_IF_STORAGE ? c->if_storage : c->if_migration,
		    sizeof c->if_storage, value);
		break;
	case KEY_IF_VM:
		vm_bridges_key(p, value);
		break;
	case KEY_WATCHDOG_DEVICE:
		if (strcmp(value, "none") == 0)
			c->watchdog_device[0] = '\0';
		else if (!valid_path(value, sizeof c->watchdog_device))
			add_error(p, p->line, sn, key, "must be an absolute "
			    "device path such as /dev/watchdog, or none");
		else
			copy(c->watchdog_device, sizeof c->watchdog_device,
			    value);
		break;
	case KEY_WATCHDOG_TIMEOUT:
		if (parse_unsigned(value, 2, 255, &c->watchdog_timeout_s) ==
		    -1)
			add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of seconds from 2 to 255 (havend pets "
			    "every second)", value);
		break;
	case KEY_TOKEN_MS:
		if (parse_unsigned(value, 100, 120000, &c->token_ms) == -1)
			add_error(p, p->line, sn, key, "'%.32s' is not a "
			    "number of milliseconds from 100 to 120000",
			    value);
		break;
	case KEY_STATE_DIR:
	case KEY_AUDIT_LOG:
		if (!valid_path(value, sizeof c->state_dir))
			add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters",
			    sizeof c->state_dir - 1);
		else
			copy(k == KEY_STATE_DIR ? c->state_dir : c->audit_log,
			    sizeof c->state_dir, value);
		break;
	case KEY_CONTROL_SOCKET:
		if (!valid_path(value, sizeof c->control_socket))
			add_error(p, p->line, sn, key, "must be an absolute "
			    "path of at most %zu characters (a UNIX socket "
			    "address)", sizeof c->control_socket - 1);
		else
			copy(c->control_socket, sizeof c->control_socket,
			    value);
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
		add_error(p, p->line, "", key, "comes before any section; put "
		    "it under [node], [interfaces], ...");
		return 1;
	}
	if (*key == '\0') {
		add_error(p, p->line, sn, "", "a line with no key before '='");
		return 1;
	}
	if (strlen(key) >= 64) {
		add_error(p, p->line, sn, "", "a key longer than 63 "
		    "characters");
		return 1;
	}
	if (*value == '\0') {
		add_error(p, p->line, sn, key, "has no value; give one or "
		    "remove the line to get the default");
		return 1;
	}
	if (p->section == SECTION_FENCE) {
		fence_key(p, key, value);
		return 1;
	}
	for (k = 0; k < KEY_COUNT; k++)
		if (keys[k].section == p->section &&
		    strcmp(keys[k].name, key) == 0) {
			fixed_key(p, (enum key)k, value);
			return 1;
		}
	add_error(p, p->line, sn, key, "unknown key in [%s]; see haven.conf(5)",
	    sn);
	return 1;
}

static void
start_section(struct parse *p, const char *name)
{
	struct config		*c = p->config;
	struct fence_state	*fs;
	struct config_fence	*f;
	size_t			 i;
	int			 s;

	copy(p->section_name, sizeof p->section_name, name);
	p->section = SECTION_SKIP;
	if (strlen(name) >= sizeof p->section_name) {
		add_error(p, p->line, "", "", "a section name longer than 63 "
		    "characters");
		return;
	}
	if (strncmp(name, "fence:", 6) == 0) {
		if (!valid_name(name + 6, sizeof f->name)) {
			add_error(p, p->line, name, "", "a fence section is "
			    "named [fence:NAME], NAME of letters, digits, "
			    "'.', '_' and '-'");
			return;
		}
		for (i = 0; i < c->nfences; i++)
			if (strcmp(c->fences[i].name, name + 6) == 0) {
				add_error(p, p->line, name, "", "appears twice "
				    "(first at line %u); merge them or rename "
				    "one", p->fence_states[i].line);
				return;
			}
		if (c->nfences == CONFIG_MAX_FENCES) {
			add_error(p, p->line, name, "", "more than %d fence "
			    "sections", CONFIG_MAX_FENCES);
			return;
		}
		p->fence = f = &c->fences[c->nfences];
		p->fence_state = fs = &p->fence_states[c->nfences++];
		copy(f->name, sizeof f->name, name + 6);
		fs->line = p->line;
		p->section = SECTION_FENCE;
		return;
	}
	for (s = SECTION_NODE; s < SECTION_FENCE; s++)
		if (strcmp(name, section_names[s]) == 0)
			break;
	if (s == SECTION_FENCE) {
		add_error(p, p->line, name, "", "unknown section; the sections "
		    "are node, interfaces, watchdog, cluster, control and "
		    "fence:NAME");
		return;
	}
	if (p->section_line[s] != 0) {
		add_error(p, p->line, name, "", "appears twice (first at line "
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
		add_error(p, p->line, "", "", "a section header without its "
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
		add_error(p, p->line, "", "", "an empty section name '[]'");
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
		add_error(p, p->line, p->section == SECTION_SKIP ? "" :
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
		add_error(p, p->line, "", "", "a NUL byte in the line");
		len = 0;
	} else if (size < 2 || len > (size_t)size - 2) {
		add_error(p, p->line, "", "", "a line longer than %d "
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

static int
fence_by_level(const void *a, const void *b)
{
	const struct config_fence *fa = a, *fb = b;

	return (fa->level > fb->level) - (fa->level < fb->level);
}

/* What needs the whole file: required keys, roles, fence levels. */
static void
check_whole(struct parse *p)
{
	struct config		*c = p->config;
	struct fence_state	*fs;
	struct config_fence	*f;
	unsigned		 previous_level = 0;
	size_t			 i, j;

	/*
	 * The watchdog must fire before a frozen host's VMs may start
	 * elsewhere (fence/timeline.h): no later than the survivors' earliest
	 * detection, twice the token, less half a second for the reset.
	 */
	if (c->watchdog_timeout_s == 0)
		c->watchdog_timeout_s = c->token_ms * 2 >= 3000 ?
		    (c->token_ms * 2 - 500) / 1000 : 2;
	if (p->seen_line[KEY_NODE_NAME] == 0)
		add_error(p, p->section_line[SECTION_NODE], "node", "name",
		    "is required: this host's name as the cluster knows it");
	if (p->seen_line[KEY_IF_MANAGEMENT] == 0)
		add_error(p, p->section_line[SECTION_INTERFACES], "interfaces",
		    "management", "is required: the NIC for corosync, "
		    "havenctl and fence traffic");
	if (p->seen_line[KEY_IF_STORAGE] == 0)
		add_error(p, p->section_line[SECTION_INTERFACES], "interfaces",
		    "storage", "is required: the NIC for iSCSI and nothing "
		    "else");
	if (c->if_management[0] != '\0' &&
	    strcmp(c->if_management, c->if_storage) == 0)
		add_error(p, p->seen_line[KEY_IF_STORAGE], "interfaces",
		    "storage", "is the management interface too; iSCSI needs "
		    "its own NIC (haven.conf(5), NETWORK ROLES)");
	if (c->if_storage[0] != '\0' &&
	    strcmp(c->if_migration, c->if_storage) == 0)
		add_error(p, p->seen_line[KEY_IF_MIGRATION], "interfaces",
		    "migration", "is the storage interface; migration streams "
		    "go over management or a NIC of their own");
	if (p->seen_line[KEY_IF_MIGRATION] == 0)
		copy(c->if_migration, sizeof c->if_migration,
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
		add_error(p, c->if_vm_line, "interfaces", "vm", "%s is the %s "
		    "interface; guests get bridges of their own (haven.conf(5), "
		    "NETWORK ROLES)", c->if_vm[i], role);
		memmove(c->if_vm[i], c->if_vm[i + 1], (c->nif_vm - i - 1) *
		    sizeof c->if_vm[0]);
		c->nif_vm--;
	}

	for (i = 0; i < c->nfences; i++) {
		f = &c->fences[i];
		fs = &p->fence_states[i];
		snprintf(p->section_name, sizeof p->section_name, "fence:%.57s",
		    f->name);
		/* Without level: one after the section before it. */
		if (fs->level_line == 0) {
			f->level = previous_level < 99 ? previous_level + 1 :
			    99;
			fs->level_set = 1;
		}
		if (fs->level_set)
			previous_level = f->level;
		if (fs->agent_line == 0) {
			add_error(p, fs->line, p->section_name, "agent",
			    "is required: storage, pacemaker, watchdog or a "
			    "fence agent such as fence_ipmilan");
			continue;
		}
		if (f->agent[0] == '\0')
			continue;	/* a bad agent, reported */
		if (f->kind != CONFIG_FENCE_AGENT && f->noptions > 0)
			add_error(p, fs->option_line[0], p->section_name,
			    f->options[0].key, "only fence_* agents take "
			    "options; agent %s takes none", f->agent);
		for (j = 0; j < i && fs->level_set; j++)
			if (c->fences[j].level == f->level &&
			    c->fences[j].agent[0] != '\0')
				add_error(p, fs->level_line != 0 ?
				    fs->level_line : fs->line,
				    p->section_name, "level", "%u is also the "
				    "level of [fence:%s]; give each its own",
				    f->level, c->fences[j].name);
	}
	if (c->nfences == 0) {
		/* PR preemption works wherever the volumes live. */
		f = &c->fences[c->nfences++];
		copy(f->name, sizeof f->name, "storage");
		copy(f->agent, sizeof f->agent, "storage");
		f->kind = CONFIG_FENCE_STORAGE;
		f->level = 1;
	}
	qsort(c->fences, c->nfences, sizeof c->fences[0], fence_by_level);
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
		add_error(&p, 0, "", "", "cannot open: %s%s", strerror(errno),
		    errno == ENOENT ? "; create it (see haven.conf(5))" : "");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		add_error(&p, 0, "", "", "not a regular file");
		goto out;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		add_error(&p, 0, "", "", "larger than %d bytes",
		    CONFIG_FILE_MAX);
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		add_error(&p, 0, "", "", "out of memory");
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, text + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			add_error(&p, 0, "", "", "cannot read: %s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = parse(&p, text, len, c, errs, max_errs, NULL);
	if (p.inline_secret && (st.st_mode & 077) != 0) {
		add_error(&p, 0, "", "", "holds a password but is readable or "
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
