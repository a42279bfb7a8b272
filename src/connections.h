#ifndef FETCHD_CONNECTIONS_H
#define FETCHD_CONNECTIONS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_request;

/* The client connections of one evhttp, on the loop thread: how many are
 * open, a cap on that number, and a deadline for reading each request.
 *
 * - max_connections: when that many are open, fetchd stops accepting (the
 *   kernel's listen backlog holds newcomers) until one closes.
 * - request_timeout: a request must arrive whole (line, headers, body)
 *   within it, counted from its first byte; else its connection is closed.
 *   Against clients that drip a request to hold a connection (slowloris);
 *   idle_timeout only bounds the silence between two reads.
 *
 * libevent 2.1's evhttp has no hook for a new or a closed connection, so
 * this module makes each connection's bufferevent itself (evhttp_set_bevcb)
 * and, once evhttp has wrapped it, recovers the connection from the
 * bufferevent (seams_connection_of, src/seams.h: the libevent internal this
 * relies on, and its 2.2 replacement) to set its close callback. */
struct connections;

struct connections_stats {
	uint64_t open;
	uint64_t accepted;	   /* since start */
	uint64_t accept_paused;	   /* times max_connections stopped accepting */
	uint64_t request_timeouts; /* connections closed by request_timeout */
};

/* Takes over evhttp's bufferevent callback. NULL on out of memory. */
struct connections *connections_new(struct event_base *base, struct evhttp *http,
				    unsigned max_connections, uint64_t request_timeout_ms);

/* New limits (a reload). A lower max_connections closes nothing: accepting
 * resumes once enough connections have closed. */
void connections_set_limits(struct connections *c, unsigned max_connections,
			    uint64_t request_timeout_ms);

/* The listeners to pause and resume (not owned). Call with n = 0 before
 * freeing them. */
void connections_set_listeners(struct connections *c, struct evconnlistener **listeners, size_t n);

/* req has been read whole and is being answered: its connection's
 * deadline stops until the answer has been written. */
void connections_request_read(struct connections *c, struct evhttp_request *req);

/* The drain: no connection is accepted any more (the caller detached the
 * listeners), and the ones already accepted still count as unfinished
 * while they read a request, or, for grace_ms, while they wait for their
 * first (a client that connected just before the drain began is sending
 * it; at a restart under socket activation, closing it unanswered is a
 * failed request). After grace_ms those still waiting are closed.
 * drained(arg) runs whenever the count of unfinished connections may have
 * dropped. */
void connections_drain(struct connections *c, uint64_t grace_ms, void (*drained)(void *arg),
		       void *arg);

/* Connections reading a request, and those waiting for their first within
 * the drain's grace. */
unsigned connections_unfinished(const struct connections *c);

/* The drain's time is up: close every connection still reading a request
 * or waiting for its first. */
void connections_drain_abort(struct connections *c);

void connections_get_stats(const struct connections *c, struct connections_stats *st);

/* After evhttp_free (which closes every connection). */
void connections_free(struct connections *c);

#endif
