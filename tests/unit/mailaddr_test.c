/*
 * Unit tests for common/mailaddr.c: one table row per hostile or ordinary
 * path (in the spirit of Postfix's smtpd_token.in), generated rows for the
 * RFC 5321 4.5.3.1 limits, and a seeded random run checking invariants.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mailaddr.h"

/* Expected booleans of struct mailaddr. */
#define B_NULL  0x01
#define B_PM    0x02
#define B_Q     0x04
#define B_LIT   0x08
#define B_UTF8  0x10
#define B_ROUTE 0x20

#define NB MAILADDR_ALLOW_NO_BRACKETS
#define AN MAILADDR_ALLOW_NULL
#define PM MAILADDR_ALLOW_POSTMASTER
#define U8 MAILADDR_ALLOW_UTF8

struct addr_row {
	const char *in;
	size_t len;		/* 0: strlen(in) (rows with NUL give it) */
	unsigned flags;
	enum mailaddr_result res;
	const char *addr;	/* on MAILADDR_OK */
	const char *local;
	const char *domain_lc;
	size_t consumed;	/* 0: the whole input */
	unsigned bits;
};

#define OK MAILADDR_OK
#define SYN MAILADDR_SYNTAX
#define LONG MAILADDR_TOO_LONG
#define UTF MAILADDR_UTF8

