/* gate.c - the gateway fast path (see gate.h).
 *
 * A connection starts in PEEK mode: its first request is looked at with recv(MSG_PEEK).
 * If the gate answers it, the answered bytes are dropped (MSG_TRUNC, no copy) and the
 * connection moves to READ mode: one recv, the request(s) answered, one send - nginx's
 * own syscall count. A request the gate does not answer, first or later, is framed
 * strictly (h1.h, RFC 9112): bad framing is answered here (problem+json) and closes;
 * anything else moves the connection to PROXY mode, relayed through a socketpair to the
 * general server with every request framed on the way and forwarded whole and
 * re-serialised, so the general server never parses a byte the gate did not check.
 * Connections are edge-triggered; events of a connection closed in the same batch are
 * skipped (closed connections are freed after the batch).
 * Must not: lose or reorder a byte; block; allocate per request beyond what the handler
 * does. */
#include "gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/util.h"
#include "h1.h"
#include "log.h"
#include "textbuf.h"

/* The request window: a fast request's head and body must fit, or the connection goes to
 * the general server (libmicrohttpd then applies its own limits and answers). */
#define WINDOW 8192
#define PROXY_BUF 16384
#define CIN_BUF KW_H1_MAX_HEAD /* a whole head fits, or it is too large (431) */
#define MAX_EVENTS 64

enum { F_HEAD, F_BODY, F_CHUNKED };

enum { M_PEEK, M_READ, M_PROXY };

typedef struct conn conn_t;

typedef struct side { /* epoll data: which fd of which connection */
    conn_t *c;
    int proxy;
} side_t;

typedef struct pbuf { /* relay buffer: bytes [off, len) are waiting */
    char *p;
    size_t len, off;
} pbuf_t;

struct conn {
    conn_t *prev, *next; /* the worker's list (active), or its list of the closed */
    int fd;
    int mode;
    int dead;
    int counted; /* in *g->o.conns: released by the gate (else by the general server) */
    kw_guard_conn_t *gc;
    long long last_ms; /* CLOCK_MONOTONIC of the last bytes seen */
    char *wbuf;        /* response bytes the socket did not take yet */
    size_t wlen, woff;
    char *in; /* READ mode: an incomplete request's bytes (WINDOW bytes when allocated) */
    size_t in_len;
    /* PROXY mode */
    int pfd;
    int client_eof, proxy_eof, up_shut;
    int rdhup; /* the client has shut its sending side (EPOLLRDHUP seen) */
    pbuf_t up, down;
    /* PROXY mode, client to library: every request is framed strictly (h1.h) before a
     * byte of it goes on, then re-serialised whole (one Content-Length, no chunked) */
    char *cin; /* client bytes not yet framed (CIN_BUF) */
    size_t cin_len;
    int fst; /* F_HEAD, F_BODY, F_CHUNKED */
    int fclose;
    unsigned long long frem;
    kw_h1_chunked_t ck;
    pbuf_t hb, bb; /* the request being framed: its head (without Content-Length), body */
    size_t up_cap; /* up is grown to hold one whole request */
    int upstop;    /* nothing more goes to the library; the client's bytes are dropped */
    unsigned nfwd; /* requests forwarded */
    side_t s0, s1;
    struct sockaddr_storage sa;
    socklen_t sl;
    char peer[INET6_ADDRSTRLEN];
};

typedef struct worker {
    kw_gate_t *g;
    pthread_t tid;
    int ep;
    conn_t *head;
    conn_t *dead;          /* closed in this batch, freed after it */
    char rbuf[WINDOW + 1]; /* +1: a NUL after a body that ends the window */
    char *out;
    size_t out_len, out_cap;
    long long now_ms;
    long long accept_warned;
    int64_t date_t;
    char date[KW_TIME_STR_MAX];
} worker_t;

struct kw_gate {
    kw_gate_opts_t o;
    int evfd; /* written once to stop the workers */
    atomic_int stop;
    int dfd;              /* written once to drain (kw_gate_drain) */
    atomic_int draining;  /* answers say Connection: close; idle connections are closed */
    atomic_int undrained; /* workers still holding a connection of their own */
    worker_t *w;
    int nw;
};

static char listen_tag, stop_tag, drain_tag; /* epoll data for the non-connection fds */

