/*
 * qmgr_results: what delivery results do, in the order that keeps mail
 * safe (doc/qmgr.md, "Crash safety"):
 *
 *   1. decide each recipient's new state (retry rules or Postfix backoff,
 *      retry records updated once per key per batch);
 *   2. write and commit the DSNs (bounces, delay warnings, success
 *      notices) as new messages: a crash after this and before 3 sends a
 *      second DSN at worst, never none;
 *   3. commit every state change of the batch in one LMDB transaction,
 *      removing finished messages in the same transaction;
 *   4. only then change the schedule, log, and end the jobs.
 *
 * Results of many jobs that arrive together share steps 2-4 (one commit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/idxhash.h"
#include "common/log.h"
#include "queue/bounce.h"
#include "queue/envelope_expand.h"
#include "queue/qmgr_impl.h"

/* ---- collecting ---- */

static void
flush_soon(struct qmgr *q)
{
	if (!evloop_timer_active(&q->flush_timer))
		evloop_timer_start(q->loop, &q->flush_timer, 0);
}

void
qmgr_outcome_add(struct qmgr *q, struct sched_msg *m, uint32_t idx, struct sched_dest *d,
                 enum qmgr_outcome_kind kind, const struct agent_result *res, bool ours)
{
	const char *relay = res->relay[0] != '\0' ? res->relay : "none";
	size_t ntext = strnlen(res->text, sizeof(res->text) - 1);
	size_t nrelay = strnlen(relay, sizeof(res->relay) - 1);
	size_t nhost = strnlen(res->host, sizeof(res->host) - 1);
	struct qmgr_outcome *o = calloc(1, sizeof(*o) + ntext + nrelay + nhost + 3);
	char *p;

	if (o == NULL)
		fatal("out of memory");
	o->msg = m;
	o->idx = idx;
	o->dest = d;
	o->kind = kind;
	o->ours = ours;
	o->relayed = res->relayed;
	o->smtp_code = res->smtp_code;
	snprintf(o->err_class, sizeof(o->err_class), "%.*s", (int)sizeof(o->err_class) - 1,
	         res->err_class);
	snprintf(o->enh, sizeof(o->enh), "%.*s", (int)sizeof(o->enh) - 1, res->enh);
	p = o->text;
	memcpy(p, res->text, ntext);
	p += ntext + 1;
	o->relay = p;
	memcpy(p, relay, nrelay);
	p += nrelay + 1;
	o->host = p;
	memcpy(p, res->host, nhost);
	*q->outcomes_tail = o;
	q->outcomes_tail = &o->next;
	q->noutcomes++;
	flush_soon(q);
}

static void
push_ptr(void ***arr, size_t *n, size_t *cap, void *p)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*arr = realloc(*arr, *cap * sizeof(**arr));
		if (*arr == NULL)
			fatal("out of memory");
	}
	(*arr)[(*n)++] = p;
}

void
qmgr_job_finished(struct qmgr *q, struct sched_job *job)
{
	push_ptr((void ***)&q->finished, &q->nfinished, &q->finished_cap, job);
	flush_soon(q);
}

void
qmgr_warn_add(struct qmgr *q, struct sched_msg *m)
{
	struct qmgr_active *act = m->data;

	/* Called on activation, where act exists; the flag keeps the list
	 * free of duplicates without searching it. */
	if (act != NULL) {
		if (act->warn_due)
			return;
		act->warn_due = true;
	}
	push_ptr((void ***)&q->warn, &q->nwarn, &q->warn_cap, m);
	flush_soon(q);
}

/* ---- the batch being flushed ---- */

/* Envelopes of the messages a batch touches: the active copy, or one
 * loaded for the batch (a recipient handed back by a suspended
 * destination may belong to a message that went idle since). */
struct flush_env {
	struct sched_msg *msg;
	struct envelope *env;	/* NULL: unreadable or not loaded */
	bool load_tried, owned;
	uint32_t jobs_ending;	/* its jobs among the batch's finished ones */
	uint32_t finals;	/* recipients that become final in this batch */
	bool remove;		/* every recipient is final: remove the message */
	bool expired_logged;
	size_t first, count;	/* its outcomes: grouped[first .. first+count) */
};

/* One retry key decided in this batch (host keys are shared). */
struct flush_key {
	char key[QSTORE_KEY_MAX + 1];
	struct retry_record rec;
	struct retry_decision dec;
};

struct flush {
	struct qmgr *q;
	int64_t now_ms, now;	/* now in ms and in seconds */
	struct flush_env *envs;
	size_t nenvs, envs_cap;
	struct idxhash env_index;	/* sched_msg -> envs[] */
	struct flush_key *keys;
	size_t nkeys, keys_cap;
	struct idxhash key_index;	/* key -> keys[] */
	struct qstore_batch batch;
	char (*dsn_ids)[SPOOL_ID_SIZE];	/* DSNs written: load them after the commit */
	size_t ndsn, dsn_cap;
};

/* Per outcome, what was decided. */
struct decided {
	struct qstore_rcpt rec;
	bool final;
	int64_t next_attempt_ms;
	enum bounce_action dsn;	/* what DSN the recipient is in, if any */
	bool want_dsn;
	bool expired;
	bool notice_passed;	/* delivered to a host that took NOTIFY=SUCCESS */
};

static bool
env_is(size_t pos, const void *key, const void *ctx)
{
	const struct flush *f = ctx;

	return f->envs[pos].msg == key;
}

static bool
key_is(size_t pos, const void *key, const void *ctx)
{
	const struct flush *f = ctx;

	return strcmp(f->keys[pos].key, key) == 0;
}