static const struct addr_row addr_rows[] = {
	/* ordinary */
	{ "<user@example.com>", 0, 0, OK, "user@example.com", "user", "example.com", 0, 0 },
	{ "<User.Name+tag@Example.COM>", 0, 0, OK, "User.Name+tag@Example.COM", "User.Name+tag", "example.com", 0, 0 },
	{ "<a@localhost>", 0, 0, OK, "a@localhost", "a", "localhost", 0, 0 },
	{ "<a.b.c@d.e.f>", 0, 0, OK, "a.b.c@d.e.f", "a.b.c", "d.e.f", 0, 0 },
	{ "<{#}$&'*/=?^_`|~-@x.example>", 0, 0, OK, "{#}$&'*/=?^_`|~-@x.example", "{#}$&'*/=?^_`|~-", "x.example", 0, 0 },
	{ "<a@1a.example>", 0, 0, OK, "a@1a.example", "a", "1a.example", 0, 0 },
	{ "<a@re-lay.example>", 0, 0, OK, "a@re-lay.example", "a", "re-lay.example", 0, 0 },
	{ "<a@xn--bcher-kva.example>", 0, 0, OK, "a@xn--bcher-kva.example", "a", "xn--bcher-kva.example", 0, 0 },
	{ "<a@3com.example>", 0, 0, OK, "a@3com.example", "a", "3com.example", 0, 0 },

	/* relay tricks (protocols-reference.md): parsed, never reinterpreted */
	{ "<victim%target@relay>", 0, 0, OK, "victim%target@relay", "victim%target", "relay", 0, 0 },
	{ "<victim%target.example@relay.example>", 0, 0, OK, "victim%target.example@relay.example", "victim%target.example", "relay.example", 0, 0 },
	{ "<target!victim@relay>", 0, 0, OK, "target!victim@relay", "target!victim", "relay", 0, 0 },
	{ "<target.example!victim@relay.example>", 0, 0, OK, "target.example!victim@relay.example", "target.example!victim", "relay.example", 0, 0 },
	{ "<%@relay>", 0, 0, OK, "%@relay", "%", "relay", 0, 0 },
	{ "<@relay.example:victim@target.example>", 0, 0, OK, "victim@target.example", "victim", "target.example", 0, B_ROUTE },
	{ "<@a.example,@b.example:victim@target.example>", 0, 0, OK, "victim@target.example", "victim", "target.example", 0, B_ROUTE },
	{ "<@relay.example.:v@t.example>", 0, 0, OK, "v@t.example", "v", "t.example", 0, B_ROUTE },
	{ "<\"victim@target\"@relay.example>", 0, 0, OK, "\"victim@target\"@relay.example", "\"victim@target\"", "relay.example", 0, B_Q },
	{ "<\"victim@target.example\"@relay.example>", 0, 0, OK, "\"victim@target.example\"@relay.example", "\"victim@target.example\"", "relay.example", 0, B_Q },
	{ "<victim@target@relay>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@target.example@relay.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "victim@target@relay", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@[192.0.2.7]>", 0, 0, OK, "victim@[192.0.2.7]", "victim", "[192.0.2.7]", 0, B_LIT },
	{ "<victim@192.0.2.7>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@123>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@example.123>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "victim@", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "<victim>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@Relay.Example.>", 0, 0, OK, "victim@Relay.Example.", "victim", "relay.example", 0, 0 },
	{ "<victim@relay.example..>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@.>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@.relay.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay..example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay,example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay_example.com>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@-relay.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay-.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay.-example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay.example->", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<victim@relay.example:25>", 0, 0, SYN, 0, 0, 0, 0, 0 },

	/* bad source routes */
	{ "<@:a@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example,b.example:c@d.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example:>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a example:c@d.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example;c@d.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@[192.0.2.1]:a@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example:@b.example:c@d.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "@a.example:c@d.example", 0, NB, SYN, 0, 0, 0, 0, 0 },

	/* dot-string */
	{ "<.a@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a.@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a..b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a(b)@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a,b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a;b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a[b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\\b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a<b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<<a@b.example>>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "< a@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example >", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a @b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@ b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\t@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example\r\n>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\r\n@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\x7f@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\x1b@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },

	/* quoted strings */
	{ "<\"a b\"@c.example>", 0, 0, OK, "\"a b\"@c.example", "\"a b\"", "c.example", 0, B_Q },
	{ "<\"a\\\"b\"@c.example>", 0, 0, OK, "\"a\\\"b\"@c.example", "\"a\\\"b\"", "c.example", 0, B_Q },
	{ "<\"a\\\\b\"@c.example>", 0, 0, OK, "\"a\\\\b\"@c.example", "\"a\\\\b\"", "c.example", 0, B_Q },
	{ "<\"a\\ b\"@c.example>", 0, 0, OK, "\"a\\ b\"@c.example", "\"a\\ b\"", "c.example", 0, B_Q },
	{ "<\"\"@c.example>", 0, 0, OK, "\"\"@c.example", "\"\"", "c.example", 0, B_Q },
	{ "<\"a>b\"@c.example>", 0, 0, OK, "\"a>b\"@c.example", "\"a>b\"", "c.example", 0, B_Q },
	{ "<\"a<>@,;:b\"@c.example>", 0, 0, OK, "\"a<>@,;:b\"@c.example", "\"a<>@,;:b\"", "c.example", 0, B_Q },
	{ "<\"a\\\x01\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\x01\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\tb\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\r\nb\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"abc@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\\\">", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\\", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\"b@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\"b\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\".\"b\"@c.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\">", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "\"a b\"@c.example SIZE=1", 0, NB, OK, "\"a b\"@c.example", "\"a b\"", "c.example", 15, B_Q },

	/* address literals */
	{ "<a@[IPv6:2001:db8::1]>", 0, 0, OK, "a@[IPv6:2001:db8::1]", "a", "[ipv6:2001:db8::1]", 0, B_LIT },
	{ "<a@[ipv6:2001:DB8::1]>", 0, 0, OK, "a@[ipv6:2001:DB8::1]", "a", "[ipv6:2001:db8::1]", 0, B_LIT },
	{ "<a@[IPv6:::1]>", 0, 0, OK, "a@[IPv6:::1]", "a", "[ipv6:::1]", 0, B_LIT },
	{ "<a@[IPv6:::ffff:192.0.2.1]>", 0, 0, OK, "a@[IPv6:::ffff:192.0.2.1]", "a", "[ipv6:::ffff:192.0.2.1]", 0, B_LIT },
	{ "<a@[IPv6:1:2:3:4:5:6:7:8]>", 0, 0, OK, "a@[IPv6:1:2:3:4:5:6:7:8]", "a", "[ipv6:1:2:3:4:5:6:7:8]", 0, B_LIT },
	{ "<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6:2001:db8::g]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6:2001:db8:::1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6:fe80::1%eth0]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6:]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6:192.0.2.1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[IPv6: ::1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[0.0.0.0]>", 0, 0, OK, "a@[0.0.0.0]", "a", "[0.0.0.0]", 0, B_LIT },
	{ "<a@[255.255.255.255]>", 0, 0, OK, "a@[255.255.255.255]", "a", "[255.255.255.255]", 0, B_LIT },
	{ "<a@[010.0.0.1]>", 0, 0, OK, "a@[010.0.0.1]", "a", "[010.0.0.1]", 0, B_LIT },
	{ "<a@[192.0.2.256]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1.5]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[1922.0.2.1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192..2.1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1.]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1]x>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1].example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[ 192.0.2.1]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[x-tag:some-data]>", 0, 0, OK, "a@[x-tag:some-data]", "a", "[x-tag:some-data]", 0, B_LIT },
	{ "<a@[tag:]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[tag-:x]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[:x]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[tag:a[b]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[tag:a\\b]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[tag]>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[\xc3\xa9]>", 0, U8, SYN, 0, 0, 0, 0, 0 },

	/* empty, unterminated, trailing garbage, leading spaces */
	{ "", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "", 0, NB | AN | PM, SYN, 0, 0, 0, 0, 0 },
	{ "   ", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "<", 0, AN, SYN, 0, 0, 0, 0, 0 },
	{ ">", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example ", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<@", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example> SIZE=10", 0, 0, OK, "a@b.example", "a", "b.example", 13, 0 },
	{ "<a@b.example>>", 0, 0, OK, "a@b.example", "a", "b.example", 13, 0 },
	{ "<a@b.example>trailing", 0, 0, OK, "a@b.example", "a", "b.example", 13, 0 },
	{ "  <a@b.example>", 0, 0, OK, "a@b.example", "a", "b.example", 15, 0 },
	{ "a@b.example", 0, 0, SYN, 0, 0, 0, 0, 0 },

	/* NUL bytes */
	{ "<a\0b@c.example>", 15, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@c\0.example>", 14, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\0b\"@c.example>", 17, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a@[192.0.2.1\0]>", 16, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<\0>", 3, AN, SYN, 0, 0, 0, 0, 0 },
	{ "\0<a@b.example>", 14, 0, SYN, 0, 0, 0, 0, 0 },
	{ "a@b.example\0", 12, NB, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example>\0", 14, 0, OK, "a@b.example", "a", "b.example", 13, 0 },

	/* the null path */
	{ "<>", 0, AN, OK, "", "", "", 0, B_NULL },
	{ "<> SIZE=1", 0, AN, OK, "", "", "", 2, B_NULL },
	{ "  <>", 0, AN | NB, OK, "", "", "", 4, B_NULL },
	{ "<>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<>", 0, PM | NB | U8, SYN, 0, 0, 0, 0, 0 },
	{ "< >", 0, AN, SYN, 0, 0, 0, 0, 0 },
	{ "<\"\">", 0, AN, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example:>", 0, AN, SYN, 0, 0, 0, 0, 0 },

	/* Postmaster (RFC 5321 4.5.1) */
	{ "<Postmaster>", 0, PM, OK, "Postmaster", "Postmaster", "", 0, B_PM },
	{ "<postMASTER>", 0, PM, OK, "postMASTER", "postMASTER", "", 0, B_PM },
	{ "Postmaster", 0, PM | NB, OK, "Postmaster", "Postmaster", "", 0, B_PM },
	{ "postmaster NOTIFY=NEVER", 0, PM | NB, OK, "postmaster", "postmaster", "", 10, B_PM },
	{ "<Postmaster>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<Postmaster>", 0, AN | NB | U8, SYN, 0, 0, 0, 0, 0 },
	{ "Postmaster", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<\"Postmaster\">", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<@a.example:Postmaster>", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<postmaster2>", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<post.master>", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<postmaster >", 0, PM, SYN, 0, 0, 0, 0, 0 },
	{ "<Postmaster@Example.COM>", 0, PM, OK, "Postmaster@Example.COM", "Postmaster", "example.com", 0, 0 },

	/* without brackets */
	{ "a@b.example", 0, NB, OK, "a@b.example", "a", "b.example", 0, 0 },
	{ "a@b.example SIZE=1", 0, NB, OK, "a@b.example", "a", "b.example", 11, 0 },
	{ "  a@b.example", 0, NB, OK, "a@b.example", "a", "b.example", 13, 0 },
	{ "<a@b.example>", 0, NB, OK, "a@b.example", "a", "b.example", 0, 0 },
	{ "a@b.example>", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "a@b.example<", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "a@b.example\tSIZE=1", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "a@[192.0.2.1]", 0, NB, OK, "a@[192.0.2.1]", "a", "[192.0.2.1]", 0, B_LIT },
	{ "a", 0, NB, SYN, 0, 0, 0, 0, 0 },
	{ "a@b.example.", 0, NB, OK, "a@b.example.", "a", "b.example", 0, 0 },

	/* UTF-8 (RFC 6531) */
	{ "<j\xc3\xbcrgen@example.com>", 0, 0, UTF, 0, 0, 0, 0, 0 },
	{ "<j\xc3\xbcrgen@example.com>", 0, U8, OK, "j\xc3\xbcrgen@example.com", "j\xc3\xbcrgen", "example.com", 0, B_UTF8 },
	{ "<user@b\xc3\xbc" "cher.example>", 0, 0, UTF, 0, 0, 0, 0, 0 },
	{ "<user@B\xc3\xbc" "cher.Example>", 0, U8, OK, "user@B\xc3\xbc" "cher.Example", "user", "b\xc3\xbc" "cher.example", 0, B_UTF8 },
	{ "<\"j\xc3\xbc rgen\"@example.com>", 0, U8, OK, "\"j\xc3\xbc rgen\"@example.com", "\"j\xc3\xbc rgen\"", "example.com", 0, B_UTF8 | B_Q },
	{ "<\"j\xc3\xbc rgen\"@example.com>", 0, 0, UTF, 0, 0, 0, 0, 0 },
	{ "<\xf0\x9f\x98\x80@example.com>", 0, U8, OK, "\xf0\x9f\x98\x80@example.com", "\xf0\x9f\x98\x80", "example.com", 0, B_UTF8 },
	{ "<\xe2\x82\xac@\xe2\x82\xac.example>", 0, U8, OK, "\xe2\x82\xac@\xe2\x82\xac.example", "\xe2\x82\xac", "\xe2\x82\xac.example", 0, B_UTF8 },
	{ "<@b\xc3\xbc.example:a@c.example>", 0, 0, UTF, 0, 0, 0, 0, 0 },
	{ "<@b\xc3\xbc.example:a@c.example>", 0, U8, OK, "a@c.example", "a", "c.example", 0, B_UTF8 | B_ROUTE },
	{ "j\xc3\xbcrgen@example.com", 0, NB, UTF, 0, 0, 0, 0, 0 },
	/* malformed UTF-8 is a syntax error with or without SMTPUTF8 */
	{ "<a\xc0\x80@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xc0\x80@b.example>", 0, 0, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xc1\xbf@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xe0\x80\xaf@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xf0\x80\x80\xaf@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\x80@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xbf\xbf@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xed\xa0\x80@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xed\xbf\xbf@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xf4\x90\x80\x80@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xf5\x80\x80\x80@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xff@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xe2\x82@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example\xc3>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b.example\xc3", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a@b\xed\xa0\x80.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\xc0\x80\"@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<\"a\\\xc3\xbc\"@b.example>", 0, U8, SYN, 0, 0, 0, 0, 0 },
	{ "<a\xc2\x80@b.example>", 0, U8, OK, "a\xc2\x80@b.example", "a\xc2\x80", "b.example", 0, B_UTF8 },
	{ "<a\xf4\x8f\xbf\xbf@b.example>", 0, U8, OK, "a\xf4\x8f\xbf\xbf@b.example", "a\xf4\x8f\xbf\xbf", "b.example", 0, B_UTF8 },
	{ "<a\xed\x9f\xbf@b.example>", 0, U8, OK, "a\xed\x9f\xbf@b.example", "a\xed\x9f\xbf", "b.example", 0, B_UTF8 },
};

static const char *
show(const char *p, size_t n)
{
	static char text[2048];
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < sizeof(text); i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 32 && c < 127 && c != '\\')
			text[o++] = (char)c;
		else
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\x%02x", c);
	}
	text[o] = '\0';
	return text;
}

START_TEST(test_addr_rows)
{
	const struct addr_row *r = &addr_rows[_i];
	size_t len = r->len ? r->len : strlen(r->in);
	struct mailaddr a;
	size_t consumed = 12345;
	const char *why = "unset";
	enum mailaddr_result res;
	unsigned bits;

	res = mailaddr_parse_path(r->in, len, r->flags, &a, &consumed, &why);
	ck_assert_msg(res == r->res, "row %d \"%s\": result %d, want %d (%s)", _i, show(r->in, len),
	              res, r->res, why ? why : "-");
	if (res != MAILADDR_OK) {
		ck_assert_msg(why != NULL && *why != '\0', "row %d: no why", _i);
		ck_assert_msg(a.addr[0] == '\0' && a.local[0] == '\0' && a.domain[0] == '\0',
		              "row %d: out not cleared on error", _i);
		return;
	}
	ck_assert_msg(strcmp(a.addr, r->addr) == 0, "row %d \"%s\": addr \"%s\", want \"%s\"", _i,
	              show(r->in, len), a.addr, r->addr);
	ck_assert_msg(strcmp(a.local, r->local) == 0, "row %d: local \"%s\", want \"%s\"", _i,
	              a.local, r->local);
	ck_assert_msg(strcmp(a.domain_lc, r->domain_lc) == 0, "row %d: domain_lc \"%s\", want \"%s\"",
	              _i, a.domain_lc, r->domain_lc);
	ck_assert_msg(consumed == (r->consumed ? r->consumed : len), "row %d: consumed %zu, want %zu",
	              _i, consumed, r->consumed ? r->consumed : len);
	bits = (a.null ? B_NULL : 0) | (a.postmaster ? B_PM : 0) | (a.quoted ? B_Q : 0) |
	       (a.literal ? B_LIT : 0) | (a.utf8 ? B_UTF8 : 0) | (a.had_route ? B_ROUTE : 0);
	ck_assert_msg(bits == r->bits, "row %d \"%s\": bits %#x, want %#x", _i, show(r->in, len),
	              bits, r->bits);
	/* domain is "as given": addr is local "@" domain */
	if (!a.null && !a.postmaster) {
		char joined[600];
		snprintf(joined, sizeof(joined), "%s@%s", a.local, a.domain);
		ck_assert_str_eq(joined, a.addr);
	} else {
		ck_assert_str_eq(a.domain, "");
	}
}
END_TEST

/* ---- generated rows for the limits ---- */

static void
fill(char *dst, char c, size_t n)
{
	memset(dst, c, n);
	dst[n] = '\0';
}

/* A valid domain of exactly n octets (n >= 1): letters, a dot after every
 * 62, so that no label (the last included) passes 63. */
static void
make_domain(char *dst, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (run == 62 && i + 1 < n) {
			dst[i] = '.';
			run = 0;
		} else {
			dst[i] = (char)('a' + (char)(i % 26));
			run++;
		}
	}
	dst[n] = '\0';
}

static enum mailaddr_result
parse_str(const char *s, unsigned flags, struct mailaddr *a, size_t *consumed)
{
	const char *why;

	return mailaddr_parse_path(s, strlen(s), flags, a, consumed, &why);
}

START_TEST(test_local_part_limit)
{
	char local[200], path[400];
	struct mailaddr a;
	size_t consumed;

	fill(local, 'l', 64);
	snprintf(path, sizeof(path), "<%s@example.com>", local);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_OK);
	ck_assert_uint_eq(strlen(a.local), 64);
	fill(local, 'l', 65);
	snprintf(path, sizeof(path), "<%s@example.com>", local);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_TOO_LONG);
	/* the quotes count: "62 chars" is 64 octets */
	fill(local + 1, 'q', 62);
	local[0] = '"';
	local[63] = '"';
	local[64] = '\0';
	snprintf(path, sizeof(path), "<%s@example.com>", local);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_OK);
	ck_assert_str_eq(a.local, local);
	fill(local + 1, 'q', 63);
	local[0] = '"';
	local[64] = '"';
	local[65] = '\0';
	snprintf(path, sizeof(path), "<%s@example.com>", local);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_TOO_LONG);
	/* far too long, no brackets */
	fill(local, 'l', 190);
	snprintf(path, sizeof(path), "%s@example.com", local);
	ck_assert_int_eq(parse_str(path, MAILADDR_ALLOW_NO_BRACKETS, &a, &consumed), MAILADDR_TOO_LONG);
}
END_TEST