#define DRAIN_IDLE_MS 200 /* while draining, a connection idle this long is closed */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count_conn(const kw_gate_t *g, int kind)
{
    if (g->o.count)
        g->o.count(kind);
}

/* ---- connections ---- */

/* Take c off the active list and out of epoll, and queue it to be freed after the batch.
 * Its fds are the caller's to close or give away. */
static void conn_retire(worker_t *w, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    kw_guard_remove(w->g->o.guard, c->gc); /* before the fd can be reused */
    c->gc = NULL;
    if (c->counted)
        atomic_fetch_sub(w->g->o.conns, 1);
    if (c->pfd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->pfd, NULL);
        close(c->pfd);
    }
    c->dead = 1;
    c->next = w->dead;
    w->dead = c;
}

static void conn_free(conn_t *c)
{
    free(c->wbuf);
    if (c->in) {
        explicit_bzero(c->in, WINDOW); /* may hold a key */
        free(c->in);
    }
    if (c->up.p) {
        explicit_bzero(c->up.p, c->up_cap);
        free(c->up.p);
    }
    if (c->down.p) {
        explicit_bzero(c->down.p, PROXY_BUF);
        free(c->down.p);
    }
    if (c->cin) {
        explicit_bzero(c->cin, CIN_BUF);
        free(c->cin);
    }
    pbuf_t *bs[] = {&c->hb, &c->bb};
    for (size_t i = 0; i < 2; i++)
        if (bs[i]->p) {
            explicit_bzero(bs[i]->p, bs[i]->off); /* off: the capacity, for these two */
            free(bs[i]->p);
        }
    free(c);
}

static void conn_close(worker_t *w, conn_t *c)
{
    conn_retire(w, c);
    close(c->fd);
}

static void accept_all(worker_t *w)
{
    kw_gate_t *g = w->g;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(g->o.listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && w->now_ms - w->accept_warned >= 1000) {
                /* EMFILE and the like: at most one line a second */
                kw_log(KW_LOG_WARN, "accept failed", "{s:s}", "error", strerror(errno));
                w->accept_warned = w->now_ms;
            }
            return;
        }
        unsigned open = atomic_fetch_add(g->o.conns, 1) + 1;
        conn_t *c = NULL;
        if (open > g->o.max_connections || (c = calloc(1, sizeof(*c))) == NULL) {
            atomic_fetch_sub(g->o.conns, 1);
            close(fd); /* at --max-connections: refused */
            count_conn(g, KW_CONN_REFUSED);
            continue;
        }
        count_conn(g, KW_CONN_ACCEPTED);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->pfd = -1;
        c->counted = 1;
        c->mode = M_PEEK;
        c->s0.c = c->s1.c = c;
        c->s1.proxy = 1;
        c->sa = sa;
        c->sl = sl;
        c->last_ms = w->now_ms;
        if (sa.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, c->peer, sizeof(c->peer));
        else if (sa.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, c->peer, sizeof(c->peer));
        c->next = w->head;
        if (w->head)
            w->head->prev = c;
        w->head = c;
        c->gc = kw_guard_add(g->o.guard, fd);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = &c->s0};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_close(w, c);
    }
}

/* ---- the relay (PROXY mode) ---- */

/* Move bytes from fd `from` through b to fd `to`. Returns 1 if anything moved, 0 if
 * nothing could, -1 on a broken socket; sets *eof when `from` ended. */
