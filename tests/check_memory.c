/* Integration tests of fetchd's memory budget ([server] max_pending_bytes)
 * and of the json field's bounds, against the real binary: clients that
 * read slowly while large documents pile up, a batch of them, and a JSON
 * body that costs hundreds of megabytes as a tree. fetchd's peak RSS
 * (VmHWM) must stay within the budget plus a fixed allowance, every client
 * gets exactly one answer, and the budget is empty again afterwards. Only
 * 127.0.0.1. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 180
#define BUDGET_MB 16
/* What fetchd takes beyond the budget at the peak: its threads' stacks in
 * use, curl's and OpenSSL's state, the allocator's slack and, under
 * AddressSanitizer, its shadow and redzones. Measured about 10 MB over a
 * 12 MB start (plain) and 25 MB (ASan); before the budget, the slow-reader
 * test alone reached 200 MB. */
#define ALLOWANCE_MB 48
#define CLIENTS 32
#define BODY_BYTES (1024 * 1024)

/* A kB field of /proc/PID/status ("VmHWM:", "VmRSS:"), in bytes. */
static long long proc_status_bytes(pid_t pid, const char *field)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0)
			kb = atoll(line + strlen(field));
	fclose(f);
	ck_assert_msg(kb > 0, "no %s in %s", field, path);
	return kb * 1024;
}

/* ASan keeps freed memory in a quarantine (256 MB by default), which would
 * count in fetchd's RSS whatever fetchd frees: keep it small for fetchd. */
static const char *const *small_quarantine_env(void)
{
	static char asan[512];
	static const char *env[2];
	const char *inherited = getenv("ASAN_OPTIONS");

	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%squarantine_size_mb=1",
		 inherited ? inherited : "", inherited && *inherited ? ":" : "");
	env[0] = asan;
	env[1] = NULL;
	return env;
}

static void start_budgeted(struct fetchd *f)
{
	struct fetchd_opts o = {
		.extra_config = "max_pending_bytes = 16M\n"
				"[pool]\nthreads = 4\nqueue_limit = 28\n",
		.allow_loopback = true,
		.env = small_quarantine_env(),
	};

	fetchd_start(f, &o);
}

/* A client that reads slowly: a receive buffer of a few KB, so fetchd's
 * answer waits in fetchd's memory until the client reads it. */
static int slow_client(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

static void send_post(int fd, const char *path, const char *body)
{
	char *req = str_printf("POST %s HTTP/1.1\r\nHost: fetchd\r\nConnection: close\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       path, strlen(body), body);

	ck_assert_msg(raw_send(fd, req, strlen(req)) == 0, "send: %s", strerror(errno));
	free(req);
}

/* Read the whole answer (fetchd closes: Connection: close) and return its
 * HTTP status; the body in *body when asked (malloc'd). Bounded. */
static int read_answer(int fd, char **body)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	uint64_t end = now_ms() + 60000;
	int status = -1;

	ck_assert_ptr_nonnull(buf);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ck_assert_msg(now_ms() < end, "the answer did not end within 60 s");
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if (len + 65536 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &status);
	if (body != NULL) {
		char *start = strstr(buf, "\r\n\r\n");

		*body = strdup(start ? start + 4 : "");
	}
	free(buf);
	close(fd);
	return status;
}

/* Every fetch of fetchd's default pool has finished: one completed, and
 * then none running or queued for three polls in a row. */
static void wait_pool_idle(const struct fetchd *f)
{
	int idle = 0;

	ck_assert_msg(wait_pool_stat_at_least(f->port, "completed", 1, WAIT_MS),
		      "no fetch completed");
	for (uint64_t end = now_ms() + WAIT_MS; idle < 3; sleep_ms(100)) {
		if (pool_stat_at(f->port, "busy") == 0 && pool_stat_at(f->port, "queued") == 0)
			idle++;
		else
			idle = 0;
		ck_assert_msg(now_ms() < end, "the pool is still busy after %d ms", WAIT_MS);
	}
}

static void expect_peak_within_budget(const struct fetchd *f, long long start_rss)
{
	long long peak = proc_status_bytes(f->pid, "VmHWM:");
	long long bound = start_rss + (long long)(BUDGET_MB + ALLOWANCE_MB) * 1024 * 1024;

	ck_assert_msg(peak <= bound,
		      "fetchd's peak RSS %lld MB passed start %lld MB + budget %d MB + allowance "
		      "%d MB",
		      peak >> 20, start_rss >> 20, BUDGET_MB, ALLOWANCE_MB);
}

/* Everything held for clients is given back once they have read it. */
static void expect_budget_empty(const struct fetchd *f)
{
	for (uint64_t end = now_ms() + WAIT_MS;; sleep_ms(50)) {
		long used = fetchd_stat(f->port, "pending_bytes");

		if (used == 0)
			return;
		ck_assert_msg(now_ms() < end, "pending_bytes is still %ld", used);
	}
}

/* 32 clients ask for a 1 MB body of control characters (a 6 MB document)
 * and read slowly: documents pile up only to the budget, the rest are
 * answered 503 overloaded, and each client gets one answer. */
START_TEST(test_slow_readers_stay_within_the_memory_budget)
{
	struct fetchd f;
	int fds[CLIENTS], n200 = 0, n503 = 0;
	long long start_rss;
	char *url, *body;

	start_budgeted(&f);
	start_rss = proc_status_bytes(f.pid, "VmRSS:");
	url = up_url(&up, "/control?n=1048576");
	body = str_printf("{\"url\": \"%s\"}", url);
	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = slow_client(f.port);
		send_post(fds[i], "/v1/fetch", body);
	}
	wait_pool_idle(&f);
	expect_peak_within_budget(&f, start_rss);
	for (int i = 0; i < CLIENTS; i++) {
		int status = read_answer(fds[i], NULL);

		ck_assert_msg(status == 200 || status == 503, "client %d: HTTP %d", i, status);
		n200 += status == 200;
		n503 += status == 503;
	}
	ck_assert_msg(n200 >= 1 && n503 >= 1, "want some 200 and some 503, got %d and %d", n200,
		      n503);
	expect_budget_empty(&f);
	free(body);
	free(url);
	fetchd_stop(&f);
}
END_TEST

