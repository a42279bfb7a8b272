/* Redirects followed by fetchd: history in order, the Fetch standard's
 * method rules, credentials dropped across origins, max_redirects, refused
 * schemes, follow_redirects false, and cookies along the chain (and never
 * between fetches).
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

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- redirect method rules ---- */

START_TEST(test_redirect_chain_307_301_302_records_history_in_order)
{
	const char *c = "/redirect?status=302&to=/echo";
	char *c_enc = url_encode(c);
	char *b = str_printf("/redirect?status=301&to=%s", c_enc);
	char *b_enc = url_encode(b);
	char *a = str_printf("/redirect?status=307&to=%s", b_enc);
	char *url_a = up_url(&up, a), *url_b = up_url(&up, b), *url_c = up_url(&up, c);
	char *url_echo = up_url(&up, "/echo");
	struct http_resp r;

	/* 307 keeps POST and its body, 301 turns POST into a body-less GET,
	 * 302 keeps GET */
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:s}", "url", url_a, "method", "POST", "body", "payload"), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "url", url_echo);
	expect_str(&r, "json.method", "GET");
	expect_int(&r, "json.body_len", 0);
	ck_assert_msg(json_array_size(json_path(r.json, "history")) == 3, "history: %s",
		      describe(json_path(r.json, "history")));
	expect_int(&r, "history.0.status", 307);
	expect_str(&r, "history.0.reason", "Temporary Redirect");
	expect_str(&r, "history.0.url", url_a);
	expect_str(&r, "history.0.headers.location", b);
	expect_int(&r, "history.1.status", 301);
	expect_str(&r, "history.1.reason", "Moved Permanently");
	expect_str(&r, "history.1.url", url_b);
	expect_str(&r, "history.1.headers.location", c);
	expect_int(&r, "history.2.status", 302);
	expect_str(&r, "history.2.reason", "Found");
	expect_str(&r, "history.2.url", url_c);
	expect_str(&r, "history.2.headers.location", "/echo");
	http_resp_free(&r);
	free(url_a);
	free(url_b);
	free(url_c);
	free(url_echo);
	free(a);
	free(b_enc);
	free(b);
	free(c_enc);
}
END_TEST

/* One redirect of status code, then /echo: the method and body that arrive. */
static void check_one_redirect(int code, const char *method, const char *body,
			       const char *want_method, const char *want_body)
{
	char *path = str_printf("/redirect?status=%d&to=/echo", code);
	char *url = up_url(&up, path);
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:s, s:s}", "url", url, "method", method, "body", body),
	      &r);
	expect_status(&r, 200);
	expect_int(&r, "history.0.status", code);
	ck_assert_msg(json_is_string(json_path(r.json, "json.method")) &&
			      strcmp(json_string_value(json_path(r.json, "json.method")),
				     want_method) == 0,
		      "%s after %d: want %s upstream; body: %.1000s", method, code, want_method,
		      body_of(&r));
	ck_assert_msg(
		json_is_string(json_path(r.json, "json.body")) &&
			strcmp(json_string_value(json_path(r.json, "json.body")), want_body) == 0,
		"%s after %d: want body \"%s\" upstream; body: %.1000s", method, code, want_body,
		body_of(&r));
	http_resp_free(&r);
	free(url);
	free(path);
}

START_TEST(test_redirect_method_rules_follow_fetch_standard)
{
	check_one_redirect(307, "POST", "payload", "POST", "payload");
	check_one_redirect(308, "PUT", "p2", "PUT", "p2");
	check_one_redirect(302, "PUT", "p3", "PUT", "p3");
	check_one_redirect(301, "POST", "p4", "GET", "");
	check_one_redirect(302, "POST", "p5", "GET", "");
	check_one_redirect(303, "PUT", "p6", "GET", "");
	check_one_redirect(303, "DELETE", "p7", "GET", "");
}
END_TEST

START_TEST(test_redirect_303_keeps_head)
{
	char *url = up_url(&up, "/redirect?status=303&to=/echo");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:s}", "url", url, "method", "HEAD"), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_int(&r, "history.0.status", 303);
	/* a GET would have brought the echo document */
	expect_int(&r, "size", 0);
	expect_absent(&r, "json");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- credentials and origins ---- */

START_TEST(test_redirect_drops_credentials_cross_origin)
{
	struct upstream other;
	char *target, *enc, *path, *url;
	struct http_resp r;

	upstream_start(&other);
	target = up_url(&other, "/echo");
	enc = url_encode(target);
	path = str_printf("/redirect?status=302&to=%s", enc);
	url = up_url(&up, path);
	fetch(&daemon_,
	      json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "url", url, "headers", "Authorization",
			"Bearer s3cret", "Cookie", "c=1", "Proxy-Authorization", "Basic eDp5",
			"X-Custom", "keep"),
	      &r);
	expect_status(&r, 200);
	expect_str(&r, "url", target);
	expect_int(&r, "remote.port", other.port);
	expect_str(&r, "json.headers.x-custom", "keep");
	expect_absent(&r, "json.headers.authorization");
	expect_absent(&r, "json.headers.cookie");
	expect_absent(&r, "json.headers.proxy-authorization");
	http_resp_free(&r);
	upstream_stop(&other);
	free(url);
	free(path);
	free(enc);
	free(target);
}
END_TEST

