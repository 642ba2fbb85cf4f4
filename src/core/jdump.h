/* jdump.h - JSON helpers: the time form of every body and event (kw_json_time), and the
 * compact JSON text of a jansson value, the same bytes as
 * json_dumps(j, JSON_COMPACT) at a fraction of its cost (no per-call hash table for loop
 * detection, no per-token callback, no buffer regrowth). */
#ifndef KW_JDUMP_H
#define KW_JDUMP_H

#include <jansson.h>
#include <stdint.h>

/* The text of j (an object or array, as json_dumps takes), NUL-terminated, in one malloc'd
 * buffer of exactly its size: the caller owns it and frees it with free() (wipe it first if
 * j held a secret; nothing else holds a copy). NULL for NULL, for a value json_dumps would
 * refuse (a bare scalar, a string that is not valid UTF-8) or when out of memory. */
char *kw_json_dump(const json_t *j);

/* The same with every object's keys sorted: the bytes of
 * json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) (the audit detail's canonical text). */
char *kw_json_dump_sorted(const json_t *j);

/* The JSON form of a time in every body, event and audit detail: the RFC 3339 string of
 * kw_time_format (util.h), or null when t is 0 ("never", "not yet"). A new reference (NULL only
 * when out of memory, which json_pack and json_object_set_new accept as a failure). */
json_t *kw_json_time(int64_t t);

#endif
