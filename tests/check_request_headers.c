/* Unit tests for request.c (SPEC section 2): the headers field as an
 * object or a list of pairs, wrong shapes, CR/LF/NUL in names and values,
 * tchar names, framing headers refused, the caps on count and size. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unitlib.h"

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

static Suite *request_headers_suite(void)
{
	Suite *s = suite_create("request_headers");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, request_setup, NULL);
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run_suite(request_headers_suite());
}
