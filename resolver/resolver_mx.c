/*
 * resolver_mx: RFC 5321 section 5.1 next-hop selection. Pure; the rules
 * and their reasons are in resolver_mx.h. Owns nothing: the output is
 * written into the caller's struct.
 */
#include "resolver/resolver_mx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void
resolver_mx_fail(struct resolver_mx_list *out, enum resolver_mx_status status, const char *dsn,
    const char *text)
{
	out->status = status;
	out->n = 0;
	snprintf(out->dsn, sizeof(out->dsn), "%s", dsn);
	snprintf(out->text, sizeof(out->text), "%s", text);
}

/* The domain as shown in our texts: normalised, and escaped in case it
 * is not a valid name at all. */
static void
resolver_mx_domain(const char *domain, char *out)
{
	char norm[RESOLVER_NAME_SIZE];

	(void)resolver_name_normalize(domain, norm);
	log_printable(out, RESOLVER_NAME_SIZE, norm, strlen(norm));
}

/* Is name (normalised) one of ours? */
static bool
resolver_mx_is_self(const char *name, const struct resolver_mx_self *self)
{
	char mine[RESOLVER_NAME_SIZE];
	size_t i;

	if (self == NULL)
		return false;
	if (self->myhostname != NULL && resolver_name_normalize(self->myhostname, mine) == 0 &&
	    strcmp(mine, name) == 0)
		return true;
	for (i = 0; i < self->n_names; i++)
		if (resolver_name_normalize(self->names[i], mine) == 0 && strcmp(mine, name) == 0)
			return true;
	return false;
}

/* Add an MX host, or lower the preference of the same name seen before. */
static void
resolver_mx_add(struct resolver_mx_host *hosts, size_t *n, const char *name, unsigned pref)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(hosts[i].name, name) == 0) {
			if (pref < hosts[i].preference)
				hosts[i].preference = pref;
			return;
		}
	}
	memcpy(hosts[*n].name, name, RESOLVER_NAME_SIZE);
	hosts[*n].preference = pref;
	hosts[*n].implicit = false;
	(*n)++;
}

/* Stable insertion sort by preference: n is small, and stability makes
 * the shuffle below depend on the random numbers only. */
static void
resolver_mx_sort(struct resolver_mx_host *hosts, size_t n)
{
	struct resolver_mx_host tmp;
	size_t i, j;

	for (i = 1; i < n; i++) {
		tmp = hosts[i];
		for (j = i; j > 0 && hosts[j - 1].preference > tmp.preference; j--)
			hosts[j] = hosts[j - 1];
		hosts[j] = tmp;
	}
}

/* Fisher-Yates within each run of equal preference (RFC 5321 section
 * 5.1: "randomize them to spread the load"). */
static void
resolver_mx_shuffle(struct resolver_mx_host *hosts, size_t n, resolver_mx_random *rnd, void *arg)
{
	struct resolver_mx_host tmp;
	size_t start, end, i, j;

	for (start = 0; start < n; start = end) {
		for (end = start + 1; end < n && hosts[end].preference == hosts[start].preference; end++)
			;
		for (i = end - 1; i > start; i--) {
			j = start + rnd(arg, (uint32_t)(i - start + 1));
			if (j > i)
				j = i;		/* a broken generator must not write out of bounds */
			tmp = hosts[i];
			hosts[i] = hosts[j];
			hosts[j] = tmp;
		}
	}
}

/* Drop ourselves and everything not better than us; the count left. */
static size_t
resolver_mx_truncate_self(const struct resolver_mx_host *hosts, size_t n,
    const struct resolver_mx_self *self)
{
	size_t i;

	/* Sorted: the first host that is us has our best preference. */
	for (i = 0; i < n; i++) {
		if (!resolver_mx_is_self(hosts[i].name, self))
			continue;
		while (i > 0 && hosts[i - 1].preference == hosts[i].preference)
			i--;
		return i;
	}
	return n;
}

