/*
 * Errors of migrate/ as sentences an operator can act on. Refusals that
 * carry values (which generation, which VM) are worded by state_explain.
 */
#include "storage.h"
#include "migrate.h"

const char *
migrate_strerror(int error)
{
	switch (error) {
	case MIGRATE_E_NO_STATE:
		return "no saved state on this volume";
	case MIGRATE_E_WRONG_VM:
		return "saved state belongs to another VM";
	case MIGRATE_E_GENERATION:
		return "saved state is from another generation of this VM: "
		    "refusing a stale or foreign state";
	case MIGRATE_E_INCOMPLETE:
		return "saved state is incomplete (the save did not finish)";
	case MIGRATE_E_SIZE:
		return "saved state claims to be longer than its extent: "
		    "the state header is corrupt";
	case MIGRATE_E_CHECKSUM:
		return "saved state fails its checksum: refusing to resume a "
		    "corrupt VM";
	case MIGRATE_E_CONFIG:
		return "saved state was made with another VM configuration: "
		    "QEMU would refuse or misload it";
	case MIGRATE_E_CONSUMED:
		return "saved state was already restored once: resuming it "
		    "again would run the VM from stale memory";
	case MIGRATE_E_TOO_BIG:
		return "the VM's state does not fit in the volume's state "
		    "extent: enlarge the extent (RAM plus margin)";
	case MIGRATE_E_HEADER:
		return "saved state header is corrupt (checksum or field out "
		    "of range)";
	case MIGRATE_E_VERSION:
		return "saved state header has a version this Haven does not "
		    "know (saved by a newer Haven?)";
	default:
		return storage_strerror(error);
	}
}
