/*
 * cli/request.c: what the commands that ask havend share (the NAME and NODE
 * arguments, requests answered with OkReply, a VM as JSON). A header of its
 * own because it names generated protobuf types, which cli.h does not.
 */
#ifndef HAVEN_CLI_REQUEST_H
#define HAVEN_CLI_REQUEST_H

#include "cli.h"
#include "proto.h"

int		 request_ok(struct cli *, uint16_t type,
		     const ProtobufCMessage *, const char *done);
int		 request_vm_name(struct cli *, const struct cmd_entry *,
		     struct args *, const char **name);
int		 request_vm_change(struct cli *, const struct cmd_entry *,
		     struct args *, uint16_t type, const char *verb);
struct json_object *request_vm_json(const Haven__Vm *);
/* A node id, or the id of the host of that name (asks havend). */
int		 request_node_id(struct cli *, const char *, uint32_t *);

#endif
