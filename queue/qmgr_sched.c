/*
 * qmgr_sched: the in-memory schedule (see qmgr_sched.h for the model).
 *
 * Data structures, and why:
 *  - messages: an id hash (chained) and a binary min-heap on `due`; the
 *    heap index lives in the message so a key change is O(log n);
 *  - a ready node per (message, destination) pair that has READY
 *    recipients, on a doubly linked FIFO per destination and on a short
 *    list per message, counting its READY recipients: unlinking on hold,
 *    delete or suspension is O(1) per node, and the node exists exactly as
 *    long as the pair has work, so an idle queue costs no nodes;
 *  - a round-robin ring of destinations that have ready nodes and room
 *    under their own concurrency limit; a destination at its limit leaves
 *    the ring and comes back when one of its jobs ends, so a run costs
 *    what it starts, not the number of destinations or messages.
 */
#include "queue/qmgr_sched.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct sched_node {
	struct sched_msg *msg;
	struct sched_dest *dest;
	struct sched_node *prev, *next;	/* the destination's ready queue */
	struct sched_node *mnext;	/* the message's nodes */
	uint32_t nready;		/* READY recipients of msg for dest */
};

/* Per-message extra state kept beside the public struct. */
struct sched_msg_ext {
	struct sched_node *nodes;
};

struct sched {
	struct sched_limits lim;
	struct sched_callbacks cb;

	struct sched_msg **mhash;
	size_t mbuckets, nmsgs;

	struct sched_msg **heap;
	size_t heap_len, heap_cap;

	struct sched_dest **dhash;
	size_t dbuckets, ndests;
	struct sched_dest *rr;		/* ring of runnable destinations */

	struct sched_transport *transports;

	struct sched_job *jobs;
	size_t njobs;
	uint32_t global_active;	/* jobs of transports that count */
	uint64_t next_job_id;

	size_t nactive;		/* messages with READY/ACTIVE recipients */
	size_t nready_rcpts;
};

#define NO_HEAP ((size_t)-1)

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

/* FNV-1a: ids and next hops are short. */
static uint64_t
hash_str(const char *s, uint64_t h)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* ---- the message heap ---- */

static void
heap_set(struct sched *s, size_t i, struct sched_msg *m)
{
	s->heap[i] = m;
	m->heap_index = i;
}

static void
heap_up(struct sched *s, size_t i)
{
	struct sched_msg *m = s->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (s->heap[parent]->due <= m->due)
			break;
		heap_set(s, i, s->heap[parent]);
		i = parent;
	}
	heap_set(s, i, m);
}

static void
heap_down(struct sched *s, size_t i)
{
	struct sched_msg *m = s->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		int64_t mdue = m->due;

		if (l < s->heap_len && s->heap[l]->due < mdue) {
			min = l;
			mdue = s->heap[l]->due;
		}
		if (r < s->heap_len && s->heap[r]->due < mdue)
			min = r;
		if (min == i)
			break;
		heap_set(s, i, s->heap[min]);
		i = min;
	}
	heap_set(s, i, m);
}

static void
heap_remove(struct sched *s, struct sched_msg *m)
{
	size_t i = m->heap_index;
	struct sched_msg *last;

	if (i == NO_HEAP)
		return;
	m->heap_index = NO_HEAP;
	last = s->heap[--s->heap_len];
	if (last == m)
		return;
	heap_set(s, i, last);
	heap_up(s, i);
	heap_down(s, last->heap_index);
}

/* Put m in the heap at key due, or move it there. */
static void
heap_place(struct sched *s, struct sched_msg *m, int64_t due)
{
	if (m->heap_index == NO_HEAP) {
		if (s->heap_len == s->heap_cap) {
			size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
			struct sched_msg **h = realloc(s->heap, cap * sizeof(*h));

			if (h == NULL)
				fatal("out of memory");
			s->heap = h;
			s->heap_cap = cap;
		}
		m->due = due;
		heap_set(s, s->heap_len++, m);
		heap_up(s, m->heap_index);
		return;
	}
	if (due == m->due)
		return;
	m->due = due;
	heap_up(s, m->heap_index);
	heap_down(s, m->heap_index);
}