static int relay_step(int from, int to, pbuf_t *b, int *eof)
{
    int moved = 0;
    if (b->off == b->len && !*eof) {
        b->off = b->len = 0;
        ssize_t n = recv(from, b->p, PROXY_BUF, 0);
        if (n > 0) {
            b->len = (size_t)n;
            moved = 1;
        } else if (n == 0) {
            *eof = 1;
            moved = 1;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
    }
    if (b->off < b->len) {
        ssize_t n = send(to, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n > 0) {
            b->off += (size_t)n;
            moved = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
    }
    return moved;
}

/* ---- strict framing of relayed requests ---- */

static int flush_pending(conn_t *c);

/* Append n bytes to a build buffer (capacity kept in b->off). -1 when out of memory. */
static int bput(pbuf_t *b, const char *p, size_t n)
{
    return kw_wipebuf_append(&b->p, &b->len, &b->off, p, n, 1024);
}

static void bclear(pbuf_t *b)
{
    if (b->p)
        explicit_bzero(b->p, b->len);
    b->len = 0;
}

/* Queue n bytes for the library (up is empty or holds whole requests). */
static int up_put(conn_t *c, const char *p, size_t n)
{
    return kw_wipebuf_append(&c->up.p, &c->up.len, &c->up_cap, p, n, PROXY_BUF);
}

typedef struct fwd_ctx {
    pbuf_t *b;
    int fail;
} fwd_ctx_t;

static int hop_field(const char *n, size_t nl)
{
    static const char *const hop[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive",
        "upgrade",        "proxy-connection",  "expect",     "te",
        "trailer"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == nl && strncasecmp(n, hop[i], nl) == 0)
            return 1;
    return 0;
}

static void fwd_field(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    fwd_ctx_t *x = ud;
    if (hop_field(n, nl))
        return; /* framing and hop-by-hop fields: written by the gate */
    if (bput(x->b, n, nl) || bput(x->b, ": ", 2) || bput(x->b, v, vl) || bput(x->b, "\r\n", 2))
        x->fail = 1;
}

static void body_data(void *ud, const char *p, size_t n)
{
    fwd_ctx_t *x = ud;
    if (bput(x->b, p, n))
        x->fail = 1;
}

/* The request is bad: nothing more of the client goes on, and the library is asked to
 * answer the error itself, after the answers it owes for the requests before it. */
static int inject_error(worker_t *w, conn_t *c, kw_h1_err_t e)
{
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "GET %s%d HTTP/1.1\r\nHost: keyward\r\nConnection: close\r\n\r\n",
                     w->g->o.inject, (int)e);
    kw_log(KW_LOG_DEBUG, "request refused: bad framing", "{s:i, s:s}", "status",
           kw_h1_err_status(e), "why", kw_h1_err_text(e));
    c->upstop = 1;
    bclear(&c->hb);
    bclear(&c->bb);
    return up_put(c, line, (size_t)n);
}

/* The request in hb/bb is complete: queue it for the library as one piece. */
static int finish_request(conn_t *c)
{
    char cl[48];
    int n = 0;
    if (c->bb.len)
        n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", c->bb.len);
    if (up_put(c, c->hb.p, c->hb.len) || up_put(c, cl, (size_t)n) || up_put(c, "\r\n", 2) ||
        (c->bb.len && up_put(c, c->bb.p, c->bb.len)))
        return -1;
    bclear(&c->hb);
    bclear(&c->bb);
    c->fst = F_HEAD;
    c->nfwd++;
    if (c->fclose)
        c->upstop = 1; /* the library closes after answering it ("Connection: close") */
    return 0;
}

/* Frame what the client sent (c->cin) into at most one complete request in c->up.
 * Returns 1 if anything changed, 0 if more bytes are needed, -1 when out of memory. */
static int frame(worker_t *w, conn_t *c)
{
    size_t used = 0;
    int rc = 0, fail = 0;
    while (used < c->cin_len && !c->upstop && c->up.len == 0 && !fail) {
        const char *in = c->cin + used;
        size_t avail = c->cin_len - used;
        if (c->fst == F_HEAD) {
            kw_h1_head_t h;
            int r = kw_h1_head(in, avail, w->g->o.max_body, &h);
            if (r == 0 && avail < KW_H1_MAX_HEAD)
                break; /* more bytes needed */
            rc = 1;
            if (r == 0 || h.err) {
                fail = inject_error(w, c, r == 0 ? KW_H1_E_HEAD_LARGE : h.err);
                break;
            }
            fwd_ctx_t x = {.b = &c->hb};
            if (bput(&c->hb, in, h.line_len) || bput(&c->hb, "\r\n", 2))
                x.fail = 1;
            kw_h1_head_fields(in, &h, fwd_field, &x);
            if (h.close && bput(&c->hb, "Connection: close\r\n", 19))
                x.fail = 1;
            else if (!h.close && h.http10 && bput(&c->hb, "Connection: keep-alive\r\n", 24))
                x.fail = 1;
            if (x.fail) {
                fail = -1;
                break;
            }
            /* Expect: 100-continue (the only one h1 lets through): the body is collected
             * here before the library sees the request, so the gate says "go on" - when
             * no earlier answer of the library can still be on its way to the client. */
            if (h.expect_continue && h.body != KW_H1_BODY_NONE && c->nfwd == 0 && avail == h.len) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                ssize_t k = send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
                (void)k;
            }
            used += h.len;
            c->fclose = h.close;
            memset(&c->ck, 0, sizeof(c->ck));
            c->frem = h.length;
            c->fst = h.body == KW_H1_BODY_CHUNKED  ? F_CHUNKED
                     : h.body == KW_H1_BODY_LENGTH ? F_BODY
                                                   : F_HEAD;
            if (c->fst == F_HEAD)
                fail = finish_request(c);
        } else if (c->fst == F_BODY) {
            size_t k = avail < c->frem ? avail : (size_t)c->frem;
            if (bput(&c->bb, in, k)) {
                fail = -1;
                break;
            }
            used += k;
            rc = 1;
            if ((c->frem -= k) == 0)
                fail = finish_request(c);
        } else {
            fwd_ctx_t x = {.b = &c->bb};
            size_t k = 0;
            int r = kw_h1_chunked(&c->ck, in, avail, w->g->o.max_body, &k, body_data, &x);
            used += k;
            rc = 1;
            if (x.fail)
                fail = -1;
            else if (r < 0)
                fail = inject_error(w, c, (kw_h1_err_t)-r);
            else if (r == 1)
                fail = finish_request(c);
            else
                break;
        }
    }
    if (used) {
        explicit_bzero(c->cin, used);
        memmove(c->cin, c->cin + used, c->cin_len - used);
        c->cin_len -= used;
    }
    if (c->upstop && c->cin_len) { /* dropped: nothing after a close or an error is served */
        explicit_bzero(c->cin, c->cin_len);
        c->cin_len = 0;
    }
    return fail ? -1 : rc;
}

