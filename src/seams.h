#ifndef FETCHD_SEAMS_H
#define FETCHD_SEAMS_H

/* The two places fetchd relies on libevent behaviour its API does not
 * promise, each in one function, each pinned by tests/check_seams.c against
 * the installed libevent so that an upgrade that breaks it fails there,
 * loudly, rather than in production. Both rely on libevent 2.1.12 (Debian
 * 12); each says what replaces it on libevent 2.2. Loop thread only. */

struct bufferevent;
struct evbuffer;
struct evhttp_connection;
struct evhttp_request;

/* evhttp_send_reply, then the write itself, now. libevent 2.1 only queues
 * a reply: the socket is written on the loop's next turn, once epoll has
 * reported it writable, which costs an epoll round and two epoll_ctl per
 * answer. The reply is tried here at once; when all of it fits in the
 * socket, evhttp is told (the bufferevent's write callback, through
 * bufferevent_trigger) that the answer is out, as the loop would have: the
 * request's on-complete callback runs, and a keep-alive connection waits
 * for its next request. A reply that does not fit, or a write error, is
 * left to libevent, which retries or fails it as before. req may be freed
 * when this returns. A HEAD request gets the headers, Content-Length the
 * body's, and no body. */
void seams_send_reply_now(struct evhttp_request *req, int status, const char *reason,
			  struct evbuffer *body);

/* The evhttp connection that wraps bev (a bufferevent made by the
 * evhttp_set_bevcb factory), or NULL when evhttp has not wrapped it or
 * gave it up. For the connection's close callback: libevent 2.1 has no hook
 * for a new connection. */
struct evhttp_connection *seams_connection_of(struct bufferevent *bev);

#endif
