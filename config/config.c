/*
 * config: the parameter table, loading (file or development defaults),
 * the accessors and the dump.
 *
 * Loading runs in three passes: read the file into raw values (syntax
 * and names checked), expand every value once the whole file is known,
 * then parse each expanded value by its type. Every problem of every
 * pass is reported; any problem fails the load, so a role only ever sees
 * a complete, valid struct config.
 *
 * Overrides: listener ones live in a fixed [listener][param] array;
 * transport ones (TRANSPORT_REST, any number) in an array sorted by
 * transport and then parameter, so look-ups are a binary search and the
 * dump is stable. For both, the last setting in the file wins (Postfix).
 *
 * Ownership: struct config owns every string and array reachable from it
 * and config_free() releases them all. Accessors hand out pointers valid
 * until config_free(). Using an accessor on a parameter of another type,
 * or a bad id, is a bug: panic().
 */
#include "config/config.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/log.h"
#include "config/config_defaults.h"
#include "config/config_expand.h"
#include "config/config_parse.h"
#include "config/config_suggest.h"
#include "config/config_value.h"

/* The file name in messages about the development defaults. */
#define CONFIG_DEV_LABEL "(development defaults)"
/* Longest parameter name with a listener prefix. */
#define CONFIG_NAME_MAX 128
/* Most bytes of messages about one value. */
#define CONFIG_WHY_MAX (16 * 1024)
/* Bytes of an IPv4 address, and the ::ffff:0:0/96 prefix that maps one. */
#define CONFIG_IPV4_BYTES 4
#define CONFIG_V4MAPPED_PREFIX_BYTES 12
#define CONFIG_BITS_PER_BYTE 8
/* Every CONFIG_F_TRANSPORT parameter is named "default" + "_REST";
 * TRANSPORT_REST replaces the first part. */
#define CONFIG_TRANSPORT_BASE "default"

struct config_param_info {
	const char *name;
	enum config_type type;
	unsigned flags;
	const char *def;
	const char *choices;
	const char *doc;
};

static const struct config_param_info config_params[CONFIG_PARAM_COUNT] = {
#define CONFIG_PARAM(id, name, type, flags, def, choices, doc) \
	[id] = { name, type, flags, def, choices, doc },
#include "config/config_params.h"
#undef CONFIG_PARAM
};

/* Indexed by enum config_listener; NULL prefix: no overrides. */
static const struct {
	const char *name;
	const char *prefix;
} config_listeners[CONFIG_LISTENER_COUNT] = {
	[CONFIG_LISTENER_GLOBAL] = { "global", NULL },
	[CONFIG_LISTENER_SMTP] = { "smtp", NULL },
	[CONFIG_LISTENER_SUBMISSION] = { "submission", "submission_" },
	[CONFIG_LISTENER_SMTPS] = { "smtps", "smtps_" },
	[CONFIG_LISTENER_SENDMAIL] = { "sendmail", NULL },
	[CONFIG_LISTENER_REINJECT] = { "reinject", "reinject_" },
};

/*
 * The re-injection listener's own defaults, used where the file sets no
 * reinject_ override: Postfix's FILTER_README sets up the smtpd a filter
 * re-injects into with -o content_filter= (here: always, see
 * config_load_typed), empty client, helo, sender and relay restrictions,
 * smtpd_recipient_restrictions = permit_mynetworks,reject and mynetworks
 * = 127.0.0.0/8, so that the checks the mail passed on its way in are not
 * run twice and only the local filter can hand mail back. The data and
 * end-of-data lists and AUTH are off for the same reason, and so are the
 * header and body checks (receive_override_options=no_header_body_checks);
 * recipients are resolved again (doc/content_filter.md).
 */
static const struct {
	enum config_param param;
	const char *value;
} config_reinject_defaults[] = {
	{ P_CONTENT_FILTER, "" },
	{ P_SMTPD_CLIENT_RESTRICTIONS, "" },
	{ P_SMTPD_HELO_RESTRICTIONS, "" },
	{ P_SMTPD_SENDER_RESTRICTIONS, "" },
	{ P_SMTPD_RELAY_RESTRICTIONS, "" },
	{ P_SMTPD_RECIPIENT_RESTRICTIONS, "permit_mynetworks, reject" },
	{ P_SMTPD_DATA_RESTRICTIONS, "" },
	{ P_SMTPD_END_OF_DATA_RESTRICTIONS, "" },
	{ P_MYNETWORKS, "127.0.0.0/8 [::1]/128" },
	{ P_SMTPD_SASL_AUTH_ENABLE, "no" },
	/* Mail a filter hands back was inspected on its way in (Postfix's
	 * FILTER_README: receive_override_options = no_milters). */
	{ P_SMTPD_MILTERS, "" },
	{ P_SMTPD_AUTHORIZED_XFORWARD_HOSTS, "127.0.0.0/8 [::1]/128" },
	{ P_HEADER_CHECKS, "" },
	{ P_MIME_HEADER_CHECKS, "" },
	{ P_NESTED_HEADER_CHECKS, "" },
	{ P_BODY_CHECKS, "" },
	/* The filter re-injecting is trusted: no anvil limits (doc/anvil.md). */
	{ P_SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS, "127.0.0.0/8 [::1]/128" },
};

