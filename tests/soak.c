/*
 * soak: mixed traffic against a real fetchd for SECONDS, then checks that
 * every answer came exactly once and that fetchd gave back what it took.
 *
 *   tests/soak [SECONDS] [--clients N] [--rss-allowance-mb N] [--seed N]
 *
 * scripts/test runs 25 s after the plain `make check`; the long soak (300 s)
 * is run by hand (README, Tests). FETCHD_BIN and UPSTREAM_BIN name the
 * binaries, as for the integration tests. Only 127.0.0.1; every wait is
 * bounded; fetchd and the upstream are children tied to the test process
 * (PR_SET_PDEATHSIG), so they die with it on every exit path, and are
 * stopped by PID (fetchd_stop, upstream_stop) on the normal one.
 *
 * The traffic: N client threads, each on a new connection per request
 * ("Connection: close", read to EOF, so a second answer on the same
 * connection would show as extra bytes), fetching a weighted mix of fast,
 * slow, large, large-JSON, gzip, broken (reset, reset mid-body, lying length, garbage),
 * redirecting, endless-but-capped, non-2xx, deadline-bound and GET-form
 * requests, batches of those, clients that hang up (before the answer, or
 * part-way through reading it, sometimes with RST), and slow readers; and a
 * thread that rewrites the config with another [pool] threads and sends
 * SIGHUP every two seconds.
 *
 * What it asserts:
 * - each answer is one complete HTTP response (Content-Length bytes, then
 *   EOF, nothing more), echoes the request's X-Request-Id, and is the
 *   document its kind expects, or one of the two answers load may give any
 *   fetch: 503 overloaded, 504 upstream_timeout ("shed", counted);
 * - fetchd's access log has exactly one line per answered request, with the
 *   status the client saw, and at most one per request whose client hung up;
 * - each kind got at least one expected (not shed) answer;
 * - VmRSS never exceeds max_pending_bytes + the allowance (below);
 * - afterwards /v1/stats shows busy 0 and queued 0, and fetchd's open fds
 *   and threads come back to their values at start.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testlib.h"

/* [server] max_pending_bytes of the soak's fetchd, in MiB. */
#define PENDING_MB 32
/* The RSS allowance above max_pending_bytes, in MiB: what fetchd holds that
 * is not charged to the budget. Measured on Debian 12: 13 MB at start with
 * 8 workers (code, libraries, curl handles), up to 12 workers' stacks and
 * curl state after the reloads, and malloc's free lists between two trims;
 * bodies and documents are charged to the budget (src/budget.h). A 25 s
 * soak peaked at 27 MB in all. 48 MiB leaves room for a loaded machine. */
#define DEFAULT_ALLOWANCE_MB 48
/* Every exchange with fetchd is bounded by this, in ms. */
#define EXCHANGE_MS 60000
/* Cap on one answer read by a client, in bytes. */
#define ANSWER_CAP (32u << 20)
#define MAX_RECORDS (1u << 21)
#define HUP_EVERY_MS 2000
#define SETTLE_WAIT_MS 15000

static unsigned soak_seconds = 25;
static unsigned n_clients = 16;
static unsigned allowance_mb = DEFAULT_ALLOWANCE_MB;
static unsigned long seed;

/* ---- what a request is, and what it must get back ---- */

enum kind {
	K_FAST,
	K_GETFORM,
	K_SLOW,
	K_LARGE,
	K_JSON,
	K_GZIP,
	K_BROKEN,
	K_REDIRECT,
	K_ENDLESS,
	K_STATUS,
	K_DEADLINE,
	K_BATCH,
	K_HANGUP,
	K_SLOW_READER,
	K_COUNT
};

static const char *const kind_names[K_COUNT] = {
	"fast",	    "get-form", "slow",	  "large",    "json",  "gzip",	  "broken",
	"redirect", "endless",	"status", "deadline", "batch", "hang-up", "slow-reader",
};
/* weights, out of their sum */
static const unsigned kind_weights[K_COUNT] = {24, 5, 10, 7, 4, 5, 8, 6, 5, 4, 3, 8, 9, 6};

/* One fetch's expected answer: an error code (with its HTTP status), or a
 * document with this upstream status and, where >= 0, size, truncated and
 * number of redirect hops. */
struct want {
	const char *code;
	int http;
	int up_status;
	long size;
	int truncated;
	int hops;
	long items; /* > 0: the json field is an array of this many items */
};

enum verdict { V_OK, V_SHED, V_FAIL };

/* What happened to request i (its X-Request-Id is soak-i). */
enum outcome { O_NONE, O_ANSWERED, O_HUNG_UP };
struct record {
	uint8_t kind;
	uint8_t outcome;
	int16_t status;
};

static struct record *records;
static atomic_uint next_id;
static atomic_bool stop_traffic;
static int fetchd_port, upstream_port;
static pid_t fetchd_pid;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned long sent, ok, shed, hung_up, failed;
} counts[K_COUNT];
static char first_failure[2048]; /* guarded by stats_lock */
static unsigned long n_failures; /* guarded by stats_lock */

