/* HTTPS through fetchd, as it behaves today: verification on by default,
 * [fetch] ca_file, the four bad certificates (unknown CA, expired, wrong
 * name, self-signed), verify_tls and allow_insecure, http_version over
 * HTTP/1.1 and HTTP/2, credentials dropped on an https -> http redirect,
 * a reload taking ca_file away, and TLS sessions shared between workers
 * (TLS 1.2 and 1.3).
 *
 * The certificates are made at test time by tests/tls/mkcerts.sh
 * ($TLS_MKCERTS) into a temporary directory, removed at exit. The HTTP/1.1
 * cases run against tests/upstream --tls (tests/upstream_tls.c), which
 * counts full and resumed handshakes; the HTTP/2 cases against nginx
 * (nginx-light, Debian), run in one process (master_process off) as a child
 * of the test on an ephemeral port. Only 127.0.0.1; every process is
 * stopped by PID, every wait bounded. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 60
#define START_MS 10000 /* bound on a server coming up */
#define STOP_MS 15000  /* bound on a server going down after SIGTERM */
#define THREADS 4      /* fetchd's workers in the session-sharing tests */

/* libcurl's code for a certificate that does not verify (CURLE_PEER_FAILED_VERIFICATION) */
#define CURL_CODE_VERIFY 60

/* The certificates (tests/tls/mkcerts.sh), made once by main. */
static char cert_dir[64];
static pid_t cert_dir_owner;

/* ---- files ---- */

static char *cert_path(const char *name)
{
	return str_printf("%s/%s", cert_dir, name);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Check runs each test in a fork of main, which inherits this atexit
 * handler: only main's own exit removes the certificates. */
static void cert_dir_cleanup(void)
{
	if (cert_dir[0] != '\0' && getpid() == cert_dir_owner)
		remove_tree(cert_dir);
}

static void make_certs(void)
{
	const char *script = getenv("TLS_MKCERTS");
	char *cmd;
	int rc;

	if (script == NULL || *script == '\0')
		script = "tests/tls/mkcerts.sh";
	snprintf(cert_dir, sizeof(cert_dir), "/tmp/fetchd-tls-XXXXXX");
	if (mkdtemp(cert_dir) == NULL) {
		perror("check_tls: mkdtemp");
		exit(EXIT_FAILURE);
	}
	cert_dir_owner = getpid();
	atexit(cert_dir_cleanup);
	if (asprintf(&cmd, "sh '%s' '%s'", script, cert_dir) < 0)
		exit(EXIT_FAILURE);
	rc = system(cmd);
	free(cmd);
	if (rc != 0) {
		fprintf(stderr, "check_tls: %s %s failed (status %d); is openssl installed?\n",
			script, cert_dir, rc);
		exit(EXIT_FAILURE);
	}
}

/* ---- child processes ---- */

/* In the child after fork: die with the test process (a failing Check test
 * exits without running its teardown). */
static void child_tie_to_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
}

/* SIGTERM, wait up to STOP_MS, then SIGKILL. */
static void child_stop(pid_t pid)
{
	uint64_t end = now_ms() + STOP_MS;
	int status;

	kill(pid, SIGTERM);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return;
		}
		sleep_ms(10);
	}
}

/* ---- the TLS upstream ---- */

/* tests/upstream --tls DIR/CERT.pem DIR/CERT.key [--tls-client-ca
 * DIR/client-ca.pem] [--tls-max max_version], as harness.c's
 * upstream_start starts the plain one: up in u, stopped by upstream_stop.
 * Fails the test when it does not print "PORT n" within START_MS. */
