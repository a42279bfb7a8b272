/* Address classification for outgoing connections: which peers fetchd may
 * connect to. Everything here is a pure function of its arguments and of
 * constant tables, so workers call it concurrently without locks. */

#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* An IPv4 network in host byte order. */
struct v4net {
	uint32_t addr;
	unsigned prefix;
};

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* IANA IPv4 Special-Purpose Address Registry (RFC 6890) plus multicast and
 * the reserved block; all of it is what deny_private means by "private". */
static const struct v4net v4_private[] = {
	{V4(0, 0, 0, 0), 8},	   /* "this network", RFC 791 / RFC 6890 */
	{V4(10, 0, 0, 0), 8},	   /* private, RFC 1918 */
	{V4(100, 64, 0, 0), 10},   /* shared address space (CGNAT), RFC 6598 */
	{V4(127, 0, 0, 0), 8},	   /* loopback, RFC 1122 */
	{V4(169, 254, 0, 0), 16},  /* link-local incl. cloud metadata, RFC 3927 */
	{V4(172, 16, 0, 0), 12},   /* private, RFC 1918 */
	{V4(192, 0, 0, 0), 24},	   /* IETF protocol assignments, RFC 6890 */
	{V4(192, 0, 2, 0), 24},	   /* TEST-NET-1, RFC 5737 */
	{V4(192, 88, 99, 0), 24},  /* 6to4 relay anycast, RFC 3068 / RFC 7526 */
	{V4(192, 168, 0, 0), 16},  /* private, RFC 1918 */
	{V4(198, 18, 0, 0), 15},   /* benchmarking, RFC 2544 */
	{V4(198, 51, 100, 0), 24}, /* TEST-NET-2, RFC 5737 */
	{V4(203, 0, 113, 0), 24},  /* TEST-NET-3, RFC 5737 */
	{V4(224, 0, 0, 0), 4},	   /* multicast, RFC 5771 */
	{V4(240, 0, 0, 0), 4},	   /* reserved incl. broadcast, RFC 1112 / RFC 919 */
};

/* An IPv6 network. */
struct v6net {
	uint8_t addr[16];
	unsigned prefix;
};

/* IPv6 ranges denied as a whole. Ranges that carry an IPv4 address are not
 * here: they are decoded and judged by their IPv4 address. */
