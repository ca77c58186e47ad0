/*
 * smtpd_command: SMTP command line parsers (RFC 5321 section 4.1, ESMTP
 * parameters of RFC 1870, 3030, 3461, 4954, 6152, 6531, 6533).
 *
 * Pure functions: (pointer, length) in, a result struct out, and on error
 * a complete reply (code, enhanced code, text) for the session to send.
 * Nothing here keeps state, logs or exits; the input is never written.
 * Reply text built from client bytes only quotes checked ESMTP keywords
 * (letters, digits, '-'), cut to SMTPD_KEYWORD_QUOTE_MAX.
 */
#include "smtpd/smtpd_command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"

/* Longest client keyword quoted back in a reply. */
#define SMTPD_KEYWORD_QUOTE_MAX 32
/* RFC 1870 section 3: size-value ::= 1*20DIGIT. */
#define SMTPD_SIZE_DIGITS_MAX 20
/* RFC 6533 section 3: EmbeddedUnicodeChar "\x{" HEXPOINT "}", 2..6 hex. */
#define SMTPD_UNICODE_HEX_MAX 6
#define SMTPD_UNICODE_MAX 0x10FFFFu

static const char *const smtpd_verb_names[SMTPD_VERB_COUNT] = {
	[SMTPD_VERB_UNKNOWN] = "UNKNOWN",
	[SMTPD_VERB_HELO] = "HELO",
	[SMTPD_VERB_EHLO] = "EHLO",
	[SMTPD_VERB_MAIL] = "MAIL",
	[SMTPD_VERB_RCPT] = "RCPT",
	[SMTPD_VERB_DATA] = "DATA",
	[SMTPD_VERB_BDAT] = "BDAT",
	[SMTPD_VERB_RSET] = "RSET",
	[SMTPD_VERB_NOOP] = "NOOP",
	[SMTPD_VERB_QUIT] = "QUIT",
	[SMTPD_VERB_VRFY] = "VRFY",
	[SMTPD_VERB_EXPN] = "EXPN",
	[SMTPD_VERB_HELP] = "HELP",
	[SMTPD_VERB_STARTTLS] = "STARTTLS",
	[SMTPD_VERB_AUTH] = "AUTH",
	[SMTPD_VERB_ETRN] = "ETRN",
	[SMTPD_VERB_XFORWARD] = "XFORWARD",
};

