/*
 * smtpd_received: the Received: header tern prepends to every message it
 * accepts (RFC 5321 section 4.4; "with" keywords from RFC 3848 and
 * RFC 6531). Pure formatting, no I/O.
 */
#ifndef TERN_SMTPD_RECEIVED_H
#define TERN_SMTPD_RECEIVED_H

#include <stdbool.h>
#include <time.h>

#include "common/buf.h"

struct smtpd_received {
	const char *helo;		/* NULL or "" when none was given */
	const char *client_name;	/* "unknown" without a verified name */
	const char *client_addr;	/* "192.0.2.1" or "2001:db8::1" */
	const char *hostname;		/* myhostname */
	const char *mail_name;		/* "tern" */
	bool esmtp, tls, auth, smtputf8;
	const char *queue_id;
	const char *rcpt;		/* the recipient when there is exactly one */
	time_t when;
	/* A local submission through the sendmail socket: Postfix's pickup
	 * form "Received: by HOST (tern, from userid N) id ID; DATE", with
	 * no client part (there is no network peer to name). */
	bool local;
	unsigned long uid;		/* SO_PEERCRED's uid */
};

/* The "with" keyword: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
const char *smtpd_received_protocol(const struct smtpd_received *r);
/* Append the header, folded with CRLF TAB, ending in CRLF. */
enum buf_result smtpd_received_format(const struct smtpd_received *r, struct buf *out);

#endif