static void tls_upstream_start(struct upstream *u, const char *cert, bool client_ca,
			       const char *max_version)
{
	const char *bin = getenv("UPSTREAM_BIN");
	char *cert_file = str_printf("%s/%s.pem", cert_dir, cert);
	char *key_file = str_printf("%s/%s.key", cert_dir, cert);
	char *ca_file = cert_path("client-ca.pem");
	const char *argv[10];
	pid_t parent = getpid();
	uint64_t end = now_ms() + START_MS;
	char line[64];
	size_t len = 0;
	long port = -1;
	int argc = 0, fds[2];

	if (bin == NULL || *bin == '\0')
		bin = "./tests/upstream";
	argv[argc++] = bin;
	argv[argc++] = "--tls";
	argv[argc++] = cert_file;
	argv[argc++] = key_file;
	if (client_ca) {
		argv[argc++] = "--tls-client-ca";
		argv[argc++] = ca_file;
	}
	if (max_version != NULL) {
		argv[argc++] = "--tls-max";
		argv[argc++] = max_version;
	}
	argv[argc] = NULL;
	u->pid = -1;
	u->port = -1;
	ck_assert_msg(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	u->pid = fork();
	ck_assert_msg(u->pid != -1, "fork: %s", strerror(errno));
	if (u->pid == 0) {
		child_tie_to_parent(parent);
		if (dup2(fds[1], STDOUT_FILENO) == -1)
			_exit(127);
		execv(bin, (char *const *)argv);
		fprintf(stderr, "check_tls: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	while (len < sizeof(line) - 1) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		uint64_t now = now_ms();

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0 ||
		    read(fds[0], line + len, 1) != 1)
			break;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	close(fds[0]);
	if (strncmp(line, "PORT ", 5) == 0) {
		char *e;

		port = strtol(line + 5, &e, 10);
		if (*e != '\n' || port <= 0 || port > 65535)
			port = -1;
	}
	free(cert_file);
	free(key_file);
	free(ca_file);
	if (port == -1) {
		child_stop(u->pid);
		u->pid = -1;
		ck_abort_msg("%s --tls %s did not print \"PORT n\" (got \"%s\")", bin, cert, line);
	}
	u->port = (int)port;
}

/* https://HOST:PORT/path of the upstream (malloc'd). */
static char *tls_url(const struct upstream *u, const char *host, const char *path)
{
	return str_printf("https://%s:%d%s", host, u->port, path);
}

struct buf {
	char *data;
	size_t len;
};

static size_t buf_cb(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->data, b->len + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->len += size * n;
	p[b->len] = '\0';
	b->data = p;
	return size * n;
}

/* GET https://127.0.0.1:PORT/path from the test itself, trusting the test
 * CA, with the client certificate DIR/client_cert.pem when not NULL.
 * Returns libcurl's code; *json is the parsed body (NULL when it is not
 * JSON, or on error). */
static CURLcode tls_get(const struct upstream *u, const char *path, const char *client_cert,
			long *status, json_t **json)
{
	char *url = tls_url(u, "127.0.0.1", path);
	char *ca = cert_path("ca.pem");
	char *cert = client_cert != NULL ? str_printf("%s/%s.pem", cert_dir, client_cert) : NULL;
	char *key = client_cert != NULL ? str_printf("%s/%s.key", cert_dir, client_cert) : NULL;
	struct buf b = {0};
	CURL *c = curl_easy_init();
	CURLcode cc;

	ck_assert_msg(c != NULL, "curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HARNESS_HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	if (cert != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(c);
	*status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	*json = cc == CURLE_OK && b.data != NULL ? json_loads(b.data, JSON_DECODE_ANY, NULL) : NULL;
	curl_easy_cleanup(c);
	free(b.data);
	free(url);
	free(ca);
	free(cert);
	free(key);
	return cc;
}

/* An integer of the TLS upstream's JSON answer to path; -1 on error. */
static long tls_stat(const struct upstream *u, const char *path, const char *field)
{
	json_t *j = NULL, *v;
	long status, n = -1;

	if (tls_get(u, path, NULL, &status, &j) == CURLE_OK && status == 200 &&
	    json_is_integer(v = json_object_get(j, field)))
		n = (long)json_integer_value(v);
	json_decref(j);
	return n;
}

/* Start n fetches of /hold?key=key of the TLS upstream through f and wait
 * until the upstream holds them all; fails the test otherwise. */
static void tls_hold(const struct fetchd *f, const struct upstream *u, struct bg_request **bg,
		     int n, const char *key)
{
	char *path = str_printf("/hold?key=%s", key);
	char *url = tls_url(u, "127.0.0.1", path);
	char *stats = str_printf("/stats?key=%s", key);
	uint64_t end = now_ms() + WAIT_MS;
	long held;

	for (int i = 0; i < n; i++)
		bg[i] = bg_post_obj(f->port, "/v1/fetch", json_pack("{s:s}", "url", url));
	while ((held = tls_stat(u, stats, "held")) != n && now_ms() < end)
		sleep_ms(20);
	ck_assert_msg(held == n, "the TLS upstream did not get %d held requests (held %ld)", n,
		      held);
	free(stats);
	free(url);
	free(path);
}

static void tls_release(const struct upstream *u, const char *key, int n)
{
	char *path = str_printf("/release?key=%s", key);

	ck_assert_int_eq(tls_stat(u, path, "released"), n);
	free(path);
}

/* ---- nginx, the HTTP/2 server ---- */

struct h2_server {
	pid_t pid;
	int port;
	char dir[64]; /* config, pid file, logs, temp paths */
};

/* The temp dirs of nginx instances of this process, removed at its exit
 * too (a failing test exits without its teardown). */
static char h2_dir_live[64];
static pid_t h2_dir_owner;

static void h2_dir_cleanup(void)
{
	if (h2_dir_live[0] != '\0' && getpid() == h2_dir_owner)
		remove_tree(h2_dir_live);
}

static char *file_text(const char *path)
{
	char buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n = 0;

	if (fp != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
	return str_printf("%s", buf);
}

/* nginx serving "hello h2\n" at every path over HTTPS with HTTP/2 (ALPN h2)
 * on 127.0.0.1, with the test leaf. The port is found by binding port 0
 * (closed_port); nginx runs as one process (master_process off), a child of
 * the test, in the foreground. Fails the test when it does not accept
 * connections within START_MS. */
static void h2_start(struct h2_server *s)
{
	const char *bin = getenv("NGINX_BIN");
	static const char *const temps[] = {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"};
	char *conf, *conf_path, *err_log, *leaf, *leaf_key;
	pid_t parent = getpid();
	uint64_t end;
	FILE *fp;

	if (bin == NULL || *bin == '\0')
		bin = "/usr/sbin/nginx";
	ck_assert_msg(access(bin, X_OK) == 0,
		      "%s not found: the HTTP/2 tests need nginx (scripts/test installs "
		      "nginx-light; or set NGINX_BIN)",
		      bin);
	s->pid = -1;
	s->port = closed_port();
	snprintf(s->dir, sizeof(s->dir), "/tmp/fetchd-h2-XXXXXX");
	ck_assert_msg(mkdtemp(s->dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(h2_dir_live, sizeof(h2_dir_live), "%s", s->dir);
	if (h2_dir_owner != getpid()) {
		h2_dir_owner = getpid();
		atexit(h2_dir_cleanup);
	}
	leaf = cert_path("leaf.pem");
	leaf_key = cert_path("leaf.key");
	conf = str_printf("master_process off;\n"
			  "pid %s/nginx.pid;\n"
			  "error_log %s/error.log warn;\n"
			  "events { worker_connections 64; }\n"
			  "http {\n"
			  "  access_log off;\n"
			  "  client_body_temp_path %s/client_body;\n"
			  "  proxy_temp_path %s/proxy;\n"
			  "  fastcgi_temp_path %s/fastcgi;\n"
			  "  uwsgi_temp_path %s/uwsgi;\n"
			  "  scgi_temp_path %s/scgi;\n"
			  "  server {\n"
			  "    listen 127.0.0.1:%d ssl http2;\n"
			  "    ssl_certificate %s;\n"
			  "    ssl_certificate_key %s;\n"
			  "    location / { default_type text/plain; return 200 \"hello h2\\n\"; }\n"
			  "  }\n"
			  "}\n",
			  s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->port, leaf,
			  leaf_key);
	conf_path = str_printf("%s/nginx.conf", s->dir);
	err_log = str_printf("%s/error.log", s->dir);
	for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
		char *d = str_printf("%s/%s", s->dir, temps[i]);

		ck_assert_msg(mkdir(d, 0700) == 0, "mkdir %s: %s", d, strerror(errno));
		free(d);
	}
	fp = fopen(conf_path, "w");
	ck_assert_msg(fp != NULL && fputs(conf, fp) >= 0 && fclose(fp) == 0, "writing %s failed",
		      conf_path);

	s->pid = fork();
	ck_assert_msg(s->pid != -1, "fork: %s", strerror(errno));
	if (s->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		child_tie_to_parent(parent);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		/* -e: the start-up error log, before the config's is read */
		execl(bin, bin, "-c", conf_path, "-p", s->dir, "-e", err_log, "-g", "daemon off;",
		      (char *)NULL);
		_exit(127);
	}
	end = now_ms() + START_MS;
	for (;;) {
		int fd = raw_connect(s->port), status;

		if (fd >= 0) {
			close(fd);
			break;
		}
		if (waitpid(s->pid, &status, WNOHANG) == s->pid || now_ms() >= end) {
			char *log = file_text(err_log);

			if (kill(s->pid, 0) == 0)
				child_stop(s->pid);
			s->pid = -1;
			ck_abort_msg("nginx did not come up on 127.0.0.1:%d; error.log:\n%s",
				     s->port, log);
		}
		sleep_ms(20);
	}
	free(conf);
	free(conf_path);
	free(err_log);
	free(leaf);
	free(leaf_key);
}

static void h2_stop(struct h2_server *s)
{
	if (s->pid > 0)
		child_stop(s->pid);
	s->pid = -1;
	remove_tree(s->dir);
	h2_dir_live[0] = '\0';
}

/* ---- fetchd ---- */

/* fetchd with [pool] threads = threads and, when trust_ca, [fetch] ca_file
 * = the test CA; extra (may be NULL) goes into [fetch]. Loopback allowed. */
static void tls_fetchd_start(struct fetchd *f, int threads, bool trust_ca, const char *extra)
{
	char *ca = cert_path("ca.pem");
	char *conf = str_printf("[pool]\nthreads = %d\n[fetch]\n%s%s%s%s", threads,
				trust_ca ? "ca_file = " : "", trust_ca ? ca : "", trust_ca ? "\n" : "",
				extra != NULL ? extra : "");

	fetchd_start(f, &(struct fetchd_opts){.extra_config = conf, .allow_loopback = true});
	free(conf);
	free(ca);
}

/* POST /v1/fetch of url, with "verify_tls": false when insecure. */
static void fetch_tls_url(const struct fetchd *f, const char *url, bool insecure,
			  struct http_resp *r)
{
	fetch(f,
	      insecure ? json_pack("{s:s,s:b}", "url", url, "verify_tls", 0)
		       : json_pack("{s:s}", "url", url),
	      r);
}

/* A 502 tls_error with libcurl's code 60 and an error naming why. */
static void expect_tls_error(const struct http_resp *r, const char *why)
{
	json_t *e = json_path(r->json, "error.curl_error");

	expect_error(r, 502, "tls_error");
	expect_int(r, "error.curl_code", CURL_CODE_VERIFY);
	ck_assert_msg(json_is_string(e) && strstr(json_string_value(e), why) != NULL,
		      "error.curl_error should say \"%s\"; body: %.1000s", why, body_of(r));
}

/* The upstream's /json, fetched: a 200 document with its JSON. */
static void expect_json_fetched(const struct http_resp *r)
{
	expect_status(r, 200);
	expect_int(r, "status", 200);
	expect_str(r, "json.hello", "world");
}

/* ---- verification ---- */

START_TEST(test_verification_is_on_by_default_and_an_unknown_ca_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, false, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "unable to get local issuer certificate");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_ca_file_trusts_the_private_ca)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;
	json_t *tls_ms;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "url", url);
	/* the handshake took time: TLS was spoken */
	tls_ms = json_path(r.json, "timing.tls_ms");
	ck_assert_msg(json_is_number(tls_ms) && json_number_value(tls_ms) > 0,
		      "timing.tls_ms should be > 0 over https; body: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* Each bad certificate is refused even though ca_file trusts the CA. */
START_TEST(test_expired_certificate_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "expired", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "certificate has expired");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_wrong_name_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	/* a leaf for wrong.example only, by the trusted CA, at 127.0.0.1 */
	tls_upstream_start(&u, "wrong-name", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "subject name");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_self_signed_certificate_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "self-signed", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "self-signed certificate");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* An upstream that requires a client certificate refuses fetchd, which has
 * none to give (TLS 1.2: the refusal comes inside the handshake). */
START_TEST(test_upstream_requiring_a_client_certificate_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", true, "1.2");
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_error(&r, 502, "tls_error");
	expect_curl_code(&r);
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- verify_tls and allow_insecure ---- */

START_TEST(test_verify_tls_false_without_allow_insecure_is_400)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, true, &r);
	expect_error(&r, 400, "invalid_request");
	expect_message_has(&r, "verify_tls");
	http_resp_free(&r);
	/* refused before any fetch: the upstream saw no handshake */
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 0);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "resumed"), 0);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_allow_insecure_lets_verify_tls_false_fetch_every_bad_certificate)
{
	/* unknown CA (no ca_file here), expired, wrong name, self-signed */
	static const char *const certs[] = {"leaf", "expired", "wrong-name", "self-signed"};
	struct upstream u[4];
	struct fetchd f;

	for (int i = 0; i < 4; i++)
		tls_upstream_start(&u[i], certs[i], false, NULL);
	tls_fetchd_start(&f, 2, false, "allow_insecure = true\n");
	for (int i = 0; i < 4; i++) {
		char *url = tls_url(&u[i], "127.0.0.1", "/json");
		struct http_resp r;

		fetch_tls_url(&f, url, true, &r);
		ck_assert_msg(r.status == 200, "%s with verify_tls false: want 200, got %ld: %.1000s",
			      certs[i], r.status, body_of(&r));
		expect_json_fetched(&r);
		http_resp_free(&r);
		/* allow_insecure only permits the opt-out: verification stays on */
		fetch_tls_url(&f, url, false, &r);
		ck_assert_msg(r.status == 502, "%s verified: want 502, got %ld: %.1000s", certs[i],
			      r.status, body_of(&r));
		expect_str(&r, "error.code", "tls_error");
		http_resp_free(&r);
		free(url);
	}
	fetchd_stop(&f);
	for (int i = 0; i < 4; i++)
		upstream_stop(&u[i]);
}
END_TEST