/* The batch's entry for message m (its envelope not loaded yet). */
static struct flush_env *
flush_env(struct flush *f, struct sched_msg *m)
{
	struct flush_env *fe;
	uint64_t h = idxhash_ptr(m);
	size_t pos = idxhash_find(&f->env_index, h, env_is, m, f);

	if (pos != IDXHASH_NONE)
		return &f->envs[pos];
	idxhash_add(&f->env_index, h, f->nenvs);
	if (f->nenvs == f->envs_cap) {
		f->envs_cap = f->envs_cap ? f->envs_cap * 2 : 16;
		f->envs = realloc(f->envs, f->envs_cap * sizeof(*f->envs));
		if (f->envs == NULL)
			fatal("out of memory");
	}
	fe = &f->envs[f->nenvs++];
	memset(fe, 0, sizeof(*fe));
	fe->msg = m;
	return fe;
}

/*
 * Its envelope: a copy of the active message's (not borrowed: a
 * destination suspended in step 1 hands recipients back, which can make
 * the message idle and free its envelope mid-batch), or one read for the
 * batch (a recipient handed back by a suspended destination may belong
 * to a message that went idle since). NULL when unreadable.
 */
static const struct envelope *
flush_env_load(struct flush *f, struct flush_env *fe)
{
	struct qmgr_active *act = fe->msg->data;
	char err[256];

	if (fe->load_tried)
		return fe->env;
	fe->load_tried = true;
	fe->env = malloc(sizeof(*fe->env));
	if (fe->env == NULL)
		fatal("out of memory");
	envelope_init(fe->env);
	fe->owned = true;
	if (act != NULL && act->loaded) {
		envelope_copy(fe->env, &act->env);
		return fe->env;
	}
	if (spool_envelope_get(f->q->spool, fe->msg->id, fe->env, err, sizeof(err)) != SPOOL_OK) {
		log_error("%s: cannot read the envelope: %s", fe->msg->id, err);
		envelope_free(fe->env);
		free(fe->env);
		fe->env = NULL;
		fe->owned = false;
	}
	return fe->env;
}

static struct flush_key *
flush_key(struct flush *f, const char *key, bool *fresh)
{
	struct flush_key *k;
	char err[200];
	uint64_t h = idxhash_str(key);
	size_t pos = idxhash_find(&f->key_index, h, key_is, key, f);

	if (pos != IDXHASH_NONE) {
		*fresh = false;
		return &f->keys[pos];
	}
	idxhash_add(&f->key_index, h, f->nkeys);
	if (f->nkeys == f->keys_cap) {
		f->keys_cap = f->keys_cap ? f->keys_cap * 2 : 16;
		f->keys = realloc(f->keys, f->keys_cap * sizeof(*f->keys));
		if (f->keys == NULL)
			fatal("out of memory");
	}
	k = &f->keys[f->nkeys++];
	memset(k, 0, sizeof(*k));
	snprintf(k->key, sizeof(k->key), "%s", key);
	if (qstore_retry_get(f->q->qs, key, &k->rec, err, sizeof(err)) != SPOOL_OK)
		memset(&k->rec, 0, sizeof(k->rec));
	*fresh = true;
	return k;
}

static const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* The retry key of a destination: Exim keys host records by host; qmgr
 * sees destinations (the agent resolves hosts), so its record is the
 * destination's. */
static void
dest_key(const struct sched_dest *d, char *key, size_t keysz)
{
	snprintf(key, keysz, "T:%s:%s", d->transport->name, d->nexthop);
}

/* The last error of a suspended destination, for "delivery temporarily
 * suspended: ..." (kept in dest->data). */
static void
dest_note_error(struct sched_dest *d, const char *text)
{
	free(d->data);
	d->data = text != NULL ? strdup(text) : NULL;
}

static void
copy_result(struct qstore_rcpt *rec, const struct qmgr_outcome *o)
{
	rec->smtp_code = o->smtp_code;
	/* The stored text is shorter than a result's: cut, never overflow. */
	snprintf(rec->err_class, sizeof(rec->err_class), "%s", o->err_class);
	snprintf(rec->enh, sizeof(rec->enh), "%s", o->enh);
	snprintf(rec->text, sizeof(rec->text), "%.*s", (int)sizeof(rec->text) - 1, o->text);
	snprintf(rec->relay, sizeof(rec->relay), "%.*s", (int)sizeof(rec->relay) - 1, o->relay);
}

