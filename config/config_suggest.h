/*
 * config_suggest: "did you mean ...?" for misspelt names. Private to
 * config/. Keeps the closest candidate by Levenshtein distance; a
 * candidate that is too far from the word is no suggestion at all, so
 * "foo" does not earn a random parameter name.
 *
 * Owns nothing: best_prefix and best_name borrow the candidates passed
 * to config_suggest_try(), which must outlive the struct. best_prefix is
 * best_prefix_len bytes, not necessarily NUL-terminated there (a prefix
 * may be the head of the word itself: "slow" of a misspelt
 * slow_destination_..., with "_destination_..." as the name).
 */
#ifndef TERN_CONFIG_SUGGEST_H
#define TERN_CONFIG_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>

struct config_suggest {
	const char *word;	/* the unknown word, borrowed */
	const char *best_prefix;	/* "", a listener prefix or a transport */
	size_t best_prefix_len;
	const char *best_name;
	size_t best_dist;
};

void config_suggest_init(struct config_suggest *s, const char *word);
/* Consider prefix + name (prefix may be ""). */
void config_suggest_try(struct config_suggest *s, const char *prefix, const char *name);
/* The same with the first prefix_len bytes of prefix. */
void config_suggest_try_len(struct config_suggest *s, const char *prefix, size_t prefix_len,
                            const char *name);
/* True when a candidate is close enough to be worth naming. */
bool config_suggest_found(const struct config_suggest *s);

#endif
