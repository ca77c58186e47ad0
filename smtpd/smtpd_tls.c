/*
 * smtpd_tls: TLS in the listener (see the header for the three parts,
 * which process runs each, and the error policy).
 *
 * Choices, each with its reason (the base every context shares is
 * common/tlsio.c's: TLS 1.2 or later, security level 2, no renegotiation,
 * no compression):
 *  - Ciphers: for TLS 1.2, ECDHE key exchange with AEAD ciphers only
 *    (Mozilla's "intermediate" list without its DHE entries: we configure
 *    no DH parameters); for TLS 1.3 OpenSSL's suites. Groups X25519,
 *    P-256, P-384. The server's order wins, so a client that offers a
 *    weak first choice still gets the strongest common one. Postfix
 *    accepts TLS 1.0 and "medium" ciphers for opportunistic TLS; a client
 *    that cannot do TLS 1.2 fails the handshake here, and an MTA then
 *    retries in plain text (doc/smtpd_tls.md).
 *  - No session resumption (no tickets, no cache): a ticket key would have
 *    to be shared and rotated, and a mail client reconnects rarely enough
 *    that a full handshake is cheap. num_tickets 0 also keeps TLS 1.3 from
 *    sending tickets after the handshake.
 *  - No client certificates are asked for, so every TLS session is
 *    "Anonymous" in Postfix's log words.
 *  - The handshake runs under smtpd_timeout, counted from the STARTTLS
 *    command (or the smtps connect) to its end: a client that stalls it
 *    costs a descriptor and a timer, never the loop.
 *  - CVE-2011-0411 (command injection): whatever the client pipelined
 *    behind STARTTLS in plain text is dropped with the input buffer, and
 *    nothing more is read as plain text: bytes still in the kernel reach
 *    the TLS engine as handshake garbage and fail it.
 *
 * Ownership: struct smtpd_tls_keys owns (and wipes) its PEM copies; struct
 * smtpd_tls_server owns its SSL_CTXs; a session's struct smtpd_tls_session
 * is freed by smtpd_tls_session_free(), called from the session's free.
 */
#include "smtpd/smtpd_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/tlsio.h"
#include "smtpd/smtpd_auth_cmd.h"
#include "smtpd/smtpd_ratelimit.h"
#include "smtpd/smtpd_session_impl.h"

/* TLS 1.2 ciphers (openssl-ciphers(1) names), strongest key exchange
 * and AEAD only; TLS 1.3 suites are OpenSSL's defaults. */
#define SMTPD_TLS_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define SMTPD_TLS_GROUPS "X25519:P-256:P-384"
/* One-line reasons from OpenSSL or the file system. */
#define SMTPD_TLS_ERR_MAX 300
/* The file name in messages about the development defaults (config.c's). */
#define SMTPD_TLS_DEV_LABEL "(development defaults)"

struct smtpd_tls_pem {
	char *data;		/* owned, wiped on free */
	size_t len;
};

struct smtpd_tls_keys {
	bool have[CONFIG_LISTENER_COUNT];
	struct smtpd_tls_pem cert[CONFIG_LISTENER_COUNT];
	struct smtpd_tls_pem key[CONFIG_LISTENER_COUNT];
};

struct smtpd_tls_server {
	SSL_CTX *ctx[CONFIG_LISTENER_COUNT];	/* NULL: no certificate */
};

struct smtpd_tls_session {
	struct tlsio io;	/* io.ssl NULL until the handshake starts */
	bool up;		/* the handshake completed */
	bool via_starttls;	/* STARTTLS, not the smtps connect */
	bool read_wants_write;	/* the last read waits for writability */
	bool write_wants_read;	/* the last write waits for readability */
	int end;		/* a read's end seen after data: 0 (EOF) or EIO */
	bool ended;
};

/* The network listeners (the sendmail socket is not one: never TLS). */
#define SMTPD_TLS_NET_FIRST CONFIG_LISTENER_SMTP
#define SMTPD_TLS_NET_LAST CONFIG_LISTENER_SMTPS

