/*
 * Pure helpers for havenctl's command lines and output: sizes, VM names,
 * priorities, isolation responses and the names of cluster enums. No I/O,
 * so tests/unit/cli_parse_test.c links this file alone.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

/* "64M", "1G", "4096", "1.5G" is refused: sizes are whole units. */
int
cli_parse_size(const char *s, uint64_t *out)
{
	char		*end;
	uint64_t	 v, mult = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1ULL << 10;
		break;
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'G':
		mult = 1ULL << 30;
		break;
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return -1;
	}
	if (*end != '\0') {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end != '\0')
			return -1;
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* A VM's memory: a size of at least CLI_VM_MIN_MEMORY_MIB whole MiB. */
int
cli_parse_memory_mib(const char *s, uint64_t *mib)
{
	uint64_t	bytes;

	if (cli_parse_size(s, &bytes) == -1 || bytes % (1ULL << 20) != 0 ||
	    bytes < (uint64_t)CLI_VM_MIN_MEMORY_MIB << 20)
		return -1;
	*mib = bytes >> 20;
	return 0;
}

/* [a-zA-Z0-9][a-zA-Z0-9._-]{0,62}, as havend checks it. */
int
cli_vm_name_valid(const char *name)
{
	size_t	i;

	if (!isalnum((unsigned char)name[0]))
		return 0;
	for (i = 1; name[i] != '\0'; i++) {
		if (i >= CLI_VM_NAME_MAX)
			return 0;
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return 0;
	}
	return 1;
}

/* A decimal number in [min, max], nothing else. */
int
cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char		*end;
	uint64_t	 v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const struct {
	const char	*name;
	uint32_t	 value;
} priorities[] = {
	{ "high", CLI_PRIORITY_HIGH },
	{ "medium", CLI_PRIORITY_MEDIUM },
	{ "low", CLI_PRIORITY_LOW },
};

int
cli_parse_priority(const char *s, uint32_t *out)
{
	size_t	i;

	for (i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
		if (strcasecmp(s, priorities[i].name) == 0) {
			*out = priorities[i].value;
			return 0;
		}
	}
	return -1;
}

/* "high", "medium", "low", or the number for any other value. */
const char *
cli_priority_name(uint32_t priority, char *buf, size_t size)
{
	size_t	i;

	for (i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
		if (priorities[i].value == priority)
			return priorities[i].name;
	}
	snprintf(buf, size, "%" PRIu32, priority);
	return buf;
}

int
cli_parse_isolation(const char *s, int *out)
{
	if (strcasecmp(s, "stop") == 0)
		*out = HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP;
	else if (strcasecmp(s, "save") == 0)
		*out = HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE;
	else if (strcasecmp(s, "leave-running") == 0 ||
	    strcasecmp(s, "none") == 0)
		*out =
		    HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING;
	else
		return -1;
	return 0;
}

const char *
cli_isolation_name(int v)
{
	switch (v) {
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_UNSPECIFIED:
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_STOP:
		return "stop";
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_LEAVE_RUNNING:
		return "leave-running";
	case HAVEN__ISOLATION_RESPONSE__ISOLATION_RESPONSE_SAVE:
		return "save";
	default:
		return "unknown";
	}
}

const char *
cli_desired_name(int v)
{
	switch (v) {
	case HAVEN__DESIRED_STATE__DESIRED_STATE_UNSPECIFIED:
	case HAVEN__DESIRED_STATE__DESIRED_STATE_STOPPED:
		return "stopped";
	case HAVEN__DESIRED_STATE__DESIRED_STATE_RUNNING:
		return "running";
	default:
		return "unknown";
	}
}

const char *
cli_phase_name(int v)
{
	static const char	*names[] = {
		[HAVEN__VM_PHASE__VM_PHASE_UNSPECIFIED] = "stopped",
		[HAVEN__VM_PHASE__VM_PHASE_STOPPED] = "stopped",
		[HAVEN__VM_PHASE__VM_PHASE_STARTING] = "starting",
		[HAVEN__VM_PHASE__VM_PHASE_RUNNING] = "running",
		[HAVEN__VM_PHASE__VM_PHASE_STOPPING] = "stopping",
		[HAVEN__VM_PHASE__VM_PHASE_SAVING] = "saving",
		[HAVEN__VM_PHASE__VM_PHASE_SAVED] = "saved",
		[HAVEN__VM_PHASE__VM_PHASE_RESTORING] = "restoring",
		[HAVEN__VM_PHASE__VM_PHASE_MIGRATING] = "migrating",
		[HAVEN__VM_PHASE__VM_PHASE_RECOVERING] = "recovering",
		[HAVEN__VM_PHASE__VM_PHASE_FAILED] = "failed",
		[HAVEN__VM_PHASE__VM_PHASE_PAUSED] = "paused",
	};

	if (v < 0 || (size_t)v >= sizeof names / sizeof names[0] ||
	    names[v] == NULL)
		return "unknown";
	return names[v];
}

const char *
cli_membership_name(int v)
{
	switch (v) {
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_UNSPECIFIED:
		return "never-seen";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_MEMBER:
		return "member";
	case HAVEN__HOST_MEMBERSHIP__HOST_MEMBERSHIP_LOST:
		return "lost";
	default:
		return "unknown";
	}
}

const char *
cli_fence_name(int v)
{
	switch (v) {
	case HAVEN__FENCE_STATUS__FENCE_STATUS_NONE:
		return "none";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_PENDING:
		return "pending";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FENCED:
		return "fenced";
	case HAVEN__FENCE_STATUS__FENCE_STATUS_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

/* "512 MiB", "4 GiB", "1536 MiB": whole units, as typed on the command line. */
void
cli_format_mib(uint64_t mib, char *buf, size_t size)
{
	if (mib != 0 && mib % (1024ULL * 1024) == 0)
		snprintf(buf, size, "%" PRIu64 " TiB", (uint64_t)(mib / (1024ULL * 1024)));
	else if (mib != 0 && mib % 1024 == 0)
		snprintf(buf, size, "%" PRIu64 " GiB", mib / 1024);
	else
		snprintf(buf, size, "%" PRIu64 " MiB", mib);
}
