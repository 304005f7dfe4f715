/*
 * Unit tests of the NBD server, in process: a server on a temporary socket
 * exports a file (through a spy device that records flags and can hold
 * write completions) and a hand-rolled client drives it while the test
 * pumps the event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common.h"
#include "storage.h"

#define DISK_SIZE	(4U << 20)
#define OPT_MAGIC	0x49484156454F5054ULL
#define REP_MAGIC	0x0003e889045565a9ULL
#define REQ_MAGIC	0x25609513U
#define REPLY_MAGIC	0x67446698U
#define ERR_UNSUP	0x80000001U
#define ERR_UNKNOWN	0x80000006U

enum { CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE,
    CMD_WRITE_ZEROES };

/* The spy: forwards to the file, records, and can hold write completions. */
struct held {
	blockdev_cb	 cb;
	void		*arg;
	int		 result;
};

struct spy {
	struct blockdev	 dev;
	struct blockdev	*file;
	unsigned	 last_write_flags;
	unsigned	 flushes;
	int		 hold;
	struct held	 held[256];
	unsigned	 nheld;
	char		 log[256];
};

struct fixture {
	struct event_base	*base;
	struct blockdev		*file;
	struct spy		 spy;
	struct nbd_server	*server;
	char			 path[64];
	char			 sock[64];
};

static struct fixture	*fx;

static void
spy_note(struct spy *s, char c)
{
	size_t	n = strlen(s->log);

	if (n + 1 < sizeof s->log)
		s->log[n] = c;
}

static void
spy_read(struct blockdev *dev, uint64_t offset, void *buf, size_t len,
    blockdev_cb cb, void *arg)
{
	struct spy	*s = dev->impl;

	blockdev_read(s->file, offset, buf, len, cb, arg);
}

static void
spy_write_done(int result, void *arg)
{
	struct held	*h = arg;
	struct spy	*s = &fx->spy;

	if (s->hold) {
		s->held[s->nheld].cb = h->cb;
		s->held[s->nheld].arg = h->arg;
		s->held[s->nheld].result = result;
		s->nheld++;
	} else {
		spy_note(s, 'w');
		h->cb(result, h->arg);
	}
	free(h);
}

static void
spy_write(struct blockdev *dev, uint64_t offset, const void *buf, size_t len,
    unsigned flags, blockdev_cb cb, void *arg)
{
	struct spy	*s = dev->impl;
	struct held	*h = calloc(1, sizeof *h);

	assert_non_null(h);
	h->cb = cb;
	h->arg = arg;
	s->last_write_flags = flags;
	spy_note(s, 'W');
	blockdev_write(s->file, offset, buf, len, flags, spy_write_done, h);
}

static void
spy_flush(struct blockdev *dev, blockdev_cb cb, void *arg)
{
	struct spy	*s = dev->impl;

	s->flushes++;
	spy_note(s, 'F');
	blockdev_flush(s->file, cb, arg);
}

static void
spy_zero(struct blockdev *dev, uint64_t offset, uint64_t len, unsigned flags,
    blockdev_cb cb, void *arg)
{
	struct spy	*s = dev->impl;
	struct held	*h = calloc(1, sizeof *h);

	assert_non_null(h);
	h->cb = cb;
	h->arg = arg;
	s->last_write_flags = flags;
	spy_note(s, 'Z');
	blockdev_zero(s->file, offset, len, flags, spy_write_done, h);
}

static void
spy_close(struct blockdev *dev)
{
	blockdev_fini(dev);
}

static const struct blockdev_ops spy_ops = {
	.kind = "spy",
	.read = spy_read,
	.write = spy_write,
	.flush = spy_flush,
	.zero = spy_zero,
	.close = spy_close,
};

static void
spy_release(struct spy *s)
{
	unsigned	i, n = s->nheld;

	s->hold = 0;
	s->nheld = 0;
	for (i = 0; i < n; i++) {
		spy_note(s, 'w');
		s->held[i].cb(s->held[i].result, s->held[i].arg);
	}
}

