/* A client's fetch request: strict JSON validation (SPEC section 2,
 * "Strict input") and binding into struct fetch_request, the partial that
 * a worker runs. Runs on the loop thread, so every step is linear in the
 * request's size. */
#include "request.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "config.h"
#include "url.h"

#define REQUEST_MAX_HEADERS 100
/* Longer URLs are refused by most servers (RFC 9110 section 4.1 suggests
 * supporting 8000 octets); the cap keeps a request's own size bounded. */
#define REQUEST_MAX_URL 16384
#define REQUEST_MAX_HEADER_NAME 256
#define REQUEST_MAX_HEADER_VALUE 8192

static const char *const request_fields_allowed[] = {
	"url",
	"method",
	"params",
	"headers",
	"body",
	"body_base64",
	"json",
	"timeout",
	"follow_redirects",
	"max_redirects",
	"max_bytes",
	"verify_tls",
	"decompress",
	"body_mode",
	"fields",
	"pool",
	"http_version",
	"retry",
	"retry_non_idempotent",
};

static const char *const request_methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

/* Set by fetchd itself: a client value would break the message framing
 * (RFC 9112 section 6, RFC 9110 section 7.6.1). */
static const char *const request_framing_headers[] = {
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
	"TE",	"Trailer",	  "Proxy-Connection",
};

/* Indexed by bit number of enum response_field. */
static const char *const request_field_names[] = {
	"url",		"status",
	"reason",	"ok",
	"http_version", "headers",
	"header_list",	"history",
	"encoding",	"apparent_encoding",
	"text",		"content_base64",
	"json",		"cookies",
	"links",	"size",
	"truncated",	"elapsed_ms",
	"timing",	"remote",
	"worker",	"tls",
	"attempts",
};

#define REQUEST_COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *request_field_name(unsigned field_bit)
{
	for (size_t i = 0; i < REQUEST_COUNT(request_field_names); i++)
		if (field_bit == (1u << i))
			return request_field_names[i];
	return NULL;
}

void request_free(struct fetch_request *r)
{
	if (r == NULL)
		return;
	free(r->url);
	free(r->host);
	free(r->method);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	free(r->pool);
	free(r);
}

/* Fill err and return -1, so that validators can "return request_fail()". */
static int request_fail(struct request_error *err, enum fetchd_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int request_fail(struct request_error *err, enum fetchd_err code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

static int request_oom(struct request_error *err)
{
	return request_fail(err, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE);
}

/* A NUL-terminated copy of n bytes (which may contain NUL). */
static char *request_memdup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static bool request_has_nul(const json_t *s)
{
	return memchr(json_string_value(s), '\0', json_string_length(s)) != NULL;
}

/* ---- url and params ---- */

/* application/x-www-form-urlencoded, as Python's urlencode (quote_plus):
 * unreserved bytes stay, space becomes '+', everything else %XX. Returns
 * the encoded length; with out NULL, only counts it. */
static size_t request_form_encode(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (out != NULL)
				out[o] = (char)c;
			o++;
		} else if (c == ' ') {
			if (out != NULL)
				out[o] = '+';
			o++;
		} else {
			if (out != NULL) {
				out[o] = '%';
				out[o + 1] = hex[c >> 4];
				out[o + 2] = hex[c & 15];
			}
			o += 3;
		}
	}
	return o;
}

/* The text of a param value: string, integer, real (shortest form that
 * reads back the same) or boolean. buf holds scalar renderings. */
static int request_param_text(const json_t *v, char *buf, size_t buflen, const char **text,
			      size_t *len)
{
	if (json_is_string(v)) {
		*text = json_string_value(v);
		*len = json_string_length(v);
		return request_has_nul(v) ? -1 : 0;
	}
	if (json_is_integer(v)) {
		snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		double d = json_real_value(v);

		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, buflen, "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
	} else if (json_is_boolean(v)) {
		snprintf(buf, buflen, "%s", json_is_true(v) ? "true" : "false");
	} else {
		return -1;
	}
	*text = buf;
	*len = strlen(buf);
	return 0;
}

/* Append "name=value", form-encoded, to the params' part of the query in
 * q (*len bytes so far), after an '&' unless it is the first. Fails,
 * naming params, when the part would pass cap bytes. */
