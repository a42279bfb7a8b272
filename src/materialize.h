#ifndef FETCHD_MATERIALIZE_H
#define FETCHD_MATERIALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

/* One header line as received: raw bytes, not necessarily UTF-8. */
struct header_field {
	char *name;
	char *value;
};

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
	bool still_encoded; /* decompress was off and a Content-Encoding applies */
	char *const *cookies; /* curl's cookie list lines (Netscape format) */
	size_t n_cookies;
	struct response_timing timing;
	const char *remote_ip;
	long remote_port;
	unsigned worker;
};

/* Build the response document of SPEC section 2 for the fields and body
 * mode asked for, and serialize it. Fields not asked for are not
 * computed. Returns a malloc'd buffer and its length, or NULL on out of
 * memory. */
char *materialize_document(const struct fetch_response *resp, unsigned fields,
			   enum body_mode mode, size_t *len);

/* Is the media type of a Content-Type value JSON (application/json,
 * any +json suffix)? Textual (text/ *, JSON, XML, JavaScript, forms)? */
bool materialize_is_json_type(const char *content_type);
bool materialize_is_text_type(const char *content_type);

/* The charset parameter of a Content-Type value, lower-cased, malloc'd, or
 * NULL when absent. */
char *materialize_charset(const char *content_type);

#endif
