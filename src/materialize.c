/* The response document, built on the worker thread: every field a
 * blocking client computes lazily is computed here, so the loop thread
 * only writes bytes. The JSON text is written directly (src/jsonw.c), in
 * the bytes jansson's json_dumps gave when the document was a json_t tree:
 * same key order, same merging of repeated keys, same numbers. */
#include "materialize.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "budget.h"
#include "charset.h"
#include "jsoncopy.h"
#include "jsonw.h"
#include "links.h"

/* Input between two polls of limits->stop while base64 is written (a
 * multiple of 3, so the pieces join without padding). */
#define BASE64_PIECE (3 * 349525)

/* One document being built: the writer and what bounds it. */
struct doc {
	struct jsonw w;
	const struct materialize_limits *lim;
	bool stopped;
};

/* Poll the stop condition; once true, it stays true. */
static bool doc_stop(struct doc *d)
{
	if (!d->stopped && d->lim != NULL && d->lim->stop != NULL && d->lim->stop(d->lim->stop_arg))
		d->stopped = true;
	return d->stopped;
}

static bool doc_stop_cb(void *arg)
{
	return doc_stop(arg);
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

/* Bytes taken from upstream (header names and values, reasons, URLs,
 * cookies) as a JSON string, made valid UTF-8 by fetchd's one policy
 * (charset_repair_utf8). */
static void put_upstream(struct jsonw *w, const char *bytes, size_t len)
{
	char *copy;
	size_t n;
	const char *text = charset_repair_utf8(bytes, len, &n, &copy);

	if (text == NULL) {
		w->oom = true;
		return;
	}
	jsonw_string(w, text, n);
	free(copy);
}

/* The UTF-8 form of upstream bytes (charset_repair_utf8), malloc'd
 * (length in *n); NULL on out of memory. */
static char *upstream_utf8(const char *bytes, size_t len, size_t *n)
{
	char *copy, *s;
	const char *text = charset_repair_utf8(bytes, len, n, &copy);

	if (text == NULL || copy != NULL)
		return copy;
	s = malloc(len + 1);
	if (s != NULL) {
		memcpy(s, bytes, len);
		s[len] = '\0';
	}
	return s;
}

struct key {
	const char *s;
	size_t n;
};

static bool key_eq(const struct key *a, const struct key *b)
{
	return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* The value of a "headers" key: every value of that name joined with
 * ", ", each made valid UTF-8 on its own (a latin-1 value next to a UTF-8
 * one leaves the UTF-8 one as it is). */
static void put_joined(struct jsonw *w, const struct response_hop *h, const struct key *keys,
		       size_t first)
{
	jsonw_string_open(w);
	for (size_t i = first; i < h->n_headers; i++) {
		const char *v = h->headers[i].value;
		size_t vn = strlen(v), n;
		const char *text;
		char *conv;

		if (!key_eq(&keys[i], &keys[first]))
			continue;
		if (i != first)
			jsonw_string_part(w, ", ", 2);
		text = charset_repair_utf8(v, vn, &n, &conv);
		if (text == NULL) {
			w->oom = true;
			return;
		}
		jsonw_string_part(w, text, n);
		free(conv);
	}
	jsonw_string_close(w);
}

/* {"lower-case-name": "value, value"} in the order names first appear;
 * names and values made valid UTF-8. */
static void put_headers(struct jsonw *w, const struct response_hop *h)
{
	struct key *keys = NULL;
	size_t total = 0, used = 0;
	char *text;

	JSONW_LIT(w, "{");
	if (h->n_headers == 0)
		goto out;
	/* every name's lower-case UTF-8 form, in one block: latin-1 bytes take
	 * at most 3 bytes each as UTF-8 */
	for (size_t i = 0; i < h->n_headers; i++)
		total += strlen(h->headers[i].name) * 3 + 1;
	keys = malloc(h->n_headers * sizeof(*keys) + total);
	if (keys == NULL) {
		w->oom = true;
		return;
	}
	text = (char *)(keys + h->n_headers);
	for (size_t i = 0; i < h->n_headers; i++) {
		const char *name = h->headers[i].name;
		size_t len = strlen(name), n;
		char *conv;

		name = charset_repair_utf8(name, len, &n, &conv);
		if (name == NULL || n > len * 3) {
			free(conv);
			w->oom = true;
			goto out;
		}
		for (size_t k = 0; k < n; k++) {
			char c = name[k];
			text[used + k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		/* jansson keys end at the first NUL */
		keys[i].s = text + used;
		keys[i].n = strnlen(text + used, n);
		used += n;
		free(conv);
	}
	for (size_t i = 0; i < h->n_headers; i++) {
		size_t j;

		for (j = 0; j < i && !key_eq(&keys[j], &keys[i]); j++)
			;
		if (j < i)
			continue; /* joined into the first one */
		jsonw_sep(w);
		jsonw_string(w, keys[i].s, keys[i].n);
		JSONW_LIT(w, ":");
		put_joined(w, h, keys, i);
	}
out:
	free(keys);
	JSONW_LIT(w, "}");
}

static void put_header_list(struct jsonw *w, const struct response_hop *h)
{
	JSONW_LIT(w, "[");
	for (size_t i = 0; i < h->n_headers; i++) {
		jsonw_sep(w);
		JSONW_LIT(w, "[");
		put_upstream(w, h->headers[i].name, strlen(h->headers[i].name));
		JSONW_LIT(w, ",");
		put_upstream(w, h->headers[i].value, strlen(h->headers[i].value));
		JSONW_LIT(w, "]");
	}
	JSONW_LIT(w, "]");
}

static void put_history(struct jsonw *w, const struct fetch_response *resp)
{
	JSONW_LIT(w, "[");
	for (size_t i = 0; i + 1 < resp->n_hops; i++) {
		const struct response_hop *h = &resp->hops[i];

		jsonw_sep(w);
		JSONW_LIT(w, "{\"url\":");
		put_upstream(w, h->url, strlen(h->url));
		JSONW_LIT(w, ",\"status\":");
		jsonw_int(w, h->status);
		JSONW_LIT(w, ",\"reason\":");
		put_upstream(w, h->reason, strlen(h->reason));
		JSONW_LIT(w, ",\"headers\":");
		put_headers(w, h);
		JSONW_LIT(w, "}");
	}
	JSONW_LIT(w, "]");
}

/* Netscape cookie-file lines (domain, flag, path, secure, expiry, name,
 * value), as libcurl's CURLINFO_COOKIELIST gives them; later lines of the
 * same name win, in the place the name first took. */
static void put_cookies(struct jsonw *w, const struct fetch_response *resp)
{
	struct cookie {
		char *name, *value;
		size_t name_len, value_len;
	} *c = NULL;
	size_t n = 0;

	JSONW_LIT(w, "{");
	if (resp->n_cookies == 0)
		goto out;
	c = calloc(resp->n_cookies, sizeof(*c));
	if (c == NULL) {
		w->oom = true;
		goto out;
	}
	for (size_t i = 0; i < resp->n_cookies; i++) {
		const char *p = resp->cookies[i], *field[7];
		size_t len[7];
		int nf = 0;

		while (nf < 7) {
			const char *tab = strchr(p, '\t');

			field[nf] = p;
			len[nf] = tab ? (size_t)(tab - p) : strlen(p);
			nf++;
			if (tab == NULL)
				break;
			p = tab + 1;
		}
		if (nf < 6)
			continue;
		if (nf == 6) { /* no value */
			field[6] = "";
			len[6] = 0;
		}
		c[n].name = upstream_utf8(field[5], len[5], &c[n].name_len);
		c[n].value = upstream_utf8(field[6], len[6], &c[n].value_len);
		if (c[n].name == NULL || c[n].value == NULL) {
			/* jansson's tree skipped a cookie it could not allocate */
			free(c[n].name);
			free(c[n].value);
			continue;
		}
		/* jansson keys end at the first NUL */
		c[n].name_len = strlen(c[n].name);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		struct key ki = {c[i].name, c[i].name_len};
		size_t j, last = i;

		for (j = 0; j < i; j++) {
			struct key kj = {c[j].name, c[j].name_len};
			if (key_eq(&kj, &ki))
				break;
		}
		if (j < i)
			continue;
		for (j = i + 1; j < n; j++) {
			struct key kj = {c[j].name, c[j].name_len};
			if (key_eq(&kj, &ki))
				last = j;
		}
		jsonw_sep(w);
		jsonw_string(w, c[i].name, c[i].name_len);
		JSONW_LIT(w, ":");
		jsonw_string(w, c[last].value, c[last].value_len);
	}
out:
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
		free(c[i].value);
	}
	free(c);
	JSONW_LIT(w, "}");
}

/* A jansson value dumped in place (the links object, the parsed body). */
static void put_json(struct jsonw *w, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));

	if (s == NULL) {
		w->oom = true;
		return;
	}
	jsonw_raw(w, s, strlen(s));
	free(s);
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

/* The text field: UTF-8 without a BOM is written from the body itself,
 * anything else through charset_decode, whose buffer is charged first at
 * its largest (4 bytes per input byte: 3 of UTF-8 at most, and the
 * decoder's doubling). */
static void put_text(struct doc *d, const unsigned char *body, size_t len, const char *charset)
{
	struct budget_hold *hold = d->lim != NULL ? d->lim->hold : NULL;
	size_t n, charge = len < (SIZE_MAX - 64) / 4 ? len * 4 + 64 : SIZE_MAX;
	char *text;

	if (charset != NULL && strcmp(charset, "utf-8") == 0 &&
	    !(len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) && charset_utf8_valid(body, len)) {
		jsonw_string(&d->w, (const char *)body, len);
		return;
	}
	if (!budget_hold_charge(hold, charge)) {
		d->w.oom = true;
		return;
	}
	text = charset_decode(body, len, charset, &n);
	if (text == NULL)
		d->w.oom = true;
	else if (!doc_stop(d))
		jsonw_string(&d->w, text, n);
	free(text);
	budget_hold_release(hold, charge);
}

/* content_base64, encoded straight into the document in pieces. */
static void put_base64(struct doc *d, const unsigned char *body, size_t len)
{
	if (!jsonw_reserve(&d->w, base64_encoded_len(len) + 2))
		return;
	JSONW_LIT(&d->w, "\"");
	for (size_t off = 0; off < len && !d->w.oom && !doc_stop(d); off += BASE64_PIECE) {
		size_t n = len - off < BASE64_PIECE ? len - off : BASE64_PIECE;

		if (!jsonw_reserve(&d->w, base64_encoded_len(n)))
			return;
		d->w.len += base64_encode_to(body + off, n, d->w.buf + d->w.len);
	}
	JSONW_LIT(&d->w, "\"");
}

/* The json field, copied without a tree (src/jsoncopy.c); absent when the
 * body is not JSON. */
static void put_json_body(struct doc *d, const unsigned char *body, size_t len)
{
	size_t skip = len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
	size_t mark = d->w.len;

	jsonw_key(&d->w, "json");
	if (jsoncopy(&d->w, (const char *)body + skip, len - skip, doc_stop_cb, d) != JSONCOPY_OK)
		d->w.len = mark; /* not JSON: no field; out of memory or stopped stays so */
}

/* text / content_base64 / json for the final body; apparent_encoding is
 * computed only when asked for or needed to decode the text. */
static void put_body_fields(struct doc *d, const struct fetch_response *resp, unsigned fields,
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
	case BODY_MODE_TEXT: want_text = true; break;
	case BODY_MODE_BASE64: want_base64 = true; break;
	case BODY_MODE_NONE: break;
	}
	want_text = want_text && (fields & FIELD_TEXT);
	want_base64 = want_base64 && (fields & FIELD_CONTENT_BASE64);
	if ((fields & FIELD_APPARENT_ENCODING) ||
	    (want_text && (declared == NULL || charset_whatwg_name(declared) == NULL)))
		apparent = charset_detect(body, len, &bom_len);
	if (fields & FIELD_APPARENT_ENCODING) {
		jsonw_key(&d->w, "apparent_encoding");
		if (apparent != NULL)
			jsonw_string(&d->w, apparent, strlen(apparent));
		else
			d->w.oom = true;
	}
	if (want_text && !doc_stop(d)) {
		jsonw_key(&d->w, "text");
		put_text(d, body, len, text_charset(declared, apparent));
	}
	if (want_base64 && !doc_stop(d)) {
		jsonw_key(&d->w, "content_base64");
		put_base64(d, body, len);
	}
	if ((fields & FIELD_JSON) && mode != BODY_MODE_NONE && mode != BODY_MODE_BASE64 &&
	    materialize_is_json_type(content_type) && !resp->truncated && !doc_stop(d))
		put_json_body(d, body, len);
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

static void put_links(struct jsonw *w, const struct response_hop *final)
{
	char *link = hop_header_joined(final, "Link");
	json_t *links;

	if (link == NULL) {
		JSONW_LIT(w, "{}");
		return;
	}
	links = links_parse(link, final->url);
	free(link);
	if (links == NULL) {
		w->oom = true;
		return;
	}
	put_json(w, links);
	json_decref(links);
}

static void put_timing(struct jsonw *w, const struct response_timing *t)
{
	JSONW_LIT(w, "{\"queued_ms\":");
	jsonw_real(w, round3(t->queued_ms));
	JSONW_LIT(w, ",\"dns_ms\":");
	jsonw_real(w, round3(t->dns_ms));
	JSONW_LIT(w, ",\"connect_ms\":");
	jsonw_real(w, round3(t->connect_ms));
	JSONW_LIT(w, ",\"tls_ms\":");
	jsonw_real(w, round3(t->tls_ms));
	JSONW_LIT(w, ",\"ttfb_ms\":");
	jsonw_real(w, round3(t->ttfb_ms));
	JSONW_LIT(w, ",\"total_ms\":");
	jsonw_real(w, round3(t->total_ms));
	JSONW_LIT(w, "}");
}

/* Room for the whole document in one allocation, most of the time. */
static size_t size_hint(const struct fetch_response *resp)
{
	size_t n = 1024 + resp->body_len + resp->body_len / 3;

	for (size_t i = 0; i < resp->n_hops; i++) {
		const struct response_hop *h = &resp->hops[i];

		n += strlen(h->url) * 2;
		for (size_t k = 0; k < h->n_headers; k++)
			n += (strlen(h->headers[k].name) + strlen(h->headers[k].value)) * 2 + 16;
	}
	return n;
}

/* "tls": null, or the version, cipher, resumption and peer certificate. */
static void put_tls(struct jsonw *w, const struct tls_info *tls)
{
	if (tls == NULL) {
		jsonw_null(w);
		return;
	}
	JSONW_LIT(w, "{\"version\":");
	if (tls->version != NULL)
		put_upstream(w, tls->version, strlen(tls->version));
	else
		jsonw_null(w);
	JSONW_LIT(w, ",\"cipher\":");
	if (tls->cipher != NULL)
		put_upstream(w, tls->cipher, strlen(tls->cipher));
	else
		jsonw_null(w);
	JSONW_LIT(w, ",\"resumed\":");
	jsonw_bool(w, tls->resumed);
	JSONW_LIT(w, ",\"new_connection\":");
	jsonw_bool(w, tls->new_connection);
	JSONW_LIT(w, ",\"peer\":");
	if (!tls->has_peer) {
		jsonw_null(w);
	} else {
		const struct tls_peer *p = &tls->peer;

		JSONW_LIT(w, "{\"subject\":");
		put_upstream(w, p->subject, strlen(p->subject));
		JSONW_LIT(w, ",\"issuer\":");
		put_upstream(w, p->issuer, strlen(p->issuer));
		JSONW_LIT(w, ",\"san\":[");
		for (size_t i = 0; i < p->n_san; i++) {
			jsonw_sep(w);
			put_upstream(w, p->san[i], strlen(p->san[i]));
		}
		JSONW_LIT(w, "],\"not_after\":");
		if (p->not_after[0] != '\0')
			jsonw_string(w, p->not_after, strlen(p->not_after));
		else
			jsonw_null(w);
		JSONW_LIT(w, "}");
	}
	JSONW_LIT(w, "}");
}

/* [{"outcome": 503 or "connect_failed", "start_ms", "duration_ms"}, ...]
 * and, when a retry was cut short, "retry_cut_short": true after it. */
static void put_attempts(struct jsonw *w, const struct fetch_response *resp)
{
	JSONW_LIT(w, "[");
	for (size_t i = 0; i < resp->n_attempts; i++) {
		const struct retry_attempt *a = &resp->attempts[i];
		const char *code = err_code_name(a->err);

		JSONW_LIT(w, "{\"outcome\":");
		if (a->err == ERR_NONE)
			jsonw_int(w, a->status);
		else
			jsonw_string(w, code, strlen(code));
		JSONW_LIT(w, ",\"start_ms\":");
		jsonw_int(w, (long long)a->start_ms);
		JSONW_LIT(w, ",\"duration_ms\":");
		jsonw_int(w, (long long)a->duration_ms);
		JSONW_LIT(w, "}");
		if (i + 1 < resp->n_attempts)
			JSONW_LIT(w, ",");
	}
	JSONW_LIT(w, "]");
	if (resp->retry_cut_short) {
		jsonw_key(w, "retry_cut_short");
		jsonw_bool(w, true);
	}
}

enum materialize_result materialize_document_limited(const struct fetch_response *resp,
						     unsigned fields, enum body_mode mode,
						     const struct materialize_limits *limits,
						     char **doc, size_t *len)
{
	const struct response_hop *final;
	const char *content_type;
	struct doc d = {.lim = limits};
	char *declared, *out;
	size_t cap;

	/* fetch_run materializes only after recording at least one hop */
	assert(resp->hops != NULL && resp->n_hops > 0);
	final = &resp->hops[resp->n_hops - 1];
	content_type = hop_header(final, "Content-Type");
	*doc = NULL;
	*len = 0;
	jsonw_init_charged(&d.w, size_hint(resp), limits != NULL ? limits->hold : NULL);
	JSONW_LIT(&d.w, "{");
	if (fields & FIELD_URL) {
		jsonw_key(&d.w, "url");
		put_upstream(&d.w, final->url, strlen(final->url));
	}
	if (fields & FIELD_STATUS) {
		jsonw_key(&d.w, "status");
		jsonw_int(&d.w, final->status);
	}
	if (fields & FIELD_REASON) {
		jsonw_key(&d.w, "reason");
		put_upstream(&d.w, final->reason, strlen(final->reason));
	}
	if (fields & FIELD_OK) {
		jsonw_key(&d.w, "ok");
		jsonw_bool(&d.w, final->status < 400);
	}
	if (fields & FIELD_HTTP_VERSION) {
		jsonw_key(&d.w, "http_version");
		put_upstream(&d.w, final->http_version, strlen(final->http_version));
	}
	if (fields & FIELD_HEADERS) {
		jsonw_key(&d.w, "headers");
		put_headers(&d.w, final);
	}
	if (fields & FIELD_HEADER_LIST) {
		jsonw_key(&d.w, "header_list");
		put_header_list(&d.w, final);
	}
	if (fields & FIELD_HISTORY) {
		jsonw_key(&d.w, "history");
		put_history(&d.w, resp);
	}
	declared = materialize_charset(content_type);
	if (fields & FIELD_ENCODING) {
		jsonw_key(&d.w, "encoding");
		if (declared != NULL)
			put_upstream(&d.w, declared, strlen(declared));
		else
			jsonw_null(&d.w);
	}
	put_body_fields(&d, resp, fields, mode, content_type, declared);
	free(declared);
	if (fields & FIELD_COOKIES) {
		jsonw_key(&d.w, "cookies");
		put_cookies(&d.w, resp);
	}
	if (fields & FIELD_LINKS) {
		jsonw_key(&d.w, "links");
		put_links(&d.w, final);
	}
	if (fields & FIELD_SIZE) {
		jsonw_key(&d.w, "size");
		jsonw_int(&d.w, (long long)resp->body_len);
	}
	if (fields & FIELD_TRUNCATED) {
		jsonw_key(&d.w, "truncated");
		jsonw_bool(&d.w, resp->truncated);
	}
	if (fields & FIELD_ELAPSED_MS) {
		jsonw_key(&d.w, "elapsed_ms");
		jsonw_real(&d.w, round3(resp->timing.total_ms));
	}
	if (fields & FIELD_TIMING) {
		jsonw_key(&d.w, "timing");
		put_timing(&d.w, &resp->timing);
	}
	if (fields & FIELD_REMOTE) {
		jsonw_key(&d.w, "remote");
		JSONW_LIT(&d.w, "{\"ip\":");
		if (resp->remote_ip != NULL)
			jsonw_string(&d.w, resp->remote_ip, strlen(resp->remote_ip));
		else
			jsonw_null(&d.w);
		JSONW_LIT(&d.w, ",\"port\":");
		jsonw_int(&d.w, resp->remote_port);
		JSONW_LIT(&d.w, "}");
	}
	if (fields & FIELD_WORKER) {
		jsonw_key(&d.w, "worker");
		jsonw_int(&d.w, resp->worker);
	}
	if (fields & FIELD_TLS) {
		jsonw_key(&d.w, "tls");
		put_tls(&d.w, resp->tls);
	}
	if ((fields & FIELD_ATTEMPTS) && resp->n_attempts > 0) {
		jsonw_key(&d.w, "attempts");
		put_attempts(&d.w, resp);
	}
	JSONW_LIT(&d.w, "}");
	if (doc_stop(&d) || d.w.oom) {
		jsonw_free(&d.w);
		if (d.stopped)
			return MATERIALIZE_STOPPED;
		return limits != NULL && limits->hold != NULL && limits->hold->failed
			       ? MATERIALIZE_OVER_BUDGET
			       : MATERIALIZE_NO_MEMORY;
	}
	cap = d.w.cap;
	out = jsonw_finish(&d.w, len);
	if (out == NULL)
		return MATERIALIZE_NO_MEMORY;
	/* a generous hint (escaping, base64) left much unused: give it back */
	if (cap - *len > 65536) {
		char *fit = realloc(out, *len + 1);

		if (fit != NULL)
			out = fit;
	}
	*doc = out;
	return MATERIALIZE_OK;
}

char *materialize_document(const struct fetch_response *resp, unsigned fields, enum body_mode mode,
			   size_t *len)
{
	char *doc;

	materialize_document_limited(resp, fields, mode, NULL, &doc, len);
	return doc;
}
