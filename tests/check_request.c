/* Unit tests for request.c (strict input, SPEC section 2) and errors.c. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "request.h"

static struct fetchd_config cfg;
static struct request_error rerr;

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.schemes = CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS;
	cfg.timeout_ms = 30000;
	cfg.connect_timeout_ms = 5000;
	cfg.max_response_bytes = 10u << 20;
	cfg.max_redirects = 10;
	cfg.verify_tls = true;
	cfg.allow_insecure = false;
	memset(&rerr, 0, sizeof(rerr));
}

/* Parse text as a client body and bind it. NULL with rerr filled on any
 * failure. */
static struct fetch_request *bind_text(const char *text)
{
	struct fetch_request *r;
	json_t *doc;

	memset(&rerr, 0, sizeof(rerr));
	doc = request_parse_body(text, strlen(text), &rerr);
	if (doc == NULL)
		return NULL;
	r = request_from_json(doc, &cfg, &rerr);
	json_decref(doc);
	return r;
}

static struct fetch_request *bind_ok(const char *text)
{
	struct fetch_request *r = bind_text(text);

	ck_assert_msg(r != NULL, "rejected %s: %s", text, rerr.message);
	return r;
}

/* Asserts the request is rejected with code and a message containing
 * needle (when not NULL). */
static void expect_error(const char *text, enum fetchd_err code, const char *needle)
{
	struct fetch_request *r = bind_text(text);

	if (r != NULL) {
		request_free(r);
		ck_abort_msg("accepted %s", text);
	}
	ck_assert_msg(rerr.code == code, "%s: code %s, want %s (%s)", text,
		      err_code_name(rerr.code), err_code_name(code), rerr.message);
	if (needle != NULL)
		ck_assert_msg(strstr(rerr.message, needle) != NULL, "%s: message '%s' lacks '%s'",
			      text, rerr.message, needle);
}

static const char *header_value(const struct fetch_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

/* ---- defaults, method ---- */

START_TEST(test_defaults_come_from_config)
{
	struct fetch_request *r = bind_ok("{\"url\": \"https://example.org/a?b=1\"}");

	ck_assert_str_eq(r->url, "https://example.org/a?b=1");
	ck_assert_str_eq(r->method, "GET");
	ck_assert_uint_eq(r->n_headers, 0);
	ck_assert_ptr_null(r->body);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_uint_eq(r->timeout_ms, 30000);
	ck_assert_uint_eq(r->connect_timeout_ms, 5000);
	ck_assert(r->follow_redirects);
	ck_assert_uint_eq(r->max_redirects, 10);
	ck_assert_uint_eq(r->max_bytes, 10u << 20);
	ck_assert(!r->truncate);
	ck_assert(r->verify_tls);
	ck_assert(r->decompress);
	ck_assert_int_eq(r->body_mode, BODY_MODE_AUTO);
	ck_assert_uint_eq(r->fields, FIELD_ALL);
	request_free(r);
}
END_TEST

START_TEST(test_verify_tls_default_follows_config)
{
	struct fetch_request *r;

	cfg.verify_tls = false;
	r = bind_ok("{\"url\": \"https://example.org/\"}");
	ck_assert(!r->verify_tls);
	request_free(r);
}
END_TEST

START_TEST(test_lower_case_method_is_upper_cased)
{
	static const char *const in[] = {"get",   "head",   "post",   "Put",
					 "pAtCh", "delete", "options"};
	static const char *const out[] = {"GET",   "HEAD",   "POST",   "PUT",
					  "PATCH", "DELETE", "OPTIONS"};
	char buf[128];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct fetch_request *r;

		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"method\": \"%s\"}",
			 in[i]);
		r = bind_ok(buf);
		ck_assert_str_eq(r->method, out[i]);
		request_free(r);
	}
}
END_TEST

START_TEST(test_unknown_method_is_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"method\": \"TRACE\"}", ERR_INVALID_REQUEST,
		     "'method'");
	expect_error("{\"url\": \"http://e.org/\", \"method\": \"CONNECT\"}", ERR_INVALID_REQUEST,
		     "CONNECT");
	expect_error("{\"url\": \"http://e.org/\", \"method\": \"\"}", ERR_INVALID_REQUEST,
		     "'method'");
	expect_error("{\"url\": \"http://e.org/\", \"method\": \"GET\\u0000\"}",
		     ERR_INVALID_REQUEST, "'method'");
	expect_error("{\"url\": \"http://e.org/\", \"method\": 1}", ERR_INVALID_REQUEST,
		     "field 'method' must be a string");
}
END_TEST

/* ---- top level ---- */

START_TEST(test_unknown_field_is_rejected_naming_it)
{
	expect_error("{\"url\": \"http://e.org/\", \"timout\": 5}", ERR_INVALID_REQUEST,
		     "unknown field 'timout'");
	expect_error("{\"URL\": \"http://e.org/\"}", ERR_INVALID_REQUEST, "unknown field 'URL'");
}
END_TEST

START_TEST(test_non_object_top_level_is_invalid_request)
{
	expect_error("[]", ERR_INVALID_REQUEST, "object");
	expect_error("\"http://e.org/\"", ERR_INVALID_REQUEST, "object");
	expect_error("null", ERR_INVALID_REQUEST, "object");
	expect_error("42", ERR_INVALID_REQUEST, "object");
}
END_TEST

START_TEST(test_request_from_json_rejects_null)
{
	ck_assert_ptr_null(request_from_json(NULL, &cfg, &rerr));
	ck_assert_int_eq(rerr.code, ERR_INVALID_REQUEST);
}
END_TEST

START_TEST(test_duplicate_keys_are_invalid_request)
{
	expect_error("{\"url\": \"http://e.org/\", \"url\": \"http://f.org/\"}",
		     ERR_INVALID_REQUEST, "duplicate");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"1\", \"A\": \"2\"}}",
		     ERR_INVALID_REQUEST, "duplicate");
}
END_TEST

START_TEST(test_nul_escape_parses_and_is_not_invalid_json)
{
	static const char text[] = "{\"body\": \"a\\u0000b\"}";
	json_t *doc = request_parse_body(text, strlen(text), &rerr);

	ck_assert_ptr_nonnull(doc);
	ck_assert_uint_eq(json_string_length(json_object_get(doc, "body")), 3);
	json_decref(doc);
}
END_TEST

START_TEST(test_nul_in_object_key_is_invalid_request)
{
	expect_error("{\"url\": \"http://e.org/\", \"a\\u0000b\": 1}", ERR_INVALID_REQUEST, "NUL");
}
END_TEST

START_TEST(test_trailing_garbage_is_invalid_json)
{
	expect_error("{\"url\": \"http://e.org/\"} x", ERR_INVALID_JSON, "line 1");
	expect_error("{\"url\": \"http://e.org/\"}{}", ERR_INVALID_JSON, NULL);
	expect_error("{\"url\": ", ERR_INVALID_JSON, NULL);
	expect_error("", ERR_INVALID_JSON, NULL);
	expect_error("{'url': 1}", ERR_INVALID_JSON, NULL);
	expect_error("{\"url\": \"\xff\"}", ERR_INVALID_JSON, NULL);
}
END_TEST

