/*
 * sendmail_args: the command line, parsed by hand rather than getopt(3):
 * sendmail's syntax has options with an optional attached value (-q,
 * -qR SITE, -q30m) and -o options whose value is the rest of the word
 * (-oi, -oem), which getopt cannot express. Returns errors; never exits.
 */
#include "tools/sendmail_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

const char *
sendmail_args_progname(const char *argv0)
{
	const char *slash;

	if (argv0 == NULL || argv0[0] == '\0')
		return "sendmail";
	slash = strrchr(argv0, '/');
	return slash != NULL && slash[1] != '\0' ? slash + 1 : argv0;
}

/* -N never | success,delay,failure (any order, any case). */
static int
sendmail_parse_notify(const char *v, unsigned *out)
{
	static const struct { const char *name; unsigned bit; } words[] = {
		{ "never", SENDMAIL_NOTIFY_NEVER },
		{ "success", SENDMAIL_NOTIFY_SUCCESS },
		{ "delay", SENDMAIL_NOTIFY_DELAY },
		{ "failure", SENDMAIL_NOTIFY_FAILURE },
	};
	const char *p = v;
	unsigned bits = 0;

	while (*p != '\0') {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i].name) == n && strncasecmp(p, words[i].name, n) == 0)
				break;
		if (i == sizeof(words) / sizeof(words[0]))
			return -1;
		bits |= words[i].bit;
		p += n;
		if (*p == ',' && *++p == '\0')
			return -1;	/* a trailing comma */
	}
	/* RFC 3461 section 4.1: NEVER stands alone. */
	if (bits == 0 || ((bits & SENDMAIL_NOTIFY_NEVER) && bits != SENDMAIL_NOTIFY_NEVER))
		return -1;
	*out = bits;
	return 0;
}

/* -V: RFC 3461 section 4.4 ENVID, printable ASCII before xtext encoding. */
static bool
sendmail_envid_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > SENDMAIL_ENVID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return false;
	return true;
}

/* Check and store the value of option c; 0, or -1 with err. */
static int
sendmail_option_value(struct sendmail_args *a, char c, const char *v, char *err, size_t errsz)
{
	switch (c) {
	case 'f':
	case 'r':
		a->sender = v;
		return 0;
	case 'F':
		a->full_name = v;
		return 0;
	case 'C':
		a->config = v;
		return 0;
	case 'N':
		if (sendmail_parse_notify(v, &a->notify) == 0)
			return 0;
		snprintf(err, errsz, "-N: \"%s\" is not \"never\" or a list of success, delay, "
		         "failure", v);
		return -1;
	case 'R':
		if (strcasecmp(v, "full") == 0 || strcasecmp(v, "hdrs") == 0) {
			a->ret = strcasecmp(v, "full") == 0 ? "FULL" : "HDRS";
			return 0;
		}
		snprintf(err, errsz, "-R: \"%s\" is not \"full\" or \"hdrs\"", v);
		return -1;
	case 'V':
		if (sendmail_envid_ok(v)) {
			a->envid = v;
			return 0;
		}
		snprintf(err, errsz, "-V: the envelope id must be 1 to %d printable characters",
		         SENDMAIL_ENVID_MAX);
		return -1;
	case 'B':
		if (strcasecmp(v, "7bit") == 0 || strcasecmp(v, "8bitmime") == 0) {
			a->body = strcasecmp(v, "7bit") == 0 ? "7BIT" : "8BITMIME";
			return 0;
		}
		snprintf(err, errsz, "-B: \"%s\" is not \"7bit\" or \"8bitmime\"", v);
		return -1;
	case 'b':
		switch (v[0] != '\0' && v[1] == '\0' ? v[0] : '?') {
		case 'm': a->mode = SENDMAIL_MODE_DELIVER; return 0;
		case 's': a->mode = SENDMAIL_MODE_SMTP; return 0;
		case 'p': a->mode = SENDMAIL_MODE_LIST; return 0;
		case 'i': a->mode = SENDMAIL_MODE_ALIASES; return 0;
		}
		snprintf(err, errsz, "-b%s: unsupported mode (tern knows -bm, -bs, -bp, -bi)", v);
		return -1;
	case 'o':
		/* -oi is -i; every other sendmail.cf option is accepted and
		 * ignored, as sendmail(8) documents and Postfix does. */
		if (strcmp(v, "i") == 0)
			a->ignore_dots = true;
		return 0;
	default:
		/* -L label, -h hops, -p protocol, -e mode, -X file: ignored (Postfix). */
		return 0;
	}
}

