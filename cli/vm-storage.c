/*
 * What vm delete --wipe and vm import do on a VM's volumes from the host
 * havenctl runs on: find a volume's LUN (its pool's portal and target, from
 * havend), and claim LUNs with this host's own reservation key, as havend
 * would, when no --key was given.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "request.h"

int
vm_storage_url(struct cli *cli, const char *volume, char *url, size_t len,
    char *pool, size_t pool_len)
{
	Haven__StorageListRequest	 req =
					    HAVEN__STORAGE_LIST_REQUEST__INIT;
	Haven__StorageListReply		*r;
	const Haven__VolumeConfig	*v = NULL;
	const Haven__PoolConfig		*p = NULL;
	size_t				 i;
	int				 rc;

	r = (Haven__StorageListReply *)client_call(cli, FRAME_STORAGE_LIST,
	    &req.base, FRAME_STORAGE_LIST_REPLY, &rc);
	if (r == NULL)
		return rc;
	for (i = 0; i < r->n_volumes && v == NULL; i++)
		if (strcmp(r->volumes[i]->name, volume) == 0)
			v = r->volumes[i];
	for (i = 0; v != NULL && i < r->n_pools && p == NULL; i++)
		if (strcmp(r->pools[i]->name, v->pool) == 0)
			p = r->pools[i];
	if (v == NULL || p == NULL) {
		cli_error(cli, "volume %s %s", volume, v == NULL ?
		    "does not exist ('havenctl volume list')" :
		    "names a pool that does not exist");
		rc = CLI_EXIT_FAILURE;
	} else {
		snprintf(url, len, "iscsi://%s/%s/%u", p->portal, p->target,
		    v->lun);
		if (pool != NULL)
			snprintf(pool, pool_len, "%s", p->name);
	}
	message_free(&r->base);
	return rc;
}

int
vm_storage_host_key(struct cli *cli)
{
	Haven__StatusRequest	 req = HAVEN__STATUS_REQUEST__INIT;
	Haven__StatusReply	*r;
	char			 spec[96];
	uint16_t		 type;
	int			 fd, rc = CLI_EXIT_OK;

	if (cli->key != 0)
		return CLI_EXIT_OK;
	if ((fd = client_connect(cli)) == -1)
		return CLI_EXIT_FAILURE;
	r = (Haven__StatusReply *)client_request(cli, fd, FRAME_STATUS_REQUEST,
	    &req.base, &type);
	close(fd);
	if (r == NULL)
		return type == FRAME_ERROR ? CLI_EXIT_DENIED : CLI_EXIT_FAILURE;
	snprintf(spec, sizeof spec, "%s:%u", target_cluster_name(),
	    r->node_id);
	if (r->node_id == 0 || target_parse_key(spec, &cli->key) == -1) {
		cli_error(cli, "cannot derive this host's reservation key %s: "
		    "%s (run as root, or give --key)", spec,
		    *target_key_error() != '\0' ? target_key_error() :
		    "havend has no node id yet");
		cli->key = 0;
		rc = CLI_EXIT_FAILURE;
	}
	message_free(&r->base);
	return rc;
}
