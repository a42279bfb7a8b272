/* Operations tests (SPEC section 4): the real fetchd binary and its
 * process behaviour. SIGTERM/SIGINT drain, the drain timeout, SIGHUP live
 * reload, the sd_notify protocol on a NOTIFY_SOCKET this test owns, and
 * two instances sharing a port with reuse_port. Only 127.0.0.1. Every wait
 * is a bounded poll; nothing sleeps for a fixed long time. */
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120
#define EXIT_MS 60000  /* bound on a draining fetchd's exit */
#define NOT_YET_MS 500 /* how long "does not happen yet" is watched */

/* ---- assertions on answers ---- */

/* An error document: error.code and error.message are non-empty strings. */
#define expect_error_doc(r)                                                                    \
	do {                                                                                   \
		json_t *c_ = json_path((r)->json, "error.code");                               \
		json_t *m_ = json_path((r)->json, "error.message");                            \
		ck_assert_msg(json_is_string(c_) && json_string_length(c_) > 0 &&              \
				      json_is_string(m_) && json_string_length(m_) > 0,        \
			      "want an error document with error.code and error.message; "     \
			      "HTTP %ld, body: %.1000s",                                       \
			      (r)->status, body_of(r));                                        \
	} while (0)

/* ---- helpers ---- */

static char *fetch_body(const struct upstream *u, const char *path)
{
	char *url = up_url(u, path);
	json_t *obj = json_pack("{s:s}", "url", url);
	char *body = json_dumps(obj, JSON_COMPACT);

	ck_assert_msg(body != NULL, "json_dumps failed");
	json_decref(obj);
	free(url);
	return body;
}

