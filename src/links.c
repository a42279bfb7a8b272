/* The Link response header (RFC 8288) parsed into the document's links
 * object, as requests' Response.links has it. */
#include "links.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "http.h"

/* Work stays linear in the header's length: at most LINKS_MAX link-values
 * are kept (the rest is not even scanned), and each one fans out into at
 * most LINKS_MAX_RELS entries of at most LINKS_MAX_PARAMS parameters. */
#define LINKS_MAX 1000
#define LINKS_MAX_RELS 16
#define LINKS_MAX_PARAMS 64

enum links_rc {
	LINKS_OK,
	LINKS_BAD, /* this link-value is malformed: skip it */
	LINKS_NOMEM,
};

/* One parsed link-value, before it is resolved and keyed. */
struct links_link {
	char *ref;	/* URI-Reference between '<' and '>', raw bytes */
	char *rel;	/* first rel parameter's value (RFC 8288 3.3), or NULL */
	json_t *params; /* other parameters, name lower-cased -> value */
};

/* OWS (RFC 7230 3.2.3); CR and LF too, for values joined from folded lines. */
static bool links_is_ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *links_skip_ows(const char *p)
{
	while (links_is_ows(*p))
		p++;
	return p;
}

static char links_ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char *links_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* A new JSON string of s[0..n), made valid UTF-8 by fetchd's one policy
 * (charset_repair_utf8), since json_stringn() refuses invalid UTF-8. NULL
 * only on out of memory. */
static json_t *links_json_string(const char *s, size_t n)
{
	char *copy;
	size_t len;
	const char *text = charset_repair_utf8(s, n, &len, &copy);
	json_t *j;

	if (text == NULL)
		return NULL;
	j = json_stringn(text, len);
	free(copy);
	return j;
}

/* From p, the end of the current link-value: the next ',' outside a
 * quoted-string, or the string's end. When a quote never closes, the first
 * ',' after p instead, so that one stray '"' loses one link, not the rest;
 * but only once per header (*runaway records it): each such scan reads to
 * the end, and repeating it for every link would be quadratic. */
static const char *links_skip_value(const char *p, bool *runaway)
{
	const char *first_comma = NULL;
	bool quoted = false;

	for (; *p != '\0'; p++) {
		if (*p == ',' && first_comma == NULL)
			first_comma = p;
		if (quoted) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = false;
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == ',') {
			return p;
		}
	}
	if (!quoted || first_comma == NULL || *runaway)
		return p;
	*runaway = true;
	return first_comma;
}

/* The quoted-string (RFC 7230 3.2.6) at *pp, which points at its '"',
 * unescaped into *out; *pp moves past the closing '"'. LINKS_BAD when it is
 * not closed. */
static enum links_rc links_parse_quoted(const char **pp, char **out, size_t *out_len)
{
	const char *start = *pp + 1, *p;
	char *d;
	size_t n = 0;

	for (p = start; *p != '"'; p++) {
		if (*p == '\0')
			return LINKS_BAD;
		if (*p == '\\' && *++p == '\0')
			return LINKS_BAD;
	}
	d = malloc((size_t)(p - start) + 1);
	if (d == NULL)
		return LINKS_NOMEM;
	for (p = start; *p != '"'; p++) {
		if (*p == '\\')
			p++;
		d[n++] = *p;
	}
	d[n] = '\0';
	*pp = p + 1;
	*out = d;
	*out_len = n;
	return LINKS_OK;
}

/* Record one parameter, its name lower-cased (names are case-insensitive,
 * RFC 8288 3). The first occurrence of a name wins (RFC 8288 3.3 says so for
 * rel; applied to all). "url" is ours, so such a parameter is dropped. */
