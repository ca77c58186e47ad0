/*
 * smtpd_content: header_checks, mime_header_checks, nested_header_checks
 * and body_checks, applied to a message's content as it streams from the
 * DATA/BDAT decoder to the message file, the way Postfix's cleanup(8)
 * applies them (doc/content_checks.md):
 *
 *   - a header is looked up whole: its folded continuation lines joined,
 *     line breaks kept as "\n", at most header_size_limit bytes (the
 *     excess is dropped from the message, as Postfix does);
 *   - primary headers go to header_checks, MIME headers (Content-*,
 *     MIME-Version) anywhere and every header of a multipart body part to
 *     mime_header_checks, the non-MIME headers of an attached
 *     message/rfc822 to nested_header_checks;
 *   - body lines (boundary lines included) go to body_checks one at a
 *     time, a line longer than SMTPD_CONTENT_LINE_MAX in pieces of that
 *     size, the first body_checks_size_limit bytes of each body part.
 *
 * Streaming: a header is held back until the next line shows it is
 * complete (bounded by header_size_limit), a body line until its LF (at
 * most SMTPD_CONTENT_LINE_MAX bytes): then the action decides what is
 * written -- the bytes as received, nothing (IGNORE), other text
 * (REPLACE), or more text before them (PREPEND). Everything else goes
 * through unchanged, byte for byte.
 *
 * Actions (header_checks(5)): REJECT, DISCARD, HOLD, WARN, INFO, IGNORE,
 * PREPEND, REPLACE, REDIRECT, FILTER, BCC, DUNNO, OK. After REJECT,
 * DISCARD or REDIRECT no further checks are made (as Postfix). What the
 * message-level actions decided is collected in struct
 * smtpd_content_result for the session to apply at the end of data.
 *
 * Pure apart from its hooks: bytes go out through write, one log line per
 * action through log. Out of memory is fatal().
 */
#ifndef TERN_SMTPD_CONTENT_H
#define TERN_SMTPD_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/map.h"
#include "smtpd/smtpd_actions.h"

/* Longest piece of a body line looked at once: Postfix's line_length_limit. */
#define SMTPD_CONTENT_LINE_MAX 2048
/* Deepest multipart nesting followed (Postfix's mime_nesting_limit). */
#define SMTPD_CONTENT_MIME_DEPTH_MAX 100
/* Longest boundary parameter followed (RFC 2046 section 5.1.1 allows 70). */
#define SMTPD_CONTENT_BOUNDARY_MAX 200
/* Longest REJECT text kept for the reply. */
#define SMTPD_CONTENT_TEXT_MAX 400

enum smtpd_content_class {
	SMTPD_CONTENT_HEADER,	/* header_checks */
	SMTPD_CONTENT_MIME,	/* mime_header_checks */
	SMTPD_CONTENT_NESTED,	/* nested_header_checks */
	SMTPD_CONTENT_BODY,	/* body_checks */
	SMTPD_CONTENT_CLASSES,
};

/* What the checks decided for the whole message. */
struct smtpd_content_result {
	/* REJECT (code 550, or 451 for a 4.x.x text) or a map that could not
	 * be read (451 4.3.0): the message must not be queued. */
	int code;		/* 0: not refused */
	char enh[16];
	char text[SMTPD_CONTENT_TEXT_MAX];
	bool discard;		/* DISCARD */
	bool hold;		/* HOLD */
	struct smtpd_actions actions;	/* FILTER, REDIRECT, BCC: "" when none */
};

struct smtpd_content_hooks {
	/* Content to store, in order. */
	void (*write)(void *arg, const char *p, size_t n);
	/* One action: action "reject", "warning", "info", "hold", ...;
	 * where "header" or "body"; content the header or line (may hold
	 * "\n"); text the action's text ("" when none). */
	void (*log)(void *arg, const char *action, const char *where, const char *content,
	            const char *text);
	/* A problem with a map's answer ("unknown command in ..."). */
	void (*warn)(void *arg, const char *text);
	void *arg;
};

struct smtpd_content;

/*
 * A checker for one message. lists[class] (borrowed, may be NULL or empty)
 * are the maps; names[class] their parameter names for messages
 * ("header_checks"). header_max: header_size_limit; body_max:
 * body_checks_size_limit.
 */
struct smtpd_content *smtpd_content_new(struct map_list *const lists[SMTPD_CONTENT_CLASSES],
                                        const char *const names[SMTPD_CONTENT_CLASSES],
                                        size_t header_max, size_t body_max,
                                        const struct smtpd_content_hooks *hooks);
void smtpd_content_free(struct smtpd_content *c);

/* The next n bytes of the message (lines end in CR LF or LF). */
void smtpd_content_feed(struct smtpd_content *c, const char *p, size_t n);
/* The end of the message: what is held back is checked and written. */
void smtpd_content_finish(struct smtpd_content *c);
/* Valid until smtpd_content_free(). */
const struct smtpd_content_result *smtpd_content_result(const struct smtpd_content *c);

/* ---- the maps of every listener, loaded at role start and reload ---- */

struct smtpd_content_maps;

/* Open the four lists for every listener (an empty list opens nothing).
 * NULL with one line per problem in diag. */
struct smtpd_content_maps *smtpd_content_maps_new(const struct config *cfg, struct buf *diag);
/* A reference for a message in progress; released by _unref. */
struct smtpd_content_maps *smtpd_content_maps_ref(struct smtpd_content_maps *m);
void smtpd_content_maps_unref(struct smtpd_content_maps *m);
/* Does listener l check anything? */
bool smtpd_content_maps_active(const struct smtpd_content_maps *m, enum config_listener l);
/* The lists of listener l, for smtpd_content_new(); borrowed from m. */
struct map_list *const *smtpd_content_maps_lists(const struct smtpd_content_maps *m,
                                                 enum config_listener l);
/* The parameter names of the classes ("header_checks", ...). */
const char *const *smtpd_content_names(void);

/* ternd -n and start: open every list once; "FILE:LINE: ..." lines in
 * errors. 0, or -1. */
int smtpd_content_config_check(const struct config *cfg, struct buf *errors);

#endif
