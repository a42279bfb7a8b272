/* Retries (issue 15, item 1): a 503 then a 200, Retry-After in seconds
 * and as an HTTP date, no retry of a POST unless retry_non_idempotent,
 * retries cut short by the deadline (and the answer says so), the
 * attempts in the document, connect failures retried, [fetch] retry_*
 * defaults, the strict validation of "retry", and the retry metric.
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server on 127.0.0.1, through HTTP; /flaky fails the first N hits on
 * its key. Every wait is bounded (harness.h). */
#include <check.h>
#include <stdbool.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* POST /v1/fetch {"url": the upstream's path, "retry": retry, ...more}. */
static void fetch_retry(const char *path, const char *retry_json, const char *more_json,
			struct http_resp *r)
{
	char *url = up_url(&up, path);
	json_t *obj = json_pack("{s:s}", "url", url);

	if (retry_json != NULL)
		json_object_set_new(obj, "retry", json_loads(retry_json, JSON_DECODE_ANY, NULL));
	if (more_json != NULL) {
		json_t *more = json_loads(more_json, 0, NULL);

		json_object_update(obj, more);
		json_decref(more);
	}
	fetch(&daemon_, obj, r);
	free(url);
}

/* The value of the metrics line that starts with prefix, or -1. */
static long metric(const char *prefix)
{
	struct http_resp r;
	long v = -1;

	get_ok(daemon_.port, "/metrics", &r);
	for (const char *l = r.body; l != NULL && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, prefix, strlen(prefix)) == 0)
			v = strtol(l + strlen(prefix), NULL, 10);
	http_resp_free(&r);
	return v;
}

START_TEST(test_retry_503_then_200_records_every_attempt)
{
	struct http_resp r;

	fetch_retry("/flaky?key=a&fail=2&status=503", "{\"attempts\":3,\"backoff\":0.05}", NULL,
		    &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_int(&r, "json.hits", 3);
	ck_assert_msg(json_array_size(json_path(r.json, "attempts")) == 3, "attempts: %s",
		      describe(json_path(r.json, "attempts")));
	expect_int(&r, "attempts.0.outcome", 503);

	expect_int(&r, "attempts.1.outcome", 503);
	expect_int(&r, "attempts.2.outcome", 200);
	ck_assert(json_is_integer(json_path(r.json, "attempts.2.duration_ms")));
	ck_assert_int_ge(json_integer_value(json_path(r.json, "attempts.1.start_ms")),
			 json_integer_value(json_path(r.json, "attempts.0.start_ms")));
	ck_assert_int_ge(json_integer_value(json_path(r.json, "attempts.2.start_ms")),
			 json_integer_value(json_path(r.json, "attempts.1.start_ms")));
	expect_absent(&r, "retry_cut_short");
	http_resp_free(&r);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"503\"} "), 2);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"connect\"} "), 0);
}
END_TEST

START_TEST(test_retries_exhausted_answer_the_last_attempt)
{
	struct http_resp r;

	fetch_retry("/flaky?key=b&fail=5&status=502", "{\"attempts\":2,\"backoff\":0.01}", NULL,
		    &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 502);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 3);
	expect_int(&r, "attempts.2.outcome", 502);
	expect_absent(&r, "retry_cut_short");
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "b", "hits"), 3);
}
END_TEST

START_TEST(test_status_not_listed_is_not_retried)
{
	struct http_resp r;

	fetch_retry("/flaky?key=c&fail=1&status=500", "{\"attempts\":3,\"backoff\":0.01}", NULL,
		    &r);
	expect_int(&r, "status", 500);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 1);
	http_resp_free(&r);
	fetch_retry("/flaky?key=c2&fail=1&status=500",
		    "{\"attempts\":3,\"backoff\":0.01,\"on\":[500]}", NULL, &r);
	expect_int(&r, "status", 200);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 2);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_retry_after_seconds_is_honoured)
{
	struct http_resp r;
	uint64_t t0 = now_ms();

	fetch_retry("/flaky?key=d&fail=1&retry_after=1", "{\"attempts\":1,\"backoff\":0.01}", NULL,
		    &r);
	expect_int(&r, "status", 200);
	ck_assert_uint_ge(now_ms() - t0, 1000);
	ck_assert_int_ge(json_integer_value(json_path(r.json, "attempts.1.start_ms")), 1000);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_retry_after_date_is_honoured)
{
	struct http_resp r;
	uint64_t t0 = now_ms();

	/* a date 2 s ahead, with whole seconds: at least 1 s of wait */
	fetch_retry("/flaky?key=e&fail=1&retry_after_date=2", "{\"attempts\":1,\"backoff\":0.01}",
		    NULL, &r);
	expect_int(&r, "status", 200);
	ck_assert_uint_ge(now_ms() - t0, 1000);
	ck_assert_int_ge(json_integer_value(json_path(r.json, "attempts.1.start_ms")), 1000);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_retry_after_past_deadline_cuts_short)
{
	struct http_resp r;
	uint64_t t0 = now_ms();

	fetch_retry("/flaky?key=f&fail=1&retry_after=30", "{\"attempts\":3,\"backoff\":0.01}",
		    "{\"timeout\":3}", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 503);
	expect_bool(&r, "retry_cut_short", true);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 1);
	ck_assert_uint_lt(now_ms() - t0, 2500); /* answered now, not at the deadline */
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "f", "hits"), 1);
}
END_TEST

