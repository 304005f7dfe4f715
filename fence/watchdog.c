/*
 * The host's watchdog (DESIGN §4): havend opens it once, pets it only while
 * it is healthy, and a hung havend therefore resets the host. Linux watchdog
 * API; in the lab a FIFO read by tests/lab/watchdog-standin plays the device.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/watchdog.h>

#include "common.h"
#include "fence.h"
#include "timeline.h"

/* WDIOC_SETTIMEOUT takes an int; no driver goes near this. */
#define WATCHDOG_TIMEOUT_MAX_S	65535

struct watchdog {
	int		 fd;
	unsigned	 timeout_s;
	int		 ioctl_pet;	/* WDIOC_KEEPALIVE works; else write */
	char		 path[128];
};

static void
watchdog_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
watchdog_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Only a character device or a FIFO is ever opened: a pet is a write, and
 * a write of pets into a regular file (a typo in haven.conf) would damage
 * it. The type is checked before open, since opening a real watchdog arms
 * it, and again on the open fd.
 */
static int
watchdog_type_ok(const char *path, mode_t mode, char *err, size_t errlen)
{
	if (S_ISCHR(mode) || S_ISFIFO(mode))
		return 1;
	watchdog_error(err, errlen, "watchdog %s is not a character device "
	    "(a watchdog such as /dev/watchdog0) or a FIFO (the lab's "
	    "stand-in); set [watchdog] device to the right path, or none",
	    path);
	errno = EINVAL;
	return 0;
}

/*
 * Asks the driver for timeout_s and learns what it granted. Returns 1 when
 * the fd is a watchdog, 0 when it does not answer the watchdog ioctls
 * (ENOTTY: a FIFO, or a device that is no watchdog), -1 on an error.
 */
static int
watchdog_set_timeout(struct watchdog *wd, unsigned timeout_s, char *err,
    size_t errlen)
{
	int	 t = (int)timeout_s, set_errno = 0;

	if (ioctl(wd->fd, WDIOC_SETTIMEOUT, &t) == -1) {
		if (errno == ENOTTY)
			return 0;
		/* EINVAL: out of the driver's range; EOPNOTSUPP: fixed. */
		set_errno = errno;
	}
	if (ioctl(wd->fd, WDIOC_GETTIMEOUT, &t) == -1 || t <= 0) {
		if (set_errno == 0 && errno == ENOTTY)
			return 0;
		if (set_errno == 0)
			set_errno = t <= 0 ? EINVAL : errno;
		watchdog_error(err, errlen, "watchdog %s: cannot learn its "
		    "timeout: %s", wd->path, strerror(set_errno));
		errno = set_errno;
		return -1;
	}
	/*
	 * Longer than asked is unsafe: the watchdog fence level on the other
	 * hosts waits our configured timeout plus FENCE_WATCHDOG_MARGIN_MS,
	 * and would declare us reset while we still run.
	 */
	if ((unsigned)t > timeout_s) {
		watchdog_error(err, errlen, "watchdog %s cannot do %u s (%s); "
		    "it runs with %d s, longer than asked, which the watchdog "
		    "fence level cannot trust: set [watchdog] timeout = %d",
		    wd->path, timeout_s, set_errno != 0 ? strerror(set_errno) :
		    "driver rounded it up", t, t);
		errno = EINVAL;
		return -1;
	}
	if ((unsigned)t < timeout_s)
		log_warn("watchdog %s: asked for %u s, the driver granted %d s",
		    wd->path, timeout_s, t);
	wd->timeout_s = (unsigned)t;
	return 1;
}

