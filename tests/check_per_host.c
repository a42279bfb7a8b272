/* Per-host rules (issue 15, items 2-4): [pool] per_host_limit caps the
 * fetches running against one host while other hosts go ahead;
 * per_host_interval spaces the starts to one host; a 429/503 with
 * Retry-After pauses its host (at most per_host_max_pause); a fetch that
 * waits for its host waits in the queue and leaves it when its client
 * goes; each redirect hop is admitted against its own host, cookies of
 * the chain kept; a reload changes the rules live.
 *
 * Integration tests: the real fetchd against two upstream test servers
 * standing in for two hosts, on 127.0.0.2 and 127.0.0.3 (all of
 * 127.0.0.0/8 routes to lo). Every wait is bounded; time bounds are
 * lower bounds where fetchd promises a wait, and loose upper bounds
 * (sanitizers, a loaded 2-core machine) where it promises none. */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 180
#define SLOW_FETCHES 100

static struct upstream slow, fast; /* 127.0.0.2, 127.0.0.3 */
static struct fetchd fd_;

static char *config_text(const char *pool_config)
{
	return str_printf("[pool]\n%s\n[security]\nallow = 127.0.0.0/8\n", pool_config);
}

static void start(const char *pool_config)
{
	char *extra = config_text(pool_config);

	upstream_start_at(&slow, "127.0.0.2");
	upstream_start_at(&fast, "127.0.0.3");
	/* the [security] allow of the config, not --allow 127.0.0.1/32;
	 * kept, for the reload test */
	fetchd_start(&fd_, &(struct fetchd_opts){.extra_config = extra, .keep_config = true});
	free(extra);
}

static void teardown(void)
{
	fetchd_stop(&fd_);
	upstream_stop(&slow);
	upstream_stop(&fast);
}

static struct bg_request *bg_fetch(const struct upstream *u, const char *path)
{
	char *url = up_url(u, path);
	struct bg_request *b = bg_post_obj(fd_.port, "/v1/fetch", json_pack("{s:s}", "url", url));

	free(url);
	return b;
}

/* A fetch of u's path; its answer is a 200 document. Returns how long it
 * took, in ms. */
static double fetch_ms(const struct upstream *u, const char *path)
{
	struct http_resp r;
	double ms;

	fetch_path(&fd_, u, path, &r);
	expect_status(&r, 200);
	ms = r.elapsed_ms;
	http_resp_free(&r);
	return ms;
}

static long per_host(const char *field)
{
	char *path = str_printf("per_host.%s", field);
	long v = pool_stat(&fd_, path);

	free(path);
	return v;
}

