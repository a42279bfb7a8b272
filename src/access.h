#ifndef FETCHD_ACCESS_H
#define FETCHD_ACCESS_H

/* The access log: one line per answered client request, whatever path
 * answered it (a fetch, a batch, a route of the server's own, an error
 * before any fetch). Loop thread only. */

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

struct evhttp_request;

/* What one line says. host and path may be NULL ("-"). */
struct access_entry {
	const char *id;	  /* X-Request-Id: the client's, or ours */
	const char *host; /* the target host of a single fetch, else NULL */
	size_t items;	  /* fetches of the request: 1, a batch's n, or 0 */
	int status;
	enum fetchd_err err;
	size_t bytes; /* of the body (logged as 0 for HEAD, which sends none) */
	double queue_ms;
	double total_ms;
	bool gone; /* the client went away before its answer */
};

/* "GET", "POST", "HEAD", ...; "OTHER" for a verb fetchd does not route. */
const char *access_method_name(const struct evhttp_request *req);

/* "127.0.0.1:54321" or "[::1]:54321" (nginx's $remote_addr:$remote_port,
 * HAProxy's %ci:%cp) into buf; "-" when the connection is unknown. */
void access_client(struct evhttp_request *req, char *buf, size_t len);

/* Log e's line for req at info level. Only the target host is logged:
 * never a URL (it may carry userinfo or tokens in its query), a header or
 * a body. */
void access_log_request(struct evhttp_request *req, const struct access_entry *e);

#endif
