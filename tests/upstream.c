/*
 * upstream: the HTTP server integration tests fetch from.
 *
 * Binds 127.0.0.1 (or another loopback address, --bind 127.0.0.2, to
 * stand in for another host) on an ephemeral port (or --port N), prints
 * "PORT n\n" as its first line of stdout and serves until SIGTERM/SIGINT.
 * With --tls CERT KEY it serves HTTPS instead (upstream_tls.c), optionally
 * requiring a client certificate (--tls-client-ca FILE) or capped at a TLS
 * version (--tls-max 1.2); /tls-stats then counts full and resumed
 * handshakes, leaving out the connections that query the counters. The raw endpoints (/lie, /reset, /garbage, /reset-mid) write
 * to the socket and are plain-HTTP only.
 * Endpoints are listed in route_table below; every query value is
 * optional and defaults when absent or malformed.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <zlib.h>

#include "upstream_tls.h"

#define CHUNK_SIZE (16 * 1024)
#define MAX_GEN_SIZE (256L * 1024 * 1024)
#define MAX_DELAY_MS (10L * 60 * 1000)

/* Hit counter shared by /hold, /count and /stats. */
struct counter {
	char *key;
	long hits;
	long held;
	long peak;	  /* the most held at once */
	uint64_t last_ns; /* the last hit, CLOCK_MONOTONIC */
	long min_gap_ms;  /* the least time between two hits, -1: one hit */
	struct counter *next;
};

enum pending_kind { PENDING_HOLD, PENDING_DELAY, PENDING_ENDLESS };

/* A request answered later. Its client may vanish meanwhile: the connection's
 * closecb and an EV_CLOSED watcher both lead to pending_drop(). */
struct pending {
	struct upstream *up;
	enum pending_kind kind;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *ev;
	struct counter *ctr;
	TAILQ_ENTRY(pending) entry;
};

TAILQ_HEAD(pending_list, pending);

struct upstream {
	struct event_base *base;
	struct evhttp *http;
	struct counter *counters;
	struct pending_list pendings;
	unsigned char *gzip_body;
	size_t gzip_len;
	unsigned long connections; /* TCP connections accepted so far */
	struct upstream_tls *tls;  /* NULL: plain HTTP */
};

/* One request being routed. */
struct call {
	struct upstream *up;
	struct evhttp_request *req;
	struct evkeyvalq query;
};

static const char *reason_phrase(int code)
{
	static const struct {
		int code;
		const char *reason;
	} table[] = {
		{100, "Continue"},
		{101, "Switching Protocols"},
		{200, "OK"},
		{201, "Created"},
		{202, "Accepted"},
		{203, "Non-Authoritative Information"},
		{204, "No Content"},
		{205, "Reset Content"},
		{206, "Partial Content"},
		{300, "Multiple Choices"},
		{301, "Moved Permanently"},
		{302, "Found"},
		{303, "See Other"},
		{304, "Not Modified"},
		{305, "Use Proxy"},
		{307, "Temporary Redirect"},
		{308, "Permanent Redirect"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{402, "Payment Required"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{406, "Not Acceptable"},
		{407, "Proxy Authentication Required"},
		{408, "Request Timeout"},
		{409, "Conflict"},
		{410, "Gone"},
		{411, "Length Required"},
		{412, "Precondition Failed"},
		{413, "Content Too Large"},
		{414, "URI Too Long"},
		{415, "Unsupported Media Type"},
		{416, "Range Not Satisfiable"},
		{417, "Expectation Failed"},
		{418, "I'm a teapot"},
		{421, "Misdirected Request"},
		{422, "Unprocessable Content"},
		{425, "Too Early"},
		{426, "Upgrade Required"},
		{428, "Precondition Required"},
		{429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{451, "Unavailable For Legal Reasons"},
		{500, "Internal Server Error"},
		{501, "Not Implemented"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{504, "Gateway Timeout"},
		{505, "HTTP Version Not Supported"},
		{511, "Network Authentication Required"},
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == code)
			return table[i].reason;
	return "Unknown";
}

/* Parse a whole decimal string; -1 when absent or malformed. */
static int parse_long(const char *s, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static const char *query_str(struct call *c, const char *name, const char *def)
{
	const char *v = evhttp_find_header(&c->query, name);

	return v != NULL ? v : def;
}

/* A query integer, default when absent or malformed, clamped to [lo, hi]. */
static long query_long(struct call *c, const char *name, long def, long lo, long hi)
{
	long v;

	if (parse_long(evhttp_find_header(&c->query, name), &v) == -1)
		v = def;
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return v;
}

static void reply_buf(struct evhttp_request *req, int code, const char *ctype,
		      struct evbuffer *body)
{
	if (ctype != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, reason_phrase(code), body);
}

static void reply_data(struct evhttp_request *req, int code, const char *ctype, const void *data,
		       size_t len)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(body, data, len);
	reply_buf(req, code, ctype, body);
	evbuffer_free(body);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
	reply_data(req, code, "text/plain", text, strlen(text));
}

/* Send obj (stolen) as compact JSON. */
static void reply_json(struct evhttp_request *req, int code, const char *ctype, json_t *obj)
{
	char *s = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (s == NULL) {
		reply_text(req, 500, "json failed\n");
		return;
	}
	reply_data(req, code, ctype != NULL ? ctype : "application/json", s, strlen(s));
	free(s);
}

/* A JSON string of bytes that may not be UTF-8: latin-1 is the fallback. */
static json_t *json_bytes(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	char *buf;
	size_t i, n = 0;

	if (j != NULL)
		return j;
	if ((buf = malloc(len * 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b < 0x80) {
			buf[n++] = (char)b;
		} else {
			buf[n++] = (char)(0xc0 | (b >> 6));
			buf[n++] = (char)(0x80 | (b & 0x3f));
		}
	}
	j = json_stringn(buf, n);
	free(buf);
	return j;
}

static char *base64_encode(const unsigned char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t i, n = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned long v =
			(unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];

		out[n++] = tab[(v >> 18) & 63];
		out[n++] = tab[(v >> 12) & 63];
		out[n++] = tab[(v >> 6) & 63];
		out[n++] = tab[v & 63];
	}
	if (i < len) {
		unsigned long v = (unsigned long)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		out[n++] = tab[(v >> 18) & 63];
		out[n++] = tab[(v >> 12) & 63];
		out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[n++] = '=';
	}
	out[n] = '\0';
	return out;
}

static struct counter *counter_get(struct upstream *up, const char *key)
{
	struct counter *c;

	for (c = up->counters; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->key = strdup(key)) == NULL) {
		free(c);
		return NULL;
	}
	c->min_gap_ms = -1;
	c->next = up->counters;
	up->counters = c;
	return c;
}

/* A request for c arrived: count it and the gap since the last one. */
static void counter_hit(struct counter *c)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (c->hits > 0) {
		long gap = (long)((now - c->last_ns) / 1000000u);

		if (c->min_gap_ms < 0 || gap < c->min_gap_ms)
			c->min_gap_ms = gap;
	}
	c->last_ns = now;
	c->hits++;
}

/* Forget p without answering; the caller answers or frees the request. */
static void pending_drop(struct pending *p)
{
	evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->kind == PENDING_HOLD && p->ctr != NULL)
		p->ctr->held--;
	TAILQ_REMOVE(&p->up->pendings, p, entry);
	free(p);
}

/* evhttp is freeing the connection. A request evhttp detached after an EOF
 * or timeout (req->evcon NULL) is ours to free; an attached one it frees. */
static void pending_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct pending *p = arg;

	(void)evcon;
	if (evhttp_request_get_connection(p->req) == NULL)
		evhttp_request_free(p->req);
	pending_drop(p);
}

