/*
 * tlsio: a TLS connection on a non-blocking socket (see the header for
 * what it owns, its error policy and its ownership rules).
 *
 * Choices, each with its reason:
 *  - TLS 1.2 at least and security level 2: RFC 8996 deprecates TLS 1.0
 *    and 1.1 (Postfix still allows them for opportunistic TLS; we do not,
 *    doc/smtp.md and doc/smtpd_tls.md say what that means for each side).
 *  - No renegotiation (SSL_OP_NO_RENEGOTIATION): nothing in SMTP needs it,
 *    and a server that renegotiates on the client's demand spends CPU for
 *    it (CVE-2011-1473).
 *  - No compression (CRIME).
 *  - No session cache: neither side has a process to share one with, and
 *    a mail client resumes rarely.
 *  - SSL_MODE_ENABLE_PARTIAL_WRITE and SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER:
 *    callers write from a growing FIFO (struct buf) whose storage may move;
 *    a write returns what went out before the socket filled.
 */
#include "common/tlsio.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common/log.h"

void
tlsio_error_text(char *err, size_t errsz, const char *dflt)
{
	unsigned long e = ERR_get_error();

	if (e != 0) {
		char text[256];

		ERR_error_string_n(e, text, sizeof(text));
		snprintf(err, errsz, "%s", text);
	} else {
		snprintf(err, errsz, "%s", dflt);
	}
	ERR_clear_error();
}

SSL_CTX *
tlsio_ctx_new(bool server, char *err, size_t errsz)
{
	SSL_CTX *sc;

	ERR_clear_error();
	sc = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (sc == NULL) {
		tlsio_error_text(err, errsz, "SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1) {
		tlsio_error_text(err, errsz, "cannot require TLS 1.2");
		SSL_CTX_free(sc);
		return NULL;
	}
	SSL_CTX_set_security_level(sc, TLSIO_SECURITY_LEVEL);
	SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	return sc;
}

int
tlsio_init(struct tlsio *t, SSL_CTX *ctx, int fd, bool server, char *err, size_t errsz)
{
	memset(t, 0, sizeof(*t));
	ERR_clear_error();
	t->ssl = SSL_new(ctx);	/* takes a reference to the SSL_CTX */
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
		tlsio_error_text(err, errsz, "cannot set up the TLS connection");
		tlsio_release(t);
		return -1;
	}
	if (server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	return 0;
}

void
tlsio_release(struct tlsio *t)
{
	SSL_free(t->ssl);	/* with SSL_set_fd's socket BIO, not the socket */
	memset(t, 0, sizeof(*t));
}

/*
 * What an SSL_* call's return value means (SSL_get_error(3)). An EOF
 * without close_notify is CLOSED, as a plain EOF would be: SMTP replies
 * and commands carry their own ends, so truncation cannot pass unnoticed.
 * ERROR sets errno to the socket error, or 0 for a TLS protocol error.
 */
static enum tlsio_result
tlsio_result_of(struct tlsio *t, int ret, char *err, size_t errsz)
{
	int saved = errno;
	int e = SSL_get_error(t->ssl, ret);

	switch (e) {
	case SSL_ERROR_NONE:
		return TLSIO_OK;
	case SSL_ERROR_WANT_READ:
		return TLSIO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLSIO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(err, errsz, "lost connection");
		ERR_clear_error();
		return TLSIO_CLOSED;
	case SSL_ERROR_SYSCALL:
		t->failed = true;
		/* The socket's own error (errno) says more than the queue's
		 * "system library" entry for it. */
		if (saved != 0) {
			ERR_clear_error();
			snprintf(err, errsz, "%s", strerror(saved));
			errno = saved;
			return TLSIO_ERROR;
		}
		if (ERR_peek_error() == 0) {
			snprintf(err, errsz, "lost connection");
			return TLSIO_CLOSED;
		}
		break;
	case SSL_ERROR_SSL:
		t->failed = true;
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			snprintf(err, errsz, "lost connection");
			return TLSIO_CLOSED;
		}
		break;
	default:
		t->failed = true;
		break;
	}
	tlsio_error_text(err, errsz, "TLS error");
	errno = 0;
	return TLSIO_ERROR;
}

enum tlsio_result
tlsio_handshake(struct tlsio *t, char *err, size_t errsz)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return TLSIO_OK;
	return tlsio_result_of(t, r, err, errsz);
}

enum tlsio_result
tlsio_read(struct tlsio *t, void *buf, size_t len, size_t *got, char *err, size_t errsz)
{
	int n;

	*got = 0;
	ERR_clear_error();
	errno = 0;
	n = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0) {
		*got = (size_t)n;
		return TLSIO_OK;
	}
	return tlsio_result_of(t, n, err, errsz);
}

enum tlsio_result
tlsio_write(struct tlsio *t, const void *buf, size_t len, size_t *put, char *err, size_t errsz)
{
	enum tlsio_result r;
	int n;

	*put = 0;
	if (len == 0 || len < t->write_retry)
		panic("tlsio: write of %zu bytes, %zu owed to a blocked write", len, t->write_retry);
	ERR_clear_error();
	errno = 0;
	n = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0) {
		t->write_retry = 0;
		*put = (size_t)n;
		return TLSIO_OK;
	}
	r = tlsio_result_of(t, n, err, errsz);
	if (r == TLSIO_WANT_READ || r == TLSIO_WANT_WRITE)
		t->write_retry = len > INT_MAX ? INT_MAX : len;
	return r;
}

size_t
tlsio_pending(const struct tlsio *t)
{
	int n = SSL_pending(t->ssl);

	return n > 0 ? (size_t)n : 0;
}

void
tlsio_close_notify(struct tlsio *t)
{
	if (t->ssl == NULL || t->failed)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

void
tlsio_summary(const struct tlsio *t, struct tlsio_summary *out)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(t->ssl);

	memset(out, 0, sizeof(*out));
	snprintf(out->protocol, sizeof(out->protocol), "%s", SSL_get_version(t->ssl));
	if (cipher != NULL) {
		snprintf(out->cipher, sizeof(out->cipher), "%s", SSL_CIPHER_get_name(cipher));
		out->bits = SSL_CIPHER_get_bits(cipher, &out->alg_bits);
	}
}