/* The listening parameter of each network listener. */
static const enum config_param smtpd_tls_listen_param[CONFIG_LISTENER_COUNT] = {
	[CONFIG_LISTENER_SMTP] = P_SMTPD_LISTEN,
	[CONFIG_LISTENER_SUBMISSION] = P_SUBMISSION_LISTEN,
	[CONFIG_LISTENER_SMTPS] = P_SMTPS_LISTEN,
};

/* ---- policy (pure) ---- */

enum smtpd_tls_level
smtpd_tls_level_of(const struct config *cfg, enum config_listener l)
{
	const char *v;

	if (l == CONFIG_LISTENER_SMTPS)
		return SMTPD_TLS_ENCRYPT;
	/* The local sendmail socket: no TLS to offer or require (Postfix
	 * turns TLS off for "sendmail -bs" too). */
	if (l < SMTPD_TLS_NET_FIRST || l > SMTPD_TLS_NET_LAST)
		return SMTPD_TLS_NONE;
	v = config_lstr(cfg, l, P_SMTPD_TLS_SECURITY_LEVEL);
	if (strcmp(v, "encrypt") == 0)
		return SMTPD_TLS_ENCRYPT;
	if (strcmp(v, "may") == 0)
		return SMTPD_TLS_MAY;
	return SMTPD_TLS_NONE;
}

bool
smtpd_tls_gate_allows(enum smtpd_tls_level level, bool tls_active, enum smtpd_verb verb)
{
	if (level != SMTPD_TLS_ENCRYPT || tls_active)
		return true;
	/* Postfix's SMTPD_CMD_FLAG_PRE_TLS commands, and RSET (issue 6 and
	 * interface.md list it; it changes nothing a client could abuse). */
	switch (verb) {
	case SMTPD_VERB_EHLO:
	case SMTPD_VERB_HELO:
	case SMTPD_VERB_STARTTLS:
	case SMTPD_VERB_NOOP:
	case SMTPD_VERB_RSET:
	case SMTPD_VERB_QUIT:
		return true;
	default:
		return false;
	}
}

bool
smtpd_tls_auth_allowed(enum smtpd_tls_level level, bool tls_active, bool auth_only)
{
	return tls_active || (!auth_only && level != SMTPD_TLS_ENCRYPT);
}

/* ---- reading PEM files and making contexts ---- */

static void
smtpd_tls_pem_free(struct smtpd_tls_pem *p)
{
	if (p->data != NULL)
		OPENSSL_cleanse(p->data, p->len);
	free(p->data);
	p->data = NULL;
	p->len = 0;
}

static void
smtpd_tls_pem_copy(struct smtpd_tls_pem *dst, const void *src, size_t len)
{
	dst->data = malloc(len > 0 ? len : 1);
	if (dst->data == NULL)
		fatal("out of memory");
	memcpy(dst->data, src, len);
	dst->len = len;
}

/* Read path into pem (at most SMTPD_TLS_PEM_MAX bytes); 0, or -1 with why. */
static int
smtpd_tls_pem_read(const char *path, struct smtpd_tls_pem *pem, char *why, size_t whysz)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whysz, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_size > (off_t)SMTPD_TLS_PEM_MAX) {
		snprintf(why, whysz, "larger than %u bytes", SMTPD_TLS_PEM_MAX);
		close(fd);
		return -1;
	}
	pem->data = malloc((size_t)st.st_size + 1);
	if (pem->data == NULL)
		fatal("out of memory");
	/* Bounded by the size fstat() saw: a file growing meanwhile is cut. */
	while (got < (size_t)st.st_size) {
		n = read(fd, pem->data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whysz, "%s", strerror(errno));
			pem->len = got;
			smtpd_tls_pem_free(pem);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	pem->len = got;
	return 0;
}