static void
pump(void)
{
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

/* Run the loop for about ms milliseconds. */
static void
pump_for(int ms)
{
	struct timespec	ts = { 0, 1000000 };
	int		i;

	for (i = 0; i < ms; i++) {
		pump();
		nanosleep(&ts, NULL);
	}
}

static int
setup(void **state)
{
	int	error = 0;

	fx = calloc(1, sizeof *fx);
	snprintf(fx->path, sizeof fx->path, "/tmp/haven-nbd-%ld.img",
	    (long)getpid());
	snprintf(fx->sock, sizeof fx->sock, "/tmp/haven-nbd-%ld.sock",
	    (long)getpid());
	unlink(fx->path);
	fx->base = event_base_new();
	fx->file = file_create(fx->base, fx->path, DISK_SIZE, &error);
	assert_non_null(fx->file);
	assert_int_equal(blockdev_init(&fx->spy.dev, &spy_ops, fx->base, "spy"),
	    0);
	fx->spy.dev.impl = &fx->spy;
	fx->spy.dev.size = DISK_SIZE;
	fx->spy.dev.block_size = 512;
	fx->spy.file = fx->file;
	fx->server = nbd_server_new(fx->base, fx->sock, &error);
	assert_non_null(fx->server);
	assert_int_equal(nbd_server_add_export(fx->server, "disk", &fx->spy.dev,
	    0), 0);
	assert_int_equal(nbd_server_add_export(fx->server, "ro", fx->file, 1),
	    0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	nbd_server_free(fx->server);
	/* Let late completions of hung-up clients run, then close. */
	event_base_loop(fx->base, 0);
	blockdev_close(&fx->spy.dev);
	blockdev_close(fx->file);
	event_base_free(fx->base);
	unlink(fx->path);
	unlink(fx->sock);
	free(fx);
	return 0;
}

/* --- the client --------------------------------------------------------- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int
cl_connect(void)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, fx->sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	return fd;
}

static void
cl_send(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;
	int		 spins = 0;

	while (len > 0) {
		n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n == -1 && errno == EAGAIN);
		assert_true(++spins < 5000);
		pump_for(1);
	}
}

/* 0, or -1 on EOF (the server hung up). Fails the test after ~5 s. */
static int
cl_recv(int fd, void *buf, size_t len)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	uint8_t		*p = buf;
	ssize_t		 n;
	int		 spins = 0;

	while (len > 0) {
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return -1;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_true(++spins < 5000);
		pump();
		poll(&pfd, 1, 1);
	}
	return 0;
}

static void
cl_option(int fd, uint32_t option, const void *data, uint32_t len)
{
	uint8_t	h[16];

	put64(h, OPT_MAGIC);
	put32(h + 8, option);
	put32(h + 12, len);
	cl_send(fd, h, sizeof h);
	if (len > 0)
		cl_send(fd, data, len);
}

/* One option reply: its type; data (up to 256 bytes) and length. */
static uint32_t
cl_option_reply(int fd, uint32_t option, uint8_t *data, uint32_t *len)
{
	uint8_t	h[20];

	assert_int_equal(cl_recv(fd, h, sizeof h), 0);
	assert_true(get64(h) == REP_MAGIC);
	assert_int_equal(get32(h + 8), option);
	*len = get32(h + 16);
	assert_true(*len <= 256);
	assert_int_equal(cl_recv(fd, data, *len), 0);
	return get32(h + 12);
}

static void
cl_greeting(int fd, uint32_t client_flags)
{
	uint8_t	g[18], f[4];

	assert_int_equal(cl_recv(fd, g, sizeof g), 0);
	assert_memory_equal(g, "NBDMAGICIHAVEOPT", 16);
	assert_int_equal(g[16] << 8 | g[17], 3);
	put32(f, client_flags);
	cl_send(fd, f, sizeof f);
}

static void
cl_info_request(uint8_t *buf, uint32_t *len, const char *name, int want_name)
{
	size_t	n = strlen(name);

	put32(buf, (uint32_t)n);
	memcpy(buf + 4, name, n);
	put16(buf + 4 + n, want_name ? 2 : 1);
	put16(buf + 6 + n, 3);
	put16(buf + 8 + n, 1);
	*len = (uint32_t)(want_name ? 10 + n : 8 + n);
}

/* Connect and GO to export name; returns the socket. */
static int
cl_open(const char *name, uint16_t *flags)
{
	uint8_t		req[64], data[256];
	uint32_t	len, type;
	int		fd = cl_connect();

	cl_greeting(fd, 3);
	cl_info_request(req, &len, name, 0);
	cl_option(fd, 7, req, len);
	while ((type = cl_option_reply(fd, 7, data, &len)) == 3) {
		if (data[0] == 0 && data[1] == 0 && flags != NULL)
			*flags = (uint16_t)(data[10] << 8 | data[11]);
	}
	assert_int_equal(type, 1);
	return fd;
}

static void
cl_request(int fd, uint16_t type, uint16_t flags, uint64_t cookie,
    uint64_t offset, uint32_t len, const void *data)
{
	uint8_t	h[28];

	put32(h, REQ_MAGIC);
	put16(h + 4, flags);
	put16(h + 6, type);
	put64(h + 8, cookie);
	put64(h + 16, offset);
	put32(h + 24, len);
	cl_send(fd, h, sizeof h);
	if (type == CMD_WRITE && data != NULL)
		cl_send(fd, data, len);
}

/* A simple reply's error; *cookie is set. -1 on EOF. */
static int
cl_reply(int fd, uint64_t *cookie)
{
	uint8_t	h[16];

	if (cl_recv(fd, h, sizeof h) == -1)
		return -1;
	assert_int_equal(get32(h), REPLY_MAGIC);
	*cookie = get64(h + 8);
	return (int)get32(h + 4);
}

/* One request and its reply, in lockstep. Returns the NBD error. */
static int
cl_do(int fd, uint16_t type, uint16_t flags, uint64_t offset, uint32_t len,
    void *data)
{
	static uint64_t	next = 1000;
	uint64_t	cookie = ++next, got;
	int		error;

	cl_request(fd, type, flags, cookie, offset, len, data);
	error = cl_reply(fd, &got);
	assert_int_not_equal(error, -1);
	assert_true(got == cookie);
	if (type == CMD_READ && error == 0)
		assert_int_equal(cl_recv(fd, data, len), 0);
	return error;
}

/* The server hung up on us. */
static void
cl_expect_eof(int fd)
{
	uint8_t	buf[256];
	int	i;

	for (i = 0; i < 100; i++) {
		if (cl_recv(fd, buf, 1) == -1)
			return;
	}
	fail_msg("server kept talking instead of hanging up");
}

/* --- tests -------------------------------------------------------------- */

static void
test_options(void **state)
{
	uint8_t		req[64], data[1024], zeroes[124] = { 0 };
	uint32_t	len;
	int		fd = cl_connect();

	cl_greeting(fd, 3);
	/* Unknown option with data: ERR_UNSUP, and the stream stays in step. */
	cl_option(fd, 99, "0123456789", 10);
	assert_int_equal(cl_option_reply(fd, 99, data, &len), ERR_UNSUP);
	cl_option(fd, 8, NULL, 0);	/* STRUCTURED_REPLY */
	assert_int_equal(cl_option_reply(fd, 8, data, &len), ERR_UNSUP);
	cl_option(fd, 5, NULL, 0);	/* STARTTLS */
	assert_int_equal(cl_option_reply(fd, 5, data, &len), ERR_UNSUP);
	/* LIST. */
	cl_option(fd, 3, NULL, 0);
	assert_int_equal(cl_option_reply(fd, 3, data, &len), 2);
	assert_int_equal(len, 8);
	assert_memory_equal(data + 4, "disk", 4);
	assert_int_equal(cl_option_reply(fd, 3, data, &len), 2);
	assert_memory_equal(data + 4, "ro", 2);
	assert_int_equal(cl_option_reply(fd, 3, data, &len), 1);
	/* INFO on an unknown export. */
	cl_info_request(req, &len, "nope", 0);
	cl_option(fd, 6, req, len);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), ERR_UNKNOWN);
	/* INFO with NAME: EXPORT first, NAME, BLOCK_SIZE, ACK. */
	cl_info_request(req, &len, "disk", 1);
	cl_option(fd, 6, req, len);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), 3);
	assert_int_equal(len, 12);
	assert_int_equal(data[1], 0);
	assert_true(get64(data + 2) == DISK_SIZE);
	assert_int_equal(data[10] << 8 | data[11], 0x16d);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), 3);
	assert_int_equal(data[1], 1);
	assert_memory_equal(data + 2, "disk", 4);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), 3);
	assert_int_equal(len, 14);
	assert_int_equal(data[1], 3);
	assert_int_equal(get32(data + 2), 512);
	assert_int_equal(get32(data + 6), 4096);
	assert_int_equal(get32(data + 10), 32 << 20);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), 1);
	/* A malformed INFO. */
	cl_option(fd, 6, "\0\0\0\x09xx", 6);
	assert_int_equal(cl_option_reply(fd, 6, data, &len), 0x80000003U);
	/* ABORT: ACK, then the server hangs up. */
	cl_option(fd, 2, NULL, 0);
	assert_int_equal(cl_option_reply(fd, 2, data, &len), 1);
	cl_expect_eof(fd);
	close(fd);

	/* An oversized option: dropped. */
	fd = cl_connect();
	cl_greeting(fd, 3);
	put64(req, OPT_MAGIC);
	put32(req + 8, 99);
	put32(req + 12, 5000);
	cl_send(fd, req, 16);
	cl_expect_eof(fd);
	close(fd);

	/* Unknown client flags: dropped. */
	fd = cl_connect();
	cl_greeting(fd, 0x11);
	cl_expect_eof(fd);
	close(fd);

	/* EXPORT_NAME without NO_ZEROES: size, flags, 124 zeroes; it works. */
	fd = cl_connect();
	cl_greeting(fd, 1);
	cl_option(fd, 1, "ro", 2);
	assert_int_equal(cl_recv(fd, data, 134), 0);
	assert_true(get64(data) == DISK_SIZE);
	assert_int_equal(data[8] << 8 | data[9], 0x16f);
	assert_memory_equal(data + 10, zeroes, 124);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 512, data), 0);
	cl_request(fd, CMD_DISC, 0, 1, 0, 0, NULL);
	cl_expect_eof(fd);
	close(fd);

	/* EXPORT_NAME of an unknown export: dropped. */
	fd = cl_connect();
	cl_greeting(fd, 3);
	cl_option(fd, 1, "nope", 4);
	cl_expect_eof(fd);
	close(fd);
}

