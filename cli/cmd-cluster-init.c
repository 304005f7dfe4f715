/*
 * havenctl cluster init --name NAME --link ADDR[,ADDR2]: the first host of
 * a cluster. Writes its corosync.conf (one knet link per address given),
 * a new authkey and haven.conf, starts corosync and havend (unless
 * --no-start), and prints a one-time join token for `cluster join` on the
 * next host, served by the join service it leaves running (join.c). Also
 * join_install, which join shares: haven.conf and the services.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "corosync.h"

#define INIT_AUTHKEY_BYTES	256	/* corosync-keygen's */

/* haven.conf: the cluster's part, then the host's own (--host-conf). */
char *
init_haven_conf(struct cli *cli, const char *name, const char *cluster,
    unsigned token_ms, const char *host_conf)
{
	struct config_error	 errs[8];
	struct config		*c;
	char			*extra = NULL, *text, line[512];
	size_t			 len, nerrs, i;
	int			 rc;

	if (host_conf != NULL) {
		FILE	*f = fopen(host_conf, "re");

		if (f == NULL) {
			cli_error(cli, "cannot read --host-conf %s: %s",
			    host_conf, strerror(errno));
			return NULL;
		}
		extra = xmalloc(65537);
		len = fread(extra, 1, 65536, f);
		extra[len] = '\0';
		fclose(f);
	}
	len = strlen(name) + strlen(cluster) + (extra ? strlen(extra) : 0) +
	    256;
	text = xmalloc(len);
	snprintf(text, len, "# written by havenctl cluster init/join\n"
	    "[node]\nname = %s\n\n[cluster]\nname = %s\ntoken_ms = %u\n\n%s",
	    name, cluster, token_ms, extra != NULL ? extra : "");
	free(extra);
	c = xcalloc(1, sizeof *c);
	rc = config_parse_buffer(text, strlen(text), c, errs, 8, &nerrs);
	if (rc == -1) {
		for (i = 0; i < nerrs && i < 8; i++) {
			config_error_format(&errs[i], NULL, line, sizeof line);
			cli_error(cli, "%s", line);
		}
		cli_error(cli, "the haven.conf made of --host-conf is not one "
		    "(it holds this host's own sections: [interfaces], "
		    "[watchdog], [fence], [vm]; init and join write [node] "
		    "and [cluster])");
		free(text);
		text = NULL;
	}
	config_wipe(c);
	free(c);
	return text;
}