/* A batch's finished items are charged as they finish, not when the
 * batch is done: 24 such items stay within the budget too, the ones that
 * do not fit answered in place. */
START_TEST(test_batch_items_are_charged_as_they_finish)
{
	struct fetchd f;
	json_t *items = json_array(), *doc;
	long long start_rss;
	char *url = up_url(&up, "/control?n=1048576"), *body, *answer = NULL;
	int fd, ok = 0, overloaded = 0;

	start_budgeted(&f);
	start_rss = proc_status_bytes(f.pid, "VmRSS:");
	for (int i = 0; i < 24; i++)
		json_array_append_new(items, json_pack("{s:s}", "url", url));
	doc = json_pack("{s:o}", "requests", items);
	body = json_dumps(doc, JSON_COMPACT);
	fd = slow_client(f.port);
	send_post(fd, "/v1/batch", body);
	wait_pool_idle(&f);
	expect_peak_within_budget(&f, start_rss);
	ck_assert_int_eq(read_answer(fd, &answer), 200);
	json_decref(doc);
	doc = json_loads(answer, 0, NULL);
	ck_assert_msg(json_array_size(json_object_get(doc, "results")) == 24, "results: %.300s",
		      answer);
	for (size_t i = 0; i < 24; i++) {
		json_t *r = json_array_get(json_object_get(doc, "results"), i);
		const char *code = json_string_value(json_path(r, "error.code"));

		if (json_integer_value(json_object_get(r, "status")) == 200)
			ok++;
		else if (code != NULL && strcmp(code, "overloaded") == 0)
			overloaded++;
	}
	ck_assert_msg(ok >= 1 && ok + overloaded == 24, "%d ok, %d overloaded of 24", ok,
		      overloaded);
	expect_budget_empty(&f);
	json_decref(doc);
	free(answer);
	free(body);
	free(url);
	fetchd_stop(&f);
}
END_TEST

/* One document that could never fit the budget is refused with 502
 * response_too_large, not 503: retrying would not help. */
START_TEST(test_document_larger_than_the_budget_is_response_too_large)
{
	struct fetchd f;
	struct http_resp r;
	char *url = up_url(&up, "/control?n=4194304"); /* a 24 MB document */

	start_budgeted(&f);
	fetch(&f, json_pack("{s:s}", "url", url), &r);
	expect_error(&r, 502, "response_too_large");
	expect_message_has(&r, "max_pending_bytes");
	http_resp_free(&r);
	expect_budget_empty(&f);
	free(url);
	fetchd_stop(&f);
}
END_TEST

/* A 10 MB body of [{"":0},...] took 500 MB and seconds as a jansson tree,
 * and a 0.5 s timeout was answered 200 after 3 s. Now the json field costs
 * its output only, and the answer comes by the deadline. */
START_TEST(test_json_bomb_costs_its_size_and_keeps_the_deadline)
{
	struct fetchd f;
	struct fetchd_opts o = {.allow_loopback = true, .env = small_quarantine_env()};
	char *url = up_url(&up, "/json-bomb?n=10000000"), *body, *answer = NULL;
	long long start_rss;
	uint64_t t0, first_byte_ms;
	int fd, status;
	json_t *doc;

	fetchd_start(&f, &o);
	start_rss = proc_status_bytes(f.pid, "VmRSS:");
	body = str_printf("{\"url\": \"%s\", \"timeout\": 0.5, \"fields\": [\"status\", \"json\"]}",
			  url);
	fd = slow_client(f.port);
	t0 = now_ms();
	send_post(fd, "/v1/fetch", body);
	/* when fetchd starts to answer: writing 10 MB to a client starved of
	 * CPU (a loaded machine, sanitizers) is not fetchd's deadline */
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ck_assert_msg(poll(&pfd, 1, 30000) == 1, "no answer within 30 s");
	first_byte_ms = now_ms() - t0;
	status = read_answer(fd, &answer);
	doc = json_loads(answer, 0, NULL);
	if (status == 200) {
		ck_assert_msg(json_array_size(json_object_get(doc, "json")) == 10000000 / 7,
			      "json has %zu items", json_array_size(json_object_get(doc, "json")));
	} else {
		ck_assert_msg(status == 504, "HTTP %d: %.300s", status, answer);
		ck_assert_str_eq(json_string_value(json_path(doc, "error.code")),
				 "upstream_timeout");
	}
	ck_assert_msg(first_byte_ms < 2500, "answered after %llu ms with a 0.5 s timeout",
		      (unsigned long long)first_byte_ms);
	long long peak = proc_status_bytes(f.pid, "VmHWM:");
	ck_assert_msg(peak - start_rss < 150ll << 20, "a 10 MB JSON body took %lld MB",
		      (peak - start_rss) >> 20);
	json_decref(doc);
	free(answer);
	free(body);
	free(url);
	fetchd_stop(&f);
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("budget");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_add_test(tc, test_slow_readers_stay_within_the_memory_budget);
	tcase_add_test(tc, test_batch_items_are_charged_as_they_finish);
	tcase_add_test(tc, test_document_larger_than_the_budget_is_response_too_large);
	tcase_add_test(tc, test_json_bomb_costs_its_size_and_keeps_the_deadline);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(memory_suite(), CK_NORMAL);
}