/* Step 1 for one outcome. */
static void
decide(struct flush *f, struct qmgr_outcome *o, struct flush_env *fe, struct decided *dd)
{
	struct qmgr *q = f->q;
	const struct envelope *env = fe->env;
	const char *addr = env != NULL && o->idx < env->nrcpt ? env->rcpts[o->idx].addr : "";
	char err[200];

	memset(dd, 0, sizeof(*dd));
	if (qstore_rcpt_get(q->qs, o->msg->id, o->idx, &dd->rec, err, sizeof(err)) != SPOOL_OK)
		qstore_rcpt_init(&dd->rec);
	if (o->kind != QMGR_OUT_SUSPENDED) {
		dd->rec.attempts++;
		dd->rec.last_attempt = f->now;
	}
	copy_result(&dd->rec, o);

	switch (o->kind) {
	case QMGR_OUT_DELIVERED: {
		char key[QSTORE_KEY_MAX + 1];

		dd->rec.state = QSTORE_DELIVERED;
		dd->final = true;
		dd->dsn = o->relayed == AGENT_RELAYED ? BOUNCE_ACTION_RELAYED : BOUNCE_ACTION_DELIVERED;
		dd->notice_passed = o->relayed == AGENT_DSN_PASSED;
		/* A success clears the address's record and the destination's. */
		if (strlen(addr) + 2 <= QSTORE_KEY_MAX) {
			snprintf(key, sizeof(key), "R:%s", addr);
			qstore_batch_del_retry(&f->batch, key);
		}
		dest_key(o->dest, key, sizeof(key));
		if (strlen(key) <= QSTORE_KEY_MAX)
			qstore_batch_del_retry(&f->batch, key);
		return;
	}
	case QMGR_OUT_PERM:
		dd->rec.state = QSTORE_BOUNCED;
		dd->final = true;
		dd->dsn = BOUNCE_ACTION_FAILED;
		return;
	case QMGR_OUT_SUSPENDED: {
		/* Not an attempt: the destination's record (or the message's
		 * age, under Postfix backoff) says whether to give up. */
		struct retry_record rec;
		char key[QSTORE_KEY_MAX + 1];
		int64_t created = env != NULL ? env->arrival / 1000000 : f->now;
		bool null_sender = env == NULL || bounce_is_null_sender(env);
		int64_t life = null_sender ? q->policy.bounce_lifetime : q->policy.queue_lifetime;

		memset(&rec, 0, sizeof(rec));
		dest_key(o->dest, key, sizeof(key));
		if (strlen(key) <= QSTORE_KEY_MAX)
			(void)qstore_retry_get(q->qs, key, &rec, err, sizeof(err));
		dd->rec.state = QSTORE_DEFERRED;
		if (dd->rec.first_failure == 0)
			dd->rec.first_failure = f->now;
		dd->next_attempt_ms = o->msg->rcpts[o->idx].next_attempt;
		dd->rec.next_attempt = dd->next_attempt_ms / 1000;
		if (rec.expired || retry_postfix_expired(f->now, created, life)) {
			dd->rec.state = QSTORE_EXPIRED;
			dd->final = true;
			dd->expired = true;
			dd->dsn = BOUNCE_ACTION_FAILED;
		}
		return;
	}
	case QMGR_OUT_TEMP:
		break;
	}

	/* A temporary failure: the rules, on the right key. */
	{
		struct retry_error e;
		struct retry_failure rf;
		struct flush_key *k;
		char key[QSTORE_KEY_MAX + 1];
		bool fresh;

		if (o->err_class[0] == '\0' || retry_error_parse(o->err_class, &e) < 0) {
			memset(&e, 0, sizeof(e));
			e.cls = RETRY_CLASS_OTHER;
			e.mailbox_idle = -1;
		}
		memset(&rf, 0, sizeof(rf));
		rf.err = e;
		/* The agent knows the scope (a 421 is the host's whatever
		 * its Exim name, a timeout after "." is the message's): a
		 * host error is one that names the host. */
		rf.host_error = o->host[0] != '\0';
		rf.domain = addr_domain(addr);
		rf.sender = env != NULL ? env->sender : NULL;
		rf.message_created = env != NULL ? env->arrival / 1000000 : f->now;
		if (rf.host_error) {
			rf.host = o->host;
			dest_key(o->dest, key, sizeof(key));
		} else {
			rf.address = addr;
			snprintf(key, sizeof(key), "R:%.*s", QSTORE_KEY_MAX - 2, addr);
		}
		k = flush_key(f, key, &fresh);
		if (fresh) {
			retry_decide(q->rules, &q->policy, &rf, &k->rec, f->now, &k->dec);
			/* Under the Postfix fallback the record is per message age, so it
			 * is not worth keeping for addresses; host records suspend the
			 * destination either way. */
			if (k->dec.rule != NULL || rf.host_error)
				qstore_batch_put_retry(&f->batch, key, &k->rec);
		}
		if (rf.host_error && !k->dec.bounce) {
			sched_dest_suspend(q->sched, o->dest, k->dec.next_try * 1000);
			dest_note_error(o->dest, o->text);
		}
		if (dd->rec.first_failure == 0)
			dd->rec.first_failure = f->now;
		if (k->dec.bounce) {
			dd->rec.state = QSTORE_EXPIRED;
			dd->final = true;
			dd->expired = true;
			dd->dsn = BOUNCE_ACTION_FAILED;
		} else {
			dd->rec.state = QSTORE_DEFERRED;
			dd->rec.next_attempt = k->dec.next_try;
			dd->next_attempt_ms = k->dec.next_try * 1000;
		}
	}
}

/* ---- DSNs ---- */

struct spool_sink {
	struct spool_msg *m;
};

static int
spool_sink_write(void *arg, const void *p, size_t n)
{
	struct spool_sink *s = arg;

	return spool_msg_write(s->m, p, n) == SPOOL_OK ? 0 : -1;
}

/* Postmaster notices (Postfix's notify_classes): the addresses. */
struct postmaster {
	char sender[QSTORE_KEY_MAX];	/* double_bounce_sender, qualified */
	char rcpt[QSTORE_KEY_MAX];	/* the class's notice recipient, qualified */
};

static bool
notify_class(const struct qmgr *q, const char *name)
{
	const struct config_list *l = config_list(q->cfg, P_NOTIFY_CLASSES);

	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->items[i], name) == 0)
			return true;
	return false;
}

/* An address as Postfix qualifies its own: with @myhostname when bare. */
static void
qualify(const struct qmgr *q, const char *addr, char *dst, size_t dstsz)
{
	if (strchr(addr, '@') != NULL)
		snprintf(dst, dstsz, "%s", addr);
	else
		snprintf(dst, dstsz, "%s@%s", addr, config_str(q->cfg, P_MYHOSTNAME));
}

static const struct postmaster *
postmaster_for(const struct qmgr *q, enum config_param rcpt, struct postmaster *pm)
{
	qualify(q, config_str(q->cfg, P_DOUBLE_BOUNCE_SENDER), pm->sender, sizeof(pm->sender));
	qualify(q, config_str(q->cfg, rcpt), pm->rcpt, sizeof(pm->rcpt));
	return pm;
}

/*
 * The notice's recipient through the aliases, as smtpd resolves a RCPT
 * (queue/envelope_expand.h): a bounce to postmaster or to a local alias
 * reaches the people behind it. When the recipient cannot be expanded now
 * (unknown, refused, a table that cannot be read, a target that cannot be
 * stored), it stays as it is: its agent then decides, as for any
 * recipient, and a failed notice is a double bounce or is discarded.
 */
