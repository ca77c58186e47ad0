/*
 * config_milter: parser of milter lists. See the header for the syntax.
 * Everything is bounded by the text: tokens are (pointer, length) pairs
 * copied only into fixed-size fields after their length was checked.
 */
#include "config/config_milter.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longest time value we accept, seconds (a year). */
#define CONFIG_MILTER_TIME_MAX (365LL * 86400)

static bool
config_milter_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
config_milter_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim white space around (*p, *len). */
static void
config_milter_trim(const char **p, size_t *len)
{
	while (*len > 0 && config_milter_space(**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && config_milter_space((*p)[*len - 1]))
		(*len)--;
}

enum config_milter_action
config_milter_action_parse(const char *s, size_t len)
{
	static const struct {
		const char *name;
		enum config_milter_action a;
	} t[] = {
		{ "accept", CONFIG_MILTER_ACTION_ACCEPT },
		{ "reject", CONFIG_MILTER_ACTION_REJECT },
		{ "tempfail", CONFIG_MILTER_ACTION_TEMPFAIL },
		{ "quarantine", CONFIG_MILTER_ACTION_QUARANTINE },
		{ "shutdown", CONFIG_MILTER_ACTION_SHUTDOWN },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].name) == len && strncasecmp(t[i].name, s, len) == 0)
			return t[i].a;
	return CONFIG_MILTER_ACTION_UNSET;
}

/* A time: digits and an optional unit s, m, h, d (bare: seconds). */
static bool
config_milter_time(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0, unit = 1;
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (s[i] - '0');
		if (v > CONFIG_MILTER_TIME_MAX)
			return false;
		i++;
	}
	if (i == 0)
		return false;
	if (i + 1 == len) {
		switch (s[i]) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return false;
		}
	} else if (i != len) {
		return false;
	}
	if (v * unit > CONFIG_MILTER_TIME_MAX)
		return false;
	*out = v * unit;
	return true;
}

/* unix:/path, or inet:host:port with a port 1..65535 and a host that
 * needs no DNS (smtpd never blocks on a lookup). */
static bool
config_milter_endpoint(const char *s, size_t len, char *why, size_t whysz)
{
	const char *colon, *host;
	size_t hlen, i;
	unsigned long port = 0;

	if (len > CONFIG_MILTER_ENDPOINT_MAX) {
		snprintf(why, whysz, "milter endpoint longer than %d bytes", CONFIG_MILTER_ENDPOINT_MAX);
		return false;
	}
	if (len > 5 && strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/') {
			snprintf(why, whysz, "milter \"%.*s\": unix: needs an absolute path", (int)len, s);
			return false;
		}
		return true;
	}
	if (len <= 5 || strncmp(s, "inet:", 5) != 0) {
		snprintf(why, whysz, "milter \"%.*s\": not unix:/path or inet:host:port", (int)len, s);
		return false;
	}
	host = s + 5;
	colon = NULL;
	for (i = len; i > 5; i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (colon == NULL || colon == host || colon + 1 == s + len) {
		snprintf(why, whysz, "milter \"%.*s\": not inet:host:port", (int)len, s);
		return false;
	}
	for (i = (size_t)(colon + 1 - s); i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || (port = port * 10 + (unsigned long)(s[i] - '0')) > 65535)
			break;
	}
	if (i != len || port == 0) {
		snprintf(why, whysz, "milter \"%.*s\": bad port (1..65535)", (int)len, s);
		return false;
	}
	hlen = (size_t)(colon - host);
	if (!(hlen == 9 && strncasecmp(host, "localhost", 9) == 0)) {
		for (i = 0; i < hlen; i++)
			if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.' || host[i] == ':' ||
			      host[i] == '[' || host[i] == ']' || (host[i] >= 'a' && host[i] <= 'f') ||
			      (host[i] >= 'A' && host[i] <= 'F'))) {
				snprintf(why, whysz, "milter \"%.*s\": the host must be a numeric "
				    "address or localhost", (int)len, s);
				return false;
			}
	}
	return true;
}

