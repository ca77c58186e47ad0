/*
 * smtp_tls_policy: policy map values, protocols lists, policy keys and
 * TLSA usability (the header says what each means). Pure: returns errors
 * as text, never logs; the only allocations are the TLSA copies.
 */
#include "delivery/smtp_tls_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"

/* RFC 6698 section 2.1.3, RFC 7218 section 2.3. */
#define TLSA_MTYPE_FULL 0
#define TLSA_MTYPE_SHA256 1
#define TLSA_MTYPE_SHA512 2
#define TLSA_SHA256_LEN 32
#define TLSA_SHA512_LEN 64
/* RFC 7218 section 2.1: DANE-TA(2), DANE-EE(3); PKIX-TA(0) and PKIX-EE(1)
 * are "unusable" for SMTP (RFC 7672 section 3.1.3). */
#define TLSA_USAGE_DANE_TA 2
#define TLSA_USAGE_DANE_EE 3
#define TLSA_SELECTOR_CERT 0
#define TLSA_SELECTOR_SPKI 1

#define POLICY_SEPARATORS " \t\r\n,"
#define PROTOCOL_SEPARATORS " \t\r\n,:"

/* ---- protocols ---- */

/* Postfix's protocol names, oldest first. TLS1_2_VERSION and
 * TLS1_3_VERSION are the only ones tern speaks. */
static const struct {
	const char *name;
	int version;
} smtp_tls_protocol_names[] = {
	{ "SSLv2", SSL2_VERSION },
	{ "SSLv3", SSL3_VERSION },
	{ "TLSv1", TLS1_VERSION },
	{ "TLSv1.1", TLS1_1_VERSION },
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
};

#define SMTP_TLS_NPROTOCOLS (sizeof(smtp_tls_protocol_names) / sizeof(smtp_tls_protocol_names[0]))