static void expect_fetch_ok(const struct fetchd *f, const struct upstream *u, const char *path)
{
	struct http_resp r;

	fetch_path(f, u, path, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
}

/* Wait until pools.default.field == want. */
static bool wait_pool_stat_eq(const struct fetchd *f, const char *field, long want)
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

/* Number of (non-overlapping) occurrences of needle in fetchd's log. */
static int log_count(const struct fetchd *f, const char *needle)
{
	char *log = fetchd_log(f);
	int n = 0;

	for (const char *p = strstr(log, needle); p != NULL; p = strstr(p + strlen(needle), needle))
		n++;
	free(log);
	return n;
}

static bool wait_log_count(const struct fetchd *f, const char *needle, int at_least)
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

static void dump_log(const struct fetchd *f)
{
	char *log = fetchd_log(f);

	fprintf(stderr, "---- fetchd log ----\n%s---- end of fetchd log ----\n", log);
	free(log);
}

/* Wait up to EXIT_MS for fetchd to exit (no signal is sent here). true
 * when it exited with status 0; otherwise why says how it ended. */
static bool exit_verdict(struct fetchd *f, char *why, size_t len)
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

static void expect_exit_0(struct fetchd *f)
{
	char why[128];

	if (!exit_verdict(f, why, sizeof(why))) {
		dump_log(f);
		ck_abort_msg("%s", why);
	}
}

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

		if (hdr_end != NULL && clen >= 0 &&
		    len >= (size_t)(hdr_end - buf) + (size_t)clen)
			break;
		if (len >= sizeof(buf) - 1 || now >= end ||
		    poll(&pfd, 1, (int)(end - now)) <= 0)
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

/* ---- 1. SIGTERM / SIGINT drain ---- */

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

/* ---- 2. SIGHUP live reload ---- */

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
	ck_assert_msg(atomic_load(&l.done) >= LOAD_THREADS * LOAD_MIN_EACH,
		      "only %ld fetches ran", atomic_load(&l.done));
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
	ck_assert_msg(wait_pool_stat_eq(&daemon_, "threads", 2), "the second reload did not happen");
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

/* ---- 3. sd_notify ---- */

#define NOTIFY_MAX 4096

/* A NOTIFY_SOCKET this test owns: a thread reads it all the time (a full
 * datagram queue would block fetchd's sd_notify) and keeps every line. */
struct notify {
	char dir[64];
	char path[96];
	int fd;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	char *msgs[NOTIFY_MAX];
	size_t n;
};

/* The socket of a failing test (which exits without teardown) goes too. */
static char notify_leftover_path[96], notify_leftover_dir[64];

static void notify_leftover_cleanup(void)
{
	if (notify_leftover_path[0] != '\0')
		unlink(notify_leftover_path);
	if (notify_leftover_dir[0] != '\0')
		rmdir(notify_leftover_dir);
}

static void *notify_main(void *arg)
{
	struct notify *nt = arg;
	char buf[4096];

	while (!atomic_load(&nt->stop)) {
		struct pollfd pfd = {.fd = nt->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(nt->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		pthread_mutex_lock(&nt->lock);
		for (char *line = buf, *nl; line != NULL && *line != '\0';
		     line = nl != NULL ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl != NULL)
				*nl = '\0';
			if (nt->n < NOTIFY_MAX)
				nt->msgs[nt->n++] = strdup(line);
		}
		pthread_mutex_unlock(&nt->lock);
	}
	return NULL;
}

static void notify_open(struct notify *nt)
{
	struct sockaddr_un sun;

	memset(nt, 0, sizeof(*nt));
	snprintf(nt->dir, sizeof(nt->dir), "/tmp/fetchd-notify-XXXXXX");
	ck_assert_msg(mkdtemp(nt->dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(nt->path, sizeof(nt->path), "%s/notify", nt->dir);
	nt->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(nt->fd != -1, "socket: %s", strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", nt->path);
	if (bind(nt->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;

		close(nt->fd);
		rmdir(nt->dir);
		ck_abort_msg("bind %s: %s", nt->path, strerror(e));
	}
	snprintf(notify_leftover_path, sizeof(notify_leftover_path), "%s", nt->path);
	snprintf(notify_leftover_dir, sizeof(notify_leftover_dir), "%s", nt->dir);
	atexit(notify_leftover_cleanup);
	pthread_mutex_init(&nt->lock, NULL);
	atomic_init(&nt->stop, false);
	ck_assert_msg(pthread_create(&nt->thread, NULL, notify_main, nt) == 0, "pthread_create");
}

static void notify_close(struct notify *nt)
{
	atomic_store(&nt->stop, true);
	pthread_join(nt->thread, NULL);
	close(nt->fd);
	unlink(nt->path);
	rmdir(nt->dir);
	notify_leftover_path[0] = notify_leftover_dir[0] = '\0';
	for (size_t i = 0; i < nt->n; i++)
		free(nt->msgs[i]);
	pthread_mutex_destroy(&nt->lock);
}

/* The index of the first line at or after from that equals want (or, when
 * want ends in '*', starts with it); -1 when there is none yet. */
static long notify_find(struct notify *nt, size_t from, const char *want)
{
	size_t wlen = strlen(want);
	bool prefix = wlen > 0 && want[wlen - 1] == '*';
	long found = -1;

	pthread_mutex_lock(&nt->lock);
	for (size_t i = from; i < nt->n && found == -1; i++) {
		const char *m = nt->msgs[i];

		if (m != NULL && (prefix ? strncmp(m, want, wlen - 1) == 0 : strcmp(m, want) == 0))
			found = (long)i;
	}
	pthread_mutex_unlock(&nt->lock);
	return found;
}

static long notify_wait(struct notify *nt, size_t from, const char *want)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		long i = notify_find(nt, from, want);

		if (i >= 0 || now_ms() >= end)
			return i;
		sleep_ms(10);
	}
}

static size_t notify_count(struct notify *nt, const char *want)
{
	size_t n = 0;

	for (long i = notify_find(nt, 0, want); i >= 0; i = notify_find(nt, (size_t)i + 1, want))
		n++;
	return n;
}

/* Every line received so far, for failure messages (malloc'd). */
static char *notify_dump(struct notify *nt)
{
	size_t len = 1;
	char *s;

	pthread_mutex_lock(&nt->lock);
	for (size_t i = 0; i < nt->n; i++)
		len += strlen(nt->msgs[i] ? nt->msgs[i] : "") + 3;
	s = calloc(1, len);
	for (size_t i = 0; s != NULL && i < nt->n; i++) {
		strcat(s, nt->msgs[i] ? nt->msgs[i] : "");
		strcat(s, " | ");
	}
	pthread_mutex_unlock(&nt->lock);
	return s;
}

#define expect_notify(nt, from, want, idx)                                                     \
	do {                                                                                   \
		(idx) = notify_wait((nt), (from), (want));                                     \
		if ((idx) < 0) {                                                               \
			char *d_ = notify_dump(nt);                                            \
			ck_abort_msg("no \"%s\" on NOTIFY_SOCKET (after message %zu); got: %s", \
				     (want), (size_t)(from), d_ ? d_ : "?");                   \
		}                                                                              \
	} while (0)

START_TEST(test_sd_notify_ready_status_reloading_stopping_watchdog)
{
	struct notify nt;
	char *env_notify;
	const char *env[3];
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 4\n",
		.allow_loopback = true,
		.keep_config = true,
		.env = env,
	};
	struct bg_request *bg[2];
	char *hold;
	long ready, status, wd, busy2, reloading, ready2, stopping;
	struct http_resp r;

	notify_open(&nt);
	env_notify = str_printf("NOTIFY_SOCKET=%s", nt.path);
	env[0] = env_notify;
	env[1] = "WATCHDOG_USEC=2000000"; /* WATCHDOG_PID unset: any pid may ping */
	env[2] = NULL;
	fetchd_start(&daemon_, &o);

	expect_notify(&nt, 0, "READY=1", ready);
	expect_notify(&nt, 0, "STATUS=busy 0/4, queued 0", status);
	expect_notify(&nt, 0, "WATCHDOG=1", wd);
	(void)status;
	(void)wd;
	ck_assert_msg(notify_count(&nt, "READY=1") == 1, "READY=1 sent more than once at start");
	/* the watchdog keeps pinging (every second; WATCHDOG_USEC is 2 s) */
	expect_notify(&nt, (size_t)wd + 1, "WATCHDOG=1", wd);

	/* STATUS follows the pool's load */
	hold = fetch_body(&up, "/hold?key=n");
	for (int i = 0; i < 2; i++)
		bg[i] = bg_post_json(daemon_.port, "/v1/fetch", hold);
	ck_assert_msg(wait_counter(&up, "n", "held", 2), "the upstream did not hold 2 fetches");
	expect_notify(&nt, 0, "STATUS=busy 2/4, queued 0", busy2);
	ck_assert_msg(http_get(up.port, "/release?key=n", &r) == 0, "release");
	http_resp_free(&r);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(bg_join(bg[i], &r) == 0, "held fetch %d got no answer", i);
		expect_status(&r, 200);
		http_resp_free(&r);
	}
	free(hold);
	expect_notify(&nt, (size_t)busy2 + 1, "STATUS=busy 0/4, queued 0", status);

	/* SIGHUP: RELOADING=1, then READY=1 again; STATUS shows the new size */
	fetchd_write_config(&daemon_, "[pool]\nthreads = 5\n");
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGHUP), 0);
	expect_notify(&nt, (size_t)ready + 1, "RELOADING=1", reloading);
	expect_notify(&nt, (size_t)reloading + 1, "READY=1", ready2);
	expect_notify(&nt, (size_t)ready2 + 1, "STATUS=busy 0/5, queued 0", status);
	ck_assert_int_eq(pool_stat(&daemon_, "threads"), 5);

	/* SIGTERM: STOPPING=1, and exit 0 */
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGTERM), 0);
	expect_notify(&nt, (size_t)ready2 + 1, "STOPPING=1", stopping);
	(void)stopping;
	expect_exit_0(&daemon_);
	ck_assert_msg(notify_find(&nt, 0, "RELOADING=1") == reloading,
		      "RELOADING=1 was sent before SIGHUP");
	notify_close(&nt);
	free(env_notify);
}
END_TEST

