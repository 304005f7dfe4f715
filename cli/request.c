/*
 * What havenctl's commands that ask havend share: the NAME argument of the
 * vm commands, the NODE argument of the node commands, requests answered
 * with OkReply, and a VM as JSON. (clusterd/cluster.c is the cluster state
 * itself; this file only asks for it.)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tree.h"
#include "request.h"

/*
 * Make a change request; print the OkReply's message (or `done` when havend
 * sent none), or with --json {"ok": true, "message": ..., "seq": ...}.
 * Returns the exit code.
 */
int
request_ok(struct cli *cli, uint16_t type, const ProtobufCMessage *req,
    const char *done)
{
	Haven__OkReply		*r;
	struct json_object	*obj;
	const char		*message;
	int			 rc;

	r = (Haven__OkReply *)client_call(cli, type, req, FRAME_OK_REPLY, &rc);
	if (r == NULL)
		return rc;
	message = r->message != NULL && *r->message != '\0' ? r->message :
	    done;
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "ok", json_object_new_boolean(1));
		json_object_object_add(obj, "message",
		    json_object_new_string(message));
		json_object_object_add(obj, "seq",
		    json_object_new_uint64(r->seq));
		if (cli_json_print(cli, obj) == -1)
			rc = CLI_EXIT_FAILURE;
	} else if (!cli->quiet)
		printf("%s\n", message);
	message_free(&r->base);
	return rc;
}

/* The one NAME operand of vm start, stop, delete, show and console,
 * checked. */
int
request_vm_name(struct cli *cli, const struct cmd_entry *cmd,
    struct args *args, const char **name)
{
	*name = args_positional(args, 0);
	if (!cli_vm_name_valid(*name)) {
		cli_usage_error(cli, cmd, "bad VM name '%s': 1 to %d letters, "
		    "digits, '.', '_' or '-', starting with a letter or digit",
		    *name, CLI_VM_NAME_MAX);
		return -1;
	}
	return 0;
}

/* vm start, stop and delete: a VmNameRequest answered with OkReply. */
int
request_vm_change(struct cli *cli, const struct cmd_entry *cmd,
    struct args *args, uint16_t type, const char *verb)
{
	Haven__VmNameRequest	 req = HAVEN__VM_NAME_REQUEST__INIT;
	const char		*name;
	char			 done[128];

	if (request_vm_name(cli, cmd, args, &name) == -1)
		return CLI_EXIT_USAGE;
	req.name = (char *)name;
	snprintf(done, sizeof done, "%s VM %s", verb, name);
	return request_ok(cli, type, &req.base, done);
}

static struct json_object *
string_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

/* A VM given up for its storage and not yet free to start (issue 20):
 * {"at", "host", "pool", "fence": "waiting|order|failed", "by",
 * "attempt"}; null for any other VM. */
static struct json_object *
request_giveup_json(const Haven__VmRuntime *rt)
{
	const Haven__StorageFence	*f = rt->storage_fence;
	struct json_object		*o;
	char				 when[32];

	if (f == NULL || f->giveup_us == 0 || f->generation != rt->generation)
		return NULL;
	o = json_object_new_object();
	cli_format_time(f->giveup_us, when, sizeof when);
	json_object_object_add(o, "at", json_object_new_string(when));
	json_object_object_add(o, "host", json_object_new_int64(f->host));
	json_object_object_add(o, "pool", json_object_new_string(f->pool));
	json_object_object_add(o, "fence", json_object_new_string(f->step ==
	    HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_ORDER ? "order" :
	    f->step == HAVEN__STORAGE_FENCE_STEP__STORAGE_FENCE_STEP_FAILED ?
	    "failed" : "waiting"));
	json_object_object_add(o, "by", f->by != 0 ?
	    json_object_new_int64(f->by) : NULL);
	json_object_object_add(o, "attempt", json_object_new_int64(f->attempt));
	return o;
}

/* Every field of a VM, for vm list and vm show --json. */
static struct json_object *
nics_json(const Haven__VmConfig *c)
{
	struct json_object	*a = json_object_new_array();
	size_t			 i;

	for (i = 0; i < c->n_nics; i++) {
		struct json_object	*nic = json_object_new_object();

		json_object_object_add(nic, "bridge",
		    json_object_new_string(c->nics[i]->bridge));
		json_object_object_add(nic, "mac",
		    json_object_new_string(c->nics[i]->mac));
		/* 0: untagged */
		json_object_object_add(nic, "vlan",
		    json_object_new_int64(c->nics[i]->vlan));
		json_object_object_add(nic, "model", json_object_new_string(
		    nic_model_name(c->nics[i]->model)));
		json_object_array_add(a, nic);
	}
	return a;
}

