/* Shutdown: SIGTERM and SIGINT drain in-flight and queued fetches, stop
 * accepting, and exit 0; past the drain timeout, queued fetches are answered
 * 503 and running ones aborted with error documents.
 *
 * Operations tests (SPEC section 4): the real fetchd binary and its process
 * behaviour, each test with its own fetchd. Only 127.0.0.1. Every wait is a
 * bounded poll; nothing sleeps for a fixed long time. */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120
#define NOT_YET_MS 500 /* how long "does not happen yet" is watched */

/* ---- helpers ---- */

/* Read one HTTP/1.1 response (Content-Length framed) from a raw socket
 * within timeout_ms. Fills status and a malloc'd body; 0 or -1. */
static int raw_read_response(int fd, unsigned timeout_ms, long *status, char **body)
{
	uint64_t end = now_ms() + timeout_ms;
	char buf[16384];
	size_t len = 0;
	const char *hdr_end = NULL;
	long clen = -1;

	*status = -1;
	*body = NULL;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;

		if (hdr_end != NULL && clen >= 0 && len >= (size_t)(hdr_end - buf) + (size_t)clen)
			break;
		if (len >= sizeof(buf) - 1 || now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (hdr_end == NULL && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");

			hdr_end += 4;
			if (cl == NULL || cl > hdr_end)
				return -1;
			clen = strtol(cl + 17, NULL, 10);
			if (sscanf(buf, "HTTP/1.%*d %ld", status) != 1)
				return -1;
		}
	}
	*body = strndup(hdr_end, (size_t)clen);
	return *body != NULL ? 0 : -1;
}

static void raw_get(int fd, const char *path, long *status, char **body)
{
	char *req = str_printf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);

	ck_assert_msg(raw_send(fd, req, strlen(req)) == 0, "send on the keep-alive connection");
	free(req);
	ck_assert_msg(raw_read_response(fd, HARNESS_HTTP_TIMEOUT_S * 1000, status, body) == 0,
		      "no answer to GET %s on the keep-alive connection", path);
}

/* New connections are refused (the listener is closed) within WAIT_MS. */
static bool wait_connect_refused(int port)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		int fd = raw_connect(port);

		if (fd == -1)
			return true;
		close(fd);
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

/* ---- SIGTERM / SIGINT drain ---- */

#define DRAIN_N 20

/* 20 fetches of 1.5 s on 4 threads: 4 in flight and 16 queued when the
 * signal comes. Every one of them is answered in full, new connections
 * are refused from then on, /healthz on an open connection says
 * "draining", and fetchd exits 0 once the last answer is out. */