static void
dsn_expand(struct qmgr *q, const char *id, struct envelope *out)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];
	char *addr;
	unsigned notify;
	enum addr_verdict v;

	if (out->nrcpt != 1)
		panic("dsn_expand: a notice with %zu recipients", out->nrcpt);
	addr_expansion_init(&x);
	v = addr_resolve(q->addr, out->rcpts[0].addr, &x, reply, sizeof(reply));
	if (x.warning[0] != '\0')
		log_warning("%s", x.warning);
	if (v != ADDR_OK || x.n == 0 || envelope_expansion_unstorable(&x) != NULL) {
		if (v != ADDR_OK)
			log_info("%s: to=<%s>: not expanded: %s", id, out->rcpts[0].addr, reply);
		addr_expansion_free(&x);
		return;
	}
	addr = out->rcpts[0].addr;
	notify = out->rcpts[0].notify;
	out->rcpts[0].addr = NULL;
	free(out->rcpts[0].orcpt);
	out->rcpts[0].orcpt = NULL;
	out->nrcpt = 0;
	(void)envelope_add_expansion(out, &x, addr, NULL, notify);
	free(addr);
	addr_expansion_free(&x);
}

/* Write one DSN about msg into the spool (to the sender, or a postmaster
 * notice when pm is set); its id into new_id. 0 or -1. */
