/*
 * A live migration's TLS key (DESIGN §6, §7): each of the two havends
 * derives it itself from the cluster's secret and the move's public
 * identity, and hands it to its own worker over the worker's channel; it
 * never travels in the replicated state, argv, events or logs.
 */
#include <errno.h>
#include <string.h>

#include "common.h"
#include "migrate.h"

static uint8_t	 live_secret[SHA256_SIZE];
static int	 live_secret_set;

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
	return 0;
}
