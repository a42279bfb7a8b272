/* What fetchd reports about itself: /metrics as Prometheus text that
 * promtool accepts, and the access log line (request id, no credentials).
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server, both on 127.0.0.1, through HTTP. Each test starts its own
 * processes (checked fixtures). Nothing sleeps for a fixed long time: waits
 * are bounded polls, and every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- /metrics, the access log ---- */

/* The value of an unlabelled series, or -1 when absent. */
static double series_value(const char *body, const char *name)
{
	char *needle = str_printf("\n%s ", name);
	const char *at = strstr(body, needle);
	double v = at != NULL ? strtod(at + strlen(needle), NULL) : -1;

	free(needle);
	return v;
}

/* fetchd_build_info names the running libraries; the process series hold
 * values a live fetchd can have. */
static void expect_process_series(const char *body)
{
	char *build = str_printf(
		"fetchd_build_info{version=\"%s\",libcurl=\"%s\",libevent=\"%s\"} 1\n",
		PACKAGE_VERSION, curl_version_info(CURLVERSION_NOW)->version, event_get_version());
	double now = (double)time(NULL), start = series_value(body, "process_start_time_seconds");
	double fds = series_value(body, "process_open_fds"),
	       max = series_value(body, "process_max_fds");

	ck_assert_msg(strstr(body, build) != NULL, "no %s in:\n%.3000s", build, body);
	free(build);
	ck_assert_msg(start > now - 300 && start <= now + 1,
		      "process_start_time_seconds %f, now %f", start, now);
	ck_assert_msg(series_value(body, "process_resident_memory_bytes") > 1e6,
		      "process_resident_memory_bytes %f",
		      series_value(body, "process_resident_memory_bytes"));
	ck_assert_msg(series_value(body, "process_cpu_seconds_total") >= 0, "no cpu seconds");
	/* stdio, the listener, the eventfd, the epoll fd at least */
	ck_assert_msg(fds >= 5 && fds < max, "process_open_fds %f, process_max_fds %f", fds, max);
}

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
	ck_assert_msg(strstr(r.body, "fetchd_fetch_duration_seconds_count{pool=\"default\"} 1\n") !=
			      NULL,
		      "fetch duration count; body: %.2000s", r.body);
	ck_assert_msg(strstr(r.body,
			     "fetchd_queue_wait_seconds_bucket{pool=\"default\",le=\"+Inf\"} "
			     "1\n") != NULL,
		      "queue wait per pool; body: %.2000s", r.body);
	expect_process_series(r.body);
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

/* All of a command's output (malloc'd); its exit status in *status. */
static char *run_output(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	char buf[4096];
	size_t n;

	ck_assert(p != NULL && out != NULL);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, out);
	*status = pclose(p);
	fclose(out);
	return text;
}

/* fetchd --version names the libraries it runs with; fetchd -T prints the
 * effective configuration: the file's values, the flags' over them, and
 * the defaults of the keys left unset. */
START_TEST(test_version_and_effective_configuration)
{
	const char *bin = getenv("FETCHD_BIN") ? getenv("FETCHD_BIN") : "./fetchd";
	char conf[] = "/tmp/fetchd-dump-XXXXXX";
	int fd = mkstemp(conf), status;
	const char *text = "[server]\nmax_batch = 5\n[pool]\nthreads = 7\n";
	char *cmd, *out, *want;

	cmd = str_printf("%s --version", bin);
	out = run_output(cmd, &status);
	ck_assert_int_eq(status, 0);
	want = str_printf("libcurl %s (", curl_version_info(CURLVERSION_NOW)->version);
	ck_assert_msg(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
	free(want);
	want = str_printf("libevent %s\n", event_get_version());
	ck_assert_msg(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
	ck_assert_msg(strstr(out, "jansson " JANSSON_VERSION "\n") != NULL, "%s", out);
	free(want);
	free(out);
	free(cmd);

	ck_assert(fd >= 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	cmd = str_printf("%s -T -c %s --threads 3 --allow 10.9.0.0/16", bin, conf);
	out = run_output(cmd, &status);
	unlink(conf);
	ck_assert_msg(status == 0, "fetchd -T exited %d:\n%s", status, out);
	static const char *const lines[] = {
		"\nmax_batch = 5\n",	      /* the file */
		"[pool]\nthreads = 3\n",      /* the flag over the file */
		"\nallow = 10.9.0.0/16\n",    /* a flag alone */
		"\nmax_connections = 4096\n", /* a default */
		"\nlevel = info\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(strstr(out, lines[i]) != NULL, "no '%s' in:\n%s", lines[i], out);
	free(out);
	free(cmd);
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
	tcase_add_test(tc, test_version_and_effective_configuration);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(metrics_suite(), CK_NORMAL);
}
