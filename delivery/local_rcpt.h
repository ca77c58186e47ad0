/*
 * local_rcpt: what a recipient of the local transport means, as Postfix's
 * local(8) reads it (doc/local.md, "The local agent"): the user and the
 * address extension, the mailbox path and kind, the group a delivery into
 * the mail spool directory runs with, the original recipient for
 * X-Original-To:.
 *
 * Pure: no I/O, no password database, no logging. Every function takes
 * its input as strings and writes into caller-owned buffers.
 */
#ifndef TERN_LOCAL_RCPT_H
#define TERN_LOCAL_RCPT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "queue/agent_proto.h"

/* Each part of a recipient fits: the address itself is at most this long. */
#define LOCAL_RCPT_PART_MAX AGENT_ADDR_MAX

struct local_rcpt {
	char local[LOCAL_RCPT_PART_MAX];	/* the local part: unquoted, lower case */
	char user[LOCAL_RCPT_PART_MAX];	/* local without the extension: the account */
	char extension[LOCAL_RCPT_PART_MAX];	/* after the delimiter, "" for none */
	char domain[LOCAL_RCPT_PART_MAX];	/* lower case, "" for none */
};

/*
 * Split addr (as stored in the envelope: "User+Ext@Example.ORG", or
 * "\"john doe\"@example.org") as Postfix's local(8) does: the whole address
 * is lower-cased, the domain is after the last '@' (none without one), the
 * local part loses its quotes and backslashes (Postfix's internal form, as
 * the address resolver reads it), and the extension is split off at the
 * first character of delimiters (recipient_delimiter) by Postfix's rules
 * (config/addr_resolve.h, addr_split_extension(): not for postmaster,
 * mailer-daemon, double_bounce, owner-* and *-request with '-', nor an
 * empty user). An extension holding '/' is dropped (Postfix: "address
 * with illegal extension"). double_bounce may be NULL ("double-bounce").
 *
 * Returns 0, or -1 when a part does not fit (addr longer than
 * LOCAL_RCPT_PART_MAX - 1 bytes).
 */
int local_rcpt_parse(const char *addr, const char *delimiters, const char *double_bounce,
                     struct local_rcpt *out);

/*
 * A user name that may name a file in the mail spool directory: not
 * empty, not "." or "..", no '/'. (Names come from the password database,
 * but a path is built from them, by root's choice of user.)
 */
bool local_rcpt_user_safe(const char *user);

/*
 * The mailbox of user, as Postfix's local(8) chooses it:
 *   home_mailbox set:  HOME/home_mailbox, a Maildir when it ends in '/';
 *   otherwise:         mail_spool_directory ending in '/': SPOOL/USER/, a
 *                      Maildir; else SPOOL/USER, an mbox file.
 * *maildir tells which; *in_spool is true for the mail spool directory
 * (its group may decide the delivery's gid: local_rcpt_spool_gid()).
 * Returns 0, or -1 when the path does not fit pathsz or a part it needs
 * is empty (no home directory with home_mailbox, no spool directory).
 */
int local_rcpt_mailbox(const char *home_mailbox, const char *home, const char *spool_dir,
                       const char *user, char *path, size_t pathsz, bool *maildir,
                       bool *in_spool);

/*
 * The gid a delivery into the mail spool directory runs with (Postfix's
 * deliver_mailbox_file()): the user's when the directory is
 * world-writable; the directory's group when it is group-writable (e.g.
 * /var/mail, root:mail 2775), unless that group is root; the user's
 * otherwise (Postfix delivers as root and chowns there; we never do).
 */
gid_t local_rcpt_spool_gid(mode_t spool_mode, gid_t spool_gid, gid_t user_gid);

/*
 * The address of an ORCPT as stored ("rfc822;bob@example.org", xtext
 * already decoded), for X-Original-To: the part after "rfc822;" or
 * "utf-8;" (any case), or NULL for another type, no ';', or an empty
 * address. orcpt may be NULL. Borrows orcpt.
 */
const char *local_rcpt_orcpt_addr(const char *orcpt);

#endif