START_TEST(test_backoff_past_deadline_cuts_short)
{
	struct http_resp r;
	uint64_t t0 = now_ms();

	/* backoff 2 s doubling to 8 s under a 3 s deadline: the second or third
	 * retry cannot fit */
	fetch_retry("/flaky?key=g&fail=10", "{\"attempts\":5,\"backoff\":2,\"max_backoff\":8}",
		    "{\"timeout\":3}", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 503);
	expect_bool(&r, "retry_cut_short", true);
	ck_assert_int_lt(json_array_size(json_path(r.json, "attempts")), 6);
	ck_assert_uint_lt(now_ms() - t0, 3200);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_post_is_not_retried_unless_asked)
{
	struct http_resp r;

	fetch_retry("/flaky?key=h&fail=1", "{\"attempts\":3,\"backoff\":0.01}",
		    "{\"method\":\"POST\",\"body\":\"x\"}", &r);
	expect_int(&r, "status", 503);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 1);
	expect_absent(&r, "retry_cut_short");
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "h", "hits"), 1);

	fetch_retry("/flaky?key=i&fail=1", "{\"attempts\":3,\"backoff\":0.01}",
		    "{\"method\":\"POST\",\"body\":\"x\",\"retry_non_idempotent\":true}", &r);
	expect_int(&r, "status", 200);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 2);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "i", "hits"), 2);
}
END_TEST

START_TEST(test_connect_failure_is_retried)
{
	char *url = str_printf("http://127.0.0.1:%d/", closed_port());
	struct http_resp r;

	fetch(&daemon_,
	      json_pack("{s:s, s:{s:i, s:f}}", "url", url, "retry", "attempts", 2, "backoff", 0.01),
	      &r);
	expect_error(&r, 502, "connect_failed");
	ck_assert_msg(json_array_size(json_path(r.json, "error.attempts")) == 3, "%s", r.body);
	expect_str(&r, "error.attempts.0.outcome", "connect_failed");
	expect_str(&r, "error.attempts.2.outcome", "connect_failed");
	http_resp_free(&r);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"connect\"} "), 2);
	free(url);
}
END_TEST

START_TEST(test_reset_is_retried_only_when_listed)
{
	struct http_resp r;

	fetch_retry("/reset", "{\"attempts\":2,\"backoff\":0.01}", NULL, &r);
	expect_error(&r, 502, "upstream_error");
	ck_assert_msg(json_array_size(json_path(r.json, "error.attempts")) == 3, "%s", r.body);
	expect_str(&r, "error.attempts.1.outcome", "upstream_error");
	http_resp_free(&r);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"reset\"} "), 2);
	fetch_retry("/reset", "{\"attempts\":2,\"backoff\":0.01,\"on\":[\"connect\"]}", NULL, &r);
	expect_error(&r, 502, "upstream_error");
	ck_assert_int_eq(json_array_size(json_path(r.json, "error.attempts")), 1);
	http_resp_free(&r);
}
END_TEST

/* A client that leaves during a backoff: the retry is dropped (never sent),
 * the timer and the job freed, and fetchd serves on. */
START_TEST(test_client_gone_during_backoff_drops_the_retry)
{
	char *body = str_printf("{\"url\":\"http://127.0.0.1:%d/flaky?key=n&fail=1&retry_after=2\","
				"\"retry\":{\"attempts\":1},\"timeout\":10}",
				up.port);
	char *req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: x\r\nContent-Type: "
			       "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body), body);
	int fd = raw_connect(daemon_.port);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, req, strlen(req)), 0);
	ck_assert(wait_counter(&up, "n", "hits", 1));
	sleep_ms(300); /* the first attempt is answered; the backoff runs */
	close(fd);
	ck_assert(upstream_stat_stays(up.port, "n", "hits", 1, 2500)); /* past the backoff */
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"503\"} "), 1);
	ck_assert_int_eq(metric("fetchd_client_cancelled_total "), 1);
	expect_fetch_ok(&daemon_, &up, "/json");
	free(req);
	free(body);
}
END_TEST

START_TEST(test_without_retry_the_document_is_unchanged)
{
	struct http_resp r;

	fetch_retry("/flaky?key=j&fail=1", NULL, NULL, &r);
	expect_int(&r, "status", 503);
	expect_absent(&r, "attempts");
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "j", "hits"), 1);
}
END_TEST

