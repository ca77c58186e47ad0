/*
 * addr_resolve_test: config/addr_resolve.c. Table-driven over one set of
 * texthash: tables written to a temporary directory, with the password
 * database injected: address classes, virtual alias expansion (recursion,
 * self-reference, loops, limits, catch-all, extensions, case), the
 * classes' own checks (virtual alias and mailbox tables, local recipients),
 * alias expansion (lists, continuation lines, :include:, commands and
 * files with their rights, loops, forwarding), map failures (lmdb: files
 * that vanish or go bad) and the extension splitter.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/addr_resolve.h"
#include "config/config.h"
#include "config/map.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define TMP_TEMPLATE "/tmp/tern-addr-test-XXXXXX"
#define PATH_SIZE 512
#define TEXT_MAX (64 * 1024)
#define RENDER_MAX (256 * 1024)
#define DIAG_MAX (64 * 1024)

/* ---- the injected password database ---- */

struct test_user {
	const char *name;
	uid_t uid;
	gid_t gid;
};

static const struct test_user test_users[] = {
	{ "root", 0, 0 },
	{ "alice", 1001, 1001 },
	{ "bob", 1002, 1002 },
	{ "listowner", 1500, 1500 },
	{ "nobody", 65534, 65534 },
};

static unsigned test_pw_calls;

static enum addr_pw_result
test_pw_fill(const struct test_user *u, struct addr_pw *out)
{
	memset(out, 0, sizeof(*out));
	out->uid = u->uid;
	out->gid = u->gid;
	snprintf(out->name, sizeof(out->name), "%s", u->name);
	snprintf(out->home, sizeof(out->home), "/home/%s", u->name);
	snprintf(out->shell, sizeof(out->shell), "/bin/sh");
	return ADDR_PW_FOUND;
}

static enum addr_pw_result
test_by_name(void *ctx, const char *name, struct addr_pw *out)
{
	(void)ctx;
	test_pw_calls++;
	if (strcmp(name, "broken") == 0)
		return ADDR_PW_ERROR;
	for (size_t i = 0; i < NELEM(test_users); i++)
		if (strcmp(test_users[i].name, name) == 0)
			return test_pw_fill(&test_users[i], out);
	return ADDR_PW_NOTFOUND;
}

static enum addr_pw_result
test_by_uid(void *ctx, uid_t uid, struct addr_pw *out)
{
	static const struct test_user tester = { "tester", 0, 0 };

	(void)ctx;
	/* Run as another user than root, the test's files are that user's:
	 * let them count as root's, so the rows hold either way. */
	if (uid != 0 && uid == geteuid())
		return test_pw_fill(&tester, out);
	for (size_t i = 0; i < NELEM(test_users); i++)
		if (test_users[i].uid == uid)
			return test_pw_fill(&test_users[i], out);
	return ADDR_PW_NOTFOUND;
}

static const struct addr_userdb test_udb = { test_by_name, test_by_uid, NULL };

/* ---- files ---- */

static char test_dir[PATH_SIZE];

static void
dir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "%s", TMP_TEMPLATE);
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static void
dir_remove(void)
{
	char path[PATH_SIZE * 2];
	struct dirent *de;
	DIR *d = opendir(test_dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", test_dir, de->d_name);
		if (unlink(path) < 0)
			rmdir(path);
	}
	closedir(d);
	rmdir(test_dir);
}

static const char *
test_path(const char *name)
{
	static char path[PATH_SIZE * 2];

	snprintf(path, sizeof(path), "%s/%s", test_dir, name);
	return path;
}

