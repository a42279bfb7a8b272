/* Counters and histograms, rendered for /metrics and /v1/stats. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "procstat.h"

static const double bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					       0.1,    0.25,  0.5,    1,     2.5,  5,	  10};

void metrics_observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	while (i < METRICS_BUCKETS && seconds > bounds[i])
		i++;
	h->counts[i]++;
	h->total++;
	h->sum += seconds;
}

void metrics_count_answer(struct metrics *m, int status, enum fetchd_err err)
{
	if (err != ERR_NONE || status == 200) {
		m->requests[err]++;
		return;
	}
	for (size_t i = 0; i < METRICS_PLAIN_STATUSES; i++) {
		if (m->requests_plain[i].status == 0)
			m->requests_plain[i].status = status;
		if (m->requests_plain[i].status == status) {
			m->requests_plain[i].n++;
			return;
		}
	}
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

/* A label value in the exposition format: \\, \" and \n escaped. */
static void emit_label_value(struct text *t, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			emit(t, "\\%c", *v);
		else if (*v == '\n')
			emit(t, "\\n");
		else
			emit(t, "%c", *v);
	}
}

/* One histogram family, a series set per pool (label pool). */
static void emit_histogram(struct text *t, const char *name, const char *help,
			   const struct histogram *hs, const char *const *pool_names,
			   size_t n_pools)
{
	emit(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t p = 0; p < n_pools; p++) {
		const struct histogram *h = &hs[p];
		const char *pool = pool_names[p];
		uint64_t cumulative = 0;

		for (size_t i = 0; i < METRICS_BUCKETS; i++) {
			cumulative += h->counts[i];
			emit(t, "%s_bucket{pool=\"%s\",le=\"%g\"} %llu\n", name, pool, bounds[i],
			     (unsigned long long)cumulative);
		}
		emit(t, "%s_bucket{pool=\"%s\",le=\"+Inf\"} %llu\n", name, pool,
		     (unsigned long long)h->total);
		emit(t, "%s_sum{pool=\"%s\"} %.6f\n%s_count{pool=\"%s\"} %llu\n", name, pool,
		     h->sum, name, pool, (unsigned long long)h->total);
	}
}

/* fetchd_build_info and the process_* series of the Prometheus client
 * libraries (same names, types and units). */
static void emit_process(struct text *t, const struct metrics_build *b,
			 const struct process_stats *ps)
{
	if (b != NULL) {
		emit(t, "# HELP fetchd_build_info fetchd's version and the libcurl and libevent it "
			"runs with.\n# TYPE fetchd_build_info gauge\nfetchd_build_info{version=\"");
		emit_label_value(t, b->version);
		emit(t, "\",libcurl=\"");
		emit_label_value(t, b->libcurl);
		emit(t, "\",libevent=\"");
		emit_label_value(t, b->libevent);
		emit(t, "\"} 1\n");
	}
	if (ps == NULL)
		return;
	if (ps->have_stat)
		emit(t,
		     "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
		     "seconds.\n# TYPE process_cpu_seconds_total counter\n"
		     "process_cpu_seconds_total %.2f\n"
		     "# HELP process_start_time_seconds Start time of the process since unix epoch "
		     "in seconds.\n# TYPE process_start_time_seconds gauge\n"
		     "process_start_time_seconds %.2f\n"
		     "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		     "# TYPE process_resident_memory_bytes gauge\n"
		     "process_resident_memory_bytes %llu\n"
		     "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		     "# TYPE process_virtual_memory_bytes gauge\n"
		     "process_virtual_memory_bytes %llu\n",
		     ps->cpu_seconds, ps->start_time_seconds,
		     (unsigned long long)ps->resident_bytes, (unsigned long long)ps->virtual_bytes);
	if (ps->have_fds)
		emit(t,
		     "# HELP process_open_fds Number of open file descriptors.\n"
		     "# TYPE process_open_fds gauge\nprocess_open_fds %llu\n",
		     (unsigned long long)ps->open_fds);
	if (ps->max_fds != 0)
		emit(t,
		     "# HELP process_max_fds Maximum number of open file descriptors.\n"
		     "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n",
		     (double)ps->max_fds);
}

/* Long, and left so: one emit stanza per exported metric, in the order of
 * the exposition, read as the list of what /metrics offers. */
/* The series of each pool, from its executor_stats. The per-host ones
 * count hosts and fetches, never name a host: bounded cardinality. */
#define POOL_VALUE(field)                                                                          \
	static uint64_t pool_##field(const struct executor_stats *st)                              \
	{                                                                                          \
		return st->field;                                                                  \
	}
POOL_VALUE(threads)
POOL_VALUE(busy)
POOL_VALUE(queued)
POOL_VALUE(queue_limit)
POOL_VALUE(rejected)
POOL_VALUE(cancelled)
POOL_VALUE(live)
POOL_VALUE(idle)
POOL_VALUE(min_threads)
POOL_VALUE(keys)
POOL_VALUE(keys_at_limit)
POOL_VALUE(keys_paced)
POOL_VALUE(key_waiting)
POOL_VALUE(key_limit_waits)
POOL_VALUE(key_pace_waits)
POOL_VALUE(key_pauses)

