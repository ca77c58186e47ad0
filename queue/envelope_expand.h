/*
 * envelope_expand: an address expansion (config/addr_resolve.h) stored as
 * envelope recipients. smtpd does it for each accepted RCPT; qmgr for the
 * recipient of each notice it writes (a bounce to a local alias).
 *
 * What a target becomes:
 *   ADDRESS  a recipient of that address;
 *   COMMAND  a recipient of its owner (the alias) with target "|command";
 *   FILE     a recipient of its owner with target "/file";
 *   ERROR    a recipient of that address when its class has an agent
 *            that refuses it in its own words (local, virtual mailbox);
 *            any other failed target cannot be stored (check first).
 * Each with the original address as ORCPT (RFC 3461 section 4.2) unless
 * one is given or nothing was rewritten; duplicates of a recipient already
 * in the envelope (address without regard to case, target exactly) are
 * left out, as Postfix's cleanup drops them.
 *
 * No I/O; out of memory is fatal().
 */
#ifndef TERN_ENVELOPE_EXPAND_H
#define TERN_ENVELOPE_EXPAND_H

#include <stdbool.h>

#include "config/addr_resolve.h"
#include "queue/envelope.h"

/*
 * Can every target of x be stored? NULL when yes; otherwise the first
 * that cannot (a failed target of another class, a command, file or owner
 * too long to carry to an agent), for the caller's refusal.
 */
const struct addr_target *envelope_expansion_unstorable(const struct addr_expansion *x);

/* Is t unstorable because of its length (else: a failed target)? */
bool envelope_target_too_long(const struct addr_target *t);

/*
 * Add the targets of x, the expansion of original (the address as given),
 * to env. orcpt is the ORCPT given with it ("type;addr") or NULL. Call it
 * only when envelope_expansion_unstorable(x) is NULL. Returns the number
 * of recipients added.
 */
size_t envelope_add_expansion(struct envelope *env, const struct addr_expansion *x,
                              const char *original, const char *orcpt, unsigned notify);

#endif
