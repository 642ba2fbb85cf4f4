/* log.h - structured logging: one JSON object per line on stderr,
 *   {"ts":"2026-11-22T22:40:14.123Z","level":"info","msg":"listening","addr":"127.0.0.1:8420"}
 *
 * NEVER pass a secret: no key text, no webhook secret, no pepper, no store or SMTP URL that
 * may hold a password, no Authorization header. Log ids and hints (kw_abcd…wxyz) instead.
 * As a last guard, a field whose name contains "secret", "password", "pepper" or
 * "authorization", or is "token" or "api_key", is written as "[redacted]" - do not rely on
 * it. */
#ifndef KW_LOG_H
#define KW_LOG_H

enum { KW_LOG_DEBUG = 0, KW_LOG_INFO = 1, KW_LOG_WARN = 2, KW_LOG_ERROR = 3 };

/* Lines below level are dropped (default KW_LOG_INFO). Safe to call from any thread. */
void kw_log_set_level(int level);

/* "debug", "info", "warn" (or "warning"), "error", any case -> KW_LOG_*; else -1. */
int kw_log_level_parse(const char *s);

/* Write one line at level with message msg (a fixed, human-readable phrase). fmt_fields is
 * NULL for no fields, or a jansson json_pack() format building an object whose members
 * are appended after "msg", with their values as the varargs:
 *
 *   kw_log(KW_LOG_INFO, "listening", "{s:s, s:i}", "addr", addr, "threads", n);
 *   kw_log(KW_LOG_WARN, "webhook failed", "{s:s, s:i, s:s?}", "event", id,
 *          "status", 502, "error", maybe_null);
 *
 * Strings are escaped by jansson; a field named ts, level or msg is ignored. If the fields
 * cannot be built (bad format, invalid UTF-8) the line is still written, with a
 * "log_error" member saying why. Thread-safe: each line is one write(2) to fd 2. */
void kw_log(int level, const char *msg, const char *fmt_fields, ...);

#endif
