#ifndef FETCHD_REPLY_H
#define FETCHD_REPLY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

struct budget;
struct evbuffer;
struct evhttp_request;

/* Answers on the loop thread, and the account of the documents libevent
 * holds for writing. Loop thread only, but for the budget's own atomics,
 * which workers charge. */

/* The memory budget (max_pending_bytes, src/budget.h) and the fetch
 * documents handed to libevent, which a drain waits for. Every document
 * added here stays charged its len until libevent has written (or dropped)
 * it; then its bytes leave the budget and written(arg) runs. libevent may
 * free the last of them after the server (its bufferevents are finalized
 * in event_base_free), so the account outlives its owner: see
 * doc_account_release. */
struct doc_account;

/* An account with a budget of limit bytes. NULL on out of memory. */
struct doc_account *doc_account_new(uint64_t limit, void (*written)(void *arg), void *arg);

/* The owner is done with acc: written no longer runs, and acc is freed
 * now if libevent holds none of its documents, else with the last one. */
void doc_account_release(struct doc_account *acc);

struct budget *doc_account_budget(const struct doc_account *acc);

/* Documents libevent still holds, and every byte it has written. */
uint64_t doc_account_held(const struct doc_account *acc);
uint64_t doc_account_written_bytes(const struct doc_account *acc);

/* Append doc (malloc'd, charged len to the budget, taken over) to buf by
 * reference. Returns 0; or -1 when out of memory, doc then freed and its
 * charge given back. */
int doc_account_add(struct doc_account *acc, struct evbuffer *buf, char *doc, size_t len);

/* Send doc (malloc'd, charged len, taken over) as the JSON answer. */
void reply_counted(struct doc_account *acc, struct evhttp_request *req, int status, char *doc,
		   size_t len);

/* fetchd's own small answers, not charged to the budget: a document
 * (malloc'd, taken over), an error document (with Retry-After for
 * overloaded), an object (taken over). */
void reply_doc(struct evhttp_request *req, int status, char *doc, size_t len);
void reply_error(struct evhttp_request *req, enum fetchd_err err, const char *message);
void reply_json(struct evhttp_request *req, int status, json_t *obj);

/* The reason phrase of fetchd's own answers ("Error" for a status
 * without one). */
const char *reply_reason(int status);

#endif
