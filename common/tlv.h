/*
 * tlv: the tag-length-value record codec of tern's on-disk records (and
 * the shape of the envelope record): a field is a u8 tag, a u32 big-endian
 * length and that many bytes. Readers are bounded cursors over untrusted
 * bytes: every get checks what is left, and unknown tags can be skipped,
 * so later versions add fields that older readers ignore.
 */
#ifndef TERN_TLV_H
#define TERN_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define TLV_FIELD_HEADER_LEN 5u

/* ---- writing: appends to a buf; BUF_TOO_BIG past its maximum ---- */

enum buf_result tlv_put(struct buf *out, unsigned tag, const void *p, size_t n);
enum buf_result tlv_put_str(struct buf *out, unsigned tag, const char *s);
enum buf_result tlv_put_u8(struct buf *out, unsigned tag, unsigned v);
enum buf_result tlv_put_u32(struct buf *out, unsigned tag, uint32_t v);
enum buf_result tlv_put_u64(struct buf *out, unsigned tag, uint64_t v);

/* ---- reading ---- */

struct tlv_reader {
	const unsigned char *p;	/* borrowed */
	size_t len;
	size_t off;
};

struct tlv_field {
	unsigned tag;
	const unsigned char *p;	/* borrowed from the reader's bytes */
	size_t len;
};

void tlv_reader_init(struct tlv_reader *rd, const void *p, size_t len);
static inline bool tlv_done(const struct tlv_reader *rd) { return rd->off == rd->len; }
/* The next field; -1 when the header or the value runs past the end. */
int tlv_next(struct tlv_reader *rd, struct tlv_field *f);

/* Typed views of a field's value; -1 when the length is not the type's. */
int tlv_u8(const struct tlv_field *f, unsigned *v);
int tlv_u32(const struct tlv_field *f, uint32_t *v);
int tlv_u64(const struct tlv_field *f, uint64_t *v);
/* Copy a string value into dst (size dstsz) with a NUL; -1 when it holds a
 * NUL byte or does not fit. */
int tlv_str(const struct tlv_field *f, char *dst, size_t dstsz);

#endif
