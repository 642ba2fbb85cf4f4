/* seal_file.h - the secrets key file behind core/seal.h's key ring: text, one key per line,
 * "kws1 <64 hex digits>"; the LAST line is the current key. */
#ifndef KW_SEAL_FILE_H
#define KW_SEAL_FILE_H

#include "core/err.h"
#include "core/seal.h"

/* Load the key file at path. With create = 1 and no file there, create it (O_EXCL, mode
 * 0600) holding one fresh random key. *wide_mode is set to 1 when the existing file is
 * readable or writable by group/others (the caller warns), else 0 (may be NULL).
 * Errors: KW_EIO (cannot read/create; msg names the path), KW_EINVAL (bad line: msg names
 * the line number), KW_ENOMEM. *out owned by the caller (kw_seal_free). */
int kw_seal_load(const char *path, int create, int *wide_mode, kw_seal_t **out, kw_err_t *err);

/* Append a new random key to the key file at path (it becomes the current key once the file
 * is loaded again) and to s. The file keeps mode 0600. Errors: KW_EIO, KW_ENOMEM. */
int kw_seal_add_key(kw_seal_t *s, const char *path, kw_err_t *err);

#endif
