/* Unit tests for delivery/smtp_tls_policy.c: policy map values, protocols
 * lists, the keys a next hop is looked up under, TLSA usability. One row
 * per input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "delivery/smtp_tls_policy.h"

/* ---- protocols ---- */

static const struct proto_row {
	const char *in;
	int min, max;		/* 0, 0: an error */
	const char *err;	/* part of the error */
} proto_rows[] = {
	{ "", TLS1_2_VERSION, TLS1_3_VERSION, NULL },
	{ ">=TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION, NULL },
	{ ">=TLSv1", TLS1_2_VERSION, TLS1_3_VERSION, NULL },
	{ "!SSLv2, !SSLv3", TLS1_2_VERSION, TLS1_3_VERSION, NULL },
	{ "!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", TLS1_2_VERSION, TLS1_3_VERSION, NULL },
	{ ">=TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION, NULL },
	{ "TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION, NULL },
	{ "tlsv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NULL },
	{ "<=TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NULL },
	{ "!TLSv1.3", TLS1_2_VERSION, TLS1_2_VERSION, NULL },
	{ "TLSv1.2 TLSv1.3 !TLSv1.2", TLS1_3_VERSION, TLS1_3_VERSION, NULL },
	{ "TLSv1.1", 0, 0, "no TLS protocol left" },
	{ "<=TLSv1.1", 0, 0, "no TLS protocol left" },
	{ "!TLSv1.2 !TLSv1.3", 0, 0, "no TLS protocol left" },
	{ ">=TLSv1.3 <=TLSv1.2", 0, 0, "no TLS protocol left" },
	{ "TLSv1.4", 0, 0, "invalid TLS protocol name \"TLSv1.4\"" },
	{ "!", 0, 0, "invalid TLS protocol name \"\"" },
	{ ">TLSv1.2", 0, 0, "invalid TLS protocol name \">TLSv1.2\"" },
};

START_TEST(test_protocols)
{
	const struct proto_row *r = &proto_rows[_i];
	struct smtp_tls_protocols p = { 0, 0 };
	char err[200] = "";
	int rc = smtp_tls_protocols_parse(r->in, &p, err, sizeof(err));

	if (r->err == NULL) {
		ck_assert_msg(rc == 0, "\"%s\": %s", r->in, err);
		ck_assert_int_eq(p.min, r->min);
		ck_assert_int_eq(p.max, r->max);
	} else {
		ck_assert_msg(rc < 0, "\"%s\" accepted", r->in);
		ck_assert_msg(strstr(err, r->err) != NULL, "\"%s\": %s", r->in, err);
	}
}
END_TEST

/* ---- policy values ---- */

static const struct policy_row {
	const char *in;
	const char *err;		/* part of the error, or NULL */
	enum smtp_tls_level level;
	enum smtp_tls_grade grade;
	int min, max;			/* protocols=, 0 when not given */
	const char *match;		/* the patterns, "kind:name" joined by "," */
} policy_rows[] = {
	{ "encrypt", NULL, SMTP_TLS_ENCRYPT, 0, 0, 0, "" },
	{ "  may  ", NULL, SMTP_TLS_MAY, 0, 0, 0, "" },
	{ "NONE", NULL, SMTP_TLS_NONE, 0, 0, 0, "" },
	{ "dane", NULL, SMTP_TLS_DANE, 0, 0, 0, "" },
	{ "dane-only", NULL, SMTP_TLS_DANE_ONLY, 0, 0, 0, "" },
	{ "verify match=hostname:nexthop ciphers=high", NULL, SMTP_TLS_VERIFY,
	  SMTP_TLS_GRADE_HIGH, 0, 0, "h,n" },
	{ "verify match=dot-nexthop:Mail.Example.COM match=.example.net", NULL, SMTP_TLS_VERIFY, 0,
	  0, 0, "d,=mail.example.com,=.example.net" },
	{ "verify, match=hostname", NULL, SMTP_TLS_VERIFY, 0, 0, 0, "h" },
	{ "encrypt protocols=!SSLv2:!SSLv3:!TLSv1.2", NULL, SMTP_TLS_ENCRYPT, 0, TLS1_3_VERSION,
	  TLS1_3_VERSION, "" },
	{ "encrypt protocols=>=TLSv1.2 ciphers=medium", NULL, SMTP_TLS_ENCRYPT,
	  SMTP_TLS_GRADE_MEDIUM, TLS1_2_VERSION, TLS1_3_VERSION, "" },
	{ "", "invalid empty policy", 0, 0, 0, 0, NULL },
	{ " , ", "invalid empty policy", 0, 0, 0, 0, NULL },
	{ "secure", "invalid security level \"secure\"", 0, 0, 0, 0, NULL },
	{ "must", "invalid security level \"must\"", 0, 0, 0, 0, NULL },
	{ "encrypt foo=bar", "invalid attribute name: \"foo\"", 0, 0, 0, 0, NULL },
	{ "encrypt exclude=aNULL", "invalid attribute name: \"exclude\"", 0, 0, 0, 0, NULL },
	{ "encrypt ciphers", "malformed attribute/value pair \"ciphers\"", 0, 0, 0, 0, NULL },
	{ "encrypt =high", "malformed attribute/value pair \"=high\"", 0, 0, 0, 0, NULL },
	{ "encrypt ciphers=low", "attribute \"ciphers\" has bad value: \"low\"", 0, 0, 0, 0, NULL },
	{ "encrypt ciphers=high ciphers=high", "\"ciphers\" is specified multiple times", 0, 0, 0,
	  0, NULL },
	{ "encrypt protocols=TLSv1.3 protocols=TLSv1.3", "\"protocols\" is specified multiple times",
	  0, 0, 0, 0, NULL },
	{ "encrypt protocols=TLSv1", "no TLS protocol left", 0, 0, 0, 0, NULL },
	{ "may match=hostname", "attribute \"match\" invalid at security level \"may\"", 0, 0, 0,
	  0, NULL },
	{ "dane match=nexthop", "attribute \"match\" invalid at security level \"dane\"", 0, 0, 0,
	  0, NULL },
	{ "verify match=", "attribute \"match\" has empty value", 0, 0, 0, 0, NULL },
	{ "verify match=a:b:c:d:e:f:g:h:i", "more than 8 patterns", 0, 0, 0, 0, NULL },
	{ "verify { match = hostname }", "{ } values are not supported", 0, 0, 0, 0, NULL },
};

static void
match_text(const struct smtp_tls_policy *p, char *out, size_t outsz)
{
	static const char kinds[] = { [SMTP_TLS_MATCH_HOSTNAME] = 'h', [SMTP_TLS_MATCH_NEXTHOP] = 'n',
		                      [SMTP_TLS_MATCH_DOT_NEXTHOP] = 'd', [SMTP_TLS_MATCH_NAME] = '=' };
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n_match && o < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%c%s", i ? "," : "",
		                      kinds[p->match[i].kind], p->match[i].name);
}

START_TEST(test_policy)
{
	const struct policy_row *r = &policy_rows[_i];
	struct smtp_tls_policy p;
	char err[300] = "", m[600];
	int rc = smtp_tls_policy_parse(r->in, &p, err, sizeof(err));

	if (r->err != NULL) {
		ck_assert_msg(rc < 0, "\"%s\" accepted", r->in);
		ck_assert_msg(strstr(err, r->err) != NULL, "\"%s\": %s", r->in, err);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": %s", r->in, err);
	ck_assert_int_eq(p.level, r->level);
	ck_assert_int_eq(p.grade, r->grade);
	ck_assert_int_eq(p.have_protocols, r->min != 0);
	if (r->min != 0) {
		ck_assert_int_eq(p.protocols.min, r->min);
		ck_assert_int_eq(p.protocols.max, r->max);
	}
	match_text(&p, m, sizeof(m));
	ck_assert_str_eq(m, r->match);
}
END_TEST

START_TEST(test_policy_too_long)
{
	char v[SMTP_TLS_POLICY_VALUE_MAX + 20], err[200];
	struct smtp_tls_policy p;

	memset(v, ' ', sizeof(v));
	memcpy(v, "encrypt", 7);
	v[sizeof(v) - 1] = '\0';
	ck_assert_int_lt(smtp_tls_policy_parse(v, &p, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "policy longer than"));
}
END_TEST

/* ---- keys ---- */

static const struct key_row {
	const char *dest;
	const char *keys;	/* joined by " " */
} key_rows[] = {
	{ "example.com", "example.com .com" },
	{ "a.b.example.org", "a.b.example.org .b.example.org .example.org .org" },
	{ "localhost", "localhost" },
	{ "[mx.example.net]:587", "[mx.example.net]:587" },
	{ "[mx.example.net]", "[mx.example.net]" },
	{ "example.com:2525", "example.com:2525" },
	{ "[192.0.2.7]", "[192.0.2.7]" },
	{ "example.com.", "example.com. .com." },
	{ "", "" },
};

START_TEST(test_keys)
{
	const struct key_row *r = &key_rows[_i];
	char got[512] = "";
	const char *k = NULL;
	size_t o = 0;
	int n = 0;

	while ((k = smtp_tls_policy_next_key(r->dest, k)) != NULL && n++ < 20)
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", o ? " " : "", k);
	ck_assert_str_eq(got, r->keys);
}
END_TEST

/* ---- TLSA ---- */

static unsigned char spki[512], cert[1024];
static size_t spki_len, cert_len;

/* A P-256 key's SubjectPublicKeyInfo and a self-signed certificate, DER. */
static void
make_der(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	unsigned char *p;
	int n;

	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(x);
	p = spki;
	n = i2d_PUBKEY(k, &p);
	ck_assert_int_gt(n, 0);
	spki_len = (size_t)n;
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"mx.example", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	p = cert;
	n = i2d_X509(x, &p);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, sizeof(cert));
	cert_len = (size_t)n;
	X509_free(x);
	EVP_PKEY_free(k);
}

enum tlsa_data { D_SHA256, D_SHA512, D_SHORT, D_SPKI, D_CERT, D_JUNK, D_SPKI_PLUS };

static const struct tlsa_row {
	bool len_ok;
	uint8_t usage, selector, mtype;
	enum tlsa_data data;
	const char *why;	/* NULL: usable */
} tlsa_rows[] = {
	{ true, 3, 1, 1, D_SHA256, NULL },
	{ true, 3, 0, 1, D_SHA256, NULL },
	{ true, 2, 0, 1, D_SHA256, NULL },
	{ true, 2, 1, 2, D_SHA512, NULL },
	{ true, 3, 1, 0, D_SPKI, NULL },
	{ true, 2, 0, 0, D_CERT, NULL },
	{ true, 0, 0, 1, D_SHA256, "unsupported certificate usage 0" },
	{ true, 1, 1, 1, D_SHA256, "unsupported certificate usage 1" },
	{ true, 4, 1, 1, D_SHA256, "unsupported certificate usage 4" },
	{ true, 3, 2, 1, D_SHA256, "unsupported selector 2" },
	{ true, 3, 1, 3, D_SHA256, "unsupported matching type 3" },
	{ true, 3, 1, 255, D_SHA256, "unsupported matching type 255" },
	{ true, 3, 1, 1, D_SHORT, "malformed sha256 digest, length 31" },
	{ true, 3, 1, 2, D_SHA256, "malformed sha512 digest, length 32" },
	{ true, 3, 1, 0, D_CERT, "malformed public key" },
	{ true, 3, 0, 0, D_SPKI, "malformed certificate" },
	{ true, 3, 1, 0, D_JUNK, "malformed public key" },
	{ true, 3, 1, 0, D_SPKI_PLUS, "malformed public key" },
	{ false, 0, 0, 0, D_SHA256, "truncated length 2" },
};

START_TEST(test_tlsa)
{
	const struct tlsa_row *r = &tlsa_rows[_i];
	unsigned char buf[1100];
	size_t len = 0;
	char why[200] = "";
	bool ok;

	if (spki_len == 0)
		make_der();
	memset(buf, 0xab, sizeof(buf));
	switch (r->data) {
	case D_SHA256: len = 32; break;
	case D_SHA512: len = 64; break;
	case D_SHORT: len = 31; break;
	case D_SPKI: memcpy(buf, spki, spki_len); len = spki_len; break;
	case D_SPKI_PLUS: memcpy(buf, spki, spki_len); len = spki_len + 1; break;
	case D_CERT: memcpy(buf, cert, cert_len); len = cert_len; break;
	case D_JUNK: len = 40; break;
	}
	ok = smtp_tls_tlsa_usable(r->len_ok, r->len_ok ? len + 3 : 2, r->usage, r->selector,
	                          r->mtype, buf, len, why, sizeof(why));
	if (r->why == NULL) {
		ck_assert_msg(ok, "row %d: %s", _i, why);
	} else {
		ck_assert_msg(!ok, "row %d usable", _i);
		ck_assert_str_eq(why, r->why);
	}
}
END_TEST

START_TEST(test_dane_add_free)
{
	struct smtp_tls_dane d = { 0 };
	unsigned char b[32] = { 1, 2, 3 };

	for (int i = 0; i < SMTP_TLS_TLSA_MAX; i++)
		ck_assert(smtp_tls_dane_add(&d, 3, 1, 1, b, sizeof(b)));
	ck_assert(!smtp_tls_dane_add(&d, 3, 1, 1, b, sizeof(b)));
	ck_assert_uint_eq(d.n, SMTP_TLS_TLSA_MAX);
	ck_assert_uint_eq(d.rr[0].len, 32);
	ck_assert_int_eq(d.rr[0].data[2], 3);
	smtp_tls_dane_free(&d);
	ck_assert_uint_eq(d.n, 0);
	ck_assert(smtp_tls_dane_add(&d, 2, 0, 0, b, 0));
	smtp_tls_dane_free(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("smtp_tls_policy");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_protocols, 0, (int)(sizeof(proto_rows) / sizeof(proto_rows[0])));
	tcase_add_loop_test(tc, test_policy, 0, (int)(sizeof(policy_rows) / sizeof(policy_rows[0])));
	tcase_add_test(tc, test_policy_too_long);
	tcase_add_loop_test(tc, test_keys, 0, (int)(sizeof(key_rows) / sizeof(key_rows[0])));
	tcase_add_loop_test(tc, test_tlsa, 0, (int)(sizeof(tlsa_rows) / sizeof(tlsa_rows[0])));
	tcase_add_test(tc, test_dane_add_free);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
