/*
 * local_mailbox: the mailbox delivery primitives of the local agent
 * (doc/local.md): Maildir, mbox (also used for "/file" alias targets), the
 * result type every local primitive returns, and the content filter that
 * turns a spool file into what a mailbox or a command gets.
 *
 * The input is a spool file (queue/spool.h): CR LF lines, not dot-stuffed,
 * read through an fd with pread() in LOCAL_IO_CHUNK pieces, never whole.
 * The output has LF line ends, as Postfix's local(8) writes it, headed by
 * Return-Path:, X-Original-To: (when known) and Delivered-To:.
 *
 * These functions run as the recipient, in a child forked for the
 * delivery (local_command.h, local_run_as()): they do no privilege
 * switching, keep no state between calls, never log and never exit. Every
 * outcome is a struct local_result. Out of memory is fatal().
 */
#ifndef TERN_LOCAL_MAILBOX_H
#define TERN_LOCAL_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define LOCAL_IO_CHUNK (64u * 1024)	/* bytes read from the spool file at once */
#define LOCAL_ERR_CLASS_MAX 32	/* = AGENT_CLASS_MAX */
#define LOCAL_ENH_MAX 16	/* = AGENT_ENH_MAX */
#define LOCAL_TEXT_MAX 512	/* one line for the log and the DSN */

/* mbox locking defaults: Postfix's deliver_lock_attempts, deliver_lock_delay. */
#define LOCAL_LOCK_ATTEMPTS 20
#define LOCAL_LOCK_DELAY_MS 1000
/* A PATH.lock whose change time is older than this is broken (Postfix's
 * stale_lock_time is 500 s; ours is the 300 s). */
#define LOCAL_STALE_LOCK_S 300

enum local_status {
	LOCAL_OK = 0,		/* delivered */
	LOCAL_TEMPFAIL = 1,	/* try again later */
	LOCAL_PERMFAIL = 2,	/* bounce */
};

struct local_result {
	enum local_status status;
	char err_class[LOCAL_ERR_CLASS_MAX];	/* "quota" (EDQUOT, ENOSPC, EFBIG), else "" */
	char enh[LOCAL_ENH_MAX];	/* "2.0.0", "4.2.0", "4.2.2", "5.2.0" ... */
	char text[LOCAL_TEXT_MAX];	/* Postfix's wording: "delivered to maildir" */
};

/* struct local_delivery.mbox_flags */
#define LOCAL_MBOX_FILE 0x01u	/* a "/file" alias or .forward target, not the
				 * user's mailbox: Postfix's file wording, no
				 * owner check, non-regular files (/dev/null)
				 * written without locks, executables refused */

/*
 * One delivery: the message's envelope and the account it goes to. Every
 * pointer is borrowed for the duration of the call. NULL and "" mean "not
 * known" for the optional strings.
 */
struct local_delivery {
	const char *sender;	/* envelope sender as stored, "" for <> */
	const char *recipient;	/* the final address: Delivered-To:, RECIPIENT */
	const char *original_recipient;	/* optional: X-Original-To:, ORIGINAL_RECIPIENT */
	int64_t arrival_us;	/* µs since the epoch: the mbox From_ line date */

	/* The account (command environment, mbox error text). */
	const char *user;	/* login name: LOGNAME, USER, "for user %s" */
	const char *home;	/* optional: HOME and the command's cwd */
	const char *shell;	/* optional: SHELL */
	const char *local;	/* optional: LOCAL, the recipient's local part */
	const char *extension;	/* optional: EXTENSION, the address extension */
	const char *domain;	/* optional: DOMAIN, the recipient's domain */

	/* Maildir: a number not reused by this process for another delivery
	 * within the same microsecond (a per-process delivery counter); it is
	 * the Q part of the unique name. */
	uint64_t maildir_seq;

	/* mbox: LOCAL_MBOX_* and locking (0 = the LOCAL_* default). */
	unsigned mbox_flags;
	unsigned lock_attempts;
	unsigned lock_delay_ms;
	unsigned stale_lock_s;
};

/*
 * Deliver to the Maildir at maildir_path (ending in "/"; one is added when
 * missing). tmp/, new/, cur/ and the Maildir itself (parents too) are
 * created 0700 when missing. The message is written to tmp/NAME with
 * O_EXCL, fsync'd, linked to new/NAME,S=SIZE and new/ is fsync'd; a file
 * in new/ is always complete. NAME is TIME.M<usec>P<pid>Q<seq>.HOST
 * (cr.yp.to/proto/maildir.html, Dovecot's S= size of the file as written).
 *
 * Results: OK 2.0.0 "delivered to maildir". Every failure is temporary
 * and its text starts "maildir delivery failed: ": quota class 4.2.2
 * (EDQUOT, ENOSPC, EFBIG); 4.2.0 creating or linking the file; 4.3.0
 * reading the message or writing, syncing the file or new/.
 */
