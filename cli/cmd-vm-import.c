/*
 * havenctl vm import NAME --vhd FILE --pool POOL --lun N [vm create's
 * options]: a VM from a Hyper-V (or qemu-img) .vhd in one command. The LUN
 * is formatted if it holds no Haven volume, the VHD is copied onto it at its
 * exact size, then the cluster gets the volume and the VM. The cluster is
 * changed last, and a failure undoes what this command did (or says exactly
 * what is left and how to remove it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common.h"
#include "request.h"
#include "storage.h"

#define VOLUME_MAX_LUN	16383	/* as volume add */

/* What has been done so far, for the undo. */
struct vm_import {
	const char		*name;
	const char		*volume;
	const char		*from;
	char			 url[512];
	char			 pool[64];
	struct target		 t;
	int			 formatted;	/* this run wrote the label */
	int			 volume_added;
	int			 vhd_written;	/* onto a volume it did not format */
	int			 type;
	uint64_t		 size;
};

static void
vm_import_step(struct cli *cli, const char *fmt, const char *arg)
{
	if (cli->quiet)
		return;
	fprintf(stderr, "vm import: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
}

static void
vm_import_progress(uint64_t done, uint64_t total, void *arg)
{
	cli_progress(arg, "importing", done, total);
}

/* Undo in reverse: the cluster's volume, then the label this run wrote. */
static void
vm_import_undo(struct cli *cli, struct vm_import *im)
{
	Haven__VolumeRemove	 req = HAVEN__VOLUME_REMOVE__INIT;
	Haven__OkReply		*ok;
	uint8_t			 zero[512] = { 0 };
	int			 rc;

	if (im->volume_added) {
		req.name = (char *)im->volume;
		ok = (Haven__OkReply *)client_call(cli, FRAME_VOLUME_REMOVE,
		    &req.base, FRAME_OK_REPLY, &rc);
		if (ok == NULL)
			cli_error(cli, "left behind: volume %s in the cluster; "
			    "remove it with 'havenctl volume remove %s'",
			    im->volume, im->volume);
		else {
			message_free(&ok->base);
			vm_import_step(cli, "undone: volume %s removed",
			    im->volume);
		}
	}
	if (im->formatted && im->t.dev != NULL) {
		if (im->t.volume != NULL) {
			volume_close(im->t.volume);
			im->t.volume = NULL;
			im->t.disk = NULL;
		}
		if (blockdev_write_sync(im->t.dev, 0, zero, sizeof zero,
		    BLOCKDEV_FUA) != 0 || blockdev_flush_sync(im->t.dev) != 0)
			cli_error(cli, "left behind: a Haven volume on %s; "
			    "'havenctl disk format --force' or another vm "
			    "import reuses the LUN", im->url);
		else
			vm_import_step(cli, "undone: the label written on %s "
			    "erased", im->url);
	} else if (im->vhd_written)
		cli_error(cli, "left behind: a partial VHD on %s (the volume "
		    "was already formatted, so it stays); 'havenctl disk "
		    "create --force' or another import replaces it", im->url);
}

/* The pool's LUN as a URL, from havend; the volume name free. */
static int
vm_import_pool(struct cli *cli, struct vm_import *im, const char *pool,
    uint32_t lun)
{
	Haven__StorageListRequest	 req =
					    HAVEN__STORAGE_LIST_REQUEST__INIT;
	Haven__StorageListReply		*r;
	size_t				 i;
	int				 rc;

	r = (Haven__StorageListReply *)client_call(cli, FRAME_STORAGE_LIST,
	    &req.base, FRAME_STORAGE_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	rc = CLI_EXIT_FAILURE;
	for (i = 0; i < r->n_volumes; i++) {
		if (strcmp(r->volumes[i]->name, im->volume) == 0) {
			cli_error(cli, "volume %s exists; nothing was changed "
			    "(give --volume-name)", im->volume);
			goto out;
		}
		if (strcmp(r->volumes[i]->pool, pool) == 0 &&
		    r->volumes[i]->lun == lun) {
			cli_error(cli, "LUN %u of pool %s is volume %s already; "
			    "nothing was changed", lun, pool,
			    r->volumes[i]->name);
			goto out;
		}
	}
	for (i = 0; i < r->n_pools; i++) {
		if (strcmp(r->pools[i]->name, pool) == 0) {
			snprintf(im->url, sizeof im->url, "iscsi://%s/%s/%u",
			    r->pools[i]->portal, r->pools[i]->target, lun);
			snprintf(im->pool, sizeof im->pool, "%s", pool);
			rc = CLI_EXIT_OK;
			goto out;
		}
	}
	cli_error(cli, "pool %s does not exist ('havenctl pool list'); "
	    "nothing was changed", pool);
out:
	message_free(&r->base);
	return rc;
}

/* The LUN: open it, format it unless it is a Haven volume already. */
static int
vm_import_volume(struct cli *cli, struct vm_import *im, struct args *args)
{
	struct volume_params	 params = { .cluster_name = NULL };
	struct lease_record	 lease;
	struct blockdev		*old;
	const char		*arg;
	int			 error, rc;

	if ((rc = target_open(cli, im->url, TARGET_WRITABLE, &im->t)) != 0)
		return rc;
	if (im->t.volume != NULL) {
		/* Someone's volume: not another VM's, not a VHD unasked. */
		error = lease_read_sync(volume_extent(im->t.volume,
		    VOLUME_EXTENT_LEASE), &lease);
		if (error != 0 || lease.generation != 0) {
			cli_error(cli, "%s already holds a Haven volume %s%s; "
			    "import onto an unused LUN", im->url, error != 0 ?
			    "whose lease does not read: " : "used by VM ",
			    error != 0 ? storage_strerror(error) :
			    lease.vm_uuid);
			return CLI_EXIT_FAILURE;
		}
		if (vhd_open_sync(im->t.disk, 0, &old) == 0) {
			blockdev_close(old);
			if (!args_has(args, "force")) {
				cli_error(cli, "%s already holds a Haven volume "
				    "with a VHD; add --force to replace it (its "
				    "data is lost)", im->url);
				return CLI_EXIT_FAILURE;
			}
		}
		return CLI_EXIT_OK;
	}
	params.cluster_name = target_cluster_name();
	if ((arg = args_get(args, "state-size")) != NULL)
		(void)cli_parse_size(arg, &params.state_size);
	vm_import_step(cli, "formatting %s", im->url);
	if ((error = volume_format_sync(im->t.dev, &params,
	    &im->t.volume)) != 0) {
		cli_error(cli, "%s: formatting: %s", im->url, error == -ENOSPC ?
		    "the LUN is too small (or give a smaller --state-size)" :
		    storage_strerror(error));
		return CLI_EXIT_FAILURE;
	}
	im->formatted = 1;
	im->t.disk = volume_extent(im->t.volume, VOLUME_EXTENT_DISK);
	return CLI_EXIT_OK;
}

/* Copy the VHD onto the volume's disk at its exact size. */
static int
vm_import_disk(struct cli *cli, struct vm_import *im, struct blockdev *src)
{
	struct blockdev	*dst = NULL;
	int		 error;

	if (vhd_max_backing_size(im->type, src->size, VHD_SIZE_EXACT) >
	    im->t.disk->size) {
		cli_error(cli, "%s: the volume's disk extent (%llu bytes) is "
		    "too small for this %s VHD of %llu bytes (use a larger "
		    "LUN%s)", im->url, (unsigned long long)im->t.disk->size,
		    im->type == VHD_TYPE_FIXED ? "fixed" : "dynamic",
		    (unsigned long long)src->size, im->type == VHD_TYPE_FIXED ?
		    "" : ", or --type dynamic");
		return CLI_EXIT_FAILURE;
	}
	vm_import_step(cli, "copying %s onto the volume", im->from);
	im->vhd_written = 1;
	if ((error = vhd_create_sync(im->t.disk, im->type, src->size,
	    VHD_SIZE_EXACT)) != 0 ||
	    (error = vhd_open_sync(im->t.disk, 1, &dst)) != 0 ||
	    (error = vhd_copy_sync(src, dst, vm_import_progress, cli)) != 0) {
		cli_error(cli, "%s: copying the VHD: %s", im->url,
		    storage_strerror(error));
		blockdev_close(dst);
		return CLI_EXIT_FAILURE;
	}
	im->size = dst->size;
	blockdev_close(dst);
	return CLI_EXIT_OK;
}

static int
vm_import_cluster(struct cli *cli, struct vm_import *im,
    Haven__VmConfig *config)
{
	Haven__VolumeAdd	 vreq = HAVEN__VOLUME_ADD__INIT;
	Haven__VolumeConfig	 vc = HAVEN__VOLUME_CONFIG__INIT;
	Haven__VmCreateRequest	 creq = HAVEN__VM_CREATE_REQUEST__INIT;
	Haven__OkReply		*ok;
	int			 rc;

	vc.name = (char *)im->volume;
	vc.pool = im->pool;
	vc.lun = (uint32_t)strtoul(strrchr(im->url, '/') + 1, NULL, 10);
	vc.size_bytes = im->t.dev->size;
	vreq.config = &vc;
	vm_import_step(cli, "adding volume %s", im->volume);
	ok = (Haven__OkReply *)client_call(cli, FRAME_VOLUME_ADD, &vreq.base,
	    FRAME_OK_REPLY, &rc);
	if (ok == NULL)
		return rc;
	message_free(&ok->base);
	im->volume_added = 1;
	creq.config = config;
	vm_import_step(cli, "creating VM %s", im->name);
	ok = (Haven__OkReply *)client_call(cli, FRAME_VM_CREATE, &creq.base,
	    FRAME_OK_REPLY, &rc);
	if (ok == NULL)
		return rc;
	message_free(&ok->base);
	return CLI_EXIT_OK;
}

static void
vm_import_report(struct cli *cli, const struct vm_import *im)
{
	struct json_object	*obj;
	const char		*type = im->type == VHD_TYPE_FIXED ? "fixed" :
				    "dynamic";

	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "ok", json_object_new_boolean(1));
		json_object_object_add(obj, "vm",
		    json_object_new_string(im->name));
		json_object_object_add(obj, "volume",
		    json_object_new_string(im->volume));
		json_object_object_add(obj, "url",
		    json_object_new_string(im->url));
		json_object_object_add(obj, "formatted",
		    json_object_new_boolean(im->formatted));
		json_object_object_add(obj, "type",
		    json_object_new_string(type));
		json_object_object_add(obj, "virtual_size",
		    json_object_new_uint64(im->size));
		cli_json_print(cli, obj);
	} else if (!cli->quiet)
		printf("imported VM %s: volume %s (%s), a %s VHD of %llu bytes; "
		    "'havenctl vm start %s' runs it\n", im->name, im->volume,
		    im->url, type, (unsigned long long)im->size, im->name);
}