/* Client to library: send what is queued, read the client, frame. 1 if anything moved,
 * 0 if nothing could, -1 when the client's socket broke (or out of memory). */
static int relay_up(worker_t *w, conn_t *c)
{
    int moved = 0;
    if (c->up.off < c->up.len) {
        if (c->up_shut) { /* the library stopped reading: what it owes still comes down */
            c->up.off = c->up.len;
        } else {
            ssize_t n = send(c->pfd, c->up.p + c->up.off, c->up.len - c->up.off, MSG_NOSIGNAL);
            if (n > 0) {
                c->up.off += (size_t)n;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c->up_shut = 1; /* the library closed; the down side sees its EOF */
                c->up.off = c->up.len;
                moved = 1;
            }
        }
        if (c->up.off < c->up.len)
            return moved;
        explicit_bzero(c->up.p, c->up.len);
        c->up.off = c->up.len = 0;
    }
    if (!c->client_eof && c->cin_len < CIN_BUF) {
        ssize_t n = recv(c->fd, c->cin + c->cin_len, CIN_BUF - c->cin_len, 0);
        if (n > 0) {
            c->cin_len += (size_t)n;
            c->last_ms = w->now_ms;
            moved = 1;
        } else if (n == 0) {
            c->client_eof = 1;
            moved = 1;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
    }
    int f = frame(w, c);
    if (f < 0)
        return -1;
    if (f > 0)
        moved = 1;
    if (c->client_eof && c->up.len == 0 && !c->up_shut) {
        shutdown(c->pfd, SHUT_WR); /* the client finished sending */
        c->up_shut = 1;
        moved = 1;
    }
    return moved;
}

/* Drive both directions until neither can move (edge-triggered: every fd is then at
 * EAGAIN, or waits on a full buffer whose drain is an event of its own). */
static void relay(worker_t *w, conn_t *c)
{
    for (;;) {
        int b = 0;
        if (c->wlen) { /* the gate's own answers from before the relay go first */
            int s = flush_pending(c);
            if (s < 0) {
                conn_close(w, c);
                return;
            }
            b = s == 0;
        }
        int a = relay_up(w, c);
        if (c->wlen == 0) {
            int d = relay_step(c->pfd, c->fd, &c->down, &c->proxy_eof);
            b = b || d != 0;
            if (d < 0)
                a = -1;
        }
        if (a < 0) {
            conn_close(w, c);
            return;
        }
        if (c->proxy_eof && c->down.off == c->down.len) { /* the library closed */
            shutdown(c->fd, SHUT_WR);
            conn_close(w, c);
            return;
        }
        if (a == 0 && b == 0)
            return;
    }
}

/* A connection whose next request the gate does not answer: relay it to the library,
 * starting with the bytes already read (first: it is the connection's first request). */
static void proxy_start(worker_t *w, conn_t *c, const char *pending, size_t n, int first)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        conn_close(w, c);
        return;
    }
    c->cin = malloc(CIN_BUF);
    c->down.p = malloc(PROXY_BUF);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &c->s1};
    if (c->cin == NULL || c->down.p == NULL || epoll_ctl(w->ep, EPOLL_CTL_ADD, sv[0], &ev)) {
        close(sv[0]);
        close(sv[1]);
        conn_close(w, c);
        return;
    }
    memcpy(c->cin, pending, n);
    c->cin_len = n;
    c->fst = F_HEAD;
    c->pfd = sv[0];
    c->mode = M_PROXY;
    c->client_eof = 0;                     /* (READ mode reuses it for "close when flushed") */
    kw_guard_remove(w->g->o.guard, c->gc); /* the library's guard watches its side */
    c->gc = NULL;
    c->counted = 0; /* the library releases it when its side closes */
    count_conn(w->g, first ? KW_CONN_HANDED : KW_CONN_RELAYED);
    w->g->o.handoff(w->g->o.hctx, sv[1], (struct sockaddr *)&c->sa, c->sl);
    relay(w, c);
}

