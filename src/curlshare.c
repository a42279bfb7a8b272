/* The share handle of one generation and its locks; see curlshare.h. */
#include "curlshare.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct curlshare {
	CURLSH *sh;
	/* one per curl_lock_data: DNS and SSL_SESSION are used */
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	/* one per worker attached, one while it is current; guarded by
	 * share_mutex */
	unsigned refs;
};

static pthread_mutex_t share_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct curlshare *share_current; /* guarded by share_mutex */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct curlshare *s = arg;

	(void)h;
	(void)access;
	pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct curlshare *s = arg;

	(void)h;
	pthread_mutex_unlock(&s->locks[data]);
}

/* A new share with one reference, or NULL. */
static struct curlshare *share_new(void)
{
	struct curlshare *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->sh = curl_share_init();
	if (s->sh == NULL) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->locks[i], NULL);
	s->refs = 1;
	curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return s;
}

/* Swap the current share for fresh (may be NULL) and drop the old one's
 * "current" reference. */
static void share_swap(struct curlshare *fresh)
{
	struct curlshare *old;

	pthread_mutex_lock(&share_mutex);
	old = share_current;
	share_current = fresh;
	pthread_mutex_unlock(&share_mutex);
	curlshare_put(old);
}

int curlshare_replace(void)
{
	struct curlshare *fresh = share_new();

	if (fresh == NULL)
		return -1;
	share_swap(fresh);
	return 0;
}

void curlshare_retire(void)
{
	share_swap(NULL);
}

struct curlshare *curlshare_get(void)
{
	struct curlshare *s;

	pthread_mutex_lock(&share_mutex);
	s = share_current;
	if (s != NULL)
		s->refs++;
	pthread_mutex_unlock(&share_mutex);
	return s;
}

/* The last reference cleans the share up: no handle is attached to it by
 * then, each reference being a worker whose handle used it. */
void curlshare_put(struct curlshare *s)
{
	bool last;

	if (s == NULL)
		return;
	pthread_mutex_lock(&share_mutex);
	last = --s->refs == 0;
	pthread_mutex_unlock(&share_mutex);
	if (!last)
		return;
	curl_share_cleanup(s->sh);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->locks[i]);
	free(s);
}

CURLSH *curlshare_handle(const struct curlshare *s)
{
	return s->sh;
}
