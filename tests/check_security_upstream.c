/* A misbehaving upstream: endless or oversized bodies (502
 * response_too_large, or truncated under max_bytes), slow, hanging, silent,
 * dripping and broken upstreams (504 by the deadline, or 502), a toy upstream
 * of our own in this process for the byte-level misbehaviour, and the
 * low-speed limit (also set by reload on a warm worker).
 *
 * Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]). No case
 * sends traffic anywhere but 127.0.0.0/8 and ::1.
 *
 * A shared fetchd (testlib.h: guard_d, main_d, big_d) is started once per
 * TCase, so the cases of a TCase hit the same daemon. Waits are bounded
 * polls; nothing sleeps for a fixed long time. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

#define QUICK_MS 9000 /* a 1 s deadline must be answered well before this */

/* ---- a hostile upstream of our own (127.0.0.1, in this process) ---- */

enum toy_mode {
	TOY_SILENT,	     /* reads the request, never answers */
	TOY_DRIP_BODY,	     /* a 200 promising 100000 bytes, then one byte every 50 ms */
	TOY_DRIP_HEADERS,    /* a status line, then a header value a byte every 50 ms */
	TOY_ENDLESS_HEADERS, /* header lines without end, as fast as they are read */
};

struct toy {
	enum toy_mode mode;
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	atomic_int accepted;
	atomic_bool peer_closed; /* the client closed a connection being served */
};

/* Has the peer closed fd? Waits up to ms for something to read. */
static bool toy_peer_gone(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return false;
	if (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP))
		return true;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static bool toy_send(int fd, const char *s, size_t len)
{
	ssize_t n = send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

static void toy_serve(struct toy *t, int fd, uint64_t end)
{
	static const char body_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 100000\r\n\r\n";
	static const char hdr_head[] = "HTTP/1.1 200 OK\r\nX-Drip: ";
	static const char status_line[] = "HTTP/1.1 200 OK\r\n";
	char line[1000];
	int interval = 50;

	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	if (t->mode == TOY_DRIP_BODY)
		toy_send(fd, body_head, sizeof(body_head) - 1);
	else if (t->mode == TOY_DRIP_HEADERS)
		toy_send(fd, hdr_head, sizeof(hdr_head) - 1);
	else if (t->mode == TOY_ENDLESS_HEADERS) {
		toy_send(fd, status_line, sizeof(status_line) - 1);
		interval = 1;
	}
	while (!atomic_load(&t->stop) && now_ms() < end) {
		bool ok = true;

		if (toy_peer_gone(fd, interval)) {
			atomic_store(&t->peer_closed, true);
			return;
		}
		switch (t->mode) {
		case TOY_SILENT: break;
		case TOY_DRIP_BODY:
		case TOY_DRIP_HEADERS: ok = toy_send(fd, "a", 1); break;
		case TOY_ENDLESS_HEADERS:
			for (int i = 0; i < 8 && ok; i++)
				ok = toy_send(fd, line, sizeof(line));
			break;
		}
		if (!ok) {
			atomic_store(&t->peer_closed, true);
			return;
		}
	}
}

static void *toy_main(void *arg)
{
	struct toy *t = arg;
	uint64_t end = now_ms() + 60000;

	while (!atomic_load(&t->stop) && now_ms() < end) {
		struct pollfd pfd = {.fd = t->lfd, .events = POLLIN};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		atomic_fetch_add(&t->accepted, 1);
		toy_serve(t, fd, end);
		close(fd);
	}
	return NULL;
}

static void toy_start(struct toy *t, enum toy_mode mode)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(t, 0, sizeof(*t));
	t->mode = mode;
	atomic_init(&t->stop, false);
	atomic_init(&t->accepted, 0);
	atomic_init(&t->peer_closed, false);
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(t->lfd != -1, "socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(t->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind: %s",
		      strerror(errno));
	ck_assert_msg(listen(t->lfd, 16) == 0, "listen: %s", strerror(errno));
	ck_assert_msg(getsockname(t->lfd, (struct sockaddr *)&sin, &len) == 0, "getsockname: %s",
		      strerror(errno));
	t->port = ntohs(sin.sin_port);
	ck_assert_msg(pthread_create(&t->thread, NULL, toy_main, t) == 0, "pthread_create failed");
}

