/* The HTTP front on the loop thread: parse, validate, hand fetches to the
 * executor, and write the finished documents the workers built. Nothing
 * here blocks: no curl call, no DNS lookup, no large JSON encode. */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "activation.h"
#include "budget.h"
#include "config.h"
#include "connections.h"
#include "errors.h"
#include "executor.h"
#include "fetch.h"
#include "http_status.h"
#include "log.h"
#include "metrics.h"
#include "netguard.h"
#include "request.h"
#include "seams.h"
#include "url.h"

#define MAX_HEADERS_SIZE (64 * 1024)

/* A request still unanswered after this long starts watching its client's
 * socket for a close (EV_CLOSED). Most fetches finish sooner and never pay
 * for the watch (an event and its epoll changes); a client that goes away
 * is still noticed within this much of its going. */
#define WATCH_CLIENT_AFTER_NS (20 * UINT64_C(1000000))

struct pending;

/* One configuration with the rules built from it. Jobs hold a reference,
 * so a reload never frees what a worker still reads. Counted on the loop
 * thread only. */
struct snapshot {
	struct fetchd_config *cfg;
	struct netguard_rules rules;
	struct sockaddr_storage *self; /* owned; rules.self */
	unsigned refs;
};

/* One fetch on its way through the pool. */
struct job {
	struct executor_task task; /* first: the executor hands this back */
	struct fetch_task ft;
	struct fetch_request *req;
	struct pending *p;
	struct snapshot *snap;
	struct executor *ex; /* the pool it was submitted to */
	size_t pool;	     /* its index in server.pools */
	size_t index; /* in p's results */
	size_t request_charge; /* its body and URL, charged to the budget */
	struct event *deadline_ev;
	bool finished;
};

/* One client request waiting for its answer: a single fetch, or a batch. */
struct pending {
	struct server *srv;
	struct evhttp_request *req;
	evutil_socket_t fd;	/* the client's socket, -1 if unknown */
	struct event *close_ev; /* EV_CLOSED on it, once the request is not new */
	TAILQ_ENTRY(pending) unwatched; /* while in server.unwatched */
	bool in_unwatched;
	bool gone;		/* the client went away: nobody to answer */
	bool batch;
	size_t n_items, n_left;
	struct item {
		char *doc; /* the finished document, its len charged to the budget */
		size_t len;
		int status;
		enum fetchd_err err;
		struct job *job; /* while its fetch is queued or running */
	} *items;
	uint64_t start_ns;
	char method[8];
	char id[65];	/* X-Request-Id: the client's, or ours */
	char host[128]; /* the target host of a single fetch, for the log */
	double queue_ms; /* the longest queue wait of its fetches */
	struct pending *prev, *next;
};

struct server {
	struct event_base *base;
	struct snapshot *snap; /* the running configuration */
	const struct fetchd_config *cfg; /* = snap->cfg */
	struct evhttp *http;
	struct connections *conns; /* max_connections, request_timeout */
	/* pools[0] is [pool], then the [pool.NAME]s in config order */
	struct executor *pools[1 + CONFIG_MAX_POOLS];
	size_t n_pools;
	struct sockaddr_storage *self; /* the listen addresses, as bound */
	size_t n_self;
	struct evconnlistener **listeners;
	struct evhttp_bound_socket **bound;
	size_t n_bound;
	struct pending *pendings; /* every client request not yet answered */
	/* pendings not yet watching their client, oldest first */
	TAILQ_HEAD(, pending) unwatched;
	struct event *watch_timer;
	bool draining;
	void (*drained)(void *);
	void *drained_arg;
	struct event *drain_timer;
	struct event *drain_check;
	uint64_t started_ns;
	char *auth_token; /* NULL: no authentication */
	/* the memory budget, and the documents handed to libevent */
	struct doc_account *docs;
	struct metrics metrics;
	uint64_t next_request_id;
	unsigned pid; /* getpid() is a system call: once, for request ids */
};

static void pending_maybe_drained(struct server *srv);

/* ---- replies ---- */