/* An encrypted key is refused instead of prompting on a terminal. */
static int
smtpd_tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* Load the leaf certificate and the chain after it; 0, or -1 with err. */
static int
smtpd_tls_use_chain(SSL_CTX *sc, const struct smtpd_tls_pem *pem, char *err, size_t errsz)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	unsigned long e;
	X509 *x;
	int rc = -1;

	if (bio == NULL)
		fatal("out of memory");
	ERR_clear_error();
	x = PEM_read_bio_X509_AUX(bio, NULL, smtpd_tls_no_passphrase, NULL);
	if (x == NULL) {
		ERR_clear_error();
		snprintf(err, errsz, "no certificate found");
		goto out;
	}
	if (SSL_CTX_use_certificate(sc, x) != 1) {
		X509_free(x);
		tlsio_error_text(err, errsz, "unusable certificate");
		goto out;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, smtpd_tls_no_passphrase, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(sc, x) != 1) {
			X509_free(x);
			tlsio_error_text(err, errsz, "unusable chain certificate");
			goto out;
		}
	/* The loop ends at the end of the data (no more "BEGIN" line); any
	 * other error is a damaged certificate. */
	e = ERR_peek_last_error();
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		tlsio_error_text(err, errsz, "damaged chain certificate");
		goto out;
	}
	ERR_clear_error();
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

static int
smtpd_tls_use_key(SSL_CTX *sc, const struct smtpd_tls_pem *pem, char *err, size_t errsz)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	EVP_PKEY *pk;
	int rc = -1;

	if (bio == NULL)
		fatal("out of memory");
	ERR_clear_error();
	pk = PEM_read_bio_PrivateKey(bio, NULL, smtpd_tls_no_passphrase, NULL);
	BIO_free(bio);
	if (pk == NULL) {
		ERR_clear_error();
		snprintf(err, errsz, "no private key found (an encrypted key is not supported)");
		return -1;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(sc), pk) != 1) {
		ERR_clear_error();
		snprintf(err, errsz, "the private key does not match the certificate");
	} else if (SSL_CTX_use_PrivateKey(sc, pk) != 1 || SSL_CTX_check_private_key(sc) != 1) {
		tlsio_error_text(err, errsz, "unusable private key");
	} else {
		rc = 0;
	}
	EVP_PKEY_free(pk);
	return rc;
}

