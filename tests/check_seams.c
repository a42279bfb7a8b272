/* The libevent behaviours fetchd relies on beyond libevent's API
 * (src/seams.h), pinned against the installed libevent: an upgrade that
 * breaks one fails here. A tiny evhttp server in this process on
 * 127.0.0.1:0, driven by this thread, and a raw client socket. */
#include <check.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seams.h"

#define WAIT_MS 5000
#define SMALL_BODY 1000
/* Far more than a loopback socket takes at once with the client's receive
 * buffer kept small: the write cannot finish inside the handler. */
#define LARGE_BODY (16 * 1024 * 1024)

static const char REQUEST[] = "GET /x HTTP/1.1\r\nHost: seams\r\n\r\n";

static struct state {
	struct event_base *base;
	struct evhttp *http;
	int port;
	size_t body_len;		       /* of the next replies */
	bool recover;			       /* recover the connection in the handler */
	struct bufferevent *bev;	       /* the last one the factory made */
	struct evhttp_connection *before_wrap; /* seams_connection_of in the factory */
	struct evhttp_connection *recovered;   /* ... in the handler */
	struct evhttp_connection *evcon;       /* evhttp_request_get_connection */
	int requests;
	bool completed;		/* the request's on-complete callback ran */
	bool completed_in_send; /* ... before seams_send_reply_now returned */
	bool closed;		/* the connection's close callback ran */
} st;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	(void)arg;
	st.bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	st.before_wrap = st.bev != NULL ? seams_connection_of(st.bev) : NULL;
	return st.bev;
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	(void)req;
	(void)arg;
	st.completed = true;
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	(void)arg;
	st.closed = true;
}

static void handler(struct evhttp_request *req, void *arg)
{
	struct evbuffer *body = evbuffer_new();
	char *bytes = malloc(st.body_len);

	(void)arg;
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_nonnull(bytes);
	memset(bytes, 'x', st.body_len);
	evbuffer_add(body, bytes, st.body_len);
	free(bytes);
	st.requests++;
	st.completed = false;
	evhttp_request_set_on_complete_cb(req, on_complete, NULL);
	if (st.recover) {
		st.evcon = evhttp_request_get_connection(req);
		st.recovered = seams_connection_of(st.bev);
		if (st.recovered != NULL)
			evhttp_connection_set_closecb(st.recovered, on_close, NULL);
	}
	seams_send_reply_now(req, 200, "OK", body);
	st.completed_in_send = st.completed;
	evbuffer_free(body);
}

static void setup(void)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&st, 0, sizeof(st));
	st.base = event_base_new();
	ck_assert_ptr_nonnull(st.base);
	st.http = evhttp_new(st.base);
	ck_assert_ptr_nonnull(st.http);
	evhttp_set_bevcb(st.http, make_bev, NULL);
	evhttp_set_gencb(st.http, handler, NULL);
	bound = evhttp_bind_socket_with_handle(st.http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bound);
	ck_assert_int_eq(
		getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &len), 0);
	st.port = ntohs(sin.sin_port);
}

static void teardown(void)
{
	evhttp_free(st.http);
	event_base_free(st.base);
}

/* A client socket to the server; a small receive buffer when small_rcvbuf. */
static int client_connect(bool small_rcvbuf)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 64 * 1024;

	ck_assert_int_ge(fd, 0);
	if (small_rcvbuf)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Send one request on fd and read its answer whole while running the
 * server's loop. Returns the status (-1: no whole answer within WAIT_MS);
 * *body_len is the body's length as received. */
static int exchange(int fd, size_t *body_len)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap + 1);
	uint64_t until = now_ms() + WAIT_MS;
	int status = -1;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(send(fd, REQUEST, sizeof(REQUEST) - 1, 0), (ssize_t)sizeof(REQUEST) - 1);
	while (now_ms() < until) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char *end;
		ssize_t n;

		event_base_loop(st.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) != 1)
			continue;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
		n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0)
			continue;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL) {
			const char *cl = strstr(buf, "Content-Length:");
			size_t head = (size_t)(end + 4 - buf);
			size_t want = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;

			if (len >= head + want) {
				ck_assert_int_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1);
				*body_len = len - head;
				break;
			}
		}
	}
	free(buf);
	return status;
}

/* Run the server's loop until *flag or WAIT_MS. */
static bool loop_until(const bool *flag)
{
	uint64_t until = now_ms() + WAIT_MS;

	while (!*flag && now_ms() < until) {
		event_base_loop(st.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	return *flag;
}

/* A reply that fits in the socket is written inside seams_send_reply_now,
 * and evhttp is told it is out (the request completes before the call
 * returns), and the keep-alive connection then serves a second request. */
START_TEST(test_send_reply_now_writes_at_once_and_keeps_alive)
{
	int fd = client_connect(false);
	size_t got = 0;

	st.body_len = SMALL_BODY;
	ck_assert_int_eq(exchange(fd, &got), 200);
	ck_assert_uint_eq(got, SMALL_BODY);
	ck_assert(st.completed_in_send);
	ck_assert_int_eq(exchange(fd, &got), 200);
	ck_assert_uint_eq(got, SMALL_BODY);
	ck_assert(st.completed_in_send);
	ck_assert_int_eq(st.requests, 2);
	close(fd);
}
END_TEST

/* A reply too large for the socket is left to libevent, which writes the
 * rest as the client reads: it arrives whole, the request completes only
 * then, and the connection stays usable. */
START_TEST(test_send_reply_now_leaves_a_large_reply_to_libevent)
{
	int fd = client_connect(true);
	size_t got = 0;

	st.body_len = LARGE_BODY;
	ck_assert_int_eq(exchange(fd, &got), 200);
	ck_assert_uint_eq(got, LARGE_BODY);
	ck_assert(!st.completed_in_send);
	ck_assert(loop_until(&st.completed));
	st.body_len = SMALL_BODY;
	ck_assert_int_eq(exchange(fd, &got), 200);
	ck_assert_uint_eq(got, SMALL_BODY);
	ck_assert_int_eq(st.requests, 2);
	close(fd);
}
END_TEST

/* The connection recovered from the bufferevent is the request's own
 * evhttp_connection (NULL before evhttp wrapped the bufferevent), and its
 * close callback fires when the client closes. */
START_TEST(test_connection_of_bufferevent_is_its_evhttp_connection)
{
	int fd = client_connect(false);
	size_t got = 0;

	st.body_len = SMALL_BODY;
	st.recover = true;
	ck_assert_int_eq(exchange(fd, &got), 200);
	ck_assert_ptr_null(st.before_wrap);
	ck_assert_ptr_nonnull(st.recovered);
	ck_assert_ptr_eq(st.recovered, st.evcon);
	ck_assert_ptr_eq(evhttp_connection_get_bufferevent(st.recovered), st.bev);
	ck_assert(!st.closed);
	close(fd);
	ck_assert(loop_until(&st.closed));
}
END_TEST

static Suite *seams_suite(void)
{
	Suite *s = suite_create("seams");
	TCase *tc = tcase_create("libevent");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_send_reply_now_writes_at_once_and_keeps_alive);
	tcase_add_test(tc, test_send_reply_now_leaves_a_large_reply_to_libevent);
	tcase_add_test(tc, test_connection_of_bufferevent_is_its_evhttp_connection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(seams_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
