/* What fetchd makes of the upstream's answer: a 5xx is a 200 document,
 * broken and closed upstreams are 502, max_bytes truncates, the
 * max_response_bytes cap (and HEAD under it), latin-1 headers and bodies,
 * binary bodies as base64, gzip decompressed or kept raw.
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server, both on 127.0.0.1, through HTTP. Each test starts its own
 * processes (checked fixtures). Nothing sleeps for a fixed long time: waits
 * are bounded polls, and every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- upstream errors and limits ---- */

START_TEST(test_upstream_5xx_is_a_200_document)
{
	struct http_resp r;

	fetch_path(&daemon_, &up, "/status/500", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 500);
	expect_str(&r, "reason", "Internal Server Error");
	expect_bool(&r, "ok", false);
	expect_str(&r, "text", "status 500\n");
	http_resp_free(&r);
}
END_TEST

START_TEST(test_broken_upstreams_are_502_upstream_error)
{
	static const char *const paths[] = {"/lie?n=1000", "/reset", "/garbage", "/reset-mid"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct http_resp r;

		fetch_path(&daemon_, &up, paths[i], &r);
		ck_assert_msg(r.status == 502, "%s: want 502, got %ld: %.1000s", paths[i], r.status,
			      body_of(&r));
		ck_assert_msg(json_is_string(json_path(r.json, "error.code")) &&
				      strcmp(json_string_value(json_path(r.json, "error.code")),
					     "upstream_error") == 0,
			      "%s: want upstream_error: %.1000s", paths[i], body_of(&r));
		expect_curl_code(&r);
		http_resp_free(&r);
	}
	expect_serving(&daemon_, &up);
}
END_TEST

START_TEST(test_closed_port_is_502_connect_failed)
{
	char *url = str_printf("http://127.0.0.1:%d/", closed_port());
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 502, "connect_failed");
	expect_curl_code(&r);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_max_bytes_truncates_with_200)
{
	char *url = up_url(&up, "/text?n=100000");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:i}", "url", url, "max_bytes", 1000), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_bool(&r, "truncated", true);
	expect_int(&r, "size", 1000);
	ck_assert_msg(json_string_length(json_path(r.json, "text")) == 1000, "text: %zu bytes",
		      json_string_length(json_path(r.json, "text")));
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_body_over_max_response_bytes_is_502)
{
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = "[fetch]\nmax_response_bytes = 64K\n",
					   .allow_loopback = true});
	fetch_path(&daemon_, &up, "/text?n=200000", &r);
	expect_error(&r, 502, "response_too_large");
	http_resp_free(&r);
	/* no Content-Length: counted as it arrives, not a hang */
	fetch_path(&daemon_, &up, "/endless", &r);
	expect_error(&r, 502, "response_too_large");
	http_resp_free(&r);
	/* exactly at the limit is fine */
	fetch_path(&daemon_, &up, "/text?n=65536", &r);
	expect_status(&r, 200);
	expect_int(&r, "size", 65536);
	expect_bool(&r, "truncated", false);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_head_of_a_resource_over_the_cap_is_200)
{
	char *url = up_url(&up, "/declared?n=200000");
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = "[fetch]\nmax_response_bytes = 64K\n",
					   .allow_loopback = true});
	/* HEAD: the Content-Length describes a body that never comes */
	fetch(&daemon_, json_pack("{s:s, s:s}", "url", url, "method", "HEAD"), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "headers.content-length", "200000");
	expect_int(&r, "size", 0);
	expect_bool(&r, "truncated", false);
	http_resp_free(&r);
	/* a bodiless 304 with the same Content-Length */
	fetch_path(&daemon_, &up, "/declared?n=200000&status=304", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 304);
	expect_int(&r, "size", 0);
	http_resp_free(&r);
	/* a GET of it is still refused before its body is read */
	fetch_path(&daemon_, &up, "/declared?n=200000", &r);
	expect_error(&r, 502, "response_too_large");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- bytes, charsets, compression ---- */

