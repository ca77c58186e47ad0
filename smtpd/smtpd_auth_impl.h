/*
 * What smtpd_auth.c shares with its back ends (smtpd_auth_cyrus.c,
 * smtpd_auth_dovecot.c). Private to those files and their unit tests.
 *
 * A back end answers a start or step exactly once, with
 * smtpd_auth_finish() from the event loop (a socket or a worker's
 * notification became ready) or smtpd_auth_post() from inside start/step
 * (the answer was known at once). After forget() it answers nothing.
 */
#ifndef TERN_SMTPD_AUTH_IMPL_H
#define TERN_SMTPD_AUTH_IMPL_H

#include <netinet/in.h>

#include "smtpd/smtpd_auth.h"

struct smtpd_auth_ops {
	const char *name;	/* "cyrus", "dovecot" */
	const char *(*mechs)(struct smtpd_auth_backend *b);
	void (*start)(struct smtpd_auth *a, const char *mech, const char *initial);
	void (*step)(struct smtpd_auth *a, const char *response);
	/* Drop a's back-end state (a->impl); a may be waiting for an answer. */
	void (*forget)(struct smtpd_auth *a);
	void (*free)(struct smtpd_auth_backend *b);
};

struct smtpd_auth_backend {
	const struct smtpd_auth_ops *ops;
	struct evloop *loop;
	/* The set holds one reference, each live exchange one: a back end a
	 * reload replaced lives on until its last exchange ends. */
	unsigned refs;
	char setting[2 * 4096 + 2];	/* "path|confpath": to spot a change */
	int64_t timeout_ms;	/* SMTPD_AUTH_TIMEOUT_MS; unit tests shorten it */
};

struct smtpd_auth {
	struct smtpd_auth_backend *b;
	smtpd_auth_done_fn *cb;
	void *arg;
	struct ev_timer timer;	/* the step's time limit, or a posted answer */
	bool waiting;		/* a start or step is out */
	bool posted;		/* the answer below waits for the timer */
	char client_addr[INET6_ADDRSTRLEN];
	unsigned client_port;
	char server_addr[INET6_ADDRSTRLEN];
	unsigned server_port;
	bool tls;
	char mech[SMTPD_AUTH_MECH_MAX + 1];
	/* The answer being delivered. */
	enum smtpd_auth_status status;
	char challenge[SMTPD_AUTH_DATA_MAX + 1];
	char username[SMTPD_AUTH_USERNAME_MAX + 1];
	char reason[SMTPD_AUTH_REASON_MAX + 1];
	void *impl;		/* the back end's per-exchange state */
};

/* Common initialisation of a back end's header (refs = 1). */
void smtpd_auth_backend_init(struct smtpd_auth_backend *b, const struct smtpd_auth_ops *ops,
                             struct evloop *loop, const char *setting);

/*
 * Answer the pending start/step of a: CONTINUE with text the base64
 * challenge, OK with the username, FAIL/TEMPFAIL with the reason (NULL
 * for none). The text is checked here: a challenge that is not base64
 * or too long, an empty or over-long username become a TEMPFAIL (our
 * back end misbehaved). finish calls the callback now; post from the
 * next loop turn.
 */
void smtpd_auth_finish(struct smtpd_auth *a, enum smtpd_auth_status st, const char *text,
                       size_t len);
void smtpd_auth_post(struct smtpd_auth *a, enum smtpd_auth_status st, const char *text,
                     size_t len);

/* The back ends. NULL with err when they cannot start. */
struct smtpd_auth_backend *smtpd_auth_cyrus_new(struct evloop *loop, const char *app,
                                                const char *confpath, const char *setting,
                                                char *err, size_t errsz);
struct smtpd_auth_backend *smtpd_auth_dovecot_new(struct evloop *loop, const char *socket_path,
                                                  const char *setting, char *err, size_t errsz);

/* Drop one reference (the set's or an exchange's); frees at zero. */
void smtpd_auth_backend_unref(struct smtpd_auth_backend *b);

#endif