static void free_doc(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* The memory budget (max_pending_bytes, src/budget.h) and the fetch
 * documents libevent holds for writing, which a drain waits for. libevent
 * may free the last of them after the server (its bufferevents are
 * finalized in event_base_free), so the account outlives the server until
 * the last one is gone. Loop thread only, but for the budget's own
 * atomics, which workers charge. */
struct doc_account {
	struct server *srv; /* NULL once the server is freed */
	struct budget *budget;
	uint64_t bytes;
	uint64_t docs;
	uint64_t written_bytes;
};

static void doc_account_free(struct doc_account *acc)
{
	budget_free(acc->budget);
	free(acc);
}

/* A document written (or dropped with its connection): its bytes leave
 * the budget only now that the socket has taken them. */
static void free_counted_doc(const void *data, size_t len, void *arg)
{
	struct doc_account *acc = arg;

	free((void *)data);
	budget_release(acc->budget, len);
	acc->bytes -= len;
	acc->docs--;
	acc->written_bytes += len;
	if (acc->srv != NULL)
		pending_maybe_drained(acc->srv);
	else if (acc->docs == 0)
		doc_account_free(acc);
}

/* The reason phrase of fetchd's own answers. */
static const char *status_reason(int status)
{
	const char *phrase = http_reason_phrase(status);

	return *phrase ? phrase : "Error";
}

/* Send doc (malloc'd, taken over) with status. With srv, the document is
 * one charged to the budget, and stays so until libevent has written it. */
static void reply_send(struct server *srv, struct evhttp_request *req, int status, char *doc,
		       size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	int rc = -1;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json; charset=utf-8");
	if (buf != NULL)
		rc = srv ? evbuffer_add_reference(buf, doc, len, free_counted_doc, srv->docs)
			 : evbuffer_add_reference(buf, doc, len, free_doc, NULL);
	if (rc == 0 && srv != NULL) {
		srv->docs->bytes += len;
		srv->docs->docs++;
	}
	if (rc != 0) {
		free(doc);
		if (srv != NULL)
			budget_release(srv->docs->budget, len);
	}
	seams_send_reply_now(req, status, status_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

static void reply_doc(struct evhttp_request *req, int status, char *doc, size_t len)
{
	reply_send(NULL, req, status, doc, len);
}

static void reply_error(struct evhttp_request *req, enum fetchd_err err, const char *message)
{
	size_t len;

	char *doc = err_document(err, message, NULL, &len);

	if (err == ERR_OVERLOADED)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
	reply_doc(req, err_http_status(err), doc, len);
}

static void reply_json(struct evhttp_request *req, int status, json_t *obj)
{
	char *doc = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));

	json_decref(obj);
	if (doc == NULL) {
		reply_error(req, ERR_UPSTREAM_ERROR, "out of memory");
		return;
	}
	reply_doc(req, status, doc, strlen(doc));
}

/* One line per client request. Only the target host is logged: never a
 * URL (it may carry userinfo or tokens in its query), a header or a body. */
static void access_log(struct pending *p, int status, enum fetchd_err err, size_t bytes)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(p->req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (!p->srv->cfg->access_log)
		return;
	log_info("access id=%s method=%s path=%.64s host=%s items=%zu status=%d error=%s "
		 "bytes=%zu queue_ms=%.1f total_ms=%.1f%s",
		 p->id, p->method, path ? path : "-", p->host[0] ? p->host : "-", p->n_items, status,
		 err == ERR_NONE ? "-" : err_code_name(err), bytes, p->queue_ms,
		 (double)(clock_now_ns() - p->start_ns) / 1e6,
		 p->gone ? " client=gone" : "");
}

/* The client's X-Request-Id when it is a sane token, else a new one. */
static void request_id(struct server *srv, struct evhttp_request *req, char *id, size_t len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	size_t n = h ? strlen(h) : 0;

	if (n > 0 && n < len && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789-_.:") == n) {
		memcpy(id, h, n + 1);
		return;
	}
	snprintf(id, len, "%08x%08llx", srv->pid ^ (unsigned)srv->started_ns,
		 (unsigned long long)++srv->next_request_id);
}

/* ---- pending client requests ---- */

/* Stop watching (or waiting to watch) p's client for a close. */
static void pending_unwatch(struct pending *p)
{
	if (p->in_unwatched) {
		TAILQ_REMOVE(&p->srv->unwatched, p, unwatched);
		p->in_unwatched = false;
	}
	if (p->close_ev != NULL) {
		event_free(p->close_ev);
		p->close_ev = NULL;
	}
}

static void pending_free(struct pending *p)
{
	struct server *srv = p->srv;

	if (p->prev)
		p->prev->next = p->next;
	else
		srv->pendings = p->next;
	if (p->next)
		p->next->prev = p->prev;
	pending_unwatch(p);
	for (size_t i = 0; i < p->n_items; i++) {
		if (p->items[i].doc != NULL)
			budget_release(srv->docs->budget, p->items[i].len);
		free(p->items[i].doc);
	}
	free(p->items);
	free(p);
	pending_maybe_drained(srv);
}

/* Every item has its document: write the answer (or, when the client is
 * gone, let libevent fail the write and free the connection). */
static void pending_finish(struct pending *p)
{
	/* the watch goes before the reply, which may close the socket */
	pending_unwatch(p);
	evhttp_add_header(evhttp_request_get_output_headers(p->req), "X-Request-Id", p->id);
	if (!p->batch) {
		struct item *it = &p->items[0];

		access_log(p, it->status, it->err, it->len);
		if (it->err == ERR_OVERLOADED)
			evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After",
					  "1");
		reply_send(p->srv, p->req, it->status, it->doc, it->len);
		it->doc = NULL;
	} else {
		/* {"results":[doc,doc,...]} by reference: the documents were
		 * serialized on the workers and are not copied here */
		struct evbuffer *buf = evbuffer_new();
		size_t total = 0;

		evbuffer_add(buf, "{\"results\":[", 12);
		for (size_t i = 0; i < p->n_items; i++) {
			if (i > 0)
				evbuffer_add(buf, ",", 1);
			struct item *it = &p->items[i];

			if (evbuffer_add_reference(buf, it->doc, it->len, free_counted_doc,
						   p->srv->docs) == 0) {
				p->srv->docs->bytes += it->len;
				p->srv->docs->docs++;
			}
			else {
				free(it->doc);
				budget_release(p->srv->docs->budget, it->len);
			}
			total += it->len;
			it->doc = NULL;
		}
		evbuffer_add(buf, "]}", 2);
		access_log(p, 200, ERR_NONE, total);
		evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type",
				  "application/json; charset=utf-8");
		seams_send_reply_now(p->req, 200, "OK", buf);
		evbuffer_free(buf);
	}
	pending_free(p);
}

static void pending_item_done(struct pending *p, size_t i, int status, enum fetchd_err err,
			      char *doc, size_t len)
{
	p->items[i] = (struct item){.doc = doc, .len = len, .status = status, .err = err};
	p->srv->metrics.requests[err]++;
	if (--p->n_left == 0)
		pending_finish(p);
}

static void pending_item_error(struct pending *p, size_t i, enum fetchd_err err,
			       const char *message)
{
	size_t len;
	char *doc = err_document(err, message, NULL, &len);

	/* small, and charged even past the limit: it may say "overloaded" */
	budget_force(p->srv->docs->budget, len);
	pending_item_done(p, i, err_http_status(err), err, doc, len);
}

/* ---- jobs ---- */

