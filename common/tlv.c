/*
 * tlv: tag-length-value fields. Pure; returns errors, never logs.
 */
#include "common/tlv.h"

#include <string.h>

static void
tlv_be(unsigned char *b, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		b[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t
tlv_from_be(const unsigned char *b, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

enum buf_result
tlv_put(struct buf *out, unsigned tag, const void *p, size_t n)
{
	unsigned char h[TLV_FIELD_HEADER_LEN];
	char *w;

	if (tag > 0xff || n > UINT32_MAX)
		return BUF_TOO_BIG;
	w = buf_reserve(out, sizeof(h) + n);
	if (w == NULL)
		return BUF_TOO_BIG;
	h[0] = (unsigned char)tag;
	tlv_be(h + 1, n, 4);
	memcpy(w, h, sizeof(h));
	if (n > 0)
		memcpy(w + sizeof(h), p, n);
	buf_commit(out, sizeof(h) + n);
	return BUF_OK;
}

enum buf_result
tlv_put_str(struct buf *out, unsigned tag, const char *s)
{
	return tlv_put(out, tag, s, strlen(s));
}

enum buf_result
tlv_put_u8(struct buf *out, unsigned tag, unsigned v)
{
	unsigned char c = (unsigned char)v;

	return tlv_put(out, tag, &c, 1);
}

enum buf_result
tlv_put_u32(struct buf *out, unsigned tag, uint32_t v)
{
	unsigned char b[4];

	tlv_be(b, v, 4);
	return tlv_put(out, tag, b, sizeof(b));
}

enum buf_result
tlv_put_u64(struct buf *out, unsigned tag, uint64_t v)
{
	unsigned char b[8];

	tlv_be(b, v, 8);
	return tlv_put(out, tag, b, sizeof(b));
}

void
tlv_reader_init(struct tlv_reader *rd, const void *p, size_t len)
{
	rd->p = p;
	rd->len = len;
	rd->off = 0;
}

int
tlv_next(struct tlv_reader *rd, struct tlv_field *f)
{
	uint64_t n;

	if (rd->len - rd->off < TLV_FIELD_HEADER_LEN)
		return -1;
	n = tlv_from_be(rd->p + rd->off + 1, 4);
	if (n > rd->len - rd->off - TLV_FIELD_HEADER_LEN)
		return -1;
	f->tag = rd->p[rd->off];
	f->p = rd->p + rd->off + TLV_FIELD_HEADER_LEN;
	f->len = (size_t)n;
	rd->off += TLV_FIELD_HEADER_LEN + (size_t)n;
	return 0;
}

int
tlv_u8(const struct tlv_field *f, unsigned *v)
{
	if (f->len != 1)
		return -1;
	*v = f->p[0];
	return 0;
}

int
tlv_u32(const struct tlv_field *f, uint32_t *v)
{
	if (f->len != 4)
		return -1;
	*v = (uint32_t)tlv_from_be(f->p, 4);
	return 0;
}

int
tlv_u64(const struct tlv_field *f, uint64_t *v)
{
	if (f->len != 8)
		return -1;
	*v = tlv_from_be(f->p, 8);
	return 0;
}

int
tlv_str(const struct tlv_field *f, char *dst, size_t dstsz)
{
	if (f->len >= dstsz || memchr(f->p, '\0', f->len) != NULL)
		return -1;
	memcpy(dst, f->p, f->len);
	dst[f->len] = '\0';
	return 0;
}