static int request_append_param(char *q, size_t *len, size_t cap, const char *name, size_t name_len,
				const json_t *v, struct request_error *err)
{
	char num[64];
	const char *text = NULL;
	size_t text_len = 0, o = *len;

	if (memchr(name, '\0', name_len) != NULL)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'params' has a name with a NUL byte");
	if (request_param_text(v, num, sizeof(num), &text, &text_len) != 0)
		return request_fail(
			err, ERR_INVALID_REQUEST,
			"param '%.64s' must be a string (without NUL), number or boolean", name);
	if ((o > 0) + request_form_encode(NULL, name, name_len) + 1 +
		    request_form_encode(NULL, text, text_len) >
	    cap - o)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'params' makes the URL longer than %d bytes",
				    REQUEST_MAX_URL);
	if (o > 0)
		q[o++] = '&';
	o += request_form_encode(q + o, name, name_len);
	q[o++] = '=';
	o += request_form_encode(q + o, text, text_len);
	*len = o;
	return 0;
}

static const char request_params_shape[] =
	"field 'params' must be an object or an array of [name, value] pairs";

/* Append params to u's query. Their part is built in one pass, the URL cap
 * checked as it grows, and appended with one CURLU_APPENDQUERY (which adds
 * the '&' after a query that does not end in one): one call per param
 * copied the whole query each time, and 60k params took the loop thread
 * 0.45 s. Already encoded, so no CURLU_URLENCODE, which would encode a '='
 * in a name and keep an '&' in it. */
static int request_append_params(CURLU *u, const json_t *params, struct request_error *err)
{
	char *q = NULL, *old = NULL;
	size_t len = 0, cap = REQUEST_MAX_URL, key_len, i;
	const char *key;
	json_t *v;
	int rc = -1;

	if (!json_is_object(params) && !json_is_array(params)) {
		request_fail(err, ERR_INVALID_REQUEST, "%s", request_params_shape);
		goto done;
	}
	/* the query alone is part of the URL: what it leaves of the cap */
	if (curl_url_get(u, CURLUPART_QUERY, &old, 0) == CURLUE_OK)
		cap = strlen(old) + 1 < cap ? cap - strlen(old) - 1 : 0;
	q = malloc(cap + 1);
	if (q == NULL) {
		request_oom(err);
		goto done;
	}
	if (json_is_object(params)) {
		json_object_keylen_foreach((json_t *)params, key, key_len, v)
		{
			if (request_append_param(q, &len, cap, key, key_len, v, err) != 0)
				goto done;
		}
	} else {
		json_array_foreach (params, i, v) {
			const json_t *name = json_array_get(v, 0);

			if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(name)) {
				request_fail(err, ERR_INVALID_REQUEST, "%s", request_params_shape);
				goto done;
			}
			if (request_append_param(q, &len, cap, json_string_value(name),
						 json_string_length(name), json_array_get(v, 1),
						 err) != 0)
				goto done;
		}
	}
	q[len] = '\0';
	/* no params: the URL keeps its query (or its lack of one) */
	if (len > 0 && curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY) != CURLUE_OK) {
		request_fail(err, ERR_INVALID_REQUEST, "field 'params' cannot be appended");
		goto done;
	}
	rc = 0;
done:
	curl_free(old);
	free(q);
	return rc;
}

/* The scheme of an absolute URL (RFC 3986 section 3.1), lower-cased into
 * buf; -1 when s does not start with one. */
static int request_url_scheme(const char *s, char *buf, size_t buflen)
{
	size_t i = 0;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return -1;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
	       (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.') {
		if (i + 1 < buflen)
			buf[i] = (char)(s[i] | 0x20);
		i++;
	}
	if (s[i] != ':')
		return -1;
	buf[i + 1 < buflen ? i : buflen - 1] = '\0';
	return 0;
}

/* WHATWG URL's "ends in a number" rule: the last label of host (a final
 * '.' aside) is decimal digits or 0x and hex digits, so resolvers read the
 * whole host as an IPv4 address. */