static int
protocol_index(const char *name, size_t len)
{
	for (size_t i = 0; i < SMTP_TLS_NPROTOCOLS; i++)
		if (strlen(smtp_tls_protocol_names[i].name) == len &&
		    strncasecmp(smtp_tls_protocol_names[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int
smtp_tls_protocols_parse(const char *s, struct smtp_tls_protocols *out, char *err, size_t errsz)
{
	bool include[SMTP_TLS_NPROTOCOLS] = { false }, any_include = false;
	bool exclude[SMTP_TLS_NPROTOCOLS] = { false };
	int lo = 0, hi = (int)SMTP_TLS_NPROTOCOLS - 1, k, first = -1, last = -1;
	size_t i = 0, n, skip;

	while (s[i] != '\0') {
		i += strspn(s + i, PROTOCOL_SEPARATORS);
		n = strcspn(s + i, PROTOCOL_SEPARATORS);
		if (n == 0)
			break;
		skip = s[i] == '!' ? 1 : (s[i] == '>' || s[i] == '<') && s[i + 1] == '=' ? 2 : 0;
		if ((k = protocol_index(s + i + skip, n - skip)) < 0) {
			snprintf(err, errsz, "invalid TLS protocol name \"%.*s\"", (int)(n - skip > 64 ? 64 : n - skip),
			         s + i + skip);
			return -1;
		}
		if (skip == 1)
			exclude[k] = true;
		else if (skip == 2 && s[i] == '>')
			lo = k > lo ? k : lo;
		else if (skip == 2)
			hi = k < hi ? k : hi;
		else
			include[k] = any_include = true;
		i += n;
	}
	for (k = 0; k < (int)SMTP_TLS_NPROTOCOLS; k++) {
		int v = smtp_tls_protocol_names[k].version;

		if (k < lo || k > hi || exclude[k] || (any_include && !include[k]) ||
		    v < TLS1_2_VERSION)
			continue;
		/* Two versions are left at most: the range has no hole. */
		if (first < 0)
			first = k;
		last = k;
	}
	if (first < 0) {
		snprintf(err, errsz, "no TLS protocol left: tern speaks TLSv1.2 and TLSv1.3 only");
		return -1;
	}
	out->min = smtp_tls_protocol_names[first].version;
	out->max = smtp_tls_protocol_names[last].version;
	return 0;
}

/* ---- policy values ---- */

/* match=: patterns separated by ':' (Postfix's argv_split(val, ":")). */
static int
policy_add_match(struct smtp_tls_policy *p, const char *val, size_t len, char *err, size_t errsz)
{
	size_t i = 0, n;

	while (i < len) {
		struct smtp_tls_match *m;

		n = 0;
		while (i + n < len && val[i + n] != ':')
			n++;
		if (n == 0) {
			i++;
			continue;
		}
		if (p->n_match == SMTP_TLS_MATCH_MAX) {
			snprintf(err, errsz, "attribute \"match\" has more than %d patterns",
			         SMTP_TLS_MATCH_MAX);
			return -1;
		}
		m = &p->match[p->n_match];
		memset(m, 0, sizeof(*m));
		if (n == 8 && strncasecmp(val + i, "hostname", n) == 0) {
			m->kind = SMTP_TLS_MATCH_HOSTNAME;
		} else if (n == 7 && strncasecmp(val + i, "nexthop", n) == 0) {
			m->kind = SMTP_TLS_MATCH_NEXTHOP;
		} else if (n == 11 && strncasecmp(val + i, "dot-nexthop", n) == 0) {
			m->kind = SMTP_TLS_MATCH_DOT_NEXTHOP;
		} else {
			if (n >= SMTP_TLS_NAME_SIZE) {
				snprintf(err, errsz, "attribute \"match\": pattern too long");
				return -1;
			}
			m->kind = SMTP_TLS_MATCH_NAME;
			for (size_t j = 0; j < n; j++) {
				char c = val[i + j];

				m->name[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
			}
		}
		p->n_match++;
		i += n;
	}
	return 0;
}

/* One name=value attribute of a policy whose level is known. */
static int
policy_attribute(struct smtp_tls_policy *p, const char *tok, size_t n, bool *seen_ciphers,
                 char *err, size_t errsz)
{
	const char *eq = memchr(tok, '=', n);
	char val[SMTP_TLS_POLICY_VALUE_MAX + 1];
	size_t nlen, vlen;

	if (eq == NULL || eq == tok) {
		snprintf(err, errsz, "malformed attribute/value pair \"%.*s\": missing '='",
		         (int)(n > 100 ? 100 : n), tok);
		return -1;
	}
	nlen = (size_t)(eq - tok);
	vlen = n - nlen - 1;
	memcpy(val, eq + 1, vlen);
	val[vlen] = '\0';
	if (nlen == 7 && strncasecmp(tok, "ciphers", nlen) == 0) {
		if (*seen_ciphers) {
			snprintf(err, errsz, "attribute \"ciphers\" is specified multiple times");
			return -1;
		}
		*seen_ciphers = true;
		if (strcasecmp(val, "high") == 0) {
			p->grade = SMTP_TLS_GRADE_HIGH;
		} else if (strcasecmp(val, "medium") == 0) {
			p->grade = SMTP_TLS_GRADE_MEDIUM;
		} else {
			/* Postfix also has low, export and null: tern never
			 * goes below OpenSSL's security level 2. */
			snprintf(err, errsz, "attribute \"ciphers\" has bad value: \"%.64s\" "
			         "(tern knows high and medium)", val);
			return -1;
		}
		return 0;
	}
	if (nlen == 9 && strncasecmp(tok, "protocols", nlen) == 0) {
		if (p->have_protocols) {
			snprintf(err, errsz, "attribute \"protocols\" is specified multiple times");
			return -1;
		}
		p->have_protocols = true;
		return smtp_tls_protocols_parse(val, &p->protocols, err, errsz);
	}
	if (nlen == 5 && strncasecmp(tok, "match", nlen) == 0) {
		if (vlen == 0) {
			snprintf(err, errsz, "attribute \"match\" has empty value");
			return -1;
		}
		if (p->level != SMTP_TLS_VERIFY) {
			snprintf(err, errsz, "attribute \"match\" invalid at security level \"%s\"",
			         smtp_tls_level_name(p->level));
			return -1;
		}
		return policy_add_match(p, val, vlen, err, errsz);
	}
	snprintf(err, errsz, "invalid attribute name: \"%.*s\"", (int)(nlen > 64 ? 64 : nlen), tok);
	return -1;
}

int
smtp_tls_policy_parse(const char *value, struct smtp_tls_policy *out, char *err, size_t errsz)
{
	char level[16];
	bool seen_ciphers = false;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	if (strlen(value) > SMTP_TLS_POLICY_VALUE_MAX) {
		snprintf(err, errsz, "policy longer than %d bytes", SMTP_TLS_POLICY_VALUE_MAX);
		return -1;
	}
	i = strspn(value, POLICY_SEPARATORS);
	n = strcspn(value + i, POLICY_SEPARATORS);
	if (n == 0) {
		snprintf(err, errsz, "invalid empty policy");
		return -1;
	}
	if (n >= sizeof(level) || (memcpy(level, value + i, n), level[n] = '\0',
	                           smtp_tls_level_parse(level, &out->level) < 0)) {
		snprintf(err, errsz, "invalid security level \"%.*s\"", (int)(n > 64 ? 64 : n),
		         value + i);
		return -1;
	}
	for (i += n;; i += n) {
		i += strspn(value + i, POLICY_SEPARATORS);
		n = strcspn(value + i, POLICY_SEPARATORS);
		if (n == 0)
			return 0;
		if (value[i] == '{') {
			/* Postfix 3.x allows { name = value } with spaces; no
			 * attribute tern knows needs them. */
			snprintf(err, errsz, "malformed attribute/value pair \"%.*s\": "
			         "{ } values are not supported", (int)(n > 64 ? 64 : n), value + i);
			return -1;
		}
		if (policy_attribute(out, value + i, n, &seen_ciphers, err, errsz) < 0)
			return -1;
	}
}

/* ---- keys ---- */

/* Is s a plain domain (letters, digits, '-', '_', '.'), no brackets or port? */
static bool
policy_plain_domain(const char *s)
{
	if (s[0] == '\0' || s[0] == '.')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

const char *
smtp_tls_policy_next_key(const char *dest, const char *prev)
{
	const char *dot;

	if (prev == NULL)
		return dest[0] != '\0' ? dest : NULL;
	if (!policy_plain_domain(dest))
		return NULL;
	/* "a.example.com" -> ".example.com" -> ".com" -> none. */
	dot = strchr(prev + 1, '.');
	return dot != NULL && dot[1] != '\0' ? dot : NULL;
}

/* ---- TLSA ---- */

/* Does data parse as exactly one DER certificate (selector 0) or
 * SubjectPublicKeyInfo (selector 1)? OpenSSL would refuse it too
 * (SSL_dane_tlsa_add(3)), but we must know before connecting whether
 * any record is usable. */
static bool
tlsa_der_ok(uint8_t selector, const unsigned char *data, size_t len)
{
	const unsigned char *p = data;
	bool ok = false;

	if (len == 0 || len > (size_t)0x7fffffff)
		return false;
	if (selector == TLSA_SELECTOR_CERT) {
		X509 *x = d2i_X509(NULL, &p, (long)len);
		EVP_PKEY *k = x != NULL ? X509_get0_pubkey(x) : NULL;

		ok = x != NULL && k != NULL && p == data + len;
		X509_free(x);
	} else {
		EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);

		ok = k != NULL && p == data + len;
		EVP_PKEY_free(k);
	}
	return ok;
}

bool
smtp_tls_tlsa_usable(bool len_ok, size_t rdlen, uint8_t usage, uint8_t selector, uint8_t mtype,
                     const unsigned char *data, size_t len, char *why, size_t whysz)
{
	size_t want;

	if (!len_ok) {
		snprintf(why, whysz, "truncated length %zu", rdlen);
		return false;
	}
	if (usage != TLSA_USAGE_DANE_TA && usage != TLSA_USAGE_DANE_EE) {
		snprintf(why, whysz, "unsupported certificate usage %u", usage);
		return false;
	}
	if (selector != TLSA_SELECTOR_CERT && selector != TLSA_SELECTOR_SPKI) {
		snprintf(why, whysz, "unsupported selector %u", selector);
		return false;
	}
	switch (mtype) {
	case TLSA_MTYPE_FULL:
		if (!tlsa_der_ok(selector, data, len)) {
			snprintf(why, whysz, "malformed %s", selector == TLSA_SELECTOR_CERT
			                                         ? "certificate" : "public key");
			return false;
		}
		return true;
	case TLSA_MTYPE_SHA256:
	case TLSA_MTYPE_SHA512:
		want = mtype == TLSA_MTYPE_SHA256 ? TLSA_SHA256_LEN : TLSA_SHA512_LEN;
		if (len != want) {
			snprintf(why, whysz, "malformed %s digest, length %zu",
			         mtype == TLSA_MTYPE_SHA256 ? "sha256" : "sha512", len);
			return false;
		}
		return true;
	default:
		snprintf(why, whysz, "unsupported matching type %u", mtype);
		return false;
	}
}

bool
smtp_tls_dane_add(struct smtp_tls_dane *d, uint8_t usage, uint8_t selector, uint8_t mtype,
                  const unsigned char *data, size_t len)
{
	struct smtp_tls_tlsa *t;

	if (d->n == SMTP_TLS_TLSA_MAX)
		return false;
	t = &d->rr[d->n];
	t->data = malloc(len ? len : 1);
	if (t->data == NULL)
		fatal("out of memory");
	memcpy(t->data, data, len);
	t->len = len;
	t->usage = usage;
	t->selector = selector;
	t->mtype = mtype;
	d->n++;
	return true;
}

void
smtp_tls_dane_free(struct smtp_tls_dane *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->rr[i].data);
	d->n = 0;
}
