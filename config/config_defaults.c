/*
 * config_defaults: load-time defaults. Reports problems through
 * config_parse_error(); out of memory is fatal(). Looking up the host's
 * canonical name may block on the resolver, so it is done only when
 * myhostname is not set and the host name has no dot.
 */
#include "config/config_defaults.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

/* Postfix's fallback for a host name without a domain. */
#define CONFIG_DEFAULTS_LOCALDOMAIN "localdomain"
/* Longest path or name a default is built from. */
#define CONFIG_DEFAULTS_TEXT_MAX (PATH_MAX * 2)

/* Development defaults that do not depend on the environment. */
static const struct {
	enum config_param param;
	const char *value;
} config_defaults_dev_fixed[] = {
	{ P_SMTPD_LISTEN, "127.0.0.1:2525" },
	{ P_SUBMISSION_LISTEN, "127.0.0.1:2587" },
	{ P_SMTPS_LISTEN, "" },
	{ P_LOG_FILE, "" },	/* empty and dev: the master logs to stderr */
};

/*
 * Development directories, under the current directory. The mailbox
 * directory ends in '/': interface.md delivers into a Maildir there.
 */
static const struct {
	enum config_param param;
	const char *suffix;
} config_defaults_dev_dirs[] = {
	{ P_QUEUE_DIRECTORY, "/var/spool" },
	{ P_MAIL_SPOOL_DIRECTORY, "/var/mail/" },
};

#define CONFIG_DEFAULTS_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char *
config_defaults_strdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("out of memory (config default)");
	return p;
}

char *
config_defaults_escape(const char *s)
{
	struct buf b;
	char *p;

	buf_init(&b, CONFIG_DEFAULTS_TEXT_MAX);
	for (; *s != '\0'; s++) {
		if ((*s == '$' && buf_append_char(&b, '$') != BUF_OK) ||
		    buf_append_char(&b, *s) != BUF_OK)
			fatal("config default too long");
	}
	p = config_defaults_strdup(buf_cstr(&b));
	buf_free(&b);
	return p;
}

char *
config_defaults_hostname(void)
{
	char name[HOST_NAME_MAX + 1];
	char qualified[HOST_NAME_MAX + sizeof("." CONFIG_DEFAULTS_LOCALDOMAIN)];
	struct addrinfo hints, *res = NULL;
	char *p;

	if (gethostname(name, sizeof(name)) != 0 || name[0] == '\0')
		snprintf(name, sizeof(name), "localhost");
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') != NULL)
		return config_defaults_escape(name);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && strchr(res->ai_canonname, '.') != NULL) {
		p = config_defaults_escape(res->ai_canonname);
		freeaddrinfo(res);
		return p;
	}
	if (res != NULL)
		freeaddrinfo(res);
	snprintf(qualified, sizeof(qualified), "%s.%s", name, CONFIG_DEFAULTS_LOCALDOMAIN);
	return config_defaults_escape(qualified);
}

char *
config_defaults_domain(const char *hostname)
{
	const char *dot = strchr(hostname, '.');

	if (dot == NULL || dot[1] == '\0')
		return config_defaults_strdup(CONFIG_DEFAULTS_LOCALDOMAIN);
	return config_defaults_escape(dot + 1);
}

/* The invoking user's name: development runs as whoever started it. */
static char *
config_defaults_user(struct config_parse_errors *errs)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwuid(getuid())) == NULL) {
		config_parse_error(errs, 0, "cannot find the name of user ID %lu: %s",
		    (unsigned long)getuid(), errno ? strerror(errno) : "no such user");
		return NULL;
	}
	return config_defaults_escape(pw->pw_name);
}

bool
config_defaults_dev(char *defs[CONFIG_PARAM_COUNT], struct config_parse_errors *errs)
{
	struct buf path;
	char *cwd;
	size_t i;

	for (i = 0; i < CONFIG_DEFAULTS_NELEM(config_defaults_dev_fixed); i++)
		defs[config_defaults_dev_fixed[i].param] =
		    config_defaults_strdup(config_defaults_dev_fixed[i].value);
	if ((defs[P_MAIL_OWNER] = config_defaults_user(errs)) == NULL)
		return false;
	if ((cwd = getcwd(NULL, 0)) == NULL) {
		config_parse_error(errs, 0, "cannot find the current directory: %s",
		    strerror(errno));
		return false;
	}
	buf_init(&path, CONFIG_DEFAULTS_TEXT_MAX);
	for (i = 0; i < CONFIG_DEFAULTS_NELEM(config_defaults_dev_dirs); i++) {
		buf_reset(&path);
		/* "/" as the current directory must not give "//var/spool". */
		if (buf_append_str(&path, strcmp(cwd, "/") == 0 ? "" : cwd) != BUF_OK ||
		    buf_append_str(&path, config_defaults_dev_dirs[i].suffix) != BUF_OK)
			fatal("current directory name too long");
		defs[config_defaults_dev_dirs[i].param] = config_defaults_escape(buf_cstr(&path));
	}
	buf_free(&path);
	free(cwd);
	return true;
}
