/*
 * master_roles: the process graph, declared once. The master builds its
 * socketpairs and hands out the listening sockets from this table.
 */
#ifndef TERN_MASTER_ROLES_H
#define TERN_MASTER_ROLES_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "smtpd/smtpd.h"

/* What a role's entry function is given after the re-exec. */
struct master_role_args {
	const char *config_path;	/* NULL: development defaults */
	struct config *cfg;		/* loaded; adopted by the role */
	int control_fd;			/* socketpair to the master */
	const struct smtpd_listen_fd *listen_fds;
	size_t nlisten_fds;
};

struct master_role {
	const char *name;		/* "smtpd": log ident tern/smtpd, --role=smtpd */
	int (*main)(const struct master_role_args *args);
	bool takes_listeners;		/* gets the listening sockets */
	/* Keeps root instead of dropping to mail_owner: only the local
	 * agent, which must switch to each recipient's uid for the delivery
	 * (Postfix's local(8) runs as root too). It must parse no network
	 * input: it reads qmgr's frames and spool files only. */
	bool keeps_root;
};

/* The roles the master starts, in start order. */
extern const struct master_role master_roles[];
extern const size_t master_roles_count;

const struct master_role *master_role_find(const char *name);

/* Fixed descriptor numbers in a role after the re-exec. */
#define MASTER_FD_CONTROL 3
#define MASTER_FD_LOG 4
#define MASTER_FD_LISTEN_FIRST 5

#endif
