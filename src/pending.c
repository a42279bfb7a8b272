/* The client requests in flight (see pending.h): items, jobs, their
 * deadlines, the watch on the client's socket, cancellation, and the
 * answer once every item has its document. Loop thread only, but for
 * job_run, which runs on a worker. */
#include "pending.h"

#include <assert.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "access.h"
#include "budget.h"
#include "clock.h"
#include "errors.h"
#include "executor.h"
#include "fetch.h"
#include "log.h"
#include "memory.h"
#include "netguard.h"
#include "reply.h"
#include "request.h"
#include "seams.h"
#include "server_state.h"
#include "snapshot.h"
#include "url.h"

/* A request still unanswered after this long starts watching its client's
 * socket for a close (EV_CLOSED). Most fetches finish sooner and never pay
 * for the watch (an event and its epoll changes); a client that goes away
 * is still noticed within this much of its going. */
#define WATCH_CLIENT_AFTER_NS (20 * UINT64_C(1000000))

/* One fetch on its way through a pool.
 *
 * Threads: the loop thread owns the job; a worker touches only ft, and
 * only between executor_submit and job_done. The loop fills ft's inputs
 * (req, cfg, rules, deadline_ns, via, hold.budget) before submitting; the
 * worker (job_run) writes its outputs (doc, doc_len, http_status, err,
 * bytes_in, queued_ns, hold) and the loop reads them in job_done, after the
 * executor's completion hand-off (src/executor.h). ft.cancel is the one
 * field both touch at once: an atomic the loop sets and the worker polls.
 * Every other field is the loop's alone. */
struct job {
	struct executor_task task; /* first: the executor hands this back */
	struct fetch_task ft;
	struct fetch_request *req;
	struct pending *p;
	struct snapshot *snap;
	struct executor *ex;   /* the pool it was submitted to */
	size_t pool;	       /* its index in server.pools */
	size_t index;	       /* in p's items */
	size_t request_charge; /* its body and URL, charged to the budget */
	struct event *deadline_ev;
	/* the backoff before a retry (src/retry.h): while it runs the job is
	 * neither queued nor running, and holds no document */
	struct event *retry_ev;
	bool backing_off;
	/* the host its current hop is admitted under (task.key points here),
	 * NULL when no per-host rule is on */
	char *host_key;
};

/* One client request waiting for its answer: a single fetch, or a batch.
 *
 * Threads: the loop thread's alone, every field; workers never see it (a
 * job reaches it only in job_done, on the loop). */
struct pending {
	struct server *srv;
	struct evhttp_request *req;
	evutil_socket_t fd;		/* the client's socket, -1 if unknown */
	struct event *close_ev;		/* EV_CLOSED on it, once the request is not new */
	TAILQ_ENTRY(pending) unwatched; /* while in server.unwatched */
	bool in_unwatched;
	bool gone; /* the client went away: nobody to answer */
	bool batch;
	size_t n_items, n_left;
	struct item {
		char *doc; /* the finished document, its len charged to the budget */
		size_t len;
		int status;
		enum fetchd_err err;
		struct job *job; /* while its fetch is queued or running */
	} * items;
	uint64_t start_ns;
	char id[65];	 /* X-Request-Id: the client's, or ours */
	char host[128];	 /* the target host of a single fetch, for the log */
	double queue_ms; /* the longest queue wait of its fetches */
	struct pending *prev, *next;
};

/* Why pending_cancel cancels. */
enum cancel_reason {
	CANCEL_CLIENT_GONE, /* 499 client_closed; counted as client cancellations */
	CANCEL_SHUTDOWN,    /* 503 shutting_down: shutdown_timeout passed */
};

/* One line per client request (access.h). */
static void access_log(struct pending *p, int status, enum fetchd_err err, size_t bytes)
{
	if (!p->srv->cfg->access_log)
		return;
	access_log_request(p->req, &(struct access_entry){
					   .id = p->id,
					   .host = p->host,
					   .items = p->n_items,
					   .status = status,
					   .err = err,
					   .bytes = bytes,
					   .queue_ms = p->queue_ms,
					   .total_ms = (double)(clock_now_ns() - p->start_ns) / 1e6,
					   .gone = p->gone,
				   });
}

