/*
 * smtpd_command: parsing of SMTP command lines (no I/O, no state). Each
 * parser takes (pointer, length) of the line without CRLF, fills a result
 * struct, and on failure fills a reply (code, enhanced code, text) that the
 * session sends as is.
 */
#ifndef TERN_SMTPD_COMMAND_H
#define TERN_SMTPD_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mailaddr.h"
#include "queue/envelope.h"

enum smtpd_verb {
	SMTPD_VERB_UNKNOWN = 0,
	SMTPD_VERB_HELO, SMTPD_VERB_EHLO, SMTPD_VERB_MAIL, SMTPD_VERB_RCPT,
	SMTPD_VERB_DATA, SMTPD_VERB_BDAT, SMTPD_VERB_RSET, SMTPD_VERB_NOOP,
	SMTPD_VERB_QUIT, SMTPD_VERB_VRFY, SMTPD_VERB_EXPN, SMTPD_VERB_HELP,
	SMTPD_VERB_STARTTLS, SMTPD_VERB_AUTH, SMTPD_VERB_ETRN, SMTPD_VERB_XFORWARD,
	SMTPD_VERB_COUNT
};

/* HELO/EHLO argument: RFC 5321 allows a domain or address literal. */
#define SMTPD_HELO_MAX 255
/* RFC 3461 ENVID and ORCPT: 100 and 500 octets (sections 4.4, 4.2). */
#define SMTPD_ENVID_MAX 100
#define SMTPD_ORCPT_MAX 500
/* BDAT chunk size we are willing to be told about (we stream it anyway). */
#define SMTPD_BDAT_SIZE_MAX ((uint64_t)1 << 40)
/* Reply text we build for a parse error. */
#define SMTPD_REPLY_TEXT_MAX 512

struct smtpd_reply {
	int code;		/* 501 */
	const char *enh;	/* "5.5.4" */
	char text[SMTPD_REPLY_TEXT_MAX];
};

struct smtpd_command {
	enum smtpd_verb verb;
	const char *verb_p;	/* the verb as sent (for "unknown command" logs) */
	size_t verb_len;
	const char *args;	/* after the verb and one or more spaces; borrowed */
	size_t args_len;	/* trailing spaces removed */
};

/* Which ESMTP extensions the session offered (parameters are refused
 * with 555 5.5.4 otherwise; after HELO none are). */
#define SMTPD_EXT_SIZE       0x01
#define SMTPD_EXT_8BITMIME   0x02
#define SMTPD_EXT_SMTPUTF8   0x04
#define SMTPD_EXT_DSN        0x08
#define SMTPD_EXT_AUTH       0x10
#define SMTPD_EXT_CHUNKING   0x20

struct smtpd_mail_args {
	struct mailaddr from;
	uint64_t size;		/* SIZE=, 0 when not given */
	bool size_given;
	enum envelope_body body;
	bool smtputf8;
	enum envelope_ret ret;
	bool envid_given;
	char envid[SMTPD_ENVID_MAX + 1];	/* xtext-decoded */
	bool auth_given;
	char auth[MAILADDR_PATH_MAX + 1];	/* AUTH= value, xtext-decoded; "" for <> */
};

struct smtpd_rcpt_args {
	struct mailaddr to;
	unsigned notify;	/* ENVELOPE_NOTIFY_* or 0 */
	bool orcpt_given;
	char orcpt[SMTPD_ORCPT_MAX + 1];	/* "rfc822;decoded-address" */
};

/* Split a command line into verb and arguments. Never fails: an unknown or
 * empty verb gives SMTPD_VERB_UNKNOWN. */
void smtpd_command_split(const char *line, size_t len, struct smtpd_command *cmd);
const char *smtpd_verb_name(enum smtpd_verb verb);

/* HELO/EHLO: name into dst (size dstsz), as sent. 501 5.5.4 when empty or
 * not printable ASCII; the syntax policy (reject_invalid_helo_hostname) is
 * the restrictions' business, not this parser's. */
int smtpd_parse_helo(const char *args, size_t len, char *dst, size_t dstsz,
                     struct smtpd_reply *err);
/* MAIL FROM:<path> [params]; ext = SMTPD_EXT_* offered. 0 or -1 with err:
 * 501 5.5.4 syntax ("Syntax: MAIL FROM:<address>"), 501 5.1.7 bad address,
 * 555 5.5.4 unknown/unoffered parameter, 501 5.5.4 bad or repeated value,
 * 553 5.6.7 UTF-8 address without SMTPUTF8. */
int smtpd_parse_mail(const char *args, size_t len, unsigned ext,
                     struct smtpd_mail_args *out, struct smtpd_reply *err);
/* RCPT TO:<path> [params]: as MAIL, with 501 5.1.3 for a bad address. */
int smtpd_parse_rcpt(const char *args, size_t len, unsigned ext, bool smtputf8,
                     struct smtpd_rcpt_args *out, struct smtpd_reply *err);
/* BDAT size [LAST] (RFC 3030): 501 5.5.4 on syntax. */
int smtpd_parse_bdat(const char *args, size_t len, uint64_t *size, bool *last,
                     struct smtpd_reply *err);

/* Decode RFC 3461 xtext into dst (NUL-terminated); -1 when malformed or too
 * long. */
int smtpd_xtext_decode(const char *p, size_t len, char *dst, size_t dstsz);

#endif
