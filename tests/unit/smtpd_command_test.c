/*
 * Unit tests for smtpd/smtpd_command.c: one table row per command line,
 * with the expected result or reply code and enhanced code. Hostile rows
 * include parameters without their extension, duplicates, overflows, bad
 * xtext, tabs and spaces in odd places, and over-long addresses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtpd_command.h"

#define ALL (SMTPD_EXT_SIZE | SMTPD_EXT_8BITMIME | SMTPD_EXT_SMTPUTF8 | SMTPD_EXT_DSN | \
             SMTPD_EXT_AUTH | SMTPD_EXT_CHUNKING)

static const char *
show(const char *p, size_t n)
{
	static char text[2048];
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < sizeof(text); i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 32 && c < 127 && c != '\\')
			text[o++] = (char)c;
		else
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\x%02x", c);
	}
	text[o] = '\0';
	return text;
}

/* ---- smtpd_command_split ---- */

struct split_row {
	const char *line;
	size_t len;		/* 0: strlen */
	enum smtpd_verb verb;
	size_t verb_len;
	const char *args;
};

static const struct split_row split_rows[] = {
	{ "MAIL FROM:<a@b>", 0, SMTPD_VERB_MAIL, 4, "FROM:<a@b>" },
	{ "mail from:<a@b>", 0, SMTPD_VERB_MAIL, 4, "from:<a@b>" },
	{ "MaIl FROM:<a@b>   ", 0, SMTPD_VERB_MAIL, 4, "FROM:<a@b>" },
	{ "MAIL FROM:<a@b> \t \t", 0, SMTPD_VERB_MAIL, 4, "FROM:<a@b>" },
	{ "MAIL    FROM:<a@b>", 0, SMTPD_VERB_MAIL, 4, "FROM:<a@b>" },
	{ "MAILX FROM:<a@b>", 0, SMTPD_VERB_UNKNOWN, 5, "FROM:<a@b>" },
	{ "MAI FROM:<a@b>", 0, SMTPD_VERB_UNKNOWN, 3, "FROM:<a@b>" },
	{ "MAIL:FROM", 0, SMTPD_VERB_UNKNOWN, 9, "" },
	{ "", 0, SMTPD_VERB_UNKNOWN, 0, "" },
	{ "   ", 0, SMTPD_VERB_UNKNOWN, 0, "" },
	{ " MAIL FROM:<a@b>", 0, SMTPD_VERB_UNKNOWN, 0, "MAIL FROM:<a@b>" },
	{ "QUIT", 0, SMTPD_VERB_QUIT, 4, "" },
	{ "quit  ", 0, SMTPD_VERB_QUIT, 4, "" },
	{ "QUIT now", 0, SMTPD_VERB_QUIT, 4, "now" },
	{ "EHLO\tclient.example", 0, SMTPD_VERB_EHLO, 4, "client.example" },
	{ "HELO client.example", 0, SMTPD_VERB_HELO, 4, "client.example" },
	{ "HEL client", 0, SMTPD_VERB_UNKNOWN, 3, "client" },
	{ "HELOO client", 0, SMTPD_VERB_UNKNOWN, 5, "client" },
	{ "RCPT TO:<a@b>", 0, SMTPD_VERB_RCPT, 4, "TO:<a@b>" },
	{ "DATA", 0, SMTPD_VERB_DATA, 4, "" },
	{ "data x", 0, SMTPD_VERB_DATA, 4, "x" },
	{ "BDAT 100 LAST", 0, SMTPD_VERB_BDAT, 4, "100 LAST" },
	{ "RSET", 0, SMTPD_VERB_RSET, 4, "" },
	{ "NOOP anything at all", 0, SMTPD_VERB_NOOP, 4, "anything at all" },
	{ "VRFY user", 0, SMTPD_VERB_VRFY, 4, "user" },
	{ "EXPN list", 0, SMTPD_VERB_EXPN, 4, "list" },
	{ "HELP", 0, SMTPD_VERB_HELP, 4, "" },
	{ "STARTTLS", 0, SMTPD_VERB_STARTTLS, 8, "" },
	{ "starttls", 0, SMTPD_VERB_STARTTLS, 8, "" },
	{ "STARTTLSX", 0, SMTPD_VERB_UNKNOWN, 9, "" },
	{ "AUTH PLAIN AGFAAGI=", 0, SMTPD_VERB_AUTH, 4, "PLAIN AGFAAGI=" },
	{ "ETRN example.com", 0, SMTPD_VERB_ETRN, 4, "example.com" },
	{ "MAIL\0FROM", 9, SMTPD_VERB_UNKNOWN, 9, "" },
	{ "MAIL FROM:\0<a@b>", 16, SMTPD_VERB_MAIL, 4, "FROM:\0<a@b>" },
	{ "GET / HTTP/1.0", 0, SMTPD_VERB_UNKNOWN, 3, "/ HTTP/1.0" },
	{ "\xc3\xa9HLO x", 0, SMTPD_VERB_UNKNOWN, 5, "x" },
};

START_TEST(test_split_rows)
{
	const struct split_row *r = &split_rows[_i];
	size_t len = r->len ? r->len : strlen(r->line);
	struct smtpd_command cmd;

	smtpd_command_split(r->line, len, &cmd);
	ck_assert_msg(cmd.verb == r->verb, "row %d \"%s\": verb %d, want %d", _i, show(r->line, len),
	              cmd.verb, r->verb);
	ck_assert_msg(cmd.verb_len == r->verb_len, "row %d: verb_len %zu, want %zu", _i, cmd.verb_len,
	              r->verb_len);
	ck_assert(cmd.verb_p == r->line);
	ck_assert(cmd.args >= r->line && cmd.args + cmd.args_len <= r->line + len);
	if (r->len == 0) {
		ck_assert_msg(cmd.args_len == strlen(r->args) && memcmp(cmd.args, r->args, cmd.args_len) == 0,
		              "row %d: args \"%s\", want \"%s\"", _i, show(cmd.args, cmd.args_len), r->args);
	}
}
END_TEST

