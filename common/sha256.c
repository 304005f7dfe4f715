/*
 * SHA-256 (FIPS 180-4), small and self-contained: the digest members compare
 * on sync (cluster_digest), and HMAC-SHA256 for reservation keys derived from
 * the cluster's secret (storage/pr.c). One call over memory is all they need.
 */
#include <stdint.h>
#include <string.h>

#include "common.h"

struct sha256 {
	uint32_t	 h[8];
	uint64_t	 len;
	uint8_t		 buf[64];
	size_t		 nbuf;
};

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n)	((x) >> (n) | (x) << (32 - (n)))

static void
sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t	 w[64], a, b, c, d, e, f, g, h, t1, t2;
	int		 i;

	for (i = 0; i < 16; i++)
		w[i] = be32_get(p + 4 * i);
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
		    w[i - 15] >> 3) + w[i - 7] + (ROR(w[i - 2], 17) ^
		    ROR(w[i - 2], 19) ^ w[i - 2] >> 10);
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
		    ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
		    ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void
sha256(const uint8_t *p, size_t n, uint8_t out[SHA256_SIZE])
{
	static const uint32_t	 init[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
	    0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	struct sha256		 s;
	int			 i;

	memcpy(s.h, init, sizeof s.h);
	s.len = n;
	for (; n >= 64; p += 64, n -= 64)
		sha256_block(&s, p);
	memset(s.buf, 0, sizeof s.buf);
	memcpy(s.buf, p, n);
	s.buf[n] = 0x80;
	if (n >= 56) {
		sha256_block(&s, s.buf);
		memset(s.buf, 0, sizeof s.buf);
	}
	be64_put(s.buf + 56, s.len * 8);
	sha256_block(&s, s.buf);
	for (i = 0; i < 8; i++)
		be32_put(out + 4 * i, s.h[i]);
}

/* HMAC-SHA256 (RFC 2104) over small messages (at most 1 KiB). */
void
sha256_hmac(const uint8_t *key, size_t keylen, const uint8_t *msg,
    size_t msglen, uint8_t out[SHA256_SIZE])
{
	uint8_t		 k[64], buf[64 + 1024], inner[SHA256_SIZE];
	size_t		 i;

	memset(k, 0, sizeof k);
	if (keylen > sizeof k)
		sha256(key, keylen, k);
	else if (keylen > 0)
		memcpy(k, key, keylen);
	if (msglen > 1024)
		msglen = 1024;
	for (i = 0; i < 64; i++)
		buf[i] = k[i] ^ 0x36;
	if (msglen > 0)
		memcpy(buf + 64, msg, msglen);
	sha256(buf, 64 + msglen, inner);
	for (i = 0; i < 64; i++)
		buf[i] = k[i] ^ 0x5c;
	memcpy(buf + 64, inner, SHA256_SIZE);
	sha256(buf, 64 + SHA256_SIZE, out);
	explicit_bzero(k, sizeof k);
	explicit_bzero(buf, sizeof buf);
	explicit_bzero(inner, sizeof inner);
}
