/*
 * smtp_tls: the outbound SMTP client's OpenSSL glue (RFC 3207 STARTTLS).
 *
 *   - the policy levels of smtp_tls_security_level, Postfix's names;
 *   - the client context (SSL_CTX): made once per agent and again on
 *     reload: common/tlsio's base (TLS 1.2 or later, security level 2, no
 *     renegotiation, no session cache), OpenSSL's default ciphers, the CA
 *     file as trust anchors;
 *   - one connection on a non-blocking socket, with SNI: a handshake step
 *     and read and write wrappers over common/tlsio, so the caller drives
 *     them from its event loop;
 *   - what the handshake found: protocol, cipher, and the peer
 *     certificate's standing in Postfix's words ("Anonymous", "Untrusted",
 *     "Trusted", "Verified") with the reason when it is not verified.
 *
 * Certificates are never checked inside the handshake (SSL_VERIFY_NONE):
 * OpenSSL still verifies the chain and records the result, which is read
 * afterwards, as Postfix's tls_client_start() does ("tries hard to always
 * complete the TLS handshake ... It is now up to the application to abort
 * the TLS connection if it chooses"). The caller decides, by level, what
 * an unverified peer means; with a usable session it can still say QUIT.
 *
 * Errors are returned (an enum and a short text in a caller's buffer),
 * never logged; panic() only on misuse (a write retried with less data
 * than the one that would block). Ownership: a connection holds a
 * reference to its context's SSL_CTX (OpenSSL counts them), so the agent
 * may free or replace its context while connections made from it run on.
 * A connection never owns or closes the socket.
 */
#ifndef TERN_SMTP_TLS_H
#define TERN_SMTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tlsio.h"

/* smtp_tls_security_level (postconf(5), TLS_README "Client-side TLS
 * security levels"). */
enum smtp_tls_level {
	SMTP_TLS_NONE = 0,	/* never STARTTLS */
	SMTP_TLS_MAY,		/* opportunistic: STARTTLS when offered, any
				 * certificate; plain text when not offered */
	SMTP_TLS_ENCRYPT,	/* mandatory TLS, any certificate */
	SMTP_TLS_VERIFY,	/* mandatory TLS, the chain verified against the
				 * CA file and the MX host name matched */
	SMTP_TLS_DANE,		/* RFC 7672: mandatory TLS authenticated by
				 * DNSSEC-validated TLSA records where there are
				 * some, else "may" (or "encrypt" when every
				 * record is unusable) */
	SMTP_TLS_DANE_ONLY,	/* DANE or no delivery */
};

/* "none", "may", "encrypt", "verify", "dane", "dane-only" (any case); 0,
 * or -1 when unknown. */
int smtp_tls_level_parse(const char *s, enum smtp_tls_level *out);
/* The level's name (static). */
const char *smtp_tls_level_name(enum smtp_tls_level level);

/* Must the session be encrypted (never fall back to plain text)? */
static inline bool
smtp_tls_level_required(enum smtp_tls_level level)
{
	return level >= SMTP_TLS_ENCRYPT;
}

/* ---- the context ---- */

struct smtp_tls_ctx;

enum smtp_tls_ctx_status {
	SMTP_TLS_CTX_OK = 0,
	/* The context is made, without trust anchors: the CA file could
	 * not be used and ca_required was false (err says why). Peers then
	 * are never "Trusted". */
	SMTP_TLS_CTX_NO_CA,
	/* No context (*out is NULL; err says why): OpenSSL could not make
	 * one, or the CA file could not be used and ca_required was true. */
	SMTP_TLS_CTX_FAILED,
};

/*
 * Make the client context. cafile: a PEM file of trusted certificates;
 * "" or NULL for none (an error when ca_required). err (errsz bytes)
 * receives a one-line reason for NO_CA and FAILED, naming the file:
 * "cannot load Certificate Authority data, CAfile=\"/x\": No such file
 * or directory".
 */
enum smtp_tls_ctx_status smtp_tls_ctx_new(const char *cafile, bool ca_required,
                                          struct smtp_tls_ctx **out, char *err, size_t errsz);
/* NULL is fine. Connections made from ctx keep working. */
void smtp_tls_ctx_free(struct smtp_tls_ctx *ctx);

/* ---- one connection ---- */

struct smtp_tls_conn;

/* The results of common/tlsio.h, under the names this module always had. */
enum smtp_tls_io {
	SMTP_TLS_IO_OK = TLSIO_OK,	/* done (handshake), or bytes moved */
	SMTP_TLS_IO_WANT_READ = TLSIO_WANT_READ,	/* again when readable */
	SMTP_TLS_IO_WANT_WRITE = TLSIO_WANT_WRITE,	/* again when writable */
	SMTP_TLS_IO_CLOSED = TLSIO_CLOSED,	/* the peer closed: close_notify or EOF */
	SMTP_TLS_IO_ERROR = TLSIO_ERROR,	/* a TLS protocol or socket error: err
						 * says which ("error:0A000102:SSL
						 * routines::unsupported protocol",
						 * "Connection reset by peer") */
};

/*
 * A client connection over the connected non-blocking socket fd, ready
 * for smtp_tls_conn_handshake(). host: the server's name, sent as SNI
 * (RFC 6066 section 3) and matched against its certificate by
 * smtp_tls_conn_peer(); an address literal ("192.0.2.7", "2001:db8::7")
 * or NULL sends no SNI (RFC 6066 forbids literals) and matches nothing.
 * NULL with err on an OpenSSL failure.
 */