START_TEST(test_latin1_header_is_kept_as_utf8)
{
	struct http_resp r;
	json_t *v;

	fetch_path(&daemon_, &up, "/latin1-header", &r);
	expect_status(&r, 200);
	v = json_path(r.json, "headers.x-name");
	ck_assert_msg(
		json_is_string(v) && (strcmp(json_string_value(v), "caf\xc3\xa9") == 0 ||
				      strcmp(json_string_value(v), "caf\xef\xbf\xbd") == 0),
		"headers.x-name: want \"caf\\u00e9\" or \"caf\\ufffd\", got %s; body: %.1000s",
		describe(v), body_of(&r));
	http_resp_free(&r);
}
END_TEST

/* WHATWG: iso-8859-1 decodes as windows-1252 into UTF-8 text. */
START_TEST(test_latin1_body_is_decoded_to_text)
{
	struct http_resp r;

	fetch_path(&daemon_, &up, "/latin1", &r);
	expect_status(&r, 200);
	expect_str(&r, "encoding", "iso-8859-1");
	expect_str(&r, "text", "caf\xc3\xa9 cr\xc3\xa8me\n");
	http_resp_free(&r);
}
END_TEST

START_TEST(test_binary_body_is_base64_without_text)
{
	bool bad = false;
	struct http_resp r;
	unsigned char *raw;
	size_t len = 0;
	json_t *b64;

	fetch_path(&daemon_, &up, "/bytes?n=300", &r);
	expect_status(&r, 200);
	expect_int(&r, "size", 300);
	expect_absent(&r, "text");
	b64 = json_path(r.json, "content_base64");
	ck_assert_msg(json_is_string(b64), "content_base64: %s", describe(b64));
	raw = (unsigned char *)base64_decode(json_string_value(b64), json_string_length(b64), &len,
					     &bad);
	ck_assert_msg(raw != NULL && len == 300, "content_base64 decodes to %zu bytes", len);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg((size_t)raw[i] == i % 251, "byte %zu: want %zu, got %u", i, i % 251,
			      raw[i]);
	free(raw);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_gzip_decompressed_or_kept_raw)
{
	bool bad = false;
	char *url = up_url(&up, "/gzip");
	char want[1101];
	struct http_resp r;
	unsigned char *raw;
	size_t len = 0;
	json_t *b64;

	for (int i = 0; i < 100; i++)
		memcpy(want + i * 11, "hello gzip\n", 11);
	want[1100] = '\0';
	fetch(&daemon_, json_pack("{s:s, s:b}", "url", url, "decompress", 1), &r);
	expect_status(&r, 200);
	expect_str(&r, "text", want);
	expect_int(&r, "size", 1100);
	http_resp_free(&r);

	fetch(&daemon_, json_pack("{s:s, s:b}", "url", url, "decompress", 0), &r);
	expect_status(&r, 200);
	expect_absent(&r, "text");
	b64 = json_path(r.json, "content_base64");
	ck_assert_msg(json_is_string(b64), "content_base64: %s; body: %.1000s", describe(b64),
		      body_of(&r));
	raw = (unsigned char *)base64_decode(json_string_value(b64), json_string_length(b64), &len,
					     &bad);
	ck_assert_msg(raw != NULL && len > 2 && raw[0] == 0x1f && raw[1] == 0x8b,
		      "the raw body is not gzip");
	expect_int(&r, "size", (long long)len);
	free(raw);
	http_resp_free(&r);
	free(url);
}
END_TEST

static Suite *responses_suite(void)
{
	Suite *s = suite_create("responses");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_upstream_5xx_is_a_200_document);
	tcase_add_test(tc, test_broken_upstreams_are_502_upstream_error);
	tcase_add_test(tc, test_closed_port_is_502_connect_failed);
	tcase_add_test(tc, test_max_bytes_truncates_with_200);
	tcase_add_test(tc, test_latin1_header_is_kept_as_utf8);
	tcase_add_test(tc, test_latin1_body_is_decoded_to_text);
	tcase_add_test(tc, test_binary_body_is_base64_without_text);
	tcase_add_test(tc, test_gzip_decompressed_or_kept_raw);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_body_over_max_response_bytes_is_502);
	tcase_add_test(tc, test_head_of_a_resource_over_the_cap_is_200);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(responses_suite(), CK_NORMAL);
}
