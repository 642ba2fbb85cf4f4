/* log.c - one JSON object per line on stderr, built with jansson so every string is
 * escaped. Takes no locks (one write(2) per line keeps lines whole) and must
 * never be handed a secret (see log.h). */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = KW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void kw_log_set_level(int level)
{
    if (level < KW_LOG_DEBUG)
        level = KW_LOG_DEBUG;
    if (level > KW_LOG_ERROR)
        level = KW_LOG_ERROR;
    atomic_store(&min_level, level);
}

int kw_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = KW_LOG_DEBUG; i <= KW_LOG_ERROR; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return KW_LOG_WARN;
    return -1;
}

/* RFC 3339 UTC with milliseconds: 2026-11-22T22:40:14.123Z */
static void format_ts(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* The last guard of log.h: names that suggest a secret never carry their value out. */
static int redacted(const char *key)
{
    static const char *const parts[] = {"secret", "password", "pepper", "authorization"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcasestr(key, parts[i]) != NULL)
            return 1;
    return strcasecmp(key, "token") == 0 || strcasecmp(key, "api_key") == 0;
}

/* One write(2) for the whole line; loop only on EINTR or a short write. */
static void write_line(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += w;
        len -= (size_t)w;
    }
}

void kw_log(int level, const char *msg, const char *fmt_fields, ...)
{
    static const char oom[] = "{\"level\":\"error\",\"msg\":\"log: out of memory\"}\n";
    char ts[32], stack[2048];
    json_t *line, *m;

    if (level < KW_LOG_DEBUG)
        level = KW_LOG_DEBUG;
    if (level > KW_LOG_ERROR)
        level = KW_LOG_ERROR;
    if (level < atomic_load(&min_level))
        return;

    format_ts(ts);
    line = json_object();
    if (line == NULL) {
        write_line(oom, sizeof(oom) - 1);
        return;
    }
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    m = json_string(msg ? msg : "");
    json_object_set_new(line, "msg", m ? m : json_string("(message is not valid UTF-8)"));

    if (fmt_fields) {
        json_error_t jerr;
        va_list ap;
        va_start(ap, fmt_fields);
        json_t *fields = json_vpack_ex(&jerr, 0, fmt_fields, ap);
        va_end(ap);
        if (fields == NULL) {
            json_object_set_new(line, "log_error", json_string(jerr.text));
        } else if (!json_is_object(fields)) {
            json_object_set_new(line, "log_error", json_string("fields must be an object"));
        } else {
            const char *key;
            json_t *value;
            json_object_foreach(fields, key, value)
            {
                if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0)
                    continue;
                if (redacted(key))
                    json_object_set_new(line, key, json_string("[redacted]"));
                else
                    json_object_set(line, key, value);
            }
        }
        json_decref(fields);
    }

    /* Most lines fit the stack buffer; a long one gets an exact heap buffer. */
    char *out = stack, *heap = NULL;
    size_t n = json_dumpb(line, stack, sizeof(stack) - 1, JSON_COMPACT);
    if (n > sizeof(stack) - 1) {
        heap = malloc(n + 1);
        if (heap == NULL || json_dumpb(line, heap, n, JSON_COMPACT) != n) {
            free(heap);
            json_decref(line);
            write_line(oom, sizeof(oom) - 1);
            return;
        }
        out = heap;
    }
    json_decref(line);
    if (n == 0) {
        write_line(oom, sizeof(oom) - 1);
        return;
    }
    out[n] = '\n';
    write_line(out, n + 1);
    free(heap);
}
