/*
 * config/: what config.c and config_fence.c share while one haven.conf is
 * parsed. Private to config/ (config.h is the folder's interface): the
 * parse state is one struct both files fill, and nothing outside needs it.
 */
#ifndef HAVEN_CONFIG_PARSE_H
#define HAVEN_CONFIG_PARSE_H

#include "config.h"

enum section {
	SECTION_NONE,		/* before the first header */
	SECTION_SKIP,		/* a bad or unknown header, already reported */
	SECTION_NODE,
	SECTION_INTERFACES,
	SECTION_WATCHDOG,
	SECTION_CLUSTER,
	SECTION_CONTROL,
	SECTION_VM,
	SECTION_STORAGE,
	SECTION_ALERT,
	SECTION_METRICS,
	SECTION_FENCE,
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
	KEY_STORAGE_CHAP_FILE,
	KEY_STORAGE_KEY_FILE,
	KEY_ALERT_PROGRAM,
	KEY_ALERT_EVENTS,
	KEY_ALERT_TIMEOUT,
	KEY_METRICS_LISTEN,
	KEY_METRICS_STATUS_AUTH,
	KEY_COUNT,
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

/* config.c */
void		 config_add_error(struct parse *, unsigned, const char *,
		     const char *, const char *, ...)
		     __attribute__((format(printf, 5, 6)));
void		 config_copy(char *, size_t, const char *);
int		 config_parse_unsigned(const char *, unsigned, unsigned,
		     unsigned *);
int		 config_valid_name(const char *, size_t);
int		 config_valid_path(const char *, size_t);
int		 config_only_chars(const char *, const char *punct);

/* config_fence.c: the [fence:NAME] sections. */
void		 config_fence_section(struct parse *, const char *name);
void		 config_fence_key(struct parse *, const char *key,
		     const char *value);
/* Levels, required keys and the default storage level; sorts by level. */
void		 config_fence_check(struct parse *);

#endif