static void
test_io(void **state)
{
	static uint8_t	buf[1 << 20], back[1 << 20];
	uint8_t		zero[65536] = { 0 };
	uint64_t	cookie, seen = 0;
	uint16_t	flags = 0;
	unsigned	i, flushes;
	int		fd = cl_open("disk", &flags), error;

	assert_int_equal(flags, 0x16d);
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
	/* WRITE, READ back, and the file holds it too. */
	assert_int_equal(cl_do(fd, CMD_WRITE, 0, 65536, sizeof buf, buf), 0);
	assert_int_equal(fx->spy.last_write_flags, 0);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 65536, sizeof back, back), 0);
	assert_memory_equal(buf, back, sizeof buf);
	assert_int_equal(blockdev_read_sync(fx->file, 65536, back, 4096), 0);
	assert_memory_equal(buf, back, 4096);
	/* FUA reaches the device. */
	assert_int_equal(cl_do(fd, CMD_WRITE, 1, 0, 4096, buf), 0);
	assert_int_equal(fx->spy.last_write_flags, BLOCKDEV_FUA);
	/* FLUSH reaches the device. */
	flushes = fx->spy.flushes;
	assert_int_equal(cl_do(fd, CMD_FLUSH, 0, 0, 0, NULL), 0);
	assert_int_equal(fx->spy.flushes, flushes + 1);
	/* WRITE_ZEROES (with FUA|NO_HOLE, as qemu-io sends) reads back 0. */
	assert_int_equal(cl_do(fd, CMD_WRITE_ZEROES, 3, 65536 + 4096, 65536,
	    NULL), 0);
	assert_int_equal(fx->spy.last_write_flags, BLOCKDEV_FUA);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 65536, 3 * 65536, back), 0);
	assert_memory_equal(back, buf, 4096);
	assert_memory_equal(back + 4096, zero, 65536);
	assert_memory_equal(back + 4096 + 65536, buf + 4096 + 65536,
	    2 * 65536 - 4096);
	/* TRIM succeeds and leaves the rest alone. */
	assert_int_equal(cl_do(fd, CMD_TRIM, 0, 65536 + 4096, 4096, NULL), 0);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 65536 + 65536 * 2, 4096, back),
	    0);
	assert_memory_equal(back, buf + 2 * 65536, 4096);

	/* Pipelined: 40 writes in one go; every cookie answered once. */
	for (i = 0; i < 40; i++)
		cl_request(fd, CMD_WRITE, 0, i, (uint64_t)i * 8192, 8192,
		    buf + i * 8192);
	for (i = 0; i < 40; i++) {
		error = cl_reply(fd, &cookie);
		assert_int_equal(error, 0);
		assert_true(cookie < 40 && !(seen & (1ULL << cookie)));
		seen |= 1ULL << cookie;
	}
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 40 * 8192, back), 0);
	assert_memory_equal(buf, back, 40 * 8192);
	cl_request(fd, CMD_DISC, 0, 0, 0, 0, NULL);
	cl_expect_eof(fd);
	close(fd);
	pump_for(5);
	assert_int_equal(nbd_server_busy(fx->server), 0);
}

