/*
 * milter_proto: Milter frame encoder and the strict parser of filter
 * replies. See the header for the model.
 *
 * The parser reads a payload field by field with a cursor that cannot
 * pass the frame's end: a string must find its NUL inside the frame, a
 * 32-bit number needs four bytes, and whatever is left after the fields a
 * command has is an error (Postfix's milter8_read_data() "left-over
 * data"). Commands without payload must come without.
 */
#include "smtpd/milter_proto.h"

#include <string.h>

/* ---- encoding ---- */

/* Start a frame: the length (patched by milter_proto_end) and cmd. */
static enum buf_result
milter_proto_begin(struct buf *out, char cmd, size_t *start)
{
	static const char zero[MILTER_LEN_SIZE] = { 0 };

	*start = buf_len(out);
	if (buf_append(out, zero, sizeof(zero)) != BUF_OK || buf_append_char(out, cmd) != BUF_OK) {
		buf_truncate(out, *start);
		return BUF_TOO_BIG;
	}
	return BUF_OK;
}

static enum buf_result
milter_proto_end(struct buf *out, size_t start, enum buf_result r)
{
	unsigned char *p;
	size_t n;

	if (r != BUF_OK) {
		buf_truncate(out, start);
		return r;
	}
	n = buf_len(out) - start - MILTER_LEN_SIZE;
	p = (unsigned char *)buf_data_mut(out) + start;
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
	return BUF_OK;
}

static enum buf_result
milter_proto_u32(struct buf *out, uint32_t v)
{
	char b[4] = { (char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v };

	return buf_append(out, b, sizeof(b));
}

/* A string and its NUL. */
static enum buf_result
milter_proto_str(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s) + 1);
}

enum buf_result
milter_proto_optneg(struct buf *out, uint32_t version, uint32_t actions, uint32_t protocol)
{
	enum buf_result r;
	size_t start;

	if ((r = milter_proto_begin(out, MILTER_CMD_OPTNEG, &start)) != BUF_OK)
		return r;
	r = milter_proto_u32(out, version);
	if (r == BUF_OK)
		r = milter_proto_u32(out, actions);
	if (r == BUF_OK)
		r = milter_proto_u32(out, protocol);
	return milter_proto_end(out, start, r);
}

enum buf_result
milter_proto_macros(struct buf *out, char cmd, const char *const *names,
    const char *const *values, size_t n)
{
	enum buf_result r;
	size_t start, i;

	if ((r = milter_proto_begin(out, MILTER_CMD_MACRO, &start)) != BUF_OK)
		return r;
	r = buf_append_char(out, cmd);
	for (i = 0; r == BUF_OK && i < n; i++) {
		r = milter_proto_str(out, names[i]);
		if (r == BUF_OK)
			r = milter_proto_str(out, values[i]);
	}
	return milter_proto_end(out, start, r);
}

enum buf_result
milter_proto_connect(struct buf *out, const char *hostname, char family, uint16_t port,
    const char *addr)
{
	char pb[2] = { (char)(port >> 8), (char)port };
	enum buf_result r;
	size_t start;

	if ((r = milter_proto_begin(out, MILTER_CMD_CONNECT, &start)) != BUF_OK)
		return r;
	r = milter_proto_str(out, hostname);
	if (r == BUF_OK)
		r = buf_append_char(out, family);
	if (r == BUF_OK && family != MILTER_FAMILY_UNKNOWN) {
		r = buf_append(out, pb, sizeof(pb));
		if (r == BUF_OK)
			r = milter_proto_str(out, addr);
	}
	return milter_proto_end(out, start, r);
}

enum buf_result
milter_proto_strings(struct buf *out, char cmd, const char *const *s, size_t n)
{
	enum buf_result r;
	size_t start, i;

	if ((r = milter_proto_begin(out, cmd, &start)) != BUF_OK)
		return r;
	for (i = 0; r == BUF_OK && i < n; i++)
		r = milter_proto_str(out, s[i]);
	return milter_proto_end(out, start, r);
}