/* The MX records, less the root ones; *roots counts those. */
static size_t
resolver_mx_collect(const struct resolver_result *res, struct resolver_mx_host *hosts,
    size_t *roots)
{
	char name[RESOLVER_NAME_SIZE];
	size_t i, n = 0, nrr = res->n_mx;

	if (nrr > RESOLVER_MX_INPUT_MAX)
		nrr = RESOLVER_MX_INPUT_MAX;
	*roots = 0;
	for (i = 0; i < nrr; i++) {
		if (strcmp(res->mx[i].exchange, ".") == 0 || res->mx[i].exchange[0] == '\0') {
			(*roots)++;
			continue;
		}
		/* The resolver checked the syntax; a hand-made result may not have. */
		if (resolver_name_normalize(res->mx[i].exchange, name) < 0)
			continue;
		resolver_mx_add(hosts, &n, name, res->mx[i].preference);
	}
	return n;
}

void
resolver_mx_select(const char *domain, const struct resolver_result *res,
    const struct resolver_mx_self *self, resolver_mx_random *rnd, void *rnd_arg,
    struct resolver_mx_list *out)
{
	struct resolver_mx_host hosts[RESOLVER_MX_INPUT_MAX];
	char dom[RESOLVER_NAME_SIZE], text[RESOLVER_TEXT_SIZE];
	size_t n = 0, roots = 0;

	memset(out, 0, sizeof(*out));
	resolver_mx_domain(domain, dom);
	switch (res->status) {
	case RESOLVER_TEMPFAIL:
		resolver_mx_fail(out, RESOLVER_MX_TEMPFAIL, "4.4.3", res->text);
		return;
	case RESOLVER_NXDOMAIN:
	case RESOLVER_BADNAME:
		resolver_mx_fail(out, RESOLVER_MX_PERMFAIL, "5.4.4", res->text);
		return;
	case RESOLVER_NODATA:
		break;
	case RESOLVER_OK:
		n = resolver_mx_collect(res, hosts, &roots);
		break;
	}
	if (n == 0 && roots > 0) {
		snprintf(text, sizeof(text), "Domain %s does not accept mail (nullMX)", dom);
		resolver_mx_fail(out, RESOLVER_MX_PERMFAIL, "5.1.10", text);
		return;
	}
	if (n == 0 && res->status == RESOLVER_OK) {
		/* Records, none usable: not the same as no records at all. */
		snprintf(text, sizeof(text), "Name service error for name=%s type=MX: "
		    "Malformed or unexpected name server reply", dom);
		resolver_mx_fail(out, RESOLVER_MX_TEMPFAIL, "4.4.3", text);
		return;
	}
	if (n == 0) {
		/* NODATA: the implicit MX. */
		if (resolver_name_normalize(domain, hosts[0].name) < 0) {
			snprintf(text, sizeof(text), "Name service error for %s: invalid host or domain name",
			    dom);
			resolver_mx_fail(out, RESOLVER_MX_PERMFAIL, "5.4.4", text);
			return;
		}
		hosts[0].preference = 0;
		hosts[0].implicit = true;
		n = 1;
	}
	resolver_mx_sort(hosts, n);
	if ((n = resolver_mx_truncate_self(hosts, n, self)) == 0) {
		snprintf(text, sizeof(text), "mail for %s loops back to myself", dom);
		resolver_mx_fail(out, RESOLVER_MX_PERMFAIL, "5.4.6", text);
		return;
	}
	resolver_mx_shuffle(hosts, n, rnd, rnd_arg);
	if (n > RESOLVER_MX_HOSTS_MAX)
		n = RESOLVER_MX_HOSTS_MAX;
	memcpy(out->hosts, hosts, n * sizeof(hosts[0]));
	out->n = n;
	out->status = RESOLVER_MX_OK;
}

uint32_t
resolver_mx_random_system(void *arg, uint32_t n)
{
	(void)arg;
	return arc4random_uniform(n);
}