START_TEST(test_redirect_keeps_credentials_same_origin)
{
	char *url = up_url(&up, "/redirect?status=302&to=/echo");
	struct http_resp r;

	fetch(&daemon_,
	      json_pack("{s:s, s:{s:s, s:s, s:s}}", "url", url, "headers", "Authorization",
			"Bearer s3cret", "Cookie", "c=1", "X-Custom", "keep"),
	      &r);
	expect_status(&r, 200);
	expect_int(&r, "history.0.status", 302);
	expect_str(&r, "json.headers.authorization", "Bearer s3cret");
	expect_str(&r, "json.headers.cookie", "c=1");
	expect_str(&r, "json.headers.x-custom", "keep");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- limits, schemes, follow_redirects ---- */

START_TEST(test_redirects_beyond_max_redirects_are_502)
{
	char *path = strdup("/echo"), *url;
	struct http_resp r;

	/* six nested hops */
	for (int i = 0; i < 6; i++) {
		char *enc = url_encode(path);

		free(path);
		path = str_printf("/redirect?status=302&to=%s", enc);
		free(enc);
	}
	url = up_url(&up, path);
	fetch(&daemon_, json_pack("{s:s, s:i}", "url", url, "max_redirects", 3), &r);
	expect_error(&r, 502, "too_many_redirects");
	expect_int(&r, "error.curl_code", 47); /* CURLE_TOO_MANY_REDIRECTS */
	ck_assert(json_is_string(json_path(r.json, "error.curl_error")));
	http_resp_free(&r);
	/* the same chain with room for it arrives */
	fetch(&daemon_, json_pack("{s:s, s:i}", "url", url, "max_redirects", 6), &r);
	expect_status(&r, 200);
	expect_str(&r, "json.method", "GET");
	ck_assert_int_eq(json_array_size(json_path(r.json, "history")), 6);
	http_resp_free(&r);
	free(url);
	free(path);
}
END_TEST

START_TEST(test_redirect_to_ftp_is_502_naming_the_scheme)
{
	char *url = up_url(&up, "/redirect?status=302&to=ftp%3A%2F%2F127.0.0.1%2Fx");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 502, "upstream_error");
	expect_message_has(&r, "ftp");
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_follow_redirects_false_returns_the_redirect)
{
	char *url = up_url(&up, "/redirect?status=302&to=/echo");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:b}", "url", url, "follow_redirects", 0), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 302);
	expect_str(&r, "reason", "Found");
	expect_bool(&r, "ok", true);
	expect_str(&r, "url", url);
	expect_str(&r, "headers.location", "/echo");
	expect_json(&r, "history", "[]");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- cookies ---- */

START_TEST(test_cookies_collected_and_sent_along_redirect_chain)
{
	char *s_enc = url_encode("s=1"), *to_enc = url_encode("/cookie?name=a&value=1");
	char *path = str_printf("/redirect?status=302&set_cookie=%s&to=%s", s_enc, to_enc);
	char *url = up_url(&up, path);
	struct http_resp r;
	json_t *got;

	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_json(&r, "cookies", "{\"s\":\"1\",\"a\":\"1\"}");
	got = json_path(r.json, "json.cookie");
	ck_assert_msg(json_is_string(got) && strstr(json_string_value(got), "s=1") != NULL,
		      "the second hop did not get the first hop's cookie: %s", describe(got));
	http_resp_free(&r);
	free(url);
	free(path);
	free(to_enc);
	free(s_enc);
}
END_TEST

START_TEST(test_cookies_do_not_leak_between_fetches)
{
	struct http_resp r;

	fetchd_start(&daemon_, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 1\n",
						     .allow_loopback = true});
	fetch_path(&daemon_, &up, "/cookie?name=leak&value=1", &r);
	expect_status(&r, 200);
	expect_json(&r, "cookies", "{\"leak\":\"1\"}");
	expect_int(&r, "worker", 1);
	http_resp_free(&r);
	/* same worker, same curl handle: still no cookie */
	fetch_path(&daemon_, &up, "/cookie", &r);
	expect_status(&r, 200);
	expect_int(&r, "worker", 1);
	expect_null(&r, "json.cookie");
	expect_json(&r, "cookies", "{}");
	http_resp_free(&r);
}
END_TEST

static Suite *redirect_chain_suite(void)
{
	Suite *s = suite_create("redirect_chain");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_redirect_chain_307_301_302_records_history_in_order);
	tcase_add_test(tc, test_redirect_method_rules_follow_fetch_standard);
	tcase_add_test(tc, test_redirect_303_keeps_head);
	tcase_add_test(tc, test_redirect_drops_credentials_cross_origin);
	tcase_add_test(tc, test_redirect_keeps_credentials_same_origin);
	tcase_add_test(tc, test_redirects_beyond_max_redirects_are_502);
	tcase_add_test(tc, test_redirect_to_ftp_is_502_naming_the_scheme);
	tcase_add_test(tc, test_follow_redirects_false_returns_the_redirect);
	tcase_add_test(tc, test_cookies_collected_and_sent_along_redirect_chain);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_cookies_do_not_leak_between_fetches);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(redirect_chain_suite(), CK_NORMAL);
}