/* Write name in the test directory; "@D" in text becomes the directory. */
static void
file_write(const char *name, const char *text)
{
	struct buf b;
	const char *p;
	FILE *f;

	buf_init(&b, TEXT_MAX * 4);
	for (p = text; *p != '\0'; p++) {
		if (p[0] == '@' && p[1] == 'D') {
			buf_append_str(&b, test_dir);
			p++;
		} else {
			buf_append_char(&b, *p);
		}
	}
	f = fopen(test_path(name), "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwrite(buf_data(&b), 1, buf_len(&b), f), buf_len(&b));
	ck_assert_int_eq(fclose(f), 0);
	chmod(test_path(name), 0644);
	buf_free(&b);
}

/* ---- the standard tables ---- */

static const char virtual_text[] =
	"info@valias.example         alice@example.org\n"
	"sales@valias.example        bob@example.org, carol@relay.example\n"
	"chain@valias.example        step1@valias.example\n"
	"step1@valias.example        step2@valias.example\n"
	"step2@valias.example        dave@other.net\n"
	"self@valias.example         self@valias.example, alice@example.org\n"
	"keep@other.net              keep@other.net archive@other.net\n"
	"loopa@valias.example        loopb@valias.example\n"
	"loopb@valias.example        loopa@valias.example\n"
	"dup@valias.example          alice@example.org, ALICE@example.org alice@Example.ORG\n"
	"info+special@valias.example special@other.net\n"
	"team@valias.example         staff\n"
	"webmaster                   alice\n"
	"fanout@valias.example       f1@other.net, f2@other.net, f3@other.net\n"
	"fanout4@valias.example      f1@other.net, f2@other.net, f3@other.net, f4@other.net\n"
	"@catchall.example           catcher@other.net\n"
	"@moved.example              @other.net\n"
	"quoted@valias.example       \"john doe\"@example.org\n"
	"tolist@valias.example       list\n";

static const char aliases_text[] =
	"postmaster: root\n"
	"root:       root, admin\n"
	"admin:      alice\n"
	"staff:      alice,\n"
	"            bob@example.org,\n"
	"  carol@relay.example\n"
	"list:       :include:@D/list.members\n"
	"vacation:   \"|/usr/bin/vacation alice\", alice\n"
	"archive:    /var/mail/archive\n"
	"loop1:      loop2\n"
	"loop2:      loop1\n"
	"external:   someone@other.net\n"
	"tovirtual:  sales@valias.example\n"
	"ghostalias: alice, ghost\n"
	"onlyghost:  ghost\n"
	"\"john doe\": alice\n"
	"bob+special: carol@relay.example\n"
	"missing:    :include:@D/no-such-file\n"
	"wwlist:     :include:@D/ww.members\n"
	"dirlist:    :include:@D\n"
	"userlist:   :include:@D/user.members\n"
	"nested:     :include:@D/nested.members\n"
	"empty:      :include:@D/empty.members\n"
	"brokenuser: broken\n"
	"selfinc:    :include:@D/self.members\n"
	"badinc:     :include:@D/bad.members\n";

static const char list_members[] =
	"# the list\n"
	"alice\n"
	"bob, carol@relay.example\n"
	"|/bin/cat\n";

static const char vmailbox_text[] =
	"user1@vmbox.example   vmbox.example/user1/\n"
	"@vcatch.example       catchall\n";

static const char *const base_config =
	"myhostname = mx.example.org\n"
	"mydomain = example.org\n"
	"myorigin = example.org\n"
	"mydestination = example.org, localhost, mx.example.org\n"
	"virtual_alias_domains = valias.example, catchall.example, moved.example\n"
	"virtual_mailbox_domains = vmbox.example, vcatch.example\n"
	"relay_domains = relay.example\n"
	"recipient_delimiter = +\n"
	"virtual_alias_maps = texthash:@D/virtual\n"
	"virtual_mailbox_maps = texthash:@D/vmailbox\n"
	"alias_maps = texthash:@D/aliases\n"
	"allow_mail_to_commands = yes\n"
	"allow_mail_to_files = yes\n";

static struct config *fx_cfg;
static struct addr_resolver *fx_r;

static void
fx_files(void)
{
	file_write("virtual", virtual_text);
	file_write("aliases", aliases_text);
	file_write("vmailbox", vmailbox_text);
	file_write("list.members", list_members);
	file_write("ww.members", "alice\n");
	chmod(test_path("ww.members"), 0666);
	file_write("user.members", "|/bin/true\n/tmp/user-file\n");
	file_write("nested.members", "bob, :include:@D/list.members\n");
	file_write("empty.members", "# nobody here\n");
	file_write("self.members", ":include:@D/self.members, alice\n");
	file_write("bad.members", "alice\n:include:relative/path\n");
}

/* Load base_config plus extra (later lines win) and open a resolver. */
static struct addr_resolver *
fx_open_config(const char *extra)
{
	struct buf diag;
	char name[64];

	snprintf(name, sizeof(name), "main.cf");
	{
		struct buf text;

		buf_init(&text, TEXT_MAX);
		buf_append_str(&text, base_config);
		buf_append_str(&text, extra);
		file_write(name, buf_cstr(&text));
		buf_free(&text);
	}
	buf_init(&diag, DIAG_MAX);
	fx_cfg = config_load(test_path(name), &diag);
	ck_assert_msg(fx_cfg != NULL, "config: %s", buf_cstr(&diag));
	fx_r = addr_resolver_new(fx_cfg, &test_udb, &diag);
	ck_assert_msg(fx_r != NULL, "resolver: %s", buf_cstr(&diag));
	buf_free(&diag);
	return fx_r;
}

static void
fx_open(const char *extra)
{
	dir_make();
	fx_files();
	fx_open_config(extra);
}

static void
fx_close(void)
{
	addr_resolver_free(fx_r);
	config_free(fx_cfg);
	fx_r = NULL;
	fx_cfg = NULL;
	dir_remove();
}

/* ---- rendering an expansion ---- */

/* "local:a@b | |cmd 65534:65534 | >/path 1:1 | !x@y 5.1.1 text", @D for
 * the test directory. */
static const char *
render(const struct addr_expansion *x)
{
	static char out[RENDER_MAX];
	struct buf b;
	size_t dl = strlen(test_dir);

	buf_init(&b, RENDER_MAX - 1);
	for (size_t i = 0; i < x->n; i++) {
		const struct addr_target *t = &x->v[i];

		if (i > 0)
			buf_append_str(&b, " | ");
		switch (t->kind) {
		case ADDR_TARGET_ADDRESS:
			buf_append_printf(&b, "%s:%s", addr_class_name(t->klass), t->value);
			break;
		case ADDR_TARGET_COMMAND:
			buf_append_printf(&b, "|%s %ld:%ld", t->value, (long)t->uid, (long)t->gid);
			break;
		case ADDR_TARGET_FILE:
			buf_append_printf(&b, ">%s %ld:%ld", t->value, (long)t->uid, (long)t->gid);
			break;
		case ADDR_TARGET_ERROR:
			ck_assert_int_eq(t->code, 550);
			buf_append_printf(&b, "!%s %s %s", t->value, t->dsn, t->text);
			break;
		}
	}
	/* Put "@D" back for the directory, so rows do not depend on it. */
	{
		const char *s = buf_cstr(&b), *hit;
		size_t o = 0;

		while ((hit = dl > 0 ? strstr(s, test_dir) : NULL) != NULL && o + (size_t)(hit - s) + 3 < sizeof(out)) {
			memcpy(out + o, s, (size_t)(hit - s));
			o += (size_t)(hit - s);
			memcpy(out + o, "@D", 2);
			o += 2;
			s = hit + dl;
		}
		snprintf(out + o, sizeof(out) - o, "%s", s);
	}
	buf_free(&b);
	return out;
}

struct row {
	const char *addr;
	enum addr_verdict verdict;
	const char *expansion;		/* render() of the result */
	const char *reply;		/* the reply, exactly ("" for ADDR_OK) */
};

static void
check_row(struct addr_resolver *r, const struct row *row)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];
	enum addr_verdict v;

	addr_expansion_init(&x);
	v = addr_resolve(r, row->addr, &x, reply, sizeof(reply));
	ck_assert_msg(v == row->verdict, "%s: verdict %d, expected %d (%s; %s; warning %s)",
	              row->addr, v, row->verdict, reply, render(&x), x.warning);
	ck_assert_msg(strcmp(render(&x), row->expansion) == 0, "%s:\n got      %s\n expected %s",
	              row->addr, render(&x), row->expansion);
	ck_assert_msg(strcmp(reply, row->reply) == 0, "%s:\n got      %s\n expected %s", row->addr,
	              reply, row->reply);
	addr_expansion_free(&x);
}

/* ---- rule 1: classes ---- */