enum buf_result
milter_proto_body(struct buf *out, const void *p, size_t n)
{
	enum buf_result r;
	size_t start;

	if (n > MILTER_BODY_CHUNK)
		return BUF_TOO_BIG;
	if ((r = milter_proto_begin(out, MILTER_CMD_BODY, &start)) != BUF_OK)
		return r;
	return milter_proto_end(out, start, buf_append(out, p, n));
}

enum buf_result
milter_proto_empty(struct buf *out, char cmd)
{
	enum buf_result r;
	size_t start;

	if ((r = milter_proto_begin(out, cmd, &start)) != BUF_OK)
		return r;
	return milter_proto_end(out, start, BUF_OK);
}

/* ---- decoding ---- */

/* A bounded cursor over one payload. */
struct milter_cursor {
	const char *p;
	size_t left;
};

static bool
milter_cursor_u32(struct milter_cursor *c, uint32_t *v)
{
	const unsigned char *u = (const unsigned char *)c->p;

	if (c->left < 4)
		return false;
	*v = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
	c->p += 4;
	c->left -= 4;
	return true;
}

static bool
milter_cursor_str(struct milter_cursor *c, const char **s)
{
	const char *nul = memchr(c->p, '\0', c->left);
	size_t n;

	if (nul == NULL)
		return false;
	n = (size_t)(nul - c->p) + 1;
	*s = c->p;
	c->p += n;
	c->left -= n;
	return true;
}

/* An optional last string: absent when nothing is left. */
static bool
milter_cursor_opt_str(struct milter_cursor *c, const char **s)
{
	*s = NULL;
	return c->left == 0 || milter_cursor_str(c, s);
}

static enum milter_proto_result
milter_proto_optneg_reply(struct milter_cursor *c, struct milter_reply *r, const char **why)
{
	uint32_t stage;
	const char *list;

	if (!milter_cursor_u32(c, &r->version) || !milter_cursor_u32(c, &r->actions) ||
	    !milter_cursor_u32(c, &r->protocol)) {
		*why = "SMFIC_OPTNEG reply too short";
		return MILTER_PROTO_BAD;
	}
	/* Optional macro lists (SMFIF_SETSYMLIST): stage, names. */
	while (c->left > 0) {
		if (!milter_cursor_u32(c, &stage) || !milter_cursor_str(c, &list)) {
			*why = "malformed macro list in SMFIC_OPTNEG reply";
			return MILTER_PROTO_BAD;
		}
		/* Postfix ignores an unknown stage with a warning; we keep
		 * the known ones. */
		if (stage < MILTER_STAGE_COUNT)
			r->macros[stage] = list;
	}
	return MILTER_PROTO_OK;
}

/* Decode the payload of reply r->cmd. */
static enum milter_proto_result
milter_proto_payload(struct milter_cursor *c, struct milter_reply *r, const char **why)
{
	bool ok;

	switch (r->cmd) {
	case MILTER_REPLY_ACCEPT:
	case MILTER_REPLY_CONTINUE:
	case MILTER_REPLY_DISCARD:
	case MILTER_REPLY_REJECT:
	case MILTER_REPLY_TEMPFAIL:
	case MILTER_REPLY_SKIP:
	case MILTER_REPLY_PROGRESS:
	case MILTER_REPLY_SHUTDOWN:
	case MILTER_REPLY_CONN_FAIL:
		ok = true;
		break;
	case MILTER_REPLY_REPLYCODE:
	case MILTER_REPLY_QUARANTINE:
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_DELRCPT:
		ok = milter_cursor_str(c, &r->s1);
		break;
	case MILTER_REPLY_ADDHEADER:
		ok = milter_cursor_str(c, &r->s1) && milter_cursor_str(c, &r->s2);
		break;
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		ok = milter_cursor_u32(c, &r->index) && milter_cursor_str(c, &r->s1) &&
		    milter_cursor_str(c, &r->s2);
		break;
	case MILTER_REPLY_CHGFROM:
	case MILTER_REPLY_ADDRCPT_PAR:
		ok = milter_cursor_str(c, &r->s1) && milter_cursor_opt_str(c, &r->s2);
		break;
	case MILTER_REPLY_REPLBODY:
		r->data = c->p;
		r->data_len = c->left;
		c->p += c->left;
		c->left = 0;
		ok = true;
		break;
	case MILTER_REPLY_SETSYMLIST:
		ok = milter_cursor_u32(c, &r->index) && milter_cursor_str(c, &r->s1);
		break;
	default:
		*why = "unknown filter reply";
		return MILTER_PROTO_BAD;
	}
	if (!ok) {
		*why = "reply data too short or string without NUL";
		return MILTER_PROTO_BAD;
	}
	if (c->left != 0) {
		*why = "reply followed by unexpected data bytes";
		return MILTER_PROTO_BAD;
	}
	return MILTER_PROTO_OK;
}

