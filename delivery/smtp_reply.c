/*
 * smtp_reply: incremental, bounded parser of SMTP replies (see the header
 * for the grammar accepted and why).
 *
 * Bytes of the current line are appended straight to the reply's text,
 * so a line split across reads needs no second buffer; the line is
 * checked when its LF arrives. Every limit is checked before a byte is
 * stored, so a server that never sends LF costs at most
 * SMTP_REPLY_LINE_MAX bytes before the error.
 *
 * Error policy: protocol errors are returned (sticky, a static reason);
 * nothing here logs, and nothing here can fail otherwise (out of memory
 * is fatal() inside buf).
 */
#include "delivery/smtp_reply.h"

#include <string.h>

#include "common/log.h"

/* The reasons, one per kind of protocol error (tests compare them). */
#define SMTP_REPLY_ERR_NUL "NUL byte in reply"
#define SMTP_REPLY_ERR_LONG_LINE "reply line too long"
#define SMTP_REPLY_ERR_TOO_BIG "reply too long"
#define SMTP_REPLY_ERR_CODE "reply code is not three digits"
#define SMTP_REPLY_ERR_RANGE "reply code out of range"
#define SMTP_REPLY_ERR_SEP "bad separator after reply code"
#define SMTP_REPLY_ERR_MIXED "reply code changes within a multi-line reply"
#define SMTP_REPLY_ERR_LINES "too many lines in reply"

/* RFC 5321 4.2: 2yz, 3yz, 4yz and 5yz are the only reply families. */
#define SMTP_REPLY_CODE_MIN 200
#define SMTP_REPLY_CODE_MAX 599
/* Digits of a reply code, and of its separator's position. */
#define SMTP_REPLY_CODE_LEN 3
/* RFC 3463 section 2: subject and detail are 1*3digit. */
#define SMTP_REPLY_ENH_FIELD_MAX 3

static bool
smtp_reply_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->reply.text, SMTP_REPLY_TEXT_MAX);
}

void
smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	buf_free(&p->reply.text);
}

/* Forget the last reply, keep the storage. */
static void
smtp_reply_reset(struct smtp_reply_parser *p)
{
	p->reply.code = 0;
	p->reply.enh[0] = '\0';
	p->reply.nlines = 0;
	buf_reset(&p->reply.text);
	p->line_start = 0;
	p->line_len = 0;
	p->done = false;
}

static enum smtp_reply_status
smtp_reply_fail(struct smtp_reply_parser *p, const char *why)
{
	p->error = why;
	return SMTP_REPLY_ERROR;
}

/* One digit-run of an enhanced code: 1 to 3 digits. Returns its length. */
static size_t
smtp_reply_enh_field(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && n < SMTP_REPLY_ENH_FIELD_MAX + 1 && smtp_reply_isdigit(s[n]))
		n++;
	return n >= 1 && n <= SMTP_REPLY_ENH_FIELD_MAX ? n : 0;
}

