/*
 * config_test: the configuration parser, expansion, typed values,
 * listener and transport overrides, restriction lists, rate limits,
 * development defaults, network matching and the dump. Table-driven: one row per input and expected
 * output. Each case writes its text to a fresh temporary file.
 *
 * In expected error text, '@' stands for the temporary file's path.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/config_rbl_reply.h"
#include "config/config_restrictions.h"

#define TEST_ERRORS_MAX (1024 * 1024)
#define TEST_RENDER_MAX (64 * 1024)
#define TEST_DUMP_MAX (1024 * 1024)
#define TEST_LINE_MAX (64 * 1024)
#define TEST_TMP_TEMPLATE "/tmp/tern-config-test-XXXXXX"
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

/* Write len bytes to a new temporary file; returns its malloc'd path. */
static char *
test_write(const char *text, size_t len)
{
	char *path = strdup(TEST_TMP_TEMPLATE);
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Load text from a temporary file; errors (may be NULL) gets the problems,
 * path (may be NULL) the file name, which the caller frees. */
static struct config *
test_load_len(const char *text, size_t len, struct buf *errors, char **path)
{
	char *p = test_write(text, len);
	struct config *cfg = config_load(p, errors);

	unlink(p);
	if (path != NULL)
		*path = p;
	else
		free(p);
	return cfg;
}

static struct config *
test_load(const char *text, struct buf *errors, char **path)
{
	return test_load_len(text, strlen(text), errors, path);
}

/* expected with each '@' replaced by path. */
static const char *
test_subst(struct buf *out, const char *expected, const char *path)
{
	buf_reset(out);
	for (; *expected != '\0'; expected++) {
		if (*expected == '@')
			buf_append_str(out, path);
		else
			buf_append_char(out, *expected);
	}
	return buf_cstr(out);
}

static void
test_render_network(struct buf *out, const struct config_network *net)
{
	char text[INET6_ADDRSTRLEN];

	ck_assert_ptr_nonnull(inet_ntop(net->family, net->addr, text, sizeof(text)));
	if (net->family == AF_INET6)
		buf_append_printf(out, "[%s]/%u", text, net->prefix);
	else
		buf_append_printf(out, "%s/%u", text, net->prefix);
}

/* destination_rate_limits as "domain=MS .parent=MS". */
static void
test_render_rates(struct buf *out, const struct config *cfg, enum config_param p)
{
	const struct config_rate *rates;
	size_t i, n;

	rates = config_rates(cfg, p, &n);
	for (i = 0; i < n; i++)
		buf_append_printf(out, "%s%s%s=%llu", i ? " " : "", rates[i].subdomains ? "." : "",
		    rates[i].domain, (unsigned long long)rates[i].delay_ms);
}

/* Lists, networks and listen addresses as one string. */
static void
test_render_many(struct buf *out, const struct config *cfg, enum config_listener l,
                 enum config_param p)
{
	const struct config_list *list;
	const struct config_network *nets;
	const struct config_listen_addr *addrs;
	size_t i, n;

	switch (config_param_type(p)) {
	case CONFIG_LIST:
	case CONFIG_RESTRICTIONS:
		list = config_llist(cfg, l, p);
		for (i = 0; i < list->n; i++)
			buf_append_printf(out, "%s%s", i ? "|" : "", list->items[i]);
		break;
	case CONFIG_NETWORKS:
		nets = config_lnetworks(cfg, l, p, &n);
		for (i = 0; i < n; i++) {
			if (i)
				buf_append_char(out, ' ');
			test_render_network(out, &nets[i]);
		}
		break;
	case CONFIG_LISTEN:
		addrs = config_listen(cfg, p, &n);
		for (i = 0; i < n; i++)
			buf_append_printf(out, strchr(addrs[i].host, ':') ? "%s[%s]:%u" : "%s%s:%u",
			    i ? " " : "", addrs[i].host, addrs[i].port);
		break;
	case CONFIG_RATES:
		test_render_rates(out, cfg, p);
		break;
	default:
		ck_abort_msg("not a list type");
	}
}

/* Any parameter's value, read through the accessor of its type. */
static const char *
test_render(struct buf *out, const struct config *cfg, enum config_listener l,
            enum config_param p)
{
	buf_reset(out);
	switch (config_param_type(p)) {
	case CONFIG_STR:
	case CONFIG_ENUM:
	case CONFIG_FILTER:
	case CONFIG_RBL_REPLY:
	case CONFIG_MILTERS:
		buf_append_str(out, config_lstr(cfg, l, p));
		break;
	case CONFIG_BOOL:
		buf_append_str(out, config_lbool(cfg, l, p) ? "yes" : "no");
		break;
	case CONFIG_INT:
	case CONFIG_SIZE:
		buf_append_printf(out, "%llu", (unsigned long long)config_lint(cfg, l, p));
		break;
	case CONFIG_TIME:
		buf_append_printf(out, "%lld", (long long)config_ltime(cfg, l, p));
		break;
	default:
		test_render_many(out, cfg, l, p);
		break;
	}
	return buf_cstr(out);
}

/* ---- values that load ---- */

struct value_case {
	const char *text;
	enum config_listener listener;
	enum config_param param;
	const char *expected;
};

#define G CONFIG_LISTENER_GLOBAL
#define SUB CONFIG_LISTENER_SUBMISSION
#define SMTPS CONFIG_LISTENER_SMTPS
#define SMTP CONFIG_LISTENER_SMTP
#define REINJ CONFIG_LISTENER_REINJECT
#define HOST "myhostname = mail.example.com\n"

static const struct value_case value_cases[] = {
	/* table defaults and host-name derived ones */
	{ HOST, G, P_MAIL_NAME, "tern" },
	{ HOST, G, P_MYDOMAIN, "example.com" },
	{ HOST, G, P_MYORIGIN, "mail.example.com" },
	{ HOST, G, P_SMTPD_BANNER, "mail.example.com ESMTP tern" },
	{ HOST, G, P_MYDESTINATION, "mail.example.com|localhost.example.com|localhost" },
	{ "myhostname = host\n", G, P_MYDOMAIN, "localdomain" },
	{ "myhostname = mail.$mydomain\nmydomain = example.org\n", G, P_MYORIGIN,
	  "mail.example.org" },
	{ HOST "mydomain = other.test\n", G, P_MYDOMAIN, "other.test" },
	{ HOST, G, P_SMTPD_TLS_KEY_FILE, "" },
	{ HOST "smtpd_tls_cert_file = /etc/c.pem\n", G, P_SMTPD_TLS_KEY_FILE, "/etc/c.pem" },
	{ HOST, G, P_SMTPD_LISTEN, "0.0.0.0:25" },
	{ HOST, G, P_SMTPS_LISTEN, "" },
	{ HOST, G, P_MYNETWORKS, "127.0.0.0/8 [::1]/128" },
	{ HOST, G, P_SMTPD_RELAY_RESTRICTIONS,
	  "permit_mynetworks|permit_sasl_authenticated|reject_unauth_destination" },
	{ HOST, G, P_MESSAGE_SIZE_LIMIT, "10240000" },
	{ HOST, G, P_MAXIMAL_QUEUE_LIFETIME, "432000" },
	{ HOST, G, P_SPOOL_MAP_SIZE, "67108864" },
	/* expansion */
	{ HOST "relayhost = ${mail_name}-$(mail_name)-$mail_name\n", G, P_RELAYHOST, "tern-tern-tern" },
	{ HOST "relayhost = a$$b\n", G, P_RELAYHOST, "a$b" },
	{ HOST "relayhost = $$mail_name\n", G, P_RELAYHOST, "$mail_name" },
	{ HOST "relayhost = x$no_such_parameter.y\n", G, P_RELAYHOST, "x.y" },
	{ HOST "relayhost = x${no_such_parameter}y\n", G, P_RELAYHOST, "xy" },
	{ HOST "relayhost = cost $ 5 and a$\n", G, P_RELAYHOST, "cost $ 5 and a$" },
	{ HOST "mail_name = a\nhome_mailbox = $mail_name.b\nrelayhost = [$home_mailbox]\n", G,
	  P_RELAYHOST, "[a.b]" },
	{ HOST "relayhost = $home_mailbox\nhome_mailbox = Maildir/\n", G, P_RELAYHOST, "Maildir/" },
	{ HOST "relayhost = ${mail_name?set}\n", G, P_RELAYHOST, "set" },
	{ HOST "relayhost = <${recipient_delimiter?set}>\n", G, P_RELAYHOST, "<>" },
	{ HOST "relayhost = ${recipient_delimiter:unset}\n", G, P_RELAYHOST, "unset" },
	{ HOST "relayhost = ${mail_name?[${mail_name}]}\n", G, P_RELAYHOST, "[tern]" },
	{ HOST "mail_name = $$x\nrelayhost = $mail_name\n", G, P_RELAYHOST, "$x" },
	/* file syntax */
	{ HOST "relayhost = a\nrelayhost = b\n", G, P_RELAYHOST, "b" },
	{ "# comment\n" HOST "relayhost = a # not a comment\n", G, P_RELAYHOST, "a # not a comment" },
	{ "   # indented comment\n" HOST "\n\n   \nrelayhost=x\n", G, P_RELAYHOST, "x" },
	{ HOST "relayhost   =   x   y  \t\n", G, P_RELAYHOST, "x   y" },
	{ HOST "relayhost = x\r\n", G, P_RELAYHOST, "x" },
	{ HOST "relayhost = x", G, P_RELAYHOST, "x" },
	{ HOST "relayhost =\n", G, P_RELAYHOST, "" },
	{ HOST "relayhost = a = b\n", G, P_RELAYHOST, "a = b" },
	{ HOST "relayhost = a   \n   b  \n\tc\n", G, P_RELAYHOST, "a b c" },
	{ HOST "relayhost = a\n  # indented comment\n  b\n", G, P_RELAYHOST, "a b" },
	{ HOST "relayhost =\n  b\n", G, P_RELAYHOST, "b" },
	{ HOST "mydestination = a,\n  b,\n\tc\n", G, P_MYDESTINATION, "a|b|c" },
	{ HOST "mydestination = ,a,,b , c\td\n", G, P_MYDESTINATION, "a|b|c|d" },
	{ HOST "mydestination =\n", G, P_MYDESTINATION, "" },
	/* booleans */
	{ HOST "smtpd_helo_required = yes\n", G, P_SMTPD_HELO_REQUIRED, "yes" },
	{ HOST "smtpd_helo_required = YES\n", G, P_SMTPD_HELO_REQUIRED, "yes" },
	{ HOST "smtpd_helo_required = true\n", G, P_SMTPD_HELO_REQUIRED, "yes" },
	{ HOST "smtpd_helo_required = 1\n", G, P_SMTPD_HELO_REQUIRED, "yes" },
	{ HOST "smtpd_delay_reject = no\n", G, P_SMTPD_DELAY_REJECT, "no" },
	{ HOST "smtpd_delay_reject = False\n", G, P_SMTPD_DELAY_REJECT, "no" },
	{ HOST "smtpd_delay_reject = 0\n", G, P_SMTPD_DELAY_REJECT, "no" },
	/* integers */
	{ HOST "smtpd_recipient_limit = 0\n", G, P_SMTPD_RECIPIENT_LIMIT, "0" },
	{ HOST "smtpd_recipient_limit = 007\n", G, P_SMTPD_RECIPIENT_LIMIT, "7" },
	{ HOST "smtpd_recipient_limit = 9223372036854775807\n", G, P_SMTPD_RECIPIENT_LIMIT,
	  "9223372036854775807" },
	/* sizes: powers of 1024, suffix case-insensitive */
	{ HOST "message_size_limit = 0\n", G, P_MESSAGE_SIZE_LIMIT, "0" },
	{ HOST "message_size_limit = 123\n", G, P_MESSAGE_SIZE_LIMIT, "123" },
	{ HOST "message_size_limit = 1k\n", G, P_MESSAGE_SIZE_LIMIT, "1024" },
	{ HOST "message_size_limit = 10m\n", G, P_MESSAGE_SIZE_LIMIT, "10485760" },
	{ HOST "message_size_limit = 10M\n", G, P_MESSAGE_SIZE_LIMIT, "10485760" },
	{ HOST "message_size_limit = 2G\n", G, P_MESSAGE_SIZE_LIMIT, "2147483648" },
	{ HOST "message_size_limit = 8589934591g\n", G, P_MESSAGE_SIZE_LIMIT,
	  "9223372035781033984" },
	/* times: bare numbers in the parameter's unit */
	{ HOST "smtpd_timeout = 0\n", G, P_SMTPD_TIMEOUT, "0" },
	{ HOST "smtpd_timeout = 45\n", G, P_SMTPD_TIMEOUT, "45" },
	{ HOST "smtpd_timeout = 30s\n", G, P_SMTPD_TIMEOUT, "30" },
	{ HOST "smtpd_timeout = 5m\n", G, P_SMTPD_TIMEOUT, "300" },
	{ HOST "smtpd_timeout = 2h\n", G, P_SMTPD_TIMEOUT, "7200" },
	{ HOST "smtpd_timeout = 1d\n", G, P_SMTPD_TIMEOUT, "86400" },
	{ HOST "smtpd_timeout = 1w\n", G, P_SMTPD_TIMEOUT, "604800" },
	{ HOST "maximal_queue_lifetime = 2\n", G, P_MAXIMAL_QUEUE_LIFETIME, "172800" },
	{ HOST "maximal_queue_lifetime = 2h\n", G, P_MAXIMAL_QUEUE_LIFETIME, "7200" },
	{ HOST "delay_warning_time = 3\n", G, P_DELAY_WARNING_TIME, "10800" },
	{ HOST "delay_warning_time = 0\n", G, P_DELAY_WARNING_TIME, "0" },
	/* enums keep the table's spelling */
	{ HOST "smtpd_tls_security_level = ENCRYPT\n", G, P_SMTPD_TLS_SECURITY_LEVEL, "encrypt" },
	{ HOST "smtp_tls_security_level = verify\n", G, P_SMTP_TLS_SECURITY_LEVEL, "verify" },
	{ HOST "smtpd_sasl_type = dovecot\n", G, P_SMTPD_SASL_TYPE, "dovecot" },
	/* listen addresses */
	{ HOST "smtpd_listen = 192.0.2.1:25, [2001:DB8:0::1]:587 *:26 :27 localhost:28\n", G,
	  P_SMTPD_LISTEN, "192.0.2.1:25 [2001:db8::1]:587 0.0.0.0:26 0.0.0.0:27 127.0.0.1:28" },
	{ HOST "smtpd_listen = [::]:29 [*]:30 []:31 [::1]:65535 0.0.0.0:1\n", G, P_SMTPD_LISTEN,
	  "[::]:29 [::]:30 [::]:31 [::1]:65535 0.0.0.0:1" },
	{ HOST "smtps_listen = 127.0.0.1:465\n", G, P_SMTPS_LISTEN, "127.0.0.1:465" },
	/* networks: host bits cleared, bare addresses whole */
	{ HOST "mynetworks = 10.1.2.3/8 192.0.2.1 [2001:db8::1]/32 ::1 0.0.0.0/0 [::]/0\n", G,
	  P_MYNETWORKS, "10.0.0.0/8 192.0.2.1/32 [2001:db8::]/32 [::1]/128 0.0.0.0/0 [::]/0" },
	{ HOST "mynetworks = 192.168.255.255/17, [fe80::1]\n", G, P_MYNETWORKS,
	  "192.168.128.0/17 [fe80::1]/128" },
	{ HOST "mynetworks =\n", G, P_MYNETWORKS, "" },
	/* restriction lists: arguments, aliases, case */
	{ HOST "smtpd_recipient_restrictions = permit_mynetworks,\n"
	  "  reject_rbl_client zen.spamhaus.org=127.0.0.2, reject_rbl_client bl.example,\n"
	  "  check_policy_service inet:127.0.0.1:10023, check_policy_service unix:private/p,\n"
	  "  check_policy_service inet:[::1]:9998,\n"
	  "  check_client_access lmdb:/etc/tern/access, check_sender_access texthash:/s,\n"
	  "  check_recipient_access lmdb:/r check_helo_access lmdb:/h, sleep 5,\n"
	  "  warn_if_reject, reject_non_fqdn_hostname, reject_invalid_hostname, REJECT\n",
	  G, P_SMTPD_RECIPIENT_RESTRICTIONS,
	  "permit_mynetworks|reject_rbl_client|zen.spamhaus.org=127.0.0.2|reject_rbl_client|"
	  "bl.example|check_policy_service|inet:127.0.0.1:10023|check_policy_service|"
	  "unix:private/p|check_policy_service|inet:[::1]:9998|check_client_access|"
	  "lmdb:/etc/tern/access|check_sender_access|texthash:/s|check_recipient_access|"
	  "lmdb:/r|check_helo_access|lmdb:/h|sleep|5|warn_if_reject|reject_non_fqdn_hostname|"
	  "reject_invalid_hostname|REJECT" },
	{ HOST "smtpd_client_restrictions = defer_if_permit defer_if_reject dunno defer "
	  "permit_sasl_authenticated reject_unauth_destination defer_unauth_destination "
	  "reject_unauth_pipelining reject_non_fqdn_helo_hostname reject_invalid_helo_hostname "
	  "reject_non_fqdn_sender reject_non_fqdn_recipient reject_unknown_sender_domain "
	  "reject_unknown_recipient_domain reject_unlisted_recipient reject_unlisted_sender "
	  "reject_sender_login_mismatch reject_authenticated_sender_login_mismatch "
	  "reject_unknown_client_hostname reject_unknown_reverse_client_hostname "
	  "reject_unknown_helo_hostname permit_auth_destination permit\n",
	  G, P_SMTPD_CLIENT_RESTRICTIONS,
	  "defer_if_permit|defer_if_reject|dunno|defer|permit_sasl_authenticated|"
	  "reject_unauth_destination|defer_unauth_destination|reject_unauth_pipelining|"
	  "reject_non_fqdn_helo_hostname|reject_invalid_helo_hostname|reject_non_fqdn_sender|"
	  "reject_non_fqdn_recipient|reject_unknown_sender_domain|"
	  "reject_unknown_recipient_domain|reject_unlisted_recipient|reject_unlisted_sender|"
	  "reject_sender_login_mismatch|reject_authenticated_sender_login_mismatch|"
	  "reject_unknown_client_hostname|reject_unknown_reverse_client_hostname|"
	  "reject_unknown_helo_hostname|permit_auth_destination|permit" },
	/* listener overrides */
	{ HOST "submission_smtpd_tls_security_level = encrypt\n", SUB, P_SMTPD_TLS_SECURITY_LEVEL,
	  "encrypt" },
	{ HOST "submission_smtpd_tls_security_level = encrypt\n", G, P_SMTPD_TLS_SECURITY_LEVEL,
	  "none" },
	{ HOST "submission_smtpd_tls_security_level = encrypt\n", SMTP, P_SMTPD_TLS_SECURITY_LEVEL,
	  "none" },
	{ HOST "submission_smtpd_tls_security_level = encrypt\n", SMTPS, P_SMTPD_TLS_SECURITY_LEVEL,
	  "none" },
	{ HOST "smtpd_tls_security_level = may\nsmtps_smtpd_tls_security_level = encrypt\n", SUB,
	  P_SMTPD_TLS_SECURITY_LEVEL, "may" },
	{ HOST "submission_smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n",
	  SUB, P_SMTPD_RECIPIENT_RESTRICTIONS, "permit_sasl_authenticated|reject" },
	{ HOST "submission_smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n",
	  G, P_SMTPD_RECIPIENT_RESTRICTIONS, "" },
	{ HOST "smtps_message_size_limit = 1m\n", SMTPS, P_MESSAGE_SIZE_LIMIT, "1048576" },
	{ HOST "smtps_message_size_limit = 1m\n", SUB, P_MESSAGE_SIZE_LIMIT, "10240000" },
	{ HOST "submission_smtpd_timeout = 1m\n", SUB, P_SMTPD_TIMEOUT, "60" },
	{ HOST "submission_smtpd_sasl_auth_enable = yes\n", SUB, P_SMTPD_SASL_AUTH_ENABLE, "yes" },
	{ HOST "submission_smtpd_sasl_auth_enable = yes\n", G, P_SMTPD_SASL_AUTH_ENABLE, "no" },
	{ HOST "submission_smtpd_sender_login_maps = lmdb:/a\n", SUB, P_SMTPD_SENDER_LOGIN_MAPS,
	  "lmdb:/a" },
	{ HOST "mail_name = x\nsubmission_smtpd_banner = $mail_name sub $$\n", SUB, P_SMTPD_BANNER,
	  "x sub $" },
	{ HOST "submission_mynetworks = 10.9.0.0/16\n", SUB, P_MYNETWORKS, "10.9.0.0/16" },
	{ HOST "submission_mynetworks = 10.9.0.0/16\n", G, P_MYNETWORKS, "127.0.0.0/8 [::1]/128" },
	{ HOST "submission_content_filter =\ncontent_filter = smtp:[127.0.0.1]:10024\n", SUB,
	  P_CONTENT_FILTER, "" },
	{ HOST "submission_content_filter =\ncontent_filter = smtp:[127.0.0.1]:10024\n", G,
	  P_CONTENT_FILTER, "smtp:[127.0.0.1]:10024" },
	/* content_filter: transport:nexthop for the smtp or lmtp agent */
	{ HOST, G, P_CONTENT_FILTER, "" },
	{ HOST "content_filter = lmtp:inet:127.0.0.1:10024\n", G, P_CONTENT_FILTER,
	  "lmtp:inet:127.0.0.1:10024" },
	{ HOST "content_filter = lmtp:unix:/run/amavis/lmtp\n", G, P_CONTENT_FILTER,
	  "lmtp:unix:/run/amavis/lmtp" },
	{ HOST "content_filter = smtp:localhost:10024\n", G, P_CONTENT_FILTER,
	  "smtp:localhost:10024" },
	{ HOST "content_filter = smtp:[::1]:10024\n", G, P_CONTENT_FILTER, "smtp:[::1]:10024" },
	{ HOST "content_filter = smtp:filter.example\n", G, P_CONTENT_FILTER,
	  "smtp:filter.example" },
	{ HOST "content_filter = smtp:[127.0.0.1]:10024\n", CONFIG_LISTENER_SENDMAIL,
	  P_CONTENT_FILTER, "smtp:[127.0.0.1]:10024" },
	/* the re-injection listener: never a filter, its own defaults, the rest global */
	{ HOST "reinject_listen = 127.0.0.1:10025\n", G, P_REINJECT_LISTEN, "127.0.0.1:10025" },
	{ HOST, G, P_REINJECT_LISTEN, "" },
	{ HOST "content_filter = smtp:[127.0.0.1]:10024\n", REINJ, P_CONTENT_FILTER, "" },
	{ HOST "reinject_content_filter =\n", REINJ, P_CONTENT_FILTER, "" },
	{ HOST "smtpd_recipient_restrictions = reject_unauth_destination\n", REINJ,
	  P_SMTPD_RECIPIENT_RESTRICTIONS, "permit_mynetworks|reject" },
	{ HOST "reinject_smtpd_recipient_restrictions = permit_mynetworks, "
	  "reject_unauth_destination\n", REINJ, P_SMTPD_RECIPIENT_RESTRICTIONS,
	  "permit_mynetworks|reject_unauth_destination" },
	{ HOST "smtpd_client_restrictions = reject_rbl_client zen.example\n", REINJ,
	  P_SMTPD_CLIENT_RESTRICTIONS, "" },
	{ HOST, REINJ, P_SMTPD_RELAY_RESTRICTIONS, "" },
	{ HOST "mynetworks = 10.0.0.0/8\n", REINJ, P_MYNETWORKS, "127.0.0.0/8 [::1]/128" },
	{ HOST "reinject_mynetworks = 127.0.0.1/32\n", REINJ, P_MYNETWORKS, "127.0.0.1/32" },
	{ HOST "smtpd_sasl_auth_enable = yes\n", REINJ, P_SMTPD_SASL_AUTH_ENABLE, "no" },
	{ HOST "smtpd_timeout = 1m\n", REINJ, P_SMTPD_TIMEOUT, "60" },
	{ HOST "reinject_message_size_limit = 0\n", REINJ, P_MESSAGE_SIZE_LIMIT, "0" },
	/* a parameter whose own name starts like a listener prefix */
	{ HOST "submission_listen = 127.0.0.1:587\nsmtps_listen = [::1]:465\n", G,
	  P_SUBMISSION_LISTEN, "127.0.0.1:587" },
	{ HOST "submission_listen = 127.0.0.1:587\nsmtps_listen = [::1]:465\n", G,
	  P_SMTPS_LISTEN, "[::1]:465" },
	/* queue manager and bounce parameters: Postfix's defaults */
	{ HOST, G, P_DEFAULT_TRANSPORT, "smtp" },
	{ HOST, G, P_QUEUE_RUN_DELAY, "300" },
	{ HOST, G, P_TRANSPORT_RETRY_TIME, "60" },
	{ HOST, G, P_QMGR_MESSAGE_ACTIVE_LIMIT, "20000" },
	{ HOST, G, P_DEFAULT_PROCESS_LIMIT, "100" },
	{ HOST, G, P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST, G, P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "50" },
	{ HOST, G, P_DEFAULT_DESTINATION_RATE_DELAY, "0" },
	{ HOST, G, P_DESTINATION_RATE_LIMITS, "" },
	{ HOST, G, P_BOUNCE_SIZE_LIMIT, "50000" },
	{ HOST, G, P_DOUBLE_BOUNCE_SENDER, "double-bounce" },
	{ HOST, G, P_NOTIFY_CLASSES, "resource|software" },
	{ HOST, G, P_BOUNCE_NOTICE_RECIPIENT, "postmaster" },
	{ HOST, G, P_2BOUNCE_NOTICE_RECIPIENT, "postmaster" },
	{ HOST, G, P_DELAY_NOTICE_RECIPIENT, "postmaster" },
	/* ... and set */
	{ HOST "default_transport = relay:[smtp.example.net]:587\n", G, P_DEFAULT_TRANSPORT,
	  "relay:[smtp.example.net]:587" },
	{ HOST "queue_run_delay = 1m\n", G, P_QUEUE_RUN_DELAY, "60" },
	{ HOST "transport_retry_time = 90\n", G, P_TRANSPORT_RETRY_TIME, "90" },
	{ HOST "qmgr_message_active_limit = 500\n", G, P_QMGR_MESSAGE_ACTIVE_LIMIT, "500" },
	{ HOST "default_process_limit = 8\n", G, P_DEFAULT_PROCESS_LIMIT, "8" },
	{ HOST "default_destination_recipient_limit = 1\n", G,
	  P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "1" },
	{ HOST "bounce_size_limit = 10k\n", G, P_BOUNCE_SIZE_LIMIT, "10240" },
	{ HOST "double_bounce_sender = mailer-daemon\n", G, P_DOUBLE_BOUNCE_SENDER,
	  "mailer-daemon" },
	{ HOST "delay_notice_recipient = ops@example.com\n", G, P_DELAY_NOTICE_RECIPIENT,
	  "ops@example.com" },
	/* a name that starts with a digit, as a setting and in $expansion */
	{ HOST "2bounce_notice_recipient = admin\n", G, P_2BOUNCE_NOTICE_RECIPIENT, "admin" },
	{ HOST "2bounce_notice_recipient = admin\n"
	  "bounce_notice_recipient = $2bounce_notice_recipient\n",
	  G, P_BOUNCE_NOTICE_RECIPIENT, "admin" },
	{ HOST "2bounce_notice_recipient = admin\n"
	  "bounce_notice_recipient = ${2bounce_notice_recipient}-x\n",
	  G, P_BOUNCE_NOTICE_RECIPIENT, "admin-x" },
	/* notify_classes: every class, case-insensitive, kept in the table's spelling */
	{ HOST "notify_classes = bounce, 2bounce,data delay\tpolicy protocol resource software\n",
	  G, P_NOTIFY_CLASSES, "bounce|2bounce|data|delay|policy|protocol|resource|software" },
	{ HOST "notify_classes = BOUNCE, 2Bounce Delay\n", G, P_NOTIFY_CLASSES,
	  "bounce|2bounce|delay" },
	{ HOST "notify_classes =\n", G, P_NOTIFY_CLASSES, "" },
	/* destination_rate_limits: delays and rates in milliseconds */
	{ HOST "destination_rate_limits = example.org=2s, .example.net=500ms\n"
	  "  gmail.com=20/m Yahoo.COM=1/h\n", G, P_DESTINATION_RATE_LIMITS,
	  "example.org=2000 .example.net=500 gmail.com=3000 yahoo.com=3600000" },
	{ HOST "destination_rate_limits = a.example=3\n", G, P_DESTINATION_RATE_LIMITS,
	  "a.example=3000" },
	{ HOST "destination_rate_limits = a.example=1m b.example=2h c.example=1d d.example=1w\n",
	  G, P_DESTINATION_RATE_LIMITS,
	  "a.example=60000 b.example=7200000 c.example=86400000 d.example=604800000" },
	{ HOST "destination_rate_limits = a.example=5MS b.example=2S c.example=10/M\n", G,
	  P_DESTINATION_RATE_LIMITS, "a.example=5 b.example=2000 c.example=6000" },
	{ HOST "destination_rate_limits = a.example=1/s b.example=3/s c.example=2000/s\n", G,
	  P_DESTINATION_RATE_LIMITS, "a.example=1000 b.example=334 c.example=1" },
	{ HOST "destination_rate_limits = a.example=1/d b.example=7/h\n", G,
	  P_DESTINATION_RATE_LIMITS, "a.example=86400000 b.example=514286" },
	{ HOST "destination_rate_limits = a.example=0 b.example=0ms c.example=0s\n", G,
	  P_DESTINATION_RATE_LIMITS, "a.example=0 b.example=0 c.example=0" },
	{ HOST "destination_rate_limits = example.org=1s .example.org=2s\n", G,
	  P_DESTINATION_RATE_LIMITS, "example.org=1000 .example.org=2000" },
	{ HOST "destination_rate_limits = Mx-1.x_y.EXAMPLE=1s localhost=1s\n", G,
	  P_DESTINATION_RATE_LIMITS, "mx-1.x_y.example=1000 localhost=1000" },
	{ HOST "destination_rate_limits = $mydomain=1s .$mydomain=250ms\n", G,
	  P_DESTINATION_RATE_LIMITS, "example.com=1000 .example.com=250" },
	{ HOST "destination_rate_limits = a.example=9223372036854775807ms\n", G,
	  P_DESTINATION_RATE_LIMITS, "a.example=9223372036854775807" },
	/* default_rbl_reply: kept as written (no $expansion at load), its
	 * names checked; a listener may override it */
	{ HOST, G, P_DEFAULT_RBL_REPLY, CONFIG_RBL_REPLY_DEFAULT },
	{ HOST "default_rbl_reply = $rbl_code 5.7.1 $rbl_what on $rbl_domain${rbl_reason?: $rbl_reason}\n",
	  G, P_DEFAULT_RBL_REPLY, "$rbl_code 5.7.1 $rbl_what on $rbl_domain${rbl_reason?: $rbl_reason}" },
	{ HOST "submission_default_rbl_reply = $rbl_code 4.7.1 $$5 ${client_name:unnamed}\n", SUB,
	  P_DEFAULT_RBL_REPLY, "$rbl_code 4.7.1 $$5 ${client_name:unnamed}" },
	{ HOST "submission_default_rbl_reply = $rbl_code 4.7.1 later\n", SMTPS, P_DEFAULT_RBL_REPLY,
	  CONFIG_RBL_REPLY_DEFAULT },
	/* transport overrides leave the global and the listeners alone */
	{ HOST "slow_destination_concurrency_limit = 2\n", G,
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "smtp_destination_rate_delay = 1s\n", SMTP, P_DEFAULT_DESTINATION_RATE_DELAY, "0" },
	{ HOST "submission_destination_rate_delay = 5s\nsubmission_smtpd_timeout = 1m\n", SUB,
	  P_SMTPD_TIMEOUT, "60" },
	{ HOST "submission_destination_rate_delay = 5s\nsubmission_smtpd_timeout = 1m\n", SUB,
	  P_DEFAULT_DESTINATION_RATE_DELAY, "0" },
};

START_TEST(test_values)
{
	const struct value_case *c = &value_cases[_i];
	struct buf errors, out;
	struct config *cfg;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&out, TEST_RENDER_MAX);
	cfg = test_load(c->text, &errors, NULL);
	ck_assert_msg(cfg != NULL, "row %d: load failed: %s", _i, buf_cstr(&errors));
	ck_assert_msg(strcmp(test_render(&out, cfg, c->listener, c->param), c->expected) == 0,
	    "row %d: %s = \"%s\", expected \"%s\"", _i, config_param_name(c->param),
	    buf_cstr(&out), c->expected);
	ck_assert_uint_eq(buf_len(&errors), 0);
	config_free(cfg);
	buf_free(&errors);
	buf_free(&out);
}
END_TEST