static void
test_errors(void **state)
{
	uint8_t		buf[8192] = { 0 };
	uint16_t	flags = 0;
	int		fd = cl_open("disk", NULL);

	/* Misaligned, past the end, too big, unknown type, unknown flag. */
	assert_int_equal(cl_do(fd, CMD_READ, 0, 100, 512, buf), 22);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 100, buf), 22);
	assert_int_equal(cl_do(fd, CMD_READ, 0, DISK_SIZE - 512, 1024, buf),
	    22);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 64 << 20, buf), 22);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 0, buf), 22);
	assert_int_equal(cl_do(fd, CMD_TRIM, 0, DISK_SIZE, 512, NULL), 22);
	assert_int_equal(cl_do(fd, CMD_WRITE_ZEROES, 0, DISK_SIZE, 512, NULL),
	    28);
	assert_int_equal(cl_do(fd, CMD_CACHE, 0, 0, 512, NULL), 22);
	assert_int_equal(cl_do(fd, 42, 0, 0, 512, NULL), 22);
	assert_int_equal(cl_do(fd, CMD_READ, 0x10, 0, 512, buf), 22);
	assert_int_equal(cl_do(fd, CMD_WRITE, 2, 0, 512, buf), 22);
	/* Refused writes: their payload is skipped, the stream stays in
	 * step (the next request works). */
	assert_int_equal(cl_do(fd, CMD_WRITE, 0, DISK_SIZE - 4096, 8192, buf),
	    28);
	assert_int_equal(cl_do(fd, CMD_WRITE, 0, 4, 4096, buf), 22);
	assert_int_equal(cl_do(fd, CMD_WRITE, 0, 0, 1000, buf), 22);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 512, buf), 0);
	/* A bad magic: the server hangs up. */
	cl_send(fd, "\x25\x60\x95\x14", 4);
	cl_send(fd, buf, 24);
	cl_expect_eof(fd);
	close(fd);

	/* Read-only: reads work, every kind of write is EPERM. */
	fd = cl_open("ro", &flags);
	assert_int_equal(flags, 0x16f);
	assert_int_equal(cl_do(fd, CMD_READ, 0, 0, 4096, buf), 0);
	assert_int_equal(cl_do(fd, CMD_WRITE, 0, 0, 4096, buf), 1);
	assert_int_equal(cl_do(fd, CMD_WRITE_ZEROES, 0, 0, 4096, NULL), 1);
	assert_int_equal(cl_do(fd, CMD_TRIM, 0, 0, 4096, NULL), 1);
	assert_int_equal(cl_do(fd, CMD_FLUSH, 0, 0, 0, NULL), 0);
	close(fd);
	pump_for(5);
}