START_TEST(test_domain_limit)
{
	char dom[400];
	size_t n;

	make_domain(dom, 255);
	ck_assert_uint_eq(strlen(dom), 255);
	ck_assert(mailaddr_is_domain(dom, 255, false));
	make_domain(dom, 256);
	ck_assert(!mailaddr_is_domain(dom, 256, false));
	make_domain(dom, 300);
	ck_assert(!mailaddr_is_domain(dom, 300, false));
	/* every length up to 255 is fine, past it none is */
	for (n = 1; n <= 260; n++) {
		make_domain(dom, n);
		ck_assert_msg(mailaddr_is_domain(dom, n, false) == (n <= 255), "length %zu", n);
	}
}
END_TEST

START_TEST(test_label_limit)
{
	char label[100], dom[200], path[300];
	struct mailaddr a;
	size_t consumed;

	fill(label, 'x', 63);
	snprintf(dom, sizeof(dom), "%s.example", label);
	ck_assert(mailaddr_is_domain(dom, strlen(dom), false));
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_OK);
	fill(label, 'x', 64);
	snprintf(dom, sizeof(dom), "%s.example", label);
	ck_assert(!mailaddr_is_domain(dom, strlen(dom), false));
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_SYNTAX);
	snprintf(path, sizeof(path), "<a@example.%s>", label);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_SYNTAX);
}
END_TEST

