/* SIGHUP live reload: pool sizes under load without a failed fetch, the new
 * queue limit enforced, the log level changed, and a broken file rejected
 * with the running configuration kept.
 *
 * Operations tests (SPEC section 4): the real fetchd binary and its process
 * behaviour, each test with its own fetchd. Only 127.0.0.1. Every wait is a
 * bounded poll; nothing sleeps for a fixed long time. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- SIGHUP live reload ---- */

#define LOAD_THREADS 8
#define LOAD_MIN_EACH 25 /* 8 x 25 = 200 fetches at least */

struct load {
	int port;
	char *body;
	atomic_bool stop;
	atomic_long done, failed;
	pthread_mutex_t lock;
	char first_failure[512];
	pthread_t threads[LOAD_THREADS];
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	long mine = 0;

	while (mine < LOAD_MIN_EACH || !atomic_load(&l->stop)) {
		struct http_resp r;
		int rc = http_post_json(l->port, "/v1/fetch", l->body, &r);
		json_t *st = rc == 0 ? json_path(r.json, "status") : NULL;
		bool ok = rc == 0 && r.status == 200 && json_is_integer(st) &&
			  json_integer_value(st) == 200;

		if (!ok) {
			pthread_mutex_lock(&l->lock);
			if (atomic_fetch_add(&l->failed, 1) == 0)
				snprintf(l->first_failure, sizeof(l->first_failure),
					 "rc %d, HTTP %ld, body %.400s", rc, rc == 0 ? r.status : 0,
					 rc == 0 && r.body ? r.body : "-");
			pthread_mutex_unlock(&l->lock);
		}
		if (rc == 0)
			http_resp_free(&r);
		atomic_fetch_add(&l->done, 1);
		mine++;
	}
	return NULL;
}

static void load_start(struct load *l, int port, char *body)
{
	l->port = port;
	l->body = body;
	atomic_init(&l->stop, false);
	atomic_init(&l->done, 0);
	atomic_init(&l->failed, 0);
	pthread_mutex_init(&l->lock, NULL);
	l->first_failure[0] = '\0';
	for (int i = 0; i < LOAD_THREADS; i++)
		ck_assert_msg(pthread_create(&l->threads[i], NULL, load_main, l) == 0,
			      "pthread_create");
}

/* Wait until n more fetches of the load have been answered. */
static bool load_wait_more(struct load *l, long n)
{
	long want = atomic_load(&l->done) + n;
	uint64_t end = now_ms() + WAIT_MS;

	while (atomic_load(&l->done) < want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(10);
	}
	return true;
}

static void load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	for (int i = 0; i < LOAD_THREADS; i++)
		pthread_join(l->threads[i], NULL);
	pthread_mutex_destroy(&l->lock);
}

/* threads 4 -> 16 -> 2 and new queue limits while 8 clients keep fetching:
 * every fetch answered 200 with status 200. */
START_TEST(test_sighup_resizes_pool_under_load_without_failures)
{
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 4\nqueue_limit = 100\n",
		.allow_loopback = true,
		.keep_config = true,
	};
	struct load l;

	fetchd_start(&daemon_, &o);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 4);
	load_start(&l, daemon_.port, fetch_body(&up, "/delay?ms=20"));
	ck_assert_msg(load_wait_more(&l, 20), "the load does not run");

	fetchd_write_config(&daemon_, "[pool]\nthreads = 16\nqueue_limit = 500\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 16),
		      "threads did not become 16 after SIGHUP (now %ld)",
		      pool_stat(&daemon_, "threads"));
	ck_assert_int_eq(pool_stat(&daemon_, "queue_limit"), 500);
	ck_assert_msg(load_wait_more(&l, 40), "the load stalled with 16 threads");

	fetchd_write_config(&daemon_, "[pool]\nthreads = 2\nqueue_limit = 300\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 2),
		      "threads did not become 2 after SIGHUP (now %ld)",
		      pool_stat(&daemon_, "threads"));
	ck_assert_int_eq(pool_stat(&daemon_, "queue_limit"), 300);
	ck_assert_msg(load_wait_more(&l, 40), "the load stalled with 2 threads");

	load_stop(&l);
	ck_assert_msg(atomic_load(&l.failed) == 0,
		      "%ld of %ld fetches failed across the reloads; first: %s",
		      atomic_load(&l.failed), atomic_load(&l.done), l.first_failure);
	ck_assert_msg(atomic_load(&l.done) >= LOAD_THREADS * LOAD_MIN_EACH, "only %ld fetches ran",
		      atomic_load(&l.done));
	free(l.body);
	ck_assert_msg(log_count(&daemon_, "reloaded: 16 threads") == 1 &&
			      log_count(&daemon_, "reloaded: 2 threads") == 1,
		      "the log does not record both reloads");
	/* all 16 workers would show up here if the shrink had not happened */
	ck_assert_int_le(pool_stat(&daemon_, "busy"), 2);
}
END_TEST