static bool request_host_ends_in_number(const char *host)
{
	size_t n = strlen(host), start;
	bool hex;

	if (n > 0 && host[n - 1] == '.')
		n--;
	start = n;
	while (start > 0 && host[start - 1] != '.')
		start--;
	if (start == n)
		return false;
	hex = n - start >= 2 && host[start] == '0' && (host[start + 1] | 0x20) == 'x';
	for (size_t i = hex ? start + 2 : start; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if (!(c >= '0' && c <= '9') && !(hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
			return false;
	}
	return true;
}

/* A host with non-ASCII characters goes through IDNA (libidn2) when curl
 * resolves it. Refuse at validation a host curl cannot convert: each fetch
 * of it would fail later as a 502, and in the C locale fetchd runs in,
 * libidn2 converts none. Refuse too a host whose converted form is an IPv4
 * address: UTS #46 maps full-width digits to ASCII, so "１２７.0.0.1" is an
 * address that no reading of the URL's text sees as one. (libcurl 7.88
 * answers a failed CURLU_PUNYCODE conversion with CURLUE_OUT_OF_MEMORY.) */
static int request_check_idn_host(CURLU *u, const char *host, struct request_error *err)
{
	char *ace = NULL;
	bool ascii = true;
	int rc = -1;

	for (const char *c = host; *c != '\0'; c++)
		ascii = ascii && (unsigned char)*c < 0x80;
	if (ascii)
		return 0;
	if (curl_url_get(u, CURLUPART_HOST, &ace, CURLU_PUNYCODE) != CURLUE_OK) {
		request_fail(err, ERR_INVALID_REQUEST,
			     "field 'url': host '%.64s' cannot be converted to an ASCII (IDNA) "
			     "name; give it in its xn-- form",
			     host);
		goto done;
	}
	if (request_host_ends_in_number(ace)) {
		request_fail(err, ERR_INVALID_REQUEST,
			     "field 'url': host '%.64s' is an IPv4 address spelled with non-ASCII "
			     "characters",
			     host);
		goto done;
	}
	rc = 0;
done:
	curl_free(ace);
	return rc;
}

/* The URL's text before any parsing: a string without spaces or control
 * characters, "scheme:" with a scheme the configuration allows. *ascii
 * says whether it is printable ASCII only (URLENCODE then leaves it as it
 * is). */
static int request_check_url_text(const json_t *url, const struct fetchd_config *cfg, bool *ascii,
				  struct request_error *err)
{
	const char *s = json_string_value(url);
	size_t n = json_string_length(url);
	char scheme[33];

	*ascii = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		*ascii = *ascii && c < 0x7f;
		if (c <= 0x20 || c == 0x7f)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'url' must not contain spaces or control "
					    "characters (NUL, CR, LF, ...); percent-encode them");
	}
	if (request_url_scheme(s, scheme, sizeof(scheme)) != 0)
		return request_fail(
			err, ERR_INVALID_REQUEST,
			"field 'url' must be an absolute URL starting with http:// or https://");
	if (!url_scheme_allowed(cfg, scheme))
		return request_fail(err, ERR_UNSUPPORTED_SCHEME,
				    "field 'url': scheme '%s' is not allowed", scheme);
	/* "http:///x": an empty authority, which libcurl would read as host
	 * "x". An http(s) URL with an empty host is invalid (RFC 9110 section
	 * 4.2.1, RFC 3986 section 3.2). */
	if (strncmp(s + strlen(scheme) + 1, "///", 3) == 0)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'url' has no host: nothing between '//' and the path");
	return 0;
}

/* The parsed URL's scheme again (curl's reading of it) and its host,
 * bound to r->host. */
static int request_bind_host(struct fetch_request *r, CURLU *u, const struct fetchd_config *cfg,
			     struct request_error *err)
{
	char *part = NULL;
	int rc = -1;

	if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
	    !url_scheme_allowed(cfg, part)) {
		request_fail(err, ERR_UNSUPPORTED_SCHEME,
			     "field 'url': scheme '%.32s' is not allowed",
			     part != NULL ? part : "");
		goto done;
	}
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK || part[0] == '\0') {
		request_fail(err, ERR_INVALID_REQUEST, "field 'url' has no host");
		goto done;
	}
	if (request_check_idn_host(u, part, err) != 0)
		goto done;
	r->host = strdup(part);
	if (r->host == NULL) {
		request_oom(err);
		goto done;
	}
	rc = 0;
done:
	curl_free(part);
	return rc;
}

/* Bind r->url: the URL as given (s) when it is plain, else curl's rebuilt
 * form with the params appended.
 * A plain URL is kept as given: curl would give it back the same, give or
 * take the normalization (dot segments, an empty path) it does again when
 * it fetches, and rebuilding it is the costliest step on the loop. Other
 * spellings ("HTTP:", "http:/host") and URLs with params are rebuilt, so a
 * bound URL always starts "http://" or "https://". */