START_TEST(test_path_limit)
{
	char dom[400], path[600], route[600];
	struct mailaddr a;
	size_t consumed;

	/* "<a@" + 252 + ">" = 256 octets */
	make_domain(dom, 252);
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_uint_eq(strlen(path), 256);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_OK);
	ck_assert_uint_eq(consumed, 256);
	ck_assert_uint_eq(strlen(a.addr), 254);
	make_domain(dom, 253);
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_uint_eq(strlen(path), 257);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_TOO_LONG);
	/* a 255-octet domain cannot fit a path */
	make_domain(dom, 255);
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_TOO_LONG);
	make_domain(dom, 256);
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_TOO_LONG);
	/* the no-bracket form counts as if it had its < > */
	make_domain(dom, 252);
	snprintf(path, sizeof(path), "a@%s", dom);
	ck_assert_int_eq(parse_str(path, MAILADDR_ALLOW_NO_BRACKETS, &a, &consumed), MAILADDR_OK);
	make_domain(dom, 253);
	snprintf(path, sizeof(path), "a@%s", dom);
	ck_assert_int_eq(parse_str(path, MAILADDR_ALLOW_NO_BRACKETS, &a, &consumed), MAILADDR_TOO_LONG);
	/* a source route counts toward the path, though it is dropped */
	make_domain(dom, 200);
	snprintf(route, sizeof(route), "<@%s:a@b.example>", dom);
	ck_assert_int_eq(parse_str(route, 0, &a, &consumed), MAILADDR_OK);
	make_domain(dom, 250);
	snprintf(route, sizeof(route), "<@%s:a@b.example>", dom);
	ck_assert_int_eq(parse_str(route, 0, &a, &consumed), MAILADDR_TOO_LONG);
	/* a long literal */
	memset(dom, '1', 300);
	dom[300] = '\0';
	snprintf(route, sizeof(route), "<a@[x:%s]>", dom);
	ck_assert_int_eq(parse_str(route, 0, &a, &consumed), MAILADDR_TOO_LONG);
}
END_TEST