/* ---- HTTP versions ---- */

START_TEST(test_http_version_is_2_against_an_h2_server)
{
	struct h2_server s;
	struct fetchd f;
	struct http_resp r;
	char *url;

	h2_start(&s);
	tls_fetchd_start(&f, 2, true, NULL);
	url = str_printf("https://127.0.0.1:%d/", s.port);
	fetch_tls_url(&f, url, false, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "http_version", "2");
	expect_str(&r, "text", "hello h2\n");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	h2_stop(&s);
}
END_TEST

START_TEST(test_http_version_is_1_1_against_the_tls_upstream)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "http_version", "1.1");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- redirects ---- */

/* Fetch the TLS upstream's /redirect?to=TO with credentials and a plain
 * header; r is the document of the final /echo. */
static void fetch_redirect_with_credentials(const struct fetchd *f, const struct upstream *u,
					    const char *to, struct http_resp *r)
{
	char *enc = url_encode(to);
	char *path = str_printf("/redirect?status=302&to=%s", enc);
	char *url = tls_url(u, "127.0.0.1", path);

	fetch(f,
	      json_pack("{s:s,s:{s:s,s:s,s:s,s:s}}", "url", url, "headers", "Authorization",
			"Bearer secret", "Cookie", "session=abc", "Proxy-Authorization",
			"Basic cHJveHk6cHc=", "X-Plain", "kept"),
	      r);
	expect_status(r, 200);
	expect_int(r, "status", 200);
	expect_int(r, "history.0.status", 302);
	expect_str(r, "history.0.url", url);
	expect_str(r, "json.path", "/echo");
	expect_str(r, "json.headers.x-plain", "kept");
	free(url);
	free(path);
	free(enc);
}