START_TEST(test_trailing_whitespace_is_fine)
{
	request_free(bind_ok("  {\"url\": \"http://e.org/\"}\r\n\t "));
}
END_TEST

/* ---- url ---- */

START_TEST(test_missing_url_is_rejected)
{
	expect_error("{}", ERR_INVALID_REQUEST, "field 'url' is required");
	expect_error("{\"method\": \"GET\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": 42}", ERR_INVALID_REQUEST, "field 'url' must be a string");
	expect_error("{\"url\": null}", ERR_INVALID_REQUEST, "field 'url' must be a string");
}
END_TEST

START_TEST(test_unsupported_scheme_is_rejected_naming_it)
{
	expect_error("{\"url\": \"file:///etc/passwd\"}", ERR_UNSUPPORTED_SCHEME, "'file'");
	expect_error("{\"url\": \"FILE:///etc/passwd\"}", ERR_UNSUPPORTED_SCHEME, "'file'");
	expect_error("{\"url\": \"gopher://e.org/\"}", ERR_UNSUPPORTED_SCHEME, "'gopher'");
	expect_error("{\"url\": \"ftp://e.org/x\"}", ERR_UNSUPPORTED_SCHEME, "'ftp'");
	expect_error("{\"url\": \"mailto:a@e.org\"}", ERR_UNSUPPORTED_SCHEME, "'mailto'");
	expect_error("{\"url\": \"dict://e.org:11211/\"}", ERR_UNSUPPORTED_SCHEME, "'dict'");
}
END_TEST

START_TEST(test_scheme_not_in_config_is_rejected)
{
	cfg.schemes = CONFIG_SCHEME_HTTPS;
	expect_error("{\"url\": \"http://e.org/\"}", ERR_UNSUPPORTED_SCHEME, "'http'");
	request_free(bind_ok("{\"url\": \"https://e.org/\"}"));
}
END_TEST

START_TEST(test_upper_case_scheme_is_accepted)
{
	struct fetch_request *r = bind_ok("{\"url\": \"HTTPS://example.org/x\"}");

	ck_assert_str_eq(r->url, "https://example.org/x");
	ck_assert_str_eq(r->host, "example.org");
	request_free(r);
	/* a plain printable-ASCII URL without params is kept as given: curl
	 * normalizes it again when it fetches */
	r = bind_ok("{\"url\": \"http://example.org/a/../b\"}");
	ck_assert_str_eq(r->url, "http://example.org/a/../b");
	request_free(r);
	/* one slash after the scheme is curl's to fix */
	r = bind_ok("{\"url\": \"http:/example.org/x\"}");
	ck_assert_str_eq(r->url, "http://example.org/x");
	request_free(r);
	/* with params the URL is rebuilt by curl */
	r = bind_ok("{\"url\": \"HTTPS://example.org/x\", \"params\": {\"a\": \"b\"}}");
	ck_assert_str_eq(r->url, "https://example.org/x?a=b");
	request_free(r);
}
END_TEST

START_TEST(test_url_without_scheme_or_host_is_rejected)
{
	expect_error("{\"url\": \"example.org/x\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"/x\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org:99999/\"}", ERR_INVALID_REQUEST, "'url'");
}
END_TEST

START_TEST(test_control_characters_in_url_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/a\\u0000b\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org/a\\r\\nHost: x\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org/a\\nb\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org/a b\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org/a\\tb\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://e.org/a\\u007fb\"}", ERR_INVALID_REQUEST, "'url'");
}
END_TEST

START_TEST(test_non_ascii_url_bytes_are_percent_encoded)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/caf\\u00e9?q=%41\"}");

	ck_assert_str_eq(r->url, "http://e.org/caf%c3%a9?q=%41");
	request_free(r);
}
END_TEST

START_TEST(test_userinfo_is_allowed)
{
	struct fetch_request *r = bind_ok("{\"url\": \"https://u:p@e.org:8443/x\"}");

	ck_assert_str_eq(r->url, "https://u:p@e.org:8443/x");
	request_free(r);
}
END_TEST

START_TEST(test_non_ascii_host_curl_cannot_convert_is_rejected)
{
	/* fetchd runs in the C locale, where libidn2 converts no non-ASCII
	 * name: each of these used to pass and fail later as a 502. */
	expect_error("{\"url\": \"http://\\uff11\\uff12\\uff17.0.0.1/\"}", ERR_INVALID_REQUEST,
		     "field 'url'");
	expect_error("{\"url\": \"http://b\\u00fccher.example/\"}", ERR_INVALID_REQUEST,
		     "field 'url'");
	/* the xn-- form is ASCII */
	request_free(bind_ok("{\"url\": \"http://xn--bcher-kva.example/\"}"));
}
END_TEST

START_TEST(test_non_ascii_spelling_of_an_address_is_rejected)
{
	/* Where libidn2 can convert (a UTF-8 locale), UTS #46 maps full-width
	 * digits to ASCII ones: the host would be the address 127.0.0.1. */
	ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
	expect_error("{\"url\": \"http://\\uff11\\uff12\\uff17.0.0.1/\"}", ERR_INVALID_REQUEST,
		     "IPv4");
	expect_error("{\"url\": \"http://\\uff11\\uff12\\uff17.1/\"}", ERR_INVALID_REQUEST,
		     "IPv4");
	expect_error("{\"url\": \"http://b\\u00fccher.0x7f./\"}", ERR_INVALID_REQUEST, "IPv4");
	/* names stay names */
	request_free(bind_ok("{\"url\": \"http://b\\u00fccher.example/\"}"));
	request_free(bind_ok("{\"url\": \"http://\\uff45\\uff58.com/\"}"));
	request_free(bind_ok("{\"url\": \"http://b\\u00fccher.0x7g/\"}"));
	setlocale(LC_CTYPE, "C");
}
END_TEST

/* ---- params ---- */

START_TEST(test_params_are_form_encoded_and_appended)
{
	/* Like Python's urlencode: space is '+', reserved bytes %XX (which
	 * libcurl's URL API normalizes to lower-case hex). */
	struct fetch_request *r =
		bind_ok("{\"url\": \"https://example.org/a?b=1\", \"params\": {\"q\": \"x y\", "
			"\"a&b=c\": \"1/2?#\", \"e\": \"\\u00e9\"}}");

	ck_assert_str_eq(r->url, "https://example.org/a?b=1&q=x+y&a%26b%3dc=1%2f2%3f%23&e=%c3%a9");
	request_free(r);
}
END_TEST

START_TEST(test_params_without_query_start_one)
{
	struct fetch_request *r =
		bind_ok("{\"url\": \"https://example.org/a#frag\", \"params\": {\"q\": \"x\"}}");

	ck_assert_str_eq(r->url, "https://example.org/a?q=x#frag");
	request_free(r);
}
END_TEST