struct smtp_tls_conn *smtp_tls_conn_new(struct smtp_tls_ctx *ctx, int fd, const char *host,
                                        char *err, size_t errsz);
/* Most usable TLSA records kept for one host (the rest are ignored). */
#define SMTP_TLS_TLSA_MAX 16

/* One usable TLSA record (RFC 6698 section 2.1), a copy. */
struct smtp_tls_tlsa {
	uint8_t usage, selector, mtype;
	size_t len;
	unsigned char *data;
};

/* The usable TLSA records of one host (smtp_tls_policy.h fills it). */
struct smtp_tls_dane {
	size_t n;
	struct smtp_tls_tlsa rr[SMTP_TLS_TLSA_MAX];
};

/* Per-connection settings from the destination's policy. */
struct smtp_tls_conn_opts {
	int min_version, max_version;	/* TLS1_2_VERSION..; 0: the context's */
	bool high_ciphers;		/* ciphers=high: OpenSSL's HIGH list */
	/* Reference names for smtp_tls_conn_peer()'s check, replacing the
	 * host (verify's match=); ".example.com" is any subdomain. */
	const char *const *names;
	size_t n_names;
	/* DANE (RFC 7672): the TLSA base domain (also the SNI, section 8.1)
	 * and the usable records. Verification is OpenSSL's (SSL_dane_enable(3)):
	 * DANE-EE(3) without name or expiry checks (section 3.1.1), DANE-TA(2)
	 * with the base domain and names[] as reference identifiers
	 * (section 3.2.2). NULL: no DANE. */
	const char *dane_base;
	const struct smtp_tls_dane *dane;
};

/*
 * Apply opts to a connection before its first handshake step. 0, or -1
 * with err (an OpenSSL failure, or no TLSA record OpenSSL takes).
 */
int smtp_tls_conn_apply(struct smtp_tls_conn *t, const struct smtp_tls_conn_opts *opts, char *err,
                        size_t errsz);

/* Free the connection (no close_notify; the socket stays open). NULL ok. */
void smtp_tls_conn_free(struct smtp_tls_conn *t);

/* One step of the handshake: OK when it is complete. */
enum smtp_tls_io smtp_tls_conn_handshake(struct smtp_tls_conn *t, char *err, size_t errsz);

/*
 * Read up to len bytes of application data: OK with *got > 0. Call again
 * until WANT_READ: decrypted data can wait inside OpenSSL while the
 * socket has nothing more (smtp_tls_conn_pending()), and no event will
 * say so. A read may return WANT_WRITE (a key update or alert to send).
 */
enum smtp_tls_io smtp_tls_conn_read(struct smtp_tls_conn *t, void *buf, size_t len, size_t *got,
                                    char *err, size_t errsz);
/*
 * Write from buf (len > 0): OK with *put bytes taken, some or all (call
 * again for the rest). After WANT_READ or WANT_WRITE the next call must
 * pass the same bytes again, at least as many (more may follow them; the
 * buffer may have moved): a FIFO that is only appended to until bytes are
 * taken meets this (SSL_write(3)); fewer is a bug (panic).
 */
enum smtp_tls_io smtp_tls_conn_write(struct smtp_tls_conn *t, const void *buf, size_t len,
                                     size_t *put, char *err, size_t errsz);
/* Decrypted bytes waiting inside OpenSSL. */
size_t smtp_tls_conn_pending(const struct smtp_tls_conn *t);
/* Send close_notify once, without waiting for the peer's (best effort,
 * as after QUIT's reply; RFC 8446 section 6.1 lets the client close then). */
void smtp_tls_conn_close_notify(struct smtp_tls_conn *t);

/* What the handshake found. */
struct smtp_tls_peer {
	bool cert;		/* the server presented a certificate */
	bool trusted;		/* its chain verified against the CA file */
	bool matched;		/* trusted, and a name in it matches the host
				 * (only when asked: check_name); with DANE:
				 * authenticated by a TLSA record */
	bool dane;		/* DANE was on for this connection */
	char protocol[16];	/* "TLSv1.3" */
	char cipher[64];	/* "TLS_AES_256_GCM_SHA384" */
	int bits, alg_bits;	/* 256, 256 */
	/* Why it is not trusted, or not matched when check_name; "" when
	 * it is: Postfix's words where it has them ("self-signed
	 * certificate", "untrusted issuer /CN=x", "certificate has expired",
	 * "num=N:text"), else "server certificate name does not match HOST". */
	char why[340];
};

/*
 * After a complete handshake. check_name: match the host name given to
 * smtp_tls_conn_new() against the certificate (Postfix's
 * smtp_tls_verify_cert_match = hostname: subjectAltName dNSNames when
 * there are any, else the CommonName; no case; "*" only as the whole
 * left-most label, matching one label), only when the chain is trusted.
 */
void smtp_tls_conn_peer(struct smtp_tls_conn *t, bool check_name, struct smtp_tls_peer *out);

/* Postfix's word for the peer in "%s TLS connection established to ...":
 * "Anonymous" (no certificate), "Verified" (matched), "Trusted" (chain
 * only) or "Untrusted". */
const char *smtp_tls_peer_trust(const struct smtp_tls_peer *p);

/* Is host an IPv4 or IPv6 address literal (no SNI, no name match)? */
bool smtp_tls_host_is_literal(const char *host);

#endif
