/* The API's happy paths: the full response document of the GET and POST
 * forms, what fetchd sends upstream (method, headers, body, no stray
 * Content-Type, no proxy from the environment), the routes (404, 405),
 * /v1/batch (input order, max_batch) and the fields filter.
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

/* ---- the document ---- */

START_TEST(test_get_fetch_returns_full_document)
{
	char *url = up_url(&up, "/json");
	char *enc = url_encode(url);
	char *path = str_printf("/v1/fetch?url=%s", enc);
	static const char *const timing_keys[] = {"queued_ms", "dns_ms",  "connect_ms",
						  "tls_ms",    "ttfb_ms", "total_ms"};
	struct http_resp r;
	char *ctype, *log;
	json_t *v, *pair;
	size_t i;
	bool found = false;

	get_ok(daemon_.port, path, &r);
	expect_status(&r, 200);
	ctype = http_resp_header(&r, "Content-Type");
	ck_assert_msg(ctype != NULL && strncmp(ctype, "application/json", 16) == 0,
		      "Content-Type: %s", ctype ? ctype : "(none)");
	free(ctype);
	expect_str(&r, "url", url);
	expect_int(&r, "status", 200);
	expect_str(&r, "reason", "OK");
	expect_bool(&r, "ok", true);
	expect_str(&r, "http_version", "1.1");
	expect_json(&r, "json", "{\"hello\":\"world\",\"n\":1}");
	expect_str(&r, "headers.content-type", "application/json");
	expect_str(&r, "headers.content-length", "23");
	v = json_path(r.json, "header_list");
	ck_assert_msg(json_is_array(v), "header_list: %s", describe(v));
	json_array_foreach (v, i, pair) {
		if (json_is_array(pair) && json_array_size(pair) == 2 &&
		    json_is_string(json_array_get(pair, 0)) &&
		    strcmp(json_string_value(json_array_get(pair, 0)), "Content-Type") == 0 &&
		    json_is_string(json_array_get(pair, 1)) &&
		    strcmp(json_string_value(json_array_get(pair, 1)), "application/json") == 0)
			found = true;
	}
	ck_assert_msg(found, "header_list lacks [\"Content-Type\",\"application/json\"]: %s",
		      describe(v));
	expect_json(&r, "history", "[]");
	expect_json(&r, "cookies", "{}");
	expect_json(&r, "links", "{}");
	expect_null(&r, "encoding");
	expect_int(&r, "size", 23);
	expect_bool(&r, "truncated", false);
	expect_str(&r, "text", "{\"hello\":\"world\",\"n\":1}");
	expect_absent(&r, "content_base64");
	v = json_path(r.json, "worker");
	ck_assert_msg(json_is_integer(v) && json_integer_value(v) >= 1 &&
			      json_integer_value(v) <= DEFAULT_THREADS,
		      "worker: want 1..%d, got %s", DEFAULT_THREADS, describe(v));
	expect_str(&r, "remote.ip", "127.0.0.1");
	expect_int(&r, "remote.port", up.port);
	v = json_path(r.json, "timing");
	ck_assert_msg(json_is_object(v) && json_object_size(v) == 6, "timing: %s", describe(v));
	for (i = 0; i < sizeof(timing_keys) / sizeof(timing_keys[0]); i++) {
		json_t *t = json_object_get(v, timing_keys[i]);

		ck_assert_msg(json_is_number(t) && json_number_value(t) >= 0, "timing.%s: %s",
			      timing_keys[i], describe(t));
	}
	ck_assert_msg(json_is_number(json_path(r.json, "elapsed_ms")) &&
			      fabs(json_number_value(json_path(r.json, "elapsed_ms")) -
				   json_number_value(json_path(r.json, "timing.total_ms"))) < 1e-6,
		      "elapsed_ms should equal timing.total_ms; body: %.1000s", body_of(&r));
	http_resp_free(&r);

	/* one access log line for the request */
	log = fetchd_log(&daemon_);
	ck_assert_msg(
		log_has_line(log, "access id=", "path=/v1/fetch host=127.0.0.1 items=1 status=200"),
		"no access log line with the path and 200; log:\n%s", log);
	free(log);
	free(path);
	free(enc);
	free(url);
}
END_TEST

/* ---- what goes upstream ---- */

