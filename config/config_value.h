/*
 * config_value: typed values of parameters, parsed from their expanded
 * text. Private to config/.
 *
 * A struct config_value owns every pointer in it; config_value_free()
 * releases them. Parsers never write to their input. Problems are
 * appended to a `why` buffer as one "message\n" line each, without the
 * FILE:LINE: NAME: prefix, which only the caller knows.
 */
#ifndef TERN_CONFIG_VALUE_H
#define TERN_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"

/* Largest INT, SIZE or TIME value: fits int64_t, off_t and time_t. */
#define CONFIG_VALUE_NUMBER_MAX ((uint64_t)INT64_MAX)
/* Longest piece of a bad value quoted in an error message. */
#define CONFIG_VALUE_QUOTE_MAX 80

struct config_value {
	bool set;		/* overrides: present in the file */
	unsigned line;		/* line of the file it came from; 0 = default */
	char *text;		/* expanded text; ENUM: the table's spelling */
	bool b;			/* BOOL */
	uint64_t u;		/* INT, SIZE */
	int64_t t;		/* TIME, seconds */
	struct config_list list;	/* LIST, RESTRICTIONS */
	struct config_network *nets;	/* NETWORKS */
	size_t nnets;
	struct config_listen_addr *addrs;	/* LISTEN */
	size_t naddrs;
	struct config_rate *rates;	/* RATES */
	size_t nrates;
};

/*
 * Parse text (copied) as type into v, which must be zeroed or freed.
 * flags are the table's (CONFIG_F_UNIT_*), choices the ENUM's "a|b|c" or
 * the items a LIST may hold (NULL: any).
 * Returns false and appends to why when the text is not valid for type.
 */
bool config_value_parse(struct config_value *v, enum config_type type, unsigned flags,
                        const char *choices, const char *text, struct buf *why);
/* Free what v owns and zero it. */
void config_value_free(struct config_value *v);

/* A time: decimal with an optional s/m/h/d/w suffix; a bare number is in
 * the unit flags name (seconds without one). */
bool config_value_time(const char *s, unsigned flags, int64_t *out, struct buf *why);
/* A TCP port: 1..65535, decimal digits only, len bytes of s. */
bool config_value_port(const char *s, size_t len, unsigned *port);
/* Append s as "s" for a message: escaped and cut at CONFIG_VALUE_QUOTE_MAX. */
void config_value_quote(struct buf *out, const char *s, size_t len);
/* Split text at commas and white space into list (empty items dropped). */
void config_value_split(struct config_list *list, const char *text);

#endif
