/* shutdown.h - the bound on a stop: once SIGTERM/SIGINT has been taken, a watchdog thread
 * ends the process when --shutdown-timeout runs out (exit 0: every unfinished delivery is
 * still queued in the store) or at once on a second SIGTERM/SIGINT (exit 1). */
#ifndef KW_SHUTDOWN_H
#define KW_SHUTDOWN_H

#include <stdint.h>

/* Start the watchdog (detached). Call after the first signal was taken with sigwait, with
 * SIGTERM and SIGINT blocked in every thread. Returns 0, or -1 if the thread could not be
 * started (the stop then goes on unbounded). */
int kw_shutdown_watch(int64_t timeout_ms);

#endif
