/* connguard.h - the per-request time limit (--request-timeout): a connection must finish
 * each request within the limit of accepting it or of ending its previous request, or it
 * is cut. libmicrohttpd's own timeout only measures idleness, so a client that sends one
 * byte every few seconds (slow loris) would otherwise hold a connection forever. */
#ifndef KW_CONNGUARD_H
#define KW_CONNGUARD_H

typedef struct kw_guard kw_guard_t;
typedef struct kw_guard_conn kw_guard_conn_t;

/* Start the watcher thread. timeout_s 0 = no limit (returns NULL, every call below then
 * does nothing). */
kw_guard_t *kw_guard_new(unsigned timeout_s);
/* Stop the thread and free what is left. Accepts NULL. */
void kw_guard_free(kw_guard_t *g);

/* A connection on fd was accepted: its first request is due within the limit. Returns the
 * handle to pass below (NULL when there is no limit or no memory: then it is not watched). */
kw_guard_conn_t *kw_guard_add(kw_guard_t *g, int fd);
/* A request on the connection ended: the next one is due within the limit from now. */
void kw_guard_rearm(kw_guard_t *g, kw_guard_conn_t *c);
/* The connection is about to be closed (before its fd is): forget and free the handle. */
void kw_guard_remove(kw_guard_t *g, kw_guard_conn_t *c);

/* Connections cut so far. */
unsigned long kw_guard_cuts(const kw_guard_t *g);

#endif
