#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Per-test state: a config with defaults, the text config_load wrote to
 * err, and the path of the temporary file it read. */
static struct fetchd_config *cfg;
static char *err_text;
static size_t err_len;
static char conf_path[64];

static void setup(void)
{
	cfg = config_new();
	ck_assert_ptr_nonnull(cfg);
	err_text = NULL;
	conf_path[0] = '\0';
}

static void teardown(void)
{
	config_free(cfg);
	cfg = NULL;
	free(err_text);
	err_text = NULL;
}

/* Write text to a fresh file under /tmp, config_load it into cfg, remove
 * it. Returns config_load's count; messages land in err_text. */
static int load_text(const char *text)
{
	char path[] = "/tmp/check_config_XXXXXX";
	size_t len = strlen(text), off = 0;
	FILE *err;
	int fd, n;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		ck_assert_int_gt(w, 0);
		off += (size_t)w;
	}
	close(fd);
	snprintf(conf_path, sizeof(conf_path), "%s", path);

	free(err_text);
	err_text = NULL;
	err = open_memstream(&err_text, &err_len);
	ck_assert_ptr_nonnull(err);
	n = config_load(cfg, path, err);
	fclose(err);
	unlink(path);
	return n;
}

/* Assert that err_text holds the line "<path>:<line>: <msg>". */
static void expect_error(int line, const char *msg)
{
	char want[1024];

	snprintf(want, sizeof(want), "%s:%d: %s\n", conf_path, line, msg);
	ck_assert_msg(err_text != NULL && strstr(err_text, want) != NULL, "expected '%s' in:\n%s",
		      want, err_text != NULL ? err_text : "(null)");
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s != NULL && *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static struct cidr cidr_of(const char *s)
{
	struct cidr c;

	ck_assert_int_eq(netguard_parse_cidr(s, &c), 0);
	return c;
}

static void assert_cidr_eq(const struct cidr *got, const char *want_text)
{
	struct cidr want = cidr_of(want_text);

	ck_assert_int_eq(got->family, want.family);
	ck_assert_uint_eq(got->prefix, want.prefix);
	ck_assert_mem_eq(got->addr, want.addr, want.family == AF_INET ? 4 : 16);
}

START_TEST(test_defaults_match_spec_section_3)
{
	ck_assert_uint_eq(cfg->n_listen, 1);
	ck_assert_str_eq(cfg->listen[0], "127.0.0.1:8080");
	ck_assert(!cfg->reuse_port);
	ck_assert_uint_eq(cfg->max_request_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg->max_batch, 64);
	ck_assert_uint_eq(cfg->max_pending_bytes, UINT64_C(256) * 1024 * 1024);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 60000);
	ck_assert_ptr_null(cfg->auth_token_file);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->threads, 16);
	ck_assert_uint_eq(cfg->queue_limit, 1024);
	ck_assert_uint_eq(cfg->schemes, CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS);
	ck_assert_uint_eq(cfg->connect_timeout_ms, 5000);
	ck_assert_uint_eq(cfg->timeout_ms, 30000);
	ck_assert_uint_eq(cfg->max_response_bytes, UINT64_C(10) * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_redirects, 10);
	ck_assert_str_eq(cfg->user_agent, "fetchd/" PACKAGE_VERSION);
	ck_assert(cfg->verify_tls);
	ck_assert(!cfg->allow_insecure);
	ck_assert_ptr_null(cfg->ca_file);
	ck_assert_ptr_null(cfg->proxy);
	ck_assert(cfg->deny_private);
	ck_assert_uint_eq(cfg->n_allow, 0);
	ck_assert_uint_eq(cfg->n_deny, 0);
	ck_assert_uint_eq(cfg->n_allow_hosts, 0);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert(cfg->access_log);
	ck_assert_int_eq(config_check(cfg, "defaults", stderr), 0);
}
END_TEST

/* The shipped etc/fetchd.conf loads without a problem and changes nothing:
 * its values are the defaults. Found through $srcdir (automake) or the
 * working directory. */
START_TEST(test_shipped_config_loads_cleanly_and_equals_defaults)
{
	static const char *const rel[] = {"etc/fetchd.conf", "../etc/fetchd.conf",
					  "../../etc/fetchd.conf"};
	const char *srcdir = getenv("srcdir");
	struct fetchd_config *def = config_new();
	char path[4096] = "";
	FILE *err;

	ck_assert_ptr_nonnull(def);
	for (size_t i = 0; i < 2 * sizeof(rel) / sizeof(rel[0]) && path[0] == '\0'; i++) {
		char cand[4096];

		if (i < 3)
			snprintf(cand, sizeof(cand), "%s/%s", srcdir ? srcdir : ".", rel[i]);
		else
			snprintf(cand, sizeof(cand), "%s", rel[i - 3]);
		if (access(cand, R_OK) == 0)
			snprintf(path, sizeof(path), "%s", cand);
	}
	ck_assert_msg(path[0] != '\0', "etc/fetchd.conf not found (set srcdir)");

	err = open_memstream(&err_text, &err_len);
	ck_assert_int_eq(config_load(cfg, path, err), 0);
	fclose(err);
	ck_assert_str_eq(err_text, "");

	ck_assert_uint_eq(cfg->n_listen, def->n_listen);
	ck_assert_str_eq(cfg->listen[0], def->listen[0]);
	ck_assert_int_eq(cfg->reuse_port, def->reuse_port);
	ck_assert_uint_eq(cfg->max_request_bytes, def->max_request_bytes);
	ck_assert_uint_eq(cfg->max_batch, def->max_batch);
	ck_assert_uint_eq(cfg->max_pending_bytes, def->max_pending_bytes);
	ck_assert_uint_eq(cfg->idle_timeout_ms, def->idle_timeout_ms);
	ck_assert_ptr_null(cfg->auth_token_file);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, def->shutdown_timeout_ms);
	ck_assert_uint_eq(cfg->threads, def->threads);
	ck_assert_uint_eq(cfg->queue_limit, def->queue_limit);
	ck_assert_uint_eq(cfg->schemes, def->schemes);
	ck_assert_uint_eq(cfg->connect_timeout_ms, def->connect_timeout_ms);
	ck_assert_uint_eq(cfg->timeout_ms, def->timeout_ms);
	ck_assert_uint_eq(cfg->max_response_bytes, def->max_response_bytes);
	ck_assert_uint_eq(cfg->max_redirects, def->max_redirects);
	ck_assert_str_eq(cfg->user_agent, def->user_agent);
	ck_assert_int_eq(cfg->verify_tls, def->verify_tls);
	ck_assert_int_eq(cfg->allow_insecure, def->allow_insecure);
	ck_assert_ptr_null(cfg->ca_file);
	ck_assert_ptr_null(cfg->proxy);
	ck_assert_int_eq(cfg->deny_private, def->deny_private);
	ck_assert_uint_eq(cfg->n_allow, 0);
	ck_assert_uint_eq(cfg->n_deny, 0);
	ck_assert_uint_eq(cfg->n_allow_hosts, 0);
	ck_assert_int_eq(cfg->log_level, def->log_level);
	ck_assert_int_eq(cfg->access_log, def->access_log);
	config_free(def);
}
END_TEST

