/*
 * Unit tests for smtpd/smtpd_tls.c: the encrypt-level gate and the AUTH
 * rule (one row per level, TLS state and verb), the levels per listener,
 * the configuration check (one row per configuration: FILE:LINE and the
 * message), the key frame's encoding and its malformed variants, and real
 * sessions (smtpd_session.c) on a socketpair with an OpenSSL client:
 * STARTTLS offered or not, the state reset and the CVE-2011-0411
 * plaintext discard, the 530 gate, refusals, smtps, a garbage handshake
 * and ESMTPS in the Received header.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/evloop.h"
#include "common/frame.h"
#include "config/config.h"
#include "queue/spool.h"
#include "smtpd/smtpd_server.h"
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_tls.h"

#define DEADLINE_MS 8000
/* Lines of the configuration every test file starts with. */
#define BASE_LINES 4

static char dir[] = "/tmp/tern-smtpd-tls-test-XXXXXX";

/* ---- the gate and the AUTH rule (pure) ---- */

static const struct {
	enum smtpd_tls_level level;
	bool tls;
	enum smtpd_verb verb;
	bool allowed;
} gate_rows[] = {
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_EHLO, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_HELO, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_STARTTLS, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_NOOP, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_RSET, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_QUIT, true },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_MAIL, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_RCPT, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_DATA, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_BDAT, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_VRFY, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_EXPN, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_HELP, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_AUTH, false },
	{ SMTPD_TLS_ENCRYPT, false, SMTPD_VERB_ETRN, false },
	{ SMTPD_TLS_ENCRYPT, true, SMTPD_VERB_MAIL, true },
	{ SMTPD_TLS_ENCRYPT, true, SMTPD_VERB_AUTH, true },
	{ SMTPD_TLS_MAY, false, SMTPD_VERB_MAIL, true },
	{ SMTPD_TLS_MAY, false, SMTPD_VERB_DATA, true },
	{ SMTPD_TLS_NONE, false, SMTPD_VERB_MAIL, true },
	{ SMTPD_TLS_NONE, false, SMTPD_VERB_VRFY, true },
};

START_TEST(test_gate_rows)
{
	ck_assert_msg(smtpd_tls_gate_allows(gate_rows[_i].level, gate_rows[_i].tls,
	                                    gate_rows[_i].verb) == gate_rows[_i].allowed,
	              "row %d (%s)", _i, smtpd_verb_name(gate_rows[_i].verb));
}
END_TEST

static const struct {
	enum smtpd_tls_level level;
	bool tls, auth_only, allowed;
} auth_rows[] = {
	{ SMTPD_TLS_NONE, false, false, true },
	{ SMTPD_TLS_NONE, false, true, false },
	{ SMTPD_TLS_MAY, false, true, false },
	{ SMTPD_TLS_MAY, false, false, true },
	{ SMTPD_TLS_MAY, true, true, true },
	{ SMTPD_TLS_ENCRYPT, false, false, false },	/* encrypt implies auth_only */
	{ SMTPD_TLS_ENCRYPT, true, false, true },
	{ SMTPD_TLS_ENCRYPT, true, true, true },
};

START_TEST(test_auth_rows)
{
	ck_assert_msg(smtpd_tls_auth_allowed(auth_rows[_i].level, auth_rows[_i].tls,
	                                     auth_rows[_i].auth_only) == auth_rows[_i].allowed,
	              "row %d", _i);
}
END_TEST

/* ---- files made here ---- */

static void
path_of(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", dir, name);
}

static FILE *
open_out(const char *name)
{
	char path[512];
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	return f;
}

