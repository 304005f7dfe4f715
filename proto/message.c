/*
 * The table from frame type to protobuf message, and decoding of a frame's
 * payload into its message. Unknown types and payloads that do not decode
 * are refused here, before any handler sees them.
 */
#include <errno.h>
#include <stdlib.h>

#include "proto.h"

static const struct message_entry {
	uint16_t				 type;
	const char				*name;
	const ProtobufCMessageDescriptor	*descriptor;
} message_table[] = {
	{ FRAME_ERROR, "error", &haven__error__descriptor },
	{ FRAME_STATUS_REQUEST, "status-request",
	    &haven__status_request__descriptor },
	{ FRAME_STATUS_REPLY, "status-reply", &haven__status_reply__descriptor },
	{ FRAME_OK_REPLY, "ok", &haven__ok_reply__descriptor },
	{ FRAME_VM_CREATE, "vm-create", &haven__vm_create_request__descriptor },
	{ FRAME_VM_START, "vm-start", &haven__vm_name_request__descriptor },
	{ FRAME_VM_STOP, "vm-stop", &haven__vm_name_request__descriptor },
	{ FRAME_VM_DELETE, "vm-delete", &haven__vm_name_request__descriptor },
	{ FRAME_VM_SHOW, "vm-show", &haven__vm_name_request__descriptor },
	{ FRAME_VM_LIST, "vm-list", &haven__vm_list_request__descriptor },
	{ FRAME_VM_LIST_REPLY, "vm-list-reply",
	    &haven__vm_list_reply__descriptor },
	{ FRAME_NODE_LIST, "node-list", &haven__node_list_request__descriptor },
	{ FRAME_NODE_LIST_REPLY, "node-list-reply",
	    &haven__node_list_reply__descriptor },
	{ FRAME_ROLE_GRANT, "role-grant", &haven__role_grant__descriptor },
	{ FRAME_ROLE_REVOKE, "role-revoke",
	    &haven__role_revoke__descriptor },
	{ FRAME_ROLE_LIST, "role-list", &haven__role_list_request__descriptor },
	{ FRAME_ROLE_LIST_REPLY, "role-list-reply",
	    &haven__role_list_reply__descriptor },
	{ FRAME_EVENTS, "events", &haven__events_request__descriptor },
	{ FRAME_EVENTS_REPLY, "events-reply", &haven__events_reply__descriptor },
	{ FRAME_POOL_ADD, "pool-add", &haven__pool_add__descriptor },
	{ FRAME_VOLUME_ADD, "volume-add",
	    &haven__volume_add__descriptor },
	{ FRAME_STORAGE_LIST, "storage-list",
	    &haven__storage_list_request__descriptor },
	{ FRAME_STORAGE_LIST_REPLY, "storage-list-reply",
	    &haven__storage_list_reply__descriptor },
	{ FRAME_VM_CONSOLE, "vm-console", &haven__console_request__descriptor },
	{ FRAME_VM_CONSOLE_REPLY, "vm-console-reply",
	    &haven__console_reply__descriptor },
	{ FRAME_SETTINGS_SET, "settings-set",
	    &haven__settings_set__descriptor },
	{ FRAME_SETTINGS_GET, "settings-get",
	    &haven__settings_get_request__descriptor },
	{ FRAME_SETTINGS_REPLY, "settings-reply",
	    &haven__cluster_settings__descriptor },
	{ FRAME_NODE_FENCE, "node-fence", &haven__host_lost__descriptor },
	{ FRAME_FENCE_HISTORY, "fence-history",
	    &haven__fence_history_request__descriptor },
	{ FRAME_FENCE_HISTORY_REPLY, "fence-history-reply",
	    &haven__fence_history_reply__descriptor },
	{ FRAME_VM_MIGRATE, "vm-migrate", &haven__vm_migrate__descriptor },
	{ FRAME_NODE_MAINTENANCE, "node-maintenance",
	    &haven__host_maintenance__descriptor },
	{ FRAME_DEBUG_LOG, "debug-log", &haven__debug_log_request__descriptor },
	{ FRAME_DEBUG_LOG_REPLY, "debug-log-reply",
	    &haven__debug_log_reply__descriptor },
	{ FRAME_VM_SET, "vm-set", &haven__vm_set_request__descriptor },
	{ FRAME_VOLUME_REMOVE, "volume-remove",
	    &haven__volume_remove__descriptor },
	{ FRAME_POOL_REMOVE, "pool-remove", &haven__pool_remove__descriptor },
	{ FRAME_NODE_REMOVE, "node-remove", &haven__host_remove__descriptor },
	{ FRAME_VM_CONSOLE_ATTACH, "vm-console-attach",
	    &haven__console_attach__descriptor },
	{ FRAME_VM_CONSOLE_ATTACHED, "vm-console-attached",
	    &haven__console_attached__descriptor },
	{ FRAME_WORKER_CONSOLE, "worker-console",
	    &haven__console_attach__descriptor },
	{ FRAME_STATUS_LOGIN, "status-login",
	    &haven__status_login_request__descriptor },
	{ FRAME_STATUS_LOGIN_REPLY, "status-login-reply",
	    &haven__status_login_reply__descriptor },
	{ FRAME_CHANGE, "change", &haven__change__descriptor },
	{ FRAME_SYNC_STATE, "sync-state", &haven__sync_state__descriptor },
	{ FRAME_SNAPSHOT, "snapshot", &haven__snapshot__descriptor },
	{ FRAME_VM_SPEC, "vm-spec", &haven__vm_spec__descriptor },
	{ FRAME_WORKER_EVENT, "worker-event",
	    &haven__worker_event__descriptor },
	{ FRAME_WORKER_COMMAND, "worker-command",
	    &haven__worker_command__descriptor },
	{ FRAME_REGISTER_REQUEST, "register-request",
	    &haven__register_request__descriptor },
	{ FRAME_REGISTER_GRANT, "register-grant",
	    &haven__register_grant__descriptor },
	{ FRAME_WORKER_HELLO, "worker-hello",
	    &haven__worker_hello__descriptor },
};

static const struct message_entry *
message_find(uint16_t type)
{
	size_t	i;

	for (i = 0; i < sizeof message_table / sizeof message_table[0]; i++) {
		if (message_table[i].type == type)
			return &message_table[i];
	}
	return NULL;
}

const ProtobufCMessageDescriptor *
message_descriptor(uint16_t type)
{
	const struct message_entry	*e = message_find(type);

	return e ? e->descriptor : NULL;
}

const char *
message_type_name(uint16_t type)
{
	const struct message_entry	*e = message_find(type);

	return e ? e->name : "unknown";
}

/* Decode a frame's payload. NULL with errno ENOMSG (unknown type) or
 * EBADMSG (does not decode as that type). */
ProtobufCMessage *
message_decode(const struct frame *f)
{
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m;

	if ((d = message_descriptor(f->type)) == NULL) {
		errno = ENOMSG;
		return NULL;
	}
	m = protobuf_c_message_unpack(d, NULL, f->length, f->payload);
	if (m == NULL) {
		errno = EBADMSG;
		return NULL;
	}
	return m;
}

void
message_free(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* Serialise a message into a new buffer; *len gets its size. */
uint8_t *
message_pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t	*buf;

	*len = protobuf_c_message_get_packed_size(m);
	if ((buf = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	return buf;
}
