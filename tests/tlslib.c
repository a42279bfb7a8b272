/* The TLS test infrastructure shared by check_tls and check_tls_features:
 * certificates made at test time, the TLS test upstream, nginx for HTTP/2,
 * fetchd trusting the test CA. See tlslib.h. */
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
#include "tlslib.h"

#define START_MS 10000 /* bound on a server coming up */
#define STOP_MS 15000  /* bound on a server going down after SIGTERM */

char cert_dir[64];
static pid_t cert_dir_owner;

/* ---- files ---- */

char *cert_path(const char *name)
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

void remove_tree(const char *dir)
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

void make_certs(void)
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
void child_tie_to_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
}

/* SIGTERM, wait up to STOP_MS, then SIGKILL. */
void child_stop(pid_t pid)
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
void tls_upstream_start(struct upstream *u, const char *cert, bool client_ca,
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
char *tls_url(const struct upstream *u, const char *host, const char *path)
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
CURLcode tls_get(const struct upstream *u, const char *path, const char *client_cert, long *status,
		 json_t **json)
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
long tls_stat(const struct upstream *u, const char *path, const char *field)
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
void tls_hold(const struct fetchd *f, const struct upstream *u, struct bg_request **bg, int n,
	      const char *key)
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

void tls_release(const struct upstream *u, const char *key, int n)
{
	char *path = str_printf("/release?key=%s", key);

	ck_assert_int_eq(tls_stat(u, path, "released"), n);
	free(path);
}

/* ---- nginx, the HTTP/2 server ---- */

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
void h2_start(struct h2_server *s)
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
	conf = str_printf(
		"master_process off;\n"
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
		s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->port, leaf, leaf_key);
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

void h2_stop(struct h2_server *s)
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
void tls_fetchd_start(struct fetchd *f, int threads, bool trust_ca, const char *extra)
{
	char *ca = cert_path("ca.pem");
	char *conf = str_printf("[pool]\nthreads = %d\n[fetch]\n%s%s%s%s", threads,
				trust_ca ? "ca_file = " : "", trust_ca ? ca : "",
				trust_ca ? "\n" : "", extra != NULL ? extra : "");

	fetchd_start(f, &(struct fetchd_opts){.extra_config = conf, .allow_loopback = true});
	free(conf);
	free(ca);
}

/* POST /v1/fetch of url, with "verify_tls": false when insecure. */
void fetch_tls_url(const struct fetchd *f, const char *url, bool insecure, struct http_resp *r)
{
	fetch(f,
	      insecure ? json_pack("{s:s,s:b}", "url", url, "verify_tls", 0)
		       : json_pack("{s:s}", "url", url),
	      r);
}

/* A 502 tls_error with libcurl's code 60 and an error naming why. */
void expect_tls_error(const struct http_resp *r, const char *why)
{
	json_t *e = json_path(r->json, "error.curl_error");

	expect_error(r, 502, "tls_error");
	expect_int(r, "error.curl_code", CURL_CODE_VERIFY);
	ck_assert_msg(json_is_string(e) && strstr(json_string_value(e), why) != NULL,
		      "error.curl_error should say \"%s\"; body: %.1000s", why, body_of(r));
}

/* The upstream's /json, fetched: a 200 document with its JSON. */
void expect_json_fetched(const struct http_resp *r)
{
	expect_status(r, 200);
	expect_int(r, "status", 200);
	expect_str(r, "json.hello", "world");
}

/* Wait (bounded) for the n-th "reloaded:" line of f's log. */
bool wait_reloaded(const struct fetchd *f, int n)
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

void reload_with(struct fetchd *f, const char *extra, int n)
{
	fetchd_write_config(f, extra);
	ck_assert_int_eq(fetchd_signal(f, SIGHUP), 0);
	ck_assert_msg(wait_reloaded(f, n), "fetchd did not log \"reloaded:\" after SIGHUP");
}
