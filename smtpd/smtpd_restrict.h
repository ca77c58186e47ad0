/*
 * smtpd_restrict: the Postfix restriction lists (smtpd_client_, _helo_,
 * _sender_, _relay_, _recipient_, _data_ and _end_of_data_restrictions),
 * evaluated at the stage Postfix evaluates them. The vocabulary (names,
 * arguments, aliases, the load-time check with FILE:LINE errors) is
 * config/config_restrictions; what each word decides is here.
 * doc/restrictions.md is the administrator's side.
 *
 * A check runs the lists of one stage in order, each rule in order: a
 * PERMIT ends the current list (the next list still runs), a REJECT or
 * DEFER ends the check, DUNNO goes on. Rules that need DNS
 * (reject_rbl_client, reject_unknown_{helo_hostname,sender_domain,
 * recipient_domain}: the client's names were looked up at connect), a
 * policy server (check_policy_service) or time (sleep) suspend the check:
 * the caller gets SMTPD_RESTRICT_PENDING and its callback later, from
 * the event loop; the session reads nothing meanwhile, other sessions go
 * on.
 *
 * Every refusal is logged here, in Postfix's words: "NOQUEUE: reject:
 * RCPT from host[addr]: 554 5.7.1 <a@b>: Relay access denied;
 * from=<...> to=<...> proto=ESMTP helo=<...>", and "reject_warning:"
 * under warn_if_reject.
 *
 * Ownership: struct smtpd_restrict (one per smtpd) owns the resolver it
 * made, the compiled lists, the maps they name and the policy clients.
 * The lists live in a reference-counted rule set: a reload makes a new
 * one, and a check that is waiting keeps the old one alive until it
 * ends. The configuration and the address resolver are borrowed and are
 * replaced by smtpd_restrict_reload(); a waiting check reads them again
 * when it resumes, never across a wait.
 *
 * Errors: setup failures (a map that cannot be opened, a policy endpoint
 * that cannot be used) are returned in diag; at run time every trouble
 * of ours is a 4xx result, never a crash or a silent pass.
 */
#ifndef TERN_SMTPD_RESTRICT_H
#define TERN_SMTPD_RESTRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/evloop.h"
#include "common/mailaddr.h"
#include "config/addr_resolve.h"
#include "config/config.h"
#include "smtpd/smtpd_command.h"
#include "smtpd/smtpd_peer.h"

/* Headers that PREPEND actions may add to one message, bytes. */
#define SMTPD_RESTRICT_PREPEND_MAX 4096

enum smtpd_verdict {
	SMTPD_VERDICT_DUNNO = 0,	/* no decision: go on */
	SMTPD_VERDICT_PERMIT,
	SMTPD_VERDICT_REJECT,		/* reply filled in */
	SMTPD_VERDICT_DEFER,		/* reply filled in (4xx) */
};

/* When a check runs. CONNECT, HELO and MAIL have checks of their own only
 * with smtpd_delay_reject = no; otherwise their lists run at RCPT. */
enum smtpd_restrict_stage {
	SMTPD_RESTRICT_CONNECT,
	SMTPD_RESTRICT_HELO,
	SMTPD_RESTRICT_MAIL,
	SMTPD_RESTRICT_RCPT,
	SMTPD_RESTRICT_DATA,
	SMTPD_RESTRICT_EOD,	/* end of message content */
};

/* What the rules may look at; copied by smtpd_restrict_run(). */
struct smtpd_restrict_facts {
	enum config_listener listener;
	int family;			/* AF_INET, AF_INET6 or 0 */
	unsigned char addr[16];
	const char *client_addr;	/* text; "unknown" when none */
	const char *client_name;	/* "unknown" without a verified name */
	const char *reverse_client_name;
	/* How the names were found (smtpd_peer.h); what
	 * reject_unknown_(reverse_)client_hostname look at. 0 (unset) counts
	 * as a temporary failure. */
	enum smtpd_peer_status name_status;
	enum smtpd_peer_status reverse_name_status;
	unsigned client_port;
	const char *server_addr;
	unsigned server_port;
	const char *helo;		/* "" before HELO/EHLO */
	bool esmtp;
	const struct mailaddr *sender;	/* NULL before MAIL */
	const struct mailaddr *rcpt;	/* the recipient at RCPT, else NULL */
	unsigned recipient_count;	/* accepted so far (DATA, EOD) */
	uint64_t size;			/* SIZE= or the content's size at EOD */
	const char *queue_id;		/* NULL: NOQUEUE */
	const char *instance;		/* one per transaction, for policy servers */
	const char *sasl_method;	/* "" until AUTH */
	const char *sasl_username;	/* "" until AUTH */
	const char *sasl_sender;
	const char *encryption_protocol;	/* "" without TLS */
	const char *encryption_cipher;
	unsigned encryption_keysize;
	const char *verb;		/* the command as logged: "RCPT", "EHLO", ... */
	bool pipelined;			/* more input was waiting behind the command */
	/* A defer_if_permit left by an earlier stage (smtpd_delay_reject =
	 * no): RCPT ends in it unless something rejects. NULL: none. */
	const struct smtpd_reply *carried;
};

