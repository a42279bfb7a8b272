/* One blocking transfer per task, on a worker thread. Redirects are
 * followed here, hop by hop, so fetchd owns the rules (SPEC section 2,
 * "Redirects"); curl's FOLLOWLOCATION stays off. */
#include "fetch.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "curlshare.h"
#include "executor.h"
#include "http_status.h"
#include "log.h"
#include "materialize.h"
#include "netguard.h"
#include "redirect.h"
#include "request.h"
#include "tlsinfo.h"
#include "url.h"

/* The state of one fetch across its hops. */
struct transfer {
	CURL *curl; /* the worker's handle */
	struct fetch_task *task;
	const struct fetch_request *req;

	/* body of the current hop */
	unsigned char *body;
	size_t body_len, body_cap;
	size_t body_charged;   /* of body_cap, charged to the task's budget */
	size_t header_charged; /* header bytes of every hop, charged */
	bool truncated;
	bool too_big;
	bool over_budget; /* the memory budget refused a charge */
	bool no_memory;	  /* an allocation in a callback failed */

	/* hops; the last one is being received */
	struct response_hop *hops;
	size_t n_hops, cap_hops;
	size_t header_cap; /* capacity of hops[n_hops - 1].headers */
	size_t header_bytes;
	bool headers_too_big;

	/* set by the connect-time guard */
	bool denied;
	char denied_addr[INET6_ADDRSTRLEN + 8];

	/* the TLS state of the current hop's connection, taken in prereq_cb
	 * when the document wants the tls field and the hop is https */
	bool want_tls;
	struct tls_capture tls;
};

struct fetch_worker {
	unsigned id;
	CURL *curl;
	unsigned generation;	 /* of connection_generation when curl was made */
	struct curlshare *share; /* of that generation, a reference held */

	/* The transfer and error buffer live here, so the callbacks' data
	 * pointers are set once per handle, not per hop. */
	struct transfer tr;
	char errbuf[CURL_ERROR_SIZE];
	/* A body buffer kept for the next fetch (small ones only). */
	unsigned char *spare_body;
	size_t spare_cap;
	/* "Expect:", fetchd's Via line and "Content-Type:": the header list
	 * of a request without headers, body or a Via to pass on. */
	struct curl_slist *plain_headers;

	/* What the handle holds since its last curl_easy_reset: plain is true
	 * while every hop set up on it was a GET without body, decompressing;
	 * then only the options that differ between such hops are set again.
	 * The configuration's strings it was set up with are kept to notice a
	 * reload. */
	bool plain;
	bool user_agent_on;
	const char *protocols;
	enum request_http_version http_version;
	char *user_agent, *proxy;
	/* the configuration's PEM blobs the handle points at (CURL_BLOB_NOCOPY:
	 * the task's snapshot keeps them alive while a transfer runs; between
	 * tasks the handle is set up again before any transfer when they
	 * differ from the next task's) */
	struct config_blob ca_pem, client_cert_pem, client_key_pem;
};

/* Bumped when the destination or TLS rules change: each worker then
 * replaces its easy handle, closing the connections it pooled under the
 * old rules, and attaches the share of the new generation. Bumped after
 * the current share is replaced (curlshare_replace), so a worker that sees the new number takes
 * the new share. */
static atomic_uint connection_generation;

void fetch_drop_connections(void)
{
	if (curlshare_replace() != 0)
		log_warn("out of memory for a new TLS session cache: keeping the old one");
	atomic_fetch_add(&connection_generation, 1);
}

/* "Via: 1.1 fetchd-0123456789abcdef", fetchd's own Via field line; the
 * name starts at VIA_NAME. Written by fetch_global_init before any worker
 * starts, then only read. */
static char via_self[sizeof("Via: 1.1 fetchd-") + 16];
#define VIA_VALUE (sizeof("Via: ") - 1)	   /* "1.1 fetchd-..." */
#define VIA_NAME (sizeof("Via: 1.1 ") - 1) /* "fetchd-..." */

const char *fetch_instance(void)
{
	return via_self[0] != '\0' ? via_self + VIA_NAME : "";
}

bool fetch_via_names_us(const char *via)
{
	const char *name = fetch_instance();
	size_t len = strlen(name);

	if (len == 0 || via == NULL)
		return false;
	/* received-by comes after the protocol and whitespace (or, from a
	 * sloppy sender, a comma or nothing), and before whitespace (a
	 * comment), the comma of the next entry or the end */
	for (const char *p = via; (p = strstr(p, name)) != NULL; p += len) {
		char before = p > via ? p[-1] : ' ', after = p[len];

		if ((before == ' ' || before == '\t' || before == ',') &&
		    (after == '\0' || after == ' ' || after == '\t' || after == ','))
			return true;
	}
	return false;
}

int fetch_global_init(void)
{
	uint64_t name;

	/* blocks only until the kernel's pool is first seeded, at boot */
	if (getrandom(&name, sizeof(name), 0) != (ssize_t)sizeof(name))
		return -1;
	snprintf(via_self, sizeof(via_self), "Via: 1.1 fetchd-%016llx", (unsigned long long)name);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	return curlshare_replace();
}

void fetch_global_cleanup(void)
{
	curlshare_retire();
	curl_global_cleanup();
}

static CURL *handle_new(void)
{
	CURL *c = curl_easy_init();

	if (c == NULL)
		return NULL;
	/* Start the cookie engine once, for the handle's life: a cookie line
	 * starts it and the engine outlives curl_easy_reset. CURLOPT_COOKIEFILE
	 * would do too, but libcurl 7.88.1 leaks its list on every reset
	 * (curl/curl#10694, fixed in 8.0 by #10709). */
	curl_easy_setopt(c, CURLOPT_COOKIELIST,
			 "fetchd.invalid\tFALSE\t/\tFALSE\t0\tstart\tengine");
	curl_easy_setopt(c, CURLOPT_COOKIELIST, "ALL");
	return c;
}

struct fetch_worker *fetch_worker_new(unsigned worker_id)
{
	struct fetch_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->id = worker_id;
	w->generation = atomic_load(&connection_generation);
	w->share = curlshare_get();
	w->curl = handle_new();
	if (w->curl == NULL || w->share == NULL) {
		curl_easy_cleanup(w->curl);
		curlshare_put(w->share);
		free(w);
		return NULL;
	}
	/* NULL is fine: every hop then builds its own list */
	w->plain_headers = curl_slist_append(NULL, "Expect:");
	if (w->plain_headers != NULL) {
		struct curl_slist *next = curl_slist_append(w->plain_headers, via_self);

		if (next != NULL)
			next = curl_slist_append(next, "Content-Type:");
		if (next == NULL) {
			curl_slist_free_all(w->plain_headers);
			w->plain_headers = NULL;
		}
	}
	return w;
}

