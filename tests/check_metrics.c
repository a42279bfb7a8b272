/* What fetchd reports about itself: /metrics as Prometheus text that
 * promtool accepts, and the access log line (request id, no credentials).
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

/* ---- /metrics, the access log ---- */

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

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_metrics_are_valid_prometheus_text);
	tcase_add_test(tc, test_access_log_has_request_id_and_no_credentials);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(metrics_suite(), CK_NORMAL);
}
