/*
 * smtpd_server: what all sessions of the listener role share: the event
 * loop, the configuration in force, the spool handle, the list of
 * sessions and counters. Owned by smtpd.c; sessions borrow it.
 */
#ifndef TERN_SMTPD_SERVER_H
#define TERN_SMTPD_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/evloop.h"
#include "config/addr_resolve.h"
#include "config/config.h"

struct spool;
struct smtpd_restrict;
struct smtpd_auth_set;
struct smtpd_session;
struct smtpd_tls_server;
struct smtpd_anvil;
struct smtpd_content_maps;

struct smtpd_server {
	struct evloop *loop;
	struct config *cfg;		/* the configuration in force */
	struct spool *spool;
	struct smtpd_notify *notify;	/* to qmgr; NULL in unit tests */
	/* Recipient resolution and expansion (config/addr_resolve.h): the
	 * RCPT-time "User unknown" check, virtual_alias_maps and alias_maps.
	 * NULL in unit tests: recipients are then taken as given. */
	struct addr_resolver *addr;
	/* The restriction lists, their maps, policy clients and resolver
	 * (smtpd/smtpd_restrict.h); NULL: no restrictions at all. */
	struct smtpd_restrict *rules;
	/* SMTP AUTH back ends per listener (smtpd_auth.h); NULL when no
	 * listener enables AUTH. */
	struct smtpd_auth_set *auth;
	/* header_checks, body_checks ... per listener (smtpd_content.h);
	 * NULL in unit tests. A message in progress holds a reference. */
	struct smtpd_content_maps *content;
	/* TLS contexts per listener, made from the key material the master
	 * sent (smtpd/smtpd_tls.h). NULL: no TLS (unit tests, or no
	 * certificate anywhere). */
	struct smtpd_tls_server *tls;
	/* Client and SASL-login counts and rates (smtpd_anvil.h); kept
	 * across reloads. NULL (unit tests): no limits. */
	struct smtpd_anvil *anvil;
	char hostname[256];		/* myhostname, for replies and Received */
	size_t nsessions;
	struct smtpd_session *sessions;	/* list of live sessions (for drain) */
	bool draining;
};

/* Link/unlink a session in the server's list (smtpd_session.c calls these). */
void smtpd_server_session_added(struct smtpd_server *srv, struct smtpd_session *s);
void smtpd_server_session_removed(struct smtpd_server *srv, struct smtpd_session *s);

#endif