static int request_bind_full_url(struct fetch_request *r, CURLU *u, const char *s, bool ascii,
				 const json_t *params, struct request_error *err)
{
	char *part = NULL;
	int rc = -1;

	if (params != NULL || !ascii ||
	    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)) {
		if (params != NULL && request_append_params(u, params, err) != 0)
			goto done;
		if (curl_url_get(u, CURLUPART_URL, &part, 0) != CURLUE_OK) {
			request_fail(err, ERR_INVALID_REQUEST, "field 'url' is not a valid URL");
			goto done;
		}
		s = part;
	}
	if (strlen(s) > REQUEST_MAX_URL) {
		request_fail(err, ERR_INVALID_REQUEST, "field 'url'%s is longer than %d bytes",
			     params != NULL ? " with its 'params'" : "", REQUEST_MAX_URL);
		goto done;
	}
	r->url = strdup(s);
	if (r->url == NULL) {
		request_oom(err);
		goto done;
	}
	rc = 0;
done:
	curl_free(part);
	return rc;
}

static int request_bind_url(struct fetch_request *r, const json_t *url, const json_t *params,
			    const struct fetchd_config *cfg, struct request_error *err)
{
	CURLU *u = NULL;
	CURLUcode uc;
	const char *s;
	bool ascii;
	int rc = -1;

	if (url == NULL)
		return request_fail(err, ERR_INVALID_REQUEST, "field 'url' is required");
	if (!json_is_string(url))
		return request_fail(err, ERR_INVALID_REQUEST, "field 'url' must be a string");
	if (request_check_url_text(url, cfg, &ascii, err) != 0)
		return -1;
	s = json_string_value(url);
	u = curl_url();
	if (u == NULL)
		return request_oom(err);
	/* URLENCODE percent-encodes non-ASCII bytes in path and query and keeps
	 * existing %XX escapes. */
	uc = curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE);
	if (uc != CURLUE_OK) {
		request_fail(err, ERR_INVALID_REQUEST, "field 'url' is not a valid URL: %s",
			     curl_url_strerror(uc));
		goto done;
	}
	if (request_bind_host(r, u, cfg, err) != 0 ||
	    request_bind_full_url(r, u, s, ascii, params, err) != 0)
		goto done;
	rc = 0;
done:
	curl_url_cleanup(u);
	return rc;
}

/* ---- headers ---- */

/* The next free header slot. The array has room for the client's maximum
 * plus the Content-Type fetchd may add. */
static struct header_field *request_header_slot(struct fetch_request *r)
{
	assert(r->n_headers <= REQUEST_MAX_HEADERS);
	if (r->headers == NULL) {
		r->headers = calloc(REQUEST_MAX_HEADERS + 1, sizeof(*r->headers));
		if (r->headers == NULL)
			return NULL;
	}
	return &r->headers[r->n_headers];
}

static int request_add_header(struct fetch_request *r, const char *name, size_t name_len,
			      const json_t *value, struct request_error *err)
{
	struct header_field *h;
	const char *v;
	size_t v_len;

	if (memchr(name, '\0', name_len) != NULL || memchr(name, '\r', name_len) != NULL ||
	    memchr(name, '\n', name_len) != NULL)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "header name '%.64s' contains a CR, LF or NUL byte", name);
	if (name_len == 0 || name_len > REQUEST_MAX_HEADER_NAME)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "header names must be 1 to %d bytes long",
				    REQUEST_MAX_HEADER_NAME);
	for (size_t i = 0; i < name_len; i++)
		if (!http_is_tchar((unsigned char)name[i]))
			return request_fail(err, ERR_INVALID_REQUEST,
					    "header name '%.64s' is not an RFC 9110 token", name);
	for (size_t i = 0; i < REQUEST_COUNT(request_framing_headers); i++)
		if (strcasecmp(name, request_framing_headers[i]) == 0)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "header '%s' is set by fetchd",
					    request_framing_headers[i]);
	if (!json_is_string(value))
		return request_fail(err, ERR_INVALID_REQUEST, "header '%.64s' must be a string",
				    name);
	v = json_string_value(value);
	v_len = json_string_length(value);
	if (v_len > REQUEST_MAX_HEADER_VALUE)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "header '%.64s' is longer than %d bytes", name,
				    REQUEST_MAX_HEADER_VALUE);
	for (size_t i = 0; i < v_len; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "header '%.64s' has a control character (CR, LF, "
					    "NUL, ...) in its value",
					    name);
	}
	if (r->n_headers >= REQUEST_MAX_HEADERS)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'headers' has more than %d headers",
				    REQUEST_MAX_HEADERS);
	h = request_header_slot(r);
	if (h == NULL)
		return request_oom(err);
	h->name = request_memdup(name, name_len);
	h->value = request_memdup(v, v_len);
	r->n_headers++; /* counted even when half-built, so request_free frees it */
	if (h->name == NULL || h->value == NULL)
		return request_oom(err);
	return 0;
}

