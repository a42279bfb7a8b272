/* fetchd's seams into libevent internals (see seams.h). Each function
 * names the libevent 2.1.12 code it relies on and its 2.2 replacement. */
#include "seams.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>

/* Relies on (libevent 2.1.12, http.c): evhttp_send_reply puts the whole
 * answer into the connection's bufferevent output and arms the write;
 * evhttp's write callback (evhttp_write_cb), run by bufferevent_trigger
 * with an empty output, ends the write as if the loop had done it
 * (evhttp_send_done: the on-complete callback, then the next request or the
 * close); neither frees the connection before that.
 * On libevent 2.2: the same internals hold in 2.2.1-alpha, but nothing
 * promises them; if they change, drop this function for plain
 * evhttp_send_reply (one loop turn later per answer, bench/run measures
 * the cost). */
/* HEAD: the headers GET would get, Content-Length included, and no body
 * (RFC 9110 section 9.3.2). libevent 2.1.12 (http.c,
 * evhttp_make_header_response) leaves Content-Length out for HEAD but
 * still writes the body it is given, which the client then reads as the
 * start of the next answer: curl -I waited for its timeout. */
static void drop_head_body(struct evhttp_request *req, struct evbuffer *body)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;
	char n[24];

	snprintf(n, sizeof(n), "%zu", len);
	evhttp_remove_header(headers, "Content-Length");
	evhttp_add_header(headers, "Content-Length", n);
	if (len > 0)
		evbuffer_drain(body, len);
}

void seams_send_reply_now(struct evhttp_request *req, int status, const char *reason,
			  struct evbuffer *body)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct evbuffer *out;
	evutil_socket_t fd;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		drop_head_body(req, body);
	evhttp_send_reply(req, status, reason, body);
	/* req may be gone now; evcon and bev are not: freeing them takes a
	 * write or an event, and neither happened */
	if (bev == NULL || (fd = bufferevent_getfd(bev)) < 0)
		return;
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0 || evbuffer_write(out, fd) <= 0 ||
	    evbuffer_get_length(out) != 0)
		return;
	/* may free the connection (Connection: close): nothing after this */
	bufferevent_trigger(bev, EV_WRITE, 0);
}

/* Relies on (libevent 2.1.12, http.c): evhttp_connection_base_bufferevent_new
 * sets the bufferevent's callbacks to evhttp_read_cb, evhttp_write_cb and
 * evhttp_error_cb with the connection itself as their argument, and keeps
 * them for the connection's life; there is no public getter from a
 * bufferevent to its connection.
 * On libevent 2.2: evhttp_set_newreqcb hands over each request as evhttp
 * makes it, before anything is read, and evhttp_request_get_connection
 * gives its connection; evhttp_set_max_connections also replaces the
 * counting in connections.c. */
struct evhttp_connection *seams_connection_of(struct bufferevent *bev)
{
	bufferevent_event_cb eventcb = NULL;
	void *evcon = NULL;

	bufferevent_getcb(bev, NULL, NULL, &eventcb, &evcon);
	if (eventcb == NULL)
		return NULL;
	return evcon;
}