struct smtpd_restrict_result {
	enum smtpd_verdict verdict;	/* PERMIT, REJECT or DEFER */
	struct smtpd_reply reply;	/* REJECT, DEFER */
	/* CONNECT, HELO, MAIL: a defer_if_permit the RCPT check must apply. */
	bool carry;
	struct smtpd_reply carried;
	/* PREPEND actions: header lines, each ending in '\n'. */
	char prepend[SMTPD_RESTRICT_PREPEND_MAX];
	bool discard;			/* a DISCARD action: accept, then drop */
	bool hold;			/* a HOLD action: queue the message on hold */
	/* FILTER, REDIRECT, BCC actions (access(5)): "" when none fired, else
	 * the last one's argument, checked (config_filter_valid(); an
	 * address with a domain). Each applies to the whole message. */
	char filter[CONFIG_FILTER_MAX + 1];
	char redirect[MAILADDR_PATH_MAX + 1];
	char bcc[MAILADDR_PATH_MAX + 1];
};

struct smtpd_restrict;
struct smtpd_restrict_check;

/*
 * ternd -n and the master's start and reload: open every map the
 * restriction lists and smtpd_sender_login_maps of every listener name
 * (check_*_access TYPE:PATH), so that a map with errors is reported as
 * "FILE:LINE: ..." lines in errors before a role starts. 0, or -1.
 */
int smtpd_restrict_config_check(const struct config *cfg, struct buf *errors);

/*
 * Compile cfg's lists for every listener, open the maps they name, make
 * the policy clients and smtpd's own resolver. addr (may be NULL: the
 * unlisted checks then pass) and cfg are borrowed. NULL with one line per
 * problem in diag.
 */
struct smtpd_restrict *smtpd_restrict_new(struct evloop *loop, const struct config *cfg,
                                          struct addr_resolver *addr, struct buf *diag);
/* A new configuration: new rule set (waiting checks finish on the old
 * one). -1 with diag when the new one cannot be made: the old stays. */
int smtpd_restrict_reload(struct smtpd_restrict *rs, const struct config *cfg,
                          struct addr_resolver *addr, struct buf *diag);
/* Free everything; every check must have ended or been cancelled. */
void smtpd_restrict_free(struct smtpd_restrict *rs);

/* smtpd's resolver (one per process), which the client name lookups at
 * connect (smtpd_peer.h) share; borrowed for the life of rs. */
struct resolver *smtpd_restrict_resolver(struct smtpd_restrict *rs);

/* Does the stage have any rule to run (so the caller may skip it)? */
bool smtpd_restrict_stage_active(const struct smtpd_restrict *rs, enum config_listener l,
                                 enum smtpd_restrict_stage stage);

enum smtpd_restrict_run_status {
	SMTPD_RESTRICT_DONE,		/* *res is filled */
	SMTPD_RESTRICT_PENDING,		/* cb will be called with the result */
};

/* The result is borrowed for the call. */
typedef void smtpd_restrict_cb(void *arg, const struct smtpd_restrict_result *res);

/*
 * Run the lists of stage on facts. DONE with res filled, or PENDING with
 * *pending set: cb(arg, result) comes later from the loop (never from
 * inside this call) unless smtpd_restrict_cancel(*pending) comes first.
 */
enum smtpd_restrict_run_status smtpd_restrict_run(struct smtpd_restrict *rs,
                                                  enum smtpd_restrict_stage stage,
                                                  const struct smtpd_restrict_facts *facts,
                                                  struct smtpd_restrict_result *res,
                                                  struct smtpd_restrict_check **pending,
                                                  smtpd_restrict_cb *cb, void *arg);
/* Drop a waiting check; its callback is never called. NULL: no-op. */
void smtpd_restrict_cancel(struct smtpd_restrict_check *c);

