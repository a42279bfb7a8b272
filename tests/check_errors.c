/* Unit tests for errors.c: every error code's name and HTTP status, the
 * error document's shape, extra members, invalid UTF-8 in messages. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "unitlib.h"

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

static Suite *errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("request");
	TCase *te = tcase_create("errors");

	tcase_add_checked_fixture(tc, request_setup, NULL);
	tcase_add_test(tc, test_request_error_renders_as_document);
	suite_add_tcase(s, tc);

	tcase_add_test(te, test_error_codes_have_names_and_statuses);
	tcase_add_test(te, test_err_document_has_the_documented_shape);
	tcase_add_test(te, test_err_object_copies_extra_without_overriding_code);
	tcase_add_test(te, test_err_message_with_invalid_utf8_is_kept);
	tcase_add_test(te, test_err_document_without_message_uses_code);
	suite_add_tcase(s, te);
	return s;
}

int main(void)
{
	return unit_run_suite(errors_suite());
}
