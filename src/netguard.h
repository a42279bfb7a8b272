#ifndef FETCHD_NETGUARD_H
#define FETCHD_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ifaddrs.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 network. IPv4 is kept as AF_INET with the first 4 bytes
 * of addr used. */
struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/* Parse "10.0.0.0/8", "127.0.0.1" (= /32), "fc00::/7", "::1" (= /128).
 * Host bits beyond the prefix must be zero. Returns 0 or -1. */
int netguard_parse_cidr(const char *s, struct cidr *out);

/* Does the address fall into the network? An IPv4-mapped IPv6 address
 * matches IPv4 networks. */
bool netguard_cidr_contains(const struct cidr *net, const struct sockaddr *sa);

/* Is the address one of the special-purpose ranges that deny_private
 * blocks (SPEC section 3): loopback, RFC 1918, CGNAT, link-local,
 * multicast, reserved, 0.0.0.0/8, 192.0.0.0/24, ::, ::1, fc00::/7,
 * fe80::/10, fec0::/10, ff00::/8, 2001:db8::/32, 100::/64, and IPv4
 * embedded in IPv6 (mapped, compatible, 6to4, Teredo, NAT64) judged as the
 * IPv4 address it carries. */
bool netguard_is_private(const struct sockaddr *sa);

/* Rules of one configuration. Immutable once built; shared by readers. */
struct netguard_rules {
	bool deny_private;
	const struct cidr *allow;
	size_t n_allow;
	const struct cidr *deny;
	size_t n_deny;
	/* fetchd's own addresses (netguard_self_addrs): always denied,
	 * address and port. */
	const struct sockaddr_storage *self;
	size_t n_self;
};

/* The self list of the rules: each listen address, and for a wildcard
 * listen (0.0.0.0 or ::) every address of the host's interfaces at its
 * port, whatever its class: a peer there is fetchd's own socket, so
 * "private" is no guide (a public address on a local interface reaches it
 * too). 0.0.0.0 takes the IPv4 interface addresses; :: takes both families,
 * as a Linux :: socket also accepts IPv4. ifs is the list getifaddrs(3)
 * gives, read by the caller (this function stays pure); NULL adds none.
 * The wildcard entries stay in the list: netguard_check_addr matches them
 * against loopback and private addresses. *out is malloc'd (NULL when
 * n_listen is 0). Returns 0, or -1 when out of memory. */
int netguard_self_addrs(const struct sockaddr_storage *listen, size_t n_listen,
			const struct ifaddrs *ifs, struct sockaddr_storage **out, size_t *n_out);

/* The verdict for connecting to sa. Order: own address:port (an entry of
 * the self list, IPv4-mapped IPv6 spellings included; a wildcard entry
 * matches every loopback and private address at its port) -> deny; deny
 * list -> deny; allow list -> allow; deny_private and private -> deny;
 * else allow. */
bool netguard_check_addr(const struct netguard_rules *rules, const struct sockaddr *sa);

/* Does host match one of the patterns ("example.org", "*.example.org" which
 * matches subdomains only)? Case-insensitive; a trailing dot on host is
 * ignored. An empty pattern list matches every host. */
bool netguard_host_allowed(char *const *patterns, size_t n_patterns, const char *host);

#endif
