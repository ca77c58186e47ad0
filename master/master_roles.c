/*
 * master_roles: the table of roles. Each later role (qmgr, smtp, lmtp,
 * local) is one more row here and one entry function in its folder.
 */
#include "master/master_roles.h"

#include <string.h>

#include "delivery/local_agent.h"
#include "delivery/smtp_agent.h"
#include "lmtp/lmtp.h"
#include "queue/qmgr.h"

static int
master_role_smtpd(const struct master_role_args *a)
{
	return smtpd_main(a->config_path, a->cfg, a->control_fd, a->listen_fds, a->nlisten_fds);
}

static int
master_role_qmgr(const struct master_role_args *a)
{
	return qmgr_main(a->config_path, a->cfg, a->control_fd);
}

static int
master_role_smtp(const struct master_role_args *a)
{
	return smtp_agent_main(a->config_path, a->cfg, a->control_fd);
}

static int
master_role_lmtp(const struct master_role_args *a)
{
	return lmtp_main(a->config_path, a->cfg, a->control_fd);
}

static int
master_role_local(const struct master_role_args *a)
{
	return local_agent_main(a->config_path, a->cfg, a->control_fd);
}

const struct master_role master_roles[] = {
	/* name     entry              listeners keeps root */
	{ "qmgr", master_role_qmgr, false, false },	/* first: it binds private/qmgr */
	{ "smtpd", master_role_smtpd, true, false },
	{ "smtp", master_role_smtp, false, false },	/* outbound SMTP client agent */
	{ "lmtp", master_role_lmtp, false, false },	/* LMTP client agent (Dovecot) */
	{ "local", master_role_local, false, true },	/* mailbox delivery as each
							 * recipient (doc/local.md) */
};
const size_t master_roles_count = sizeof(master_roles) / sizeof(master_roles[0]);

const struct master_role *
master_role_find(const char *name)
{
	for (size_t i = 0; i < master_roles_count; i++)
		if (strcmp(master_roles[i].name, name) == 0)
			return &master_roles[i];
	return NULL;
}
