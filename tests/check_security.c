/* Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]).
 *
 * No case sends traffic anywhere but 127.0.0.0/8 and ::1. Cases that name
 * an off-machine address (10.0.0.1, 169.254.169.254, fc00::1, ...) do not
 * rely on fetchd's guard to keep it so: main() re-executes this program
 * under `unshare -n`, in a network namespace whose only interface is lo, and
 * registers those cases only there. Without root or a working unshare they
 * are skipped, with a note saying why.
 *
 * Each shared fetchd is started once per TCase (unchecked fixtures, in the
 * runner process), so the cases of a TCase hit the same daemon; its last
 * case checks that the daemon still answers a normal fetch, holds no busy
 * worker or queued task, and has logged no sanitizer report. Waits are
 * bounded polls; nothing sleeps for a fixed long time. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120
#define QUICK_MS 9000  /* a 1 s deadline must be answered well before this */

/* Set by main() when this process runs in a private network namespace
 * whose only interface is lo. */
static bool in_netns;

static struct fetchd guard_d; /* loopback denied (no --allow) */
static struct fetchd main_d;  /* --allow 127.0.0.1/32, small pool, small limits */
static struct fetchd big_d;   /* --allow 127.0.0.1/32, default request size */
static struct fetchd own_d;   /* started by the test itself */

/* ---- raw client ---- */

/* POST /v1/fetch for url on a fresh connection; the open fd. */
static int raw_fetch(int port, const char *url)
{
	char *body = str_printf("{\"url\":\"%s\"}", url);
	char *req = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body), body);
	int fd = raw_connect(port);

	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_msg(raw_send(fd, req, strlen(req)) == 0, "cannot send the raw request");
	free(req);
	free(body);
	return fd;
}

/* Read from fd until an HTTP status line has arrived: its code, or -1 on
 * EOF, error or timeout. */
static int raw_read_status(int fd, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	char buf[512];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;
		int code;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n") != NULL)
			return sscanf(buf, "HTTP/1.%*d %d", &code) == 1 ? code : -1;
	}
	return -1;
}

/* ---- a hostile upstream of our own (127.0.0.1, in this process) ---- */

enum toy_mode {
	TOY_SILENT,	     /* reads the request, never answers */
	TOY_DRIP_BODY,	     /* a 200 promising 100000 bytes, then one byte every 50 ms */
	TOY_DRIP_HEADERS,    /* a status line, then a header value a byte every 50 ms */
	TOY_ENDLESS_HEADERS, /* header lines without end, as fast as they are read */
};

struct toy {
	enum toy_mode mode;
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	atomic_int accepted;
	atomic_bool peer_closed; /* the client closed a connection being served */
};

/* Has the peer closed fd? Waits up to ms for something to read. */
static bool toy_peer_gone(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return false;
	if (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP))
		return true;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static bool toy_send(int fd, const char *s, size_t len)
{
	ssize_t n = send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

static void toy_serve(struct toy *t, int fd, uint64_t end)
{
	static const char body_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 100000\r\n\r\n";
	static const char hdr_head[] = "HTTP/1.1 200 OK\r\nX-Drip: ";
	static const char status_line[] = "HTTP/1.1 200 OK\r\n";
	char line[1000];
	int interval = 50;

	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	if (t->mode == TOY_DRIP_BODY)
		toy_send(fd, body_head, sizeof(body_head) - 1);
	else if (t->mode == TOY_DRIP_HEADERS)
		toy_send(fd, hdr_head, sizeof(hdr_head) - 1);
	else if (t->mode == TOY_ENDLESS_HEADERS) {
		toy_send(fd, status_line, sizeof(status_line) - 1);
		interval = 1;
	}
	while (!atomic_load(&t->stop) && now_ms() < end) {
		bool ok = true;

		if (toy_peer_gone(fd, interval)) {
			atomic_store(&t->peer_closed, true);
			return;
		}
		switch (t->mode) {
		case TOY_SILENT:
			break;
		case TOY_DRIP_BODY:
		case TOY_DRIP_HEADERS:
			ok = toy_send(fd, "a", 1);
			break;
		case TOY_ENDLESS_HEADERS:
			for (int i = 0; i < 8 && ok; i++)
				ok = toy_send(fd, line, sizeof(line));
			break;
		}
		if (!ok) {
			atomic_store(&t->peer_closed, true);
			return;
		}
	}
}

static void *toy_main(void *arg)
{
	struct toy *t = arg;
	uint64_t end = now_ms() + 60000;

	while (!atomic_load(&t->stop) && now_ms() < end) {
		struct pollfd pfd = {.fd = t->lfd, .events = POLLIN};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		atomic_fetch_add(&t->accepted, 1);
		toy_serve(t, fd, end);
		close(fd);
	}
	return NULL;
}

static void toy_start(struct toy *t, enum toy_mode mode)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(t, 0, sizeof(*t));
	t->mode = mode;
	atomic_init(&t->stop, false);
	atomic_init(&t->accepted, 0);
	atomic_init(&t->peer_closed, false);
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(t->lfd != -1, "socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(t->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind: %s",
		      strerror(errno));
	ck_assert_msg(listen(t->lfd, 16) == 0, "listen: %s", strerror(errno));
	ck_assert_msg(getsockname(t->lfd, (struct sockaddr *)&sin, &len) == 0, "getsockname: %s",
		      strerror(errno));
	t->port = ntohs(sin.sin_port);
	ck_assert_msg(pthread_create(&t->thread, NULL, toy_main, t) == 0, "pthread_create failed");
}

static void toy_stop(struct toy *t)
{
	atomic_store(&t->stop, true);
	pthread_join(t->thread, NULL);
	close(t->lfd);
}

static bool toy_wait_peer_closed(struct toy *t)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!atomic_load(&t->peer_closed)) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* ---- fixtures ---- */

/* Keys a main-daemon case may hold at the upstream: released before each
 * case, so one failed case does not starve the next. */
static const char *const hold_keys[] = {"dcq-hold", "dcr", "flood", "hang"};

#define MAIN_CONFIG                                                                            \
	"max_request_bytes = 64K\n"                                                            \
	"[pool]\nthreads = 2\nqueue_limit = 4\n"                                               \
	"[fetch]\nmax_response_bytes = 1M\n"

