/*
 * smtp_agent: the outbound SMTP delivery agent, a role of ternd
 * (master_roles.c). It takes delivery jobs for the transport "smtp" from
 * qmgr and reports every recipient's fate (doc/smtp.md).
 */
#ifndef TERN_SMTP_AGENT_H
#define TERN_SMTP_AGENT_H

#include "config/config.h"

/* Run the role until the master drains it; cfg is adopted. Returns 0. */
int smtp_agent_main(const char *cfg_path, struct config *cfg, int control_fd);

#endif
