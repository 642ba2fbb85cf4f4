/* cidr.c - IPv4/IPv6 addresses and CIDR blocks (allowed_cidrs, SPEC §2 and §4).
 *
 * Input is (pointer, length), not NUL-terminated: it is copied into a bounded local buffer
 * before inet_pton. Strict: one spelling per block (no host bits, no leading zeros in the
 * prefix length, nothing after it). Must not allocate or resolve names. */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* Longest address text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 chars. */
#define KW__ADDR_TEXT_MAX 45

static const uint8_t kw__v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parse an address; *v4 tells whether it was written in dotted IPv4 form. */
static int kw__addr_parse(const char *s, size_t len, kw_ip_t *out, int *v4)
{
    char buf[KW__ADDR_TEXT_MAX + 1];
    kw_ip_t ip;

    if (s == NULL || len == 0 || len > KW__ADDR_TEXT_MAX || memchr(s, '\0', len) != NULL)
        return KW_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, ':', len) != NULL) {
        /* glibc inet_pton already refuses zone ids ("%eth0") and surrounding space. */
        if (inet_pton(AF_INET6, buf, ip.a) != 1)
            return KW_EINVAL;
        *v4 = 0;
    } else {
        /* inet_pton(AF_INET) takes dotted quad only: no "10.1", hex or leading zeros. */
        memcpy(ip.a, kw__v4mapped, sizeof(kw__v4mapped));
        if (inet_pton(AF_INET, buf, ip.a + 12) != 1)
            return KW_EINVAL;
        *v4 = 1;
    }
    *out = ip;
    return 0;
}

int kw_ip_parse(const char *s, size_t len, kw_ip_t *out)
{
    int v4;

    return kw__addr_parse(s, len, out, &v4);
}

/* Prefix length text: "0" or [1-9][0-9]{0,2}, at most max. Returns the value or -1. */
static int kw__bits_parse(const char *s, size_t len, int max)
{
    int v = 0;

    if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* 1 if a and b agree on their first bits bits. */
static int kw__prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* 1 if every bit of ip after the first bits is zero. */
static int kw__host_bits_zero(const kw_ip_t *ip, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        uint8_t host = (uint8_t)(0xffu >> keep); /* keep == 8 gives 0 */
        if (ip->a[i] & host)
            return 0;
    }
    return 1;
}

int kw_cidr_parse(const char *s, size_t len, kw_cidr_t *out)
{
    const char *slash;
    size_t alen;
    kw_cidr_t c;
    int v4, bits;

    if (s == NULL || len == 0)
        return KW_EINVAL;
    slash = memchr(s, '/', len);
    alen = slash ? (size_t)(slash - s) : len;
    if (kw__addr_parse(s, alen, &c.net, &v4) != 0)
        return KW_EINVAL;
    if (slash == NULL) {
        bits = v4 ? 32 : 128;
    } else {
        bits = kw__bits_parse(slash + 1, len - alen - 1, v4 ? 32 : 128);
        if (bits < 0)
            return KW_EINVAL;
    }
    c.v4 = (uint8_t)v4;
    c.bits = (uint8_t)(v4 ? 96 + bits : bits);
    /* Host bits must be zero: "10.0.0.1/8" is more likely a typo than a block. */
    if (!kw__host_bits_zero(&c.net, c.bits))
        return KW_EINVAL;
    *out = c;
    return 0;
}

int kw_cidr_match(const kw_cidr_t *c, const kw_ip_t *ip)
{
    if (c == NULL || ip == NULL || c->bits > 128)
        return 0;
    return kw__prefix_equal(c->net.a, ip->a, c->bits);
}

void kw_cidr_format(const kw_cidr_t *c, char out[KW_CIDR_STR_MAX])
{
    char addr[INET6_ADDRSTRLEN];

    if (c->v4 && c->bits >= 96) {
        if (inet_ntop(AF_INET, c->net.a + 12, addr, sizeof(addr)) == NULL)
            addr[0] = '\0';
        snprintf(out, KW_CIDR_STR_MAX, "%s/%u", addr, (unsigned)c->bits - 96);
    } else {
        if (inet_ntop(AF_INET6, c->net.a, addr, sizeof(addr)) == NULL)
            addr[0] = '\0';
        snprintf(out, KW_CIDR_STR_MAX, "%s/%u", addr, (unsigned)c->bits);
    }
}
