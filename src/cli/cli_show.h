/* cli_show.h - the commands' one shape: send a request (GET for the read commands), then
 * print the answer as JSON (--json) or through a printer; for lists, page through the
 * items first. */
#ifndef KW_CLI_SHOW_H
#define KW_CLI_SHOW_H

#include <jansson.h>

#include "cli/cli_cmd.h"

/* GET path (consumed) and print the answer: the server's JSON with --json, else print().
 * Returns 0 or the kw_cli_call status (the error already printed). */
int kw_cli_show(kw_cli_t *cli, char *path, void (*print)(const json_t *answer));
/* The exec of a "show" command: kw_cli_show of its row's path (KW_CLI_GET), its %s
 * a->pos[0], printed by its row's printer. */
int kw_cli_show_cmd(kw_cli_t *cli, const kw_cli_args_t *a);
/* The exec of a command that is one request (KW_CLI_SEND): its row's method and path, its
 * %s a->pos[0]; POST and PATCH send a body of the row's .body, a->pos[0] as .arg_field,
 * the options that have a field (kw_cli_body_fields) and what .build adds, and an empty
 * one is refused with .if_empty when set; the answer is printed by .answer with .verb
 * unless --json. */
int kw_cli_send_cmd(kw_cli_t *cli, const kw_cli_args_t *a);
/* The same for any method: send body (NULL: none) to path (consumed) and print the answer
 * with print(answer, verb) unless --json ("Created", "Updated"... or NULL: the printer's
 * own wording). */
int kw_cli_send(kw_cli_t *cli, const char *method, char *path, json_t *body,
                void (*print)(const json_t *answer, const char *verb), const char *verb);

/* Fetch one page (or every page with all) of a list, starting at cursor (NULL: the first
 * page) into *items (owned by the caller); *next gets the cursor of the page after the last
 * fetched (malloc'd, NULL when there is none). Returns 0 or the kw_cli_call status. */
int kw_cli_list_pages(kw_cli_t *cli, const char *base, const char *cursor, int all, json_t **items,
                      char **next);
/* The option rows every list command has (--limit, --all, --cursor), for its option table;
 * server_default: the server's page size, as a string literal ("100"). */
// clang-format off
#define KW_CLI_LIST_OPTS(server_default)                                                           \
    KW_CLI_OPT("limit", "N", "at most N per page (server default " server_default ")"),           \
    KW_CLI_SW("all", "follow 'next' cursors and list every page"),                                 \
    KW_CLI_OPT("cursor", "C", "start at this page (a 'next' value from --json)")
// clang-format on

/* A list command: the options of a that have a field as query parameters of base
 * (consumed), then --limit, --cursor and --all; the pages printed with
 * table() or as {"items", "next"} with --json; `empty` when there is nothing. When a page
 * is left, "(more WHAT: use --all...)" goes to stderr (what NULL: "(more: ...)"). */
int kw_cli_list_cmd(kw_cli_t *cli, const kw_cli_args_t *a, char *base,
                    void (*table)(const json_t *), const char *empty, const char *what);
/* The exec of a list command (KW_CLI_LIST): kw_cli_list_cmd of its row's path, table, empty
 * and what. */
int kw_cli_list_exec(kw_cli_t *cli, const kw_cli_args_t *a);

#endif