START_TEST(test_domain_trailing_dot_limit)
{
	char dom[400], path[600];
	struct mailaddr a;
	size_t consumed;

	/* 251 + "." = 252 as given: fits; domain_lc loses the dot */
	make_domain(dom, 251);
	dom[251] = '.';
	dom[252] = '\0';
	snprintf(path, sizeof(path), "<a@%s>", dom);
	ck_assert_int_eq(parse_str(path, 0, &a, &consumed), MAILADDR_OK);
	ck_assert_str_eq(a.domain, dom);
	ck_assert_uint_eq(strlen(a.domain_lc), 251);
	ck_assert(!mailaddr_is_domain(dom, strlen(dom), false));
}
END_TEST

struct dom_row {
	const char *in;
	bool utf8;
	bool ok;
};

static const struct dom_row dom_rows[] = {
	{ "example.com", false, true },
	{ "a", false, true },
	{ "a-b.c-d", false, true },
	{ "xn--bcher-kva.example", false, true },
	{ "3com.example", false, true },
	{ "", false, false },
	{ ".", false, false },
	{ "example.com.", false, false },
	{ ".example.com", false, false },
	{ "a..b", false, false },
	{ "-a", false, false },
	{ "a-", false, false },
	{ "a_b", false, false },
	{ "a b", false, false },
	{ "192.0.2.1", false, false },
	{ "a.1", false, false },
	{ "[192.0.2.1]", false, false },
	{ "b\xc3\xbc" "cher.example", true, true },
	{ "b\xc3\xbc" "cher.example", false, false },
	{ "b\xc0\x80.example", true, false },
	{ "\xc3\xbc-.example", true, false },
};