/* One "name=value" setting of a braced milter. */
static bool
config_milter_setting(struct config_milter *m, const char *s, size_t len, char *why,
    size_t whysz)
{
	const char *eq = memchr(s, '=', len), *v;
	size_t nlen, vlen;
	int64_t *t = NULL;

	if (eq == NULL) {
		snprintf(why, whysz, "milter setting \"%.*s\": not name=value", (int)len, s);
		return false;
	}
	nlen = (size_t)(eq - s);
	v = eq + 1;
	vlen = len - nlen - 1;
	config_milter_trim(&s, &nlen);
	config_milter_trim(&v, &vlen);
	if (nlen == 15 && strncmp(s, "connect_timeout", nlen) == 0)
		t = &m->connect_timeout;
	else if (nlen == 15 && strncmp(s, "command_timeout", nlen) == 0)
		t = &m->command_timeout;
	else if (nlen == 15 && strncmp(s, "content_timeout", nlen) == 0)
		t = &m->content_timeout;
	if (t != NULL) {
		if (!config_milter_time(v, vlen, t)) {
			snprintf(why, whysz, "milter setting \"%.*s\": bad time", (int)len, s);
			return false;
		}
		return true;
	}
	if (nlen == 14 && strncmp(s, "default_action", nlen) == 0) {
		m->default_action = config_milter_action_parse(v, vlen);
		if (m->default_action != CONFIG_MILTER_ACTION_UNSET)
			return true;
		snprintf(why, whysz, "milter setting \"%.*s\": use accept, reject, tempfail, "
		    "quarantine or shutdown", (int)len, s);
		return false;
	}
	if (nlen == 8 && strncmp(s, "protocol", nlen) == 0) {
		if (vlen == 1 && (v[0] == '2' || v[0] == '3' || v[0] == '4' || v[0] == '6')) {
			m->protocol = v[0] - '0';
			return true;
		}
		snprintf(why, whysz, "milter setting \"%.*s\": use 2, 3, 4 or 6", (int)len, s);
		return false;
	}
	snprintf(why, whysz, "unknown milter setting \"%.*s\" (connect_timeout, command_timeout, "
	    "content_timeout, default_action, protocol)", (int)nlen, s);
	return false;
}

static void
config_milter_init(struct config_milter *m, const char *ep, size_t len)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->endpoint, ep, len);
	m->endpoint[len] = '\0';
	m->connect_timeout = m->command_timeout = m->content_timeout = -1;
}

/* The inside of "{ ... }": the endpoint, then settings, comma-separated. */
static bool
config_milter_braced(struct config_milter *m, const char *s, size_t len, char *why,
    size_t whysz)
{
	const char *item, *comma, *end = s + len;
	size_t ilen;
	bool first = true;

	for (item = s; item <= end; item = comma + 1) {
		comma = memchr(item, ',', (size_t)(end - item));
		if (comma == NULL)
			comma = end;
		ilen = (size_t)(comma - item);
		config_milter_trim(&item, &ilen);
		if (first) {
			if (ilen == 0 || !config_milter_endpoint(item, ilen, why, whysz)) {
				if (ilen == 0)
					snprintf(why, whysz, "milter in braces without an endpoint");
				return false;
			}
			config_milter_init(m, item, ilen);
			first = false;
		} else if (ilen > 0 && !config_milter_setting(m, item, ilen, why, whysz)) {
			return false;
		}
		if (comma == end)
			break;
	}
	return true;
}

int
config_milter_parse(const char *text, struct config_milter *out, size_t *n, char *why,
    size_t whysz)
{
	const char *p = text, *q;

	*n = 0;
	for (;;) {
		while (*p != '\0' && config_milter_sep(*p))
			p++;
		if (*p == '\0')
			return 0;
		if (*n == CONFIG_MILTER_MAX) {
			snprintf(why, whysz, "more than %d milters", CONFIG_MILTER_MAX);
			return -1;
		}
		if (*p == '}') {
			snprintf(why, whysz, "'}' without '{' in milter list");
			return -1;
		}
		if (*p == '{') {
			q = strchr(p + 1, '}');
			if (q == NULL || memchr(p + 1, '{', (size_t)(q - p - 1)) != NULL) {
				snprintf(why, whysz, "unbalanced '{' in milter list");
				return -1;
			}
			if (!config_milter_braced(&out[*n], p + 1, (size_t)(q - p - 1), why, whysz))
				return -1;
			p = q + 1;
		} else {
			for (q = p; *q != '\0' && !config_milter_sep(*q) && *q != '{' && *q != '}'; q++)
				;
			if (!config_milter_endpoint(p, (size_t)(q - p), why, whysz))
				return -1;
			config_milter_init(&out[*n], p, (size_t)(q - p));
			p = q;
		}
		(*n)++;
	}
}
