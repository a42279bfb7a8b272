/* The retry policy and the decision after each attempt (see retry.h).
 * Pure functions: no locks, no state; arc4random_uniform (glibc 2.36)
 * is thread-safe, so workers call retry_decide at once. */
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const retry_reason_names[RETRY__COUNT] = {"connect", "timeout", "reset",
							     "status"};

const char *retry_reason_name(enum retry_reason r)
{
	return (unsigned)r < RETRY__COUNT ? retry_reason_names[r] : "?";
}

void retry_on_add_status(struct retry_policy *p, int status)
{
	unsigned i = (unsigned)(status - RETRY_STATUS_MIN);

	p->on_status[i / 32] |= 1u << (i % 32);
}

bool retry_on_status(const struct retry_policy *p, int status)
{
	unsigned i = (unsigned)(status - RETRY_STATUS_MIN);

	if (status < RETRY_STATUS_MIN || status > RETRY_STATUS_MAX)
		return false;
	return (p->on_status[i / 32] >> (i % 32)) & 1u;
}

int retry_on_add(struct retry_policy *p, const char *item)
{
	char *end;
	long status;

	for (int r = 0; r < RETRY_STATUS; r++) {
		if (strcasecmp(item, retry_reason_names[r]) == 0) {
			p->on_kinds |= 1u << r;
			return 0;
		}
	}
	errno = 0;
	status = strtol(item, &end, 10);
	if (item[0] < '0' || item[0] > '9' || *end != '\0' || errno != 0 ||
	    status < RETRY_STATUS_MIN || status > RETRY_STATUS_MAX)
		return -1;
	retry_on_add_status(p, (int)status);
	return 0;
}

void retry_on_format(const struct retry_policy *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int r = 0; r < RETRY_STATUS; r++)
		if ((p->on_kinds & (1u << r)) && off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						retry_reason_names[r]);
	for (int s = RETRY_STATUS_MIN; s <= RETRY_STATUS_MAX; s++)
		if (retry_on_status(p, s) && off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? ", " : "", s);
}

/* RFC 9110 section 9.2.2; TRACE is never sent by fetchd. */
static bool retry_idempotent(const char *method)
{
	static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};

	for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
		if (strcmp(method, idempotent[i]) == 0)
			return true;
	return false;
}

/* Which kind of retryable failure o is, or -1. */
static int retry_kind(const struct retry_outcome *o)
{
	if (o->err == ERR_NONE)
		return o->status >= RETRY_STATUS_MIN ? RETRY_STATUS : -1;
	if (o->err == ERR_CONNECT_FAILED)
		return RETRY_CONNECT;
	if (o->err == ERR_UPSTREAM_TIMEOUT)
		return RETRY_TIMEOUT;
	if (o->err == ERR_UPSTREAM_ERROR &&
	    (o->curl_code == CURLE_GOT_NOTHING || o->curl_code == CURLE_RECV_ERROR ||
	     o->curl_code == CURLE_SEND_ERROR || o->curl_code == CURLE_PARTIAL_FILE ||
	     o->curl_code == CURLE_HTTP2_STREAM || o->curl_code == CURLE_HTTP2))
		return RETRY_RESET;
	return -1;
}

enum retry_verdict retry_decide(const struct retry_policy *p, const char *method, unsigned done,
				const struct retry_outcome *o, uint64_t left_ms, uint64_t *delay_ms,
				enum retry_reason *reason)
{
	int kind = retry_kind(o);
	uint64_t cap;

	*delay_ms = 0;
	if (kind < 0 || done > p->attempts || done > RETRY_MAX)
		return RETRY_NO;
	if (kind == RETRY_STATUS ? !retry_on_status(p, o->status) : !(p->on_kinds & (1u << kind)))
		return RETRY_NO;
	if (!p->non_idempotent && !retry_idempotent(method))
		return RETRY_NO;
	cap = p->backoff_ms;
	for (unsigned i = 1; i < done && cap < p->max_backoff_ms; i++)
		cap *= 2;
	if (cap > p->max_backoff_ms)
		cap = p->max_backoff_ms;
	*delay_ms = cap > 0 ? arc4random_uniform(
				      (uint32_t)(cap > UINT32_MAX - 1 ? UINT32_MAX - 1 : cap) + 1)
			    : 0;
	if (o->retry_after_ms >= 0 && (uint64_t)o->retry_after_ms > *delay_ms)
		*delay_ms = (uint64_t)o->retry_after_ms;
	*reason = (enum retry_reason)kind;
	if (*delay_ms + o->duration_ms >= left_ms)
		return RETRY_CUT_SHORT;
	return RETRY_YES;
}

int64_t retry_after_ms(const char *value)
{
	char *end;
	long long secs;
	time_t when, now;

	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		errno = 0;
		secs = strtoll(value, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0' || errno != 0 || secs > 86400LL * 365)
			return -1;
		return secs * 1000;
	}
	when = curl_getdate(value, NULL);
	if (when == (time_t)-1)
		return -1;
	now = time(NULL);
	return when > now ? (int64_t)(when - now) * 1000 : 0;
}
