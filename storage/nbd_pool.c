/*
 * The NBD server's request buffers (storage/nbd.c): the large ones are
 * kept for the next request of the same size class (a power of 2), up to
 * NBD_POOL_BYTES in all, instead of going back to the allocator, which
 * returns them to the kernel and then faults every page of the next one in
 * again (256 faults per MiB). One pool per process; the worker and havenctl
 * are single-threaded.
 */
#include <stdlib.h>

#include "storage.h"

#define NBD_POOL_MIN		(64U << 10)
#define NBD_POOL_BYTES		(16U << 20)	/* a worker stays small */

struct nbd_pooled {
	struct nbd_pooled	*next;
};
static struct nbd_pooled	*nbd_pool[32];
static size_t			 nbd_pool_bytes;

static unsigned
nbd_pool_class(size_t len)
{
	unsigned	c = 0;

	while (((size_t)1 << c) < len)
		c++;
	return c;
}

void *
nbd_buf_get(size_t len)
{
	unsigned		 c = nbd_pool_class(len);
	struct nbd_pooled	*p;

	if (len < NBD_POOL_MIN || c >= 32)
		return malloc(len);
	if ((p = nbd_pool[c]) != NULL) {
		nbd_pool[c] = p->next;
		nbd_pool_bytes -= (size_t)1 << c;
		return p;
	}
	return malloc((size_t)1 << c);
}

void
nbd_buf_put(void *buf, size_t len)
{
	unsigned		 c = nbd_pool_class(len);
	struct nbd_pooled	*p = buf;

	if (buf == NULL || len < NBD_POOL_MIN || c >= 32 ||
	    nbd_pool_bytes + ((size_t)1 << c) > NBD_POOL_BYTES) {
		free(buf);
		return;
	}
	p->next = nbd_pool[c];
	nbd_pool[c] = p;
	nbd_pool_bytes += (size_t)1 << c;
}