/* One TRANSPORT_REST override of a loaded config. */
struct config_tvalue {
	char *transport;	/* owned */
	enum config_param param;
	struct config_value val;
};

struct config {
	char *path;
	bool dev;
	/* [GLOBAL]: every parameter; [SUBMISSION], [SMTPS]: overrides, .set
	 * when present; [SMTP] is unused (port 25 has the global values). */
	struct config_value val[CONFIG_LISTENER_COUNT][CONFIG_PARAM_COUNT];
	struct config_tvalue *tvals;	/* owned; sorted by transport, then param */
	size_t ntvals;
};

/* One TRANSPORT_REST setting as read from the file. */
struct config_load_tsetting {
	char *transport;	/* owned */
	enum config_param param;
	char *raw;		/* owned */
	unsigned line;
	size_t seq;		/* file order, so that the last one wins */
};

/* What the name of a setting refers to. */
struct config_slot {
	enum config_listener l;
	enum config_param p;
	size_t tlen;		/* > 0: TRANSPORT_REST, the transport's length */
};

/* State of one config_load(). */
struct config_load {
	struct config *cfg;
	struct config_load_tsetting *tset;	/* owned; in file order */
	size_t ntset, tset_cap;
	struct config_parse_errors errs;
	char *raw[CONFIG_LISTENER_COUNT][CONFIG_PARAM_COUNT];	/* owned; from the file */
	unsigned line[CONFIG_LISTENER_COUNT][CONFIG_PARAM_COUNT];
	char *def[CONFIG_PARAM_COUNT];	/* owned; computed defaults, NULL: the table's */
};

/* ---- table look-ups ---- */

static const struct config_param_info *
config_info(enum config_param p)
{
	if ((unsigned)p >= CONFIG_PARAM_COUNT)
		panic("config: bad parameter id %d", (int)p);
	return &config_params[p];
}

const char *config_param_name(enum config_param p) { return config_info(p)->name; }
const char *config_param_doc(enum config_param p) { return config_info(p)->doc; }
enum config_type config_param_type(enum config_param p) { return config_info(p)->type; }
bool config_param_raw(enum config_param p) { return (config_info(p)->flags & CONFIG_F_RAW) != 0; }

const char *
config_listener_name(enum config_listener l)
{
	if ((unsigned)l >= CONFIG_LISTENER_COUNT)
		panic("config: bad listener id %d", (int)l);
	return config_listeners[l].name;
}

enum config_listener
config_listener_named(const char *name, size_t len)
{
	for (int l = CONFIG_LISTENER_SMTP; l < CONFIG_LISTENER_COUNT; l++)
		if (strlen(config_listeners[l].name) == len &&
		    memcmp(config_listeners[l].name, name, len) == 0)
			return (enum config_listener)l;
	return CONFIG_LISTENER_GLOBAL;
}

static enum config_param
config_param_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_PARAM_COUNT; i++)
		if (strcmp(name, config_params[i].name) == 0)
			return (enum config_param)i;
	return CONFIG_PARAM_COUNT;
}

/* Does name start with "default_"? Such a name is never TRANSPORT_REST. */
static bool
config_is_default_name(const char *name)
{
	return strncmp(name, CONFIG_TRANSPORT_BASE "_", strlen(CONFIG_TRANSPORT_BASE "_")) == 0;
}

/*
 * The table's promises about CONFIG_F_TRANSPORT (named default_..., a
 * number or a time, never also per listener); a broken one is a bug.
 */
static void
config_table_check(void)
{
	const struct config_param_info *info;
	size_t i;

	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		info = &config_params[i];
		if (!(info->flags & CONFIG_F_TRANSPORT))
			continue;
		if (!config_is_default_name(info->name) || (info->flags & CONFIG_F_LISTENER) ||
		    (info->type != CONFIG_INT && info->type != CONFIG_SIZE &&
		     info->type != CONFIG_TIME))
			panic("config: %s cannot be CONFIG_F_TRANSPORT", info->name);
	}
}

/* "_REST" of a CONFIG_F_TRANSPORT parameter default_REST. */
static const char *
config_transport_rest(enum config_param p)
{
	return config_params[p].name + strlen(CONFIG_TRANSPORT_BASE);
}

/* [a-z0-9][a-z0-9_-]*, at most CONFIG_TRANSPORT_NAME_MAX bytes. */
static bool
config_transport_valid(const char *t, size_t len)
{
	size_t i;

	if (len == 0 || len > CONFIG_TRANSPORT_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9'))
			continue;
		if (i == 0 || (t[i] != '_' && t[i] != '-'))
			return false;
	}
	return true;
}

/*
 * Is name TRANSPORT_REST for a CONFIG_F_TRANSPORT parameter default_REST?
 * Returns that parameter and sets *tlen to the length of TRANSPORT (not
 * checked here), or returns CONFIG_PARAM_COUNT. A name that starts with
 * default_ is never one: default_destination_concurency_limit is a typo
 * of a global, not transport "default_destination" of something. The
 * longest REST wins, so that a REST ending another cannot steal it.
 */