/* A queue_limit lowered by SIGHUP is enforced at once. */
START_TEST(test_sighup_queue_limit_is_enforced)
{
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 2\nqueue_limit = 10\n",
		.allow_loopback = true,
		.keep_config = true,
	};
	char *hold = fetch_body(&up, "/hold?key=q");
	struct bg_request *bg[3];
	struct http_resp r;

	fetchd_start(&daemon_, &o);
	fetchd_write_config(&daemon_, "[pool]\nthreads = 2\nqueue_limit = 1\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "queue_limit", 1),
		      "queue_limit did not become 1 after SIGHUP");
	for (int i = 0; i < 2; i++)
		bg[i] = bg_post_json(daemon_.port, "/v1/fetch", hold);
	ck_assert_msg(wait_counter(&up, "q", "held", 2), "the upstream did not hold 2 fetches");
	bg[2] = bg_post_json(daemon_.port, "/v1/fetch", hold);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "queued", 1), "the third fetch was not queued");
	/* capacity is now 2 + 1 */
	fetch_path(&daemon_, &up, "/json", &r);
	expect_status(&r, 503);
	expect_str(&r, "error.code", "overloaded");
	http_resp_free(&r);

	ck_assert_msg(http_get(up.port, "/release?key=q", &r) == 0, "release");
	http_resp_free(&r);
	/* the queued one reaches the upstream once a worker is free */
	ck_assert_msg(wait_counter(&up, "q", "hits", 3), "the queued fetch never ran");
	ck_assert_msg(wait_counter(&up, "q", "held", 1), "the queued fetch is not held");
	ck_assert_msg(http_get(up.port, "/release?key=q", &r) == 0, "release");
	http_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(bg_join(bg[i], &r) == 0, "fetch %d got no answer", i);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	free(hold);
}
END_TEST

/* Access-log lines (info) for /v1/fetch so far. */
static int access_lines(const struct fetchd *f)
{
	char *log = fetchd_log(f);
	int n = 0;

	for (const char *line = log; line != NULL && *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
		char *copy = strndup(line, len);

		if (copy != NULL && strstr(copy, "access") != NULL && strstr(copy, "/v1/fetch"))
			n++;
		free(copy);
		line = eol != NULL ? eol + 1 : NULL;
	}
	free(log);
	return n;
}

static bool wait_access_lines(const struct fetchd *f, int at_least)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		if (access_lines(f) >= at_least)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

/* [log] level changes live: at "warn" the access-log lines (info) stop,
 * back at "info" they come again. */
