/*
 * The one table of parameters. Included with CONFIG_PARAM defined:
 *   CONFIG_PARAM(ID, "name", TYPE, FLAGS, "default", "choices"|NULL, "doc")
 * Defaults may use $name expansion. Names follow Postfix wherever the
 * meaning is the same. Development defaults (no file) are applied on top in
 * config.c, not here.
 *
 * "choices" is an ENUM's set of values, or for a LIST the items it may
 * hold (each item checked, case-insensitively, and kept in the table's
 * spelling); NULL elsewhere.
 *
 * CONFIG_F_LISTENER marks what a listener may override (submission_NAME,
 * smtps_NAME, reinject_NAME). CONFIG_F_TRANSPORT marks what a transport may override
 * (TRANSPORT_REST for default_REST); only INT, SIZE and TIME parameters
 * named default_... may carry it.
 */
#define L CONFIG_F_LISTENER
#define T CONFIG_F_TRANSPORT

/* ---- identity ---- */
CONFIG_PARAM(P_MYHOSTNAME, "myhostname", CONFIG_STR, 0, "", NULL,
	"the fully qualified name of this host (default: from gethostname)")
CONFIG_PARAM(P_MYDOMAIN, "mydomain", CONFIG_STR, 0, "", NULL,
	"the domain of this host (default: myhostname less its first label)")
CONFIG_PARAM(P_MYORIGIN, "myorigin", CONFIG_STR, 0, "$myhostname", NULL,
	"the domain appended to unqualified addresses of local submissions")
CONFIG_PARAM(P_MAIL_NAME, "mail_name", CONFIG_STR, 0, "tern", NULL,
	"the name of the mail system, in the banner and Received headers")
CONFIG_PARAM(P_SMTPD_BANNER, "smtpd_banner", CONFIG_STR, L, "$myhostname ESMTP $mail_name", NULL,
	"the text after 220 in the greeting")

/* ---- address classes and routing ---- */
CONFIG_PARAM(P_MYDESTINATION, "mydestination", CONFIG_LIST, 0,
	"$myhostname, localhost.$mydomain, localhost", NULL,
	"domains delivered locally (alias_maps, then local_transport)")
CONFIG_PARAM(P_MYNETWORKS, "mynetworks", CONFIG_NETWORKS, L, "127.0.0.0/8 [::1]/128", NULL,
	"client networks trusted to relay")
CONFIG_PARAM(P_RELAY_DOMAINS, "relay_domains", CONFIG_LIST, 0, "", NULL,
	"domains accepted for relaying to their MX")
CONFIG_PARAM(P_VIRTUAL_MAILBOX_DOMAINS, "virtual_mailbox_domains", CONFIG_LIST, 0, "", NULL,
	"domains whose mailboxes are listed in virtual_mailbox_maps")
CONFIG_PARAM(P_VIRTUAL_MAILBOX_MAPS, "virtual_mailbox_maps", CONFIG_LIST, 0, "", NULL,
	"maps of valid virtual mailbox addresses (lmdb:/path, texthash:/path)")
CONFIG_PARAM(P_VIRTUAL_ALIAS_MAPS, "virtual_alias_maps", CONFIG_LIST, 0, "", NULL,
	"maps rewriting recipient addresses to other addresses")
CONFIG_PARAM(P_VIRTUAL_ALIAS_DOMAINS, "virtual_alias_domains", CONFIG_LIST, 0,
	"$virtual_alias_maps", NULL,
	"domains without mailboxes: every address must be rewritten by virtual_alias_maps "
	"(a type:table item: the domains are its keys)")
CONFIG_PARAM(P_VIRTUAL_ALIAS_RECURSION_LIMIT, "virtual_alias_recursion_limit", CONFIG_INT, 0,
	"1000", NULL, "deepest nesting of virtual_alias_maps lookups (451 4.6.0 beyond)")
CONFIG_PARAM(P_VIRTUAL_ALIAS_EXPANSION_LIMIT, "virtual_alias_expansion_limit", CONFIG_INT, 0,
	"1000", NULL, "most addresses one virtual_alias_maps expansion may produce (451 4.6.0 beyond)")
CONFIG_PARAM(P_PROPAGATE_UNMATCHED_EXTENSIONS, "propagate_unmatched_extensions", CONFIG_LIST, 0,
	"canonical, virtual", "canonical|virtual|alias|forward|include|generic",
	"where an address extension matched by no table is added to the results "
	"(virtual: virtual_alias_maps, alias: alias_maps, include: :include: files)")
CONFIG_PARAM(P_ALIAS_MAPS, "alias_maps", CONFIG_LIST, 0, "", NULL,
	"alias maps for local recipients (/etc/aliases format)")
CONFIG_PARAM(P_LOCAL_RECIPIENT_MAPS, "local_recipient_maps", CONFIG_LIST, 0,
	"unix:passwd.byname${alias_maps?, $alias_maps}", NULL,
	"tables of the valid local recipients, unix:passwd.byname being the password database "
	"(empty: accept every local recipient)")
CONFIG_PARAM(P_RECIPIENT_DELIMITER, "recipient_delimiter", CONFIG_STR, 0, "", NULL,
	"characters separating a local part from its extension (user+tag)")
