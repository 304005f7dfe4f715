/*
 * haven.conf's [fence:NAME] sections (DESIGN §4): a fence level each, its
 * agent and the options for the agent's stdin, its password read from a
 * root-only password_file. Split from config.c, which parses the rest and
 * calls in here for these sections and their whole-file checks.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"

#define PASSWORD_FILE_MAX	4096

/* Keys whose values are secrets: never quoted, and the file must be 0600. */
static int
is_secret_key(const char *key)
{
	return strstr(key, "passw") != NULL || strstr(key, "secret") != NULL;
}

/* A tab, an escape or a DEL would reach the agent's stdin and the log. */
static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int
valid_agent_option(const char *s)
{
	return strlen(s) < 64 && islower((unsigned char)*s) &&
	    config_only_chars(s, "_") && strpbrk(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
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

	if (!config_valid_path(path, 4096)) {
		config_add_error(p, p->line, section, "password_file",
		    "must be an absolute path");
		return;
	}
	if (stat(path, &st) == -1) {
		config_add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		config_add_error(p, p->line, section, "password_file",
		    "%s is not a regular file", path);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		config_add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		config_add_error(p, p->line, section, "password_file",
		    "%s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		config_add_error(p, p->line, section, "password_file",
		    "%s is readable or writable by group or others (mode %04o);"
		    " run chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		    path);
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		config_add_error(p, p->line, section, "password_file",
		    "%s belongs to uid %u; it must belong to root",
		    path, (unsigned)st.st_uid);
		goto out;
	}
	n = read(fd, buf, sizeof buf - 1);
	if (n == -1) {
		config_add_error(p, p->line, section, "password_file",
		    "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL)
		config_add_error(p, p->line, section, "password_file",
		    "%s holds no password on its first line", path);
	else if (len >= size)
		config_add_error(p, p->line, section, "password_file",
		    "the password in %s is longer than %zu characters", path,
		    size - 1);
	else if (has_control(buf))
		config_add_error(p, p->line, section, "password_file",
		    "the password in %s holds a control character", path);
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
		config_add_error(p, p->line, p->section_name, key,
		    "more than %d options in one fence section",
		    CONFIG_MAX_OPTIONS);
		return NULL;
	}
	p->fence_state->option_line[f->noptions] = p->line;
	o = &f->options[f->noptions++];
	config_copy(o->key, sizeof o->key, key);
	return o;
}

void
config_fence_key(struct parse *p, const char *key, const char *value)
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
			config_add_error(p, p->line, sn, key, "'%s' is not a fence "
			    "level: use storage, pacemaker, watchdog or a "
			    "fence agent named fence_[a-z0-9_]+", value);
			return;
		}
		config_copy(f->agent, sizeof f->agent, value);
		return;
	}
	if (strcmp(key, "level") == 0) {
		if (fs->level_line != 0)
			goto duplicate;
		fs->level_line = p->line;
		if (config_parse_unsigned(value, 1, 99, &f->level) == -1)
			config_add_error(p, p->line, sn, key, "'%s' is not an order "
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
			config_add_error(p, p->line, sn, key, "give either password "
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
			config_add_error(p, p->line, sn, key, "longer than %zu "
			    "characters", sizeof o->value - 1);
		else if (has_control(value))
			config_add_error(p, p->line, sn, key, "holds a control "
			    "character");
		else
			config_copy(o->value, sizeof o->value, value);
		return;
	}
	/* Anything else goes to the agent's stdin as key=value. */
	if (!valid_agent_option(key)) {
		config_add_error(p, p->line, sn, key, "not a fence agent option name"
		    " (lower case letters, digits and _, starting with a "
		    "letter)");
		return;
	}
	for (i = 0; i < f->noptions; i++)
		if (strcmp(f->options[i].key, key) == 0)
			goto duplicate;
	if (strlen(value) >= sizeof o->value) {
		config_add_error(p, p->line, sn, key, "longer than %zu characters",
		    sizeof o->value - 1);
		return;
	}
	if (has_control(value)) {
		config_add_error(p, p->line, sn, key, "holds a control character;"
		    " the agent reads its options one per line from its stdin");
		return;
	}
	if (is_secret_key(key))
		p->inline_secret = 1;
	if ((o = fence_add_option(p, key)) != NULL)
		config_copy(o->value, sizeof o->value, value);
	return;
duplicate:
	config_add_error(p, p->line, sn, key, "given twice in this section; keep "
	    "one");
}

static int
fence_by_level(const void *a, const void *b)
{
	const struct config_fence *fa = a, *fb = b;

	return (fa->level > fb->level) - (fa->level < fb->level);
}

void
config_fence_section(struct parse *p, const char *name)
{
	struct config		*c = p->config;
	struct fence_state	*fs;
	struct config_fence	*f;
	size_t			 i;

	if (!config_valid_name(name + 6, sizeof f->name)) {
		config_add_error(p, p->line, name, "", "a fence section is "
		    "named [fence:NAME], NAME of letters, digits, "
		    "'.', '_' and '-'");
		return;
	}
	for (i = 0; i < c->nfences; i++)
		if (strcmp(c->fences[i].name, name + 6) == 0) {
			config_add_error(p, p->line, name, "", "appears twice "
			    "(first at line %u); merge them or rename "
			    "one", p->fence_states[i].line);
			return;
		}
	if (c->nfences == CONFIG_MAX_FENCES) {
		config_add_error(p, p->line, name, "", "more than %d fence "
		    "sections", CONFIG_MAX_FENCES);
		return;
	}
	p->fence = f = &c->fences[c->nfences];
	p->fence_state = fs = &p->fence_states[c->nfences++];
	config_copy(f->name, sizeof f->name, name + 6);
	fs->line = p->line;
	p->section = SECTION_FENCE;
	return;
}

void
config_fence_check(struct parse *p)
{
	struct config		*c = p->config;
	struct fence_state	*fs;
	struct config_fence	*f;
	unsigned		 previous_level = 0;
	size_t			 i, j;

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
			config_add_error(p, fs->line, p->section_name, "agent",
			    "is required: storage, pacemaker, watchdog or a "
			    "fence agent such as fence_ipmilan");
			continue;
		}
		if (f->agent[0] == '\0')
			continue;	/* a bad agent, reported */
		if (f->kind != CONFIG_FENCE_AGENT && f->noptions > 0)
			config_add_error(p, fs->option_line[0], p->section_name,
			    f->options[0].key, "only fence_* agents take "
			    "options; agent %s takes none", f->agent);
		for (j = 0; j < i && fs->level_set; j++)
			if (c->fences[j].level == f->level &&
			    c->fences[j].agent[0] != '\0')
				config_add_error(p, fs->level_line != 0 ?
				    fs->level_line : fs->line,
				    p->section_name, "level", "%u is also the "
				    "level of [fence:%s]; give each its own",
				    f->level, c->fences[j].name);
	}
	if (c->nfences == 0) {
		/* PR preemption works wherever the volumes live. */
		f = &c->fences[c->nfences++];
		config_copy(f->name, sizeof f->name, "storage");
		config_copy(f->agent, sizeof f->agent, "storage");
		f->kind = CONFIG_FENCE_STORAGE;
		f->level = 1;
	}
	qsort(c->fences, c->nfences, sizeof c->fences[0], fence_by_level);
}
