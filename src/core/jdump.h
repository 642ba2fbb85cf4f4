/* jdump.h - compact JSON text of a jansson value, the same bytes as
 * json_dumps(j, JSON_COMPACT) at a fraction of its cost (no per-call hash table for loop
 * detection, no per-token callback, no buffer regrowth). */
#ifndef KW_JDUMP_H
#define KW_JDUMP_H

#include <jansson.h>

/* The text of j (an object or array, as json_dumps takes), NUL-terminated, in one malloc'd
 * buffer of exactly its size: the caller owns it and frees it with free() (wipe it first if
 * j held a secret; nothing else holds a copy). NULL for NULL, for a value json_dumps would
 * refuse (a bare scalar, a string that is not valid UTF-8) or when out of memory. */
char *kw_json_dump(const json_t *j);

#endif