CONFIG_PARAM(P_LOCAL_TRANSPORT, "local_transport", CONFIG_STR, 0, "local", NULL,
	"next hop for mydestination: local, lmtp:unix:/path, lmtp:inet:host:port")
CONFIG_PARAM(P_VIRTUAL_TRANSPORT, "virtual_transport", CONFIG_STR, 0, "lmtp:unix:/run/dovecot/lmtp", NULL,
	"next hop for virtual_mailbox_domains")
CONFIG_PARAM(P_DEFAULT_TRANSPORT, "default_transport", CONFIG_STR, 0, "smtp", NULL,
	"transport (optionally transport:nexthop) for mail that is neither local nor virtual")
CONFIG_PARAM(P_TRANSPORT_MAPS, "transport_maps", CONFIG_LIST, 0, "", NULL,
	"per-domain next hops (example.org smtp:[10.0.0.5]:25)")
CONFIG_PARAM(P_RELAYHOST, "relayhost", CONFIG_STR, 0, "", NULL,
	"send all non-local mail through this host ([host]:port = no MX lookup)")
CONFIG_PARAM(P_SMTP_PORT, "smtp_port", CONFIG_INT, 0, "25", NULL,
	"the port of next hops found through MX or A/AAAA records")
CONFIG_PARAM(P_LMTP_TCP_PORT, "lmtp_tcp_port", CONFIG_INT, 0, "24", NULL,
	"the port of lmtp:inet: next hops that name none")
CONFIG_PARAM(P_DNS_SERVERS, "dns_servers", CONFIG_LIST, 0, "", NULL,
	"resolvers to use instead of /etc/resolv.conf (ip[:port] list)")
CONFIG_PARAM(P_INET_PROTOCOLS, "inet_protocols", CONFIG_ENUM, 0, "all", "all|ipv4|ipv6",
	"address families used for outbound connections")
CONFIG_PARAM(P_CONTENT_FILTER, "content_filter", CONFIG_FILTER, L, "", NULL,
	"after-queue filter next hop, e.g. smtp:[127.0.0.1]:10024: every recipient of mail "
	"received goes there (empty: none); the filter hands it back on reinject_listen")
CONFIG_PARAM(P_HEADER_CHECKS, "header_checks", CONFIG_LIST, L, "", NULL,
	"maps (regexp:/path ...) the primary message headers are looked up in, "
	"with header_checks(5) actions (doc/content_checks.md)")
CONFIG_PARAM(P_MIME_HEADER_CHECKS, "mime_header_checks", CONFIG_LIST, L, "$header_checks", NULL,
	"maps for MIME headers (Content-*, MIME-Version) and the headers of body parts")
CONFIG_PARAM(P_NESTED_HEADER_CHECKS, "nested_header_checks", CONFIG_LIST, L, "$header_checks",
	NULL, "maps for the non-MIME headers of attached messages (message/rfc822)")
CONFIG_PARAM(P_BODY_CHECKS, "body_checks", CONFIG_LIST, L, "", NULL,
	"maps the message body is looked up in, one line at a time")
CONFIG_PARAM(P_HEADER_SIZE_LIMIT, "header_size_limit", CONFIG_SIZE, 0, "102400", NULL,
	"longest header (continuation lines included) kept and checked; the excess is dropped")
CONFIG_PARAM(P_BODY_CHECKS_SIZE_LIMIT, "body_checks_size_limit", CONFIG_SIZE, 0, "51200", NULL,
	"how much of each body part body_checks look at, in bytes")
CONFIG_PARAM(P_HOPCOUNT_LIMIT, "hopcount_limit", CONFIG_INT, 0, "50", NULL,
	"most Received headers a message may carry before it is a loop (554 5.4.6)")

/* ---- listeners ---- */
CONFIG_PARAM(P_SMTPD_LISTEN, "smtpd_listen", CONFIG_LISTEN, 0, "0.0.0.0:25", NULL,
	"address:port list of the port-25 SMTP listener")
CONFIG_PARAM(P_SUBMISSION_LISTEN, "submission_listen", CONFIG_LISTEN, 0, "0.0.0.0:587", NULL,
	"address:port list of the submission listener (587)")
CONFIG_PARAM(P_SMTPS_LISTEN, "smtps_listen", CONFIG_LISTEN, 0, "", NULL,
	"address:port list of the implicit-TLS submission listener (465)")
CONFIG_PARAM(P_REINJECT_LISTEN, "reinject_listen", CONFIG_LISTEN, 0, "", NULL,
	"address:port list of the listener a content filter re-injects mail into "
	"(never filtered; e.g. 127.0.0.1:10025)")

/* ---- spool, processes, logging ---- */
CONFIG_PARAM(P_QUEUE_DIRECTORY, "queue_directory", CONFIG_STR, 0, "/var/spool/tern", NULL,
	"the spool: LMDB index, message files, sockets")
CONFIG_PARAM(P_MAIL_OWNER, "mail_owner", CONFIG_STR, 0, "tern", NULL,
	"the unprivileged user every child role runs as")
CONFIG_PARAM(P_LOG_FILE, "log_file", CONFIG_STR, 0, "", NULL,
	"file to log to instead of syslog (empty: syslog, facility mail)")
CONFIG_PARAM(P_SPOOL_FSYNC_THREADS, "spool_fsync_threads", CONFIG_INT, 0, "8", NULL,
	"threads that make message files durable in parallel (group commit)")
