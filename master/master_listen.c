/*
 * master_listen: socket(), bind(), listen() for each configured address.
 * Owns the listening descriptors until master_listeners_close().
 */
#include "master/master_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fconn.h"

static const struct {
	enum config_param param;
	enum config_listener listener;
} master_listen_params[] = {
	{ P_SMTPD_LISTEN, CONFIG_LISTENER_SMTP },
	{ P_SUBMISSION_LISTEN, CONFIG_LISTENER_SUBMISSION },
	{ P_SMTPS_LISTEN, CONFIG_LISTENER_SMTPS },
	{ P_REINJECT_LISTEN, CONFIG_LISTENER_REINJECT },
};

static int
master_listen_one(const struct config_listen_addr *a, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, a->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->port);
		len = sizeof(*s6);
	} else {
		snprintf(err, errsz, "listen address %s: not an IP address", a->host);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* [::]:25 and 0.0.0.0:25 are separate listeners, as configured. */
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		snprintf(err, errsz, "bind %s%s%s:%u: %s", ss.ss_family == AF_INET6 ? "[" : "",
		    a->host, ss.ss_family == AF_INET6 ? "]" : "", a->port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* "unix:QUEUE_DIRECTORY/public/sendmail"; -1 when the path does not fit. */
static int
master_sendmail_name(const struct config *cfg, char *name, size_t namesz)
{
	int n = snprintf(name, namesz, "unix:%s/%s", config_str(cfg, P_QUEUE_DIRECTORY),
	                 MASTER_SENDMAIL_SOCKET);

	return n < 0 || (size_t)n >= namesz ? -1 : 0;
}

/*
 * The local submission socket. Mode 0666: any local user may submit mail
 * (as with Postfix's sendmail, which any user may run); who it was is not
 * taken from the client but from SO_PEERCRED in smtpd.
 */
static int
master_listen_sendmail(const char *name, char *err, size_t errsz)
{
	const char *path = name + strlen("unix:");
	int fd;

	fd = fconn_listen_unix(path, 0666, MASTER_LISTEN_BACKLOG);
	if (fd < 0)
		snprintf(err, errsz, "bind %s: %s", name, strerror(errno));
	return fd;
}

/* Append the sendmail socket to ls (kept from old when it has the same
 * path, else bound now; *fresh says which). 0 or -1 with err. */
static int
master_listeners_add_sendmail(struct master_listeners *ls, const struct master_listeners *old,
    const struct config *cfg, bool *fresh, char *err, size_t errsz)
{
	char name[MASTER_LISTEN_NAME_MAX];
	int fd = -1;

	*fresh = false;
	if (master_sendmail_name(cfg, name, sizeof(name)) < 0) {
		snprintf(err, errsz, "queue_directory too long for the sendmail socket");
		return -1;
	}
	if (ls->n == MASTER_LISTENERS_MAX) {
		snprintf(err, errsz, "more than %d listen addresses", MASTER_LISTENERS_MAX);
		return -1;
	}
	for (size_t i = 0; old != NULL && i < old->n; i++)
		if (old->listener[i] == CONFIG_LISTENER_SENDMAIL && strcmp(old->name[i], name) == 0)
			fd = old->fd[i];
	if (fd < 0) {
		fd = master_listen_sendmail(name, err, errsz);
		if (fd < 0)
			return -1;
		*fresh = true;
	}
	ls->fd[ls->n] = fd;
	ls->listener[ls->n] = CONFIG_LISTENER_SENDMAIL;
	snprintf(ls->name[ls->n], sizeof(ls->name[0]), "%s", name);
	ls->n++;
	return 0;
}

int
master_listeners_open(struct master_listeners *ls, const struct config *cfg, char *err,
    size_t errsz)
{
	const struct config_listen_addr *addrs;
	size_t i, j, n;
	bool fresh;
	int fd;

	memset(ls, 0, sizeof(*ls));
	for (i = 0; i < sizeof(master_listen_params) / sizeof(master_listen_params[0]); i++) {
		addrs = config_listen(cfg, master_listen_params[i].param, &n);
		for (j = 0; j < n; j++) {
			if (ls->n == MASTER_LISTENERS_MAX) {
				snprintf(err, errsz, "more than %d listen addresses", MASTER_LISTENERS_MAX);
				master_listeners_close(ls);
				return -1;
			}
			fd = master_listen_one(&addrs[j], err, errsz);
			if (fd < 0) {
				master_listeners_close(ls);
				return -1;
			}
			ls->fd[ls->n] = fd;
			ls->listener[ls->n] = master_listen_params[i].listener;
			snprintf(ls->name[ls->n], sizeof(ls->name[0]), "%s:%u", addrs[j].host, addrs[j].port);
			ls->n++;
		}
	}
	if (master_listeners_add_sendmail(ls, NULL, cfg, &fresh, err, errsz) < 0) {
		master_listeners_close(ls);
		return -1;
	}
	return 0;
}

static int
master_listeners_find(const struct master_listeners *ls, const char *name,
    enum config_listener listener)
{
	for (size_t i = 0; i < ls->n; i++)
		if (ls->listener[i] == listener && strcmp(ls->name[i], name) == 0)
			return (int)i;
	return -1;
}

int
master_listeners_rebind(struct master_listeners *ls, const struct config *cfg, char *err,
    size_t errsz)
{
	const struct config_listen_addr *addrs;
	struct master_listeners next;
	bool kept[MASTER_LISTENERS_MAX] = { false }, fresh[MASTER_LISTENERS_MAX] = { false };
	char name[MASTER_LISTEN_NAME_MAX];
	size_t i, j, n;
	int k, fd;

	memset(&next, 0, sizeof(next));
	for (i = 0; i < sizeof(master_listen_params) / sizeof(master_listen_params[0]); i++) {
		addrs = config_listen(cfg, master_listen_params[i].param, &n);
		for (j = 0; j < n; j++) {
			snprintf(name, sizeof(name), "%s:%u", addrs[j].host, addrs[j].port);
			if (next.n == MASTER_LISTENERS_MAX) {
				snprintf(err, errsz, "more than %d listen addresses", MASTER_LISTENERS_MAX);
				goto fail;
			}
			k = master_listeners_find(ls, name, master_listen_params[i].listener);
			if (k >= 0) {
				fd = ls->fd[k];
				kept[k] = true;
			} else {
				fd = master_listen_one(&addrs[j], err, errsz);
				if (fd < 0)
					goto fail;
				fresh[next.n] = true;
			}
			next.fd[next.n] = fd;
			next.listener[next.n] = master_listen_params[i].listener;
			snprintf(next.name[next.n], sizeof(next.name[0]), "%s", name);
			next.n++;
		}
	}
	if (master_listeners_add_sendmail(&next, ls, cfg, &fresh[next.n], err, errsz) < 0)
		goto fail;
	for (i = 0; i < ls->n; i++)
		if (ls->listener[i] == CONFIG_LISTENER_SENDMAIL && !fresh[next.n - 1] &&
		    ls->fd[i] == next.fd[next.n - 1])
			kept[i] = true;
	for (i = 0; i < ls->n; i++)
		if (!kept[i])
			close(ls->fd[i]);
	*ls = next;
	return 0;
fail:
	for (i = 0; i < next.n; i++)
		if (fresh[i])
			close(next.fd[i]);
	return -1;
}

void
master_listeners_close(struct master_listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		close(ls->fd[i]);
	ls->n = 0;
}

bool
master_listeners_same(const struct master_listeners *ls, const struct config *cfg)
{
	const struct config_listen_addr *addrs;
	char name[MASTER_LISTEN_NAME_MAX];
	size_t i, j, n, k = 0;

	for (i = 0; i < sizeof(master_listen_params) / sizeof(master_listen_params[0]); i++) {
		addrs = config_listen(cfg, master_listen_params[i].param, &n);
		for (j = 0; j < n; j++, k++) {
			snprintf(name, sizeof(name), "%s:%u", addrs[j].host, addrs[j].port);
			if (k >= ls->n || strcmp(name, ls->name[k]) != 0 ||
			    ls->listener[k] != master_listen_params[i].listener)
				return false;
		}
	}
	if (master_sendmail_name(cfg, name, sizeof(name)) < 0 || k >= ls->n ||
	    ls->listener[k] != CONFIG_LISTENER_SENDMAIL || strcmp(name, ls->name[k]) != 0)
		return false;
	return k + 1 == ls->n;
}
