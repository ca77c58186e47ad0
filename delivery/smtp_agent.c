/*
 * smtp_agent: the smtp delivery agent role. It connects to qmgr at
 * queue_directory/private/qmgr, says HELLO for the transport "smtp" with
 * default_process_limit job slots, and runs every job it is given at
 * once, each in its own sessions, all on one event loop.
 *
 * The connection to qmgr is queue/agent_link.c. qmgr going away is
 * survivable: the jobs in flight are dropped without a word (the next
 * qmgr reads the recipients' states from LMDB and tries again the ones
 * without a recorded result: at least once, never zero times), and the
 * link reconnects every second.
 *
 * Log lines per recipient are Postfix's (doc/smtp.md), written by
 * agent_link_result():
 *   ID: to=<a@b>, relay=mx.b[192.0.2.7]:25, delay=0.8, delays=0/0.01/0.32/0.47,
 *       dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)
 */
#include "delivery/smtp_agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rolectl.h"
#include "config/config_reload.h"
#include "delivery/smtp_impl.h"
#include "delivery/smtp_sasl.h"

static int64_t
seconds_ms(const struct config *cfg, enum config_param p)
{
	return (int64_t)config_time(cfg, p) * 1000;
}

static void
smtp_settings_load(struct smtp_settings *s, const struct config *cfg, bool lmtp)
{
	uint64_t port = config_int(cfg, lmtp ? P_LMTP_TCP_PORT : P_SMTP_PORT);

	memset(s, 0, sizeof(*s));
	s->lmtp = lmtp;
	snprintf(s->helo_name, sizeof(s->helo_name), "%s", config_str(cfg, P_SMTP_HELO_NAME));
	snprintf(s->myhostname, sizeof(s->myhostname), "%s", config_str(cfg, P_MYHOSTNAME));
	s->port = port >= 1 && port <= 65535 ? (uint16_t)port : lmtp ? 24 : 25;
	s->connect_ms = seconds_ms(cfg, P_SMTP_CONNECT_TIMEOUT);
	s->helo_ms = seconds_ms(cfg, P_SMTP_HELO_TIMEOUT);
	s->mail_ms = seconds_ms(cfg, P_SMTP_MAIL_TIMEOUT);
	s->rcpt_ms = seconds_ms(cfg, P_SMTP_RCPT_TIMEOUT);
	s->data_init_ms = seconds_ms(cfg, P_SMTP_DATA_INIT_TIMEOUT);
	s->data_xfer_ms = seconds_ms(cfg, P_SMTP_DATA_XFER_TIMEOUT);
	s->data_done_ms = seconds_ms(cfg, P_SMTP_DATA_DONE_TIMEOUT);
	s->quit_ms = seconds_ms(cfg, P_SMTP_QUIT_TIMEOUT);
	s->mx_address_limit = (unsigned)config_int(cfg, P_SMTP_MX_ADDRESS_LIMIT);
	s->mx_session_limit = (unsigned)config_int(cfg, P_SMTP_MX_SESSION_LIMIT);
	s->cache_ms = seconds_ms(cfg, P_SMTP_CONNECTION_CACHE_TIME_LIMIT);
	s->send_xforward = !lmtp && config_bool(cfg, P_SMTP_SEND_XFORWARD_COMMAND);
	/* The parameter is an enum the configuration has checked. */
	if (smtp_tls_level_parse(config_str(cfg, P_SMTP_TLS_SECURITY_LEVEL), &s->tls_level) < 0)
		panic("smtp_tls_security_level = %s passed the configuration check",
		      config_str(cfg, P_SMTP_TLS_SECURITY_LEVEL));
	snprintf(s->tls_cafile, sizeof(s->tls_cafile), "%s", config_str(cfg, P_SMTP_TLS_CAFILE));
	/* Checked by smtp_agent_config_check(). */
	if (smtp_tls_protocols_parse(config_str(cfg, P_SMTP_TLS_PROTOCOLS), &s->tls_protocols, NULL,
	                             0) < 0 ||
	    smtp_tls_protocols_parse(config_str(cfg, P_SMTP_TLS_MANDATORY_PROTOCOLS),
	                             &s->tls_mandatory_protocols, NULL, 0) < 0)
		panic("smtp_tls_*protocols passed the configuration check");
	s->dnssec = strcmp(config_str(cfg, P_SMTP_DNS_SUPPORT_LEVEL), "dnssec") == 0;
	s->min_backoff_us = (int64_t)config_time(cfg, P_MINIMAL_BACKOFF_TIME) * 1000000;
	/* LMTP goes to our own mailbox server: no TLS, no AUTH (Postfix's
	 * lmtp_tls_* and lmtp_sasl_* are not implemented). */
	if (lmtp)
		s->tls_level = SMTP_TLS_NONE;
	s->sasl_enable = !lmtp && config_bool(cfg, P_SMTP_SASL_AUTH_ENABLE);
	/* Checked by smtp_agent_config_check(); the strictest on a surprise. */
	if (smtp_sasl_security_flags(config_list(cfg, P_SMTP_SASL_SECURITY_OPTIONS), &s->sasl_flags,
	                             NULL, 0) < 0 ||
	    smtp_sasl_security_flags(config_list(cfg, P_SMTP_SASL_TLS_SECURITY_OPTIONS),
	                             &s->sasl_tls_flags, NULL, 0) < 0)
		panic("smtp_sasl_*security_options passed the configuration check");
	for (size_t i = 0; i < config_list(cfg, P_SMTP_SASL_MECHANISM_FILTER)->n; i++) {
		size_t used = strlen(s->sasl_mech_filter);

		snprintf(s->sasl_mech_filter + used, sizeof(s->sasl_mech_filter) - used, "%s%s",
		         used ? " " : "", config_list(cfg, P_SMTP_SASL_MECHANISM_FILTER)->items[i]);
	}
}

