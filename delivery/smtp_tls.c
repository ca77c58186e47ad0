/*
 * smtp_tls: OpenSSL for the outbound SMTP client (see the header for what
 * it owns, its error policy and its ownership rules).
 *
 * Choices, each with its reason (the base every context shares, and its
 * reasons, are common/tlsio.c's):
 *  - TLS 1.2 at least and OpenSSL security level 2 (112-bit keys, no
 *    SHA-1 signatures): RFC 8996 deprecates TLS 1.0 and 1.1. Postfix's
 *    client runs opportunistic TLS at security level 0 and TLS 1.0 and up
 *    ("backwards compatible security as a base for opportunistic TLS",
 *    tls_client.c); we do not, so a TLS-1.1-only server fails the
 *    handshake, which under "may" leads to Postfix's plain-text retry
 *    (smtp_client.c), never to weak TLS.
 *  - No renegotiation: a server's HelloRequest is declined with a warning
 *    alert. No session cache: one connection per job, and no tlsmgr.
 *  - SSL_VERIFY_NONE: the handshake always completes and the verification
 *    result is read afterwards (header).
 */
#include "delivery/smtp_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"

/* RFC 1035 2.3.4: 255 octets on the wire, 253 characters as text. */
#define SMTP_TLS_HOST_SIZE 256

struct smtp_tls_ctx {
	SSL_CTX *ssl_ctx;
};

/* Most reference names of one connection (verify's match= list). */
#define SMTP_TLS_NAMES_MAX 8

struct smtp_tls_conn {
	struct tlsio io;
	char host[SMTP_TLS_HOST_SIZE];	/* "" when none or a literal */
	/* When set (smtp_tls_conn_apply): the names checked instead of host. */
	size_t n_names;
	char names[SMTP_TLS_NAMES_MAX][SMTP_TLS_HOST_SIZE];
	bool dane;			/* DANE with usable TLSA records */
};

static const char *const smtp_tls_level_names[] = {
	[SMTP_TLS_NONE] = "none",
	[SMTP_TLS_MAY] = "may",
	[SMTP_TLS_ENCRYPT] = "encrypt",
	[SMTP_TLS_VERIFY] = "verify",
	[SMTP_TLS_DANE] = "dane",
	[SMTP_TLS_DANE_ONLY] = "dane-only",
};

#define SMTP_TLS_NLEVELS (sizeof(smtp_tls_level_names) / sizeof(smtp_tls_level_names[0]))

int
smtp_tls_level_parse(const char *s, enum smtp_tls_level *out)
{
	for (size_t i = 0; i < SMTP_TLS_NLEVELS; i++)
		if (s != NULL && strcasecmp(s, smtp_tls_level_names[i]) == 0) {
			*out = (enum smtp_tls_level)i;
			return 0;
		}
	return -1;
}

const char *
smtp_tls_level_name(enum smtp_tls_level level)
{
	if ((unsigned)level >= SMTP_TLS_NLEVELS)
		panic("smtp_tls: level %d out of range", (int)level);
	return smtp_tls_level_names[level];
}

bool
smtp_tls_host_is_literal(const char *host)
{
	unsigned char a[16];

	return host != NULL &&
	       (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1);
}

/* ---- the context ---- */