static int request_bind_headers(struct fetch_request *r, const json_t *headers,
				struct request_error *err)
{
	const char *key;
	size_t key_len, i;
	json_t *v;

	if (json_is_object(headers)) {
		json_object_keylen_foreach((json_t *)headers, key, key_len, v)
		{
			if (request_add_header(r, key, key_len, v, err) != 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_array(headers))
		goto bad;
	json_array_foreach (headers, i, v) {
		const json_t *name = json_array_get(v, 0);

		if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(name))
			goto bad;
		if (request_add_header(r, json_string_value(name), json_string_length(name),
				       json_array_get(v, 1), err) != 0)
			return -1;
	}
	return 0;
bad:
	return request_fail(err, ERR_INVALID_REQUEST,
			    "field 'headers' must be an object or an array of [name, value] "
			    "string pairs");
}

static bool request_has_header(const struct fetch_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return true;
	return false;
}

/* ---- body ---- */

static int request_bind_body(struct fetch_request *r, const json_t *obj, struct request_error *err)
{
	const json_t *body = json_object_get(obj, "body");
	const json_t *b64 = json_object_get(obj, "body_base64");
	const json_t *js = json_object_get(obj, "json");
	bool bad;

	if ((body != NULL) + (b64 != NULL) + (js != NULL) > 1)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "at most one of body, body_base64, json may be given");
	if (body != NULL) {
		if (!json_is_string(body))
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'body' must be a string");
		r->body_len = json_string_length(body);
		r->body = request_memdup(json_string_value(body), r->body_len);
		if (r->body == NULL)
			return request_oom(err);
	} else if (b64 != NULL) {
		if (!json_is_string(b64))
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'body_base64' must be a string");
		r->body = base64_decode(json_string_value(b64), json_string_length(b64),
					&r->body_len, &bad);
		if (r->body == NULL && bad)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'body_base64' is not valid base64 (RFC 4648, "
					    "with padding, no whitespace)");
		if (r->body == NULL)
			return request_oom(err);
	} else if (js != NULL) {
		r->body = json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY);
		if (r->body == NULL)
			return request_oom(err);
		r->body_len = strlen(r->body);
		if (!request_has_header(r, "Content-Type")) {
			struct header_field *h = request_header_slot(r);

			if (h == NULL)
				return request_oom(err);
			h->name = strdup("Content-Type");
			h->value = strdup("application/json");
			r->n_headers++;
			if (h->name == NULL || h->value == NULL)
				return request_oom(err);
		}
	}
	return 0;
}

/* ---- scalars ---- */

static int request_get_bool(const json_t *obj, const char *field, bool *out,
			    struct request_error *err)
{
	const json_t *v = json_object_get(obj, field);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field '%s' must be a boolean (true or false)", field);
	*out = json_is_true(v);
	return 0;
}

/* Seconds (a positive JSON number) to milliseconds, rounded up and capped. */
static int request_seconds_ms(const json_t *v, const char *field, uint64_t cap, uint64_t *out,
			      struct request_error *err)
{
	double ms;
	uint64_t whole;

	if (!json_is_number(v) || json_number_value(v) <= 0)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field '%s' must be a positive number of seconds", field);
	ms = json_number_value(v) * 1000.0;
	if (ms >= (double)cap) {
		*out = cap;
		return 0;
	}
	whole = (uint64_t)ms;
	*out = (double)whole < ms ? whole + 1 : whole;
	return 0;
}

static int request_bind_timeout(struct fetch_request *r, const json_t *t,
				const struct fetchd_config *cfg, struct request_error *err)
{
	const char *key;
	json_t *v;

	r->timeout_ms = cfg->timeout_ms;
	r->connect_timeout_ms = cfg->connect_timeout_ms;
	if (t == NULL) {
		/* nothing */
	} else if (json_is_object(t)) {
		json_object_foreach ((json_t *)t, key, v) {
			if (strcmp(key, "connect") == 0) {
				if (request_seconds_ms(v, "timeout.connect",
						       cfg->connect_timeout_ms,
						       &r->connect_timeout_ms, err) != 0)
					return -1;
			} else if (strcmp(key, "total") == 0) {
				if (request_seconds_ms(v, "timeout.total", cfg->timeout_ms,
						       &r->timeout_ms, err) != 0)
					return -1;
			} else {
				return request_fail(err, ERR_INVALID_REQUEST,
						    "unknown field 'timeout.%.64s' (expected "
						    "'connect' or 'total')",
						    key);
			}
		}
	} else if (json_is_number(t)) {
		if (request_seconds_ms(t, "timeout", cfg->timeout_ms, &r->timeout_ms, err) != 0)
			return -1;
	} else {
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'timeout' must be a positive number of seconds or "
				    "{\"connect\": n, \"total\": n}");
	}
	if (r->connect_timeout_ms > r->timeout_ms)
		r->connect_timeout_ms = r->timeout_ms;
	return 0;
}

