/*
 * smtpd_notify: tells qmgr "a new message is committed" (FRAME_QUEUE_NEW
 * over queue_directory/private/qmgr), so new mail is tried at once.
 *
 * Best effort by design: when qmgr is not there (restarting) or its
 * connection is backed up, the notice is dropped and qmgr's periodic scan
 * (queue_run_delay) finds the message. Nothing here can delay a reply to
 * a client: connecting is non-blocking and retried at most once a second.
 */
#ifndef TERN_SMTPD_NOTIFY_H
#define TERN_SMTPD_NOTIFY_H

#include "common/evloop.h"

struct smtpd_notify;

struct smtpd_notify *smtpd_notify_new(struct evloop *loop, const char *queue_directory);
/* NULL is fine (tests run sessions without a qmgr). */
void smtpd_notify_send(struct smtpd_notify *n, const char *queue_id);
void smtpd_notify_free(struct smtpd_notify *n);

#endif
