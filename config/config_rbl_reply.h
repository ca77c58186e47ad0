/*
 * config_rbl_reply: the template language of default_rbl_reply (the
 * reply to a name or address on a DNS list), Postfix's subset of
 * mac_expand: $name, ${name}, $(name), ${name?text}, ${name:text}, $$.
 *
 * It lives in config/ so that the load (ternd -n, the master's start and
 * reload, every role's load) refuses a bad template at FILE:LINE, and
 * smtpd expands the same way at run time: one parser for both.
 *
 * Pure functions: no I/O, no logging. Problems are returned in a why
 * buffer. Values are borrowed for the call.
 */
#ifndef TERN_CONFIG_RBL_REPLY_H
#define TERN_CONFIG_RBL_REPLY_H

#include <stddef.h>

/* Postfix's default_rbl_reply (also the table default in config_params.h). */
#define CONFIG_RBL_REPLY_DEFAULT \
	"$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using " \
	"$rbl_domain${rbl_reason?; $rbl_reason}"
/* Longest expanded reply, bytes (an SMTP reply line is 512 with CRLF). */
#define CONFIG_RBL_REPLY_MAX 500
/* Deepest ${name?...} nesting in a template. */
#define CONFIG_RBL_REPLY_DEPTH_MAX 4

/* The values of a template's $names; NULL reads as "". */
struct config_rbl_reply_vars {
	int rbl_code;			/* maps_rbl_reject_code */
	const char *rbl_domain;		/* the zone, without =PATTERN */
	const char *rbl_reason;		/* the TXT text (also $rbl_txt) */
	const char *rbl_what;		/* what is listed: address, name, mail address */
	const char *rbl_class;		/* "Client host", "Sender address", ... */
	const char *client;		/* name[address] */
	const char *client_address;
	const char *client_name;
	const char *reverse_client_name;
	const char *helo_name;
	const char *sender;		/* "" for the null sender, NULL before MAIL */
	const char *recipient;		/* NULL outside RCPT */
};

/*
 * Expand template (the names of struct config_rbl_reply_vars, plus
 * sender_name, sender_domain, recipient_name, recipient_domain) into out
 * (outsz > 0; what does not fit is cut), bytes of values outside
 * printable ASCII replaced by '_' (Postfix's smtpd_expand_filter: values
 * come from the network). 0, or -1 with why for an unknown name, a
 * malformed ${...} or $(...), or nesting deeper than
 * CONFIG_RBL_REPLY_DEPTH_MAX. A template config_rbl_reply_check()
 * accepted never fails here, whatever the values.
 */
int config_rbl_reply_expand(const char *template, const struct config_rbl_reply_vars *v,
                            char *out, size_t outsz, char *why, size_t whysz);

/*
 * The load-time check: every name known and every form well made, in
 * both arms of each ${name?text} and ${name:text} (not only the arm that
 * empty values would take). 0, or -1 with why, as above.
 */
int config_rbl_reply_check(const char *template, char *why, size_t whysz);

#endif