START_TEST(test_params_scalars_are_rendered)
{
	struct fetch_request *r =
		bind_ok("{\"url\": \"http://e.org/\", \"params\": {\"n\": -5, \"f\": 1.5, "
			"\"g\": 0.1, \"t\": true, \"u\": false, \"s\": \"\"}}");

	ck_assert_str_eq(r->url, "http://e.org/?n=-5&f=1.5&g=0.1&t=true&u=false&s=");
	request_free(r);
}
END_TEST

START_TEST(test_params_list_keeps_repeats)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"params\": [[\"k\", "
					  "\"1\"], [\"k\", 2], [\"j\", \"3\"]]}");

	ck_assert_str_eq(r->url, "http://e.org/?k=1&k=2&j=3");
	request_free(r);
}
END_TEST

START_TEST(test_params_empty_leave_url_alone)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/x\", \"params\": {}}");

	ck_assert_str_eq(r->url, "http://e.org/x");
	request_free(r);
}
END_TEST

START_TEST(test_params_of_wrong_type_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"params\": \"q=1\"}", ERR_INVALID_REQUEST,
		     "'params'");
	expect_error("{\"url\": \"http://e.org/\", \"params\": {\"q\": null}}", ERR_INVALID_REQUEST,
		     "'q'");
	expect_error("{\"url\": \"http://e.org/\", \"params\": {\"q\": [1]}}", ERR_INVALID_REQUEST,
		     "'q'");
	expect_error("{\"url\": \"http://e.org/\", \"params\": [[\"q\"]]}", ERR_INVALID_REQUEST,
		     "'params'");
	expect_error("{\"url\": \"http://e.org/\", \"params\": [[1, \"x\"]]}", ERR_INVALID_REQUEST,
		     "'params'");
	expect_error("{\"url\": \"http://e.org/\", \"params\": {\"q\": \"a\\u0000\"}}",
		     ERR_INVALID_REQUEST, "'q'");
}
END_TEST

/* What request.c produced before it built the query itself: every param
 * form-encoded (as Python's quote_plus) and appended by libcurl with
 * CURLU_APPENDQUERY, one call each. */
static char *appendquery_reference(const char *url, const char *const (*params)[2], size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	CURLU *u = curl_url();
	char *got = NULL, *out;

	ck_assert_int_eq(curl_url_set(u, CURLUPART_URL, url,
				      CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE),
			 CURLUE_OK);
	for (size_t i = 0; i < n; i++) {
		char q[256];
		size_t o = 0;

		for (int part = 0; part < 2; part++) {
			for (const unsigned char *c = (const unsigned char *)params[i][part]; *c;
			     c++) {
				if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
				    (*c >= '0' && *c <= '9') || strchr("-._~", *c) != NULL) {
					q[o++] = (char)*c;
				} else if (*c == ' ') {
					q[o++] = '+';
				} else {
					q[o++] = '%';
					q[o++] = hex[*c >> 4];
					q[o++] = hex[*c & 15];
				}
			}
			if (part == 0)
				q[o++] = '=';
		}
		q[o] = '\0';
		ck_assert_int_eq(curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY), CURLUE_OK);
	}
	ck_assert_int_eq(curl_url_get(u, CURLUPART_URL, &got, 0), CURLUE_OK);
	out = strdup(got);
	curl_free(got);
	curl_url_cleanup(u);
	return out;
}

START_TEST(test_params_query_is_what_appendquery_gave)
{
	static const char *const urls[] = {
		"http://e.org/",	  "http://e.org/a?b=1",	     "http://e.org/a?",
		"http://e.org/a?b=1&",	  "http://e.org/a#frag",     "http://e.org/a?x=%41#f",
		"http://e.org/caf\xc3\xa9?q", "HTTP://e.org:81/p?a=b&&c", "http://e.org/?%7e=%7E",
	};
	static const char *const params[][2] = {
		{"q", "x y"}, {"a&b=c", "1/2?#"}, {"e", "\xc3\xa9"}, {"", ""},
		{"k", "~-._*+%"}, {"Z9", "a=b&c;d"},
	};

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		for (size_t n = 1; n <= sizeof(params) / sizeof(params[0]); n++) {
			json_t *list = json_array(), *doc;
			struct fetch_request *r;
			char *want = appendquery_reference(urls[i], params, n);

			for (size_t k = 0; k < n; k++)
				json_array_append_new(list,
						      json_pack("[s,s]", params[k][0], params[k][1]));
			doc = json_pack("{s:s,s:o}", "url", urls[i], "params", list);
			r = request_from_json(doc, &cfg, &rerr);
			ck_assert_msg(r != NULL, "%s: %s", urls[i], rerr.message);
			ck_assert_msg(strcmp(r->url, want) == 0, "%s with %zu params: got %s, want %s",
				      urls[i], n, r->url, want);
			request_free(r);
			json_decref(doc);
			free(want);
		}
	}
}
END_TEST

/* A request of url and params, where params is "[[\"a\", \"VALUE\"]]" with
 * a value of n 'x' bytes and then extra (a JSON text, may be ""). */
static char *params_request(size_t n, const char *extra)
{
	size_t len = n + strlen(extra) + 128;
	char *text = malloc(len), *o;

	ck_assert_ptr_nonnull(text);
	o = text + snprintf(text, len, "{\"url\": \"http://e.org/?\", \"params\": [[\"a\", \"");
	memset(o, 'x', n);
	o += n;
	snprintf(o, len - (size_t)(o - text), "\"]%s]}", extra);
	return text;
}

START_TEST(test_params_cap_is_the_url_cap)
{
	/* "http://e.org/?a=" is 16 bytes: the URL is 16 + n */
	char *text = params_request(16384 - 16, "");
	struct fetch_request *r = bind_ok(text);

	ck_assert_uint_eq(strlen(r->url), 16384);
	request_free(r);
	free(text);
	text = params_request(16384 - 16 + 1, "");
	expect_error(text, ERR_INVALID_REQUEST, "'params'");
	free(text);
	/* counted encoded: 3000 e-acute are 6000 bytes, 18000 once encoded */
	text = malloc(6001);
	ck_assert_ptr_nonnull(text);
	for (int i = 0; i < 3000; i++)
		memcpy(text + 2 * i, "\xc3\xa9", 2);
	text[6000] = '\0';
	json_t *doc = json_pack("{s:s,s:{s:s}}", "url", "http://e.org/", "params", "a", text);
	ck_assert_ptr_null(request_from_json(doc, &cfg, &rerr));
	ck_assert_msg(strstr(rerr.message, "'params'") != NULL, "%s", rerr.message);
	json_decref(doc);
	free(text);
}
END_TEST

START_TEST(test_params_stop_at_the_first_one_past_the_cap)
{
	/* The second param is of the wrong type: it is never looked at, since
	 * the first already passes the cap. (Appending every param first and
	 * checking the URL's length afterwards, as fetchd did, reported the
	 * second one and took quadratic time on the loop thread.) */
	char *text = params_request(20000, ", [\"b\", null]");

	expect_error(text, ERR_INVALID_REQUEST, "field 'params' makes the URL longer than 16384");
	free(text);
}
END_TEST

