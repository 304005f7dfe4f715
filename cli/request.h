/*
 * cli/request.c: what the commands that ask havend share (the NAME and NODE
 * arguments, requests answered with OkReply, a VM as JSON), and the VM
 * options of vm create and vm set. A header of its own because it names
 * generated protobuf types, which cli.h does not.
 */
#ifndef HAVEN_CLI_REQUEST_H
#define HAVEN_CLI_REQUEST_H

#include "cli.h"
#include "common.h"
#include "proto.h"

int		 request_ok(struct cli *, uint16_t type,
		     const ProtobufCMessage *, const char *done);
int		 request_vm_name(struct cli *, const struct cmd_entry *,
		     struct args *, const char **name);
int		 request_vm_change(struct cli *, const struct cmd_entry *,
		     struct args *, uint16_t type, const char *verb);
struct json_object *request_vm_json(const Haven__Vm *);
/* cmd-vm-create.c: the VM options vm create and vm set share (--memory,
 * --volume, --nic, ...), the given ones into a VmConfig whose arrays point
 * into a cli_vm_args; -1 after a usage message. */
#define CLI_VM_MAX_LIST	64	/* --prefer; --volume: VM_MAX_VOLUMES */
struct cli_vm_args {
	char		*volumes[CLI_VM_MAX_LIST];
	uint32_t	 prefer[CLI_VM_MAX_LIST];
	char		 text[NIC_MAX][128];
	char		 mac[NIC_MAX][NET_MAC_STRLEN + 1];
	Haven__Nic	 nic[NIC_MAX];
	Haven__Nic	*nics[NIC_MAX];
};
int		 cli_vm_config_parse(struct cli *, const struct cmd_entry *,
		     struct args *, struct cli_vm_args *, Haven__VmConfig *);
/* vm-storage.c: a volume's iscsi:// URL (and pool) from havend; this
 * host's reservation key into cli->key unless --key gave one. 0 or an exit
 * code after the message. */
int		 vm_storage_url(struct cli *, const char *volume, char *url,
		     size_t, char *pool, size_t);
int		 vm_storage_host_key(struct cli *);
int		 request_console(struct cli *, const char *name,
		     Haven__ConsoleKind, int *sock);
/* A node id, or the id of the host of that name (asks havend). */
int		 request_node_id(struct cli *, const char *, uint32_t *);

#endif
