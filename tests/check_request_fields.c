/* Unit tests for request.c (SPEC section 2): the defaults a request takes
 * from the config, the method, the top level (unknown fields, non-objects,
 * duplicate keys, NUL escapes, trailing bytes), timeouts, redirects, sizes,
 * booleans, body_mode, fields and pool. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unitlib.h"

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
	static const char *const in[] = {"get",	  "head",   "post",   "Put",
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

START_TEST(test_http_version_is_auto_1_1_or_2)
{
	static const struct {
		const char *json;
		enum request_http_version want;
	} ok[] = {
		{"{\"url\": \"http://e.org/\"}", REQUEST_HTTP_AUTO},
		{"{\"url\": \"http://e.org/\", \"http_version\": \"auto\"}", REQUEST_HTTP_AUTO},
		{"{\"url\": \"http://e.org/\", \"http_version\": \"1.1\"}", REQUEST_HTTP_1_1},
		{"{\"url\": \"https://e.org/\", \"http_version\": \"2\"}", REQUEST_HTTP_2},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct fetch_request *r = bind_ok(ok[i].json);

		ck_assert_int_eq(r->http_version, ok[i].want);
		request_free(r);
	}
}
END_TEST

START_TEST(test_http_version_other_values_are_400_naming_the_field)
{
	expect_error("{\"url\": \"http://e.org/\", \"http_version\": \"3\"}", ERR_INVALID_REQUEST,
		     "field 'http_version' must be one of auto, 1.1, 2 (got '3')");
	expect_error("{\"url\": \"http://e.org/\", \"http_version\": \"2.0\"}", ERR_INVALID_REQUEST,
		     "field 'http_version' must be one of auto, 1.1, 2 (got '2.0')");
	expect_error("{\"url\": \"http://e.org/\", \"http_version\": \"AUTO\"}",
		     ERR_INVALID_REQUEST,
		     "field 'http_version' must be one of auto, 1.1, 2 (got 'AUTO')");
	expect_error("{\"url\": \"http://e.org/\", \"http_version\": \"2\\u0000\"}",
		     ERR_INVALID_REQUEST,
		     "field 'http_version' must be one of auto, 1.1, 2 (got '2')");
	expect_error("{\"url\": \"http://e.org/\", \"http_version\": 2}", ERR_INVALID_REQUEST,
		     "field 'http_version' must be a string");
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
	ck_assert_str_eq(request_field_name(FIELD_TLS), "tls");
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

static Suite *request_fields_suite(void)
{
	Suite *s = suite_create("request_fields");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, request_setup, NULL);
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
	tcase_add_test(tc, test_http_version_is_auto_1_1_or_2);
	tcase_add_test(tc, test_http_version_other_values_are_400_naming_the_field);
	tcase_add_test(tc, test_pool_must_be_known);
	tcase_add_test(tc, test_every_documented_field_is_accepted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run_suite(request_fields_suite());
}