START_TEST(test_every_supported_key_is_parsed)
{
	int n = load_text("[server]\n"
			  "listen = 0.0.0.0:9000, [::1]:9001\n"
			  "reuse_port = true\n"
			  "max_request_bytes = 2M\n"
			  "max_batch = 10\n"
			  "max_pending_bytes = 1G\n"
			  "idle_timeout = 90s\n"
			  "auth_token_file = /etc/fetchd/token\n"
			  "shutdown_timeout = 2m\n"
			  "[pool]\n"
			  "threads = 0\n"
			  "queue_limit = 5\n"
			  "[fetch]\n"
			  "schemes = https\n"
			  "connect_timeout = 250ms\n"
			  "timeout = 1.5\n"
			  "max_response_bytes = 512K\n"
			  "max_redirects = 0\n"
			  "user_agent = Mozilla/5.0 (compatible; fetchd)\n"
			  "verify_tls = no\n"
			  "allow_insecure = yes\n"
			  "ca_file = /etc/ssl/ca.pem\n"
			  "proxy = http://proxy.example:3128\n"
			  "[security]\n"
			  "deny_private = off\n"
			  "allow = 127.0.0.1/32, 10.0.0.0/8\n"
			  "deny = 192.0.2.0/24, 2001:db8::/32\n"
			  "allow_hosts = example.org, *.example.net\n"
			  "[log]\n"
			  "level = debug\n"
			  "access_log = false\n");

	ck_assert_msg(n == 0, "errors: %s", err_text);
	ck_assert_str_eq(err_text, "");
	ck_assert_uint_eq(cfg->n_listen, 2);
	ck_assert_str_eq(cfg->listen[0], "0.0.0.0:9000");
	ck_assert_str_eq(cfg->listen[1], "[::1]:9001");
	ck_assert(cfg->reuse_port);
	ck_assert_uint_eq(cfg->max_request_bytes, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_batch, 10);
	ck_assert_uint_eq(cfg->max_pending_bytes, UINT64_C(1) << 30);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 90000);
	ck_assert_str_eq(cfg->auth_token_file, "/etc/fetchd/token");
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 120000);
	ck_assert_uint_eq(cfg->threads, 0);
	ck_assert_uint_eq(cfg->queue_limit, 5);
	ck_assert_uint_eq(cfg->schemes, CONFIG_SCHEME_HTTPS);
	ck_assert_uint_eq(cfg->connect_timeout_ms, 250);
	ck_assert_uint_eq(cfg->timeout_ms, 1500);
	ck_assert_uint_eq(cfg->max_response_bytes, 512 * 1024);
	ck_assert_uint_eq(cfg->max_redirects, 0);
	ck_assert_str_eq(cfg->user_agent, "Mozilla/5.0 (compatible; fetchd)");
	ck_assert(!cfg->verify_tls);
	ck_assert(cfg->allow_insecure);
	ck_assert_str_eq(cfg->ca_file, "/etc/ssl/ca.pem");
	ck_assert_str_eq(cfg->proxy, "http://proxy.example:3128");
	ck_assert(!cfg->deny_private);
	ck_assert_uint_eq(cfg->n_allow, 2);
	assert_cidr_eq(&cfg->allow[0], "127.0.0.1/32");
	assert_cidr_eq(&cfg->allow[1], "10.0.0.0/8");
	ck_assert_uint_eq(cfg->n_deny, 2);
	assert_cidr_eq(&cfg->deny[0], "192.0.2.0/24");
	assert_cidr_eq(&cfg->deny[1], "2001:db8::/32");
	ck_assert_uint_eq(cfg->n_allow_hosts, 2);
	ck_assert_str_eq(cfg->allow_hosts[0], "example.org");
	ck_assert_str_eq(cfg->allow_hosts[1], "*.example.net");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert(!cfg->access_log);
}
END_TEST

START_TEST(test_bad_duration_message_names_key_and_line)
{
	ck_assert_int_eq(load_text("[fetch]\n\ntimeout = abc\n"), 1);
	expect_error(3, "fetch.timeout: bad duration 'abc' (use a number with ms, s, m or h; a "
			"bare number is seconds)");
	ck_assert_uint_eq(cfg->timeout_ms, 30000);
}
END_TEST

START_TEST(test_bad_size_message_names_key_and_line)
{
	ck_assert_int_eq(load_text("[fetch]\nmax_response_bytes = 10X\n"), 1);
	expect_error(2, "fetch.max_response_bytes: bad size '10X' (use bytes, or a number with K, "
			"M or G: powers of 1024, KB and KiB meaning K)");
	ck_assert_int_eq(load_text("[server]\nmax_request_bytes = -1\n"), 1);
	expect_error(2, "server.max_request_bytes: bad size '-1' (use bytes, or a number with K, M "
			"or G: powers of 1024, KB and KiB meaning K)");
	ck_assert_int_eq(load_text("[server]\nmax_pending_bytes = 99999999999G\n"), 1);
	expect_error(2, "server.max_pending_bytes: bad size '99999999999G' (use bytes, or a "
			"number with K, M or G: powers of 1024, KB and KiB meaning K)");
}
END_TEST

START_TEST(test_zero_size_and_timeout_are_rejected)
{
	ck_assert_int_eq(load_text("[server]\nmax_request_bytes = 0\n"
				   "[fetch]\ntimeout = 0\nconnect_timeout = 0ms\n"),
			 3);
}
END_TEST

START_TEST(test_duration_over_a_day_is_rejected)
{
	ck_assert_int_eq(load_text("[fetch]\ntimeout = 25h\n"), 1);
	expect_error(2, "fetch.timeout: '25h' is out of range (1ms..24h)");
}
END_TEST

START_TEST(test_bool_accepts_true_false_yes_no_on_off_1_0)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
	static const char *const no[] = {"false", "no", "off", "0", "FALSE", "Off"};
	char msg[256];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		cfg->reuse_port = false;
		ck_assert_int_eq(
			config_set(cfg, "server", "reuse_port", yes[i], false, msg, sizeof(msg)),
			0);
		ck_assert_msg(cfg->reuse_port, "'%s' should be true", yes[i]);
		ck_assert_int_eq(
			config_set(cfg, "server", "reuse_port", no[i], false, msg, sizeof(msg)), 0);
		ck_assert_msg(!cfg->reuse_port, "'%s' should be false", no[i]);
	}
}
END_TEST