static void count(enum kind k, enum verdict v)
{
	pthread_mutex_lock(&stats_lock);
	if (v == V_OK)
		counts[k].ok++;
	else if (v == V_SHED)
		counts[k].shed++;
	pthread_mutex_unlock(&stats_lock);
}

static void failure(enum kind k, unsigned id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a failed expectation; the first is kept for the final assertion
 * and each is printed (capped) as it happens. */
static void failure(enum kind k, unsigned id, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&stats_lock);
	counts[k].failed++;
	if (n_failures++ == 0)
		snprintf(first_failure, sizeof(first_failure), "soak-%u (%s): %s", id,
			 kind_names[k], msg);
	if (n_failures <= 20)
		fprintf(stderr, "soak: FAIL soak-%u (%s): %s\n", id, kind_names[k], msg);
	pthread_mutex_unlock(&stats_lock);
}

/* xorshift64*, one state per thread */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static unsigned rnd_between(uint64_t *s, unsigned lo, unsigned hi)
{
	return lo + (unsigned)(rnd(s) % (uint64_t)(hi - lo + 1));
}

/* ---- /proc ---- */

/* A "Name:   value" line of /proc/PID/status (VmRSS in kB, Threads); -1. */
static long proc_status_value(pid_t pid, const char *name)
{
	char path[64], line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static long proc_rss_kb(pid_t pid)
{
	return proc_status_value(pid, "VmRSS");
}

static long proc_threads(pid_t pid)
{
	return proc_status_value(pid, "Threads");
}

/* Entries of /proc/PID/fd; with out, their targets appended one a line. */
static long proc_fds(pid_t pid, char *out, size_t outlen)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	size_t used = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		char link[384], target[256];
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		n++;
		if (out == NULL)
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		k = readlink(link, target, sizeof(target) - 1);
		target[k > 0 ? k : 0] = '\0';
		if (used < outlen) {
			int w = snprintf(out + used, outlen - used, "  %s -> %s\n", e->d_name,
					 target);

			if (w > 0)
				used += (size_t)w;
		}
	}
	closedir(d);
	return n;
}

/* ---- one exchange on its own connection ---- */

/* How a client treats its connection once the request is sent. */
struct client_mode {
	int hangup_after_ms;	   /* >= 0: close this long after sending, reading nothing */
	size_t hangup_after_bytes; /* > 0: close once this much of the answer came */
	bool rst;		   /* close with RST (SO_LINGER 0) */
	size_t read_chunk;	   /* > 0: slow reader, this much per read ... */
	int read_pause_ms;	   /* ... then this pause */
};

struct answer {
	int status;
	char *buf; /* the whole answer; body = buf + head_len */
	size_t len, head_len, body_len;
	char request_id[64];
	json_t *json;
};

