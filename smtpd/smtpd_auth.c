/*
 * smtpd_auth: the back-end independent part of SMTP AUTH (smtpd_auth.h
 * says what and why): the set of back ends per listener, the exchange
 * and its time limit, and the parsers of the AUTH command.
 *
 * Errors: parsers return -1; building a set returns NULL with a message.
 * An answer from a back end that breaks the rules (a challenge that is
 * not base64, no username) becomes a temporary failure, never a crash:
 * the back end is a peer, not a sibling.
 */
#include "smtpd/smtpd_auth.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "common/log.h"
#include "smtpd/smtpd_auth_impl.h"

struct smtpd_auth_set {
	struct smtpd_auth_backend *by_listener[CONFIG_LISTENER_COUNT];
	/* Distinct back ends (listeners may share one); one reference each. */
	struct smtpd_auth_backend *owned[CONFIG_LISTENER_COUNT];
	size_t nowned;
};

/* ---- back ends and the set ---- */

void
smtpd_auth_backend_init(struct smtpd_auth_backend *b, const struct smtpd_auth_ops *ops,
                        struct evloop *loop, const char *setting)
{
	b->ops = ops;
	b->loop = loop;
	b->refs = 1;
	b->timeout_ms = SMTPD_AUTH_TIMEOUT_MS;
	snprintf(b->setting, sizeof(b->setting), "%s", setting);
}

void
smtpd_auth_backend_unref(struct smtpd_auth_backend *b)
{
	if (b == NULL)
		return;
	if (b->refs == 0)
		panic("smtpd_auth: back end reference count underflow");
	if (--b->refs == 0)
		b->ops->free(b);
}

/* Take a back end with this setting out of set (for reuse), or NULL. */
static struct smtpd_auth_backend *
smtpd_auth_set_take(struct smtpd_auth_set *set, const char *setting, const char *type,
                    size_t *slot)
{
	size_t i;

	if (set == NULL)
		return NULL;
	for (i = 0; i < set->nowned; i++) {
		struct smtpd_auth_backend *b = set->owned[i];

		if (b == NULL || strcmp(b->ops->name, type) != 0)
			continue;
		/* Cyrus initialises once per process: there is only ever one,
		 * whatever its setting (smtpd_auth_cyrus.c). */
		if (strcmp(type, "cyrus") != 0 && strcmp(b->setting, setting) != 0)
			continue;
		set->owned[i] = NULL;
		*slot = i;
		return b;
	}
	return NULL;
}

/* Find a back end already in set with this setting (listeners share). */
static struct smtpd_auth_backend *
smtpd_auth_set_find(struct smtpd_auth_set *set, const char *setting, const char *type)
{
	for (size_t i = 0; i < set->nowned; i++)
		if (strcmp(set->owned[i]->ops->name, type) == 0 &&
		    (strcmp(type, "cyrus") == 0 || strcmp(set->owned[i]->setting, setting) == 0))
			return set->owned[i];
	return NULL;
}

/*
 * What a listener's back end is built from. Dovecot: the socket path,
 * relative to queue_directory unless absolute (as Postfix resolves
 * "private/auth"). Cyrus: the application name and the config path
 * (cyrus_sasl_config_path, else sasl/ beside the configuration file, then
 * /etc/sasl2).
 */
static int
smtpd_auth_setting(const struct config *cfg, enum config_listener l, const char *config_dir,
                   char *path, size_t pathsz, char *confpath, size_t confsz, char *err,
                   size_t errsz)
{
	const char *type = config_lstr(cfg, l, P_SMTPD_SASL_TYPE);
	const char *p = config_lstr(cfg, l, P_SMTPD_SASL_PATH);
	const char *cp;
	int n;

	confpath[0] = '\0';
	if (strcmp(type, "dovecot") == 0) {
		if (p[0] == '/')
			n = snprintf(path, pathsz, "%s", p);
		else
			n = snprintf(path, pathsz, "%s/%s", config_str(cfg, P_QUEUE_DIRECTORY), p);
		if (n < 0 || (size_t)n >= pathsz || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errsz, "%s: Dovecot auth socket path too long: %s",
			         config_param_name(P_SMTPD_SASL_PATH), p);
			return -1;
		}
		return 0;
	}
	n = snprintf(path, pathsz, "%s", p);
	cp = config_str(cfg, P_CYRUS_SASL_CONFIG_PATH);
	if (cp[0] != '\0')
		n = snprintf(confpath, confsz, "%s", cp);
	else if (config_dir != NULL)
		n = snprintf(confpath, confsz, "%s/sasl:/etc/sasl2", config_dir);
	else
		n = snprintf(confpath, confsz, "/etc/sasl2");
	if (n < 0 || (size_t)n >= confsz || path[0] == '\0') {
		snprintf(err, errsz, "%s or %s unusable", config_param_name(P_SMTPD_SASL_PATH),
		         config_param_name(P_CYRUS_SASL_CONFIG_PATH));
		return -1;
	}
	return 0;
}