/* Without WATCHDOG_USEC there is no watchdog ping, but STATUS still comes. */
START_TEST(test_sd_notify_no_watchdog_without_watchdog_usec)
{
	struct notify nt;
	char *env_notify;
	const char *env[2];
	struct fetchd_opts o = {
		.extra_config = "[pool]\nthreads = 3\n",
		.allow_loopback = true,
		.env = env,
	};
	long i;

	notify_open(&nt);
	env_notify = str_printf("NOTIFY_SOCKET=%s", nt.path);
	env[0] = env_notify;
	env[1] = NULL;
	fetchd_start(&daemon_, &o);
	expect_notify(&nt, 0, "READY=1", i);
	/* three STATUS lines: more than two seconds of the once-a-second timer */
	expect_notify(&nt, 0, "STATUS=busy 0/3, queued 0", i);
	expect_notify(&nt, (size_t)i + 1, "STATUS=*", i);
	expect_notify(&nt, (size_t)i + 1, "STATUS=*", i);
	ck_assert_msg(notify_find(&nt, 0, "WATCHDOG=1") == -1,
		      "WATCHDOG=1 sent although WATCHDOG_USEC is not set");
	fetchd_stop(&daemon_);
	expect_notify(&nt, 0, "STOPPING=1", i);
	notify_close(&nt);
	free(env_notify);
}
END_TEST

/* ---- 4. reuse_port ---- */

/* Two instances on one port with reuse_port = true; they are told apart
 * by their pool size (3 and 5) in /v1/stats. */