static void answer_free(struct answer *a)
{
	free(a->buf);
	json_decref(a->json);
	memset(a, 0, sizeof(*a));
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* The value of header name in the head [buf, buf + head_len), or NULL. */
static const char *find_header(const char *buf, size_t head_len, const char *name, size_t *vlen)
{
	const char *p = memchr(buf, '\n', head_len), *end = buf + head_len;
	size_t n = strlen(name);

	while (p != NULL && p + 1 < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));

		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen > 0 && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

/* Send one request and read its answer to EOF. Returns 1 when the client
 * hung up as its mode asked, 0 with a complete answer in a, -1 with the
 * reason in why (a connection problem, or an answer that is not exactly
 * one complete HTTP response). */
static int exchange(const char *method, const char *target, const char *body, unsigned id,
		    const struct client_mode *m, struct answer *a, char *why, size_t whylen)
{
	uint64_t deadline = now_ms() + EXCHANGE_MS;
	char *req = NULL;
	size_t cap = 0, sent = 0, req_len;
	int fd = -1, rc = -1;
	const char *v;
	size_t vlen;
	long clen;

	memset(a, 0, sizeof(*a));
	req = str_printf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
			 "X-Request-Id: soak-%u\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 method, target, id, body ? strlen(body) : 0, body ? body : "");
	req_len = strlen(req);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		goto bad;
	}
	if (m->read_chunk > 0) {
		int small = 16 * 1024;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	{
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(fetchd_port)};
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t elen = sizeof(err);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
		    errno != EINPROGRESS) {
			snprintf(why, whylen, "connect: %s", strerror(errno));
			goto bad;
		}
		if (poll(&pfd, 1, remaining_ms(deadline)) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
			snprintf(why, whylen, "connect: %s", err ? strerror(err) : "timed out");
			goto bad;
		}
	}
	while (sent < req_len) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t n;

		if (poll(&pfd, 1, remaining_ms(deadline)) != 1) {
			snprintf(why, whylen, "sending the request timed out");
			goto bad;
		}
		n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, whylen, "send: %s", strerror(errno));
			goto bad;
		}
		if (n > 0)
			sent += (size_t)n;
	}
	if (m->hangup_after_ms >= 0) {
		sleep_ms((unsigned)m->hangup_after_ms);
		rc = 1;
		goto hang_up;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		size_t want = m->read_chunk > 0 ? m->read_chunk : 256 * 1024;
		ssize_t n;

		if (a->len + want + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			char *nb;

			while (ncap < a->len + want + 1)
				ncap *= 2;
			if (ncap > ANSWER_CAP + want + 1 || (nb = realloc(a->buf, ncap)) == NULL) {
				snprintf(why, whylen, "answer over %u bytes", ANSWER_CAP);
				goto bad;
			}
			a->buf = nb;
			cap = ncap;
		}
		if (poll(&pfd, 1, remaining_ms(deadline)) != 1) {
			snprintf(why, whylen,
				 "no answer (or no EOF) within %d ms; %zu bytes so far",
				 EXCHANGE_MS, a->len);
			goto bad;
		}
		n = recv(fd, a->buf + a->len, want, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			snprintf(why, whylen, "recv: %s after %zu bytes", strerror(errno), a->len);
			goto bad;
		}
		if (n == 0)
			break;
		a->len += (size_t)n;
		if (m->hangup_after_bytes > 0 && a->len >= m->hangup_after_bytes) {
			rc = 1;
			goto hang_up;
		}
		if (m->read_pause_ms > 0)
			sleep_ms((unsigned)m->read_pause_ms);
	}
	if (a->buf == NULL || a->len == 0) {
		snprintf(why, whylen, "connection closed without an answer");
		goto bad;
	}
	a->buf[a->len] = '\0';
	{
		char *end = strstr(a->buf, "\r\n\r\n");

		if (end == NULL || sscanf(a->buf, "HTTP/1.%*c %d ", &a->status) != 1) {
			snprintf(why, whylen, "not an HTTP response: %.200s", a->buf);
			goto bad;
		}
		a->head_len = (size_t)(end + 4 - a->buf);
	}
	v = find_header(a->buf, a->head_len, "Content-Length", &vlen);
	if (v == NULL || (clen = strtol(v, NULL, 10)) < 0) {
		snprintf(why, whylen, "answer without Content-Length: %.300s", a->buf);
		goto bad;
	}
	a->body_len = a->len - a->head_len;
	if (a->body_len != (size_t)clen) {
		snprintf(why, whylen,
			 "%s: Content-Length %ld, %zu bytes came before EOF; head: %.300s",
			 a->body_len > (size_t)clen ? "more than one answer" : "incomplete answer",
			 clen, a->body_len, a->buf);
		goto bad;
	}
	v = find_header(a->buf, a->head_len, "X-Request-Id", &vlen);
	if (v != NULL && vlen < sizeof(a->request_id))
		memcpy(a->request_id, v, vlen);
	a->json = json_loadb(a->buf + a->head_len, a->body_len, 0, NULL);
	if (a->json == NULL) {
		snprintf(why, whylen, "HTTP %d, body is not JSON: %.300s", a->status,
			 a->buf + a->head_len);
		goto bad;
	}
	rc = 0;
	goto out;