/* ---- problems: the exact "FILE:LINE: message" lines ---- */

struct error_case {
	const char *text;
	const char *expected;	/* every error line; '@' is the file's path */
};

static const struct error_case error_cases[] = {
	/* syntax */
	{ HOST "foo bar\n", "@:2: missing \"=\" after parameter name: \"foo bar\"\n" },
	{ HOST "= x\n", "@:2: missing parameter name before \"=\"\n" },
	{ "  relayhost = x\n" HOST, "@:1: continuation line without a parameter line before it\n" },
	{ HOST "\n  b\n", "@:3: continuation line without a parameter line before it\n" },
	{ HOST "relayhost = a\n# comment ends it\n  b\n",
	  "@:4: continuation line without a parameter line before it\n" },
	{ HOST "foo\n  = bar\n", "@:2: unknown parameter \"foo\"\n" },
	/* names */
	{ HOST "myhostnme = a.b\n",
	  "@:2: unknown parameter \"myhostnme\" (did you mean \"myhostname\"?)\n" },
	{ HOST "smtpd_recipient_limt = 1\n",
	  "@:2: unknown parameter \"smtpd_recipient_limt\" (did you mean \"smtpd_recipient_limit\"?)\n" },
	{ HOST "xyzzy = 1\n", "@:2: unknown parameter \"xyzzy\"\n" },
	{ HOST "submission_smtpd_tls_securty_level = encrypt\n",
	  "@:2: unknown parameter \"submission_smtpd_tls_securty_level\" "
	  "(did you mean \"submission_smtpd_tls_security_level\"?)\n" },
	{ HOST "submission_queue_directory = /x\n",
	  "@:2: \"submission_queue_directory\": queue_directory cannot be set per listener\n" },
	{ HOST "smtps_mydestination = x\n",
	  "@:2: \"smtps_mydestination\": mydestination cannot be set per listener\n" },
	/* booleans */
	{ HOST "smtpd_helo_required = maybe\n",
	  "@:2: smtpd_helo_required: bad boolean \"maybe\" (use yes or no)\n" },
	{ HOST "smtpd_helo_required =\n",
	  "@:2: smtpd_helo_required: bad boolean \"\" (use yes or no)\n" },
	/* integers */
	{ HOST "smtpd_recipient_limit = -1\n",
	  "@:2: smtpd_recipient_limit: bad number \"-1\" (use a non-negative decimal number)\n" },
	{ HOST "smtpd_recipient_limit = 12x\n",
	  "@:2: smtpd_recipient_limit: bad number \"12x\" (use a non-negative decimal number)\n" },
	{ HOST "smtpd_recipient_limit =\n",
	  "@:2: smtpd_recipient_limit: bad number \"\" (use a non-negative decimal number)\n" },
	{ HOST "smtpd_recipient_limit = 9223372036854775808\n",
	  "@:2: smtpd_recipient_limit: bad number \"9223372036854775808\" (too large)\n" },
	{ HOST "smtpd_recipient_limit = 99999999999999999999999\n",
	  "@:2: smtpd_recipient_limit: bad number \"99999999999999999999999\" (too large)\n" },
	/* sizes */
	{ HOST "message_size_limit = 10q\n", "@:2: message_size_limit: bad size \"10q\" "
	  "(use a number of bytes with an optional k, m or g suffix)\n" },
	{ HOST "message_size_limit = k\n", "@:2: message_size_limit: bad size \"k\" "
	  "(use a number of bytes with an optional k, m or g suffix)\n" },
	{ HOST "message_size_limit = 10 m\n", "@:2: message_size_limit: bad size \"10 m\" "
	  "(use a number of bytes with an optional k, m or g suffix)\n" },
	{ HOST "message_size_limit = 10mb\n", "@:2: message_size_limit: bad size \"10mb\" "
	  "(use a number of bytes with an optional k, m or g suffix)\n" },
	{ HOST "message_size_limit = 8589934592g\n",
	  "@:2: message_size_limit: bad size \"8589934592g\" (too large)\n" },
	/* times */
	{ HOST "smtpd_timeout = 5x\n", "@:2: smtpd_timeout: bad time \"5x\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	{ HOST "smtpd_timeout = s\n", "@:2: smtpd_timeout: bad time \"s\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	{ HOST "smtpd_timeout = 1.5h\n", "@:2: smtpd_timeout: bad time \"1.5h\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	{ HOST "smtpd_timeout = 15250284452472w\n",
	  "@:2: smtpd_timeout: bad time \"15250284452472w\" (too large)\n" },
	{ HOST "maximal_queue_lifetime = 106751991167301\n",
	  "@:2: maximal_queue_lifetime: bad time \"106751991167301\" (too large)\n" },
	{ HOST "smtpd_timeout = $mail_name\n", "@:2: smtpd_timeout: bad time \"tern\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	/* enums */
	{ HOST "smtpd_tls_security_level = maybe\n", "@:2: smtpd_tls_security_level: "
	  "bad value \"maybe\" (choose one of: none, may, encrypt)\n" },
	{ HOST "smtpd_tls_security_level = verify\n", "@:2: smtpd_tls_security_level: "
	  "bad value \"verify\" (choose one of: none, may, encrypt)\n" },
	/* listen addresses */
	{ HOST "smtpd_listen = 1.2.3.4\n",
	  "@:2: smtpd_listen: bad listen address \"1.2.3.4\" (missing :port)\n" },
	{ HOST "smtpd_listen = 1.2.3.4:0\n",
	  "@:2: smtpd_listen: bad listen address \"1.2.3.4:0\" (port must be 1-65535)\n" },
	{ HOST "smtpd_listen = 1.2.3.4:65536\n",
	  "@:2: smtpd_listen: bad listen address \"1.2.3.4:65536\" (port must be 1-65535)\n" },
	{ HOST "smtpd_listen = 1.2.3.4:smtp\n",
	  "@:2: smtpd_listen: bad listen address \"1.2.3.4:smtp\" (port must be 1-65535)\n" },
	{ HOST "smtpd_listen = mail.example.com:25\n",
	  "@:2: smtpd_listen: bad listen address \"mail.example.com:25\" "
	  "(host must be an IPv4 address, [IPv6 address], localhost or *)\n" },
	{ HOST "smtpd_listen = ::1:25\n", "@:2: smtpd_listen: bad listen address \"::1:25\" "
	  "(host must be an IPv4 address, [IPv6 address], localhost or *)\n" },
	{ HOST "smtpd_listen = 1.2.3.256:25\n", "@:2: smtpd_listen: bad listen address "
	  "\"1.2.3.256:25\" (host must be an IPv4 address, [IPv6 address], localhost or *)\n" },
	{ HOST "smtpd_listen = [::1:25\n",
	  "@:2: smtpd_listen: bad listen address \"[::1:25\" (use [IPv6-address]:port)\n" },
	{ HOST "smtpd_listen = [::1]25\n",
	  "@:2: smtpd_listen: bad listen address \"[::1]25\" (use [IPv6-address]:port)\n" },
	{ HOST "smtpd_listen = [fe80::zz]:25\n",
	  "@:2: smtpd_listen: bad listen address \"[fe80::zz]:25\" (not an IP address)\n" },
	{ HOST "smtpd_listen = 1.2.3.4:25 5.6.7.8 9.9.9.9:0\n",
	  "@:2: smtpd_listen: bad listen address \"5.6.7.8\" (missing :port)\n"
	  "@:2: smtpd_listen: bad listen address \"9.9.9.9:0\" (port must be 1-65535)\n" },
	/* networks */
	{ HOST "mynetworks = 10.0.0.0/33\n",
	  "@:2: mynetworks: bad network \"10.0.0.0/33\" (prefix length must be 0-32)\n" },
	{ HOST "mynetworks = [::1]/129\n",
	  "@:2: mynetworks: bad network \"[::1]/129\" (prefix length must be 0-128)\n" },
	{ HOST "mynetworks = 10.0.0.0/\n",
	  "@:2: mynetworks: bad network \"10.0.0.0/\" (prefix length must be 0-32)\n" },
	{ HOST "mynetworks = 10.0.0.0/-1\n",
	  "@:2: mynetworks: bad network \"10.0.0.0/-1\" (prefix length must be 0-32)\n" },
	{ HOST "mynetworks = 10.0.0.0/8x\n",
	  "@:2: mynetworks: bad network \"10.0.0.0/8x\" (prefix length must be 0-32)\n" },
	{ HOST "mynetworks = example.com\n", "@:2: mynetworks: bad network \"example.com\" "
	  "(use address/prefix, [IPv6-address]/prefix or an address)\n" },
	{ HOST "mynetworks = 10.0.0/8\n", "@:2: mynetworks: bad network \"10.0.0/8\" "
	  "(use address/prefix, [IPv6-address]/prefix or an address)\n" },
	{ HOST "mynetworks = [::1/128\n", "@:2: mynetworks: bad network \"[::1/128\" "
	  "(use address/prefix, [IPv6-address]/prefix or an address)\n" },
	{ HOST "mynetworks = [::1]x\n", "@:2: mynetworks: bad network \"[::1]x\" "
	  "(use address/prefix, [IPv6-address]/prefix or an address)\n" },
	{ HOST "submission_mynetworks = 10.0.0.0/40\n",
	  "@:2: submission_mynetworks: bad network \"10.0.0.0/40\" (prefix length must be 0-32)\n" },
	/* restriction lists */
	{ HOST "smtpd_recipient_restrictions = permit_mynetworks, rejct\n",
	  "@:2: smtpd_recipient_restrictions: unknown restriction \"rejct\" "
	  "(did you mean \"reject\"?)\n" },
	{ HOST "smtpd_recipient_restrictions = Reject_Unauth_Destnation\n",
	  "@:2: smtpd_recipient_restrictions: unknown restriction \"Reject_Unauth_Destnation\" "
	  "(did you mean \"reject_unauth_destination\"?)\n" },
	{ HOST "smtpd_helo_restrictions = bogus, reject\n",
	  "@:2: smtpd_helo_restrictions: unknown restriction \"bogus\"\n" },
	{ HOST "smtpd_client_restrictions = reject_rbl_client\n",
	  "@:2: smtpd_client_restrictions: reject_rbl_client: missing argument (a DNSBL zone)\n" },
	{ HOST "smtpd_client_restrictions = permit_mynetworks, check_policy_service\n",
	  "@:2: smtpd_client_restrictions: check_policy_service: missing argument "
	  "(a policy service)\n" },
	{ HOST "smtpd_client_restrictions = check_client_access\n",
	  "@:2: smtpd_client_restrictions: check_client_access: missing argument (a map)\n" },
	{ HOST "smtpd_client_restrictions = sleep\n",
	  "@:2: smtpd_client_restrictions: sleep: missing argument (a time in seconds)\n" },
	{ HOST "smtpd_client_restrictions = reject_rbl_client zen..org\n",
	  "@:2: smtpd_client_restrictions: reject_rbl_client: bad argument \"zen..org\" "
	  "(use a DNSBL zone, optionally zone=d.d.d.d)\n" },
	{ HOST "smtpd_client_restrictions = reject_rbl_client zen.example=127.0.0.x\n",
	  "@:2: smtpd_client_restrictions: reject_rbl_client: bad argument "
	  "\"zen.example=127.0.0.x\" (use a DNSBL zone, optionally zone=d.d.d.d)\n" },
	{ HOST "smtpd_client_restrictions = check_policy_service tcp:127.0.0.1:1\n",
	  "@:2: smtpd_client_restrictions: check_policy_service: bad argument "
	  "\"tcp:127.0.0.1:1\" (use inet:HOST:PORT or unix:PATH)\n" },
	{ HOST "smtpd_client_restrictions = check_policy_service inet:127.0.0.1\n",
	  "@:2: smtpd_client_restrictions: check_policy_service: bad argument "
	  "\"inet:127.0.0.1\" (use inet:HOST:PORT or unix:PATH)\n" },
	{ HOST "smtpd_client_restrictions = check_policy_service inet::99\n",
	  "@:2: smtpd_client_restrictions: check_policy_service: bad argument "
	  "\"inet::99\" (use inet:HOST:PORT or unix:PATH)\n" },
	{ HOST "smtpd_client_restrictions = check_policy_service unix:\n",
	  "@:2: smtpd_client_restrictions: check_policy_service: bad argument "
	  "\"unix:\" (use inet:HOST:PORT or unix:PATH)\n" },
	{ HOST "smtpd_sender_restrictions = check_sender_access /etc/access\n",
	  "@:2: smtpd_sender_restrictions: check_sender_access: bad argument "
	  "\"/etc/access\" (use TYPE:NAME, e.g. lmdb:/etc/tern/access)\n" },
	{ HOST "smtpd_data_restrictions = sleep soon\n",
	  "@:2: smtpd_data_restrictions: sleep: bad argument \"soon\" "
	  "(use a number of seconds)\n" },
	{ HOST "smtpd_recipient_restrictions = permit_mynetworks, warn_if_reject\n",
	  "@:2: smtpd_recipient_restrictions: \"warn_if_reject\" must be followed by a "
	  "reject rule\n" },
	{ HOST "smtpd_recipient_restrictions = rejct, reject_rbl_client\n",
	  "@:2: smtpd_recipient_restrictions: unknown restriction \"rejct\" "
	  "(did you mean \"reject\"?)\n"
	  "@:2: smtpd_recipient_restrictions: reject_rbl_client: missing argument "
	  "(a DNSBL zone)\n" },
	{ HOST "submission_smtpd_recipient_restrictions = permit_sasl_authenticated, rejct\n",
	  "@:2: submission_smtpd_recipient_restrictions: unknown restriction \"rejct\" "
	  "(did you mean \"reject\"?)\n" },
	/* expansion */
	{ HOST "relayhost = $relayhost\n", "@:2: parameter relayhost: recursive $expansion\n" },
	{ HOST "myorigin = $mydomain\nmydomain = $myorigin\n",
	  "@:3: parameter mydomain: recursive $expansion\n" },
	{ HOST "relayhost = ${home_mailbox}\nhome_mailbox = $(relayhost)\n",
	  "@:2: parameter relayhost: recursive $expansion\n" },
	{ HOST "relayhost = ${mail_name?$relayhost}\n",
	  "@:2: parameter relayhost: recursive $expansion\n" },
	{ HOST "mail_name = $smtpd_banner\n",
	  "@:2: parameter mail_name: recursive $expansion\n" },
	{ HOST "submission_smtpd_banner = $smtpd_banner\n"
	  "smtpd_banner = $relayhost\nrelayhost = $smtpd_banner\n",
	  "@:3: parameter smtpd_banner: recursive $expansion\n" },
	{ HOST "relayhost = ${myhostname\n",
	  "@:2: parameter relayhost: unterminated ${ or $( in value\n" },
	{ HOST "relayhost = $(myhostname}\n",
	  "@:2: parameter relayhost: unterminated ${ or $( in value\n" },
	{ HOST "relayhost = ${}\n",
	  "@:2: parameter relayhost: bad ${...} or $(...) reference in value\n" },
	{ HOST "relayhost = ${a-b}\n",
	  "@:2: parameter relayhost: bad ${...} or $(...) reference in value\n" },
	{ HOST "submission_smtpd_banner = ${mail_name\n",
	  "@:2: parameter submission_smtpd_banner: unterminated ${ or $( in value\n" },
	/* transport overrides */
	{ HOST "default_destination_concurency_limit = 2\n",
	  "@:2: unknown parameter \"default_destination_concurency_limit\" "
	  "(did you mean \"default_destination_concurrency_limit\"?)\n" },
	{ HOST "default_destination_rate_dealy = 2\n",
	  "@:2: unknown parameter \"default_destination_rate_dealy\" "
	  "(did you mean \"default_destination_rate_delay\"?)\n" },
	{ HOST "slow_destination_concurency_limit = 2\n",
	  "@:2: unknown parameter \"slow_destination_concurency_limit\" "
	  "(did you mean \"slow_destination_concurrency_limit\"?)\n" },
	{ HOST "my_relay_destination_recipient_limt = 2\n",
	  "@:2: unknown parameter \"my_relay_destination_recipient_limt\" "
	  "(did you mean \"my_relay_destination_recipient_limit\"?)\n" },
	{ HOST "_destination_rate_delay = 1\n",
	  "@:2: unknown parameter \"_destination_rate_delay\" "
	  "(did you mean \"default_destination_rate_delay\"?)\n" },
	{ HOST "default_smtp_destination_rate_delay = 1\n",
	  "@:2: unknown parameter \"default_smtp_destination_rate_delay\" "
	  "(did you mean \"default_destination_rate_delay\"?)\n" },
	{ HOST "slow_smtpd_timeout = 1\n",
	  "@:2: unknown parameter \"slow_smtpd_timeout\" "
	  "(did you mean \"smtps_smtpd_timeout\"?)\n" },
	{ HOST "slow_process_limit = 1\n",
	  "@:2: unknown parameter \"slow_process_limit\" "
	  "(did you mean \"default_process_limit\"?)\n" },
	{ HOST "Slow_destination_concurrency_limit = 2\n",
	  "@:2: \"Slow_destination_concurrency_limit\": bad transport name \"Slow\" "
	  "(use [a-z0-9][a-z0-9_-]*, at most 64 bytes)\n" },
	{ HOST "-x_destination_rate_delay = 1\n",
	  "@:2: \"-x_destination_rate_delay\": bad transport name \"-x\" "
	  "(use [a-z0-9][a-z0-9_-]*, at most 64 bytes)\n" },
	{ HOST "relay.example_destination_rate_delay = 1\n",
	  "@:2: \"relay.example_destination_rate_delay\": bad transport name \"relay.example\" "
	  "(use [a-z0-9][a-z0-9_-]*, at most 64 bytes)\n" },
	{ HOST "t23456789012345678901234567890123456789012345678901234567890abcde"
	  "_destination_rate_delay = 1\n",
	  "@:2: \"t23456789012345678901234567890123456789012345678901234567890abcde"
	  "_destination_ra...\": bad transport name "
	  "\"t23456789012345678901234567890123456789012345678901234567890abcde\" "
	  "(use [a-z0-9][a-z0-9_-]*, at most 64 bytes)\n" },
	{ HOST "slow_destination_concurrency_limit = x\n",
	  "@:2: slow_destination_concurrency_limit: bad number \"x\" "
	  "(use a non-negative decimal number)\n" },
	{ HOST "relay_destination_recipient_limit = -1\n",
	  "@:2: relay_destination_recipient_limit: bad number \"-1\" "
	  "(use a non-negative decimal number)\n" },
	{ HOST "smtp_destination_rate_delay = 1ms\n",
	  "@:2: smtp_destination_rate_delay: bad time \"1ms\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	{ HOST "smtp_destination_rate_delay = 5x\nsmtp_destination_rate_delay = 5y\n",
	  "@:3: smtp_destination_rate_delay: bad time \"5y\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	{ HOST "slow_destination_rate_delay = ${mail_name\n",
	  "@:2: parameter slow_destination_rate_delay: unterminated ${ or $( in value\n" },
	{ HOST "submission_default_destination_rate_delay = 1s\n",
	  "@:2: \"submission_default_destination_rate_delay\": default_destination_rate_delay "
	  "cannot be set per listener\n" },
	/* names that start with a digit are names like any other */
	{ HOST "2bounce_notice_recipent = x\n",
	  "@:2: unknown parameter \"2bounce_notice_recipent\" "
	  "(did you mean \"2bounce_notice_recipient\"?)\n" },
	/* notify_classes */
	{ HOST "notify_classes = resource, bogus, Softwre\n",
	  "@:2: notify_classes: bad item \"bogus\" (choose from: bounce, 2bounce, data, delay, "
	  "policy, protocol, resource, software)\n"
	  "@:2: notify_classes: bad item \"Softwre\" (choose from: bounce, 2bounce, data, delay, "
	  "policy, protocol, resource, software)\n" },
	/* destination_rate_limits: each bad item, then each duplicate */
	{ HOST "destination_rate_limits = example.org\n",
	  "@:2: destination_rate_limits: bad rate limit \"example.org\" (use DOMAIN=RATE)\n" },
	{ HOST "destination_rate_limits = example.org = 1s\n",
	  "@:2: destination_rate_limits: bad rate limit \"example.org\" (use DOMAIN=RATE)\n"
	  "@:2: destination_rate_limits: bad rate limit \"=\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \"1s\" (use DOMAIN=RATE)\n" },
	{ HOST "destination_rate_limits = =1s .=1s a..b=1s a.b.=1s ex!ample.org=1s ..a=1s\n",
	  "@:2: destination_rate_limits: bad rate limit \"=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \".=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \"a..b=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \"a.b.=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \"ex!ample.org=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n"
	  "@:2: destination_rate_limits: bad rate limit \"..a=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n" },
	{ HOST "destination_rate_limits = "
	  "a234567890123456789012345678901234567890123456789012345678901234.org=1s\n",
	  "@:2: destination_rate_limits: bad rate limit "
	  "\"a234567890123456789012345678901234567890123456789012345678901234.org=1s\" "
	  "(DOMAIN must be a domain name, or .domain for its subdomains)\n" },
	{ HOST "destination_rate_limits = a=1 b= c=1x d=1.5s e=0/m f=20/y g=20/ h=/m i=20/min "
	  "j=-1s k=1/m/s l=2s=3s m=ms n=1 s\n",
	  "@:2: destination_rate_limits: bad rate limit \"b=\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"c=1x\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"d=1.5s\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"e=0/m\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"f=20/y\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"g=20/\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"h=/m\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"i=20/min\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"j=-1s\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"k=1/m/s\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"l=2s=3s\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"m=ms\" (RATE must be a delay "
	  "(500ms, 2s, 1m) or N/s, N/m, N/h, N/d with N >= 1)\n"
	  "@:2: destination_rate_limits: bad rate limit \"s\" (use DOMAIN=RATE)\n" },
	{ HOST "destination_rate_limits = x=9223372036854775807s y=99999999999999999999/s "
	  "z=9223372036854775808ms\n",
	  "@:2: destination_rate_limits: bad rate limit \"x=9223372036854775807s\" (too large)\n"
	  "@:2: destination_rate_limits: bad rate limit \"y=99999999999999999999/s\" "
	  "(too large)\n"
	  "@:2: destination_rate_limits: bad rate limit \"z=9223372036854775808ms\" "
	  "(too large)\n" },
	{ HOST "destination_rate_limits = a.org=1s b.org=2s A.ORG=3s .a.org=4s bad .a.org=5s\n",
	  "@:2: destination_rate_limits: bad rate limit \"bad\" (use DOMAIN=RATE)\n"
	  "@:2: destination_rate_limits: bad rate limit \"A.ORG=3s\" (a.org given twice)\n"
	  "@:2: destination_rate_limits: bad rate limit \".a.org=5s\" (.a.org given twice)\n" },
	/* every problem, in order: file pass, then values in table order */
	{ HOST "foo bar\nmyhostnme = x\nsmtpd_timeout = 5x\nmessage_size_limit = 10q\n"
	  "submission_queue_directory = /x\n",
	  "@:2: missing \"=\" after parameter name: \"foo bar\"\n"
	  "@:3: unknown parameter \"myhostnme\" (did you mean \"myhostname\"?)\n"
	  "@:6: \"submission_queue_directory\": queue_directory cannot be set per listener\n"
	  "@:5: message_size_limit: bad size \"10q\" "
	  "(use a number of bytes with an optional k, m or g suffix)\n"
	  "@:4: smtpd_timeout: bad time \"5x\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	/* content_filter syntax, everywhere it may be set */
	{ HOST "content_filter = scan:localhost:10024\n", "@:2: content_filter: bad content "
	  "filter \"scan:localhost:10024\": transport \"scan\": a content filter is reached with "
	  "smtp or lmtp\n" },
	{ HOST "content_filter = smtp\n", "@:2: content_filter: bad content filter \"smtp\": "
	  "not transport:nexthop (e.g. smtp:[127.0.0.1]:10024)\n" },
	{ HOST "content_filter = smtp:\n", "@:2: content_filter: bad content filter \"smtp:\": "
	  "not transport:nexthop (e.g. smtp:[127.0.0.1]:10024)\n" },
	{ HOST "content_filter = smtp:[127.0.0.1]:0\n", "@:2: content_filter: bad content filter "
	  "\"smtp:[127.0.0.1]:0\": bad port in the next hop (1..65535)\n" },
	{ HOST "content_filter = smtp:[127.0.0.1\n", "@:2: content_filter: bad content filter "
	  "\"smtp:[127.0.0.1\": unclosed or empty [host] in the next hop\n" },
	{ HOST "content_filter = smtp:[127.0.0.1]x\n", "@:2: content_filter: bad content filter "
	  "\"smtp:[127.0.0.1]x\": text after [host] in the next hop\n" },
	{ HOST "content_filter = smtp::10024\n", "@:2: content_filter: bad content filter "
	  "\"smtp::10024\": no host in the next hop\n" },
	{ HOST "content_filter = lmtp:/run/x\n", "@:2: content_filter: bad content filter "
	  "\"lmtp:/run/x\": an lmtp next hop is inet:host[:port] or unix:/path\n" },
	{ HOST "content_filter = lmtp:unix:run/x\n", "@:2: content_filter: bad content filter "
	  "\"lmtp:unix:run/x\": lmtp:unix: needs an absolute path\n" },
	{ HOST "submission_content_filter = smtp:[a] :10\n", "@:2: submission_content_filter: bad "
	  "content filter \"smtp:[a] :10\": white space or a byte that is not printable ASCII\n" },
	/* the re-injection listener never filters: mail would loop */
	{ HOST "reinject_content_filter = smtp:[127.0.0.1]:10024\n", "@:2: "
	  "reinject_content_filter: the re-injection listener never filters (mail would loop back "
	  "to the filter); leave it empty\n" },
	{ HOST "content_filter = smtp:[127.0.0.1]:10024\nreinject_content_filter = $content_filter\n",
	  "@:3: reinject_content_filter: the re-injection listener never filters (mail would loop "
	  "back to the filter); leave it empty\n" },
	{ HOST "reinject_listen = 127.0.0.1\n", "@:2: reinject_listen: bad listen address "
	  "\"127.0.0.1\" (missing :port)\n" },
	/* default_rbl_reply: names and forms checked at load, in both arms */
	{ HOST "default_rbl_reply = $rbl_code $rbl_bogus\n",
	  "@:2: default_rbl_reply: unknown name \"rbl_bogus\"\n" },
	{ HOST "default_rbl_reply = ${rbl_code\n", "@:2: default_rbl_reply: bad ${...} reference\n" },
	{ HOST "default_rbl_reply = $rbl_code ${rbl_reason?; $rbl_resaon}\n",
	  "@:2: default_rbl_reply: unknown name \"rbl_resaon\"\n" },
	{ HOST "default_rbl_reply = $rbl_code ${rbl_reason?; $rbl_reason\n",
	  "@:2: default_rbl_reply: missing \"}\"\n" },
	{ HOST "submission_default_rbl_reply = $(rbl_code 5.7.1\n",
	  "@:2: submission_default_rbl_reply: bad $(...) reference\n" },
	{ HOST "smtps_default_rbl_reply = ${rbl_code?${rbl_code?${rbl_code?${rbl_code?"
	  "${rbl_code?x}}}}}\n", "@:2: smtps_default_rbl_reply: ${...} nested too deep\n" },
	/* a bad value reported where it was set last */
	{ HOST "smtpd_timeout = 5x\nsmtpd_timeout = 5y\n", "@:3: smtpd_timeout: bad time \"5y\" "
	  "(use a number with an optional s, m, h, d or w suffix)\n" },
	/* non-printable bytes are escaped in messages */
	{ HOST "relay\001host = x\n", "@:2: unknown parameter \"relay\\001host\" "
	  "(did you mean \"relayhost\"?)\n" },
};

START_TEST(test_errors)
{
	const struct error_case *c = &error_cases[_i];
	struct buf errors, expected;
	struct config *cfg;
	char *path;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&expected, TEST_ERRORS_MAX);
	cfg = test_load(c->text, &errors, &path);
	ck_assert_msg(cfg == NULL, "row %d: loaded", _i);
	ck_assert_msg(strcmp(buf_cstr(&errors), test_subst(&expected, c->expected, path)) == 0,
	    "row %d: errors\n%s\nexpected\n%s", _i, buf_cstr(&errors), buf_cstr(&expected));
	free(path);
	buf_free(&errors);
	buf_free(&expected);
}
END_TEST

/* ---- transport overrides: config_tint(), config_ttime() ---- */

struct transport_case {
	const char *text;
	const char *transport;	/* NULL: no transport */
	enum config_param param;
	const char *expected;
};

#define TRANSPORTS \
	HOST "a_destination_concurrency_limit = 1\nb_destination_concurrency_limit = 2\n" \
	"a_destination_rate_delay = 3m\nb_destination_recipient_limit = 4\n" \
	"default_destination_recipient_limit = 7\n"

static const struct transport_case transport_cases[] = {
	{ HOST "slow_destination_concurrency_limit = 2\n", "slow",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "2" },
	{ HOST "smtp_destination_rate_delay = 1s\n", "smtp",
	  P_DEFAULT_DESTINATION_RATE_DELAY, "1" },
	{ HOST "smtp_destination_rate_delay = 2m\n", "smtp", P_DEFAULT_DESTINATION_RATE_DELAY,
	  "120" },
	{ HOST "relay_destination_recipient_limit = 10\n", "relay",
	  P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "10" },
	/* no override for that transport, or none asked for: the global */
	{ HOST "slow_destination_concurrency_limit = 2\n", "fast",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "slow_destination_concurrency_limit = 2\n", NULL,
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "slow_destination_concurrency_limit = 2\n", "slo",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "slow_destination_concurrency_limit = 2\n", "slow2",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "slow_destination_concurrency_limit = 2\n", "SLOW",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "20" },
	{ HOST "slow_destination_concurrency_limit = 2\n", "slow",
	  P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "50" },
	{ HOST, "smtp", P_DEFAULT_DESTINATION_RATE_DELAY, "0" },
	{ HOST "default_destination_rate_delay = 5s\nrelay_destination_rate_delay = 1s\n", "smtp",
	  P_DEFAULT_DESTINATION_RATE_DELAY, "5" },
	/* several transports and parameters */
	{ TRANSPORTS, "a", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "1" },
	{ TRANSPORTS, "b", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "2" },
	{ TRANSPORTS, "a", P_DEFAULT_DESTINATION_RATE_DELAY, "180" },
	{ TRANSPORTS, "b", P_DEFAULT_DESTINATION_RATE_DELAY, "0" },
	{ TRANSPORTS, "a", P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "7" },
	{ TRANSPORTS, "b", P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "4" },
	{ TRANSPORTS, "c", P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "7" },
	/* the last setting wins; $expansion works */
	{ HOST "slow_destination_concurrency_limit = 2\nslow_destination_concurrency_limit = 3\n",
	  "slow", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "3" },
	{ HOST "slow_destination_concurrency_limit = x\nslow_destination_concurrency_limit = 3\n",
	  "slow", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "3" },
	{ HOST "default_destination_concurrency_limit = 4\n"
	  "slow_destination_concurrency_limit = $default_destination_concurrency_limit\n",
	  "slow", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "4" },
	/* transport names: digits first, '_' and '-' inside */
	{ HOST "my_relay-2_destination_rate_delay = 3\n", "my_relay-2",
	  P_DEFAULT_DESTINATION_RATE_DELAY, "3" },
	{ HOST "2relay_destination_concurrency_limit = 1\n", "2relay",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "1" },
	{ HOST "t23456789012345678901234567890123456789012345678901234567890abcd"
	  "_destination_rate_delay = 1\n",
	  "t23456789012345678901234567890123456789012345678901234567890abcd",
	  P_DEFAULT_DESTINATION_RATE_DELAY, "1" },
	/* transports named like listeners are transports (NAME is no parameter) */
	{ HOST "submission_destination_concurrency_limit = 5\n", "submission",
	  P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "5" },
	{ HOST "smtps_destination_rate_delay = 9\n", "smtps",
	  P_DEFAULT_DESTINATION_RATE_DELAY, "9" },
	/* parameters that have no transport overrides give the global */
	{ HOST "smtpd_recipient_limit = 9\n", "smtp", P_SMTPD_RECIPIENT_LIMIT, "9" },
	{ HOST, "smtp", P_SMTPD_TIMEOUT, "300" },
	{ HOST, "smtp", P_BOUNCE_SIZE_LIMIT, "50000" },
};

START_TEST(test_transports)
{
	const struct transport_case *c = &transport_cases[_i];
	struct buf errors, out;
	struct config *cfg;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&out, TEST_RENDER_MAX);
	cfg = test_load(c->text, &errors, NULL);
	ck_assert_msg(cfg != NULL, "row %d: load failed: %s", _i, buf_cstr(&errors));
	if (config_param_type(c->param) == CONFIG_TIME)
		buf_append_printf(&out, "%lld",
		    (long long)config_ttime(cfg, c->transport, c->param));
	else
		buf_append_printf(&out, "%llu",
		    (unsigned long long)config_tint(cfg, c->transport, c->param));
	ck_assert_msg(strcmp(buf_cstr(&out), c->expected) == 0,
	    "row %d: %s for %s = \"%s\", expected \"%s\"", _i, config_param_name(c->param),
	    c->transport ? c->transport : "(none)", buf_cstr(&out), c->expected);
	config_free(cfg);
	buf_free(&errors);
	buf_free(&out);
}
END_TEST

/* ---- config_rate_lookup ---- */

#define RATES "destination_rate_limits = example.org=1s .example.org=2s .b.example.org=3s\n" \
	"  c.b.example.org=4s EXAMPLE.NET=6s\n"

static const struct {
	const char *text;
	const char *domain;
	bool found;
	uint64_t delay_ms;
} lookup_cases[] = {
	/* exact before parent */
	{ HOST RATES, "example.org", true, 1000 },
	{ HOST RATES, "EXAMPLE.Org", true, 1000 },
	{ HOST RATES, "example.org.", true, 1000 },
	{ HOST RATES, "c.b.example.org", true, 4000 },
	{ HOST RATES, "example.net", true, 6000 },
	{ HOST RATES, "Example.NET", true, 6000 },
	/* the closest .parent */
	{ HOST RATES, "a.example.org", true, 2000 },
	{ HOST RATES, "A.Example.ORG", true, 2000 },
	{ HOST RATES, "x.y.z.example.org", true, 2000 },
	{ HOST RATES, "x.b.example.org", true, 3000 },
	{ HOST RATES, "x.B.Example.org.", true, 3000 },
	{ HOST RATES, "b.example.org", true, 2000 },
	{ HOST RATES, "d.c.b.example.org", true, 3000 },
	/* no match: .parent is not the parent itself, labels match whole */
	{ HOST RATES, "a.example.net", false, 0 },
	{ HOST RATES, "xexample.org", false, 0 },
	{ HOST RATES, "example.com", false, 0 },
	{ HOST RATES, "org", false, 0 },
	{ HOST RATES, "example.org..", false, 0 },
	{ HOST RATES, "", false, 0 },
	{ HOST RATES, ".", false, 0 },
	{ HOST "destination_rate_limits = .org=5s\n", "xexample.org", true, 5000 },
	{ HOST "destination_rate_limits = example.org=0\n", "example.org", true, 0 },
	{ HOST "destination_rate_limits = example.org=0\n", "a.example.org", false, 0 },
	{ HOST, "example.org", false, 0 },
};

START_TEST(test_rate_lookup)
{
	struct buf errors;
	struct config *cfg;
	uint64_t ms = 12345;
	bool found;

	buf_init(&errors, TEST_ERRORS_MAX);
	cfg = test_load(lookup_cases[_i].text, &errors, NULL);
	ck_assert_msg(cfg != NULL, "row %d: %s", _i, buf_cstr(&errors));
	found = config_rate_lookup(cfg, lookup_cases[_i].domain, &ms);
	ck_assert_msg(found == lookup_cases[_i].found, "row %d: %s", _i, lookup_cases[_i].domain);
	/* Not found: delay_ms untouched. */
	ck_assert_uint_eq(ms, (found ? lookup_cases[_i].delay_ms : 12345));
	config_free(cfg);
	buf_free(&errors);
}
END_TEST

/* ---- over-long lines, NUL bytes, unreadable files ---- */

/* name = value where the logical line is exactly len bytes, then text. */
static char *
test_long_line(size_t len, size_t continuation_every, const char *after)
{
	struct buf b;
	size_t i;
	char *s;

	buf_init(&b, TEST_LINE_MAX * 4);
	buf_append_str(&b, "relayhost = ");
	for (i = strlen("relayhost = "); i < len; i++) {
		/* A continuation's "\n " is joined as one space. */
		if (continuation_every && i % continuation_every == 0 && i + 1 < len)
			buf_append_str(&b, "\n ");
		else
			buf_append_char(&b, 'a');
	}
	buf_append_str(&b, "\n");
	buf_append_str(&b, after);
	s = strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* Count the lines of s, for the line number after a long line. */
static unsigned
test_count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_long_lines)
{
	static const struct {
		size_t len;
		size_t continuation_every;
		bool ok;
	} rows[] = {
		{ TEST_LINE_MAX, 0, true },
		{ TEST_LINE_MAX + 1, 0, false },
		{ TEST_LINE_MAX * 3, 0, false },
		{ TEST_LINE_MAX, 1000, true },
		{ TEST_LINE_MAX + 1, 1000, false },
	};
	struct buf errors, expected, out;
	struct config *cfg;
	char *text, *path;
	unsigned lines;
	size_t i;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&expected, TEST_ERRORS_MAX);
	buf_init(&out, TEST_LINE_MAX * 2);
	for (i = 0; i < NELEM(rows); i++) {
		buf_reset(&errors);
		text = test_long_line(rows[i].len, rows[i].continuation_every,
		    HOST "smtpd_recipient_limit = x\n");
		lines = test_count_lines(text);
		cfg = test_load(text, &errors, &path);
		ck_assert_ptr_null(cfg);
		buf_reset(&expected);
		if (!rows[i].ok)
			buf_append_printf(&expected, "%s:1: line longer than 65536 bytes\n", path);
		buf_append_printf(&expected, "%s:%u: smtpd_recipient_limit: bad number \"x\" "
		    "(use a non-negative decimal number)\n", path, lines);
		ck_assert_msg(strcmp(buf_cstr(&errors), buf_cstr(&expected)) == 0,
		    "row %zu: %s", i, buf_cstr(&errors));
		free(path);
		free(text);
	}
	/* At the limit the value is kept whole. */
	text = test_long_line(TEST_LINE_MAX, 0, HOST);
	buf_reset(&errors);
	cfg = test_load(text, &errors, NULL);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	ck_assert_uint_eq(strlen(config_str(cfg, P_RELAYHOST)),
	    TEST_LINE_MAX - strlen("relayhost = "));
	config_free(cfg);
	free(text);
	buf_free(&errors);
	buf_free(&expected);
	buf_free(&out);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "relayhost = a\0b\n" HOST "smtpd_timeout = 5x\n";
	struct buf errors, expected;
	struct config *cfg;
	char *path;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&expected, TEST_ERRORS_MAX);
	cfg = test_load_len(text, sizeof(text) - 1, &errors, &path);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(buf_cstr(&errors), test_subst(&expected, "@:1: NUL byte in line\n"
	    "@:3: smtpd_timeout: bad time \"5x\" "
	    "(use a number with an optional s, m, h, d or w suffix)\n", path));
	free(path);
	buf_free(&errors);
	buf_free(&expected);
}
END_TEST