/* The maps of a LIST parameter, when it has any (*out NULL otherwise). */
static int
smtp_maps_open(const struct config *cfg, enum config_param p, struct map_list **out,
               struct buf *diag)
{
	*out = NULL;
	if (config_list(cfg, p)->n == 0)
		return 0;
	return map_list_open(config_list(cfg, p), 0, out, diag) == MAP_OK ? 0 : -1;
}

/* smtp_sasl_password_maps, when AUTH is on and there are some. */
static int
smtp_sasl_maps_open(const struct config *cfg, struct map_list **out, struct buf *diag)
{
	*out = NULL;
	if (!config_bool(cfg, P_SMTP_SASL_AUTH_ENABLE))
		return 0;
	return smtp_maps_open(cfg, P_SMTP_SASL_PASSWORD_MAPS, out, diag);
}

int
smtp_agent_config_check(const struct config *cfg, struct buf *errors)
{
	const char *file = config_path(cfg) != NULL ? config_path(cfg) : "(defaults)";
	static const enum config_param opts[] = { P_SMTP_SASL_SECURITY_OPTIONS,
		                                  P_SMTP_SASL_TLS_SECURITY_OPTIONS };
	static const enum config_param protos[] = { P_SMTP_TLS_PROTOCOLS,
		                                    P_SMTP_TLS_MANDATORY_PROTOCOLS };
	struct map_list *maps = NULL;
	struct buf diag;
	unsigned flags;
	char err[300];
	int rc = 0;

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (smtp_sasl_security_flags(config_list(cfg, opts[i]), &flags, err, sizeof(err)) < 0) {
			buf_append_printf(errors, "%s: %s: %s\n", file, config_param_name(opts[i]), err);
			rc = -1;
		}
	buf_init(&diag, 64 * 1024);
	if (smtp_sasl_maps_open(cfg, &maps, &diag) < 0) {
		buf_append_printf(errors, "%s: smtp_sasl_password_maps: %s", file, buf_cstr(&diag));
		rc = -1;
	}
	map_list_close(maps);
	buf_reset(&diag);
	if (smtp_maps_open(cfg, P_SMTP_TLS_POLICY_MAPS, &maps, &diag) < 0) {
		buf_append_printf(errors, "%s: smtp_tls_policy_maps: %s", file, buf_cstr(&diag));
		rc = -1;
	}
	map_list_close(maps);
	buf_free(&diag);
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		struct smtp_tls_protocols pr;

		if (smtp_tls_protocols_parse(config_str(cfg, protos[i]), &pr, err, sizeof(err)) < 0) {
			buf_append_printf(errors, "%s: %s: %s\n", file, config_param_name(protos[i]),
			                  err);
			rc = -1;
		}
	}
	return rc;
}

