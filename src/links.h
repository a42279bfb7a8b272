#ifndef FETCHD_LINKS_H
#define FETCHD_LINKS_H

#include <jansson.h>

/* Parse one or more Link header values (RFC 8288), joined by ", " as
 * repeated headers are, into {rel: {"url": absolute, "rel": rel, param:
 * value, ...}} like requests' Response.links: each link keyed by its rel
 * (or by its URL when it has none); a link with several rels ("next
 * last") appears under each; relative URLs resolved against base_url
 * (with libcurl's CURLU). Quoted strings may contain ',' and ';'. Bad
 * parts are skipped, never fatal. Strings are made valid UTF-8. Returns a
 * new object ({} when nothing parses); NULL only on out of memory. */
json_t *links_parse(const char *header_value, const char *base_url);

#endif
