/* listenfd.h - a listening socket handed in by the service manager (systemd socket
 * activation: LISTEN_PID / LISTEN_FDS, the sockets from fd 3 on), used instead of
 * --listen so that connections arriving during a restart wait in the kernel's backlog. */
#ifndef KW_LISTENFD_H
#define KW_LISTENFD_H

#include <stddef.h>

#define KW_LISTEN_FDS_START 3

/* The inherited listening socket, or -1 when there is none (no LISTEN_FDS, or LISTEN_PID
 * names another process). A socket that is not a listening stream socket is refused:
 * -2 with a reason in why. The variables are removed from the environment so that no
 * child inherits them; the socket is made non-blocking and close-on-exec. Only the first
 * socket is used (keyward serves one address); more are reported in *extra (may be NULL).
 * The caller may close its copy when it stops: the service manager keeps its own, and the
 * backlog with it. It must never shutdown() the socket. */
int kw_listen_inherited(char *why, size_t whylen, int *extra);

/* The socket's local address as "HOST:PORT" ("[::1]:8420" for IPv6), for the logs. */
void kw_listen_describe(int fd, char *out, size_t outlen);

#endif
