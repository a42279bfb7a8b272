#ifndef FETCHD_HTTP_H
#define FETCHD_HTTP_H

/* HTTP message syntax (RFC 9110) shared by the request's validation
 * (request.c), the Link header parser (links.c) and the recorded response
 * hops (fetch.c, materialize.c). Pure: no state, no locale. */

#include <stdbool.h>

/* One header field: a client's header (valid tokens and values, checked by
 * request.c) or one received from upstream (raw bytes, not necessarily
 * UTF-8). Both strings are malloc'd and NUL-terminated. */
struct header_field {
	char *name;
	char *value;
};

/* tchar of RFC 9110 section 5.6.2, the characters of a token (header
 * names, Link parameter names): ASCII letters and digits and
 * !#$%&'*+-.^_`|~, whatever the locale. */
static inline bool http_is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!':
	case '#':
	case '$':
	case '%':
	case '&':
	case '\'':
	case '*':
	case '+':
	case '-':
	case '.':
	case '^':
	case '_':
	case '`':
	case '|':
	case '~': return true;
	default: return false;
	}
}

#endif