static bool wait_per_host(const char *field, long want)
{
	uint64_t end = now_ms() + 20000;

	while (per_host(field) != want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

START_TEST(test_limit_caps_a_slow_host_and_the_fast_host_goes_ahead)
{
	struct bg_request *bg[SLOW_FETCHES];
	double worst = 0;
	uint64_t end;

	start("threads = 16\nqueue_limit = 200\nper_host_limit = 4");
	for (int i = 0; i < SLOW_FETCHES; i++)
		bg[i] = bg_fetch(&slow, "/hold?key=slow");
	ck_assert_msg(wait_counter(&slow, "slow", "held", 4), "the slow host holds %ld",
		      upstream_counter(&slow, "slow", "held"));
	ck_assert_msg(wait_per_host("waiting", SLOW_FETCHES - 4), "waiting: %ld",
		      per_host("waiting"));
	ck_assert_int_eq(per_host("at_limit"), 1);
	ck_assert_int_eq(per_host("hosts"), 1);
	/* 12 workers are free: the fast host's fetches do not queue behind
	 * the 96 waiting for the slow one */
	for (int i = 0; i < 20; i++) {
		double ms = fetch_ms(&fast, "/count?key=fast");

		if (ms > worst)
			worst = ms;
	}
	ck_assert_msg(worst < 2000, "a fast fetch took %.0f ms behind the slow host", worst);
	ck_assert_int_eq(upstream_counter(&slow, "slow", "held"), 4);

	/* let the slow ones through, four at a time */
	end = now_ms() + 60000;
	while (upstream_counter(&slow, "slow", "hits") < SLOW_FETCHES && now_ms() < end) {
		release_held(&slow, "slow", 0);
		sleep_ms(10);
	}
	release_held(&slow, "slow", 0);
	for (int i = 0; i < SLOW_FETCHES; i++) {
		struct http_resp r;

		ck_assert_int_eq(bg_join(bg[i], &r), 0);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	ck_assert_int_eq(upstream_counter(&slow, "slow", "hits"), SLOW_FETCHES);
	ck_assert_msg(upstream_counter(&slow, "slow", "peak") == 4,
		      "the slow host saw %ld at once (limit 4)",
		      upstream_counter(&slow, "slow", "peak"));
	/* a wait begins each time a slot freed by a release is taken again */
	ck_assert_int_ge(per_host("limit_waits"), SLOW_FETCHES / 4);
	ck_assert(wait_per_host("hosts", 0));
	ck_assert_int_eq(per_host("waiting"), 0);
}
END_TEST

START_TEST(test_interval_spaces_the_starts_to_one_host)
{
	struct bg_request *bg[4];
	uint64_t t0 = now_ms();
	double ms;

	start("threads = 8\nper_host_interval = 300ms");
	for (int i = 0; i < 4; i++)
		bg[i] = bg_fetch(&slow, "/count?key=paced");
	/* pacing holds the one host back, not the pool */
	ms = fetch_ms(&fast, "/count?key=other");
	for (int i = 0; i < 4; i++) {
		struct http_resp r;

		ck_assert_int_eq(bg_join(bg[i], &r), 0);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	ck_assert_int_eq(upstream_counter(&slow, "paced", "hits"), 4);
	/* starts are 300 ms apart; arrivals may be a little closer */
	ck_assert_msg(upstream_counter(&slow, "paced", "min_gap_ms") >= 250,
		      "two starts %ld ms apart (interval 300 ms)",
		      upstream_counter(&slow, "paced", "min_gap_ms"));
	ck_assert_uint_ge(now_ms() - t0, 850);
	ck_assert_msg(ms < 1000, "the other host's fetch took %.0f ms", ms);
	ck_assert_int_ge(per_host("pace_waits"), 3);
}
END_TEST

START_TEST(test_retry_after_pauses_its_host_only)
{
	struct http_resp r;
	struct bg_request *b;
	uint64_t t0;
	double ms;

	start("threads = 8\nper_host_limit = 4");
	fetch_path(&fd_, &slow, "/flaky?key=r&fail=1&status=503&retry_after=1", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 503);
	http_resp_free(&r);
	t0 = now_ms();
	b = bg_fetch(&slow, "/count?key=after");
	ms = fetch_ms(&fast, "/count?key=free");
	ck_assert_int_eq(bg_join(b, &r), 0);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
	ck_assert_msg(now_ms() - t0 >= 800, "the paused host was fetched after %llu ms",
		      (unsigned long long)(now_ms() - t0));
	ck_assert_msg(ms < 800, "the other host waited %.0f ms", ms);
	ck_assert_int_eq(per_host("pauses"), 1);
}
END_TEST

START_TEST(test_a_pause_is_capped_by_per_host_max_pause)
{
	struct http_resp r;
	double ms;

	start("threads = 4\nper_host_limit = 4\nper_host_max_pause = 300ms");
	fetch_path(&fd_, &slow, "/flaky?key=r&fail=1&status=429&retry_after=30", &r);
	expect_int(&r, "status", 429);
	http_resp_free(&r);
	ms = fetch_ms(&slow, "/count?key=after");
	ck_assert_msg(ms >= 200 && ms < 10000, "the fetch after the pause took %.0f ms", ms);
}
END_TEST

START_TEST(test_a_gone_client_leaves_its_host_queue)
{
	struct bg_request *held;
	char *body = NULL, *req;
	struct http_resp r;
	int sock;

	start("threads = 4\nper_host_limit = 1");
	held = bg_fetch(&slow, "/hold?key=h");
	ck_assert(wait_counter(&slow, "h", "held", 1));
	body = fetch_body(&slow, "/count?key=never");
	req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 strlen(body), body);
	sock = raw_connect(fd_.port);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(raw_send(sock, req, strlen(req)), 0);
	ck_assert_msg(wait_per_host("waiting", 1), "waiting: %ld", per_host("waiting"));
	close(sock);
	ck_assert_msg(wait_per_host("waiting", 0), "still waiting: %ld", per_host("waiting"));
	release_held(&slow, "h", 0);
	ck_assert_int_eq(bg_join(held, &r), 0);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
	ck_assert(counter_stays(&slow, "never", "hits", 0));
	ck_assert(wait_per_host("hosts", 0));
	free(req);
	free(body);
}
END_TEST

/* fast (127.0.0.3) sets a cookie and redirects to slow (127.0.0.2),
 * which redirects back to fast's /echo: the hop to slow waits for slow's
 * turn (its one slot is held) without holding fast, and the cookie set on
 * the first hop reaches the last. */
START_TEST(test_each_redirect_hop_is_admitted_against_its_own_host)
{
	char *echo, *enc_echo, *to_slow, *enc_slow, *first;
	struct bg_request *held, *chain;
	struct http_resp r;

	start("threads = 4\nper_host_limit = 1");
	echo = up_url(&fast, "/echo");
	enc_echo = url_encode(echo);
	to_slow = str_printf("/redirect?to=%s", enc_echo);
	free(enc_echo);
	enc_echo = up_url(&slow, to_slow);
	enc_slow = url_encode(enc_echo);
	first = str_printf("/redirect?set_cookie=k%%3Dv&to=%s", enc_slow);

	held = bg_fetch(&slow, "/hold?key=x");
	ck_assert(wait_counter(&slow, "x", "held", 1));
	chain = bg_fetch(&fast, first);
	ck_assert_msg(wait_per_host("waiting", 1), "waiting: %ld", per_host("waiting"));
	/* the chain's first hop is done: fast is free meanwhile */
	ck_assert_msg(fetch_ms(&fast, "/count?key=z") < 2000, "fast was held");
	release_held(&slow, "x", 0);
	ck_assert_int_eq(bg_join(held, &r), 0);
	http_resp_free(&r);
	ck_assert_int_eq(bg_join(chain, &r), 0);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	ck_assert_msg(json_array_size(json_path(r.json, "history")) == 2, "history: %s",
		      describe(json_path(r.json, "history")));
	expect_str(&r, "url", echo);
	expect_str(&r, "json.headers.cookie", "k=v");
	ck_assert_msg(json_number_value(json_path(r.json, "timing.queued_ms")) > 0, "queued_ms: %s",
		      describe(json_path(r.json, "timing.queued_ms")));
	http_resp_free(&r);
	free(first);
	free(enc_slow);
	free(enc_echo);
	free(to_slow);
	free(echo);
}
END_TEST

/* A reload that raises per_host_limit lets the fetches it held start at
 * once. */
START_TEST(test_a_reload_changes_the_limit_live)
{
	struct bg_request *bg[3];
	char *text;

	start("threads = 8\nper_host_limit = 1");
	for (int i = 0; i < 3; i++)
		bg[i] = bg_fetch(&slow, "/hold?key=r");
	ck_assert(wait_counter(&slow, "r", "held", 1));
	ck_assert_msg(wait_per_host("waiting", 2), "waiting: %ld", per_host("waiting"));
	text = config_text("threads = 8\nper_host_limit = 3");
	fetchd_write_config(&fd_, text);
	free(text);
	ck_assert_int_eq(fetchd_signal(&fd_, SIGHUP), 0);
	ck_assert_msg(wait_counter(&slow, "r", "held", 3), "held after the reload: %ld",
		      upstream_counter(&slow, "r", "held"));
	ck_assert_int_eq(per_host("waiting"), 0);
	release_held(&slow, "r", 0);
	for (int i = 0; i < 3; i++) {
		struct http_resp r;

		ck_assert_int_eq(bg_join(bg[i], &r), 0);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	ck_assert(wait_per_host("hosts", 0));
}
END_TEST

static Suite *per_host_suite(void)
{
	Suite *s = suite_create("per_host");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_limit_caps_a_slow_host_and_the_fast_host_goes_ahead);
	tcase_add_test(tc, test_interval_spaces_the_starts_to_one_host);
	tcase_add_test(tc, test_retry_after_pauses_its_host_only);
	tcase_add_test(tc, test_a_pause_is_capped_by_per_host_max_pause);
	tcase_add_test(tc, test_a_gone_client_leaves_its_host_queue);
	tcase_add_test(tc, test_each_redirect_hop_is_admitted_against_its_own_host);
	tcase_add_test(tc, test_a_reload_changes_the_limit_live);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(per_host_suite(), CK_NORMAL);
}
