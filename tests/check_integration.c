/* Integration tests: the real fetchd binary against the upstream test
 * server, both on 127.0.0.1, through HTTP. Each test starts its own
 * processes. Nothing sleeps for a fixed long time: waits are bounded
 * polls, and every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base64.h"
#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- 1. the document ---- */

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
	json_array_foreach(v, i, pair) {
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

		ck_assert_msg(json_is_number(t) && json_number_value(t) >= 0,
			      "timing.%s: %s", timing_keys[i], describe(t));
	}
	ck_assert_msg(json_is_number(json_path(r.json, "elapsed_ms")) &&
			      fabs(json_number_value(json_path(r.json, "elapsed_ms")) -
				   json_number_value(json_path(r.json, "timing.total_ms"))) < 1e-6,
		      "elapsed_ms should equal timing.total_ms; body: %.1000s", body_of(&r));
	http_resp_free(&r);

	/* one access log line for the request */
	log = fetchd_log(&daemon_);
	ck_assert_msg(log_has_line(log, "access id=", "path=/v1/fetch host=127.0.0.1 items=1 status=200"),
		      "no access log line with the path and 200; log:\n%s", log);
	free(log);
	free(path);
	free(enc);
	free(url);
}
END_TEST

/* ---- 2. what goes upstream ---- */

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
	      json_pack("{s:s, s:s, s:[[s,s],[s,s],[s,s]], s:{s:[i,i], s:s}}", "url", url,
			"method", "POST", "headers", "X-Rep", "a", "X-Rep", "b", "X-Other", "c",
			"json", "k", 1, 2, "s", "v"),
	      &r);
	expect_status(&r, 200);
	expect_str(&r, "json.method", "POST");
	expect_str(&r, "json.headers.x-rep", "a, b");
	expect_str(&r, "json.headers.x-other", "c");
	expect_str(&r, "json.headers.content-type", "application/json");
	body = json_loads(json_string_value(json_path(r.json, "json.body")), 0, NULL);
	want = json_pack("{s:[i,i], s:s}", "k", 1, 2, "s", "v");
	ck_assert_msg(body != NULL && json_equal(body, want), "echoed body is not the json sent: %s",
		      body_of(&r));
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

/* ---- 3. redirect method rules ---- */

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
	      json_pack("{s:s, s:s, s:s}", "url", url_a, "method", "POST", "body", "payload"),
	      &r);
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
	ck_assert_msg(json_is_string(json_path(r.json, "json.body")) &&
			      strcmp(json_string_value(json_path(r.json, "json.body")),
				     want_body) == 0,
		      "%s after %d: want body \"%s\" upstream; body: %.1000s", method, code,
		      want_body, body_of(&r));
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

/* ---- 4. credentials and origins ---- */

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

/* ---- 5. pool and queue ---- */

#define POOL_CONFIG "[pool]\nthreads = 4\nqueue_limit = 2\n"

START_TEST(test_healthz_answers_while_every_worker_is_busy)
{
	struct bg_request *bg[4];
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = POOL_CONFIG, .allow_loopback = true});
	hold_workers(&daemon_, &up, bg, 4, "k");
	ck_assert_int_eq(pool_stat(&daemon_, "busy"), 4);
	get_ok(daemon_.port, "/healthz", &r);
	expect_status(&r, 200);
	expect_json(&r, "", "{\"status\":\"ok\"}");
	ck_assert_msg(r.elapsed_ms < 2000, "/healthz took %.0f ms with the workers busy",
		      r.elapsed_ms);
	http_resp_free(&r);
	release_held(&up, "k", 0);
	join_held(bg, 4);
}
END_TEST

START_TEST(test_queued_fetch_waits_for_a_free_worker)
{
	struct bg_request *bg[4], *fifth;
	char *url = up_url(&up, "/count?key=five");
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = POOL_CONFIG, .allow_loopback = true});
	hold_workers(&daemon_, &up, bg, 4, "k");
	fifth = bg_post_obj(daemon_.port, "/v1/fetch", json_pack("{s:s}", "url", url));
	ck_assert_msg(wait_pool_stat(&daemon_, "queued", 1), "the fifth fetch was not queued");
	ck_assert_msg(counter_stays(&up, "five", "hits", 0),
		      "a queued fetch reached the upstream while every worker was busy");
	ck_assert_int_eq(upstream_counter(&up, "k", "hits"), 4);
	release_held(&up, "k", 1);
	ck_assert_msg(bg_join(fifth, &r) == 0, "the fifth fetch failed");
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_int(&r, "json.hits", 1);
	http_resp_free(&r);
	release_held(&up, "k", 0);
	/* the released one and the three still held all answer 200 */
	join_held(bg, 4);
	free(url);
}
END_TEST

/* A value of /v1/stats for the named pool; -1 when absent. */
static long named_pool_stat(const struct fetchd *f, const char *pool, const char *field)
{
	char *path = str_printf("pools.%s.%s", pool, field);
	long v = fetchd_stat(f->port, path);

	free(path);
	return v;
}

/* Bulkheads: fetches to the slow pool's host run on its own workers; with
 * that pool full, the default pool still serves other hosts at once. */
