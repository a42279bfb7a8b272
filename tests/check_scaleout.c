/* Scale-out behind a load balancer, against real processes: HAProxy
 * (Debian's haproxy) runs contrib/haproxy/fetchd.cfg in front of three
 * fetchd instances with [server] lame_duck, under steady load, while each
 * instance in turn is stopped with SIGTERM and started again (a rolling
 * restart). No request may fail or be lost, and a stopping instance must
 * stop receiving work once its /healthz answers 503. Only 127.0.0.1. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 150
#define INSTANCES 3
#define CLIENTS 4
/* HAProxy checks every CHECK_MS and takes an instance out after two
 * failures; the lame duck lasts far longer than that. */
#define CHECK_MS 100
#define LAME_DUCK_MS 2000

struct lb {
	pid_t pid;
	int port;
	char cfg[64], log[64];
};

/* contrib/haproxy/fetchd.cfg with its bind, its servers and its check
 * timing pointed at this test's processes; every other line as shipped. */
static void write_haproxy_cfg(struct lb *lb, const int *ports)
{
	const char *top = getenv("FETCHD_SRCDIR") ? getenv("FETCHD_SRCDIR") : "..";
	char *path = str_printf("%s/contrib/haproxy/fetchd.cfg", top), line[512];
	FILE *in = fopen(path, "r"), *out;
	int fd, server = 0;

	ck_assert_msg(in != NULL, "%s: %s", path, strerror(errno));
	memcpy(lb->cfg, "/tmp/fetchd-haproxy-XXXXXX", sizeof("/tmp/fetchd-haproxy-XXXXXX"));
	fd = mkstemp(lb->cfg);
	ck_assert_int_ge(fd, 0);
	out = fdopen(fd, "w");
	while (fgets(line, sizeof(line), in) != NULL) {
		const char *t = line + strspn(line, " \t");

		if (strncmp(t, "bind ", 5) == 0)
			fprintf(out, "\tbind 127.0.0.1:%d\n", lb->port);
		else if (strncmp(t, "default-server ", 15) == 0)
			fprintf(out, "\tdefault-server check inter %d fall 2 rise 1\n", CHECK_MS);
		else if (strncmp(t, "server ", 7) == 0) {
			ck_assert_int_lt(server, INSTANCES);
			fprintf(out, "\tserver fetchd%d 127.0.0.1:%d\n", server + 1, ports[server]);
			server++;
		} else
			fputs(line, out);
	}
	ck_assert_int_eq(server, INSTANCES);
	fclose(in);
	fclose(out);
	free(path);
}

static void haproxy_start(struct lb *lb, const int *ports)
{
	int fd;

	lb->port = closed_port();
	write_haproxy_cfg(lb, ports);
	memcpy(lb->log, "/tmp/fetchd-haproxy-log-XXXXXX", sizeof("/tmp/fetchd-haproxy-log-XXXXXX"));
	fd = mkstemp(lb->log);
	ck_assert_int_ge(fd, 0);
	lb->pid = fork();
	ck_assert_int_ge(lb->pid, 0);
	if (lb->pid == 0) {
		/* it dies with the test, whatever path the test leaves by */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("haproxy", "haproxy", "-db", "-f", lb->cfg, (char *)NULL);
		_exit(127);
	}
	close(fd);
}

static void haproxy_stop(struct lb *lb)
{
	if (lb->pid > 0) {
		kill(lb->pid, SIGTERM);
		waitpid(lb->pid, NULL, 0);
		lb->pid = 0;
	}
	unlink(lb->cfg);
	unlink(lb->log);
}

static void start_instance(struct fetchd *f, int port)
{
	char *listen = str_printf("127.0.0.1:%d", port);
	char *extra = str_printf("lame_duck = %dms\n", LAME_DUCK_MS);
	struct fetchd_opts o = {.extra_config = extra, .allow_loopback = true, .listen = listen};

	fetchd_start(f, &o);
	free(extra);
	free(listen);
}

/* ---- steady load through HAProxy ---- */

struct load {
	int port;
	char *body;
	atomic_bool stop;
	atomic_long ok, failed;
	char first_failure[512];
	pthread_mutex_t lock;
};

static void *client(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		struct http_resp r;
		int rc = http_post_json(l->port, "/v1/fetch", l->body, &r);
		json_t *status = rc == 0 ? json_path(r.json, "status") : NULL;

		if (rc == 0 && r.status == 200 && json_integer_value(status) == 200) {
			atomic_fetch_add(&l->ok, 1);
		} else {
			pthread_mutex_lock(&l->lock);
			if (atomic_fetch_add(&l->failed, 1) == 0)
				snprintf(l->first_failure, sizeof(l->first_failure),
					 "rc %d, HTTP %ld: %.300s", rc, rc == 0 ? r.status : 0,
					 rc == 0 ? body_of(&r) : "");
			pthread_mutex_unlock(&l->lock);
		}
		if (rc == 0)
			http_resp_free(&r);
	}
	return NULL;
}