static int
init_run(const char *const argv[])
{
	pid_t	 pid;
	int	 status;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
join_install(struct cli *cli, const char *name, const char *cluster,
    unsigned token_ms, const char *host_conf, int no_start)
{
	static const char *const start[] = { "systemctl", "start",
	    "corosync", "havend", NULL };
	char	*text;

	if ((text = init_haven_conf(cli, name, cluster, token_ms,
	    host_conf)) == NULL)
		return -1;
	mkdir(join_path("/etc/haven"), 0755);
	if (join_write_file(HAVEN_CONF, text, strlen(text), 0640) == -1) {
		cli_error(cli, "cannot write %s: %s", HAVEN_CONF,
		    strerror(errno));
		free(text);
		return -1;
	}
	free(text);
	if (no_start)
		return 0;
	if (init_run(start) == -1) {
		cli_error(cli, "'systemctl start corosync havend' failed; see "
		    "'systemctl status corosync havend'");
		return -1;
	}
	return 0;
}

/* The host's name: --node-name, else its hostname up to the first dot. */
const char *
init_node_name(const char *arg, char *buf, size_t len)
{
	if (arg != NULL)
		return arg;
	if (gethostname(buf, len) == -1)
		return NULL;
	buf[len - 1] = '\0';
	buf[strcspn(buf, ".")] = '\0';
	return buf;
}

int
init_check_fresh(struct cli *cli)
{
	if (access(join_path(COROSYNC_AUTHKEY), F_OK) == 0) {
		cli_error(cli, "%s exists: this host belongs to a cluster "
		    "already ('havenctl node remove' it there, then delete the "
		    "file)", COROSYNC_AUTHKEY);
		return -1;
	}
	return 0;
}

static int
cmd_cluster_init_exec(struct cli *cli, struct args *args)
{
	const struct cmd_entry	*cmd = &cmd_cluster_init_entry;
	struct corosync_node	 node;
	struct corosync_conf	 conf;
	struct join_token	 t;
	uint8_t			 key[INIT_AUTHKEY_BYTES];
	char			 addrs[2][46], host[64], err[256];
	char			 token[JOIN_TOKEN_MAX + 1], *text;
	const char		*arg;
	uint64_t		 v;
	uint16_t		 port = JOIN_PORT;
	int			 rc = CLI_EXIT_FAILURE;

	memset(&conf, 0, sizeof conf);
	memset(&node, 0, sizeof node);
	conf.cluster = args_get(args, "name");
	conf.token_ms = COROSYNC_TOKEN_MS;
	conf.logfile = args_get(args, "logfile");
	if (conf.cluster == NULL || (arg = args_get(args, "link")) == NULL) {
		cli_usage_error(cli, cmd, "--name and --link are required");
		return CLI_EXIT_USAGE;
	}
	if (join_parse_links(arg, addrs, &node.addr, &node.addr2) == -1) {
		cli_usage_error(cli, cmd, "bad --link '%s': ADDR[,ADDR2], this "
		    "host's IPv4 address on each management network", arg);
		return CLI_EXIT_USAGE;
	}
	if ((arg = args_get(args, "token-ms")) != NULL) {
		if (cli_parse_uint(arg, 100, 120000, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --token-ms '%s': 100 to "
			    "120000", arg);
			return CLI_EXIT_USAGE;
		}
		conf.token_ms = (unsigned)v;
	}
	if ((arg = args_get(args, "join-port")) != NULL) {
		if (cli_parse_uint(arg, 1, 65535, &v) == -1) {
			cli_usage_error(cli, cmd, "bad --join-port '%s'", arg);
			return CLI_EXIT_USAGE;
		}
		port = (uint16_t)v;
	}
	if ((node.name = init_node_name(args_get(args, "node-name"), host,
	    sizeof host)) == NULL)
		return CLI_EXIT_FAILURE;
	node.id = 1;
	conf.nodes = &node;
	conf.nnodes = 1;
	if ((text = join_conf_text(&conf, err, sizeof err)) == NULL) {
		cli_usage_error(cli, cmd, "%s", err);
		return CLI_EXIT_USAGE;
	}
	if (init_check_fresh(cli) == -1)
		goto out;
	/* haven.conf is checked before anything is written. */
	if ((arg = init_haven_conf(cli, node.name, conf.cluster, conf.token_ms,
	    args_get(args, "host-conf"))) == NULL)
		goto out;
	free((char *)arg);
	if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
		cli_error(cli, "no random bytes for the authkey: %s",
		    strerror(errno));
		goto out;
	}
	mkdir(join_path("/etc/corosync"), 0755);
	mkdir(join_path("/var/lib/haven"), 0755);
	if (join_write_file(COROSYNC_AUTHKEY, key, sizeof key, 0400) == -1 ||
	    join_write_file(COROSYNC_CONF, text, strlen(text), 0644) == -1) {
		cli_error(cli, "cannot write corosync's files: %s",
		    strerror(errno));
		goto out;
	}
	explicit_bzero(key, sizeof key);
	if (join_install(cli, node.name, conf.cluster, conf.token_ms,
	    args_get(args, "host-conf"), args_has(args, "no-start")) == -1)
		goto out;
	if (join_token_new(node.addr, port, &t) == -1) {
		cli_error(cli, "cannot keep a join token in %s: %s", JOIN_TOKENS,
		    strerror(errno));
		goto out;
	}
	if (join_service_start(cli, node.addr, port) == -1)
		goto out;
	join_token_format(&t, token, sizeof token);
	explicit_bzero(&t, sizeof t);
	if (!cli->quiet)
		fprintf(stderr, "cluster %s initialised on %s (node 1, %s); "
		    "on the next host, within %d minutes:\n  havenctl cluster "
		    "join --token TOKEN --link ADDR\n", conf.cluster, node.name,
		    args_has(args, "no-start") ? "start corosync and havend" :
		    "corosync and havend started", JOIN_TTL_S / 60);
	printf("%s\n", token);
	explicit_bzero(token, sizeof token);
	rc = CLI_EXIT_OK;
out:
	free(text);
	return rc;
}

const struct cmd_entry cmd_cluster_init_entry = {
	.name = "cluster init",
	.args = {
		.options = (const struct args_option[]) {
			{ "name", 0, ARGS_VALUE },
			{ "link", 0, ARGS_VALUE },
			{ "node-name", 0, ARGS_VALUE },
			{ "host-conf", 0, ARGS_VALUE },
			{ "token-ms", 0, ARGS_VALUE },
			{ "join-port", 0, ARGS_VALUE },
			{ "logfile", 0, ARGS_VALUE },
			{ "no-start", 0, 0 },
			{ NULL, 0, 0 },
		},
		.lower = 0, .upper = 0,
	},
	.usage = "--name CLUSTER --link ADDR[,ADDR2] [--node-name NAME]\n"
	    "         [--host-conf FILE] [--token-ms MS] [--join-port PORT]\n"
	    "         [--logfile PATH] [--no-start]",
	.summary = "make this host the first of a new cluster; prints a join "
	    "token",
	.exec = cmd_cluster_init_exec,
};
