#ifndef FETCHD_URL_H
#define FETCHD_URL_H

#include <curl/curl.h>

/* One part of url (CURLUPART_HOST, _SCHEME, _PORT, ...) parsed by libcurl's
 * URL API, with curl_url_get's flags (CURLU_DEFAULT_PORT, ...). Any scheme
 * parses. A malloc'd copy, or NULL when url does not parse or lacks the
 * part. No DNS: safe on the loop thread. */
char *url_get(const char *url, CURLUPart part, unsigned int flags);

#endif