static int
dsn_write(struct flush *f, const char *orig_id, const struct envelope *env, enum bounce_kind kind,
          const struct bounce_rcpt *rcpts, size_t n, const struct postmaster *pm,
          char new_id[SPOOL_ID_SIZE])
{
	struct qmgr *q = f->q;
	struct bounce_report rep;
	struct spool_sink sink;
	struct envelope out;
	char path[1024], err[256];
	int fd, rc;

	memset(&rep, 0, sizeof(rep));
	rep.kind = kind;
	rep.myhostname = config_str(q->cfg, P_MYHOSTNAME);
	rep.mail_name = config_str(q->cfg, P_MAIL_NAME);
	rep.env = env;
	rep.queue_id = orig_id;
	rep.rcpts = rcpts;
	rep.nrcpt = n;
	rep.size_limit = config_int(q->cfg, P_BOUNCE_SIZE_LIMIT);
	rep.now = f->now_ms * 1000;
	rep.seed = (uint64_t)f->now_ms ^ ((uint64_t)(uintptr_t)env << 7);
	if (pm != NULL) {
		rep.postmaster_rcpt = pm->rcpt;
		rep.postmaster_sender = pm->sender;
	}

	if (spool_msg_path(q->spool, orig_id, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_error("%s: cannot open the message file for a DSN: %s", orig_id, strerror(errno));
		return -1;
	}
	sink.m = spool_msg_create(q->spool, err, sizeof(err));
	if (sink.m == NULL) {
		close(fd);
		log_error("%s: cannot create a DSN: %s", orig_id, err);
		return -1;
	}
	snprintf(new_id, SPOOL_ID_SIZE, "%s", spool_msg_id(sink.m));
	rc = bounce_write(&rep, fd, spool_sink_write, &sink, err, sizeof(err));
	close(fd);
	if (rc < 0) {
		log_error("%s: cannot write a DSN: %s", orig_id, err);
		spool_msg_abort(sink.m);
		return -1;
	}
	envelope_init(&out);
	bounce_envelope_init(&out, &rep);
	dsn_expand(q, new_id, &out);
	out.arrival = f->now_ms * 1000;
	out.size = spool_msg_size(sink.m);
	envelope_set(&out.proto, "LOCAL");
	envelope_set(&out.client_name, "localhost");
	envelope_set(&out.client_addr, "127.0.0.1");
	envelope_set(&out.listener, "local");
	if (spool_msg_commit_sync(q->spool, sink.m, &out, err, sizeof(err)) != SPOOL_OK) {
		log_error("%s: cannot commit a DSN: %s", orig_id, err);
		envelope_free(&out);
		return -1;
	}
	envelope_free(&out);
	if (f->ndsn == f->dsn_cap) {
		f->dsn_cap = f->dsn_cap ? f->dsn_cap * 2 : 8;
		f->dsn_ids = realloc(f->dsn_ids, f->dsn_cap * sizeof(*f->dsn_ids));
		if (f->dsn_ids == NULL)
			fatal("out of memory");
	}
	memcpy(f->dsn_ids[f->ndsn++], new_id, SPOOL_ID_SIZE);
	return 0;
}

/*
 * RFC 3464 Diagnostic-Code: the remote reply itself ("smtp; 550 5.1.1
 * <x@y>: no such user"). The smtp agent's text is Postfix's, "host H said:
 * REPLY (in reply to C command)", so the reply is cut out of it; a text
 * that is the reply already is taken as it is; otherwise code and
 * enhanced code are put in front. Our own reasons are "x-tern; ...".
 */
static void
diagnostic_code(const struct qstore_rcpt *rec, char *diag, size_t diagsz)
{
	const char *said = strstr(rec->text, " said: ");
	const char *reply = said != NULL ? said + 7 : rec->text;
	size_t n = strlen(reply);
	const char *tail = NULL;
	char code[8];

	if (rec->smtp_code <= 0) {
		snprintf(diag, diagsz, "x-tern; %s", rec->text);
		return;
	}
	if (said != NULL) {
		for (const char *p = strstr(reply, " (in reply to "); p != NULL;
		     p = strstr(p + 1, " (in reply to "))
			tail = p;
		if (tail != NULL && n >= 9 && strcmp(reply + n - 9, " command)") == 0)
			n = (size_t)(tail - reply);
	}
	snprintf(code, sizeof(code), "%d", rec->smtp_code);
	if (strncmp(reply, code, strlen(code)) == 0)
		snprintf(diag, diagsz, "smtp; %.*s", (int)n, reply);
	else
		snprintf(diag, diagsz, "smtp; %d %s%s%.*s", rec->smtp_code, rec->enh,
		         rec->enh[0] ? " " : "", (int)n, reply);
}

static void
bounce_rcpt_fill(struct bounce_rcpt *br, const struct envelope *env, uint32_t idx,
                 const struct qstore_rcpt *rec, enum bounce_action a, char *diag, size_t diagsz,
                 char *mta, size_t mtasz, const char *status)
{
	memset(br, 0, sizeof(*br));
	br->final_rcpt = env->rcpts[idx].addr;
	br->orcpt = env->rcpts[idx].orcpt;
	br->action = a;
	br->status = status;
	if (rec->text[0] != '\0') {
		diagnostic_code(rec, diag, diagsz);
		br->diagnostic = diag;
	}
	if (rec->relay[0] != '\0' && strcmp(rec->relay, "none") != 0) {
		snprintf(mta, mtasz, "dns; %.*s", (int)strcspn(rec->relay, "[:"), rec->relay);
		br->remote_mta = mta;
	}
	br->last_attempt = rec->last_attempt * 1000000;
}

/* The RFC 3463 status to report, into buf: the one the result carried,
 * or a default that fits the action; an expired recipient's last
 * temporary code is made permanent (4.4.1 -> 5.4.1). */
static const char *
dsn_status(const struct qstore_rcpt *rec, bool expired, enum bounce_action a, char *buf,
           size_t bufsz)
{
	const char *st;

	if (a == BOUNCE_ACTION_DELIVERED || a == BOUNCE_ACTION_RELAYED)
		st = rec->enh[0] == '2' ? rec->enh : "2.0.0";
	else if (a == BOUNCE_ACTION_DELAYED)
		st = rec->enh[0] == '4' ? rec->enh : "4.0.0";
	else if (expired && rec->enh[0] == '4') {
		snprintf(buf, bufsz, "5%s", rec->enh + 1);
		return buf;
	} else if (expired)
		st = "5.4.7";
	else
		st = rec->enh[0] == '5' ? rec->enh : "5.0.0";
	snprintf(buf, bufsz, "%s", st);
	return buf;
}

/* ---- the flush ---- */

/* Postfix's delay format: at most two decimals, trailing zeros dropped
 * (delay_logging_resolution_limit = 2): "0.8", "0.16", "12", "0". */
static const char *
fmt_delay(char *dst, size_t dstsz, double secs)
{
	size_t n;

	snprintf(dst, dstsz, "%.2f", secs < 0 ? 0 : secs);
	n = strlen(dst);
	while (n > 0 && dst[n - 1] == '0')
		dst[--n] = '\0';
	if (n > 0 && dst[n - 1] == '.')
		dst[--n] = '\0';
	return dst;
}

static void
log_outcome(struct flush *f, const struct qmgr_outcome *o, const struct envelope *env)
{
	const char *addr = env != NULL && o->idx < env->nrcpt ? env->rcpts[o->idx].addr : "?";
	double delay = env != NULL ? (double)(f->now_ms * 1000 - env->arrival) / 1e6 : 0;
	const struct qmgr_active *act = o->msg->data;
	const char *status;
	char d[32], da[32], db[32];
	bool builtin = o->dest->transport->capacity == SCHED_UNLIMITED;
	double before = delay, in_qmgr = 0;

	/* Agents log their own to= lines; qmgr logs what it decided itself. */
	if (!builtin && !o->ours && !o->expired)
		return;
	if (o->expired)
		status = "expired";
	else
		status = o->kind == QMGR_OUT_DELIVERED ? "sent"
		       : o->kind == QMGR_OUT_PERM ? "bounced" : "deferred";
	/* Postfix's delays=a/b/c/d: a before the message became active,
	 * b in qmgr since; no connection (c) or transmission (d) here. */
	if (act != NULL && act->loaded && env != NULL && act->activated_ms > 0) {
		before = (double)(act->activated_ms * 1000 - env->arrival) / 1e6;
		in_qmgr = (double)(f->now_ms - act->activated_ms) / 1e3;
	}
	fmt_delay(d, sizeof(d), delay);
	fmt_delay(da, sizeof(da), before);
	fmt_delay(db, sizeof(db), in_qmgr);
	log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/0/0, dsn=%s, status=%s (%s)",
	         o->msg->id, addr, o->relay, d, da, db, o->enh[0] ? o->enh : "4.0.0", status,
	         o->text);
}

static void
flush_free(struct flush *f)
{
	for (size_t i = 0; i < f->nenvs; i++)
		if (f->envs[i].owned) {
			envelope_free(f->envs[i].env);
			free(f->envs[i].env);
		}
	free(f->envs);
	free(f->keys);
	idxhash_free(&f->env_index);
	idxhash_free(&f->key_index);
	free(f->dsn_ids);
	qstore_batch_free(&f->batch);
}

/* Write the failure / success DSNs of one message, whose n outcomes are
 * os[] (decided in ds[]); recipients whose DSN could not be written are
 * turned back into deferrals (decided again later), never marked bounced
 * without their notice.
 *
 * Postmaster notices, as Postfix's notify_classes has them: with
 * "bounce", a copy (headers) of every non-delivery notice; with "2bounce"
 * (or "bounce"), a notice from <> that fails goes to the postmaster as a
 * double bounce instead of being dropped. A failing postmaster notice
 * (its sender is the double-bounce address) is discarded. Postmaster
 * copies are best effort: a failure to write one is logged only. */
