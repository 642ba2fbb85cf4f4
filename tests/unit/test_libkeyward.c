/* test_libkeyward.c - libkeyward through its public header only, linked against
 * libkeyward.a alone: offline key checks, digests against published vectors, and the
 * client against a scripted HTTP peer (keep-alive reuse, reconnect after the server
 * closes, 401 with reason, JSON verify answers, malformed keys answered locally). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyward.h"
#include "t.h"

#if KEYWARD_VERSION_NUM < 0x000100
#error "KEYWARD_VERSION_NUM is wrong"
#endif

static const char KEY[] = "kw_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf45YXCo";

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_offline(void)
{
    char buf[64];
    uint8_t d[KEYWARD_DIGEST_LEN];
    char hx[2 * KEYWARD_DIGEST_LEN + 1];
    T_EQ_STR(keyward_version(), KEYWARD_VERSION);
    T_EQ_INT(keyward_key_check(KEY, strlen(KEY)), KEYWARD_OK);
    char bad[sizeof(KEY)];
    memcpy(bad, KEY, sizeof(KEY));
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    T_EQ_INT(keyward_key_check(bad, strlen(bad)), KEYWARD_EMALFORMED);
    T_EQ_INT(keyward_key_check(KEY, strlen(KEY) - 1), KEYWARD_EMALFORMED);
    T_EQ_INT(keyward_key_check(NULL, 0), KEYWARD_EMALFORMED);
    T_EQ_INT(keyward_key_prefix(KEY, strlen(KEY), buf), 0);
    T_EQ_STR(buf, "kw");
    T_EQ_INT(keyward_key_hint(KEY, strlen(KEY), buf), 0);
    T_EQ_STR(buf, "kw_003a\xe2\x80\xa6YXCo");
    T_EQ_INT(keyward_key_hint(bad, strlen(bad), buf), KEYWARD_EMALFORMED);
    /* FIPS 180-2 "abc" and RFC 4231 test case 2 */
    T_EQ_INT(keyward_key_digest("abc", 3, NULL, 0, d), 0);
    hex(d, sizeof(d), hx);
    T_EQ_STR(hx, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *msg = "what do ya want for nothing?";
    T_EQ_INT(keyward_key_digest(msg, strlen(msg), (const uint8_t *)"Jefe", 4, d), 0);
    hex(d, sizeof(d), hx);
    T_EQ_STR(hx, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    T_CHECK(strcmp(keyward_strerror(KEYWARD_EIO), "unknown error") != 0);
}

/* ---- a scripted peer: answers each request with the next canned response; a NULL
 * entry closes the connection and accepts the next one ---- */

static const char *const SCRIPT[] = {
    "HTTP/1.1 204 No Content\r\nKeyward-Code: VALID\r\nKeyward-Credential: cred_1\r\n"
    "Keyward-Key: key_1\r\nKeyward-Scopes: read write\r\nKeyward-Expires: 2030-01-01T00:00:00Z\r\n"
    "Sunset: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 401 Unauthorized\r\nKeyward-Code: EXPIRED\r\n"
    "Keyward-Message: Authentication Failed \xe2\x80\x93 Expired API Key\r\n"
    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\nContent-Length: 0\r\n\r\n",
    NULL, /* the server drops the idle connection: the client must reconnect */
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %LEN%\r\n\r\n"
    "{\"valid\":true,\"code\":\"VALID\",\"message\":\"OK\",\"credential_id\":\"cred_\\u0032\","
    "\"key_id\":\"key_2\",\"slot\":1,\"scopes\":[\"a\",\"b c\"],\"expires_at\":null,"
    "\"expires_in_s\":null,\"warnings\":[\"soon\"]}",
};

typedef struct peer {
    int lfd;
    int port;
    char last_req[4096];
    int requests;
    int accepts;
} peer_t;

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    size_t n = sizeof(SCRIPT) / sizeof(SCRIPT[0]);
    int fd = -1;
    for (size_t i = 0; i < n; i++) {
        if (fd < 0) {
            fd = accept(p->lfd, NULL, NULL);
            p->accepts++;
        }
        if (SCRIPT[i] == NULL) {
            close(fd);
            fd = -1;
            continue;
        }
        char req[4096];
        size_t have = 0;
        /* one request: headers, plus Content-Length bytes */
        for (;;) {
            ssize_t r = recv(fd, req + have, sizeof(req) - 1 - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
            req[have] = '\0';
            char *e = strstr(req, "\r\n\r\n");
            if (e) {
                char *cl = strstr(req, "Content-Length: ");
                size_t want = (size_t)(e + 4 - req) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
                if (have >= want)
                    break;
            }
        }
        memcpy(p->last_req, req, have + 1);
        p->requests++;
        char resp[2048];
        const char *s = SCRIPT[i];
        const char *len = strstr(s, "%LEN%");
        if (len) {
            const char *body = strstr(s, "\r\n\r\n") + 4;
            snprintf(resp, sizeof(resp), "%.*s%zu%.*s", (int)(len - s), s, strlen(body),
                     (int)(strlen(len + 5)), len + 5);
        } else {
            snprintf(resp, sizeof(resp), "%s", s);
        }
        send(fd, resp, strlen(resp), MSG_NOSIGNAL);
    }
out:
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_client(void)
{
    peer_t p = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    p.lfd = socket(AF_INET, SOCK_STREAM, 0);
    T_EQ_INT(bind(p.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    listen(p.lfd, 4);
    getsockname(p.lfd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, peer_main, &p);

    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", ntohs(a.sin_port));
    keyward_client_t *c = NULL;
    T_EQ_INT(keyward_client_new("nonsense", 0, &c), KEYWARD_EINVAL);
    T_EQ_INT(keyward_client_new(addr, 3000, &c), 0);
    T_EQ_INT(keyward_client_set_ip_header(c, "X-Real-IP"), 0);
    T_EQ_INT(keyward_client_set_ip_header(c, "Bad: header"), KEYWARD_EINVAL);
    keyward_result_t r;

    /* malformed keys never leave the process */
    T_EQ_INT(keyward_auth(c, "kw_nope", NULL, NULL, &r), 0);
    T_EQ_STR(r.code, "MALFORMED");
    T_EQ_INT(r.valid, 0);
    /* header injection through scope is refused */
    T_EQ_INT(keyward_auth(c, KEY, "a\r\nX-Evil: 1", NULL, &r), KEYWARD_EINVAL);

    T_EQ_INT(keyward_auth(c, KEY, "read", "10.1.2.3", &r), 0);
    T_EQ_INT(r.valid, 1);
    T_EQ_INT(r.http_status, 204);
    T_EQ_STR(r.credential_id, "cred_1");
    T_EQ_STR(r.key_id, "key_1");
    T_EQ_STR(r.scopes, "read write");
    T_EQ_STR(r.expires_at, "2030-01-01T00:00:00Z");
    T_EQ_STR(r.sunset, "Tue, 01 Jan 2030 00:00:00 GMT");
    T_EQ_INT(r.warning, 1);
    T_CHECK(strstr(p.last_req, "GET /v1/auth HTTP/1.1\r\n") == p.last_req);
    T_CHECK(strstr(p.last_req, "Authorization: Bearer kw_003a") != NULL);
    T_CHECK(strstr(p.last_req, "X-Keyward-Scope: read\r\n") != NULL);
    T_CHECK(strstr(p.last_req, "X-Real-IP: 10.1.2.3\r\n") != NULL);

    T_EQ_INT(keyward_auth(c, KEY, NULL, NULL, &r), 0); /* same connection */
    T_EQ_INT(r.valid, 0);
    T_EQ_INT(r.http_status, 401);
    T_EQ_STR(r.code, "EXPIRED");
    T_EQ_STR(r.message, "Authentication Failed \xe2\x80\x93 Expired API Key");
    T_EQ_INT(p.accepts, 1);

    /* the peer closed the connection: the client reconnects once, transparently */
    T_EQ_INT(keyward_verify(c, KEY, "q\"x", "::1", &r), 0);
    T_EQ_INT(r.valid, 1);
    T_EQ_STR(r.code, "VALID");
    T_EQ_STR(r.credential_id, "cred_2");
    T_EQ_STR(r.scopes, "a b c");
    T_EQ_STR(r.expires_at, "");
    T_EQ_INT(r.warning, 1);
    T_CHECK(strstr(p.last_req, "POST /v1/keys/verify HTTP/1.1\r\n") == p.last_req);
    T_CHECK(strstr(p.last_req, "\"scope\":\"q\\\"x\"") != NULL);
    T_CHECK(strstr(p.last_req, "\"ip\":\"::1\"") != NULL);
    T_EQ_INT(p.accepts, 2);

    pthread_join(th, NULL);
    close(p.lfd);
    /* nobody listens any more: an I/O error, not a verdict */
    T_EQ_INT(keyward_auth(c, KEY, NULL, NULL, &r), KEYWARD_EIO);
    keyward_client_free(c);
    keyward_client_free(NULL);
}

int main(void)
{
    T_RUN(test_offline);
    T_RUN(test_client);
    T_DONE();
}
