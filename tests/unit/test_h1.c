/* test_h1.c - the gateway fast path's request recogniser: what it answers itself, what it
 * waits for, and everything it must hand over to the general server. */
#include <stdio.h>
#include <string.h>

#include "server/h1.h"
#include "t.h"

#define AUTH_HEAD "GET /v1/auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer kw_abc\r\n"
#define VERIFY_BODY "{\"key\":\"kw_x\",\"ip\":5}"

static kw_h1_kind_t parse(const char *s, kw_h1_req_t *r)
{
    return kw_h1_parse(s, strlen(s), 65536, r);
}

static kw_h1_kind_t kind_of(const char *s)
{
    kw_h1_req_t r;
    return parse(s, &r);
}

/* the value of field name in r, copied to buf */
static const char *field(const char *s, const kw_h1_req_t *r, const char *name, char *buf)
{
    for (size_t i = 0; i < r->nf; i++)
        if (r->f[i].name_len == strlen(name) &&
            strncmp(s + r->f[i].name, name, strlen(name)) == 0) {
            memcpy(buf, s + r->f[i].value, r->f[i].value_len);
            buf[r->f[i].value_len] = '\0';
            return buf;
        }
    return NULL;
}

static void test_auth(void)
{
    const char *s = AUTH_HEAD "X-Keyward-Scope:  orders:read \t\r\n\r\nGET /next";
    kw_h1_req_t r;
    char b[64];
    T_EQ_INT(parse(s, &r), KW_H1_AUTH);
    T_EQ_INT(r.len, strlen(s) - strlen("GET /next"));
    T_EQ_INT(r.nf, 3);
    T_EQ_STR(field(s, &r, "Authorization", b), "Bearer kw_abc");
    T_EQ_STR(field(s, &r, "X-Keyward-Scope", b), "orders:read");
    T_EQ_INT(r.close, 0);
    T_EQ_INT(kind_of(AUTH_HEAD "Connection: close\r\n\r\n"), KW_H1_AUTH);
    T_CHECK(parse(AUTH_HEAD "connection: Close\r\n\r\n", &r) == KW_H1_AUTH && r.close == 1);
    T_EQ_INT(kind_of(AUTH_HEAD "Connection: keep-alive\r\n\r\n"), KW_H1_AUTH);
    T_EQ_INT(kind_of(AUTH_HEAD "Content-Length: 0\r\n\r\n"), KW_H1_AUTH);
    T_EQ_INT(kind_of(AUTH_HEAD "Empty:\r\n\r\n"), KW_H1_AUTH);
}

static void test_verify(void)
{
    char s[512];
    kw_h1_req_t r;
    /* the header order Python's http.client uses, body in the same buffer */
    snprintf(s, sizeof(s),
             "POST /v1/keys/verify HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAccept-Encoding: identity\r\n"
             "Content-Length: %zu\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n%s",
             strlen(VERIFY_BODY), VERIFY_BODY);
    T_EQ_INT(parse(s, &r), KW_H1_VERIFY);
    T_EQ_INT(r.len, strlen(s));
    T_EQ_INT(r.body_len, strlen(VERIFY_BODY));
    T_CHECK(memcmp(s + r.body, VERIFY_BODY, r.body_len) == 0);
    T_EQ_INT(r.close, 1);
    /* every prefix of it is worth waiting for */
    int waits = 1;
    for (size_t n = 0; n < strlen(s); n++)
        waits &= kw_h1_parse(s, n, 65536, &r) == KW_H1_INCOMPLETE;
    T_CHECK(waits);
    /* no body: an empty one */
    T_EQ_INT(kind_of("POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\n\r\n"), KW_H1_VERIFY);
    /* a body over max_body is the general server's 413 */
    snprintf(s, sizeof(s), "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n");
    T_EQ_INT(kw_h1_parse(s, strlen(s), 8, &r), KW_H1_OTHER);
}