/* ---- responses ---- */

static int out_reserve(worker_t *w, size_t n)
{
    return kw_grow(&w->out, &w->out_cap, w->out_len + n, 16384);
}

static void put(worker_t *w, const char *s, size_t n)
{
    memcpy(w->out + w->out_len, s, n);
    w->out_len += n;
}

static void puts_(worker_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_uint(worker_t *w, unsigned long long v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, t + i, sizeof(t) - i);
}

/* The Date header for now (the request's own clock reading), formatted once a second. */
static const char *http_date(worker_t *w, int64_t now)
{
    if (now != w->date_t) {
        kw_time_format_http(now, w->date);
        w->date_t = now;
    }
    return w->date;
}

/* Append rs as an HTTP/1.1 response. -1 when out of memory. */
static int put_response(worker_t *w, const kw_resp_t *rs, int64_t now, int close_after)
{
    const char *reason = MHD_get_reason_phrase_for((unsigned)rs->status);
    size_t need = 160 + strlen(reason) + rs->len + (rs->ctype ? strlen(rs->ctype) : 0);
    for (size_t i = 0; i < rs->nh; i++)
        need += strlen(rs->hname[i]) + strlen(rs->hval[i]) + 4;
    if (out_reserve(w, need) != 0)
        return -1;
    puts_(w, "HTTP/1.1 ");
    put_uint(w, (unsigned)rs->status);
    put(w, " ", 1);
    puts_(w, reason);
    puts_(w, "\r\nDate: ");
    puts_(w, http_date(w, now));
    puts_(w, "\r\n");
    if (close_after)
        puts_(w, "Connection: close\r\n");
    for (size_t i = 0; i < rs->nh; i++) {
        puts_(w, rs->hname[i]);
        put(w, ": ", 2);
        puts_(w, rs->hval[i]);
        put(w, "\r\n", 2);
    }
    if (rs->status != 204 && rs->status != 304) {
        puts_(w, "Content-Length: ");
        put_uint(w, rs->len);
        puts_(w, "\r\n");
        if (rs->ctype && rs->len) {
            puts_(w, "Content-Type: ");
            puts_(w, rs->ctype);
            puts_(w, "\r\n");
        }
    }
    put(w, "\r\n", 2);
    if (rs->len && rs->status != 204 && rs->status != 304)
        put(w, rs->body, rs->len);
    return 0;
}

/* Append the problem+json answer to a framing error, closing the connection. */
static int put_framing_error(worker_t *w, kw_h1_err_t e, int64_t now)
{
    kw_resp_t rs = {0};
    kw_resp_framing(&rs, kw_h1_err_status(e), kw_h1_err_text(e));
    int rc = put_response(w, &rs, now, 1);
    kw_resp_clear(&rs);
    return rc;
}

/* ---- requests ---- */