struct smtpd_auth_set *
smtpd_auth_set_new(struct evloop *loop, const struct config *cfg, const char *config_dir,
                   struct smtpd_auth_set *old, char *err, size_t errsz)
{
	struct smtpd_auth_set *set = calloc(1, sizeof(*set));
	char path[PATH_MAX], confpath[PATH_MAX], setting[sizeof(((struct smtpd_auth_backend *)0)->setting)];
	bool from_old[CONFIG_LISTENER_COUNT] = { false };
	size_t from_old_slot[CONFIG_LISTENER_COUNT] = { 0 };
	enum config_listener l;

	if (set == NULL)
		fatal("out of memory (auth)");
	for (l = CONFIG_LISTENER_SMTP; l < CONFIG_LISTENER_COUNT; l++) {
		const char *type = config_lstr(cfg, l, P_SMTPD_SASL_TYPE);
		struct smtpd_auth_backend *b;

		if (!config_lbool(cfg, l, P_SMTPD_SASL_AUTH_ENABLE))
			continue;
		if (smtpd_auth_setting(cfg, l, config_dir, path, sizeof(path), confpath,
		    sizeof(confpath), err, errsz) < 0)
			goto fail;
		snprintf(setting, sizeof(setting), "%s|%s", path, confpath);
		if ((b = smtpd_auth_set_find(set, setting, type)) == NULL) {
			b = smtpd_auth_set_take(old, setting, type, &from_old_slot[set->nowned]);
			from_old[set->nowned] = b != NULL;
			if (b == NULL && strcmp(type, "dovecot") == 0)
				b = smtpd_auth_dovecot_new(loop, path, setting, err, errsz);
			else if (b == NULL)
				b = smtpd_auth_cyrus_new(loop, path, confpath, setting, err, errsz);
			if (b == NULL)
				goto fail;
			set->owned[set->nowned++] = b;
		}
		if (strcmp(type, "cyrus") == 0 && strcmp(b->setting, setting) != 0)
			log_warning("%s listener: Cyrus SASL is set up once per process, as %s; "
			            "%s and %s take effect after a restart",
			            config_listener_name(l), b->setting,
			            config_param_name(P_SMTPD_SASL_PATH),
			            config_param_name(P_CYRUS_SASL_CONFIG_PATH));
		set->by_listener[l] = b;
	}
	smtpd_auth_set_free(old);
	return set;
fail:
	/* Give what was taken from old back to it: the caller keeps old. */
	for (size_t i = 0; i < set->nowned; i++) {
		if (from_old[i])
			old->owned[from_old_slot[i]] = set->owned[i];
		else
			smtpd_auth_backend_unref(set->owned[i]);
	}
	free(set);
	return NULL;
}

void
smtpd_auth_set_free(struct smtpd_auth_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->nowned; i++)
		smtpd_auth_backend_unref(set->owned[i]);
	free(set);
}

struct smtpd_auth_backend *
smtpd_auth_backend_of(struct smtpd_auth_set *set, enum config_listener l)
{
	if (set == NULL || (int)l < 0 || l >= CONFIG_LISTENER_COUNT)
		return NULL;
	return set->by_listener[l];
}

const char *
smtpd_auth_mechs(struct smtpd_auth_backend *b)
{
	return b->ops->mechs(b);
}

bool
smtpd_auth_mech_offered(struct smtpd_auth_backend *b, const char *mech)
{
	const char *p = smtpd_auth_mechs(b);
	size_t n = strlen(mech);

	while (*p != '\0') {
		size_t w = strcspn(p, " ");

		if (w == n && strncasecmp(p, mech, n) == 0)
			return true;
		p += w;
		p += strspn(p, " ");
	}
	return false;
}