START_TEST(test_https_to_http_redirect_drops_credentials)
{
	struct upstream u, plain;
	struct fetchd f;
	struct http_resp r;
	char *to;

	tls_upstream_start(&u, "leaf", false, NULL);
	upstream_start(&plain);
	tls_fetchd_start(&f, 2, true, NULL);

	/* within the https origin they are kept: the echo can see them */
	fetch_redirect_with_credentials(&f, &u, "/echo", &r);
	expect_str(&r, "json.headers.authorization", "Bearer secret");
	expect_str(&r, "json.headers.cookie", "session=abc");
	expect_str(&r, "json.headers.proxy-authorization", "Basic cHJveHk6cHc=");
	http_resp_free(&r);

	/* https -> http is another origin */
	to = up_url(&plain, "/echo");
	fetch_redirect_with_credentials(&f, &u, to, &r);
	expect_str(&r, "url", to);
	expect_absent(&r, "json.headers.authorization");
	expect_absent(&r, "json.headers.cookie");
	expect_absent(&r, "json.headers.proxy-authorization");
	http_resp_free(&r);
	free(to);
	fetchd_stop(&f);
	upstream_stop(&plain);
	upstream_stop(&u);
}
END_TEST

/* ---- reload ---- */

/* Wait (bounded) for the n-th "reloaded:" line of f's log. */
static bool wait_reloaded(const struct fetchd *f, int n)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		char *log = fetchd_log(f);
		const char *p = log;
		int seen = 0;

		while ((p = strstr(p, "reloaded:")) != NULL) {
			seen++;
			p++;
		}
		free(log);
		if (seen >= n)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

