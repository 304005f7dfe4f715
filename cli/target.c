/*
 * What a disk or pr command works on: an iscsi://portal/iqn/lun URL or a
 * local file, opened as a block device, and, where it is one, the Haven
 * volume on it with its disk extent.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "config.h"
#include "storage.h"

int
target_is_iscsi(const char *spec)
{
	return strncmp(spec, "iscsi://", 8) == 0;
}

/*
 * What this host logs in with, read once: its one initiator name
 * ($HAVEN_INITIATOR, else haven.conf's as havend derives it, else one made
 * from the host name), the chap file's accounts and the reservation key
 * secret (haven.conf [storage]). Both files are root's: for any other uid
 * they stay unread, the reason kept for the message when the target then
 * refuses the login or a key cannot be derived.
 */
static struct {
	int	 done;
	char	 initiator[300];
	char	 chap_error[320];
	char	 key_error[320];
	char	 cluster[64];	/* haven.conf's cluster name, for its keys */
} target_host;

static void
target_host_init(void)
{
	struct config	*c;
	struct chap	*chap;
	const char	*env = getenv("HAVEN_INITIATOR");
	char		 host[256];
	int		 parsed;

	if (target_host.done)
		return;
	target_host.done = 1;
	if ((c = malloc(sizeof *c)) == NULL)
		abort();
	/* Unreadable or broken: the defaults (a chap file at its default
	 * path still counts). */
	parsed = config_parse_file(CONFIG_PATH, c, NULL, 0, NULL) == 0;
	if (!parsed)
		config_defaults(c);
	snprintf(target_host.cluster, sizeof target_host.cluster, "%s",
	    c->cluster_name);
	if (env != NULL && *env != '\0')
		snprintf(target_host.initiator, sizeof target_host.initiator,
		    "%s", env);
	else if (parsed)
		config_initiator(c, target_host.initiator,
		    sizeof target_host.initiator);
	else {
		if (gethostname(host, sizeof host) == -1)
			snprintf(host, sizeof host, "unknown");
		host[sizeof host - 1] = '\0';
		snprintf(target_host.initiator, sizeof target_host.initiator,
		    "iqn.2026-11.io.haven:%s", host);
	}
	if (c->storage_chap_line != 0 || access(c->storage_chap_file, F_OK) ==
	    0) {
		if (chap_load(c->storage_chap_file, &chap,
		    target_host.chap_error, sizeof target_host.chap_error) == 0)
			chap_install(chap);
	} else
		snprintf(target_host.chap_error, sizeof target_host.chap_error,
		    "%s: no such file", c->storage_chap_file);
	if (c->storage_key_line != 0 || access(c->storage_key_file, F_OK) ==
	    0)
		(void)pr_key_load(c->storage_key_file, target_host.key_error,
		    sizeof target_host.key_error);
	config_wipe(c);
	free(c);
}

static const char *
target_initiator(void)
{
	target_host_init();
	return target_host.initiator;
}

/* Returns 0, or a CLI exit code after printing what went wrong. */
int
target_open(struct cli *cli, const char *spec, int flags, struct target *t)
{
	struct iscsi_options	opts = { .initiator = target_initiator() };
	int			error = 0;

	memset(t, 0, sizeof *t);
	snprintf(t->spec, sizeof t->spec, "%s", spec);
	if ((t->base = event_base_new()) == NULL) {
		cli_error(cli, "cannot create the event loop");
		return CLI_EXIT_FAILURE;
	}
	if (target_is_iscsi(spec)) {
		error = iscsi_open_sync(t->base, spec, &opts, &t->dev);
		if (error == STORAGE_E_AUTH && *target_host.chap_error != '\0') {
			cli_error(cli, "%s: the target refused the login (CHAP): "
			    "run as root with the chap file readable (%s)",
			    spec, target_host.chap_error);
			goto fail;
		}
		if (error == STORAGE_E_DENIED) {
			cli_error(cli, "%s: the target does not admit initiator "
			    "%s (no such target, or its ACL does not list this "
			    "host's one name)", spec, opts.initiator);
			goto fail;
		}
		if (error != 0) {
			cli_error(cli, "%s: %s", spec, storage_strerror(error));
			goto fail;
		}
	} else if ((t->dev = file_open(t->base, spec,
	    flags & TARGET_WRITABLE, &error)) == NULL) {
		cli_error(cli, "%s: %s", spec, storage_strerror(error));
		goto fail;
	}
	/*
	 * A reserved LUN refuses writes from an unregistered nexus, and each
	 * havenctl run is a new nexus: with --key, register and claim first.
	 */
	if (target_is_iscsi(spec) && (flags & TARGET_WRITABLE) &&
	    cli->key != 0 && (error = pr_claim_sync(t->dev, cli->key)) != 0) {
		cli_error(cli, "%s: claiming the reservation: %s", spec,
		    storage_strerror(error));
		goto fail;
	}
	error = volume_open_sync(t->dev, &t->volume);
	if (error == 0) {
		t->disk = volume_extent(t->volume, VOLUME_EXTENT_DISK);
		return 0;
	}
	if (error != STORAGE_E_NOT_VOLUME || (flags & TARGET_VOLUME)) {
		cli_error(cli, "%s: %s", spec, storage_strerror(error));
		goto fail;
	}
	return 0;
fail:
	target_close(t);
	return CLI_EXIT_FAILURE;
}

