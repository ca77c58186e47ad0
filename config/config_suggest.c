/*
 * config_suggest: closest-name suggestions by edit distance. Returns
 * results in the struct; allocates nothing (names are short, so the
 * distance rows live on the stack).
 */
#include "config/config_suggest.h"

#include <stdio.h>
#include <string.h>

/* Longest word or candidate compared; longer ones get no suggestion. */
#define CONFIG_SUGGEST_WORD_MAX 128
/* A suggestion may differ in at most this many edits, or in half the
 * word's length when that is more (long names tolerate more typos). */
#define CONFIG_SUGGEST_DIST_MIN 2
#define CONFIG_SUGGEST_NONE ((size_t)-1)

void
config_suggest_init(struct config_suggest *s, const char *word)
{
	s->word = word;
	s->best_prefix = "";
	s->best_prefix_len = 0;
	s->best_name = NULL;
	s->best_dist = CONFIG_SUGGEST_NONE;
}

/* Levenshtein distance with two rows; both strings are bounded. */
static size_t
config_suggest_distance(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t row0[CONFIG_SUGGEST_WORD_MAX + 1], row1[CONFIG_SUGGEST_WORD_MAX + 1];
	size_t *prev = row0, *cur = row1, *tmp, i, j, best;

	for (j = 0; j <= blen; j++)
		prev[j] = j;
	for (i = 1; i <= alen; i++) {
		cur[0] = i;
		for (j = 1; j <= blen; j++) {
			best = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		tmp = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[blen];
}

void
config_suggest_try_len(struct config_suggest *s, const char *prefix, size_t prefix_len,
                       const char *name)
{
	char cand[CONFIG_SUGGEST_WORD_MAX + 1];
	size_t wlen = strlen(s->word), d;
	int n;

	if (prefix_len > CONFIG_SUGGEST_WORD_MAX)
		return;
	n = snprintf(cand, sizeof(cand), "%.*s%s", (int)prefix_len, prefix, name);
	if (n < 0 || (size_t)n >= sizeof(cand) || wlen > CONFIG_SUGGEST_WORD_MAX)
		return;
	d = config_suggest_distance(s->word, wlen, cand, (size_t)n);
	if (d < s->best_dist) {
		s->best_dist = d;
		s->best_prefix = prefix;
		s->best_prefix_len = prefix_len;
		s->best_name = name;
	}
}

void
config_suggest_try(struct config_suggest *s, const char *prefix, const char *name)
{
	config_suggest_try_len(s, prefix, strlen(prefix), name);
}

bool
config_suggest_found(const struct config_suggest *s)
{
	size_t limit = strlen(s->word) / 2;

	if (limit < CONFIG_SUGGEST_DIST_MIN)
		limit = CONFIG_SUGGEST_DIST_MIN;
	return s->best_name != NULL && s->best_dist <= limit;
}