/* Build snap's self list from the listen addresses: fetchd's own
 * address:port is always denied, and behind a wildcard listen that is
 * every address of the host's interfaces (netguard_self_addrs), so they are
 * read again on every reload. getifaddrs(3) runs here on the loop thread:
 * it is one netlink dump the kernel answers from memory, without waiting on
 * the network or a disk (34 us for 9 entries, measured on the dev box), and it
 * runs only at start-up and reload, which read the config file on the loop
 * anyway. When it fails, old's list is kept, or without old (at
 * start-up) only the listen addresses count. Returns 0, or -1 when out of
 * memory. */
static int snapshot_set_self(struct snapshot *snap, const struct server *srv,
			     const struct snapshot *old)
{
	struct ifaddrs *ifs = NULL;
	struct sockaddr_storage *self = NULL;
	size_t n_self = 0;
	bool keep = false;
	int rc = -1;

	if (srv->n_self > 0 && getifaddrs(&ifs) != 0) {
		ifs = NULL;
		keep = old != NULL && old->rules.n_self > 0;
		log_warn("cannot list the network interfaces (%s); %s", strerror(errno),
			 keep ? "fetchd's own addresses stay as they were"
			      : "only the listen addresses count as fetchd's own");
	}
	if (keep) {
		self = calloc(old->rules.n_self, sizeof(*self));
		if (self == NULL)
			goto bad;
		memcpy(self, old->rules.self, old->rules.n_self * sizeof(*self));
		n_self = old->rules.n_self;
	} else if (netguard_self_addrs(srv->self, srv->n_self, ifs, &self, &n_self) != 0) {
		goto bad;
	}
	free(snap->self);
	snap->self = self;
	snap->rules.self = self;
	snap->rules.n_self = n_self;
	rc = 0;
bad:
	if (ifs != NULL)
		freeifaddrs(ifs);
	return rc;
}

static struct snapshot *snapshot_new(struct server *srv, struct fetchd_config *cfg)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (snap == NULL)
		return NULL;
	snap->cfg = cfg;
	snap->refs = 1;
	snap->rules.deny_private = cfg->deny_private;
	snap->rules.allow = cfg->allow;
	snap->rules.n_allow = cfg->n_allow;
	snap->rules.deny = cfg->deny;
	snap->rules.n_deny = cfg->n_deny;
	/* fetchd's own addresses are always denied: no fetch loops. Before
	 * server_start has bound, the list is empty. */
	if (snapshot_set_self(snap, srv, srv->snap) != 0) {
		free(snap);
		return NULL;
	}
	return snap;
}

static void snapshot_release(struct snapshot *snap)
{
	if (snap != NULL && --snap->refs == 0) {
		config_free(snap->cfg);
		free(snap->self);
		free(snap);
	}
}

static void job_free(struct job *j)
{
	snapshot_release(j->snap);
	if (j->deadline_ev)
		event_free(j->deadline_ev);
	request_free(j->req);
	free(j->ft.doc);
	/* the request, and a document nobody took */
	budget_hold_release(&j->ft.hold, j->ft.hold.held);
	budget_release(j->ft.hold.budget, j->request_charge);
	free(j->ft.via);
	free(j);
}

/* Worker side: the blocking fetch. */
static void job_run(struct executor_task *t, void *worker_ctx, unsigned worker_id)
{
	struct job *j = (struct job *)t;

	(void)worker_id;
	j->ft.queued_ns = t->started_ns - t->submitted_ns;
	if (worker_ctx == NULL) { /* its curl handle could not be made */
		j->ft.err = ERR_UPSTREAM_ERROR;
		j->ft.http_status = err_http_status(ERR_UPSTREAM_ERROR);
		j->ft.doc = err_document(ERR_UPSTREAM_ERROR, "this worker has no curl handle",
					 NULL, &j->ft.doc_len);
		budget_hold_force(&j->ft.hold, j->ft.doc_len);
		return;
	}
	fetch_run(worker_ctx, &j->ft);
}

/* Loop side: the document is ready. */
static void job_done(struct executor_task *t)
{
	struct job *j = (struct job *)t;
	struct pending *p = j->p;
	size_t i = j->index;
	char *doc = j->ft.doc;

	/* the document and its charge pass to the item */
	assert(j->ft.hold.held == j->ft.doc_len);
	j->ft.doc = NULL;
	j->ft.hold.held = 0;
	struct metrics *m = &p->srv->metrics;
	if (j->ft.err != ERR_NONE) {
		m->fetch_failed++;
		m->pool_failed[j->pool]++;
	}
	m->upstream_bytes += j->ft.bytes_in;
	double waited = (double)(t->started_ns - t->submitted_ns) / 1e9;
	metrics_observe(&m->queue_wait, waited);
	if (waited * 1e3 > p->queue_ms)
		p->queue_ms = waited * 1e3;
	metrics_observe(&m->fetch_duration, (double)(clock_now_ns() - t->started_ns) / 1e9);
	if (j->ft.err == ERR_CLIENT_CLOSED && !p->gone) {
		/* aborted by the drain's timeout, not for its client */
		free(doc);
		budget_release(p->srv->docs->budget, j->ft.doc_len);
		job_free(j);
		pending_item_error(p, i, ERR_SHUTTING_DOWN,
				   "fetchd shut down before this fetch finished");
		return;
	}
	pending_item_done(p, i, j->ft.http_status, j->ft.err, doc, j->ft.doc_len);
	job_free(j);
}

/* The deadline passed. A task still queued is answered 504 now and never
 * sent upstream; a running one has the same deadline inside curl. */
static void job_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct pending *p = j->p;
	size_t i = j->index;

	(void)fd;
	(void)what;
	if (executor_cancel(j->ex, &j->task) != 0)
		return;
	job_free(j);
	pending_item_error(p, i, ERR_UPSTREAM_TIMEOUT,
			   "the deadline passed while the fetch was queued; it was never sent");
}

