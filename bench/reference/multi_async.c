/* The native-async reference of bench/run scale (issue 14): one thread,
 * libcurl's multi interface driven by a libevent loop (curl's hiperfifo
 * pattern), serving the subset of fetchd's API the scale scenario uses:
 *
 *   POST /v1/fetch {"url": "..."}  ->  {"status": N, "size": BYTES}
 *   GET /healthz                   ->  {"status":"ok"}
 *
 * Every fetch is a curl easy handle added to the one multi handle; sockets
 * and the timeout are watched by libevent. No worker threads, so what
 * it holds per in-flight fetch is one easy handle, one connection and the
 * request: the trade-off fetchd's blocking pool is measured against.
 *
 *   multi_async --port PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

struct ref {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
};

/* One fetch: the client's request and what the upstream sent. */
struct job {
	struct evhttp_request *req;
	CURL *easy;
	size_t size;
};

/* The event of one socket curl watches. */
struct sock {
	struct event *ev;
};

static struct ref ref;

static void reply_json(struct evhttp_request *req, int code, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct job *j = arg;

	(void)p;
	j->size += size * n;
	return size * n;
}

/* Answer every finished transfer. */
static void check_done(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(ref.multi, &left)) != NULL) {
		struct job *j;
		long status = 0;
		char text[96];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (m->data.result == CURLE_OK) {
			snprintf(text, sizeof(text), "{\"status\":%ld,\"size\":%zu}", status, j->size);
			reply_json(j->req, 200, text);
		} else {
			snprintf(text, sizeof(text), "{\"error\":{\"curl_code\":%d}}",
				 (int)m->data.result);
			reply_json(j->req, 502, text);
		}
		curl_multi_remove_handle(ref.multi, j->easy);
		curl_easy_cleanup(j->easy);
		free(j);
	}
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	int running, flags = 0;

	(void)arg;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(ref.multi, fd, flags, &running);
	check_done();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(ref.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

/* CURLMOPT_SOCKETFUNCTION: watch s as curl asks. */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sock *k = socketp;
	short kind;

	(void)e;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (k != NULL) {
			event_free(k->ev);
			free(k);
		}
		curl_multi_assign(ref.multi, s, NULL);
		return 0;
	}
	kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
		       ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	if (k == NULL) {
		k = calloc(1, sizeof(*k));
		if (k == NULL)
			return -1;
		curl_multi_assign(ref.multi, s, k);
	} else {
		event_free(k->ev);
	}
	k->ev = event_new(ref.base, s, kind, on_socket_event, NULL);
	if (k->ev == NULL)
		return -1;
	event_add(k->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION */
static int on_curl_timer(CURLM *m, long ms, void *userp)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	(void)m;
	(void)userp;
	if (ms < 0)
		evtimer_del(ref.timer);
	else
		evtimer_add(ref.timer, &tv);
	return 0;
}

static void on_fetch(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *url = NULL;
	json_t *body = NULL;
	struct job *j = NULL;

	(void)arg;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
		body = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, 0, NULL);
	if (body == NULL || json_unpack(body, "{s:s}", "url", &url) != 0) {
		reply_json(req, 400, "{\"error\":{\"code\":\"invalid_request\"}}");
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->easy = curl_easy_init()) == NULL) {
		free(j);
		reply_json(req, 503, "{\"error\":{\"code\":\"overloaded\"}}");
		goto out;
	}
	j->req = req;
	curl_easy_setopt(j->easy, CURLOPT_URL, url);
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(j->easy, CURLOPT_PROXY, "");
	curl_multi_add_handle(ref.multi, j->easy);
out:
	json_decref(body);
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply_json(req, 200, "{\"status\":\"ok\"}");
}

int main(int argc, char **argv)
{
	struct evhttp_bound_socket *bound;
	struct evhttp *http;
	int port = 0;

	if (argc == 3 && strcmp(argv[1], "--port") == 0)
		port = atoi(argv[2]);
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: multi_async --port PORT\n");
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	ref.base = event_base_new();
	ref.multi = curl_multi_init();
	ref.timer = ref.base != NULL ? evtimer_new(ref.base, on_timer, NULL) : NULL;
	http = ref.base != NULL ? evhttp_new(ref.base) : NULL;
	if (ref.multi == NULL || ref.timer == NULL || http == NULL)
		return 1;
	curl_multi_setopt(ref.multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(ref.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	evhttp_set_cb(http, "/v1/fetch", on_fetch, NULL);
	evhttp_set_cb(http, "/healthz", on_healthz, NULL);
	evhttp_set_timeout(http, 600);
	bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (bound == NULL) {
		fprintf(stderr, "multi_async: cannot bind 127.0.0.1:%d\n", port);
		return 1;
	}
	/* evhttp listens with a backlog of 128: thousands of clients
	 * connecting at once would wait for SYN retries */
	listen(evhttp_bound_socket_get_fd(bound), 65535);
	event_base_dispatch(ref.base);
	evhttp_free(http);
	event_free(ref.timer);
	curl_multi_cleanup(ref.multi);
	event_base_free(ref.base);
	curl_global_cleanup();
	return 0;
}
