/*
 * smtpd_received: Received: header formatting. Every string that came
 * from the client (HELO, recipient) was already checked by the command
 * parsers: printable ASCII (or UTF-8 under SMTPUTF8), no CR or LF.
 */
#include "smtpd/smtpd_received.h"

#include <stdio.h>
#include <string.h>

const char *
smtpd_received_protocol(const struct smtpd_received *r)
{
	/* RFC 3848 section 2 and RFC 6531 section 3.7.3. */
	static const char *const names[2][2][2][2] = {
		/* [smtputf8][esmtp][tls][auth] */
		{ { { "SMTP", "SMTP" }, { "SMTPS", "SMTPS" } },
		  { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } } },
		{ { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
		  { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } } },
	};

	return names[r->smtputf8][r->esmtp][r->tls][r->auth];
}

enum buf_result
smtpd_received_format(const struct smtpd_received *r, struct buf *out)
{
	char date[64];
	struct tm tm;
	enum buf_result res;

	/* RFC 5322 section 3.3 date-time, with the zone as a comment. */
	localtime_r(&r->when, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");

	if (r->local)
		return buf_append_printf(out, "Received: by %s (%s, from userid %lu)\r\n"
		    "\tid %s; %s\r\n", r->hostname, r->mail_name, r->uid, r->queue_id, date);
	/* Postfix's form: "from HELO (NAME [ADDR])", the verified name (or
	 * "unknown") in the comment even when HELO says the same, the name
	 * in HELO's place when there was no HELO, and an IPv6 address as an
	 * RFC 5321 section 4.1.3 literal. */
	res = buf_append_printf(out, "Received: from %s (%s [%s%s])\r\n",
	    r->helo && *r->helo ? r->helo : r->client_name, r->client_name,
	    strchr(r->client_addr, ':') != NULL ? "IPv6:" : "", r->client_addr);
	if (res == BUF_OK)
		res = buf_append_printf(out, "\tby %s (%s) with %s id %s", r->hostname,
		    r->mail_name, smtpd_received_protocol(r), r->queue_id);
	if (res == BUF_OK && r->rcpt != NULL)
		res = buf_append_printf(out, "\r\n\tfor <%s>", r->rcpt);
	if (res == BUF_OK)
		res = buf_append_printf(out, "; %s\r\n", date);
	return res;
}
