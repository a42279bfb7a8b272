/* fetchd under systemd: the sd_notify protocol (READY, STATUS, RELOADING,
 * STOPPING, WATCHDOG) on a NOTIFY_SOCKET this test owns, two instances
 * sharing a port with reuse_port, and socket activation (LISTEN_FDS).
 *
 * Operations tests (SPEC section 4): the real fetchd binary and its process
 * behaviour, each test with its own fetchd. Only 127.0.0.1. Every wait is a
 * bounded poll; nothing sleeps for a fixed long time. */
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
#include <sys/un.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* ---- sd_notify ---- */

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

#define expect_notify(nt, from, want, idx)                                                         \
	do {                                                                                       \
		(idx) = notify_wait((nt), (from), (want));                                         \
		if ((idx) < 0) {                                                                   \
			char *d_ = notify_dump(nt);                                                \
			ck_abort_msg("no \"%s\" on NOTIFY_SOCKET (after message %zu); got: %s",    \
				     (want), (size_t)(from), d_ ? d_ : "?");                       \
		}                                                                                  \
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

/* ---- reuse_port ---- */

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
		struct fetchd_opts c = {
			.extra_config = extra, .allow_loopback = true, .listen = listen};

		fprintf(stderr,
			"check_ops: a fetchd without reuse_port must not start on the "
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

static Suite *systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc;

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
	return run_suite(systemd_suite(), CK_NORMAL);
}
