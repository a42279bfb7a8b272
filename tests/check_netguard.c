/* Unit tests for netguard: address classification, CIDR parsing, the
 * check order and host patterns. Only sockaddrs are built and judged; no
 * socket is opened and nothing is sent anywhere. */

#include "netguard.h"

#include <arpa/inet.h>
#include <check.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Builds an AF_INET or AF_INET6 sockaddr from a literal. */
static const struct sockaddr *sa_make(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') == NULL) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		ck_assert_msg(inet_pton(AF_INET, ip, &sin->sin_addr) == 1, "bad literal %s", ip);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		ck_assert_msg(inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1, "bad literal %s", ip);
	}
	return (const struct sockaddr *)ss;
}

static bool is_private(const char *ip)
{
	struct sockaddr_storage ss;
	return netguard_is_private(sa_make(&ss, ip, 80));
}

static struct cidr cidr(const char *s)
{
	struct cidr c;
	ck_assert_msg(netguard_parse_cidr(s, &c) == 0, "parse %s", s);
	return c;
}

static bool contains(const char *net, const char *ip)
{
	struct sockaddr_storage ss;
	struct cidr c = cidr(net);
	return netguard_cidr_contains(&c, sa_make(&ss, ip, 80));
}

static bool check(const struct netguard_rules *r, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	return netguard_check_addr(r, sa_make(&ss, ip, port));
}

#define PRIVATE(ip) ck_assert_msg(is_private(ip), "%s should be private", ip)
#define PUBLIC(ip) ck_assert_msg(!is_private(ip), "%s should not be private", ip)

/* ---- IPv4 ranges, each at both edges and just outside ---- */

START_TEST(test_this_network_0_0_0_0_8_is_private)
{
	PRIVATE("0.0.0.0");
	PRIVATE("0.255.255.255");
	PUBLIC("1.0.0.0");
}
END_TEST

START_TEST(test_rfc1918_ranges_are_private)
{
	PRIVATE("10.0.0.0");
	PRIVATE("10.255.255.255");
	PUBLIC("9.255.255.255");
	PUBLIC("11.0.0.0");
	PRIVATE("172.16.0.0");
	PRIVATE("172.31.255.255");
	PUBLIC("172.15.255.255");
	PUBLIC("172.32.0.0");
	PRIVATE("192.168.0.0");
	PRIVATE("192.168.255.255");
	PUBLIC("192.167.255.255");
	PUBLIC("192.169.0.0");
}
END_TEST

START_TEST(test_cgnat_100_64_0_0_10_is_private)
{
	PRIVATE("100.64.0.0");
	PRIVATE("100.127.255.255");
	PUBLIC("100.63.255.255");
	PUBLIC("100.128.0.0");
}
END_TEST

START_TEST(test_loopback_127_0_0_0_8_is_private)
{
	PRIVATE("127.0.0.1");
	PRIVATE("127.0.0.0");
	PRIVATE("127.255.255.255");
	PUBLIC("126.255.255.255");
	PUBLIC("128.0.0.0");
}
END_TEST

START_TEST(test_metadata_address_is_private)
{
	PRIVATE("169.254.169.254");
	PRIVATE("169.254.0.0");
	PRIVATE("169.254.255.255");
	PUBLIC("169.253.255.255");
	PUBLIC("169.255.0.0");
}
END_TEST

START_TEST(test_ietf_protocol_assignments_192_0_0_0_24_is_private)
{
	PRIVATE("192.0.0.0");
	PRIVATE("192.0.0.255");
	PUBLIC("191.255.255.255");
	PUBLIC("192.0.1.0");
}
END_TEST

