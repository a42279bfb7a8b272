#ifndef FETCHD_URL_H
#define FETCHD_URL_H

#include <curl/curl.h>
#include <stdbool.h>

struct fetchd_config;

/* One part of url (CURLUPART_HOST, _SCHEME, _PORT, ...) parsed by libcurl's
 * URL API, with curl_url_get's flags (CURLU_DEFAULT_PORT, ...). Any scheme
 * parses. A malloc'd copy, or NULL when url does not parse or lacks the
 * part. No DNS: safe on the loop thread. */
char *url_get(const char *url, CURLUPart part, unsigned int flags);

/* The per-host rules' key of a host name ([pool] per_host_limit): the
 * name in lower case, in a malloc'd copy; NULL on out of memory. One host
 * is one key whatever its port or scheme. Pure. */
char *url_host_key(const char *host);

/* Is scheme (any case; NULL is no scheme) one of [fetch] schemes? The one
 * scheme rule, for the client's URL (request.c) and every redirect
 * (fetch.c): only http and https can be, whatever the configuration
 * lists. Pure. */
bool url_scheme_allowed(const struct fetchd_config *cfg, const char *scheme);

#endif
