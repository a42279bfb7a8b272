/* fetchd never fetches itself: loopback denied without --allow, its own
 * listen port denied even with it, and Via (RFC 9110 section 7.6.3): sent
 * upstream, appended to, and a request naming this fetchd (or a loop through
 * two) answered 508 loop_detected.
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server, both on 127.0.0.1, through HTTP. Each test starts its own
 * processes (checked fixtures). Nothing sleeps for a fixed long time: waits
 * are bounded polls, and every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <ctype.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- destination guard ---- */

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

/* ---- loops: Via (RFC 9110 section 7.6.3) ---- */

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
	ck_assert_int_eq(raw_post(daemon_.port, "/v1/fetch", "Via: 1.1 fetchd-0123456789abcdef\r\n",
				  one, &doc),
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

static Suite *loops_suite(void)
{
	Suite *s = suite_create("loops");
	TCase *tc;

	tc = tcase_create("default_config");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_own_listen_port_denied_even_with_allow);
	tcase_add_test(tc, test_upstream_request_carries_via_naming_this_fetchd);
	tcase_add_test(tc, test_client_via_is_passed_on_and_appended_to);
	tcase_add_test(tc, test_request_whose_via_names_this_fetchd_is_508_loop_detected);
	tcase_add_test(tc, test_fetch_loop_through_two_fetchds_is_508_loop_detected);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_loopback_denied_without_allow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(loops_suite(), CK_NORMAL);
}
