/*
 * smtp_sasl: the Cyrus SASL client glue (smtp_sasl.h says what and why).
 */
#include "delivery/smtp_sasl.h"

#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* Largest challenge or response, decoded (RFC 4954 sets no limit; the
 * mechanisms Cyrus offers a password client stay far below this). */
#define SMTP_SASL_DATA_MAX 8192

struct smtp_sasl {
	sasl_conn_t *conn;
	char user[SMTP_SASL_CRED_MAX + 1];
	sasl_secret_t *secret;
	sasl_callback_t callbacks[4];
};

static bool sasl_ready;

int
smtp_sasl_init(char *err, size_t errsz)
{
	int rc;

	if (sasl_ready)
		return 0;
	rc = sasl_client_init(NULL);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "SASL library initialization failed: %s",
		         sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	sasl_ready = true;
	return 0;
}

int
smtp_sasl_security_flags(const struct config_list *words, unsigned *flags, char *err, size_t errsz)
{
	static const struct { const char *name; unsigned flag; } table[] = {
		{ "noplaintext", SASL_SEC_NOPLAINTEXT },
		{ "noactive", SASL_SEC_NOACTIVE },
		{ "nodictionary", SASL_SEC_NODICTIONARY },
		{ "noanonymous", SASL_SEC_NOANONYMOUS },
		{ "mutual_auth", SASL_SEC_MUTUAL_AUTH },
	};

	*flags = 0;
	for (size_t i = 0; i < words->n; i++) {
		size_t k;

		for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)
			if (strcasecmp(words->items[i], table[k].name) == 0)
				break;
		if (k == sizeof(table) / sizeof(table[0])) {
			snprintf(err, errsz,
			         "unknown SASL security option \"%s\" (noplaintext, noactive, "
			         "nodictionary, noanonymous, mutual_auth)", words->items[i]);
			return -1;
		}
		*flags |= table[k].flag;
	}
	return 0;
}

int
smtp_sasl_split_credentials(const char *value, char user[SMTP_SASL_CRED_MAX + 1],
                            char password[SMTP_SASL_CRED_MAX + 1])
{
	const char *colon = strchr(value, ':');

	if (colon == NULL || (size_t)(colon - value) > SMTP_SASL_CRED_MAX ||
	    strlen(colon + 1) > SMTP_SASL_CRED_MAX)
		return -1;
	memcpy(user, value, (size_t)(colon - value));
	user[colon - value] = '\0';
	strcpy(password, colon + 1);
	return 0;
}

/* ---- Cyrus callbacks: the credentials, never a prompt ---- */

static int
cb_name(void *ctx, int id, const char **result, unsigned *len)
{
	struct smtp_sasl *s = ctx;

	if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
		return SASL_BADPARAM;
	*result = s->user;
	if (len != NULL)
		*len = (unsigned)strlen(s->user);
	return SASL_OK;
}

static int
cb_pass(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **secret)
{
	struct smtp_sasl *s = ctx;

	(void)conn;
	if (id != SASL_CB_PASS)
		return SASL_BADPARAM;
	*secret = s->secret;
	return SASL_OK;
}

typedef int (*sasl_cb_fn)(void);

/* Base64 of len bytes at p into out (appended). */
static int
encode64(const char *p, unsigned len, struct buf *out, char *err, size_t errsz)
{
	unsigned cap = 4 * ((len + 2) / 3) + 1, n = 0;
	char *tmp = malloc(cap);
	int rc;

	if (tmp == NULL)
		fatal("out of memory");
	rc = sasl_encode64(p, len, tmp, cap, &n);
	if (rc == SASL_OK && buf_append(out, tmp, n) != BUF_OK)
		rc = SASL_BUFOVER;
	free(tmp);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "cannot encode a response: %s", sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	return 0;
}

