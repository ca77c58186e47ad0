/*
 * config_reload: a role's side of a reload (FRAME_MASTER_RELOAD), done
 * the same way in every role: load the file again, keep the old
 * configuration when the new one has errors, and answer the master with
 * RELOADED on the control socket (common/rolectl.h).
 *
 * Errors are the configuration's and are reported, never fatal.
 */
#ifndef TERN_CONFIG_RELOAD_H
#define TERN_CONFIG_RELOAD_H

#include "config/config.h"

/*
 * Load path (NULL: the development defaults) again. With errors: a
 * warning "reload: keeping the old configuration: ...", RELOADED
 * "configuration errors" to the master on control_fd, and NULL. Otherwise
 * the new configuration, the caller's; it swaps it in and then calls
 * config_reload_done().
 */
struct config *config_reload_load(const char *path, int control_fd);

/* The new configuration cfg is in force: the log's host name, the line
 * "reload: configuration PATH", RELOADED "" to the master. */
void config_reload_done(const struct config *cfg, const char *path, int control_fd);

#endif