/* A self-signed P-256 certificate for cn, and its key. */
static void
mint(const char *cn, X509 **cert, EVP_PKEY **key)
{
	X509_NAME *name;

	*key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(*key);
	*cert = X509_new();
	ck_assert_ptr_nonnull(*cert);
	X509_set_version(*cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(*cert), 7);
	X509_gmtime_adj(X509_getm_notBefore(*cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
	X509_set_pubkey(*cert, *key);
	name = X509_get_subject_name(*cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(*cert, name);
	ck_assert_int_gt(X509_sign(*cert, *key, EVP_sha256()), 0);
}

/*
 * The files the configuration rows name: a.crt/a.key and b.crt/b.key (two
 * pairs), both.pem (a.crt and a.key in one file), enc.key (a.key with a
 * passphrase), big.pem (larger than SMTPD_TLS_PEM_MAX).
 */
static void
make_files(void)
{
	static const char *const cns[] = { "a.tern.test", "b.tern.test" };
	static const char *const crt[] = { "a.crt", "b.crt" };
	static const char *const keyf[] = { "a.key", "b.key" };
	X509 *cert;
	EVP_PKEY *key;
	FILE *f;

	for (int i = 0; i < 2; i++) {
		mint(cns[i], &cert, &key);
		f = open_out(crt[i]);
		ck_assert_int_eq(PEM_write_X509(f, cert), 1);
		fclose(f);
		f = open_out(keyf[i]);
		ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
		fclose(f);
		if (i == 0) {
			f = open_out("both.pem");
			ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
			ck_assert_int_eq(PEM_write_X509(f, cert), 1);
			fclose(f);
			f = open_out("enc.key");
			ck_assert_int_eq(PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(),
			                 (unsigned char *)"secret", 6, NULL, NULL), 1);
			fclose(f);
		}
		X509_free(cert);
		EVP_PKEY_free(key);
	}
	f = open_out("big.pem");
	for (unsigned i = 0; i <= SMTPD_TLS_PEM_MAX; i++)
		fputc(i % 64 == 63 ? '\n' : 'x', f);
	fclose(f);
}

/* Write tern.conf: BASE_LINES lines, then extra with @D@ replaced by dir. */
static void
write_config(const char *extra, char *path, size_t pathsz)
{
	FILE *f = open_out("tern.conf");
	const char *p, *at;

	path_of(path, pathsz, "tern.conf");
	fprintf(f, "queue_directory = %s/spool\nmyhostname = tern.test\n"
	        "smtpd_listen = 127.0.0.1:2525\nsmtpd_error_sleep_time = 0\n", dir);
	for (p = extra; (at = strstr(p, "@D@")) != NULL; p = at + 3)
		fprintf(f, "%.*s%s", (int)(at - p), p, dir);
	fprintf(f, "%s\n", p);
	fclose(f);
}

static struct config *
load_config(const char *extra)
{
	char path[512];
	struct buf errors;
	struct config *cfg;

	write_config(extra, path, sizeof(path));
	buf_init(&errors, 65536);
	cfg = config_load(path, &errors);
	ck_assert_msg(cfg != NULL, "config: %s", buf_cstr(&errors));
	buf_free(&errors);
	return cfg;
}

/* ---- levels per listener ---- */

START_TEST(test_levels)
{
	struct config *cfg = load_config("smtpd_tls_security_level = may\n"
	                                 "submission_smtpd_tls_security_level = encrypt\n"
	                                 "smtps_smtpd_tls_security_level = none");

	ck_assert_int_eq(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SMTP), SMTPD_TLS_MAY);
	ck_assert_int_eq(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SUBMISSION), SMTPD_TLS_ENCRYPT);
	/* implicit TLS whatever the level says */
	ck_assert_int_eq(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SMTPS), SMTPD_TLS_ENCRYPT);
	config_free(cfg);
	/* the local sendmail socket: never TLS, whatever the global level */
	cfg = load_config("smtpd_tls_security_level = encrypt");
	ck_assert_int_eq(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SENDMAIL), SMTPD_TLS_NONE);
	ck_assert(smtpd_tls_gate_allows(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SENDMAIL), false,
	                                SMTPD_VERB_MAIL));
	config_free(cfg);
	cfg = load_config("");
	ck_assert_int_eq(smtpd_tls_level_of(cfg, CONFIG_LISTENER_SMTP), SMTPD_TLS_NONE);
	config_free(cfg);
}
END_TEST

/* ---- the configuration check ---- */

