/* Counters and histograms, rendered for /metrics and /v1/stats. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static const double bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					       0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void metrics_observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	while (i < METRICS_BUCKETS && seconds > bounds[i])
		i++;
	h->counts[i]++;
	h->total++;
	h->sum += seconds;
}

double metrics_quantile(const struct histogram *h, double q)
{
	double rank = q * (double)h->total, seen = 0;

	if (h->total == 0)
		return 0;
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		double lo = i == 0 ? 0 : bounds[i - 1];

		if (h->counts[i] == 0 || seen + (double)h->counts[i] < rank) {
			seen += (double)h->counts[i];
			continue;
		}
		if (i == METRICS_BUCKETS)
			return lo; /* beyond the last bound: report the bound */
		return lo + (bounds[i] - lo) * ((rank - seen) / (double)h->counts[i]);
	}
	return bounds[METRICS_BUCKETS - 1];
}

/* A growing text buffer; on out of memory it stops growing and
 * metrics_render returns NULL. */
struct text {
	char *buf;
	size_t len, cap;
	int failed;
};

static void emit(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *b = realloc(t->buf, cap);
		if (b == NULL) {
			t->failed = 1;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void emit_histogram(struct text *t, const char *name, const char *help,
			   const struct histogram *h)
{
	uint64_t cumulative = 0;

	emit(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		cumulative += h->counts[i];
		emit(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
		     (unsigned long long)cumulative);
	}
	emit(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->total);
	emit(t, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->total);
}

/* Long, and left so: one emit stanza per exported metric, in the order of
 * the exposition, read as the list of what /metrics offers. */
char *metrics_render(const struct metrics *m, const char *const *pool_names,
		     const struct executor_stats *pools, size_t n_pools, uint64_t pending_bytes,
		     size_t *len)
{
	struct text t = {.buf = malloc(4096), .cap = 4096};

	if (t.buf == NULL)
		return NULL;
	t.buf[0] = '\0';
	emit(&t, "# HELP fetchd_requests_total Fetch outcomes by HTTP status and error code.\n"
		 "# TYPE fetchd_requests_total counter\n");
	for (int e = 0; e < ERR__COUNT; e++) {
		emit(&t, "fetchd_requests_total{code=\"%d\",error=\"%s\"} %llu\n",
		     e == ERR_NONE ? 200 : err_http_status(e), e == ERR_NONE ? "" : err_code_name(e),
		     (unsigned long long)m->requests[e]);
	}
	static const char *const gauges[][3] = {
		{"fetchd_pool_threads", "gauge", "Most worker threads of the pool."},
		{"fetchd_pool_busy", "gauge", "Workers running a fetch."},
		{"fetchd_pool_queued", "gauge", "Fetches waiting for a worker."},
		{"fetchd_pool_queue_limit", "gauge", "Most fetches that may wait."},
		{"fetchd_pool_rejected_total", "counter", "Fetches refused: the queue was full."},
		{"fetchd_pool_cancelled_total", "counter", "Queued fetches removed before they ran."},
		{"fetchd_pool_threads_live", "gauge", "Worker threads running now."},
		{"fetchd_pool_threads_idle", "gauge", "Worker threads waiting for a fetch."},
		{"fetchd_pool_threads_min", "gauge", "Worker threads kept when idle."},
	};
	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		emit(&t, "# HELP %s %s\n# TYPE %s %s\n", gauges[g][0], gauges[g][2], gauges[g][0],
		     gauges[g][1]);
		for (size_t i = 0; i < n_pools; i++) {
			const struct executor_stats *st = &pools[i];
			uint64_t v = g == 0 ? st->threads
				   : g == 1 ? st->busy
				   : g == 2 ? st->queued
				   : g == 3 ? st->queue_limit
				   : g == 4 ? st->rejected
				   : g == 5 ? st->cancelled
				   : g == 6 ? st->live
				   : g == 7 ? st->idle
					    : st->min_threads;

			emit(&t, "%s{pool=\"%s\"} %llu\n", gauges[g][0], pool_names[i],
			     (unsigned long long)v);
		}
	}
	emit(&t,
	     "# HELP fetchd_client_cancelled_total Fetches whose client disconnected.\n"
	     "# TYPE fetchd_client_cancelled_total counter\n"
	     "fetchd_client_cancelled_total %llu\n"
	     "# HELP fetchd_upstream_bytes_total Body bytes received from upstreams.\n"
	     "# TYPE fetchd_upstream_bytes_total counter\n"
	     "fetchd_upstream_bytes_total %llu\n"
	     "# HELP fetchd_response_bytes_total Bytes of fetch documents sent to clients.\n"
	     "# TYPE fetchd_response_bytes_total counter\n"
	     "fetchd_response_bytes_total %llu\n"
	     "# HELP fetchd_pending_bytes Bytes held for clients, charged to max_pending_bytes.\n"
	     "# TYPE fetchd_pending_bytes gauge\n"
	     "fetchd_pending_bytes %llu\n",
	     (unsigned long long)m->client_cancelled, (unsigned long long)m->upstream_bytes,
	     (unsigned long long)m->response_bytes, (unsigned long long)pending_bytes);
	emit(&t,
	     "# HELP fetchd_connections Client connections open.\n"
	     "# TYPE fetchd_connections gauge\n"
	     "fetchd_connections %llu\n"
	     "# HELP fetchd_connections_accepted_total Client connections accepted.\n"
	     "# TYPE fetchd_connections_accepted_total counter\n"
	     "fetchd_connections_accepted_total %llu\n"
	     "# HELP fetchd_accept_paused_total Times max_connections stopped accepting.\n"
	     "# TYPE fetchd_accept_paused_total counter\n"
	     "fetchd_accept_paused_total %llu\n"
	     "# HELP fetchd_request_timeouts_total Connections closed: a request took longer "
	     "than request_timeout to arrive.\n"
	     "# TYPE fetchd_request_timeouts_total counter\n"
	     "fetchd_request_timeouts_total %llu\n",
	     (unsigned long long)m->connections_open, (unsigned long long)m->connections_accepted,
	     (unsigned long long)m->accept_paused, (unsigned long long)m->request_timeouts);
	emit_histogram(&t, "fetchd_fetch_duration_seconds",
		       "Time a worker spent on a fetch, redirects and materialization included.",
		       &m->fetch_duration);
	emit_histogram(&t, "fetchd_queue_wait_seconds",
		       "Time a fetch waited in the queue for a worker.", &m->queue_wait);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
