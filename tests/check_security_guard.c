/* The destination guard (SSRF): loopback in every literal spelling (the
 * JSON and GET forms, batch items) and off-machine addresses denied before
 * any connection; [security] deny over allow, allow_hosts (also on redirect
 * hops), and the daemon's own interface addresses, refreshed on reload.
 *
 * Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]). No case
 * sends traffic anywhere but 127.0.0.0/8 and ::1.
 *
 * A shared fetchd (testlib.h: guard_d, main_d, big_d) is started once per
 * TCase, so the cases of a TCase hit the same daemon. Waits are bounded
 * polls; nothing sleeps for a fixed long time.
 *
 * Cases that name an off-machine address (10.0.0.1, 169.254.169.254,
 * fc00::1, ...) do not rely on fetchd's guard to keep it so: main()
 * re-executes this program under `unshare -n` (netns.h), in a network
 * namespace whose only interface is lo, and registers those cases only there.
 * Without root or a working unshare they are skipped, with a note saying why. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "harness.h"
#include "netns.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* Set by main() when this process runs in a private network namespace
 * whose only interface is lo. */
static bool in_netns;

/* ---- private targets in every literal form (loopback denied) ---- */

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
	"http://169.254.169.254/latest/meta-data/",	  /* cloud metadata */
	"http://0xa9fea9fe/latest/meta-data/",		  /* the same, one hex integer */
	"http://10.0.0.1/",				  /* RFC 1918 */
	"http://0x0a000001/",				  /* the same, one hex integer */
	"http://172.16.0.1/",				  /* RFC 1918 */
	"http://192.168.1.1/",				  /* RFC 1918 */
	"http://100.64.0.1/",				  /* CGNAT */
	"http://[fc00::1]/",				  /* unique local */
	"http://[fe80::1%25lo]/",			  /* link-local with a zone id */
	"http://[64:ff9b::a00:1]/",			  /* NAT64 of 10.0.0.1 */
	"http://[2002:a00:1::]/",			  /* 6to4 of 10.0.0.1 */
	"http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", /* Teredo, client 10.0.0.1 */
	"http://[::a00:1]/",				  /* IPv4-compatible 10.0.0.1 */
	"http://[::ffff:169.254.169.254]/",		  /* IPv4-mapped metadata */
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

/* ---- [security] deny, allow_hosts ---- */

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

static Suite *security_guard_suite(void)
{
	Suite *s = suite_create("security_guard");
	TCase *tc;

	tc = tcase_create("loopback_denied");
	tcase_add_unchecked_fixture(tc, guard_setup, guard_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_loop_test(tc, test_loopback_literal_is_denied, 0, N_LOOPBACK_FORMS);
	tcase_add_test(tc, test_get_form_loopback_is_denied);
	tcase_add_test(tc, test_batch_items_to_loopback_are_denied);
	if (in_netns)
		tcase_add_loop_test(tc, test_off_machine_literal_is_denied, 0, N_OFF_MACHINE_FORMS);
	tcase_add_test(tc, test_guard_daemon_still_serves_and_is_idle);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, own_setup, own_teardown);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_deny_wins_over_allow);
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
	in_netns = netns_enter_private(
		argv, "the off-machine cases (direct off-machine addresses, the "
		      "unreachable-network control, an interface address of our own)");
	harness_init();
	return run_suite(security_guard_suite(), CK_ENV);
}