static int request_bind_enum_string(const json_t *v, const char *field, const char *const *names,
				    size_t n_names, size_t *index, struct request_error *err)
{
	if (!json_is_string(v))
		return request_fail(err, ERR_INVALID_REQUEST, "field '%s' must be a string", field);
	for (size_t i = 0; i < n_names; i++) {
		if (strlen(names[i]) == json_string_length(v) &&
		    strcasecmp(names[i], json_string_value(v)) == 0) {
			*index = i;
			return 0;
		}
	}
	return request_fail(err, ERR_INVALID_REQUEST, "field '%s': unknown value '%.64s'", field,
			    json_string_value(v));
}

static int request_bind_fields(struct fetch_request *r, const json_t *f, struct request_error *err)
{
	size_t i;
	json_t *v;

	if (!json_is_array(f))
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'fields' must be an array of strings");
	r->fields = 0;
	json_array_foreach (f, i, v) {
		unsigned bit = 0;

		if (!json_is_string(v))
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'fields' must be an array of strings");
		for (size_t k = 0; k < REQUEST_COUNT(request_field_names); k++) {
			if (strlen(request_field_names[k]) == json_string_length(v) &&
			    strcmp(request_field_names[k], json_string_value(v)) == 0)
				bit = 1u << k;
		}
		if (bit == 0)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'fields': unknown field name '%.64s'",
					    json_string_value(v));
		r->fields |= bit;
	}
	return 0;
}

static int request_check_fields(const json_t *obj, struct request_error *err)
{
	const char *key;
	size_t key_len;
	json_t *v;

	json_object_keylen_foreach((json_t *)obj, key, key_len, v)
	{
		bool known = false;

		for (size_t i = 0; i < REQUEST_COUNT(request_fields_allowed); i++)
			if (strlen(request_fields_allowed[i]) == key_len &&
			    memcmp(request_fields_allowed[i], key, key_len) == 0)
				known = true;
		if (!known)
			return request_fail(err, ERR_INVALID_REQUEST, "unknown field '%.64s'", key);
	}
	return 0;
}

/* A request with every default of SPEC section 2, capped by cfg. */
static struct fetch_request *request_new(const struct fetchd_config *cfg)
{
	struct fetch_request *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->follow_redirects = true;
	r->max_redirects = cfg->max_redirects;
	r->max_bytes = cfg->max_response_bytes;
	r->truncate = false;
	r->verify_tls = cfg->verify_tls;
	r->decompress = true;
	r->body_mode = BODY_MODE_AUTO;
	r->fields = FIELD_ALL;
	return r;
}

static int request_bind_method(struct fetch_request *r, const json_t *v, struct request_error *err)
{
	size_t idx = 0;

	if (v != NULL && request_bind_enum_string(v, "method", request_methods,
						  REQUEST_COUNT(request_methods), &idx, err) != 0)
		return -1;
	r->method = strdup(request_methods[idx]);
	return r->method != NULL ? 0 : request_oom(err);
}

/* max_redirects and max_bytes: a client may lower the server's caps, never
 * raise them. */
static int request_bind_limits(struct fetch_request *r, const json_t *obj,
			       const struct fetchd_config *cfg, struct request_error *err)
{
	const json_t *v = json_object_get(obj, "max_redirects");

	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'max_redirects' must be a non-negative integer");
		if ((uint64_t)json_integer_value(v) < cfg->max_redirects)
			r->max_redirects = (unsigned)json_integer_value(v);
	}
	v = json_object_get(obj, "max_bytes");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'max_bytes' must be a positive integer");
		/* SPEC 2, Limits: below the server's cap the client chose a cut. */
		if ((uint64_t)json_integer_value(v) < cfg->max_response_bytes) {
			r->max_bytes = (uint64_t)json_integer_value(v);
			r->truncate = true;
		}
	}
	return 0;
}

