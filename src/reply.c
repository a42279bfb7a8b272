/* fetchd's answers on the loop thread: JSON documents to evhttp, with the
 * budget account of the fetch documents libevent holds until written. */
#include "reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "http_status.h"
#include "seams.h"

struct doc_account {
	struct budget *budget;
	void (*written)(void *arg); /* NULL once the owner released it */
	void *written_arg;
	bool released;
	uint64_t bytes; /* held by libevent */
	uint64_t docs;
	uint64_t written_bytes;
};

struct doc_account *doc_account_new(uint64_t limit, void (*written)(void *arg), void *arg)
{
	struct doc_account *acc = calloc(1, sizeof(*acc));

	if (acc == NULL)
		return NULL;
	acc->budget = budget_new(limit);
	if (acc->budget == NULL) {
		free(acc);
		return NULL;
	}
	acc->written = written;
	acc->written_arg = arg;
	return acc;
}

static void doc_account_free(struct doc_account *acc)
{
	budget_free(acc->budget);
	free(acc);
}

void doc_account_release(struct doc_account *acc)
{
	if (acc == NULL)
		return;
	acc->written = NULL;
	acc->released = true;
	if (acc->docs == 0)
		doc_account_free(acc);
}

struct budget *doc_account_budget(const struct doc_account *acc)
{
	return acc->budget;
}

uint64_t doc_account_held(const struct doc_account *acc)
{
	return acc->docs;
}

uint64_t doc_account_written_bytes(const struct doc_account *acc)
{
	return acc->written_bytes;
}

static void free_doc(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
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
	if (acc->written != NULL)
		acc->written(acc->written_arg);
	else if (acc->released && acc->docs == 0)
		doc_account_free(acc);
}

int doc_account_add(struct doc_account *acc, struct evbuffer *buf, char *doc, size_t len)
{
	if (buf == NULL || evbuffer_add_reference(buf, doc, len, free_counted_doc, acc) != 0) {
		free(doc);
		budget_release(acc->budget, len);
		return -1;
	}
	acc->bytes += len;
	acc->docs++;
	return 0;
}

const char *reply_reason(int status)
{
	const char *phrase = http_reason_phrase(status);

	return *phrase ? phrase : "Error";
}

static void add_json_type(struct evhttp_request *req)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json; charset=utf-8");
}

void reply_counted(struct doc_account *acc, struct evhttp_request *req, int status, char *doc,
		   size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	add_json_type(req);
	doc_account_add(acc, buf, doc, len);
	seams_send_reply_now(req, status, reply_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

void reply_doc(struct evhttp_request *req, int status, char *doc, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	add_json_type(req);
	if (buf == NULL || evbuffer_add_reference(buf, doc, len, free_doc, NULL) != 0)
		free(doc);
	seams_send_reply_now(req, status, reply_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

void reply_error(struct evhttp_request *req, enum fetchd_err err, const char *message)
{
	size_t len;
	char *doc = err_document(err, message, NULL, &len);

	if (err == ERR_OVERLOADED)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
	reply_doc(req, err_http_status(err), doc, len);
}

void reply_json(struct evhttp_request *req, int status, json_t *obj)
{
	char *doc = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));

	json_decref(obj);
	if (doc == NULL) {
		reply_error(req, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
		return;
	}
	reply_doc(req, status, doc, strlen(doc));
}
