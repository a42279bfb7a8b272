/* Thousands in flight (issue 14), and the descriptors they need.
 *
 * 2000 fetches held at once by an upstream
 * that answers none until told, through fetchd with threads = 2000, all
 * complete after the release, and /healthz answers on the loop thread
 * meanwhile. Functional, with generous bounds: it must pass under ASan on a
 * loaded 2-core machine.
 *
 * The clients are 2000 plain sockets of this process (a thread each would
 * be 2000 more threads on the same two cores), so the test raises its own
 * RLIMIT_NOFILE; the upstream and fetchd, started after, inherit it (fetchd
 * raises its own to its budget). The upstream listens with a deep accept
 * queue (tests/upstream.c), so 2000 workers connecting at once do not wait
 * for SYN retries.
 *
 * And [fetch] max_idle_connections: each worker keeps no more idle upstream
 * connections than its share. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define N_HELD 2000
#define TEST_TIMEOUT_S 600
#define HELD_WAIT_MS 180000
#define REPLY_WAIT_MS 180000
#define HEALTHZ_BOUND_MS 2000

struct client {
	int fd;
	char buf[16384];
	size_t len;
	int complete; /* headers and Content-Length bytes of body read */
};

static struct client *clients;

static void raise_nofile(void)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_msg(rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 3 * N_HELD + 256,
		      "RLIMIT_NOFILE hard limit %llu is too low for %d held fetches",
		      (unsigned long long)rl.rlim_cur, N_HELD);
}

/* Has c read a whole response (headers and Content-Length body)? */
static int client_complete(struct client *c)
{
	char *end, *cl;
	long body;

	c->buf[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
		return 0;
	cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl == NULL || cl > end)
		return 0;
	body = strtol(cl + strlen("\r\ncontent-length:"), NULL, 10);
	return (size_t)(end + 4 - c->buf) + (size_t)body <= c->len;
}

/* Read every client's response, polling all of them, within REPLY_WAIT_MS.
 * Returns how many completed. */
static int read_replies(void)
{
	struct pollfd *pfd = calloc(N_HELD, sizeof(*pfd));
	uint64_t end = now_ms() + REPLY_WAIT_MS;
	int done = 0;

	ck_assert_ptr_nonnull(pfd);
	while (done < N_HELD && now_ms() < end) {
		int n = 0;

		for (int i = 0; i < N_HELD; i++) {
			pfd[i].fd = clients[i].complete ? -1 : clients[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, N_HELD, 1000) <= 0)
			continue;
		for (int i = 0; i < N_HELD; i++) {
			struct client *c = &clients[i];
			ssize_t r;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
			if (r > 0)
				c->len += (size_t)r;
			if (client_complete(c) || r == 0 || c->len == sizeof(c->buf) - 1) {
				c->complete = 1;
				n++;
			}
		}
		done += n;
	}
	free(pfd);
	return done;
}