START_TEST(test_unreadable)
{
	static const struct {
		const char *path;
		const char *expected;
	} rows[] = {
		{ "/nonexistent/tern/tern.conf",
		  "/nonexistent/tern/tern.conf: cannot open: No such file or directory\n" },
		{ "/", "/: cannot read: Is a directory\n" },
	};
	struct buf errors;
	size_t i;

	buf_init(&errors, TEST_ERRORS_MAX);
	for (i = 0; i < NELEM(rows); i++) {
		buf_reset(&errors);
		ck_assert_ptr_null(config_load(rows[i].path, &errors));
		ck_assert_str_eq(buf_cstr(&errors), rows[i].expected);
		/* No error buffer: still fails, and does not crash. */
		ck_assert_ptr_null(config_load(rows[i].path, NULL));
	}
	buf_free(&errors);
}
END_TEST

/* $a$a... over many levels would grow without bound; it is capped. */
START_TEST(test_expansion_too_long)
{
	struct buf text, errors, expected;
	struct config *cfg;
	char *path;
	size_t i;

	buf_init(&text, TEST_LINE_MAX * 4);
	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&expected, TEST_ERRORS_MAX);
	buf_append_str(&text, HOST "mail_name = ");
	for (i = 0; i < TEST_LINE_MAX - 100; i++)
		buf_append_char(&text, 'x');
	buf_append_str(&text, "\nhome_mailbox = ");
	for (i = 0; i < 20; i++)
		buf_append_str(&text, "$mail_name");
	buf_append_str(&text, "\n");
	cfg = test_load(buf_cstr(&text), &errors, &path);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(buf_cstr(&errors), test_subst(&expected,
	    "@:3: parameter home_mailbox: value too long after $expansion\n", path));
	free(path);
	buf_free(&text);
	buf_free(&errors);
	buf_free(&expected);
}
END_TEST