/* A FLUSH does not reach the device before the writes sent ahead of it
 * have completed. */
static void
test_flush_waits_for_writes(void **state)
{
	uint8_t		buf[4096];
	uint64_t	cookie;
	int		fd = cl_open("disk", NULL);

	memset(buf, 0x5a, sizeof buf);
	fx->spy.log[0] = '\0';
	fx->spy.hold = 1;
	cl_request(fd, CMD_WRITE, 0, 1, 0, sizeof buf, buf);
	cl_request(fd, CMD_WRITE, 0, 2, 8192, sizeof buf, buf);
	cl_request(fd, CMD_FLUSH, 0, 3, 0, 0, NULL);
	pump_for(20);
	assert_string_equal(fx->spy.log, "WW");
	assert_int_equal(fx->spy.nheld, 2);
	spy_release(&fx->spy);
	assert_int_equal(cl_reply(fd, &cookie), 0);
	assert_true(cookie == 1);
	assert_int_equal(cl_reply(fd, &cookie), 0);
	assert_true(cookie == 2);
	assert_int_equal(cl_reply(fd, &cookie), 0);
	assert_true(cookie == 3);
	assert_string_equal(fx->spy.log, "WWwwF");
	close(fd);
	pump_for(5);
}

/* A request the device has not answered shows as the oldest, from its
 * submission, until it has; none in flight: 0. */