enum milter_proto_result
milter_proto_decode(const char *p, size_t len, bool expect_optneg, struct milter_reply *r,
    size_t *consumed, const char **why)
{
	const unsigned char *u = (const unsigned char *)p;
	struct milter_cursor c;
	enum milter_proto_result res;
	uint32_t flen;

	memset(r, 0, sizeof(*r));
	if (len < MILTER_LEN_SIZE)
		return MILTER_PROTO_MORE;
	flen = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
	if (flen < 1) {
		*why = "bad packet length: 0";
		return MILTER_PROTO_BAD;
	}
	if (flen > MILTER_FRAME_MAX) {
		*why = "unreasonable packet length";
		return MILTER_PROTO_BAD;
	}
	if (len - MILTER_LEN_SIZE < flen)
		return MILTER_PROTO_MORE;
	r->cmd = p[MILTER_LEN_SIZE];
	c.p = p + MILTER_LEN_SIZE + 1;
	c.left = flen - 1;
	if (expect_optneg) {
		if (r->cmd != MILTER_CMD_OPTNEG) {
			*why = "unexpected reply in initial handshake";
			return MILTER_PROTO_BAD;
		}
		res = milter_proto_optneg_reply(&c, r, why);
	} else {
		res = milter_proto_payload(&c, r, why);
	}
	if (res == MILTER_PROTO_OK)
		*consumed = MILTER_LEN_SIZE + flen;
	return res;
}

/* One line of a reply code text: "DDD" then ' ' or '-', printable text. */
static int
milter_proto_reply_line(const char *l, size_t n, int *code, bool *last, const char **why)
{
	size_t i;
	int c;

	if (n < 4 || (l[0] != '4' && l[0] != '5') || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
	    l[2] > '9' || (l[3] != ' ' && l[3] != '-')) {
		*why = "malformed reply: not \"4XX text\" or \"5XX text\"";
		return -1;
	}
	c = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (*code != 0 && c != *code) {
		*why = "malformed reply: different codes on its lines";
		return -1;
	}
	*code = c;
	*last = l[3] == ' ';
	for (i = 4; i < n; i++)
		if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f) {
			*why = "malformed reply: control character in text";
			return -1;
		}
	return 0;
}

int
milter_proto_replycode_check(const char *text, int *code, const char **why)
{
	const char *p = text, *crlf;
	size_t n, lines = 0, total = strlen(text);
	bool last = false;

	*code = 0;
	if (total > MILTER_REPLY_TEXT_MAX) {
		*why = "reply text too long";
		return -1;
	}
	for (;;) {
		if (last) {
			*why = "malformed reply: text after the last line";
			return -1;
		}
		if (++lines > MILTER_REPLY_LINES_MAX) {
			*why = "reply has too many lines";
			return -1;
		}
		crlf = strstr(p, "\r\n");
		n = crlf != NULL ? (size_t)(crlf - p) : strlen(p);
		if (milter_proto_reply_line(p, n, code, &last, why) < 0)
			return -1;
		/* RFC 3463: an enhanced code of the first line is of the
		 * reply's class (Postfix checks text[4] == text[0]). */
		if (lines == 1 && n >= 6 && p[4] >= '2' && p[4] <= '5' && p[5] == '.' &&
		    p[4] != p[0]) {
			*why = "malformed reply: enhanced status code of another class";
			return -1;
		}
		if (crlf == NULL)
			break;
		p = crlf + 2;
	}
	if (!last) {
		*why = "malformed reply: last line ends with '-'";
		return -1;
	}
	return 0;
}