void fetch_worker_free(struct fetch_worker *w)
{
	if (w == NULL)
		return;
	curl_easy_cleanup(w->curl);
	curlshare_put(w->share); /* after the handle that used it */
	curl_slist_free_all(w->plain_headers);
	free(w->spare_body);
	free(w->user_agent);
	free(w->proxy);
	free(w);
}

#define MAX_HEADER_BYTES (256 * 1024)
#define MAX_HOPS_HEADERS 1000

static void hop_clear(struct response_hop *h)
{
	free(h->url);
	free(h->reason);
	free(h->http_version);
	for (size_t i = 0; i < h->n_headers; i++) {
		free(h->headers[i].name);
		free(h->headers[i].value);
	}
	free(h->headers);
	memset(h, 0, sizeof(*h));
}

static struct response_hop *current_hop(struct transfer *tr)
{
	return tr->n_hops ? &tr->hops[tr->n_hops - 1] : NULL;
}

/* Start recording a new hop. Returns -1 on out of memory. */
static int hop_begin(struct transfer *tr)
{
	if (tr->n_hops == tr->cap_hops) {
		size_t cap = tr->cap_hops ? tr->cap_hops * 2 : 4;
		struct response_hop *h = realloc(tr->hops, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		tr->hops = h;
		tr->cap_hops = cap;
	}
	memset(&tr->hops[tr->n_hops], 0, sizeof(tr->hops[0]));
	tr->n_hops++;
	tr->header_cap = 0;
	tr->header_bytes = 0;
	return 0;
}

/* "HTTP/1.1 200 OK": a new response begins (interim 1xx responses and
 * proxy CONNECT answers replace each other; the last one stays). */
static int parse_status_line(struct transfer *tr, const char *line, size_t len)
{
	struct response_hop *h = current_hop(tr);
	const char *sp, *end = line + len;
	char *ver;
	long status = 0;

	hop_clear(h);
	tr->header_cap = 0;
	sp = memchr(line, ' ', len);
	if (sp == NULL)
		return 0;
	ver = strndup(line + 5, (size_t)(sp - line) - 5);
	h->http_version = ver;
	for (sp++; sp < end && *sp >= '0' && *sp <= '9'; sp++)
		status = status * 10 + (*sp - '0');
	h->status = status;
	while (sp < end && *sp == ' ')
		sp++;
	h->reason = sp < end ? strndup(sp, (size_t)(end - sp)) : strdup(http_reason_phrase(status));
	return ver != NULL && h->reason != NULL ? 0 : -1;
}

/* A callback's allocation failed: abort the transfer (curl then answers
 * CURLE_WRITE_ERROR), and fail_transfer answers ERR_NO_MEMORY. */
static size_t no_memory(struct transfer *tr)
{
	tr->no_memory = true;
	return 0;
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *tr = arg;
	struct response_hop *h = current_hop(tr);
	size_t len = size * n, total = len;
	struct header_field *f;
	const char *colon;

	tr->header_bytes += len;
	if (tr->header_bytes > MAX_HEADER_BYTES) {
		tr->headers_too_big = true;
		return 0;
	}
	/* the line's bytes, about what its copies below will take */
	if (!budget_hold_charge(&tr->task->hold, len)) {
		tr->over_budget = true;
		return 0;
	}
	tr->header_charged += len;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len == 0)
		return total;
	if (len > 5 && memcmp(data, "HTTP/", 5) == 0)
		return parse_status_line(tr, data, len) == 0 ? total : no_memory(tr);
	if ((data[0] == ' ' || data[0] == '\t') && h->n_headers > 0) {
		/* obs-fold (RFC 9112 5.2): a continuation of the previous value */
		f = &h->headers[h->n_headers - 1];
		size_t old = strlen(f->value);
		char *v = realloc(f->value, old + len + 1);

		if (v == NULL)
			return no_memory(tr);
		v[old] = ' ';
		size_t skip = 0;
		while (skip < len && (data[skip] == ' ' || data[skip] == '\t'))
			skip++;
		memcpy(v + old + 1, data + skip, len - skip);
		v[old + 1 + len - skip] = '\0';
		f->value = v;
		return total;
	}
	colon = memchr(data, ':', len);
	if (colon == NULL || h->n_headers >= MAX_HOPS_HEADERS)
		return total;
	if (h->n_headers == tr->header_cap) {
		size_t cap = tr->header_cap ? tr->header_cap * 2 : 16;
		f = realloc(h->headers, cap * sizeof(*f));
		if (f == NULL)
			return no_memory(tr);
		h->headers = f;
		tr->header_cap = cap;
	}
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	f = &h->headers[h->n_headers];
	f->name = strndup(data, (size_t)(colon - data));
	f->value = strndup(v, (size_t)(end - v));
	if (f->name == NULL || f->value == NULL) {
		free(f->name);
		free(f->value);
		return no_memory(tr);
	}
	h->n_headers++;
	return total;
}

/* Body bytes, already decoded by curl when decompress is on: the cap
 * counts decoded bytes, so a gzip bomb stops at the limit. */
static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *tr = arg;
	size_t len = size * n, room = tr->req->max_bytes - tr->body_len;

	tr->task->bytes_in += len;
	if (len > room) {
		if (!tr->req->truncate) {
			tr->too_big = true;
			return 0;
		}
		tr->truncated = true;
		len = room;
	}
	size_t cap = tr->body_cap;
	if (tr->body_len + len > cap) {
		cap = cap ? cap : 16384;
		while (cap < tr->body_len + len)
			cap *= 2;
		if (cap > tr->req->max_bytes)
			cap = tr->req->max_bytes;
	}
	/* charged before it is allocated (a spare buffer from the worker's
	 * last fetch is charged at its first use) */
	if (cap > tr->body_charged) {
		if (!budget_hold_charge(&tr->task->hold, cap - tr->body_charged)) {
			tr->over_budget = true;
			return 0;
		}
		tr->body_charged = cap;
	}
	/* the buffer is charged in full before it grows */
	assert(cap <= tr->body_charged);
	if (cap > tr->body_cap) {
		unsigned char *b = realloc(tr->body, cap ? cap : 1);
		if (b == NULL)
			return no_memory(tr);
		tr->body = b;
		tr->body_cap = cap;
	}
	memcpy(tr->body + tr->body_len, data, len);
	tr->body_len += len;
	return tr->truncated ? 0 : size * n;
}

static int progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct transfer *tr = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	/* the deadline is curl's own CURLOPT_TIMEOUT_MS (the time left at
	 * each hop), so a timeout is always curl_code 28, never 42 */
	return atomic_load(&tr->task->cancel) ? 1 : 0;
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", ip, port);
	} else {
		snprintf(buf, len, "family %d", sa->sa_family);
	}
}

/* The destination guard at connect time: it sees the address curl is about
 * to connect to, after DNS, so rebinding and odd literal forms are judged
 * by what they resolve to. */
