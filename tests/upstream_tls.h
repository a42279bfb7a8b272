/*
 * upstream_tls: TLS for the test upstream (tests/upstream --tls CERT KEY).
 *
 * Each accepted connection gets a libevent bufferevent_openssl in the
 * accepting state, so evhttp serves the same endpoints over HTTPS (HTTP/1.1
 * only: no ALPN is offered, so clients stay on HTTP/1.1). The server keeps a
 * session cache and issues TLS 1.3 tickets, so clients can resume, and it
 * counts, per completed handshake, whether it was full or resumed: the tests
 * read that through /tls-stats to see whether fetchd's workers share TLS
 * sessions.
 */
#ifndef FETCHD_TESTS_UPSTREAM_TLS_H
#define FETCHD_TESTS_UPSTREAM_TLS_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

struct upstream_tls;

struct upstream_tls_opts {
	const char *cert;	 /* PEM certificate chain, leaf first */
	const char *key;	 /* its PEM private key */
	const char *client_ca;	 /* NULL, or: require a client certificate by this CA */
	const char *max_version; /* NULL, "1.2" or "1.3": the highest version offered */
};

/* A server context from o. NULL on error, with a sentence in err. */
struct upstream_tls *upstream_tls_new(const struct upstream_tls_opts *o, char *err, size_t errlen);

/* A bufferevent for evhttp_set_bevcb: TLS, accepting, no descriptor yet
 * (evhttp sets it). NULL on error. */
struct bufferevent *upstream_tls_bufferevent(struct upstream_tls *t, struct event_base *base);

/* Handshakes completed so far, full ones and resumed ones, of every
 * connection not excluded. Each connection counts once, at the end of its
 * first handshake. */
void upstream_tls_counts(const struct upstream_tls *t, unsigned long *full, unsigned long *resumed);

/* Take the connection of bev (one of upstream_tls_bufferevent's) out of the
 * counts, for good: the tests' own queries of the upstream's counters must
 * not count themselves. */
void upstream_tls_exclude(struct upstream_tls *t, struct bufferevent *bev);

void upstream_tls_free(struct upstream_tls *t);

#endif
