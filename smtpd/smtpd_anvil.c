/*
 * smtpd_anvil: per-client and per-login session counts and event rates;
 * see smtpd_anvil.h for the rules.
 *
 * Layout: a chained hash table of entries (a fixed bucket array sized for
 * max_entries), and a list of the entries whose window is open, oldest
 * window first. Windows only ever open at "now" and the clock does not go
 * back, so appending keeps the list sorted: expiry looks at its head only,
 * and the full table finds its oldest idle entry from the head.
 *
 * An entry is on the list exactly when its window is open. An entry off
 * the list always has a session open (else it is freed at once): it waits
 * for its next event or its last disconnect.
 *
 * Ownership: the table owns its entries. Errors: none; out of memory is
 * fatal().
 */
#include "smtpd/smtpd_anvil.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/idxhash.h"
#include "common/log.h"

struct smtpd_anvil_entry {
	struct smtpd_anvil_entry *hnext;	/* hash chain */
	struct smtpd_anvil_entry *prev, *next;	/* the window list */
	bool windowed;				/* on the window list */
	int64_t start;				/* window start, ms */
	unsigned count;				/* sessions open (clients only) */
	unsigned rate[SMTPD_ANVIL_EVENT_COUNT];
	uint64_t hash;
	size_t keylen;
	unsigned char key[];			/* space, listener, name */
};

struct smtpd_anvil {
	struct smtpd_anvil_entry **buckets;
	size_t nbuckets;			/* a power of two */
	size_t n, max;
	int64_t unit;
	struct smtpd_anvil_entry *head, *tail;	/* the window list */
	uint64_t evicted, untracked;
	struct smtpd_anvil_peak peak[SMTPD_ANVIL_STAT_KINDS];
};

/* The key's bytes: space, listener, then the name (logins lower-cased). */
#define SMTPD_ANVIL_KEY_MAX (2 + SMTPD_ANVIL_NAME_MAX)

static size_t
smtpd_anvil_key_bytes(const struct smtpd_anvil_key *k, unsigned char *out)
{
	size_t i, len = strnlen(k->name, SMTPD_ANVIL_NAME_MAX);

	out[0] = (unsigned char)k->space;
	out[1] = k->space == SMTPD_ANVIL_CLIENT ? (unsigned char)k->listener : 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k->name[i];

		if (k->space == SMTPD_ANVIL_USER && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		out[2 + i] = c;
	}
	return 2 + len;
}

struct smtpd_anvil *
smtpd_anvil_new(size_t max_entries, int64_t unit_ms)
{
	struct smtpd_anvil *a = calloc(1, sizeof(*a));

	if (a == NULL)
		fatal("out of memory (anvil)");
	a->max = max_entries > 0 ? max_entries : 1;
	a->unit = unit_ms > 0 ? unit_ms : 1;
	/* Chains of about one entry when full. */
	a->nbuckets = 16;
	while (a->nbuckets < a->max)
		a->nbuckets *= 2;
	a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
	if (a->buckets == NULL)
		fatal("out of memory (anvil)");
	return a;
}

void
smtpd_anvil_free(struct smtpd_anvil *a)
{
	struct smtpd_anvil_entry *e, *next;
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nbuckets; i++)
		for (e = a->buckets[i]; e != NULL; e = next) {
			next = e->hnext;
			free(e);
		}
	free(a->buckets);
	free(a);
}

void
smtpd_anvil_set_unit(struct smtpd_anvil *a, int64_t unit_ms)
{
	a->unit = unit_ms > 0 ? unit_ms : 1;
}

/* ---- the window list ---- */

static void
smtpd_anvil_list_remove(struct smtpd_anvil *a, struct smtpd_anvil_entry *e)
{
	if (!e->windowed)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		a->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		a->tail = e->prev;
	e->prev = e->next = NULL;
	e->windowed = false;
}

static void
smtpd_anvil_list_append(struct smtpd_anvil *a, struct smtpd_anvil_entry *e)
{
	e->prev = a->tail;
	e->next = NULL;
	if (a->tail != NULL)
		a->tail->next = e;
	else
		a->head = e;
	a->tail = e;
	e->windowed = true;
}