static void guard_setup(void)
{
	upstream_start(&up);
	fetchd_start(&guard_d, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 4\n"});
}

static void guard_teardown(void)
{
	fetchd_stop(&guard_d);
	upstream_stop(&up);
}

static void main_setup(void)
{
	upstream_start(&up);
	fetchd_start(&main_d,
		     &(struct fetchd_opts){.extra_config = MAIN_CONFIG, .allow_loopback = true});
}

static void main_teardown(void)
{
	fetchd_stop(&main_d);
	upstream_stop(&up);
}

/* Before each case on the main daemon: nothing held, nothing in flight. */
static void main_settle(void)
{
	for (size_t i = 0; i < sizeof(hold_keys) / sizeof(hold_keys[0]); i++)
		release_held(&up, hold_keys[i], 0);
	ck_assert_msg(wait_idle(&main_d), "the main fetchd is not idle before the case");
}

static void big_setup(void)
{
	upstream_start(&up);
	fetchd_start(&big_d, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 2\n",
						    .allow_loopback = true});
}

static void big_teardown(void)
{
	fetchd_stop(&big_d);
	upstream_stop(&up);
}

static void own_setup(void)
{
	upstream_start(&up);
	own_d.pid = -1;
}

static void own_teardown(void)
{
	fetchd_stop(&own_d);
	upstream_stop(&up);
}

/* ---- 1. private targets in every literal form (loopback denied) ---- */

/* Every spelling of a loopback or "this host" address; fetchd judges the
 * address curl connects to, never the spelling. */
static const char *const loopback_forms[] = {
	"127.0.0.1",	      /* dotted quad */
	"2130706433",	      /* one decimal integer */
	"0x7f000001",	      /* one hex integer */
	"017700000001",	      /* one octal integer */
	"0x7f.1",	      /* hex, two parts */
	"0177.0.0.1",	      /* octal first part */
	"127.1",	      /* two parts */
	"127.0.1",	      /* three parts */
	"127.255.255.254",    /* the far end of 127/8 */
	"[::1]",	      /* IPv6 loopback */
	"[::ffff:127.0.0.1]", /* IPv4-mapped, dotted */
	"[::ffff:7f00:1]",    /* IPv4-mapped, hex */
	"localhost",	      /* a name that resolves to 127.0.0.1 (and ::1) */
	"0.0.0.0",	      /* "this host": Linux connects it to loopback */
	"0",		      /* 0.0.0.0 as one integer */
	"[::]",		      /* the unspecified IPv6 address: loopback too */
};
#define N_LOOPBACK_FORMS ((int)(sizeof(loopback_forms) / sizeof(loopback_forms[0])))

START_TEST(test_loopback_literal_is_denied)
{
	char *key = str_printf("lit%d", _i);
	char *url = str_printf("http://%s:%d/count?key=%s", loopback_forms[_i], up.port, key);
	struct http_resp r;

	fetch_url(&guard_d, url, &r);
	ck_assert_msg(r.status != 200, "%s was fetched: %.1000s", url, body_of(&r));
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, "hop 0");
	http_resp_free(&r);
	expect_no_hits(key);
	free(url);
	free(key);
}
END_TEST

START_TEST(test_get_form_loopback_is_denied)
{
	char *url = str_printf("http://0x7f.1:%d/count?key=getform", up.port);
	char *enc = url_encode(url);
	char *path = str_printf("/v1/fetch?url=%s", enc);
	struct http_resp r;

	get_ok(guard_d.port, path, &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	expect_no_hits("getform");
	free(path);
	free(enc);
	free(url);
}
END_TEST

START_TEST(test_batch_items_to_loopback_are_denied)
{
	char *a = str_printf("http://127.1:%d/count?key=batch", up.port);
	char *b = str_printf("http://[::ffff:7f00:1]:%d/count?key=batch", up.port);
	char *c = str_printf("http://localhost:%d/count?key=batch", up.port);
	struct http_resp r;

	ck_assert_msg(http_post_obj(guard_d.port, "/v1/batch",
				    json_pack("{s:[{s:s},{s:s},{s:s}]}", "requests", "url", a,
					      "url", b, "url", c),
				    &r) == 0,
		      "POST /v1/batch failed");
	expect_status(&r, 200);
	ck_assert_msg(json_array_size(json_path(r.json, "results")) == 3, "results: %.1000s",
		      body_of(&r));
	expect_str(&r, "results.0.error.code", "destination_denied");
	expect_str(&r, "results.1.error.code", "destination_denied");
	expect_str(&r, "results.2.error.code", "destination_denied");
	http_resp_free(&r);
	expect_no_hits("batch");
	free(a);
	free(b);
	free(c);
}
END_TEST

/* Off-machine addresses, direct. Registered only inside the private
 * network namespace: there is no route off the machine there, so even a
 * guard failure could not send a packet anywhere. */
static const char *const off_machine_forms[] = {
	"http://169.254.169.254/latest/meta-data/", /* cloud metadata */
	"http://0xa9fea9fe/latest/meta-data/",	    /* the same, one hex integer */
	"http://10.0.0.1/",			    /* RFC 1918 */
	"http://0x0a000001/",			    /* the same, one hex integer */
	"http://172.16.0.1/",			    /* RFC 1918 */
	"http://192.168.1.1/",			    /* RFC 1918 */
	"http://100.64.0.1/",			    /* CGNAT */
	"http://[fc00::1]/",			    /* unique local */
	"http://[fe80::1%25lo]/",		    /* link-local with a zone id */
	"http://[64:ff9b::a00:1]/",		    /* NAT64 of 10.0.0.1 */
	"http://[2002:a00:1::]/",		    /* 6to4 of 10.0.0.1 */
	"http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", /* Teredo, client 10.0.0.1 */
	"http://[::a00:1]/",			    /* IPv4-compatible 10.0.0.1 */
	"http://[::ffff:169.254.169.254]/",	    /* IPv4-mapped metadata */
};
#define N_OFF_MACHINE_FORMS ((int)(sizeof(off_machine_forms) / sizeof(off_machine_forms[0])))

START_TEST(test_off_machine_literal_is_denied)
{
	struct http_resp r;

	ck_assert_msg(in_netns, "off-machine case outside the private namespace");
	fetch_url(&guard_d, off_machine_forms[_i], &r);
	ck_assert_msg(r.status != 200, "%s was fetched: %.1000s", off_machine_forms[_i],
		      body_of(&r));
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, "hop 0");
	http_resp_free(&r);
}
END_TEST

START_TEST(test_guard_daemon_still_serves_and_is_idle)
{
	/* loopback is denied here, so the normal fetch is the denial itself;
	 * the full /json check runs on the daemons that allow the upstream */
	char *url = up_url(&up, "/json");
	struct http_resp r;

	ck_assert_msg(kill(guard_d.pid, 0) == 0, "fetchd is gone");
	get_ok(guard_d.port, "/healthz", &r);
	expect_status(&r, 200);
	expect_str(&r, "status", "ok");
	http_resp_free(&r);
	fetch_url(&guard_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	ck_assert_msg(wait_idle(&guard_d), "fetchd leaked work: busy %ld, queued %ld",
		      pool_stat(&guard_d, "busy"), pool_stat(&guard_d, "queued"));
	free(url);
}
END_TEST

/* ---- 2. redirects from the allowed upstream ---- */

/* A redirect from the allowed upstream to target: 403 naming hop 1, and
 * key (may be NULL) never hit. */
static void check_redirect_denied(const char *target, const char *key, const char *hop)
{
	char *url = redirect_to(target);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	ck_assert_msg(r.status != 200, "the redirect to %s was followed: %.1000s", target,
		      body_of(&r));
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, hop);
	http_resp_free(&r);
	if (key != NULL)
		expect_no_hits(key);
	free(url);
}