/* Answer the request r recognised at p (inside w->rbuf). -1 when out of memory. */
static int answer(worker_t *w, conn_t *c, char *p, const kw_h1_req_t *r)
{
    const char *kv[2 * KW_H1_MAX_FIELDS + 1];
    size_t n = 0;
    /* NUL-terminate names (at their ':') and values (at their first trailing byte) in
     * place; the byte after the body may begin the next request, so it is restored. */
    for (size_t i = 0; i < r->nf; i++) {
        const kw_h1_field_t *f = &r->f[i];
        p[f->name + f->name_len] = '\0';
        p[f->value + f->value_len] = '\0';
        kv[n++] = p + f->name;
        kv[n++] = p + f->value;
    }
    kv[n] = NULL;
    char saved = p[r->len];
    p[r->len] = '\0';

    kw_req_t rq = {0};
    rq.method = r->kind == KW_H1_AUTH ? "GET" : "POST";
    rq.path = r->kind == KW_H1_AUTH    ? "/v1/auth"
              : r->kind == KW_H1_TOKEN ? "/oauth2/token" /* oauth: issuance writes no disk */
                                       : "/v1/keys/verify";
    rq.body = r->body_len ? p + r->body : NULL;
    rq.body_len = r->body_len;
    rq.hdrs = kv;
    rq.peer = c->peer;
    rq.now = kw_now();
    kw_resp_t rs = {0};
    w->g->o.fn(w->g->o.ud, &rq, &rs);
    free(rq.path_copy);
    int rc = put_response(w, &rs, rq.now, r->close || atomic_load(&w->g->draining));
    kw_resp_clear(&rs);
    p[r->len] = saved;
    return rc;
}

/* Send p[*off..n) to fd, advancing *off. 0: all sent; 1: the socket is full (wait for
 * EPOLLOUT); -1: the connection is gone. */
static int send_from(int fd, const char *p, size_t n, size_t *off)
{
    while (*off < n) {
        ssize_t k = send(fd, p + *off, n - *off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
        *off += (size_t)k;
    }
    return 0;
}

/* Send what is pending for c (see send_from for the result). */
static int flush_pending(conn_t *c)
{
    int rc = send_from(c->fd, c->wbuf, c->wlen, &c->woff);
    if (rc == 0) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = c->woff = 0;
    }
    return rc;
}

/* Send w->out to c, keeping what the socket does not take as c's pending bytes. */
static int send_out(worker_t *w, conn_t *c)
{
    size_t off = 0;
    int rc = send_from(c->fd, w->out, w->out_len, &off);
    if (rc != 1)
        return rc;
    if ((c->wbuf = malloc(w->out_len - off)) == NULL)
        return -1;
    memcpy(c->wbuf, w->out + off, w->out_len - off);
    c->wlen = w->out_len - off;
    c->woff = 0;
    return 1;
}