static const struct row class_rows[] = {
	{ "alice@example.org", ADDR_OK, "local:alice@example.org", "" },
	{ "ALICE@Example.ORG.", ADDR_OK, "local:ALICE@Example.ORG.", "" },
	{ "alice@localhost", ADDR_OK, "local:alice@localhost", "" },
	/* no domain: @$myorigin, as cleanup(8) does */
	{ "alice", ADDR_OK, "local:alice@example.org", "" },
	{ "Postmaster", ADDR_OK, "local:root@example.org | local:alice@example.org", "" },
	{ "someone@relay.example", ADDR_OK, "relay:someone@relay.example", "" },
	{ "someone@RELAY.example", ADDR_OK, "relay:someone@RELAY.example", "" },
	{ "someone@other.net", ADDR_OK, "default:someone@other.net", "" },
	{ "\"a@b\"@other.net", ADDR_OK, "default:\"a@b\"@other.net", "" },
	{ "user1@vmbox.example", ADDR_OK, "virtual_mailbox:user1@vmbox.example", "" },
	{ "USER1@vmbox.example", ADDR_OK, "virtual_mailbox:USER1@vmbox.example", "" },
	/* virtual_mailbox_maps: the extension dropped, then @domain */
	{ "user1+tag@vmbox.example", ADDR_OK, "virtual_mailbox:user1+tag@vmbox.example", "" },
	{ "anyone@vcatch.example", ADDR_OK, "virtual_mailbox:anyone@vcatch.example", "" },
	{ "double-bounce@mx.example.org", ADDR_OK, "local:double-bounce@mx.example.org", "" },
	{ "", ADDR_REFUSED, "", "550 5.1.3 <>: Recipient address rejected: Bad recipient address syntax" },
};

START_TEST(test_classes)
{
	fx_open("");
	check_row(fx_r, &class_rows[_i]);
	fx_close();
}
END_TEST

/* A domain in several lists: Postfix's precedence, and the check's lines. */
START_TEST(test_class_precedence)
{
	static const char *const domains[] = { "dup.example", "DUP.example.", "va.example",
		"vm.example", "rl.example", "nowhere.example", "" };
	static const enum addr_class classes[] = { ADDR_CLASS_LOCAL, ADDR_CLASS_LOCAL,
		ADDR_CLASS_VIRTUAL_ALIAS, ADDR_CLASS_VIRTUAL_MAILBOX, ADDR_CLASS_RELAY,
		ADDR_CLASS_DEFAULT, ADDR_CLASS_LOCAL };
	struct buf w;
	char err[256];
	enum addr_class k;

	dir_make();
	fx_files();
	file_write("vdomains", "example.org anything\n");
	fx_open_config("mydestination = dup.example, example.org\n"
	        "virtual_alias_domains = dup.example, va.example, texthash:@D/vdomains\n"
	        "virtual_mailbox_domains = dup.example, va.example, vm.example\n"
	        "relay_domains = dup.example, vm.example, rl.example\n");
	for (size_t i = 0; i < NELEM(domains); i++) {
		ck_assert_int_eq(addr_resolver_class(fx_r, domains[i], &k, err, sizeof(err)), 0);
		ck_assert_msg(k == classes[i], "%s: %s", domains[i], addr_class_name(k));
	}
	buf_init(&w, DIAG_MAX);
	ck_assert_int_eq(addr_resolver_check(fx_r, &w), 8);
	ck_assert_str_eq(buf_cstr(&w),
	    "do not list domain dup.example in BOTH mydestination and virtual_alias_domains\n"
	    "do not list domain example.org in BOTH mydestination and virtual_alias_domains\n"
	    "do not list domain dup.example in BOTH mydestination and virtual_mailbox_domains\n"
	    "do not list domain dup.example in BOTH virtual_alias_domains and virtual_mailbox_domains\n"
	    "do not list domain va.example in BOTH virtual_alias_domains and virtual_mailbox_domains\n"
	    "do not list domain dup.example in BOTH virtual_alias_domains and relay_domains\n"
	    "do not list domain dup.example in BOTH virtual_mailbox_domains and relay_domains\n"
	    "do not list domain vm.example in BOTH virtual_mailbox_domains and relay_domains\n");
	buf_free(&w);
	fx_close();
}
END_TEST

/* virtual_alias_domains = $virtual_alias_maps (the default): a domain that
 * is a key of the table is a virtual alias domain. */
START_TEST(test_virtual_alias_domains_default)
{
	static const struct row rows[] = {
		{ "info@valias.example", ADDR_OK, "local:alice@example.org", "" },
		{ "x@valias.example", ADDR_UNKNOWN, "!x@valias.example 5.1.1 User unknown in virtual alias table",
		  "550 5.1.1 <x@valias.example>: Recipient address rejected: User unknown in virtual alias table" },
		{ "x@catchall.example", ADDR_OK, "default:catcher@other.net", "" },
		{ "x@other.net", ADDR_OK, "default:x@other.net", "" },
	};
	struct buf text;

	dir_make();
	fx_files();
	buf_init(&text, TEXT_MAX);
	buf_append_printf(&text, "%svalias.example anything\n", virtual_text);
	file_write("virtual", buf_cstr(&text));
	buf_free(&text);
	fx_open_config("virtual_alias_domains = $virtual_alias_maps\n");
	for (size_t i = 0; i < NELEM(rows); i++)
		check_row(fx_r, &rows[i]);
	fx_close();
}
END_TEST

/* ---- rules 2 and 3: virtual_alias_maps ---- */

