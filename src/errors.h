#ifndef FETCHD_ERRORS_H
#define FETCHD_ERRORS_H

#include <jansson.h>
#include <stddef.h>

/* SPEC section 2's error table. */
enum fetchd_err {
	ERR_NONE = 0,
	ERR_INVALID_JSON,
	ERR_INVALID_REQUEST,
	ERR_UNSUPPORTED_SCHEME,
	ERR_UNAUTHORIZED,
	ERR_DESTINATION_DENIED,
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_REQUEST_TOO_LARGE,
	ERR_OVERLOADED,
	ERR_SHUTTING_DOWN,
	ERR_DNS_FAILURE,
	ERR_CONNECT_FAILED,
	ERR_TLS_ERROR,
	ERR_TOO_MANY_REDIRECTS,
	ERR_RESPONSE_TOO_LARGE,
	ERR_UPSTREAM_ERROR,
	ERR_UPSTREAM_TIMEOUT,
	ERR_LOOP_DETECTED,
	/* never sent: the client left (or its fetch was aborted for it); its
	 * own outcome in the access log and the metrics, as nginx's 499 */
	ERR_CLIENT_CLOSED,
	ERR__COUNT
};

/* The one outcome of a transient lack of memory, wherever it happens (the
 * request's validation, the worker, the document): 503 overloaded, which
 * carries Retry-After, since retrying later can work; never the client's
 * mistake (400) nor the upstream's (502). */
#define ERR_NO_MEMORY ERR_OVERLOADED
#define ERR_NO_MEMORY_MESSAGE "out of memory"

/* "invalid_json", ... */
const char *err_code_name(enum fetchd_err err);

/* 400, 401, 403, 404, 405, 413, 502, 503, 504, 508. */
int err_http_status(enum fetchd_err err);

/* {"error": {"code": ..., "message": ..., <extra's members>}} as a JSON
 * object. extra may be NULL; its members are copied (extra is not
 * stolen). Never NULL. */
json_t *err_object(enum fetchd_err err, const char *message, json_t *extra);

/* The same, serialized. Returns a malloc'd buffer and its length. */
char *err_document(enum fetchd_err err, const char *message, json_t *extra, size_t *len);

#endif