/* ---- development defaults ---- */

START_TEST(test_dev_defaults)
{
	/* A '$' in the directory proves paths are not $expanded. */
	char dir[] = "/tmp/tern-config-$dev-XXXXXX";
	struct buf errors, out, want;
	struct config *cfg;
	const char *host, *dot;
	char *cwd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chdir(dir), 0);
	cwd = getcwd(NULL, 0);
	ck_assert_ptr_nonnull(cwd);
	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&out, TEST_RENDER_MAX);
	buf_init(&want, TEST_RENDER_MAX);
	cfg = config_load(NULL, &errors);
	/* Clean up before asserting, so a failure leaves nothing behind. */
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	ck_assert(config_is_dev(cfg));
	ck_assert_ptr_null(config_path(cfg));

	buf_append_printf(&want, "%s/var/spool", cwd);
	ck_assert_str_eq(config_str(cfg, P_QUEUE_DIRECTORY), buf_cstr(&want));
	ck_assert_int_eq(config_str(cfg, P_QUEUE_DIRECTORY)[0], '/');
	buf_reset(&want);
	buf_append_printf(&want, "%s/var/mail/", cwd);
	ck_assert_str_eq(config_str(cfg, P_MAIL_SPOOL_DIRECTORY), buf_cstr(&want));
	ck_assert_str_eq(config_str(cfg, P_MAIL_OWNER), getpwuid(getuid())->pw_name);
	ck_assert_str_eq(config_str(cfg, P_LOG_FILE), "");
	ck_assert_str_eq(test_render(&out, cfg, G, P_SMTPD_LISTEN), "127.0.0.1:2525");
	ck_assert_str_eq(test_render(&out, cfg, G, P_SUBMISSION_LISTEN), "127.0.0.1:2587");
	ck_assert_str_eq(test_render(&out, cfg, G, P_SMTPS_LISTEN), "");
	ck_assert_str_eq(test_render(&out, cfg, G, P_MYNETWORKS), "127.0.0.0/8 [::1]/128");

	host = config_str(cfg, P_MYHOSTNAME);
	ck_assert_ptr_nonnull(dot = strchr(host, '.'));
	ck_assert_str_eq(config_str(cfg, P_MYDOMAIN), dot + 1);
	buf_reset(&want);
	buf_append_printf(&want, "%s|localhost.%s|localhost", host, dot + 1);
	ck_assert_str_eq(test_render(&out, cfg, G, P_MYDESTINATION), buf_cstr(&want));
	/* Everything else comes from the table. */
	ck_assert_uint_eq(config_int(cfg, P_MESSAGE_SIZE_LIMIT), 10240000);
	ck_assert_str_eq(config_str(cfg, P_SMTPD_TLS_SECURITY_LEVEL), "none");

	config_free(cfg);
	free(cwd);
	buf_free(&errors);
	buf_free(&out);
	buf_free(&want);
}
END_TEST

