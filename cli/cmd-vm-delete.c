/*
 * havenctl vm delete NAME [--wipe]: remove a VM from the cluster, answered
 * once the cluster has applied the change. With --wipe, this host then
 * clears the lease and saved state of the VM's volumes (not the VHD), so
 * that a new VM may use them (docs/design-notes.md, "vm delete --wipe").
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "request.h"
#include "storage.h"

#define VM_DELETE_MAX_VOLUMES	(2 * CLI_VM_MAX_LIST)

struct vm_delete_volume {
	const char	*name;
	char		 url[512];
	char		 pool[64];
	struct target	 t;
	int		 wiped;
	char		 error[400];
};

/* The VM's volumes, now and at its next start, each once. */
static size_t
vm_delete_volumes(const Haven__Vm *vm, struct vm_delete_volume *v)
{
	const Haven__VmConfig	*c[2] = { vm->config, vm->pending };
	size_t			 n = 0, i, j, k;

	for (i = 0; i < 2; i++) {
		for (j = 0; c[i] != NULL && j < c[i]->n_volumes; j++) {
			for (k = 0; k < n; k++)
				if (strcmp(v[k].name, c[i]->volumes[j]) == 0)
					break;
			if (k == n && n < VM_DELETE_MAX_VOLUMES)
				v[n++].name = c[i]->volumes[j];
		}
	}
	return n;
}

static void
vm_delete_report(struct cli *cli, const char *name, const char *uuid,
    struct vm_delete_volume *v, size_t n)
{
	struct json_object	*obj, *a, *o;
	size_t			 i;

	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "ok", json_object_new_boolean(1));
		json_object_object_add(obj, "vm", json_object_new_string(name));
		json_object_object_add(obj, "uuid",
		    json_object_new_string(uuid));
		a = json_object_new_array();
		for (i = 0; i < n; i++) {
			o = json_object_new_object();
			json_object_object_add(o, "volume",
			    json_object_new_string(v[i].name));
			json_object_object_add(o, "url",
			    json_object_new_string(v[i].url));
			json_object_object_add(o, "wiped",
			    json_object_new_boolean(v[i].wiped));
			if (!v[i].wiped)
				json_object_object_add(o, "error",
				    json_object_new_string(v[i].error));
			json_object_array_add(a, o);
		}
		json_object_object_add(obj, "volumes", a);
		cli_json_print(cli, obj);
		return;
	}
	if (!cli->quiet)
		printf("deleted VM %s\n", name);
	for (i = 0; i < n; i++) {
		if (v[i].wiped && !cli->quiet)
			printf("wiped volume %s (%s): lease and saved state "
			    "cleared, its VHD kept\n", v[i].name, v[i].url);
		else if (!v[i].wiped)
			cli_error(cli, "VM %s is deleted, but volume %s was not "
			    "wiped: %s; run 'havenctl disk wipe --vm %s %s' as "
			    "root on a host that reaches pool %s", name,
			    v[i].name, v[i].error, uuid, v[i].url, v[i].pool);
	}
}

