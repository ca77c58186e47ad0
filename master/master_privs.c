/*
 * master_privs: privilege drop. The order matters: supplementary groups
 * first (they need root), then the gid, then the uid; afterwards setuid(0)
 * must fail, or the process still holds root and must not go on.
 */
#include "master/master_privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/log.h"

int
master_privs_resolve(const struct config *cfg, struct master_run_as *ra, char *err,
    size_t errsz)
{
	const char *owner = config_str(cfg, P_MAIL_OWNER);
	struct passwd *pw;

	memset(ra, 0, sizeof(*ra));
	if (geteuid() != 0 || config_is_dev(cfg)) {
		ra->drop = false;
		ra->uid = geteuid();
		ra->gid = getegid();
		pw = getpwuid(ra->uid);
		snprintf(ra->user, sizeof(ra->user), "%s", pw ? pw->pw_name : "unknown");
		return 0;
	}
	pw = getpwnam(owner);
	if (pw == NULL) {
		snprintf(err, errsz, "mail_owner \"%s\": no such user (create it: "
		    "useradd --system --user-group --no-create-home %s)", owner, owner);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errsz, "mail_owner \"%s\" must not be root or in group root", owner);
		return -1;
	}
	ra->drop = true;
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	snprintf(ra->user, sizeof(ra->user), "%s", owner);
	return 0;
}

void
master_privs_drop(const struct master_run_as *ra)
{
	if (!ra->drop)
		return;
	if (setgroups(1, &ra->gid) < 0 || setgid(ra->gid) < 0 || setuid(ra->uid) < 0) {
		log_error("cannot become %s: %s", ra->user, strerror(errno));
		_exit(EX_OSERR);
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		log_error("privileges could be regained after dropping them to %s", ra->user);
		_exit(EX_OSERR);
	}
}

void
master_privs_check(const struct config *cfg, bool keeps_root)
{
	if (config_is_dev(cfg) || keeps_root)
		return;
	if (geteuid() == 0 || getuid() == 0)
		panic("role running as root; the master must drop privileges first");
}
