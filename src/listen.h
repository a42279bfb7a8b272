#ifndef FETCHD_LISTEN_H
#define FETCHD_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_bound_socket;
struct fetchd_config;

/* fetchd's listening sockets, attached to its evhttp. */
struct listen_set {
	struct evconnlistener **listeners; /* owned by evhttp once bound */
	struct evhttp_bound_socket **bound;
	size_t n_bound;		       /* 0 once detached (a drain) */
	struct sockaddr_storage *self; /* the addresses as bound */
	size_t n_self;
};

/* Listen on the sockets systemd passed (socket activation: LISTEN_FDS, and
 * [server] listen is then not used), else bind each of cfg's listen
 * addresses; attach each to http and log "listening on ADDR:PORT" (the
 * real port when the config asked for port 0). Start-up only: it may
 * resolve a name. Returns 0, or -1 (logged) with ls holding what was
 * opened so far, for listen_set_free after evhttp_free. */
int listen_open(struct listen_set *ls, struct event_base *base, struct evhttp *http,
		const struct fetchd_config *cfg);

/* Stop accepting: detach every listener from http (which closes it). */
void listen_detach(struct listen_set *ls, struct evhttp *http);

/* Free the arrays; after evhttp_free, which frees the bound listeners. */
void listen_set_free(struct listen_set *ls);

#endif
