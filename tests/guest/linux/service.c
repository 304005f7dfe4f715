/*
 * service.c: entry and main loop of the Linux test guest's service (PID 1 after /init):
 * reads its settings from /proc/cmdline, draws a fresh boot id, opens the disk, then ticks
 * forever, journaling every journal_every ticks and serving TCP between ticks (dirty.c's
 * child keeps RAM changing beside it if asked). All state lives in RAM, so after a live or
 * quick migration the same boot id simply carries on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "service.h"

#define SERVICE_CMDLINE_MAX	4096
#define SERVICE_POLL_FDS	64
#define NSEC_PER_MSEC		1000000ull

/* A fresh 64-bit id per cold boot. GRND_INSECURE never blocks on an unseeded pool. */
static uint64_t
service_boot_id(void)
{
	struct timespec now;
	uint64_t id;

	if (getrandom(&id, sizeof id, GRND_INSECURE) == sizeof id ||
	    getrandom(&id, sizeof id, GRND_NONBLOCK) == sizeof id)
		return id;
	clock_gettime(CLOCK_REALTIME, &now);
	id = (uint64_t)now.tv_sec * 0x9E3779B97F4A7C15ull ^ (uint64_t)now.tv_nsec;
	return id ^ id >> 29;
}

static uint64_t
service_now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* A decimal number in [min, max] and nothing else; 0 on success. */
static int
service_parse_number(const char *text, unsigned min, unsigned max, unsigned *out)
{
	unsigned long value;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < min || value > max)
		return -1;
	*out = (unsigned)value;
	return 0;
}

/* One key=value token of the kernel command line; 0 if known and good or not ours. */
static int
service_parse_setting(struct service_config *config, const char *key, const char *value)
{
	if (strcmp(key, "tick_ms") == 0) {
		if (service_parse_number(value, 0, 3600000, &config->tick_ms) != 0)
			return -1;
		if (config->tick_ms == 0)
			config->tick_ms = 1;
	} else if (strcmp(key, "journal_every") == 0) {
		if (service_parse_number(value, 0, 1000000, &config->journal_every) != 0)
			return -1;
		if (config->journal_every == 0)
			config->journal_every = 1;
	} else if (strcmp(key, "journal") == 0) {
		if (strcmp(value, "on") == 0)
			config->journal = 1;
		else if (strcmp(value, "off") == 0)
			config->journal = 0;
		else
			return -1;
	} else if (strcmp(key, "dirty") == 0) {
		if (service_parse_number(value, 0, 1048576, &config->dirty_mib) != 0)
			return -1;
	} else if (strcmp(key, "dirty_pages_per_tick") == 0) {
		if (service_parse_number(value, 0, 1048576, &config->dirty_pages_per_tick) != 0)
			return -1;
		if (config->dirty_pages_per_tick == 0)
			config->dirty_pages_per_tick = 1;
	} else if (strcmp(key, "haven.port") == 0) {
		if (service_parse_number(value, 1, 65535, &config->port) != 0)
			return -1;
	} else if (strcmp(key, "haven.disk") == 0) {
		if (strcmp(value, "auto") != 0 && strcmp(value, "none") != 0 &&
		    strncmp(value, "/dev/", 5) != 0)
			return -1;
		if (strlen(value) >= sizeof config->disk)
			return -1;
		strcpy(config->disk, value);
	} else if (strcmp(key, "haven.if") == 0) {
		if (*value == '\0' || strlen(value) >= sizeof config->interface ||
		    strchr(value, '/') != NULL)
			return -1;
		strcpy(config->interface, value);
	}
	/* Anything else (console=, haven.ip= for /init, ...) is not the service's. */
	return 0;
}

/*
 * Space-separated key=value pairs from /proc/cmdline, as the toy guest takes them from
 * multiboot. Kernel parameters with a dot never reach init's environment, hence the file.
 */
static void
service_parse_cmdline(struct service_config *config)
{
	char cmdline[SERVICE_CMDLINE_MAX], *token, *save, *equals;
	FILE *f;

	f = fopen("/proc/cmdline", "re");
	if (f == NULL) {
		console_line("warning cannot read /proc/cmdline: %s", strerror(errno));
		return;
	}
	if (fgets(cmdline, sizeof cmdline, f) == NULL)
		cmdline[0] = '\0';
	fclose(f);
	for (token = strtok_r(cmdline, " \t\n", &save); token != NULL;
	    token = strtok_r(NULL, " \t\n", &save)) {
		equals = strchr(token, '=');
		if (equals == NULL)
			continue;
		*equals = '\0';
		if (service_parse_setting(config, token, equals + 1) != 0)
			console_line("warning bad parameter %s=%s", token, equals + 1);
	}
}

int
main(void)
{
	struct service_config config = {
		.tick_ms = 100, .journal_every = 1, .journal = -1, .port = SERVICE_DEFAULT_PORT,
		.disk = "auto", .interface = "eth0", .dirty_mib = 0, .dirty_pages_per_tick = 256,
	};
	struct pollfd fds[SERVICE_POLL_FDS];
	uint64_t boot_id, tick = 0, period, deadline, now;
	unsigned since_journal = 0;
	struct sysinfo info;
	int disk, count, ready, timeout_ms;
	unsigned dirty_mib;

	boot_id = service_boot_id();
	console_open(boot_id);
	service_parse_cmdline(&config);
	efivar_boot(boot_id);
	disk = journal_open(&config, boot_id) == 0;
	dirty_mib = dirty_start(&config, boot_id);
	if (sysinfo(&info) != 0)
		info.totalram = 0;
	console_line("start mem=%llu dirty=%u journal=%s disk=%s",
	    (unsigned long long)info.totalram * info.mem_unit >> 20, dirty_mib,
	    disk ? "on" : "off", journal_device());
	console_line("config tick_ms=%u journal_every=%u port=%u dirty_pages_per_tick=%u",
	    config.tick_ms, config.journal_every, config.port, config.dirty_pages_per_tick);
	net_listen(&config, boot_id);
	net_report();
	if (disk)
		journal_resume();

	/*
	 * If the clock jumps far ahead (a restore that counted the time the VM was stopped),
	 * restart the schedule from now rather than firing a burst of catch-up ticks.
	 */
	period = config.tick_ms * NSEC_PER_MSEC;
	deadline = service_now_ns() + period;
	for (;;) {
		now = service_now_ns();
		if (now > deadline + 10 * period)
			deadline = now;
		if (now >= deadline) {
			deadline += period;
			tick++;
			console_line("tick=%llu", (unsigned long long)tick);
			if (++since_journal >= config.journal_every) {
				since_journal = 0;
				journal_append(tick);
			}
			continue;
		}
		count = net_poll_fds(fds, SERVICE_POLL_FDS - 1);
		console_poll_fd(&fds[count]);
		timeout_ms = (int)((deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
		ready = poll(fds, (nfds_t)count + 1, timeout_ms);
		if (ready > 0 && fds[count].revents != 0)
			console_read();
		if (ready > 0)
			net_dispatch(fds, count, tick);
		else if (ready == -1 && errno != EINTR)
			console_line("warning poll: %s", strerror(errno));
	}
}
