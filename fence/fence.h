/*
 * fence/: how one host makes sure another cannot touch shared storage any
 * more (DESIGN §4). Each piece declares its API here under its own heading.
 */
#ifndef HAVEN_FENCE_H
#define HAVEN_FENCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* storage.c: the storage level. On every volume (an iscsi:// URL), register
 * key on a new nexus and preempt (and abort) victim's registrations and
 * reservation, then verify victim is gone; in parallel, bounded by
 * FENCE_STORAGE_TIMEOUT_MS. cb runs once, from the loop: result 0 and a
 * summary, or a negative errno and which volume and step failed. */
struct fence_storage;
typedef void (*fence_storage_cb)(int result, const char *detail, void *arg);
struct fence_storage *fence_storage_start(struct event_base *,
		     const char *initiator, uint64_t key, uint64_t victim,
		     const char *const *urls, size_t n, fence_storage_cb,
		     void *arg);
/* After the callback, or to abandon it (no callback then). */
void		 fence_storage_free(struct fence_storage *);

/* watchdog.c */
/*
 * The host's watchdog, Linux watchdog API. Opening a real watchdog arms it;
 * from then on the host resets unless watchdog_pet runs at least once per
 * timeout. The lab's stand-in is a FIFO: accepted, petted by writes.
 */
struct watchdog;

/* Opens path (a watchdog character device or a FIFO) and sets timeout_s.
 * NULL with errno and a sentence in err (missing device, busy, not a
 * watchdog, a driver that only grants a longer timeout). */
struct watchdog	*watchdog_open(const char *path, unsigned timeout_s, char *err,
		     size_t errlen);
/* WDIOC_KEEPALIVE, or a one-byte write where the ioctl is missing. 0 / -1
 * with errno. */
int		 watchdog_pet(struct watchdog *);
/* What the driver granted (the requested timeout for a FIFO). */
unsigned	 watchdog_timeout_s(const struct watchdog *);
/* disarm: the magic 'V' before close (a clean stop of havend); else the
 * timer keeps running after close. */
void		 watchdog_close(struct watchdog *, int disarm);

#endif
