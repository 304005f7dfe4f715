/*
 * net.c: the guest's TCP service. Each line a client sends is echoed back, except the
 * commands "count" (the tick counter, which lives only in RAM: it goes on after a live or
 * quick migration and restarts after a cold boot), "boot", "mac" and "reach A.B.C.D" (can
 * this guest open a TCP connection to that address's service: the lab's VLAN test asks a
 * guest about another). Non-blocking, on the service's poll loop; a client that does not
 * read its answers is simply not read from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service.h"

#define NET_CLIENTS_MAX	16
#define NET_LINE_MAX	1024			/* a longer line is echoed in pieces */
#define NET_OUT_MAX	(4 * NET_LINE_MAX)
#define NET_REPLY_MAX	(NET_LINE_MAX + 64)	/* room one answer may need */
#define NET_MAC_MAX	32
/* "reach": how long the connect may take. The service's loop waits that long (the only
 * wait in it): a test's command, asked once in a while, not a client's. */
#define NET_REACH_MS	1500

struct net_client {
	int	fd;
	size_t	in_length;
	size_t	out_length;
	char	in[NET_LINE_MAX];
	char	out[NET_OUT_MAX];
};

static struct {
	int			listen_fd;
	uint64_t		boot_id;
	char			interface[SERVICE_INTERFACE_MAX];
	unsigned		port;
	struct net_client	clients[NET_CLIENTS_MAX];
	int			polled[NET_CLIENTS_MAX];	/* pollfd i + 1 -> client */
	int			polled_count;
} net = { .listen_fd = -1 };

/* The interface's MAC as the kernel reports it, "unknown" if it cannot be read. */
static void
net_mac(char *mac, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(mac, size, "unknown");
	snprintf(path, sizeof path, "/sys/class/net/%s/address", net.interface);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(mac, (int)size, f) == NULL)
		snprintf(mac, size, "unknown");
	mac[strcspn(mac, "\n")] = '\0';
	fclose(f);
}

int
net_listen(const struct service_config *config, uint64_t boot_id)
{
	struct sockaddr_in address = { .sin_family = AF_INET };
	int one = 1, fd;

	net.boot_id = boot_id;
	net.port = config->port;
	snprintf(net.interface, sizeof net.interface, "%s", config->interface);
	for (int i = 0; i < NET_CLIENTS_MAX; i++)
		net.clients[i].fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	address.sin_port = htons((uint16_t)config->port);
	address.sin_addr.s_addr = htonl(INADDR_ANY);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&address, sizeof address) == -1 ||
	    listen(fd, NET_CLIENTS_MAX) == -1)
		goto fail;
	net.listen_fd = fd;
	return 0;

fail:
	console_line("net error op=listen port=%u errno=%d (%s)", config->port, errno,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* One line: "net if=<name> mac=<mac> ipv4=<address>/<prefix> port=<port>". */
void
net_report(void)
{
	char mac[NET_MAC_MAX], ipv4[INET_ADDRSTRLEN + 4] = "none";
	struct ifaddrs *list, *entry;

	net_mac(mac, sizeof mac);
	if (getifaddrs(&list) == 0) {
		for (entry = list; entry != NULL; entry = entry->ifa_next) {
			char text[INET_ADDRSTRLEN];
			uint32_t mask;

			if (entry->ifa_addr == NULL || entry->ifa_addr->sa_family != AF_INET ||
			    strcmp(entry->ifa_name, net.interface) != 0)
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)entry->ifa_addr)->sin_addr,
			    text, sizeof text);
			mask = entry->ifa_netmask == NULL ? 0 : ntohl(
			    ((struct sockaddr_in *)entry->ifa_netmask)->sin_addr.s_addr);
			snprintf(ipv4, sizeof ipv4, "%s/%d", text, __builtin_popcount(mask));
			break;
		}
		freeifaddrs(list);
	}
	console_line("net if=%s mac=%s ipv4=%s port=%u", net.interface, mac, ipv4, net.port);
}

/* Whether a TCP connect to address, on the service's own port, completes within
 * NET_REACH_MS: "yes", "no" or "bad-address". */
static const char *
net_reach(const char *address)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct pollfd pfd = { .events = POLLOUT };
	socklen_t length = sizeof(int);
	int error = -1, ready;

	peer.sin_port = htons((uint16_t)net.port);
	if (inet_pton(AF_INET, address, &peer.sin_addr) != 1)
		return "bad-address";
	pfd.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pfd.fd == -1)
		return "no";
	if (connect(pfd.fd, (struct sockaddr *)&peer, sizeof peer) == 0)
		error = 0;
	else if (errno == EINPROGRESS) {
		do
			ready = poll(&pfd, 1, NET_REACH_MS);
		while (ready == -1 && errno == EINTR);
		if (ready == 1 && getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &error, &length) == -1)
			error = -1;
	}
	close(pfd.fd);
	return error == 0 ? "yes" : "no";
}

static void
net_close(struct net_client *client)
{
	close(client->fd);
	client->fd = -1;
	client->in_length = 0;
	client->out_length = 0;
}

