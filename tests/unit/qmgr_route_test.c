/* Unit tests for queue/qmgr_route.c: address classes and next hops. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "queue/qmgr_route.h"

/* A configuration from text, through a temporary file. */
static struct config *
conf(const char *text)
{
	char path[] = "/tmp/qmgr_route_test.XXXXXX";
	int fd = mkstemp(path);
	struct buf errors;
	struct config *cfg;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	buf_init(&errors, 64 * 1024);
	cfg = config_load(path, &errors);
	unlink(path);
	if (cfg == NULL)
		ck_abort_msg("config: %s", buf_cstr(&errors));
	buf_free(&errors);
	return cfg;
}

static struct map_list *maps;	/* transport_maps for expect(), or NULL */

static void
expect(const struct config *cfg, const char *addr, const char *transport, const char *nexthop,
       const char *klass)
{
	struct qmgr_route r;
	char err[200];

	ck_assert_msg(qmgr_route(cfg, NULL, maps, addr, &r, err, sizeof(err)) == 0, "%s: %s", addr, err);
	ck_assert_str_eq(r.transport, transport);
	ck_assert_str_eq(r.nexthop, nexthop);
	ck_assert_str_eq(r.klass, klass);
}

static const char *BASE =
	"myhostname = mx.example.org\n"
	"mydestination = example.org, localhost\n"
	"virtual_mailbox_domains = hosted.example\n"
	"virtual_transport = lmtp:unix:/run/dovecot/lmtp\n"
	"relay_domains = relay.example\n";

START_TEST(test_classes)
{
	struct config *cfg = conf(BASE);

	expect(cfg, "alice@example.org", "local", "example.org", "local");
	expect(cfg, "alice@EXAMPLE.Org", "local", "example.org", "local");
	expect(cfg, "root@localhost.", "local", "localhost", "local");
	expect(cfg, "postmaster", "local", "mx.example.org", "local");
	expect(cfg, "bob@hosted.example", "lmtp", "unix:/run/dovecot/lmtp", "virtual");
	expect(cfg, "carol@Relay.Example", "smtp", "relay.example", "relay");
	expect(cfg, "dave@Other.NET", "smtp", "other.net", "default");
	/* A quoted local part with an '@': the domain is after the last one. */
	expect(cfg, "\"a@b\"@other.net", "smtp", "other.net", "default");
	config_free(cfg);
}
END_TEST

START_TEST(test_relayhost_and_default_transport)
{
	char text[1024];
	struct config *cfg;

	snprintf(text, sizeof(text), "%srelayhost = [smarthost.example]:587\n", BASE);
	cfg = conf(text);
	expect(cfg, "dave@other.net", "smtp", "[smarthost.example]:587", "default");
	expect(cfg, "alice@example.org", "local", "example.org", "local");
	config_free(cfg);

	snprintf(text, sizeof(text), "%sdefault_transport = error:5.7.1 no outbound mail here\n"
	         "local_transport = discard\n", BASE);
	cfg = conf(text);
	expect(cfg, "dave@other.net", "error", "5.7.1 no outbound mail here", "default");
	expect(cfg, "alice@example.org", "discard", "example.org", "local");
	config_free(cfg);
}
END_TEST

/* transport_maps: address, domain, .parent and * forms, empty parts. */
START_TEST(test_transport_maps)
{
	static const char table[] =
		"special@other.net      error:5.1.1 gone\n"
		"other.net              smtp:[10.0.0.5]:25\n"
		".sub.example           relay:\n"
		"hosted.example         :[lmtp.example]\n"
		"example.org            lmtp:unix:/run/dovecot/lmtp\n"
		"*                      slow:\n";
	char path[] = "/tmp/qmgr_route_maps.XXXXXX", text[2048];
	int fd = mkstemp(path);
	struct config *cfg;
	struct buf diag;
	struct qmgr_route r;
	char err[200];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, table, strlen(table)), (ssize_t)strlen(table));
	close(fd);
	snprintf(text, sizeof(text), "%stransport_maps = texthash:%s\nrecipient_delimiter = +\n",
	         BASE, path);
	cfg = conf(text);
	buf_init(&diag, 64 * 1024);
	ck_assert_msg(map_list_open(config_list(cfg, P_TRANSPORT_MAPS), 0, &maps, &diag) == MAP_OK,
	              "%s", buf_cstr(&diag));
	expect(cfg, "special+tag@Other.net", "error", "5.1.1 gone", "default");
	expect(cfg, "dave@other.net", "smtp", "[10.0.0.5]:25", "default");
	expect(cfg, "x@a.sub.example", "relay", "a.sub.example", "default");
	expect(cfg, "x@sub.example", "slow", "sub.example", "default");	/* not .sub.example */
	expect(cfg, "bob@hosted.example", "lmtp", "[lmtp.example]", "virtual");
	expect(cfg, "alice@example.org", "lmtp", "unix:/run/dovecot/lmtp", "local");
	expect(cfg, "zed@elsewhere.net", "slow", "elsewhere.net", "default");
	/* The double-bounce address is discarded before any map. */
	ck_assert_int_eq(qmgr_route(cfg, NULL, maps, "double-bounce@mx.example.org", &r, err,
	                            sizeof(err)), 0);
	ck_assert_str_eq(r.transport, "discard");
	map_list_close(maps);
	maps = NULL;
	/* A map that cannot be read: a temporary failure (-2). */
	snprintf(text, sizeof(text), "%stransport_maps = lmdb:%s\n", BASE, path);
	config_free(cfg);
	cfg = conf(text);
	ck_assert(map_list_open(config_list(cfg, P_TRANSPORT_MAPS), 0, &maps, &diag) != MAP_OK);
	map_list_close(maps);
	maps = NULL;
	buf_free(&diag);
	unlink(path);
	config_free(cfg);
}
END_TEST