static void
test_oldest(void **state)
{
	uint8_t		buf[4096];
	uint64_t	cookie, before, oldest;
	int		fd = cl_open("disk", NULL);

	memset(buf, 0x33, sizeof buf);
	assert_int_equal(nbd_server_oldest(fx->server), 0);
	fx->spy.hold = 1;
	before = now_us();
	cl_request(fd, CMD_WRITE, 0, 1, 0, sizeof buf, buf);
	pump_for(20);
	cl_request(fd, CMD_WRITE, 0, 2, 8192, sizeof buf, buf);
	pump_for(20);
	assert_int_equal(fx->spy.nheld, 2);
	oldest = nbd_server_oldest(fx->server);
	assert_true(oldest >= before && oldest <= now_us());
	/* Still the first while both are held, however long. */
	pump_for(30);
	assert_true(nbd_server_oldest(fx->server) == oldest);
	spy_release(&fx->spy);
	assert_int_equal(cl_reply(fd, &cookie), 0);
	assert_int_equal(cl_reply(fd, &cookie), 0);
	assert_int_equal(nbd_server_oldest(fx->server), 0);
	close(fd);
	pump_for(5);
}

static void
test_two_clients(void **state)
{
	uint8_t	a[4096], b[4096], back[4096];
	int	one = cl_open("disk", NULL), two = cl_open("disk", NULL);

	memset(a, 0xa1, sizeof a);
	memset(b, 0xb2, sizeof b);
	assert_int_equal(cl_do(one, CMD_WRITE, 0, 1 << 20, sizeof a, a), 0);
	assert_int_equal(cl_do(two, CMD_READ, 0, 1 << 20, sizeof back, back),
	    0);
	assert_memory_equal(a, back, sizeof a);
	assert_int_equal(cl_do(two, CMD_WRITE, 1, 1 << 20, sizeof b, b), 0);
	assert_int_equal(cl_do(two, CMD_FLUSH, 0, 0, 0, NULL), 0);
	assert_int_equal(cl_do(one, CMD_READ, 0, 1 << 20, sizeof back, back),
	    0);
	assert_memory_equal(b, back, sizeof b);
	cl_request(one, CMD_DISC, 0, 0, 0, 0, NULL);
	cl_request(two, CMD_DISC, 0, 0, 0, 0, NULL);
	cl_expect_eof(one);
	cl_expect_eof(two);
	close(one);
	close(two);
}