/* -q[...]: flush all, -qR SITE, -qI ID, or -q30m (an interval: ignored). */
static int
sendmail_option_q(struct sendmail_args *a, const char *rest, int argc, char **argv, int *i,
                  char *err, size_t errsz)
{
	char kind = rest[0];
	const char *v;

	a->mode = SENDMAIL_MODE_FLUSH;
	if (kind == '\0' || strcmp(rest, "f") == 0)
		return 0;
	if (kind >= '0' && kind <= '9') {
		a->mode = SENDMAIL_MODE_NOTHING;
		return 0;
	}
	if (kind != 'R' && kind != 'I') {
		snprintf(err, errsz, "-q%s: unsupported (tern knows -q, -qR SITE, -qI ID)", rest);
		return -1;
	}
	v = rest + 1;
	if (*v == '\0') {
		if (*i + 1 >= argc) {
			snprintf(err, errsz, "option requires an argument -- q%c", kind);
			return -1;
		}
		v = argv[++*i];
	}
	if (v[0] == '\0') {
		snprintf(err, errsz, "-q%c: empty value", kind);
		return -1;
	}
	if (kind == 'R')
		a->flush_site = v;
	else
		a->flush_id = v;
	return 0;
}

/* Options that take a value (attached, or the next word). */
#define SENDMAIL_VALUE_OPTIONS "frFCNRVBbLhpeXo"
/* Options without one: -t -i -v; -n -m -G -U -x -c ignored; -I = -bi. */
#define SENDMAIL_FLAG_OPTIONS "tivnmGUxcI"

/* One word starting with '-' (not "--"); 0 or -1 with err. */
static int
sendmail_option_word(struct sendmail_args *a, int argc, char **argv, int *i, char *err,
                     size_t errsz)
{
	const char *w = argv[*i];

	for (size_t j = 1; w[j] != '\0'; j++) {
		char c = w[j];
		const char *v;

		if (c == 'q')
			return sendmail_option_q(a, w + j + 1, argc, argv, i, err, errsz);
		if (strchr(SENDMAIL_VALUE_OPTIONS, c) != NULL) {
			v = w + j + 1;
			if (*v == '\0') {
				if (*i + 1 >= argc) {
					snprintf(err, errsz, "option requires an argument -- %c", c);
					return -1;
				}
				v = argv[++*i];
			}
			return sendmail_option_value(a, c, v, err, errsz);
		}
		if (strchr(SENDMAIL_FLAG_OPTIONS, c) == NULL) {
			if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e)
				snprintf(err, errsz, "illegal option -- \\%03o", (unsigned char)c);
			else
				snprintf(err, errsz, "illegal option -- %c", c);
			return -1;
		}
		if (c == 't')
			a->extract = true;
		else if (c == 'i')
			a->ignore_dots = true;
		else if (c == 'v')
			a->verbose = true;
		else if (c == 'I')
			a->mode = SENDMAIL_MODE_ALIASES;
	}
	return 0;
}

int
sendmail_args_parse(int argc, char **argv, struct sendmail_args *a, char *err, size_t errsz)
{
	const char *prog = sendmail_args_progname(argc > 0 ? argv[0] : NULL);
	bool options = true;

	memset(a, 0, sizeof(*a));
	if (strcmp(prog, "mailq") == 0)
		a->mode = SENDMAIL_MODE_LIST;
	else if (strcmp(prog, "newaliases") == 0)
		a->mode = SENDMAIL_MODE_ALIASES;
	a->rcpts = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*a->rcpts));
	if (a->rcpts == NULL)
		fatal("out of memory");
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];

		if (options && strcmp(w, "--") == 0) {
			options = false;
		} else if (options && w[0] == '-' && w[1] != '\0') {
			if (sendmail_option_word(a, argc, argv, &i, err, errsz) < 0) {
				sendmail_args_free(a);
				return -1;
			}
		} else if (options && w[0] == '-' && w[1] == '\0') {
			snprintf(err, errsz, "illegal option -- (a lone \"-\")");
			sendmail_args_free(a);
			return -1;
		} else {
			a->rcpts[a->nrcpts++] = w;
		}
	}
	return 0;
}

void
sendmail_args_free(struct sendmail_args *a)
{
	free(a->rcpts);
	a->rcpts = NULL;
	a->nrcpts = 0;
}