static const struct {
	const char *name;
	const char *extra;	/* lines after the BASE_LINES; @D@ is the directory */
	unsigned line;		/* 0: the check passes; else the line of the one error */
	const char *says;	/* in the error */
	bool smtps;		/* when it passes: smtps has key material */
} check_rows[] = {
	{ "encrypt without a certificate", "smtpd_tls_security_level = encrypt", 5,
	  "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file", false },
	{ "smtps without a certificate", "smtps_listen = 127.0.0.1:2465", 5,
	  "smtps_listen needs smtpd_tls_cert_file", false },
	{ "may without a certificate", "smtpd_tls_security_level = may", 0, NULL, false },
	{ "missing certificate file",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/nope.crt", 6,
	  "nope.crt: No such file or directory", false },
	{ "level none reads nothing",
	  "smtpd_tls_security_level = none\nsmtpd_tls_cert_file = @D@/nope.crt", 0, NULL, false },
	{ "key of another certificate",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/a.crt\n"
	  "smtpd_tls_key_file = @D@/b.key", 6, "the private key does not match the certificate",
	  false },
	{ "one file with both", "smtpd_tls_cert_file = @D@/both.pem\nsmtpd_tls_security_level = encrypt",
	  0, NULL, false },
	{ "encrypted key",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/a.crt\n"
	  "smtpd_tls_key_file = @D@/enc.key", 6, "an encrypted key is not supported", false },
	{ "missing key file",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/a.crt\n"
	  "smtpd_tls_key_file = @D@/nope.key", 7, "nope.key: No such file or directory", false },
	{ "a key where the certificate should be",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/a.key", 6,
	  "no certificate found", false },
	{ "file too large",
	  "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@/big.pem", 6, "larger than",
	  false },
	{ "a directory", "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = @D@", 6,
	  "not a regular file", false },
	{ "submission override needs a certificate",
	  "submission_listen = 127.0.0.1:2587\nsubmission_smtpd_tls_security_level = encrypt", 6,
	  "(submission listener) needs", false },
	{ "encrypt on a listener that does not listen",
	  "submission_listen =\nsubmission_smtpd_tls_security_level = encrypt", 0, NULL, false },
	{ "smtps with a certificate",
	  "smtps_listen = 127.0.0.1:2465\nsmtpd_tls_cert_file = @D@/a.crt\n"
	  "smtpd_tls_key_file = @D@/a.key", 0, NULL, true },
	{ "a bad file shared by two listeners is reported once",
	  "submission_listen = 127.0.0.1:2587\nsmtpd_tls_security_level = may\n"
	  "smtpd_tls_cert_file = @D@/nope.crt", 7, "nope.crt", false },
};

START_TEST(test_check_rows)
{
	struct config *cfg = load_config(check_rows[_i].extra);
	struct smtpd_tls_keys *keys = NULL;
	struct buf errors, frame;
	char want[600], path[512];
	const char *text;
	int rc;

	buf_init(&errors, 65536);
	rc = smtpd_tls_keys_load(cfg, &keys, &errors);
	text = buf_cstr(&errors);
	if (check_rows[_i].line == 0) {
		ck_assert_msg(rc == 0 && keys != NULL, "%s: %s", check_rows[_i].name, text);
		ck_assert_int_eq(smtpd_tls_config_check(cfg, &errors), 0);
		/* smtps has key material exactly when the row says so. */
		buf_init(&frame, SMTPD_TLS_KEYS_FRAME_MAX);
		smtpd_tls_keys_encode(keys, &frame);
		ck_assert_msg((memmem(buf_data(&frame), buf_len(&frame), "smtps", 5) != NULL) ==
		              check_rows[_i].smtps,
		              "%s: smtps key material", check_rows[_i].name);
		buf_free(&frame);
	} else {
		ck_assert_msg(rc < 0 && keys == NULL, "%s: passed", check_rows[_i].name);
		path_of(path, sizeof(path), "tern.conf");
		snprintf(want, sizeof(want), "%s:%u: ", path, check_rows[_i].line);
		ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "%s: want %s...; got %s",
		              check_rows[_i].name, want, text);
		ck_assert_msg(strstr(text, check_rows[_i].says) != NULL, "%s: want \"%s\" in %s",
		              check_rows[_i].name, check_rows[_i].says, text);
		/* one line: one problem, reported once */
		ck_assert_msg(strchr(text, '\n') == text + strlen(text) - 1, "%s: %s",
		              check_rows[_i].name, text);
	}
	buf_free(&errors);
	smtpd_tls_keys_free(keys);
	config_free(cfg);
}
END_TEST