START_TEST(test_bool_rejects_other_words)
{
	ck_assert_int_eq(load_text("[security]\ndeny_private = maybe\n"), 1);
	expect_error(2, "security.deny_private: bad boolean 'maybe' (use true or false)");
	ck_assert(cfg->deny_private);
}
END_TEST

START_TEST(test_unknown_key_reported_with_line_number)
{
	ck_assert_int_eq(load_text("; comment\n[server]\n\nlisten = 127.0.0.1:1\nbogus = 1\n"), 1);
	expect_error(5, "server.bogus: unknown key");
}
END_TEST

START_TEST(test_unknown_section_reported_once_at_its_header)
{
	ck_assert_int_eq(load_text("[server]\nmax_batch = 3\n[nope]\na = 1\nb = 2\n"
				   "[log]\nlevel = warn\n"),
			 1);
	expect_error(3, "unknown section [nope]");
	ck_assert_int_eq(count_lines(err_text), 1);
	ck_assert_uint_eq(cfg->max_batch, 3);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_WARN);
}
END_TEST

START_TEST(test_key_outside_section_is_an_error)
{
	ck_assert_int_eq(load_text("threads = 4\n[pool]\n"), 1);
	expect_error(1, "threads: key outside of any section");
	ck_assert_uint_eq(cfg->threads, 16);
}
END_TEST

START_TEST(test_all_errors_are_reported_not_only_the_first)
{
	int n = load_text("[server]\n"		    /* 1 */
			  "bogus = 1\n"		    /* 2 */
			  "max_batch = 0\n"	    /* 3 */
			  "this is not ini\n"	    /* 4 */
			  "[pool]\n"		    /* 5 */
			  "threads = 65537\n"	    /* 6 */
			  "queue_limit = 1000001\n" /* 7 */
			  "[fetch]\n"		    /* 8 */
			  "timeout = 5x\n"	    /* 9 */
			  "max_redirects = 3\n"	    /* 10: fine */
			  "[what\n"		    /* 11 */
			  "verify_tls = nope\n");   /* 12 */

	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(count_lines(err_text), 8);
	expect_error(2, "server.bogus: unknown key");
	expect_error(3, "server.max_batch: 0 is out of range (1..10000)");
	expect_error(4, "syntax error (expected 'key = value')");
	expect_error(6, "pool.threads: 65537 is out of range (0..65536)");
	expect_error(7, "pool.queue_limit: 1000001 is out of range (0..1000000)");
	expect_error(9, "fetch.timeout: bad duration '5x' (use a number with ms, s, m or h; a bare "
			"number is seconds)");
	expect_error(11, "syntax error (section header without ']')");
	expect_error(12, "fetch.verify_tls: bad boolean 'nope' (use true or false)");
	ck_assert_uint_eq(cfg->max_redirects, 3);
}
END_TEST

START_TEST(test_numbers_reject_garbage_sign_and_range)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 12abc\nthreads = -1\nthreads = 0x10\n"
				   "threads = 99999999999999999999999\n"
				   "[server]\nmax_batch = 10001\nmax_batch = 10000\n"
				   "[fetch]\nmax_redirects = 101\n"),
			 6);
	expect_error(2, "pool.threads: bad number '12abc'");
	expect_error(3, "pool.threads: bad number '-1'");
	expect_error(4, "pool.threads: bad number '0x10'");
	expect_error(5, "pool.threads: bad number '99999999999999999999999'");
	expect_error(7, "server.max_batch: 10001 is out of range (1..10000)");
	expect_error(10, "fetch.max_redirects: 101 is out of range (0..100)");
	ck_assert_uint_eq(cfg->threads, 16);
	ck_assert_uint_eq(cfg->max_batch, 10000);
}
END_TEST

START_TEST(test_threads_1024_and_queue_limit_1000000_are_accepted)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 1024\nqueue_limit = 1000000\n"), 0);
	ck_assert_uint_eq(cfg->threads, 1024);
	ck_assert_uint_eq(cfg->queue_limit, 1000000);
}
END_TEST

START_TEST(test_connection_limits_are_read)
{
	ck_assert_int_eq(load_text("[server]\nmax_connections = 100\nrequest_timeout = 2s\n"
				   "[fetch]\nlow_speed_limit = 1K\nlow_speed_time = 3s\n"),
			 0);
	ck_assert_uint_eq(cfg->max_connections, 100);
	ck_assert_uint_eq(cfg->request_timeout_ms, 2000);
	ck_assert_uint_eq(cfg->low_speed_limit, 1024);
	ck_assert_uint_eq(cfg->low_speed_time_ms, 3000);
}
END_TEST

START_TEST(test_connection_limit_defaults)
{
	ck_assert_uint_eq(cfg->max_connections, 4096);
	ck_assert_uint_eq(cfg->request_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->low_speed_limit, 100);
	ck_assert_uint_eq(cfg->low_speed_time_ms, 15000);
}
END_TEST

START_TEST(test_connection_limits_out_of_range_are_reported)
{
	ck_assert_int_eq(load_text("[server]\nmax_connections = 0\nrequest_timeout = 0s\n"
				   "[fetch]\nlow_speed_time = 500ms\n"),
			 3);
}
END_TEST

START_TEST(test_unix_listen_is_not_supported_yet)
{
	ck_assert_int_eq(load_text("[server]\nlisten = unix:/run/fetchd/fetchd.sock\n"), 1);
	expect_error(2, "server.listen: 'unix:/run/fetchd/fetchd.sock': unix sockets are not "
			"supported yet");
	ck_assert_uint_eq(cfg->n_listen, 1);
	ck_assert_str_eq(cfg->listen[0], "127.0.0.1:8080");
}
END_TEST

START_TEST(test_named_pool_sections_are_parsed)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 2\n[pool.slow]\nthreads = 1\n"
				   "hosts = *.slow.example, slow.example\n[pool]\nqueue_limit = 7\n"
				   "[pool.bulk]\nqueue_limit = 0\n"),
			 0);
	ck_assert_uint_eq(cfg->threads, 2);
	ck_assert_uint_eq(cfg->queue_limit, 7);
	ck_assert_uint_eq(cfg->n_pools, 2);
	ck_assert_str_eq(cfg->pools[0].name, "slow");
	ck_assert_uint_eq(cfg->pools[0].threads, 1);
	ck_assert_uint_eq(cfg->pools[0].queue_limit, 256);
	ck_assert_uint_eq(cfg->pools[0].n_hosts, 2);
	ck_assert_str_eq(cfg->pools[0].hosts[0], "*.slow.example");
	ck_assert_str_eq(cfg->pools[0].hosts[1], "slow.example");
	ck_assert_str_eq(cfg->pools[1].name, "bulk");
	ck_assert_uint_eq(cfg->pools[1].threads, 4);
	ck_assert_uint_eq(cfg->pools[1].queue_limit, 0);
	ck_assert(config_pool_find(cfg, "bulk") == &cfg->pools[1]);
	ck_assert(config_pool_find(cfg, "default") == NULL);
}
END_TEST