START_TEST(test_2000_held_fetches_all_complete_and_healthz_answers)
{
	char *url = up_url(&up, "/hold?key=scale");
	char *body = str_printf("{\"url\":\"%s\",\"fields\":[\"status\"]}", url);
	char *req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: fetchd\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body), body);
	uint64_t end;
	long held = -1, live;
	int ok = 0, done;
	struct http_resp r;

	fetchd_start(&daemon_, &(struct fetchd_opts){
				       .extra_config = "[pool]\nthreads = 2000\nqueue_limit = 100\n"
						       "[log]\naccess_log = false\n",
				       .allow_loopback = true});
	clients = calloc(N_HELD, sizeof(*clients));
	ck_assert_ptr_nonnull(clients);
	for (int i = 0; i < N_HELD; i++) {
		clients[i].fd = raw_connect(daemon_.port);
		ck_assert_msg(clients[i].fd >= 0, "connect %d: %s", i, strerror(errno));
		ck_assert_int_eq(raw_send(clients[i].fd, req, strlen(req)), 0);
	}
	/* every fetch reaches the upstream and is held there */
	end = now_ms() + HELD_WAIT_MS;
	while (now_ms() < end && (held = upstream_counter(&up, "scale", "held")) < N_HELD)
		sleep_ms(200);
	ck_assert_msg(held == N_HELD, "the upstream holds %ld of %d fetches after %d ms", held,
		      N_HELD, HELD_WAIT_MS);
	live = pool_stat(&daemon_, "live");
	ck_assert_int_eq(live, N_HELD);
	ck_assert_int_eq(pool_stat(&daemon_, "busy"), N_HELD);
	/* the loop thread answers while every worker is blocked */
	for (int i = 0; i < 5; i++) {
		get_ok(daemon_.port, "/healthz", &r);
		expect_status(&r, 200);
		ck_assert_msg(r.elapsed_ms < HEALTHZ_BOUND_MS,
			      "/healthz took %.0f ms with %d fetches held", r.elapsed_ms, N_HELD);
		http_resp_free(&r);
	}
	ck_assert_int_eq(release_held(&up, "scale", 0), N_HELD);
	done = read_replies();
	for (int i = 0; i < N_HELD; i++) {
		if (strncmp(clients[i].buf, "HTTP/1.1 200 ", 13) == 0 &&
		    strstr(clients[i].buf, "{\"status\":200}") != NULL)
			ok++;
		close(clients[i].fd);
	}
	ck_assert_msg(ok == N_HELD, "%d of %d fetches answered 200 (%d read); first: %.300s", ok,
		      N_HELD, done, clients[0].buf);
	expect_serving(&daemon_, &up);
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGTERM), 0);
	expect_exit_0(&daemon_);
	free(clients);
	free(req);
	free(body);
	free(url);
}
END_TEST

/* Connections upstream u has accepted for fetchd (this query's own left
 * out). */
static long accepted(const struct upstream *u)
{
	struct http_resp r;
	long n;

	get_ok(u->port, "/connections", &r);
	n = (long)json_integer_value(json_path(r.json, "accepted")) - 1;
	http_resp_free(&r);
	return n;
}

/* One worker with max_idle_connections = max_idle fetches from four
 * upstreams in turn, then from the first again: the connections the
 * first has accepted. */
static long refetch_first(unsigned max_idle)
{
	struct upstream u[4];
	struct fetchd f = {0};
	char *extra =
		str_printf("[pool]\nthreads = 1\n[fetch]\nmax_idle_connections = %u\n", max_idle);
	struct http_resp r;
	long n;

	for (int i = 0; i < 4; i++)
		upstream_start(&u[i]);
	fetchd_start(&f, &(struct fetchd_opts){.extra_config = extra, .allow_loopback = true});
	for (int i = 0; i <= 4; i++) {
		fetch_path(&f, &u[i % 4], "/json", &r);
		expect_status(&r, 200);
		expect_int(&r, "status", 200);
		http_resp_free(&r);
	}
	n = accepted(&u[0]);
	fetchd_stop(&f);
	for (int i = 0; i < 4; i++)
		upstream_stop(&u[i]);
	free(extra);
	return n;
}

/* [fetch] max_idle_connections bounds each worker's connection cache
 * (CURLOPT_MAXCONNECTS): allowed 2, the worker has closed the first
 * upstream's connection by the time it comes back to it; with the derived
 * default (5 per worker here) it reuses it. */
START_TEST(test_max_idle_connections_bounds_each_workers_cache)
{
	ck_assert_int_eq(refetch_first(2), 2);
	ck_assert_int_eq(refetch_first(0), 1);
}
END_TEST

static void setup(void)
{
	raise_nofile();
	setup_upstream_only();
}

static Suite *scale_suite(void)
{
	Suite *s = suite_create("scale");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown_default);
	tcase_add_test(tc, test_2000_held_fetches_all_complete_and_healthz_answers);
	tcase_add_test(tc, test_max_idle_connections_bounds_each_workers_cache);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(scale_suite(), CK_NORMAL);
}
