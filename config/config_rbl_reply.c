/*
 * config_rbl_reply: expansion and load-time check of default_rbl_reply
 * templates (see the header). Returns errors in why; owns nothing.
 */
#include "config/config_rbl_reply.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Room for one value: a longer one would be cut in the output anyway. */
#define CONFIG_RBL_REPLY_VALUE_MAX (CONFIG_RBL_REPLY_MAX + 1)

/* Appends to a bounded output; past the end, bytes are dropped. */
struct config_rbl_reply_out {
	char *p;
	size_t len, cap;
	bool check;	/* expand both arms of ${name?...} / ${name:...} */
};

static void
config_rbl_reply_put(struct config_rbl_reply_out *o, const char *s, size_t n, bool filter)
{
	size_t i;

	for (i = 0; i < n && o->len + 1 < o->cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* Values come from the network: keep reply and log line clean. */
		o->p[o->len++] = !filter || (ch >= 32 && ch < 127) || ch == '\t' ? (char)ch : '_';
	}
	o->p[o->len] = '\0';
}

/* The part of a mail address a $sender_* / $recipient_* name asks for. */
static const char *
config_rbl_reply_addr_part(const char *addr, const char *part, char *buf, size_t bufsz)
{
	const char *at;

	/* Postfix: no address (no MAIL or RCPT yet) is empty; the null
	 * sender is "<>". */
	if (addr == NULL)
		return "";
	if (addr[0] == '\0')
		return strcmp(part, "domain") == 0 ? "" : "<>";
	at = strrchr(addr, '@');
	if (strcmp(part, "domain") == 0)
		return at != NULL ? at + 1 : "";
	if (strcmp(part, "name") == 0 && at != NULL) {
		snprintf(buf, bufsz, "%.*s", (int)(at - addr), addr);
		return buf;
	}
	return addr;
}

/* The value of name (len bytes), or NULL when the name is unknown. */
static const char *
config_rbl_reply_var(const struct config_rbl_reply_vars *v, const char *name, size_t len,
    char *buf, size_t bufsz)
{
	const struct {
		const char *name;
		const char *value;
	} plain[] = {
		{ "rbl_domain", v->rbl_domain }, { "rbl_reason", v->rbl_reason },
		{ "rbl_txt", v->rbl_reason }, { "rbl_what", v->rbl_what },
		{ "rbl_class", v->rbl_class }, { "client", v->client },
		{ "client_address", v->client_address }, { "client_name", v->client_name },
		{ "reverse_client_name", v->reverse_client_name }, { "helo_name", v->helo_name },
	};
	static const char *const parts[] = { "sender", "recipient" };
	size_t i, plen;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strlen(plain[i].name) == len && memcmp(plain[i].name, name, len) == 0)
			return plain[i].value != NULL ? plain[i].value : "";
	if (len == strlen("rbl_code") && memcmp(name, "rbl_code", len) == 0) {
		snprintf(buf, bufsz, "%d", v->rbl_code);
		return buf;
	}
	for (i = 0; i < 2; i++) {
		plen = strlen(parts[i]);
		if (len < plen || memcmp(name, parts[i], plen) != 0)
			continue;
		if (len == plen)
			return config_rbl_reply_addr_part(i == 0 ? v->sender : v->recipient, "", buf,
			    bufsz);
		if (len == plen + 5 && memcmp(name + plen, "_name", 5) == 0)
			return config_rbl_reply_addr_part(i == 0 ? v->sender : v->recipient, "name",
			    buf, bufsz);
		if (len == plen + 7 && memcmp(name + plen, "_domain", 7) == 0)
			return config_rbl_reply_addr_part(i == 0 ? v->sender : v->recipient, "domain",
			    buf, bufsz);
	}
	return NULL;
}

static int config_rbl_reply_into(const char *t, size_t len, const struct config_rbl_reply_vars *v,
    unsigned depth, struct config_rbl_reply_out *o, char *why, size_t whysz);

