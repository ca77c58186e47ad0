/*
 * smtpd_session: one SMTP conversation, from the greeting to the close.
 * The session owns its socket, buffers, transaction and spool message; one
 * function (smtpd_session_free) frees all of it.
 *
 * The protocol is an explicit state machine: each command is first
 * checked against the table of states in which it is legal (503 5.5.1
 * otherwise), its syntax is checked, and only then does it act.
 */
#ifndef TERN_SMTPD_SESSION_H
#define TERN_SMTPD_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config/config.h"

struct smtpd_server;
struct smtpd_session;

/* Start a session on an accepted socket (adopted). NULL only when the
 * socket cannot be watched (then it is closed). */
struct smtpd_session *smtpd_session_start(struct smtpd_server *srv, int fd,
                                          enum config_listener listener,
                                          const struct sockaddr *peer, socklen_t peerlen,
                                          const struct sockaddr *local, socklen_t locallen);

/* Begin a graceful stop: idle sessions get 421 4.3.2 and close now;
 * sessions inside a transaction finish it and close after its reply. */
void smtpd_session_drain(struct smtpd_session *s);
/* Close now (drain timeout passed): 421 if possible, then free. */
void smtpd_session_abort(struct smtpd_session *s);

#endif
