/*
 * sendmail_args: the command line of sendmail (and of mailq and
 * newaliases, the same program under other names), with sendmail's
 * meaning of each flag (doc/sendmail.md lists them). Pure parsing: no
 * I/O, no configuration, so every row can be tested.
 *
 * Options may be bundled (-ti) and may come before or after the
 * recipients, as with GNU getopt; "--" ends them. An option's value may
 * be attached (-fbob) or the next argument (-f bob). -o options other
 * than -oi are accepted and ignored, as sendmail(8) and Postfix do.
 *
 * Ownership: the parsed struct borrows argv's strings (valid for the
 * program's life); recipients is an array the struct owns
 * (sendmail_args_free).
 */
#ifndef TERN_SENDMAIL_ARGS_H
#define TERN_SENDMAIL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* What the invocation asks for (-b MODE, -q, the program's name). */
enum sendmail_mode {
	SENDMAIL_MODE_DELIVER = 0,	/* -bm (default): read a message, queue it */
	SENDMAIL_MODE_SMTP,		/* -bs: SMTP on stdin/stdout */
	SENDMAIL_MODE_LIST,		/* -bp, mailq: list the queue */
	SENDMAIL_MODE_ALIASES,		/* -bi, -I, newaliases: rebuild alias_maps */
	SENDMAIL_MODE_FLUSH,		/* -q, -qR SITE, -qI ID: deliver the queue now */
	SENDMAIL_MODE_NOTHING,		/* -q with an interval: Postfix ignores it */
};

/* -N: RFC 3461 NOTIFY bits; 0 when not given (the server's default). */
#define SENDMAIL_NOTIFY_NEVER   0x01
#define SENDMAIL_NOTIFY_SUCCESS 0x02
#define SENDMAIL_NOTIFY_DELAY   0x04
#define SENDMAIL_NOTIFY_FAILURE 0x08

/* Longest -V envelope id (RFC 3461 section 4.4: 100 characters). */
#define SENDMAIL_ENVID_MAX 100

struct sendmail_args {
	enum sendmail_mode mode;
	bool extract;			/* -t: recipients from the headers */
	bool ignore_dots;		/* -i, -oi: a lone "." is text */
	bool verbose;			/* -v: show the SMTP dialogue on stderr */
	const char *sender;		/* -f / -r ADDR, or NULL ("" or "<>": null sender) */
	const char *full_name;		/* -F NAME, or NULL */
	const char *config;		/* -C FILE, or NULL */
	unsigned notify;		/* -N */
	const char *ret;		/* -R: "FULL" or "HDRS" (normalised), or NULL */
	const char *envid;		/* -V ENVID, or NULL */
	const char *body;		/* -B: "7BIT" or "8BITMIME" (normalised), or NULL */
	const char *flush_site;		/* -qR SITE */
	const char *flush_id;		/* -qI ID */
	const char **rcpts;		/* the command line's addresses (owned array) */
	size_t nrcpts;
};

/*
 * Parse argv (argv[0] decides the default mode: "mailq" lists, "newaliases"
 * rebuilds, anything else delivers). 0 on success; -1 with a one-line
 * reason in err (no "sendmail:" prefix, no newline) for a bad flag, a
 * missing value or a bad -N/-R/-B/-V value: the caller exits EX_USAGE.
 */
int sendmail_args_parse(int argc, char **argv, struct sendmail_args *a, char *err,
                        size_t errsz);
void sendmail_args_free(struct sendmail_args *a);

/* The program's name without directories ("sendmail" for argv[0] NULL). */
const char *sendmail_args_progname(const char *argv0);

#endif
