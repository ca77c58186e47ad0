#include "common/idxhash.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void
idxhash_init(struct idxhash *h)
{
	memset(h, 0, sizeof(*h));
}

void
idxhash_free(struct idxhash *h)
{
	free(h->hashes);
	free(h->slots);
	idxhash_init(h);
}

size_t
idxhash_find(const struct idxhash *h, uint64_t hash, idxhash_match_fn *match, const void *key,
             const void *ctx)
{
	if (h->cap == 0)
		return IDXHASH_NONE;
	for (size_t i = hash & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
		if (h->slots[i] == 0)
			return IDXHASH_NONE;
		if (h->hashes[i] == hash && match(h->slots[i] - 1, key, ctx))
			return h->slots[i] - 1;
	}
}

static void
place(uint64_t *hashes, uint32_t *slots, size_t cap, uint64_t hash, uint32_t slot)
{
	size_t i = hash & (cap - 1);

	while (slots[i] != 0)
		i = (i + 1) & (cap - 1);
	hashes[i] = hash;
	slots[i] = slot;
}

void
idxhash_add(struct idxhash *h, uint64_t hash, size_t pos)
{
	if (pos >= UINT32_MAX - 1)
		fatal("idxhash: position %zu out of range", pos);
	/* At most half full: probes stay short. */
	if ((h->n + 1) * 2 > h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		uint64_t *hashes = calloc(cap, sizeof(*hashes));
		uint32_t *slots = calloc(cap, sizeof(*slots));

		if (hashes == NULL || slots == NULL)
			fatal("out of memory");
		for (size_t i = 0; i < h->cap; i++)
			if (h->slots[i] != 0)
				place(hashes, slots, cap, h->hashes[i], h->slots[i]);
		free(h->hashes);
		free(h->slots);
		h->hashes = hashes;
		h->slots = slots;
		h->cap = cap;
	}
	place(h->hashes, h->slots, h->cap, hash, (uint32_t)pos + 1);
	h->n++;
}

/* FNV-1a, then a final mix so the low bits (the table index) depend on
 * every input byte. Not keyed: the keys here are our own ids and
 * addresses, and a collision costs time, never correctness. */
uint64_t
idxhash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		x ^= b[i];
		x *= 0x100000001b3ull;
	}
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

uint64_t
idxhash_str(const char *s)
{
	return idxhash_bytes(s, strlen(s));
}

uint64_t
idxhash_ptr(const void *p)
{
	uintptr_t v = (uintptr_t)p;

	return idxhash_bytes(&v, sizeof(v));
}