static enum config_param
config_transport_split(const char *name, size_t *tlen)
{
	size_t nlen = strlen(name), rlen, best_len = 0, i;
	enum config_param best = CONFIG_PARAM_COUNT;
	const char *rest;

	if (config_is_default_name(name))
		return CONFIG_PARAM_COUNT;
	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		if (!(config_params[i].flags & CONFIG_F_TRANSPORT))
			continue;
		rest = config_transport_rest((enum config_param)i);
		rlen = strlen(rest);
		if (nlen > rlen && rlen > best_len && strcmp(name + nlen - rlen, rest) == 0) {
			best = (enum config_param)i;
			best_len = rlen;
		}
	}
	if (best != CONFIG_PARAM_COUNT)
		*tlen = nlen - best_len;
	return best;
}

/* "submission_" + name for overrides, name for globals. */
static void
config_full_name(char *out, size_t outsz, enum config_listener l, enum config_param p)
{
	const char *prefix = config_listeners[l].prefix;
	int n;

	n = snprintf(out, outsz, "%s%s", prefix ? prefix : "", config_params[p].name);
	if (n < 0 || (size_t)n >= outsz)
		panic("config: parameter name %s too long", config_params[p].name);
}

/* ---- pass 1: settings from the file ---- */

/*
 * Suggest TRANSPORT_REST of p for a misspelt override: each head of name
 * up to a '_' that could be a transport (slow_ of
 * slow_destination_concurency_limit), never default_.
 */
static void
config_load_suggest_transport(struct config_suggest *s, const char *name, enum config_param p)
{
	const char *us;

	if (config_is_default_name(name))
		return;
	for (us = strchr(name, '_'); us != NULL; us = strchr(us + 1, '_'))
		if (config_transport_valid(name, (size_t)(us - name)))
			config_suggest_try_len(s, name, (size_t)(us - name),
			    config_transport_rest(p));
}

static void
config_load_unknown(struct config_load *ld, const char *name, unsigned line)
{
	struct config_suggest s;
	struct buf msg;
	size_t i, l;

	config_suggest_init(&s, name);
	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		config_suggest_try(&s, "", config_params[i].name);
		for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
			if (config_listeners[l].prefix && (config_params[i].flags & CONFIG_F_LISTENER))
				config_suggest_try(&s, config_listeners[l].prefix, config_params[i].name);
		if (config_params[i].flags & CONFIG_F_TRANSPORT)
			config_load_suggest_transport(&s, name, (enum config_param)i);
	}
	buf_init(&msg, CONFIG_WHY_MAX);
	config_value_quote(&msg, name, strlen(name));
	if (config_suggest_found(&s))
		buf_append_printf(&msg, " (did you mean \"%.*s%s\"?)", (int)s.best_prefix_len,
		    s.best_prefix, s.best_name);
	config_parse_error(&ld->errs, line, "unknown parameter %s", buf_cstr(&msg));
	buf_free(&msg);
}

/* A TRANSPORT_REST name whose TRANSPORT is not a transport name. */
static void
config_load_bad_transport(struct config_load *ld, const char *name, size_t tlen, unsigned line)
{
	struct buf msg;

	buf_init(&msg, CONFIG_WHY_MAX);
	config_value_quote(&msg, name, strlen(name));
	buf_append_str(&msg, ": bad transport name ");
	config_value_quote(&msg, name, tlen);
	config_parse_error(&ld->errs, line, "%s (use [a-z0-9][a-z0-9_-]*, at most %d bytes)",
	    buf_cstr(&msg), CONFIG_TRANSPORT_NAME_MAX);
	buf_free(&msg);
}

/*
 * Which slot name sets: a global parameter, a listener's override or a
 * transport's. In that order: a known name is always itself, and
 * submission_NAME is a listener override whenever NAME is a parameter.
 */
static bool
config_load_resolve(struct config_load *ld, const char *name, unsigned line,
                    struct config_slot *slot)
{
	const char *prefix;
	unsigned i;

	slot->l = CONFIG_LISTENER_GLOBAL;
	slot->tlen = 0;
	if ((slot->p = config_param_lookup(name)) != CONFIG_PARAM_COUNT)
		return true;
	for (i = 0; i < CONFIG_LISTENER_COUNT; i++) {
		prefix = config_listeners[i].prefix;
		if (prefix == NULL || strncmp(name, prefix, strlen(prefix)) != 0 ||
		    (slot->p = config_param_lookup(name + strlen(prefix))) == CONFIG_PARAM_COUNT)
			continue;
		if (!(config_params[slot->p].flags & CONFIG_F_LISTENER)) {
			config_parse_error(&ld->errs, line, "\"%s\": %s cannot be set per listener",
			    name, config_params[slot->p].name);
			return false;
		}
		slot->l = (enum config_listener)i;
		return true;
	}
	if ((slot->p = config_transport_split(name, &slot->tlen)) != CONFIG_PARAM_COUNT) {
		if (config_transport_valid(name, slot->tlen))
			return true;
		config_load_bad_transport(ld, name, slot->tlen, line);
		return false;
	}
	config_load_unknown(ld, name, line);
	return false;
}

