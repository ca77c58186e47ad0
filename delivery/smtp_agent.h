/*
 * smtp_agent: the outbound SMTP delivery agent, a role of ternd
 * (master_roles.c). It takes delivery jobs for the transport "smtp" from
 * qmgr and reports every recipient's fate (doc/smtp.md).
 */
#ifndef TERN_SMTP_AGENT_H
#define TERN_SMTP_AGENT_H

#include "common/buf.h"
#include "config/config.h"

/* Run the role until the master drains it; cfg is adopted. Returns 0. */
int smtp_agent_main(const char *cfg_path, struct config *cfg, int control_fd);

/* The same agent speaking LMTP for the transport "lmtp" (the lmtp role,
 * lmtp/). */
int lmtp_agent_main(const char *cfg_path, struct config *cfg, int control_fd);

/*
 * The agent's part of the configuration check (master_config_load): the
 * SASL security options and smtp_sasl_password_maps. 0, or -1 with
 * "FILE: parameter: problem" lines appended to errors.
 */
int smtp_agent_config_check(const struct config *cfg, struct buf *errors);

#endif