enum local_status local_maildir_deliver(int msgfd, const struct local_delivery *d,
                                        const char *maildir_path, struct local_result *out);

/*
 * Append to the mbox file at mbox_path: a From_ line ("From SENDER  DATE",
 * MAILER-DAEMON for <>, DATE as asctime() of arrival_us in local time),
 * the headers, the message with ">From " quoting of lines that begin with
 * "From ", and a blank line. The file is created 0600 when missing and
 * opened without following symlinks; it must have one hard link. A regular
 * file is dot-locked (PATH.lock, stale locks broken; skipped when the
 * directory is not writable: EACCES, EPERM, EROFS) and fcntl-locked, both
 * retried lock_attempts times lock_delay_ms apart; on any failure it is
 * truncated back to its size before, it is fsync'd before the locks go.
 *
 * Results: OK 2.0.0 "delivered to mailbox" ("delivered to file: PATH").
 * Failure texts start "cannot update mailbox PATH for user USER. "
 * ("cannot append message to file PATH: "). PERMFAIL 5.2.0: a symlink, a
 * directory, not a regular file (mailbox only), more than one hard link;
 * 5.7.1: an executable file (LOCAL_MBOX_FILE). TEMPFAIL: the mailbox is
 * not owned by the euid (4.2.0, as Postfix's strict_mailbox_ownership), a
 * lock held by someone else (4.2.0), quota class 4.2.2, other
 * open/lock errors 4.2.0, read/write/sync errors 4.3.0.
 */
enum local_status local_mbox_deliver(int msgfd, const struct local_delivery *d,
                                     const char *mbox_path, struct local_result *out);

/* ---- shared by the local primitives ---- */

/* Fill r. text is formatted (cut at LOCAL_TEXT_MAX); err_class may be NULL. */
void local_result_set(struct local_result *r, enum local_status status, const char *err_class,
                      const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/*
 * A temporary failure from errno err: quota class 4.2.2 for EDQUOT, ENOSPC
 * and EFBIG, 4.2.0 for EAGAIN and ESTALE, def_enh otherwise. The text is
 * fmt followed by ": strerror(err)".
 */
void local_result_errno(struct local_result *r, int err, const char *def_enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Put formatted text in front of r->text. */
void local_result_prepend(struct local_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* local_mailbox_headers() flags */
#define LOCAL_HEADERS_FROM_LINE 0x01u	/* the mbox From_ line first */

/*
 * Append what goes before the message: [From_ line,] Return-Path: <SENDER>,
 * X-Original-To: (when d->original_recipient is set), Delivered-To:, each
 * ending in LF. CR and LF inside the values become spaces. BUF_TOO_BIG
 * when it does not fit (then out is as it was).
 */
enum buf_result local_mailbox_headers(const struct local_delivery *d, unsigned flags,
                                      struct buf *out);

/* struct local_filter flags */
#define LOCAL_FILTER_QUOTE_FROM 0x01u	/* ">From " for lines beginning "From " */

/* Most bytes local_mailbox_filter_feed() needs to make progress, and
 * local_mailbox_filter_finish() appends. */
#define LOCAL_FILTER_STEP_MAX 8

/*
 * The content filter: CR LF (and a bare LF, which smtpd never stores)
 * ends a line and becomes LF; a bare CR stays as it is; with
 * LOCAL_FILTER_QUOTE_FROM a line that begins with "From " gets a ">"
 * (Postfix quotes nothing else: "From:" and ">From " stay); an incomplete
 * last line gets an LF. Streaming: input in any pieces, the state carries
 * over. Pure, no I/O.
 */
struct local_filter {
	unsigned flags;		/* LOCAL_FILTER_* */
	unsigned held;		/* private: bytes of "From " held at a line start */
	bool cr;		/* private: a CR held, waiting for its LF */
	bool bol;		/* private: at the beginning of a line */
	uint64_t in;		/* bytes taken */
};

void local_mailbox_filter_init(struct local_filter *f, unsigned flags);
/*
 * Filter up to len bytes into out. Returns how many were taken; fewer than
 * len only when out has less than LOCAL_FILTER_STEP_MAX bytes of room
 * (drain it and feed the rest).
 */
size_t local_mailbox_filter_feed(struct local_filter *f, const char *in, size_t len,
                                 struct buf *out);
/* End of input: the held bytes and a final LF. BUF_TOO_BIG (nothing
 * appended) when out has less than LOCAL_FILTER_STEP_MAX bytes of room. */
enum buf_result local_mailbox_filter_finish(struct local_filter *f, struct buf *out);

#endif