static const struct pool_series {
	const char *name;
	bool counter;
	uint64_t (*value)(const struct executor_stats *st);
	const char *help;
} pool_series[] = {
	{"fetchd_pool_threads", false, pool_threads, "Most worker threads of the pool."},
	{"fetchd_pool_busy", false, pool_busy, "Workers running a fetch."},
	{"fetchd_pool_queued", false, pool_queued, "Fetches waiting for a worker."},
	{"fetchd_pool_queue_limit", false, pool_queue_limit, "Most fetches that may wait."},
	{"fetchd_pool_rejected_total", true, pool_rejected, "Fetches refused: the queue was full."},
	{"fetchd_pool_cancelled_total", true, pool_cancelled,
	 "Queued fetches removed before they ran."},
	{"fetchd_pool_threads_live", false, pool_live, "Worker threads running now."},
	{"fetchd_pool_threads_idle", false, pool_idle, "Worker threads waiting for a fetch."},
	{"fetchd_pool_threads_min", false, pool_min_threads, "Worker threads kept when idle."},
	{"fetchd_pool_hosts", false, pool_keys,
	 "Hosts with fetches queued or running, or paused, under per-host rules."},
	{"fetchd_pool_hosts_at_limit", false, pool_keys_at_limit,
	 "Hosts with fetches waiting because per_host_limit of theirs run."},
	{"fetchd_pool_hosts_paced", false, pool_keys_paced,
	 "Hosts with fetches waiting for per_host_interval or a Retry-After pause."},
	{"fetchd_pool_host_waiting", false, pool_key_waiting,
	 "Fetches held back by their host's rules (a part of fetchd_pool_queued)."},
	{"fetchd_pool_host_limit_waits_total", true, pool_key_limit_waits,
	 "Times a host's queued fetches began to wait at per_host_limit."},
	{"fetchd_pool_host_pace_waits_total", true, pool_key_pace_waits,
	 "Times a host's queued fetches began to wait for per_host_interval or a pause."},
	{"fetchd_pool_host_pauses_total", true, pool_key_pauses,
	 "Hosts paused by a 429 or 503 with Retry-After."},
};

char *metrics_render(const struct metrics *m, const char *const *pool_names,
		     const struct executor_stats *pools, size_t n_pools, uint64_t pending_bytes,
		     const struct metrics_build *build, const struct process_stats *proc,
		     size_t *len)
{
	struct text t = {.buf = malloc(4096), .cap = 4096};

	if (t.buf == NULL)
		return NULL;
	t.buf[0] = '\0';
	emit(&t, "# HELP fetchd_requests_total Answers by HTTP status and error code: one per "
		 "fetch (a batch item is one) and one per request answered without a fetch.\n"
		 "# TYPE fetchd_requests_total counter\n");
	for (int e = 0; e < ERR__COUNT; e++) {
		emit(&t, "fetchd_requests_total{code=\"%d\",error=\"%s\"} %llu\n",
		     e == ERR_NONE ? 200 : err_http_status(e),
		     e == ERR_NONE ? "" : err_code_name(e), (unsigned long long)m->requests[e]);
	}
	for (size_t i = 0; i < METRICS_PLAIN_STATUSES && m->requests_plain[i].status != 0; i++)
		emit(&t, "fetchd_requests_total{code=\"%d\",error=\"\"} %llu\n",
		     m->requests_plain[i].status, (unsigned long long)m->requests_plain[i].n);
	for (size_t g = 0; g < sizeof(pool_series) / sizeof(pool_series[0]); g++) {
		const struct pool_series *ps = &pool_series[g];

		emit(&t, "# HELP %s %s\n# TYPE %s %s\n", ps->name, ps->help, ps->name,
		     ps->counter ? "counter" : "gauge");
		for (size_t i = 0; i < n_pools; i++)
			emit(&t, "%s{pool=\"%s\"} %llu\n", ps->name, pool_names[i],
			     (unsigned long long)ps->value(&pools[i]));
	}
	emit(&t, "# HELP fetchd_retries_total Retries started, by the reason: connect, timeout, "
		 "reset, or the upstream's status.\n"
		 "# TYPE fetchd_retries_total counter\n");
	for (int r = 0; r < RETRY_STATUS; r++)
		emit(&t, "fetchd_retries_total{reason=\"%s\"} %llu\n", retry_reason_name(r),
		     (unsigned long long)m->retries[r]);
	for (int s = RETRY_STATUS_MIN; s <= RETRY_STATUS_MAX; s++)
		if (m->retries_status[s - RETRY_STATUS_MIN] != 0)
			emit(&t, "fetchd_retries_total{reason=\"%d\"} %llu\n", s,
			     (unsigned long long)m->retries_status[s - RETRY_STATUS_MIN]);
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
		       m->pool_fetch_duration, pool_names, n_pools);
	emit_histogram(&t, "fetchd_queue_wait_seconds",
		       "Time a fetch waited in the queue for a worker.", m->pool_queue_wait,
		       pool_names, n_pools);
	emit_process(&t, build, proc);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