/* The client closed its connection: drop what is queued, abort what runs. */
static void pending_client_closed(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	p->gone = true;
	for (size_t i = 0; i < p->n_items; i++) {
		struct job *j = p->items[i].job;

		if (j == NULL)
			continue;
		p->srv->metrics.client_cancelled++;
		if (executor_cancel(j->ex, &j->task) == 0) {
			size_t left = p->n_left;

			job_free(j);
			pending_item_error(p, i, ERR_CLIENT_CLOSED, "the client went away");
			if (left == 1)
				return; /* that was the last item: p is freed */
		} else {
			/* a running fetch aborted for its client counts as a
			 * cancellation of its pool too */
			p->srv->metrics.pool_aborted[j->pool]++;
			atomic_store(&j->ft.cancel, true);
		}
	}
}

/* Requests old enough start watching their clients' sockets. */
static void watch_clients(evutil_socket_t unused, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t now = clock_now_ns();
	struct pending *p;

	(void)unused;
	(void)what;
	while ((p = TAILQ_FIRST(&srv->unwatched)) != NULL) {
		if (now - p->start_ns < WATCH_CLIENT_AFTER_NS) {
			uint64_t wait = WATCH_CLIENT_AFTER_NS - (now - p->start_ns);
			struct timeval tv = {0, (suseconds_t)(wait / 1000)};

			evtimer_add(srv->watch_timer, &tv);
			return;
		}
		TAILQ_REMOVE(&srv->unwatched, p, unwatched);
		p->in_unwatched = false;
		/* without the event (out of memory), a gone client is only
		 * noticed when its answer cannot be written */
		p->close_ev = event_new(srv->base, p->fd, EV_CLOSED, pending_client_closed, p);
		if (p->close_ev != NULL)
			event_add(p->close_ev, NULL);
	}
}

static struct pending *pending_new(struct server *srv, struct evhttp_request *req, size_t n,
				   bool batch)
{
	struct pending *p = calloc(1, sizeof(*p));
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	evutil_socket_t fd = -1;
	const char *m;

	if (p == NULL)
		return NULL;
	p->srv = srv;
	p->req = req;
	p->batch = batch;
	p->n_items = p->n_left = n;
	p->start_ns = clock_now_ns();
	p->items = calloc(n ? n : 1, sizeof(*p->items));
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: m = "GET"; break;
	case EVHTTP_REQ_POST: m = "POST"; break;
	default: m = "OTHER"; break;
	}
	snprintf(p->method, sizeof(p->method), "%s", m);
	request_id(srv, req, p->id, sizeof(p->id));
	if (conn != NULL)
		fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
	p->fd = fd;
	if (p->items == NULL) {
		free(p);
		return NULL;
	}
	if (fd >= 0) {
		if (TAILQ_EMPTY(&srv->unwatched)) {
			struct timeval tv = {0, (suseconds_t)(WATCH_CLIENT_AFTER_NS / 1000)};

			evtimer_add(srv->watch_timer, &tv);
		}
		TAILQ_INSERT_TAIL(&srv->unwatched, p, unwatched);
		p->in_unwatched = true;
	}
	p->next = srv->pendings;
	if (p->next)
		p->next->prev = p;
	srv->pendings = p;
	return p;
}

/* The host of url into buf ("" when it has none), for the log and the
 * pool choice. */
static void url_host(const char *url, char *buf, size_t len)
{
	char *host = url_get(url, CURLUPART_HOST, 0);

	snprintf(buf, len, "%s", host ? host : "");
	free(host);
}

/* The pool a fetch runs in: the one it names, else the first named pool
 * whose hosts match its URL's host, else the default pool. */
static size_t pool_for(struct server *srv, const struct fetch_request *req)
{
	const struct fetchd_config *cfg = srv->cfg;
	char host[256];

	if (req->pool != NULL) {
		for (size_t i = 0; i < cfg->n_pools; i++)
			if (strcmp(cfg->pools[i].name, req->pool) == 0)
				return i + 1;
		return 0;
	}
	if (cfg->n_pools == 0)
		return 0;
	url_host(req->url, host, sizeof(host));
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (cfg->pools[i].n_hosts > 0 &&
		    netguard_host_allowed(cfg->pools[i].hosts, cfg->pools[i].n_hosts, host))
			return i + 1;
	return 0;
}

/* The Via of the client's request, its field lines joined by ", " (RFC
 * 9110 section 5.3), to pass on upstream before fetchd's own entry; *out
 * is NULL when there is none. A line with CR or LF (libevent keeps none)
 * is left out rather than sent. Returns 0, or -1 when out of memory. */
static int client_via(struct evhttp_request *req, char **out)
{
	struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	size_t len = 0, off = 0;
	char *via;

	*out = NULL;
	TAILQ_FOREACH(kv, headers, next)
		if (strcasecmp(kv->key, "Via") == 0 && strpbrk(kv->value, "\r\n") == NULL)
			len += strlen(kv->value) + 2;
	if (len == 0)
		return 0;
	via = malloc(len);
	if (via == NULL)
		return -1;
	TAILQ_FOREACH(kv, headers, next)
	{
		size_t n = strlen(kv->value);

		if (strcasecmp(kv->key, "Via") != 0 || strpbrk(kv->value, "\r\n") != NULL)
			continue;
		if (off > 0) {
			memcpy(via + off, ", ", 2);
			off += 2;
		}
		memcpy(via + off, kv->value, n);
		off += n;
	}
	via[off] = '\0';
	*out = via;
	return 0;
}