START_TEST(test_named_pool_errors_name_the_line)
{
	ck_assert_int_eq(load_text("[pool.Slow]\nthreads = 1\n[pool.default]\n[pool.ok]\n"
				   "threads = 0\nspeed = 3\nhosts = bad host\n"),
			 5);
	expect_error(3, "[pool.default]: a pool name is 1 to 32 of a-z, 0-9, '_' and '-', and "
			"not 'default'");
	expect_error(1, "[pool.Slow]: a pool name is 1 to 32 of a-z, 0-9, '_' and '-', and not "
			"'default'");
	expect_error(5, "pool.ok.threads: must be a number from 1 to 65536");
	expect_error(6, "pool.ok.speed: unknown key (a pool has threads, queue_limit, hosts)");
	expect_error(7, "pool.ok.hosts: bad host pattern 'bad host'");
}
END_TEST

START_TEST(test_schemes_file_is_never_allowed)
{
	ck_assert_int_eq(load_text("[fetch]\nschemes = http, file\n"), 1);
	expect_error(2, "fetch.schemes: scheme 'file' is never allowed");
	ck_assert_uint_eq(cfg->schemes, CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS);
	ck_assert_int_eq(load_text("[fetch]\nschemes = ftp\n"), 1);
	expect_error(2, "fetch.schemes: scheme 'ftp' is never allowed");
}
END_TEST

START_TEST(test_schemes_empty_list_is_an_error)
{
	ck_assert_int_eq(load_text("[fetch]\nschemes =\n"), 1);
	expect_error(2, "fetch.schemes: empty list (use http, https or both)");
	ck_assert_uint_eq(cfg->schemes, CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS);
}
END_TEST

START_TEST(test_schemes_line_replaces_not_appends)
{
	ck_assert_int_eq(load_text("[fetch]\nschemes = http\nschemes = HTTPS\n"), 0);
	ck_assert_uint_eq(cfg->schemes, CONFIG_SCHEME_HTTPS);
}
END_TEST

START_TEST(test_listen_accepts_host_port_v6_and_port_zero)
{
	ck_assert_int_eq(load_text("[server]\nlisten = localhost:0 , [::]:65535,[fe80::1]:80\n"),
			 0);
	ck_assert_uint_eq(cfg->n_listen, 3);
	ck_assert_str_eq(cfg->listen[0], "localhost:0");
	ck_assert_str_eq(cfg->listen[1], "[::]:65535");
	ck_assert_str_eq(cfg->listen[2], "[fe80::1]:80");
}
END_TEST

START_TEST(test_listen_rejects_malformed_addresses)
{
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:", ":8080",	   "::1:8080",
					  "[::1]8080", "[::1]",	     "[zz::1]:80", "host:65536",
					  "host:-1",   "host:http",  "ho st:80",   "host:123456"};
	char msg[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];

		ck_assert_msg(
			config_set(cfg, "server", "listen", bad[i], false, msg, sizeof(msg)) == -1,
			"'%s' should fail", bad[i]);
		snprintf(want, sizeof(want),
			 "server.listen: bad address '%s' (use host:port or [v6]:port)", bad[i]);
		ck_assert_str_eq(msg, want);
	}
	ck_assert_uint_eq(cfg->n_listen, 1);
}
END_TEST

START_TEST(test_repeated_list_lines_append_after_first_replaces_default)
{
	ck_assert_int_eq(load_text("[server]\nlisten = 0.0.0.0:1\nlisten = 0.0.0.0:2\n"
				   "[security]\nallow = 10.0.0.0/8\nallow = 192.168.0.0/16\n"
				   "allow_hosts = a.example\nallow_hosts = b.example\n"),
			 0);
	ck_assert_uint_eq(cfg->n_listen, 2);
	ck_assert_str_eq(cfg->listen[0], "0.0.0.0:1");
	ck_assert_str_eq(cfg->listen[1], "0.0.0.0:2");
	ck_assert_uint_eq(cfg->n_allow, 2);
	assert_cidr_eq(&cfg->allow[1], "192.168.0.0/16");
	ck_assert_uint_eq(cfg->n_allow_hosts, 2);
	ck_assert_str_eq(cfg->allow_hosts[1], "b.example");
}
END_TEST

