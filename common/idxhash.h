/*
 * idxhash: an open-addressing index from keys to positions in the
 * caller's own array. The table stores only (hash, position); the caller
 * keeps the keys and says whether a candidate position matches, so one
 * small structure serves pointer keys, string keys and anything else
 * without copying them.
 *
 * Used where a batch must find "the entry for this message" or "the
 * record for this retry key" among many (qmgr's results flush): a linear
 * search there made a flush of n outcomes cost n^2.
 *
 * Positions are below UINT32_MAX. Out of memory is fatal(), like the
 * rest of qmgr's bookkeeping.
 */
#ifndef TERN_IDXHASH_H
#define TERN_IDXHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDXHASH_NONE SIZE_MAX

struct idxhash {
	uint64_t *hashes;
	uint32_t *slots;	/* position + 1; 0 = empty */
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

/* Does position pos of the caller's array hold key? */
typedef bool idxhash_match_fn(size_t pos, const void *key, const void *ctx);

void idxhash_init(struct idxhash *h);
void idxhash_free(struct idxhash *h);
/* The position stored for key (whose hash is hash), or IDXHASH_NONE. */
size_t idxhash_find(const struct idxhash *h, uint64_t hash, idxhash_match_fn *match,
                    const void *key, const void *ctx);
/* Record pos under hash (the caller has checked that the key is new). */
void idxhash_add(struct idxhash *h, uint64_t hash, size_t pos);

uint64_t idxhash_bytes(const void *p, size_t n);
uint64_t idxhash_str(const char *s);
uint64_t idxhash_ptr(const void *p);

#endif
