#ifndef FETCHD_CONFIG_H
#define FETCHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "netguard.h"
#include "retry.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/fetchd/fetchd.conf"

enum config_scheme {
	CONFIG_SCHEME_HTTP = 1 << 0,
	CONFIG_SCHEME_HTTPS = 1 << 1,
};

/* A named pool, [pool.NAME]: its own workers for the hosts it names (or
 * the requests that name it), so one slow upstream cannot starve others. */
struct config_pool {
	char *name;
	unsigned threads;
	unsigned queue_limit;
	char **hosts; /* patterns as in [security] allow_hosts */
	size_t n_hosts;
};

#define CONFIG_MAX_POOLS 32

/* [pool] threads, per pool and over every pool; what the machine allows
 * is checked by config_check (capacity.h). */
#define CONFIG_MAX_THREADS 65536
/* [pool] min_threads not set: the same as threads (a fixed pool). */
#define CONFIG_MIN_THREADS_ALL UINT32_MAX
/* [pool] stack_size: the default and the floor, from the deepest stack a
 * worker used (tests/check_stack.c; man/fetchd.conf.5): 20 KiB of a
 * worker's stack mapping touched (ASan build: 24 KiB) after a TLS
 * handshake, charset detection and iconv, a brotli body, 2048-deep JSON
 * and the rest of the materializer; a 16 KiB stack crashed, 20 KiB did
 * not. The floor is 2.6x the ASan figure; the default 12x the plain one,
 * for paths no test reached (RSS grows only with the pages touched, so
 * the size costs address space, not memory). */
#define CONFIG_STACK_DEFAULT (256 * 1024)
#define CONFIG_STACK_MIN (64 * 1024)

/* One parsed configuration. Built once, then read-only: a reload builds a
 * new one and swaps it in. Durations are milliseconds, sizes bytes. */
/* A file's bytes, as read. */
struct config_blob {
	char *data; /* NULL: none */
	size_t len;
};

struct fetchd_config {
	/* [server] */
	char **listen; /* "127.0.0.1:8080", "[::1]:8080" */
	size_t n_listen;
	bool reuse_port;
	unsigned max_connections; /* past it, stop accepting until one closes */
	uint64_t max_request_bytes;
	unsigned max_batch;
	uint64_t max_pending_bytes;
	uint64_t idle_timeout_ms;
	uint64_t request_timeout_ms; /* first byte of a request to its last */
	char *auth_token_file;	     /* NULL: no auth */
	uint64_t shutdown_timeout_ms;
	uint64_t lame_duck_ms; /* SIGTERM to the drain: /healthz 503, still serving */

	/* [pool] */
	unsigned threads;		 /* 0 = inline mode; the most workers */
	unsigned min_threads;		 /* workers kept idle; config_check makes it <= threads */
	uint64_t thread_idle_timeout_ms; /* then a worker above min_threads leaves */
	uint64_t stack_size;		 /* of every worker, every pool */
	unsigned queue_limit;
	/* per-host rules, in every pool (0: off): fetches running at once
	 * against one host, the least time between two starts to one host,
	 * and the longest a 429/503 Retry-After pauses a host (when either
	 * rule is on) */
	unsigned per_host_limit;
	uint64_t per_host_interval_ms;
	uint64_t per_host_max_pause_ms;
	struct config_pool *pools; /* named pools, in file order */
	size_t n_pools;

	/* [fetch] */
	unsigned schemes; /* enum config_scheme bits */
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;
	uint64_t low_speed_limit;   /* bytes/s; 0: no low-speed abort */
	uint64_t low_speed_time_ms; /* ... sustained this long */
	uint64_t max_response_bytes;
	unsigned max_redirects;
	char *user_agent;
	bool verify_tls;
	bool allow_insecure;
	char *ca_file;		       /* NULL: system default */
	char *proxy;		       /* NULL: no proxy (and the environment's is ignored) */
	char *client_cert;	       /* PEM certificate fetchd shows upstreams that ask (mTLS) */
	char *client_key;	       /* its private key (PEM); given with client_cert */
	bool allow_downgrade;	       /* may a redirect lead from https: to http:? */
	unsigned max_idle_connections; /* over every worker; 0: derived */
	struct retry_policy retry;     /* the defaults of a request's "retry" */
	/* Worked out by config_check from the above and the machine's fd
	 * limit (capacity_fd_budget): each worker's CURLOPT_MAXCONNECTS, and
	 * the descriptors the whole configuration needs. */
	unsigned idle_per_worker;
	uint64_t fd_need;
	/* The contents of ca_file, client_cert and client_key, read by
	 * config_check when the file is loaded (at start and on SIGHUP), so a
	 * fetch never opens a file and a reload picks up a changed one. */
	struct config_blob ca_pem, client_cert_pem, client_key_pem;

	/* [security] */
	bool deny_private;
	struct cidr *allow;
	size_t n_allow;
	struct cidr *deny;
	size_t n_deny;
	char **allow_hosts;
	size_t n_allow_hosts;

	/* [log] */
	enum log_level log_level;
	bool access_log;
};

/* A configuration with SPEC section 3's defaults. NULL on out of memory. */
struct fetchd_config *config_new(void);
void config_free(struct fetchd_config *cfg);

/* Read an INI file into cfg (which holds defaults or earlier values).
 * Every problem is written to err as "path:line: message\n" (a missing
 * file as "path: message"). Returns the number of problems. Cross-key
 * checks are left to config_check, run after command-line overrides. */
int config_load(struct fetchd_config *cfg, const char *path, FILE *err);

/* Set one key as the file would ("server", "listen", "127.0.0.1:9000").
 * For a list key (listen, allow, deny, allow_hosts, schemes) a value
 * appends its comma-separated items unless replace is true, which first
 * empties the list (the first command-line flag replaces the file's list).
 * Returns 0, or -1 with a message (no location) in msg. */
int config_set(struct fetchd_config *cfg, const char *section, const char *key, const char *value,
	       bool replace, char *msg, size_t msglen);

/* Cross-key checks (at least one listen address, ...), and the files of
 * [fetch] read into cfg's blobs (ca_file, client_cert, client_key). Writes
 * problems as "where: message\n" to err; returns their number. */
int config_check(struct fetchd_config *cfg, const char *where, FILE *err);

/* Write cfg as a configuration file that config_load reads back to the
 * same values: every key of the table, in table order, with its effective
 * value (the file's, a flag's or the default), then the [pool.NAME]
 * sections; what fetchd -T prints, as nginx -T does. Secrets are never in
 * cfg (auth_token_file is a path), so nothing is masked. */
void config_dump(const struct fetchd_config *cfg, FILE *out);

/* The named pool called name, or NULL. */
const struct config_pool *config_pool_find(const struct fetchd_config *cfg, const char *name);

#endif