/* Validate item i and queue its fetch, or answer it in place. */
static void pending_submit(struct pending *p, size_t i, const json_t *obj)
{
	struct server *srv = p->srv;
	struct request_error rerr;
	struct job *j;
	struct timeval tv;

	if (srv->draining) {
		pending_item_error(p, i, ERR_SHUTTING_DOWN, "fetchd is shutting down");
		return;
	}
	if (budget_used(srv->docs->budget) >= budget_limit(srv->docs->budget)) {
		pending_item_error(p, i, ERR_OVERLOADED,
				   "fetchd's memory budget ([server] max_pending_bytes) is full; "
				   "retry later");
		return;
	}
	struct fetch_request *req = request_from_json(obj, srv->cfg, &rerr);
	if (req == NULL) {
		pending_item_error(p, i, rerr.code, rerr.message);
		return;
	}
	if (!p->batch)
		snprintf(p->host, sizeof(p->host), "%s", req->host);
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		request_free(req);
		pending_item_error(p, i, ERR_OVERLOADED, "out of memory");
		return;
	}
	j->req = req;
	j->p = p;
	j->index = i;
	j->ft.hold.budget = srv->docs->budget;
	j->request_charge = req->body_len + strlen(req->url) + 1;
	if (!budget_charge(srv->docs->budget, j->request_charge)) {
		j->request_charge = 0;
		request_free(req);
		free(j);
		pending_item_error(p, i, ERR_OVERLOADED,
				   "fetchd's memory budget ([server] max_pending_bytes) is full; "
				   "retry later");
		return;
	}
	j->task.run = job_run;
	j->task.done = job_done;
	j->ft.req = req;
	j->snap = srv->snap;
	j->snap->refs++;
	j->ft.cfg = j->snap->cfg;
	j->ft.rules = &j->snap->rules;
	if (client_via(p->req, &j->ft.via) != 0) {
		job_free(j);
		pending_item_error(p, i, ERR_OVERLOADED, "out of memory");
		return;
	}
	j->ft.deadline_ns = clock_now_ns() + req->timeout_ms * 1000000ull;
	atomic_init(&j->ft.cancel, false);
	j->deadline_ev = evtimer_new(srv->base, job_deadline, j);
	if (j->deadline_ev == NULL) {
		job_free(j);
		pending_item_error(p, i, ERR_OVERLOADED, "out of memory");
		return;
	}
	tv.tv_sec = (time_t)(req->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(req->timeout_ms % 1000) * 1000;
	evtimer_add(j->deadline_ev, &tv);
	p->items[i].job = j;
	j->pool = pool_for(srv, req);
	j->ex = srv->pools[j->pool];
	if (executor_submit(j->ex, &j->task) != 0) {
		p->items[i].job = NULL;
		job_free(j);
		pending_item_error(p, i, ERR_OVERLOADED,
				   "the worker pool and its queue are full; retry later");
	}
}

/* ---- routes ---- */

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