static enum links_rc links_add_param(struct links_link *l, const char *name, size_t name_len,
				     const char *value, size_t value_len)
{
	char *key = NULL;
	json_t *v;
	size_t i;
	enum links_rc rc = LINKS_NOMEM;

	if (json_object_size(l->params) >= LINKS_MAX_PARAMS && l->rel != NULL)
		return LINKS_OK;
	if ((key = links_strndup(name, name_len)) == NULL)
		return LINKS_NOMEM;
	for (i = 0; i < name_len; i++)
		key[i] = links_ascii_lower(key[i]);
	if (strcmp(key, "rel") == 0) {
		if (l->rel == NULL && (l->rel = links_strndup(value, value_len)) == NULL)
			goto out;
	} else if (strcmp(key, "url") != 0 && json_object_size(l->params) < LINKS_MAX_PARAMS &&
		   json_object_get(l->params, key) == NULL) {
		v = links_json_string(value, value_len);
		if (v == NULL || json_object_set_new(l->params, key, v) != 0)
			goto out;
	}
	rc = LINKS_OK;
out:
	free(key);
	return rc;
}

/* Parse the link-value at *pp (RFC 8288 3):
 *   "<" URI-Reference ">" *( OWS ";" OWS link-param )
 *   link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
 * Leniently, an unquoted value is any run up to ';', ',', '"' or whitespace
 * (servers send type=text/html), and empty parameters (";;") are ignored.
 * Garbage where ';' or ',' should be makes the link-value malformed. On return
 * *pp is at the ',' or the end that follows, or, for a '<' inside the
 * reference, at that '<' so that it starts the next attempt. */
static enum links_rc links_parse_one(const char **pp, struct links_link *l, bool *runaway)
{
	const char *p = *pp, *ref, *ref_end, *name, *name_end, *value;
	char *buf = NULL;
	size_t value_len;
	enum links_rc rc;

	if (*p != '<')
		goto bad;
	for (ref = ++p; *p != '>'; p++) {
		if (*p == '\0' || *p == '<') {
			*pp = p;
			return LINKS_BAD;
		}
	}
	ref = links_skip_ows(ref);
	for (ref_end = p; ref_end > ref && links_is_ows(ref_end[-1]); ref_end--)
		;
	if ((l->ref = links_strndup(ref, (size_t)(ref_end - ref))) == NULL)
		return LINKS_NOMEM;
	p++;
	for (;;) {
		p = links_skip_ows(p);
		if (*p == '\0' || *p == ',')
			break;
		if (*p != ';')
			goto bad;
		p = links_skip_ows(p + 1);
		if (*p == ';' || *p == ',' || *p == '\0')
			continue;
		for (name = p; http_is_tchar((unsigned char)*p); p++)
			;
		if (p == name)
			goto bad;
		name_end = p;
		p = links_skip_ows(p);
		value = "";
		value_len = 0;
		if (*p == '=') {
			p = links_skip_ows(p + 1);
			if (*p == '"') {
				rc = links_parse_quoted(&p, &buf, &value_len);
				if (rc != LINKS_OK)
					goto fail;
				value = buf;
			} else {
				for (value = p; *p != '\0' && !links_is_ows(*p) && *p != ';' &&
						*p != ',' && *p != '"';
				     p++)
					;
				value_len = (size_t)(p - value);
			}
		}
		rc = links_add_param(l, name, (size_t)(name_end - name), value, value_len);
		free(buf);
		buf = NULL;
		if (rc != LINKS_OK)
			goto fail;
	}
	*pp = p;
	return LINKS_OK;
bad:
	rc = LINKS_BAD;
fail:
	free(buf);
	*pp = links_skip_value(p, runaway);
	return rc;
}

/* l->ref resolved against base (RFC 3986 5) with CURLU, or the raw reference
 * when that fails (no base, or a scheme CURLU cannot parse such as mailto:).
 * libcurl 7.88 resolves "" and "#frag" against the base's directory, so
 * those two are resolved here by hand (RFC 3986 5.2.2). NULL on OOM. */
