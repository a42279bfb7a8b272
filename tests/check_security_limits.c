/* Limits on what clients send: request bodies and headers over the caps
 * (413, JSON; chunked too), deep nesting, 100k headers and URLs within
 * max_request_bytes; clients that leave (a queued fetch is never sent, a
 * running one is aborted); a queue flood admitted exactly to capacity; and
 * the shared daemons still serving and idle afterwards.
 *
 * Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]). No case
 * sends traffic anywhere but 127.0.0.0/8 and ::1.
 *
 * A shared fetchd (testlib.h: guard_d, main_d, big_d) is started once per
 * TCase, so the cases of a TCase hit the same daemon. Waits are bounded
 * polls; nothing sleeps for a fixed long time. */
#include <check.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- raw client ---- */

/* POST /v1/fetch for url on a fresh connection; the open fd. */
static int raw_fetch(int port, const char *url)
{
	char *body = str_printf("{\"url\":\"%s\"}", url);
	char *req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body), body);
	int fd = raw_connect(port);

	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_msg(raw_send(fd, req, strlen(req)) == 0, "cannot send the raw request");
	free(req);
	free(body);
	return fd;
}

/* Read from fd until an HTTP status line has arrived: its code, or -1 on
 * EOF, error or timeout. */
static int raw_read_status(int fd, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	char buf[512];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;
		int code;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n") != NULL)
			return sscanf(buf, "HTTP/1.%*d %d", &code) == 1 ? code : -1;
	}
	return -1;
}

/* ---- oversized input ---- */

/* A request body of 200 KB, over max_request_bytes = 64K. libevent answers
 * 413 itself (in HTML) before fetchd sees it. */
START_TEST(test_request_body_over_max_request_bytes_is_413)
{
	static const char prefix[] = "{\"url\":\"http://127.0.0.1/\",\"body\":\"";
	size_t len = 200 * 1024;
	char *body = malloc(len);
	char *head;
	int fd, status;

	ck_assert_msg(body != NULL, "out of memory");
	memcpy(body, prefix, strlen(prefix));
	memset(body + strlen(prefix), 'a', len - strlen(prefix) - 2);
	memcpy(body + len - 2, "\"}", 2);
	head = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			  len);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, head, strlen(head)), 0);
	/* fetchd may stop reading and close early: a failed send is fine */
	(void)raw_send(fd, body, len);
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 413, "200 KB body: want 413, got %d", status);
	close(fd);
	free(head);
	free(body);
	expect_serving(&main_d, &up);
}
END_TEST

START_TEST(test_chunked_request_body_over_max_request_bytes_is_413)
{
	static const char head[] = "POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	char chunk[8192 + 16];
	int fd, status, n;

	n = snprintf(chunk, sizeof(chunk), "%x\r\n", 8192);
	memset(chunk + n, 'a', 8192);
	memcpy(chunk + n + 8192, "\r\n", 2);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, head, sizeof(head) - 1), 0);
	for (int i = 0; i < 25; i++)
		if (raw_send(fd, chunk, (size_t)n + 8192 + 2) != 0)
			break;
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 413, "200 KB chunked body: want 413, got %d", status);
	close(fd);
	expect_serving(&main_d, &up);
}
END_TEST

/* Request headers beyond evhttp's header limit (64 KB): libevent answers
 * 400 itself (in HTML), and fetchd keeps serving. */
START_TEST(test_oversized_request_headers_are_rejected)
{
	size_t pad = 100 * 1024;
	char *value = malloc(pad + 1);
	char *req;
	int fd, status;

	ck_assert_msg(value != NULL, "out of memory");
	memset(value, 'a', pad);
	value[pad] = '\0';
	req = str_printf("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n", value);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	(void)raw_send(fd, req, strlen(req));
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 400, "100 KB request header: want 400, got %d", status);
	close(fd);
	free(req);
	free(value);
	expect_serving(&main_d, &up);
}
END_TEST

/* ---- client disconnects ---- */

START_TEST(test_client_gone_while_queued_is_never_sent)
{
	struct bg_request *bg[2];
	char *url = up_url(&up, "/count?key=dcq");
	long cancelled;
	int fd;

	hold_workers(&main_d, &up, bg, 2, "dcq-hold");
	cancelled = pool_stat(&main_d, "cancelled");
	ck_assert_msg(cancelled >= 0, "/v1/stats has no pools.default.cancelled");
	fd = raw_fetch(main_d.port, url);
	ck_assert_msg(wait_pool_stat(&main_d, "queued", 1), "the raw fetch was not queued");
	close(fd);
	ck_assert_msg(wait_pool_stat(&main_d, "cancelled", cancelled + 1),
		      "/v1/stats never counted the cancelled fetch (cancelled %ld, was %ld)",
		      pool_stat(&main_d, "cancelled"), cancelled);
	ck_assert_int_eq(pool_stat(&main_d, "queued"), 0);
	release_held(&up, "dcq-hold", 0);
	join_held(bg, 2);
	ck_assert_msg(counter_stays(&up, "dcq", "hits", 0),
		      "the fetch of a client that went away was sent upstream");
	free(url);
}
END_TEST