/* The worker that fetched under ca_file keeps its connection and the TLS
 * session; once a reload has taken ca_file away, neither may carry the old
 * trust: the next fetch is verified again and fails. */
START_TEST(test_reload_without_ca_file_verifies_the_next_fetch_again)
{
	struct fetchd_opts o = {.allow_loopback = true, .keep_config = true};
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *ca = cert_path("ca.pem");
	char *conf = str_printf("[pool]\nthreads = 1\n[fetch]\nca_file = %s\n", ca);
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	o.extra_config = conf;
	fetchd_start(&f, &o);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	http_resp_free(&r);

	fetchd_write_config(&f, "[pool]\nthreads = 1\n");
	ck_assert_int_eq(fetchd_signal(&f, SIGHUP), 0);
	ck_assert_msg(wait_reloaded(&f, 1), "fetchd did not log \"reloaded:\" after SIGHUP");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "unable to get local issuer certificate");
	http_resp_free(&r);
	free(url);
	free(conf);
	free(ca);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- TLS sessions shared between workers ---- */

/* One fetch makes a full handshake; then THREADS concurrent fetches hold
 * every worker, so THREADS - 1 of them open new connections on workers that
 * never talked to the upstream. With the share handle's SSL session cache
 * (CURL_LOCK_DATA_SSL_SESSION) they resume the first session: the upstream
 * counts one full handshake in all. */