/* ---- the exchange ---- */

static void
smtpd_auth_deliver(struct smtpd_auth *a)
{
	struct smtpd_auth_result r;

	memset(&r, 0, sizeof(r));
	r.status = a->status;
	r.challenge = a->challenge;
	r.username = a->username;
	r.reason = a->reason;
	a->waiting = false;
	a->posted = false;
	evloop_timer_stop(a->b->loop, &a->timer);
	a->cb(a->arg, &r);
}

static void
smtpd_auth_timer(struct ev_timer *t)
{
	struct smtpd_auth *a = t->arg;

	if (a->posted) {
		smtpd_auth_deliver(a);
		return;
	}
	/* The back end did not answer in time: it forgets the exchange (a
	 * late answer finds no one) and the client hears 454. */
	a->b->ops->forget(a);
	a->status = SMTPD_AUTH_TEMPFAIL;
	snprintf(a->reason, sizeof(a->reason), "authentication server timed out");
	smtpd_auth_deliver(a);
}

/* Check and store the answer; false when it was turned into TEMPFAIL. */
static void
smtpd_auth_store(struct smtpd_auth *a, enum smtpd_auth_status st, const char *text, size_t len)
{
	a->status = st;
	a->challenge[0] = a->username[0] = a->reason[0] = '\0';
	if (text == NULL)
		len = 0;
	switch (st) {
	case SMTPD_AUTH_CONTINUE:
		if (len > SMTPD_AUTH_DATA_MAX || !smtpd_auth_base64_valid(text, len)) {
			a->status = SMTPD_AUTH_TEMPFAIL;
			snprintf(a->reason, sizeof(a->reason),
			         "malformed challenge from the authentication server");
			break;
		}
		memcpy(a->challenge, text, len);
		a->challenge[len] = '\0';
		break;
	case SMTPD_AUTH_OK:
		if (len == 0 || len > SMTPD_AUTH_USERNAME_MAX) {
			a->status = SMTPD_AUTH_TEMPFAIL;
			snprintf(a->reason, sizeof(a->reason), "%s username from the "
			         "authentication server", len == 0 ? "no" : "over-long");
			break;
		}
		smtpd_auth_printable(text, len, a->username, sizeof(a->username));
		break;
	case SMTPD_AUTH_FAIL:
	case SMTPD_AUTH_TEMPFAIL:
		if (len > 0)
			smtpd_auth_printable(text, len, a->reason, sizeof(a->reason));
		else
			snprintf(a->reason, sizeof(a->reason), "%s",
			         st == SMTPD_AUTH_FAIL ? "authentication failure" :
			         "authentication server unavailable");
		break;
	}
}

void
smtpd_auth_finish(struct smtpd_auth *a, enum smtpd_auth_status st, const char *text, size_t len)
{
	if (!a->waiting || a->posted)
		panic("smtpd_auth: answer without a question");
	smtpd_auth_store(a, st, text, len);
	smtpd_auth_deliver(a);
}

void
smtpd_auth_post(struct smtpd_auth *a, enum smtpd_auth_status st, const char *text, size_t len)
{
	if (!a->waiting || a->posted)
		panic("smtpd_auth: answer without a question");
	smtpd_auth_store(a, st, text, len);
	a->posted = true;
	evloop_timer_start(a->b->loop, &a->timer, 0);
}

struct smtpd_auth *
smtpd_auth_start(struct smtpd_auth_backend *b, const struct smtpd_auth_peer *peer,
                 const char *mech, const char *initial, smtpd_auth_done_fn *cb, void *arg)
{
	struct smtpd_auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		fatal("out of memory (auth)");
	a->b = b;
	b->refs++;
	a->cb = cb;
	a->arg = arg;
	evloop_timer_init(&a->timer, smtpd_auth_timer, a);
	snprintf(a->client_addr, sizeof(a->client_addr), "%s", peer->client_addr);
	snprintf(a->server_addr, sizeof(a->server_addr), "%s", peer->server_addr);
	a->client_port = peer->client_port;
	a->server_port = peer->server_port;
	a->tls = peer->tls;
	snprintf(a->mech, sizeof(a->mech), "%s", mech);
	a->waiting = true;
	evloop_timer_start(b->loop, &a->timer, b->timeout_ms);
	b->ops->start(a, a->mech, initial);
	return a;
}

