#ifndef FETCHD_BUDGET_H
#define FETCHD_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The memory budget of [server] max_pending_bytes: every byte fetchd holds
 * on behalf of clients is charged here before it is allocated and released
 * when it is freed. What is charged (README, "Memory"):
 *   - a queued or running fetch's request body and URL (at submit);
 *   - the upstream's body as it is received (by buffer capacity), and its
 *     response headers;
 *   - the response document as it is built (by buffer capacity), and any
 *     temporary copy made to build it (decoded text);
 *   - finished documents and batch items, until the client's socket has
 *     taken every byte of them (libevent frees the reference then).
 * A charge that would pass the limit fails and charges nothing; the fetch
 * then fails (README: 503 overloaded, or 502 response_too_large when the
 * fetch alone needs more than the whole budget). Error documents, a few
 * hundred bytes each, are charged with budget_force: an answer saying
 * "overloaded" must always be deliverable.
 *
 * Thread-safe: the counters are atomics, charged by workers and released
 * by the loop. Contention is one atomic add per buffer growth (a doubling),
 * not per byte. */
struct budget;

/* A budget of limit bytes. NULL on out of memory. */
struct budget *budget_new(uint64_t limit);
void budget_free(struct budget *b);

/* A reload changes the limit; bytes already charged stay charged. */
void budget_set_limit(struct budget *b, uint64_t limit);
uint64_t budget_limit(const struct budget *b);
uint64_t budget_used(const struct budget *b);

/* Charge n bytes: true, or false (nothing charged) when that would pass
 * the limit. A NULL budget charges nothing and always succeeds. */
bool budget_charge(struct budget *b, size_t n);

/* Charge n bytes even past the limit (small error documents only). */
void budget_force(struct budget *b, size_t n);

/* Give back n bytes charged before. */
void budget_release(struct budget *b, size_t n);

/* What one task holds, so that its charges can be given back together and
 * a failure can tell "the budget is busy" from "this task alone needs more
 * than the whole budget". Used by one thread at a time (the worker, then
 * the loop once the task is done). */
struct budget_hold {
	struct budget *budget; /* NULL: nothing is charged */
	size_t held;
	bool never_fits; /* a charge failed that no budget state could grant */
	bool failed;	 /* a charge failed */
};

bool budget_hold_charge(struct budget_hold *h, size_t n);
void budget_hold_force(struct budget_hold *h, size_t n);
void budget_hold_release(struct budget_hold *h, size_t n);

#endif