START_TEST(test_config_set_replace_empties_list_first)
{
	char msg[256];

	ck_assert_int_eq(
		config_set(cfg, "server", "listen", "0.0.0.0:1, 0.0.0.0:2", true, msg, sizeof(msg)),
		0);
	ck_assert_uint_eq(cfg->n_listen, 2);
	ck_assert_str_eq(cfg->listen[0], "0.0.0.0:1");
	ck_assert_int_eq(config_set(cfg, "security", "deny", "10.0.0.0/8", false, msg, sizeof(msg)),
			 0);
	ck_assert_int_eq(config_set(cfg, "security", "deny", "fc00::/7", true, msg, sizeof(msg)),
			 0);
	ck_assert_uint_eq(cfg->n_deny, 1);
	assert_cidr_eq(&cfg->deny[0], "fc00::/7");
	ck_assert_int_eq(config_set(cfg, "security", "deny", "", true, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(cfg->n_deny, 0);
}
END_TEST

START_TEST(test_config_set_append_keeps_existing_items)
{
	char msg[256];

	ck_assert_int_eq(config_set(cfg, "server", "listen", "[::1]:9", false, msg, sizeof(msg)),
			 0);
	ck_assert_uint_eq(cfg->n_listen, 2);
	ck_assert_str_eq(cfg->listen[0], "127.0.0.1:8080");
	ck_assert_str_eq(cfg->listen[1], "[::1]:9");
	ck_assert_int_eq(
		config_set(cfg, "security", "allow_hosts", "x.example", false, msg, sizeof(msg)),
		0);
	ck_assert_int_eq(config_set(cfg, "security", "allow_hosts", " *.y.example ", false, msg,
				    sizeof(msg)),
			 0);
	ck_assert_uint_eq(cfg->n_allow_hosts, 2);
	ck_assert_str_eq(cfg->allow_hosts[1], "*.y.example");
}
END_TEST

START_TEST(test_config_set_failure_leaves_list_unchanged)
{
	char msg[256];

	ck_assert_int_eq(
		config_set(cfg, "security", "allow", "10.0.0.0/8", false, msg, sizeof(msg)), 0);
	ck_assert_int_eq(config_set(cfg, "security", "allow", "1.2.3.0/24, nonsense", true, msg,
				    sizeof(msg)),
			 -1);
	ck_assert_str_eq(msg, "security.allow: bad CIDR 'nonsense': not an IPv4 or IPv6 address");
	ck_assert_uint_eq(cfg->n_allow, 1);
	assert_cidr_eq(&cfg->allow[0], "10.0.0.0/8");
	ck_assert_int_eq(config_set(cfg, "server", "listen", "0.0.0.0:1,", true, msg, sizeof(msg)),
			 -1);
	ck_assert_str_eq(msg, "server.listen: empty item in list");
	ck_assert_uint_eq(cfg->n_listen, 1);
}
END_TEST

START_TEST(test_config_set_unknown_names_are_errors)
{
	char msg[256];

	ck_assert_int_eq(config_set(cfg, "fetch", "speed", "1", false, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "fetch.speed: unknown key");
	ck_assert_int_eq(config_set(cfg, "nope", "speed", "1", false, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "unknown section [nope]");
	ck_assert_int_eq(config_set(cfg, "pool.a", "speed", "1", false, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "pool.a.speed: unknown key (a pool has threads, queue_limit, hosts)");
}
END_TEST

START_TEST(test_bad_cidr_and_host_pattern_are_reported)
{
	ck_assert_int_eq(load_text("[security]\nallow = 10.0.0.1/33\ndeny = 10.0.0.1/8\n"
				   "allow_hosts = bad host\nallow_hosts = a..b\n"
				   "allow_hosts = foo.*.org\n"),
			 5);
	expect_error(
		2, "security.allow: bad CIDR '10.0.0.1/33': the prefix /33 is longer than 32 bits");
	expect_error(3, "security.deny: bad CIDR '10.0.0.1/8': host bits are set beyond /8 (the "
			"network is 10.0.0.0/8)");
	expect_error(4, "security.allow_hosts: bad host pattern 'bad host'");
	expect_error(5, "security.allow_hosts: bad host pattern 'a..b'");
	expect_error(6, "security.allow_hosts: bad host pattern 'foo.*.org'");
}
END_TEST

START_TEST(test_long_allow_line_with_500_cidrs_is_kept_whole)
{
	size_t cap = 64 * 1024, len;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, "[security]\nallow = ");
	for (int i = 0; i < 500; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s10.%d.%d.0/24", i ? ", " : "",
					i / 256, i % 256);
	snprintf(text + len, cap - len, "\n[log]\nlevel = warn\n");
	ck_assert_uint_gt(len, 5000);

	ck_assert_msg(load_text(text) == 0, "errors: %s", err_text);
	free(text);
	ck_assert_uint_eq(cfg->n_allow, 500);
	assert_cidr_eq(&cfg->allow[0], "10.0.0.0/24");
	assert_cidr_eq(&cfg->allow[256], "10.1.0.0/24");
	assert_cidr_eq(&cfg->allow[499], "10.1.243.0/24");
	/* The line after it is still read as its own line. */
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_WARN);
}
END_TEST

START_TEST(test_line_longer_than_64k_is_reported_not_cut)
{
	size_t cap = 80 * 1024;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	memset(text, 'a', cap);
	memcpy(text, "[fetch]\nuser_agent = ", 21);
	snprintf(text + cap - 32, 32, "\n[log]\nlevel = debug\n");
	ck_assert_int_eq(load_text(text), 1);
	free(text);
	ck_assert_ptr_nonnull(strstr(err_text, ":2: line too long"));
	ck_assert_str_eq(cfg->user_agent, "fetchd/" PACKAGE_VERSION);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
}
END_TEST

START_TEST(test_semicolon_after_whitespace_starts_inline_comment)
{
	ck_assert_int_eq(load_text("[server]\nlisten = 127.0.0.1:9 ; the port\n"
				   "  ; an indented comment line\n"
				   "# a hash comment\n"
				   "[fetch]\nuser_agent = a;b c ; comment\n"),
			 0);
	ck_assert_uint_eq(cfg->n_listen, 1);
	ck_assert_str_eq(cfg->listen[0], "127.0.0.1:9");
	ck_assert_str_eq(cfg->user_agent, "a;b c");
}
END_TEST

START_TEST(test_indented_line_is_not_a_continuation)
{
	ck_assert_int_eq(load_text("[fetch]\nuser_agent = one\n    two\n"), 1);
	expect_error(3, "syntax error (expected 'key = value')");
	ck_assert_str_eq(cfg->user_agent, "one");
	ck_assert_int_eq(load_text("[fetch]\n  timeout = 7s\n"), 0);
	ck_assert_uint_eq(cfg->timeout_ms, 7000);
}
END_TEST

START_TEST(test_user_agent_keeps_inner_spaces)
{
	ck_assert_int_eq(load_text("[fetch]\nuser_agent =   My Bot/1.0  (+https://x.example)  \n"),
			 0);
	ck_assert_str_eq(cfg->user_agent, "My Bot/1.0  (+https://x.example)");
}
END_TEST

START_TEST(test_empty_path_values_mean_null)
{
	ck_assert_int_eq(load_text("[server]\nauth_token_file = /tmp/t\n"
				   "[fetch]\nca_file = /tmp/ca\nproxy = http://p:1\n"),
			 0);
	ck_assert_str_eq(cfg->proxy, "http://p:1");
	ck_assert_int_eq(load_text("[server]\nauth_token_file =\n"
				   "[fetch]\nca_file =   \nproxy = ; none\n"),
			 0);
	ck_assert_ptr_null(cfg->auth_token_file);
	ck_assert_ptr_null(cfg->ca_file);
	ck_assert_ptr_null(cfg->proxy);
}
END_TEST

START_TEST(test_log_level_names_parsed_and_bad_level_rejected)
{
	ck_assert_int_eq(load_text("[log]\nlevel = error\n"), 0);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_ERROR);
	ck_assert_int_eq(load_text("[log]\nlevel = loud\n"), 1);
	expect_error(2, "log.level: bad level 'loud' (use error, warn, info or debug)");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_ERROR);
}
END_TEST

START_TEST(test_missing_file_reports_cannot_open)
{
	FILE *err = open_memstream(&err_text, &err_len);

	ck_assert_int_eq(config_load(cfg, "/nonexistent/fetchd.conf", err), 1);
	fclose(err);
	ck_assert_str_eq(err_text, "/nonexistent/fetchd.conf: cannot open: No such file or "
				   "directory\n");
}
END_TEST

START_TEST(test_directory_as_file_reports_cannot_read)
{
	FILE *err = open_memstream(&err_text, &err_len);

	ck_assert_int_eq(config_load(cfg, "/tmp", err), 1);
	fclose(err);
	ck_assert_str_eq(err_text, "/tmp: cannot read: Is a directory\n");
}
END_TEST

START_TEST(test_config_check_requires_a_listen_address)
{
	char msg[256];
	FILE *err = open_memstream(&err_text, &err_len);

	ck_assert_int_eq(config_set(cfg, "server", "listen", "", true, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(cfg->n_listen, 0);
	ck_assert_int_eq(config_check(cfg, "cmdline", err), 1);
	fclose(err);
	ck_assert_str_eq(err_text, "cmdline: no listen address (set server.listen)\n");
}
END_TEST

START_TEST(test_config_check_rejects_duplicate_listen)
{
	char msg[256];

	ck_assert_int_eq(
		config_set(cfg, "server", "listen", "127.0.0.1:8080", false, msg, sizeof(msg)), 0);
	ck_assert_int_eq(config_check(cfg, "x", NULL), 1);
}
END_TEST

START_TEST(test_min_threads_defaults_to_threads_a_fixed_pool)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 40\n"), 0);
	ck_assert_int_eq(config_check(cfg, "x", NULL), 0);
	ck_assert_uint_eq(cfg->min_threads, 40);
	ck_assert_uint_eq(cfg->thread_idle_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->stack_size, CONFIG_STACK_DEFAULT);
	ck_assert_uint_gt(cfg->idle_per_worker, 0);
	ck_assert_uint_gt(cfg->fd_need, cfg->max_connections + 40);
}
END_TEST

START_TEST(test_elastic_pool_keys_are_read)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 2000\nmin_threads = 16\n"
				   "thread_idle_timeout = 200ms\nstack_size = 64K\n"
				   "[fetch]\nmax_idle_connections = 4000\n"),
			 0);
	ck_assert_int_eq(config_check(cfg, "x", NULL), 0);
	ck_assert_uint_eq(cfg->min_threads, 16);
	ck_assert_uint_eq(cfg->thread_idle_timeout_ms, 200);
	ck_assert_uint_eq(cfg->stack_size, 64 * 1024);
	ck_assert_uint_eq(cfg->idle_per_worker, 2);
}
END_TEST