size_t
smtp_reply_enh_parse(const char *s, size_t len, char cls, char out[SMTP_REPLY_ENH_SIZE])
{
	size_t pos, n;

	out[0] = '\0';
	/* class "." : one of 2, 4, 5 (RFC 3463 section 2). */
	if (len < 2 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	if (cls != 0 && s[0] != cls)
		return 0;
	pos = 2;
	n = smtp_reply_enh_field(s + pos, len - pos);
	if (n == 0 || pos + n >= len || s[pos + n] != '.')
		return 0;
	pos += n + 1;
	n = smtp_reply_enh_field(s + pos, len - pos);
	if (n == 0)
		return 0;
	pos += n;
	/* RFC 2034 section 4: the code is followed by SP and the text. The
	 * end of the line is accepted too ("250 2.0.0"). */
	if (pos < len && s[pos] != ' ')
		return 0;
	memcpy(out, s, pos);
	out[pos] = '\0';
	return pos;
}

/*
 * The current line is complete (LF seen): strip its CRs, check it and
 * add it to the reply. Returns SMTP_REPLY_DONE on the last line,
 * SMTP_REPLY_NEED_MORE after a continuation line, or an error.
 */
static enum smtp_reply_status
smtp_reply_end_line(struct smtp_reply_parser *p)
{
	struct smtp_reply *r = &p->reply;
	const char *line;
	size_t len = p->line_len, textoff;
	int code;
	bool last;

	line = buf_data(&r->text) + p->line_start;
	/* CR LF is the line end (RFC 5321 2.3.8); extra CRs before the LF
	 * are dropped with it, as Postfix's smtp_get() does. */
	while (len > 0 && line[len - 1] == '\r')
		len--;
	buf_truncate(&r->text, p->line_start + len);

	if (len < SMTP_REPLY_CODE_LEN || !smtp_reply_isdigit(line[0]) ||
	    !smtp_reply_isdigit(line[1]) || !smtp_reply_isdigit(line[2]))
		return smtp_reply_fail(p, SMTP_REPLY_ERR_CODE);
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	/* RFC 5321 4.2: codes outside 2yz-5yz are fatal errors (1yz is not
	 * used by SMTP; 0yz and 6yz-9yz do not exist). */
	if (code < SMTP_REPLY_CODE_MIN || code > SMTP_REPLY_CODE_MAX)
		return smtp_reply_fail(p, SMTP_REPLY_ERR_RANGE);
	/* RFC 5321 4.2: Reply-code [ SP textstring ] CRLF ends a reply,
	 * Reply-code "-" [ textstring ] CRLF continues it. */
	if (len == SMTP_REPLY_CODE_LEN)
		last = true;
	else if (line[SMTP_REPLY_CODE_LEN] == ' ')
		last = true;
	else if (line[SMTP_REPLY_CODE_LEN] == '-')
		last = false;
	else
		return smtp_reply_fail(p, SMTP_REPLY_ERR_SEP);
	/* RFC 5321 4.2.1: every line of a multi-line reply has the same code. */
	if (r->nlines > 0 && code != r->code)
		return smtp_reply_fail(p, SMTP_REPLY_ERR_MIXED);
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return smtp_reply_fail(p, SMTP_REPLY_ERR_LINES);

	textoff = len == SMTP_REPLY_CODE_LEN ? SMTP_REPLY_CODE_LEN : SMTP_REPLY_CODE_LEN + 1;
	r->lines[r->nlines].off = p->line_start + textoff;
	r->lines[r->nlines].len = len - textoff;
	if (r->nlines == 0) {
		r->code = code;
		(void)smtp_reply_enh_parse(line + textoff, len - textoff, line[0], r->enh);
	}
	r->nlines++;
	p->line_len = 0;
	if (last) {
		(void)buf_cstr(&r->text);
		p->done = true;
		return SMTP_REPLY_DONE;
	}
	/* Joined with single spaces, the next line starts after this one. */
	if (buf_append_char(&r->text, ' ') != BUF_OK)
		return smtp_reply_fail(p, SMTP_REPLY_ERR_TOO_BIG);
	p->line_start = buf_len(&r->text);
	return SMTP_REPLY_NEED_MORE;
}

enum smtp_reply_status
smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len, size_t *used)
{
	struct smtp_reply *r = &p->reply;
	enum smtp_reply_status st;
	const char *lf;
	size_t pos = 0, seg;

	*used = 0;
	if (p->error != NULL)
		return SMTP_REPLY_ERROR;
	if (p->done)
		smtp_reply_reset(p);
	while (pos < len) {
		lf = memchr(data + pos, '\n', len - pos);
		seg = lf != NULL ? (size_t)(lf - (data + pos)) : len - pos;
		/* NUL is not text (RFC 5321 4.2 textstring is %d9 / %d32-126);
		 * it would also cut the reply short in any C consumer. */
		if (memchr(data + pos, '\0', seg) != NULL)
			return smtp_reply_fail(p, SMTP_REPLY_ERR_NUL);
		/* + 1 for the LF still to come: known too long before it does. */
		if (seg > SMTP_REPLY_LINE_MAX - 1 - p->line_len)
			return smtp_reply_fail(p, SMTP_REPLY_ERR_LONG_LINE);
		if (buf_append(&r->text, data + pos, seg) != BUF_OK)
			return smtp_reply_fail(p, SMTP_REPLY_ERR_TOO_BIG);
		p->line_len += seg;
		pos += seg;
		if (lf == NULL)
			break;
		pos++;	/* the LF */
		st = smtp_reply_end_line(p);
		if (st != SMTP_REPLY_NEED_MORE) {
			*used = pos;
			return st;
		}
	}
	*used = pos;
	return SMTP_REPLY_NEED_MORE;
}

const struct smtp_reply *
smtp_reply_parser_reply(const struct smtp_reply_parser *p)
{
	return p->done ? &p->reply : NULL;
}

const char *
smtp_reply_parser_error(const struct smtp_reply_parser *p)
{
	return p->error;
}

bool
smtp_reply_parser_pending(const struct smtp_reply_parser *p)
{
	return !p->done && buf_len(&p->reply.text) > 0;
}

const char *
smtp_reply_text(const struct smtp_reply *r)
{
	return buf_data(&r->text);
}

const char *
smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len)
{
	if (i >= r->nlines)
		panic("smtp_reply_line(%zu) of %zu lines", i, r->nlines);
	*len = r->lines[i].len;
	return buf_data(&r->text) + r->lines[i].off;
}