void pending_request_id(struct server *srv, struct evhttp_request *req, char *id, size_t len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	size_t n = h ? strlen(h) : 0;

	if (n > 0 && n < len &&
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789-_.:") == n) {
		memcpy(id, h, n + 1);
		return;
	}
	snprintf(id, len, "%08x%08llx", srv->pid ^ (unsigned)srv->started_ns,
		 (unsigned long long)++srv->next_request_id);
}

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
			budget_release(doc_account_budget(srv->docs), p->items[i].len);
		free(p->items[i].doc);
	}
	free(p->items);
	free(p);
	server_check_drained(srv);
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
		reply_counted(p->srv->docs, p->req, it->status, it->doc, it->len);
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

			/* on failure it is freed, and its charge given back */
			doc_account_add(p->srv->docs, buf, it->doc, it->len);
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
	budget_force(doc_account_budget(p->srv->docs), len);
	pending_item_done(p, i, err_http_status(err), err, doc, len);
}

static void job_free(struct job *j)
{
	snapshot_release(j->snap);
	if (j->deadline_ev)
		event_free(j->deadline_ev);
	if (j->retry_ev)
		event_free(j->retry_ev);
	request_free(j->req);
	fetch_resume_free(j->ft.resume);
	free(j->host_key);
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
	j->ft.queued_ns = t->started_ns - t->submitted_ns; /* of this turn */
	j->ft.retry = RETRY_NO;				   /* fetch_run decides again */
	if (worker_ctx == NULL) {			   /* its curl handle could not be made */
		j->ft.err = ERR_UPSTREAM_ERROR;
		j->ft.http_status = err_http_status(ERR_UPSTREAM_ERROR);
		j->ft.doc = err_document(ERR_UPSTREAM_ERROR, "this worker has no curl handle", NULL,
					 &j->ft.doc_len);
		budget_hold_force(&j->ft.hold, j->ft.doc_len);
		return;
	}
	fetch_run(worker_ctx, &j->ft);
	memory_note_task(j->ft.bytes_in + j->ft.doc_len);
}

/* The host a fetch of req is first admitted under: its URL's host as a
 * key (url_host_key) when a per-host rule is on, else NULL. Returns -1 on
 * out of memory. */
static int job_first_host(const struct fetchd_config *cfg, const struct fetch_request *req,
			  char **host)
{
	*host = NULL;
	if (cfg->per_host_limit == 0 && cfg->per_host_interval_ms == 0)
		return 0;
	*host = url_host_key(req->host);
	return *host != NULL ? 0 : -1;
}

/* Admit the task under host (taken) and queue it. Returns what
 * executor_submit returns. */
static int job_admit(struct job *j, char *host)
{
	free(j->host_key);
	j->host_key = host;
	j->ft.admitted_host = host;
	j->task.key = host;
	return executor_submit(j->ex, &j->task);
}

/* The backoff is over: the next attempt goes to the back of its pool's
 * queue, with its deadline as it was (the deadline event still runs). */