static void drain_with_signal(int sig)
{
	struct fetchd_opts o = {
		.extra_config = "[server]\nshutdown_timeout = 60s\n[pool]\nthreads = 4\n",
		.allow_loopback = true,
	};
	struct bg_request *bg[DRAIN_N];
	char *body = fetch_body(&up, "/delay?ms=1500");
	uint64_t end;
	long st;
	char *doc, why[128], first_bad[400] = "";
	int keep, unanswered = 0, bad = 0;
	bool exited_0;

	fetchd_start(&daemon_, &o);
	/* a keep-alive connection opened (and used) before the signal */
	keep = raw_connect(daemon_.port);
	ck_assert_msg(keep != -1, "connect to fetchd");
	raw_get(keep, "/healthz", &st, &doc);
	ck_assert_msg(st == 200 && strstr(doc, "ok") != NULL,
		      "/healthz before the signal: want 200 ok, got %ld %s", st, doc);
	free(doc);

	for (int i = 0; i < DRAIN_N; i++)
		bg[i] = bg_post_json(daemon_.port, "/v1/fetch", body);
	/* every one accepted: in flight, queued or already done */
	end = now_ms() + WAIT_MS;
	for (;;) {
		long busy = pool_stat(&daemon_, "busy"), queued = pool_stat(&daemon_, "queued"),
		     done = pool_stat(&daemon_, "completed");

		if (busy >= 0 && queued >= 0 && done >= 0 && busy + queued + done >= DRAIN_N)
			break;
		ck_assert_msg(now_ms() < end,
			      "fetchd did not take all %d fetches (busy %ld, queued %ld, "
			      "completed %ld)",
			      DRAIN_N, busy, queued, done);
		sleep_ms(20);
	}
	ck_assert_msg(pool_stat(&daemon_, "queued") > 0,
		      "no fetch is queued any more: the drain would not cover queued fetches");

	ck_assert_int_eq(fetchd_signal(&daemon_, sig), 0);

	/* nobody new gets in (this also tells that the drain has begun) */
	ck_assert_msg(wait_connect_refused(daemon_.port),
		      "new connections are still accepted %d ms after signal %d", WAIT_MS, sig);
	ck_assert_msg(pool_stat(&daemon_, "threads") == -1,
		      "GET /v1/stats on a new connection was answered while draining");
	/* the connection opened before still gets answers: 503 draining */
	raw_get(keep, "/healthz", &st, &doc);
	ck_assert_msg(st == 503 && strstr(doc, "draining") != NULL,
		      "/healthz while draining: want 503 {\"status\":\"draining\"}, got %ld %s", st,
		      doc);
	free(doc);
	close(keep);

	/* every answer, and the exit, before judging: one report for all */
	for (int i = 0; i < DRAIN_N; i++) {
		struct http_resp r;

		if (bg_join(bg[i], &r) != 0) {
			unanswered++;
			continue;
		}
		if (r.status != 200 || !json_is_integer(json_path(r.json, "status")) ||
		    json_integer_value(json_path(r.json, "status")) != 200) {
			if (bad++ == 0)
				snprintf(first_bad, sizeof(first_bad), "HTTP %ld %.300s", r.status,
					 body_of(&r));
		}
		http_resp_free(&r);
	}
	free(body);
	exited_0 = exit_verdict(&daemon_, why, sizeof(why));
	if (unanswered > 0 || bad > 0 || !exited_0) {
		dump_log(&daemon_);
		ck_abort_msg("drain after signal %d: %d of %d accepted fetches got no answer "
			     "(connection closed without a reply), %d a wrong answer%s%s; %s",
			     sig, unanswered, DRAIN_N, bad, bad ? ", first: " : "", first_bad, why);
	}
	ck_assert_msg(log_count(&daemon_, "drained") >= 1, "the log does not say \"drained\"");
}

START_TEST(test_sigterm_drains_in_flight_and_queued_then_exits_0)
{
	drain_with_signal(SIGTERM);
}
END_TEST

START_TEST(test_sigint_drains_like_sigterm)
{
	drain_with_signal(SIGINT);
}
END_TEST

/* A client that connected just before the signal and sends its request
 * after it (a restart under socket activation) is answered, not dropped;
 * a connection that sends nothing holds the exit only for the drain's
 * grace (1 s). */
START_TEST(test_a_connection_accepted_before_the_drain_is_served)
{
	struct fetchd_opts o = {.extra_config = "[server]\nshutdown_timeout = 60s\n",
				.allow_loopback = true};
	char *body = fetch_body(&up, "/json"), *req, *doc, why[128];
	int fresh, silent;
	uint64_t t0;
	long st;

	fetchd_start(&daemon_, &o);
	fresh = raw_connect(daemon_.port);
	silent = raw_connect(daemon_.port);
	ck_assert(fresh != -1 && silent != -1);
	/* both accepted by fetchd (with this query's own), not only queued
	 * by the kernel */
	ck_assert_msg(fetchd_stat(daemon_.port, "connections.open") >= 3, "open: %ld",
		      fetchd_stat(daemon_.port, "connections.open"));
	t0 = now_ms();
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGTERM), 0);
	ck_assert(wait_connect_refused(daemon_.port));
	req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 strlen(body), body);
	ck_assert_int_eq(raw_send(fresh, req, strlen(req)), 0);
	ck_assert_msg(raw_read_response(fresh, HARNESS_HTTP_TIMEOUT_S * 1000, &st, &doc) == 0,
		      "the request sent after the signal was not answered");
	ck_assert_msg(st == 200 && strstr(doc, "\"status\":200") != NULL, "got %ld %s", st, doc);
	free(doc);
	ck_assert_msg(exit_verdict(&daemon_, why, sizeof(why)), "%s", why);
	/* the silent connection held the exit for the grace, not for long */
	ck_assert_uint_lt(now_ms() - t0, 20000);
	close(fresh);
	close(silent);
	free(req);
	free(body);
}
END_TEST

/* shutdown_timeout = 1s and fetches that never finish: they are waited
 * for (not dropped at once), then each is answered with an error document
 * and fetchd exits 0. */
