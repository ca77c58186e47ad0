/*
 * config_defaults: defaults that are computed when a configuration is
 * loaded rather than written in the table: the host's name and domain,
 * and the development defaults of interface.md (no configuration file).
 * Private to config/.
 *
 * Every string returned is malloc'd, owned by the caller, and already
 * escaped for $expansion ('$' doubled), since it is used as a raw value.
 */
#ifndef TERN_CONFIG_DEFAULTS_H
#define TERN_CONFIG_DEFAULTS_H

#include <stdbool.h>

#include "config/config.h"
#include "config/config_parse.h"

/*
 * Fill defs[p] for the parameters the development defaults change
 * (queue and mailbox directories under the current directory, the
 * invoking user as mail_owner, loopback listeners). defs[p] must be NULL
 * on entry. False, after reporting in errs, when the current directory
 * or the user's name cannot be found.
 */
bool config_defaults_dev(char *defs[CONFIG_PARAM_COUNT], struct config_parse_errors *errs);

/* myhostname's default: gethostname(), qualified through the resolver's
 * canonical name when it has no dot, else NAME.localdomain. */
char *config_defaults_hostname(void);

/* mydomain's default: hostname less its first label, or "localdomain". */
char *config_defaults_domain(const char *hostname);

/* s with every '$' doubled, so expansion gives s back. */
char *config_defaults_escape(const char *s);

#endif