/* verify_tls (false only when the server allows it) and decompress. */
static int request_bind_transfer_flags(struct fetch_request *r, const json_t *obj,
				       const struct fetchd_config *cfg, struct request_error *err)
{
	if (request_get_bool(obj, "verify_tls", &r->verify_tls, err) != 0)
		return -1;
	if (!r->verify_tls && !cfg->allow_insecure && json_object_get(obj, "verify_tls") != NULL)
		return request_fail(err, ERR_INVALID_REQUEST,
				    "verify_tls: false is not allowed by this server "
				    "(allow_insecure = false)");
	return request_get_bool(obj, "decompress", &r->decompress, err);
}

static int request_bind_body_mode(struct fetch_request *r, const json_t *v,
				  struct request_error *err)
{
	static const char *const body_modes[] = {"auto", "text", "base64", "none"};

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return request_fail(err, ERR_INVALID_REQUEST, "field 'body_mode' must be a string");
	for (size_t i = 0; i < REQUEST_COUNT(body_modes); i++) {
		if (strlen(body_modes[i]) == json_string_length(v) &&
		    strcmp(body_modes[i], json_string_value(v)) == 0) {
			r->body_mode = (enum body_mode)i; /* same order as the enum */
			return 0;
		}
	}
	return request_fail(err, ERR_INVALID_REQUEST,
			    "field 'body_mode' must be one of auto, text, base64, none "
			    "(got '%.64s')",
			    json_string_value(v));
}

/* "auto", "1.1" or "2", exactly (a version is not a word: no case folding). */
static int request_bind_http_version(struct fetch_request *r, const json_t *v,
				     struct request_error *err)
{
	static const char *const versions[] = {"auto", "1.1", "2"};

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'http_version' must be a string");
	for (size_t i = 0; i < REQUEST_COUNT(versions); i++) {
		if (strlen(versions[i]) == json_string_length(v) &&
		    strcmp(versions[i], json_string_value(v)) == 0) {
			/* same order as the enum */
			r->http_version = (enum request_http_version)i;
			return 0;
		}
	}
	return request_fail(err, ERR_INVALID_REQUEST,
			    "field 'http_version' must be one of auto, 1.1, 2 (got '%.64s')",
			    json_string_value(v));
}

/* "retry.on": a list of "connect", "timeout", "reset" and statuses
 * 400..599 (integers), replacing [fetch] retry_on. */
static int request_bind_retry_on(struct fetch_request *r, const json_t *v,
				 struct request_error *err)
{
	const json_t *item;
	size_t i;

	if (!json_is_array(v))
		return request_fail(err, ERR_INVALID_REQUEST, "field 'retry.on' must be an array");
	r->retry.on_kinds = 0;
	memset(r->retry.on_status, 0, sizeof(r->retry.on_status));
	json_array_foreach (v, i, item) {
		if (json_is_integer(item) && json_integer_value(item) >= RETRY_STATUS_MIN &&
		    json_integer_value(item) <= RETRY_STATUS_MAX) {
			retry_on_add_status(&r->retry, (int)json_integer_value(item));
		} else if (!json_is_string(item) || request_has_nul(item) ||
			   (json_string_value(item)[0] >= '0' &&
			    json_string_value(item)[0] <= '9') ||
			   retry_on_add(&r->retry, json_string_value(item)) != 0) {
			return request_fail(err, ERR_INVALID_REQUEST,
					    "field 'retry.on' items must be \"connect\", "
					    "\"timeout\", \"reset\" or a status 400..599");
		}
	}
	return 0;
}

/* "retry": {"attempts", "backoff", "max_backoff", "on"}, each optional
 * over [fetch] retry_*; and "retry_non_idempotent". */
static int request_bind_retry(struct fetch_request *r, const json_t *obj,
			      const struct fetchd_config *cfg, struct request_error *err)
{
	const json_t *t = json_object_get(obj, "retry"), *v;
	const char *key;

	r->retry = cfg->retry;
	if (request_get_bool(obj, "retry_non_idempotent", &r->retry.non_idempotent, err) != 0)
		return -1;
	if (t == NULL)
		return 0;
	if (!json_is_object(t))
		return request_fail(err, ERR_INVALID_REQUEST,
				    "field 'retry' must be an object {\"attempts\": n, "
				    "\"backoff\": s, \"max_backoff\": s, \"on\": [...]}");
	json_object_foreach ((json_t *)t, key, v) {
		if (strcmp(key, "attempts") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > RETRY_MAX)
				return request_fail(err, ERR_INVALID_REQUEST,
						    "field 'retry.attempts' must be an integer "
						    "from 0 to %d",
						    RETRY_MAX);
			r->retry.attempts = (unsigned)json_integer_value(v);
		} else if (strcmp(key, "backoff") == 0 || strcmp(key, "max_backoff") == 0) {
			uint64_t *ms =
				key[0] == 'b' ? &r->retry.backoff_ms : &r->retry.max_backoff_ms;

			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 86400)
				return request_fail(err, ERR_INVALID_REQUEST,
						    "field 'retry.%s' must be a number of seconds "
						    "from 0 to 86400",
						    key);
			*ms = (uint64_t)(json_number_value(v) * 1000.0 + 0.5);
		} else if (strcmp(key, "on") == 0) {
			if (request_bind_retry_on(r, v, err) != 0)
				return -1;
		} else {
			return request_fail(err, ERR_INVALID_REQUEST,
					    "unknown field 'retry.%.64s' (expected 'attempts', "
					    "'backoff', 'max_backoff' or 'on')",
					    key);
		}
	}
	return 0;
}

