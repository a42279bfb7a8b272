#ifndef FETCHD_RETRY_H
#define FETCHD_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* The retry policy of one fetch (the request's "retry", over [fetch]
 * retry_*) and the pure decision after each attempt. No locks, no state:
 * the worker calls retry_decide when its attempt ends, the verdict
 * travels in the task, and the loop acts on it (src/pending.c). */

/* The most retries a policy may ask for: each is a record in the task. */
#define RETRY_MAX 10

/* Kinds of failure a retry may answer, besides HTTP statuses. */
enum retry_reason {
	RETRY_CONNECT, /* the connection could not be made (connect_failed) */
	RETRY_TIMEOUT, /* the attempt timed out (upstream_timeout) */
	RETRY_RESET,   /* the connection broke: sent nothing, or cut mid-answer */
	RETRY_STATUS,  /* an upstream status listed in "on" */
	RETRY__COUNT,
};

/* Statuses "on" may list: the failures, 400 to 599. */
#define RETRY_STATUS_MIN 400
#define RETRY_STATUS_MAX 599

struct retry_policy {
	unsigned attempts;	 /* retries after the first try; 0: none */
	uint64_t backoff_ms;	 /* the first backoff's cap; doubles each retry */
	uint64_t max_backoff_ms; /* the cap of any backoff */
	unsigned on_kinds;	 /* 1u << enum retry_reason, but RETRY_STATUS */
	uint32_t on_status[(RETRY_STATUS_MAX - RETRY_STATUS_MIN + 32) / 32];
	bool non_idempotent; /* retry POST and PATCH too */
};

/* Add one item of an "on" list ("connect", "timeout", "reset", or a
 * status 400..599 as text). Returns 0, or -1 when it is none of those. */
int retry_on_add(struct retry_policy *p, const char *item);
void retry_on_add_status(struct retry_policy *p, int status);
bool retry_on_status(const struct retry_policy *p, int status);

/* The "on" list as text ("connect, timeout, 503") into buf. */
void retry_on_format(const struct retry_policy *p, char *buf, size_t len);

/* One attempt's record for the document. */
struct retry_attempt {
	int status;	     /* the upstream's final status, 0 when it failed */
	enum fetchd_err err; /* ERR_NONE when an upstream answered */
	uint64_t start_ms;   /* from the request's arrival */
	uint64_t duration_ms;
};

enum retry_verdict {
	RETRY_NO,	 /* the outcome stands */
	RETRY_YES,	 /* retry after delay_ms */
	RETRY_CUT_SHORT, /* a retry was due but cannot finish by the deadline */
};

/* What one attempt ended with. */
struct retry_outcome {
	int status;		/* the final status, 0 on failure */
	enum fetchd_err err;	/* ERR_NONE when an upstream answered */
	int curl_code;		/* the transfer's CURLcode, 0 when none */
	int64_t retry_after_ms; /* from Retry-After, -1 when none */
	uint64_t duration_ms;	/* of this attempt, with its wait for a worker */
};

/* Decide after attempt number done (1 = the first) of method, with
 * left_ms until the deadline. A retry is made only when the policy
 * lists the outcome's kind, the method is idempotent (or the policy
 * allows any), retries are left, and its backoff plus one more attempt
 * as long as this one fits in left_ms. The backoff is full jitter
 * (uniform in 0..min(max_backoff, backoff * 2^(done-1))), at least
 * Retry-After when given. *reason is set for RETRY_YES. */
enum retry_verdict retry_decide(const struct retry_policy *p, const char *method, unsigned done,
				const struct retry_outcome *o, uint64_t left_ms, uint64_t *delay_ms,
				enum retry_reason *reason);

/* A Retry-After value (delay-seconds or an HTTP date) in ms from now, or
 * -1 when it is neither. */
int64_t retry_after_ms(const char *value);

/* "connect", "timeout", "reset", "status". */
const char *retry_reason_name(enum retry_reason r);

#endif
