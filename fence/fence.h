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

#endif
