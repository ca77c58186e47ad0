/*
 * config_milter: the milter lists of smtpd_milters and non_smtpd_milters
 * (Postfix syntax): endpoints separated by commas or white space, each
 * "unix:/path" or "inet:host:port" (host a numeric address, [IPv6] or
 * localhost), or Postfix's per-milter form in braces:
 *
 *     { inet:127.0.0.1:8891, default_action=accept, command_timeout=10s }
 *
 * with the settings connect_timeout, command_timeout, content_timeout,
 * default_action and protocol, which override the global milter_*
 * parameters for that milter.
 *
 * It lives in config/ so that the load (ternd -n, start, reload) refuses
 * a bad list at FILE:LINE, and smtpd reads the same list the same way.
 * Pure: no I/O, no logging; problems come back in why.
 */
#ifndef TERN_CONFIG_MILTER_H
#define TERN_CONFIG_MILTER_H

#include <stddef.h>
#include <stdint.h>

/* Most milters in one list. */
#define CONFIG_MILTER_MAX 16
/* Longest endpoint ("unix:" and a sun_path, or inet:[v6]:port). */
#define CONFIG_MILTER_ENDPOINT_MAX 120

/* milter_default_action values. */
enum config_milter_action {
	CONFIG_MILTER_ACTION_UNSET = 0,	/* per-milter: use milter_default_action */
	CONFIG_MILTER_ACTION_ACCEPT,
	CONFIG_MILTER_ACTION_REJECT,
	CONFIG_MILTER_ACTION_TEMPFAIL,
	CONFIG_MILTER_ACTION_QUARANTINE,
	CONFIG_MILTER_ACTION_SHUTDOWN,
};

struct config_milter {
	char endpoint[CONFIG_MILTER_ENDPOINT_MAX + 1];
	enum config_milter_action default_action;	/* UNSET: the global one */
	int64_t connect_timeout, command_timeout, content_timeout;	/* s; -1: global */
	int protocol;			/* 2, 3, 4 or 6; 0: milter_protocol */
};

/*
 * Parse a list into out[0..*n). 0, or -1 with a reason in why (an
 * endpoint that is not unix:/path or inet:host:port, an unknown setting,
 * an unbalanced brace, more than CONFIG_MILTER_MAX milters).
 */
int config_milter_parse(const char *text, struct config_milter *out, size_t *n, char *why,
                        size_t whysz);

/* "accept", "reject", ... as a value; UNSET for anything else. */
enum config_milter_action config_milter_action_parse(const char *s, size_t len);

#endif