/* oauth: POST /oauth2/token (SPEC §13) is answered by the fast path too */
static void test_token(void)
{
    const char *body = "grant_type=client_credentials";
    char s[512];
    kw_h1_req_t r;
    snprintf(s, sizeof(s),
             "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    T_EQ_INT(parse(s, &r), KW_H1_TOKEN);
    T_EQ_INT(r.body_len, strlen(body));
    int waits = 1;
    for (size_t n = 0; n < strlen(s); n++)
        waits &= kw_h1_parse(s, n, 65536, &r) == KW_H1_INCOMPLETE;
    T_CHECK(waits);
    T_EQ_INT(kind_of("POST /oauth2/token?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"), KW_H1_OTHER);
    T_EQ_INT(kind_of("POST /oauth2/revoke HTTP/1.1\r\nHost: x\r\n\r\n"), KW_H1_OTHER);
    T_EQ_INT(kind_of("GET /oauth2/token HTTP/1.1\r\nHost: x\r\n\r\n"), KW_H1_OTHER);
}

static void test_handed_over(void)
{
    static const char *const other[] = {
        "GET /v1/credentials HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/auth?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/auth HTTP/1.0\r\nHost: x\r\n\r\n",
        "GET /v1/authz HTTP/1.1\r\n",
        "HEAD /v1/auth HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\nGET /v1/auth HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/auth HTTP/1.1\r\n\r\n",                       /* no Host */
        "GET /v1/auth HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", /* two */
        AUTH_HEAD "Content-Length: 1\r\n\r\nx",                /* a body */
        AUTH_HEAD "Transfer-Encoding: chunked\r\n\r\n",
        AUTH_HEAD "Expect: 100-continue\r\n\r\n",
        AUTH_HEAD "Upgrade: h2c\r\n\r\n",
        AUTH_HEAD "Connection: upgrade\r\n\r\n",
        AUTH_HEAD " folded\r\n\r\n",
        AUTH_HEAD "Bad Name: x\r\n\r\n",
        AUTH_HEAD "Name : x\r\n\r\n",
        AUTH_HEAD ": x\r\n\r\n",
        AUTH_HEAD "X: a\nb\r\n\r\n",
        AUTH_HEAD "X: a\x01\r\n\r\n",
        AUTH_HEAD "X: caf\xc3\xa9\r\n\r\n",
        AUTH_HEAD "X: a\r\r\n\r\n",
        AUTH_HEAD "\rX\r\n",
        "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\nx",
        "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: "
        "1\r\n\r\nx",
        "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
    };
    int all = 1;
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (kind_of(other[i]) != KW_H1_OTHER) {
            printf("# not handed over: case %zu\n", i);
            all = 0;
        }
    }
    T_CHECK(all);
}

static void test_many_fields(void)
{
    char s[4096] = "GET /v1/auth HTTP/1.1\r\nHost: x\r\n";
    for (int i = 1; i < KW_H1_MAX_FIELDS; i++)
        snprintf(s + strlen(s), sizeof(s) - strlen(s), "X-%d: v\r\n", i);
    strcat(s, "\r\n");
    T_EQ_INT(kind_of(s), KW_H1_AUTH); /* exactly the maximum */
    s[strlen(s) - 2] = '\0';
    strcat(s, "X-last: v\r\n\r\n");
    T_EQ_INT(kind_of(s), KW_H1_OTHER); /* one more */
}

static void test_waiting(void)
{
    T_EQ_INT(kind_of(""), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of("G"), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of("POST /v1/ke"), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of(AUTH_HEAD), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of(AUTH_HEAD "\r"), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of("P"), KW_H1_INCOMPLETE);
    T_EQ_INT(kind_of("X"), KW_H1_OTHER);
}

/* ---- strict framing (kw_h1_head, kw_h1_chunked) ---- */

static kw_h1_err_t head_err(const char *s)
{
    kw_h1_head_t h;
    int d = kw_h1_head(s, strlen(s), 100, &h);
    return d == 1 ? h.err : (kw_h1_err_t)-1;
}

