/* The configuration: fetchd.conf parsed with libinih into struct
 * fetchd_config, every key checked against the table below, every problem
 * reported as file:line: message, and command-line overrides applied. A
 * reload parses into a new struct; the running one is never modified. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define INI_HANDLER_LINENO 1
#include <ini.h>

#include "capacity.h"
#include "units.h"

/* Debian's libinih cuts longer lines silently at its default of 200; a long
 * "allow =" line must arrive whole (or be reported, see config_reader). */
#define CONFIG_MAX_LINE (64 * 1024)

#define CONFIG_MS_PER_DAY (UINT64_C(24) * 60 * 60 * 1000)

enum config_type {
	CONFIG_T_BOOL,
	CONFIG_T_SIZE,
	CONFIG_T_DURATION,
	CONFIG_T_UINT,
	CONFIG_T_PATH,	 /* string, empty = NULL */
	CONFIG_T_STRING, /* string without control characters */
	CONFIG_T_LEVEL,
	CONFIG_T_LISTEN,
	CONFIG_T_CIDRS,
	CONFIG_T_HOSTS,
	CONFIG_T_SCHEMES,
	CONFIG_T_RETRY_ON, /* connect, timeout, reset and statuses 400..599 */
};

/* One key: where it lives in struct fetchd_config and its valid range
 * (numbers, sizes and durations). For lists, off_n is the count field. */
struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t off;
	size_t off_n;
	uint64_t min;
	uint64_t max;
};

#define CONFIG_KEY(s, n, t, field, lo, hi)                                                         \
	{                                                                                          \
		s, n, t, offsetof(struct fetchd_config, field), 0, lo, hi                          \
	}
#define CONFIG_LIST(s, n, t, field, nfield)                                                        \
	{                                                                                          \
		s, n, t, offsetof(struct fetchd_config, field),                                    \
			offsetof(struct fetchd_config, nfield), 0, 0                               \
	}

