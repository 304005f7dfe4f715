/*
 * service.h: the service of the Haven Linux test guest, a static program that /init of
 * the guest's initramfs runs as PID 1. It ticks, serves TCP (echo and a RAM-only counter),
 * journals acknowledged records to its disk in the toy guest's format and serial lines, and
 * can keep some of its RAM dirty (a child process) for migration benchmarks.
 */
#ifndef HAVEN_GUEST_SERVICE_H
#define HAVEN_GUEST_SERVICE_H

#include <poll.h>
#include <stdint.h>

#define SERVICE_DEFAULT_PORT	7
#define SERVICE_DEVICE_MAX	64
#define SERVICE_INTERFACE_MAX	16

/* Settings from the kernel command line (README.md, "Kernel command line"). */
struct service_config {
	unsigned	tick_ms;
	unsigned	journal_every;
	int		journal;	/* -1 auto (on if a disk is found), 0 off, 1 on */
	unsigned	port;
	char		disk[SERVICE_DEVICE_MAX];	/* "auto", "none" or a /dev path */
	char		interface[SERVICE_INTERFACE_MAX];
	unsigned	dirty_mib;		/* RAM kept changing, 0 none */
	unsigned	dirty_pages_per_tick;	/* 4 KiB pages rewritten per tick */
};

/* console.c */
void		 console_open(uint64_t);
void		 console_line(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 console_poll_fd(struct pollfd *);
void		 console_read(void);

/* dirty.c */
unsigned	 dirty_start(const struct service_config *, uint64_t);

/* efivar.c */
void		 efivar_boot(uint64_t);

/* journal.c */
int		 journal_open(const struct service_config *, uint64_t);
const char	*journal_device(void);
int		 journal_resume(void);
void		 journal_append(uint64_t);

/* net.c */
int		 net_listen(const struct service_config *, uint64_t);
int		 net_poll_fds(struct pollfd *, int);
void		 net_dispatch(const struct pollfd *, int, uint64_t);
void		 net_report(void);

#endif /* HAVEN_GUEST_SERVICE_H */
