/*
 * smtpd_anvil: the table behind Postfix's anvil(8) limits, kept inside
 * smtpd. tern runs one smtpd process that holds every session, so the
 * counts live where the sessions are: no separate daemon, no round trip
 * per event (doc/anvil.md says why).
 *
 * Two kinds of keys share the table: a client (listener, address), as
 * Postfix's anvil keys "service:address", and an authenticated SASL login
 * (tern's own limits), counted across every client address and listener.
 * Logins are compared without regard to ASCII case.
 *
 * Counting is Postfix's: each entry has one fixed window, opened by its
 * first event and lasting anvil_rate_time_unit; an event after the window
 * opens a new one with every rate at zero. A rate includes the event
 * being counted, so "rate > limit" refuses the (limit+1)th. The
 * connection count is the number of sessions now open.
 *
 * Memory is bounded: at most max_entries entries. An entry is forgotten
 * when its window has ended and no session of it is open (nothing is lost:
 * its rates would read zero). When the table is full, the idle entry with
 * the oldest window is forgotten early; when no entry is idle (every one
 * has a session open: more distinct clients connected than the table
 * holds) the new key is not counted, and the event is allowed. Both are
 * counted for the caller to log (smtpd_anvil_take_overflow()).
 *
 * Time is passed in by the caller (milliseconds, monotonic): the table
 * reads no clock, so tests inject one. Out of memory is fatal().
 */
#ifndef TERN_SMTPD_ANVIL_H
#define TERN_SMTPD_ANVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries held at most; far above smtpd_client_connection_limit's
 * default, so an idle entry can always make room (see above). */
#define SMTPD_ANVIL_ENTRIES_MAX 100000u
/* Longest key name: a login (SMTPD_AUTH_USERNAME_MAX) or an address. */
#define SMTPD_ANVIL_NAME_MAX 255u

enum smtpd_anvil_event {
	SMTPD_ANVIL_CONNECT,	/* a session began (smtpd_anvil_connect) */
	SMTPD_ANVIL_MAIL,	/* a MAIL command */
	SMTPD_ANVIL_RCPT,	/* a RCPT command */
	SMTPD_ANVIL_NEWTLS,	/* a TLS handshake that resumed no session */
	SMTPD_ANVIL_AUTH,	/* an AUTH command */
	SMTPD_ANVIL_EVENT_COUNT
};

enum smtpd_anvil_space {
	SMTPD_ANVIL_CLIENT,	/* listener + client address */
	SMTPD_ANVIL_USER,	/* SASL login, every listener */
};

struct smtpd_anvil_key {
	enum smtpd_anvil_space space;
	unsigned listener;	/* SMTPD_ANVIL_CLIENT only */
	const char *name;	/* address or login; borrowed for the call; longer
				 * than SMTPD_ANVIL_NAME_MAX is cut there */
};

/* The event was counted, or the table was full and it was not. */
enum smtpd_anvil_status {
	SMTPD_ANVIL_OK,
	SMTPD_ANVIL_UNTRACKED,
};

struct smtpd_anvil;

/* A table of at most max_entries (>= 1) entries, windows of unit_ms (>= 1). */
struct smtpd_anvil *smtpd_anvil_new(size_t max_entries, int64_t unit_ms);
void smtpd_anvil_free(struct smtpd_anvil *a);

/* A new time unit (reload): open windows keep their start and are
 * measured against the new length from now on. */
void smtpd_anvil_set_unit(struct smtpd_anvil *a, int64_t unit_ms);

/* A session of key began: *count (sessions open, this one included) and
 * *rate (connections in the window, this one included). UNTRACKED: not
 * counted (both 0); the caller must then not call smtpd_anvil_disconnect(). */
enum smtpd_anvil_status smtpd_anvil_connect(struct smtpd_anvil *a, int64_t now,
                                            const struct smtpd_anvil_key *key, unsigned *count,
                                            unsigned *rate);
/* A session counted by smtpd_anvil_connect() ended. */
void smtpd_anvil_disconnect(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key);

/* Count one event (not SMTPD_ANVIL_CONNECT) of key: *rate is the number in
 * the window, this one included (0 when UNTRACKED). */
enum smtpd_anvil_status smtpd_anvil_event(struct smtpd_anvil *a, int64_t now,
                                          const struct smtpd_anvil_key *key,
                                          enum smtpd_anvil_event ev, unsigned *rate);
/* The events of key in its window, counting nothing (Postfix's
 * anvil_clnt_newtls_stat: "would one more be too many?"). */
unsigned smtpd_anvil_peek(struct smtpd_anvil *a, int64_t now, const struct smtpd_anvil_key *key,
                          enum smtpd_anvil_event ev);

/* Forget the entries whose window ended and that have no session open
 * (done on every call as well; the role also calls it once a unit so the
 * memory goes back while no client comes). Returns how many. */
size_t smtpd_anvil_expire(struct smtpd_anvil *a, int64_t now);
/* Entries held now. */
size_t smtpd_anvil_size(const struct smtpd_anvil *a);
/*
 * What the full table did since the last call, then reset: *evicted idle
 * entries forgotten before their window ended, *untracked events not
 * counted because no entry could be freed. True when either is non-zero.
 */
bool smtpd_anvil_take_overflow(struct smtpd_anvil *a, uint64_t *evicted, uint64_t *untracked);

/*
 * The peaks of anvil(8)'s "statistics:" lines, over client keys only (as
 * Postfix's anvil, which knows no logins): the highest rate of an event,
 * the highest session count, the largest table, each with the key and the
 * time (the caller's clock) it was reached.
 */
enum smtpd_anvil_stat {
	SMTPD_ANVIL_STAT_CONNECT_RATE,
	SMTPD_ANVIL_STAT_COUNT,
	SMTPD_ANVIL_STAT_MAIL_RATE,
	SMTPD_ANVIL_STAT_RCPT_RATE,
	SMTPD_ANVIL_STAT_SIZE,		/* name empty, listener 0 */
	SMTPD_ANVIL_STAT_KINDS
};

struct smtpd_anvil_peak {
	unsigned value;
	int64_t when;
	unsigned listener;
	char name[SMTPD_ANVIL_NAME_MAX + 1];
};

/* The peak of st since the last call, then reset; false (nothing
 * written) when there was none. */
bool smtpd_anvil_take_peak(struct smtpd_anvil *a, enum smtpd_anvil_stat st,
                           struct smtpd_anvil_peak *out);

#endif