/* The client went away: free the connection, and with it the request. libevent
 * 2.1 may not read while a reply is pending, so closecb alone is not enough. */
static void pending_client_gone(struct pending *p)
{
	struct evhttp_connection *evcon = p->evcon;

	pending_drop(p);
	evhttp_connection_free(evcon);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg);

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pending_client_gone(arg);
}

/* Park req; timeout_ms >= 0 arms a timer (delay), else only the close watcher. */
static struct pending *pending_new(struct upstream *up, struct evhttp_request *req,
				   enum pending_kind kind, long timeout_ms)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct pending *p = NULL;
	struct timeval tv;

	if (bev == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		goto bad;
	p->up = up;
	p->kind = kind;
	p->req = req;
	p->evcon = evcon;
	p->ev = event_new(up->base, bufferevent_getfd(bev), EV_CLOSED,
			  kind == PENDING_DELAY ? delay_cb : watch_cb, p);
	if (p->ev == NULL)
		goto bad;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (event_add(p->ev, timeout_ms >= 0 ? &tv : NULL) == -1)
		goto bad;
	TAILQ_INSERT_TAIL(&up->pendings, p, entry);
	evhttp_connection_set_closecb(evcon, pending_closecb, p);
	return p;
bad:
	if (p != NULL && p->ev != NULL)
		event_free(p->ev);
	free(p);
	reply_text(req, 500, "pending failed\n");
	return NULL;
}

/* ---- endpoints ---- */

static void ep_echo(struct call *c)
{
	struct evhttp_request *req = c->req;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *path = evhttp_uri_get_path(uri);
	const char *query = evhttp_uri_get_query(uri);
	const char *method;
	json_t *obj = json_object(), *hdrs = json_object(), *b;
	struct evkeyval *kv;

	if (path == NULL)
		path = "";
	if (query == NULL)
		query = "";
	if (obj == NULL || hdrs == NULL || body == NULL)
		goto bad;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: method = "GET"; break;
	case EVHTTP_REQ_POST: method = "POST"; break;
	case EVHTTP_REQ_HEAD: method = "HEAD"; break;
	case EVHTTP_REQ_PUT: method = "PUT"; break;
	case EVHTTP_REQ_DELETE: method = "DELETE"; break;
	case EVHTTP_REQ_OPTIONS: method = "OPTIONS"; break;
	case EVHTTP_REQ_TRACE: method = "TRACE"; break;
	case EVHTTP_REQ_CONNECT: method = "CONNECT"; break;
	case EVHTTP_REQ_PATCH: method = "PATCH"; break;
	default: method = "UNKNOWN"; break;
	}
	TAILQ_FOREACH (kv, evhttp_request_get_input_headers(req), next) {
		char name[256];
		size_t i;
		json_t *old, *val;

		for (i = 0; kv->key[i] != '\0' && i < sizeof(name) - 1; i++)
			name[i] = (char)tolower((unsigned char)kv->key[i]);
		name[i] = '\0';
		old = json_object_get(hdrs, name);
		if (old != NULL) {
			size_t olen = json_string_length(old), vlen = strlen(kv->value);
			char *joined = malloc(olen + 2 + vlen);

			if (joined == NULL)
				goto bad;
			memcpy(joined, json_string_value(old), olen);
			memcpy(joined + olen, ", ", 2);
			memcpy(joined + olen + 2, kv->value, vlen);
			val = json_bytes(joined, olen + 2 + vlen);
			free(joined);
		} else {
			val = json_bytes(kv->value, strlen(kv->value));
		}
		if (val == NULL || json_object_set_new(hdrs, name, val) == -1)
			goto bad;
	}
	json_object_set_new(obj, "method", json_string(method));
	json_object_set_new(obj, "path", json_bytes(path, strlen(path)));
	json_object_set_new(obj, "query", json_bytes(query, strlen(query)));
	json_object_set_new(obj, "headers", hdrs);
	hdrs = NULL;
	if ((b = json_stringn(body, len)) != NULL) {
		json_object_set_new(obj, "body", b);
	} else {
		char *enc = base64_encode((const unsigned char *)body, len);

		if (enc == NULL)
			goto bad;
		json_object_set_new(obj, "body_base64", json_string(enc));
		free(enc);
	}
	json_object_set_new(obj, "body_len", json_integer((json_int_t)len));
	reply_json(req, 200, NULL, obj);
	return;
