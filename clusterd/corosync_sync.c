/*
 * The corosync.conf of the replicated state (ClusterSettings.corosync_conf,
 * set by `havenctl cluster join` and `node remove`) onto this host: written
 * to /etc/corosync/corosync.conf where it differs, then corosync told to
 * reload it (corosync 3 adds and drops nodes on a reload on every member);
 * after a change that sets it, and after each sync, for a member that was
 * down when it changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "havend.h"

#define COROSYNC_SYNC_PATH	"/etc/corosync/corosync.conf"

/* The file as it is now (NUL-terminated, caller frees), NULL if unreadable. */
static char *
corosync_sync_read(const char *path)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	buf = xmalloc(65537);
	n = fread(buf, 1, 65536, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
corosync_sync_write(const char *path, const char *text)
{
	char	 tmp[256];
	size_t	 len = strlen(text);
	int	 fd, rc = -1;

	snprintf(tmp, sizeof tmp, "%s.haven-new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		return -1;
	if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -1;
	if (rc == -1)
		unlink(tmp);
	return rc;
}

/* corosync-cfgtool -R, in a grandchild: the loop does not wait for it. */
static void
corosync_sync_reload(void)
{
	pid_t	 pid;
	int	 fd, status;

	if ((pid = fork()) == -1) {
		log_warn("corosync.conf: cannot fork to reload corosync: %s",
		    strerror(errno));
		return;
	}
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("corosync-cfgtool", "corosync-cfgtool", "-R",
		    (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

void
corosync_sync_state(const Haven__ClusterState *cs)
{
	const char	*want;
	char		*have;

	if (cs->settings == NULL)
		return;
	want = cs->settings->corosync_conf;
	if (want == NULL || *want == '\0')
		return;
	have = corosync_sync_read(COROSYNC_SYNC_PATH);
	if (have != NULL && strcmp(have, want) == 0) {
		free(have);
		return;
	}
	free(have);
	if (corosync_sync_write(COROSYNC_SYNC_PATH, want) == -1) {
		log_warn("corosync.conf: cannot write the cluster's to %s: %s",
		    COROSYNC_SYNC_PATH, strerror(errno));
		return;
	}
	log_info("corosync.conf: the cluster's nodelist changed; written to "
	    "%s, corosync reloads it", COROSYNC_SYNC_PATH);
	corosync_sync_reload();
}

void
corosync_sync_applied(const Haven__ClusterState *cs, const Haven__Change *c)
{
	size_t	 i;

	if (c->kind_case != HAVEN__CHANGE__KIND_SETTINGS_SET)
		return;
	for (i = 0; i < c->settings_set->n_fields; i++)
		if (strcmp(c->settings_set->fields[i], "corosync_conf") == 0)
			corosync_sync_state(cs);
}