/* (Re)open the password maps; on failure the old ones stay. */
static void
smtp_agent_sasl_setup(struct smtp_agent *a)
{
	struct map_list *maps = NULL;
	struct buf diag;
	char err[300];

	if (a->set.sasl_enable && smtp_sasl_init(err, sizeof(err)) < 0)
		log_warning("%s: client AUTH will fail", err);
	buf_init(&diag, 64 * 1024);
	if (smtp_sasl_maps_open(a->cfg, &maps, &diag) < 0) {
		log_warning("smtp_sasl_password_maps: %s", buf_cstr(&diag));
	} else {
		map_list_close(a->sasl_maps);
		a->sasl_maps = maps;
	}
	buf_free(&diag);
}

/* (Re)open smtp_tls_policy_maps; on failure the old ones stay. */
static void
smtp_agent_policy_setup(struct smtp_agent *a)
{
	struct map_list *maps = NULL;
	struct buf diag;

	buf_init(&diag, 64 * 1024);
	if (a->set.lmtp) {
		map_list_close(a->tls_policy_maps);
		a->tls_policy_maps = NULL;
	} else if (smtp_maps_open(a->cfg, P_SMTP_TLS_POLICY_MAPS, &maps, &diag) < 0) {
		log_warning("smtp_tls_policy_maps: %s", buf_cstr(&diag));
	} else {
		map_list_close(a->tls_policy_maps);
		a->tls_policy_maps = maps;
	}
	buf_free(&diag);
}

/*
 * (Re)make the TLS client context from a->set, once per start and reload
 * (never per connection). The CA file matters only to "verify": when it
 * cannot be used there, TLS is off and every delivery defers with "TLS is
 * required, but our TLS engine is unavailable", as Postfix does when
 * tls_client_init() fails; mail waits in the queue, the log says why, and
 * a reload with a good file resumes. Under "may" and "encrypt" it only
 * decides whether a peer is logged "Trusted": a bad file is a warning and
 * TLS goes on without trust anchors. (Postfix disables TLS for any bad
 * CAfile; its default is empty, ours a system bundle that a host without
 * ca-certificates lacks, and that must not turn opportunistic TLS off.)
 */
static void
smtp_agent_tls_setup(struct smtp_agent *a)
{
	struct smtp_tls_ctx *ctx = NULL;
	char err[1300];

	/* A policy map may ask for TLS where the main level says none. */
	if (a->set.tls_level != SMTP_TLS_NONE || a->tls_policy_maps != NULL) {
		switch (smtp_tls_ctx_new(a->set.tls_cafile, a->set.tls_level == SMTP_TLS_VERIFY, &ctx,
		                         err, sizeof(err))) {
		case SMTP_TLS_CTX_OK:
			break;
		case SMTP_TLS_CTX_NO_CA:
			log_warning("%s: server certificates will not be trusted", err);
			break;
		case SMTP_TLS_CTX_FAILED:
			log_warning("%s: disabling TLS support (smtp_tls_security_level = %s)", err,
			            smtp_tls_level_name(a->set.tls_level));
			break;
		}
	}
	smtp_tls_ctx_free(a->tls_ctx);
	a->tls_ctx = ctx;
}

