/* cidr.h - IPv4/IPv6 addresses and CIDR blocks for allowed_cidrs. No allocation. */
#ifndef KW_CIDR_H
#define KW_CIDR_H

#include <stddef.h>
#include <stdint.h>

/* An address is always held as 16 bytes; IPv4 as the IPv4-mapped form ::ffff:a.b.c.d,
 * so an IPv4 client matches an IPv4 block whichever way the socket reports it. */
typedef struct kw_ip {
    uint8_t a[16];
} kw_ip_t;

typedef struct kw_cidr {
    kw_ip_t net;  /* host bits zero */
    uint8_t bits; /* prefix length over the 128-bit form (IPv4 /n is stored as 96+n) */
    uint8_t v4;   /* 1 if written as IPv4 */
} kw_cidr_t;

#define KW_CIDR_STR_MAX 64 /* INET6_ADDRSTRLEN + "/128" */

/* Parse an address ("10.1.2.3", "::1", "::ffff:10.0.0.1"). Returns 0 or KW_EINVAL. */
int kw_ip_parse(const char *s, size_t len, kw_ip_t *out);

/* Parse "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128).
 * Host bits set ("10.0.0.1/8") is KW_EINVAL. Returns 0 or KW_EINVAL. */
int kw_cidr_parse(const char *s, size_t len, kw_cidr_t *out);

/* 1 if ip lies in c, else 0. */
int kw_cidr_match(const kw_cidr_t *c, const kw_ip_t *ip);

/* Canonical text of c ("10.0.0.0/8", "2001:db8::/32") into out. */
void kw_cidr_format(const kw_cidr_t *c, char out[KW_CIDR_STR_MAX]);

#endif