START_TEST(test_many_params_are_refused_at_the_cap)
{
	/* 60k params, 840 KB of request: refused once the query passes the
	 * cap, after about 2000 of them */
	json_t *params = json_object(), *doc;
	struct fetch_request *r;
	char name[16];

	for (int i = 0; i < 60000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		json_object_set_new(params, name, json_string("v"));
	}
	doc = json_pack("{s:s,s:o}", "url", "http://e.org/", "params", params);
	r = request_from_json(doc, &cfg, &rerr);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(rerr.code, ERR_INVALID_REQUEST);
	ck_assert_msg(strstr(rerr.message, "'params'") != NULL, "%s", rerr.message);
	json_decref(doc);
}
END_TEST

/* ---- headers ---- */

START_TEST(test_headers_object_is_bound_in_order)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"headers\": "
					  "{\"Accept\": \"text/html\", \"X-B\": \"\", \"x-a\": "
					  "\"caf\\u00e9\\t1\"}}");

	ck_assert_uint_eq(r->n_headers, 3);
	ck_assert_str_eq(r->headers[0].name, "Accept");
	ck_assert_str_eq(r->headers[0].value, "text/html");
	ck_assert_str_eq(r->headers[1].name, "X-B");
	ck_assert_str_eq(r->headers[1].value, "");
	ck_assert_str_eq(r->headers[2].name, "x-a");
	ck_assert_str_eq(r->headers[2].value, "caf\xc3\xa9\t1");
	request_free(r);
}
END_TEST

START_TEST(test_headers_list_keeps_repeats)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"headers\": "
					  "[[\"X-A\", \"1\"], [\"X-A\", \"2\"], [\"Y\", \"3\"]]}");

	ck_assert_uint_eq(r->n_headers, 3);
	ck_assert_str_eq(r->headers[0].name, "X-A");
	ck_assert_str_eq(r->headers[0].value, "1");
	ck_assert_str_eq(r->headers[1].name, "X-A");
	ck_assert_str_eq(r->headers[1].value, "2");
	ck_assert_str_eq(r->headers[2].value, "3");
	request_free(r);
}
END_TEST

START_TEST(test_headers_of_wrong_shape_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"headers\": \"A: b\"}", ERR_INVALID_REQUEST,
		     "'headers'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\"]]}", ERR_INVALID_REQUEST,
		     "'headers'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\", \"b\", \"c\"]]}",
		     ERR_INVALID_REQUEST, "'headers'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [\"A\"]}", ERR_INVALID_REQUEST,
		     "'headers'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\", 1]]}", ERR_INVALID_REQUEST,
		     "header 'A' must be a string");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": null}}",
		     ERR_INVALID_REQUEST, "header 'A' must be a string");
}
END_TEST

START_TEST(test_cr_lf_nul_in_header_value_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"x\\r\\nB: y\"}}",
		     ERR_INVALID_REQUEST, "header 'A'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"x\\ny\"}}",
		     ERR_INVALID_REQUEST, "header 'A'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"x\\ry\"}}",
		     ERR_INVALID_REQUEST, "header 'A'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"x\\u0000y\"}}",
		     ERR_INVALID_REQUEST, "header 'A'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\", \"\\u0001\"]]}",
		     ERR_INVALID_REQUEST, "header 'A'");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\", \"\\u007f\"]]}",
		     ERR_INVALID_REQUEST, "header 'A'");
}
END_TEST

START_TEST(test_cr_lf_nul_in_header_name_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\\r\\nB\": \"x\"}}",
		     ERR_INVALID_REQUEST, "CR, LF or NUL");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\\nB\", \"x\"]]}",
		     ERR_INVALID_REQUEST, "CR, LF or NUL");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": [[\"A\\u0000B\", \"x\"]]}",
		     ERR_INVALID_REQUEST, "CR, LF or NUL");
	/* In an object key jansson cannot hold NUL: still invalid_request. */
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A\\u0000B\": \"x\"}}",
		     ERR_INVALID_REQUEST, "NUL");
}
END_TEST

START_TEST(test_non_token_header_name_is_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"Bad Name\": \"x\"}}",
		     ERR_INVALID_REQUEST, "'Bad Name' is not an RFC 9110 token");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"A:B\": \"x\"}}",
		     ERR_INVALID_REQUEST, "token");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"caf\\u00e9\": \"x\"}}",
		     ERR_INVALID_REQUEST, "token");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"(x)\": \"x\"}}",
		     ERR_INVALID_REQUEST, "token");
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"\": \"x\"}}",
		     ERR_INVALID_REQUEST, "header names");
}
END_TEST

START_TEST(test_every_tchar_is_a_valid_header_name)
{
	struct fetch_request *r = bind_ok(
		"{\"url\": \"http://e.org/\", \"headers\": {\"!#$%&'*+-.^_`|~09azAZ\": \"x\"}}");

	ck_assert_str_eq(r->headers[0].name, "!#$%&'*+-.^_`|~09azAZ");
	request_free(r);
}
END_TEST

START_TEST(test_framing_header_is_rejected)
{
	static const char *const names[] = {
		"Content-Length",
		"content-length",
		"Transfer-Encoding",
		"Connection",
		"Host",
		"HOST",
		"Keep-Alive",
		"Upgrade",
		"TE",
		"Trailer",
		"Proxy-Connection",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"url\": \"http://e.org/\", \"headers\": [[\"%s\", \"1\"]]}", names[i]);
		expect_error(buf, ERR_INVALID_REQUEST, "is set by fetchd");
	}
	expect_error("{\"url\": \"http://e.org/\", \"headers\": {\"content-length\": \"1\"}}",
		     ERR_INVALID_REQUEST, "header 'Content-Length' is set by fetchd");
}
END_TEST

/* Builds {"url": ..., "headers": [[name, value] x count]}. */
static char *headers_doc(size_t count, size_t name_len, size_t value_len)
{
	json_t *doc = json_pack("{s:s}", "url", "http://e.org/");
	json_t *list = json_array();
	char *name = malloc(name_len + 1);
	char *value = malloc(value_len + 1);
	char *text;

	memset(name, 'n', name_len);
	name[name_len] = '\0';
	memset(value, 'v', value_len);
	value[value_len] = '\0';
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, json_pack("[ss]", name, value));
	json_object_set_new(doc, "headers", list);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	free(name);
	free(value);
	return text;
}

START_TEST(test_header_caps_are_enforced)
{
	char *text;
	struct fetch_request *r;

	text = headers_doc(100, 256, 8192);
	r = bind_ok(text);
	ck_assert_uint_eq(r->n_headers, 100);
	request_free(r);
	free(text);

	text = headers_doc(101, 1, 1);
	expect_error(text, ERR_INVALID_REQUEST, "more than 100 headers");
	free(text);

	text = headers_doc(1, 257, 1);
	expect_error(text, ERR_INVALID_REQUEST, "header names");
	free(text);

	text = headers_doc(1, 1, 8193);
	expect_error(text, ERR_INVALID_REQUEST, "longer than 8192");
	free(text);
}
END_TEST