static void
message_dsns(struct flush *f, struct flush_env *fe, struct qmgr_outcome **os, struct decided *ds,
             size_t n)
{
	static const enum bounce_kind kinds[] = { BOUNCE_KIND_FAILED, BOUNCE_KIND_DELIVERED };
	const struct envelope *env = fe->env;
	struct postmaster pm;
	bool null_sender, from_postmaster;

	if (env == NULL)
		return;
	postmaster_for(f->q, P_2BOUNCE_NOTICE_RECIPIENT, &pm);
	null_sender = bounce_is_null_sender(env);
	from_postmaster = !null_sender && bounce_is_postmaster_sender(env, pm.sender);
	for (size_t k = 0; k < 2; k++) {
		struct bounce_rcpt *ent = calloc(n, sizeof(*ent));
		struct bounce_rcpt *brs = calloc(n, sizeof(*brs));
		struct bounce_rcpt *all = calloc(n, sizeof(*all));
		char (*diag)[600] = calloc(n, sizeof(*diag));
		char (*mta)[320] = calloc(n, sizeof(*mta));
		char (*stat)[QSTORE_ENH_MAX + 2] = calloc(n, sizeof(*stat));
		size_t nb = 0, nall = 0;
		bool relayed_only = true;
		int written = -1;
		char new_id[SPOOL_ID_SIZE];

		if (ent == NULL || brs == NULL || all == NULL || diag == NULL || mta == NULL ||
		    stat == NULL)
			fatal("out of memory");
		for (size_t i = 0; i < n; i++) {
			struct decided *dd = &ds[i];
			bool failed = dd->final && dd->dsn == BOUNCE_ACTION_FAILED;
			bool success = dd->final && !dd->notice_passed &&
			               (dd->dsn == BOUNCE_ACTION_DELIVERED ||
			                dd->dsn == BOUNCE_ACTION_RELAYED);

			if (os[i]->msg != fe->msg || (k == 0 ? !failed : !success))
				continue;
			if (os[i]->idx >= env->nrcpt)
				continue;
			bounce_rcpt_fill(&ent[i], env, os[i]->idx, &dd->rec, dd->dsn, diag[i],
			                 sizeof(diag[i]), mta[i], sizeof(mta[i]),
			                 dsn_status(&dd->rec, dd->expired, dd->dsn, stat[i],
			                            sizeof(stat[i])));
			all[nall++] = ent[i];
			if (!bounce_wanted(env, os[i]->idx, dd->dsn))
				continue;
			dd->want_dsn = true;
			if (dd->dsn != BOUNCE_ACTION_RELAYED)
				relayed_only = false;
			brs[nb++] = ent[i];
		}
		if (nb > 0) {
			enum bounce_kind kind = kinds[k];

			if (kind == BOUNCE_KIND_DELIVERED && relayed_only)
				kind = BOUNCE_KIND_RELAYED;
			written = dsn_write(f, fe->msg->id, env, kind, brs, nb, NULL, new_id);
			if (written == 0) {
				log_info("%s: sender %s notification: %s", fe->msg->id,
				         k == 0 ? "non-delivery" : "delivery status", new_id);
			} else if (k == 0) {
				/* No notice, no bounce: try the whole thing again later. */
				for (size_t i = 0; i < n; i++)
					if (os[i]->msg == fe->msg && ds[i].want_dsn &&
					    ds[i].dsn == BOUNCE_ACTION_FAILED) {
						ds[i].final = false;
						ds[i].expired = false;
						ds[i].rec.state = QSTORE_DEFERRED;
						ds[i].next_attempt_ms = f->now_ms +
						    f->q->policy.minimal_backoff * 1000;
						ds[i].rec.next_attempt = ds[i].next_attempt_ms / 1000;
					}
			}
		}
		if (k == 0 && nall > 0) {
			if (from_postmaster) {
				log_warning("%s: undeliverable postmaster notification discarded",
				            fe->msg->id);
			} else if (null_sender) {
				if (notify_class(f->q, "2bounce") || notify_class(f->q, "bounce")) {
					if (dsn_write(f, fe->msg->id, env, BOUNCE_KIND_FAILED, all, nall,
					              &pm, new_id) == 0)
						log_info("%s: postmaster non-delivery notification: %s",
						         fe->msg->id, new_id);
				} else {
					for (size_t i = 0; i < nall; i++)
						log_info("%s: to=<%s>: undeliverable notification discarded "
						         "(null sender)", fe->msg->id, all[i].final_rcpt);
				}
			} else if (written == 0 && notify_class(f->q, "bounce")) {
				if (dsn_write(f, fe->msg->id, env, BOUNCE_KIND_FAILED, all, nall,
				              postmaster_for(f->q, P_BOUNCE_NOTICE_RECIPIENT, &pm),
				              new_id) == 0)
					log_info("%s: postmaster non-delivery notification: %s",
					         fe->msg->id, new_id);
				else
					log_warning("%s: postmaster notice failed while bouncing to %s",
					            fe->msg->id, env->sender);
			}
		}
		free(ent);
		free(brs);
		free(all);
		free(diag);
		free(mta);
		free(stat);
	}
}

/* The delay warning of one message: recipients not yet final that asked
 * for DELAY notices (the default). */