CONFIG_PARAM(P_SPOOL_MAP_SIZE, "spool_map_size", CONFIG_SIZE, 0, "64m", NULL,
	"initial size of the LMDB index map; it grows when full")
CONFIG_PARAM(P_SMTPD_DRAIN_TIMEOUT, "smtpd_drain_timeout", CONFIG_TIME, 0, "60s", NULL,
	"on SIGTERM, how long sessions in a transaction may take to finish")

/* ---- smtpd limits ---- */
CONFIG_PARAM(P_MESSAGE_SIZE_LIMIT, "message_size_limit", CONFIG_SIZE, L, "10240000", NULL,
	"largest message accepted, in bytes (552 5.3.4); 0 = no limit")
CONFIG_PARAM(P_LINE_LENGTH_LIMIT, "line_length_limit", CONFIG_SIZE, L, "2048", NULL,
	"longest SMTP command line, CRLF included (500 5.5.2); AUTH lines may be 12288")
CONFIG_PARAM(P_MESSAGE_LINE_LENGTH_LIMIT, "message_line_length_limit", CONFIG_SIZE, L, "65536", NULL,
	"longest line of message content, CRLF included (554 5.6.0); 0 = no limit")
CONFIG_PARAM(P_SMTPD_RECIPIENT_LIMIT, "smtpd_recipient_limit", CONFIG_INT, L, "1000", NULL,
	"most recipients in one transaction (452 4.5.3)")
CONFIG_PARAM(P_SMTPD_HELO_REQUIRED, "smtpd_helo_required", CONFIG_BOOL, L, "no", NULL,
	"require HELO or EHLO before MAIL")
CONFIG_PARAM(P_DISABLE_VRFY_COMMAND, "disable_vrfy_command", CONFIG_BOOL, L, "no", NULL,
	"answer VRFY with 502 5.5.1")
CONFIG_PARAM(P_SMTPD_SOFT_ERROR_LIMIT, "smtpd_soft_error_limit", CONFIG_INT, L, "10", NULL,
	"errors after which each reply is delayed by smtpd_error_sleep_time")
CONFIG_PARAM(P_SMTPD_HARD_ERROR_LIMIT, "smtpd_hard_error_limit", CONFIG_INT, L, "20", NULL,
	"errors after which the session ends with 421 4.7.0")
CONFIG_PARAM(P_SMTPD_ERROR_SLEEP_TIME, "smtpd_error_sleep_time", CONFIG_TIME, L, "1s", NULL,
	"delay before each reply once the soft error limit is reached")
CONFIG_PARAM(P_SMTPD_TIMEOUT, "smtpd_timeout", CONFIG_TIME, L, "300s", NULL,
	"idle time allowed while waiting for a client command or data (421 4.4.2)")
CONFIG_PARAM(P_SMTPD_FORBID_BARE_NEWLINE, "smtpd_forbid_bare_newline", CONFIG_ENUM, L,
	"normalize", "normalize|reject|yes",
	"bare LF in commands and data: normalize to CRLF, or reject (550 5.5.2); "
	"end of data is always and only CRLF.CRLF")
CONFIG_PARAM(P_SMTPD_CLIENT_CONNECTION_LIMIT, "smtpd_client_connection_limit", CONFIG_INT, 0, "20000", NULL,
	"most concurrent SMTP sessions over all listeners (421 4.7.0 beyond)")
CONFIG_PARAM(P_SMTPD_DELAY_REJECT, "smtpd_delay_reject", CONFIG_BOOL, L, "yes", NULL,
	"evaluate client, helo and sender restrictions at RCPT time")
CONFIG_PARAM(P_SMTPD_PEERNAME_LOOKUP, "smtpd_peername_lookup", CONFIG_BOOL, L, "yes", NULL,
	"look up the client's name before the greeting (PTR, then the name's A or AAAA must "
	"give the client's address back); no: every client is \"unknown\", no DNS")
CONFIG_PARAM(P_SMTPD_PEERNAME_LOOKUP_TIMEOUT, "smtpd_peername_lookup_timeout", CONFIG_TIME, L, "10s", NULL,
	"longest wait for those lookups; past it the names are \"unknown\" (a temporary failure)")
CONFIG_PARAM(P_SMTPD_AUTHORIZED_XFORWARD_HOSTS, "smtpd_authorized_xforward_hosts", CONFIG_NETWORKS, L,
	"", NULL, "clients allowed to use XFORWARD (reinject_listen: 127.0.0.0/8 [::1]/128)")

/* ---- client and SASL-user rate limits (Postfix's anvil(8); doc/anvil.md) ---- */
CONFIG_PARAM(P_ANVIL_RATE_TIME_UNIT, "anvil_rate_time_unit", CONFIG_TIME, 0, "60s", NULL,
	"the time unit of every rate limit below (a fixed window per client, opened by its "
	"first event)")
CONFIG_PARAM(P_ANVIL_STATUS_UPDATE_TIME, "anvil_status_update_time", CONFIG_TIME, 0, "600s", NULL,
	"how often smtpd logs the peak client rates and counts (anvil(8)'s \"statistics:\" "
	"lines), and once more when it stops")
CONFIG_PARAM(P_SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS, "smtpd_client_event_limit_exceptions",
	CONFIG_NETWORKS, L, "$mynetworks", NULL,
	"client networks that no client count or rate limit applies to")