static void test_head_refusals(void)
{
#define RL "POST /v1/credentials HTTP/1.1\r\nHost: t\r\n"
    T_EQ_INT(head_err(RL "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"), KW_H1_E_CL_DIFFER);
    T_EQ_INT(head_err(RL "Content-Length: -1\r\n\r\n"), KW_H1_E_CL_BAD);
    T_EQ_INT(head_err(RL "Content-Length: +12\r\n\r\n"), KW_H1_E_CL_BAD);
    T_EQ_INT(head_err(RL "Content-Length: abc\r\n\r\n"), KW_H1_E_CL_BAD);
    T_EQ_INT(head_err(RL "Content-Length: 1, 1\r\n\r\n"), KW_H1_E_CL_BAD);
    T_EQ_INT(head_err(RL "Transfer-Encoding: xchunked\r\n\r\n"), KW_H1_E_TE_UNKNOWN);
    T_EQ_INT(head_err(RL "Transfer-Encoding: gzip, chunked\r\n\r\n"), KW_H1_E_TE_UNKNOWN);
    T_EQ_INT(head_err(RL "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
             KW_H1_E_TE_UNKNOWN);
    T_EQ_INT(head_err(RL "X: a\r\n b\r\n\r\n"), KW_H1_E_FOLD);
    T_EQ_INT(head_err(RL "X : a\r\n\r\n"), KW_H1_E_WS_COLON);
    T_EQ_INT(head_err(RL "X: a\rb\r\n\r\n"), KW_H1_E_BARE_CR);
    T_EQ_INT(head_err(RL "X: a\n\r\n"), KW_H1_E_BARE_LF);
    T_EQ_INT(head_err(RL "X: a\001\r\n\r\n"), KW_H1_E_FIELD);
    T_EQ_INT(head_err(RL "Content-Length: 101\r\n\r\n"), KW_H1_E_TOO_BIG);
    T_EQ_INT(head_err(RL "Expect: later\r\n\r\n"), KW_H1_E_EXPECT);
    T_EQ_INT(head_err("GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n"), KW_H1_E_NUL);
    T_EQ_INT(head_err("GET /_kw/x HTTP/1.1\r\nHost: t\r\n\r\n"), KW_H1_E_RESERVED);
    T_EQ_INT(head_err("GET http://x/ HTTP/1.1\r\nHost: t\r\n\r\n"), KW_H1_E_TARGET);
    T_EQ_INT(head_err("GET / HTTP/2.0\r\n\r\n"), KW_H1_E_VERSION);
    T_EQ_INT(head_err("GET / HTTP/1.1\r\n\r\n"), KW_H1_E_HOST);
    T_EQ_INT(head_err("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), KW_H1_E_TE_HTTP10);
    T_EQ_INT(kw_h1_err_status(KW_H1_E_TE_UNKNOWN), 501);
    T_EQ_INT(kw_h1_err_status(KW_H1_E_VERSION), 505);
    /* decided before the head ends: no waiting for a request that cannot be valid */
    T_EQ_INT(head_err(RL "Content-Length: x"), (kw_h1_err_t)-1); /* value not ended yet */
    T_EQ_INT(head_err(RL "Content-Length: x\r\n"), KW_H1_E_CL_BAD);
    T_EQ_INT(head_err("GET / HTTP/1.1\r\nHost: t\r\n"), (kw_h1_err_t)-1);
}

static void test_head_accepts(void)
{
    kw_h1_head_t h;
    const char *s = RL "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    T_EQ_INT(kw_h1_head(s, strlen(s), 100, &h), 1);
    T_EQ_INT(h.err, KW_H1_OK);
    T_EQ_INT(h.body, KW_H1_BODY_LENGTH);
    T_EQ_INT((int)h.length, 5);
    T_EQ_INT((int)h.len, (int)(strlen(s) - 5));
    T_EQ_INT(h.close, 0);
    s = RL "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    T_EQ_INT(kw_h1_head(s, strlen(s), 100, &h), 1);
    T_EQ_INT(h.body, KW_H1_BODY_CHUNKED);
    T_CHECK(h.cl_and_te && h.close); /* TE wins, and the connection closes after */
    s = "GET /healthz HTTP/1.0\r\n\r\n";
    T_EQ_INT(kw_h1_head(s, strlen(s), 100, &h), 1);
    T_CHECK(h.err == KW_H1_OK && h.http10 && h.close);
    s = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n";
    T_EQ_INT(kw_h1_head(s, strlen(s), 100, &h), 1);
    T_CHECK(h.err == KW_H1_OK && h.close);
#undef RL
}

typedef struct buf {
    char b[256];
    size_t n;
} buf_t;

static void put(void *ud, const char *p, size_t n)
{
    buf_t *b = ud;
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static int chunked(const char *s, size_t max, buf_t *b, size_t *used)
{
    kw_h1_chunked_t c = {0};
    memset(b, 0, sizeof(*b));
    return kw_h1_chunked(&c, s, strlen(s), max, used, put, b);
}

static void test_chunked(void)
{
    buf_t b;
    size_t used;
    const char *s = "5\r\nhello\r\n6;a=b\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    T_EQ_INT(chunked(s, 100, &b, &used), 1);
    T_EQ_INT((int)used, (int)(strlen(s) - 4));
    T_EQ_INT((int)b.n, 11);
    T_CHECK(memcmp(b.b, "hello world", 11) == 0);
    T_EQ_INT(chunked("5\r\nhel", 100, &b, &used), 0); /* more needed */
    T_EQ_INT(chunked("zz\r\n", 100, &b, &used), -KW_H1_E_CHUNK);
    T_EQ_INT(chunked("5\nhello\r\n", 100, &b, &used), -KW_H1_E_BARE_LF);
    T_EQ_INT(chunked("5\r\nhelloXX", 100, &b, &used), -KW_H1_E_CHUNK);
    T_EQ_INT(chunked("65\r\n", 100, &b, &used), -KW_H1_E_TOO_BIG);
    T_EQ_INT(chunked("1234567890abcdef0\r\n", 1000, &b, &used), -KW_H1_E_CHUNK);
}

int main(void)
{
    T_RUN(test_auth);
    T_RUN(test_verify);
    T_RUN(test_token);
    T_RUN(test_handed_over);
    T_RUN(test_many_fields);
    T_RUN(test_waiting);
    T_RUN(test_head_refusals);
    T_RUN(test_head_accepts);
    T_RUN(test_chunked);
    T_DONE();
}