static SSL_CTX *
smtp_tls_ssl_ctx_new(char *err, size_t errsz)
{
	SSL_CTX *sc = tlsio_ctx_new(false, err, errsz);

	if (sc == NULL)
		return NULL;
	SSL_CTX_set_verify(sc, SSL_VERIFY_NONE, NULL);
	/* DANE state for the connections that use it (SSL_dane_enable()
	 * per connection); RFC 7672 section 3.1.1: a DANE-EE(3) match says
	 * nothing about names, so no name checks for it (as OpenSSL advises
	 * SMTP clients, SSL_CTX_dane_enable(3)). */
	if (SSL_CTX_dane_enable(sc) <= 0) {
		tlsio_error_text(err, errsz, "cannot enable DANE");
		SSL_CTX_free(sc);
		return NULL;
	}
	SSL_CTX_dane_set_flags(sc, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	return sc;
}

/* Load cafile's certificates as trust anchors; 0, or -1 with why. */
static int
smtp_tls_load_ca(SSL_CTX *sc, const char *cafile, char *why, size_t whysz)
{
	FILE *f;
	int c;

	/* Our own check first, for a plain errno text instead of OpenSSL's
	 * "system library" wording. */
	f = fopen(cafile, "r");
	if (f == NULL) {
		snprintf(why, whysz, "%s", strerror(errno));
		return -1;
	}
	c = getc(f);
	if (c == EOF && ferror(f)) {
		snprintf(why, whysz, "%s", strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	if (c == EOF) {
		snprintf(why, whysz, "the file is empty");
		return -1;
	}
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(sc, cafile, NULL) != 1) {
		unsigned long e = ERR_peek_last_error();
		const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

		snprintf(why, whysz, "%s", reason != NULL ? reason : "no certificate found");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

enum smtp_tls_ctx_status
smtp_tls_ctx_new(const char *cafile, bool ca_required, struct smtp_tls_ctx **out, char *err,
                 size_t errsz)
{
	struct smtp_tls_ctx *ctx;
	SSL_CTX *sc;
	char why[256];
	enum smtp_tls_ctx_status st = SMTP_TLS_CTX_OK;

	*out = NULL;
	if (errsz > 0)
		err[0] = '\0';
	sc = smtp_tls_ssl_ctx_new(err, errsz);
	if (sc == NULL)
		return SMTP_TLS_CTX_FAILED;
	if (cafile == NULL || cafile[0] == '\0') {
		if (ca_required) {
			snprintf(err, errsz, "cannot load Certificate Authority data: "
			         "smtp_tls_CAfile is empty");
			SSL_CTX_free(sc);
			return SMTP_TLS_CTX_FAILED;
		}
	} else if (smtp_tls_load_ca(sc, cafile, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "cannot load Certificate Authority data, CAfile=\"%s\": %s",
		         cafile, why);
		SSL_CTX_free(sc);
		if (ca_required)
			return SMTP_TLS_CTX_FAILED;
		/* A fresh context: a file that failed half-way may have
		 * left some anchors behind. */
		sc = smtp_tls_ssl_ctx_new(why, sizeof(why));
		if (sc == NULL) {
			snprintf(err, errsz, "%s", why);
			return SMTP_TLS_CTX_FAILED;
		}
		st = SMTP_TLS_CTX_NO_CA;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		fatal("out of memory");
	ctx->ssl_ctx = sc;
	*out = ctx;
	return st;
}

void
smtp_tls_ctx_free(struct smtp_tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

/* ---- one connection ---- */

struct smtp_tls_conn *
smtp_tls_conn_new(struct smtp_tls_ctx *ctx, int fd, const char *host, char *err, size_t errsz)
{
	struct smtp_tls_conn *t = calloc(1, sizeof(*t));
	size_t n;

	if (t == NULL)
		fatal("out of memory");
	if (host != NULL && !smtp_tls_host_is_literal(host)) {
		n = strlen(host);
		if (n > 0 && host[n - 1] == '.')
			n--;	/* the root's dot is not part of a certificate name */
		if (n > 0 && n < sizeof(t->host)) {
			memcpy(t->host, host, n);
			t->host[n] = '\0';
		}
	}
	if (tlsio_init(&t->io, ctx->ssl_ctx, fd, false, err, errsz) < 0) {
		free(t);
		return NULL;
	}
	if (t->host[0] != '\0' && SSL_set_tlsext_host_name(tlsio_ssl(&t->io), t->host) != 1) {
		tlsio_error_text(err, errsz, "cannot set up the TLS connection");
		smtp_tls_conn_free(t);
		return NULL;
	}
	return t;
}

/* The high grade: OpenSSL's HIGH TLS 1.2 ciphers with authentication
 * and no weak MAC (TLS 1.3's suites are all strong). */
#define SMTP_TLS_HIGH_CIPHERS "HIGH:!aNULL:!eNULL:!MD5:!SHA1:!kRSA"

int
smtp_tls_conn_apply(struct smtp_tls_conn *t, const struct smtp_tls_conn_opts *o, char *err,
                    size_t errsz)
{
	SSL *ssl = tlsio_ssl(&t->io);
	size_t i, usable = 0;

	if ((o->min_version != 0 && SSL_set_min_proto_version(ssl, o->min_version) != 1) ||
	    (o->max_version != 0 && SSL_set_max_proto_version(ssl, o->max_version) != 1)) {
		tlsio_error_text(err, errsz, "cannot set the TLS protocol range");
		return -1;
	}
	if (o->high_ciphers && SSL_set_cipher_list(ssl, SMTP_TLS_HIGH_CIPHERS) != 1) {
		tlsio_error_text(err, errsz, "cannot set the cipher list");
		return -1;
	}
	t->n_names = 0;
	for (i = 0; i < o->n_names && t->n_names < SMTP_TLS_NAMES_MAX; i++) {
		size_t n = strlen(o->names[i]);

		if (n == 0 || n >= SMTP_TLS_HOST_SIZE)
			continue;
		memcpy(t->names[t->n_names++], o->names[i], n + 1);
	}
	if (o->dane == NULL || o->dane_base == NULL)
		return 0;
	/* SNI is the TLSA base domain (RFC 7672 section 8.1). */
	if (SSL_set_tlsext_host_name(ssl, o->dane_base) != 1 ||
	    SSL_dane_enable(ssl, o->dane_base) <= 0) {
		tlsio_error_text(err, errsz, "cannot enable DANE");
		return -1;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (i = 0; i < t->n_names; i++)
		if (strcmp(t->names[i], o->dane_base) != 0 && SSL_add1_host(ssl, t->names[i]) != 1) {
			tlsio_error_text(err, errsz, "cannot add a DANE reference name");
			return -1;
		}
	for (i = 0; i < o->dane->n; i++) {
		const struct smtp_tls_tlsa *r = &o->dane->rr[i];
		int rc = SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len);

		if (rc < 0) {
			tlsio_error_text(err, errsz, "cannot add a TLSA record");
			return -1;
		}
		usable += rc > 0;
	}
	ERR_clear_error();
	if (usable == 0) {
		/* smtp_tls_tlsa_usable() let through what OpenSSL refuses. */
		snprintf(err, errsz, "no TLSA record usable by OpenSSL");
		return -1;
	}
	t->dane = true;
	return 0;
}

void
smtp_tls_conn_free(struct smtp_tls_conn *t)
{
	if (t == NULL)
		return;
	tlsio_release(&t->io);
	free(t);
}

enum smtp_tls_io
smtp_tls_conn_handshake(struct smtp_tls_conn *t, char *err, size_t errsz)
{
	return (enum smtp_tls_io)tlsio_handshake(&t->io, err, errsz);
}

enum smtp_tls_io
smtp_tls_conn_read(struct smtp_tls_conn *t, void *buf, size_t len, size_t *got, char *err,
                   size_t errsz)
{
	return (enum smtp_tls_io)tlsio_read(&t->io, buf, len, got, err, errsz);
}

enum smtp_tls_io
smtp_tls_conn_write(struct smtp_tls_conn *t, const void *buf, size_t len, size_t *put, char *err,
                    size_t errsz)
{
	return (enum smtp_tls_io)tlsio_write(&t->io, buf, len, put, err, errsz);
}

size_t
smtp_tls_conn_pending(const struct smtp_tls_conn *t)
{
	return tlsio_pending(&t->io);
}

void
smtp_tls_conn_close_notify(struct smtp_tls_conn *t)
{
	tlsio_close_notify(&t->io);
}

/* ---- the peer ---- */

/* Postfix's words for a verification error (tls_verify.c,
 * tls_log_verify_error()). */
static void
smtp_tls_verify_why(SSL *ssl, long verr, char *why, size_t whysz)
{
	char name[256];
	STACK_OF(X509) *chain;
	X509 *top;

	switch (verr) {
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(why, whysz, "not trusted by local or TLSA policy");
		return;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(why, whysz, "self-signed certificate");
		return;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		/* The issuer of the highest certificate the chain got to. */
		chain = SSL_get0_verified_chain(ssl);
		top = chain != NULL && sk_X509_num(chain) > 0
		      ? sk_X509_value(chain, sk_X509_num(chain) - 1) : NULL;
		if (top != NULL)
			X509_NAME_oneline(X509_get_issuer_name(top), name, sizeof(name));
		else
			snprintf(name, sizeof(name), "<unknown>");
		snprintf(why, whysz, "untrusted issuer %s", name);
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		snprintf(why, whysz, "certificate not yet valid");
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		snprintf(why, whysz, "certificate has expired");
		return;
	case X509_V_ERR_INVALID_PURPOSE:
		snprintf(why, whysz, "not designated for use as a server certificate");
		return;
	default:
		snprintf(why, whysz, "num=%ld:%s", verr, X509_verify_cert_error_string(verr));
		return;
	}
}

void
smtp_tls_conn_peer(struct smtp_tls_conn *t, bool check_name, struct smtp_tls_peer *out)
{
	SSL *ssl = tlsio_ssl(&t->io);
	X509 *cert = SSL_get1_peer_certificate(ssl);
	struct tlsio_summary sum;
	long verr;

	memset(out, 0, sizeof(*out));
	tlsio_summary(&t->io, &sum);
	snprintf(out->protocol, sizeof(out->protocol), "%s", sum.protocol);
	snprintf(out->cipher, sizeof(out->cipher), "%s", sum.cipher);
	out->bits = sum.bits;
	out->alg_bits = sum.alg_bits;
	if (cert == NULL) {
		snprintf(out->why, sizeof(out->why), "no server certificate");
		return;
	}
	out->cert = true;
	verr = SSL_get_verify_result(ssl);
	out->trusted = verr == X509_V_OK;
	out->dane = t->dane;
	if (!out->trusted) {
		smtp_tls_verify_why(ssl, verr, out->why, sizeof(out->why));
	} else if (t->dane) {
		/* OpenSSL verified the chain against the TLSA records only
		 * (usages 2 and 3 never consult the CA file) and checked the
		 * names for DANE-TA. */
		out->matched = SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
		if (!out->matched)
			snprintf(out->why, sizeof(out->why), "not trusted by local or TLSA policy");
	} else if (check_name && t->n_names > 0) {
		for (size_t i = 0; i < t->n_names && !out->matched; i++)
			out->matched = X509_check_host(cert, t->names[i], 0,
			                               X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
		if (!out->matched)
			snprintf(out->why, sizeof(out->why),
			         "server certificate name does not match %s%s", t->names[0],
			         t->n_names > 1 ? " or the other match= names" : "");
	} else if (check_name) {
		/* X509_check_host(3): dNSNames first, the CommonName only
		 * without them; NO_PARTIAL_WILDCARDS keeps "*" to a whole
		 * label, as Postfix's match_hostname() does. */
		out->matched = t->host[0] != '\0' &&
		               X509_check_host(cert, t->host, 0,
		                               X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
		if (!out->matched)
			snprintf(out->why, sizeof(out->why),
			         "server certificate name does not match %s",
			         t->host[0] != '\0' ? t->host : "an address literal");
	}
	X509_free(cert);
	ERR_clear_error();
}

const char *
smtp_tls_peer_trust(const struct smtp_tls_peer *p)
{
	if (!p->cert)
		return "Anonymous";
	if (p->matched)
		return "Verified";
	return p->trusted ? "Trusted" : "Untrusted";
}