/* ---- config_networks_match ---- */

static const struct {
	const char *networks;
	const char *addr;
	bool match;
} match_cases[] = {
	{ "10.0.0.0/8", "10.255.1.2", true },
	{ "10.0.0.0/8", "11.0.0.1", false },
	{ "10.1.2.3/8", "10.9.9.9", true },
	{ "192.0.2.1/32", "192.0.2.1", true },
	{ "192.0.2.1/32", "192.0.2.2", false },
	{ "192.0.2.1", "192.0.2.1", true },
	{ "192.168.0.0/23", "192.168.1.255", true },
	{ "192.168.0.0/23", "192.168.2.0", false },
	{ "0.0.0.0/0", "203.0.113.9", true },
	{ "0.0.0.0/0", "2001:db8::1", false },
	{ "[::]/0", "2001:db8::1", true },
	{ "[::]/0", "192.0.2.1", false },
	{ "[2001:db8::]/32", "2001:db8:ffff::1", true },
	{ "[2001:db8::]/32", "2001:db9::1", false },
	{ "[2001:db8::]/33", "2001:db8:7fff::", true },
	{ "[2001:db8::]/33", "2001:db8:8000::", false },
	{ "[::1]/128", "::1", true },
	{ "[::1]/128", "::2", false },
	{ "127.0.0.0/8", "::ffff:127.0.0.1", true },
	{ "127.0.0.0/8", "::ffff:128.0.0.1", false },
	{ "10.0.0.0/8 [::1]/128 192.0.2.0/24", "192.0.2.77", true },
	{ "", "127.0.0.1", false },
};