START_TEST(test_check_defaults)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 65536);
	cfg = config_load(NULL, &errors);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(smtpd_tls_config_check(cfg, &errors), 0);
	ck_assert_uint_eq(buf_len(&errors), 0);
	config_free(cfg);
	buf_free(&errors);
}
END_TEST

/* ---- the key frame ---- */

static struct smtpd_tls_keys *
good_keys(void)
{
	struct config *cfg = load_config("smtps_listen = 127.0.0.1:2465\nsmtpd_tls_security_level = may\n"
	                                 "smtpd_tls_cert_file = @D@/a.crt\nsmtpd_tls_key_file = @D@/a.key");
	struct smtpd_tls_keys *keys;
	struct buf errors;

	buf_init(&errors, 65536);
	ck_assert_msg(smtpd_tls_keys_load(cfg, &keys, &errors) == 0, "%s", buf_cstr(&errors));
	buf_free(&errors);
	config_free(cfg);
	return keys;
}

static int
decode(const struct buf *frame, struct smtpd_tls_keys **out)
{
	struct frame_reader r;
	size_t flen;

	ck_assert_int_eq(frame_parse(buf_data(frame), buf_len(frame), &r, &flen), FRAME_OK);
	ck_assert_int_eq(r.type, FRAME_MASTER_TLS_KEYS);
	return smtpd_tls_keys_decode(&r, out);
}

START_TEST(test_frame_roundtrip)
{
	struct smtpd_tls_keys *keys = good_keys(), *back;
	struct smtpd_tls_server *srv;
	struct buf frame, again;
	char err[300], fp[128];

	buf_init(&frame, SMTPD_TLS_KEYS_FRAME_MAX);
	buf_init(&again, SMTPD_TLS_KEYS_FRAME_MAX);
	smtpd_tls_keys_encode(keys, &frame);
	ck_assert_int_eq(decode(&frame, &back), 0);
	smtpd_tls_keys_encode(back, &again);
	ck_assert_uint_eq(buf_len(&frame), buf_len(&again));
	ck_assert(memcmp(buf_data(&frame), buf_data(&again), buf_len(&frame)) == 0);
	srv = smtpd_tls_server_new(back, err, sizeof(err));
	ck_assert_msg(srv != NULL, "%s", err);
	ck_assert(smtpd_tls_server_has(srv, CONFIG_LISTENER_SMTP));
	ck_assert(smtpd_tls_server_has(srv, CONFIG_LISTENER_SMTPS));
	/* submission_listen's default 0.0.0.0:587 listens, with level may */
	ck_assert(smtpd_tls_server_has(srv, CONFIG_LISTENER_SUBMISSION));
	ck_assert(!smtpd_tls_server_has(NULL, CONFIG_LISTENER_SMTP));
	ck_assert(smtpd_tls_server_fingerprint(srv, CONFIG_LISTENER_SMTP, fp, sizeof(fp)));
	ck_assert_uint_eq(strlen(fp), 95);	/* 32 bytes, "AB:" each, no last colon */
	smtpd_tls_server_free(srv);
	smtpd_tls_keys_free(back);
	smtpd_tls_keys_free(keys);
	buf_free(&frame);
	buf_free(&again);
}
END_TEST

/* Malformed frames, built field by field. */
enum bad_kind { BAD_UNKNOWN_LISTENER, BAD_SENDMAIL, BAD_REPEATED, BAD_LEFTOVER, BAD_TOO_MANY, BAD_EMPTY_KEY,
	        BAD_TOO_BIG, BAD_SHORT, BAD_KINDS };