static curl_socket_t opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct transfer *tr = arg;

	(void)purpose;
	if (!netguard_check_addr(tr->task->rules, &a->addr)) {
		tr->denied = true;
		format_addr(&a->addr, tr->denied_addr, sizeof(tr->denied_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Every request, also on a reused connection (the open-socket veto only
 * sees new ones). */
static int prereq_cb(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	struct transfer *tr = arg;
	struct sockaddr_storage ss;

	(void)conn_local_ip;
	(void)conn_local_port;
	if (tr->want_tls) {
		struct curl_tlssessioninfo *ti = NULL;

		/* the connection is the transfer's only until curl_easy_perform
		 * returns: take what the tls field needs now */
		if (curl_easy_getinfo(tr->curl, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK &&
		    ti != NULL && ti->backend == CURLSSLBACKEND_OPENSSL)
			tlsinfo_capture(&tr->tls, ti->internals);
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, conn_primary_ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)conn_primary_port);
	} else if (inet_pton(AF_INET6, conn_primary_ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) ==
		   1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)conn_primary_port);
	} else {
		/* through a proxy or a unix socket: the proxy is configured by the
		 * operator, and its own address was judged at connect time */
		return CURL_PREREQFUNC_OK;
	}
	if (!netguard_check_addr(tr->task->rules, (struct sockaddr *)&ss)) {
		tr->denied = true;
		format_addr((struct sockaddr *)&ss, tr->denied_addr, sizeof(tr->denied_addr));
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* This attempt has its outcome: record it after the earlier ones and ask
 * the policy whether the loop should retry (retry.h). Once per attempt:
 * a document that fails after its status was known keeps that record. */
static void attempt_close(struct fetch_task *t, int status, enum fetchd_err err, int cc,
			  int64_t retry_after)
{
	uint64_t now = clock_now_ns();
	struct retry_attempt *a;

	if (t->attempt_closed || t->n_attempts > RETRY_MAX)
		return;
	t->attempt_closed = true;
	t->retry_after_ms = retry_after;
	a = &t->attempts[t->n_attempts++];
	*a = (struct retry_attempt){
		.status = status,
		.err = err,
		.start_ms = (t->attempt_start_ns - t->origin_ns) / 1000000,
		.duration_ms = (now - t->attempt_start_ns) / 1000000,
	};
	t->retry = retry_decide(&t->req->retry, t->req->method, t->n_attempts,
				&(struct retry_outcome){
					.status = status,
					.err = err,
					.curl_code = cc,
					.retry_after_ms = retry_after,
					/* the next attempt queues too: the
					 * wait for this one's worker counts */
					.duration_ms = a->duration_ms + t->queued_ns / 1000000,
				},
				now < t->deadline_ns ? (t->deadline_ns - now) / 1000000 : 0,
				&t->retry_delay_ms, &t->retry_reason);
}

/* The attempts so far into an error document's extra members. */
static void attempts_extra(const struct fetch_task *t, json_t *extra)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < t->n_attempts; i++) {
		const struct retry_attempt *a = &t->attempts[i];

		json_array_append_new(list, json_pack("{s:o, s:I, s:I}", "outcome",
						      a->err == ERR_NONE
							      ? json_integer(a->status)
							      : json_string(err_code_name(a->err)),
						      "start_ms", (json_int_t)a->start_ms,
						      "duration_ms", (json_int_t)a->duration_ms));
	}
	json_object_set_new(extra, "attempts", list);
	if (t->retry == RETRY_CUT_SHORT)
		json_object_set_new(extra, "retry_cut_short", json_true());
}

/* Set the error document on the task. */
static void fail(struct fetch_task *t, enum fetchd_err err, const char *message, CURLcode cc,
		 const char *curl_error)
{
	json_t *extra = NULL;

	if (cc != CURLE_OK) {
		extra = json_pack("{s:i, s:s}", "curl_code", (int)cc, "curl_error",
				  curl_error && *curl_error ? curl_error : curl_easy_strerror(cc));
	}
	attempt_close(t, 0, err, (int)cc, -1);
	if (t->req->retry.attempts > 0) {
		if (extra == NULL)
			extra = json_object();
		if (extra != NULL)
			attempts_extra(t, extra);
	}
	if (t->doc != NULL) {
		free(t->doc);
		budget_hold_release(&t->hold, t->doc_len);
	}
	t->err = err;
	t->http_status = err_http_status(err);
	t->doc = err_document(err, message, extra, &t->doc_len);
	/* a few hundred bytes, charged even past the limit: the answer that
	 * says why must always be deliverable */
	budget_hold_force(&t->hold, t->doc_len);
	json_decref(extra);
}

/* The budget refused a charge: 503 overloaded when the budget is busy
 * with others' bytes (retrying later can work), 502 response_too_large
 * when this fetch alone needs more than the whole budget. */
static void fail_over_budget(struct fetch_task *t)
{
	char message[256];

	if (t->hold.never_fits) {
		snprintf(message, sizeof(message),
			 "the response needs more memory than [server] max_pending_bytes "
			 "(%llu bytes) allows",
			 (unsigned long long)budget_limit(t->hold.budget));
		fail(t, ERR_RESPONSE_TOO_LARGE, message, CURLE_OK, NULL);
	} else {
		fail(t, ERR_OVERLOADED,
		     "fetchd's memory budget ([server] max_pending_bytes) is full; retry later",
		     CURLE_OK, NULL);
	}
}

static void fail_no_memory(struct fetch_task *t)
{
	fail(t, ERR_NO_MEMORY, ERR_NO_MEMORY_MESSAGE, CURLE_OK, NULL);
}

/* Should building the document stop? Its client left, or its deadline
 * passed. */
static bool fetch_should_stop(void *arg)
{
	struct fetch_task *t = arg;

	return atomic_load(&t->cancel) || clock_now_ns() >= t->deadline_ns;
}

enum fetchd_err fetch_map_curl_error(int curl_code)
{
	switch ((CURLcode)curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return ERR_DNS_FAILURE;
	case CURLE_COULDNT_CONNECT: return ERR_CONNECT_FAILED;
	case CURLE_OPERATION_TIMEDOUT: return ERR_UPSTREAM_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_CLIENTCERT: return ERR_TLS_ERROR;
	case CURLE_FILESIZE_EXCEEDED: return ERR_RESPONSE_TOO_LARGE;
	default: return ERR_UPSTREAM_ERROR;
	}
}

static const char *protocols_str(const struct fetchd_config *cfg)
{
	bool http = cfg->schemes & CONFIG_SCHEME_HTTP, https = cfg->schemes & CONFIG_SCHEME_HTTPS;

	return http && https ? "http,https" : https ? "https" : "http";
}

/* Append s and ", " at line + *off. */
static void via_append(char *line, size_t *off, const char *s)
{
	size_t len = strlen(s);

	memcpy(line + *off, s, len);
	memcpy(line + *off + len, ", ", 2);
	*off += len + 2;
}

/* The one Via field line of a hop: the client's own Via headers (in
 * order), the Via of its request to fetchd (via_in, may be NULL), then
 * fetchd's entry, as each recipient appends its own (RFC 9110 section
 * 7.6.3). malloc'd, or NULL when out of memory. */
