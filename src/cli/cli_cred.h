/* cli_cred.h - credentials by name, for the commands that take one (cli_cred.c). */
#ifndef KW_CLI_CRED_H
#define KW_CLI_CRED_H

#include "cli/cli_cmd.h"

/* The id of the credential ref names: ref itself when it is a credential id (cred_...),
 * else the one credential whose name is ref. *id is malloc'd. Returns 0, or prints one
 * line and returns KW_CLI_EAPI when no credential or more than one (listing their ids)
 * has that name. */
int kw_cli_cred_ref(kw_cli_t *cli, const char *ref, char **id);

#endif