CONFIG_PARAM(P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT, "smtpd_client_connection_count_limit",
	CONFIG_INT, L, "50", NULL,
	"most simultaneous sessions one client address may hold on a listener (421 4.7.0; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_CLIENT_CONNECTION_RATE_LIMIT, "smtpd_client_connection_rate_limit",
	CONFIG_INT, L, "0", NULL,
	"most connections per time unit from one client address (421 4.7.0; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_CLIENT_MESSAGE_RATE_LIMIT, "smtpd_client_message_rate_limit",
	CONFIG_INT, L, "0", NULL,
	"most MAIL commands per time unit from one client address (450 4.7.1; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_CLIENT_RECIPIENT_RATE_LIMIT, "smtpd_client_recipient_rate_limit",
	CONFIG_INT, L, "0", NULL,
	"most RCPT commands per time unit from one client address (450 4.7.1; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_CLIENT_NEW_TLS_SESSION_RATE_LIMIT,
	"smtpd_client_new_tls_session_rate_limit", CONFIG_INT, L, "0", NULL,
	"most new (not resumed) TLS sessions per time unit from one client address "
	"(0 = no limit)")
CONFIG_PARAM(P_SMTPD_CLIENT_AUTH_RATE_LIMIT, "smtpd_client_auth_rate_limit", CONFIG_INT, L, "0",
	NULL, "most AUTH commands per time unit from one client address (450 4.7.1; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_SASL_USER_MESSAGE_RATE_LIMIT, "smtpd_sasl_user_message_rate_limit",
	CONFIG_INT, L, "0", NULL,
	"tern: most MAIL commands per time unit from one SASL login, over every client address "
	"(450 4.7.1; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_SASL_USER_RECIPIENT_RATE_LIMIT, "smtpd_sasl_user_recipient_rate_limit",
	CONFIG_INT, L, "0", NULL,
	"tern: most RCPT commands per time unit from one SASL login, over every client address "
	"(450 4.7.1; 0 = no limit)")
CONFIG_PARAM(P_SMTPD_SASL_USER_RATE_LIMIT_EXCEPTIONS, "smtpd_sasl_user_rate_limit_exceptions",
	CONFIG_LIST, L, "", NULL,
	"tern: SASL logins (case-insensitive) that the SASL-user rate limits do not apply to")

/* ---- restrictions ---- */
CONFIG_PARAM(P_SMTPD_CLIENT_RESTRICTIONS, "smtpd_client_restrictions", CONFIG_RESTRICTIONS, L, "", NULL,
	"restrictions applied to the client's address and name")
CONFIG_PARAM(P_SMTPD_HELO_RESTRICTIONS, "smtpd_helo_restrictions", CONFIG_RESTRICTIONS, L, "", NULL,
	"restrictions applied to the HELO/EHLO name")
CONFIG_PARAM(P_SMTPD_SENDER_RESTRICTIONS, "smtpd_sender_restrictions", CONFIG_RESTRICTIONS, L, "", NULL,
	"restrictions applied to MAIL FROM")
CONFIG_PARAM(P_SMTPD_RELAY_RESTRICTIONS, "smtpd_relay_restrictions", CONFIG_RESTRICTIONS, L,
	"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", NULL,
	"relay control applied to RCPT TO before smtpd_recipient_restrictions")
CONFIG_PARAM(P_SMTPD_RECIPIENT_RESTRICTIONS, "smtpd_recipient_restrictions", CONFIG_RESTRICTIONS, L, "", NULL,
	"restrictions applied to RCPT TO")
CONFIG_PARAM(P_SMTPD_DATA_RESTRICTIONS, "smtpd_data_restrictions", CONFIG_RESTRICTIONS, L, "", NULL,
	"restrictions applied to DATA/BDAT")
CONFIG_PARAM(P_SMTPD_END_OF_DATA_RESTRICTIONS, "smtpd_end_of_data_restrictions", CONFIG_RESTRICTIONS, L,
	"", NULL, "restrictions applied at the end of the message content")
CONFIG_PARAM(P_SMTPD_POLICY_SERVICE_TIMEOUT, "smtpd_policy_service_timeout", CONFIG_TIME, 0, "100s", NULL,
	"time limit for a policy server's answer (then smtpd_policy_service_default_action)")
CONFIG_PARAM(P_SMTPD_POLICY_SERVICE_MAX_IDLE, "smtpd_policy_service_max_idle", CONFIG_TIME, 0, "300s", NULL,
	"how long an unused connection to a policy server is kept")
CONFIG_PARAM(P_SMTPD_POLICY_SERVICE_MAX_TTL, "smtpd_policy_service_max_ttl", CONFIG_TIME, 0, "1000s", NULL,
	"how long a connection to a policy server is used before a new one is made")
CONFIG_PARAM(P_SMTPD_POLICY_SERVICE_DEFAULT_ACTION, "smtpd_policy_service_default_action", CONFIG_STR, L,
	"451 4.3.5 Server configuration problem", NULL,
	"the action taken when a policy server does not answer in time or cannot be reached")
CONFIG_PARAM(P_SMTPD_NULL_ACCESS_LOOKUP_KEY, "smtpd_null_access_lookup_key", CONFIG_STR, L, "<>", NULL,
	"the key check_sender_access looks up for the null sender")
