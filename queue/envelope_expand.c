/*
 * envelope_expand: an address expansion stored as envelope recipients
 * (envelope_expand.h).
 */
#include "queue/envelope_expand.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "queue/agent_proto.h"

bool
envelope_target_too_long(const struct addr_target *t)
{
	if (t->kind != ADDR_TARGET_COMMAND && t->kind != ADDR_TARGET_FILE)
		return strlen(t->value) >= AGENT_ADDR_MAX;
	/* "|" + command, or the path, must fit an agent frame's target. */
	return strlen(t->value) + 1 >= AGENT_TARGET_MAX || t->owner == NULL ||
	       strlen(t->owner) >= AGENT_ADDR_MAX;
}

const struct addr_target *
envelope_expansion_unstorable(const struct addr_expansion *x)
{
	for (size_t i = 0; i < x->n; i++) {
		const struct addr_target *t = &x->v[i];

		if (t->kind == ADDR_TARGET_ERROR && t->klass != ADDR_CLASS_LOCAL &&
		    t->klass != ADDR_CLASS_VIRTUAL_MAILBOX)
			return t;
		if (envelope_target_too_long(t))
			return t;
	}
	return NULL;
}

/* Is addr (with target, NULL for none) a recipient of env already? */
static bool
envelope_has_rcpt(const struct envelope *env, const char *addr, const char *target)
{
	for (size_t i = 0; i < env->nrcpt; i++) {
		const char *t = env->rcpts[i].target;

		if (strcasecmp(env->rcpts[i].addr, addr) == 0 &&
		    (t == NULL ? target == NULL : target != NULL && strcmp(t, target) == 0))
			return true;
	}
	return false;
}

size_t
envelope_add_expansion(struct envelope *env, const struct addr_expansion *x,
                       const char *original, const char *orcpt, unsigned notify)
{
	char target[AGENT_TARGET_MAX];
	char *orig = NULL;
	size_t added = 0;

	if (orcpt == NULL && (x->n != 1 || x->v[0].kind != ADDR_TARGET_ADDRESS ||
	                      strcmp(x->v[0].value, original) != 0)) {
		size_t n = strlen("rfc822;") + strlen(original) + 1;

		/* An original too long for an ORCPT goes without one. */
		if (n <= AGENT_ADDR_MAX) {
			if ((orig = malloc(n)) == NULL)
				fatal("out of memory");
			snprintf(orig, n, "rfc822;%s", original);
			orcpt = orig;
		}
	}
	for (size_t i = 0; i < x->n; i++) {
		const struct addr_target *t = &x->v[i];
		const char *addr = t->value, *tp = NULL;

		if (t->kind == ADDR_TARGET_COMMAND || t->kind == ADDR_TARGET_FILE) {
			/* A file target is an absolute path: its '/' marks it. */
			snprintf(target, sizeof(target), "%s%s",
			         t->kind == ADDR_TARGET_COMMAND ? "|" : "", t->value);
			addr = t->owner;
			tp = target;
		}
		if (envelope_has_rcpt(env, addr, tp))
			continue;
		envelope_add_rcpt(env, addr, orcpt, notify);
		envelope_set(&env->rcpts[env->nrcpt - 1].target, tp);
		added++;
	}
	free(orig);
	return added;
}