START_TEST(test_post_fetch_sends_method_headers_and_body)
{
	char *url = up_url(&up, "/echo?x=1");
	struct http_resp r;
	json_t *body, *want;

	/* lower-case method, params, object headers, text body */
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:s}", "url", url, "method", "put",
			"params", "q", "x y", "headers", "X-One", "1", "Accept", "text/plain",
			"body", "hello body"),
	      &r);
	expect_status(&r, 200);
	expect_str(&r, "json.method", "PUT");
	expect_str(&r, "json.query", "x=1&q=x+y");
	expect_str(&r, "json.headers.x-one", "1");
	expect_str(&r, "json.headers.accept", "text/plain");
	expect_str(&r, "json.body", "hello body");
	expect_int(&r, "json.body_len", 10);
	http_resp_free(&r);
	free(url);

	/* list headers with a repeated name; json body types itself */
	url = up_url(&up, "/echo");
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:[[s,s],[s,s],[s,s]], s:{s:[i,i], s:s}}", "url", url, "method",
			"POST", "headers", "X-Rep", "a", "X-Rep", "b", "X-Other", "c", "json", "k",
			1, 2, "s", "v"),
	      &r);
	expect_status(&r, 200);
	expect_str(&r, "json.method", "POST");
	expect_str(&r, "json.headers.x-rep", "a, b");
	expect_str(&r, "json.headers.x-other", "c");
	expect_str(&r, "json.headers.content-type", "application/json");
	body = json_loads(json_string_value(json_path(r.json, "json.body")), 0, NULL);
	want = json_pack("{s:[i,i], s:s}", "k", 1, 2, "s", "v");
	ck_assert_msg(body != NULL && json_equal(body, want),
		      "echoed body is not the json sent: %s", body_of(&r));
	json_decref(want);
	json_decref(body);
	http_resp_free(&r);

	/* body_base64 is decoded: 00 01 ff arrive as raw bytes */
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:s}", "url", url, "method", "PATCH", "body_base64", "AAH/"),
	      &r);
	expect_status(&r, 200);
	expect_str(&r, "json.method", "PATCH");
	expect_int(&r, "json.body_len", 3);
	expect_str(&r, "json.body_base64", "AAH/");
	http_resp_free(&r);
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:s}", "url", url, "method", "POST", "body_base64",
			"aGVsbG8gYjY0"),
	      &r);
	expect_str(&r, "json.body", "hello b64");
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_request_without_body_or_type_sends_no_content_type)
{
	static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};
	char *url = up_url(&up, "/echo");
	struct http_resp r;

	/* curl's own form type (CURLOPT_POSTFIELDS "") must not appear */
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		fetch(&daemon_, json_pack("{s:s, s:s}", "url", url, "method", methods[i]), &r);
		expect_status(&r, 200);
		expect_str(&r, "json.method", methods[i]);
		expect_absent(&r, "json.headers.content-type");
		expect_int(&r, "json.body_len", 0);
		http_resp_free(&r);
	}
	/* with other headers, the list is built per hop: the same */
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:{s:s}}", "url", url, "method", "POST", "headers", "X-One",
			"1"),
	      &r);
	expect_str(&r, "json.headers.x-one", "1");
	expect_absent(&r, "json.headers.content-type");
	http_resp_free(&r);
	/* a body without a type has none either; a typed one keeps its type */
	fetch(&daemon_, json_pack("{s:s, s:s, s:s}", "url", url, "method", "POST", "body", "b"),
	      &r);
	expect_absent(&r, "json.headers.content-type");
	expect_str(&r, "json.body", "b");
	http_resp_free(&r);
	fetch(&daemon_,
	      json_pack("{s:s, s:s, s:s, s:{s:s}}", "url", url, "method", "POST", "body", "b",
			"headers", "Content-Type", "text/x-mine"),
	      &r);
	expect_str(&r, "json.headers.content-type", "text/x-mine");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* The environment's proxy variables are never used: with http_proxy
 * pointing at a closed port, fetches still go straight to the upstream. */
