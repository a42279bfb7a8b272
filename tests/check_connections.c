/* Client connection limits over real sockets: max_connections (accepting
 * pauses at the cap and resumes when a connection closes) and
 * request_timeout (a request dripped byte by byte, slowloris, is cut off;
 * idle keep-alive time is not counted). Only 127.0.0.1; every wait is a
 * bounded poll. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 60
#define NOT_YET_MS 500	  /* how long "is not served yet" is watched */
#define ANSWER_MS 10000	  /* bound on an answer that must come */
#define DRIP_EVERY_MS 100 /* a slow client's pace */
#define DRIP_FOR_MS 8000  /* how long a slow client keeps dripping */

static const char HEALTHZ[] = "GET /healthz HTTP/1.1\r\nHost: fetchd\r\n\r\n";

/* Wait up to ms for fd to be readable (data or EOF). */
static bool readable_within(int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, (int)ms) == 1;
}

/* Read one HTTP answer (headers, then Content-Length bytes) within ms.
 * Returns its status, 0 when the server closed first, -1 on timeout. */
static int read_answer(int fd, unsigned ms)
{
	char buf[8192];
	size_t len = 0;
	uint64_t until = now_ms() + ms;

	for (;;) {
		char *end;
		ssize_t n;

		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL) {
			const char *cl = strstr(buf, "Content-Length:");
			size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
			int status = 0;

			if (len >= (size_t)(end + 4 - buf) + body &&
			    sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
				return status;
		}
		uint64_t now = now_ms();
		if (now >= until || len + 1 >= sizeof(buf) ||
		    !readable_within(fd, (unsigned)(until - now)))
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return 0;
		len += (size_t)n;
	}
}

/* A keep-alive connection that has been served once: fetchd has surely
 * accepted it. */
static int served_connection(int port)
{
	int fd = raw_connect(port);

	ck_assert_msg(fd >= 0, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, HEALTHZ, strlen(HEALTHZ)), 0);
	ck_assert_int_eq(read_answer(fd, ANSWER_MS), 200);
	return fd;
}

/* True when the peer has closed fd (EOF or reset) without sending data. */
static bool closed_by_peer(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Send `head`, then drip `drip` (a byte at a time, looping over it) until
 * fetchd closes the connection. Returns the ms from the first byte to
 * the close, or 0 when it never closed within DRIP_FOR_MS. */
static uint64_t drip_until_closed(int port, const char *head, const char *drip)
{
	int fd = raw_connect(port);
	uint64_t start, closed = 0;
	size_t i = 0;

	ck_assert_msg(fd >= 0, "cannot connect to fetchd");
	start = now_ms();
	ck_assert_int_eq(raw_send(fd, head, strlen(head)), 0);
	while (now_ms() - start < DRIP_FOR_MS) {
		if (readable_within(fd, DRIP_EVERY_MS)) {
			ck_assert_msg(closed_by_peer(fd), "fetchd answered a request not yet sent");
			closed = now_ms() - start;
			break;
		}
		/* MSG_NOSIGNAL: a send after the close must not kill the test */
		if (send(fd, drip + i, 1, MSG_NOSIGNAL) != 1) {
			closed = now_ms() - start;
			break;
		}
		i = drip[i + 1] ? i + 1 : 0;
	}
	close(fd);
	return closed;
}

static long connections_stat(const struct fetchd *f, const char *field)
{
	char path[64];

	snprintf(path, sizeof(path), "connections.%s", field);
	return fetchd_stat(f->port, path);
}

/* ---- max_connections ---- */

START_TEST(test_max_connections_pauses_accepting_until_one_closes)
{
	struct fetchd f;
	int a, b, c;

	fetchd_start(&f, &(struct fetchd_opts){.extra_config = "max_connections = 2\n",
					       .allow_loopback = true});
	a = served_connection(f.port);
	b = served_connection(f.port);
	/* the third waits in the kernel's backlog: connected, not served */
	c = raw_connect(f.port);
	ck_assert_msg(c >= 0, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(c, HEALTHZ, strlen(HEALTHZ)), 0);
	ck_assert_msg(read_answer(c, NOT_YET_MS) == -1,
		      "a third connection was served with max_connections = 2");
	close(a);
	ck_assert_int_eq(read_answer(c, ANSWER_MS), 200);
	close(c);
	/* b and the stats request itself */
	ck_assert_int_eq(connections_stat(&f, "open"), 2);
	ck_assert_int_eq(connections_stat(&f, "max"), 2);
	ck_assert_int_ge(connections_stat(&f, "accept_paused"), 1);
	ck_assert_msg(fetchd_log_has_line(&f, "max_connections (2) reached", "not accepting"),
		      "the pause was not logged");
	close(b);
	fetchd_stop(&f);
}
END_TEST

START_TEST(test_closed_connections_are_no_longer_counted)
{
	struct fetchd f;
	int fds[8];
	uint64_t until;

	/* each round fills the cap: it would stall at round 2 if closed
	 * connections were still counted */
	fetchd_start(&f, &(struct fetchd_opts){.extra_config = "max_connections = 8\n",
					       .allow_loopback = true});
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 8; i++)
			fds[i] = served_connection(f.port);
		for (int i = 0; i < 8; i++)
			close(fds[i]);
	}
	/* fetchd sees the closes a little later: poll until only the stats
	 * connection is left */
	until = now_ms() + ANSWER_MS;
	while (connections_stat(&f, "open") != 1 && now_ms() < until)
		sleep_ms(20);
	ck_assert_int_eq(connections_stat(&f, "open"), 1);
	ck_assert_int_ge(connections_stat(&f, "accepted"), 24);
	fetchd_stop(&f);
}
END_TEST