static const struct v6net v6_private[] = {
	{{0xfc, 0x00}, 7},		/* unique local, RFC 4193 */
	{{0xfe, 0x80}, 10},		/* link-local, RFC 4291 */
	{{0xfe, 0xc0}, 10},		/* site-local (deprecated), RFC 3879 */
	{{0xff, 0x00}, 8},		/* multicast, RFC 4291 */
	{{0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation, RFC 3849 */
	{{0x01, 0x00}, 64},		/* discard-only, RFC 6666 */
};

static const uint8_t v6_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t v6_zero[16];

/* Reads four bytes as an IPv4 address in host byte order. */
static uint32_t netguard_load_v4(const uint8_t *p)
{
	return V4(p[0], p[1], p[2], p[3]);
}

/* Do the first bits bits of a and b agree? bits <= 128. */
static bool netguard_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8;
	unsigned rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static bool netguard_v4_is_private(uint32_t a)
{
	for (size_t i = 0; i < sizeof(v4_private) / sizeof(v4_private[0]); i++) {
		unsigned p = v4_private[i].prefix;
		uint32_t mask = p == 0 ? 0 : 0xffffffffu << (32 - p);
		if ((a & mask) == v4_private[i].addr)
			return true;
	}
	return false;
}

/* RFC 4291 section 2.5.5.2: ::ffff:a.b.c.d. */
static bool netguard_v6_is_mapped(const uint8_t *a)
{
	return memcmp(a, v6_mapped_prefix, sizeof(v6_mapped_prefix)) == 0;
}

static bool netguard_v6_is_private(const uint8_t *a)
{
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	if (netguard_v6_is_mapped(a))
		return netguard_v4_is_private(netguard_load_v4(a + 12));
	/* :: (RFC 4291 2.5.2) and ::1 (2.5.3) first, then ::a.b.c.d, the
	 * deprecated IPv4-compatible form (2.5.5.1). */
	if (memcmp(a, v6_zero, 15) == 0 && a[15] <= 1)
		return true;
	if (memcmp(a, v6_zero, 12) == 0)
		return netguard_v4_is_private(netguard_load_v4(a + 12));
	/* 6to4 2002::/16 carries the IPv4 in bits 16..47, RFC 3056. */
	if (a[0] == 0x20 && a[1] == 0x02)
		return netguard_v4_is_private(netguard_load_v4(a + 2));
	/* Teredo 2001:0::/32, RFC 4380 section 4: server IPv4 in bits 32..63,
	 * client IPv4 in bits 96..127 with every bit inverted. */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
		uint32_t server = netguard_load_v4(a + 4);
		uint32_t client = netguard_load_v4(a + 12) ^ 0xffffffffu;
		return netguard_v4_is_private(server) || netguard_v4_is_private(client);
	}
	/* Well-known NAT64 prefix 64:ff9b::/96, RFC 6052 section 2.1. */
	if (memcmp(a, nat64, sizeof(nat64)) == 0)
		return netguard_v4_is_private(netguard_load_v4(a + 12));
	for (size_t i = 0; i < sizeof(v6_private) / sizeof(v6_private[0]); i++) {
		if (netguard_prefix_equal(a, v6_private[i].addr, v6_private[i].prefix))
			return true;
	}
	return false;
}

/* An address reduced to one form: an IPv4-mapped IPv6 address becomes the
 * IPv4 address, so both spellings compare equal. */
struct netguard_addr {
	int family;
	uint8_t addr[16];
	uint16_t port; /* host byte order */
};

/* Returns 0, or -1 when sa is not AF_INET/AF_INET6. */
static int netguard_addr_load(const struct sockaddr *sa, struct netguard_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		out->family = AF_INET;
		memcpy(out->addr, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		const uint8_t *b = sin6->sin6_addr.s6_addr;
		out->port = ntohs(sin6->sin6_port);
		if (netguard_v6_is_mapped(b)) {
			out->family = AF_INET;
			memcpy(out->addr, b + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, b, 16);
		}
		return 0;
	}
	return -1;
}

static bool netguard_addr_is_private(const struct netguard_addr *a)
{
	if (a->family == AF_INET)
		return netguard_v4_is_private(netguard_load_v4(a->addr));
	return netguard_v6_is_private(a->addr);
}

/* Parses a prefix length: decimal digits, no sign, no leading zero, at
 * most max. Returns 0 or -1. */
static int netguard_parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t n = 0;

	if (s[0] == '0' && s[1] != '\0')
		return -1;
	for (; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 3)
			return -1;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int netguard_parse_cidr(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN];
	struct cidr c;
	const char *slash;
	size_t len;
	unsigned max;

	if (s == NULL || out == NULL)
		return -1;
	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';

	/* inet_pton rejects surrounding blanks, zone ids and trailing junk. */
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c.prefix = max;
	if (slash != NULL && netguard_parse_prefix(slash + 1, max, &c.prefix) != 0)
		return -1;

	/* Host bits must be zero: "10.0.0.1/8" is more likely a typo than a
	 * network, and silently widening it would allow or deny too much. */
	for (unsigned bit = c.prefix; bit < max; bit++) {
		if (c.addr[bit / 8] & (0x80 >> (bit % 8)))
			return -1;
	}
	*out = c;
	return 0;
}

/* Does net contain a? A v6 net inside ::ffff:0:0/96 is treated as the v4
 * net it spells, so "::ffff:10.0.0.0/104" and "10.0.0.0/8" agree. */
static bool netguard_cidr_contains_addr(const struct cidr *net, const struct netguard_addr *a)
{
	const uint8_t *bytes = net->addr;
	unsigned prefix = net->prefix;
	int family = net->family;

	if (family == AF_INET6 && prefix >= 96 && netguard_v6_is_mapped(net->addr)) {
		family = AF_INET;
		bytes = net->addr + 12;
		prefix -= 96;
	}
	if (family != a->family)
		return false;
	if (prefix > (family == AF_INET ? 32u : 128u))
		return false;
	return netguard_prefix_equal(a->addr, bytes, prefix);
}

bool netguard_cidr_contains(const struct cidr *net, const struct sockaddr *sa)
{
	struct netguard_addr a;

	if (net == NULL || netguard_addr_load(sa, &a) != 0)
		return false;
	return netguard_cidr_contains_addr(net, &a);
}

bool netguard_is_private(const struct sockaddr *sa)
{
	struct netguard_addr a;

	/* Not an IP address at all: nothing to fetch from, call it private. */
	if (netguard_addr_load(sa, &a) != 0)
		return true;
	return netguard_addr_is_private(&a);
}

static bool netguard_addr_is_unspecified(const struct netguard_addr *a)
{
	return memcmp(a->addr, v6_zero, a->family == AF_INET ? 4 : 16) == 0;
}

/* Is a one of fetchd's own addresses? An entry matches its own address
 * (both spellings of an IPv4 address compare equal here). A wildcard entry
 * (0.0.0.0 or ::, which on Linux also takes IPv4) also matches every
 * private or loopback address on that port, which covers addresses no
 * interface lists (127.0.0.2, 0.0.0.0 itself); its interfaces' other
 * addresses are entries of their own (netguard_self_addrs). */