START_TEST(test_split_nul_args)
{
	struct smtpd_command cmd;

	smtpd_command_split("MAIL FROM:\0<a@b>", 16, &cmd);
	ck_assert_uint_eq(cmd.args_len, 11);
	ck_assert(memcmp(cmd.args, "FROM:\0<a@b>", 11) == 0);
}
END_TEST

START_TEST(test_verb_names)
{
	int v;
	struct smtpd_command cmd;
	const char *name;

	for (v = SMTPD_VERB_UNKNOWN + 1; v < SMTPD_VERB_COUNT; v++) {
		name = smtpd_verb_name((enum smtpd_verb)v);
		ck_assert_ptr_nonnull(name);
		smtpd_command_split(name, strlen(name), &cmd);
		ck_assert_int_eq(cmd.verb, v);
	}
	ck_assert_str_eq(smtpd_verb_name(SMTPD_VERB_UNKNOWN), "UNKNOWN");
	ck_assert_str_eq(smtpd_verb_name(SMTPD_VERB_COUNT), "UNKNOWN");
}
END_TEST

/* ---- smtpd_parse_helo ---- */

struct helo_row {
	const char *args;
	size_t len;
	int code;		/* 0: success */
	const char *name;
};

static const struct helo_row helo_rows[] = {
	{ "mx.example.com", 0, 0, "mx.example.com" },
	{ "[192.0.2.1]", 0, 0, "[192.0.2.1]" },
	{ "[IPv6:2001:db8::1]", 0, 0, "[IPv6:2001:db8::1]" },
	{ "localhost", 0, 0, "localhost" },
	{ "not_valid!but*printable", 0, 0, "not_valid!but*printable" },
	{ "mx.example.com extra words", 0, 0, "mx.example.com" },
	{ "  mx.example.com", 0, 0, "mx.example.com" },
	{ "mx.example.com\t", 0, 0, "mx.example.com" },
	{ "", 0, 501, NULL },
	{ "   ", 0, 501, NULL },
	{ "\t", 0, 501, NULL },
	{ "mx\x01.example", 0, 501, NULL },
	{ "mx.example\r", 0, 501, NULL },
	{ "mx.example\n", 0, 501, NULL },
	{ "m\xc3\xbcx.example", 0, 501, NULL },
	{ "mx.example \x7f", 0, 501, NULL },
	{ "mx\0.example", 11, 501, NULL },
	{ "mx.example \0", 12, 501, NULL },
};

START_TEST(test_helo_rows)
{
	const struct helo_row *r = &helo_rows[_i];
	size_t len = r->len ? r->len : strlen(r->args);
	char name[SMTPD_HELO_MAX + 1];
	struct smtpd_reply err = { 0 };
	int rc;

	rc = smtpd_parse_helo(r->args, len, name, sizeof(name), &err);
	if (r->code == 0) {
		ck_assert_msg(rc == 0, "row %d \"%s\": %d %s %s", _i, show(r->args, len), err.code,
		              err.enh, err.text);
		ck_assert_str_eq(name, r->name);
	} else {
		ck_assert_msg(rc == -1, "row %d \"%s\": accepted", _i, show(r->args, len));
		ck_assert_int_eq(err.code, r->code);
		ck_assert_str_eq(err.enh, "5.5.4");
		ck_assert(strlen(err.text) > 0);
	}
}
END_TEST