/* Remember a TRANSPORT_REST setting; duplicates are sorted out later. */
static void
config_load_tsetting(struct config_load *ld, const char *name, const struct config_slot *slot,
                     const char *value, unsigned line)
{
	struct config_load_tsetting *t;
	size_t cap;

	if (ld->ntset == ld->tset_cap) {
		cap = ld->tset_cap ? ld->tset_cap * 2 : 8;
		if ((t = reallocarray(ld->tset, cap, sizeof(*t))) == NULL)
			fatal("out of memory (config transport overrides)");
		ld->tset = t;
		ld->tset_cap = cap;
	}
	t = &ld->tset[ld->ntset];
	t->param = slot->p;
	t->line = line;
	t->seq = ld->ntset;
	if ((t->transport = strndup(name, slot->tlen)) == NULL || (t->raw = strdup(value)) == NULL)
		fatal("out of memory (config value of %s)", name);
	ld->ntset++;
}

/* config_parse_setting_fn: remember the value; Postfix: the last one wins. */
static void
config_load_setting(void *arg, const char *name, const char *value, unsigned line)
{
	struct config_load *ld = arg;
	struct config_slot slot;

	if (!config_load_resolve(ld, name, line, &slot))
		return;
	if (slot.tlen > 0) {
		config_load_tsetting(ld, name, &slot, value, line);
		return;
	}
	free(ld->raw[slot.l][slot.p]);
	if ((ld->raw[slot.l][slot.p] = strdup(value)) == NULL)
		fatal("out of memory (config value of %s)", name);
	ld->line[slot.l][slot.p] = line;
}

/* ---- pass 2 and 3: expansion, then typed values ---- */

/* The unexpanded global values: file, else computed default, else table. */
static void
config_load_raw(struct config_load *ld, struct config_expand *x)
{
	size_t p;

	for (p = 0; p < CONFIG_PARAM_COUNT; p++) {
		x->raw[p] = ld->raw[CONFIG_LISTENER_GLOBAL][p];
		if (x->raw[p] == NULL)
			x->raw[p] = ld->def[p] ? ld->def[p] : config_params[p].def;
		x->line[p] = ld->line[CONFIG_LISTENER_GLOBAL][p];
	}
}

/*
 * myhostname and mydomain defaults. mydomain follows myhostname's value
 * even when the file sets it, so myhostname is expanded first, quietly:
 * the real pass reports its problems.
 */
static void
config_load_identity(struct config_load *ld)
{
	struct config_parse_errors quiet = { NULL, ld->errs.file, 0 };
	struct config_expand x;
	const char *host;

	if (ld->raw[CONFIG_LISTENER_GLOBAL][P_MYHOSTNAME] == NULL)
		ld->def[P_MYHOSTNAME] = config_defaults_hostname();
	if (ld->raw[CONFIG_LISTENER_GLOBAL][P_MYDOMAIN] != NULL)
		return;
	config_expand_init(&x, &quiet);
	config_load_raw(ld, &x);
	host = config_expand_param(&x, P_MYHOSTNAME);
	ld->def[P_MYDOMAIN] = config_defaults_domain(host ? host : "");
	config_expand_free(&x);
}

/* Parse text as p's type into v (named name in messages); report each problem. */
static void
config_load_parse(struct config_load *ld, struct config_value *v, const char *name,
                  enum config_param p, const char *text, unsigned line)
{
	const struct config_param_info *info = &config_params[p];
	const char *msg, *nl;
	struct buf why;

	v->line = line;
	buf_init(&why, CONFIG_WHY_MAX);
	if (!config_value_parse(v, info->type, info->flags, info->choices, text, &why)) {
		for (msg = buf_cstr(&why); *msg != '\0'; msg = *nl ? nl + 1 : nl) {
			nl = msg + strcspn(msg, "\n");
			config_parse_error(&ld->errs, line, "%s: %.*s", name, (int)(nl - msg), msg);
		}
		/* A failed parse must fail the load even if it said nothing. */
		if (buf_len(&why) == 0)
			config_parse_error(&ld->errs, line, "%s: bad value", name);
	}
	buf_free(&why);
}

/* Parse text as p's type into the listener's slot. */
static void
config_load_typed(struct config_load *ld, enum config_listener l, enum config_param p,
                  const char *text, unsigned line)
{
	struct config_value *v = &ld->cfg->val[l][p];
	char name[CONFIG_NAME_MAX];

	config_full_name(name, sizeof(name), l, p);
	v->set = l != CONFIG_LISTENER_GLOBAL;
	/* Mail handed back by the filter must not go to it again. */
	if (l == CONFIG_LISTENER_REINJECT && p == P_CONTENT_FILTER && text[0] != '\0') {
		config_parse_error(&ld->errs, line, "%s: the re-injection listener never filters "
		    "(mail would loop back to the filter); leave it empty", name);
		return;
	}
	config_load_parse(ld, v, name, p, text, line);
}