static bool netguard_is_self(const struct netguard_rules *rules, const struct netguard_addr *a)
{
	for (size_t i = 0; i < rules->n_self; i++) {
		struct netguard_addr s;

		if (netguard_addr_load((const struct sockaddr *)&rules->self[i], &s) != 0)
			continue;
		if (s.port != a->port)
			continue;
		if (netguard_addr_is_unspecified(&s)) {
			if (netguard_addr_is_private(a))
				return true;
			continue;
		}
		if (s.family == a->family &&
		    memcmp(s.addr, a->addr, s.family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* The port of a listen address in network byte order, and whether its
 * address is the wildcard of its family. */
static bool netguard_listen_wildcard(const struct sockaddr_storage *ss, uint16_t *port)
{
	struct netguard_addr a;

	if (netguard_addr_load((const struct sockaddr *)ss, &a) != 0)
		return false;
	*port = htons(a.port);
	return netguard_addr_is_unspecified(&a);
}

int netguard_self_addrs(const struct sockaddr_storage *listen, size_t n_listen,
			const struct ifaddrs *ifs, struct sockaddr_storage **out, size_t *n_out)
{
	struct sockaddr_storage *list = NULL;
	size_t n = 0, cap = n_listen, n_if = 0;

	*out = NULL;
	*n_out = 0;
	if (n_listen == 0)
		return 0;
	for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next)
		n_if++;
	/* every listen address, plus at most every interface address per
	 * wildcard; counted first so the list is one allocation */
	for (size_t l = 0; l < n_listen; l++) {
		uint16_t port;

		if (netguard_listen_wildcard(&listen[l], &port))
			cap += n_if;
	}
	list = calloc(cap, sizeof(*list));
	if (list == NULL)
		return -1;
	for (size_t l = 0; l < n_listen; l++) {
		int family = listen[l].ss_family;
		uint16_t port;

		list[n++] = listen[l];
		if (!netguard_listen_wildcard(&listen[l], &port))
			continue;
		for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
			const struct sockaddr *sa = i->ifa_addr;
			struct sockaddr_storage *e = &list[n];

			if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
				continue;
			/* a 0.0.0.0 socket accepts no IPv6 */
			if (family == AF_INET && sa->sa_family != AF_INET)
				continue;
			memset(e, 0, sizeof(*e));
			if (sa->sa_family == AF_INET) {
				struct sockaddr_in *sin = (struct sockaddr_in *)(void *)e;

				memcpy(sin, sa, sizeof(*sin));
				sin->sin_port = port;
			} else {
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)e;

				memcpy(sin6, sa, sizeof(*sin6));
				sin6->sin6_port = port;
			}
			n++;
		}
	}
	*out = list;
	*n_out = n;
	return 0;
}

bool netguard_check_addr(const struct netguard_rules *rules, const struct sockaddr *sa)
{
	struct netguard_addr a;

	/* Fail closed: no rules or a non-IP peer is never a fetch target. */
	if (rules == NULL || netguard_addr_load(sa, &a) != 0)
		return false;
	if (netguard_is_self(rules, &a))
		return false;
	for (size_t i = 0; i < rules->n_deny; i++) {
		if (netguard_cidr_contains_addr(&rules->deny[i], &a))
			return false;
	}
	for (size_t i = 0; i < rules->n_allow; i++) {
		if (netguard_cidr_contains_addr(&rules->allow[i], &a))
			return true;
	}
	if (rules->deny_private && netguard_addr_is_private(&a))
		return false;
	return true;
}

/* ASCII-only case folding: host names are compared as DNS does (RFC 4343),
 * independent of the locale. */
static bool netguard_name_equal(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i];
		unsigned char y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* Does host (length hlen, no trailing dot) match one pattern? */
static bool netguard_host_matches(const char *pattern, const char *host, size_t hlen)
{
	size_t plen = strlen(pattern);

	if (plen > 0 && pattern[plen - 1] == '.')
		plen--;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.org": at least one label before ".example.org". */
		const char *suffix = pattern + 1;
		size_t slen = plen - 1;
		if (slen < 2 || hlen <= slen)
			return false;
		return netguard_name_equal(host + hlen - slen, suffix, slen);
	}
	if (plen == 0)
		return false;
	return plen == hlen && netguard_name_equal(pattern, host, hlen);
}

bool netguard_host_allowed(char *const *patterns, size_t n_patterns, const char *host)
{
	size_t hlen;

	if (n_patterns == 0)
		return true;
	if (patterns == NULL || host == NULL)
		return false;
	hlen = strlen(host);
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (size_t i = 0; i < n_patterns; i++) {
		if (patterns[i] != NULL && netguard_host_matches(patterns[i], host, hlen))
			return true;
	}
	return false;
}