static json_t *links_resolve(CURLU *base, const char *ref)
{
	CURLU *u;
	CURLUcode uc;
	char *out = NULL;
	json_t *j;

	u = base != NULL ? curl_url_dup(base) : curl_url();
	if (u == NULL)
		return NULL;
	if (base != NULL && (ref[0] == '\0' || ref[0] == '#'))
		uc = curl_url_set(u, CURLUPART_FRAGMENT, ref[0] == '#' ? ref + 1 : NULL, 0);
	else
		uc = curl_url_set(u, CURLUPART_URL, ref, CURLU_NON_SUPPORT_SCHEME);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_URL, &out, 0);
	curl_url_cleanup(u);
	if (uc == CURLUE_OUT_OF_MEMORY)
		return NULL;
	if (uc != CURLUE_OK)
		return links_json_string(ref, strlen(ref));
	j = links_json_string(out, strlen(out));
	curl_free(out);
	return j;
}

/* Put a new entry {"url", ["rel",] params...} under key (later wins, as in
 * requests). */
static int links_put(json_t *links, const char *key, size_t key_len, json_t *url, json_t *params,
		     bool with_rel)
{
	json_t *entry = json_object(), *k = NULL;
	int rc = -1;

	if (entry == NULL || json_object_set(entry, "url", url) != 0)
		goto out;
	if ((k = links_json_string(key, key_len)) == NULL)
		goto out;
	if (with_rel && json_object_set(entry, "rel", k) != 0)
		goto out;
	if (json_object_update(entry, params) != 0)
		goto out;
	rc = json_object_set_new(links, json_string_value(k), entry);
	entry = NULL;
out:
	json_decref(k);
	json_decref(entry);
	return rc;
}

/* Key the parsed link under each relation type of its rel (a space-separated
 * list, RFC 8288 3.3), or under its URL when it has none. Registered types
 * are case-insensitive (RFC 8288 2.1.1) and so lower-cased; extension types
 * are URIs (2.1.2, they contain ':') and kept as sent. */
static int links_emit(json_t *links, CURLU *base, struct links_link *l)
{
	json_t *url = links_resolve(base, l->ref);
	int n = 0, rc = 0;
	char *p, *type;

	if (url == NULL)
		return -1;
	for (p = l->rel; p != NULL && *p != '\0' && n < LINKS_MAX_RELS && rc == 0;) {
		while (links_is_ows(*p))
			p++;
		if (*p == '\0')
			break;
		for (type = p; *p != '\0' && !links_is_ows(*p); p++)
			;
		if (memchr(type, ':', (size_t)(p - type)) == NULL) {
			char *c;

			for (c = type; c < p; c++)
				*c = links_ascii_lower(*c);
		}
		rc = links_put(links, type, (size_t)(p - type), url, l->params, true);
		n++;
	}
	if (n == 0 && rc == 0) {
		const char *key = json_string_value(url);

		rc = links_put(links, key, json_string_length(url), url, l->params, false);
	}
	json_decref(url);
	return rc;
}

json_t *links_parse(const char *header_value, const char *base_url)
{
	json_t *links = json_object();
	CURLU *base = NULL;
	const char *p = header_value;
	int kept = 0;
	bool runaway = false;

	if (links == NULL)
		return NULL;
	if (p == NULL)
		return links;
	if (base_url != NULL) {
		base = curl_url();
		if (base == NULL)
			goto nomem;
		if (curl_url_set(base, CURLUPART_URL, base_url, CURLU_NON_SUPPORT_SCHEME) !=
		    CURLUE_OK) {
			curl_url_cleanup(base);
			base = NULL;
		}
	}
	while (kept < LINKS_MAX) {
		struct links_link l = {NULL, NULL, NULL};
		enum links_rc rc;

		while (*p == ',' || links_is_ows(*p))
			p++;
		if (*p == '\0')
			break;
		if ((l.params = json_object()) == NULL)
			goto nomem;
		rc = links_parse_one(&p, &l, &runaway);
		if (rc == LINKS_OK) {
			kept++;
			if (links_emit(links, base, &l) != 0)
				rc = LINKS_NOMEM;
		}
		free(l.ref);
		free(l.rel);
		json_decref(l.params);
		if (rc == LINKS_NOMEM)
			goto nomem;
	}
	curl_url_cleanup(base);
	return links;
nomem:
	curl_url_cleanup(base);
	json_decref(links);
	return NULL;
}
