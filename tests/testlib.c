#include "testlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

struct upstream up;
struct fetchd daemon_;

void setup_default(void)
{
	char *conf = str_printf("[pool]\nthreads = %d\n", DEFAULT_THREADS);

	upstream_start(&up);
	fetchd_start(&daemon_, &(struct fetchd_opts){.extra_config = conf, .allow_loopback = true});
	free(conf);
}

void setup_upstream_only(void)
{
	upstream_start(&up);
	daemon_.pid = -1;
}

void teardown_default(void)
{
	fetchd_stop(&daemon_);
	upstream_stop(&up);
}

const char *body_of(const struct http_resp *r)
{
	return r->body != NULL ? r->body : "(no body)";
}

const char *describe(const json_t *v)
{
	static char buf[256];
	char *s;

	if (v == NULL)
		return "(absent)";
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, sizeof(buf), "%.250s", s != NULL ? s : "?");
	free(s);
	return buf;
}

void get_ok(int port, const char *path, struct http_resp *r)
{
	ck_assert_msg(http_get(port, path, r) == 0, "GET %.200s failed", path);
}

/* The integer at json path of GET port/url; -1 when absent. */
static long integer_at(int port, const char *url, const char *path)
{
	struct http_resp r;
	long v = -1;

	if (http_get(port, url, &r) == 0) {
		json_t *j = json_path(r.json, path);

		if (json_is_integer(j))
			v = (long)json_integer_value(j);
		http_resp_free(&r);
	}
	return v;
}

long upstream_stat(int upstream_port, const char *key, const char *field)
{
	char *url = str_printf("/stats?key=%s", key);
	long v = integer_at(upstream_port, url, field);

	free(url);
	return v;
}

long fetchd_stat(int fetchd_port, const char *path)
{
	return integer_at(fetchd_port, "/v1/stats", path);
}

long pool_stat_at(int fetchd_port, const char *field)
{
	char *path = str_printf("pools.default.%s", field);
	long v = fetchd_stat(fetchd_port, path);

	free(path);
	return v;
}

