/* The HTTP front on the loop thread: routes, authentication, the stats
 * and metrics pages, and the server's life cycle (start, reload, drain,
 * free). A fetch request is parsed and validated here and handed to
 * pending.c, which queues it in a pool and writes the answer. Nothing here
 * waits on the network: no curl call (but in inline mode, [pool] threads =
 * 0, where executor_submit runs each fetch on this thread, by design, for
 * demonstration), no DNS lookup but the listen addresses' at start-up, no
 * large JSON encode. The files read on the loop are the config and the
 * token file, at start-up and on SIGHUP. */
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include "access.h"
#include "auth.h"
#include "budget.h"
#include "clock.h"
#include "config.h"
#include "connections.h"
#include "errors.h"
#include "executor.h"
#include "fetch.h"
#include "listen.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "pending.h"
#include "procstat.h"
#include "reply.h"
#include "request.h"
#include "seams.h"
#include "server_state.h"
#include "snapshot.h"
#include "version.h"

#define MAX_HEADERS_SIZE (64 * 1024)

/* Parse the client's body, then drop it: a request waiting in the queue
 * would otherwise keep its body's buffer (a chain of 1 KiB or more) until
 * it is answered. */
static json_t *read_body(struct evhttp_request *req, struct request_error *err)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, -1);
	json_t *obj = request_parse_body(data ? data : "", len, err);

	evbuffer_drain(in, len);
	return obj;
}

