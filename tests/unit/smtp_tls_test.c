/*
 * Unit tests for delivery/smtp_tls.c: level names, address literals, the
 * context's CA file errors (one row per bad file), and real handshakes
 * over a socketpair against an in-process OpenSSL server with certificates
 * made here: trust and name matching (one row per certificate name and
 * host), SNI, several replies in one record, a write that blocks and is
 * retried with more data behind it, a close_notify and a bare EOF, and a
 * server that only speaks TLS 1.1.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "delivery/smtp_tls.h"

/* ---- levels and literals ---- */

static const struct {
	const char *text;
	int ret;
	enum smtp_tls_level level;
} level_rows[] = {
	{ "none", 0, SMTP_TLS_NONE },
	{ "may", 0, SMTP_TLS_MAY },
	{ "encrypt", 0, SMTP_TLS_ENCRYPT },
	{ "verify", 0, SMTP_TLS_VERIFY },
	{ "MAY", 0, SMTP_TLS_MAY },
	{ "Verify", 0, SMTP_TLS_VERIFY },
	{ "dane", 0, SMTP_TLS_DANE },
	{ "DANE-only", 0, SMTP_TLS_DANE_ONLY },
	/* Postfix levels tern does not have, and near misses */
	{ "secure", -1, SMTP_TLS_NONE },
	{ "dane_only", -1, SMTP_TLS_NONE },
	{ "fingerprint", -1, SMTP_TLS_NONE },
	{ "", -1, SMTP_TLS_NONE },
	{ "may ", -1, SMTP_TLS_NONE },
	{ "encrypted", -1, SMTP_TLS_NONE },
	{ NULL, -1, SMTP_TLS_NONE },
};

START_TEST(test_levels)
{
	enum smtp_tls_level l = SMTP_TLS_NONE;
	int r = smtp_tls_level_parse(level_rows[_i].text, &l);

	ck_assert_msg(r == level_rows[_i].ret, "row %d (%s): %d", _i,
	              level_rows[_i].text ? level_rows[_i].text : "NULL", r);
	if (r == 0)
		ck_assert_int_eq(l, level_rows[_i].level);
}
END_TEST

START_TEST(test_level_names)
{
	static const char *const names[] = { "none", "may", "encrypt", "verify", "dane",
		                             "dane-only" };

	for (int i = 0; i < 6; i++) {
		enum smtp_tls_level l;

		ck_assert_str_eq(smtp_tls_level_name((enum smtp_tls_level)i), names[i]);
		ck_assert_int_eq(smtp_tls_level_parse(names[i], &l), 0);
		ck_assert_int_eq(l, i);
	}
	ck_assert(!smtp_tls_level_required(SMTP_TLS_NONE));
	ck_assert(!smtp_tls_level_required(SMTP_TLS_MAY));
	ck_assert(smtp_tls_level_required(SMTP_TLS_ENCRYPT));
	ck_assert(smtp_tls_level_required(SMTP_TLS_VERIFY));
	ck_assert(smtp_tls_level_required(SMTP_TLS_DANE));
}
END_TEST

static const struct {
	const char *host;
	bool literal;
} literal_rows[] = {
	{ "192.0.2.7", true },
	{ "2001:db8::7", true },
	{ "::1", true },
	{ "::ffff:192.0.2.7", true },
	{ "mx.example.org", false },
	{ "192.0.2.7.example.org", false },
	{ "192.0.2", false },		/* inet_pton takes only dotted quads */
	{ "[192.0.2.7]", false },	/* callers strip the brackets */
	{ "", false },
	{ NULL, false },
};

START_TEST(test_literals)
{
	ck_assert_msg(smtp_tls_host_is_literal(literal_rows[_i].host) == literal_rows[_i].literal,
	              "row %d", _i);
}
END_TEST

/* ---- certificates made here ---- */

static char tmpdir[] = "/tmp/tern-smtp-tls-test-XXXXXX";
static int serial = 1;

static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(k);
	return k;
}

static void
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A self-signed certificate as `openssl req -x509` makes one (fakemx.py):
 * CN, optional subjectAltName ("DNS:a,DNS:b"), CA:TRUE. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	if (san != NULL)
		add_ext(x, NID_subject_alt_name, san);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

