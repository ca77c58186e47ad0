/*
 * config_expand: recursive, memoised $expansion of parameter values.
 * Returns errors through config_parse_error(); out of memory is fatal().
 * Recursion is bounded twice: by CONFIG_EXPAND_DEPTH_MAX parameters on
 * the stack (with cycle detection) and by the same nesting limit for
 * ${name?...} bodies, so hostile values cannot exhaust the C stack.
 */
#include "config/config_expand.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* What is being expanded, for messages and the nesting bound. */
struct config_expand_who {
	const char *name;
	unsigned line;
	unsigned nest;		/* ${name?...} bodies entered */
};

/* One $reference, as found in the text. */
struct config_expand_ref {
	const char *name;
	size_t nlen;
	char op;		/* '\0' plain, '?' if not empty, ':' if empty */
	const char *body;	/* text of the conditional */
	size_t blen;
	size_t total;		/* bytes of the reference, '$' included */
};

enum config_expand_scan {
	CONFIG_EXPAND_SCAN_REF,		/* a reference */
	CONFIG_EXPAND_SCAN_LITERAL,	/* a '$' that starts nothing */
	CONFIG_EXPAND_SCAN_UNTERMINATED,
	CONFIG_EXPAND_SCAN_BAD,
};

static bool config_expand_into(struct config_expand *x, const char *text, size_t len,
                               const struct config_expand_who *who, struct buf *out);

void
config_expand_init(struct config_expand *x, struct config_parse_errors *errs)
{
	memset(x, 0, sizeof(*x));
	x->errs = errs;
}

void
config_expand_free(struct config_expand *x)
{
	size_t i;

	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		free(x->done[i]);
		x->done[i] = NULL;
	}
}

/* Report against who, or, for a default value, the nearest file line. */
static void
config_expand_report(struct config_expand *x, const struct config_expand_who *who,
                     const char *what)
{
	unsigned line = who->line;
	size_t i;

	for (i = x->depth; line == 0 && i > 0; i--)
		line = x->line[x->stack[i - 1]];
	config_parse_error(x->errs, line, "parameter %s: %s", who->name, what);
}

/* p was met while being expanded: blame the first member of the cycle
 * that the file set (defaults alone have no cycles). */
static void
config_expand_cycle(struct config_expand *x, enum config_param p)
{
	size_t k = 0, i;

	while (k < x->depth && x->stack[k] != p)
		k++;
	for (i = k; i < x->depth; i++) {
		if (x->line[x->stack[i]] > 0) {
			p = x->stack[i];
			break;
		}
	}
	config_parse_error(x->errs, x->line[p], "parameter %s: recursive $expansion",
	    config_param_name(p));
}

static bool
config_expand_is_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* The parameter called name[0..len), or CONFIG_PARAM_COUNT. */
static enum config_param
config_expand_lookup(const char *name, size_t len)
{
	size_t i;
	const char *n;

	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		n = config_param_name((enum config_param)i);
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return (enum config_param)i;
	}
	return CONFIG_PARAM_COUNT;
}

/* ${...} or $(...): find the matching close, then name[?:]body. */
static enum config_expand_scan
config_expand_scan_braced(const char *p, size_t len, struct config_expand_ref *ref)
{
	char open = p[1], close = open == '{' ? '}' : ')';
	size_t i, depth = 0, end = 0;

	for (i = 2; i < len && end == 0; i++) {
		if (p[i] == open)
			depth++;
		else if (p[i] == close && depth-- == 0)
			end = i;
	}
	if (end == 0)
		return CONFIG_EXPAND_SCAN_UNTERMINATED;
	ref->total = end + 1;
	ref->name = p + 2;
	for (ref->nlen = 0; config_expand_is_name(ref->name[ref->nlen]); ref->nlen++)
		;
	ref->op = p[2 + ref->nlen] == close ? '\0' : p[2 + ref->nlen];
	ref->body = p + 2 + ref->nlen + 1;
	ref->blen = ref->op ? end - (2 + ref->nlen + 1) : 0;
	if (ref->nlen == 0 || (ref->op != '\0' && ref->op != '?' && ref->op != ':'))
		return CONFIG_EXPAND_SCAN_BAD;
	return CONFIG_EXPAND_SCAN_REF;
}

/* What starts at p (p[0] == '$', len >= 1 bytes). */
static enum config_expand_scan
config_expand_scan(const char *p, size_t len, struct config_expand_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	if (len < 2)
		return CONFIG_EXPAND_SCAN_LITERAL;
	if (p[1] == '{' || p[1] == '(')
		return config_expand_scan_braced(p, len, ref);
	if (!config_expand_is_name(p[1]))
		return CONFIG_EXPAND_SCAN_LITERAL;
	ref->name = p + 1;
	for (ref->nlen = 0; ref->nlen + 1 < len && config_expand_is_name(ref->name[ref->nlen]);
	    ref->nlen++)
		;
	ref->total = 1 + ref->nlen;
	return CONFIG_EXPAND_SCAN_REF;
}