static void free_text(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

#define JSON_TYPE "application/json; charset=utf-8"

/* The front's own answers: every answer but a fetch's or a batch's (those
 * pending.c writes). Each gets its X-Request-Id, one access line and one
 * count in fetchd_requests_total, as a fetch does; doc (malloc'd) is
 * taken. */
static void front_reply_doc(struct server *srv, struct evhttp_request *req, int status,
			    enum fetchd_err err, const char *type, char *doc, size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	char id[65];

	pending_request_id(srv, req, id, sizeof(id));
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", id);
	metrics_count_answer(&srv->metrics, status, err);
	if (srv->cfg->access_log)
		access_log_request(
			req,
			&(struct access_entry){
				.id = id,
				.status = status,
				.err = err,
				.bytes = len,
				.total_ms = (double)(clock_now_ns() - srv->request_start_ns) / 1e6,
			});
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	if (buf == NULL || evbuffer_add_reference(buf, doc, len, free_text, NULL) != 0)
		free(doc);
	seams_send_reply_now(req, status, reply_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

static void front_error(struct server *srv, struct evhttp_request *req, enum fetchd_err err,
			const char *message)
{
	size_t len;
	char *doc = err_document(err, message, NULL, &len);

	if (err == ERR_OVERLOADED)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
	front_reply_doc(srv, req, err_http_status(err), err, JSON_TYPE, doc, len);
}

/* obj is stolen. */
static void front_json(struct server *srv, struct evhttp_request *req, int status, json_t *obj)
{
	char *doc = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

	json_decref(obj);
	if (doc == NULL) {
		front_error(srv, req, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	front_reply_doc(srv, req, status, ERR_NONE, JSON_TYPE, doc, strlen(doc));
}

static void handle_fetch_object(struct server *srv, struct evhttp_request *req, json_t *obj)
{
	struct pending *p = pending_new(srv, req, 1, false);

	if (p == NULL) {
		front_error(srv, req, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	pending_submit(p, 0, obj);
}

/* A number as JSON writes one (leading zeros aside): strtod alone also
 * takes hex ("0x10" was 16 s), "nan", "inf" and leading blanks. */
static bool query_is_decimal(const char *s)
{
	bool digits = false;

	if (*s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits = true;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits = true;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static bool query_key_is(const char *key, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(key, name, len) == 0;
}

/* The JSON value of GET parameter key (value decoded, value_len bytes):
 * a number for timeout, a string for url, method and body_mode. NULL with
 * msg filled for an unknown key or a bad value. */
static json_t *query_value(const char *key, size_t key_len, const char *value, size_t value_len,
			   char *msg, size_t msglen)
{
	int shown = key_len < 64 ? (int)key_len : 64;
	json_t *v;

	if (memchr(value, '\0', value_len) != NULL) {
		snprintf(msg, msglen, "query parameter '%.*s' must not contain a NUL byte", shown,
			 key);
		return NULL;
	}
	if (query_key_is(key, key_len, "timeout")) {
		bool decimal = query_is_decimal(value);
		double d = 0.0;

		errno = 0;
		if (decimal)
			d = strtod(value, NULL); /* ERANGE: 1e999, 1e-999 */
		if (!decimal || errno != 0) {
			snprintf(msg, msglen,
				 "query parameter 'timeout' must be a decimal number of seconds "
				 "(such as 10 or 0.5)");
			return NULL;
		}
		return json_real(d);
	}
	if (query_key_is(key, key_len, "url") || query_key_is(key, key_len, "method") ||
	    query_key_is(key, key_len, "body_mode")) {
		if ((v = json_stringn(value, value_len)) == NULL)
			snprintf(msg, msglen, "query parameter '%.*s' is not valid UTF-8", shown,
				 key);
		return v;
	}
	snprintf(msg, msglen,
		 "unknown query parameter '%.*s' (GET /v1/fetch takes url, method, timeout, "
		 "body_mode)",
		 shown, key);
	return NULL;
}

/* GET /v1/fetch?url=...: the query's parameters as a fetch object, as
 * strict as the JSON form. The query is split here rather than by
 * evhttp_parse_query_str, whose values are C strings: "url=...%00" and
 * "timeout=1%00" were cut at the NUL. Keys are taken as written and values
 * percent-decoded with '+' as a space, as evhttp does; a value that decodes
 * to a NUL byte is refused, and timeout must be a decimal number (the JSON
 * form then refuses one that is not positive). No query at all gives {},
 * which validation answers "field 'url' is required". */
static json_t *query_to_object(const char *query, struct request_error *err)
{
	char *msg = err->message;
	size_t msglen = sizeof(err->message);
	json_t *obj = json_object(), *v;
	char *raw = NULL, *value = NULL;
	const char *arg, *end, *eq;

	if (obj == NULL) {
		err->code = ERR_NO_MEMORY;
		snprintf(msg, msglen, ERR_NO_MEMORY_MESSAGE);
		goto bad;
	}
	for (arg = query ? query : ""; *arg != '\0'; arg = *end == '&' ? end + 1 : end) {
		size_t key_len, value_len = 0;

		end = arg + strcspn(arg, "&");
		eq = memchr(arg, '=', (size_t)(end - arg));
		if (eq == NULL || eq == arg) {
			snprintf(msg, msglen, "the query string is malformed");
			goto bad;
		}
		key_len = (size_t)(eq - arg);
		raw = strndup(eq + 1, (size_t)(end - eq - 1));
		value = raw != NULL ? evhttp_uridecode(raw, 1, &value_len) : NULL;
		if (value == NULL) {
			err->code = ERR_NO_MEMORY;
			snprintf(msg, msglen, ERR_NO_MEMORY_MESSAGE);
			goto bad;
		}
		if (json_object_getn(obj, arg, key_len) != NULL) {
			snprintf(msg, msglen, "query parameter '%.*s' is given twice",
				 key_len < 64 ? (int)key_len : 64, arg);
			goto bad;
		}
		if ((v = query_value(arg, key_len, value, value_len, msg, msglen)) == NULL)
			goto bad;
		json_object_setn_new(obj, arg, key_len, v);
		free(raw);
		free(value);
		raw = value = NULL;
	}
	return obj;
bad:
	free(raw);
	free(value);
	json_decref(obj);
	return NULL;
}

/* Answer 508 loop_detected, and return true, when req is one of this
 * fetchd's own fetches come back: its Via names us (fetch_instance). That
 * ends a loop at its first turn whatever address it took, before it holds
 * a worker, as proxies do (RFC 9110 section 7.6.3; 508 from RFC 5842). */
static bool refuse_loop(struct server *srv, struct evhttp_request *req)
{
	struct evkeyval *kv;
	char msg[160];

	TAILQ_FOREACH (kv, evhttp_request_get_input_headers(req), next) {
		if (strcasecmp(kv->key, "Via") != 0 || !fetch_via_names_us(kv->value))
			continue;
		snprintf(msg, sizeof(msg),
			 "this request came through this fetchd already (its Via names %s): a "
			 "fetch loop",
			 fetch_instance());
		front_error(srv, req, ERR_LOOP_DETECTED, msg);
		return true;
	}
	return false;
}

static void handle_fetch(struct server *srv, struct evhttp_request *req)
{
	struct request_error err;
	json_t *obj;

	if (refuse_loop(srv, req))
		return;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) { /* GET, HEAD */
		const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

		err.code = ERR_INVALID_REQUEST;
		obj = query_to_object(evhttp_uri_get_query(uri), &err);
		if (obj == NULL) {
			front_error(srv, req, err.code, err.message);
			return;
		}
	} else {
		obj = read_body(req, &err);
		if (obj == NULL) {
			front_error(srv, req, err.code, err.message);
			return;
		}
	}
	handle_fetch_object(srv, req, obj);
	json_decref(obj);
}

static void handle_batch(struct server *srv, struct evhttp_request *req)
{
	struct request_error err;
	json_t *obj = read_body(req, &err), *list;
	const char *key;
	json_t *value;
	struct pending *p;
	char msg[256];

	if (refuse_loop(srv, req)) {
		json_decref(obj);
		return;
	}
	if (obj == NULL) {
		front_error(srv, req, err.code, err.message);
		return;
	}
	if (!json_is_object(obj)) {
		front_error(srv, req, ERR_INVALID_REQUEST, "the batch must be a JSON object");
		goto out;
	}
	json_object_foreach (obj, key, value) {
		if (strcmp(key, "requests") != 0) {
			snprintf(msg, sizeof(msg), "unknown field '%.64s' (a batch has 'requests')",
				 key);
			front_error(srv, req, ERR_INVALID_REQUEST, msg);
			goto out;
		}
	}
	list = json_object_get(obj, "requests");
	if (!json_is_array(list)) {
		front_error(srv, req, ERR_INVALID_REQUEST, "field 'requests' must be an array");
		goto out;
	}
	if (json_array_size(list) > srv->cfg->max_batch) {
		snprintf(msg, sizeof(msg), "field 'requests' has %zu items; at most %u are allowed",
			 json_array_size(list), srv->cfg->max_batch);
		front_error(srv, req, ERR_INVALID_REQUEST, msg);
		goto out;
	}
	if (json_array_size(list) == 0) {
		front_json(srv, req, 200, json_pack("{s:[]}", "results"));
		goto out;
	}
	p = pending_new(srv, req, json_array_size(list), true);
	if (p == NULL) {
		front_error(srv, req, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		goto out;
	}
	/* admitted one by one, like asyncio.gather; the last completion may
	 * free p, so count the items before submitting */
	size_t n = json_array_size(list);
	for (size_t i = 0; i < n; i++)
		pending_submit(p, i, json_array_get(list, i));
out:
	json_decref(obj);
}

/* The three probes, answered on the loop without a token (README,
 * Operations):
 * - /healthz, for load balancers (HAProxy's option httpchk): 200 "ok",
 *   503 "draining" from SIGTERM on, through the lame duck and the drain,
 *   so a balancer stops sending work before fetchd stops accepting;
 * - /readyz, for Kubernetes readiness: the same rule, with the phase
 *   named: 200 "ready", 503 "lame_duck" or "draining";
 * - /livez, for Kubernetes liveness: 200 "alive" whenever the loop answers,
 *   lame duck and drain included, so a probe never kills a pod that is
 *   shutting down as asked. */
static void handle_healthz(struct server *srv, struct evhttp_request *req)
{
	if (srv->draining || srv->lame_duck)
		front_json(srv, req, 503, json_pack("{s:s}", "status", "draining"));
	else
		front_json(srv, req, 200, json_pack("{s:s}", "status", "ok"));
}

static void handle_readyz(struct server *srv, struct evhttp_request *req)
{
	if (srv->draining)
		front_json(srv, req, 503, json_pack("{s:s}", "status", "draining"));
	else if (srv->lame_duck)
		front_json(srv, req, 503, json_pack("{s:s}", "status", "lame_duck"));
	else
		front_json(srv, req, 200, json_pack("{s:s}", "status", "ready"));
}

static void handle_livez(struct server *srv, struct evhttp_request *req)
{
	front_json(srv, req, 200, json_pack("{s:s}", "status", "alive"));
}

static json_t *latency_object(const struct histogram *h)
{
	return json_pack("{s:f, s:f, s:f}", "p50_ms", metrics_quantile(h, 0.50) * 1e3, "p90_ms",
			 metrics_quantile(h, 0.90) * 1e3, "p99_ms",
			 metrics_quantile(h, 0.99) * 1e3);
}

static const char *pool_name(struct server *srv, size_t i)
{
	return i == 0 ? "default" : srv->cfg->pools[i - 1].name;
}

/* A pool's per-host admission ([pool] per_host_limit, per_host_interval)
 * in /v1/stats: counts only, no host names. */
static json_t *per_host_object(const struct executor_stats *st)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:I, s:I, s:I}", "hosts", (int)st->keys, "at_limit",
			 (int)st->keys_at_limit, "paced", (int)st->keys_paced, "waiting",
			 (int)st->key_waiting, "limit_waits", (json_int_t)st->key_limit_waits,
			 "pace_waits", (json_int_t)st->key_pace_waits, "pauses",
			 (json_int_t)st->key_pauses);
}

static void handle_stats(struct server *srv, struct evhttp_request *req)
{
	json_t *pools = json_object();

	for (size_t i = 0; pools != NULL && i < srv->n_pools; i++) {
		struct executor_stats st;

		executor_get_stats(srv->pools[i], &st);
		json_object_set_new(
			pools, pool_name(srv, i),
			json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:o}",
				  "threads", (int)st.threads, "min_threads", (int)st.min_threads,
				  "live", (int)st.live, "idle", (int)st.idle, "busy", (int)st.busy,
				  "queued", (int)st.queued, "queue_limit", (int)st.queue_limit,
				  "completed", (json_int_t)st.completed, "failed",
				  (json_int_t)srv->metrics.pool_failed[i], "rejected",
				  (json_int_t)st.rejected, "cancelled",
				  (json_int_t)(st.cancelled + srv->metrics.pool_aborted[i]),
				  "per_host", per_host_object(&st)));
	}
	struct connections_stats cs;

	connections_get_stats(srv->conns, &cs);
	front_json(
		srv, req, 200,
		json_pack("{s:s, s:f, s:o?, s:{s:I, s:i, s:I, s:I, s:I}, s:{s:o, s:o}, s:I, s:I}",
			  "version", PACKAGE_VERSION, "uptime_s",
			  (double)(clock_now_ns() - srv->started_ns) / 1e9, "pools", pools,
			  "connections", "open", (json_int_t)cs.open, "max",
			  (int)srv->cfg->max_connections, "accepted", (json_int_t)cs.accepted,
			  "accept_paused", (json_int_t)cs.accept_paused, "request_timeouts",
			  (json_int_t)cs.request_timeouts, "latency", "fetch",
			  latency_object(&srv->metrics.fetch_duration), "queue_wait",
			  latency_object(&srv->metrics.queue_wait), "client_cancelled",
			  (json_int_t)srv->metrics.client_cancelled, "pending_bytes",
			  (json_int_t)budget_used(doc_account_budget(srv->docs))));
}

static void handle_metrics(struct server *srv, struct evhttp_request *req)
{
	struct executor_stats st[1 + CONFIG_MAX_POOLS];
	const char *names[1 + CONFIG_MAX_POOLS];
	size_t len;
	char *text;

	for (size_t i = 0; i < srv->n_pools; i++) {
		executor_get_stats(srv->pools[i], &st[i]);
		st[i].cancelled += srv->metrics.pool_aborted[i];
		names[i] = pool_name(srv, i);
	}
	struct connections_stats cs;

	connections_get_stats(srv->conns, &cs);
	srv->metrics.connections_open = cs.open;
	srv->metrics.connections_accepted = cs.accepted;
	srv->metrics.accept_paused = cs.accept_paused;
	srv->metrics.request_timeouts = cs.request_timeouts;
	srv->metrics.response_bytes = doc_account_written_bytes(srv->docs);
	struct metrics_build build = {PACKAGE_VERSION, version_libcurl(), version_libevent()};
	struct process_stats ps;

	text = metrics_render(&srv->metrics, names, st, srv->n_pools,
			      budget_used(doc_account_budget(srv->docs)), &build,
			      procstat_read(&ps) == 0 ? &ps : NULL, &len);
	if (text == NULL) {
		front_error(srv, req, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	front_reply_doc(srv, req, 200, ERR_NONE, "text/plain; version=0.0.4; charset=utf-8", text,
			len);
}

struct route {
	const char *path;
	unsigned methods; /* EVHTTP_REQ_* bits */
	const char *allow;
	void (*handler)(struct server *, struct evhttp_request *);
	bool open;
};

/* HEAD goes wherever GET does, and is answered as GET would be with the
 * body left out (RFC 9110 section 9.3.2; seams_send_reply_now drops it).
 * open: answered without the bearer token (the probes). */
static const struct route routes[] = {
	{"/v1/fetch", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST, "GET, HEAD, POST",
	 handle_fetch, false},
	{"/v1/batch", EVHTTP_REQ_POST, "POST", handle_batch, false},
	{"/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_healthz, true},
	{"/readyz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_readyz, true},
	{"/livez", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_livez, true},
	{"/v1/stats", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_stats, false},
	{"/metrics", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_metrics, false},
};

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct route *r = NULL;
	char msg[256];

	if (path == NULL)
		path = "/";
	srv->request_start_ns = clock_now_ns();
	connections_request_read(srv->conns, req);
	/* draining: answered, then the connection closes (no next request) */
	if (srv->draining)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0)
			r = &routes[i];
	/* the probes stay open so load balancers and kubelets need no token */
	if (srv->auth_token != NULL && (r == NULL || !r->open) &&
	    !auth_request_ok(req, srv->auth_token)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer");
		front_error(srv, req, ERR_UNAUTHORIZED,
			    "missing or wrong 'Authorization: Bearer' token");
		return;
	}
	if (r == NULL) {
		snprintf(msg, sizeof(msg), "no such path '%.128s'", path);
		front_error(srv, req, ERR_NOT_FOUND, msg);
		return;
	}
	if (!(evhttp_request_get_command(req) & r->methods)) {
		snprintf(msg, sizeof(msg), "%s takes %s", r->path, r->allow);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->allow);
		front_error(srv, req, ERR_METHOD_NOT_ALLOWED, msg);
		return;
	}
	r->handler(srv, req);
}

static void *worker_init(unsigned id, void *arg)
{
	(void)arg;
	return fetch_worker_new(id);
}

static void worker_fini(void *ctx, void *arg)
{
	(void)arg;
	fetch_worker_free(ctx);
}

/* The shape of pool i (0: [pool], i: [pool.NAME] i - 1) in cfg. Named
 * pools are fixed; every pool takes [pool]'s stack_size, idle timeout and
 * per-host rules (each pool applies them to the fetches it runs). */
static void pool_params(const struct fetchd_config *cfg, size_t i, struct executor_params *p)
{
	p->threads = i == 0 ? cfg->threads : cfg->pools[i - 1].threads;
	p->min_threads = i == 0 ? cfg->min_threads : p->threads;
	p->queue_limit = i == 0 ? cfg->queue_limit : cfg->pools[i - 1].queue_limit;
	p->stack_size = (size_t)cfg->stack_size;
	p->idle_timeout_ms = cfg->thread_idle_timeout_ms;
	p->per_key_limit = cfg->per_host_limit;
	p->per_key_interval_ms = cfg->per_host_interval_ms;
}

/* The evhttp limits of a configuration. */
static void apply_http_limits(struct server *srv, const struct fetchd_config *cfg)
{
	struct timeval idle = {.tv_sec = (time_t)(cfg->idle_timeout_ms / 1000),
			       .tv_usec = (suseconds_t)(cfg->idle_timeout_ms % 1000) * 1000};

	evhttp_set_max_body_size(srv->http, (ev_ssize_t)cfg->max_request_bytes);
	evhttp_set_timeout_tv(srv->http, &idle);
	if (srv->conns != NULL)
		connections_set_limits(srv->conns, cfg->max_connections, cfg->request_timeout_ms);
}

/* A document libevent held was written. */
static void docs_written(void *srv)
{
	server_check_drained(srv);
}

struct server *server_new(struct event_base *base, struct fetchd_config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->cfg = cfg;
	srv->started_ns = clock_now_ns();
	srv->pid = (unsigned)getpid();
	TAILQ_INIT(&srv->unwatched);
	if ((srv->docs = doc_account_new(cfg->max_pending_bytes, docs_written, srv)) == NULL ||
	    (srv->snap = snapshot_new(cfg, NULL, 0, NULL)) == NULL ||
	    (srv->watch_timer = evtimer_new(base, pending_watch_clients, srv)) == NULL ||
	    (srv->http = evhttp_new(base)) == NULL)
		goto bad;
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(srv->http, MAX_HEADERS_SIZE);
	srv->conns =
		connections_new(base, srv->http, cfg->max_connections, cfg->request_timeout_ms);
	if (srv->conns == NULL)
		goto bad;
	apply_http_limits(srv, cfg);
	evhttp_set_gencb(srv->http, dispatch, srv);
	return srv;
bad:
	/* the snapshot does not own cfg yet: the caller frees it */
	if (srv->http != NULL)
		evhttp_free(srv->http);
	if (srv->watch_timer != NULL)
		event_free(srv->watch_timer);
	snapshot_discard(srv->snap);
	doc_account_release(srv->docs);
	free(srv);
	return NULL;
}

int server_start(struct server *srv)
{
	const struct fetchd_config *cfg = srv->cfg;

	if (listen_open(&srv->listen, srv->base, srv->http, cfg) != 0)
		return -1;
	connections_set_listeners(srv->conns, srv->listen.listeners, srv->listen.n_bound);
	if (cfg->auth_token_file != NULL &&
	    (srv->auth_token = auth_load_token(cfg->auth_token_file)) == NULL)
		return -1;
	if (snapshot_set_self(srv->snap, srv->listen.self, srv->listen.n_self, NULL) != 0)
		return -1;
	struct executor_params params;

	pool_params(cfg, 0, &params);
	srv->pools[0] = executor_start(srv->base, &params, worker_init, worker_fini, NULL);
	if (srv->pools[0] == NULL) {
		log_error("cannot start the worker pool");
		return -1;
	}
	executor_set_idle(srv->pools[0], memory_pool_idle);
	srv->n_pools = 1;
	log_info("pool default: %u threads (%u kept), queue limit %u%s", cfg->threads,
		 cfg->min_threads, cfg->queue_limit,
		 cfg->threads == 0 ? " (inline mode: fetches block the loop)" : "");
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct config_pool *pc = &cfg->pools[i];

		pool_params(cfg, i + 1, &params);
		srv->pools[i + 1] =
			executor_start(srv->base, &params, worker_init, worker_fini, NULL);
		if (srv->pools[i + 1] == NULL) {
			log_error("cannot start pool %s", pc->name);
			return -1;
		}
		executor_set_idle(srv->pools[i + 1], memory_pool_idle);
		srv->n_pools++;
		log_info("pool %s: %u threads, queue limit %u, %zu host pattern%s", pc->name,
			 pc->threads, pc->queue_limit, pc->n_hosts, pc->n_hosts == 1 ? "" : "s");
	}
	return 0;
}

void server_check_drained(struct server *srv)
{
	/* every accepted request answered, every answer written, and no
	 * accepted connection still bringing one */
	if (srv->draining && srv->pendings == NULL && doc_account_held(srv->docs) == 0 &&
	    connections_unfinished(srv->conns) == 0 && srv->drained != NULL) {
		void (*cb)(void *) = srv->drained;

		srv->drained = NULL;
		cb(srv->drained_arg);
	}
}

/* Past shutdown_timeout: answer what is queued, abort what runs. */
static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *srv = arg;

	log_warn("shutdown_timeout passed: aborting the fetches still in flight");
	srv->drain_aborted = true;
	pending_abort_all(srv);
	connections_drain_abort(srv->conns);
}

static void drain_progress(void *srv)
{
	server_check_drained(srv);
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	server_check_drained(arg);
}

/* How long, in the drain, a connection accepted before it may take to
 * begin its first request (at most request_timeout): a client that had
 * just connected is sending it. */
#define DRAIN_FIRST_REQUEST_MS 1000

/* Stop accepting, and finish what was accepted within shutdown_timeout. */
static void drain_begin(struct server *srv)
{
	struct timeval tv = {.tv_sec = (time_t)(srv->cfg->shutdown_timeout_ms / 1000),
			     .tv_usec = (suseconds_t)(srv->cfg->shutdown_timeout_ms % 1000) * 1000};
	struct timeval now = {0, 0};

	srv->lame_duck = false;
	srv->draining = true;
	connections_set_listeners(srv->conns, NULL, 0);
	listen_detach(&srv->listen, srv->http);
	connections_drain(srv->conns,
			  srv->cfg->request_timeout_ms < DRAIN_FIRST_REQUEST_MS
				  ? srv->cfg->request_timeout_ms
				  : DRAIN_FIRST_REQUEST_MS,
			  drain_progress, srv);
	srv->drain_timer = evtimer_new(srv->base, drain_timeout, srv);
	if (srv->drain_timer != NULL)
		evtimer_add(srv->drain_timer, &tv);
	/* from the loop, not from inside the signal handler's caller */
	srv->drain_check = evtimer_new(srv->base, drain_check, srv);
	if (srv->drain_check != NULL)
		evtimer_add(srv->drain_check, &now);
}

static void lame_duck_over(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_info("lame duck over: no new connections; finishing in-flight fetches");
	drain_begin(srv);
}

void server_drain(struct server *srv, void (*drained)(void *arg), void *arg)
{
	uint64_t ms = srv->cfg->lame_duck_ms;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	if (srv->draining)
		return;
	srv->drained = drained;
	srv->drained_arg = arg;
	if (srv->lame_duck) {
		/* a second signal: no more waiting */
		evtimer_del(srv->lame_duck_timer);
		drain_begin(srv);
		return;
	}
	if (ms > 0 &&
	    (srv->lame_duck_timer = evtimer_new(srv->base, lame_duck_over, srv)) != NULL) {
		/* load balancers see /healthz fail and stop sending work while
		 * this instance still serves what they send meanwhile */
		srv->lame_duck = true;
		evtimer_add(srv->lame_duck_timer, &tv);
		log_info("lame duck for %llu ms: /healthz answers 503, fetches are still served",
			 (unsigned long long)ms);
		return;
	}
	drain_begin(srv);
}

static bool same_listen(const struct fetchd_config *a, const struct fetchd_config *b)
{
	if (a->n_listen != b->n_listen || a->reuse_port != b->reuse_port)
		return false;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return false;
	return true;
}

static bool same_cidrs(const struct cidr *a, size_t na, const struct cidr *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

static bool same_blob(const struct config_blob *a, const struct config_blob *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
	       (a->data == NULL) == (b->data == NULL);
}

/* What a pooled TLS connection or a cached TLS session was made under:
 * the trust (ca_file's bytes), the client certificate and key (bytes),
 * the verification settings and the schemes. */
static bool same_tls(const struct fetchd_config *a, const struct fetchd_config *b)
{
	return same_blob(&a->ca_pem, &b->ca_pem) &&
	       same_blob(&a->client_cert_pem, &b->client_cert_pem) &&
	       same_blob(&a->client_key_pem, &b->client_key_pem) &&
	       a->verify_tls == b->verify_tls && a->allow_insecure == b->allow_insecure &&
	       a->schemes == b->schemes;
}

static bool same_pools(const struct fetchd_config *a, const struct fetchd_config *b)
{
	if (a->n_pools != b->n_pools)
		return false;
	for (size_t i = 0; i < a->n_pools; i++)
		if (strcmp(a->pools[i].name, b->pools[i].name) != 0)
			return false;
	return true;
}

int server_reload(struct server *srv, struct fetchd_config *cfg)
{
	const struct fetchd_config *old = srv->cfg;
	char *token = NULL;
	struct snapshot *snap;

	if (!same_pools(old, cfg)) {
		log_error(
			"reload rejected: adding, removing or renaming [pool.NAME] sections needs "
			"a restart; keeping the running configuration");
		goto bad;
	}
	/* the token file is read here, on the loop, as the config file was */
	if (cfg->auth_token_file != NULL &&
	    (token = auth_load_token(cfg->auth_token_file)) == NULL) {
		log_error("reload rejected: keeping the running configuration");
		goto bad;
	}
	snap = snapshot_new(cfg, srv->listen.self, srv->listen.n_self, srv->snap);
	if (snap == NULL)
		goto bad;
	if (!same_listen(old, cfg))
		log_warn("reload: listen and reuse_port changes need a restart; still listening "
			 "as before");
	if ((old->threads == 0) != (cfg->threads == 0)) {
		log_warn("reload: switching between inline mode (threads = 0) and a pool needs "
			 "a restart; keeping %u threads",
			 old->threads);
		cfg->threads = old->threads;
	}
	if (cfg->min_threads > cfg->threads)
		cfg->min_threads = cfg->threads;
	for (size_t i = 0; i < srv->n_pools; i++) {
		struct executor_params params;

		pool_params(cfg, i, &params);
		if (executor_reconfigure(srv->pools[i], &params) != 0)
			log_warn("reload: could not resize pool %s",
				 i == 0 ? "default" : cfg->pools[i - 1].name);
	}
	apply_http_limits(srv, cfg);
	budget_set_limit(doc_account_budget(srv->docs), cfg->max_pending_bytes);
	log_set_level(cfg->log_level);
	/* connections opened under the old rules are dropped before reuse;
	 * with the TLS rules, the cached TLS sessions too */
	if (old->deny_private != cfg->deny_private ||
	    !same_cidrs(old->allow, old->n_allow, cfg->allow, cfg->n_allow) ||
	    !same_cidrs(old->deny, old->n_deny, cfg->deny, cfg->n_deny) || !same_tls(old, cfg))
		fetch_drop_connections();
	auth_free_token(srv->auth_token);
	srv->auth_token = token;
	snapshot_release(srv->snap);
	srv->snap = snap;
	srv->cfg = cfg;
	log_info("reloaded: %u threads, queue limit %u", cfg->threads, cfg->queue_limit);
	return 0;
bad:
	auth_free_token(token);
	config_free(cfg);
	return -1;
}

void server_load_summary(struct server *srv, char *buf, unsigned long len)
{
	unsigned busy = 0, threads = 0, queued = 0;

	for (size_t i = 0; i < srv->n_pools; i++) {
		struct executor_stats st;

		executor_get_stats(srv->pools[i], &st);
		busy += st.busy;
		threads += st.threads;
		queued += st.queued;
	}
	snprintf(buf, len, "busy %u/%u, queued %u", busy, threads, queued);
}

void server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	/* the workers finish their current task; their completions still
	 * reach the pendings, which are then answered */
	for (size_t i = 0; i < srv->n_pools; i++)
		executor_free(srv->pools[i]);
	pending_free_all(srv);
	if (srv->drain_timer)
		event_free(srv->drain_timer);
	if (srv->lame_duck_timer)
		event_free(srv->lame_duck_timer);
	if (srv->drain_check)
		event_free(srv->drain_check);
	event_free(srv->watch_timer);
	/* evhttp_free frees the bound listeners, then closes the connections */
	connections_set_listeners(srv->conns, NULL, 0);
	evhttp_free(srv->http);
	connections_free(srv->conns);
	listen_set_free(&srv->listen);
	auth_free_token(srv->auth_token);
	snapshot_release(srv->snap);
	/* libevent may still hold documents: they free the account */
	doc_account_release(srv->docs);
	free(srv);
}
