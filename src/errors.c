/* The error table of SPEC section 2 (code, HTTP status) and the error
 * documents built from it. */
#include "errors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not valid UTF-8 (RFC 3629: no overlongs, surrogates or
 * code points above U+10FFFF). */
static size_t err_utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string of msg with every byte that is not valid UTF-8 replaced by
 * '?', so that a message quoting upstream bytes never vanishes. */
static json_t *err_message_string(const char *msg)
{
	size_t n = strlen(msg);
	char *copy = NULL;
	json_t *s = NULL;

	s = json_stringn(msg, n);
	if (s != NULL)
		goto done;
	copy = malloc(n + 1);
	if (copy == NULL)
		goto done;
	for (size_t i = 0; i < n;) {
		size_t len = err_utf8_seq_len((const unsigned char *)msg + i, n - i);

		if (len == 0) {
			copy[i] = '?';
			len = 1;
		} else {
			memcpy(copy + i, msg + i, len);
		}
		i += len;
	}
	copy[n] = '\0';
	s = json_stringn(copy, n);
done:
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
