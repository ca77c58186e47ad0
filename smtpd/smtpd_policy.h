/*
 * smtpd_policy: the client side of Postfix's policy delegation protocol
 * (SMTPD_POLICY_README), for check_policy_service.
 *
 * The codec is pure: smtpd_policy_encode() writes a request (name=value
 * lines and an empty line), smtpd_policy_decode() reads one reply and
 * returns its action. The client runs on the event loop: one client per
 * endpoint (inet:HOST:PORT or unix:PATH), a few connections kept open and
 * reused, each carrying one request at a time (a policy server reads one
 * request, answers it, and reads the next: pipelining several on one
 * connection is not promised by the protocol). Requests beyond the
 * connections wait in a FIFO. Every request has a deadline
 * (smtpd_policy_service_timeout) that covers waiting, connecting, writing
 * and reading; past it the caller gets SMTPD_POLICY_TIMEOUT and the
 * connection it used, if any, is closed (its state is unknown).
 *
 * Error policy: malformed replies, connection failures and timeouts are
 * results (a status plus text for the log); nothing here logs. Out of
 * memory is fatal().
 *
 * Ownership: the client owns its connections and every pending request
 * until the request's callback has returned or it was cancelled.
 * Callbacks are never called from inside smtpd_policy_ask() or
 * smtpd_policy_cancel(), and smtpd_policy_client_free() calls none.
 */
#ifndef TERN_SMTPD_POLICY_H
#define TERN_SMTPD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/evloop.h"

/* Largest request we send; attributes come from bounded SMTP fields. */
#define SMTPD_POLICY_REQUEST_MAX 8192
/* Largest reply we read (all its lines); more is a protocol error. */
#define SMTPD_POLICY_REPLY_MAX 8192
/* Longest action value we keep (PREPEND header text, reply text). */
#define SMTPD_POLICY_ACTION_MAX 2048
/* Connections kept per endpoint; more requests wait in the queue. */
#define SMTPD_POLICY_CONN_MAX 8

/* The request attributes (SMTPD_POLICY_README, Postfix 3.8). A NULL
 * string is sent empty; strings are borrowed for the encode call. */
struct smtpd_policy_attrs {
	const char *protocol_state;	/* CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE */
	const char *protocol_name;	/* SMTP, ESMTP */
	const char *helo_name;
	const char *queue_id;
	const char *sender;
	const char *recipient;
	unsigned recipient_count;
	const char *client_address;
	const char *client_name;
	const char *reverse_client_name;
	unsigned client_port;
	const char *server_address;
	unsigned server_port;
	const char *instance;
	const char *sasl_method;
	const char *sasl_username;
	const char *sasl_sender;
	uint64_t size;
	const char *ccert_subject;
	const char *ccert_issuer;
	const char *ccert_fingerprint;
	const char *ccert_pubkey_fingerprint;
	const char *encryption_protocol;
	const char *encryption_cipher;
	unsigned encryption_keysize;
	const char *policy_context;
	const char *mail_version;
};

/*
 * Append the request to out: request=smtpd_access_policy, every attribute
 * above, and the empty line. A CR, LF or NUL inside a value (none of our
 * parsers lets one through) is replaced by '?', so a value can never end
 * the request early or add an attribute. BUF_TOO_BIG when out is full.
 */
enum buf_result smtpd_policy_encode(const struct smtpd_policy_attrs *a, struct buf *out);

enum smtpd_policy_decode_result {
	SMTPD_POLICY_DECODE_OK = 0,	/* a reply: *consumed bytes, action set */
	SMTPD_POLICY_DECODE_MORE = 1,	/* incomplete: read more */
	SMTPD_POLICY_DECODE_BAD = -1,	/* malformed: why is set */
};

/*
 * Decode one reply at the front of (p, len): name=value lines ending at
 * LF (a CR before it is dropped), up to an empty line. Unknown attributes
 * are ignored, as the protocol says; exactly one "action" is required,
 * with a non-empty value of at most SMTPD_POLICY_ACTION_MAX bytes, copied
 * NUL-terminated into action (actionsz >= SMTPD_POLICY_ACTION_MAX + 1).
 * BAD: a line without '=', an empty name, a NUL, no action or two, an
 * over-long action, or a reply longer than SMTPD_POLICY_REPLY_MAX.
 */
enum smtpd_policy_decode_result smtpd_policy_decode(const char *p, size_t len, char *action,
                                                    size_t actionsz, size_t *consumed,
                                                    const char **why);

/* Parse an endpoint "inet:HOST:PORT" (HOST a numeric address, [IPv6] or
 * localhost) or "unix:/path" into a sockaddr; 0, or -1 with why. */
struct sockaddr_storage;
int smtpd_policy_endpoint(const char *spec, struct sockaddr_storage *ss, unsigned *sslen,
                          const char **why);

enum smtpd_policy_status {
	SMTPD_POLICY_OK = 0,		/* action holds the server's action */
	SMTPD_POLICY_TIMEOUT,		/* no answer within the time limit */
	SMTPD_POLICY_FAILED,		/* cannot connect, connection lost, malformed reply */
};

/* action: the reply's action (OK) or a text for the log (otherwise);
 * borrowed for the call. */
typedef void smtpd_policy_cb(void *arg, enum smtpd_policy_status st, const char *action);

struct smtpd_policy_client;
struct smtpd_policy_req;

/*
 * A client for endpoint (copied). timeout_ms bounds each request; an idle
 * connection is closed after idle_ms, any connection after ttl_ms (at
 * the end of its current request). NULL with why when the endpoint
 * cannot be parsed.
 */
struct smtpd_policy_client *smtpd_policy_client_new(struct evloop *loop, const char *endpoint,
                                                    int64_t timeout_ms, int64_t idle_ms,
                                                    int64_t ttl_ms, const char **why);
/* Close everything; pending requests are dropped without callbacks. */
void smtpd_policy_client_free(struct smtpd_policy_client *c);
const char *smtpd_policy_client_endpoint(const struct smtpd_policy_client *c);
/* Connections open now (for tests and the log). */
size_t smtpd_policy_client_connections(const struct smtpd_policy_client *c);

/*
 * Send one encoded request (copied). cb runs once, later, from the loop,
 * unless the request is cancelled first.
 */
struct smtpd_policy_req *smtpd_policy_ask(struct smtpd_policy_client *c, const char *request,
                                          size_t len, smtpd_policy_cb *cb, void *arg);
/* Drop a request: its callback is never called. If it was on the wire,
 * its connection is closed (the reply would come to the next request). */
void smtpd_policy_cancel(struct smtpd_policy_req *r);

#endif