int
smtp_sasl_start(const char *host, const char *user, const char *password, const char *mechs,
                unsigned sec_flags, struct smtp_sasl **out_sasl, struct buf *out,
                const char **mech, char *err, size_t errsz)
{
	struct smtp_sasl *s;
	sasl_security_properties_t props;
	const char *clientout = NULL;
	unsigned clientoutlen = 0;
	size_t plen = strlen(password);
	int rc;

	*out_sasl = NULL;
	if (strlen(user) > SMTP_SASL_CRED_MAX || plen > SMTP_SASL_CRED_MAX) {
		snprintf(err, errsz, "credentials too long");
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->secret = malloc(sizeof(sasl_secret_t) + plen + 1)) == NULL)
		fatal("out of memory");
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->secret->len = (unsigned long)plen;
	memcpy(s->secret->data, password, plen + 1);
	s->callbacks[0] = (sasl_callback_t){ SASL_CB_USER, (sasl_cb_fn)(void (*)(void))cb_name, s };
	s->callbacks[1] = (sasl_callback_t){ SASL_CB_AUTHNAME, (sasl_cb_fn)(void (*)(void))cb_name, s };
	s->callbacks[2] = (sasl_callback_t){ SASL_CB_PASS, (sasl_cb_fn)(void (*)(void))cb_pass, s };
	s->callbacks[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };

	rc = sasl_client_new("smtp", host, NULL, NULL, s->callbacks, 0, &s->conn);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "per-session SASL initialization failed: %s",
		         sasl_errstring(rc, NULL, NULL));
		smtp_sasl_free(s);
		return -1;
	}
	/* No SASL security layer: TLS is ours, and a layer would have to
	 * wrap every byte after AUTH (Postfix's max_ssf = 0 likewise). */
	memset(&props, 0, sizeof(props));
	props.security_flags = sec_flags;
	rc = sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "cannot set security properties: %s", sasl_errdetail(s->conn));
		smtp_sasl_free(s);
		return -1;
	}
	rc = sasl_client_start(s->conn, mechs, NULL, &clientout, &clientoutlen, mech);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		if (rc == SASL_NOMECH)
			snprintf(err, errsz, "no mechanism available");
		else
			snprintf(err, errsz, "%s", sasl_errdetail(s->conn));
		smtp_sasl_free(s);
		return -1;
	}
	if (buf_append_printf(out, "AUTH %s", *mech) != BUF_OK)
		goto too_long;
	if (clientout != NULL) {
		/* RFC 4954 section 4: an empty initial response is "=". */
		if (clientoutlen == 0) {
			if (buf_append_str(out, " =") != BUF_OK)
				goto too_long;
		} else if (buf_append_char(out, ' ') != BUF_OK ||
		           encode64(clientout, clientoutlen, out, err, errsz) < 0) {
			smtp_sasl_free(s);
			return -1;
		}
	}
	*out_sasl = s;
	return 0;
too_long:
	snprintf(err, errsz, "AUTH command too long");
	smtp_sasl_free(s);
	return -1;
}

int
smtp_sasl_step(struct smtp_sasl *s, const char *challenge, struct buf *out, char *err,
               size_t errsz)
{
	char dec[SMTP_SASL_DATA_MAX];
	unsigned declen = 0, clientoutlen = 0;
	const char *clientout = NULL;
	size_t clen = strlen(challenge);
	int rc;

	if (clen > 4 * (sizeof(dec) / 3)) {
		snprintf(err, errsz, "SASL challenge too long");
		return -1;
	}
	rc = sasl_decode64(challenge, (unsigned)clen, dec, sizeof(dec), &declen);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "malformed SASL challenge from server");
		return -1;
	}
	rc = sasl_client_step(s->conn, dec, declen, NULL, &clientout, &clientoutlen);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		snprintf(err, errsz, "%s", sasl_errdetail(s->conn));
		return -1;
	}
	if (clientout == NULL || clientoutlen == 0)
		return 0;
	return encode64(clientout, clientoutlen, out, err, errsz);
}

void
smtp_sasl_free(struct smtp_sasl *s)
{
	if (s == NULL)
		return;
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	if (s->secret != NULL) {
		explicit_bzero(s->secret->data, s->secret->len);
		free(s->secret);
	}
	explicit_bzero(s->user, sizeof(s->user));
	free(s);
}
