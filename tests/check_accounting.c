/* Integration tests: every answered request is accounted for. Whatever
 * path answers it (a fetch, a batch, the probes, /v1/stats, /metrics, or
 * an error before any fetch: 401, invalid_json, 404, 405, a bad query), it
 * leaves exactly one access line naming the client, and one increment of
 * fetchd_requests_total{code,error}. libevent's own HTML answers (413 on
 * an oversized body, 400 on garbage) never reach fetchd and are not
 * counted (README, Errors). And HEAD gets the headers GET would, with no
 * body. Only 127.0.0.1. */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 90
#define TOKEN "s3cret-token"

static char token_path[64];

static void write_token(void)
{
	int fd;

	snprintf(token_path, sizeof(token_path), "/tmp/fetchd-acct-token-XXXXXX");
	fd = mkstemp(token_path);
	ck_assert_msg(fd >= 0, "mkstemp failed");
	ck_assert_int_eq(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (int)strlen(TOKEN) + 1);
	close(fd);
}

static void start_with_token(struct fetchd *f, const char *extra)
{
	char *conf;

	write_token();
	conf = str_printf("auth_token_file = %s\n%s", token_path, extra ? extra : "");
	fetchd_start(f, &(struct fetchd_opts){.extra_config = conf, .allow_loopback = true});
	free(conf);
}

static void stop_and_clean(struct fetchd *f)
{
	fetchd_stop(f);
	unlink(token_path);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	FILE *out = arg;

	return fwrite(data, size, n, out);
}

/* One request with its own X-Request-Id and Authorization (NULL: none);
 * returns the status, the body in *body (malloc'd, may be NULL). */
