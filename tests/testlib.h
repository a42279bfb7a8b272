/* The assertion and polling layer shared by the integration tests
 * (every program of INTEGRATION_TESTS in Makefile.am), on top
 * of harness.h (processes and HTTP): assertions on fetchd's JSON answers,
 * whose failure messages name the field, what was wanted, what came back and
 * the body; fetches through fetchd; bounded polls of the upstream's and
 * fetchd's counters; held upstream requests; fetchd's log; running a suite. */
#ifndef FETCHD_TESTS_TESTLIB_H
#define FETCHD_TESTS_TESTLIB_H

#include <check.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"

/* Bound on waiting for a state (held, queued, reloaded, ...), in ms. */
#define WAIT_MS 20000
/* How long counter_stays watches that "never happens", in ms. */
#define SETTLE_MS 1000

/* The body for a failure message. */
const char *body_of(const struct http_resp *r);

/* A short rendering of v for failure messages (one static buffer). */
const char *describe(const json_t *v);

/* GET 127.0.0.1:port/path; fails the test on a transport error. */
void get_ok(int port, const char *path, struct http_resp *r);

/* A counter of the test upstream's /stats?key=KEY ("hits" or "held");
 * -1 on error. */
long upstream_stat(int upstream_port, const char *key, const char *field);

/* An integer of fetchd's /v1/stats at a json_path ("pools.default.busy");
 * -1 when absent. */
long fetchd_stat(int fetchd_port, const char *path);

#define expect_status(r, want)                                                                     \
	ck_assert_msg((r)->status == (want), "HTTP status: want %d, got %ld; body: %.1000s",       \
		      (int)(want), (r)->status, body_of(r))

#define expect_str(r, path, want)                                                                  \
	do {                                                                                       \
		json_t *v_ = json_path((r)->json, (path));                                         \
		ck_assert_msg(json_is_string(v_) && strcmp(json_string_value(v_), (want)) == 0,    \
			      "%s: want \"%s\", got %s; body: %.1000s", (path), (want),            \
			      describe(v_), body_of(r));                                           \
	} while (0)

#define expect_int(r, path, want)                                                                  \
	do {                                                                                       \
		json_t *v_ = json_path((r)->json, (path));                                         \
		ck_assert_msg(json_is_integer(v_) && json_integer_value(v_) == (want),             \
			      "%s: want %lld, got %s; body: %.1000s", (path), (long long)(want),   \
			      describe(v_), body_of(r));                                           \
	} while (0)

#define expect_bool(r, path, want)                                                                 \
	do {                                                                                       \
		json_t *v_ = json_path((r)->json, (path));                                         \
		ck_assert_msg(json_is_boolean(v_) && json_is_true(v_) == (want),                   \
			      "%s: want %s, got %s; body: %.1000s", (path),                        \
			      (want) ? "true" : "false", describe(v_), body_of(r));                \
	} while (0)

#define expect_null(r, path)                                                                       \
	ck_assert_msg(json_is_null(json_path((r)->json, (path))),                                  \
		      "%s: want null, got %s; body: %.1000s", (path),                              \
		      describe(json_path((r)->json, (path))), body_of(r))

#define expect_absent(r, path)                                                                     \
	ck_assert_msg(json_path((r)->json, (path)) == NULL,                                        \
		      "%s: want absent, got %s; body: %.1000s", (path),                            \
		      describe(json_path((r)->json, (path))), body_of(r))

/* v equals the JSON text want. */
#define expect_json(r, path, want)                                                                 \
	do {                                                                                       \
		json_t *w_ = json_loads((want), JSON_DECODE_ANY, NULL);                            \
		json_t *v_ = json_path((r)->json, (path));                                         \
		ck_assert_msg(w_ != NULL, "bad expectation %s", (want));                           \
		ck_assert_msg(json_equal(v_, w_), "%s: want %s, got %s; body: %.1000s", (path),    \
			      (want), describe(v_), body_of(r));                                   \
		json_decref(w_);                                                                   \
	} while (0)

