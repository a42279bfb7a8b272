#ifndef FETCHD_CURLSHARE_H
#define FETCHD_CURLSHARE_H

#include <curl/curl.h>

/* libcurl's share handle, one per generation: the DNS cache and the TLS
 * session cache that every worker's easy handle uses, with real locks.
 * Connections and HSTS are not shared: libcurl does not support that
 * across threads.
 *
 * libcurl 7.88 cannot flush a share's TLS sessions while handles are
 * attached to it (CURLSHOPT_UNSHARE refuses with CURLSHE_IN_USE), so a
 * change of the TLS or destination rules makes a new share instead
 * (curlshare_replace); each worker moves to it with its new easy handle,
 * and the old one lives until the last worker has left it. Safe from any
 * thread. */
struct curlshare;

/* Make a new current share (the old one is released when its last user
 * puts it back). Returns 0, or -1 on out of memory (the old one stays
 * current). Call once before any worker starts, and on each rules change. */
int curlshare_replace(void);

/* Release the current share at shutdown (after every worker is gone). */
void curlshare_retire(void);

/* The current share with one more reference (NULL before the first
 * curlshare_replace); give it back with curlshare_put once no easy handle
 * uses it. */
struct curlshare *curlshare_get(void);
void curlshare_put(struct curlshare *s);

/* For CURLOPT_SHARE. */
CURLSH *curlshare_handle(const struct curlshare *s);

#endif