CONFIG_PARAM(P_UNKNOWN_ADDRESS_REJECT_CODE, "unknown_address_reject_code", CONFIG_INT, L, "450", NULL,
	"reply code of reject_unknown_sender_domain and reject_unknown_recipient_domain "
	"when the domain has no A, AAAA or MX record")
CONFIG_PARAM(P_UNKNOWN_ADDRESS_TEMPFAIL_ACTION, "unknown_address_tempfail_action", CONFIG_ENUM, L,
	"defer_if_permit", "defer_if_permit|defer",
	"what reject_unknown_*_domain do when the DNS lookup fails temporarily")
CONFIG_PARAM(P_UNKNOWN_CLIENT_REJECT_CODE, "unknown_client_reject_code", CONFIG_INT, L, "450", NULL,
	"reply code of reject_unknown_client_hostname and reject_unknown_reverse_client_hostname")
CONFIG_PARAM(P_UNKNOWN_HOSTNAME_REJECT_CODE, "unknown_hostname_reject_code", CONFIG_INT, L, "450", NULL,
	"reply code of reject_unknown_helo_hostname")
CONFIG_PARAM(P_NON_FQDN_REJECT_CODE, "non_fqdn_reject_code", CONFIG_INT, L, "504", NULL,
	"reply code of the reject_non_fqdn_* restrictions")
CONFIG_PARAM(P_INVALID_HOSTNAME_REJECT_CODE, "invalid_hostname_reject_code", CONFIG_INT, L, "501", NULL,
	"reply code of reject_invalid_helo_hostname")
CONFIG_PARAM(P_MAPS_RBL_REJECT_CODE, "maps_rbl_reject_code", CONFIG_INT, L, "554", NULL,
	"reply code of reject_rbl_client and reject_rhsbl_* for a listed client or name ($rbl_code)")
CONFIG_PARAM(P_DEFAULT_RBL_REPLY, "default_rbl_reply", CONFIG_RBL_REPLY, L | CONFIG_F_RAW,
	"$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using "
	"$rbl_domain${rbl_reason?; $rbl_reason}", NULL,
	"the reply to a client, name or address on a DNS list; its $names ($rbl_code, "
	"$rbl_class, $rbl_what, $rbl_domain, $rbl_reason, $client_address, ...) are filled "
	"in when it is used; unknown names are errors when the file is read")
CONFIG_PARAM(P_ACCESS_MAP_REJECT_CODE, "access_map_reject_code", CONFIG_INT, L, "554", NULL,
	"reply code of a REJECT action in an access map or from a policy server")
CONFIG_PARAM(P_ACCESS_MAP_DEFER_CODE, "access_map_defer_code", CONFIG_INT, L, "450", NULL,
	"reply code of a DEFER action in an access map or from a policy server")
CONFIG_PARAM(P_RELAY_DOMAINS_REJECT_CODE, "relay_domains_reject_code", CONFIG_INT, L, "554", NULL,
	"reply code of reject_unauth_destination")
CONFIG_PARAM(P_REJECT_CODE, "reject_code", CONFIG_INT, L, "554", NULL,
	"reply code of the reject restriction")
CONFIG_PARAM(P_DEFER_CODE, "defer_code", CONFIG_INT, L, "450", NULL,
	"reply code of the defer restriction")

/* ---- Milter (doc/milter.md; Postfix's MILTER_README and postconf(5)) ---- */
CONFIG_PARAM(P_SMTPD_MILTERS, "smtpd_milters", CONFIG_MILTERS, L, "", NULL,
	"Milter applications for mail from the network listeners: unix:/path, inet:host:port, "
	"or { inet:host:port, default_action=accept, command_timeout=10s, ... }")
CONFIG_PARAM(P_NON_SMTPD_MILTERS, "non_smtpd_milters", CONFIG_MILTERS, 0, "", NULL,
	"Milter applications for mail submitted with the sendmail command")
CONFIG_PARAM(P_MILTER_PROTOCOL, "milter_protocol", CONFIG_ENUM, 0, "6", "2|3|4|6",
	"the Milter protocol version offered to the applications")
CONFIG_PARAM(P_MILTER_DEFAULT_ACTION, "milter_default_action", CONFIG_ENUM, L, "tempfail",
	"accept|reject|tempfail|quarantine|shutdown",
	"what to do when a Milter application is unavailable or misbehaves")
CONFIG_PARAM(P_MILTER_CONNECT_TIMEOUT, "milter_connect_timeout", CONFIG_TIME, 0, "30s", NULL,
	"time limit for connecting to a Milter application and negotiating options")
CONFIG_PARAM(P_MILTER_COMMAND_TIMEOUT, "milter_command_timeout", CONFIG_TIME, 0, "30s", NULL,
	"time limit for sending an SMTP command to a Milter application and its reply")
CONFIG_PARAM(P_MILTER_CONTENT_TIMEOUT, "milter_content_timeout", CONFIG_TIME, 0, "300s", NULL,
	"time limit for sending message content to a Milter application and its reply")
CONFIG_PARAM(P_MILTER_MACRO_DAEMON_NAME, "milter_macro_daemon_name", CONFIG_STR, 0, "$myhostname",
	NULL, "the {daemon_name} macro value")