START_TEST(test_json_body_fits_with_a_full_header_list)
{
	char *text = headers_doc(100, 1, 1);
	json_t *doc = json_loads(text, 0, NULL);
	struct fetch_request *r;

	json_object_set_new(doc, "json", json_true());
	r = request_from_json(doc, &cfg, &rerr);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->n_headers, 101);
	ck_assert_str_eq(r->headers[100].name, "Content-Type");
	request_free(r);
	json_decref(doc);
	free(text);
}
END_TEST

/* ---- body ---- */

START_TEST(test_two_body_options_are_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"body\": \"a\", \"json\": 1}",
		     ERR_INVALID_REQUEST, "at most one of body, body_base64, json");
	expect_error("{\"url\": \"http://e.org/\", \"body\": \"a\", \"body_base64\": \"YQ==\"}",
		     ERR_INVALID_REQUEST, "at most one");
	expect_error("{\"url\": \"http://e.org/\", \"json\": null, \"body_base64\": \"YQ==\"}",
		     ERR_INVALID_REQUEST, "at most one");
}
END_TEST

START_TEST(test_body_string_is_binary_safe)
{
	struct fetch_request *r = bind_ok(
		"{\"url\": \"http://e.org/\", \"method\": \"post\", \"body\": \"a\\u0000b\"}");

	ck_assert_uint_eq(r->body_len, 3);
	ck_assert_mem_eq(r->body, "a\0b", 3);
	ck_assert_uint_eq(r->n_headers, 0);
	request_free(r);
}
END_TEST

START_TEST(test_empty_body_is_a_body)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"body\": \"\"}");

	ck_assert_ptr_nonnull(r->body);
	ck_assert_uint_eq(r->body_len, 0);
	request_free(r);
}
END_TEST

START_TEST(test_body_of_wrong_type_is_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"body\": 1}", ERR_INVALID_REQUEST,
		     "field 'body' must be a string");
	expect_error("{\"url\": \"http://e.org/\", \"body_base64\": [\"YQ==\"]}",
		     ERR_INVALID_REQUEST, "field 'body_base64' must be a string");
}
END_TEST

START_TEST(test_json_body_adds_content_type)
{
	struct fetch_request *r =
		bind_ok("{\"url\": \"http://e.org/\", \"headers\": {\"A\": \"1\"}, "
			"\"json\": {\"any\": \"value\", \"n\": [1, 2.5, null]}}");

	ck_assert_str_eq(r->body, "{\"any\":\"value\",\"n\":[1,2.5,null]}");
	ck_assert_uint_eq(r->body_len, strlen(r->body));
	ck_assert_uint_eq(r->n_headers, 2);
	ck_assert_str_eq(header_value(r, "Content-Type"), "application/json");
	request_free(r);
}
END_TEST

START_TEST(test_json_body_keeps_client_content_type)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"headers\": "
					  "{\"content-type\": \"application/vnd.x+json\"}, "
					  "\"json\": [1]}");

	ck_assert_str_eq(r->body, "[1]");
	ck_assert_uint_eq(r->n_headers, 1);
	ck_assert_str_eq(header_value(r, "content-type"), "application/vnd.x+json");
	request_free(r);
}
END_TEST

START_TEST(test_json_body_may_be_a_scalar)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"json\": null}");

	ck_assert_str_eq(r->body, "null");
	request_free(r);
	r = bind_ok("{\"url\": \"http://e.org/\", \"json\": \"a\\u0000\"}");
	ck_assert_str_eq(r->body, "\"a\\u0000\"");
	request_free(r);
}
END_TEST

START_TEST(test_body_base64_is_decoded)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"body_base64\": \"aGVsbG8=\"}");
	ck_assert_uint_eq(r->body_len, 5);
	ck_assert_mem_eq(r->body, "hello", 5);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"body_base64\": \"aGk=\"}");
	ck_assert_uint_eq(r->body_len, 2);
	ck_assert_mem_eq(r->body, "hi", 2);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"body_base64\": \"AAH/+g==\"}");
	ck_assert_uint_eq(r->body_len, 4);
	ck_assert_mem_eq(r->body, "\x00\x01\xff\xfa", 4);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"body_base64\": \"YWJj\"}");
	ck_assert_uint_eq(r->body_len, 3);
	ck_assert_mem_eq(r->body, "abc", 3);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"body_base64\": \"\"}");
	ck_assert_ptr_nonnull(r->body);
	ck_assert_uint_eq(r->body_len, 0);
	request_free(r);
}
END_TEST

START_TEST(test_invalid_base64_is_rejected)
{
	static const char *const bad[] = {
		"aGVsbG8", "aGVsbG8==", "aGVs bG8=", "aGVs\\nbG8=", "====",     "a===",
		"a=bc",    "ab=c",      "aGVsbG8-",  "aGVsbG8_",    "YQ==YQ==", "\\u00e9AAA",
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"body_base64\": \"%s\"}",
			 bad[i]);
		expect_error(buf, ERR_INVALID_REQUEST, "field 'body_base64' is not valid base64");
	}
}
END_TEST

/* ---- timeouts ---- */

START_TEST(test_timeout_number_sets_total_and_caps_connect)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": 10}");
	ck_assert_uint_eq(r->timeout_ms, 10000);
	ck_assert_uint_eq(r->connect_timeout_ms, 5000);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": 2.5}");
	ck_assert_uint_eq(r->timeout_ms, 2500);
	ck_assert_uint_eq(r->connect_timeout_ms, 2500);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": 0.0001}");
	ck_assert_uint_eq(r->timeout_ms, 1);
	ck_assert_uint_eq(r->connect_timeout_ms, 1);
	request_free(r);
}
END_TEST

START_TEST(test_timeout_object_sets_connect_and_total)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": {\"connect\": 2, \"total\": 10}}");
	ck_assert_uint_eq(r->connect_timeout_ms, 2000);
	ck_assert_uint_eq(r->timeout_ms, 10000);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": {\"connect\": 1.5}}");
	ck_assert_uint_eq(r->connect_timeout_ms, 1500);
	ck_assert_uint_eq(r->timeout_ms, 30000);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": {\"connect\": 4, \"total\": 3}}");
	ck_assert_uint_eq(r->connect_timeout_ms, 3000);
	ck_assert_uint_eq(r->timeout_ms, 3000);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": {}}");
	ck_assert_uint_eq(r->connect_timeout_ms, 5000);
	ck_assert_uint_eq(r->timeout_ms, 30000);
	request_free(r);
}
END_TEST

START_TEST(test_timeout_above_config_is_capped)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": 1e300}");
	ck_assert_uint_eq(r->timeout_ms, 30000);
	ck_assert_uint_eq(r->connect_timeout_ms, 5000);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"timeout\": {\"connect\": 60, \"total\": 600}}");
	ck_assert_uint_eq(r->connect_timeout_ms, 5000);
	ck_assert_uint_eq(r->timeout_ms, 30000);
	request_free(r);
}
END_TEST

