/*
 * map_regexp: regexp:/path tables as Postfix's regexp_table(5) reads
 * them, with POSIX regcomp(3) (libc; no PCRE):
 *
 *   /pattern/flags result         first matching rule wins
 *   !/pattern/flags result        the rule matches when pattern does not
 *   /pat1/flags!/pat2/flags result  pat1 matches and pat2 does not
 *   if /pattern/flags ... endif   (and "if !/pattern/") the rules inside
 *                                 are tried only when the condition holds
 *
 * The delimiter is any byte that is not a letter, a digit, white space or
 * '\'; "\<delimiter>" stands for the delimiter itself, other '\' escapes
 * go to regcomp as written. Flags toggle: i (case-insensitive, on by
 * default), x (extended syntax, on by default), m (REG_NEWLINE: '^', '$'
 * and '.' respect line breaks, off by default). The result may hold $1 ..
 * $99, ${n} or $(n) (the text matched by that group, empty when the
 * group did not take part) and $$ (a '$').
 *
 * Checked at load, each a "FILE:LINE: message" error that fails the whole
 * file (Postfix skips the rule with a warning; a header_checks file that
 * silently lost its REJECT rule would let mail through): a bad delimiter
 * or flag, a regcomp(3) error, a missing result, $n beyond the pattern's
 * groups or in a negated rule, if without endif and endif without if.
 *
 * Keys are matched as given: the i flag, not folding, decides about case
 * (Postfix does not fold keys for regexp tables either).
 *
 * Owns its compiled rules; out of memory is fatal().
 */
#include "config/map_impl.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* Most groups a result may refer to ($1 .. $99), and regmatch_t slots. */
#define MAP_REGEXP_GROUPS_MAX 99
/* Longest regcomp(3) error text kept. */
#define MAP_REGEXP_ERR_MAX 256

enum map_regexp_kind { MAP_REGEXP_RULE, MAP_REGEXP_IF, MAP_REGEXP_ENDIF };

struct map_regexp_pat {
	regex_t re;
	bool compiled;
	bool neg;		/* !/pattern/ */
	size_t nsub;
};

struct map_regexp_rule {
	enum map_regexp_kind kind;
	unsigned line;
	struct map_regexp_pat p1, p2;	/* p2: /p1/!/p2/, when has2 */
	bool has2;
	char *result;		/* owned; MAP_REGEXP_RULE only */
	size_t skip;		/* IF: the index after its endif */
};

struct map_regexp {
	struct map_regexp_rule *v;
	size_t n, cap;
	size_t nrules;		/* MAP_REGEXP_RULE entries */
};

static bool
map_regexp_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool
map_regexp_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Parse one delimited pattern with its flags at *pp (before end) and
 * compile it. false after reporting why. */
static bool
map_regexp_pattern(const char **pp, const char *end, struct map_regexp_pat *pat,
                   struct map_diag *d, unsigned line)
{
	const char *q = *pp;
	int cflags = REG_EXTENDED | REG_ICASE, rc;
	char delim, why[MAP_REGEXP_ERR_MAX];
	struct buf text;

	memset(pat, 0, sizeof(*pat));
	if (q < end && *q == '!') {
		pat->neg = true;
		q++;
	}
	if (q >= end || map_regexp_alnum(*q) || map_regexp_space(*q) || *q == '\\') {
		map_diag_add(d, line, false, "expected /pattern/ (any delimiter but a letter, "
		             "a digit, white space or '\\')");
		return false;
	}
	delim = *q++;
	buf_init(&text, MAP_LINE_MAX + 1);
	for (; q < end && *q != delim; q++) {
		if (*q == '\\' && q + 1 < end) {
			if (q[1] != delim)
				buf_append_char(&text, '\\');
			q++;
		}
		buf_append_char(&text, *q);
	}
	if (q >= end) {
		map_diag_add(d, line, false, "no closing delimiter '%c' after the pattern", delim);
		buf_free(&text);
		return false;
	}
	for (q++; q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')); q++) {
		switch (*q) {
		case 'i': cflags ^= REG_ICASE; break;
		case 'x': cflags ^= REG_EXTENDED; break;
		case 'm': cflags ^= REG_NEWLINE; break;
		default:
			map_diag_add(d, line, false, "unknown regexp flag \"%c\" (use i, x or m)", *q);
			buf_free(&text);
			return false;
		}
	}
	rc = regcomp(&pat->re, buf_cstr(&text), cflags);
	buf_free(&text);
	if (rc != 0) {
		regerror(rc, &pat->re, why, sizeof(why));
		map_diag_add(d, line, false, "bad regular expression: %s", why);
		return false;
	}
	pat->compiled = true;
	pat->nsub = pat->re.re_nsub;
	*pp = q;
	return true;
}