bool wait_upstream_stat(int upstream_port, const char *key, const char *field, long want,
			unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (upstream_stat(upstream_port, key, field) != want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

bool upstream_stat_stays(int upstream_port, const char *key, const char *field, long want,
			 unsigned ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (upstream_stat(upstream_port, key, field) != want)
			return false;
		sleep_ms(20);
	} while (now_ms() < end);
	return true;
}

bool wait_pool_stat_at_least(int fetchd_port, const char *field, long at_least, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (pool_stat_at(fetchd_port, field) < at_least) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

static const char *up_addr(const struct upstream *u)
{
	return u->addr[0] ? u->addr : "127.0.0.1";
}

char *up_url(const struct upstream *u, const char *path)
{
	return str_printf("http://%s:%d%s", up_addr(u), u->port, path);
}

void fetch(const struct fetchd *f, json_t *obj, struct http_resp *r)
{
	ck_assert_msg(obj != NULL, "json_pack failed");
	ck_assert_msg(http_post_obj(f->port, "/v1/fetch", obj, r) == 0, "POST /v1/fetch failed");
}

void fetch_path(const struct fetchd *f, const struct upstream *u, const char *path,
		struct http_resp *r)
{
	char *url = up_url(u, path);
	json_t *obj = json_pack("{s:s}", "url", url);

	ck_assert_msg(obj != NULL, "json_pack failed");
	ck_assert_msg(http_post_obj(f->port, "/v1/fetch", obj, r) == 0,
		      "POST /v1/fetch (%s) failed", path);
	free(url);
}

long upstream_counter(const struct upstream *u, const char *key, const char *field)
{
	char *path = str_printf("/stats?key=%s", key);
	struct http_resp r;
	long v = -1;

	if (http_request_at(up_addr(u), u->port, "GET", path, NULL, &r) == 0) {
		json_t *j = json_path(r.json, field);

		if (json_is_integer(j))
			v = (long)json_integer_value(j);
		http_resp_free(&r);
	}
	free(path);
	return v;
}

bool wait_counter(const struct upstream *u, const char *key, const char *field, long want)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (upstream_counter(u, key, field) != want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

bool counter_stays(const struct upstream *u, const char *key, const char *field, long want)
{
	uint64_t end = now_ms() + SETTLE_MS;

	do {
		if (upstream_counter(u, key, field) != want)
			return false;
		sleep_ms(20);
	} while (now_ms() < end);
	return true;
}

long pool_stat(const struct fetchd *f, const char *field)
{
	return pool_stat_at(f->port, field);
}

bool wait_pool_stat(const struct fetchd *f, const char *field, long at_least)
{
	return wait_pool_stat_at_least(f->port, field, at_least, WAIT_MS);
}

void hold_workers(const struct fetchd *f, const struct upstream *u, struct bg_request **bg, int n,
		  const char *key)
{
	char *path = str_printf("/hold?key=%s", key);
	char *url = up_url(u, path);

	for (int i = 0; i < n; i++)
		bg[i] = bg_post_obj(f->port, "/v1/fetch", json_pack("{s:s}", "url", url));
	ck_assert_msg(wait_counter(u, key, "held", n),
		      "upstream did not get %d held requests (held %ld)", n,
		      upstream_counter(u, key, "held"));
	free(url);
	free(path);
}

long release_held(const struct upstream *u, const char *key, int n)
{
	char *path = n > 0 ? str_printf("/release?key=%s&n=%d", key, n)
			   : str_printf("/release?key=%s", key);
	struct http_resp r;
	long released = -1;

	ck_assert_msg(http_request_at(up_addr(u), u->port, "GET", path, NULL, &r) == 0,
		      "GET %s failed", path);
	expect_status(&r, 200);
	if (json_is_integer(json_object_get(r.json, "released")))
		released = (long)json_integer_value(json_object_get(r.json, "released"));
	http_resp_free(&r);
	free(path);
	return released;
}

void join_held(struct bg_request **bg, int n)
{
	for (int i = 0; i < n; i++) {
		struct http_resp r;

		ck_assert_msg(bg_join(bg[i], &r) == 0, "held fetch %d failed", i);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
}

void expect_serving(const struct fetchd *f, const struct upstream *u)
{
	char *url = up_url(u, "/json");
	struct http_resp r;

	get_ok(f->port, "/healthz", &r);
	expect_status(&r, 200);
	expect_str(&r, "status", "ok");
	http_resp_free(&r);
	fetch(f, json_pack("{s:s}", "url", url), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "json.hello", "world");
	expect_int(&r, "json.n", 1);
	expect_str(&r, "url", url);
	http_resp_free(&r);
	free(url);
}

bool log_has_line(const char *log, const char *a, const char *b)
{
	const char *line = log;

	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
		char *copy = strndup(line, len);
		bool hit = copy != NULL && strstr(copy, a) != NULL && strstr(copy, b) != NULL;

		free(copy);
		if (hit)
			return true;
		line = eol != NULL ? eol + 1 : NULL;
	}
	return false;
}

bool fetchd_log_has_line(const struct fetchd *f, const char *a, const char *b)
{
	char *log = fetchd_log(f);
	bool hit = log_has_line(log, a, b);

	free(log);
	return hit;
}

char *fetch_body(const struct upstream *u, const char *path)
{
	char *url = up_url(u, path);
	json_t *obj = json_pack("{s:s}", "url", url);
	char *body = json_dumps(obj, JSON_COMPACT);

	ck_assert_msg(body != NULL, "json_dumps failed");
	json_decref(obj);
	free(url);
	return body;
}

void expect_fetch_ok(const struct fetchd *f, const struct upstream *u, const char *path)
{
	struct http_resp r;

	fetch_path(f, u, path, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
}

bool wait_pool_stat_eq(const struct fetchd *f, const char *field, long want)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		if (pool_stat(f, field) == want)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

int log_count(const struct fetchd *f, const char *needle)
{
	char *log = fetchd_log(f);
	int n = 0;

	for (const char *p = strstr(log, needle); p != NULL; p = strstr(p + strlen(needle), needle))
		n++;
	free(log);
	return n;
}

bool wait_log_count(const struct fetchd *f, const char *needle, int at_least)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		if (log_count(f, needle) >= at_least)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

void dump_log(const struct fetchd *f)
{
	char *log = fetchd_log(f);

	fprintf(stderr, "---- fetchd log ----\n%s---- end of fetchd log ----\n", log);
	free(log);
}

bool exit_verdict(struct fetchd *f, char *why, size_t len)
{
	int status = fetchd_wait_exit(f, EXIT_MS);

	if (status == -1)
		snprintf(why, len, "fetchd did not exit within %d ms", EXIT_MS);
	else if (WIFSIGNALED(status))
		snprintf(why, len, "fetchd died of signal %d", WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(why, len, "fetchd exited with status %d, want 0", WEXITSTATUS(status));
	else {
		snprintf(why, len, "fetchd exited 0");
		return true;
	}
	return false;
}

void expect_exit_0(struct fetchd *f)
{
	char why[128];

	if (!exit_verdict(f, why, sizeof(why))) {
		dump_log(f);
		ck_abort_msg("%s", why);
	}
}

char *redirect_to(const char *target)
{
	char *enc = url_encode(target);
	char *path = str_printf("/redirect?status=302&to=%s", enc);
	char *url = up_url(&up, path);

	free(path);
	free(enc);
	return url;
}

void fetch_url(const struct fetchd *f, const char *url, struct http_resp *r)
{
	fetch(f, json_pack("{s:s}", "url", url), r);
}

void fetch_text(const struct fetchd *f, const char *body, struct http_resp *r)
{
	ck_assert_msg(http_post_json(f->port, "/v1/fetch", body, r) == 0, "POST /v1/fetch failed");
}

bool wait_idle(const struct fetchd *f)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		if (pool_stat(f, "busy") == 0 && pool_stat(f, "queued") == 0)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

void expect_clean_daemon(const struct fetchd *f)
{
	char *log;

	ck_assert_msg(kill(f->pid, 0) == 0, "fetchd (pid %d) is gone", (int)f->pid);
	expect_serving(f, &up);
	ck_assert_msg(wait_idle(f), "fetchd leaked work: busy %ld, queued %ld",
		      pool_stat(f, "busy"), pool_stat(f, "queued"));
	log = fetchd_log(f);
	ck_assert_msg(strstr(log, "AddressSanitizer") == NULL &&
			      strstr(log, "LeakSanitizer") == NULL &&
			      strstr(log, "runtime error") == NULL,
		      "fetchd logged a sanitizer report:\n%s", log);
	free(log);
}

struct fetchd guard_d, main_d, big_d, own_d;

/* Keys a main-daemon case may hold at the upstream: released before each
 * case, so one failed case does not starve the next. */
static const char *const hold_keys[] = {"dcq-hold", "dcr", "flood", "hang"};

#define MAIN_CONFIG                                                                                \
	"max_request_bytes = 64K\n"                                                                \
	"[pool]\nthreads = 2\nqueue_limit = 4\n"                                                   \
	"[fetch]\nmax_response_bytes = 1M\n"

void guard_setup(void)
{
	upstream_start(&up);
	fetchd_start(&guard_d, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 4\n"});
}

void guard_teardown(void)
{
	fetchd_stop(&guard_d);
	upstream_stop(&up);
}

void main_setup(void)
{
	upstream_start(&up);
	fetchd_start(&main_d,
		     &(struct fetchd_opts){.extra_config = MAIN_CONFIG, .allow_loopback = true});
}

void main_teardown(void)
{
	fetchd_stop(&main_d);
	upstream_stop(&up);
}

/* Before each case on the main daemon: nothing held, nothing in flight. */
void main_settle(void)
{
	for (size_t i = 0; i < sizeof(hold_keys) / sizeof(hold_keys[0]); i++)
		release_held(&up, hold_keys[i], 0);
	ck_assert_msg(wait_idle(&main_d), "the main fetchd is not idle before the case");
}

void big_setup(void)
{
	upstream_start(&up);
	fetchd_start(&big_d, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 2\n",
						   .allow_loopback = true});
}

void big_teardown(void)
{
	fetchd_stop(&big_d);
	upstream_stop(&up);
}

void own_setup(void)
{
	upstream_start(&up);
	own_d.pid = -1;
}

void own_teardown(void)
{
	fetchd_stop(&own_d);
	upstream_stop(&up);
}

int run_suite(Suite *s, enum print_output mode)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, mode);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