START_TEST(test_named_pool_isolates_its_hosts)
{
	struct bg_request *held, *queued;
	struct http_resp r;
	char *url, *body;
	uint64_t end;

	fetchd_start(&daemon_, &(struct fetchd_opts){
				       .extra_config = "[pool]\nthreads = 2\n"
						       "[pool.slow]\nthreads = 1\nqueue_limit = 1\n"
						       "hosts = localhost\n",
				       .allow_loopback = true});
	url = str_printf("http://localhost:%d/hold?key=slow", up.port);
	held = bg_post_obj(daemon_.port, "/v1/fetch", json_pack("{s:s}", "url", url));
	ck_assert_msg(wait_counter(&up, "slow", "held", 1), "the slow fetch was not held");
	queued = bg_post_obj(daemon_.port, "/v1/fetch", json_pack("{s:s}", "url", url));
	end = now_ms() + WAIT_MS;
	while (named_pool_stat(&daemon_, "slow", "queued") < 1 && now_ms() < end)
		sleep_ms(20);
	ck_assert_int_eq(named_pool_stat(&daemon_, "slow", "queued"), 1);
	ck_assert_int_eq(named_pool_stat(&daemon_, "slow", "busy"), 1);
	/* the slow pool is full: a third slow fetch is refused ... */
	body = str_printf("{\"url\": \"%s\"}", url);
	ck_assert_int_eq(http_post_json(daemon_.port, "/v1/fetch", body, &r), 0);
	expect_status(&r, 503);
	expect_str(&r, "error.code", "overloaded");
	http_resp_free(&r);
	free(body);
	/* ... while 127.0.0.1 runs in the default pool right away */
	fetch_path(&daemon_, &up, "/json", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
	ck_assert_int_eq(named_pool_stat(&daemon_, "default", "busy"), 0);
	/* a request may name its pool; an unknown name is a 400 */
	body = str_printf("{\"url\": \"http://127.0.0.1:%d/json\", \"pool\": \"nope\"}", up.port);
	ck_assert_int_eq(http_post_json(daemon_.port, "/v1/fetch", body, &r), 0);
	expect_status(&r, 400);
	expect_str(&r, "error.code", "invalid_request");
	http_resp_free(&r);
	free(body);
	release_held(&up, "slow", 0);
	ck_assert_int_eq(bg_join(held, &r), 0);
	expect_int(&r, "status", 200);
	expect_int(&r, "worker", 1);
	http_resp_free(&r);
	release_held(&up, "slow", 0);
	ck_assert_msg(wait_counter(&up, "slow", "hits", 2), "the queued slow fetch never ran");
	release_held(&up, "slow", 0);
	ck_assert_int_eq(bg_join(queued, &r), 0);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
	ck_assert_int_eq(named_pool_stat(&daemon_, "slow", "completed"), 2);
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

START_TEST(test_overloaded_beyond_capacity_with_retry_after)
{
	struct bg_request *bg[4], *queued[2];
	char *url = up_url(&up, "/count?key=q");
	struct http_resp r;
	char *retry, *end;
	long secs;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = POOL_CONFIG, .allow_loopback = true});
	hold_workers(&daemon_, &up, bg, 4, "k");
	for (int i = 0; i < 2; i++) {
		queued[i] = bg_post_obj(daemon_.port, "/v1/fetch", json_pack("{s:s}", "url", url));
		ck_assert_msg(wait_pool_stat(&daemon_, "queued", i + 1), "fetch %d not queued",
			      i + 5);
	}
	/* capacity is threads + queue_limit = 6 */
	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 503, "overloaded");
	retry = http_resp_header(&r, "Retry-After");
	ck_assert_msg(retry != NULL, "503 overloaded without Retry-After");
	secs = strtol(retry, &end, 10);
	ck_assert_msg(end != retry && *end == '\0' && secs >= 1,
		      "Retry-After should be whole seconds, got \"%s\"", retry);
	free(retry);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "q", "hits"), 0);
	release_held(&up, "k", 0);
	join_held(bg, 4);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(bg_join(queued[i], &r) == 0, "queued fetch %d failed", i);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	ck_assert_int_eq(upstream_counter(&up, "q", "hits"), 2);
	free(url);
}
END_TEST

/* ---- 6. disconnect ---- */

START_TEST(test_disconnected_queued_fetch_is_never_sent)
{
	struct bg_request *bg[4];
	char *url = up_url(&up, "/hold?key=q");
	char *body = str_printf("{\"url\":\"%s\"}", url);
	char *req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body), body);
	int fd;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = POOL_CONFIG, .allow_loopback = true});
	hold_workers(&daemon_, &up, bg, 4, "k");
	fd = raw_connect(daemon_.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, req, strlen(req)), 0);
	ck_assert_msg(wait_pool_stat(&daemon_, "queued", 1), "the raw fetch was not queued");
	close(fd);
	ck_assert_msg(wait_pool_stat(&daemon_, "cancelled", 1),
		      "/v1/stats never counted the cancelled fetch (cancelled %ld)",
		      pool_stat(&daemon_, "cancelled"));
	ck_assert_int_eq(pool_stat(&daemon_, "queued"), 0);
	release_held(&up, "k", 0);
	join_held(bg, 4);
	ck_assert_msg(counter_stays(&up, "q", "hits", 0),
		      "the fetch of a client that went away was sent upstream");
	expect_serving(&daemon_, &up);
	/* counted as its own outcome, not as a failed fetch */
	struct http_resp m;
	get_ok(daemon_.port, "/metrics", &m);
	ck_assert_msg(strstr(m.body, "fetchd_requests_total{code=\"499\",error=\"client_closed\"} "
				     "1\n") != NULL,
		      "no client_closed count in:\n%.3000s", m.body);
	ck_assert_msg(strstr(m.body, "error=\"upstream_error\"} 1") == NULL,
		      "the client's leaving was counted as upstream_error:\n%.3000s", m.body);
	http_resp_free(&m);
	free(req);
	free(body);
	free(url);
}
END_TEST

