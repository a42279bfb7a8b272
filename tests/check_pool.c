/* The worker pool and its queue (the run_in_executor contract): /healthz
 * while every worker is busy, queue wait, named pools as bulkheads, 503
 * overloaded with Retry-After, a disconnected queued fetch never sent, the
 * deadline counting queue wait, a running fetch's timeout, kept-alive
 * upstream connections and the pool counters of /v1/stats.
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server, both on 127.0.0.1, through HTTP. Each test starts its own
 * processes (checked fixtures). Nothing sleeps for a fixed long time: waits
 * are bounded polls, and every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- pool and queue ---- */

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

/* ---- disconnect ---- */

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

/* ---- deadlines ---- */

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

/* ---- kept-alive upstream connections, pool counters ---- */

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
	static const char *const keys[] = {"threads",	"busy",	  "queued",  "queue_limit",
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

		ck_assert_msg(json_is_integer(json_path(r.json, path)), "%s missing; body: %.1000s",
			      path, body_of(&r));
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

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_running_fetch_times_out_with_curl_code);
	tcase_add_test(tc, test_stats_reports_pool_counters);
	tcase_add_test(tc, test_workers_reuse_upstream_connections);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_healthz_answers_while_every_worker_is_busy);
	tcase_add_test(tc, test_queued_fetch_waits_for_a_free_worker);
	tcase_add_test(tc, test_named_pool_isolates_its_hosts);
	tcase_add_test(tc, test_overloaded_beyond_capacity_with_retry_after);
	tcase_add_test(tc, test_disconnected_queued_fetch_is_never_sent);
	tcase_add_test(tc, test_deadline_counts_queue_wait);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(pool_suite(), CK_NORMAL);
}