START_TEST(test_client_gone_while_running_aborts_the_fetch)
{
	char *url = up_url(&up, "/hold?key=dcr");
	long cancelled, failed;
	int fd;

	cancelled = pool_stat(&main_d, "cancelled");
	failed = pool_stat(&main_d, "failed");
	fd = raw_fetch(main_d.port, url);
	ck_assert_msg(wait_counter(&up, "dcr", "held", 1),
		      "the raw fetch did not reach the upstream");
	ck_assert_msg(pool_stat(&main_d, "busy") >= 1, "no busy worker while the fetch runs");
	close(fd);
	/* the worker aborts the transfer: the upstream sees its client go */
	ck_assert_msg(wait_counter(&up, "dcr", "held", 0),
		      "fetchd kept fetching for a client that went away (held %ld)",
		      upstream_counter(&up, "dcr", "held"));
	ck_assert_msg(wait_idle(&main_d), "the aborted fetch left busy %ld, queued %ld",
		      pool_stat(&main_d, "busy"), pool_stat(&main_d, "queued"));
	ck_assert_int_eq(upstream_counter(&up, "dcr", "hits"), 1);
	ck_assert_msg(pool_stat(&main_d, "cancelled") >= cancelled + 1,
		      "/v1/stats cancelled does not count the aborted running fetch "
		      "(cancelled %ld -> %ld, failed %ld -> %ld)",
		      cancelled, pool_stat(&main_d, "cancelled"), failed,
		      pool_stat(&main_d, "failed"));
	free(url);
}
END_TEST

/* ---- queue flood ---- */

#define FLOOD 30
#define FLOOD_CAPACITY 6 /* threads 2 + queue_limit 4 */

START_TEST(test_queue_flood_admits_exactly_capacity)
{
	struct bg_request *bg[FLOOD];
	char *url = up_url(&up, "/hold?key=flood");
	long rejected = pool_stat(&main_d, "rejected");
	int ok = 0, overloaded = 0;
	uint64_t end;

	ck_assert_msg(rejected >= 0, "/v1/stats has no pools.default.rejected");
	for (int i = 0; i < FLOOD; i++)
		bg[i] = bg_post_obj(main_d.port, "/v1/fetch",
				    json_pack("{s:s, s:i}", "url", url, "timeout", 60));
	/* every one of the 30 is admitted or refused before anything moves */
	ck_assert_msg(wait_pool_stat(&main_d, "rejected", rejected + FLOOD - FLOOD_CAPACITY),
		      "rejected %ld, want %ld", pool_stat(&main_d, "rejected"),
		      rejected + FLOOD - FLOOD_CAPACITY);
	ck_assert_msg(wait_counter(&up, "flood", "held", 2), "held %ld, want 2",
		      upstream_counter(&up, "flood", "held"));
	ck_assert_int_eq(pool_stat(&main_d, "busy"), 2);
	ck_assert_int_eq(pool_stat(&main_d, "queued"), 4);
	ck_assert_int_eq(pool_stat(&main_d, "rejected"), rejected + FLOOD - FLOOD_CAPACITY);
	ck_assert_msg(counter_stays(&up, "flood", "hits", 2), "the queue leaked to the upstream");
	/* the queued ones are held in turn: release until all six went */
	end = now_ms() + WAIT_MS;
	while (upstream_counter(&up, "flood", "hits") < FLOOD_CAPACITY ||
	       upstream_counter(&up, "flood", "held") > 0) {
		ck_assert_msg(now_ms() < end, "the flood did not drain (hits %ld, held %ld)",
			      upstream_counter(&up, "flood", "hits"),
			      upstream_counter(&up, "flood", "held"));
		release_held(&up, "flood", 0);
		sleep_ms(20);
	}
	for (int i = 0; i < FLOOD; i++) {
		struct http_resp r;

		ck_assert_msg(bg_join(bg[i], &r) == 0, "flood fetch %d failed", i);
		if (r.status == 200) {
			expect_int(&r, "status", 200);
			ok++;
		} else {
			char *retry = http_resp_header(&r, "Retry-After");
			char *e = NULL;

			expect_error(&r, 503, "overloaded");
			ck_assert_msg(retry != NULL && strtol(retry, &e, 10) >= 1 && *e == '\0',
				      "503 overloaded needs Retry-After in seconds, got %s",
				      retry ? retry : "(none)");
			free(retry);
			overloaded++;
		}
		http_resp_free(&r);
	}
	ck_assert_int_eq(ok, FLOOD_CAPACITY);
	ck_assert_int_eq(overloaded, FLOOD - FLOOD_CAPACITY);
	ck_assert_int_eq(upstream_counter(&up, "flood", "hits"), FLOOD_CAPACITY);
	free(url);
}
END_TEST

START_TEST(test_main_daemon_still_serves_and_is_idle)
{
	expect_clean_daemon(&main_d);
}
END_TEST