START_TEST(test_frame_malformed)
{
	static char big[SMTPD_TLS_PEM_MAX + 1];
	struct smtpd_tls_keys *out = (struct smtpd_tls_keys *)&out;
	struct buf f;
	size_t start;

	memset(big, 'x', sizeof(big));
	buf_init(&f, SMTPD_TLS_KEYS_FRAME_MAX + sizeof(big));
	start = frame_begin(&f, FRAME_MASTER_TLS_KEYS);
	switch (_i) {
	case BAD_UNKNOWN_LISTENER:
		frame_put_u64(&f, 1);
		frame_put_str(&f, "global");
		frame_put_str(&f, "c");
		frame_put_str(&f, "k");
		break;
	case BAD_SENDMAIL:	/* the local socket never has TLS */
		frame_put_u64(&f, 1);
		frame_put_str(&f, "sendmail");
		frame_put_str(&f, "c");
		frame_put_str(&f, "k");
		break;
	case BAD_REPEATED:
		frame_put_u64(&f, 2);
		for (int i = 0; i < 2; i++) {
			frame_put_str(&f, "smtp");
			frame_put_str(&f, "c");
			frame_put_str(&f, "k");
		}
		break;
	case BAD_LEFTOVER:
		frame_put_u64(&f, 0);
		frame_put_u64(&f, 0);
		break;
	case BAD_TOO_MANY:
		frame_put_u64(&f, 4);	/* smtp, submission, smtps: three at most */
		break;
	case BAD_EMPTY_KEY:
		frame_put_u64(&f, 1);
		frame_put_str(&f, "smtp");
		frame_put_str(&f, "c");
		frame_put_str(&f, "");
		break;
	case BAD_TOO_BIG:
		frame_put_u64(&f, 1);
		frame_put_str(&f, "smtp");
		frame_put_bytes(&f, big, sizeof(big));
		frame_put_str(&f, "k");
		break;
	case BAD_SHORT:
		frame_put_u64(&f, 1);
		frame_put_str(&f, "smtp");
		break;
	}
	ck_assert_int_eq(frame_end(&f, start), FRAME_OK);
	ck_assert_int_eq(decode(&f, &out), -1);
	ck_assert_ptr_null(out);
	buf_free(&f);
}
END_TEST

/* ---- sessions over a socketpair ---- */

struct world {
	char spool[300];
	struct smtpd_server srv;
	struct ev_io commit_io;
	struct ev_timer tick;
	int client;
	SSL_CTX *cctx;
	SSL *ssl;		/* the client's TLS, once started */
};

static void
world_commit(struct ev_io *io, unsigned revents)
{
	struct world *w = io->arg;

	(void)revents;
	spool_commit_dispatch(w->srv.spool);
}

static void
world_tick(struct ev_timer *t)
{
	evloop_break(((struct world *)t->arg)->srv.loop);
}

/* Let the server run for a few milliseconds. */
static void
pump(struct world *w)
{
	evloop_timer_start(w->srv.loop, &w->tick, 5);
	evloop_run(w->srv.loop);
}

/* A server with extra configuration (and its key material, when
 * with_keys), one session on listener l. */
static void
world_open(struct world *w, const char *extra, bool with_keys, enum config_listener l)
{
	struct smtpd_tls_keys *keys;
	struct spool_options opt;
	struct sockaddr_in peer;
	struct buf errors;
	char err[300];
	int sv[2];

	memset(w, 0, sizeof(*w));
	w->srv.cfg = load_config(extra);
	snprintf(w->spool, sizeof(w->spool), "%s/spool", dir);
	ck_assert_int_eq(spool_prepare(w->spool, getuid(), getgid(), err, sizeof(err)), 0);
	memset(&opt, 0, sizeof(opt));
	opt.fsync_threads = 1;
	opt.map_size = 1 << 20;
	w->srv.spool = spool_open(w->spool, &opt, err, sizeof(err));
	ck_assert_msg(w->srv.spool != NULL, "spool: %s", err);
	w->srv.loop = evloop_new();
	snprintf(w->srv.hostname, sizeof(w->srv.hostname), "tern.test");
	ck_assert_int_eq(evloop_io_add(w->srv.loop, &w->commit_io, spool_commit_fd(w->srv.spool),
	                               EV_READ, world_commit, w), 0);
	evloop_timer_init(&w->tick, world_tick, w);
	if (with_keys) {
		buf_init(&errors, 65536);
		ck_assert_msg(smtpd_tls_keys_load(w->srv.cfg, &keys, &errors) == 0, "%s",
		              buf_cstr(&errors));
		buf_free(&errors);
		w->srv.tls = smtpd_tls_server_new(keys, err, sizeof(err));
		ck_assert_msg(w->srv.tls != NULL, "%s", err);
		smtpd_tls_keys_free(keys);
	}
	w->cctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(w->cctx);
	SSL_CTX_set_verify(w->cctx, SSL_VERIFY_NONE, NULL);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	w->client = sv[1];
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons(40000);
	inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
	smtpd_session_start(&w->srv, sv[0], l, (struct sockaddr *)&peer, sizeof(peer),
	                    (struct sockaddr *)&peer, sizeof(peer));
}

