/*
 * cli/cluster.c: what the vm and node commands share. A header of its own
 * because it names generated protobuf types, which cli.h does not.
 */
#ifndef HAVEN_CLI_CLUSTER_H
#define HAVEN_CLI_CLUSTER_H

#include "cli.h"
#include "proto.h"

int		 cluster_ok_request(struct cli *, uint16_t type,
		     const ProtobufCMessage *, const char *done);
int		 cluster_vm_name_arg(struct cli *, const struct cmd_entry *,
		     int argc, char **argv, const char **name);
int		 cluster_vm_name_command(struct cli *, const struct cmd_entry *,
		     int argc, char **argv, uint16_t type, const char *verb);
struct json_object *cluster_vm_json(const Haven__Vm *);
/* A node id, or the id of the host of that name (asks havend). */
int		 cluster_node_id(struct cli *, const char *, uint32_t *);
int		 cluster_node_args(struct cli *, const struct cmd_entry *,
		     int argc, char **argv, const char *const *flags, int *set,
		     size_t nflags, uint32_t *node_id, const char **node);

#endif