START_TEST(test_networks_match)
{
	struct buf text, errors;
	const struct config_network *nets;
	unsigned char addr[16];
	struct config *cfg;
	int family = AF_INET;
	size_t n;

	buf_init(&text, TEST_RENDER_MAX);
	buf_init(&errors, TEST_ERRORS_MAX);
	buf_append_printf(&text, HOST "mynetworks = %s\n", match_cases[_i].networks);
	cfg = test_load(buf_cstr(&text), &errors, NULL);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	if (inet_pton(AF_INET, match_cases[_i].addr, addr) != 1) {
		family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, match_cases[_i].addr, addr), 1);
	}
	nets = config_networks(cfg, P_MYNETWORKS, &n);
	ck_assert_msg(config_networks_match(nets, n, family, addr) == match_cases[_i].match,
	    "row %d: %s in %s", _i, match_cases[_i].addr, match_cases[_i].networks);
	config_free(cfg);
	buf_free(&text);
	buf_free(&errors);
}
END_TEST

/* ---- config_dump ---- */

static const char dump_input[] =
	HOST
	"relayhost = [relay.example]:587\n"
	"recipient_delimiter = +\n"
	"home_mailbox = a$$b $mail_name\n"
	"mydestination = $myhostname, example.org\n"
	"smtpd_recipient_restrictions = permit_mynetworks, reject_rbl_client zen.example,\n"
	"    reject_unauth_destination\n"
	"smtpd_listen = [::1]:25 127.0.0.1:25\n"
	"mynetworks = 10.1.0.0/16 [2001:db8::]/48\n"
	"message_size_limit = 20m\n"
	"smtpd_timeout = 2m\n"
	"smtpd_tls_security_level = MAY\n"
	"submission_smtpd_tls_security_level = encrypt\n"
	"submission_smtpd_recipient_restrictions = permit_sasl_authenticated reject\n"
	"smtps_smtpd_banner = $$ $myhostname\n"
	"smtps_smtpd_helo_required = yes\n"
	"notify_classes = Bounce, resource\n"
	"destination_rate_limits = example.org=2s .Example.NET=20/m\n"
	"smtp_destination_rate_delay = 1s\n"
	"slow_destination_rate_delay = $smtpd_timeout\n"
	"slow_destination_concurrency_limit = 2\n"
	"relay_destination_recipient_limit = 10\n"
	"relay_destination_recipient_limit = 11\n";

