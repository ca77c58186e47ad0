/*
 * config_expand: $name, ${name}, $(name) expansion of parameter values,
 * after the whole file is read. Private to config/.
 *
 * Expansion is recursive and memoised per parameter. A cycle (or a chain
 * deeper than CONFIG_EXPAND_DEPTH_MAX) is reported once as "parameter X:
 * recursive $expansion" at the line of a parameter in the cycle. "$$" is
 * a literal '$'; a '$' not followed by a name is kept as is; an unknown
 * name expands to nothing, as in Postfix. ${name?text} gives text when
 * name is not empty, ${name:text} when it is (Postfix's conditionals).
 *
 * Owns the expanded strings until config_expand_free(); raw values are
 * borrowed and must outlive the struct.
 */
#ifndef TERN_CONFIG_EXPAND_H
#define TERN_CONFIG_EXPAND_H

#include <stdbool.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/config_parse.h"

/* Longest chain of $references followed before giving up. */
#define CONFIG_EXPAND_DEPTH_MAX 100
/* Longest value after expansion ($a$a in $b$b... doubles each level). */
#define CONFIG_EXPAND_VALUE_MAX (1024 * 1024)

enum config_expand_state {
	CONFIG_EXPAND_NEW = 0,
	CONFIG_EXPAND_BUSY,	/* on the stack: meeting it again is a cycle */
	CONFIG_EXPAND_DONE,
	CONFIG_EXPAND_FAILED,	/* reported already */
};

struct config_expand {
	const char *raw[CONFIG_PARAM_COUNT];	/* borrowed: file value or default */
	unsigned line[CONFIG_PARAM_COUNT];	/* where raw was set; 0 = default */
	char *done[CONFIG_PARAM_COUNT];		/* owned: expanded values */
	enum config_expand_state state[CONFIG_PARAM_COUNT];
	enum config_param stack[CONFIG_EXPAND_DEPTH_MAX];
	size_t depth;
	struct config_parse_errors *errs;	/* borrowed */
};

/* Start with every raw value NULL (meaning ""); the caller fills raw/line. */
void config_expand_init(struct config_expand *x, struct config_parse_errors *errs);
void config_expand_free(struct config_expand *x);

/* The expanded global value of p, borrowed from x; NULL after an error. */
const char *config_expand_param(struct config_expand *x, enum config_param p);

/*
 * Expand text (the value of name, set at line) into out, for values that
 * are not global parameters (listener overrides). False after reporting.
 */
bool config_expand_text(struct config_expand *x, const char *text, const char *name,
                        unsigned line, struct buf *out);

#endif