/* ---- the hash table ---- */

static struct smtpd_anvil_entry *
smtpd_anvil_find(const struct smtpd_anvil *a, const unsigned char *key, size_t len, uint64_t h)
{
	struct smtpd_anvil_entry *e;

	for (e = a->buckets[h & (a->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

static void
smtpd_anvil_delete(struct smtpd_anvil *a, struct smtpd_anvil_entry *e)
{
	struct smtpd_anvil_entry **pp = &a->buckets[e->hash & (a->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	smtpd_anvil_list_remove(a, e);
	a->n--;
	free(e);
}

/* Has e's window ended at now? */
static bool
smtpd_anvil_window_over(const struct smtpd_anvil *a, const struct smtpd_anvil_entry *e,
    int64_t now)
{
	return now - e->start >= a->unit;
}

size_t
smtpd_anvil_expire(struct smtpd_anvil *a, int64_t now)
{
	struct smtpd_anvil_entry *e;
	size_t removed = 0;

	while ((e = a->head) != NULL && smtpd_anvil_window_over(a, e, now)) {
		smtpd_anvil_list_remove(a, e);
		memset(e->rate, 0, sizeof(e->rate));
		if (e->count == 0) {
			smtpd_anvil_delete(a, e);
			removed++;
		}
	}
	return removed;
}

/* Room for one more entry: forget the idle entry with the oldest window.
 * False when every entry has a session open. */
static bool
smtpd_anvil_make_room(struct smtpd_anvil *a)
{
	struct smtpd_anvil_entry *e;

	for (e = a->head; e != NULL; e = e->next)
		if (e->count == 0) {
			smtpd_anvil_delete(a, e);
			a->evicted++;
			return true;
		}
	return false;
}

/* A new peak of st for e (a client entry) at now? */
static void
smtpd_anvil_peak_note(struct smtpd_anvil *a, enum smtpd_anvil_stat st,
    const struct smtpd_anvil_entry *e, unsigned value, int64_t now)
{
	struct smtpd_anvil_peak *p = &a->peak[st];
	size_t len;

	if (value <= p->value)
		return;
	p->value = value;
	p->when = now;
	p->listener = 0;
	p->name[0] = '\0';
	if (e == NULL)
		return;
	p->listener = e->key[1];
	len = e->keylen - 2;
	memcpy(p->name, e->key + 2, len);
	p->name[len] = '\0';
}

/* Which peak an event's rate feeds, or SMTPD_ANVIL_STAT_KINDS. */
static enum smtpd_anvil_stat
smtpd_anvil_stat_of(enum smtpd_anvil_event ev)
{
	switch (ev) {
	case SMTPD_ANVIL_CONNECT:
		return SMTPD_ANVIL_STAT_CONNECT_RATE;
	case SMTPD_ANVIL_MAIL:
		return SMTPD_ANVIL_STAT_MAIL_RATE;
	case SMTPD_ANVIL_RCPT:
		return SMTPD_ANVIL_STAT_RCPT_RATE;
	default:
		return SMTPD_ANVIL_STAT_KINDS;
	}
}

bool
smtpd_anvil_take_peak(struct smtpd_anvil *a, enum smtpd_anvil_stat st,
    struct smtpd_anvil_peak *out)
{
	if (a->peak[st].value == 0)
		return false;
	*out = a->peak[st];
	memset(&a->peak[st], 0, sizeof(a->peak[st]));
	return true;
}

/* The entry of key, made when create is set (NULL: none, or no room). */
static struct smtpd_anvil_entry *
smtpd_anvil_get(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key, bool create)
{
	unsigned char bytes[SMTPD_ANVIL_KEY_MAX];
	struct smtpd_anvil_entry *e;
	size_t len;
	uint64_t h;

	smtpd_anvil_expire(a, now);
	len = smtpd_anvil_key_bytes(key, bytes);
	h = idxhash_bytes(bytes, len);
	if ((e = smtpd_anvil_find(a, bytes, len, h)) != NULL || !create)
		return e;
	if (a->n >= a->max && !smtpd_anvil_make_room(a)) {
		a->untracked++;
		return NULL;
	}
	e = calloc(1, sizeof(*e) + len);
	if (e == NULL)
		fatal("out of memory (anvil)");
	e->hash = h;
	e->keylen = len;
	memcpy(e->key, bytes, len);
	e->hnext = a->buckets[h & (a->nbuckets - 1)];
	a->buckets[h & (a->nbuckets - 1)] = e;
	a->n++;
	smtpd_anvil_peak_note(a, SMTPD_ANVIL_STAT_SIZE, NULL, (unsigned)a->n, now);
	return e;
}

/* Count one event of e, in its window (a new one if it has none or its
 * own has ended: Postfix's fixed window, started by the first event). */
static unsigned
smtpd_anvil_count(struct smtpd_anvil *a, struct smtpd_anvil_entry *e, int64_t now,
    enum smtpd_anvil_event ev)
{
	if (e->windowed && smtpd_anvil_window_over(a, e, now))
		smtpd_anvil_list_remove(a, e);
	if (!e->windowed) {
		memset(e->rate, 0, sizeof(e->rate));
		e->start = now;
		smtpd_anvil_list_append(a, e);
	}
	if (e->rate[ev] < UINT_MAX)
		e->rate[ev]++;
	if (e->key[0] == SMTPD_ANVIL_CLIENT && smtpd_anvil_stat_of(ev) != SMTPD_ANVIL_STAT_KINDS)
		smtpd_anvil_peak_note(a, smtpd_anvil_stat_of(ev), e, e->rate[ev], now);
	return e->rate[ev];
}

/* ---- events ---- */

enum smtpd_anvil_status
smtpd_anvil_connect(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key,
    unsigned *count, unsigned *rate)
{
	struct smtpd_anvil_entry *e = smtpd_anvil_get(a, now, key, true);

	*count = *rate = 0;
	if (e == NULL)
		return SMTPD_ANVIL_UNTRACKED;
	if (e->count < UINT_MAX)
		e->count++;
	*count = e->count;
	smtpd_anvil_peak_note(a, SMTPD_ANVIL_STAT_COUNT, e, e->count, now);
	*rate = smtpd_anvil_count(a, e, now, SMTPD_ANVIL_CONNECT);
	return SMTPD_ANVIL_OK;
}

void
smtpd_anvil_disconnect(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key)
{
	struct smtpd_anvil_entry *e = smtpd_anvil_get(a, now, key, false);

	if (e == NULL || e->count == 0)
		return;
	/* An entry without a window holds nothing once its last session ends. */
	if (--e->count == 0 && !e->windowed)
		smtpd_anvil_delete(a, e);
}

enum smtpd_anvil_status
smtpd_anvil_event(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key,
    enum smtpd_anvil_event ev, unsigned *rate)
{
	struct smtpd_anvil_entry *e = smtpd_anvil_get(a, now, key, true);

	*rate = 0;
	if (e == NULL)
		return SMTPD_ANVIL_UNTRACKED;
	*rate = smtpd_anvil_count(a, e, now, ev);
	return SMTPD_ANVIL_OK;
}

unsigned
smtpd_anvil_peek(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key,
    enum smtpd_anvil_event ev)
{
	struct smtpd_anvil_entry *e = smtpd_anvil_get(a, now, key, false);

	if (e == NULL || !e->windowed || smtpd_anvil_window_over(a, e, now))
		return 0;
	return e->rate[ev];
}

size_t
smtpd_anvil_size(const struct smtpd_anvil *a)
{
	return a->n;
}

bool
smtpd_anvil_take_overflow(struct smtpd_anvil *a, uint64_t *evicted, uint64_t *untracked)
{
	*evicted = a->evicted;
	*untracked = a->untracked;
	a->evicted = a->untracked = 0;
	return *evicted > 0 || *untracked > 0;
}