static void toy_stop(struct toy *t)
{
	atomic_store(&t->stop, true);
	pthread_join(t->thread, NULL);
	close(t->lfd);
}

static bool toy_wait_peer_closed(struct toy *t)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!atomic_load(&t->peer_closed)) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* ---- upstream misbehaviour ---- */

START_TEST(test_endless_body_is_502_response_too_large)
{
	char *url = up_url(&up, "/endless");
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "response_too_large");
	expect_curl_code(&r);
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "stopping at 1M took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_endless_body_with_max_bytes_is_truncated_200)
{
	char *url = up_url(&up, "/endless");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "max_bytes", 1000), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_bool(&r, "truncated", true);
	expect_int(&r, "size", 1000);
	ck_assert_msg(json_string_length(json_path(r.json, "text")) == 1000, "text: %.200s",
		      body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_declared_length_over_limit_is_502_response_too_large)
{
	char *url = up_url(&up, "/bytes?n=2097152");
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "response_too_large");
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_slow_upstream_is_504_at_the_deadline)
{
	char *url = up_url(&up, "/delay?ms=10000");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "timeout", 1), &r);
	expect_error(&r, 504, "upstream_timeout");
	expect_curl_code(&r);
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "a 1 s deadline took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_hanging_upstream_is_504_and_the_connection_is_dropped)
{
	char *url = up_url(&up, "/hold?key=hang");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "timeout", 1), &r);
	expect_error(&r, 504, "upstream_timeout");
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "a 1 s deadline took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "hang", "hits"), 1);
	ck_assert_msg(wait_counter(&up, "hang", "held", 0),
		      "fetchd kept the timed-out connection open (held %ld)",
		      upstream_counter(&up, "hang", "held"));
	free(url);
}
END_TEST

static const char *const broken_paths[] = {"/reset", "/reset-mid", "/lie?n=100000", "/garbage"};

