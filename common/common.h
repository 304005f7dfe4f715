/*
 * common/: what every Haven process uses: logging with an in-memory ring of
 * recent lines, small helpers around the process's libevent base, and the
 * rules for interface names and MAC addresses.
 */
#ifndef HAVEN_COMMON_H
#define HAVEN_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

/* log.c */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
};

/* One remembered line, as log_ring_foreach hands it out. */
struct log_line {
	uint64_t	 time_us;	/* CLOCK_REALTIME */
	enum log_level	 level;
	const char	*text;		/* "scope: message", no newline */
};

#define LOG_RING_LINES	1024
#define LOG_LINE_MAX	512

void		 log_init(const char *program, enum log_level stderr_level);
void		 log_set_level(enum log_level);
enum log_level	 log_get_level(void);
int		 log_level_parse(const char *, enum log_level *);
const char	*log_level_name(enum log_level);
void		 log_set_sink(int fd);
int		 log_fd_is_journal(int fd);
void		 log_vwrite(enum log_level, const char *scope, const char *fmt,
		     va_list) __attribute__((format(printf, 3, 0)));
void		 log_write(enum log_level, const char *scope, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
void		 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_fatal(const char *, ...)
		     __attribute__((format(printf, 1, 2), noreturn));
size_t		 log_ring_foreach(void (*)(const struct log_line *, void *),
		     void *);
int		 log_ring_dump(int fd);
void		 log_ring_clear(void);

/*
 * Object-scoped lines: "vm web1: ...", "volume 3f2a...: ...".
 */
#define log_scoped(level, kind, name, ...) do {				\
	char log_scope_[128];						\
	log_scope_format(log_scope_, sizeof log_scope_, kind, name);	\
	log_write(level, log_scope_, __VA_ARGS__);			\
} while (0)
void		 log_scope_format(char *, size_t, const char *kind,
		     const char *name);
/* "vm NAME: ...": every line havend and the worker log about one VM. */
#define log_vm(level, name, ...)	log_scoped(level, "vm", name, __VA_ARGS__)

/*
 * Little-endian fields of Haven's own on-disk records (the volume label,
 * the lease, the state header): explicit bytes, any host, any alignment.
 */
static inline void
le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void
le64_put(uint8_t *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline uint64_t
le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

/* Big-endian fields of the wire and of standard formats (NBD, SCSI, VHD,
 * Haven's frame header). */
static inline void
be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static inline uint16_t
be16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t
be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/* util.c: the wall clock (CLOCK_REALTIME, microseconds), UUIDs as
 * "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (any case read, lowercase
 * written), and allocations that end the process rather than return NULL. */
#define UUID_BYTES	16
#define UUID_STRLEN	36
uint64_t	 now_us(void);
int		 uuid_parse(const char *, uint8_t[UUID_BYTES]);	/* -1: malformed */
int		 uuid_valid(const char *);
void		 uuid_format(const uint8_t[UUID_BYTES], char[UUID_STRLEN + 1]);
int		 uuid_generate(uint8_t[UUID_BYTES]);		/* v4; -errno */
void		*xmalloc(size_t);
void		*xcalloc(size_t, size_t);
char		*xstrdup(const char *);		/* NULL: "" */
/* Fault injection for the lab's tests: whether NAME is one of the
 * comma-separated names in the environment's HAVEN_FAILPOINTS (unset in
 * production: always 0). */
int		 failpoint(const char *);
int		 hex_digit(char);

/* net.c: Linux interface names and Ethernet MAC addresses ("0a:1b:2c:3d:4e:5f",
 * any case read, lowercase written). */
#define NET_IFNAME_SIZE		16	/* Linux's IFNAMSIZ, with the NUL */
#define NET_MAC_BYTES		6
#define NET_MAC_STRLEN		17
#define NET_MAC_MULTICAST	0x01	/* in the first octet: group address */
#define NET_MAC_LOCAL		0x02	/* in the first octet: locally administered */
int		 net_ifname_valid(const char *);
int		 net_mac_parse(const char *, uint8_t[NET_MAC_BYTES]);	/* -1: malformed */
void		 net_mac_format(const uint8_t[NET_MAC_BYTES],
		     char[NET_MAC_STRLEN + 1]);
const char	*net_mac_problem(const uint8_t[NET_MAC_BYTES]);	/* NULL: usable */

/* sha256.c: SHA-256 (FIPS 180-4) of a buffer, and HMAC-SHA256 (RFC 2104). */
#define SHA256_SIZE	32
void		 sha256(const uint8_t *, size_t, uint8_t[SHA256_SIZE]);
void		 sha256_hmac(const uint8_t *key, size_t keylen,
		     const uint8_t *msg, size_t msglen, uint8_t[SHA256_SIZE]);

/* secret.c: a root-only secret file read whole (at most max bytes) into
 * *out (malloc'd; explicit_bzero and free it); -1 with err otherwise. */
int		 secret_file_read(const char *path, size_t max, uint8_t **out,
		     size_t *len, char *err, size_t errlen);
/* The SHA-256 of the cluster's secret file (a root-only secret file of at
 * least 16 bytes); -1 with the operator's sentence in err. */
int		 secret_file_hash(const char *path, uint8_t[SHA256_SIZE],
		     char *err, size_t errlen);

/* ev.c */
struct event_base *ev_base_new(void);
int		 ev_on_signals(struct event_base *, const int *signals,
		     size_t nsignals, void (*)(int, void *), void *);
void		 ev_signals_free(void);
struct ev_timer;
struct ev_timer	*ev_timer_new(struct event_base *, uint64_t ms, int repeat,
		     void (*)(void *), void *);
int		 ev_timer_arm(struct ev_timer *, uint64_t ms);
void		 ev_timer_cancel(struct ev_timer *);
void		 ev_timer_free(struct ev_timer *);
int		 ev_set_nonblock(int fd);
uint64_t	 ev_now_ms(void);

#endif
