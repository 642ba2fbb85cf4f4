/* test_sink.c - alert channels (core/sink.c: the --sink grammar, URL/address/secret checks,
 * base64) and the expiry-alert rule (core/alerts.c: one alert per look, the most urgent). */
#include <string.h>

#include "core/alerts.h"
#include "core/sink.h"
#include "t.h"

#define SEC16 "whsec_MDEyMzQ1Njc4OWFiY2RlZg==" /* "0123456789abcdef" */

static int parse(const char *s, kw_chan_t *c)
{
    char why[128];
    return kw_sink_parse(s, strlen(s), c, why, sizeof(why));
}

static void test_sink_parse(void)
{
    kw_chan_t c;
    char name[KW_CHAN_NAME_MAX];
    T_EQ_INT(parse("log", &c), 0);
    T_EQ_INT(c.type, KW_CHAN_LOG);
    T_EQ_INT(parse("  email   ops@example.com ", &c), 0);
    T_EQ_INT(c.type, KW_CHAN_EMAIL);
    T_EQ_STR(c.target, "ops@example.com");
    T_EQ_INT(parse("webhook https://h.example:8443/a?b=c " SEC16, &c), 0);
    T_EQ_INT(c.type, KW_CHAN_WEBHOOK);
    T_EQ_STR(c.target, "https://h.example:8443/a?b=c");
    T_EQ_STR(c.secret, SEC16);
    kw_chan_name(&c, name);
    T_EQ_STR(name, "webhook https://h.example:8443/a?b=c"); /* never the secret */
    kw_chan_t back;
    T_EQ_INT(kw_chan_from_name(name, &back), 0);
    T_EQ_STR(back.target, c.target);
    T_EQ_STR(back.secret, "");

    static const char *const bad[] = {
        "",
        "   ",
        "logs",
        "log extra",
        "email",
        "email a@b.c d@e.f",
        "email nope",
        "email a@",
        "email @b.c",
        "email a@b@c.d",
        "email <a@b.c>",
        "webhook https://h.example/", /* no secret */
        "webhook https://h.example/ whsec_",
        "webhook https://h.example/ whsec_!!!!",
        "webhook https://h.example/ whsec_c2hvcnQ=", /* 5 bytes: too short */
        "webhook https://h.example/ secret123",
        "webhook ftp://h.example/ " SEC16,
        "webhook http:// " SEC16,
        "webhook http://u:p@h.example/ " SEC16,
        "webhook http://h.example:0/ " SEC16,
        "webhook http://h.example:65536/ " SEC16,
        "webhook http://-h.example/ " SEC16,
        "webhook http://h.example/ " SEC16 " more",
        "WEBHOOK http://h.example/ " SEC16,
        "email a\x01@b.c",
        "webhook http://[::1/ " SEC16,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i], &c);
        if (rc == 0)
            printf("# accepted: %s\n", bad[i]);
        T_EQ_INT(rc, -1);
    }
    /* the reason never quotes the secret */
    char why[128];
    T_EQ_INT(kw_sink_parse("webhook ftp://x/ whsec_SECRETSECRETSECRETSECRETSE", 49, &c, why,
                           sizeof(why)),
             -1);
    T_CHECK(strstr(why, "SECRET") == NULL);
}

static void test_secret_base64(void)
{
    uint8_t key[KW_WHSEC_KEY_MAX], in[40];
    size_t n = 0;
    char b64[80], sec[96];
    T_CHECK(kw_sink_secret_decode(SEC16, strlen(SEC16), key, &n));
    T_EQ_INT(n, 16);
    T_CHECK(memcmp(key, "0123456789abcdef", 16) == 0);
    for (size_t len = 16; len <= 40; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + len);
        kw_base64(in, len, b64);
        snprintf(sec, sizeof(sec), "whsec_%s", b64);
        T_CHECK(kw_sink_secret_decode(sec, strlen(sec), key, &n));
        T_EQ_INT(n, len);
        T_CHECK(memcmp(key, in, len) == 0);
    }
    kw_base64((const uint8_t *)"f", 1, b64);
    T_EQ_STR(b64, "Zg==");
    kw_base64((const uint8_t *)"fo", 2, b64);
    T_EQ_STR(b64, "Zm8=");
    T_CHECK(!kw_sink_secret_decode("whsec_MDEyMzQ1Njc4OWFiY2RlZg=A", 30, NULL, NULL));
    T_CHECK(!kw_sink_secret_decode("whsec_MDEyMzQ1Njc4OWFiY2RlZg", 28, NULL, NULL));
}

