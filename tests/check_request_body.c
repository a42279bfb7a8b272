/* Unit tests for request.c (SPEC section 2): the body fields (body,
 * body_base64, json): one at most, binary-safe, their types, the
 * Content-Type json implies, base64 decoding. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unitlib.h"

static const char *header_value(const struct fetch_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

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
		"aGVsbG8", "aGVsbG8==", "aGVs bG8=", "aGVs\\nbG8=", "====",	"a===",
		"a=bc",	   "ab=c",	"aGVsbG8-",  "aGVsbG8_",    "YQ==YQ==", "\\u00e9AAA",
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"url\": \"http://e.org/\", \"body_base64\": \"%s\"}",
			 bad[i]);
		expect_error(buf, ERR_INVALID_REQUEST, "field 'body_base64' is not valid base64");
	}
}
END_TEST

static Suite *request_body_suite(void)
{
	Suite *s = suite_create("request_body");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, request_setup, NULL);
	tcase_add_test(tc, test_two_body_options_are_rejected);
	tcase_add_test(tc, test_body_string_is_binary_safe);
	tcase_add_test(tc, test_empty_body_is_a_body);
	tcase_add_test(tc, test_body_of_wrong_type_is_rejected);
	tcase_add_test(tc, test_json_body_adds_content_type);
	tcase_add_test(tc, test_json_body_keeps_client_content_type);
	tcase_add_test(tc, test_json_body_may_be_a_scalar);
	tcase_add_test(tc, test_body_base64_is_decoded);
	tcase_add_test(tc, test_invalid_base64_is_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run_suite(request_body_suite());
}
