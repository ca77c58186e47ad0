/*
 * ternctl_master: `ternctl reload` and `ternctl stop`: SIGHUP or SIGTERM
 * to the running master (found with tools/masterpid.h), as `postfix
 * reload` and `postfix stop` do. Root only (the master runs as root);
 * doc/ternctl.md says why there is no control socket.
 */
#ifndef TERN_TERNCTL_MASTER_H
#define TERN_TERNCTL_MASTER_H

/* verb is "reload" or "stop"; returns the exit status. */
int ternctl_master(const char *conf, const char *verb, int argc, char **argv);

#endif
