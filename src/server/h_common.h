/* h_common.h - what the /v1 handlers share (h_common.c): the shape checks of request
 * arguments that name the bad field, and the answer to an operation that failed.
 *
 * Error convention: a check returns 0, or -1 with rs already filled (a 400 or 404 problem
 * naming the field). -1 and not a KW_E*: the answer carries the code, the caller only stops. */
#ifndef KW_H_COMMON_H
#define KW_H_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

/* Pages of a list: the default and the largest `limit`. */
#define KW_HC_DEFAULT_LIMIT 100
#define KW_HC_MAX_LIMIT 1000

/* Fill rs with a problem (code, field, msg) and return -1. */
int kw_hc_fail(kw_resp_t *rs, int code, const char *field, const char *msg);
/* 1 when s holds no control character (and no space unless allow_space). */
int kw_hc_printable(const char *s, int allow_space);
/* Optional string member of b of at most max printable characters: *out NULL when absent,
 * or null when nullable; *present (may be NULL) tells whether the member was there. */
int kw_hc_str(json_t *b, const char *name, size_t max, int nullable, const char **out, int *present,
              kw_resp_t *rs);
/* lifetime (duration or "never") or expires_at (RFC 3339), not both. */
int kw_hc_expiry(json_t *b, kw_expiry_in_t *e, kw_resp_t *rs);
/* A policy name: [a-z0-9_-]{1,63}. 1 or 0. */
int kw_hc_policy_name(const char *s);
/* The path's id (rq->caps[0]) must be an id with this prefix, else a 404 naming `what`. */
int kw_hc_id(kw_req_t *rq, kw_resp_t *rs, const char *prefix, const char *what);
/* The path's id checked (kw_hc_id), then the body (kw_api_body with allowed): the body, or
 * NULL with rs filled. */
json_t *kw_hc_id_body(kw_req_t *rq, kw_resp_t *rs, const char *prefix, const char *what,
                      const char *const *allowed);
/* A non-negative decimal integer (a cursor this server handed out): 0, or -1. */
int kw_hc_i64(const char *s, int64_t *out);
/* The query a list of credentials or watched credentials takes besides limit:
 * expiring_within (a duration: *expiring_before = now + it) and cursor (*after_seq), each
 * left alone when absent. 0, or -1 with a 400 naming the field in rs. */
int kw_hc_list_query(kw_req_t *rq, kw_resp_t *rs, int64_t now, int64_t *expiring_before,
                     int64_t *after_seq);

/* Answer a failed operation: 404 "unknown <what> <id>", else e's problem (a store or
 * internal failure is logged, with id as the target). */
void kw_hc_respond_err(kw_resp_t *rs, const kw_err_t *e, const char *what, const char *id);
/* Answer a read: status with j, or when j is NULL the failure in e (kw_hc_respond_err; none
 * recorded: 500 out of memory, j could not be built). */
void kw_hc_answer(kw_resp_t *rs, int status, json_t *j, const kw_err_t *e, const char *what,
                  const char *id);

#endif