/* The re-injection listener's defaults where the file has no override. */
static void
config_load_reinject_defaults(struct config_load *ld)
{
	size_t i;

	for (i = 0; i < sizeof(config_reinject_defaults) / sizeof(config_reinject_defaults[0]); i++)
		if (ld->raw[CONFIG_LISTENER_REINJECT][config_reinject_defaults[i].param] == NULL)
			config_load_typed(ld, CONFIG_LISTENER_REINJECT, config_reinject_defaults[i].param,
			    config_reinject_defaults[i].value, 0);
}

static void
config_load_overrides(struct config_load *ld, struct config_expand *x)
{
	char name[CONFIG_NAME_MAX];
	struct buf out;
	size_t l, p;

	buf_init(&out, CONFIG_EXPAND_VALUE_MAX);
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		for (p = 0; p < CONFIG_PARAM_COUNT; p++) {
			if (ld->raw[l][p] == NULL || l == CONFIG_LISTENER_GLOBAL)
				continue;
			config_full_name(name, sizeof(name), (enum config_listener)l,
			    (enum config_param)p);
			buf_reset(&out);
			if (config_param_raw((enum config_param)p))
				buf_append_str(&out, ld->raw[l][p]);
			if (config_param_raw((enum config_param)p) ||
			    config_expand_text(x, ld->raw[l][p], name, ld->line[l][p], &out))
				config_load_typed(ld, (enum config_listener)l, (enum config_param)p,
				    buf_cstr(&out), ld->line[l][p]);
		}
	}
	buf_free(&out);
}