START_TEST(test_documentation_ranges_are_private)
{
	PRIVATE("192.0.2.0");
	PRIVATE("192.0.2.255");
	PUBLIC("192.0.3.0");
	PRIVATE("198.51.100.0");
	PRIVATE("198.51.100.255");
	PUBLIC("198.51.99.255");
	PUBLIC("198.51.101.0");
	PRIVATE("203.0.113.0");
	PRIVATE("203.0.113.255");
	PUBLIC("203.0.112.255");
	PUBLIC("203.0.114.0");
}
END_TEST

START_TEST(test_6to4_relay_anycast_192_88_99_0_24_is_private)
{
	PRIVATE("192.88.99.0");
	PRIVATE("192.88.99.255");
	PUBLIC("192.88.98.255");
	PUBLIC("192.88.100.0");
}
END_TEST

START_TEST(test_benchmarking_198_18_0_0_15_is_private)
{
	PRIVATE("198.18.0.0");
	PRIVATE("198.19.255.255");
	PUBLIC("198.17.255.255");
	PUBLIC("198.20.0.0");
}
END_TEST

START_TEST(test_multicast_and_reserved_are_private)
{
	PRIVATE("224.0.0.0");
	PRIVATE("239.255.255.255");
	PRIVATE("240.0.0.0");
	PRIVATE("255.255.255.255");
	PUBLIC("223.255.255.255");
}
END_TEST

START_TEST(test_public_ipv4_is_not_private)
{
	PUBLIC("8.8.8.8");
	PUBLIC("1.1.1.1");
	PUBLIC("93.184.216.34");
}
END_TEST

/* ---- IPv6 ranges ---- */

START_TEST(test_ipv6_unspecified_and_loopback_are_private)
{
	PRIVATE("::");
	PRIVATE("::1");
}
END_TEST