/* Hang up with requests at the device, and with requests still queued:
 * the server frees the client when they complete (ASan sees the rest). */
static void
test_disconnect_in_flight(void **state)
{
	static uint8_t	buf[1 << 20];
	unsigned	i;
	int		fd = cl_open("disk", NULL);

	fx->spy.hold = 1;
	for (i = 0; i < 8; i++)
		cl_request(fd, CMD_WRITE, 0, i, (uint64_t)i << 16, 65536, buf);
	cl_request(fd, CMD_FLUSH, 0, 100, 0, 0, NULL);
	cl_request(fd, CMD_READ, 0, 101, 0, 65536, NULL);
	pump_for(20);
	assert_int_equal(fx->spy.nheld, 8);
	assert_int_equal(nbd_server_busy(fx->server), 9);
	close(fd);
	pump_for(20);
	spy_release(&fx->spy);
	pump_for(5);
	assert_int_equal(nbd_server_busy(fx->server), 0);

	/* Half a write payload, then gone. */
	fd = cl_open("disk", NULL);
	cl_request(fd, CMD_WRITE, 0, 1, 0, sizeof buf, NULL);
	cl_send(fd, buf, 1000);
	for (i = 0; i < 20; i++)
		cl_request(fd, CMD_READ, 0, 1, 0, 65536, NULL);
	pump_for(5);
	close(fd);
	pump_for(5);

	/* Many requests and gone at once; the server is freed meanwhile
	 * (teardown) with completions still to come. */
	fd = cl_open("disk", NULL);
	for (i = 0; i < 30; i++)
		cl_request(fd, CMD_READ, 0, i, 0, sizeof buf, NULL);
	close(fd);
	pump();
}

/* A client that sends and never reads is held to the in-flight bound. */
static void
test_bounds(void **state)
{
	uint64_t	cookie;
	uint8_t		*data = malloc(1 << 20);
	unsigned	i;
	int		fd = cl_open("disk", NULL);

	for (i = 0; i < 200; i++)
		cl_request(fd, CMD_READ, 0, i, 0, 1 << 20, NULL);
	pump_for(50);
	assert_true(nbd_server_busy(fx->server) <= 64);
	for (i = 0; i < 200; i++) {
		assert_int_equal(cl_reply(fd, &cookie), 0);
		assert_int_equal(cl_recv(fd, data, 1 << 20), 0);
	}
	free(data);
	close(fd);
	pump_for(5);
}

/* A live socket is not taken over; a stale one is; the mode is 0600. */
static void
test_socket(void **state)
{
	struct nbd_server	*s;
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			 path[80];
	int			 error = 0, fd;

	assert_int_equal(stat(fx->sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_null(nbd_server_new(fx->base, fx->sock, &error));
	assert_int_equal(error, -EADDRINUSE);

	snprintf(path, sizeof path, "%s.stale", fx->sock);
	unlink(path);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	close(fd);
	s = nbd_server_new(fx->base, path, &error);
	assert_non_null(s);
	nbd_server_free(s);
	assert_int_equal(stat(path, &st), -1);

	/* A regular file in the way is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_null(nbd_server_new(fx->base, path, &error));
	assert_int_equal(stat(path, &st), 0);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_waits_for_writes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_clients, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_in_flight,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