static char *
write_file(const char *name, const char *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static char *
write_cert(const char *name, X509 *x)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
	return path;
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	(void)system(cmd);
}

/* ---- the context: CA file rows ---- */

enum ca_kind { CA_NONE, CA_MISSING, CA_EMPTY, CA_GARBAGE, CA_DIR, CA_GOOD, CA_GOOD_THEN_GARBAGE };

static const struct {
	enum ca_kind kind;
	bool required;
	enum smtp_tls_ctx_status want;
	const char *why;	/* in err; NULL: err must be "" */
} ca_rows[] = {
	{ CA_NONE, false, SMTP_TLS_CTX_OK, NULL },
	{ CA_NONE, true, SMTP_TLS_CTX_FAILED, "smtp_tls_CAfile is empty" },
	{ CA_MISSING, false, SMTP_TLS_CTX_NO_CA, "No such file or directory" },
	{ CA_MISSING, true, SMTP_TLS_CTX_FAILED, "No such file or directory" },
	{ CA_EMPTY, true, SMTP_TLS_CTX_FAILED, "the file is empty" },
	{ CA_EMPTY, false, SMTP_TLS_CTX_NO_CA, "the file is empty" },
	{ CA_GARBAGE, true, SMTP_TLS_CTX_FAILED, "CAfile=\"" },
	{ CA_GARBAGE, false, SMTP_TLS_CTX_NO_CA, "cannot load Certificate Authority data" },
	{ CA_DIR, true, SMTP_TLS_CTX_FAILED, "Is a directory" },
	{ CA_GOOD, true, SMTP_TLS_CTX_OK, NULL },
	{ CA_GOOD, false, SMTP_TLS_CTX_OK, NULL },
	{ CA_GOOD_THEN_GARBAGE, true, SMTP_TLS_CTX_FAILED, "cannot load" },
};

static const char *
ca_file(enum ca_kind kind)
{
	static char path[256];
	static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
	                              "-----END CERTIFICATE-----\n";
	EVP_PKEY *k;
	X509 *x;
	BIO *b;
	BUF_MEM *m;

	switch (kind) {
	case CA_NONE:
		return "";
	case CA_MISSING:
		snprintf(path, sizeof(path), "%s/nothing-here.pem", tmpdir);
		return path;
	case CA_EMPTY:
		return write_file("empty.pem", "", 0);
	case CA_GARBAGE:
		return write_file("garbage.pem", garbage, sizeof(garbage) - 1);
	case CA_DIR:
		return tmpdir;
	case CA_GOOD:
	case CA_GOOD_THEN_GARBAGE:
		k = make_key();
		x = make_cert(k, "ca.example.test", NULL);
		b = BIO_new(BIO_s_mem());
		PEM_write_bio_X509(b, x);
		if (kind == CA_GOOD_THEN_GARBAGE)
			BIO_write(b, garbage, (int)sizeof(garbage) - 1);
		BIO_get_mem_ptr(b, &m);
		snprintf(path, sizeof(path), "%s", write_file("ca.pem", m->data, m->length));
		BIO_free(b);
		X509_free(x);
		EVP_PKEY_free(k);
		return path;
	}
	return NULL;
}

START_TEST(test_ctx_rows)
{
	struct smtp_tls_ctx *ctx = (void *)1;
	char err[600];
	const char *path = ca_file(ca_rows[_i].kind);
	enum smtp_tls_ctx_status st = smtp_tls_ctx_new(path, ca_rows[_i].required, &ctx, err,
	                                               sizeof(err));

	ck_assert_msg(st == ca_rows[_i].want, "row %d: status %d want %d (%s)", _i, (int)st,
	              (int)ca_rows[_i].want, err);
	if (st == SMTP_TLS_CTX_FAILED)
		ck_assert_ptr_null(ctx);
	else
		ck_assert_ptr_nonnull(ctx);
	if (ca_rows[_i].why == NULL) {
		ck_assert_msg(err[0] == '\0', "row %d: err \"%s\"", _i, err);
	} else {
		ck_assert_msg(strstr(err, ca_rows[_i].why) != NULL, "row %d: err \"%s\" lacks \"%s\"",
		              _i, err, ca_rows[_i].why);
		/* a file's error names the file */
		if (path[0] != '\0')
			ck_assert_msg(strstr(err, path) != NULL, "row %d: err \"%s\"", _i, err);
	}
	smtp_tls_ctx_free(ctx);
}
END_TEST

