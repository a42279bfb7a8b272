/* The response document, built on the worker thread: every field a
 * blocking client computes lazily is computed here, so the loop thread
 * only writes bytes. */
#include "materialize.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "charset.h"
#include "links.h"

json_t *materialize_utf8_string(const char *bytes, size_t len)
{
	size_t n;
	char *text;
	json_t *str;

	if (charset_utf8_valid((const unsigned char *)bytes, len))
		return json_stringn(bytes, len);
	/* Header bytes that are not UTF-8 are read as ISO-8859-1, the
	 * historical header charset (RFC 9110 section 5.5), decoded the WHATWG
	 * way: "caf\xe9" stays "café" instead of vanishing. */
	text = charset_decode((const unsigned char *)bytes, len, "windows-1252", &n);
	if (text == NULL)
		return NULL;
	str = json_stringn(text, n);
	free(text);
	return str;
}

/* The media type of a Content-Type value, without parameters, in buf. */
static const char *media_type(const char *content_type, char *buf, size_t len)
{
	size_t n = 0;

	if (content_type == NULL)
		return NULL;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	while (content_type[n] && content_type[n] != ';' && content_type[n] != ' ' && n + 1 < len) {
		buf[n] = (char)tolower((unsigned char)content_type[n]);
		n++;
	}
	buf[n] = '\0';
	return buf;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool materialize_is_json_type(const char *content_type)
{
	char buf[128];
	const char *t = media_type(content_type, buf, sizeof(buf));
	const char *slash;

	if (t == NULL || (slash = strchr(t, '/')) == NULL)
		return false;
	return strcmp(slash, "/json") == 0 || ends_with(t, "+json");
}

bool materialize_is_text_type(const char *content_type)
{
	char buf[128];
	const char *t = media_type(content_type, buf, sizeof(buf));

	if (t == NULL)
		return false;
	return strncmp(t, "text/", 5) == 0 || materialize_is_json_type(content_type) ||
	       strcmp(t, "application/xml") == 0 || ends_with(t, "+xml") ||
	       strcmp(t, "application/javascript") == 0 ||
	       strcmp(t, "application/ecmascript") == 0 ||
	       strcmp(t, "application/x-javascript") == 0 ||
	       strcmp(t, "application/x-www-form-urlencoded") == 0;
}

char *materialize_charset(const char *content_type)
{
	const char *p;

	if (content_type == NULL)
		return NULL;
	for (p = strchr(content_type, ';'); p != NULL; p = strchr(p + 1, ';')) {
		const char *q = p + 1;
		size_t n = 0;
		char *out;

		while (*q == ' ' || *q == '\t')
			q++;
		if (strncasecmp(q, "charset=", 8) != 0)
			continue;
		q += 8;
		if (*q == '"')
			q++;
		while (q[n] && q[n] != '"' && q[n] != ';' && q[n] != ' ' && q[n] != '\t')
			n++;
		if (n == 0)
			return NULL;
		out = strndup(q, n);
		for (size_t i = 0; out != NULL && i < n; i++)
			out[i] = (char)tolower((unsigned char)out[i]);
		return out;
	}
	return NULL;
}

/* The value of the first header named name, or NULL. */
static const char *hop_header(const struct response_hop *h, const char *name)
{
	for (size_t i = 0; i < h->n_headers; i++)
		if (strcasecmp(h->headers[i].name, name) == 0)
			return h->headers[i].value;
	return NULL;
}

static int set_new(json_t *obj, const char *key, json_t *value)
{
	return value == NULL ? -1 : json_object_set_new(obj, key, value);
}

/* {"lower-case-name": "value, value"}; names and values made valid UTF-8. */
static json_t *headers_object(const struct response_hop *h)
{
	json_t *obj = json_object();

	if (obj == NULL)
		return NULL;
	for (size_t i = 0; i < h->n_headers; i++) {
		json_t *name_json = materialize_utf8_string(h->headers[i].name,
							    strlen(h->headers[i].name));
		const char *value = h->headers[i].value;
		json_t *old, *joined;
		char *lower;

		if (name_json == NULL)
			goto fail;
		lower = strdup(json_string_value(name_json));
		json_decref(name_json);
		if (lower == NULL)
			goto fail;
		for (char *p = lower; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		old = json_object_get(obj, lower);
		if (old == NULL) {
			joined = materialize_utf8_string(value, strlen(value));
		} else {
			size_t a = json_string_length(old), b = strlen(value);
			char *buf = malloc(a + 2 + b);

			if (buf == NULL) {
				free(lower);
				goto fail;
			}
			memcpy(buf, json_string_value(old), a);
			memcpy(buf + a, ", ", 2);
			memcpy(buf + a + 2, value, b);
			joined = materialize_utf8_string(buf, a + 2 + b);
			free(buf);
		}
		if (set_new(obj, lower, joined) != 0) {
			free(lower);
			goto fail;
		}
		free(lower);
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

static json_t *header_list_array(const struct response_hop *h)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < h->n_headers; i++) {
		json_t *pair = json_pack(
			"[o?o?]",
			materialize_utf8_string(h->headers[i].name, strlen(h->headers[i].name)),
			materialize_utf8_string(h->headers[i].value, strlen(h->headers[i].value)));

		if (pair == NULL || json_array_append_new(arr, pair) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *history_array(const struct fetch_response *resp)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i + 1 < resp->n_hops; i++) {
		const struct response_hop *h = &resp->hops[i];
		json_t *item = json_pack(
			"{s:o?, s:i, s:o?, s:o?}", "url",
			materialize_utf8_string(h->url, strlen(h->url)), "status", (json_int_t)h->status,
			"reason", materialize_utf8_string(h->reason, strlen(h->reason)), "headers",
			headers_object(h));

		if (item == NULL || json_array_append_new(arr, item) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Netscape cookie-file lines (domain, flag, path, secure, expiry, name,
 * value), as libcurl's CURLINFO_COOKIELIST gives them; later lines of the
 * same name win. */
static json_t *cookies_object(const struct fetch_response *resp)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj != NULL && i < resp->n_cookies; i++) {
		const char *line = resp->cookies[i], *field[7];
		size_t len[7];
		int n = 0;
		const char *p = line;

		while (n < 7) {
			const char *tab = strchr(p, '\t');

			field[n] = p;
			len[n] = tab ? (size_t)(tab - p) : strlen(p);
			n++;
			if (tab == NULL)
				break;
			p = tab + 1;
		}
		if (n < 6)
			continue;
		if (n == 6) { /* no value */
			field[6] = "";
			len[6] = 0;
		}
		json_t *name = materialize_utf8_string(field[5], len[5]);
		json_t *value = materialize_utf8_string(field[6], len[6]);
		if (name != NULL && value != NULL)
			json_object_set(obj, json_string_value(name), value);
		json_decref(name);
		json_decref(value);
	}
	return obj;
}

static double round3(double v)
{
	return (double)(long long)(v * 1000.0 + 0.5) / 1000.0;
}

/* The charset the text is decoded from: the declared one when it is a
 * known label, else the apparent one (SPEC section 2, "Fields"). */
static const char *text_charset(const char *declared, const char *apparent)
{
	const char *name = declared ? charset_whatwg_name(declared) : NULL;

	return name ? name : apparent;
}

/* text / content_base64 / json for the final body; apparent_encoding is
 * computed only when asked for or needed to decode the text. */
static int add_body_fields(json_t *doc, const struct fetch_response *resp, unsigned fields,
			   enum body_mode mode, const char *content_type, const char *declared)
{
	const unsigned char *body = resp->body ? resp->body : (const unsigned char *)"";
	size_t len = resp->body_len, bom_len = 0;
	bool want_text = false, want_base64 = false;
	const char *apparent = NULL;

	switch (mode) {
	case BODY_MODE_AUTO:
		/* compressed bytes are not text whatever the type says; no
		 * Content-Type at all: text when the bytes are UTF-8 */
		if (resp->still_encoded)
			want_base64 = true;
		else if (materialize_is_text_type(content_type) ||
			 (content_type == NULL && charset_utf8_valid(body, len)))
			want_text = true;
		else
			want_base64 = true;
		break;
	case BODY_MODE_TEXT:
		want_text = true;
		break;
	case BODY_MODE_BASE64:
		want_base64 = true;
		break;
	case BODY_MODE_NONE:
		break;
	}
	want_text = want_text && (fields & FIELD_TEXT);
	want_base64 = want_base64 && (fields & FIELD_CONTENT_BASE64);
	if ((fields & FIELD_APPARENT_ENCODING) ||
	    (want_text && (declared == NULL || charset_whatwg_name(declared) == NULL)))
		apparent = charset_detect(body, len, &bom_len);
	if (fields & FIELD_APPARENT_ENCODING) {
		if (set_new(doc, "apparent_encoding", json_string(apparent)) != 0)
			return -1;
	}
	if (want_text) {
		size_t n;
		char *text = charset_decode(body, len, text_charset(declared, apparent), &n);
		json_t *s;

		if (text == NULL)
			return -1;
		s = json_stringn_nocheck(text, n); /* charset_decode gives valid UTF-8 */
		free(text);
		if (set_new(doc, "text", s) != 0)
			return -1;
	}
	if (want_base64) {
		size_t n;
		char *b64 = base64_encode(body, len, &n);

		if (b64 == NULL)
			return -1;
		json_t *s = json_stringn_nocheck(b64, n);
		free(b64);
		if (set_new(doc, "content_base64", s) != 0)
			return -1;
	}
	if ((fields & FIELD_JSON) && mode != BODY_MODE_NONE && mode != BODY_MODE_BASE64 &&
	    materialize_is_json_type(content_type) && !resp->truncated) {
		size_t skip = len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
		/* jansson bounds nesting depth itself: deep input fails, never
		 * overflows the stack */
		json_t *parsed = json_loadb((const char *)body + skip, len - skip,
					    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

		if (parsed != NULL && json_object_set_new(doc, "json", parsed) != 0)
			return -1;
	}
	return 0;
}

/* All values of the headers named name, joined by ", " (malloc'd), or
 * NULL when there is none. */
static char *hop_header_joined(const struct response_hop *h, const char *name)
{
	char *out = NULL;
	size_t len = 0;

	for (size_t i = 0; i < h->n_headers; i++) {
		if (strcasecmp(h->headers[i].name, name) != 0)
			continue;
		size_t v = strlen(h->headers[i].value);
		char *grown = realloc(out, len + (out ? 2 : 0) + v + 1);

		if (grown == NULL) {
			free(out);
			return NULL;
		}
		if (out != NULL) {
			memcpy(grown + len, ", ", 2);
			len += 2;
		}
		out = grown;
		memcpy(out + len, h->headers[i].value, v + 1);
		len += v;
	}
	return out;
}

char *materialize_document(const struct fetch_response *resp, unsigned fields,
			   enum body_mode mode, size_t *len)
{
	const struct response_hop *final = &resp->hops[resp->n_hops - 1];
	const char *content_type = hop_header(final, "Content-Type");
	json_t *doc = json_object();
	char *out = NULL;
	int rc = 0;

	if (doc == NULL)
		return NULL;
	if (fields & FIELD_URL)
		rc |= set_new(doc, "url", materialize_utf8_string(final->url, strlen(final->url)));
	if (fields & FIELD_STATUS)
		rc |= set_new(doc, "status", json_integer(final->status));
	if (fields & FIELD_REASON)
		rc |= set_new(doc, "reason",
			      materialize_utf8_string(final->reason, strlen(final->reason)));
	if (fields & FIELD_OK)
		rc |= set_new(doc, "ok", json_boolean(final->status < 400));
	if (fields & FIELD_HTTP_VERSION)
		rc |= set_new(doc, "http_version", json_string(final->http_version));
	if (fields & FIELD_HEADERS)
		rc |= set_new(doc, "headers", headers_object(final));
	if (fields & FIELD_HEADER_LIST)
		rc |= set_new(doc, "header_list", header_list_array(final));
	if (fields & FIELD_HISTORY)
		rc |= set_new(doc, "history", history_array(resp));
	char *declared = materialize_charset(content_type);
	if (fields & FIELD_ENCODING)
		rc |= set_new(doc, "encoding",
			      declared ? materialize_utf8_string(declared, strlen(declared))
				       : json_null());
	if (add_body_fields(doc, resp, fields, mode, content_type, declared) != 0)
		rc = -1;
	free(declared);
	if (fields & FIELD_COOKIES)
		rc |= set_new(doc, "cookies", cookies_object(resp));
	if (fields & FIELD_LINKS) {
		char *link = hop_header_joined(final, "Link");

		rc |= set_new(doc, "links", link ? links_parse(link, final->url) : json_object());
		free(link);
	}
	if (fields & FIELD_SIZE)
		rc |= set_new(doc, "size", json_integer((json_int_t)resp->body_len));
	if (fields & FIELD_TRUNCATED)
		rc |= set_new(doc, "truncated", json_boolean(resp->truncated));
	if (fields & FIELD_ELAPSED_MS)
		rc |= set_new(doc, "elapsed_ms", json_real(round3(resp->timing.total_ms)));
	if (fields & FIELD_TIMING)
		rc |= set_new(doc, "timing",
			      json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "queued_ms",
					round3(resp->timing.queued_ms), "dns_ms",
					round3(resp->timing.dns_ms), "connect_ms",
					round3(resp->timing.connect_ms), "tls_ms",
					round3(resp->timing.tls_ms), "ttfb_ms",
					round3(resp->timing.ttfb_ms), "total_ms",
					round3(resp->timing.total_ms)));
	if (fields & FIELD_REMOTE)
		rc |= set_new(doc, "remote",
			      json_pack("{s:s?, s:i}", "ip", resp->remote_ip, "port",
					(json_int_t)resp->remote_port));
	if (fields & FIELD_WORKER)
		rc |= set_new(doc, "worker", json_integer(resp->worker));
	if (rc == 0) {
		out = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
		if (out != NULL)
			*len = strlen(out);
	}
	json_decref(doc);
	return out;
}