START_TEST(test_is_domain)
{
	const struct dom_row *r = &dom_rows[_i];

	ck_assert_msg(mailaddr_is_domain(r->in, strlen(r->in), r->utf8) == r->ok, "row %d \"%s\"", _i,
	              show(r->in, strlen(r->in)));
}
END_TEST

static const struct dom_row lit_rows[] = {
	{ "[192.0.2.1]", false, true },
	{ "[IPv6:::1]", false, true },
	{ "[IPv6:2001:db8::1]", false, true },
	{ "[x-foo:bar]", false, true },
	{ "192.0.2.1", false, false },
	{ "[192.0.2.1", false, false },
	{ "192.0.2.1]", false, false },
	{ "[]", false, false },
	{ "[1.2.3.4.5]", false, false },
	{ "[IPv6:1.2.3.4]", false, false },
	{ "[IPv6:::1", false, false },
	{ "example.com", false, false },
};

START_TEST(test_is_address_literal)
{
	const struct dom_row *r = &lit_rows[_i];

	ck_assert_msg(mailaddr_is_address_literal(r->in, strlen(r->in)) == r->ok, "row %d \"%s\"", _i,
	              r->in);
}
END_TEST

/* The parser reads only (p, len): bytes past len must not matter. */
START_TEST(test_no_read_past_len)
{
	const char *s = "<a@b.example>";
	char *heap;
	struct mailaddr a;
	size_t consumed, n;
	const char *why;

	for (n = 0; n < strlen(s); n++) {
		heap = malloc(n ? n : 1);
		memcpy(heap, s, n);
		ck_assert_int_ne(mailaddr_parse_path(heap, n, 0, &a, &consumed, &why), MAILADDR_OK);
		free(heap);
	}
	heap = malloc(strlen(s));
	memcpy(heap, s, strlen(s));
	ck_assert_int_eq(mailaddr_parse_path(heap, strlen(s), 0, &a, &consumed, &why), MAILADDR_OK);
	free(heap);
}
END_TEST