/* Order of transport overrides: transport, then table order, then file order. */
static int
config_load_tsetting_cmp(const void *a, const void *b)
{
	const struct config_load_tsetting *x = a, *y = b;
	int d = strcmp(x->transport, y->transport);

	if (d != 0)
		return d;
	if (x->param != y->param)
		return x->param < y->param ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Expand and parse the transport overrides into cfg->tvals, sorted; of
 * one transport's settings of one parameter only the last counts.
 * Ownership of each transport name moves to cfg.
 */
static void
config_load_transports(struct config_load *ld, struct config_expand *x)
{
	struct config_load_tsetting *t;
	struct config_tvalue *tv;
	char name[CONFIG_NAME_MAX];
	struct buf out;
	size_t i;
	int n;

	if (ld->ntset == 0)
		return;
	qsort(ld->tset, ld->ntset, sizeof(*ld->tset), config_load_tsetting_cmp);
	if ((ld->cfg->tvals = calloc(ld->ntset, sizeof(*ld->cfg->tvals))) == NULL)
		fatal("out of memory (config transport overrides)");
	buf_init(&out, CONFIG_EXPAND_VALUE_MAX);
	for (i = 0; i < ld->ntset; i++) {
		t = &ld->tset[i];
		if (i + 1 < ld->ntset && t[1].param == t->param &&
		    strcmp(t[1].transport, t->transport) == 0)
			continue;
		tv = &ld->cfg->tvals[ld->cfg->ntvals++];
		tv->transport = t->transport;
		tv->param = t->param;
		t->transport = NULL;
		n = snprintf(name, sizeof(name), "%s%s", tv->transport,
		    config_transport_rest(t->param));
		if (n < 0 || (size_t)n >= sizeof(name))
			panic("config: transport override %s too long", tv->transport);
		tv->val.set = true;
		buf_reset(&out);
		if (config_expand_text(x, t->raw, name, t->line, &out))
			config_load_parse(ld, &tv->val, name, t->param, buf_cstr(&out), t->line);
	}
	buf_free(&out);
}

/*
 * Is p's default exactly "$other", other being of p's type and already
 * refused? Then p fails for other's reason, which was reported at other's
 * line: saying it again (smtpd_client_event_limit_exceptions, default
 * $mynetworks) would only repeat it without a line.
 */
static bool
config_load_alias_failed(enum config_param p, const bool *failed)
{
	const char *def = config_params[p].def;
	enum config_param q;

	if (def[0] != '$')
		return false;
	q = config_param_lookup(def + 1);
	return q != CONFIG_PARAM_COUNT && q < p && failed[q] &&
	       config_params[q].type == config_params[p].type;
}

static void
config_load_values(struct config_load *ld)
{
	bool failed[CONFIG_PARAM_COUNT] = { false };
	struct config_expand x;
	const char *text;
	unsigned before;
	size_t p;

	config_load_identity(ld);
	config_expand_init(&x, &ld->errs);
	config_load_raw(ld, &x);
	for (p = 0; p < CONFIG_PARAM_COUNT; p++) {
		text = config_expand_param(&x, (enum config_param)p);
		if (text == NULL)
			continue;
		if (x.line[p] == 0 && ld->raw[CONFIG_LISTENER_GLOBAL][p] == NULL &&
		    config_load_alias_failed((enum config_param)p, failed))
			continue;
		before = ld->errs.count;
		config_load_typed(ld, CONFIG_LISTENER_GLOBAL, (enum config_param)p, text, x.line[p]);
		failed[p] = ld->errs.count != before;
	}
	config_load_overrides(ld, &x);
	config_load_reinject_defaults(ld);
	config_load_transports(ld, &x);
	config_expand_free(&x);
}

static void
config_load_release(struct config_load *ld)
{
	size_t l, p;

	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		for (p = 0; p < CONFIG_PARAM_COUNT; p++)
			free(ld->raw[l][p]);
	for (p = 0; p < CONFIG_PARAM_COUNT; p++)
		free(ld->def[p]);
	for (p = 0; p < ld->ntset; p++) {
		free(ld->tset[p].transport);
		free(ld->tset[p].raw);
	}
	free(ld->tset);
}

struct config *
config_load(const char *path, struct buf *errors)
{
	struct config_load ld;
	bool readable = true;

	config_table_check();
	memset(&ld, 0, sizeof(ld));
	if ((ld.cfg = calloc(1, sizeof(*ld.cfg))) == NULL)
		fatal("out of memory (config)");
	ld.errs.out = errors;
	ld.errs.file = path ? path : CONFIG_DEV_LABEL;
	ld.cfg->dev = path == NULL;
	if (path != NULL && (ld.cfg->path = strdup(path)) == NULL)
		fatal("out of memory (config path)");
	if (path == NULL)
		readable = config_defaults_dev(ld.def, &ld.errs);
	else
		readable = config_parse_file(path, config_load_setting, &ld, &ld.errs);
	if (readable)
		config_load_values(&ld);
	config_load_release(&ld);
	if (ld.errs.count > 0) {
		config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void
config_free(struct config *cfg)
{
	size_t l, p;

	if (cfg == NULL)
		return;
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++)
		for (p = 0; p < CONFIG_PARAM_COUNT; p++)
			config_value_free(&cfg->val[l][p]);
	for (p = 0; p < cfg->ntvals; p++) {
		free(cfg->tvals[p].transport);
		config_value_free(&cfg->tvals[p].val);
	}
	free(cfg->tvals);
	free(cfg->path);
	free(cfg);
}

const char *
config_path(const struct config *cfg)
{
	return cfg->path;
}

bool
config_is_dev(const struct config *cfg)
{
	return cfg->dev;
}

/* ---- accessors ---- */

static inline unsigned
config_type_bit(enum config_type t)
{
	return 1u << t;
}

/*
 * The value an accessor reads: the listener's override when it has one,
 * else the global value. types: the config_type_bit()s the accessor
 * reads; anything else is a bug in the caller.
 */
static const struct config_value *
config_get(const struct config *cfg, enum config_listener l, enum config_param p,
           unsigned types, const char *accessor)
{
	const struct config_param_info *info = config_info(p);

	if (cfg == NULL)
		panic("%s(%s): no configuration", accessor, info->name);
	if ((unsigned)l >= CONFIG_LISTENER_COUNT)
		panic("%s(%s): bad listener id %d", accessor, info->name, (int)l);
	if (!(types & config_type_bit(info->type)))
		panic("%s: parameter %s has another type", accessor, info->name);
	if (cfg->val[l][p].set)
		return &cfg->val[l][p];
	return &cfg->val[CONFIG_LISTENER_GLOBAL][p];
}

#define CONFIG_STR_TYPES (config_type_bit(CONFIG_STR) | config_type_bit(CONFIG_ENUM) | \
                          config_type_bit(CONFIG_FILTER) | config_type_bit(CONFIG_RBL_REPLY) | \
                          config_type_bit(CONFIG_MILTERS))
#define CONFIG_INT_TYPES (config_type_bit(CONFIG_INT) | config_type_bit(CONFIG_SIZE))
#define CONFIG_LIST_TYPES (config_type_bit(CONFIG_LIST) | config_type_bit(CONFIG_RESTRICTIONS))

const char *
config_lstr(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return config_get(cfg, l, p, CONFIG_STR_TYPES, "config_str")->text;
}

bool
config_lbool(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return config_get(cfg, l, p, config_type_bit(CONFIG_BOOL), "config_bool")->b;
}

uint64_t
config_lint(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return config_get(cfg, l, p, CONFIG_INT_TYPES, "config_int")->u;
}

int64_t
config_ltime(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return config_get(cfg, l, p, config_type_bit(CONFIG_TIME), "config_time")->t;
}

const struct config_list *
config_llist(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return &config_get(cfg, l, p, CONFIG_LIST_TYPES, "config_list")->list;
}

const struct config_network *
config_lnetworks(const struct config *cfg, enum config_listener l, enum config_param p,
                 size_t *n)
{
	const struct config_value *v;

	v = config_get(cfg, l, p, config_type_bit(CONFIG_NETWORKS), "config_networks");
	*n = v->nnets;
	return v->nets;
}

bool
config_lset(const struct config *cfg, enum config_listener l, enum config_param p)
{
	(void)config_get(cfg, l, p, ~0u, "config_lset");
	return l != CONFIG_LISTENER_GLOBAL && cfg->val[l][p].set;
}

unsigned
config_lline(const struct config *cfg, enum config_listener l, enum config_param p)
{
	return config_get(cfg, l, p, ~0u, "config_line")->line;
}

const char *
config_str(const struct config *cfg, enum config_param p)
{
	return config_lstr(cfg, CONFIG_LISTENER_GLOBAL, p);
}

bool
config_bool(const struct config *cfg, enum config_param p)
{
	return config_lbool(cfg, CONFIG_LISTENER_GLOBAL, p);
}

uint64_t
config_int(const struct config *cfg, enum config_param p)
{
	return config_lint(cfg, CONFIG_LISTENER_GLOBAL, p);
}

int64_t
config_time(const struct config *cfg, enum config_param p)
{
	return config_ltime(cfg, CONFIG_LISTENER_GLOBAL, p);
}

const struct config_list *
config_list(const struct config *cfg, enum config_param p)
{
	return config_llist(cfg, CONFIG_LISTENER_GLOBAL, p);
}

const struct config_network *
config_networks(const struct config *cfg, enum config_param p, size_t *n)
{
	return config_lnetworks(cfg, CONFIG_LISTENER_GLOBAL, p, n);
}

const struct config_listen_addr *
config_listen(const struct config *cfg, enum config_param p, size_t *n)
{
	const struct config_value *v;

	v = config_get(cfg, CONFIG_LISTENER_GLOBAL, p, config_type_bit(CONFIG_LISTEN),
	    "config_listen");
	*n = v->naddrs;
	return v->addrs;
}

const struct config_rate *
config_rates(const struct config *cfg, enum config_param p, size_t *n)
{
	const struct config_value *v;

	v = config_get(cfg, CONFIG_LISTENER_GLOBAL, p, config_type_bit(CONFIG_RATES),
	    "config_rates");
	*n = v->nrates;
	return v->rates;
}

/* bsearch() key: a transport override. */
struct config_tkey {
	const char *transport;
	enum config_param param;
};

static int
config_tkey_cmp(const void *key, const void *elem)
{
	const struct config_tkey *k = key;
	const struct config_tvalue *t = elem;
	int d = strcmp(k->transport, t->transport);

	if (d != 0)
		return d;
	return k->param < t->param ? -1 : k->param > t->param;
}

/* The transport's override of p when it has one, else the global value. */
static const struct config_value *
config_tget(const struct config *cfg, const char *transport, enum config_param p,
            unsigned types, const char *accessor)
{
	const struct config_value *global = config_get(cfg, CONFIG_LISTENER_GLOBAL, p, types,
	    accessor);
	struct config_tkey key = { transport, p };
	const struct config_tvalue *t;

	if (transport == NULL || cfg->ntvals == 0)
		return global;
	t = bsearch(&key, cfg->tvals, cfg->ntvals, sizeof(*cfg->tvals), config_tkey_cmp);
	return t ? &t->val : global;
}

uint64_t
config_tint(const struct config *cfg, const char *transport, enum config_param p)
{
	return config_tget(cfg, transport, p, CONFIG_INT_TYPES, "config_tint")->u;
}

int64_t
config_ttime(const struct config *cfg, const char *transport, enum config_param p)
{
	return config_tget(cfg, transport, p, config_type_bit(CONFIG_TIME), "config_ttime")->t;
}

/* ---- destination_rate_limits ---- */

/* The first rule of kind subdomains for d[0..len), case-insensitively. */
static const struct config_rate *
config_rate_find(const struct config_rate *rates, size_t n, bool subdomains, const char *d,
                 size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rates[i].subdomains == subdomains && strlen(rates[i].domain) == len &&
		    strncasecmp(rates[i].domain, d, len) == 0)
			return &rates[i];
	return NULL;
}

