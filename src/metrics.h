#ifndef FETCHD_METRICS_H
#define FETCHD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errors.h"

struct executor_stats;
struct process_stats;

#define METRICS_BUCKETS 14
#define METRICS_PLAIN_STATUSES 4

/* A latency histogram with fixed bounds (seconds, Prometheus style). */
struct histogram {
	uint64_t counts[METRICS_BUCKETS + 1]; /* the last one is +Inf */
	uint64_t total;
	double sum;
};

/* Counters of one server, updated on the loop thread only (no locks). */
struct metrics {
	uint64_t requests[ERR__COUNT]; /* by outcome; ERR_NONE = 200 */
	/* answers with no error code and a status other than 200 (the 503
	 * of /healthz and /readyz), by status; a zero status is a free slot */
	struct {
		int status;
		uint64_t n;
	} requests_plain[METRICS_PLAIN_STATUSES];
	uint64_t fetch_failed;
	uint64_t pool_failed[1 + CONFIG_MAX_POOLS];  /* by pool index: 0 is [pool] */
	uint64_t pool_aborted[1 + CONFIG_MAX_POOLS]; /* running, client gone */
	uint64_t upstream_bytes;		     /* body bytes received from upstreams */
	uint64_t response_bytes;		     /* bytes of documents written to clients */
	/* retries started, by reason; RETRY_STATUS's by status 400..599 */
	uint64_t retries[RETRY__COUNT];
	uint64_t retries_status[RETRY_STATUS_MAX - RETRY_STATUS_MIN + 1];
	uint64_t client_cancelled; /* fetches whose client went away */
	/* client connections (copied from the connections module) */
	uint64_t connections_open;
	uint64_t connections_accepted;
	uint64_t accept_paused;
	uint64_t request_timeouts;
	struct histogram fetch_duration; /* worker start -> document ready */
	struct histogram queue_wait;	 /* submit -> worker start */
	/* the same two, by pool index (0 is [pool]), for /metrics */
	struct histogram pool_fetch_duration[1 + CONFIG_MAX_POOLS];
	struct histogram pool_queue_wait[1 + CONFIG_MAX_POOLS];
};

/* fetchd_build_info's labels. */
struct metrics_build {
	const char *version, *libcurl, *libevent;
};

void metrics_observe(struct histogram *h, double seconds);

/* Count one answer in fetchd_requests_total{code,error}: by err, or when
 * err is ERR_NONE by status. */
void metrics_count_answer(struct metrics *m, int status, enum fetchd_err err);

/* The q-quantile (0..1) of h in seconds, interpolated within its bucket;
 * 0 when empty. */
double metrics_quantile(const struct histogram *h, double q);

/* Prometheus text format (version 0.0.4). malloc'd, length in *len. build
 * and proc (the process_* series) may be NULL: left out. */
char *metrics_render(const struct metrics *m, const char *const *pool_names,
		     const struct executor_stats *pools, size_t n_pools, uint64_t pending_bytes,
		     const struct metrics_build *build, const struct process_stats *proc,
		     size_t *len);

#endif
