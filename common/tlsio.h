/*
 * tlsio: one TLS connection (OpenSSL) on a non-blocking socket, driven by
 * an event loop, for both ends of SMTP: the smtp agent's client side
 * (delivery/smtp_tls.c) and the listener's server side (smtpd/smtpd_tls.c).
 *
 * What both sides share lives here and nowhere else:
 *   - the base of every context: TLS 1.2 or later, OpenSSL security level
 *     2, no renegotiation, no compression, no session cache, and the
 *     write modes a growing FIFO needs;
 *   - a handshake step, reads and writes that return a small enum, so the
 *     caller drives them from readiness events;
 *   - what the handshake agreed on (protocol, cipher, bits), for the
 *     "TLS connection established" log lines.
 *
 * Errors are returned (an enum and a one-line text in the caller's
 * buffer), never logged; panic() only on misuse (a write retried with less
 * data than the one that would block). Ownership: a struct tlsio holds a
 * reference to the SSL_CTX it was made from (OpenSSL counts them), so the
 * owner may replace its context while connections made from it run on.
 * It never owns or closes the socket.
 */
#ifndef TERN_TLSIO_H
#define TERN_TLSIO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* OpenSSL security level of every context (SSL_CTX_set_security_level(3):
 * 112-bit keys, no SHA-1 signatures). */
#define TLSIO_SECURITY_LEVEL 2

enum tlsio_result {
	TLSIO_OK = 0,		/* done (handshake), or bytes moved (read, write) */
	TLSIO_WANT_READ,	/* call again when the socket is readable */
	TLSIO_WANT_WRITE,	/* call again when the socket is writable */
	TLSIO_CLOSED,		/* the peer closed: close_notify or EOF */
	TLSIO_ERROR,		/* a TLS protocol or socket error: err says which
				 * ("error:0A000102:SSL routines::unsupported
				 * protocol", "Connection reset by peer"); errno
				 * is the socket's error, 0 for a TLS one */
};

struct tlsio {
	SSL *ssl;		/* NULL when not set up */
	/* Bytes of the last write that would block: SSL_write(3) wants the
	 * retry to pass them again. */
	size_t write_retry;
	/* A fatal error happened: OpenSSL forbids SSL_shutdown() after one. */
	bool failed;
};

/* What the handshake agreed on. */
struct tlsio_summary {
	char protocol[16];	/* "TLSv1.3" */
	char cipher[64];	/* "TLS_AES_256_GCM_SHA384" */
	int bits, alg_bits;	/* 256, 256 */
};

/*
 * A context with the shared base (above), for a server (TLS_server_method)
 * or a client. NULL with err on an OpenSSL failure.
 */
SSL_CTX *tlsio_ctx_new(bool server, char *err, size_t errsz);

/*
 * Set t up over the connected non-blocking socket fd, in the server's
 * (accept) or the client's (connect) role. 0, or -1 with err (t is then
 * released). The caller may adjust tlsio_ssl(t) (SNI) before the first
 * handshake step.
 */
int tlsio_init(struct tlsio *t, SSL_CTX *ctx, int fd, bool server, char *err, size_t errsz);
/* Free the OpenSSL state (no close_notify; the socket stays open). A
 * released or zeroed t is fine. */
void tlsio_release(struct tlsio *t);
static inline SSL *tlsio_ssl(const struct tlsio *t) { return t->ssl; }

/* One step of the handshake: OK when it is complete. */
enum tlsio_result tlsio_handshake(struct tlsio *t, char *err, size_t errsz);
/*
 * Read up to len bytes of application data: OK with *got > 0. Decrypted
 * data can wait inside OpenSSL while the socket has nothing more
 * (tlsio_pending()), and no event will say so: read until WANT_READ, or
 * look at tlsio_pending(). A read may return WANT_WRITE (an alert or key
 * update to send).
 */
enum tlsio_result tlsio_read(struct tlsio *t, void *buf, size_t len, size_t *got, char *err,
                             size_t errsz);
/*
 * Write from buf (len > 0): OK with *put bytes taken, some or all. After
 * WANT_READ or WANT_WRITE the next call must pass the same bytes again,
 * at least as many (more may follow them; the buffer may have moved): a
 * FIFO that is only appended to until bytes are taken meets this
 * (SSL_write(3)); fewer is a bug (panic).
 */
enum tlsio_result tlsio_write(struct tlsio *t, const void *buf, size_t len, size_t *put,
                              char *err, size_t errsz);
/* Decrypted bytes waiting inside OpenSSL. */
size_t tlsio_pending(const struct tlsio *t);
/* Send close_notify once, without waiting for the peer's (best effort;
 * nothing after a fatal error). */
void tlsio_close_notify(struct tlsio *t);
/* After a complete handshake. */
void tlsio_summary(const struct tlsio *t, struct tlsio_summary *out);

/* The first error OpenSSL queued ("error:0A000102:SSL routines::
 * unsupported protocol"), or dflt; the queue is emptied. */
void tlsio_error_text(char *err, size_t errsz, const char *dflt);

#endif