static char *via_build(const struct fetch_request *req, const char *via_in)
{
	size_t len = sizeof(via_self), off = VIA_VALUE;
	char *line;

	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, "Via") == 0)
			len += strlen(req->headers[i].value) + 2;
	if (via_in != NULL)
		len += strlen(via_in) + 2;
	line = malloc(len);
	if (line == NULL)
		return NULL;
	memcpy(line, via_self, off);
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, "Via") == 0 && req->headers[i].value[0])
			via_append(line, &off, req->headers[i].value);
	if (via_in != NULL && via_in[0])
		via_append(line, &off, via_in);
	memcpy(line + off, via_self + VIA_VALUE, sizeof(via_self) - VIA_VALUE);
	return line;
}

/* The request headers of one hop. Credentials are left out when the hop
 * goes to another origin than the client's URL, and the client's
 * Content-Type when the hop has no body. The client's Via headers are
 * folded into fetchd's (via_build). Returns NULL (and an empty list is
 * impossible: "Expect:" is always there) on out of memory. */
static struct curl_slist *build_headers(const struct fetch_request *req, bool drop_credentials,
					bool with_body, const char *via_in, bool *has_user_agent)
{
	struct curl_slist *list = NULL, *next;
	bool has_content_type = false;
	char *line;

	*has_user_agent = false;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct header_field *h = &req->headers[i];

		if (drop_credentials && redirect_is_credential_header(h->name))
			continue;
		if (strcasecmp(h->name, "Via") == 0)
			continue;
		if (strcasecmp(h->name, "Content-Type") == 0) {
			if (!with_body)
				continue;
			has_content_type = true;
		}
		if (strcasecmp(h->name, "User-Agent") == 0)
			*has_user_agent = true;
		/* "Name;" is curl's way to send a header with an empty value */
		if (asprintf(&line, h->value[0] ? "%s: %s" : "%s;", h->name, h->value) < 0)
			goto oom;
		next = curl_slist_append(list, line);
		free(line);
		if (next == NULL)
			goto oom;
		list = next;
	}
	line = via_build(req, via_in);
	if (line == NULL)
		goto oom;
	next = curl_slist_append(list, line);
	free(line);
	if (next == NULL)
		goto oom;
	list = next;
	/* No 100-continue round trip; and curl adds a form Content-Type to
	 * bodies the client did not type, and to a POST, PUT or PATCH without
	 * one (CURLOPT_POSTFIELDS ""): remove it. A GET has none to remove. */
	next = curl_slist_append(list, "Expect:");
	if (next == NULL)
		goto oom;
	list = next;
	if (!has_content_type) {
		next = curl_slist_append(list, "Content-Type:");
		if (next == NULL)
			goto oom;
		list = next;
	}
	return list;
oom:
	curl_slist_free_all(list);
	return NULL;
}

/* The header list of one hop: for a request without headers, body or a
 * Via to pass on that is "Expect:", fetchd's Via and "Content-Type:",
 * which the worker keeps instead of building it for every hop. Give it
 * back with hop_headers_free. */
static struct curl_slist *hop_headers(struct fetch_worker *w, const struct fetch_request *req,
				      bool drop_credentials, bool with_body, const char *via_in,
				      bool *has_user_agent)
{
	if (req->n_headers == 0 && !with_body && via_in == NULL && w->plain_headers != NULL) {
		*has_user_agent = false;
		return w->plain_headers;
	}
	return build_headers(req, drop_credentials, with_body, via_in, has_user_agent);
}

static void hop_headers_free(struct fetch_worker *w, struct curl_slist *list)
{
	if (list != w->plain_headers)
		curl_slist_free_all(list);
}

static double ms(curl_off_t us)
{
	return us > 0 ? (double)us / 1000.0 : 0.0;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Replace *slot with a copy of value. Returns false on out of memory. */
static bool keep_string(char **slot, const char *value)
{
	char *copy = value != NULL ? strdup(value) : NULL;

	free(*slot);
	*slot = copy;
	return value == NULL || copy != NULL;
}

/* What every hop sets, plain ones too: the size cap, the deadlines, the
 * low-speed limit (an upstream that drips bytes frees its worker early; a
 * reload may change it) and the TLS checks.
 * CURLOPT_MAXFILESIZE refuses a body before reading it when its
 * Content-Length is over the cap (SPEC 2, Limits). The answer to HEAD has
 * no body whatever its Content-Length says (RFC 9110 section 9.3.2), so a
 * HEAD hop has no such cap: write_cb counts what actually arrives.
 * (libcurl itself skips the Content-Length of 1xx, 204 and 304 answers.) */
static void set_hop_limits(CURL *c, const struct fetch_request *req,
			   const struct fetchd_config *cfg, bool head, uint64_t remaining_ms)
{
	/* 0: no limit, libcurl's default */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)(req->truncate || head ? 0 : req->max_bytes));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)remaining_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(req->connect_timeout_ms < remaining_ms ? req->connect_timeout_ms
								       : remaining_ms));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)cfg->low_speed_limit);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 cfg->low_speed_limit > 0 ? (long)(cfg->low_speed_time_ms / 1000) : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, req->verify_tls ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, req->verify_tls ? 2L : 0L);
}

/* A blob the handle points at is the configuration's when it is the same
 * memory: the handle reads through the pointer (CURL_BLOB_NOCOPY), so the
 * same address and length set up again would change nothing. */
static bool same_blob(const struct config_blob *a, const struct config_blob *b)
{
	return a->data == b->data && a->len == b->len;
}

static long curl_http_version(enum request_http_version v)
{
	switch (v) {
	case REQUEST_HTTP_1_1: return CURL_HTTP_VERSION_1_1;
	case REQUEST_HTTP_2:
		/* over http:// an Upgrade: h2c request (curl 7.88), which a
		 * server that does not speak h2c ignores: HTTP/1.1 then */
		return CURL_HTTP_VERSION_2_0;
	case REQUEST_HTTP_AUTO:
	default: return CURL_HTTP_VERSION_2TLS;
	}
}

/* [fetch] ca_file, client_cert and client_key as the bytes config_check
 * read (on SIGHUP too), never the paths: a file replaced at the same path
 * counts from the next reload, and a fetch opens no file. ca_file is the
 * whole trust: the system's bundle and directory are left out
 * (CURLOPT_CAINFO_BLOB overrides CURLOPT_CAINFO; the directory is cleared
 * here). The blobs are not copied (CURL_BLOB_NOCOPY): the task's snapshot
 * keeps the configuration alive while the transfer runs. */