static const struct row virtual_rows[] = {
	{ "info@valias.example", ADDR_OK, "local:alice@example.org", "" },
	{ "INFO@VALIAS.EXAMPLE", ADDR_OK, "local:alice@example.org", "" },
	{ "sales@valias.example", ADDR_OK, "local:bob@example.org | relay:carol@relay.example", "" },
	/* recursion */
	{ "chain@valias.example", ADDR_OK, "default:dave@other.net", "" },
	/* maps to itself and more: itself is final (and, in a virtual alias
	 * domain, unknown), the rest expanded */
	{ "self@valias.example", ADDR_OK,
	  "!self@valias.example 5.1.1 User unknown in virtual alias table | local:alice@example.org", "" },
	{ "keep@other.net", ADDR_OK, "default:keep@other.net | default:archive@other.net", "" },
	/* a -> b -> a: the nesting limit, a temporary failure (Postfix) */
	{ "loopa@valias.example", ADDR_TEMPFAIL, "",
	  "451 4.6.0 <loopa@valias.example>: Alias expansion error" },
	/* duplicates removed without regard to case */
	{ "dup@valias.example", ADDR_OK, "local:alice@example.org", "" },
	/* the extension: propagated when matched without it, not when matched */
	{ "info+news@valias.example", ADDR_OK, "local:alice+news@example.org", "" },
	{ "info+special@valias.example", ADDR_OK, "default:special@other.net", "" },
	/* catch-all, and @otherdomain keeping the user and the extension */
	{ "anyone@catchall.example", ADDR_OK, "default:catcher@other.net", "" },
	{ "joe+tag@moved.example", ADDR_OK, "default:joe+tag@other.net", "" },
	/* a bare key only for our own domains */
	{ "webmaster@example.org", ADDR_OK, "local:alice@example.org", "" },
	/* "alice" gets @$myorigin, whatever domain matched */
	{ "webmaster@localhost", ADDR_OK, "local:alice@example.org", "" },
	{ "webmaster@other.net", ADDR_OK, "default:webmaster@other.net", "" },
	/* results are local aliases: expanded by alias_maps */
	{ "team@valias.example", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	{ "quoted@valias.example", ADDR_OK, "local:alice@example.org", "" },
	/* rule 3: unknown in a virtual alias domain */
	{ "nobody@valias.example", ADDR_UNKNOWN,
	  "!nobody@valias.example 5.1.1 User unknown in virtual alias table",
	  "550 5.1.1 <nobody@valias.example>: Recipient address rejected: User unknown in virtual alias table" },
	/* rule 4: unknown in a virtual mailbox domain */
	{ "nobody@vmbox.example", ADDR_UNKNOWN,
	  "!nobody@vmbox.example 5.1.1 User unknown in virtual mailbox table",
	  "550 5.1.1 <nobody@vmbox.example>: Recipient address rejected: User unknown in virtual mailbox table" },
	{ "fanout@valias.example", ADDR_OK,
	  "default:f1@other.net | default:f2@other.net | default:f3@other.net", "" },
};

START_TEST(test_virtual)
{
	fx_open("");
	check_row(fx_r, &virtual_rows[_i]);
	fx_close();
}
END_TEST

START_TEST(test_virtual_limits)
{
	static const struct row rows[] = {
		/* recursion limit 3: two rewrites, then a third lookup */
		{ "step1@valias.example", ADDR_OK, "default:dave@other.net", "" },
		{ "chain@valias.example", ADDR_TEMPFAIL, "",
		  "451 4.6.0 <chain@valias.example>: Alias expansion error" },
		/* expansion limit 3: three results, not four */
		{ "fanout@valias.example", ADDR_OK,
		  "default:f1@other.net | default:f2@other.net | default:f3@other.net", "" },
		{ "fanout4@valias.example", ADDR_TEMPFAIL, "",
		  "451 4.6.0 <fanout4@valias.example>: Alias expansion error" },
	};
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];

	fx_open("virtual_alias_recursion_limit = 3\nvirtual_alias_expansion_limit = 3\n");
	for (size_t i = 0; i < NELEM(rows); i++)
		check_row(fx_r, &rows[i]);
	addr_expansion_init(&x);
	ck_assert_int_eq(addr_resolve(fx_r, "chain@valias.example", &x, reply, sizeof(reply)),
	                 ADDR_TEMPFAIL);
	ck_assert_str_eq(x.warning, "unreasonable virtual_alias_maps map nesting for chain@valias.example");
	ck_assert_int_eq(addr_resolve(fx_r, "fanout4@valias.example", &x, reply, sizeof(reply)),
	                 ADDR_TEMPFAIL);
	ck_assert_str_eq(x.warning,
	                 "unreasonable virtual_alias_maps map expansion size for fanout4@valias.example");
	addr_expansion_free(&x);
	fx_close();
}
END_TEST

/* ---- rule 5: alias_maps ---- */

