/*
 * master_listen: the listening sockets, bound by the master (port 25 needs
 * root) and handed to the smtpd role: the TCP listeners, and the local
 * submission socket of the sendmail command, queue_directory/public/sendmail
 * (mode 0666 in a directory of mode 0711: anyone may connect by name;
 * smtpd learns who with SO_PEERCRED; doc/sendmail.md).
 */
#ifndef TERN_MASTER_LISTEN_H
#define TERN_MASTER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define MASTER_LISTENERS_MAX 32
/* Pending connections the kernel queues per listener. */
#define MASTER_LISTEN_BACKLOG 4096
/* A listener's name: "unix:" and a path that fits sun_path (108). */
#define MASTER_LISTEN_NAME_MAX 128
/* The local submission socket, below queue_directory. */
#define MASTER_SENDMAIL_SOCKET "public/sendmail"

struct master_listeners {
	size_t n;
	int fd[MASTER_LISTENERS_MAX];
	enum config_listener listener[MASTER_LISTENERS_MAX];
	/* "127.0.0.1:25", or "unix:/var/spool/tern/public/sendmail" */
	char name[MASTER_LISTENERS_MAX][MASTER_LISTEN_NAME_MAX];
};

/* Bind every address of smtpd_listen, submission_listen, smtps_listen, reinject_listen,
 * and the sendmail socket.
 * 0, or -1 with "bind 127.0.0.1:25: Address already in use" in err. */
int master_listeners_open(struct master_listeners *ls, const struct config *cfg, char *err,
                          size_t errsz);
void master_listeners_close(struct master_listeners *ls);
/*
 * Make ls what cfg asks for: sockets whose address stays are kept (an
 * address cannot be bound twice), new ones are bound, dropped ones closed.
 * All or nothing: on failure ls is unchanged and err says why.
 */
int master_listeners_rebind(struct master_listeners *ls, const struct config *cfg, char *err,
                            size_t errsz);
/* Would cfg bind exactly these addresses? */
bool master_listeners_same(const struct master_listeners *ls, const struct config *cfg);

#endif
