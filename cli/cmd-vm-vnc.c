/*
 * havenctl vm vnc NAME [--listen HOST:PORT | --socket PATH]: a VM's display
 * for a VNC viewer on this host. havenctl listens on a loopback port (an
 * ephemeral one by default, printed) or a Unix socket of its own, and joins
 * each viewer to a socket havend hands over per viewer, which the VM's
 * worker gives to QEMU's VNC server. QEMU listens nowhere: while no
 * havenctl vm vnc runs, nothing listens at all.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "request.h"

static volatile sig_atomic_t vnc_stop;

static void
vnc_on_signal(int signo)
{
	vnc_stop = signo;
}

/* One viewer, in a child of its own: bytes both ways until either side
 * closes. */
static void __attribute__((noreturn))
vnc_pump(int viewer, int vm)
{
	struct pollfd	pfd[2] = { { viewer, POLLIN, 0 }, { vm, POLLIN, 0 } };
	uint8_t		buf[65536];
	ssize_t		n, w, off;
	int		i, to;

	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].revents == 0)
				continue;
			to = i == 0 ? vm : viewer;
			if ((n = read(pfd[i].fd, buf, sizeof buf)) <= 0)
				_exit(0);
			for (off = 0; off < n; off += w)
				if ((w = write(to, buf + off,
				    (size_t)(n - off))) <= 0)
					_exit(0);
		}
	}
}

/* The listener: loopback TCP, or a Unix socket only its owner may use. */
static int
vnc_listen(struct cli *cli, const struct cmd_entry *cmd, const char *listen_at,
    const char *path)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sun;
	socklen_t		 len;
	char			 err[320], host[INET6_ADDRSTRLEN];
	mode_t			 mask;
	int			 fd, one = 1;

	if (path != NULL) {
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if (*path == '\0' || strlen(path) >= sizeof sun.sun_path) {
			cli_usage_error(cli, cmd, "--socket '%s': a path of "
			    "1 to %zu bytes", path, sizeof sun.sun_path - 1);
			return -2;
		}
		memcpy(sun.sun_path, path, strlen(path));
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			return -1;
		mask = umask(077);
		if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
		    chmod(path, 0600) == -1 || listen(fd, 8) == -1) {
			umask(mask);
			cli_error(cli, "--socket %s: %s%s", path,
			    strerror(errno), errno == EADDRINUSE ? " (remove "
			    "it first if no vm vnc serves it)" : "");
			close(fd);
			return -1;
		}
		umask(mask);
		if (!cli->quiet)
			printf("%s\n", path);
		fflush(stdout);
		return fd;
	}
	if (cli_parse_listen(listen_at, &ss, &len, err, sizeof err) == -1) {
		cli_usage_error(cli, cmd, "%s", err);
		return -2;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		cli_error(cli, "--listen %s: %s", listen_at, strerror(errno));
		close(fd);
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    host, sizeof host);
		printf("[%s]:%u\n", host, ntohs(((struct sockaddr_in6 *)
		    &ss)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    host, sizeof host);
		printf("%s:%u\n", host, ntohs(((struct sockaddr_in *)
		    &ss)->sin_port));
	}
	fflush(stdout);
	return fd;
}

static int
cmd_vm_vnc_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_vm_vnc_entry;
	const char		*name, *listen_at, *path;
	struct sockaddr_storage	 ss;
	struct sigaction	 sa;
	socklen_t		 len;
	char			 err[320];
	int			 lfd, viewer, vm, rc;
	pid_t			 pid;

	listen_at = args_get(args, "listen");
	path = args_get(args, "socket");
	if (listen_at != NULL && path != NULL) {
		cli_usage_error(cli, cmd, "--listen or --socket, not both");
		return CLI_EXIT_USAGE;
	}
	if (cli->json) {
		cli_usage_error(cli, cmd, "vm vnc serves until stopped and "
		    "prints no JSON");
		return CLI_EXIT_USAGE;
	}
	if (request_vm_name(cli, cmd, args, &name) == -1)
		return CLI_EXIT_USAGE;
	if (listen_at == NULL)
		listen_at = "127.0.0.1:0";
	if (path == NULL && cli_parse_listen(listen_at, &ss, &len, err,
	    sizeof err) == -1) {
		cli_usage_error(cli, cmd, "%s", err);
		return CLI_EXIT_USAGE;
	}
	/* Ask once before listening: a refusal (role, host, state) is
	 * said now, not to the first viewer. */
	if ((rc = request_console(cli, name,
	    HAVEN__CONSOLE_KIND__CONSOLE_KIND_VNC, &vm)) != CLI_EXIT_OK)
		return rc;
	close(vm);
	if ((lfd = vnc_listen(cli, cmd, listen_at, path)) < 0)
		return lfd == -2 ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = vnc_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;	/* viewers' children reap themselves */
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!cli->quiet)
		fprintf(stderr, "havenctl: serving %s's display to VNC viewers "
		    "on this host; Ctrl-C stops\n", name);
	rc = CLI_EXIT_OK;
	while (!vnc_stop) {
		if ((viewer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			cli_error(cli, "accept: %s", strerror(errno));
			rc = CLI_EXIT_FAILURE;
			break;
		}
		if (request_console(cli, name,
		    HAVEN__CONSOLE_KIND__CONSOLE_KIND_VNC, &vm) != CLI_EXIT_OK) {
			close(viewer);
			continue;
		}
		if ((pid = fork()) == 0) {
			close(lfd);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			signal(SIGTERM, SIG_DFL);
			vnc_pump(viewer, vm);
		}
		if (pid == -1)
			cli_error(cli, "fork: %s", strerror(errno));
		close(viewer);
		close(vm);
	}
	close(lfd);
	if (path != NULL)
		unlink(path);
	return rc;
}

const struct cmd_entry cmd_vm_vnc_entry = {
	.name = "vm vnc",
	.args = {
		.options = (const struct args_option[]) {
			{ "listen", 0, ARGS_VALUE },
			{ "socket", 0, ARGS_VALUE },
			{ NULL, 0, 0 },
		},
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	},
	.usage = "NAME [--listen HOST:PORT | --socket PATH]",
	.summary = "serve a VM's display to VNC viewers on this host "
	    "(loopback or a Unix socket) until stopped",
	.exec = cmd_vm_vnc_exec,
};