static void
message_warning(struct flush *f, struct sched_msg *m)
{
	struct flush_env *fe = flush_env(f, m);
	const struct envelope *env = flush_env_load(f, fe);
	struct bounce_rcpt *brs;
	char (*diag)[600], (*mta)[320], (*stat)[QSTORE_ENH_MAX + 2];
	size_t nb = 0;
	int written = -1;
	char new_id[SPOOL_ID_SIZE], err[200];
	struct qstore_msg flags;
	int64_t life;

	if (env == NULL || bounce_is_null_sender(env))
		return;
	life = f->q->policy.queue_lifetime;
	brs = calloc(env->nrcpt, sizeof(*brs));
	diag = calloc(env->nrcpt, sizeof(*diag));
	mta = calloc(env->nrcpt, sizeof(*mta));
	stat = calloc(env->nrcpt, sizeof(*stat));
	if (brs == NULL || diag == NULL || mta == NULL || stat == NULL)
		fatal("out of memory");
	for (uint32_t i = 0; i < m->nrcpt && i < env->nrcpt; i++) {
		struct qstore_rcpt rec;

		if (m->rcpts[i].state == SCHED_DONE || !bounce_wanted(env, i, BOUNCE_ACTION_DELAYED))
			continue;
		if (qstore_rcpt_get(f->q->qs, m->id, i, &rec, err, sizeof(err)) != SPOOL_OK)
			qstore_rcpt_init(&rec);
		bounce_rcpt_fill(&brs[nb], env, i, &rec, BOUNCE_ACTION_DELAYED, diag[nb],
		                 sizeof(diag[nb]), mta[nb], sizeof(mta[nb]),
		                 dsn_status(&rec, false, BOUNCE_ACTION_DELAYED, stat[nb],
		                            sizeof(stat[nb])));
		brs[nb].will_retry_until = env->arrival + life * 1000000;
		nb++;
	}
	if (nb > 0 && (written = dsn_write(f, m->id, env, BOUNCE_KIND_DELAYED, brs, nb, NULL,
	                                   new_id)) == 0) {
		struct postmaster pm;

		log_info("%s: sender delay notification: %s", m->id, new_id);
		if (notify_class(f->q, "delay") &&
		    dsn_write(f, m->id, env, BOUNCE_KIND_DELAYED, brs, nb,
		              postmaster_for(f->q, P_DELAY_NOTICE_RECIPIENT, &pm), new_id) == 0)
			log_info("%s: postmaster delay notification: %s", m->id, new_id);
	}
	if (nb == 0 || written == 0) {
		if (qstore_msg_get(f->q->qs, m->id, &flags, err, sizeof(err)) != SPOOL_OK) {
			memset(&flags, 0, sizeof(flags));
			flags.first_seen = f->now;
		}
		flags.warned = true;
		qstore_batch_put_msg(&f->batch, m->id, &flags);
	}
	free(brs);
	free(diag);
	free(mta);
	free(stat);
}

/* Drop a message that is gone from storage from memory too. */
static void
forget(struct qmgr *q, struct sched_msg *m)
{
	if (m->data != NULL)
		qmgr_on_idle(q, m);
	sched_msg_remove(q->sched, m);
}

/* Steps 1 and 2 for the outcomes of one message, then its records into
 * the batch. ds is scratch space for fe->count decisions. */
static void
flush_message(struct flush *f, struct flush_env *fe, struct qmgr_outcome **os,
              struct decided *ds)
{
	size_t n = fe->count;

	(void)flush_env_load(f, fe);
	for (size_t i = 0; i < n; i++)
		decide(f, os[i], fe, &ds[i]);
	message_dsns(f, fe, os, ds, n);
	for (size_t i = 0; i < n; i++) {
		qstore_batch_put_rcpt(&f->batch, os[i]->msg->id, os[i]->idx, &ds[i].rec);
		os[i]->final = ds[i].final;
		os[i]->expired = ds[i].expired;
		os[i]->next_attempt_ms = ds[i].next_attempt_ms;
		if (ds[i].final)
			fe->finals++;
	}
}

/* Would this outcome go into a notice (a bounce, or a success notice the
 * recipient asked for)? Expiry is known only after deciding: not here. */
static bool
outcome_makes_notice(struct flush *f, struct flush_env *fe, const struct qmgr_outcome *o)
{
	const struct envelope *env;

	if (o->kind == QMGR_OUT_PERM)
		return true;
	if (o->kind != QMGR_OUT_DELIVERED || o->relayed == AGENT_DSN_PASSED)
		return false;
	env = flush_env_load(f, fe);
	return env != NULL && o->idx < env->nrcpt &&
	       bounce_wanted(env, o->idx, o->relayed == AGENT_RELAYED ? BOUNCE_ACTION_RELAYED
	                                             : BOUNCE_ACTION_DELIVERED);
}

/*
 * The outcomes in arrival order, grouped by message (each message where
 * its first outcome came): one pass per message afterwards, in time
 * linear in the batch.
 *
 * While a message still has a job running, its outcomes that make a
 * notice wait for a later batch (back on q->outcomes), as Postfix's qmgr
 * sends notices when a message's pass ends: the failures of one pass
 * make one bounce and the successes one success notice, however the
 * agent spread its results over reads. Deliveries and deferrals are
 * recorded at once, so a crash redelivers as little as possible. At
 * drain time everything goes now.
 */
static struct qmgr_outcome **
flush_group(struct flush *f, struct qmgr_outcome *list, size_t *np)
{
	struct qmgr *q = f->q;
	struct qmgr_outcome **grouped, *o, *next;
	size_t *fill, n = 0;

	for (o = list; o != NULL; o = o->next)
		(void)flush_env(f, o->msg);
	for (size_t j = 0; j < q->nfinished; j++) {
		struct sched_msg *m = q->finished[j]->msg;
		size_t pos = idxhash_find(&f->env_index, idxhash_ptr(m), env_is, m, f);

		if (pos != IDXHASH_NONE)
			f->envs[pos].jobs_ending++;
	}
	for (o = list; o != NULL; o = o->next) {
		struct flush_env *fe = flush_env(f, o->msg);

		o->held = !q->draining && fe->msg->njobs > fe->jobs_ending &&
		          outcome_makes_notice(f, fe, o);
		if (!o->held)
			fe->count++;
	}
	for (size_t e = 0, at = 0; e < f->nenvs; e++) {
		f->envs[e].first = at;
		at += f->envs[e].count;
		n += f->envs[e].count;
	}
	grouped = calloc(n ? n : 1, sizeof(*grouped));
	fill = calloc(f->nenvs ? f->nenvs : 1, sizeof(*fill));
	if (grouped == NULL || fill == NULL)
		fatal("out of memory");
	for (o = list; o != NULL; o = next) {
		struct flush_env *fe = flush_env(f, o->msg);

		next = o->next;
		if (o->held) {
			o->next = NULL;
			*q->outcomes_tail = o;
			q->outcomes_tail = &o->next;
			q->noutcomes++;
			continue;
		}
		grouped[fe->first + fill[fe - f->envs]++] = o;
	}
	free(fill);
	*np = n;
	return grouped;
}