/* ---- handshakes over a socketpair ---- */

struct pair {
	int cfd, sfd;
	SSL_CTX *sctx;
	SSL *srv;
	struct smtp_tls_ctx *ctx;
	struct smtp_tls_conn *cli;
	char sni[256];
};

static int
sni_cb(SSL *s, int *al, void *arg)
{
	struct pair *p = arg;
	const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	(void)al;
	snprintf(p->sni, sizeof(p->sni), "%s", name != NULL ? name : "");
	return SSL_TLSEXT_ERR_OK;
}

/*
 * A server with key/cert (max_version 0: any) and a client trusting
 * cafile ("" none) that talks to host, over a non-blocking socketpair.
 */
static void
pair_open(struct pair *p, EVP_PKEY *key, X509 *cert, int max_version, const char *cafile,
          const char *host)
{
	int sv[2];
	char err[600];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	p->cfd = sv[0];
	p->sfd = sv[1];
	/* small buffers, so that a big write blocks */
	ck_assert_int_eq(setsockopt(p->cfd, SOL_SOCKET, SO_SNDBUF, &(int){ 8192 }, sizeof(int)), 0);
	ck_assert_int_eq(setsockopt(p->sfd, SOL_SOCKET, SO_RCVBUF, &(int){ 8192 }, sizeof(int)), 0);
	p->sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(p->sctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(p->sctx, cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(p->sctx, key), 1);
	if (max_version != 0) {
		/* TLS 1.1 needs SHA-1, which only security level 0 allows. */
		SSL_CTX_set_security_level(p->sctx, 0);
		SSL_CTX_set_min_proto_version(p->sctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(p->sctx, max_version);
	}
	SSL_CTX_set_tlsext_servername_callback(p->sctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(p->sctx, p);
	p->srv = SSL_new(p->sctx);
	SSL_set_fd(p->srv, p->sfd);
	SSL_set_accept_state(p->srv);
	ck_assert_int_ne(smtp_tls_ctx_new(cafile, false, &p->ctx, err, sizeof(err)),
	                 SMTP_TLS_CTX_FAILED);
	p->cli = smtp_tls_conn_new(p->ctx, p->cfd, host, err, sizeof(err));
	ck_assert_msg(p->cli != NULL, "%s", err);
}

static void
pair_close(struct pair *p)
{
	smtp_tls_conn_free(p->cli);
	smtp_tls_ctx_free(p->ctx);
	if (p->srv != NULL)
		SSL_free(p->srv);
	SSL_CTX_free(p->sctx);
	close(p->cfd);
	if (p->sfd >= 0)
		close(p->sfd);
}

/* Step both sides until the client's handshake ends; its result. */
static enum smtp_tls_io
pair_handshake(struct pair *p, char *err, size_t errsz)
{
	for (int i = 0; i < 100; i++) {
		enum smtp_tls_io r = smtp_tls_conn_handshake(p->cli, err, errsz);

		if (r != SMTP_TLS_IO_WANT_READ && r != SMTP_TLS_IO_WANT_WRITE)
			return r;
		(void)SSL_accept(p->srv);
		ERR_clear_error();
	}
	ck_abort_msg("handshake did not end");
	return SMTP_TLS_IO_ERROR;
}

/* Let the server finish its side (it reads the client's Finished). */
static void
server_settle(struct pair *p)
{
	char b[1];

	(void)SSL_read(p->srv, b, 0);
	ERR_clear_error();
}

static const struct {
	const char *cn;
	const char *san;	/* NULL: none */
	bool trust;		/* the client's CA file holds the certificate */
	const char *host;	/* what the client connects to */
	const char *word;	/* smtp_tls_peer_trust() with check_name */
	const char *why;	/* in peer.why; "" when verified */
	const char *sni;	/* what the server saw */
} peer_rows[] = {
	{ "mx.verify.test", "DNS:mx.verify.test", true, "mx.verify.test", "Verified", "",
	  "mx.verify.test" },
	/* case and the root's dot do not matter */
	{ "mx.verify.test", "DNS:MX.Verify.Test", true, "mx.verify.test.", "Verified", "",
	  "mx.verify.test" },
	/* dNSNames first: a matching CommonName does not count beside them */
	{ "mx.verify.test", "DNS:other.verify.test", true, "mx.verify.test", "Trusted",
	  "server certificate name does not match mx.verify.test", "mx.verify.test" },
	/* no dNSName: the CommonName */
	{ "mx.verify.test", NULL, true, "mx.verify.test", "Verified", "", "mx.verify.test" },
	{ "mx.verify.test", NULL, true, "mx2.verify.test", "Trusted",
	  "server certificate name does not match mx2.verify.test", "mx2.verify.test" },
	/* "*" is one whole left-most label */
	{ "w", "DNS:*.verify.test", true, "mx.verify.test", "Verified", "", "mx.verify.test" },
	{ "w", "DNS:*.verify.test", true, "a.mx.verify.test", "Trusted", "does not match",
	  "a.mx.verify.test" },
	{ "w", "DNS:*.verify.test", true, "verify.test", "Trusted", "does not match",
	  "verify.test" },
	{ "w", "DNS:m*.verify.test", true, "mx.verify.test", "Trusted", "does not match",
	  "mx.verify.test" },
	/* one of several names */
	{ "w", "DNS:a.test,DNS:mx.verify.test", true, "mx.verify.test", "Verified", "",
	  "mx.verify.test" },
	/* an address literal: no SNI, no name */
	{ "127.0.0.1", "IP:127.0.0.1", true, "127.0.0.1", "Trusted",
	  "does not match an address literal", "" },
	/* not in the CA file: untrusted whatever the name */
	{ "mx.verify.test", "DNS:mx.verify.test", false, "mx.verify.test", "Untrusted",
	  "self-signed certificate", "mx.verify.test" },
};

START_TEST(test_peer_rows)
{
	struct pair p;
	struct smtp_tls_peer peer;
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, peer_rows[_i].cn, peer_rows[_i].san);
	EVP_PKEY *other_key = make_key();
	X509 *other = make_cert(other_key, peer_rows[_i].cn, peer_rows[_i].san);
	const char *cafile = write_cert("ca.pem", peer_rows[_i].trust ? cert : other);

	pair_open(&p, key, cert, 0, cafile, peer_rows[_i].host);
	ck_assert_int_eq(pair_handshake(&p, err, sizeof(err)), SMTP_TLS_IO_OK);
	smtp_tls_conn_peer(p.cli, true, &peer);
	ck_assert(peer.cert);
	ck_assert_int_eq(peer.trusted, peer_rows[_i].trust);
	ck_assert_msg(strcmp(smtp_tls_peer_trust(&peer), peer_rows[_i].word) == 0,
	              "row %d: %s want %s (%s)", _i, smtp_tls_peer_trust(&peer), peer_rows[_i].word,
	              peer.why);
	if (peer_rows[_i].why[0] == '\0')
		ck_assert_str_eq(peer.why, "");
	else
		ck_assert_msg(strstr(peer.why, peer_rows[_i].why) != NULL, "row %d: why \"%s\"", _i,
		              peer.why);
	ck_assert_str_eq(p.sni, peer_rows[_i].sni);
	ck_assert_str_eq(peer.protocol, "TLSv1.3");
	ck_assert(peer.cipher[0] != '\0');
	ck_assert_int_ge(peer.bits, 128);
	/* without name checks a trusted chain is "Trusted", never "Verified" */
	smtp_tls_conn_peer(p.cli, false, &peer);
	ck_assert_str_eq(smtp_tls_peer_trust(&peer), peer_rows[_i].trust ? "Trusted" : "Untrusted");
	pair_close(&p);
	X509_free(cert);
	X509_free(other);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
}
END_TEST

/* Read everything the client can get now. */
/* ---- DANE and per-connection options (smtp_tls_conn_apply) ---- */

static const struct {
	const char *cn;		/* the server certificate's only name */
	bool expired;		/* its notAfter is in the past */
	int usage, selector;	/* of the TLSA record; -1: no DANE */
	bool match;		/* the record's digest is the server's */
	int max_version;	/* the client's protocols= (0: default) */
	bool high;		/* ciphers=high */
	const char *word;	/* smtp_tls_peer_trust() */
	const char *why;	/* in peer.why */
	const char *protocol;
} dane_rows[] = {
	/* DANE-EE: no name check (RFC 7672 section 3.1.1) */
	{ "mx.dane.test", false, 3, 1, true, 0, false, "Verified", "", "TLSv1.3" },
	{ "somewhere.else", false, 3, 1, true, 0, false, "Verified", "", "TLSv1.3" },
	{ "somewhere.else", false, 3, 0, true, 0, false, "Verified", "", "TLSv1.3" },
	/* ... and no expiry check */
	{ "mx.dane.test", true, 3, 1, true, 0, false, "Verified", "", "TLSv1.3" },
	{ "mx.dane.test", false, 3, 1, false, 0, false, "Untrusted", "num=65:", "TLSv1.3" },
	{ "mx.dane.test", true, 3, 1, false, 0, false, "Untrusted", "", "TLSv1.3" },
	/* protocols and ciphers, without DANE */
	{ "mx.dane.test", false, -1, 0, false, TLS1_2_VERSION, true, "Untrusted", "", "TLSv1.2" },
};

/* SHA2-256 of the certificate (selector 0) or its SubjectPublicKeyInfo (1). */
static void
tlsa_digest(X509 *x, int selector, unsigned char out[32])
{
	unsigned char der[2048], *p = der;
	int n = selector == 0 ? i2d_X509(x, &p) : i2d_PUBKEY(X509_get0_pubkey(x), &p);
	unsigned int len = 0;

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(len, 32);
}

START_TEST(test_dane_rows)
{
	struct pair p;
	struct smtp_tls_peer peer;
	struct smtp_tls_dane dane;
	struct smtp_tls_conn_opts o;
	const char *names[] = { "mx.dane.test", "dane.test" };
	unsigned char digest[32];
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, dane_rows[_i].cn, NULL);

	if (dane_rows[_i].expired) {
		X509_gmtime_adj(X509_getm_notBefore(cert), -7200);
		X509_gmtime_adj(X509_getm_notAfter(cert), -3600);
		ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);
	}
	pair_open(&p, key, cert, 0, "", "mx.dane.test");
	memset(&o, 0, sizeof(o));
	memset(&dane, 0, sizeof(dane));
	o.max_version = dane_rows[_i].max_version;
	o.high_ciphers = dane_rows[_i].high;
	o.names = names;
	o.n_names = 2;
	if (dane_rows[_i].usage >= 0) {
		tlsa_digest(cert, dane_rows[_i].selector, digest);
		if (!dane_rows[_i].match)
			digest[0] ^= 1;
		dane.n = 1;
		dane.rr[0] = (struct smtp_tls_tlsa){ .usage = (uint8_t)dane_rows[_i].usage,
			                             .selector = (uint8_t)dane_rows[_i].selector,
			                             .mtype = 1, .len = 32, .data = digest };
		o.dane = &dane;
		o.dane_base = "base.dane.test";
	}
	ck_assert_int_eq(smtp_tls_conn_apply(p.cli, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(pair_handshake(&p, err, sizeof(err)), SMTP_TLS_IO_OK);
	smtp_tls_conn_peer(p.cli, false, &peer);
	ck_assert_msg(strcmp(smtp_tls_peer_trust(&peer), dane_rows[_i].word) == 0,
	              "row %d: %s want %s (%s)", _i, smtp_tls_peer_trust(&peer), dane_rows[_i].word,
	              peer.why);
	ck_assert_msg(strstr(peer.why, dane_rows[_i].why) != NULL, "row %d: why \"%s\"", _i,
	              peer.why);
	ck_assert_int_eq(peer.dane, dane_rows[_i].usage >= 0);
	ck_assert_str_eq(peer.protocol, dane_rows[_i].protocol);
	/* SNI: the TLSA base domain under DANE (RFC 7672 section 8.1) */
	ck_assert_str_eq(p.sni, dane_rows[_i].usage >= 0 ? "base.dane.test" : "mx.dane.test");
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_dane_unusable_rejected)
{
	struct pair p;
	struct smtp_tls_dane dane;
	struct smtp_tls_conn_opts o;
	unsigned char junk[5] = { 1, 2, 3, 4, 5 };
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, "mx.dane.test", NULL);

	pair_open(&p, key, cert, 0, "", "mx.dane.test");
	memset(&o, 0, sizeof(o));
	memset(&dane, 0, sizeof(dane));
	/* A Full(0) SPKI that does not parse: OpenSSL takes none. */
	dane.n = 1;
	dane.rr[0] = (struct smtp_tls_tlsa){ .usage = 3, .selector = 1, .mtype = 0, .len = 5,
		                             .data = junk };
	o.dane = &dane;
	o.dane_base = "mx.dane.test";
	ck_assert_int_eq(smtp_tls_conn_apply(p.cli, &o, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no TLSA record usable by OpenSSL");
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

static size_t
client_drain(struct pair *p, char *buf, size_t bufsz, enum smtp_tls_io *last)
{
	size_t total = 0;
	char err[300];

	for (;;) {
		size_t got = 0;
		enum smtp_tls_io r = smtp_tls_conn_read(p->cli, buf + total, bufsz - total, &got, err,
		                                        sizeof(err));

		if (r != SMTP_TLS_IO_OK) {
			*last = r;
			return total;
		}
		total += got;
		ck_assert_uint_le(total, bufsz);
		if (total == bufsz) {
			*last = SMTP_TLS_IO_OK;
			return total;
		}
	}
}

START_TEST(test_io)
{
	struct pair p;
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, "mx.io.test", "DNS:mx.io.test");
	static const char replies[] = "250-mx.io.test\r\n250 PIPELINING\r\n354 go on\r\n";
	static char big[200 * 1024], got[200 * 1024];
	enum smtp_tls_io last;
	size_t n, sent = 0, recvd = 0;
	int blocked = 0;

	pair_open(&p, key, cert, 0, "", "mx.io.test");
	ck_assert_int_eq(pair_handshake(&p, err, sizeof(err)), SMTP_TLS_IO_OK);
	server_settle(&p);

	/* nothing yet: WANT_READ */
	n = client_drain(&p, got, sizeof(got), &last);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(last, SMTP_TLS_IO_WANT_READ);

	/* three replies in one record come out in one read */
	ck_assert_int_eq(SSL_write(p.srv, replies, (int)strlen(replies)), (int)strlen(replies));
	n = client_drain(&p, got, sizeof(got), &last);
	ck_assert_uint_eq(n, strlen(replies));
	ck_assert(memcmp(got, replies, n) == 0);
	ck_assert_int_eq(last, SMTP_TLS_IO_WANT_READ);

	/* a small read leaves the rest pending inside OpenSSL */
	ck_assert_int_eq(SSL_write(p.srv, replies, (int)strlen(replies)), (int)strlen(replies));
	ck_assert_int_eq(smtp_tls_conn_read(p.cli, got, 5, &n, err, sizeof(err)), SMTP_TLS_IO_OK);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(smtp_tls_conn_pending(p.cli), strlen(replies) - 5);
	n = client_drain(&p, got + 5, sizeof(got) - 5, &last);
	ck_assert_uint_eq(n + 5, strlen(replies));
	ck_assert_uint_eq(smtp_tls_conn_pending(p.cli), 0);

	/* a big write blocks on the socket buffer; the retry passes the same
	 * bytes with more behind them, as a growing FIFO does */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	while (sent < sizeof(big)) {
		size_t have = sent + 64 * 1024 < sizeof(big) ? sent + 64 * 1024 : sizeof(big);
		enum smtp_tls_io r = smtp_tls_conn_write(p.cli, big + sent, have - sent, &n, err,
		                                         sizeof(err));

		if (r == SMTP_TLS_IO_OK) {
			ck_assert_uint_gt(n, 0);
			ck_assert_uint_le(n, have - sent);
			sent += n;
			continue;
		}
		ck_assert_int_eq(r, SMTP_TLS_IO_WANT_WRITE);
		blocked++;
		for (;;) {
			int m = SSL_read(p.srv, got + recvd, (int)(sizeof(got) - recvd));

			if (m <= 0)
				break;
			recvd += (size_t)m;
		}
		ERR_clear_error();
	}
	for (int i = 0; i < 1000 && recvd < sizeof(big); i++) {
		int m = SSL_read(p.srv, got + recvd, (int)(sizeof(got) - recvd));

		if (m > 0)
			recvd += (size_t)m;
		ERR_clear_error();
	}
	ck_assert_int_gt(blocked, 0);
	ck_assert_uint_eq(recvd, sizeof(big));
	ck_assert(memcmp(got, big, sizeof(big)) == 0);

	/* close_notify from the server: CLOSED */
	ck_assert_int_ge(SSL_shutdown(p.srv), 0);
	n = client_drain(&p, got, sizeof(got), &last);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(last, SMTP_TLS_IO_CLOSED);
	smtp_tls_conn_close_notify(p.cli);	/* harmless after the peer's */
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_eof)
{
	struct pair p;
	char err[300], got[100];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, "mx.eof.test", NULL);
	enum smtp_tls_io last;

	pair_open(&p, key, cert, 0, "", "mx.eof.test");
	ck_assert_int_eq(pair_handshake(&p, err, sizeof(err)), SMTP_TLS_IO_OK);
	server_settle(&p);
	/* the server vanishes without close_notify: CLOSED too */
	close(p.sfd);
	p.sfd = -1;
	ck_assert_uint_eq(client_drain(&p, got, sizeof(got), &last), 0);
	ck_assert_int_eq(last, SMTP_TLS_IO_CLOSED);
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_old_server)
{
	struct pair p;
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, "mx.old.test", NULL);
	enum smtp_tls_io r;

	/* TLS 1.1 at most: below our TLS 1.2 floor */
	pair_open(&p, key, cert, TLS1_1_VERSION, "", "mx.old.test");
	r = pair_handshake(&p, err, sizeof(err));
	ck_assert_msg(r == SMTP_TLS_IO_ERROR || r == SMTP_TLS_IO_CLOSED, "%d", (int)r);
	ck_assert_msg(strstr(err, "protocol") != NULL || strstr(err, "lost connection") != NULL,
	              "err \"%s\"", err);
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_no_sni_for_null_host)
{
	struct pair p;
	struct smtp_tls_peer peer;
	char err[300];
	EVP_PKEY *key = make_key();
	X509 *cert = make_cert(key, "mx.null.test", NULL);

	pair_open(&p, key, cert, 0, "", NULL);
	ck_assert_int_eq(pair_handshake(&p, err, sizeof(err)), SMTP_TLS_IO_OK);
	ck_assert_str_eq(p.sni, "");
	smtp_tls_conn_peer(p.cli, true, &peer);
	ck_assert(!peer.matched);
	pair_close(&p);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

int
main(void)
{
	Suite *s;
	TCase *names = tcase_create("names");
	TCase *ctx = tcase_create("ctx");
	TCase *conn = tcase_create("conn");
	SRunner *sr;
	int failed;

	/* As the smtp agent does: a write to a closed peer is an error. */
	signal(SIGPIPE, SIG_IGN);
	s = suite_create("smtp_tls");
	tcase_add_loop_test(names, test_levels, 0, (int)(sizeof(level_rows) / sizeof(level_rows[0])));
	tcase_add_test(names, test_level_names);
	tcase_add_loop_test(names, test_literals, 0,
	                    (int)(sizeof(literal_rows) / sizeof(literal_rows[0])));
	tcase_add_checked_fixture(ctx, setup, teardown);
	tcase_add_loop_test(ctx, test_ctx_rows, 0, (int)(sizeof(ca_rows) / sizeof(ca_rows[0])));
	tcase_add_checked_fixture(conn, setup, teardown);
	tcase_add_loop_test(conn, test_peer_rows, 0, (int)(sizeof(peer_rows) / sizeof(peer_rows[0])));
	tcase_add_loop_test(conn, test_dane_rows, 0, (int)(sizeof(dane_rows) / sizeof(dane_rows[0])));
	tcase_add_test(conn, test_dane_unusable_rejected);
	tcase_add_test(conn, test_io);
	tcase_add_test(conn, test_eof);
	tcase_add_test(conn, test_old_server);
	tcase_add_test(conn, test_no_sni_for_null_host);
	suite_add_tcase(s, names);
	suite_add_tcase(s, ctx);
	suite_add_tcase(s, conn);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