void
smtpd_auth_step(struct smtpd_auth *a, const char *response)
{
	if (a->waiting)
		panic("smtpd_auth: step while waiting for the back end");
	a->waiting = true;
	evloop_timer_start(a->b->loop, &a->timer, a->b->timeout_ms);
	a->b->ops->step(a, response);
}

const char *
smtpd_auth_mech(const struct smtpd_auth *a)
{
	return a->mech;
}

void
smtpd_auth_free(struct smtpd_auth *a)
{
	if (a == NULL)
		return;
	evloop_timer_stop(a->b->loop, &a->timer);
	a->b->ops->forget(a);
	smtpd_auth_backend_unref(a->b);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* ---- parsers ---- */

static bool
smtpd_auth_mech_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

int
smtpd_auth_parse_command(const char *args, size_t len, char mech[SMTPD_AUTH_MECH_MAX + 1],
                         const char **initial, size_t *initial_len)
{
	size_t i = 0, start, k;

	mech[0] = '\0';
	*initial = NULL;
	*initial_len = 0;
	while (i < len && args[i] == ' ')
		i++;
	for (start = i; i < len && args[i] != ' '; i++)
		if (!smtpd_auth_mech_char(args[i]))
			return -1;
	if (i == start || i - start > SMTPD_AUTH_MECH_MAX)
		return -1;
	for (k = 0; k < i - start; k++) {
		char c = args[start + k];
		mech[k] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	}
	mech[k] = '\0';
	while (i < len && args[i] == ' ')
		i++;
	if (i == len)
		return 0;
	for (start = i; i < len && args[i] != ' '; i++)
		;
	while (i < len && args[i] == ' ')
		i++;
	if (i != len)
		return -1;	/* a third argument */
	*initial = args + start;
	*initial_len = len - start;
	while (*initial_len > 0 && (*initial)[*initial_len - 1] == ' ')
		(*initial_len)--;
	return 0;
}

static int
smtpd_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
smtpd_auth_base64_decode(const char *p, size_t len, unsigned char *out, size_t outsz)
{
	size_t i, o = 0;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (p[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = smtpd_b64_value(p[i + k])) < 0)
				return -1;	/* bad character, or data after "=" */
		}
		/* RFC 4648 section 3.5: the bits padding discards must be 0,
		 * so every text decodes from exactly one encoding. */
		if ((pad == 2 && (v[1] & 0x0f) != 0) || (pad == 1 && (v[2] & 0x03) != 0))
			return -1;
		if (o + 3 - (size_t)pad > outsz)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	return (long)o;
}

bool
smtpd_auth_base64_valid(const char *p, size_t len)
{
	unsigned char block[3];

	if (len % 4 != 0)
		return false;
	/* Decode block by block into a scratch buffer: the same rules,
	 * without needing room for the whole result. */
	for (size_t i = 0; i < len; i += 4)
		if (smtpd_auth_base64_decode(p + i, 4, block, sizeof(block)) < 0 ||
		    (i + 4 < len && p[i + 3] == '='))
			return false;
	return true;
}

long
smtpd_auth_base64_encode(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	if (outsz == 0 || (len + 2) / 3 * 4 >= outsz)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = alphabet[p[i] >> 2];
		out[o++] = alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4];
		out[o++] = alphabet[(p[i + 1] & 0x0f) << 2 | p[i + 2] >> 6];
		out[o++] = alphabet[p[i + 2] & 0x3f];
	}
	if (i < len) {
		out[o++] = alphabet[p[i] >> 2];
		if (i + 1 < len) {
			out[o++] = alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4];
			out[o++] = alphabet[(p[i + 1] & 0x0f) << 2];
		} else {
			out[o++] = alphabet[(p[i] & 0x03) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

void
smtpd_auth_printable(const char *p, size_t len, char *dst, size_t dstsz)
{
	size_t i;

	if (dstsz == 0)
		return;
	for (i = 0; i < len && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)p[i];
		dst[i] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	dst[i] = '\0';
}
