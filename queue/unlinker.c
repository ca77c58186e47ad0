/*
 * unlinker: unlink files of one directory on a thread of their own
 * (unlinker.h).
 *
 * Two arrays of names: the owner appends to `queued` under the lock; the
 * worker swaps it with its own empty `taken` array, unlinks those without
 * the lock, and signals `idle` when it finds nothing queued.
 */
#include "queue/unlinker.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

struct names {
	char (*v)[UNLINKER_NAME_MAX];
	size_t n, cap;
};

struct unlinker {
	int dirfd;
	pthread_mutex_t lock;
	pthread_cond_t work;		/* names queued, or stop */
	pthread_cond_t idle;		/* nothing queued, nothing in hand */
	struct names queued;		/* under lock */
	bool busy;			/* the worker holds names: under lock */
	bool stop;			/* under lock */
	bool started;			/* the owner's */
	pthread_t thread;
};

static void *
unlinker_main(void *arg)
{
	struct unlinker *u = arg;
	struct names taken = { NULL, 0, 0 }, tmp;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (u->queued.n == 0 && !u->stop) {
			u->busy = false;
			pthread_cond_broadcast(&u->idle);
			pthread_cond_wait(&u->work, &u->lock);
		}
		if (u->queued.n == 0)
			break;		/* stop, and nothing left */
		tmp = taken;
		taken = u->queued;
		u->queued = tmp;
		u->queued.n = 0;
		u->busy = true;
		pthread_mutex_unlock(&u->lock);
		for (size_t i = 0; i < taken.n; i++)
			(void)unlinkat(u->dirfd, taken.v[i], 0);
		taken.n = 0;
		pthread_mutex_lock(&u->lock);
	}
	u->busy = false;
	pthread_cond_broadcast(&u->idle);
	pthread_mutex_unlock(&u->lock);
	free(taken.v);
	return NULL;
}

struct unlinker *
unlinker_new(int dirfd)
{
	struct unlinker *u = calloc(1, sizeof(*u));

	if (u == NULL)
		fatal("out of memory");
	u->dirfd = dirfd;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->work, NULL);
	pthread_cond_init(&u->idle, NULL);
	return u;
}

void
unlinker_add(struct unlinker *u, const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= UNLINKER_NAME_MAX || strchr(name, '/') != NULL)
		panic("unlinker_add: bad name \"%.80s\"", name);
	if (!u->started) {
		int rc = pthread_create(&u->thread, NULL, unlinker_main, u);

		if (rc != 0) {
			/* No thread (resource limits): unlink here, as before. */
			log_warning("unlinker: cannot start a thread: %s; unlinking inline",
			            strerror(rc));
			(void)unlinkat(u->dirfd, name, 0);
			return;
		}
		u->started = true;
	}
	pthread_mutex_lock(&u->lock);
	if (u->queued.n == u->queued.cap) {
		size_t cap = u->queued.cap ? 2 * u->queued.cap : 256;
		void *v = realloc(u->queued.v, cap * sizeof(*u->queued.v));

		if (v == NULL)
			fatal("out of memory");
		u->queued.v = v;
		u->queued.cap = cap;
	}
	memcpy(u->queued.v[u->queued.n++], name, len + 1);
	u->busy = true;
	pthread_cond_signal(&u->work);
	pthread_mutex_unlock(&u->lock);
}

void
unlinker_flush(struct unlinker *u)
{
	if (!u->started)
		return;
	pthread_mutex_lock(&u->lock);
	while (u->busy || u->queued.n > 0)
		pthread_cond_wait(&u->idle, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

void
unlinker_free(struct unlinker *u)
{
	if (u == NULL)
		return;
	if (u->started) {
		pthread_mutex_lock(&u->lock);
		u->stop = true;
		pthread_cond_signal(&u->work);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	pthread_cond_destroy(&u->idle);
	pthread_cond_destroy(&u->work);
	pthread_mutex_destroy(&u->lock);
	free(u->queued.v);
	free(u);
}