/* Recompute m's place: the earliest WAITING recipient, or out. */
static void
heap_update(struct sched *s, struct sched_msg *m)
{
	int64_t due = INT64_MAX;

	if (!m->held)
		for (uint32_t i = 0; i < m->nrcpt; i++)
			if (m->rcpts[i].state == SCHED_WAITING && m->rcpts[i].dest != NULL &&
			    m->rcpts[i].next_attempt < due)
				due = m->rcpts[i].next_attempt;
	if (due == INT64_MAX)
		heap_remove(s, m);
	else
		heap_place(s, m, due);
}

/* ---- the ring of runnable destinations ---- */

static bool
dest_startable(const struct sched_dest *d)
{
	uint32_t limit = d->concurrency;

	if (d->suspended_until != 0)
		limit = 1;	/* probing a suspended destination: one job */
	return d->nready > 0 && d->active < limit;
}

static void
rr_unlink(struct sched *s, struct sched_dest *d)
{
	if (!d->runnable_linked)
		return;
	d->runnable_linked = false;
	if (d->rr_next == d) {
		s->rr = NULL;
	} else {
		d->rr_prev->rr_next = d->rr_next;
		d->rr_next->rr_prev = d->rr_prev;
		if (s->rr == d)
			s->rr = d->rr_next;
	}
	d->rr_next = d->rr_prev = NULL;
}

/* Link or unlink d according to whether it could start a job. */
static void
rr_refresh(struct sched *s, struct sched_dest *d)
{
	bool want = dest_startable(d);

	if (want == d->runnable_linked)
		return;
	if (!want) {
		rr_unlink(s, d);
		return;
	}
	d->runnable_linked = true;
	if (s->rr == NULL) {
		d->rr_next = d->rr_prev = d;
		s->rr = d;
	} else {
		/* at the tail: just before the current head */
		d->rr_next = s->rr;
		d->rr_prev = s->rr->rr_prev;
		s->rr->rr_prev->rr_next = d;
		s->rr->rr_prev = d;
	}
}

/* ---- ready nodes ---- */

static struct sched_msg_ext *
msg_ext(struct sched_msg *m)
{
	return (struct sched_msg_ext *)&m->rcpts[m->nrcpt];
}

static struct sched_node *
node_find(struct sched_msg *m, struct sched_dest *d)
{
	for (struct sched_node *n = msg_ext(m)->nodes; n != NULL; n = n->mnext)
		if (n->dest == d)
			return n;
	return NULL;
}

static void
node_unlink(struct sched *s, struct sched_node *n)
{
	struct sched_dest *d = n->dest;
	struct sched_node **pp;

	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		d->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		d->tail = n->prev;
	d->nready--;
	for (pp = &msg_ext(n->msg)->nodes; *pp != n; pp = &(*pp)->mnext)
		;
	*pp = n->mnext;
	free(n);
	rr_refresh(s, d);
}

static void
msg_busy_inc(struct sched *s, struct sched_msg *m)
{
	if (m->nbusy++ == 0 && !m->active) {
		m->active = true;
		s->nactive++;
	}
}

static void
msg_busy_dec(struct sched *s, struct sched_msg *m)
{
	if (m->nbusy == 0)
		panic("sched: busy count underflow for %s", m->id);
	if (--m->nbusy == 0 && m->active) {
		m->active = false;
		s->nactive--;
		if (s->cb.on_idle != NULL)
			s->cb.on_idle(s->cb.arg, m);
	}
}

/* WAITING -> READY: count it on the (message, destination) node. */
static void
rcpt_make_ready(struct sched *s, struct sched_msg *m, uint32_t idx)
{
	struct sched_rcpt *r = &m->rcpts[idx];
	struct sched_dest *d = r->dest;
	struct sched_node *n = node_find(m, d);

	if (n == NULL) {
		n = xcalloc(1, sizeof(*n));
		n->msg = m;
		n->dest = d;
		n->prev = d->tail;
		if (d->tail != NULL)
			d->tail->next = n;
		else
			d->head = n;
		d->tail = n;
		d->nready++;
		n->mnext = msg_ext(m)->nodes;
		msg_ext(m)->nodes = n;
	}
	n->nready++;
	r->state = SCHED_READY;
	s->nready_rcpts++;
	msg_busy_inc(s, m);
	rr_refresh(s, d);
}