static const struct row alias_rows[] = {
	/* an alias that includes itself: the mailbox, once */
	{ "root@example.org", ADDR_OK, "local:root@example.org | local:alice@example.org", "" },
	{ "postmaster@example.org", ADDR_OK, "local:root@example.org | local:alice@example.org", "" },
	/* a list over continuation lines, local and remote members */
	{ "staff@example.org", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	{ "STAFF@EXAMPLE.ORG", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	/* found without the extension: not propagated (alias is not in
	 * propagate_unmatched_extensions by default) */
	{ "staff+x@example.org", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	{ "bob+special@example.org", ADDR_OK, "relay:carol@relay.example", "" },
	/* a user's extension stays on the final address */
	{ "alice+tag@example.org", ADDR_OK, "local:alice+tag@example.org", "" },
	{ "\"John Doe\"@example.org", ADDR_OK, "local:alice@example.org", "" },
	/* :include:, with a command (root-owned: default_privs) */
	{ "list@example.org", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example | "
	  "|/bin/cat 65534:65534", "" },
	{ "nested@example.org", ADDR_OK,
	  "local:bob@example.org | local:alice@example.org | relay:carol@relay.example | "
	  "|/bin/cat 65534:65534", "" },
	{ "vacation@example.org", ADDR_OK,
	  "|/usr/bin/vacation alice 65534:65534 | local:alice@example.org", "" },
	{ "archive@example.org", ADDR_OK, ">/var/mail/archive 65534:65534", "" },
	/* an alias to a remote address, and to a virtual alias */
	{ "external@example.org", ADDR_OK, "default:someone@other.net", "" },
	{ "tovirtual@example.org", ADDR_OK, "local:bob@example.org | relay:carol@relay.example", "" },
	/* a member that is nobody: it bounces, the rest is delivered */
	{ "ghostalias@example.org", ADDR_OK,
	  "local:alice@example.org | !ghost@example.org 5.1.1 unknown user: \"ghost\"", "" },
	{ "onlyghost@example.org", ADDR_UNKNOWN, "!ghost@example.org 5.1.1 unknown user: \"ghost\"",
	  "550 5.1.1 <onlyghost@example.org>: Recipient address rejected: unknown user: \"ghost\"" },
	/* a -> b -> a: local(8)'s loop limit, permanent */
	{ "loop1@example.org", ADDR_REFUSED,
	  "!loop2@example.org 5.4.6 alias database loop for loop2",
	  "550 5.4.6 <loop1@example.org>: Recipient address rejected: alias database loop for loop2" },
	/* not an alias, not a user */
	{ "ghost@example.org", ADDR_UNKNOWN,
	  "!ghost@example.org 5.1.1 User unknown in local recipient table",
	  "550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown in local recipient table" },
	{ "ghost+x@example.org", ADDR_UNKNOWN,
	  "!ghost+x@example.org 5.1.1 User unknown in local recipient table",
	  "550 5.1.1 <ghost+x@example.org>: Recipient address rejected: User unknown in local recipient table" },
	/* broken :include: files: Postfix's words, 5.3.5 */
	{ "missing@example.org", ADDR_REFUSED,
	  "!missing@example.org 5.3.5 mail system configuration error",
	  "550 5.3.5 <missing@example.org>: Recipient address rejected: mail system configuration error" },
	{ "wwlist@example.org", ADDR_REFUSED,
	  "!wwlist@example.org 5.3.5 mail system configuration error",
	  "550 5.3.5 <wwlist@example.org>: Recipient address rejected: mail system configuration error" },
	{ "dirlist@example.org", ADDR_REFUSED,
	  "!dirlist@example.org 5.3.5 mail system configuration error",
	  "550 5.3.5 <dirlist@example.org>: Recipient address rejected: mail system configuration error" },
	/* an :include: file that includes itself: read once */
	{ "selfinc@example.org", ADDR_OK, "local:alice@example.org", "" },
	/* a syntax error in an :include: file: what came before stays */
	{ "badinc@example.org", ADDR_OK,
	  "local:alice@example.org | !badinc@example.org 5.3.5 mail system configuration error", "" },
	/* an :include: file with no address: nothing to deliver, accepted */
	{ "empty@example.org", ADDR_OK, "", "" },
	/* the password database cannot answer */
	{ "brokenuser@example.org", ADDR_TEMPFAIL, "",
	  "451 4.3.0 <brokenuser@example.org>: Temporary lookup failure" },
	{ "tolist@valias.example", ADDR_OK,
	  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example | "
	  "|/bin/cat 65534:65534", "" },
};

START_TEST(test_aliases)
{
	fx_open("");
	check_row(fx_r, &alias_rows[_i]);
	fx_close();
}
END_TEST

/* A command or file target names the alias whose expansion holds it
 * (what smtpd stores and the local agent resolves again), and is found
 * there by addr_expansion_find(). */
START_TEST(test_target_owner)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];
	const struct addr_target *t;

	fx_open("");
	addr_expansion_init(&x);
	/* nested -> :include: list.members -> |/bin/cat: the owner is the
	 * alias whose value holds the :include:. */
	ck_assert_int_eq(addr_resolve(fx_r, "Nested@Example.org", &x, reply, sizeof(reply)), ADDR_OK);
	t = addr_expansion_find(&x, ADDR_TARGET_COMMAND, "/bin/cat");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->owner, "Nested@Example.org");	/* as written */
	ck_assert_ptr_null(addr_expansion_find(&x, ADDR_TARGET_FILE, "/bin/cat"));
	ck_assert_ptr_null(addr_expansion_find(&x, ADDR_TARGET_COMMAND, "/bin/ca"));
	for (size_t i = 0; i < x.n; i++)
		if (x.v[i].kind == ADDR_TARGET_ADDRESS)
			ck_assert_ptr_null(x.v[i].owner);
	/* The owner resolved again gives the same target. */
	ck_assert_int_eq(addr_resolve(fx_r, "nested@example.org", &x, reply, sizeof(reply)), ADDR_OK);
	ck_assert_ptr_nonnull(addr_expansion_find(&x, ADDR_TARGET_COMMAND, "/bin/cat"));
	ck_assert_int_eq(addr_resolve(fx_r, "archive@example.org", &x, reply, sizeof(reply)), ADDR_OK);
	t = addr_expansion_find(&x, ADDR_TARGET_FILE, "/var/mail/archive");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->owner, "archive@example.org");
	addr_expansion_free(&x);
	fx_close();
}
END_TEST

START_TEST(test_alias_warnings)
{
	static const struct {
		const char *addr, *warning;
	} rows[] = {
		{ "missing@example.org", "cannot open include file @D/no-such-file: No such file or directory" },
		{ "wwlist@example.org", ":include: file @D/ww.members is world writable" },
		{ "dirlist@example.org", ":include: file @D is not a regular file" },
		{ "loop1@example.org", "alias database loop for loop2" },
		{ "brokenuser@example.org", "password database lookup of \"broken\" failed" },
		{ "badinc@example.org",
		  "@D/bad.members: :include: needs an absolute path, in the expansion of badinc@example.org" },
		{ "alice@example.org", "" },
	};
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX], want[PATH_SIZE * 2];

	fx_open("");
	addr_expansion_init(&x);
	for (size_t i = 0; i < NELEM(rows); i++) {
		const char *d = strstr(rows[i].warning, "@D");

		if (d != NULL)
			snprintf(want, sizeof(want), "%.*s%s%s", (int)(d - rows[i].warning),
			         rows[i].warning, test_dir, d + 2);
		else
			snprintf(want, sizeof(want), "%s", rows[i].warning);
		(void)addr_resolve(fx_r, rows[i].addr, &x, reply, sizeof(reply));
		ck_assert_msg(strcmp(x.warning, want) == 0, "%s: %s", rows[i].addr, x.warning);
	}
	addr_expansion_free(&x);
	fx_close();
}
END_TEST

/* A user's target carries the user's uid and gid. */
START_TEST(test_user_rights)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];

	fx_open("");
	addr_expansion_init(&x);
	ck_assert_int_eq(addr_resolve(fx_r, "Bob+Tag@example.org", &x, reply, sizeof(reply)), ADDR_OK);
	ck_assert_uint_eq(x.n, 1);
	ck_assert_uint_eq(x.deliverable, 1);
	ck_assert_int_eq(x.v[0].kind, ADDR_TARGET_ADDRESS);
	ck_assert_int_eq(x.v[0].klass, ADDR_CLASS_LOCAL);
	ck_assert_str_eq(x.v[0].value, "Bob+Tag@example.org");
	ck_assert_int_eq(x.v[0].uid, 1002);
	ck_assert_int_eq(x.v[0].gid, 1002);
	ck_assert_str_eq(reply, "");
	/* a remote address carries none */
	ck_assert_int_eq(addr_resolve(fx_r, "x@other.net", &x, reply, sizeof(reply)), ADDR_OK);
	ck_assert_int_eq(x.v[0].uid, 0);
	addr_expansion_free(&x);
	fx_close();
}
END_TEST