CONFIG_PARAM(P_MILTER_MACRO_V, "milter_macro_v", CONFIG_STR, 0, "$mail_name " TERN_VERSION, NULL,
	"the v macro value")
CONFIG_PARAM(P_MILTER_CONNECT_MACROS, "milter_connect_macros", CONFIG_LIST, 0,
	"j {daemon_name} {daemon_addr} v _", NULL, "macros sent after the connection is made")
CONFIG_PARAM(P_MILTER_HELO_MACROS, "milter_helo_macros", CONFIG_LIST, 0,
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", NULL,
	"macros sent after HELO or EHLO")
CONFIG_PARAM(P_MILTER_MAIL_MACROS, "milter_mail_macros", CONFIG_LIST, 0,
	"i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}", NULL,
	"macros sent after MAIL FROM")
CONFIG_PARAM(P_MILTER_RCPT_MACROS, "milter_rcpt_macros", CONFIG_LIST, 0,
	"i {rcpt_addr} {rcpt_host} {rcpt_mailer}", NULL, "macros sent after RCPT TO")
CONFIG_PARAM(P_MILTER_DATA_MACROS, "milter_data_macros", CONFIG_LIST, 0, "i", NULL,
	"macros sent after DATA")
CONFIG_PARAM(P_MILTER_END_OF_HEADER_MACROS, "milter_end_of_header_macros", CONFIG_LIST, 0, "i",
	NULL, "macros sent after the end of the message header")
CONFIG_PARAM(P_MILTER_END_OF_DATA_MACROS, "milter_end_of_data_macros", CONFIG_LIST, 0, "i", NULL,
	"macros sent after the end of the message")

/* ---- TLS ---- */
CONFIG_PARAM(P_SMTPD_TLS_CERT_FILE, "smtpd_tls_cert_file", CONFIG_STR, L, "", NULL,
	"PEM certificate chain of the listener")
CONFIG_PARAM(P_SMTPD_TLS_KEY_FILE, "smtpd_tls_key_file", CONFIG_STR, L, "$smtpd_tls_cert_file", NULL,
	"PEM private key of the listener")
CONFIG_PARAM(P_SMTPD_TLS_SECURITY_LEVEL, "smtpd_tls_security_level", CONFIG_ENUM, L, "none",
	"none|may|encrypt", "STARTTLS policy of the listener")
CONFIG_PARAM(P_SMTPD_TLS_AUTH_ONLY, "smtpd_tls_auth_only", CONFIG_BOOL, L, "yes", NULL,
	"offer AUTH only over TLS")
/* ---- outbound SMTP client (the smtp agent; RFC 5321 4.5.3.2 timeouts) ---- */
CONFIG_PARAM(P_SMTP_HELO_NAME, "smtp_helo_name", CONFIG_STR, 0, "$myhostname", NULL,
	"the name the SMTP client sends in EHLO/HELO")
CONFIG_PARAM(P_SMTP_CONNECT_TIMEOUT, "smtp_connect_timeout", CONFIG_TIME, 0, "30s", NULL,
	"time limit for a TCP connection to be set up")
CONFIG_PARAM(P_SMTP_HELO_TIMEOUT, "smtp_helo_timeout", CONFIG_TIME, 0, "300s", NULL,
	"time limit for the greeting and the replies to EHLO/HELO and STARTTLS")
CONFIG_PARAM(P_SMTP_MAIL_TIMEOUT, "smtp_mail_timeout", CONFIG_TIME, 0, "300s", NULL,
	"time limit for the reply to MAIL FROM")
CONFIG_PARAM(P_SMTP_RCPT_TIMEOUT, "smtp_rcpt_timeout", CONFIG_TIME, 0, "300s", NULL,
	"time limit for the reply to RCPT TO")
CONFIG_PARAM(P_SMTP_DATA_INIT_TIMEOUT, "smtp_data_init_timeout", CONFIG_TIME, 0, "120s", NULL,
	"time limit for the reply to DATA")
CONFIG_PARAM(P_SMTP_DATA_XFER_TIMEOUT, "smtp_data_xfer_timeout", CONFIG_TIME, 0, "180s", NULL,
	"time limit for the server to take more message content")
CONFIG_PARAM(P_SMTP_DATA_DONE_TIMEOUT, "smtp_data_done_timeout", CONFIG_TIME, 0, "600s", NULL,
	"time limit for the reply to the final dot")
CONFIG_PARAM(P_SMTP_QUIT_TIMEOUT, "smtp_quit_timeout", CONFIG_TIME, 0, "300s", NULL,
	"time limit for the reply to QUIT (and RSET)")
CONFIG_PARAM(P_SMTP_MX_ADDRESS_LIMIT, "smtp_mx_address_limit", CONFIG_INT, 0, "5", NULL,
	"most addresses tried for one delivery (0 = no limit)")
CONFIG_PARAM(P_SMTP_MX_SESSION_LIMIT, "smtp_mx_session_limit", CONFIG_INT, 0, "2", NULL,
	"most SMTP sessions (connections that got a greeting) per delivery (0 = no limit)")
CONFIG_PARAM(P_SMTP_CONNECTION_CACHE_TIME_LIMIT, "smtp_connection_cache_time_limit", CONFIG_TIME, 0,
	"2s", NULL, "how long an idle connection is kept for the next message to its destination")
