/* test_cidr.c - addresses and CIDR blocks: v4, v6, v4-mapped matching, edges, rejects. */
#include <string.h>

#include "core/cidr.h"
#include "core/err.h"
#include "t.h"

static int cidr(const char *s, kw_cidr_t *c)
{
    return kw_cidr_parse(s, strlen(s), c);
}

static int ok(const char *s)
{
    kw_cidr_t c;
    return cidr(s, &c) == 0;
}

/* 1 if address a lies in block b (both must parse), -1 if either does not parse. */
static int in(const char *b, const char *a)
{
    kw_cidr_t c;
    kw_ip_t ip;

    if (cidr(b, &c) != 0 || kw_ip_parse(a, strlen(a), &ip) != 0)
        return -1;
    return kw_cidr_match(&c, &ip);
}

static const char *fmt(const char *s)
{
    static char out[KW_CIDR_STR_MAX];
    kw_cidr_t c;

    if (cidr(s, &c) != 0)
        return "(invalid)";
    kw_cidr_format(&c, out);
    return out;
}

static void test_ip_parse(void)
{
    kw_ip_t ip;
    static const unsigned char v4m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    T_EQ_INT(kw_ip_parse("10.1.2.3", 8, &ip), 0);
    T_CHECK(memcmp(ip.a, v4m, 16) == 0);
    T_EQ_INT(kw_ip_parse("::ffff:10.1.2.3", 15, &ip), 0); /* same address, v6 spelling */
    T_CHECK(memcmp(ip.a, v4m, 16) == 0);
    T_EQ_INT(kw_ip_parse("::1", 3, &ip), 0);
    T_CHECK(memcmp(ip.a, one, 16) == 0);
    T_EQ_INT(kw_ip_parse("10.1.2.3xyz", 8, &ip), 0); /* only len bytes are read */
    T_EQ_INT(kw_ip_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 45, &ip), 0);

    T_EQ_INT(kw_ip_parse("", 0, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse(NULL, 3, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("10.1.2", 6, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("10.1.2.256", 10, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("010.1.2.3", 9, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("0x0a.1.2.3", 10, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse(" 10.1.2.3", 9, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("10.1.2.3 ", 9, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("10.1.2.3\0", 9, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("fe80::1%eth0", 12, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("1:2:3:4:5:6:7:8:9", 17, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse(":::", 3, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("localhost", 9, &ip), KW_EINVAL);
    T_EQ_INT(kw_ip_parse("10.0.0.1/32", 11, &ip), KW_EINVAL);
}

static void test_parse_v4(void)
{
    kw_cidr_t c;

    T_EQ_INT(cidr("10.0.0.0/8", &c), 0);
    T_EQ_INT(c.bits, 96 + 8);
    T_EQ_INT(c.v4, 1);
    T_EQ_INT(cidr("10.1.2.3", &c), 0);
    T_EQ_INT(c.bits, 128);
    T_EQ_INT(c.v4, 1);
    T_EQ_INT(cidr("0.0.0.0/0", &c), 0);
    T_EQ_INT(c.bits, 96);
    T_CHECK(ok("10.1.2.3/32"));
    T_CHECK(ok("192.168.0.0/16"));
    T_CHECK(ok("192.168.0.128/25"));
    T_EQ_STR(fmt("10.0.0.0/8"), "10.0.0.0/8");
    T_EQ_STR(fmt("10.1.2.3"), "10.1.2.3/32");
    T_EQ_STR(fmt("0.0.0.0/0"), "0.0.0.0/0");
}

static void test_parse_v6(void)
{
    kw_cidr_t c;

    T_EQ_INT(cidr("2001:db8::/32", &c), 0);
    T_EQ_INT(c.bits, 32);
    T_EQ_INT(c.v4, 0);
    T_EQ_INT(cidr("::1", &c), 0);
    T_EQ_INT(c.bits, 128);
    T_CHECK(ok("::/0"));
    T_CHECK(ok("::1/128"));
    T_CHECK(ok("::ffff:10.0.0.0/104"));
    T_EQ_STR(fmt("2001:DB8:0:0::/32"), "2001:db8::/32");
    T_EQ_STR(fmt("::/0"), "::/0");
    T_EQ_STR(fmt("::1"), "::1/128");
    T_EQ_STR(fmt("fe80::/10"), "fe80::/10");
    T_EQ_STR(fmt("::ffff:10.0.0.0/104"), "::ffff:10.0.0.0/104");
}

static void test_rejects(void)
{
    kw_cidr_t c;

    memset(&c, 0x5a, sizeof(c));
    T_EQ_INT(cidr("10.0.0.1/8", &c), KW_EINVAL); /* host bits */
    T_EQ_INT(c.bits, 0x5a);                      /* untouched on failure */
    T_CHECK(!ok("192.168.0.1/31"));
    T_CHECK(!ok("2001:db8::1/32"));
    T_CHECK(!ok("::1/127"));
    T_CHECK(!ok("fe80::/8")); /* fe80 has bit 9 set */
    T_CHECK(ok("fe80::/9"));
    T_CHECK(!ok("10.0.0.0/33"));
    T_CHECK(!ok("::/129"));
    T_CHECK(!ok("10.0.0.0/08")); /* leading zero */
    T_CHECK(!ok("10.0.0.0/00"));
    T_CHECK(!ok("::/0128"));
    T_CHECK(!ok("10.0.0.0/"));
    T_CHECK(!ok("10.0.0.0/-8"));
    T_CHECK(!ok("10.0.0.0/+8"));
    T_CHECK(!ok("10.0.0.0/8 "));
    T_CHECK(!ok("10.0.0.0/8x"));
    T_CHECK(!ok("10.0.0.0/8/8"));
    T_CHECK(!ok("10.0.0.0 /8"));
    T_CHECK(!ok("/8"));
    T_CHECK(!ok(""));
    T_CHECK(!ok("10.0.0.0/1000"));
    T_CHECK(!ok("10.0.0.0/4294967304")); /* 2^32 + 8 must not wrap to 8 */
    T_CHECK(!ok("10/8"));
    T_CHECK(!ok("10.0.0.0.0/8"));
    T_CHECK(!ok("abc"));
    T_EQ_INT(kw_cidr_parse("10.0.0.0/8\0", 11, &c), KW_EINVAL);
    T_EQ_INT(kw_cidr_parse("10.0\0.0.0/8", 11, &c), KW_EINVAL);
    T_EQ_INT(kw_cidr_parse(NULL, 0, &c), KW_EINVAL);
    T_EQ_INT(kw_cidr_parse("10.0.0.0/8", 9, &c), KW_EINVAL); /* "10.0.0.0/" */
    T_EQ_INT(kw_cidr_parse("10.0.0.0/8", 8, &c), 0);         /* "10.0.0.0" = /32 */
    T_EQ_INT(c.bits, 128);
}

static void test_match(void)
{
    T_EQ_INT(in("10.0.0.0/8", "10.255.1.2"), 1);
    T_EQ_INT(in("10.0.0.0/8", "11.0.0.0"), 0);
    T_EQ_INT(in("10.0.0.0/8", "9.255.255.255"), 0);
    T_EQ_INT(in("192.168.0.128/25", "192.168.0.200"), 1);
    T_EQ_INT(in("192.168.0.128/25", "192.168.0.127"), 0);
    /* an IPv4 client reported as a v4-mapped IPv6 address matches IPv4 blocks */
    T_EQ_INT(in("10.0.0.0/8", "::ffff:10.9.8.7"), 1);
    T_EQ_INT(in("10.0.0.0/8", "::ffff:11.9.8.7"), 0);
    T_EQ_INT(in("::ffff:10.0.0.0/104", "10.1.1.1"), 1);
    /* ... but a plain IPv6 address never matches an IPv4 block */
    T_EQ_INT(in("0.0.0.0/0", "::a00:1"), 0);
    T_EQ_INT(in("0.0.0.0/0", "2001:db8::1"), 0);
    T_EQ_INT(in("0.0.0.0/0", "1.2.3.4"), 1);
    T_EQ_INT(in("0.0.0.0/0", "255.255.255.255"), 1);
    /* /32 and /128 are exact */
    T_EQ_INT(in("10.1.2.3/32", "10.1.2.3"), 1);
    T_EQ_INT(in("10.1.2.3/32", "10.1.2.4"), 0);
    T_EQ_INT(in("10.1.2.3", "10.1.2.3"), 1);
    T_EQ_INT(in("2001:db8::1/128", "2001:db8::1"), 1);
    T_EQ_INT(in("2001:db8::1/128", "2001:db8::2"), 0);
    /* v6 blocks */
    T_EQ_INT(in("2001:db8::/32", "2001:db8:ffff::1"), 1);
    T_EQ_INT(in("2001:db8::/32", "2001:db9::1"), 0);
    T_EQ_INT(in("fe80::/10", "febf::1"), 1);
    T_EQ_INT(in("fe80::/10", "fec0::1"), 0);
    /* ::/0 is every address, IPv4 clients included (they are held v4-mapped) */
    T_EQ_INT(in("::/0", "2001:db8::1"), 1);
    T_EQ_INT(in("::/0", "10.0.0.1"), 1);
    T_EQ_INT(kw_cidr_match(NULL, NULL), 0);
}

static void test_format_round_trip(void)
{
    static const char *blocks[] = {"10.0.0.0/8",    "0.0.0.0/0",
                                   "1.2.3.4/32",    "172.16.0.0/12",
                                   "2001:db8::/32", "::/0",
                                   "::1/128",       "::ffff:0.0.0.0/96",
                                   "ff00::/8",      "2001:db8:1:2:3:4:5:0/112"};
    int bad = 0;

    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        kw_cidr_t a, b;
        char out[KW_CIDR_STR_MAX];
        if (cidr(blocks[i], &a) != 0) {
            bad++;
            continue;
        }
        kw_cidr_format(&a, out);
        if (cidr(out, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0 || strcmp(out, blocks[i]) != 0)
            bad++;
    }
    T_EQ_INT(bad, 0);
}

int main(void)
{
    T_RUN(test_ip_parse);
    T_RUN(test_parse_v4);
    T_RUN(test_parse_v6);
    T_RUN(test_rejects);
    T_RUN(test_match);
    T_RUN(test_format_round_trip);
    T_DONE();
}