void
qmgr_outcomes_flush(struct qmgr *q)
{
	struct flush f;
	struct qmgr_outcome **os, *list = q->outcomes;
	struct decided *ds = NULL;
	size_t n, i, ngroups, ds_cap = 0;
	char err[256];
	enum spool_result rc;

	if (q->noutcomes == 0 && q->nfinished == 0 && q->nwarn == 0)
		return;
	memset(&f, 0, sizeof(f));
	f.q = q;
	f.now_ms = qmgr_now_ms();
	f.now = f.now_ms / 1000;
	qstore_batch_init(&f.batch);
	idxhash_init(&f.env_index);
	idxhash_init(&f.key_index);
	q->outcomes = NULL;
	q->outcomes_tail = &q->outcomes;
	q->noutcomes = 0;
	os = flush_group(&f, list, &n);
	ngroups = f.nenvs;

	/* 1 and 2, message by message: decide, then the DSNs, before
	 * anything is marked bounced */
	for (size_t e = 0; e < ngroups; e++) {
		struct flush_env *fe = &f.envs[e];

		if (fe->count > ds_cap) {
			ds_cap = fe->count;
			free(ds);
			ds = calloc(ds_cap, sizeof(*ds));
			if (ds == NULL)
				fatal("out of memory");
		}
		flush_message(&f, fe, os + fe->first, ds);
	}
	free(ds);
	for (size_t w = 0; w < q->nwarn; w++) {
		struct qmgr_active *act = q->warn[w]->data;

		message_warning(&f, q->warn[w]);
		if (act != NULL)
			act->warn_due = false;
	}
	q->nwarn = 0;

	/* 3. one transaction: states, retry records, finished messages */
	for (size_t e = 0; e < ngroups; e++) {
		struct flush_env *fe = &f.envs[e];

		if (fe->finals > 0 && fe->finals == fe->msg->nleft) {
			fe->remove = true;
			qstore_batch_remove_message(&f.batch, fe->msg->id);
		}
	}
	rc = qstore_batch_commit(q->qs, &f.batch, err, sizeof(err));
	if (rc != SPOOL_OK) {
		/* Nothing recorded: every recipient is tried again later (a
		 * delivered one may be delivered twice; none is lost). */
		log_error("cannot record delivery results: %s; retrying them in %llds", err,
		          (long long)q->policy.minimal_backoff);
		for (i = 0; i < n; i++) {
			os[i]->final = false;
			os[i]->expired = false;
			os[i]->next_attempt_ms = f.now_ms + q->policy.minimal_backoff * 1000;
		}
		for (size_t e = 0; e < f.nenvs; e++)
			f.envs[e].remove = false;
	}

	/* 4. the schedule follows what is recorded */
	for (size_t e = 0; e < ngroups; e++) {
		struct flush_env *fe = &f.envs[e];

		for (i = fe->first; i < fe->first + fe->count; i++) {
			if (rc == SPOOL_OK) {
				log_outcome(&f, os[i], fe->env);
				if (!os[i]->final)
					q->counters.deferred++;
				else if (os[i]->kind == QMGR_OUT_DELIVERED)
					q->counters.delivered++;
				else
					q->counters.bounced++;
			}
			if (os[i]->expired && !fe->expired_logged && fe->env != NULL) {
				log_info("%s: from=<%s>, status=expired, returned to sender",
				         fe->msg->id, fe->env->sender);
				fe->expired_logged = true;
			}
		}
	}
	for (i = 0; i < n; i++) {
		struct sched_msg *m = os[i]->msg;

		if (os[i]->final)
			sched_rcpt_done(q->sched, m, os[i]->idx);
		else
			sched_rcpt_wait(q->sched, m, os[i]->idx, os[i]->next_attempt_ms);
	}
	for (size_t e = 0; e < f.nenvs; e++) {
		struct sched_msg *m = f.envs[e].msg;

		if (!f.envs[e].remove)
			continue;
		log_info("%s: removed", m->id);
		m->gone = true;
		if (m->njobs == 0)
			forget(q, m);
		/* else: its job's DONE is still to come; forgotten then */
	}
	for (size_t j = 0; j < q->nfinished; j++) {
		struct sched_msg *m = q->finished[j]->msg;

		sched_job_end(q->sched, q->finished[j]);
		if (m->gone && m->njobs == 0)
			forget(q, m);
	}
	q->nfinished = 0;
	for (size_t d = 0; d < f.ndsn; d++) {
		struct envelope env;

		envelope_init(&env);
		if (spool_envelope_get(q->spool, f.dsn_ids[d], &env, err, sizeof(err)) == SPOOL_OK)
			qmgr_load_message(q, f.dsn_ids[d], &env, false);
		envelope_free(&env);
	}
	for (i = 0; i < n; i++)
		free(os[i]);
	free(os);
	flush_free(&f);
	qmgr_kick(q);
}

void
qmgr_message_finish(struct qmgr *q, struct sched_msg *m)
{
	struct qstore_batch b;
	char err[256];

	qstore_batch_init(&b);
	qstore_batch_remove_message(&b, m->id);
	if (qstore_batch_commit(q->qs, &b, err, sizeof(err)) != SPOOL_OK) {
		log_error("%s: cannot remove the finished message: %s", m->id, err);
	} else {
		log_info("%s: removed", m->id);
		if (m->data != NULL)
			qmgr_on_idle(q, m);
		sched_msg_remove(q->sched, m);
	}
	qstore_batch_free(&b);
}
