/*
 * lib.c: the handful of libc-like helpers the freestanding test guest needs. The compiler
 * may emit calls to memset/memcpy itself, so they exist under their standard names; they
 * use string instructions so the optimiser cannot turn them back into calls to themselves.
 */
#include "guest.h"

void *
memset(void *dest, int value, size_t length)
{
	void *d = dest;

	__asm__ volatile("cld; rep stosb"
	    : "+D"(d), "+c"(length) : "a"(value) : "memory");
	return dest;
}

void *
memcpy(void *dest, const void *src, size_t length)
{
	void *d = dest;

	__asm__ volatile("cld; rep movsb"
	    : "+D"(d), "+S"(src), "+c"(length) : : "memory");
	return dest;
}

void *
memmove(void *dest, const void *src, size_t length)
{
	unsigned char *d = dest;
	const unsigned char *s = src;

	if (d <= s || d >= s + length)
		return memcpy(dest, src, length);
	while (length-- > 0)
		d[length] = s[length];
	return dest;
}

int
memcmp(const void *a, const void *b, size_t length)
{
	const volatile unsigned char *x = a, *y = b;

	for (size_t i = 0; i < length; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

/* 64-bit unsigned division without libgcc's __udivdi3: plain shift and subtract. */
uint64_t
lib_udivmod64(uint64_t dividend, uint64_t divisor, uint64_t *remainder)
{
	uint64_t quotient = 0, rest = 0;

	for (int bit = 63; bit >= 0; bit--) {
		rest = (rest << 1) | ((dividend >> bit) & 1);
		if (rest >= divisor) {
			rest -= divisor;
			quotient |= (uint64_t)1 << bit;
		}
	}
	if (remainder != NULL)
		*remainder = rest;
	return quotient;
}

/* A cheap 32-bit integer hash (the murmur3 finaliser). */
uint32_t
lib_mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	x ^= x >> 16;
	return x;
}