START_TEST(test_bad_timeout_is_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": 0}", ERR_INVALID_REQUEST,
		     "field 'timeout' must be a positive number");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": -1}", ERR_INVALID_REQUEST,
		     "'timeout'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": \"10s\"}", ERR_INVALID_REQUEST,
		     "'timeout'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": true}", ERR_INVALID_REQUEST,
		     "'timeout'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": null}", ERR_INVALID_REQUEST,
		     "'timeout'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": {\"conect\": 1}}",
		     ERR_INVALID_REQUEST, "unknown field 'timeout.conect'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": {\"total\": \"1\"}}",
		     ERR_INVALID_REQUEST, "field 'timeout.total'");
	expect_error("{\"url\": \"http://e.org/\", \"timeout\": {\"connect\": 0}}",
		     ERR_INVALID_REQUEST, "field 'timeout.connect'");
}
END_TEST

/* ---- redirects, sizes, booleans ---- */

START_TEST(test_redirect_options_are_bound_and_capped)
{
	struct fetch_request *r;

	r = bind_ok(
		"{\"url\": \"http://e.org/\", \"follow_redirects\": false, \"max_redirects\": 3}");
	ck_assert(!r->follow_redirects);
	ck_assert_uint_eq(r->max_redirects, 3);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_redirects\": 0}");
	ck_assert_uint_eq(r->max_redirects, 0);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_redirects\": 50}");
	ck_assert_uint_eq(r->max_redirects, 10);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_redirects\": 9223372036854775807}");
	ck_assert_uint_eq(r->max_redirects, 10);
	request_free(r);
}
END_TEST

START_TEST(test_max_redirects_must_be_a_non_negative_integer)
{
	static const char *const bad[] = {"-1", "1.0", "\"3\"", "true", "null"};
	char buf[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"max_redirects\": %s}",
			 bad[i]);
		expect_error(buf, ERR_INVALID_REQUEST,
			     "field 'max_redirects' must be a non-negative integer");
	}
}
END_TEST

START_TEST(test_max_bytes_below_config_truncates)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_bytes\": 1024}");
	ck_assert_uint_eq(r->max_bytes, 1024);
	ck_assert(r->truncate);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_bytes\": 10485760}");
	ck_assert_uint_eq(r->max_bytes, 10u << 20);
	ck_assert(!r->truncate);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"max_bytes\": 1099511627776}");
	ck_assert_uint_eq(r->max_bytes, 10u << 20);
	ck_assert(!r->truncate);
	request_free(r);
}
END_TEST

START_TEST(test_max_bytes_must_be_a_positive_integer)
{
	static const char *const bad[] = {"0", "-5", "1.5", "\"1M\"", "false"};
	char buf[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"max_bytes\": %s}",
			 bad[i]);
		expect_error(buf, ERR_INVALID_REQUEST,
			     "field 'max_bytes' must be a positive integer");
	}
}
END_TEST

START_TEST(test_verify_tls_false_needs_allow_insecure)
{
	struct fetch_request *r;

	expect_error("{\"url\": \"https://e.org/\", \"verify_tls\": false}", ERR_INVALID_REQUEST,
		     "verify_tls: false is not allowed by this server (allow_insecure = false)");
	r = bind_ok("{\"url\": \"https://e.org/\", \"verify_tls\": true}");
	ck_assert(r->verify_tls);
	request_free(r);

	cfg.allow_insecure = true;
	r = bind_ok("{\"url\": \"https://e.org/\", \"verify_tls\": false}");
	ck_assert(!r->verify_tls);
	request_free(r);
}
END_TEST

START_TEST(test_booleans_must_be_json_booleans)
{
	static const char *const fields[] = {"follow_redirects", "verify_tls", "decompress"};
	static const char *const bad[] = {"1", "0", "\"true\"", "null"};
	char buf[128], want[96];

	for (size_t f = 0; f < 3; f++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"%s\": %s}",
				 fields[f], bad[i]);
			snprintf(want, sizeof(want), "field '%s' must be a boolean", fields[f]);
			expect_error(buf, ERR_INVALID_REQUEST, want);
		}
	}
}
END_TEST

START_TEST(test_decompress_is_bound)
{
	struct fetch_request *r = bind_ok("{\"url\": \"http://e.org/\", \"decompress\": false}");

	ck_assert(!r->decompress);
	request_free(r);
}
END_TEST

/* ---- body_mode, fields, pool ---- */

START_TEST(test_body_mode_values_are_bound)
{
	static const char *const names[] = {"auto", "text", "base64", "none"};
	static const enum body_mode modes[] = {BODY_MODE_AUTO, BODY_MODE_TEXT, BODY_MODE_BASE64,
					       BODY_MODE_NONE};
	char buf[128];

	for (size_t i = 0; i < 4; i++) {
		struct fetch_request *r;

		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"body_mode\": \"%s\"}",
			 names[i]);
		r = bind_ok(buf);
		ck_assert_int_eq(r->body_mode, modes[i]);
		request_free(r);
	}
}
END_TEST

START_TEST(test_unknown_body_mode_is_rejected)
{
	expect_error("{\"url\": \"http://e.org/\", \"body_mode\": \"raw\"}", ERR_INVALID_REQUEST,
		     "field 'body_mode'");
	expect_error("{\"url\": \"http://e.org/\", \"body_mode\": 1}", ERR_INVALID_REQUEST,
		     "field 'body_mode' must be a string");
}
END_TEST

START_TEST(test_fields_select_response_fields)
{
	struct fetch_request *r;

	r = bind_ok("{\"url\": \"http://e.org/\", \"fields\": [\"status\", \"headers\", \"text\", "
		    "\"status\"]}");
	ck_assert_uint_eq(r->fields, FIELD_STATUS | FIELD_HEADERS | FIELD_TEXT);
	request_free(r);

	r = bind_ok("{\"url\": \"http://e.org/\", \"fields\": []}");
	ck_assert_uint_eq(r->fields, 0);
	request_free(r);
}
END_TEST

START_TEST(test_unknown_fields_name_is_rejected_naming_it)
{
	expect_error("{\"url\": \"http://e.org/\", \"fields\": [\"status\", \"stauts\"]}",
		     ERR_INVALID_REQUEST, "'stauts'");
	expect_error("{\"url\": \"http://e.org/\", \"fields\": [\"Status\"]}", ERR_INVALID_REQUEST,
		     "'Status'");
	expect_error("{\"url\": \"http://e.org/\", \"fields\": \"status\"}", ERR_INVALID_REQUEST,
		     "field 'fields' must be an array of strings");
	expect_error("{\"url\": \"http://e.org/\", \"fields\": [1]}", ERR_INVALID_REQUEST,
		     "field 'fields' must be an array of strings");
}
END_TEST

