/* cli_gen.h - `keyward help --man SECTION` and `keyward help --completion SHELL`: documents
 * generated from the command table and the settings table. */
#ifndef KW_CLI_GEN_H
#define KW_CLI_GEN_H

#include <stdio.h>

/* Write man page keyward(1), keyward-serve(8) or keyward.conf(5) (section "1", "8", "5")
 * in roff, from the command table and the settings table, to f. Returns 0 or KW_CLI_EUSAGE. */
int kw_cli_gen_man(FILE *f, const char *section);
/* Write the bash or zsh completion script (shell "bash" or "zsh") for the same tables. */
int kw_cli_gen_completion(FILE *f, const char *shell);

#endif
