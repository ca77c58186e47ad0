/*
 * master_role: the first steps of a role after the master re-exec'd it:
 * configuration, logging, a privilege check, and the inherited
 * descriptors (control 3, log 4, listeners from 5 as named in
 * TERN_LISTEN_FDS, e.g. "5:smtp,6:submission").
 */
#include "master/master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"
#include "master/master_listen.h"
#include "master/master_privs.h"
#include "master/master_roles.h"

static enum config_listener
master_role_listener_named(const char *name, size_t len)
{
	enum config_listener l = config_listener_named(name, len);

	if (l == CONFIG_LISTENER_GLOBAL)
		panic("unknown listener \"%.*s\" in TERN_LISTEN_FDS", (int)len, name);
	return l;
}

/* Parse TERN_LISTEN_FDS; the master wrote it, so a bad value is a bug. */
static size_t
master_role_listen_fds(struct smtpd_listen_fd *fds, size_t max)
{
	const char *env = getenv("TERN_LISTEN_FDS"), *p, *colon, *end;
	size_t n = 0;
	char *num_end;
	long fd;

	if (env == NULL || *env == '\0')
		return 0;
	for (p = env; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		colon = memchr(p, ':', (size_t)(end - p));
		if (colon == NULL || n == max)
			panic("bad TERN_LISTEN_FDS \"%s\"", env);
		errno = 0;
		fd = strtol(p, &num_end, 10);
		if (errno != 0 || num_end != colon || fd < MASTER_FD_LISTEN_FIRST || fd > 1024)
			panic("bad TERN_LISTEN_FDS \"%s\"", env);
		fds[n].fd = (int)fd;
		fds[n].listener = master_role_listener_named(colon + 1, (size_t)(end - colon - 1));
		n++;
	}
	return n;
}

int
master_role_main(const char *role_name, const struct master_options *opt)
{
	struct smtpd_listen_fd fds[MASTER_LISTENERS_MAX];
	struct master_role_args args;
	const struct master_role *role;
	struct buf errors;
	struct config *cfg;
	unsigned sinks = 0;

	role = master_role_find(role_name);
	if (role == NULL) {
		fprintf(stderr, "ternd: unknown role \"%s\"\n", role_name);
		return EX_USAGE;
	}
	buf_init(&errors, 1024 * 1024);
	cfg = config_load(opt->config_path, &errors);
	if (cfg == NULL) {
		fprintf(stderr, "%s", buf_cstr(&errors));
		buf_free(&errors);
		return EX_CONFIG;
	}
	buf_free(&errors);
	if (getenv("TERN_LOG_FD") != NULL)
		sinks |= LOG_SINK_FILE;
	else if (!config_is_dev(cfg))
		sinks |= LOG_SINK_SYSLOG;
	if (opt->foreground || config_is_dev(cfg))
		sinks |= LOG_SINK_STDERR;
	log_set_hostname(config_str(cfg, P_MYHOSTNAME));
	log_open_fd(role->name, sinks, (sinks & LOG_SINK_FILE) ? MASTER_FD_LOG : -1);
	log_set_debug(opt->debug);
	master_privs_check(cfg, role->keeps_root);

	memset(&args, 0, sizeof(args));
	args.config_path = opt->config_path;
	args.cfg = cfg;
	args.control_fd = MASTER_FD_CONTROL;
	args.listen_fds = fds;
	args.nlisten_fds = role->takes_listeners ? master_role_listen_fds(fds, MASTER_LISTENERS_MAX) : 0;
	return role->main(&args);
}