struct watchdog *
watchdog_open(const char *path, unsigned timeout_s, char *err, size_t errlen)
{
	struct watchdog	*wd = NULL;
	struct stat	 st;
	int		 save_errno, r, disarm = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (strlen(path) >= sizeof wd->path) {
		watchdog_error(err, errlen, "watchdog path too long: %.40s...",
		    path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (timeout_s > WATCHDOG_TIMEOUT_MAX_S) {
		watchdog_error(err, errlen, "watchdog timeout %u s is out of "
		    "range (at most %d)", timeout_s, WATCHDOG_TIMEOUT_MAX_S);
		errno = EINVAL;
		return NULL;
	}
	/* A timeout havend's own pets cannot keep would reset a healthy host;
	 * four pets per period ride out a late one. */
	if ((unsigned long long)timeout_s * 1000 < 4 * FENCE_WATCHDOG_PET_MS) {
		watchdog_error(err, errlen, "watchdog timeout %u s is too short: "
		    "havend pets every %d ms; set [watchdog] timeout_s to at "
		    "least %d", timeout_s, FENCE_WATCHDOG_PET_MS,
		    (4 * FENCE_WATCHDOG_PET_MS + 999) / 1000);
		errno = EINVAL;
		return NULL;
	}
	if (stat(path, &st) == -1) {
		save_errno = errno;
		if (errno == ENOENT)
			watchdog_error(err, errlen, "no watchdog at %s: load a "
			    "watchdog driver (e.g. modprobe softdog) or set "
			    "[watchdog] device = none (then the watchdog fence "
			    "level cannot be used against this host)", path);
		else
			watchdog_error(err, errlen, "watchdog %s: %s", path,
			    strerror(errno));
		errno = save_errno;
		return NULL;
	}
	if (!watchdog_type_ok(path, st.st_mode, err, errlen))
		return NULL;

	if ((wd = calloc(1, sizeof *wd)) == NULL) {
		watchdog_error(err, errlen, "watchdog %s: out of memory", path);
		return NULL;
	}
	snprintf(wd->path, sizeof wd->path, "%s", path);
	wd->timeout_s = timeout_s;
	/*
	 * O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of
	 * blocking havend, and a pet never blocks the event loop. A real
	 * watchdog ignores the flag.
	 */
	wd->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (wd->fd == -1) {
		save_errno = errno;
		if (errno == ENXIO && S_ISFIFO(st.st_mode))
			watchdog_error(err, errlen, "watchdog FIFO %s has no "
			    "reader: start the stand-in first "
			    "(tests/lab/watchdog-standin)", path);
		else if (errno == EBUSY)
			watchdog_error(err, errlen, "watchdog %s is busy: another "
			    "process holds it open (a second havend, watchdog(8), "
			    "or systemd's RuntimeWatchdogSec=)", path);
		else
			watchdog_error(err, errlen, "cannot open watchdog %s: %s",
			    path, strerror(errno));
		free(wd);
		errno = save_errno;
		return NULL;
	}
	/* From here on a real watchdog is armed. */
	if (fstat(wd->fd, &st) == -1 ||
	    !watchdog_type_ok(path, st.st_mode, err, errlen))
		goto fail;

	r = watchdog_set_timeout(wd, timeout_s, err, errlen);
	if (r == -1) {
		/* We armed it: the magic close stops it again. */
		disarm = 1;
		goto fail;
	}
	if (r == 0) {
		if (!S_ISFIFO(st.st_mode)) {
			watchdog_error(err, errlen, "%s is not a watchdog: it "
			    "does not answer the watchdog ioctls; set "
			    "[watchdog] device to a watchdog (ls "
			    "/dev/watchdog*), or none", path);
			errno = ENOTTY;
			goto fail;
		}
		log_info("watchdog %s: a FIFO, not a watchdog device (the "
		    "lab's stand-in): pets are one-byte writes, the timeout "
		    "(%u s) is the reader's", path, timeout_s);
		wd->ioctl_pet = 0;
	} else
		wd->ioctl_pet = 1;
	return wd;

fail:
	save_errno = errno;
	if (disarm && write(wd->fd, "V", 1) == -1)
		log_warn("watchdog %s: cannot disarm it: %s", path,
		    strerror(errno));
	close(wd->fd);
	free(wd);
	errno = save_errno;
	return NULL;
}

/*
 * A pet byte is never 'V': the driver (and the stand-in) take a 'V' just
 * before close as the order to stop.
 */
int
watchdog_pet(struct watchdog *wd)
{
	static const char	 pet = '\0';
	int			 dummy = 0;

	if (wd->ioctl_pet) {
		if (ioctl(wd->fd, WDIOC_KEEPALIVE, &dummy) == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOTTY)
			return -1;
		/* A driver without the keepalive ioctl takes writes. */
		wd->ioctl_pet = 0;
	}
	if (write(wd->fd, &pet, 1) == 1)
		return 0;
	/* A full FIFO: the reader has a backlog of pets still to count. */
	if (errno == EAGAIN)
		return 0;
	return -1;
}

unsigned
watchdog_timeout_s(const struct watchdog *wd)
{
	return wd->timeout_s;
}

/*
 * disarm: a clean stop of havend; the magic 'V' then close stops the timer
 * (unless the kernel was built with WATCHDOG_NOWAYOUT). Otherwise the timer
 * keeps running after close and the host resets unless a next havend opens
 * the watchdog and pets it in time.
 */
void
watchdog_close(struct watchdog *wd, int disarm)
{
	if (wd == NULL)
		return;
	if (disarm && write(wd->fd, "V", 1) != 1)
		log_warn("watchdog %s: cannot disarm it (the host will reset "
		    "in %u s): %s", wd->path, wd->timeout_s, strerror(errno));
	close(wd->fd);
	free(wd);
}
