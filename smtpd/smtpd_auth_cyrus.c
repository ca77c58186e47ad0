/*
 * smtpd_auth_cyrus: smtpd_sasl_type = cyrus, the libsasl2 server.
 *
 * sasl_server_init() runs once per process with the application name
 * smtpd_sasl_path ("smtpd": Cyrus reads smtpd.conf) and
 * cyrus_sasl_config_path as its config search path (SASL_CB_GETCONFPATH,
 * ':'-separated). The file's pwcheck_method picks how passwords are
 * checked: auxprop (sasldb, with auxprop_plugin and sasldb_path) or
 * saslauthd (saslauthd_path).
 *
 * Why a thread: every Cyrus call is synchronous, and with saslauthd it
 * reads the daemon's answer without any time limit (lib/checkpw.c reads
 * with no timeout), so a slow PAM stack or a stuck saslauthd would stop
 * the whole listener. Postfix has the same property, but each of its
 * smtpd processes serves one client, so there it stalls one session. We
 * serve all sessions in one loop, so every Cyrus call runs on one worker
 * thread, one job at a time, and the loop only waits for a notification.
 * The exchange's time limit (SMTPD_AUTH_TIMEOUT_MS) bounds what a client
 * waits: past it the client gets 454 4.7.0 and the job's late result is
 * thrown away. A stuck saslauthd still holds the worker, so later AUTHs
 * queue behind it and time out too, but mail without AUTH flows on.
 *
 * Thread rules: after start-up (mechanism list, before the worker
 * exists) only the worker calls Cyrus; sasl_conn_t objects are created,
 * used and disposed there. Jobs and results cross in two lists under one
 * mutex; an eventfd wakes the loop.
 *
 * Reload: Cyrus reads its configuration once per process, so a changed
 * smtpd_sasl_path or cyrus_sasl_config_path takes effect after a restart
 * (smtpd_auth.c logs that); the users in sasldb change at once.
 */
#include <errno.h>
#include <pthread.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "smtpd/smtpd_auth_impl.h"

/* "ip;port" as Cyrus wants iplocalport/ipremoteport. */
#define CY_IPPORT_MAX (INET6_ADDRSTRLEN + 8)
/* The decoded size of the largest response a client may send. */
#define CY_DATA_MAX (SMTPD_AUTH_DATA_MAX / 4 * 3)

enum cy_op { CY_START, CY_STEP, CY_DISPOSE };

struct cy_exchange;

struct cy_job {
	enum cy_op op;
	struct cy_exchange *x;
	char mech[SMTPD_AUTH_MECH_MAX + 1];
	unsigned char *in;	/* decoded response; NULL for none */
	size_t inlen;
	/* The result. */
	enum smtpd_auth_status status;
	char text[SMTPD_AUTH_DATA_MAX + 1];	/* challenge, username or reason */
	bool final_data;	/* OK with data: text is the last challenge */
	char user[SMTPD_AUTH_USERNAME_MAX + 1];
	struct cy_job *next;
};

struct cy_exchange {
	struct smtpd_auth *a;	/* NULL once forgotten */
	sasl_conn_t *conn;	/* the worker's */
	bool busy;		/* a job for it is queued or running */
	bool final_ok;		/* waiting for the empty answer to the last data */
	char user[SMTPD_AUTH_USERNAME_MAX + 1];
	char local[CY_IPPORT_MAX];
	char remote[CY_IPPORT_MAX];
};

struct cy_backend {
	struct smtpd_auth_backend base;
	char mechs[SMTPD_AUTH_MECHLIST_MAX + 1];
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct cy_job *pending, *pending_tail;	/* for the worker */
	struct cy_job *done, *done_tail;	/* for the loop */
	bool stop;
	bool busy;		/* the worker holds a job (for shutdown) */
	int efd;		/* eventfd: results are ready */
	struct ev_io io;
};

/* Cyrus keeps a pointer to the config path: it must outlive the process's
 * use of the library. */
static char cy_confpath[4096];
static bool cy_initialised;

static struct cy_backend *
cy_of(struct smtpd_auth_backend *b)
{
	return (struct cy_backend *)b;
}

/* ---- Cyrus callbacks ---- */

static int
cy_getconfpath(void *context, const char **path)
{
	(void)context;
	*path = cy_confpath;
	return SASL_OK;
}

/* Cyrus's own diagnostics; called on the worker (log lines are written
 * with one write each, so that is safe). Debug levels are dropped. */
static int
cy_log(void *context, int level, const char *message)
{
	(void)context;
	if (message == NULL)
		return SASL_OK;
	if (level <= SASL_LOG_ERR)
		log_warning("SASL: %s", message);
	else if (level <= SASL_LOG_NOTE)
		log_info("SASL: %s", message);
	return SASL_OK;
}