/* Answer one line (without its "\n"; a piece of an overlong line has none). */
static void
net_answer(struct net_client *client, const char *line, size_t length, int newline,
    uint64_t tick)
{
	char *out = client->out + client->out_length, mac[NET_MAC_MAX];
	char address[INET_ADDRSTRLEN];
	size_t room = sizeof client->out - client->out_length, command = length;
	int n = 0;

	if (command > 0 && line[command - 1] == '\r')
		command--;
	if (newline && command == 5 && memcmp(line, "count", 5) == 0)
		n = snprintf(out, room, "count=%llu boot=%016llx\n", (unsigned long long)tick,
		    (unsigned long long)net.boot_id);
	else if (newline && command == 4 && memcmp(line, "boot", 4) == 0)
		n = snprintf(out, room, "boot=%016llx\n", (unsigned long long)net.boot_id);
	else if (newline && command == 3 && memcmp(line, "mac", 3) == 0) {
		net_mac(mac, sizeof mac);
		n = snprintf(out, room, "mac=%s\n", mac);
	} else if (newline && command > 6 && command - 6 < sizeof address &&
	    memcmp(line, "reach ", 6) == 0) {
		snprintf(address, sizeof address, "%.*s", (int)(command - 6), line + 6);
		n = snprintf(out, room, "reach=%s\n", net_reach(address));
	} else {
		memcpy(out, line, length);
		if (newline)
			out[length] = '\n';
		n = (int)length + newline;
	}
	client->out_length += (size_t)n;
}

/* Answer every complete line for which the output buffer has room. */
static void
net_process(struct net_client *client, uint64_t tick)
{
	size_t start = 0, length;
	char *newline;

	while (start < client->in_length &&
	    sizeof client->out - client->out_length >= NET_REPLY_MAX) {
		newline = memchr(client->in + start, '\n', client->in_length - start);
		if (newline != NULL) {
			length = (size_t)(newline - (client->in + start));
			net_answer(client, client->in + start, length, 1, tick);
			start += length + 1;
		} else if (start == 0 && client->in_length == sizeof client->in) {
			net_answer(client, client->in, client->in_length, 0, tick);
			start = client->in_length;
		} else
			break;
	}
	memmove(client->in, client->in + start, client->in_length - start);
	client->in_length -= start;
}

/* Send what is buffered; -1 if the client is gone. */
static int
net_flush(struct net_client *client)
{
	ssize_t n;

	while (client->out_length > 0) {
		n = send(client->fd, client->out, client->out_length, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		memmove(client->out, client->out + n, client->out_length - (size_t)n);
		client->out_length -= (size_t)n;
	}
	return 0;
}

/* Read what the client sent; -1 if it is gone (EOF or error). */
static int
net_read(struct net_client *client)
{
	ssize_t n;

	do
		n = recv(client->fd, client->in + client->in_length,
		    sizeof client->in - client->in_length, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	client->in_length += (size_t)n;
	return 0;
}

static void
net_accept(void)
{
	int fd;

	fd = accept4(net.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;
	for (int i = 0; i < NET_CLIENTS_MAX; i++) {
		if (net.clients[i].fd == -1) {
			net.clients[i].fd = fd;
			return;
		}
	}
	close(fd);	/* full: the client sees its connection closed */
}

/* Fill fds (room for at least 1 + NET_CLIENTS_MAX) for poll(); returns how many. */
int
net_poll_fds(struct pollfd *fds, int max)
{
	int count = 0;

	net.polled_count = 0;
	if (net.listen_fd == -1 || max < 1 + NET_CLIENTS_MAX)
		return 0;
	fds[count++] = (struct pollfd){ .fd = net.listen_fd, .events = POLLIN };
	for (int i = 0; i < NET_CLIENTS_MAX; i++) {
		struct net_client *client = &net.clients[i];
		short events = 0;

		if (client->fd == -1)
			continue;
		if (client->in_length < sizeof client->in)
			events |= POLLIN;
		if (client->out_length > 0)
			events |= POLLOUT;
		net.polled[net.polled_count++] = i;
		fds[count++] = (struct pollfd){ .fd = client->fd, .events = events };
	}
	return count;
}

/* Handle what poll() reported on the fds net_poll_fds filled; tick is the counter now. */
void
net_dispatch(const struct pollfd *fds, int count, uint64_t tick)
{
	if (count == 0)
		return;
	for (int k = 0; k < net.polled_count && k + 1 < count; k++) {
		struct net_client *client = &net.clients[net.polled[k]];
		short revents = fds[k + 1].revents;

		if (revents == 0)
			continue;
		if ((revents & (POLLIN | POLLHUP | POLLERR)) && net_read(client) != 0) {
			net_close(client);
			continue;
		}
		net_process(client, tick);
		if (net_flush(client) != 0) {
			net_close(client);
			continue;
		}
		/* Answers waiting for room in the output buffer: it has drained. */
		net_process(client, tick);
		if (net_flush(client) != 0)
			net_close(client);
	}
	if (fds[0].revents & POLLIN)
		net_accept();
}
