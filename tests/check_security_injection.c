/* CRLF and NUL injection: CR, LF and NUL in header names and values, the
 * URL (raw and percent-decoded by the GET form), the method and params are a
 * 400 naming the field, and nothing reaches the upstream; encoded CRLF stays
 * encoded.
 *
 * Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]). No case
 * sends traffic anywhere but 127.0.0.0/8 and ::1.
 *
 * A shared fetchd (testlib.h: guard_d, main_d, big_d) is started once per
 * TCase, so the cases of a TCase hit the same daemon. Waits are bounded
 * polls; nothing sleeps for a fixed long time. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- CRLF and NUL injection ---- */

START_TEST(test_crlf_in_header_value_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-value");
	struct http_resp r;

	fetch(&main_d,
	      json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-A", "a\r\nX-Injected: 1"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	/* a bare LF is as bad as CRLF */
	fetch(&main_d,
	      json_pack("{s:s, s:[[s,s]]}", "url", url, "headers", "X-A", "a\nX-Injected: 1"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-value");
	free(url);
}
END_TEST

START_TEST(test_crlf_and_colon_in_header_name_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-name");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-A\r\nB", "v"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	/* not a token: a colon would split the line differently upstream */
	fetch(&main_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-Injected:1", "v"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-name");
	free(url);
}
END_TEST

START_TEST(test_raw_cr_or_lf_in_url_is_400)
{
	char *a = up_url(&up, "/count?key=crlf-url\r\nX-Injected: 1");
	char *b = up_url(&up, "/count?key=crlf-url\nX-Injected: 1");
	char *c = up_url(&up, "/count?key=crlf-url HTTP/1.1\r\nX-Injected: 1\r\n\r\n");
	struct http_resp r;

	fetch_url(&main_d, a, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_url(&main_d, b, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_url(&main_d, c, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-url");
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_get_form_url_decoding_to_crlf_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-get\r\nX-Injected: 1");
	char *enc = url_encode(url);
	char *path = str_printf("/v1/fetch?url=%s", enc);
	struct http_resp r;

	get_ok(main_d.port, path, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-get");
	free(path);
	free(enc);
	free(url);
}
END_TEST

START_TEST(test_crlf_in_method_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-method");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:s}", "url", url, "method", "GET\r\n"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch(&main_d,
	      json_pack("{s:s, s:s}", "url", url, "method", "GET /x HTTP/1.1\r\nX-Injected: 1"),
	      &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-method");
	free(url);
}
END_TEST

START_TEST(test_nul_in_header_or_url_is_400_not_invalid_json)
{
	char *url = up_url(&up, "/count?key=nul");
	char *hdr = str_printf("{\"url\":\"%s\",\"headers\":{\"X-A\":\"a\\u0000b\"}}", url);
	char *name = str_printf("{\"url\":\"%s\",\"headers\":[[\"X-A\\u0000B\",\"v\"]]}", url);
	char *in_url = str_printf("{\"url\":\"%s\\u0000x\"}", url);
	struct http_resp r;

	fetch_text(&main_d, hdr, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_text(&main_d, name, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_text(&main_d, in_url, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("nul");
	free(in_url);
	free(name);
	free(hdr);
	free(url);
}
END_TEST

START_TEST(test_encoded_crlf_in_url_stays_encoded)
{
	char *url = up_url(&up, "/echo?q=%0D%0AX-Injected:%201");
	struct http_resp r;
	json_t *q;

	fetch_url(&main_d, url, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_absent(&r, "json.headers.x-injected");
	q = json_path(r.json, "json.query");
	ck_assert_msg(json_is_string(q) && strcasestr(json_string_value(q), "%0d%0a") != NULL,
		      "the query should reach the upstream still encoded: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_crlf_in_params_is_encoded)
{
	char *url = up_url(&up, "/echo");
	struct http_resp r;
	json_t *q;

	fetch(&main_d,
	      json_pack("{s:s, s:{s:s, s:s}}", "url", url, "params", "q", "a\r\nX-Injected: 1",
			"k\r\nX-Injected: 2", "v"),
	      &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_absent(&r, "json.headers.x-injected");
	q = json_path(r.json, "json.query");
	ck_assert_msg(json_is_string(q) && strchr(json_string_value(q), '\r') == NULL &&
			      strchr(json_string_value(q), '\n') == NULL &&
			      strcasestr(json_string_value(q), "%0d%0a") != NULL,
		      "params should be percent-encoded: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

static Suite *security_injection_suite(void)
{
	Suite *s = suite_create("security_injection");
	TCase *tc;

	tc = tcase_create("main");
	tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
	tcase_add_checked_fixture(tc, main_settle, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_crlf_in_header_value_is_400);
	tcase_add_test(tc, test_crlf_and_colon_in_header_name_is_400);
	tcase_add_test(tc, test_raw_cr_or_lf_in_url_is_400);
	tcase_add_test(tc, test_get_form_url_decoding_to_crlf_is_400);
	tcase_add_test(tc, test_crlf_in_method_is_400);
	tcase_add_test(tc, test_nul_in_header_or_url_is_400_not_invalid_json);
	tcase_add_test(tc, test_encoded_crlf_in_url_stays_encoded);
	tcase_add_test(tc, test_crlf_in_params_is_encoded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(security_injection_suite(), CK_ENV);
}