const char *
milter_proto_cmd_name(char cmd)
{
	static const struct {
		char cmd;
		const char *name;
	} t[] = {
		{ MILTER_CMD_ABORT, "SMFIC_ABORT" }, { MILTER_CMD_BODY, "SMFIC_BODY" },
		{ MILTER_CMD_CONNECT, "SMFIC_CONNECT" }, { MILTER_CMD_MACRO, "SMFIC_MACRO" },
		{ MILTER_CMD_EOB, "SMFIC_BODYEOB" }, { MILTER_CMD_HELO, "SMFIC_HELO" },
		{ MILTER_CMD_HEADER, "SMFIC_HEADER" }, { MILTER_CMD_MAIL, "SMFIC_MAIL" },
		{ MILTER_CMD_EOH, "SMFIC_EOH" }, { MILTER_CMD_OPTNEG, "SMFIC_OPTNEG" },
		{ MILTER_CMD_QUIT, "SMFIC_QUIT" }, { MILTER_CMD_RCPT, "SMFIC_RCPT" },
		{ MILTER_CMD_DATA, "SMFIC_DATA" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].cmd == cmd)
			return t[i].name;
	return "(unknown MTA event)";
}

const char *
milter_proto_reply_name(char cmd)
{
	static const struct {
		char cmd;
		const char *name;
	} t[] = {
		{ MILTER_REPLY_ADDRCPT, "SMFIR_ADDRCPT" }, { MILTER_REPLY_DELRCPT, "SMFIR_DELRCPT" },
		{ MILTER_REPLY_ADDRCPT_PAR, "SMFIR_ADDRCPT_PAR" },
		{ MILTER_REPLY_SHUTDOWN, "SMFIR_SHUTDOWN" }, { MILTER_REPLY_ACCEPT, "SMFIR_ACCEPT" },
		{ MILTER_REPLY_REPLBODY, "SMFIR_REPLBODY" },
		{ MILTER_REPLY_CONTINUE, "SMFIR_CONTINUE" },
		{ MILTER_REPLY_DISCARD, "SMFIR_DISCARD" }, { MILTER_REPLY_CHGFROM, "SMFIR_CHGFROM" },
		{ MILTER_REPLY_CONN_FAIL, "SMFIR_CONN_FAIL" },
		{ MILTER_REPLY_ADDHEADER, "SMFIR_ADDHEADER" },
		{ MILTER_REPLY_INSHEADER, "SMFIR_INSHEADER" },
		{ MILTER_REPLY_SETSYMLIST, "SMFIR_SETSYMLIST" },
		{ MILTER_REPLY_CHGHEADER, "SMFIR_CHGHEADER" },
		{ MILTER_REPLY_PROGRESS, "SMFIR_PROGRESS" },
		{ MILTER_REPLY_QUARANTINE, "SMFIR_QUARANTINE" },
		{ MILTER_REPLY_REJECT, "SMFIR_REJECT" }, { MILTER_REPLY_SKIP, "SMFIR_SKIP" },
		{ MILTER_REPLY_TEMPFAIL, "SMFIR_TEMPFAIL" },
		{ MILTER_REPLY_REPLYCODE, "SMFIR_REPLYCODE" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].cmd == cmd)
			return t[i].name;
	return "(unknown filter reply)";
}