static long request(int port, const char *method, const char *path, const char *body,
		    const char *token, const char *id, char **out_body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	long status = -1;
	char *line;

	ck_assert_msg(c != NULL && out != NULL, "out of memory");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HARNESS_HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	line = str_printf("X-Request-Id: %s", id);
	h = curl_slist_append(h, line);
	free(line);
	h = curl_slist_append(h, "Expect:");
	if (token != NULL) {
		line = str_printf("Authorization: Bearer %s", token);
		h = curl_slist_append(h, line);
		free(line);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") == 0 && body == NULL)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	fclose(out);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (out_body != NULL)
		*out_body = buf;
	else
		free(buf);
	return status;
}

/* fetchd_requests_total{code="CODE",error="ERROR"} from /metrics; 0 when
 * the series is absent. Each scrape is itself counted as a 200. */
static long requests_total(int port, int code, const char *error)
{
	char *text = NULL, *needle;
	const char *at;
	long v = 0;

	ck_assert_int_eq(request(port, "GET", "/metrics", NULL, TOKEN, "acct-scrape", &text), 200);
	needle = str_printf("\nfetchd_requests_total{code=\"%d\",error=\"%s\"} ", code, error);
	at = strstr(text, needle);
	if (at != NULL)
		v = strtol(at + strlen(needle), NULL, 10);
	free(needle);
	free(text);
	return v;
}

struct row {
	const char *method, *path, *body;
	bool token;	   /* send the right token; else a wrong one */
	long status;	   /* the HTTP status wanted */
	const char *error; /* the error label wanted ("" for none) */
};

/* The rows of the README's error table that fetchd answers before any
 * fetch, and the routes of its own. */
static const struct row rows[] = {
	{"POST", "/v1/fetch", "{\"url\":\"http://127.0.0.1:1/\"}", false, 401, "unauthorized"},
	{"GET", "/metrics", NULL, false, 401, "unauthorized"},
	{"POST", "/v1/fetch", "{\"url\":", true, 400, "invalid_json"},
	{"GET", "/no/such/path", NULL, true, 404, "not_found"},
	{"DELETE", "/v1/fetch", NULL, true, 405, "method_not_allowed"},
	{"HEAD", "/v1/batch", NULL, true, 405, "method_not_allowed"},
	{"GET", "/v1/fetch?timeout=nan&url=x", NULL, true, 400, "invalid_request"},
	{"GET", "/v1/fetch?novalue", NULL, true, 400, "invalid_request"},
	{"GET", "/v1/fetch", NULL, true, 400, "invalid_request"},
	{"POST", "/v1/batch", "{\"requests\":1}", true, 400, "invalid_request"},
	{"POST", "/v1/batch", "{\"requests\":[]}", true, 200, ""},
	{"GET", "/healthz", NULL, false, 200, ""},
	{"HEAD", "/healthz", NULL, false, 200, ""},
	{"GET", "/readyz", NULL, false, 200, ""},
	{"GET", "/livez", NULL, false, 200, ""},
	{"GET", "/v1/stats", NULL, true, 200, ""},
	{"HEAD", "/metrics", NULL, true, 200, ""},
};

START_TEST(test_each_answer_leaves_one_access_line_and_one_count)
{
	struct fetchd f;
	const struct row *r = &rows[_i];
	char id[32], *needle, *log;
	long before, after, got, want_delta;

	start_with_token(&f, NULL);
	snprintf(id, sizeof(id), "acct-%d", _i);
	before = requests_total(f.port, (int)r->status, r->error);
	got = request(f.port, r->method, r->path, r->body, r->token ? TOKEN : "wrong", id, NULL);
	ck_assert_msg(got == r->status, "%s %s: status %ld, want %ld", r->method, r->path, got,
		      r->status);
	after = requests_total(f.port, (int)r->status, r->error);
	/* the first scrape counts itself as a 200 after it is rendered */
	want_delta = r->status == 200 && r->error[0] == '\0' ? 2 : 1;
	ck_assert_msg(after - before == want_delta,
		      "%s %s: fetchd_requests_total{code=\"%ld\",error=\"%s\"} went from %ld to "
		      "%ld, want +%ld",
		      r->method, r->path, r->status, r->error, before, after, want_delta);
	needle = str_printf("access id=%s ", id);
	ck_assert_msg(wait_log_count(&f, needle, 1), "%s %s: no access line", r->method, r->path);
	sleep_ms(100);
	ck_assert_msg(log_count(&f, needle) == 1, "%s %s: %d access lines, want 1", r->method,
		      r->path, log_count(&f, needle));
	log = fetchd_log(&f);
	{
		char *status =
			str_printf("status=%ld error=%s ", r->status, r->error[0] ? r->error : "-");
		char *method = str_printf(" method=%s ", r->method);

		ck_assert_msg(log_has_line(log, needle, status), "%s %s: the line lacks '%s':\n%s",
			      r->method, r->path, status, log);
		ck_assert_msg(log_has_line(log, needle, method), "no '%s' in its line", method);
		ck_assert_msg(log_has_line(log, needle, " client=127.0.0.1:"),
			      "%s %s: the line does not name the client:\n%s", r->method, r->path,
			      log);
		free(status);
		free(method);
	}
	free(log);
	free(needle);
	stop_and_clean(&f);
}
END_TEST

/* A fetch and a batch are counted per item, as before; their one access
 * line names the client too, and never the URL. */
START_TEST(test_fetch_line_names_client_not_url)
{
	struct fetchd f;
	char *body = str_printf("{\"url\":\"http://127.0.0.1:%d/json?secret=hunter2\"}", up.port);
	char *log;
	long before, after;

	start_with_token(&f, NULL);
	before = requests_total(f.port, 200, "");
	ck_assert_int_eq(request(f.port, "POST", "/v1/fetch", body, TOKEN, "acct-fetch", NULL),
			 200);
	after = requests_total(f.port, 200, "");
	ck_assert_msg(after - before == 2, "a fetch counted %ld, want 1 (+1 scrape)",
		      after - before - 1);
	ck_assert(wait_log_count(&f, "access id=acct-fetch ", 1));
	log = fetchd_log(&f);
	ck_assert_msg(log_has_line(log, "access id=acct-fetch client=127.0.0.1:",
				   "path=/v1/fetch host=127.0.0.1 items=1 status=200"),
		      "the fetch's line:\n%s", log);
	ck_assert_msg(strstr(log, "hunter2") == NULL, "the URL's query reached the log");
	free(log);
	free(body);
	stop_and_clean(&f);
}
END_TEST

/* During the lame duck /healthz and /readyz answer 503 with no error
 * code, /livez 200: each counted under its own status. */
START_TEST(test_lame_duck_probes_counted_by_status)
{
	struct fetchd f;
	char *body = NULL;

	start_with_token(&f, "lame_duck = 3s\n");
	ck_assert_int_eq(requests_total(f.port, 503, ""), 0);
	ck_assert_int_eq(fetchd_signal(&f, SIGTERM), 0);
	sleep_ms(200);
	ck_assert_int_eq(request(f.port, "GET", "/healthz", NULL, NULL, "acct-h", &body), 503);
	ck_assert_msg(body != NULL && strstr(body, "\"draining\"") != NULL, "%s", body);
	free(body);
	ck_assert_int_eq(request(f.port, "GET", "/readyz", NULL, NULL, "acct-r", &body), 503);
	ck_assert_msg(body != NULL && strstr(body, "\"lame_duck\"") != NULL, "%s", body);
	free(body);
	ck_assert_int_eq(request(f.port, "GET", "/livez", NULL, NULL, "acct-l", &body), 200);
	ck_assert_msg(body != NULL && strstr(body, "\"alive\"") != NULL, "%s", body);
	free(body);
	ck_assert_int_eq(requests_total(f.port, 503, ""), 2);
	ck_assert(fetchd_log_has_line(&f, "access id=acct-r ", "status=503 error=- "));
	expect_exit_0(&f);
	stop_and_clean(&f);
}
END_TEST

/* Read from fd until want bytes came or 5 s passed. */
static size_t read_some(int fd, char *buf, size_t cap, size_t want)
{
	uint64_t end = now_ms() + 5000;
	size_t len = 0;

	while (len < want && len < cap && now_ms() < end) {
		ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);

		if (n > 0)
			len += (size_t)n;
		else if (n == 0)
			break;
		else
			sleep_ms(10);
	}
	return len;
}