/* The end of its dump: listener overrides, then transport overrides by
 * transport and in table order, the last setting of each. */
static const char dump_tail[] =
	"\nmail_spool_directory = /var/mail\n"
	"submission_smtpd_recipient_restrictions = permit_sasl_authenticated reject\n"
	"submission_smtpd_tls_security_level = encrypt\n"
	"smtps_smtpd_banner = $$ mail.example.com\n"
	"smtps_smtpd_helo_required = yes\n"
	/* the re-injection listener's own defaults, in table order */
	"reinject_mynetworks = 127.0.0.0/8 [::1]/128\n"
	"reinject_content_filter =\n"
	"reinject_header_checks =\n"
	"reinject_mime_header_checks =\n"
	"reinject_nested_header_checks =\n"
	"reinject_body_checks =\n"
	"reinject_smtpd_authorized_xforward_hosts = 127.0.0.0/8 [::1]/128\n"
	"reinject_smtpd_client_event_limit_exceptions = 127.0.0.0/8 [::1]/128\n"
	"reinject_smtpd_client_restrictions =\n"
	"reinject_smtpd_helo_restrictions =\n"
	"reinject_smtpd_sender_restrictions =\n"
	"reinject_smtpd_relay_restrictions =\n"
	"reinject_smtpd_recipient_restrictions = permit_mynetworks, reject\n"
	"reinject_smtpd_data_restrictions =\n"
	"reinject_smtpd_end_of_data_restrictions =\n"
	"reinject_smtpd_milters =\n"
	"reinject_smtpd_sasl_auth_enable = no\n"
	"relay_destination_recipient_limit = 11\n"
	"slow_destination_concurrency_limit = 2\n"
	"slow_destination_rate_delay = 2m\n"
	"smtp_destination_rate_delay = 1s\n";

/* Transports and parameters whose overrides the round trip compares. */
static const char *const round_trip_transports[] = { "smtp", "slow", "relay", "other" };
static const enum config_param round_trip_tparams[] = {
	P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, P_DEFAULT_DESTINATION_RECIPIENT_LIMIT,
	P_DEFAULT_DESTINATION_RATE_DELAY,
};

/* Load, dump, load the dump, dump again: same text and same values. */
static void
test_round_trip(struct config *cfg)
{
	static const enum config_param check[] = {
		P_RELAYHOST, P_HOME_MAILBOX, P_MYDESTINATION, P_SMTPD_RECIPIENT_RESTRICTIONS,
		P_SMTPD_LISTEN, P_MYNETWORKS, P_MESSAGE_SIZE_LIMIT, P_SMTPD_TIMEOUT,
		P_QUEUE_DIRECTORY, P_MYHOSTNAME, P_MYDOMAIN, P_SMTPD_BANNER,
		P_SMTPD_TLS_SECURITY_LEVEL, P_SMTPD_HELO_REQUIRED, P_MAXIMAL_QUEUE_LIFETIME,
		P_NOTIFY_CLASSES, P_DESTINATION_RATE_LIMITS, P_DEFAULT_DESTINATION_RATE_DELAY,
		P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, P_2BOUNCE_NOTICE_RECIPIENT,
	};
	static const enum config_listener listeners[] = { G, SMTP, SUB, SMTPS };
	struct buf dump1, dump2, errors, a, b;
	struct config *again;
	enum config_param tp;
	const char *tr;
	size_t i, l, t;

	buf_init(&dump1, TEST_DUMP_MAX);
	buf_init(&dump2, TEST_DUMP_MAX);
	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&a, TEST_RENDER_MAX);
	buf_init(&b, TEST_RENDER_MAX);
	config_dump(cfg, &dump1);
	again = test_load(buf_cstr(&dump1), &errors, NULL);
	ck_assert_msg(again != NULL, "%s\n%s", buf_cstr(&errors), buf_cstr(&dump1));
	config_dump(again, &dump2);
	ck_assert_str_eq(buf_cstr(&dump1), buf_cstr(&dump2));
	for (l = 0; l < NELEM(listeners); l++)
		for (i = 0; i < NELEM(check); i++)
			ck_assert_str_eq(test_render(&a, cfg, listeners[l], check[i]),
			    test_render(&b, again, listeners[l], check[i]));
	for (t = 0; t < NELEM(round_trip_transports); t++) {
		for (i = 0; i < NELEM(round_trip_tparams); i++) {
			tr = round_trip_transports[t];
			tp = round_trip_tparams[i];
			if (config_param_type(tp) == CONFIG_TIME)
				ck_assert_int_eq(config_ttime(cfg, tr, tp), config_ttime(again, tr, tp));
			else
				ck_assert_uint_eq(config_tint(cfg, tr, tp), config_tint(again, tr, tp));
		}
	}
	config_free(again);
	buf_free(&dump1);
	buf_free(&dump2);
	buf_free(&errors);
	buf_free(&a);
	buf_free(&b);
}

START_TEST(test_dump)
{
	struct buf errors, dump;
	struct config *cfg;
	const char *s, *first_override;

	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&dump, TEST_DUMP_MAX);
	cfg = test_load(dump_input, &errors, NULL);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	config_dump(cfg, &dump);
	s = buf_cstr(&dump);
	/* Table order, effective values, '$' doubled, empty values bare. */
	ck_assert_msg(strncmp(s, "myhostname = mail.example.com\nmydomain = example.com\n",
	    strlen("myhostname = mail.example.com\nmydomain = example.com\n")) == 0, "%s", s);
	ck_assert_ptr_nonnull(strstr(s, "\nhome_mailbox = a$$b tern\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmydestination = mail.example.com, example.org\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nsmtpd_tls_security_level = may\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nsmtpd_client_restrictions =\n"));
	/* Overrides after every global, submission first. */
	first_override = strstr(s, "\nsubmission_smtpd_recipient_restrictions = "
	    "permit_sasl_authenticated reject\n");
	ck_assert_ptr_nonnull(first_override);
	ck_assert_ptr_nonnull(strstr(s, "\nnotify_classes = Bounce, resource\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "\ndestination_rate_limits = example.org=2s .Example.NET=20/m\n"));
	ck_assert_ptr_nonnull(strstr(s, "\ndefault_destination_rate_delay = 0s\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n2bounce_notice_recipient = postmaster\n"));
	ck_assert_uint_ge(buf_len(&dump), strlen(dump_tail));
	ck_assert_str_eq(s + buf_len(&dump) - strlen(dump_tail), dump_tail);
	ck_assert_int_eq(s[buf_len(&dump) - 1], '\n');
	test_round_trip(cfg);
	config_free(cfg);
	buf_free(&errors);
	buf_free(&dump);
}
END_TEST

START_TEST(test_dump_dev)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, TEST_ERRORS_MAX);
	cfg = config_load(NULL, &errors);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	test_round_trip(cfg);
	config_free(cfg);
	buf_free(&errors);
}
END_TEST