typedef int (*cy_cb_fn)(void);

static sasl_callback_t cy_callbacks[] = {
	{ SASL_CB_GETCONFPATH, (cy_cb_fn)(void (*)(void))cy_getconfpath, NULL },
	{ SASL_CB_LOG, (cy_cb_fn)(void (*)(void))cy_log, NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

/* A server connection with our security properties: no SASL security
 * layer (TLS is ours; Postfix sets max_ssf = 0 likewise) and no
 * anonymous mechanism (Postfix's default smtpd_sasl_security_options). */
static int
cy_conn_new(const char *local, const char *remote, sasl_conn_t **conn)
{
	sasl_security_properties_t props;
	int rc;

	rc = sasl_server_new("smtp", NULL, NULL, local, remote, NULL, 0, conn);
	if (rc != SASL_OK)
		return rc;
	memset(&props, 0, sizeof(props));
	props.security_flags = SASL_SEC_NOANONYMOUS;
	rc = sasl_setprop(*conn, SASL_SEC_PROPS, &props);
	if (rc != SASL_OK) {
		sasl_dispose(conn);
		*conn = NULL;
	}
	return rc;
}

/* ---- the worker ---- */

/* Which failures are ours (454) rather than the client's (535). */
static bool
cy_temporary(int rc)
{
	return rc == SASL_TRYAGAIN || rc == SASL_UNAVAIL || rc == SASL_FAIL || rc == SASL_NOMEM ||
	    rc == SASL_BUFOVER;
}

static void
cy_result(struct cy_job *j, int rc, const char *out, unsigned outlen)
{
	const void *user = NULL;
	long n;

	if (rc == SASL_CONTINUE) {
		n = smtpd_auth_base64_encode((const unsigned char *)out, outlen, j->text,
		                             sizeof(j->text));
		if (n < 0) {
			j->status = SMTPD_AUTH_TEMPFAIL;
			snprintf(j->text, sizeof(j->text), "SASL challenge too long");
			return;
		}
		j->status = SMTPD_AUTH_CONTINUE;
		return;
	}
	if (rc == SASL_OK) {
		if (sasl_getprop(j->x->conn, SASL_USERNAME, &user) != SASL_OK || user == NULL) {
			j->status = SMTPD_AUTH_TEMPFAIL;
			snprintf(j->text, sizeof(j->text), "cannot look up the authenticated username");
			return;
		}
		j->status = SMTPD_AUTH_OK;
		snprintf(j->user, sizeof(j->user), "%s", (const char *)user);
		snprintf(j->text, sizeof(j->text), "%s", (const char *)user);
		/* Data with success (RFC 4954 section 4): a last challenge. */
		if (outlen > 0 && smtpd_auth_base64_encode((const unsigned char *)out, outlen, j->text,
		    sizeof(j->text)) >= 0)
			j->final_data = true;
		return;
	}
	j->status = cy_temporary(rc) ? SMTPD_AUTH_TEMPFAIL : SMTPD_AUTH_FAIL;
	/* The reply says what Cyrus's error string says (Postfix's text:
	 * "authentication failure"); the log gets the detail too. */
	snprintf(j->text, sizeof(j->text), "%s", sasl_errstring(rc, NULL, NULL));
	if (j->x->conn != NULL && rc != SASL_BADAUTH)
		log_info("SASL %s: %s", j->mech[0] ? j->mech : "step", sasl_errdetail(j->x->conn));
}

static void
cy_run(struct cy_job *j)
{
	struct cy_exchange *x = j->x;
	const char *out = NULL;
	unsigned outlen = 0;
	int rc;

	switch (j->op) {
	case CY_START:
		rc = cy_conn_new(x->local, x->remote, &x->conn);
		if (rc == SASL_OK)
			rc = sasl_server_start(x->conn, j->mech, (const char *)j->in,
			                       (unsigned)j->inlen, &out, &outlen);
		cy_result(j, rc, out, outlen);
		break;
	case CY_STEP:
		rc = sasl_server_step(x->conn, (const char *)j->in, (unsigned)j->inlen, &out,
		                      &outlen);
		cy_result(j, rc, out, outlen);
		break;
	case CY_DISPOSE:
		if (x->conn != NULL)
			sasl_dispose(&x->conn);
		break;
	}
	if (j->in != NULL) {
		explicit_bzero(j->in, j->inlen);
		free(j->in);
		j->in = NULL;
	}
}

static void *
cy_worker(void *arg)
{
	struct cy_backend *c = arg;
	struct cy_job *j;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->pending == NULL && !c->stop)
			pthread_cond_wait(&c->wake, &c->lock);
		if (c->pending == NULL)
			break;
		j = c->pending;
		c->pending = j->next;
		if (c->pending == NULL)
			c->pending_tail = NULL;
		c->busy = true;
		pthread_mutex_unlock(&c->lock);

		cy_run(j);

		pthread_mutex_lock(&c->lock);
		c->busy = false;
		j->next = NULL;
		if (c->done_tail != NULL)
			c->done_tail->next = j;
		else
			c->done = j;
		c->done_tail = j;
		/* A full eventfd counter cannot happen (it counts to 2^64-2). */
		(void)!write(c->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
cy_submit(struct cy_backend *c, struct cy_job *j)
{
	j->x->busy = true;
	pthread_mutex_lock(&c->lock);
	j->next = NULL;
	if (c->pending_tail != NULL)
		c->pending_tail->next = j;
	else
		c->pending = j;
	c->pending_tail = j;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

static struct cy_job *
cy_job_new(struct cy_exchange *x, enum cy_op op)
{
	struct cy_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatal("out of memory (auth)");
	j->op = op;
	j->x = x;
	return j;
}

/* ---- results on the loop ---- */

static void
cy_dispose(struct cy_backend *c, struct cy_exchange *x)
{
	cy_submit(c, cy_job_new(x, CY_DISPOSE));
}

static void
cy_deliver(struct cy_backend *c, struct cy_job *j)
{
	struct cy_exchange *x = j->x;
	struct smtpd_auth *a = x->a;

	x->busy = false;
	if (j->op == CY_DISPOSE) {
		explicit_bzero(x, sizeof(*x));
		free(x);
		return;
	}
	if (a == NULL) {
		/* Forgotten while the worker ran (timeout, client gone). */
		cy_dispose(c, x);
		return;
	}
	if (j->status == SMTPD_AUTH_OK && j->final_data) {
		memcpy(x->user, j->user, sizeof(x->user));
		x->final_ok = true;
		smtpd_auth_finish(a, SMTPD_AUTH_CONTINUE, j->text, strlen(j->text));
		return;
	}
	smtpd_auth_finish(a, j->status, j->text, strlen(j->text));
}

static void
cy_io(struct ev_io *io, unsigned revents)
{
	struct cy_backend *c = io->arg;
	struct cy_job *list, *j;
	uint64_t n;

	(void)revents;
	(void)!read(c->efd, &n, sizeof(n));
	pthread_mutex_lock(&c->lock);
	list = c->done;
	c->done = c->done_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	/* Sessions may end (and drop references) in the callbacks. */
	c->base.refs++;
	while ((j = list) != NULL) {
		list = j->next;
		cy_deliver(c, j);
		explicit_bzero(j, sizeof(*j));
		free(j);
	}
	smtpd_auth_backend_unref(&c->base);
}

/* ---- the back-end operations ---- */

static const char *
cy_mechs(struct smtpd_auth_backend *b)
{
	return cy_of(b)->mechs;
}

/* Base64 text (checked by the session) to a job's input. */
static void
cy_job_input(struct cy_job *j, const char *b64)
{
	long n;

	if (b64 == NULL)
		return;
	j->in = malloc(CY_DATA_MAX + 1);
	if (j->in == NULL)
		fatal("out of memory (auth)");
	n = smtpd_auth_base64_decode(b64, strlen(b64), j->in, CY_DATA_MAX);
	j->inlen = n > 0 ? (size_t)n : 0;
}

static void
cy_start(struct smtpd_auth *a, const char *mech, const char *initial)
{
	struct cy_backend *c = cy_of(a->b);
	struct cy_exchange *x = calloc(1, sizeof(*x));
	struct cy_job *j;

	if (x == NULL)
		fatal("out of memory (auth)");
	x->a = a;
	a->impl = x;
	snprintf(x->local, sizeof(x->local), "%s;%u", a->server_addr, a->server_port);
	snprintf(x->remote, sizeof(x->remote), "%s;%u", a->client_addr, a->client_port);
	j = cy_job_new(x, CY_START);
	snprintf(j->mech, sizeof(j->mech), "%s", mech);
	cy_job_input(j, initial);
	cy_submit(c, j);
}

static void
cy_step(struct smtpd_auth *a, const char *response)
{
	struct cy_backend *c = cy_of(a->b);
	struct cy_exchange *x = a->impl;
	struct cy_job *j;

	if (x->final_ok) {
		x->final_ok = false;
		if (response[0] != '\0')
			return smtpd_auth_post(a, SMTPD_AUTH_FAIL, "unexpected data after success", 29);
		return smtpd_auth_post(a, SMTPD_AUTH_OK, x->user, strlen(x->user));
	}
	j = cy_job_new(x, CY_STEP);
	snprintf(j->mech, sizeof(j->mech), "%s", a->mech);
	cy_job_input(j, response);
	cy_submit(c, j);
}

static void
cy_forget(struct smtpd_auth *a)
{
	struct cy_exchange *x = a->impl;

	if (x == NULL)
		return;
	a->impl = NULL;
	x->a = NULL;
	if (!x->busy)
		cy_dispose(cy_of(a->b), x);
	/* else: the result comes back, finds no exchange, disposes. */
}

static void
cy_free(struct smtpd_auth_backend *b)
{
	struct cy_backend *c = cy_of(b);
	struct cy_job *j;
	bool stuck;

	/* Let the worker finish what is queued (disposals), then stop. A
	 * worker stuck in saslauthd is left behind: the process is exiting
	 * (the only time the last reference goes), and joining would hang. */
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->wake);
	stuck = c->busy;
	pthread_mutex_unlock(&c->lock);
	evloop_io_del(b->loop, &c->io);
	if (stuck) {
		log_warning("SASL: the Cyrus worker is still busy at exit; leaving it");
		pthread_detach(c->worker);
		return;
	}
	pthread_join(c->worker, NULL);
	while ((j = c->done) != NULL) {
		c->done = j->next;
		if (j->op == CY_DISPOSE)
			free(j->x);
		free(j);
	}
	close(c->efd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}

static const struct smtpd_auth_ops cy_ops = {
	.name = "cyrus",
	.mechs = cy_mechs,
	.start = cy_start,
	.step = cy_step,
	.forget = cy_forget,
	.free = cy_free,
};

/* The mechanisms Cyrus offers under our properties, checked names only. */
static int
cy_list_mechs(char *dst, size_t dstsz, char *err, size_t errsz)
{
	sasl_conn_t *conn = NULL;
	const char *list = NULL, *p;
	unsigned len = 0;
	int count = 0, rc;
	size_t o = 0;

	dst[0] = '\0';
	rc = cy_conn_new(NULL, NULL, &conn);
	if (rc == SASL_OK)
		rc = sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count);
	if (rc != SASL_OK || list == NULL) {
		snprintf(err, errsz, "no SASL authentication mechanisms (%s)",
		         sasl_errstring(rc, NULL, NULL));
		if (conn != NULL)
			sasl_dispose(&conn);
		return -1;
	}
	for (p = list; *p != '\0';) {
		size_t w = strcspn(p, " "), k;

		for (k = 0; k < w; k++)
			if (!((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9') ||
			    p[k] == '-' || p[k] == '_'))
				break;
		if (k == w && w > 0 && w <= SMTPD_AUTH_MECH_MAX && o + w + 1 < dstsz) {
			if (o > 0)
				dst[o++] = ' ';
			memcpy(dst + o, p, w);
			o += w;
			dst[o] = '\0';
		}
		p += w;
		p += strspn(p, " ");
	}
	sasl_dispose(&conn);
	if (o == 0) {
		snprintf(err, errsz, "no SASL authentication mechanisms");
		return -1;
	}
	return 0;
}

struct smtpd_auth_backend *
smtpd_auth_cyrus_new(struct evloop *loop, const char *app, const char *confpath,
                     const char *setting, char *err, size_t errsz)
{
	struct cy_backend *c;
	int rc;

	if (cy_initialised) {
		/* One per process: smtpd_auth.c reuses the one there is. */
		snprintf(err, errsz, "Cyrus SASL is already initialised in this process");
		return NULL;
	}
	if (strlen(confpath) >= sizeof(cy_confpath)) {
		snprintf(err, errsz, "cyrus_sasl_config_path too long");
		return NULL;
	}
	snprintf(cy_confpath, sizeof(cy_confpath), "%s", confpath);
	rc = sasl_server_init(cy_callbacks, app);
	if (rc != SASL_OK) {
		snprintf(err, errsz, "SASL per-process initialization failed: %s",
		         sasl_errstring(rc, NULL, NULL));
		return NULL;
	}
	cy_initialised = true;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		fatal("out of memory (auth)");
	smtpd_auth_backend_init(&c->base, &cy_ops, loop, setting);
	if (cy_list_mechs(c->mechs, sizeof(c->mechs), err, errsz) < 0) {
		free(c);
		return NULL;
	}
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0 || evloop_io_add(loop, &c->io, c->efd, EV_READ, cy_io, c) < 0)
		fatal("SASL: eventfd: %s", strerror(errno));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	if ((rc = pthread_create(&c->worker, NULL, cy_worker, c)) != 0)
		fatal("SASL: cannot start the worker thread: %s", strerror(rc));
	log_info("SASL: Cyrus application %s, mechanisms %s", app, c->mechs);
	return &c->base;
}
