/* main.c - `keyward <command>`: `serve` runs the daemon, everything else is the CLI. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/store_copy.h"
#include "server/serve.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return kw_serve_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "store") == 0)
        return kw_store_cmd_main(argc - 1, argv + 1);
    return kw_cli_main(argc, argv);
}
