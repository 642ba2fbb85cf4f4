/* cli_args.h - one command's flags: parse argv against its option table, read the values,
 * and turn them into request-body fields. */
#ifndef KW_CLI_ARGS_H
#define KW_CLI_ARGS_H

#include <jansson.h>

#include "cli/cli_cmd.h"

/* Parse argv[0..argc) (the words after the command name) against opts. Returns 0, or
 * KW_CLI_EUSAGE after printing one line naming the unknown flag or missing value. On
 * success free a with kw_cli_args_free(). */
int kw_cli_args_parse(const kw_cli_t *cli, const kw_cli_opt_t *opts, int argc, char **argv,
                      kw_cli_args_t *a);
void kw_cli_args_free(kw_cli_args_t *a);

/* The last value of --name (or "" for a given switch), or NULL when absent.
 * name must be in the command's table (a typo aborts). */
const char *kw_cli_arg(const kw_cli_args_t *a, const char *name);
/* How many times --name was given, and its i-th value. */
int kw_cli_arg_count(const kw_cli_args_t *a, const char *name);
const char *kw_cli_arg_nth(const kw_cli_args_t *a, const char *name, int i);

/* Parse --name as a positive integer into *out. Returns 0 (also when absent, leaving *out)
 * or KW_CLI_EUSAGE after printing. */
int kw_cli_arg_posint(const kw_cli_t *cli, const kw_cli_args_t *a, const char *name, long *out);

/* Request bodies from flags: set body[field] to the string value of --opt when given;
 * a JSON array of every value of a repeatable --opt (empty array when absent). */
void kw_cli_body_str(json_t *body, const char *field, const kw_cli_args_t *a, const char *opt);
json_t *kw_cli_arg_array(const kw_cli_args_t *a, const char *opt);
/* Every given option of a's table that has a field into body, in table order: the value
 * as a string, or the array of its values for a repeatable option. */
void kw_cli_body_fields(json_t *body, const kw_cli_args_t *a);
/* How many --contact-email, --contact-webhook and --contact-log were given. */
int kw_cli_contacts_given(const kw_cli_args_t *a);
/* Those contacts, in that order, as body["contacts"], when any was given or clear (then an
 * empty array removes every contact). */
void kw_cli_body_contacts(json_t *body, const kw_cli_args_t *a, int clear);
/* --lifetime D|never / --expires-at T into body ("lifetime" / "expires_at"); both given
 * is a usage error. Returns 0 or KW_CLI_EUSAGE after printing. */
int kw_cli_body_expiry(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body);

#endif