/* ---- 7, 8. deadlines ---- */

START_TEST(test_deadline_counts_queue_wait)
{
	struct bg_request *bg[4];
	char *url = up_url(&up, "/count?key=d");
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = POOL_CONFIG, .allow_loopback = true});
	hold_workers(&daemon_, &up, bg, 4, "k");
	/* answered while the workers are still held: by the deadline alone */
	fetch(&daemon_, json_pack("{s:s, s:f}", "url", url, "timeout", 0.5), &r);
	expect_error(&r, 504, "upstream_timeout");
	ck_assert_msg(r.elapsed_ms >= 400, "504 after %.0f ms, before the 0.5 s deadline",
		      r.elapsed_ms);
	http_resp_free(&r);
	release_held(&up, "k", 0);
	join_held(bg, 4);
	ck_assert_msg(counter_stays(&up, "d", "hits", 0),
		      "a fetch that timed out in the queue was sent upstream");
	free(url);
}
END_TEST

START_TEST(test_running_fetch_times_out_with_curl_code)
{
	char *url = up_url(&up, "/delay?ms=10000");
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s, s:f}", "url", url, "timeout", 0.5), &r);
	expect_error(&r, 504, "upstream_timeout");
	expect_curl_code(&r);
	ck_assert_msg(r.elapsed_ms < 9000, "the timeout took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	expect_serving(&daemon_, &up);
	free(url);
}
END_TEST

/* ---- 9. bad input ---- */

struct bad_case {
	const char *body; /* "@" stands for the upstream /json URL */
	const char *code;
	const char *names; /* what the message must name */
};

