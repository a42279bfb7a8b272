#ifndef FETCHD_FETCH_H
#define FETCHD_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "errors.h"
#include "retry.h"

struct fetch_request;
struct fetchd_config;
struct netguard_rules;
struct fetch_worker;
struct fetch_resume;

/* curl_global_init, the share handle (DNS cache, TLS sessions) with
 * its locks, and this process's Via name. Call once before any worker
 * starts. Returns 0 or -1. */
int fetch_global_init(void);
void fetch_global_cleanup(void);

/* This process's name in Via: "fetchd-" and 16 hex digits from
 * getrandom(2), new in every process (two instances on one host, or
 * behind one port, differ). Every upstream request carries
 * "Via: 1.1 NAME", appended to the Via it passes on (RFC 9110 section
 * 7.6.3), so a fetch that comes back to this process is recognised
 * whatever address it took. "" before fetch_global_init. */
const char *fetch_instance(void);

/* Does a Via field value name this process as a recipient (as its
 * received-by, RFC 9110 section 7.6.3)? Never before fetch_global_init. */
bool fetch_via_names_us(const char *via);

/* The per-worker state: one curl easy handle kept between tasks, so its
 * connection cache gives keep-alive to upstreams. */
struct fetch_worker *fetch_worker_new(unsigned worker_id);
void fetch_worker_free(struct fetch_worker *w);

/* The destination rules changed: every worker closes the connections it
 * keeps before its next fetch. Safe from any thread. */
void fetch_drop_connections(void);

/* The error code of a failed transfer, from libcurl's CURLcode alone:
 * every TLS code is ERR_TLS_ERROR. fetch_run refines it with what its
 * callbacks saw (the guard, the budget, the deadline, a TLS 1.3 refusal
 * after the handshake). */
enum fetchd_err fetch_map_curl_error(int curl_code);

/* One fetch: the bound request and its outcome. The loop fills the inputs
 * before queueing; fetch_run fills the outputs on the worker. */
struct fetch_task {
	const struct fetch_request *req;
	const struct fetchd_config *cfg;
	const struct netguard_rules *rules;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; the total timeout */
	uint64_t queued_ns;   /* time it waited in the queue */
	atomic_bool cancel;   /* set by the loop: abort as soon as possible */
	/* the memory budget (hold.budget, may be NULL): the fetch charges its
	 * body, headers and document here as they grow; when fetch_run
	 * returns, hold.held is doc_len, the finished document's charge */
	struct budget_hold hold;
	/* the Via of the client's request to fetchd, passed on before
	 * fetchd's own; NULL when it had none. malloc'd; the loop frees it
	 * with the task */
	char *via;

	char *doc; /* the finished JSON document, malloc'd */
	size_t doc_len;
	int http_status;     /* 200 or the error's status */
	enum fetchd_err err; /* ERR_NONE when an upstream answered */
	uint64_t bytes_in;   /* body bytes received from upstream */

	/* Retries (src/retry.h). The loop sets origin_ns (the request's
	 * arrival) and keeps the earlier attempts' records in attempts; the
	 * worker appends its own record, writes them all into the document
	 * when req->retry.attempts > 0, and leaves the policy's verdict for
	 * the loop to act on (retry_delay_ms and retry_reason with
	 * RETRY_YES). */
	uint64_t origin_ns;
	struct retry_attempt attempts[RETRY_MAX + 1];
	unsigned n_attempts;
	enum retry_verdict retry;
	uint64_t retry_delay_ms;
	enum retry_reason retry_reason;
	uint64_t attempt_start_ns; /* the worker's own */
	bool attempt_closed;	   /* its record is in attempts */
	int64_t retry_after_ms;	   /* the last answer's Retry-After, -1: none */

	/* Per-host admission ([pool] per_host_limit): the host (url_host_key)
	 * the loop admitted this task under, NULL when no per-host rule is
	 * on. A redirect to another host then ends fetch_run early, with no
	 * document and the chain so far in resume: the loop admits the task
	 * again under fetch_resume_host(resume), and the next fetch_run goes
	 * on from there. Each hop waits for its own host's turn in the queue,
	 * never on a worker. */
	const char *admitted_host;
	struct fetch_resume *resume;
};

/* The host the next hop of a resumed fetch must be admitted under. */
const char *fetch_resume_host(const struct fetch_resume *s);

/* Free a resume fetch_run will not take (the task ends without it). */
void fetch_resume_free(struct fetch_resume *s);

/* Perform the fetch with the blocking curl_easy_perform, following
 * redirects hop by hop, and materialize the response document. Never
 * touches the event loop. Always leaves a document in t->doc. */
void fetch_run(struct fetch_worker *w, struct fetch_task *t);

#endif
