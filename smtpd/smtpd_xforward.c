/*
 * smtpd_xforward: the XFORWARD arguments' parser (smtpd_xforward.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtpd/smtpd_command.h"
#include "smtpd/smtpd_xforward.h"

/* Postfix's NEUTER_CHARACTERS: what would confuse a header or a log line. */
static const char smtpd_xforward_neuter[] = " <>()\\\";@";

enum smtpd_xforward_attr {
	XF_NAME, XF_ADDR, XF_PORT, XF_PROTO, XF_HELO, XF_IDENT, XF_SOURCE, XF_COUNT
};

static const char *const smtpd_xforward_names[XF_COUNT] = {
	[XF_NAME] = "NAME", [XF_ADDR] = "ADDR", [XF_PORT] = "PORT", [XF_PROTO] = "PROTO",
	[XF_HELO] = "HELO", [XF_IDENT] = "IDENT", [XF_SOURCE] = "SOURCE",
};

void
smtpd_xforward_reset(struct smtpd_xforward *xf)
{
	memset(xf, 0, sizeof(*xf));
}

static char *
smtpd_xforward_field(struct smtpd_xforward *xf, enum smtpd_xforward_attr a, size_t *size)
{
	switch (a) {
	case XF_NAME:
		*size = sizeof(xf->name);
		return xf->name;
	case XF_ADDR:
		*size = sizeof(xf->addr);
		return xf->addr;
	case XF_PORT:
		*size = sizeof(xf->port);
		return xf->port;
	case XF_PROTO:
		*size = sizeof(xf->proto);
		return xf->proto;
	case XF_HELO:
		*size = sizeof(xf->helo);
		return xf->helo;
	case XF_IDENT:
		*size = sizeof(xf->ident);
		return xf->ident;
	case XF_SOURCE:
	case XF_COUNT:
		break;
	}
	*size = 0;
	return NULL;
}

/* A decoded value: printable ASCII only (XFORWARD_README note 1). */
static bool
smtpd_xforward_printable(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

static void
smtpd_xforward_neuter_value(char *v)
{
	for (char *p = v; *p != '\0'; p++)
		if (strchr(smtpd_xforward_neuter, *p) != NULL)
			*p = '?';
}

/* PORT: a decimal TCP port. */
static bool
smtpd_xforward_port_ok(const char *v)
{
	unsigned long n = 0;

	if (*v == '\0' || strlen(v) > 5)
		return false;
	for (const char *p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (unsigned long)(*p - '0');
	}
	return n <= 65535;
}

/* One "NAME=value" item into next (a copy of the state being built). */
static int
smtpd_xforward_item(struct smtpd_xforward *next, const char *item, size_t len, char *err,
                    size_t errsz)
{
	char value[SMTPD_XFORWARD_VALUE_MAX + 1];
	const char *eq = memchr(item, '=', len);
	size_t name_len, raw_len, size;
	enum smtpd_xforward_attr a;
	char *field;

	if (eq == NULL || eq + 1 == item + len) {
		snprintf(err, errsz, "Error: attribute=value expected");
		return -1;
	}
	name_len = (size_t)(eq - item);
	raw_len = len - name_len - 1;
	for (a = 0; a < XF_COUNT; a++)
		if (strlen(smtpd_xforward_names[a]) == name_len &&
		    strncasecmp(item, smtpd_xforward_names[a], name_len) == 0)
			break;
	if (a == XF_COUNT) {
		snprintf(err, errsz, "Bad XFORWARD attribute name: %.*s", (int)(name_len > 64 ? 64 : name_len),
		         item);
		return -1;
	}
	if (raw_len > SMTPD_XFORWARD_VALUE_MAX) {
		snprintf(err, errsz, "Error: attribute value too long");
		return -1;
	}
	if (smtpd_xtext_decode(eq + 1, raw_len, value, sizeof(value)) < 0 ||
	    !smtpd_xforward_printable(value)) {
		snprintf(err, errsz, "Bad %s syntax: not xtext of printable ASCII",
		         smtpd_xforward_names[a]);
		return -1;
	}
	if (strcasecmp(value, "[UNAVAILABLE]") == 0) {
		if (a == XF_SOURCE) {
			next->source = SMTPD_XFORWARD_SOURCE_UNKNOWN;
		} else {
			field = smtpd_xforward_field(next, a, &size);
			field[0] = '\0';
		}
		return 0;
	}
	switch (a) {
	case XF_SOURCE:
		if (strcasecmp(value, "LOCAL") == 0) {
			next->source = SMTPD_XFORWARD_SOURCE_LOCAL;
		} else if (strcasecmp(value, "REMOTE") == 0) {
			next->source = SMTPD_XFORWARD_SOURCE_REMOTE;
		} else {
			snprintf(err, errsz, "Bad SOURCE syntax: %.64s", value);
			return -1;
		}
		return 0;
	case XF_PORT:
		if (!smtpd_xforward_port_ok(value)) {
			snprintf(err, errsz, "Bad PORT syntax: %.64s", value);
			return -1;
		}
		break;
	case XF_PROTO:
		if (strlen(value) > SMTPD_XFORWARD_PROTO_MAX) {
			snprintf(err, errsz, "Bad PROTO syntax: %.64s...", value);
			return -1;
		}
		break;
	default:
		break;
	}
	smtpd_xforward_neuter_value(value);
	field = smtpd_xforward_field(next, a, &size);
	snprintf(field, size, "%s", value);
	return 0;
}

int
smtpd_xforward_apply(struct smtpd_xforward *xf, const char *args, size_t len, char *err,
                     size_t errsz)
{
	struct smtpd_xforward next;
	size_t i = 0, start;
	bool any = false;

	/* The first XFORWARD of a transaction starts from nothing known. */
	if (xf->given)
		next = *xf;
	else
		smtpd_xforward_reset(&next);
	while (i < len) {
		while (i < len && args[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && args[i] != ' ')
			i++;
		if (smtpd_xforward_item(&next, args + start, i - start, err, errsz) < 0)
			return -1;
		any = true;
	}
	if (!any) {
		snprintf(err, errsz, "Syntax: XFORWARD attribute=value...");
		return -1;
	}
	next.given = true;
	*xf = next;
	return 0;
}

void
smtpd_xforward_namaddr(const struct smtpd_xforward *xf, char *out, size_t outsz)
{
	const char *name = xf->name[0] != '\0' ? xf->name : "unknown";

	if (xf->addr[0] != '\0')
		snprintf(out, outsz, "%s[%s]", name, xf->addr);
	else
		snprintf(out, outsz, "%s", name);
}
