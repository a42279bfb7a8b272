/* Helpers for the integration tests: start and stop the upstream test
 * server and fetchd as child processes, talk HTTP to them with libcurl,
 * and open raw TCP connections. Every wait is bounded. Only 127.0.0.1. */
#ifndef FETCHD_TESTS_HARNESS_H
#define FETCHD_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* Bound on every HTTP call a test makes, in seconds. */
#define HARNESS_HTTP_TIMEOUT_S 30

struct upstream {
	pid_t pid;
	int port;
	/* where it listens: "127.0.0.1" when empty; upstream_start_at sets
	 * another loopback address (127.0.0.0/8 all routes to lo) */
	char addr[16];
};

struct fetchd {
	pid_t pid;
	int port;
	int log_fd; /* stdout + stderr of fetchd; the file is already unlinked */
	char conf_path[64];
	char listen[64];  /* the [server] listen of the config file */
	bool keep_config; /* conf_path stays until fetchd_stop */
	bool started;	  /* log_fd (and conf_path) belong to this struct */
};

/* How to start fetchd. A zeroed struct (or NULL) is the bare config on
 * 127.0.0.1:0 with loopback upstreams denied; the tests' upstream lives on
 * loopback, so most callers set allow_loopback. */
struct fetchd_opts {
	/* appended to "[server]\nlisten = LISTEN\n" (so it starts on line 3);
	 * may be NULL */
	const char *extra_config;
	bool allow_loopback; /* --allow 127.0.0.1/32 */
	/* "127.0.0.1:PORT"; NULL means 127.0.0.1:0. Only 127.0.0.1, or
	 * "0.0.0.0:PORT" inside a private network namespace (netns.h,
	 * FETCHD_IN_NETNS set). */
	const char *listen;
	/* NULL-terminated "NAME=value" strings added to fetchd's environment
	 * (replacing an inherited NAME). NOTIFY_SOCKET, WATCHDOG_USEC and
	 * WATCHDOG_PID are never inherited from the test's environment. */
	const char *const *env;
	/* keep the config file (f->conf_path) while fetchd runs, so a test can
	 * rewrite it (fetchd_write_config) and send SIGHUP; removed by
	 * fetchd_stop */
	bool keep_config;
	/* > 0: a listening socket handed to fetchd as systemd's socket
	 * activation does (as descriptor 3, with LISTEN_FDS=1 and LISTEN_PID) */
	int activation_fd;
};

/* One HTTP answer. json is the parsed body, NULL when it is not JSON. */
struct http_resp {
	long status;
	char *headers; /* every header line as received, CRLF kept */
	char *body;    /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
	json_t *json;
	double elapsed_ms;
};

/* curl_global_init. Call once from main before any test runs. */
void harness_init(void);

/* Start $UPSTREAM_BIN (default ./tests/upstream) and read its "PORT n"
 * line. Fails the test when it does not come up within 10 s. */
void upstream_start(struct upstream *u);
/* upstream_start on another loopback address (127.X.Y.Z), to stand in for
 * another host. */
void upstream_start_at(struct upstream *u, const char *addr);
void upstream_stop(struct upstream *u);

/* Start $FETCHD_BIN (default ./fetchd) as o says (may be NULL): a temporary
 * config holding "[server]\nlisten = 127.0.0.1:0\n" and then
 * o->extra_config, and --allow 127.0.0.1/32 when o->allow_loopback. Waits up
 * to 10 s for the "listening on 127.0.0.1:PORT" log line. Fails the test
 * when fetchd does not come up. Reads like
 *   fetchd_start(&f, &(struct fetchd_opts){.extra_config = "...", .allow_loopback = true}); */
void fetchd_start(struct fetchd *f, const struct fetchd_opts *o);
/* The same, for tests that expect start-up to fail: returns -1 (with
 * fetchd's log on stderr and nothing left running) instead of failing the
 * test when fetchd exits during start-up, e.g. because its port is taken;
 * 0 when it listens. */
int fetchd_try_start(struct fetchd *f, const struct fetchd_opts *o);

/* Replace the config file (atomically, by rename) with
 * "[server]\nlisten = f->listen\n" and extra_config. Needs keep_config. */
void fetchd_write_config(const struct fetchd *f, const char *extra_config);

/* kill(2) fetchd; 0 or -1. */
int fetchd_signal(const struct fetchd *f, int sig);

/* Wait up to timeout_ms for fetchd to exit (no signal is sent). Returns
 * its wait status (WIFEXITED, ...), or -1 when it is still running. After
 * an exit, fetchd_log still works; fetchd_stop removes the files. */
int fetchd_wait_exit(struct fetchd *f, unsigned timeout_ms);

/* SIGTERM, wait up to 15 s (then SIGKILL), remove the temp files and
 * fail the test unless fetchd exited with status 0. When fetchd has
 * already exited (fetchd_wait_exit), only removes the files. */
void fetchd_stop(struct fetchd *f);

/* Everything fetchd has logged so far (malloc'd, NUL-terminated). */
char *fetchd_log(const struct fetchd *f);

/* HTTP to 127.0.0.1:port. body (may be NULL) is sent as
 * application/json. Returns 0 when an answer came, -1 on a transport
 * error (logged to stderr). */
int http_request(int port, const char *method, const char *path, const char *body,
		 struct http_resp *r);
/* http_request to another loopback address (an upstream_start_at's). */
int http_request_at(const char *addr, int port, const char *method, const char *path,
		    const char *body, struct http_resp *r);
int http_get(int port, const char *path, struct http_resp *r);
int http_post_json(int port, const char *path, const char *body, struct http_resp *r);
/* POST obj (stolen) as JSON. */
int http_post_obj(int port, const char *path, json_t *obj, struct http_resp *r);
void http_resp_free(struct http_resp *r);

/* The value of the first response header called name (any case), with
 * surrounding blanks trimmed; malloc'd, or NULL when absent. */
char *http_resp_header(const struct http_resp *r, const char *name);

/* A POST running on its own thread, to keep a fetch in flight. */
struct bg_request;
struct bg_request *bg_post_json(int port, const char *path, const char *body);
struct bg_request *bg_post_obj(int port, const char *path, json_t *obj);
/* Wait for it (bounded by the HTTP timeout) and take its answer. Returns
 * what http_request returned. */
int bg_join(struct bg_request *b, struct http_resp *r);

/* A TCP connection to 127.0.0.1:port, or -1. */
int raw_connect(int port);
/* Write all of data; 0 or -1. */
int raw_send(int fd, const void *data, size_t len);

/* Percent-encode everything but RFC 3986 unreserved bytes (malloc'd). */
char *url_encode(const char *s);
/* asprintf that fails the test instead of returning NULL. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
int closed_port(void);

uint64_t now_ms(void);
void sleep_ms(unsigned ms);

/* The value at a dotted path ("error.code", "results.0.status"), or NULL. */
json_t *json_path(json_t *root, const char *path);

#endif