/* vm set's changes to the machine, waiting for the VM's next start. */
static struct json_object *
next_start_json(const Haven__VmConfig *p)
{
	struct json_object	*obj = json_object_new_object(), *a;
	size_t			 i;

	json_object_object_add(obj, "memory_mib",
	    json_object_new_uint64(p->memory_mib));
	json_object_object_add(obj, "vcpus", json_object_new_int64(p->vcpus));
	a = json_object_new_array();
	for (i = 0; i < p->n_volumes; i++)
		json_object_array_add(a, json_object_new_string(p->volumes[i]));
	json_object_object_add(obj, "volumes", a);
	json_object_object_add(obj, "nics", nics_json(p));
	json_object_object_add(obj, "kernel", string_or_null(p->kernel));
	json_object_object_add(obj, "kernel_append",
	    string_or_null(p->kernel_append));
	json_object_object_add(obj, "initrd", string_or_null(p->initrd));
	json_object_object_add(obj, "disk_bus",
	    json_object_new_string(machine_disk_bus_name(p->disk_bus)));
	json_object_object_add(obj, "firmware",
	    json_object_new_string(boot_firmware_name(p->firmware)));
	json_object_object_add(obj, "cdrom", string_or_null(p->cdrom));
	json_object_object_add(obj, "boot_order", string_or_null(p->boot_order));
	return obj;
}

struct json_object *
request_vm_json(const Haven__Vm *vm)
{
	static const Haven__VmConfig	 no_config = HAVEN__VM_CONFIG__INIT;
	static const Haven__VmRuntime	 no_runtime = HAVEN__VM_RUNTIME__INIT;
	const Haven__VmConfig		*c = vm->config != NULL ? vm->config :
					    &no_config;
	const Haven__VmRuntime		*rt = vm->runtime != NULL ?
					    vm->runtime : &no_runtime;
	struct json_object		*obj, *a;
	char				 buf[32], when[32];
	size_t				 i;

	obj = json_object_new_object();
	json_object_object_add(obj, "name", json_object_new_string(c->name));
	json_object_object_add(obj, "uuid", string_or_null(c->uuid));
	json_object_object_add(obj, "state",
	    json_object_new_string(cli_desired_name(rt->desired)));
	json_object_object_add(obj, "phase",
	    json_object_new_string(cli_phase_name(rt->phase)));
	json_object_object_add(obj, "owner", rt->owner != 0 ?
	    json_object_new_int64(rt->owner) : NULL);
	json_object_object_add(obj, "generation",
	    json_object_new_uint64(rt->generation));
	json_object_object_add(obj, "restarts",
	    json_object_new_int64(rt->restarts));
	json_object_object_add(obj, "failures",
	    json_object_new_int64(rt->failures));
	json_object_object_add(obj, "moving_to", tree_move(rt)->to != 0 ?
	    json_object_new_int64(tree_move(rt)->to) : NULL);
	/* How it moves: live while migrating or until it falls back. */
	json_object_object_add(obj, "move", tree_move(rt)->to == 0 ? NULL :
	    json_object_new_string(rt->phase == HAVEN__VM_PHASE__VM_PHASE_MIGRATING
	    || (!tree_move(rt)->quick && rt->phase == HAVEN__VM_PHASE__VM_PHASE_RUNNING) ?
	    "live" : "quick"));
	json_object_object_add(obj, "live_remaining_bytes", tree_move(rt)->total_bytes ?
	    json_object_new_uint64(tree_move(rt)->remaining_bytes) : NULL);
	json_object_object_add(obj, "live_total_bytes", tree_move(rt)->total_bytes ?
	    json_object_new_uint64(tree_move(rt)->total_bytes) : NULL);
	json_object_object_add(obj, "live_endpoint", tree_move(rt)->live_endpoint != NULL &&
	    *tree_move(rt)->live_endpoint != '\0' ? json_object_new_string(
	    tree_move(rt)->live_endpoint) : NULL);
	json_object_object_add(obj, "saved_state",
	    json_object_new_boolean(rt->saved_state));
	/* Paused: why, and since when (UTC, RFC 3339). */
	if (rt->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
	    rt->paused_since_us != 0)
		cli_format_time(rt->paused_since_us, when, sizeof when);
	json_object_object_add(obj, "paused_why",
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
	    !tree_empty(rt->paused_why) ?
	    json_object_new_string(rt->paused_why) : NULL);
	json_object_object_add(obj, "paused_since",
	    rt->phase == HAVEN__VM_PHASE__VM_PHASE_PAUSED &&
	    rt->paused_since_us != 0 ? json_object_new_string(when) : NULL);
	json_object_object_add(obj, "memory_mib",
	    json_object_new_uint64(c->memory_mib));
	json_object_object_add(obj, "vcpus", json_object_new_int64(c->vcpus));
	json_object_object_add(obj, "priority",
	    json_object_new_int64(c->priority));
	json_object_object_add(obj, "priority_name", json_object_new_string(
	    cli_priority_name(c->priority, buf, sizeof buf)));
	a = json_object_new_array();
	for (i = 0; i < c->n_volumes; i++)
		json_object_array_add(a, json_object_new_string(c->volumes[i]));
	json_object_object_add(obj, "volumes", a);
	a = json_object_new_array();
	for (i = 0; i < c->n_preferred_owners; i++)
		json_object_array_add(a,
		    json_object_new_int64(c->preferred_owners[i]));
	json_object_object_add(obj, "preferred_owners", a);
	json_object_object_add(obj, "anti_affinity",
	    string_or_null(c->anti_affinity));
	json_object_object_add(obj, "failback",
	    json_object_new_boolean(c->failback));
	json_object_object_add(obj, "isolation",
	    json_object_new_string(cli_isolation_name(c->isolation_response)));
	json_object_object_add(obj, "max_restarts",
	    json_object_new_int64(c->max_restarts));
	json_object_object_add(obj, "stop_timeout_s",
	    json_object_new_int64(c->stop_timeout_s ? c->stop_timeout_s : 30));
	/* null: the cluster's (cluster show) */
	json_object_object_add(obj, "storage_timeout_s", c->storage_timeout_s ?
	    json_object_new_int64(c->storage_timeout_s) : NULL);
	json_object_object_add(obj, "storage_giveup", request_giveup_json(rt));
	json_object_object_add(obj, "kernel", string_or_null(c->kernel));
	json_object_object_add(obj, "kernel_append",
	    string_or_null(c->kernel_append));
	json_object_object_add(obj, "initrd", string_or_null(c->initrd));
	json_object_object_add(obj, "firmware",
	    json_object_new_string(boot_firmware_name(c->firmware)));
	json_object_object_add(obj, "cdrom", string_or_null(c->cdrom));
	json_object_object_add(obj, "boot_order", string_or_null(c->boot_order));
	json_object_object_add(obj, "nics", nics_json(c));
	/* The machine (issue 16); null: "pc", and host/max until its next
	 * cold start. */
	json_object_object_add(obj, "disk_bus",
	    json_object_new_string(machine_disk_bus_name(c->disk_bus)));
	json_object_object_add(obj, "machine_type",
	    string_or_null(c->machine_type));
	json_object_object_add(obj, "cpu_model", string_or_null(c->cpu_model));
	json_object_object_add(obj, "next_start", vm->pending == NULL ? NULL :
	    next_start_json(vm->pending));
	return obj;
}