START_TEST(test_helo_lengths)
{
	char arg[400], name[SMTPD_HELO_MAX + 1], small[8];
	struct smtpd_reply err;

	memset(arg, 'h', 255);
	arg[255] = '\0';
	ck_assert_int_eq(smtpd_parse_helo(arg, 255, name, sizeof(name), &err), 0);
	ck_assert_uint_eq(strlen(name), 255);
	memset(arg, 'h', 256);
	arg[256] = '\0';
	ck_assert_int_eq(smtpd_parse_helo(arg, 256, name, sizeof(name), &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.5.4");
	/* a small destination is never overrun */
	ck_assert_int_eq(smtpd_parse_helo("abcdefg", 7, small, sizeof(small), &err), 0);
	ck_assert_str_eq(small, "abcdefg");
	ck_assert_int_eq(smtpd_parse_helo("abcdefgh", 8, small, sizeof(small), &err), -1);
}
END_TEST

/* ---- smtpd_parse_mail ---- */

struct mail_row {
	const char *args;
	unsigned ext;
	int code;		/* 0: success */
	const char *enh;
	const char *text;	/* expected reply text prefix, or NULL */
	const char *addr;
	bool null;
	bool size_given;
	uint64_t size;
	enum envelope_body body;
	bool smtputf8;
	enum envelope_ret ret;
	const char *envid;	/* NULL: not given */
	const char *auth;	/* NULL: not given */
};

#define MOK(args, ext, addr) { args, ext, 0, NULL, NULL, addr, false, false, 0, 0, false, 0, NULL, NULL }
#define MERR(args, ext, code, enh, text) { args, ext, code, enh, text, NULL, false, false, 0, 0, false, 0, NULL, NULL }

static const struct mail_row mail_rows[] = {
	MOK("FROM:<a@b.example>", ALL, "a@b.example"),
	MOK("FROM:<a@b.example>", 0, "a@b.example"),
	MOK("from:<a@b.example>", ALL, "a@b.example"),
	MOK("From:<a@b.example>", ALL, "a@b.example"),
	MOK("FROM: <a@b.example>", ALL, "a@b.example"),
	MOK("FROM:   <a@b.example>", ALL, "a@b.example"),
	MOK("FROM:a@b.example", ALL, "a@b.example"),
	MOK("FROM:<a@b.example>   ", ALL, "a@b.example"),
	MOK("FROM:<a@b.example> \t", ALL, "a@b.example"),
	MOK("FROM:<@relay.example:a@b.example>", ALL, "a@b.example"),
	MOK("FROM:<victim%target@relay.example>", ALL, "victim%target@relay.example"),
	MOK("FROM:<\"a b\"@c.example>", ALL, "\"a b\"@c.example"),
	{ "FROM:<>", ALL, 0, NULL, NULL, "", true, false, 0, 0, false, 0, NULL, NULL },
	{ "FROM:<> SIZE=100", ALL, 0, NULL, NULL, "", true, true, 100, 0, false, 0, NULL, NULL },

	/* syntax */
	MERR("", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FROM:", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FROM:   ", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FROM <a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FROM<a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FROM :<a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("TO:<a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR(" FROM:<a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MERR("FRO:<a@b.example>", ALL, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),

	/* bad addresses */
	MERR("FROM:<a@b.example", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<a@b.example>x", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<a@b.example>SIZE=1", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<a@b.example>\tSIZE=1", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<victim@target@relay>", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<victim@>", ALL, 501, "5.1.7", "Bad sender address syntax (domain part missing)"),
	MERR("FROM:<a b@c.example>", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:a@b.example>", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<Postmaster>", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<<>>", ALL, 501, "5.1.7", "Bad sender address syntax"),

	/* SIZE (RFC 1870) */
	{ "FROM:<a@b.example> SIZE=1000", ALL, 0, NULL, NULL, "a@b.example", false, true, 1000, 0, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> size=1000", ALL, 0, NULL, NULL, "a@b.example", false, true, 1000, 0, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> SIZE=0", ALL, 0, NULL, NULL, "a@b.example", false, true, 0, 0, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> SIZE=00000000000000000007", ALL, 0, NULL, NULL, "a@b.example", false, true, 7, 0, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> SIZE=18446744073709551615", ALL, 0, NULL, NULL, "a@b.example", false, true, UINT64_MAX, 0, false, 0, NULL, NULL },
	{ "FROM:a@b.example SIZE=5", SMTPD_EXT_SIZE, 0, NULL, NULL, "a@b.example", false, true, 5, 0, false, 0, NULL, NULL },
	MERR("FROM:<a@b.example> SIZE=1000", 0, 555, "5.5.4", "Unsupported option: SIZE"),
	MERR("FROM:<a@b.example> SIZE=1000", ALL & ~SMTPD_EXT_SIZE, 555, "5.5.4", "Unsupported option: SIZE"),
	MERR("FROM:<a@b.example> SIZE=99999999999999999999999", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=18446744073709551616", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=000000000000000000007", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=-1", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=+1", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=1k", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=0x10", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=1=2", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=1\tBODY=8BITMIME", ALL, 501, "5.5.4", "Bad SIZE parameter value"),
	MERR("FROM:<a@b.example> SIZE=10 SIZE=10", ALL, 501, "5.5.4", "Duplicate parameter SIZE"),
	MERR("FROM:<a@b.example> SIZE=10 size=20", ALL, 501, "5.5.4", "Duplicate parameter SIZE"),

	/* BODY (RFC 6152, RFC 3030) */
	{ "FROM:<a@b.example> BODY=8BITMIME", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, ENVELOPE_BODY_8BITMIME, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> body=7bit", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, ENVELOPE_BODY_7BIT, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> Body=8bitMime", SMTPD_EXT_8BITMIME, 0, NULL, NULL, "a@b.example", false, false, 0, ENVELOPE_BODY_8BITMIME, false, 0, NULL, NULL },
	MERR("FROM:<a@b.example> BODY=BINARYMIME", ALL, 555, "5.5.4", "Unsupported option: BODY=BINARYMIME"),
	MERR("FROM:<a@b.example> BODY=8BIT", ALL, 501, "5.5.4", "Bad BODY parameter value"),
	MERR("FROM:<a@b.example> BODY=", ALL, 501, "5.5.4", "Bad BODY parameter value"),
	MERR("FROM:<a@b.example> BODY", ALL, 501, "5.5.4", "Bad BODY parameter value"),
	MERR("FROM:<a@b.example> BODY=8BITMIME", ALL & ~SMTPD_EXT_8BITMIME, 555, "5.5.4", "Unsupported option: BODY"),
	MERR("FROM:<a@b.example> BODY=7BIT BODY=8BITMIME", ALL, 501, "5.5.4", "Duplicate parameter BODY"),

	/* SMTPUTF8 (RFC 6531) */
	{ "FROM:<a@b.example> SMTPUTF8", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, true, 0, NULL, NULL },
	{ "FROM:<j\xc3\xbcrgen@b.example> SMTPUTF8", ALL, 0, NULL, NULL, "j\xc3\xbcrgen@b.example", false, false, 0, 0, true, 0, NULL, NULL },
	{ "FROM:<j\xc3\xbcrgen@b\xc3\xbc.example> smtputf8 SIZE=5", ALL, 0, NULL, NULL, "j\xc3\xbcrgen@b\xc3\xbc.example", false, true, 5, 0, true, 0, NULL, NULL },
	{ "FROM:j\xc3\xbcrgen@b.example SMTPUTF8", ALL, 0, NULL, NULL, "j\xc3\xbcrgen@b.example", false, false, 0, 0, true, 0, NULL, NULL },
	MERR("FROM:<j\xc3\xbcrgen@b.example>", ALL, 553, "5.6.7", NULL),
	MERR("FROM:<j\xc3\xbcrgen@b.example> SIZE=5", ALL, 553, "5.6.7", NULL),
	MERR("FROM:<j\xc3\xbcrgen@b.example> SMTPUTF8", ALL & ~SMTPD_EXT_SMTPUTF8, 555, "5.5.4", "Unsupported option: SMTPUTF8"),
	MERR("FROM:<j\xc0\x80rgen@b.example> SMTPUTF8", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<j\xed\xa0\x80@b.example> SMTPUTF8", ALL, 501, "5.1.7", "Bad sender address syntax"),
	MERR("FROM:<a@b.example> SMTPUTF8=yes", ALL, 501, "5.5.4", "Bad SMTPUTF8 parameter value"),
	MERR("FROM:<a@b.example> SMTPUTF8=", ALL, 501, "5.5.4", "Bad SMTPUTF8 parameter value"),
	MERR("FROM:<a@b.example> SMTPUTF8 SMTPUTF8", ALL, 501, "5.5.4", "Duplicate parameter SMTPUTF8"),

	/* RET, ENVID (RFC 3461) */
	{ "FROM:<a@b.example> RET=FULL", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, ENVELOPE_RET_FULL, NULL, NULL },
	{ "FROM:<a@b.example> ret=hdrs", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, ENVELOPE_RET_HDRS, NULL, NULL },
	MERR("FROM:<a@b.example> RET=NONE", ALL, 501, "5.5.4", "Bad RET parameter value"),
	MERR("FROM:<a@b.example> RET=", ALL, 501, "5.5.4", "Bad RET parameter value"),
	MERR("FROM:<a@b.example> RET=FULL", ALL & ~SMTPD_EXT_DSN, 555, "5.5.4", "Unsupported option: RET"),
	MERR("FROM:<a@b.example> RET=FULL RET=HDRS", ALL, 501, "5.5.4", "Duplicate parameter RET"),
	{ "FROM:<a@b.example> ENVID=QQ314159", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, "QQ314159", NULL },
	{ "FROM:<a@b.example> envid=a+2Bb+3Dc", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, "a+b=c", NULL },
	{ "FROM:<a@b.example> ENVID=a+20b", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, "a b", NULL },
	{ "FROM:<a@b.example> RET=HDRS ENVID=x SIZE=1 BODY=8BITMIME SMTPUTF8 AUTH=<>", ALL, 0, NULL, NULL, "a@b.example", false, true, 1, ENVELOPE_BODY_8BITMIME, true, ENVELOPE_RET_HDRS, "x", "" },
	MERR("FROM:<a@b.example> ENVID=+4", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=a+4", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=+zz", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=+00", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=+2b", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=+", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=a=b", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=a+0D+0AX-Evil:+20yes", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=a+C3+BC", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=a\xc3\xbc", ALL, 501, "5.5.4", "Bad ENVID parameter value"),
	MERR("FROM:<a@b.example> ENVID=x", ALL & ~SMTPD_EXT_DSN, 555, "5.5.4", "Unsupported option: ENVID"),
	MERR("FROM:<a@b.example> ENVID=x ENVID=y", ALL, 501, "5.5.4", "Duplicate parameter ENVID"),

	/* AUTH (RFC 4954) */
	{ "FROM:<a@b.example> AUTH=<>", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, NULL, "" },
	{ "FROM:<a@b.example> AUTH=user+40example.com", ALL, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, NULL, "user@example.com" },
	{ "FROM:<a@b.example> auth=e+3Dmc2@example.com", SMTPD_EXT_AUTH, 0, NULL, NULL, "a@b.example", false, false, 0, 0, false, 0, NULL, "e=mc2@example.com" },
	MERR("FROM:<a@b.example> AUTH=", ALL, 501, "5.5.4", "Bad AUTH parameter value"),
	MERR("FROM:<a@b.example> AUTH", ALL, 501, "5.5.4", "Bad AUTH parameter value"),
	MERR("FROM:<a@b.example> AUTH=a+0Ab", ALL, 501, "5.5.4", "Bad AUTH parameter value"),
	MERR("FROM:<a@b.example> AUTH=a+zz", ALL, 501, "5.5.4", "Bad AUTH parameter value"),
	MERR("FROM:<a@b.example> AUTH=<>", ALL & ~SMTPD_EXT_AUTH, 555, "5.5.4", "Unsupported option: AUTH"),
	MERR("FROM:<a@b.example> AUTH=<> AUTH=<>", ALL, 501, "5.5.4", "Duplicate parameter AUTH"),

	/* unknown and malformed keywords */
	MERR("FROM:<a@b.example> FOO=bar", ALL, 555, "5.5.4", "Unsupported option: FOO"),
	MERR("FROM:<a@b.example> X-FOO", ALL, 555, "5.5.4", "Unsupported option: X-FOO"),
	MERR("FROM:<a@b.example> NOTIFY=NEVER", ALL, 555, "5.5.4", "Unsupported option: NOTIFY"),
	MERR("FROM:<a@b.example> ORCPT=rfc822;a@b", ALL, 555, "5.5.4", "Unsupported option: ORCPT"),
	MERR("FROM:<a@b.example> SIZEX=1", ALL, 555, "5.5.4", "Unsupported option: SIZEX"),
	MERR("FROM:<a@b.example> SIZ=1", ALL, 555, "5.5.4", "Unsupported option: SIZ"),
	MERR("FROM:<a@b.example> =x", ALL, 501, "5.5.4", "Bad parameter syntax"),
	MERR("FROM:<a@b.example> -X=1", ALL, 501, "5.5.4", "Bad parameter syntax"),
	MERR("FROM:<a@b.example> SI\x01ZE=1", ALL, 501, "5.5.4", "Bad parameter syntax"),
	MERR("FROM:<a@b.example> SIZE\t=1", ALL, 501, "5.5.4", "Bad parameter syntax"),
	MERR("FROM:<a@b.example> S\xc3\xbc=1", ALL, 501, "5.5.4", "Bad parameter syntax"),
	MERR("FROM:<a@b.example> AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ALL, 555, "5.5.4", "Unsupported option: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),

	/* spacing */
	{ "FROM:<a@b.example>  SIZE=1   BODY=8BITMIME  ", ALL, 0, NULL, NULL, "a@b.example", false, true, 1, ENVELOPE_BODY_8BITMIME, false, 0, NULL, NULL },
	{ "FROM:<a@b.example> SIZE=1\t", ALL, 0, NULL, NULL, "a@b.example", false, true, 1, 0, false, 0, NULL, NULL },
};

START_TEST(test_mail_rows)
{
	const struct mail_row *r = &mail_rows[_i];
	struct smtpd_mail_args m;
	struct smtpd_reply err = { 0 };
	int rc;

	rc = smtpd_parse_mail(r->args, strlen(r->args), r->ext, &m, &err);
	if (r->code != 0) {
		ck_assert_msg(rc == -1, "row %d \"%s\": accepted", _i, show(r->args, strlen(r->args)));
		ck_assert_msg(err.code == r->code && strcmp(err.enh, r->enh) == 0,
		              "row %d \"%s\": %d %s %s, want %d %s", _i, show(r->args, strlen(r->args)),
		              err.code, err.enh, err.text, r->code, r->enh);
		if (r->text != NULL)
			ck_assert_msg(strncmp(err.text, r->text, strlen(r->text)) == 0,
			              "row %d: text \"%s\", want \"%s...\"", _i, err.text, r->text);
		ck_assert(strlen(err.text) > 0);
		ck_assert_str_eq(m.from.addr, "");
		return;
	}
	ck_assert_msg(rc == 0, "row %d \"%s\": %d %s %s", _i, show(r->args, strlen(r->args)), err.code,
	              err.enh, err.text);
	ck_assert_str_eq(m.from.addr, r->addr);
	ck_assert(m.from.null == r->null);
	ck_assert(m.size_given == r->size_given);
	ck_assert(m.size == r->size);
	ck_assert_int_eq(m.body, r->body);
	ck_assert(m.smtputf8 == r->smtputf8);
	ck_assert_int_eq(m.ret, r->ret);
	ck_assert(m.envid_given == (r->envid != NULL));
	ck_assert_str_eq(m.envid, r->envid ? r->envid : "");
	ck_assert(m.auth_given == (r->auth != NULL));
	ck_assert_str_eq(m.auth, r->auth ? r->auth : "");
}
END_TEST

START_TEST(test_mail_long)
{
	char args[1200], val[600];
	struct smtpd_mail_args m;
	struct smtpd_reply err;

	/* ENVID: 100 characters as sent is the limit (RFC 3461 4.4) */
	memset(val, 'e', 100);
	val[100] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@b.example> ENVID=%s", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), 0);
	ck_assert_uint_eq(strlen(m.envid), 100);
	memset(val, 'e', 101);
	val[101] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@b.example> ENVID=%s", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
	/* the limit is on the encoded form: 34 "+41" are 102 characters */
	for (int k = 0; k < 34; k++)
		memcpy(val + 3 * k, "+41", 3);
	val[102] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@b.example> ENVID=%s", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);

	/* local part 65 octets */
	memset(val, 'l', 65);
	val[65] = '\0';
	snprintf(args, sizeof(args), "FROM:<%s@b.example>", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.1.7");
	ck_assert(strstr(err.text, "too long") != NULL);
	/* a path of 300 octets */
	memset(val, 'd', 290);
	val[290] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@%s>", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.1.7");

	/* AUTH= decoded value up to the buffer */
	memset(val, 'x', 256);
	val[256] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@b.example> AUTH=%s", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), 0);
	ck_assert_uint_eq(strlen(m.auth), 256);
	memset(val, 'x', 257);
	val[257] = '\0';
	snprintf(args, sizeof(args), "FROM:<a@b.example> AUTH=%s", val);
	ck_assert_int_eq(smtpd_parse_mail(args, strlen(args), ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
}
END_TEST

START_TEST(test_mail_nul)
{
	static const char args[] = "FROM:<a@b.example> SIZE=1\0 BODY=8BITMIME";
	static const char args2[] = "FROM:<a@b.ex\0ample>";
	struct smtpd_mail_args m;
	struct smtpd_reply err;

	ck_assert_int_eq(smtpd_parse_mail(args, sizeof(args) - 1, ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_int_eq(smtpd_parse_mail(args2, sizeof(args2) - 1, ALL, &m, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.1.7");
}
END_TEST

/* ---- smtpd_parse_rcpt ---- */

struct rcpt_row {
	const char *args;
	unsigned ext;
	bool smtputf8;
	int code;
	const char *enh;
	const char *text;
	const char *addr;
	bool postmaster;
	unsigned notify;
	const char *orcpt;	/* NULL: not given */
};

#define ROK(args, ext, addr) { args, ext, false, 0, NULL, NULL, addr, false, 0, NULL }
#define RERR(args, ext, u8, code, enh, text) { args, ext, u8, code, enh, text, NULL, false, 0, NULL }
#define N_NEVER ENVELOPE_NOTIFY_NEVER
#define N_S ENVELOPE_NOTIFY_SUCCESS
#define N_F ENVELOPE_NOTIFY_FAILURE
#define N_D ENVELOPE_NOTIFY_DELAY

static const struct rcpt_row rcpt_rows[] = {
	ROK("TO:<a@b.example>", ALL, "a@b.example"),
	ROK("TO:<a@b.example>", 0, "a@b.example"),
	ROK("to:<a@b.example>", ALL, "a@b.example"),
	ROK("TO: <a@b.example>", ALL, "a@b.example"),
	ROK("TO:a@b.example", ALL, "a@b.example"),
	ROK("TO:<a@b.example>  ", ALL, "a@b.example"),
	ROK("TO:<victim%target.example@relay.example>", ALL, "victim%target.example@relay.example"),
	ROK("TO:<target.example!victim@relay.example>", ALL, "target.example!victim@relay.example"),
	ROK("TO:<@relay.example:victim@target.example>", ALL, "victim@target.example"),
	ROK("TO:<\"victim@target.example\"@relay.example>", ALL, "\"victim@target.example\"@relay.example"),
	ROK("TO:<victim@[192.0.2.7]>", ALL, "victim@[192.0.2.7]"),
	{ "TO:<Postmaster>", ALL, false, 0, NULL, NULL, "Postmaster", true, 0, NULL },
	{ "TO:<postmaster>", ALL, false, 0, NULL, NULL, "postmaster", true, 0, NULL },
	{ "TO:postmaster NOTIFY=NEVER", ALL, false, 0, NULL, NULL, "postmaster", true, N_NEVER, NULL },

	RERR("", ALL, false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RERR("TO:", ALL, false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RERR("TO <a@b.example>", ALL, false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RERR("FROM:<a@b.example>", ALL, false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RERR("TO:<>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<> NOTIFY=NEVER", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<victim@target.example@relay.example>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<victim@>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<victim@192.0.2.7>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<victim>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<\"Postmaster\">", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<a@b.example>x", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<a@b.example", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),
	RERR("TO:<a\r\n@b.example>", ALL, false, 501, "5.1.3", "Bad recipient address syntax"),

	/* UTF-8 depends on the transaction's SMTPUTF8 */
	RERR("TO:<j\xc3\xbcrgen@b.example>", ALL, false, 553, "5.6.7", NULL),
	{ "TO:<j\xc3\xbcrgen@b.example>", ALL, true, 0, NULL, NULL, "j\xc3\xbcrgen@b.example", false, 0, NULL },
	RERR("TO:<j\xc0\x80@b.example>", ALL, true, 501, "5.1.3", "Bad recipient address syntax"),

	/* NOTIFY (RFC 3461 4.1) */
	{ "TO:<a@b.example> NOTIFY=NEVER", ALL, false, 0, NULL, NULL, "a@b.example", false, N_NEVER, NULL },
	{ "TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY", ALL, false, 0, NULL, NULL, "a@b.example", false, N_S | N_F | N_D, NULL },
	{ "TO:<a@b.example> notify=success,delay", ALL, false, 0, NULL, NULL, "a@b.example", false, N_S | N_D, NULL },
	{ "TO:<a@b.example> NOTIFY=FAILURE", SMTPD_EXT_DSN, false, 0, NULL, NULL, "a@b.example", false, N_F, NULL },
	{ "TO:<a@b.example> NOTIFY=DELAY,DELAY", ALL, false, 0, NULL, NULL, "a@b.example", false, N_D, NULL },
	RERR("TO:<a@b.example> NOTIFY=NEVER,SUCCESS", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=SUCCESS,NEVER", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	{ "TO:<a@b.example> NOTIFY=NEVER,NEVER", ALL, false, 0, NULL, NULL, "a@b.example", false, N_NEVER, NULL },
	RERR("TO:<a@b.example> NOTIFY=", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=SUCCESS,", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=,SUCCESS", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=SUCCESS,,DELAY", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=NONE", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=SUCCESS;FAILURE", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=SUCCESS, FAILURE", ALL, false, 501, "5.5.4", "Bad NOTIFY parameter value"),
	RERR("TO:<a@b.example> NOTIFY=NEVER", ALL & ~SMTPD_EXT_DSN, false, 555, "5.5.4", "Unsupported option: NOTIFY"),
	RERR("TO:<a@b.example> NOTIFY=FAILURE NOTIFY=DELAY", ALL, false, 501, "5.5.4", "Duplicate parameter NOTIFY"),

	/* ORCPT (RFC 3461 4.2, RFC 6533 3) */
	{ "TO:<a@b.example> ORCPT=rfc822;a@b.example", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "rfc822;a@b.example" },
	{ "TO:<a@b.example> ORCPT=RFC822;x+2By@b.example", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "RFC822;x+y@b.example" },
	{ "TO:<a@b.example> orcpt=rfc822;", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "rfc822;" },
	{ "TO:<a@b.example> ORCPT=rfc822;a+20b@c", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "rfc822;a b@c" },
	{ "TO:<a@b.example> ORCPT=x-local;joe", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "x-local;joe" },
	{ "TO:<a@b.example> ORCPT=utf-8;j\\x{FC}rgen@b.example", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "utf-8;j\xc3\xbcrgen@b.example" },
	{ "TO:<a@b.example> ORCPT=UTF-8;j\\x{fc}rgen@b.example", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "UTF-8;j\xc3\xbcrgen@b.example" },
	{ "TO:<a@b.example> ORCPT=utf-8;a\\x{2B}b\\x{3D}c@d", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "utf-8;a+b=c@d" },
	{ "TO:<a@b.example> ORCPT=utf-8;\\x{1F600}@d", ALL, false, 0, NULL, NULL, "a@b.example", false, 0, "utf-8;\xf0\x9f\x98\x80@d" },
	{ "TO:<a@b.example> ORCPT=utf-8;j\xc3\xbcrgen@b.example", ALL, true, 0, NULL, NULL, "a@b.example", false, 0, "utf-8;j\xc3\xbcrgen@b.example" },
	{ "TO:<a@b.example> NOTIFY=SUCCESS ORCPT=rfc822;a@b.example", ALL, false, 0, NULL, NULL, "a@b.example", false, N_S, "rfc822;a@b.example" },
	{ "TO:<a@b.example> ORCPT=rfc822;a@b.example NOTIFY=NEVER", ALL, false, 0, NULL, NULL, "a@b.example", false, N_NEVER, "rfc822;a@b.example" },
	RERR("TO:<a@b.example> ORCPT=utf-8;j\xc3\xbcrgen@b.example", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;j\xc0\x80rgen@b.example", ALL, true, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{0}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{D}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{D800}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{110000}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{0000041}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{}b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\x{41", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a\\y", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=utf-8;a+2Bb", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=;a@b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rf(c;a@b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;+4", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;+zz", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a+00b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a+0D+0Ab", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a+FFb", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a=b", ALL, false, 501, "5.5.4", "Bad ORCPT parameter value"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a@b", ALL & ~SMTPD_EXT_DSN, false, 555, "5.5.4", "Unsupported option: ORCPT"),
	RERR("TO:<a@b.example> ORCPT=rfc822;a ORCPT=rfc822;b", ALL, false, 501, "5.5.4", "Duplicate parameter ORCPT"),

	/* MAIL parameters are not RCPT parameters */
	RERR("TO:<a@b.example> SIZE=5", ALL, false, 555, "5.5.4", "Unsupported option: SIZE"),
	RERR("TO:<a@b.example> SMTPUTF8", ALL, false, 555, "5.5.4", "Unsupported option: SMTPUTF8"),
	RERR("TO:<a@b.example> RET=FULL", ALL, false, 555, "5.5.4", "Unsupported option: RET"),
	RERR("TO:<a@b.example> =1", ALL, false, 501, "5.5.4", "Bad parameter syntax"),
};

START_TEST(test_rcpt_rows)
{
	const struct rcpt_row *r = &rcpt_rows[_i];
	struct smtpd_rcpt_args t;
	struct smtpd_reply err = { 0 };
	int rc;

	rc = smtpd_parse_rcpt(r->args, strlen(r->args), r->ext, r->smtputf8, &t, &err);
	if (r->code != 0) {
		ck_assert_msg(rc == -1, "row %d \"%s\": accepted", _i, show(r->args, strlen(r->args)));
		ck_assert_msg(err.code == r->code && strcmp(err.enh, r->enh) == 0,
		              "row %d \"%s\": %d %s %s, want %d %s", _i, show(r->args, strlen(r->args)),
		              err.code, err.enh, err.text, r->code, r->enh);
		if (r->text != NULL)
			ck_assert_msg(strncmp(err.text, r->text, strlen(r->text)) == 0,
			              "row %d: text \"%s\", want \"%s...\"", _i, err.text, r->text);
		ck_assert_str_eq(t.to.addr, "");
		return;
	}
	ck_assert_msg(rc == 0, "row %d \"%s\": %d %s %s", _i, show(r->args, strlen(r->args)), err.code,
	              err.enh, err.text);
	ck_assert_str_eq(t.to.addr, r->addr);
	ck_assert(t.to.postmaster == r->postmaster);
	ck_assert_uint_eq(t.notify, r->notify);
	ck_assert(t.orcpt_given == (r->orcpt != NULL));
	ck_assert_str_eq(t.orcpt, r->orcpt ? r->orcpt : "");
}
END_TEST

START_TEST(test_rcpt_long)
{
	char args[1400], val[800];
	struct smtpd_rcpt_args t;
	struct smtpd_reply err;
	size_t k;

	/* ORCPT: 500 characters as sent (RFC 3461 4.2) */
	memcpy(val, "rfc822;", 7);
	for (k = 7; k < 500; k++)
		val[k] = 'o';
	val[500] = '\0';
	snprintf(args, sizeof(args), "TO:<a@b.example> ORCPT=%s", val);
	ck_assert_int_eq(smtpd_parse_rcpt(args, strlen(args), ALL, false, &t, &err), 0);
	ck_assert_uint_eq(strlen(t.orcpt), 500);
	val[500] = 'o';
	val[501] = '\0';
	snprintf(args, sizeof(args), "TO:<a@b.example> ORCPT=%s", val);
	ck_assert_int_eq(smtpd_parse_rcpt(args, strlen(args), ALL, false, &t, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.5.4");
	/* addresses */
	memset(val, 'l', 65);
	val[65] = '\0';
	snprintf(args, sizeof(args), "TO:<%s@b.example>", val);
	ck_assert_int_eq(smtpd_parse_rcpt(args, strlen(args), ALL, false, &t, &err), -1);
	ck_assert_int_eq(err.code, 501);
	ck_assert_str_eq(err.enh, "5.1.3");
	memset(val, 'l', 64);
	val[64] = '\0';
	snprintf(args, sizeof(args), "TO:<%s@b.example>", val);
	ck_assert_int_eq(smtpd_parse_rcpt(args, strlen(args), ALL, false, &t, &err), 0);
	memset(val, 'd', 600);
	val[600] = '\0';
	snprintf(args, sizeof(args), "TO:<a@%s>", val);
	ck_assert_int_eq(smtpd_parse_rcpt(args, strlen(args), ALL, false, &t, &err), -1);
	ck_assert_str_eq(err.enh, "5.1.3");
}
END_TEST

/* ---- smtpd_parse_bdat ---- */

struct bdat_row {
	const char *args;
	int rc;
	uint64_t size;
	bool last;
};

static const struct bdat_row bdat_rows[] = {
	{ "0", 0, 0, false },
	{ "0 LAST", 0, 0, true },
	{ "100", 0, 100, false },
	{ "100 LAST", 0, 100, true },
	{ "100 last", 0, 100, true },
	{ "100 Last", 0, 100, true },
	{ "100   LAST", 0, 100, true },
	{ "100 LAST  ", 0, 100, true },
	{ " 5", 0, 5, false },
	{ "007", 0, 7, false },
	{ "1099511627776", 0, (uint64_t)1 << 40, false },
	{ "1099511627777", -1, 0, false },
	{ "18446744073709551616", -1, 0, false },
	{ "99999999999999999999999", -1, 0, false },
	{ "", -1, 0, false },
	{ "   ", -1, 0, false },
	{ "LAST", -1, 0, false },
	{ "-1", -1, 0, false },
	{ "+1", -1, 0, false },
	{ "1 2", -1, 0, false },
	{ "1 LASTX", -1, 0, false },
	{ "1 LAS", -1, 0, false },
	{ "1LAST", -1, 0, false },
	{ "1 LAST x", -1, 0, false },
	{ "1 LAST LAST", -1, 0, false },
	{ "0x10", -1, 0, false },
	{ "1.5", -1, 0, false },
	{ "5\tLAST", -1, 0, false },
	{ "5 \x01", -1, 0, false },
};

START_TEST(test_bdat_rows)
{
	const struct bdat_row *r = &bdat_rows[_i];
	uint64_t size = 99;
	bool last = true;
	struct smtpd_reply err = { 0 };
	int rc;

	rc = smtpd_parse_bdat(r->args, strlen(r->args), &size, &last, &err);
	ck_assert_msg(rc == r->rc, "row %d \"%s\": rc %d", _i, show(r->args, strlen(r->args)), rc);
	if (rc == 0) {
		ck_assert(size == r->size);
		ck_assert(last == r->last);
	} else {
		ck_assert_int_eq(err.code, 501);
		ck_assert_str_eq(err.enh, "5.5.4");
	}
}
END_TEST

/* ---- smtpd_xtext_decode ---- */

struct xtext_row {
	const char *in;
	int rc;
	const char *out;
};

static const struct xtext_row xtext_rows[] = {
	{ "", 0, "" },
	{ "abc", 0, "abc" },
	{ "a+2Bb", 0, "a+b" },
	{ "+3D", 0, "=" },
	{ "+20", 0, " " },
	{ "+41+42", 0, "AB" },
	{ "+FF", 0, "\xff" },
	{ "!~", 0, "!~" },
	{ "+4", -1, NULL },
	{ "+", -1, NULL },
	{ "a+", -1, NULL },
	{ "+zz", -1, NULL },
	{ "+G0", -1, NULL },
	{ "+00", -1, NULL },
	{ "+2b", -1, NULL },
	{ "+2B+", -1, NULL },
	{ "a b", -1, NULL },
	{ "a=b", -1, NULL },
	{ "a\x7f", -1, NULL },
	{ "a\x01", -1, NULL },
	{ "\xc3\xbc", -1, NULL },
	{ "+ 20", -1, NULL },
};

START_TEST(test_xtext_rows)
{
	const struct xtext_row *r = &xtext_rows[_i];
	char dst[64];
	int rc;

	rc = smtpd_xtext_decode(r->in, strlen(r->in), dst, sizeof(dst));
	ck_assert_msg(rc == r->rc, "row %d \"%s\": rc %d", _i, show(r->in, strlen(r->in)), rc);
	if (rc == 0)
		ck_assert_str_eq(dst, r->out);
}
END_TEST

START_TEST(test_xtext_sizes)
{
	char dst[8];

	ck_assert_int_eq(smtpd_xtext_decode("abc", 3, dst, 4), 0);
	ck_assert_str_eq(dst, "abc");
	ck_assert_int_eq(smtpd_xtext_decode("abcd", 4, dst, 4), -1);
	ck_assert_int_eq(smtpd_xtext_decode("+41+41+41", 9, dst, 4), 0);
	ck_assert_str_eq(dst, "AAA");
	ck_assert_int_eq(smtpd_xtext_decode("", 0, dst, 1), 0);
	ck_assert_str_eq(dst, "");
	ck_assert_int_eq(smtpd_xtext_decode("a", 1, dst, 0), -1);
	/* only len bytes are read: "+4" cut from "+41" is malformed */
	ck_assert_int_eq(smtpd_xtext_decode("+41", 2, dst, sizeof(dst)), -1);
	/* a NUL inside the input is malformed */
	ck_assert_int_eq(smtpd_xtext_decode("a\0b", 3, dst, sizeof(dst)), -1);
}
END_TEST

static Suite *
command_suite(void)
{
	Suite *s = suite_create("smtpd_command");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_split_rows, 0, (int)(sizeof(split_rows) / sizeof(split_rows[0])));
	tcase_add_test(tc, test_split_nul_args);
	tcase_add_test(tc, test_verb_names);
	tcase_add_loop_test(tc, test_helo_rows, 0, (int)(sizeof(helo_rows) / sizeof(helo_rows[0])));
	tcase_add_test(tc, test_helo_lengths);
	tcase_add_loop_test(tc, test_mail_rows, 0, (int)(sizeof(mail_rows) / sizeof(mail_rows[0])));
	tcase_add_test(tc, test_mail_long);
	tcase_add_test(tc, test_mail_nul);
	tcase_add_loop_test(tc, test_rcpt_rows, 0, (int)(sizeof(rcpt_rows) / sizeof(rcpt_rows[0])));
	tcase_add_test(tc, test_rcpt_long);
	tcase_add_loop_test(tc, test_bdat_rows, 0, (int)(sizeof(bdat_rows) / sizeof(bdat_rows[0])));
	tcase_add_loop_test(tc, test_xtext_rows, 0, (int)(sizeof(xtext_rows) / sizeof(xtext_rows[0])));
	tcase_add_test(tc, test_xtext_sizes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(command_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
