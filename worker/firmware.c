/*
 * What the VM boots from besides its disks, made ready before QEMU spawns
 * (and the seccomp filter forbids open): UEFI's variable store on volume 0,
 * made from the host's OVMF_VARS template at the first start and served to
 * QEMU as its second pflash (NBD export "vars"); the cdrom's ISO, opened
 * read-only for QEMU to inherit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"
#include "worker_int.h"
#include "storage.h"

/* OVMF's vars templates are 128 KiB or 528 KiB; the region holds 704. */
#define FIRMWARE_VARS_MAX	(1 << 20)

static void
worker_firmware_spawn(struct worker *w)
{
	int	 result, incoming = transfer_kind(w->transfer) ==
		    TRANSFER_RESTORE || transfer_kind(w->transfer) ==
		    TRANSFER_INCOMING;

	if ((result = worker_spawn(w, incoming)) != 0)
		worker_fail(w, result,
		    "starting QEMU");
}

static void
worker_vars_opened(int result, struct blockdev *store, void *arg)
{
	struct worker	*w = arg;
	char		 why[300];

	if (w->exiting) {
		if (result == 0)
			blockdev_close(store);
		return;
	}
	if (result != 0) {
		snprintf(why, sizeof why, "the UEFI variable store on volume "
		    "%s: %s", w->volumes[0].ref->uuid, result == -EMSGSIZE ?
		    "it was made for another OVMF build (its size differs from "
		    "this host's vars template)" : result == -ENOENT ?
		    "there is none (the source of a live migration makes it)" :
		    storage_strerror(result));
		worker_fail(w, result, why);
		return;
	}
	w->vars = store;
	worker_firmware_spawn(w);
}

/* The template, whole, into a malloc'ed buffer; -errno. */
static int
worker_vars_template(const char *path, void **out, size_t *len)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 got = 0;
	void		*buf = NULL;
	int		 fd, error = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		error = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > FIRMWARE_VARS_MAX) {
		error = -EINVAL;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		error = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		if ((n = read(fd, (char *)buf + got, (size_t)st.st_size - got))
		    <= 0) {
			error = n == 0 ? -EIO : -errno;
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return error;
}

/*
 * After the disks are open: the cdrom, then the variable store, then
 * QEMU. A live migration's target never makes the store (its source owns
 * the volume and made it); a restore or a cold start may.
 */
void
worker_firmware_open(struct worker *w)
{
	void	*template = NULL;
	size_t	 len = 0;
	int	 error;
	char	 why[300];

	if (*w->spec->cdrom != '\0' && w->cdrom_fd == -1 &&
	    (w->cdrom_fd = open(w->spec->cdrom, O_RDONLY | O_CLOEXEC)) == -1) {
		error = -errno;
		snprintf(why, sizeof why, "opening the cdrom %s (the ISO must "
		    "be at that path on every host)", w->spec->cdrom);
		worker_fail(w, error, why);
		return;
	}
	if (*w->spec->firmware_code == '\0' || w->vars != NULL) {
		worker_firmware_spawn(w);
		return;
	}
	if (access(w->spec->firmware_code, R_OK) == -1)
		error = -errno;
	else
		error = worker_vars_template(w->spec->firmware_vars, &template,
		    &len);
	if (error != 0) {
		snprintf(why, sizeof why, "reading OVMF (%s, %s): apt-get "
		    "install ovmf", w->spec->firmware_code,
		    w->spec->firmware_vars);
		worker_fail(w, error, why);
		return;
	}
	vars_open(volume_vars_region(w->volumes[0].volume), template, len,
	    transfer_kind(w->transfer) != TRANSFER_INCOMING,
	    worker_vars_opened, w);
	free(template);		/* vars_open copied it */
}