/* ---- pure decisions, for the checks and the unit tests ---- */

enum smtpd_relay_decision {
	SMTPD_RELAY_AUTH = 0,	/* a destination we take from anybody */
	SMTPD_RELAY_ROUTED,	/* sender-specified routing: %, !, @ in the local part, a source route */
	SMTPD_RELAY_LITERAL,	/* an address literal */
	SMTPD_RELAY_FOREIGN,	/* a domain that is not ours */
	SMTPD_RELAY_TEMPFAIL,	/* a domain table cannot be read */
};

/*
 * Is rcpt an authorized destination (permit_auth_destination,
 * reject_unauth_destination)? Ours are mydestination,
 * virtual_alias_domains, virtual_mailbox_domains and relay_domains (with
 * addr, through its classes, type:table items included; without, the
 * plain items of those lists). The bare Postmaster is always ours (RFC
 * 5321 section 4.5.1). We never interpret sender-specified routing, and
 * refuse it from untrusted clients even for our own domains: see
 * doc/restrictions.md, "Relay control".
 */
enum smtpd_relay_decision smtpd_restrict_relay_decide(const struct config *cfg,
                                                      struct addr_resolver *addr,
                                                      const struct mailaddr *rcpt);

/* Is the (lower-case) domain one we accept mail for: mydestination,
 * virtual_mailbox_domains or relay_domains, plain items only? */
bool smtpd_restrict_domain_is_ours(const struct config *cfg, const char *domain_lc);

/* Does the local part (as sent, quotes kept) carry routing: an unquoted
 * or quoted '@', '%' or '!'? */
bool smtpd_restrict_local_routed(const char *local);

/* HELO name checks: true when name is valid for reject_invalid_helo_hostname
 * (a host name, an IPv4 address, or an address literal) and, for the
 * second, fully qualified for reject_non_fqdn_helo_hostname. */
bool smtpd_restrict_helo_valid(const char *name);
bool smtpd_restrict_helo_fqdn(const char *name);

/* The keys check_client_access tries for an address, most specific
 * first: "1.2.3.4", "1.2.3", "1.2", "1"; for IPv6 the address, then
 * shorter at each ':'. Returns how many were written (at most max). */
size_t smtpd_restrict_client_keys(const char *addr, char keys[][64], size_t max);

/* The keys an access map is tried with for a host name: the name, then
 * each parent as "parent" and ".parent" (none for an address literal).
 * Appended NUL-separated to keys; returns how many. */
size_t smtpd_restrict_domain_keys(const char *name, struct buf *keys);

/*
 * An access(5) action as a verdict: kind, code, dsn and text. For the
 * unit tests and the evaluation: SMTPD_ACTION_BAD when malformed or
 * unsupported (the evaluation answers 451 4.3.5 and logs why).
 */
enum smtpd_action_kind {
	SMTPD_ACTION_OK, SMTPD_ACTION_DUNNO, SMTPD_ACTION_REJECT, SMTPD_ACTION_DEFER,
	SMTPD_ACTION_DEFER_IF_REJECT, SMTPD_ACTION_DEFER_IF_PERMIT, SMTPD_ACTION_PREPEND,
	SMTPD_ACTION_DISCARD, SMTPD_ACTION_HOLD, SMTPD_ACTION_WARN, SMTPD_ACTION_INFO,
	SMTPD_ACTION_FILTER, SMTPD_ACTION_REDIRECT, SMTPD_ACTION_BCC, SMTPD_ACTION_BAD,
};

struct smtpd_action {
	enum smtpd_action_kind kind;
	int code;		/* REJECT, DEFER: the SMTP code (0: the default) */
	char dsn[16];		/* an enhanced code given in the text, or "" */
	const char *text;	/* the rest (borrowed from the value), "" when none */
	const char *why;	/* BAD: why */
};

void smtpd_restrict_action_parse(const char *value, struct smtpd_action *a);

/* The length of the RFC 3463 status code ("5.7.1") p starts with, followed
 * by white space or the end; 0 when it starts with none. */
size_t smtpd_restrict_dsn_len(const char *p);

/*
 * The argument of a REDIRECT or BCC action: one address with a domain
 * (user@domain, with or without < >, UTF-8 allowed), nothing after it.
 * true with out filled, or false with a reason in *why.
 */
bool smtpd_restrict_action_address(const char *text, struct mailaddr *out, const char **why);

#endif