bool
config_rate_lookup(const struct config *cfg, const char *domain, uint64_t *delay_ms)
{
	const struct config_rate *rates, *r;
	const char *dot;
	size_t n, len = strlen(domain);

	rates = config_rates(cfg, P_DESTINATION_RATE_LIMITS, &n);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || n == 0)
		return false;
	r = config_rate_find(rates, n, false, domain, len);
	/* Then .parent rules, the closest parent first. */
	for (dot = memchr(domain, '.', len); r == NULL && dot != NULL;
	    dot = memchr(dot + 1, '.', len - (size_t)(dot + 1 - domain)))
		r = config_rate_find(rates, n, true, dot + 1, len - (size_t)(dot + 1 - domain));
	if (r == NULL)
		return false;
	*delay_ms = r->delay_ms;
	return true;
}

/* ---- content filters ---- */

/* The transports a content filter may name: the agents that reach one. */
static const char *const config_filter_transports[] = { "smtp", "lmtp" };

/* host (a name or an IPv4 address) or [literal], then an optional :port;
 * for lmtp's inet: the brackets are optional as well. */
static bool
config_filter_hostport(const char *s, size_t len, char *why, size_t whysz)
{
	const char *colon;
	size_t hlen;
	unsigned port;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL || close == s + 1) {
			snprintf(why, whysz, "unclosed or empty [host] in the next hop");
			return false;
		}
		hlen = (size_t)(close - s) + 1;
		if (hlen < len && s[hlen] != ':') {
			snprintf(why, whysz, "text after [host] in the next hop");
			return false;
		}
	} else {
		colon = memchr(s, ':', len);
		hlen = colon != NULL ? (size_t)(colon - s) : len;
		if (hlen == 0) {
			snprintf(why, whysz, "no host in the next hop");
			return false;
		}
	}
	if (hlen < len && !config_value_port(s + hlen + 1, len - hlen - 1, &port)) {
		snprintf(why, whysz, "bad port in the next hop (1..65535)");
		return false;
	}
	return true;
}