static void
map_regexp_pat_free(struct map_regexp_pat *pat)
{
	if (pat->compiled)
		regfree(&pat->re);
	pat->compiled = false;
}

/*
 * The next piece of a result at s: a literal run (*group 0, *len its
 * bytes), "$$" (*group 0, *len 1, literal "$"), or a group reference
 * (*group n). Returns the bytes consumed, or 0 with *why on a bad "$".
 */
static size_t
map_regexp_piece(const char *s, unsigned *group, size_t *len, const char **why)
{
	const char *p = s + 1, *close = NULL;
	unsigned n = 0;

	*group = 0;
	if (s[0] != '$') {
		*len = strcspn(s, "$");
		return *len;
	}
	if (s[1] == '$') {
		*len = 1;
		return 2;
	}
	if (s[1] == '{' || s[1] == '(') {
		close = s[1] == '{' ? "}" : ")";
		p++;
	}
	if (*p < '0' || *p > '9') {
		*why = "non-numeric replacement index after '$' (write $$ for a '$')";
		return 0;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > MAP_REGEXP_GROUPS_MAX) {
			*why = "replacement index out of range";
			return 0;
		}
	}
	if (close != NULL && *p++ != close[0]) {
		*why = "unterminated replacement index";
		return 0;
	}
	if (n == 0) {
		*why = "replacement index $0 (groups count from $1)";
		return 0;
	}
	*group = n;
	*len = 0;
	return (size_t)(p - s);
}

/* Check the $n of a rule's result against its pattern. */
static bool
map_regexp_result_ok(const struct map_regexp_rule *r, struct map_diag *d)
{
	const char *s = r->result, *why = NULL;
	unsigned group;
	size_t len, used;

	while (*s != '\0') {
		if ((used = map_regexp_piece(s, &group, &len, &why)) == 0) {
			map_diag_add(d, r->line, false, "%s", why);
			return false;
		}
		if (group > 0 && r->p1.neg) {
			map_diag_add(d, r->line, false, "$%u in the result of a negated pattern", group);
			return false;
		}
		if (group > r->p1.nsub) {
			map_diag_add(d, r->line, false, "$%u: the pattern has %zu group%s", group,
			             r->p1.nsub, r->p1.nsub == 1 ? "" : "s");
			return false;
		}
		s += used;
	}
	return true;
}

static struct map_regexp_rule *
map_regexp_push(struct map_regexp *r, enum map_regexp_kind kind, unsigned line)
{
	struct map_regexp_rule *rule;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (r->v == NULL)
			fatal("out of memory (regexp map)");
	}
	rule = &r->v[r->n++];
	memset(rule, 0, sizeof(*rule));
	rule->kind = kind;
	rule->line = line;
	return rule;
}

/* Is the logical line the keyword kw (case-insensitive) followed by a
 * byte that cannot continue a word? *rest is what follows. */
static bool
map_regexp_keyword(const char *s, size_t len, const char *kw, const char **rest)
{
	size_t k = strlen(kw);

	if (len < k || strncasecmp(s, kw, k) != 0 || (len > k && map_regexp_alnum(s[k])))
		return false;
	*rest = s + k;
	return true;
}

/* One logical line (map_rule_line_fn). */
static void
map_regexp_line(void *arg, const char *s, size_t len, unsigned line, struct map_ifs *ifs,
                struct map_diag *d)
{
	struct map_regexp *r = arg;
	const char *end = s + len, *q;
	struct map_regexp_rule *rule;
	size_t at;

