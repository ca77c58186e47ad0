/*
 * master_privs: who the roles run as, and the one function that drops
 * privileges to it.
 */
#ifndef TERN_MASTER_PRIVS_H
#define TERN_MASTER_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

struct master_run_as {
	bool drop;		/* started as root: children become uid/gid */
	uid_t uid;
	gid_t gid;
	char user[64];
};

/*
 * Decide the user: mail_owner when started as root (it must exist and must
 * not be root), else the invoking user (a non-root ternd keeps its user).
 * Under the development defaults the invoking user is kept even as root.
 * 0, or -1 with a message in err.
 */
int master_privs_resolve(const struct config *cfg, struct master_run_as *ra, char *err,
                         size_t errsz);

/* In a forked child: setgroups, setgid, setuid, then prove root cannot be
 * regained. Exits the child (EX_OSERR) when any step fails. */
void master_privs_drop(const struct master_run_as *ra);

/* In a role after the re-exec: panic if it still has root where it must
 * not (a bug in the master). keeps_root: the role's struct master_role
 * flag; such a role may hold root. */
void master_privs_check(const struct config *cfg, bool keeps_root);

#endif