/* Commands and files refused: 5.7.1, per target. */
START_TEST(test_alias_refused)
{
	static const struct row rows[] = {
		{ "vacation@example.org", ADDR_OK,
		  "!vacation@example.org 5.7.1 mail to command is restricted | local:alice@example.org", "" },
		{ "archive@example.org", ADDR_REFUSED,
		  "!archive@example.org 5.7.1 mail to file is restricted",
		  "550 5.7.1 <archive@example.org>: Recipient address rejected: mail to file is restricted" },
		{ "list@example.org", ADDR_OK,
		  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example | "
		  "!list@example.org 5.7.1 mail to command is restricted", "" },
	};

	fx_open("allow_mail_to_commands = no\nallow_mail_to_files = no\n");
	for (size_t i = 0; i < NELEM(rows); i++)
		check_row(fx_r, &rows[i]);
	fx_close();
}
END_TEST

/* The rights of commands and files: the alias map's owner, the :include:
 * file's owner under a root-owned alias, default_privs for root. */
START_TEST(test_alias_rights)
{
	static const struct row root_rows[] = {
		/* an :include: file owned by alice, in a root-owned alias */
		{ "userlist@example.org", ADDR_OK, "|/bin/true 1001:1001 | >/tmp/user-file 1001:1001", "" },
	};
	static const struct row user_rows[] = {
		/* the alias map owned by listowner: its rights, even for an
		 * :include: file someone else owns */
		{ "vacation@example.org", ADDR_OK,
		  "|/usr/bin/vacation alice 1500:1500 | local:alice@example.org", "" },
		{ "userlist@example.org", ADDR_OK, "|/bin/true 1500:1500 | >/tmp/user-file 1500:1500", "" },
	};
	static const struct row unknown_rows[] = {
		{ "vacation@example.org", ADDR_TEMPFAIL, "",
		  "451 4.3.0 <vacation@example.org>: cannot find alias database owner" },
		/* no command or file: the owner does not matter */
		{ "staff@example.org", ADDR_OK,
		  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	};

	if (geteuid() != 0)
		return;	/* chown(2) needs root */
	dir_make();
	fx_files();
	ck_assert_int_eq(chown(test_path("user.members"), 1001, 1001), 0);
	fx_open_config("");
	for (size_t i = 0; i < NELEM(root_rows); i++)
		check_row(fx_r, &root_rows[i]);
	addr_resolver_free(fx_r);
	config_free(fx_cfg);
	ck_assert_int_eq(chown(test_path("aliases"), 1500, 1500), 0);
	fx_open_config("");
	for (size_t i = 0; i < NELEM(user_rows); i++)
		check_row(fx_r, &user_rows[i]);
	ck_assert_int_eq(chown(test_path("aliases"), 4242, 4242), 0);
	for (size_t i = 0; i < NELEM(unknown_rows); i++)
		check_row(fx_r, &unknown_rows[i]);
	fx_close();
}
END_TEST

/* A resolver for a configuration of its own, in the test directory:
 * NULL, with diag holding why, when it cannot be made. */
static struct addr_resolver *
resolver_try(const char *text, struct config **cfg, struct buf *diag)
{
	file_write("try.cf", text);
	*cfg = config_load(test_path("try.cf"), diag);
	ck_assert_msg(*cfg != NULL, "%s", buf_cstr(diag));
	return addr_resolver_new(*cfg, &test_udb, diag);
}

/* default_privs: used for root's aliases, looked up at start when
 * commands or files are allowed, never root. */
START_TEST(test_default_privs)
{
	static const struct {
		const char *config, *diag;
	} bad[] = {
		{ "default_privs = nosuchuser\nallow_mail_to_files = yes\n",
		  "default_privs: unknown user \"nosuchuser\"\n" },
		{ "default_privs = root\nallow_mail_to_commands = yes\n",
		  "default_privs: user \"root\" is privileged (uid or gid 0)\n" },
		{ "default_privs = broken\nallow_mail_to_commands = yes\n",
		  "default_privs: cannot look up user \"broken\"\n" },
		/* nothing to run: not looked up */
		{ "default_privs = nosuchuser\n", NULL },
	};
	struct config *cfg;
	struct addr_resolver *r;
	struct buf diag;

	fx_open("default_privs = alice\n");
	check_row(fx_r, &(struct row){ "archive@example.org", ADDR_OK,
	                               ">/var/mail/archive 1001:1001", "" });
	buf_init(&diag, DIAG_MAX);
	for (size_t i = 0; i < NELEM(bad); i++) {
		buf_reset(&diag);
		r = resolver_try(bad[i].config, &cfg, &diag);
		if (bad[i].diag == NULL) {
			ck_assert_msg(r != NULL, "%s", buf_cstr(&diag));
		} else {
			ck_assert_ptr_null(r);
			ck_assert_str_eq(buf_cstr(&diag), bad[i].diag);
		}
		addr_resolver_free(r);
		config_free(cfg);
	}
	buf_free(&diag);
	fx_close();
}
END_TEST

/* propagate_unmatched_extensions = alias, include. */
START_TEST(test_alias_extension)
{
	static const struct row rows[] = {
		{ "staff+x@example.org", ADDR_OK,
		  "local:alice+x@example.org | local:bob+x@example.org | relay:carol+x@relay.example", "" },
		{ "list+y@example.org", ADDR_OK,
		  "local:alice+y@example.org | local:bob+y@example.org | relay:carol+y@relay.example | "
		  "|/bin/cat 65534:65534", "" },
		/* virtual is gone from the list: no propagation there */
		{ "info+news@valias.example", ADDR_OK, "local:alice@example.org", "" },
	};

	fx_open("propagate_unmatched_extensions = alias, include\n");
	for (size_t i = 0; i < NELEM(rows); i++)
		check_row(fx_r, &rows[i]);
	fx_close();
}
END_TEST

/* local_recipient_maps, and local_transport other than local(8). */
START_TEST(test_local_recipient_maps)
{
	static const struct row empty_rows[] = {
		/* no smtpd check: accepted, and local(8)'s own words for the
		 * bounce the local agent makes (Postfix accepts, then bounces) */
		{ "ghost@example.org", ADDR_OK, "!ghost@example.org 5.1.1 unknown user: \"ghost\"", "" },
		{ "staff@example.org", ADDR_OK,
		  "local:alice@example.org | local:bob@example.org | relay:carol@relay.example", "" },
	};
	static const struct row map_rows[] = {
		/* listed, but neither an alias nor a user: local(8) refuses */
		{ "carol@example.org", ADDR_UNKNOWN, "!carol@example.org 5.1.1 unknown user: \"carol\"",
		  "550 5.1.1 <carol@example.org>: Recipient address rejected: unknown user: \"carol\"" },
		/* a user, but not listed */
		{ "alice@example.org", ADDR_UNKNOWN,
		  "!alice@example.org 5.1.1 User unknown in local recipient table",
		  "550 5.1.1 <alice@example.org>: Recipient address rejected: User unknown in local recipient table" },
		/* rewritten by a virtual alias: local(8) decides, not smtpd */
		{ "info@valias.example", ADDR_OK, "local:alice@example.org", "" },
		{ "bob@localhost", ADDR_OK, "local:bob@localhost", "" },
	};
	static const struct row lmtp_rows[] = {
		/* alias_maps are local(8)'s: not applied, nor the passwd rule */
		{ "staff@example.org", ADDR_OK, "local:staff@example.org", "" },
		{ "alice+x@example.org", ADDR_OK, "local:alice+x@example.org", "" },
		{ "ghost@example.org", ADDR_UNKNOWN,
		  "!ghost@example.org 5.1.1 User unknown in local recipient table",
		  "550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown in local recipient table" },
	};

	fx_open("local_recipient_maps =\n");
	for (size_t i = 0; i < NELEM(empty_rows); i++)
		check_row(fx_r, &empty_rows[i]);
	addr_resolver_free(fx_r);
	config_free(fx_cfg);
	/* The local part alone matches our own domains, as in Postfix. */
	file_write("lrm", "carol@example.org ok\nbob ok\n");
	fx_open_config("local_recipient_maps = texthash:@D/lrm\n");
	for (size_t i = 0; i < NELEM(map_rows); i++)
		check_row(fx_r, &map_rows[i]);
	addr_resolver_free(fx_r);
	config_free(fx_cfg);
	fx_open_config("local_transport = lmtp:unix:/run/dovecot/lmtp\n");
	for (size_t i = 0; i < NELEM(lmtp_rows); i++)
		check_row(fx_r, &lmtp_rows[i]);
	fx_close();
}
END_TEST

/* The most targets one recipient may have. */
START_TEST(test_targets_limit)
{
	struct addr_expansion x;
	char reply[ADDR_REPLY_MAX];
	struct buf text;

	dir_make();
	fx_files();
	buf_init(&text, 1024 * 1024);
	for (int i = 0; i < ADDR_TARGETS_MAX; i++)
		buf_append_printf(&text, "u%d@other.net\n", i);
	file_write("big.members", buf_cstr(&text));
	buf_append_str(&text, "one-more@other.net\n");
	file_write("huge.members", buf_cstr(&text));
	buf_free(&text);
	file_write("aliases", "big: :include:@D/big.members\nhuge: :include:@D/huge.members\n");
	fx_open_config("");
	addr_expansion_init(&x);
	ck_assert_int_eq(addr_resolve(fx_r, "big@example.org", &x, reply, sizeof(reply)), ADDR_OK);
	ck_assert_uint_eq(x.n, ADDR_TARGETS_MAX);
	ck_assert_uint_eq(x.deliverable, ADDR_TARGETS_MAX);
	ck_assert_int_eq(addr_resolve(fx_r, "huge@example.org", &x, reply, sizeof(reply)),
	                 ADDR_TEMPFAIL);
	ck_assert_str_eq(reply, "451 4.6.0 <huge@example.org>: Alias expansion error");
	ck_assert_uint_eq(x.n, 0);
	addr_expansion_free(&x);
	fx_close();
}
END_TEST

/* ---- rule 7: tables that cannot be read ---- */

/* Build an lmdb: table from text (aliases format when aliases). */
static void
lmdb_build(const char *name, const char *text, bool aliases)
{
	struct buf diag;

	file_write(name, text);
	buf_init(&diag, DIAG_MAX);
	ck_assert_msg(map_build(test_path(name), aliases ? MAP_F_ALIASES : 0, &diag, NULL) == MAP_OK,
	              "%s", buf_cstr(&diag));
	buf_free(&diag);
}

static void
expect_tempfail(const char *addr)
{
	char want[ADDR_REPLY_MAX];

	snprintf(want, sizeof(want), "451 4.3.0 <%s>: Temporary lookup failure", addr);
	check_row(fx_r, &(struct row){ addr, ADDR_TEMPFAIL, "", want });
}

START_TEST(test_map_errors)
{
	static const char *const tables[] = { "lvirtual", "lvmailbox", "laliases", "ldomains" };
	static const char *const probes[] = { "info@valias.example", "user1@vmbox.example",
		"staff@example.org", "x@lmdb-domain.example" };
	struct buf diag;
	char lmdb[PATH_SIZE * 2 + 16], junk[PATH_SIZE * 2 + 32];

	dir_make();
	fx_files();
	lmdb_build("lvirtual", virtual_text, false);
	lmdb_build("lvmailbox", vmailbox_text, false);
	lmdb_build("laliases", "staff: alice, bob\n", true);
	lmdb_build("ldomains", "lmdb-domain.example ok\n", false);
	fx_open_config("virtual_alias_maps = lmdb:@D/lvirtual\n"
	               "virtual_mailbox_maps = lmdb:@D/lvmailbox\n"
	               "alias_maps = lmdb:@D/laliases\n"
	               "relay_domains = lmdb:@D/ldomains\n");
	check_row(fx_r, &(struct row){ "info@valias.example", ADDR_OK, "local:alice@example.org", "" });
	check_row(fx_r, &(struct row){ "user1@vmbox.example", ADDR_OK,
	                               "virtual_mailbox:user1@vmbox.example", "" });
	check_row(fx_r, &(struct row){ "staff@example.org", ADDR_OK,
	                               "local:alice@example.org | local:bob@example.org", "" });
	check_row(fx_r, &(struct row){ "x@lmdb-domain.example", ADDR_OK,
	                               "relay:x@lmdb-domain.example", "" });
	/* One table at a time goes bad: removed, then junk in its place. */
	for (size_t i = 0; i < NELEM(tables); i++) {
		snprintf(lmdb, sizeof(lmdb), "%s.lmdb", test_path(tables[i]));
		snprintf(junk, sizeof(junk), "%s.save", lmdb);
		ck_assert_int_eq(rename(lmdb, junk), 0);
		usleep((MAP_RECHECK_MS + 100) * 1000);
		expect_tempfail(probes[i]);
		file_write("junk", "this is not an LMDB file\n");
		ck_assert_int_eq(rename(test_path("junk"), lmdb), 0);
		usleep((MAP_RECHECK_MS + 100) * 1000);
		expect_tempfail(probes[i]);
		ck_assert_int_eq(rename(junk, lmdb), 0);
	}
	addr_resolver_free(fx_r);
	config_free(fx_cfg);
	fx_r = NULL;
	fx_cfg = NULL;
	/* A table missing at start: no resolver (the role does not start). */
	unlink(lmdb);
	buf_init(&diag, DIAG_MAX);
	file_write("main2.cf", "myhostname = mx.example.org\nrelay_domains = lmdb:@D/ldomains\n");
	fx_cfg = config_load(test_path("main2.cf"), &diag);
	ck_assert_ptr_nonnull(fx_cfg);
	ck_assert_ptr_null(addr_resolver_new(fx_cfg, &test_udb, &diag));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&diag), "ldomains"));
	buf_free(&diag);
	fx_close();
}
END_TEST

