/*
 * local_agent: the local delivery agent, a role of ternd (master_roles.c)
 * serving the transport "local" (local_transport, where qmgr sends the
 * recipients of mydestination). It delivers each recipient to its mailbox
 * as Postfix's local(8) does (doc/local.md, "The local agent"): Maildir or
 * mbox in mail_spool_directory or under home_mailbox, as the recipient.
 *
 * It is the one role that keeps root (struct master_role's keeps_root), so
 * that each delivery can switch to its recipient; it parses no network
 * input, only qmgr's frames and spool files.
 */
#ifndef TERN_LOCAL_AGENT_H
#define TERN_LOCAL_AGENT_H

#include "config/config.h"

/* Most delivery processes (jobs) at once: the agent's job slots are
 * default_process_limit, capped here (Postfix's local(8) has
 * local_destination_concurrency_limit = 2 per user; we have no per-user
 * limit, and mbox locking serialises deliveries to one mailbox). */
#define LOCAL_AGENT_WORKERS_MAX 20

/* Run the role until the master drains it; cfg is adopted. Returns 0. */
int local_agent_main(const char *cfg_path, struct config *cfg, int control_fd);

#endif