START_TEST(test_drain_timeout_aborts_with_error_documents_and_exits_0)
{
	struct fetchd_opts o = {
		.extra_config = "[server]\nshutdown_timeout = 1s\n[pool]\nthreads = 4\n",
		.allow_loopback = true,
	};
	struct bg_request *held[4], *queued[2];
	char *body = fetch_body(&up, "/hold?key=x");
	uint64_t t0, end, answered_ms;
	char why[128], first_bad[400] = "";
	int unanswered = 0, bad = 0;
	bool exited_0;

	fetchd_start(&daemon_, &o);
	for (int i = 0; i < 4; i++)
		held[i] = bg_post_json(daemon_.port, "/v1/fetch", body);
	ck_assert_msg(wait_counter(&up, "x", "held", 4), "the upstream did not hold 4 fetches");
	for (int i = 0; i < 2; i++)
		queued[i] = bg_post_json(daemon_.port, "/v1/fetch", body);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "queued", 2), "2 fetches were not queued");

	t0 = now_ms();
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGTERM), 0);
	ck_assert_msg(wait_connect_refused(daemon_.port),
		      "new connections are still accepted after SIGTERM");
	/* before shutdown_timeout the in-flight fetches are left running */
	end = t0 + NOT_YET_MS;
	while (now_ms() < end) {
		ck_assert_msg(upstream_counter(&up, "x", "held") == 4,
			      "an in-flight fetch was dropped %llu ms after SIGTERM, before "
			      "shutdown_timeout (1 s)",
			      (unsigned long long)(now_ms() - t0));
		sleep_ms(20);
	}

	/* past it: the queued ones never ran and the running ones are aborted,
	 * both 503 shutting_down (not a client's leaving); all answers and the exit are
	 * gathered before judging */
	for (int i = 0; i < 6; i++) {
		bool is_queued = i >= 4;
		struct bg_request *b = is_queued ? queued[i - 4] : held[i];
		struct http_resp r;
		json_t *code;

		if (bg_join(b, &r) != 0) {
			unanswered++;
			continue;
		}
		code = json_path(r.json, "error.code");
		if (is_queued ? r.status != 503 || !json_is_string(code) ||
					strcmp(json_string_value(code), "shutting_down") != 0
			      : r.status != 503 || !json_is_string(code) ||
					strcmp(json_string_value(code), "shutting_down") != 0) {
			if (bad++ == 0)
				snprintf(first_bad, sizeof(first_bad), "%s fetch: HTTP %ld %.300s",
					 is_queued ? "queued" : "in-flight", r.status, body_of(&r));
		}
		http_resp_free(&r);
	}
	answered_ms = now_ms() - t0;
	exited_0 = exit_verdict(&daemon_, why, sizeof(why));
	if (unanswered > 0 || bad > 0 || !exited_0) {
		dump_log(&daemon_);
		ck_abort_msg("drain timeout: %d of 6 fetches (4 in flight, 2 queued) got no answer "
			     "(connection closed without a reply), %d a wrong answer%s%s; %s",
			     unanswered, bad, bad ? ", first: " : "", first_bad, why);
	}
	ck_assert_msg(answered_ms < 15000,
		      "the held fetches were answered %llu ms after SIGTERM (shutdown_timeout 1 s)",
		      (unsigned long long)answered_ms);
	ck_assert_msg(now_ms() - t0 < 20000, "fetchd took %llu ms to exit after SIGTERM",
		      (unsigned long long)(now_ms() - t0));
	/* the upstream connections were really closed */
	ck_assert_msg(wait_counter(&up, "x", "held", 0),
		      "the upstream still holds fetches after the drain timeout");
	ck_assert_msg(log_count(&daemon_, "shutdown_timeout") >= 1,
		      "the log does not mention shutdown_timeout");
	free(body);
}
END_TEST

static Suite *drain_suite(void)
{
	Suite *s = suite_create("drain");
	TCase *tc;

	tc = tcase_create("drain");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_sigterm_drains_in_flight_and_queued_then_exits_0);
	tcase_add_test(tc, test_sigint_drains_like_sigterm);
	tcase_add_test(tc, test_drain_timeout_aborts_with_error_documents_and_exits_0);
	tcase_add_test(tc, test_a_connection_accepted_before_the_drain_is_served);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(drain_suite(), CK_NORMAL);
}