static char *subst_url(const char *tmpl, const char *url)
{
	size_t n = strlen(tmpl) + 1;
	char *out, *o;

	for (const char *p = tmpl; *p; p++)
		if (*p == '@')
			n += strlen(url);
	out = o = malloc(n);
	ck_assert_msg(out != NULL, "out of memory");
	for (const char *p = tmpl; *p; p++) {
		if (*p == '@') {
			memcpy(o, url, strlen(url));
			o += strlen(url);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

START_TEST(test_bad_input_is_400_naming_the_field)
{
	static const struct bad_case cases[] = {
		{"{\"url\": ", "invalid_json", "JSON"},
		{"{\"url\":\"@\",\"url\":\"@\"}", "invalid_request", "duplicate"},
		{"{\"url\":5}", "invalid_request", "url"},
		{"{\"url\":\"@\",\"timout\":1}", "invalid_request", "timout"},
		{"{\"method\":\"GET\"}", "invalid_request", "url"},
		{"{\"url\":\"@\",\"method\":\"FETCH\"}", "invalid_request", "method"},
		{"{\"url\":\"@\",\"headers\":{\"X-Test\":\"a\\r\\nb\"}}", "invalid_request",
		 "X-Test"},
		{"{\"url\":\"@\",\"headers\":[[\"X-Test\",\"a\\u0000b\"]]}", "invalid_request",
		 "X-Test"},
		{"{\"url\":\"@\",\"headers\":{\"X Bad\":\"v\"}}", "invalid_request", "X Bad"},
		{"{\"url\":\"@\\u0000x\"}", "invalid_request", "url"},
		{"[\"@\"]", "invalid_request", "object"},
		{"\"@\"", "invalid_request", "object"},
		{"{\"url\":\"file:///etc/passwd\"}", "unsupported_scheme", "file"},
		{"{\"url\":\"gopher://127.0.0.1:70/\"}", "unsupported_scheme", "gopher"},
		{"{\"url\":\"@\",\"fields\":[\"nope\"]}", "invalid_request", "nope"},
		{"{\"url\":\"@\",\"pool\":\"nope\"}", "invalid_request", "nope"},
		{"{\"url\":\"@\",\"timeout\":\"5\"}", "invalid_request", "timeout"},
		{"{\"url\":\"@\",\"follow_redirects\":1}", "invalid_request", "follow_redirects"},
		{"{\"url\":\"@\",\"body\":\"a\",\"json\":{}}", "invalid_request", "body"},
		{"{\"url\":\"@\",\"body_base64\":\"!!!\"}", "invalid_request", "body_base64"},
	};
	char *url = up_url(&up, "/json");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = subst_url(cases[i].body, url);
		struct http_resp r;
		json_t *m;

		ck_assert_msg(http_post_json(daemon_.port, "/v1/fetch", body, &r) == 0,
			      "POST %s failed", body);
		ck_assert_msg(r.status == 400, "%s: want 400, got %ld: %.1000s", body, r.status,
			      body_of(&r));
		ck_assert_msg(json_is_string(json_path(r.json, "error.code")) &&
				      strcmp(json_string_value(json_path(r.json, "error.code")),
					     cases[i].code) == 0,
			      "%s: want code %s: %.1000s", body, cases[i].code, body_of(&r));
		m = json_path(r.json, "error.message");
		ck_assert_msg(json_is_string(m) && strstr(json_string_value(m), cases[i].names),
			      "%s: message should name \"%s\": %.1000s", body, cases[i].names,
			      body_of(&r));
		http_resp_free(&r);
		free(body);
	}
	expect_serving(&daemon_, &up);
	free(url);
}
END_TEST

START_TEST(test_get_form_is_as_strict_as_json)
{
	static const struct {
		const char *query; /* after "url=ENCODED_URL" */
		const char *names;
	} bad[] = {
		{"&timeout=nan", "timeout"},   {"&timeout=inf", "timeout"},
		{"&timeout=-inf", "timeout"},  {"&timeout=0x10", "timeout"},
		{"&timeout=1%00", "timeout"},  {"&timeout=1e999", "timeout"},
		{"&timeout=%201", "timeout"},  {"&timeout=%2B1", "timeout"},
		{"&timeout=", "timeout"},      {"&timeout=-1", "timeout"},
		{"&timeout=0", "timeout"},     {"%00", "url"},
		{"%2500", NULL},	       {"&method=GET%00", "method"},
		{"&body_mode=none%00x", "body_mode"},
	};
	static const char *const good[] = {"&timeout=2", "&timeout=0.5", "&timeout=1e1",
					   "&timeout=007", "&method=get"};
	char *url = up_url(&up, "/json");
	char *enc = url_encode(url);
	struct http_resp r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = str_printf("/v1/fetch?url=%s%s", enc, bad[i].query);

		get_ok(daemon_.port, path, &r);
		if (bad[i].names == NULL) {
			/* "%2500" is a literal "%00" in the URL: fine, and upstream's */
			expect_status(&r, 200);
		} else {
			expect_error(&r, 400, "invalid_request");
			ck_assert_msg(strstr(json_string_value(json_path(r.json, "error.message")),
					     bad[i].names) != NULL,
				      "%s: message should name %s: %s", path, bad[i].names,
				      body_of(&r));
		}
		http_resp_free(&r);
		free(path);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *path = str_printf("/v1/fetch?url=%s%s", enc, good[i]);

		get_ok(daemon_.port, path, &r);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
		free(path);
	}
	/* full-width digits: an address spelled so that no text check sees it */
	get_ok(daemon_.port, "/v1/fetch?url=http%3A%2F%2F%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1%2F",
	       &r);
	expect_error(&r, 400, "invalid_request");
	ck_assert_msg(strstr(body_of(&r), "'url'") != NULL, "should name url: %s", body_of(&r));
	http_resp_free(&r);
	free(enc);
	free(url);
}
END_TEST

/* POST a fetch of url with field (an object) of n entries "k00000": "v"
 * as raw bytes, ask /healthz one request at a time until the answer
 * comes, and return how long the answer took; *worst is the slowest
 * /healthz meanwhile. The answer must be a 400 whose text has name. */
static uint64_t big_object_cost(const char *url, const char *field, int n, const char *name,
				uint64_t *worst)
{
	size_t cap = (size_t)n * 16 + 256, len;
	char *body = malloc(cap), *req, buf[4096];
	uint64_t start, answered = 0;
	ssize_t got;
	int fd;

	ck_assert_ptr_nonnull(body);
	len = (size_t)snprintf(body, cap, "{\"url\": \"%s\", \"%s\": {", url, field);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, cap - len, "%s\"k%05d\": \"v\"", i ? ", " : "",
					i);
	len += (size_t)snprintf(body + len, cap - len, "}}");
	req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
			 "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 len, body);
	fd = raw_connect(daemon_.port);
	ck_assert_int_ge(fd, 0);
	*worst = 0;
	start = now_ms();
	ck_assert_int_eq(raw_send(fd, req, strlen(req)), 0);
	while (now_ms() - start < 60000) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct http_resp r;

		if (poll(&pfd, 1, 0) == 1) {
			answered = now_ms() - start;
			break;
		}
		get_ok(daemon_.port, "/healthz", &r);
		expect_status(&r, 200);
		if ((uint64_t)r.elapsed_ms > *worst)
			*worst = (uint64_t)r.elapsed_ms;
		http_resp_free(&r);
	}
	ck_assert_msg(answered > 0, "no answer to %d %s in 60 s", n, field);
	got = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_gt(got, 0);
	buf[got] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0 && strstr(buf, name) != NULL,
		      "want a 400 naming %s: %s", name, buf);
	close(fd);
	free(req);
	free(body);
	return answered;
}

START_TEST(test_many_params_cost_the_loop_no_more_than_many_headers)
{
	/* 60k params, 900 KB: each used to be a curl_url_set that copied the
	 * whole query, seconds of the loop thread before the cap was checked.
	 * Measured against a request of the same shape that fetchd refuses
	 * after reading a little of it (60k headers, over the 100 allowed), so
	 * that ASan and a loaded machine slow both alike; the quadratic cost
	 * was 30 times the reference. */
	char *url = up_url(&up, "/json");
	uint64_t ref_worst, worst;
	uint64_t ref = big_object_cost(url, "headers", 60000, "'headers'", &ref_worst);
	uint64_t cost = big_object_cost(url, "params", 60000, "'params'", &worst);
	uint64_t bound = 3 * ref + 1000;

	ck_assert_msg(cost < bound, "60k params answered after %llu ms, 60k headers after %llu",
		      (unsigned long long)cost, (unsigned long long)ref);
	ck_assert_msg(worst < bound, "/healthz took %llu ms during 60k params (%llu ms for 60k "
		      "headers)", (unsigned long long)worst, (unsigned long long)ref);
	free(url);
}
END_TEST