static int
vm_delete_wipe(struct cli *cli, const char *name)
{
	Haven__VmNameRequest	 req = HAVEN__VM_NAME_REQUEST__INIT;
	Haven__VmListReply	*r;
	Haven__OkReply		*ok;
	struct vm_delete_volume	*v;
	struct lease_record	 was;
	const Haven__Vm		*vm;
	char			 uuid[40];
	size_t			 n = 0, i;
	int			 rc, error, failed = 0;

	if ((v = calloc(VM_DELETE_MAX_VOLUMES, sizeof *v)) == NULL)
		abort();
	req.name = (char *)name;
	r = (Haven__VmListReply *)client_call(cli, FRAME_VM_SHOW, &req.base,
	    FRAME_VM_LIST_REPLY, &rc);
	if (r == NULL)
		goto out_free;
	rc = CLI_EXIT_FAILURE;
	if (r->n_vms != 1 || r->vms[0]->config == NULL ||
	    r->vms[0]->runtime == NULL) {
		cli_error(cli, "havend sent no VM %s", name);
		goto out;
	}
	vm = r->vms[0];
	snprintf(uuid, sizeof uuid, "%s", vm->config->uuid);
	/* The cluster refuses too (atomically); this saves opening LUNs. */
	if (vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_STOPPED &&
	    vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_FAILED) {
		cli_error(cli, "VM %s is %s; stop it first ('havenctl vm stop "
		    "%s'), then delete it", name,
		    cli_phase_name(vm->runtime->phase), name);
		goto out;
	}
	n = vm_delete_volumes(vm, v);
	if (n > 0 && (rc = vm_storage_host_key(cli)) != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_FAILURE;
	/* Every volume opens and is this VM's before anything changes. */
	for (i = 0; i < n; i++) {
		if ((rc = vm_storage_url(cli, v[i].name, v[i].url,
		    sizeof v[i].url, v[i].pool, sizeof v[i].pool)) != 0)
			goto out;
		if ((rc = target_open(cli, v[i].url, TARGET_WRITABLE |
		    TARGET_VOLUME, &v[i].t)) != 0) {
			cli_error(cli, "nothing was deleted: volume %s must be "
			    "reachable from this host to be wiped (run this on "
			    "a host that reaches pool %s)", v[i].name,
			    v[i].pool);
			goto out;
		}
		rc = CLI_EXIT_FAILURE;
		if ((error = lease_read_sync(volume_extent(v[i].t.volume,
		    VOLUME_EXTENT_LEASE), &was)) != 0) {
			cli_error(cli, "nothing was deleted: volume %s: reading "
			    "its lease: %s", v[i].name, storage_strerror(error));
			goto out;
		}
		if (was.generation != 0 && strcasecmp(was.vm_uuid, uuid) != 0) {
			cli_error(cli, "nothing was deleted: volume %s's lease "
			    "names VM %s, not %s (%s); it is not this VM's to "
			    "wipe", v[i].name, was.vm_uuid, name, uuid);
			goto out;
		}
	}
	req.name = (char *)name;
	ok = (Haven__OkReply *)client_call(cli, FRAME_VM_DELETE, &req.base,
	    FRAME_OK_REPLY, &rc);
	if (ok == NULL)
		goto out;
	message_free(&ok->base);
	/* Deleted: no host will run it again; its volumes can be wiped. */
	for (i = 0; i < n; i++) {
		error = volume_wipe_sync(v[i].t.volume, uuid, &was);
		if (error == -EEXIST)
			snprintf(v[i].error, sizeof v[i].error, "its lease now "
			    "names VM %s", was.vm_uuid);
		else if (error != 0)
			snprintf(v[i].error, sizeof v[i].error, "%s",
			    storage_strerror(error));
		v[i].wiped = error == 0;
		failed |= error != 0;
	}
	vm_delete_report(cli, name, uuid, v, n);
	rc = failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	for (i = 0; i < n; i++)
		if (v[i].t.base != NULL)
			target_close(&v[i].t);
	message_free(&r->base);
out_free:
	free(v);
	return rc;
}

static int
cmd_vm_delete_exec(struct cli *cli, struct args *args)
{
	const char	*name;

	if (!args_has(args, "wipe"))
		return request_vm_change(cli, &cmd_vm_delete_entry, args,
		    FRAME_VM_DELETE, "deleted");
	if (request_vm_name(cli, &cmd_vm_delete_entry, args, &name) == -1)
		return CLI_EXIT_USAGE;
	return vm_delete_wipe(cli, name);
}

const struct cmd_entry cmd_vm_delete_entry = {
	.name = "vm delete",
	.args = {
		.options = (const struct args_option[]) {
			{ "wipe", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "[--json] NAME [--wipe]",
	.summary = "remove a VM from the cluster (--wipe: free its volumes "
	    "for a new VM)",
	.exec = cmd_vm_delete_exec,
};