START_TEST(test_broken_upstream_is_502_upstream_error)
{
	char *url = up_url(&up, broken_paths[_i]);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	ck_assert_msg(r.status != 200, "%s gave a 200: %.1000s", broken_paths[_i], body_of(&r));
	expect_error(&r, 502, "upstream_error");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* A hostile upstream of our own: toy mode, a 1 s deadline -> want. */
static void check_toy_upstream(enum toy_mode mode, double timeout, long http, const char *code)
{
	struct toy t;
	char *url;
	struct http_resp r;

	toy_start(&t, mode);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&main_d, json_pack("{s:s, s:f}", "url", url, "timeout", timeout), &r);
	expect_error(&r, http, code);
	ck_assert_msg(r.elapsed_ms < (timeout + 8) * 1000, "answered after %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_int_eq(atomic_load(&t.accepted), 1);
	ck_assert_msg(toy_wait_peer_closed(&t),
		      "fetchd kept the connection to the hostile upstream open");
	toy_stop(&t);
	free(url);
}

START_TEST(test_dripping_body_is_504_at_the_deadline)
{
	check_toy_upstream(TOY_DRIP_BODY, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_dripping_headers_are_504_at_the_deadline)
{
	check_toy_upstream(TOY_DRIP_HEADERS, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_silent_upstream_is_504_at_the_deadline)
{
	check_toy_upstream(TOY_SILENT, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_endless_headers_are_502_upstream_error)
{
	check_toy_upstream(TOY_ENDLESS_HEADERS, 20.0, 502, "upstream_error");
}
END_TEST

/* An upstream that drips its body is cut off by the low-speed limit long
 * before the fetch's own deadline, and the error says why. */
START_TEST(test_dripping_body_is_cut_off_by_low_speed_limit)
{
	struct toy t;
	char *url;
	struct http_resp r;
	json_t *msg;

	fetchd_start(&own_d,
		     &(struct fetchd_opts){
			     .extra_config = "[fetch]\nlow_speed_limit = 1K\nlow_speed_time = 1s\n",
			     .allow_loopback = true});
	toy_start(&t, TOY_DRIP_BODY);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&own_d, json_pack("{s:s, s:f}", "url", url, "timeout", 25.0), &r);
	expect_error(&r, 504, "upstream_timeout");
	msg = json_path(r.json, "error.message");
	ck_assert_msg(json_is_string(msg) && strstr(json_string_value(msg), "low_speed_limit"),
		      "the error does not name the low-speed limit: %.500s", body_of(&r));
	ck_assert_msg(r.elapsed_ms < 10000, "cut off after %.0f ms; the limit is 1 s",
		      r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_msg(toy_wait_peer_closed(&t),
		      "fetchd kept the connection to the dripping upstream open");
	toy_stop(&t);
	free(url);
	/* a fast upstream is unaffected */
	url = up_url(&up, "/text?n=5000");
	fetch_url(&own_d, url, &r);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* The low-speed limit comes from the running configuration: a worker
 * whose handle already served plain fetches picks up a reloaded one. */
START_TEST(test_low_speed_limit_set_by_reload_reaches_a_warm_worker)
{
	struct fetchd_opts o = {.extra_config =
					"[pool]\nthreads = 1\n[fetch]\nlow_speed_limit = 0\n",
				.allow_loopback = true,
				.keep_config = true};
	struct toy t;
	char *url = up_url(&up, "/text?n=100");
	struct http_resp r;
	uint64_t until;

	fetchd_start(&own_d, &o);
	for (int i = 0; i < 3; i++) {
		fetch_url(&own_d, url, &r);
		ck_assert_int_eq(r.status, 200);
		http_resp_free(&r);
	}
	free(url);
	fetchd_write_config(&own_d, "[pool]\nthreads = 1\n[fetch]\nlow_speed_limit = 1K\n"
				    "low_speed_time = 1s\n");
	ck_assert_int_eq(fetchd_signal(&own_d, SIGHUP), 0);
	until = now_ms() + 10000;
	while (!fetchd_log_has_line(&own_d, "reloaded", "threads") && now_ms() < until)
		sleep_ms(20);
	ck_assert_msg(fetchd_log_has_line(&own_d, "reloaded", "threads"), "no reload logged");
	toy_start(&t, TOY_DRIP_BODY);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&own_d, json_pack("{s:s, s:f}", "url", url, "timeout", 25.0), &r);
	expect_error(&r, 504, "upstream_timeout");
	ck_assert_msg(r.elapsed_ms < 10000,
		      "cut off after %.0f ms: the reloaded 1 s low-speed limit was not used",
		      r.elapsed_ms);
	http_resp_free(&r);
	toy_stop(&t);
	free(url);
}
END_TEST

static Suite *security_upstream_suite(void)
{
	Suite *s = suite_create("security_upstream");
	TCase *tc;

	tc = tcase_create("main");
	tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
	tcase_add_checked_fixture(tc, main_settle, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_endless_body_is_502_response_too_large);
	tcase_add_test(tc, test_endless_body_with_max_bytes_is_truncated_200);
	tcase_add_test(tc, test_declared_length_over_limit_is_502_response_too_large);
	tcase_add_test(tc, test_slow_upstream_is_504_at_the_deadline);
	tcase_add_test(tc, test_hanging_upstream_is_504_and_the_connection_is_dropped);
	tcase_add_loop_test(tc, test_broken_upstream_is_502_upstream_error, 0,
			    (int)(sizeof(broken_paths) / sizeof(broken_paths[0])));
	tcase_add_test(tc, test_dripping_body_is_504_at_the_deadline);
	tcase_add_test(tc, test_dripping_headers_are_504_at_the_deadline);
	tcase_add_test(tc, test_silent_upstream_is_504_at_the_deadline);
	tcase_add_test(tc, test_endless_headers_are_502_upstream_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, own_setup, own_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_dripping_body_is_cut_off_by_low_speed_limit);
	tcase_add_test(tc, test_low_speed_limit_set_by_reload_reaches_a_warm_worker);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(security_upstream_suite(), CK_ENV);
}
