#include "expect.h"

#include <stdio.h>
#include <stdlib.h>

const char *body_of(const struct http_resp *r)
{
	return r->body != NULL ? r->body : "(no body)";
}

const char *describe(const json_t *v)
{
	static char buf[256];
	char *s;

	if (v == NULL)
		return "(absent)";
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, sizeof(buf), "%.250s", s != NULL ? s : "?");
	free(s);
	return buf;
}

void get_ok(int port, const char *path, struct http_resp *r)
{
	ck_assert_msg(http_get(port, path, r) == 0, "GET %.200s failed", path);
}

/* The integer at json path of GET port/url; -1 when absent. */
static long integer_at(int port, const char *url, const char *path)
{
	struct http_resp r;
	long v = -1;

	if (http_get(port, url, &r) == 0) {
		json_t *j = json_path(r.json, path);

		if (json_is_integer(j))
			v = (long)json_integer_value(j);
		http_resp_free(&r);
	}
	return v;
}

long upstream_stat(int upstream_port, const char *key, const char *field)
{
	char *url = str_printf("/stats?key=%s", key);
	long v = integer_at(upstream_port, url, field);

	free(url);
	return v;
}

long fetchd_stat(int fetchd_port, const char *path)
{
	return integer_at(fetchd_port, "/v1/stats", path);
}

long pool_stat_at(int fetchd_port, const char *field)
{
	char *path = str_printf("pools.default.%s", field);
	long v = fetchd_stat(fetchd_port, path);

	free(path);
	return v;
}

bool wait_upstream_stat(int upstream_port, const char *key, const char *field, long want,
			unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (upstream_stat(upstream_port, key, field) != want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

bool upstream_stat_stays(int upstream_port, const char *key, const char *field, long want,
			 unsigned ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (upstream_stat(upstream_port, key, field) != want)
			return false;
		sleep_ms(20);
	} while (now_ms() < end);
	return true;
}

bool wait_pool_stat_at_least(int fetchd_port, const char *field, long at_least, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (pool_stat_at(fetchd_port, field) < at_least) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}