/* ---- large input within max_request_bytes (default 1M) ---- */

/* {"url":..., "json": open^depth close^depth} */
static char *nested_request(const char *url, int depth, const char *open, const char *close_)
{
	size_t ol = strlen(open), cl = strlen(close_);
	char *head = str_printf("{\"url\":\"%s\",\"json\":", url);
	size_t hl = strlen(head), len = hl + (size_t)depth * (ol + cl) + 2;
	char *s = malloc(len), *p;

	ck_assert_msg(s != NULL, "out of memory");
	memcpy(s, head, hl);
	p = s + hl;
	for (int i = 0; i < depth; i++, p += ol)
		memcpy(p, open, ol);
	for (int i = 0; i < depth; i++, p += cl)
		memcpy(p, close_, cl);
	*p++ = '}';
	*p = '\0';
	free(head);
	return s;
}

static void check_nested(const char *open, const char *close_)
{
	char *url = up_url(&up, "/count?key=nested");
	char *body = nested_request(url, 100000, open, close_);
	struct http_resp r;
	const char *code;

	fetch_text(&big_d, body, &r);
	expect_status(&r, 400);
	code = json_string_value(json_path(r.json, "error.code"));
	ck_assert_msg(code != NULL && (strcmp(code, "invalid_json") == 0 ||
				       strcmp(code, "invalid_request") == 0),
		      "want invalid_json or invalid_request: %.1000s", body_of(&r));
	http_resp_free(&r);
	expect_no_hits("nested");
	expect_serving(&big_d, &up);
	free(body);
	free(url);
}

START_TEST(test_json_nested_100000_arrays_is_400)
{
	check_nested("[", "]");
}
END_TEST

START_TEST(test_json_nested_100000_objects_is_400)
{
	check_nested("{\"a\":", "}");
}
END_TEST

START_TEST(test_header_value_of_100k_is_400)
{
	size_t n = 100 * 1024;
	char *url = up_url(&up, "/count?key=bighdr");
	char *value = malloc(n + 1);
	struct http_resp r;

	ck_assert_msg(value != NULL, "out of memory");
	memset(value, 'a', n);
	value[n] = '\0';
	fetch(&big_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-Big", value), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("bighdr");
	free(value);
	free(url);
}
END_TEST

START_TEST(test_url_of_100k_is_400)
{
	size_t n = 100 * 1024;
	char *pad = malloc(n + 1);
	char *url;
	struct http_resp r;

	ck_assert_msg(pad != NULL, "out of memory");
	memset(pad, 'a', n);
	pad[n] = '\0';
	url = str_printf("http://127.0.0.1:%d/count?key=bigurl&pad=%s", up.port, pad);
	fetch_url(&big_d, url, &r);
	ck_assert_msg(r.status == 400,
		      "a 100 KB URL: want 400, got %ld (upstream hits %ld); "
		      "body: %.300s",
		      r.status, upstream_counter(&up, "bigurl", "hits"), body_of(&r));
	expect_str(&r, "error.code", "invalid_request");
	http_resp_free(&r);
	expect_no_hits("bigurl");
	free(url);
	free(pad);
}
END_TEST

START_TEST(test_thousand_headers_is_400)
{
	char *url = up_url(&up, "/count?key=manyhdr");
	json_t *list = json_array(), *obj;
	struct http_resp r;

	for (int i = 0; i < 1000; i++)
		json_array_append_new(list, json_pack("[s,s]", "X-Many", "v"));
	obj = json_pack("{s:s, s:o}", "url", url, "headers", list);
	fetch(&big_d, obj, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("manyhdr");
	free(url);
}
END_TEST

START_TEST(test_big_daemon_still_serves_and_is_idle)
{
	expect_clean_daemon(&big_d);
}
END_TEST

static Suite *security_limits_suite(void)
{
	Suite *s = suite_create("security_limits");
	TCase *tc;

	tc = tcase_create("main");
	tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
	tcase_add_checked_fixture(tc, main_settle, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_request_body_over_max_request_bytes_is_413);
	tcase_add_test(tc, test_chunked_request_body_over_max_request_bytes_is_413);
	tcase_add_test(tc, test_oversized_request_headers_are_rejected);
	tcase_add_test(tc, test_client_gone_while_queued_is_never_sent);
	tcase_add_test(tc, test_client_gone_while_running_aborts_the_fetch);
	tcase_add_test(tc, test_queue_flood_admits_exactly_capacity);
	tcase_add_test(tc, test_main_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);

	tc = tcase_create("large_input");
	tcase_add_unchecked_fixture(tc, big_setup, big_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_json_nested_100000_arrays_is_400);
	tcase_add_test(tc, test_json_nested_100000_objects_is_400);
	tcase_add_test(tc, test_header_value_of_100k_is_400);
	tcase_add_test(tc, test_url_of_100k_is_400);
	tcase_add_test(tc, test_thousand_headers_is_400);
	tcase_add_test(tc, test_big_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(security_limits_suite(), CK_ENV);
}
