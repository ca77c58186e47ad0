/*
 * smtpd: the listener role. One event-driven process serves every
 * listener (smtp, submission, smtps) and owns every SMTP session. It
 * writes accepted messages to the spool and answers 250 only once the
 * spool says the message is durable.
 *
 * Error policy: a session's trouble (peer garbage, timeouts, I/O errors)
 * closes that session only; spool trouble becomes a 4xx reply; a broken
 * frame from the master is a bug (panic).
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include "config/config.h"

/* A listening socket handed over by the master. */
struct smtpd_listen_fd {
	int fd;
	enum config_listener listener;
};

/*
 * Run the listener role until it is drained or the master goes away.
 * cfg_path is the configuration file (NULL: development defaults), cfg the
 * loaded configuration (adopted: freed by smtpd), control_fd the socketpair
 * to the master. Returns the process exit status.
 */
int smtpd_main(const char *cfg_path, struct config *cfg, int control_fd,
               const struct smtpd_listen_fd *fds, size_t nfds);

#endif