static int
cmd_vm_import_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_vm_import_entry;
	Haven__VmConfig		 config = HAVEN__VM_CONFIG__INIT;
	Haven__VmListRequest	 lreq = HAVEN__VM_LIST_REQUEST__INIT;
	Haven__VmListReply	*r;
	struct cli_vm_args	 b;
	struct vm_import	 im;
	struct blockdev		*file = NULL, *src = NULL;
	struct vhd_info		 info;
	struct event_base	*base = NULL;
	const char		*arg, *lun;
	uint64_t		 v;
	size_t			 i;
	int			 error, rc;

	memset(&im, 0, sizeof im);
	config.vcpus = 1;
	config.max_restarts = 1;
	config.priority = CLI_PRIORITY_MEDIUM;
	if (cli_vm_config_parse(cli, cmd, args, &b, &config) == -1)
		return CLI_EXIT_USAGE;
	im.name = config.name = (char *)args_positional(args, 0);
	im.volume = args_get(args, "volume-name") != NULL ?
	    args_get(args, "volume-name") : im.name;
	im.from = args_get(args, "vhd");
	if (!cli_vm_name_valid(im.name) || !cli_vm_name_valid(im.volume)) {
		cli_usage_error(cli, cmd, "bad %s name '%s': 1 to %d letters, "
		    "digits, '.', '_' or '-', starting with a letter or digit",
		    cli_vm_name_valid(im.name) ? "volume" : "VM",
		    cli_vm_name_valid(im.name) ? im.volume : im.name,
		    CLI_VM_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (im.from == NULL || args_get(args, "pool") == NULL ||
	    (lun = args_get(args, "lun")) == NULL ||
	    args_get(args, "memory") == NULL) {
		cli_usage_error(cli, cmd, "--vhd, --pool, --lun and --memory "
		    "are required");
		return CLI_EXIT_USAGE;
	}
	if (cli_parse_uint(lun, 0, VOLUME_MAX_LUN, &v) == -1) {
		cli_usage_error(cli, cmd, "bad --lun '%s': a number from 0 to "
		    "%d", lun, VOLUME_MAX_LUN);
		return CLI_EXIT_USAGE;
	}
	if ((arg = args_get(args, "state-size")) != NULL &&
	    cli_parse_size(arg, &v) == -1) {
		cli_usage_error(cli, cmd, "bad --state-size '%s' (use e.g. "
		    "512M, 4G)", arg);
		return CLI_EXIT_USAGE;
	}
	if (target_type_arg(cli, cmd, args, &im.type) == -1)
		return CLI_EXIT_USAGE;
	if (*config.kernel_append != '\0' && *config.kernel == '\0') {
		cli_usage_error(cli, cmd, "--append needs --kernel");
		return CLI_EXIT_USAGE;
	}
	/* The imported volume is the guest's first disk. */
	if (config.n_volumes == CLI_VM_MAX_LIST) {
		cli_usage_error(cli, cmd, "at most %d volumes",
		    CLI_VM_MAX_LIST - 1);
		return CLI_EXIT_USAGE;
	}
	for (i = 0; i < config.n_volumes; i++) {
		if (strcmp(config.volumes[i], im.volume) == 0) {
			cli_usage_error(cli, cmd, "--volume %s is the imported "
			    "volume (it comes first by itself)", im.volume);
			return CLI_EXIT_USAGE;
		}
	}
	memmove(config.volumes + 1, config.volumes,
	    config.n_volumes * sizeof *config.volumes);
	config.volumes[0] = (char *)im.volume;
	config.n_volumes++;

	/* The file, before anything changes anywhere. */
	if ((base = event_base_new()) == NULL) {
		cli_error(cli, "cannot create the event loop");
		return CLI_EXIT_FAILURE;
	}
	rc = CLI_EXIT_FAILURE;
	if ((file = file_open(base, im.from, 0, &error)) == NULL) {
		cli_error(cli, "%s: %s", im.from, storage_strerror(error));
		goto out;
	}
	if ((error = vhd_open_sync(file, 0, &src)) != 0) {
		cli_error(cli, "%s: %s", im.from, error == STORAGE_E_UNSUPPORTED ?
		    "differencing VHDs are not supported; merge it with "
		    "'qemu-img convert -O vpc' first" : storage_strerror(error));
		goto out;
	}
	vhd_get_info(src, &info);
	if (im.type == 0)
		im.type = info.type;
	/* The VM and volume names are free; the pool exists. */
	r = (Haven__VmListReply *)client_call(cli, FRAME_VM_LIST, &lreq.base,
	    FRAME_VM_LIST_REPLY, &rc);
	if (r == NULL)
		goto out;
	rc = CLI_EXIT_OK;
	for (i = 0; i < r->n_vms; i++)
		if (r->vms[i]->config != NULL &&
		    strcmp(r->vms[i]->config->name, im.name) == 0)
			rc = CLI_EXIT_FAILURE;
	message_free(&r->base);
	if (rc != CLI_EXIT_OK) {
		cli_error(cli, "VM %s exists; nothing was changed", im.name);
		goto out;
	}
	if ((rc = vm_import_pool(cli, &im, args_get(args, "pool"),
	    (uint32_t)strtoul(lun, NULL, 10))) != CLI_EXIT_OK)
		goto out;
	if ((rc = vm_storage_host_key(cli)) != CLI_EXIT_OK ||
	    (rc = vm_import_volume(cli, &im, args)) != CLI_EXIT_OK ||
	    (rc = vm_import_disk(cli, &im, src)) != CLI_EXIT_OK ||
	    (rc = vm_import_cluster(cli, &im, &config)) != CLI_EXIT_OK) {
		vm_import_undo(cli, &im);
		goto out;
	}
	vm_import_report(cli, &im);
out:
	if (im.t.base != NULL)
		target_close(&im.t);
	blockdev_close(src);
	blockdev_close(file);
	if (base != NULL)
		event_base_free(base);
	return rc;
}

/*
 * vm create's options (whatever they are: they are read from its table
 * when havenctl starts), then import's own. cli_vm_config_parse reads the
 * shared ones.
 */
static const struct args_option vm_import_own[] = {
	{ "vhd", 0, ARGS_VALUE },
	{ "pool", 0, ARGS_VALUE },
	{ "lun", 0, ARGS_VALUE },
	{ "volume-name", 0, ARGS_VALUE },
	{ "type", 't', ARGS_VALUE },
	{ "state-size", 0, ARGS_VALUE },
	{ "force", 'f', 0 },
	{ NULL, 0, 0 },
};
static struct args_option vm_import_options[96];

__attribute__((constructor)) static void
vm_import_options_init(void)
{
	const struct args_option	*o;
	size_t				 n = 0;
	const size_t			 max = sizeof vm_import_options /
					    sizeof vm_import_options[0] - 1;

	for (o = cmd_vm_create_entry.args.options; o->name != NULL &&
	    n < max; o++)
		vm_import_options[n++] = *o;
	for (o = vm_import_own; o->name != NULL && n < max; o++)
		vm_import_options[n++] = *o;
}

const struct cmd_entry cmd_vm_import_entry = {
	.name = "vm import",
	.args = {
		.options = vm_import_options,
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	/* Wrapped for 80 columns under "usage: havenctl ". */
	.usage = "NAME --vhd FILE --pool POOL --lun N --memory SIZE\n"
	    "         [--volume-name VOL] [--type fixed|dynamic] "
	    "[--state-size SIZE]\n"
	    "         [--force] [vm create's options] [--json]",
	.summary = "make a VM from a .vhd file (Hyper-V, qemu-img): format, "
	    "copy, volume add, vm create",
	.exec = cmd_vm_import_exec,
};