/*
 * Seeded random paths from a hostile alphabet: no crash (ASan build), the
 * output always within its limits, and every accepted address parses again
 * to itself when put back in brackets.
 */
static unsigned long rng_state = 12345;

static unsigned
rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33);
}

/* Append the NUL-terminated t to in[*len], if it fits. */
static void
put(char *in, size_t size, size_t *len, const char *t)
{
	if (*len + strlen(t) < size) {
		memcpy(in + *len, t, strlen(t));
		*len += strlen(t);
	}
}

START_TEST(test_random_invariants)
{
	/* valid pieces, then a few random byte mutations */
	static const char *const routes[] = { "", "", "", "@r.example:", "@a.example,@b.example:", "@:" };
	static const char *const locals[] = {
		"user", "a.b", "\"q u\"", "\"a\\\"b\"", "x%y", "t!v", "\xc3\xbcser", "postmaster",
		"\"a@b\"", "", ".a", "a..b", "{#}",
	};
	static const char *const domains[] = {
		"@example.com", "@Example.COM.", "@[192.0.2.1]", "@[IPv6:::1]", "@[tag:x]",
		"@b\xc3\xbc.example", "@a-b.c", "", "@", "@a@b", "@192.0.2.1", "@x..y",
	};
	static const char mutations[] = "<>@\"\\.:,[] a-\x01\x7f\x80\xc3\xbc\xed";
	char in[120];
	struct mailaddr a, b;
	size_t consumed, c2, len, n, at;
	const char *why;
	int iter, accepted = 0, quoted = 0, literal = 0, route = 0, utf8 = 0;
	unsigned flags;
	char again[300];

	for (iter = 0; iter < 200000; iter++) {
		len = 0;
		if (rng() % 4)
			put(in, sizeof(in), &len, "<");
		put(in, sizeof(in), &len, routes[rng() % (sizeof(routes) / sizeof(routes[0]))]);
		put(in, sizeof(in), &len, locals[rng() % (sizeof(locals) / sizeof(locals[0]))]);
		put(in, sizeof(in), &len, domains[rng() % (sizeof(domains) / sizeof(domains[0]))]);
		if (rng() % 4)
			put(in, sizeof(in), &len, ">");
		if (rng() % 2)
			put(in, sizeof(in), &len, " SIZE=1");
		for (n = rng() % 2 ? rng() % 4 : 0; n > 0 && len > 0; n--) {
			at = rng() % len;
			switch (rng() % 3) {
			case 0:	/* replace */
				in[at] = mutations[rng() % (sizeof(mutations) - 1)];
				break;
			case 1:	/* delete */
				memmove(in + at, in + at + 1, len - at - 1);
				len--;
				break;
			default:	/* insert */
				if (len + 1 < sizeof(in)) {
					memmove(in + at + 1, in + at, len - at);
					in[at] = mutations[rng() % (sizeof(mutations) - 1)];
					len++;
				}
				break;
			}
		}
		flags = rng() % 16;
		if (mailaddr_parse_path(in, len, flags, &a, &consumed, &why) != MAILADDR_OK) {
			if (why == NULL)
				ck_abort_msg("\"%s\": error without why", show(in, len));
			continue;
		}
		/* if/ck_abort_msg: a passing ck_assert costs a pipe write in fork mode */
		if (consumed > len || strlen(a.addr) > MAILADDR_PATH_MAX - 2 ||
		    strlen(a.local) > MAILADDR_LOCAL_MAX || strlen(a.domain) > MAILADDR_DOMAIN_MAX)
			ck_abort_msg("\"%s\": out of limits", show(in, len));
		if (a.null)
			continue;
		snprintf(again, sizeof(again), "<%s>", a.addr);
		if (mailaddr_parse_path(again, strlen(again), flags, &b, &c2, &why) != MAILADDR_OK)
			ck_abort_msg("\"%s\" from \"%s\" does not parse again: %s",
			             show(again, strlen(again)), show(in, len), why);
		if (strcmp(a.addr, b.addr) != 0 || strcmp(a.domain_lc, b.domain_lc) != 0)
			ck_abort_msg("\"%s\": parses again differently", show(in, len));
		accepted++;
		quoted += a.quoted;
		literal += a.literal;
		route += a.had_route;
		utf8 += a.utf8;
	}
	/* the generator must reach the interesting paths */
	ck_assert_int_gt(accepted, 10000);
	ck_assert_int_gt(quoted, 1000);
	ck_assert_int_gt(literal, 1000);
	ck_assert_int_gt(route, 1000);
	ck_assert_int_gt(utf8, 1000);
}
END_TEST

static Suite *
mailaddr_suite(void)
{
	Suite *s = suite_create("mailaddr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_addr_rows, 0, (int)(sizeof(addr_rows) / sizeof(addr_rows[0])));
	tcase_add_test(tc, test_local_part_limit);
	tcase_add_test(tc, test_domain_limit);
	tcase_add_test(tc, test_label_limit);
	tcase_add_test(tc, test_path_limit);
	tcase_add_test(tc, test_domain_trailing_dot_limit);
	tcase_add_loop_test(tc, test_is_domain, 0, (int)(sizeof(dom_rows) / sizeof(dom_rows[0])));
	tcase_add_loop_test(tc, test_is_address_literal, 0, (int)(sizeof(lit_rows) / sizeof(lit_rows[0])));
	tcase_add_test(tc, test_no_read_past_len);
	tcase_add_test(tc, test_random_invariants);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mailaddr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