bad:
	json_decref(obj);
	json_decref(hdrs);
	reply_text(req, 500, "echo failed\n");
}

static void ep_status(struct call *c, const char *arg)
{
	char body[32];
	long code;

	if (parse_long(arg, &code) == -1 || code < 200 || code > 599) {
		reply_text(c->req, 400, "bad status\n");
		return;
	}
	if (code == 204 || code == 304) {
		evhttp_send_reply(c->req, (int)code, reason_phrase((int)code), NULL);
		return;
	}
	snprintf(body, sizeof(body), "status %ld\n", code);
	reply_text(c->req, (int)code, body);
}

static void ep_redirect(struct call *c)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	long code = query_long(c, "status", 302, 300, 399);
	const char *cookie = query_str(c, "set_cookie", NULL);

	evhttp_add_header(out, "Location", query_str(c, "to", "/echo"));
	if (cookie != NULL) {
		char buf[1024];

		snprintf(buf, sizeof(buf), "%s; Path=/", cookie);
		evhttp_add_header(out, "Set-Cookie", buf);
	}
	if (code == 304)
		evhttp_send_reply(c->req, 304, reason_phrase(304), NULL);
	else
		reply_text(c->req, (int)code, "redirect\n");
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct evhttp_request *req = p->req;

	(void)fd;
	if (!(what & EV_TIMEOUT)) {
		pending_client_gone(p);
		return;
	}
	pending_drop(p);
	reply_text(req, 200, "delayed\n");
}

static void ep_delay(struct call *c)
{
	pending_new(c->up, c->req, PENDING_DELAY, query_long(c, "ms", 0, 0, MAX_DELAY_MS));
}

