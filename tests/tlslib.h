#ifndef FETCHD_TESTS_TLSLIB_H
#define FETCHD_TESTS_TLSLIB_H

/* The TLS test infrastructure of check_tls and check_tls_features.
 *
 * The certificates are made at test time by tests/tls/mkcerts.sh
 * ($TLS_MKCERTS) into a temporary directory (cert_dir), removed at exit.
 * The HTTP/1.1 cases run against tests/upstream --tls
 * (tests/upstream_tls.c), which counts full and resumed handshakes; the
 * HTTP/2 cases against nginx (nginx-light, Debian), run in one process
 * (master_process off) as a child of the test on an ephemeral port. Only
 * 127.0.0.1; every process is stopped by PID, every wait bounded. */
#include <stdbool.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"
#include "testlib.h"

/* libcurl's code for a certificate that does not verify
 * (CURLE_PEER_FAILED_VERIFICATION) */
#define CURL_CODE_VERIFY 60

/* The certificates (tests/tls/mkcerts.sh), made once by make_certs. */
extern char cert_dir[64];

/* Make the certificates; call once from main (exits on failure). */
void make_certs(void);

/* DIR/name (malloc'd). */
char *cert_path(const char *name);

/* Remove a directory tree. */
void remove_tree(const char *dir);

/* In the child after fork: die with the test process (a failing Check
 * test exits without running its teardown). */
void child_tie_to_parent(pid_t parent);

/* SIGTERM, wait a bounded time, then SIGKILL. */
void child_stop(pid_t pid);

/* tests/upstream --tls DIR/CERT.pem DIR/CERT.key [--tls-client-ca
 * DIR/client-ca.pem] [--tls-max max_version], as harness.c's
 * upstream_start starts the plain one: up in u, stopped by upstream_stop.
 * Fails the test when it does not print "PORT n" in time. */
void tls_upstream_start(struct upstream *u, const char *cert, bool client_ca,
			const char *max_version);

/* https://HOST:PORT/path of the upstream (malloc'd). */
char *tls_url(const struct upstream *u, const char *host, const char *path);

/* GET https://127.0.0.1:PORT/path from the test itself, trusting the test
 * CA, with the client certificate DIR/client_cert.pem when not NULL.
 * Returns libcurl's code; *json is the parsed body (NULL when it is not
 * JSON, or on error). */
CURLcode tls_get(const struct upstream *u, const char *path, const char *client_cert, long *status,
		 json_t **json);

/* An integer of the TLS upstream's JSON answer to path; -1 on error. */
long tls_stat(const struct upstream *u, const char *path, const char *field);

/* Start n fetches of /hold?key=key of the TLS upstream through f and wait
 * until the upstream holds them all; fails the test otherwise. */
void tls_hold(const struct fetchd *f, const struct upstream *u, struct bg_request **bg, int n,
	      const char *key);
void tls_release(const struct upstream *u, const char *key, int n);

/* nginx serving "hello h2\n" at every path over HTTPS with HTTP/2 (ALPN
 * h2) on 127.0.0.1, with the test leaf. */
struct h2_server {
	pid_t pid;
	int port;
	char dir[64]; /* config, pid file, logs, temp paths */
};
void h2_start(struct h2_server *s);
void h2_stop(struct h2_server *s);

/* fetchd with [pool] threads = threads and, when trust_ca, [fetch] ca_file
 * = the test CA; extra (may be NULL) goes into [fetch]. Loopback allowed. */
void tls_fetchd_start(struct fetchd *f, int threads, bool trust_ca, const char *extra);

/* POST /v1/fetch of url, with "verify_tls": false when insecure. */
void fetch_tls_url(const struct fetchd *f, const char *url, bool insecure, struct http_resp *r);

/* A 502 tls_error with libcurl's code 60 and an error naming why. */
void expect_tls_error(const struct http_resp *r, const char *why);

/* The upstream's /json, fetched: a 200 document with its JSON. */
void expect_json_fetched(const struct http_resp *r);

/* Wait (bounded) for the n-th "reloaded:" line of f's log. */
bool wait_reloaded(const struct fetchd *f, int n);

/* Rewrite f's config (it must keep_config) with extra, SIGHUP, and wait
 * for its n-th "reloaded:" line; fails the test otherwise. */
void reload_with(struct fetchd *f, const char *extra, int n);

#endif