START_TEST(test_bad_retry_values_are_400_naming_the_field)
{
	static const struct {
		const char *retry, *field;
	} bad[] = {
		{"3", "'retry'"},
		{"{\"attempts\":-1}", "retry.attempts"},
		{"{\"attempts\":11}", "retry.attempts"},
		{"{\"attempts\":1.5}", "retry.attempts"},
		{"{\"backoff\":\"1\"}", "retry.backoff"},
		{"{\"backoff\":-1}", "retry.backoff"},
		{"{\"max_backoff\":true}", "retry.max_backoff"},
		{"{\"on\":\"503\"}", "retry.on"},
		{"{\"on\":[200]}", "retry.on"},
		{"{\"on\":[\"503\"]}", "retry.on"},
		{"{\"on\":[\"dns\"]}", "retry.on"},
		{"{\"tries\":1}", "retry.tries"},
	};
	struct http_resp r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fetch_retry("/echo", bad[i].retry, NULL, &r);
		expect_error(&r, 400, "invalid_request");
		expect_message_has(&r, bad[i].field);
		http_resp_free(&r);
	}
	fetch_retry("/echo", NULL, "{\"retry_non_idempotent\":1}", &r);
	expect_error(&r, 400, "invalid_request");
	expect_message_has(&r, "retry_non_idempotent");
	http_resp_free(&r);
}
END_TEST

/* [fetch] retry_* are the defaults a request may override. */
/* An attempt cut by [fetch] low_speed_time (upstream_timeout) well before
 * the deadline is retried when "on" lists "timeout". */
START_TEST(test_timed_out_attempt_is_retried_when_listed)
{
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = "[fetch]\nlow_speed_limit = 1\n"
							   "low_speed_time = 1s\n",
					   .allow_loopback = true});
	fetch_retry("/flaky?key=t&fail=1&stall_ms=20000",
		    "{\"attempts\":1,\"backoff\":0.01,\"on\":[\"timeout\"]}", "{\"timeout\":15}",
		    &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "attempts.0.outcome", "upstream_timeout");
	expect_int(&r, "attempts.1.outcome", 200);
	http_resp_free(&r);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"timeout\"} "), 1);
	/* not listed: the cut stands */
	fetch_retry("/flaky?key=u&fail=1&stall_ms=20000", "{\"attempts\":1,\"on\":[\"reset\"]}",
		    "{\"timeout\":15}", &r);
	expect_error(&r, 504, "upstream_timeout");
	http_resp_free(&r);
}
END_TEST

START_TEST(test_config_defaults_apply)
{
	struct http_resp r;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){
			     .extra_config = "[fetch]\nretry_attempts = 2\n"
					     "retry_backoff = 10ms\nretry_max_backoff = 20ms\n"
					     "retry_on = connect, 429\n",
			     .allow_loopback = true});
	fetch_retry("/flaky?key=k&fail=1&status=429", NULL, NULL, &r);
	expect_int(&r, "status", 200);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 2);
	http_resp_free(&r);
	/* 503 is not in this retry_on */
	fetch_retry("/flaky?key=l&fail=1&status=503", NULL, NULL, &r);
	expect_int(&r, "status", 503);
	ck_assert_int_eq(json_array_size(json_path(r.json, "attempts")), 1);
	http_resp_free(&r);
	fetch_retry("/flaky?key=m&fail=1&status=503", "{\"attempts\":0}", NULL, &r);
	expect_absent(&r, "attempts");
	http_resp_free(&r);
	ck_assert_int_eq(metric("fetchd_retries_total{reason=\"429\"} "), 1);
}
END_TEST

/* Every fetchd of these tests ends without a sanitizer's report. */
static void teardown_retry(void)
{
	if (daemon_.pid > 0) {
		char *log = fetchd_log(&daemon_);

		ck_assert_msg(strstr(log, "Sanitizer") == NULL &&
				      strstr(log, "runtime error") == NULL,
			      "fetchd logged a sanitizer report:\n%s", log);
		free(log);
	}
	teardown_default();
}

static Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_retry);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_retry_503_then_200_records_every_attempt);
	tcase_add_test(tc, test_retries_exhausted_answer_the_last_attempt);
	tcase_add_test(tc, test_status_not_listed_is_not_retried);
	tcase_add_test(tc, test_retry_after_seconds_is_honoured);
	tcase_add_test(tc, test_retry_after_date_is_honoured);
	tcase_add_test(tc, test_retry_after_past_deadline_cuts_short);
	tcase_add_test(tc, test_backoff_past_deadline_cuts_short);
	tcase_add_test(tc, test_post_is_not_retried_unless_asked);
	tcase_add_test(tc, test_connect_failure_is_retried);
	tcase_add_test(tc, test_reset_is_retried_only_when_listed);
	tcase_add_test(tc, test_client_gone_during_backoff_drops_the_retry);
	tcase_add_test(tc, test_without_retry_the_document_is_unchanged);
	tcase_add_test(tc, test_bad_retry_values_are_400_naming_the_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_retry);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_config_defaults_apply);
	tcase_add_test(tc, test_timed_out_attempt_is_retried_when_listed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(retry_suite(), CK_NORMAL);
}
