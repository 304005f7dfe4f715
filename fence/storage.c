/*
 * The storage fence level (DESIGN §4): PREEMPT AND ABORT of the victim's
 * reservation key on every volume, then verify it is gone.
 */
#include "fence.h"
#include "timeline.h"