CONFIG_PARAM(P_SMTP_SEND_XFORWARD_COMMAND, "smtp_send_xforward_command", CONFIG_BOOL, 0, "no", NULL,
	"send XFORWARD to every server that offers it (the content filter always gets it)")
CONFIG_PARAM(P_SMTP_TLS_SECURITY_LEVEL, "smtp_tls_security_level", CONFIG_ENUM, 0, "may",
	"none|may|encrypt|verify|dane|dane-only", "outbound TLS policy (dane: RFC 7672, needs "
	"smtp_dns_support_level = dnssec)")
CONFIG_PARAM(P_SMTP_TLS_CAFILE, "smtp_tls_CAfile", CONFIG_STR, 0, "/etc/ssl/certs/ca-certificates.crt", NULL,
	"CA bundle for smtp_tls_security_level = verify")
CONFIG_PARAM(P_SMTP_TLS_POLICY_MAPS, "smtp_tls_policy_maps", CONFIG_LIST, 0, "", NULL,
	"maps of next hop -> TLS policy (\"verify match=hostname:nexthop\", \"dane-only\", ...)")
CONFIG_PARAM(P_SMTP_TLS_PROTOCOLS, "smtp_tls_protocols", CONFIG_STR, 0, ">=TLSv1.2", NULL,
	"TLS protocols for opportunistic TLS (may); tern never goes below TLSv1.2")
CONFIG_PARAM(P_SMTP_TLS_MANDATORY_PROTOCOLS, "smtp_tls_mandatory_protocols", CONFIG_STR, 0,
	">=TLSv1.2", NULL, "TLS protocols for mandatory TLS (encrypt, verify, dane)")
CONFIG_PARAM(P_SMTP_DNS_SUPPORT_LEVEL, "smtp_dns_support_level", CONFIG_ENUM, 0, "enabled",
	"enabled|dnssec", "dnssec: ask for DNSSEC and trust the AD bit of the resolver (a local "
	"validating one, such as unbound); needed by the dane TLS levels")

/* ---- SASL ---- */
CONFIG_PARAM(P_SMTPD_SASL_AUTH_ENABLE, "smtpd_sasl_auth_enable", CONFIG_BOOL, L, "no", NULL,
	"offer SMTP AUTH")
CONFIG_PARAM(P_SMTPD_SASL_TYPE, "smtpd_sasl_type", CONFIG_ENUM, L, "cyrus", "cyrus|dovecot",
	"SASL implementation")
CONFIG_PARAM(P_SMTPD_SASL_PATH, "smtpd_sasl_path", CONFIG_STR, L, "smtpd", NULL,
	"cyrus: application name; dovecot: auth socket path")
CONFIG_PARAM(P_CYRUS_SASL_CONFIG_PATH, "cyrus_sasl_config_path", CONFIG_STR, 0, "", NULL,
	"directories searched for the Cyrus application config")
CONFIG_PARAM(P_SMTPD_SENDER_LOGIN_MAPS, "smtpd_sender_login_maps", CONFIG_LIST, L, "", NULL,
	"maps of envelope sender -> SASL logins allowed to use it")
CONFIG_PARAM(P_SMTP_SASL_AUTH_ENABLE, "smtp_sasl_auth_enable", CONFIG_BOOL, 0, "no", NULL,
	"authenticate to servers that offer AUTH, with smtp_sasl_password_maps")
CONFIG_PARAM(P_SMTP_SASL_PASSWORD_MAPS, "smtp_sasl_password_maps", CONFIG_LIST, 0, "", NULL,
	"maps of remote host name or next hop -> username:password for client AUTH")
CONFIG_PARAM(P_SMTP_SASL_SECURITY_OPTIONS, "smtp_sasl_security_options", CONFIG_LIST, 0,
	"noplaintext, noanonymous", NULL,
	"SASL mechanism properties required without TLS (noplaintext: no password in clear)")
CONFIG_PARAM(P_SMTP_SASL_TLS_SECURITY_OPTIONS, "smtp_sasl_tls_security_options", CONFIG_LIST, 0,
	"noanonymous", NULL, "SASL mechanism properties required over TLS")
CONFIG_PARAM(P_SMTP_SASL_MECHANISM_FILTER, "smtp_sasl_mechanism_filter", CONFIG_LIST, 0, "", NULL,
	"the server's SASL mechanisms that may be used (empty: all)")

/* ---- queue and retry ---- */
CONFIG_PARAM(P_MAXIMAL_QUEUE_LIFETIME, "maximal_queue_lifetime", CONFIG_TIME, CONFIG_F_UNIT_DAY, "5d", NULL,
	"how long a message may be deferred before it bounces")
CONFIG_PARAM(P_BOUNCE_QUEUE_LIFETIME, "bounce_queue_lifetime", CONFIG_TIME, CONFIG_F_UNIT_DAY, "5d", NULL,
	"the same for bounces")
CONFIG_PARAM(P_DELAY_WARNING_TIME, "delay_warning_time", CONFIG_TIME, CONFIG_F_UNIT_HOUR, "0h", NULL,
	"send a delay DSN after this long (0 = never)")
CONFIG_PARAM(P_MINIMAL_BACKOFF_TIME, "minimal_backoff_time", CONFIG_TIME, 0, "300s", NULL,
	"smallest retry interval where no retry rule matches")
