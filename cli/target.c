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
#include "storage.h"

int
target_is_iscsi(const char *spec)
{
	return strncmp(spec, "iscsi://", 8) == 0;
}

/* This host's initiator name: $HAVEN_INITIATOR, else one made from the
 * host name (each host must log in under its own name). */
static const char *
target_initiator(void)
{
	static char	iqn[300];
	char		host[256];
	const char	*env = getenv("HAVEN_INITIATOR");

	if (env != NULL && *env != '\0')
		return env;
	if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	snprintf(iqn, sizeof iqn, "iqn.2026-11.org.haven:%s", host);
	return iqn;
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
	*key = pr_key(cluster, (uint32_t)node);
	return 0;
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