/* CPU seconds (user + system) pid has used so far. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long utime = 0, stime = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_msg(fgets(buf, sizeof(buf), f) != NULL, "cannot read %s", path);
	fclose(f);
	/* fields 14 and 15, counted after the ")" that ends the name */
	p = strrchr(buf, ')');
	ck_assert_msg(p != NULL && sscanf(p + 2,
					  "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
					  "%lu %lu",
					  &utime, &stime) == 2,
		      "cannot parse %s", path);
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Out of file descriptors, fetchd pauses accepting instead of retrying
 * accept() in a busy loop, and serves again once descriptors are free. */
START_TEST(test_running_out_of_descriptors_pauses_accepting)
{
	enum { N = 80 };
	struct fetchd f;
	struct rlimit rl = {.rlim_cur = 48, .rlim_max = 48};
	int fds[N], probe;
	double cpu;

	fetchd_start(&f, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 2\n",
					       .allow_loopback = true});
	ck_assert_msg(prlimit(f.pid, RLIMIT_NOFILE, &rl, NULL) == 0, "prlimit: %s",
		      strerror(errno));
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(f.port);
		ck_assert_msg(fds[i] >= 0, "cannot connect to fetchd");
	}
	sleep_ms(300);
	cpu = cpu_seconds(f.pid);
	sleep_ms(1000);
	cpu = cpu_seconds(f.pid) - cpu;
	ck_assert_msg(cpu < 0.5, "fetchd used %.2f s of CPU in 1 s while out of descriptors", cpu);
	ck_assert_msg(fetchd_log_has_line(&f, "accept:", "Too many open files"),
		      "the descriptor shortage was not logged");
	for (int i = 0; i < N; i++)
		close(fds[i]);
	probe = served_connection(f.port);
	close(probe);
	fetchd_stop(&f);
}
END_TEST

/* ---- request_timeout ---- */

#define SLOW_CONFIG "request_timeout = 1s\nidle_timeout = 30s\n"

/* A fetchd with request_timeout = 1s cuts a client that sends head, then
 * drips, off after about a second, and counts it. */