/* Milliseconds of the day of a log line's timestamp
 * ("2026-12-03T17:30:48.913Z ..."), or -1. */
static long line_ms(const char *line)
{
	int h, m, s, ms;

	if (sscanf(line, "%*4d-%*2d-%*2dT%2d:%2d:%2d.%3dZ", &h, &m, &s, &ms) != 4)
		return -1;
	return ((h * 60L + m) * 60L + s) * 1000L + ms;
}

/* How long after its lame duck began an instance still took fetches: the
 * last access line of /v1/fetch after "lame duck for", in ms. */
static long work_after_lame_duck_ms(const char *log)
{
	const char *lame = strstr(log, "lame duck for"), *p;
	long start, last = 0;

	ck_assert_msg(lame != NULL, "the instance logged no lame duck:\n%.2000s", log);
	while (lame > log && lame[-1] != '\n')
		lame--;
	start = line_ms(lame);
	for (p = lame; (p = strstr(p, "\n")) != NULL;) {
		p++;
		if (strstr(p, "access ") == NULL ||
		    strncmp(strstr(p, "access "), "access ", 7) != 0)
			continue;
		const char *eol = strchr(p, '\n');
		const char *path = strstr(p, "path=/v1/fetch");

		if (path != NULL && (eol == NULL || path < eol) && line_ms(p) >= start)
			last = line_ms(p) - start;
	}
	return last;
}

START_TEST(test_rolling_restart_behind_haproxy_loses_nothing)
{
	struct fetchd f[INSTANCES];
	int ports[INSTANCES];
	struct lb lb = {0};
	struct load load = {0};
	pthread_t threads[CLIENTS];
	char *url = up_url(&up, "/json");
	struct http_resp r;

	for (int i = 0; i < INSTANCES; i++) {
		ports[i] = closed_port();
		start_instance(&f[i], ports[i]);
	}
	haproxy_start(&lb, ports);
	load.port = lb.port;
	load.body = str_printf("{\"url\": \"%s\", \"fields\": [\"status\"]}", url);
	pthread_mutex_init(&load.lock, NULL);
	/* HAProxy is up and has found the instances */
	for (uint64_t end = now_ms() + WAIT_MS;; sleep_ms(100)) {
		if (http_post_json(lb.port, "/v1/fetch", load.body, &r) == 0) {
			long status = r.status;

			http_resp_free(&r);
			if (status == 200)
				break;
		}
		ck_assert_msg(now_ms() < end, "HAProxy never answered a fetch");
	}
	sleep_ms(3 * CHECK_MS);
	for (int i = 0; i < CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, client, &load), 0);
	sleep_ms(500);
	for (int i = 0; i < INSTANCES; i++) {
		char *log;
		int status;

		ck_assert_int_eq(fetchd_signal(&f[i], SIGTERM), 0);
		status = fetchd_wait_exit(&f[i], 30000);
		ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "instance %d did not drain and exit 0 (%d)", i + 1, status);
		log = fetchd_log(&f[i]);
		long late = work_after_lame_duck_ms(log);
		ck_assert_msg(late < LAME_DUCK_MS / 2,
			      "instance %d still got fetches %ld ms into its %d ms lame duck: "
			      "HAProxy did not take it out on its 503",
			      i + 1, late, LAME_DUCK_MS);
		free(log);
		fetchd_stop(&f[i]);
		start_instance(&f[i], ports[i]);
		sleep_ms(5 * CHECK_MS); /* back in the backend */
	}
	sleep_ms(500);
	atomic_store(&load.stop, true);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(threads[i], NULL);
	ck_assert_msg(atomic_load(&load.failed) == 0,
		      "%ld of %ld requests failed during the rolling restart; first: %s",
		      atomic_load(&load.failed), atomic_load(&load.ok) + atomic_load(&load.failed),
		      load.first_failure);
	ck_assert_msg(atomic_load(&load.ok) >= 50, "only %ld requests went through",
		      atomic_load(&load.ok));
	haproxy_stop(&lb);
	for (int i = 0; i < INSTANCES; i++)
		fetchd_stop(&f[i]);
	pthread_mutex_destroy(&load.lock);
	free(load.body);
	free(url);
}
END_TEST

static Suite *scaleout_suite(void)
{
	Suite *s = suite_create("scaleout");
	TCase *tc = tcase_create("haproxy");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_add_test(tc, test_rolling_restart_behind_haproxy_loses_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(scaleout_suite(), CK_NORMAL);
}
