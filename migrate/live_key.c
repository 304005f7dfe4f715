/*
 * A live migration's TLS key (DESIGN §6, §7): each of the two havends
 * derives it itself from the cluster's secret and the move's public
 * identity, and hands it to its own worker over the worker's channel; it
 * never travels in the replicated state, argv, events or logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "migrate.h"

static uint8_t	 live_secret[SHA256_SIZE];
static int	 live_secret_set;

static void	live_key_replay(const char *, uint8_t [LIVE_KEY_SIZE]);

int
live_key_load(const char *path, char *err, size_t errlen)
{
	if (secret_file_hash(path, live_secret, err, errlen) == -1)
		return -1;
	live_secret_set = 1;
	return 0;
}

int
live_key_installed(void)
{
	return live_secret_set;
}

/*
 * key = HMAC-SHA256(secret, "haven-live-tls" NUL uuid NUL generation
 * (8 bytes, big-endian) token). The token is the target's one-time token
 * (LIVE_KEY_TOKEN hex digits, new for every move); with the VM and its
 * generation it makes the key new for every move, so a key seen once (a
 * crashed worker's file) opens no other. Without the secret nobody can
 * compute it, though uuid, generation and token are public.
 */
void
live_key_compute(const uint8_t secret[SHA256_SIZE], const char *vm_uuid,
    uint64_t generation, const char *token, uint8_t key[LIVE_KEY_SIZE])
{
	uint8_t	 msg[15 + 37 + 8 + LIVE_KEY_TOKEN];
	size_t	 n = 0, ulen = strnlen(vm_uuid, 36);
	size_t	 tlen = strnlen(token, LIVE_KEY_TOKEN);
	int	 i;

	memcpy(msg, "haven-live-tls", 15);
	n = 15;
	memcpy(msg + n, vm_uuid, ulen);
	n += ulen;
	msg[n++] = '\0';
	for (i = 7; i >= 0; i--)
		msg[n++] = (uint8_t)(generation >> (8 * i));
	memcpy(msg + n, token, tlen);
	n += tlen;
	sha256_hmac(secret, SHA256_SIZE, msg, n, key);
	explicit_bzero(msg, sizeof msg);
}

int
live_key_derive(const char *vm_uuid, uint64_t generation, const char *token,
    uint8_t key[LIVE_KEY_SIZE])
{
	if (!live_secret_set) {
		errno = ENOKEY;
		return -1;
	}
	if (token == NULL || strlen(token) != LIVE_KEY_TOKEN) {
		errno = EINVAL;
		return -1;
	}
	live_key_compute(live_secret, vm_uuid, generation, token, key);
	/* lab.live-tls: this side's key differs from its peer's, and QEMU's
	 * TLS handshake must refuse the stream. */
	if (failpoint("live-key-wrong"))
		key[0] ^= 0x01;
	if (failpoint("live-key-replay"))
		live_key_replay(vm_uuid, key);
	return 0;
}

/*
 * lab.live-tls, failpoint live-key-replay: this havend hands its worker the
 * key of the VM's previous move instead of this one's, as one that kept a
 * key seen once (a worker's keys.psk, a core file) would present it again.
 * The first move after the failpoint is set keeps its own key and is
 * remembered; only under the failpoint is a key kept past its move.
 */
static void
live_key_replay(const char *vm_uuid, uint8_t key[LIVE_KEY_SIZE])
{
	static char	 uuid[37];
	static uint8_t	 last[LIVE_KEY_SIZE];
	static int	 have;
	uint8_t		 fresh[LIVE_KEY_SIZE];

	memcpy(fresh, key, LIVE_KEY_SIZE);
	if (have && strcmp(uuid, vm_uuid) == 0) {
		memcpy(key, last, LIVE_KEY_SIZE);
		log_info("failpoint live-key-replay: VM %s gets its previous "
		    "move's key", vm_uuid);
	}
	memcpy(last, fresh, LIVE_KEY_SIZE);
	snprintf(uuid, sizeof uuid, "%s", vm_uuid);
	have = 1;
	explicit_bzero(fresh, sizeof fresh);
}