/* READY -> (anything else): uncount it; the node goes with its last one. */
static void
rcpt_unready(struct sched *s, struct sched_msg *m, uint32_t idx)
{
	struct sched_node *n = node_find(m, m->rcpts[idx].dest);

	if (n == NULL || n->nready == 0)
		panic("sched: READY recipient %s/%u without a node", m->id, idx);
	s->nready_rcpts--;
	if (--n->nready == 0)
		node_unlink(s, n);
}

/* ---- construction ---- */

struct sched *
sched_new(const struct sched_limits *lim, const struct sched_callbacks *cb)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->lim = *lim;
	s->cb = *cb;
	s->mbuckets = 1024;
	s->mhash = xcalloc(s->mbuckets, sizeof(*s->mhash));
	s->dbuckets = 256;
	s->dhash = xcalloc(s->dbuckets, sizeof(*s->dhash));
	s->next_job_id = 1;
	return s;
}

static void
job_free(struct sched_job *job)
{
	free(job->rcpts);
	free(job);
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	while (s->jobs != NULL) {
		struct sched_job *j = s->jobs;

		s->jobs = j->next;
		job_free(j);
	}
	for (size_t b = 0; b < s->mbuckets; b++) {
		struct sched_msg *m = s->mhash[b];

		while (m != NULL) {
			struct sched_msg *next = m->hnext;
			struct sched_node *n = msg_ext(m)->nodes;

			while (n != NULL) {
				struct sched_node *nn = n->mnext;

				free(n);
				n = nn;
			}
			free(m);
			m = next;
		}
	}
	for (size_t b = 0; b < s->dbuckets; b++) {
		struct sched_dest *d = s->dhash[b];

		while (d != NULL) {
			struct sched_dest *next = d->hnext;

			free(d->nexthop);
			free(d);
			d = next;
		}
	}
	while (s->transports != NULL) {
		struct sched_transport *t = s->transports;

		s->transports = t->next;
		free(t->name);
		free(t);
	}
	free(s->mhash);
	free(s->dhash);
	free(s->heap);
	free(s);
}

void
sched_set_limits(struct sched *s, const struct sched_limits *lim)
{
	s->lim = *lim;
}

/* ---- transports and destinations ---- */