static void ep_hold(struct call *c)
{
	struct counter *ctr = counter_get(c->up, query_str(c, "key", ""));
	struct pending *p;

	if (ctr == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	counter_hit(ctr);
	if ((p = pending_new(c->up, c->req, PENDING_HOLD, -1)) == NULL)
		return;
	p->ctr = ctr;
	if (++ctr->held > ctr->peak)
		ctr->peak = ctr->held;
}

static void ep_release(struct call *c)
{
	const char *key = query_str(c, "key", "");
	long n = query_long(c, "n", LONG_MAX, 0, LONG_MAX), released = 0;
	struct pending *p, *next;
	char body[512];

	snprintf(body, sizeof(body), "released %s\n", key);
	for (p = TAILQ_FIRST(&c->up->pendings); p != NULL && released < n; p = next) {
		struct evhttp_request *req = p->req;

		next = TAILQ_NEXT(p, entry);
		if (p->kind != PENDING_HOLD || strcmp(p->ctr->key, key) != 0)
			continue;
		pending_drop(p);
		reply_text(req, 200, body);
		released++;
	}
	reply_json(c->req, 200, NULL, json_pack("{s:I}", "released", (json_int_t)released));
}

static void ep_stats(struct call *c)
{
	struct counter *ctr = counter_get(c->up, query_str(c, "key", ""));

	if (ctr == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	reply_json(c->req, 200, NULL,
		   json_pack("{s:I,s:I,s:I,s:I}", "hits", (json_int_t)ctr->hits, "held",
			     (json_int_t)ctr->held, "peak", (json_int_t)ctr->peak, "min_gap_ms",
			     (json_int_t)ctr->min_gap_ms));
}

static void ep_count(struct call *c)
{
	struct counter *ctr = counter_get(c->up, query_str(c, "key", ""));

	if (ctr == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	counter_hit(ctr);
	reply_json(c->req, 200, NULL, json_pack("{s:I}", "hits", (json_int_t)ctr->hits));
}

/* /flaky?key=K&fail=N&status=S: the first N hits on K answer S (503),
 * with Retry-After: R when retry_after=R, or an HTTP date R seconds
 * ahead when retry_after_date=R, or stall, sending nothing for stall_ms
 * (as /delay); later hits answer 200 {"hits": n}. */
static void ep_flaky(struct call *c)
{
	struct counter *ctr = counter_get(c->up, query_str(c, "key", ""));
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	long fail = query_long(c, "fail", 1, 0, 1000000);
	long status = query_long(c, "status", 503, 400, 599);
	long after = query_long(c, "retry_after", -1, -1, 86400);
	long after_date = query_long(c, "retry_after_date", -1, -1, 86400);
	long stall = query_long(c, "stall_ms", -1, -1, MAX_DELAY_MS);
	char buf[64];

	if (ctr == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	counter_hit(ctr);
	if ((long)ctr->hits > fail) {
		reply_json(c->req, 200, NULL, json_pack("{s:I}", "hits", (json_int_t)ctr->hits));
		return;
	}
	if (stall >= 0) {
		pending_new(c->up, c->req, PENDING_DELAY, stall);
		return;
	}
	if (after >= 0) {
		snprintf(buf, sizeof(buf), "%ld", after);
		evhttp_add_header(out, "Retry-After", buf);
	} else if (after_date >= 0) {
		time_t when = time(NULL) + after_date;
		struct tm tm;

		gmtime_r(&when, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		evhttp_add_header(out, "Retry-After", buf);
	}
	snprintf(buf, sizeof(buf), "flaky %ld\n", status);
	reply_text(c->req, (int)status, buf);
}

static void ep_headers(struct call *c)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);

	evhttp_add_header(out, "X-Multi", "a");
	evhttp_add_header(out, "X-Multi", "b");
	evhttp_add_header(out, "X-Single", "one");
	evhttp_add_header(out, "Set-Cookie", "a=1; Path=/");
	evhttp_add_header(out, "Set-Cookie", "b=2; Path=/");
	reply_text(c->req, 200, "headers\n");
}

static void ep_json(struct call *c)
{
	reply_json(c->req, 200, NULL, json_pack("{s:s,s:i}", "hello", "world", "n", 1));
}

/* /json-list?n=N: a JSON array of N small objects ({"i":0,"s":"item"}),
 * so that parsing it makes many small allocations. */
static void ep_json_list(struct call *c)
{
	long n = query_long(c, "n", 1000, 0, 10L * 1000 * 1000);
	struct evbuffer *body = evbuffer_new();
	int rc = 0;

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	rc |= evbuffer_add(body, "[", 1);
	for (long i = 0; i < n && rc == 0; i++)
		rc |= evbuffer_add_printf(body, "%s{\"i\":%ld,\"s\":\"item\"}", i ? "," : "", i) <
		      0;
	rc |= evbuffer_add(body, "]", 1);
	if (rc != 0)
		reply_text(c->req, 500, "no memory\n");
	else
		reply_buf(c->req, 200, "application/json", body);
	evbuffer_free(body);
}

static void ep_problem(struct call *c)
{
	reply_json(c->req, 422, "application/problem+json", json_pack("{s:s}", "title", "bad"));
}

/* N generated bytes: 'a' when text, else byte i = i % 251. */
static void send_generated(struct call *c, int text)
{
	static char chunk[251 * 64];
	long n = query_long(c, "n", 1024, 0, MAX_GEN_SIZE);
	struct evbuffer *body = evbuffer_new();
	size_t i;

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = text ? 'a' : (char)(i % 251);
	while (n > 0) {
		size_t k = (size_t)n < sizeof(chunk) ? (size_t)n : sizeof(chunk);

		if (evbuffer_add(body, chunk, k) == -1)
			break;
		n -= (long)k;
	}
	if (n > 0)
		reply_text(c->req, 500, "no memory\n");
	else
		reply_buf(c->req, 200,
			  text ? "text/plain; charset=utf-8" : "application/octet-stream", body);
	evbuffer_free(body);
}

static void ep_bytes(struct call *c)
{
	send_generated(c, 0);
}

static void ep_text(struct call *c)
{
	send_generated(c, 1);
}

/* n bytes of 0x01 as UTF-8 text: each becomes "\u0001" in a document,
 * the worst case of escaping (6 bytes for 1). */
static void ep_control(struct call *c)
{
	long n = query_long(c, "n", 1024, 0, MAX_GEN_SIZE);
	char *body = malloc(n > 0 ? (size_t)n : 1);

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	memset(body, 0x01, (size_t)n);
	reply_data(c->req, 200, "text/plain; charset=utf-8", body, (size_t)n);
	free(body);
}

/* About n bytes of JSON that is costly as a tree: [{"":0},{"":0},...]. */
static void ep_json_bomb(struct call *c)
{
	static const char item[] = "{\"\":0},";
	long n = query_long(c, "n", 1024, 16, MAX_GEN_SIZE);
	size_t count = (size_t)n / (sizeof(item) - 1), len = 0;
	char *body = malloc(count * (sizeof(item) - 1) + 2);

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	body[len++] = '[';
	for (size_t i = 0; i < count; i++) {
		memcpy(body + len, item, sizeof(item) - 1);
		len += sizeof(item) - 1;
	}
	body[len - 1] = ']'; /* over the last comma */
	reply_data(c->req, 200, "application/json", body, len);
	free(body);
}

/* JSON nested depth deep (default 2048, jansson's and jsoncopy's most):
 * arrays, or with obj=1 objects {"a":{"a":...}}, around a 0. The deepest
 * document a worker builds, for the stack test (tests/check_stack.c). */
static void ep_nested(struct call *c)
{
	long depth = query_long(c, "depth", 2048, 1, 1000000);
	int obj = query_long(c, "obj", 0, 0, 1) == 1;
	size_t open_len = obj ? 5 : 1, len = 0;
	char *body = malloc((size_t)depth * (open_len + 1) + 1);

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	for (long i = 0; i < depth; i++, len += open_len)
		memcpy(body + len, obj ? "{\"a\":" : "[", open_len);
	body[len++] = '0';
	for (long i = 0; i < depth; i++)
		body[len++] = obj ? '}' : ']';
	reply_data(c->req, 200, "application/json", body, len);
	free(body);
}

/* status s (default 200) with "Content-Length: n" (default 1024) and
 * n bytes of 'a', or no body where there is none to send: to HEAD, and in
 * a 204 or 304 (RFC 9110 sections 9.3.2, 15.3.5, 15.4.5). */
static void ep_declared(struct call *c)
{
	static char chunk[CHUNK_SIZE];
	long n = query_long(c, "n", 1024, 0, MAX_GEN_SIZE);
	long status = query_long(c, "status", 200, 200, 599);
	int with_body = evhttp_request_get_command(c->req) != EVHTTP_REQ_HEAD && status != 204 &&
			status != 304;
	struct evbuffer *body = evbuffer_new();
	char len[32];
	long left;

	if (body == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	memset(chunk, 'a', sizeof(chunk));
	for (left = with_body ? n : 0; left > 0; left -= (long)sizeof(chunk))
		if (evbuffer_add(body, chunk,
				 left < (long)sizeof(chunk) ? (size_t)left : sizeof(chunk)) == -1)
			break;
	if (left > 0) {
		reply_text(c->req, 500, "no memory\n");
	} else {
		snprintf(len, sizeof(len), "%ld", n);
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Length", len);
		reply_buf(c->req, (int)status, "text/plain", body);
	}
	evbuffer_free(body);
}

static void ep_latin1(struct call *c)
{
	static const char body[] = "caf\xe9 cr\xe8me\n";

	reply_data(c->req, 200, "text/plain; charset=ISO-8859-1", body, sizeof(body) - 1);
}

static void ep_latin1_header(struct call *c)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "X-Name", "caf\xe9");
	reply_text(c->req, 200, "ok\n");
}

static void ep_utf8(struct call *c)
{
	static const char body[] = "h\xc3\xa9llo w\xc3\xb6rld\n";

	reply_data(c->req, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static void ep_invalid_utf8(struct call *c)
{
	static const char body[] = "ab\xff\xfe"
				   "cd";

	reply_data(c->req, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static void ep_gzip(struct call *c)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Encoding", "gzip");
	reply_data(c->req, 200, "text/plain", c->up->gzip_body, c->up->gzip_len);
}

static void endless_next(struct evhttp_connection *evcon, void *arg);

static void endless_send(struct pending *p)
{
	static char chunk[CHUNK_SIZE];
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL) {
		pending_client_gone(p);
		return;
	}
	if (chunk[0] == '\0')
		memset(chunk, 'x', sizeof(chunk));
	evbuffer_add(buf, chunk, sizeof(chunk));
	evhttp_send_reply_chunk_with_cb(p->req, buf, endless_next, p);
	evbuffer_free(buf);
}

/* The last chunk left the output buffer: queue the next. */
static void endless_next(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	endless_send(arg);
}

static void ep_endless(struct call *c)
{
	struct pending *p = pending_new(c->up, c->req, PENDING_ENDLESS, -1);

	if (p == NULL)
		return;
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type", "text/plain");
	evhttp_send_reply_start(c->req, 200, reason_phrase(200));
	endless_send(p);
}

static void raw_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

/* Write raw bytes on the request's socket, optionally reset it, and free the
 * connection on the next loop turn (evhttp is still on the stack here). */
static void raw_reply(struct call *c, const char *data, size_t len, int rst)
{
	static const struct timeval now = {0, 0};
	struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	evutil_socket_t fd = bufferevent_getfd(bev);
	size_t off = 0;

	bufferevent_disable(bev, EV_READ | EV_WRITE);
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (rst) {
		struct linger lg = {1, 0};
		struct sockaddr sa;

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		/* Linux: connect(AF_UNSPEC) disconnects with RST now, before
		 * evhttp's shutdown(SHUT_WR) could send a FIN. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_family = AF_UNSPEC;
		connect(fd, &sa, sizeof(sa));
	}
	if (event_base_once(c->up->base, -1, EV_TIMEOUT, raw_free_cb, evcon, &now) == -1)
		evhttp_connection_free(evcon);
}

static void ep_lie(struct call *c)
{
	long n = query_long(c, "n", 100, 0, 1024 * 1024);
	char head[160];
	char *buf;
	int hlen;

	hlen = snprintf(
		head, sizeof(head),
		"HTTP/1.1 200 OK\r\nContent-Length: %ld\r\nContent-Type: text/plain\r\n\r\n", n);
	if ((buf = malloc((size_t)hlen + (size_t)n / 2 + 1)) == NULL) {
		reply_text(c->req, 500, "no memory\n");
		return;
	}
	memcpy(buf, head, (size_t)hlen);
	memset(buf + hlen, 'a', (size_t)n / 2);
	raw_reply(c, buf, (size_t)hlen + (size_t)n / 2, 0);
	free(buf);
}

static void ep_reset(struct call *c)
{
	raw_reply(c, "", 0, 1);
}

static void ep_garbage(struct call *c)
{
	static const char msg[] = "garbage line\r\n\r\n";

	raw_reply(c, msg, sizeof(msg) - 1, 0);
}

static void ep_reset_mid(struct call *c)
{
	static const char head[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n";
	char buf[sizeof(head) - 1 + 1000];

	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 'a', 1000);
	raw_reply(c, buf, sizeof(buf), 1);
}

static void ep_cookie(struct call *c)
{
	const char *name = query_str(c, "name", NULL);
	const char *got = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Cookie");
	json_t *obj = json_object();

	if (name != NULL) {
		char buf[1024];

		snprintf(buf, sizeof(buf), "%s=%s; Path=/", name, query_str(c, "value", ""));
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Set-Cookie", buf);
	}
	if (obj != NULL)
		json_object_set_new(obj, "cookie",
				    got != NULL ? json_bytes(got, strlen(got)) : json_null());
	reply_json(c->req, 200, NULL, obj);
}

static void ep_link(struct call *c)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Link",
			  "<https://example.org/next>; rel=\"next\", </prev>; rel=\"prev\"");
	reply_text(c->req, 200, "link\n");
}

/* Fixed bodies for the materialization tests (/fixture?name=NAME): bytes as
 * a real server sends them, in the charset each name says. Generated once,
 * offline; br is "hello brotli\n" x 100 compressed with libbrotlienc
 * (BrotliEncoderCompress, quality 11, window 22; 31 bytes). */
struct fixture {
	const char *name;
	const char *content_type;
	const char *content_encoding; /* NULL: none */
	const char *body;
	size_t len;
};

#define FIXTURE(name, ctype, cenc, lit)                                                            \
	{                                                                                          \
		name, ctype, cenc, lit, sizeof(lit) - 1                                            \
	}

static const struct fixture fixtures[] = {
	/* declared ISO-8859-1, with 0x92 (windows-1252 only) as browsers see it */
	FIXTURE("latin1-declared", "text/html; charset=ISO-8859-1", NULL,
		"<!DOCTYPE html>\n<html lang=\"fr\"><head><title>Le caf\xe9</title></head><body>\n"
		"<p>L\x92\xe9t\xe9 dernier, \xe0 la fen\xeatre du caf\xe9, le gar\xe7on m\xe8ne "
		"une v"
		"ie tranquille. Il pr\xe9pare la cr\xe8me br\xfbl\xe9"
		"e ; la fa\xe7"
		"ade est d\xe9"
		"cor\xe9"
		"e et les clients \xe9"
		"coutent la m\xe9lodie d\x92une chanson fran\xe7"
		"a"
		"ise.</p>\n<p>O\xf9 est la biblioth\xe8que ? Voil\xe0 : pr\xe8s de l\x92\xe9glise, "
		"ap"
		"r\xe8s le th\xe9\xe2tre, \xe0 c\xf4t\xe9 du gar\xe7on qui re\xe7oit ses "
		"amis.</p>\n"
		"</body></html>\n"),
	FIXTURE("cp1251-meta", "text/html", NULL,
		"<!DOCTYPE html>\n<html><head><meta "
		"charset=\"windows-1251\"><title>\xcf\xf0\xe8\xe2\xe5"
		"\xf2</title></head><body>\n<p>\xd1\xfa\xe5\xf8\xfc \xe6\xe5 \xe5\xf9\xb8 "
		"\xfd\xf2\xe8"
		"\xf5 \xec\xff\xe3\xea\xe8\xf5 \xf4\xf0\xe0\xed\xf6\xf3\xe7\xf1\xea\xe8\xf5 "
		"\xe1\xf3\xeb"
		"\xee\xea, \xe4\xe0 \xe2\xfb\xef\xe5\xe9 \xf7\xe0\xfe. "
		"\xd8\xe8\xf0\xee\xea\xe0\xff \xfd"
		"\xeb\xe5\xea\xf2\xf0\xe8\xf4\xe8\xea\xe0\xf6\xe8\xff \xfe\xe6\xed\xfb\xf5 "
		"\xe3\xf3\xe1"
		"\xe5\xf0\xed\xe8\xe9 \xe4\xe0\xf1\xf2 \xec\xee\xf9\xed\xfb\xe9 "
		"\xf2\xee\xeb\xf7\xee\xea"
		" \xef\xee\xe4\xfa\xb8\xec\xf3 \xf1\xe5\xeb\xfc\xf1\xea\xee\xe3\xee "
		"\xf5\xee\xe7\xff\xe9"
		"\xf1\xf2\xe2\xe0.</p>\n<p>\xc2 \xf7\xe0\xf9\xe0\xf5 \xfe\xe3\xe0 \xe6\xe8\xeb "
		"\xe1\xfb"
		" \xf6\xe8\xf2\xf0\xf3\xf1? \xc4\xe0, \xed\xee "
		"\xf4\xe0\xeb\xfc\xf8\xe8\xe2\xfb\xe9 \xfd"
		"\xea\xe7\xe5\xec\xef\xeb\xff\xf0!</p>\n</body></html>\n"),
	FIXTURE("utf8-bom", "text/plain", NULL, "\xef\xbb\xbfh\xc3\xa9llo"),
	FIXTURE("xml-decl", "application/xml", NULL,
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>caf\xe9</r>"),
	FIXTURE("utf8-undeclared", "text/plain", NULL,
		"D\xc3\xa9j\xc3\xa0 vu : na\xc3\xafve fa\xc3\xa7"
		"ade, c\xc5\x93ur, \xc3\x86r\xc3\xb8"
		"sk\xc3\xb8"
		"bing, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x9c\x93\n"),
	FIXTURE("cp1252-undeclared", "text/plain", NULL,
		"Le prix du menu est de 15 \x80 (quinze euros), service compris. \xab Tr\xe8s bon "
		"rap"
		"port qualit\xe9-prix \xbb, \xe9"
		"crit le critique ; le chef r\xe9pond : \x93"
		"C\x92"
		"est notre c\x9cur de m\xe9tier\x85\x94\nLes \x9cufs brouill\xe9s, la cr\xe8me "
		"fra\xee"
		"che et le p\xe2t\xe9 de campagne sont pr\xe9par\xe9s \xe0 la maison. Un caf\xe9 "
		"co\xfb"
		"te 2 \x80 ; un th\xe9, 3 \x80 ; le g\xe2teau du jour, 6 \x80. \xc0 bient\xf4t, "
		"ch\xe8"
		"re client\xe8le ! Nous sommes ouverts du mardi au dimanche, et la terrasse est "
		"chauf"
		"f\xe9"
		"e l\x92hiver.\n"),
	FIXTURE("br", "text/plain; charset=utf-8", "br",
		"\x1b\x13\x05\xf8\x1d\xa9S\x9f\xbbp-V\x86&\xa7\x15@\xd8\xe8$[\xda["
		"\x18\x18\x0d\x1cLf\xf9"
		"\x05"),
};

#undef FIXTURE

static void ep_fixture(struct call *c)
{
	const char *name = query_str(c, "name", "");
	size_t i;

	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture *f = &fixtures[i];

		if (strcmp(f->name, name) != 0)
			continue;
		if (f->content_encoding != NULL)
			evhttp_add_header(evhttp_request_get_output_headers(c->req),
					  "Content-Encoding", f->content_encoding);
		reply_data(c->req, 200, f->content_type, f->body, f->len);
		return;
	}
	reply_text(c->req, 404, "no such fixture\n");
}

/* /cookie-chain?n=N[&i=I]: hops 1..N each set cookie cI=I and redirect (302)
 * to hop I+1; hop N+1 answers {"cookie": the Cookie header it got, or null,
 * "hops": N}. */
static void ep_cookie_chain(struct call *c)
{
	long n = query_long(c, "n", 3, 0, 100), i = query_long(c, "i", 1, 1, 101);
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	const char *got;
	char buf[128];

	if (i <= n) {
		snprintf(buf, sizeof(buf), "c%ld=%ld; Path=/", i, i);
		evhttp_add_header(out, "Set-Cookie", buf);
		snprintf(buf, sizeof(buf), "/cookie-chain?n=%ld&i=%ld", n, i + 1);
		evhttp_add_header(out, "Location", buf);
		reply_text(c->req, 302, "redirect\n");
		return;
	}
	got = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Cookie");
	reply_json(c->req, 200, NULL,
		   json_pack("{s:o,s:I}", "cookie",
			     got != NULL ? json_bytes(got, strlen(got)) : json_null(), "hops",
			     (json_int_t)n));
}

/* /connections: how many TCP connections were accepted, so a test can
 * check that fetchd's workers keep theirs alive. */
static void ep_connections(struct call *c)
{
	reply_json(c->req, 200, NULL,
		   json_pack("{s:I}", "accepted", (json_int_t)c->up->connections));
}

/* /tls-stats: handshakes completed, full and resumed, by every connection
 * that never asked for /tls-stats, /stats or /release (see route_request);
 * 404 without --tls. */
static void ep_tls_stats(struct call *c)
{
	unsigned long full, resumed;

	if (c->up->tls == NULL) {
		reply_text(c->req, 404, "not a TLS upstream\n");
		return;
	}
	upstream_tls_counts(c->up->tls, &full, &resumed);
	reply_json(
		c->req, 200, NULL,
		json_pack("{s:I,s:I}", "full", (json_int_t)full, "resumed", (json_int_t)resumed));
}

/* evhttp's hook for each new connection: count it, and give it TLS when
 * the upstream serves HTTPS. */
static struct bufferevent *count_connection(struct event_base *base, void *arg)
{
	struct upstream *u = arg;

	u->connections++;
	if (u->tls != NULL)
		return upstream_tls_bufferevent(u->tls, base);
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static const struct route {
	const char *path;
	void (*fn)(struct call *);
} route_table[] = {
	{"/echo", ep_echo},
	{"/redirect", ep_redirect},
	{"/delay", ep_delay},
	{"/hold", ep_hold},
	{"/release", ep_release},
	{"/stats", ep_stats},
	{"/count", ep_count},
	{"/flaky", ep_flaky},
	{"/connections", ep_connections},
	{"/tls-stats", ep_tls_stats},
	{"/headers", ep_headers},
	{"/json", ep_json},
	{"/json-list", ep_json_list},
	{"/problem", ep_problem},
	{"/bytes", ep_bytes},
	{"/text", ep_text},
	{"/declared", ep_declared},
	{"/control", ep_control},
	{"/json-bomb", ep_json_bomb},
	{"/nested", ep_nested},
	{"/latin1", ep_latin1},
	{"/latin1-header", ep_latin1_header},
	{"/utf8", ep_utf8},
	{"/invalid-utf8", ep_invalid_utf8},
	{"/gzip", ep_gzip},
	{"/endless", ep_endless},
	{"/lie", ep_lie},
	{"/reset", ep_reset},
	{"/garbage", ep_garbage},
	{"/reset-mid", ep_reset_mid},
	{"/cookie", ep_cookie},
	{"/link", ep_link},
	{"/fixture", ep_fixture},
	{"/cookie-chain", ep_cookie_chain},
};

static void route_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct call c;
	size_t i;

	c.up = arg;
	c.req = req;
	TAILQ_INIT(&c.query);
	/* A malformed query leaves the list empty: every value defaults. */
	if (query != NULL && evhttp_parse_query_str(query, &c.query) == -1)
		evhttp_clear_headers(&c.query);
	if (path == NULL)
		path = "/";
	/* the tests' queries of the counters stay out of the TLS counts */
	if (c.up->tls != NULL && (strcmp(path, "/tls-stats") == 0 || strcmp(path, "/stats") == 0 ||
				  strcmp(path, "/release") == 0))
		upstream_tls_exclude(c.up->tls, evhttp_connection_get_bufferevent(
							evhttp_request_get_connection(req)));
	if (strncmp(path, "/status/", 8) == 0) {
		ep_status(&c, path + 8);
		goto done;
	}
	for (i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++) {
		if (strcmp(path, route_table[i].path) == 0) {
			route_table[i].fn(&c);
			goto done;
		}
	}
	reply_text(req, 404, "not found\n");
done:
	evhttp_clear_headers(&c.query);
}

/* Gzip "hello gzip\n" x 100 once, for /gzip. */
static int gzip_prepare(struct upstream *up)
{
	static const char line[] = "hello gzip\n";
	char plain[(sizeof(line) - 1) * 100];
	z_stream zs;
	size_t i, cap;
	int rc;

	for (i = 0; i < 100; i++)
		memcpy(plain + i * (sizeof(line) - 1), line, sizeof(line) - 1);
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&zs, sizeof(plain));
	if ((up->gzip_body = malloc(cap)) == NULL) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)plain;
	zs.avail_in = sizeof(plain);
	zs.next_out = up->gzip_body;
	zs.avail_out = (uInt)cap;
	rc = deflate(&zs, Z_FINISH);
	up->gzip_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return rc == Z_STREAM_END ? 0 : -1;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct upstream up;
	struct evhttp_bound_socket *bound;
	struct event *ev_term = NULL, *ev_int = NULL;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct counter *ctr;
	struct upstream_tls_opts tls = {0};
	char tls_err[512];
	const char *bind_addr = "127.0.0.1";
	long port = 0;
	int i, rc = 1;

	memset(&up, 0, sizeof(up));
	TAILQ_INIT(&up.pendings);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc &&
		    parse_long(argv[i + 1], &port) == 0 && port >= 0 && port <= 65535) {
			i++;
		} else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc &&
			   strncmp(argv[i + 1], "127.", 4) == 0) {
			bind_addr = argv[++i]; /* loopback only: 127.0.0.0/8 */
		} else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
			tls.cert = argv[++i];
			tls.key = argv[++i];
		} else if (strcmp(argv[i], "--tls-client-ca") == 0 && i + 1 < argc) {
			tls.client_ca = argv[++i];
		} else if (strcmp(argv[i], "--tls-max") == 0 && i + 1 < argc) {
			tls.max_version = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--port N] [--bind 127.X.Y.Z] [--tls CERT KEY "
				"[--tls-client-ca FILE] [--tls-max 1.2|1.3]]\n",
				argv[0]);
			return 2;
		}
	}
	if (tls.cert == NULL && (tls.client_ca != NULL || tls.max_version != NULL)) {
		fprintf(stderr, "upstream: --tls-client-ca and --tls-max need --tls\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (tls.cert != NULL &&
	    (up.tls = upstream_tls_new(&tls, tls_err, sizeof(tls_err))) == NULL) {
		fprintf(stderr, "upstream: %s\n", tls_err);
		goto out;
	}
	if (gzip_prepare(&up) == -1) {
		fprintf(stderr, "upstream: gzip set-up failed\n");
		goto out;
	}
	/* precise timers: libevent's default coarse clock ticks every 4 ms,
	 * which made /delay?ms=50 answer in 52 ms on average */
	struct event_config *ecfg = event_config_new();

	if (ecfg != NULL)
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	up.base = ecfg != NULL ? event_base_new_with_config(ecfg) : NULL;
	if (ecfg != NULL)
		event_config_free(ecfg);
	if (up.base == NULL || (up.http = evhttp_new(up.base)) == NULL) {
		fprintf(stderr, "upstream: libevent set-up failed\n");
		goto out;
	}
	if (!(event_base_get_features(up.base) & EV_FEATURE_EARLY_CLOSE))
		fprintf(stderr, "upstream: no EV_CLOSED; dropped clients go unnoticed\n");
	evhttp_set_max_body_size(up.http, 16 * 1024 * 1024);
	evhttp_set_timeout(up.http, 600);
	evhttp_set_allowed_methods(up.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
						    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(up.http, route_request, &up);
	evhttp_set_bevcb(up.http, count_connection, &up);
	bound = evhttp_bind_socket_with_handle(up.http, bind_addr, (ev_uint16_t)port);
	if (bound == NULL) {
		fprintf(stderr, "upstream: cannot bind %s:%ld\n", bind_addr, port);
		goto out;
	}
	/* evhttp_bind_socket listens with a backlog of 128: thousands of
	 * clients connecting at once (tests/check_scale, bench/run scale)
	 * overflowed it and waited a second for a SYN retry. Linux takes a
	 * second listen() as a new backlog (capped by net.core.somaxconn). */
	listen(evhttp_bound_socket_get_fd(bound), 65535);
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &slen) == -1) {
		perror("upstream: getsockname");
		goto out;
	}
	/* Accepted sockets inherit TCP_NODELAY on Linux. Without it a TLS reply
	 * (two records, two writes) waits ~40 ms for the client's delayed ACK
	 * on a keep-alive connection. */
	{
		int one = 1;

		setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
	}
	ev_term = evsignal_new(up.base, SIGTERM, signal_cb, up.base);
	ev_int = evsignal_new(up.base, SIGINT, signal_cb, up.base);
	if (ev_term == NULL || ev_int == NULL || evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1) {
		fprintf(stderr, "upstream: signal set-up failed\n");
		goto out;
	}
	printf("PORT %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	if (event_base_dispatch(up.base) == -1)
		goto out;
	rc = 0;
out:
	/* Freeing the connections runs each pending closecb, which drops it. */
	if (up.http != NULL)
		evhttp_free(up.http);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (up.base != NULL)
		event_base_free(up.base);
	while ((ctr = up.counters) != NULL) {
		up.counters = ctr->next;
		free(ctr->key);
		free(ctr);
	}
	free(up.gzip_body);
	upstream_tls_free(up.tls);
	return rc;
}