static void check_sessions_shared(const char *max_version, long max_full)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	struct bg_request *bg[THREADS];
	char *url;
	long full, resumed;

	tls_upstream_start(&u, "leaf", false, max_version);
	tls_fetchd_start(&f, THREADS, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	http_resp_free(&r);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 1);

	tls_hold(&f, &u, bg, THREADS, "sessions");
	tls_release(&u, "sessions", THREADS);
	join_held(bg, THREADS);

	full = tls_stat(&u, "/tls-stats", "full");
	resumed = tls_stat(&u, "/tls-stats", "resumed");
	ck_assert_msg(full <= max_full && full + resumed >= THREADS && resumed >= THREADS - max_full,
		      "TLS %s: want at most %ld full handshake(s), the other new connections "
		      "resumed; got %ld full and %ld resumed",
		      max_version != NULL ? max_version : "1.3", max_full, full, resumed);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}

/* TLS 1.3: one of the new connections sometimes makes a second full
 * handshake (measured: 1 run in 6 plain, 1 in 2 under ASan: "2 full, 2
 * resumed"; TLS 1.2 never). libcurl 7.88 replaces the shared TLS 1.3
 * session each time a connection receives a new ticket, and a worker
 * that connects meanwhile may offer one the server does not take. Without
 * sharing every new connection is full ("4 full, 0 resumed"), which this
 * still fails; the README's HTTPS section states the limit. */
