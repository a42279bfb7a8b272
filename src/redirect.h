#ifndef FETCHD_REDIRECT_H
#define FETCHD_REDIRECT_H

#include <stdbool.h>

/* The Fetch standard's method rewriting (4.4 HTTP-redirect fetch): 303
 * turns any method but HEAD into GET; 301 and 302 turn POST into GET; 307
 * and 308 keep method and body. *keep_body is false whenever the method
 * changes. */
void redirect_next_method(long status, const char *method, const char **next_method,
			  bool *keep_body);

/* Is status one whose Location fetchd follows (301 302 303 307 308)? */
bool redirect_is_redirect(long status);

/* Same origin: scheme, host (case-insensitive) and effective port equal.
 * Unparsable URLs are never the same origin. */
bool redirect_same_origin(const char *url_a, const char *url_b);

/* Headers a client set that must not cross to another origin:
 * Authorization, Cookie, Proxy-Authorization (case-insensitive). */
bool redirect_is_credential_header(const char *name);

#endif
