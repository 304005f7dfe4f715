/*
 * vmcg.c: each VM's processes in a cgroup of their own, named after its
 * worker's uid under havend's cgroup ("haven.NODE.vm-UID"), in every
 * hierarchy the host has (v2, or v1's freezer, pids and memory).
 */
#ifndef HAVEN_VMCG_H
#define HAVEN_VMCG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMCG_ROOT	"/sys/fs/cgroup"

/* Create it (pids.max bounded); -1 with err when the host has none. */
int	vmcg_prepare(const char *root, const char *node, uint32_t uid,
	    char *err, size_t errlen);
/* Bound its memory (memory.max, or v1's memory.limit_in_bytes); -1 when
 * the host has no memory controller for it. */
int	vmcg_limit_memory(const char *root, const char *node, uint32_t uid,
	    uint64_t bytes);
/* Its memory bound in bytes; 0 when none can be read. */
uint64_t vmcg_memory_limit(const char *root, const char *node, uint32_t uid);
/* Its CPU weight under contention, from its vCPUs (never a cap). */
int	vmcg_weight_cpu(const char *root, const char *node, uint32_t uid,
	    uint32_t vcpus);
/* The calling process joins it: in the worker's child before exec. */
int	vmcg_join(const char *root, const char *node, uint32_t uid);
/* SIGKILL every process in it; how many were signalled. */
int	vmcg_kill(const char *root, const char *node, uint32_t uid);
/* 1 when no process is in it (or it does not exist). */
int	vmcg_empty(const char *root, const char *node, uint32_t uid);
/* 1 when pid is in it, 0 when not, -1 when the host gives the VM none
 * (no hierarchy, or it does not exist). */
int	vmcg_holds(const char *root, const char *node, uint32_t uid, pid_t pid);
/* Kill what is left and remove it; -1 while a process is still in it
 * (a killed one leaves once reaped; the next release removes it). */
int	vmcg_release(const char *root, const char *node, uint32_t uid);

#endif
