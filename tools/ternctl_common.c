/*
 * ternctl_common: configuration, access, options and output shared by
 * ternctl's commands (ternctl_common.h).
 */
#include "tools/ternctl_common.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/buf.h"

#define TERNCTL_CONFIG_DEFAULT "/etc/tern/tern.conf"
/* Most config error text we print. */
#define TERNCTL_CONFIG_ERRORS_MAX (64u * 1024)
/* Supplementary groups looked at (NGROUPS_MAX is 65536 on Linux). */
#define TERNCTL_GROUPS_MAX 65536

void
ternctl_usage(FILE *f)
{
	fprintf(f, "usage: ternctl [-c FILE] queue [--json]\n"
	           "       ternctl [-c FILE] queue show ID [--json]\n"
	           "       ternctl [-c FILE] queue flush [ID|@DOMAIN|ALL ...]\n"
	           "       ternctl [-c FILE] queue hold|release|requeue ID|@DOMAIN|ALL ...\n"
	           "       ternctl [-c FILE] queue delete ID|@DOMAIN ... | ALL --yes\n"
	           "       ternctl [-c FILE] stats [--json]\n"
	           "       ternctl [-c FILE] reload\n"
	           "       ternctl [-c FILE] stop\n"
	           "       ternctl [-c FILE] trace [--from ADDR] [--to ADDR] [--id ID] [--since T]\n"
	           "               [--log FILE] [--json]\n"
	           "       ternctl [-c FILE] retry explain DOMAIN|ADDRESS ERROR-CLASS [--sender ADDR]\n"
	           "               [--first-failure SECONDS-AGO] [--host NAME] [--json]\n"
	           "       ternctl map build [--aliases] PATH ...\n"
	           "       ternctl map query [--aliases] lmdb:PATH|texthash:PATH KEY\n");
}

const char *
ternctl_config_path(const char *opt_c)
{
	const char *env;

	if (opt_c != NULL)
		return opt_c;
	env = getenv("TERN_CONFIG");
	if (env != NULL && env[0] != '\0')
		return env;
	if (access(TERNCTL_CONFIG_DEFAULT, F_OK) == 0)
		return TERNCTL_CONFIG_DEFAULT;
	return NULL;	/* the development defaults */
}

struct config *
ternctl_config_load(const char *path)
{
	struct config *cfg;
	struct buf errors;

	buf_init(&errors, TERNCTL_CONFIG_ERRORS_MAX);
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		if (buf_len(&errors) > 0)
			fwrite(buf_data(&errors), 1, buf_len(&errors), stderr);
		else
			fprintf(stderr, "ternctl: cannot load %s\n", path ? path : "the defaults");
		buf_free(&errors);
		exit(EX_CONFIG);
	}
	buf_free(&errors);
	return cfg;
}

static bool
ternctl_in_group(gid_t gid)
{
	gid_t *groups;
	int n;
	bool found = false;

	if (getegid() == gid || getgid() == gid)
		return true;
	groups = calloc(TERNCTL_GROUPS_MAX, sizeof(*groups));
	if (groups == NULL)
		return false;
	n = getgroups(TERNCTL_GROUPS_MAX, groups);
	for (int i = 0; i < n && !found; i++)
		found = groups[i] == gid;
	free(groups);
	return found;
}

/*
 * The check is ternctl's own, done before any socket or file is touched,
 * so a refused caller reads one clear line instead of a raw EACCES. The
 * spool's modes (private/ and index/ 0750, the qmgr socket 0660) are what
 * really enforce it (doc/ternctl.md).
 */
int
ternctl_access_check(const struct config *cfg, const char *what)
{
	return tools_access_check(cfg, "ternctl", what);
}

int
tools_access_check(const struct config *cfg, const char *prog, const char *what)
{
	const char *owner = config_str(cfg, P_MAIL_OWNER);
	const struct passwd *pw;
	const struct group *gr;
	char gname[128];

	if (geteuid() == 0)
		return EX_OK;
	pw = getpwnam(owner);
	if (pw != NULL && (geteuid() == pw->pw_uid || ternctl_in_group(pw->pw_gid)))
		return EX_OK;
	gr = pw != NULL ? getgrgid(pw->pw_gid) : NULL;
	snprintf(gname, sizeof(gname), "%s", gr != NULL ? gr->gr_name : owner);
	fprintf(stderr, "%s: permission denied: %s needs root or the mail owner's group "
	        "(root or group %s only)\n", prog, what, gname);
	return EX_NOPERM;
}

int
ternctl_write(const struct buf *out)
{
	fwrite(buf_data(out), 1, buf_len(out), stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ternctl: write error on standard output\n");
		return EX_IOERR;
	}
	return EX_OK;
}

const char *
ternctl_opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);

	*missing = false;
	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int
ternctl_seconds(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t unit = 1;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > (long long)(INT64_MAX / 4) / unit)	/* far beyond any schedule */
		return -1;
	*out = (int64_t)v * unit;
	return 0;
}