static void expect_cut_off_at_request_timeout(const char *head, const char *drip)
{
	struct fetchd f;
	uint64_t ms;

	fetchd_start(&f,
		     &(struct fetchd_opts){.extra_config = SLOW_CONFIG, .allow_loopback = true});
	ms = drip_until_closed(f.port, head, drip);
	ck_assert_msg(ms != 0, "a request dripped for %d ms was never cut off", DRIP_FOR_MS);
	ck_assert_msg(ms >= 900 && ms < 6000, "cut off after %llu ms, want about 1000",
		      (unsigned long long)ms);
	ck_assert_int_eq(connections_stat(&f, "request_timeouts"), 1);
	fetchd_stop(&f);
}

START_TEST(test_dripped_headers_are_cut_off_at_request_timeout)
{
	expect_cut_off_at_request_timeout("GET /healthz HTTP/1.1\r\nHost: fetchd\r\n",
					  "X-Drip: 1\r\n");
}
END_TEST

START_TEST(test_dripped_body_is_cut_off_at_request_timeout)
{
	expect_cut_off_at_request_timeout(
		"POST /v1/fetch HTTP/1.1\r\nHost: fetchd\r\n"
		"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
		"{\"url\": \"http://127.0.0.1/\"",
		" ");
}
END_TEST

START_TEST(test_idle_keepalive_time_is_not_request_time)
{
	struct fetchd f;
	int fd, fresh;

	fetchd_start(&f,
		     &(struct fetchd_opts){.extra_config = SLOW_CONFIG, .allow_loopback = true});
	/* idle before the first request, and between two requests, each
	 * longer than request_timeout */
	fresh = raw_connect(f.port);
	ck_assert_msg(fresh >= 0, "cannot connect to fetchd");
	fd = served_connection(f.port);
	sleep_ms(1500);
	ck_assert_int_eq(raw_send(fd, HEALTHZ, strlen(HEALTHZ)), 0);
	ck_assert_int_eq(read_answer(fd, ANSWER_MS), 200);
	ck_assert_int_eq(raw_send(fresh, HEALTHZ, strlen(HEALTHZ)), 0);
	ck_assert_int_eq(read_answer(fresh, ANSWER_MS), 200);
	close(fd);
	close(fresh);
	ck_assert_int_eq(connections_stat(&f, "request_timeouts"), 0);
	fetchd_stop(&f);
}
END_TEST

START_TEST(test_slow_request_within_request_timeout_is_served)
{
	struct fetchd f;
	int fd;

	fetchd_start(&f, &(struct fetchd_opts){.extra_config = "request_timeout = 5s\n",
					       .allow_loopback = true});
	fd = raw_connect(f.port);
	ck_assert_msg(fd >= 0, "cannot connect to fetchd");
	/* sent in pieces over about half a second */
	for (size_t off = 0, len = strlen(HEALTHZ); off < len; off += 4) {
		size_t n = len - off < 4 ? len - off : 4;

		ck_assert_int_eq(raw_send(fd, HEALTHZ + off, n), 0);
		sleep_ms(50);
	}
	ck_assert_int_eq(read_answer(fd, ANSWER_MS), 200);
	close(fd);
	ck_assert_int_eq(connections_stat(&f, "request_timeouts"), 0);
	fetchd_stop(&f);
}
END_TEST

static Suite *connections_suite(void)
{
	Suite *s = suite_create("connections");
	TCase *tc = tcase_create("max_connections");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_max_connections_pauses_accepting_until_one_closes);
	tcase_add_test(tc, test_closed_connections_are_no_longer_counted);
	tcase_add_test(tc, test_running_out_of_descriptors_pauses_accepting);
	suite_add_tcase(s, tc);

	tc = tcase_create("request_timeout");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_dripped_headers_are_cut_off_at_request_timeout);
	tcase_add_test(tc, test_dripped_body_is_cut_off_at_request_timeout);
	tcase_add_test(tc, test_idle_keepalive_time_is_not_request_time);
	tcase_add_test(tc, test_slow_request_within_request_timeout_is_served);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(connections_suite(), CK_NORMAL);
}