/* A server context with our policy, the chain and the key. */
static SSL_CTX *
smtpd_tls_ctx_make(const struct smtpd_tls_pem *cert, const struct smtpd_tls_pem *key, char *err,
                   size_t errsz)
{
	SSL_CTX *sc = tlsio_ctx_new(true, err, errsz);

	if (sc == NULL)
		return NULL;
	if (SSL_CTX_set_cipher_list(sc, SMTPD_TLS_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(sc, SMTPD_TLS_GROUPS) != 1) {
		tlsio_error_text(err, errsz, "cannot set the cipher policy");
		SSL_CTX_free(sc);
		return NULL;
	}
	SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(sc, 0);
	if (smtpd_tls_use_chain(sc, cert, err, errsz) < 0 || smtpd_tls_use_key(sc, key, err, errsz) < 0) {
		SSL_CTX_free(sc);
		return NULL;
	}
	return sc;
}

/* ---- key material (master) ---- */

static void __attribute__((format(printf, 4, 5)))
smtpd_tls_config_error(struct buf *errors, const struct config *cfg, unsigned line, const char *fmt,
                       ...)
{
	const char *file = config_path(cfg) != NULL ? config_path(cfg) : SMTPD_TLS_DEV_LABEL;
	va_list ap;

	if (line > 0)
		buf_append_printf(errors, "%s:%u: ", file, line);
	else
		buf_append_printf(errors, "%s: ", file);
	va_start(ap, fmt);
	buf_append_vprintf(errors, fmt, ap);
	va_end(ap);
	buf_append_char(errors, '\n');
}

static bool
smtpd_tls_listens(const struct config *cfg, enum config_listener l)
{
	size_t n = 0;

	(void)config_listen(cfg, smtpd_tls_listen_param[l], &n);
	return n > 0;
}

/* " (submission listener)" after a parameter name, "" for smtp (whose
 * values are the global ones). */
static const char *
smtpd_tls_which(enum config_listener l, char *dst, size_t dstsz)
{
	if (l == CONFIG_LISTENER_SMTP)
		dst[0] = '\0';
	else
		snprintf(dst, dstsz, " (%s listener)", config_listener_name(l));
	return dst;
}

/* Listener m < l that uses the same two files, or CONFIG_LISTENER_GLOBAL. */
static enum config_listener
smtpd_tls_same_files(const struct config *cfg, const bool *wanted, enum config_listener l)
{
	for (int m = SMTPD_TLS_NET_FIRST; m < (int)l; m++)
		if (wanted[m] &&
		    strcmp(config_lstr(cfg, (enum config_listener)m, P_SMTPD_TLS_CERT_FILE),
		           config_lstr(cfg, l, P_SMTPD_TLS_CERT_FILE)) == 0 &&
		    strcmp(config_lstr(cfg, (enum config_listener)m, P_SMTPD_TLS_KEY_FILE),
		           config_lstr(cfg, l, P_SMTPD_TLS_KEY_FILE)) == 0)
			return (enum config_listener)m;
	return CONFIG_LISTENER_GLOBAL;
}

/* Does listener l need a certificate? -1 when it needs one and has none
 * configured (reported, unless a listener before it inherited the same
 * setting and reported it: *reported is that setting's line + 1). */
static int
smtpd_tls_needs_cert(const struct config *cfg, enum config_listener l, struct buf *errors,
                     unsigned *reported)
{
	enum smtpd_tls_level level = smtpd_tls_level_of(cfg, l);

	if (!smtpd_tls_listens(cfg, l) || level == SMTPD_TLS_NONE)
		return 0;
	if (config_lstr(cfg, l, P_SMTPD_TLS_CERT_FILE)[0] != '\0')
		return 1;
	if (l == CONFIG_LISTENER_SMTPS) {
		smtpd_tls_config_error(errors, cfg, config_lline(cfg, l, P_SMTPS_LISTEN),
		    "smtps_listen needs smtpd_tls_cert_file and smtpd_tls_key_file: implicit TLS "
		    "cannot start without a certificate");
		return -1;
	}
	if (level == SMTPD_TLS_ENCRYPT) {
		unsigned line = config_lline(cfg, l, P_SMTPD_TLS_SECURITY_LEVEL);
		char which[64];

		if (*reported != line + 1)
			smtpd_tls_config_error(errors, cfg, line,
			    "smtpd_tls_security_level = encrypt%s needs smtpd_tls_cert_file and "
			    "smtpd_tls_key_file", smtpd_tls_which(l, which, sizeof(which)));
		*reported = line + 1;
		return -1;
	}
	/* "may" without a certificate: STARTTLS is simply not offered. */
	return 0;
}

/* Read and check listener l's files into k. 0, or -1 (reported). */
static int
smtpd_tls_listener_load(const struct config *cfg, struct smtpd_tls_keys *k, enum config_listener l,
                        struct buf *errors)
{
	const char *cert = config_lstr(cfg, l, P_SMTPD_TLS_CERT_FILE);
	const char *key = config_lstr(cfg, l, P_SMTPD_TLS_KEY_FILE);
	unsigned cert_line = config_lline(cfg, l, P_SMTPD_TLS_CERT_FILE);
	unsigned key_line = config_lline(cfg, l, P_SMTPD_TLS_KEY_FILE);
	char why[SMTPD_TLS_ERR_MAX], which[64];
	SSL_CTX *sc;

	smtpd_tls_which(l, which, sizeof(which));
	if (key[0] == '\0') {
		smtpd_tls_config_error(errors, cfg, key_line, "smtpd_tls_key_file%s is empty", which);
		return -1;
	}
	if (smtpd_tls_pem_read(cert, &k->cert[l], why, sizeof(why)) < 0) {
		smtpd_tls_config_error(errors, cfg, cert_line, "smtpd_tls_cert_file%s %s: %s", which,
		    cert, why);
		return -1;
	}
	if (smtpd_tls_pem_read(key, &k->key[l], why, sizeof(why)) < 0) {
		/* The key's default is $smtpd_tls_cert_file: name that line. */
		smtpd_tls_config_error(errors, cfg, key_line > 0 ? key_line : cert_line,
		    "smtpd_tls_key_file%s %s: %s", which, key, why);
		smtpd_tls_pem_free(&k->cert[l]);
		return -1;
	}
	sc = smtpd_tls_ctx_make(&k->cert[l], &k->key[l], why, sizeof(why));
	if (sc == NULL) {
		smtpd_tls_config_error(errors, cfg, cert_line,
		    "smtpd_tls_cert_file%s %s, smtpd_tls_key_file %s: %s", which, cert, key, why);
		smtpd_tls_pem_free(&k->cert[l]);
		smtpd_tls_pem_free(&k->key[l]);
		return -1;
	}
	SSL_CTX_free(sc);
	k->have[l] = true;
	return 0;
}

int
smtpd_tls_keys_load(const struct config *cfg, struct smtpd_tls_keys **out, struct buf *errors)
{
	bool wanted[CONFIG_LISTENER_COUNT] = { false };
	struct smtpd_tls_keys *k = calloc(1, sizeof(*k));
	enum config_listener same;
	unsigned reported = 0;
	int rc = 0, need;

	if (k == NULL)
		fatal("out of memory");
	*out = NULL;
	for (int i = SMTPD_TLS_NET_FIRST; i <= SMTPD_TLS_NET_LAST; i++) {
		enum config_listener l = (enum config_listener)i;

		need = smtpd_tls_needs_cert(cfg, l, errors, &reported);
		if (need <= 0) {
			rc = need < 0 ? -1 : rc;
			continue;
		}
		wanted[l] = true;
		/* Listeners that share the files share the bytes, and a bad
		 * file is reported once. */
		same = smtpd_tls_same_files(cfg, wanted, l);
		if (same != CONFIG_LISTENER_GLOBAL) {
			if (k->have[same]) {
				smtpd_tls_pem_copy(&k->cert[l], k->cert[same].data, k->cert[same].len);
				smtpd_tls_pem_copy(&k->key[l], k->key[same].data, k->key[same].len);
				k->have[l] = true;
			}
			continue;
		}
		if (smtpd_tls_listener_load(cfg, k, l, errors) < 0)
			rc = -1;
	}
	if (rc < 0) {
		smtpd_tls_keys_free(k);
		return -1;
	}
	*out = k;
	return 0;
}

void
smtpd_tls_keys_free(struct smtpd_tls_keys *k)
{
	if (k == NULL)
		return;
	for (int l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		smtpd_tls_pem_free(&k->cert[l]);
		smtpd_tls_pem_free(&k->key[l]);
	}
	free(k);
}

int
smtpd_tls_config_check(const struct config *cfg, struct buf *errors)
{
	struct smtpd_tls_keys *k;

	if (smtpd_tls_keys_load(cfg, &k, errors) < 0)
		return -1;
	smtpd_tls_keys_free(k);
	return 0;
}

void
smtpd_tls_keys_encode(const struct smtpd_tls_keys *k, struct buf *out)
{
	uint64_t n = 0;
	size_t start;

	for (int l = 0; l < CONFIG_LISTENER_COUNT; l++)
		n += k->have[l];
	start = frame_begin(out, FRAME_MASTER_TLS_KEYS);
	frame_put_u64(out, n);
	for (int l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		if (!k->have[l])
			continue;
		frame_put_str(out, config_listener_name((enum config_listener)l));
		frame_put_bytes(out, k->cert[l].data, k->cert[l].len);
		frame_put_bytes(out, k->key[l].data, k->key[l].len);
	}
	if (frame_end(out, start) != FRAME_OK)
		panic("TLS keys frame larger than a frame");
}

int
smtpd_tls_keys_decode(struct frame_reader *r, struct smtpd_tls_keys **out)
{
	struct smtpd_tls_keys *k;
	const char *name, *cert, *key;
	size_t nlen, clen, klen;
	enum config_listener l;
	uint64_t n;

	*out = NULL;
	if (frame_get_u64(r, &n) < 0 || n > SMTPD_TLS_NET_LAST - SMTPD_TLS_NET_FIRST + 1)
		return -1;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		fatal("out of memory");
	for (uint64_t i = 0; i < n; i++) {
		if (frame_get_bytes(r, &name, &nlen) < 0 || frame_get_bytes(r, &cert, &clen) < 0 ||
		    frame_get_bytes(r, &key, &klen) < 0)
			goto bad;
		l = config_listener_named(name, nlen);
		if (l < SMTPD_TLS_NET_FIRST || l > SMTPD_TLS_NET_LAST || k->have[l] || clen == 0 ||
		    klen == 0 || clen > SMTPD_TLS_PEM_MAX || klen > SMTPD_TLS_PEM_MAX)
			goto bad;
		smtpd_tls_pem_copy(&k->cert[l], cert, clen);
		smtpd_tls_pem_copy(&k->key[l], key, klen);
		k->have[l] = true;
	}
	if (frame_get_end(r) < 0)
		goto bad;
	*out = k;
	return 0;
bad:
	smtpd_tls_keys_free(k);
	return -1;
}

/* ---- server contexts (smtpd role) ---- */

struct smtpd_tls_server *
smtpd_tls_server_new(const struct smtpd_tls_keys *k, char *err, size_t errsz)
{
	struct smtpd_tls_server *srv = calloc(1, sizeof(*srv));
	char why[SMTPD_TLS_ERR_MAX];

	if (srv == NULL)
		fatal("out of memory");
	for (int l = 0; l < CONFIG_LISTENER_COUNT; l++) {
		if (!k->have[l])
			continue;
		srv->ctx[l] = smtpd_tls_ctx_make(&k->cert[l], &k->key[l], why, sizeof(why));
		if (srv->ctx[l] == NULL) {
			snprintf(err, errsz, "%s listener: %s",
			    config_listener_name((enum config_listener)l), why);
			smtpd_tls_server_free(srv);
			return NULL;
		}
	}
	return srv;
}

void
smtpd_tls_server_free(struct smtpd_tls_server *srv)
{
	if (srv == NULL)
		return;
	for (int l = 0; l < CONFIG_LISTENER_COUNT; l++)
		SSL_CTX_free(srv->ctx[l]);
	free(srv);
}

bool
smtpd_tls_server_has(const struct smtpd_tls_server *srv, enum config_listener l)
{
	return srv != NULL && srv->ctx[l] != NULL;
}

bool
smtpd_tls_server_fingerprint(const struct smtpd_tls_server *srv, enum config_listener l, char *out,
                             size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	size_t o = 0;
	X509 *x;

	if (!smtpd_tls_server_has(srv, l) || outsz == 0)
		return false;
	x = SSL_CTX_get0_certificate(srv->ctx[l]);
	if (x == NULL || X509_digest(x, EVP_sha256(), md, &len) != 1)
		return false;
	out[0] = '\0';
	for (unsigned i = 0; i < len && o + 3 < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%02X", i ? ":" : "", md[i]);
	return true;
}

/* ---- sessions ---- */

bool
smtpd_tls_describe(const struct smtpd_session *s, const char **version, const char **cipher,
    int *bits)
{
	if (s->tls == NULL || !s->tls->up || s->tls->io.ssl == NULL)
		return false;
	*version = SSL_get_version(s->tls->io.ssl);
	*cipher = SSL_get_cipher_name(s->tls->io.ssl);
	*bits = SSL_get_cipher_bits(s->tls->io.ssl, NULL);
	return true;
}

bool
smtpd_tls_active(const struct smtpd_session *s)
{
	return s->tls != NULL && s->tls->up;
}

bool
smtpd_tls_offer_starttls(const struct smtpd_session *s)
{
	return s->tls == NULL && s->listener != CONFIG_LISTENER_SMTPS &&
	       smtpd_tls_level_of(s->srv->cfg, s->listener) != SMTPD_TLS_NONE &&
	       smtpd_tls_server_has(s->srv->tls, s->listener);
}

bool
smtpd_tls_needs_helo(const struct smtpd_session *s)
{
	return s->tls != NULL && s->tls->via_starttls && s->helo[0] == '\0';
}

bool
smtpd_tls_gate(struct smtpd_session *s, enum smtpd_verb verb)
{
	if (smtpd_tls_gate_allows(smtpd_tls_level_of(s->srv->cfg, s->listener), smtpd_tls_active(s),
	    verb))
		return true;
	smtpd_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
	smtpd_session_error(s);
	return false;
}

/*
 * Forget everything the client said in plain text (RFC 3207 section 4.2:
 * "the server MUST discard any knowledge obtained from the client"): the
 * HELO name, the transaction, an AUTH identity (smtpd_tls_auth_only = no
 * lets AUTH happen before TLS), and the input not read yet.
 */
static void
smtpd_tls_forget(struct smtpd_session *s)
{
	smtpd_verbs_reset(s);
	smtpd_auth_cmd_free(s);
	s->sasl_method[0] = '\0';
	s->sasl_username[0] = '\0';
	s->helo[0] = '\0';
	s->esmtp = false;
	/* CVE-2011-0411: commands pipelined behind STARTTLS in plain text
	 * must never run inside TLS as if the client had sent them there. */
	buf_reset(&s->in);
	lineread_init(&s->lr, s->lr.max);
}

bool
smtpd_tls_starttls(struct smtpd_session *s, const struct smtpd_command *cmd)
{
	if (cmd->args_len > 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		smtpd_session_error(s);
		return false;
	}
	if (s->tls != NULL) {
		/* Postfix's code and words (smtpd.c, starttls_cmd()). */
		smtpd_reply(s, 554, "5.5.1", "Error: TLS already active");
		smtpd_session_error(s);
		return false;
	}
	if (smtpd_tls_level_of(s->srv->cfg, s->listener) == SMTPD_TLS_NONE) {
		smtpd_reply(s, 502, "5.5.1", "Error: command not implemented");
		smtpd_session_error(s);
		return false;
	}
	if (!smtpd_tls_server_has(s->srv->tls, s->listener)) {
		/* RFC 3207 section 4. */
		smtpd_reply(s, 454, "4.7.0", "TLS not available due to local problem");
		smtpd_session_error(s);
		return false;
	}
	/* smtpd_client_new_tls_session_rate_limit, before the costly part. */
	if (!smtpd_ratelimit_starttls(s))
		return false;
	smtpd_reply(s, 220, "2.0.0", "Ready to start TLS");
	smtpd_tls_forget(s);
	s->tls = calloc(1, sizeof(*s->tls));
	if (s->tls == NULL)
		fatal("out of memory");
	s->tls->via_starttls = true;
	s->state = SMTPD_STATE_HANDSHAKE;
	return true;
}

static void
smtpd_tls_log_up(const struct smtpd_session *s)
{
	struct tlsio_summary sum;

	tlsio_summary(&s->tls->io, &sum);
	log_info("Anonymous TLS connection established from %s[%s]: %s with cipher %s (%d/%d bits)",
	    s->client_name, s->client_addr, sum.protocol, sum.cipher, sum.bits, sum.alg_bits);
}

enum smtpd_tls_step
smtpd_tls_handshake(struct smtpd_session *s)
{
	char err[SMTPD_TLS_ERR_MAX];
	SSL_CTX *ctx;

	if (s->tls == NULL) {
		/* smtps: TLS from the first byte. */
		s->tls = calloc(1, sizeof(*s->tls));
		if (s->tls == NULL)
			fatal("out of memory");
	}
	if (tlsio_ssl(&s->tls->io) == NULL) {
		ctx = s->srv->tls != NULL ? s->srv->tls->ctx[s->listener] : NULL;
		if (ctx == NULL) {
			snprintf(err, sizeof(err), "no certificate for the %s listener",
			    config_listener_name(s->listener));
			goto failed;
		}
		if (tlsio_init(&s->tls->io, ctx, s->fd, true, err, sizeof(err)) < 0)
			goto failed;
	}
	switch (tlsio_handshake(&s->tls->io, err, sizeof(err))) {
	case TLSIO_OK:
		s->tls->up = true;
		s->state = SMTPD_STATE_CONNECTED;
		smtpd_tls_log_up(s);
		/* A new session past the limit: 421, state CLOSING. */
		smtpd_ratelimit_tls_up(s, SSL_session_reused(tlsio_ssl(&s->tls->io)) == 1);
		return SMTPD_TLS_STEP_DONE;
	case TLSIO_WANT_READ:
		return SMTPD_TLS_STEP_READ;
	case TLSIO_WANT_WRITE:
		return SMTPD_TLS_STEP_WRITE;
	case TLSIO_CLOSED:
	case TLSIO_ERROR:
		break;
	}
failed:
	/* Postfix's words (tls_server.c) for every handshake failure. */
	log_info("SSL_accept error from %s[%s]: %s", s->client_name, s->client_addr, err);
	return SMTPD_TLS_STEP_FAILED;
}

/* A TLS read or write failed: the socket's error, or a TLS one (logged,
 * as Postfix's "TLS library problem", and reported as EIO). */
static void
smtpd_tls_io_failed(const struct smtpd_session *s, const char *err)
{
	if (errno != 0)
		return;
	log_warning("TLS library problem: %s (%s[%s])", err, s->client_name, s->client_addr);
	errno = EIO;
}

ssize_t
smtpd_tls_read(struct smtpd_session *s, size_t want)
{
	struct smtpd_tls_session *t = s->tls;
	char err[SMTPD_TLS_ERR_MAX];
	enum tlsio_result r;
	size_t total = 0, got, room;
	char *p;

	if (t->ended) {
		errno = t->end;
		return t->end == 0 ? 0 : -1;
	}
	/* Until OpenSSL needs the socket again, or want is met: decrypted
	 * bytes left inside it are smtpd_tls_pending()'s business. */
	while (total < want) {
		room = buf_room(&s->in) < want - total ? buf_room(&s->in) : want - total;
		if (room == 0 || (p = buf_reserve(&s->in, room)) == NULL)
			break;
		r = tlsio_read(&t->io, p, room, &got, err, sizeof(err));
		t->read_wants_write = r == TLSIO_WANT_WRITE;
		if (r == TLSIO_OK) {
			buf_commit(&s->in, got);
			total += got;
			continue;
		}
		if (r == TLSIO_WANT_READ || r == TLSIO_WANT_WRITE)
			break;
		if (r == TLSIO_ERROR)
			smtpd_tls_io_failed(s, err);
		t->end = r == TLSIO_CLOSED ? 0 : errno;
		t->ended = true;
		if (total > 0)
			return (ssize_t)total;	/* the end comes with the next read */
		errno = t->end;
		return t->end == 0 ? 0 : -1;
	}
	if (total > 0)
		return (ssize_t)total;
	errno = buf_room(&s->in) == 0 ? ENOBUFS : EAGAIN;
	return -1;
}

ssize_t
smtpd_tls_write(struct smtpd_session *s, const void *p, size_t len)
{
	struct smtpd_tls_session *t = s->tls;
	char err[SMTPD_TLS_ERR_MAX];
	enum tlsio_result r;
	size_t put;

	r = tlsio_write(&t->io, p, len, &put, err, sizeof(err));
	t->write_wants_read = r == TLSIO_WANT_READ;
	switch (r) {
	case TLSIO_OK:
		return (ssize_t)put;
	case TLSIO_WANT_READ:
	case TLSIO_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case TLSIO_CLOSED:
		errno = EPIPE;
		return -1;
	case TLSIO_ERROR:
		break;
	}
	smtpd_tls_io_failed(s, err);
	return -1;
}

unsigned
smtpd_tls_events(const struct smtpd_session *s)
{
	if (!smtpd_tls_active(s))
		return 0;
	return (s->tls->read_wants_write ? EV_WRITE : 0) | (s->tls->write_wants_read ? EV_READ : 0);
}

bool
smtpd_tls_read_ready(const struct smtpd_session *s, unsigned revents)
{
	if (revents & EV_READ)
		return true;
	return smtpd_tls_active(s) && s->tls->read_wants_write && (revents & EV_WRITE);
}

bool
smtpd_tls_pending(const struct smtpd_session *s)
{
	return smtpd_tls_active(s) && tlsio_pending(&s->tls->io) > 0;
}

void
smtpd_tls_session_free(struct smtpd_session *s)
{
	if (s->tls == NULL)
		return;
	/* A polite end of TLS when the client is still there (after QUIT's
	 * 221, or our 421): one close_notify, never a wait for the reply. */
	if (s->tls->up && !s->peer_gone)
		tlsio_close_notify(&s->tls->io);
	tlsio_release(&s->tls->io);
	free(s->tls);
	s->tls = NULL;
}