/* A node id, or the id of the host named so in the state. */
int
request_node_id(struct cli *cli, const char *arg, uint32_t *id)
{
	Haven__NodeListRequest	 req = HAVEN__NODE_LIST_REQUEST__INIT;
	Haven__NodeListReply	*r;
	uint64_t		 v;
	uint16_t		 type;
	size_t			 i;
	int			 fd, code = 0, found = 0;

	if (cli_parse_uint(arg, 1, UINT32_MAX, &v) == 0) {
		*id = (uint32_t)v;
		return 0;
	}
	if ((fd = client_connect(cli)) == -1)
		return -1;
	r = (Haven__NodeListReply *)client_request_code(cli, fd,
	    FRAME_NODE_LIST, &req.base, &type, &code);
	close(fd);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->n_hosts; i++) {
		if (r->hosts[i]->config != NULL &&
		    strcmp(r->hosts[i]->config->name, arg) == 0) {
			*id = r->hosts[i]->config->node_id;
			found = 1;
		}
	}
	message_free(&r->base);
	if (!found)
		cli_error(cli, "no host named '%s'; 'havenctl node list' shows "
		    "them", arg);
	return found ? 0 : -1;
}

/*
 * An interactive console of VM name (vm console --attach, vm vnc): its
 * socket, which havend sends beside its reply, in *sock. Returns
 * CLI_EXIT_OK, or the exit code after havend's message.
 */
int
request_console(struct cli *cli, const char *name, Haven__ConsoleKind kind,
    int *sock)
{
	Haven__ConsoleAttach	 req = HAVEN__CONSOLE_ATTACH__INIT;
	ProtobufCMessage	*r;
	uint16_t		 type;
	int			 fd, code = 0, rc = CLI_EXIT_FAILURE;

	*sock = -1;
	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	req.name = (char *)name;
	req.kind = kind;
	r = client_request_fd(cli, fd, FRAME_VM_CONSOLE_ATTACH, &req.base,
	    &type, &code, sock);
	close(fd);
	if (r == NULL)
		return client_error_exit(type, code);
	if (type != FRAME_VM_CONSOLE_ATTACHED || *sock == -1) {
		cli_error(cli, "havend sent an unexpected reply (type %u%s); "
		    "are havenctl and havend the same version?", type,
		    *sock == -1 ? ", no socket" : "");
		if (*sock != -1)
			close(*sock);
		*sock = -1;
	} else
		rc = CLI_EXIT_OK;
	message_free(r);
	return rc;
}