static const struct config_key config_keys[] = {
	CONFIG_LIST("server", "listen", CONFIG_T_LISTEN, listen, n_listen),
	CONFIG_KEY("server", "reuse_port", CONFIG_T_BOOL, reuse_port, 0, 0),
	CONFIG_KEY("server", "max_connections", CONFIG_T_UINT, max_connections, 1, 1000000),
	CONFIG_KEY("server", "max_request_bytes", CONFIG_T_SIZE, max_request_bytes, 1, UINT64_MAX),
	CONFIG_KEY("server", "max_batch", CONFIG_T_UINT, max_batch, 1, 10000),
	CONFIG_KEY("server", "max_pending_bytes", CONFIG_T_SIZE, max_pending_bytes, 1, UINT64_MAX),
	CONFIG_KEY("server", "idle_timeout", CONFIG_T_DURATION, idle_timeout_ms, 1,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("server", "request_timeout", CONFIG_T_DURATION, request_timeout_ms, 1,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("server", "auth_token_file", CONFIG_T_PATH, auth_token_file, 0, 0),
	CONFIG_KEY("server", "shutdown_timeout", CONFIG_T_DURATION, shutdown_timeout_ms, 0,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("server", "lame_duck", CONFIG_T_DURATION, lame_duck_ms, 0, CONFIG_MS_PER_DAY),

	CONFIG_KEY("pool", "threads", CONFIG_T_UINT, threads, 0, CONFIG_MAX_THREADS),
	CONFIG_KEY("pool", "min_threads", CONFIG_T_UINT, min_threads, 0, CONFIG_MAX_THREADS),
	CONFIG_KEY("pool", "thread_idle_timeout", CONFIG_T_DURATION, thread_idle_timeout_ms, 1,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("pool", "stack_size", CONFIG_T_SIZE, stack_size, CONFIG_STACK_MIN,
		   UINT64_C(64) << 20),
	CONFIG_KEY("pool", "queue_limit", CONFIG_T_UINT, queue_limit, 0, 1000000),
	CONFIG_KEY("pool", "per_host_limit", CONFIG_T_UINT, per_host_limit, 0, CONFIG_MAX_THREADS),
	CONFIG_KEY("pool", "per_host_interval", CONFIG_T_DURATION, per_host_interval_ms, 0,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("pool", "per_host_max_pause", CONFIG_T_DURATION, per_host_max_pause_ms, 0,
		   CONFIG_MS_PER_DAY),

	CONFIG_KEY("fetch", "schemes", CONFIG_T_SCHEMES, schemes, 0, 0),
	CONFIG_KEY("fetch", "connect_timeout", CONFIG_T_DURATION, connect_timeout_ms, 1,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("fetch", "timeout", CONFIG_T_DURATION, timeout_ms, 1, CONFIG_MS_PER_DAY),
	CONFIG_KEY("fetch", "low_speed_limit", CONFIG_T_SIZE, low_speed_limit, 0, UINT32_MAX),
	CONFIG_KEY("fetch", "low_speed_time", CONFIG_T_DURATION, low_speed_time_ms, 1000,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("fetch", "max_response_bytes", CONFIG_T_SIZE, max_response_bytes, 1, UINT64_MAX),
	CONFIG_KEY("fetch", "max_redirects", CONFIG_T_UINT, max_redirects, 0, 100),
	CONFIG_KEY("fetch", "user_agent", CONFIG_T_STRING, user_agent, 0, 0),
	CONFIG_KEY("fetch", "verify_tls", CONFIG_T_BOOL, verify_tls, 0, 0),
	CONFIG_KEY("fetch", "allow_insecure", CONFIG_T_BOOL, allow_insecure, 0, 0),
	CONFIG_KEY("fetch", "ca_file", CONFIG_T_PATH, ca_file, 0, 0),
	CONFIG_KEY("fetch", "proxy", CONFIG_T_PATH, proxy, 0, 0),
	CONFIG_KEY("fetch", "client_cert", CONFIG_T_PATH, client_cert, 0, 0),
	CONFIG_KEY("fetch", "client_key", CONFIG_T_PATH, client_key, 0, 0),
	CONFIG_KEY("fetch", "allow_downgrade", CONFIG_T_BOOL, allow_downgrade, 0, 0),
	CONFIG_KEY("fetch", "max_idle_connections", CONFIG_T_UINT, max_idle_connections, 0,
		   100000000),
	CONFIG_KEY("fetch", "retry_attempts", CONFIG_T_UINT, retry.attempts, 0, RETRY_MAX),
	CONFIG_KEY("fetch", "retry_backoff", CONFIG_T_DURATION, retry.backoff_ms, 0,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("fetch", "retry_max_backoff", CONFIG_T_DURATION, retry.max_backoff_ms, 0,
		   CONFIG_MS_PER_DAY),
	CONFIG_KEY("fetch", "retry_on", CONFIG_T_RETRY_ON, retry, 0, 0),

	CONFIG_KEY("security", "deny_private", CONFIG_T_BOOL, deny_private, 0, 0),
	CONFIG_LIST("security", "allow", CONFIG_T_CIDRS, allow, n_allow),
	CONFIG_LIST("security", "deny", CONFIG_T_CIDRS, deny, n_deny),
	CONFIG_LIST("security", "allow_hosts", CONFIG_T_HOSTS, allow_hosts, n_allow_hosts),

	CONFIG_KEY("log", "level", CONFIG_T_LEVEL, log_level, 0, 0),
	CONFIG_KEY("log", "access_log", CONFIG_T_BOOL, access_log, 0, 0),
};

#define CONFIG_N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const config_sections[] = {"server", "pool", "fetch", "security", "log"};

/* State of one config_load. */
struct config_parse {
	struct fetchd_config *cfg;
	const char *path;
	FILE *err;
	FILE *fp;
	int errors;
	char *buf;
	size_t bufsize;
	int read_errno;
	int lineno;		  /* the line last handed to inih */
	bool pending_key;	  /* that line must reach the handler */
	int handled_line;	  /* the line the handler saw last */
	bool seen[CONFIG_N_KEYS]; /* list keys: the first line replaces */
};

struct fetchd_config *config_new(void)
{
	struct fetchd_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		goto bad;
	cfg->listen = calloc(1, sizeof(char *));
	if (cfg->listen == NULL)
		goto bad;
	cfg->listen[0] = strdup("127.0.0.1:8080");
	if (cfg->listen[0] == NULL)
		goto bad;
	cfg->n_listen = 1;
	cfg->reuse_port = false;
	cfg->max_request_bytes = UINT64_C(1) << 20;
	cfg->max_batch = 64;
	cfg->max_pending_bytes = UINT64_C(256) << 20;
	cfg->max_connections = 4096;
	cfg->idle_timeout_ms = 60 * 1000;
	cfg->request_timeout_ms = 30 * 1000;
	cfg->auth_token_file = NULL;
	cfg->shutdown_timeout_ms = 30 * 1000;
	cfg->lame_duck_ms = 0; /* drain at once, as before the key existed */

	cfg->threads = 16;
	cfg->min_threads = CONFIG_MIN_THREADS_ALL;
	cfg->thread_idle_timeout_ms = 60 * 1000;
	cfg->per_host_max_pause_ms = 60 * 1000;
	cfg->stack_size = CONFIG_STACK_DEFAULT;
	cfg->queue_limit = 1024;

	cfg->schemes = CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS;
	cfg->connect_timeout_ms = 5 * 1000;
	cfg->timeout_ms = 30 * 1000;
	cfg->low_speed_limit = 100;
	cfg->low_speed_time_ms = 15 * 1000;
	cfg->max_response_bytes = UINT64_C(10) << 20;
	cfg->max_redirects = 10;
	cfg->retry.backoff_ms = 500;
	cfg->retry.max_backoff_ms = 10 * 1000;
	for (const char *const *on = (const char *const[]){"connect", "timeout", "reset", "429",
							   "502", "503", "504", NULL};
	     *on != NULL; on++)
		retry_on_add(&cfg->retry, *on);
	cfg->user_agent = strdup("fetchd/" PACKAGE_VERSION);
	if (cfg->user_agent == NULL)
		goto bad;
	cfg->verify_tls = true;
	cfg->allow_insecure = false;
	cfg->ca_file = NULL;
	cfg->proxy = NULL;
	cfg->allow_downgrade = true; /* as browsers do */

	cfg->deny_private = true;

	cfg->log_level = LOG_LEVEL_INFO;
	cfg->access_log = true;
	return cfg;

bad:
	config_free(cfg);
	return NULL;
}

static void config_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void config_free(struct fetchd_config *cfg)
{
	if (cfg == NULL)
		return;
	config_free_strv(cfg->listen, cfg->n_listen);
	free(cfg->auth_token_file);
	free(cfg->user_agent);
	free(cfg->ca_file);
	free(cfg->proxy);
	free(cfg->client_cert);
	free(cfg->client_key);
	free(cfg->ca_pem.data);
	free(cfg->client_cert_pem.data);
	if (cfg->client_key_pem.data != NULL)
		explicit_bzero(cfg->client_key_pem.data, cfg->client_key_pem.len);
	free(cfg->client_key_pem.data);
	free(cfg->allow);
	free(cfg->deny);
	config_free_strv(cfg->allow_hosts, cfg->n_allow_hosts);
	for (size_t i = 0; i < cfg->n_pools; i++) {
		free(cfg->pools[i].name);
		config_free_strv(cfg->pools[i].hosts, cfg->pools[i].n_hosts);
	}
	free(cfg->pools);
	free(cfg);
}

const struct config_pool *config_pool_find(const struct fetchd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (strcmp(cfg->pools[i].name, name) == 0)
			return &cfg->pools[i];
	return NULL;
}

/* A pool name: 1..32 of [a-z0-9_-], and not "default" (the [pool] one). */
static bool config_pool_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 32 || (len == 7 && strncmp(name, "default", 7) == 0))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
		    name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

/* The pool of section "pool.NAME", created with defaults (4 threads, a
 * queue of 256) on first use. NULL with msg on a bad name or no memory. */
static struct config_pool *config_pool_get(struct fetchd_config *cfg, const char *section,
					   char *msg, size_t msglen)
{
	const char *name = section + 5;
	struct config_pool *pools;

	if (!config_pool_name_ok(name, strlen(name))) {
		snprintf(msg, msglen,
			 "[%s]: a pool name is 1 to 32 of a-z, 0-9, '_' and '-', and not 'default'",
			 section);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (strcmp(cfg->pools[i].name, name) == 0)
			return &cfg->pools[i];
	if (cfg->n_pools >= CONFIG_MAX_POOLS) {
		snprintf(msg, msglen, "[%s]: at most %d named pools", section, CONFIG_MAX_POOLS);
		return NULL;
	}
	pools = realloc(cfg->pools, (cfg->n_pools + 1) * sizeof(*pools));
	if (pools == NULL)
		goto oom;
	cfg->pools = pools;
	memset(&pools[cfg->n_pools], 0, sizeof(pools[0]));
	pools[cfg->n_pools].name = strdup(name);
	if (pools[cfg->n_pools].name == NULL)
		goto oom;
	pools[cfg->n_pools].threads = 4;
	pools[cfg->n_pools].queue_limit = 256;
	return &pools[cfg->n_pools++];
oom:
	snprintf(msg, msglen, "[%s]: out of memory", section);
	return NULL;
}

static bool config_section_known(const char *section)
{
	for (size_t i = 0; i < sizeof(config_sections) / sizeof(config_sections[0]); i++) {
		if (strcmp(section, config_sections[i]) == 0)
			return true;
	}
	return false;
}

static const struct config_key *config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONFIG_N_KEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static bool config_is_list(const struct config_key *k)
{
	return k->type == CONFIG_T_LISTEN || k->type == CONFIG_T_CIDRS ||
	       k->type == CONFIG_T_HOSTS || k->type == CONFIG_T_SCHEMES ||
	       k->type == CONFIG_T_RETRY_ON;
}

/* Copy s without leading and trailing whitespace. NULL on out of memory. */
static char *config_strdup_trimmed(const char *s)
{
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

static int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A plain decimal number: no sign, no spaces, no hex. */
static int config_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Split buf in place at commas into whitespace-trimmed items. An empty
 * buf gives no items; an empty item between commas is an error. Returns
 * the number of items in *items (free it), or -1 with msg set. */
static ssize_t config_split(const struct config_key *k, char *buf, char ***items, char *msg,
			    size_t msglen)
{
	char **v = NULL;
	size_t n = 0, cap = 1;
	char *p;

	*items = NULL;
	if (buf[0] == '\0')
		return 0;
	for (p = buf; *p != '\0'; p++) {
		if (*p == ',')
			cap++;
	}
	v = calloc(cap, sizeof(*v));
	if (v == NULL) {
		snprintf(msg, msglen, "%s.%s: out of memory", k->section, k->name);
		return -1;
	}
	p = buf;
	for (;;) {
		char *comma = strchr(p, ','), *end;

		if (comma != NULL)
			*comma = '\0';
		while (isspace((unsigned char)*p))
			p++;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*p == '\0') {
			snprintf(msg, msglen, "%s.%s: empty item in list", k->section, k->name);
			free(v);
			return -1;
		}
		v[n++] = p;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*items = v;
	return (ssize_t)n;
}

/* "host:port" or "[v6]:port", port 0..65535 (0: the kernel picks one). */
static int config_check_listen(const char *item, char *msg, size_t msglen)
{
	const char *host, *host_end, *port;
	char v6[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	uint64_t portnum;

	if (strncmp(item, "unix:", 5) == 0) {
		snprintf(msg, msglen, "server.listen: '%s': unix sockets are not supported yet",
			 item);
		return -1;
	}
	if (item[0] == '[') {
		host = item + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL || host_end[1] != ':' ||
		    (size_t)(host_end - host) >= sizeof(v6))
			goto bad;
		memcpy(v6, host, (size_t)(host_end - host));
		v6[host_end - host] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			goto bad;
		port = host_end + 2;
	} else {
		host_end = strchr(item, ':');
		if (host_end == NULL || host_end == item || strchr(host_end + 1, ':') != NULL)
			goto bad;
		for (host = item; host < host_end; host++) {
			if (!isalnum((unsigned char)*host) && *host != '.' && *host != '-' &&
			    *host != '_')
				goto bad;
		}
		port = host_end + 1;
	}
	if (strlen(port) > 5 || config_parse_u64(port, &portnum) < 0 || portnum > 65535)
		goto bad;
	return 0;

bad:
	snprintf(msg, msglen, "server.listen: bad address '%s' (use host:port or [v6]:port)", item);
	return -1;
}

/* "example.org" or "*.example.org": dot-separated labels of letters,
 * digits, '-' and '_'. */
static int config_check_host_pattern(const char *item, char *msg, size_t msglen)
{
	const char *p = item;
	size_t label = 0;

	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (strlen(p) > 253)
		goto bad;
	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				goto bad;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
			if (++label > 63)
				goto bad;
		} else {
			goto bad;
		}
	}
	if (label == 0)
		goto bad;
	return 0;

bad:
	snprintf(msg, msglen, "security.allow_hosts: bad host pattern '%s'", item);
	return -1;
}

/* Set *list to items (replace) or to the old list followed by items. On
 * failure the old list is untouched. */
static int config_strv_update(char ***list, size_t *n, char **items, size_t n_items, bool replace)
{
	size_t base = replace ? 0 : *n, i;
	char **v = NULL;

	v = calloc(base + n_items + 1, sizeof(*v));
	if (v == NULL)
		goto bad;
	for (i = 0; i < n_items; i++) {
		v[base + i] = strdup(items[i]);
		if (v[base + i] == NULL)
			goto bad;
	}
	if (replace) {
		for (i = 0; i < *n; i++)
			free((*list)[i]);
	} else {
		for (i = 0; i < base; i++)
			v[i] = (*list)[i];
	}
	free(*list);
	*list = v;
	*n = base + n_items;
	return 0;

bad:
	if (v != NULL) {
		for (i = 0; i < n_items; i++)
			free(v[base + i]);
	}
	free(v);
	return -1;
}

/* Append a message to msg, one per line: a list key reports each of its
 * bad items, and the caller writes each line as its own problem. */
static void config_msg_add(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void config_msg_add(char *msg, size_t msglen, const char *fmt, ...)
{
	size_t used = strnlen(msg, msglen);
	va_list ap;

	if (used > 0 && used + 1 < msglen) {
		msg[used++] = '\n';
		msg[used] = '\0';
	}
	if (used + 1 >= msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg + used, msglen - used, fmt, ap);
	va_end(ap);
}

/* Why netguard_parse_cidr refused item, into why: not an address, a bad
 * prefix, or host bits set beyond the prefix (naming the network meant). */
static void config_cidr_problem(const char *item, char *why, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	const char *slash = strchr(item, '/');
	size_t alen = slash ? (size_t)(slash - item) : strlen(item);
	uint8_t bytes[16];
	unsigned max;
	uint64_t prefix;
	int family;

	if (alen >= sizeof(addr)) {
		snprintf(why, len, "not an IPv4 or IPv6 address");
		return;
	}
	memcpy(addr, item, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, bytes) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, bytes) == 1) {
		family = AF_INET6;
		max = 128;
	} else {
		if (slash != NULL)
			snprintf(why, len, "'%s' is not an IPv4 or IPv6 address", addr);
		else
			snprintf(why, len, "not an IPv4 or IPv6 address");
		return;
	}
	if (slash == NULL) {
		snprintf(why, len, "not a network");
		return;
	}
	if (strlen(slash + 1) > 3 || config_parse_u64(slash + 1, &prefix) < 0) {
		snprintf(why, len, "the prefix '/%s' is not a number", slash + 1);
		return;
	}
	if (prefix > max) {
		snprintf(why, len, "the prefix /%llu is longer than %u bits",
			 (unsigned long long)prefix, max);
		return;
	}
	for (unsigned bit = (unsigned)prefix; bit < max; bit++)
		bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	inet_ntop(family, bytes, net, sizeof(net));
	snprintf(why, len, "host bits are set beyond /%llu (the network is %s/%llu)",
		 (unsigned long long)prefix, net, (unsigned long long)prefix);
}

/* A CIDR list key: items parsed and appended to (or, with replace, put
 * in place of) the key's list. */
static int config_set_cidrs(struct fetchd_config *cfg, const struct config_key *k, char **items,
			    size_t n, bool replace, char *msg, size_t msglen)
{
	struct cidr **list = (struct cidr **)((char *)cfg + k->off);
	size_t *count = (size_t *)((char *)cfg + k->off_n);
	size_t base = replace ? 0 : *count;
	struct cidr *nets = calloc(base + n + 1, sizeof(*nets));

	if (nets == NULL) {
		snprintf(msg, msglen, "%s.%s: out of memory", k->section, k->name);
		return -1;
	}
	bool bad = false;

	msg[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (netguard_parse_cidr(items[i], &nets[base + i]) < 0) {
			char why[160];

			config_cidr_problem(items[i], why, sizeof(why));
			config_msg_add(msg, msglen, "%s.%s: bad CIDR '%s': %s", k->section, k->name,
				       items[i], why);
			bad = true;
		}
	}
	if (bad) {
		free(nets);
		return -1;
	}
	if (base > 0)
		memcpy(nets, *list, base * sizeof(*nets));
	free(*list);
	*list = nets;
	*count = base + n;
	return 0;
}

static int config_set_list(struct fetchd_config *cfg, const struct config_key *k, char *value,
			   bool replace, char *msg, size_t msglen)
{
	char **items = NULL;
	ssize_t n;
	size_t i;
	unsigned schemes = 0;
	int ret = -1;

	n = config_split(k, value, &items, msg, msglen);
	if (n < 0)
		goto out;

	switch (k->type) {
	case CONFIG_T_LISTEN:
	case CONFIG_T_HOSTS: {
		char one[512];
		bool bad = false;

		msg[0] = '\0';
		for (i = 0; i < (size_t)n; i++) {
			if (k->type == CONFIG_T_LISTEN
				    ? config_check_listen(items[i], one, sizeof(one)) < 0
				    : config_check_host_pattern(items[i], one, sizeof(one)) < 0) {
				config_msg_add(msg, msglen, "%s", one);
				bad = true;
			}
		}
		if (bad)
			goto out;
		if (config_strv_update((char ***)((char *)cfg + k->off),
				       (size_t *)((char *)cfg + k->off_n), items, (size_t)n,
				       replace) < 0) {
			snprintf(msg, msglen, "%s.%s: out of memory", k->section, k->name);
			goto out;
		}
		break;
	}

	case CONFIG_T_CIDRS:
		if (config_set_cidrs(cfg, k, items, (size_t)n, replace, msg, msglen) < 0)
			goto out;
		break;

	case CONFIG_T_SCHEMES:
		/* A scheme list always replaces: "schemes = https" means only https. */
		if (n == 0) {
			snprintf(msg, msglen, "%s.%s: empty list (use http, https or both)",
				 k->section, k->name);
			goto out;
		}
		msg[0] = '\0';
		for (i = 0; i < (size_t)n; i++) {
			if (strcasecmp(items[i], "http") == 0)
				schemes |= CONFIG_SCHEME_HTTP;
			else if (strcasecmp(items[i], "https") == 0)
				schemes |= CONFIG_SCHEME_HTTPS;
			else
				config_msg_add(msg, msglen, "%s.%s: scheme '%s' is never allowed",
					       k->section, k->name, items[i]);
		}
		if (msg[0] != '\0')
			goto out;
		cfg->schemes = schemes;
		break;

	case CONFIG_T_RETRY_ON: {
		/* the first line replaces the default; empty: retry nothing */
		struct retry_policy on = cfg->retry;

		if (replace) {
			on.on_kinds = 0;
			memset(on.on_status, 0, sizeof(on.on_status));
		}
		msg[0] = '\0';
		for (i = 0; i < (size_t)n; i++)
			if (retry_on_add(&on, items[i]) != 0)
				config_msg_add(msg, msglen,
					       "%s.%s: '%s' is not connect, timeout, reset or a "
					       "status 400..599",
					       k->section, k->name, items[i]);
		if (msg[0] != '\0')
			goto out;
		cfg->retry = on;
		break;
	}

	default: snprintf(msg, msglen, "%s.%s: not a list", k->section, k->name); goto out;
	}
	ret = 0;
out:
	free(items);
	return ret;
}

/* Long, and left so: one case per value type of the key table above,
 * each a few lines, read side by side. */
static int config_set_key(struct fetchd_config *cfg, const struct config_key *k, char *value,
			  bool replace, char *msg, size_t msglen)
{
	void *field = (char *)cfg + k->off;
	uint64_t v = 0;
	bool b;
	enum log_level level;
	char *copy = NULL;

	switch (k->type) {
	case CONFIG_T_BOOL:
		if (config_parse_bool(value, &b) < 0) {
			snprintf(msg, msglen, "%s.%s: bad boolean '%s' (use true or false)",
				 k->section, k->name, value);
			return -1;
		}
		*(bool *)field = b;
		return 0;

	case CONFIG_T_SIZE:
		if (units_parse_size(value, &v) < 0) {
			snprintf(msg, msglen,
				 "%s.%s: bad size '%s' (use bytes, or a number with K, M or G: "
				 "powers of 1024, KB and KiB meaning K)",
				 k->section, k->name, value);
			return -1;
		}
		if (v < k->min || v > k->max) {
			snprintf(msg, msglen, "%s.%s: size must be at least %llu bytes", k->section,
				 k->name, (unsigned long long)k->min);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;

	case CONFIG_T_DURATION:
		if (units_parse_duration_ms(value, &v) < 0) {
			snprintf(
				msg, msglen,
				"%s.%s: bad duration '%s' (use a number with ms, s, m or h; a bare "
				"number is seconds)",
				k->section, k->name, value);
			return -1;
		}
		if (v < k->min || v > k->max) {
			snprintf(msg, msglen, "%s.%s: '%s' is out of range (%llums..24h)",
				 k->section, k->name, value, (unsigned long long)k->min);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;

	case CONFIG_T_UINT:
		if (config_parse_u64(value, &v) < 0) {
			snprintf(msg, msglen, "%s.%s: bad number '%s'", k->section, k->name, value);
			return -1;
		}
		if (v < k->min || v > k->max) {
			snprintf(msg, msglen, "%s.%s: %s is out of range (%llu..%llu)", k->section,
				 k->name, value, (unsigned long long)k->min,
				 (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;

	case CONFIG_T_STRING:
		for (const char *p = value; *p != '\0'; p++) {
			if (iscntrl((unsigned char)*p)) {
				snprintf(msg, msglen, "%s.%s: control characters are not allowed",
					 k->section, k->name);
				return -1;
			}
		}
		/* fall through */
	case CONFIG_T_PATH:
		if (value[0] != '\0' || k->type == CONFIG_T_STRING) {
			copy = strdup(value);
			if (copy == NULL) {
				snprintf(msg, msglen, "%s.%s: out of memory", k->section, k->name);
				return -1;
			}
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;

	case CONFIG_T_LEVEL:
		if (log_level_parse(value, &level) < 0) {
			snprintf(msg, msglen,
				 "%s.%s: bad level '%s' (use error, warn, info or debug)",
				 k->section, k->name, value);
			return -1;
		}
		*(enum log_level *)field = level;
		return 0;

	case CONFIG_T_LISTEN:
	case CONFIG_T_CIDRS:
	case CONFIG_T_HOSTS:
	case CONFIG_T_SCHEMES:
	case CONFIG_T_RETRY_ON: return config_set_list(cfg, k, value, replace, msg, msglen);
	}
	snprintf(msg, msglen, "%s.%s: unknown key", k->section, k->name);
	return -1;
}

/* threads (1..CONFIG_MAX_THREADS), queue_limit (0..1000000) or hosts of
 * [pool.NAME]. */
static int config_set_pool(struct fetchd_config *cfg, const char *section, const char *key,
			   const char *value, bool replace, char *msg, size_t msglen)
{
	static const struct config_key hosts_key = {"pool.NAME", "hosts", CONFIG_T_HOSTS, 0, 0,
						    0,		 0};
	struct config_pool *pool = config_pool_get(cfg, section, msg, msglen);
	char *copy = NULL, **items = NULL;
	uint64_t v;
	ssize_t n;
	int ret = -1;

	if (pool == NULL)
		return -1;
	copy = config_strdup_trimmed(value);
	if (copy == NULL) {
		snprintf(msg, msglen, "%s.%s: out of memory", section, key);
		return -1;
	}
	if (strcmp(key, "threads") == 0 || strcmp(key, "queue_limit") == 0) {
		bool threads = key[0] == 't';
		uint64_t lo = threads ? 1 : 0, hi = threads ? CONFIG_MAX_THREADS : 1000000;

		if (config_parse_u64(copy, &v) != 0 || v < lo || v > hi) {
			snprintf(msg, msglen, "%s.%s: must be a number from %llu to %llu", section,
				 key, (unsigned long long)lo, (unsigned long long)hi);
			goto out;
		}
		if (threads)
			pool->threads = (unsigned)v;
		else
			pool->queue_limit = (unsigned)v;
		ret = 0;
	} else if (strcmp(key, "hosts") == 0) {
		n = config_split(&hosts_key, copy, &items, msg, msglen);
		if (n < 0)
			goto out;
		char one[512];

		msg[0] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if (config_check_host_pattern(items[i], one, sizeof(one)) != 0)
				config_msg_add(msg, msglen, "%s.hosts: bad host pattern '%s'",
					       section, items[i]);
		if (msg[0] != '\0')
			goto out;
		if (config_strv_update(&pool->hosts, &pool->n_hosts, items, (size_t)n, replace) !=
		    0) {
			snprintf(msg, msglen, "%s.hosts: out of memory", section);
			goto out;
		}
		ret = 0;
	} else {
		snprintf(msg, msglen, "%s.%s: unknown key (a pool has threads, queue_limit, hosts)",
			 section, key);
	}
out:
	free(items);
	free(copy);
	return ret;
}

int config_set(struct fetchd_config *cfg, const char *section, const char *key, const char *value,
	       bool replace, char *msg, size_t msglen)
{
	const struct config_key *k;
	char *copy = NULL;
	int ret = -1;

	if (strncmp(section, "pool.", 5) == 0) {
		ret = config_set_pool(cfg, section, key, value, replace, msg, msglen);
		goto out;
	}
	if (!config_section_known(section)) {
		snprintf(msg, msglen, "unknown section [%s]", section);
		goto out;
	}
	k = config_key_find(section, key);
	if (k == NULL) {
		snprintf(msg, msglen, "%s.%s: unknown key", section, key);
		goto out;
	}
	copy = config_strdup_trimmed(value);
	if (copy == NULL) {
		snprintf(msg, msglen, "%s.%s: out of memory", section, key);
		goto out;
	}
	ret = config_set_key(cfg, k, copy, replace, msg, msglen);
out:
	free(copy);
	return ret;
}

static void config_report(struct config_parse *ps, int lineno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void config_report(struct config_parse *ps, int lineno, const char *fmt, ...)
{
	va_list ap;

	ps->errors++;
	if (ps->err == NULL)
		return;
	va_start(ap, fmt);
	if (lineno > 0)
		fprintf(ps->err, "%s:%d: ", ps->path, lineno);
	else
		fprintf(ps->err, "%s: ", ps->path);
	vfprintf(ps->err, fmt, ap);
	fputc('\n', ps->err);
	va_end(ap);
}

/* Each line of msg (config_msg_add) as a problem of its own. */
static void config_report_lines(struct config_parse *ps, int lineno, const char *msg)
{
	for (const char *line = msg; line != NULL && *line != '\0';) {
		const char *eol = strchr(line, '\n');
		int n = eol ? (int)(eol - line) : (int)strlen(line);

		config_report(ps, lineno, "%.*s", n, line);
		line = eol ? eol + 1 : NULL;
	}
}

static int config_handler(void *user, const char *section, const char *name, const char *value,
			  int lineno)
{
	struct config_parse *ps = user;
	const struct config_key *k;
	char msg[4096];
	size_t idx;
	bool replace;

	ps->handled_line = lineno;
	if (section[0] == '\0') {
		config_report(ps, lineno, "%s: key outside of any section", name);
		return 0;
	}
	if (strncmp(section, "pool.", 5) == 0) {
		/* a bad pool name was reported at its header */
		if (!config_pool_name_ok(section + 5, strlen(section + 5)))
			return 1;
		if (config_set(ps->cfg, section, name, value, false, msg, sizeof(msg)) < 0) {
			config_report_lines(ps, lineno, msg);
			return 0;
		}
		return 1;
	}
	/* Unknown sections were reported at their header. */
	if (!config_section_known(section))
		return 1;
	k = config_key_find(section, name);
	if (k == NULL) {
		config_report(ps, lineno, "%s.%s: unknown key", section, name);
		return 0;
	}
	/* A list key's first line in the file replaces the default (or the
	 * previous file's list); later lines append. */
	idx = (size_t)(k - config_keys);
	replace = config_is_list(k) && !ps->seen[idx];
	ps->seen[idx] = true;
	if (config_set(ps->cfg, section, name, value, replace, msg, sizeof(msg)) < 0) {
		config_report_lines(ps, lineno, msg);
		return 0;
	}
	return 1;
}

/* inih skips lines it cannot parse without calling the handler and only
 * returns the first one; report every such line. */
static void config_finish_line(struct config_parse *ps)
{
	if (ps->pending_key && ps->handled_line != ps->lineno)
		config_report(ps, ps->lineno, "syntax error (expected 'key = value')");
	ps->pending_key = false;
}

/* Check a "[section]" line as inih reads it: the name runs to the first
 * ']' that is not inside an inline comment. */
static void config_check_header(struct config_parse *ps, const char *line)
{
	const char *p = line + 1, *end;
	int len;

	for (end = p; *end != '\0' && *end != ']'; end++) {
		if (*end == ';' && isspace((unsigned char)end[-1]))
			break;
	}
	if (*end != ']') {
		config_report(ps, ps->lineno, "syntax error (section header without ']')");
		return;
	}
	len = (int)(end - p);
	if (strncmp(p, "pool.", 5) == 0) {
		if (!config_pool_name_ok(p + 5, (size_t)len - 5))
			config_report(ps, ps->lineno,
				      "[%.*s]: a pool name is 1 to 32 of a-z, 0-9, '_' and '-', "
				      "and not 'default'",
				      len, p);
	} else if (len > 0 && (size_t)len < 16) {
		char name[16];

		memcpy(name, p, (size_t)len);
		name[len] = '\0';
		if (!config_section_known(name))
			config_report(ps, ps->lineno, "unknown section [%s]", name);
	} else {
		config_report(ps, ps->lineno, "unknown section [%.*s]", len, p);
	}
}

/* An fgets-style reader for inih that counts lines, reports a line that
 * does not fit inih's buffer (instead of letting inih cut it) and notes
 * which lines must reach the handler. */
static char *config_reader(char *str, int num, void *stream)
{
	struct config_parse *ps = stream;
	const char *p;
	ssize_t len;

	config_finish_line(ps);
	errno = 0;
	len = getline(&ps->buf, &ps->bufsize, ps->fp);
	if (len < 0) {
		if (ferror(ps->fp))
			ps->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	ps->lineno++;
	if (num < 2 || len > num - 2) {
		config_report(ps, ps->lineno, "line too long (more than %d characters)", num - 3);
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, ps->buf, (size_t)len + 1);

	p = ps->buf;
	if (ps->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[')
		config_check_header(ps, p);
	else if (*p != '\0' && *p != ';' && *p != '#')
		ps->pending_key = true;
	return str;
}

int config_load(struct fetchd_config *cfg, const char *path, FILE *err)
{
	struct config_parse ps;
	int saved_max_line = ini_max_line;
	bool saved_multiline = ini_allow_multiline;
	int rc;

	memset(&ps, 0, sizeof(ps));
	ps.cfg = cfg;
	ps.path = path;
	ps.err = err;
	ps.fp = fopen(path, "r");
	if (ps.fp == NULL) {
		config_report(&ps, 0, "cannot open: %s", strerror(errno));
		goto out;
	}

	ini_max_line = CONFIG_MAX_LINE;
	/* Without this an indented line would silently become a second value
	 * of the key above it (Python configparser continuation lines). */
	ini_allow_multiline = false;
	rc = ini_parse_stream(config_reader, &ps, config_handler, &ps);
	config_finish_line(&ps);
	ini_max_line = saved_max_line;
	ini_allow_multiline = saved_multiline;

	if (rc == -2)
		config_report(&ps, 0, "out of memory");
	if (ps.read_errno != 0)
		config_report(&ps, 0, "cannot read: %s", strerror(ps.read_errno));

out:
	if (ps.fp != NULL)
		fclose(ps.fp);
	free(ps.buf);
	return ps.errors;
}

/* PEM files are small; a larger one is a mistake (a directory, a dump). */
#define CONFIG_MAX_PEM_BYTES (1024 * 1024)

/* Read the file key names (at path) into *blob. Returns 0, or 1 after
 * reporting why not. */
static int config_read_blob(const char *where, const char *key, const char *path,
			    struct config_blob *blob, FILE *err)
{
	/* O_NONBLOCK and a regular file only: a FIFO named here must not
	 * block the loop thread on a reload */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	FILE *f = NULL;
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int e = 0;

	if (fd < 0 || fstat(fd, &st) != 0) {
		e = errno;
		goto bad;
	}
	if (!S_ISREG(st.st_mode)) {
		e = EINVAL;
		if (err != NULL)
			fprintf(err, "%s: fetch.%s: %s is not a regular file\n", where, key, path);
		goto out;
	}
	if ((f = fdopen(fd, "rb")) == NULL) {
		e = errno;
		goto bad;
	}
	fd = -1; /* f owns it */
	data = malloc(CONFIG_MAX_PEM_BYTES + 1);
	if (data == NULL) {
		e = ENOMEM;
		goto bad;
	}
	len = fread(data, 1, CONFIG_MAX_PEM_BYTES + 1, f);
	if (ferror(f)) {
		e = errno ? errno : EIO;
		goto bad;
	}
	if (len == 0 || len > CONFIG_MAX_PEM_BYTES) {
		if (err != NULL)
			fprintf(err, "%s: fetch.%s: %s is %s\n", where, key, path,
				len == 0 ? "empty" : "larger than 1 MiB");
		goto out;
	}
	fclose(f);
	free(blob->data);
	blob->data = data;
	blob->len = len;
	return 0;
bad:
	if (err != NULL)
		fprintf(err, "%s: fetch.%s: cannot read %s: %s\n", where, key, path, strerror(e));
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (data != NULL)
		explicit_bzero(data, len);
	free(data);
	return 1;
}

/* The TLS files of [fetch], read now: a request never names a file. */
static int config_read_tls_files(struct fetchd_config *cfg, const char *where, FILE *err)
{
	int errors = 0;

	if ((cfg->client_cert == NULL) != (cfg->client_key == NULL)) {
		if (err != NULL)
			fprintf(err, "%s: fetch.client_cert and fetch.client_key go together\n",
				where);
		errors++;
	}
	if (cfg->ca_file != NULL)
		errors += config_read_blob(where, "ca_file", cfg->ca_file, &cfg->ca_pem, err);
	if (cfg->client_cert != NULL)
		errors += config_read_blob(where, "client_cert", cfg->client_cert,
					   &cfg->client_cert_pem, err);
	if (cfg->client_key != NULL)
		errors += config_read_blob(where, "client_key", cfg->client_key,
					   &cfg->client_key_pem, err);
	return errors;
}

/* min_threads against threads, and the threads and descriptors of every
 * pool against what the machine allows (capacity.h); fills idle_per_worker
 * and fd_need. Returns the number of problems. */
static int config_check_machine(struct fetchd_config *cfg, const char *where, FILE *err)
{
	struct capacity_machine m;
	struct capacity_fd_budget b;
	uint64_t workers = cfg->threads;
	char msg[512];
	int errors = 0;

	if (cfg->min_threads == CONFIG_MIN_THREADS_ALL) {
		cfg->min_threads = cfg->threads;
	} else if (cfg->min_threads > cfg->threads) {
		if (err != NULL)
			fprintf(err, "%s: pool.min_threads = %u is more than pool.threads = %u\n",
				where, cfg->min_threads, cfg->threads);
		errors++;
	}
	for (size_t i = 0; i < cfg->n_pools; i++)
		workers += cfg->pools[i].threads;
	if (workers > CONFIG_MAX_THREADS) {
		if (err != NULL)
			fprintf(err, "%s: %llu threads over every pool, more than %d\n", where,
				(unsigned long long)workers, CONFIG_MAX_THREADS);
		errors++;
	}
	capacity_read_machine(&m);
	if (capacity_check_threads(workers, &m, msg, sizeof(msg)) != 0) {
		if (err != NULL)
			fprintf(err, "%s: pool.threads: %s\n", where, msg);
		errors++;
	}
	if (capacity_fd_budget(cfg->max_connections, workers, cfg->max_idle_connections, m.fd_hard,
			       &b, msg, sizeof(msg)) != 0) {
		if (err != NULL)
			fprintf(err, "%s: %s\n", where, msg);
		errors++;
	}
	cfg->idle_per_worker = (unsigned)b.idle_per_worker;
	cfg->fd_need = b.total;
	return errors;
}

int config_check(struct fetchd_config *cfg, const char *where, FILE *err)
{
	int errors = config_read_tls_files(cfg, where, err);

	if (cfg->n_listen == 0) {
		if (err != NULL)
			fprintf(err, "%s: no listen address (set server.listen)\n", where);
		errors++;
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->listen[i], cfg->listen[j]) == 0) {
				if (err != NULL)
					fprintf(err, "%s: server.listen: '%s' is listed twice\n",
						where, cfg->listen[i]);
				errors++;
				break;
			}
		}
	}
	if (cfg->schemes == 0) {
		if (err != NULL)
			fprintf(err, "%s: fetch.schemes: no scheme allowed\n", where);
		errors++;
	}
	return errors + config_check_machine(cfg, where, err);
}

/* A size in the largest unit that keeps it exact ("1M", "1536K", "100"). */
static void config_dump_size(FILE *out, uint64_t v)
{
	static const char units[] = "GMK";

	for (int i = 0; i < 3; i++) {
		uint64_t unit = UINT64_C(1) << (10 * (3 - i));

		if (v != 0 && v % unit == 0) {
			fprintf(out, "%llu%c", (unsigned long long)(v / unit), units[i]);
			return;
		}
	}
	fprintf(out, "%llu", (unsigned long long)v);
}

/* A duration in the largest unit that keeps it exact ("30s", "250ms"). */
static void config_dump_duration(FILE *out, uint64_t ms)
{
	if (ms != 0 && ms % (60 * 60 * 1000) == 0)
		fprintf(out, "%lluh", (unsigned long long)(ms / (60 * 60 * 1000)));
	else if (ms != 0 && ms % (60 * 1000) == 0)
		fprintf(out, "%llum", (unsigned long long)(ms / (60 * 1000)));
	else if (ms % 1000 == 0)
		fprintf(out, "%llus", (unsigned long long)(ms / 1000));
	else
		fprintf(out, "%llums", (unsigned long long)ms);
}

static void config_dump_strv(FILE *out, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", v[i]);
}

/* An empty path or list: written "key =", with no trailing blank. */
static bool config_dump_empty(const struct fetchd_config *cfg, const struct config_key *k)
{
	if (k->type == CONFIG_T_PATH)
		return *(char *const *)((const char *)cfg + k->off) == NULL;
	if (k->type == CONFIG_T_RETRY_ON)
		return cfg->retry.on_kinds == 0 &&
		       memcmp(cfg->retry.on_status, (uint32_t[sizeof(cfg->retry.on_status) / 4]){0},
			      sizeof(cfg->retry.on_status)) == 0;
	if (config_is_list(k) && k->type != CONFIG_T_SCHEMES)
		return *(const size_t *)((const char *)cfg + k->off_n) == 0;
	return false;
}

/* Long, and left so: one case per value type, as in config_set_key. */
static void config_dump_key(FILE *out, const struct fetchd_config *cfg, const struct config_key *k)
{
	const void *field = (const char *)cfg + k->off;
	size_t n = config_is_list(k) && k->type != CONFIG_T_SCHEMES && k->type != CONFIG_T_RETRY_ON
			   ? *(const size_t *)((const char *)cfg + k->off_n)
			   : 0;
	char addr[INET6_ADDRSTRLEN];

	fprintf(out, "%s =%s", k->name, config_dump_empty(cfg, k) ? "" : " ");
	switch (k->type) {
	case CONFIG_T_BOOL: fprintf(out, "%s", *(const bool *)field ? "true" : "false"); break;
	case CONFIG_T_SIZE: config_dump_size(out, *(const uint64_t *)field); break;
	case CONFIG_T_DURATION: config_dump_duration(out, *(const uint64_t *)field); break;
	case CONFIG_T_UINT: fprintf(out, "%u", *(const unsigned *)field); break;
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
		fprintf(out, "%s", *(char *const *)field ? *(char *const *)field : "");
		break;
	case CONFIG_T_LEVEL:
		fprintf(out, "%s", log_level_name(*(const enum log_level *)field));
		break;
	case CONFIG_T_LISTEN:
	case CONFIG_T_HOSTS: config_dump_strv(out, *(char **const *)field, n); break;
	case CONFIG_T_CIDRS:
		for (size_t i = 0; i < n; i++) {
			const struct cidr *c = &(*(struct cidr *const *)field)[i];

			inet_ntop(c->family, c->addr, addr, sizeof(addr));
			fprintf(out, "%s%s/%u", i ? ", " : "", addr, c->prefix);
		}
		break;
	case CONFIG_T_SCHEMES:
		fprintf(out, "%s%s%s", cfg->schemes & CONFIG_SCHEME_HTTP ? "http" : "",
			cfg->schemes == (CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS) ? ", " : "",
			cfg->schemes & CONFIG_SCHEME_HTTPS ? "https" : "");
		break;
	case CONFIG_T_RETRY_ON: {
		char on[1024];

		retry_on_format(&cfg->retry, on, sizeof(on));
		fputs(on, out);
		break;
	}
	}
	fputc('\n', out);
}

void config_dump(const struct fetchd_config *cfg, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < CONFIG_N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (section == NULL || strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		config_dump_key(out, cfg, k);
	}
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct config_pool *p = &cfg->pools[i];

		fprintf(out, "\n[pool.%s]\nthreads = %u\nqueue_limit = %u\nhosts =%s", p->name,
			p->threads, p->queue_limit, p->n_hosts ? " " : "");
		config_dump_strv(out, p->hosts, p->n_hosts);
		fputc('\n', out);
	}
}