/* ---- results ---- */

void
smtp_agent_result(struct smtp_job *job, size_t k, struct agent_result *r, int64_t delays_us[4])
{
	if (job->rcpts[k].done)
		panic("smtp: %s: recipient %u reported twice", job->j.queue_id, job->j.rcpts[k].index);
	job->rcpts[k].done = true;
	job->nleft--;
	for (int i = 0; i < 4; i++)
		r->delays[i] = delays_us[i];
	agent_link_result(job->agent->link, &job->j, k, r);
}

static void
smtp_agent_reap(struct ev_timer *t)
{
	struct smtp_agent *a = t->arg;
	struct smtp_job *job, *next;

	for (job = a->jobs; job != NULL; job = next) {
		next = job->next;
		if (!job->finished)
			continue;
		if (job->prev != NULL)
			job->prev->next = job->next;
		else
			a->jobs = job->next;
		if (job->next != NULL)
			job->next->prev = job->prev;
		a->njobs--;
		smtp_job_free(job);
	}
	if (a->stopping && a->njobs == 0)
		evloop_break(a->loop);
}

void
smtp_agent_job_finished(struct smtp_job *job)
{
	struct smtp_agent *a = job->agent;

	if (job->finished)
		return;
	job->finished = true;
	agent_link_done(a->link, &job->j);
	if (!evloop_timer_active(&a->reap))
		evloop_timer_start(a->loop, &a->reap, 0);
}

/* ---- qmgr (queue/agent_link.h) ---- */

static size_t
smtp_drop_jobs(struct smtp_agent *a)
{
	size_t n = a->njobs;

	while (a->jobs != NULL) {
		struct smtp_job *job = a->jobs;

		a->jobs = job->next;
		smtp_job_free(job);
	}
	a->njobs = 0;
	return n;
}

static size_t
smtp_qmgr_lost(void *arg)
{
	return smtp_drop_jobs(arg);
}

static void
smtp_qmgr_job(void *arg, struct agent_job *j)
{
	struct smtp_agent *a = arg;
	struct smtp_job *job = smtp_job_new(a, j);	/* takes j */

	job->next = a->jobs;
	if (a->jobs != NULL)
		a->jobs->prev = job;
	a->jobs = job;
	a->njobs++;
	smtp_job_start(job);
}

/* ---- the master ---- */

static void
smtp_stop(struct smtp_agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	/* Deliveries in flight are cut: their recipients have no result, so
	 * qmgr tries them again (a message in DATA may arrive twice). */
	for (struct smtp_job *job = a->jobs; job != NULL; job = job->next)
		if (job->client != NULL) {
			smtp_client_abort(job->client);
			job->client = NULL;
		}
	agent_link_stop(a->link);
	smtp_drop_jobs(a);
	evloop_break(a->loop);
}

static void
smtp_reload(struct smtp_agent *a)
{
	struct config *cfg = config_reload_load(a->cfg_path, a->control_fd);

	if (cfg == NULL)
		return;
	/* Jobs running keep their lookups; new ones use the new settings.
	 * The resolver is kept (dns_servers changes take a restart). */
	config_free(a->cfg);
	a->cfg = cfg;
	smtp_settings_load(&a->set, cfg, a->set.lmtp);
	resolver_set_dnssec(a->resolver, a->set.dnssec);
	smtp_agent_policy_setup(a);
	smtp_agent_tls_setup(a);
	smtp_agent_sasl_setup(a);
	config_reload_done(cfg, a->cfg_path, a->control_fd);
}

static void
smtp_control_frame(void *arg, struct frame_reader *r)
{
	struct smtp_agent *a = arg;
	uint64_t seconds;

	if (a->stopping)
		return;
	if (rolectl_command(r, &seconds) == FRAME_MASTER_RELOAD)
		smtp_reload(a);
	else
		smtp_stop(a);	/* DRAIN: deliveries in flight are cut (smtp_stop) */
}