	if (map_regexp_keyword(s, len, "endif", &q)) {
		while (q < end && map_regexp_space(*q))
			q++;
		if (q < end) {
			map_diag_add(d, line, false, "text after endif");
		} else if (map_ifs_pop(ifs, &at, line, d)) {
			/* A failed if goes on after its endif. */
			r->v[at].skip = r->n + 1;
			(void)map_regexp_push(r, MAP_REGEXP_ENDIF, line);
		}
		return;
	}
	if (map_regexp_keyword(s, len, "if", &q)) {
		while (q < end && map_regexp_space(*q))
			q++;
		rule = map_regexp_push(r, MAP_REGEXP_IF, line);
		if (!map_regexp_pattern(&q, end, &rule->p1, d, line)) {
			r->n--;
			return;
		}
		while (q < end && map_regexp_space(*q))
			q++;
		if (q < end)
			map_diag_add(d, line, false, "text after the pattern of if");
		if (q < end || !map_ifs_push(ifs, r->n - 1, line, d)) {
			map_regexp_pat_free(&rule->p1);
			r->n--;
		}
		return;
	}
	rule = map_regexp_push(r, MAP_REGEXP_RULE, line);
	q = s;
	if (!map_regexp_pattern(&q, end, &rule->p1, d, line))
		goto bad;
	if (q + 1 < end && *q == '!' && !map_regexp_space(q[1])) {
		q++;
		if (rule->p1.neg || *q == '!') {
			map_diag_add(d, line, false, "only /pat1/!/pat2/ may combine patterns");
			goto bad;
		}
		if (!map_regexp_pattern(&q, end, &rule->p2, d, line))
			goto bad;
		rule->has2 = true;
	}
	if (q < end && !map_regexp_space(*q)) {
		map_diag_add(d, line, false, "white space expected after the pattern");
		goto bad;
	}
	while (q < end && map_regexp_space(*q))
		q++;
	if (q == end) {
		map_diag_add(d, line, false, "no result after the pattern");
		goto bad;
	}
	rule->result = map_xmalloc((size_t)(end - q) + 1);
	memcpy(rule->result, q, (size_t)(end - q));
	rule->result[end - q] = '\0';
	if (!map_regexp_result_ok(rule, d))
		goto bad;
	r->nrules++;
	return;
bad:
	map_regexp_pat_free(&rule->p1);
	map_regexp_pat_free(&rule->p2);
	free(rule->result);
	r->n--;
}

enum map_status
map_regexp_parse(const char *text, size_t len, const char *file, struct map_regexp **out,
                 struct buf *diag)
{
	struct map_regexp *r = map_xmalloc(sizeof(*r));

	memset(r, 0, sizeof(*r));
	*out = NULL;
	if (map_rules_parse(text, len, file, map_regexp_line, r, diag) > 0) {
		map_regexp_free(r);
		return MAP_ERR_DATA;
	}
	*out = r;
	return MAP_OK;
}

void
map_regexp_free(struct map_regexp *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++) {
		map_regexp_pat_free(&r->v[i].p1);
		map_regexp_pat_free(&r->v[i].p2);
		free(r->v[i].result);
	}
	free(r->v);
	free(r);
}

size_t
map_regexp_count(const struct map_regexp *r)
{
	return r->nrules;
}

/* Does pat match key (m gets the groups when nm > 0)? */
static bool
map_regexp_match(const struct map_regexp_pat *pat, const char *key, regmatch_t *m, size_t nm)
{
	bool hit = regexec(&pat->re, key, nm, nm > 0 ? m : NULL, 0) == 0;

	return pat->neg ? !hit : hit;
}

/* The result of rule with its groups filled in, into value. */
static enum map_result
map_regexp_expand(const struct map_regexp_rule *rule, const char *spec, const char *key,
                  const regmatch_t *m, struct buf *value, char *err, size_t errsz)
{
	const char *s = rule->result, *why = NULL;
	enum buf_result br = BUF_OK;
	unsigned group;
	size_t len, used;

	while (*s != '\0' && br == BUF_OK) {
		used = map_regexp_piece(s, &group, &len, &why);
		if (group == 0)
			br = buf_append(value, s[0] == '$' ? "$" : s, len);
		else if (m[group].rm_so >= 0)
			br = buf_append(value, key + m[group].rm_so,
			                (size_t)(m[group].rm_eo - m[group].rm_so));
		s += used;
	}
	if (br != BUF_OK) {
		snprintf(err, errsz, "%s, line %u: result does not fit %zu bytes", spec, rule->line,
		         value->max);
		buf_reset(value);
		return MAP_ERROR;
	}
	buf_cstr(value);
	return MAP_FOUND;
}

enum map_result
map_regexp_lookup(const struct map_regexp *r, const char *spec, const char *key,
                  struct buf *value, char *err, size_t errsz)
{
	regmatch_t m[MAP_REGEXP_GROUPS_MAX + 1];
	const struct map_regexp_rule *rule;
	size_t i = 0, nm;

	buf_reset(value);
	while (i < r->n) {
		rule = &r->v[i];
		if (rule->kind == MAP_REGEXP_IF) {
			i = map_regexp_match(&rule->p1, key, NULL, 0) ? i + 1 : rule->skip;
			continue;
		}
		i++;
		if (rule->kind == MAP_REGEXP_ENDIF)
			continue;
		nm = rule->p1.neg ? 0 : rule->p1.nsub + 1;
		if (nm > MAP_REGEXP_GROUPS_MAX + 1)
			nm = MAP_REGEXP_GROUPS_MAX + 1;
		if (!map_regexp_match(&rule->p1, key, m, nm))
			continue;
		if (rule->has2 && regexec(&rule->p2.re, key, 0, NULL, 0) == 0)
			continue;
		return map_regexp_expand(rule, spec, key, m, value, err, errsz);
	}
	return MAP_NOTFOUND;
}
