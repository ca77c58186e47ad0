/*
 * utf8: validation of UTF-8 sequences in untrusted input (addresses,
 * ESMTP parameters). No allocation, no locale.
 */
#ifndef TERN_UTF8_H
#define TERN_UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed multi-byte UTF-8 sequence (RFC 3629 section 4)
 * at s, 2..4, or 0: no overlong forms (C0, C1, E0 80..9F, F0 80..8F), no
 * surrogates (ED A0..BF), nothing past U+10FFFF, never reading past avail
 * bytes. ASCII bytes give 0 too: callers handle them first.
 */
size_t utf8_sequence_len(const void *s, size_t avail);

#endif
