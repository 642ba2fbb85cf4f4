/* reload.h - SIGHUP: re-read the configuration and apply what can change live (the rows
 * marked live in config.c), logging what needs a restart; and the lock that keeps readers
 * of the live string settings (sinks, smtp, mail-from) from seeing one half-written. */
#ifndef KW_RELOAD_H
#define KW_RELOAD_H

#include "api.h"

/* Load defaults < file < environment < argv again (as at start) and apply the live
 * settings that changed to srv->cfg. An invalid configuration changes nothing. Logs one
 * line naming what was applied and one warning per change that needs a restart. Returns
 * the number of settings applied, or a negative KW_E* when the configuration is invalid. */
int kw_reload(kw_server_t *srv, int argc, char **argv, char **envp);

/* Held (shared) while copying a live string setting out of srv->cfg; scalars need none. */
void kw_cfg_rdlock(void);
void kw_cfg_unlock(void);

#endif