START_TEST(test_every_field_name_round_trips)
{
	unsigned seen = 0;
	char buf[128];

	for (unsigned bit = 1; bit & FIELD_ALL; bit <<= 1) {
		const char *name = request_field_name(bit);
		struct fetch_request *r;

		ck_assert_ptr_nonnull(name);
		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"fields\": [\"%s\"]}",
			 name);
		r = bind_ok(buf);
		ck_assert_uint_eq(r->fields, bit);
		request_free(r);
		seen |= bit;
	}
	ck_assert_uint_eq(seen, FIELD_ALL);
	ck_assert_str_eq(request_field_name(FIELD_STATUS), "status");
	ck_assert_str_eq(request_field_name(FIELD_CONTENT_BASE64), "content_base64");
	ck_assert_str_eq(request_field_name(FIELD_WORKER), "worker");
	ck_assert_ptr_null(request_field_name(0));
	ck_assert_ptr_null(request_field_name(FIELD_URL | FIELD_STATUS));
	ck_assert_ptr_null(request_field_name(FIELD_ALL + 1));
}
END_TEST

START_TEST(test_pool_must_be_known)
{
	request_free(bind_ok("{\"url\": \"http://e.org/\", \"pool\": \"default\"}"));
	expect_error("{\"url\": \"http://e.org/\", \"pool\": \"slow\"}", ERR_INVALID_REQUEST,
		     "unknown pool 'slow'");
	expect_error("{\"url\": \"http://e.org/\", \"pool\": 1}", ERR_INVALID_REQUEST,
		     "field 'pool' must be a string");
}
END_TEST

START_TEST(test_every_documented_field_is_accepted)
{
	struct fetch_request *r;

	cfg.allow_insecure = true;
	r = bind_ok("{\"url\": \"https://example.org/a?b=1\", \"method\": \"POST\", "
		    "\"params\": {\"q\": \"x y\"}, \"headers\": {\"Accept\": \"text/html\"}, "
		    "\"json\": {\"any\": \"value\"}, \"timeout\": 10.0, "
		    "\"follow_redirects\": true, \"max_redirects\": 10, \"max_bytes\": 1048576, "
		    "\"verify_tls\": true, \"decompress\": true, \"body_mode\": \"auto\", "
		    "\"fields\": [\"status\", \"headers\", \"text\"], \"pool\": \"default\"}");
	ck_assert_str_eq(r->url, "https://example.org/a?b=1&q=x+y");
	ck_assert_str_eq(r->method, "POST");
	ck_assert_uint_eq(r->max_bytes, 1048576);
	ck_assert(r->truncate);
	request_free(r);
}
END_TEST

/* ---- errors.c ---- */

START_TEST(test_error_codes_have_names_and_statuses)
{
	static const struct {
		enum fetchd_err err;
		const char *name;
		int status;
	} table[] = {
		{ERR_INVALID_JSON, "invalid_json", 400},
		{ERR_INVALID_REQUEST, "invalid_request", 400},
		{ERR_UNSUPPORTED_SCHEME, "unsupported_scheme", 400},
		{ERR_UNAUTHORIZED, "unauthorized", 401},
		{ERR_DESTINATION_DENIED, "destination_denied", 403},
		{ERR_NOT_FOUND, "not_found", 404},
		{ERR_METHOD_NOT_ALLOWED, "method_not_allowed", 405},
		{ERR_REQUEST_TOO_LARGE, "request_too_large", 413},
		{ERR_OVERLOADED, "overloaded", 503},
		{ERR_SHUTTING_DOWN, "shutting_down", 503},
		{ERR_DNS_FAILURE, "dns_failure", 502},
		{ERR_CONNECT_FAILED, "connect_failed", 502},
		{ERR_TLS_ERROR, "tls_error", 502},
		{ERR_TOO_MANY_REDIRECTS, "too_many_redirects", 502},
		{ERR_RESPONSE_TOO_LARGE, "response_too_large", 502},
		{ERR_UPSTREAM_ERROR, "upstream_error", 502},
		{ERR_UPSTREAM_TIMEOUT, "upstream_timeout", 504},
		{ERR_LOOP_DETECTED, "loop_detected", 508},
		{ERR_CLIENT_CLOSED, "client_closed", 499},
	};

	ck_assert_uint_eq(sizeof(table) / sizeof(table[0]), ERR__COUNT - 1);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		ck_assert_str_eq(err_code_name(table[i].err), table[i].name);
		ck_assert_int_eq(err_http_status(table[i].err), table[i].status);
	}
	ck_assert_str_eq(err_code_name(ERR_NONE), "internal_error");
	ck_assert_int_eq(err_http_status(ERR__COUNT), 500);
	ck_assert_str_eq(err_code_name((enum fetchd_err)999), "internal_error");
}
END_TEST

START_TEST(test_err_document_has_the_documented_shape)
{
	size_t len = 0;
	char *doc = err_document(ERR_INVALID_REQUEST, "field 'url' is required", NULL, &len);

	ck_assert_str_eq(doc, "{\"error\":{\"code\":\"invalid_request\",\"message\":"
			      "\"field 'url' is required\"}}");
	ck_assert_uint_eq(len, strlen(doc));
	free(doc);
}
END_TEST

START_TEST(test_err_object_copies_extra_without_overriding_code)
{
	json_t *extra = json_pack("{s:i,s:s,s:s}", "curl_code", 6, "curl_error",
				  "Could not resolve host", "code", "evil");
	json_t *obj = err_object(ERR_DNS_FAILURE, "cannot resolve e.org", extra);
	json_t *inner = json_object_get(obj, "error");

	ck_assert_str_eq(json_string_value(json_object_get(inner, "code")), "dns_failure");
	ck_assert_str_eq(json_string_value(json_object_get(inner, "message")),
			 "cannot resolve e.org");
	ck_assert_int_eq(json_integer_value(json_object_get(inner, "curl_code")), 6);
	ck_assert_str_eq(json_string_value(json_object_get(inner, "curl_error")),
			 "Could not resolve host");
	ck_assert_int_eq(extra->refcount, 1);
	json_decref(obj);
	json_decref(extra);
}
END_TEST

START_TEST(test_err_message_with_invalid_utf8_is_kept)
{
	char *doc = err_document(ERR_UPSTREAM_ERROR,
				 "bad \xff\xfe header caf\xc3\xa9 \xc3 \xed\xa0\x80", NULL, NULL);

	ck_assert_str_eq(doc, "{\"error\":{\"code\":\"upstream_error\",\"message\":"
			      "\"bad \xc3\xbf\xc3\xbe header caf\xc3\x83\xc2\xa9 \xc3\x83 "
			      "\xc3\xad\xc2\xa0\xe2\x82\xac\"}}");
	free(doc);
}
END_TEST

START_TEST(test_err_document_without_message_uses_code)
{
	char *doc = err_document(ERR_NOT_FOUND, NULL, NULL, NULL);

	ck_assert_str_eq(doc, "{\"error\":{\"code\":\"not_found\",\"message\":\"not_found\"}}");
	free(doc);
}
END_TEST