/* A full error buffer keeps whole lines only; the load still fails. */
START_TEST(test_small_error_buffer)
{
	static const char text[] = HOST "xyzzy = 1\nplugh = 2\n";
	struct buf all, small;
	const char *nl;
	size_t first;

	buf_init(&all, TEST_ERRORS_MAX);
	ck_assert_ptr_null(test_load(text, &all, NULL));
	nl = strchr(buf_cstr(&all), '\n');
	ck_assert_ptr_nonnull(nl);
	first = (size_t)(nl - buf_cstr(&all)) + 1;
	ck_assert_uint_gt(buf_len(&all), first);
	/* Room for the first line and part of the second. */
	buf_init(&small, first + 10);
	ck_assert_ptr_null(test_load(text, &small, NULL));
	ck_assert_uint_eq(buf_len(&small), first);
	ck_assert_int_eq(buf_cstr(&small)[first - 1], '\n');
	buf_free(&all);
	buf_free(&small);
}
END_TEST

/* The example in tests/fixtures/config loads, and means what it says. */
START_TEST(test_fixture)
{
	char path[4096];
	const char *slash = strrchr(__FILE__, '/');
	struct buf errors, out;
	struct config *cfg;
	uint64_t ms = 0;

	ck_assert_ptr_nonnull(slash);
	snprintf(path, sizeof(path), "%.*s/../fixtures/config/example.conf",
	    (int)(slash - __FILE__), __FILE__);
	buf_init(&errors, TEST_ERRORS_MAX);
	buf_init(&out, TEST_RENDER_MAX);
	cfg = config_load(path, &errors);
	ck_assert_msg(cfg != NULL, "%s: %s", path, buf_cstr(&errors));
	ck_assert_str_eq(config_str(cfg, P_MYORIGIN), "example.com");
	ck_assert_str_eq(test_render(&out, cfg, G, P_MYNETWORKS),
	    "127.0.0.0/8 [::1]/128 192.0.2.0/24");
	ck_assert_str_eq(test_render(&out, cfg, G, P_SMTPD_RECIPIENT_RESTRICTIONS),
	    "permit_mynetworks|permit_sasl_authenticated|reject_unauth_destination|"
	    "reject_rbl_client|zen.spamhaus.org=127.0.0.2|check_policy_service|"
	    "inet:127.0.0.1:10023");
	ck_assert_str_eq(test_render(&out, cfg, SUB, P_SMTPD_RECIPIENT_RESTRICTIONS),
	    "permit_sasl_authenticated|reject");
	ck_assert_str_eq(config_lstr(cfg, SUB, P_SMTPD_TLS_SECURITY_LEVEL), "encrypt");
	ck_assert_str_eq(config_lstr(cfg, SMTPS, P_SMTPD_TLS_SECURITY_LEVEL), "may");
	ck_assert(config_lbool(cfg, SMTPS, P_SMTPD_SASL_AUTH_ENABLE));
	ck_assert(!config_lbool(cfg, SMTP, P_SMTPD_SASL_AUTH_ENABLE));
	ck_assert_uint_eq(config_int(cfg, P_MESSAGE_SIZE_LIMIT), 50 * 1024 * 1024);
	ck_assert_int_eq(config_time(cfg, P_DELAY_WARNING_TIME), 4 * 3600);
	ck_assert_int_eq(config_time(cfg, P_MAXIMAL_QUEUE_LIFETIME), 3 * 86400);
	ck_assert_int_eq(config_time(cfg, P_QUEUE_RUN_DELAY), 300);
	ck_assert_uint_eq(config_int(cfg, P_DEFAULT_PROCESS_LIMIT), 50);
	ck_assert_str_eq(test_render(&out, cfg, G, P_DESTINATION_RATE_LIMITS),
	    "gmail.com=3000 .example.net=2000");
	ck_assert(config_rate_lookup(cfg, "mx.Example.NET", &ms));
	ck_assert_uint_eq(ms, 2000);
	ck_assert_str_eq(test_render(&out, cfg, G, P_NOTIFY_CLASSES), "resource|software|2bounce");
	ck_assert_str_eq(config_str(cfg, P_2BOUNCE_NOTICE_RECIPIENT), "hostmaster");
	ck_assert_uint_eq(config_tint(cfg, "slow", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT), 2);
	ck_assert_uint_eq(config_tint(cfg, "smtp", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT), 20);
	ck_assert_uint_eq(config_tint(cfg, "slow", P_DEFAULT_DESTINATION_RECIPIENT_LIMIT), 100);
	ck_assert_int_eq(config_ttime(cfg, "slow", P_DEFAULT_DESTINATION_RATE_DELAY), 1);
	ck_assert_int_eq(config_ttime(cfg, "smtp", P_DEFAULT_DESTINATION_RATE_DELAY), 0);
	test_round_trip(cfg);
	config_free(cfg);
	buf_free(&errors);
	buf_free(&out);
}
END_TEST

/* ---- the restriction table ---- */

static const struct {
	const char *word;
	const char *canonical;	/* NULL: unknown */
	bool takes_argument;
} restriction_cases[] = {
	{ "permit", "permit", false },
	{ "REJECT", "reject", false },
	{ "reject_non_fqdn_hostname", "reject_non_fqdn_helo_hostname", false },
	{ "reject_invalid_hostname", "reject_invalid_helo_hostname", false },
	{ "reject_non_fqdn_helo_hostname", "reject_non_fqdn_helo_hostname", false },
	{ "reject_rbl_client", "reject_rbl_client", true },
	{ "check_policy_service", "check_policy_service", true },
	{ "check_client_access", "check_client_access", true },
	{ "check_sender_access", "check_sender_access", true },
	{ "check_recipient_access", "check_recipient_access", true },
	{ "check_helo_access", "check_helo_access", true },
	{ "sleep", "sleep", true },
	{ "warn_if_reject", "warn_if_reject", false },
	{ "rejct", NULL, false },
	{ "", NULL, false },
};

START_TEST(test_restrictions_table)
{
	const struct config_restrictions_entry *e, *canon;
	size_t i, j;

	for (i = 0; i < NELEM(restriction_cases); i++) {
		e = config_restrictions_lookup(restriction_cases[i].word);
		if (restriction_cases[i].canonical == NULL) {
			ck_assert_ptr_null(e);
			continue;
		}
		ck_assert_ptr_nonnull(e);
		ck_assert_str_eq(e->canonical, restriction_cases[i].canonical);
		ck_assert_int_eq(config_restrictions_takes_argument(e),
		    restriction_cases[i].takes_argument);
	}
	/* Names are unique and lower case; an alias shares its word's code. */
	for (i = 0; i < config_restrictions_count; i++) {
		e = &config_restrictions_table[i];
		for (j = i + 1; j < config_restrictions_count; j++)
			ck_assert_str_ne(e->name, config_restrictions_table[j].name);
		canon = config_restrictions_lookup(e->canonical);
		ck_assert_ptr_nonnull(canon);
		ck_assert_int_eq(canon->code, e->code);
		ck_assert_int_eq(canon->arg, e->arg);
	}
}
END_TEST

/* ---- table look-ups ---- */

START_TEST(test_table)
{
	size_t i, j;

	ck_assert_str_eq(config_param_name(P_MYHOSTNAME), "myhostname");
	ck_assert_int_eq(config_param_type(P_MYNETWORKS), CONFIG_NETWORKS);
	ck_assert_int_eq(config_param_type(P_DESTINATION_RATE_LIMITS), CONFIG_RATES);
	ck_assert_str_eq(config_param_name(P_2BOUNCE_NOTICE_RECIPIENT), "2bounce_notice_recipient");
	ck_assert_ptr_nonnull(strstr(config_param_doc(P_QUEUE_DIRECTORY), "spool"));
	ck_assert_str_eq(config_listener_name(CONFIG_LISTENER_SMTP), "smtp");
	ck_assert_str_eq(config_listener_name(CONFIG_LISTENER_SUBMISSION), "submission");
	ck_assert_str_eq(config_listener_name(CONFIG_LISTENER_SMTPS), "smtps");
	/* Every parameter has a name, unique, and a doc line. */
	for (i = 0; i < CONFIG_PARAM_COUNT; i++) {
		ck_assert_ptr_nonnull(config_param_name((enum config_param)i));
		ck_assert_ptr_nonnull(config_param_doc((enum config_param)i));
		for (j = i + 1; j < CONFIG_PARAM_COUNT; j++)
			ck_assert_str_ne(config_param_name((enum config_param)i),
			    config_param_name((enum config_param)j));
	}
}
END_TEST

START_TEST(test_empty_file)
{
	struct buf errors;
	struct config *cfg;
	char *path;

	buf_init(&errors, TEST_ERRORS_MAX);
	cfg = test_load("", &errors, &path);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
	ck_assert(!config_is_dev(cfg));
	ck_assert_str_eq(config_path(cfg), path);
	ck_assert_str_eq(config_str(cfg, P_QUEUE_DIRECTORY), "/var/spool/tern");
	ck_assert_str_eq(config_str(cfg, P_MAIL_OWNER), "tern");
	ck_assert(strchr(config_str(cfg, P_MYHOSTNAME), '.') != NULL);
	config_free(cfg);
	free(path);
	buf_free(&errors);
}
END_TEST

/* ---- misuse is a bug: panic(), which aborts ---- */

static void misuse_bool_on_str(const struct config *c) { config_bool(c, P_RELAYHOST); }
static void misuse_str_on_time(const struct config *c) { config_str(c, P_SMTPD_TIMEOUT); }
static void misuse_int_on_time(const struct config *c) { config_int(c, P_SMTPD_TIMEOUT); }
static void misuse_time_on_size(const struct config *c) { config_time(c, P_MESSAGE_SIZE_LIMIT); }
static void misuse_list_on_networks(const struct config *c) { config_list(c, P_MYNETWORKS); }
static void misuse_str_on_list(const struct config *c) { config_str(c, P_MYDESTINATION); }

static void
misuse_networks_on_list(const struct config *c)
{
	size_t n;

	config_networks(c, P_MYDESTINATION, &n);
}

static void
misuse_listen_on_networks(const struct config *c)
{
	size_t n;

	config_listen(c, P_MYNETWORKS, &n);
}

static void
misuse_bad_listener(const struct config *c)
{
	config_lstr(c, CONFIG_LISTENER_COUNT, P_RELAYHOST);
}

static void
misuse_bad_param(const struct config *c)
{
	config_str(c, CONFIG_PARAM_COUNT);
}

static void
misuse_rates_on_list(const struct config *c)
{
	size_t n;

	config_rates(c, P_NOTIFY_CLASSES, &n);
}

static void
misuse_list_on_rates(const struct config *c)
{
	config_list(c, P_DESTINATION_RATE_LIMITS);
}

static void
misuse_tint_on_time(const struct config *c)
{
	config_tint(c, "smtp", P_DEFAULT_DESTINATION_RATE_DELAY);
}

static void
misuse_ttime_on_int(const struct config *c)
{
	config_ttime(c, NULL, P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT);
}

static void
misuse_tint_bad_param(const struct config *c)
{
	config_tint(c, "smtp", CONFIG_PARAM_COUNT);
}

static void (*const misuse_cases[])(const struct config *) = {
	misuse_bool_on_str, misuse_str_on_time, misuse_int_on_time, misuse_time_on_size,
	misuse_list_on_networks, misuse_str_on_list, misuse_networks_on_list,
	misuse_listen_on_networks, misuse_bad_listener, misuse_bad_param,
	misuse_rates_on_list, misuse_list_on_rates, misuse_tint_on_time, misuse_ttime_on_int,
	misuse_tint_bad_param,
};

START_TEST(test_misuse_panics)
{
	struct config *cfg = test_load(HOST, NULL, NULL);

	ck_assert_ptr_nonnull(cfg);
	misuse_cases[_i](cfg);
	config_free(cfg);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_values, 0, (int)NELEM(value_cases));
	tcase_add_loop_test(tc, test_errors, 0, (int)NELEM(error_cases));
	tcase_add_loop_test(tc, test_transports, 0, (int)NELEM(transport_cases));
	tcase_add_loop_test(tc, test_rate_lookup, 0, (int)NELEM(lookup_cases));
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_unreadable);
	tcase_add_test(tc, test_expansion_too_long);
	tcase_add_test(tc, test_dev_defaults);
	tcase_add_loop_test(tc, test_networks_match, 0, (int)NELEM(match_cases));
	tcase_add_test(tc, test_dump);
	tcase_add_test(tc, test_dump_dev);
	tcase_add_test(tc, test_restrictions_table);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_small_error_buffer);
	tcase_add_test(tc, test_fixture);
	tcase_add_loop_test_raise_signal(tc, test_misuse_panics, SIGABRT, 0,
	    (int)NELEM(misuse_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