/* Bytes arrived (or may have) on c, in PEEK or READ mode: answer what can be answered. */
static void conn_read(worker_t *w, conn_t *c)
{
    kw_gate_t *g = w->g;
    for (;;) {
        size_t have = 0;
        if (c->in_len) { /* READ mode: the start of an incomplete request */
            memcpy(w->rbuf, c->in, c->in_len);
            have = c->in_len;
        }
        int peek = c->mode == M_PEEK;
        ssize_t n = recv(c->fd, w->rbuf + have, WINDOW - have, peek ? MSG_PEEK : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(w, c);
            return;
        }
        if (n == 0) { /* the client left */
            conn_close(w, c);
            return;
        }
        c->last_ms = w->now_ms;
        size_t total = have + (size_t)n, off = 0;
        int close_after = 0;
        kw_h1_req_t r;
        kw_h1_kind_t kind = KW_H1_INCOMPLETE;
        w->out_len = 0;
        while (off < total) {
            kind = kw_h1_parse(w->rbuf + off, total - off, g->o.max_body, &r);
            if (kind == KW_H1_INCOMPLETE || kind == KW_H1_OTHER)
                break;
            if (answer(w, c, w->rbuf + off, &r) != 0) {
                conn_close(w, c);
                return;
            }
            off += r.len;
            kw_guard_rearm(g->o.guard, c->gc);
            if (r.close || atomic_load(&g->draining)) {
                close_after = 1;
                break;
            }
        }
        size_t rest = total - off;
        /* A request the gate does not answer: framed strictly first. A framing error is
         * answered here, in order after the answers above, and the connection closes;
         * anything else goes to the library through the framing relay. */
        int to_proxy = 0;
        if (rest && kind == KW_H1_OTHER) {
            kw_h1_head_t h;
            if (kw_h1_head(w->rbuf + off, rest, g->o.max_body, &h) == 1 && h.err) {
                if (put_framing_error(w, h.err, kw_now()) != 0) {
                    conn_close(w, c);
                    return;
                }
                close_after = 1;
            } else {
                to_proxy = 1;
            }
        } else if (rest == WINDOW) {
            to_proxy = 1; /* too large for the fast path */
        }
        /* PEEK mode: drop exactly the bytes answered (or taken), without copying them */
        size_t drop = to_proxy || close_after ? total : off;
        if (peek && drop > 0) {
            ssize_t d;
            do
                d = recv(c->fd, w->rbuf, drop, MSG_TRUNC | MSG_DONTWAIT);
            while (d < 0 && errno == EINTR);
            if (d != (ssize_t)drop) {
                conn_close(w, c);
                return;
            }
            c->mode = M_READ; /* what follows is unread, in the socket */
        }
        if (w->out_len) {
            int s = send_out(w, c);
            if (s < 0) {
                conn_close(w, c);
                return;
            }
            /* s > 0: the rest goes on EPOLLOUT; what was read is settled below first */
        }
        if (close_after) {
            explicit_bzero(w->rbuf, total);
            if (c->wlen == 0) { /* else closed once the response is out */
                shutdown(c->fd, SHUT_WR);
                conn_close(w, c);
            } else {
                c->client_eof = 1; /* reused: "close when flushed" */
            }
            return;
        }
        explicit_bzero(w->rbuf, off); /* answered requests' bytes (keys): gone */
        if (to_proxy) {
            proxy_start(w, c, w->rbuf + off, rest, peek);
            explicit_bzero(w->rbuf + off, rest);
            return;
        }
        if (!peek) {
            if (rest) { /* keep the incomplete request for the next bytes */
                if (c->in == NULL && (c->in = malloc(WINDOW)) == NULL) {
                    conn_close(w, c);
                    return;
                }
                memmove(c->in, w->rbuf + off, rest);
            }
            c->in_len = rest;
        }
        if (c->wlen) /* resumed on EPOLLOUT */
            return;
        /* All there was has been seen and new bytes re-arm the edge - unless the client
         * has half-closed: that edge came with these bytes, so read on to the end. */
        if (have + (size_t)n < WINDOW && !c->rdhup)
            return;
        if (peek && off == 0) { /* half-closed before its first request was complete */
            conn_close(w, c);
            return;
        }
    }
}

static void conn_event(worker_t *w, side_t *sd, uint32_t events)
{
    conn_t *c = sd->c;
    if (c->dead)
        return;
    if (c->mode == M_PROXY) {
        relay(w, c);
        return;
    }
    if (events & EPOLLERR) {
        conn_close(w, c);
        return;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP))
        c->rdhup = 1;
    if (c->wlen) {
        int s = flush_pending(c);
        if (s < 0) {
            conn_close(w, c);
            return;
        }
        if (s > 0)
            return;
        if (c->client_eof) { /* its last response is out */
            shutdown(c->fd, SHUT_WR);
            conn_close(w, c);
            return;
        }
    }
    conn_read(w, c);
}

static void sweep_idle(worker_t *w, long long now)
{
    long long limit = (long long)w->g->o.idle_timeout * 1000;
    for (conn_t *c = w->head, *next; c; c = next) {
        next = c->next;
        if (c->mode != M_PROXY && now - c->last_ms >= limit) /* the library times proxies */
            conn_close(w, c);
    }
}

/* Draining: close the connections of this worker that wait for nothing (no request
 * bytes, no response bytes) since DRAIN_IDLE_MS; say whether it still holds any of its own
 * (relayed ones belong to the general server's stop, unless a request is still arriving). */
static int sweep_drain(worker_t *w, long long now)
{
    int left = 0;
    for (conn_t *c = w->head, *next; c; c = next) {
        next = c->next;
        if (c->mode == M_PROXY) {
            /* relayed: waited for while a request is still arriving, being answered by the
             * general server, or its answer is not yet passed on to the client */
            int unread = 0;
            if (c->pfd >= 0 && ioctl(c->pfd, FIONREAD, &unread) != 0)
                unread = 0;
            const atomic_int *busy = w->g->o.inflight;
            left |= c->cin_len > 0 || c->fst != F_HEAD || c->up.len > c->up.off ||
                    c->down.len > c->down.off || unread > 0 || (busy && atomic_load(busy) > 0);
            continue;
        }
        int pending = 0; /* a first request still arriving is only peeked: in the socket */
        if (ioctl(c->fd, FIONREAD, &pending) != 0)
            pending = 0;
        if (c->wlen == 0 && c->in_len == 0 && pending == 0 && now - c->last_ms >= DRAIN_IDLE_MS)
            conn_close(w, c);
        else
            left = 1;
    }
    return left;
}

