/* cli.h - the `keyward <command>` client: every subcommand except `serve` and `store` talks
 * to a running keyward over its HTTP API (docs/api.md) and prints tables or, with --json,
 * the server's JSON. cli.c holds the command table and dispatches; the commands live one
 * per row in the group files (cli_cred.c, cli_key.c...) against the contract in cli_cmd.h,
 * using cli_args.c (flags), cli_http.c (the server), cli_show.c (GET then print), cli_out.c
 * (printing) and cli_util.c (errors, memory). Nothing prints the admin token, and buffers
 * that may have held a secret (response bodies, request bodies, jansson strings, the token)
 * are wiped when freed. */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <stddef.h>

#include "cli/cli_cmd.h"

/* Run `keyward <command> ...`: argv[0] is the program name, argv[1] the command (anything
 * but "serve"). Returns the process exit status: 0 success, 1 refused by the server (for
 * `verify`: the key is not valid), 2 usage error or server unreachable. Prints at most one
 * line, "keyward: <reason>", to stderr on failure.
 * It installs jansson allocation functions that wipe memory on free (still plain
 * malloc/free underneath, so values made before the call stay valid). */
int kw_cli_main(int argc, char **argv);

/* The tables, for generated documents (cli_gen.c). */

/* Command i of the table (help order), NULL past the last. */
const kw_cli_cmd_t *kw_cli_cmd_at(size_t i);
/* Group i's name, with its title in *title; NULL past the last. */
const char *kw_cli_group_at(size_t i, const char **title);
/* The "Environment:" and "Exit status:" text of `keyward --help`. */
const char *kw_cli_env_text(void);

#endif