struct sched_transport *
sched_transport_find(struct sched *s, const char *name)
{
	for (struct sched_transport *t = s->transports; t != NULL; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

struct sched_transport *
sched_transports(const struct sched *s)
{
	return s->transports;
}

struct sched_transport *
sched_transport_get(struct sched *s, const char *name)
{
	struct sched_transport *t = sched_transport_find(s, name);

	if (t != NULL)
		return t;
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(name);
	t->counts_global = true;
	t->next = s->transports;
	s->transports = t;
	return t;
}

void
sched_transport_set_capacity(struct sched *s, struct sched_transport *t, uint32_t capacity,
                             bool counts_global)
{
	(void)s;
	if (t->active > 0 && t->counts_global != counts_global)
		panic("sched: transport %s changes kind with jobs running", t->name);
	t->capacity = capacity;
	t->counts_global = counts_global;
}

/* Hand every READY recipient of d to on_suspend. The callee moves each
 * on (and never removes the message), so the head node goes away once
 * its message's last READY recipient for d has been handed over. */
static void
dest_drain(struct sched *s, struct sched_dest *d)
{
	while (d->head != NULL) {
		struct sched_msg *m = d->head->msg;

		for (uint32_t i = 0; i < m->nrcpt; i++)
			if (m->rcpts[i].dest == d && m->rcpts[i].state == SCHED_READY) {
				s->cb.on_suspend(s->cb.arg, m, i, d);
				if (m->rcpts[i].state == SCHED_READY)
					panic("sched: on_suspend left %s/%u READY", m->id, i);
			}
		if (d->head != NULL && d->head->msg == m)
			panic("sched: ready node of %s outlived its recipients", m->id);
	}
}

void
sched_transport_suspend(struct sched *s, struct sched_transport *t)
{
	for (size_t b = 0; b < s->dbuckets; b++)
		for (struct sched_dest *d = s->dhash[b]; d != NULL; d = d->hnext)
			if (d->transport == t && d->head != NULL)
				dest_drain(s, d);
}

size_t
sched_transport_ready(const struct sched *s, const struct sched_transport *t)
{
	size_t n = 0;

	for (size_t b = 0; b < s->dbuckets; b++)
		for (struct sched_dest *d = s->dhash[b]; d != NULL; d = d->hnext)
			if (d->transport == t)
				for (struct sched_node *nd = d->head; nd != NULL; nd = nd->next)
					n += nd->nready;
	return n;
}

static size_t
dest_bucket(const struct sched *s, const struct sched_transport *t, const char *nexthop)
{
	return hash_str(nexthop, hash_str(t->name, 14695981039346656037u)) % s->dbuckets;
}

static void
dest_rehash(struct sched *s)
{
	size_t nb = s->dbuckets * 2;
	struct sched_dest **h = xcalloc(nb, sizeof(*h));

	for (size_t b = 0; b < s->dbuckets; b++) {
		struct sched_dest *d = s->dhash[b];

		while (d != NULL) {
			struct sched_dest *next = d->hnext;
			size_t i = hash_str(d->nexthop, hash_str(d->transport->name,
			                    14695981039346656037u)) % nb;

			d->hnext = h[i];
			h[i] = d;
			d = next;
		}
	}
	free(s->dhash);
	s->dhash = h;
	s->dbuckets = nb;
}

struct sched_dest *
sched_dest_get(struct sched *s, struct sched_transport *t, const char *nexthop)
{
	size_t b = dest_bucket(s, t, nexthop);
	struct sched_dest *d;

	for (d = s->dhash[b]; d != NULL; d = d->hnext)
		if (d->transport == t && strcmp(d->nexthop, nexthop) == 0)
			return d;
	if (s->ndests >= s->dbuckets * 2) {
		dest_rehash(s);
		b = dest_bucket(s, t, nexthop);
	}
	d = xcalloc(1, sizeof(*d));
	d->transport = t;
	d->nexthop = xstrdup(nexthop);
	d->concurrency = 1;
	d->rcpt_limit = 50;
	d->hnext = s->dhash[b];
	s->dhash[b] = d;
	s->ndests++;
	return d;
}

void
sched_dest_set_limits(struct sched *s, struct sched_dest *d, uint32_t concurrency,
                      uint32_t rcpt_limit, int64_t rate_delay)
{
	d->concurrency = concurrency ? concurrency : 1;
	d->rcpt_limit = rcpt_limit ? rcpt_limit : 1;
	d->rate_delay = rate_delay > 0 ? rate_delay : 0;
	rr_refresh(s, d);
}

void
sched_dest_suspend(struct sched *s, struct sched_dest *d, int64_t until)
{
	d->suspended_until = until;
	d->probing = false;
	rr_refresh(s, d);
}

void
sched_dest_foreach(struct sched *s, void (*fn)(void *arg, struct sched_dest *d), void *arg)
{
	for (size_t b = 0; b < s->dbuckets; b++)
		for (struct sched_dest *d = s->dhash[b]; d != NULL; d = d->hnext)
			fn(arg, d);
}

size_t
sched_dest_count(const struct sched *s)
{
	return s->ndests;
}

/* ---- messages ---- */

static size_t
msg_bucket(size_t nbuckets, const char *id)
{
	return hash_str(id, 14695981039346656037u) % nbuckets;
}

static void
msg_rehash(struct sched *s)
{
	size_t nb = s->mbuckets * 2;
	struct sched_msg **h = xcalloc(nb, sizeof(*h));

	for (size_t b = 0; b < s->mbuckets; b++) {
		struct sched_msg *m = s->mhash[b];

		while (m != NULL) {
			struct sched_msg *next = m->hnext;
			size_t i = msg_bucket(nb, m->id);

			m->hnext = h[i];
			h[i] = m;
			m = next;
		}
	}
	free(s->mhash);
	s->mhash = h;
	s->mbuckets = nb;
}

struct sched_msg *
sched_msg_find(const struct sched *s, const char *id)
{
	for (struct sched_msg *m = s->mhash[msg_bucket(s->mbuckets, id)]; m != NULL; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

struct sched_msg *
sched_msg_add(struct sched *s, const char *id, uint32_t nrcpt)
{
	struct sched_msg *m;
	size_t b;

	if (strlen(id) >= SCHED_ID_SIZE)
		panic("sched: queue id too long");
	if (sched_msg_find(s, id) != NULL)
		return NULL;
	if (s->nmsgs >= s->mbuckets)
		msg_rehash(s);
	/* The recipients, then the private extension, in one allocation. */
	m = xcalloc(1, sizeof(*m) + (size_t)nrcpt * sizeof(struct sched_rcpt) +
	            sizeof(struct sched_msg_ext));
	memcpy(m->id, id, strlen(id) + 1);
	m->nrcpt = nrcpt;
	m->nleft = nrcpt;
	m->heap_index = NO_HEAP;
	b = msg_bucket(s->mbuckets, id);
	m->hnext = s->mhash[b];
	s->mhash[b] = m;
	s->nmsgs++;
	return m;
}

void
sched_rcpt_route(struct sched *s, struct sched_msg *m, uint32_t idx, struct sched_dest *d,
                 bool done, int64_t next_attempt)
{
	struct sched_rcpt *r;

	(void)s;
	if (idx >= m->nrcpt)
		panic("sched: recipient index %u out of range", idx);
	r = &m->rcpts[idx];
	if (r->state != SCHED_WAITING || r->dest != NULL)
		panic("sched: %s/%u routed twice", m->id, idx);
	r->dest = d;
	r->next_attempt = next_attempt;
	if (done) {
		r->state = SCHED_DONE;
		m->nleft--;
	}
}

void
sched_msg_commit(struct sched *s, struct sched_msg *m)
{
	for (uint32_t i = 0; i < m->nrcpt; i++)
		if (m->rcpts[i].state == SCHED_WAITING && m->rcpts[i].dest == NULL)
			panic("sched: %s/%u committed unrouted", m->id, i);
	heap_update(s, m);
}

void
sched_msg_remove(struct sched *s, struct sched_msg *m)
{
	struct sched_msg **pp;

	for (uint32_t i = 0; i < m->nrcpt; i++) {
		if (m->rcpts[i].state == SCHED_ACTIVE)
			panic("sched: removing %s with recipient %u in a job", m->id, i);
		if (m->rcpts[i].state == SCHED_READY) {
			rcpt_unready(s, m, i);
			m->rcpts[i].state = SCHED_DONE;
			msg_busy_dec(s, m);
		}
	}
	if (m->njobs > 0)
		panic("sched: removing %s with %u jobs running", m->id, m->njobs);
	heap_remove(s, m);
	for (pp = &s->mhash[msg_bucket(s->mbuckets, m->id)]; *pp != m; pp = &(*pp)->hnext)
		;
	*pp = m->hnext;
	s->nmsgs--;
	free(m);
}

size_t
sched_msg_count(const struct sched *s)
{
	return s->nmsgs;
}

void
sched_msg_foreach(struct sched *s, void (*fn)(void *arg, struct sched_msg *m), void *arg)
{
	for (size_t b = 0; b < s->mbuckets; b++) {
		struct sched_msg *m = s->mhash[b];

		while (m != NULL) {
			struct sched_msg *next = m->hnext;	/* fn may remove m */

			fn(arg, m);
			m = next;
		}
	}
}

void
sched_msg_hold(struct sched *s, struct sched_msg *m, bool held, int64_t now)
{
	if (held == m->held)
		return;
	m->held = held;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct sched_rcpt *r = &m->rcpts[i];

		if (held && r->state == SCHED_READY) {
			rcpt_unready(s, m, i);
			r->state = SCHED_WAITING;
			msg_busy_dec(s, m);
		} else if (!held && r->state == SCHED_WAITING) {
			r->next_attempt = now;
		}
	}
	heap_update(s, m);
}

void
sched_msg_flush(struct sched *s, struct sched_msg *m, int64_t now)
{
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct sched_rcpt *r = &m->rcpts[i];

		if (r->state != SCHED_WAITING)
			continue;
		if (r->next_attempt > now)
			r->next_attempt = now;
		if (r->dest != NULL && r->dest->suspended_until != 0)
			sched_dest_suspend(s, r->dest, 0);
	}
	heap_update(s, m);
}

/* Leave READY or ACTIVE (bookkeeping shared by wait and done); true when
 * the recipient was busy (READY or ACTIVE), false when it was WAITING. */
static bool
rcpt_leave(struct sched *s, struct sched_msg *m, uint32_t idx)
{
	struct sched_rcpt *r = &m->rcpts[idx];

	switch (r->state) {
	case SCHED_READY:
		rcpt_unready(s, m, idx);
		return true;
	case SCHED_ACTIVE:
		return true;
	case SCHED_WAITING:
		return false;
	default:
		panic("sched: %s/%u moved on when done", m->id, idx);
	}
}

void
sched_rcpt_wait(struct sched *s, struct sched_msg *m, uint32_t idx, int64_t next_attempt)
{
	struct sched_rcpt *r = &m->rcpts[idx];
	bool busy = rcpt_leave(s, m, idx);

	r->state = SCHED_WAITING;
	r->next_attempt = next_attempt;
	if (busy) {
		if (!m->held && (m->heap_index == NO_HEAP || next_attempt < m->due))
			heap_place(s, m, next_attempt);
		msg_busy_dec(s, m);
	} else {
		heap_update(s, m);
	}
}

void
sched_rcpt_done(struct sched *s, struct sched_msg *m, uint32_t idx)
{
	bool busy = rcpt_leave(s, m, idx);

	m->rcpts[idx].state = SCHED_DONE;
	m->nleft--;
	if (busy)
		msg_busy_dec(s, m);
	else
		heap_update(s, m);
}

/* ---- jobs ---- */

struct sched_job *
sched_job_find(const struct sched *s, uint64_t id)
{
	for (struct sched_job *j = s->jobs; j != NULL; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

bool
sched_job_report(struct sched *s, struct sched_job *job, uint32_t idx)
{
	(void)s;
	if (idx >= job->msg->nrcpt || job->msg->rcpts[idx].state != SCHED_ACTIVE)
		return false;
	for (uint32_t i = 0; i < job->nrcpt; i++)
		if (job->rcpts[i] == idx) {
			job->rcpts[i] |= SCHED_REPORTED;
			job->nopen--;
			return true;
		}
	return false;
}

void
sched_job_end(struct sched *s, struct sched_job *job)
{
	struct sched_dest *d = job->dest;

	/* Every recipient must have been reported (a result, or the one
	 * qmgr fills in at DONE). A reported one may be ACTIVE again: a
	 * short retry time can give it to a new job before this one's DONE
	 * (a slow second recipient of the same job). */
	for (uint32_t i = 0; i < job->nrcpt; i++) {
		if (!(job->rcpts[i] & SCHED_REPORTED))
			panic("sched: job %llu ended with %s/%u not reported",
			      (unsigned long long)job->id, job->msg->id, job->rcpts[i]);
	}
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		s->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	s->njobs--;
	job->msg->njobs--;
	d->active--;
	d->transport->active--;
	if (d->transport->counts_global)
		s->global_active--;
	d->probing = false;
	rr_refresh(s, d);
	job_free(job);
}

struct sched_job *
sched_jobs(const struct sched *s)
{
	return s->jobs;
}

size_t
sched_jobs_running(const struct sched *s)
{
	return s->njobs;
}

/* ---- running ---- */

/* Take up to the destination's recipient limit from its first node. */
static struct sched_job *
job_cut(struct sched *s, struct sched_dest *d, int64_t now)
{
	struct sched_node *n = d->head;
	struct sched_msg *m = n->msg;
	uint32_t want = n->nready < d->rcpt_limit ? n->nready : d->rcpt_limit;
	struct sched_job *job = xcalloc(1, sizeof(*job));

	job->id = s->next_job_id++;
	job->msg = m;
	job->dest = d;
	job->rcpts = xcalloc(want, sizeof(*job->rcpts));
	for (uint32_t i = 0; i < m->nrcpt && job->nrcpt < want; i++)
		if (m->rcpts[i].dest == d && m->rcpts[i].state == SCHED_READY) {
			m->rcpts[i].state = SCHED_ACTIVE;
			job->rcpts[job->nrcpt++] = i;
		}
	if (job->nrcpt != want)
		panic("sched: node of %s counts %u ready, found %u", m->id, want, job->nrcpt);
	job->nopen = job->nrcpt;
	m->njobs++;
	s->nready_rcpts -= want;
	n->nready -= want;
	if (n->nready == 0)
		node_unlink(s, n);
	d->active++;
	d->transport->active++;
	if (d->transport->counts_global)
		s->global_active++;
	if (d->suspended_until != 0)
		d->probing = true;
	if (d->rate_delay > 0)
		d->next_start = now + d->rate_delay;
	job->next = s->jobs;
	if (s->jobs != NULL)
		s->jobs->prev = job;
	s->jobs = job;
	s->njobs++;
	rr_refresh(s, d);
	return job;
}

static bool
dest_may_start(const struct sched *s, const struct sched_dest *d, int64_t now)
{
	const struct sched_transport *t = d->transport;

	if (d->suspended_until > now || d->next_start > now)
		return false;
	if (t->capacity != SCHED_UNLIMITED && t->active >= t->capacity)
		return false;
	if (t->counts_global && s->global_active >= s->lim.job_limit)
		return false;
	return true;
}

/* Activate due messages: their due recipients become READY. */
static void
activate_due(struct sched *s, int64_t now)
{
	while (s->heap_len > 0 && s->heap[0]->due <= now) {
		struct sched_msg *m = s->heap[0];

		if (!m->active && s->nactive >= s->lim.active_limit)
			break;
		heap_remove(s, m);
		if (!m->active && s->cb.on_activate != NULL)
			s->cb.on_activate(s->cb.arg, m);
		for (uint32_t i = 0; i < m->nrcpt; i++)
			if (m->rcpts[i].state == SCHED_WAITING && m->rcpts[i].next_attempt <= now)
				rcpt_make_ready(s, m, i);
		heap_update(s, m);
	}
}

/* Suspended destinations hand their READY recipients back. Draining
 * takes a destination off the ring, so the ring is read first. */
static void
drain_suspended(struct sched *s, int64_t now)
{
	struct sched_dest *d = s->rr, **found = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL)
		return;
	do {
		if (d->suspended_until > now) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				found = realloc(found, cap * sizeof(*found));
				if (found == NULL)
					fatal("out of memory");
			}
			found[n++] = d;
		}
		d = d->rr_next;
	} while (d != s->rr);
	for (size_t i = 0; i < n; i++)
		dest_drain(s, found[i]);
	free(found);
}

size_t
sched_run(struct sched *s, int64_t now)
{
	size_t started = 0;
	bool progress = true;

	activate_due(s, now);
	drain_suspended(s, now);
	while (progress && s->rr != NULL) {
		struct sched_dest *d = s->rr, *start = s->rr;

		progress = false;
		do {
			struct sched_dest *next = d->rr_next;

			if (dest_may_start(s, d, now)) {
				struct sched_job *job = job_cut(s, d, now);

				started++;
				progress = true;
				/* The next turn starts after d: round-robin. (If d
				 * left the ring, rr_unlink already moved s->rr on.) */
				if (d->runnable_linked)
					s->rr = d->rr_next;
				s->cb.on_job(s->cb.arg, job);
				break;
			}
			d = next;
		} while (d != start && s->rr != NULL);
	}
	return started;
}

int64_t
sched_next_wakeup(const struct sched *s, int64_t now)
{
	int64_t when = INT64_MAX;
	const struct sched_dest *d = s->rr;

	if (s->heap_len > 0 && (s->nactive < s->lim.active_limit || s->heap[0]->active))
		when = s->heap[0]->due;
	if (d != NULL) {
		do {
			int64_t t = d->next_start > d->suspended_until ? d->next_start
			                                               : d->suspended_until;

			if (t > now && t < when)
				when = t;
			else if (t <= now && dest_may_start(s, d, now))
				when = now;
			d = d->rr_next;
		} while (d != s->rr);
	}
	return when;
}

void
sched_stats(const struct sched *s, struct sched_stats *st)
{
	st->messages = s->nmsgs;
	st->active_messages = s->nactive;
	st->ready_rcpts = s->nready_rcpts;
	st->jobs = s->njobs;
	st->dests = s->ndests;
}
