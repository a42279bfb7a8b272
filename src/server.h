#ifndef FETCHD_SERVER_H
#define FETCHD_SERVER_H

struct event_base;
struct fetchd_config;
struct server;

/* The HTTP front: evhttp routes, request -> task, reply (with
 * src/pending.c, src/reply.c and src/listen.c; src/connections.c holds
 * evhttp's connection hooks). Runs on the loop thread. Takes cfg over on
 * success; on failure (NULL) the caller still owns it. */
struct server *server_new(struct event_base *base, struct fetchd_config *cfg);

/* Switch to a new, checked configuration (taken over in every case) without
 * dropping a request: pool size, queue limit, limits, security lists, auth
 * token and log level change live; fetches already queued keep the
 * configuration they were admitted under. Listen changes need a restart
 * (logged). Returns 0, or -1 when the new one is rejected (the old stays). */
int server_reload(struct server *srv, struct fetchd_config *cfg);

/* Bind every listen address of the config and start the worker pool.
 * Logs "listening on ADDR:PORT" for each (with the real port when the
 * config asked for port 0). Returns 0 or -1 (logged). */
int server_start(struct server *srv);

/* Stop accepting, answer /healthz with 503, let in-flight and queued
 * fetches finish (up to shutdown_timeout, then abort them with an error
 * document), then call drained(arg) once every accepted request has been
 * answered. */
void server_drain(struct server *srv, void (*drained)(void *arg), void *arg);

/* "busy 3/16, queued 0" for status lines. */
void server_load_summary(struct server *srv, char *buf, unsigned long len);

void server_free(struct server *srv);

#endif
