/*
 * lmtp: the LMTP delivery agent, a role of ternd (master_roles.c).
 *
 * It is the smtp agent (delivery/smtp_agent.c) in LMTP mode, as Postfix's
 * lmtp(8) is its smtp(8) binary under another name: the event loop, the
 * job and connection handling, pipelining, the connection cache, the
 * reply parser and the error classes are the same code. What LMTP
 * changes (RFC 2033, doc/lmtp.md): next hops unix:/path and
 * inet:host:port (never MX), LHLO without a HELO fallback, one reply per
 * accepted recipient after the final dot, 452 4.2.2 as the retry class
 * "quota", no TLS and no AUTH; the transport it serves is "lmtp".
 */
#ifndef TERN_LMTP_H
#define TERN_LMTP_H

#include "config/config.h"

/* Run the role until the master drains it; cfg is adopted. Returns 0. */
int lmtp_main(const char *cfg_path, struct config *cfg, int control_fd);

#endif
