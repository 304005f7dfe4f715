/*
 * havenctl's side of the control socket: connect to the local havend and
 * make one request, waiting (bounded) for its reply. Errors from havend
 * are printed as havend wrote them: they say what to do.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "proto.h"

#define CLIENT_TIMEOUT_MS	30000

const char *
client_socket_path(void)
{
	const char	*env = getenv("HAVEN_SOCKET");

	return env != NULL && *env != '\0' ? env : "/run/haven/havend.sock";
}

int
client_connect(struct cli *cli)
{
	struct sockaddr_un	 sun;
	const char		*path = client_socket_path();
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		cli_error(cli, "cannot reach havend at %s: %s (is havend "
		    "running on this host? 'systemctl status havend', or set "
		    "HAVEN_SOCKET)", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Send one request and wait for one reply. Returns the reply (decoded,
 * caller frees with message_free) and its type in *type; an Error reply is
 * printed and returned as NULL with *type FRAME_ERROR.
 */
ProtobufCMessage *
client_request(struct cli *cli, int fd, uint16_t type,
    const ProtobufCMessage *req, uint16_t *reply_type)
{
	return client_request_code(cli, fd, type, req, reply_type, NULL);
}

/*
 * client_request, and when havend answered with an Error, its code in
 * *error_code (a Haven__ErrorCode; 0 otherwise). error_code may be NULL.
 */
ProtobufCMessage *
client_request_code(struct cli *cli, int fd, uint16_t type,
    const ProtobufCMessage *req, uint16_t *reply_type, int *error_code)
{
	return client_request_fd(cli, fd, type, req, reply_type, error_code,
	    NULL);
}

/*
 * client_request_code, and the first descriptor that came beside the
 * reply in *passed (-1: none; the caller closes it). passed may be NULL:
 * any descriptor is closed.
 */
ProtobufCMessage *
client_request_fd(struct cli *cli, int fd, uint16_t type,
    const ProtobufCMessage *req, uint16_t *reply_type, int *error_code,
    int *passed)
{
	struct frame_reader	*r = NULL;
	struct frame		 f;
	ProtobufCMessage	*m = NULL;
	struct pollfd		 pfd = { .fd = fd, .events = POLLIN };
	uint8_t			*buf;
	size_t			 len;
	int			 rc;

	*reply_type = 0;
	if (error_code != NULL)
		*error_code = 0;
	if (passed != NULL)
		*passed = -1;
	if ((buf = message_pack(req, &len)) == NULL)
		return NULL;
	rc = frame_send(fd, type, buf, len, NULL, 0);
	free(buf);
	if (rc == -1) {
		cli_error(cli, "sending to havend: %s", strerror(errno));
		return NULL;
	}
	if ((r = frame_reader_new(FRAME_DEFAULT_MAX)) == NULL)
		return NULL;
	for (;;) {
		rc = frame_reader_next(r, &f);
		if (rc == 1)
			break;
		if (rc == -1) {
			cli_error(cli, "havend's reply: %s",
			    frame_strerror(errno));
			goto done;
		}
		if (poll(&pfd, 1, CLIENT_TIMEOUT_MS) == 0) {
			cli_error(cli, "havend did not answer within %d s",
			    CLIENT_TIMEOUT_MS / 1000);
			goto done;
		}
		if (frame_reader_fill(r, fd) <= 0) {
			cli_error(cli, "havend closed the connection");
			goto done;
		}
	}
	*reply_type = f.type;
	if ((m = message_decode(&f)) == NULL) {
		cli_error(cli, "havend sent an unknown reply (type %u); is "
		    "havenctl older than havend?", f.type);
	} else if (f.type == FRAME_ERROR) {
		cli_error(cli, "%s", ((Haven__Error *)m)->message);
		if (error_code != NULL)
			*error_code = (int)((Haven__Error *)m)->code;
		message_free(m);
		m = NULL;
	}
	if (m != NULL && passed != NULL && f.nfds > 0) {
		*passed = f.fds[0];
		f.fds[0] = -1;
	}
	frame_release(&f);
done:
	frame_reader_free(r);
	return m;
}

/* The exit code for a request that got no usable reply. */
int
client_error_exit(uint16_t reply_type, int error_code)
{
	if (reply_type == FRAME_ERROR &&
	    error_code == HAVEN__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED)
		return CLI_EXIT_DENIED;
	return CLI_EXIT_FAILURE;
}

/*
 * Connect, make one request and check that the reply is of type `want`.
 * Returns the reply, or NULL with the error printed and *exit set to the
 * exit code to return.
 */
ProtobufCMessage *
client_call(struct cli *cli, uint16_t type, const ProtobufCMessage *req,
    uint16_t want, int *exit_code)
{
	ProtobufCMessage	*m;
	uint16_t		 reply_type;
	int			 fd, code;

	*exit_code = CLI_EXIT_FAILURE;
	if ((fd = client_connect(cli)) == -1)
		return NULL;
	m = client_request_code(cli, fd, type, req, &reply_type, &code);
	close(fd);
	if (m == NULL) {
		*exit_code = client_error_exit(reply_type, code);
		return NULL;
	}
	if (reply_type != want) {
		cli_error(cli, "havend sent an unexpected reply (type %u, "
		    "expected %u); are havenctl and havend the same version?",
		    reply_type, want);
		message_free(m);
		return NULL;
	}
	*exit_code = CLI_EXIT_OK;
	return m;
}
