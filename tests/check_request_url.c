/* Unit tests for request.c (SPEC section 2): the url field (schemes,
 * missing hosts, control characters, non-ASCII bytes and hosts, userinfo)
 * and params (form encoding, repeats, scalars, types, the URL cap they share). */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unitlib.h"

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
	expect_error("{\"url\": \"http://\\uff11\\uff12\\uff17.1/\"}", ERR_INVALID_REQUEST, "IPv4");
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

	ck_assert_int_eq(
		curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE),
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
		"http://e.org/",
		"http://e.org/a?b=1",
		"http://e.org/a?",
		"http://e.org/a?b=1&",
		"http://e.org/a#frag",
		"http://e.org/a?x=%41#f",
		"http://e.org/caf\xc3\xa9?q",
		"HTTP://e.org:81/p?a=b&&c",
		"http://e.org/?%7e=%7E",
	};
	static const char *const params[][2] = {
		{"q", "x y"}, {"a&b=c", "1/2?#"}, {"e", "\xc3\xa9"},
		{"", ""},     {"k", "~-._*+%"},	  {"Z9", "a=b&c;d"},
	};

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		for (size_t n = 1; n <= sizeof(params) / sizeof(params[0]); n++) {
			json_t *list = json_array(), *doc;
			struct fetch_request *r;
			char *want = appendquery_reference(urls[i], params, n);

			for (size_t k = 0; k < n; k++)
				json_array_append_new(
					list, json_pack("[s,s]", params[k][0], params[k][1]));
			doc = json_pack("{s:s,s:o}", "url", urls[i], "params", list);
			r = request_from_json(doc, &cfg, &rerr);
			ck_assert_msg(r != NULL, "%s: %s", urls[i], rerr.message);
			ck_assert_msg(strcmp(r->url, want) == 0,
				      "%s with %zu params: got %s, want %s", urls[i], n, r->url,
				      want);
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
	expect_error("{\"url\": \"http:///echo\", \"params\": {\"a\": \"b\"}}", ERR_INVALID_REQUEST,
		     "'url'");
}
END_TEST

static Suite *request_url_suite(void)
{
	Suite *s = suite_create("request_url");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, request_setup, NULL);
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
	tcase_add_test(tc, test_url_with_empty_host_is_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run_suite(request_url_suite());
}