/* With the address resolver (as qmgr runs): type:table items of the
 * domain lists count, as they do for smtpd; a virtual alias domain's
 * address goes to error:5.1.1; a command target to local. */
START_TEST(test_resolver_classes)
{
	char dir[] = "/tmp/qmgr_route_test.d.XXXXXX";
	char text[1024], tbl[256];
	struct addr_resolver *r;
	struct envelope_rcpt rc;
	struct qmgr_route out;
	struct config *cfg;
	struct buf diag;
	char err[200];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(tbl, sizeof(tbl), "%s/domains", dir);
	f = fopen(tbl, "w");
	ck_assert_ptr_nonnull(f);
	fputs("tabled.example OK\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
	         "myhostname = mx.example.org\n"
	         "mydestination = localhost, texthash:%s\n"
	         "virtual_alias_domains = valias.example\n"
	         "local_recipient_maps =\n", tbl);
	cfg = conf(text);
	buf_init(&diag, 64 * 1024);
	r = addr_resolver_new(cfg, NULL, &diag);
	ck_assert_msg(r != NULL, "%s", buf_cstr(&diag));
	ck_assert_int_eq(qmgr_route(cfg, r, NULL, "bob@Tabled.Example", &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.transport, "local");
	ck_assert_str_eq(out.klass, "local");
	ck_assert_int_eq(qmgr_route(cfg, NULL, NULL, "bob@tabled.example", &out, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(out.klass, "default");		/* literal lists only */
	ck_assert_int_eq(qmgr_route(cfg, r, NULL, "x@valias.example", &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.transport, "error");
	ck_assert_str_eq(out.nexthop, "5.1.1 User unknown in virtual alias table");
	memset(&rc, 0, sizeof(rc));
	rc.addr = "list@remote.example";
	rc.target = "|/bin/cat";
	ck_assert_int_eq(qmgr_route_rcpt(cfg, r, NULL, &rc, &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.transport, "local");
	ck_assert_str_eq(out.nexthop, "mx.example.org");
	unlink(tbl);
	addr_resolver_free(r);
	buf_free(&diag);
	config_free(cfg);
	rmdir(dir);
}
END_TEST

/* A content filter takes every recipient whatever its class, transport_maps
 * or alias target say; a value without next hop or transport is refused. */
START_TEST(test_filter)
{
	static const struct {
		const char *filter;
		const char *transport, *nexthop;	/* NULL: refused */
	} rows[] = {
		{ "smtp:[127.0.0.1]:10024", "smtp", "[127.0.0.1]:10024" },
		{ "lmtp:inet:127.0.0.1:10024", "lmtp", "inet:127.0.0.1:10024" },
		{ "lmtp:unix:/run/amavis/lmtp", "lmtp", "unix:/run/amavis/lmtp" },
		{ "smtp:", NULL, NULL },
		{ "smtp", NULL, NULL },
		{ ":[127.0.0.1]:10024", NULL, NULL },
		{ "SMTP:[127.0.0.1]:10024", NULL, NULL },
	};
	struct config *cfg = conf(BASE);
	struct envelope_rcpt local = { .addr = "alice@example.org", .target = "|/bin/cat" };
	struct qmgr_route r;
	char err[200];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&r, 0, sizeof(r));
		if (rows[i].transport == NULL) {
			ck_assert_msg(qmgr_route_filter(rows[i].filter, &r, err, sizeof(err)) == -1,
			              "%s: accepted", rows[i].filter);
			continue;
		}
		ck_assert_msg(qmgr_route_filter(rows[i].filter, &r, err, sizeof(err)) == 0, "%s: %s",
		              rows[i].filter, err);
		ck_assert_str_eq(r.transport, rows[i].transport);
		ck_assert_str_eq(r.nexthop, rows[i].nexthop);
		ck_assert_str_eq(r.klass, "filter");
	}
	/* Unfiltered, the same recipient goes to local for its target. */
	ck_assert_int_eq(qmgr_route_rcpt(cfg, NULL, NULL, &local, &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.transport, "local");
	config_free(cfg);
}
END_TEST

START_TEST(test_split_errors)
{
	struct qmgr_route r;
	char err[200], big[700];

	ck_assert_int_eq(qmgr_route_split("smtp:[10.0.0.5]:25", "x", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.transport, "smtp");
	ck_assert_str_eq(r.nexthop, "[10.0.0.5]:25");
	ck_assert_int_eq(qmgr_route_split("relay:", "dflt", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.nexthop, "dflt");
	ck_assert_int_eq(qmgr_route_split(":foo", "x", &r, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "malformed transport"));
	ck_assert_int_eq(qmgr_route_split("SMTP", "x", &r, err, sizeof(err)), -1);
	ck_assert_int_eq(qmgr_route_split("sm tp", "x", &r, err, sizeof(err)), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "smtp:", 5);
	ck_assert_int_eq(qmgr_route_split(big, "x", &r, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("qmgr_route");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	log_open("qmgr_route_test", 0, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_classes);
	tcase_add_test(tc, test_relayhost_and_default_transport);
	tcase_add_test(tc, test_transport_maps);
	tcase_add_test(tc, test_split_errors);
	tcase_add_test(tc, test_filter);
	tcase_add_test(tc, test_resolver_classes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