static void
smtp_control_read(struct ev_io *io, unsigned revents)
{
	struct smtp_agent *a = io->arg;
	size_t nfds = 0;
	int fds[1];

	(void)revents;
	if (rolectl_read(a->control_fd, &a->control_in, fds, &nfds, 0, smtp_control_frame, a) < 0) {
		evloop_io_del(a->loop, &a->control_io);
		log_warning("master went away; stopping");
		smtp_stop(a);
	}
}

static void
smtp_signal(int signo, void *arg)
{
	(void)signo;
	smtp_stop(arg);
}

static int agent_main(const char *cfg_path, struct config *cfg, int control_fd, bool lmtp);

int
smtp_agent_main(const char *cfg_path, struct config *cfg, int control_fd)
{
	return agent_main(cfg_path, cfg, control_fd, false);
}

int
lmtp_agent_main(const char *cfg_path, struct config *cfg, int control_fd)
{
	return agent_main(cfg_path, cfg, control_fd, true);
}

static int
agent_main(const char *cfg_path, struct config *cfg, int control_fd, bool lmtp)
{
	struct smtp_agent *a = calloc(1, sizeof(*a));
	struct resolver_options ropt;
	uint64_t slots;
	char err[512];

	if (a == NULL)
		fatal("out of memory");
	signal(SIGPIPE, SIG_IGN);
	a->cfg_path = cfg_path;
	a->cfg = cfg;
	a->control_fd = control_fd;
	buf_init(&a->control_in, ROLECTL_IN_MAX);
	a->loop = evloop_new();
	if (a->loop == NULL)
		fatal("evloop: %s", strerror(errno));
	smtp_settings_load(&a->set, cfg, lmtp);
	smtp_agent_policy_setup(a);
	smtp_agent_tls_setup(a);
	smtp_agent_sasl_setup(a);
	slots = config_int(cfg, P_DEFAULT_PROCESS_LIMIT);
	snprintf(a->spool_dir, sizeof(a->spool_dir), "%s", config_str(cfg, P_QUEUE_DIRECTORY));
	a->link = agent_link_new(a->loop, a->spool_dir, lmtp ? "lmtp" : "smtp",
	                         slots == 0 ? 1 : slots > 10000 ? 10000 : (uint32_t)slots,
	                         smtp_qmgr_job, smtp_qmgr_lost, a);
	resolver_options_from_config(&ropt, cfg);
	ropt.dnssec = a->set.dnssec;
	a->resolver = resolver_new(a->loop, &ropt, err, sizeof(err));
	if (a->resolver == NULL)
		fatal("resolver: %s", err);
	evloop_timer_init(&a->reap, smtp_agent_reap, a);
	if (evloop_set_nonblock(control_fd) < 0 ||
	    evloop_io_add(a->loop, &a->control_io, control_fd, EV_READ, smtp_control_read, a) < 0)
		fatal("control socket: %s", strerror(errno));
	if (evloop_signal_add(a->loop, SIGTERM, smtp_signal, a) < 0 ||
	    evloop_signal_add(a->loop, SIGINT, smtp_signal, a) < 0)
		fatal("signals: %s", strerror(errno));
	rolectl_send(control_fd, FRAME_CHILD_READY, NULL, (uint64_t)getpid());
	agent_link_start(a->link);

	evloop_run(a->loop);

	rolectl_send(control_fd, FRAME_CHILD_DRAINED, NULL, 0);
	log_info("stopped");
	smtp_drop_jobs(a);
	smtp_client_close_all();
	agent_link_free(a->link);
	evloop_timer_stop(a->loop, &a->reap);
	resolver_free(a->resolver);
	smtp_tls_ctx_free(a->tls_ctx);
	map_list_close(a->sasl_maps);
	map_list_close(a->tls_policy_maps);
	evloop_io_del(a->loop, &a->control_io);
	evloop_free(a->loop);
	config_free(a->cfg);
	buf_free(&a->control_in);
	free(a);
	return 0;
}