START_TEST(test_request_error_renders_as_document)
{
	struct fetch_request *r = bind_text("{\"url\": \"http://e.org/\", \"timout\": 5}");
	char *doc;

	ck_assert_ptr_null(r);
	doc = err_document(rerr.code, rerr.message, NULL, NULL);
	ck_assert_str_eq(doc, "{\"error\":{\"code\":\"invalid_request\",\"message\":"
			      "\"unknown field 'timout'\"}}");
	free(doc);
}
END_TEST

/* "http:///echo" parses in libcurl as host "echo": an empty host is a
 * 400 naming url, whatever the number of slashes after it. */
START_TEST(test_url_with_empty_host_is_rejected)
{
	expect_error("{\"url\": \"http:///echo\"}", ERR_INVALID_REQUEST, "'url' has no host");
	expect_error("{\"url\": \"HTTPS:///echo?x=1\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http:////echo\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http:///\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://@/x\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http://:80/x\"}", ERR_INVALID_REQUEST, "'url'");
	expect_error("{\"url\": \"http:///echo\", \"params\": {\"a\": \"b\"}}",
		     ERR_INVALID_REQUEST, "'url'");
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("request");
	TCase *te = tcase_create("errors");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_defaults_come_from_config);
	tcase_add_test(tc, test_verify_tls_default_follows_config);
	tcase_add_test(tc, test_lower_case_method_is_upper_cased);
	tcase_add_test(tc, test_unknown_method_is_rejected);
	tcase_add_test(tc, test_unknown_field_is_rejected_naming_it);
	tcase_add_test(tc, test_non_object_top_level_is_invalid_request);
	tcase_add_test(tc, test_request_from_json_rejects_null);
	tcase_add_test(tc, test_duplicate_keys_are_invalid_request);
	tcase_add_test(tc, test_nul_escape_parses_and_is_not_invalid_json);
	tcase_add_test(tc, test_nul_in_object_key_is_invalid_request);
	tcase_add_test(tc, test_trailing_garbage_is_invalid_json);
	tcase_add_test(tc, test_trailing_whitespace_is_fine);
	tcase_add_test(tc, test_missing_url_is_rejected);
	tcase_add_test(tc, test_unsupported_scheme_is_rejected_naming_it);
	tcase_add_test(tc, test_scheme_not_in_config_is_rejected);
	tcase_add_test(tc, test_upper_case_scheme_is_accepted);
	tcase_add_test(tc, test_url_without_scheme_or_host_is_rejected);
	tcase_add_test(tc, test_control_characters_in_url_are_rejected);
	tcase_add_test(tc, test_non_ascii_url_bytes_are_percent_encoded);
	tcase_add_test(tc, test_userinfo_is_allowed);
	tcase_add_test(tc, test_non_ascii_host_curl_cannot_convert_is_rejected);
	tcase_add_test(tc, test_non_ascii_spelling_of_an_address_is_rejected);
	tcase_add_test(tc, test_params_are_form_encoded_and_appended);
	tcase_add_test(tc, test_params_without_query_start_one);
	tcase_add_test(tc, test_params_scalars_are_rendered);
	tcase_add_test(tc, test_params_list_keeps_repeats);
	tcase_add_test(tc, test_params_empty_leave_url_alone);
	tcase_add_test(tc, test_params_of_wrong_type_are_rejected);
	tcase_add_test(tc, test_params_query_is_what_appendquery_gave);
	tcase_add_test(tc, test_params_cap_is_the_url_cap);
	tcase_add_test(tc, test_params_stop_at_the_first_one_past_the_cap);
	tcase_add_test(tc, test_many_params_are_refused_at_the_cap);
	tcase_add_test(tc, test_headers_object_is_bound_in_order);
	tcase_add_test(tc, test_headers_list_keeps_repeats);
	tcase_add_test(tc, test_headers_of_wrong_shape_are_rejected);
	tcase_add_test(tc, test_cr_lf_nul_in_header_value_are_rejected);
	tcase_add_test(tc, test_cr_lf_nul_in_header_name_are_rejected);
	tcase_add_test(tc, test_non_token_header_name_is_rejected);
	tcase_add_test(tc, test_every_tchar_is_a_valid_header_name);
	tcase_add_test(tc, test_framing_header_is_rejected);
	tcase_add_test(tc, test_header_caps_are_enforced);
	tcase_add_test(tc, test_json_body_fits_with_a_full_header_list);
	tcase_add_test(tc, test_two_body_options_are_rejected);
	tcase_add_test(tc, test_body_string_is_binary_safe);
	tcase_add_test(tc, test_empty_body_is_a_body);
	tcase_add_test(tc, test_body_of_wrong_type_is_rejected);
	tcase_add_test(tc, test_json_body_adds_content_type);
	tcase_add_test(tc, test_json_body_keeps_client_content_type);
	tcase_add_test(tc, test_json_body_may_be_a_scalar);
	tcase_add_test(tc, test_body_base64_is_decoded);
	tcase_add_test(tc, test_invalid_base64_is_rejected);
	tcase_add_test(tc, test_timeout_number_sets_total_and_caps_connect);
	tcase_add_test(tc, test_timeout_object_sets_connect_and_total);
	tcase_add_test(tc, test_timeout_above_config_is_capped);
	tcase_add_test(tc, test_bad_timeout_is_rejected);
	tcase_add_test(tc, test_redirect_options_are_bound_and_capped);
	tcase_add_test(tc, test_max_redirects_must_be_a_non_negative_integer);
	tcase_add_test(tc, test_max_bytes_below_config_truncates);
	tcase_add_test(tc, test_max_bytes_must_be_a_positive_integer);
	tcase_add_test(tc, test_verify_tls_false_needs_allow_insecure);
	tcase_add_test(tc, test_booleans_must_be_json_booleans);
	tcase_add_test(tc, test_decompress_is_bound);
	tcase_add_test(tc, test_body_mode_values_are_bound);
	tcase_add_test(tc, test_unknown_body_mode_is_rejected);
	tcase_add_test(tc, test_fields_select_response_fields);
	tcase_add_test(tc, test_unknown_fields_name_is_rejected_naming_it);
	tcase_add_test(tc, test_every_field_name_round_trips);
	tcase_add_test(tc, test_pool_must_be_known);
	tcase_add_test(tc, test_every_documented_field_is_accepted);
	tcase_add_test(tc, test_request_error_renders_as_document);
	suite_add_tcase(s, tc);

	tcase_add_test(te, test_error_codes_have_names_and_statuses);
	tcase_add_test(te, test_err_document_has_the_documented_shape);
	tcase_add_test(te, test_err_object_copies_extra_without_overriding_code);
	tcase_add_test(te, test_err_message_with_invalid_utf8_is_kept);
	tcase_add_test(te, test_err_document_without_message_uses_code);
	suite_add_tcase(s, te);
	tcase_add_test(tc, test_url_with_empty_host_is_rejected);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(request_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