START_TEST(test_reuse_port_two_instances_share_the_port)
{
	static struct fetchd second;
	char *listen = NULL;
	int n3 = 0, n5 = 0, other = 0, failed = 0;
	bool up_both = false;

	second.pid = -1;
	for (int attempt = 0; attempt < 5 && !up_both; attempt++) {
		struct fetchd_opts a = {
			.extra_config = "[server]\nreuse_port = true\n[pool]\nthreads = 3\n",
			.allow_loopback = true,
		};
		struct fetchd_opts b = {
			.extra_config = "[server]\nreuse_port = true\n[pool]\nthreads = 5\n",
			.allow_loopback = true,
		};

		free(listen);
		listen = str_printf("127.0.0.1:%d", closed_port());
		a.listen = b.listen = listen;
		if (fetchd_try_start(&daemon_, &a) != 0)
			continue; /* somebody took the port meanwhile */
		if (fetchd_try_start(&second, &b) != 0) {
			fetchd_stop(&daemon_);
			continue;
		}
		up_both = true;
	}
	ck_assert_msg(up_both, "could not start two fetchd with reuse_port on one port");
	ck_assert_int_eq(daemon_.port, second.port);

	/* 50 fresh connections (each HTTP call is a new curl handle) */
	for (int i = 0; i < 50; i++) {
		long t = pool_stat(&daemon_, "threads");

		if (t == 3)
			n3++;
		else if (t == 5)
			n5++;
		else if (t == -1)
			failed++;
		else
			other++;
	}
	ck_assert_msg(failed == 0 && other == 0, "%d of 50 connections failed, %d odd answers",
		      failed, other);
	ck_assert_msg(n3 > 0 && n5 > 0,
		      "both instances should answer: threads=3 answered %d, threads=5 %d of 50", n3,
		      n5);
	/* and the fetches work through the shared port */
	for (int i = 0; i < 10; i++)
		expect_fetch_ok(&daemon_, &up, "/json");

	/* without reuse_port the port is taken */
	{
		struct fetchd third;
		const char *extra = "[pool]\nthreads = 2\n";
		struct fetchd_opts c = {.extra_config = extra, .allow_loopback = true,
					.listen = listen};

		fprintf(stderr, "check_ops: a fetchd without reuse_port must not start on the "
				"shared port; an \"Address already in use\" log is expected here\n");
		ck_assert_msg(fetchd_try_start(&third, &c) != 0,
			      "a third fetchd without reuse_port started on the shared port");
	}
	fetchd_stop(&second);
	free(listen);
}
END_TEST

/* A listening socket on 127.0.0.1 and an ephemeral port. */
static int listening_socket(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(fd, 16) == 0 &&
			      getsockname(fd, (struct sockaddr *)&sin, &len) == 0,
		      "bind/listen: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

/* systemd socket activation: fetchd serves on the socket it is handed
 * (descriptor 3, LISTEN_FDS=1, LISTEN_PID) instead of binding [server]
 * listen, and drains and exits 0 as usual. */
START_TEST(test_socket_activation_serves_on_the_passed_socket)
{
	struct fetchd f;
	int port, lfd = listening_socket(&port);
	struct fetchd_opts o = {.activation_fd = lfd, .allow_loopback = true};
	struct http_resp r;

	fetchd_start(&f, &o);
	close(lfd); /* fetchd holds the only copy now */
	ck_assert_int_eq(f.port, port);
	ck_assert_msg(fetchd_log_has_line(&f, "socket activation", "passed 1 socket"),
		      "fetchd did not say it was socket-activated");
	get_ok(f.port, "/healthz", &r);
	http_resp_free(&r);
	expect_fetch_ok(&f, &up, "/text?n=100");
	fetchd_stop(&f);
}
END_TEST

START_TEST(test_socket_activation_refuses_a_socket_that_is_not_listening)
{
	struct fetchd f;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct fetchd_opts o = {.activation_fd = fd};

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	fprintf(stderr, "check_ops: fetchd must refuse a passed socket that does not listen; "
			"its error is expected here\n");
	ck_assert_msg(fetchd_try_start(&f, &o) != 0,
		      "fetchd started on a passed socket that is not listening");
	close(fd);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("drain");

	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_sigterm_drains_in_flight_and_queued_then_exits_0);
	tcase_add_test(tc, test_sigint_drains_like_sigterm);
	tcase_add_test(tc, test_drain_timeout_aborts_with_error_documents_and_exits_0);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_sighup_resizes_pool_under_load_without_failures);
	tcase_add_test(tc, test_sighup_queue_limit_is_enforced);
	tcase_add_test(tc, test_sighup_changes_log_level);
	tcase_add_test(tc, test_sighup_rejects_broken_file_and_keeps_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("systemd");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_sd_notify_ready_status_reloading_stopping_watchdog);
	tcase_add_test(tc, test_sd_notify_no_watchdog_without_watchdog_usec);
	tcase_add_test(tc, test_reuse_port_two_instances_share_the_port);
	tcase_add_test(tc, test_socket_activation_serves_on_the_passed_socket);
	tcase_add_test(tc, test_socket_activation_refuses_a_socket_that_is_not_listening);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(ops_suite(), CK_NORMAL);
}