START_TEST(test_per_host_rules_default_off)
{
	ck_assert_int_eq(load_text("[pool]\nthreads = 8\n"), 0);
	ck_assert_uint_eq(cfg->per_host_limit, 0);
	ck_assert_uint_eq(cfg->per_host_interval_ms, 0);
	ck_assert_uint_eq(cfg->per_host_max_pause_ms, 60000);
}
END_TEST

START_TEST(test_per_host_rules_are_read)
{
	ck_assert_int_eq(load_text("[pool]\nper_host_limit = 4\nper_host_interval = 500ms\n"
				   "per_host_max_pause = 0\n"),
			 0);
	ck_assert_uint_eq(cfg->per_host_limit, 4);
	ck_assert_uint_eq(cfg->per_host_interval_ms, 500);
	ck_assert_uint_eq(cfg->per_host_max_pause_ms, 0);
}
END_TEST

START_TEST(test_per_host_limit_out_of_range_names_the_key)
{
	ck_assert_int_eq(load_text("[pool]\nper_host_limit = -1\n"), 1);
	ck_assert_msg(strstr(err_text, "pool.per_host_limit") != NULL, "%s", err_text);
}
END_TEST

START_TEST(test_per_host_interval_must_be_a_duration)
{
	ck_assert_int_eq(load_text("[pool]\nper_host_interval = soon\n"), 1);
	ck_assert_msg(strstr(err_text, "pool.per_host_interval") != NULL, "%s", err_text);
}
END_TEST

START_TEST(test_min_threads_above_threads_is_refused)
{
	FILE *err;

	ck_assert_int_eq(load_text("[pool]\nthreads = 4\nmin_threads = 5\n"), 0);
	free(err_text);
	err = open_memstream(&err_text, &err_len);
	ck_assert_int_eq(config_check(cfg, "f.conf", err), 1);
	fclose(err);
	ck_assert_str_eq(err_text, "f.conf: pool.min_threads = 5 is more than pool.threads = 4\n");
}
END_TEST

START_TEST(test_stack_size_below_the_floor_is_refused)
{
	ck_assert_int_eq(load_text("[pool]\nstack_size = 32K\n"), 1);
	expect_error(2, "pool.stack_size: size must be at least 65536 bytes");
}
END_TEST

START_TEST(test_more_descriptors_than_the_limit_allows_are_refused)
{
	FILE *err;

	ck_assert_int_eq(load_text("[server]\nmax_connections = 1000000\n"
				   "[fetch]\nmax_idle_connections = 100000000\n"),
			 0);
	free(err_text);
	err = open_memstream(&err_text, &err_len);
	ck_assert_int_eq(config_check(cfg, "f.conf", err), 1);
	fclose(err);
	ck_assert_msg(strstr(err_text, "f.conf: the configuration needs 101000144 file "
				       "descriptors: max_connections = 1000000") != NULL,
		      "%s", err_text);
}
END_TEST