static void test_addr_url(void)
{
    T_CHECK(kw_sink_url_ok("http://[::1]:8080/x", 19));
    T_CHECK(kw_sink_url_ok("http://127.0.0.1", 16));
    T_CHECK(!kw_sink_url_ok("http://h.example/a b", 20));
    T_CHECK(!kw_sink_url_ok("http://h.example/\"", 18));
    T_CHECK(kw_sink_addr_ok("a.b+c@d-e.example", 17));
    T_CHECK(!kw_sink_addr_ok("a b@c.d", 7));
}

#define D 86400LL

static void plan(const int64_t *thr, size_t nthr, int64_t exp, int64_t now, const int64_t *done,
                 size_t ndone, int armed, kw_alert_plan_t *p)
{
    kw_alert_plan(thr, nthr, exp, now, done, ndone, armed, D, p);
}

static void test_alert_plan(void)
{
    const int64_t thr[] = {30 * D, 14 * D, 7 * D, 1 * D};
    kw_alert_plan_t p;
    int64_t exp = 100 * D;
    /* fresh key far from expiry: nothing now, next look at the 30d threshold */
    plan(thr, 4, exp, 0, NULL, 0, 1, &p);
    T_EQ_INT(p.raise, KW_ALERT_NONE);
    T_EQ_INT(p.nskip, 0);
    T_EQ_INT(p.next_at, exp - 30 * D);
    /* scheduled look at the 30d mark */
    plan(thr, 4, exp, exp - 30 * D, NULL, 0, 0, &p);
    T_EQ_INT(p.raise, 30 * D);
    T_EQ_INT(p.next_at, 0 + exp - 14 * D);
    /* downtime from before 14d until after 1d: raise 1d only, skip 14d and 7d */
    int64_t done1[] = {30 * D};
    plan(thr, 4, exp, exp - D / 2, done1, 1, 0, &p);
    T_EQ_INT(p.raise, 1 * D);
    T_EQ_INT(p.nskip, 2);
    T_CHECK((p.skip[0] == 14 * D && p.skip[1] == 7 * D) ||
            (p.skip[0] == 7 * D && p.skip[1] == 14 * D));
    T_EQ_INT(p.next_at, exp);
    /* past expiry with everything else done: key.expired, once */
    int64_t done2[] = {30 * D, 14 * D, 7 * D, 1 * D};
    plan(thr, 4, exp, exp + 5, done2, 4, 0, &p);
    T_EQ_INT(p.raise, KW_ALERT_EXPIRED);
    T_EQ_INT(p.next_at, 0);
    int64_t done3[] = {30 * D, 14 * D, 7 * D, 1 * D, KW_ALERT_EXPIRED};
    plan(thr, 4, exp, exp + 5, done3, 5, 0, &p);
    T_EQ_INT(p.raise, KW_ALERT_NONE);
    T_EQ_INT(p.nskip, 0);
    T_EQ_INT(p.next_at, 0);
    /* down across expiry: key.expired wins, every threshold skipped */
    plan(thr, 4, exp, exp + 100, done1, 1, 0, &p);
    T_EQ_INT(p.raise, KW_ALERT_EXPIRED);
    T_EQ_INT(p.nskip, 3);
    /* re-armed (renewed) to 20 days out: 30d lies behind the new expiry -> skipped quietly */
    plan(thr, 4, 20 * D, 0, NULL, 0, 1, &p);
    T_EQ_INT(p.raise, KW_ALERT_NONE);
    T_EQ_INT(p.nskip, 1);
    T_EQ_INT(p.skip[0], 30 * D);
    T_EQ_INT(p.next_at, 6 * D);
    /* re-armed just after expiry (grace): expired is still raised; long after: quiet */
    plan(thr, 4, exp, exp + 60, NULL, 0, 1, &p);
    T_EQ_INT(p.raise, KW_ALERT_EXPIRED);
    plan(thr, 4, exp, exp + 2 * D, NULL, 0, 1, &p);
    T_EQ_INT(p.raise, KW_ALERT_NONE);
    /* duplicate and non-positive thresholds are ignored; never expiring: nothing */
    const int64_t odd[] = {10, 10, 0, -5};
    plan(odd, 4, 100, 95, NULL, 0, 0, &p);
    T_EQ_INT(p.raise, 10);
    T_EQ_INT(p.nskip, 0);
    plan(thr, 4, 0, 5, NULL, 0, 0, &p);
    T_EQ_INT(p.raise, KW_ALERT_NONE);
    T_EQ_INT(p.next_at, 0);
}

int main(void)
{
    T_RUN(test_sink_parse);
    T_RUN(test_secret_base64);
    T_RUN(test_addr_url);
    T_RUN(test_alert_plan);
    T_DONE();
}
