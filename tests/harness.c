/* Integration test harness: child processes, an HTTP client and a raw
 * TCP client. Start-up failures fail the running Check test; the HTTP
 * helpers return -1 and leave the verdict to the test. */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000
#define MAX_LOG_BYTES (16 * 1024 * 1024)

void harness_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "harness: curl_global_init failed\n");
		exit(EXIT_FAILURE);
	}
	signal(SIGPIPE, SIG_IGN);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && s != NULL, "out of memory");
	return s;
}

char *url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n * 3 + 1);

	ck_assert_msg(out != NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

json_t *json_path(json_t *root, const char *path)
{
	char part[128];
	const char *p = path;

	while (root != NULL && *p != '\0') {
		size_t n = strcspn(p, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		p += n;
		if (*p == '.')
			p++;
		if (json_is_array(root)) {
			char *end;
			unsigned long i = strtoul(part, &end, 10);

			if (part[0] == '\0' || *end != '\0')
				return NULL;
			root = json_array_get(root, i);
		} else {
			root = json_object_get(root, part);
		}
	}
	return root;
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

/* SIGTERM, then wait up to timeout_ms; SIGKILL after that. Returns the
 * wait status, and sets *killed when SIGKILL was needed. */
static int child_stop(pid_t pid, unsigned timeout_ms, bool *killed)
{
	uint64_t end = now_ms() + timeout_ms;
	int status = 0;

	*killed = false;
	kill(pid, SIGTERM);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r == -1 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			break;
		sleep_ms(10);
	}
	*killed = true;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return status;
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : def;
}

void upstream_start(struct upstream *u)
{
	upstream_start_at(u, "127.0.0.1");
}

void upstream_start_at(struct upstream *u, const char *addr)
{
	const char *bin = env_or("UPSTREAM_BIN", "./tests/upstream");
	pid_t parent = getpid();
	uint64_t end = now_ms() + START_TIMEOUT_MS;
	char line[64];
	size_t len = 0;
	int fds[2];
	long port = -1;

	u->pid = -1;
	u->port = -1;
	ck_assert_msg(strncmp(addr, "127.", 4) == 0 && strlen(addr) < sizeof(u->addr),
		      "upstream address %s is not loopback", addr);
	snprintf(u->addr, sizeof(u->addr), "%s", addr);
	ck_assert_msg(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	u->pid = fork();
	ck_assert_msg(u->pid != -1, "fork: %s", strerror(errno));
	if (u->pid == 0) {
		child_tie_to_parent(parent);
		if (dup2(fds[1], STDOUT_FILENO) == -1)
			_exit(127);
		execl(bin, bin, "--bind", addr, (char *)NULL);
		fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	/* read up to the first newline, bounded in time */
	while (len < sizeof(line) - 1) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			break;
		n = read(fds[0], line + len, 1);
		if (n <= 0)
			break;
		len++;
		if (line[len - 1] == '\n')
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
	if (port == -1) {
		bool killed;

		child_stop(u->pid, 2000, &killed);
		u->pid = -1;
		ck_abort_msg("upstream %s did not print \"PORT n\" (got \"%s\")", bin, line);
	}
	u->port = (int)port;
}

void upstream_stop(struct upstream *u)
{
	bool killed;

	if (u->pid <= 0)
		return;
	child_stop(u->pid, STOP_TIMEOUT_MS, &killed);
	u->pid = -1;
}

char *fetchd_log(const struct fetchd *f)
{
	struct stat st;
	size_t len, got = 0;
	char *buf;

	if (fstat(f->log_fd, &st) != 0)
		st.st_size = 0;
	len = (size_t)st.st_size < MAX_LOG_BYTES ? (size_t)st.st_size : MAX_LOG_BYTES;
	buf = malloc(len + 1);
	ck_assert_msg(buf != NULL, "out of memory");
	while (got < len) {
		ssize_t n = pread(f->log_fd, buf + got, len - got, (off_t)got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return buf;
}

/* The port of the "listening on HOST:PORT" line, HOST being listen's
 * (127.0.0.1 or 0.0.0.0), or -1. */
static int log_listen_port(const char *log, const char *listen)
{
	char needle[64];
	const char *p;
	char *end;
	long port;

	snprintf(needle, sizeof(needle), "listening on %.*s:", (int)(strrchr(listen, ':') - listen),
		 listen);
	p = strstr(log, needle);
	if (p == NULL)
		return -1;
	p += strlen(needle);
	port = strtol(p, &end, 10);
	if (end == p || port <= 0 || port > 65535)
		return -1;
	return (int)port;
}

static void write_all_or_fail(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);

		ck_assert_msg(n > 0 || errno == EINTR, "write: %s", strerror(errno));
		if (n > 0)
			off += (size_t)n;
	}
}

/* The config file: the [server] listen line, then extra (may be NULL). */
static void write_config_fd(int fd, const char *listen, const char *extra)
{
	write_all_or_fail(fd, "[server]\nlisten = ");
	write_all_or_fail(fd, listen);
	write_all_or_fail(fd, "\n");
	if (extra != NULL)
		write_all_or_fail(fd, extra);
}

/* Variables a test's own environment never passes on to fetchd: a test
 * run under a service manager must not notify it. */
static const char *const scrubbed_env[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};

static bool env_name_is(const char *entry, const char *name_or_entry)
{
	size_t n = strcspn(name_or_entry, "=");

	return strncmp(entry, name_or_entry, n) == 0 && entry[n] == '=';
}

/* environ without the scrubbed names and the ones extra sets, then extra.
 * Built before fork: the child only calls execve. */
static char **build_env(const char *const *extra)
{
	extern char **environ;
	size_t n_env = 0, n_extra = 0, o = 0;
	char **envp;

	while (environ != NULL && environ[n_env] != NULL)
		n_env++;
	while (extra != NULL && extra[n_extra] != NULL)
		n_extra++;
	envp = calloc(n_env + n_extra + 1, sizeof(*envp));
	ck_assert_msg(envp != NULL, "out of memory");
	for (size_t i = 0; i < n_env; i++) {
		bool drop = false;

		for (size_t k = 0; k < sizeof(scrubbed_env) / sizeof(scrubbed_env[0]); k++)
			drop = drop || env_name_is(environ[i], scrubbed_env[k]);
		for (size_t k = 0; k < n_extra; k++)
			drop = drop || env_name_is(environ[i], extra[k]);
		if (!drop)
			envp[o++] = environ[i];
	}
	for (size_t k = 0; k < n_extra; k++)
		envp[o++] = (char *)extra[k];
	envp[o] = NULL;
	return envp;
}

/* Config files kept for running fetchds (keep_config). A failing Check
 * test exits without its teardown; atexit removes them then. */
#define MAX_KEPT 8
static char kept_conf[MAX_KEPT][64];

static void kept_conf_cleanup(void)
{
	for (int i = 0; i < MAX_KEPT; i++)
		if (kept_conf[i][0] != '\0')
			unlink(kept_conf[i]);
}

static void kept_conf_add(const char *path)
{
	static bool registered;

	if (!registered && atexit(kept_conf_cleanup) == 0)
		registered = true;
	for (int i = 0; i < MAX_KEPT; i++) {
		if (kept_conf[i][0] == '\0') {
			snprintf(kept_conf[i], sizeof(kept_conf[i]), "%s", path);
			return;
		}
	}
}

static void kept_conf_remove(const char *path)
{
	for (int i = 0; i < MAX_KEPT; i++)
		if (strcmp(kept_conf[i], path) == 0)
			kept_conf[i][0] = '\0';
}

/* Forget the temp files of a fetchd that is no longer running. */
static void fetchd_release_files(struct fetchd *f)
{
	if (!f->started)
		return;
	unlink(f->conf_path);
	kept_conf_remove(f->conf_path);
	if (f->log_fd >= 0)
		close(f->log_fd);
	f->log_fd = -1;
	f->started = false;
}

/* "LISTEN_PID=" and room for a pid, which the child writes itself. */
static char listen_pid_env[32] = "LISTEN_PID=";

/* pid in decimal at out (async-signal-safe: used between fork and exec). */
static void put_pid(char *out, pid_t pid)
{
	char digits[16];
	int n = 0;
	unsigned long v = (unsigned long)pid;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && n < (int)sizeof(digits));
	while (n > 0)
		*out++ = digits[--n];
	*out = '\0';
}

/* Start fetchd; 0 when it listens. Otherwise -1 with *why (malloc'd) and
 * fetchd's log in *log_out (malloc'd), and nothing left behind. */
static int fetchd_launch(struct fetchd *f, const struct fetchd_opts *o, char **why, char **log_out)
{
	static const struct fetchd_opts defaults;
	const char *bin = env_or("FETCHD_BIN", "./fetchd");
	const char *listen;
	char log_path[] = "/tmp/fetchd-it-log-XXXXXX";
	char *argv[6];
	char **envp;
	pid_t parent = getpid();
	uint64_t end;
	int conf_fd, argc = 0;

	if (o == NULL)
		o = &defaults;
	listen = o->listen != NULL ? o->listen : "127.0.0.1:0";
	*why = NULL;
	*log_out = NULL;
	memset(f, 0, sizeof(*f));
	f->pid = -1;
	f->port = -1;
	f->log_fd = -1;
	f->keep_config = o->keep_config;
	/* 0.0.0.0 only where the namespace has no interface but lo (see
	 * netns.c), or fetchd would listen on the host's network */
	ck_assert_msg(
		(strncmp(listen, "127.0.0.1:", 10) == 0 ||
		 (strncmp(listen, "0.0.0.0:", 8) == 0 && getenv("FETCHD_IN_NETNS") != NULL)) &&
			strlen(listen) < sizeof(f->listen),
		"fetchd listens on 127.0.0.1 only (asked for %s)", listen);
	snprintf(f->listen, sizeof(f->listen), "%s", listen);
	snprintf(f->conf_path, sizeof(f->conf_path), "/tmp/fetchd-it-conf-XXXXXX");
	conf_fd = mkostemp(f->conf_path, O_CLOEXEC);
	ck_assert_msg(conf_fd != -1, "mkstemp: %s", strerror(errno));
	write_config_fd(conf_fd, f->listen, o->extra_config);
	close(conf_fd);
	/* the log lives on in the open fd; nothing is left behind in /tmp */
	f->log_fd = mkostemp(log_path, O_CLOEXEC);
	if (f->log_fd == -1) {
		unlink(f->conf_path);
		ck_abort_msg("mkstemp: %s", strerror(errno));
	}
	unlink(log_path);
	f->started = true;

	argv[argc++] = (char *)bin;
	argv[argc++] = (char *)"-c";
	argv[argc++] = f->conf_path;
	if (o->allow_loopback) {
		argv[argc++] = (char *)"--allow";
		argv[argc++] = (char *)"127.0.0.1/32";
	}
	argv[argc] = NULL;
	if (o->activation_fd > 0) {
		size_t n = 0;
		const char **extra;

		while (o->env != NULL && o->env[n] != NULL)
			n++;
		extra = calloc(n + 3, sizeof(*extra));
		ck_assert_msg(extra != NULL, "out of memory");
		if (n > 0)
			memcpy(extra, o->env, n * sizeof(*extra));
		extra[n] = "LISTEN_FDS=1";
		extra[n + 1] = listen_pid_env; /* its digits are written in the child */
		envp = build_env(extra);
		free(extra);
	} else {
		envp = build_env(o->env);
	}

	f->pid = fork();
	if (f->pid == -1) {
		free(envp);
		fetchd_release_files(f);
		ck_abort_msg("fork: %s", strerror(errno));
	}
	if (f->pid == 0) {
		child_tie_to_parent(parent);
		if (dup2(f->log_fd, STDOUT_FILENO) == -1 || dup2(f->log_fd, STDERR_FILENO) == -1)
			_exit(127);
		if (o->activation_fd > 0) {
			if (dup2(o->activation_fd, 3) == -1)
				_exit(127);
			put_pid(listen_pid_env + strlen("LISTEN_PID="), getpid());
		}
		execve(bin, argv, envp);
		fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	free(envp);

	end = now_ms() + START_TIMEOUT_MS;
	for (;;) {
		char *log = fetchd_log(f);
		int status, port = log_listen_port(log, f->listen);

		if (port > 0) {
			/* read at start-up; gone now, so a failing test leaves nothing */
			if (!f->keep_config)
				unlink(f->conf_path);
			else
				kept_conf_add(f->conf_path);
			free(log);
			f->port = port;
			return 0;
		}
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = -1;
			fetchd_release_files(f);
			*why = str_printf("fetchd exited during start-up (status %d)", status);
			*log_out = log;
			return -1;
		}
		if (now_ms() >= end) {
			bool killed;

			child_stop(f->pid, 2000, &killed);
			f->pid = -1;
			fetchd_release_files(f);
			*why = str_printf("fetchd did not log \"listening on\" within %d ms",
					  START_TIMEOUT_MS);
			*log_out = log;
			return -1;
		}
		free(log);
		sleep_ms(20);
	}
}

void fetchd_start(struct fetchd *f, const struct fetchd_opts *o)
{
	char *why, *log;

	if (fetchd_launch(f, o, &why, &log) != 0)
		ck_abort_msg("%s; log:\n%s", why, log);
}

int fetchd_try_start(struct fetchd *f, const struct fetchd_opts *o)
{
	char *why, *log;

	if (fetchd_launch(f, o, &why, &log) == 0)
		return 0;
	fprintf(stderr, "harness: %s; log:\n%s", why, log);
	free(why);
	free(log);
	return -1;
}

void fetchd_write_config(const struct fetchd *f, const char *extra_config)
{
	char tmp[] = "/tmp/fetchd-it-conf-XXXXXX";
	int fd;

	ck_assert_msg(f->started && f->keep_config,
		      "fetchd_write_config needs a fetchd started with keep_config");
	fd = mkostemp(tmp, O_CLOEXEC);
	ck_assert_msg(fd != -1, "mkstemp: %s", strerror(errno));
	write_config_fd(fd, f->listen, extra_config);
	close(fd);
	/* fetchd never sees a half-written file */
	if (rename(tmp, f->conf_path) != 0) {
		int e = errno;

		unlink(tmp);
		ck_abort_msg("rename %s -> %s: %s", tmp, f->conf_path, strerror(e));
	}
}

int fetchd_signal(const struct fetchd *f, int sig)
{
	if (f->pid <= 0)
		return -1;
	return kill(f->pid, sig);
}

int fetchd_wait_exit(struct fetchd *f, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	if (f->pid <= 0)
		return -1;
	for (;;) {
		int status;
		pid_t r = waitpid(f->pid, &status, WNOHANG);

		if (r == f->pid) {
			f->pid = -1;
			return status;
		}
		if (r == -1 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			return -1;
		sleep_ms(10);
	}
}

void fetchd_stop(struct fetchd *f)
{
	bool killed = false;
	int status;
	char *log;

	if (f->pid <= 0) {
		fetchd_release_files(f);
		return;
	}
	status = child_stop(f->pid, STOP_TIMEOUT_MS, &killed);
	f->pid = -1;
	log = fetchd_log(f);
	fetchd_release_files(f);
	if (killed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "---- fetchd log ----\n%s---- end of fetchd log ----\n", log);
		ck_abort_msg("fetchd did not exit 0 after SIGTERM (%s, status %d)",
			     killed ? "killed after 15 s" : "exited", status);
	}
	free(log);
}

/* ---- HTTP client ---- */

struct growbuf {
	char *data;
	size_t len, cap;
	bool oom;
};

static size_t growbuf_cb(char *data, size_t size, size_t n, void *arg)
{
	struct growbuf *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL) {
			b->oom = true;
			return 0;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static char *growbuf_take(struct growbuf *b)
{
	char *p = b->data;

	if (p == NULL)
		p = calloc(1, 1);
	b->data = NULL;
	return p;
}

int http_request(int port, const char *method, const char *path, const char *body,
		 struct http_resp *r)
{
	return http_request_at("127.0.0.1", port, method, path, body, r);
}

int http_request_at(const char *addr, int port, const char *method, const char *path,
		    const char *body, struct http_resp *r)
{
	struct growbuf hdrs = {0}, out = {0};
	struct curl_slist *list = NULL;
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	uint64_t start = now_ms();
	CURL *c = NULL;
	CURLcode cc;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if ((size_t)snprintf(url, sizeof(url), "http://%s:%d%s", addr, port, path) >= sizeof(url)) {
		fprintf(stderr, "harness: URL too long: %s\n", path);
		return -1;
	}
	c = curl_easy_init();
	if (c == NULL)
		goto done;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HARNESS_HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, growbuf_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, growbuf_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdrs);
	list = curl_slist_append(list, "Expect:");
	if (body != NULL) {
		list = curl_slist_append(list, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (list == NULL)
		goto done;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	if (strcmp(method, "GET") == 0 && body == NULL)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		fprintf(stderr, "harness: %s %s: %s\n", method, url,
			errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto done;
	}
	if (hdrs.oom || out.oom)
		goto done;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	r->headers = growbuf_take(&hdrs);
	r->body_len = out.len;
	r->body = growbuf_take(&out);
	if (r->headers == NULL || r->body == NULL)
		goto done;
	r->json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
	rc = 0;
done:
	r->elapsed_ms = (double)(now_ms() - start);
	if (rc != 0)
		http_resp_free(r);
	free(hdrs.data);
	free(out.data);
	curl_slist_free_all(list);
	if (c != NULL)
		curl_easy_cleanup(c);
	return rc;
}

int http_get(int port, const char *path, struct http_resp *r)
{
	return http_request(port, "GET", path, NULL, r);
}

int http_post_json(int port, const char *path, const char *body, struct http_resp *r)
{
	return http_request(port, "POST", path, body, r);
}

int http_post_obj(int port, const char *path, json_t *obj, struct http_resp *r)
{
	char *body = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
	int rc;

	json_decref(obj);
	ck_assert_msg(body != NULL, "json_dumps failed");
	rc = http_post_json(port, path, body, r);
	free(body);
	return rc;
}

void http_resp_free(struct http_resp *r)
{
	free(r->headers);
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

char *http_resp_header(const struct http_resp *r, const char *name)
{
	size_t nlen = strlen(name);
	const char *line = r->headers;

	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *stop = eol != NULL ? eol : line + strlen(line);

		if ((size_t)(stop - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1;

			while (v < stop && (*v == ' ' || *v == '\t'))
				v++;
			while (stop > v &&
			       (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
				stop--;
			return strndup(v, (size_t)(stop - v));
		}
		line = eol != NULL ? eol + 1 : NULL;
	}
	return NULL;
}

/* ---- background requests ---- */

struct bg_request {
	pthread_t thread;
	int port;
	char *path;
	char *body;
	struct http_resp resp;
	int rc;
};

static void *bg_main(void *arg)
{
	struct bg_request *b = arg;

	b->rc = http_post_json(b->port, b->path, b->body, &b->resp);
	return NULL;
}

struct bg_request *bg_post_json(int port, const char *path, const char *body)
{
	struct bg_request *b = calloc(1, sizeof(*b));

	ck_assert_msg(b != NULL, "out of memory");
	b->port = port;
	b->path = strdup(path);
	b->body = strdup(body);
	ck_assert_msg(b->path != NULL && b->body != NULL, "out of memory");
	ck_assert_msg(pthread_create(&b->thread, NULL, bg_main, b) == 0, "pthread_create failed");
	return b;
}

struct bg_request *bg_post_obj(int port, const char *path, json_t *obj)
{
	char *body = json_dumps(obj, JSON_COMPACT);
	struct bg_request *b;

	json_decref(obj);
	ck_assert_msg(body != NULL, "json_dumps failed");
	b = bg_post_json(port, path, body);
	free(body);
	return b;
}

int bg_join(struct bg_request *b, struct http_resp *r)
{
	int rc;

	pthread_join(b->thread, NULL);
	rc = b->rc;
	*r = b->resp;
	free(b->path);
	free(b->body);
	free(b);
	return rc;
}

/* ---- raw TCP ---- */

int raw_connect(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

int raw_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

int closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	ck_assert_msg(fd != -1, "socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind: %s",
		      strerror(errno));
	ck_assert_msg(getsockname(fd, (struct sockaddr *)&sin, &len) == 0, "getsockname: %s",
		      strerror(errno));
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}