/* Write text to a new file under /tmp; its path in path (>= 32 bytes). */
static void write_temp(char *path, const char *text)
{
	int fd;

	memcpy(path, "/tmp/check_config_pem_XXXXXX", sizeof("/tmp/check_config_pem_XXXXXX"));
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* config_check into err_text; returns its count. */
static int check_into_text(void)
{
	FILE *err;
	int n;

	free(err_text);
	err_text = NULL;
	err = open_memstream(&err_text, &err_len);
	ck_assert_ptr_nonnull(err);
	n = config_check(cfg, "conf", err);
	fclose(err);
	return n;
}

/* The TLS files are read when the configuration is checked (start-up and
 * reload), so fetches use what was read and never open a path. */
START_TEST(test_tls_files_are_read_when_checked)
{
	char ca[64], cert[64], key[64];
	char *text;

	write_temp(ca, "-----BEGIN CERTIFICATE-----\nCA\n");
	write_temp(cert, "-----BEGIN CERTIFICATE-----\nCERT\n");
	write_temp(key, "-----BEGIN PRIVATE KEY-----\nKEY\n");
	text = malloc(512);
	ck_assert_ptr_nonnull(text);
	snprintf(text, 512,
		 "[fetch]\nca_file = %s\nclient_cert = %s\nclient_key = %s\n"
		 "allow_downgrade = false\n",
		 ca, cert, key);
	ck_assert_int_eq(load_text(text), 0);
	ck_assert_int_eq(check_into_text(), 0);
	ck_assert(!cfg->allow_downgrade);
	ck_assert_uint_eq(cfg->ca_pem.len, strlen("-----BEGIN CERTIFICATE-----\nCA\n"));
	ck_assert(memcmp(cfg->client_key_pem.data, "-----BEGIN PRIVATE KEY-----\nKEY\n",
			 cfg->client_key_pem.len) == 0);
	ck_assert_uint_eq(cfg->client_cert_pem.len, strlen("-----BEGIN CERTIFICATE-----\nCERT\n"));
	unlink(ca);
	unlink(cert);
	unlink(key);
	free(text);
}
END_TEST

START_TEST(test_tls_file_problems_are_reported)
{
	char cert[64];
	char *text = malloc(512);

	ck_assert_ptr_nonnull(text);
	ck_assert(cfg->allow_downgrade); /* the default, as browsers */
	write_temp(cert, "-----BEGIN CERTIFICATE-----\n");
	/* a certificate without its key; a missing CA file */
	snprintf(text, 512, "[fetch]\nclient_cert = %s\nca_file = /nonexistent/ca.pem\n", cert);
	ck_assert_int_eq(load_text(text), 0);
	ck_assert_int_eq(check_into_text(), 2);
	ck_assert_msg(
		strstr(err_text, "conf: fetch.client_cert and fetch.client_key go together\n"),
		"%s", err_text);
	ck_assert_msg(strstr(err_text, "conf: fetch.ca_file: cannot read /nonexistent/ca.pem: "
				       "No such file or directory\n"),
		      "%s", err_text);
	/* not a regular file: a FIFO would block the loop on a reload */
	config_free(cfg);
	cfg = config_new();
	ck_assert_int_eq(load_text("[fetch]\nca_file = /dev/null\n"), 0);
	ck_assert_int_eq(check_into_text(), 1);
	ck_assert_msg(strstr(err_text, "/dev/null is not a regular file"), "%s", err_text);
	unlink(cert);
	free(text);
}
END_TEST

/* config_dump into a malloc'd string. */
static char *dump_text(const struct fetchd_config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(out);
	config_dump(c, out);
	fclose(out);
	return text;
}

/* fetchd -T: what config_dump writes reads back to the same values, and
 * says each of them in a unit the parser takes. */
START_TEST(test_dump_reads_back_to_the_same_configuration)
{
	char *first, *second;

	ck_assert_int_eq(
		load_text("[server]\nlisten = 127.0.0.1:9000, [::1]:9001\n"
			  "max_request_bytes = 1536K\nidle_timeout = 1500ms\n"
			  "lame_duck = 2m\nshutdown_timeout = 1h\nmax_batch = 7\n"
			  "[pool]\nthreads = 3\n"
			  "[pool.slow]\nthreads = 2\nqueue_limit = 9\nhosts = *.slow.example\n"
			  "[fetch]\nschemes = https\nmax_response_bytes = 3G\n"
			  "user_agent = probe/1\n"
			  "[security]\nallow = 10.0.0.0/8, fc00::/7\nallow_hosts = a.example\n"
			  "[log]\nlevel = debug\naccess_log = false\n"),
		0);
	/* as fetchd -T: loaded, then checked (min_threads unset becomes threads) */
	ck_assert_int_eq(config_check(cfg, "dump", stderr), 0);
	first = dump_text(cfg);
	static const char *const want[] = {
		"[server]\nlisten = 127.0.0.1:9000, [::1]:9001\n",
		"\nmax_request_bytes = 1536K\n",
		"\nidle_timeout = 1500ms\n",
		"\nlame_duck = 2m\n",
		"\nshutdown_timeout = 1h\n",
		"\nmax_batch = 7\n",
		"\nauth_token_file =\n",
		"[pool]\nthreads = 3\n",
		"\nqueue_limit = 1024\n",
		"\nmin_threads = 3\n",
		"[pool.slow]\nthreads = 2\nqueue_limit = 9\nhosts = *.slow.example\n",
		"\nschemes = https\n",
		"\nmax_response_bytes = 3G\n",
		"\nuser_agent = probe/1\n",
		"\nconnect_timeout = 5s\n",
		"\nverify_tls = true\n",
		"\nallow = 10.0.0.0/8, fc00::/7\n",
		"\ndeny =\n",
		"\nallow_hosts = a.example\n",
		"\ndeny_private = true\n",
		"[log]\nlevel = debug\naccess_log = false\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(first, want[i]) != NULL, "no '%s' in:\n%s", want[i], first);
	/* every key of the shipped file's sections, defaults included */
	static const char *const keys[] = {
		"reuse_port",	 "max_connections", "max_pending_bytes", "request_timeout",
		"queue_limit",	 "timeout",	    "low_speed_limit",	 "low_speed_time",
		"max_redirects", "allow_insecure",  "ca_file",		 "proxy",
		"client_cert",	 "client_key",	    "allow_downgrade",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *line = NULL;

		ck_assert_int_gt(asprintf(&line, "\n%s =", keys[i]), 0);
		ck_assert_msg(strstr(first, line) != NULL, "no key %s in:\n%s", keys[i], first);
		free(line);
	}
	config_free(cfg);
	cfg = config_new();
	ck_assert_ptr_nonnull(cfg);
	ck_assert_msg(load_text(first) == 0, "the dump does not load:\n%s\n%s", err_text, first);
	ck_assert_int_eq(config_check(cfg, "dump", stderr), 0);
	second = dump_text(cfg);
	ck_assert_str_eq(second, first);
	free(first);
	free(second);
}
END_TEST

/* Every bad item of a list line is reported, each on its own line with
 * its reason; the good items of that line are not applied. */
START_TEST(test_every_bad_list_item_is_reported)
{
	int n = load_text(
		"[security]\n"
		"allow = 10.0.0.0/33, 10.1.2.3/8, 192.168.0.0/16, not-a-cidr, fe80::1/10, "
		"10.0.0.0/x\n"
		"[fetch]\nschemes = ftp, https, gopher\n"
		"[server]\nlisten = 1.2.3.4, 127.0.0.1:80, :99\n"
		"[pool.p]\nthreads = 1\nhosts = ok.example, bad host, a..b\n");

	expect_error(2, "security.allow: bad CIDR '10.0.0.0/33': the prefix /33 is longer than 32 "
			"bits");
	expect_error(2, "security.allow: bad CIDR '10.1.2.3/8': host bits are set beyond /8 (the "
			"network is 10.0.0.0/8)");
	expect_error(2, "security.allow: bad CIDR 'not-a-cidr': not an IPv4 or IPv6 address");
	expect_error(2, "security.allow: bad CIDR 'fe80::1/10': host bits are set beyond /10 (the "
			"network is fe80::/10)");
	expect_error(2, "security.allow: bad CIDR '10.0.0.0/x': the prefix '/x' is not a number");
	expect_error(4, "fetch.schemes: scheme 'ftp' is never allowed");
	expect_error(4, "fetch.schemes: scheme 'gopher' is never allowed");
	expect_error(6, "server.listen: bad address '1.2.3.4' (use host:port or [v6]:port)");
	expect_error(6, "server.listen: bad address ':99' (use host:port or [v6]:port)");
	expect_error(9, "pool.p.hosts: bad host pattern 'bad host'");
	expect_error(9, "pool.p.hosts: bad host pattern 'a..b'");
	ck_assert_int_eq(n, 11);
	ck_assert_int_eq(count_lines(err_text), 11);
	/* the line was refused whole: the good 192.168.0.0/16 is not in */
	ck_assert_uint_eq(cfg->n_allow, 0);
}
END_TEST

/* What the messages, fetchd.conf and fetchd.conf(5) say is accepted, is:
 * durations in ms, s, m or h; sizes K, M, G in powers of 1024, with KB and
 * KiB meaning K. */
START_TEST(test_documented_units_are_accepted)
{
	ck_assert_int_eq(load_text("[server]\nlame_duck = 1h\nidle_timeout = 1.5m\n"
				   "request_timeout = 250ms\nshutdown_timeout = 2\n"
				   "max_request_bytes = 64KiB\nmax_pending_bytes = 1MB\n"
				   "[fetch]\nmax_response_bytes = 2G\n"),
			 0);
	ck_assert_uint_eq(cfg->lame_duck_ms, 3600000);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 90000);
	ck_assert_uint_eq(cfg->request_timeout_ms, 250);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 2000);
	ck_assert_uint_eq(cfg->max_request_bytes, 64 * 1024);
	ck_assert_uint_eq(cfg->max_pending_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg->max_response_bytes, UINT64_C(2) << 30);
	ck_assert_int_eq(load_text("[fetch]\ntimeout = 1d\nmax_response_bytes = 1T\n"), 2);
	expect_error(2, "fetch.timeout: bad duration '1d' (use a number with ms, s, m or h; a bare "
			"number is seconds)");
	expect_error(3, "fetch.max_response_bytes: bad size '1T' (use bytes, or a number with K, M "
			"or G: powers of 1024, KB and KiB meaning K)");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_match_spec_section_3);
	tcase_add_test(tc, test_dump_reads_back_to_the_same_configuration);
	tcase_add_test(tc, test_every_bad_list_item_is_reported);
	tcase_add_test(tc, test_documented_units_are_accepted);
	tcase_add_test(tc, test_shipped_config_loads_cleanly_and_equals_defaults);
	tcase_add_test(tc, test_every_supported_key_is_parsed);
	tcase_add_test(tc, test_bad_duration_message_names_key_and_line);
	tcase_add_test(tc, test_bad_size_message_names_key_and_line);
	tcase_add_test(tc, test_zero_size_and_timeout_are_rejected);
	tcase_add_test(tc, test_duration_over_a_day_is_rejected);
	tcase_add_test(tc, test_bool_accepts_true_false_yes_no_on_off_1_0);
	tcase_add_test(tc, test_bool_rejects_other_words);
	tcase_add_test(tc, test_unknown_key_reported_with_line_number);
	tcase_add_test(tc, test_unknown_section_reported_once_at_its_header);
	tcase_add_test(tc, test_key_outside_section_is_an_error);
	tcase_add_test(tc, test_all_errors_are_reported_not_only_the_first);
	tcase_add_test(tc, test_numbers_reject_garbage_sign_and_range);
	tcase_add_test(tc, test_threads_1024_and_queue_limit_1000000_are_accepted);
	tcase_add_test(tc, test_connection_limits_are_read);
	tcase_add_test(tc, test_connection_limit_defaults);
	tcase_add_test(tc, test_connection_limits_out_of_range_are_reported);
	tcase_add_test(tc, test_unix_listen_is_not_supported_yet);
	tcase_add_test(tc, test_named_pool_sections_are_parsed);
	tcase_add_test(tc, test_named_pool_errors_name_the_line);
	tcase_add_test(tc, test_schemes_file_is_never_allowed);
	tcase_add_test(tc, test_schemes_empty_list_is_an_error);
	tcase_add_test(tc, test_schemes_line_replaces_not_appends);
	tcase_add_test(tc, test_listen_accepts_host_port_v6_and_port_zero);
	tcase_add_test(tc, test_listen_rejects_malformed_addresses);
	tcase_add_test(tc, test_repeated_list_lines_append_after_first_replaces_default);
	tcase_add_test(tc, test_config_set_replace_empties_list_first);
	tcase_add_test(tc, test_config_set_append_keeps_existing_items);
	tcase_add_test(tc, test_config_set_failure_leaves_list_unchanged);
	tcase_add_test(tc, test_config_set_unknown_names_are_errors);
	tcase_add_test(tc, test_bad_cidr_and_host_pattern_are_reported);
	tcase_add_test(tc, test_long_allow_line_with_500_cidrs_is_kept_whole);
	tcase_add_test(tc, test_line_longer_than_64k_is_reported_not_cut);
	tcase_add_test(tc, test_semicolon_after_whitespace_starts_inline_comment);
	tcase_add_test(tc, test_indented_line_is_not_a_continuation);
	tcase_add_test(tc, test_user_agent_keeps_inner_spaces);
	tcase_add_test(tc, test_empty_path_values_mean_null);
	tcase_add_test(tc, test_log_level_names_parsed_and_bad_level_rejected);
	tcase_add_test(tc, test_missing_file_reports_cannot_open);
	tcase_add_test(tc, test_directory_as_file_reports_cannot_read);
	tcase_add_test(tc, test_config_check_requires_a_listen_address);
	tcase_add_test(tc, test_config_check_rejects_duplicate_listen);
	tcase_add_test(tc, test_min_threads_defaults_to_threads_a_fixed_pool);
	tcase_add_test(tc, test_elastic_pool_keys_are_read);
	tcase_add_test(tc, test_per_host_rules_default_off);
	tcase_add_test(tc, test_per_host_rules_are_read);
	tcase_add_test(tc, test_per_host_limit_out_of_range_names_the_key);
	tcase_add_test(tc, test_per_host_interval_must_be_a_duration);
	tcase_add_test(tc, test_min_threads_above_threads_is_refused);
	tcase_add_test(tc, test_stack_size_below_the_floor_is_refused);
	tcase_add_test(tc, test_more_descriptors_than_the_limit_allows_are_refused);
	tcase_add_test(tc, test_tls_files_are_read_when_checked);
	tcase_add_test(tc, test_tls_file_problems_are_reported);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