/* ---- the extension splitter ---- */

static const struct {
	const char *local, *delimiters;
	size_t at;
} split_rows[] = {
	{ "user+ext", "+", 4 },
	{ "user+ext+more", "+", 4 },
	{ "user-ext", "+-", 4 },
	{ "user+ext-x", "-+", 4 },
	{ "user", "+", 4 },
	{ "+ext", "+", 4 },		/* an empty user: no split */
	{ "user+", "+", 4 },
	{ "user+ext", "", 8 },
	{ "user+ext", NULL, 8 },
	{ "Postmaster", "a", 10 },	/* never split */
	{ "mailer-daemon", "-", 13 },
	{ "double-bounce", "-", 13 },
	{ "owner-list", "-", 10 },	/* '-' does not split owner-* */
	{ "owner-list", "+-", 10 },
	{ "owner+list", "+", 5 },	/* other delimiters do */
	{ "list-request", "-", 12 },	/* nor *-request */
	{ "-request", "-", 8 },	/* too short to be *-request: empty user */
	{ "x-request", "-", 9 },
	{ "list+request", "+", 4 },
	{ "\"a+b\"", "+", 5 },		/* quoted: not split */
};

START_TEST(test_split_extension)
{
	const char *l = split_rows[_i].local;

	ck_assert_msg(addr_split_extension(l, strlen(l), split_rows[_i].delimiters, NULL) ==
	              split_rows[_i].at, "%s", l);
}
END_TEST

