#ifndef FETCHD_SERVER_STATE_H
#define FETCHD_SERVER_STATE_H

/* The server's state, shared by the files of the HTTP front: server.c
 * (routes, life cycle, drain, reload) and pending.c (the client requests in
 * flight). Nothing else includes this; main.c sees only server.h.
 *
 * Loop thread only, every field. server.c creates and frees the server and
 * swaps snap/cfg/auth_token on a reload; pending.c reads the configuration,
 * the pools, the account and draining, adds to metrics, and keeps the
 * lists of pendings (pendings, unwatched, watch_timer). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "listen.h"
#include "metrics.h"

struct connections;
struct doc_account;
struct event;
struct event_base;
struct evhttp;
struct executor;
struct pending;
struct snapshot;

struct server {
	struct event_base *base;
	struct snapshot *snap;		 /* the running configuration */
	const struct fetchd_config *cfg; /* = snap->cfg */
	struct evhttp *http;
	struct connections *conns; /* max_connections, request_timeout */
	/* pools[0] is [pool], then the [pool.NAME]s in config order */
	struct executor *pools[1 + CONFIG_MAX_POOLS];
	size_t n_pools;
	struct listen_set listen;
	struct pending *pendings; /* every client request not yet answered */
	/* pendings not yet watching their client, oldest first */
	TAILQ_HEAD(, pending) unwatched;
	struct event *watch_timer; /* runs pending_watch_clients */
	bool draining;
	/* shutdown_timeout passed: requests still arriving are refused */
	bool drain_aborted;
	/* SIGTERM came and [server] lame_duck runs: /healthz says 503 while
	 * fetches are still accepted and served; the drain starts after it */
	bool lame_duck;
	struct event *lame_duck_timer;
	void (*drained)(void *);
	void *drained_arg;
	struct event *drain_timer;
	struct event *drain_check;
	uint64_t started_ns;
	uint64_t request_start_ns; /* of the request dispatch() is routing */
	char *auth_token;	   /* NULL: no authentication */
	/* the memory budget, and the documents handed to libevent */
	struct doc_account *docs;
	struct metrics metrics;
	uint64_t next_request_id;
	unsigned pid; /* getpid() is a system call: once, for request ids */
};

/* A request was answered or a document written: when draining and every
 * accepted request is answered and written, run the drained callback
 * (once). */
void server_check_drained(struct server *srv);

#endif