/* Append bytes, reporting a value that grew past CONFIG_EXPAND_VALUE_MAX. */
static bool
config_expand_put(struct config_expand *x, const struct config_expand_who *who,
                  struct buf *out, const char *p, size_t n)
{
	if (buf_append(out, p, n) == BUF_OK)
		return true;
	config_expand_report(x, who, "value too long after $expansion");
	return false;
}

/* Append the value a reference stands for. */
static bool
config_expand_ref(struct config_expand *x, const struct config_expand_ref *ref,
                  const struct config_expand_who *who, struct buf *out)
{
	enum config_param p = config_expand_lookup(ref->name, ref->nlen);
	struct config_expand_who inner = *who;
	const char *value = "";
	bool empty;

	/* Postfix: an unknown name expands to nothing. */
	if (p != CONFIG_PARAM_COUNT && (value = config_expand_param(x, p)) == NULL)
		return false;
	empty = value[0] == '\0';
	if (ref->op == '\0')
		return config_expand_put(x, who, out, value, strlen(value));
	if ((ref->op == '?' && empty) || (ref->op == ':' && !empty))
		return true;
	if (++inner.nest >= CONFIG_EXPAND_DEPTH_MAX) {
		config_expand_report(x, who, "${...} nested too deeply");
		return false;
	}
	return config_expand_into(x, ref->body, ref->blen, &inner, out);
}

static bool
config_expand_into(struct config_expand *x, const char *text, size_t len,
                   const struct config_expand_who *who, struct buf *out)
{
	struct config_expand_ref ref;
	const char *dollar;
	size_t i = 0, run;

	while (i < len) {
		dollar = memchr(text + i, '$', len - i);
		run = dollar ? (size_t)(dollar - (text + i)) : len - i;
		if (!config_expand_put(x, who, out, text + i, run))
			return false;
		if ((i += run) >= len)
			break;
		if (i + 1 < len && text[i + 1] == '$') {
			if (!config_expand_put(x, who, out, "$", 1))
				return false;
			i += 2;
			continue;
		}
		switch (config_expand_scan(text + i, len - i, &ref)) {
		case CONFIG_EXPAND_SCAN_REF:
			if (!config_expand_ref(x, &ref, who, out))
				return false;
			i += ref.total;
			break;
		case CONFIG_EXPAND_SCAN_LITERAL:
			if (!config_expand_put(x, who, out, "$", 1))
				return false;
			i++;
			break;
		case CONFIG_EXPAND_SCAN_UNTERMINATED:
			config_expand_report(x, who, "unterminated ${ or $( in value");
			return false;
		case CONFIG_EXPAND_SCAN_BAD:
			config_expand_report(x, who, "bad ${...} or $(...) reference in value");
			return false;
		}
	}
	return true;
}

const char *
config_expand_param(struct config_expand *x, enum config_param p)
{
	struct config_expand_who who = { config_param_name(p), x->line[p], 0 };
	const char *raw = x->raw[p] ? x->raw[p] : "";
	struct buf out;
	bool ok;

	switch (x->state[p]) {
	case CONFIG_EXPAND_DONE:
		return x->done[p];
	case CONFIG_EXPAND_FAILED:
		return NULL;
	case CONFIG_EXPAND_BUSY:
		config_expand_cycle(x, p);
		return NULL;
	case CONFIG_EXPAND_NEW:
		break;
	}
	if (x->depth == CONFIG_EXPAND_DEPTH_MAX) {
		config_expand_cycle(x, p);
		return NULL;
	}
	x->state[p] = CONFIG_EXPAND_BUSY;
	x->stack[x->depth++] = p;
	buf_init(&out, CONFIG_EXPAND_VALUE_MAX);
	if (config_param_raw(p))
		ok = buf_append_str(&out, raw) == BUF_OK;
	else
		ok = config_expand_into(x, raw, strlen(raw), &who, &out);
	x->depth--;
	x->state[p] = ok ? CONFIG_EXPAND_DONE : CONFIG_EXPAND_FAILED;
	if (ok && (x->done[p] = strdup(buf_cstr(&out))) == NULL)
		fatal("out of memory (expanding %s)", who.name);
	buf_free(&out);
	return ok ? x->done[p] : NULL;
}

bool
config_expand_text(struct config_expand *x, const char *text, const char *name,
                   unsigned line, struct buf *out)
{
	struct config_expand_who who = { name, line, 0 };

	return config_expand_into(x, text, strlen(text), &who, out);
}