CONFIG_PARAM(P_MAXIMAL_BACKOFF_TIME, "maximal_backoff_time", CONFIG_TIME, 0, "4000s", NULL,
	"largest retry interval where no retry rule matches")
CONFIG_PARAM(P_RETRY_RULES, "retry_rules", CONFIG_STR, 0, "", NULL,
	"file of Exim-syntax retry rules (PATTERN ERROR-CLASS RULES)")
CONFIG_PARAM(P_RETRY_INTERVAL_MAX, "retry_interval_max", CONFIG_TIME, 0, "24h", NULL,
	"largest interval between retries computed from retry_rules; values over 24h "
	"are forced to 24h (Exim)")

/* ---- queue manager: scanning and scheduling ---- */
CONFIG_PARAM(P_QUEUE_RUN_DELAY, "queue_run_delay", CONFIG_TIME, 0, "300s", NULL,
	"how often qmgr scans the spool for messages it was not told about")
CONFIG_PARAM(P_TRANSPORT_RETRY_TIME, "transport_retry_time", CONFIG_TIME, 0, "60s", NULL,
	"how long qmgr waits for a transport's delivery agent before deferring its mail "
	"(mail transport unavailable)")
CONFIG_PARAM(P_QMGR_MESSAGE_ACTIVE_LIMIT, "qmgr_message_active_limit", CONFIG_INT, 0, "20000", NULL,
	"most messages qmgr holds in its active set at once")
CONFIG_PARAM(P_DEFAULT_PROCESS_LIMIT, "default_process_limit", CONFIG_INT, 0, "100", NULL,
	"most delivery jobs running at once, over all delivery agents")
CONFIG_PARAM(P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT, "default_destination_concurrency_limit",
	CONFIG_INT, T, "20", NULL,
	"parallel deliveries to one destination (per transport: TRANSPORT_destination_concurrency_limit)")
CONFIG_PARAM(P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, "default_destination_recipient_limit",
	CONFIG_INT, T, "50", NULL,
	"most recipients in one delivery job (per transport: TRANSPORT_destination_recipient_limit)")
CONFIG_PARAM(P_DEFAULT_DESTINATION_RATE_DELAY, "default_destination_rate_delay", CONFIG_TIME, T, "0s", NULL,
	"pause between deliveries to one destination (per transport: "
	"TRANSPORT_destination_rate_delay)")
CONFIG_PARAM(P_DESTINATION_RATE_LIMITS, "destination_rate_limits", CONFIG_RATES, 0, "", NULL,
	"per-domain pause between deliveries, used when longer than the transport's rate "
	"delay: DOMAIN=RATE items, DOMAIN example.org (exactly) or .example.org (its "
	"subdomains), RATE a delay (500ms, 2s, 1m) or N/s, N/m, N/h, N/d")

/* ---- bounces and notices ---- */
CONFIG_PARAM(P_BOUNCE_SIZE_LIMIT, "bounce_size_limit", CONFIG_SIZE, 0, "50000", NULL,
	"most bytes of the original message returned in a bounce")
CONFIG_PARAM(P_DOUBLE_BOUNCE_SENDER, "double_bounce_sender", CONFIG_STR, 0, "double-bounce", NULL,
	"sender of postmaster notices; mail to it is discarded, ending bounce loops")
CONFIG_PARAM(P_NOTIFY_CLASSES, "notify_classes", CONFIG_LIST, 0, "resource, software",
	"bounce|2bounce|data|delay|policy|protocol|resource|software",
	"classes of problems reported to the postmaster (resource and software: our own trouble)")
CONFIG_PARAM(P_BOUNCE_NOTICE_RECIPIENT, "bounce_notice_recipient", CONFIG_STR, 0, "postmaster", NULL,
	"recipient of notices with the headers of bounced mail (bounce class)")
CONFIG_PARAM(P_2BOUNCE_NOTICE_RECIPIENT, "2bounce_notice_recipient", CONFIG_STR, 0, "postmaster", NULL,
	"recipient of bounces that could not be delivered (2bounce class)")
CONFIG_PARAM(P_DELAY_NOTICE_RECIPIENT, "delay_notice_recipient", CONFIG_STR, 0, "postmaster", NULL,
	"recipient of notices with the headers of delayed mail (delay class)")

/* ---- local delivery ---- */
CONFIG_PARAM(P_ALLOW_MAIL_TO_COMMANDS, "allow_mail_to_commands", CONFIG_BOOL, 0, "no", NULL,
	"allow aliases to |command")
CONFIG_PARAM(P_ALLOW_MAIL_TO_FILES, "allow_mail_to_files", CONFIG_BOOL, 0, "no", NULL,
	"allow aliases to /file")
CONFIG_PARAM(P_DEFAULT_PRIVS, "default_privs", CONFIG_STR, 0, "nobody", NULL,
	"the user whose rights run |command and /file targets of root-owned aliases")
CONFIG_PARAM(P_HOME_MAILBOX, "home_mailbox", CONFIG_STR, 0, "", NULL,
	"mailbox path relative to the home directory (ends in / for Maildir)")
CONFIG_PARAM(P_MAIL_SPOOL_DIRECTORY, "mail_spool_directory", CONFIG_STR, 0, "/var/mail", NULL,
	"where local mbox (or Maildir, ending in /) mailboxes live")

#undef L
#undef T