static void handle_fetch_object(struct server *srv, struct evhttp_request *req, json_t *obj)
{
	struct pending *p = pending_new(srv, req, 1, false);

	if (p == NULL) {
		reply_error(req, ERR_OVERLOADED, "out of memory");
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

/* GET /v1/fetch?url=...: the query's parameters as a fetch object, as
 * strict as the JSON form. The query is split here rather than by
 * evhttp_parse_query_str, whose values are C strings: "url=...%00" and
 * "timeout=1%00" were cut at the NUL. Keys are taken as written and values
 * percent-decoded with '+' as a space, as evhttp does; a value that decodes
 * to a NUL byte is refused, and timeout must be a decimal number (the JSON
 * form then refuses one that is not positive). */
static json_t *query_to_object(const char *query, char *msg, size_t msglen)
{
	json_t *obj = json_object();
	char *raw = NULL, *value = NULL;
	const char *arg, *end, *eq;

	if (obj == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto bad;
	}
	if (query == NULL) {
		snprintf(msg, msglen, "the query string is malformed");
		goto bad;
	}
	for (arg = query; *arg != '\0'; arg = *end == '&' ? end + 1 : end) {
		size_t key_len, value_len = 0;
		int shown;
		json_t *v;

		end = arg + strcspn(arg, "&");
		eq = memchr(arg, '=', (size_t)(end - arg));
		if (eq == NULL || eq == arg) {
			snprintf(msg, msglen, "the query string is malformed");
			goto bad;
		}
		key_len = (size_t)(eq - arg);
		shown = key_len < 64 ? (int)key_len : 64;
		raw = strndup(eq + 1, (size_t)(end - eq - 1));
		value = raw != NULL ? evhttp_uridecode(raw, 1, &value_len) : NULL;
		if (value == NULL) {
			snprintf(msg, msglen, "out of memory");
			goto bad;
		}
		if (json_object_getn(obj, arg, key_len) != NULL) {
			snprintf(msg, msglen, "query parameter '%.*s' is given twice", shown, arg);
			goto bad;
		}
		if (memchr(value, '\0', value_len) != NULL) {
			snprintf(msg, msglen, "query parameter '%.*s' must not contain a NUL byte",
				 shown, arg);
			goto bad;
		}
		if (query_key_is(arg, key_len, "timeout")) {
			bool decimal = query_is_decimal(value);
			double d = 0.0;

			errno = 0;
			if (decimal)
				d = strtod(value, NULL); /* ERANGE: 1e999, 1e-999 */
			if (!decimal || errno != 0) {
				snprintf(msg, msglen,
					 "query parameter 'timeout' must be a decimal number of "
					 "seconds (such as 10 or 0.5)");
				goto bad;
			}
			v = json_real(d);
		} else if (query_key_is(arg, key_len, "url") ||
			   query_key_is(arg, key_len, "method") ||
			   query_key_is(arg, key_len, "body_mode")) {
			v = json_stringn(value, value_len);
			if (v == NULL) {
				snprintf(msg, msglen, "query parameter '%.*s' is not valid UTF-8",
					 shown, arg);
				goto bad;
			}
		} else {
			snprintf(msg, msglen,
				 "unknown query parameter '%.*s' (GET /v1/fetch takes url, method, "
				 "timeout, body_mode)",
				 shown, arg);
			goto bad;
		}
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
static bool refuse_loop(struct evhttp_request *req)
{
	struct evkeyval *kv;
	char msg[160];

	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		if (strcasecmp(kv->key, "Via") != 0 || !fetch_via_names_us(kv->value))
			continue;
		snprintf(msg, sizeof(msg),
			 "this request came through this fetchd already (its Via names %s): a "
			 "fetch loop",
			 fetch_instance());
		reply_error(req, ERR_LOOP_DETECTED, msg);
		return true;
	}
	return false;
}

static void handle_fetch(struct server *srv, struct evhttp_request *req)
{
	struct request_error err;
	json_t *obj;

	if (refuse_loop(req))
		return;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

		obj = query_to_object(evhttp_uri_get_query(uri), err.message, sizeof(err.message));
		if (obj == NULL) {
			reply_error(req, ERR_INVALID_REQUEST, err.message);
			return;
		}
	} else {
		obj = read_body(req, &err);
		if (obj == NULL) {
			reply_error(req, err.code, err.message);
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

	if (refuse_loop(req)) {
		json_decref(obj);
		return;
	}
	if (obj == NULL) {
		reply_error(req, err.code, err.message);
		return;
	}
	if (!json_is_object(obj)) {
		reply_error(req, ERR_INVALID_REQUEST, "the batch must be a JSON object");
		goto out;
	}
	json_object_foreach(obj, key, value)
	{
		if (strcmp(key, "requests") != 0) {
			snprintf(msg, sizeof(msg), "unknown field '%.64s' (a batch has 'requests')",
				 key);
			reply_error(req, ERR_INVALID_REQUEST, msg);
			goto out;
		}
	}
	list = json_object_get(obj, "requests");
	if (!json_is_array(list)) {
		reply_error(req, ERR_INVALID_REQUEST, "field 'requests' must be an array");
		goto out;
	}
	if (json_array_size(list) > srv->cfg->max_batch) {
		snprintf(msg, sizeof(msg), "field 'requests' has %zu items; at most %u are allowed",
			 json_array_size(list), srv->cfg->max_batch);
		reply_error(req, ERR_INVALID_REQUEST, msg);
		goto out;
	}
	if (json_array_size(list) == 0) {
		reply_json(req, 200, json_pack("{s:[]}", "results"));
		goto out;
	}
	p = pending_new(srv, req, json_array_size(list), true);
	if (p == NULL) {
		reply_error(req, ERR_OVERLOADED, "out of memory");
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

static void handle_healthz(struct server *srv, struct evhttp_request *req)
{
	if (srv->draining)
		reply_json(req, 503, json_pack("{s:s}", "status", "draining"));
	else
		reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *latency_object(const struct histogram *h)
{
	return json_pack("{s:f, s:f, s:f}", "p50_ms", metrics_quantile(h, 0.50) * 1e3, "p90_ms",
			 metrics_quantile(h, 0.90) * 1e3, "p99_ms", metrics_quantile(h, 0.99) * 1e3);
}

static const char *pool_name(struct server *srv, size_t i)
{
	return i == 0 ? "default" : srv->cfg->pools[i - 1].name;
}

static void handle_stats(struct server *srv, struct evhttp_request *req)
{
	json_t *pools = json_object();

	for (size_t i = 0; pools != NULL && i < srv->n_pools; i++) {
		struct executor_stats st;

		executor_get_stats(srv->pools[i], &st);
		json_object_set_new(pools, pool_name(srv, i),
				    json_pack("{s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I}", "threads",
					      (int)st.threads, "busy", (int)st.busy, "queued",
					      (int)st.queued, "queue_limit", (int)st.queue_limit,
					      "completed", (json_int_t)st.completed, "failed",
					      (json_int_t)srv->metrics.pool_failed[i], "rejected",
					      (json_int_t)st.rejected, "cancelled",
					      (json_int_t)(st.cancelled +
							   srv->metrics.pool_aborted[i])));
	}
	struct connections_stats cs;

	connections_get_stats(srv->conns, &cs);
	reply_json(req, 200,
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
			     (json_int_t)budget_used(srv->docs->budget)));
}

static void handle_metrics(struct server *srv, struct evhttp_request *req)
{
	struct executor_stats st[1 + CONFIG_MAX_POOLS];
	const char *names[1 + CONFIG_MAX_POOLS];
	struct evbuffer *buf = evbuffer_new();
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
	srv->metrics.response_bytes = srv->docs->written_bytes;
	text = metrics_render(&srv->metrics, names, st, srv->n_pools,
			      budget_used(srv->docs->budget), &len);
	if (text == NULL || buf == NULL ||
	    evbuffer_add_reference(buf, text, len, free_doc, NULL) != 0) {
		free(text);
		if (buf != NULL)
			evbuffer_free(buf);
		reply_error(req, ERR_OVERLOADED, "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	seams_send_reply_now(req, 200, "OK", buf);
	evbuffer_free(buf);
}

struct route {
	const char *path;
	unsigned methods; /* EVHTTP_REQ_* bits */
	const char *allow;
	void (*handler)(struct server *, struct evhttp_request *);
};

static const struct route routes[] = {
	{"/v1/fetch", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST", handle_fetch},
	{"/v1/batch", EVHTTP_REQ_POST, "POST", handle_batch},
	{"/healthz", EVHTTP_REQ_GET, "GET", handle_healthz},
	{"/v1/stats", EVHTTP_REQ_GET, "GET", handle_stats},
	{"/metrics", EVHTTP_REQ_GET, "GET", handle_metrics},
};

/* Compare in constant time: the time taken says nothing about how much
 * of the token matched. */
static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return diff == 0;
}

static bool authorized(struct server *srv, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return token_equal(h, srv->auth_token);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char msg[256];

	if (path == NULL)
		path = "/";
	connections_request_read(srv->conns, req);
	/* /healthz stays open so load balancers need no token */
	if (srv->auth_token != NULL && strcmp(path, "/healthz") != 0 && !authorized(srv, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer");
		reply_error(req, ERR_UNAUTHORIZED,
			    "missing or wrong 'Authorization: Bearer' token");
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if (!(evhttp_request_get_command(req) & routes[i].methods)) {
			snprintf(msg, sizeof(msg), "%s takes %s", routes[i].path, routes[i].allow);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  routes[i].allow);
			reply_error(req, ERR_METHOD_NOT_ALLOWED, msg);
			return;
		}
		routes[i].handler(srv, req);
		return;
	}
	snprintf(msg, sizeof(msg), "no such path '%.128s'", path);
	reply_error(req, ERR_NOT_FOUND, msg);
}

/* ---- life cycle ---- */

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
	if ((srv->docs = calloc(1, sizeof(*srv->docs))) == NULL ||
	    (srv->docs->budget = budget_new(cfg->max_pending_bytes)) == NULL ||
	    (srv->snap = snapshot_new(srv, cfg)) == NULL ||
	    (srv->watch_timer = evtimer_new(base, watch_clients, srv)) == NULL ||
	    (srv->http = evhttp_new(base)) == NULL)
		goto bad;
	srv->docs->srv = srv;
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(srv->http, MAX_HEADERS_SIZE);
	srv->conns = connections_new(base, srv->http, cfg->max_connections,
				     cfg->request_timeout_ms);
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
	free(srv->snap);
	if (srv->docs != NULL)
		doc_account_free(srv->docs);
	free(srv);
	return NULL;
}

/* "host:port" or "[v6]:port" into a socket address. Start-up only (it
 * may resolve a name). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hlen;
	struct addrinfo hints, *res = NULL;
	int rc;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - spec);
	if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
		h = spec + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 || res == NULL) {
		log_error("listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* The bearer token: the file's first line, surrounding whitespace
 * trimmed. Read at start-up (a config file, not a loop-time read). */
static char *load_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n;

	if (f == NULL) {
		log_error("auth_token_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *start = buf, *end = buf + strlen(buf);
	while (*start == ' ' || *start == '\t')
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	char *token = *start ? strdup(start) : NULL;
	explicit_bzero(buf, sizeof(buf));
	if (token == NULL)
		log_error("auth_token_file %s: the token is empty", path);
	return token;
}

static void free_token(char *token)
{
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
}

/* Bind the config's listen address i. */
static struct evconnlistener *listen_on(struct server *srv, size_t i)
{
	const struct fetchd_config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	struct evconnlistener *l;

	if (parse_listen(cfg->listen[i], &ss, &len) != 0) {
		log_error("listen %s: not a valid address", cfg->listen[i]);
		return NULL;
	}
	if (cfg->reuse_port)
		flags |= LEV_OPT_REUSEABLE_PORT;
	l = evconnlistener_new_bind(srv->base, NULL, NULL, flags, 1024, (struct sockaddr *)&ss,
				    (int)len);
	if (l == NULL)
		log_error("listen %s: %s", cfg->listen[i], strerror(errno));
	return l;
}

/* Take over a listening TCP socket systemd passed (socket activation). */
static struct evconnlistener *listen_on_passed(struct server *srv, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0, listening = 0;
	socklen_t ilen = sizeof(int);
	struct evconnlistener *l;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) != 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		log_error("socket activation: descriptor %d is not a listening TCP socket", fd);
		return NULL;
	}
	if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0) {
		log_error("socket activation: descriptor %d: %s", fd, strerror(errno));
		return NULL;
	}
	/* backlog 0: already listening */
	l = evconnlistener_new(srv->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
			       0, fd);
	if (l == NULL)
		log_error("socket activation: descriptor %d: %s", fd, strerror(errno));
	return l;
}

int server_start(struct server *srv)
{
	const struct fetchd_config *cfg = srv->cfg;
	int passed = activation_listen_fds();
	size_t n = passed > 0 ? (size_t)passed : cfg->n_listen;

	if (passed < 0) {
		log_error("socket activation: LISTEN_PID/LISTEN_FDS are malformed");
		return -1;
	}
	if (passed > 0)
		log_info("socket activation: systemd passed %d socket%s; [server] listen is not "
			 "used",
			 passed, passed == 1 ? "" : "s");
	srv->listeners = calloc(n, sizeof(*srv->listeners));
	srv->bound = calloc(n, sizeof(*srv->bound));
	srv->self = calloc(n, sizeof(*srv->self));
	if (srv->listeners == NULL || srv->bound == NULL || srv->self == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		socklen_t len = sizeof(srv->self[i]);
		char name[128];

		srv->listeners[i] =
			passed > 0 ? listen_on_passed(srv, ACTIVATION_FD_START + (evutil_socket_t)i)
				   : listen_on(srv, i);
		if (srv->listeners[i] == NULL)
			return -1;
		srv->bound[i] = evhttp_bind_listener(srv->http, srv->listeners[i]);
		if (srv->bound[i] == NULL) {
			log_error("listen: cannot attach HTTP");
			return -1;
		}
		srv->n_bound++;
		getsockname(evconnlistener_get_fd(srv->listeners[i]),
			    (struct sockaddr *)&srv->self[i], &len);
		srv->n_self++;
		format_sockaddr(&srv->self[i], name, sizeof(name));
		log_info("listening on %s", name);
	}
	connections_set_listeners(srv->conns, srv->listeners, srv->n_bound);
	if (cfg->auth_token_file != NULL &&
	    (srv->auth_token = load_token(cfg->auth_token_file)) == NULL)
		return -1;
	if (snapshot_set_self(srv->snap, srv, NULL) != 0)
		return -1;
	srv->pools[0] = executor_new(srv->base, cfg->threads, cfg->queue_limit, worker_init,
				     worker_fini, NULL);
	if (srv->pools[0] == NULL) {
		log_error("cannot start the worker pool");
		return -1;
	}
	srv->n_pools = 1;
	log_info("pool default: %u threads, queue limit %u%s", cfg->threads, cfg->queue_limit,
		 cfg->threads == 0 ? " (inline mode: fetches block the loop)" : "");
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct config_pool *pc = &cfg->pools[i];

		srv->pools[i + 1] = executor_new(srv->base, pc->threads, pc->queue_limit,
						 worker_init, worker_fini, NULL);
		if (srv->pools[i + 1] == NULL) {
			log_error("cannot start pool %s", pc->name);
			return -1;
		}
		srv->n_pools++;
		log_info("pool %s: %u threads, queue limit %u, %zu host pattern%s", pc->name,
			 pc->threads, pc->queue_limit, pc->n_hosts, pc->n_hosts == 1 ? "" : "s");
	}
	return 0;
}

static void pending_maybe_drained(struct server *srv)
{
	/* every accepted request answered, and every answer written */
	if (srv->draining && srv->pendings == NULL && srv->docs->docs == 0 &&
	    srv->drained != NULL) {
		void (*cb)(void *) = srv->drained;

		srv->drained = NULL;
		cb(srv->drained_arg);
	}
}

/* Past shutdown_timeout: answer what is queued, abort what runs. */
static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_warn("shutdown_timeout passed: aborting the fetches still in flight");
	for (struct pending *p = srv->pendings, *next; p != NULL; p = next) {
		next = p->next;
		for (size_t i = 0; i < p->n_items; i++) {
			struct job *j = p->items[i].job;

			if (j == NULL)
				continue;
			if (executor_cancel(j->ex, &j->task) == 0) {
				size_t left = p->n_left;

				job_free(j);
				pending_item_error(p, i, ERR_SHUTTING_DOWN,
						   "fetchd shut down before this fetch ran");
				if (left == 1)
					break; /* p is freed */
			} else {
				atomic_store(&j->ft.cancel, true);
			}
		}
	}
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pending_maybe_drained(arg);
}

void server_drain(struct server *srv, void (*drained)(void *arg), void *arg)
{
	struct timeval tv = {.tv_sec = (time_t)(srv->cfg->shutdown_timeout_ms / 1000),
			     .tv_usec = (suseconds_t)(srv->cfg->shutdown_timeout_ms % 1000) *
					1000};
	struct timeval now = {0, 0};

	if (srv->draining)
		return;
	srv->draining = true;
	srv->drained = drained;
	srv->drained_arg = arg;
	connections_set_listeners(srv->conns, NULL, 0);
	for (size_t i = 0; i < srv->n_bound; i++)
		evhttp_del_accept_socket(srv->http, srv->bound[i]);
	srv->n_bound = 0;
	srv->drain_timer = evtimer_new(srv->base, drain_timeout, srv);
	if (srv->drain_timer != NULL)
		evtimer_add(srv->drain_timer, &tv);
	/* from the loop, not from inside the signal handler's caller */
	srv->drain_check = evtimer_new(srv->base, drain_check, srv);
	if (srv->drain_check != NULL)
		evtimer_add(srv->drain_check, &now);
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
		log_error("reload rejected: adding, removing or renaming [pool.NAME] sections needs "
			  "a restart; keeping the running configuration");
		config_free(cfg);
		return -1;
	}
	if (cfg->auth_token_file != NULL && (token = load_token(cfg->auth_token_file)) == NULL) {
		log_error("reload rejected: keeping the running configuration");
		config_free(cfg);
		return -1;
	}
	snap = snapshot_new(srv, cfg);
	if (snap == NULL) {
		free_token(token);
		config_free(cfg);
		return -1;
	}
	if (!same_listen(old, cfg))
		log_warn("reload: listen and reuse_port changes need a restart; still listening "
			 "as before");
	if ((old->threads == 0) != (cfg->threads == 0)) {
		log_warn("reload: switching between inline mode (threads = 0) and a pool needs "
			 "a restart; keeping %u threads",
			 old->threads);
		cfg->threads = old->threads;
	}
	if (executor_resize(srv->pools[0], cfg->threads, cfg->queue_limit) != 0)
		log_warn("reload: could not resize the default pool");
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (executor_resize(srv->pools[i + 1], cfg->pools[i].threads,
				    cfg->pools[i].queue_limit) != 0)
			log_warn("reload: could not resize pool %s", cfg->pools[i].name);
	apply_http_limits(srv, cfg);
	budget_set_limit(srv->docs->budget, cfg->max_pending_bytes);
	log_set_level(cfg->log_level);
	/* connections opened under the old rules are dropped before reuse */
	if (old->deny_private != cfg->deny_private ||
	    !same_cidrs(old->allow, old->n_allow, cfg->allow, cfg->n_allow) ||
	    !same_cidrs(old->deny, old->n_deny, cfg->deny, cfg->n_deny))
		fetch_drop_connections();
	free_token(srv->auth_token);
	srv->auth_token = token;
	snapshot_release(srv->snap);
	srv->snap = snap;
	srv->cfg = cfg;
	log_info("reloaded: %u threads, queue limit %u", cfg->threads, cfg->queue_limit);
	return 0;
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
	while (srv->pendings != NULL) {
		struct pending *p = srv->pendings;

		for (size_t i = 0; i < p->n_items; i++)
			if (p->items[i].job != NULL)
				job_free(p->items[i].job);
		pending_free(p);
	}
	if (srv->drain_timer)
		event_free(srv->drain_timer);
	if (srv->drain_check)
		event_free(srv->drain_check);
	event_free(srv->watch_timer);
	/* evhttp_free frees the bound listeners, then closes the connections */
	connections_set_listeners(srv->conns, NULL, 0);
	evhttp_free(srv->http);
	connections_free(srv->conns);
	free(srv->listeners);
	free(srv->bound);
	free(srv->self);
	free_token(srv->auth_token);
	snapshot_release(srv->snap);
	srv->docs->srv = NULL;
	if (srv->docs->docs == 0)
		doc_account_free(srv->docs);
	free(srv);
}