START_TEST(test_sighup_changes_log_level)
{
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 2\n",
		.allow_loopback = true,
		.keep_config = true,
	};
	int before;

	fetchd_start(&daemon_, &o);
	expect_fetch_ok(&daemon_, &up, "/json");
	if (!wait_access_lines(&daemon_, 1)) {
		dump_log(&daemon_);
		ck_abort_msg("no access-log line for /v1/fetch at level info");
	}

	/* threads changes too: it tells when the reload has happened */
	fetchd_write_config(&daemon_, "[pool]\nthreads = 3\n[log]\nlevel = warn\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 3), "the reload did not happen");
	before = access_lines(&daemon_);
	for (int i = 0; i < 3; i++)
		expect_fetch_ok(&daemon_, &up, "/json");
	ck_assert_msg(access_lines(&daemon_) == before,
		      "access-log lines (info) were written at level warn");

	fetchd_write_config(&daemon_, "[pool]\nthreads = 2\n[log]\nlevel = info\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 2),
		      "the second reload did not happen");
	expect_fetch_ok(&daemon_, &up, "/json");
	ck_assert_msg(wait_access_lines(&daemon_, before + 1),
		      "no access-log line after going back to level info");
}
END_TEST

/* A file with errors is rejected as a whole: nothing of it applies (not
 * even its valid lines), each problem is logged as file:line, and the
 * running configuration stays. A good file afterwards still applies. */
START_TEST(test_sighup_rejects_broken_file_and_keeps_config)
{
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 4\nqueue_limit = 40\n",
		.allow_loopback = true,
		.keep_config = true,
	};
	char *where;

	fetchd_start(&daemon_, &o);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 4);

	/* line 1 [server], 2 listen, 3 [pool], 4 threads, 5 the bad value */
	fetchd_write_config(&daemon_, "[pool]\nthreads = 7\nqueue_limit = lots\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_log_count(&daemon_, "reload rejected", 1),
		      "no \"reload rejected\" in the log after a bad value");
	where = str_printf("%s:5:", daemon_.conf_path);
	if (!fetchd_log_has_line(&daemon_, where, "queue_limit")) {
		dump_log(&daemon_);
		ck_abort_msg("the log has no line naming \"%s\" and queue_limit", where);
	}
	free(where);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 4);
	ck_assert_int_eq(pool_stat(&daemon_, "queue_limit"), 40);
	expect_fetch_ok(&daemon_, &up, "/json");

	/* an unknown key on line 6 */
	fetchd_write_config(&daemon_, "[pool]\nthreads = 7\nqueue_limit = 70\nqueue_limt = 5\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_log_count(&daemon_, "reload rejected", 2),
		      "no second \"reload rejected\" in the log after an unknown key");
	where = str_printf("%s:6:", daemon_.conf_path);
	if (!fetchd_log_has_line(&daemon_, where, "queue_limt")) {
		dump_log(&daemon_);
		ck_abort_msg("the log has no line naming \"%s\" and queue_limt", where);
	}
	free(where);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 4);
	ck_assert_int_eq(pool_stat(&daemon_, "queue_limit"), 40);

	/* a syntax error on line 4 */
	fetchd_write_config(&daemon_, "[pool]\nthreads 7\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_log_count(&daemon_, "reload rejected", 3),
		      "no third \"reload rejected\" in the log after a syntax error");
	where = str_printf("%s:4:", daemon_.conf_path);
	if (!fetchd_log_has_line(&daemon_, where, "reload")) {
		dump_log(&daemon_);
		ck_abort_msg("the log has no reload line naming \"%s\"", where);
	}
	free(where);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 4);

	/* still serving, and a good file still applies */
	expect_fetch_ok(&daemon_, &up, "/json");
	fetchd_write_config(&daemon_, "[pool]\nthreads = 6\nqueue_limit = 60\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 6),
		      "a good file after rejected ones was not applied");
	ck_assert_int_eq(pool_stat(&daemon_, "queue_limit"), 60);
	expect_fetch_ok(&daemon_, &up, "/json");
}
END_TEST

static Suite *reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc;

	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_sighup_resizes_pool_under_load_without_failures);
	tcase_add_test(tc, test_sighup_queue_limit_is_enforced);
	tcase_add_test(tc, test_sighup_changes_log_level);
	tcase_add_test(tc, test_sighup_rejects_broken_file_and_keeps_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(reload_suite(), CK_NORMAL);
}