bool
config_filter_valid(const char *s, size_t len, char *why, size_t whysz)
{
	const char *colon = memchr(s, ':', len), *hop;
	size_t tlen, hlen, i;

	if (len > CONFIG_FILTER_MAX) {
		snprintf(why, whysz, "longer than %d bytes", CONFIG_FILTER_MAX);
		return false;
	}
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f) {
			snprintf(why, whysz, "white space or a byte that is not printable ASCII");
			return false;
		}
	if (colon == NULL || colon + 1 == s + len) {
		snprintf(why, whysz, "not transport:nexthop (e.g. smtp:[127.0.0.1]:10024)");
		return false;
	}
	tlen = (size_t)(colon - s);
	for (i = 0; i < sizeof(config_filter_transports) / sizeof(config_filter_transports[0]); i++)
		if (strlen(config_filter_transports[i]) == tlen &&
		    memcmp(config_filter_transports[i], s, tlen) == 0)
			break;
	if (i == sizeof(config_filter_transports) / sizeof(config_filter_transports[0])) {
		snprintf(why, whysz, "transport \"%.*s\": a content filter is reached with smtp or "
		    "lmtp", (int)(tlen > 64 ? 64 : tlen), s);
		return false;
	}
	hop = colon + 1;
	hlen = len - tlen - 1;
	if (strcmp(config_filter_transports[i], "lmtp") == 0) {
		if (hlen > strlen("unix:") && memcmp(hop, "unix:", strlen("unix:")) == 0) {
			if (hop[strlen("unix:")] != '/') {
				snprintf(why, whysz, "lmtp:unix: needs an absolute path");
				return false;
			}
			return true;
		}
		if (hlen > strlen("inet:") && memcmp(hop, "inet:", strlen("inet:")) == 0)
			return config_filter_hostport(hop + strlen("inet:"), hlen - strlen("inet:"), why,
			    whysz);
		snprintf(why, whysz, "an lmtp next hop is inet:host[:port] or unix:/path");
		return false;
	}
	return config_filter_hostport(hop, hlen, why, whysz);
}

/* ---- networks ---- */

/* Do the first prefix bits of a and b agree? */
static bool
config_prefix_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned full = prefix / CONFIG_BITS_PER_BYTE, rest = prefix % CONFIG_BITS_PER_BYTE;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (CONFIG_BITS_PER_BYTE - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
config_networks_match(const struct config_network *nets, size_t n, int family,
                      const void *addr)
{
	static const unsigned char v4mapped[CONFIG_V4MAPPED_PREFIX_BYTES] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const unsigned char *a = addr;
	bool mapped;
	size_t i;

	/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; they must
	 * still match 127.0.0.0/8. */
	mapped = family == AF_INET6 && memcmp(a, v4mapped, sizeof(v4mapped)) == 0;
	for (i = 0; i < n; i++) {
		if (nets[i].family == family && config_prefix_match(nets[i].addr, a, nets[i].prefix))
			return true;
		if (mapped && nets[i].family == AF_INET &&
		    config_prefix_match(nets[i].addr, a + sizeof(v4mapped), nets[i].prefix))
			return true;
	}
	return false;
}

/* ---- dump ---- */

/* One `name = value` line; '$' doubled so that loading it gives value
 * (not for a raw parameter, which is loaded as written). */
static void
config_dump_line(struct buf *out, const char *prefix, const char *name, const char *value,
    bool raw)
{
	buf_append_printf(out, "%s%s =%s", prefix, name, *value ? " " : "");
	for (; *value != '\0'; value++) {
		if (*value == '$' && !raw)
			buf_append_char(out, '$');
		buf_append_char(out, *value);
	}
	buf_append_char(out, '\n');
}

void
config_dump(const struct config *cfg, struct buf *out)
{
	const struct config_value *v;
	size_t l, p;

	for (p = 0; p < CONFIG_PARAM_COUNT; p++)
		config_dump_line(out, "", config_params[p].name,
		    cfg->val[CONFIG_LISTENER_GLOBAL][p].text ?
		    cfg->val[CONFIG_LISTENER_GLOBAL][p].text : "",
		    config_param_raw((enum config_param)p));
	for (l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		for (p = 0; p < CONFIG_PARAM_COUNT; p++) {
			v = &cfg->val[l][p];
			if (v->set)
				config_dump_line(out, config_listeners[l].prefix,
				    config_params[p].name, v->text,
				    config_param_raw((enum config_param)p));
		}
	}
	for (p = 0; p < cfg->ntvals; p++)
		config_dump_line(out, cfg->tvals[p].transport,
		    config_transport_rest(cfg->tvals[p].param), cfg->tvals[p].val.text, false);
}