/* An error document with this HTTP status and code. */
#define expect_error(r, http, code)                                                                \
	do {                                                                                       \
		expect_status((r), (http));                                                        \
		expect_str((r), "error.code", (code));                                             \
		ck_assert_msg(json_is_string(json_path((r)->json, "error.message")) &&             \
				      json_string_length(json_path((r)->json, "error.message")) >  \
					      0,                                                   \
			      "error.message missing; body: %.1000s", body_of(r));                 \
	} while (0)

#define expect_message_has(r, needle)                                                              \
	do {                                                                                       \
		json_t *m_ = json_path((r)->json, "error.message");                                \
		ck_assert_msg(json_is_string(m_) && strstr(json_string_value(m_), (needle)),       \
			      "error.message should name \"%s\"; body: %.1000s", (needle),         \
			      body_of(r));                                                         \
	} while (0)

/* 502/504 errors carry the libcurl code. */
#define expect_curl_code(r)                                                                        \
	ck_assert_msg(json_is_integer(json_path((r)->json, "error.curl_code")) &&                  \
			      json_integer_value(json_path((r)->json, "error.curl_code")) > 0,     \
		      "error.curl_code missing; body: %.1000s", body_of(r))

/* Bounded polls, every 20 ms for at most ms milliseconds: the upstream
 * counter reaches want; it stays at want the whole time; fetchd's default
 * pool stat reaches at least at_least. */
bool wait_upstream_stat(int upstream_port, const char *key, const char *field, long want,
			unsigned ms);
bool upstream_stat_stays(int upstream_port, const char *key, const char *field, long want,
			 unsigned ms);
bool wait_pool_stat_at_least(int fetchd_port, const char *field, long at_least, unsigned ms);

/* fetchd's /v1/stats pools.default.FIELD; -1 when absent. */
long pool_stat_at(int fetchd_port, const char *field);

/* ---- the processes of the fixtures ---- */

/* The upstream of every test, and the fetchd of the fixtures below. */
extern struct upstream up;
extern struct fetchd daemon_;

/* [pool] threads of setup_default's fetchd. */
#define DEFAULT_THREADS 4

/* Checked fixtures: start up and daemon_ (with DEFAULT_THREADS workers);
 * start only up, for tests that start daemon_ with their own config; stop
 * whichever of the two runs. */
void setup_default(void);
void setup_upstream_only(void);
void teardown_default(void);

/* ---- fetches and the upstream ---- */

/* http://127.0.0.1:PORT/path of the upstream u (malloc'd). */
char *up_url(const struct upstream *u, const char *path);

/* POST /v1/fetch with obj (stolen); the call itself must succeed. */
void fetch(const struct fetchd *f, json_t *obj, struct http_resp *r);

/* POST /v1/fetch of one upstream path with GET and no options; the call
 * itself must succeed. */
void fetch_path(const struct fetchd *f, const struct upstream *u, const char *path,
		struct http_resp *r);

/* The upstream's /stats?key=KEY counter ("hits" or "held"); -1 on error. */
long upstream_counter(const struct upstream *u, const char *key, const char *field);
/* The counter reaches want within WAIT_MS. */
bool wait_counter(const struct upstream *u, const char *key, const char *field, long want);
/* The counter stays at want for SETTLE_MS. */
bool counter_stays(const struct upstream *u, const char *key, const char *field, long want);

/* A value of fetchd's /v1/stats for the default pool; -1 when absent. */
long pool_stat(const struct fetchd *f, const char *field);
/* pools.default.FIELD reaches at least at_least within WAIT_MS. */
bool wait_pool_stat(const struct fetchd *f, const char *field, long at_least);

/* Start n fetches of /hold?key=key through f and wait until the upstream
 * holds all of them; fails the test otherwise. */
void hold_workers(const struct fetchd *f, const struct upstream *u, struct bg_request **bg, int n,
		  const char *key);
/* Release n requests held under key, every one when n <= 0; the upstream
 * must answer 200. Returns how many it released, -1 when it does not say. */