START_TEST(test_tls13_sessions_are_shared_between_workers)
{
	check_sessions_shared(NULL, 2);
}
END_TEST

START_TEST(test_tls12_sessions_are_shared_between_workers)
{
	check_sessions_shared("1.2", 1);
}
END_TEST

/* ---- the infrastructure itself ---- */

/* The mTLS upstream and the client certificates the next tests will hand
 * fetchd: the one by client-ca gets in, the one by another CA does not. */
START_TEST(test_upstream_requires_a_client_certificate_by_its_client_ca)
{
	struct upstream u;
	json_t *j = NULL;
	long status;

	tls_upstream_start(&u, "leaf", true, NULL);
	ck_assert_int_eq(tls_get(&u, "/json", "client", &status, &j), CURLE_OK);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(json_is_string(json_object_get(j, "hello")), "no /json from the mTLS upstream");
	json_decref(j);
	j = NULL;
	ck_assert_int_ne(tls_get(&u, "/json", "client-other", &status, &j), CURLE_OK);
	json_decref(j);
	j = NULL;
	ck_assert_int_ne(tls_get(&u, "/json", NULL, &status, &j), CURLE_OK);
	json_decref(j);
	upstream_stop(&u);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("verification");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_verification_is_on_by_default_and_an_unknown_ca_is_tls_error);
	tcase_add_test(tc, test_ca_file_trusts_the_private_ca);
	tcase_add_test(tc, test_expired_certificate_is_tls_error);
	tcase_add_test(tc, test_wrong_name_is_tls_error);
	tcase_add_test(tc, test_self_signed_certificate_is_tls_error);
	tcase_add_test(tc, test_upstream_requiring_a_client_certificate_is_tls_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("insecure");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_verify_tls_false_without_allow_insecure_is_400);
	tcase_add_test(tc, test_allow_insecure_lets_verify_tls_false_fetch_every_bad_certificate);
	suite_add_tcase(s, tc);

	tc = tcase_create("http_version");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_http_version_is_2_against_an_h2_server);
	tcase_add_test(tc, test_http_version_is_1_1_against_the_tls_upstream);
	suite_add_tcase(s, tc);

	tc = tcase_create("redirects");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_https_to_http_redirect_drops_credentials);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_reload_without_ca_file_verifies_the_next_fetch_again);
	suite_add_tcase(s, tc);

	tc = tcase_create("sessions");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_tls13_sessions_are_shared_between_workers);
	tcase_add_test(tc, test_tls12_sessions_are_shared_between_workers);
	suite_add_tcase(s, tc);

	tc = tcase_create("infrastructure");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_upstream_requires_a_client_certificate_by_its_client_ca);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	make_certs();
	return run_suite(tls_suite(), CK_NORMAL);
}