static void set_tls_files(CURL *c, const struct fetchd_config *cfg)
{
	if (cfg->ca_pem.data != NULL) {
		struct curl_blob ca = {cfg->ca_pem.data, cfg->ca_pem.len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	if (cfg->client_cert_pem.data != NULL && cfg->client_key_pem.data != NULL) {
		struct curl_blob cert = {cfg->client_cert_pem.data, cfg->client_cert_pem.len,
					 CURL_BLOB_NOCOPY};
		struct curl_blob key = {cfg->client_key_pem.data, cfg->client_key_pem.len,
					CURL_BLOB_NOCOPY};

		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

/* Configure the easy handle for one hop, starting from curl_easy_reset. */
static void setup_hop_full(struct fetch_worker *w, const char *url, const char *method,
			   bool with_body, struct curl_slist *headers, bool has_user_agent,
			   uint64_t remaining_ms)
{
	struct transfer *tr = &w->tr;
	const struct fetch_request *req = tr->req;
	const struct fetchd_config *cfg = tr->task->cfg;
	CURL *c = w->curl;

	curl_easy_reset(c);
	/* [fetch] max_idle_connections spread over the workers (config_check):
	 * the idle upstream sockets this handle keeps */
	if (cfg->idle_per_worker > 0)
		curl_easy_setopt(c, CURLOPT_MAXCONNECTS, (long)cfg->idle_per_worker);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SHARE, curlshare_handle(w->share));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols_str(cfg));
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (!has_user_agent && cfg->user_agent != NULL)
		curl_easy_setopt(c, CURLOPT_USERAGENT, cfg->user_agent);

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0 && !with_body) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (with_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
		    strcmp(method, "PATCH") == 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(with_body ? req->body_len : 0));
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, with_body ? req->body : "");
		}
	}

	if (req->decompress) {
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	} else {
		curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	}
	set_hop_limits(c, req, cfg, strcmp(method, "HEAD") == 0, remaining_ms);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, curl_http_version(req->http_version));
	set_tls_files(c, cfg);
	/* "" disables the environment's http_proxy as well */
	curl_easy_setopt(c, CURLOPT_PROXY, cfg->proxy != NULL ? cfg->proxy : "");

	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, tr);
	curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(c, CURLOPT_PREREQDATA, tr);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, tr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, tr);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, tr);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

	w->plain = strcmp(method, "GET") == 0 && !with_body && req->decompress;
	w->user_agent_on = !has_user_agent && cfg->user_agent != NULL;
	w->protocols = protocols_str(cfg);
	w->http_version = req->http_version;
	w->ca_pem = cfg->ca_pem;
	w->client_cert_pem = cfg->client_cert_pem;
	w->client_key_pem = cfg->client_key_pem;
	if (!keep_string(&w->user_agent, cfg->user_agent) || !keep_string(&w->proxy, cfg->proxy))
		w->plain = false;
}

/* Configure the easy handle for one hop. Most hops are a GET without body
 * that decompresses; when the handle's options came from such hops under
 * the same configuration strings, only what differs between them is set
 * again (curl_easy_reset and setting every option again was a tenth of a
 * small fetch). Anything else starts from curl_easy_reset. */
static void setup_hop(struct fetch_worker *w, const char *url, const char *method, bool with_body,
		      struct curl_slist *headers, bool has_user_agent, uint64_t remaining_ms)
{
	const struct fetch_request *req = w->tr.req;
	const struct fetchd_config *cfg = w->tr.task->cfg;
	bool want_user_agent = !has_user_agent && cfg->user_agent != NULL;
	CURL *c = w->curl;

	if (!w->plain || with_body || !req->decompress || strcmp(method, "GET") != 0 ||
	    w->protocols != protocols_str(cfg) || w->http_version != req->http_version ||
	    !same_string(w->user_agent, cfg->user_agent) || !same_string(w->proxy, cfg->proxy) ||
	    !same_blob(&w->ca_pem, &cfg->ca_pem) ||
	    !same_blob(&w->client_cert_pem, &cfg->client_cert_pem) ||
	    !same_blob(&w->client_key_pem, &cfg->client_key_pem)) {
		setup_hop_full(w, url, method, with_body, headers, has_user_agent, remaining_ms);
		return;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (want_user_agent != w->user_agent_on) {
		curl_easy_setopt(c, CURLOPT_USERAGENT, want_user_agent ? cfg->user_agent : NULL);
		w->user_agent_on = want_user_agent;
	}
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	set_hop_limits(c, req, cfg, false, remaining_ms);
}

/* Cookies the engine holds now, as Netscape-format lines. */
static char **collect_cookies(CURL *c, size_t *n)
{
	struct curl_slist *list = NULL, *it;
	char **lines = NULL;
	size_t count = 0;

	*n = 0;
	if (curl_easy_getinfo(c, CURLINFO_COOKIELIST, &list) != CURLE_OK || list == NULL)
		return NULL;
	for (it = list; it != NULL; it = it->next)
		count++;
	lines = calloc(count, sizeof(*lines));
	if (lines != NULL) {
		for (it = list; it != NULL; it = it->next)
			if ((lines[*n] = strdup(it->data)) != NULL)
				(*n)++;
	}
	curl_slist_free_all(list);
	return lines;
}

/* A body buffer up to this size is kept for the worker's next fetch. */
#define SPARE_BODY_MAX (64 * 1024)

static void transfer_free(struct fetch_worker *w, struct transfer *tr)
{
	/* what the transfer charged is held (with the document, if any) */
	assert(tr->task->hold.budget == NULL ||
	       tr->task->hold.held >= tr->body_charged + tr->header_charged);
	budget_hold_release(&tr->task->hold, tr->body_charged + tr->header_charged);
	for (size_t i = 0; i < tr->n_hops; i++)
		hop_clear(&tr->hops[i]);
	free(tr->hops);
	tlsinfo_release(&tr->tls);
	if (tr->body != NULL && tr->body_cap <= SPARE_BODY_MAX && w->spare_body == NULL) {
		w->spare_body = tr->body;
		w->spare_cap = tr->body_cap;
	} else {
		free(tr->body);
	}
	memset(tr, 0, sizeof(*tr));
}

/* An upstream answered: close the attempt with its status and
 * Retry-After, and give the document the attempts when it may retry. */
static void succeed_attempt(struct fetch_task *t, const struct response_hop *final,
			    struct fetch_response *resp)
{
	int64_t retry_after = -1;

	for (size_t i = 0; i < final->n_headers; i++)
		if (strcasecmp(final->headers[i].name, "Retry-After") == 0)
			retry_after = retry_after_ms(final->headers[i].value);
	attempt_close(t, (int) final->status, ERR_NONE, CURLE_OK, retry_after);
	if (t->req->retry.attempts > 0) {
		resp->attempts = t->attempts;
		resp->n_attempts = t->n_attempts;
		resp->retry_cut_short = t->retry == RETRY_CUT_SHORT;
	}
}

/* Finish a successful fetch: materialize the document on this thread. */
static void succeed(struct fetch_task *t, struct transfer *tr, CURL *c, unsigned worker,
		    struct response_timing *timing)
{
	struct fetch_response resp;
	struct tls_info tls;
	char *ip = NULL;
	long port = 0, new_connections = 0;
	char **cookies;
	size_t n_cookies;