long release_held(const struct upstream *u, const char *key, int n);
/* Join n background fetches of /hold: each a 200 document with status 200. */
void join_held(struct bg_request **bg, int n);

/* /healthz is ok and a normal fetch of the upstream's /json is answered
 * correctly. */
void expect_serving(const struct fetchd *f, const struct upstream *u);

/* ---- fetchd's log ---- */

/* Some line of log holds both a and b. */
bool log_has_line(const char *log, const char *a, const char *b);
/* The same for everything fetchd f has logged so far. */
bool fetchd_log_has_line(const struct fetchd *f, const char *a, const char *b);

/* ---- fetchd as a process (the ops suites) ---- */

/* Bound on a draining fetchd's exit, in ms. */
#define EXIT_MS 60000

/* The JSON text {"url": "<the upstream u's path>"} (malloc'd). */
char *fetch_body(const struct upstream *u, const char *path);
/* A fetch of the upstream u's path through f is a 200 document with
 * status 200. */
void expect_fetch_ok(const struct fetchd *f, const struct upstream *u, const char *path);
/* Wait until pools.default.field == want. */
bool wait_pool_stat_eq(const struct fetchd *f, const char *field, long want);
/* Number of (non-overlapping) occurrences of needle in fetchd's log. */
int log_count(const struct fetchd *f, const char *needle);
/* log_count reaches at_least within WAIT_MS. */
bool wait_log_count(const struct fetchd *f, const char *needle, int at_least);
/* fetchd's log on stderr, between markers. */
void dump_log(const struct fetchd *f);
/* Wait up to EXIT_MS for fetchd to exit (no signal is sent here). true
 * when it exited with status 0; otherwise why says how it ended. */
bool exit_verdict(struct fetchd *f, char *why, size_t len);
/* exit_verdict, failing the test (with the log on stderr) unless 0. */
void expect_exit_0(struct fetchd *f);

/* ---- the security suites (check_security_*) ---- */

/* The upstream counter key was never hit. */
#define expect_no_hits(key)                                                                        \
	do {                                                                                       \
		long h_ = upstream_counter(&up, (key), "hits");                                    \
		ck_assert_msg(h_ == 0, "upstream key '%s' was hit %ld times; want never", (key),   \
			      h_);                                                                 \
	} while (0)

/* An upstream URL that answers 302 with Location: target. */
char *redirect_to(const char *target);
/* POST /v1/fetch of {"url": url} through f; the call itself must succeed. */
void fetch_url(const struct fetchd *f, const char *url, struct http_resp *r);
/* POST /v1/fetch with a literal JSON text. */
void fetch_text(const struct fetchd *f, const char *body, struct http_resp *r);
/* busy and queued both 0 (polled, bounded). */
bool wait_idle(const struct fetchd *f);
/* The end state of a shared daemon after every case of its TCase. */
void expect_clean_daemon(const struct fetchd *f);

/* The daemons of the security suites, each started once per TCase
 * (unchecked fixtures, in the runner process) so that the cases of a TCase
 * hit the same daemon, with the upstream up: */
extern struct fetchd guard_d; /* loopback denied (no --allow), 4 threads */
/* --allow 127.0.0.1/32, small pool, small limits: 2 threads, queue_limit 4,
 * max_request_bytes 64K, max_response_bytes 1M */
extern struct fetchd main_d;
extern struct fetchd big_d; /* --allow 127.0.0.1/32, default request size, 2 threads */
extern struct fetchd own_d; /* started by the test itself (checked fixture) */
void guard_setup(void);
void guard_teardown(void);
void main_setup(void);
void main_teardown(void);
/* Checked fixture before each case on main_d: release whatever a case may
 * hold at the upstream (so one failed case does not starve the next) and
 * wait until nothing is in flight. */
void main_settle(void);
void big_setup(void);
void big_teardown(void);
void own_setup(void);
void own_teardown(void);

/* ---- running ---- */

/* Run every test of s with this output mode; EXIT_SUCCESS when none
 * failed, else EXIT_FAILURE. */
int run_suite(Suite *s, enum print_output mode);

#endif