static void job_retry(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct pending *p = j->p;
	size_t i = j->index;

	(void)fd;
	(void)what;
	j->backing_off = false;
	/* a retry starts again from the client's URL, so from its host */
	char *host = NULL;
	if (job_first_host(p->srv->cfg, j->req, &host) != 0) {
		p->items[i].job = NULL;
		job_free(j);
		pending_item_error(p, i, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	if (job_admit(j, host) != 0) {
		p->items[i].job = NULL;
		job_free(j);
		pending_item_error(
			p, i, ERR_OVERLOADED,
			"the worker pool and its queue were full for a retry; retry later");
	}
}

/* The attempt asked for a retry (ft.retry, decided by the policy on the
 * worker, which saw the response): drop its document, give back its
 * charge, and wait out the backoff on a loop timer, never on a worker.
 * Returns -1 when the timer cannot be made (the attempt's answer stands). */
static int job_backoff(struct job *j, char *doc)
{
	struct server *srv = j->p->srv;
	uint64_t ms = j->ft.retry_delay_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (j->retry_ev == NULL)
		j->retry_ev = evtimer_new(srv->base, job_retry, j);
	if (j->retry_ev == NULL || evtimer_add(j->retry_ev, &tv) != 0)
		return -1;
	free(doc);
	budget_release(doc_account_budget(srv->docs), j->ft.doc_len);
	j->ft.doc_len = 0;
	j->ft.hold.failed = j->ft.hold.never_fits = false;
	j->ft.err = ERR_NONE;
	j->ft.http_status = 0;
	j->ft.bytes_in = 0;
	j->backing_off = true;
	if (j->ft.retry_reason == RETRY_STATUS)
		srv->metrics.retries_status[j->ft.attempts[j->ft.n_attempts - 1].status -
					    RETRY_STATUS_MIN]++;
	else
		srv->metrics.retries[j->ft.retry_reason]++;
	return 0;
}

/* The fetch stopped before a redirect to another host (ft.resume): it
 * waits for that host's turn in the queue, with its deadline as it was. */
static void job_next_host(struct job *j)
{
	struct pending *p = j->p;
	size_t i = j->index;
	char *host = strdup(fetch_resume_host(j->ft.resume));

	if (p->gone || atomic_load(&j->ft.cancel)) {
		free(host);
		job_free(j);
		/* cancelled for its client, or by the drain's timeout */
		if (p->gone)
			pending_item_error(p, i, ERR_CLIENT_CLOSED, "the client went away");
		else
			pending_item_error(p, i, ERR_SHUTTING_DOWN,
					   "fetchd shut down before this fetch finished");
		return;
	}
	if (host == NULL) {
		job_free(j);
		pending_item_error(p, i, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	if (job_admit(j, host) != 0) {
		job_free(j);
		pending_item_error(
			p, i, ERR_OVERLOADED,
			"the worker pool and its queue were full for a redirect; retry later");
	}
}

/* A 429 or 503 with Retry-After pauses its host's queue (per-host rules
 * on): no fetch to it starts for that long, at most per_host_max_pause. */
static void job_pause_host(struct job *j)
{
	const struct fetchd_config *cfg = j->p->srv->cfg;
	int status = j->ft.n_attempts ? j->ft.attempts[j->ft.n_attempts - 1].status : 0;
	uint64_t ms;

	if (j->host_key == NULL || (status != 429 && status != 503) || j->ft.retry_after_ms < 0)
		return;
	ms = (uint64_t)j->ft.retry_after_ms;
	if (ms > cfg->per_host_max_pause_ms)
		ms = cfg->per_host_max_pause_ms;
	if (ms > 0)
		executor_pause_key(j->ex, j->host_key, ms);
}

/* Loop side: the document is ready. */
static void job_done(struct executor_task *t)
{
	struct job *j = (struct job *)t;
	struct pending *p = j->p;
	size_t i = j->index;
	char *doc = j->ft.doc;

	if (j->ft.resume != NULL) {
		job_next_host(j);
		return;
	}
	job_pause_host(j);

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
	metrics_observe(&m->pool_queue_wait[j->pool], waited);
	if (waited * 1e3 > p->queue_ms)
		p->queue_ms = waited * 1e3;
	double ran = (double)(clock_now_ns() - t->started_ns) / 1e9;
	metrics_observe(&m->fetch_duration, ran);
	metrics_observe(&m->pool_fetch_duration[j->pool], ran);
	if (j->ft.retry == RETRY_YES && !p->gone && !p->srv->draining &&
	    !atomic_load(&j->ft.cancel) && job_backoff(j, doc) == 0)
		return;
	if (j->ft.err == ERR_CLIENT_CLOSED && !p->gone) {
		/* aborted by the drain's timeout, not for its client */
		free(doc);
		budget_release(doc_account_budget(p->srv->docs), j->ft.doc_len);
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
	if (j->backing_off) {
		/* the policy starts no retry that cannot finish in time; a
		 * loop that fell behind may still get here */
		job_free(j);
		pending_item_error(p, i, ERR_UPSTREAM_TIMEOUT,
				   "the deadline passed while waiting to retry");
		return;
	}
	if (executor_cancel(j->ex, &j->task) != 0)
		return;
	job_free(j);
	pending_item_error(p, i, ERR_UPSTREAM_TIMEOUT,
			   "the deadline passed while the fetch was queued; it was never sent");
}

/* Cancel p's fetches still in flight: a queued one is taken off its queue
 * and answered in place; a running one is told to stop (ft.cancel), curl
 * aborts it through its progress callback, and job_done answers it. A
 * client that left counts as a client cancellation of each fetch, and of
 * its pool for a running one. Returns true when p was answered whole, and
 * so freed. */
static bool pending_cancel(struct pending *p, enum cancel_reason why)
{
	for (size_t i = 0; i < p->n_items; i++) {
		struct job *j = p->items[i].job;

		if (j == NULL)
			continue;
		if (why == CANCEL_CLIENT_GONE)
			p->srv->metrics.client_cancelled++;
		if (j->backing_off || executor_cancel(j->ex, &j->task) == 0) {
			size_t left = p->n_left;

			job_free(j);
			if (why == CANCEL_CLIENT_GONE)
				pending_item_error(p, i, ERR_CLIENT_CLOSED, "the client went away");
			else
				pending_item_error(p, i, ERR_SHUTTING_DOWN,
						   "fetchd shut down before this fetch ran");
			if (left == 1)
				return true; /* that was the last item: p is freed */
		} else {
			if (why == CANCEL_CLIENT_GONE)
				p->srv->metrics.pool_aborted[j->pool]++;
			atomic_store(&j->ft.cancel, true);
		}
	}
	return false;
}

/* The client closed its connection: drop what is queued, abort what runs. */
static void client_closed(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	p->gone = true;
	pending_cancel(p, CANCEL_CLIENT_GONE);
}

/* Requests old enough start watching their clients' sockets. */
void pending_watch_clients(evutil_socket_t unused, short what, void *arg)
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
		p->close_ev = event_new(srv->base, p->fd, EV_CLOSED, client_closed, p);
		if (p->close_ev != NULL)
			event_add(p->close_ev, NULL);
	}
}

struct pending *pending_new(struct server *srv, struct evhttp_request *req, size_t n, bool batch)
{
	struct pending *p = calloc(1, sizeof(*p));
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	evutil_socket_t fd = -1;

	if (p == NULL)
		return NULL;
	p->srv = srv;
	p->req = req;
	p->batch = batch;
	p->n_items = p->n_left = n;
	p->start_ns = clock_now_ns();
	p->items = calloc(n ? n : 1, sizeof(*p->items));
	pending_request_id(srv, req, p->id, sizeof(p->id));
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
	TAILQ_FOREACH (kv, headers, next)
		if (strcasecmp(kv->key, "Via") == 0 && strpbrk(kv->value, "\r\n") == NULL)
			len += strlen(kv->value) + 2;
	if (len == 0)
		return 0;
	via = malloc(len);
	if (via == NULL)
		return -1;
	TAILQ_FOREACH (kv, headers, next) {
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

/* Start the deadline: the request's timeout from now. Returns -1 on out
 * of memory. */
static int job_arm_deadline(struct job *j)
{
	uint64_t ms = j->req->timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	j->ft.deadline_ns = clock_now_ns() + ms * UINT64_C(1000000);
	j->deadline_ev = evtimer_new(j->p->srv->base, job_deadline, j);
	if (j->deadline_ev == NULL)
		return -1;
	evtimer_add(j->deadline_ev, &tv);
	return 0;
}

/* Validate item i and queue its fetch, or answer it in place. */
void pending_submit(struct pending *p, size_t i, const json_t *obj)
{
	struct server *srv = p->srv;
	struct budget *budget = doc_account_budget(srv->docs);
	struct request_error rerr;
	struct job *j;

	/* a request on a connection accepted before the drain is served,
	 * until shutdown_timeout */
	if (srv->drain_aborted) {
		pending_item_error(p, i, ERR_SHUTTING_DOWN, "fetchd is shutting down");
		return;
	}
	if (budget_used(budget) >= budget_limit(budget)) {
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
		pending_item_error(p, i, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	j->req = req;
	j->p = p;
	j->index = i;
	j->ft.hold.budget = budget;
	j->request_charge = req->body_len + strlen(req->url) + 1;
	if (!budget_charge(budget, j->request_charge)) {
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
		pending_item_error(p, i, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	j->ft.origin_ns = p->start_ns;
	atomic_init(&j->ft.cancel, false);
	char *host = NULL;
	if (job_arm_deadline(j) != 0 || job_first_host(srv->cfg, req, &host) != 0) {
		job_free(j);
		pending_item_error(p, i, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	p->items[i].job = j;
	j->pool = pool_for(srv, req);
	j->ex = srv->pools[j->pool];
	if (job_admit(j, host) != 0) {
		p->items[i].job = NULL;
		job_free(j);
		pending_item_error(p, i, ERR_OVERLOADED,
				   "the worker pool and its queue are full; retry later");
	}
}

void pending_abort_all(struct server *srv)
{
	for (struct pending *p = srv->pendings, *next; p != NULL; p = next) {
		next = p->next;
		pending_cancel(p, CANCEL_SHUTDOWN);
	}
}

void pending_free_all(struct server *srv)
{
	while (srv->pendings != NULL) {
		struct pending *p = srv->pendings;

		for (size_t i = 0; i < p->n_items; i++)
			if (p->items[i].job != NULL)
				job_free(p->items[i].job);
		pending_free(p);
	}
}