static bool
smtpd_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
smtpd_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
smtpd_is_alnum(char c)
{
	return smtpd_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Does (p, len) equal the ASCII word w, ignoring case? */
static bool
smtpd_word_eq(const char *p, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(p, w, len) == 0;
}

static int smtpd_reply_set(struct smtpd_reply *err, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fill err and return -1. Every format quotes client bytes with %.*s and a
 * small bound, so the text always fits SMTPD_REPLY_TEXT_MAX. */
static int
smtpd_reply_set(struct smtpd_reply *err, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->enh = enh;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
smtpd_verb_name(enum smtpd_verb verb)
{
	if ((int)verb < 0 || verb >= SMTPD_VERB_COUNT)
		return smtpd_verb_names[SMTPD_VERB_UNKNOWN];
	return smtpd_verb_names[verb];
}

void
smtpd_command_split(const char *line, size_t len, struct smtpd_command *cmd)
{
	size_t i = 0, end;
	int v;

	while (i < len && !smtpd_is_wsp(line[i]))
		i++;
	cmd->verb = SMTPD_VERB_UNKNOWN;
	cmd->verb_p = line;
	cmd->verb_len = i;
	/* An exact word, case-insensitive (RFC 5321 2.4): MAILX is unknown. */
	for (v = SMTPD_VERB_UNKNOWN + 1; v < SMTPD_VERB_COUNT; v++) {
		if (i > 0 && smtpd_word_eq(line, i, smtpd_verb_names[v])) {
			cmd->verb = (enum smtpd_verb)v;
			break;
		}
	}
	while (i < len && smtpd_is_wsp(line[i]))
		i++;
	end = len;
	while (end > i && smtpd_is_wsp(line[end - 1]))
		end--;
	cmd->args = line + i;
	cmd->args_len = end - i;
}

int
smtpd_parse_helo(const char *args, size_t len, char *dst, size_t dstsz,
                 struct smtpd_reply *err)
{
	size_t i = 0, start;

	if (dstsz > 0)
		dst[0] = '\0';
	while (i < len && smtpd_is_wsp(args[i]))
		i++;
	if (i == len)
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: EHLO hostname");
	/* Printable ASCII only in the whole argument: no NUL, CR, LF or other
	 * controls, no 8-bit (RFC 5321 4.1.1.1 asks for a domain or literal;
	 * whether it is a valid one is the restrictions' business). */
	for (start = i; i < len; i++) {
		unsigned char c = (unsigned char)args[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return smtpd_reply_set(err, 501, "5.5.4",
			                       "Syntax: EHLO hostname (non-printable character)");
	}
	/* The first word; any further words are ignored. */
	for (i = start; i < len && !smtpd_is_wsp(args[i]); i++)
		;
	if (i - start > SMTPD_HELO_MAX || i - start >= dstsz)
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: EHLO hostname (name too long)");
	memcpy(dst, args + start, i - start);
	dst[i - start] = '\0';
	return 0;
}

static int
smtpd_hex_upper(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ABNF HEXDIG is case-insensitive (RFC 5234 2.3), unlike xtext's hexchar. */
static int
smtpd_hex_any(char c)
{
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return smtpd_hex_upper(c);
}

int
smtpd_xtext_decode(const char *p, size_t len, char *dst, size_t dstsz)
{
	size_t i, o = 0;
	int hi, lo;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			/* RFC 3461 4: hexchar = "+" 2 upper-case hex digits. */
			if (len - i < 3 || (hi = smtpd_hex_upper(p[i + 1])) < 0 ||
			    (lo = smtpd_hex_upper(p[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0)
				return -1;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			/* xchar is "!".."~" except "+" and "=". */
			return -1;
		}
		if (o + 1 >= dstsz)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/*
 * RFC 3461 4.2 and 4.4: ORCPT and ENVID values "prior to encoding as xtext
 * MUST consist entirely of printable (graphic and white space) characters
 * from the US-ASCII repertoire". We also hold AUTH= to it. Refusing CR, LF
 * and other controls here keeps them out of DSN headers and queue files.
 */
static bool
smtpd_is_dsn_text(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}

/* One esmtp-param (RFC 5321 4.1.2): keyword ["=" value]. */
struct smtpd_param {
	const char *key;
	size_t key_len;
	const char *val;	/* NULL when there was no "=" */
	size_t val_len;
};

/*
 * Take the next SP-separated parameter from (p, len) at *pos. Returns 1 and
 * fills prm, 0 at the end, -1 with err when the keyword is not
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). Values are checked by each
 * parameter's own parser.
 */
static int
smtpd_param_next(const char *p, size_t len, size_t *pos, struct smtpd_param *prm,
                 struct smtpd_reply *err)
{
	size_t i = *pos, start, k;

	while (i < len && p[i] == ' ')
		i++;
	if (i == len)
		return 0;
	start = i;
	while (i < len && p[i] != ' ')
		i++;
	*pos = i;
	for (k = start; k < i && p[k] != '='; k++)
		if (!smtpd_is_alnum(p[k]) && !(p[k] == '-' && k > start))
			return smtpd_reply_set(err, 501, "5.5.4", "Bad parameter syntax");
	if (k == start)
		return smtpd_reply_set(err, 501, "5.5.4", "Bad parameter syntax");
	prm->key = p + start;
	prm->key_len = k - start;
	if (k < i) {
		prm->val = p + k + 1;
		prm->val_len = i - k - 1;
	} else {
		prm->val = NULL;
		prm->val_len = 0;
	}
	return 1;
}

/* A parameter rule: which extension must have been offered, and its value
 * parser (0, or -1 when the value is bad; the caller builds the reply). */
struct smtpd_param_rule {
	const char *key;
	unsigned ext;
	int (*parse)(const struct smtpd_param *prm, void *out, struct smtpd_reply *err);
};

static int
smtpd_bad_value(struct smtpd_reply *err, const char *key)
{
	return smtpd_reply_set(err, 501, "5.5.4", "Bad %s parameter value", key);
}

/*
 * Walk the parameters at (p, len) through rules: unknown or unoffered
 * keyword 555 5.5.4, repeated keyword 501 5.5.4, bad value as the rule
 * says (501 5.5.4 by default).
 */
static int
smtpd_params_parse(const char *p, size_t len, unsigned ext, const struct smtpd_param_rule *rules,
                   size_t nrules, void *out, struct smtpd_reply *err)
{
	struct smtpd_param prm;
	unsigned seen = 0;
	size_t pos = 0, r;
	int n;

	while ((n = smtpd_param_next(p, len, &pos, &prm, err)) > 0) {
		for (r = 0; r < nrules; r++)
			if (smtpd_word_eq(prm.key, prm.key_len, rules[r].key))
				break;
		if (r == nrules || !(ext & rules[r].ext))
			return smtpd_reply_set(err, 555, "5.5.4", "Unsupported option: %.*s",
			                       (int)(prm.key_len < SMTPD_KEYWORD_QUOTE_MAX ?
			                             prm.key_len : SMTPD_KEYWORD_QUOTE_MAX),
			                       prm.key);
		if (seen & (1u << r))
			return smtpd_reply_set(err, 501, "5.5.4", "Duplicate parameter %s", rules[r].key);
		seen |= 1u << r;
		err->code = 0;
		if (rules[r].parse(&prm, out, err) < 0)
			return err->code != 0 ? -1 : smtpd_bad_value(err, rules[r].key);
	}
	return n;
}

/* RFC 1870: SIZE=1*20DIGIT; past 2^64-1 is a bad value, not a huge one. */
static int
smtpd_param_size(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;
	uint64_t v = 0;
	size_t i;

	(void)err;
	if (prm->val == NULL || prm->val_len == 0 || prm->val_len > SMTPD_SIZE_DIGITS_MAX)
		return -1;
	for (i = 0; i < prm->val_len; i++) {
		unsigned d;
		if (!smtpd_is_digit(prm->val[i]))
			return -1;
		d = (unsigned)(prm->val[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	out->size = v;
	out->size_given = true;
	return 0;
}

/* RFC 6152: BODY=7BIT / 8BITMIME. RFC 3030 BINARYMIME is not offered. */
static int
smtpd_param_body(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;

	if (prm->val == NULL)
		return -1;
	if (smtpd_word_eq(prm->val, prm->val_len, "7BIT"))
		out->body = ENVELOPE_BODY_7BIT;
	else if (smtpd_word_eq(prm->val, prm->val_len, "8BITMIME"))
		out->body = ENVELOPE_BODY_8BITMIME;
	else if (smtpd_word_eq(prm->val, prm->val_len, "BINARYMIME"))
		return smtpd_reply_set(err, 555, "5.5.4", "Unsupported option: BODY=BINARYMIME");
	else
		return -1;
	return 0;
}

/* RFC 6531 3.4: SMTPUTF8 takes no value. */
static int
smtpd_param_smtputf8(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;

	(void)err;
	if (prm->val != NULL)
		return -1;
	out->smtputf8 = true;
	return 0;
}

/* RFC 3461 4.3: RET=FULL / HDRS. */
static int
smtpd_param_ret(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;

	(void)err;
	if (prm->val == NULL)
		return -1;
	if (smtpd_word_eq(prm->val, prm->val_len, "FULL"))
		out->ret = ENVELOPE_RET_FULL;
	else if (smtpd_word_eq(prm->val, prm->val_len, "HDRS"))
		out->ret = ENVELOPE_RET_HDRS;
	else
		return -1;
	return 0;
}

/* RFC 3461 4.4: ENVID=xtext, at most 100 characters as sent. */
static int
smtpd_param_envid(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;

	(void)err;
	if (prm->val == NULL || prm->val_len == 0 || prm->val_len > SMTPD_ENVID_MAX)
		return -1;
	if (smtpd_xtext_decode(prm->val, prm->val_len, out->envid, sizeof(out->envid)) < 0 ||
	    !smtpd_is_dsn_text(out->envid)) {
		out->envid[0] = '\0';
		return -1;
	}
	out->envid_given = true;
	return 0;
}

/* RFC 4954 5: AUTH=xtext / "<>". */
static int
smtpd_param_auth(const struct smtpd_param *prm, void *vout, struct smtpd_reply *err)
{
	struct smtpd_mail_args *out = vout;

	(void)err;
	if (prm->val == NULL || prm->val_len == 0)
		return -1;
	if (smtpd_word_eq(prm->val, prm->val_len, "<>")) {
		out->auth[0] = '\0';
	} else if (smtpd_xtext_decode(prm->val, prm->val_len, out->auth, sizeof(out->auth)) < 0 ||
	           out->auth[0] == '\0' || !smtpd_is_dsn_text(out->auth)) {
		out->auth[0] = '\0';
		return -1;
	}
	out->auth_given = true;
	return 0;
}

static const struct smtpd_param_rule smtpd_mail_rules[] = {
	{ "SIZE", SMTPD_EXT_SIZE, smtpd_param_size },
	{ "BODY", SMTPD_EXT_8BITMIME, smtpd_param_body },
	{ "SMTPUTF8", SMTPD_EXT_SMTPUTF8, smtpd_param_smtputf8 },
	{ "RET", SMTPD_EXT_DSN, smtpd_param_ret },
	{ "ENVID", SMTPD_EXT_DSN, smtpd_param_envid },
	{ "AUTH", SMTPD_EXT_AUTH, smtpd_param_auth },
};

/* What the RCPT parameter parsers fill, and whether the transaction is
 * SMTPUTF8 (ORCPT's utf-8 type may then carry raw UTF-8). */
struct smtpd_rcpt_ctx {
	struct smtpd_rcpt_args *args;
	bool smtputf8;
};

/* RFC 3461 4.1: NOTIFY="NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY"). */
static int
smtpd_param_notify(const struct smtpd_param *prm, void *vctx, struct smtpd_reply *err)
{
	struct smtpd_rcpt_ctx *ctx = vctx;
	unsigned notify = 0;
	size_t i = 0, start;

	(void)err;
	if (prm->val == NULL)
		return -1;
	for (;;) {
		start = i;
		while (i < prm->val_len && prm->val[i] != ',')
			i++;
		if (smtpd_word_eq(prm->val + start, i - start, "NEVER"))
			notify |= ENVELOPE_NOTIFY_NEVER;
		else if (smtpd_word_eq(prm->val + start, i - start, "SUCCESS"))
			notify |= ENVELOPE_NOTIFY_SUCCESS;
		else if (smtpd_word_eq(prm->val + start, i - start, "FAILURE"))
			notify |= ENVELOPE_NOTIFY_FAILURE;
		else if (smtpd_word_eq(prm->val + start, i - start, "DELAY"))
			notify |= ENVELOPE_NOTIFY_DELAY;
		else
			return -1;	/* also an empty element: ",", "SUCCESS," */
		if (i == prm->val_len)
			break;
		i++;
	}
	/* NEVER must stand alone. */
	if ((notify & ENVELOPE_NOTIFY_NEVER) && notify != ENVELOPE_NOTIFY_NEVER)
		return -1;
	ctx->args->notify = notify;
	return 0;
}

/* UTF-8 encoding of code point cp into enc; returns its length. */
static size_t
smtpd_utf8_encode(uint32_t cp, unsigned char enc[4])
{
	if (cp < 0x80) {
		enc[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		enc[0] = (unsigned char)(0xc0 | cp >> 6);
		enc[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		enc[0] = (unsigned char)(0xe0 | cp >> 12);
		enc[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		enc[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	enc[0] = (unsigned char)(0xf0 | cp >> 18);
	enc[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	enc[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	enc[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * RFC 6533 section 3 EmbeddedUnicodeChar at p[*i]: "\x{" 1..6 hex "}".
 * Refuses controls, surrogates and anything past U+10FFFF. Returns the
 * UTF-8 length in enc, or 0 when malformed; advances *i past the "}".
 */
static size_t
smtpd_unicode_escape(const char *p, size_t len, size_t *i, unsigned char enc[4])
{
	uint32_t cp = 0;
	size_t k, start = *i + 3;
	int h;

	if (len - *i < 5 || p[*i + 1] != 'x' || p[*i + 2] != '{')
		return 0;
	for (k = start; k < len && p[k] != '}'; k++) {
		if ((h = smtpd_hex_any(p[k])) < 0 || k - start >= SMTPD_UNICODE_HEX_MAX)
			return 0;
		cp = cp << 4 | (uint32_t)h;
	}
	if (k == len || k == start)
		return 0;
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > SMTPD_UNICODE_MAX)
		return 0;
	*i = k + 1;
	return smtpd_utf8_encode(cp, enc);
}

/*
 * RFC 6533 section 3 utf-8-addr-xtext / utf-8-addr-unitext: QCHAR (printable
 * ASCII except '+', '=', '\'), "\x{HEX}" for any other code point, and raw
 * UTF-8 only when the transaction is SMTPUTF8. Appends to dst at *o.
 */
static int
smtpd_utf8_addr_decode(const char *p, size_t len, bool smtputf8, char *dst, size_t dstsz,
                       size_t *o)
{
	size_t i = 0, n;

	while (i < len) {
		unsigned char c = (unsigned char)p[i];
		unsigned char enc[4];

		if (c == '\\') {
			n = smtpd_unicode_escape(p, len, &i, enc);
		} else if (c >= 0x80) {
			/* utf-8-addr-unitext: raw UTF-8, SMTPUTF8 sessions only. */
			n = smtputf8 ? utf8_sequence_len(p + i, len - i) : 0;
			memcpy(enc, p + i, n);
			i += n;
		} else if (c >= 0x21 && c <= 0x7e && c != '+' && c != '=') {
			enc[0] = c;
			n = 1;
			i++;
		} else {
			n = 0;
		}
		if (n == 0 || *o + n >= dstsz)
			return -1;
		memcpy(dst + *o, enc, n);
		*o += n;
	}
	dst[*o] = '\0';
	return 0;
}

/*
 * RFC 3461 4.2: ORCPT=addr-type ";" xtext, at most 500 characters as sent,
 * addr-type an atom. Stored as "addr-type;decoded". The "utf-8" type is
 * decoded by RFC 6533's rules, any other type as xtext.
 */
static int
smtpd_param_orcpt(const struct smtpd_param *prm, void *vctx, struct smtpd_reply *err)
{
	struct smtpd_rcpt_ctx *ctx = vctx;
	struct smtpd_rcpt_args *out = ctx->args;
	size_t t, o;
	int rc;

	(void)err;
	if (prm->val == NULL || prm->val_len > SMTPD_ORCPT_MAX)
		return -1;
	for (t = 0; t < prm->val_len && prm->val[t] != ';'; t++) {
		unsigned char c = (unsigned char)prm->val[t];
		/* RFC 5322 atext. */
		if (!smtpd_is_alnum((char)c) && (c == 0 || strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL))
			return -1;
	}
	if (t == 0 || t == prm->val_len)
		return -1;
	memcpy(out->orcpt, prm->val, t + 1);	/* "type;" fits: t < 500 */
	o = t + 1;
	if (smtpd_word_eq(prm->val, t, "utf-8")) {
		rc = smtpd_utf8_addr_decode(prm->val + t + 1, prm->val_len - t - 1, ctx->smtputf8,
		                            out->orcpt, sizeof(out->orcpt), &o);
	} else {
		rc = smtpd_xtext_decode(prm->val + t + 1, prm->val_len - t - 1, out->orcpt + o,
		                        sizeof(out->orcpt) - o);
		if (rc == 0 && !smtpd_is_dsn_text(out->orcpt + o))
			rc = -1;
	}
	if (rc < 0) {
		out->orcpt[0] = '\0';
		return -1;
	}
	out->orcpt_given = true;
	return 0;
}

static const struct smtpd_param_rule smtpd_rcpt_rules[] = {
	{ "NOTIFY", SMTPD_EXT_DSN, smtpd_param_notify },
	{ "ORCPT", SMTPD_EXT_DSN, smtpd_param_orcpt },
};

/* Does (args, len) start with word (e.g. "FROM:"), ignoring case? */
static bool
smtpd_has_prefix(const char *args, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len >= n && strncasecmp(args, word, n) == 0;
}

/* After the path: the end, or SP and parameters. */
static bool
smtpd_path_ends_well(const char *args, size_t len, size_t pos)
{
	return pos == len || args[pos] == ' ';
}

/* Trailing SP/HTAB are not part of the last parameter. */
static size_t
smtpd_trim_len(const char *args, size_t len)
{
	while (len > 0 && smtpd_is_wsp(args[len - 1]))
		len--;
	return len;
}

int
smtpd_parse_mail(const char *args, size_t len, unsigned ext,
                 struct smtpd_mail_args *out, struct smtpd_reply *err)
{
	size_t i, used;
	const char *why;
	enum mailaddr_result r;

	memset(out, 0, sizeof(*out));
	len = smtpd_trim_len(args, len);
	if (!smtpd_has_prefix(args, len, "FROM:"))
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	i = 5;
	/* Postfix tolerates "MAIL FROM: <a@b>"; so do we. */
	while (i < len && args[i] == ' ')
		i++;
	if (i == len)
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	/*
	 * SMTPUTF8 comes after the address (RFC 6531 3.4), so the path is
	 * parsed with UTF-8 allowed to find its end, and whether UTF-8 was
	 * declared is checked once the parameters are known.
	 */
	r = mailaddr_parse_path(args + i, len - i,
	                        MAILADDR_ALLOW_NULL | MAILADDR_ALLOW_NO_BRACKETS | MAILADDR_ALLOW_UTF8,
	                        &out->from, &used, &why);
	if (r != MAILADDR_OK)
		return smtpd_reply_set(err, 501, "5.1.7", "Bad sender address syntax (%s)", why);
	i += used;
	if (!smtpd_path_ends_well(args, len, i)) {
		memset(out, 0, sizeof(*out));
		return smtpd_reply_set(err, 501, "5.1.7", "Bad sender address syntax (text after address)");
	}
	if (smtpd_params_parse(args + i, len - i, ext, smtpd_mail_rules,
	                       sizeof(smtpd_mail_rules) / sizeof(smtpd_mail_rules[0]), out, err) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	/* RFC 6531 3.4: a UTF-8 envelope needs the SMTPUTF8 parameter. */
	if (out->from.utf8 && !out->smtputf8) {
		memset(out, 0, sizeof(*out));
		return smtpd_reply_set(err, 553, "5.6.7", "UTF-8 sender address needs SMTPUTF8");
	}
	return 0;
}

int
smtpd_parse_rcpt(const char *args, size_t len, unsigned ext, bool smtputf8,
                 struct smtpd_rcpt_args *out, struct smtpd_reply *err)
{
	struct smtpd_rcpt_ctx ctx = { .args = out, .smtputf8 = smtputf8 };
	size_t i, used;
	const char *why;
	enum mailaddr_result r;

	memset(out, 0, sizeof(*out));
	len = smtpd_trim_len(args, len);
	if (!smtpd_has_prefix(args, len, "TO:"))
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	i = 3;
	while (i < len && args[i] == ' ')
		i++;
	if (i == len)
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	/* <> parses so that it gets its own message; it is no forward-path. */
	r = mailaddr_parse_path(args + i, len - i,
	                        MAILADDR_ALLOW_NULL | MAILADDR_ALLOW_POSTMASTER |
	                        MAILADDR_ALLOW_NO_BRACKETS | (smtputf8 ? MAILADDR_ALLOW_UTF8 : 0),
	                        &out->to, &used, &why);
	if (r == MAILADDR_UTF8)
		return smtpd_reply_set(err, 553, "5.6.7", "UTF-8 recipient address needs SMTPUTF8");
	if (r != MAILADDR_OK)
		return smtpd_reply_set(err, 501, "5.1.3", "Bad recipient address syntax (%s)", why);
	if (out->to.null) {
		memset(out, 0, sizeof(*out));
		return smtpd_reply_set(err, 501, "5.1.3", "Bad recipient address syntax (null address)");
	}
	i += used;
	if (!smtpd_path_ends_well(args, len, i)) {
		memset(out, 0, sizeof(*out));
		return smtpd_reply_set(err, 501, "5.1.3", "Bad recipient address syntax (text after address)");
	}
	if (smtpd_params_parse(args + i, len - i, ext, smtpd_rcpt_rules,
	                       sizeof(smtpd_rcpt_rules) / sizeof(smtpd_rcpt_rules[0]), &ctx,
	                       err) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int
smtpd_parse_bdat(const char *args, size_t len, uint64_t *size, bool *last,
                 struct smtpd_reply *err)
{
	size_t i = 0, start;
	uint64_t v = 0;

	*size = 0;
	*last = false;
	len = smtpd_trim_len(args, len);
	while (i < len && args[i] == ' ')
		i++;
	for (start = i; i < len && smtpd_is_digit(args[i]); i++) {
		unsigned d = (unsigned)(args[i] - '0');
		if (v > (SMTPD_BDAT_SIZE_MAX - d) / 10)
			return smtpd_reply_set(err, 501, "5.5.4", "BDAT chunk size too large");
		v = v * 10 + d;
	}
	if (i == start)
		return smtpd_reply_set(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	if (i < len) {
		if (args[i] != ' ')
			return smtpd_reply_set(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		while (i < len && args[i] == ' ')
			i++;
		if (!smtpd_word_eq(args + i, len - i, "LAST"))
			return smtpd_reply_set(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		*last = true;
	}
	*size = v;
	return 0;
}