void
target_close(struct target *t)
{
	if (t->volume != NULL)
		volume_close(t->volume);
	if (t->dev != NULL)
		blockdev_close(t->dev);
	if (t->base != NULL)
		event_base_free(t->base);
	memset(t, 0, sizeof *t);
}

/* A reservation key: 0x-prefixed hex (8 bytes), or CLUSTER:NODE_ID, which
 * gives the key havend uses for that node (DESIGN §4). */
int
target_parse_key(const char *s, uint64_t *key)
{
	const char	*colon = strrchr(s, ':');
	char		 cluster[64], *end;
	unsigned long	 node;

	errno = EINVAL;
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0) {
		errno = 0;
		*key = strtoull(s + 2, &end, 16);
		return (errno != 0 || *end != '\0' || end == s + 2 ||
		    strlen(s + 2) > 16) ? -1 : 0;
	}
	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof cluster)
		return -1;
	errno = 0;
	node = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || node == 0 ||
	    node > UINT32_MAX)
		return -1;
	memcpy(cluster, s, (size_t)(colon - s));
	cluster[colon - s] = '\0';
	/* Derived from the cluster's secret, which only root may read. */
	target_host_init();
	if (*target_host.key_error != '\0') {
		errno = EACCES;
		return -1;
	}
	*key = pr_key(cluster, (uint32_t)node);
	return 0;
}

const char *
target_cluster_name(void)
{
	target_host_init();
	return target_host.cluster;
}

const char *
target_key_error(void)
{
	target_host_init();
	return target_host.key_error;
}

/* Open a target that must be an iSCSI LUN (reservations live there). */
int
target_open_lun(struct cli *cli, const char *spec, struct target *t)
{
	int	rc;

	if (!target_is_iscsi(spec)) {
		cli_error(cli, "%s: persistent reservations need an iSCSI LUN "
		    "(iscsi://portal/iqn/lun), not a file", spec);
		return CLI_EXIT_USAGE;
	}
	if ((rc = target_open(cli, spec, TARGET_WRITABLE, t)) != 0)
		return rc;
	return 0;
}

int
target_key_arg(struct cli *cli, const struct cmd_entry *cmd,
    struct args *args, const char *option, uint64_t *key)
{
	const char	*arg = args_get(args, option);

	if (arg != NULL && target_parse_key(arg, key) == -1 && errno ==
	    EACCES) {
		cli_error(cli, "cannot derive the key %s: %s (keys derive from "
		    "the cluster's secret; run as root)", arg,
		    target_key_error());
		return -1;
	}
	if (arg != NULL && (target_parse_key(arg, key) == -1 || *key == 0)) {
		cli_usage_error(cli, cmd, "bad key '%s' (0xHEX or "
		    "CLUSTER:NODE_ID)", arg);
		return -1;
	}
	return 0;
}

int
target_type_arg(struct cli *cli, const struct cmd_entry *cmd,
    struct args *args, int *type)
{
	const char	*arg = args_get(args, "type");

	if (arg == NULL)
		return 0;
	if (strcmp(arg, "fixed") == 0)
		*type = VHD_TYPE_FIXED;
	else if (strcmp(arg, "dynamic") == 0)
		*type = VHD_TYPE_DYNAMIC;
	else {
		cli_usage_error(cli, cmd, "--type is fixed or dynamic");
		return -1;
	}
	return 0;
}