/* HEAD then GET on one keep-alive connection: the HEAD answer is headers
 * only, with the Content-Length of GET's body, and the GET's status line
 * follows its blank line at once (a body there would be read as the start
 * of the next answer: curl -I used to hang). */
START_TEST(test_head_has_headers_only)
{
	struct fetchd f;
	const char *probes[] = {"/healthz", "/readyz", "/livez", "/v1/stats"};

	start_with_token(&f, NULL);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		char *req = str_printf("HEAD %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
				       "\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
				       probes[i]);
		int fd = raw_connect(f.port);
		char buf[4096] = "";
		const char *end, *cl;
		size_t len;

		ck_assert(fd >= 0);
		ck_assert_int_eq(raw_send(fd, req, strlen(req)), 0);
		len = read_some(fd, buf, sizeof(buf) - 1, sizeof(buf) - 1);
		buf[len] = '\0';
		close(fd);
		ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "HEAD %s: %s", probes[i], buf);
		end = strstr(buf, "\r\n\r\n");
		ck_assert_msg(end != NULL, "HEAD %s: no end of headers: %s", probes[i], buf);
		cl = strstr(buf, "Content-Length: ");
		ck_assert_msg(cl != NULL && cl < end && strtol(cl + 16, NULL, 10) > 0,
			      "HEAD %s: no Content-Length of the GET body: %s", probes[i], buf);
		ck_assert_msg(strncmp(end + 4, "HTTP/1.1 200", 12) == 0,
			      "HEAD %s: bytes after the headers before the next answer: %s",
			      probes[i], buf);
		ck_assert_msg(strstr(end + 4, "{\"status\":\"alive\"}") != NULL,
			      "HEAD %s: the GET after it lost its body: %s", probes[i], buf);
		free(req);
	}
	stop_and_clean(&f);
}
END_TEST

/* The probes answer without the token; everything else wants it. */
START_TEST(test_probes_need_no_token)
{
	struct fetchd f;

	start_with_token(&f, NULL);
	ck_assert_int_eq(request(f.port, "GET", "/healthz", NULL, NULL, "t1", NULL), 200);
	ck_assert_int_eq(request(f.port, "GET", "/readyz", NULL, NULL, "t2", NULL), 200);
	ck_assert_int_eq(request(f.port, "GET", "/livez", NULL, NULL, "t3", NULL), 200);
	ck_assert_int_eq(request(f.port, "HEAD", "/readyz", NULL, NULL, "t4", NULL), 200);
	ck_assert_int_eq(request(f.port, "GET", "/v1/stats", NULL, NULL, "t5", NULL), 401);
	ck_assert_int_eq(request(f.port, "GET", "/metrics", NULL, "nope", "t6", NULL), 401);
	stop_and_clean(&f);
}
END_TEST

static Suite *accounting_suite(void)
{
	Suite *s = suite_create("accounting");
	TCase *tc = tcase_create("accounting");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_add_loop_test(tc, test_each_answer_leaves_one_access_line_and_one_count, 0,
			    (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_fetch_line_names_client_not_url);
	tcase_add_test(tc, test_lame_duck_probes_counted_by_status);
	tcase_add_test(tc, test_head_has_headers_only);
	tcase_add_test(tc, test_probes_need_no_token);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(accounting_suite(), CK_NORMAL);
}
