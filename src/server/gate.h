/* gate.h - the gateway fast path: the event loop that accepts every connection.
 *
 * Worker threads, each with its own epoll set, share the listening socket (EPOLLEXCLUSIVE).
 * A worker peeks at what a connection sent (MSG_PEEK) and answers the plain, complete
 * GET /v1/auth and POST /v1/keys/verify requests itself (h1.h recognises them). Every
 * other request is framed strictly first (kw_h1_head): bad framing is answered by the gate
 * and the connection closed; the rest is relayed to the general server (libmicrohttpd),
 * one checked, re-serialised request at a time. */
#ifndef KW_GATE_H
#define KW_GATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

#include "connguard.h"
#include "http.h"

typedef struct kw_gate kw_gate_t;

/* What happened to a connection, as the gate counts it (kw_gate_opts_t.count): accepted by
 * the gate, handed to the general server at its first request, relayed to it later,
 * refused at --max-connections. */
enum { KW_CONN_ACCEPTED, KW_CONN_HANDED, KW_CONN_RELAYED, KW_CONN_REFUSED, KW_CONN_KINDS };
/* Called from the workers (keep it cheap: relaxed atomics); kind is a KW_CONN_*. */
typedef void (*kw_conn_count_fn)(int kind);

typedef struct kw_gate_opts {
    int listen_fd; /* bound, listening, non-blocking; stays the caller's */
    int threads;
    size_t max_body;
    unsigned max_connections; /* counted in *conns */
    unsigned idle_timeout;    /* seconds without a byte before a connection is closed */
    kw_guard_t *guard;        /* --request-timeout; NULL = off */
    kw_http_handler_fn fn;    /* answers the fast requests */
    void *ud;
    /* Give the connection to the general server; it owns (and closes) fd afterwards.
     * The connection's count in *conns goes with it: the general server releases it when
     * the connection ends (or at once, if it refuses the connection). */
    void (*handoff)(void *hctx, int fd, const struct sockaddr *sa, socklen_t sl);
    void *hctx;
    /* The target prefix under which the general server answers a framing error in order
     * ("<inject><kw_h1_err_t>"); the caller's string, alive while the gate runs. */
    const char *inject;
    /* Client connections open, wherever they are served: the gate adds one per accepted
     * connection and releases those it closes itself. */
    atomic_uint *conns;
    /* Requests the general server is answering (NULL = unknown): while draining, relayed
     * connections are waited for until it has answered and the answers are passed on. */
    atomic_int *inflight;
    kw_conn_count_fn count; /* each connection's path (metrics.h); NULL = not counted */
} kw_gate_opts_t;

/* Start the workers. Returns 0, or -1 with errno set. */
int kw_gate_start(const kw_gate_opts_t *o, kw_gate_t **out);
/* Graceful part of a stop: take the listening socket out of the workers (connections
 * arriving now wait in its backlog, for the next process when it was inherited), answer
 * every further request with Connection: close and close it after, and close connections
 * idle for 200 ms. Returns when the workers hold no connection of their own (relayed ones
 * excepted) or after timeout_ms. Accepts NULL; a second call does nothing. */
void kw_gate_drain(kw_gate_t *g, int timeout_ms);
/* Stop accepting, finish the requests being answered, close the gate's connections and
 * join the workers. Accepts NULL. */
void kw_gate_stop(kw_gate_t *g);

#endif
