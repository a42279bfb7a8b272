#ifndef FETCHD_MATERIALIZE_H
#define FETCHD_MATERIALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"
#include "tlsinfo.h"

/* One response along the redirect chain. */
struct response_hop {
	char *url;
	long status;
	char *reason;
	char *http_version; /* "1.1", "2", ... */
	struct header_field *headers;
	size_t n_headers;
};

struct response_timing {
	double queued_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, total_ms;
};

/* Everything a fetch learned, handed to the materializer on the worker. */
struct fetch_response {
	const struct response_hop *hops; /* the last one is the final response */
	size_t n_hops;
	const unsigned char *body; /* decoded (decompressed) body of the final hop */
	size_t body_len;
	bool truncated;
	bool still_encoded;   /* decompress was off and a Content-Encoding applies */
	char *const *cookies; /* curl's cookie list lines (Netscape format) */
	size_t n_cookies;
	struct response_timing timing;
	const char *remote_ip;
	long remote_port;
	unsigned worker;
	const struct tls_info *tls; /* NULL: plain http (the field is null) */
	/* every attempt so far, this one last; none: no "attempts" field */
	const struct retry_attempt *attempts;
	size_t n_attempts;
	bool retry_cut_short; /* a retry was due but would pass the deadline */
};

/* Build the response document of SPEC section 2 for the fields and body
 * mode asked for, and serialize it. Fields not asked for are not
 * computed. Returns a malloc'd buffer and its length, or NULL on out of
 * memory. */
char *materialize_document(const struct fetch_response *resp, unsigned fields, enum body_mode mode,
			   size_t *len);

struct budget_hold;

/* What bounds the building of one document. */
struct materialize_limits {
	/* every byte the document and its temporary copies take is charged
	 * here before it is allocated; NULL: nothing is charged */
	struct budget_hold *hold;
	/* polled between fields and every 64 KiB to 1 MiB inside the long
	 * ones (decoding, the json field, base64); true abandons the
	 * document (the fetch's deadline passed, or its client left). NULL:
	 * never stop. */
	bool (*stop)(void *arg);
	void *stop_arg;
};

enum materialize_result {
	MATERIALIZE_OK,
	MATERIALIZE_NO_MEMORY,
	MATERIALIZE_OVER_BUDGET, /* the hold refused a charge (see its never_fits) */
	MATERIALIZE_STOPPED,
};

/* materialize_document within limits (may be NULL). On MATERIALIZE_OK,
 * *doc is the document (malloc'd, *len bytes of it still charged to
 * limits->hold); otherwise *doc is NULL and nothing is left charged. */
enum materialize_result materialize_document_limited(const struct fetch_response *resp,
						     unsigned fields, enum body_mode mode,
						     const struct materialize_limits *limits,
						     char **doc, size_t *len);

/* Is the media type of a Content-Type value JSON (application/json,
 * any +json suffix)? Textual (text/ *, JSON, XML, JavaScript, forms)? */
bool materialize_is_json_type(const char *content_type);
bool materialize_is_text_type(const char *content_type);

/* The charset parameter of a Content-Type value, lower-cased, malloc'd, or
 * NULL when absent. */
char *materialize_charset(const char *content_type);

#endif
