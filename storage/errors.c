/*
 * Storage errors as sentences an operator can act on, and the one helper
 * that lets synchronous callers (havenctl, tests) wait on the event loop.
 */
#include <string.h>

#include <event2/event.h>

#include "storage.h"

const char *
storage_strerror(int error)
{
	switch (error) {
	case 0:
		return "success";
	case STORAGE_E_RESERVATION:
		return "write refused: this host's reservation key is not "
		    "registered or was preempted (fenced)";
	case STORAGE_E_PREEMPTED:
		return "this host's reservation was preempted by another "
		    "host (fenced)";
	case STORAGE_E_CORRUPT:
		return "on-disk structure is corrupt";
	case STORAGE_E_UNSUPPORTED:
		return "not supported by Haven";
	case STORAGE_E_TIMEOUT:
		return "the storage target did not answer in time";
	case STORAGE_E_LOGIN:
		return "iSCSI login failed";
	case STORAGE_E_AUTH:
		return "the target refused the login (CHAP): run as root with "
		    "the chap file (haven.conf [storage] chap_file, "
		    CHAP_PATH " by default) holding this target's account";
	case STORAGE_E_DENIED:
		return "no such target, or its ACL does not list this host's "
		    "initiator name ([vm] initiator, else "
		    "iqn.2026-11.io.haven:NODE)";
	case STORAGE_E_SCSI:
		return "SCSI command failed";
	case STORAGE_E_LEASE_NEWER:
		return "the volume's lease is held at a newer generation: "
		    "another host owns this VM now";
	case STORAGE_E_NOT_VOLUME:
		return "not a Haven volume (no Haven label); format it with "
		    "'havenctl disk format'";
	default:
		if (error < 0 && error > -STORAGE_ERROR_BASE)
			return strerror(-error);
		return "unknown storage error";
	}
}

/* Run the loop until *done becomes non-zero. -1 if the loop has nothing
 * left to wait for (a completion that can never come). */
int
storage_wait(struct event_base *base, const int *done)
{
	while (!*done) {
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			return *done ? 0 : -1;
	}
	return 0;
}
