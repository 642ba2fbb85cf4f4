/* faultfs.c - LD_PRELOAD shim for I/O fault tests: while the file named by
 * $KW_FAULT_CONTROL exists, write/pwrite/writev/fsync/fdatasync/ftruncate/fallocate on a
 * file whose path contains $KW_FAULT_MATCH fail with $KW_FAULT_ERRNO ("ENOSPC" default,
 * or "EIO"). Everything else passes through. Built by tests/integration/test_faults.py:
 *     cc -shared -fPIC -O1 -o faultfs.so tests/faults/faultfs.c -ldl
 * Test-only; never linked into keyward. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int should_fail(int fd)
{
    const char *ctl = getenv("KW_FAULT_CONTROL"), *match = getenv("KW_FAULT_MATCH");
    char link[64], path[4096];
    struct stat st;
    if (ctl == NULL || match == NULL || fd < 0 || stat(ctl, &st) != 0)
        return 0;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    if (strstr(path, match) == NULL)
        return 0;
    const char *e = getenv("KW_FAULT_ERRNO");
    errno = (e && strcmp(e, "EIO") == 0) ? EIO : ENOSPC;
    return 1;
}

#define REAL(name, ret, ...)                                                                       \
    static ret (*real_##name)(__VA_ARGS__);                                                        \
    if (real_##name == NULL)                                                                       \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write, ssize_t, int, const void *, size_t);
    if (should_fail(fd))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    if (should_fail(fd))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    if (should_fail(fd))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, ssize_t, int, const struct iovec *, int);
    if (should_fail(fd))
        return -1;
    return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
    REAL(fsync, int, int);
    if (should_fail(fd))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync, int, int);
    if (should_fail(fd))
        return -1;
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate, int, int, off_t);
    if (should_fail(fd))
        return -1;
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    REAL(ftruncate64, int, int, off_t);
    if (should_fail(fd))
        return -1;
    return real_ftruncate64(fd, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    REAL(posix_fallocate, int, int, off_t, off_t);
    if (should_fail(fd))
        return errno;
    return real_posix_fallocate(fd, off, len);
}
