#ifndef FETCHD_PENDING_H
#define FETCHD_PENDING_H

#include <event2/util.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct evhttp_request;
struct server;

/* A client request in flight, from its parsed body to its written
 * answer: one fetch, or a batch of them answered together in input order.
 * Each item is validated and queued in a pool as a job, or answered in
 * place (an invalid item, a full queue or budget, a drain); each job ends in
 * its document, or is cancelled: dropped from its queue and answered at
 * once, or aborted while it runs. A request unanswered after a while
 * watches its client's socket, and a client that leaves cancels its
 * fetches. Every document stays charged to the memory budget until libevent
 * has written it (src/reply.h).
 *
 * Loop thread only; the fetches themselves run on the pools' workers
 * (src/executor.h), which hand each job back through its done callback. */
struct pending;

/* A request of n items (a batch when batch; a single fetch is n = 1) for
 * req, which it answers once every item has its document. NULL on out of
 * memory (the caller answers). */
struct pending *pending_new(struct server *srv, struct evhttp_request *req, size_t n, bool batch);

/* req's id into id (len bytes, 65 is enough): the client's X-Request-Id
 * when it is a sane token, else a new one. */
void pending_request_id(struct server *srv, struct evhttp_request *req, char *id, size_t len);

/* Validate item i of p (obj, a fetch object) and queue its fetch, or
 * answer the item in place. The last item answered writes the reply and
 * frees p: count the items before submitting them. */
void pending_submit(struct pending *p, size_t i, const json_t *obj);

/* The server's watch timer (srv as arg): pendings old enough start
 * watching their clients' sockets for a close. */
void pending_watch_clients(evutil_socket_t fd, short what, void *srv);

/* Past shutdown_timeout: every queued fetch is answered 503 shutting_down,
 * every running one aborted (its error document follows). */
void pending_abort_all(struct server *srv);

/* At server_free, after the pools are gone: free every pending and its
 * jobs without an answer. */
void pending_free_all(struct server *srv);

#endif