hang_up:
	if (m->rst) {
		struct linger lg = {1, 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	goto out;
bad:
	rc = -1;
out:
	if (fd != -1)
		close(fd);
	free(req);
	return rc;
}

/* ---- requests and their checks ---- */

/* One fetch of the mix, as a JSON request object, with what it must give. */
static json_t *make_fetch(enum kind k, uint64_t *s, struct want *w)
{
	char path[160];
	json_t *o = json_object();
	char *url;

	*w = (struct want){.up_status = 200, .size = -1, .truncated = -1, .hops = -1};
	switch (k) {
	case K_SLOW:
		snprintf(path, sizeof(path), "/delay?ms=%u", rnd_between(s, 50, 500));
		w->size = 8;
		break;
	case K_LARGE: {
		unsigned n = rnd_between(s, 256, 2048) * 1024;
		bool bin = rnd(s) & 1;

		snprintf(path, sizeof(path), "/%s?n=%u", bin ? "bytes" : "text", n);
		json_object_set_new(o, "fields",
				    json_pack("[s,s,s]", "status", "size", "truncated"));
		if (rnd(s) & 1)
			json_object_del(o, "fields"); /* and sometimes the whole document */
		w->size = n;
		w->truncated = 0;
		break;
	}
	case K_JSON: {
		/* parsed into the json field: many small allocations */
		unsigned n = rnd_between(s, 1000, 20000);

		snprintf(path, sizeof(path), "/json-list?n=%u", n);
		json_object_set_new(o, "fields", json_pack("[s,s,s]", "status", "size", "json"));
		w->items = n;
		break;
	}
	case K_GZIP:
		snprintf(path, sizeof(path), "/gzip");
		w->size = 1100;
		break;
	case K_BROKEN: {
		static const char *const broken[] = {"/reset", "/reset-mid", "/lie?n=1000",
						     "/garbage"};

		snprintf(path, sizeof(path), "%s", broken[rnd(s) % 4]);
		w->code = "upstream_error";
		w->http = 502;
		break;
	}
	case K_REDIRECT: {
		unsigned n = rnd_between(s, 1, 4);

		snprintf(path, sizeof(path), "/cookie-chain?n=%u", n);
		w->hops = (int)n;
		break;
	}
	case K_ENDLESS: {
		unsigned cap = rnd_between(s, 16, 512) * 1024;

		snprintf(path, sizeof(path), "/endless");
		json_object_set_new(o, "max_bytes", json_integer(cap));
		json_object_set_new(o, "body_mode", json_string("none"));
		w->size = cap;
		w->truncated = 1;
		break;
	}
	case K_STATUS: {
		static const int codes[] = {201, 204, 404, 418, 500, 503};
		int c = codes[rnd(s) % 6];

		snprintf(path, sizeof(path), "/status/%d", c);
		w->up_status = c;
		break;
	}
	case K_DEADLINE:
		snprintf(path, sizeof(path), "/delay?ms=5000");
		json_object_set_new(o, "timeout", json_real(0.2 + (double)(rnd(s) % 3) / 10));
		w->code = "upstream_timeout";
		w->http = 504;
		break;
	default: /* K_FAST, K_GETFORM */
		snprintf(path, sizeof(path), "/json");
		w->size = 23;
		break;
	}
	url = str_printf("http://127.0.0.1:%d%s", upstream_port, path);
	json_object_set_new(o, "url", json_string(url));
	free(url);
	return o;
}

/* Judge one fetch document (http 0: a batch item, which has no status of
 * its own). */
static enum verdict judge(json_t *doc, int http, const struct want *w, char *why, size_t whylen)
{
	json_t *err = json_object_get(doc, "error");
	char *text;

	if (err != NULL) {
		const char *code = json_string_value(json_object_get(err, "code"));

		if (code == NULL)
			goto bad;
		if (w->code != NULL && strcmp(code, w->code) == 0 && (http == 0 || http == w->http))
			return V_OK;
		if ((strcmp(code, "overloaded") == 0 && (http == 0 || http == 503)) ||
		    (strcmp(code, "upstream_timeout") == 0 && (http == 0 || http == 504)))
			return V_SHED;
		goto bad;
	}
	if (w->code != NULL || (http != 0 && http != 200))
		goto bad;
	if (json_integer_value(json_object_get(doc, "status")) != w->up_status)
		goto bad;
	if (w->size >= 0 && json_integer_value(json_object_get(doc, "size")) != w->size)
		goto bad;
	if (w->truncated >= 0 &&
	    json_is_true(json_object_get(doc, "truncated")) != (w->truncated == 1))
		goto bad;
	if (w->items > 0 && json_array_size(json_object_get(doc, "json")) != (size_t)w->items)
		goto bad;
	if (w->hops >= 0 && json_array_size(json_object_get(doc, "history")) != (size_t)w->hops)
		goto bad;
	return V_OK;
bad:
	text = json_dumps(doc, JSON_COMPACT);
	snprintf(why, whylen, "HTTP %d, want %s%s (upstream status %d, size %ld): %.400s", http,
		 w->code ? "error " : "a document", w->code ? w->code : "", w->up_status, w->size,
		 text ? text : "?");
	free(text);
	return V_FAIL;
}

static unsigned new_id(enum kind k)
{
	unsigned id = atomic_fetch_add(&next_id, 1);

	if (id >= MAX_RECORDS)
		return UINT32_MAX;
	records[id].kind = (uint8_t)k;
	pthread_mutex_lock(&stats_lock);
	counts[k].sent++;
	pthread_mutex_unlock(&stats_lock);
	return id;
}

/* Check the answer's envelope: the echoed id, and record it. */
static bool answered(enum kind k, unsigned id, const struct answer *a)
{
	char want_id[32];

	snprintf(want_id, sizeof(want_id), "soak-%u", id);
	records[id].outcome = O_ANSWERED;
	records[id].status = (int16_t)a->status;
	if (strcmp(a->request_id, want_id) != 0) {
		failure(k, id, "X-Request-Id: want %s, got \"%s\"", want_id, a->request_id);
		return false;
	}
	return true;
}

static void run_fetch(enum kind k, uint64_t *s)
{
	static const struct client_mode plain = {.hangup_after_ms = -1};
	struct client_mode slow = {
		.hangup_after_ms = -1, .read_chunk = 16 * 1024, .read_pause_ms = 10};
	struct want w;
	struct answer a;
	char why[1024];
	json_t *o;
	char *body = NULL, *target = NULL;
	unsigned id = new_id(k);
	int rc;

	if (id == UINT32_MAX)
		return;
	if (k == K_SLOW_READER) {
		o = make_fetch(K_LARGE, s, &w);
		json_object_del(o, "fields");
	} else {
		o = make_fetch(k, s, &w);
	}
	if (k == K_GETFORM) {
		char *url = str_printf("http://127.0.0.1:%d/json", upstream_port);
		char *enc = url_encode(url);

		target = str_printf("/v1/fetch?url=%s", enc);
		free(enc);
		free(url);
	} else {
		body = json_dumps(o, JSON_COMPACT);
	}
	rc = exchange(k == K_GETFORM ? "GET" : "POST", target ? target : "/v1/fetch", body, id,
		      k == K_SLOW_READER ? &slow : &plain, &a, why, sizeof(why));
	if (rc != 0) {
		failure(k, id, "%s", why);
	} else if (answered(k, id, &a)) {
		enum verdict v = judge(a.json, a.status, &w, why, sizeof(why));

		if (v == V_FAIL)
			failure(k, id, "%s", why);
		else
			count(k, v);
	}
	answer_free(&a);
	json_decref(o);
	free(body);
	free(target);
}

static void run_batch(uint64_t *s)
{
	static const struct client_mode plain = {.hangup_after_ms = -1};
	static const enum kind mix[] = {K_FAST,	  K_SLOW,     K_LARGE,	 K_JSON,  K_GZIP,
					K_BROKEN, K_REDIRECT, K_ENDLESS, K_STATUS};
	unsigned n = rnd_between(s, 1, 8), id = new_id(K_BATCH);
	struct want w[8];
	json_t *reqs = json_array(), *results;
	struct answer a;
	char why[1024];
	char *body;
	bool ok = true, shed = false;

	if (id == UINT32_MAX) {
		json_decref(reqs);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		enum kind k = mix[rnd(s) % (sizeof(mix) / sizeof(mix[0]))];
		json_t *o = make_fetch(k, s, &w[i]);

		if (k == K_LARGE) { /* keep batches within memory reason */
			json_object_set_new(o, "fields",
					    json_pack("[s,s,s]", "status", "size", "truncated"));
		}
		json_array_append_new(reqs, o);
	}
	body = json_dumps(json_pack("{s:o}", "requests", reqs), JSON_COMPACT);
	if (exchange("POST", "/v1/batch", body, id, &plain, &a, why, sizeof(why)) != 0) {
		failure(K_BATCH, id, "%s", why);
		goto out;
	}
	if (!answered(K_BATCH, id, &a))
		goto out;
	if (a.status == 503 && json_is_object(json_object_get(a.json, "error"))) {
		/* the whole batch refused: max_pending_bytes, say */
		if (judge(a.json, a.status, &w[0], why, sizeof(why)) != V_SHED)
			failure(K_BATCH, id, "%s", why);
		else
			count(K_BATCH, V_SHED);
		goto out;
	}
	results = json_object_get(a.json, "results");
	if (a.status != 200 || json_array_size(results) != n) {
		failure(K_BATCH, id, "HTTP %d with %zu results for %u items: %.300s", a.status,
			json_array_size(results), n, a.buf + a.head_len);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		enum verdict v = judge(json_array_get(results, i), 0, &w[i], why, sizeof(why));

		if (v == V_FAIL) {
			failure(K_BATCH, id, "item %u: %s", i, why);
			ok = false;
			break;
		}
		shed |= v == V_SHED;
	}
	if (ok)
		count(K_BATCH, shed ? V_SHED : V_OK);
out:
	answer_free(&a);
	free(body);
}

/* A client that goes away: before any answer (after 0-400 ms, sometimes
 * with RST), or part-way through reading a large document. */
static void run_hangup(uint64_t *s)
{
	struct client_mode m = {.hangup_after_ms = -1, .rst = rnd(s) & 1};
	unsigned id = new_id(K_HANGUP);
	struct want w;
	struct answer a;
	char why[1024];
	json_t *o;
	char *body;
	int rc;

	if (id == UINT32_MAX)
		return;
	switch (rnd(s) % 4) {
	case 0:
		o = make_fetch(K_SLOW, s, &w);
		m.hangup_after_ms = (int)rnd_between(s, 0, 400);
		break;
	case 1:
		o = make_fetch(K_ENDLESS, s, &w);
		m.hangup_after_ms = (int)rnd_between(s, 0, 50);
		break;
	case 2:
		o = make_fetch(K_FAST, s, &w);
		m.hangup_after_ms = 0;
		break;
	default:
		o = make_fetch(K_LARGE, s, &w);
		json_object_del(o, "fields");
		m.hangup_after_bytes = 64 * 1024;
		m.read_chunk = 16 * 1024;
		m.read_pause_ms = 5;
		break;
	}
	body = json_dumps(o, JSON_COMPACT);
	rc = exchange("POST", "/v1/fetch", body, id, &m, &a, why, sizeof(why));
	if (rc == 1) {
		records[id].outcome = O_HUNG_UP;
		pthread_mutex_lock(&stats_lock);
		counts[K_HANGUP].hung_up++;
		pthread_mutex_unlock(&stats_lock);
	} else if (rc == 0) {
		/* a short document ended before the client's limit: an answer */
		if (answered(K_HANGUP, id, &a)) {
			enum verdict v = judge(a.json, a.status, &w, why, sizeof(why));

			if (v == V_FAIL)
				failure(K_HANGUP, id, "%s", why);
			else
				count(K_HANGUP, v);
		}
	} else {
		failure(K_HANGUP, id, "%s", why);
	}
	answer_free(&a);
	json_decref(o);
	free(body);
}

static enum kind pick_kind(uint64_t *s)
{
	unsigned total = 0, r;

	for (int k = 0; k < K_COUNT; k++)
		total += kind_weights[k];
	r = (unsigned)(rnd(s) % total);
	for (int k = 0; k < K_COUNT; k++) {
		if (r < kind_weights[k])
			return (enum kind)k;
		r -= kind_weights[k];
	}
	return K_FAST;
}

static void *client_main(void *arg)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uintptr_t)arg + 1;

	while (!atomic_load(&stop_traffic)) {
		enum kind k = pick_kind(&s);

		if (k == K_BATCH)
			run_batch(&s);
		else if (k == K_HANGUP)
			run_hangup(&s);
		else
			run_fetch(k, &s);
		if (atomic_load(&next_id) >= MAX_RECORDS)
			break;
	}
	return NULL;
}

