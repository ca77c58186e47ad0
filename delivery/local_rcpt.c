/*
 * local_rcpt: the local transport's reading of a recipient (local_rcpt.h).
 * Pure string work; returns errors, never logs.
 */
#include "delivery/local_rcpt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/addr_resolve.h"

static char
local_rcpt_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int
local_rcpt_parse(const char *addr, const char *delimiters, const char *double_bounce,
                 struct local_rcpt *out)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at != NULL ? (size_t)(at - addr) : strlen(addr), n = 0, x;

	memset(out, 0, sizeof(*out));
	if (strlen(addr) >= LOCAL_RCPT_PART_MAX)
		return -1;
	/* RFC 5321 quoted-string: the quotes go, a backslash keeps the
	 * character after it (Postfix's internal form). */
	for (size_t i = 0; i < llen; i++) {
		char c = addr[i];

		if (c == '"')
			continue;
		if (c == '\\' && i + 1 < llen)
			c = addr[++i];
		out->local[n++] = local_rcpt_lower(c);
	}
	out->local[n] = '\0';
	if (at != NULL)
		for (size_t i = 0; at[1 + i] != '\0'; i++)
			out->domain[i] = local_rcpt_lower(at[1 + i]);
	x = addr_split_extension(out->local, n, delimiters, double_bounce);
	memcpy(out->user, out->local, x);
	out->user[x] = '\0';
	/* The delimiter itself is no part of the extension (Postfix's
	 * split_addr()); one with a '/' could name a file: dropped. */
	if (x < n && strchr(out->local + x + 1, '/') == NULL)
		memcpy(out->extension, out->local + x + 1, n - x - 1);
	return 0;
}

bool
local_rcpt_user_safe(const char *user)
{
	return user[0] != '\0' && strcmp(user, ".") != 0 && strcmp(user, "..") != 0 &&
	       strchr(user, '/') == NULL;
}

int
local_rcpt_mailbox(const char *home_mailbox, const char *home, const char *spool_dir,
                   const char *user, char *path, size_t pathsz, bool *maildir, bool *in_spool)
{
	size_t n;
	int w;

	if (home_mailbox[0] != '\0') {
		if (home[0] == '\0')
			return -1;
		n = strlen(home);
		/* "/" as the home directory must not give "//Maildir/". */
		w = snprintf(path, pathsz, "%s%s%s", home, home[n - 1] == '/' ? "" : "/",
		             home_mailbox);
		*maildir = home_mailbox[strlen(home_mailbox) - 1] == '/';
		*in_spool = false;
	} else {
		if (spool_dir[0] == '\0')
			return -1;
		n = strlen(spool_dir);
		*maildir = spool_dir[n - 1] == '/';
		w = *maildir ? snprintf(path, pathsz, "%s%s/", spool_dir, user)
		             : snprintf(path, pathsz, "%s/%s", spool_dir, user);
		*in_spool = true;
	}
	return w < 0 || (size_t)w >= pathsz ? -1 : 0;
}

gid_t
local_rcpt_spool_gid(mode_t spool_mode, gid_t spool_gid, gid_t user_gid)
{
	if (spool_mode & S_IWOTH)
		return user_gid;
	if ((spool_mode & S_IWGRP) && spool_gid != 0)
		return spool_gid;
	return user_gid;
}

const char *
local_rcpt_orcpt_addr(const char *orcpt)
{
	static const char *const types[] = { "rfc822;", "utf-8;" };

	if (orcpt == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = strlen(types[i]);

		if (strncasecmp(orcpt, types[i], n) == 0)
			return orcpt[n] != '\0' ? orcpt + n : NULL;
	}
	return NULL;
}
