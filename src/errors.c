/* The error table of SPEC section 2 (code, HTTP status) and the error
 * documents built from it. */
#include "errors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"

struct err_entry {
	const char *name;
	int status;
};

/* SPEC section 2's error table, indexed by enum fetchd_err. */
static const struct err_entry err_table[ERR__COUNT] = {
	[ERR_NONE] = {"internal_error", 500},
	[ERR_INVALID_JSON] = {"invalid_json", 400},
	[ERR_INVALID_REQUEST] = {"invalid_request", 400},
	[ERR_UNSUPPORTED_SCHEME] = {"unsupported_scheme", 400},
	[ERR_UNAUTHORIZED] = {"unauthorized", 401},
	[ERR_DESTINATION_DENIED] = {"destination_denied", 403},
	[ERR_NOT_FOUND] = {"not_found", 404},
	[ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
	[ERR_REQUEST_TOO_LARGE] = {"request_too_large", 413},
	[ERR_OVERLOADED] = {"overloaded", 503},
	[ERR_SHUTTING_DOWN] = {"shutting_down", 503},
	[ERR_DNS_FAILURE] = {"dns_failure", 502},
	[ERR_CONNECT_FAILED] = {"connect_failed", 502},
	[ERR_TLS_ERROR] = {"tls_error", 502},
	[ERR_TOO_MANY_REDIRECTS] = {"too_many_redirects", 502},
	[ERR_RESPONSE_TOO_LARGE] = {"response_too_large", 502},
	[ERR_UPSTREAM_ERROR] = {"upstream_error", 502},
	[ERR_UPSTREAM_TIMEOUT] = {"upstream_timeout", 504},
	/* a request that already passed through this fetchd (its Via);
	 * 508 Loop Detected as RFC 5842 section 7.2 defines it */
	[ERR_LOOP_DETECTED] = {"loop_detected", 508},
	/* nginx's 499 "client closed request": nobody reads this answer */
	[ERR_CLIENT_CLOSED] = {"client_closed", 499},
};

static const struct err_entry *err_entry_of(enum fetchd_err err)
{
	if ((unsigned)err >= ERR__COUNT)
		return &err_table[ERR_NONE];
	return &err_table[err];
}

/* ERR_NONE and out-of-range values are "internal_error" (500): a caller bug
 * still gives the client a well-formed answer. */
const char *err_code_name(enum fetchd_err err)
{
	return err_entry_of(err)->name;
}

int err_http_status(enum fetchd_err err)
{
	return err_entry_of(err)->status;
}

/* A JSON string of msg made valid UTF-8 by fetchd's one policy
 * (charset_repair_utf8), so that a message quoting upstream bytes never
 * vanishes. NULL on out of memory. */
static json_t *err_message_string(const char *msg)
{
	char *copy;
	size_t n;
	const char *text = charset_repair_utf8(msg, strlen(msg), &n, &copy);
	json_t *s = text != NULL ? json_stringn(text, n) : NULL;

	free(copy);
	return s;
}

/* On out of memory the answer is json_null() (a static singleton), never
 * NULL. */
json_t *err_object(enum fetchd_err err, const char *message, json_t *extra)
{
	json_t *doc = NULL, *inner = NULL;

	if (message == NULL)
		message = err_code_name(err);
	doc = json_object();
	inner = json_object();
	if (doc == NULL || inner == NULL)
		goto bad;
	if (json_object_set_new(inner, "code", json_string(err_code_name(err))) != 0 ||
	    json_object_set_new(inner, "message", err_message_string(message)) != 0)
		goto bad;
	/* extra may not override code or message. */
	if (json_is_object(extra) && json_object_update_missing(inner, extra) != 0)
		goto bad;
	if (json_object_set_new(doc, "error", inner) != 0) {
		inner = NULL; /* set_new consumed it even on failure */
		goto bad;
	}
	return doc;
bad:
	json_decref(inner);
	json_decref(doc);
	return json_null();
}

/* Never NULL: when the document cannot be built, a fixed-shape document
 * with the code and "out of memory" is returned instead; when even that
 * cannot be allocated, the process aborts (there is nothing to answer
 * with). */
char *err_document(enum fetchd_err err, const char *message, json_t *extra, size_t *len)
{
	json_t *doc = NULL;
	char *out = NULL;
	size_t cap;
	int n;

	doc = err_object(err, message, extra);
	if (json_is_object(doc))
		out = json_dumps(doc, JSON_COMPACT);
	if (out != NULL)
		goto done;
	cap = 96;
	out = malloc(cap);
	if (out == NULL)
		abort();
	n = snprintf(out, cap, "{\"error\":{\"code\":\"%s\",\"message\":\"out of memory\"}}",
		     err_code_name(err));
	if (n < 0 || (size_t)n >= cap)
		abort();
done:
	json_decref(doc);
	if (len != NULL)
		*len = strlen(out);
	return out;
}