static int request_bind_pool(struct fetch_request *r, const json_t *v,
			     const struct fetchd_config *cfg, struct request_error *err)
{
	const char *name;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return request_fail(err, ERR_INVALID_REQUEST, "field 'pool' must be a string");
	name = json_string_value(v);
	if (strlen(name) != json_string_length(v) ||
	    (strcmp(name, "default") != 0 && config_pool_find(cfg, name) == NULL))
		return request_fail(err, ERR_INVALID_REQUEST, "unknown pool '%.64s'", name);
	r->pool = strdup(name);
	return r->pool != NULL ? 0 : request_oom(err);
}

struct fetch_request *request_from_json(const json_t *obj, const struct fetchd_config *cfg,
					struct request_error *err)
{
	struct fetch_request *r = NULL;
	const json_t *v;

	if (!json_is_object(obj)) {
		request_fail(err, ERR_INVALID_REQUEST, "the fetch request must be a JSON object");
		goto bad;
	}
	if (request_check_fields(obj, err) != 0)
		goto bad;
	r = request_new(cfg);
	if (r == NULL) {
		request_oom(err);
		goto bad;
	}
	/* in this order: the first field that is wrong is the one named */
	if (request_bind_url(r, json_object_get(obj, "url"), json_object_get(obj, "params"), cfg,
			     err) != 0 ||
	    request_bind_method(r, json_object_get(obj, "method"), err) != 0)
		goto bad;
	v = json_object_get(obj, "headers");
	if (v != NULL && request_bind_headers(r, v, err) != 0)
		goto bad;
	if (request_bind_body(r, obj, err) != 0 ||
	    request_bind_timeout(r, json_object_get(obj, "timeout"), cfg, err) != 0 ||
	    request_get_bool(obj, "follow_redirects", &r->follow_redirects, err) != 0 ||
	    request_bind_limits(r, obj, cfg, err) != 0 ||
	    request_bind_transfer_flags(r, obj, cfg, err) != 0 ||
	    request_bind_body_mode(r, json_object_get(obj, "body_mode"), err) != 0 ||
	    request_bind_http_version(r, json_object_get(obj, "http_version"), err) != 0)
		goto bad;
	v = json_object_get(obj, "fields");
	if (v != NULL && request_bind_fields(r, v, err) != 0)
		goto bad;
	if (request_bind_pool(r, json_object_get(obj, "pool"), cfg, err) != 0 ||
	    request_bind_retry(r, obj, cfg, err) != 0)
		goto bad;
	return r;
bad:
	request_free(r);
	return NULL;
}

json_t *request_parse_body(const char *buf, size_t len, struct request_error *err)
{
	json_error_t e;
	json_t *doc;

	/* DECODE_ANY: a non-object top level is valid JSON and answered as
	 * invalid_request by request_from_json. */
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
	if (doc != NULL)
		return doc;
	switch (json_error_code(&e)) {
	case json_error_duplicate_key:
		request_fail(err, ERR_INVALID_REQUEST,
			     "duplicate key in the request (line %d, "
			     "column %d): %s",
			     e.line, e.column, e.text);
		break;
	case json_error_null_byte_in_key:
		/* "\u0000" is valid JSON; jansson just cannot hold it in a key. */
		request_fail(err, ERR_INVALID_REQUEST,
			     "a NUL byte in an object key is not allowed (line %d, column %d)",
			     e.line, e.column);
		break;
	case json_error_out_of_memory: request_oom(err); break;
	default:
		request_fail(err, ERR_INVALID_JSON, "invalid JSON at line %d, column %d: %s",
			     e.line, e.column, e.text);
		break;
	}
	return NULL;
}