static void
world_close(struct world *w)
{
	char cmd[400];

	SSL_free(w->ssl);
	SSL_CTX_free(w->cctx);
	close(w->client);
	for (int i = 0; i < 40 && w->srv.nsessions > 0; i++)
		pump(w);
	ck_assert_uint_eq(w->srv.nsessions, 0);
	smtpd_tls_server_free(w->srv.tls);
	spool_close(w->srv.spool);
	evloop_free(w->srv.loop);
	config_free(w->srv.cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->spool);
	ck_assert_int_eq(system(cmd), 0);
}

/* Final reply lines ("NNN " at a line start) in text. */
static int
finals(const char *text)
{
	int n = 0;

	for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		n += strlen(p) >= 4 && p[3] == ' ';
	return n;
}

/* Client I/O, in plain text or through w->ssl: -1 with EAGAIN when it
 * would block. */
static ssize_t
client_write(struct world *w, const char *p, size_t len)
{
	int n;

	if (w->ssl == NULL)
		return write(w->client, p, len);
	n = SSL_write(w->ssl, p, (int)len);
	if (n > 0)
		return n;
	errno = EAGAIN;
	return -1;
}

static ssize_t
client_read(struct world *w, char *p, size_t len)
{
	int n, e;

	if (w->ssl == NULL)
		return read(w->client, p, len);
	n = SSL_read(w->ssl, p, (int)len);
	if (n > 0)
		return n;
	e = SSL_get_error(w->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

/* Send input, let the server run until want final replies came (or the
 * connection ended); everything received (caller frees). */
static char *
talk(struct world *w, const char *input, int want)
{
	size_t off = 0, len = strlen(input);
	int64_t until = evloop_update_time(w->srv.loop) + DEADLINE_MS;
	struct buf got;
	char tmp[4096], *text;
	ssize_t n;
	bool eof = false;

	buf_init(&got, 1 << 20);
	while (evloop_update_time(w->srv.loop) < until) {
		if (off < len && (n = client_write(w, input + off, len - off)) > 0)
			off += (size_t)n;
		pump(w);
		while ((n = client_read(w, tmp, sizeof(tmp))) > 0)
			buf_append(&got, tmp, (size_t)n);
		eof = eof || n == 0;
		if (off == len && (finals(buf_cstr(&got)) >= want || eof))
			break;
	}
	text = strdup(buf_cstr(&got));
	buf_free(&got);
	return text;
}

/* The final replies of text, in order, start with want's "220|250 2.1.0|..." */
static void
expect(const char *text, const char *want)
{
	char wants[1024], *tok, *save = NULL;
	const char *p = text;

	snprintf(wants, sizeof(wants), "%s", want);
	for (tok = strtok_r(wants, "|", &save); tok != NULL; tok = strtok_r(NULL, "|", &save)) {
		while (strlen(p) >= 4 && p[3] == '-')
			p = strchr(p, '\n') + 1;
		ck_assert_msg(strncmp(p, tok, strlen(tok)) == 0, "want \"%s\" in:\n%s", tok, text);
		p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : p + strlen(p);
	}
	ck_assert_msg(*p == '\0', "extra replies after %s:\n%s", want, p);
}

static void
talk_expect(struct world *w, const char *input, const char *want, const char *ehlo_has,
            const char *ehlo_lacks)
{
	int n = 1;
	char *text;

	for (const char *p = want; *p; p++)
		n += *p == '|';
	text = talk(w, input, n);
	expect(text, want);
	if (ehlo_has != NULL)
		ck_assert_msg(strstr(text, ehlo_has) != NULL, "no %s in:\n%s", ehlo_has, text);
	if (ehlo_lacks != NULL)
		ck_assert_msg(strstr(text, ehlo_lacks) == NULL, "%s in:\n%s", ehlo_lacks, text);
	free(text);
}

/* The client's handshake, the server stepping between; true when it
 * completed. */
static bool
handshake(struct world *w)
{
	w->ssl = SSL_new(w->cctx);
	ck_assert_ptr_nonnull(w->ssl);
	SSL_set_fd(w->ssl, w->client);
	SSL_set_connect_state(w->ssl);
	for (int i = 0; i < 400; i++) {
		int r = SSL_do_handshake(w->ssl), e = SSL_get_error(w->ssl, r);

		if (r == 1)
			return true;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			return false;
		}
		pump(w);
	}
	return false;
}

#define CERT_A "smtpd_tls_cert_file = @D@/a.crt\nsmtpd_tls_key_file = @D@/a.key\n"
#define MAIL_FROM "MAIL FROM:<a@tern.test>\r\n"

START_TEST(test_offer)
{
	struct world w;

	/* may and a certificate: offered */
	world_open(&w, CERT_A "smtpd_tls_security_level = may", true, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\n", "220|250", "250-STARTTLS\r\n", NULL);
	world_close(&w);
	/* level none: not offered, and refused */
	world_open(&w, CERT_A "smtpd_tls_security_level = none", true, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\nSTARTTLS\r\n", "220|250|502 5.5.1 Error: command not implemented",
	            NULL, "STARTTLS");
	world_close(&w);
	/* may without a certificate: not offered, 454 (RFC 3207 section 4) */
	world_open(&w, "smtpd_tls_security_level = may", false, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\nSTARTTLS\r\n", "220|250|454 4.7.0", NULL, "STARTTLS");
	world_close(&w);
}
END_TEST

START_TEST(test_starttls_resets_and_discards)
{
	struct world w;

	world_open(&w, CERT_A "smtpd_tls_security_level = may", true, CONFIG_LISTENER_SMTP);
	/* Syntax first; then a transaction under way, and RSET pipelined
	 * behind STARTTLS in the same write (CVE-2011-0411). */
	talk_expect(&w, "EHLO c\r\nSTARTTLS now\r\n" MAIL_FROM "STARTTLS\r\nRSET\r\n",
	            "220|250|501 5.5.4 Syntax: STARTTLS|250 2.1.0|220 2.0.0 Ready to start TLS", NULL,
	            NULL);
	ck_assert(handshake(&w));
	/* No answer to the RSET; the transaction and the HELO name are gone:
	 * MAIL before a new EHLO is 503; the new EHLO offers no STARTTLS. */
	talk_expect(&w, MAIL_FROM "EHLO c\r\n" MAIL_FROM "STARTTLS\r\nQUIT\r\n",
	            "503 5.5.1 Error: send HELO/EHLO first|250|250 2.1.0|"
	            "554 5.5.1 Error: TLS already active|221", NULL, "STARTTLS\r\n");
	world_close(&w);
}
END_TEST

START_TEST(test_encrypt_gate)
{
	struct world w;

	world_open(&w, CERT_A "smtpd_tls_security_level = encrypt", true, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\n" MAIL_FROM "NOOP\r\nRSET\r\nVRFY a\r\nHELP\r\nSTARTTLS\r\n",
	            "220|250|530 5.7.0 Must issue a STARTTLS command first|250|250|530 5.7.0|"
	            "530 5.7.0|220 2.0.0", "250-STARTTLS", NULL);
	ck_assert(handshake(&w));
	talk_expect(&w, "EHLO c\r\n" MAIL_FROM "QUIT\r\n", "250|250 2.1.0|221", NULL, "STARTTLS");
	world_close(&w);
}
END_TEST

START_TEST(test_smtps)
{
	struct world w;
	char *text;

	world_open(&w, CERT_A "smtps_listen = 127.0.0.1:2465", true, CONFIG_LISTENER_SMTPS);
	/* Nothing in plain text: the greeting waits for the handshake. */
	pump(&w);
	text = talk(&w, "", 0);
	ck_assert_str_eq(text, "");
	free(text);
	ck_assert(handshake(&w));
	talk_expect(&w, "EHLO c\r\nSTARTTLS\r\n" MAIL_FROM "QUIT\r\n",
	            "220 tern.test|250|554 5.5.1|250 2.1.0|221", NULL, "STARTTLS\r\n");
	world_close(&w);
}
END_TEST

/* Plain text where the handshake should be: the session ends without a
 * reply (the handshake fails; nothing is read as a command). */
START_TEST(test_garbage_handshake)
{
	struct world w;
	char *text;

	world_open(&w, CERT_A "smtpd_tls_security_level = may", true, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\nSTARTTLS\r\n", "220|250|220 2.0.0", NULL, NULL);
	text = talk(&w, "GET / HTTP/1.0\r\n\r\nMAIL FROM:<a@b>\r\n", 1);
	/* no reply line: only (perhaps an alert and) the end of the connection */
	ck_assert_int_eq(finals(text), 0);
	free(text);
	for (int i = 0; i < 40 && w.srv.nsessions > 0; i++)
		pump(&w);
	ck_assert_uint_eq(w.srv.nsessions, 0);
	world_close(&w);
}
END_TEST

/* A whole message through TLS: ESMTPS in our Received header. */
START_TEST(test_received_esmtps)
{
	struct world w;
	char path[600], line[400], *text, *q;
	FILE *f;

	world_open(&w, CERT_A "smtpd_tls_security_level = may", true, CONFIG_LISTENER_SMTP);
	talk_expect(&w, "EHLO c\r\nSTARTTLS\r\n", "220|250|220 2.0.0", NULL, NULL);
	ck_assert(handshake(&w));
	text = talk(&w, "EHLO c.test\r\n" MAIL_FROM "RCPT TO:<b@tern.test>\r\nDATA\r\n"
	                "Subject: t\r\n\r\nhi\r\n.\r\n", 5);
	expect(text, "250|250 2.1.0|250 2.1.5|354|250 2.0.0 Ok: queued as");
	q = strstr(text, "queued as ");
	ck_assert_ptr_nonnull(q);
	q += strlen("queued as ");
	q[strcspn(q, "\r\n")] = '\0';
	snprintf(path, sizeof(path), "%s/msg/%s", w.spool, q);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));	/* Received: from c.test ... */
	ck_assert_msg(strstr(line, "from c.test") != NULL, "%s", line);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_msg(strstr(line, "with ESMTPS id") != NULL, "%s", line);
	fclose(f);
	free(text);
	world_close(&w);
}
END_TEST

static void
setup_files(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_files();
}

static void
remove_files(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

int
main(void)
{
	Suite *s = suite_create("smtpd_tls");
	TCase *tc = tcase_create("all");
	SRunner *sr;
	int failed;

	/* As in the smtpd role: OpenSSL writes (alerts) with write(2), and a
	 * peer that is gone must be EPIPE, not the end of the process. */
	signal(SIGPIPE, SIG_IGN);
	tcase_add_unchecked_fixture(tc, setup_files, remove_files);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_gate_rows, 0, (int)(sizeof(gate_rows) / sizeof(gate_rows[0])));
	tcase_add_loop_test(tc, test_auth_rows, 0, (int)(sizeof(auth_rows) / sizeof(auth_rows[0])));
	tcase_add_test(tc, test_levels);
	tcase_add_loop_test(tc, test_check_rows, 0, (int)(sizeof(check_rows) / sizeof(check_rows[0])));
	tcase_add_test(tc, test_check_defaults);
	tcase_add_test(tc, test_frame_roundtrip);
	tcase_add_loop_test(tc, test_frame_malformed, 0, BAD_KINDS);
	tcase_add_test(tc, test_offer);
	tcase_add_test(tc, test_starttls_resets_and_discards);
	tcase_add_test(tc, test_encrypt_gate);
	tcase_add_test(tc, test_smtps);
	tcase_add_test(tc, test_garbage_handshake);
	tcase_add_test(tc, test_received_esmtps);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