START_TEST(test_split_double_bounce)
{
	ck_assert_uint_eq(addr_split_extension("bounce-me", 9, "-", "bounce-me"), 9);
	ck_assert_uint_eq(addr_split_extension("double-bounce", 13, "-", "bounce-me"), 6);
}
END_TEST

START_TEST(test_reply_format)
{
	char small[20];

	addr_reply_format(small, sizeof(small), 550, "5.1.1", "someone@example.org", "x");
	ck_assert_str_eq(small, "550 5.1.1 <someone@");
	ck_assert_str_eq(addr_class_name(ADDR_CLASS_VIRTUAL_MAILBOX), "virtual_mailbox");
}
END_TEST

/* The system's password database: root exists, a silly name does not. */
START_TEST(test_system_userdb)
{
	struct addr_pw pw;

	ck_assert_int_eq(addr_pw_system_by_name(NULL, "root", &pw), ADDR_PW_FOUND);
	ck_assert_int_eq(pw.uid, 0);
	ck_assert_str_eq(pw.name, "root");
	ck_assert_int_eq(addr_pw_system_by_uid(NULL, 0, &pw), ADDR_PW_FOUND);
	ck_assert_str_eq(pw.name, "root");
	ck_assert_int_eq(addr_pw_system_by_name(NULL, "no-such-user-xyzzy", &pw), ADDR_PW_NOTFOUND);
}
END_TEST

static Suite *
addr_resolve_suite(void)
{
	Suite *s = suite_create("addr_resolve");
	TCase *tc = tcase_create("addr_resolve");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_classes, 0, NELEM(class_rows));
	tcase_add_test(tc, test_class_precedence);
	tcase_add_test(tc, test_virtual_alias_domains_default);
	tcase_add_loop_test(tc, test_virtual, 0, NELEM(virtual_rows));
	tcase_add_test(tc, test_virtual_limits);
	tcase_add_loop_test(tc, test_aliases, 0, NELEM(alias_rows));
	tcase_add_test(tc, test_alias_warnings);
	tcase_add_test(tc, test_target_owner);
	tcase_add_test(tc, test_alias_refused);
	tcase_add_test(tc, test_user_rights);
	tcase_add_test(tc, test_alias_rights);
	tcase_add_test(tc, test_default_privs);
	tcase_add_test(tc, test_alias_extension);
	tcase_add_test(tc, test_local_recipient_maps);
	tcase_add_test(tc, test_targets_limit);
	tcase_add_test(tc, test_map_errors);
	tcase_add_loop_test(tc, test_split_extension, 0, NELEM(split_rows));
	tcase_add_test(tc, test_split_double_bounce);
	tcase_add_test(tc, test_reply_format);
	tcase_add_test(tc, test_system_userdb);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_resolve_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