	memset(&resp, 0, sizeof(resp));
	memset(&tls, 0, sizeof(tls));
	if (tr->tls.taken) {
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &new_connections);
		if (tlsinfo_describe(&tr->tls, new_connections > 0, &tls) != 0) {
			fail_no_memory(t);
			return;
		}
		resp.tls = &tls;
	}
	curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &ip);
	curl_easy_getinfo(c, CURLINFO_PRIMARY_PORT, &port);
	cookies = collect_cookies(c, &n_cookies);
	resp.hops = tr->hops;
	resp.n_hops = tr->n_hops;
	resp.body = tr->body;
	resp.body_len = tr->body_len;
	resp.truncated = tr->truncated;
	if (!t->req->decompress) {
		const struct response_hop *h = current_hop(tr);

		for (size_t i = 0; i < h->n_headers; i++)
			if (strcasecmp(h->headers[i].name, "Content-Encoding") == 0 &&
			    strcasecmp(h->headers[i].value, "identity") != 0)
				resp.still_encoded = true;
	}
	resp.cookies = cookies;
	resp.n_cookies = n_cookies;
	resp.timing = *timing;
	resp.remote_ip = ip;
	resp.remote_port = port;
	resp.worker = worker;
	succeed_attempt(t, current_hop(tr), &resp);

	struct materialize_limits limits = {
		.hold = &t->hold, .stop = fetch_should_stop, .stop_arg = t};
	switch (materialize_document_limited(&resp, t->req->fields, t->req->body_mode, &limits,
					     &t->doc, &t->doc_len)) {
	case MATERIALIZE_OK:
		t->err = ERR_NONE;
		t->http_status = 200;
		break;
	case MATERIALIZE_NO_MEMORY: fail_no_memory(t); break;
	case MATERIALIZE_OVER_BUDGET: fail_over_budget(t); break;
	case MATERIALIZE_STOPPED:
		if (atomic_load(&t->cancel))
			fail(t, ERR_CLIENT_CLOSED, "the fetch was cancelled", CURLE_OK, NULL);
		else
			fail(t, ERR_UPSTREAM_TIMEOUT,
			     "the deadline passed while the response document was built", CURLE_OK,
			     NULL);
		break;
	}
	for (size_t i = 0; i < n_cookies; i++)
		free(cookies[i]);
	free(cookies);
	tlsinfo_clear(&tls);
}

/* One fetch_run: the hop being fetched and what carries over between
 * hops. On fetch_run's stack; nothing here is allocated per hop but url. */
struct run {
	struct fetch_worker *w;
	struct fetch_task *t;
	char *url;	    /* of the current hop, malloc'd */
	const char *method; /* of the current hop: a 303 turns POST into GET */
	bool with_body;
	bool drop_credentials; /* the chain has left the client's origin */
	unsigned hop;
	uint64_t start_ns, hop_start_ns;
	struct response_timing timing;
};

/* A fetch stopped before a hop to another host (fetch.h, admitted_host):
 * what run and transfer carry between hops, and the cookies the chain
 * has set, to go on with on whichever worker takes the task next. */
struct fetch_resume {
	char *host; /* the next hop's, url_host_key */
	char *url;
	const char *method;
	bool with_body, drop_credentials;
	unsigned hop;
	uint64_t start_ns;
	struct response_timing timing;
	struct response_hop *hops;
	size_t n_hops, cap_hops;
	size_t header_charged; /* still held in the task's budget hold */
	char **cookies;	       /* CURLINFO_COOKIELIST lines */
	size_t n_cookies;
};

const char *fetch_resume_host(const struct fetch_resume *s)
{
	return s->host;
}

void fetch_resume_free(struct fetch_resume *s)
{
	if (s == NULL)
		return;
	free(s->host);
	free(s->url);
	for (size_t i = 0; i < s->n_hops; i++)
		hop_clear(&s->hops[i]);
	free(s->hops);
	for (size_t i = 0; i < s->n_cookies; i++)
		free(s->cookies[i]);
	free(s->cookies);
	free(s);
}

/* What the redirect step decided. */
enum run_next {
	RUN_FINAL,  /* this hop's response is the answer */
	RUN_FOLLOW, /* r->url is the next hop's */
	RUN_FAILED, /* the task holds the error document */
};

/* Replace the worker's easy handle when the destination or TLS rules
 * changed since it was made, closing the connections it pooled, and move
 * to the share of the new generation (its TLS session cache starts
 * empty). On out of memory the worker keeps both and tries again at its
 * next task. */
static void worker_refresh_handle(struct fetch_worker *w)
{
	unsigned generation = atomic_load(&connection_generation);
	struct curlshare *share;
	CURL *fresh;

	if (w->generation == generation)
		return;
	share = curlshare_get();
	fresh = handle_new();
	if (fresh == NULL || share == NULL) {
		curl_easy_cleanup(fresh);
		curlshare_put(share);
		return;
	}
	curl_easy_cleanup(w->curl);
	curlshare_put(w->share); /* the old handle no longer uses it */
	w->curl = fresh;
	w->share = share;
	w->generation = generation;
	w->plain = false; /* a new handle has none of our options */
}

/* Go on with a chain stopped before a hop to another host: take back its
 * state and its cookies, and add this wait to its queue time. */
static void run_resume(struct run *r, struct fetch_task *t)
{
	struct fetch_resume *s = t->resume;
	struct transfer *tr = &r->w->tr;

	t->resume = NULL;
	r->url = s->url;
	r->method = s->method;
	r->with_body = s->with_body;
	r->drop_credentials = s->drop_credentials;
	r->hop = s->hop;
	r->start_ns = s->start_ns;
	r->timing = s->timing;
	r->timing.queued_ms += (double)t->queued_ns / 1e6;
	tr->hops = s->hops;
	tr->n_hops = s->n_hops;
	tr->cap_hops = s->cap_hops;
	tr->header_charged = s->header_charged;
	for (size_t i = 0; i < s->n_cookies; i++)
		curl_easy_setopt(r->w->curl, CURLOPT_COOKIELIST, s->cookies[i]);
	s->url = NULL;
	s->hops = NULL;
	s->n_hops = 0;
	fetch_resume_free(s);
}

/* The next hop (r->url) goes to another host than the task was admitted
 * under: keep the chain in t->resume for the loop to admit again, and
 * end this run without a document. Returns -1 after failing the task (out
 * of memory), 0 when parked, 1 when the host is the same (go on). */
