/* listenfd.c - sd_listen_fds() without libsystemd: find the listening socket a service
 * manager passed to this process (LISTEN_PID, LISTEN_FDS, fds from 3), check that it is a
 * listening TCP stream socket, and describe its address for the logs. */
#include "listenfd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long env_long(const char *name)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (v == NULL || *v == '\0')
        return -1;
    errno = 0;
    long n = strtol(v, &end, 10);
    return (errno || *end || n < 0) ? -1 : n;
}

int kw_listen_inherited(char *why, size_t whylen, int *extra)
{
    long pid = env_long("LISTEN_PID"), n = env_long("LISTEN_FDS");
    int fd = KW_LISTEN_FDS_START, type = 0, acc = 0;
    socklen_t l = sizeof(type);
    if (extra)
        *extra = 0;
    if (pid < 0 || n < 1 || (pid_t)pid != getpid())
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM) {
        snprintf(why, whylen, "LISTEN_FDS: fd %d is not a stream socket", fd);
        return -2;
    }
    l = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) != 0 || !acc) {
        snprintf(why, whylen, "LISTEN_FDS: fd %d is not listening (Accept=no is needed)", fd);
        return -2;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(why, whylen, "LISTEN_FDS: fd %d: %s", fd, strerror(errno));
        return -2;
    }
    for (long i = 1; i < n; i++) /* not ours to serve; not to leak into children either */
        fcntl(KW_LISTEN_FDS_START + (int)i, F_SETFD, FD_CLOEXEC);
    if (extra)
        *extra = (int)(n - 1);
    return fd;
}

void kw_listen_describe(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    char a[INET6_ADDRSTRLEN] = "?";
    snprintf(out, outlen, "fd %d", fd);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)&sa;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
        snprintf(out, outlen, "%s:%u", a, ntohs(s->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)&sa;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
        snprintf(out, outlen, "[%s]:%u", a, ntohs(s->sin6_port));
    }
}
