// SPDX-License-Identifier: Apache-2.0
//
// sgxshim: an LD_PRELOAD stand-in for /dev/sgx_enclave, written for
// cocobuild's SGX oracle test. The kernel selftest's encl_load opens the
// device, stats it, and maps one page of it readable and then executable
// before it parses the enclave; nothing else of the device is used by
// encl_load and encl_measure. The shim answers the open with a one-page
// memfd (which mmap accepts for PROT_READ and PROT_EXEC) and the stat with
// that memfd's. Every other path goes to the C library.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char device[] = "/dev/sgx_enclave";

static int fake_device(void)
{
	int fd = memfd_create("sgx_enclave", 0);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, 4096) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int fake_stat(struct stat *st)
{
	int fd = fake_device();
	int rc;

	if (fd < 0)
		return -1;
	rc = fstat(fd, st);
	close(fd);
	return rc;
}

static mode_t open_mode(int flags, va_list ap)
{
	if (flags & (O_CREAT | O_TMPFILE))
		return va_arg(ap, mode_t);
	return 0;
}

typedef int (*open_fn)(const char *, int, ...);

// shim_open answers the device's path and passes any other to the C
// library's function sym.
static int shim_open(open_fn *next, const char *sym, const char *path, int flags, mode_t mode)
{
	if (strcmp(path, device) == 0)
		return fake_device();
	if (!*next)
		*next = (open_fn)dlsym(RTLD_NEXT, sym);
	return (*next)(path, flags, mode);
}

// SHIM_OPEN defines the C library's open function name (open, open64)
// over shim_open.
#define SHIM_OPEN(name)						\
	int name(const char *path, int flags, ...)		\
	{							\
		static open_fn next;				\
		va_list ap;					\
		mode_t mode;					\
								\
		va_start(ap, flags);				\
		mode = open_mode(flags, ap);			\
		va_end(ap);					\
		return shim_open(&next, #name, path, flags, mode);	\
	}

SHIM_OPEN(open)
SHIM_OPEN(open64)

int stat(const char *path, struct stat *st)
{
	static int (*next)(const char *, struct stat *);

	if (strcmp(path, device) == 0)
		return fake_stat(st);
	if (!next)
		next = (int (*)(const char *, struct stat *))dlsym(RTLD_NEXT, "stat");
	return next(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
	static int (*next)(const char *, struct stat64 *);

	if (strcmp(path, device) == 0)
		return fake_stat((struct stat *)st);
	if (!next)
		next = (int (*)(const char *, struct stat64 *))dlsym(RTLD_NEXT, "stat64");
	return next(path, st);
}