static int run_park_for_host(struct run *r)
{
	struct fetch_task *t = r->t;
	struct transfer *tr = &r->w->tr;
	struct fetch_resume *s;
	char *host = url_get(r->url, CURLUPART_HOST, 0);
	char *key = host != NULL ? url_host_key(host) : NULL;

	free(host);
	if (key == NULL) {
		fail_no_memory(t);
		return -1;
	}
	if (strcmp(key, t->admitted_host) == 0) {
		free(key);
		return 1;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		free(key);
		fail_no_memory(t);
		return -1;
	}
	s->host = key;
	s->url = r->url;
	s->method = r->method;
	s->with_body = r->with_body;
	s->drop_credentials = r->drop_credentials;
	s->hop = r->hop + 1;
	s->start_ns = r->start_ns;
	s->timing = r->timing;
	s->hops = tr->hops;
	s->n_hops = tr->n_hops;
	s->cap_hops = tr->cap_hops;
	s->header_charged = tr->header_charged;
	s->cookies = collect_cookies(r->w->curl, &s->n_cookies);
	r->url = NULL;
	tr->hops = NULL;
	tr->n_hops = tr->cap_hops = 0;
	tr->header_charged = 0; /* stays held: the chain's headers */
	t->resume = s;
	t->err = ERR_NONE;
	t->http_status = 0;
	return 0;
}

/* Start the task's transfer on the worker: its state, the spare body
 * buffer, no cookies of the previous task. */
static void run_start(struct run *r, struct fetch_worker *w, struct fetch_task *t)
{
	struct transfer *tr = &w->tr;

	memset(r, 0, sizeof(*r));
	r->w = w;
	r->t = t;
	r->method = t->req->method;
	r->with_body = t->req->body != NULL;
	r->start_ns = clock_now_ns();
	r->timing.queued_ms = (double)t->queued_ns / 1e6;
	memset(tr, 0, sizeof(*tr));
	tr->curl = w->curl;
	tr->task = t;
	tr->req = t->req;
	tr->body = w->spare_body;
	tr->body_cap = w->spare_cap;
	w->spare_body = NULL;
	w->spare_cap = 0;
	t->doc = NULL;
	t->bytes_in = 0;
	/* cookies never leak from the previous task on this worker */
	curl_easy_setopt(w->curl, CURLOPT_COOKIELIST, "ALL");
	if (t->resume != NULL)
		run_resume(r, t);
	else
		r->url = strdup(t->req->url);
}

/* [security] allow_hosts, judged on every hop's URL. Returns -1 after
 * failing the task. */
static int hop_check_host(struct run *r)
{
	const struct fetchd_config *cfg = r->t->cfg;
	char message[512];
	char *host;

	/* parsing the URL again costs: only with host patterns to match */
	if (cfg->n_allow_hosts == 0)
		return 0;
	host = url_get(r->url, CURLUPART_HOST, 0);
	if (host != NULL && netguard_host_allowed(cfg->allow_hosts, cfg->n_allow_hosts, host)) {
		free(host);
		return 0;
	}
	snprintf(message, sizeof(message), "host '%s' (hop %u) is not in [security] allow_hosts",
		 host ? host : "?", r->hop);
	free(host);
	fail(r->t, ERR_DESTINATION_DENIED, message, CURLE_OK, NULL);
	return -1;
}

static bool is_https(const char *url)
{
	return strncasecmp(url, "https:", 6) == 0;
}

/* Set up and perform one hop: the deadline and host checks, the header
 * list, the handle's options, curl_easy_perform. Returns -1 after failing
 * the task, else 0 with curl's answer in *cc (a cut at max_bytes counts as
 * CURLE_OK). */
static int hop_perform(struct run *r, CURLcode *cc)
{
	struct fetch_worker *w = r->w;
	struct fetch_task *t = r->t;
	struct transfer *tr = &w->tr;
	uint64_t now = clock_now_ns();
	struct curl_slist *headers;
	bool has_ua;

	if (now >= t->deadline_ns) {
		fail(t, ERR_UPSTREAM_TIMEOUT, "the deadline passed before the fetch completed",
		     CURLE_OK, NULL);
		return -1;
	}
	if (hop_check_host(r) != 0)
		return -1;
	headers = hop_headers(w, t->req, r->drop_credentials, r->with_body, t->via, &has_ua);
	if (headers == NULL || hop_begin(tr) != 0) {
		hop_headers_free(w, headers);
		fail_no_memory(t);
		return -1;
	}
	tr->body_len = 0;
	tr->truncated = false;
	/* plain http never looks at TLS: no capture, no certificate */
	tr->want_tls = (t->req->fields & FIELD_TLS) && is_https(r->url);
	tlsinfo_release(&tr->tls);
	w->errbuf[0] = '\0';
	setup_hop(w, r->url, r->method, r->with_body, headers, has_ua,
		  (t->deadline_ns - now + 999999) / 1000000);
	r->hop_start_ns = clock_now_ns();
	*cc = curl_easy_perform(w->curl);
	hop_headers_free(w, headers);
	if (*cc == CURLE_WRITE_ERROR && tr->truncated)
		*cc = CURLE_OK;
	return 0;
}

/* Under TLS 1.3 the client's certificate travels after the handshake has
 * completed on the client's side (RFC 8446 section 4.4.2), so a server
 * that refuses it (alert certificate_required or unknown_ca, then close)
 * surfaces in curl as a send or receive failure (55, 56; 35 when the alert
 * comes during curl's handshake read) with no response byte. On an https
 * hop that is reported as tls_error, whatever the exact code. */
static bool refused_after_handshake(const struct run *r, CURLcode cc)
{
	long header_size = 0;

	if (cc != CURLE_SEND_ERROR && cc != CURLE_RECV_ERROR && cc != CURLE_SSL_CONNECT_ERROR)
		return false;
	curl_easy_getinfo(r->w->curl, CURLINFO_HEADER_SIZE, &header_size);
	return header_size == 0 && is_https(r->url);
}

/* Fail the task for a hop that curl_easy_perform ended with cc. What
 * fetchd's own callbacks saw comes first (the budget, memory, the
 * connect-time guard, the client leaving): each surfaces in curl as a generic code. */