START_TEST(test_ipv6_unique_local_fc00_7_is_private)
{
	PRIVATE("fc00::");
	PRIVATE("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	PUBLIC("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

START_TEST(test_ipv6_link_local_and_site_local_are_private)
{
	PRIVATE("fe80::");
	PRIVATE("fe80::1");
	PRIVATE("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	PRIVATE("fec0::");
	PRIVATE("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	PUBLIC("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

START_TEST(test_ipv6_multicast_ff00_8_is_private)
{
	PRIVATE("ff00::");
	PRIVATE("ff02::1");
	PRIVATE("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

START_TEST(test_ipv6_documentation_2001_db8_32_is_private)
{
	PRIVATE("2001:db8::");
	PRIVATE("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
	PUBLIC("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff");
	PUBLIC("2001:db9::");
}
END_TEST

START_TEST(test_ipv6_discard_100_64_is_private)
{
	PRIVATE("100::");
	PRIVATE("100::ffff:ffff:ffff:ffff");
	PUBLIC("100:0:0:1::");
	PUBLIC("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

START_TEST(test_public_ipv6_is_not_private)
{
	PUBLIC("2606:4700::1");
	PUBLIC("2a00:1450:4001::1");
	PUBLIC("2001:4860:4860::8888");
}
END_TEST

/* ---- IPv4 embedded in IPv6 ---- */

START_TEST(test_ipv4_mapped_is_judged_as_ipv4)
{
	PRIVATE("::ffff:127.0.0.1");
	PRIVATE("::ffff:169.254.169.254");
	PRIVATE("::ffff:10.0.0.1");
	PRIVATE("::ffff:0.0.0.0");
	PUBLIC("::ffff:8.8.8.8");
}
END_TEST

START_TEST(test_ipv4_compatible_is_judged_as_ipv4)
{
	PRIVATE("::127.0.0.1");
	PRIVATE("::10.0.0.1");
	PRIVATE("::169.254.169.254");
	PRIVATE("::0.0.0.2");
	PUBLIC("::8.8.8.8");
}
END_TEST

START_TEST(test_6to4_is_judged_by_embedded_ipv4)
{
	PRIVATE("2002:7f00:1::");
	PRIVATE("2002:a9fe:a9fe::1");
	PRIVATE("2002:c0a8:101:1::1");
	PUBLIC("2002:808:808::1");
	PUBLIC("2002:808:808:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

START_TEST(test_teredo_client_is_decoded_by_inverting_bits)
{
	/* RFC 4380 section 4 example: client 192.0.2.45 (TEST-NET-1). */
	PRIVATE("2001:0:4136:e378:8000:63bf:3fff:fdd2");
	/* Server 8.8.8.8, client 127.0.0.1 inverted = 80ff:fffe. */
	PRIVATE("2001:0:808:808::80ff:fffe");
	/* Server 8.8.8.8, client 1.1.1.1 inverted = fefe:fefe. */
	PUBLIC("2001:0:808:808::fefe:fefe");
	/* 7f00:1 un-inverted is 128.255.255.254: public. */
	PUBLIC("2001:0:808:808::7f00:1");
}
END_TEST

START_TEST(test_teredo_private_server_is_private)
{
	/* Server 10.0.0.1, client 1.1.1.1. */
	PRIVATE("2001:0:a00:1::fefe:fefe");
	/* Server 169.254.169.254, client 1.1.1.1. */
	PRIVATE("2001:0:a9fe:a9fe::fefe:fefe");
}
END_TEST

START_TEST(test_nat64_is_judged_by_last_32_bits)
{
	PRIVATE("64:ff9b::127.0.0.1");
	PRIVATE("64:ff9b::169.254.169.254");
	PRIVATE("64:ff9b::a00:1");
	PUBLIC("64:ff9b::8.8.8.8");
}
END_TEST

START_TEST(test_non_ip_sockaddr_is_private)
{
	struct sockaddr_un su;

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	ck_assert(netguard_is_private((const struct sockaddr *)&su));
	ck_assert(netguard_is_private(NULL));
}
END_TEST

/* ---- CIDR parsing ---- */

START_TEST(test_parse_cidr_accepts_ipv4_with_and_without_prefix)
{
	struct cidr c = cidr("10.0.0.0/8");
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_uint_eq(c.addr[0], 10);

	c = cidr("127.0.0.1");
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_uint_eq(c.addr[3], 1);

	c = cidr("0.0.0.0/0");
	ck_assert_uint_eq(c.prefix, 0);
	c = cidr("1.2.3.4/32");
	ck_assert_uint_eq(c.prefix, 32);
}
END_TEST

START_TEST(test_parse_cidr_accepts_ipv6_with_and_without_prefix)
{
	struct cidr c = cidr("fc00::/7");
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 7);
	ck_assert_uint_eq(c.addr[0], 0xfc);

	c = cidr("::1");
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_uint_eq(c.addr[15], 1);

	c = cidr("::/0");
	ck_assert_uint_eq(c.prefix, 0);
	c = cidr("2001:db8::/32");
	ck_assert_uint_eq(c.prefix, 32);
	c = cidr("::ffff:10.0.0.0/104");
	ck_assert_uint_eq(c.prefix, 104);
}
END_TEST

START_TEST(test_parse_cidr_rejects_garbage)
{
	static const char *const bad[] = {
		"",
		"/8",
		"10.0.0.0/",
		"10.0.0.0/33",
		"::/129",
		"10.0.0.0/1000",
		"10.0.0.0/8x",
		"10.0.0.0x/8",
		" 10.0.0.0/8",
		"10.0.0.0/8 ",
		"10.0.0.0/ 8",
		"10.0.0.0/-1",
		"10.0.0.0/+8",
		"10.0.0.0/08",
		"10.0.0.0//8",
		"10.0.0.0/8/8",
		"banana",
		"10.0.0",
		"256.0.0.0",
		"010.0.0.0/8",
		"fe80::1%eth0",
		"[::1]",
		"::1::2",
		"0000:0000:0000:0000:0000:0000:0000:0000:0000/128",
	};
	struct cidr c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(netguard_parse_cidr(bad[i], &c) == -1, "accepted \"%s\"", bad[i]);
	ck_assert_int_eq(netguard_parse_cidr(NULL, &c), -1);
}
END_TEST

START_TEST(test_parse_cidr_rejects_host_bits_beyond_prefix)
{
	struct cidr c;

	ck_assert_int_eq(netguard_parse_cidr("10.0.0.1/8", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("192.168.1.0/16", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("1.0.0.0/0", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("fc00::1/7", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("fd00::/7", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("::1/127", &c), -1);
	ck_assert_int_eq(netguard_parse_cidr("100.64.0.0/10", &c), 0);
	ck_assert_int_eq(netguard_parse_cidr("::2/127", &c), 0);
	ck_assert_int_eq(netguard_parse_cidr("fe00::/7", &c), 0);
}
END_TEST

/* ---- contains ---- */

START_TEST(test_ipv4_net_contains_ipv4_and_mapped_ipv6)
{
	ck_assert(contains("10.0.0.0/8", "10.1.2.3"));
	ck_assert(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(contains("10.0.0.0/8", "10.255.255.255"));
	ck_assert(!contains("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!contains("10.0.0.0/8", "::ffff:11.0.0.0"));
	ck_assert(!contains("10.0.0.0/8", "::10.1.2.3"));
	ck_assert(contains("127.0.0.1", "127.0.0.1"));
	ck_assert(!contains("127.0.0.1", "127.0.0.2"));
	ck_assert(contains("0.0.0.0/0", "8.8.8.8"));
	ck_assert(!contains("0.0.0.0/0", "2606:4700::1"));
	ck_assert(contains("100.64.0.0/10", "100.127.255.255"));
	ck_assert(!contains("100.64.0.0/10", "100.128.0.0"));
}
END_TEST

START_TEST(test_ipv6_net_contains_ipv6_only)
{
	ck_assert(contains("fc00::/7", "fd00::1"));
	ck_assert(!contains("fc00::/7", "fe00::1"));
	ck_assert(contains("::1", "::1"));
	ck_assert(!contains("::1", "127.0.0.1"));
	ck_assert(contains("::/0", "2606:4700::1"));
	ck_assert(!contains("::/0", "8.8.8.8"));
	ck_assert(!contains("::/0", "::ffff:8.8.8.8"));
}
END_TEST

START_TEST(test_mapped_ipv6_net_contains_ipv4)
{
	ck_assert(contains("::ffff:10.0.0.0/104", "10.1.1.1"));
	ck_assert(contains("::ffff:10.0.0.0/104", "::ffff:10.1.1.1"));
	ck_assert(!contains("::ffff:10.0.0.0/104", "11.1.1.1"));
}
END_TEST

START_TEST(test_contains_rejects_non_ip_sockaddr)
{
	struct sockaddr_un su;
	struct cidr c = cidr("0.0.0.0/0");

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	ck_assert(!netguard_cidr_contains(&c, (const struct sockaddr *)&su));
	ck_assert(!netguard_cidr_contains(&c, NULL));
}
END_TEST

/* ---- check_addr order ---- */

START_TEST(test_deny_private_blocks_private_and_passes_public)
{
	struct netguard_rules r = {.deny_private = true};

	ck_assert(!check(&r, "127.0.0.1", 80));
	ck_assert(!check(&r, "169.254.169.254", 80));
	ck_assert(!check(&r, "::1", 80));
	ck_assert(!check(&r, "::ffff:10.0.0.1", 80));
	ck_assert(check(&r, "8.8.8.8", 80));
	ck_assert(check(&r, "2606:4700::1", 443));
}
END_TEST

START_TEST(test_without_deny_private_private_passes)
{
	struct netguard_rules r = {.deny_private = false};

	ck_assert(check(&r, "127.0.0.1", 80));
	ck_assert(check(&r, "10.0.0.1", 80));
}
END_TEST

START_TEST(test_allow_beats_deny_private)
{
	struct cidr allow[] = {cidr("127.0.0.1/32")};
	struct netguard_rules r = {.deny_private = true, .allow = allow, .n_allow = 1};

	ck_assert(check(&r, "127.0.0.1", 8081));
	ck_assert(check(&r, "::ffff:127.0.0.1", 8081));
	ck_assert(!check(&r, "127.0.0.2", 8081));
	ck_assert(!check(&r, "::1", 8081));
	/* The NAT64 spelling is a different address: not covered. */
	ck_assert(!check(&r, "64:ff9b::127.0.0.1", 8081));
}
END_TEST

START_TEST(test_deny_beats_allow)
{
	struct cidr allow[] = {cidr("10.0.0.0/8")};
	struct cidr deny[] = {cidr("10.1.0.0/16")};
	struct netguard_rules r = {
		.deny_private = true, .allow = allow, .n_allow = 1, .deny = deny, .n_deny = 1};

	ck_assert(!check(&r, "10.1.0.1", 80));
	ck_assert(!check(&r, "::ffff:10.1.0.1", 80));
	ck_assert(check(&r, "10.2.0.1", 80));
}
END_TEST

START_TEST(test_deny_blocks_public_address)
{
	struct cidr deny[] = {cidr("8.8.8.0/24"), cidr("2606:4700::/32")};
	struct netguard_rules r = {.deny_private = true, .deny = deny, .n_deny = 2};

	ck_assert(!check(&r, "8.8.8.8", 80));
	ck_assert(!check(&r, "::ffff:8.8.8.8", 80));
	ck_assert(!check(&r, "2606:4700::1", 80));
	ck_assert(check(&r, "8.8.4.4", 80));
}
END_TEST

static void self_make(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	(void)sa_make(ss, ip, port);
}

START_TEST(test_self_is_denied_even_when_allowed)
{
	struct sockaddr_storage self[1];
	struct cidr allow[] = {cidr("127.0.0.1/32")};
	struct netguard_rules r = {
		.deny_private = true, .allow = allow, .n_allow = 1, .self = self, .n_self = 1};

	self_make(&self[0], "127.0.0.1", 8080);
	ck_assert(!check(&r, "127.0.0.1", 8080));
	ck_assert(!check(&r, "::ffff:127.0.0.1", 8080));
	ck_assert(check(&r, "127.0.0.1", 8081));

	r.deny_private = false;
	r.n_allow = 0;
	ck_assert(!check(&r, "127.0.0.1", 8080));
	ck_assert(check(&r, "127.0.0.2", 8080));
}
END_TEST

START_TEST(test_self_mapped_listen_matches_ipv4_peer)
{
	struct sockaddr_storage self[1];
	struct netguard_rules r = {.deny_private = false, .self = self, .n_self = 1};

	self_make(&self[0], "::ffff:127.0.0.1", 8080);
	ck_assert(!check(&r, "127.0.0.1", 8080));
	ck_assert(check(&r, "::1", 8080));
}
END_TEST

START_TEST(test_wildcard_self_denies_local_addresses_on_its_port)
{
	struct sockaddr_storage self[2];
	struct cidr allow[] = {cidr("0.0.0.0/0"), cidr("::/0")};
	struct netguard_rules r = {
		.deny_private = false, .allow = allow, .n_allow = 2, .self = self, .n_self = 2};

	self_make(&self[0], "0.0.0.0", 8080);
	self_make(&self[1], "::", 9090);
	ck_assert(!check(&r, "127.0.0.1", 8080));
	ck_assert(!check(&r, "10.0.0.5", 8080));
	ck_assert(!check(&r, "::1", 8080));
	ck_assert(!check(&r, "127.0.0.1", 9090));
	ck_assert(!check(&r, "::1", 9090));
	ck_assert(!check(&r, "::ffff:192.168.1.1", 9090));
	ck_assert(check(&r, "8.8.8.8", 8080));
	ck_assert(check(&r, "2606:4700::1", 9090));
	ck_assert(check(&r, "127.0.0.1", 8081));
}
END_TEST

/* A getifaddrs(3)-shaped list, built by hand: lo, a public IPv4 and
 * IPv6 address on eth0, a link-local one, a packet-level entry and one
 * without an address, as real lists have. */
struct fake_ifs {
	struct ifaddrs ifa[7];
	struct sockaddr_storage addr[7];
};

static struct ifaddrs *fake_ifs_make(struct fake_ifs *f)
{
	static const char *const ips[] = {"127.0.0.1", "::1", "11.22.33.44", "2001:4860:4860::8888",
					  "fe80::1"};
	size_t n = sizeof(ips) / sizeof(ips[0]);

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f->ifa[i].ifa_name = (char *)(i < 2 ? "lo" : "eth0");
		f->ifa[i].ifa_addr = (struct sockaddr *)sa_make(&f->addr[i], ips[i], 0);
	}
	f->addr[n].ss_family = AF_PACKET;
	f->ifa[n].ifa_name = (char *)"eth0";
	f->ifa[n].ifa_addr = (struct sockaddr *)&f->addr[n];
	f->ifa[n + 1].ifa_name = (char *)"tun0"; /* no address */
	for (size_t i = 0; i + 1 < sizeof(f->ifa) / sizeof(f->ifa[0]); i++)
		f->ifa[i].ifa_next = &f->ifa[i + 1];
	return &f->ifa[0];
}

START_TEST(test_wildcard_self_denies_public_interface_addresses_on_its_port)
{
	struct fake_ifs f;
	struct sockaddr_storage listen[3], *self = NULL;
	size_t n_self = 0;
	struct cidr allow[] = {cidr("0.0.0.0/0"), cidr("::/0")};
	struct netguard_rules r = {.deny_private = true, .allow = allow, .n_allow = 2};

	self_make(&listen[0], "0.0.0.0", 8080);
	self_make(&listen[1], "::", 9090);
	self_make(&listen[2], "127.0.0.1", 7070);
	ck_assert_int_eq(netguard_self_addrs(listen, 3, fake_ifs_make(&f), &self, &n_self), 0);
	/* 3 listen addresses; 0.0.0.0 adds the 2 IPv4 ones, :: all 5 */
	ck_assert_uint_eq(n_self, 3 + 2 + 5);
	r.self = self;
	r.n_self = n_self;

	/* public, and allowed: still fetchd itself, in either spelling */
	ck_assert(!check(&r, "11.22.33.44", 8080));
	ck_assert(!check(&r, "::ffff:11.22.33.44", 8080));
	ck_assert(check(&r, "11.22.33.44", 8081));
	/* a 0.0.0.0 socket takes no IPv6 */
	ck_assert(check(&r, "2001:4860:4860::8888", 8080));
	/* :: takes both families */
	ck_assert(!check(&r, "2001:4860:4860::8888", 9090));
	ck_assert(!check(&r, "11.22.33.44", 9090));
	ck_assert(!check(&r, "::ffff:11.22.33.44", 9090));
	ck_assert(!check(&r, "::1", 9090));
	/* a specific listen address is only itself */
	ck_assert(!check(&r, "127.0.0.1", 7070));
	ck_assert(check(&r, "11.22.33.44", 7070));
	free(self);
}
END_TEST

START_TEST(test_self_addrs_without_interfaces_or_listen)
{
	struct sockaddr_storage listen[1], *self = NULL;
	size_t n_self = 99;

	ck_assert_int_eq(netguard_self_addrs(NULL, 0, NULL, &self, &n_self), 0);
	ck_assert_ptr_null(self);
	ck_assert_uint_eq(n_self, 0);

	self_make(&listen[0], "0.0.0.0", 8080);
	ck_assert_int_eq(netguard_self_addrs(listen, 1, NULL, &self, &n_self), 0);
	ck_assert_uint_eq(n_self, 1);
	ck_assert_int_eq(self[0].ss_family, AF_INET);
	free(self);
}
END_TEST

START_TEST(test_check_addr_denies_non_ip_sockaddr)
{
	struct netguard_rules r = {.deny_private = false};
	struct sockaddr_un su;

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	ck_assert(!netguard_check_addr(&r, (const struct sockaddr *)&su));
	ck_assert(!netguard_check_addr(&r, NULL));
	ck_assert(!netguard_check_addr(NULL, (const struct sockaddr *)&su));
}
END_TEST

/* ---- host patterns ---- */

START_TEST(test_empty_host_list_allows_every_host)
{
	ck_assert(netguard_host_allowed(NULL, 0, "example.org"));
	ck_assert(netguard_host_allowed(NULL, 0, "anything.invalid"));
}
END_TEST

START_TEST(test_exact_host_pattern_matches_only_that_host)
{
	char *p[] = {(char *)"example.org"};

	ck_assert(netguard_host_allowed(p, 1, "example.org"));
	ck_assert(netguard_host_allowed(p, 1, "EXAMPLE.Org"));
	ck_assert(netguard_host_allowed(p, 1, "example.org."));
	ck_assert(!netguard_host_allowed(p, 1, "a.example.org"));
	ck_assert(!netguard_host_allowed(p, 1, "notexample.org"));
	ck_assert(!netguard_host_allowed(p, 1, "example.org.evil.com"));
	ck_assert(!netguard_host_allowed(p, 1, "example.or"));
	ck_assert(!netguard_host_allowed(p, 1, "example.org.."));
	ck_assert(!netguard_host_allowed(p, 1, ""));
	ck_assert(!netguard_host_allowed(p, 1, "."));
}
END_TEST

START_TEST(test_wildcard_host_pattern_matches_subdomains_only)
{
	char *p[] = {(char *)"*.example.org"};

	ck_assert(netguard_host_allowed(p, 1, "a.example.org"));
	ck_assert(netguard_host_allowed(p, 1, "a.b.example.org"));
	ck_assert(netguard_host_allowed(p, 1, "A.Example.ORG."));
	ck_assert(!netguard_host_allowed(p, 1, "example.org"));
	ck_assert(!netguard_host_allowed(p, 1, "example.org."));
	ck_assert(!netguard_host_allowed(p, 1, "badexample.org"));
	ck_assert(!netguard_host_allowed(p, 1, "a.example.org.evil.com"));
	ck_assert(!netguard_host_allowed(p, 1, ".example.org"));
}
END_TEST

START_TEST(test_any_of_several_host_patterns_allows)
{
	char *p[] = {(char *)"example.org", (char *)"*.example.net"};

	ck_assert(netguard_host_allowed(p, 2, "example.org"));
	ck_assert(netguard_host_allowed(p, 2, "www.example.net"));
	ck_assert(!netguard_host_allowed(p, 2, "example.net"));
	ck_assert(!netguard_host_allowed(p, 2, "www.example.org"));
	ck_assert(!netguard_host_allowed(p, 2, NULL));
}
END_TEST

static Suite *netguard_suite(void)
{
	Suite *s = suite_create("netguard");
	TCase *tc;

	tc = tcase_create("ipv4");
	tcase_add_test(tc, test_this_network_0_0_0_0_8_is_private);
	tcase_add_test(tc, test_rfc1918_ranges_are_private);
	tcase_add_test(tc, test_cgnat_100_64_0_0_10_is_private);
	tcase_add_test(tc, test_loopback_127_0_0_0_8_is_private);
	tcase_add_test(tc, test_metadata_address_is_private);
	tcase_add_test(tc, test_ietf_protocol_assignments_192_0_0_0_24_is_private);
	tcase_add_test(tc, test_documentation_ranges_are_private);
	tcase_add_test(tc, test_6to4_relay_anycast_192_88_99_0_24_is_private);
	tcase_add_test(tc, test_benchmarking_198_18_0_0_15_is_private);
	tcase_add_test(tc, test_multicast_and_reserved_are_private);
	tcase_add_test(tc, test_public_ipv4_is_not_private);
	suite_add_tcase(s, tc);

	tc = tcase_create("ipv6");
	tcase_add_test(tc, test_ipv6_unspecified_and_loopback_are_private);
	tcase_add_test(tc, test_ipv6_unique_local_fc00_7_is_private);
	tcase_add_test(tc, test_ipv6_link_local_and_site_local_are_private);
	tcase_add_test(tc, test_ipv6_multicast_ff00_8_is_private);
	tcase_add_test(tc, test_ipv6_documentation_2001_db8_32_is_private);
	tcase_add_test(tc, test_ipv6_discard_100_64_is_private);
	tcase_add_test(tc, test_public_ipv6_is_not_private);
	tcase_add_test(tc, test_non_ip_sockaddr_is_private);
	suite_add_tcase(s, tc);

	tc = tcase_create("embedded");
	tcase_add_test(tc, test_ipv4_mapped_is_judged_as_ipv4);
	tcase_add_test(tc, test_ipv4_compatible_is_judged_as_ipv4);
	tcase_add_test(tc, test_6to4_is_judged_by_embedded_ipv4);
	tcase_add_test(tc, test_teredo_client_is_decoded_by_inverting_bits);
	tcase_add_test(tc, test_teredo_private_server_is_private);
	tcase_add_test(tc, test_nat64_is_judged_by_last_32_bits);
	suite_add_tcase(s, tc);

	tc = tcase_create("cidr");
	tcase_add_test(tc, test_parse_cidr_accepts_ipv4_with_and_without_prefix);
	tcase_add_test(tc, test_parse_cidr_accepts_ipv6_with_and_without_prefix);
	tcase_add_test(tc, test_parse_cidr_rejects_garbage);
	tcase_add_test(tc, test_parse_cidr_rejects_host_bits_beyond_prefix);
	tcase_add_test(tc, test_ipv4_net_contains_ipv4_and_mapped_ipv6);
	tcase_add_test(tc, test_ipv6_net_contains_ipv6_only);
	tcase_add_test(tc, test_mapped_ipv6_net_contains_ipv4);
	tcase_add_test(tc, test_contains_rejects_non_ip_sockaddr);
	suite_add_tcase(s, tc);

	tc = tcase_create("check_addr");
	tcase_add_test(tc, test_deny_private_blocks_private_and_passes_public);
	tcase_add_test(tc, test_without_deny_private_private_passes);
	tcase_add_test(tc, test_allow_beats_deny_private);
	tcase_add_test(tc, test_deny_beats_allow);
	tcase_add_test(tc, test_deny_blocks_public_address);
	tcase_add_test(tc, test_self_is_denied_even_when_allowed);
	tcase_add_test(tc, test_self_mapped_listen_matches_ipv4_peer);
	tcase_add_test(tc, test_wildcard_self_denies_local_addresses_on_its_port);
	tcase_add_test(tc, test_wildcard_self_denies_public_interface_addresses_on_its_port);
	tcase_add_test(tc, test_self_addrs_without_interfaces_or_listen);
	tcase_add_test(tc, test_check_addr_denies_non_ip_sockaddr);
	suite_add_tcase(s, tc);

	tc = tcase_create("hosts");
	tcase_add_test(tc, test_empty_host_list_allows_every_host);
	tcase_add_test(tc, test_exact_host_pattern_matches_only_that_host);
	tcase_add_test(tc, test_wildcard_host_pattern_matches_subdomains_only);
	tcase_add_test(tc, test_any_of_several_host_patterns_allows);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(netguard_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
