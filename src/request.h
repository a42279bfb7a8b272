#ifndef FETCHD_REQUEST_H
#define FETCHD_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "http.h"
#include "retry.h"

struct fetchd_config;

enum body_mode {
	BODY_MODE_AUTO = 0,
	BODY_MODE_TEXT,
	BODY_MODE_BASE64,
	BODY_MODE_NONE,
};

/* The request field http_version: which HTTP version curl offers. */
enum request_http_version {
	REQUEST_HTTP_AUTO = 0, /* "auto": h2 through ALPN over https, else 1.1 */
	REQUEST_HTTP_1_1,      /* "1.1" */
	REQUEST_HTTP_2,	       /* "2": ALPN h2 over https, an h2c Upgrade over http */
};

/* Top-level response fields a client may select with "fields". */
enum response_field {
	FIELD_URL = 1u << 0,
	FIELD_STATUS = 1u << 1,
	FIELD_REASON = 1u << 2,
	FIELD_OK = 1u << 3,
	FIELD_HTTP_VERSION = 1u << 4,
	FIELD_HEADERS = 1u << 5,
	FIELD_HEADER_LIST = 1u << 6,
	FIELD_HISTORY = 1u << 7,
	FIELD_ENCODING = 1u << 8,
	FIELD_APPARENT_ENCODING = 1u << 9,
	FIELD_TEXT = 1u << 10,
	FIELD_CONTENT_BASE64 = 1u << 11,
	FIELD_JSON = 1u << 12,
	FIELD_COOKIES = 1u << 13,
	FIELD_LINKS = 1u << 14,
	FIELD_SIZE = 1u << 15,
	FIELD_TRUNCATED = 1u << 16,
	FIELD_ELAPSED_MS = 1u << 17,
	FIELD_TIMING = 1u << 18,
	FIELD_REMOTE = 1u << 19,
	FIELD_WORKER = 1u << 20,
	FIELD_TLS = 1u << 21,
	FIELD_ATTEMPTS = 1u << 22, /* written only when the fetch may retry */
	FIELD_ALL = (1u << 23) - 1,
};

/* The name of a field bit ("status"), or NULL. */
const char *request_field_name(unsigned field_bit);

/* Every argument of one fetch, bound before it is queued (the partial of
 * run_in_executor(pool, partial(requests.get, url, **kw))). Limits are
 * already capped by the configuration. */
struct fetch_request {
	/* absolute http(s) URL: as given when plain, else rebuilt by libcurl
	 * with the params appended */
	char *url;
	char *host;   /* its host, as libcurl's URL parser gives it */
	char *method; /* upper-case */
	struct header_field *headers;
	size_t n_headers;
	char *body; /* NULL when the request has none */
	size_t body_len;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms; /* total, queue wait included */
	bool follow_redirects;
	unsigned max_redirects;
	uint64_t max_bytes; /* effective cap on the decoded body */
	bool truncate;	    /* over max_bytes: cut and flag (true) or fail */
	bool verify_tls;
	bool decompress;
	enum body_mode body_mode;
	enum request_http_version http_version;
	unsigned fields;	   /* enum response_field bits */
	char *pool;		   /* "default" or a [pool.NAME]; NULL: chosen by host */
	struct retry_policy retry; /* [fetch] retry_* under the request's "retry" */
};

/* A validation failure: the code and a sentence naming the field. */
struct request_error {
	enum fetchd_err code;
	char message[256];
};

/* Validate a fetch request object against SPEC section 2's strict-input
 * rules and cfg's limits, and bind it. Returns the request, or NULL with
 * err filled (ERR_INVALID_REQUEST or ERR_UNSUPPORTED_SCHEME). */
struct fetch_request *request_from_json(const json_t *obj, const struct fetchd_config *cfg,
					struct request_error *err);

/* Parse a client body with the rules of SPEC (duplicate keys rejected,
 * \u0000 allowed so it can be rejected where it matters). NULL with err
 * filled (ERR_INVALID_JSON) on a syntax error. */
json_t *request_parse_body(const char *buf, size_t len, struct request_error *err);

void request_free(struct fetch_request *r);

#endif