static void fail_transfer(struct run *r, CURLcode cc)
{
	struct fetch_task *t = r->t;
	const struct transfer *tr = &r->w->tr;
	const char *errbuf = r->w->errbuf;
	enum fetchd_err err = fetch_map_curl_error(cc);
	char message[512];

	if (tr->over_budget) {
		fail_over_budget(t);
	} else if (tr->no_memory) {
		fail_no_memory(t);
	} else if (tr->denied) {
		snprintf(message, sizeof(message),
			 "destination %s of %s (hop %u) is denied by [security]", tr->denied_addr,
			 r->url, r->hop);
		fail(t, ERR_DESTINATION_DENIED, message, cc, errbuf);
	} else if (atomic_load(&t->cancel)) {
		fail(t, ERR_CLIENT_CLOSED, "the fetch was cancelled", cc, errbuf);
	} else if (cc == CURLE_OPERATION_TIMEDOUT &&
		   strncmp(errbuf, "Operation too slow", 18) == 0) {
		/* curl's words for its low-speed limit */
		snprintf(message, sizeof(message),
			 "the upstream sent less than %llu bytes/s for %llu s "
			 "([fetch] low_speed_limit)",
			 (unsigned long long)t->cfg->low_speed_limit,
			 (unsigned long long)(t->cfg->low_speed_time_ms / 1000));
		fail(t, ERR_UPSTREAM_TIMEOUT, message, cc, errbuf);
	} else if (err == ERR_UPSTREAM_TIMEOUT) {
		fail(t, ERR_UPSTREAM_TIMEOUT, "the deadline passed before the fetch completed", cc,
		     errbuf);
	} else if (tr->too_big || err == ERR_RESPONSE_TOO_LARGE) {
		snprintf(message, sizeof(message), "the response body is larger than %llu bytes",
			 (unsigned long long)t->req->max_bytes);
		fail(t, ERR_RESPONSE_TOO_LARGE, message, cc, errbuf);
	} else if (tr->headers_too_big) {
		fail(t, ERR_UPSTREAM_ERROR, "the response headers are too large", cc, errbuf);
	} else if (refused_after_handshake(r, cc)) {
		snprintf(message, sizeof(message),
			 "fetching %s failed: the server ended the TLS connection before "
			 "answering (a client certificate refused after the handshake?): %s",
			 r->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		fail(t, ERR_TLS_ERROR, message, cc, errbuf);
	} else {
		snprintf(message, sizeof(message), "fetching %s failed: %s", r->url,
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
		fail(t, err, message, cc, errbuf);
	}
}

/* The hop is complete: add its times to the timing and record its status,
 * reason, version and URL. Returns -1 after failing the task. */
static int hop_record(struct run *r)
{
	CURL *c = r->w->curl;
	struct response_hop *h = current_hop(&r->w->tr);
	char *effective = NULL;
	curl_off_t namelookup = 0, connect = 0, appconnect = 0, starttransfer = 0;
	long status = 0;

	assert(h != NULL); /* hop_perform began it */
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
	curl_easy_getinfo(c, CURLINFO_NAMELOOKUP_TIME_T, &namelookup);
	curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect);
	curl_easy_getinfo(c, CURLINFO_APPCONNECT_TIME_T, &appconnect);
	curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &starttransfer);
	r->timing.dns_ms += ms(namelookup);
	r->timing.connect_ms += connect > namelookup ? ms(connect - namelookup) : 0;
	r->timing.tls_ms += appconnect > connect ? ms(appconnect - connect) : 0;
	r->timing.ttfb_ms = (double)(r->hop_start_ns - r->start_ns) / 1e6 + ms(starttransfer);
	h->status = status;
	if (h->reason == NULL)
		h->reason = strdup(http_reason_phrase(status));
	if (h->http_version == NULL)
		h->http_version = strdup("1.1");
	h->url = strdup(effective != NULL ? effective : r->url);
	if (h->url == NULL || h->reason == NULL || h->http_version == NULL) {
		fail_no_memory(r->t);
		return -1;
	}
	return 0;
}

/* Decide whether the recorded hop is followed (SPEC section 2,
 * "Redirects"): its Location, max_redirects, the scheme of the target,
 * the method the status turns the request into, and credentials off
 * once the chain leaves the client's origin. */
static enum run_next redirect_step(struct run *r)
{
	const struct fetch_request *req = r->t->req;
	long status = current_hop(&r->w->tr)->status;
	char *location = NULL, *next_url;
	char message[512];
	bool keep_body;

	if (!req->follow_redirects || !redirect_is_redirect(status))
		return RUN_FINAL;
	curl_easy_getinfo(r->w->curl, CURLINFO_REDIRECT_URL, &location);
	if (location == NULL)
		return RUN_FINAL; /* a 3xx without Location is a final response */
	if (r->hop >= req->max_redirects) {
		snprintf(message, sizeof(message), "more than %u redirects", req->max_redirects);
		/* curl's code for what curl would have said (SPEC's 502 row) */
		fail(r->t, ERR_TOO_MANY_REDIRECTS, message, CURLE_TOO_MANY_REDIRECTS, NULL);
		return RUN_FAILED;
	}
	char *scheme = url_get(location, CURLUPART_SCHEME, 0);
	if (!url_scheme_allowed(r->t->cfg, scheme)) {
		snprintf(message, sizeof(message),
			 "redirect to scheme '%s' is not allowed (hop %u)", scheme ? scheme : "?",
			 r->hop + 1);
		free(scheme);
		fail(r->t, ERR_UPSTREAM_ERROR, message, CURLE_UNSUPPORTED_PROTOCOL, NULL);
		return RUN_FAILED;
	}
	/* [fetch] allow_downgrade: https to http leaves TLS behind */
	if (!r->t->cfg->allow_downgrade && is_https(r->url) && scheme != NULL &&
	    strcasecmp(scheme, "http") == 0) {
		snprintf(message, sizeof(message),
			 "redirect from https to http is not allowed (hop %u)", r->hop + 1);
		free(scheme);
		fail(r->t, ERR_UPSTREAM_ERROR, message, CURLE_UNSUPPORTED_PROTOCOL, NULL);
		return RUN_FAILED;
	}
	free(scheme);
	next_url = strdup(location);
	if (next_url == NULL) {
		fail_no_memory(r->t);
		return RUN_FAILED;
	}
	redirect_next_method(status, r->method, &r->method, &keep_body);
	if (!keep_body)
		r->with_body = false;
	/* once a hop leaves the client's origin, credentials stay off for the
	 * rest of the chain */
	if (!redirect_same_origin(req->url, next_url))
		r->drop_credentials = true;
	free(r->url);
	r->url = next_url;
	return RUN_FOLLOW;
}

void fetch_run(struct fetch_worker *w, struct fetch_task *t)
{
	struct run r;
	enum run_next next = RUN_FOLLOW;

	if (t->resume == NULL) {
		t->attempt_start_ns = clock_now_ns();
		t->attempt_closed = false;
		t->retry_after_ms = -1;
	}
	t->retry = RETRY_NO;
	worker_refresh_handle(w);
	run_start(&r, w, t);
	if (r.url == NULL) {
		fail_no_memory(t);
		goto out;
	}
	for (;; r.hop++) {
		CURLcode cc;

		if (hop_perform(&r, &cc) != 0)
			goto out;
		if (cc != CURLE_OK) {
			fail_transfer(&r, cc);
			goto out;
		}
		if (hop_record(&r) != 0)
			goto out;
		next = redirect_step(&r);
		if (next != RUN_FOLLOW)
			break;
		if (t->admitted_host != NULL && run_park_for_host(&r) <= 0)
			goto out;
	}
	if (next == RUN_FINAL) {
		r.timing.total_ms = (double)(clock_now_ns() - r.start_ns) / 1e6;
		succeed(t, &w->tr, w->curl, w->id, &r.timing);
	}
out:
	/* nothing of this client's stays in the handle */
	curl_easy_setopt(w->curl, CURLOPT_COOKIELIST, "ALL");
	free(r.url);
	transfer_free(w, &w->tr);
}
