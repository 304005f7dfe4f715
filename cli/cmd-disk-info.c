/*
 * havenctl disk info: the VHD on a Haven volume's disk (and the volume
 * around it), or on a bare .vhd file. The virtual size is what Haven and
 * QEMU 7.2 read; where Hyper-V and newer QEMU read another (current_size
 * against CHS geometry, platform.md §1.3), it says so.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "cli.h"
#include "storage.h"

static int
cmd_disk_info_exec(struct cli *cli, struct args *args)
{
	struct volume_info	 vi;
	struct vhd_info		 info;
	struct blockdev		*vhd;
	struct json_object	*obj;
	struct target		 t;
	const char		*type;
	char			 human[40], uuid[40];
	uint64_t		 other;
	int			 error, rc, i, agrees;

	if ((rc = target_open(cli, args_positional(args, 0), 0, &t)) != 0)
		return rc;
	error = vhd_open_sync(t.disk != NULL ? t.disk : t.dev, 0, &vhd);
	if (error != 0) {
		cli_error(cli, "%s: no usable VHD: %s", t.spec,
		    storage_strerror(error));
		target_close(&t);
		return CLI_EXIT_FAILURE;
	}
	vhd_get_info(vhd, &info);
	blockdev_close(vhd);
	agrees = vhd_size_agrees(&info, &other);
	type = info.type == VHD_TYPE_FIXED ? "fixed" : "dynamic";
	for (i = 0; i < 16; i++)
		snprintf(uuid + i * 2, 3, "%02x", info.uuid[i]);
	snprintf(human, sizeof human, "%.8s-%.4s-%.4s-%.4s-%.12s", uuid,
	    uuid + 8, uuid + 12, uuid + 16, uuid + 20);
	snprintf(uuid, sizeof uuid, "%s", human);
	if (cli->json) {
		obj = json_object_new_object();
		json_object_object_add(obj, "target",
		    json_object_new_string(t.spec));
		if (t.volume != NULL) {
			volume_get_info(t.volume, &vi);
			json_object_object_add(obj, "volume",
			    json_object_new_string(vi.uuid));
			json_object_object_add(obj, "cluster",
			    json_object_new_string(vi.cluster_name));
			json_object_object_add(obj, "disk_extent_size",
			    json_object_new_uint64(t.disk->size));
		}
		json_object_object_add(obj, "type",
		    json_object_new_string(type));
		json_object_object_add(obj, "virtual_size",
		    json_object_new_uint64(info.virtual_size));
		json_object_object_add(obj, "current_size",
		    json_object_new_uint64(info.current_size));
		json_object_object_add(obj, "size_from", json_object_new_string(
		    info.virtual_size == other ? "current_size" : "geometry"));
		json_object_object_add(obj, "readers_agree",
		    json_object_new_boolean(agrees));
		json_object_object_add(obj, "geometry", json_object_new_string(
		    (snprintf(human, sizeof human, "%u/%u/%u", info.cylinders,
		    info.heads, info.sectors_per_track), human)));
		json_object_object_add(obj, "creator",
		    json_object_new_string(info.creator));
		json_object_object_add(obj, "uuid",
		    json_object_new_string(uuid));
		if (info.type == VHD_TYPE_DYNAMIC) {
			json_object_object_add(obj, "block_size",
			    json_object_new_uint64(info.block_size));
			json_object_object_add(obj, "allocated_blocks",
			    json_object_new_uint64(info.allocated_blocks));
		}
		json_object_object_add(obj, "end_offset",
		    json_object_new_uint64(info.end_offset));
		cli_json_print(cli, obj);
	} else {
		if (t.volume != NULL) {
			volume_get_info(t.volume, &vi);
			printf("volume:       %s (cluster %s)\n", vi.uuid,
			    vi.cluster_name);
			cli_format_size(t.disk->size, human, sizeof human);
			printf("disk extent:  %s\n", human);
		}
		cli_format_size(info.virtual_size, human, sizeof human);
		printf("type:         %s VHD\n", type);
		printf("virtual size: %s (%llu bytes, from %s)\n", human,
		    (unsigned long long)info.virtual_size,
		    info.virtual_size == other ? "current_size" : "geometry");
		if (!agrees)
			printf("note:         Hyper-V and QEMU 10 read %llu bytes "
			    "(current_size); Haven and QEMU 7.2 read the "
			    "geometry's size\n", (unsigned long long)other);
		printf("geometry:     %u/%u/%u (C/H/S), creator '%s'\n",
		    info.cylinders, info.heads, info.sectors_per_track,
		    info.creator);
		printf("uuid:         %s\n", uuid);
		if (info.type == VHD_TYPE_DYNAMIC)
			printf("allocated:    %u of %u blocks of %u KiB\n",
			    info.allocated_blocks, info.max_table_entries,
			    info.block_size / 1024);
		cli_format_size(info.end_offset, human, sizeof human);
		printf("in use:       %s of the backing\n", human);
	}
	target_close(&t);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_disk_info_entry = {
	.name = "disk info",
	.args = {
		.lower = 1, .upper = 1,
		.too_few = "expected one TARGET",
	},
	.usage = "[--json] TARGET|FILE.vhd",
	.summary = "show the VHD on a volume (or in a .vhd file)",
	.exec = cmd_disk_info_exec,
};
