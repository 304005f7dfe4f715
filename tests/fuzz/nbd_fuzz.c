/*
 * libFuzzer harness for the NBD server's parsers: the fuzzer's bytes are a
 * client's stream (handshake, options, requests) written into a socketpair
 * served by a server exporting a small RAM disk; the loop is drained until
 * the server hangs up.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "storage.h"

#define RAM_SIZE	(1U << 20)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t	ram[RAM_SIZE];

static void
ram_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	memcpy(buf, ram + offset, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
ram_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	memcpy(ram + offset, buf, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
ram_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
ram_zero(struct blockdev *dev, uint64_t offset, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	memset(ram + offset, 0, len);
	blockdev_complete_later(dev, cb, arg, 0);
}

static void
ram_close(struct blockdev *dev)
{
	blockdev_fini(dev);
}

static const struct blockdev_ops ram_ops = {
	.kind = "ram",
	.read = ram_read,
	.write = ram_write,
	.flush = ram_flush,
	.zero = ram_zero,
	.close = ram_close,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base	*base;
	static struct blockdev		 dev;
	struct nbd_server		*server;
	struct pollfd			 pfd;
	uint8_t				 sink[65536];
	size_t				 sent = 0;
	ssize_t				 n;
	int				 sv[2], error, open = 1, i;

	if (base == NULL) {
		base = event_base_new();
		blockdev_init(&dev, &ram_ops, base, "ram");
		dev.size = RAM_SIZE;
		dev.block_size = 512;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return 0;
	server = nbd_server_new_fd(base, -1, &error);
	nbd_server_add_export(server, "disk", &dev, 0);
	nbd_server_add_export(server, "ro", &dev, 1);
	nbd_server_add_client(server, sv[0]);
	/* Feed the stream, read whatever comes back, until the server hangs
	 * up or has nothing left to do. */
	for (i = 0; i < 10000 && open; i++) {
		if (sent < size) {
			n = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n == -1 && errno != EAGAIN)
				sent = size;
			if (sent == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((n = recv(sv[1], sink, sizeof sink, 0)) > 0)
			;
		if (n == 0)
			open = 0;
		pfd.fd = sv[1];
		pfd.events = POLLIN;
		if (sent == size && open && nbd_server_busy(server) == 0 &&
		    poll(&pfd, 1, 0) == 0 && i > 100)
			break;
	}
	close(sv[1]);
	nbd_server_free(server);
	event_base_loop(base, 0);
	return 0;
}