/* "${name...}" or "$(name...)" at t (t[0] == '$'); returns bytes used, 0 on error. */
static size_t
config_rbl_reply_braced(const char *t, size_t len, const struct config_rbl_reply_vars *v,
    unsigned depth, struct config_rbl_reply_out *o, char *why, size_t whysz)
{
	char open = t[1], close = open == '{' ? '}' : ')', buf[CONFIG_RBL_REPLY_VALUE_MAX];
	size_t i = 2, nlen, tstart, level = 1;
	const char *value;
	char op;

	while (i < len && (isalnum((unsigned char)t[i]) || t[i] == '_'))
		i++;
	nlen = i - 2;
	if (nlen == 0 || i >= len || (t[i] != close && t[i] != '?' && t[i] != ':')) {
		snprintf(why, whysz, "bad $%c...%c reference", open, close);
		return 0;
	}
	value = config_rbl_reply_var(v, t + 2, nlen, buf, sizeof(buf));
	if (value == NULL) {
		snprintf(why, whysz, "unknown name \"%.*s\"", (int)nlen, t + 2);
		return 0;
	}
	if (t[i] == close) {
		config_rbl_reply_put(o, value, strlen(value), true);
		return i + 1;
	}
	op = t[i++];
	for (tstart = i; i < len; i++) {
		if (t[i] == open)
			level++;
		else if (t[i] == close && --level == 0)
			break;
	}
	if (i >= len) {
		snprintf(why, whysz, "missing \"%c\"", close);
		return 0;
	}
	/* ?: the text when the value is not empty; ':' when it is. */
	if ((o->check || (op == '?') == (value[0] != '\0')) &&
	    config_rbl_reply_into(t + tstart, i - tstart, v, depth + 1, o, why, whysz) < 0)
		return 0;
	return i + 1;
}

static int
config_rbl_reply_into(const char *t, size_t len, const struct config_rbl_reply_vars *v,
    unsigned depth, struct config_rbl_reply_out *o, char *why, size_t whysz)
{
	char buf[CONFIG_RBL_REPLY_VALUE_MAX];
	const char *value;
	size_t i = 0, j, used;

	if (depth > CONFIG_RBL_REPLY_DEPTH_MAX) {
		snprintf(why, whysz, "${...} nested too deep");
		return -1;
	}
	while (i < len) {
		for (j = i; j < len && t[j] != '$'; j++)
			;
		config_rbl_reply_put(o, t + i, j - i, false);
		if ((i = j) >= len)
			break;
		if (i + 1 < len && (t[i + 1] == '{' || t[i + 1] == '(')) {
			if ((used = config_rbl_reply_braced(t + i, len - i, v, depth, o, why,
			    whysz)) == 0)
				return -1;
			i += used;
			continue;
		}
		for (j = i + 1; j < len && (isalnum((unsigned char)t[j]) || t[j] == '_'); j++)
			;
		if (j == i + 1) {
			/* "$$" is one '$'; a '$' before anything else stays. */
			config_rbl_reply_put(o, "$", 1, false);
			i += i + 1 < len && t[i + 1] == '$' ? 2 : 1;
			continue;
		}
		if ((value = config_rbl_reply_var(v, t + i + 1, j - i - 1, buf, sizeof(buf))) == NULL) {
			snprintf(why, whysz, "unknown name \"%.*s\"", (int)(j - i - 1), t + i + 1);
			return -1;
		}
		config_rbl_reply_put(o, value, strlen(value), true);
		i = j;
	}
	return 0;
}

int
config_rbl_reply_expand(const char *template, const struct config_rbl_reply_vars *v, char *out,
    size_t outsz, char *why, size_t whysz)
{
	struct config_rbl_reply_out o = { out, 0, outsz, false };

	out[0] = '\0';
	return config_rbl_reply_into(template, strlen(template), v, 0, &o, why, whysz);
}

int
config_rbl_reply_check(const char *template, char *why, size_t whysz)
{
	struct config_rbl_reply_vars v;
	char out[CONFIG_RBL_REPLY_MAX + 1];
	struct config_rbl_reply_out o = { out, 0, sizeof(out), true };

	memset(&v, 0, sizeof(v));
	out[0] = '\0';
	return config_rbl_reply_into(template, strlen(template), &v, 0, &o, why, whysz);
}