/* ---- the config, reloads and the monitor ---- */

static const unsigned start_threads = 8;
static const unsigned hup_threads[] = {4, 12, 2, 8, 6};

static char *config_text(unsigned threads, bool extra_deny)
{
	return str_printf("max_pending_bytes = %uM\n"
			  "max_batch = 16\n"
			  "[pool]\nthreads = %u\nqueue_limit = 64\n"
			  "[fetch]\nmax_response_bytes = 4M\ntimeout = 20s\n"
			  "[security]\n%s"
			  "[log]\naccess_log = true\n",
			  PENDING_MB, threads, extra_deny ? "deny = 192.0.2.77/32\n" : "");
}

/* Rewrite the config with threads and send SIGHUP; true when /v1/stats
 * shows the new size within 10 s. */
static bool reload_threads(struct fetchd *f, unsigned threads, bool extra_deny)
{
	char *conf = config_text(threads, extra_deny);
	uint64_t end = now_ms() + 10000;

	fetchd_write_config(f, conf);
	free(conf);
	if (fetchd_signal(f, SIGHUP) != 0)
		return false;
	while (now_ms() < end) {
		if (fetchd_stat(f->port, "pools.default.threads") == (long)threads)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* Workers keep a keep-alive connection to the upstream each, by design,
 * and libcurl (7.88) keeps a wake-up socketpair in every easy handle that
 * has run a transfer. To compare fds at start and end, bring fetchd to the
 * same state both times: shrink to one worker (the others close their
 * handles as they exit), change the destination rules so that the last one
 * replaces its handle on its next fetch, give it a fetch that pools nothing
 * (a closed port), then restore the start config. Afterwards exactly one
 * worker holds a used handle with nothing pooled, the others fresh ones. */
static void release_pooled(struct fetchd *f)
{
	int closed = closed_port();
	char *req = str_printf("{\"url\": \"http://127.0.0.1:%d/\"}", closed);
	struct http_resp r;

	ck_assert_msg(reload_threads(f, 1, true), "reload to 1 thread not seen");
	ck_assert(http_post_json(f->port, "/v1/fetch", req, &r) == 0);
	expect_error(&r, 502, "connect_failed");
	http_resp_free(&r);
	free(req);
	ck_assert_msg(reload_threads(f, start_threads, false), "reload to %u threads not seen",
		      start_threads);
}

static unsigned long n_reloads;
static atomic_bool reload_failed;

static void *hup_main(void *arg)
{
	struct fetchd *f = arg;
	uint64_t next = now_ms() + HUP_EVERY_MS;
	size_t i = 0;

	while (!atomic_load(&stop_traffic)) {
		unsigned threads;

		if (now_ms() < next) {
			sleep_ms(50);
			continue;
		}
		next += HUP_EVERY_MS;
		threads = hup_threads[i++ % (sizeof(hup_threads) / sizeof(hup_threads[0]))];
		if (!reload_threads(f, threads, false)) {
			fprintf(stderr, "soak: reload to %u threads not seen in /v1/stats\n",
				threads);
			atomic_store(&reload_failed, true);
			break;
		}
		n_reloads++;
	}
	return NULL;
}

static struct {
	long rss_start_kb, rss_peak_kb, fds_peak, threads_peak;
	unsigned long samples;
} mon;
static atomic_bool stop_monitor;

static void *monitor_main(void *arg)
{
	uint64_t start = now_ms(), next_line = start + 10000;

	(void)arg;
	while (!atomic_load(&stop_monitor)) {
		long rss = proc_rss_kb(fetchd_pid), fds = proc_fds(fetchd_pid, NULL, 0);
		long th = proc_threads(fetchd_pid);

		if (rss > mon.rss_peak_kb)
			mon.rss_peak_kb = rss;
		if (fds > mon.fds_peak)
			mon.fds_peak = fds;
		if (th > mon.threads_peak)
			mon.threads_peak = th;
		mon.samples++;
		if (now_ms() >= next_line) {
			printf("soak: t=%3us rss=%ld kB fds=%ld threads=%ld requests=%u\n",
			       (unsigned)((now_ms() - start) / 1000), rss, fds, th,
			       atomic_load(&next_id));
			fflush(stdout);
			next_line += 10000;
		}
		sleep_ms(50);
	}
	return NULL;
}

/* ---- fetchd's access log ---- */

/* Count access lines per soak id; check them against the records. Returns
 * the number of mismatches, with the first in why. */
static unsigned long check_access_log(const char *log, unsigned n_ids, char *why, size_t whylen)
{
	uint16_t *seen = calloc(n_ids ? n_ids : 1, sizeof(*seen));
	int16_t *status = calloc(n_ids ? n_ids : 1, sizeof(*status));
	unsigned long bad = 0;
	const char *p = log;

	ck_assert_msg(seen != NULL && status != NULL, "out of memory");
	why[0] = '\0';
	while ((p = strstr(p, "access id=soak-")) != NULL) {
		char *end;
		unsigned long id = strtoul(p + 15, &end, 10);
		const char *eol = strchr(p, '\n'), *st = strstr(p, " status=");

		p += 15;
		if (id >= n_ids || st == NULL || (eol != NULL && st > eol))
			continue;
		if (seen[id] < UINT16_MAX)
			seen[id]++;
		status[id] = (int16_t)strtol(st + 8, NULL, 10);
	}
	for (unsigned i = 0; i < n_ids; i++) {
		const struct record *r = &records[i];
		bool ok = r->outcome == O_ANSWERED  ? seen[i] == 1 && status[i] == r->status
			  : r->outcome == O_HUNG_UP ? seen[i] <= 1
						    : true; /* failed already */

		if (!ok && bad++ == 0)
			snprintf(why, whylen,
				 "soak-%u (%s, %s, status %d): %u access lines, last status %d", i,
				 kind_names[r->kind],
				 r->outcome == O_ANSWERED ? "answered" : "hung up", r->status,
				 seen[i], status[i]);
	}
	free(seen);
	free(status);
	return bad;
}

/* ---- the test ---- */

START_TEST(test_soak_every_request_answered_once_and_resources_return)
{
	struct fetchd f;
	struct fetchd_opts o = {.allow_loopback = true, .keep_config = true};
	pthread_t clients[256], hup, monitor;
	long fds_start, threads_start, fds_end = -1, threads_end = -1, rss_idle;
	long limit_kb = (long)(PENDING_MB + allowance_mb) * 1024;
	char *conf = config_text(start_threads, false), *log;
	char why[1024], fd_list[8192];
	unsigned n_ids;
	uint64_t end;
	struct http_resp r;

	records = calloc(MAX_RECORDS, sizeof(*records));
	ck_assert_msg(records != NULL, "out of memory");
	upstream_start(&up);
	upstream_port = up.port;
	o.extra_config = conf;
	fetchd_start(&f, &o);
	free(conf);
	fetchd_port = f.port;
	fetchd_pid = f.pid;

	/* the start: fetchd up, answering, nothing in flight, and in the
	 * state the end is brought to */
	get_ok(f.port, "/healthz", &r);
	http_resp_free(&r);
	release_pooled(&f);
	sleep_ms(300);
	fds_start = proc_fds(f.pid, fd_list, sizeof(fd_list));
	threads_start = proc_threads(f.pid);
	mon.rss_start_kb = proc_rss_kb(f.pid);
	ck_assert_msg(fds_start > 0 && threads_start > 0 && mon.rss_start_kb > 0,
		      "cannot read /proc/%d", (int)f.pid);
	printf("soak: %u s, %u clients, seed %lu; fetchd pid %d: rss %ld kB, %ld fds, %ld threads "
	       "at start; RSS limit %ld kB (max_pending_bytes %u MiB + allowance %u MiB)\n",
	       soak_seconds, n_clients, seed, (int)f.pid, mon.rss_start_kb, fds_start,
	       threads_start, limit_kb, PENDING_MB, allowance_mb);
	fflush(stdout);

	ck_assert(pthread_create(&monitor, NULL, monitor_main, NULL) == 0);
	ck_assert(pthread_create(&hup, NULL, hup_main, &f) == 0);
	for (unsigned i = 0; i < n_clients; i++)
		ck_assert(pthread_create(&clients[i], NULL, client_main, (void *)(uintptr_t)i) ==
			  0);
	end = now_ms() + (uint64_t)soak_seconds * 1000;
	while (now_ms() < end && !atomic_load(&reload_failed))
		sleep_ms(100);
	atomic_store(&stop_traffic, true);
	/* each client finishes its exchange, bounded by EXCHANGE_MS */
	for (unsigned i = 0; i < n_clients; i++)
		pthread_join(clients[i], NULL);
	pthread_join(hup, NULL);
	n_ids = atomic_load(&next_id);
	if (n_ids > MAX_RECORDS)
		n_ids = MAX_RECORDS;
	ck_assert_msg(!atomic_load(&reload_failed), "a SIGHUP resize did not take effect");

	/* drained: nothing busy or queued */
	end = now_ms() + SETTLE_WAIT_MS;
	while ((pool_stat_at(f.port, "busy") != 0 || pool_stat_at(f.port, "queued") != 0) &&
	       now_ms() < end)
		sleep_ms(50);
	ck_assert_msg(pool_stat_at(f.port, "busy") == 0 && pool_stat_at(f.port, "queued") == 0,
		      "/v1/stats after the traffic: busy %ld, queued %ld",
		      pool_stat_at(f.port, "busy"), pool_stat_at(f.port, "queued"));

	release_pooled(&f);
	end = now_ms() + SETTLE_WAIT_MS;
	while (now_ms() < end) {
		fds_end = proc_fds(f.pid, NULL, 0);
		threads_end = proc_threads(f.pid);
		if (fds_end == fds_start && threads_end == threads_start)
			break;
		sleep_ms(100);
	}
	sleep_ms(2000);
	rss_idle = proc_rss_kb(f.pid);
	atomic_store(&stop_monitor, true);
	pthread_join(monitor, NULL);

	printf("soak: %u requests, %lu reloads; rss kB: start %ld, peak %ld, idle %ld; "
	       "fds: start %ld, peak %ld, end %ld; threads: start %ld, peak %ld, end %ld\n",
	       n_ids, n_reloads, mon.rss_start_kb, mon.rss_peak_kb, rss_idle, fds_start,
	       mon.fds_peak, fds_end, threads_start, mon.threads_peak, threads_end);
	printf("soak: %-12s %8s %8s %8s %8s %8s\n", "kind", "sent", "ok", "shed", "hung-up",
	       "failed");
	for (int k = 0; k < K_COUNT; k++)
		printf("soak: %-12s %8lu %8lu %8lu %8lu %8lu\n", kind_names[k], counts[k].sent,
		       counts[k].ok, counts[k].shed, counts[k].hung_up, counts[k].failed);
	fflush(stdout);

	ck_assert_msg(n_failures == 0, "%lu requests without their answer; first: %s", n_failures,
		      first_failure);
	for (int k = 0; k < K_COUNT; k++)
		ck_assert_msg(counts[k].ok + counts[k].hung_up > 0,
			      "no %s request got its expected answer (%lu sent, %lu shed)",
			      kind_names[k], counts[k].sent, counts[k].shed);
	log = fetchd_log(&f);
	{
		unsigned long bad = check_access_log(log, n_ids, why, sizeof(why));

		ck_assert_msg(bad == 0, "%lu requests not logged exactly once; first: %s", bad,
			      why);
	}
	free(log);
	ck_assert_msg(mon.rss_peak_kb <= limit_kb,
		      "fetchd's RSS reached %ld kB, over max_pending_bytes (%u MiB) + allowance "
		      "(%u MiB) = %ld kB",
		      mon.rss_peak_kb, PENDING_MB, allowance_mb, limit_kb);
	if (fds_end != fds_start)
		proc_fds(f.pid, fd_list + strlen(fd_list), sizeof(fd_list) - strlen(fd_list));
	ck_assert_msg(
		fds_end == fds_start,
		"fetchd has %ld open fds after the traffic, %ld at start (start, then now):\n%s",
		fds_end, fds_start, fd_list);
	ck_assert_msg(threads_end == threads_start,
		      "fetchd has %ld threads after the traffic, %ld at start", threads_end,
		      threads_start);
	fetchd_stop(&f);
	upstream_stop(&up);
	free(records);
}
END_TEST

static unsigned arg_number(const char *s, const char *what, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > max) {
		fprintf(stderr, "soak: bad %s \"%s\"\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");

	seed = (unsigned long)time(NULL);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			n_clients = arg_number(argv[++i], "--clients", 256);
		else if (strcmp(argv[i], "--rss-allowance-mb") == 0 && i + 1 < argc)
			allowance_mb = arg_number(argv[++i], "--rss-allowance-mb", 1u << 20);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = arg_number(argv[++i], "--seed", UINT32_MAX);
		else if (argv[i][0] != '-')
			soak_seconds = arg_number(argv[i], "SECONDS", 86400);
		else {
			fprintf(stderr,
				"usage: soak [SECONDS] [--clients N] [--rss-allowance-mb N] "
				"[--seed N]\n");
			return 2;
		}
	}
	if (n_clients == 0)
		n_clients = 1;
	harness_init();
	/* the traffic, the drain (bounded by EXCHANGE_MS and the settle
	 * waits) and the start and stop of both processes */
	tcase_set_timeout(tc, soak_seconds + EXCHANGE_MS / 1000 + 120);
	tcase_add_test(tc, test_soak_every_request_answered_once_and_resources_return);
	suite_add_tcase(s, tc);
	return run_suite(s, CK_NORMAL);
}