START_TEST(test_environment_proxy_is_ignored)
{
	char *proxy = str_printf("http://127.0.0.1:%d", closed_port());
	char *v1 = str_printf("http_proxy=%s", proxy), *v2 = str_printf("HTTP_PROXY=%s", proxy);
	char *v3 = str_printf("all_proxy=%s", proxy);
	const char *const env[] = {v1, v2, v3, NULL};
	struct fetchd_opts o = {.allow_loopback = true, .env = env};
	struct http_resp r;

	fetchd_start(&daemon_, &o);
	fetch_path(&daemon_, &up, "/json", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_int(&r, "remote.port", up.port);
	http_resp_free(&r);
	free(v1);
	free(v2);
	free(v3);
	free(proxy);
}
END_TEST

/* ---- routes ---- */

START_TEST(test_unknown_path_and_wrong_verb_answers)
{
	struct http_resp r;
	char *h;

	get_ok(daemon_.port, "/nope", &r);
	expect_error(&r, 404, "not_found");
	h = http_resp_header(&r, "Content-Type");
	ck_assert_msg(h != NULL && strncmp(h, "application/json", 16) == 0, "Content-Type %s",
		      h ? h : "(none)");
	free(h);
	http_resp_free(&r);

	ck_assert_int_eq(http_request(daemon_.port, "DELETE", "/v1/fetch", NULL, &r), 0);
	expect_error(&r, 405, "method_not_allowed");
	h = http_resp_header(&r, "Allow");
	ck_assert_msg(h != NULL && strcmp(h, "GET, HEAD, POST") == 0, "Allow: %s",
		      h ? h : "(none)");
	free(h);
	http_resp_free(&r);

	get_ok(daemon_.port, "/v1/batch", &r);
	expect_error(&r, 405, "method_not_allowed");
	h = http_resp_header(&r, "Allow");
	ck_assert_msg(h != NULL && strcmp(h, "POST") == 0, "Allow: %s", h ? h : "(none)");
	free(h);
	http_resp_free(&r);

	ck_assert_int_eq(http_post_json(daemon_.port, "/healthz", "{}", &r), 0);
	expect_error(&r, 405, "method_not_allowed");
	h = http_resp_header(&r, "Allow");
	ck_assert_msg(h != NULL && strcmp(h, "GET, HEAD") == 0, "Allow: %s", h ? h : "(none)");
	free(h);
	http_resp_free(&r);
}
END_TEST

/* ---- batch ---- */

START_TEST(test_batch_answers_in_input_order)
{
	char *ok = up_url(&up, "/json"), *missing = up_url(&up, "/status/404");
	struct http_resp r;

	ck_assert_int_eq(http_post_obj(daemon_.port, "/v1/batch",
				       json_pack("{s:[{s:s},{s:s,s:i},{s:s}]}", "requests", "url",
						 ok, "url", ok, "timout", 1, "url", missing),
				       &r),
			 0);
	expect_status(&r, 200);
	ck_assert_msg(json_array_size(json_path(r.json, "results")) == 3, "results: %.1000s",
		      body_of(&r));
	expect_int(&r, "results.0.status", 200);
	expect_str(&r, "results.0.json.hello", "world");
	expect_str(&r, "results.1.error.code", "invalid_request");
	expect_int(&r, "results.2.status", 404);
	expect_bool(&r, "results.2.ok", false);
	http_resp_free(&r);

	ck_assert_int_eq(http_post_json(daemon_.port, "/v1/batch", "{\"requests\":[]}", &r), 0);
	expect_status(&r, 200);
	expect_json(&r, "", "{\"results\":[]}");
	http_resp_free(&r);
	free(ok);
	free(missing);
}
END_TEST

START_TEST(test_batch_over_max_batch_is_400)
{
	char *url = up_url(&up, "/json");
	struct http_resp r;

	fetchd_start(&daemon_, &(struct fetchd_opts){.extra_config = "[server]\nmax_batch = 2\n",
						     .allow_loopback = true});
	ck_assert_int_eq(http_post_obj(daemon_.port, "/v1/batch",
				       json_pack("{s:[{s:s},{s:s},{s:s}]}", "requests", "url", url,
						 "url", url, "url", url),
				       &r),
			 0);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	ck_assert_int_eq(
		http_post_obj(daemon_.port, "/v1/batch",
			      json_pack("{s:[{s:s},{s:s}]}", "requests", "url", url, "url", url),
			      &r),
		0);
	expect_status(&r, 200);
	expect_int(&r, "results.0.status", 200);
	expect_int(&r, "results.1.status", 200);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- fields ---- */

START_TEST(test_fields_limit_the_document)
{
	char *url = up_url(&up, "/json");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:[s]}", "url", url, "fields", "status"), &r);
	expect_status(&r, 200);
	expect_json(&r, "", "{\"status\":200}");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* The URL a document reports is the one curl fetched, normalized: scheme
 * case, dot segments and the empty path, however the request spelled it. */
START_TEST(test_document_url_is_the_normalized_one)
{
	char *url = str_printf("HTTP://127.0.0.1:%d/a/../text?n=3", up.port);
	char *want = str_printf("http://127.0.0.1:%d/text?n=3", up.port);
	struct http_resp r;
	json_t *got;

	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	ck_assert_int_eq(r.status, 200);
	got = json_path(r.json, "url");
	ck_assert_msg(json_is_string(got) && strcmp(json_string_value(got), want) == 0,
		      "url %s, want %s", describe(got), want);
	ck_assert_str_eq(json_string_value(json_path(r.json, "text")), "aaa");
	http_resp_free(&r);
	free(url);
	free(want);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_get_fetch_returns_full_document);
	tcase_add_test(tc, test_document_url_is_the_normalized_one);
	tcase_add_test(tc, test_post_fetch_sends_method_headers_and_body);
	tcase_add_test(tc, test_request_without_body_or_type_sends_no_content_type);
	tcase_add_test(tc, test_unknown_path_and_wrong_verb_answers);
	tcase_add_test(tc, test_batch_answers_in_input_order);
	tcase_add_test(tc, test_fields_limit_the_document);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_environment_proxy_is_ignored);
	tcase_add_test(tc, test_batch_over_max_batch_is_400);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(api_suite(), CK_NORMAL);
}