START_TEST(test_redirect_to_other_loopback_address_is_denied_at_hop_1)
{
	char *target = str_printf("http://127.0.0.2:%d/count?key=r127002", up.port);

	check_redirect_denied(target, "r127002", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_ipv6_loopback_is_denied)
{
	char *target = str_printf("http://[::1]:%d/count?key=rv6", up.port);

	check_redirect_denied(target, "rv6", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_mapped_other_loopback_is_denied)
{
	char *target = str_printf("http://[::ffff:127.0.0.2]:%d/count?key=rmapped", up.port);

	check_redirect_denied(target, "rmapped", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_integer_loopback_is_denied)
{
	char *target = str_printf("http://2130706434:%d/count?key=rint", up.port);

	check_redirect_denied(target, "rint", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_second_redirect_to_denied_address_names_hop_2)
{
	char *target = str_printf("http://127.0.0.2:%d/count?key=rhop2", up.port);
	char *first = redirect_to(target);

	check_redirect_denied(first, "rhop2", "hop 2");
	free(first);
	free(target);
}
END_TEST

START_TEST(test_redirect_to_fetchd_own_port_is_denied)
{
	char *target = str_printf("http://127.0.0.1:%d/v1/stats", main_d.port);

	check_redirect_denied(target, NULL, "hop 1");
	free(target);
}
END_TEST

/* A redirect to a scheme fetchd never fetches: 502 naming the scheme. */
static void check_redirect_scheme_refused(const char *target, const char *scheme)
{
	char *url = redirect_to(target);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "upstream_error");
	expect_message_has(&r, scheme);
	expect_int(&r, "error.curl_code", 1); /* CURLE_UNSUPPORTED_PROTOCOL */
	ck_assert_msg(strstr(body_of(&r), "root:") == NULL, "local file content leaked: %.1000s",
		      body_of(&r));
	http_resp_free(&r);
	free(url);
}

START_TEST(test_redirect_to_file_url_is_502_naming_the_scheme)
{
	check_redirect_scheme_refused("file:///etc/passwd", "file");
}
END_TEST

START_TEST(test_redirect_to_gopher_is_502_naming_the_scheme)
{
	char *target = str_printf("gopher://127.0.0.1:%d/1count?key=gopher", up.port);

	check_redirect_scheme_refused(target, "gopher");
	expect_no_hits("gopher");
	free(target);
}
END_TEST

START_TEST(test_first_url_file_and_gopher_are_unsupported_scheme)
{
	static const char *const urls[] = {"file:///etc/passwd", "gopher://127.0.0.1/",
					   "dict://127.0.0.1:11211/stat", "FILE:///etc/passwd"};
	struct http_resp r;

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		fetch_url(&main_d, urls[i], &r);
		expect_error(&r, 400, "unsupported_scheme");
		http_resp_free(&r);
	}
}
END_TEST

/* Netns only: the metadata address behind a redirect. */
START_TEST(test_redirect_to_metadata_address_is_denied_at_hop_1)
{
	ck_assert_msg(in_netns, "off-machine case outside the private namespace");
	check_redirect_denied("http://169.254.169.254/latest/meta-data/", NULL, "hop 1");
	check_redirect_denied("http://10.0.0.1/", NULL, "hop 1");
}
END_TEST

/* ---- 3. CRLF and NUL injection ---- */

START_TEST(test_crlf_in_header_value_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-value");
	struct http_resp r;

	fetch(&main_d,
	      json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-A", "a\r\nX-Injected: 1"),
	      &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	/* a bare LF is as bad as CRLF */
	fetch(&main_d,
	      json_pack("{s:s, s:[[s,s]]}", "url", url, "headers", "X-A", "a\nX-Injected: 1"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-value");
	free(url);
}
END_TEST

START_TEST(test_crlf_and_colon_in_header_name_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-name");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-A\r\nB", "v"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	/* not a token: a colon would split the line differently upstream */
	fetch(&main_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-Injected:1", "v"),
	      &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-name");
	free(url);
}
END_TEST

START_TEST(test_raw_cr_or_lf_in_url_is_400)
{
	char *a = up_url(&up, "/count?key=crlf-url\r\nX-Injected: 1");
	char *b = up_url(&up, "/count?key=crlf-url\nX-Injected: 1");
	char *c = up_url(&up, "/count?key=crlf-url HTTP/1.1\r\nX-Injected: 1\r\n\r\n");
	struct http_resp r;

	fetch_url(&main_d, a, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_url(&main_d, b, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_url(&main_d, c, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-url");
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_get_form_url_decoding_to_crlf_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-get\r\nX-Injected: 1");
	char *enc = url_encode(url);
	char *path = str_printf("/v1/fetch?url=%s", enc);
	struct http_resp r;

	get_ok(main_d.port, path, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-get");
	free(path);
	free(enc);
	free(url);
}
END_TEST

START_TEST(test_crlf_in_method_is_400)
{
	char *url = up_url(&up, "/count?key=crlf-method");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:s}", "url", url, "method", "GET\r\n"), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch(&main_d,
	      json_pack("{s:s, s:s}", "url", url, "method", "GET /x HTTP/1.1\r\nX-Injected: 1"),
	      &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("crlf-method");
	free(url);
}
END_TEST

START_TEST(test_nul_in_header_or_url_is_400_not_invalid_json)
{
	char *url = up_url(&up, "/count?key=nul");
	char *hdr = str_printf("{\"url\":\"%s\",\"headers\":{\"X-A\":\"a\\u0000b\"}}", url);
	char *name = str_printf("{\"url\":\"%s\",\"headers\":[[\"X-A\\u0000B\",\"v\"]]}", url);
	char *in_url = str_printf("{\"url\":\"%s\\u0000x\"}", url);
	struct http_resp r;

	fetch_text(&main_d, hdr, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_text(&main_d, name, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	fetch_text(&main_d, in_url, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("nul");
	free(in_url);
	free(name);
	free(hdr);
	free(url);
}
END_TEST

START_TEST(test_encoded_crlf_in_url_stays_encoded)
{
	char *url = up_url(&up, "/echo?q=%0D%0AX-Injected:%201");
	struct http_resp r;
	json_t *q;

	fetch_url(&main_d, url, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_absent(&r, "json.headers.x-injected");
	q = json_path(r.json, "json.query");
	ck_assert_msg(json_is_string(q) && strcasestr(json_string_value(q), "%0d%0a") != NULL,
		      "the query should reach the upstream still encoded: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_crlf_in_params_is_encoded)
{
	char *url = up_url(&up, "/echo");
	struct http_resp r;
	json_t *q;

	fetch(&main_d,
	      json_pack("{s:s, s:{s:s, s:s}}", "url", url, "params", "q", "a\r\nX-Injected: 1",
			"k\r\nX-Injected: 2", "v"),
	      &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_absent(&r, "json.headers.x-injected");
	q = json_path(r.json, "json.query");
	ck_assert_msg(json_is_string(q) && strchr(json_string_value(q), '\r') == NULL &&
			      strchr(json_string_value(q), '\n') == NULL &&
			      strcasestr(json_string_value(q), "%0d%0a") != NULL,
		      "params should be percent-encoded: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- 4. oversized input ---- */

/* A request body of 200 KB, over max_request_bytes = 64K. libevent answers
 * 413 itself (in HTML) before fetchd sees it. */
START_TEST(test_request_body_over_max_request_bytes_is_413)
{
	static const char prefix[] = "{\"url\":\"http://127.0.0.1/\",\"body\":\"";
	size_t len = 200 * 1024;
	char *body = malloc(len);
	char *head;
	int fd, status;

	ck_assert_msg(body != NULL, "out of memory");
	memcpy(body, prefix, strlen(prefix));
	memset(body + strlen(prefix), 'a', len - strlen(prefix) - 2);
	memcpy(body + len - 2, "\"}", 2);
	head = str_printf("POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			  len);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, head, strlen(head)), 0);
	/* fetchd may stop reading and close early: a failed send is fine */
	(void)raw_send(fd, body, len);
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 413, "200 KB body: want 413, got %d", status);
	close(fd);
	free(head);
	free(body);
	expect_serving(&main_d, &up);
}
END_TEST

START_TEST(test_chunked_request_body_over_max_request_bytes_is_413)
{
	static const char head[] = "POST /v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	char chunk[8192 + 16];
	int fd, status, n;

	n = snprintf(chunk, sizeof(chunk), "%x\r\n", 8192);
	memset(chunk + n, 'a', 8192);
	memcpy(chunk + n + 8192, "\r\n", 2);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	ck_assert_int_eq(raw_send(fd, head, sizeof(head) - 1), 0);
	for (int i = 0; i < 25; i++)
		if (raw_send(fd, chunk, (size_t)n + 8192 + 2) != 0)
			break;
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 413, "200 KB chunked body: want 413, got %d", status);
	close(fd);
	expect_serving(&main_d, &up);
}
END_TEST

/* Request headers beyond evhttp's header limit (64 KB): libevent answers
 * 400 itself (in HTML), and fetchd keeps serving. */
START_TEST(test_oversized_request_headers_are_rejected)
{
	size_t pad = 100 * 1024;
	char *value = malloc(pad + 1);
	char *req;
	int fd, status;

	ck_assert_msg(value != NULL, "out of memory");
	memset(value, 'a', pad);
	value[pad] = '\0';
	req = str_printf("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n", value);
	fd = raw_connect(main_d.port);
	ck_assert_msg(fd != -1, "cannot connect to fetchd");
	(void)raw_send(fd, req, strlen(req));
	status = raw_read_status(fd, WAIT_MS);
	ck_assert_msg(status == 400, "100 KB request header: want 400, got %d", status);
	close(fd);
	free(req);
	free(value);
	expect_serving(&main_d, &up);
}
END_TEST

/* ---- 5. upstream misbehaviour ---- */

START_TEST(test_endless_body_is_502_response_too_large)
{
	char *url = up_url(&up, "/endless");
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "response_too_large");
	expect_curl_code(&r);
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "stopping at 1M took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_endless_body_with_max_bytes_is_truncated_200)
{
	char *url = up_url(&up, "/endless");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "max_bytes", 1000), &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_bool(&r, "truncated", true);
	expect_int(&r, "size", 1000);
	ck_assert_msg(json_string_length(json_path(r.json, "text")) == 1000, "text: %.200s",
		      body_of(&r));
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_declared_length_over_limit_is_502_response_too_large)
{
	char *url = up_url(&up, "/bytes?n=2097152");
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "response_too_large");
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_slow_upstream_is_504_at_the_deadline)
{
	char *url = up_url(&up, "/delay?ms=10000");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "timeout", 1), &r);
	expect_error(&r, 504, "upstream_timeout");
	expect_curl_code(&r);
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "a 1 s deadline took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_hanging_upstream_is_504_and_the_connection_is_dropped)
{
	char *url = up_url(&up, "/hold?key=hang");
	struct http_resp r;

	fetch(&main_d, json_pack("{s:s, s:i}", "url", url, "timeout", 1), &r);
	expect_error(&r, 504, "upstream_timeout");
	ck_assert_msg(r.elapsed_ms < QUICK_MS, "a 1 s deadline took %.0f ms", r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&up, "hang", "hits"), 1);
	ck_assert_msg(wait_counter(&up, "hang", "held", 0),
		      "fetchd kept the timed-out connection open (held %ld)",
		      upstream_counter(&up, "hang", "held"));
	free(url);
}
END_TEST

static const char *const broken_paths[] = {"/reset", "/reset-mid", "/lie?n=100000", "/garbage"};

START_TEST(test_broken_upstream_is_502_upstream_error)
{
	char *url = up_url(&up, broken_paths[_i]);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	ck_assert_msg(r.status != 200, "%s gave a 200: %.1000s", broken_paths[_i], body_of(&r));
	expect_error(&r, 502, "upstream_error");
	http_resp_free(&r);
	free(url);
}
END_TEST

/* A hostile upstream of our own: toy mode, a 1 s deadline -> want. */
static void check_toy_upstream(enum toy_mode mode, double timeout, long http, const char *code)
{
	struct toy t;
	char *url;
	struct http_resp r;

	toy_start(&t, mode);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&main_d, json_pack("{s:s, s:f}", "url", url, "timeout", timeout), &r);
	expect_error(&r, http, code);
	ck_assert_msg(r.elapsed_ms < (timeout + 8) * 1000, "answered after %.0f ms",
		      r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_int_eq(atomic_load(&t.accepted), 1);
	ck_assert_msg(toy_wait_peer_closed(&t),
		      "fetchd kept the connection to the hostile upstream open");
	toy_stop(&t);
	free(url);
}

START_TEST(test_dripping_body_is_504_at_the_deadline)
{
	check_toy_upstream(TOY_DRIP_BODY, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_dripping_headers_are_504_at_the_deadline)
{
	check_toy_upstream(TOY_DRIP_HEADERS, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_silent_upstream_is_504_at_the_deadline)
{
	check_toy_upstream(TOY_SILENT, 1.0, 504, "upstream_timeout");
}
END_TEST

START_TEST(test_endless_headers_are_502_upstream_error)
{
	check_toy_upstream(TOY_ENDLESS_HEADERS, 20.0, 502, "upstream_error");
}
END_TEST

/* ---- 6. client disconnects ---- */

START_TEST(test_client_gone_while_queued_is_never_sent)
{
	struct bg_request *bg[2];
	char *url = up_url(&up, "/count?key=dcq");
	long cancelled;
	int fd;

	hold_workers(&main_d, &up, bg, 2, "dcq-hold");
	cancelled = pool_stat(&main_d, "cancelled");
	ck_assert_msg(cancelled >= 0, "/v1/stats has no pools.default.cancelled");
	fd = raw_fetch(main_d.port, url);
	ck_assert_msg(wait_pool_stat(&main_d, "queued", 1), "the raw fetch was not queued");
	close(fd);
	ck_assert_msg(wait_pool_stat(&main_d, "cancelled", cancelled + 1),
		      "/v1/stats never counted the cancelled fetch (cancelled %ld, was %ld)",
		      pool_stat(&main_d, "cancelled"), cancelled);
	ck_assert_int_eq(pool_stat(&main_d, "queued"), 0);
	release_held(&up, "dcq-hold", 0);
	join_held(bg, 2);
	ck_assert_msg(counter_stays(&up, "dcq", "hits", 0),
		      "the fetch of a client that went away was sent upstream");
	free(url);
}
END_TEST

START_TEST(test_client_gone_while_running_aborts_the_fetch)
{
	char *url = up_url(&up, "/hold?key=dcr");
	long cancelled, failed;
	int fd;

	cancelled = pool_stat(&main_d, "cancelled");
	failed = pool_stat(&main_d, "failed");
	fd = raw_fetch(main_d.port, url);
	ck_assert_msg(wait_counter(&up, "dcr", "held", 1), "the raw fetch did not reach the upstream");
	ck_assert_msg(pool_stat(&main_d, "busy") >= 1, "no busy worker while the fetch runs");
	close(fd);
	/* the worker aborts the transfer: the upstream sees its client go */
	ck_assert_msg(wait_counter(&up, "dcr", "held", 0),
		      "fetchd kept fetching for a client that went away (held %ld)",
		      upstream_counter(&up, "dcr", "held"));
	ck_assert_msg(wait_idle(&main_d), "the aborted fetch left busy %ld, queued %ld",
		      pool_stat(&main_d, "busy"), pool_stat(&main_d, "queued"));
	ck_assert_int_eq(upstream_counter(&up, "dcr", "hits"), 1);
	ck_assert_msg(pool_stat(&main_d, "cancelled") >= cancelled + 1,
		      "/v1/stats cancelled does not count the aborted running fetch "
		      "(cancelled %ld -> %ld, failed %ld -> %ld)",
		      cancelled, pool_stat(&main_d, "cancelled"), failed,
		      pool_stat(&main_d, "failed"));
	free(url);
}
END_TEST

/* ---- 7. queue flood ---- */

#define FLOOD 30
#define FLOOD_CAPACITY 6 /* threads 2 + queue_limit 4 */

START_TEST(test_queue_flood_admits_exactly_capacity)
{
	struct bg_request *bg[FLOOD];
	char *url = up_url(&up, "/hold?key=flood");
	long rejected = pool_stat(&main_d, "rejected");
	int ok = 0, overloaded = 0;
	uint64_t end;

	ck_assert_msg(rejected >= 0, "/v1/stats has no pools.default.rejected");
	for (int i = 0; i < FLOOD; i++)
		bg[i] = bg_post_obj(main_d.port, "/v1/fetch",
				    json_pack("{s:s, s:i}", "url", url, "timeout", 60));
	/* every one of the 30 is admitted or refused before anything moves */
	ck_assert_msg(wait_pool_stat(&main_d, "rejected", rejected + FLOOD - FLOOD_CAPACITY),
		      "rejected %ld, want %ld", pool_stat(&main_d, "rejected"),
		      rejected + FLOOD - FLOOD_CAPACITY);
	ck_assert_msg(wait_counter(&up, "flood", "held", 2), "held %ld, want 2",
		      upstream_counter(&up, "flood", "held"));
	ck_assert_int_eq(pool_stat(&main_d, "busy"), 2);
	ck_assert_int_eq(pool_stat(&main_d, "queued"), 4);
	ck_assert_int_eq(pool_stat(&main_d, "rejected"), rejected + FLOOD - FLOOD_CAPACITY);
	ck_assert_msg(counter_stays(&up, "flood", "hits", 2), "the queue leaked to the upstream");
	/* the queued ones are held in turn: release until all six went */
	end = now_ms() + WAIT_MS;
	while (upstream_counter(&up, "flood", "hits") < FLOOD_CAPACITY ||
	       upstream_counter(&up, "flood", "held") > 0) {
		ck_assert_msg(now_ms() < end, "the flood did not drain (hits %ld, held %ld)",
			      upstream_counter(&up, "flood", "hits"),
			      upstream_counter(&up, "flood", "held"));
		release_held(&up, "flood", 0);
		sleep_ms(20);
	}
	for (int i = 0; i < FLOOD; i++) {
		struct http_resp r;

		ck_assert_msg(bg_join(bg[i], &r) == 0, "flood fetch %d failed", i);
		if (r.status == 200) {
			expect_int(&r, "status", 200);
			ok++;
		} else {
			char *retry = http_resp_header(&r, "Retry-After");
			char *e = NULL;

			expect_error(&r, 503, "overloaded");
			ck_assert_msg(retry != NULL && strtol(retry, &e, 10) >= 1 && *e == '\0',
				      "503 overloaded needs Retry-After in seconds, got %s",
				      retry ? retry : "(none)");
			free(retry);
			overloaded++;
		}
		http_resp_free(&r);
	}
	ck_assert_int_eq(ok, FLOOD_CAPACITY);
	ck_assert_int_eq(overloaded, FLOOD - FLOOD_CAPACITY);
	ck_assert_int_eq(upstream_counter(&up, "flood", "hits"), FLOOD_CAPACITY);
	free(url);
}
END_TEST

START_TEST(test_main_daemon_still_serves_and_is_idle)
{
	expect_clean_daemon(&main_d);
}
END_TEST

/* ---- 8. large input within max_request_bytes (default 1M) ---- */

/* {"url":..., "json": open^depth close^depth} */
static char *nested_request(const char *url, int depth, const char *open, const char *close_)
{
	size_t ol = strlen(open), cl = strlen(close_);
	char *head = str_printf("{\"url\":\"%s\",\"json\":", url);
	size_t hl = strlen(head), len = hl + (size_t)depth * (ol + cl) + 2;
	char *s = malloc(len), *p;

	ck_assert_msg(s != NULL, "out of memory");
	memcpy(s, head, hl);
	p = s + hl;
	for (int i = 0; i < depth; i++, p += ol)
		memcpy(p, open, ol);
	for (int i = 0; i < depth; i++, p += cl)
		memcpy(p, close_, cl);
	*p++ = '}';
	*p = '\0';
	free(head);
	return s;
}

static void check_nested(const char *open, const char *close_)
{
	char *url = up_url(&up, "/count?key=nested");
	char *body = nested_request(url, 100000, open, close_);
	struct http_resp r;
	const char *code;

	fetch_text(&big_d, body, &r);
	expect_status(&r, 400);
	code = json_string_value(json_path(r.json, "error.code"));
	ck_assert_msg(code != NULL && (strcmp(code, "invalid_json") == 0 ||
				       strcmp(code, "invalid_request") == 0),
		      "want invalid_json or invalid_request: %.1000s", body_of(&r));
	http_resp_free(&r);
	expect_no_hits("nested");
	expect_serving(&big_d, &up);
	free(body);
	free(url);
}

START_TEST(test_json_nested_100000_arrays_is_400)
{
	check_nested("[", "]");
}
END_TEST

START_TEST(test_json_nested_100000_objects_is_400)
{
	check_nested("{\"a\":", "}");
}
END_TEST

START_TEST(test_header_value_of_100k_is_400)
{
	size_t n = 100 * 1024;
	char *url = up_url(&up, "/count?key=bighdr");
	char *value = malloc(n + 1);
	struct http_resp r;

	ck_assert_msg(value != NULL, "out of memory");
	memset(value, 'a', n);
	value[n] = '\0';
	fetch(&big_d, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "X-Big", value), &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("bighdr");
	free(value);
	free(url);
}
END_TEST

START_TEST(test_url_of_100k_is_400)
{
	size_t n = 100 * 1024;
	char *pad = malloc(n + 1);
	char *url;
	struct http_resp r;

	ck_assert_msg(pad != NULL, "out of memory");
	memset(pad, 'a', n);
	pad[n] = '\0';
	url = str_printf("http://127.0.0.1:%d/count?key=bigurl&pad=%s", up.port, pad);
	fetch_url(&big_d, url, &r);
	ck_assert_msg(r.status == 400, "a 100 KB URL: want 400, got %ld (upstream hits %ld); "
		      "body: %.300s", r.status, upstream_counter(&up, "bigurl", "hits"), body_of(&r));
	expect_str(&r, "error.code", "invalid_request");
	http_resp_free(&r);
	expect_no_hits("bigurl");
	free(url);
	free(pad);
}
END_TEST

START_TEST(test_thousand_headers_is_400)
{
	char *url = up_url(&up, "/count?key=manyhdr");
	json_t *list = json_array(), *obj;
	struct http_resp r;

	for (int i = 0; i < 1000; i++)
		json_array_append_new(list, json_pack("[s,s]", "X-Many", "v"));
	obj = json_pack("{s:s, s:o}", "url", url, "headers", list);
	fetch(&big_d, obj, &r);
	expect_error(&r, 400, "invalid_request");
	http_resp_free(&r);
	expect_no_hits("manyhdr");
	free(url);
}
END_TEST

START_TEST(test_big_daemon_still_serves_and_is_idle)
{
	expect_clean_daemon(&big_d);
}
END_TEST

/* An upstream that drips its body is cut off by the low-speed limit long
 * before the fetch's own deadline, and the error says why. */
START_TEST(test_dripping_body_is_cut_off_by_low_speed_limit)
{
	struct toy t;
	char *url;
	struct http_resp r;
	json_t *msg;

	fetchd_start(&own_d,
		     &(struct fetchd_opts){
			     .extra_config = "[fetch]\nlow_speed_limit = 1K\nlow_speed_time = 1s\n",
			     .allow_loopback = true});
	toy_start(&t, TOY_DRIP_BODY);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&own_d, json_pack("{s:s, s:f}", "url", url, "timeout", 25.0), &r);
	expect_error(&r, 504, "upstream_timeout");
	msg = json_path(r.json, "error.message");
	ck_assert_msg(json_is_string(msg) && strstr(json_string_value(msg), "low_speed_limit"),
		      "the error does not name the low-speed limit: %.500s", body_of(&r));
	ck_assert_msg(r.elapsed_ms < 10000, "cut off after %.0f ms; the limit is 1 s",
		      r.elapsed_ms);
	http_resp_free(&r);
	ck_assert_msg(toy_wait_peer_closed(&t),
		      "fetchd kept the connection to the dripping upstream open");
	toy_stop(&t);
	free(url);
	/* a fast upstream is unaffected */
	url = up_url(&up, "/text?n=5000");
	fetch_url(&own_d, url, &r);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* The low-speed limit comes from the running configuration: a worker
 * whose handle already served plain fetches picks up a reloaded one. */
START_TEST(test_low_speed_limit_set_by_reload_reaches_a_warm_worker)
{
	struct fetchd_opts o = {.extra_config = "[pool]\nthreads = 1\n[fetch]\nlow_speed_limit = 0\n",
				.allow_loopback = true,
				.keep_config = true};
	struct toy t;
	char *url = up_url(&up, "/text?n=100");
	struct http_resp r;
	uint64_t until;

	fetchd_start(&own_d, &o);
	for (int i = 0; i < 3; i++) {
		fetch_url(&own_d, url, &r);
		ck_assert_int_eq(r.status, 200);
		http_resp_free(&r);
	}
	free(url);
	fetchd_write_config(&own_d, "[pool]\nthreads = 1\n[fetch]\nlow_speed_limit = 1K\n"
				    "low_speed_time = 1s\n");
	ck_assert_int_eq(fetchd_signal(&own_d, SIGHUP), 0);
	until = now_ms() + 10000;
	while (!fetchd_log_has_line(&own_d, "reloaded", "threads") && now_ms() < until)
		sleep_ms(20);
	ck_assert_msg(fetchd_log_has_line(&own_d, "reloaded", "threads"), "no reload logged");
	toy_start(&t, TOY_DRIP_BODY);
	url = str_printf("http://127.0.0.1:%d/", t.port);
	fetch(&own_d, json_pack("{s:s, s:f}", "url", url, "timeout", 25.0), &r);
	expect_error(&r, 504, "upstream_timeout");
	ck_assert_msg(r.elapsed_ms < 10000,
		      "cut off after %.0f ms: the reloaded 1 s low-speed limit was not used",
		      r.elapsed_ms);
	http_resp_free(&r);
	toy_stop(&t);
	free(url);
}
END_TEST

/* ---- 9. [security] deny, allow_hosts ---- */

START_TEST(test_deny_wins_over_allow)
{
	char *url = up_url(&up, "/count?key=denywins");
	struct http_resp r;

	fetchd_start(&own_d,
		     &(struct fetchd_opts){.extra_config = "[security]\ndeny = 127.0.0.1/32\n",
					    .allow_loopback = true});
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	expect_no_hits("denywins");
	/* 127.0.0.2 is neither allowed nor in deny: still private */
	free(url);
	url = str_printf("http://127.0.0.2:%d/count?key=denywins", up.port);
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	expect_no_hits("denywins");
	free(url);
}
END_TEST

START_TEST(test_allow_hosts_refuses_other_hosts_before_connecting)
{
	char *url = up_url(&up, "/count?key=allowhosts");
	struct http_resp r;

	fetchd_start(&own_d, &(struct fetchd_opts){
				     .extra_config = "[security]\nallow_hosts = example.invalid\n",
				     .allow_loopback = true});
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, "allow_hosts");
	/* refused before any transfer: no curl error */
	expect_absent(&r, "error.curl_code");
	http_resp_free(&r);
	expect_no_hits("allowhosts");
	free(url);
}
END_TEST

START_TEST(test_allow_hosts_applies_to_redirect_hops)
{
	char *target = str_printf("http://localhost:%d/count?key=ahredir", up.port);
	char *url = redirect_to(target);
	struct http_resp r;

	fetchd_start(&own_d,
		     &(struct fetchd_opts){.extra_config = "[security]\nallow_hosts = 127.0.0.1\n",
					    .allow_loopback = true});
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, "hop 1");
	expect_message_has(&r, "allow_hosts");
	http_resp_free(&r);
	expect_no_hits("ahredir");
	free(url);
	free(target);
}
END_TEST

/* Netns only, the control: with 10.0.0.0/8 allowed the fetch is attempted
 * and fails for want of a route, so the 403s above are the guard's doing
 * and the namespace really is sealed. */
START_TEST(test_allowed_private_network_is_unreachable_in_the_namespace)
{
	struct http_resp r;

	ck_assert_msg(in_netns, "off-machine case outside the private namespace");
	fetchd_start(&own_d,
		     &(struct fetchd_opts){.extra_config = "[security]\nallow = 10.0.0.0/8\n"});
	fetch(&own_d, json_pack("{s:s, s:i}", "url", "http://10.0.0.1:9/", "timeout", 5), &r);
	expect_error(&r, 502, "connect_failed");
	http_resp_free(&r);
}
END_TEST

/* Netns only: give lo an extra IPv4 address (label "lo:N", netmask /32)
 * inside the private namespace. ioctl rather than ip(8), which is
 * optional. Returns 0 or -1 (errno set). */
static int lo_add_address(const char *label, const char *ip)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd == -1)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", label);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1 && ioctl(fd, SIOCSIFADDR, &ifr) == 0) {
		inet_pton(AF_INET, "255.255.255.255", &sin->sin_addr);
		if (ioctl(fd, SIOCSIFNETMASK, &ifr) == 0)
			rc = 0;
	}
	close(fd);
	return rc;
}

/* Netns only: fetchd listening on 0.0.0.0, with a public address on a
 * local interface (lo, inside the namespace only), is that address too: a
 * fetch of it at fetchd's own port is denied, in both spellings, although
 * the address is not private. Addresses added later count after a
 * reload. The control: the same address at another port is attempted. */
START_TEST(test_own_public_interface_address_is_denied_and_refreshed_on_reload)
{
	static const char first[] = "11.22.33.44", later[] = "11.22.33.45";
	struct fetchd_opts o = {.listen = "0.0.0.0:0", .keep_config = true};
	struct http_resp r;
	char *url;
	uint64_t until;

	ck_assert_msg(in_netns, "off-machine case outside the private namespace");
	ck_assert_msg(lo_add_address("lo:1", first) == 0, "adding %s to lo: %s", first,
		      strerror(errno));
	fetchd_start(&own_d, &o);

	url = str_printf("http://%s:%d/healthz", first, own_d.port);
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, first);
	http_resp_free(&r);
	free(url);
	url = str_printf("http://[::ffff:%s]:%d/healthz", first, own_d.port);
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	http_resp_free(&r);
	free(url);
	url = str_printf("http://%s:%d/", first, closed_port());
	fetch_url(&own_d, url, &r);
	expect_error(&r, 502, "connect_failed");
	http_resp_free(&r);
	free(url);

	ck_assert_msg(lo_add_address("lo:2", later) == 0, "adding %s to lo: %s", later,
		      strerror(errno));
	fetchd_write_config(&own_d, NULL);
	ck_assert_int_eq(fetchd_signal(&own_d, SIGHUP), 0);
	until = now_ms() + 10000;
	while (!fetchd_log_has_line(&own_d, "reloaded", "threads") && now_ms() < until)
		sleep_ms(20);
	ck_assert_msg(fetchd_log_has_line(&own_d, "reloaded", "threads"), "no reload logged");
	url = str_printf("http://%s:%d/healthz", later, own_d.port);
	fetch_url(&own_d, url, &r);
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, later);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- the private network namespace ---- */

static bool loopback_is_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool up_ = false;

	if (fd == -1)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		up_ = (ifr.ifr_flags & IFF_UP) != 0;
	close(fd);
	return up_;
}

/* ip(8) is optional: the same with SIOCSIFFLAGS. */
static int loopback_up_ioctl(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd == -1)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) == 0)
			rc = 0;
	}
	close(fd);
	return rc;
}

/* Is lo the only interface here (a namespace with no way off the machine)? */
static bool only_loopback_interface(void)
{
	struct ifaddrs *ifs, *i;
	bool only = true;

	if (getifaddrs(&ifs) != 0)
		return false;
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (strcmp(i->ifa_name, "lo") != 0)
			only = false;
	freeifaddrs(ifs);
	return only;
}

/* Does `unshare -n -- true` work here (root, unshare installed, and the
 * kernel or container lets us make a network namespace)? */
static bool unshare_works(void)
{
	pid_t pid = fork();
	int status;

	if (pid == -1)
		return false;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null != -1) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execlp("unshare", "unshare", "-n", "--", "true", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Outside: re-execute this program under `unshare -n` when that can work
 * (it does not return then). Inside: bring lo up and set in_netns when lo
 * is the only interface. Otherwise say why the off-machine cases are
 * skipped. */
static void enter_private_netns(char **argv)
{
	const char *why = NULL;

	if (getenv("FETCHD_IN_NETNS") == NULL) {
		char self[4096], a0[] = "unshare", a1[] = "-n", a2[] = "--";
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *args[5];

		if (geteuid() != 0) {
			why = "not root";
		} else if (!unshare_works()) {
			why = "`unshare -n` is missing or not permitted here";
		} else {
			if (n > 0)
				self[n] = '\0';
			args[0] = a0;
			args[1] = a1;
			args[2] = a2;
			args[3] = n > 0 ? self : argv[0];
			args[4] = NULL;
			setenv("FETCHD_IN_NETNS", "1", 1);
			fflush(NULL);
			execvp("unshare", args);
			unsetenv("FETCHD_IN_NETNS");
			why = "exec unshare failed";
		}
	} else {
		if (system("ip link set lo up") != 0 && loopback_up_ioctl() != 0)
			fprintf(stderr, "check_security: cannot bring lo up: %s\n",
				strerror(errno));
		if (!loopback_is_up()) {
			fprintf(stderr, "check_security: lo is down in the namespace\n");
			exit(EXIT_FAILURE);
		}
		if (only_loopback_interface())
			in_netns = true;
		else
			why = "FETCHD_IN_NETNS is set but this namespace has interfaces besides lo";
	}
	if (!in_netns)
		fprintf(stderr,
			"check_security: SKIPPING the off-machine cases (%d direct addresses, "
			"redirects to 169.254.169.254 and 10.0.0.1, the unreachable-network "
			"control): %s; they run only in a private network namespace\n",
			N_OFF_MACHINE_FORMS, why);
}

static Suite *security_suite(void)
{
	Suite *s = suite_create("security");
	TCase *tc;

	tc = tcase_create("loopback_denied");
	tcase_add_unchecked_fixture(tc, guard_setup, guard_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_loop_test(tc, test_loopback_literal_is_denied, 0, N_LOOPBACK_FORMS);
	tcase_add_test(tc, test_get_form_loopback_is_denied);
	tcase_add_test(tc, test_batch_items_to_loopback_are_denied);
	if (in_netns)
		tcase_add_loop_test(tc, test_off_machine_literal_is_denied, 0,
				    N_OFF_MACHINE_FORMS);
	tcase_add_test(tc, test_guard_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);

	tc = tcase_create("main");
	tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
	tcase_add_checked_fixture(tc, main_settle, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_redirect_to_other_loopback_address_is_denied_at_hop_1);
	tcase_add_test(tc, test_redirect_to_ipv6_loopback_is_denied);
	tcase_add_test(tc, test_redirect_to_mapped_other_loopback_is_denied);
	tcase_add_test(tc, test_redirect_to_integer_loopback_is_denied);
	tcase_add_test(tc, test_second_redirect_to_denied_address_names_hop_2);
	tcase_add_test(tc, test_redirect_to_fetchd_own_port_is_denied);
	tcase_add_test(tc, test_redirect_to_file_url_is_502_naming_the_scheme);
	tcase_add_test(tc, test_redirect_to_gopher_is_502_naming_the_scheme);
	tcase_add_test(tc, test_first_url_file_and_gopher_are_unsupported_scheme);
	if (in_netns)
		tcase_add_test(tc, test_redirect_to_metadata_address_is_denied_at_hop_1);
	tcase_add_test(tc, test_crlf_in_header_value_is_400);
	tcase_add_test(tc, test_crlf_and_colon_in_header_name_is_400);
	tcase_add_test(tc, test_raw_cr_or_lf_in_url_is_400);
	tcase_add_test(tc, test_get_form_url_decoding_to_crlf_is_400);
	tcase_add_test(tc, test_crlf_in_method_is_400);
	tcase_add_test(tc, test_nul_in_header_or_url_is_400_not_invalid_json);
	tcase_add_test(tc, test_encoded_crlf_in_url_stays_encoded);
	tcase_add_test(tc, test_crlf_in_params_is_encoded);
	tcase_add_test(tc, test_request_body_over_max_request_bytes_is_413);
	tcase_add_test(tc, test_chunked_request_body_over_max_request_bytes_is_413);
	tcase_add_test(tc, test_oversized_request_headers_are_rejected);
	tcase_add_test(tc, test_endless_body_is_502_response_too_large);
	tcase_add_test(tc, test_endless_body_with_max_bytes_is_truncated_200);
	tcase_add_test(tc, test_declared_length_over_limit_is_502_response_too_large);
	tcase_add_test(tc, test_slow_upstream_is_504_at_the_deadline);
	tcase_add_test(tc, test_hanging_upstream_is_504_and_the_connection_is_dropped);
	tcase_add_loop_test(tc, test_broken_upstream_is_502_upstream_error, 0,
			    (int)(sizeof(broken_paths) / sizeof(broken_paths[0])));
	tcase_add_test(tc, test_dripping_body_is_504_at_the_deadline);
	tcase_add_test(tc, test_dripping_headers_are_504_at_the_deadline);
	tcase_add_test(tc, test_silent_upstream_is_504_at_the_deadline);
	tcase_add_test(tc, test_endless_headers_are_502_upstream_error);
	tcase_add_test(tc, test_client_gone_while_queued_is_never_sent);
	tcase_add_test(tc, test_client_gone_while_running_aborts_the_fetch);
	tcase_add_test(tc, test_queue_flood_admits_exactly_capacity);
	tcase_add_test(tc, test_main_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);

	tc = tcase_create("large_input");
	tcase_add_unchecked_fixture(tc, big_setup, big_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_json_nested_100000_arrays_is_400);
	tcase_add_test(tc, test_json_nested_100000_objects_is_400);
	tcase_add_test(tc, test_header_value_of_100k_is_400);
	tcase_add_test(tc, test_url_of_100k_is_400);
	tcase_add_test(tc, test_thousand_headers_is_400);
	tcase_add_test(tc, test_big_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, own_setup, own_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_deny_wins_over_allow);
	tcase_add_test(tc, test_dripping_body_is_cut_off_by_low_speed_limit);
	tcase_add_test(tc, test_low_speed_limit_set_by_reload_reaches_a_warm_worker);
	tcase_add_test(tc, test_allow_hosts_refuses_other_hosts_before_connecting);
	tcase_add_test(tc, test_allow_hosts_applies_to_redirect_hops);
	if (in_netns) {
		tcase_add_test(tc, test_allowed_private_network_is_unreachable_in_the_namespace);
		tcase_add_test(tc,
			       test_own_public_interface_address_is_denied_and_refreshed_on_reload);
	}
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	(void)argc;
	enter_private_netns(argv);
	harness_init();
	return run_suite(security_suite(), CK_ENV);
}
