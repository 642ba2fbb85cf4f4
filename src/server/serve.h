/* serve.h - `keyward serve`: the daemon's start, run and graceful stop. */
#ifndef KW_SERVE_H
#define KW_SERVE_H

/* argv[0] is "serve". Returns the process exit status (0 after a clean SIGTERM). */
int kw_serve_main(int argc, char **argv);

#endif