static void free_dead(worker_t *w)
{
    while (w->dead) {
        conn_t *c = w->dead;
        w->dead = c->next;
        conn_free(c);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    kw_gate_t *g = w->g;
    struct epoll_event evs[MAX_EVENTS];
    long long last_sweep = mono_ms();
    int drained = 0;
    while (!atomic_load(&g->stop)) {
        int draining = atomic_load(&g->draining);
        int n = epoll_wait(w->ep, evs, MAX_EVENTS, draining ? 50 : 1000);
        w->now_ms = mono_ms();
        for (int i = 0; i < n && !atomic_load(&g->stop); i++) {
            void *p = evs[i].data.ptr;
            if (p == &listen_tag)
                accept_all(w);
            else if (p == &drain_tag) { /* stop accepting; the backlog is left in the socket */
                epoll_ctl(w->ep, EPOLL_CTL_DEL, g->o.listen_fd, NULL);
                epoll_ctl(w->ep, EPOLL_CTL_DEL, g->dfd, NULL);
            } else if (p != &stop_tag)
                conn_event(w, p, evs[i].events);
        }
        free_dead(w);
        if (draining && !drained && !sweep_drain(w, w->now_ms)) {
            drained = 1;
            atomic_fetch_sub(&g->undrained, 1);
        }
        free_dead(w);
        if (w->now_ms - last_sweep >= 1000) {
            sweep_idle(w, w->now_ms);
            free_dead(w);
            last_sweep = w->now_ms;
        }
    }
    while (w->head)
        conn_close(w, w->head);
    free_dead(w);
    return NULL;
}

int kw_gate_start(const kw_gate_opts_t *o, kw_gate_t **out)
{
    kw_gate_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -1;
    g->o = *o;
    if (g->o.threads < 1)
        g->o.threads = 1;
    atomic_init(&g->stop, 0);
    atomic_init(&g->draining, 0);
    atomic_init(&g->undrained, g->o.threads);
    g->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g->dfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g->w = calloc((size_t)g->o.threads, sizeof(worker_t));
    if (g->evfd < 0 || g->dfd < 0 || g->w == NULL)
        goto fail;
    for (g->nw = 0; g->nw < g->o.threads; g->nw++) {
        worker_t *w = &g->w[g->nw];
        w->g = g;
        if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
            goto fail;
        struct epoll_event le = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag};
        struct epoll_event se = {.events = EPOLLIN, .data.ptr = &stop_tag};
        struct epoll_event de = {.events = EPOLLIN, .data.ptr = &drain_tag};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, o->listen_fd, &le) != 0 ||
            epoll_ctl(w->ep, EPOLL_CTL_ADD, g->evfd, &se) != 0 ||
            epoll_ctl(w->ep, EPOLL_CTL_ADD, g->dfd, &de) != 0 ||
            pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            close(w->ep);
            goto fail;
        }
    }
    *out = g;
    return 0;
fail : {
    int e = errno;
    kw_gate_stop(g);
    errno = e;
    return -1;
}
}

void kw_gate_drain(kw_gate_t *g, int timeout_ms)
{
    if (g == NULL || atomic_exchange(&g->draining, 1))
        return;
    uint64_t one = 1;
    ssize_t wr = write(g->dfd, &one, sizeof(one));
    (void)wr;
    for (int waited = 0; atomic_load(&g->undrained) > 0 && waited < timeout_ms; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void kw_gate_stop(kw_gate_t *g)
{
    if (g == NULL)
        return;
    atomic_store(&g->stop, 1);
    if (g->evfd >= 0) {
        uint64_t one = 1;
        ssize_t wr = write(g->evfd, &one, sizeof(one));
        (void)wr;
    }
    for (int i = 0; i < g->nw; i++) {
        pthread_join(g->w[i].tid, NULL);
        close(g->w[i].ep);
        free(g->w[i].out);
    }
    if (g->evfd >= 0)
        close(g->evfd);
    if (g->dfd >= 0)
        close(g->dfd);
    free(g->w);
    free(g);
}