/* ---- 10. routes ---- */

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
	ck_assert_msg(h != NULL && strcmp(h, "GET, POST") == 0, "Allow: %s", h ? h : "(none)");
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
	ck_assert_msg(h != NULL && strcmp(h, "GET") == 0, "Allow: %s", h ? h : "(none)");
	free(h);
	http_resp_free(&r);
}
END_TEST

/* ---- 11. batch ---- */

START_TEST(test_batch_answers_in_input_order)
{
	char *ok = up_url(&up, "/json"), *missing = up_url(&up, "/status/404");
	struct http_resp r;

	ck_assert_int_eq(http_post_obj(daemon_.port, "/v1/batch",
				       json_pack("{s:[{s:s},{s:s,s:i},{s:s}]}", "requests", "url", ok,
						 "url", ok, "timout", 1, "url", missing),
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
	ck_assert_int_eq(http_post_obj(daemon_.port, "/v1/batch",
				       json_pack("{s:[{s:s},{s:s}]}", "requests", "url", url, "url",
						 url),
				       &r),
			 0);
	expect_status(&r, 200);
	expect_int(&r, "results.0.status", 200);
	expect_int(&r, "results.1.status", 200);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- 12. upstream errors and limits ---- */

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
		ck_assert_msg(r.status == 502, "%s: want 502, got %ld: %.1000s", paths[i],
			      r.status, body_of(&r));
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

/* ---- 13. destination guard ---- */

START_TEST(test_loopback_denied_without_allow)
{
	char *url = up_url(&up, "/count?key=g");
	struct http_resp r;

	fetchd_start(&daemon_, NULL);
	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "g", "hits"), 0);
	free(url);
}
END_TEST

START_TEST(test_own_listen_port_denied_even_with_allow)
{
	char *url = str_printf("http://127.0.0.1:%d/healthz", daemon_.port);
	struct http_resp r;

	fetch(&daemon_, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- 13b. loops: Via (RFC 9110 section 7.6.3) ---- */

/* POST body to path on 127.0.0.1:port with extra header lines (each
 * ending in CRLF), over a raw connection, so the test sets headers the
 * harness does not; the answer's status, and its body parsed into *body
 * (NULL when not JSON). */
static long raw_post(int port, const char *path, const char *extra_headers, const char *body,
		     json_t **out)
{
	char *req = str_printf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
			       "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
			       path, extra_headers, strlen(body), body);
	char buf[65536];
	size_t len = 0;
	uint64_t end = now_ms() + HARNESS_HTTP_TIMEOUT_S * 1000;
	long status = -1;
	int fd = raw_connect(port);
	const char *b;

	ck_assert_msg(fd >= 0, "connect to %d failed", port);
	ck_assert_int_eq(raw_send(fd, req, strlen(req)), 0);
	free(req);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ck_assert_msg(now_ms() < end && len < sizeof(buf) - 1, "no whole answer");
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
		status = strtol(buf + 9, NULL, 10);
	b = strstr(buf, "\r\n\r\n");
	*out = b != NULL ? json_loads(b + 4, 0, NULL) : NULL;
	return status;
}

/* The Via fetchd sent to the upstream's /echo: malloc'd. */
static char *echoed_via(int port, const char *extra_headers, const char *json_headers)
{
	char *url = up_url(&up, "/echo");
	char *body = str_printf("{\"url\": \"%s\", \"headers\": %s}", url, json_headers);
	json_t *doc = NULL, *via;
	long status = raw_post(port, "/v1/fetch", extra_headers, body, &doc);
	char *copy;

	ck_assert_msg(status == 200, "fetch of /echo: HTTP %ld", status);
	via = json_path(doc, "json.headers.via");
	ck_assert_msg(json_is_string(via), "the upstream saw no Via: %s", describe(doc));
	copy = strdup(json_string_value(via));
	json_decref(doc);
	free(body);
	free(url);
	return copy;
}

/* "fetchd-" and 16 lower-case hex digits. */
static bool is_instance_name(const char *s, size_t len)
{
	if (len != 23 || strncmp(s, "fetchd-", 7) != 0)
		return false;
	for (size_t i = 7; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

START_TEST(test_upstream_request_carries_via_naming_this_fetchd)
{
	struct fetchd other;
	char *via = echoed_via(daemon_.port, "", "{}"), *via2;

	ck_assert_msg(strncmp(via, "1.1 ", 4) == 0 && is_instance_name(via + 4, strlen(via + 4)),
		      "Via: want '1.1 fetchd-<16 hex>', got '%s'", via);
	/* another process, another name */
	fetchd_start(&other, &(struct fetchd_opts){.allow_loopback = true});
	via2 = echoed_via(other.port, "", "{}");
	fetchd_stop(&other);
	ck_assert_msg(strcmp(via, via2) != 0, "two fetchd processes both sent '%s'", via);
	free(via2);
	free(via);
}
END_TEST

/* The client's own Via headers come first, then the Via of its request to
 * fetchd, then fetchd's entry: one field line, appended to, never
 * replaced; the plain request (no headers) and this one agree. */
START_TEST(test_client_via_is_passed_on_and_appended_to)
{
	char *plain = echoed_via(daemon_.port, "", "{}");
	char *via = echoed_via(daemon_.port, "Via: 1.0 edge\r\nvia: 1.1 lb (x, y)\r\n",
			       "[[\"Via\", \"1.1 client\"], [\"via\", \"2 other\"]]");
	char *want = str_printf("1.1 client, 2 other, 1.0 edge, 1.1 lb (x, y), %s", plain);

	ck_assert_str_eq(via, want);
	free(want);
	free(via);
	via = echoed_via(daemon_.port, "Via: 1.0 edge\r\n", "{}");
	want = str_printf("1.0 edge, %s", plain);
	ck_assert_str_eq(via, want);
	free(want);
	free(via);
	free(plain);
}
END_TEST

/* A request whose Via names this fetchd is refused 508 loop_detected on
 * /v1/fetch and /v1/batch, before anything is fetched; another fetchd's
 * name, or ours as part of a longer token, is not ours. */
START_TEST(test_request_whose_via_names_this_fetchd_is_508_loop_detected)
{
	char *via = echoed_via(daemon_.port, "", "{}");
	const char *name = via + 4;
	char *url = up_url(&up, "/count?key=viaself");
	char *one = str_printf("{\"url\": \"%s\"}", url);
	char *batch = str_printf("{\"requests\": [%s]}", one);
	char *ours = str_printf("Via: 1.0 edge, 1.1 %s (fetchd)\r\n", name);
	char *longer = str_printf("Via: 1.1 %s0\r\nVia: 1.1 x%s\r\n", name, name);
	json_t *doc;

	ck_assert_int_eq(raw_post(daemon_.port, "/v1/fetch", ours, one, &doc), 508);
	ck_assert_str_eq(json_string_value(json_path(doc, "error.code")), "loop_detected");
	json_decref(doc);
	ck_assert_int_eq(raw_post(daemon_.port, "/v1/batch", ours, batch, &doc), 508);
	ck_assert_str_eq(json_string_value(json_path(doc, "error.code")), "loop_detected");
	json_decref(doc);
	ck_assert_int_eq(upstream_counter(&up, "viaself", "hits"), 0);

	ck_assert_int_eq(raw_post(daemon_.port, "/v1/fetch", longer, one, &doc), 200);
	ck_assert_int_eq(json_integer_value(json_path(doc, "status")), 200);
	json_decref(doc);
	ck_assert_int_eq(raw_post(daemon_.port, "/v1/fetch",
				  "Via: 1.1 fetchd-0123456789abcdef\r\n", one, &doc),
			 200);
	json_decref(doc);
	ck_assert_int_eq(upstream_counter(&up, "viaself", "hits"), 2);
	free(longer);
	free(ours);
	free(batch);
	free(one);
	free(url);
	free(via);
}
END_TEST

/* A -> B -> A through nested GET /v1/fetch?url= URLs, both fetchds on
 * loopback and allowed to fetch it (each one's own port is denied, so
 * only a second fetchd closes the loop). A's Via reaches B, B passes it
 * on, and A refuses its own fetch come back with 508: the upstream at the
 * end of the chain is never reached, and no worker waits on another. */
START_TEST(test_fetch_loop_through_two_fetchds_is_508_loop_detected)
{
	struct fetchd b;
	char *target = up_url(&up, "/count?key=loop");
	char *back_to_a, *to_b, *enc;
	struct http_resp r;
	json_t *inner;

	fetchd_start(&b, &(struct fetchd_opts){.allow_loopback = true});
	enc = url_encode(target);
	back_to_a = str_printf("http://127.0.0.1:%d/v1/fetch?url=%s", daemon_.port, enc);
	free(enc);
	enc = url_encode(back_to_a);
	to_b = str_printf("http://127.0.0.1:%d/v1/fetch?url=%s", b.port, enc);
	free(enc);

	fetch(&daemon_, json_pack("{s:s, s:i}", "url", to_b, "timeout", 10), &r);
	ck_assert_msg(r.status == 200, "A answered %ld: %s", r.status, body_of(&r));
	/* B answered A; A's answer to B was the 508 */
	ck_assert_int_eq(json_integer_value(json_path(r.json, "status")), 200);
	inner = json_path(r.json, "json");
	ck_assert_msg(json_integer_value(json_path(inner, "status")) == 508,
		      "B's fetch of A: want 508, got %s", describe(inner));
	ck_assert_str_eq(json_string_value(json_path(inner, "json.error.code")), "loop_detected");
	ck_assert_msg(r.elapsed_ms < 5000, "the loop took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "loop", "hits"), 0);
	fetchd_stop(&b);
	free(to_b);
	free(back_to_a);
	free(target);
}
END_TEST

/* ---- 14. cookies ---- */

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

/* ---- 15. bytes, charsets, compression ---- */

START_TEST(test_latin1_header_is_kept_as_utf8)
{
	struct http_resp r;
	json_t *v;

	fetch_path(&daemon_, &up, "/latin1-header", &r);
	expect_status(&r, 200);
	v = json_path(r.json, "headers.x-name");
	ck_assert_msg(json_is_string(v) &&
			      (strcmp(json_string_value(v), "caf\xc3\xa9") == 0 ||
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
	raw = (unsigned char *)base64_decode(json_string_value(b64), json_string_length(b64),
					     &len, &bad);
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
	raw = (unsigned char *)base64_decode(json_string_value(b64), json_string_length(b64),
					     &len, &bad);
	ck_assert_msg(raw != NULL && len > 2 && raw[0] == 0x1f && raw[1] == 0x8b,
		      "the raw body is not gzip");
	expect_int(&r, "size", (long long)len);
	free(raw);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- 16. fields ---- */

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

/* ---- /v1/stats ---- */

/* /metrics is Prometheus text that promtool accepts, and counts what ran. */
START_TEST(test_metrics_are_valid_prometheus_text)
{
	struct http_resp r;
	char *type, *cmd;
	FILE *pipe;
	int rc;

	fetch_path(&daemon_, &up, "/json", &r);
	expect_status(&r, 200);
	http_resp_free(&r);
	get_ok(daemon_.port, "/metrics", &r);
	expect_status(&r, 200);
	type = http_resp_header(&r, "Content-Type");
	ck_assert_msg(type != NULL && strncmp(type, "text/plain; version=0.0.4", 25) == 0,
		      "content type %s", type ? type : "(none)");
	free(type);
	ck_assert_msg(strstr(r.body, "fetchd_requests_total{code=\"200\",error=\"\"} 1\n") != NULL,
		      "requests_total; body: %.2000s", r.body);
	ck_assert_msg(strstr(r.body, "fetchd_fetch_duration_seconds_count 1\n") != NULL,
		      "fetch duration count; body: %.2000s", r.body);
	ck_assert_msg(strstr(r.body, "fetchd_pool_threads{pool=\"default\"} 4\n") != NULL,
		      "pool threads; body: %.2000s", r.body);
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "promtool not installed: metrics format not checked by it\n");
		http_resp_free(&r);
		return;
	}
	cmd = str_printf("promtool check metrics >/dev/null");
	pipe = popen(cmd, "w");
	ck_assert(pipe != NULL);
	fwrite(r.body, 1, r.body_len, pipe);
	rc = pclose(pipe);
	ck_assert_msg(rc == 0, "promtool check metrics failed (%d) on:\n%.4000s", rc, r.body);
	free(cmd);
	http_resp_free(&r);
}
END_TEST

/* The access log names the request id (the client's, echoed back) and the
 * target host, and never the URL's userinfo. */
START_TEST(test_access_log_has_request_id_and_no_credentials)
{
	struct http_resp r;
	char *id, *log, *body;

	body = str_printf("{\"url\": \"http://user:s3cret@127.0.0.1:%d/json\"}", up.port);
	ck_assert_int_eq(http_post_json(daemon_.port, "/v1/fetch", body, &r), 0);
	free(body);
	expect_status(&r, 200);
	id = http_resp_header(&r, "X-Request-Id");
	ck_assert_msg(id != NULL && strlen(id) >= 8, "generated X-Request-Id: %s", id ? id : "-");
	log = fetchd_log(&daemon_);
	ck_assert_msg(strstr(log, id) != NULL, "id %s not in the log:\n%s", id, log);
	ck_assert_msg(strstr(log, "host=127.0.0.1") != NULL, "host not logged:\n%s", log);
	ck_assert_msg(strstr(log, "s3cret") == NULL, "userinfo leaked into the log:\n%s", log);
	free(log);
	free(id);
	http_resp_free(&r);
}
END_TEST

struct load_arg {
	int port;
	char *body;
	int ok;
};

static void *load_thread(void *arg)
{
	struct load_arg *a = arg;

	for (int i = 0; i < 25; i++) {
		struct http_resp r;

		if (http_post_json(a->port, "/v1/fetch", a->body, &r) == 0 && r.status == 200 &&
		    json_integer_value(json_path(r.json, "status")) == 200)
			a->ok++;
		http_resp_free(&r);
	}
	return NULL;
}

/* Workers keep their upstream connections alive between tasks (one curl
 * handle each): 200 fetches from 8 clients open at most one upstream
 * connection per worker. */
START_TEST(test_workers_reuse_upstream_connections)
{
	struct load_arg args[8];
	pthread_t th[8];
	struct http_resp r;
	char *body = str_printf("{\"url\": \"http://127.0.0.1:%d/json\", \"fields\": [\"status\"]}",
				up.port);
	int ok = 0;

	for (int i = 0; i < 8; i++) {
		args[i] = (struct load_arg){.port = daemon_.port, .body = body};
		ck_assert_int_eq(pthread_create(&th[i], NULL, load_thread, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += args[i].ok;
	}
	ck_assert_int_eq(ok, 200);
	get_ok(up.port, "/connections", &r);
	ck_assert_msg(json_integer_value(json_path(r.json, "accepted")) <= DEFAULT_THREADS + 1,
		      "upstream accepted %lld connections for 200 fetches on %d workers",
		      (long long)json_integer_value(json_path(r.json, "accepted")),
		      DEFAULT_THREADS);
	http_resp_free(&r);
	free(body);
}
END_TEST

START_TEST(test_stats_reports_pool_counters)
{
	static const char *const keys[] = {"threads", "busy",	  "queued",  "queue_limit",
					   "completed", "failed", "rejected"};
	struct http_resp r;

	fetch_path(&daemon_, &up, "/json", &r);
	expect_status(&r, 200);
	http_resp_free(&r);
	fetch_path(&daemon_, &up, "/reset", &r);
	expect_status(&r, 502);
	http_resp_free(&r);
	get_ok(daemon_.port, "/v1/stats", &r);
	expect_status(&r, 200);
	ck_assert_msg(json_is_string(json_path(r.json, "version")), "version; body: %.1000s",
		      body_of(&r));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *path = str_printf("pools.default.%s", keys[i]);

		ck_assert_msg(json_is_integer(json_path(r.json, path)),
			      "%s missing; body: %.1000s", path, body_of(&r));
		free(path);
	}
	expect_int(&r, "pools.default.threads", DEFAULT_THREADS);
	expect_int(&r, "pools.default.queue_limit", 1024);
	expect_int(&r, "pools.default.busy", 0);
	expect_int(&r, "pools.default.queued", 0);
	expect_int(&r, "pools.default.rejected", 0);
	ck_assert_msg(json_integer_value(json_path(r.json, "pools.default.completed")) >= 1,
		      "completed; body: %.1000s", body_of(&r));
	http_resp_free(&r);
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

static Suite *integration_suite(void)
{
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("default_config");

	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_get_fetch_returns_full_document);
	tcase_add_test(tc, test_document_url_is_the_normalized_one);
	tcase_add_test(tc, test_post_fetch_sends_method_headers_and_body);
	tcase_add_test(tc, test_request_without_body_or_type_sends_no_content_type);
	tcase_add_test(tc, test_redirect_chain_307_301_302_records_history_in_order);
	tcase_add_test(tc, test_redirect_method_rules_follow_fetch_standard);
	tcase_add_test(tc, test_redirect_303_keeps_head);
	tcase_add_test(tc, test_redirect_drops_credentials_cross_origin);
	tcase_add_test(tc, test_redirect_keeps_credentials_same_origin);
	tcase_add_test(tc, test_running_fetch_times_out_with_curl_code);
	tcase_add_test(tc, test_bad_input_is_400_naming_the_field);
	tcase_add_test(tc, test_get_form_is_as_strict_as_json);
	tcase_add_test(tc, test_many_params_cost_the_loop_no_more_than_many_headers);
	tcase_add_test(tc, test_unknown_path_and_wrong_verb_answers);
	tcase_add_test(tc, test_batch_answers_in_input_order);
	tcase_add_test(tc, test_upstream_5xx_is_a_200_document);
	tcase_add_test(tc, test_broken_upstreams_are_502_upstream_error);
	tcase_add_test(tc, test_closed_port_is_502_connect_failed);
	tcase_add_test(tc, test_max_bytes_truncates_with_200);
	tcase_add_test(tc, test_redirects_beyond_max_redirects_are_502);
	tcase_add_test(tc, test_redirect_to_ftp_is_502_naming_the_scheme);
	tcase_add_test(tc, test_follow_redirects_false_returns_the_redirect);
	tcase_add_test(tc, test_own_listen_port_denied_even_with_allow);
	tcase_add_test(tc, test_upstream_request_carries_via_naming_this_fetchd);
	tcase_add_test(tc, test_client_via_is_passed_on_and_appended_to);
	tcase_add_test(tc, test_request_whose_via_names_this_fetchd_is_508_loop_detected);
	tcase_add_test(tc, test_fetch_loop_through_two_fetchds_is_508_loop_detected);
	tcase_add_test(tc, test_cookies_collected_and_sent_along_redirect_chain);
	tcase_add_test(tc, test_latin1_header_is_kept_as_utf8);
	tcase_add_test(tc, test_latin1_body_is_decoded_to_text);
	tcase_add_test(tc, test_binary_body_is_base64_without_text);
	tcase_add_test(tc, test_gzip_decompressed_or_kept_raw);
	tcase_add_test(tc, test_fields_limit_the_document);
	tcase_add_test(tc, test_stats_reports_pool_counters);
	tcase_add_test(tc, test_workers_reuse_upstream_connections);
	tcase_add_test(tc, test_metrics_are_valid_prometheus_text);
	tcase_add_test(tc, test_access_log_has_request_id_and_no_credentials);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_healthz_answers_while_every_worker_is_busy);
	tcase_add_test(tc, test_queued_fetch_waits_for_a_free_worker);
	tcase_add_test(tc, test_named_pool_isolates_its_hosts);
	tcase_add_test(tc, test_environment_proxy_is_ignored);
	tcase_add_test(tc, test_overloaded_beyond_capacity_with_retry_after);
	tcase_add_test(tc, test_disconnected_queued_fetch_is_never_sent);
	tcase_add_test(tc, test_deadline_counts_queue_wait);
	tcase_add_test(tc, test_batch_over_max_batch_is_400);
	tcase_add_test(tc, test_body_over_max_response_bytes_is_502);
	tcase_add_test(tc, test_head_of_a_resource_over_the_cap_is_200);
	tcase_add_test(tc, test_loopback_denied_without_allow);
	tcase_add_test(tc, test_cookies_do_not_leak_between_fetches);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(integration_suite(), CK_NORMAL);
}
