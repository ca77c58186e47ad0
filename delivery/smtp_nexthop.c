#include "delivery/smtp_nexthop.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
parse_port(const char *p, uint16_t *port)
{
	static const struct { const char *name; uint16_t port; } services[] = {
		{ "smtp", 25 }, { "submission", 587 }, { "smtps", 465 },
	};
	unsigned long v = 0;

	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcasecmp(p, services[i].name) == 0) {
			*port = services[i].port;
			return 0;
		}
	if (*p == '\0' || strlen(p) > 5)
		return -1;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* A host name: LDH labels (and '_', which real MX names carry) of 1-63
 * octets, 253 in all. Lower-cased into out; a trailing dot dropped. */
static int
parse_name(const char *s, size_t n, char *out)
{
	size_t label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '_' || (c == '-' && label > 0)) {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	if (s[n - 1] == '-')
		return -1;
	out[n] = '\0';
	return 0;
}

static bool
is_ip(const char *s, bool v6)
{
	unsigned char a[16];

	return inet_pton(v6 ? AF_INET6 : AF_INET, s, a) == 1;
}

int
smtp_nexthop_parse(const char *s, uint16_t default_port, struct smtp_nexthop *out, char *err,
                   size_t errsz)
{
	char host[SMTP_NEXTHOP_HOST_SIZE];
	const char *port = NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->port = default_port;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			snprintf(err, errsz, "malformed next hop \"%.300s\"", s);
			return -1;
		}
		if (end[1] == ':')
			port = end + 2;
		s++;
		n = (size_t)(end - s);
		if (n >= 5 && strncasecmp(s, "ipv6:", 5) == 0) {
			s += 5;
			n -= 5;
		}
		if (n == 0 || n >= sizeof(host)) {
			snprintf(err, errsz, "malformed next hop host");
			return -1;
		}
		memcpy(host, s, n);
		host[n] = '\0';
	} else {
		/* An unbracketed IPv6 address has colons of its own: it takes
		 * no port (write [2001:db8::1]:25 for one). */
		const char *colon = strchr(s, ':');

		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			port = colon + 1;
			n = (size_t)(colon - s);
		} else {
			n = strlen(s);
		}
		if (n == 0 || n >= sizeof(host)) {
			snprintf(err, errsz, "malformed next hop \"%.300s\"", s);
			return -1;
		}
		memcpy(host, s, n);
		host[n] = '\0';
		out->mx = true;
	}
	if (port != NULL && parse_port(port, &out->port) < 0) {
		snprintf(err, errsz, "bad port \"%.40s\" in next hop", port);
		return -1;
	}
	if (is_ip(host, false) || is_ip(host, true)) {
		out->literal = true;
		out->mx = false;
		for (char *p = host; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(out->host, sizeof(out->host), "%s", host);
		return 0;
	}
	if (parse_name(host, strlen(host), out->host) < 0) {
		snprintf(err, errsz, "malformed host name \"%.300s\" in next hop", host);
		return -1;
	}
	return 0;
}

int
smtp_nexthop_parse_lmtp(const char *s, uint16_t default_port, struct smtp_nexthop *out,
                        char *err, size_t errsz)
{
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;

		memset(out, 0, sizeof(*out));
		if (path[0] == '\0' || strlen(path) >= sizeof(out->path)) {
			snprintf(err, errsz, "bad unix socket path in next hop \"%.300s\"", s);
			return -1;
		}
		out->unix_socket = true;
		snprintf(out->path, sizeof(out->path), "%s", path);
		return 0;
	}
	if (strncmp(s, "inet:", 5) == 0)
		s += 5;
	if (smtp_nexthop_parse(s, default_port, out, err, errsz) < 0)
		return -1;
	out->mx = false;
	return 0;
}
