/*
 * ternctl_queue: `ternctl queue ...`: the listing (tools/qlist.c), `show`
 * (one message: envelope, recipients' states, headers and body), and the
 * verbs qmgr carries out (flush, hold, release, delete, requeue).
 */
#ifndef TERN_TERNCTL_QUEUE_H
#define TERN_TERNCTL_QUEUE_H

/* argv[0] is the first word after "queue" (argc may be 0); returns the
 * exit status. */
int ternctl_queue(const char *conf, int argc, char **argv);

#endif
